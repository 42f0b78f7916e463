//! The systemd cgroup driver (`--systemd-cgroup`), against a real systemd:
//! `make test-systemd` boots systemd as PID 1 in a QEMU VM
//! (integration/vm/run-in-vm.sh --systemd) and runs these there. Elsewhere
//! they are reported as ignored; the host's own check is that husk refuses
//! the driver clearly when no systemd runs.

mod common;

use common::*;
use serde_json::json;
use std::path::Path;
use std::process::Command;

const WHY: &str = "needs systemd as PID 1: make test-systemd";

fn require_systemd() {
    assert!(Path::new("/run/systemd/private").exists(), "{WHY}");
}

fn systemctl(args: &[&str]) -> String {
    let o = run_with_timeout(Command::new("systemctl").args(args), COMMAND_TIMEOUT);
    stdout(&o).trim().to_string()
}

fn unit_property(unit: &str, property: &str) -> String {
    systemctl(&["show", "-p", property, "--value", unit])
}

fn cgroup_file(path: &str, name: &str) -> String {
    std::fs::read_to_string(Path::new("/sys/fs/cgroup").join(path).join(name))
        .unwrap_or_else(|e| panic!("{path}/{name}: {e}"))
        .trim()
        .to_string()
}

fn sd(b: &Bundle, args: &[&str]) -> std::process::Output {
    let mut all = vec!["--systemd-cgroup"];
    all.extend_from_slice(args);
    b.husk(&all)
}

fn sd_create(b: &Bundle, id: &str) -> std::process::Output {
    sd(b, &["create", "--bundle", b.dir.to_str().unwrap(), id])
}

/// Run on hosts without systemd (make test); the VM runs only the ignored ones.
#[test]
fn without_systemd_the_driver_is_refused_clearly() {
    if Path::new("/run/systemd/system").exists() {
        return; // a systemd host: the tests below cover it
    }
    let b = Bundle::new("sd-none");
    let o = sd_create(&b, "x");
    assert!(!o.status.success());
    let err = stderr(&o);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("--systemd-cgroup: systemd is not running"), "{err}");
    b.assert_gone("x");
}

#[test]
#[ignore = "needs systemd as PID 1: make test-systemd"]
fn a_transient_scope_with_delegation_holds_the_container() {
    require_systemd();
    let mut b = Bundle::new("sd-scope");
    b.config["linux"]["cgroupsPath"] = json!("system.slice:husk:sd1");
    b.config["linux"]["resources"] = json!({"memory": {"limit": 67108864}, "pids": {"limit": 32}});
    b.script("sleep 30");
    assert_ok(&sd_create(&b, "sd1"));
    let unit = "husk-sd1.scope";
    assert_eq!(unit_property(unit, "ActiveState"), "active");
    assert_eq!(unit_property(unit, "Delegate"), "yes");
    assert_eq!(unit_property(unit, "MemoryMax"), "67108864", "systemd knows the limit");
    let pid = b.state("sd1")["pid"].as_i64().unwrap();
    let own = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    assert_eq!(own.trim(), "0::/system.slice/husk-sd1.scope");
    let path = "system.slice/husk-sd1.scope";
    assert_eq!(cgroup_file(path, "memory.max"), "67108864");
    assert_eq!(cgroup_file(path, "pids.max"), "32");

    // update, pause and resume act on the unit's cgroup.
    assert_ok(&b.husk(&["update", "--memory", "128m", "sd1"]));
    assert_eq!(cgroup_file(path, "memory.max"), "134217728");
    assert_eq!(
        unit_property(unit, "MemoryMax"),
        "134217728",
        "systemd knows the new limit"
    );
    assert_ok(&b.husk(&["start", "sd1"]));
    assert_ok(&b.husk(&["pause", "sd1"]));
    assert_eq!(b.status("sd1"), "paused");
    assert_eq!(cgroup_file(path, "cgroup.freeze"), "1");
    assert_ok(&b.husk(&["resume", "sd1"]));
    assert_eq!(b.status("sd1"), "running");

    assert_ok(&b.husk(&["delete", "--force", "sd1"]));
    assert_ne!(unit_property(unit, "ActiveState"), "active", "the scope is stopped");
    assert!(!Path::new("/sys/fs/cgroup").join(path).exists(), "its cgroup is gone");
    b.assert_gone("sd1");
}

