//! `start`: lets a created init exec the container's program, then the
//! poststart hooks and the NOTIFY_SOCKET relay.

use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;
use std::time::Duration;

use super::open_init;
use crate::bail;
use crate::container::endings::Endings;
use crate::container::foreground::Foreground;
use crate::container::notify::{self, Relay};
use crate::error::{Context, Error, Result};
use crate::state::{Saved, Status, Store, FIFO};
use crate::sys;

/// Starts a created container: its init runs the startContainer hooks and
/// execs the program; an error there (a failed exec) is this call's error.
/// Then runs the poststart hooks and, when the container was created with
/// NOTIFY_SOCKET set, relays its notifications until READY=1 or its end.
pub fn start(store: &Store, id: &str) -> Result<()> {
    crate::log::begin("start");
    super::wait::setup_timeout()?; // a bad value refused before anything
    let locked = store.lock(id)?;
    let saved = locked.load(id)?;
    crate::log::step("state loaded");
    match locked.status(&saved) {
        Status::Created => {
            let notifications = start_process(&locked.dir, &saved, None, None)?;
            // kill, state, delete -f must work while the poststart hooks run
            // and we wait for READY=1.
            drop(locked);
            poststart(&saved, None)?;
            relay_until_ready(notifications)
        }
        Status::Stopped => bail!("cannot start a container that has stopped"),
        Status::Paused => bail!("cannot start a container in the paused state"),
        _ => bail!("cannot start an already running container"),
    }
}

/// Starts the program; the caller runs the poststart hooks ([`poststart`])
/// once it has let the container's lock go. With NOTIFY_SOCKET, returns the
/// container's notifications, which the caller then relays with
/// [`relay_until_ready`]. `early`:
/// what `run` took before it let the init go on, if it did; `endings`: how
/// `run -d` watches for a signal that ends it.
pub(super) fn start_process(
    dir: &Path,
    saved: &Saved,
    early: Option<EarlyStart>,
    endings: Option<Endings>,
) -> Result<Option<Notifications>> {
    let (fifo, pidfd) = fifo_and_pidfd(saved, early)?;
    let relay = start_relaying(dir, saved, saved.pid, fifo, &pidfd, endings)?;
    Ok(relay.map(|relay| Notifications { relay, pidfd }))
}

/// The read end of the exec fifo if `run` opened it first, and a pidfd of
/// the init: `run`'s, or one taken now, while a created init is still
/// blocked on the fifo and so surely alive.
fn fifo_and_pidfd(saved: &Saved, early: Option<EarlyStart>) -> Result<(Option<OwnedFd>, OwnedFd)> {
    Ok(match early {
        Some(e) => (Some(e.fifo), e.pidfd),
        None => (None, open_init(saved)?),
    })
}

/// A started container's notifications, and its init's pidfd.
pub(super) struct Notifications {
    relay: Relay,
    pidfd: OwnedFd,
}

/// Relays the container's notifications until READY=1 or its end.
pub(super) fn relay_until_ready(notifications: Option<Notifications>) -> Result<()> {
    if let Some(n) = notifications {
        notify::relay_until_ready(&n.relay, &n.pidfd)?;
        crate::log::step("notifications relayed until READY=1");
    }
    Ok(())
}

/// Starts the program and runs the poststart hooks; with NOTIFY_SOCKET,
/// returns the relay of the container's notifications for the caller, which
/// stays as the container's parent, to run: MAINPID is the caller's own pid.
pub(super) fn start_in_foreground(
    dir: &Path,
    saved: &Saved,
    early: Option<EarlyStart>,
    fg: &Foreground,
) -> Result<Option<Relay>> {
    let (fifo, pidfd) = fifo_and_pidfd(saved, early)?;
    let main_pid = std::process::id() as libc::pid_t;
    let relay = start_relaying(dir, saved, main_pid, fifo, &pidfd, Some(Endings::Foreground(fg)))?;
    if let Some(hooks) = poststart_hooks(saved) {
        // A hook that never ends kept run waiting after the process it
        // passed an ending signal on to had ended (review 43b, N2): such a
        // hook is ended then. A process that ends by itself leaves its
        // hooks their time.
        let asked_to_end = std::cell::Cell::new(false);
        let pass_on = || {
            if fg.pass_on_pending(saved.pid) {
                asked_to_end.set(true);
            }
            (asked_to_end.get() && super::foreground::exited(saved.pid))
                .then(|| Error::new("ended: the container's process has ended, after husk passed on a signal to end"))
        };
        let state = saved.hook_state("running");
        if poststart_failure_fails_start(saved) {
            match crate::hooks::run_all_unless("poststart", hooks, &state, &pass_on) {
                // A hook husk ended because the process ended on a signal
                // it passed on: the process's status is run's outcome.
                Err(e) if asked_to_end.get() => crate::log::warn(&e.to_string()),
                // run kills the container on this error.
                Err(e) => return Err(e),
                Ok(()) => {}
            }
        } else {
            crate::hooks::run_all_warn_meanwhile("poststart", hooks, &state, &pass_on);
        }
        crate::log::step("poststart hooks run");
    }
    Ok(relay)
}

