//! A foreground `run` or `exec`: husk waits for the container process as a
//! subreaper, passes on the signals its user sends, proxies a terminal when it
//! holds the pty master, and exits with the process's status.

use std::cell::Cell;
use std::io::Write;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::time::{Duration, Instant};

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};

use crate::container::notify::Relay;
use crate::error::{Context, Result};
use crate::process::console;
use crate::sys;

/// Signals husk keeps for itself: those that cannot be caught, the faults of
/// husk's own code, and SIGPIPE, which husk ignores (a write to a closed pipe
/// is its own error, not the container's). Every other signal, the real-time
/// ones too, is passed on to the container process as runc does (SIGCHLD
/// reaps, SIGWINCH resizes a proxied pty): one that killed husk instead
/// would leave the container running with no one waiting for it.
const KEPT: [Signal; 9] = [
    Signal::SIGKILL,
    Signal::SIGSTOP,
    Signal::SIGSEGV,
    Signal::SIGBUS,
    Signal::SIGFPE,
    Signal::SIGILL,
    Signal::SIGTRAP,
    Signal::SIGSYS,
    Signal::SIGPIPE,
];

/// The signals that ask husk to end: before the process runs, they end the
/// `run` or `exec` (`Foreground::until_readable`, `Foreground::unstarted_end`).
pub(super) const ENDING: [Signal; 4] = [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP, Signal::SIGQUIT];

/// How long a `run` or `exec` asked to end waits for its process to start and take the signal.
pub const GRACE: Duration = Duration::from_secs(2);

pub struct Foreground {
    set: SigSet,
    /// An ending signal that came before the process ran, and the time by
    /// which the process must run to take it.
    asked: Cell<Option<(Signal, Instant)>>,
}

fn ending_set() -> SigSet {
    let mut set = SigSet::empty();
    for sig in ENDING {
        set.add(sig);
    }
    set
}

impl Foreground {
    /// Blocks the signals it waits for before anything is cloned, so that an early
    /// exit's SIGCHLD cannot be lost, and becomes a subreaper.
    pub fn prepare() -> Result<Foreground> {
        let foreground = Foreground::unheld();
        foreground.hold()?;
        Ok(foreground)
    }

    /// [`prepare`](Self::prepare) but for the signals, which [`hold`](Self::hold)
    /// blocks: `run` holds them once it has read the bundle, which may make
    /// it wait (a config.json that is a FIFO, /proc/kmsg), and which an
    /// ending signal must still end then, with nothing made yet.
    pub fn unheld() -> Foreground {
        // SigSet::all() leaves out glibc's own signals (32 and 33).
        let mut set = SigSet::all();
        for s in KEPT {
            set.remove(s);
        }
        let _ = nix::sys::prctl::set_child_subreaper(true);
        Foreground {
            set,
            asked: Cell::new(None),
        }
    }

    /// Blocks the signals this foreground command takes.
    pub fn hold(&self) -> Result<()> {
        self.set.thread_block().context(|| "block signals".into())
    }

    /// Waits until `channel` has something to read, or `deadline` passes
    /// (false). husk blocks the signals
    /// it passes on from before the clone: a `run` or `exec` that never gets
    /// as far as its process (the container froze its cgroup, ptraced or
    /// stopped the process, a hook that never ends) ignored SIGINT, SIGTERM,
    /// SIGHUP and SIGQUIT for ever (review 42, F3). One of them now gives
    /// the process `GRACE` to get there, to be passed on to it as before (by
    /// `wait`); past that, it is returned, for the caller to end the
    /// command. Other signals stay pending, for the process.
    pub fn until_readable(
        &self,
        channel: BorrowedFd<'_>,
        deadline: Option<Instant>,
    ) -> std::result::Result<bool, Signal> {
        let Ok(signals) = SignalFd::with_flags(&ending_set(), SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK) else {
            return Ok(true); // the receive then blocks, as before
        };
        loop {
            let asked = self.asked.get();
            let until = [asked.map(|(_, by)| by), deadline].into_iter().flatten().min();
            let timeout = match until {
                None => PollTimeout::NONE,
                Some(by) => {
                    PollTimeout::try_from(by.saturating_duration_since(Instant::now())).unwrap_or(PollTimeout::MAX)
                }
            };
            let mut fds = [
                PollFd::new(channel, PollFlags::POLLIN),
                PollFd::new(signals.as_fd(), PollFlags::POLLIN),
            ];
            let watched = if asked.is_none() { 2 } else { 1 };
            match poll(&mut fds[..watched], timeout) {
                Err(nix::errno::Errno::EINTR) => continue,
                Err(_) => return Ok(true),
                Ok(_) => {}
            }
            if fds[0].any().unwrap_or(true) {
                return Ok(true);
            }
            if let Some(sig) = self.past_grace() {
                return Err(sig);
            }
            if deadline.is_some_and(|by| Instant::now() >= by) {
                return Ok(false);
            }
            if asked.is_none() {
                if let Ok(Some(info)) = signals.read_signal() {
                    self.take(info.ssi_signo as i32);
                }
            }
        }
    }

