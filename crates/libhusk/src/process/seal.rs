//! Keeps the husk binary out of the container's reach (CVE-2019-5736).
//!
//! The container's init is a clone of husk, so until it execs, its
//! `/proc/self/exe` is the husk binary. A container whose program is
//! `/proc/self/exe` (directly, as a `#!` interpreter or as an ELF interpreter)
//! would run the host binary and could reopen it for writing once it exits.
//! Commands that start container processes therefore first make a copy of
//! the binary that nobody can write their process's executable:
//! - a detached, read-only bind mount of the binary (as crun does): no copy,
//!   and writes fail with EROFS; needs the right to mount. The process takes
//!   it as its executable in place ([`sys::exe`]: its segments remapped from
//!   the bind, then `PR_SET_MM_MAP`), which saves the start of a second
//!   process (0.5-0.7 ms of a `run`); where the kernel refuses that (no
//!   CAP_SYS_ADMIN or CAP_CHECKPOINT_RESTORE, another thread, an unusual
//!   layout), it re-execs from the bind;
//! - otherwise (rootless) a sealed memfd copy (as runc does), re-exec'd:
//!   writes fail with EPERM; it costs a copy of the binary, so it is made
//!   only when the caller could write the binary, since a container can
//!   never do more to it than the user who runs husk.
//!
//! Commands that start no process (state, list, kill, delete) skip this.

use std::ffi::CString;
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStringExt;
use std::sync::Mutex;

use nix::fcntl::{fcntl, AtFlags, FcntlArg, SealFlag, AT_FDCWD};
use nix::sys::statvfs::{statvfs, FsFlags};
use nix::unistd::{faccessat, AccessFlags};

use crate::error::{Context, Result};
use crate::sys;

/// Whether the running binary already sits on a read-only mount.
fn exe_is_readonly() -> bool {
    statvfs(c"/proc/self/exe").is_ok_and(|st| st.flags().contains(FsFlags::ST_RDONLY))
}

/// The seals that make a memfd copy of husk immutable.
const SEALS: SealFlag = SealFlag::F_SEAL_SEAL
    .union(SealFlag::F_SEAL_SHRINK)
    .union(SealFlag::F_SEAL_GROW)
    .union(SealFlag::F_SEAL_WRITE);

/// Whether the running binary is a sealed memfd copy (we re-exec'd already).
fn exe_is_sealed_copy() -> bool {
    let Ok(exe) = std::fs::File::open("/proc/self/exe") else {
        return false;
    };
    fcntl(&exe, FcntlArg::F_GET_SEALS).is_ok_and(|seals| SealFlag::from_bits_retain(seals).contains(SEALS))
}

/// Whether this user could write the binary (or chmod it to write it).
fn exe_is_writable_by_caller() -> bool {
    use std::os::unix::fs::MetadataExt;
    let euid = nix::unistd::geteuid().as_raw();
    let writable = faccessat(AT_FDCWD, c"/proc/self/exe", AccessFlags::W_OK, AtFlags::AT_EACCESS).is_ok();
    writable || std::fs::metadata("/proc/self/exe").is_ok_and(|m| m.uid() == euid)
}

/// The detached read-only bind that this process's executable lies on once
/// swapped in place. The last close of its fd dissolves the detached tree,
/// which waits for an RCU grace period (0.05-0.2 ms here): a command that
/// clones lets go of it while it waits for its clone anyway
/// ([`let_go_of_readonly_mount`]), not on its way to the clone; the clones
/// close their copy first thing ([`held_readonly_mount`]).
static READONLY_MOUNT: Mutex<Option<OwnedFd>> = Mutex::new(None);

/// The fd of the read-only bind this process still holds, if any: a clone
/// closes its copy at once, so that the parent's close is the last.
pub fn held_readonly_mount() -> Option<RawFd> {
    let held = READONLY_MOUNT.lock().unwrap_or_else(|e| e.into_inner());
    held.as_ref().map(|fd| fd.as_raw_fd())
}

