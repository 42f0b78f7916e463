//! The thin layer over raw Linux syscalls that libc and nix do not wrap (or wrap
//! awkwardly). Everything here returns `io::Result` and holds no policy, so the
//! logic above can be read and unit-tested without root.

use std::ffi::{CStr, CString, OsStr};
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;

pub mod resolve;

pub mod attrs;
pub mod bpf;
pub mod cgroup_root;
pub mod cgroupfs;
pub mod dir;
pub mod exe;
pub mod fs;
pub mod netlink;
pub mod process;
pub mod signal;
pub mod spawn;
pub mod term;

fn check(ret: libc::c_long) -> io::Result<libc::c_long> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

fn check_int(ret: libc::c_int) -> io::Result<libc::c_int> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

fn owned(fd: libc::c_long) -> OwnedFd {
    // SAFETY: the kernel just returned this descriptor to us and nothing else owns it.
    unsafe { OwnedFd::from_raw_fd(fd as RawFd) }
}

pub fn cstring(s: impl AsRef<OsStr>) -> io::Result<CString> {
    CString::new(s.as_ref().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path contains a NUL byte"))
}

/// An anonymous in-memory file (close-on-exec) named `name` in /proc/PID/fd.
pub fn memfd(name: &CStr) -> io::Result<std::fs::File> {
    // SAFETY: memfd_create with a valid C string.
    let fd = unsafe { libc::memfd_create(name.as_ptr(), libc::MFD_CLOEXEC) };
    check_int(fd).map(|fd| std::fs::File::from(owned(fd as libc::c_long)))
}

/// The path through which a mount syscall reaches exactly the object behind `fd`.
pub fn fd_path(fd: RawFd) -> CString {
    CString::new(format!("/proc/self/fd/{fd}")).expect("no NUL in a number")
}

#[repr(C)]
#[derive(Default)]
struct CloneArgs {
    flags: u64,
    pidfd: u64,
    child_tid: u64,
    parent_tid: u64,
    exit_signal: u64,
    stack: u64,
    stack_size: u64,
    tls: u64,
    set_tid: u64,
    set_tid_size: u64,
    cgroup: u64,
}

/// Forks with `flags` (CLONE_NEW*), like fork(2) but straight into new namespaces.
/// Returns 0 in the child and the child's pid in the parent.
///
/// # Safety
/// The caller must be single-threaded: the child is a copy of this one thread.
pub unsafe fn clone_process(flags: u64) -> io::Result<libc::pid_t> {
    clone_into(flags, None)
}

const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;

/// clone_process, the child starting in the cgroup v2 directory `cgroup`.
///
/// # Safety
/// As clone_process.
pub unsafe fn clone_into(flags: u64, cgroup: Option<RawFd>) -> io::Result<libc::pid_t> {
    let mut args = CloneArgs {
        flags: flags | if cgroup.is_some() { CLONE_INTO_CGROUP } else { 0 },
        // A sibling signals our parent as we would (clone3 refuses any other value).
        exit_signal: if flags & libc::CLONE_PARENT as u64 != 0 {
            0
        } else {
            libc::SIGCHLD as u64
        },
        cgroup: cgroup.unwrap_or(0) as u64,
        ..Default::default()
    };
    let ret = libc::syscall(
        libc::SYS_clone3,
        &mut args as *mut CloneArgs,
        std::mem::size_of::<CloneArgs>(),
    );
    if ret >= 0 {
        return Ok(ret as libc::pid_t);
    }
    let err = io::Error::last_os_error();
    // clone3 may be filtered (ENOSYS, or EPERM by a strict profile: exec's
    // joiner clones under the container's filter) when husk itself runs
    // inside a container; clone(2) cannot start the child in a cgroup.
    let filtered = matches!(err.raw_os_error(), Some(libc::ENOSYS | libc::EPERM));
    if !filtered || cgroup.is_some() {
        return Err(err);
    }
    let ret = libc::syscall(
        libc::SYS_clone,
        (flags | libc::SIGCHLD as u64) as libc::c_ulong,
        0usize,
        0usize,
        0usize,
        0usize,
    );
    check(ret).map(|p| p as libc::pid_t)
}

pub fn pidfd_open(pid: libc::pid_t) -> io::Result<OwnedFd> {
    // SAFETY: plain syscall with integer arguments.
    let ret = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    check(ret).map(owned)
}

pub fn pidfd_send_signal(pidfd: &OwnedFd, sig: i32) -> io::Result<()> {
    // SAFETY: plain syscall; a null siginfo means "as kill(2) would".
    let ret = unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            pidfd.as_raw_fd(),
            sig,
            std::ptr::null::<libc::siginfo_t>(),
            0,
        )
    };
    check(ret).map(drop)
}

