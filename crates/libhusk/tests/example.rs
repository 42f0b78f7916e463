//! Runs `examples/run.rs` (which `cargo test` builds) on a busybox bundle, as
//! root: the container's output and exit status come through, and nothing is
//! left behind (state, processes, cgroup, mounts). Skipped when not root.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

const BUSYBOX: &str = "/bin/busybox";
/// The example may take no longer than this.
const TIMEOUT: Duration = Duration::from_secs(60);
/// Tags the example and the container's process, so that they can be found.
const MARKER: &str = "HUSK_EXAMPLE_TEST";

fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// The example binary, beside this test's own directory of the same profile:
/// target/PROFILE/deps/example-HASH -> target/PROFILE/examples/run.
fn example_binary() -> PathBuf {
    let me = std::env::current_exe().unwrap();
    let profile_dir = me.parent().and_then(Path::parent).expect("target/PROFILE/deps");
    let bin = profile_dir.join("examples/run");
    assert!(
        bin.exists(),
        "{} is missing: `cargo test -p libhusk` builds it (or `cargo build -p libhusk --example run`)",
        bin.display()
    );
    bin
}

/// A scratch directory with a busybox bundle and a state root, removed on drop.
struct Scratch {
    dir: PathBuf,
}

impl Scratch {
    fn new(name: &str) -> Scratch {
        let dir = std::env::temp_dir().join(format!("husk-example-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Scratch { dir }
    }

    fn bundle(&self) -> PathBuf {
        self.dir.join("bundle")
    }

    fn root(&self) -> PathBuf {
        self.dir.join("state")
    }

    /// A busybox rootfs (as tests/common/mod.rs makes one) and the default
    /// config.json of `husk spec`, running `script` with no terminal.
    fn make_bundle(&self, script: &str) {
        let bin = self.bundle().join("rootfs/bin");
        std::fs::create_dir_all(&bin).unwrap();
        std::fs::copy(BUSYBOX, bin.join("busybox"))
            .expect("busybox-static must be installed (apt-get install busybox-static)");
        for applet in ["sh", "echo"] {
            std::os::unix::fs::symlink("busybox", bin.join(applet)).unwrap();
        }
        for dir in ["proc", "sys", "dev", "tmp"] {
            std::fs::create_dir_all(self.bundle().join("rootfs").join(dir)).unwrap();
        }
        libhusk::spec::template::write(&self.bundle(), false).unwrap();
        let path = self.bundle().join("config.json");
        let mut config: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        config["process"]["terminal"] = Value::Bool(false);
        config["process"]["args"] = serde_json::json!(["sh", "-c", script]);
        let marker = Value::from(format!("{MARKER}={}", self.dir.display()));
        config["process"]["env"].as_array_mut().unwrap().push(marker);
        std::fs::write(&path, serde_json::to_vec_pretty(&config).unwrap()).unwrap();
    }

    /// Live processes tagged with this scratch directory (zombies aside).
    fn processes(&self) -> Vec<i32> {
        let marker = format!("{MARKER}={}", self.dir.display()).into_bytes();
        let me = std::process::id() as i32;
        std::fs::read_dir("/proc")
            .unwrap()
            .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
            .filter(|&pid| pid != me)
            .filter(|pid| {
                let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
                let env = std::fs::read(format!("/proc/{pid}/environ")).unwrap_or_default();
                !stat.is_empty() && !stat.contains(") Z ") && env.split(|&b| b == 0).any(|e| e == marker)
            })
            .collect()
    }

    /// The cgroup husk gives container `id` under a --root other than the
    /// default: /husk/root=HASH/ID, HASH being FNV-1a of the root's path.
    fn default_cgroup(&self, id: &str) -> String {
        let hash = self
            .root()
            .as_os_str()
            .as_encoded_bytes()
            .iter()
            .fold(0xcbf29ce484222325u64, |h, b| {
                (h ^ *b as u64).wrapping_mul(0x100000001b3)
            });
        format!("/husk/root={hash:016x}/{id}")
    }

    #[track_caller]
    fn assert_gone(&self, id: &str) {
        assert!(!self.root().join(id).exists(), "state directory of {id} left behind");
        for hierarchy in std::fs::read_dir("/sys/fs/cgroup").unwrap().flatten() {
            let dir = hierarchy.path().join(self.default_cgroup(id).trim_start_matches('/'));
            assert!(!dir.exists(), "cgroup {} left behind", dir.display());
        }
        assert_eq!(self.processes(), Vec::<i32>::new(), "container processes left behind");
        let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
        assert!(!mounts.contains(self.dir.to_str().unwrap()), "host mounts left behind");
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        // husk keeps the root's cgroup directory (husk/root=HASH): it goes with the root.
        let per_root = self.default_cgroup("x");
        let per_root = per_root.trim_start_matches('/').trim_end_matches("/x");
        for hierarchy in std::fs::read_dir("/sys/fs/cgroup").into_iter().flatten().flatten() {
            let _ = std::fs::remove_dir(hierarchy.path().join(per_root));
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Runs the command to its end within `timeout`, killing it past that.
fn run_with_timeout(cmd: &mut Command, timeout: Duration) -> Output {
    let child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn the example");
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    let (done, finished) = std::sync::mpsc::channel();
    let waiter = std::thread::spawn(move || {
        let output = child.wait_with_output();
        let _ = done.send(());
        output
    });
    let deadline = Instant::now() + timeout;
    while finished.try_recv().is_err() {
        if Instant::now() > deadline {
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
            let _ = waiter.join();
            panic!("the example did not finish within {timeout:?}: {cmd:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    waiter.join().unwrap().expect("the example's output")
}

#[test]
fn the_example_runs_a_container_to_its_exit_status() {
    if !is_root() {
        eprintln!("skipped: the example runs a container, which needs root");
        return;
    }
    let scratch = Scratch::new("exit");
    scratch.make_bundle("echo hello from the container; exit 3");
    let id = "example";
    let mut cmd = Command::new(example_binary());
    cmd.arg("--root")
        .arg(scratch.root())
        .arg(scratch.bundle())
        .arg(id)
        .env(MARKER, &scratch.dir);
    let out = run_with_timeout(&mut cmd, TIMEOUT);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "stdout: {stdout}\nstderr: {stderr}");
    assert_eq!(
        stdout, "hello from the container\ncontainer example exited with status 3\n",
        "stderr: {stderr}"
    );
    assert_eq!(stderr, "");
    scratch.assert_gone(id);
}

#[test]
fn the_example_reports_a_failed_create_and_leaves_nothing() {
    if !is_root() {
        eprintln!("skipped: the example runs a container, which needs root");
        return;
    }
    let scratch = Scratch::new("broken");
    scratch.make_bundle("true");
    let path = scratch.bundle().join("config.json");
    let mut config: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    config["process"]["args"] = serde_json::json!(["/no/such/program"]);
    std::fs::write(&path, serde_json::to_vec_pretty(&config).unwrap()).unwrap();
    let mut cmd = Command::new(example_binary());
    cmd.arg("--root")
        .arg(scratch.root())
        .arg(scratch.bundle())
        .arg("broken")
        .env(MARKER, &scratch.dir);
    let out = run_with_timeout(&mut cmd, TIMEOUT);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "stderr: {stderr}");
    assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
    assert!(stderr.contains("/no/such/program"), "{stderr}");
    scratch.assert_gone("broken");
}
