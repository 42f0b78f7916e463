//! Waiting for a container process that the caller is the parent of: the
//! init of a container that this process created (it is a clone of the
//! caller), once started.

use std::os::fd::AsFd;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::Pid;

use crate::bail;
use crate::error::{Context, Result};
use crate::sys;

/// Waits at most `timeout` for `pid`, a child of this process (the pid that
/// [`create`](super::create) returned), to exit, and reaps it. Returns its
/// exit code, or 128 + N when signal N killed it, as [`run`](super::run)
/// does. A process still running after `timeout` is left as it is, an error
/// saying so: [`kill`](super::kill) or [`delete`](super::delete) with `force`
/// then stops it.
///
/// Only a child of this process can be waited for; one that someone else
/// reaps (SIGCHLD ignored, a reaping signal handler) is lost to this call.
pub fn wait(pid: libc::pid_t, timeout: Duration) -> Result<i32> {
    if !sys::is_own_child(pid) {
        bail!("process {pid} is not a child of this process");
    }
    // A child cannot be reaped by anyone else here, so its pid stays its own.
    let pidfd = sys::pidfd_open(pid).context(|| format!("pidfd of process {pid}"))?;
    let deadline = Instant::now() + timeout;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let mut fds = [PollFd::new(pidfd.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, PollTimeout::try_from(left).unwrap_or(PollTimeout::MAX)) {
            Ok(0) => bail!("process {pid} did not exit within {timeout:?}"),
            Ok(_) => break,
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(e).context(|| format!("wait for process {pid}")),
        }
    }
    loop {
        match waitpid(Pid::from_raw(pid), None) {
            Ok(WaitStatus::Exited(_, code)) => return Ok(code),
            Ok(WaitStatus::Signaled(_, signal, _)) => return Ok(128 + signal as i32),
            Ok(_) | Err(Errno::EINTR) => continue,
            Err(e) => return Err(e).context(|| format!("reap process {pid}")),
        }
    }
}

/// How long `create` and `exec` wait for each step of the process they set
/// up, when `HUSK_SETUP_TIMEOUT` does not say. A step takes milliseconds;
/// the bound is for a process that makes no progress at all: stopped by a
/// host process with its uid, frozen with its cgroup, stuck in a mount. It
/// held the command, the container's lock and what the command had made
/// (network devices moved into the container) for as long (review 51c, L1).
const SETUP_TIMEOUT: Duration = Duration::from_secs(60);

/// The bound of each setup step (see `SETUP_TIMEOUT`): `HUSK_SETUP_TIMEOUT`
/// in whole seconds, for a slow machine or a test; 0 for none.
pub(crate) fn setup_timeout() -> Result<Option<Duration>> {
    let Some(text) = std::env::var_os("HUSK_SETUP_TIMEOUT") else {
        return Ok(Some(SETUP_TIMEOUT));
    };
    let digits = text
        .to_str()
        .filter(|t| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()));
    match digits.and_then(|t| t.parse::<u32>().ok()) {
        Some(0) => Ok(None),
        Some(secs) => Ok(Some(Duration::from_secs(secs.into()))),
        None => bail!(
            "HUSK_SETUP_TIMEOUT: {:?} is not a whole number of seconds (0 for no bound)",
            text
        ),
    }
}

/// The error of a setup step that `bound` ended: `what`, killed, said nothing.
pub(crate) fn stalled(what: &str, bound: Duration) -> crate::error::Error {
    crate::error::Error::new(format!(
        "{what} made no progress within {}s (stopped, frozen or stuck?) and was killed; HUSK_SETUP_TIMEOUT sets the bound in seconds",
        bound.as_secs()
    ))
}

/// Kills our own child `pid` (which must then be reaped).
pub(crate) fn sigkill(pid: libc::pid_t) {
    let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL);
}

/// How long `kill_and_reap` waits for a killed child before it kills or thaws its cgroup.
const BEFORE_THAW: Duration = Duration::from_millis(100);
/// How long `kill_and_reap` waits after that.
const AFTER_THAW: Duration = Duration::from_secs(5);
/// ... or after it could not.
const NOT_THAWED: Duration = Duration::from_secs(1);

/// Kills our own child `pid`, a container's init not yet started, and reaps
/// it. One that the v1 freezer holds (a pod member froze its cgroup) dies of
/// SIGKILL only once thawed, and the reap waited for ever (review 43, F1):
/// if it is still there after a moment, `cgroup` is killed (which thaws it;
/// one husk made) or thawed (one it did not), and the wait is bounded; past
/// it, the init is left to whoever reaps it then.
pub(super) fn kill_and_reap(pid: libc::pid_t, cgroup: Option<&crate::cgroups::Record>) {
    sigkill(pid);
    if wait(pid, BEFORE_THAW).is_ok() {
        return;
    }
    let mut bound = AFTER_THAW;
    if let Some(record) = cgroup.filter(|r| r.path.is_some()) {
        let ended = crate::cgroups::driver::for_record(record).and_then(|c| match record.owns() {
            true => c.signal_all(libc::SIGKILL),
            false => c.freeze(false),
        });
        if let Err(e) = ended {
            // Not thawed (a frozen ancestor): little use waiting long.
            crate::log::debug(&format!("end the cgroup of container init {pid}: {e}"));
            bound = NOT_THAWED;
        }
    }
    if let Err(e) = wait(pid, bound) {
        crate::log::warn(&format!("container init {pid}, killed: {e}"));
    }
}

