//! Crash consistency: every lifecycle command killed at any instant (after a
//! random delay, or by strace at its Nth mkdir, write, renameat, linkat, unlink,
//! rmdir or openat) leaves either nothing or a container that `state` and `list` show
//! and that `delete -f` removes completely; no command hangs after a kill.
//! A killed pause, resume or update leaves a container that still pauses,
//! resumes and takes new limits.

mod common;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;

/// The syscalls at whose Nth call strace kills the command.
const SYSCALLS: [&str; 9] = [
    "mkdir",
    "rmdir",
    "write",
    "renameat",
    "renameat2",
    "linkat",
    "unlink",
    "unlinkat",
    "openat",
];
/// Kills after a random delay, per command.
const DELAY_KILLS: usize = 30;
/// About this many strace kills per command: every call of a rare syscall, and
/// evenly spread calls of the frequent ones.
const SYSCALL_KILLS: usize = 48;
/// A syscall made at most this often is killed at each of its calls.
const RARE: u64 = 4;
/// Kills per command, at the least.
const MIN_KILLS: usize = 50;

/// xorshift64*: deterministic, so that a failure can be replayed.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545f4914f6cdd1d) % n.max(1)
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Cmd {
    Create,
    Start,
    Delete,
    Exec,
    Kill,
    Run,
    Pause,
    Resume,
    Update,
}

/// How the command dies.
#[derive(Clone, Copy, Debug)]
enum Death {
    /// Not killed: the reference run, traced to count its syscalls.
    Traced,
    After(Duration),
    /// strace kills it at the Nth call of the syscall.
    At(&'static str, u64),
}

fn bundle(name: &str) -> Bundle {
    assert!(
        Command::new("strace").arg("-V").output().is_ok(),
        "strace must be installed (scripts/install-deps.sh)"
    );
    let mut b = Bundle::new(name);
    configure(&mut b);
    b
}

fn configure(b: &mut Bundle) {
    b.config["process"]["args"] = serde_json::json!(["sleep", "1000"]);
    b.config["linux"]["resources"]["pids"] = serde_json::json!({"limit": 100});
    b.save();
}

/// Brings container `id` to the state the command acts on; `variant` picks
/// between the command's two forms.
fn prepare(b: &Bundle, cmd: Cmd, id: &str, variant: u64) {
    if matches!(cmd, Cmd::Create | Cmd::Run) {
        give_the_host_its_net_devices(b, id);
        return;
    }
    assert_ok(&b.create(id));
    let started = match cmd {
        Cmd::Exec | Cmd::Kill | Cmd::Update => true,
        // Odd variants act on a created container.
        Cmd::Delete => variant % 2 == 1,
        Cmd::Pause | Cmd::Resume => variant % 2 == 0,
        _ => false,
    };
    if started {
        assert_ok(&b.husk(&["start", id]));
    }
    if cmd == Cmd::Resume {
        assert_ok(&b.husk(&["pause", id]));
    }
}

/// A veth for each `linux.netDevices` key the host lacks: a killed create
/// moved it away (then it died with the container's namespace, or comes
/// back from it by the kernel's rule). Its peer's name is new each time: an
/// old peer lives until that namespace is gone.
fn give_the_host_its_net_devices(b: &Bundle, id: &str) {
    let Some(devices) = b.config["linux"]["netDevices"].as_object() else {
        return;
    };
    let serial: String = id.chars().filter(char::is_ascii_digit).collect();
    for name in devices.keys() {
        let ip = |args: &[&str]| run_with_timeout(Command::new("ip").args(args), COMMAND_TIMEOUT);
        if !ip(&["link", "show", name]).status.success() {
            let peer = format!("hkq{}-{serial}", std::process::id() % 10_000);
            assert_ok(&ip(&["link", "add", name, "type", "veth", "peer", "name", &peer]));
        }
    }
}

fn arguments(b: &Bundle, cmd: Cmd, id: &str, variant: u64) -> Vec<String> {
    let bundle = b.dir.to_str().unwrap();
    let args: Vec<&str> = match (cmd, variant % 2) {
        (Cmd::Create, _) => vec!["create", "--bundle", bundle, id],
        (Cmd::Start, _) => vec!["start", id],
        (Cmd::Delete, 0) => vec!["delete", id],
        (Cmd::Delete, _) => vec!["delete", "--force", id],
        (Cmd::Exec, 0) => vec!["exec", "--detach", id, "sleep", "1000"],
        (Cmd::Exec, _) => vec!["exec", id, "true"],
        (Cmd::Kill, 0) => vec!["kill", "--all", id, "KILL"],
        (Cmd::Kill, _) => vec!["kill", id, "KILL"],
        (Cmd::Run, 0) => vec!["run", "--detach", "--bundle", bundle, id],
        // In the foreground until killed: only ever killed after a delay.
        (Cmd::Run, _) => vec!["run", "--bundle", bundle, id],
        (Cmd::Pause, _) => vec!["pause", id],
        (Cmd::Resume, _) => vec!["resume", id],
        (Cmd::Update, 0) => vec!["update", "--pids-limit", "50", "--cpu-share", "512", id],
        (Cmd::Update, _) => vec!["update", "--pids-limit", "60", id],
    };
    args.into_iter().map(String::from).collect()
}

fn spawn(b: &Bundle, args: &[String], death: Death, trace: &std::path::Path) -> Child {
    let husk = b.husk_argv();
    let mut cmd = match death {
        Death::After(_) => {
            let mut c = Command::new(&husk[0]);
            c.args(&husk[1..]);
            c
        }
        Death::Traced => {
            let mut c = Command::new("strace");
            // -y: paths of fds, to find the call that touches a given file.
            c.arg("-y")
                .arg("-o")
                .arg(trace)
                .arg("-e")
                .arg(format!("trace={}", SYSCALLS.join(",")));
            c.arg("--").args(&husk);
            c
        }
        Death::At(syscall, n) => {
            let mut c = Command::new("strace");
            c.args(["-o", "/dev/null", "-e", &format!("trace={syscall}")]);
            c.args(["-e", &format!("inject={syscall}:signal=SIGKILL:when={n}"), "--"]);
            c.args(&husk);
            c
        }
    };
    cmd.arg("--root").arg(&b.root).args(args).current_dir(&b.dir);
    b.tag(&mut cmd);
    cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null());
    cmd.spawn().expect("spawn husk")
}

