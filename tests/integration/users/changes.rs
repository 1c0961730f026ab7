//! The change service without HTTP: every change writes exactly one audit row naming its actor,
//! door, target and fields; refused changes change nothing and write nothing; the policy per
//! actor (staff never change a staff or superuser record); the last-superuser guard, also
//! under concurrency.

use kakao_login::db::{DbConnection, DbPool};
use kakao_login::users::audit::AuditEntry;
use kakao_login::users::changes::{self, BulkAction, ChangeError, UserPatch};
use kakao_login::users::manager::CreateUser;
use kakao_login::users::model::User;
use kakao_login::users::permissions::{Actor, Door, Role};

use crate::support::{TestDb, audit_rows};

struct World {
    _db: TestDb,
    pool: DbPool,
}

impl World {
    fn new() -> World {
        let db = TestDb::new();
        let pool = db.pool();
        World { _db: db, pool }
    }

    fn conn(&self) -> kakao_login::db::PooledDb {
        self.pool.get().expect("connection")
    }

    /// A user of `role`, made by the operator.
    fn user(&self, role: Role, email: &str) -> User {
        changes::create_user(&mut self.conn(), &Actor::Cli, &input(email), role).expect("create")
    }

    fn reload(&self, user: &User) -> Option<User> {
        let actor = Actor::Cli;
        kakao_login::users::lookup::visible_user(&mut self.conn(), &actor, user.id).ok()
    }

    fn audit(&self) -> Vec<AuditEntry> {
        audit_rows(&self.pool)
    }

    fn audit_since(&self, mark: usize) -> Vec<AuditEntry> {
        self.audit().split_off(mark)
    }
}

fn input(email: &str) -> CreateUser {
    CreateUser {
        email: email.into(),
        provider: "local".into(),
        ..CreateUser::default()
    }
}

fn as_admin(user: &User) -> Actor {
    Actor::User(user.clone(), Door::Admin)
}

fn as_api(user: &User) -> Actor {
    Actor::User(user.clone(), Door::Api)
}

fn field(entry: &AuditEntry, name: &str) -> Option<(String, String)> {
    entry
        .field_changes()
        .into_iter()
        .find(|c| c.field == name)
        .map(|c| (c.old, c.new))
}

#[test]
fn each_change_writes_one_audit_row_naming_actor_door_target_and_fields() {
    let w = World::new();
    let root = w.user(Role::Superuser, "root@example.com");
    let staff = w.user(Role::Staff, "staff@example.com");
    let conn = &mut *w.conn() as &mut DbConnection;

    let mark = w.audit().len();
    let member = changes::create_user(conn, &as_api(&staff), &input("m@example.com"), Role::Member)
        .expect("staff create members");
    let patch = UserPatch {
        name: Some(Some("새 이름".into())),
        age: Some(Some(30)),
        ..UserPatch::default()
    };
    changes::update_user(conn, &as_admin(&staff), member.id, &patch).expect("edit");
    changes::update_user(
        conn,
        &as_admin(&staff),
        member.id,
        &UserPatch::active(false),
    )
    .expect("deactivate");
    changes::sign_out_everywhere(conn, &as_api(&root), member.id).expect("sign out");
    changes::delete_user(conn, &as_api(&root), member.id).expect("delete");

    let rows = w.audit_since(mark);
    let summary: Vec<(&str, Option<i64>, &str, Option<i64>)> = rows
        .iter()
        .map(|r| (r.action.as_str(), r.actor_id, r.via.as_str(), r.target_id))
        .collect();
    let m = Some(member.id);
    assert_eq!(
        summary,
        vec![
            ("create", Some(staff.id), "api", m),
            ("update", Some(staff.id), "admin", m),
            ("deactivate", Some(staff.id), "admin", m),
            ("sign_out_everywhere", Some(root.id), "api", m),
            ("delete", Some(root.id), "api", m),
        ]
    );
    assert_eq!(
        field(&rows[0], "email"),
        Some(("null".into(), "m@example.com".into()))
    );
    assert_eq!(field(&rows[1], "age"), Some(("null".into(), "30".into())));
    assert_eq!(
        field(&rows[1], "name"),
        Some(("null".into(), "새 이름".into()))
    );
    assert_eq!(rows[1].field_changes().len(), 2, "only what changed");
    assert_eq!(
        field(&rows[2], "is_active"),
        Some(("true".into(), "false".into()))
    );
    assert_eq!(
        field(&rows[4], "name"),
        Some(("새 이름".into(), "null".into())),
        "a deletion keeps the deleted values"
    );
    assert!(rows.iter().all(|r| r.target_email == "m@example.com"));

    // The operator's changes name the command line.
    let mark = w.audit().len();
    changes::set_password(
        conn,
        &Actor::Cli,
        "staff@example.com",
        "correct horse battery",
    )
    .expect("password");
    let rows = w.audit_since(mark);
    assert_eq!(rows.len(), 1);
    assert_eq!(
        (
            rows[0].action.as_str(),
            rows[0].actor_id,
            rows[0].actor_email.as_str()
        ),
        ("set_password", None, "(command line)")
    );
    assert_eq!(rows[0].via, "cli");
}

