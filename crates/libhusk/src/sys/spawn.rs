//! Steps a spawned helper program (criu) takes between fork and exec.

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::process::CommandExt;
use std::process::Command;

/// A recursive bind mount the helper makes for itself, in a mount namespace
/// of its own: `source` on `target`.
pub struct PrivateBind {
    /// What is bound.
    pub source: CString,
    /// Where, an existing directory.
    pub target: CString,
    /// The directory the helper starts in, entered before the new mount
    /// namespace so that its working directory is there (a directory
    /// reached through an fd of the old one is not: nothing can be mounted
    /// on it from the new namespace).
    pub cwd: RawFd,
    /// A directory (and the path of `null` in it) on which the helper mounts
    /// a tmpfs with a /dev/null node (1:3, mode 0666) of its own: a null
    /// that is no other file, to bind where the host's would be reachable.
    pub null: Option<(CString, CString)>,
}

/// Has the process that `cmd` spawns, before it execs, join the cgroups
/// whose `cgroup.procs` files are open (for writing) in `procs`, keep
/// `inherit` open across the exec (close-on-exec cleared), and with `bind`
/// move to a new mount namespace (whose mounts no longer propagate back to
/// the caller's) and make that bind mount there. A failure of any step
/// fails the spawn.
pub fn before_exec(cmd: &mut Command, procs: Vec<OwnedFd>, inherit: Vec<RawFd>, bind: Option<PrivateBind>) {
    // SAFETY: the closure only calls write(2), fcntl(2), fchdir(2), unshare(2),
    // mount(2), mknod(2) and chmod(2) on descriptors it owns or was given and on strings made
    // before the fork, which are async-signal-safe and do not allocate, as
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
            if let Some(b) = &bind {
                if libc::fchdir(b.cwd) != 0 || libc::unshare(libc::CLONE_NEWNS) != 0 {
                    return Err(io::Error::last_os_error());
                }
                let none = std::ptr::null();
                // A slave of the caller's mounts: what is mounted here stays here.
                if libc::mount(none, c"/".as_ptr(), none, libc::MS_REC | libc::MS_SLAVE, none.cast()) != 0 {
                    return Err(io::Error::last_os_error());
                }
                let flags = libc::MS_BIND | libc::MS_REC;
                if libc::mount(b.source.as_ptr(), b.target.as_ptr(), none, flags, none.cast()) != 0 {
                    return Err(io::Error::last_os_error());
                }
                if let Some((dir, node)) = &b.null {
                    let (fs, flags) = (c"tmpfs".as_ptr(), libc::MS_NOSUID | libc::MS_NOEXEC);
                    let data = c"mode=755,size=4k,nr_inodes=2";
                    if libc::mount(fs, dir.as_ptr(), fs, flags, data.as_ptr().cast()) != 0
                        || libc::mknod(node.as_ptr(), libc::S_IFCHR | 0o666, libc::makedev(1, 3)) != 0
                        || libc::chmod(node.as_ptr(), 0o666) != 0
                    {
                        return Err(io::Error::last_os_error());
                    }
                }
            }
            Ok(())
        });
    }
}
