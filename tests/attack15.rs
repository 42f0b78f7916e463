//! Attacks on the #15 changes (and #16's restore), from outside: a hostile
//! bundle, a hostile container process, hostile command-line input.
//!
//! Each test says what it attacks. The one hole found (joining the host's
//! mount namespace from a private one built the container there) is fixed and
//! its test passes.

mod common;

use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::mounts::*;
use common::*;
use serde_json::json;

#[track_caller]
fn assert_one_line_failure(o: &std::process::Output, what: &str) {
    assert!(!o.status.success(), "{what}: succeeded but should fail");
    let err = stderr(o);
    assert!(!err.contains("panicked"), "{what}: panic: {err}");
    assert_eq!(
        err.trim_end_matches('\n').lines().count(),
        1,
        "{what}: not one line: {err:?}"
    );
}

// ---------------------------------------------------------------------------
// 1. Paths that lead back to husk's own mount namespace.

/// Claim: any path to husk's own mount namespace is "shared": chroot, no mounts.
/// Attack: /proc/thread-self, a symlink, /proc/1 (husk runs in the host's).
/// Result: PASS (the joined fd is compared by dev/ino with husk's own).
#[test]
fn every_alias_of_husks_mount_namespace_is_seen_as_shared() {
    let tmp = std::env::temp_dir();
    let link = tmp.join(format!("attack15-nslink-{}", std::process::id()));
    let _ = std::fs::remove_file(&link);
    std::os::unix::fs::symlink("/proc/self/ns/mnt", &link).unwrap();
    // (A bind mount of husk's own mount namespace file into that same
    // namespace is refused by the kernel (EINVAL, mnt_ns_loop): no such alias.)
    let mut aliases = vec!["/proc/thread-self/ns/mnt".to_string(), link.display().to_string()];
    // /proc/1 may be unreadable here (pid 1 of another user namespace).
    let ns = |p: &str| std::fs::read_link(p).ok();
    if ns("/proc/1/ns/mnt").is_some() && ns("/proc/1/ns/mnt") == ns("/proc/self/ns/mnt") {
        aliases.push("/proc/1/ns/mnt".into());
    }
    let result = std::panic::catch_unwind(|| {
        for (i, alias) in aliases.iter().enumerate() {
            let mut b = shared_mounts_bundle(&format!("alias{i}"));
            b.config["linux"]["namespaces"]
                .as_array_mut()
                .unwrap()
                .push(json!({"type": "mount", "path": alias}));
            b.save();
            let before = host_mount_view(&b);
            b.script("stat -c %i /; ls /proc | wc -l");
            let o = b.run("c");
            assert_ok(&o);
            assert_eq!(stdout(&o), format!("{}\n0\n", rootfs_inode(&b)), "{alias}");
            assert_eq!(host_mount_view(&b), before, "{alias}: the host's mount table changed");
            b.assert_gone("c");
        }
    });
    let _ = std::fs::remove_file(&link);
    if let Err(e) = result {
        std::panic::resume_unwind(e);
    }
}