pub fn openat(dir: RawFd, path: &CStr, flags: i32, mode: libc::mode_t) -> io::Result<OwnedFd> {
    // SAFETY: `path` is a valid C string.
    let fd = unsafe { libc::openat(dir, path.as_ptr(), flags | libc::O_CLOEXEC, mode) };
    check_int(fd).map(|fd| owned(fd as libc::c_long))
}

pub fn mount(
    source: Option<&CStr>,
    target: &CStr,
    fstype: Option<&CStr>,
    flags: libc::c_ulong,
    data: Option<&CStr>,
) -> io::Result<()> {
    let ptr = |s: Option<&CStr>| s.map_or(std::ptr::null(), |s| s.as_ptr());
    // SAFETY: all pointers are null or valid C strings.
    let ret = unsafe { libc::mount(ptr(source), target.as_ptr(), ptr(fstype), flags, ptr(data).cast()) };
    check_int(ret).map(drop)
}

pub const OPEN_TREE_CLONE: u32 = 1;
pub const AT_RECURSIVE: u32 = 0x8000;

/// A detached copy of the mount (tree) at `path`, to be adjusted and attached elsewhere.
pub fn open_tree(path: &CStr, flags: u32) -> io::Result<OwnedFd> {
    open_tree_at(libc::AT_FDCWD, path, flags)
}

/// [`open_tree`] of `path` looked up from the directory `dir`.
pub fn open_tree_at(dir: RawFd, path: &CStr, flags: u32) -> io::Result<OwnedFd> {
    // SAFETY: `path` is a valid C string.
    let ret = unsafe { libc::syscall(libc::SYS_open_tree, dir, path.as_ptr(), flags | libc::O_CLOEXEC as u32) };
    check(ret).map(owned)
}

/// [`open_tree`] of what `fd` is (AT_EMPTY_PATH): no procfs needed to name
/// it, which a process outside the pid namespace of the /proc it sees lacks.
pub fn open_tree_of(fd: &impl AsRawFd, flags: u32) -> io::Result<OwnedFd> {
    // SAFETY: an empty C string and an fd of ours.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_open_tree,
            fd.as_raw_fd(),
            c"".as_ptr(),
            flags | libc::O_CLOEXEC as u32 | libc::AT_EMPTY_PATH as u32,
        )
    };
    check(ret).map(owned)
}

#[repr(C)]
pub struct MountAttr {
    pub attr_set: u64,
    pub attr_clr: u64,
    pub propagation: u64,
    pub userns_fd: u64,
}

pub fn mount_setattr(fd: &OwnedFd, recursive: bool, attr: &MountAttr) -> io::Result<()> {
    let flags = libc::AT_EMPTY_PATH as u32 | if recursive { AT_RECURSIVE } else { 0 };
    // SAFETY: `attr` outlives the call; the empty path with AT_EMPTY_PATH means "fd itself".
    let ret = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            fd.as_raw_fd(),
            c"".as_ptr(),
            flags,
            attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    };
    check(ret).map(drop)
}

const MOVE_MOUNT_F_EMPTY_PATH: u32 = 0x04;
const MOVE_MOUNT_T_EMPTY_PATH: u32 = 0x40;

/// Attaches the detached mount `from` onto the object behind `to`.
pub fn move_mount(from: &OwnedFd, to: &OwnedFd) -> io::Result<()> {
    // SAFETY: both paths are empty C strings; the fds name the objects.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            from.as_raw_fd(),
            c"".as_ptr(),
            to.as_raw_fd(),
            c"".as_ptr(),
            MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH,
        )
    };
    check(ret).map(drop)
}

pub fn pivot_root(new_root: &CStr, put_old: &CStr) -> io::Result<()> {
    // SAFETY: valid C strings.
    let ret = unsafe { libc::syscall(libc::SYS_pivot_root, new_root.as_ptr(), put_old.as_ptr()) };
    check(ret).map(drop)
}

pub fn umount_detach(target: &CStr) -> io::Result<()> {
    // SAFETY: valid C string.
    check_int(unsafe { libc::umount2(target.as_ptr(), libc::MNT_DETACH) }).map(drop)
}

/// Makes the directory `name` in `dir`.
pub fn mkdir_at(dir: BorrowedFd<'_>, name: &CStr, mode: libc::mode_t) -> io::Result<()> {
    // SAFETY: `name` is a valid C string; `dir` an open fd.
    check_int(unsafe { libc::mkdirat(dir.as_raw_fd(), name.as_ptr(), mode) }).map(drop)
}

