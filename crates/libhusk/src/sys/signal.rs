//! Signals and child exits: what nix wraps only in a form husk cannot use
//! (a parsed wait status, a blocking sigwait) or not at all.

use std::io;
use std::os::unix::process::CommandExt;
use std::process::Command;

use nix::sys::signal::{SigSet, Signal};

use super::check_int;

/// Sends `sig` to `pid` (any signal number, real-time ones too).
pub fn kill(pid: libc::pid_t, sig: libc::c_int) -> io::Result<()> {
    // SAFETY: kill takes plain integers and touches no memory of ours.
    check_int(unsafe { libc::kill(pid, sig) }).map(drop)
}

/// Takes a pending signal of `set` off this thread without waiting
/// (sigtimedwait with a zero timeout): the signal is discarded, not delivered.
/// Returns the signal's number, or the error (EAGAIN: none was pending).
pub fn take_pending(set: &SigSet) -> io::Result<libc::c_int> {
    let now = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: the set and the timeout are live; a null siginfo is allowed.
    check_int(unsafe { libc::sigtimedwait(set.as_ref(), std::ptr::null_mut(), &now) })
}

/// This process's action for `sig`: SIG_DFL, SIG_IGN or a handler.
fn action(sig: libc::c_int) -> Option<libc::sighandler_t> {
    // SAFETY: with a null new action, sigaction only writes the current one
    // into a live local.
    unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        (libc::sigaction(sig, std::ptr::null(), &mut action) == 0).then_some(action.sa_sigaction)
    }
}

/// Whether this process ignores `sig` (its action is SIG_IGN).
pub fn is_ignored(sig: libc::c_int) -> bool {
    action(sig) == Some(libc::SIG_IGN)
}

/// Whether `sig` takes its default action here (no handler, not ignored).
pub fn is_default(sig: libc::c_int) -> bool {
    action(sig) == Some(libc::SIG_DFL)
}

/// INT, TERM, HUP and QUIT, the signals that ask husk to end, blocked while
/// it lives: for a step that must not be cut in half (a freeze that must be
/// thawed again). Dropped, it unblocks those it blocked, and one that came
/// meanwhile is delivered then. Those blocked before stay blocked.
pub struct EndingDeferred(SigSet);

impl EndingDeferred {
    pub fn block() -> EndingDeferred {
        let mut set = SigSet::empty();
        for sig in [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP, Signal::SIGQUIT] {
            set.add(sig);
        }
        let before = SigSet::thread_get_mask().unwrap_or_else(|_| SigSet::all());
        let mut blocked = SigSet::empty();
        for sig in set.iter().filter(|sig| !before.contains(*sig)) {
            blocked.add(sig);
        }
        let _ = blocked.thread_block();
        EndingDeferred(blocked)
    }
}

impl Drop for EndingDeferred {
    fn drop(&mut self) {
        let _ = self.0.thread_unblock();
    }
}

/// Has the process that `cmd` spawns get `sig` when the thread that spawned it
/// exits (PR_SET_PDEATHSIG, set in the child between fork and exec).
pub fn parent_death_signal(cmd: &mut Command, sig: Signal) {
    // SAFETY: the closure only calls prctl, which is async-signal-safe and does
    // not allocate, as pre_exec requires.
    unsafe {
        cmd.pre_exec(move || {
            let _ = nix::sys::prctl::set_pdeathsig(sig);
            Ok(())
        });
    }
}

/// Has the process that `cmd` spawns start with no signal blocked (std's
/// spawn keeps the caller's mask): a foreground `run` blocks every signal it
/// forwards, and a hook, criu or newuidmap, or what they leave behind, would
/// never see them.
pub fn empty_signal_mask(cmd: &mut Command) {
    // SAFETY: the closure only fills a local sigset_t and calls
    // pthread_sigmask, both async-signal-safe and allocation-free, as
    // pre_exec requires.
    unsafe {
        cmd.pre_exec(|| {
            let mut set: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            libc::pthread_sigmask(libc::SIG_SETMASK, &set, std::ptr::null_mut());
            Ok(())
        });
    }
}

/// Reaps one child of this process that has exited, without blocking: its pid
/// and raw wait status, or None when none has exited (waitpid -1, WNOHANG).
pub fn reap_any_nohang() -> io::Result<Option<(libc::pid_t, libc::c_int)>> {
    let mut status = 0;
    // SAFETY: waitpid writes the status into a live local.
    let pid = check_int(unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) })?;
    Ok((pid > 0).then_some((pid, status)))
}

/// Ends this process as a write to a pipe nobody reads ends a program that
/// does not ignore SIGPIPE (as runc and crun end): killed by SIGPIPE.
pub fn die_of_sigpipe() -> ! {
    // SAFETY: restoring the default action and raising a signal touch no memory.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
        libc::raise(libc::SIGPIPE);
    }
    // Blocked: exit as a shell reports a death by SIGPIPE.
    std::process::exit(128 + libc::SIGPIPE)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signal_zero_tells_whether_a_process_exists() {
        kill(std::process::id() as libc::pid_t, 0).unwrap();
        let e = kill(i32::MAX, 0).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::ESRCH));
    }

    #[test]
    fn an_ignored_signal_is_told_from_a_handled_one() {
        // SAFETY: SIGXFSZ's action is this test's alone; it is put back.
        let old = unsafe { libc::signal(libc::SIGXFSZ, libc::SIG_IGN) };
        assert!(is_ignored(libc::SIGXFSZ) && !is_default(libc::SIGXFSZ));
        // SAFETY: as above.
        unsafe { libc::signal(libc::SIGXFSZ, libc::SIG_DFL) };
        assert!(!is_ignored(libc::SIGXFSZ) && is_default(libc::SIGXFSZ));
        // SAFETY: as above.
        unsafe { libc::signal(libc::SIGXFSZ, old) };
    }

    #[test]
    fn nothing_pending_is_eagain() {
        let mut set = SigSet::empty();
        set.add(Signal::SIGPIPE);
        assert_eq!(take_pending(&set).unwrap_err().raw_os_error(), Some(libc::EAGAIN));
    }
}