    /// For a caller that waits for the process in slices of its own: the
    /// ending signal that came before the process ran and whose grace is
    /// over, if one did. Never waits.
    pub fn unstarted_end(&self) -> Option<Signal> {
        if self.asked.get().is_none() {
            if let Ok(sig) = sys::signal::take_pending(&ending_set()) {
                self.take(sig);
            }
        }
        self.past_grace()
    }

    fn take(&self, signo: i32) {
        let sig = Signal::try_from(signo).unwrap_or(Signal::SIGTERM);
        self.asked.set(Some((sig, Instant::now() + GRACE)));
    }

    fn past_grace(&self) -> Option<Signal> {
        self.asked
            .get()
            .filter(|(_, by)| Instant::now() >= *by)
            .map(|(sig, _)| sig)
    }

    /// The process runs: an ending signal taken while it did not is pending
    /// again, for the process. To the process, not the thread (raise): a
    /// thread's own signals are taken before the process's, and this one
    /// would overtake signals that came before it (review 43, F3).
    fn pass_on_asked(&self) {
        if let Some((sig, _)) = self.asked.take() {
            let _ = sys::signal::kill(std::process::id() as libc::pid_t, sig as i32);
        }
    }

    /// Passes on to `pid`, which runs, the signals that came so far (but
    /// SIGCHLD and SIGWINCH, left for `wait`): for a wait of husk's own
    /// before `wait`, the poststart hooks', which kept them from it for as
    /// long as a hook ran (review 43, F2).
    /// Returns whether one of them asked to end.
    pub fn pass_on_pending(&self, pid: libc::pid_t) -> bool {
        self.pass_on_asked();
        let mut set = self.set;
        set.remove(Signal::SIGCHLD);
        set.remove(Signal::SIGWINCH);
        let mut ending = false;
        while let Ok(sig) = sys::signal::take_pending(&set) {
            ending |= ENDING.iter().any(|e| *e as i32 == sig);
            let _ = sys::signal::kill(pid, sig);
        }
        ending
    }

