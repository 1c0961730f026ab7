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

    /// Our own app credentials were refused (KOE010 bad secret, KOE101 unknown client id):
    /// an operator has to fix the configuration.
    pub fn is_misconfiguration(&self) -> bool {
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
        let timeout = KakaoError::Transport(HttpError::Timeout);
        assert_eq!(timeout.class(), ErrorClass::Temporary);
        assert!(timeout.is_timeout());
        assert_eq!(
            KakaoError::Transport(HttpError::ServerError(503)).class(),
            ErrorClass::Temporary
        );
    }
}