/// Claim: joining /proc/1/ns/mnt (the host's) never changes the host's mount
/// table or `/`'s propagation. Attack: husk itself runs in a mount namespace
/// of its own (as under systemd's PrivateTmp=/ProtectSystem=, or any
/// `unshare -m` wrapper), and the config joins the host's namespace by path.
/// The "host" here is a stand-in: a private mount namespace held by a sleep
/// this test starts, so the real host is never touched.
/// Result: FAIL. husk compares with ITS OWN namespace only, so it takes the
/// host's for the container's: it makes the host's `/` rslave, binds the
/// rootfs, mounts /proc, /dev... there, pivot_roots (which moves the root of
/// EVERY process of that namespace whose root was `/` into the rootfs) and
/// remounts it read-only. Seen here: the stand-in host's sleep ends up with
/// the rootfs as its root, its `/` mount "ro" and no longer shared.
/// husk in a private mount namespace (a systemd unit's PrivateTmp=) joining
/// the host's (pid 1's) by path must not mount, pivot or change propagation
/// there. "The host" is pid 1 of a throw-away pid and mount namespace, so a
/// failure never touches the real one. (Joining any other existing mount
/// namespace is what linux.namespaces asks for: the container is built there,
/// as by runc.)
#[test]
fn joining_the_hosts_mount_namespace_from_a_private_one_changes_nothing_there() {
    let mut b = shared_mounts_bundle("a15-hostmnt");
    b.config["linux"]["namespaces"]
        .as_array_mut()
        .unwrap()
        .push(serde_json::json!({"type": "mount", "path": "/proc/1/ns/mnt"}));
    b.config["process"]["args"] = serde_json::json!(["stat", "-c", "%i", "/"]);
    b.save();
    let script = format!(
        "mount --make-shared / && \
         view() {{ awk '$5==\"/\" {{print $7}}' /proc/self/mountinfo; stat -c %i /; }} && \
         before=$(view) && \
         unshare -m --propagation private {husk} --root {root} run --bundle {bundle} c && \
         after=$(view) && echo \"$before\" && echo \"$after\"",
        husk = HUSK,
        root = b.root.display(),
        bundle = b.dir.display()
    );
    let mut cmd = std::process::Command::new("unshare");
    cmd.args([
        "-p",
        "-f",
        "--mount-proc",
        "-m",
        "--propagation",
        "private",
        "sh",
        "-c",
        &script,
    ]);
    b.tag(&mut cmd);
    let o = run_with_timeout(&mut cmd, COMMAND_TIMEOUT);
    assert_ok(&o);
    let out = stdout(&o);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 5, "{out}");
    assert_eq!(
        lines[0],
        rootfs_inode(&b),
        "the container runs chrooted in its rootfs: {out}"
    );
    assert!(lines[1].starts_with("shared:"), "{out}");
    assert_eq!(&lines[1..3], &lines[3..5], "the host's / changed: {out}");
    b.assert_gone("c");
}

#[test]
fn exec_without_a_mount_namespace_follows_the_init_not_the_bundle_path() {
    let mut b = shared_mounts_bundle("swap");
    b.script("sleep 30");
    assert_ok(&b.create("c"));
    assert_ok(&b.husk(&["start", "c"]));
    let moved = b.dir.join("rootfs.moved");
    std::fs::rename(b.rootfs(), &moved).unwrap();
    std::os::unix::fs::symlink("/", b.rootfs()).unwrap();
    let o = b.husk(&[
        "exec",
        "c",
        "sh",
        "-c",
        "cat /marker; test -e /etc/hostname && echo HOST",
    ]);
    std::fs::remove_file(b.rootfs()).unwrap();
    std::fs::rename(&moved, b.rootfs()).unwrap();
    assert_eq!(stdout(&o), "in the rootfs\n", "{}", stderr(&o));
    assert_ok(&b.husk(&["delete", "--force", "c"]));
    b.assert_gone("c");
}

/// Claim: a cwd outside the container's root is refused (CVE-2024-21626).
/// Attack: a container sharing the host's pid namespace (so its /proc/self
/// is the joiner) execs with --cwd /proc/self/fd/N for every small N: one of
/// them may be the joiner's handle on the host's /proc.
/// Result: PASS (no exec reaches a host file through its cwd).
#[test]
fn exec_cwd_through_a_leaked_fd_never_reaches_the_host() {
    let secret = format!("attack15-secret-{}", std::process::id());
    let secret_path = Path::new("/tmp").join(&secret);
    std::fs::write(&secret_path, "HOST SECRET\n").unwrap();
    let mut b = Bundle::new("cwdfd");
    b.without_namespace("pid");
    b.script("sleep 30");
    assert_ok(&b.create("c"));
    assert_ok(&b.husk(&["start", "c"]));
    let mut leaks = Vec::new();
    for n in 3..16 {
        let cwd = format!("/proc/self/fd/{n}");
        let read = format!("cat ../../../../../../../tmp/{secret} 2>/dev/null; cat ./1/root/tmp/{secret} 2>/dev/null");
        let o = b.husk(&["exec", "--cwd", &cwd, "c", "sh", "-c", &read]);
        if stdout(&o).contains("HOST SECRET") {
            leaks.push(n);
        }
        if !o.status.success() {
            assert_one_line_failure(&o, &cwd);
        }
    }
    let _ = std::fs::remove_file(&secret_path);
    assert_ok(&b.husk(&["delete", "--force", "c"]));
    assert!(
        leaks.is_empty(),
        "exec --cwd /proc/self/fd/N reached the host for N in {leaks:?}"
    );
    b.assert_gone("c");
}

