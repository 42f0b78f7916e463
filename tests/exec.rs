//! exec, terminals over --console-socket, and interactive foreground runs.

mod common;

use common::*;
use serde_json::json;
use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

/// A running container whose init sleeps, for exec to enter.
fn running(name: &str) -> Bundle {
    running_for(name, 30)
}

/// [`running`], its container's process ending after `seconds`.
fn running_for(name: &str, seconds: u32) -> Bundle {
    let mut b = Bundle::new(name);
    b.config["process"]["env"]
        .as_array_mut()
        .unwrap()
        .push(json!("FROM_CONFIG=yes"));
    b.config["hostname"] = json!("exec-host");
    b.script(&format!("sleep {seconds}"));
    assert_ok(&b.husk(&["run", "-d", "--bundle", b.dir.to_str().unwrap(), "c"]));
    b
}

#[test]
fn exec_joins_the_namespaces_and_cgroups_of_the_init() {
    let b = running("exec-ns");
    let pid = b.state("c")["pid"].as_i64().unwrap();
    let o = b.husk(&[
        "exec",
        "c",
        "sh",
        "-c",
        "for n in pid net ipc uts mnt cgroup; do readlink /proc/self/ns/$n; done; hostname; cat /proc/self/cgroup",
    ]);
    assert_ok(&o);
    let out = stdout(&o);
    let lines: Vec<&str> = out.lines().collect();
    for (i, n) in ["pid", "net", "ipc", "uts", "mnt", "cgroup"].iter().enumerate() {
        let init = std::fs::read_link(format!("/proc/{pid}/ns/{n}")).unwrap();
        assert_eq!(lines[i], init.to_str().unwrap(), "{n}");
    }
    assert_eq!(lines[6], "exec-host");
    // In the init's cgroup namespace, both are at its root.
    let init_cgroups = b.husk(&["exec", "c", "cat", "/proc/1/cgroup"]);
    assert_eq!(lines[7..].join("\n") + "\n", stdout(&init_cgroups));
    assert_ok(&b.husk(&["delete", "-f", "c"]));
    b.assert_gone("c");
}

#[test]
fn exec_inherits_env_and_honours_user_cwd_and_env() {
    let b = running("exec-env");
    let out = stdout(&b.husk(&["exec", "c", "sh", "-c", "echo $FROM_CONFIG $PATH; id -u; pwd"]));
    assert_eq!(
        out,
        "yes /usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n0\n/\n"
    );
    let o = b.husk(&[
        "exec",
        "--user",
        "1000:1001",
        "--cwd",
        "/tmp",
        "-e",
        "FROM_CONFIG=over",
        "-e",
        "NEW=1",
        "c",
        "sh",
        "-c",
        "echo $FROM_CONFIG $NEW; id -u; id -g; pwd; echo $PATH",
    ]);
    assert_ok(&o);
    let lines: Vec<String> = stdout(&o).lines().map(String::from).collect();
    assert_eq!(lines[..4], ["over 1", "1000", "1001", "/tmp"]);
    assert!(lines[4].contains("/bin"), "--env adds to the environment: {lines:?}");
    assert_ok(&b.husk(&["delete", "-f", "c"]));
}

#[test]
fn exec_exit_codes() {
    let b = running("exec-codes");
    assert_eq!(b.husk(&["exec", "c", "true"]).status.code(), Some(0));
    assert_eq!(b.husk(&["exec", "c", "sh", "-c", "exit 3"]).status.code(), Some(3));
    assert_eq!(
        b.husk(&["exec", "c", "sh", "-c", "kill -9 $$"]).status.code(),
        Some(128 + 9)
    );
    // husk's own failure is 255 (as runc's), not a status the program could give.
    let missing = b.husk(&["exec", "c", "no-such-command"]);
    assert_eq!(missing.status.code(), Some(255));
    assert!(
        stderr(&missing).contains("executable file not found"),
        "{}",
        stderr(&missing)
    );
    assert_ok(&b.husk(&["delete", "-f", "c"]));
}

#[test]
fn exec_into_a_stopped_container_fails() {
    let b = running("exec-stopped");
    assert_ok(&b.husk(&["kill", "c", "KILL"]));
    b.wait_status("c", "stopped");
    let o = b.husk(&["exec", "c", "true"]);
    assert_eq!(o.status.code(), Some(255));
    assert!(stderr(&o).contains("container not running"), "{}", stderr(&o));
    assert_ok(&b.husk(&["delete", "c"]));
    b.assert_gone("c");
}

#[test]
fn exec_gets_seccomp_nnp_and_only_the_asked_capabilities() {
    let b = running("exec-confine");
    let o = b.husk(&[
        "exec",
        "--cap",
        "CAP_CHOWN",
        "c",
        "grep",
        "-E",
        "^(Cap(Inh|Eff)|NoNewPrivs|Seccomp):",
        "/proc/self/status",
    ]);
    assert_ok(&o);
    let out = stdout(&o);
    let field = |f: &str| {
        out.lines()
            .find(|l| l.starts_with(f))
            .unwrap()
            .split_whitespace()
            .last()
            .unwrap()
            .to_string()
    };
    // The spec's set (AUDIT_WRITE=29, KILL=5, NET_BIND_SERVICE=10) plus CHOWN=0.
    assert_eq!(field("CapEff:"), "0000000020000421");
    assert_eq!(field("CapInh:"), "0000000000000000", "CVE-2022-29162");
    assert_eq!(field("NoNewPrivs:"), "1");
    assert_eq!(field("Seccomp:"), "2");
    assert_ok(&b.husk(&["delete", "-f", "c"]));
}

#[test]
fn exec_process_file_detached_with_pid_file() {
    let b = running("exec-process");
    let spec = json!({"args": ["sh", "-c", "echo from-process-file > /dev/shm/out; sleep 30"], "cwd": "/", "user": {"uid": 0, "gid": 0}, "env": ["PATH=/bin"]});
    let file = b.dir.join("process.json");
    std::fs::write(&file, spec.to_string()).unwrap();
    let pid_file = b.dir.join("exec.pid");
    let o = b.husk(&[
        "exec",
        "--process",
        file.to_str().unwrap(),
        "--detach",
        "--pid-file",
        pid_file.to_str().unwrap(),
        "c",
    ]);
    assert_ok(&o);
    let pid: i32 = std::fs::read_to_string(&pid_file).unwrap().parse().unwrap();
    assert!(std::path::Path::new(&format!("/proc/{pid}")).exists());
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let o = b.husk(&["exec", "c", "cat", "/dev/shm/out"]);
        if stdout(&o) == "from-process-file\n" {
            break;
        }
        assert!(Instant::now() < deadline, "the detached process never wrote");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_ok(&b.husk(&["delete", "-f", "c"]));
    b.assert_gone("c");
}

#[test]
fn exec_cpu_affinity_initial_then_final_with_a_debug_line() {
    let b = running("exec-affinity");
    let two = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1) > 1;
    let run = |affinity: serde_json::Value, debug: bool| {
        let spec = json!({"args": ["grep", "Cpus_allowed_list", "/proc/self/status"], "cwd": "/",
            "user": {"uid": 0, "gid": 0}, "env": ["PATH=/bin"], "execCPUAffinity": affinity});
        let file = b.dir.join("process.json");
        std::fs::write(&file, spec.to_string()).unwrap();
        let global: &[&str] = if debug { &["--debug"] } else { &[] };
        let o = b.husk(&[global, &["exec", "--process", file.to_str().unwrap(), "c"]].concat());
        assert_ok(&o);
        (stdout(&o).trim().to_string(), stderr(&o))
    };
    let (fin, last) = if two { ("1", "1") } else { ("0", "0") };
    let (out, err) = run(json!({"initial": "0", "final": fin}), true);
    assert!(out.ends_with(&format!("\t{last}")), "{out}");
    assert!(err.contains("exec: initial CPU affinity: 0x1\n"), "{err}");
    // Without `final`, the process keeps the initial CPUs.
    let (out, _) = run(json!({"initial": "0"}), true);
    assert!(out.ends_with("\t0"), "{out}");
    if two {
        let (out, err) = run(json!({"initial": "0,1"}), true);
        assert!(out.ends_with("\t0-1"), "{out}");
        assert!(err.contains("exec: initial CPU affinity: 0x3\n"), "{err}");
    }
    let (_, err) = run(json!({"initial": "0"}), false);
    assert!(!err.contains("affinity"), "a debug line without --debug: {err}");
    assert_ok(&b.husk(&["delete", "-f", "c"]));
    b.assert_gone("c");
}

#[test]
fn exec_preserves_only_the_asked_fds() {
    let b = running("exec-fds");
    let mut cmd = std::process::Command::new(HUSK);
    cmd.arg("--root")
        .arg(&b.root)
        .args(["exec", "--preserve-fds", "1", "c", "ls", "/proc/self/fd"]);
    b.tag(&mut cmd);
    let keep = std::fs::File::open("/dev/null").unwrap();
    let leak = std::fs::File::open("/").unwrap();
    pass_fds(&mut cmd, vec![(keep.as_raw_fd(), 3), (leak.as_raw_fd(), 4)]);
    let o = run_with_timeout(&mut cmd, COMMAND_TIMEOUT);
    assert_ok(&o);
    let fds: Vec<String> = stdout(&o).split_whitespace().map(String::from).collect();
    assert_eq!(fds[..4], ["0", "1", "2", "3"]);
    assert_eq!(fds.len(), 5, "only ls's own directory fd beyond: {fds:?}");
    assert_ok(&b.husk(&["delete", "-f", "c"]));
}

