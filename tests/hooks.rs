//! Lifecycle hooks (order, state on stdin, namespaces, timeouts, failures) and
//! NOTIFY_SOCKET passthrough.

mod common;

use common::*;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};

const KINDS: [&str; 6] = [
    "prestart",
    "createRuntime",
    "createContainer",
    "startContainer",
    "poststart",
    "poststop",
];

/// A hook that records its stdin, argv, env and mount/net namespaces under $OUT.
fn recording_hook(kind: &str, out: &Path) -> Value {
    let script = format!(
        "cat > $OUT/{kind}.stdin; echo \"$0 $1\" > $OUT/{kind}.argv; echo \"$HOOK_VAR\" > $OUT/{kind}.env; \
         readlink /proc/self/ns/mnt > $OUT/{kind}.mnt; echo {kind} >> $OUT/order"
    );
    // With sh -c, the arguments after the script are $0 and $1.
    json!({"path": "/bin/sh", "args": ["sh", "-c", script, "zero", "one"], "env": [format!("OUT={}", out.display()), format!("HOOK_VAR=var-{kind}")]})
}

fn read(dir: &Path, name: &str) -> String {
    std::fs::read_to_string(dir.join(name)).unwrap_or_else(|_| panic!("{name} was not written"))
}

/// A bundle whose host directory `hookout` is bound at /hookout in the container.
fn bundle_with_outdir(name: &str) -> (Bundle, PathBuf) {
    let mut b = Bundle::new(name);
    let out = b.dir.join("hookout");
    std::fs::create_dir_all(&out).unwrap();
    b.config["mounts"]
        .as_array_mut()
        .unwrap()
        .push(json!({"destination": "/hookout", "type": "bind", "source": out, "options": ["bind"]}));
    (b, out)
}

#[test]
fn all_six_hooks_run_in_order_with_the_state_and_their_namespaces() {
    let (mut b, out) = bundle_with_outdir("hooks-order");
    let mut hooks = serde_json::Map::new();
    for kind in KINDS {
        // startContainer runs in the container: its path and $OUT are the container's.
        let dir = if kind == "startContainer" {
            PathBuf::from("/hookout")
        } else {
            out.clone()
        };
        hooks.insert(kind.to_string(), json!([recording_hook(kind, &dir)]));
    }
    b.config["hooks"] = Value::Object(hooks);
    b.script("echo ran > /hookout/program");
    assert_ok(&b.create("h"));
    let pid = b.state("h")["pid"].as_i64().unwrap();
    assert_eq!(
        read(&out, "order").lines().collect::<Vec<_>>(),
        ["prestart", "createRuntime", "createContainer"]
    );
    assert_ok(&b.husk(&["start", "h"]));
    b.delete_once_stopped("h");

    assert_eq!(read(&out, "order").lines().collect::<Vec<_>>(), KINDS);
    let host_mnt = std::fs::read_link("/proc/self/ns/mnt")
        .unwrap()
        .to_string_lossy()
        .into_owned();
    let statuses = ["created", "created", "created", "created", "running", "stopped"];
    for (kind, status) in KINDS.iter().zip(statuses) {
        let state: Value = serde_json::from_str(&read(&out, &format!("{kind}.stdin"))).unwrap();
        assert_eq!(state["id"], "h", "{kind}");
        assert_eq!(state["status"], status, "{kind}");
        assert_eq!(state["bundle"], b.dir.to_str().unwrap(), "{kind}");
        if *kind != "poststop" {
            assert_eq!(state["pid"], pid, "{kind}");
        }
        assert_eq!(read(&out, &format!("{kind}.argv")).trim(), "zero one", "{kind}");
        assert_eq!(
            read(&out, &format!("{kind}.env")).trim(),
            format!("var-{kind}"),
            "{kind}"
        );
        let mnt = read(&out, &format!("{kind}.mnt"));
        let in_container = matches!(*kind, "createContainer" | "startContainer");
        assert_eq!(
            mnt.trim() != host_mnt,
            in_container,
            "{kind} ran in the wrong mount namespace"
        );
    }
    assert_eq!(read(&out, "program"), "ran\n");
}

fn hook(kind: &str, script: &str, timeout: Option<u64>) -> Value {
    let mut h = json!({"path": "/bin/sh", "args": ["sh", "-c", script]});
    if let Some(t) = timeout {
        h["timeout"] = json!(t);
    }
    json!({ kind: [h] })
}

#[test]
fn a_timed_out_hook_fails_create_and_leaves_nothing() {
    let mut b = Bundle::new("hooks-timeout");
    b.config["hooks"] = hook("createRuntime", "sleep 20", Some(1));
    b.save();
    let o = b.create("t");
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("createRuntime hook /bin/sh: timed out after 1s"),
        "{}",
        stderr(&o)
    );
    b.assert_gone("t");
}

#[test]
fn failing_create_time_hooks_fail_create_with_path_and_status() {
    for kind in ["prestart", "createRuntime", "createContainer"] {
        let mut b = Bundle::new(&format!("hooks-fail-{kind}"));
        b.config["hooks"] = hook(kind, "echo broken >&2; exit 7", None);
        b.save();
        let o = b.create("f");
        assert!(!o.status.success(), "{kind}");
        let err = stderr(&o);
        assert!(
            err.contains(&format!("{kind} hook /bin/sh: exit status 7: broken")),
            "{kind}: {err}"
        );
        assert_eq!(err.lines().count(), 1, "{err}");
        b.assert_gone("f");
    }
}

