//! Lifecycle hooks. Each gets the container's state on stdin and runs with its
//! own path, args and env, within its timeout. A failing prestart,
//! createRuntime, createContainer or startContainer hook stops the operation;
//! a failing poststart or poststop hook is a warning and the rest still run.

use std::ffi::{CString, OsStr};
use std::io::ErrorKind;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{killpg, pthread_sigmask, SigSet, SigmaskHow, Signal};
use nix::unistd::{getpgid, Pid};
use oci_spec::runtime::Hook;

use crate::error::{Context, Error, Result};
use crate::{log, sys};

/// How much of a failed hook's output goes into the error.
const OUTPUT_LIMIT: usize = 512;

/// Runs `hooks` in order; the first failure is the error. A hook without
/// `env` runs with an empty environment.
pub fn run_all(kind: &str, hooks: &[Hook], state: &str) -> Result<()> {
    run_each(kind, hooks, state, None)
}

/// As [`run_all`], but a hook without `env` gets `inherited` (the
/// startContainer hooks, in the container, get its process's environment,
/// as runc's do; an empty `env` stays empty), and the fds the program will
/// get.
pub fn run_all_inheriting(kind: &str, hooks: &[Hook], state: &str, inherited: &[CString]) -> Result<()> {
    run_each(kind, hooks, state, Some(inherited))
}

fn run_each(kind: &str, hooks: &[Hook], state: &str, inherited: Inherited<'_>) -> Result<()> {
    for hook in hooks {
        run(hook, state, inherited, None)
            .map_err(|e| Error::new(format!("{kind} hook {}: {e}", hook.path().display())))?;
    }
    Ok(())
}

/// As [`run_all`], asking `stop` every 20 ms while a hook runs: its error
/// ends the hook (killed, as past its timeout) and is the error. A
/// foreground `run` stops so on the signals it holds for a process that has
/// not started.
pub fn run_all_unless(kind: &str, hooks: &[Hook], state: &str, stop: &dyn Fn() -> Option<Error>) -> Result<()> {
    for hook in hooks {
        run(hook, state, None, Some(stop))
            .map_err(|e| Error::new(format!("{kind} hook {}: {e}", hook.path().display())))?;
    }
    Ok(())
}

/// Runs every hook of `hooks`; failures are warnings.
pub fn run_all_warn(kind: &str, hooks: &[Hook], state: &str) {
    warn_each(kind, hooks, state, None)
}

/// As [`run_all_warn`], calling `meanwhile` every 20 ms while a hook runs
/// (an error it returns ends that hook, killed, as a failure).
pub fn run_all_warn_meanwhile(kind: &str, hooks: &[Hook], state: &str, meanwhile: &dyn Fn() -> Option<Error>) {
    warn_each(kind, hooks, state, Some(meanwhile))
}

fn warn_each(kind: &str, hooks: &[Hook], state: &str, stop: Stop<'_>) {
    for hook in hooks {
        // Once `stop` says so, the hooks left are not started only to be
        // killed (review 43c).
        let result = match stop.and_then(|stop| stop()) {
            Some(e) => Err(Error::new(format!("not run: {e}"))),
            None => run(hook, state, None, stop),
        };
        if let Err(e) = result {
            log::warn(&format!("{kind} hook {}: {e}", hook.path().display()));
        }
    }
}

/// How long a killed hook may take to die before husk stops waiting for it.
pub(crate) const KILL_LIMIT: Duration = Duration::from_secs(5);

/// What a hook run in the container gets of its process: the environment
/// and the fds. None: a hook of the host, which gets neither.
type Inherited<'a> = Option<&'a [CString]>;