fn start_relaying(
    dir: &Path,
    saved: &Saved,
    main_pid: libc::pid_t,
    early_fifo: Option<OwnedFd>,
    pidfd: &OwnedFd,
    endings: Option<Endings>,
) -> Result<Option<Relay>> {
    // Bound before the program runs, so that no notification is lost.
    let relay = match (&saved.notify_name, &saved.notify_socket) {
        (Some(name), Some(host)) => Some(Relay::new(notify::bind(dir, name)?, host, main_pid)?),
        _ => None,
    };
    release(dir, saved, early_fifo, pidfd, endings)?;
    crate::log::step("init released: startContainer hooks run, program exec'd");
    Ok(relay)
}

/// Runs the poststart hooks, with the container's lock let go: a hook that
/// takes long (or waits on the container) must not keep `delete -f` out.
/// For a config of runtime-spec 1.3 or later, a failed hook is the error,
/// the hooks after it are not run, and the container is stopped (killed;
/// `delete` removes it); before 1.3 a failure was a warning.
/// With `endings` (`run -d`), an ending signal ends the hook that runs and
/// is the error, whatever the version.
pub(super) fn poststart(saved: &Saved, endings: Option<Endings>) -> Result<()> {
    let Some(hooks) = poststart_hooks(saved) else {
        return Ok(());
    };
    let state = saved.hook_state("running");
    let ended = || {
        let endings = endings?;
        let what = format!("run of container \"{}\"", saved.id);
        endings
            .ending()
            .map(|sig| endings.error(&what, "its poststart hooks", sig))
    };
    if !poststart_failure_fails_start(saved) {
        crate::hooks::run_all_warn_meanwhile("poststart", hooks, &state, &ended);
    } else if let Err(e) = crate::hooks::run_all_unless("poststart", hooks, &state, &ended) {
        if let Err(kill) = super::delete::kill_and_wait(saved) {
            crate::log::warn(&format!("stop the container after its failed poststart hook: {kill}"));
        }
        return Err(e);
    }
    if let Some(e) = ended() {
        return Err(e);
    }
    crate::log::step("poststart hooks run");
    Ok(())
}

/// Whether the config is of runtime-spec 1.3 or later, which made a failed
/// poststart hook an error that stops the container (runtime-tools, at 1.2,
/// checks the warning of the older rule).
fn poststart_failure_fails_start(saved: &Saved) -> bool {
    crate::spec::minor_version(&saved.oci_version).is_some_and(|minor| minor >= 3)
}

fn poststart_hooks(saved: &Saved) -> Option<&[oci_spec::runtime::Hook]> {
    saved.hooks.as_ref().and_then(|h| h.poststart().as_deref())
}

/// Lets a created init exec its program: opening the fifo's read end unblocks the
/// init; its exec then closes the write end (success) or it writes the error.
/// The fifo is removed only afterwards, since the init opens it by name after Ready.
/// With `early_fifo` (`run`), the init went on at once, and may have exec'd,
/// and its program ended, by now. With `endings` (`run`), a signal that asks
/// husk to end ends the wait (in the foreground, once the process has had
/// its grace).
fn release(
    dir: &Path,
    saved: &Saved,
    early_fifo: Option<OwnedFd>,
    pidfd: &OwnedFd,
    endings: Option<Endings>,
) -> Result<()> {
    let fifo_path = dir.join(FIFO);
    let opened_first = early_fifo.is_some();
    let fifo = match early_fifo {
        Some(fifo) => fifo,
        None => open_fifo(&fifo_path)?,
    };
    // The init runs the startContainer hooks now: as long as their timeouts more.
    let hooks = saved.hooks.as_ref().and_then(|h| h.start_container().as_deref());
    let bound = super::wait::with_hooks(super::wait::setup_timeout()?, hooks.unwrap_or(&[]));
    let result = await_exec(&fifo, pidfd, saved, opened_first, endings, bound);
    match std::fs::remove_file(&fifo_path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            return Err(e).context(|| format!("remove {}", fifo_path.display()))
        }
        _ => {}
    }
    result
}

