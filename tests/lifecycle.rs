//! create / start / state / kill / delete / run / list, seen from the outside.

mod common;

use common::*;
use serde_json::Value;
use std::process::Command;
use std::time::Duration;

#[test]
fn create_start_kill_delete() {
    let mut b = Bundle::new("lifecycle");
    b.config["process"]["args"] = serde_json::json!(["sleep", "30"]);
    b.config["annotations"] = serde_json::json!({"org.example.key": "value"});
    b.save();
    let pid_file = b.dir.join("init.pid");
    let o = b.husk(&[
        "create",
        "--bundle",
        b.dir.to_str().unwrap(),
        "--pid-file",
        pid_file.to_str().unwrap(),
        "c1",
    ]);
    assert_ok(&o);

    let state = b.state("c1");
    assert_eq!(state["status"], "created");
    assert_eq!(state["id"], "c1");
    assert_eq!(state["ociVersion"], "1.3.0");
    assert_eq!(state["bundle"], b.dir.to_str().unwrap());
    assert_eq!(state["rootfs"], b.rootfs().to_str().unwrap());
    assert_eq!(state["owner"], "root");
    assert_eq!(state["annotations"]["org.example.key"], "value");
    assert!(state["created"].as_str().unwrap().ends_with('Z'));
    let pid = state["pid"].as_i64().unwrap();
    assert_eq!(std::fs::read_to_string(&pid_file).unwrap(), pid.to_string());
    assert_eq!(b.processes(), vec![pid as i32], "the init waits inside the rootfs");

    assert_ok(&b.husk(&["start", "c1"]));
    assert_eq!(b.status("c1"), "running");
    let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap();
    assert_eq!(comm.trim(), "sleep", "the init became the container's program");

    let again = b.husk(&["start", "c1"]);
    assert!(!again.status.success());
    assert!(stderr(&again).contains("already running"), "{}", stderr(&again));

    let refuse = b.husk(&["delete", "c1"]);
    assert!(!refuse.status.success(), "a running container needs --force");
    assert!(stderr(&refuse).contains("not stopped"), "{}", stderr(&refuse));

    assert_ok(&b.husk(&["kill", "c1", "KILL"]));
    b.wait_status("c1", "stopped");
    assert_eq!(b.state("c1")["pid"], 0);
    let dead = b.husk(&["kill", "c1"]);
    // runc's phrase: containerd's shim takes it for a process already gone.
    assert!(stderr(&dead).contains("container not running"), "{}", stderr(&dead));
    let probe = b.husk(&["kill", "c1", "0"]);
    assert!(stderr(&probe).contains("container not running"), "{}", stderr(&probe));
    let restart = b.husk(&["start", "c1"]);
    assert!(stderr(&restart).contains("stopped"), "{}", stderr(&restart));

    assert_ok(&b.husk(&["delete", "c1"]));
    b.assert_gone("c1");
    let missing = b.husk(&["state", "c1"]);
    assert!(!missing.status.success());
    assert!(
        stderr(&missing).contains("container does not exist: \"c1\""),
        "{}",
        stderr(&missing)
    );
}

#[test]
fn delete_of_a_created_container_needs_no_force() {
    let mut b = Bundle::new("delcreated");
    b.script("sleep 30");
    assert_ok(&b.create("c"));
    assert_ok(&b.husk(&["delete", "c"]));
    b.assert_gone("c");
}

#[test]
fn delete_force_kills_a_running_container() {
    let mut b = Bundle::new("delforce");
    b.script("sleep 30");
    assert_ok(&b.create("c"));
    assert_ok(&b.husk(&["start", "c"]));
    assert_ok(&b.husk(&["delete", "--force", "c"]));
    b.assert_gone("c");
}

#[test]
fn run_exit_codes() {
    let mut b = Bundle::new("exitcodes");
    b.script("exit 0");
    assert_eq!(b.run("a").status.code(), Some(0));
    b.script("exit 3");
    assert_eq!(b.run("b").status.code(), Some(3));
    // Without a pid namespace the shell is not an init, which ignores SIGKILL from inside.
    let ns = b.config["linux"]["namespaces"].as_array_mut().unwrap();
    ns.retain(|n| n["type"] != "pid");
    b.script("kill -9 $$");
    assert_eq!(b.run("c").status.code(), Some(128 + 9));
    for id in ["a", "b", "c"] {
        b.assert_gone(id);
    }
}

#[test]
fn run_detach_then_state_and_delete() {
    let mut b = Bundle::new("detach");
    b.script("sleep 30");
    assert_ok(&b.husk(&["run", "-d", "--bundle", b.dir.to_str().unwrap(), "d"]));
    assert_eq!(b.status("d"), "running");
    assert_ok(&b.husk(&["delete", "-f", "d"]));
    b.assert_gone("d");
}

/// `run` opens the exec fifo before it lets the init go on, so the program
/// may have run and ended before `run` looks at it. Slowed by 300 ms after
/// each send (strace's delay, on husk itself only: the last is "committed"),
/// a foreground `run` still gives the program's exit status, and `run -d`
/// succeeds (it once said "not running" of its own container).
#[test]
fn run_of_a_program_that_ends_before_husk_looks_at_it() {
    let mut b = Bundle::new("endsfirst");
    b.script("exit 7");
    let bundle = b.dir.to_str().unwrap().to_string();
    let slow = ["-o", "/dev/null", "-e", "inject=sendto:delay_exit=300000"];
    let mut fg = b.husk_under_strace(&slow, &["run", "--bundle", &bundle, "fg"]);
    let o = run_with_timeout(&mut fg, COMMAND_TIMEOUT);
    assert_eq!(o.status.code(), Some(7), "{}", stderr(&o));
    b.assert_gone("fg");
    let mut bg = b.husk_under_strace(&slow, &["run", "-d", "--bundle", &bundle, "bg"]);
    assert_ok(&run_with_timeout(&mut bg, COMMAND_TIMEOUT));
    b.delete_once_stopped("bg");
}

/// What `run` needs to start the container (the exec fifo's read end, the
/// init's pidfd) it takes before the init goes on: when that fails, the
/// program has not run.
#[test]
fn run_that_cannot_start_leaves_the_program_unrun() {
    let mut b = Bundle::new("startfails");
    b.config["root"]["readonly"] = serde_json::json!(false);
    b.script("touch /ran");
    let bundle = b.dir.to_str().unwrap().to_string();
    let refuse = ["-o", "/dev/null", "-e", "inject=pidfd_open:error=EMFILE"];
    for detach in [false, true] {
        let id = format!("d{detach}");
        let mut args = vec!["run", "--bundle", &bundle, &id];
        if detach {
            args.insert(1, "-d");
        }
        let o = run_with_timeout(&mut b.husk_under_strace(&refuse, &args), COMMAND_TIMEOUT);
        assert!(!o.status.success(), "{args:?}");
        assert!(stderr(&o).contains("pidfd of container init"), "{}", stderr(&o));
        assert!(!b.rootfs().join("ran").exists(), "{args:?}: the program ran");
        b.assert_gone(&id);
    }
}

/// A caller that ignores SIGCHLD passes that on through exec: husk restores
/// its default, or the kernel would reap the container's process unseen and
/// `run` would wait for it forever.
#[test]
fn run_by_a_caller_that_ignores_sigchld() {
    let mut b = Bundle::new("sigchld-ign");
    b.script("exit 3");
    let mut cmd = b.husk_command(&["run", "--bundle", b.dir.to_str().unwrap(), "c"]);
    // SAFETY: only signal() between fork and exec.
    unsafe {
        std::os::unix::process::CommandExt::pre_exec(&mut cmd, || {
            libc::signal(libc::SIGCHLD, libc::SIG_IGN);
            Ok(())
        });
    }
    let o = run_with_timeout(&mut cmd, COMMAND_TIMEOUT);
    assert_eq!(o.status.code(), Some(3), "{o:?}");
    b.assert_gone("c");
}

/// husk started with stdin, stdout and stderr closed gives them /dev/null
/// before it opens anything (husk has no Rust `main`, so this is its own
/// doing): the container gets /dev/null, not a file husk opened for itself.
#[test]
fn closed_stdio_becomes_dev_null() {
    let mut b = Bundle::new("closed-stdio");
    b.config["root"]["readonly"] = serde_json::json!(false);
    // $(...) is a child: the shell's own fds stay as husk gave them.
    b.script("echo $(readlink /proc/$$/fd/0) $(readlink /proc/$$/fd/1) $(readlink /proc/$$/fd/2) > /stdio.txt");
    let mut cmd = b.husk_command(&["run", "--bundle", b.dir.to_str().unwrap(), "c"]);
    // SAFETY: only close between fork and exec.
    unsafe {
        std::os::unix::process::CommandExt::pre_exec(&mut cmd, || {
            for fd in 0..=2 {
                libc::close(fd);
            }
            Ok(())
        });
    }
    let o = run_with_timeout(&mut cmd, COMMAND_TIMEOUT);
    assert_eq!(o.status.code(), Some(0), "{o:?}");
    let seen = std::fs::read_to_string(b.rootfs().join("stdio.txt")).unwrap();
    assert_eq!(seen, "/dev/null /dev/null /dev/null\n");
    b.assert_gone("c");
}