#[test]
#[ignore = "needs systemd as PID 1: make test-systemd"]
fn a_nested_slice_is_made_and_the_default_path_is_husk_id() {
    require_systemd();
    let mut b = Bundle::new("sd-slice");
    b.config["linux"]["cgroupsPath"] = json!("husktest-inner.slice:pfx:sd2");
    b.without_namespace("cgroup").script("cat /proc/self/cgroup");
    let o = sd(&b, &["run", "--bundle", b.dir.to_str().unwrap(), "sd2"]);
    assert_ok(&o);
    let out = stdout(&o);
    assert_eq!(out.trim(), "0::/husktest.slice/husktest-inner.slice/pfx-sd2.scope");
    b.assert_gone("sd2");

    b.config["linux"].as_object_mut().unwrap().remove("cgroupsPath");
    b.script("cat /proc/self/cgroup");
    let o = sd(&b, &["run", "--bundle", b.dir.to_str().unwrap(), "sd3"]);
    assert_ok(&o);
    assert_eq!(stdout(&o).trim(), "0::/system.slice/husk-sd3.scope");
    assert_ne!(unit_property("husk-sd3.scope", "ActiveState"), "active");
    systemctl(&["stop", "husktest.slice"]);
}

#[test]
#[ignore = "needs systemd as PID 1: make test-systemd"]
fn a_failed_create_leaves_no_unit() {
    require_systemd();
    let mut b = Bundle::new("sd-fail");
    b.config["linux"]["cgroupsPath"] = json!("system.slice:husk:sd4");
    b.config["process"]["args"] = json!(["/no/such/program"]);
    b.save();
    let o = sd(&b, &["run", "--bundle", b.dir.to_str().unwrap(), "sd4"]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("/no/such/program"), "{}", stderr(&o));
    assert_ne!(unit_property("husk-sd4.scope", "ActiveState"), "active");
    assert!(!Path::new("/sys/fs/cgroup/system.slice/husk-sd4.scope").exists());
    b.assert_gone("sd4");

    b.config["linux"]["cgroupsPath"] = json!("system.slice:husk:a:b");
    b.config["process"]["args"] = json!(["true"]);
    b.save();
    let o = sd_create(&b, "sd5");
    assert!(stderr(&o).contains("linux.cgroupsPath"), "{}", stderr(&o));
    b.assert_gone("sd5");
}

