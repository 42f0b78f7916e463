//! Files and descriptors: the calls that nix does not wrap safely (or only
//! behind a feature husk does not build).

use std::ffi::CStr;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

use nix::fcntl::{fcntl, FcntlArg, OFlag};

/// Copies up to `count` bytes from the current offset of `input` to `out`
/// inside the kernel (sendfile(2)); returns how many it copied, 0 at the end
/// of `input`. Unlike copy_file_range it crosses filesystems.
pub fn sendfile(out: BorrowedFd<'_>, input: BorrowedFd<'_>, count: usize) -> io::Result<usize> {
    // SAFETY: a null offset means "from and advancing the file's own offset".
    let n = unsafe { libc::sendfile(out.as_raw_fd(), input.as_raw_fd(), std::ptr::null_mut(), count) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(n as usize)
}

/// Sets O_NONBLOCK on the open file behind `fd`, keeping its other status flags.
pub fn set_nonblocking(fd: BorrowedFd<'_>) -> io::Result<()> {
    let flags = fcntl(fd, FcntlArg::F_GETFL)?;
    fcntl(
        fd,
        FcntlArg::F_SETFL(OFlag::from_bits_retain(flags) | OFlag::O_NONBLOCK),
    )?;
    Ok(())
}

/// Receives one message on `socket` into `payload` and returns the first fd it
/// carried (SCM_RIGHTS, installed close-on-exec), if any. The error is nix's,
/// which is what callers have always shown.
pub fn recv_fd(socket: BorrowedFd<'_>, payload: &mut [u8]) -> nix::Result<Option<OwnedFd>> {
    use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};
    let mut space = nix::cmsg_space!([RawFd; 1]);
    let mut iov = [io::IoSliceMut::new(payload)];
    let msg = recvmsg::<()>(
        socket.as_raw_fd(),
        &mut iov,
        Some(&mut space),
        MsgFlags::MSG_CMSG_CLOEXEC,
    )?;
    for c in msg.cmsgs()? {
        if let ControlMessageOwned::ScmRights(fds) = c {
            if let Some(&fd) = fds.first() {
                // SAFETY: the kernel installed this fd for us and nothing else holds it.
                return Ok(Some(unsafe { OwnedFd::from_raw_fd(fd) }));
            }
        }
    }
    Ok(None)
}

/// Reads a text file of /proc in as few reads as the kernel allows (a page
/// each): `fs::read_to_string` starts with 32 bytes and doubles, and each read
/// of a seq_file such as mountinfo takes the lock of what it lists
/// (mountinfo: the host's mount lock, which every container's mounts take for
/// writing). mountinfo on this project's VM: 9 reads before, 2 now.
pub fn read_proc(path: impl AsRef<std::path::Path>) -> io::Result<String> {
    use std::io::Read;
    let mut text = String::with_capacity(16 * 1024);
    std::fs::File::open(path)?.read_to_string(&mut text)?;
    Ok(text)
}

/// What identifies the file behind an open fd to criu.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileId {
    /// The mount it was opened through; None where the kernel does not say
    /// (statx before 5.8).
    pub mount: Option<u64>,
    pub inode: u64,
    /// A terminal (a character device of the tty, pts or /dev/tty majors).
    pub terminal: bool,
}

/// Whether `st` is a /dev/null: a character device 1:3, wherever it is.
pub fn is_dev_null(st: &libc::stat) -> bool {
    st.st_mode & libc::S_IFMT == libc::S_IFCHR && st.st_rdev == libc::makedev(1, 3)
}

/// Whether a file of `mode` on device `rdev` is a terminal: majors 4 (ttyN,
/// serial), 5 (/dev/tty, /dev/console, /dev/ptmx) and 136-143 (/dev/pts).
pub fn is_terminal(mode: u32, rdev_major: u32) -> bool {
    mode & libc::S_IFMT == libc::S_IFCHR && matches!(rdev_major, 4 | 5 | 136..=143)
}