/// A foreground run passes on what it is sent, signals it has no use for
/// (ALRM) and real-time ones included: one that ended husk instead would
/// leave the container running with no one waiting for it.
#[test]
fn run_forwards_signals_to_the_container() {
    let mut b = Bundle::new("forward");
    for (name, sig) in [("TERM", libc::SIGTERM), ("ALRM", libc::SIGALRM), ("40", 40)] {
        b.script(&format!(
            "trap 'echo got-{name}; exit 7' {name}; echo ready; while :; do sleep 0.05; done"
        ));
        let id = format!("f{sig}");
        let mut cmd = std::process::Command::new(HUSK);
        cmd.arg("--root")
            .arg(&b.root)
            .args(["run", "--bundle", b.dir.to_str().unwrap(), &id]);
        b.tag(&mut cmd);
        cmd.stdout(std::process::Stdio::piped())
            .stdin(std::process::Stdio::null());
        let mut child = cmd.spawn().unwrap();
        let mut out = child.stdout.take().unwrap();
        let mut buf = [0u8; 6];
        std::io::Read::read_exact(&mut out, &mut buf).unwrap();
        assert_eq!(&buf, b"ready\n");
        // SAFETY: signalling the husk process we started.
        unsafe { libc::kill(child.id() as i32, sig) };
        let status = wait_within(&mut child, COMMAND_TIMEOUT, &format!("run sent {name}"));
        // First: a container left running keeps the pipe open.
        assert_eq!(status.code(), Some(7), "{name}: {status:?}");
        let mut rest = String::new();
        std::io::Read::read_to_string(&mut out, &mut rest).unwrap();
        assert_eq!(rest, format!("got-{name}\n"), "{name}");
        b.assert_gone(&id);
    }
}

#[test]
fn kill_accepts_names_numbers_and_realtime_signals() {
    let mut b = Bundle::new("signals");
    // The shell records each signal it gets in a file the test reads.
    b.script(
        "trap 'echo usr1 >> /tmp/sig' USR1; trap 'echo rt3 >> /tmp/sig' 37; \
         trap 'echo hup >> /tmp/sig' HUP; trap 'exit 0' TERM; : > /tmp/ready; while :; do sleep 0.05; done",
    );
    b.config["root"]["readonly"] = Value::Bool(false);
    b.save();
    assert_ok(&b.create("k"));
    assert_ok(&b.husk(&["start", "k"]));
    let sigfile = b.rootfs().join("tmp/sig");
    let wait_for = |path: &std::path::Path, want: &str| {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            let got = std::fs::read_to_string(path).unwrap_or_default();
            if got.contains(want) {
                return;
            }
            assert!(std::time::Instant::now() < deadline, "{want} never arrived: {got:?}");
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
    };
    wait_for(&b.rootfs().join("tmp/ready"), "");
    assert_ok(&b.husk(&["kill", "k", "SIGUSR1"]));
    wait_for(&sigfile, "usr1");
    assert_ok(&b.husk(&["kill", "k", "SIGRTMIN+3"]));
    wait_for(&sigfile, "rt3");
    assert_ok(&b.husk(&["kill", "--all", "k", "1"]));
    wait_for(&sigfile, "hup");
    let bad = b.husk(&["kill", "k", "SIGNOPE"]);
    assert!(!bad.status.success());
    assert!(stderr(&bad).contains("unknown signal \"SIGNOPE\""), "{}", stderr(&bad));
    assert_ok(&b.husk(&["kill", "k"])); // SIGTERM by default
    b.delete_once_stopped("k");
}

#[test]
fn concurrent_creates_of_one_id_let_exactly_one_win() {
    let mut b = Bundle::new("race");
    b.script("sleep 30");
    let dir = b.dir.to_str().unwrap().to_string();
    let root = b.root.clone();
    let handles: Vec<_> = (0..4)
        .map(|_| {
            let (dir, root) = (dir.clone(), root.clone());
            std::thread::spawn(move || {
                let mut cmd = std::process::Command::new(HUSK);
                cmd.arg("--root").arg(root).args(["create", "--bundle", &dir, "same"]);
                cmd.env("HUSK_TEST_BUNDLE", &dir);
                run_with_timeout(&mut cmd, COMMAND_TIMEOUT)
            })
        })
        .collect();
    let outputs: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    let wins = outputs.iter().filter(|o| o.status.success()).count();
    assert_eq!(wins, 1, "{:?}", outputs.iter().map(stderr).collect::<Vec<_>>());
    for o in outputs.iter().filter(|o| !o.status.success()) {
        assert!(stderr(o).contains("already exists"), "{}", stderr(o));
    }
    assert_eq!(b.processes().len(), 1, "only the winner's init exists");
    assert_ok(&b.husk(&["delete", "same"]));
    b.assert_gone("same");
}

/// A bundle whose program, /bin/prog, is a script for a missing interpreter.
fn bundle_whose_program_cannot_run(name: &str) -> Bundle {
    let mut b = Bundle::new(name);
    b.config["root"]["readonly"] = Value::Bool(false);
    b.config["process"]["args"] = serde_json::json!(["/bin/prog"]);
    b.save();
    std::fs::write(b.rootfs().join("bin/prog"), "#!/bin/nonexistent-interpreter\n").unwrap();
    std::fs::set_permissions(
        b.rootfs().join("bin/prog"),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    b
}

#[test]
fn start_reports_an_exec_failure_with_the_path() {
    let b = bundle_whose_program_cannot_run("execfail");
    assert_ok(&b.create("e"));
    let o = b.husk(&["start", "e"]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("exec /bin/prog: No such file or directory"),
        "{}",
        stderr(&o)
    );
    b.delete_once_stopped("e");
}

/// `run` hands its init the exec fifo's write end at the clone (no procfs to
/// reopen it through): an exec failure still comes back through it, in the
/// foreground and detached, and the program finds no fd but its stdio.
#[test]
fn run_reports_an_exec_failure_and_passes_the_program_no_fifo() {
    let mut b = bundle_whose_program_cannot_run("runfifo");
    let bundle = b.dir.to_str().unwrap().to_string();
    for (id, detach) in [("fg", false), ("bg", true)] {
        let mut args = vec!["run", "--bundle", &bundle, id];
        if detach {
            args.insert(1, "-d");
        }
        let o = b.husk(&args);
        assert!(!o.status.success(), "{id}: the exec failed, yet run succeeded");
        assert!(
            stderr(&o).contains("exec /bin/prog: No such file or directory"),
            "{id}: {}",
            stderr(&o)
        );
        b.assert_gone(id);
    }
    // ls's own directory fd is the 4th.
    let listed = b.output_of("ls /proc/self/fd");
    assert_eq!(
        listed.split_whitespace().collect::<Vec<_>>(),
        ["0", "1", "2", "3"],
        "{listed}"
    );
}

/// The spec makes `process` optional at create and has `start` fail then;
/// until that, the init holds no capability.
#[test]
fn a_container_without_process_is_created_and_start_fails() {
    let mut b = Bundle::new("noprocess");
    b.config.as_object_mut().unwrap().remove("process");
    b.save();
    assert_ok(&b.create("n"));
    assert_eq!(b.status("n"), "created");
    let pid = b.state("n")["pid"].as_i64().unwrap();
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    assert!(status.contains("CapEff:\t0000000000000000"), "{status}");
    assert!(status.contains("NoNewPrivs:\t1"), "{status}");
    let o = b.husk(&["start", "n"]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("process: config.json has none"), "{}", stderr(&o));
    b.delete_once_stopped("n");
}

#[test]
fn list_formats() {
    let mut b = Bundle::new("list");
    b.script("sleep 30");
    assert_ok(&b.create("one"));
    assert_ok(&b.create("two"));
    let table = stdout(&b.husk(&["list"]));
    let lines: Vec<&str> = table.lines().collect();
    assert!(
        lines[0].starts_with("ID") && lines[0].contains("STATUS") && lines[0].contains("BUNDLE"),
        "{table}"
    );
    assert!(lines[1].starts_with("one ") && lines[1].contains("created"), "{table}");
    let json: Value = serde_json::from_slice(&b.husk(&["list", "--format", "json"]).stdout).unwrap();
    let ids: Vec<&str> = json
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["one", "two"]);
    assert_eq!(stdout(&b.husk(&["list", "-q"])), "one\ntwo\n");
    for id in ["one", "two"] {
        assert_ok(&b.husk(&["delete", id]));
    }
    b.assert_gone("one");
    b.assert_gone("two");
    assert_eq!(stdout(&b.husk(&["list", "-q"])), "");
}

