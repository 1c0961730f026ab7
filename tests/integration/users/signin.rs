//! The identity rules of a Kakao sign-in without HTTP: by Kakao id, else claim an unlinked
//! account by its verified email, else create a member; never touch flags; never sign in an
//! inactive account; each sign-up and claim audited as the person's own doing.

use kakao_login::db::DbPool;
use kakao_login::users::changes::{self, UserPatch};
use kakao_login::users::manager::CreateUser;
use kakao_login::users::permissions::{Actor, Role};
use kakao_login::users::signin::{KakaoIdentity, SignInError, SignInKind, sign_in_with_kakao};

use crate::support::{TestDb, audit_rows};

fn identity(kakao_id: i64, email: &str) -> KakaoIdentity {
    KakaoIdentity {
        kakao_id,
        email: email.into(),
        nickname: Some("카카오".into()),
        profile_json: format!("{{\"id\":{kakao_id}}}"),
    }
}

fn sign_in(
    pool: &DbPool,
    who: &KakaoIdentity,
) -> Result<(kakao_login::users::model::User, SignInKind), SignInError> {
    let mut conn = pool.get().expect("connection");
    sign_in_with_kakao(&mut conn, who)
}

#[test]
fn a_new_person_becomes_a_member_and_comes_back_to_the_same_account() {
    let db = TestDb::new();
    let pool = db.pool();
    let (user, kind) = sign_in(&pool, &identity(10, "new@example.com")).expect("sign-up");
    assert_eq!(kind, SignInKind::Created);
    assert_eq!(user.provider, "kakao");
    assert_eq!(user.name.as_deref(), Some("카카오"));
    assert!(!user.is_staff && !user.is_superuser && user.is_active);
    assert!(user.last_login.is_some());
    let rows = audit_rows(&pool);
    assert_eq!(rows.len(), 1);
    let row = &rows[0];
    assert_eq!(
        (
            row.action.as_str(),
            row.via.as_str(),
            row.actor_id,
            row.target_id
        ),
        ("create", "kakao_login", Some(user.id), Some(user.id))
    );
    assert!(
        row.field_changes()
            .iter()
            .any(|c| c.field == "kakao_id" && c.new == "10")
    );

    let (again, kind) = sign_in(&pool, &identity(10, "new@example.com")).expect("returning");
    assert_eq!((again.id, kind), (user.id, SignInKind::Returning));
    // A changed Kakao email does not make another account: the Kakao id is the key.
    let (moved, kind) = sign_in(&pool, &identity(10, "moved@example.com")).expect("returning");
    assert_eq!((moved.id, kind), (user.id, SignInKind::Returning));
    assert_eq!(audit_rows(&pool).len(), 1, "coming back is not a change");
}

#[test]
fn a_preprovisioned_superuser_is_claimed_without_changing_its_flags() {
    let db = TestDb::new();
    let pool = db.pool();
    let root = {
        let mut conn = pool.get().expect("connection");
        changes::create_user(
            &mut conn,
            &Actor::Cli,
            &CreateUser {
                email: "boss@example.com".into(),
                provider: "local".into(),
                ..CreateUser::default()
            },
            Role::Superuser,
        )
        .expect("createsuperuser")
    };
    let (user, kind) = sign_in(&pool, &identity(77, "boss@example.com")).expect("claim");
    assert_eq!((user.id, kind), (root.id, SignInKind::Claimed));
    assert!(user.is_staff && user.is_superuser, "flags as they were");
    let row = audit_rows(&pool).pop().expect("row");
    assert_eq!(
        (row.action.as_str(), row.via.as_str(), row.actor_id),
        ("link", "kakao_login", Some(root.id))
    );
    // The same email from another Kakao account is refused.
    assert!(matches!(
        sign_in(&pool, &identity(78, "boss@example.com")),
        Err(SignInError::EmailLinkedElsewhere)
    ));
}

#[test]
fn inactive_accounts_cannot_sign_in_linked_or_not() {
    let db = TestDb::new();
    let pool = db.pool();
    let (linked, _) = sign_in(&pool, &identity(1, "linked@example.com")).expect("sign-up");
    let unclaimed = {
        let mut conn = pool.get().expect("connection");
        let user = changes::create_user(
            &mut conn,
            &Actor::Cli,
            &CreateUser {
                email: "unclaimed@example.com".into(),
                provider: "local".into(),
                ..CreateUser::default()
            },
            Role::Member,
        )
        .expect("create");
        for id in [linked.id, user.id] {
            changes::update_user(&mut conn, &Actor::Cli, id, &UserPatch::active(false))
                .expect("deactivate");
        }
        user
    };
    let before = audit_rows(&pool).len();
    for who in [
        identity(1, "linked@example.com"),
        identity(2, "unclaimed@example.com"),
    ] {
        assert!(matches!(sign_in(&pool, &who), Err(SignInError::Inactive)));
    }
    assert_eq!(audit_rows(&pool).len(), before, "nothing was linked");
    let mut conn = pool.get().expect("connection");
    let still = kakao_login::users::repo::find_social_for_user(&mut conn, unclaimed.id, "kakao")
        .expect("query");
    assert!(still.is_none());
}

#[test]
fn concurrent_first_sign_ins_of_one_person_make_one_account() {
    let db = TestDb::new();
    let pool = db.pool();
    let threads: Vec<_> = (0..8)
        .map(|_| {
            let pool = pool.clone();
            std::thread::spawn(move || sign_in(&pool, &identity(5, "race@example.com")))
        })
        .collect();
    let ids: Vec<i64> = threads
        .into_iter()
        .map(|t| t.join().expect("thread").expect("signed in").0.id)
        .collect();
    assert!(ids.windows(2).all(|w| w[0] == w[1]), "{ids:?}");
    let creates = audit_rows(&pool)
        .into_iter()
        .filter(|r| r.action == "create")
        .count();
    assert_eq!(creates, 1);
}
