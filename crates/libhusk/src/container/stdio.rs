//! What the caller hands a container process besides its config: the fds
//! it keeps (LISTEN_FDS, `--preserve-fds`) and where its terminal goes.
//! Shared by `create` and `exec`.

use std::cell::Cell;
use std::os::fd::{AsFd, OwnedFd, RawFd};
use std::path::Path;
use std::sync::Mutex;

use crate::bail;
use crate::error::{Context, Error, Result};
use crate::sys;

/// Where the pty master of a container process with a terminal goes. The
/// process sends it to husk over its channel, and husk passes it on: the
/// process never holds the console socket, whose peer is the manager that
/// listens there (conmon, containerd's shim). A container with
/// CAP_SYS_PTRACE could take a copy of it from the process (pidfd_getfd)
/// and ask it for a pidfd of that manager (SO_PEERPIDFD), then take its
/// fds (another container's stdio, the manager's own sockets) or enter its
/// namespaces (as review 60c F1 did with husk's). runc hands the socket to
/// its init; crun passes the master on itself, as husk does now.
pub(crate) enum Console {
    /// No terminal.
    None,
    /// `--console-socket`, connected; whether the master went over it.
    Socket(OwnedFd, Cell<bool>),
    /// A foreground command without one: the master, once it came, which
    /// husk keeps to proxy the caller's terminal.
    Caller(Cell<Option<OwnedFd>>),
}

impl Console {
    pub(crate) fn for_process(terminal: bool, socket: Option<&Path>, foreground: bool) -> Result<Console> {
        match (terminal, socket) {
            (false, _) => Ok(Console::None),
            (true, Some(path)) => Ok(Console::Socket(
                crate::process::console::connect(path)?,
                Cell::new(false),
            )),
            (true, None) if foreground => {
                require_a_terminal()?;
                Ok(Console::Caller(Cell::new(None)))
            }
            (true, None) => bail!("cannot allocate tty if husk will detach without setting console socket"),
        }
    }

    /// The master that the container process sent: over the console socket
    /// with the pty's name, as conmon and containerd expect it (bounded:
    /// the socket's send timeout), or kept for the caller. Once, and only a
    /// pty master, named by its number, not by what the process said: the
    /// container can write into the process's channel (review 61 F3).
    pub(crate) fn pass_on(&self, master: OwnedFd) -> Result<()> {
        let second = || Error::new("a second pty master from the container process");
        let number = sys::term::pty_number(master.as_fd())
            .map_err(|e| Error::new(format!("the container process sent a pty master that is not one: {e}")))?;
        match self {
            Console::None => bail!("a pty master from a container process without a terminal"),
            Console::Socket(_, sent) if sent.replace(true) => Err(second()),
            Console::Socket(socket, _) => {
                let name = format!("/dev/pts/{number}");
                crate::process::channel::send_with_fd(socket, name.as_bytes(), &master)
                    .context(|| "--console-socket: send the pty master".into())
            }
            Console::Caller(kept) => match kept.replace(Some(master)) {
                None => Ok(()),
                first => {
                    kept.set(first);
                    Err(second())
                }
            },
        }
    }

    /// Once the process has run its program: an error if it has a terminal
    /// and sent no master (a container that may ptrace it can keep it from
    /// sending one, review 61 F2).
    pub(crate) fn check_received(&self) -> Result<()> {
        let received = match self {
            Console::None => true,
            Console::Socket(_, sent) => sent.get(),
            Console::Caller(kept) => {
                let master = kept.take();
                let received = master.is_some();
                kept.set(master);
                received
            }
        };
        match received {
            true => Ok(()),
            false => bail!("the container process sent no pty master"),
        }
    }

    /// The master kept for the caller's terminal, if any.
    pub(crate) fn into_master(self) -> Option<OwnedFd> {
        match self {
            Console::Caller(kept) => kept.into_inner(),
            _ => None,
        }
    }
}

/// A foreground process with a terminal is proxied to the caller's: without
/// one (a script, CI, a service) nothing could ever type into it or end its
/// input, and it would wait forever. runc fails the same way.
fn require_a_terminal() -> Result<()> {
    match sys::openat(libc::AT_FDCWD, c"/dev/tty", libc::O_RDWR | libc::O_NOCTTY, 0) {
        Ok(_) => Ok(()),
        Err(e) => bail!(
            "process.terminal is set but husk has no terminal to attach it to (open /dev/tty: {e}): run it from a terminal, pass --console-socket, or set terminal to false"
        ),
    }
}