#[test]
fn a_reused_pid_does_not_make_a_dead_container_look_alive() {
    let mut b = Bundle::new("pidreuse");
    b.script("sleep 30");
    assert_ok(&b.create("r"));
    // Point the saved state at a live process that is not the init (this test).
    let path = b.root.join("r/state.json");
    let mut saved: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    let real = saved["pid"].clone();
    saved["pid"] = Value::from(std::process::id());
    std::fs::write(&path, serde_json::to_vec(&saved).unwrap()).unwrap();
    assert_eq!(b.status("r"), "stopped");
    assert!(
        !b.husk(&["kill", "r", "0"]).status.success(),
        "kill must not reach the impostor"
    );
    saved["pid"] = real;
    std::fs::write(&path, serde_json::to_vec(&saved).unwrap()).unwrap();
    assert_eq!(b.status("r"), "created");
    assert_ok(&b.husk(&["delete", "r"]));
    b.assert_gone("r");
}

/// A container whose init's main thread exits while another thread runs on
/// is still running: it must not look stopped (the leader thread is a zombie),
/// which would also make `kill` and `exec` refuse it.
#[test]
fn an_init_whose_main_thread_exits_is_still_running() {
    let mut b = Bundle::new("leader-exit");
    let src = std::path::Path::new(common::HELPERS).join("leader_exit.c");
    let o = std::process::Command::new("gcc")
        .args(["-static", "-O2", "-pthread", "-o"])
        .arg(b.rootfs().join("bin/leader_exit"))
        .arg(&src)
        .output()
        .expect("gcc must be installed");
    assert!(o.status.success(), "gcc: {}", String::from_utf8_lossy(&o.stderr));
    b.config["process"]["args"] = serde_json::json!(["/bin/leader_exit"]);
    b.save();
    assert_ok(&b.husk(&["run", "-d", "--bundle", b.dir.to_str().unwrap(), "c"]));
    // The saved pid: `state` says 0 for a container it thinks stopped.
    let saved: Value = serde_json::from_slice(&std::fs::read(b.root.join("c/state.json")).unwrap()).unwrap();
    let pid = saved["pid"].as_i64().unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    // Wait until the main thread has exited.
    while !std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| s.contains(") Z ")) {
        assert!(std::time::Instant::now() < deadline, "the main thread never exited");
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let status = b.status("c");
    let kill = b.husk(&["kill", "c", "KILL"]);
    if !kill.status.success() {
        assert_ok(&b.husk(&["delete", "--force", "c"]));
    }
    assert_eq!(status, "running");
    assert_ok(&kill);
    b.delete_once_stopped("c");
}

/// A line `PHASE: STEP (Nus)` of `--debug` among `text`'s lines.
#[track_caller]
fn assert_step(text: &str, step: &str) {
    let line = text
        .lines()
        .find(|l| l.contains(step))
        .unwrap_or_else(|| panic!("no {step:?} step in:\n{text}"));
    let took = line.trim_end_matches('"').rsplit_once(" (").map(|(_, t)| t);
    let micros = took
        .and_then(|t| t.strip_suffix("us)"))
        .and_then(|n| n.parse::<u64>().ok());
    assert!(micros.is_some(), "no duration in {line:?}");
}

/// `--debug` (#17): each step of create, start, exec and delete is logged
/// with its duration in microseconds, on husk's stderr and in `--log` in both
/// formats. The init's and exec's joiner's lines reach husk over their channel,
/// so that they are logged even after those processes closed every fd of
/// husk's (the log file among them); without `--debug` nothing is printed.
#[test]
fn debug_logs_every_step_with_its_duration() {
    let mut b = Bundle::new("debug-steps");
    b.script("sleep 30");
    let dir = b.dir.to_str().unwrap().to_string();
    for format in ["json", "text"] {
        let log = b.dir.join(format!("debug-{format}.log"));
        let log = log.to_str().unwrap();
        let debug = |args: &[&str]| {
            let o = b.husk(&[&["--debug", "--log", log, "--log-format", format], args].concat());
            assert_ok(&o);
            stderr(&o)
        };
        let err = debug(&["create", "--bundle", &dir, "c"]);
        for step in [
            "create: config loaded",
            "create: cgroup made",
            "create: init cloned",
            "init: in its cgroup",
            "init: mounts",
            "init: pivot_root",
            "init: fds closed",
            "init: confined",
            "create: init ready",
            "create: state committed",
        ] {
            assert_step(&err, step);
        }
        assert!(err.lines().all(|l| l.starts_with("husk: ")), "{err}");
        assert_step(&debug(&["start", "c"]), "start: init released");
        let err = debug(&["exec", "c", "true"]);
        for step in [
            "exec: init's namespaces opened",
            "exec: joiner cloned",
            "exec: joiner: in the container's cgroups",
            "exec: joiner: confined",
            "exec: program exec'd",
        ] {
            assert_step(&err, step);
        }
        let err = debug(&["delete", "-f", "c"]);
        for step in [
            "delete: state loaded",
            "delete: cgroup removed",
            "delete: state removed",
        ] {
            assert_step(&err, step);
        }
        b.assert_gone("c");
        let text = std::fs::read_to_string(log).unwrap();
        let messages: Vec<String> = match format {
            "json" => text
                .lines()
                .map(|l| {
                    serde_json::from_str::<Value>(l).expect("a JSON line")["msg"]
                        .as_str()
                        .unwrap()
                        .to_string()
                })
                .collect(),
            _ => text.lines().map(|l| l.to_string()).collect(),
        };
        let messages = messages.join("\n");
        // Logged after the init and the joiner closed husk's fds.
        assert_step(&messages, "init: confined");
        assert_step(&messages, "exec: joiner: confined");
        assert_step(&messages, "delete: state removed");
    }
    for args in [
        &["create", "--bundle", &dir, "quiet"][..],
        &["start", "quiet"],
        &["exec", "quiet", "true"],
        &["delete", "-f", "quiet"],
    ] {
        let o = b.husk(args);
        assert_ok(&o);
        assert_eq!(stderr(&o), "", "{args:?} printed without --debug");
    }
    b.assert_gone("quiet");
}

/// The fds of process `pid`: number -> what it points at.
fn fd_table(pid: i64) -> std::collections::BTreeMap<i32, String> {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .flatten()
        .map(|e| {
            let n = e.file_name().to_str().unwrap().parse().unwrap();
            (n, std::fs::read_link(e.path()).unwrap().display().to_string())
        })
        .collect()
}

/// Stdio partly closed when husk starts, with fds passed by --preserve-fds
/// and LISTEN_FDS: the container (run and exec'd process alike) gets exactly
/// stdio, a closed one as /dev/null, and the passed fds at their numbers;
/// never a /dev/null or a file of husk's anywhere else.
#[test]
fn partly_closed_stdio_with_passed_fds_gives_the_container_exactly_those() {
    use std::os::fd::AsRawFd;
    use std::os::unix::process::CommandExt;
    let mut b = Bundle::new("stdio-fds");
    b.script("sleep 30");
    let file = |name: &str| {
        let path = b.dir.join(name);
        std::fs::write(&path, name).unwrap();
        path
    };
    let stdio = ["in", "out", "err"].map(file);
    let passed = [file("passed3"), file("passed4")];
    let opened: Vec<std::fs::File> = passed.iter().map(|p| std::fs::File::open(p).unwrap()).collect();
    let raw: Vec<i32> = opened.iter().map(|f| f.as_raw_fd()).collect();
    let cases: [(&[i32], Option<&str>, &[&str]); 4] = [
        (&[0], None, &["--preserve-fds", "2"]),
        (&[1], Some("1"), &["--preserve-fds", "1"]),
        (&[2], Some("2"), &[]),
        (&[0, 1, 2], None, &["--preserve-fds", "2"]),
    ];
    for (n, (closed, listen, flags)) in cases.into_iter().enumerate() {
        let id = format!("c{n}");
        let want: std::collections::BTreeMap<i32, String> = (0..3)
            .map(|fd| {
                let path = if closed.contains(&fd) {
                    "/dev/null".into()
                } else {
                    stdio[fd as usize].display().to_string()
                };
                (fd, path)
            })
            .collect();
        let preserve = flags.last().map_or(0, |f| f.parse::<usize>().unwrap());
        for command in ["run", "exec"] {
            // exec passes no LISTEN_FDS, as runc's does not.
            let listened = if command == "run" {
                listen.map_or(0, |l| l.parse().unwrap())
            } else {
                0
            };
            let mut want = want.clone();
            for (i, path) in passed.iter().take(listened + preserve).enumerate() {
                want.insert(3 + i as i32, path.display().to_string());
            }
            let mut cmd = Command::new(HUSK);
            cmd.arg("--root").arg(&b.root);
            if command == "run" {
                cmd.args(["run", "-d", "--bundle", b.dir.to_str().unwrap()])
                    .args(flags)
                    .arg(&id);
            } else {
                cmd.args(["exec", "-d"]).args(flags).args([id.as_str(), "sleep", "30"]);
            }
            if let Some(l) = listen {
                cmd.env("LISTEN_FDS", l).env("LISTEN_PID", "1");
            }
            b.tag(&mut cmd);
            cmd.stdin(std::fs::File::open(&stdio[0]).unwrap());
            cmd.stdout(std::fs::OpenOptions::new().append(true).open(&stdio[1]).unwrap());
            cmd.stderr(std::fs::OpenOptions::new().append(true).open(&stdio[2]).unwrap());
            let (to_close, raw) = (closed.to_vec(), raw.clone());
            // SAFETY: only fcntl, dup2, close_range and close between fork and exec.
            unsafe {
                cmd.pre_exec(move || {
                    // Out of the way first: the files may have any numbers
                    // (other tests open files meanwhile), 3 and 4 among them.
                    let a = libc::fcntl(raw[0], libc::F_DUPFD, 256);
                    let b = libc::fcntl(raw[1], libc::F_DUPFD, 256);
                    libc::syscall(libc::SYS_close_range, 3u32, 255u32, 0u32);
                    libc::dup2(a, 3);
                    libc::dup2(b, 4);
                    libc::syscall(libc::SYS_close_range, 5u32, u32::MAX, 0u32);
                    for fd in &to_close {
                        libc::close(*fd);
                    }
                    Ok(())
                });
            }
            let o = run_with_timeout_keeping_stdio(&mut cmd);
            assert!(o.success(), "{command} {closed:?} {flags:?}: {o}");
            let pid = if command == "run" {
                b.state(&id)["pid"].as_i64().unwrap()
            } else {
                // The exec'd sleep: the one process of the container besides the init.
                let init = b.state(&id)["pid"].as_i64().unwrap();
                let others: Vec<i64> = b
                    .processes()
                    .into_iter()
                    .map(i64::from)
                    .filter(|p| *p != init)
                    .collect();
                assert_eq!(others.len(), 1, "{others:?}");
                others[0]
            };
            assert_eq!(
                fd_table(pid),
                want,
                "{command} with {closed:?} closed, {flags:?}, LISTEN_FDS {listen:?}"
            );
        }
        assert_ok(&b.husk(&["delete", "-f", &id]));
        b.assert_gone(&id);
    }
}

