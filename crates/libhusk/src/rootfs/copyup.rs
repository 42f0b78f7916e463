//! `tmpcopyup`: what the image holds at a tmpfs mount's destination is copied
//! into the fresh tmpfs, as runc and crun do (podman asks for it with
//! `--read-only`).
//!
//! The image is hostile. Everything is reached by fd from the directory the
//! tmpfs covers and nothing is followed: a symlink is copied as a symlink
//! (wherever it points), a directory or file is opened O_NOFOLLOW, a regular
//! file is checked to be one on the very fd that is then read, and fifos,
//! sockets and device nodes are made anew with mknod (as crun does), never
//! opened. Owner and mode are kept, as runc keeps them; times and xattrs are
//! not (runc keeps neither). Hard links become separate copies. The tree may
//! be at most `MAX_DEPTH` directories deep: each level holds two fds.

use std::ffi::OsStr;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::Path;

use nix::fcntl::{readlinkat, AtFlags};
use nix::sys::stat::{fchmodat, fstat, fstatat, mkdirat, mknodat, FchmodatFlags, FileStat, Mode, SFlag};
use nix::unistd::{fchownat, symlinkat, Gid, Uid};

use crate::bail;
use crate::error::{Context, Result};
use crate::sys::{self, cstring, fd_path};

/// Deeper than any tree a container image keeps under /run or /tmp, and far
/// below the open-file limit (two fds a level).
pub const MAX_DEPTH: usize = 256;

const O_PATH_DIR: i32 = libc::O_PATH | libc::O_DIRECTORY | libc::O_NOFOLLOW;

/// Copies the content of directory `from` into directory `to` (the new
/// tmpfs's root). `at` names `from` in messages: the mount's destination.
pub fn copy_tree(from: &OwnedFd, to: &OwnedFd, at: &Path) -> Result<()> {
    copy_dir(from, to, at, 0)
}

fn copy_dir(from: &OwnedFd, to: &OwnedFd, at: &Path, depth: usize) -> Result<()> {
    if depth > MAX_DEPTH {
        bail!("{} is more than {MAX_DEPTH} directories deep", at.display());
    }
    let names = sys::dir::names(from.as_fd()).context(|| format!("list {}", at.display()))?;
    for name in &names {
        let path = at.join(name);
        let what = || format!("copy {}", path.display());
        let st = fstatat(from, name.as_os_str(), AtFlags::AT_SYMLINK_NOFOLLOW).context(what)?;
        if kind(&st) == SFlag::S_IFDIR {
            let (sub_from, sub_to) = make_dir(from, to, name).context(what)?;
            copy_dir(&sub_from, &sub_to, &path, depth + 1)?;
        } else {
            copy_leaf(from, to, name, &st).context(what)?;
        }
        keep_owner_and_mode(to, name, &st).context(what)?;
    }
    Ok(())
}

fn kind(st: &FileStat) -> SFlag {
    SFlag::from_bits_truncate(st.st_mode & libc::S_IFMT)
}

/// Makes directory `name` in `to`; returns it and its namesake in `from`.
fn make_dir(from: &OwnedFd, to: &OwnedFd, name: &OsStr) -> std::io::Result<(OwnedFd, OwnedFd)> {
    let c = cstring(name)?;
    // O_NOFOLLOW | O_DIRECTORY: a directory swapped for a symlink since the stat is refused.
    let sub_from = sys::openat(from.as_raw_fd(), &c, O_PATH_DIR, 0)?;
    mkdirat(to, name, Mode::S_IRWXU)?;
    let sub_to = sys::openat(to.as_raw_fd(), &c, O_PATH_DIR, 0)?;
    Ok((sub_from, sub_to))
}

/// Anything but a directory.
fn copy_leaf(from: &OwnedFd, to: &OwnedFd, name: &OsStr, st: &FileStat) -> std::io::Result<()> {
    let perm = Mode::from_bits_truncate(st.st_mode & 0o7777);
    match kind(st) {
        SFlag::S_IFREG => copy_file(from, to, name),
        SFlag::S_IFLNK => {
            let target = readlinkat(from, name)?;
            Ok(symlinkat(target.as_os_str(), to, name)?)
        }
        k @ (SFlag::S_IFIFO | SFlag::S_IFSOCK | SFlag::S_IFCHR | SFlag::S_IFBLK) => {
            Ok(mknodat(to, name, k, perm, st.st_rdev)?)
        }
        _ => Err(std::io::Error::other("unknown file type")),
    }
}

