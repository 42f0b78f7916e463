//! Cgroups on this host (v1 controllers, plus a cgroup2 mount with hugetlb):
//! limits in the files, update, pause/resume, ps, events, kill --all, removal.
//! The pure cgroup v2 side runs in a VM (make test-cgroupv2).

mod common;

use common::*;
use serde_json::{json, Value};
use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, Instant};

fn v1(controller: &str, path: &str, file: &str) -> String {
    let p = PathBuf::from("/sys/fs/cgroup")
        .join(controller)
        .join(path.trim_start_matches('/'))
        .join(file);
    std::fs::read_to_string(&p)
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        .trim()
        .to_string()
}

fn unified_has(controller: &str) -> bool {
    std::fs::read_to_string("/sys/fs/cgroup/unified/cgroup.controllers")
        .is_ok_and(|c| c.split_whitespace().any(|x| x == controller))
}

fn limited(name: &str) -> Bundle {
    limited_in(Bundle::new(name))
}

fn limited_in(mut b: Bundle) -> Bundle {
    b.config["linux"]["resources"] = json!({
        "memory": {"limit": 67108864, "reservation": 33554432, "swap": 134217728, "kernelTCP": 16777216},
        "cpu": {"shares": 512, "quota": 20000, "period": 100000, "cpus": "0", "mems": "0"},
        "pids": {"limit": 32},
        "hugepageLimits": [{"pageSize": "2MB", "limit": 4194304}],
        "devices": [{"allow": false, "access": "rwm"}, {"allow": true, "type": "c", "major": 10, "minor": 229, "access": "rw"}]
    });
    b.script("sleep 30");
    b
}

/// Whether this kernel's v1 blkio controller has weights: only the BFQ I/O
/// scheduler brings them now (CFQ is gone), in cgroups below the root.
fn blkio_has_weights() -> bool {
    let probe = PathBuf::from(format!("/sys/fs/cgroup/blkio/husk-test-probe-{}", std::process::id()));
    std::fs::create_dir(&probe).unwrap();
    let has = probe.join("blkio.bfq.weight").exists() || probe.join("blkio.weight").exists();
    std::fs::remove_dir(&probe).unwrap();
    has
}

/// A blkio weight lands where the kernel has weights; where it has none, the
/// create fails saying so, naming the field, and leaves nothing (as runc
/// and crun fail there too).
#[test]
fn a_blkio_weight_lands_or_is_refused_saying_why() {
    let mut b = Bundle::new("cg-blkio-weight");
    b.config["linux"]["resources"] = json!({"blockIO": {"weight": 300}});
    b.script("sleep 30");
    b.save();
    if !blkio_has_weights() {
        b.create_fails("w", "blkio.weight = 300: this kernel's blkio controller has no weights");
        return;
    }
    assert_ok(&b.create("w"));
    let path = b.default_cgroup("w");
    let weight = ["blkio.bfq.weight", "blkio.weight"]
        .iter()
        .map(|f| {
            PathBuf::from("/sys/fs/cgroup/blkio")
                .join(path.trim_start_matches('/'))
                .join(f)
        })
        .find(|f| f.exists())
        .map(|f| std::fs::read_to_string(f).unwrap());
    assert_eq!(weight.as_deref().and_then(|w| w.split_whitespace().last()), Some("300"));
    assert_ok(&b.husk(&["delete", "-f", "w"]));
    b.assert_gone("w");
}

#[test]
fn limits_land_in_the_v1_files() {
    limits_land_in(limited("cg-limits"));
}

/// On a pure v1 host (as in the benchmarks' namespace) `create` makes the
/// cgroup while the init sets up, and the init moves itself in through the
/// files husk hands it then: the same limits, the init in every hierarchy
/// before start, its cgroup namespace rooted at its cgroup.
#[test]
fn limits_land_in_the_v1_files_made_after_the_clone() {
    let mut b = limited_in(Bundle::on_pure_v1("cg-limits-v1"));
    // The hugetlb controller is in the hidden cgroup2 mount only.
    b.config["linux"]["resources"]
        .as_object_mut()
        .unwrap()
        .remove("hugepageLimits");
    b.save();
    let o = b.husk(&["--debug", "create", "--bundle", b.dir.to_str().unwrap(), "probe"]);
    assert_ok(&o);
    assert!(
        stderr(&o).contains("create: cgroup made, its files handed to the init"),
        "{}",
        stderr(&o)
    );
    assert_ok(&b.husk(&["delete", "-f", "probe"]));
    limits_land_in(b);
}

/// A limit the kernel refuses, written after the clone on a pure v1 host:
/// create fails naming it, and the init, the cgroup and the state are gone.
#[test]
fn a_value_that_cannot_apply_after_the_clone_leaves_nothing() {
    let mut b = Bundle::on_pure_v1("cg-bad-v1");
    b.config["linux"]["resources"] = json!({"cpu": {"cpus": "63"}});
    b.save();
    b.create_fails("x", "linux.resources: cpuset.cpus = 63");
}

fn limits_land_in(b: Bundle) {
    assert_ok(&b.create("c"));
    let path = b.default_cgroup("c");
    assert_eq!(v1("memory", &path, "memory.limit_in_bytes"), "67108864");
    assert_eq!(v1("memory", &path, "memory.soft_limit_in_bytes"), "33554432");
    assert_eq!(v1("memory", &path, "memory.memsw.limit_in_bytes"), "134217728");
    assert_eq!(v1("memory", &path, "memory.kmem.tcp.limit_in_bytes"), "16777216");
    assert_eq!(v1("cpu", &path, "cpu.shares"), "512");
    assert_eq!(v1("cpu", &path, "cpu.cfs_quota_us"), "20000");
    assert_eq!(v1("cpu", &path, "cpu.cfs_period_us"), "100000");
    assert_eq!(v1("cpuset", &path, "cpuset.cpus"), "0");
    assert_eq!(v1("pids", &path, "pids.max"), "32");
    let devices = v1("devices", &path, "devices.list");
    assert!(
        devices.contains("c 10:229 rw") && devices.contains("c 1:3 rwm") && !devices.contains("a *:* rwm"),
        "{devices}"
    );
    if unified_has("hugetlb") && !b.pure_v1 {
        assert_eq!(v1("unified", &path, "hugetlb.2MB.max"), "4194304");
    }
    let pid = b.state("c")["pid"].as_i64().unwrap();
    // In every hierarchy (it moved itself in, and the hybrid cgroup2 by its
    // clone), before start: nothing of it runs outside.
    let mut hierarchies = 0;
    for h in std::fs::read_dir("/sys/fs/cgroup").unwrap().flatten() {
        let dir = h.path().join(path.trim_start_matches('/'));
        if dir.is_dir() {
            let procs = std::fs::read_to_string(dir.join("cgroup.procs")).unwrap();
            assert_eq!(
                procs.trim(),
                pid.to_string(),
                "{}: the init is in its cgroup",
                dir.display()
            );
            hierarchies += 1;
        }
    }
    assert!(
        hierarchies > 1,
        "the container's cgroup is in {hierarchies} hierarchies"
    );
    // Inside, the cgroup namespace is rooted at the container's cgroup.
    assert_ok(&b.husk(&["start", "c"]));
    let o = b.husk(&["exec", "c", "cat", "/proc/self/cgroup"]);
    assert!(stdout(&o).lines().all(|l| l.ends_with(":/")), "{}", stdout(&o));
    assert_ok(&b.husk(&["delete", "-f", "c"]));
    b.assert_gone("c");
}

#[test]
fn a_value_that_cannot_apply_fails_create_naming_the_key() {
    let mut b = Bundle::new("cg-bad");
    b.config["linux"]["resources"] = json!({"cpu": {"cpus": "63"}});
    b.save();
    let o = b.create("x");
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("linux.resources: cpuset.cpus = 63"),
        "{}",
        stderr(&o)
    );
    b.assert_gone("x");
    b.config["linux"]["resources"] = json!({"unified": {"memory.high": "1M"}});
    b.save();
    b.create_fails("x", "linux.resources.unified: memory.high needs");
}

#[test]
fn an_absolute_cgroups_path_is_used_as_is() {
    let mut b = Bundle::new("cg-path");
    let path = format!("/husk-test-{}/custom", std::process::id());
    b.config["linux"]["cgroupsPath"] = json!(path);
    b.config["linux"]["resources"] = json!({"pids": {"limit": 7}});
    b.script("sleep 30");
    assert_ok(&b.create("p"));
    assert_eq!(v1("pids", &path, "pids.max"), "7");
    assert_ok(&b.husk(&["delete", "p"]));
    assert!(!PathBuf::from("/sys/fs/cgroup/pids")
        .join(path.trim_start_matches('/'))
        .exists());
    let _ = std::fs::remove_dir(PathBuf::from("/sys/fs/cgroup/pids").join(format!("husk-test-{}", std::process::id())));
    for h in std::fs::read_dir("/sys/fs/cgroup").unwrap().flatten() {
        let _ = std::fs::remove_dir(h.path().join(format!("husk-test-{}", std::process::id())));
    }
}