fn command(hook: &Hook, inherited: Inherited<'_>) -> Command {
    let mut cmd = Command::new(hook.path());
    let args = hook.args().clone().unwrap_or_default();
    if let Some((arg0, rest)) = args.split_first() {
        cmd.arg0(arg0).args(rest);
    }
    // A hook dies with the husk process that runs it: a killed `create`
    // leaves no hook behind (what the hook itself starts is its own).
    sys::signal::parent_death_signal(&mut cmd, Signal::SIGKILL);
    sys::signal::empty_signal_mask(&mut cmd);
    // In the container, under its seccomp filter, which need not allow
    // close_range, the init has left only the program's fds open.
    if inherited.is_none() {
        sys::only_stdio_across_exec(&mut cmd);
    }
    cmd.env_clear();
    let env: Vec<&[u8]> = match hook.env() {
        Some(env) => env.iter().map(|kv| kv.as_bytes()).collect(),
        None => inherited.unwrap_or_default().iter().map(|kv| kv.as_bytes()).collect(),
    };
    for kv in env {
        if let Some(eq) = kv.iter().position(|b| *b == b'=') {
            cmd.env(OsStr::from_bytes(&kv[..eq]), OsStr::from_bytes(&kv[eq + 1..]));
        }
    }
    cmd
}

/// What a hook's waiter asks, if anything, whether it should stop waiting.
type Stop<'a> = Option<&'a dyn Fn() -> Option<Error>>;

/// A hook's stdout and stderr: a pipe that husk reads while it waits for
/// the hook, keeping the first `OUTPUT_LIMIT` bytes, so that neither a hook
/// that writes much nor a child of it that keeps the pipe open can block
/// husk. Once the hook has ended, what is left in the pipe is read and the
/// pipe closed: a child that holds it (a daemon the hook left) gets SIGPIPE
/// or EPIPE for what it writes later, as with runc, and nothing it wrote is
/// kept for it (review 46 F5; a memfd before, which the hook could seal
/// against being emptied: review 46c I1).
struct Output {
    pipe: Option<OwnedFd>,
    head: Vec<u8>,
}

/// How much a final read takes of a pipe that a hook's child keeps filling.
const DRAIN_LIMIT: usize = 1 << 20;

impl Output {
    /// The output and the end to give the hook.
    fn new() -> Result<(Output, OwnedFd)> {
        let (read, write) =
            nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).context(|| "pipe for hook output".into())?;
        sys::fs::set_nonblocking(read.as_fd()).context(|| "pipe for hook output".into())?;
        Ok((
            Output {
                pipe: Some(read),
                head: Vec::new(),
            },
            write,
        ))
    }

    /// Reads what the pipe holds now, up to `limit` bytes; at its end (every
    /// writer gone) the pipe is closed.
    fn take(&mut self, limit: usize) {
        let Some(pipe) = &self.pipe else { return };
        let mut buf = [0; 16384];
        let mut taken = 0;
        while taken < limit {
            match nix::unistd::read(pipe, &mut buf) {
                Ok(0) => {
                    self.pipe = None;
                    return;
                }
                Ok(n) => {
                    taken += n;
                    let room = OUTPUT_LIMIT.saturating_sub(self.head.len());
                    self.head.extend_from_slice(&buf[..n.min(room)]);
                }
                Err(Errno::EINTR) => {}
                Err(_) => return,
            }
        }
    }

    /// The last read, then the pipe is closed.
    fn finish(&mut self) {
        self.take(DRAIN_LIMIT);
        self.pipe = None;
    }

    /// The start of what the hook wrote, made fit for one line on a
    /// terminal: the hook may be the image's, and its bytes must not move
    /// the operator's cursor or change their terminal (review 46 F4).
    fn head(&self) -> String {
        crate::log::printable(&String::from_utf8_lossy(&self.head))
    }
}

