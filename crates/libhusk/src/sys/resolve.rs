//! The raw syscalls of the in-root path resolver (`rootfs::resolve`):
//! openat2(RESOLVE_IN_ROOT) and reading a symlink through its own fd. The
//! resolution logic (retries, the fallback walk) lives in `rootfs::resolve`.
//! Also openat2(RESOLVE_BENEATH), for paths that must stay below a directory
//! (an exec's sub-cgroup).

use std::ffi::{CStr, OsString};
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStringExt;

use super::{check, owned};

#[repr(C)]
struct OpenHow {
    flags: u64,
    mode: u64,
    resolve: u64,
}

const RESOLVE_NO_XDEV: u64 = 0x01;
const RESOLVE_NO_MAGICLINKS: u64 = 0x02;
const RESOLVE_NO_SYMLINKS: u64 = 0x04;
const RESOLVE_BENEATH: u64 = 0x08;
const RESOLVE_IN_ROOT: u64 = 0x10;

fn openat2(dir: &OwnedFd, path: &CStr, flags: i32, resolve: u64) -> io::Result<OwnedFd> {
    let how = OpenHow {
        flags: (flags | libc::O_CLOEXEC) as u64,
        mode: 0,
        resolve,
    };
    // SAFETY: `how` and `path` outlive the call, and the size passed is `how`'s.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_openat2,
            dir.as_raw_fd(),
            path.as_ptr(),
            &how as *const OpenHow,
            std::mem::size_of::<OpenHow>(),
        )
    };
    check(ret).map(owned)
}

/// One openat2(2) of `path` under `root` with RESOLVE_IN_ROOT and
/// RESOLVE_NO_MAGICLINKS: the kernel resolves `..` and absolute symlinks as
/// if `root` were `/`, and never follows a /proc magic link. `flags` gets
/// O_CLOEXEC. ENOSYS before Linux 5.6 (or under a seccomp filter that denies
/// it that way); EAGAIN when a concurrent rename raced with the lookup.
pub fn openat2_in_root(root: &OwnedFd, path: &CStr, flags: i32) -> io::Result<OwnedFd> {
    openat2(root, path, flags, RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS)
}

/// One openat2(2) of `path` strictly below `dir`, on its filesystem and
/// through no symlink: `..` that would leave `dir`, an absolute path, a
/// symlink or a mount point crossed fail (EXDEV, ELOOP). `flags` gets O_CLOEXEC.
pub fn openat2_beneath(dir: &OwnedFd, path: &CStr, flags: i32) -> io::Result<OwnedFd> {
    let resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV;
    openat2(dir, path, flags, resolve)
}

/// The target of the symlink that `link` (opened O_PATH | O_NOFOLLOW) is:
/// read through the fd, so it is the target of the very link that was opened,
/// whatever has been renamed since.
pub fn readlink_fd(link: &OwnedFd) -> io::Result<OsString> {
    let mut buf = vec![0u8; libc::PATH_MAX as usize];
    // SAFETY: `buf` is valid for writes of its length; the empty path with an
    // O_PATH fd means "the link itself" (Linux 2.6.39).
    let n = unsafe { libc::readlinkat(link.as_raw_fd(), c"".as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
    let n = check(n as libc::c_long)?;
    buf.truncate(n as usize);
    Ok(OsString::from_vec(buf))
}
