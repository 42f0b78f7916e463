//! Keeps the husk binary out of the container's reach (CVE-2019-5736).
//!
//! The container's init is a clone of husk, so until it execs, its
//! `/proc/self/exe` is the husk binary. A container whose program is
//! `/proc/self/exe` (directly, as a `#!` interpreter or as an ELF interpreter)
//! would run the host binary and could reopen it for writing once it exits.
//! Commands that start container processes therefore re-exec once through a
//! detached, read-only bind mount of the binary (as crun does): the exe of every
//! process they start is then on a read-only mount, and writes fail with EROFS.
//! No copy is made, and commands that start no process (state, list, kill,
//! delete) skip this entirely.

use std::ffi::CString;
use std::os::unix::ffi::OsStringExt;

use crate::error::{Context, Result};
use crate::sys;

/// Whether the running binary already sits on a read-only mount.
fn exe_is_readonly() -> bool {
    // SAFETY: statvfs fills the zeroed struct.
    unsafe {
        let mut st: libc::statvfs = std::mem::zeroed();
        libc::statvfs(c"/proc/self/exe".as_ptr(), &mut st) == 0 && st.f_flag & libc::ST_RDONLY != 0
    }
}

/// Re-execs husk from a read-only detached mount of itself, unless it already
/// runs from a read-only mount. Returns only when no re-exec is needed.
pub fn ensure_sealed() -> Result<()> {
    if exe_is_readonly() {
        return Ok(());
    }
    let tree = match sys::open_tree(c"/proc/self/exe", sys::OPEN_TREE_CLONE) {
        Ok(t) => t,
        // Unprivileged: no mount can be made, but the binary is then not
        // writable by the container either (its root maps to this user at most).
        Err(e) if e.raw_os_error() == Some(libc::EPERM) => return Ok(()),
        Err(e) => return Err(e).context(|| "seal husk binary".into()),
    };
    let ro = sys::MountAttr {
        attr_set: crate::mounts::MOUNT_ATTR_RDONLY,
        attr_clr: 0,
        propagation: 0,
        userns_fd: 0,
    };
    sys::mount_setattr(&tree, false, &ro).context(|| "seal husk binary read-only".into())?;
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
    let err = nix::unistd::execveat(&tree, c"", &args, &env, nix::fcntl::AtFlags::AT_EMPTY_PATH).unwrap_err();
    Err(err).context(|| "re-exec sealed husk binary".into())
}