fn run(hook: &Hook, state: &str, inherited: Inherited<'_>, stop: Stop<'_>) -> Result<()> {
    let (mut output, hook_end) = Output::new()?;
    let hook_end_too = hook_end.try_clone().context(|| "pipe for hook output".into())?;
    // The Command, and husk's copies of the write end with it, are gone once
    // the hook has started: the pipe ends when the hook and its children
    // have closed it.
    let mut child = command(hook, inherited)
        .stdin(Stdio::piped())
        .stdout(hook_end)
        .stderr(hook_end_too)
        .spawn()
        .context(|| "start".into())?;
    // The clock starts now: feeding the state counts against the timeout.
    let timeout = hook.timeout().filter(|t| *t > 0).map(|t| Duration::from_secs(t as u64));
    let deadline = timeout.and_then(deadline_after);
    let pidfd = match sys::pidfd_open(child.id() as i32) {
        Ok(fd) => fd,
        Err(e) => {
            let _ = child.kill();
            let _ = child.wait();
            return Err(e).context(|| "pidfd".into());
        }
    };
    let stdin = child.stdin.take().map(OwnedFd::from);
    match feed_and_wait(&pidfd, stdin, state.as_bytes(), &mut output, deadline, stop) {
        Ok(true) => {}
        Ok(false) => {
            kill(&mut child, &pidfd);
            return Err(Error::new(format!(
                "timed out after {}s",
                timeout.unwrap_or_default().as_secs()
            )));
        }
        Err(e) => {
            kill(&mut child, &pidfd);
            return Err(e);
        }
    }
    let status = child.wait().context(|| "wait".into())?;
    if status.success() {
        return Ok(());
    }
    let text = output.head();
    let how = match (status.code(), std::os::unix::process::ExitStatusExt::signal(&status)) {
        (Some(code), _) => format!("exit status {code}"),
        (None, Some(sig)) => format!("killed by signal {sig}"),
        _ => "failed".to_string(),
    };
    Err(Error::new(if text.is_empty() { how } else { format!("{how}: {text}") }))
}

/// Writes `input` to the hook's stdin and reads its `output` while waiting
/// for the hook to exit, all bounded by `deadline` (None: no bound). Returns
/// whether the hook exited in time. Neither the write nor the read blocks, so
/// neither a hook that does not read its stdin, nor one that writes much,
/// nor a child of it that keeps a pipe open after the hook exited can hold
/// husk past the deadline or past the hook's exit. `stop`'s error, asked
/// every `STOP_CHECK`, is the error.
fn feed_and_wait(
    pidfd: &OwnedFd,
    stdin: Option<OwnedFd>,
    input: &[u8],
    output: &mut Output,
    deadline: Option<Instant>,
    stop: Stop<'_>,
) -> Result<bool> {
    let mut stdin = stdin.filter(|_| !input.is_empty());
    if let Some(pipe) = &stdin {
        sys::fs::set_nonblocking(pipe.as_fd()).context(|| "hook stdin".into())?;
    }
    let mut rest = input;
    loop {
        let (exited, readable, writable) = {
            let mut fds = vec![PollFd::new(pidfd.as_fd(), PollFlags::POLLIN)];
            let out = output.pipe.as_ref().map(|pipe| {
                fds.push(PollFd::new(pipe.as_fd(), PollFlags::POLLIN));
                fds.len() - 1
            });
            let feed = stdin.as_ref().map(|pipe| {
                fds.push(PollFd::new(pipe.as_fd(), PollFlags::POLLOUT));
                fds.len() - 1
            });
            match poll(&mut fds, slice(deadline, stop.is_some())) {
                Ok(_) => {}
                Err(Errno::EINTR) => continue,
                Err(e) => return Err(e).context(|| "wait for hook".into()),
            }
            if let Some(e) = stop.and_then(|stop| stop()) {
                return Err(e);
            }
            let ready = |fd: &PollFd| fd.revents().is_some_and(|r| !r.is_empty());
            let ready_at = |at: Option<usize>| at.is_some_and(|i| ready(&fds[i]));
            (ready(&fds[0]), ready_at(out), ready_at(feed))
        };
        if exited {
            output.finish();
            return Ok(true);
        }
        // Checked after every poll: a hook whose output never lets the
        // poll time out would otherwise outlive its timeout.
        if deadline.is_some_and(|d| Instant::now() >= d) {
            return Ok(false);
        }
        if readable {
            output.take(DRAIN_LIMIT);
        }
        if let (true, Some(pipe)) = (writable, &stdin) {
            match write_without_sigpipe(pipe, rest) {
                Ok(n) => rest = &rest[n..],
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::Interrupted) => {}
                // EPIPE: the hook closed its stdin, which is its right.
                Err(_) => rest = &[],
            }
            if rest.is_empty() {
                // The hook reads EOF.
                stdin = None;
            }
        }
    }
}

/// How often a hook's waiter asks its `stop`.
const STOP_CHECK: Duration = Duration::from_millis(20);

