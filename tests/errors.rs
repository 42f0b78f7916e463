//! Bad input: a clear one-line error naming the field or path, a non-zero exit,
//! and nothing left on the host.

mod common;

use common::*;
use serde_json::{json, Value};
use std::process::{Command, Stdio};
use std::time::Duration;

#[test]
fn malformed_json() {
    let b = Bundle::new("badjson");
    std::fs::write(b.dir.join("config.json"), "{\"ociVersion\": \"1.0.0\", ").unwrap();
    b.create_fails("x", "config.json: malformed JSON");
}

#[test]
fn wrong_field_type_is_named() {
    let mut b = Bundle::new("badtype");
    b.config["linux"]["namespaces"][1]["type"] = json!("bogus");
    b.save();
    b.create_fails("x", "linux.namespaces[1].type");
}

/// serde's derived structs would also take their fields as an array, in
/// order: runc and crun refuse that, and a config must not run as something
/// other than it says. The same holds for `exec --process` and `update`.
#[test]
fn an_array_where_an_object_belongs_is_refused_naming_the_field() {
    let mut b = Bundle::new("arrays");
    let root = b.config["root"].clone();
    b.config["root"] = json!(["rootfs", false]);
    b.save();
    b.create_fails("x", "root: invalid type: sequence, expected a JSON object");
    b.config["root"] = root;
    b.config["linux"]["resources"] = json!({"pids": [5]});
    b.save();
    b.create_fails("x", "linux.resources.pids: invalid type: sequence");
    b.config["linux"].as_object_mut().unwrap().remove("resources");
    b.script("sleep 30");
    assert_ok(&b.create("c"));

    let mut process = b.config["process"].clone();
    process["user"] = json!([0, 0]);
    let file = b.dir.join("process.json");
    std::fs::write(&file, process.to_string()).unwrap();
    let o = b.husk(&["exec", "--process", file.to_str().unwrap(), "c"]);
    assert!(!o.status.success(), "exec took an array for process.user");
    assert_eq!(stderr(&o).lines().count(), 1, "{}", stderr(&o));
    assert!(stderr(&o).contains(": user: invalid type: sequence"), "{}", stderr(&o));

    std::fs::write(&file, r#"{"pids": [5]}"#).unwrap();
    let o = b.husk(&["update", "--resources", file.to_str().unwrap(), "c"]);
    assert!(!o.status.success(), "update took an array for pids");
    assert_eq!(stderr(&o).lines().count(), 1, "{}", stderr(&o));
    assert!(
        stderr(&o).contains("update: pids: invalid type: sequence"),
        "{}",
        stderr(&o)
    );

    assert_eq!(b.status("c"), "created");
    assert_ok(&b.husk(&["delete", "-f", "c"]));
    b.assert_gone("c");
}

/// A hostile bundle's config.json (or an exec's --process file) that never
/// ends: husk reads at most 16 MiB of it and says so in one line, rather
/// than grow until the OOM killer comes (husk 5f164bf).
#[test]
fn an_endless_json_file_is_refused_in_bounded_memory() {
    let mut b = Bundle::new("endless");
    let config = b.dir.join("config.json");
    let saved = std::fs::read(&config).unwrap();
    std::fs::remove_file(&config).unwrap();
    // A sparse regular file (a device is refused before it is read: below).
    std::fs::File::create(&config).unwrap().set_len(17 << 20).unwrap();
    b.create_fails("x", "config.json: larger than 16 MiB");
    std::fs::remove_file(&config).unwrap();
    std::fs::write(&config, saved).unwrap();
    b.script("sleep 30");
    assert_ok(&b.create("c"));
    let o = b.husk(&["exec", "--process", "/dev/zero", "c"]);
    assert!(!o.status.success());
    assert_eq!(stderr(&o).lines().count(), 1, "{}", stderr(&o));
    assert!(
        stderr(&o).contains("--process /dev/zero: larger than 16 MiB"),
        "{}",
        stderr(&o)
    );
    assert_ok(&b.husk(&["delete", "-f", "c"]));
    b.assert_gone("c");
}

/// A bundle's config.json that is a FIFO: the open waited for a writer
/// that never came, and a foreground `run`, which holds SIGTERM and SIGINT
/// for its container from before it reads the bundle, could be ended only
/// by SIGKILL (the outside review of 1267b82, F1). Only a regular file is
/// opened now; a device is not even opened (/dev/watchdog arms on open).
#[test]
fn a_config_json_that_is_not_a_regular_file_is_refused_unopened() {
    let b = Bundle::new("fifo-config");
    let config = b.dir.join("config.json");
    std::fs::remove_file(&config).unwrap();
    nix::unistd::mkfifo(&config, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    let started = std::time::Instant::now();
    let o = b.run("x");
    assert!(!o.status.success(), "run of a FIFO config.json succeeded");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(10),
        "run waited {:?} on a FIFO",
        started.elapsed()
    );
    assert_eq!(stderr(&o).lines().count(), 1, "{}", stderr(&o));
    assert!(
        stderr(&o).contains("config.json: not a regular file (a FIFO)"),
        "{}",
        stderr(&o)
    );
    b.assert_gone("x");
    std::fs::remove_file(&config).unwrap();
    std::os::unix::fs::symlink("/dev/zero", &config).unwrap();
    b.create_fails("x", "config.json: not a regular file (a device)");
    // Regular files of the kernel's interfaces, which may block a read as a
    // FIFO does (the outside review of 53668c3, F3) or act when read.
    for (file, fs) in [("/proc/kmsg", "procfs"), ("/sys/kernel/uevent_seqnum", "sysfs")] {
        std::fs::remove_file(&config).unwrap();
        std::os::unix::fs::symlink(file, &config).unwrap();
        let o = b.run("x");
        assert!(!o.status.success(), "run of {file} as config.json succeeded");
        assert_eq!(stderr(&o).lines().count(), 1, "{}", stderr(&o));
        let want = format!("config.json: a file of the kernel's {fs}, not a config");
        assert!(stderr(&o).contains(&want), "{}", stderr(&o));
        b.assert_gone("x");
    }
}

#[test]
fn oci_version_missing_or_unsupported() {
    let mut b = Bundle::new("version");
    b.config.as_object_mut().unwrap().remove("ociVersion");
    b.save();
    b.create_fails("x", "ociVersion is missing");
    b.config["ociVersion"] = json!("2.0.0");
    b.save();
    b.create_fails("x", "ociVersion 2.0.0 is not supported");
}

#[test]
fn root_path_missing_or_not_there() {
    let mut b = Bundle::new("rootpath");
    b.config.as_object_mut().unwrap().remove("root");
    b.save();
    b.create_fails("x", "root.path is missing");
    b.config["root"] = json!({"path": "nowhere"});
    b.save();
    b.create_fails("x", "root.path");
    assert!(stderr(&b.create("x")).contains("nowhere"));
    b.assert_gone("x");
}

#[test]
fn missing_program_fails_create() {
    let mut b = Bundle::new("noprog");
    b.config["process"]["args"] = json!(["no-such-program"]);
    b.save();
    b.create_fails("x", "exec: \"no-such-program\": executable file not found in $PATH");
    b.config["process"]["args"] = json!(["/etc/passwd"]);
    b.save();
    b.create_fails("x", "exec: \"/etc/passwd\": permission denied");
    b.config["process"]["args"] = json!([]);
    b.save();
    b.create_fails("x", "process.args must not be empty");
}

#[test]
fn failures_inside_the_init_are_reported_and_undone() {
    let mut b = Bundle::new("initfail");
    b.config["mounts"]
        .as_array_mut()
        .unwrap()
        .push(json!({"destination": "/data", "type": "bind", "source": "/nonexistent/dir", "options": ["bind"]}));
    b.save();
    b.create_fails(
        "x",
        "mounts[7] /data: source /nonexistent/dir: No such file or directory",
    );
}

/// An init killed once its record is committed, before create lets it go:
/// create fails saying how the init ended, not with the pipe's error
/// (review 69: "signal container init: Broken pipe"), and leaves nothing.
/// strace holds create in its last unlink (creating.json) meanwhile.
#[test]
fn an_init_killed_before_it_is_let_go_is_named_so() {
    let b = Bundle::new("killed-late");
    let strace = ["-o", "/dev/null", "-e", "inject=unlink:delay_exit=1000000"];
    let mut create = b.husk_under_strace(&strace, &["create", "--bundle", b.dir.to_str().unwrap(), "x"]);
    create.stdout(Stdio::null()).stderr(Stdio::piped());
    let mut create = create.spawn().unwrap();
    let record = b.root.join("x/state.json");
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let pid = loop {
        let state: Option<Value> = std::fs::read(&record)
            .ok()
            .and_then(|t| serde_json::from_slice(&t).ok());
        if let Some(pid) = state.and_then(|s| s["pid"].as_i64()).filter(|&p| p > 0) {
            break pid;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "create never committed its record"
        );
        std::thread::sleep(Duration::from_millis(5));
    };
    assert!(Command::new("kill")
        .args(["-9", &pid.to_string()])
        .status()
        .unwrap()
        .success());
    let status = wait_within(&mut create, COMMAND_TIMEOUT, "husk create");
    let mut err = String::new();
    std::io::Read::read_to_string(&mut create.stderr.take().unwrap(), &mut err).unwrap();
    assert!(!status.success(), "create succeeded with its init killed");
    assert_eq!(err.lines().count(), 1, "one line: {err}");
    assert!(
        err.contains("container init exited during setup (killed by signal 9)"),
        "{err}"
    );
    b.assert_gone("x");
}

/// A mount over the container's root would stand in for root.path: a cgroup
/// tmpfs there would have its hierarchies made in the rootfs (the bundle)
/// beneath it; a /dev tmpfs at ".." (relative, so "/..") had husk 0.1.0
/// (4491cad) mount it over the root and make /dev's nodes in the bundle's
/// rootfs, even with root.readonly. runc refuses ".." too.
#[test]
fn a_mount_over_the_root_is_refused() {
    for (dest, typ, source) in [
        ("/", "cgroup", "cgroup"),
        ("..", "tmpfs", "tmpfs"),
        ("/x/../.", "tmpfs", "tmpfs"),
    ] {
        let mut b = Bundle::new("mntroot");
        b.config["mounts"]
            .as_array_mut()
            .unwrap()
            .push(json!({"destination": dest, "type": typ, "source": source}));
        b.save();
        let n = b.config["mounts"].as_array().unwrap().len() - 1;
        b.create_fails(
            "x",
            &format!("mounts[{n}].destination {dest}: the container's root cannot be a mount destination"),
        );
        assert!(!b.rootfs().join("pids").exists(), "nothing made in the rootfs");
        assert!(!b.rootfs().join("dev/null").exists(), "no /dev made in the rootfs");
    }
    // Through the image's symlinks, which only the mount itself sees.
    for (link, to, mount) in [
        (
            "lnk",
            "/",
            json!({"destination": "/lnk", "type": "tmpfs", "source": "tmpfs"}),
        ),
        (
            "up",
            "..",
            json!({"destination": "/up", "type": "bind", "source": "/tmp", "options": ["rbind"]}),
        ),
    ] {
        let mut b = Bundle::new("mntroot-link");
        std::os::unix::fs::symlink(to, b.rootfs().join(link)).unwrap();
        b.config["mounts"].as_array_mut().unwrap().insert(1, mount);
        b.save();
        b.create_fails(
            "x",
            &format!("mounts[1] /{link}: the destination resolves to the container's root, which cannot be a mount destination"),
        );
    }
}

#[test]
fn a_protected_path_the_image_leads_to_the_root_is_refused() {
    // A mount stacked on the root is left behind by the switch of root: the
    // path would be neither masked nor read-only (review 57 I1).
    for (field, link, to) in [("maskedPaths", "lnk", "/"), ("readonlyPaths", "up", "..")] {
        let mut b = Bundle::new("protect-root");
        std::os::unix::fs::symlink(to, b.rootfs().join(link)).unwrap();
        b.config["linux"][field] = json!([format!("/{link}")]);
        b.save();
        b.create_fails(
            "x",
            &format!(
                "linux.{field} /{link}: the path resolves to the container's root, which cannot be a mount destination"
            ),
        );
    }
}

/// In a user namespace Linux mounts procfs only where one is visible: a
/// container without a /proc mount leaves the init no procfs to wait for
/// `start` through, and the error says so (review 69).
#[test]
fn a_user_namespace_without_proc_is_refused_saying_why() {
    let mut b = Bundle::new("userns-noproc");
    b.in_new_user_namespace(200000);
    let mounts = b.config["mounts"].as_array_mut().unwrap();
    mounts.retain(|m| m["destination"] != "/proc");
    b.save();
    b.create_fails("x", "in a user namespace Linux mounts procfs only where one is visible");
    // The cause named, the same container with its /proc runs.
    b.config["mounts"]
        .as_array_mut()
        .unwrap()
        .push(json!({"destination": "/proc", "type": "proc", "source": "proc"}));
    let out = b.output_of("head -1 /proc/self/uid_map");
    assert!(out.contains("200000"), "{out}");
}

#[test]
fn hostname_needs_a_uts_namespace() {
    let mut b = Bundle::new("nouts");
    b.config["linux"]["namespaces"]
        .as_array_mut()
        .unwrap()
        .retain(|n| n["type"] != "uts");
    b.save();
    b.create_fails("x", "hostname: cannot set a hostname without a private UTS namespace");
}

#[test]
fn invalid_ids() {
    let b = Bundle::new("ids");
    for id in ["../escape", "a/b", "..", "with space"] {
        let o = b.create(id);
        assert!(!o.status.success(), "{id}");
        assert!(stderr(&o).contains("container id"), "{id}: {}", stderr(&o));
        assert_eq!(stderr(&o).lines().count(), 1);
    }
    assert!(!b.dir.join("escape").exists());
    assert!(!b.root.exists() || std::fs::read_dir(&b.root).unwrap().count() == 0);
}

#[test]
fn unknown_id_for_every_command() {
    let b = Bundle::new("unknown");
    for cmd in [
        &["state", "ghost"][..],
        &["start", "ghost"],
        &["kill", "ghost", "KILL"],
        &["delete", "ghost"],
    ] {
        let o = b.husk(cmd);
        assert!(!o.status.success(), "{cmd:?}");
        // "error" on stderr, as runc's level=error: contest looks for the word.
        assert_eq!(
            stderr(&o).trim_end(),
            "husk: error: container does not exist: \"ghost\"",
            "{cmd:?}"
        );
    }
    // As runc: delete --force of a container that is not there succeeds
    // (podman relies on it after a checkpoint removed the container).
    let o = b.husk(&["delete", "-f", "ghost"]);
    assert!(o.status.success(), "{}", stderr(&o));
}

#[test]
fn duplicate_id_leaves_the_first_container_alone() {
    let mut b = Bundle::new("dupid");
    b.script("sleep 30");
    assert_ok(&b.create("one"));
    let pid = b.state("one")["pid"].clone();
    let o = b.create("one");
    assert!(
        stderr(&o).contains("container \"one\" already exists"),
        "{}",
        stderr(&o)
    );
    assert_eq!(b.state("one")["pid"], pid);
    assert_eq!(b.status("one"), "created");
    assert_ok(&b.husk(&["delete", "one"]));
    b.assert_gone("one");
}

#[test]
fn bad_flags_get_a_one_line_error() {
    let b = Bundle::new("flags");
    let o = b.husk(&["create", "--no-such-flag", "x"]);
    assert!(!o.status.success());
    assert_eq!(stderr(&o).lines().count(), 1, "{}", stderr(&o));
    assert!(stderr(&o).contains("--no-such-flag"), "{}", stderr(&o));
    let o = b.husk(&["--rootless", "maybe", "list"]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("--rootless"), "{}", stderr(&o));
}

#[test]
fn json_log_of_a_failed_create_is_one_logrus_line() {
    let mut b = Bundle::new("jsonlog");
    b.config["process"]["args"] = json!(["missing-program"]);
    b.save();
    let log = b.dir.join("log.json");
    let o = b.husk(&[
        "--log",
        "/dev/null",
        "--log-format",
        "json",
        "--log",
        log.to_str().unwrap(),
        "create",
        "--bundle",
        b.dir.to_str().unwrap(),
        "x",
    ]);
    assert!(!o.status.success());
    let text = std::fs::read_to_string(&log).unwrap();
    assert_eq!(text.lines().count(), 1, "{text}");
    let line: Value = serde_json::from_str(&text).expect("podman parses the whole file as one object");
    assert_eq!(line["level"], "error");
    assert!(
        line["msg"].as_str().unwrap().contains("executable file not found"),
        "{line}"
    );
    let time = line["time"].as_str().unwrap();
    assert!(time.len() == 20 && time.ends_with('Z'), "{time}");
    b.assert_gone("x");
}

#[test]
fn json_log_format_without_a_log_file_makes_stderr_json() {
    let b = Bundle::new("jsonstderr");
    let o = b.husk(&["--log-format", "json", "state", "no-such-container"]);
    assert!(!o.status.success());
    let text = stderr(&o);
    assert_eq!(text.lines().count(), 1, "{text}");
    let line: Value = serde_json::from_str(&text).expect("runc's stderr is its JSON log here");
    assert_eq!(line["level"], "error");
    assert!(line["msg"].as_str().unwrap().contains("does not exist"), "{line}");
    // Text (the default) stays husk's own line for people.
    let o = b.husk(&["--log-format", "text", "state", "no-such-container"]);
    assert!(stderr(&o).starts_with("husk: error: "), "{}", stderr(&o));
}

#[test]
fn hook_paths_and_timeouts_are_checked() {
    let mut b = Bundle::new("badhooks");
    b.config["hooks"] = json!({"prestart": [{"path": "/bin/true"}, {"path": "true"}]});
    b.save();
    b.create_fails("x", r#"hooks.prestart[1].path "true": must be absolute"#);
    b.config["hooks"] = json!({"poststop": [{"path": ""}]});
    b.save();
    b.create_fails("x", r#"hooks.poststop[0].path "": must be absolute"#);
    for timeout in [-5, 0] {
        b.config["hooks"] = json!({"createRuntime": [{"path": "/bin/true", "timeout": timeout}]});
        b.save();
        b.create_fails(
            "x",
            &format!("hooks.createRuntime[0].timeout {timeout}: must be a positive"),
        );
    }
}

#[test]
fn masked_and_readonly_paths_must_be_absolute() {
    let mut b = Bundle::new("relmasked");
    b.config["linux"]["maskedPaths"] = json!(["/proc/kcore", "etc/passwd"]);
    b.save();
    b.create_fails("x", r#"linux.maskedPaths[1] "etc/passwd": must be absolute"#);
    b.config["linux"]["maskedPaths"] = json!([]);
    b.config["linux"]["readonlyPaths"] = json!(["proc/sys"]);
    b.save();
    b.create_fails("x", r#"linux.readonlyPaths[0] "proc/sys": must be absolute"#);
}

#[test]
fn intel_rdt_is_refused_rather_than_ignored() {
    let mut b = Bundle::new("rdt");
    b.config["linux"]["intelRdt"] = json!({"closID": "husk-test", "l3CacheSchema": "L3:0=f"});
    b.save();
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let why = match mountinfo.contains(" - resctrl ") {
        true => "linux.intelRdt: not supported by husk",
        false => "linux.intelRdt: this host has no resctrl filesystem",
    };
    b.create_fails("x", why);
}

/// An init killed by the OOM killer during setup says nothing itself: husk
/// 0.1.0 (4491cad) said only "killed by signal 9". The memory limit is named.
#[test]
fn a_memory_limit_too_low_to_start_is_named() {
    let mut b = Bundle::new("memtoolow");
    b.config["linux"]["resources"] = json!({"memory": {"limit": 4096}});
    b.save();
    b.create_fails("x", "linux.resources.memory.limit 4096 may be too low");
}

/// A seccomp profile that refuses everything (`syscalls: []`, an ERRNO
/// default) refuses the init what it does once the filter is in (its Ready,
/// the write of that error, its exit_group), and a fault ends it: husk 0.1.0
/// (ee9f267) said nothing, `run` exited 139 as if the program had crashed and
/// `start` said it started. The filter goes in before Ready (review 54 F1),
/// with or without no_new_privs: `create` fails, saying so.
#[test]
fn an_init_ended_by_its_seccomp_profile_says_so() {
    let mut b = Bundle::new("seccompall");
    b.config["process"]["args"] = json!(["true"]);
    b.config["linux"]["seccomp"] = json!({"defaultAction": "SCMP_ACT_ERRNO", "syscalls": []});
    for no_new_privileges in [true, false] {
        b.config["process"]["noNewPrivileges"] = json!(no_new_privileges);
        b.save();
        let want = "container init exited during setup (killed by signal 11): does linux.seccomp allow \
                    what the init does under it (read, write, openat, execve, exit_group)?";
        let o = b.run("x");
        assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
        assert_eq!(stderr(&o).trim(), format!("husk: error: {want}"));
        b.assert_gone("x");
        b.create_fails("y", want);
    }
}

/// An init that cannot exit (its seccomp profile refuses exit and
/// exit_group) ends by a fault, and signals no other process: with musl,
/// its abort() signalled the thread id cached at husk's start, that of the
/// `create` that cloned it: in the host's pid namespace, whatever process
/// has that pid by the time `start` makes the exec fail (review 65 M1).
#[test]
fn an_init_that_cannot_exit_signals_no_other_process() {
    let mut b = Bundle::new("seccompexit");
    b.config["process"]["args"] = json!(["true"]);
    let namespaces = b.config["linux"]["namespaces"].as_array_mut().unwrap();
    namespaces.retain(|n| n["type"] != "pid");
    b.config["linux"]["seccomp"] = json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["execve", "execveat", "exit", "exit_group"], "action": "SCMP_ACT_ERRNO"}]
    });
    b.save();
    let mut create = b.husk_command(&["create", "--bundle", b.dir.to_str().unwrap(), "x"]);
    create.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null());
    let mut create = create.spawn().unwrap();
    let create_pid = create.id();
    assert!(wait_within(&mut create, COMMAND_TIMEOUT, "husk create").success());
    let mut bystander = process_with_pid(create_pid);
    let o = b.husk(&["start", "x"]);
    assert!(!o.status.success(), "the exec was refused: {}", stderr(&o));
    std::thread::sleep(Duration::from_millis(300));
    let alive = bystander.try_wait().unwrap().is_none();
    let _ = bystander.kill();
    let ended = bystander.wait().unwrap();
    assert!(
        alive,
        "the process that took create's pid {create_pid} was ended: {ended:?}"
    );
    assert_ok(&b.husk(&["delete", "-f", "x"]));
    b.assert_gone("x");
}