/// What statx(2) says of `path` (relative to `dirfd`) without asking the
/// filesystem: AT_STATX_DONT_SYNC takes the attributes the kernel has, so
/// that a FUSE daemon or an NFS server that never answers cannot hold the
/// caller (review 54b F3); type, inode, device and mount never go stale.
fn statx_unsynced(dirfd: RawFd, path: &CStr, flags: i32, mask: u32) -> io::Result<libc::statx> {
    // SAFETY: statx is plain old data, filled in by the kernel.
    let mut stx: libc::statx = unsafe { std::mem::zeroed() };
    let flags = flags | libc::AT_STATX_DONT_SYNC;
    // SAFETY: `path` is a C string; the kernel writes no more than a
    // struct statx into `stx`.
    let rc = unsafe { libc::statx(dirfd, path.as_ptr(), flags, mask, &mut stx) };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(stx)
}

/// The [`FileId`] of open fd `fd`.
pub fn file_id(fd: BorrowedFd<'_>) -> io::Result<FileId> {
    file_id_at(fd.as_raw_fd(), c"", libc::AT_EMPTY_PATH)
}

/// The [`FileId`] of the file `path` names, followed (a /proc/PID/fd/N link
/// leads to the open file itself, with no lookup in its filesystem).
pub fn path_file_id(path: &std::path::Path) -> io::Result<FileId> {
    use std::os::unix::ffi::OsStrExt;
    let path =
        std::ffi::CString::new(path.as_os_str().as_bytes()).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    file_id_at(libc::AT_FDCWD, &path, 0)
}

fn file_id_at(dirfd: RawFd, path: &CStr, flags: i32) -> io::Result<FileId> {
    let mask = libc::STATX_TYPE | libc::STATX_INO | libc::STATX_MNT_ID;
    let stx = statx_unsynced(dirfd, path, flags, mask)?;
    Ok(FileId {
        mount: (stx.stx_mask & libc::STATX_MNT_ID != 0).then_some(stx.stx_mnt_id),
        inode: stx.stx_ino,
        terminal: is_terminal(u32::from(stx.stx_mode), stx.stx_rdev_major),
    })
}

/// The device and inode of the directory at `path` (followed), or None
/// when it is not one; asks nothing of its filesystem (AT_STATX_DONT_SYNC).
pub fn dir_id(path: &std::path::Path) -> io::Result<Option<(u64, u64)>> {
    use std::os::unix::ffi::OsStrExt;
    let path =
        std::ffi::CString::new(path.as_os_str().as_bytes()).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    let stx = statx_unsynced(libc::AT_FDCWD, &path, 0, libc::STATX_TYPE | libc::STATX_INO)?;
    let dev = libc::makedev(stx.stx_dev_major, stx.stx_dev_minor);
    let is_dir = u32::from(stx.stx_mode) & libc::S_IFMT == libc::S_IFDIR;
    Ok(is_dir.then_some((dev, stx.stx_ino)))
}

/// Reads a kernel file of one line (a cgroup value such as cpuset.cpus): the
/// kernel hands the whole line, newline included, to the first read, so that
/// is where it stops; `fs::read_to_string` would stat the file first and read
/// again for the end.
pub fn read_line_file(path: impl AsRef<std::path::Path>) -> io::Result<String> {
    read_line(&std::fs::File::open(path)?)
}

/// [`read_line_file`] of an open file.
pub fn read_line(file: &std::fs::File) -> io::Result<String> {
    use std::io::Read;
    let mut reader = file;
    let mut text = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let n = match reader.read(&mut chunk) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        text.extend_from_slice(&chunk[..n]);
        if n == 0 || text.ends_with(b"\n") {
            break;
        }
    }
    String::from_utf8(text).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}

/// Writes `path` through a temporary file renamed over it (close-on-exec,
/// with `mode`): readers see the old content or the new, never a part. The
/// temporary file is removed when anything fails.
///
/// The directory may be one that others can write (a pid file in a bundle's
/// rootfs): the temporary name is random and made with O_EXCL, so a link
/// planted there is never followed (root would write through it), and the
/// rename replaces a link at `path` rather than following it.
///
/// The directory is also one that others read (a caller's): the file is
/// written unnamed (O_TMPFILE) and linked in whole, at `path` itself when
/// nothing is there, so that a husk killed while it writes leaves nothing
/// behind (review 59 F2), and at worst a temporary name between its link
/// and the rename. Where O_TMPFILE or the link fails, a named temporary file.
pub fn write_atomic(path: &std::path::Path, data: &[u8], mode: u32) -> io::Result<()> {
    write_atomic_by(path, data, mode, Replace::Rename)
}