#[test]
fn terminal_create_and_exec_through_a_console_socket() {
    let mut b = Bundle::new("console");
    b.config["process"]["terminal"] = json!(true);
    b.config["process"]["args"] = json!(["sh"]);
    b.config["process"]["consoleSize"] = json!({"height": 33, "width": 99});
    b.save();
    let sock = b.dir.join("console.sock");
    let receiver = receive_master(std::os::unix::net::UnixListener::bind(&sock).unwrap());
    let o = b.husk(&[
        "create",
        "--console-socket",
        sock.to_str().unwrap(),
        "--bundle",
        b.dir.to_str().unwrap(),
        "t",
    ]);
    assert_ok(&o);
    let (path, master) = receiver.join().unwrap().expect("a pty master");
    assert!(path.starts_with("/dev/pts/"), "{path}");
    assert_ok(&b.husk(&["start", "t"]));
    let mut master = std::fs::File::from(master);
    read_until(&mut master, "# ", Duration::from_secs(10));
    master
        .write_all(b"stty size; tty; readlink /proc/self/fd/0; ls -l /dev/console | cut -c1; echo done-$((6*7))\n")
        .unwrap();
    let out = read_until(&mut master, "done-42", Duration::from_secs(10));
    assert!(out.contains("33 99"), "consoleSize: {out}");
    assert!(out.contains("/dev/pts/0"), "{out}");

    // exec -t with its own console socket.
    let sock2 = b.dir.join("console2.sock");
    let receiver = receive_master(std::os::unix::net::UnixListener::bind(&sock2).unwrap());
    let o = b.husk(&[
        "exec",
        "-t",
        "-d",
        "--console-socket",
        sock2.to_str().unwrap(),
        "t",
        "sh",
    ]);
    assert_ok(&o);
    let (_, exec_master) = receiver.join().unwrap().expect("a pty master");
    let mut exec_master = std::fs::File::from(exec_master);
    read_until(&mut exec_master, "# ", Duration::from_secs(10));
    exec_master.write_all(b"tty; echo exec-$((2+3))\n").unwrap();
    let out = read_until(&mut exec_master, "exec-5", Duration::from_secs(10));
    assert!(out.contains("/dev/pts/1"), "{out}");
    exec_master.write_all(b"exit\n").unwrap();
    master.write_all(b"exit\n").unwrap();
    b.delete_once_stopped("t");
}

#[test]
fn interactive_run_with_a_terminal_under_script() {
    let mut b = Bundle::new("interactive");
    b.config["process"]["terminal"] = json!(true);
    b.config["process"]["args"] = json!(["sh"]);
    b.save();
    let husk_cmd = format!("{HUSK} --root {} run --bundle {} i", b.root.display(), b.dir.display());
    let mut cmd = std::process::Command::new("script");
    cmd.args(["-q", "-e", "-c", &husk_cmd, "/dev/null"]);
    b.tag(&mut cmd);
    cmd.stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(b"tty; echo sum-$((40+2)); exit 5\n").unwrap();
    let deadline = Instant::now() + COMMAND_TIMEOUT;
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("husk run -t did not finish");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let mut out = String::new();
    child.stdout.take().unwrap().read_to_string(&mut out).unwrap();
    assert!(out.contains("sum-42"), "{out}");
    assert!(out.contains("/dev/pts/0"), "{out}");
    assert_eq!(status.code(), Some(5), "{out}");
    b.assert_gone("i");
}

/// The process of a `run -t` has the caller's terminal size from its
/// start: husk set it only once the poststart hooks had run, and a process
/// that ran meanwhile saw 0x0 (review 43b).
#[test]
fn run_with_a_terminal_has_the_callers_size_while_poststart_hooks_run() {
    let mut b = Bundle::new("tty-size-poststart");
    b.config["process"]["terminal"] = json!(true);
    b.config["process"]["args"] = json!(["sh", "-c", "echo size-$(stty size | tr ' ' x)"]);
    b.config["hooks"] = json!({ "poststart": [{"path": "/usr/bin/sleep", "args": ["sleep", "1"]}] });
    b.save();
    let husk_cmd = format!(
        "stty rows 41 cols 123; {HUSK} --root {} run --bundle {} s",
        b.root.display(),
        b.dir.display()
    );
    let mut cmd = std::process::Command::new("script");
    cmd.args(["-q", "-e", "-c", &husk_cmd, "/dev/null"]);
    b.tag(&mut cmd);
    let o = run_with_timeout(cmd.stdin(std::process::Stdio::null()), COMMAND_TIMEOUT);
    assert!(stdout(&o).contains("size-41x123"), "{}{}", stdout(&o), stderr(&o));
    b.assert_gone("s");
}

/// Without a controlling terminal (setsid), a foreground run with a terminal
/// fails at once instead of waiting forever for input nobody can type.
#[test]
fn run_with_a_terminal_but_none_to_attach_fails_at_once() {
    let mut b = Bundle::new("notty");
    b.config["process"]["terminal"] = json!(true);
    b.config["process"]["args"] = json!(["sh"]);
    b.save();
    let mut cmd = std::process::Command::new("setsid");
    cmd.args(["-w", HUSK, "--root"])
        .arg(&b.root)
        .args(["run", "--bundle", b.dir.to_str().unwrap(), "n"])
        .stdin(std::process::Stdio::null());
    b.tag(&mut cmd);
    let o = run_with_timeout(&mut cmd, COMMAND_TIMEOUT);
    assert!(!o.status.success());
    let err = stderr(&o);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("no terminal to attach it to (open /dev/tty:"), "{err}");
    b.assert_gone("n");
}

#[test]
fn listen_fds_pass_through_for_socket_activation() {
    let mut b = Bundle::new("listenfds");
    b.script("echo $LISTEN_FDS $LISTEN_PID; ls /proc/self/fd | sort -n | tr '\\n' ' '");
    let mut cmd = std::process::Command::new(HUSK);
    cmd.arg("--root")
        .arg(&b.root)
        .args(["run", "--bundle", b.dir.to_str().unwrap(), "l"])
        .env("LISTEN_FDS", "2");
    b.tag(&mut cmd);
    let (one, two) = (
        std::fs::File::open("/dev/null").unwrap(),
        std::fs::File::open("/dev/null").unwrap(),
    );
    let (f1, f2) = (one.as_raw_fd(), two.as_raw_fd());
    pass_fds(&mut cmd, vec![(f1, 3), (f2, 4)]);
    let o = run_with_timeout(&mut cmd, COMMAND_TIMEOUT);
    assert_ok(&o);
    let out = stdout(&o);
    let mut lines = out.lines();
    assert_eq!(lines.next(), Some("2 1"));
    let fds: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
    assert_eq!(fds[..5], ["0", "1", "2", "3", "4"], "{out}");
    b.assert_gone("l");
}

/// Exec opens the init's namespaces, a pidfd and the console socket: none may
/// take a --preserve-fds number the caller left closed, which stays closed.
#[test]
fn exec_fills_preserved_fd_gaps_with_nothing_of_husks() {
    let b = running("exec-fd-gaps");
    let mut cmd = std::process::Command::new(HUSK);
    cmd.arg("--root").arg(&b.root);
    assert_preserved_fd_gaps_stay_closed(&b, cmd);
}

/// The same where husk finds no /dev/null (a minimal /dev, an LSM's
/// refusal): its placeholders were /dev/null, and without one husk's own
/// fds (the pidfd, its channel to the joiner, a namespace) took the numbers
/// and reached the program (review 50b N4). They are memfds now.
#[test]
fn exec_fills_preserved_fd_gaps_without_a_dev_null_too() {
    let b = running("exec-fd-gaps-nonull");
    let mut cmd = std::process::Command::new("unshare");
    cmd.args(["-m", "--propagation", "private", "sh", "-c"])
        .arg("mount -t tmpfs none /dev && exec \"$0\" \"$@\"")
        .arg(HUSK)
        .arg("--root")
        .arg(&b.root);
    assert_preserved_fd_gaps_stay_closed(&b, cmd);
}

/// `husk` (the command so far) `exec --preserve-fds 8` into container c of
/// `b`, with fds 3-10 closed: the program finds them closed. Deletes c.
fn assert_preserved_fd_gaps_stay_closed(b: &Bundle, mut cmd: std::process::Command) {
    cmd.args(["exec", "--preserve-fds", "8", "c", "sh", "-c"]);
    cmd.arg("for fd in 3 4 5 6 7 8 9 10; do readlink /proc/self/fd/$fd || echo closed; done");
    b.tag(&mut cmd);
    close_inherited_fds(&mut cmd);
    let o = run_with_timeout(&mut cmd, COMMAND_TIMEOUT);
    assert_ok(&o);
    let out = stdout(&o);
    assert!(out.lines().count() == 8 && out.lines().all(|l| l == "closed"), "{out}");
    assert_ok(&b.husk(&["delete", "-f", "c"]));
}