#[test]
fn a_failing_start_container_hook_fails_start() {
    let mut b = Bundle::new("hooks-fail-start");
    b.config["hooks"] = hook("startContainer", "exit 9", None);
    b.script("sleep 30");
    assert_ok(&b.create("s"));
    let o = b.husk(&["start", "s"]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("startContainer hook /bin/sh: exit status 9"),
        "{}",
        stderr(&o)
    );
    b.delete_once_stopped("s");
}

/// runtime-spec before 1.3 (runtime-tools' poststart_fail checks it).
#[test]
fn failing_poststart_and_poststop_hooks_of_a_1_2_config_warn_and_the_rest_still_run() {
    let (mut b, out) = bundle_with_outdir("hooks-warn");
    b.config["ociVersion"] = json!("1.2.0");
    let second =
        |kind: &str| json!({"path": "/bin/sh", "args": ["sh", "-c", format!("echo {kind} >> {}/ran", out.display())]});
    let failing = json!({"path": "/bin/sh", "args": ["sh", "-c", "exit 3"]});
    b.config["hooks"] = json!({"poststart": [failing, second("poststart")], "poststop": [failing, second("poststop")]});
    b.script("sleep 30");
    assert_ok(&b.create("w"));
    let o = b.husk(&["start", "w"]);
    assert_ok(&o);
    assert!(
        stderr(&o).contains("warning: poststart hook /bin/sh: exit status 3"),
        "{}",
        stderr(&o)
    );
    assert_eq!(b.status("w"), "running");
    let o = b.husk(&["delete", "-f", "w"]);
    assert_ok(&o);
    assert!(
        stderr(&o).contains("warning: poststop hook /bin/sh: exit status 3"),
        "{}",
        stderr(&o)
    );
    assert_eq!(read(&out, "ran"), "poststart\npoststop\n");
    b.assert_gone("w");
}

/// runtime-spec 1.3: a failed poststart hook fails `start` (and `run`), the
/// hooks after it do not run, and the container is stopped; `run` also
/// removes it.
#[test]
fn a_failed_poststart_hook_of_a_1_3_config_fails_start_and_stops_the_container() {
    let (mut b, out) = bundle_with_outdir("hooks-poststart-13");
    assert_eq!(b.config["ociVersion"], "1.3.0", "husk spec writes 1.3.0");
    let record = |what: &str| {
        let line = format!("echo {what} >> {}/ran; [ {what} != failing ]", out.display());
        json!({"path": "/bin/sh", "args": ["sh", "-c", line]})
    };
    b.config["hooks"] = json!({"poststart": [record("first"), record("failing"), record("third")]});
    b.script("sleep 30");
    assert_ok(&b.create("p"));
    let o = b.husk(&["start", "p"]);
    assert!(!o.status.success(), "start succeeded");
    assert!(
        stderr(&o).contains("poststart hook /bin/sh: exit status 1"),
        "{}",
        stderr(&o)
    );
    assert_eq!(
        read(&out, "ran"),
        "first\nfailing\n",
        "the hook after the failed one did not run"
    );
    assert_eq!(b.status("p"), "stopped", "the container was stopped");
    b.delete_once_stopped("p");

    std::fs::remove_file(out.join("ran")).unwrap();
    // Neither leaves a pid file naming the dead init (review 53 F1).
    let pid_file = out.join("run.pid");
    let pid_file = pid_file.to_str().unwrap();
    let o = b.husk(&["run", "--pid-file", pid_file, "--bundle", b.dir.to_str().unwrap(), "r"]);
    assert!(!o.status.success(), "run succeeded");
    assert!(!Path::new(pid_file).exists(), "run left its pid file");
    assert!(
        stderr(&o).contains("poststart hook /bin/sh: exit status 1"),
        "{}",
        stderr(&o)
    );
    b.assert_gone("r");
    let o = b.husk(&[
        "run",
        "-d",
        "--pid-file",
        pid_file,
        "--bundle",
        b.dir.to_str().unwrap(),
        "d",
    ]);
    assert!(!o.status.success(), "run -d succeeded");
    assert!(!Path::new(pid_file).exists(), "run -d left its pid file");
    b.assert_gone("d");
    assert_eq!(read(&out, "ran"), "first\nfailing\n".repeat(2));
}

/// A static helper that sends its arguments, one datagram each, to $NOTIFY_SOCKET.
fn build_notify_helper(rootfs: &Path) {
    let src = rootfs.join("../notify.c");
    std::fs::write(
        &src,
        r#"#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
int main(int argc, char **argv) {
    const char *path = getenv("NOTIFY_SOCKET");
    if (!path) return 2;
    int fd = socket(AF_UNIX, SOCK_DGRAM, 0);
    struct sockaddr_un a = {0};
    a.sun_family = AF_UNIX;
    strncpy(a.sun_path, path, sizeof a.sun_path - 1);
    for (int i = 1; i < argc; i++)
        if (sendto(fd, argv[i], strlen(argv[i]), 0, (struct sockaddr *)&a, sizeof a) < 0) return 1;
    return 0;
}
"#,
    )
    .unwrap();
    let o = std::process::Command::new("gcc")
        .args(["-static", "-O2", "-o"])
        .arg(rootfs.join("bin/notify"))
        .arg(&src)
        .output()
        .unwrap();
    assert!(o.status.success(), "gcc: {}", String::from_utf8_lossy(&o.stderr));
}