/// The read end of the exec fifo at `path`.
pub(super) fn open_fifo(path: &Path) -> Result<OwnedFd> {
    let flags = libc::O_RDONLY | libc::O_NONBLOCK;
    sys::openat(libc::AT_FDCWD, &sys::cstring(path)?, flags, 0).context(|| format!("open {}", path.display()))
}

/// What `run` takes before it lets a committed init go on
/// (`create::open_exec_fifo_early`): the read end of the exec fifo, so that
/// the init does not wait for it, and a pidfd of the init, taken while it
/// is surely alive (it waits for `run` then).
pub(super) struct EarlyStart {
    fifo: OwnedFd,
    pidfd: OwnedFd,
}

impl EarlyStart {
    /// `fifo`: the read end, opened before the clone.
    pub(super) fn new(fifo: OwnedFd, pid: libc::pid_t) -> Result<EarlyStart> {
        Ok(EarlyStart {
            fifo,
            pidfd: sys::pidfd_open(pid).context(|| format!("pidfd of container init {pid}"))?,
        })
    }
}

/// How often a start that sees nothing on the fifo asks the init whether it
/// has exec'd meanwhile.
const EXEC_CHECK: Duration = Duration::from_millis(20);

/// `opened_first`: we opened the fifo before the init could open its end, so
/// an init that did shows it (POLLHUP once it is closed) even if it is gone.
/// An init that has not exec'd within `bound` (stopped, frozen; the
/// startContainer hooks' timeouts are in it) is killed:
/// it must not run the program of a container whose `start` failed.
fn await_exec(
    fifo: &OwnedFd,
    pidfd: &OwnedFd,
    saved: &Saved,
    opened_first: bool,
    endings: Option<Endings>,
    bound: Option<Duration>,
) -> Result<()> {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    let slice = PollTimeout::try_from(EXEC_CHECK).expect("fits");
    let deadline = bound.map(|b| std::time::Instant::now() + b);
    loop {
        let mut fds = [
            PollFd::new(fifo.as_fd(), PollFlags::POLLIN),
            PollFd::new(pidfd.as_fd(), PollFlags::POLLIN),
        ];
        match poll(&mut fds, slice) {
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(e).context(|| "wait for container start".into()),
            Ok(_) => {}
        }
        let fifo_ready = fds[0].revents().is_some_and(|r| !r.is_empty());
        let init_gone = fds[1].revents().is_some_and(|r| !r.is_empty());
        if init_gone && !fifo_ready && opened_first {
            bail!("container init exited before it could start");
        }
        if !fifo_ready && !init_gone {
            match init_progress(saved.init_stat_even_ended().as_ref()) {
                InitProgress::Execed => return Ok(()),
                InitProgress::EndingBeforeExec => {
                    let why = ended_before_exec(saved, pidfd);
                    return Err(Error::new(
                        why.unwrap_or_else(|| "container init exited before it could start".into()),
                    ));
                }
                InitProgress::Waiting => match (endings.and_then(|e| Some((e, e.ending()?))), bound) {
                    (Some((endings, sig)), _) => {
                        let what = format!("run of container \"{}\"", saved.id);
                        return Err(endings.error(&what, "the container's process", sig));
                    }
                    (None, Some(bound)) if deadline.is_some_and(|by| std::time::Instant::now() >= by) => {
                        let _ = sys::pidfd_send_signal(pidfd, libc::SIGKILL);
                        return Err(super::wait::stalled("container init", bound));
                    }
                    (None, _) => continue,
                },
            }
        }
        let mut buf = [0u8; 4096];
        return match nix::unistd::read(fifo, &mut buf) {
            Ok(n) if n > 0 => Err(Error::new(String::from_utf8_lossy(&buf[..n]).into_owned())),
            // EOF: the exec closed the write end, or the init's end did.
            Ok(_) => match ended_before_exec(saved, pidfd) {
                Some(why) => Err(Error::new(why)),
                None => Ok(()),
            },
            Err(nix::errno::Errno::EAGAIN) if !init_gone => continue,
            Err(nix::errno::Errno::EAGAIN) => bail!("container init exited before it could start"),
            Err(e) => Err(e).context(|| "read exec fifo".into()),
        };
    }
}

