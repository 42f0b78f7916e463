//! `checkpoint` and `restore` through CRIU. CRIU 3.17 cannot dump on the
//! host's kernel (6.18: a vDSO it does not know), so the tests that run it
//! are ignored here and run by `make test-checkpoint` inside the QEMU VM,
//! which boots Debian's 6.1 kernel. The refusals that come before criu runs
//! are tested anywhere.

mod common;

use common::*;
use serde_json::json;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

const WHY: &str = "needs a kernel CRIU 3.17 works on: make test-checkpoint";
/// criu under the VM's emulated CPU takes seconds to dump or restore.
const CRIU_TIMEOUT: Duration = Duration::from_secs(300);

/// criu installed, and loopback up (the VM's init leaves it down, and criu
/// probes TCP repair over it).
fn require_criu() {
    assert!(
        Command::new("criu").arg("--version").output().is_ok(),
        "criu is not installed: {WHY}"
    );
    let _ = Command::new("ip").args(["link", "set", "lo", "up"]).status();
}

/// husk with the bundle's root and a time limit long enough for criu.
fn husk(b: &Bundle, args: &[&str]) -> Output {
    let mut cmd = Command::new(HUSK);
    cmd.arg("--root").arg(&b.root).args(args).current_dir(&b.dir);
    b.tag(&mut cmd);
    run_with_timeout(&mut cmd, CRIU_TIMEOUT)
}

/// A bundle whose process counts in its memory and writes each number to
/// /data/count, /data being a bind mount of the bundle's `data` directory.
fn counting_bundle(name: &str) -> Bundle {
    let mut b = Bundle::new(name);
    let data = b.dir.join("data");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::create_dir_all(b.rootfs().join("data")).unwrap();
    b.config["mounts"].as_array_mut().unwrap().push(json!({
        "destination": "/data", "type": "bind", "source": data, "options": ["rbind", "rw"]
    }));
    b.script("i=0; while true; do i=$((i+1)); echo $i > /data/count; sleep 0.1; done");
    b
}

fn count(b: &Bundle) -> u64 {
    let text = std::fs::read_to_string(b.dir.join("data/count")).unwrap_or_default();
    text.trim().parse().unwrap_or(0)
}

