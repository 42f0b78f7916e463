//! Directory listing by fd, with no path: nix wraps readdir only behind a
//! feature husk does not build.

use std::ffi::{CStr, OsString};
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, IntoRawFd};
use std::os::unix::ffi::OsStringExt;

use nix::errno::Errno;

/// The names in the directory behind `dir` (any fd of it, O_PATH too), without
/// `.` and `..`. Reads through a fresh open of the directory, so `dir` keeps
/// its offset.
pub fn names(dir: BorrowedFd<'_>) -> io::Result<Vec<OsString>> {
    list(dir, |_| true)
}

/// The names of the directories in the directory behind `dir`, as `names`
/// (an entry whose type the filesystem does not say is listed too: the
/// caller's open with O_DIRECTORY tells).
pub fn subdirectories(dir: BorrowedFd<'_>) -> io::Result<Vec<OsString>> {
    list(dir, |d_type| matches!(d_type, libc::DT_DIR | libc::DT_UNKNOWN))
}

fn list(dir: BorrowedFd<'_>, keep: impl Fn(u8) -> bool) -> io::Result<Vec<OsString>> {
    let fd = super::openat(dir.as_raw_fd(), c".", libc::O_RDONLY | libc::O_DIRECTORY, 0)?;
    let raw = fd.into_raw_fd();
    // SAFETY: `raw` is an open directory fd that we own; on success the stream owns it.
    let stream = unsafe { libc::fdopendir(raw) };
    if stream.is_null() {
        let e = io::Error::last_os_error();
        // SAFETY: fdopendir failed, so the fd is still ours alone to close.
        unsafe { libc::close(raw) };
        return Err(e);
    }
    let mut names = Vec::new();
    let listed = loop {
        // readdir returns null both at the end and on error: only errno tells.
        Errno::clear();
        // SAFETY: `stream` is a valid stream from fdopendir, not yet closed.
        let entry = unsafe { libc::readdir64(stream) };
        if entry.is_null() {
            break match Errno::last_raw() {
                0 => Ok(()),
                e => Err(io::Error::from_raw_os_error(e)),
            };
        }
        // SAFETY: d_name is a NUL-terminated name inside the entry, which stays
        // valid until the next readdir on this stream; it is copied before that.
        let name = unsafe { CStr::from_ptr((*entry).d_name.as_ptr()) };
        // SAFETY: as above, the entry is valid until the next readdir.
        let d_type = unsafe { (*entry).d_type };
        if name != c"." && name != c".." && keep(d_type) {
            names.push(OsString::from_vec(name.to_bytes().to_vec()));
        }
    };
    // SAFETY: `stream` is closed exactly once; closedir also closes its fd.
    unsafe { libc::closedir(stream) };
    listed.map(|()| names)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsFd;

    #[test]
    fn lists_names_without_dot_entries_through_an_o_path_fd() {
        let dir = std::env::temp_dir().join(format!("husk-dir-test-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("sub")).unwrap();
        std::fs::write(dir.join("file"), "x").unwrap();
        std::os::unix::fs::symlink("/nowhere", dir.join("link")).unwrap();
        let fd = super::super::openat(
            libc::AT_FDCWD,
            &super::super::cstring(&dir).unwrap(),
            libc::O_PATH | libc::O_DIRECTORY,
            0,
        )
        .unwrap();
        let mut got = names(fd.as_fd()).unwrap();
        got.sort();
        assert_eq!(got, ["file", "link", "sub"]);
        // A second listing starts from the beginning again.
        assert_eq!(names(fd.as_fd()).unwrap().len(), 3);
        assert_eq!(subdirectories(fd.as_fd()).unwrap(), ["sub"]);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