/// Runs the command and kills it as `death` says; every wait is bounded.
fn run_and_kill(b: &Bundle, args: &[String], death: Death, trace: &std::path::Path) {
    let mut child = spawn(b, args, death, trace);
    let deadline = Instant::now() + COMMAND_TIMEOUT;
    let kill_at = match death {
        Death::After(d) => Instant::now() + d,
        _ => deadline,
    };
    loop {
        if child.try_wait().unwrap().is_some() {
            return;
        }
        if Instant::now() >= kill_at {
            let _ = child.kill();
            let _ = child.wait();
            assert!(
                matches!(death, Death::After(_)),
                "husk {args:?} hung ({death:?}): not done within {COMMAND_TIMEOUT:?}"
            );
            return;
        }
        std::thread::sleep(Duration::from_micros(200));
    }
}

fn command_of(pid: i64) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .unwrap_or_default()
        .trim()
        .to_string()
}

/// After a kill: `state` and `list` answer and agree, a container whose program
/// runs is never `created`, a second `start` does not hang, and `delete -f`
/// leaves nothing.
#[track_caller]
fn check_and_clean(b: &Bundle, cmd: Cmd, id: &str, what: &str) {
    let state = b.husk(&["state", id]);
    let list = b.husk(&["list", "--format", "json"]);
    assert_ok(&list);
    let listed: Vec<Value> = serde_json::from_slice(&list.stdout).expect("list prints JSON");
    let in_list = listed.iter().find(|c| c["id"] == id);
    if state.status.success() {
        let s: Value = serde_json::from_slice(&state.stdout).expect("state prints JSON");
        let status = s["status"].as_str().unwrap_or_default();
        assert!(
            ["creating", "created", "running", "paused", "stopped"].contains(&status),
            "{what}: status {status}"
        );
        assert_eq!(s["id"], id, "{what}");
        assert!(
            in_list.is_some(),
            "{what}: state shows {id} but list does not: {listed:?}"
        );
        let pid = s["pid"].as_i64().unwrap_or(0);
        if pid > 0 && command_of(pid) == "sleep" {
            // Read again: a start killed after it opened the fifo lets the
            // init exec on its own, maybe between the state above and now.
            let now = b.state(id);
            assert_ne!(
                now["status"], "created",
                "{what}: the program runs, yet the container is created"
            );
        }
    } else {
        assert!(
            stderr(&state).contains("does not exist"),
            "{what}: state: {}",
            stderr(&state)
        );
        assert!(in_list.is_none(), "{what}: list shows {id} that state does not");
    }
    if cmd == Cmd::Kill && state.status.success() {
        // A `kill --all` killed while it froze the cgroup: the status
        // above undid its freeze (review 55 F5).
        let s: Value = serde_json::from_slice(&state.stdout).unwrap_or_default();
        assert_ne!(s["status"], "paused", "{what}: nobody paused it");
    }
    if matches!(cmd, Cmd::Pause | Cmd::Resume | Cmd::Update) {
        assert!(state.status.success(), "{what}: the container is gone");
        not_wedged(b, cmd, id, what);
    }
    if cmd == Cmd::Start && state.status.success() {
        // Bounded by the harness: it starts the program, or says why not.
        let again = b.husk(&["start", id]);
        if !again.status.success() {
            let err = stderr(&again);
            assert!(
                err.contains("running") || err.contains("stopped") || err.contains("exited"),
                "{what}: second start: {err}"
            );
        }
    }
    let deleted = b.husk(&["delete", "--force", id]);
    if !deleted.status.success() {
        assert!(
            stderr(&deleted).contains("does not exist"),
            "{what}: delete -f: {}",
            stderr(&deleted)
        );
    }
    b.assert_gone(id);
}