/// Runs `cmd` (stdio already set) within COMMAND_TIMEOUT.
fn run_with_timeout_keeping_stdio(cmd: &mut Command) -> std::process::ExitStatus {
    let mut child = cmd.spawn().unwrap();
    wait_within(&mut child, COMMAND_TIMEOUT, "husk")
}

/// husk ignores SIGPIPE (since e333020 by its own start, no longer Rust's)
/// and a foreground run or exec blocks the signals it forwards: the
/// container's processes start with no signal blocked and none of 1-31
/// ignored. (32 and 33, glibc's own, stay as husk got them: a caller that
/// started husk with glibc's posix_spawn, as std's Command does, leaves them
/// ignored, and glibc's signal() refuses to reset them; runc, started so,
/// leaves 32 ignored too.)
#[test]
fn container_processes_start_with_no_signal_ignored_or_blocked() {
    let mut b = Bundle::new("sigdefault");
    let field = |out: &str, name: &str| -> u64 {
        let line = out
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .unwrap_or_else(|| panic!("{name} in {out}"));
        u64::from_str_radix(line.trim(), 16).unwrap()
    };
    let check = |out: &str, what: &str| {
        assert_eq!(field(out, "SigBlk:"), 0, "{what}: {out}");
        assert_eq!(field(out, "SigIgn:") & 0x7fff_ffff, 0, "{what}: {out}");
    };
    // exec: the fields of the process itself, not of a shell that forks.
    let out = b.output_of("exec grep -E 'SigIgn|SigBlk' /proc/self/status");
    check(&out, "run");
    b.script("sleep 30");
    assert_ok(&b.husk(&["run", "-d", "--bundle", b.dir.to_str().unwrap(), "e"]));
    let o = b.husk(&["exec", "e", "grep", "-E", "SigIgn|SigBlk", "/proc/self/status"]);
    assert_ok(&o);
    check(&stdout(&o), "exec");
    assert_ok(&b.husk(&["delete", "-f", "e"]));
    b.assert_gone("e");
}

/// The real-time signals the C library keeps for itself (glibc 32 and 33,
/// musl 32 to 34) refuse its sigaction: a caller's SIG_IGN of them, which
/// execve keeps, reached an exec'd process through husk (32 and 33 with a
/// glibc husk, 32 to 34 with a musl one).
#[test]
fn reserved_signals_the_caller_ignored_are_not_ignored_in_the_container() {
    let mut b = Bundle::new("sigreserved");
    let ignored = |out: &str| {
        let mask = out
            .trim()
            .strip_prefix("SigIgn:")
            .map(|m| u64::from_str_radix(m.trim(), 16).unwrap());
        assert_eq!(mask, Some(0), "the container's process ignores signals: {out}");
    };
    b.script("exec grep SigIgn /proc/self/status");
    b.save();
    let mut run = b.husk_command(&["run", "--bundle", b.dir.to_str().unwrap(), "r"]);
    let o = run_with_timeout(ignoring_reserved_signals(&mut run), COMMAND_TIMEOUT);
    assert_ok(&o);
    ignored(&stdout(&o));
    b.script("sleep 30");
    assert_ok(&b.husk(&["run", "-d", "--bundle", b.dir.to_str().unwrap(), "e"]));
    let mut exec = b.husk_command(&["exec", "e", "grep", "SigIgn", "/proc/self/status"]);
    let o = run_with_timeout(ignoring_reserved_signals(&mut exec), COMMAND_TIMEOUT);
    assert_ok(&o);
    ignored(&stdout(&o));
    assert_ok(&b.husk(&["delete", "-f", "e"]));
    b.assert_gone("e");
}

/// `cmd`, started with signals 32 to 34 ignored.
fn ignoring_reserved_signals(cmd: &mut Command) -> &mut Command {
    use std::os::unix::process::CommandExt;
    // SAFETY: only rt_sigaction between fork and exec; SIG_IGN needs no
    // restorer, and the kernel reads the 32-byte action (8-byte mask).
    unsafe {
        cmd.pre_exec(|| {
            let ignore: [u64; 4] = [libc::SIG_IGN as u64, 0, 0, 0];
            for sig in 32..=34 {
                libc::syscall(
                    libc::SYS_rt_sigaction,
                    sig,
                    ignore.as_ptr(),
                    std::ptr::null_mut::<u64>(),
                    8usize,
                );
            }
            Ok(())
        })
    }
}

/// Continues a process the test stopped, whatever the test's end.
struct StoppedProcess(i32);

impl StoppedProcess {
    fn stop(pid: u32) -> StoppedProcess {
        // SAFETY: signalling a process the test started.
        assert_eq!(unsafe { libc::kill(pid as i32, libc::SIGSTOP) }, 0);
        StoppedProcess(pid as i32)
    }
}

impl Drop for StoppedProcess {
    fn drop(&mut self) {
        // SAFETY: as in stop.
        unsafe { libc::kill(self.0, libc::SIGCONT) };
    }
}

/// A foreground `run` removes its container when the program ends. If a
/// `delete -f` removed it first and a `create` made another of the same id
/// meanwhile, that one is not the run's to remove.
#[test]
fn a_foreground_run_leaves_a_container_made_anew_under_its_id_alone() {
    let mut b = Bundle::new("made-anew");
    b.script("sleep 30");
    let mut run = b.husk_command(&["run", "--bundle", b.dir.to_str().unwrap(), "c"]);
    run.stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null());
    let mut child = run.spawn().unwrap();
    b.wait_status("c", "running");
    let first = b.state("c")["pid"].as_i64().unwrap();
    {
        // The run cannot see its program end before the new container exists.
        let _stopped = StoppedProcess::stop(child.id());
        assert_ok(&b.husk(&["delete", "-f", "c"]));
        assert_ok(&b.create("c"));
    }
    let status = wait_within(&mut child, COMMAND_TIMEOUT, "run of a deleted container");
    assert_eq!(status.code(), Some(128 + libc::SIGKILL), "{status:?}");
    let second = b.state("c");
    assert_eq!(second["status"], "created");
    assert_ne!(second["pid"].as_i64().unwrap(), first);
    assert_ok(&b.husk(&["delete", "c"]));
    b.assert_gone("c");
}

/// The created container's init is pid 1 of its pid namespace, which drops
/// the signals it has no handler for: husk 0.1.0 (4491cad) lost a `kill TERM`
/// of a created container, which stayed created and ran at `start` (runc's
/// init dies of it; `podman stop` of a created container counts on that).
#[test]
fn a_created_container_ends_on_a_signal_that_ends_a_process() {
    let mut b = Bundle::new("kill-created");
    b.config["process"]["args"] = serde_json::json!(["sleep", "30"]);
    b.save();
    // 32 and 33: glibc's own, which its sigaction refuses (before: lost).
    for sig in ["TERM", "HUP", "RTMIN+3", "32", "33"] {
        assert_ok(&b.create("k"));
        assert_ok(&b.husk(&["kill", "k", sig]));
        b.wait_status("k", "stopped");
        assert!(!b.husk(&["start", "k"]).status.success(), "started after {sig}");
        assert_ok(&b.husk(&["delete", "k"]));
    }
    // A signal that ends nothing by default still ends nothing, and the
    // program starts with no handler of husk's.
    assert_ok(&b.create("k"));
    assert_ok(&b.husk(&["kill", "k", "WINCH"]));
    assert_ok(&b.husk(&["kill", "k", "0"]));
    std::thread::sleep(std::time::Duration::from_millis(200));
    assert_eq!(b.status("k"), "created");
    assert_ok(&b.husk(&["start", "k"]));
    let pid = b.state("k")["pid"].as_i64().unwrap();
    b.wait_status("k", "running");
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    assert!(status.contains("SigCgt:\t0000000000000000"), "{status}");
    assert_ok(&b.husk(&["delete", "-f", "k"]));
    b.assert_gone("k");
}