/// A container whose init has exited but cannot finish (a process of its pid
/// namespace, started by exec, is a zombie its parent outside never reaps) is
/// stopping: exec says so instead of the failure of what it tried (its root
/// is gone, its pid namespace takes no new process: ENOMEM).
#[test]
fn exec_into_a_stopping_container_says_it_is_stopping() {
    let b = running("exec-stopping");
    // A subreaper that never reaps: it waits for `exec -d` only, then execs sleep.
    let script = format!(
        "{HUSK} --root {} exec -d c sleep 1000 && exec sleep 30",
        b.root.display()
    );
    let mut holder = subreaper_shell();
    holder.args(["-c", &script]);
    b.tag(&mut holder);
    let mut holder = holder.spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let me = holder.id();
    while !std::fs::read_to_string(format!("/proc/{me}/comm"))
        .unwrap_or_default()
        .starts_with("sleep")
    {
        assert!(Instant::now() < deadline, "the holder never got to sleep");
        std::thread::sleep(Duration::from_millis(20));
    }
    let init = b.state("c")["pid"].as_i64().unwrap();
    assert_eq!(unsafe { libc::kill(init as i32, libc::SIGKILL) }, 0);
    let deadline = Instant::now() + Duration::from_secs(10);
    let exiting = || {
        let stat = std::fs::read_to_string(format!("/proc/{init}/stat")).unwrap_or_default();
        let after = stat.rsplit_once(") ").map(|(_, s)| s).unwrap_or("");
        let flags: u64 = after.split(' ').nth(6).and_then(|f| f.parse().ok()).unwrap_or(0);
        flags & 0x4 != 0
    };
    while !exiting() {
        assert!(Instant::now() < deadline, "the init never started to exit");
        std::thread::sleep(Duration::from_millis(20));
    }
    let o = b.husk(&["exec", "c", "true"]);
    assert!(!o.status.success(), "exec into a stopping container succeeded");
    assert_eq!(
        stderr(&o).trim_end(),
        "husk: error: cannot exec in container \"c\": it is stopping (its init has exited)"
    );
    // The zombie goes to pid 1, which reaps it: the init can finish.
    holder.kill().unwrap();
    holder.wait().unwrap();
    assert_ok(&b.husk(&["delete", "-f", "c"]));
    b.assert_gone("c");
}

/// A caller told that exec failed never waits for nor kills its process:
/// husk 0.1.0 (4491cad) reported a --pid-file it could not write and left
/// the process running in the container (runc kills it).
#[test]
fn an_exec_whose_pid_file_cannot_be_written_leaves_no_process() {
    let b = running("exec-pidfile");
    let pid_file = b.dir.join("no-such-dir/e.pid");
    let o = b.husk(&[
        "exec",
        "-d",
        "--pid-file",
        pid_file.to_str().unwrap(),
        "c",
        "sleep",
        "778",
    ]);
    assert!(!o.status.success(), "exec succeeded without its pid file");
    assert!(stderr(&o).contains("no-such-dir/e.pid"), "{}", stderr(&o));
    assert_none_runs(&b, "778");
    assert_ok(&b.husk(&["delete", "-f", "c"]));
    b.assert_gone("c");
}

/// A message forged into the exec process's end of the channel (a container
/// with CAP_SYS_PTRACE and no user namespace can take that fd with
/// pidfd_getfd; the test does it from the host) fails husk's read after
/// the pid file is written: husk then removed the file but killed nothing,
/// and the program ran where nothing named it (review 59 F1).
#[test]
fn a_message_forged_into_the_exec_channel_leaves_no_program_running() {
    let b = running("exec-forged");
    let pid_file = b.dir.join("e.pid");
    let (mut husk, err_path, waiting) = exec_held_at_its_go(&b, (&[], &[]), &pid_file, "779");
    forge_into_sockets_of(waiting, b"Z");
    let status = wait_within(&mut husk, COMMAND_TIMEOUT, "husk exec");
    let err = std::fs::read_to_string(&err_path).unwrap();
    assert!(!status.success(), "exec succeeded");
    assert!(err.contains("which husk did not start"), "{err}");
    assert_none_runs(&b, "779");
    assert!(!pid_file.exists(), "the pid file of a failed exec is left");
    assert_ok(&b.husk(&["delete", "-f", "c"]));
    b.assert_gone("c");
}

/// A container with CAP_SYS_PTRACE and no user namespace can copy the
/// sockets its exec process holds (pidfd_getfd) and ask each for a pidfd
/// of the process at its other end (SO_PEERPIDFD). husk made the channel,
/// and through its pidfd the container took husk's fds (the caller's
/// stdio) and, with CAP_SYS_ADMIN, entered the host's namespaces (review
/// 60c F1); the console socket led the same way to the manager listening
/// there (conmon, containerd's shim). The channel's maker is a process that
/// is gone now, and husk passes the pty master on to the console socket.
#[test]
fn the_exec_process_holds_no_socket_that_leads_out_of_the_container() {
    let b = running("exec-peer");
    let pid_file = b.dir.join("e.pid");
    let sock = b.dir.join("console.sock");
    let receiver = receive_master(std::os::unix::net::UnixListener::bind(&sock).unwrap());
    let console = ["-t", "--console-socket", sock.to_str().unwrap()];
    let (mut husk, err_path, waiting) = exec_held_at_its_go(&b, (&[], &console), &pid_file, "783");
    let sockets = sockets_of(waiting);
    assert_eq!(sockets.len(), 1, "the exec process holds one socket, the channel");
    assert_peer_is_gone(&sockets[0]);
    // A copy held open would hold husk's wait for the execve's end of file.
    drop(sockets);
    let status = wait_within(&mut husk, COMMAND_TIMEOUT, "husk exec");
    assert!(status.success(), "{}", std::fs::read_to_string(&err_path).unwrap());
    let (path, _master) = receiver.join().unwrap().expect("a pty master");
    assert!(path.starts_with("/dev/pts/"), "{path}");
    assert_ok(&b.husk(&["delete", "-f", "c"]));
    b.assert_gone("c");
}

/// An exec with a terminal whose husk is killed while it passes the pty
/// master on to the console socket: the exec process ran its program right
/// after it sent the master, which the manager then never got, and the
/// program was hung up once husk's copy closed (review 61 F3). It now waits
/// for husk's word that the master is passed on, and exits at its end of
/// file. strace holds husk's send to the console socket (its only sendmsg)
/// 3 s; the listener never accepts.
#[test]
fn an_exec_whose_husk_dies_passing_its_terminal_on_runs_no_program() {
    let b = running_with_room_for_a_witness("exec-master-kill");
    let sock = b.dir.join("console.sock");
    let _listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
    let pid_file = b.dir.join("e.pid");
    let delay = ["-qq", "-o", "/dev/null", "-e", "inject=sendmsg:delay_enter=3000000"];
    let exec = [
        "exec",
        "-d",
        "-t",
        "--console-socket",
        sock.to_str().unwrap(),
        "--pid-file",
        pid_file.to_str().unwrap(),
        "c",
        "sh",
        "-c",
        "touch /witness; sleep 30",
    ];
    let mut strace = b.husk_under_strace(&delay, &exec).spawn_quietly();
    wait_for_file(&pid_file, Duration::from_secs(20));
    // The exec process sends its master once the pid file is written; husk
    // is in the held send by then.
    std::thread::sleep(Duration::from_millis(1000));
    let husk = children_of(strace.id());
    assert_eq!(husk.len(), 1, "{husk:?}");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(husk[0] as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    wait_within(&mut strace, COMMAND_TIMEOUT, "strace");
    let process: i32 = std::fs::read_to_string(&pid_file).unwrap().trim().parse().unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while std::path::Path::new(&format!("/proc/{process}")).exists() && !is_dying(process) && Instant::now() < deadline
    {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        !std::path::Path::new(&format!("/proc/{process}")).exists() || is_dying(process),
        "the exec process lives on without its husk"
    );
    assert_witness_absent(&b, "/witness");
    assert_ok(&b.husk(&["delete", "-f", "c"]));
    b.assert_gone("c");
}

/// The same forged message ahead of the joiner's word (the pid of the exec
/// process, which it cloned just before): husk failed and killed nothing,
/// and the program ran untracked (review 59b F1). Then husk killed the
/// children of its own in the init's cgroup, which missed an exec process
/// in a sub-cgroup (`exec --cgroup`, review 60 F1); that process now waits
/// for husk's go, and exits at its end of file. A forged word naming
/// another child of husk's (a caller's job) had husk kill that job and let
/// the program run (60b F1): husk hears only the processes it started now.
#[test]
fn a_message_forged_ahead_of_the_joiners_word_leaves_no_program_running() {
    // Each case waits up to 10 s for strace, which traces the caller's job too.
    let b = running_for("exec-forged-early", 90);
    let cgroup = b.default_cgroup("c");
    make_sub_cgroup(&cgroup, "sub");
    let procs = |sub: &str| format!("/sys/fs/cgroup/pids{cgroup}{sub}/cgroup.procs");
    let job_pid = b.dir.join("job.pid");
    // What is forged: a message no one sends, or the joiner's word naming
    // the caller's job, sent plainly or in the joiner's name (SCM_CREDENTIALS:
    // CAP_SYS_ADMIN over husk's pid namespace, review 60c F2).
    let payload = |names_the_job: bool| match names_the_job {
        false => b"Z".to_vec(),
        true => format!("P{}", std::fs::read_to_string(&job_pid).unwrap().trim()).into_bytes(),
    };
    let stranger = "which husk did not start";
    struct Case {
        extra: &'static [&'static str],
        sub: &'static str,
        names_the_job: bool,
        as_the_joiner: bool,
        word: &'static str,
        error: &'static str,
    }
    let case = |extra, sub, names_the_job, as_the_joiner, word, error| Case {
        extra,
        sub,
        names_the_job,
        as_the_joiner,
        word,
        error,
    };
    let cases = [
        case(&[], "", false, false, "780", stranger),
        case(&["--cgroup", "sub"], "/sub", false, false, "781", stranger),
        case(&[], "", true, false, "783", stranger),
        case(&[], "", true, true, "784", "one was forged"),
    ];
    for Case {
        extra,
        sub,
        names_the_job,
        as_the_joiner,
        word,
        error,
    } in cases
    {
        let procs = procs(sub);
        let exec = [&["exec", "-d"], extra, &["c", "sleep", word]].concat();
        let script = format!(
            "sleep 7763 </dev/null >/dev/null 2>&1 & echo $! > {}; exec {HUSK} --root {} {}",
            job_pid.display(),
            b.root.display(),
            exec.join(" ")
        );
        let delay = ["-f", "-qq", "-o", "/dev/null", "-e", "inject=write:delay_enter=300000"];
        let mut caller = std::process::Command::new("strace");
        caller.args(delay).args(["sh", "-c", &script]);
        b.tag(&mut caller);
        let forge = || payload(names_the_job);
        let err = forge_ahead_of_the_joiners_word(&b, caller, &procs, forge, as_the_joiner);
        assert_none_runs(&b, word);
        let job: i32 = std::fs::read_to_string(&job_pid).unwrap().trim().parse().unwrap();
        let stat = std::fs::read_to_string(format!("/proc/{job}/stat")).unwrap_or_default();
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(job), nix::sys::signal::Signal::SIGKILL);
        assert!(
            stat.contains("(sleep) S"),
            "{exec:?}: the caller's job was ended: {stat:?}"
        );
        assert!(err.contains(error), "{exec:?}: {err}");
    }
    assert_ok(&b.husk(&["delete", "-f", "c"]));
    b.assert_gone("c");
}