/// After a killed pause, resume or update, the container still takes both
/// again: it pauses and resumes back to what it was, and takes a new limit.
#[track_caller]
fn not_wedged(b: &Bundle, cmd: Cmd, id: &str, what: &str) {
    let status = b.status(id);
    let unpaused = match status.as_str() {
        "paused" => {
            assert_ok(&b.husk(&["resume", id]));
            b.status(id)
        }
        "running" | "created" => status,
        other => panic!("{what}: status {other} after the kill"),
    };
    assert!(
        ["running", "created"].contains(&unpaused.as_str()),
        "{what}: {unpaused}"
    );
    assert_ok(&b.husk(&["pause", id]));
    assert_eq!(b.status(id), "paused", "{what}");
    assert_ok(&b.husk(&["resume", id]));
    assert_eq!(b.status(id), unpaused, "{what}");
    if cmd == Cmd::Update {
        assert_ok(&b.husk(&["update", "--pids-limit", "70", id]));
        let pids_max = format!("/sys/fs/cgroup/pids{}/pids.max", b.default_cgroup(id));
        let limit = std::fs::read_to_string(&pids_max).unwrap_or_default();
        assert_eq!(limit.trim(), "70", "{what}: {pids_max}");
    }
}

/// Kills `cmd` after random delays and at each sampled syscall, checking after each.
fn kill_at_every_instant(cmd: Cmd, seed: u64) {
    let name = format!("{cmd:?}").to_lowercase();
    kill_at_every_instant_in(bundle(&format!("crash-{name}")), cmd, seed);
}

fn kill_at_every_instant_in(b: Bundle, cmd: Cmd, seed: u64) {
    let name = format!("{cmd:?}").to_lowercase();
    let trace = b.dir.join("trace");
    let mut rng = Rng(seed);
    let mut n = 0;
    let mut next_id = || {
        n += 1;
        format!("{name}-{n}")
    };

    // The reference run: how long the command takes and which syscalls it makes.
    let id = next_id();
    prepare(&b, cmd, &id, 0);
    let began = Instant::now();
    run_and_kill(&b, &arguments(&b, cmd, &id, 0), Death::Traced, &trace);
    let took = began.elapsed();
    if cmd == Cmd::Create {
        // The unkilled run made the container: the kills below cut into a
        // create that works (with netDevices: that moves its devices).
        assert_ok(&b.husk(&["state", &id]));
    }
    check_and_clean(&b, cmd, &id, "reference run");
    let text = std::fs::read_to_string(&trace).unwrap();
    let calls = |syscall: &str| text.lines().filter(|l| l.starts_with(&format!("{syscall}("))).count() as u64;

    let limit = took.as_micros() as u64 * 3 / 2 + 1000;
    let mut random_delay = || Death::After(Duration::from_micros(rng.below(limit)));
    let mut deaths: Vec<Death> = (0..DELAY_KILLS).map(|_| random_delay()).collect();
    let mut frequent = Vec::new();
    for syscall in SYSCALLS {
        let count = calls(syscall);
        let points = (1..=count).map(|k| Death::At(syscall, k));
        if count <= RARE {
            deaths.extend(points);
        } else {
            frequent.extend(points);
        }
    }
    let budget = SYSCALL_KILLS.saturating_sub(deaths.len() - DELAY_KILLS).max(1);
    let stride = frequent.len().div_ceil(budget).max(1);
    deaths.extend(frequent.into_iter().step_by(stride));
    assert!(
        deaths.len() > DELAY_KILLS,
        "{cmd:?}: the reference run made none of {SYSCALLS:?}: {text}"
    );
    // A command with few calls (kill, start: 40-50 kills in all, by how
    // often they poll) gets more random delays.
    while deaths.len() < MIN_KILLS {
        deaths.push(random_delay());
    }
    for (i, death) in deaths.into_iter().enumerate() {
        // A foreground run never ends on its own: only a delay kills it.
        let variant = match (cmd, death) {
            (Cmd::Run, Death::At(..)) => 0,
            _ => i as u64,
        };
        let id = next_id();
        prepare(&b, cmd, &id, variant);
        let args = arguments(&b, cmd, &id, variant);
        run_and_kill(&b, &args, death, &trace);
        check_and_clean(&b, cmd, &id, &format!("{args:?} killed {death:?}"));
    }
}