/// Removes the empty directory `name` in `dir`.
pub fn rmdir_at(dir: BorrowedFd<'_>, name: &CStr) -> io::Result<()> {
    // SAFETY: `name` is a valid C string; `dir` an open fd.
    check_int(unsafe { libc::unlinkat(dir.as_raw_fd(), name.as_ptr(), libc::AT_REMOVEDIR) }).map(drop)
}

pub fn setns(fd: RawFd, nstype: i32) -> io::Result<()> {
    // SAFETY: plain syscall.
    check_int(unsafe { libc::setns(fd, nstype) }).map(drop)
}

/// The CLONE_NEW* type of a namespace file (ioctl NS_GET_NSTYPE).
pub fn namespace_type(fd: &OwnedFd) -> io::Result<i32> {
    const NS_GET_NSTYPE: libc::c_ulong = 0xb703;
    // SAFETY: this ioctl takes no argument.
    check_int(unsafe { libc::ioctl(fd.as_raw_fd(), NS_GET_NSTYPE as libc::Ioctl) })
}

/// The namespace that owns (a user namespace) or is the parent of (a pid
/// namespace) the one open as `fd` (ioctl NS_GET_PARENT); EPERM above the
/// caller's own.
pub fn namespace_parent(fd: &OwnedFd) -> io::Result<OwnedFd> {
    const NS_GET_PARENT: libc::c_ulong = 0xb702;
    // SAFETY: this ioctl takes no argument and returns a new fd.
    let parent = check_int(unsafe { libc::ioctl(fd.as_raw_fd(), NS_GET_PARENT as libc::Ioctl) })?;
    // SAFETY: the kernel just returned this fd, owned by no one else.
    Ok(unsafe { OwnedFd::from_raw_fd(parent) })
}

/// The id of the mount namespace open as `fd` (ioctl NS_GET_MNTNS_ID,
/// Linux 6.8): unlike the file's inode, which a namespace made once this one
/// has ended may get, never another namespace's.
pub fn mount_namespace_id(fd: &OwnedFd) -> io::Result<u64> {
    const NS_GET_MNTNS_ID: libc::c_ulong = 0x8008_b705; // _IOR(0xb7, 5, u64)
    let mut id: u64 = 0;
    // SAFETY: the ioctl writes one u64 through the pointer.
    check_int(unsafe { libc::ioctl(fd.as_raw_fd(), NS_GET_MNTNS_ID as libc::Ioctl, &mut id as *mut u64) })?;
    Ok(id)
}

/// Marks every fd from `first` upwards close-on-exec, leaving lower ones alone.
pub fn cloexec_from(first: u32) -> io::Result<()> {
    const CLOSE_RANGE_CLOEXEC: u32 = 1 << 2;
    // SAFETY: plain syscall.
    let ret = unsafe { libc::syscall(libc::SYS_close_range, first, u32::MAX, CLOSE_RANGE_CLOEXEC) };
    check(ret).map(drop)
}

/// Has the process that `cmd` spawns get only its stdio across its execve:
/// what husk's caller left open (podman's, conmon's, a shell's fds) is not
/// for a hook, as runc's hooks get only their stdio too.
pub fn only_stdio_across_exec(cmd: &mut std::process::Command) {
    // SAFETY: the closure makes one syscall, async-signal-safe and
    // allocation-free, as pre_exec requires; std has set up stdio already.
    unsafe {
        std::os::unix::process::CommandExt::pre_exec(cmd, || cloexec_from(3));
    }
}

/// Closes every fd from `first` upwards except those in `keep`.
pub fn close_fds_from_except(first: RawFd, keep: &[RawFd]) -> io::Result<()> {
    let mut keep: Vec<RawFd> = keep.iter().copied().filter(|&fd| fd >= first).collect();
    keep.sort_unstable();
    let mut from = first;
    for fd in keep.into_iter().chain([RawFd::MAX]) {
        if fd > from {
            let last = if fd == RawFd::MAX { u32::MAX } else { fd as u32 - 1 };
            // SAFETY: plain syscall; the closed fds are no longer referenced by this process.
            check(unsafe { libc::syscall(libc::SYS_close_range, from as u32, last, 0u32) })?;
        }
        from = fd.saturating_add(1);
    }
    Ok(())
}

/// Marks this process (and so whatever it clones from now on) non-dumpable:
/// nothing without CAP_SYS_PTRACE in husk's user namespace can ptrace it or
/// open its /proc/PID/{root,cwd,fd,mem}.
pub fn set_non_dumpable() {
    // SAFETY: prctl with integer arguments.
    unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 0) };
}