    /// Waits for `pid` (our child), reaping whatever else is reparented to us,
    /// and meanwhile relays the container's notifications when given `relay`.
    /// Returns the exit code husk should exit with: the status, or 128+N.
    pub fn wait(&self, pid: libc::pid_t, master: Option<OwnedFd>, mut relay: Option<Relay>) -> Result<i32> {
        self.pass_on_asked();
        let signals = SignalFd::with_flags(&self.set, SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK)
            .context(|| "signalfd".into())?;
        let _raw = master.as_ref().map(|m| {
            if let Some((rows, cols)) = console::caller_size() {
                console::set_size(m.as_fd(), rows, cols);
            }
            console::RawMode::enter()
        });
        let mut stdin_open = master.is_some();
        let mut master_open = master.is_some();
        loop {
            if let Some(status) = reap(pid) {
                if let Some(m) = &master {
                    drain(m);
                }
                if let Some(Err(e)) = relay.as_ref().map(Relay::drain) {
                    crate::log::warn(&format!("relay notifications: {e}"));
                }
                return Ok(exit_code(status));
            }
            let stdin = std::io::stdin();
            let mut fds = vec![PollFd::new(signals.as_fd(), PollFlags::POLLIN)];
            let master_at = watch(&mut fds, master.as_ref().filter(|_| master_open).map(|m| m.as_fd()));
            let stdin_at = watch(&mut fds, Some(stdin.as_fd()).filter(|_| stdin_open));
            let relay_at = watch(&mut fds, relay.as_ref().map(|r| r.as_fd()));
            match poll(&mut fds, PollTimeout::NONE) {
                Err(nix::errno::Errno::EINTR) | Ok(_) => {}
                Err(e) => return Err(e).context(|| "wait for the container".into()),
            }
            let ready = |i: Option<usize>| {
                i.and_then(|i| fds.get(i))
                    .and_then(|f| f.revents())
                    .is_some_and(|r| !r.is_empty())
            };
            let (sig_ready, master_ready, stdin_ready, relay_ready) =
                (ready(Some(0)), ready(master_at), ready(stdin_at), ready(relay_at));
            drop(fds);
            if sig_ready {
                self.handle_signals(&signals, pid, master.as_ref());
            }
            if let (true, Some(m)) = (master_ready, &master) {
                master_open = console::pump(m.as_fd(), &mut std::io::stdout());
            }
            if let (true, Some(m)) = (stdin_ready, &master) {
                let mut to = std::fs::File::from(m.try_clone()?);
                stdin_open = console::pump(stdin.as_fd(), &mut to);
            }
            if let (true, Some(r)) = (relay_ready, &relay) {
                // The host's socket gone (its manager restarted) is no reason
                // to end the container: say so once and stop relaying.
                // A host socket with no room keeps us only while the process lives.
                let exited = |wait| {
                    std::thread::sleep(wait);
                    exited(pid)
                };
                if let Err(e) = r.forward_unless(exited) {
                    crate::log::warn(&format!("stop relaying notifications: {e}"));
                    relay = None;
                }
            }
        }
    }

    fn handle_signals(&self, signals: &SignalFd, pid: libc::pid_t, master: Option<&OwnedFd>) {
        while let Ok(Some(info)) = signals.read_signal() {
            let sig = info.ssi_signo as i32;
            match (sig, master) {
                (libc::SIGCHLD, _) => {}
                (libc::SIGWINCH, Some(m)) => {
                    if let Some((rows, cols)) = console::caller_size() {
                        console::set_size(m.as_fd(), rows, cols);
                    }
                }
                // A process that is gone already is fine.
                _ => {
                    let _ = sys::signal::kill(pid, sig);
                }
            }
        }
    }
}

/// Adds `fd` (when there is one) to the poll set; its index there.
fn watch<'a>(fds: &mut Vec<PollFd<'a>>, fd: Option<BorrowedFd<'a>>) -> Option<usize> {
    fd.map(|fd| {
        fds.push(PollFd::new(fd, PollFlags::POLLIN));
        fds.len() - 1
    })
}

/// Reaps every child that has exited; returns `pid`'s wait status once it has.
fn reap(pid: libc::pid_t) -> Option<i32> {
    while let Ok(Some((reaped, status))) = sys::signal::reap_any_nohang() {
        if reaped == pid {
            return Some(status);
        }
    }
    None
}

/// Whether our child `pid` has exited (it is left to be reaped).
pub(super) fn exited(pid: libc::pid_t) -> bool {
    use nix::sys::wait::{waitid, Id, WaitPidFlag, WaitStatus};
    let flags = WaitPidFlag::WEXITED | WaitPidFlag::WNOHANG | WaitPidFlag::WNOWAIT;
    !matches!(
        waitid(Id::Pid(nix::unistd::Pid::from_raw(pid)), flags),
        Ok(WaitStatus::StillAlive)
    )
}

/// What the process wrote before it exited but we had not yet copied.
fn drain(master: &OwnedFd) {
    let _ = sys::fs::set_nonblocking(master.as_fd());
    while console::pump(master.as_fd(), &mut std::io::stdout()) {}
    let _ = std::io::stdout().flush();
}

pub fn exit_code(status: i32) -> i32 {
    if libc::WIFSIGNALED(status) {
        128 + libc::WTERMSIG(status)
    } else {
        libc::WEXITSTATUS(status)
    }
}