/// What the init's /proc stat says while `start` sees nothing on the fifo.
#[derive(Debug, PartialEq)]
enum InitProgress {
    /// It exec'd (before we opened the fifo: its `start` was killed), and
    /// may have run and ended since the poll.
    Execed,
    /// It is ending before its execve: it will never open the fifo, and
    /// stays, pid 1 of its namespace, until the namespace's other processes
    /// are reaped, which may be never.
    EndingBeforeExec,
    /// Not yet there, or not to be told apart (gone: the pidfd will say).
    Waiting,
}

fn init_progress(stat: Option<&sys::ProcStat>) -> InitProgress {
    match stat {
        Some(s) if s.flags & sys::PF_FORKNOEXEC == 0 => InitProgress::Execed,
        Some(s) if s.flags & sys::PF_EXITING != 0 => InitProgress::EndingBeforeExec,
        _ => InitProgress::Waiting,
    }
}

/// How long an init that is ending without its program is waited for, to
/// read how it ended.
const END_WAIT: Duration = Duration::from_secs(1);

/// An init that ends without exec'ing closes the fifo too, silently when a
/// fault ends it: a seccomp profile that refuses execve and the write of the
/// error (`syscalls: []` with an SCMP_ACT_ERRNO default) ended it with
/// SIGSEGV, and `start` said the container started. execve clears
/// PF_FORKNOEXEC before it closes the fifo, so an init that still has it
/// and is ending never ran the program. `None` when it did, or when nothing
/// is left to tell (an init already reaped: the program may have run and
/// ended).
fn ended_before_exec(saved: &Saved, pidfd: &OwnedFd) -> Option<String> {
    let stat = saved.init_stat_even_ended()?;
    let ending = stat.flags & sys::PF_EXITING != 0 || !stat.alive();
    if stat.flags & sys::PF_FORKNOEXEC == 0 || !ending {
        return None;
    }
    let mut fds = [nix::poll::PollFd::new(pidfd.as_fd(), nix::poll::PollFlags::POLLIN)];
    let _ = nix::poll::poll(&mut fds, nix::poll::PollTimeout::try_from(END_WAIT).expect("fits"));
    let status = saved.init_stat_even_ended().and_then(|s| s.exit_code).unwrap_or(0);
    let (how, hint) = match (status & 0x7f, (status >> 8) & 0xff) {
        (0, 0) => (String::new(), ""),
        // The init's signal handler exits so, when the signal came before
        // it had the fifo to say which.
        (0, code @ 129..=192) => (format!(" by signal {}", code - 128), ""),
        (0, code) => (format!(" with status {code}"), ""),
        // A fault before the program: what a filter that refuses execve,
        // and then the error's write and exit_group, leads to.
        (sig @ (libc::SIGSEGV | libc::SIGSYS), _) => (
            format!(" by signal {sig}"),
            " (does linux.seccomp allow execve, write and exit_group?)",
        ),
        (sig, _) => (format!(" by signal {sig}"), ""),
    };
    Some(format!("the container's init ended{how} before its program ran{hint}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stat(state: u8, flags: u64) -> sys::ProcStat {
        sys::ProcStat {
            start_time: 1,
            state,
            ppid: 1,
            flags,
            threads: 1,
            processor: None,
            exit_code: None,
        }
    }

    /// A program that ran and ended between the poll and the stat read is a
    /// zombie that is exiting: 1287294 took it for an init that never ran
    /// (the outside review of it, with strace delaying the read).
    #[test]
    fn an_init_that_execd_counts_as_started_even_once_ended() {
        let exiting = sys::PF_EXITING;
        assert_eq!(init_progress(Some(&stat(b'Z', exiting))), InitProgress::Execed);
        assert_eq!(init_progress(Some(&stat(b'S', 0))), InitProgress::Execed);
        let before_exec = sys::PF_FORKNOEXEC;
        assert_eq!(
            init_progress(Some(&stat(b'S', before_exec | exiting))),
            InitProgress::EndingBeforeExec
        );
        assert_eq!(init_progress(Some(&stat(b'S', before_exec))), InitProgress::Waiting);
        assert_eq!(init_progress(None), InitProgress::Waiting);
    }
}