#[test]
fn a_change_that_changes_nothing_writes_nothing() {
    let w = World::new();
    let root = w.user(Role::Superuser, "root@example.com");
    let member = w.user(Role::Member, "m@example.com");
    let mark = w.audit().len();
    let conn = &mut *w.conn() as &mut DbConnection;
    let same = UserPatch {
        email: Some("M@Example.com".into()),
        is_active: Some(true),
        ..UserPatch::default()
    };
    let updated = changes::update_user(conn, &as_admin(&root), member.id, &same).expect("ok");
    assert!(updated.changes.is_empty());
    assert!(w.audit_since(mark).is_empty());
}

#[test]
fn refused_changes_change_nothing_and_write_nothing() {
    let w = World::new();
    let staff = w.user(Role::Staff, "staff@example.com");
    let root = w.user(Role::Superuser, "root@example.com");
    let member = w.user(Role::Member, "m@example.com");
    let other = w.user(Role::Member, "other@example.com");
    let mark = w.audit().len();
    let conn = &mut *w.conn() as &mut DbConnection;
    let as_member = Actor::User(member.clone(), Door::Profile);

    let refusals: Vec<(&str, &str, Result<(), ChangeError>)> = vec![
        (
            "a member edits someone else",
            "not_found",
            changes::update_user(conn, &as_member, other.id, &UserPatch::active(false)).map(drop),
        ),
        (
            "a member raises their own flags",
            "forbidden",
            changes::update_user(
                conn,
                &as_member,
                member.id,
                &UserPatch {
                    is_staff: Some(true),
                    ..UserPatch::default()
                },
            )
            .map(drop),
        ),
        (
            "staff promote a member",
            "forbidden",
            changes::update_user(
                conn,
                &as_admin(&staff),
                member.id,
                &UserPatch {
                    is_superuser: Some(true),
                    ..UserPatch::default()
                },
            )
            .map(drop),
        ),
        (
            "staff create staff",
            "forbidden",
            changes::create_user(
                conn,
                &as_admin(&staff),
                &input("s2@example.com"),
                Role::Staff,
            )
            .map(drop),
        ),
        (
            "staff delete",
            "forbidden",
            changes::delete_user(conn, &as_admin(&staff), member.id).map(drop),
        ),
        (
            "a taken email",
            "duplicate_email",
            changes::update_user(
                conn,
                &as_admin(&staff),
                member.id,
                &UserPatch {
                    email: Some("OTHER@example.com".into()),
                    ..UserPatch::default()
                },
            )
            .map(drop),
        ),
        (
            "a bad age",
            "invalid",
            changes::update_user(
                conn,
                &as_admin(&root),
                member.id,
                &UserPatch {
                    age: Some(Some(151)),
                    ..UserPatch::default()
                },
            )
            .map(drop),
        ),
        (
            "a web user sets a break-glass password",
            "forbidden",
            changes::set_password(
                conn,
                &as_admin(&root),
                "staff@example.com",
                "long enough pw",
            )
            .map(drop),
        ),
        (
            "Kakao edits a name",
            "forbidden",
            changes::update_user(
                conn,
                &Actor::Kakao,
                member.id,
                &UserPatch {
                    name: Some(Some("x".into())),
                    ..UserPatch::default()
                },
            )
            .map(drop),
        ),
    ];
    for (what, expected, result) in refusals {
        let got = match &result {
            Err(ChangeError::NotFound) => "not_found",
            Err(ChangeError::Forbidden(_)) => "forbidden",
            Err(ChangeError::Invalid(_)) => "invalid",
            Err(ChangeError::DuplicateEmail) => "duplicate_email",
            other => panic!("{what}: expected a refusal, got {other:?}"),
        };
        assert_eq!(got, expected, "{what}");
    }
    assert!(w.audit_since(mark).is_empty());
    assert_eq!(w.reload(&member).as_ref(), Some(&member));
    assert_eq!(w.reload(&other).as_ref(), Some(&other));
}