#[test]
fn create_killed_at_any_instant() {
    kill_at_every_instant(Cmd::Create, 0x5eed_0001);
}

#[test]
fn start_killed_at_any_instant() {
    kill_at_every_instant(Cmd::Start, 0x5eed_0002);
}

#[test]
fn delete_killed_at_any_instant() {
    kill_at_every_instant(Cmd::Delete, 0x5eed_0003);
}

#[test]
fn exec_killed_at_any_instant() {
    kill_at_every_instant(Cmd::Exec, 0x5eed_0004);
}

#[test]
fn kill_killed_at_any_instant() {
    kill_at_every_instant(Cmd::Kill, 0x5eed_0005);
}

#[test]
fn run_killed_at_any_instant() {
    kill_at_every_instant(Cmd::Run, 0x5eed_0006);
}

#[test]
fn pause_killed_at_any_instant() {
    kill_at_every_instant(Cmd::Pause, 0x5eed_0007);
}

#[test]
fn resume_killed_at_any_instant() {
    kill_at_every_instant(Cmd::Resume, 0x5eed_0008);
}

#[test]
fn update_killed_at_any_instant() {
    kill_at_every_instant(Cmd::Update, 0x5eed_0009);
}

/// On a pure v1 host `create` makes the cgroup after the clone, while the init
/// sets up (`Driver::places_after_clone`): killed anywhere there too.
fn on_pure_v1(name: &str) -> Bundle {
    let mut b = Bundle::on_pure_v1(name);
    configure(&mut b);
    b
}

#[test]
fn create_killed_at_any_instant_on_pure_v1() {
    kill_at_every_instant_in(on_pure_v1("crash-create-v1"), Cmd::Create, 0x5eed_0011);
}

/// Without a cgroup namespace, as the benchmarks run it: `create` then also
/// builds the container's cgroup tmpfs and hands it to the init
/// (`rootfs::cgroup_tree_for_init`), which a kill may interrupt anywhere.
#[test]
fn run_killed_at_any_instant_on_pure_v1() {
    let mut b = on_pure_v1("crash-run-v1");
    b.without_namespace("cgroup").save();
    kill_at_every_instant_in(b, Cmd::Run, 0x5eed_0016);
}

/// linux.netDevices: create moves a host device into the container's network
/// namespace (and moves it back when it fails). Killed anywhere, before,
/// during or after the move, it leaves nothing that `delete -f` does not
/// remove, no process, and no hang.
#[test]
fn create_with_net_devices_killed_at_any_instant() {
    let mut b = bundle("crash-netdev");
    let device = format!("hkk{}", std::process::id() % 100_000);
    b.config["linux"]["netDevices"] = serde_json::json!({ &device: {"name": "eth9"} });
    b.save();
    kill_at_every_instant_in(b, Cmd::Create, 0x5eed_0017);
    let _ = run_with_timeout(Command::new("ip").args(["link", "del", &device]), COMMAND_TIMEOUT);
}

/// Which call of `syscall` (counted from 1) in a traced run of `create` is
/// the first whose line contains `needle`.
fn nth_call_of_create(b: &Bundle, syscall: &str, needle: &str) -> u64 {
    let trace = b.dir.join("trace");
    run_and_kill(b, &arguments(b, Cmd::Create, "traced", 0), Death::Traced, &trace);
    assert_ok(&b.husk(&["delete", "--force", "traced"]));
    let text = std::fs::read_to_string(&trace).unwrap();
    let calls: Vec<&str> = text.lines().filter(|l| l.starts_with(&format!("{syscall}("))).collect();
    let at = calls.iter().position(|l| l.contains(needle));
    at.unwrap_or_else(|| panic!("no {syscall} of {needle} in:\n{text}")) as u64 + 1
}