/// Clones a sibling: a child of this process's parent (CLONE_PARENT), so that
/// an intermediate process can start a process in the pid namespace it joined
/// and exit, leaving that process to husk.
///
/// # Safety
/// As for `clone_process`.
pub unsafe fn clone_sibling() -> io::Result<libc::pid_t> {
    clone_process(libc::CLONE_PARENT as u64)
}

/// One `write` of `buf` to a descriptor known only by number (the channel a
/// cloned child forwards its debug lines on, see `log::forward_debug_to`).
pub fn write_raw(fd: RawFd, buf: &[u8]) -> io::Result<usize> {
    // SAFETY: `buf` is valid for its length; a stale fd number fails with EBADF.
    let n = unsafe { libc::write(fd, buf.as_ptr().cast(), buf.len()) };
    check_int(n as i32).map(|_| n as usize)
}

pub fn memfd_create(name: &CStr, flags: libc::c_uint) -> io::Result<OwnedFd> {
    // SAFETY: valid C string; the returned fd is ours.
    check_int(unsafe { libc::memfd_create(name.as_ptr(), flags) }).map(|fd| owned(fd as _))
}

pub fn seqpacket_pair() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0; 2];
    // SAFETY: `fds` has room for the two descriptors.
    let ret = unsafe {
        libc::socketpair(
            libc::AF_UNIX,
            libc::SOCK_SEQPACKET | libc::SOCK_CLOEXEC,
            0,
            fds.as_mut_ptr(),
        )
    };
    check_int(ret)?;
    Ok((owned(fds[0] as _), owned(fds[1] as _)))
}

/// Makes each receive on `sock` give up with EAGAIN after `timeout` without
/// data (SO_RCVTIMEO); `None` waits for ever again.
pub fn set_receive_timeout(sock: &OwnedFd, timeout: Option<std::time::Duration>) -> io::Result<()> {
    use nix::sys::socket::{setsockopt, sockopt};
    let t = timeout.unwrap_or_default();
    let t = nix::sys::time::TimeVal::new(t.as_secs() as i64, t.subsec_micros().into());
    setsockopt(sock, sockopt::ReceiveTimeout, &t).map_err(io::Error::from)
}

/// Whether procfs takes the pidns option (Linux 6.15), with `pid_ns` as its
/// value; None when this process may not ask (no right to configure a
/// procfs: unprivileged, outside any user namespace of its own).
pub fn procfs_takes_pidns(pid_ns: &OwnedFd) -> Option<bool> {
    const FSOPEN_CLOEXEC: u32 = 1;
    const FSCONFIG_SET_FD: u32 = 5;
    let refused = |e: &io::Error| e.raw_os_error() == Some(libc::EPERM);
    // SAFETY: plain syscalls with valid C strings; the fs context fd is ours.
    let fs = match unsafe { check(libc::syscall(libc::SYS_fsopen, c"proc".as_ptr(), FSOPEN_CLOEXEC)).map(owned) } {
        Ok(fs) => fs,
        Err(e) if refused(&e) => return None,
        Err(_) => return Some(false),
    };
    let key = c"pidns";
    // SAFETY: as above.
    let set = unsafe {
        libc::syscall(
            libc::SYS_fsconfig,
            fs.as_raw_fd(),
            FSCONFIG_SET_FD,
            key.as_ptr(),
            std::ptr::null::<libc::c_void>(),
            pid_ns.as_raw_fd(),
        )
    };
    match check_int(set as libc::c_int) {
        Ok(_) => Some(true),
        Err(e) if refused(&e) => None,
        Err(_) => Some(false),
    }
}

/// Whether the running kernel's release is at least `major.minor`.
pub fn kernel_at_least(major: u32, minor: u32) -> bool {
    let Ok(uts) = nix::sys::utsname::uname() else {
        return false;
    };
    let release = uts.release().to_string_lossy();
    let mut numbers = release
        .split(|c: char| !c.is_ascii_digit())
        .map(|n| n.parse::<u32>().unwrap_or(0));
    let found = (numbers.next().unwrap_or(0), numbers.next().unwrap_or(0));
    found >= (major, minor)
}

/// A fresh procfs instance that is mounted nowhere: only this process can reach
/// it, so writes meant for /proc (sysctls, labels, oom_score_adj) cannot be
/// redirected by whatever the container's own /proc is (CVE-2025-52881).
pub fn private_procfs() -> io::Result<OwnedFd> {
    new_procfs(false)
}

