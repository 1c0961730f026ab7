//! Settings: `config/default.toml` -> `config/{APP_ENV}.toml` -> environment variables.
//!
//! Loaded once at start-up and passed to the app in `web::Data`; nothing reads the environment
//! after that, so every test can build its own app with its own settings.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use figment::Figment;
use figment::providers::{Format, Serialized, Toml};
use serde::{Deserialize, Serialize};

use crate::telemetry::logging::LogFormat;

/// The defaults, compiled in so the binary works from any directory.
pub const DEFAULT_TOML: &str = include_str!("../config/default.toml");

/// Every setting's name; the environment variable is the same name in upper case.
pub const KEYS: &[&str] = &[
    "bind",
    "public_url",
    "app_env",
    "database_url",
    "database_pool_size",
    "database_timeout_secs",
    "redis_url",
    "session_key",
    "session_lifetime_hours",
    "data_dir",
    "workers",
    "kakao_client_id",
    "kakao_client_secret",
    "kakao_app_id",
    "kakao_admin_key",
    "kakao_redirect_uri",
    "kakao_oidc",
    "kakao_oidc_issuer",
    "kakao_allowed_audiences",
    "kakao_logout_redirect_uri",
    "kakao_auth_base_url",
    "kakao_api_base_url",
    "kakao_connect_timeout_ms",
    "kakao_timeout_ms",
    "login_state_ttl_secs",
    "trusted_proxies",
    "log_format",
    "metrics_bind",
    "shutdown_timeout_secs",
    "shutdown_drain_secs",
    "housekeeping_interval_secs",
];

/// Where the service runs: development allows generated keys and the Kakao stand-in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AppEnv {
    Development,
    Production,
}

impl AppEnv {
    pub fn as_str(self) -> &'static str {
        match self {
            AppEnv::Development => "development",
            AppEnv::Production => "production",
        }
    }
}

/// A secret string: never shown by `Debug` or `Display`.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// All settings, after layering. Field docs are in `config/default.toml`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    pub bind: String,
    pub public_url: String,
    pub app_env: AppEnv,
    pub database_url: String,
    pub database_pool_size: u32,
    pub database_timeout_secs: u64,
    #[serde(default)]
    pub redis_url: Option<String>,
    #[serde(default)]
    pub session_key: Option<Secret>,
    pub session_lifetime_hours: u32,
    pub data_dir: PathBuf,
    pub workers: usize,
    #[serde(default)]
    pub kakao_client_id: Option<String>,
    #[serde(default)]
    pub kakao_client_secret: Option<Secret>,
    #[serde(default)]
    pub kakao_app_id: Option<i64>,
    #[serde(default)]
    pub kakao_admin_key: Option<Secret>,
    #[serde(default)]
    pub kakao_redirect_uri: Option<String>,
    /// OpenID Connect on the web login; unset = on with the stand-in, off with real Kakao.
    #[serde(default)]
    pub kakao_oidc: Option<bool>,
    #[serde(default)]
    pub kakao_oidc_issuer: Option<String>,
    /// More app keys accepted as a mobile ID token's `aud` (comma-separated).
    #[serde(default)]
    pub kakao_allowed_audiences: Option<String>,
    #[serde(default)]
    pub kakao_logout_redirect_uri: Option<String>,
    pub kakao_auth_base_url: String,
    pub kakao_api_base_url: String,
    pub kakao_connect_timeout_ms: u64,
    pub kakao_timeout_ms: u64,
    pub login_state_ttl_secs: u64,
    /// Reverse proxies (CIDRs, comma-separated) whose `X-Forwarded-For` names the client.
    pub trusted_proxies: Option<String>,
    /// `text` or `json`.
    #[serde(default)]
    pub log_format: LogFormat,
    /// Where Prometheus metrics are served (unset: nowhere).
    #[serde(default)]
    pub metrics_bind: Option<String>,
    /// After SIGTERM, how long in-flight requests may take before they are cut.
    pub shutdown_timeout_secs: u64,
    /// After SIGTERM, how long `/readyz` answers 503 while requests are still served, so that a
    /// load balancer stops sending before the listener closes.
    pub shutdown_drain_secs: u64,
    /// How often expired sessions and used login states are purged (0: never).
    pub housekeeping_interval_secs: u64,
}