/// The window of the issue: the init is set up, `create` dies before it saved
/// the state (at the link of config.json, written whole, right after Ready).
/// The init must not outlive it unreachable.
#[test]
fn create_killed_before_saving_state_leaves_no_init() {
    let b = bundle("crash-create-window");
    let n = nth_call_of_create(&b, "linkat", "\"config.json\"");
    let args = arguments(&b, Cmd::Create, "c", 0);
    run_and_kill(&b, &args, Death::At("linkat", n), &b.dir.join("trace"));
    check_and_clean(&b, Cmd::Create, "c", "create killed at the link of config.json");
}

/// `create` killed just before its directory takes the id (it is made and
/// locked under a staging name first): the container never existed, and
/// what it staged goes with a create that comes once it is no longer young.
#[test]
fn create_killed_before_its_directory_takes_the_id_leaves_what_a_later_create_sweeps() {
    let b = bundle("crash-create-staged");
    let n = nth_call_of_create(&b, "renameat2", "RENAME_NOREPLACE");
    let args = arguments(&b, Cmd::Create, "c", 0);
    run_and_kill(&b, &args, Death::At("renameat2", n), &b.dir.join("trace"));
    let state = b.husk(&["state", "c"]);
    assert!(stderr(&state).contains("does not exist"), "{}", stderr(&state));
    let staging = b.root.join("#new");
    let staged: Vec<_> = std::fs::read_dir(&staging)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    assert_eq!(staged.len(), 1, "{staged:?}");
    let hour_ago = std::time::SystemTime::now() - Duration::from_secs(3600);
    std::fs::File::open(&staged[0]).unwrap().set_modified(hour_ago).unwrap();
    assert_ok(&b.create("c"));
    let left: Vec<_> = std::fs::read_dir(&staging)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    assert!(left.is_empty(), "left staged: {left:?}");
    assert_ok(&b.husk(&["delete", "--force", "c"]));
    b.assert_gone("c");
}

/// `start` killed after the exec, before it removed exec.fifo: the container
/// runs, says so, cannot be started again, and a plain delete refuses.
#[test]
fn start_killed_after_exec_reports_running() {
    let b = bundle("crash-start-window");
    assert_ok(&b.create("c"));
    run_and_kill(
        &b,
        &["start".into(), "c".into()],
        Death::At("unlink", 1),
        &b.dir.join("trace"),
    );
    let state = b.state("c");
    assert_eq!(command_of(state["pid"].as_i64().unwrap()), "sleep", "the program runs");
    assert_eq!(state["status"], "running");
    let again = b.husk(&["start", "c"]);
    assert!(
        !again.status.success() && stderr(&again).contains("running"),
        "{}",
        stderr(&again)
    );
    let delete = b.husk(&["delete", "c"]);
    assert!(
        !delete.status.success(),
        "a plain delete of a running container must refuse"
    );
    assert_eq!(b.status("c"), "running");
    assert_ok(&b.husk(&["delete", "--force", "c"]));
    b.assert_gone("c");
}

/// The other window: `create` killed after it made the cgroup, before
/// Ready. The half-made container is listed (stopped: its `create` is gone)
/// and a plain `delete` removes its cgroup directories too.
#[test]
fn create_killed_after_making_the_cgroup_is_listed_and_deleted() {
    let b = bundle("crash-create-cgroup");
    let n = nth_call_of_create(&b, "write", "/sys/fs/cgroup/");
    let args = arguments(&b, Cmd::Create, "c", 0);
    run_and_kill(&b, &args, Death::At("write", n), &b.dir.join("trace"));
    let cgroup = b.default_cgroup("c");
    let made = std::fs::read_dir("/sys/fs/cgroup")
        .unwrap()
        .flatten()
        .any(|h| h.path().join(cgroup.trim_start_matches('/')).exists());
    assert!(made, "killed after the cgroup was made");
    assert_eq!(b.status("c"), "stopped");
    let list = b.husk(&["list", "--format", "json"]);
    let listed: Value = serde_json::from_slice(&list.stdout).unwrap();
    assert_eq!(listed[0]["id"], "c", "{listed}");
    assert_eq!(listed[0]["status"], "stopped", "{listed}");
    assert_ok(&b.husk(&["delete", "c"]));
    b.assert_gone("c");
}

