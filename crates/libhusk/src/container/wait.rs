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

/// Kills our own child `pid` (which must then be reaped).
pub(crate) fn sigkill(pid: libc::pid_t) {
    let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL);
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