/// Claim: a SIGKILL of husk at any instant leaves no orphan, leak or wedge.
/// Attack: `exec` into a container without a mount namespace, killed after
/// 0..40 ms; then the container must still exec and delete cleanly.
/// Result: PASS.
#[test]
fn killing_exec_into_a_shared_mount_namespace_container_leaves_nothing() {
    let mut b = shared_mounts_bundle("killexec");
    b.script("sleep 60");
    assert_ok(&b.create("c"));
    assert_ok(&b.husk(&["start", "c"]));
    for delay in (0..40).step_by(4) {
        let mut cmd = Command::new(HUSK);
        cmd.arg("--root").arg(&b.root).args(["exec", "c", "sleep", "1"]);
        b.tag(&mut cmd);
        let mut child = cmd.spawn().unwrap();
        std::thread::sleep(Duration::from_millis(delay));
        let _ = child.kill();
        let _ = child.wait();
    }
    let o = b.husk(&["exec", "c", "cat", "/marker"]);
    assert_eq!(stdout(&o), "in the rootfs\n", "{}", stderr(&o));
    assert_ok(&b.husk(&["delete", "--force", "c"]));
    b.assert_gone("c");
}

// ---------------------------------------------------------------------------
// 3. A config without `process`.

/// Claim: create succeeds, the init waits unprivileged, start fails; exec,
/// kill and delete work; run fails leaving nothing; errors are one line.
/// Result: PASS.
#[test]
fn a_config_without_process_can_be_created_execed_into_killed_and_deleted() {
    let mut b = Bundle::new("noproc");
    std::fs::write(b.rootfs().join("marker"), "in the rootfs\n").unwrap();
    let process = b.config["process"].clone();
    b.config.as_object_mut().unwrap().remove("process");
    b.save();
    let o = b.run("r");
    assert_one_line_failure(&o, "run without process");
    b.assert_gone("r");

    assert_ok(&b.create("c"));
    let status = b.state("c");
    assert_eq!(status["status"], "created");
    let init = status["pid"].as_i64().unwrap();
    let proc_status = std::fs::read_to_string(format!("/proc/{init}/status")).unwrap();
    for field in [
        "CapEff:\t0000000000000000",
        "CapBnd:\t0000000000000000",
        "NoNewPrivs:\t1",
    ] {
        assert!(proc_status.contains(field), "init: {field} missing in {proc_status}");
    }
    let o = b.husk(&["exec", "c", "cat", "/marker"]);
    assert_one_line_failure(&o, "exec without --process");
    let mut p = process;
    p["args"] = json!(["cat", "/marker"]);
    let pfile = b.dir.join("p.json");
    std::fs::write(&pfile, serde_json::to_vec(&p).unwrap()).unwrap();
    let o = b.husk(&["exec", "--process", pfile.to_str().unwrap(), "c"]);
    assert_eq!(stdout(&o), "in the rootfs\n", "{}", stderr(&o));
    assert_ok(&b.husk(&["kill", "c", "KILL"]));
    b.delete_once_stopped("c");

    // start: fails in one line, and the init then exits (runc's init does too).
    assert_ok(&b.create("s"));
    let o = b.husk(&["start", "s"]);
    assert_one_line_failure(&o, "start without process");
    b.delete_once_stopped("s");
}

// ---------------------------------------------------------------------------
// 4. tmpcopyup.

fn tmpcopyup(dest: &str, extra: &[&str]) -> serde_json::Value {
    let mut options = vec!["rw", "rprivate", "nosuid", "nodev", "tmpcopyup"];
    options.extend_from_slice(extra);
    json!({"destination": dest, "type": "tmpfs", "source": "tmpfs", "options": options})
}

/// Claim: a tree larger than the tmpfs fails create with a one-line error
/// naming the mount, leaving nothing. Result: PASS.
#[test]
fn tmpcopyup_of_more_than_the_tmpfs_holds_fails_cleanly() {
    let b = Bundle::new("copyup-full");
    let run = b.rootfs().join("run");
    std::fs::create_dir_all(&run).unwrap();
    std::fs::write(run.join("big"), vec![7u8; 1 << 20]).unwrap();
    let mut b = b;
    b.config["mounts"]
        .as_array_mut()
        .unwrap()
        .push(tmpcopyup("/run", &["size=64k"]));
    b.save();
    let before = host_mount_view(&b);
    b.create_fails("c", "/run");
    assert_eq!(host_mount_view(&b), before);
}