/// An init ended by a signal after `start` opened exec.fifo but before its
/// execve (here while a startContainer hook runs) ran no program: `start`
/// took the fifo's end for the execve and said the container started (as
/// runc does; the outside review of 1a7e6b3). It now says why it did not.
#[test]
fn start_fails_when_the_init_is_ended_before_its_program_runs() {
    let mut b = Bundle::new("start-ended");
    b.config["process"]["args"] = serde_json::json!(["sleep", "30"]);
    b.config["hooks"] = serde_json::json!({"startContainer": [{"path": "/bin/sleep", "args": ["sleep", "3"]}]});
    b.save();
    assert_ok(&b.create("s"));
    let err = b.dir.join("start.err");
    let mut start = b.husk_as_owner(&["start", "s"]);
    start.stderr(std::fs::File::create(&err).unwrap());
    let mut start = start.spawn().unwrap();
    let hook_runs = || {
        b.processes()
            .iter()
            .any(|p| std::fs::read(format!("/proc/{p}/cmdline")).is_ok_and(|c| c == b"sleep\x003\x00"))
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !hook_runs() {
        assert!(std::time::Instant::now() < deadline, "the hook never ran");
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    assert_ok(&b.husk(&["kill", "s", "TERM"]));
    let status = wait_within(&mut start, std::time::Duration::from_secs(10), "start");
    let err = std::fs::read_to_string(&err).unwrap();
    assert!(!status.success(), "start succeeded: {err}");
    assert!(err.contains("ended by signal 15 before its program ran"), "{err}");
    b.wait_status("s", "stopped");
    assert_ok(&b.husk(&["delete", "s"]));
    b.assert_gone("s");
}

/// A created init that is stopped (SIGSTOP: from the host here, from any
/// process of its pod in a shared pid namespace) never opens its fifo, and
/// `start` waits for it holding the container's lock: `delete -f` waited the
/// lock's minute behind it and failed (the outside review of 70bccf9; runc's
/// `delete -f` goes through). `delete -f` now kills the init first, which
/// ends `start`'s wait too.
#[test]
fn delete_force_ends_a_start_that_waits_for_a_stopped_init() {
    let mut b = Bundle::new("start-stopped");
    b.config["process"]["args"] = serde_json::json!(["sleep", "30"]);
    b.save();
    // Then also frozen by someone else once start waits: a frozen init dies
    // only once thawed (the outside review of 1287294).
    let freezer = std::path::Path::new("/sys/fs/cgroup/freezer");
    for frozen_too in [false, true] {
        assert_ok(&b.create("s"));
        let pid = b.state("s")["pid"].as_i64().unwrap() as i32;
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::SIGSTOP).unwrap();
        let mut start = b.husk_command(&["start", "s"]);
        start
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null());
        let mut start = start.spawn().unwrap();
        std::thread::sleep(std::time::Duration::from_millis(300));
        if frozen_too {
            let state = freezer
                .join(b.default_cgroup("s").trim_start_matches('/'))
                .join("freezer.state");
            std::fs::write(&state, "FROZEN").unwrap();
        }
        let begun = std::time::Instant::now();
        assert_ok(&b.husk(&["delete", "-f", "s"]));
        assert!(
            begun.elapsed() < std::time::Duration::from_secs(10),
            "delete -f waited {:?}",
            begun.elapsed()
        );
        let status = wait_within(&mut start, std::time::Duration::from_secs(10), "start");
        assert!(!status.success(), "start of a container deleted meanwhile succeeded");
        b.assert_gone("s");
    }
}

/// An init that is ending before its execve stays (pid 1 of its namespace)
/// until the namespace's other processes are reaped: here an exec'd process
/// whose parent outside (a subreaper that never waits) does not reap it.
/// `start` waited for it for ever; it now fails at once, saying so.
#[test]
fn start_fails_when_the_init_is_ending_before_its_program_runs() {
    let mut b = Bundle::new("start-ending");
    b.config["process"]["args"] = serde_json::json!(["sleep", "30"]);
    b.save();
    assert_ok(&b.create("e"));
    let pid = b.state("e")["pid"].as_i64().unwrap() as i32;
    // sh makes the exec'd process, which husk leaves as an orphan: the
    // subreaper gets it, and then becomes a `sleep` that never reaps it.
    let mut holder = Command::new("sh");
    holder.arg("-c").arg(format!(
        "{HUSK} --root {} exec -d e sleep 60 && exec sleep 60",
        b.root.display()
    ));
    b.tag(&mut holder);
    // SAFETY: prctl between fork and exec; the setting survives the exec.
    unsafe {
        std::os::unix::process::CommandExt::pre_exec(&mut holder, || {
            libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
            Ok(())
        })
    };
    let mut holder = holder.spawn().unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !std::fs::read_to_string(format!("/proc/{}/cmdline", holder.id()))
        .unwrap_or_default()
        .starts_with("sleep")
    {
        assert!(std::time::Instant::now() < deadline, "the exec never ran");
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::SIGKILL).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(200));
    let begun = std::time::Instant::now();
    let o = b.husk(&["start", "e"]);
    assert!(
        begun.elapsed() < std::time::Duration::from_secs(5),
        "start waited {:?}",
        begun.elapsed()
    );
    assert!(!o.status.success(), "start of an ending init succeeded");
    assert!(stderr(&o).contains("before its program ran"), "{}", stderr(&o));
    let _ = holder.kill();
    let _ = holder.wait();
    assert_ok(&b.husk(&["delete", "-f", "e"]));
    b.assert_gone("e");
}

/// A createRuntime hook that stops the init, as a host process with the
/// init's uid could: `create` waited for it for ever, holding the lock and
/// what it had made (moved network devices; review 51c, L1). Each step of
/// the init's setup is bounded now (HUSK_SETUP_TIMEOUT, 60 s unless set):
/// `create` and a foreground `run` fail past it, and leave nothing.
#[test]
fn create_and_run_fail_when_the_init_makes_no_progress() {
    let mut b = Bundle::new("setup-stalled");
    b.config["hooks"] = hook_that_stops_the_init();
    b.config["process"]["args"] = serde_json::json!(["true"]);
    b.save();
    for command in ["create", "run"] {
        let mut cmd = b.husk_command(&[command, "--bundle", b.dir.to_str().unwrap(), "s"]);
        cmd.env("HUSK_SETUP_TIMEOUT", "2").stdin(std::process::Stdio::null());
        let begun = std::time::Instant::now();
        let o = run_with_timeout(&mut cmd, Duration::from_secs(30));
        assert!(!o.status.success(), "{command} of a stopped init succeeded");
        let err = stderr(&o);
        assert!(
            err.contains("container init made no progress within 2s"),
            "{command}: {err}"
        );
        assert_eq!(err.lines().count(), 1, "{command}: one line: {err}");
        assert!(
            begun.elapsed() < Duration::from_secs(20),
            "{command} took {:?}",
            begun.elapsed()
        );
        b.assert_gone("s");
    }
}

/// The bound leaves out the createContainer hooks, which the init runs
/// with their own timeouts (none here): one longer than the bound is waited for.
#[test]
fn the_setup_bound_leaves_out_the_create_container_hooks() {
    let mut b = Bundle::new("setup-bound-hooks");
    b.config["hooks"] = serde_json::json!({"createContainer": [{"path": "/bin/sh", "args": ["sh", "-c", "sleep 3"]}]});
    b.config["process"]["args"] = serde_json::json!(["true"]);
    b.save();
    let mut cmd = b.husk_command(&["create", "--bundle", b.dir.to_str().unwrap(), "h"]);
    cmd.env("HUSK_SETUP_TIMEOUT", "1");
    assert_ok(&run_with_timeout(&mut cmd, Duration::from_secs(30)));
    assert_eq!(b.state("h")["status"], "created");
    assert_ok(&b.husk(&["delete", "-f", "h"]));
    b.assert_gone("h");
}

/// An init stopped while its createContainer hook runs (the hook stops
/// it here) held `create` for ever: the bound was lifted for the hooks and
/// never came back (review 52, F1). The wait for hooks with timeouts is
/// now as long as those and the bound, and the bound is back after them.
#[test]
fn an_init_stopped_during_its_create_container_hooks_fails_create() {
    let mut b = bundle_whose_hook_stops_the_init("setup-stalled-hooks", "createContainer");
    b.config["process"]["args"] = serde_json::json!(["true"]);
    b.save();
    let mut cmd = b.husk_command(&["create", "--bundle", b.dir.to_str().unwrap(), "s"]);
    cmd.env("HUSK_SETUP_TIMEOUT", "2");
    let o = run_with_timeout(&mut cmd, Duration::from_secs(30));
    assert!(!o.status.success(), "create of a stopped init succeeded");
    let err = stderr(&o);
    assert!(err.contains("container init made no progress within 8s"), "{err}");
    b.assert_gone("s");
}