/// While `create` runs (here: in a slow createRuntime hook), the container is
/// `creating`, and it is `created` once create is done.
#[test]
fn a_container_being_created_is_creating() {
    let mut b = bundle("crash-creating");
    b.config["hooks"]["createRuntime"] = serde_json::json!([{"path": "/bin/sleep", "args": ["sleep", "1"]}]);
    b.save();
    let mut cmd = Command::new(HUSK);
    cmd.arg("--root").arg(&b.root);
    cmd.args(arguments(&b, Cmd::Create, "c", 0)).stdin(Stdio::null());
    b.tag(&mut cmd);
    let mut create = cmd.spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let state = b.husk(&["state", "c"]);
        if state.status.success() {
            let s: Value = serde_json::from_slice(&state.stdout).unwrap();
            assert_eq!(s["status"], "creating");
            break;
        }
        if Instant::now() > deadline {
            let _ = create.kill();
            let _ = create.wait();
            panic!("create never showed: {}", stderr(&state));
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let list = b.husk(&["list", "--format", "json"]);
    assert!(stdout(&list).contains("\"creating\""), "{}", stdout(&list));
    while create.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = create.kill();
            let _ = create.wait();
            panic!("create did not finish");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(b.status("c"), "created");
    assert_ok(&b.husk(&["delete", "--force", "c"]));
    b.assert_gone("c");
}

/// A cgroup that the test makes and puts a process of its own in, as another
/// service's cgroup: `pids` is enough for husk to find the process there.
struct Victim {
    dirs: Vec<std::path::PathBuf>,
    process: Child,
}

impl Victim {
    fn new(name: &str) -> Victim {
        require_root();
        let unified = std::path::Path::new("/sys/fs/cgroup/cgroup.controllers").exists();
        let hierarchies: &[&str] = if unified { &[""] } else { &["pids", "freezer"] };
        let process = Command::new("sleep").arg("60").spawn().unwrap();
        let dirs: Vec<_> = hierarchies
            .iter()
            .map(|h| std::path::Path::new("/sys/fs/cgroup").join(h).join(name))
            .collect();
        for dir in &dirs {
            std::fs::create_dir_all(dir).unwrap();
            std::fs::write(dir.join("cgroup.procs"), process.id().to_string()).unwrap();
        }
        Victim { dirs, process }
    }

    fn alive(&mut self) -> bool {
        self.process.try_wait().unwrap().is_none()
    }
}

impl Drop for Victim {
    fn drop(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
        for dir in &self.dirs {
            let _ = std::fs::remove_dir(dir);
        }
    }
}

/// linux.cgroupsPath naming a cgroup that holds processes that are not the
/// container's: create warns (as runc does), and neither it nor the delete of
/// the container may kill them or remove their cgroup.
#[test]
fn a_cgroup_with_other_processes_is_not_taken_over() {
    let name = format!("husk-test-victim-{}", std::process::id());
    let mut victim = Victim::new(&name);
    let mut b = bundle("crash-victim");
    b.config["linux"]["cgroupsPath"] = Value::from(format!("/{name}"));
    b.save();
    let created = b.create("c");
    assert_ok(&created);
    assert!(stderr(&created).contains("warn"), "no warning: {}", stderr(&created));
    assert_ok(&b.husk(&["delete", "--force", "c"]));
    assert!(
        victim.alive(),
        "delete killed a process of a cgroup the container did not make"
    );
    b.assert_gone("c");
}

/// The same with `create` killed while it runs (in a slow createRuntime hook):
/// its record names the cgroup of linux.cgroupsPath, which it did not make;
/// `delete` of what is left must not kill that cgroup's processes.
#[test]
fn delete_after_a_killed_create_kills_only_what_create_made() {
    let name = format!("husk-test-victim-killed-{}", std::process::id());
    let mut victim = Victim::new(&name);
    let mut b = bundle("crash-victim-killed");
    b.config["linux"]["cgroupsPath"] = Value::from(format!("/{name}"));
    b.config["hooks"]["createRuntime"] = serde_json::json!([{"path": "/bin/sleep", "args": ["sleep", "2"]}]);
    b.save();
    let mut cmd = Command::new(HUSK);
    cmd.arg("--root").arg(&b.root);
    cmd.args(arguments(&b, Cmd::Create, "c", 0)).stdin(Stdio::null());
    b.tag(&mut cmd);
    let mut create = cmd.spawn().unwrap();
    let record = b.root.join("c").join("creating.json");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !record.exists() && Instant::now() < deadline && create.try_wait().unwrap().is_none() {
        std::thread::sleep(Duration::from_millis(5));
    }
    std::thread::sleep(Duration::from_millis(300));
    let _ = create.kill();
    let _ = create.wait();
    let _ = b.husk(&["delete", "c"]);
    assert!(
        victim.alive(),
        "delete killed a process of a cgroup that create did not make"
    );
    // The killed create's hook ends on its own.
    std::thread::sleep(Duration::from_secs(2));
    b.assert_gone("c");
}

/// On a pure v1 host the init sets up while `create` makes its cgroup: the
/// init killed then (strace holds `create` just after the clone) makes
/// create fail in one line, with no state, cgroup or process left.
#[test]
fn init_killed_while_create_makes_its_cgroup_on_pure_v1() {
    let b = on_pure_v1("crash-init-v1");
    let mut cmd = Command::new("strace");
    cmd.args([
        "-o",
        "/dev/null",
        "-e",
        "trace=clone3",
        "-e",
        "inject=clone3:delay_exit=1000000",
        "--",
    ])
    .args(b.husk_argv())
    .arg("--root")
    .arg(&b.root)
    .args(["create", "--bundle", b.dir.to_str().unwrap(), "c"])
    .current_dir(&b.dir)
    .stdin(Stdio::null())
    .stdout(Stdio::null())
    .stderr(Stdio::piped());
    b.tag(&mut cmd);
    let mut strace = cmd.spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    // strace's child is husk (unshare and sh exec it); husk's child, the init.
    let init = loop {
        let init = children_of(strace.id())
            .into_iter()
            .flat_map(children_of)
            .find(|&p| command_of(p as i64) == "husk");
        if let Some(init) = init {
            break init;
        }
        assert!(Instant::now() < deadline, "no container init appeared");
        std::thread::sleep(Duration::from_millis(5));
    };
    // SAFETY: kill(2) of the init this test's create just cloned.
    assert_eq!(unsafe { libc::kill(init as i32, libc::SIGKILL) }, 0);
    let status = wait_within(&mut strace, COMMAND_TIMEOUT, "create");
    let mut err = String::new();
    std::io::Read::read_to_string(&mut strace.stderr.take().unwrap(), &mut err).unwrap();
    assert!(!status.success(), "create succeeded with its init killed");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.starts_with("husk: error: "), "{err}");
    assert!(
        err.contains("container init exited during setup (killed by signal 9)"),
        "{err}"
    );
    b.assert_gone("c");
}