/// A regular file's bytes. The file is opened O_PATH first and checked on
/// that fd, then read through it: a fifo or device swapped in since the stat
/// is never opened for reading.
fn copy_file(from: &OwnedFd, to: &OwnedFd, name: &OsStr) -> std::io::Result<()> {
    let c = cstring(name)?;
    let held = sys::openat(from.as_raw_fd(), &c, libc::O_PATH | libc::O_NOFOLLOW, 0)?;
    if fstat(&held)?.st_mode & libc::S_IFMT != libc::S_IFREG {
        return Err(std::io::Error::other("changed type while being copied"));
    }
    let source = sys::openat(libc::AT_FDCWD, &fd_path(held.as_raw_fd()), libc::O_RDONLY, 0)?;
    let target = sys::openat(
        to.as_raw_fd(),
        &c,
        libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL | libc::O_NOFOLLOW,
        0o600,
    )?;
    std::io::copy(&mut std::fs::File::from(source), &mut std::fs::File::from(target))?;
    Ok(())
}

/// Owner first: a chown clears the setuid and setgid bits that the mode then sets.
fn keep_owner_and_mode(to: &OwnedFd, name: &OsStr, st: &FileStat) -> std::io::Result<()> {
    let (uid, gid) = (Uid::from_raw(st.st_uid), Gid::from_raw(st.st_gid));
    fchownat(to, name, Some(uid), Some(gid), AtFlags::AT_SYMLINK_NOFOLLOW)?;
    if kind(st) != SFlag::S_IFLNK {
        // Followed, but `name` is what this copy just made in a tmpfs that
        // nothing else can see yet: not a symlink.
        let perm = Mode::from_bits_truncate(st.st_mode & 0o7777);
        fchmodat(to, name, perm, FchmodatFlags::FollowSymlink)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    use std::path::PathBuf;

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("husk-copyup-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("from")).unwrap();
        std::fs::create_dir_all(dir.join("to")).unwrap();
        dir
    }

    fn open_dir(p: &Path) -> OwnedFd {
        sys::openat(libc::AT_FDCWD, &cstring(p).unwrap(), O_PATH_DIR, 0).unwrap()
    }

    fn copy(dir: &Path) -> Result<()> {
        copy_tree(
            &open_dir(&dir.join("from")),
            &open_dir(&dir.join("to")),
            Path::new("/run"),
        )
    }

    #[test]
    fn files_dirs_symlinks_and_fifos_with_their_modes() {
        let dir = scratch("kinds");
        let from = dir.join("from");
        std::fs::create_dir_all(from.join("a/b")).unwrap();
        std::fs::write(from.join("a/b/file"), "content").unwrap();
        std::fs::set_permissions(from.join("a/b/file"), PermissionsExt::from_mode(0o4751)).unwrap();
        std::fs::set_permissions(from.join("a"), PermissionsExt::from_mode(0o1770)).unwrap();
        std::os::unix::fs::symlink("/etc/shadow", from.join("shadow")).unwrap();
        nix::unistd::mkfifo(&from.join("fifo"), Mode::from_bits_truncate(0o640)).unwrap();
        copy(&dir).unwrap();

        let to = dir.join("to");
        assert_eq!(std::fs::read_to_string(to.join("a/b/file")).unwrap(), "content");
        let mode = |p: &str| std::fs::symlink_metadata(to.join(p)).unwrap().mode();
        assert_eq!(mode("a/b/file") & 0o7777, 0o4751);
        assert_eq!(mode("a") & 0o7777, 0o1770);
        assert_eq!(mode("fifo") & 0o7777, 0o640);
        assert_eq!(mode("fifo") & libc::S_IFMT, libc::S_IFIFO);
        assert_eq!(std::fs::read_link(to.join("shadow")).unwrap(), Path::new("/etc/shadow"));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_tree_deeper_than_the_limit_is_refused_with_its_path() {
        let dir = scratch("deep");
        let mut p = dir.join("from");
        for _ in 0..MAX_DEPTH + 1 {
            p.push("d");
        }
        std::fs::create_dir_all(&p).unwrap();
        let e = copy(&dir).unwrap_err();
        assert!(
            e.message().contains("/run/d/d/d") && e.message().contains("deep"),
            "{e}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