/// Only a superuser may change a staff or superuser record, an unclaimed one included: whoever
/// signs in with Kakao under its email gets its flags, so changing its email would hand a staff
/// account to anyone.
#[test]
fn staff_cannot_hand_a_staff_account_to_anyone() {
    let w = World::new();
    let staff = w.user(Role::Staff, "staff@example.com");
    let root = w.user(Role::Superuser, "root@example.com");
    let unclaimed = w.user(Role::Staff, "new-hire@example.com");
    let mark = w.audit().len();
    let conn = &mut *w.conn() as &mut DbConnection;
    let to_attacker = UserPatch {
        email: Some("attacker@example.com".into()),
        ..UserPatch::default()
    };
    for actor in [as_admin(&staff), as_api(&staff)] {
        for target in [&unclaimed, &root] {
            let refused = changes::update_user(conn, &actor, target.id, &to_attacker);
            assert!(
                matches!(refused, Err(ChangeError::Forbidden(_))),
                "{refused:?}"
            );
            for patch in [UserPatch::active(false), UserPatch::active(true)] {
                assert!(matches!(
                    changes::update_user(conn, &actor, target.id, &patch),
                    Err(ChangeError::Forbidden(_))
                ));
            }
            assert!(matches!(
                changes::sign_out_everywhere(conn, &actor, target.id),
                Err(ChangeError::Forbidden(_))
            ));
        }
        // Not their own email either: that too would pass their flags to its new owner.
        assert!(matches!(
            changes::update_user(conn, &actor, staff.id, &to_attacker),
            Err(ChangeError::Forbidden(_))
        ));
    }
    assert!(w.audit_since(mark).is_empty());
    assert_eq!(w.reload(&unclaimed).as_ref(), Some(&unclaimed));
    // Staff keep their own name and age; a superuser may change the record.
    let own = UserPatch {
        name: Some(Some("직원".into())),
        ..UserPatch::default()
    };
    changes::update_user(conn, &as_admin(&staff), staff.id, &own).expect("own name");
    changes::update_user(conn, &as_admin(&root), unclaimed.id, &to_attacker)
        .expect("a superuser may");
}

#[test]
fn the_last_active_superuser_is_kept() {
    let w = World::new();
    let root = w.user(Role::Superuser, "root@example.com");
    let conn = &mut *w.conn() as &mut DbConnection;
    let me = as_api(&root);
    let demote = UserPatch {
        is_superuser: Some(false),
        ..UserPatch::default()
    };
    for result in [
        changes::update_user(conn, &me, root.id, &demote).map(drop),
        changes::update_user(conn, &me, root.id, &UserPatch::active(false)).map(drop),
        changes::delete_user(conn, &me, root.id).map(drop),
        changes::update_user(conn, &Actor::Cli, root.id, &demote).map(drop),
    ] {
        assert!(
            matches!(result, Err(ChangeError::LastSuperuser)),
            "{result:?}"
        );
    }
    let outcome = changes::bulk(conn, &me, &[root.id], BulkAction::Deactivate).expect("bulk runs");
    assert_eq!((outcome.applied, outcome.skipped), (0, 1));
    assert_eq!(w.reload(&root).as_ref(), Some(&root));
    // With a second one, either may step down.
    let second = w.user(Role::Superuser, "second@example.com");
    changes::update_user(conn, &me, root.id, &demote).expect("steps down");
    assert!(matches!(
        changes::update_user(conn, &as_api(&second), second.id, &demote),
        Err(ChangeError::LastSuperuser)
    ));
}