#[test]
fn update_changes_the_limits() {
    let b = limited("cg-update");
    assert_ok(&b.husk(&["run", "-d", "--bundle", b.dir.to_str().unwrap(), "u"]));
    let path = b.default_cgroup("u");
    assert_ok(&b.husk(&[
        "update",
        "--memory",
        "128m",
        "--memory-swap",
        "256m",
        "--pids-limit",
        "64",
        "--cpu-quota",
        "30000",
        "--cpu-share",
        "256",
        "u",
    ]));
    assert_eq!(v1("memory", &path, "memory.limit_in_bytes"), (128u64 << 20).to_string());
    assert_eq!(
        v1("memory", &path, "memory.memsw.limit_in_bytes"),
        (256u64 << 20).to_string()
    );
    assert_eq!(v1("pids", &path, "pids.max"), "64");
    assert_eq!(v1("cpu", &path, "cpu.cfs_quota_us"), "30000");
    assert_eq!(v1("cpu", &path, "cpu.shares"), "256");
    // containerd's way: OCI resources JSON on stdin.
    let mut cmd = std::process::Command::new(HUSK);
    cmd.arg("--root")
        .arg(&b.root)
        .args(["update", "--resources", "-", "u"])
        .stdin(std::process::Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(br#"{"pids": {"limit": 99}}"#)
        .unwrap();
    assert!(child.wait().unwrap().success());
    assert_eq!(v1("pids", &path, "pids.max"), "99");
    assert_ok(&b.husk(&["delete", "-f", "u"]));
    b.assert_gone("u");
}

/// An `update` of the device rules dropped the allow rule of each device
/// node of linux.devices, which `create` adds after the rules: the node was
/// there, and the container could no longer use it. Kept now (recorded in
/// the state), as at create.
#[test]
fn an_update_of_the_device_rules_keeps_the_containers_device_nodes() {
    let mut b = Bundle::new("cg-update-devices");
    b.config["linux"]["devices"] = json!([{"path": "/dev/fuse", "type": "c", "major": 10, "minor": 229}]);
    b.config["linux"]["resources"] = json!({"devices": [{"allow": false, "access": "rwm"}]});
    b.script("sleep 60");
    assert_ok(&b.husk(&["run", "-d", "--bundle", b.dir.to_str().unwrap(), "u"]));
    let path = b.default_cgroup("u");
    assert!(v1("devices", &path, "devices.list").contains("c 10:229 rwm"));
    let file = b.dir.join("resources.json");
    let kmsg = json!({"allow": true, "type": "c", "major": 1, "minor": 11, "access": "rwm"});
    std::fs::write(
        &file,
        json!({"devices": [{"allow": false, "access": "rwm"}, kmsg]}).to_string(),
    )
    .unwrap();
    assert_ok(&b.husk(&["update", "--resources", file.to_str().unwrap(), "u"]));
    let devices = v1("devices", &path, "devices.list");
    assert!(
        devices.contains("c 1:11 rwm") && devices.contains("c 10:229 rwm"),
        "{devices}"
    );
    assert!(
        devices.contains("c 1:3 rwm") && !devices.contains("a *:* rwm"),
        "{devices}"
    );
    assert_ok(&b.husk(&["delete", "-f", "u"]));
    b.assert_gone("u");
}

/// runc's `update` flags on cgroup v1: each limit has a file of its own, so a
/// period alone keeps the quota; burst and idle have v1 files too.
#[test]
fn update_flags_as_runc_takes_them_on_v1() {
    let b = limited("cg-update-flags");
    assert_ok(&b.husk(&["run", "-d", "--bundle", b.dir.to_str().unwrap(), "f"]));
    let path = b.default_cgroup("f");
    let update = |args: &[&str]| {
        let mut all = vec!["update"];
        all.extend_from_slice(args);
        all.push("f");
        b.husk(&all)
    };
    assert_ok(&update(&["--cpu-period", "50000"]));
    assert_eq!(v1("cpu", &path, "cpu.cfs_period_us"), "50000");
    assert_eq!(v1("cpu", &path, "cpu.cfs_quota_us"), "20000");
    // A burst above the old quota fits once the new quota is there.
    assert_ok(&update(&["--cpu-quota", "40000", "--cpu-burst", "30000"]));
    assert_eq!(v1("cpu", &path, "cpu.cfs_quota_us"), "40000");
    assert_eq!(v1("cpu", &path, "cpu.cfs_burst_us"), "30000");
    // ... and a quota below the old burst once the new burst is.
    assert_ok(&update(&["--cpu-quota", "10000", "--cpu-burst", "5000"]));
    assert_eq!(v1("cpu", &path, "cpu.cfs_quota_us"), "10000");
    assert_eq!(v1("cpu", &path, "cpu.cfs_burst_us"), "5000");
    assert_ok(&update(&["--memory", "32m"]));
    assert_eq!(
        v1("cpu", &path, "cpu.cfs_burst_us"),
        "5000",
        "a memory update keeps the burst"
    );
    // Lowering memory+swap below the old memory limit: memsw is written again after.
    assert_ok(&update(&["--memory", "16m", "--memory-swap", "24m"]));
    assert_eq!(v1("memory", &path, "memory.limit_in_bytes"), (16u64 << 20).to_string());
    assert_eq!(
        v1("memory", &path, "memory.memsw.limit_in_bytes"),
        (24u64 << 20).to_string()
    );
    // Unlimited memory lifts memory+swap too.
    assert_ok(&update(&["--memory", "-1"]));
    let unlimited = v1("memory", &path, "memory.limit_in_bytes");
    assert!(unlimited.parse::<u64>().unwrap() > 1 << 50, "{unlimited}");
    assert_eq!(v1("memory", &path, "memory.memsw.limit_in_bytes"), unlimited);
    assert_ok(&update(&["--pids-limit", "0"]));
    assert_eq!(v1("pids", &path, "pids.max"), "1");
    assert_ok(&update(&["--pids-limit", "-1"]));
    assert_eq!(v1("pids", &path, "pids.max"), "max");
    let idle = PathBuf::from("/sys/fs/cgroup/cpu")
        .join(path.trim_start_matches('/'))
        .join("cpu.idle");
    if idle.exists() {
        assert_ok(&update(&["--cpu-idle", "1"]));
        assert_eq!(v1("cpu", &path, "cpu.idle"), "1");
        assert_ok(&update(&["--cpu-idle", "0"]));
        assert_eq!(v1("cpu", &path, "cpu.idle"), "0");
    }
    for (args, says) in [
        (&["--cpu-idle", "2"][..], "--cpu-idle 2: must be 0 or 1"),
        (&["--memory", "lots"][..], "--memory lots"),
        (&["--cpu-burst", "-5"][..], "--cpu-burst"),
    ] {
        let o = update(args);
        assert!(!o.status.success(), "{args:?}");
        assert!(stderr(&o).contains(says), "{args:?}: {}", stderr(&o));
    }
    assert_ok(&b.husk(&["delete", "-f", "f"]));
    b.assert_gone("f");
}

#[test]
fn pause_and_resume() {
    let mut b = Bundle::new("cg-pause");
    b.script("while :; do date +%s%N > /dev/shm/tick; sleep 0.01; done");
    assert_ok(&b.husk(&["run", "-d", "--bundle", b.dir.to_str().unwrap(), "p"]));
    assert_ok(&b.husk(&["pause", "p"]));
    assert_eq!(b.status("p"), "paused");
    assert_eq!(v1("freezer", &b.default_cgroup("p"), "freezer.state"), "FROZEN");
    let o = b.husk(&["exec", "p", "true"]);
    assert!(stderr(&o).contains("container paused"), "{}", stderr(&o));
    let again = b.husk(&["pause", "p"]);
    assert!(!again.status.success());
    assert_ok(&b.husk(&["resume", "p"]));
    assert_eq!(b.status("p"), "running");
    assert_ok(&b.husk(&["exec", "p", "true"]));
    assert!(
        !b.husk(&["resume", "p"]).status.success(),
        "resuming a running container is an error"
    );
    // A paused container can be deleted with --force.
    assert_ok(&b.husk(&["pause", "p"]));
    assert_ok(&b.husk(&["delete", "-f", "p"]));
    b.assert_gone("p");
}

#[test]
fn ps_lists_the_containers_processes() {
    let mut b = Bundle::new("cg-ps");
    b.script("sleep 31 & sleep 32");
    assert_ok(&b.husk(&["run", "-d", "--bundle", b.dir.to_str().unwrap(), "s"]));
    let deadline = Instant::now() + Duration::from_secs(10);
    let pids = loop {
        let pids: Vec<i64> = serde_json::from_slice(&b.husk(&["ps", "--format", "json", "s"]).stdout).unwrap();
        if pids.len() == 2 || Instant::now() > deadline {
            break pids;
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    assert_eq!(pids.len(), 2, "{pids:?}");
    let table = stdout(&b.husk(&["ps", "s", "-o", "pid,args"]));
    let lines: Vec<&str> = table.lines().collect();
    assert!(lines[0].contains("PID"), "{table}");
    assert_eq!(lines.len(), 3, "{table}");
    assert!(table.contains("sleep 31") && table.contains("sleep 32"), "{table}");
    assert_ok(&b.husk(&["delete", "-f", "s"]));
    b.assert_gone("s");
}

#[test]
fn events_stats_and_an_oom_event() {
    let mut b = Bundle::new("cg-events");
    b.config["linux"]["resources"] = json!({"memory": {"limit": 33554432, "swap": 33554432}});
    b.config["root"]["readonly"] = json!(false);
    b.script("while [ ! -e /tmp/go ]; do sleep 0.05; done; dd if=/dev/zero of=/dev/shm/fill bs=1M count=64 2>/dev/null; sleep 30");
    assert_ok(&b.husk(&["run", "-d", "--bundle", b.dir.to_str().unwrap(), "e"]));
    let stats: Value = serde_json::from_slice(&b.husk(&["events", "--stats", "e"]).stdout).unwrap();
    assert_eq!(stats["type"], "stats");
    assert_eq!(stats["id"], "e");
    assert_eq!(stats["data"]["memory"]["usage"]["limit"], 33554432);
    assert!(stats["data"]["pids"]["current"].as_u64().unwrap() >= 1);
    // runc's names (go-runc decodes them): husk 0.1.0 (4491cad) gave cpu.stat's own keys.
    let throttling = &stats["data"]["cpu"]["throttling"];
    for key in ["periods", "throttledPeriods", "throttledTime"] {
        assert!(throttling[key].is_u64(), "{key} in {throttling}");
    }
    assert!(stats["data"]["memory"]["cache"].is_u64(), "{}", stats["data"]["memory"]);
    assert!(
        stats["data"]["blkio"]["ioServiceBytesRecursive"].is_array(),
        "{}",
        stats["data"]["blkio"]
    );

    let mut cmd = std::process::Command::new(HUSK);
    cmd.arg("--root")
        .arg(&b.root)
        .args(["events", "--interval", "100ms", "e"])
        .stdout(std::process::Stdio::piped());
    b.tag(&mut cmd);
    let mut events = cmd.spawn().unwrap();
    let mut out = events.stdout.take().unwrap();
    let stats = wait_for_event(&mut out, "stats", Duration::from_secs(10));
    assert!(stats.is_some(), "stats every interval");
    std::fs::write(b.rootfs().join("tmp/go"), "").unwrap();
    let oom = wait_for_event(&mut out, "oom", Duration::from_secs(20));
    let _ = events.kill();
    let _ = events.wait();
    assert_eq!(oom.expect("an oom event")["id"], "e");
    assert_ok(&b.husk(&["delete", "-f", "e"]));
    b.assert_gone("e");
}

#[test]
fn kill_all_signals_every_process_of_the_cgroup() {
    let mut b = Bundle::new("cg-killall");
    // Without a pid namespace, killing the init leaves its children: --all does not.
    b.config["linux"]["namespaces"]
        .as_array_mut()
        .unwrap()
        .retain(|n| n["type"] != "pid");
    b.script("sleep 33 & sleep 34 & wait");
    assert_ok(&b.husk(&["run", "-d", "--bundle", b.dir.to_str().unwrap(), "k"]));
    let deadline = Instant::now() + Duration::from_secs(10);
    while serde_json::from_slice::<Vec<i64>>(&b.husk(&["ps", "-f", "json", "k"]).stdout)
        .unwrap()
        .len()
        < 3
    {
        assert!(Instant::now() < deadline, "children never started");
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_ok(&b.husk(&["kill", "--all", "k", "KILL"]));
    b.wait_status("k", "stopped");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !b.processes().is_empty() {
        assert!(
            Instant::now() < deadline,
            "processes survived kill --all: {:?}",
            b.processes()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_ok(&b.husk(&["delete", "k"]));
    b.assert_gone("k");
}

#[test]
fn cgroups_paths_at_or_above_husks_own_cgroup_are_refused() {
    let mut b = Bundle::new("cg-root");
    b.script("sleep 30");
    for root in ["/", "//", "/.", "/./"] {
        b.config["linux"]["cgroupsPath"] = json!(root);
        b.save();
        b.create_fails(
            "x",
            &format!("linux.cgroupsPath \"{root}\": the root of the cgroup hierarchy"),
        );
    }
    for escape in ["/a/..", "/husk/../..", "../../x"] {
        b.config["linux"]["cgroupsPath"] = json!(escape);
        b.save();
        b.create_fails("x", &format!("linux.cgroupsPath {escape} must not contain .."));
    }
    // Any cgroup above this test (and so above husk) in some hierarchy.
    let own = std::fs::read_to_string("/proc/self/cgroup").unwrap();
    let above = own
        .lines()
        .filter_map(|l| l.splitn(3, ':').nth(2))
        .find(|p| *p != "/")
        .map(|p| format!("/{}", p.trim_start_matches('/').split('/').next().unwrap()));
    if let Some(above) = above {
        b.config["linux"]["cgroupsPath"] = json!(above);
        b.save();
        b.create_fails("x", "holds husk's own cgroup");
    }
}

/// A `sleep` in a cgroup that husk did not make (in every hierarchy), removed on drop.
struct Bystander {
    child: std::process::Child,
    path: String,
}

impl Bystander {
    fn new() -> Bystander {
        static COUNT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = COUNT.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let path = format!("/husk-test-bystander-{}-{n}", std::process::id());
        for h in Bystander::hierarchies() {
            let dir = h.join(path.trim_start_matches('/'));
            std::fs::create_dir_all(&dir).unwrap();
            for file in ["cpuset.cpus", "cpuset.mems"] {
                if let Ok(parent) = std::fs::read_to_string(h.join(file)) {
                    std::fs::write(dir.join(file), parent.trim()).unwrap();
                }
            }
        }
        let child = std::process::Command::new("sleep").arg("60").spawn().unwrap();
        for h in Bystander::hierarchies() {
            let procs = h.join(path.trim_start_matches('/')).join("cgroup.procs");
            std::fs::write(&procs, child.id().to_string()).unwrap_or_else(|e| panic!("{}: {e}", procs.display()));
        }
        Bystander { child, path }
    }

    fn hierarchies() -> Vec<PathBuf> {
        let mut hs: Vec<PathBuf> = std::fs::read_dir("/sys/fs/cgroup")
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.join("cgroup.procs").exists())
            .collect();
        hs.sort();
        hs
    }

    #[track_caller]
    fn assert_untouched(&mut self) {
        assert!(self.child.try_wait().unwrap().is_none(), "the bystander was killed");
        for h in Bystander::hierarchies() {
            let dir = h.join(self.path.trim_start_matches('/'));
            assert!(dir.exists(), "{} was removed", dir.display());
            let procs = std::fs::read_to_string(dir.join("cgroup.procs")).unwrap();
            assert!(
                procs.lines().any(|p| p == self.child.id().to_string()),
                "{}",
                dir.display()
            );
        }
    }
}

impl Drop for Bystander {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        for h in Bystander::hierarchies() {
            let dir = h.join(self.path.trim_start_matches('/'));
            let deadline = Instant::now() + Duration::from_secs(5);
            while dir.exists() && std::fs::remove_dir(&dir).is_err() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(10));
            }
        }
    }
}

/// A container without a pid namespace of its own, in a cgroup husk did not
/// make that holds a host process: `pause` froze that process too (the
/// bystander check compared pid namespaces, which are the same here; the
/// outside review of 70bccf9). Only the init and its descendants are the
/// container's there.
#[test]
fn pause_refuses_a_foreign_cgroup_shared_with_the_host_pid_namespace() {
    let mut bystander = Bystander::new();
    let mut b = Bundle::new("cg-bystander-hostpid");
    b.config["linux"]["cgroupsPath"] = json!(bystander.path);
    let namespaces = b.config["linux"]["namespaces"].as_array_mut().unwrap();
    namespaces.retain(|ns| ns["type"] != "pid");
    b.script("sleep 30");
    assert_ok(&b.husk(&["run", "-d", "--bundle", b.dir.to_str().unwrap(), "h"]));
    let paused = b.husk(&["pause", "h"]);
    assert!(!paused.status.success(), "pause froze a cgroup with a host process");
    let want = format!("holds process {}, not the container's", bystander.child.id());
    assert!(stderr(&paused).contains(&want), "{}", stderr(&paused));
    assert_eq!(b.status("h"), "running");
    bystander.assert_untouched();
    assert_ok(&b.husk(&["delete", "-f", "h"]));
    bystander.assert_untouched();
    b.assert_gone("h");
}

/// A container without a pid namespace of its own, in a cgroup husk did not
/// make, whose init leaves a daemon (reparented away from it): `delete`
/// left the daemon running in the cgroup's owner's cgroup. The processes of
/// the mount namespace the container made are its own; the owner's are left
/// alone.
#[test]
fn a_daemon_of_a_container_without_a_pid_namespace_in_a_foreign_cgroup_is_deleted() {
    let mut bystander = Bystander::new();
    let cases: [(&str, &str, &[&str]); 2] = [
        (
            "running",
            "(sleep 1000 &); exec sleep 1000",
            &["delete", "-f", "running"],
        ),
        ("stopped", "(sleep 1000 &); exit 0", &["delete", "stopped"]),
    ];
    for (id, script, delete) in cases {
        let b = daemon_bundle(&bystander, id, script);
        let daemon = daemon_of(&b, id, &bystander, id == "stopped");
        let deleted = b.husk(delete);
        let daemon_left = outlives(daemon, Duration::from_secs(5));
        assert_ok(&deleted);
        assert!(
            !daemon_left,
            "{id}: delete left the container's daemon {daemon} running"
        );
        bystander.assert_untouched();
        b.assert_gone(id);
    }
}

/// The cgroup's owner froze it with the daemon in it: the killed daemon
/// dies only once thawed; `delete` does not wait for that for ever (nor
/// fail for ever), and the daemon is gone once the owner thaws.
#[test]
fn a_daemon_in_a_foreign_cgroup_its_owner_froze_does_not_keep_its_container() {
    let mut bystander = Bystander::new();
    let b = daemon_bundle(&bystander, "frozen", "(sleep 1000 &); exit 0");
    let daemon = daemon_of(&b, "frozen", &bystander, true);
    let freezer = std::path::Path::new("/sys/fs/cgroup/freezer")
        .join(bystander.path.trim_start_matches('/'))
        .join("freezer.state");
    std::fs::write(&freezer, "FROZEN").unwrap();
    let deleted = b.husk(&["delete", "frozen"]);
    std::fs::write(&freezer, "THAWED").unwrap();
    let daemon_left = outlives(daemon, Duration::from_secs(5));
    assert_ok(&deleted);
    assert!(
        stderr(&deleted).contains("were killed but have not exited"),
        "{}",
        stderr(&deleted)
    );
    assert!(!daemon_left, "the daemon {daemon} outlived the thaw");
    bystander.assert_untouched();
    b.assert_gone("frozen");
}

/// The same container alone in that cgroup: `pause` refused it, taking its
/// daemon for a process of the cgroup's owner; `kill --all` signalled only
/// its init.
#[test]
fn a_daemon_of_a_container_without_a_pid_namespace_in_a_foreign_cgroup_is_paused_and_killed() {
    let mut bystander = Bystander::new();
    let _ = bystander.child.kill();
    let _ = bystander.child.wait();
    // An init in a mount namespace of its own is signalled too (review 46b F2).
    let b = daemon_bundle(&bystander, "alone", "(sleep 1000 &); exec unshare -m sleep 1000");
    let daemon = daemon_of(&b, "alone", &bystander, false);
    let init = b.state("alone")["pid"].as_i64().unwrap() as i32;
    let paused = b.husk(&["pause", "alone"]);
    let status = b.status("alone");
    let resumed = b.husk(&["resume", "alone"]);
    let killed = b.husk(&["kill", "--all", "alone", "KILL"]);
    let daemon_left = outlives(daemon, Duration::from_secs(5));
    let init_left = outlives(init, Duration::from_secs(5));
    let deleted = b.husk(&["delete", "-f", "alone"]);
    assert_ok(&paused);
    assert_eq!(status, "paused");
    assert_ok(&resumed);
    assert_ok(&killed);
    assert!(!daemon_left, "kill --all left the container's daemon {daemon} running");
    assert!(
        !init_left,
        "kill --all left the init {init} in its own mount namespace running"
    );
    assert_ok(&deleted);
    b.assert_gone("alone");
}

/// A running container with no pid namespace of its own in `bystander`'s
/// cgroup, running `script` (with CAP_SYS_ADMIN, unfiltered).
fn daemon_bundle(bystander: &Bystander, id: &str, script: &str) -> Bundle {
    let mut b = Bundle::new(&format!("cg-daemon-{id}"));
    b.config["linux"]["cgroupsPath"] = json!(bystander.path);
    b.config["linux"].as_object_mut().unwrap().remove("seccomp");
    let caps = json!(["CAP_SYS_ADMIN", "CAP_KILL"]);
    b.config["process"]["capabilities"] = json!({"bounding": caps, "effective": caps, "permitted": caps});
    let namespaces = b.config["linux"]["namespaces"].as_array_mut().unwrap();
    namespaces.retain(|ns| ns["type"] != "pid");
    b.script(script);
    assert_ok(&b.husk(&["run", "-d", "--bundle", b.dir.to_str().unwrap(), id]));
    b
}

/// The process of `bystander`'s cgroup that is neither the bystander nor
/// container `id`'s init, once there (and once the container is stopped
/// with `stopped`).
fn daemon_of(b: &Bundle, id: &str, bystander: &Bystander, stopped: bool) -> i32 {
    let procs = std::path::Path::new("/sys/fs/cgroup/pids")
        .join(bystander.path.trim_start_matches('/'))
        .join("cgroup.procs");
    let others = [bystander.child.id() as i32, b.state(id)["pid"].as_i64().unwrap() as i32];
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let text = std::fs::read_to_string(&procs).unwrap();
        let daemon = text
            .lines()
            .filter_map(|l| l.parse::<i32>().ok())
            .find(|p| !others.contains(p));
        if let (Some(daemon), true) = (daemon, !stopped || b.status(id) == "stopped") {
            return daemon;
        }
        assert!(Instant::now() < deadline, "{id}: no daemon in {}", procs.display());
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Whether process `pid` is still there after `wait` (killed if so).
fn outlives(pid: i32, wait: Duration) -> bool {
    let proc_dir = PathBuf::from(format!("/proc/{pid}"));
    let deadline = Instant::now() + wait;
    while proc_dir.exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    let left = proc_dir.exists();
    if left {
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL);
    }
    left
}

/// A host process only in the freezer hierarchy's cgroup (as `cgexec -g
/// freezer:...` puts it): the check read the pids hierarchy's processes,
/// and `pause` froze it (the outside review of f595507).
#[test]
fn pause_checks_the_processes_the_freezer_reaches() {
    let path = format!("husk-test-freezer-only-{}", std::process::id());
    let dir = std::path::Path::new("/sys/fs/cgroup/freezer").join(&path);
    std::fs::create_dir_all(&dir).unwrap();
    let mut sleeper = std::process::Command::new("sleep").arg("60").spawn().unwrap();
    std::fs::write(dir.join("cgroup.procs"), sleeper.id().to_string()).unwrap();
    let mut b = Bundle::new("cg-freezer-only");
    b.config["linux"]["cgroupsPath"] = json!(format!("/{path}"));
    b.script("sleep 30");
    assert_ok(&b.husk(&["run", "-d", "--bundle", b.dir.to_str().unwrap(), "f"]));
    let paused = b.husk(&["pause", "f"]);
    let state = std::fs::read_to_string(dir.join("freezer.state")).unwrap();
    std::fs::write(dir.join("freezer.state"), "THAWED").unwrap();
    assert!(
        !paused.status.success(),
        "pause froze a host process ({})",
        state.trim()
    );
    let want = format!("holds process {}, not the container's", sleeper.id());
    assert!(stderr(&paused).contains(&want), "{}", stderr(&paused));
    assert_ok(&b.husk(&["delete", "-f", "f"]));
    assert!(sleeper.try_wait().unwrap().is_none(), "the host process was killed");
    let _ = sleeper.kill();
    let _ = sleeper.wait();
    remove_foreign_cgroup(&dir, &path);
    b.assert_gone("f");
}

/// `exec`'s joiner enters the container's cgroup before it joins the pid
/// namespace (for its children): a `pause` then took it for the host's in a
/// cgroup husk did not make and refused, or, had it frozen it in between,
/// `resume` refused for ever (the outside review of f595507; strace holds
/// the joiner's first setns here). It is known as husk itself now.
#[test]
fn pause_takes_execs_joiner_for_the_containers_before_it_joins() {
    let path = format!("husk-test-joiner-{}", std::process::id());
    for h in Bystander::hierarchies() {
        let dir = h.join(&path);
        std::fs::create_dir_all(&dir).unwrap();
        for file in ["cpuset.cpus", "cpuset.mems"] {
            if let Ok(parent) = std::fs::read_to_string(h.join(file)) {
                std::fs::write(dir.join(file), parent.trim()).unwrap();
            }
        }
    }
    let mut b = Bundle::new("cg-joiner");
    b.config["linux"]["cgroupsPath"] = json!(format!("/{path}"));
    b.script("sleep 30");
    assert_ok(&b.husk(&["run", "-d", "--bundle", b.dir.to_str().unwrap(), "j"]));
    let init = b.state("j")["pid"].as_i64().unwrap().to_string();
    let inject = "inject=setns:delay_enter=2000000:when=1";
    let mut exec = b.husk_under_strace(&["-f", "-o", "/dev/null", "-e", inject], &["exec", "j", "true"]);
    let mut exec = exec
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let procs = std::path::Path::new("/sys/fs/cgroup/freezer")
        .join(&path)
        .join("cgroup.procs");
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::fs::read_to_string(&procs).unwrap().lines().all(|p| p == init) {
        assert!(Instant::now() < deadline, "the joiner never entered the cgroup");
        std::thread::sleep(Duration::from_millis(5));
    }
    let paused = b.husk(&["pause", "j"]);
    let resumed = b.husk(&["resume", "j"]);
    assert!(paused.status.success(), "{}", stderr(&paused));
    assert!(resumed.status.success(), "{}", stderr(&resumed));
    let status = wait_within(&mut exec, Duration::from_secs(20), "exec");
    assert!(status.success(), "exec: {status}");
    assert_eq!(b.status("j"), "running");
    assert_ok(&b.husk(&["delete", "-f", "j"]));
    b.assert_gone("j");
    for h in Bystander::hierarchies() {
        let _ = std::fs::remove_dir(h.join(&path));
        assert!(!h.join(&path).exists(), "{} left", h.join(&path).display());
    }
}

/// d5aedec took any process running husk in husk's pid namespace for exec's
/// joiner: a husk command of the host in a cgroup husk did not make (here
/// one waiting for a container's lock) was frozen by `pause` (the outside
/// review of d5aedec). Only a child of `husk exec ... ID` is the joiner.
#[test]
fn pause_refuses_a_husk_command_of_the_host_in_a_foreign_cgroup() {
    let path = format!("husk-test-husk-bystander-{}", std::process::id());
    let dir = std::path::Path::new("/sys/fs/cgroup/freezer").join(&path);
    std::fs::create_dir_all(&dir).unwrap();
    let mut b = Bundle::new("cg-husk-bystander");
    // A husk command of the host that waits (for the lock of a container of
    // another root, which the test holds).
    let other_root = b.dir.join("other-root");
    std::fs::create_dir_all(other_root.join("x")).unwrap();
    let held = nix::fcntl::Flock::lock(
        std::fs::File::open(other_root.join("x")).unwrap(),
        nix::fcntl::FlockArg::LockExclusiveNonblock,
    )
    .unwrap();
    let mut blocked = std::process::Command::new(HUSK)
        .arg("--root")
        .arg(&other_root)
        .args(["delete", "x"])
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    std::fs::write(dir.join("cgroup.procs"), blocked.id().to_string()).unwrap();
    b.config["linux"]["cgroupsPath"] = json!(format!("/{path}"));
    b.script("sleep 30");
    assert_ok(&b.husk(&["run", "-d", "--bundle", b.dir.to_str().unwrap(), "h"]));
    let paused = b.husk(&["pause", "h"]);
    let state = std::fs::read_to_string(dir.join("freezer.state")).unwrap();
    std::fs::write(dir.join("freezer.state"), "THAWED").unwrap();
    let blocked_pid = blocked.id();
    let _ = blocked.kill();
    let _ = blocked.wait();
    drop(held);
    assert!(
        !paused.status.success(),
        "pause froze a husk command of the host ({})",
        state.trim()
    );
    let want = format!("holds process {blocked_pid}, not the container's");
    assert!(stderr(&paused).contains(&want), "{}", stderr(&paused));
    assert_ok(&b.husk(&["delete", "-f", "h"]));
    remove_foreign_cgroup(&dir, &path);
    b.assert_gone("h");
}

/// Removes the freezer cgroup `dir` a test made (its processes gone, it
/// empties within moments), and checks no hierarchy keeps `path`.
#[track_caller]
fn remove_foreign_cgroup(dir: &std::path::Path, path: &str) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while dir.exists() && std::fs::remove_dir(dir).is_err() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    for h in Bystander::hierarchies() {
        assert!(!h.join(path).exists(), "{} left", h.join(path).display());
    }
}

/// Two containers given one cgroupsPath: pausing the one that made it froze
/// the other, and resuming either thawed both (the outside review of
/// 70bccf9). Pausing either is now refused, naming the other's process, and
/// so is resuming the one that did not make it; the one that did always
/// thaws its cgroup (see `an_exec_racing_pause_never_keeps_the_container_paused`).
#[test]
fn pause_and_resume_refuse_a_cgroup_another_container_shares() {
    let freezer = std::path::Path::new("/sys/fs/cgroup/freezer");
    assert!(
        freezer.is_dir(),
        "this test needs the v1 freezer of a hybrid or v1 host"
    );
    let shared = format!("/husk-test-shared-{}", std::process::id());
    let mut a = Bundle::new("cg-shared-a");
    a.config["linux"]["cgroupsPath"] = json!(shared);
    a.script("sleep 30");
    let mut b = Bundle::new("cg-shared-b");
    b.config["linux"]["cgroupsPath"] = json!(shared);
    b.script("sleep 30");
    assert_ok(&a.husk(&["run", "-d", "--bundle", a.dir.to_str().unwrap(), "a"]));
    assert_ok(&b.husk(&["run", "-d", "--bundle", b.dir.to_str().unwrap(), "b"]));
    let b_pid = b.state("b")["pid"].as_i64().unwrap();
    let o = a.husk(&["pause", "a"]);
    assert!(!o.status.success(), "pause froze another container");
    assert!(
        stderr(&o).contains(&format!("holds process {b_pid}, another container's")),
        "{}",
        stderr(&o)
    );
    assert!(!b.husk(&["pause", "b"]).status.success(), "pause of b froze a");
    assert_eq!((a.status("a"), b.status("b")), ("running".into(), "running".into()));
    // Frozen by someone else (a manager, by hand): neither thaws the other.
    let state = freezer.join(shared.trim_start_matches('/')).join("freezer.state");
    std::fs::write(&state, "FROZEN").unwrap();
    assert!(!b.husk(&["resume", "b"]).status.success(), "resume of b thawed a");
    assert_eq!(std::fs::read_to_string(&state).unwrap().trim(), "FROZEN");
    assert_ok(&a.husk(&["resume", "a"]));
    assert_eq!(std::fs::read_to_string(&state).unwrap().trim(), "THAWED");
    assert_ok(&b.husk(&["delete", "-f", "b"]));
    assert_ok(&a.husk(&["delete", "-f", "a"]));
    a.assert_gone("a");
    b.assert_gone("b");
    let left = Bystander::hierarchies()
        .into_iter()
        .map(|h| h.join(shared.trim_start_matches('/')));
    assert_eq!(left.filter(|d| d.exists()).count(), 0, "the shared cgroup left behind");
}

/// `exec`'s joiner sits in the container's cgroup, in husk's pid namespace,
/// until its child has exec'd: a `pause` then froze it, and `resume` took it
/// for another container's and refused for ever (the outside review of
/// b7c4661). The joiner is known by its children's pid namespace, and a
/// cgroup husk made is always thawed.
#[test]
fn an_exec_racing_pause_never_keeps_the_container_paused() {
    let mut b = Bundle::new("cg-exec-pause");
    b.script("sleep 60");
    assert_ok(&b.husk(&["run", "-d", "--bundle", b.dir.to_str().unwrap(), "x"]));
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let probes = {
        let (stop, argv, root) = (stop.clone(), HUSK.to_string(), b.root.clone());
        std::thread::spawn(move || {
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                let mut exec = std::process::Command::new(&argv);
                exec.arg("--root").arg(&root).args(["exec", "x", "true"]);
                run_with_timeout(&mut exec, COMMAND_TIMEOUT);
            }
        })
    };
    for i in 0..100 {
        assert_ok(&b.husk(&["pause", "x"]));
        let o = b.husk(&["resume", "x"]);
        assert!(o.status.success(), "resume {i}: {}", stderr(&o));
    }
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    probes.join().unwrap();
    assert_eq!(b.status("x"), "running");
    assert_ok(&b.husk(&["delete", "-f", "x"]));
    b.assert_gone("x");
}

#[test]
fn a_cgroup_husk_did_not_make_is_left_with_its_processes() {
    let mut bystander = Bystander::new();
    let mut b = Bundle::new("cg-bystander");
    b.config["linux"]["cgroupsPath"] = json!(bystander.path);
    b.script("sleep 30");
    let o = b.create("c1");
    assert_ok(&o);
    assert!(
        stderr(&o).contains("the cgroup already has processes"),
        "{}",
        stderr(&o)
    );
    assert_ok(&b.husk(&["start", "c1"]));
    // Freezing the cgroup would freeze the bystander too.
    let paused = b.husk(&["pause", "c1"]);
    assert!(!paused.status.success(), "pause froze a cgroup with a bystander");
    assert!(stderr(&paused).contains("was not made by husk"), "{}", stderr(&paused));
    assert_eq!(b.status("c1"), "running");
    bystander.assert_untouched();
    assert_ok(&b.husk(&["kill", "--all", "c1", "KILL"]));
    b.wait_status("c1", "stopped");
    bystander.assert_untouched();
    assert_ok(&b.husk(&["delete", "c1"]));
    bystander.assert_untouched();
    assert_ok(&b.husk(&["run", "-d", "--bundle", b.dir.to_str().unwrap(), "c2"]));
    assert_ok(&b.husk(&["delete", "-f", "c2"]));
    bystander.assert_untouched();
    b.assert_gone("c2");
}

/// The container's cgroup directory `sub` in the hierarchy mounted at `/sys/fs/cgroup/HIERARCHY`.
fn cgroup_dir(hierarchy: &str, path: &str, sub: &str) -> PathBuf {
    PathBuf::from("/sys/fs/cgroup")
        .join(hierarchy)
        .join(path.trim_start_matches('/'))
        .join(sub)
}

#[test]
fn exec_cgroup_runs_in_a_sub_cgroup_of_the_containers_own() {
    let mut b = Bundle::new("cg-exec");
    b.script("sleep 30");
    assert_ok(&b.husk(&["run", "-d", "--bundle", b.dir.to_str().unwrap(), "e"]));
    let path = b.default_cgroup("e");
    let hierarchies: Vec<String> = std::fs::read_dir("/sys/fs/cgroup")
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|h| cgroup_dir(h, &path, "").is_dir())
        .collect();
    // Sub-cgroups, as a container with a writable cgroupfs can make them.
    for (h, sub) in [("memory", "submem"), ("cpu", "subcpu"), ("cpuacct", "subcpu")] {
        std::fs::create_dir_all(cgroup_dir(h, &path, sub)).unwrap();
    }
    for h in &hierarchies {
        std::fs::create_dir_all(cgroup_dir(h, &path, "all")).unwrap();
    }
    // A new v1 cpuset has no cpus and mems until given some.
    for file in ["cpuset.cpus", "cpuset.mems"] {
        let parent = v1("cpuset", &path, file);
        std::fs::write(cgroup_dir("cpuset", &path, "all").join(file), parent).unwrap();
    }
    // /proc/self/cgroup of an exec process: "N:controllers:path" in the container's cgroup namespace.
    let cgroups_of = |args: &[&str]| -> Vec<String> {
        let o = b.husk(&[&["exec"], args, &["e", "cat", "/proc/self/cgroup"]].concat());
        assert_ok(&o);
        stdout(&o).lines().map(String::from).collect()
    };
    let in_controller = |line: &str, c: &str| line.split(':').nth(1).unwrap().split(',').any(|x| x == c);

    let lines = cgroups_of(&["--cgroup", "memory:submem", "--cgroup", "cpu,cpuacct:/subcpu"]);
    for l in &lines {
        let want = match () {
            _ if in_controller(l, "memory") => ":/submem",
            _ if in_controller(l, "cpu") || in_controller(l, "cpuacct") => ":/subcpu",
            _ => ":/",
        };
        assert!(l.ends_with(want), "{l}: want {want} in {lines:?}");
    }
    let lines = cgroups_of(&["--cgroup", "all"]);
    assert!(lines.iter().all(|l| l.ends_with(":/all")), "{lines:?}");
    for top in ["/", ""] {
        let lines = cgroups_of(&["--cgroup", top]);
        assert!(lines.iter().all(|l| l.ends_with(":/")), "{top:?}: {lines:?}");
    }

    // Out of the container's cgroup, or not there: refused, nothing left running.
    for (args, why) in [
        (
            &["--cgroup", ".."][..],
            "exec --cgroup ..: a sub-cgroup cannot be outside the container's cgroup",
        ),
        (&["--cgroup", "all/../.."], "cannot be outside"),
        (&["--cgroup", "memory:../../.."], "cannot be outside"),
        (&["--cgroup", "nonexistent"], "nonexistent: No such file or directory"),
        (&["--cgroup", "cpu:nonexistent"], "/cpu/husk/"),
        (&["--cgroup", "waaaaat:/"], "unknown controller waaaaat"),
        (
            &["--cgroup", "memory:submem", "--cgroup", "memory:all"],
            "controller memory given twice",
        ),
        (&["--cgroup", "a", "--cgroup", "b"], "give CONTROLLER:PATH"),
    ] {
        let o = b.husk(&[&["exec"], args, &["e", "true"]].concat());
        assert!(!o.status.success(), "{args:?} succeeded");
        let err = stderr(&o);
        assert!(err.contains(why) && err.lines().count() == 1, "{args:?}: {err}");
        if args[1].contains("nonexistent") {
            assert!(err.contains("/e/nonexistent: No such file or directory"), "{err}");
        }
    }
    assert_eq!(b.processes().len(), 1, "a failed exec left a process");

    // An init that moved itself to a sub-cgroup: exec still joins the container's
    // cgroup, ps and delete still find it there.
    let pid = b.state("e")["pid"].as_i64().unwrap();
    std::fs::write(cgroup_dir("memory", &path, "submem/cgroup.procs"), pid.to_string()).unwrap();
    let lines = cgroups_of(&[]);
    assert!(lines.iter().all(|l| l.ends_with(":/")), "{lines:?}");
    let ps: Vec<i64> = serde_json::from_slice(&b.husk(&["ps", "-f", "json", "e"]).stdout).unwrap();
    assert!(ps.contains(&pid), "ps misses the init in a sub-cgroup: {ps:?}");
    assert_ok(&b.husk(&["delete", "-f", "e"]));
    b.assert_gone("e");
}