/// The procfs that writes meant for /proc go through: a private one (see
/// [`private_procfs`]) made up front where the plan writes there (sysctls,
/// LSM labels), or at the first write; or one handed in. A
/// container that writes nothing there gets none: making one and dropping it
/// costs ~60 us of its start (the drop waits for an RCU grace period).
pub struct Procfs(std::cell::OnceCell<OwnedFd>);

impl Procfs {
    /// A private procfs, made now if `needed`, else at the first write. Made
    /// before the rootfs is set up, it can be in a user namespace, where a
    /// new procfs is refused once the mount namespace has none fully visible.
    pub fn private(needed: bool) -> io::Result<Procfs> {
        let cell = std::cell::OnceCell::new();
        if needed {
            let _ = cell.set(private_procfs()?);
        }
        Ok(Procfs(cell))
    }

    /// `fd`, a procfs opened before.
    pub fn given(fd: OwnedFd) -> Procfs {
        Procfs(std::cell::OnceCell::from(fd))
    }

    pub fn get(&self) -> io::Result<&OwnedFd> {
        if let Some(fd) = self.0.get() {
            return Ok(fd);
        }
        let fd = private_procfs()?;
        Ok(self.0.get_or_init(|| fd))
    }

    /// Its fd, once there is one (to keep open when the others are closed).
    pub fn raw_fd(&self) -> Option<RawFd> {
        self.0.get().map(|fd| fd.as_raw_fd())
    }
}

/// A private procfs to keep while waiting (for exec.fifo through self/fd/N):
/// read-only, and with only the processes' directories (subset=pid, Linux
/// 5.8), so that a process that can open the waiting init's fds finds no
/// sysctl, kcore or other host file there to write or read.
pub fn waiting_procfs() -> io::Result<OwnedFd> {
    new_procfs(true)
}

/// [`waiting_procfs`] of the pid namespace `pid_ns` rather than ours (the
/// pidns option, Linux 6.15): for a process that will wait there.
pub fn waiting_procfs_of(pid_ns: &OwnedFd) -> io::Result<OwnedFd> {
    const MOUNT_ATTR_RDONLY: u64 = 1;
    const FSCONFIG_SET_FD: u32 = 5;
    let fs = fs_context(c"proc")?;
    let _ = fs_set_string(&fs, c"subset", c"pid");
    // SAFETY: a valid C string and fds of ours.
    let set = unsafe {
        libc::syscall(
            libc::SYS_fsconfig,
            fs.as_raw_fd(),
            FSCONFIG_SET_FD,
            c"pidns".as_ptr(),
            std::ptr::null::<libc::c_void>(),
            pid_ns.as_raw_fd(),
        )
    };
    check(set)?;
    fs_mount(&fs, MOUNT_ATTR_RDONLY)
}

fn new_procfs(waiting: bool) -> io::Result<OwnedFd> {
    const MOUNT_ATTR_RDONLY: u64 = 1;
    let fs = fs_context(c"proc")?;
    if waiting {
        // Older kernels refuse the option: read-only is then the guard.
        let _ = fs_set_string(&fs, c"subset", c"pid");
    }
    fs_mount(&fs, if waiting { MOUNT_ATTR_RDONLY } else { 0 })
}

/// A filesystem context of type `fstype` (fsopen), to configure and mount.
fn fs_context(fstype: &CStr) -> io::Result<OwnedFd> {
    const FSOPEN_CLOEXEC: u32 = 1;
    // SAFETY: a valid C string; the returned fd is ours.
    unsafe { check(libc::syscall(libc::SYS_fsopen, fstype.as_ptr(), FSOPEN_CLOEXEC)).map(owned) }
}

fn fs_set_string(fs: &OwnedFd, key: &CStr, value: &CStr) -> io::Result<()> {
    const FSCONFIG_SET_STRING: u32 = 1;
    // SAFETY: valid C strings and a filesystem context fd.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_fsconfig,
            fs.as_raw_fd(),
            FSCONFIG_SET_STRING,
            key.as_ptr(),
            value.as_ptr(),
            0,
        )
    };
    check(ret).map(drop)
}

/// Creates the filesystem of context `fs` and returns it mounted nowhere
/// (fsmount), with mount attributes `attrs` (MOUNT_ATTR_*).
fn fs_mount(fs: &OwnedFd, attrs: u64) -> io::Result<OwnedFd> {
    const FSCONFIG_CMD_CREATE: u32 = 6;
    const FSMOUNT_CLOEXEC: u32 = 1;
    // SAFETY: a filesystem context fd; the returned fd is ours.
    unsafe {
        check(libc::syscall(
            libc::SYS_fsconfig,
            fs.as_raw_fd(),
            FSCONFIG_CMD_CREATE,
            std::ptr::null::<libc::c_char>(),
            std::ptr::null::<libc::c_void>(),
            0,
        ))?;
        check(libc::syscall(libc::SYS_fsmount, fs.as_raw_fd(), FSMOUNT_CLOEXEC, attrs)).map(owned)
    }
}