/// Concurrent edits of one user are applied one after the other, so the audit log reads as a
/// chain: each row's old value is the previous row's new one.
#[test]
fn concurrent_edits_of_one_user_are_logged_as_a_chain() {
    let w = World::new();
    let root = w.user(Role::Superuser, "root@example.com");
    let member = w.user(Role::Member, "m@example.com");
    let mark = w.audit().len();
    let edits: Vec<_> = (0..6)
        .map(|i| {
            let (pool, root) = (w.pool.clone(), root.clone());
            std::thread::spawn(move || {
                let patch = UserPatch {
                    name: Some(Some(format!("이름{i}"))),
                    ..UserPatch::default()
                };
                let mut conn = pool.get().expect("connection");
                changes::update_user(&mut conn, &as_api(&root), member.id, &patch).map(drop)
            })
        })
        .collect();
    for edit in edits {
        edit.join().expect("thread").expect("edit");
    }
    let names: Vec<(String, String)> = w
        .audit_since(mark)
        .iter()
        .filter_map(|row| field(row, "name"))
        .collect();
    assert_eq!(names.len(), 6, "{names:?}");
    assert_eq!(names[0].0, "null");
    for pair in names.windows(2) {
        assert_eq!(pair[1].0, pair[0].1, "{names:?}");
    }
    let last = w.reload(&member).and_then(|u| u.name);
    assert_eq!(last.as_deref(), Some(names[5].1.as_str()));
}

/// The only two superusers stepping down at the same moment: one of them stays.
#[test]
fn concurrent_demotions_keep_one_superuser() {
    for round in 0..4 {
        let w = World::new();
        let a = w.user(Role::Superuser, "a@example.com");
        let b = w.user(Role::Superuser, "b@example.com");
        let step_down = |me: User| {
            let pool = w.pool.clone();
            std::thread::spawn(move || {
                let patch = UserPatch {
                    is_superuser: Some(false),
                    ..UserPatch::default()
                };
                let mut conn = pool.get().expect("connection");
                changes::update_user(&mut conn, &as_api(&me), me.id, &patch).map(drop)
            })
        };
        let (one, two) = (step_down(a.clone()), step_down(b.clone()));
        let results = [one.join().expect("thread"), two.join().expect("thread")];
        assert_eq!(
            results.iter().filter(|r| r.is_ok()).count(),
            1,
            "round {round}: {results:?}"
        );
        assert!(
            results
                .iter()
                .any(|r| matches!(r, Err(ChangeError::LastSuperuser))),
            "{results:?}"
        );
        let left = [&a, &b]
            .into_iter()
            .filter(|u| w.reload(u).is_some_and(|u| u.is_superuser))
            .count();
        assert_eq!(left, 1);
    }
}

#[test]
fn deactivation_and_sign_out_everywhere_move_the_session_epoch() {
    let w = World::new();
    let root = w.user(Role::Superuser, "root@example.com");
    let member = w.user(Role::Member, "m@example.com");
    let conn = &mut *w.conn() as &mut DbConnection;
    assert_eq!(member.session_epoch, 0);
    let out = changes::sign_out_everywhere(conn, &as_admin(&root), member.id).expect("sign out");
    assert_eq!(out.session_epoch, 1);
    let off = changes::update_user(conn, &as_admin(&root), member.id, &UserPatch::active(false))
        .expect("deactivate");
    assert_eq!(off.user.session_epoch, 2);
    let on = changes::update_user(conn, &as_admin(&root), member.id, &UserPatch::active(true))
        .expect("activate");
    assert_eq!(on.user.session_epoch, 2, "reactivating revives no session");
    // Kakao may end a person's sessions and deactivate them, nothing more.
    changes::sign_out_everywhere(conn, &Actor::Kakao, member.id).expect("Kakao ends sessions");
    let last = w.audit().pop().expect("row");
    assert_eq!(
        (last.via.as_str(), last.actor_email.as_str()),
        ("kakao", "(Kakao)")
    );
}

#[test]
fn bulk_actions_apply_to_each_under_the_same_rules() {
    let w = World::new();
    let staff = w.user(Role::Staff, "staff@example.com");
    let root = w.user(Role::Superuser, "root@example.com");
    let a = w.user(Role::Member, "a@example.com");
    let b = w.user(Role::Member, "b@example.com");
    let mark = w.audit().len();
    let conn = &mut *w.conn() as &mut DbConnection;
    let ids = [a.id, b.id, root.id, a.id, 999_999];
    let outcome =
        changes::bulk(conn, &as_admin(&staff), &ids, BulkAction::Deactivate).expect("bulk");
    assert_eq!(
        (outcome.applied, outcome.skipped),
        (2, 2),
        "duplicates count once"
    );
    let rows = w.audit_since(mark);
    assert_eq!(rows.len(), 2);
    assert!(
        rows.iter()
            .all(|r| r.action == "deactivate" && r.via == "admin")
    );
    let too_many: Vec<i64> = (1..=201).collect();
    assert!(matches!(
        changes::bulk(conn, &as_admin(&staff), &too_many, BulkAction::SignOut),
        Err(ChangeError::Invalid(_))
    ));
}