/// With `--debug`, the init forwards its log lines over the channel: a
/// foreground `run` that read one then waited in the receive for the next,
/// deaf to SIGTERM until the bound (review 52, F4). Here the init logs a
/// line and is stopped by its createContainer hook: SIGTERM ends the run
/// after its 2 s grace, as without `--debug`.
#[test]
fn a_foreground_run_with_debug_still_ends_on_sigterm_while_the_init_stalls() {
    let mut b = bundle_whose_hook_stops_the_init("setup-stalled-debug", "createContainer");
    b.config["process"]["args"] = serde_json::json!(["true"]);
    b.save();
    let err = b.dir.join("run.err");
    let mut run = b.husk_command(&["--debug", "run", "--bundle", b.dir.to_str().unwrap(), "s"]);
    run.env("HUSK_SETUP_TIMEOUT", "60")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(&err).unwrap());
    let mut run = run.spawn().unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    send_signal(&run, nix::sys::signal::Signal::SIGTERM);
    let status = wait_within(&mut run, Duration::from_secs(10), "run --debug after SIGTERM");
    assert!(!status.success());
    let text = std::fs::read_to_string(&err).unwrap();
    assert!(text.contains("SIGTERM came"), "{text}");
    b.assert_gone("s");
}

#[test]
fn a_setup_bound_that_is_not_whole_seconds_is_refused_up_front() {
    let b = Bundle::new("setup-bound-bad");
    for bad in ["1.5", "-1", "+5", " 5", "soon", ""] {
        let mut cmd = b.husk_command(&["create", "--bundle", b.dir.to_str().unwrap(), "x"]);
        cmd.env("HUSK_SETUP_TIMEOUT", bad);
        let o = run_with_timeout(&mut cmd, Duration::from_secs(30));
        assert!(!o.status.success(), "{bad:?} was taken");
        let err = stderr(&o);
        assert!(
            err.contains("HUSK_SETUP_TIMEOUT") && err.contains("whole number of seconds"),
            "{bad:?}: {err}"
        );
        assert_eq!(err.lines().count(), 1, "one line: {err}");
        b.assert_gone("x");
    }
}

/// A created init that a host process with its uid stopped held `start`
/// (and the lock) until a `delete -f`. Without startContainer hooks,
/// `start` now gives it the setup bound, then kills it and fails: the
/// container must not run its program after its `start` failed.
#[test]
fn start_fails_and_kills_an_init_that_makes_no_progress() {
    let mut b = Bundle::new("start-stalled");
    b.config["process"]["args"] = serde_json::json!(["sleep", "30"]);
    b.save();
    assert_ok(&b.create("s"));
    let pid = b.state("s")["pid"].as_i64().unwrap() as i32;
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::SIGSTOP).unwrap();
    let mut start = b.husk_command(&["start", "s"]);
    start.env("HUSK_SETUP_TIMEOUT", "2");
    let begun = std::time::Instant::now();
    let o = run_with_timeout(&mut start, Duration::from_secs(30));
    assert!(!o.status.success(), "start of a stopped init succeeded");
    let err = stderr(&o);
    assert!(
        err.contains("container init made no progress within 2s") && err.contains("was killed"),
        "{err}"
    );
    assert!(
        begun.elapsed() < Duration::from_secs(20),
        "start took {:?}",
        begun.elapsed()
    );
    b.wait_status("s", "stopped");
    assert_ok(&b.husk(&["delete", "s"]));
    b.assert_gone("s");
}

/// An init stopped while it runs a startContainer hook (the hook stops it
/// here) held `start` for ever (review 52b, N1): the wait is the bound plus
/// the hooks' timeouts, then the init is killed.
#[test]
fn start_fails_when_the_init_stalls_in_its_start_container_hooks() {
    let mut b = bundle_whose_hook_stops_the_init("start-stalled-hooks", "startContainer");
    b.config["process"]["args"] = serde_json::json!(["sleep", "30"]);
    b.save();
    assert_ok(&b.create("s"));
    let mut start = b.husk_command(&["start", "s"]);
    start.env("HUSK_SETUP_TIMEOUT", "2");
    let o = run_with_timeout(&mut start, Duration::from_secs(30));
    assert!(!o.status.success(), "start of a stopped init succeeded");
    let err = stderr(&o);
    assert!(err.contains("container init made no progress within 8s"), "{err}");
    b.wait_status("s", "stopped");
    assert_ok(&b.husk(&["delete", "s"]));
    b.assert_gone("s");
}

/// startContainer hooks (run by the init, in the container) without a
/// timeout are waited for: one longer than the bound.
#[test]
fn the_setup_bound_of_start_leaves_out_the_start_container_hooks() {
    let mut b = Bundle::new("start-bound-hooks");
    b.config["hooks"] = serde_json::json!({"startContainer": [{"path": "/bin/sh", "args": ["sh", "-c", "sleep 3"]}]});
    b.config["process"]["args"] = serde_json::json!(["sleep", "30"]);
    b.save();
    assert_ok(&b.create("h"));
    let mut start = b.husk_command(&["start", "h"]);
    start.env("HUSK_SETUP_TIMEOUT", "1");
    assert_ok(&run_with_timeout(&mut start, Duration::from_secs(30)));
    assert_eq!(b.state("h")["status"], "running");
    assert_ok(&b.husk(&["delete", "-f", "h"]));
    b.assert_gone("h");
}

/// A bundle without a pid namespace whose `kind` hook (timeout 1 s) stops
/// its parent: the init ($PPID, as the host sees it).
fn bundle_whose_hook_stops_the_init(name: &str, kind: &str) -> Bundle {
    let mut b = Bundle::new(name);
    b.without_namespace("pid");
    let stop_parent = serde_json::json!({"path": "/bin/sh", "args": ["sh", "-c", "kill -STOP $PPID"], "timeout": 1});
    b.config["hooks"] = serde_json::json!({ kind: [stop_parent] });
    b
}

/// `husk` (as `args` say) spawned for a test to signal, its stderr to
/// `husk.err` in the bundle.
fn spawn_husk(b: &Bundle, args: &[&str]) -> std::process::Child {
    let mut husk = b.husk_command(args);
    husk.stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(b.dir.join("husk.err")).unwrap());
    husk.spawn().unwrap()
}

/// Waits for `husk` to die of `sig`, sent once `marker` exists, having
/// said why in one line.
#[track_caller]
fn ends_of(b: &Bundle, husk: &mut std::process::Child, marker: &std::path::Path, sig: nix::sys::signal::Signal) {
    use std::os::unix::process::ExitStatusExt;
    wait_for_file(marker, Duration::from_secs(20));
    send_signal(husk, sig);
    let status = wait_within(husk, Duration::from_secs(15), "husk after an ending signal");
    assert_eq!(status.signal(), Some(sig as i32), "did not die of {sig}: {status}");
    let err = std::fs::read_to_string(b.dir.join("husk.err")).unwrap();
    let said = format!("{sig} came before");
    assert!(err.contains(&said) && err.contains("what was made is undone"), "{err}");
    assert_eq!(err.lines().filter(|l| l.contains(&said)).count(), 1, "{err}");
}

/// A create or `run -d` ended by SIGTERM, SIGINT or SIGHUP while it set the
/// container up died there and left it half made: a `stopped` container,
/// its cgroup and state for `delete`, and any network devices moved in lost
/// with the namespace (review 51b, L2). It now undoes what it made, as a
/// failure does, then dies of the signal: here while the init it waits for
/// is stopped, and while one of its own hooks runs.
#[test]
fn create_and_run_d_ended_by_a_signal_during_setup_leave_nothing() {
    use nix::sys::signal::Signal;
    let cases = [
        ("create", Signal::SIGTERM, "init"),
        ("run", Signal::SIGINT, "init"),
        ("create", Signal::SIGHUP, "hook"),
        ("run", Signal::SIGTERM, "hook"),
    ];
    for (i, (command, sig, waiting_for)) in cases.into_iter().enumerate() {
        let mut b = Bundle::new(&format!("setup-ended-{i}"));
        let marker = b.dir.join("marker");
        b.config["hooks"] = match waiting_for {
            "init" => hook_that_stops_the_init_and_marks(&marker),
            _ => {
                let script = format!("echo $$ > {0}.pid; mv {0}.pid {0}; exec sleep 60", marker.display());
                serde_json::json!({"prestart": [{"path": "/bin/sh", "args": ["sh", "-c", script]}]})
            }
        };
        b.config["process"]["args"] = serde_json::json!(["sleep", "30"]);
        b.save();
        let bundle = b.dir.to_str().unwrap().to_string();
        let args: Vec<&str> = match command {
            "run" => vec!["run", "-d", "--bundle", &bundle, "e"],
            _ => vec!["create", "--bundle", &bundle, "e"],
        };
        let mut husk = spawn_husk(&b, &args);
        ends_of(&b, &mut husk, &marker, sig);
        b.assert_gone("e");
        if waiting_for == "hook" {
            let hook = std::fs::read_to_string(&marker).unwrap();
            let cmdline = std::fs::read(format!("/proc/{}/cmdline", hook.trim())).unwrap_or_default();
            assert!(!cmdline.starts_with(b"sleep"), "{command}: the hook {hook} runs on");
        }
    }
}

