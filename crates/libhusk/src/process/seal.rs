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
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStringExt;

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

/// Makes a copy of husk that no one can write this process's executable,
/// unless it already runs from one: in place, or by a re-exec that does not
/// return.
pub fn ensure_sealed() -> Result<()> {
    if exe_is_readonly() || exe_is_sealed_copy() {
        return Ok(());
    }
    let sealed = match readonly_mount().and_then(dissolved_exe) {
        Ok(exe) if sys::exe::replace(&exe).is_ok() => return Ok(()),
        Ok(exe) => exe,
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

/// The binary, opened through its read-only bind, whose detached tree is
/// then closed: the kernel dissolves it (an RCU grace period, 0.05-0.2 ms),
/// and a mount in no namespace takes no `mount_setattr` from anyone. Held,
/// the tree could be made writable by whoever reaches it through
/// /proc/PID/exe of husk or its clones with CAP_SYS_ADMIN (review 63b G1,
/// from a container). The file keeps the mount, read-only, for as long as
/// the process runs from it: the executable swapped in place (see
/// [`sys::exe`]: the start of a second process saved), or re-exec'd.
fn dissolved_exe(tree: OwnedFd) -> std::io::Result<OwnedFd> {
    let exe = sys::openat(libc::AT_FDCWD, &sys::fd_path(tree.as_raw_fd()), libc::O_RDONLY, 0);
    drop(tree);
    exe
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