#[test]
fn a_process_in_a_sub_cgroup_does_not_escape_kill_all_or_delete() {
    let mut b = Bundle::new("cg-subkill");
    // Without a pid namespace, only the cgroup finds the init's children.
    b.without_namespace("pid");
    b.script("sleep 35 & sleep 36 & wait");
    assert_ok(&b.husk(&["run", "-d", "--bundle", b.dir.to_str().unwrap(), "s"]));
    let path = b.default_cgroup("s");
    let deadline = Instant::now() + Duration::from_secs(10);
    let children = loop {
        let procs: Vec<String> = v1("pids", &path, "cgroup.procs").lines().map(String::from).collect();
        if procs.len() == 3 {
            break procs;
        }
        assert!(Instant::now() < deadline, "children never started");
        std::thread::sleep(Duration::from_millis(10));
    };
    // What a container with a writable cgroupfs can do: hide a child in a
    // sub-cgroup, nested, in every hierarchy.
    let hierarchies: Vec<String> = std::fs::read_dir("/sys/fs/cgroup")
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|h| cgroup_dir(h, &path, "").is_dir())
        .collect();
    for h in &hierarchies {
        let nested = cgroup_dir(h, &path, "hide/deeper");
        std::fs::create_dir_all(&nested).unwrap();
        if h == "cpuset" {
            for file in ["cpuset.cpus", "cpuset.mems"] {
                for dir in [cgroup_dir(h, &path, "hide"), nested.clone()] {
                    std::fs::write(dir.join(file), v1("cpuset", &path, file)).unwrap();
                }
            }
        }
        std::fs::write(nested.join("cgroup.procs"), &children[2]).unwrap();
    }
    let ps: Vec<i64> = serde_json::from_slice(&b.husk(&["ps", "-f", "json", "s"]).stdout).unwrap();
    assert_eq!(ps.len(), 3, "ps misses the hidden process: {ps:?}");
    assert_ok(&b.husk(&["kill", "--all", "s", "KILL"]));
    b.wait_status("s", "stopped");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !b.processes().is_empty() {
        assert!(Instant::now() < deadline, "survived kill --all: {:?}", b.processes());
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_ok(&b.husk(&["delete", "s"]));
    b.assert_gone("s");
}