/// A signal the caller ignores (`nohup`'s SIGHUP) or blocks is not one
/// that ends the create: it goes on.
#[test]
fn a_create_whose_caller_ignores_sighup_is_not_ended_by_it() {
    use std::os::unix::process::CommandExt;
    let mut b = Bundle::new("setup-nohup");
    let marker = b.dir.join("marker");
    let script = format!("touch {}; sleep 1", marker.display());
    b.config["hooks"] = serde_json::json!({"prestart": [{"path": "/bin/sh", "args": ["sh", "-c", script]}]});
    b.config["process"]["args"] = serde_json::json!(["sleep", "30"]);
    b.save();
    let mut create = b.husk_command(&["create", "--bundle", b.dir.to_str().unwrap(), "n"]);
    create.stdin(std::process::Stdio::null());
    // SAFETY: signal() only, between fork and exec.
    unsafe {
        create.pre_exec(|| {
            libc::signal(libc::SIGHUP, libc::SIG_IGN);
            Ok(())
        });
    }
    let mut create = create.spawn().unwrap();
    wait_for_file(&marker, Duration::from_secs(20));
    send_signal(&create, nix::sys::signal::Signal::SIGHUP);
    let status = wait_within(&mut create, Duration::from_secs(20), "create");
    assert!(status.success(), "create ended by an ignored SIGHUP: {status}");
    assert_eq!(b.state("n")["status"], "created");
    assert_ok(&b.husk(&["delete", "-f", "n"]));
    b.assert_gone("n");
}

/// `run -d` ended while a poststart hook runs (the program runs by then):
/// the container is killed and removed, as when the hook fails, and its
/// pid file, written when the container was made, goes too (it named a
/// dead init's pid, free for another process; review 53 F1).
#[test]
fn run_d_ended_by_a_signal_during_its_poststart_hooks_leaves_nothing() {
    let mut b = Bundle::new("poststart-ended");
    let marker = b.dir.join("marker");
    let script = format!("touch {}; exec sleep 60", marker.display());
    b.config["hooks"] = serde_json::json!({"poststart": [{"path": "/bin/sh", "args": ["sh", "-c", script]}]});
    b.config["process"]["args"] = serde_json::json!(["sleep", "30"]);
    b.save();
    let pid_file = b.dir.join("p.pid");
    let args = [
        "run",
        "-d",
        "--pid-file",
        pid_file.to_str().unwrap(),
        "--bundle",
        b.dir.to_str().unwrap(),
        "p",
    ];
    let mut run = spawn_husk(&b, &args);
    ends_of(&b, &mut run, &marker, nix::sys::signal::Signal::SIGTERM);
    b.assert_gone("p");
    assert!(!pid_file.exists(), "the pid file of a run that failed is left");
}

