//! Terminals. A container process with `process.terminal` gets a pty allocated
//! in the container's own devpts: the master goes to husk over the process's
//! channel, and husk sends it over the console socket (SCM_RIGHTS, the pty
//! path as payload, as conmon and containerd expect), the
//! peer becomes the process's stdio and controlling terminal, and for the init
//! it is also bound on /dev/console. The peer is taken from the master with
//! TIOCGPTPEER and bound by fd, never looked up by path (CVE-2025-52565).
//!
//! A foreground `run` or `exec` without a console socket keeps the master
//! and proxies the caller's terminal (raw mode, window size, restored on
//! exit).

use std::io::Write;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::Path;

use nix::sys::stat::{Mode, SFlag};
use nix::sys::statfs::{fstatfs, DEVPTS_SUPER_MAGIC};

use crate::bail;
use crate::error::{Context, Result};
use crate::sys;
use crate::sys::term;

/// How long the console socket's owner has to accept us, and then to take
/// the pty master: a peer that stops accepting or reading fails the command
/// instead of holding it (runc fails at once when the backlog is full).
const CONSOLE_SOCKET_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// The console socket (`--console-socket`), connected in the parent.
pub fn connect(path: &Path) -> Result<OwnedFd> {
    sys::fs::connect_within(path, CONSOLE_SOCKET_TIMEOUT)
        .map_err(std::io::Error::from)
        .context(|| format!("--console-socket {}", path.display()))
}

/// A pty in the devpts at /dev/pts of the current root. Returns master and peer.
fn open_pty() -> Result<(OwnedFd, OwnedFd)> {
    let master = sys::openat(libc::AT_FDCWD, c"/dev/pts/ptmx", libc::O_RDWR | libc::O_NOCTTY, 0)
        .or_else(|_| sys::openat(libc::AT_FDCWD, c"/dev/ptmx", libc::O_RDWR | libc::O_NOCTTY, 0))
        .context(|| "open the container's /dev/pts/ptmx".into())?;
    let on_devpts = fstatfs(&master).is_ok_and(|st| st.filesystem_type() == DEVPTS_SUPER_MAGIC);
    if !on_devpts {
        bail!("/dev/pts/ptmx in the container is not on devpts");
    }
    term::unlock_pty(master.as_fd()).context(|| "unlock pty".into())?;
    let peer = term::open_pty_peer(master.as_fd(), libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC)
        .context(|| "open pty peer".into())?;
    Ok((master, peer))
}

/// Sets the window size of the terminal `fd`; a failure is ignored.
pub fn set_size(fd: BorrowedFd, rows: u16, cols: u16) {
    let _ = term::set_window_size(fd, rows, cols);
}

/// How a container process hands its pty master to husk (its channel),
/// which passes it on (`container::stdio::Console`).
pub type SendMaster<'a> = dyn Fn(&OwnedFd) -> std::io::Result<()> + 'a;

/// In the container process, the part that needs the rights to mount: the
/// pty made, with `console` (the init) bound on /dev/console, its master
/// sent; its peer returned, for [`take`].
pub fn open(send_master: &SendMaster, size: Option<(u16, u16)>, console: bool) -> Result<OwnedFd> {
    let (master, peer) = open_pty()?;
    if let Some((rows, cols)) = size {
        set_size(master.as_fd(), rows, cols);
    }
    if console {
        bind_dev_console(&peer)?;
    }
    send_master(&master).context(|| "send pty master".into())?;
    Ok(peer)
}

/// The second half, for the process that will run the
/// program: a new session, then `peer` as its controlling terminal and stdio.
pub fn take(peer: OwnedFd) -> Result<()> {
    nix::unistd::setsid()
        .map_err(std::io::Error::from)
        .context(|| "setsid".into())?;
    term::set_controlling_terminal(peer.as_fd()).context(|| "set controlling terminal".into())?;
    nix::unistd::dup2_stdin(&peer)
        .and_then(|()| nix::unistd::dup2_stdout(&peer))
        .and_then(|()| nix::unistd::dup2_stderr(&peer))
        .map_err(std::io::Error::from)
        .context(|| "pty as stdio".into())
}

fn bind_dev_console(peer: &OwnedFd) -> Result<()> {
    // An empty file to bind over; EEXIST leaves what is there to be covered.
    let _ = nix::sys::stat::mknod(c"/dev/console", SFlag::S_IFREG, Mode::from_bits_truncate(0o600), 0);
    let target = sys::openat(libc::AT_FDCWD, c"/dev/console", libc::O_PATH | libc::O_NOFOLLOW, 0)
        .context(|| "open /dev/console".into())?;
    let tree = sys::open_tree_of(peer, sys::OPEN_TREE_CLONE).context(|| "bind pty on /dev/console".into())?;
    sys::move_mount(&tree, &target).context(|| "bind pty on /dev/console".into())
}

/// The caller's terminal in raw mode, restored on drop.
pub struct RawMode {
    saved: Option<nix::sys::termios::Termios>,
}

impl RawMode {
    pub fn enter() -> RawMode {
        let stdin = std::io::stdin();
        let Ok(saved) = nix::sys::termios::tcgetattr(stdin.as_fd()) else {
            return RawMode { saved: None };
        };
        let mut raw = saved.clone();
        nix::sys::termios::cfmakeraw(&mut raw);
        let _ = nix::sys::termios::tcsetattr(stdin.as_fd(), nix::sys::termios::SetArg::TCSANOW, &raw);
        RawMode { saved: Some(saved) }
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        if let Some(saved) = &self.saved {
            let _ = nix::sys::termios::tcsetattr(std::io::stdin().as_fd(), nix::sys::termios::SetArg::TCSANOW, saved);
        }
    }
}

/// The window size of the caller's terminal, if stdin is one.
pub fn caller_size() -> Option<(u16, u16)> {
    term::window_size(std::io::stdin().as_fd()).ok()
}

/// Copies what is readable on `from` to `to`. Returns false at EOF or error.
pub fn pump(from: BorrowedFd, to: &mut impl Write) -> bool {
    let mut buf = [0u8; 8192];
    match nix::unistd::read(from, &mut buf) {
        Ok(0) | Err(_) => false,
        Ok(n) => to.write_all(&buf[..n]).and_then(|()| to.flush()).is_ok(),
    }
}
