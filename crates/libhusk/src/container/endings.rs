//! The signals that ask husk to end (INT, TERM, HUP, QUIT) while a command
//! sets a container or a process up. A foreground `run` or `exec` holds them
//! for the process (`Foreground`); `create`, `run -d` and `exec -d` hold them
//! with [`Held`] until they reach a wait, where one ends the command as a
//! failure does (what was made is undone: the init or exec process killed,
//! the cgroup and the state removed, the network devices moved back), and is
//! then raised again. Killed halfway instead, `create` left a stopped
//! container with its cgroup and state for `delete`, and the network devices
//! it had moved in were lost with the namespace (review 51b, L2).

use std::cell::{Cell, RefCell};
use std::os::fd::{AsFd, BorrowedFd};
use std::time::Instant;

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{SigSet, SigmaskHow, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};

use super::foreground::{Foreground, ENDING};
use crate::error::Error;
use crate::sys;

/// How a command that sets something up watches for an ending signal.
#[derive(Clone, Copy)]
pub(crate) enum Endings<'a> {
    /// A foreground `run` or `exec`: the signal is the process's once it
    /// runs, and ends the command only when it does not run within a grace.
    Foreground(&'a Foreground),
    /// A detached command: the signal ends it at once.
    Held(&'a Held),
}

impl Endings<'_> {
    /// Waits until `channel` has something to read (true) or `deadline`
    /// passes (false); the ending signal that ends the wait instead.
    pub(crate) fn until_readable(&self, channel: BorrowedFd<'_>, deadline: Option<Instant>) -> Result<bool, Signal> {
        match self {
            Endings::Foreground(fg) => fg.until_readable(channel, deadline),
            Endings::Held(held) => held.until_readable(channel, deadline),
        }
    }

    /// Blocks the signals watched, from here on.
    pub(crate) fn hold(&self) -> crate::Result<()> {
        match self {
            Endings::Foreground(fg) => fg.hold(),
            Endings::Held(held) => held.hold(),
        }
    }

    /// The ending signal that ends the command now, if one came. Never waits.
    pub(crate) fn ending(&self) -> Option<Signal> {
        match self {
            Endings::Foreground(fg) => fg.unstarted_end(),
            Endings::Held(held) => held.came(),
        }
    }

    /// The error of `what` (`run of container "ID"`) that `sig` ended before
    /// `process` (what it starts) ran.
    pub(crate) fn error(&self, what: &str, process: &str, sig: Signal) -> Error {
        match self {
            Endings::Foreground(_) => Error::new(format!(
                "{what}: {sig} came, and {process} had not started within {}s",
                super::foreground::GRACE.as_secs()
            )),
            Endings::Held(held) => {
                let e = Error::new(format!(
                    "{what}: {sig} came before {process} ran; what was made is undone"
                ));
                held.said.replace(Some(e.to_string()));
                e
            }
        }
    }
}

/// The ending signals a detached command holds while it sets up: those its
/// caller neither blocks (it takes them its own way) nor ignores (a `nohup`
/// caller's SIGHUP must not end it). Dropped, it raises again the one it took,
/// and lets them all through: the caller gets it as it would have, once
/// what the command made is undone (a shell's `husk create` ended by ^C
/// still dies of SIGINT).
pub(crate) struct Held {
    /// Empty once let go.
    set: Cell<SigSet>,
    taken: Cell<Option<Signal>>,
    /// The command's error, logged if a signal then ends husk: its caller
    /// would never print it.
    said: RefCell<Option<String>>,
}

impl Held {
    /// The signals to hold, as the caller has them now; [`hold`](Self::hold)
    /// blocks them: once the bundle is read, which may wait (a config.json
    /// that is a FIFO) and which a signal must still end then, with nothing
    /// made yet.
    pub(crate) fn unheld() -> Held {
        let blocked = SigSet::thread_get_mask().unwrap_or_else(|_| SigSet::all());
        let mut set = SigSet::empty();
        for sig in ENDING {
            if !blocked.contains(sig) && !sys::signal::is_ignored(sig as libc::c_int) {
                set.add(sig);
            }
        }
        Held {
            set: Cell::new(set),
            taken: Cell::new(None),
            said: RefCell::new(None),
        }
    }

