//! Rebuild when embedded files change, and tell the tests which services they can start.
fn main() {
    println!("cargo:rerun-if-changed=migrations");
    println!("cargo:rerun-if-changed=templates");
    println!("cargo:rerun-if-changed=config/default.toml");

    // The browser suite (tests/integration/browser.rs) needs Debian's chromium and
    // chromium-driver, the Redis tests `redis-server`; without them those tests are ignored
    // with a reason `cargo test` prints. Under CI (`CI` set) they are never ignored: a missing
    // service fails them.
    println!("cargo::rustc-check-cfg=cfg(has_browser)");
    println!("cargo::rustc-check-cfg=cfg(has_redis)");
    println!("cargo::rustc-check-cfg=cfg(has_postgres_server)");
    println!("cargo::rustc-check-cfg=cfg(ci)");
    println!("cargo:rerun-if-env-changed=PATH");
    println!("cargo:rerun-if-env-changed=CI");
    // Installing a package changes the folder; a missing file would rerun this every build.
    println!("cargo:rerun-if-changed=/usr/bin");
    if std::env::var_os("CI").is_some_and(|v| !v.is_empty()) {
        println!("cargo:rustc-cfg=ci");
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    let found = |name: &str| std::env::split_paths(&path).any(|dir| dir.join(name).is_file());
    if found("chromium") && found("chromedriver") {
        println!("cargo:rustc-cfg=has_browser");
    }
    if found("redis-server") {
        println!("cargo:rustc-cfg=has_redis");
    }
    // The PostgreSQL fault tests make clusters of their own with Debian's initdb.
    println!("cargo:rerun-if-changed=/usr/lib/postgresql");
    let initdb = std::fs::read_dir("/usr/lib/postgresql")
        .map(|dirs| {
            dirs.flatten()
                .any(|d| d.path().join("bin/initdb").is_file())
        })
        .unwrap_or(false);
    if initdb {
        println!("cargo:rustc-cfg=has_postgres_server");
    }
}