fn receive(sock: &std::os::unix::net::UnixDatagram) -> String {
    let mut buf = [0u8; 1024];
    let n = sock.recv(&mut buf).expect("a notification within the timeout");
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

#[test]
fn notify_socket_relays_ready_with_the_host_pid() {
    let mut b = Bundle::new("notify");
    build_notify_helper(&b.rootfs());
    b.script(
        "(echo $NOTIFY_SOCKET; ls -l $NOTIFY_SOCKET | cut -c1) > /dev/shm/seen; \
         notify 'STATUS=starting' 'READY=1\nMAINPID=1'; sleep 30",
    );
    let host = b.dir.join("host-notify.sock");
    let sock = std::os::unix::net::UnixDatagram::bind(&host).unwrap();
    sock.set_read_timeout(Some(std::time::Duration::from_secs(20))).unwrap();

    // create, then start (which relays, with no husk process in between).
    let mut create = std::process::Command::new(HUSK);
    create
        .arg("--root")
        .arg(&b.root)
        .args(["create", "--bundle", b.dir.to_str().unwrap(), "n"])
        .env("NOTIFY_SOCKET", &host);
    b.tag(&mut create);
    assert_ok(&run_with_timeout(&mut create, COMMAND_TIMEOUT));
    let pid = b.state("n")["pid"].as_i64().unwrap();
    assert_ok(&b.husk(&["start", "n"]));
    assert_eq!(receive(&sock), "STATUS=starting\n");
    assert_eq!(receive(&sock), format!("READY=1\nMAINPID={pid}\n"));
    // What the container's program saw: the socket at the path its env names.
    let seen = stdout(&b.husk(&["exec", "n", "cat", "/dev/shm/seen"]));
    assert_eq!(seen, format!("{}\ns\n", host.display()));
    assert_ok(&b.husk(&["delete", "-f", "n"]));
    b.assert_gone("n");
}

/// The notify directory is bound read-only, nosuid, nodev and noexec (as
/// runc binds it): through a writable one the container wrote into root's
/// state dir, could fill it, or nest directories `delete` could not remove
/// (husk 5f164bf). Sending still works.
#[test]
fn the_notify_directory_is_read_only_in_the_container() {
    let mut b = Bundle::new("notify-ro");
    build_notify_helper(&b.rootfs());
    b.script("sleep 0.5; notify 'READY=1'; sleep 30");
    let host = b.dir.join("host-notify.sock");
    let sock = std::os::unix::net::UnixDatagram::bind(&host).unwrap();
    sock.set_read_timeout(Some(std::time::Duration::from_secs(20))).unwrap();
    let mut create = b.husk_command(&["create", "--bundle", b.dir.to_str().unwrap(), "n"]);
    create.env("NOTIFY_SOCKET", &host);
    assert_ok(&run_with_timeout(&mut create, COMMAND_TIMEOUT));

    let dir = b.dir.to_str().unwrap();
    let attempt = format!("mkdir {dir}/d; echo x > {dir}/f; grep ' {dir} ' /proc/self/mountinfo");
    let o = b.husk(&["exec", "n", "sh", "-c", &attempt]);
    assert!(stderr(&o).contains("Read-only file system"), "{}", stderr(&o));
    let options = stdout(&o);
    let options = options.split_whitespace().nth(5).unwrap_or_default().to_string();
    for option in ["ro", "nosuid", "nodev", "noexec"] {
        assert!(options.split(',').any(|o| o == option), "{option} missing: {options}");
    }
    let notify_dir = b.root.join("n").join("notify");
    assert_eq!(
        std::fs::read_dir(&notify_dir).unwrap().count(),
        0,
        "the container wrote there"
    );

    assert_ok(&b.husk(&["start", "n"]));
    let pid = b.state("n")["pid"].as_i64().unwrap();
    assert_eq!(receive(&sock), format!("READY=1\nMAINPID={pid}\n"));
    assert_ok(&b.husk(&["delete", "-f", "n"]));
    b.assert_gone("n");
}

/// An abstract host socket (`@name`) has no path to bind in the container:
/// the container gets runc's /run/notify/notify.sock, and the relay sends
/// to the abstract socket (husk 5f164bf refused the create).
#[test]
fn notify_socket_relays_to_an_abstract_host_socket() {
    use std::os::linux::net::SocketAddrExt;
    let mut b = Bundle::new("notify-abstract");
    build_notify_helper(&b.rootfs());
    b.script("echo $NOTIFY_SOCKET > /dev/shm/seen; notify 'READY=1'; sleep 30");
    let name = format!("husk-test-notify-{}", std::process::id());
    let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
    let sock = std::os::unix::net::UnixDatagram::bind_addr(&addr).unwrap();
    sock.set_read_timeout(Some(std::time::Duration::from_secs(20))).unwrap();
    let mut run = b.husk_command(&["run", "-d", "--bundle", b.dir.to_str().unwrap(), "n"]);
    run.env("NOTIFY_SOCKET", format!("@{name}"));
    assert_ok(&run_with_timeout(&mut run, COMMAND_TIMEOUT));
    let pid = b.state("n")["pid"].as_i64().unwrap();
    assert_eq!(receive(&sock), format!("READY=1\nMAINPID={pid}\n"));
    let seen = stdout(&b.husk(&["exec", "n", "cat", "/dev/shm/seen"]));
    assert_eq!(seen, "/run/notify/notify.sock\n");
    assert_ok(&b.husk(&["delete", "-f", "n"]));
    b.assert_gone("n");
}

/// In a user namespace the init could not pass through the state directory
/// (the owner's alone) to bind the notify directory inside: husk hands it
/// over, and the relay works as without one.
#[test]
fn notify_socket_relays_ready_from_a_user_namespace() {
    let mut b = Bundle::new("notify-userns");
    build_notify_helper(&b.rootfs());
    b.with_user_namespace(200000, 200000);
    b.script("notify 'READY=1'; sleep 30");
    // Where the socket's directory goes: the container's root (host uid
    // 200000) may not make it in a rootfs that host root owns.
    std::fs::create_dir_all(b.rootfs().join(b.dir.strip_prefix("/").unwrap())).unwrap();
    let host = b.dir.join("host-notify.sock");
    let sock = std::os::unix::net::UnixDatagram::bind(&host).unwrap();
    sock.set_read_timeout(Some(std::time::Duration::from_secs(20))).unwrap();
    let mut run = b.husk_command(&["run", "-d", "--bundle", b.dir.to_str().unwrap(), "n"]);
    run.env("NOTIFY_SOCKET", &host);
    assert_ok(&run_with_timeout(&mut run, COMMAND_TIMEOUT));
    let pid = b.state("n")["pid"].as_i64().unwrap();
    assert_eq!(receive(&sock), format!("READY=1\nMAINPID={pid}\n"));
    assert_ok(&b.husk(&["delete", "-f", "n"]));
    b.assert_gone("n");
}

/// The command that relays container "n"'s notifications to `host`: `start`
/// (after a `create`, done here), `run -d` or `run`.
fn relaying_command(b: &Bundle, how: &str, host: &Path) -> std::process::Command {
    let bundle = b.dir.to_str().unwrap();
    let mut c = match how {
        "start" => {
            let mut create = b.husk_command(&["create", "--bundle", bundle, "n"]);
            create.env("NOTIFY_SOCKET", host);
            assert_ok(&run_with_timeout(&mut create, COMMAND_TIMEOUT));
            return b.husk_command(&["start", "n"]);
        }
        "run -d" => b.husk_command(&["run", "-d", "--bundle", bundle, "n"]),
        _ => b.husk_command(&["run", "--bundle", bundle, "n"]),
    };
    c.env("NOTIFY_SOCKET", host);
    c
}

/// `start` and `run -d` wait, with NOTIFY_SOCKET, for the program's READY=1.
/// One that never sends it must not make its container undeletable for as
/// long as they wait; they end with it.
#[test]
fn a_container_that_never_sends_ready_can_be_deleted_while_husk_waits() {
    let mut b = Bundle::new("notify-never");
    b.script("sleep 30");
    let host = b.dir.join("host-notify.sock");
    let _sock = std::os::unix::net::UnixDatagram::bind(&host).unwrap();
    for how in ["start", "run -d"] {
        let mut waiting = relaying_command(&b, how, &host);
        let mut child = waiting.stdout(std::process::Stdio::null()).spawn().unwrap();
        b.wait_status("n", "running");
        assert_ok(&b.husk(&["delete", "-f", "n"]));
        let status = wait_within(&mut child, COMMAND_TIMEOUT, how);
        assert!(status.success(), "{how}: {status:?}");
        b.assert_gone("n");
    }
}

/// A `run -d` whose relay fails (the host's socket went away) kills and
/// removes its container, as when the start itself fails.
#[test]
fn run_detached_whose_relay_fails_removes_its_container() {
    let mut b = Bundle::new("notify-lost");
    build_notify_helper(&b.rootfs());
    b.script("notify 'STATUS=one'; while [ ! -e /dev/shm/go ]; do sleep 0.05; done; notify 'STATUS=two'; sleep 30");
    let host = b.dir.join("host-notify.sock");
    let sock = std::os::unix::net::UnixDatagram::bind(&host).unwrap();
    sock.set_read_timeout(Some(std::time::Duration::from_secs(20))).unwrap();
    let mut run = b.husk_command(&["run", "-d", "--bundle", b.dir.to_str().unwrap(), "n"]);
    let errors = b.dir.join("run.err");
    run.env("NOTIFY_SOCKET", &host)
        .stderr(std::fs::File::create(&errors).unwrap());
    let mut child = run.spawn().unwrap();
    assert_eq!(receive(&sock), "STATUS=one\n");
    drop(sock);
    std::fs::remove_file(&host).unwrap();
    assert_ok(&b.husk(&["exec", "n", "touch", "/dev/shm/go"]));
    let status = wait_within(&mut child, COMMAND_TIMEOUT, "run -d");
    let errors = std::fs::read_to_string(&errors).unwrap();
    assert!(!status.success(), "{status:?}");
    assert!(errors.contains("send to NOTIFY_SOCKET"), "{errors}");
    b.assert_gone("n");
}

/// Annotations of 200 KiB: the state no longer fits a pipe's 64 KiB buffer.
fn big_annotations(b: &mut Bundle) {
    b.config["annotations"] = json!({ "big": "x".repeat(200 * 1024) });
}

/// A hook that never reads its stdin and runs `sleep 20` (through `wrapper`,
/// e.g. setsid), tagged so that a leftover is seen by assert_gone.
fn sleeping_hook(b: &Bundle, kind: &str, wrapper: &[&str]) -> Value {
    let mut args: Vec<&str> = wrapper.to_vec();
    args.extend(["sleep", "20"]);
    let path = if kind == "createContainer" {
        // Runs in the container: busybox's applets.
        format!("/bin/{}", args[0])
    } else {
        format!("/usr/bin/{}", args[0])
    };
    json!({ kind: [{"path": path, "args": args, "timeout": 1,
        "env": [format!("HUSK_TEST_BUNDLE={}", b.dir.display())]}] })
}

/// Create must fail with the timeout (not 20 s later, not successfully), the
/// hook and everything it started must be gone, and so must the container.
#[track_caller]
fn create_times_out(b: &Bundle, kind: &str, path: &str) {
    let started = std::time::Instant::now();
    let o = b.create("t");
    let took = started.elapsed();
    assert!(
        !o.status.success(),
        "{kind}: create succeeded past the timeout after {took:?}"
    );
    let err = stderr(&o);
    assert!(
        err.contains(&format!("{kind} hook {path}: timed out after 1s")),
        "{kind}: {err}"
    );
    // The deadline must hold whatever the hook does (not a speed check: 20 s is the hook's own end).
    assert!(
        took < std::time::Duration::from_secs(15),
        "{kind}: the timeout held for {took:?}"
    );
    b.assert_gone("t");
}

#[test]
fn a_hook_that_does_not_read_a_large_state_still_times_out() {
    for kind in ["prestart", "createRuntime", "createContainer"] {
        let mut b = Bundle::new(&format!("hooks-stdin-timeout-{kind}"));
        big_annotations(&mut b);
        b.config["hooks"] = sleeping_hook(&b, kind, &[]);
        b.save();
        let path = if kind == "createContainer" {
            "/bin/sleep"
        } else {
            "/usr/bin/sleep"
        };
        create_times_out(&b, kind, path);
    }
}

#[test]
fn a_start_container_hook_that_does_not_read_a_large_state_still_times_out() {
    let mut b = Bundle::new("hooks-stdin-timeout-start");
    big_annotations(&mut b);
    // Runs in the container after pivot_root: busybox's sleep.
    let mut hooks = sleeping_hook(&b, "createContainer", &[]);
    hooks["startContainer"] = hooks.as_object_mut().unwrap().remove("createContainer").unwrap();
    b.config["hooks"] = hooks;
    b.script("sleep 30");
    assert_ok(&b.create("s"));
    let started = std::time::Instant::now();
    let o = b.husk(&["start", "s"]);
    let took = started.elapsed();
    assert!(!o.status.success(), "start succeeded past the timeout after {took:?}");
    assert!(
        stderr(&o).contains("startContainer hook /bin/sleep: timed out after 1s"),
        "{}",
        stderr(&o)
    );
    assert!(
        took < std::time::Duration::from_secs(15),
        "the timeout held for {took:?}"
    );
    b.delete_once_stopped("s");
}

#[test]
fn a_timed_out_hook_that_made_its_own_process_group_is_killed_with_it() {
    for kind in ["createRuntime", "createContainer"] {
        let mut b = Bundle::new(&format!("hooks-pgrp-timeout-{kind}"));
        big_annotations(&mut b);
        // setsid makes the hook a group leader; sh leaves a background sleep in its group.
        let mut hook = sleeping_hook(&b, kind, &["setsid", "sh", "-c", "sleep 20 & exec sleep 20"]);
        hook[kind][0]["args"].as_array_mut().unwrap().truncate(4);
        b.config["hooks"] = hook;
        b.save();
        let path = if kind == "createContainer" {
            "/bin/setsid"
        } else {
            "/usr/bin/setsid"
        };
        create_times_out(&b, kind, path);
    }
}

/// Each hook closes its stdin at once (husk must not die of SIGPIPE) and the
/// next one records the state, which must arrive whole, 200 KiB of annotations included.
/// Without a pid namespace: as pid 1 of its own, the init would shrug SIGPIPE off.
#[test]
fn hooks_that_close_stdin_at_once_succeed_and_the_next_gets_the_whole_state() {
    let (mut b, out) = bundle_with_outdir("hooks-close-stdin");
    b.without_namespace("pid");
    big_annotations(&mut b);
    let kinds = ["prestart", "createRuntime", "createContainer", "startContainer"];
    let mut hooks = serde_json::Map::new();
    for kind in kinds {
        let dir = if kind == "startContainer" {
            PathBuf::from("/hookout")
        } else {
            out.clone()
        };
        let closes = hook(kind, "exec 0<&-; exit 0", Some(10))[kind][0].clone();
        let records = hook(kind, &format!("cat > {}/{kind}.stdin", dir.display()), Some(10))[kind][0].clone();
        hooks.insert(kind.to_string(), json!([closes, records]));
    }
    b.config["hooks"] = Value::Object(hooks);
    b.script("echo ran > /hookout/program");
    assert_ok(&b.create("c"));
    assert_ok(&b.husk(&["start", "c"]));
    b.delete_once_stopped("c");
    assert_eq!(read(&out, "program"), "ran\n");
    for kind in kinds {
        let state: Value = serde_json::from_str(&read(&out, &format!("{kind}.stdin")))
            .unwrap_or_else(|e| panic!("{kind} got a broken state: {e}"));
        assert_eq!(
            state["annotations"]["big"].as_str().map(str::len),
            Some(200 * 1024),
            "{kind}"
        );
    }
}

/// A startContainer hook runs in the container: without `env` it gets the
/// container process's environment (as runc's), with one only that.
#[test]
fn a_start_container_hook_without_env_inherits_the_process_environment() {
    let (mut b, out) = bundle_with_outdir("hooks-env-inherit");
    b.config["process"]["env"] = json!(["PATH=/bin", "FROM_PROCESS=yes"]);
    let record = |file: &str| format!("echo \"[$FROM_PROCESS]\" > /hookout/{file}");
    b.config["hooks"] = json!({"startContainer": [
        {"path": "/bin/sh", "args": ["sh", "-c", record("inherited")]},
        {"path": "/bin/sh", "args": ["sh", "-c", record("explicit")], "env": ["PATH=/bin"]},
    ]});
    b.script("true");
    let o = b.run("h");
    assert_ok(&o);
    assert_eq!(read(&out, "inherited").trim(), "[yes]");
    assert_eq!(read(&out, "explicit").trim(), "[]");
}

/// startContainer hooks are binaries of the image, run in the container: as
/// runc, under its seccomp filter. With noNewPrivileges (the filter loaded
/// last, before the execve), they ran unfiltered, and so did a daemon one
/// left for the container's whole life (review 46 F1).
#[test]
fn start_container_hooks_run_under_the_seccomp_filter() {
    for no_new_privileges in [true, false] {
        let (mut b, out) = bundle_with_outdir(&format!("hooks-seccomp-{no_new_privileges}"));
        b.config["process"]["noNewPrivileges"] = json!(no_new_privileges);
        b.config["linux"]["seccomp"] = json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
            {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}]});
        b.config["hooks"] = json!({"startContainer": [{"path": "/bin/sh", "args": ["sh", "-c",
            "grep Seccomp: /proc/self/status > /hookout/status; mkdir /hookout/made || true"]}]});
        b.script("true");
        let o = b.run("h");
        assert_ok(&o);
        let status = read(&out, "status");
        assert_eq!(
            status.split_whitespace().collect::<Vec<_>>(),
            ["Seccomp:", "2"],
            "nnp {no_new_privileges}"
        );
        assert!(
            !out.join("made").exists(),
            "the hook escaped the filter (nnp {no_new_privileges})"
        );
    }
}