/// Runs `husk` (an exec, run by strace), forges `payload()` into its
/// joiner's socket once the joiner and its exec process are in the cgroup
/// whose `procs` file is given, and returns husk's stderr once husk and
/// what it traced have ended (or 10 s have passed).
fn forge_ahead_of_the_joiners_word(
    b: &Bundle,
    mut husk: std::process::Command,
    procs: &str,
    payload: impl Fn() -> Vec<u8>,
    as_the_joiner: bool,
) -> String {
    let init = b.state("c")["pid"].as_i64().unwrap() as i32;
    let err_path = b.dir.join("exec.err");
    husk.stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null());
    let mut husk = husk.stderr(std::fs::File::create(&err_path).unwrap()).spawn().unwrap();
    let deadline = Instant::now() + COMMAND_TIMEOUT;
    let joined = loop {
        let text = std::fs::read_to_string(procs).unwrap();
        let joined: Vec<i32> = text
            .lines()
            .filter_map(|l| l.parse().ok())
            .filter(|&p| p != init)
            .collect();
        if joined.len() >= 2 || Instant::now() > deadline {
            break joined;
        }
        std::thread::sleep(Duration::from_millis(2));
    };
    assert_eq!(
        joined.len(),
        2,
        "{procs}: {}: {}",
        Bundle::describe(&joined),
        std::fs::read_to_string(&err_path).unwrap_or_default()
    );
    if as_the_joiner {
        // The joiner is in husk's pid namespace, the exec process below it.
        let depth = |p: i32| {
            let status = std::fs::read_to_string(format!("/proc/{p}/status")).unwrap_or_default();
            status
                .lines()
                .find_map(|l| l.strip_prefix("NSpid:"))
                .map_or(0, |l| l.split_whitespace().count())
        };
        let joiner = *joined.iter().min_by_key(|&&p| depth(p)).unwrap();
        let creds = nix::sys::socket::UnixCredentials::from(libc::ucred {
            pid: joiner,
            uid: 0,
            gid: 0,
        });
        let sockets = sockets_of(joiner);
        let cmsg = [nix::sys::socket::ControlMessage::ScmCredentials(&creds)];
        let bytes = payload();
        let iov = [std::io::IoSlice::new(&bytes)];
        let flags = nix::sys::socket::MsgFlags::empty();
        nix::sys::socket::sendmsg::<()>(sockets[0].as_raw_fd(), &iov, &cmsg, flags, None).unwrap();
    } else {
        forge_into_sockets_of(joined[0], &payload());
    }
    // strace ends once every process it traces has: the program too. Well
    // within the life of the container's init, whose end would end it.
    let deadline = Instant::now() + Duration::from_secs(10);
    while husk.try_wait().unwrap().is_none() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = husk.kill();
    let _ = husk.wait();
    std::fs::read_to_string(&err_path).unwrap()
}

/// Makes `sub` under cgroup `path` in every v1 hierarchy and the unified
/// one (with the cpus and memory nodes of its parent), as a container with
/// a writable cgroupfs can.
fn make_sub_cgroup(path: &str, sub: &str) {
    for hierarchy in std::fs::read_dir("/sys/fs/cgroup").unwrap().flatten() {
        let parent = hierarchy.path().join(path.trim_start_matches('/'));
        if parent.is_dir() {
            std::fs::create_dir_all(parent.join(sub)).unwrap();
        }
        for file in ["cpuset.cpus", "cpuset.mems"] {
            if let Ok(value) = std::fs::read_to_string(parent.join(file)) {
                std::fs::write(parent.join(sub).join(file), value).unwrap();
            }
        }
    }
}

/// A caller that becomes husk (a shell's `job & exec husk exec ...`) has
/// children husk did not make: an exec that failed (a command not found)
/// killed them all, as it ended what its joiner might have cloned (review
/// 59c F1), then those in a pid namespace below husk's (a caller that
/// unshared one without forking, 59d F1), then those also in the
/// container's cgroup: a caller in that cgroup (60 F3), or a child
/// subreaper that had adopted the process of an earlier `exec -d` (60 F2).
/// husk ends only the processes it knows by pid now.
#[test]
fn a_failed_exec_leaves_the_callers_own_children_alone() {
    let b = running("exec-callers-children");
    let job_pid = b.dir.join("job.pid");
    let exec_missing = format!("exec {HUSK} --root {} exec c no-such-command", b.root.display());
    let job = format!(
        "sleep 7761 </dev/null >/dev/null 2>&1 & echo $! > {}",
        job_pid.display()
    );
    let cgroup = b.default_cgroup("c");
    let join_the_container = format!("for f in /sys/fs/cgroup/*{cgroup}/cgroup.procs; do echo $$ > $f; done");
    let exec_job = format!(
        "{HUSK} --root {} exec -d --pid-file {} c sleep 7762",
        b.root.display(),
        job_pid.display()
    );
    let callers = [
        (&["sh"][..], format!("{job}; {exec_missing}"), "sleep"),
        (&["unshare", "-p", "sh"], format!("{job}; {exec_missing}"), "sleep"),
        (
            &["unshare", "-p", "sh"],
            format!("{join_the_container}; {job}; {exec_missing}"),
            "sleep",
        ),
        (&["subreaper"], format!("{exec_job}; {exec_missing}"), "sleep"),
    ];
    for (wrapper, script, program) in callers {
        let _ = std::fs::remove_file(&job_pid);
        let mut caller = match wrapper {
            ["subreaper"] => subreaper_shell(),
            _ => std::process::Command::new(wrapper[0]),
        };
        caller.args(&wrapper[1..]).args(["-c", &script]);
        let o = run_with_timeout(&mut caller, COMMAND_TIMEOUT);
        assert!(!o.status.success(), "{script}: exec of a missing command succeeded");
        let job: i32 = std::fs::read_to_string(&job_pid).unwrap().trim().parse().unwrap();
        let stat = std::fs::read_to_string(format!("/proc/{job}/stat")).unwrap_or_default();
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(job), nix::sys::signal::Signal::SIGKILL);
        assert!(
            stat.contains(&format!("({program}) S")),
            "{script}: the caller's job was ended: {stat:?}"
        );
    }
    assert_ok(&b.husk(&["delete", "-f", "c"]));
    b.assert_gone("c");
}