/// The number of `syscall` calls a traced `create` makes before its clone3,
/// plus one: the first such call after it.
fn first_call_after_the_clone(b: &Bundle, syscall: &str) -> u64 {
    // The first create in a root makes the root's parent cgroups too: count
    // on a later one, as the kills are.
    assert_ok(&b.create("warm"));
    assert_ok(&b.husk(&["delete", "--force", "warm"]));
    let trace = b.dir.join("trace-clone");
    let husk = b.husk_argv();
    let mut cmd = Command::new("strace");
    cmd.arg("-o")
        .arg(&trace)
        .args(["-e", &format!("trace=clone3,{syscall}"), "--"]);
    cmd.args(&husk).arg("--root").arg(&b.root);
    cmd.args(arguments(b, Cmd::Create, "traced", 0)).current_dir(&b.dir);
    b.tag(&mut cmd);
    assert_ok(&run_with_timeout(&mut cmd, COMMAND_TIMEOUT));
    assert_ok(&b.husk(&["delete", "--force", "traced"]));
    let text = std::fs::read_to_string(&trace).unwrap();
    let before = text
        .lines()
        .take_while(|l| !l.starts_with("clone3("))
        .filter(|l| l.starts_with(&format!("{syscall}(")))
        .count();
    assert!(text.lines().any(|l| l.starts_with("clone3(")), "no clone3 in:\n{text}");
    before as u64 + 1
}

/// husk killed right after the clone, where it reads the init's stat and
/// may move itself off the CPU where the kernel queued the init (its first
/// openat after the clone). The init must exit on its own, within a bound,
/// and state, list and delete -f must agree and leave nothing; for create
/// and run -d, on this host and on a pure v1 one (where the init places
/// itself in its cgroup once husk has made it).
#[test]
fn killed_right_after_the_clone_leaves_no_init() {
    for (name, b) in [
        ("hybrid", bundle("crash-scheduled")),
        ("pure v1", on_pure_v1("crash-scheduled-v1")),
    ] {
        let after_clone = first_call_after_the_clone(&b, "openat");
        for cmd in [Cmd::Create, Cmd::Run] {
            for death in [Death::At("openat", after_clone), Death::At("openat", after_clone + 1)] {
                let id = format!("{cmd:?}-{death:?}")
                    .to_lowercase()
                    .replace(|c: char| !c.is_ascii_alphanumeric(), "-");
                let args = arguments(&b, cmd, &id, 0);
                let what = format!("{name}: {args:?} killed {death:?}");
                run_and_kill(&b, &args, death, &b.dir.join("trace"));
                let deadline = Instant::now() + Duration::from_secs(5);
                while !b.processes().is_empty() && Instant::now() < deadline {
                    std::thread::sleep(Duration::from_millis(10));
                }
                assert_eq!(b.processes(), Vec::<i32>::new(), "{what}: the init outlived husk");
                check_and_clean(&b, cmd, &id, &what);
            }
        }
    }
}

