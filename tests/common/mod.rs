//! Shared test harness: busybox bundles built at test time from Debian's
//! busybox-static, a private `--root` per bundle, a time limit on every husk
//! command, and a Drop that deletes every container and checks nothing is left.
#![allow(dead_code)]

pub mod mounts;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde_json::Value;

pub const HUSK: &str = env!("CARGO_BIN_EXE_husk");
pub const BUSYBOX: &str = "/bin/busybox";
/// The C helpers that tests build into bundles (tests/helpers/).
pub const HELPERS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/helpers");
/// No husk command in the tests may take longer than this.
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(30);

static COUNTER: AtomicUsize = AtomicUsize::new(0);

pub fn is_root() -> bool {
    // SAFETY: geteuid cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// Called first by every test that needs root (through `Bundle::new` for
/// most). Run by an ordinary user, the test program prints why and ends with
/// success at the first such test: libtest cannot mark one test skipped, and
/// failing each would hide real failures. `make test` runs them as root
/// (through sudo for an ordinary user).
pub fn require_root() {
    if is_root() {
        return;
    }
    static SKIP: std::sync::Once = std::sync::Once::new();
    SKIP.call_once(|| {
        use std::io::Write;
        // Straight to stderr: libtest captures only the print macros.
        let _ = writeln!(
            std::io::stderr(),
            "\n{}: skipped from its first test that needs root: these tests run \
             containers as root (`make test` runs them through sudo; or run cargo test as root)",
            env!("CARGO_CRATE_NAME")
        );
        std::process::exit(0);
    });
}

fn applets() -> &'static Vec<String> {
    static APPLETS: OnceLock<Vec<String>> = OnceLock::new();
    APPLETS.get_or_init(|| {
        let out = Command::new(BUSYBOX)
            .arg("--list")
            .output()
            .expect("busybox-static must be installed (apt-get install busybox-static)");
        String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .filter(|a| *a != "busybox")
            .map(String::from)
            .collect()
    })
}

/// Spawns a command with stdin, stdout and stderr on /dev/null.
pub trait SpawnQuietly {
    fn spawn_quietly(&mut self) -> std::process::Child;
}

impl SpawnQuietly for Command {
    fn spawn_quietly(&mut self) -> std::process::Child {
        use std::process::Stdio;
        self.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap()
    }
}

/// A minimal busybox root filesystem.
pub fn make_rootfs(rootfs: &Path) {
    let bin = rootfs.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    std::fs::copy(BUSYBOX, bin.join("busybox")).unwrap();
    for applet in applets() {
        std::os::unix::fs::symlink("busybox", bin.join(applet)).unwrap();
    }
    for dir in ["etc", "proc", "sys", "dev", "tmp", "root"] {
        std::fs::create_dir_all(rootfs.join(dir)).unwrap();
    }
    std::fs::write(
        rootfs.join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n",
    )
    .unwrap();
    std::fs::write(rootfs.join("etc/group"), "root:x:0:\ntty:x:5:\nnogroup:x:65534:\n").unwrap();
}

/// Gives the command's process the fds `map` (from, to) before it execs.
pub fn pass_fds(cmd: &mut Command, map: Vec<(std::os::fd::RawFd, std::os::fd::RawFd)>) {
    // SAFETY: only dup2 and fcntl between fork and exec, onto numbers the test chooses.
    unsafe {
        std::os::unix::process::CommandExt::pre_exec(cmd, move || {
            for &(from, to) in &map {
                // dup2 onto itself leaves close-on-exec set: clear it instead.
                if from == to {
                    libc::fcntl(from, libc::F_SETFD, 0);
                } else {
                    libc::dup2(from, to);
                }
            }
            Ok(())
        });
    }
}

/// Closes every fd above stdio in the child that runs `cmd`: a test runner may
/// have inherited some (a shell keeps one at 10), and husk passes on those
/// that --preserve-fds names, as it should.
pub fn close_inherited_fds(cmd: &mut Command) {
    // SAFETY: only close_range between fork and exec.
    unsafe {
        std::os::unix::process::CommandExt::pre_exec(cmd, || {
            libc::syscall(libc::SYS_close_range, 3u32, u32::MAX, 0u32);
            Ok(())
        });
    }
}

/// Reads JSON lines (husk events) until one of type `kind`, within `limit`.
pub fn wait_for_event(out: impl std::io::Read, kind: &str, limit: Duration) -> Option<Value> {
    use std::io::BufRead;
    let deadline = Instant::now() + limit;
    for line in std::io::BufReader::new(out).lines() {
        let event: Value = serde_json::from_str(&line.ok()?).ok()?;
        if event["type"] == kind {
            return Some(event);
        }
        if Instant::now() > deadline {
            return None;
        }
    }
    None
}