/// A `sleep` with pid `pid` (free now), through ns_last_pid; tried again
/// while processes of other tests take it first.
fn process_with_pid(pid: u32) -> std::process::Child {
    for _ in 0..200 {
        std::fs::write("/proc/sys/kernel/ns_last_pid", (pid - 1).to_string()).unwrap();
        let mut child = Command::new("sleep").arg("30").spawn().unwrap();
        if child.id() == pid {
            return child;
        }
        let _ = child.kill();
        let _ = child.wait();
    }
    panic!("no process could be given pid {pid}");
}

/// A console socket whose owner stops accepting (a hung shim, or a socket
/// another user planted at the path) fails the create, naming the flag,
/// within husk's bound; husk 3a866aa waited for ever (runc fails at once).
#[test]
fn a_console_socket_that_never_accepts_fails_the_create() {
    use nix::sys::socket::{bind, connect, listen, socket, AddressFamily, Backlog, SockFlag, SockType, UnixAddr};
    let mut b = Bundle::new("console-stuck");
    b.config["process"]["terminal"] = json!(true);
    b.script("sleep 30");
    let path = b.dir.join("stuck.sock");
    let addr = UnixAddr::new(&path).unwrap();
    let listener = socket(AddressFamily::Unix, SockType::Stream, SockFlag::SOCK_CLOEXEC, None).unwrap();
    bind(std::os::fd::AsRawFd::as_raw_fd(&listener), &addr).unwrap();
    listen(&listener, Backlog::new(0).unwrap()).unwrap();
    // One connection never accepted fills a backlog of 0.
    let queued = socket(AddressFamily::Unix, SockType::Stream, SockFlag::SOCK_CLOEXEC, None).unwrap();
    connect(std::os::fd::AsRawFd::as_raw_fd(&queued), &addr).unwrap();
    let o = b.husk(&[
        "create",
        "--bundle",
        b.dir.to_str().unwrap(),
        "--console-socket",
        path.to_str().unwrap(),
        "c",
    ]);
    assert!(!o.status.success(), "create went on without its console socket");
    assert_eq!(stderr(&o).lines().count(), 1, "{}", stderr(&o));
    assert!(stderr(&o).contains("--console-socket"), "{}", stderr(&o));
    b.assert_gone("c");
    drop((queued, listener));
}

/// A fifo at the `--log` path that no one reads fails the command within
/// husk's bound instead of holding it (husk 3a866aa and runc waited for
/// ever); a reader that comes a moment later gets the log.
#[test]
fn a_log_path_that_is_an_unread_fifo_fails_within_a_bound() {
    let b = Bundle::new("log-fifo");
    let fifo = b.dir.join("log.fifo");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    let o = b.husk(&["--log", fifo.to_str().unwrap(), "delete", "nosuch"]);
    assert!(!o.status.success());
    assert_eq!(stderr(&o).lines().count(), 1, "{}", stderr(&o));
    assert!(
        stderr(&o).contains(&format!("open log file {}", fifo.display())),
        "{}",
        stderr(&o)
    );
    let late_reader = {
        let fifo = fifo.clone();
        std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_millis(300));
            std::fs::read_to_string(&fifo).unwrap()
        })
    };
    let o = b.husk(&["--log", fifo.to_str().unwrap(), "delete", "nosuch"]);
    assert!(!o.status.success());
    let logged = late_reader.join().unwrap();
    assert!(logged.contains("container does not exist"), "{logged:?}");
}