/// How long a child that is on its way out (it said its last word, or
/// closed its end) may take to exit before husk stops waiting for it: one
/// stuck in its exit (a file on a FUSE mount that never answers) or stopped
/// just before it held the command for ever (review 52b, N2).
pub(crate) const EXIT_WAIT: Duration = Duration::from_secs(2);

/// Reaps our own child `pid` once it has exited, waiting at most `timeout`:
/// its raw wait status, or None when it is still there.
pub(crate) fn wait_status_within(pid: libc::pid_t, timeout: Duration) -> Option<i32> {
    if let Ok(pidfd) = sys::pidfd_open(pid) {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let mut fds = [PollFd::new(pidfd.as_fd(), PollFlags::POLLIN)];
            match poll(&mut fds, PollTimeout::try_from(left).unwrap_or(PollTimeout::MAX)) {
                Ok(0) => return None,
                Err(Errno::EINTR) => continue,
                _ => break,
            }
        }
    }
    Some(wait_status(pid))
}

/// The bound of a step in which the process runs `hooks`: `bound` plus
/// their timeouts and the time each may take to die once killed (so that
/// a hook's own timeout is the error, review 52c F2); none when one has no
/// timeout (the spec lets a hook run for ever) or when the sum is past any
/// sensible wait.
pub(crate) fn with_hooks(bound: Option<Duration>, hooks: &[oci_spec::runtime::Hook]) -> Option<Duration> {
    let limit = Duration::from_secs(u32::MAX.into());
    hooks
        .iter()
        .try_fold(bound?, |sum, hook| {
            let secs = u64::try_from(hook.timeout()?).ok()?;
            sum.checked_add(Duration::from_secs(secs))?
                .checked_add(crate::hooks::KILL_LIMIT)
        })
        .filter(|total| *total <= limit)
}

/// Reaps our own child `pid`: its raw wait status (0 when there is none to reap).
pub(crate) fn wait_status(pid: libc::pid_t) -> i32 {
    loop {
        match sys::process::waitpid(pid) {
            Ok(status) => return status,
            Err(e) if e.raw_os_error() == Some(libc::EINTR) => continue,
            Err(_) => return 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hook(timeout: Option<i64>) -> oci_spec::runtime::Hook {
        let mut h = oci_spec::runtime::Hook::default();
        h.set_timeout(timeout);
        h
    }

    #[test]
    fn a_step_with_hooks_is_bounded_by_their_timeouts_if_each_has_one() {
        let bound = Some(Duration::from_secs(3));
        let secs = |s| Some(Duration::from_secs(s));
        assert_eq!(with_hooks(bound, &[]), secs(3));
        let killed = crate::hooks::KILL_LIMIT.as_secs();
        assert_eq!(with_hooks(bound, &[hook(Some(1)), hook(Some(5))]), secs(9 + 2 * killed));
        assert_eq!(with_hooks(bound, &[hook(Some(1)), hook(None)]), None);
        assert_eq!(with_hooks(None, &[hook(Some(1))]), None);
        // No overflow, no panic: past any sensible wait is no bound.
        assert_eq!(with_hooks(bound, &[hook(Some(i64::MAX))]), None);
        let three = [hook(Some(i64::MAX)), hook(Some(i64::MAX)), hook(Some(i64::MAX))];
        assert_eq!(with_hooks(bound, &three), None);
        assert_eq!(with_hooks(bound, &[hook(Some(-1))]), None);
    }

    /// A child running `script`, left for `wait` to reap.
    #[allow(clippy::zombie_processes)]
    fn spawn(script: &str) -> libc::pid_t {
        let child = std::process::Command::new("/bin/sh")
            .args(["-c", script])
            .spawn()
            .unwrap();
        child.id() as libc::pid_t
    }

    #[test]
    fn exit_codes_and_signals() {
        assert_eq!(wait(spawn("exit 3"), Duration::from_secs(10)).unwrap(), 3);
        assert_eq!(wait(spawn("kill -9 $$"), Duration::from_secs(10)).unwrap(), 128 + 9);
    }

    #[test]
    fn the_wait_is_bounded() {
        let pid = spawn("exec sleep 10");
        let started = Instant::now();
        let err = wait(pid, Duration::from_millis(100)).unwrap_err();
        assert!(started.elapsed() < Duration::from_secs(5));
        assert!(err.message().contains("did not exit within 100ms"), "{err}");
        nix::sys::signal::kill(Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL).unwrap();
        assert_eq!(wait(pid, Duration::from_secs(10)).unwrap(), 128 + 9);
    }

    #[test]
    fn only_a_child_can_be_waited_for() {
        let err = wait(1, Duration::from_secs(1)).unwrap_err();
        assert_eq!(err.message(), "process 1 is not a child of this process");
    }
}