/// `sh` as a child subreaper: the processes of its children that outlive
/// them become its own (and husk's, should it exec husk).
fn subreaper_shell() -> std::process::Command {
    use std::os::unix::process::CommandExt;
    let mut shell = std::process::Command::new("sh");
    // SAFETY: prctl only, between fork and exec.
    unsafe {
        shell.pre_exec(|| {
            nix::sys::prctl::set_child_subreaper(true)?;
            Ok(())
        });
    }
    shell
}

/// No live process of the bundle has `word` in its command line.
#[track_caller]
fn assert_none_runs(b: &Bundle, word: &str) {
    let left = command_lines(b);
    assert!(!left.iter().any(|c| c.contains(word)), "left running: {left:?}");
}

/// The command lines of the bundle's live processes.
fn command_lines(b: &Bundle) -> Vec<String> {
    (b.processes().iter())
        .map(|p| std::fs::read_to_string(format!("/proc/{p}/cmdline")).unwrap_or_default())
        .collect()
}

/// Writes `bytes` into each socket process `pid` holds, taken with pidfd_getfd.
fn forge_into_sockets_of(pid: i32, bytes: &[u8]) {
    let sockets = sockets_of(pid);
    assert_eq!(sockets.len(), 1, "process {pid} holds one socket, the channel");
    nix::unistd::write(&sockets[0], bytes).unwrap();
}

/// A stream of `--debug` lines forged into the exec process's end of the
/// channel kept husk reading for as long as it went on, each line starting
/// the bound anew, and each reached husk's stderr with its escape sequences
/// (review 60 F4). The whole wait is bounded now, forwarded lines are
/// escaped, and a line from a process husk did not start ends the exec.
#[test]
fn forged_debug_lines_neither_hold_exec_nor_reach_its_stderr_raw() {
    let b = running("exec-forged-debug");
    let pid_file = b.dir.join("e.pid");
    let started = Instant::now();
    let (mut husk, err_path, waiting) = exec_held_at_its_go(&b, (&["--debug"], &[]), &pid_file, "782");
    let sockets = sockets_of(waiting);
    while husk.try_wait().unwrap().is_none() && started.elapsed() < Duration::from_secs(20) {
        let _ = nix::unistd::write(&sockets[0], b"D\x1b[31mforged\nline");
        std::thread::sleep(Duration::from_millis(200));
    }
    let took = started.elapsed();
    let status = wait_within(&mut husk, COMMAND_TIMEOUT, "husk exec");
    let err = std::fs::read_to_string(&err_path).unwrap();
    assert!(!status.success() && err.contains("which husk did not start"), "{err}");
    assert!(took < Duration::from_secs(12), "held {took:?}: {err}");
    assert!(!err.contains('\x1b'), "a raw escape sequence on stderr: {err:?}");
    assert_none_runs(&b, "782");
    assert!(!pid_file.exists(), "the pid file of a failed exec is left");
    assert_ok(&b.husk(&["delete", "-f", "c"]));
    b.assert_gone("c");
}

/// Starts `husk [global] exec -d [opts] --pid-file PID_FILE c sleep WORD` under
/// strace, which holds each of husk's sends 1 s (its go among them), with a
/// 3 s setup bound; returns husk (strace), the file of its stderr, and the
/// exec process, waiting for the go, once the pid file names it.
fn exec_held_at_its_go(
    b: &Bundle,
    (global, opts): (&[&str], &[&str]),
    pid_file: &std::path::Path,
    word: &str,
) -> (std::process::Child, std::path::PathBuf, i32) {
    let init = b.state("c")["pid"].as_i64().unwrap() as i32;
    let delay = ["-qq", "-o", "/dev/null", "-e", "inject=sendto:delay_enter=1000000"];
    let exec = ["exec", "-d"];
    let process = ["--pid-file", pid_file.to_str().unwrap(), "c", "sleep", word];
    // A file, not a pipe: the program, were it run, would hold it open.
    let err_path = b.dir.join("exec.err");
    let mut husk = b.husk_under_strace(&delay, &[global, &exec, opts, &process].concat());
    husk.env("HUSK_SETUP_TIMEOUT", "3")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null());
    let husk = husk.stderr(std::fs::File::create(&err_path).unwrap()).spawn().unwrap();
    wait_for_file(pid_file, Duration::from_secs(20));
    let procs = format!("/sys/fs/cgroup/pids{}/cgroup.procs", b.default_cgroup("c"));
    let waiting: Vec<i32> = std::fs::read_to_string(&procs)
        .unwrap()
        .lines()
        .filter_map(|l| l.parse().ok())
        .filter(|&p| p != init)
        .collect();
    assert_eq!(waiting.len(), 1, "{}", Bundle::describe(&waiting));
    (husk, err_path, waiting[0])
}

/// A --pid-file that is there and is not a regular file (a fifo standing in
/// for /dev/null here) was replaced by a file (review 46: `--pid-file
/// /dev/null` cost the host its /dev/null; runc the same). create and exec
/// refuse it before they make anything; the fifo stays.
#[test]
fn a_pid_file_that_is_not_a_regular_file_is_not_replaced() {
    let b = running("exec-pidfile-node");
    let fifo = b.dir.join("null");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    let want = format!("--pid-file {}: there already and not a regular file", fifo.display());
    let exec = b.husk(&["exec", "-d", "--pid-file", fifo.to_str().unwrap(), "c", "sleep", "779"]);
    let created = b.husk(&[
        "create",
        "--bundle",
        b.dir.to_str().unwrap(),
        "--pid-file",
        fifo.to_str().unwrap(),
        "d",
    ]);
    let still_a_fifo =
        std::fs::symlink_metadata(&fifo).map(|m| std::os::unix::fs::FileTypeExt::is_fifo(&m.file_type()));
    assert!(
        !exec.status.success() && stderr(&exec).contains(&want),
        "{}",
        stderr(&exec)
    );
    assert!(
        !created.status.success() && stderr(&created).contains(&want),
        "{}",
        stderr(&created)
    );
    assert!(still_a_fifo.unwrap(), "the fifo was replaced");
    assert_ok(&b.husk(&["delete", "-f", "c"]));
    b.assert_gone("c");
    b.assert_gone("d");
}

/// As for the init: HOME from the container's /etc/passwd for the exec's
/// user, else /.
#[test]
fn an_exec_process_gets_its_users_home() {
    let b = running("exec-home");
    let o = b.husk(&["exec", "c", "sh", "-c", "echo $HOME"]);
    assert_ok(&o);
    assert_eq!(stdout(&o).trim(), "/root");
    let o = b.husk(&["exec", "-u", "4242", "c", "sh", "-c", "echo $HOME"]);
    assert_ok(&o);
    assert_eq!(stdout(&o).trim(), "/");
    assert_ok(&b.husk(&["delete", "-f", "c"]));
    b.assert_gone("c");
}

/// husk blocks the signals it passes on from before the exec process
/// exists: an exec that never got as far as the process (here its joiner
/// frozen in a paused container it was told to ignore; in the outside
/// review the container froze its own cgroup, or ptraced the process) then
/// ignored SIGTERM and SIGINT for ever, and `timeout` could not end it
/// (review 42, F3; runc hangs the same). Such a signal now ends it.
#[test]
fn an_exec_that_never_starts_its_process_ends_on_sigterm() {
    let mut b = Bundle::new("exec-never-starts");
    b.script("sleep 1000");
    assert_ok(&b.husk(&["run", "-d", "--bundle", b.dir.to_str().unwrap(), "c"]));
    assert_ok(&b.husk(&["pause", "c"]));
    let err = b.dir.join("exec.err");
    let mut exec = b
        .husk_command(&["exec", "--ignore-paused", "c", "true"])
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(&err).unwrap())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        exec.try_wait().unwrap().is_none(),
        "the exec did not wait for its frozen joiner"
    );
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(exec.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let status = wait_within(&mut exec, Duration::from_secs(10), "exec after SIGTERM");
    assert!(!status.success());
    let text = std::fs::read_to_string(&err).unwrap();
    assert!(
        text.contains("SIGTERM came, and the process had not started within 2s"),
        "{text}"
    );
    assert_ok(&b.husk(&["resume", "c"]));
    assert_ok(&b.husk(&["delete", "-f", "c"]));
    b.assert_gone("c");
}

/// A detached exec waited for a joiner that never got anywhere (frozen
/// here, in a paused container it was told to ignore) for ever, and no
/// signal came to end it. Each step is bounded now (HUSK_SETUP_TIMEOUT): past
/// it, exec fails, detached or not, and its program never runs.
#[test]
fn an_exec_whose_process_makes_no_progress_fails_within_the_setup_bound() {
    let b = running_with_room_for_a_witness("exec-stalled");
    let witness = "/tmp/exec-stalled-ran";
    for detach in [true, false] {
        assert_ok(&b.husk(&["pause", "c"]));
        let mut args = vec!["exec", "--ignore-paused"];
        if detach {
            args.push("-d");
        }
        args.extend(["c", "touch", witness]);
        let mut cmd = b.husk_command(&args);
        cmd.env("HUSK_SETUP_TIMEOUT", "2").stdin(std::process::Stdio::null());
        let begun = Instant::now();
        let o = run_with_timeout(&mut cmd, Duration::from_secs(30));
        assert!(
            !o.status.success(),
            "exec (detach {detach}) into a frozen container succeeded"
        );
        let err = stderr(&o);
        assert!(
            err.contains("exec process made no progress within 2s"),
            "detach {detach}: {err}"
        );
        assert!(
            begun.elapsed() < Duration::from_secs(20),
            "exec took {:?}",
            begun.elapsed()
        );
        assert_ok(&b.husk(&["resume", "c"]));
        std::thread::sleep(Duration::from_millis(300));
        assert_witness_absent(&b, witness);
        let o = b.husk(&["ps", "--format", "json", "c"]);
        let pids: Vec<i64> = serde_json::from_slice(&o.stdout).unwrap();
        assert_eq!(pids.len(), 1, "processes left in the container: {pids:?}");
    }
    assert_witness_can_be_made(&b, witness);
    assert_ok(&b.husk(&["delete", "-f", "c"]));
    b.assert_gone("c");
}