pub fn chown_tree(path: &Path, uid: u32, gid: u32) {
    let o = Command::new("chown")
        .arg("-R")
        .arg(format!("{uid}:{gid}"))
        .arg(path)
        .output()
        .unwrap();
    assert!(o.status.success(), "chown: {}", String::from_utf8_lossy(&o.stderr));
}

/// Waits for `child` at most `timeout`; past that, kills and reaps it and
/// fails the test, saying `what` did not end.
pub fn wait_within(child: &mut std::process::Child, timeout: Duration, what: &str) -> std::process::ExitStatus {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what} did not end within {timeout:?}");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Sends `sig` to a child process of the test.
pub fn send_signal(child: &std::process::Child, sig: nix::sys::signal::Signal) {
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), sig).unwrap();
}

/// Runs a command to completion within `timeout`, killing it past that.
pub fn run_with_timeout(cmd: &mut Command, timeout: Duration) -> Output {
    let tmp = std::env::temp_dir().join(format!(
        "husk-out-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::SeqCst)
    ));
    let (out_path, err_path) = (tmp.with_extension("out"), tmp.with_extension("err"));
    let out = std::fs::File::create(&out_path).unwrap();
    let err = std::fs::File::create(&err_path).unwrap();
    let mut child = cmd.stdin(Stdio::null()).stdout(out).stderr(err).spawn().expect("spawn");
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            let _ = std::fs::remove_file(&out_path);
            let _ = std::fs::remove_file(&err_path);
            panic!("command timed out after {timeout:?}: {cmd:?}");
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let output = Output {
        status,
        stdout: std::fs::read(&out_path).unwrap(),
        stderr: std::fs::read(&err_path).unwrap(),
    };
    let _ = std::fs::remove_file(out_path);
    let _ = std::fs::remove_file(err_path);
    output
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[track_caller]
pub fn assert_ok(o: &Output) {
    assert!(
        o.status.success(),
        "husk failed ({}): {}{}",
        o.status,
        stdout(o),
        stderr(o)
    );
}

/// The unprivileged user the rootless tests run as, `husk-rootless`: made
/// once with `useradd -m`, which gives it /etc/subuid and /etc/subgid ranges,
/// and left for the next run (`make test` removes it again when it made it;
/// by hand: `userdel -r husk-rootless`). Returns its uid and gid.
pub fn rootless_user() -> (u32, u32) {
    static USER: OnceLock<(u32, u32)> = OnceLock::new();
    *USER.get_or_init(|| {
        require_root();
        const NAME: &str = "husk-rootless";
        let id = |flag: &str| {
            let o = Command::new("id").args([flag, NAME]).output().unwrap();
            String::from_utf8_lossy(&o.stdout).trim().parse::<u32>().ok()
        };
        if id("-u").is_none() {
            let o = Command::new("useradd")
                .args(["-m", "-s", "/bin/sh", NAME])
                .output()
                .unwrap();
            assert!(
                o.status.success() || id("-u").is_some(),
                "useradd: {}",
                String::from_utf8_lossy(&o.stderr)
            );
        }
        (id("-u").unwrap(), id("-g").unwrap())
    })
}

/// The husk binary as the rootless user can run it: `HUSK` itself when the
/// user can reach it, else a copy in a directory of this test program's own,
/// removed when it exits. A checkout in a home directory of mode 0700
/// (adduser's default on Debian 12) is out of the rootless user's reach.
pub fn rootless_husk() -> &'static str {
    static PATH: OnceLock<String> = OnceLock::new();
    static COPY_DIR: OnceLock<PathBuf> = OnceLock::new();
    extern "C" fn remove_copy() {
        if let Some(dir) = COPY_DIR.get() {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
    PATH.get_or_init(|| {
        use std::os::unix::fs::PermissionsExt;
        use std::os::unix::process::CommandExt;
        let (uid, gid) = rootless_user();
        let reachable = Command::new(HUSK)
            .arg("--version")
            .uid(uid)
            .gid(gid)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if reachable {
            return HUSK.to_string();
        }
        let dir = COPY_DIR.get_or_init(|| std::env::temp_dir().join(format!("husk-test-bin-{}", std::process::id())));
        std::fs::create_dir_all(dir).unwrap();
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        let husk = dir.join("husk");
        std::fs::copy(HUSK, &husk).unwrap();
        // SAFETY: registers a plain function to run at exit.
        unsafe { libc::atexit(remove_copy) };
        husk.to_str().unwrap().to_string()
    })
}

/// The first subordinate id range of the rootless user in /etc/subuid or /etc/subgid.
pub fn subordinate_start(file: &str) -> u32 {
    let text = std::fs::read_to_string(file).unwrap();
    let line = text
        .lines()
        .find(|l| l.starts_with("husk-rootless:"))
        .expect("useradd gave no subordinate range");
    line.split(':').nth(1).unwrap().parse().unwrap()
}

/// A bundle with its own state root. Dropping it deletes its containers and
/// checks that no process of it and no state is left.
pub struct Bundle {
    pub dir: PathBuf,
    pub root: PathBuf,
    pub config: Value,
    /// Set for a rootless bundle: husk runs as this uid and gid.
    pub user: Option<(u32, u32)>,
    /// husk runs where the cgroup2 mount of this hybrid host is hidden (see
    /// `on_pure_v1`).
    pub pure_v1: bool,
}

/// A shell line that runs "$0" "$@" in a private mount namespace without the
/// cgroup2 mount at /sys/fs/cgroup/unified: a pure cgroup v1 host to husk,
/// as the benchmarks' namespace is (crun refuses hybrid hosts).
const PURE_V1: &str = "umount /sys/fs/cgroup/unified 2>/dev/null; exec \"$0\" \"$@\"";

impl Bundle {
    pub fn new(name: &str) -> Bundle {
        require_root();
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let dir = std::env::temp_dir().join(format!("husk-test-{name}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        make_rootfs(&dir.join("rootfs"));
        let out = run_with_timeout(Command::new(HUSK).args(["spec", "--bundle"]).arg(&dir), COMMAND_TIMEOUT);
        assert_ok(&out);
        let config: Value = serde_json::from_slice(&std::fs::read(dir.join("config.json")).unwrap()).unwrap();
        let root = dir.join("state");
        let mut b = Bundle {
            dir,
            root,
            config,
            user: None,
            pure_v1: false,
        };
        b.config["process"]["terminal"] = Value::Bool(false);
        b.with_cgroup_namespace();
        let marker = Value::from(b.marker());
        b.config["process"]["env"].as_array_mut().unwrap().push(marker);
        b.save();
        b
    }

    /// A bundle of the rootless user, made by `husk spec --rootless` run as that
    /// user; husk runs as the user with its state in $XDG_RUNTIME_DIR/husk.
    pub fn rootless(name: &str) -> Bundle {
        let (uid, gid) = rootless_user();
        let mut b = Bundle::new(name);
        b.user = Some((uid, gid));
        std::fs::remove_file(b.dir.join("config.json")).unwrap();
        let run = b.dir.join("run");
        std::fs::create_dir_all(&run).unwrap();
        std::fs::set_permissions(&run, std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
        b.root = run.join("husk");
        chown_tree(&b.dir, uid, gid);
        assert_ok(&b.husk(&["spec", "--rootless", "--bundle", b.dir.to_str().unwrap()]));
        b.config = serde_json::from_slice(&std::fs::read(b.dir.join("config.json")).unwrap()).unwrap();
        b.config["process"]["terminal"] = Value::Bool(false);
        b.with_cgroup_namespace();
        let marker = Value::from(b.marker());
        b.config["process"]["env"].as_array_mut().unwrap().push(marker);
        b.save();
        b
    }

    /// A bundle whose every husk command sees a pure cgroup v1 host: the
    /// paths only such a host takes (see `Driver::places_after_clone`).
    pub fn on_pure_v1(name: &str) -> Bundle {
        let mut b = Bundle::new(name);
        b.pure_v1 = true;
        b
    }

    /// The program and first arguments that run husk for this bundle.
    pub fn husk_argv(&self) -> Vec<String> {
        let husk = if self.user.is_some() { rootless_husk() } else { HUSK };
        match self.pure_v1 {
            false => vec![husk.to_string()],
            true => ["unshare", "-m", "--propagation", "private", "sh", "-c", PURE_V1, husk]
                .map(String::from)
                .to_vec(),
        }
    }

    /// The tests run with a private cgroup namespace, which `husk spec` lists
    /// only on a pure cgroup v2 host (as runc's does).
    fn with_cgroup_namespace(&mut self) {
        let list = self.config["linux"]["namespaces"].as_array_mut().unwrap();
        if !list.iter().any(|n| n["type"] == "cgroup") {
            list.push(serde_json::json!({"type": "cgroup"}));
        }
    }

    pub fn rootfs(&self) -> PathBuf {
        self.dir.join("rootfs")
    }

    /// Gives the container a new user namespace whose ids 0-65535 are
    /// `uid`.. and `gid`.. on the host (not saved until the next save or script).
    pub fn with_user_namespace(&mut self, uid: u32, gid: u32) -> &mut Self {
        let list = self.config["linux"]["namespaces"].as_array_mut().unwrap();
        list.push(serde_json::json!({"type": "user"}));
        self.config["linux"]["uidMappings"] = serde_json::json!([{"containerID": 0, "hostID": uid, "size": 65536}]);
        self.config["linux"]["gidMappings"] = serde_json::json!([{"containerID": 0, "hostID": gid, "size": 65536}]);
        self
    }

    /// Drops namespace `kind` from the config (not saved until the next save or script).
    pub fn without_namespace(&mut self, kind: &str) -> &mut Self {
        self.config["linux"]["namespaces"]
            .as_array_mut()
            .unwrap()
            .retain(|n| n["type"] != kind);
        self
    }

    /// Gives the container a new user namespace whose root is host uid and
    /// gid `host` (65536 ids from there).
    pub fn in_new_user_namespace(&mut self, host: u32) -> &mut Self {
        let ns = self.config["linux"]["namespaces"].as_array_mut().unwrap();
        ns.push(serde_json::json!({"type": "user"}));
        let map = serde_json::json!([{"containerID": 0, "hostID": host, "size": 65536}]);
        self.config["linux"]["uidMappings"] = map.clone();
        self.config["linux"]["gidMappings"] = map;
        self
    }

    /// Sets process.args to `sh -c SCRIPT`.
    pub fn script(&mut self, script: &str) -> &mut Self {
        self.config["process"]["args"] = serde_json::json!(["sh", "-c", script]);
        self.save();
        self
    }

    pub fn save(&self) {
        std::fs::write(
            self.dir.join("config.json"),
            serde_json::to_vec_pretty(&self.config).unwrap(),
        )
        .unwrap();
    }

    /// `husk --root ROOT ARGS...` with the bundle as the working directory.
    pub fn husk(&self, args: &[&str]) -> Output {
        run_with_timeout(&mut self.husk_as_owner(args), COMMAND_TIMEOUT)
    }

    /// What [`husk`](Bundle::husk) runs, for the caller to run: as the
    /// bundle's user when rootless (the state root under its runtime dir),
    /// else with `--root ROOT`.
    pub fn husk_as_owner(&self, args: &[&str]) -> Command {
        let argv = self.husk_argv();
        let mut cmd = Command::new(&argv[0]);
        cmd.args(&argv[1..]);
        if let Some((uid, gid)) = self.user {
            use std::os::unix::process::CommandExt;
            // Rootless: the default state root, under the user's runtime dir.
            cmd.uid(uid)
                .gid(gid)
                .env("XDG_RUNTIME_DIR", self.dir.join("run"))
                .env("HOME", &self.dir);
        } else {
            cmd.arg("--root").arg(&self.root);
        }
        cmd.args(args).current_dir(&self.dir);
        self.tag(&mut cmd);
        cmd
    }

    /// `husk --root ROOT ARGS` (as root), for the caller to adjust and run.
    pub fn husk_command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(HUSK);
        c.arg("--root").arg(&self.root).args(args);
        self.tag(&mut c);
        c
    }

    /// `husk --root ROOT ARGS` run by strace with `strace_args`, for the
    /// caller to run. strace is required (scripts/install-deps.sh installs
    /// it): a test skipped for its lack would assert nothing.
    pub fn husk_under_strace(&self, strace_args: &[&str], args: &[&str]) -> Command {
        assert!(
            Command::new("strace").arg("-V").output().is_ok(),
            "strace must be installed (scripts/install-deps.sh)"
        );
        let mut c = Command::new("strace");
        c.args(strace_args).arg(HUSK).arg("--root").arg(&self.root).args(args);
        self.tag(&mut c);
        c
    }

    /// Waits until container `id` has stopped, deletes it (no force) and
    /// checks that nothing of it is left.
    #[track_caller]
    pub fn delete_once_stopped(&self, id: &str) {
        self.wait_status(id, "stopped");
        assert_ok(&self.husk(&["delete", id]));
        self.assert_gone(id);
    }

    /// `husk run --bundle DIR ID` in the foreground.
    pub fn run(&self, id: &str) -> Output {
        self.husk(&["run", "--bundle", self.dir.to_str().unwrap(), id])
    }

    /// `husk run --bundle DIR ID` in the foreground, left running, with its
    /// stderr in the bundle's `run.err`.
    pub fn spawn_run(&self, id: &str) -> std::process::Child {
        self.husk_command(&["run", "--bundle", self.dir.to_str().unwrap(), id])
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::fs::File::create(self.dir.join("run.err")).unwrap())
            .spawn()
            .unwrap()
    }

    /// Runs the container and returns its stdout, asserting success.
    #[track_caller]
    pub fn output_of(&mut self, script: &str) -> String {
        self.script(script);
        let o = self.run("out");
        assert_ok(&o);
        stdout(&o)
    }

    pub fn create(&self, id: &str) -> Output {
        self.husk(&["create", "--bundle", self.dir.to_str().unwrap(), id])
    }

    pub fn state(&self, id: &str) -> Value {
        let o = self.husk(&["state", id]);
        assert_ok(&o);
        serde_json::from_slice(&o.stdout).expect("state is JSON")
    }

    pub fn status(&self, id: &str) -> String {
        self.state(id)["status"].as_str().unwrap().to_string()
    }

    /// An environment entry that tags every process of this bundle: husk
    /// inherits it from the command, the program gets it from config (the
    /// init before exec holds its exec fifo instead: see `processes`).
    fn marker(&self) -> String {
        format!("HUSK_TEST_BUNDLE={}", self.dir.display())
    }

    /// Gives a command this bundle's marker, so its processes can be found.
    pub fn tag(&self, cmd: &mut Command) {
        cmd.env("HUSK_TEST_BUNDLE", &self.dir);
    }

    /// Live processes of this bundle: containers, inits waiting for start
    /// (known by the exec fifo they hold), and any husk.
    pub fn processes(&self) -> Vec<i32> {
        let marker = self.marker().into_bytes();
        let me = std::process::id() as i32;
        std::fs::read_dir("/proc")
            .unwrap()
            .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
            .filter(|&pid| pid != me)
            .filter(|pid| {
                let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
                let env = std::fs::read(format!("/proc/{pid}/environ")).unwrap_or_default();
                !stat.is_empty()
                    && !stat.contains(") Z ")
                    && (env.split(|&b| b == 0).any(|e| e == marker) || self.holds_a_file_of_the_root(*pid))
            })
            .collect()
    }

    /// The container's processes, but for those that have a SIGKILL pending
    /// and go within 2 s: an init a killed `create` left is killed by the
    /// kernel (PDEATHSIG), and may sit a while in an uninterruptible wait (a
    /// v1 cgroup move on a loaded host) before it can die.
    fn processes_not_dying_soon(&self) -> Vec<i32> {
        let deadline = Instant::now() + Duration::from_secs(2);
        loop {
            let left = self.processes();
            if left.is_empty() || Instant::now() >= deadline || !left.iter().all(|&pid| is_dying(pid)) {
                return left;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Whether process `pid` has a file of this bundle's state root open: an
    /// init before its execve (its exec fifo), whose environment husk blanks.
    /// A copy of this test binary is not one: a command another test thread
    /// forks holds, until its execve, every fd this thread has open then (the
    /// root's directory, which `Drop` reads, say), and was once counted as
    /// left behind here.
    fn holds_a_file_of_the_root(&self, pid: i32) -> bool {
        if is_a_copy_of_this_test(pid) {
            return false;
        }
        let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
            return false;
        };
        fds.flatten()
            .filter_map(|fd| std::fs::read_link(fd.path()).ok())
            .any(|target| target.starts_with(&self.root))
    }

    /// What `processes` found, to say in a failure: each one's pid, state,
    /// parent and command line.
    pub fn describe(pids: &[i32]) -> String {
        let one = |pid: &i32| {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            let state: Vec<&str> = stat
                .rsplit_once(") ")
                .map_or("", |(_, rest)| rest)
                .split(' ')
                .take(2)
                .collect();
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            format!(
                "{pid} {state:?} {}",
                String::from_utf8_lossy(&cmdline).replace('\0', " ")
            )
        };
        pids.iter().map(one).collect::<Vec<_>>().join("; ")
    }

    /// The cgroup husk gives container `id` of this bundle's root by default.
    pub fn default_cgroup(&self, id: &str) -> String {
        let hash = self
            .root
            .as_os_str()
            .as_encoded_bytes()
            .iter()
            .fold(0xcbf29ce484222325u64, |h, b| {
                (h ^ *b as u64).wrapping_mul(0x100000001b3)
            });
        format!("/husk/root={hash:016x}/{id}")
    }

    /// Asserts that container `id` left no state directory, process, cgroup or host mount.
    #[track_caller]
    pub fn assert_gone(&self, id: &str) {
        assert!(!self.root.join(id).exists(), "state directory of {id} left behind");
        for hierarchy in std::fs::read_dir("/sys/fs/cgroup").unwrap().flatten() {
            let dir = hierarchy.path().join(self.default_cgroup(id).trim_start_matches('/'));
            assert!(!dir.exists(), "cgroup {} left behind", dir.display());
        }
        let leftover = self.processes_not_dying_soon();
        assert!(
            leftover.is_empty(),
            "container processes left behind: {}",
            Self::describe(&leftover)
        );
        let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
        assert!(!mounts.contains(self.dir.to_str().unwrap()), "host mounts left behind");
    }

    /// `create` of `id` must fail with `expect` in a one-line error, leaving nothing.
    #[track_caller]
    pub fn create_fails(&self, id: &str, expect: &str) {
        let o = self.create(id);
        assert!(!o.status.success(), "create succeeded but should fail with {expect:?}");
        let err = stderr(&o);
        assert_eq!(err.lines().count(), 1, "one line: {err}");
        assert!(err.contains(expect), "expected {expect:?} in: {err}");
        self.assert_gone(id);
    }

    /// Waits (bounded) until `id` has the given status; it may not exist yet
    /// (a `run -d` that has not committed it).
    #[track_caller]
    pub fn wait_status(&self, id: &str, want: &str) {
        let deadline = Instant::now() + Duration::from_secs(10);
        let status = || {
            let o = self.husk(&["state", id]);
            let state: Option<Value> = serde_json::from_slice(&o.stdout).ok();
            state.and_then(|s| s["status"].as_str().map(String::from))
        };
        while status().as_deref() != Some(want) {
            assert!(Instant::now() < deadline, "{id} never became {want}");
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Bundle {
    fn drop(&mut self) {
        if let Ok(entries) = std::fs::read_dir(&self.root) {
            for e in entries.flatten() {
                let id = e.file_name().to_string_lossy().into_owned();
                let _ = self.husk(&["delete", "--force", &id]);
            }
        }
        let leftover = self.processes();
        // husk keeps the per-root cgroup directory; the test's root goes now.
        let per_root = self.default_cgroup("x");
        let per_root = per_root.trim_start_matches('/').trim_end_matches("/x");
        for hierarchy in std::fs::read_dir("/sys/fs/cgroup").into_iter().flatten().flatten() {
            let _ = std::fs::remove_dir(hierarchy.path().join(per_root));
        }
        let _ = std::fs::remove_dir_all(&self.dir);
        if !std::thread::panicking() {
            assert!(
                leftover.is_empty(),
                "container processes left behind: {}",
                Self::describe(&leftover)
            );
        }
    }
}

/// Whether process `pid` is on its way out: exiting already (PF_EXITING),
/// or with a SIGKILL pending (its own or its group's).
pub fn is_dying(pid: i32) -> bool {
    const PF_EXITING: u64 = 0x4;
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let flags = stat
        .rsplit_once(") ")
        .and_then(|(_, rest)| rest.split_whitespace().nth(6)?.parse::<u64>().ok());
    if flags.is_some_and(|f| f & PF_EXITING != 0) {
        return true;
    }
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .filter(|l| l.starts_with("SigPnd:") || l.starts_with("ShdPnd:"))
        .filter_map(|l| u64::from_str_radix(l.split_whitespace().nth(1)?, 16).ok())
        .any(|mask| mask & (1 << (libc::SIGKILL - 1)) != 0)
}

/// Whether process `pid` still runs this test binary: forked, not yet exec'd.
fn is_a_copy_of_this_test(pid: i32) -> bool {
    let exe = |pid: &str| std::fs::read_link(format!("/proc/{pid}/exe")).ok();
    exe(&pid.to_string()).is_some_and(|theirs| Some(theirs) == exe("self"))
}

/// Reads from a pty master until `want` shows up, for at most `limit`.
pub fn read_until(master: &mut std::fs::File, want: &str, limit: Duration) -> String {
    use std::io::Read;
    use std::os::fd::AsRawFd;
    let mut seen = String::new();
    let deadline = Instant::now() + limit;
    let mut buf = [0u8; 1024];
    while !seen.contains(want) {
        assert!(Instant::now() < deadline, "never saw {want:?} in {seen:?}");
        let mut fds = [libc::pollfd {
            fd: master.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        }];
        // SAFETY: polling a valid fd.
        if unsafe { libc::poll(fds.as_mut_ptr(), 1, 200) } <= 0 {
            continue;
        }
        match master.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => seen.push_str(&String::from_utf8_lossy(&buf[..n])),
        }
    }
    seen
}

/// Accepts one connection on the console socket and returns the pty path
/// sent with the master, and the master.
pub fn receive_master(
    listener: std::os::unix::net::UnixListener,
) -> std::thread::JoinHandle<Option<(String, std::os::fd::OwnedFd)>> {
    use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
    std::thread::spawn(move || {
        let (stream, _) = listener.accept().unwrap();
        let mut buf = [0u8; 256];
        let mut space = nix::cmsg_space!([std::os::fd::RawFd; 1]);
        let mut iov = [std::io::IoSliceMut::new(&mut buf)];
        let msg = recvmsg::<()>(stream.as_raw_fd(), &mut iov, Some(&mut space), MsgFlags::empty()).unwrap();
        let fd = msg.cmsgs().unwrap().find_map(|c| match c {
            ControlMessageOwned::ScmRights(fds) => fds.first().copied(),
            _ => None,
        })?;
        let n = msg.bytes;
        // SAFETY: the fd just received is ours.
        Some((String::from_utf8_lossy(&buf[..n]).into_owned(), unsafe {
            OwnedFd::from_raw_fd(fd)
        }))
    })
}

/// A createRuntime hook (run by husk, with the state on its stdin) that
/// stops the container's init (SIGSTOP), as a host process with its uid could.
pub fn hook_that_stops_the_init() -> Value {
    create_runtime_hook(STOP_THE_INIT)
}

/// What [`hook_that_stops_the_init`] runs: reads the init's pid from the state on its stdin.
const STOP_THE_INIT: &str = "pid=$(tr , '\\n' | sed -n 's/^ *\"pid\": *\\([0-9]*\\).*/\\1/p'); kill -STOP $pid";

fn create_runtime_hook(script: &str) -> Value {
    serde_json::json!({"createRuntime": [{"path": "/bin/sh", "args": ["sh", "-c", script]}]})
}

/// As [`hook_that_stops_the_init`], the hook then making `marker` for the
/// test to wait on ([`wait_for_file`]).
pub fn hook_that_stops_the_init_and_marks(marker: &Path) -> Value {
    create_runtime_hook(&format!("{STOP_THE_INIT}; touch {}", marker.display()))
}

/// Waits at most `limit` for `path` to exist; fails the test past that.
#[track_caller]
pub fn wait_for_file(path: &Path, limit: Duration) {
    let deadline = Instant::now() + limit;
    while !path.exists() {
        assert!(
            Instant::now() < deadline,
            "{} did not appear within {limit:?}",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// A FUSE filesystem that never answers (tests/helpers/fuse_hang.c), served
/// by a child of the test: killed and unmounted when dropped.
pub struct HangingFuse {
    pub daemon: std::process::Child,
    pub mountpoint: std::path::PathBuf,
}

impl HangingFuse {
    pub fn mount(b: &Bundle, mountpoint: std::path::PathBuf) -> HangingFuse {
        let binary = b.dir.join("fuse_hang");
        let src = std::path::Path::new(HELPERS).join("fuse_hang.c");
        let o = std::process::Command::new("gcc")
            .args(["-O2", "-o"])
            .arg(&binary)
            .arg(&src)
            .output();
        let o = o.expect("gcc must be installed");
        assert!(o.status.success(), "gcc: {}", String::from_utf8_lossy(&o.stderr));
        std::fs::create_dir_all(&mountpoint).unwrap();
        let mut daemon = std::process::Command::new(&binary)
            .arg(&mountpoint)
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut said = String::new();
        std::io::BufRead::read_line(&mut std::io::BufReader::new(daemon.stdout.take().unwrap()), &mut said).unwrap();
        let fuse = HangingFuse { daemon, mountpoint };
        assert_eq!(said, "mounted\n", "the FUSE helper did not mount");
        fuse
    }
}

impl Drop for HangingFuse {
    fn drop(&mut self) {
        let _ = self.daemon.kill();
        let _ = self.daemon.wait();
        let _ = nix::mount::umount2(&self.mountpoint, nix::mount::MntFlags::MNT_DETACH);
    }
}

/// A process that holds an flock on a file and is stopped (SIGSTOP), as a
/// husk command stopped while it holds a lock; killed when dropped.
pub struct StoppedFlock {
    holder: std::process::Child,
    command: i32,
}

impl StoppedFlock {
    pub fn on(file: &Path) -> StoppedFlock {
        // --close: the lock is flock(1)'s alone, not its command's.
        let holder = Command::new("flock")
            .arg("--close")
            .arg(file)
            .args(["sleep", "100"])
            .spawn()
            .unwrap();
        let children = format!("/proc/{0}/task/{0}/children", holder.id());
        let deadline = Instant::now() + Duration::from_secs(10);
        let command = loop {
            if let Ok(pid) = std::fs::read_to_string(&children).unwrap_or_default().trim().parse() {
                break pid;
            }
            assert!(Instant::now() < deadline, "flock never ran its command");
            std::thread::sleep(Duration::from_millis(5));
        };
        send_signal(&holder, nix::sys::signal::Signal::SIGSTOP);
        StoppedFlock { holder, command }
    }
}

impl Drop for StoppedFlock {
    fn drop(&mut self) {
        let _ = self.holder.kill();
        let _ = self.holder.wait();
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.command),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
}

/// Copies of the sockets process `pid` holds, taken with pidfd_getfd (as a
/// process of the container with CAP_SYS_PTRACE can).
pub fn sockets_of(pid: i32) -> Vec<std::os::fd::OwnedFd> {
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
    // SAFETY: plain syscalls; each fd returned is owned at once.
    let pidfd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    assert!(pidfd >= 0, "pidfd_open {pid}: {}", std::io::Error::last_os_error());
    let pidfd = unsafe { OwnedFd::from_raw_fd(pidfd as i32) };
    let mut sockets = Vec::new();
    for entry in std::fs::read_dir(format!("/proc/{pid}/fd")).unwrap().flatten() {
        let is_socket = std::fs::read_link(entry.path()).is_ok_and(|t| t.to_string_lossy().starts_with("socket:"));
        let Some(n) = entry.file_name().to_str().and_then(|n| n.parse::<i32>().ok()) else {
            continue;
        };
        if !is_socket {
            continue;
        }
        // SAFETY: as above.
        let fd = unsafe { libc::syscall(libc::SYS_pidfd_getfd, pidfd.as_raw_fd(), n, 0) };
        assert!(fd >= 0, "pidfd_getfd: {}", std::io::Error::last_os_error());
        sockets.push(unsafe { OwnedFd::from_raw_fd(fd as i32) });
    }
    sockets
}

/// The process that made `socket` (SO_PEERPIDFD: a pidfd of it, which a
/// process holding the socket can ask for) is gone: the pidfd takes no fd
/// from it and enters none of its namespaces.
#[track_caller]
pub fn assert_peer_is_gone(socket: &std::os::fd::OwnedFd) {
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
    const SO_PEERPIDFD: libc::c_int = 77;
    let mut pidfd: libc::c_int = -1;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: getsockopt into a c_int of the given length.
    let ret = unsafe {
        let into = std::ptr::addr_of_mut!(pidfd).cast();
        libc::getsockopt(socket.as_raw_fd(), libc::SOL_SOCKET, SO_PEERPIDFD, into, &mut len)
    };
    assert_eq!(ret, 0, "SO_PEERPIDFD (Linux 6.5): {}", std::io::Error::last_os_error());
    // SAFETY: the pidfd is ours now.
    let pidfd = unsafe { OwnedFd::from_raw_fd(pidfd) };
    // SAFETY: plain syscalls.
    let taken = unsafe { libc::syscall(libc::SYS_pidfd_getfd, pidfd.as_raw_fd(), 0, 0) };
    let took = std::io::Error::last_os_error();
    assert_eq!(taken, -1, "the socket's maker gave up its fd 0 through SO_PEERPIDFD");
    assert_eq!(took.raw_os_error(), Some(libc::ESRCH), "{took}");
    // SAFETY: as above.
    let entered = unsafe { libc::setns(pidfd.as_raw_fd(), libc::CLONE_NEWUTS) };
    assert_eq!(entered, -1, "entered the socket's maker's uts namespace");
}

/// The children of `pid` (from /proc/*/stat).
pub fn children_of(pid: u32) -> Vec<u32> {
    let ppid_of = |stat: &str| -> Option<u32> { stat.rsplit_once(") ")?.1.split(' ').nth(1)?.parse().ok() };
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&p| std::fs::read_to_string(format!("/proc/{p}/stat")).is_ok_and(|s| ppid_of(&s) == Some(pid)))
        .collect()
}
