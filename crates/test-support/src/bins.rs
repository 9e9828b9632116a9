//! This workspace's service binaries, built once per test process.
//!
//! The first call of [`bin`] runs `cargo build` for the service packages (a no-op when they
//! are fresh, so a test never runs a stale binary) and takes each executable's path from
//! cargo's JSON messages, which honours `CARGO_TARGET_DIR`. `IOTC_E2E_RELEASE=1` builds and
//! runs optimised binaries (for throughput figures).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use serde_json::Value;

const PACKAGES: [&str; 4] = ["iotc-ingress", "iotc-engine", "iotc-api", "iotc-cli"];

/// Prefixes of the variables cargo sets for a test (or build script) it runs.
const SET_FOR_TESTS: [&str; 9] = [
    "CARGO_PKG_",
    "CARGO_MANIFEST_",
    "CARGO_CRATE_NAME",
    "CARGO_PRIMARY_PACKAGE",
    "CARGO_TARGET_TMPDIR",
    "CARGO_BIN_",
    "CARGO_CFG_",
    "CARGO_FEATURE_",
    "OUT_DIR",
];

/// The workspace root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .expect("workspace root")
        .to_path_buf()
}

/// Path of a service binary (`iotc-ingress`, `iotc-engine`, `iotc-api`, `iotc`), built on
/// first use.
pub fn bin(name: &str) -> PathBuf {
    static BINS: OnceLock<HashMap<String, PathBuf>> = OnceLock::new();
    let bins = BINS.get_or_init(build_services);
    bins.get(name)
        .cloned()
        .unwrap_or_else(|| panic!("cargo built no binary named {name}: {bins:?}"))
}

fn build_services() -> HashMap<String, PathBuf> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(repo_root())
        .args(["build", "--message-format=json-render-diagnostics"]);
    if std::env::var("IOTC_E2E_RELEASE").is_ok_and(|v| v == "1") {
        cmd.arg("--release");
    }
    for p in PACKAGES {
        cmd.args(["-p", p]);
    }
    // Cargo sets these for the test process. Build scripts (ring, rustix) rerun when they
    // change, so passing them on would rebuild the services on every test run and again on
    // the next plain `cargo build`.
    for (key, _) in std::env::vars_os() {
        let key = key.to_string_lossy();
        if SET_FOR_TESTS.iter().any(|p| key.starts_with(p)) {
            cmd.env_remove(&*key);
        }
    }
    let out = cmd
        .stderr(Stdio::inherit())
        .output()
        .expect("run cargo build");
    assert!(out.status.success(), "building the services failed");
    let mut bins = HashMap::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let Ok(msg) = serde_json::from_str::<Value>(line) else {
            continue;
        };
        if msg["reason"] == "compiler-artifact"
            && let (Some(name), Some(exe)) =
                (msg["target"]["name"].as_str(), msg["executable"].as_str())
        {
            bins.insert(name.to_string(), PathBuf::from(exe));
        }
    }
    bins
}