/// A running container `c` (its init sleeps) whose root is writable, for
/// an exec's witness file (husk spec's root is read-only).
fn running_with_room_for_a_witness(name: &str) -> Bundle {
    let mut b = Bundle::new(name);
    b.config["root"]["readonly"] = json!(false);
    b.script("sleep 1000");
    assert_ok(&b.husk(&["run", "-d", "--bundle", b.dir.to_str().unwrap(), "c"]));
    b
}

/// The program of an exec that failed did not make `witness` in `c`.
#[track_caller]
fn assert_witness_absent(b: &Bundle, witness: &str) {
    let test = format!("test -e {witness} && echo ran || echo not");
    let o = b.husk(&["exec", "c", "sh", "-c", &test]);
    assert_eq!(stdout(&o).trim(), "not", "the program of a failed exec ran");
}

/// `witness` can be made in `c`: its absence said something.
#[track_caller]
fn assert_witness_can_be_made(b: &Bundle, witness: &str) {
    assert_ok(&b.husk(&["exec", "c", "touch", witness]));
}

/// A SIGTERM that comes while the exec process is on its way to execve
/// (strace holds its execve for 1.5 s) is passed on to it once it runs, as
/// before: the first answer to review 42's F3 killed it instead (and in
/// the outside review of that, 33 of 460 runs), or left it running, orphaned
/// (5 of 460), when the joiner had cloned it unannounced.
#[test]
fn a_sigterm_before_the_exec_process_runs_still_reaches_it() {
    let mut b = Bundle::new("exec-early-term");
    b.script("sleep 1000");
    assert_ok(&b.husk(&["run", "-d", "--bundle", b.dir.to_str().unwrap(), "c"]));
    let err = b.dir.join("exec.err");
    // No long child: strace follows it and waits for it to end.
    let script = "trap 'exit 7' TERM; while :; do sleep 0.1; done";
    let stderr = std::fs::File::create(&err).unwrap();
    let status = exec_termed_in_its_execve(&b, &["exec", "c", "sh", "-c", script], 1500, stderr.into());
    let text = std::fs::read_to_string(&err).unwrap();
    assert!(!text.contains("came, and"), "{text}");
    assert!(
        matches!(status.code(), Some(7 | 143)),
        "the process did not get the SIGTERM: {status} {text}"
    );
    let deadline = Instant::now() + Duration::from_secs(5);
    while b.processes().len() > 1 {
        assert!(
            Instant::now() < deadline,
            "the exec left a process: {:?}",
            b.processes()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_ok(&b.husk(&["delete", "-f", "c"]));
    b.assert_gone("c");
}

/// Runs husk `args` (an exec) under strace, which holds the execve of its
/// children for `delay_ms`, and sends husk SIGTERM once a child is held
/// there; how strace (which ends as husk did) ended.
fn exec_termed_in_its_execve(
    b: &Bundle,
    args: &[&str],
    delay_ms: u64,
    stderr: std::process::Stdio,
) -> std::process::ExitStatus {
    let delay = format!("inject=execve:delay_enter={}", delay_ms * 1000);
    let mut exec = b
        .husk_under_strace(
            &["-f", "-qq", "-o", "/dev/null", "-e", "trace=execve", "-e", &delay],
            args,
        )
        .stdout(std::process::Stdio::null())
        .stderr(stderr)
        .spawn()
        .unwrap();
    let husk = husk_holding_a_child_in_execve(&exec);
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(husk as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    wait_within(&mut exec, Duration::from_secs(20), "exec after SIGTERM")
}

/// The pid of the husk that `strace` runs, once a child of it is held in
/// execve (x86-64 number 59) by strace's delay.
fn husk_holding_a_child_in_execve(strace: &std::process::Child) -> u32 {
    let children = |pid: u32| -> Vec<u32> {
        let list = std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).unwrap_or_default();
        list.split_whitespace().filter_map(|p| p.parse().ok()).collect()
    };
    let in_execve = |pid: &u32| {
        let syscall = std::fs::read_to_string(format!("/proc/{pid}/syscall")).unwrap_or_default();
        syscall.split(' ').next() == Some("59")
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(&husk) = children(strace.id()).first() {
            if children(husk).iter().any(in_execve) {
                return husk;
            }
        }
        assert!(Instant::now() < deadline, "the exec process never reached its execve");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// A detached exec ended by a signal while its process was on its way to
/// execve (strace holds it there for 3 s) died and left that process, which
/// ran the program once let go, though exec had not said it started (review
/// 51b L2, review 52 F7). The exec now ends its processes, then dies of the
/// signal as before.
#[test]
fn a_detached_exec_ended_by_a_signal_leaves_no_process_to_run_later() {
    let b = running_with_room_for_a_witness("exec-d-ended");
    let witness = "/tmp/exec-d-ended-ran";
    let begun = Instant::now();
    let args = ["exec", "-d", "c", "touch", witness];
    let status = exec_termed_in_its_execve(&b, &args, 3000, std::process::Stdio::null());
    assert!(
        std::os::unix::process::ExitStatusExt::signal(&status) == Some(libc::SIGTERM) || status.code() == Some(143),
        "exec -d did not die of the SIGTERM: {status}"
    );
    // Past the delay, when a process left would have run the program.
    std::thread::sleep(Duration::from_secs(4).saturating_sub(begun.elapsed()));
    assert_witness_absent(&b, witness);
    assert_eq!(b.processes().len(), 1, "processes left: {:?}", b.processes());
    assert_witness_can_be_made(&b, witness);
    assert_ok(&b.husk(&["delete", "-f", "c"]));
    b.assert_gone("c");
}

/// The status fields of `pid` named `names`, as "Name:\tvalue" lines.
fn status_fields(pid: u32, names: &[&str]) -> String {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let wanted = |l: &&str| names.iter().any(|n| l.starts_with(&format!("{n}:")));
    status.lines().filter(wanted).collect::<Vec<_>>().join("\n")
}

/// An exec process is seen in the container's pid namespace from its clone
/// on. With no_new_privs its filter was loaded by the exec process itself,
/// just before execve: until then a container process that may ptrace it
/// (CAP_SYS_PTRACE, no user namespace, a profile that allows ptrace, as
/// Docker's) seized it and made it run a program of its own without the
/// filter (review 54 F1). The joiner loads it before the clone now. Held
/// deterministically: the exec process looks its HOME up in an /etc that a
/// FUSE filesystem never answers, before its execve.
#[test]
fn an_exec_process_is_born_under_its_seccomp_filter() {
    let mut b = Bundle::new("exec-born-filtered");
    let fuse = HangingFuse::mount(&b, b.dir.join("fuse"));
    let source = fuse.mountpoint.to_str().unwrap().to_string();
    b.config["mounts"]
        .as_array_mut()
        .unwrap()
        .push(json!({"destination": "/etc", "type": "bind", "source": source, "options": ["rbind"]}));
    // The init finds its HOME in its env, and so never looks at /etc.
    b.config["process"]["env"]
        .as_array_mut()
        .unwrap()
        .push(json!("HOME=/root"));
    b.config["process"]["args"] = json!(["sleep", "100"]);
    b.save();
    assert_ok(&b.husk(&["run", "-d", "--bundle", b.dir.to_str().unwrap(), "c"]));
    let process = json!({"args": ["true"], "cwd": "/", "user": {"uid": 0, "gid": 0}, "env": ["PATH=/bin"], "noNewPrivileges": true});
    let file = b.dir.join("process.json");
    std::fs::write(&file, process.to_string()).unwrap();
    let mut exec = b.husk_command(&["exec", "--process", file.to_str().unwrap(), "c"]);
    let mut exec = exec
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();

    let deadline = Instant::now() + Duration::from_secs(10);
    let waiting =
        |pid: &u32| std::fs::read_to_string(format!("/proc/{pid}/wchan")).is_ok_and(|w| w == "request_wait_answer");
    let exec_process = loop {
        let children = std::fs::read_to_string(format!("/proc/{0}/task/{0}/children", exec.id())).unwrap_or_default();
        let found = children.split_whitespace().filter_map(|p| p.parse().ok()).find(waiting);
        if found.is_some() || Instant::now() > deadline {
            break found;
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let seen = exec_process.map(|pid| status_fields(pid, &["NoNewPrivs", "Seccomp"]));
    drop(fuse);
    let exited = wait_within(&mut exec, COMMAND_TIMEOUT, "husk exec");
    assert_ok(&b.husk(&["delete", "-f", "c"]));
    b.assert_gone("c");
    let seen = seen.expect("the exec process never came to look at /etc/passwd");
    assert_eq!(
        seen, "NoNewPrivs:\t1\nSeccomp:\t2",
        "the exec process before its execve"
    );
    assert!(
        exited.success(),
        "the exec of true failed once /etc went away: {exited}"
    );
}

/// Takes `name` out of every rule of the seccomp profile `seccomp` (a rule
/// left with no name goes too): the profile's default action applies to it.
fn drop_syscall(seccomp: &mut serde_json::Value, name: &str) {
    let rules = seccomp["syscalls"].as_array_mut().unwrap();
    for rule in rules.iter_mut() {
        if let Some(names) = rule["names"].as_array_mut() {
            names.retain(|n| n != name);
        }
    }
    rules.retain(|r| r["names"].as_array().is_none_or(|n| !n.is_empty()));
}

/// exec's joiner clones the exec process under the container's filter
/// (review 54 F1): a profile that refuses clone3 with EPERM (not ENOSYS, on
/// which husk already fell back to clone) failed every exec with "clone
/// exec process: Operation not permitted" (review 54b F2).
#[test]
fn exec_works_under_a_profile_that_refuses_clone3_with_eperm() {
    let mut b = Bundle::new("exec-clone3-eperm");
    let seccomp = &mut b.config["linux"]["seccomp"];
    drop_syscall(seccomp, "clone3");
    seccomp["syscalls"]
        .as_array_mut()
        .unwrap()
        .push(json!({"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}));
    b.config["process"]["args"] = json!(["sleep", "100"]);
    b.save();
    assert_ok(&b.husk(&["run", "-d", "--bundle", b.dir.to_str().unwrap(), "c"]));
    let o = b.husk(&["exec", "c", "echo", "exec-ran"]);
    assert_ok(&b.husk(&["delete", "-f", "c"]));
    b.assert_gone("c");
    assert_ok(&o);
    assert_eq!(stdout(&o), "exec-ran\n");
}

/// An exec process runs under the container's filter from its clone (review
/// 54 F1): a profile that kills on setsid ended it before its execve, and
/// husk took the closed channel for the execve: `exec` exited 159 with no
/// word (review 54b F2). It says why now.
#[test]
fn an_exec_process_its_filter_kills_before_execve_says_so() {
    let mut b = Bundle::new("exec-killed-by-filter");
    let seccomp = &mut b.config["linux"]["seccomp"];
    seccomp["defaultAction"] = json!("SCMP_ACT_KILL_PROCESS");
    drop_syscall(seccomp, "setsid");
    b.config["process"]["args"] = json!(["sleep", "100"]);
    b.save();
    let ran = b.husk(&["run", "-d", "--bundle", b.dir.to_str().unwrap(), "c"]);
    let o = b.husk(&["exec", "c", "true"]);
    assert_ok(&b.husk(&["delete", "-f", "c"]));
    b.assert_gone("c");
    assert_ok(&ran);
    assert!(!o.status.success(), "exec succeeded: {}", stderr(&o));
    let err = stderr(&o);
    assert_eq!(err.lines().count(), 1, "one line: {err}");
    assert!(
        err.contains("the exec process ended by signal 31 before its program ran (does linux.seccomp allow"),
        "{err}"
    );
}

/// A seccomp agent at `path` for a container and one exec: it takes the
/// init's notify fd, then the exec's, and answers the notifications of both,
/// letting them through (SECCOMP_USER_NOTIF_FLAG_CONTINUE), until it has
/// answered a mkdir or mkdirat of the exec's filter with EXDEV. Returns the
/// exec's message to the agent and the pid the mkdir came from. Bounded:
/// 20 s without a word from husk or a notification ends it.
fn exdev_agent(path: &std::path::Path) -> std::thread::JoinHandle<Result<(serde_json::Value, u32), String>> {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    use std::os::fd::AsFd;
    let listener = std::os::unix::net::UnixListener::bind(path).unwrap();
    std::thread::spawn(move || {
        let mut notify: Vec<std::os::fd::OwnedFd> = Vec::new();
        let mut exec_message = None;
        loop {
            let mut fds = vec![PollFd::new(listener.as_fd(), PollFlags::POLLIN)];
            fds.extend(notify.iter().map(|fd| PollFd::new(fd.as_fd(), PollFlags::POLLIN)));
            if !poll(&mut fds, PollTimeout::from(20_000u16)).is_ok_and(|n| n > 0) {
                return Err(format!(
                    "nothing from husk or a filter within 20 s ({} fds taken)",
                    notify.len()
                ));
            }
            let ready: Vec<bool> = fds.iter().map(|f| f.any().unwrap_or(false)).collect();
            drop(fds);
            if ready[0] {
                let (message, fd) = take_notify_fd(&listener)?;
                if !notify.is_empty() {
                    exec_message = Some(message);
                }
                notify.push(fd);
            }
            for (i, fd) in notify
                .iter()
                .enumerate()
                .filter(|(i, _)| ready.get(i + 1) == Some(&true))
            {
                let (pid, mkdir) = answer_one(fd, |nr| nr == libc::SYS_mkdir || nr == libc::SYS_mkdirat, |_| false)?;
                if mkdir && i == 1 {
                    return Ok((exec_message.take().unwrap_or_default(), pid));
                }
            }
        }
    })
}

/// Accepts one connection of husk's: its message and the notify fd with it.
fn take_notify_fd(
    listener: &std::os::unix::net::UnixListener,
) -> Result<(serde_json::Value, std::os::fd::OwnedFd), String> {
    use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};
    use std::os::fd::{FromRawFd, OwnedFd};
    let (stream, _) = listener.accept().map_err(|e| e.to_string())?;
    let mut buf = vec![0u8; 8192];
    let mut space = nix::cmsg_space!([std::os::fd::RawFd; 1]);
    let mut iov = [std::io::IoSliceMut::new(&mut buf)];
    let msg =
        recvmsg::<()>(stream.as_raw_fd(), &mut iov, Some(&mut space), MsgFlags::empty()).map_err(|e| e.to_string())?;
    let fd = msg
        .cmsgs()
        .map_err(|e| e.to_string())?
        .find_map(|c| match c {
            ControlMessageOwned::ScmRights(fds) => fds.first().copied(),
            _ => None,
        })
        .ok_or("no fd")?;
    let n = msg.bytes;
    // SAFETY: the fd just received is ours alone.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    Ok((serde_json::from_slice(&buf[..n]).map_err(|e| e.to_string())?, fd))
}

/// Answers the notification waiting on `notify`: EXDEV for a syscall that
/// `refused` picks, success without running it for one `faked` picks, else
/// let through. Returns the caller's pid and whether it was refused.
fn answer_one(
    notify: &std::os::fd::OwnedFd,
    refused: impl Fn(i64) -> bool,
    faked: impl Fn(i64) -> bool,
) -> Result<(u32, bool), String> {
    // struct seccomp_notif (80 bytes) and seccomp_notif_resp (24 bytes).
    const RECV: u64 = 0xc050_2100;
    const SEND: u64 = 0xc018_2101;
    const CONTINUE: u64 = 1 << 32;
    let mut request = [0u64; 10];
    // SAFETY: the kernel writes one struct seccomp_notif into `request`.
    if unsafe { libc::ioctl(notify.as_raw_fd(), RECV as _, request.as_mut_ptr()) } != 0 {
        return Err(format!("NOTIF_RECV: {}", std::io::Error::last_os_error()));
    }
    let (id, pid, nr) = (request[0], request[1] as u32, request[2] as u32 as i64);
    let refuse = refused(nr);
    // {id, val, error, flags}: error and flags share the last word.
    let last = match (refuse, faked(nr)) {
        (true, _) => (-libc::EXDEV) as u32 as u64,
        (false, true) => 0,
        (false, false) => CONTINUE,
    };
    let response: [u64; 3] = [id, 0, last];
    // SAFETY: the kernel reads one struct seccomp_notif_resp.
    if unsafe { libc::ioctl(notify.as_raw_fd(), SEND as _, response.as_ptr()) } != 0 {
        return Err(format!("NOTIF_SEND: {}", std::io::Error::last_os_error()));
    }
    Ok((pid, refuse))
}

/// Container "c" of `b` (whose profile sends mkdir to the agent at `sock`)
/// runs, and an exec of `mkdir` in it must fail with the EXDEV of
/// [`exdev_agent`]. Returns the exec's message to the agent, the pid the
/// mkdir came from and the init's pid; the container is gone.
fn mkdir_asks_an_exdev_agent(b: &mut Bundle, sock: &std::path::Path) -> (serde_json::Value, u32, serde_json::Value) {
    b.script("sleep 100");
    let agent = exdev_agent(sock);
    assert_ok(&b.husk(&["run", "-d", "--bundle", b.dir.to_str().unwrap(), "c"]));
    let mut exec = b.husk_command(&["exec", "c", "mkdir", "/tmp/asked"]);
    let o = run_with_timeout(&mut exec, COMMAND_TIMEOUT);
    let told = agent.join().unwrap();
    let init = b.state("c")["pid"].clone();
    assert_ok(&b.husk(&["delete", "-f", "c"]));
    b.assert_gone("c");
    let (message, asker) = told.unwrap_or_else(|e| panic!("agent: {e}; exec: {}", stderr(&o)));
    assert!(stderr(&o).contains("Invalid cross-device link"), "{}", stderr(&o));
    (message, asker, init)
}

/// An exec process under a profile with a listener: its filter's notify
/// fd goes to the agent as the init's does, with the container's state
/// (runc's message for exec). husk dropped it, and every notified call of
/// the exec process failed with ENOSYS, the agent never asked (review 54b F5).
#[test]
fn an_exec_processs_notified_calls_go_to_the_agent() {
    let mut b = Bundle::new("exec-notify");
    let sock = b.dir.join("agent.sock");
    b.config["linux"]["seccomp"] = json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "listenerPath": sock,
        "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_NOTIFY"}]
    });
    let (message, asker, init) = mkdir_asks_an_exdev_agent(&mut b, &sock);
    assert_eq!(message["fds"], json!(["seccompFd"]));
    assert_eq!(message["state"]["status"], "running");
    assert_eq!(message["pid"], init);
    assert_ne!(
        json!(asker),
        init,
        "the notification came from the init, not the exec process"
    );
}

/// Without no_new_privs the joiner loads a listener's filter while it still
/// has husk's rights, then drops them: capset and the rest are calls the
/// agent may be asked to answer, and the joiner made them before it had
/// sent the notify fd, so it waited on itself and every exec hung (review
/// 55 F2). It hands the fd over before anything else now.
#[test]
fn an_exec_processs_joiner_hands_the_fd_over_before_its_notified_calls() {
    let mut b = Bundle::new("exec-notify-capset");
    let sock = b.dir.join("agent.sock");
    b.config["process"]["noNewPrivileges"] = json!(false);
    b.config["linux"]["seccomp"] = json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "listenerPath": sock,
        "syscalls": [{"names": ["mkdir", "mkdirat", "capset", "setresuid", "setgroups"], "action": "SCMP_ACT_NOTIFY"}]
    });
    mkdir_asks_an_exdev_agent(&mut b, &sock);
}

/// The exec process is cloned only once the agent has the notify fd: with
/// an agent that never read it, `exec` failed after its 10 s, but the
/// program had run meanwhile, its notified calls failing with ENOSYS (review
/// 55 F3; runc waits for its parent's word too).
#[test]
fn an_exec_whose_agent_never_takes_the_fd_runs_nothing() {
    let (mut b, out) = {
        let mut b = Bundle::new("exec-notify-unread");
        let out = b.dir.join("out");
        std::fs::create_dir_all(&out).unwrap();
        b.config["mounts"]
            .as_array_mut()
            .unwrap()
            .push(json!({"destination": "/out", "type": "bind", "source": out, "options": ["rbind"]}));
        (b, out)
    };
    let sock = b.dir.join("agent.sock");
    b.config["linux"]["seccomp"] = json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "listenerPath": sock,
        "listenerMetadata": "M".repeat(3_000_000),
        "syscalls": [{"names": ["mkdirat"], "action": "SCMP_ACT_NOTIFY"}]
    });
    b.script("sleep 100");
    b.save();
    // Reads the init's message whole, takes the exec's connection and never reads it.
    let listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
    let agent = std::thread::spawn(move || {
        let (mut init, _) = listener.accept().unwrap();
        let _ = std::io::Read::read_to_end(&mut init, &mut Vec::new());
        let (exec, _) = listener.accept().unwrap();
        std::thread::sleep(Duration::from_secs(12));
        drop(exec);
    });
    assert_ok(&b.husk(&["run", "-d", "--bundle", b.dir.to_str().unwrap(), "c"]));
    let mut exec = b.husk_command(&["exec", "c", "sh", "-c", "echo ran > /out/ran"]);
    let o = run_with_timeout(&mut exec, COMMAND_TIMEOUT);
    agent.join().unwrap();
    let ran = out.join("ran").exists();
    assert_ok(&b.husk(&["delete", "-f", "c"]));
    b.assert_gone("c");
    assert!(!o.status.success(), "exec succeeded with an agent that never read");
    assert!(stderr(&o).contains("did not read it within 10s"), "{}", stderr(&o));
    assert!(!ran, "the program ran before the agent had the fd");
}

