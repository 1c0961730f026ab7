//! Rebuild when embedded files change, and tell the tests whether a browser is installed.
fn main() {
    println!("cargo:rerun-if-changed=migrations");
    println!("cargo:rerun-if-changed=templates");
    println!("cargo:rerun-if-changed=config/default.toml");

    // The browser suite (tests/integration/browser.rs) needs Debian's chromium and
    // chromium-driver; without them its tests are ignored with a reason `cargo test` prints.
    println!("cargo::rustc-check-cfg=cfg(has_browser)");
    println!("cargo:rerun-if-env-changed=PATH");
    // Installing a package changes the folder; a missing file would rerun this every build.
    println!("cargo:rerun-if-changed=/usr/bin");
    let path = std::env::var_os("PATH").unwrap_or_default();
    let found = |name: &str| std::env::split_paths(&path).any(|dir| dir.join(name).is_file());
    if found("chromium") && found("chromedriver") {
        println!("cargo:rustc-cfg=has_browser");
    }
}