/// Waits (bounded) until the count passes `n`; returns it.
#[track_caller]
fn count_passes(b: &Bundle, n: u64) -> u64 {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let c = count(b);
        if c > n {
            return c;
        }
        assert!(Instant::now() < deadline, "the count stayed at {c}, never passed {n}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn run_detached(b: &Bundle, id: &str) {
    assert_ok(&husk(b, &["run", "-d", "--bundle", b.dir.to_str().unwrap(), id]));
}

fn restore(b: &Bundle, id: &str, image: &str, extra: &[&str]) -> Output {
    let mut args = vec![
        "restore",
        "-d",
        "--image-path",
        image,
        "--bundle",
        b.dir.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    args.push(id);
    husk(b, &args)
}

fn pid_of(b: &Bundle, id: &str) -> i64 {
    b.state(id)["pid"].as_i64().unwrap()
}

#[test]
#[ignore = "needs a kernel CRIU 3.17 works on: make test-checkpoint"]
fn a_checkpointed_container_is_restored_and_counts_on() {
    require_criu();
    let b = counting_bundle("ckpt-count");
    run_detached(&b, "c");
    let old_pid = pid_of(&b, "c");
    count_passes(&b, 5);
    let image = b.dir.join("image");
    let image = image.to_str().unwrap();
    assert_ok(&husk(&b, &["checkpoint", "--image-path", image, "c"]));
    // As runc: the checkpointed container is gone, its processes with it.
    assert!(
        !b.root.join("c").exists(),
        "the checkpointed container is still recorded"
    );
    let stopped_at = count(&b);
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(
        count(&b),
        stopped_at,
        "the container kept counting after its checkpoint"
    );

    assert_ok(&restore(&b, "c", image, &[]));
    let state = b.state("c");
    assert_eq!(state["status"], "running", "{state}");
    assert_ne!(state["pid"].as_i64().unwrap(), old_pid);
    let resumed = count_passes(&b, stopped_at);
    // It counts on from its memory: no restart from 1.
    assert!(
        resumed > stopped_at && resumed < stopped_at + 100,
        "{stopped_at} -> {resumed}"
    );

    // A normal husk container: exec, pause, resume, events, kill, delete.
    let o = husk(&b, &["exec", "c", "cat", "/data/count"]);
    assert_ok(&o);
    assert!(stdout(&o).trim().parse::<u64>().unwrap() >= resumed);
    assert_ok(&husk(&b, &["pause", "c"]));
    assert_eq!(b.status("c"), "paused");
    assert_ok(&husk(&b, &["resume", "c"]));
    assert_eq!(b.status("c"), "running");
    let o = husk(&b, &["events", "--stats", "c"]);
    assert_ok(&o);
    assert!(stdout(&o).contains("\"pids\""), "{}", stdout(&o));
    assert_ok(&husk(&b, &["kill", "c", "KILL"]));
    b.wait_status("c", "stopped");
    assert_ok(&husk(&b, &["delete", "c"]));
    b.assert_gone("c");
}

#[test]
#[ignore = "needs a kernel CRIU 3.17 works on: make test-checkpoint"]
fn leave_running_keeps_the_original_running() {
    require_criu();
    let b = counting_bundle("ckpt-leave");
    run_detached(&b, "c");
    let pid = pid_of(&b, "c");
    count_passes(&b, 3);
    let image = b.dir.join("image");
    let image = image.to_str().unwrap();
    assert_ok(&husk(
        &b,
        &["checkpoint", "--leave-running", "--image-path", image, "c"],
    ));
    assert_eq!(b.status("c"), "running");
    assert_eq!(pid_of(&b, "c"), pid);
    let after = count(&b);
    count_passes(&b, after);
    // The image restores a copy once the original is gone.
    assert_ok(&husk(&b, &["delete", "--force", "c"]));
    b.assert_gone("c");
    assert_ok(&restore(&b, "c", image, &[]));
    assert_eq!(b.status("c"), "running");
    count_passes(&b, count(&b));
    assert_ok(&husk(&b, &["delete", "--force", "c"]));
    b.assert_gone("c");
}

#[test]
#[ignore = "needs a kernel CRIU 3.17 works on: make test-checkpoint"]
fn a_pre_dump_then_a_dump_on_top_of_it_restores() {
    require_criu();
    let b = counting_bundle("ckpt-predump");
    run_detached(&b, "c");
    count_passes(&b, 3);
    let parent = b.dir.join("parent");
    let image = b.dir.join("image");
    let (parent, image) = (parent.to_str().unwrap(), image.to_str().unwrap());
    assert_ok(&husk(&b, &["checkpoint", "--pre-dump", "--image-path", parent, "c"]));
    assert_eq!(b.status("c"), "running", "a pre-dump leaves the container running");
    count_passes(&b, count(&b));
    let o = husk(
        &b,
        &["checkpoint", "--image-path", image, "--parent-path", "../parent", "c"],
    );
    assert_ok(&o);
    assert!(b.dir.join("image/parent").exists(), "criu links the parent images");
    let stopped_at = count(&b);
    assert_ok(&restore(&b, "c", image, &[]));
    count_passes(&b, stopped_at);
    assert_ok(&husk(&b, &["delete", "--force", "c"]));
    b.assert_gone("c");
}

#[test]
#[ignore = "needs a kernel CRIU 3.17 works on: make test-checkpoint"]
fn an_established_tcp_connection_survives_with_tcp_established() {
    require_criu();
    let mut b = counting_bundle("ckpt-tcp");
    // Loopback in the container's own network namespace needs bringing up.
    // The listener's stdin never ends (busybox nc hangs up at its end).
    for set in ["bounding", "effective", "permitted"] {
        b.config["process"]["capabilities"][set]
            .as_array_mut()
            .unwrap()
            .push(json!("CAP_NET_ADMIN"));
    }
    b.script(
        "exec 2>/data/errors; ip link set lo up; sleep 100000 | nc -l -p 5000 > /data/received & sleep 0.5; \
         i=0; while true; do i=$((i+1)); echo $i; echo $i > /data/count; sleep 0.1; done | nc 127.0.0.1 5000",
    );
    run_detached(&b, "c");
    let errors = || std::fs::read_to_string(b.dir.join("data/errors")).unwrap_or_default();
    let deadline = Instant::now() + Duration::from_secs(60);
    while count(&b) < 5 {
        assert!(
            Instant::now() < deadline,
            "the pipe over TCP does not run: {}",
            errors()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let received = || std::fs::read_to_string(b.dir.join("data/received")).unwrap_or_default();
    assert!(!received().is_empty(), "the listener got nothing");
    let image = b.dir.join("image");
    let image = image.to_str().unwrap();
    let o = husk(&b, &["checkpoint", "--tcp-established", "--image-path", image, "c"]);
    assert_ok(&o);
    let lines_before = received().lines().count();
    assert_ok(&restore(&b, "c", image, &["--tcp-established"]));
    count_passes(&b, count(&b) + 5);
    // The same connection carries on: the listener (which accepts only one) receives more.
    let deadline = Instant::now() + Duration::from_secs(30);
    while received().lines().count() <= lines_before + 3 {
        assert!(
            Instant::now() < deadline,
            "nothing more came over the restored connection"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let lines: Vec<u64> = received().lines().filter_map(|l| l.parse().ok()).collect();
    assert!(
        lines.windows(2).all(|w| w[1] == w[0] + 1),
        "lost or repeated: {lines:?}"
    );
    assert_ok(&husk(&b, &["delete", "--force", "c"]));
    b.assert_gone("c");
}

#[test]
#[ignore = "needs a kernel CRIU 3.17 works on: make test-checkpoint"]
fn restore_keeps_bind_mounts_masked_paths_and_cgroup_limits() {
    require_criu();
    let mut b = counting_bundle("ckpt-limits");
    std::fs::write(b.dir.join("data/hello"), "from the host\n").unwrap();
    b.config["linux"]["resources"] = json!({
        "memory": {"limit": 67108864},
        "pids": {"limit": 50}
    });
    b.save();
    run_detached(&b, "c");
    count_passes(&b, 3);
    let image = b.dir.join("image");
    let image = image.to_str().unwrap();
    assert_ok(&husk(&b, &["checkpoint", "--image-path", image, "c"]));
    assert_ok(&restore(&b, "c", image, &[]));
    let cgroup = format!("/sys/fs/cgroup{}", b.default_cgroup("c"));
    let file = |name: &str| {
        std::fs::read_to_string(format!("{cgroup}/{name}"))
            .unwrap()
            .trim()
            .to_string()
    };
    assert_eq!(file("memory.max"), "67108864");
    assert_eq!(file("pids.max"), "50");
    let pid = pid_of(&b, "c");
    assert!(
        file("cgroup.procs").lines().any(|p| p == pid.to_string()),
        "the init is not in {cgroup}"
    );
    let own = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    assert!(
        own.trim().ends_with(&b.default_cgroup("c")) || own.trim() == "0::/",
        "{own}"
    );
    // The bind mount is there, and the masked paths still masked.
    let o = husk(&b, &["exec", "c", "cat", "/data/hello"]);
    assert_ok(&o);
    assert_eq!(stdout(&o), "from the host\n");
    let o = husk(
        &b,
        &["exec", "c", "sh", "-c", "wc -c < /proc/kcore; ls -A /proc/acpi | wc -l"],
    );
    assert_ok(&o);
    assert_eq!(stdout(&o).split_whitespace().collect::<Vec<_>>(), ["0", "0"]);
    let o = husk(&b, &["exec", "c", "cat", "/proc/self/mountinfo"]);
    assert!(stdout(&o).contains(" /data "), "{}", stdout(&o));
    assert_ok(&husk(&b, &["delete", "--force", "c"]));
    b.assert_gone("c");
}

#[test]
#[ignore = "needs a kernel CRIU 3.17 works on: make test-checkpoint"]
fn a_failed_restore_leaves_nothing_and_names_the_log() {
    require_criu();
    let b = counting_bundle("ckpt-corrupt");
    run_detached(&b, "c");
    count_passes(&b, 3);
    let image = b.dir.join("image");
    assert_ok(&husk(&b, &["checkpoint", "--image-path", image.to_str().unwrap(), "c"]));
    // Corrupt the memory of every process.
    for e in std::fs::read_dir(&image).unwrap().flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if name.starts_with("pagemap-") || name.starts_with("mm-") {
            std::fs::write(e.path(), b"\x01\x02\x03 not an image").unwrap();
        }
    }
    let o = restore(&b, "c", image.to_str().unwrap(), &[]);
    assert!(!o.status.success(), "a corrupted image restored");
    let err = stderr(&o);
    assert!(err.contains("restore.log"), "the error names no log: {err}");
    b.assert_gone("c");
}

#[test]
#[ignore = "needs a kernel CRIU 3.17 works on: make test-checkpoint"]
fn a_failed_checkpoint_leaves_the_container_running() {
    require_criu();
    let b = counting_bundle("ckpt-fail");
    // The container holds a unix socket connected outside it (fd 3, from
    // here): criu refuses to dump it without --ext-unix-sk.
    let (_mine, theirs) = std::os::unix::net::UnixStream::pair().unwrap();
    let mut cmd = Command::new(HUSK);
    cmd.arg("--root").arg(&b.root).current_dir(&b.dir);
    cmd.args([
        "run",
        "-d",
        "--preserve-fds",
        "1",
        "--bundle",
        b.dir.to_str().unwrap(),
        "c",
    ]);
    pass_fds(&mut cmd, vec![(std::os::fd::AsRawFd::as_raw_fd(&theirs), 3)]);
    b.tag(&mut cmd);
    assert_ok(&run_with_timeout(&mut cmd, CRIU_TIMEOUT));
    let pid = pid_of(&b, "c");
    count_passes(&b, 3);
    let image = b.dir.join("image");
    let o = husk(&b, &["checkpoint", "--image-path", image.to_str().unwrap(), "c"]);
    assert!(!o.status.success(), "criu dumped a socket connected outside");
    let err = stderr(&o);
    assert_eq!(err.lines().count(), 1, "one line: {err}");
    assert!(
        err.contains("criu dump failed") && err.contains("image/dump.log"),
        "{err}"
    );
    assert_eq!(b.status("c"), "running");
    assert_eq!(pid_of(&b, "c"), pid);
    count_passes(&b, count(&b));
    assert_ok(&husk(&b, &["delete", "--force", "c"]));
    b.assert_gone("c");
}

/// What is refused before criu runs, on any host.
#[test]
fn checkpoint_and_restore_refuse_what_husk_cannot_do() {
    let b = counting_bundle("ckpt-refuse");
    run_detached(&b, "c");
    let o = husk(&b, &["--rootless", "true", "checkpoint", "c"]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("needs root"), "{}", stderr(&o));
    let o = husk(&b, &["checkpoint", "--lazy-pages", "c"]);
    assert!(stderr(&o).contains("--lazy-pages is not supported"), "{}", stderr(&o));
    let o = husk(&b, &["checkpoint", "--manage-cgroups-mode", "loose", "c"]);
    assert!(stderr(&o).contains("soft, full, strict or ignore"), "{}", stderr(&o));
    assert_eq!(b.status("c"), "running", "a refused checkpoint touched the container");
    // A failing criu (here, not criu at all) leaves the container running
    // and untouched, and the error names criu's log.
    let mut cmd = Command::new(HUSK);
    cmd.arg("--root")
        .arg(&b.root)
        .args(["checkpoint", "c"])
        .current_dir(&b.dir)
        .env("HUSK_CRIU", "/bin/false");
    b.tag(&mut cmd);
    let o = run_with_timeout(&mut cmd, COMMAND_TIMEOUT);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("checkpoint/dump.log"), "{}", stderr(&o));
    assert_eq!(b.status("c"), "running");
    let o = husk(&b, &["restore", "--image-path", "/nonexistent", "c2"]);
    assert!(stderr(&o).contains("no checkpoint there"), "{}", stderr(&o));
    let o = husk(&b, &["--rootless", "true", "restore", "c2"]);
    assert!(stderr(&o).contains("needs root"), "{}", stderr(&o));
    assert!(!b.root.join("c2").exists(), "a refused restore left state");
    // As runc: delete --force of a container that is not there (podman
    // deletes the one its checkpoint removed) succeeds; without --force not.
    assert_ok(&husk(&b, &["delete", "--force", "c2"]));
    assert!(stderr(&husk(&b, &["delete", "c2"])).contains("does not exist"));
    assert_ok(&husk(&b, &["delete", "--force", "c"]));
    b.assert_gone("c");
}

/// `--image-path` and `--work-path` where the container's processes can
/// write (its rootfs, a bind mount's source; also through a symlink) or
/// another user can are refused, naming the flag, before anything is made
/// there and with the container untouched.
#[test]
fn image_and_work_paths_the_container_or_another_user_can_write_are_refused() {
    let b = counting_bundle("ckpt-paths");
    run_detached(&b, "c");
    let rootfs = b.rootfs();
    let link = b.dir.join("link-to-rootfs-tmp");
    std::os::unix::fs::symlink(rootfs.join("tmp"), &link).unwrap();
    let in_rootfs = rootfs.join("tmp/ckpt");
    let through_link = link.join("ckpt");
    let in_bind = b.dir.join("data/ckpt");
    let cases = [
        ("--image-path", in_rootfs.as_path(), "the container's rootfs"),
        ("--image-path", through_link.as_path(), "the container's rootfs"),
        ("--image-path", in_bind.as_path(), "its bind mount /data"),
        ("--work-path", in_rootfs.as_path(), "the container's rootfs"),
        ("--work-path", in_bind.as_path(), "its bind mount /data"),
    ];
    for (flag, path, why) in cases {
        let o = husk(&b, &["checkpoint", flag, path.to_str().unwrap(), "c"]);
        assert!(!o.status.success(), "{flag} {path:?} was taken");
        let err = stderr(&o);
        assert_eq!(err.lines().count(), 1, "one line: {err}");
        assert!(err.contains(flag) && err.contains(why), "{flag} {path:?}: {err}");
        assert!(!path.exists(), "{path:?} was made");
    }
    // The container made rootfs/tmp a symlink to a host directory: the
    // path as given is inside the rootfs, wherever it leads.
    let host_dir = b.dir.join("host-dir");
    std::fs::create_dir(&host_dir).unwrap();
    std::fs::remove_dir_all(rootfs.join("tmp")).unwrap();
    std::os::unix::fs::symlink(&host_dir, rootfs.join("tmp")).unwrap();
    let o = husk(&b, &["checkpoint", "--image-path", in_rootfs.to_str().unwrap(), "c"]);
    assert!(stderr(&o).contains("the container's rootfs"), "{}", stderr(&o));
    assert!(!host_dir.join("ckpt").exists(), "made through the container's symlink");
    // Directories another user can write (or owns).
    let open = b.dir.join("open");
    std::fs::create_dir(&open).unwrap();
    std::fs::set_permissions(&open, std::os::unix::fs::PermissionsExt::from_mode(0o777)).unwrap();
    let theirs = b.dir.join("theirs");
    std::fs::create_dir(&theirs).unwrap();
    chown_tree(&theirs, 1000, 1000);
    for (flag, dir) in [("--image-path", &open), ("--work-path", &open), ("--image-path", &theirs)] {
        let o = husk(&b, &["checkpoint", flag, dir.to_str().unwrap(), "c"]);
        let err = stderr(&o);
        assert!(!o.status.success(), "{flag} {dir:?} was taken");
        assert!(
            err.contains(flag) && err.contains("not writable by group or others"),
            "{flag} {dir:?}: {err}"
        );
    }
    assert_eq!(b.status("c"), "running", "a refused checkpoint touched the container");
    count_passes(&b, count(&b));

    // Restore: images another user could have written decide what runs as
    // root; images inside the new container's rootfs are the container's.
    let image = b.dir.join("fake-image");
    std::fs::create_dir(&image).unwrap();
    std::fs::set_permissions(&image, std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
    std::fs::write(image.join("inventory.img"), b"").unwrap();
    std::fs::write(image.join("core-1.img"), b"").unwrap();
    chown_tree(&image.join("core-1.img"), 1000, 1000);
    let o = restore(&b, "c2", image.to_str().unwrap(), &[]);
    assert!(
        stderr(&o).contains("core-1.img is owned by uid 1000"),
        "{}",
        stderr(&o)
    );
    assert!(!b.root.join("c2").exists(), "a refused restore left state");
    std::fs::create_dir_all(rootfs.join("ckpt")).unwrap();
    std::fs::write(rootfs.join("ckpt/inventory.img"), b"").unwrap();
    let o = restore(&b, "c2", rootfs.join("ckpt").to_str().unwrap(), &[]);
    assert!(
        stderr(&o).contains("--image-path") && stderr(&o).contains("the container's rootfs"),
        "{}",
        stderr(&o)
    );
    assert!(!b.root.join("c2").exists(), "a refused restore left state");
    assert_ok(&husk(&b, &["delete", "--force", "c"]));
    b.assert_gone("c");
}

/// A bundle whose bind mount source is missing is refused before criu
/// runs, naming the mount, and leaves nothing.
#[test]
fn restore_with_a_missing_bind_source_is_refused() {
    let mut b = counting_bundle("ckpt-nosource");
    let image = b.dir.join("image");
    std::fs::create_dir(&image).unwrap();
    std::fs::write(image.join("inventory.img"), b"").unwrap();
    b.config["mounts"].as_array_mut().unwrap().push(json!({
        "destination": "/gone", "type": "bind", "source": b.dir.join("gone"), "options": ["rbind"]
    }));
    b.save();
    let o = restore(&b, "c", image.to_str().unwrap(), &[]);
    assert!(!o.status.success());
    let err = stderr(&o);
    assert_eq!(err.lines().count(), 1, "one line: {err}");
    assert!(err.contains("mounts: the source") && err.contains("/gone"), "{err}");
    b.assert_gone("c");
}
