//! UserManager's rules against a real database (SQLite, or PostgreSQL with TEST_DATABASE_URL),
//! through the one way users are created: `changes::create_user`, here by the operator.

use kakao_login::db::DbConnection;
use kakao_login::users::changes::{self, ChangeError};
use kakao_login::users::manager::CreateUser;
use kakao_login::users::model::User;
use kakao_login::users::permissions::{Actor, Role};

use crate::support::TestDb;

fn input(email: &str) -> CreateUser {
    CreateUser {
        email: email.into(),
        provider: "local".into(),
        ..CreateUser::default()
    }
}

fn create_user(conn: &mut DbConnection, input: &CreateUser) -> Result<User, ChangeError> {
    changes::create_user(conn, &Actor::Cli, input, Role::Member)
}

fn create_superuser(conn: &mut DbConnection, input: &CreateUser) -> Result<User, ChangeError> {
    changes::create_user(conn, &Actor::Cli, input, Role::Superuser)
}

fn with_conn(f: impl FnOnce(&mut DbConnection)) {
    let db = TestDb::new();
    let pool = db.pool();
    let mut conn = pool.get().expect("connection");
    f(&mut conn);
}

#[test]
fn create_user_makes_an_ordinary_active_user_with_a_normalized_email() {
    with_conn(|conn| {
        let user = create_user(
            conn,
            &CreateUser {
                name: Some(" 홍길동 ".into()),
                age: Some(30),
                ..input("  Hong@Example.COM ")
            },
        )
        .expect("created");
        assert_eq!(user.email, "hong@example.com");
        assert_eq!(user.name.as_deref(), Some("홍길동"));
        assert_eq!(user.age, Some(30));
        assert_eq!(user.provider, "local");
        assert!(user.is_active);
        assert!(!user.is_staff && !user.is_superuser);
        assert!(user.last_login.is_none());
    });
}

#[test]
fn create_superuser_sets_both_flags() {
    with_conn(|conn| {
        let user = create_superuser(conn, &input("root@example.com")).expect("created");
        assert!(user.is_staff && user.is_superuser && user.is_active);
    });
}

#[test]
fn create_superuser_refuses_explicit_false_flags_like_django() {
    with_conn(|conn| {
        for (staff, superuser, field) in [
            (Some(false), None, "is_staff"),
            (None, Some(false), "is_superuser"),
        ] {
            let err = create_superuser(
                conn,
                &CreateUser {
                    is_staff: staff,
                    is_superuser: superuser,
                    ..input("x@example.com")
                },
            )
            .expect_err("refused");
            match err {
                ChangeError::Invalid(fields) => assert_eq!(fields.get(field).len(), 1, "{fields}"),
                other => panic!("expected a field error, got {other:?}"),
            }
        }
    });
}

#[test]
fn create_user_refuses_to_make_staff() {
    with_conn(|conn| {
        let err = create_user(
            conn,
            &CreateUser {
                is_staff: Some(true),
                ..input("x@example.com")
            },
        )
        .expect_err("refused");
        assert!(matches!(err, ChangeError::Invalid(f) if !f.get("is_staff").is_empty()));
    });
}

#[test]
fn duplicate_emails_are_a_typed_error_whatever_their_case() {
    with_conn(|conn| {
        create_user(conn, &input("dup@example.com")).expect("first");
        let err = create_user(conn, &input("DUP@Example.com")).expect_err("second");
        assert!(matches!(err, ChangeError::DuplicateEmail), "{err:?}");
        let err = create_superuser(conn, &input("dup@example.com")).expect_err("third");
        assert!(matches!(err, ChangeError::DuplicateEmail), "{err:?}");
    });
}

#[test]
fn each_field_rule_is_enforced() {
    with_conn(|conn| {
        let cases: Vec<(CreateUser, &str)> = vec![
            (input(""), "email"),
            (input("not-an-email"), "email"),
            (input(&format!("{}@example.com", "a".repeat(250))), "email"),
            (input("nul\u{0}@example.com"), "email"),
            (
                CreateUser {
                    provider: String::new(),
                    ..input("a@example.com")
                },
                "provider",
            ),
            (
                CreateUser {
                    provider: "naver".into(),
                    ..input("a@example.com")
                },
                "provider",
            ),
            (
                CreateUser {
                    age: Some(-1),
                    ..input("a@example.com")
                },
                "age",
            ),
            (
                CreateUser {
                    age: Some(151),
                    ..input("a@example.com")
                },
                "age",
            ),
            (
                CreateUser {
                    name: Some("가".repeat(51)),
                    ..input("a@example.com")
                },
                "name",
            ),
            (
                CreateUser {
                    name: Some("a\u{0}b".into()),
                    ..input("a@example.com")
                },
                "name",
            ),
        ];
        for (bad, field) in cases {
            match create_user(conn, &bad) {
                Err(ChangeError::Invalid(fields)) => {
                    assert!(!fields.get(field).is_empty(), "{field}: {fields}")
                }
                other => panic!("{field}: expected a field error, got {other:?}"),
            }
        }
        // Boundaries are accepted.
        create_user(
            conn,
            &CreateUser {
                age: Some(150),
                name: Some("가".repeat(50)),
                ..input("edge@example.com")
            },
        )
        .expect("boundaries are valid");
        create_user(
            conn,
            &CreateUser {
                age: Some(0),
                ..input("zero@example.com")
            },
        )
        .expect("age 0 is valid");
    });
}
