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

// husk run as a systemd service (docs/systemd.md): a Type=notify unit whose
// ExecStart is `husk run` and whose container's cgroup is under the unit's.

/// Bounds every wait for a unit: the VM runs under emulation, slowly.
const UNIT_WAIT: std::time::Duration = std::time::Duration::from_secs(120);

/// A unit in /run/systemd/system, stopped and removed when dropped (also when
/// a test fails), so that a failed test leaves nothing for the next.
struct Service {
    name: String,
}

impl Service {
    /// The unit `husk generate systemd` prints (docs/systemd.md's) for
    /// container `id` of bundle `b`, with `extra` lines in its [Service] section.
    fn install(name: &str, b: &Bundle, id: &str, extra: &[&str]) -> Service {
        let o = b.husk(&["generate", "systemd", "--bundle", b.dir.to_str().unwrap(), id]);
        assert_ok(&o);
        let unit = stdout(&o);
        let (service, install) = unit.split_once("\n[Install]").expect("an [Install] section");
        let mut text = service.to_string();
        for line in extra {
            text.push('\n');
            text.push_str(line);
        }
        text.push_str("\n[Install]");
        text.push_str(install);
        let path = format!("/run/systemd/system/{name}.service");
        std::fs::write(&path, text).unwrap();
        systemctl(&["daemon-reload"]);
        Service {
            name: format!("{name}.service"),
        }
    }

    fn property(&self, property: &str) -> String {
        unit_property(&self.name, property)
    }

    /// Waits (bounded) until the unit's ActiveState is `want`.
    #[track_caller]
    fn wait_for(&self, want: &str) {
        let deadline = std::time::Instant::now() + UNIT_WAIT;
        let mut seen = Vec::new();
        loop {
            let state = self.property("ActiveState");
            if state == want {
                return;
            }
            if seen.last() != Some(&state) {
                seen.push(state);
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{} never became {want}: {seen:?}\n{}",
                self.name,
                self.journal()
            );
            std::thread::sleep(std::time::Duration::from_millis(200));
        }
    }

    /// Waits (bounded) until the unit's property `name` is `want`.
    #[track_caller]
    fn wait_for_property(&self, name: &str, want: &str) {
        let deadline = std::time::Instant::now() + UNIT_WAIT;
        while self.property(name) != want {
            assert!(
                std::time::Instant::now() < deadline,
                "{} never had {name}={want}: {}",
                self.name,
                self.property(name)
            );
            std::thread::sleep(std::time::Duration::from_millis(200));
        }
    }

    /// What systemd and the unit's programs said, for a failure's message.
    fn journal(&self) -> String {
        let o = run_with_timeout(
            Command::new("journalctl").args(["--no-pager", "-n", "40", "-u", &self.name]),
            COMMAND_TIMEOUT,
        );
        stdout(&o)
    }

    /// `systemctl stop`, bounded; how long it took.
    fn stop(&self) -> std::time::Duration {
        let started = std::time::Instant::now();
        let o = run_with_timeout(Command::new("systemctl").args(["stop", &self.name]), UNIT_WAIT);
        assert!(o.status.success(), "systemctl stop {}: {}", self.name, stderr(&o));
        started.elapsed()
    }

    /// The unit's own cgroup directory.
    fn cgroup(&self) -> std::path::PathBuf {
        Path::new("/sys/fs/cgroup/system.slice").join(&self.name)
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = run_with_timeout(Command::new("systemctl").args(["stop", &self.name]), UNIT_WAIT);
        let _ = systemctl(&["reset-failed", &self.name]);
        let _ = std::fs::remove_file(format!("/run/systemd/system/{}", self.name));
        systemctl(&["daemon-reload"]);
    }
}