/// `exec --pid-file` killed at any instant (after random delays, and at each
/// of its writes, renames, opens and links): its program runs only where the
/// pid file names it, so that a caller told of the failure never has a
/// process running that no pid file shows (review 58 I4), and no temporary
/// file is left beside it.
#[test]
fn exec_with_a_pid_file_killed_at_any_instant_runs_its_program_only_where_the_file_names_it() {
    let b = bundle("crash-exec-pid-file");
    let id = "exec-pid-file";
    assert_ok(&b.create(id));
    assert_ok(&b.husk(&["start", id]));
    let init = b.state(id)["pid"].as_i64().unwrap() as i32;
    let pid_file = b.dir.join("exec.pid");
    let trace = b.dir.join("trace");
    let args: Vec<String> = ["exec", "--detach", "--pid-file"]
        .into_iter()
        .map(String::from)
        .chain([pid_file.display().to_string(), id.into()])
        .chain(["sleep", "1001"].map(String::from))
        .collect();

    let began = Instant::now();
    run_and_kill(&b, &args, Death::Traced, &trace);
    let took = began.elapsed();
    let (execed, recorded) = exec_processes_and_pid_file(&b, id, init, &pid_file);
    assert_eq!(execed.len(), 1, "reference run: {}", Bundle::describe(&execed));
    assert_eq!(recorded, Some(execed[0]), "reference run");
    end_exec_processes(&execed, &pid_file);

    let text = std::fs::read_to_string(&trace).unwrap();
    let mut rng = Rng(0x5eed_0010);
    let limit = took.as_micros() as u64 * 3 / 2 + 1000;
    let mut deaths: Vec<Death> = (0..40)
        .map(|_| Death::After(Duration::from_micros(rng.below(limit))))
        .collect();
    for syscall in ["write", "renameat", "openat", "linkat"] {
        let count = text.lines().filter(|l| l.starts_with(&format!("{syscall}("))).count() as u64;
        deaths.extend((1..=count).map(|n| Death::At(syscall, n)));
    }
    for death in deaths {
        run_and_kill(&b, &args, death, &trace);
        let (execed, recorded) = exec_processes_and_pid_file(&b, id, init, &pid_file);
        assert!(execed.len() <= 1, "{death:?}: {}", Bundle::describe(&execed));
        if let [pid] = execed[..] {
            assert_eq!(
                recorded,
                Some(pid),
                "{death:?}: the program runs, the pid file says otherwise"
            );
        }
        // The pid file is new each time: written unnamed, linked whole (review 59 F2).
        let temporary = std::fs::read_dir(&b.dir)
            .unwrap()
            .flatten()
            .find(|e| e.file_name().to_string_lossy().starts_with(".husk-"));
        assert!(temporary.is_none(), "{death:?}: left {temporary:?}");
        end_exec_processes(&execed, &pid_file);
    }
    assert_ok(&b.husk(&["delete", "--force", id]));
    b.assert_gone(id);
}

/// The container's processes but its init, once each runs its program (an
/// exec process whose husk died may still be on its way to execve or out),
/// and the pid in `pid_file`, if any. Not those dying: the last round's,
/// killed by `end_exec_processes`, may still be listed under load.
fn exec_processes_and_pid_file(b: &Bundle, id: &str, init: i32, pid_file: &std::path::Path) -> (Vec<i32>, Option<i32>) {
    let procs = format!("/sys/fs/cgroup/pids{}/cgroup.procs", b.default_cgroup(id));
    let deadline = Instant::now() + Duration::from_secs(10);
    let execed = loop {
        let text = std::fs::read_to_string(&procs).unwrap();
        let pids: Vec<i32> = text
            .lines()
            .filter_map(|l| l.parse().ok())
            .filter(|&p| p != init && !is_dying(p))
            .collect();
        let settled = pids.iter().all(|&p| command_of(p as i64) == "sleep");
        if settled || Instant::now() >= deadline {
            break pids;
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let recorded = std::fs::read_to_string(pid_file)
        .ok()
        .and_then(|t| t.trim().parse().ok());
    (execed, recorded)
}

fn end_exec_processes(pids: &[i32], pid_file: &std::path::Path) {
    for &pid in pids {
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL);
    }
    let _ = std::fs::remove_file(pid_file);
}