/// With no_new_privs a listener's filter is loaded last, after the ids and
/// capabilities, as every other filter: loaded before them, it let an agent
/// that answered setresuid, setgroups and capset with a success it never
/// performed run the program as root with every capability (review 55b F1).
#[test]
fn an_agent_cannot_fake_the_exec_processs_user() {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    use std::os::fd::AsFd;
    let mut b = Bundle::new("exec-notify-fake");
    let sock = b.dir.join("agent.sock");
    assert_eq!(b.config["process"]["noNewPrivileges"], json!(true), "husk spec's");
    let ids = ["setuid", "setresuid", "setgid", "setresgid", "setgroups", "capset"];
    b.config["linux"]["seccomp"] = json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "listenerPath": sock,
        "syscalls": [{"names": ids, "action": "SCMP_ACT_NOTIFY"}]
    });
    b.script("sleep 100");
    // Fakes every notified call, on both filters, until 3 s go by without one.
    let listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
    let agent = std::thread::spawn(move || -> Result<usize, String> {
        let (mut notify, mut taken, mut faked) = (Vec::new(), 0, 0);
        loop {
            let mut fds = vec![PollFd::new(listener.as_fd(), PollFlags::POLLIN)];
            fds.extend(
                notify
                    .iter()
                    .map(|fd: &std::os::fd::OwnedFd| PollFd::new(fd.as_fd(), PollFlags::POLLIN)),
            );
            let wait = if taken < 2 { 20_000u16 } else { 3_000 };
            if !poll(&mut fds, PollTimeout::from(wait)).is_ok_and(|n| n > 0) {
                return if taken < 2 {
                    Err("husk sent no second fd".into())
                } else {
                    Ok(faked)
                };
            }
            let events: Vec<PollFlags> = fds.iter().map(|f| f.revents().unwrap_or(PollFlags::empty())).collect();
            drop(fds);
            let mut gone = Vec::new();
            for (i, fd) in notify.iter().enumerate() {
                let event = events[i + 1];
                if event.contains(PollFlags::POLLIN) && answer_one(fd, |_| false, |_| true).is_ok() {
                    faked += 1;
                } else if event.contains(PollFlags::POLLHUP) {
                    gone.push(i); // every process of that filter has exited
                }
            }
            for i in gone.into_iter().rev() {
                notify.remove(i);
            }
            if events[0].contains(PollFlags::POLLIN) {
                notify.push(take_notify_fd(&listener)?.1);
                taken += 1;
            }
        }
    });
    assert_ok(&b.husk(&["run", "-d", "--bundle", b.dir.to_str().unwrap(), "c"]));
    let o = b.husk(&[
        "exec",
        "--user",
        "1000:1000",
        "c",
        "sh",
        "-c",
        "id -u; grep CapEff /proc/self/status",
    ]);
    let told = agent.join().unwrap();
    assert_ok(&b.husk(&["delete", "-f", "c"]));
    b.assert_gone("c");
    told.unwrap_or_else(|e| panic!("agent: {e}; exec: {}", stderr(&o)));
    assert_ok(&o);
    let out = stdout(&o);
    assert!(out.starts_with("1000\n"), "{out}");
    assert!(out.contains("CapEff:\t0000000000000000"), "{out}");
}