/// Why the settings could not be loaded or are not usable.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("configuration could not be read: {0}")]
    Load(String),
    #[error("configuration is not usable:\n  - {}", .0.join("\n  - "))]
    Invalid(Vec<String>),
}

impl Settings {
    /// Load from the real sources: defaults, `CONFIG_DIR` (default `config`) and the environment.
    pub fn load() -> Result<Settings, ConfigError> {
        let dir = std::env::var("CONFIG_DIR").unwrap_or_else(|_| "config".to_owned());
        let env_pairs: Vec<(String, String)> = KEYS
            .iter()
            .filter_map(|k| {
                std::env::var(k.to_uppercase())
                    .ok()
                    .map(|v| ((*k).to_owned(), v))
            })
            .collect();
        Self::load_from(Path::new(&dir), &env_pairs)
    }

    /// Load from a config folder and explicit `(key, value)` overrides (keys in lower case).
    pub fn load_from(dir: &Path, overrides: &[(String, String)]) -> Result<Settings, ConfigError> {
        let app_env = overrides
            .iter()
            .find(|(k, _)| k == "app_env")
            .map(|(_, v)| v.clone())
            .unwrap_or_else(|| "development".to_owned());
        let mut figment = Figment::new().merge(Toml::string(DEFAULT_TOML));
        if !app_env
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_')
        {
            return Err(ConfigError::Invalid(vec![format!(
                "APP_ENV must be \"development\" or \"production\", not {app_env:?}"
            )]));
        }
        let env_file = dir.join(format!("{app_env}.toml"));
        if env_file.exists() {
            figment = figment.merge(Toml::file(&env_file));
        }
        for (key, value) in overrides {
            if value.is_empty() {
                continue;
            }
            figment = figment.merge(Serialized::global(key.as_str(), coerce(key, value)));
        }
        let settings: Settings = figment.extract().map_err(|e| {
            let mut msgs: Vec<String> = e.into_iter().map(|e| e.to_string()).collect();
            msgs.dedup();
            ConfigError::Load(msgs.join("; "))
        })?;
        Ok(settings.normalized())
    }

    /// Settings for a development server or a test: the defaults with these overrides.
    pub fn development_with(overrides: &[(&str, &str)]) -> Result<Settings, ConfigError> {
        let pairs: Vec<(String, String)> = overrides
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        Self::load_from(Path::new("/nonexistent-config-dir"), &pairs)
    }

    fn normalized(mut self) -> Settings {
        fn blank_to_none(v: &mut Option<String>) {
            if v.as_deref().is_some_and(|s| s.trim().is_empty()) {
                *v = None;
            }
        }
        fn blank_secret(v: &mut Option<Secret>) {
            if v.as_ref().is_some_and(|s| s.0.trim().is_empty()) {
                *v = None;
            }
        }
        blank_to_none(&mut self.redis_url);
        blank_to_none(&mut self.kakao_client_id);
        blank_to_none(&mut self.kakao_redirect_uri);
        blank_to_none(&mut self.kakao_oidc_issuer);
        blank_to_none(&mut self.kakao_allowed_audiences);
        blank_to_none(&mut self.kakao_logout_redirect_uri);
        blank_secret(&mut self.session_key);
        blank_secret(&mut self.kakao_client_secret);
        blank_secret(&mut self.kakao_admin_key);
        if self.database_pool_size == 0 {
            self.database_pool_size = default_pool_size();
        }
        while self.public_url.ends_with('/') {
            self.public_url.pop();
        }
        for base in [&mut self.kakao_auth_base_url, &mut self.kakao_api_base_url] {
            while base.ends_with('/') {
                base.pop();
            }
        }
        self
    }