/// A tmpfs mounted nowhere (fsopen, fsmount), with mount attributes `attrs`
/// (MOUNT_ATTR_*) and mount data `options` (`mode=755`), to fill through its
/// fd and attach later with [`move_mount`].
pub fn detached_tmpfs(options: &[(&CStr, &CStr)], attrs: u64) -> io::Result<OwnedFd> {
    let fs = fs_context(c"tmpfs")?;
    for (key, value) in options {
        fs_set_string(&fs, key, value)?;
    }
    fs_mount(&fs, attrs)
}

/// An empty tmpfs, read-only in itself and as mounted (nosuid, nodev,
/// noexec), mounted nowhere: what masked directories are covered with.
pub fn empty_readonly_tmpfs() -> io::Result<OwnedFd> {
    const FSCONFIG_SET_FLAG: u32 = 0;
    const MOUNT_ATTR_RDONLY_NOSUID_NODEV_NOEXEC: u64 = 0x01 | 0x02 | 0x04 | 0x08;
    let fs = fs_context(c"tmpfs")?;
    fs_set_string(&fs, c"source", c"tmpfs")?;
    fs_set_string(&fs, c"size", c"0k")?;
    fs_set_string(&fs, c"mode", c"755")?;
    // SAFETY: a valid C string and a filesystem context fd.
    let ro = unsafe {
        libc::syscall(
            libc::SYS_fsconfig,
            fs.as_raw_fd(),
            FSCONFIG_SET_FLAG,
            c"ro".as_ptr(),
            std::ptr::null::<libc::c_void>(),
            0,
        )
    };
    check(ro)?;
    fs_mount(&fs, MOUNT_ATTR_RDONLY_NOSUID_NODEV_NOEXEC)
}

/// An empty memfd (close-on-exec) at the lowest free fd number: a file of
/// the caller's alone that needs no filesystem.
pub fn empty_memfd(name: &CStr) -> io::Result<OwnedFd> {
    // SAFETY: a valid C string; the new descriptor is ours.
    check_int(unsafe { libc::memfd_create(name.as_ptr(), libc::MFD_CLOEXEC) }).map(|fd| owned(fd as libc::c_long))
}

/// A /dev/null of the caller's alone: the 1:3 node made on a tmpfs mounted
/// nowhere, opened, then unlinked, so that nothing but this fd (and its
/// dups) reaches it, and a chmod or chown through it changes no other file.
/// Needs CAP_SYS_ADMIN over the mount namespace and CAP_MKNOD outside any
/// user namespace.
pub fn private_null() -> io::Result<OwnedFd> {
    const MOUNT_ATTR_NOSUID: u64 = 0x02;
    const MOUNT_ATTR_NOEXEC: u64 = 0x08;
    let options: [(&CStr, &CStr); 3] = [(c"mode", c"700"), (c"size", c"4k"), (c"nr_inodes", c"2")];
    let tmpfs = detached_tmpfs(&options, MOUNT_ATTR_NOSUID | MOUNT_ATTR_NOEXEC)?;
    // SAFETY: a valid C string and a directory fd.
    check_int(unsafe {
        libc::mknodat(
            tmpfs.as_raw_fd(),
            c"null".as_ptr(),
            libc::S_IFCHR | 0o666,
            libc::makedev(1, 3),
        )
    })?;
    let null = openat(
        tmpfs.as_raw_fd(),
        c"null",
        libc::O_RDWR | libc::O_NOCTTY | libc::O_NOFOLLOW,
        0,
    )?;
    // mknod's mode went through the umask (an exec joiner has its caller's).
    // SAFETY: an fd we own.
    check_int(unsafe { libc::fchmod(null.as_raw_fd(), 0o666) })?;
    // SAFETY: as above.
    check_int(unsafe { libc::unlinkat(tmpfs.as_raw_fd(), c"null".as_ptr(), 0) })?;
    Ok(null)
}