/// A bundle whose program runs `script` with /bin/sd-notify (tests/helpers/
/// sd_notify.c, systemd-notify for busybox) and whose cgroup is "container",
/// relative to husk's own: under the unit's cgroup, which Delegate=yes hands over.
fn service_bundle(name: &str, script: &str) -> Bundle {
    let mut b = Bundle::new(name);
    let o = Command::new("gcc")
        .args(["-static", "-O2", "-o"])
        .arg(b.rootfs().join("bin/sd-notify"))
        .arg(Path::new(HELPERS).join("sd_notify.c"))
        .output()
        .expect("gcc must be installed");
    assert!(o.status.success(), "gcc: {}", String::from_utf8_lossy(&o.stderr));
    b.config["linux"]["cgroupsPath"] = json!("container");
    b.script(script);
    b
}

/// Creates the file the container's program waits for.
fn touch(b: &Bundle, name: &str) {
    std::fs::write(b.rootfs().join(name), "").unwrap();
}

/// `husk state` of a container that must not exist.
#[track_caller]
fn assert_no_container(b: &Bundle, id: &str) {
    let o = b.husk(&["state", id]);
    assert!(!o.status.success(), "{id} still exists: {}", stdout(&o));
    assert!(stderr(&o).contains("does not exist"), "{}", stderr(&o));
    b.assert_gone(id);
}

/// The pid of the container's init, and its cgroup.
fn container_cgroup(b: &Bundle, id: &str) -> String {
    let pid = b.state(id)["pid"].as_i64().unwrap();
    std::fs::read_to_string(format!("/proc/{pid}/cgroup"))
        .unwrap()
        .trim()
        .to_string()
}

fn is_husk_run(pid: &str) -> bool {
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    let args: Vec<&[u8]> = cmdline.split(|&c| c == 0).collect();
    args.first().is_some_and(|a| a.ends_with(b"husk")) && args.contains(&&b"run"[..])
}

/// Runs on any host: the unit `generate systemd` prints runs the bundle and
/// deletes the container after it, and the bundles it cannot serve are said.
#[test]
fn generate_systemd_prints_the_unit_of_docs_systemd_md() {
    let mut b = Bundle::new("sd-generate");
    let bundle = b.dir.to_str().unwrap().to_string();
    let root = b.root.to_str().unwrap().to_string();
    b.config["linux"]["cgroupsPath"] = json!("container");
    b.save();
    let o = b.husk(&["generate", "systemd", "--bundle", &bundle, "web"]);
    assert_ok(&o);
    assert_eq!(stderr(&o), "", "no warning for a cgroup under the service's");
    let unit = stdout(&o);
    let lines: Vec<&str> = unit.lines().collect();
    for line in [
        "Type=notify",
        "NotifyAccess=all",
        "Delegate=yes",
        "KillMode=mixed",
        &format!("ExecStart={HUSK} --root {root} run --bundle {bundle} web"),
        &format!("ExecStopPost={HUSK} --root {root} delete --force web"),
    ] {
        assert!(lines.contains(&line), "{line} missing from:\n{unit}");
    }

    // A cgroup outside the service's: a warning, the unit all the same.
    b.config["linux"].as_object_mut().unwrap().remove("cgroupsPath");
    b.save();
    let o = b.husk(&["generate", "systemd", "--bundle", &bundle, "web"]);
    assert_ok(&o);
    assert!(stderr(&o).contains("linux.cgroupsPath"), "{}", stderr(&o));
    // A terminal, which a service has not, and --systemd-cgroup are refused.
    b.config["process"]["terminal"] = json!(true);
    b.save();
    let o = b.husk(&["generate", "systemd", "--bundle", &bundle, "web"]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("process.terminal"), "{}", stderr(&o));
    let o = b.husk(&["--systemd-cgroup", "generate", "systemd", "--bundle", &bundle, "web"]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("--systemd-cgroup"), "{}", stderr(&o));
}

