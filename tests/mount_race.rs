//! Symlink-exchange races on mount destinations and bind sources (the
//! CVE-2021-30465 and CVE-2024-45310 classes): while containers are created,
//! a racer swaps path components between a directory and a symlink to a host
//! directory. Whatever the timing, husk mounts inside the rootfs or fails
//! cleanly, and never creates, mounts over or touches anything on the host.

mod common;

use common::*;
use serde_json::json;
use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::SystemTime;

const ITERATIONS: usize = 200;

/// The host directory the swapped-in symlinks point to; removed on drop.
struct HostDir(PathBuf);

impl HostDir {
    fn new() -> HostDir {
        let dir = std::env::temp_dir().join(format!("husk-race-host-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir(&dir).unwrap();
        HostDir(dir)
    }

    fn mtime(&self) -> SystemTime {
        std::fs::metadata(&self.0).unwrap().modified().unwrap()
    }

    #[track_caller]
    fn assert_untouched(&self, mtime: SystemTime, when: &str) {
        let entries: Vec<_> = std::fs::read_dir(&self.0)
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .collect();
        assert!(entries.is_empty(), "{when}: created on the host: {entries:?}");
        assert_eq!(self.mtime(), mtime, "{when}: the host directory was modified");
        let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
        assert!(
            !mounts.contains(self.0.to_str().unwrap()),
            "{when}: a mount on the host directory: {mounts}"
        );
    }
}

impl Drop for HostDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A thread exchanging each (directory, symlink) pair with renameat2(RENAME_EXCHANGE)
/// in a tight loop, until dropped.
struct Swapper {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<u64>>,
}

impl Swapper {
    fn start(pairs: Vec<(PathBuf, PathBuf)>) -> Swapper {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let cpath = |p: &Path| CString::new(p.as_os_str().as_bytes()).unwrap();
        let pairs: Vec<(CString, CString)> = pairs.iter().map(|(a, b)| (cpath(a), cpath(b))).collect();
        let thread = std::thread::spawn(move || {
            let mut swaps = 0;
            while !flag.load(Ordering::Relaxed) {
                for (a, b) in &pairs {
                    // SAFETY: two valid C strings (absolute paths); renameat2 only reads
                    // them. The raw syscall: musl has no renameat2 wrapper.
                    let ret = unsafe {
                        libc::syscall(
                            libc::SYS_renameat2,
                            libc::AT_FDCWD,
                            a.as_ptr(),
                            libc::AT_FDCWD,
                            b.as_ptr(),
                            libc::RENAME_EXCHANGE,
                        )
                    };
                    swaps += u64::from(ret == 0);
                }
            }
            swaps
        });
        Swapper {
            stop,
            thread: Some(thread),
        }
    }

    /// Stops the racer and returns how many exchanges it made.
    fn stop(&mut self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.take().map_or(0, |t| t.join().unwrap())
    }
}

impl Drop for Swapper {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A directory `dir/name` (with `content` made inside it) and its rival
/// `dir/name-link`, a symlink to `target`.
fn racing_pair(dir: &Path, name: &str, target: &Path) -> (PathBuf, PathBuf) {
    let real = dir.join(name);
    let link = dir.join(format!("{name}-link"));
    std::fs::create_dir_all(&real).unwrap();
    std::os::unix::fs::symlink(target, &link).unwrap();
    (real, link)
}

/// (mount point, root, fstype) of each mount in a mountinfo text.
fn mounts(mountinfo: &str) -> Vec<(String, String, String)> {
    mountinfo
        .lines()
        .filter_map(|l| {
            let fields: Vec<&str> = l.split(' ').collect();
            let sep = fields.iter().position(|f| *f == "-")?;
            Some((
                fields.get(4)?.to_string(),
                fields.get(3)?.to_string(),
                fields.get(sep + 1)?.to_string(),
            ))
        })
        .collect()
}

#[test]
fn swapping_symlinks_into_mount_paths_never_reaches_the_host() {
    let host = HostDir::new();
    let mtime = host.mtime();
    let mut b = Bundle::new("mount-race");
    let vol = b.dir.join("vol");
    // Mount destinations through a rootfs directory and through a volume the
    // container shares (as another container would swap them), and a bind source
    // in that volume: each is raced against a symlink to the host directory.
    let pairs = vec![
        racing_pair(&b.rootfs(), "data", &host.0),
        racing_pair(&vol, "dir", &host.0),
        racing_pair(&vol, "src", &host.0),
    ];
    std::fs::create_dir_all(vol.join("src/inner")).unwrap();
    std::fs::write(vol.join("src/inner/marker"), "volume").unwrap();
    let extra = [
        json!({"destination": "/vol", "type": "bind", "source": vol, "options": ["rbind"]}),
        json!({"destination": "/data/sub/x", "type": "bind", "source": vol.join("src/inner"), "options": ["bind"]}),
        json!({"destination": "/vol/dir/y", "type": "tmpfs", "source": "tmpfs", "options": ["size=64k"]}),
    ];
    b.config["mounts"].as_array_mut().unwrap().extend(extra);
    b.script("cat /proc/self/mountinfo");
    let mut swapper = Swapper::start(pairs);

    let (mut ok, mut failed, mut via_link) = (0, 0, 0);
    for i in 0..ITERATIONS {
        let id = format!("r{i}");
        let o = b.run(&id);
        if o.status.success() {
            ok += 1;
            // The container's own view: both mounts are there, under its root.
            let seen = mounts(&stdout(&o));
            // A symlink resolved as if the rootfs were /: still inside it.
            via_link += usize::from(seen.iter().any(|(at, _, _)| at.contains("husk-race-host")));
            assert!(
                seen.iter()
                    .any(|(at, root, _)| at.ends_with("/sub/x") && root.ends_with("/inner")),
                "run {i}: the bind of the volume is not in the container: {seen:?}"
            );
            assert!(
                seen.iter().any(|(at, _, fs)| at.ends_with("/y") && fs == "tmpfs"),
                "run {i}: the tmpfs is not in the container: {seen:?}"
            );
        } else {
            failed += 1;
            assert_eq!(stderr(&o).lines().count(), 1, "run {i}: {}", stderr(&o));
        }
        b.assert_gone(&id);
        host.assert_untouched(mtime, &format!("run {i}"));
    }
    let swaps = swapper.stop();
    eprintln!("{ok} runs succeeded ({via_link} through a symlink), {failed} failed cleanly, {swaps} exchanges");
    assert!(swaps > 0, "the racer never swapped anything");
    assert!(ok > 0, "no run succeeded: the race was never survived");
    host.assert_untouched(mtime, "after the runs");
}