/// Makes the superblock under mount `mount` read-only (fspick, then a
/// reconfigure with "ro"), as MS_REMOUNT|MS_RDONLY does, but for a mount
/// that may be detached.
pub fn make_superblock_readonly(mount: &OwnedFd) -> io::Result<()> {
    const FSPICK_CLOEXEC: u32 = 1;
    const FSPICK_EMPTY_PATH: u32 = 8;
    const FSCONFIG_SET_FLAG: u32 = 0;
    const FSCONFIG_CMD_RECONFIGURE: u32 = 7;
    // SAFETY: plain syscalls with valid C strings; the fds are ours.
    unsafe {
        let fs = check(libc::syscall(
            libc::SYS_fspick,
            mount.as_raw_fd(),
            c"".as_ptr(),
            FSPICK_CLOEXEC | FSPICK_EMPTY_PATH,
        ))
        .map(owned)?;
        let null = std::ptr::null::<libc::c_void>();
        check(libc::syscall(
            libc::SYS_fsconfig,
            fs.as_raw_fd(),
            FSCONFIG_SET_FLAG,
            c"ro".as_ptr(),
            null,
            0,
        ))?;
        check(libc::syscall(
            libc::SYS_fsconfig,
            fs.as_raw_fd(),
            FSCONFIG_CMD_RECONFIGURE,
            std::ptr::null::<libc::c_char>(),
            null,
            0,
        ))?;
    }
    Ok(())
}

/// Writes `value` to `path` under a private procfs, without following symlinks.
pub fn write_proc(proc: &Procfs, path: &str, value: &str) -> io::Result<()> {
    let c = cstring(path)?;
    let fd = openat(proc.get()?.as_raw_fd(), &c, libc::O_WRONLY | libc::O_NOFOLLOW, 0)?;
    let mut f = std::fs::File::from(fd);
    std::io::Write::write_all(&mut f, value.as_bytes())
}

/// Reads `path` under a procfs (see [`write_proc`]).
pub fn read_proc(proc: &Procfs, path: &str) -> io::Result<String> {
    let c = cstring(path)?;
    let fd = openat(proc.get()?.as_raw_fd(), &c, libc::O_RDONLY | libc::O_NOFOLLOW, 0)?;
    std::io::read_to_string(std::fs::File::from(fd))
}

/// The start time (clock ticks since boot) and state letter of a live process, from
/// `/proc/PID/stat`; None when there is no such process. The start time is what
/// tells the container's init apart from a later process that reused its pid.
pub fn process_start(pid: libc::pid_t) -> Option<(u64, u8)> {
    process_stat(pid).map(|s| (s.start_time, s.state))
}

/// What `/proc/PID/stat` says of a process that husk needs.
#[derive(Debug, PartialEq)]
pub struct ProcStat {
    pub start_time: u64,
    pub state: u8,
    pub ppid: libc::pid_t,
    /// The kernel's PF_* flags.
    pub flags: u64,
    pub threads: u64,
    /// The CPU it last ran on, or is queued on.
    pub processor: Option<u32>,
    /// A zombie's wait status (as waitpid gives it); 0 before its end.
    pub exit_code: Option<i32>,
}

impl ProcStat {
    /// Whether the process lives: a zombie leader whose other threads run on
    /// (it called pthread_exit) still does.
    pub fn alive(&self) -> bool {
        match self.state {
            b'X' => false,
            b'Z' => self.threads > 1,
            _ => true,
        }
    }
}

/// PF_FORKNOEXEC: set by clone, cleared by execve. A container's init has it until
/// it execs the program: the kernel's own word on "created", which no crash of
/// husk can leave stale and no container process can forge.
pub const PF_FORKNOEXEC: u64 = 0x40;

/// PF_EXITING: the process is exiting. A pid namespace's init stays so until
/// every other process of the namespace is reaped.
pub const PF_EXITING: u64 = 0x4;

/// Whether `pid` is a child of this process (maybe exited, not yet reaped):
/// a pid that a process we started reports is checked before husk signals,
/// places, waits for or records it.
pub fn is_own_child(pid: libc::pid_t) -> bool {
    // SAFETY: getpid cannot fail.
    let me = unsafe { libc::getpid() };
    pid > 0 && process_stat(pid).is_some_and(|s| s.ppid == me)
}

pub fn process_stat(pid: libc::pid_t) -> Option<ProcStat> {
    // A stat line is a few hundred bytes: read into one buffer, without the
    // size probe and growing reads of fs::read (`list` reads one per container).
    let mut buf = [0u8; 1024];
    let path = CString::new(format!("/proc/{pid}/stat")).ok()?;
    let file = std::fs::File::from(openat(libc::AT_FDCWD, &path, libc::O_RDONLY, 0).ok()?);
    let mut len = 0;
    // The line ends with a newline, and procfs hands it whole to the first
    // read: stop there rather than read again for the end of file.
    while len < buf.len() && !buf[..len].ends_with(b"\n") {
        match io::Read::read(&mut &file, &mut buf[len..]) {
            Ok(0) => break,
            Ok(n) => len += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return None,
        }
    }
    parse_stat(&buf[..len])
}

