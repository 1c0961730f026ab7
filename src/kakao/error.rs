//! Typed Kakao failures, classified by Kakao's error code (never by its message).

use super::http::HttpError;

/// What kind of failure it was, which decides the answer we give.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    /// Kakao is having trouble (-1, -7, -603, -9798, KOE003, 5xx, timeouts): retry later;
    /// never treat a token as invalid because of it.
    Temporary,
    /// The access token is invalid or expired (-401).
    InvalidToken,
    /// Kakao says the request or the token is malformed (-2).
    Malformed,
    /// Anything else: the token, code, app or user can no longer be used.
    Other,
}

/// A failed call to Kakao.
#[derive(Debug, thiserror::Error)]
pub enum KakaoError {
    #[error(transparent)]
    Transport(#[from] HttpError),
    /// kauth answered `{"error", "error_description", "error_code"}`.
    #[error("Kakao auth error {error} ({})", error_code.as_deref().unwrap_or("-"))]
    Auth {
        error: String,
        error_code: Option<String>,
    },
    /// kapi answered `{"msg", "code"}`.
    #[error("Kakao API error code {code} (HTTP {status})")]
    Api { status: u16, code: i64 },
    /// The answer was not what Kakao sends (not JSON, wrong shape, unexpected status).
    #[error("malformed answer from Kakao: {0}")]
    Malformed(String),
}

/// What a KOE code from Kakao's token endpoint means: for the person (Korean, on the page)
/// and for the operator (the log line, and `kakao-login check`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Koe {
    pub code: &'static str,
    /// The person's page says this.
    pub person: &'static str,
    /// What the operator should fix (or what happened, when nothing is to fix).
    pub operator: &'static str,
    /// Our configuration is wrong: nobody can sign in until it is fixed.
    pub misconfigured: bool,
}

/// The KOE codes the token endpoint answers (kakao-api.md §1.5, §3); anything else is shown
/// by its code alone.
pub const KOE_CODES: &[Koe] = &[
    Koe {
        code: "KOE101",
        person: "이 서비스의 카카오 앱 설정이 올바르지 않아 로그인할 수 없습니다 (KOE101). 관리자에게 문의하세요.",
        operator: "KAKAO_CLIENT_ID is not the REST API key of a Kakao app: copy it from Kakao Developers > App > App Keys > REST API key",
        misconfigured: true,
    },
    Koe {
        code: "KOE010",
        person: "이 서비스의 카카오 앱 설정이 올바르지 않아 로그인할 수 없습니다 (KOE010). 관리자에게 문의하세요.",
        operator: "KAKAO_CLIENT_SECRET is wrong or missing: Kakao Login > Security > Client secret (generate it, set it to \"used\", copy it)",
        misconfigured: true,
    },
    Koe {
        code: "KOE303",
        person: "이 서비스의 카카오 로그인 주소 설정이 맞지 않습니다 (KOE303). 관리자에게 문의하세요.",
        operator: "the redirect URI of the token request differs from the authorize request's: KAKAO_REDIRECT_URI must be identical on every instance and registered at Kakao byte for byte",
        misconfigured: true,
    },
    Koe {
        code: "KOE006",
        person: "이 서비스의 카카오 로그인 주소가 카카오에 등록되어 있지 않습니다 (KOE006). 관리자에게 문의하세요.",
        operator: "the redirect URI is not registered: add KAKAO_REDIRECT_URI under Kakao Login > Redirect URI",
        misconfigured: true,
    },
    Koe {
        code: "KOE009",
        person: "이 서비스가 카카오에 등록되어 있지 않습니다 (KOE009). 관리자에게 문의하세요.",
        operator: "the site is not registered for this app: add the PUBLIC_URL domain under App > Platform > Web",
        misconfigured: true,
    },
    Koe {
        code: "KOE004",
        person: "이 서비스의 카카오 로그인이 꺼져 있습니다 (KOE004). 관리자에게 문의하세요.",
        operator: "Kakao Login is off for this app: turn it on under Kakao Login > Activation",
        misconfigured: true,
    },
    Koe {
        code: "KOE205",
        person: "이 서비스가 요청한 동의 항목이 카카오에 설정되어 있지 않습니다 (KOE205). 관리자에게 문의하세요.",
        operator: "a requested consent item is not configured: set profile_nickname and account_email under Kakao Login > Consent Items (email needs a business app or the permission; openid needs OpenID Connect on)",
        misconfigured: true,
    },
    Koe {
        code: "KOE320",
        person: "로그인 요청이 만료되었거나 이미 처리되었습니다 (KOE320). 처음부터 다시 로그인하세요.",
        operator: "the authorization code was used already or expired (a double submit, a back button, or a callback slower than about 10 minutes)",
        misconfigured: false,
    },
    Koe {
        code: "KOE322",
        person: "카카오 로그인 정보가 만료되었습니다 (KOE322). 다시 로그인하세요.",
        operator: "the refresh token is expired or unknown: the person has to sign in again",
        misconfigured: false,
    },
    Koe {
        code: "KOE237",
        person: "로그인 요청이 많아 카카오가 잠시 받지 않습니다 (KOE237). 잠시 후 다시 시도하세요.",
        operator: "Kakao's token issuance limit for this app is exceeded: requests are refused for a while",
        misconfigured: false,
    },
    Koe {
        code: "KOE003",
        person: "카카오 서버에 일시적인 문제가 있습니다 (KOE003). 잠시 후 다시 시도하세요.",
        operator: "a temporary Kakao server error: nothing to fix",
        misconfigured: false,
    },
];