    /// Check the rules that do not need the network; every problem is listed, not just the first.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let mut problems = Vec::new();
        if let Some(metrics) = &self.metrics_bind
            && metrics.parse::<SocketAddr>().is_err()
        {
            problems.push(format!(
                "METRICS_BIND must be an address with a port like 127.0.0.1:9090, not {metrics:?}"
            ));
        }
        if self.metrics_bind.as_deref() == Some(self.bind.as_str()) {
            problems.push(
                "METRICS_BIND must differ from BIND: metrics are never served on the public listener"
                    .to_owned(),
            );
        }
        if self.bind.parse::<SocketAddr>().is_err() {
            problems.push(format!(
                "BIND must be an address with a port like 127.0.0.1:8080, not {:?}",
                self.bind
            ));
        }
        match url::Url::parse(&self.public_url) {
            Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => {}
            _ => problems.push(format!(
                "PUBLIC_URL must be an http(s) URL like https://example.com, not {:?}",
                self.public_url
            )),
        }
        if let Err(e) = crate::db::DatabaseUrl::parse(&self.database_url) {
            problems.push(e.to_string());
        }
        if let Some(redis) = &self.redis_url
            && !(redis.starts_with("redis://")
                || redis.starts_with("rediss://")
                || redis.starts_with("redis+unix://")
                || redis.starts_with("unix://"))
        {
            problems.push("REDIS_URL must start with redis://, rediss:// or unix://".to_owned());
        }
        if let Some(key) = &self.session_key
            && key.0.len() < 64
        {
            problems.push(format!(
                "SESSION_KEY must be at least 64 bytes long (it is {})",
                key.0.len()
            ));
        }
        if self.session_lifetime_hours == 0 {
            problems.push("SESSION_LIFETIME_HOURS must be at least 1".to_owned());
        }
        for (name, value) in [
            ("KAKAO_AUTH_BASE_URL", &self.kakao_auth_base_url),
            ("KAKAO_API_BASE_URL", &self.kakao_api_base_url),
        ] {
            if url::Url::parse(value).is_err() {
                problems.push(format!("{name} must be a URL, not {value:?}"));
            }
        }
        for (name, value) in [
            ("KAKAO_REDIRECT_URI", &self.kakao_redirect_uri),
            ("KAKAO_LOGOUT_REDIRECT_URI", &self.kakao_logout_redirect_uri),
            ("KAKAO_OIDC_ISSUER", &self.kakao_oidc_issuer),
        ] {
            if let Some(uri) = value
                && url::Url::parse(uri).is_err()
            {
                problems.push(format!("{name} must be a URL, not {uri:?}"));
            }
        }
        if self.allowed_audiences().iter().any(|a| {
            !a.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        }) {
            problems.push(
                "KAKAO_ALLOWED_AUDIENCES must be a comma-separated list of Kakao app keys".into(),
            );
        }
        if self.kakao_timeout_ms == 0 || self.kakao_connect_timeout_ms == 0 {
            problems.push("KAKAO_TIMEOUT_MS and KAKAO_CONNECT_TIMEOUT_MS must be above 0".into());
        }
        if let Err(bad) = self.trusted_proxy_nets() {
            problems.push(format!(
                "TRUSTED_PROXIES must be a comma-separated list of addresses or CIDRs like 10.0.0.0/8, not {bad:?}"
            ));
        }
        if self.kakao_app_id.is_some_and(|id| id <= 0) {
            problems.push("KAKAO_APP_ID must be a positive number".to_owned());
        }
        if self.login_state_ttl_secs == 0 {
            problems.push("LOGIN_STATE_TTL_SECS must be above 0".to_owned());
        }
        if self.app_env == AppEnv::Production {
            if self.session_key.is_none() {
                problems.push("production needs SESSION_KEY (at least 64 bytes)".to_owned());
            }
            if self.kakao_client_id.is_none() {
                problems.push("production needs KAKAO_CLIENT_ID (the REST API key)".to_owned());
            }
            if self.kakao_app_id.is_none() {
                problems.push(
                    "production needs KAKAO_APP_ID (the numeric app ID, Kakao Developers > App > \
                     General): without it, an access token issued to any other Kakao app would \
                     be accepted by the API and the mobile sign-in"
                        .to_owned(),
                );
            }
            if !self.logout_redirect_uri().starts_with("https://") {
                problems.push(format!(
                    "production needs an https Kakao logout redirect URI, not {:?} (set PUBLIC_URL or KAKAO_LOGOUT_REDIRECT_URI)",
                    self.logout_redirect_uri()
                ));
            }
            if !self.redirect_uri().starts_with("https://") {
                problems.push(format!(
                    "production needs an https Kakao redirect URI, not {:?} (set PUBLIC_URL or KAKAO_REDIRECT_URI)",
                    self.redirect_uri()
                ));
            }
        } else if self.uses_standin() {
            // The stand-in signs anyone in as any email they type: it must be reachable from
            // this machine only, neither bound elsewhere nor published behind a proxy.
            if !self.bind_is_loopback() {
                problems.push(format!(
                    "the built-in Kakao stand-in (no KAKAO_CLIENT_ID) only runs on a loopback address; BIND is {:?}",
                    self.bind
                ));
            }
            if !self.public_url_is_loopback() {
                problems.push(format!(
                    "the built-in Kakao stand-in (no KAKAO_CLIENT_ID) only runs when PUBLIC_URL is a loopback http address (http://127.0.0.1:..., http://localhost:...); PUBLIC_URL is {:?}",
                    self.public_url
                ));
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(ConfigError::Invalid(problems))
        }
    }