/// Makes `levels` sub-cgroups nested in `top`, by fd (together longer than
/// PATH_MAX, as a container in its cgroup namespace can make them), v1
/// cpusets given their cpus and mems; returns the deepest.
fn nest_sub_cgroups(top: &std::path::Path, levels: usize) -> std::os::fd::OwnedFd {
    use nix::fcntl::{openat, OFlag};
    use nix::sys::stat::{mkdirat, Mode};
    let name = "hidden-sub-cgroup-with-a-name-long-enough-to-pass-path-max";
    let cpuset: Vec<(&str, String)> = ["cpuset.cpus", "cpuset.mems"]
        .into_iter()
        .filter_map(|f| Some((f, std::fs::read_to_string(top.join(f)).ok()?)))
        .collect();
    let mut dir = nix::fcntl::open(top, OFlag::O_DIRECTORY | OFlag::O_CLOEXEC, Mode::empty()).unwrap();
    for _ in 0..levels {
        mkdirat(&dir, name, Mode::from_bits_truncate(0o755)).unwrap();
        dir = openat(&dir, name, OFlag::O_DIRECTORY | OFlag::O_CLOEXEC, Mode::empty()).unwrap();
        for (file, value) in &cpuset {
            let fd = openat(&dir, *file, OFlag::O_WRONLY | OFlag::O_CLOEXEC, Mode::empty()).unwrap();
            std::fs::File::from(fd).write_all(value.as_bytes()).unwrap();
        }
    }
    dir
}

