//! Terminals: the pty and window-size ioctls, which nix leaves to its
//! `unsafe` ioctl macros.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};

use super::{check_int, owned};

/// Unlocks the peer of the pty `master` (TIOCSPTLCK 0, what unlockpt(3) does).
pub fn unlock_pty(master: BorrowedFd<'_>) -> io::Result<()> {
    let unlock: libc::c_int = 0;
    // SAFETY: TIOCSPTLCK reads an int from a live local.
    check_int(unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCSPTLCK, &unlock) }).map(drop)
}

/// Opens the peer of the pty `master` with `flags` (TIOCGPTPEER): the peer of
/// this very master, never a path that could be swapped.
pub fn open_pty_peer(master: BorrowedFd<'_>, flags: libc::c_int) -> io::Result<OwnedFd> {
    // SAFETY: TIOCGPTPEER takes its flags by value and returns a new fd, ours.
    let fd = unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCGPTPEER, flags) };
    check_int(fd).map(|fd| owned(fd as libc::c_long))
}

/// The number N of the pty `master`, whose peer is /dev/pts/N (TIOCGPTN).
pub fn pty_number(master: BorrowedFd<'_>) -> io::Result<libc::c_uint> {
    let mut n: libc::c_uint = 0;
    // SAFETY: TIOCGPTN writes the pty number into a live local.
    check_int(unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCGPTN, &mut n) })?;
    Ok(n)
}

/// Sets the window size of the terminal `fd` (TIOCSWINSZ).
pub fn set_window_size(fd: BorrowedFd<'_>, rows: u16, cols: u16) -> io::Result<()> {
    let ws = libc::winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCSWINSZ reads a winsize from a live local.
    check_int(unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCSWINSZ, &ws) }).map(drop)
}

/// The window size (rows, columns) of the terminal `fd` (TIOCGWINSZ).
pub fn window_size(fd: BorrowedFd<'_>) -> io::Result<(u16, u16)> {
    let mut ws = libc::winsize {
        ws_row: 0,
        ws_col: 0,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCGWINSZ writes a winsize into a live local.
    check_int(unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCGWINSZ, &mut ws) })?;
    Ok((ws.ws_row, ws.ws_col))
}

/// Makes the terminal `fd` the controlling terminal of this session's leader
/// (TIOCSCTTY, without stealing it from another session).
pub fn set_controlling_terminal(fd: BorrowedFd<'_>) -> io::Result<()> {
    // SAFETY: TIOCSCTTY takes an int by value.
    check_int(unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCSCTTY, 0) }).map(drop)
}

#[cfg(test)]
mod tests {
    use std::os::fd::AsFd;

    use super::*;

    #[test]
    fn a_pty_peer_has_the_size_set_on_its_master() {
        let master =
            crate::sys::openat(libc::AT_FDCWD, c"/dev/ptmx", libc::O_RDWR | libc::O_NOCTTY, 0).expect("open /dev/ptmx");
        unlock_pty(master.as_fd()).unwrap();
        let peer = open_pty_peer(master.as_fd(), libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC).unwrap();
        let n = pty_number(master.as_fd()).unwrap();
        let link = std::fs::read_link(format!("/proc/self/fd/{}", peer.as_raw_fd())).unwrap();
        assert_eq!(link.file_name().unwrap().to_str().unwrap(), n.to_string());
        set_window_size(master.as_fd(), 24, 80).unwrap();
        assert_eq!(window_size(peer.as_fd()).unwrap(), (24, 80));
    }

    #[test]
    fn a_file_has_no_window_size() {
        let file = std::fs::File::open("/proc/self/stat").unwrap();
        let e = window_size(file.as_fd()).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::ENOTTY));
    }
}