/// How long the next poll may wait: until the deadline, and no longer than
/// `STOP_CHECK` when there is a `stop` to ask.
fn slice(deadline: Option<Instant>, stop: bool) -> PollTimeout {
    let left = time_left(deadline);
    let check = PollTimeout::try_from(STOP_CHECK).expect("fits");
    // Not as_millis(): nix 0.30's panics on NONE.
    let sooner = left.is_some() && i64::from(left) <= STOP_CHECK.as_millis() as i64;
    if stop && !sooner {
        check
    } else {
        left
    }
}

/// `timeout` from now; None (no deadline) for one beyond what the clock can
/// hold (a timeout of i64::MAX seconds, some 292 billion years).
fn deadline_after(timeout: Duration) -> Option<Instant> {
    Instant::now().checked_add(timeout)
}

fn time_left(deadline: Option<Instant>) -> PollTimeout {
    match deadline {
        None => PollTimeout::NONE,
        Some(d) => {
            // Rounded up, so that the poll does not wake just before the deadline.
            let left = d.saturating_duration_since(Instant::now()) + Duration::from_micros(999);
            PollTimeout::try_from(left).unwrap_or(PollTimeout::MAX)
        }
    }
}

/// write(2) that cannot kill husk with SIGPIPE when the reader is gone: the
/// init runs hooks with the default disposition (it dies of it, unless it is a
/// pid namespace's init). SIGPIPE is blocked around the write, and one that the
/// write raised is taken back before it is unblocked.
fn write_without_sigpipe(fd: &OwnedFd, buf: &[u8]) -> std::io::Result<usize> {
    let mut pipe = SigSet::empty();
    pipe.add(Signal::SIGPIPE);
    let mut old = SigSet::empty();
    let _ = pthread_sigmask(SigmaskHow::SIG_BLOCK, Some(&pipe), Some(&mut old));
    let result = nix::unistd::write(fd, buf).map_err(std::io::Error::from);
    if matches!(&result, Err(e) if e.raw_os_error() == Some(libc::EPIPE)) {
        let _ = sys::signal::take_pending(&pipe);
    }
    let _ = pthread_sigmask(SigmaskHow::SIG_SETMASK, Some(&old), None);
    result
}

/// SIGKILL to a hook past its timeout, and to its process group if it made one
/// (runc kills the hook alone, but a hook that set up its own group, such as
/// one run through setsid, would leave the rest of it running). Hooks are not
/// started in a group of their own, which would end what a script hook
/// started too: a group leader's setsid(2) fails and setsid(1) forks and
/// returns at once, so a hook run through setsid would change (tried:
/// hooks.rs `a_timed_out_hook_that_made_its_own_process_group...` then
/// saw its hook end at once). The hook is
/// killed and waited for first: dead, it cannot change its group any more, and
/// unreaped, its pid (and so its group id) cannot be anyone else's.
fn kill(child: &mut Child, pidfd: &OwnedFd) {
    let _ = sys::pidfd_send_signal(pidfd, libc::SIGKILL);
    let dead = exited_within(pidfd, Some(KILL_LIMIT)).unwrap_or(false);
    let pid = Pid::from_raw(child.id() as libc::pid_t);
    if getpgid(Some(pid)) == Ok(pid) {
        let _ = killpg(pid, Signal::SIGKILL);
    }
    if dead {
        let _ = child.wait();
    }
}