/// kapi codes that mean "temporarily unavailable, try again".
const TEMPORARY_API_CODES: &[i64] = &[-1, -7, -10, -603, -9798];
/// KOE codes that mean the same on kauth.
const TEMPORARY_KOE: &[&str] = &["KOE003", "KOE237"];

impl KakaoError {
    pub fn class(&self) -> ErrorClass {
        match self {
            KakaoError::Transport(_) | KakaoError::Malformed(_) => ErrorClass::Temporary,
            KakaoError::Api { code, .. } => match *code {
                -401 => ErrorClass::InvalidToken,
                -2 => ErrorClass::Malformed,
                c if TEMPORARY_API_CODES.contains(&c) => ErrorClass::Temporary,
                _ => ErrorClass::Other,
            },
            KakaoError::Auth { error, error_code } => {
                if error_code
                    .as_deref()
                    .is_some_and(|c| TEMPORARY_KOE.contains(&c))
                    || error == "server_error"
                {
                    ErrorClass::Temporary
                } else {
                    ErrorClass::Other
                }
            }
        }
    }

    /// A timeout (answered as 504 rather than 502).
    pub fn is_timeout(&self) -> bool {
        matches!(self, KakaoError::Transport(HttpError::Timeout))
    }

    /// The KOE code's meaning, when Kakao sent a code we know.
    pub fn koe(&self) -> Option<&'static Koe> {
        let KakaoError::Auth {
            error_code: Some(code),
            ..
        } = self
        else {
            return None;
        };
        KOE_CODES.iter().find(|k| k.code == code)
    }

    /// Our own app configuration was refused (KOE010 bad secret, KOE101 unknown client id,
    /// KOE303 redirect URI, ...): an operator has to fix it.
    pub fn is_misconfiguration(&self) -> bool {
        if let Some(koe) = self.koe() {
            return koe.misconfigured;
        }
        matches!(self, KakaoError::Auth { error, .. } if error == "invalid_client" || error == "misconfigured")
    }

    /// A short code for logs and `data-error` attributes.
    pub fn log_code(&self) -> String {
        match self {
            KakaoError::Transport(HttpError::Timeout) => "timeout".into(),
            KakaoError::Transport(HttpError::ServerError(s)) => format!("http_{s}"),
            KakaoError::Transport(HttpError::Redirect(s)) => format!("redirect_{s}"),
            KakaoError::Transport(_) => "transport".into(),
            KakaoError::Auth { error, error_code } => {
                error_code.clone().unwrap_or_else(|| error.clone())
            }
            KakaoError::Api { code, .. } => code.to_string(),
            KakaoError::Malformed(_) => "malformed".into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api(code: i64) -> KakaoError {
        KakaoError::Api { status: 400, code }
    }

    #[test]
    fn api_codes_are_classified_by_code() {
        assert_eq!(api(-1).class(), ErrorClass::Temporary);
        assert_eq!(api(-9798).class(), ErrorClass::Temporary);
        assert_eq!(api(-2).class(), ErrorClass::Malformed);
        assert_eq!(api(-401).class(), ErrorClass::InvalidToken);
        assert_eq!(api(-101).class(), ErrorClass::Other);
        assert_eq!(api(-3).class(), ErrorClass::Other);
    }

    #[test]
    fn the_http_status_does_not_decide() {
        // -1 arrives as HTTP 400 but is temporary; -401 is invalid whatever the status.
        let temp = KakaoError::Api {
            status: 400,
            code: -1,
        };
        assert_eq!(temp.class(), ErrorClass::Temporary);
        let invalid = KakaoError::Api {
            status: 400,
            code: -401,
        };
        assert_eq!(invalid.class(), ErrorClass::InvalidToken);
    }

    #[test]
    fn auth_errors_and_transport_failures() {
        let koe003 = KakaoError::Auth {
            error: "server_error".into(),
            error_code: Some("KOE003".into()),
        };
        assert_eq!(koe003.class(), ErrorClass::Temporary);
        let koe320 = KakaoError::Auth {
            error: "invalid_grant".into(),
            error_code: Some("KOE320".into()),
        };
        assert_eq!(koe320.class(), ErrorClass::Other);
        assert!(!koe320.is_misconfiguration());
        let koe010 = KakaoError::Auth {
            error: "invalid_client".into(),
            error_code: Some("KOE010".into()),
        };
        assert!(koe010.is_misconfiguration());
        assert!(
            koe010
                .koe()
                .is_some_and(|k| k.operator.contains("KAKAO_CLIENT_SECRET"))
        );
        let koe303 = KakaoError::Auth {
            error: "invalid_grant".into(),
            error_code: Some("KOE303".into()),
        };
        assert!(
            koe303.is_misconfiguration(),
            "a redirect URI mismatch is ours to fix"
        );
        assert!(!koe320.koe().is_some_and(|k| k.misconfigured));
        let unknown = KakaoError::Auth {
            error: "invalid_request".into(),
            error_code: Some("KOE999".into()),
        };
        assert!(unknown.koe().is_none() && !unknown.is_misconfiguration());
        let timeout = KakaoError::Transport(HttpError::Timeout);
        assert_eq!(timeout.class(), ErrorClass::Temporary);
        assert!(timeout.is_timeout());
        assert_eq!(
            KakaoError::Transport(HttpError::ServerError(503)).class(),
            ErrorClass::Temporary
        );
    }
}
