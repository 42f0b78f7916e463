//! Commands that run no container: --version, spec, and the default state root.

mod common;

use common::*;
use std::process::Command;

#[test]
fn version_has_three_runc_style_lines() {
    let o = run_with_timeout(Command::new(HUSK).arg("--version"), COMMAND_TIMEOUT);
    assert_ok(&o);
    let out = stdout(&o);
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines[0].starts_with("husk version "), "{out}");
    assert!(lines[1].starts_with("commit: "), "{out}");
    assert!(lines[2].starts_with("spec: 1.2."), "{out}");
}

#[test]
fn spec_writes_a_runnable_config_once() {
    let dir = std::env::temp_dir().join(format!("husk-spec-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let o = run_with_timeout(Command::new(HUSK).args(["spec", "--bundle"]).arg(&dir), COMMAND_TIMEOUT);
    assert_ok(&o);
    let config: serde_json::Value = serde_json::from_slice(&std::fs::read(dir.join("config.json")).unwrap()).unwrap();
    assert_eq!(config["ociVersion"], "1.2.0");
    assert_eq!(config["root"]["path"], "rootfs");
    assert_eq!(config["process"]["args"][0], "sh");
    let types: Vec<&str> = config["linux"]["namespaces"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["type"].as_str().unwrap())
        .collect();
    for ns in ["pid", "network", "ipc", "uts", "mount"] {
        assert!(types.contains(&ns), "{ns} missing");
    }
    assert!(config["linux"]["maskedPaths"].as_array().unwrap().len() > 5);

    let again = run_with_timeout(Command::new(HUSK).args(["spec", "--bundle"]).arg(&dir), COMMAND_TIMEOUT);
    assert!(!again.status.success());
    assert!(stderr(&again).contains("config.json exists"), "{}", stderr(&again));

    let rootless = dir.join("rootless");
    std::fs::create_dir_all(&rootless).unwrap();
    let o = run_with_timeout(
        Command::new(HUSK).args(["spec", "--rootless", "-b"]).arg(&rootless),
        COMMAND_TIMEOUT,
    );
    assert_ok(&o);
    let config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(rootless.join("config.json")).unwrap()).unwrap();
    assert_eq!(config["linux"]["uidMappings"][0]["hostID"], 0);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn list_of_an_empty_root_is_empty() {
    let dir = std::env::temp_dir().join(format!("husk-emptyroot-{}", std::process::id()));
    let o = run_with_timeout(
        Command::new(HUSK).arg("--root").arg(&dir).args(["list", "-f", "json"]),
        COMMAND_TIMEOUT,
    );
    assert_ok(&o);
    assert_eq!(stdout(&o).trim(), "[]");
    assert!(!dir.exists(), "listing creates nothing");
}
