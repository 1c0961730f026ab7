//! `UserManager`: the rules that make a user, as Django's `BaseUserManager`.
//!
//! `create_user` normalizes and validates every field and makes an ordinary user (staff and
//! superuser flags false); `create_superuser` does the same and sets both flags, refusing an
//! explicit `false` as Django does. They build the validated [`NewUser`]; inserting it (with
//! the uniqueness check, the permission check and the audit row) is the change service's job,
//! `users::changes::create_user`, which the CLI, Kakao sign-up, the API and the admin all call.

use std::collections::BTreeMap;

use super::model::{NewUser, Provider};
use crate::db;

/// Longest email accepted (RFC 5321 path limit).
pub const EMAIL_MAX: usize = 254;
/// Longest name accepted, in characters.
pub const NAME_MAX: usize = 50;
/// Oldest age accepted.
pub const AGE_MAX: i32 = 150;
/// What a person is told when the email they gave belongs to another account.
pub const EMAIL_TAKEN: &str = "이미 다른 회원이 쓰는 이메일입니다.";

/// Field name -> messages, shaped like DRF's validation errors.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldErrors(pub BTreeMap<String, Vec<String>>);

impl FieldErrors {
    pub fn add(&mut self, field: &str, message: impl Into<String>) {
        self.0
            .entry(field.to_owned())
            .or_default()
            .push(message.into());
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
    pub fn get(&self, field: &str) -> &[String] {
        self.0.get(field).map(Vec::as_slice).unwrap_or(&[])
    }
    /// Add every message of `other`.
    pub fn merge(&mut self, other: FieldErrors) {
        for (field, messages) in other.0 {
            self.0.entry(field).or_default().extend(messages);
        }
    }
    /// One field with one message.
    pub fn single(field: &str, message: impl Into<String>) -> FieldErrors {
        let mut errors = FieldErrors::default();
        errors.add(field, message);
        errors
    }
    pub fn into_result(self) -> Result<(), FieldErrors> {
        if self.is_empty() { Ok(()) } else { Err(self) }
    }
}

impl std::fmt::Display for FieldErrors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let parts: Vec<String> = self
            .0
            .iter()
            .map(|(k, v)| format!("{k}: {}", v.join(" ")))
            .collect();
        f.write_str(&parts.join("; "))
    }
}

/// What a caller supplies to create a user. Flags left `None` take the manager's defaults.
#[derive(Debug, Clone, Default)]
pub struct CreateUser {
    pub email: String,
    pub name: Option<String>,
    pub age: Option<i32>,
    pub provider: String,
    pub is_active: Option<bool>,
    pub is_staff: Option<bool>,
    pub is_superuser: Option<bool>,
}

/// Characters that change how text is shown without showing themselves: bidirectional
/// controls (which can reverse `moc.elpmaxe@` into something else on screen), zero-width and
/// other invisible format characters (which make two different names look the same), and the
/// blank fillers (a Hangul filler is the classic "empty" Korean nickname). The variation
/// selector U+FE0F stays allowed: emoji such as ❤️ need it.
pub fn is_invisible_format(c: char) -> bool {
    matches!(c,
        '\u{00AD}' | '\u{034F}' | '\u{061C}' | '\u{115F}' | '\u{1160}'
        | '\u{17B4}' | '\u{17B5}' | '\u{180B}'..='\u{180F}'
        | '\u{200B}'..='\u{200F}'
        | '\u{202A}'..='\u{202E}'
        | '\u{2060}'..='\u{2064}'
        | '\u{2066}'..='\u{206F}'
        | '\u{2800}' | '\u{3164}'
        | '\u{FE00}'..='\u{FE0E}'
        | '\u{FEFF}' | '\u{FFA0}'
        | '\u{1D173}'..='\u{1D17A}'
        | '\u{E0000}'..='\u{E007F}')
}

/// The manager. Stateless: builds validated users for the change service.
pub struct UserManager;

impl UserManager {
    /// Trim and lowercase an email. Lowercasing the whole address (not just the domain, as
    /// Django does) makes uniqueness case-insensitive on both backends.
    pub fn normalize_email(raw: &str) -> String {
        raw.trim().to_lowercase()
    }