/// Whether the process behind `pidfd` exits within `timeout` (None: waits).
fn exited_within(pidfd: &OwnedFd, timeout: Option<Duration>) -> Result<bool> {
    let deadline = timeout.and_then(deadline_after);
    loop {
        let mut fds = [PollFd::new(pidfd.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, time_left(deadline)) {
            Ok(0) => return Ok(false),
            Ok(_) => return Ok(true),
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(e).context(|| "wait for hook".into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsRawFd;

    fn hook(json: &str) -> Hook {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn a_hook_gets_the_state_on_stdin_and_its_args_and_env() {
        let out = std::env::temp_dir().join(format!("husk-hook-{}", std::process::id()));
        let h = hook(&format!(
            r#"{{"path":"/bin/sh","args":["sh","-c","cat > {0}; echo \"$0 $1 $V\" >> {0}","first"],"env":["V=v1"]}}"#,
            out.display()
        ));
        run_all("test", &[h], r#"{"id":"x"}"#).unwrap();
        assert_eq!(std::fs::read_to_string(&out).unwrap(), "{\"id\":\"x\"}first  v1\n");
        std::fs::remove_file(out).unwrap();
    }

    #[test]
    fn a_hook_gets_no_fd_of_husks_caller() {
        // Not close-on-exec, as what a caller passes is.
        let (read, write) = nix::unistd::pipe().unwrap();
        let (r, w) = (read.as_raw_fd(), write.as_raw_fd());
        let probe = format!("[ -e /proc/self/fd/{r} ] || [ -e /proc/self/fd/{w} ] && exit 3; exit 0");
        let h = hook(&format!(r#"{{"path":"/bin/sh","args":["sh","-c","{probe}"]}}"#));
        run_all("test", &[h], "{}").unwrap();
    }

    #[test]
    fn hooks_left_once_stopped_are_not_started() {
        let dir = std::env::temp_dir().join(format!("husk-hooks-left-{}", std::process::id()));
        let marker = dir.join("ran");
        std::fs::create_dir_all(&dir).unwrap();
        let touch = format!(r#"{{"path":"/usr/bin/touch","args":["touch","{}"]}}"#, marker.display());
        let hooks = [hook(r#"{"path":"/bin/sleep","args":["sleep","5"]}"#), hook(&touch)];
        let asked = std::cell::Cell::new(0);
        let stop = || {
            asked.set(asked.get() + 1);
            (asked.get() >= 3).then(|| Error::new("stopped"))
        };
        run_all_warn_meanwhile("poststart", &hooks, "{}", &stop);
        assert!(!marker.exists(), "the second hook ran");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_stop_to_ask_cuts_the_wait_into_slices() {
        let check = PollTimeout::try_from(STOP_CHECK).unwrap();
        assert_eq!(slice(None, false), PollTimeout::NONE);
        assert_eq!(slice(None, true), check);
        let far = Some(Instant::now() + Duration::from_secs(5));
        assert_eq!(slice(far, true), check);
        assert!(i64::from(slice(far, false)) > 4000);
        let near = Some(Instant::now() + Duration::from_millis(5));
        assert!(i64::from(slice(near, true)) <= 6);
    }

    #[test]
    fn a_stop_ends_the_wait_for_a_hook_with_its_error() {
        let h = hook(r#"{"path":"/bin/sleep","args":["sleep","5"]}"#);
        let asked = std::cell::Cell::new(0);
        let stop = || {
            asked.set(asked.get() + 1);
            (asked.get() >= 3).then(|| Error::new("stopped"))
        };
        let started = Instant::now();
        let e = run_all_unless("prestart", &[h], "{}", &stop).unwrap_err();
        assert_eq!(e.to_string(), "prestart hook /bin/sleep: stopped");
        assert!(started.elapsed() < Duration::from_secs(4));
    }

    #[test]
    fn a_timeout_beyond_the_clock_is_no_deadline() {
        let h = hook(r#"{"path":"/bin/true","timeout":9223372036854775807}"#);
        assert!(run_all("prestart", &[h], "{}").is_ok());
    }

    #[test]
    fn failure_and_timeout_are_errors_naming_the_hook() {
        let e = run_all(
            "prestart",
            &[hook(r#"{"path":"/bin/sh","args":["sh","-c","echo oops >&2; exit 4"]}"#)],
            "{}",
        )
        .unwrap_err();
        assert_eq!(e.message(), "prestart hook /bin/sh: exit status 4: oops");
        let e = run_all(
            "createRuntime",
            &[hook(r#"{"path":"/bin/sleep","args":["sleep","5"],"timeout":1}"#)],
            "{}",
        )
        .unwrap_err();
        assert!(e.message().contains("timed out after 1s"), "{e}");
        let e = run_all("poststart", &[hook(r#"{"path":"/nonexistent/hook"}"#)], "{}").unwrap_err();
        assert!(
            e.message().starts_with("poststart hook /nonexistent/hook: start"),
            "{e}"
        );
    }

    fn big_state() -> String {
        format!("{{\"big\":\"{}\"}}", "x".repeat(1 << 20))
    }

    #[test]
    fn a_hook_that_never_reads_a_large_state_still_times_out() {
        let h = hook(r#"{"path":"/bin/sleep","args":["sleep","30"],"timeout":1}"#);
        let e = run_all("prestart", &[h], &big_state()).unwrap_err();
        assert_eq!(e.message(), "prestart hook /bin/sleep: timed out after 1s");
    }

    #[test]
    fn a_failed_hooks_output_is_one_line_without_control_characters() {
        let script = r"printf '\033]0;PWNED\007\033[2Jfake\r\033[K\nline two\377\342\200\256x'; exit 1";
        let h = serde_json::json!({"path": "/bin/sh", "args": ["sh", "-c", script]});
        let e = run_all("startContainer", &[serde_json::from_value(h).unwrap()], "{}").unwrap_err();
        assert_eq!(
            e.message(),
            "startContainer hook /bin/sh: exit status 1: \\u{1b}]0;PWNED\\u{7}\\u{1b}[2Jfake \\u{1b}[K line two\u{fffd}\\u{202e}x"
        );
    }

    #[test]
    fn a_hook_that_writes_much_is_read_while_it_runs() {
        let h = hook(
            r#"{"path":"/bin/sh","args":["sh","-c","head -c 4000000 /dev/zero | tr '\\0' y; exit 3"],"timeout":20}"#,
        );
        let e = run_all("prestart", &[h], "{}").unwrap_err();
        assert_eq!(
            e.message(),
            format!("prestart hook /bin/sh: exit status 3: {}", "y".repeat(OUTPUT_LIMIT))
        );
    }

    #[test]
    fn a_hook_that_writes_without_a_pause_still_times_out() {
        let h = hook(r#"{"path":"/bin/sh","args":["sh","-c","yes & yes & yes; wait"],"timeout":1}"#);
        let started = Instant::now();
        let e = run_all("prestart", &[h], "{}").unwrap_err();
        assert_eq!(e.message(), "prestart hook /bin/sh: timed out after 1s");
        assert!(started.elapsed() < Duration::from_secs(5), "{:?}", started.elapsed());
    }

    /// A pid's state letter, or None once it is gone.
    fn state_of(pid: i32) -> Option<char> {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        stat.rsplit(") ").next()?.chars().next()
    }

    #[test]
    fn a_daemon_a_hook_left_loses_its_output() {
        let pidfile = std::env::temp_dir().join(format!("husk-hook-daemon-{}", std::process::id()));
        // The daemon writes on after the hook has ended: its writes fail
        // (SIGPIPE) rather than pile up in memory for it (review 46 F5, 46c I1).
        let h = hook(&format!(
            r#"{{"path":"/bin/sh","args":["sh","-c","(while :; do echo more; sleep 0.05; done) & echo $! > {}; head -c 1000000 /dev/zero"]}}"#,
            pidfile.display()
        ));
        run_all("poststop", &[h], "{}").unwrap();
        let pid: i32 = std::fs::read_to_string(&pidfile).unwrap().trim().parse().unwrap();
        std::fs::remove_file(&pidfile).unwrap();
        let deadline = Instant::now() + Duration::from_secs(5);
        while state_of(pid).is_some_and(|s| s != 'Z') && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        let left = state_of(pid).filter(|s| *s != 'Z');
        // The loop this test started, if it lived on.
        let _ = nix::sys::signal::kill(Pid::from_raw(pid), Signal::SIGKILL);
        assert_eq!(left, None, "the daemon still writes to the hook's output");
    }

    #[test]
    fn a_child_holding_the_stdin_of_an_exited_hook_does_not_hold_husk() {
        let pidfile = std::env::temp_dir().join(format!("husk-hook-child-{}", std::process::id()));
        let h = hook(&format!(
            r#"{{"path":"/bin/sh","args":["sh","-c","exec 3<&0; sleep 30 & echo $! > {}"]}}"#,
            pidfile.display()
        ));
        run_all("poststop", &[h], &big_state()).unwrap();
        let pid: i32 = std::fs::read_to_string(&pidfile).unwrap().trim().parse().unwrap();
        std::fs::remove_file(&pidfile).unwrap();
        // run_all returned with the child still there, holding the unread pipe.
        let alive = std::path::Path::new(&format!("/proc/{pid}")).exists();
        // The sleep this test started.
        let _ = nix::sys::signal::kill(Pid::from_raw(pid), Signal::SIGKILL);
        assert!(alive, "husk waited for the hook's child to close stdin");
    }
}
