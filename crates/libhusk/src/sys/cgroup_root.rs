//! Paths below /sys/fs/cgroup, looked up from a directory fd of it.
//!
//! A path walked from / goes through sysfs's `fs` and `cgroup`, and kernfs
//! revalidates each under sysfs's lock, which every new network namespace
//! takes for writing as it registers its loopback device. With containers
//! starting side by side, a create's ~45 walks (nine hierarchies: stat,
//! mkdir, the tasks files, the init's binds) queued behind other containers'
//! network namespaces, and both CPUs idled (docs/design.md, record 4, "The
//! cgroup paths from a directory fd"). From the fd, each is one walk of the
//! hierarchy's own names. The paths callers keep, show and record are the
//! absolute ones: only the lookup changes.

use std::borrow::Cow;
use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::path::Path;

use crate::sys;

const ROOT: &str = "/sys/fs/cgroup";

/// /sys/fs/cgroup open (O_PATH, close-on-exec): a container's `Cgroup`
/// opens one at its first use; the init opens its own for its cgroup binds,
/// whose sources must be in its mount namespace. None is kept past the fds
/// the init closes before it waits.
pub struct CgroupRoot(Option<OwnedFd>);

impl CgroupRoot {
    /// Opens /sys/fs/cgroup; where it cannot be opened, every path is looked
    /// up whole, as before.
    pub fn open() -> CgroupRoot {
        let flags = libc::O_PATH | libc::O_DIRECTORY;
        CgroupRoot(sys::openat(libc::AT_FDCWD, c"/sys/fs/cgroup", flags, 0).ok())
    }

    /// The directory fd and the path to look `path` up with: below
    /// /sys/fs/cgroup, the fd and the rest; anything else as it is.
    fn at<'p>(&self, path: &'p Path) -> (RawFd, Cow<'p, Path>) {
        let below = path.strip_prefix(ROOT).ok();
        match (&self.0, below) {
            (Some(dir), Some(rest)) if rest.as_os_str().is_empty() => (dir.as_raw_fd(), Cow::Borrowed(Path::new("."))),
            (Some(dir), Some(rest)) => (dir.as_raw_fd(), Cow::Borrowed(rest)),
            _ => (libc::AT_FDCWD, Cow::Borrowed(path)),
        }
    }

    /// mkdir(2) with mode 0777, as `fs::create_dir`.
    pub fn create_dir(&self, path: &Path) -> io::Result<()> {
        let (dir, rest) = self.at(path);
        let rest = sys::cstring(rest.as_os_str())?;
        // SAFETY: `rest` is a valid C string.
        sys::check_int(unsafe { libc::mkdirat(dir, rest.as_ptr(), 0o777) }).map(drop)
    }

    /// Whether `path` exists, a link followed (as `Path::exists`).
    pub fn exists(&self, path: &Path) -> bool {
        let (dir, rest) = self.at(path);
        let Ok(rest) = sys::cstring(rest.as_os_str()) else {
            return false;
        };
        // SAFETY: a valid C string and a stat buffer of the right size.
        unsafe {
            let mut st: libc::stat = std::mem::zeroed();
            libc::fstatat(dir, rest.as_ptr(), &mut st, 0) == 0
        }
    }

    /// Opens `path` with `flags` (close-on-exec).
    pub fn open_file(&self, path: &Path, flags: i32) -> io::Result<File> {
        let (dir, rest) = self.at(path);
        sys::openat(dir, &sys::cstring(rest.as_os_str())?, flags, 0).map(File::from)
    }

    /// Reads a file of one line (`fs::read_line_file`).
    pub fn read_line(&self, path: &Path) -> io::Result<String> {
        crate::sys::fs::read_line(&self.open_file(path, libc::O_RDONLY)?)
    }

    /// Writes `value` to `path` in one write (a cgroup file takes each write
    /// as one value).
    pub fn write(&self, path: &Path, value: &str) -> io::Result<()> {
        use std::io::Write as _;
        self.open_file(path, libc::O_WRONLY)?.write_all(value.as_bytes())
    }

    /// A detached copy of the mount tree at `path` (open_tree(2)).
    pub fn open_tree(&self, path: &Path, flags: u32) -> io::Result<OwnedFd> {
        let (dir, rest) = self.at(path);
        sys::open_tree_at(dir, &sys::cstring(rest.as_os_str())?, flags)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_below_the_root_are_looked_up_from_its_fd() {
        let root = CgroupRoot(Some(File::open("/").unwrap().into()));
        let fd = root.0.as_ref().unwrap().as_raw_fd();
        assert_eq!(
            root.at(Path::new("/sys/fs/cgroup/cpu/husk/c")),
            (fd, Cow::Borrowed(Path::new("cpu/husk/c")))
        );
        assert_eq!(
            root.at(Path::new("/sys/fs/cgroup")),
            (fd, Cow::Borrowed(Path::new(".")))
        );
        assert_eq!(
            root.at(Path::new("/sys/fs/cgroup/")),
            (fd, Cow::Borrowed(Path::new(".")))
        );
        // A name that only starts like it, or another path, is looked up whole.
        let whole = |p: &'static str| (libc::AT_FDCWD, Cow::Borrowed(Path::new(p)));
        assert_eq!(root.at(Path::new("/sys/fs/cgroupx/a")), whole("/sys/fs/cgroupx/a"));
        assert_eq!(root.at(Path::new("/tmp/sys/fs/cgroup")), whole("/tmp/sys/fs/cgroup"));
        assert_eq!(root.at(Path::new("sys/fs/cgroup/a")), whole("sys/fs/cgroup/a"));
        // Without the fd, everything is.
        let none = CgroupRoot(None);
        assert_eq!(none.at(Path::new("/sys/fs/cgroup/a")), whole("/sys/fs/cgroup/a"));
    }

    #[test]
    fn files_are_made_read_and_written_through_the_fd() {
        let top = std::env::temp_dir().join(format!("husk-cgroupfs-{}", std::process::id()));
        std::fs::create_dir_all(&top).unwrap();
        // The fd of `top` stands for /sys/fs/cgroup.
        let root = CgroupRoot(Some(File::open(&top).unwrap().into()));
        let dir = Path::new("/sys/fs/cgroup/a");
        root.create_dir(dir).unwrap();
        assert!(top.join("a").is_dir());
        assert_eq!(root.create_dir(dir).unwrap_err().kind(), io::ErrorKind::AlreadyExists);
        assert!(root.exists(dir) && !root.exists(&dir.join("b")));
        std::fs::write(top.join("a/f"), "").unwrap();
        root.write(&dir.join("f"), "42").unwrap();
        assert_eq!(root.read_line(&dir.join("f")).unwrap(), "42");
        assert_eq!(
            root.read_line(&dir.join("g")).unwrap_err().kind(),
            io::ErrorKind::NotFound
        );
        std::fs::remove_dir_all(&top).unwrap();
    }
}
