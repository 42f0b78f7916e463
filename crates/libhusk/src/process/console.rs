//! Terminals. A container process with `process.terminal` gets a pty allocated
//! in the container's own devpts: the master goes over the console socket
//! (SCM_RIGHTS, the pty path as payload, as conmon and containerd expect), the
//! peer becomes the process's stdio and controlling terminal, and for the init
//! it is also bound on /dev/console. The peer is taken from the master with
//! TIOCGPTPEER and bound by fd, never looked up by path (CVE-2025-52565).
//!
//! A foreground `run` or `exec` without a console socket receives the master
//! itself and proxies the caller's terminal (raw mode, window size, restored on
//! exit).

use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::path::Path;

use crate::bail;
use crate::error::{Context, Result};
use crate::sys;

const DEVPTS_SUPER_MAGIC: libc::c_long = 0x1cd1;

/// The console socket (`--console-socket`), connected in the parent.
pub fn connect(path: &Path) -> Result<OwnedFd> {
    let stream =
        std::os::unix::net::UnixStream::connect(path).context(|| format!("--console-socket {}", path.display()))?;
    Ok(stream.into())
}

/// A pty in the devpts at /dev/pts of the current root. Returns master and peer.
fn open_pty() -> Result<(OwnedFd, OwnedFd)> {
    let master = sys::openat(libc::AT_FDCWD, c"/dev/pts/ptmx", libc::O_RDWR | libc::O_NOCTTY, 0)
        .or_else(|_| sys::openat(libc::AT_FDCWD, c"/dev/ptmx", libc::O_RDWR | libc::O_NOCTTY, 0))
        .context(|| "open the container's /dev/pts/ptmx".into())?;
    // SAFETY: fstatfs fills the zeroed struct from a valid fd.
    let on_devpts = unsafe {
        let mut st: libc::statfs = std::mem::zeroed();
        libc::fstatfs(master.as_raw_fd(), &mut st) == 0 && st.f_type as libc::c_long == DEVPTS_SUPER_MAGIC
    };
    if !on_devpts {
        bail!("/dev/pts/ptmx in the container is not on devpts");
    }
    // SAFETY: ioctls on the master we just opened.
    unsafe {
        let unlock: libc::c_int = 0;
        if libc::ioctl(master.as_raw_fd(), libc::TIOCSPTLCK, &unlock) < 0 {
            return Err(std::io::Error::last_os_error()).context(|| "unlock pty".into());
        }
        let peer = libc::ioctl(
            master.as_raw_fd(),
            libc::TIOCGPTPEER,
            libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC,
        );
        if peer < 0 {
            return Err(std::io::Error::last_os_error()).context(|| "open pty peer".into());
        }
        Ok((master, OwnedFd::from_raw_fd(peer)))
    }
}

fn pty_name(master: &OwnedFd) -> String {
    let mut n: libc::c_uint = 0;
    // SAFETY: TIOCGPTN writes the pty number into n.
    unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCGPTN, &mut n) };
    format!("/dev/pts/{n}")
}

pub fn set_size(fd: RawFd, rows: u16, cols: u16) {
    let ws = libc::winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCSWINSZ reads a valid winsize.
    unsafe { libc::ioctl(fd, libc::TIOCSWINSZ, &ws) };
}

/// In the container process: allocate the pty, hand the master over `socket`,
/// and make the peer stdio and the controlling terminal. With `console` set
/// (the init), the peer is also bound on /dev/console.
pub fn setup(socket: &OwnedFd, size: Option<(u16, u16)>, console: bool) -> Result<()> {
    let (master, peer) = open_pty()?;
    if let Some((rows, cols)) = size {
        set_size(master.as_raw_fd(), rows, cols);
    }
    if console {
        bind_dev_console(&peer)?;
    }
    crate::process::channel::send_with_fd(socket, pty_name(&master).as_bytes(), &master)
        .context(|| "send pty master".into())?;
    drop(master);
    // SAFETY: a new session, then the peer as its controlling terminal and stdio.
    unsafe {
        if libc::setsid() < 0 {
            return Err(std::io::Error::last_os_error()).context(|| "setsid".into());
        }
        if libc::ioctl(peer.as_raw_fd(), libc::TIOCSCTTY, 0) < 0 {
            return Err(std::io::Error::last_os_error()).context(|| "set controlling terminal".into());
        }
        for fd in 0..3 {
            if libc::dup2(peer.as_raw_fd(), fd) < 0 {
                return Err(std::io::Error::last_os_error()).context(|| "pty as stdio".into());
            }
        }
    }
    Ok(())
}

fn bind_dev_console(peer: &OwnedFd) -> Result<()> {
    // SAFETY: mknod of an empty file; EEXIST leaves what is there to be covered.
    unsafe { libc::mknod(c"/dev/console".as_ptr(), libc::S_IFREG | 0o600, 0) };
    let target = sys::openat(libc::AT_FDCWD, c"/dev/console", libc::O_PATH | libc::O_NOFOLLOW, 0)
        .context(|| "open /dev/console".into())?;
    let tree = sys::open_tree(&sys::fd_path(peer.as_raw_fd()), sys::OPEN_TREE_CLONE)
        .context(|| "bind pty on /dev/console".into())?;
    sys::move_mount(&tree, &target).context(|| "bind pty on /dev/console".into())
}

/// Receives the pty master sent over `socket` (by `setup`).
pub fn receive_master(socket: &OwnedFd) -> Result<OwnedFd> {
    use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};
    let mut buf = [0u8; 256];
    let mut space = nix::cmsg_space!([RawFd; 1]);
    let mut iov = [std::io::IoSliceMut::new(&mut buf)];
    let msg = recvmsg::<()>(
        socket.as_raw_fd(),
        &mut iov,
        Some(&mut space),
        MsgFlags::MSG_CMSG_CLOEXEC,
    )
    .context(|| "receive pty master".into())?;
    for c in msg.cmsgs().context(|| "receive pty master".into())? {
        if let ControlMessageOwned::ScmRights(fds) = c {
            if let Some(&fd) = fds.first() {
                // SAFETY: the kernel installed this fd for us.
                return Ok(unsafe { OwnedFd::from_raw_fd(fd) });
            }
        }
    }
    bail!("the container sent no pty master")
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
    // SAFETY: winsize is plain integers, for which zero is valid.
    let mut ws: libc::winsize = unsafe { std::mem::zeroed() };
    // SAFETY: TIOCGWINSZ fills ws.
    (unsafe { libc::ioctl(0, libc::TIOCGWINSZ, &mut ws) } == 0).then_some((ws.ws_row, ws.ws_col))
}

/// Copies what is readable on `from` to `to`. Returns false at EOF or error.
pub fn pump(from: BorrowedFd, to: &mut impl Write) -> bool {
    let mut buf = [0u8; 8192];
    // SAFETY: the fd stays open for the borrow; ManuallyDrop never closes it.
    let mut f = std::mem::ManuallyDrop::new(unsafe { std::fs::File::from_raw_fd(from.as_raw_fd()) });
    match f.read(&mut buf) {
        Ok(0) | Err(_) => false,
        Ok(n) => to.write_all(&buf[..n]).and_then(|()| to.flush()).is_ok(),
    }
}