/// Bad input -> one line. Attack: the image's file that does not fit has a
/// newline in its name. Result: PASS (the name is escaped).
#[test]
fn tmpcopyup_error_naming_a_file_with_a_newline_stays_one_line() {
    let mut b = Bundle::new("copyup-nl");
    let run = b.rootfs().join("run");
    std::fs::create_dir_all(&run).unwrap();
    std::fs::write(run.join("big\nfile"), vec![7u8; 1 << 20]).unwrap();
    b.config["mounts"]
        .as_array_mut()
        .unwrap()
        .push(tmpcopyup("/run", &["size=64k"]));
    b.save();
    b.create_fails("c", "/run");
}

/// Claim: a tmpcopyup target that is an absolute symlink to a host path stays
/// in the rootfs. Attack: rootfs/run -> /etc; rootfs/etc holds a file.
/// Result: PASS (the tmpfs covers rootfs/etc; the host's /etc and mount table
/// do not change).
#[test]
fn tmpcopyup_target_symlinked_to_a_host_path_stays_in_the_rootfs() {
    let mut b = Bundle::new("copyup-link");
    std::fs::write(b.rootfs().join("etc/inimage"), "from the image\n").unwrap();
    std::os::unix::fs::symlink("/../../../../etc", b.rootfs().join("run")).unwrap();
    b.config["mounts"].as_array_mut().unwrap().push(tmpcopyup("/run", &[]));
    b.save();
    let before = host_mount_view(&b);
    let host_etc = std::fs::metadata("/etc").unwrap().mtime();
    let out = b.output_of("cat /etc/inimage; grep -c ' /etc tmpfs' /proc/mounts");
    assert_eq!(out, "from the image\n1\n");
    assert_eq!(host_mount_view(&b), before);
    assert_eq!(std::fs::metadata("/etc").unwrap().mtime(), host_etc);
    assert!(!Path::new("/etc/inimage").exists());
}

// ---------------------------------------------------------------------------
// 5. exec --cgroup.

/// Claim: any --cgroup path outside the container's cgroup, or malformed, is
/// refused with a one-line error, and nothing runs. Attack: `..` forms,
/// absolute escapes, unknown and repeated controllers, a newline, a
/// 100-level path and one past PATH_MAX.
/// Result: PASS (a newline too: next test).
#[test]
fn exec_cgroup_escapes_and_garbage_are_refused_in_one_line() {
    let mut b = Bundle::new("execcg");
    b.script("sleep 30");
    assert_ok(&b.create("c"));
    assert_ok(&b.husk(&["start", "c"]));
    let deep = vec!["a"; 100].join("/");
    let long = "x".repeat(5000);
    let cases: Vec<Vec<String>> = vec![
        vec!["..".into()],
        vec!["a/../..".into()],
        vec!["/../../..".into()],
        vec!["cpu:..".into()],
        vec!["cpu:/../../x".into()],
        vec![":x".into()],
        vec!["nosuchcontroller:x".into()],
        vec!["cpu,cpu:x".into()],
        vec!["cpu:x".into(), "cpu:y".into()],
        vec!["x".into(), "y".into()],
        vec!["does-not-exist".into()],
        vec![deep],
        vec![long],
    ];
    for args in cases {
        let mut argv = vec!["exec".to_string()];
        for a in &args {
            argv.push("--cgroup".into());
            argv.push(a.clone());
        }
        argv.extend(["c", "touch", "/ran"].map(String::from));
        let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
        let o = b.husk(&argv);
        assert_one_line_failure(&o, &format!("--cgroup {args:?}"));
        let o = b.husk(&["exec", "c", "test", "!", "-e", "/ran"]);
        assert_ok(&o);
    }
    assert_ok(&b.husk(&["delete", "--force", "c"]));
    b.assert_gone("c");
}