/// A container with a writable cgroupfs nests sub-cgroups as deep as it likes:
/// a process hidden below PATH_MAX is still found, frozen, killed, and every
/// level removed.
#[test]
fn a_process_hidden_below_path_max_does_not_escape_pause_or_delete() {
    let mut b = Bundle::new("cg-deep");
    b.without_namespace("pid");
    b.script("sleep 37 & wait");
    assert_ok(&b.husk(&["run", "-d", "--bundle", b.dir.to_str().unwrap(), "d"]));
    let path = b.default_cgroup("d");
    let deadline = Instant::now() + Duration::from_secs(10);
    let child = loop {
        let procs: Vec<String> = v1("pids", &path, "cgroup.procs").lines().map(String::from).collect();
        if procs.len() == 2 {
            break procs[1].clone();
        }
        assert!(Instant::now() < deadline, "the child never started");
        std::thread::sleep(Duration::from_millis(10));
    };
    let mut deepest_freezer = None;
    for h in std::fs::read_dir("/sys/fs/cgroup").unwrap().flatten() {
        let hierarchy = h.file_name().to_string_lossy().into_owned();
        let top = cgroup_dir(&hierarchy, &path, "");
        if top.is_dir() {
            let deepest = nest_sub_cgroups(&top, 80);
            let procs = nix::fcntl::openat(
                &deepest,
                "cgroup.procs",
                nix::fcntl::OFlag::O_WRONLY | nix::fcntl::OFlag::O_CLOEXEC,
                nix::sys::stat::Mode::empty(),
            )
            .unwrap();
            std::fs::File::from(procs).write_all(child.as_bytes()).unwrap();
            if hierarchy == "freezer" {
                deepest_freezer = Some(deepest);
            }
        }
    }
    let ps: Vec<i64> = serde_json::from_slice(&b.husk(&["ps", "-f", "json", "d"]).stdout).unwrap();
    assert_eq!(ps.len(), 2, "ps misses the hidden process: {ps:?}");
    let freezer_state = || {
        let dir = deepest_freezer.as_ref().expect("no freezer hierarchy");
        let flags = nix::fcntl::OFlag::O_RDONLY | nix::fcntl::OFlag::O_CLOEXEC;
        let fd = nix::fcntl::openat(dir, "freezer.state", flags, nix::sys::stat::Mode::empty()).unwrap();
        std::io::read_to_string(std::fs::File::from(fd)).unwrap()
    };
    assert_ok(&b.husk(&["pause", "d"]));
    assert_eq!(freezer_state().trim(), "FROZEN");
    assert_ok(&b.husk(&["resume", "d"]));
    assert_eq!(freezer_state().trim(), "THAWED");
    assert_ok(&b.husk(&["delete", "-f", "d"]));
    b.assert_gone("d");
}

/// A sub-cgroup the container removes while husk walks its cgroup answers
/// ENODEV (its files) rather than ENOENT: it is skipped as gone, not a failure
/// of `pause` or `ps` (1.6% of pauses failed against such a loop).
#[test]
fn sub_cgroups_removed_during_the_walk_fail_neither_pause_nor_ps() {
    let mut b = Bundle::new("cg-churn");
    b.script("sleep 38");
    assert_ok(&b.husk(&["run", "-d", "--bundle", b.dir.to_str().unwrap(), "c"]));
    let path = b.default_cgroup("c");
    // What a container with a writable cgroupfs can do, done from the host.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let churn = {
        let stop = stop.clone();
        let dirs: Vec<PathBuf> = ["freezer", "pids"]
            .iter()
            .flat_map(|h| ["a", "b", "c", "d"].map(|n| cgroup_dir(h, &path, n)))
            .collect();
        std::thread::spawn(move || {
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                for d in &dirs {
                    let _ = std::fs::create_dir(d);
                }
                for d in &dirs {
                    let _ = std::fs::remove_dir(d);
                }
            }
        })
    };
    let mut failures = Vec::new();
    for _ in 0..300 {
        for args in [["pause", "c"], ["resume", "c"], ["ps", "c"]] {
            let o = b.husk(&args);
            if !o.status.success() {
                failures.push(format!("{}: {}", args[0], stderr(&o).trim()));
            }
        }
        if b.status("c") == "paused" {
            assert_ok(&b.husk(&["resume", "c"]));
        }
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    churn.join().unwrap();
    assert!(failures.is_empty(), "{} failed: {failures:?}", failures.len());
    assert_ok(&b.husk(&["delete", "-f", "c"]));
    b.assert_gone("c");
}