    pub(crate) fn hold(&self) -> crate::Result<()> {
        use crate::error::Context;
        nix::sys::signal::pthread_sigmask(SigmaskHow::SIG_BLOCK, Some(&self.set.get()), None)
            .map_err(std::io::Error::from)
            .context(|| "block signals".into())
    }

    fn is_empty(&self) -> bool {
        ENDING.iter().all(|sig| !self.set.get().contains(*sig))
    }

    /// The command's outcome: its error is what is logged should a signal,
    /// taken or still pending, end husk as the signals are let go.
    pub(crate) fn outcome<T>(&self, result: &crate::Result<T>) {
        self.said.replace(result.as_ref().err().map(|e| e.to_string()));
    }

    /// As [`outcome`](Self::outcome), for a command that failed with `e`.
    pub(crate) fn failed(&self, e: &Error) {
        self.said.replace(Some(e.to_string()));
    }

    /// Lets the signals through now, a signal that came first raised again
    /// (after its error is logged, when it will end husk).
    pub(crate) fn let_go(&self) {
        let set = self.set.replace(SigSet::empty());
        let pending = || {
            sys::signal::take_pending(&set)
                .ok()
                .and_then(|s| Signal::try_from(s).ok())
        };
        if let Some(sig) = self.taken.take().or_else(pending) {
            let said = self.said.take();
            if let (true, Some(said)) = (sys::signal::is_default(sig as libc::c_int), said) {
                crate::log::error(&said);
            }
            // Pending again (blocked still), delivered as we unblock it.
            let _ = sys::signal::kill(std::process::id() as libc::pid_t, sig as libc::c_int);
        }
        let _ = nix::sys::signal::pthread_sigmask(SigmaskHow::SIG_UNBLOCK, Some(&set), None);
    }

    /// As [`Endings::until_readable`]: the first ending signal ends the wait.
    fn until_readable(&self, channel: BorrowedFd<'_>, deadline: Option<Instant>) -> Result<bool, Signal> {
        if let Some(sig) = self.came() {
            return Err(sig);
        }
        let flags = SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK;
        let signals = match self.is_empty() {
            true => None,
            // None: the receive then waits as it would without us.
            false => SignalFd::with_flags(&self.set.get(), flags).ok(),
        };
        loop {
            let timeout = match deadline {
                None => PollTimeout::NONE,
                Some(by) => {
                    PollTimeout::try_from(by.saturating_duration_since(Instant::now())).unwrap_or(PollTimeout::MAX)
                }
            };
            let mut fds = vec![PollFd::new(channel, PollFlags::POLLIN)];
            if let Some(s) = &signals {
                fds.push(PollFd::new(s.as_fd(), PollFlags::POLLIN));
            }
            match poll(&mut fds, timeout) {
                Err(nix::errno::Errno::EINTR) => continue,
                Err(_) => return Ok(true),
                Ok(_) => {}
            }
            if fds[0].any().unwrap_or(true) {
                return Ok(true);
            }
            drop(fds);
            if let Some(sig) = self.came() {
                return Err(sig);
            }
            if deadline.is_some_and(|by| Instant::now() >= by) {
                return Ok(false);
            }
        }
    }

    /// The ending signal that came, taken off the pending ones (and kept, to
    /// be raised again). Never waits.
    fn came(&self) -> Option<Signal> {
        if self.taken.get().is_none() && !self.is_empty() {
            if let Ok(signo) = sys::signal::take_pending(&self.set.get()) {
                self.taken.set(Signal::try_from(signo).ok());
            }
        }
        self.taken.get()
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        self.let_go();
    }
}