/// Bad input -> one line. Attack: a newline in --cgroup. Result: PASS.
#[test]
fn exec_cgroup_with_a_newline_is_refused_in_one_line() {
    let mut b = Bundle::new("execcg-nl");
    b.script("sleep 30");
    assert_ok(&b.create("c"));
    assert_ok(&b.husk(&["start", "c"]));
    let o = b.husk(&["exec", "--cgroup", "a\nb", "c", "true"]);
    let _ = b.husk(&["delete", "--force", "c"]);
    assert_one_line_failure(&o, "--cgroup a\\nb");
}

// ---------------------------------------------------------------------------
// 6. linux.memoryPolicy.

/// Claim: bad memory policies fail create with one line naming the field,
/// leaving nothing. Attack: nodes that do not exist here, the largest mask
/// allowed, a huge number. Result: PASS.
#[test]
fn memory_policy_garbage_fails_create_in_one_line() {
    let cases = [
        (json!({"mode": "MPOL_BIND", "nodes": "1000"}), "linux.memoryPolicy"),
        (json!({"mode": "MPOL_BIND", "nodes": "0-65536"}), "linux.memoryPolicy"),
        (
            json!({"mode": "MPOL_BIND", "nodes": "99999999999999999999"}),
            "linux.memoryPolicy.nodes",
        ),
        (
            json!({"mode": "MPOL_INTERLEAVE", "nodes": ",,,"}),
            "linux.memoryPolicy.nodes",
        ),
        (json!({"mode": "MPOL_BIND", "nodes": "-"}), "linux.memoryPolicy.nodes"),
        (json!({"mode": "MPOL_BIND", "nodes": 7}), "linux.memoryPolicy"),
    ];
    for (i, (policy, field)) in cases.into_iter().enumerate() {
        let mut b = Bundle::new(&format!("mpol{i}"));
        b.config["linux"]["memoryPolicy"] = policy;
        b.save();
        b.create_fails("c", field);
    }
}

/// Bad input -> one line. Attack: a newline in linux.memoryPolicy.nodes.
/// Result: PASS.
#[test]
fn memory_policy_nodes_with_a_newline_fail_in_one_line() {
    let mut b = Bundle::new("mpol-nl");
    b.config["linux"]["memoryPolicy"] = json!({"mode": "MPOL_BIND", "nodes": "0\n1"});
    b.save();
    b.create_fails("c", "linux.memoryPolicy.nodes");
}

/// Claim: the policy applies to the init and to exec processes alike.
/// Result: PASS.
#[test]
fn memory_policy_binds_init_and_exec() {
    let mut b = Bundle::new("mpol-ok");
    b.config["linux"]["memoryPolicy"] = json!({"mode": "MPOL_BIND", "nodes": "0"});
    b.script("grep -c . /proc/self/status >/dev/null; sleep 30");
    assert_ok(&b.create("c"));
    assert_ok(&b.husk(&["start", "c"]));
    let pid = b.state("c")["pid"].as_i64().unwrap();
    let numa = std::fs::read_to_string(format!("/proc/{pid}/numa_maps")).unwrap_or_default();
    assert!(numa.contains("bind:0"), "init: {numa}");
    let o = b.husk(&["exec", "c", "sh", "-c", "grep -c bind:0 /proc/self/numa_maps"]);
    assert_ok(&o);
    assert_ne!(stdout(&o).trim(), "0");
    assert_ok(&b.husk(&["delete", "--force", "c"]));
    b.assert_gone("c");
}

// ---------------------------------------------------------------------------
// 7. husk spec on a cgroup v1 host.

#[test]
fn spec_lists_no_cgroup_namespace_on_a_cgroup_v1_host() {
    let unified = std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .any(|l| l.contains(" /sys/fs/cgroup ") && l.contains(" - cgroup2 "));
    let dir = std::env::temp_dir().join(format!("attack15-spec-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let o = run_with_timeout(Command::new(HUSK).args(["spec", "--bundle"]).arg(&dir), COMMAND_TIMEOUT);
    assert_ok(&o);
    let config: serde_json::Value = serde_json::from_slice(&std::fs::read(dir.join("config.json")).unwrap()).unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    let has_cgroupns = config["linux"]["namespaces"]
        .as_array()
        .unwrap()
        .iter()
        .any(|n| n["type"] == "cgroup");
    assert_eq!(has_cgroupns, unified);
}
