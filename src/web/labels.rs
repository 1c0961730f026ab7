//! How pages write things: times in Korea's time zone, and the Korean names of providers,
//! roles and audit actions. Each defined once, for the profile page and the admin alike.

use chrono::NaiveDateTime;

use crate::users::audit::AuditAction;
use crate::users::model::Provider;
use crate::users::permissions::Role;

/// A stored time as people read it: Korean wall-clock time, or "-" for never.
pub fn format_time(t: Option<NaiveDateTime>) -> String {
    match t {
        Some(t) => crate::kst::from_utc(t)
            .format("%Y-%m-%d %H:%M (KST)")
            .to_string(),
        None => "-".to_owned(),
    }
}

/// How a person signed up.
pub fn provider_label(provider: &str) -> &'static str {
    match Provider::parse(provider) {
        Some(Provider::Kakao) => "카카오",
        Some(Provider::Local) => "관리자 등록",
        None => "기타",
    }
}

/// A role.
pub fn role_label(role: Role) -> &'static str {
    match role {
        Role::Member => "일반 회원",
        Role::Staff => "스태프",
        Role::Superuser => "최고 관리자",
    }
}

/// An audit action (by its stored name; "기타" for one this version does not know).
pub fn action_label(action: &str) -> &'static str {
    match AuditAction::parse(action) {
        Some(AuditAction::Create) => "생성",
        Some(AuditAction::Update) => "수정",
        Some(AuditAction::Activate) => "활성화",
        Some(AuditAction::Deactivate) => "비활성화",
        Some(AuditAction::SignOutEverywhere) => "모든 기기에서 로그아웃",
        Some(AuditAction::Delete) => "삭제",
        Some(AuditAction::SetPassword) => "비상 비밀번호 설정",
        Some(AuditAction::Link) => "카카오 연결",
        Some(AuditAction::KakaoUnlink) => "카카오 연결 끊김",
        Some(AuditAction::KakaoDisable) => "카카오계정 정지",
        Some(AuditAction::KakaoEnable) => "카카오계정 정지 해제",
        Some(AuditAction::EndSession) => "기기 로그아웃",
        None => "기타",
    }
}

/// The door a change came through (the audit log's `via`).
pub fn via_label(via: &str) -> &'static str {
    match via {
        "api" => "API",
        "admin" => "관리 화면",
        "profile" => "내 정보",
        "kakao_login" => "카카오 로그인",
        "cli" => "명령줄",
        "kakao" => "카카오",
        _ => "-",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_shown_in_korea() {
        let t = chrono::NaiveDate::from_ymd_opt(2026, 12, 3)
            .and_then(|d| d.and_hms_opt(23, 30, 0))
            .expect("time");
        assert_eq!(format_time(Some(t)), "2026-12-04 08:30 (KST)");
        assert_eq!(format_time(None), "-");
    }

    #[test]
    fn every_action_has_a_name() {
        for action in AuditAction::ALL {
            assert_ne!(action_label(action.as_str()), "기타", "{action:?}");
        }
        assert_eq!(provider_label("kakao"), "카카오");
        assert_eq!(provider_label("mystery"), "기타");
    }
}