/// `husk run` in the foreground blocks the signals it forwards (and SIGCHLD)
/// to read them from a signalfd; the hooks it starts must not inherit that
/// mask: a hook, or a daemon a poststart hook leaves behind, would ignore
/// SIGTERM and SIGINT for good. runc's hooks (Go) start with an empty mask.
#[test]
fn hooks_of_a_foreground_run_start_with_no_signal_blocked() {
    let (mut b, out) = bundle_with_outdir("hooks-mask");
    let mut hooks = serde_json::Map::new();
    for kind in ["prestart", "createRuntime", "poststart", "poststop"] {
        // exec: the mask of the hook's own process, not of a shell that forks.
        let script = format!("exec grep SigBlk /proc/self/status > $OUT/{kind}.mask");
        let hook = json!({"path": "/bin/sh", "args": ["sh", "-c", script], "env": [format!("OUT={}", out.display())]});
        hooks.insert(kind.to_string(), json!([hook]));
    }
    b.config["hooks"] = Value::Object(hooks);
    b.script("exec grep SigBlk /proc/self/status > /hookout/program.mask");
    assert_ok(&b.run("m"));
    for kind in ["program", "prestart", "createRuntime", "poststart", "poststop"] {
        let mask = read(&out, &format!("{kind}.mask"));
        assert_eq!(
            mask.split_whitespace().nth(1),
            Some("0000000000000000"),
            "{kind}: {mask}"
        );
    }
    b.assert_gone("m");
}