    /// True when no Kakao app is configured, so the built-in stand-in plays Kakao.
    pub fn uses_standin(&self) -> bool {
        self.kakao_client_id.is_none() && self.app_env == AppEnv::Development
    }

    /// `TRUSTED_PROXIES` as networks (a bare address is a /32 or /128); the first entry that
    /// is neither, when one is not.
    pub fn trusted_proxy_nets(&self) -> Result<Vec<ipnet::IpNet>, String> {
        let Some(list) = &self.trusted_proxies else {
            return Ok(Vec::new());
        };
        list.split(',')
            .map(str::trim)
            .filter(|e| !e.is_empty())
            .map(|entry| {
                entry
                    .parse::<ipnet::IpNet>()
                    .or_else(|_| entry.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
                    .map_err(|_| entry.to_owned())
            })
            .collect()
    }

    /// Whether `PUBLIC_URL` is plain http on this machine (127.0.0.0/8, ::1 or localhost).
    pub fn public_url_is_loopback(&self) -> bool {
        let Ok(url) = url::Url::parse(&self.public_url) else {
            return false;
        };
        url.scheme() == "http"
            && match url.host() {
                Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
                Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
                Some(url::Host::Domain(name)) => name.eq_ignore_ascii_case("localhost"),
                None => false,
            }
    }

    pub fn bind_is_loopback(&self) -> bool {
        self.bind
            .parse::<SocketAddr>()
            .map(|a| a.ip().is_loopback())
            .unwrap_or(false)
    }

    /// The redirect URI sent to Kakao (byte-identical in the authorize and token requests).
    pub fn redirect_uri(&self) -> String {
        self.kakao_redirect_uri
            .clone()
            .unwrap_or_else(|| format!("{}/kakao/login/callback/", self.public_url))
    }

    /// Where Kakao sends the browser after a Kakao Account logout (registered at Kakao as a
    /// Logout Redirect URI).
    pub fn logout_redirect_uri(&self) -> String {
        self.kakao_logout_redirect_uri
            .clone()
            .unwrap_or_else(|| format!("{}/kakao/logout/callback/", self.public_url))
    }

    /// Whether the web login uses OpenID Connect: `KAKAO_OIDC`, else on with the stand-in only
    /// (real Kakao issues ID tokens only once OIDC is on in its console).
    pub fn oidc_login(&self) -> bool {
        self.kakao_oidc.unwrap_or_else(|| self.uses_standin())
    }

    /// `KAKAO_ALLOWED_AUDIENCES` as a list.
    pub fn allowed_audiences(&self) -> Vec<String> {
        self.kakao_allowed_audiences
            .as_deref()
            .unwrap_or("")
            .split(',')
            .map(str::trim)
            .filter(|a| !a.is_empty())
            .map(str::to_owned)
            .collect()
    }

    /// Cookies get the `Secure` flag when people reach the service over https.
    pub fn secure_cookies(&self) -> bool {
        self.public_url.starts_with("https://")
    }

    /// Where the data folder's generated session key lives.
    pub fn session_key_path(&self) -> PathBuf {
        self.data_dir.join("session.key")
    }
}

/// CPU cores this process may use (2 when the system cannot tell): what `WORKERS=0` and
/// `DATABASE_POOL_SIZE=0` are counted from.
pub fn cpu_cores() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get())
}