/// As [`write_atomic`], for a file of a directory only husk writes (a
/// container's state directory): a file already at `path` is swapped with
/// the new one (RENAME_EXCHANGE), then removed. A rename over a file makes
/// ext4 (auto_da_alloc) put the new file's blocks on disk at once; when that
/// file goes, a filesystem mounted with `discard` and no journal discards
/// them before unlink returns: ~0.15 ms of each `create`, for a provisional
/// record that lives a few milliseconds. Not for a path a caller names: the
/// swap would move a directory or anything else found there.
pub fn write_atomic_own(path: &std::path::Path, data: &[u8], mode: u32) -> io::Result<()> {
    write_atomic_by(path, data, mode, Replace::Exchange)
}

/// How the new file takes the place of the old.
#[derive(Clone, Copy)]
enum Replace {
    Rename,
    Exchange,
}

fn write_atomic_by(path: &std::path::Path, data: &[u8], mode: u32, replace: Replace) -> io::Result<()> {
    use std::os::unix::ffi::OsStrExt;
    let name = path
        .file_name()
        .ok_or_else(|| io::Error::from(io::ErrorKind::InvalidInput))?;
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => std::path::Path::new("."),
    };
    let dir = crate::sys::openat(libc::AT_FDCWD, &cstring(parent.as_os_str().as_bytes())?, DIR_FLAGS, 0)?;
    if let Replace::Rename = replace {
        let name = cstring(name.as_bytes())?;
        if let Some(linked) = unnamed_file(&dir, data, mode).and_then(|file| link_in(&file, &dir, &name)) {
            return linked;
        }
    }
    for _ in 0..TEMPORARY_NAME_TRIES {
        let tmp = temporary_name()?;
        let flags = libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL | libc::O_NOFOLLOW;
        let file = match crate::sys::openat(dir.as_raw_fd(), &tmp, flags, mode) {
            Err(e) if e.raw_os_error() == Some(libc::EEXIST) => continue,
            other => other?,
        };
        let name = cstring(name.as_bytes())?;
        return fill_and_rename(file, &dir, &tmp, &name, data, replace).inspect_err(|_| {
            // SAFETY: both are valid for the call.
            unsafe { libc::unlinkat(dir.as_raw_fd(), tmp.as_ptr(), 0) };
        });
    }
    Err(io::Error::from_raw_os_error(libc::EEXIST))
}

const DIR_FLAGS: i32 = libc::O_PATH | libc::O_DIRECTORY;
/// Random names taken by someone else before husk gives up.
const TEMPORARY_NAME_TRIES: usize = 8;

/// Not derived from the file's name: a name near NAME_MAX must still fit.
fn temporary_name() -> io::Result<std::ffi::CString> {
    cstring(format!(".husk-{:016x}", random_u64()?).as_bytes())
}

/// A file in `dir` with no name yet, holding `data`; None where the
/// filesystem cannot make one.
fn unnamed_file(dir: &OwnedFd, data: &[u8], mode: u32) -> Option<OwnedFd> {
    use std::io::Write;
    let flags = libc::O_TMPFILE | libc::O_WRONLY;
    let file = crate::sys::openat(dir.as_raw_fd(), c".", flags, mode).ok()?;
    let mut writer = std::fs::File::from(file);
    writer.write_all(data).ok()?;
    Some(OwnedFd::from(writer))
}

/// Links the unnamed `file` at `name` in `dir`: directly when nothing is
/// there, else under a temporary name renamed over what is. None when it
/// cannot be linked at all (no /proc, say): the caller writes another way.
fn link_in(file: &OwnedFd, dir: &OwnedFd, name: &CStr) -> Option<io::Result<()>> {
    match link_unnamed(file, dir, name) {
        Ok(()) => return Some(Ok(())),
        Err(e) if e.raw_os_error() == Some(libc::EEXIST) => {}
        Err(_) => return None,
    }
    for _ in 0..TEMPORARY_NAME_TRIES {
        let tmp = match temporary_name() {
            Ok(tmp) => tmp,
            Err(e) => return Some(Err(e)),
        };
        match link_unnamed(file, dir, &tmp) {
            Err(e) if e.raw_os_error() == Some(libc::EEXIST) => continue,
            Err(e) => return Some(Err(e)),
            Ok(()) => {}
        }
        return Some(rename_over(dir, &tmp, name).inspect_err(|_| {
            // SAFETY: both are valid for the call.
            unsafe { libc::unlinkat(dir.as_raw_fd(), tmp.as_ptr(), 0) };
        }));
    }
    Some(Err(io::Error::from_raw_os_error(libc::EEXIST)))
}