/// On a pure v1 host the init enters its cgroup, and creates its cgroup
/// namespace, only at its cgroup gate. A mount of type `cgroup2` (not
/// `cgroup`) must wait for it too: made before, it is rooted at husk's cgroup
/// namespace, and the container sees (and may write) the host's whole cgroup2
/// tree. husk starts in a cgroup2 directory of its own here, so that the
/// container's root there differs from the host's.
#[test]
fn a_cgroup2_mount_on_pure_v1_shows_only_the_containers_cgroup() {
    let host = std::path::Path::new("/sys/fs/cgroup/unified");
    if !host.join("cgroup.procs").exists() {
        return; // no cgroup2 hierarchy mounted to start husk below its root
    }
    let mut b = Bundle::on_pure_v1("cg2-mount-v1");
    let mounts = b.config["mounts"].as_array_mut().unwrap();
    mounts.retain(|m| m["type"] != "cgroup");
    // Before any `cgroup` mount, which would open the gate first.
    mounts.insert(
        0,
        json!({"destination": "/mnt/cg2", "type": "cgroup2", "source": "cgroup2", "options": ["nosuid", "noexec", "nodev"]}),
    );
    // The container's processes are in its cgroup2 root's cgroup.procs; from
    // the host's root they would not be.
    b.config["process"]["args"] = json!([
        "sh",
        "-c",
        "grep -qx 1 /mnt/cg2/cgroup.procs && echo own || ls /mnt/cg2"
    ]);
    b.config["linux"]["resources"] = json!({"pids": {"limit": 100}});
    b.save();
    let start = host.join(format!("husk-test-cg2-mount-{}", std::process::id()));
    std::fs::create_dir(&start).unwrap();
    let mut cmd = std::process::Command::new("sh");
    cmd.args(["-c", "echo $$ > \"$0\" && exec \"$@\""])
        .arg(start.join("cgroup.procs"))
        .args(b.husk_argv())
        .arg("--root")
        .arg(&b.root)
        .args(["run", "--bundle", b.dir.to_str().unwrap(), "c"])
        .current_dir(&b.dir);
    b.tag(&mut cmd);
    let o = run_with_timeout(&mut cmd, COMMAND_TIMEOUT);
    let _ = std::fs::remove_dir(&start);
    assert_ok(&o);
    assert_eq!(stdout(&o).trim(), "own", "the container sees the host's cgroup2 tree");
}

/// A container that joins a mount namespace gets the cgroup hierarchies
/// mounted there, not those of husk's own (which `create` found before the
/// clone): here husk sees a pure v1 host, the joined namespace has the
/// host's cgroup2 mount too.
#[test]
fn a_joined_mount_namespace_gets_its_own_cgroup_hierarchies() {
    if !std::path::Path::new("/sys/fs/cgroup/unified/cgroup.procs").exists() {
        return; // no cgroup2 mount to tell the two apart
    }
    let mut b = Bundle::on_pure_v1("cg-joined-mnt");
    let mut holder = std::process::Command::new("unshare")
        .args(["-m", "--propagation", "private", "sleep", "60"])
        .spawn()
        .unwrap();
    // unshare execs sleep once its namespace exists.
    let ns = format!("/proc/{}/ns/mnt", holder.id());
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::fs::read_link(&ns).ok() == std::fs::read_link("/proc/self/ns/mnt").ok() {
        assert!(Instant::now() < deadline, "unshare -m never made its namespace");
        std::thread::sleep(Duration::from_millis(10));
    }
    for n in b.config["linux"]["namespaces"].as_array_mut().unwrap() {
        if n["type"] == "mount" {
            n["path"] = json!(ns);
        }
    }
    b.config["process"]["args"] = json!(["ls", "/sys/fs/cgroup"]);
    b.save();
    let o = b.run("c");
    let _ = holder.kill();
    let _ = holder.wait();
    assert_ok(&o);
    assert!(stdout(&o).lines().any(|l| l == "unified"), "{}", stdout(&o));
}

/// The `tasks` files husk hands the init on a pure v1 host (SCM_RIGHTS) are
/// closed once it has moved itself: none is left in the created init, nor in
/// the container's process after start, with or without --preserve-fds.
#[test]
fn the_handed_tasks_files_stay_out_of_the_container_on_pure_v1() {
    let mut b = Bundle::on_pure_v1("cg-tasks-fds");
    b.config["process"]["args"] = json!(["sleep", "1000"]);
    b.config["linux"]["resources"] = json!({"pids": {"limit": 100}});
    b.save();
    let cgroup_fds = |pid: i64| -> Vec<String> {
        std::fs::read_dir(format!("/proc/{pid}/fd"))
            .unwrap()
            .filter_map(|e| std::fs::read_link(e.unwrap().path()).ok())
            .map(|t| t.display().to_string())
            .filter(|t| t.contains("/sys/fs/cgroup") || t.ends_with("/tasks"))
            .collect()
    };
    for (id, preserve) in [("plain", "0"), ("preserving", "2")] {
        let mut cmd = std::process::Command::new(&b.husk_argv()[0]);
        cmd.args(&b.husk_argv()[1..])
            .arg("--root")
            .arg(&b.root)
            .args([
                "create",
                "--preserve-fds",
                preserve,
                "--bundle",
                b.dir.to_str().unwrap(),
                id,
            ])
            .current_dir(&b.dir);
        pass_fds(&mut cmd, vec![(0, 3), (0, 4)]);
        b.tag(&mut cmd);
        assert_ok(&run_with_timeout(&mut cmd, COMMAND_TIMEOUT));
        let pid = b.state(id)["pid"].as_i64().unwrap();
        assert_eq!(cgroup_fds(pid), Vec::<String>::new(), "{id}: created init");
        assert_ok(&b.husk(&["start", id]));
        assert_eq!(cgroup_fds(pid), Vec::<String>::new(), "{id}: container process");
        assert_ok(&b.husk(&["delete", "-f", id]));
    }
}

/// The /sys/fs/cgroup mounts of the container, with what differs between
/// containers (the per-root directory, optional fields) left out: root,
/// mountpoint, options, and the filesystem part.
fn cgroup_mounts_seen_inside(b: &mut Bundle) -> String {
    let out = b.output_of(
        "awk '$5 ~ \"^/sys/fs/cgroup\"' /proc/self/mountinfo; echo ---; \
         touch /sys/fs/cgroup/x /sys/fs/cgroup/pids/x 2>&1; cat /sys/fs/cgroup/pids/cgroup.procs",
    );
    let (info, rest) = out.split_once("---\n").unwrap();
    let mut lines: Vec<String> = info
        .lines()
        .map(|l| {
            let fields: Vec<&str> = l.split(' ').collect();
            let fs = l.split_once(" - ").unwrap().1;
            let root = fields[3]
                .split('/')
                .map(|c| if c.starts_with("root=") { "ROOT" } else { c });
            format!(
                "{} {} {} - {fs}",
                root.collect::<Vec<_>>().join("/"),
                fields[4],
                fields[5]
            )
        })
        .collect();
    lines.sort();
    format!("{}\n---\n{rest}", lines.join("\n"))
}

/// On a pure v1 host `create` builds the container's cgroup tmpfs and the
/// init attaches it (rootfs::cgroup_tree_for_init); with a user namespace the
/// init builds it itself. Both must give the same mounts: read-only binds of
/// the container's own cgroup, in a read-only tmpfs.
#[test]
fn the_v1_cgroup_tmpfs_is_the_same_whoever_builds_it() {
    let bundle = |name: &str| {
        let mut b = Bundle::on_pure_v1(name);
        b.without_namespace("cgroup");
        b
    };
    let mut by_create = bundle("cg-tree-create");
    let mut by_init = bundle("cg-tree-init");
    by_init.with_user_namespace(0, 0);
    let built = cgroup_mounts_seen_inside(&mut by_create);
    assert_eq!(built, cgroup_mounts_seen_inside(&mut by_init));
    let (mounts, rest) = built.split_once("\n---\n").unwrap();
    let top = mounts.lines().find(|l| l.contains(" /sys/fs/cgroup ")).unwrap();
    assert!(top.starts_with("/ /sys/fs/cgroup ro,nosuid,nodev,noexec"), "{top}");
    assert!(top.ends_with("- tmpfs tmpfs ro,mode=755"), "{top}");
    let pids = mounts.lines().find(|l| l.contains(" /sys/fs/cgroup/pids ")).unwrap();
    assert!(pids.starts_with("/husk/ROOT/out /sys/fs/cgroup/pids ro,"), "{pids}");
    assert!(rest.contains("/sys/fs/cgroup/x: Read-only file system"), "{rest}");
    assert!(rest.contains("/sys/fs/cgroup/pids/x: Read-only file system"), "{rest}");
    assert!(rest.lines().any(|l| l == "1"), "the init is in that cgroup: {rest}");
}