/// A host socket that takes no more (its reader stopped reading, its queue
/// full): the relay of `start`, `run -d` and `run` must still end with the
/// container, not wait for room forever once it is deleted.
#[test]
fn a_relay_to_a_full_host_socket_ends_with_the_container() {
    let mut b = Bundle::new("notify-full");
    build_notify_helper(&b.rootfs());
    // Far more messages than the host's queue holds (max_dgram_qlen, 10 by default).
    b.script("i=0; while [ $i -lt 100 ]; do notify STATUS=$i; i=$((i+1)); done; touch /dev/shm/sent; sleep 30");
    let host = b.dir.join("host-notify.sock");
    let _sock = std::os::unix::net::UnixDatagram::bind(&host).unwrap(); // never read
    for how in ["start", "run -d", "run"] {
        let mut waiting = relaying_command(&b, how, &host);
        let mut child = waiting.spawn_quietly();
        b.wait_status("n", "running");
        // Let the container send until the relay is stuck (or all is sent).
        std::thread::sleep(std::time::Duration::from_millis(500));
        assert_ok(&b.husk(&["delete", "-f", "n"]));
        wait_within(&mut child, COMMAND_TIMEOUT, how);
        b.assert_gone("n");
    }
}

/// A `run -d` whose relay fails kills and removes its container; not
/// another one that a `delete -f` and a `create` made under the same id
/// meanwhile, which has the same cgroup, even when that one is paused.
#[test]
fn run_detached_whose_relay_fails_leaves_a_container_made_anew_alone() {
    let mut b = Bundle::new("notify-anew");
    build_notify_helper(&b.rootfs());
    b.script("while [ ! -e /dev/shm/go ]; do sleep 0.05; done; notify 'STATUS=late'; touch /dev/shm/sent; sleep 30");
    let host = b.dir.join("host-notify.sock");
    let sock = std::os::unix::net::UnixDatagram::bind(&host).unwrap();
    let mut run = b.husk_command(&["run", "-d", "--bundle", b.dir.to_str().unwrap(), "n"]);
    run.env("NOTIFY_SOCKET", &host)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    let mut child = run.spawn().unwrap();
    b.wait_status("n", "running");
    let first = b.state("n")["pid"].as_i64().unwrap();
    let pid = child.id() as i32;
    // SAFETY: signalling the process the test started.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGSTOP) }, 0);
    struct Cont(i32);
    impl Drop for Cont {
        fn drop(&mut self) {
            // SAFETY: as above.
            unsafe { libc::kill(self.0, libc::SIGCONT) };
        }
    }
    let stopped = Cont(pid);
    // A message waits in the relay's socket, which fails once the host's is gone.
    assert_ok(&b.husk(&["exec", "n", "touch", "/dev/shm/go"]));
    let deadline = std::time::Instant::now() + COMMAND_TIMEOUT;
    while !b.husk(&["exec", "n", "test", "-e", "/dev/shm/sent"]).status.success() {
        assert!(std::time::Instant::now() < deadline, "the container never sent");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    drop(sock);
    std::fs::remove_file(&host).unwrap();
    assert_ok(&b.husk(&["delete", "-f", "n"]));
    assert_ok(&b.create("n"));
    assert_ok(&b.husk(&["start", "n"]));
    assert_ok(&b.husk(&["pause", "n"]));
    drop(stopped);
    let status = wait_within(&mut child, COMMAND_TIMEOUT, "run -d");
    assert!(!status.success(), "{status:?}");
    let second = b.state("n");
    assert_eq!(second["status"], "paused");
    assert_ne!(second["pid"].as_i64().unwrap(), first);
    assert_ok(&b.husk(&["delete", "-f", "n"]));
    b.assert_gone("n");
}

/// A poststart hook that takes long ran with the container's lock held, so
/// `delete -f` waited for it and failed after the lock's minute (the
/// outside review of 1287294). The hooks now run with the lock let go.
#[test]
fn a_slow_poststart_hook_does_not_keep_delete_force_out() {
    let mut b = Bundle::new("hook-slow-poststart");
    b.config["process"]["args"] = json!(["sleep", "30"]);
    b.config["hooks"] = json!({"poststart": [{"path": "/bin/sleep", "args": ["sleep", "8"]}]});
    b.save();
    assert_ok(&b.create("p"));
    let mut start = b.husk_command(&["start", "p"]);
    start
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    let mut start = start.spawn().unwrap();
    b.wait_status("p", "running");
    let begun = std::time::Instant::now();
    assert_ok(&b.husk(&["delete", "-f", "p"]));
    assert!(
        begun.elapsed() < std::time::Duration::from_secs(4),
        "delete -f waited {:?}",
        begun.elapsed()
    );
    // start (and its hook, tagged as the bundle's) ends with the hook.
    wait_within(&mut start, std::time::Duration::from_secs(20), "start");
    b.assert_gone("p");
}

/// A foreground `run` holds SIGTERM, SIGINT, SIGHUP and SIGQUIT for the
/// container's process; one whose process never got that far (a hook
/// without a timeout that never ends here; in a pod, an init another member
/// stopped) ignored them for ever. Now it is ended 2 s after the signal, and nothing of it is left.
#[test]
fn a_foreground_run_whose_process_never_starts_ends_on_sigterm() {
    for kind in ["prestart", "createRuntime", "createContainer", "startContainer"] {
        let mut b = Bundle::new(&format!("run-never-starts-{kind}"));
        let marker = format!("HUSK_TEST_BUNDLE={}", b.dir.display());
        // The container's busybox, or the host's sleep.
        let path = match kind {
            "createContainer" | "startContainer" => "/bin/sleep",
            _ => "/usr/bin/sleep",
        };
        b.config["hooks"] = json!({ kind: [{"path": path, "args": ["sleep", "1000"], "env": [marker]}] });
        b.script("true");
        let mut run = b.spawn_run("r");
        std::thread::sleep(std::time::Duration::from_millis(700));
        assert!(
            run.try_wait().unwrap().is_none(),
            "{kind}: run did not wait for its hook"
        );
        send_signal(&run, nix::sys::signal::Signal::SIGTERM);
        let (status, err) = run_outcome(&b, &mut run);
        assert!(!status.success(), "{kind}: {status:?}");
        assert!(
            err.contains("SIGTERM came, and the container's process had not started within 2s"),
            "{kind}: {err}"
        );
        b.assert_gone("r");
    }
}

/// A SIGTERM that comes while a hook still holds the container's process
/// back (for less than the 2 s) reaches the process once it runs, as before.
/// Without a pid namespace: as pid 1 of its own, the process would ignore a
/// SIGTERM that came before it could set a handler.
#[test]
fn a_sigterm_before_the_run_process_starts_still_reaches_it() {
    for kind in ["createContainer", "startContainer"] {
        let (b, mut run) = run_held_by_a_hook(&format!("run-early-term-{kind}"), kind, "/bin/sleep", "1");
        std::thread::sleep(std::time::Duration::from_millis(300));
        assert!(
            run.try_wait().unwrap().is_none(),
            "{kind}: run did not wait for its hook"
        );
        send_signal(&run, nix::sys::signal::Signal::SIGTERM);
        let (status, err) = run_outcome(&b, &mut run);
        assert_eq!(status.code(), Some(128 + 15), "{kind}: {err}");
        b.assert_gone("r");
    }
}

/// A SIGTERM that comes while a poststart hook runs (the process runs
/// already) reaches the process at once: it waited for the hook, for ever
/// for a hook without a timeout that never ends (review 43, F2). run itself
/// still ends once the hook has.
#[test]
fn a_sigterm_during_a_poststart_hook_reaches_the_running_process() {
    let (b, mut run) = run_held_by_a_hook("run-poststart-term", "poststart", "/usr/bin/sleep", "6");
    let program = || {
        b.processes()
            .into_iter()
            .find(|pid| std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default() == b"sleep\x001000\x00")
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while program().is_none() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert!(program().is_some(), "the container's program never ran");
    // Checked here, not once the program is gone: run ends its hook and
    // exits a few ms after its process (racing the poll below, which a
    // loaded host lost).
    assert!(run.try_wait().unwrap().is_none(), "run did not wait for its hook");
    send_signal(&run, nix::sys::signal::Signal::SIGTERM);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(3);
    while program().is_some() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert!(
        program().is_none(),
        "the program still runs 3 s after SIGTERM: husk held it for the poststart hook"
    );
    let (status, err) = run_outcome(&b, &mut run);
    assert_eq!(status.code(), Some(128 + 15), "{err}");
    b.assert_gone("r");
}

/// Signals that come before the process starts reach it in the kernel's
/// order, the lower number first: SIGUSR1 (10) before a SIGTERM (15) husk
/// took while it waited (which went first: review 43, F3).
#[test]
fn signals_before_the_run_process_starts_keep_their_order() {
    let (b, mut run) = run_held_by_a_hook("run-early-order", "prestart", "/usr/bin/sleep", "1");
    std::thread::sleep(std::time::Duration::from_millis(300));
    send_signal(&run, nix::sys::signal::Signal::SIGUSR1);
    std::thread::sleep(std::time::Duration::from_millis(100));
    send_signal(&run, nix::sys::signal::Signal::SIGTERM);
    let (status, err) = run_outcome(&b, &mut run);
    assert_eq!(status.code(), Some(128 + 10), "{err}");
    b.assert_gone("r");
}

/// A poststart hook that never ends kept run after the process it had
/// passed a SIGTERM on to had ended, deaf to more (review 43b, N2): the hook
/// is ended then, and run exits with the process's status.
#[test]
fn a_poststart_hook_that_never_ends_does_not_keep_run_after_its_process() {
    let (b, mut run) = run_held_by_a_hook("run-poststart-hung", "poststart", "/usr/bin/sleep", "1000");
    std::thread::sleep(std::time::Duration::from_millis(700));
    assert!(run.try_wait().unwrap().is_none(), "run did not wait for its hook");
    send_signal(&run, nix::sys::signal::Signal::SIGTERM);
    let (status, err) = run_outcome(&b, &mut run);
    assert_eq!(status.code(), Some(128 + 15), "{err}");
    assert!(err.contains("poststart hook /usr/bin/sleep: ended"), "{err}");
    b.assert_gone("r");
}

/// Waits (bounded) for a foreground run after a signal: its status and stderr.
fn run_outcome(b: &Bundle, run: &mut std::process::Child) -> (std::process::ExitStatus, String) {
    let status = wait_within(run, std::time::Duration::from_secs(15), "run after its signal");
    (status, std::fs::read_to_string(b.dir.join("run.err")).unwrap())
}

/// A foreground `husk run` of `exec sleep 1000` (no pid namespace: the
/// program is not pid 1, which would shrug off a SIGTERM) whose `kind` hook
/// sleeps `seconds`, tagged so that a leftover is seen.
fn run_held_by_a_hook(name: &str, kind: &str, sleep: &str, seconds: &str) -> (Bundle, std::process::Child) {
    let mut b = Bundle::new(name);
    b.without_namespace("pid");
    let marker = format!("HUSK_TEST_BUNDLE={}", b.dir.display());
    b.config["hooks"] = json!({ kind: [{"path": sleep, "args": ["sleep", seconds], "env": [marker]}] });
    b.script("exec sleep 1000");
    let run = b.spawn_run("r");
    (b, run)
}

/// A pod member's startContainer hooks get the container's pid, as `state`
/// has it: husk makes the hooks' state before the member's first init
/// clones the container's process into the pod, and they were given the
/// first init's pid, a process that had exited (review 54c F3). Both
/// orders: born confined (procfs with pidns, Linux 6.15) and the older one.
#[test]
fn a_pod_members_start_container_hooks_get_its_pid() {
    let mut pod = Bundle::new("hook-pod");
    pod.script("sleep 100");
    assert_ok(&pod.husk(&["run", "-d", "--bundle", pod.dir.to_str().unwrap(), "pod"]));
    let pod_pid = pod.state("pod")["pid"].as_i64().unwrap();
    let (mut b, out) = bundle_with_outdir("hook-pod-member");
    for ns in b.config["linux"]["namespaces"].as_array_mut().unwrap() {
        if ns["type"] == "pid" {
            ns["path"] = json!(format!("/proc/{pod_pid}/ns/pid"));
        }
    }
    b.config["hooks"] = json!({"startContainer": [recording_hook("startContainer", Path::new("/hookout"))]});
    b.script("sleep 100");
    let mut seen = Vec::new();
    for old_kernel in ["0", "1"] {
        let _ = std::fs::remove_file(out.join("order"));
        let mut create = b.husk_command(&["create", "--bundle", b.dir.to_str().unwrap(), "m"]);
        create.env("HUSK_NO_PROCFS_PIDNS", old_kernel);
        assert_ok(&run_with_timeout(&mut create, COMMAND_TIMEOUT));
        assert_ok(&b.husk(&["start", "m"]));
        wait_for_file(&out.join("order"), std::time::Duration::from_secs(10));
        let given: Value = serde_json::from_str(&read(&out, "startContainer.stdin")).unwrap();
        seen.push((old_kernel, given["pid"].clone(), b.state("m")["pid"].clone()));
        assert_ok(&b.husk(&["delete", "-f", "m"]));
        b.assert_gone("m");
    }
    assert_ok(&pod.husk(&["delete", "-f", "pod"]));
    pod.assert_gone("pod");
    for (old_kernel, given, pid) in seen {
        assert_eq!(given, pid, "HUSK_NO_PROCFS_PIDNS={old_kernel}");
    }
}