/// How many fds after stdio the container gets: systemd's LISTEN_FDS, then
/// --preserve-fds; no more than this process may have open.
fn preserved_fds(flag: u32, listen: u32) -> Result<u32> {
    let limit = sys::process::open_files_limit().unwrap_or(1024);
    let total = u64::from(flag) + u64::from(listen);
    if total + 3 > limit {
        let also = match listen {
            0 => String::new(),
            n => format!(" (with {n} from LISTEN_FDS)"),
        };
        bail!("--preserve-fds {flag}: more fds than the limit of {limit} open files{also}");
    }
    Ok(total as u32)
}

/// systemd socket activation: how many fds LISTEN_FDS says this process was
/// given (0 without).
pub fn listen_fds() -> u32 {
    std::env::var("LISTEN_FDS")
        .ok()
        .and_then(|v| v.parse::<u32>().ok())
        .unwrap_or(0)
}

/// Holds the fd numbers 3..3+N that a container process gets (`listen`
/// LISTEN_FDS, then `preserve` from `--preserve-fds`): a number the caller
/// left closed gets a close-on-exec placeholder (an empty memfd), so that
/// no fd this process opens later (a log file, a socket, a namespace) can
/// take it and be handed to the container, which finds that number closed,
/// as the caller left it.
/// Call it before opening anything; [`create`](super::create),
/// [`run`](super::run) and [`exec`](super::exec::exec) call it first thing.
/// Returns N, checked against the open files limit.
pub fn hold_passed_fds(preserve: u32, listen: u32) -> Result<u32> {
    let n = preserved_fds(preserve, listen)?;
    reserve_preserved_fds(n)?;
    Ok(n)
}

/// The placeholders [`hold_passed_fds`] opened, which the container process
/// must not get.
static PLACEHOLDERS: Mutex<Vec<RawFd>> = Mutex::new(Vec::new());

/// A number an earlier call could not hold (the command line's, made before
/// the log is open and reported by the library's call): whatever husk opened
/// since may have taken it, and would pass for the caller's.
static UNHELD: Mutex<Option<String>> = Mutex::new(None);

/// Fds 3..3+N are the caller's to pass on; none of ours may take one of those
/// numbers. One that cannot be held fails this and every later call (review
/// 50b N4: husk's own fds, its exec channel among them, took the numbers and
/// reached the container's program).
fn reserve_preserved_fds(n: u32) -> Result<()> {
    let mut unheld = UNHELD.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(why) = unheld.as_ref() {
        bail!("{why}");
    }
    let mut held = PLACEHOLDERS.lock().unwrap_or_else(|e| e.into_inner());
    for fd in 3..3 + n as i32 {
        // The lowest free number is this one: the ones below are taken.
        if !sys::process::is_open(fd) {
            match sys::process::hold_lowest_free_fd() {
                Ok(placeholder) => held.push(placeholder),
                Err(e) => {
                    let why =
                        format!("hold fd {fd}, which the container gets closed (--preserve-fds, LISTEN_FDS): {e}");
                    *unheld = Some(why.clone());
                    bail!("{why}");
                }
            }
        }
    }
    Ok(())
}

/// Whether `fd` is a placeholder of this process, not an fd its caller passed.
pub(crate) fn is_placeholder(fd: RawFd) -> bool {
    PLACEHOLDERS.lock().unwrap_or_else(|e| e.into_inner()).contains(&fd)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A pty master of a pty this test opens.
    fn master() -> OwnedFd {
        let master = sys::openat(
            libc::AT_FDCWD,
            c"/dev/ptmx",
            libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC,
            0,
        );
        master.unwrap()
    }

    #[test]
    fn a_master_is_kept_once_and_only_where_a_terminal_was_asked_for() {
        let e = Console::None.pass_on(master()).unwrap_err();
        assert_eq!(
            e.to_string(),
            "a pty master from a container process without a terminal"
        );

        let caller = Console::Caller(Cell::new(None));
        assert_eq!(
            caller.check_received().unwrap_err().to_string(),
            "the container process sent no pty master"
        );
        caller.pass_on(master()).unwrap();
        let e = caller.pass_on(master()).unwrap_err();
        assert_eq!(e.to_string(), "a second pty master from the container process");
        caller.check_received().unwrap();
        assert!(caller.into_master().is_some());
        assert!(Console::None.into_master().is_none());
    }

    #[test]
    fn what_is_not_a_pty_master_is_not_passed_on() {
        let file = OwnedFd::from(sys::memfd(c"husk-test").unwrap());
        let e = Console::Caller(Cell::new(None)).pass_on(file).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("the container process sent a pty master that is not one"),
            "{e}"
        );
    }
}
