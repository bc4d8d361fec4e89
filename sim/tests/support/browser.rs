//! Driving headless Chromium (Debian's `chromium`) through the DevTools protocol, for the
//! tests of the live pages: the simulator's view and the node's page.
//!
//! Chromium is found on the PATH (`chromium`, `chromium-browser`, `google-chrome`); as root,
//! a missing one is installed from Debian's packages; otherwise the test fails saying so.

#![allow(dead_code)]

use headless_chrome::{Browser, LaunchOptions, Tab, protocol::cdp::Page};
use serde_json::Value;
use std::{
    ffi::OsStr,
    path::{Path, PathBuf},
    process::Command,
    time::{Duration, Instant},
};

/// Far longer than anything here takes; only a hung test reaches it.
pub(crate) const SAFETY_NET: Duration = Duration::from_secs(180);

/// The path of a Chromium, installing Debian's where none is found and we are root.
pub(crate) fn chromium() -> PathBuf {
    let find = || {
        ["chromium", "chromium-browser", "google-chrome"]
            .into_iter()
            .find_map(|name| {
                std::env::var_os("PATH").and_then(|paths| {
                    std::env::split_paths(&paths)
                        .map(|folder| folder.join(name))
                        .find(|path| path.is_file())
                })
            })
    };
    if let Some(path) = find() {
        return path;
    }
    let installed = Command::new("apt-get")
        .args(["install", "-y", "-qq", "chromium"])
        .env("DEBIAN_FRONTEND", "noninteractive")
        .status()
        .is_ok_and(|status| status.success());
    find().unwrap_or_else(|| {
        panic!(
            "the browser tests need Chromium: install Debian's `chromium` package \
             (installing it here {})",
            if installed {
                "did not put it on the PATH"
            } else {
                "failed"
            }
        )
    })
}

pub(crate) fn browser() -> Browser {
    let options = LaunchOptions::default_builder()
        .path(Some(chromium()))
        // Root cannot use Chromium's sandbox; the page is our own, served on loopback.
        .sandbox(false)
        .window_size(Some((1500, 1100)))
        .idle_browser_timeout(SAFETY_NET)
        .args(vec![
            OsStr::new("--disable-gpu"),
            OsStr::new("--disable-dev-shm-usage"),
        ])
        .build()
        .unwrap();
    Browser::new(options).expect("Chromium starts")
}

pub(crate) fn evaluate(tab: &Tab, expression: &str) -> Value {
    tab.evaluate(expression, false)
        .unwrap_or_else(|error| panic!("{expression}: {error}"))
        .value
        .unwrap_or(Value::Null)
}

pub(crate) fn text(tab: &Tab, id: &str) -> String {
    let value = evaluate(tab, &format!("document.getElementById('{id}').textContent"));
    value.as_str().unwrap_or_default().to_string()
}

pub(crate) fn number(tab: &Tab, id: &str) -> u64 {
    let text = text(tab, id);
    text.parse()
        .unwrap_or_else(|_| panic!("#{id} shows `{text}`, not a number"))
}

pub(crate) fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let started = Instant::now();
    while !done() {
        assert!(started.elapsed() < SAFETY_NET, "waited too long for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

pub(crate) fn screenshot(tab: &Tab, name: &str) -> PathBuf {
    let png = tab
        .capture_screenshot(Page::CaptureScreenshotFormatOption::Png, None, None, true)
        .unwrap();
    assert!(png.starts_with(b"\x89PNG"), "not a PNG");
    let path = Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    std::fs::write(&path, png).unwrap();
    eprintln!("screenshot: {}", path.display());
    path
}
