//! Steps a spawned helper program (criu) takes between fork and exec.

use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::process::CommandExt;
use std::process::Command;

/// Has the process that `cmd` spawns, before it execs, join the cgroups
/// whose `cgroup.procs` files are open (for writing) in `procs`, and keep
/// `inherit` open across the exec (close-on-exec cleared). A failure of
/// either fails the spawn.
pub fn before_exec(cmd: &mut Command, procs: Vec<OwnedFd>, inherit: Vec<RawFd>) {
    // SAFETY: the closure only calls write(2) and fcntl(2) on descriptors it
    // owns or was given, which are async-signal-safe and do not allocate, as
    // pre_exec requires.
    unsafe {
        cmd.pre_exec(move || {
            for fd in &procs {
                // "0" is the writing process itself.
                if libc::write(fd.as_raw_fd(), b"0".as_ptr().cast(), 1) != 1 {
                    return Err(io::Error::last_os_error());
                }
            }
            for &fd in &inherit {
                let flags = libc::fcntl(fd, libc::F_GETFD);
                if flags < 0 || libc::fcntl(fd, libc::F_SETFD, flags & !libc::FD_CLOEXEC) < 0 {
                    return Err(io::Error::last_os_error());
                }
            }
            Ok(())
        });
    }
}