/// husk clones the exec process (and a pod member's process) under the
/// container's filter: a profile under which that clone could seem to
/// return 0 (SCMP_ACT_ERRNO with errnoRet 0, or an agent's answer) made the
/// cloner take itself for the child and run the program in the host's pid
/// namespace (review 55c F1). Such a profile is refused at `create`.
#[test]
fn a_profile_that_could_fake_husks_clone_is_refused() {
    let mut b = Bundle::new("fake-clone");
    b.config["linux"]["seccomp"] = json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": 0}]
    });
    b.script("sleep 100");
    b.create_fails(
        "c",
        "linux.seccomp.syscalls[0]: SCMP_ACT_ERRNO with errnoRet 0 not allowed for clone3",
    );
}

/// The kernel keeps the low 16 bits of an errno: errnoRet 65536 was
/// errno 0, and got past the check above (review 56 F1: exec ran the
/// program in the host's pid namespace, a pod member's init too).
#[test]
fn an_errno_the_kernel_cuts_to_0_is_refused() {
    let mut b = Bundle::new("fake-clone-65536");
    b.config["linux"]["seccomp"] = json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["clone3", "clone"], "action": "SCMP_ACT_ERRNO", "errnoRet": 65536}]
    });
    b.script("sleep 100");
    b.create_fails(
        "c",
        "linux.seccomp.syscalls[0].errnoRet: 65536 is out of range for SCMP_ACT_ERRNO (at most 4094)",
    );
}