/// linkat through /proc/self/fd, which needs no capability (AT_EMPTY_PATH
/// needs CAP_DAC_READ_SEARCH); never replaces what is at `name`.
fn link_unnamed(file: &OwnedFd, dir: &OwnedFd, name: &CStr) -> io::Result<()> {
    let fd_path = cstring(format!("/proc/self/fd/{}", file.as_raw_fd()).as_bytes())?;
    // SAFETY: both names are valid C strings, the fd a directory.
    let r = unsafe {
        libc::linkat(
            libc::AT_FDCWD,
            fd_path.as_ptr(),
            dir.as_raw_fd(),
            name.as_ptr(),
            libc::AT_SYMLINK_FOLLOW,
        )
    };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

fn rename_over(dir: &OwnedFd, tmp: &CStr, name: &CStr) -> io::Result<()> {
    let d = dir.as_raw_fd();
    // SAFETY: both names are valid C strings, the fd a directory.
    if unsafe { libc::renameat(d, tmp.as_ptr(), d, name.as_ptr()) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

fn fill_and_rename(
    file: OwnedFd,
    dir: &OwnedFd,
    tmp: &std::ffi::CStr,
    name: &std::ffi::CStr,
    data: &[u8],
    replace: Replace,
) -> io::Result<()> {
    use std::io::Write;
    std::fs::File::from(file).write_all(data)?;
    let d = dir.as_raw_fd();
    if let Replace::Exchange = replace {
        let r = renameat2(d, tmp, d, name, libc::RENAME_EXCHANGE);
        if r == 0 {
            // The old content, under the temporary name now.
            // SAFETY: tmp is a valid C string, d a directory fd.
            unsafe { libc::unlinkat(d, tmp.as_ptr(), 0) };
            return Ok(());
        }
        // ENOENT: nothing to swap with; EINVAL: a filesystem without it.
        let e = io::Error::last_os_error();
        if !matches!(e.raw_os_error(), Some(libc::ENOENT | libc::EINVAL)) {
            return Err(e);
        }
    }
    rename_over(dir, tmp, name)
}

/// `remove_dir_all`, and where that fails, `remove_tree`: a container
/// whose root is the user could plant directories of mode 000 in the notify
/// directory bound into it (review 47 F2), or a tree deeper than the open
/// files allow (std holds a directory fd per level: EMFILE; review 47b F2),
/// and no `delete` could remove its state any more.
pub fn remove_dir_all_forcing(path: &std::path::Path) -> io::Result<()> {
    match std::fs::remove_dir_all(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => remove_tree(path),
        other => other,
    }
}

/// Removes the tree at `path` at any depth with two directory fds open at
/// most (it climbs back by `..`), giving u+rwx first to each directory this
/// user owns that lacks it. Never follows a link: each directory is opened
/// O_NOFOLLOW from its parent's fd. The names still to remove are kept per
/// level, so each directory is listed once. A `..` that is not the
/// directory it came down from (a process of the container, still there,
/// moved the one being emptied higher in its tree) stops the walk: climbing
/// on would remove what lies around the state directory (review 47c F1).
/// The check alone is not the guard (a freed inode can be reused by a
/// directory the container makes, review 47d): what keeps the walk in the
/// tree is that the container reaches only the notify directory, the root
/// of its bind, which it cannot move, so no `..` from below leads past it.
fn remove_tree(path: &std::path::Path) -> io::Result<()> {
    use std::os::unix::ffi::OsStrExt;
    let mut dir = open_dir_forcing(libc::AT_FDCWD, &cstring(path.as_os_str().as_bytes())?)?;
    // Each directory gone down into, from the top: its name, and the
    // identity of the one it was entered from.
    let mut entered: Vec<(std::ffi::CString, FileId)> = Vec::new();
    // Per level, from the top: its subdirectories still there.
    let mut pending = vec![remove_files_listing_dirs(&dir)?];
    loop {
        let level = pending.last_mut().expect("the top's level is popped last");
        if let Some(name) = level.pop() {
            // An empty one goes at once, without a descent.
            if crate::sys::rmdir_at(dir.as_fd(), &name).is_ok() {
                continue;
            }
            let parent = file_id(dir.as_fd())?;
            dir = match open_dir_forcing(dir.as_raw_fd(), &name) {
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                other => other?,
            };
            entered.push((name, parent));
            pending.push(remove_files_listing_dirs(&dir)?);
            continue;
        }
        pending.pop();
        let Some((emptied, parent)) = entered.pop() else { break };
        dir = crate::sys::openat(dir.as_raw_fd(), c"..", libc::O_RDONLY | libc::O_DIRECTORY, 0)?;
        if file_id(dir.as_fd())? != parent {
            return Err(io::Error::other(
                "a directory was moved while the tree was removed (a process of the container still running?)",
            ));
        }
        crate::sys::rmdir_at(dir.as_fd(), &emptied)?;
    }
    drop(dir);
    std::fs::remove_dir(path)
}

/// `name` in `dir` opened for listing; one this user owns that it may not
/// list, or not change, gets u+rwx first (through its O_PATH fd's /proc
/// link: the directory opened, never a link in its place).
fn open_dir_forcing(dir: RawFd, name: &std::ffi::CStr) -> io::Result<OwnedFd> {
    let handle = crate::sys::openat(dir, name, libc::O_PATH | libc::O_DIRECTORY | libc::O_NOFOLLOW, 0)?;
    let st = nix::sys::stat::fstat(&handle)?;
    let by_fd = crate::sys::fd_path(handle.as_raw_fd());
    if st.st_uid == nix::unistd::geteuid().as_raw() && st.st_mode & 0o700 != 0o700 {
        nix::sys::stat::fchmodat(
            nix::fcntl::AT_FDCWD,
            by_fd.as_c_str(),
            nix::sys::stat::Mode::from_bits_truncate((st.st_mode & 0o7777) | 0o700),
            nix::sys::stat::FchmodatFlags::FollowSymlink,
        )?;
    }
    crate::sys::openat(libc::AT_FDCWD, &by_fd, libc::O_RDONLY | libc::O_DIRECTORY, 0)
}

/// Unlinks every entry of `dir` that is not a directory; returns the
/// names of those that are.
fn remove_files_listing_dirs(dir: &OwnedFd) -> io::Result<Vec<std::ffi::CString>> {
    use std::os::unix::ffi::OsStrExt;
    let by_fd = crate::sys::fd_path(dir.as_raw_fd());
    let mut dirs = Vec::new();
    for entry in std::fs::read_dir(std::ffi::OsStr::from_bytes(by_fd.as_bytes()))? {
        let entry = entry?;
        let name = cstring(entry.file_name().as_bytes())?;
        if entry.file_type()?.is_dir() {
            dirs.push(name);
            continue;
        }
        // SAFETY: a valid C string and a directory fd.
        if unsafe { libc::unlinkat(dir.as_raw_fd(), name.as_ptr(), 0) } < 0 {
            let e = io::Error::last_os_error();
            if e.kind() != io::ErrorKind::NotFound {
                return Err(e);
            }
        }
    }
    Ok(dirs)
}

/// A name no other file of a directory is likely to have: `prefix` and 64
/// random bits.
pub fn random_name(prefix: &str) -> io::Result<String> {
    Ok(format!("{prefix}{:016x}", random_u64()?))
}

/// renameat2(2) through the raw syscall: musl (1.2.5, the one Rust's musl
/// target links, which the shipped husk is built for) has no wrapper.
fn renameat2(from_dir: RawFd, from: &CStr, to_dir: RawFd, to: &CStr, flags: libc::c_uint) -> libc::c_long {
    // SAFETY: both names are valid C strings for the call's duration; a bad
    // fd is EBADF.
    unsafe { libc::syscall(libc::SYS_renameat2, from_dir, from.as_ptr(), to_dir, to.as_ptr(), flags) }
}

/// Renames `from` to `to` without ever replacing what is at `to` (EEXIST).
/// Where the filesystem has no RENAME_NOREPLACE (EINVAL), a plain rename:
/// for a directory, that replaces at most an empty directory at `to`.
pub fn rename_no_replace(from: &std::path::Path, to: &std::path::Path) -> io::Result<()> {
    use std::os::unix::ffi::OsStrExt;
    let (from, to) = (
        cstring(from.as_os_str().as_bytes())?,
        cstring(to.as_os_str().as_bytes())?,
    );
    let (at, noreplace) = (libc::AT_FDCWD, libc::RENAME_NOREPLACE);
    if renameat2(at, &from, at, &to, noreplace) == 0 {
        return Ok(());
    }
    let e = io::Error::last_os_error();
    if e.raw_os_error() != Some(libc::EINVAL) {
        return Err(e);
    }
    // SAFETY: both names are valid C strings.
    if unsafe { libc::renameat(at, from.as_ptr(), at, to.as_ptr()) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// For tests: the names made in a directory (IN_CREATE, IN_MOVED_TO), by inotify.
#[cfg(test)]
pub(crate) struct DirWatch(OwnedFd);

#[cfg(test)]
impl DirWatch {
    pub(crate) fn new(dir: &std::path::Path, blocking: bool) -> DirWatch {
        use std::os::fd::FromRawFd;
        let flags = libc::IN_CLOEXEC | if blocking { 0 } else { libc::IN_NONBLOCK };
        // SAFETY: a plain call; the fd is owned at once.
        let fd = unsafe { OwnedFd::from_raw_fd(libc::inotify_init1(flags)) };
        let watched = cstring(dir.as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: a valid fd and C string.
        let wd =
            unsafe { libc::inotify_add_watch(fd.as_raw_fd(), watched.as_ptr(), libc::IN_CREATE | libc::IN_MOVED_TO) };
        assert!(wd >= 0);
        DirWatch(fd)
    }

    /// The names made since the last call, with their event masks (waiting
    /// for one when blocking).
    pub(crate) fn events(&self) -> Vec<(String, u32)> {
        let mut buf = [0u8; 4096];
        let n = nix::unistd::read(&self.0, &mut buf).unwrap_or(0);
        let (mut events, mut at) = (Vec::new(), 0);
        let header = std::mem::size_of::<libc::inotify_event>();
        while at + header <= n {
            let mask = u32::from_ne_bytes(buf[at + 4..at + 8].try_into().unwrap());
            let len = u32::from_ne_bytes(buf[at + 12..at + 16].try_into().unwrap()) as usize;
            let name = &buf[at + header..at + header + len];
            let end = name.iter().position(|&b| b == 0).unwrap_or(len);
            events.push((String::from_utf8_lossy(&name[..end]).into_owned(), mask));
            at += header + len;
        }
        events
    }
}

fn cstring(bytes: &[u8]) -> io::Result<std::ffi::CString> {
    std::ffi::CString::new(bytes).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))
}

fn random_u64() -> io::Result<u64> {
    let mut bytes = [0u8; 8];
    // SAFETY: writes at most 8 bytes into `bytes`.
    let n = unsafe { libc::getrandom(bytes.as_mut_ptr().cast(), bytes.len(), 0) };
    if n != bytes.len() as isize {
        return Err(io::Error::last_os_error());
    }
    Ok(u64::from_ne_bytes(bytes))
}

/// A unix stream connection to `path` whose connect and sends give up after
/// `timeout` (SO_SNDTIMEO bounds both for a unix socket: EAGAIN), so that a
/// peer that stops accepting or reading never holds husk.
pub fn connect_within(path: &std::path::Path, timeout: std::time::Duration) -> nix::Result<OwnedFd> {
    use nix::sys::socket::{connect, setsockopt, socket, sockopt, AddressFamily, SockFlag, SockType, UnixAddr};
    let sock = socket(AddressFamily::Unix, SockType::Stream, SockFlag::SOCK_CLOEXEC, None)?;
    setsockopt(
        &sock,
        sockopt::SendTimeout,
        &nix::sys::time::TimeVal::new(timeout.as_secs() as i64, 0),
    )?;
    connect(sock.as_raw_fd(), &UnixAddr::new(path)?)?;
    Ok(sock)
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Seek, Write};
    use std::os::fd::AsFd;

    use nix::sys::socket::{sendmsg, ControlMessage, MsgFlags};

    use super::*;

    #[test]
    fn write_atomic_replaces_a_link_at_the_path_and_leaves_no_temporary_file() {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("husk-write-atomic-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let victim = dir.join("victim");
        std::fs::write(&victim, "keep").unwrap();
        std::os::unix::fs::symlink(&victim, dir.join("pid")).unwrap();
        write_atomic(&dir.join("pid"), b"42", 0o640).unwrap();
        let meta = std::fs::symlink_metadata(dir.join("pid")).unwrap();
        assert!(meta.file_type().is_file());
        assert_eq!(meta.permissions().mode() & 0o777, 0o640 & !current_umask());
        assert_eq!(std::fs::read_to_string(dir.join("pid")).unwrap(), "42");
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "keep");
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 2, "a temporary file is left");
        // A name as long as a file name may be (runc takes it too).
        let long = dir.join("p".repeat(255));
        write_atomic(&long, b"7", 0o600).unwrap();
        assert_eq!(std::fs::read_to_string(&long).unwrap(), "7");
        let e = write_atomic(&dir.join("no-such-dir/pid"), b"1", 0o600).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::ENOENT));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn write_atomic_to_a_new_name_makes_no_other_name() {
        let dir = std::env::temp_dir().join(format!("husk-write-unnamed-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let watch = DirWatch::new(&dir, false);
        write_atomic(&dir.join("pid"), b"1", 0o644).unwrap();
        let names: Vec<_> = watch.events().into_iter().map(|(name, _)| name).collect();
        assert_eq!(names, ["pid"], "a husk killed while it wrote would leave a name");
        assert_eq!(std::fs::read_to_string(dir.join("pid")).unwrap(), "1");
        write_atomic(&dir.join("pid"), b"2", 0o644).unwrap();
        assert_eq!(std::fs::read_to_string(dir.join("pid")).unwrap(), "2");
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 1, "a temporary file is left");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_tree_with_directories_of_mode_000_is_removed_never_through_a_link() {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("husk-remove-tree-{}", std::process::id()));
        let victim = std::env::temp_dir().join(format!("husk-remove-tree-victim-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("notify/x/y")).unwrap();
        std::fs::create_dir_all(dir.join("notify/empty")).unwrap();
        std::fs::create_dir_all(victim.join("kept")).unwrap();
        std::fs::write(dir.join("notify/x/y/f"), "").unwrap();
        std::os::unix::fs::symlink(&victim, dir.join("notify/x/link")).unwrap();
        for d in [dir.join("notify/x/y"), dir.join("notify/x")] {
            std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o000)).unwrap();
        }
        // As root remove_dir_all would do; the walk is what a user needs.
        remove_tree(&dir).unwrap();
        let kept = victim.join("kept").exists();
        std::fs::remove_dir_all(&victim).unwrap();
        assert!(!dir.exists());
        assert!(kept, "the link was followed");
    }

    /// Review 47c F1: a process moved the directory being emptied higher in
    /// the tree; climbing back by `..` went above the tree and removed what
    /// was there by the names still pending.
    #[test]
    fn a_directory_moved_while_it_is_emptied_stops_the_walk_inside_the_tree() {
        let base = std::env::temp_dir().join(format!("husk-remove-moved-{}", std::process::id()));
        let tree = base.join("tree");
        std::fs::create_dir_all(tree.join("a/b")).unwrap();
        // Beside the tree, by the name the walk removes once it is back at
        // what it takes for the top.
        std::fs::create_dir_all(base.join("a")).unwrap();
        for i in 0..10_000 {
            std::fs::File::create(tree.join(format!("a/b/f{i}"))).unwrap();
        }
        let first = std::fs::read_dir(tree.join("a/b"))
            .unwrap()
            .next()
            .unwrap()
            .unwrap()
            .path();
        let (from, to) = (tree.join("a/b"), tree.join("b"));
        let mover = std::thread::spawn(move || {
            while first.exists() {}
            std::fs::rename(from, to).is_ok()
        });
        let removed = remove_tree(&tree);
        let moved = mover.join().unwrap();
        let kept = base.join("a").exists();
        std::fs::remove_dir_all(&base).unwrap();
        assert!(moved, "the mover was late: the test proves nothing");
        assert!(kept, "the walk climbed out of the tree");
        assert!(removed.unwrap_err().to_string().contains("was moved"));
    }

    #[test]
    fn a_tree_thousands_deep_is_removed() {
        let dir = std::env::temp_dir().join(format!("husk-remove-deep-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut at = crate::sys::openat(
            libc::AT_FDCWD,
            &std::ffi::CString::new(dir.to_str().unwrap()).unwrap(),
            libc::O_PATH,
            0,
        )
        .unwrap();
        // Deeper than std's walk could go with 1024 open files.
        for _ in 0..3000 {
            nix::sys::stat::mkdirat(&at, c"d", nix::sys::stat::Mode::from_bits_truncate(0o700)).unwrap();
            at = crate::sys::openat(at.as_raw_fd(), c"d", libc::O_PATH, 0).unwrap();
        }
        drop(at);
        remove_tree(&dir).unwrap();
        assert!(!dir.exists());
    }

    #[test]
    fn write_atomic_own_swaps_an_old_file_out_and_leaves_only_the_new() {
        let dir = std::env::temp_dir().join(format!("husk-write-own-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let state = dir.join("state.json");
        write_atomic_own(&state, b"first", 0o600).unwrap();
        let reader = std::fs::File::open(&state).unwrap();
        write_atomic_own(&state, b"second", 0o600).unwrap();
        assert_eq!(std::fs::read_to_string(&state).unwrap(), "second");
        // One open on the old file reads it whole: it was swapped, not rewritten.
        assert_eq!(std::io::read_to_string(reader).unwrap(), "first");
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 1, "the old file is left");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    fn current_umask() -> u32 {
        let status = std::fs::read_to_string("/proc/self/status").unwrap();
        let umask = status.lines().find_map(|l| l.strip_prefix("Umask:")).unwrap();
        u32::from_str_radix(umask.trim(), 8).unwrap()
    }

    #[test]
    fn sendfile_copies_from_the_file_offset() {
        let mut from = crate::sys::memfd(c"husk-test-from").unwrap();
        from.write_all(b"skip:copied").unwrap();
        from.seek(std::io::SeekFrom::Start(5)).unwrap();
        let mut to = crate::sys::memfd(c"husk-test-to").unwrap();
        assert_eq!(sendfile(to.as_fd(), from.as_fd(), 100).unwrap(), 6);
        assert_eq!(
            sendfile(to.as_fd(), from.as_fd(), 100).unwrap(),
            0,
            "the end of the file"
        );
        let mut text = String::new();
        to.rewind().unwrap();
        to.read_to_string(&mut text).unwrap();
        assert_eq!(text, "copied");
    }

    #[test]
    fn a_nonblocking_empty_pipe_would_block() {
        let (read, _write) = nix::unistd::pipe().unwrap();
        set_nonblocking(read.as_fd()).unwrap();
        let e = std::fs::File::from(read).read(&mut [0u8; 1]).unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::WouldBlock);
    }

    #[test]
    fn an_fd_sent_over_a_socket_arrives_close_on_exec() {
        let (a, b) = crate::sys::seqpacket_pair().unwrap();
        let file = std::fs::File::open("/proc/self/stat").unwrap();
        let fds = [file.as_raw_fd()];
        let iov = [io::IoSlice::new(b"fd")];
        sendmsg::<()>(
            a.as_raw_fd(),
            &iov,
            &[ControlMessage::ScmRights(&fds)],
            MsgFlags::empty(),
            None,
        )
        .unwrap();
        let mut buf = [0u8; 8];
        let got = recv_fd(b.as_fd(), &mut buf).unwrap().expect("an fd");
        assert_eq!(&buf[..2], b"fd");
        let (sent, received) = (
            nix::sys::stat::fstat(&file).unwrap(),
            nix::sys::stat::fstat(&got).unwrap(),
        );
        assert_eq!((sent.st_dev, sent.st_ino), (received.st_dev, received.st_ino));
        let flags = fcntl(&got, FcntlArg::F_GETFD).unwrap();
        assert_ne!(flags & libc::FD_CLOEXEC, 0);

        sendmsg::<()>(a.as_raw_fd(), &iov, &[], MsgFlags::empty(), None).unwrap();
        assert!(
            recv_fd(b.as_fd(), &mut buf).unwrap().is_none(),
            "a message without an fd"
        );
    }
}