/// Runs on any host: `run` in the foreground gives its own pid as MAINPID
/// (husk stays the service's main process, and systemd gets the container's
/// status from husk's), and relays for as long as it waits, not only until
/// READY=1.
#[test]
fn run_in_the_foreground_is_the_main_process_and_relays_to_the_end() {
    let mut b = service_bundle(
        "sd-relay",
        "sd-notify STATUS=starting READY=1; while [ ! -e /more ]; do sleep 0.05; done; \
         sd-notify WATCHDOG=1 MAINPID=1; exit 7",
    );
    b.config["linux"].as_object_mut().unwrap().remove("cgroupsPath");
    b.save();
    let host = b.dir.join("host-notify.sock");
    let sock = std::os::unix::net::UnixDatagram::bind(&host).unwrap();
    sock.set_read_timeout(Some(COMMAND_TIMEOUT)).unwrap();
    let receive = || {
        let mut buf = [0u8; 1024];
        let n = sock.recv(&mut buf).expect("a notification within the timeout");
        String::from_utf8_lossy(&buf[..n]).into_owned()
    };
    let mut run = Command::new(HUSK);
    run.arg("--root")
        .arg(&b.root)
        .args(["run", "--bundle", b.dir.to_str().unwrap(), "relay"])
        .env("NOTIFY_SOCKET", &host)
        .stdin(std::process::Stdio::null());
    b.tag(&mut run);
    let mut husk = run.spawn().unwrap();
    let husk_pid = husk.id();

    assert_eq!(receive(), "STATUS=starting\n");
    assert_eq!(receive(), format!("READY=1\nMAINPID={husk_pid}\n"));
    touch(&b, "more");
    assert_eq!(receive(), "WATCHDOG=1\n");
    assert_eq!(
        receive(),
        format!("MAINPID={husk_pid}\n"),
        "the container cannot name another main pid"
    );
    let status = wait_within(&mut husk, COMMAND_TIMEOUT, "husk run");
    assert_eq!(status.code(), Some(7), "husk exits with the container's status");
    b.assert_gone("relay");
}