/// A rootfs whose /sys/fs/cgroup is a symlink out of it: the tmpfs `create`
/// built is still attached inside the rootfs, where the symlink leads from
/// the container's root, never on the host's path.
#[test]
fn the_cgroup_tmpfs_create_builds_lands_inside_the_rootfs() {
    let mut b = Bundle::on_pure_v1("cg-tree-symlink");
    b.without_namespace("cgroup");
    // No sysfs over /sys: the rootfs's own /sys/fs/cgroup is the destination.
    b.config["mounts"]
        .as_array_mut()
        .unwrap()
        .retain(|m| m["destination"] != "/sys");
    let outside = std::env::temp_dir().join(format!("husk-cg-escape-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&outside);
    let fs_dir = b.rootfs().join("sys/fs");
    std::fs::create_dir_all(&fs_dir).unwrap();
    let _ = std::fs::remove_dir(fs_dir.join("cgroup"));
    let escape = format!("../../../../../../../..{}", outside.display());
    std::os::unix::fs::symlink(&escape, fs_dir.join("cgroup")).unwrap();
    let out = b.output_of(&format!("ls {}", outside.display()));
    assert!(
        out.lines().any(|l| l == "pids"),
        "the cgroup tmpfs where the link leads inside: {out}"
    );
    assert!(!outside.exists(), "a host directory was made at {}", outside.display());
}

/// Once a shared-pid container's init is gone, containerd's shim kills what
/// it left in the cgroup with `kill --all`: husk 0.1.0 (4491cad) refused
/// ("not running") and left the processes running until `delete`. As runc,
/// --all reaches the cgroup whatever the init's state.
#[test]
fn kill_all_reaches_what_a_stopped_init_left_in_its_cgroup() {
    let mut b = Bundle::new("cg-killall-stopped");
    b.without_namespace("pid");
    b.script("sleep 1234 & exit 0");
    assert_ok(&b.husk(&["run", "-d", "--bundle", b.dir.to_str().unwrap(), "k"]));
    b.wait_status("k", "stopped");
    assert!(!b.processes().is_empty(), "the init left its child");
    assert_ok(&b.husk(&["kill", "--all", "k", "KILL"]));
    let deadline = Instant::now() + Duration::from_secs(10);
    while !b.processes().is_empty() {
        assert!(Instant::now() < deadline, "kill --all missed {:?}", b.processes());
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_ok(&b.husk(&["delete", "k"]));
    b.assert_gone("k");
}

/// On cgroup v1 a frozen process dies of SIGKILL only once thawed: husk
/// 0.1.0 (4491cad) left a paused container paused after `kill KILL`, and
/// `delete` refused it ("not stopped: paused") until a `resume`. As runc, a
/// SIGKILL thaws it.
#[test]
fn a_paused_container_killed_stops() {
    let mut b = Bundle::new("cg-killpaused");
    b.script("sleep 30");
    assert_ok(&b.husk(&["run", "-d", "--bundle", b.dir.to_str().unwrap(), "p"]));
    assert_ok(&b.husk(&["pause", "p"]));
    assert_eq!(b.status("p"), "paused");
    assert_ok(&b.husk(&["kill", "p", "KILL"]));
    b.wait_status("p", "stopped");
    assert_ok(&b.husk(&["delete", "p"]));
    b.assert_gone("p");
}

/// As runc: a created container can be paused (its waiting init frozen);
/// it is `paused` until resumed, `start` refuses it meanwhile, and resumed
/// it is created again and starts. husk refused the pause ("not running").
#[test]
fn a_created_container_pauses_and_resumes_to_created() {
    let mut b = Bundle::new("cg-pausecreated");
    b.config["root"]["readonly"] = serde_json::json!(false);
    b.script("echo ran > /tmp/ran; sleep 30");
    assert_ok(&b.create("p"));
    assert_ok(&b.husk(&["pause", "p"]));
    assert_eq!(b.status("p"), "paused");
    let o = b.husk(&["start", "p"]);
    assert!(!o.status.success(), "start of a paused container succeeded");
    assert!(stderr(&o).contains("paused"), "{}", stderr(&o));
    let o = b.husk(&["delete", "p"]);
    assert!(stderr(&o).contains("not stopped: paused"), "{}", stderr(&o));
    assert_ok(&b.husk(&["resume", "p"]));
    assert_eq!(b.status("p"), "created");
    assert_ok(&b.husk(&["start", "p"]));
    b.wait_status("p", "running");
    let ran = b.rootfs().join("tmp/ran");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !ran.exists() {
        assert!(std::time::Instant::now() < deadline, "the program never ran");
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    assert_ok(&b.husk(&["delete", "--force", "p"]));
    b.assert_gone("p");
}

/// A probe (`kill --all ID 0`) changes nothing, and a paused container stays
/// paused under other signals: 1a7e6b3 froze and then thawed the cgroup for
/// every signal, so a probe unpaused a paused container, and a probe killed
/// between the two left a running one frozen (the outside review). SIGKILL
/// still ends a paused one.
#[test]
fn kill_all_leaves_a_paused_container_paused_but_for_sigkill() {
    let mut b = Bundle::new("cg-killall-paused");
    b.script("sleep 30");
    assert_ok(&b.husk(&["run", "-d", "--bundle", b.dir.to_str().unwrap(), "p"]));
    assert_ok(&b.husk(&["kill", "--all", "p", "0"]));
    assert_eq!(b.status("p"), "running");
    assert_ok(&b.husk(&["pause", "p"]));
    for sig in ["0", "WINCH"] {
        assert_ok(&b.husk(&["kill", "--all", "p", sig]));
        assert_eq!(b.status("p"), "paused", "after {sig}");
    }
    assert_ok(&b.husk(&["kill", "--all", "p", "KILL"]));
    b.wait_status("p", "stopped");
    assert_ok(&b.husk(&["delete", "p"]));
    b.assert_gone("p");
}

/// A hugepageLimits pageSize is part of a file name: one that climbs out
/// (`x/../../..`) is refused, in config.json and in `update`, and no file
/// outside the container's cgroup is written. husk 5f164bf wrote a host file
/// as root once the container had made a `hugetlb.x` directory in its cgroup.
#[test]
fn a_hugepage_size_that_climbs_out_of_the_cgroup_is_refused() {
    let mut b = limited("cg-hugetlb-path");
    let victim = b.dir.join("victim");
    let (hierarchy, suffix) = match unified_has("hugetlb") {
        true => ("/sys/fs/cgroup/unified", "max"),
        false => ("/sys/fs/cgroup/hugetlb", "limit_in_bytes"),
    };
    let victim_file = PathBuf::from(format!("{}.{suffix}", victim.display()));
    std::fs::write(&victim_file, "original\n").unwrap();
    let climb = format!(
        "x/{}{}",
        "../".repeat(16),
        victim.to_str().unwrap().trim_start_matches('/')
    );

    let sane = b.config["linux"]["resources"].clone();
    b.config["linux"]["resources"]["hugepageLimits"] = json!([{"pageSize": climb, "limit": 1}]);
    b.save();
    b.create_fails("h", "linux.resources.hugepageLimits[0].pageSize");
    b.config["linux"]["resources"] = sane;
    b.save();

    assert_ok(&b.create("h"));
    // What the container could make in a cgroup it may write.
    let planted = PathBuf::from(hierarchy)
        .join(b.default_cgroup("h").trim_start_matches('/'))
        .join("hugetlb.x");
    std::fs::create_dir(&planted).unwrap();
    let request = json!({"hugepageLimits": [{"pageSize": climb, "limit": 1}]}).to_string();
    let file = b.dir.join("resources.json");
    std::fs::write(&file, request).unwrap();
    let o = b.husk(&["update", "--resources", file.to_str().unwrap(), "h"]);
    std::fs::remove_dir(&planted).unwrap();
    assert!(!o.status.success(), "update took a page size that climbs out");
    assert_eq!(stderr(&o).lines().count(), 1, "{}", stderr(&o));
    assert!(stderr(&o).contains("hugepageLimits[0].pageSize"), "{}", stderr(&o));
    assert_eq!(std::fs::read_to_string(&victim_file).unwrap(), "original\n");
    assert_ok(&b.husk(&["delete", "-f", "h"]));
    b.assert_gone("h");
}

/// Moves a process of running container `id` other than its init into a
/// sub-cgroup of its v1 freezer cgroup and freezes that (as a container with
/// its own cgroupfs mount can); returns the sub-cgroup.
fn freeze_a_sub_cgroup(b: &Bundle, id: &str) -> PathBuf {
    let top = std::path::Path::new("/sys/fs/cgroup/freezer").join(b.default_cgroup(id).trim_start_matches('/'));
    freeze_a_sub_cgroup_of(&top, &[b.state(id)["pid"].as_i64().unwrap() as u32])
}

/// Moves a process of the v1 freezer cgroup `top` but those in `skip` into
/// its sub-cgroup `sub` and freezes that; returns the sub-cgroup.
fn freeze_a_sub_cgroup_of(top: &std::path::Path, skip: &[u32]) -> PathBuf {
    let deadline = Instant::now() + Duration::from_secs(10);
    let other = loop {
        let procs = std::fs::read_to_string(top.join("cgroup.procs")).unwrap();
        if let Some(p) = procs.lines().find(|p| !skip.iter().any(|s| s.to_string() == *p)) {
            break p.to_string();
        }
        assert!(Instant::now() < deadline, "the container's second process never came");
        std::thread::sleep(Duration::from_millis(10));
    };
    freeze_into(&top.join("sub"), &other)
}

/// Makes the v1 freezer cgroup `dir`, moves `pid` into it and freezes it.
fn freeze_into(dir: &std::path::Path, pid: &str) -> PathBuf {
    let deadline = Instant::now() + Duration::from_secs(10);
    std::fs::create_dir(dir).unwrap();
    std::fs::write(dir.join("cgroup.procs"), pid).unwrap();
    std::fs::write(dir.join("freezer.state"), "FROZEN").unwrap();
    while std::fs::read_to_string(dir.join("freezer.state")).unwrap().trim() != "FROZEN" {
        assert!(Instant::now() < deadline, "the sub-cgroup never froze");
        std::thread::sleep(Duration::from_millis(10));
    }
    dir.to_path_buf()
}

/// A container that froze a sub-cgroup of its own (v1) could not be
/// deleted: its init, killed, waited in its exit for the frozen processes of
/// its pid namespace, which die of SIGKILL only once thawed; `delete -f`
/// failed after 10 s, for ever, and `kill --all` left it running (review
/// 42, F2; runc fails the same). Both thaw the sub-cgroups they kill now.
#[test]
fn a_sub_cgroup_the_container_froze_keeps_it_from_neither_delete_nor_kill() {
    let mut b = Bundle::new("cg-frozen-sub");
    b.script("sleep 1000 & wait");
    assert_ok(&b.husk(&["run", "-d", "--bundle", b.dir.to_str().unwrap(), "f"]));
    freeze_a_sub_cgroup(&b, "f");
    let o = b.husk(&["delete", "-f", "f"]);
    assert_ok(&o);
    b.assert_gone("f");

    assert_ok(&b.husk(&["run", "-d", "--bundle", b.dir.to_str().unwrap(), "k"]));
    freeze_a_sub_cgroup(&b, "k");
    assert_ok(&b.husk(&["kill", "--all", "k", "KILL"]));
    b.wait_status("k", "stopped");
    assert_ok(&b.husk(&["delete", "k"]));
    b.assert_gone("k");
}

/// The same when `kill --all` cannot get its freeze turn (its holder
/// stopped): it signals without freezing, and thawed the container's own
/// cgroup only, so the frozen sub-cgroup's process, and the init that
/// waited for it, stayed (review 56e F1).
#[test]
fn a_kill_all_without_its_turn_reaches_a_frozen_sub_cgroup() {
    let mut b = Bundle::new("cg-frozen-sub-noturn");
    b.script("sleep 1000 & wait");
    assert_ok(&b.husk(&["run", "-d", "--bundle", b.dir.to_str().unwrap(), "k"]));
    freeze_a_sub_cgroup(&b, "k");
    let holder = StoppedFlock::on(&b.root.join("k").join("freeze.lock"));
    let killed = b.husk(&["kill", "--all", "k", "KILL"]);
    assert_ok(&killed);
    assert!(
        stderr(&killed).contains("signalling without freezing"),
        "{}",
        stderr(&killed)
    );
    b.wait_status("k", "stopped");
    drop(holder);
    assert_ok(&b.husk(&["delete", "k"]));
    b.assert_gone("k");
}

/// The same in a cgroup husk did not make (a cgroupsPath that existed):
/// husk neither kills nor thaws such a cgroup, whose other processes are its
/// owner's, so `delete -f` failed after 10 s, for ever (review 42b G3; runc
/// the same). The sub-cgroups whose every process is of the container's pid
/// namespace are thawed now, also an empty one frozen above them (which kept
/// them frozen: review 45b, F1); one holding a process of the host stays
/// frozen.
#[test]
fn a_sub_cgroup_the_container_froze_in_a_foreign_cgroup_keeps_it_from_delete() {
    for above in [false, true] {
        let mut bystander = Bystander::new();
        let mut b = Bundle::new("cg-foreign-frozen-sub");
        b.config["linux"]["cgroupsPath"] = json!(bystander.path);
        b.script("sleep 1000 & wait");
        assert_ok(&b.husk(&["run", "-d", "--bundle", b.dir.to_str().unwrap(), "f"]));
        let top = std::path::Path::new("/sys/fs/cgroup/freezer").join(bystander.path.trim_start_matches('/'));
        let init = b.state("f")["pid"].as_i64().unwrap() as u32;
        let containers = match above {
            false => freeze_a_sub_cgroup_of(&top, &[init, bystander.child.id()]),
            true => freeze_empty_above(&top, &[init, bystander.child.id()]),
        };
        let mut owners_process = std::process::Command::new("sleep").arg("60").spawn().unwrap();
        let owners = freeze_into(&top.join("owners"), &owners_process.id().to_string());
        let deleted = b.husk(&["delete", "-f", "f"]);
        let owners_state = std::fs::read_to_string(owners.join("freezer.state")).unwrap();
        // Undone before the checks, whatever they find.
        std::fs::write(owners.join("freezer.state"), "THAWED").unwrap();
        let _ = owners_process.kill();
        let _ = owners_process.wait();
        std::fs::write(containers.join("freezer.state"), "THAWED").unwrap();
        if !deleted.status.success() {
            let _ = b.husk(&["delete", "-f", "f"]);
        }
        for dir in [owners, containers.join("inner"), containers] {
            let deadline = Instant::now() + Duration::from_secs(5);
            while dir.exists() && std::fs::remove_dir(&dir).is_err() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(10));
            }
        }
        assert!(deleted.status.success(), "above: {above}: {}", stderr(&deleted));
        b.assert_gone("f");
        assert_eq!(
            owners_state.trim(),
            "FROZEN",
            "delete -f thawed the cgroup owner's sub-cgroup"
        );
        bystander.assert_untouched();
    }
}

/// A container that joined a pid namespace by path, in a cgroup husk did not
/// make, whose init sits in a sub-cgroup it froze: the killed init could not
/// die, and `delete -f` failed after 10 s (review 45c G1). The init and its
/// descendants are the container's there, and thawed; what else shares the
/// namespace is not: another container's paused cgroup below stays paused
/// (review 45b F2, which thawed it).
#[test]
fn a_container_in_a_joined_pid_namespace_that_froze_its_init_is_deleted_alone() {
    let mut holder = std::process::Command::new("unshare")
        .args(["--pid", "--fork", "--kill-child", "--mount-proc", "sleep", "60"])
        .spawn()
        .unwrap();
    let children = format!("/proc/{0}/task/{0}/children", holder.id());
    let deadline = Instant::now() + Duration::from_secs(10);
    let namespace_init = loop {
        if let Some(pid) = std::fs::read_to_string(&children)
            .unwrap_or_default()
            .split_whitespace()
            .next()
        {
            break pid.to_string();
        }
        assert!(Instant::now() < deadline, "unshare's child never came");
        std::thread::sleep(Duration::from_millis(10));
    };
    let joined = json!({"type": "pid", "path": format!("/proc/{namespace_init}/ns/pid")});
    let bystander = Bystander::new();
    let mut a = Bundle::new("cg-joined-a");
    let mut b = Bundle::new("cg-joined-b");
    for (bundle, path) in [
        (&mut a, bystander.path.clone()),
        (&mut b, format!("{}/b", bystander.path)),
    ] {
        bundle.config["linux"]["cgroupsPath"] = json!(path);
        let namespaces = bundle.config["linux"]["namespaces"].as_array_mut().unwrap();
        namespaces.retain(|ns| ns["type"] != "pid");
        namespaces.push(joined.clone());
        bundle.script("sleep 1000");
        assert_ok(&bundle.husk(&["run", "-d", "--bundle", bundle.dir.to_str().unwrap(), "j"]));
    }
    assert_ok(&b.husk(&["pause", "j"]));
    let top = std::path::Path::new("/sys/fs/cgroup/freezer").join(bystander.path.trim_start_matches('/'));
    let init = a.state("j")["pid"].as_i64().unwrap().to_string();
    let frozen = freeze_into(&top.join("z"), &init);
    let deleted = a.husk(&["delete", "-f", "j"]);
    let b_status = b.status("j");
    // Undone before the checks, whatever they find.
    std::fs::write(frozen.join("freezer.state"), "THAWED").unwrap();
    if !deleted.status.success() {
        let _ = a.husk(&["delete", "-f", "j"]);
    }
    assert_ok(&b.husk(&["delete", "-f", "j"]));
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(namespace_init.parse().unwrap()),
        nix::sys::signal::Signal::SIGKILL,
    );
    let _ = holder.kill();
    let _ = holder.wait();
    let deadline = Instant::now() + Duration::from_secs(5);
    while frozen.exists() && std::fs::remove_dir(&frozen).is_err() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(deleted.status.success(), "{}", stderr(&deleted));
    a.assert_gone("j");
    b.assert_gone("j");
    assert_eq!(b_status, "paused", "delete -f of one container resumed another");
}

/// Moves a process of the v1 freezer cgroup `top` but those in `skip` into
/// its sub-cgroup `sub/inner`, and freezes `sub`, empty itself; returns `sub`.
fn freeze_empty_above(top: &std::path::Path, skip: &[u32]) -> PathBuf {
    let sub = freeze_a_sub_cgroup_of(top, skip);
    let pid = std::fs::read_to_string(sub.join("cgroup.procs")).unwrap();
    std::fs::write(sub.join("freezer.state"), "THAWED").unwrap();
    std::fs::create_dir(sub.join("inner")).unwrap();
    std::fs::write(sub.join("inner/cgroup.procs"), pid.trim()).unwrap();
    std::fs::write(sub.join("freezer.state"), "FROZEN").unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::fs::read_to_string(sub.join("inner/freezer.state")).unwrap().trim() != "FROZEN" {
        assert!(Instant::now() < deadline, "the sub-cgroup never froze");
        std::thread::sleep(Duration::from_millis(10));
    }
    sub
}

/// A cgroupsPath whose v1 freezer cgroup is frozen (it existed so) froze the
/// init as it joined, and create waited for it for ever; `run`, which holds
/// SIGTERM for the container's process, could be ended by SIGKILL only
/// (runc fails: "container's cgroup unexpectedly frozen"). Refused now,
/// naming the cgroup, for create and run, on this host and a pure v1 one
/// (where the init moves itself in after the clone).
#[test]
fn a_frozen_cgroup_is_refused_rather_than_waited_for() {
    let path = format!("husk-test-frozen-{}", std::process::id());
    let freezer = std::path::Path::new("/sys/fs/cgroup/freezer").join(&path);
    std::fs::create_dir(&freezer).unwrap();
    std::fs::write(freezer.join("freezer.state"), "FROZEN").unwrap();
    for mut b in [Bundle::new("cg-frozen"), Bundle::on_pure_v1("cg-frozen-v1")] {
        b.config["linux"]["cgroupsPath"] = json!(format!("/{path}"));
        b.script("true");
        b.create_fails("f", "it is frozen");
        let o = b.run("r");
        assert!(!o.status.success(), "run into a frozen cgroup succeeded");
        assert!(
            stderr(&o).contains(&format!("cgroup /{path}: it is frozen")),
            "{}",
            stderr(&o)
        );
        b.assert_gone("r");
    }
    std::fs::write(freezer.join("freezer.state"), "THAWED").unwrap();
    for h in Bystander::hierarchies() {
        let _ = std::fs::remove_dir(h.join(&path));
        assert!(!h.join(&path).exists(), "{} left", h.join(&path).display());
    }
}

/// A foreground `run` whose init froze (the v1 freezer: a pod member with
/// the cgroup's freezer in reach) before its process started: a SIGTERM
/// ended the grace, and husk then waited for ever for the killed init,
/// which dies only once thawed (review 43, F1). Its cgroup is killed now,
/// which thaws it, and nothing is left.
#[test]
fn a_foreground_run_frozen_before_its_process_starts_still_ends_on_sigterm() {
    for (kind, sleep) in [("createRuntime", "/usr/bin/sleep"), ("startContainer", "/bin/sleep")] {
        let mut b = Bundle::new(&format!("cg-run-frozen-{kind}"));
        let marker = format!("HUSK_TEST_BUNDLE={}", b.dir.display());
        b.config["hooks"] = json!({ kind: [{"path": sleep, "args": ["sleep", "1000"], "env": [marker]}] });
        b.script("true");
        let mut run = b.spawn_run("r");
        let state = PathBuf::from("/sys/fs/cgroup/freezer")
            .join(b.default_cgroup("r").trim_start_matches('/'))
            .join("freezer.state");
        let deadline = Instant::now() + Duration::from_secs(10);
        while !state.exists() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        std::thread::sleep(Duration::from_millis(500));
        std::fs::write(&state, "FROZEN").unwrap();
        let _thaw = ThawOnDrop(state.clone());
        send_signal(&run, nix::sys::signal::Signal::SIGTERM);
        let status = wait_within(&mut run, Duration::from_secs(15), "run after SIGTERM, its init frozen");
        let err = std::fs::read_to_string(b.dir.join("run.err")).unwrap();
        assert!(!status.success(), "{kind}: {err}");
        assert!(err.contains("SIGTERM came"), "{kind}: {err}");
        b.assert_gone("r");
    }
}

/// The same with the per-root parent (husk/root=HASH) frozen instead: the
/// init cannot be thawed, and run took 27 s (two 10 s waits for a thaw)
/// and left the cgroup behind with no state that named it (review 43b,
/// N1). It ends soon after the grace now, and keeps the state, which
/// `delete -f` removes with the cgroup once the parent is thawed.
#[test]
fn a_foreground_run_under_a_frozen_parent_keeps_its_state_for_delete() {
    let mut b = Bundle::new("cg-run-parent-frozen");
    let marker = format!("HUSK_TEST_BUNDLE={}", b.dir.display());
    b.config["hooks"] =
        json!({ "createRuntime": [{"path": "/usr/bin/sleep", "args": ["sleep", "1000"], "env": [marker]}] });
    b.script("true");
    let mut run = b.spawn_run("r");
    let own = PathBuf::from("/sys/fs/cgroup/freezer").join(b.default_cgroup("r").trim_start_matches('/'));
    let deadline = Instant::now() + Duration::from_secs(10);
    while !own.exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(500));
    let parent = own.parent().unwrap().join("freezer.state");
    std::fs::write(&parent, "FROZEN").unwrap();
    let thaw = ThawOnDrop(parent);
    send_signal(&run, nix::sys::signal::Signal::SIGTERM);
    let status = wait_within(
        &mut run,
        Duration::from_secs(15),
        "run after SIGTERM, its parent cgroup frozen",
    );
    let err = std::fs::read_to_string(b.dir.join("run.err")).unwrap();
    assert!(!status.success(), "{err}");
    assert!(err.contains("SIGTERM came"), "{err}");
    assert!(b.root.join("r").exists(), "the state naming the cgroup is gone: {err}");
    drop(thaw);
    assert_ok(&b.husk(&["delete", "-f", "r"]));
    b.assert_gone("r");
}