/// A create that failed on its own while an ending signal was pending (held,
/// not yet taken) died of the signal before it could say why (review 53b,
/// G2): its error is logged first. Here it waits for a console socket that
/// never accepts (10 s), and SIGTERM comes meanwhile.
#[test]
fn a_create_that_fails_with_a_signal_pending_still_says_why() {
    use std::os::fd::AsRawFd;
    use std::os::unix::process::ExitStatusExt;
    let mut b = Bundle::new("pending-says-why");
    b.config["process"]["terminal"] = serde_json::json!(true);
    b.save();
    let socket = b.dir.join("console.sock");
    let listener = std::os::unix::net::UnixListener::bind(&socket).unwrap();
    // SAFETY: listen() again on our own socket only sets its backlog: one
    // waiting connection fills it, and the next waits.
    assert_eq!(unsafe { libc::listen(listener.as_raw_fd(), 0) }, 0);
    let _filler = std::os::unix::net::UnixStream::connect(&socket).unwrap();
    let args = [
        "create",
        "--console-socket",
        socket.to_str().unwrap(),
        "--bundle",
        b.dir.to_str().unwrap(),
        "w",
    ];
    let mut create = spawn_husk(&b, &args);
    // Once it waits in connect (42; bounded by SO_SNDTIMEO), poll (7) or ppoll (271).
    let deadline = std::time::Instant::now() + Duration::from_secs(8);
    while !std::fs::read_to_string(format!("/proc/{}/syscall", create.id()))
        .is_ok_and(|s| ["42 ", "7 ", "271 "].iter().any(|n| s.starts_with(n)))
    {
        assert!(
            std::time::Instant::now() < deadline,
            "create never waited for the socket"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    send_signal(&create, nix::sys::signal::Signal::SIGTERM);
    let status = wait_within(&mut create, Duration::from_secs(30), "create");
    assert_eq!(status.signal(), Some(libc::SIGTERM), "{status}");
    let err = std::fs::read_to_string(b.dir.join("husk.err")).unwrap();
    assert!(err.contains("--console-socket"), "nothing said: {err:?}");
    b.assert_gone("w");
}

/// An init that died between the commit of its state, which wrote the pid
/// file, and the word that lets it go on (strace holds that send; the test
/// kills the init meanwhile) failed the create, and left the pid file
/// naming the dead init (review 53b, G1): it goes with the rest.
#[test]
fn a_create_whose_init_dies_as_it_commits_leaves_no_pid_file() {
    let b = Bundle::new("commit-died");
    let pid_file = b.dir.join("s.pid");
    let mut create = b
        .husk_under_strace(
            &[
                "-qq",
                "-o",
                "/dev/null",
                "-e",
                "trace=sendto",
                "-e",
                "inject=sendto:delay_enter=1500000",
            ],
            &[
                "create",
                "--pid-file",
                pid_file.to_str().unwrap(),
                "--bundle",
                b.dir.to_str().unwrap(),
                "s",
            ],
        )
        .spawn_quietly();
    wait_for_file(&pid_file, Duration::from_secs(20));
    let init: i32 = std::fs::read_to_string(&pid_file).unwrap().trim().parse().unwrap();
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(init), nix::sys::signal::Signal::SIGKILL).unwrap();
    let status = wait_within(&mut create, Duration::from_secs(30), "create");
    assert!(!status.success(), "create of a dead init succeeded");
    assert!(!pid_file.exists(), "the pid file names the dead init {init}");
    b.assert_gone("s");
}

/// Container "c" running, with a process of it waiting on a FUSE mount that
/// never answers (bound at /fz).
fn running_with_a_fuse_waiter(name: &str) -> (Bundle, HangingFuse) {
    let mut b = Bundle::new(name);
    let fuse = HangingFuse::mount(&b, b.dir.join("fuse"));
    std::fs::create_dir_all(b.rootfs().join("fz")).unwrap();
    let source = fuse.mountpoint.to_str().unwrap().to_string();
    b.config["mounts"]
        .as_array_mut()
        .unwrap()
        .push(serde_json::json!({"destination": "/fz", "type": "bind", "source": source, "options": ["rbind"]}));
    b.script("cat /fz/x & exec sleep 100");
    b.save();
    assert_ok(&b.husk(&["run", "-d", "--bundle", b.dir.to_str().unwrap(), "c"]));
    wait_for_a_fuse_waiter(&b);
    (b, fuse)
}

/// Waits (bounded) until a process of the container waits on a FUSE request.
fn wait_for_a_fuse_waiter(b: &Bundle) {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let waits =
        |pid: &i32| std::fs::read_to_string(format!("/proc/{pid}/wchan")).is_ok_and(|w| w == "request_wait_answer");
    while !b.processes().iter().any(waits) {
        assert!(
            std::time::Instant::now() < deadline,
            "no process of the container came to wait on the FUSE mount"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Puts `pid` into every cgroup directory of container `id`.
fn move_into_the_containers_cgroup(b: &Bundle, id: &str, pid: u32) {
    let path = b.default_cgroup(id);
    let unified = std::path::Path::new("/sys/fs/cgroup/cgroup.controllers").exists();
    let hierarchies: Vec<std::path::PathBuf> = match unified {
        true => vec!["/sys/fs/cgroup".into()],
        false => std::fs::read_dir("/sys/fs/cgroup")
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .collect(),
    };
    for hierarchy in hierarchies {
        let procs = hierarchy.join(path.trim_start_matches('/')).join("cgroup.procs");
        if procs.exists() {
            std::fs::write(&procs, pid.to_string()).unwrap();
        }
    }
}

/// A process waiting on a FUSE request cannot be frozen: the v1 freezer
/// stays FREEZING for ever. `delete -f` froze the container's cgroup before
/// its kill (so that nothing escapes it by forking) and waited for the
/// freeze its whole 10 s bound: the kill that ends the FUSE daemon (a
/// process of the container's cgroup that the end of its pid namespace does
/// not take, as a pod's member) and with it the wait came too late, and
/// `delete -f` failed. Now it waits a moment, then kills the frozen and the
/// unfrozen alike.
#[test]
fn delete_f_ends_a_container_waiting_on_a_fuse_daemon_of_its_cgroup() {
    let (b, fuse) = running_with_a_fuse_waiter("fuse-waiter");
    move_into_the_containers_cgroup(&b, "c", fuse.daemon.id());

    let o = b.husk(&["delete", "--force", "c"]);
    drop(fuse);
    assert_ok(&o);
    b.assert_gone("c");
}

/// What no signal ends keeps `delete -f` from ending a container: it fails
/// after its bound, naming the process and where it waits, and the
/// container stays for a later `delete`.
#[test]
fn delete_f_names_a_process_no_signal_reaches() {
    let (b, fuse) = running_with_a_fuse_waiter("fuse-stuck");

    let stuck = b.husk(&["delete", "--force", "c"]);
    let listed = b.husk(&["list", "-q"]);
    drop(fuse);
    let err = stderr(&stuck);
    assert!(
        !stuck.status.success(),
        "delete -f succeeded with a process it cannot end"
    );
    assert_eq!(err.lines().count(), 1, "one line: {err}");
    assert!(
        err.contains("\"cat\" waits in the kernel (\"request_wait_answer\")"),
        "{err}"
    );
    assert_eq!(
        stdout(&listed).trim(),
        "c",
        "the container must stay for a later delete"
    );
    assert_ok(&b.husk(&["delete", "--force", "c"]));
    b.assert_gone("c");
}

/// A `kill --all` asked to end (SIGTERM) while it waits for the freeze that
/// keeps forks from escaping its signal ends only once it has thawed the
/// container again: killed there, it left the cgroup FREEZING, the container
/// paused though nobody paused it (review 54b F4). A process waiting on a
/// FUSE request keeps the freeze from finishing, so the window is 0.5 s.
#[test]
fn a_kill_all_ended_in_its_freeze_leaves_the_container_thawed() {
    let (b, fuse) = running_with_a_fuse_waiter("fuse-kill-term");
    let (status, after) = end_a_kill_all_in_its_freeze(&b, nix::sys::signal::Signal::SIGTERM);
    let status_after = b.status("c");
    drop(fuse);
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&status),
        Some(libc::SIGTERM),
        "kill --all must still end by the signal"
    );
    assert_eq!(after.trim(), "THAWED");
    assert_eq!(status_after, "running");
    assert_ok(&b.husk(&["delete", "--force", "c"]));
    b.assert_gone("c");
}

/// SIGKILL cannot wait for the thaw: the freeze such a `kill --all` left is
/// undone by the next command that reads the container's status, which
/// must not call it paused (review 55 F5).
#[test]
fn a_kill_all_killed_in_its_freeze_is_undone_by_the_next_status() {
    let (b, fuse) = running_with_a_fuse_waiter("fuse-kill-kill");
    let (_, after) = end_a_kill_all_in_its_freeze(&b, nix::sys::signal::Signal::SIGKILL);
    let status_after = b.status("c");
    let thawed = std::fs::read_to_string(freezer_state(&b, "c")).unwrap_or_default();
    // (The FUSE waiter would keep the pause from finishing.)
    drop(fuse);
    let paused = b.husk(&["pause", "c"]);
    let status_paused = b.status("c");
    assert_eq!(after.trim(), "FREEZING", "the killed kill --all left it frozen");
    assert_eq!(status_after, "running");
    assert_eq!(thawed.trim(), "THAWED");
    assert_ok(&paused);
    assert_eq!(status_paused, "paused", "a pause afterwards is a pause");
    assert_ok(&b.husk(&["delete", "--force", "c"]));
    b.assert_gone("c");
}

fn freezer_state(b: &Bundle, id: &str) -> std::path::PathBuf {
    std::path::Path::new("/sys/fs/cgroup/freezer")
        .join(b.default_cgroup(id).trim_start_matches('/'))
        .join("freezer.state")
}

/// Ends a `kill --all CONT` of container "c" by `signal` while the freeze
/// it signals under lasts: how it ended, and the freezer's state then.
fn end_a_kill_all_in_its_freeze(b: &Bundle, signal: nix::sys::signal::Signal) -> (std::process::ExitStatus, String) {
    let mut kill = kill_all_in_its_freeze(b);
    send_signal(&kill, signal);
    let status = wait_within(&mut kill, COMMAND_TIMEOUT, "kill --all");
    (
        status,
        std::fs::read_to_string(freezer_state(b, "c")).unwrap_or_default(),
    )
}

/// A `kill --all CONT` of container "c", once it has frozen it (a FUSE
/// waiter keeps the freeze from finishing for 0.5 s).
fn kill_all_in_its_freeze(b: &Bundle) -> std::process::Child {
    let kill = b.husk_command(&["kill", "--all", "c", "CONT"]).spawn().unwrap();
    let state = freezer_state(b, "c");
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while std::fs::read_to_string(&state).unwrap_or_default().trim() != "FREEZING" {
        assert!(
            std::time::Instant::now() < deadline,
            "kill --all never froze the container"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    kill
}

/// A `kill --all` stopped (SIGSTOP) in its turn kept a `pause` waiting 30 s
/// (more behind it) without naming it, and a `kill --all KILL` (how
/// containerd's shim stops a container) failed after 30 s, killing nothing
/// (review 56c F2): the pause names it at once, the kill goes without its
/// turn.
#[test]
fn a_kill_all_stopped_in_its_turn_is_named_and_does_not_stop_a_kill() {
    let (b, fuse) = running_with_a_fuse_waiter("fuse-kill-stop");
    let mut stopped = kill_all_in_its_freeze(&b);
    send_signal(&stopped, nix::sys::signal::Signal::SIGSTOP);
    let began = std::time::Instant::now();
    let pause = b.husk(&["pause", "c"]);
    let pause_took = began.elapsed();
    let killed = b.husk(&["kill", "--all", "c", "KILL"]);
    assert_ok(&killed);
    send_signal(&stopped, nix::sys::signal::Signal::SIGKILL);
    wait_within(&mut stopped, COMMAND_TIMEOUT, "the stopped kill --all");
    // Its FUSE request ends the waiter's wait; the init (`sleep 100`)
    // ends only if the kill reached it.
    drop(fuse);
    b.wait_status("c", "stopped");
    assert!(!pause.status.success());
    let err = stderr(&pause);
    assert!(
        err.contains("is stopped") && err.contains(&format!("kill -CONT {}", stopped.id())),
        "{err}"
    );
    assert!(pause_took < Duration::from_secs(10), "pause took {pause_took:?}");
    assert_ok(&b.husk(&["delete", "--force", "c"]));
    b.assert_gone("c");
}

/// A `kill --all` that could not get its turn (its holder stopped) froze
/// and thawed the container all the same: that freeze could undo a pause,
/// or, killed in it, be left with no mark (review 56d F1). It signals
/// without freezing.
#[test]
fn a_kill_all_without_its_turn_does_not_freeze() {
    let (b, fuse) = running_with_a_fuse_waiter("fuse-kill-noturn");
    let holder = StoppedFlock::on(&b.root.join("c").join("freeze.lock"));
    let mut kill = b.husk_command(&["kill", "--all", "c", "CONT"]).spawn().unwrap();
    let state = freezer_state(&b, "c");
    let deadline = std::time::Instant::now() + COMMAND_TIMEOUT;
    let mut froze = false;
    let ended = loop {
        if let Some(status) = kill.try_wait().unwrap() {
            break Some(status);
        }
        if std::time::Instant::now() > deadline {
            let _ = kill.kill();
            let _ = kill.wait();
            break None;
        }
        froze |= std::fs::read_to_string(&state).unwrap_or_default().trim() != "THAWED";
        std::thread::sleep(Duration::from_millis(2));
    };
    drop(holder);
    drop(fuse);
    assert!(ended.is_some_and(|s| s.success()), "kill --all: {ended:?}");
    assert!(!froze, "kill --all froze the container without its turn");
    assert_ok(&b.husk(&["delete", "--force", "c"]));
    b.assert_gone("c");
}

/// A `pause` while a `kill --all` holds the container frozen to signal it
/// was refused as "already paused", or (had it come in between the kill's
/// freeze and thaw) undone by that thaw (review 56b F2, F3): it waits for
/// the kill's turn to end.
#[test]
fn a_pause_waits_for_the_thaw_of_a_kill_all() {
    let (b, fuse) = running_with_a_fuse_waiter("fuse-kill-pause");
    let mut kill = kill_all_in_its_freeze(&b);
    let mut pause = b
        .husk_command(&["pause", "c"])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let killed = wait_within(&mut kill, COMMAND_TIMEOUT, "kill --all");
    // The FUSE waiter would keep the pause from finishing.
    drop(fuse);
    let paused = wait_within(&mut pause, COMMAND_TIMEOUT, "pause");
    let mut err = String::new();
    std::io::Read::read_to_string(&mut pause.stderr.take().unwrap(), &mut err).unwrap();
    let status = b.status("c");
    assert!(killed.success());
    assert!(paused.success(), "pause: {err}");
    assert_eq!(status, "paused");
    assert_ok(&b.husk(&["delete", "--force", "c"]));
    b.assert_gone("c");
}