/// Moves the read-only bind's fd to `min` or above: the numbers below are
/// the caller's to pass on (--preserve-fds, LISTEN_FDS), and the bind,
/// opened before the command line was read, may have taken one of them.
/// Where it cannot be moved it is let go at once.
pub fn move_held_mount_to_or_above(min: RawFd) {
    let mut held = READONLY_MOUNT.lock().unwrap_or_else(|e| e.into_inner());
    let Some(fd) = held.as_ref().filter(|fd| fd.as_raw_fd() < min) else {
        return;
    };
    *held = sys::dup_at_least(fd, min).ok();
}

/// Closes the read-only bind (the executable stays on it: the process's
/// mappings hold it). Meant for when the clones have closed their copies.
pub fn let_go_of_readonly_mount() {
    let taken = READONLY_MOUNT.lock().unwrap_or_else(|e| e.into_inner()).take();
    drop(taken);
}

/// Makes a copy of husk that no one can write this process's executable,
/// unless it already runs from one: in place, or by a re-exec that does not
/// return.
pub fn ensure_sealed() -> Result<()> {
    if exe_is_readonly() || exe_is_sealed_copy() {
        return Ok(());
    }
    let sealed = match readonly_mount() {
        Ok(tree) if swap_in_place(&tree).is_ok() => {
            *READONLY_MOUNT.lock().unwrap_or_else(|e| e.into_inner()) = Some(tree);
            return Ok(());
        }
        Ok(tree) => tree,
        // No right to mount (rootless), or no new mount API here (a kernel
        // before 5.12, or a seccomp filter answering ENOSYS): the copy.
        Err(e) if matches!(e.raw_os_error(), Some(libc::EPERM | libc::ENOSYS | libc::EINVAL)) => {
            if !exe_is_writable_by_caller() {
                return Ok(());
            }
            sealed_copy().context(|| "copy husk binary into a sealed memfd".into())?
        }
        Err(e) => return Err(e).context(|| "seal husk binary".into()),
    };
    reexec(&sealed)
}

/// Makes the read-only bind of the binary this process's executable without
/// an exec (see [`sys::exe`]): the start of a second process saved.
fn swap_in_place(tree: &OwnedFd) -> std::io::Result<()> {
    let file = sys::openat(libc::AT_FDCWD, &sys::fd_path(tree.as_raw_fd()), libc::O_RDONLY, 0)?;
    sys::exe::replace(&file)
}

/// A detached read-only bind mount of the binary.
fn readonly_mount() -> std::io::Result<OwnedFd> {
    let tree = sys::open_tree(c"/proc/self/exe", sys::OPEN_TREE_CLONE)?;
    let ro = sys::MountAttr {
        attr_set: crate::rootfs::mounts::MOUNT_ATTR_RDONLY,
        attr_clr: 0,
        propagation: 0,
        userns_fd: 0,
    };
    sys::mount_setattr(&tree, false, &ro)?;
    Ok(tree)
}

/// A memfd holding a copy of the binary, sealed against any change.
fn sealed_copy() -> std::io::Result<OwnedFd> {
    let memfd = sys::memfd_create(c"husk", libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING)?;
    let exe = std::fs::File::open("/proc/self/exe")?;
    let len = exe.metadata()?.len();
    let mut copied = 0;
    while copied < len {
        // copy_file_range refuses to cross filesystems (EXDEV); sendfile does not.
        match sys::fs::sendfile(memfd.as_fd(), exe.as_fd(), (len - copied) as usize)? {
            0 => return Err(std::io::Error::from(std::io::ErrorKind::UnexpectedEof)),
            n => copied += n as u64,
        }
    }
    fcntl(&memfd, FcntlArg::F_ADD_SEALS(SEALS))?;
    Ok(memfd)
}

fn reexec(binary: &OwnedFd) -> Result<()> {
    let args: Vec<CString> = std::env::args_os()
        .map(|a| CString::new(a.into_vec()).expect("argv has no NUL"))
        .collect();
    let env: Vec<CString> = std::env::vars_os()
        .map(|(k, v)| {
            let mut kv = k.into_vec();
            kv.push(b'=');
            kv.extend(v.into_vec());
            CString::new(kv).expect("environ has no NUL")
        })
        .collect();
    let err = nix::unistd::execveat(binary, c"", &args, &env, nix::fcntl::AtFlags::AT_EMPTY_PATH).unwrap_err();
    Err(err).context(|| "re-exec sealed husk binary".into())
}