fn parse_stat(stat: &[u8]) -> Option<ProcStat> {
    // The command name may contain spaces and parentheses: fields start after the last ')'.
    let close = stat.iter().rposition(|&b| b == b')')?;
    let rest = stat.get(close + 2..)?;
    let fields: Vec<&[u8]> = rest.strip_suffix(b"\n").unwrap_or(rest).split(|&b| b == b' ').collect();
    let number = |i: usize| std::str::from_utf8(fields.get(i)?).ok()?.parse().ok();
    // Counted from the state, field 3 overall: ppid is field 4, flags 9,
    // num_threads 20, starttime 22, processor 39, exit_code 52.
    Some(ProcStat {
        state: *fields.first()?.first()?,
        ppid: number(1)? as libc::pid_t,
        flags: number(6)?,
        threads: number(17)?,
        start_time: number(19)?,
        processor: number(36).and_then(|n| u32::try_from(n).ok()),
        exit_code: number(49).and_then(|n| i32::try_from(n).ok()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_parsing_survives_odd_command_names() {
        let line = b"42 (a) b) (c) S 1 42 42 0 -1 4194560 100 0 0 0 0 0 0 0 20 0 1 0 987654 1000 10";
        let want = ProcStat {
            start_time: 987654,
            state: b'S',
            ppid: 1,
            flags: 4194560,
            threads: 1,
            processor: None,
            exit_code: None,
        };
        assert_eq!(parse_stat(line), Some(want));
    }

    #[test]
    fn a_zombies_exit_code_is_the_last_field() {
        let line = b"7 (sh) Z 1 7 7 0 -1 4194380 56 0 0 0 0 0 0 0 20 0 1 0 3311 0 0 \
18446744073709551615 0 0 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0 0 0 0 0 0 0 0 11\n";
        let stat = parse_stat(line).expect("parsed");
        assert_eq!(stat.exit_code, Some(11));
        assert_eq!(stat.processor, Some(1));
        assert!(!stat.alive());
    }

    #[test]
    fn stat_of_this_process_is_readable() {
        let (start, state) = process_start(std::process::id() as i32).expect("own stat");
        assert!(start > 0);
        assert!(state == b'R' || state == b'S');
        // Field 39: the CPU we run on, one of ours.
        let me = process_stat(std::process::id() as i32).expect("own stat");
        let cpus = nix::sched::sched_getaffinity(nix::unistd::Pid::from_raw(0)).unwrap();
        let cpu = me.processor.expect("field 39") as usize;
        assert!(cpus.is_set(cpu).unwrap_or(false), "processor {cpu}");
    }

    #[test]
    fn forknoexec_is_set_until_exec() {
        let me = process_stat(std::process::id() as i32).expect("own stat");
        assert_eq!(me.flags & PF_FORKNOEXEC, 0, "the test binary was exec'd");
        // SAFETY: the child only calls async-signal-safe functions.
        let pid = unsafe { libc::fork() };
        if pid == 0 {
            // SAFETY: the child waits to be killed.
            unsafe {
                libc::pause();
                libc::_exit(0);
            }
        }
        let child = process_stat(pid).expect("child stat");
        // SAFETY: killing and reaping our own child.
        unsafe {
            libc::kill(pid, libc::SIGKILL);
            libc::waitpid(pid, std::ptr::null_mut(), 0);
        }
        assert_ne!(child.flags & PF_FORKNOEXEC, 0, "a fork that did not exec");
    }
}

/// Whether this process runs in a user namespace other than the initial one,
/// whose uid_map is the identity over the whole range.
pub fn in_user_namespace() -> bool {
    std::fs::read_to_string("/proc/self/uid_map").is_ok_and(|map| !is_initial_uid_map(&map))
}

fn is_initial_uid_map(map: &str) -> bool {
    map.split_whitespace().collect::<Vec<_>>() == ["0", "0", "4294967295"]
}

#[cfg(test)]
mod uid_map_tests {
    use super::is_initial_uid_map;

    #[test]
    fn the_initial_namespace_maps_everything() {
        assert!(is_initial_uid_map("         0          0 4294967295\n"));
        assert!(!is_initial_uid_map("         0       1000          1\n"));
        assert!(!is_initial_uid_map("0 1000 1\n1 100000 65536\n"));
    }
}