/// Thaws a v1 freezer cgroup the test froze, whatever happens to the test.
struct ThawOnDrop(PathBuf);

impl Drop for ThawOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::write(&self.0, "THAWED");
    }
}

/// A cgroupsPath through a file of the cgroupfs (`/tasks/y`) fails create
/// and leaves nothing: 8fba0c9 kept the state of every create whose cgroup
/// could not be removed, and no `delete` could remove this one (review 43c).
#[test]
fn a_cgroups_path_through_a_cgroup_file_fails_and_leaves_nothing() {
    let mut b = Bundle::new("cg-path-file");
    b.config["linux"]["cgroupsPath"] = json!("/tasks/y");
    b.script("true");
    b.create_fails("f", "Not a directory");
}

/// The per-root cpuset husk makes has the kernel give its cpus and mems to
/// every container's cpuset (cgroup.clone_children): no copy, whose writes
/// make the kernel rebuild its scheduling domains in time that grows with
/// the number of cpusets. One made without it (by an older husk) still has
/// them copied.
#[test]
fn containers_cpusets_get_the_per_root_cpus_and_mems() {
    let b = Bundle::new("cg-clone");
    assert_ok(&b.create("a"));
    let a = b.default_cgroup("a");
    let per_root = a.rsplit_once('/').unwrap().0.to_string();
    assert_eq!(v1("cpuset", &per_root, "cgroup.clone_children"), "1");
    for file in ["cpuset.cpus", "cpuset.mems"] {
        let value = v1("cpuset", &per_root, file);
        assert!(!value.is_empty(), "{per_root}: {file} empty");
        assert_eq!(v1("cpuset", &a, file), value, "{a}: {file}");
    }
    let flag = PathBuf::from("/sys/fs/cgroup/cpuset")
        .join(per_root.trim_start_matches('/'))
        .join("cgroup.clone_children");
    std::fs::write(&flag, "0").unwrap();
    assert_ok(&b.create("b"));
    let b_path = b.default_cgroup("b");
    for file in ["cpuset.cpus", "cpuset.mems"] {
        assert_eq!(
            v1("cpuset", &b_path, file),
            v1("cpuset", &per_root, file),
            "{b_path}: {file}"
        );
    }
    for id in ["a", "b"] {
        assert_ok(&b.husk(&["delete", "-f", id]));
    }
    b.assert_gone("a");
    b.assert_gone("b");
}