/// `DATABASE_POOL_SIZE=0`: two connections per CPU core.
fn default_pool_size() -> u32 {
    u32::try_from(cpu_cores() * 2).unwrap_or(u32::MAX)
}

/// Environment values are strings; numeric settings are turned into numbers here so that
/// figment's type errors name the key instead of failing on "expected u32, found string".
fn coerce(key: &str, value: &str) -> serde_json::Value {
    const NUMERIC: &[&str] = &[
        "database_pool_size",
        "database_timeout_secs",
        "session_lifetime_hours",
        "workers",
        "kakao_app_id",
        "kakao_connect_timeout_ms",
        "kakao_timeout_ms",
        "login_state_ttl_secs",
        "shutdown_timeout_secs",
        "shutdown_drain_secs",
        "housekeeping_interval_secs",
    ];
    if NUMERIC.contains(&key)
        && let Ok(n) = value.trim().parse::<i64>()
    {
        return serde_json::Value::from(n);
    }
    if key == "kakao_oidc" {
        match value.trim().to_ascii_lowercase().as_str() {
            "1" | "true" | "on" | "yes" => return serde_json::Value::from(true),
            "0" | "false" | "off" | "no" => return serde_json::Value::from(false),
            _ => {}
        }
    }
    serde_json::Value::from(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_load_and_validate() {
        let s = Settings::development_with(&[]).expect("defaults load");
        assert_eq!(s.bind, "127.0.0.1:8080");
        assert_eq!(s.public_url, "http://127.0.0.1:8080");
        assert_eq!(s.database_url, "sqlite://data/kakao-login.db");
        assert_eq!(
            s.redirect_uri(),
            "http://127.0.0.1:8080/kakao/login/callback/"
        );
        assert!(s.uses_standin());
        s.validate().expect("defaults are valid");
    }

    #[test]
    fn every_key_is_named_in_default_toml() {
        for key in KEYS {
            assert!(
                DEFAULT_TOML.contains(&format!("{key} =")),
                "{key} is not documented in config/default.toml"
            );
        }
    }

    /// `KEYS` is kept by hand beside `Settings`: a field missing from it could never be set
    /// from the environment, silently.
    #[test]
    fn keys_name_every_setting_and_nothing_else() {
        let settings = Settings::development_with(&[]).expect("defaults load");
        let value = serde_json::to_value(&settings).expect("serializes");
        let mut fields: Vec<&str> = value
            .as_object()
            .expect("an object")
            .keys()
            .map(String::as_str)
            .collect();
        fields.sort_unstable();
        let mut keys = KEYS.to_vec();
        keys.sort_unstable();
        assert_eq!(fields, keys);
    }

    #[test]
    fn unknown_keys_are_rejected() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("development.toml"), "bnid = \"x\"\n").expect("write");
        let err = Settings::load_from(dir.path(), &[]).expect_err("typo must fail");
        assert!(err.to_string().contains("bnid"), "{err}");
    }

    #[test]
    fn production_needs_a_long_session_key_and_a_client_id() {
        let s = Settings::development_with(&[("app_env", "production"), ("session_key", "short")])
            .expect("loads");
        let err = s.validate().expect_err("must refuse").to_string();
        assert!(
            err.contains("SESSION_KEY must be at least 64 bytes"),
            "{err}"
        );
        assert!(err.contains("KAKAO_CLIENT_ID"), "{err}");
        assert!(err.contains("KAKAO_APP_ID"), "{err}");
        assert!(err.contains("https"), "{err}");
    }

    #[test]
    fn standin_refuses_a_public_bind_address() {
        let s = Settings::development_with(&[("bind", "0.0.0.0:8080")]).expect("loads");
        let err = s.validate().expect_err("must refuse").to_string();
        assert!(err.contains("stand-in"), "{err}");
    }

    #[test]
    fn trusted_proxies_are_networks() {
        let s = Settings::development_with(&[("trusted_proxies", "10.0.0.0/8, 192.0.2.7,::1")])
            .expect("loads");
        let nets = s.trusted_proxy_nets().expect("valid");
        assert_eq!(nets.len(), 3);
        assert!(nets[1].contains(&"192.0.2.7".parse::<std::net::IpAddr>().expect("ip")));
        let bad =
            Settings::development_with(&[("trusted_proxies", "10.0.0.0/8,nginx")]).expect("loads");
        assert!(
            bad.validate()
                .expect_err("refused")
                .to_string()
                .contains("nginx")
        );
    }

    /// Bound on loopback but published behind a proxy: anyone could sign in as anyone.
    #[test]
    fn standin_refuses_a_public_url_that_is_not_loopback() {
        for public in [
            "https://staging.example.test",
            "http://10.0.0.5:8080",
            "https://127.0.0.1:8080",
        ] {
            let s = Settings::development_with(&[("public_url", public)]).expect("loads");
            let err = s.validate().expect_err(public).to_string();
            assert!(err.contains("PUBLIC_URL is"), "{public}: {err}");
        }
        for fine in [
            "http://127.0.0.1:8080",
            "http://localhost:3000",
            "http://[::1]:8080",
        ] {
            let s = Settings::development_with(&[("public_url", fine)]).expect("loads");
            s.validate().unwrap_or_else(|e| panic!("{fine}: {e}"));
        }
    }

    #[test]
    fn secrets_are_not_in_debug_output() {
        let s = Settings::development_with(&[
            ("session_key", &"k".repeat(64)),
            ("kakao_client_secret", "FAKESECRET-123"),
            ("kakao_admin_key", "ADMINKEY-456"),
        ])
        .expect("loads");
        let debug = format!("{s:?}");
        assert!(!debug.contains("FAKESECRET-123"));
        assert!(!debug.contains("ADMINKEY-456"));
        assert!(!debug.contains(&"k".repeat(64)));
    }

    #[test]
    fn numeric_environment_values_are_parsed_and_bad_ones_named() {
        let s = Settings::development_with(&[("database_pool_size", "3")]).expect("loads");
        assert_eq!(s.database_pool_size, 3);
        let err = Settings::development_with(&[("database_pool_size", "many")])
            .expect_err("must fail")
            .to_string();
        assert!(err.contains("database_pool_size"), "{err}");
    }

    #[test]
    fn a_pool_size_of_zero_means_two_per_core() {
        let cores = cpu_cores() as u32;
        let s = Settings::development_with(&[("database_pool_size", "0")]).expect("loads");
        assert_eq!(s.database_pool_size, 2 * cores);
        assert_eq!(
            Settings::development_with(&[])
                .expect("loads")
                .database_pool_size,
            2 * cores
        );
    }
}