/// A cgroupsPath naming a unit that exists already: create fails, and the
/// unit, which husk did not start, is left running.
#[test]
#[ignore = "needs systemd as PID 1: make test-systemd"]
fn a_unit_husk_did_not_start_is_not_stopped() {
    require_systemd();
    // systemd-run --scope stays as the scope's program: it runs in the background.
    let mut bystander = Command::new("systemd-run")
        .args(["--unit", "bystander", "--scope", "sleep", "300"])
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + COMMAND_TIMEOUT;
    while unit_property("bystander.scope", "ActiveState") != "active" {
        assert!(
            std::time::Instant::now() < deadline,
            "the bystander scope never started"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let mut b = Bundle::new("sd-bystander");
    b.config["linux"]["cgroupsPath"] = json!("system.slice::bystander");
    b.save();
    let o = sd_create(&b, "sd6");
    let still = unit_property("bystander.scope", "ActiveState");
    systemctl(&["stop", "bystander.scope"]);
    let _ = bystander.wait();
    assert!(!o.status.success(), "create took over an existing unit");
    assert_eq!(still, "active", "husk stopped a unit it did not start");
    b.assert_gone("sd6");
}

#[test]
#[ignore = "needs systemd as PID 1: make test-systemd"]
fn exec_joins_the_scope() {
    require_systemd();
    let mut b = Bundle::new("sd-exec");
    b.config["linux"]["cgroupsPath"] = json!("system.slice:husk:sd6");
    b.without_namespace("cgroup");
    b.script("sleep 30");
    assert_ok(&sd_create(&b, "sd6"));
    assert_ok(&b.husk(&["start", "sd6"]));
    let o = b.husk(&["exec", "sd6", "cat", "/proc/self/cgroup"]);
    assert_ok(&o);
    assert_eq!(stdout(&o).trim(), "0::/system.slice/husk-sd6.scope");
    assert_ok(&b.husk(&["delete", "--force", "sd6"]));
    b.assert_gone("sd6");
}

/// Rootless: the user's own systemd instance (user@UID.service, started here
/// with the system bus and logind it needs) makes the scope, in the subtree
/// systemd delegates to the user.
#[test]
#[ignore = "needs systemd as PID 1: make test-systemd"]
fn rootless_through_the_user_instance() {
    use std::os::unix::process::CommandExt;
    require_systemd();
    let mut b = Bundle::rootless("sd-user");
    let (uid, gid) = b.user.unwrap();
    let manager = format!("user@{uid}.service");
    // Slow under emulation: a bus, logind and a whole systemd --user.
    let mut start = Command::new("systemctl");
    start.args([
        "start",
        "dbus.socket",
        "dbus.service",
        "systemd-logind.service",
        &manager,
    ]);
    assert_ok(&run_with_timeout(&mut start, std::time::Duration::from_secs(300)));
    assert_eq!(
        unit_property(&manager, "ActiveState"),
        "active",
        "the user instance runs"
    );
    b.config["linux"]["cgroupsPath"] = json!(":husk:urun");
    b.config["linux"]["resources"] = json!({"memory": {"limit": 67108864}, "pids": {"limit": 20}});
    let run_as_user = |b: &Bundle, id: &str| {
        let mut cmd = Command::new(HUSK);
        cmd.arg("--root")
            .arg(&b.root)
            .args(["--systemd-cgroup", "run", "--bundle"])
            .arg(&b.dir)
            .arg(id)
            .uid(uid)
            .gid(gid)
            .env("XDG_RUNTIME_DIR", format!("/run/user/{uid}"))
            .current_dir(&b.dir);
        run_with_timeout(&mut cmd, COMMAND_TIMEOUT)
    };
    // Without a cgroup namespace, cgroup2 cannot be mounted: the hierarchy is bound.
    b.without_namespace("cgroup").script(
        "cut -d: -f3 /proc/self/cgroup; cd /sys/fs/cgroup$(cut -d: -f3 /proc/self/cgroup); cat memory.max pids.max",
    );
    let plain = run_as_user(&b, "urun");
    // With one, the container's own cgroup is bound at /sys/fs/cgroup.
    b.config["linux"]["namespaces"]
        .as_array_mut()
        .unwrap()
        .push(json!({"type": "cgroup"}));
    b.script("cat /proc/self/cgroup /sys/fs/cgroup/memory.max");
    let own_ns = run_as_user(&b, "urun");
    systemctl(&["stop", &manager]);

    assert_ok(&plain);
    let out = stdout(&plain);
    let lines: Vec<&str> = out.lines().collect();
    let scope = format!("/user.slice/user-{uid}.slice/{manager}/user.slice/husk-urun.scope");
    assert_eq!(lines, [scope.as_str(), "67108864", "20"]);
    assert_ok(&own_ns);
    assert_eq!(stdout(&own_ns).lines().collect::<Vec<_>>(), ["0::/", "67108864"]);
    assert!(
        !Path::new("/sys/fs/cgroup").join(&scope[1..]).exists(),
        "the scope is gone"
    );
    b.assert_gone("urun");
}
