//! The raw system calls of the cgroup drivers and of what goes with them (the
//! state store's locks, the seccomp filter): eventfd for OOM events,
//! flock, seccomp. Each is a small safe function.

use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};

use super::{check, owned};

/// flock(2) on `fd` with `operation` (LOCK_EX, LOCK_SH, | LOCK_NB).
pub fn flock(fd: impl AsFd, operation: libc::c_int) -> io::Result<()> {
    // SAFETY: flock on a descriptor the caller keeps open for the call.
    check(unsafe { libc::flock(fd.as_fd().as_raw_fd(), operation) }.into()).map(drop)
}

/// A new close-on-exec eventfd with a zero count.
pub fn eventfd() -> io::Result<OwnedFd> {
    // SAFETY: eventfd takes plain integers and returns a new descriptor.
    check(unsafe { libc::eventfd(0, libc::EFD_CLOEXEC) }.into()).map(owned)
}

/// The clock ticks per second of the times in /proc and cpuacct.stat.
pub fn clock_ticks_per_second() -> u64 {
    // SAFETY: sysconf only reads a constant of the system.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    ticks.max(1) as u64
}

/// Loads a seccomp filter (`filter`: struct sock_filter[], as the kernel
/// takes it) into this thread with `flags`. With SECCOMP_FILTER_FLAG_NEW_LISTENER
/// in `flags` (`new_listener`), returns the notify fd the kernel made.
pub fn seccomp_set_mode_filter(filter: &[u8], flags: u32, new_listener: bool) -> io::Result<Option<OwnedFd>> {
    const SECCOMP_SET_MODE_FILTER: libc::c_ulong = 1;
    let len = filter.len() / std::mem::size_of::<libc::sock_filter>();
    let prog = libc::sock_fprog {
        len: u16::try_from(len).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?,
        filter: filter.as_ptr() as *mut libc::sock_filter,
    };
    // SAFETY: prog points at `filter`, which is borrowed for the whole call;
    // the kernel only reads it (len whole instructions, none past its end).
    let ret = check(unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            SECCOMP_SET_MODE_FILTER,
            flags,
            &prog as *const libc::sock_fprog,
        )
    })?;
    Ok(new_listener.then(|| owned(ret)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_exclusive_lock_is_refused() {
        let path = std::env::temp_dir().join(format!("husk-flock-test-{}", std::process::id()));
        let a = std::fs::File::create(&path).unwrap();
        let b = std::fs::File::open(&path).unwrap();
        flock(&a, libc::LOCK_EX | libc::LOCK_NB).unwrap();
        let e = flock(&b, libc::LOCK_EX | libc::LOCK_NB).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::EWOULDBLOCK));
        drop(a);
        flock(&b, libc::LOCK_SH | libc::LOCK_NB).unwrap();
        std::fs::remove_file(&path).unwrap();
    }

    #[test]
    fn eventfds_and_clock_ticks() {
        assert!(eventfd().is_ok());
        assert!(clock_ticks_per_second() >= 1);
    }
}