    /// Check an already-normalized email; messages are for people. Only ASCII addresses are
    /// accepted (an internationalized domain as its `xn--` form): that refuses look-alikes such
    /// as a fullwidth `＠`, a Cyrillic `е` in the domain, and invisible characters.
    pub fn email_problem(email: &str) -> Option<&'static str> {
        if email.is_empty() {
            return Some("이메일은 필수입니다.");
        }
        if email.chars().count() > EMAIL_MAX {
            return Some("이메일은 254자 이하여야 합니다.");
        }
        if !email.is_ascii() {
            return Some(
                "이메일은 영문(ASCII) 주소여야 합니다. 국제화 도메인은 xn--로 시작하는 형태로 입력하세요.",
            );
        }
        let Some((local, domain)) = email.rsplit_once('@') else {
            return Some("올바른 이메일 주소가 아닙니다.");
        };
        let bad_char =
            |c: char| c.is_whitespace() || c.is_control() || "<>()[]\\,;:\"@".contains(c);
        let domain_ok = domain.len() <= 253
            && domain.contains('.')
            && domain.split('.').all(|label| {
                !label.is_empty()
                    && label.len() <= 63
                    && !label.starts_with('-')
                    && !label.ends_with('-')
                    && label.chars().all(|c| c.is_alphanumeric() || c == '-')
            });
        let local_ok = !local.is_empty()
            && local.len() <= 64
            && !local.starts_with('.')
            && !local.ends_with('.')
            && !local.contains("..")
            && !local.chars().any(bad_char);
        if domain_ok && local_ok {
            None
        } else {
            Some("올바른 이메일 주소가 아닙니다.")
        }
    }

    /// Normalize a name: NFC (so that "한" typed as one character and as its jamo are the
    /// same name), trimmed, empty means none.
    pub fn normalize_name(raw: Option<&str>) -> Option<String> {
        use unicode_normalization::UnicodeNormalization;
        raw.map(|s| s.nfc().collect::<String>())
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty())
    }

    pub fn name_problem(name: &str) -> Option<&'static str> {
        if name.chars().count() > NAME_MAX {
            Some("이름은 50자 이하여야 합니다.")
        } else if name.chars().any(char::is_control) {
            Some("이름에 제어 문자를 쓸 수 없습니다.")
        } else if name.chars().any(is_invisible_format) {
            Some("이름에 보이지 않는 서식 문자(방향 제어, 폭 없는 문자)를 쓸 수 없습니다.")
        } else {
            None
        }
    }

    pub fn age_problem(age: i32) -> Option<&'static str> {
        if (0..=AGE_MAX).contains(&age) {
            None
        } else {
            Some("나이는 0에서 150 사이여야 합니다.")
        }
    }

    /// Validate and normalize everything but uniqueness (the database's to decide).
    fn prepare(input: &CreateUser) -> Result<NewUser, FieldErrors> {
        let mut errors = FieldErrors::default();
        let email = Self::normalize_email(&input.email);
        if let Some(p) = Self::email_problem(&email) {
            errors.add("email", p);
        }
        let name = Self::normalize_name(input.name.as_deref());
        if let Some(p) = name.as_deref().and_then(Self::name_problem) {
            errors.add("name", p);
        }
        if let Some(p) = input.age.and_then(Self::age_problem) {
            errors.add("age", p);
        }
        let provider = input.provider.trim();
        if provider.is_empty() {
            errors.add("provider", "가입 경로(provider)는 필수입니다.");
        } else if Provider::parse(provider).is_none() {
            errors.add(
                "provider",
                format!(
                    "알 수 없는 가입 경로입니다: {provider} (가능한 값: {})",
                    Provider::ALL.map(Provider::as_str).join(", ")
                ),
            );
        }
        errors.into_result()?;
        Ok(NewUser {
            email,
            name,
            age: input.age,
            provider: provider.to_owned(),
            is_active: input.is_active.unwrap_or(true),
            is_staff: false,
            is_superuser: false,
            date_joined: db::now(),
            last_login: None,
        })
    }

    /// An ordinary user: `is_staff` and `is_superuser` are false, and asking for either is
    /// refused (Django's `create_user`).
    pub fn create_user(input: &CreateUser) -> Result<NewUser, FieldErrors> {
        let mut errors = FieldErrors::default();
        if input.is_staff == Some(true) {
            errors.add(
                "is_staff",
                "create_user는 스태프를 만들지 않습니다. create_superuser를 쓰세요.",
            );
        }
        if input.is_superuser == Some(true) {
            errors.add(
                "is_superuser",
                "create_user는 슈퍼유저를 만들지 않습니다. create_superuser를 쓰세요.",
            );
        }
        errors.into_result()?;
        Self::prepare(input)
    }

    /// A superuser: validated as `create_user`, then staff and superuser. Like Django, an
    /// explicit `is_staff=false` or `is_superuser=false` is refused.
    pub fn create_superuser(input: &CreateUser) -> Result<NewUser, FieldErrors> {
        let mut errors = FieldErrors::default();
        if input.is_staff == Some(false) {
            errors.add("is_staff", "슈퍼유저는 is_staff=true여야 합니다.");
        }
        if input.is_superuser == Some(false) {
            errors.add("is_superuser", "슈퍼유저는 is_superuser=true여야 합니다.");
        }
        if input.is_active == Some(false) {
            errors.add("is_active", "슈퍼유저는 활성 상태여야 합니다.");
        }
        errors.into_result()?;
        let mut new = Self::prepare(input)?;
        new.is_staff = true;
        new.is_superuser = true;
        Ok(new)
    }

    /// A staff member who is not a superuser (made by superusers through the admin or the API).
    pub fn create_staff(input: &CreateUser) -> Result<NewUser, FieldErrors> {
        let mut new = Self::prepare(input)?;
        new.is_staff = true;
        Ok(new)
    }

    /// A form's age text: empty is none, otherwise a whole number within the rule.
    pub fn parse_age(text: &str) -> Result<Option<i32>, &'static str> {
        match text.trim() {
            "" => Ok(None),
            t => {
                let age = t.parse::<i32>().map_err(|_| "나이는 숫자로 입력하세요.")?;
                match Self::age_problem(age) {
                    Some(p) => Err(p),
                    None => Ok(Some(age)),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_trimmed_and_lowercased() {
        assert_eq!(
            UserManager::normalize_email("  Hong.GilDong@Example.COM "),
            "hong.gildong@example.com"
        );
    }

    #[test]
    fn email_syntax_rules() {
        for ok in ["a@b.co", "hong+tag@example.com", "x_y@sub.example.kr"] {
            assert_eq!(UserManager::email_problem(ok), None, "{ok}");
        }
        let long = format!("{}@example.com", "a".repeat(250));
        for bad in [
            "",
            "plain",
            "a@b",
            "@b.co",
            "a@.co",
            "a b@c.co",
            "a@b..co",
            ".a@b.co",
            "a@-b.co",
            "a\u{0}@b.co",
            "a@b.co\n",
            "a\u{FF20}b.co",
            "a@ex\u{0430}mple.com",
            "a\u{202E}@b.co",
            "a\u{200B}b@c.co",
            &long,
        ] {
            assert!(UserManager::email_problem(bad).is_some(), "{bad:?}");
        }
    }

    #[test]
    fn name_rules() {
        assert_eq!(UserManager::normalize_name(Some("  ")), None);
        assert_eq!(
            UserManager::normalize_name(Some(" 홍길동 ")),
            Some("홍길동".into())
        );
        assert!(UserManager::name_problem(&"가".repeat(50)).is_none());
        assert!(UserManager::name_problem(&"가".repeat(51)).is_some());
        assert!(UserManager::name_problem("a\u{7}b").is_some());
        assert!(
            UserManager::name_problem("길동\u{202E}").is_some(),
            "bidi control"
        );
        assert!(
            UserManager::name_problem("길\u{200B}동").is_some(),
            "zero width"
        );
        assert!(UserManager::name_problem("홍길동 🙂").is_none());
        // The jamo of 한 composed into one character.
        assert_eq!(
            UserManager::normalize_name(Some("\u{1112}\u{1161}\u{11AB}")),
            Some("한".to_owned())
        );
    }

    #[test]
    fn flags_follow_djangos_create_user_and_create_superuser() {
        let input = CreateUser {
            email: "A@B.co".into(),
            provider: "local".into(),
            ..CreateUser::default()
        };
        let member = UserManager::create_user(&input).expect("member");
        assert!(!member.is_staff() && !member.is_superuser());
        assert_eq!(member.email(), "a@b.co");
        let root = UserManager::create_superuser(&input).expect("superuser");
        assert!(root.is_staff() && root.is_superuser());
        let staff = UserManager::create_staff(&input).expect("staff");
        assert!(staff.is_staff() && !staff.is_superuser());
        let raised = CreateUser {
            is_staff: Some(true),
            ..input.clone()
        };
        assert_eq!(
            UserManager::create_user(&raised)
                .expect_err("refused")
                .get("is_staff")
                .len(),
            1
        );
        let lowered = CreateUser {
            is_superuser: Some(false),
            ..input
        };
        assert_eq!(
            UserManager::create_superuser(&lowered)
                .expect_err("refused")
                .get("is_superuser")
                .len(),
            1
        );
    }

    #[test]
    fn age_text_parses_or_says_why_not() {
        assert_eq!(UserManager::parse_age(" 30 "), Ok(Some(30)));
        assert_eq!(UserManager::parse_age(""), Ok(None));
        assert_eq!(
            UserManager::parse_age("abc"),
            Err("나이는 숫자로 입력하세요.")
        );
        assert!(
            UserManager::parse_age("151")
                .expect_err("too old")
                .contains("150")
        );
    }

    #[test]
    fn age_rules() {
        assert!(UserManager::age_problem(0).is_none());
        assert!(UserManager::age_problem(150).is_none());
        assert!(UserManager::age_problem(-1).is_some());
        assert!(UserManager::age_problem(151).is_some());
    }
}