#[test]
#[ignore = "needs systemd as PID 1: make test-systemd"]
fn a_notify_service_is_active_only_after_ready_and_its_stop_leaves_nothing() {
    require_systemd();
    let b = service_bundle(
        "sd-ready",
        "trap 'exit 0' TERM; \
         while [ ! -e /ready ]; do sleep 0.1; done; sd-notify 'STATUS=up' READY=1; \
         while [ ! -e /more ]; do sleep 0.1; done; sd-notify 'STATUS=still relaying'; \
         while true; do sleep 0.1; done",
    );
    let unit = Service::install(
        "husktest-ready",
        &b,
        "ready",
        &["TimeoutStartSec=300", "TimeoutStopSec=100"],
    );
    systemctl(&["start", "--no-block", &unit.name]);
    unit.wait_for("activating");
    let deadline = std::time::Instant::now() + UNIT_WAIT;
    while b.husk(&["state", "ready"]).status.code() != Some(0) || b.status("ready") != "running" {
        assert!(
            std::time::Instant::now() < deadline,
            "the container never ran\n{}",
            unit.journal()
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    // Running, but not ready: still activating, husk the main process.
    std::thread::sleep(std::time::Duration::from_secs(2));
    assert_eq!(unit.property("ActiveState"), "activating", "active before READY=1");
    let main_pid = unit.property("MainPID");
    assert!(is_husk_run(&main_pid), "MainPID {main_pid} is not husk run");
    // systemd sees the container: its cgroup is under the unit's.
    assert_eq!(
        container_cgroup(&b, "ready"),
        format!("0::/system.slice/{}/container", unit.name)
    );

    touch(&b, "ready");
    unit.wait_for("active");
    assert_eq!(unit.property("StatusText"), "up");
    assert_eq!(unit.property("MainPID"), main_pid, "husk stays the main process");
    // husk relays after READY=1 too (STATUS=, WATCHDOG=1...).
    touch(&b, "more");
    unit.wait_for_property("StatusText", "still relaying");

    // stop: SIGTERM to husk, which passes it on; the program exits 0.
    let took = unit.stop();
    assert_eq!(unit.property("ActiveState"), "inactive");
    assert_eq!(
        unit.property("Result"),
        "success",
        "stopped by SIGTERM, not at the timeout ({took:?})"
    );
    assert!(!unit.cgroup().exists(), "the unit's cgroup is left");
    assert_no_container(&b, "ready");
}

#[test]
#[ignore = "needs systemd as PID 1: make test-systemd"]
fn a_container_that_exits_ends_its_service_as_its_status_says() {
    require_systemd();
    let script = |code: i32| format!("sd-notify READY=1; while [ ! -e /end ]; do sleep 0.1; done; exit {code}");
    let failing = service_bundle("sd-exit3", &script(3));
    let clean = service_bundle("sd-exit0", &script(0));
    let units = [
        Service::install("husktest-exit3", &failing, "exit3", &["TimeoutStartSec=300"]),
        Service::install("husktest-exit0", &clean, "exit0", &["TimeoutStartSec=300"]),
    ];
    for unit in &units {
        systemctl(&["start", "--no-block", &unit.name]);
    }
    for unit in &units {
        unit.wait_for("active");
    }
    touch(&failing, "end");
    touch(&clean, "end");

    units[0].wait_for("failed");
    assert_eq!(units[0].property("Result"), "exit-code");
    assert_eq!(units[0].property("ExecMainStatus"), "3");
    units[1].wait_for("inactive");
    assert_eq!(units[1].property("Result"), "success");
    for (unit, (b, id)) in units.iter().zip([(&failing, "exit3"), (&clean, "exit0")]) {
        assert!(!unit.cgroup().exists(), "{}'s cgroup is left", unit.name);
        assert_no_container(b, id);
    }
}

#[test]
#[ignore = "needs systemd as PID 1: make test-systemd"]
fn a_stop_before_ready_is_passed_on_and_a_program_deaf_to_it_is_killed() {
    require_systemd();
    // Never ready: stopped while activating, husk passes SIGTERM on.
    let waiting = service_bundle("sd-early", "trap 'exit 0' TERM; while true; do sleep 0.1; done");
    let early = Service::install(
        "husktest-early",
        &waiting,
        "early",
        &["TimeoutStartSec=300", "TimeoutStopSec=100"],
    );
    // A pid 1 without a SIGTERM handler ignores it: killed at TimeoutStopSec,
    // then ExecStopPost's delete --force removes what husk could not.
    let deaf = service_bundle("sd-deaf", "sd-notify READY=1; exec sleep 100000");
    let killed = Service::install(
        "husktest-deaf",
        &deaf,
        "deaf",
        &["TimeoutStartSec=300", "TimeoutStopSec=5"],
    );
    systemctl(&["start", "--no-block", &early.name]);
    systemctl(&["start", "--no-block", &killed.name]);
    killed.wait_for("active");
    early.wait_for("activating");
    let deadline = std::time::Instant::now() + UNIT_WAIT;
    while waiting.husk(&["state", "early"]).status.code() != Some(0) || waiting.status("early") != "running" {
        assert!(
            std::time::Instant::now() < deadline,
            "the container never ran\n{}",
            early.journal()
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }

    early.stop();
    assert_eq!(early.property("ActiveState"), "inactive");
    assert_eq!(early.property("Result"), "success", "SIGTERM was not passed on");
    assert!(!early.cgroup().exists(), "the unit's cgroup is left");
    assert_no_container(&waiting, "early");

    killed.stop();
    assert_eq!(killed.property("ActiveState"), "failed");
    assert_eq!(killed.property("Result"), "timeout");
    assert!(!killed.cgroup().exists(), "the unit's cgroup is left");
    assert_no_container(&deaf, "deaf");
}
