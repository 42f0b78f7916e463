//! The in-root path resolver: opens a path inside the container's rootfs as
//! if the rootfs were `/`. No symlink in the image (absolute, or with enough
//! `..` to climb out), and none swapped in meanwhile through a shared volume,
//! can point a mount, a device node or a masked path at the host
//! (CVE-2021-30465 class).
//!
//! It resolves in one of two ways, with the same answers:
//! - the kernel: openat2(RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS), Linux 5.6;
//! - a walk, one component at a time, each opened O_PATH | O_NOFOLLOW: every
//!   symlink is read and expanded here (an absolute one restarts at the root)
//!   and `..` never climbs above the root. The walk is the fallback where
//!   openat2 fails with ENOSYS (an older kernel, or husk itself under a seccomp
//!   filter that denies it that way), and the way missing components are
//!   created (mkdir -p inside the root).
//!
//! Neither follows a /proc magic link (/proc/self/cwd, /proc/self/fd/N):
//! both refuse one with ELOOP. What the walk cannot see that the kernel
//! does: a directory it already holds being moved out of the root by a
//! concurrent rename through another mount (openat2 notices and asks for a
//! retry).
//!
//! Unit tests run every case both ways (`Method::Walk` forces the walk, as
//! crun's tests force their fallback with a no_openat2 shim).

use std::collections::VecDeque;
use std::ffi::{CStr, OsStr};
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use nix::sys::stat::{Mode, SFlag};

use crate::bail;
use crate::error::{Context, Error, Result};
use crate::sys::{self, cstring};

const O_PATH_DIR: i32 = libc::O_PATH | libc::O_DIRECTORY;

/// The kernel's own limit on symlinks followed in one lookup (MAXSYMLINKS).
const MAX_SYMLINKS: usize = 40;

/// How a path is resolved.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Method {
    /// openat2, or the walk where the kernel has no openat2 (ENOSYS).
    Kernel,
    /// The walk only, as on a kernel without openat2 (forced by the tests).
    #[cfg_attr(not(test), allow(dead_code))]
    Walk,
}

/// What to make of a missing component.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Leaf {
    Dir,
    File,
}

fn is_enoent(e: &io::Error) -> bool {
    e.raw_os_error() == Some(libc::ENOENT)
}

fn errno(code: i32) -> io::Error {
    io::Error::from_raw_os_error(code)
}

/// Opens `path` relative to `root` as if `root` were `/`: absolute symlinks
/// and `..` cannot leave it. `flags` are open(2)'s without O_CREAT: O_PATH,
/// O_DIRECTORY, O_NOFOLLOW or an access mode; O_CLOEXEC is always added.
pub fn open_in_root(root: &OwnedFd, path: &Path, flags: i32) -> io::Result<OwnedFd> {
    open_by(Method::Kernel, root, path, flags)
}

/// Asked before anything missing is made, with the directory it would be
/// made in: its error stops the resolve there, with nothing made.
pub type Guard<'g> = &'g dyn Fn(&OwnedFd) -> Result<()>;

/// A directory inside the rootfs, created (mkdir -p, 0755) when `create` is set.
pub fn resolve_dir(root: &OwnedFd, path: &Path, create: bool) -> Result<OwnedFd> {
    resolve_by(
        Method::Kernel,
        root,
        path,
        O_PATH_DIR,
        create.then_some(Leaf::Dir),
        None,
    )
}

/// A file inside the rootfs (created empty when missing), as a bind-mount target.
pub fn resolve_file(root: &OwnedFd, path: &Path) -> Result<OwnedFd> {
    resolve_by(Method::Kernel, root, path, libc::O_PATH, Some(Leaf::File), None)
}

/// `path` inside the rootfs, made where missing (a `leaf` at the end,
/// directories on the way) where `guard` lets it; the guard's error is
/// returned as it is.
pub fn make_guarded(root: &OwnedFd, path: &Path, leaf: Leaf, guard: Guard) -> Result<OwnedFd> {
    let flags = match leaf {
        Leaf::Dir => O_PATH_DIR,
        Leaf::File => libc::O_PATH,
    };
    let refused = std::cell::RefCell::new(None);
    let keep = |dir: &OwnedFd| {
        guard(dir).inspect_err(|e| {
            refused.replace(Some(e.to_string()));
        })
    };
    resolve_by(Method::Kernel, root, path, flags, Some(leaf), Some(&keep))
        .map_err(|e| refused.take().map(Error::new).unwrap_or(e))
}

/// The (created) parent directory of `path` inside the rootfs, and the last component.
pub fn resolve_parent<'a>(root: &OwnedFd, path: &'a Path) -> Result<(OwnedFd, &'a OsStr)> {
    let Some(name) = path.file_name() else {
        bail!("{} has no file name", path.display())
    };
    let parent = resolve_dir(root, path.parent().unwrap_or(Path::new("/")), true)?;
    Ok((parent, name))
}

/// Opens `path` in the root the way `method` says, and on ENOENT with
/// `create` makes what is missing by walking.
fn resolve_by(
    method: Method,
    root: &OwnedFd,
    path: &Path,
    flags: i32,
    create: Option<Leaf>,
    guard: Option<Guard>,
) -> Result<OwnedFd> {
    let fail = |e: io::Error| Error::new(format!("resolve {} in rootfs: {e}", path.display()));
    match open_by(method, root, path, flags) {
        Ok(fd) => Ok(fd),
        Err(e) if is_enoent(&e) && create.is_some() => walk(root, path, flags, create, guard).map_err(fail),
        Err(e) => Err(e).context(|| format!("resolve {} in rootfs", path.display())),
    }
}

fn open_by(method: Method, root: &OwnedFd, path: &Path, flags: i32) -> io::Result<OwnedFd> {
    if method == Method::Kernel {
        match openat2(root, path, flags) {
            Err(e) if e.raw_os_error() == Some(libc::ENOSYS) => {}
            opened => return opened,
        }
    }
    walk(root, path, flags, None, None)
}

/// How often openat2 is retried when renames inside the rootfs keep racing
/// with it, before its EAGAIN is given up with: the container may hold that race.
const RACE_RETRIES: u32 = 1000;

/// The most directories a creating walk makes: far more than a path and its
/// symlinks can name (40 links of at most 2048 components each), so only
/// something that keeps removing what the walk makes reaches it.
const MAX_MADE: u32 = 1 << 17;

/// How often openat2's ELOOP is tried again. A lookup the kernel starts
/// lock-free and restarts with locks, when a mount, umount or rename
/// anywhere on the host raced with it, counts again the links it had
/// followed: a chain of 21 to 40 links then fails now and then (1 in 160
/// to 1 in 200 lookups of 40 links on Linux 6.18 with mounts churning in
/// another namespace), and in bursts on a loaded host (8 tries in a row
/// failed on an Intel VM with both cores busy): each retry yields the CPU
/// first, to the mount that raced. A real loop fails every time, for a few
/// more calls.
const LOOP_RETRIES: u32 = 32;

fn openat2(root: &OwnedFd, path: &Path, flags: i32) -> io::Result<OwnedFd> {
    let c = cstring(path)?;
    let (mut races, mut loops) = (0, 0);
    loop {
        match sys::resolve::openat2_in_root(root, &c, flags) {
            // openat2 asks to retry when a rename raced with the lookup.
            Err(e) if e.raw_os_error() == Some(libc::EAGAIN) && races < RACE_RETRIES => races += 1,
            Err(e) if e.raw_os_error() == Some(libc::ELOOP) && loops < LOOP_RETRIES => {
                loops += 1;
                std::thread::yield_now();
            }
            opened => return opened,
        }
    }
}

/// The names in a path, in order; a trailing slash becomes a trailing `.`,
/// so that what precedes it must be a directory, as for the kernel.
fn components(path: &[u8]) -> VecDeque<Vec<u8>> {
    let mut names: VecDeque<Vec<u8>> = path
        .split(|&b| b == b'/')
        .filter(|n| !n.is_empty())
        .map(<[u8]>::to_vec)
        .collect();
    if path.ends_with(b"/") && !names.is_empty() {
        names.push_back(b".".to_vec());
    }
    names
}

/// Resolves `path` from `root` one component at a time, as openat2 with
/// RESOLVE_IN_ROOT would, making missing components when `create` says what
/// the last one is (the others are directories). So a dangling link such as
/// `/dev -> /host/dir` makes `/host/dir` inside the rootfs, never on the host.
fn walk(root: &OwnedFd, path: &Path, flags: i32, create: Option<Leaf>, guard: Option<Guard>) -> io::Result<OwnedFd> {
    let follow_last = flags & libc::O_NOFOLLOW == 0;
    // The directories from the root down to where the walk is; `..` pops one,
    // but never the root.
    let mut dirs = vec![sys::openat(root.as_raw_fd(), c".", O_PATH_DIR, 0)?];
    let mut pending = components(path.as_os_str().as_bytes());
    let (mut links, mut made) = (0, 0);
    while let Some(name) = pending.pop_front() {
        match name.as_slice() {
            b"." => continue,
            b".." => {
                if dirs.len() > 1 {
                    dirs.pop();
                }
                continue;
            }
            _ => {}
        }
        let dir = dirs.last().expect("the root stays");
        let cname = cstring(OsStr::from_bytes(&name))?;
        let last = pending.is_empty();
        let fd = match sys::openat(dir.as_raw_fd(), &cname, libc::O_PATH | libc::O_NOFOLLOW, 0) {
            Ok(fd) => fd,
            Err(e) if is_enoent(&e) && create.is_some() && made < MAX_MADE => {
                // Something that removes what we make would keep us here.
                made += 1;
                let leaf = if last { create.expect("checked") } else { Leaf::Dir };
                if let Some(guard) = guard {
                    guard(dir).map_err(|e| io::Error::other(e.to_string()))?;
                }
                make(dir, &cname, leaf)?;
                pending.push_front(name);
                continue;
            }
            Err(e) => return Err(e),
        };
        let kind = file_type(&fd)?;
        if kind == libc::S_IFLNK && (follow_last || !last) {
            links += 1;
            if links > MAX_SYMLINKS {
                return Err(errno(libc::ELOOP));
            }
            follow(&fd, &mut dirs, &mut pending)?;
            continue;
        }
        if !last {
            if kind != libc::S_IFDIR {
                return Err(errno(libc::ENOTDIR));
            }
            dirs.push(fd);
            continue;
        }
        check_kind(kind, flags, create)?;
        return reopen(fd, dir, &cname, flags);
    }
    // The path ended on a directory of the walk: `/`, `a/..`, `a/`.
    let dir = dirs.pop().expect("the root stays");
    check_kind(libc::S_IFDIR, flags, create)?;
    if flags & libc::O_PATH != 0 {
        return Ok(dir);
    }
    sys::openat(dir.as_raw_fd(), c".", flags | libc::O_NOFOLLOW, 0)
}

/// Puts the target of the symlink `link` in front of what is left to walk;
/// an absolute one takes the walk back to the root. A magic link is refused
/// with ELOOP, as RESOLVE_NO_MAGICLINKS has the kernel do.
fn follow(link: &OwnedFd, dirs: &mut Vec<OwnedFd>, pending: &mut VecDeque<Vec<u8>>) -> io::Result<()> {
    let target = sys::resolve::readlink_fd(link)?;
    let target = target.as_bytes();
    if target.is_empty() {
        return Err(errno(libc::ENOENT));
    }
    if is_magic_link(link, target)? {
        return Err(errno(libc::ELOOP));
    }
    if target.starts_with(b"/") {
        dirs.truncate(1);
    }
    for name in components(target).into_iter().rev() {
        pending.push_front(name);
    }
    Ok(())
}

/// Whether `link`, whose target reads `target`, is one of procfs's magic
/// links (/proc/PID/cwd, root, exe, fd/N, ns/*, map_files/*), which the kernel
/// follows to the object itself whatever their text. Those read as absolute
/// paths or as `type:[inode]`; procfs's ordinary links (`self`, `thread-self`,
/// `mounts`, `net`) are relative names.
fn is_magic_link(link: &OwnedFd, target: &[u8]) -> io::Result<bool> {
    if !target.starts_with(b"/") && !target.contains(&b':') {
        return Ok(false);
    }
    Ok(nix::sys::statfs::fstatfs(link)?.filesystem_type() == nix::sys::statfs::PROC_SUPER_MAGIC)
}

/// Whether what the walk ended on, of type `kind`, is what `flags` and
/// `create` ask for, with the kernel's errors.
fn check_kind(kind: libc::mode_t, flags: i32, create: Option<Leaf>) -> io::Result<()> {
    let is_dir = kind == libc::S_IFDIR;
    if create == Some(Leaf::File) && is_dir {
        return Err(errno(libc::EISDIR));
    }
    if (flags & libc::O_DIRECTORY != 0 || create == Some(Leaf::Dir)) && !is_dir {
        return Err(errno(libc::ENOTDIR));
    }
    Ok(())
}

/// The walk's answer for `fd` (O_PATH), found as `name` in `parent`: itself,
/// or opened again with `flags` unless they are O_PATH ones.
fn reopen(fd: OwnedFd, parent: &OwnedFd, name: &CStr, flags: i32) -> io::Result<OwnedFd> {
    if flags & libc::O_PATH != 0 {
        return Ok(fd);
    }
    // Never following a symlink: one swapped in meanwhile is refused (ELOOP).
    sys::openat(parent.as_raw_fd(), name, flags | libc::O_NOFOLLOW, 0)
}

/// Makes `name` in `dir` (an existing one is fine: someone was faster).
fn make(dir: &OwnedFd, name: &CStr, leaf: Leaf) -> io::Result<()> {
    // Neither call follows a symlink in place of `name`.
    let made = match leaf {
        Leaf::Dir => nix::sys::stat::mkdirat(dir, name, Mode::from_bits_truncate(0o755)),
        Leaf::File => nix::sys::stat::mknodat(dir, name, SFlag::S_IFREG, Mode::from_bits_truncate(0o644), 0),
    };
    match made {
        Err(nix::errno::Errno::EEXIST) | Ok(()) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// The type bits (S_IFMT) of what `fd` is.
fn file_type(fd: &OwnedFd) -> io::Result<libc::mode_t> {
    Ok(nix::sys::stat::fstat(fd)?.st_mode & libc::S_IFMT)
}

/// `path` made clean by its text alone, as Go's filepath.Clean: absolute,
/// `.` dropped, `..` taking off the name before it (never above `/`). So
/// /data/../dev is not in /data, whatever links the tree holds.
pub fn lexically_clean(path: &Path) -> PathBuf {
    use std::path::Component;
    let mut clean = PathBuf::from("/");
    for c in path.components() {
        match c {
            Component::Normal(name) => clean.push(name),
            Component::ParentDir => {
                clean.pop();
            }
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
        }
    }
    clean
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{symlink, MetadataExt};
    use std::path::PathBuf;

    /// A scratch tree: `root/` (the container's rootfs) beside `outside/`
    /// (the host), removed when dropped.
    struct Tree {
        top: PathBuf,
    }

    impl Tree {
        fn new(name: &str) -> Tree {
            let top = std::env::temp_dir().join(format!("husk-resolve-{}-{name}", std::process::id()));
            let _ = std::fs::remove_dir_all(&top);
            let tree = Tree { top };
            for dir in ["root/etc", "root/dir/sub", "outside/dir"] {
                std::fs::create_dir_all(tree.top.join(dir)).unwrap();
            }
            std::fs::write(tree.root().join("etc/passwd"), "inside").unwrap();
            std::fs::write(tree.root().join("dir/file"), "file").unwrap();
            std::fs::write(tree.outside().join("secret"), "host").unwrap();
            tree
        }

        fn root(&self) -> PathBuf {
            self.top.join("root")
        }

        fn outside(&self) -> PathBuf {
            self.top.join("outside")
        }

        /// A symlink at `at` (in the root) pointing to `target`, verbatim.
        fn link(&self, at: &str, target: impl AsRef<Path>) -> &Self {
            symlink(target, self.root().join(at)).unwrap();
            self
        }

        fn open_root(&self) -> OwnedFd {
            std::fs::File::open(self.root()).unwrap().into()
        }
    }

    impl Drop for Tree {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.top);
        }
    }

    /// What a resolution came to: the file (device and inode) or the errno.
    fn outcome(result: io::Result<OwnedFd>) -> std::result::Result<(u64, u64), i32> {
        match result {
            Ok(fd) => {
                let st = nix::sys::stat::fstat(&fd).unwrap();
                Ok((st.st_dev, st.st_ino))
            }
            Err(e) => Err(e.raw_os_error().expect("an errno")),
        }
    }

    fn identity(path: &Path) -> std::result::Result<(u64, u64), i32> {
        let meta = std::fs::symlink_metadata(path).unwrap();
        Ok((meta.dev(), meta.ino()))
    }

    /// Opens `path` both ways and checks that both come to `want`.
    #[track_caller]
    fn both(tree: &Tree, path: &str, flags: i32, want: std::result::Result<(u64, u64), i32>) {
        let root = tree.open_root();
        for method in [Method::Kernel, Method::Walk] {
            let got = outcome(open_by(method, &root, Path::new(path), flags));
            assert_eq!(got, want, "{path} with {method:?}");
        }
    }

    /// Resolves to the file at `inside` (a path in the root) both ways.
    #[track_caller]
    fn lands_on(tree: &Tree, path: &str, inside: &str) {
        both(tree, path, libc::O_PATH, identity(&tree.root().join(inside)));
    }

    #[track_caller]
    fn fails(tree: &Tree, path: &str, flags: i32, code: i32) {
        both(tree, path, flags, Err(code));
    }

    #[test]
    fn plain_paths_and_dot_dot_stay_inside() {
        let t = Tree::new("plain");
        lands_on(&t, "/etc/passwd", "etc/passwd");
        lands_on(&t, "etc/passwd", "etc/passwd");
        lands_on(&t, "/", "");
        lands_on(&t, "dir/sub/../file", "dir/file");
        lands_on(&t, "../../../etc/passwd", "etc/passwd");
        lands_on(&t, "/dir/../../../../dir/./file", "dir/file");
        fails(&t, "outside/secret", libc::O_PATH, libc::ENOENT);
        fails(&t, "../outside/secret", libc::O_PATH, libc::ENOENT);
    }

    #[test]
    fn absolute_symlinks_restart_at_the_root() {
        let t = Tree::new("absolute");
        let host_secret = t.outside().join("secret");
        t.link("abs", "/etc/passwd")
            .link("dirlink", "/dir")
            .link("to_host", &host_secret);
        lands_on(&t, "abs", "etc/passwd");
        lands_on(&t, "dirlink/file", "dir/file");
        lands_on(&t, "dirlink/sub/..", "dir");
        // `..` after a link is taken from where the link led.
        lands_on(&t, "dirlink/../etc/passwd", "etc/passwd");
        // The host's absolute path of a file outside means nothing in the root.
        fails(&t, "to_host", libc::O_PATH, libc::ENOENT);
    }

    #[test]
    fn relative_escapes_are_clamped_at_the_root() {
        let t = Tree::new("relative");
        t.link("up", "../../../../../etc/passwd")
            .link("dir/up", "../../../etc/passwd")
            .link("to_outside", "../outside/secret")
            .link("dir/sub/far", "../../../../../../outside");
        lands_on(&t, "up", "etc/passwd");
        lands_on(&t, "dir/up", "etc/passwd");
        fails(&t, "to_outside", libc::O_PATH, libc::ENOENT);
        fails(&t, "dir/sub/far/secret", libc::O_PATH, libc::ENOENT);
    }

    #[test]
    fn symlink_loops_end_in_eloop() {
        let t = Tree::new("loops");
        t.link("self", "self").link("a", "b").link("b", "/dir/../a");
        fails(&t, "self", libc::O_PATH, libc::ELOOP);
        fails(&t, "a", libc::O_PATH, libc::ELOOP);
        fails(&t, "a/x", libc::O_PATH, libc::ELOOP);
    }

    /// link0 -> link1 -> ... -> link39 -> /etc/passwd: 40 links, the most allowed.
    fn longest_chain(t: &Tree) {
        for i in 0..MAX_SYMLINKS {
            let target = match i + 1 == MAX_SYMLINKS {
                true => "/etc/passwd".to_string(),
                false => format!("link{}", i + 1),
            };
            t.link(&format!("link{i}"), target);
        }
    }

    #[test]
    fn chains_follow_up_to_the_kernel_limit() {
        let t = Tree::new("chains");
        longest_chain(&t);
        lands_on(&t, "link0", "etc/passwd");
        lands_on(&t, "link39", "etc/passwd");
        t.link("one_more", "link0");
        fails(&t, "one_more", libc::O_PATH, libc::ELOOP);
    }

    /// Mounts made and removed in a mount namespace of its own, until dropped.
    struct MountChurn(std::process::Child);

    impl MountChurn {
        fn start(at: &Path) -> MountChurn {
            std::fs::create_dir_all(at).unwrap();
            let churn = "while :; do mount -t tmpfs churn \"$1\" && umount \"$1\"; done";
            let child = std::process::Command::new("unshare")
                .args(["--mount", "--propagation", "private", "sh", "-c", churn, "sh"])
                .arg(at)
                .stderr(std::process::Stdio::null())
                .spawn()
                .expect("unshare");
            MountChurn(child)
        }
    }

    impl Drop for MountChurn {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }

    /// A lookup that the kernel starts lock-free and restarts with locks
    /// (a mount or umount anywhere meanwhile) counts again the links it had
    /// followed: openat2 failed a chain of 21 to 40 links with ELOOP now and
    /// then (see `LOOP_RETRIES`).
    #[test]
    fn chains_hold_while_mounts_come_and_go_elsewhere() {
        let t = Tree::new("chains-churn");
        longest_chain(&t);
        let want = identity(&t.root().join("etc/passwd"));
        let root = t.open_root();
        let mut churn = MountChurn::start(&t.outside().join("mnt"));
        let failed = (0..20_000)
            .map(|_| outcome(open_by(Method::Kernel, &root, Path::new("link0"), libc::O_PATH)))
            .filter(|got| *got != want)
            .count();
        assert!(
            churn.0.try_wait().unwrap().is_none(),
            "unshare ended: nothing mounted meanwhile"
        );
        assert_eq!(failed, 0, "of 20000 resolutions of 40 links");
    }

    #[test]
    fn dangling_links_and_files_in_the_middle() {
        let t = Tree::new("dangling");
        t.link("dangling", "/nowhere/deeper").link("filelink", "/etc/passwd");
        fails(&t, "dangling", libc::O_PATH, libc::ENOENT);
        fails(&t, "dangling/x", libc::O_PATH, libc::ENOENT);
        fails(&t, "etc/passwd/x", libc::O_PATH, libc::ENOTDIR);
        fails(&t, "etc/passwd/", libc::O_PATH, libc::ENOTDIR);
        fails(&t, "filelink/", libc::O_PATH, libc::ENOTDIR);
        fails(&t, "etc/passwd", O_PATH_DIR, libc::ENOTDIR);
        lands_on(&t, "dir/", "dir");
    }

    #[test]
    fn magic_links_are_refused() {
        // The host's own root and procfs: magic links need a procfs, and one
        // can be mounted only with privileges.
        let root: OwnedFd = std::fs::File::open("/").unwrap().into();
        let (pipe, _writer) = nix::unistd::pipe().unwrap();
        let pipe_path = format!("/proc/self/fd/{}", pipe.as_raw_fd());
        for method in [Method::Kernel, Method::Walk] {
            for path in [
                "/proc/self/cwd",
                "/proc/self/root/etc",
                "/proc/self/ns/net",
                pipe_path.as_str(),
            ] {
                let got = outcome(open_by(method, &root, Path::new(path), libc::O_PATH));
                assert_eq!(got, Err(libc::ELOOP), "{path} with {method:?}");
            }
            // /proc/self and /proc/mounts are ordinary links, followed.
            for path in ["/proc/self/status", "/proc/mounts"] {
                let fd = open_by(method, &root, Path::new(path), libc::O_RDONLY).expect(path);
                assert_eq!(file_type(&fd).unwrap(), libc::S_IFREG, "{path} with {method:?}");
            }
        }
    }

    #[test]
    fn nofollow_opens_the_last_link_itself() {
        let t = Tree::new("nofollow");
        t.link("abs", "/etc/passwd").link("dirlink", "/dir");
        let flags = libc::O_PATH | libc::O_NOFOLLOW;
        both(&t, "abs", flags, identity(&t.root().join("abs")));
        // Links before the last one are still followed.
        both(&t, "dirlink/file", flags, identity(&t.root().join("dir/file")));
        fails(&t, "abs", libc::O_RDONLY | libc::O_NOFOLLOW, libc::ELOOP);
    }

    #[test]
    fn reading_through_a_link_reads_the_file_inside() {
        let t = Tree::new("read");
        t.link("abs", "/etc/passwd").link("up", "../../etc/passwd");
        let root = t.open_root();
        for method in [Method::Kernel, Method::Walk] {
            for path in ["abs", "up", "/dir/../etc/passwd"] {
                let fd = open_by(method, &root, Path::new(path), libc::O_RDONLY).unwrap();
                let text = std::io::read_to_string(std::fs::File::from(fd)).unwrap();
                assert_eq!(text, "inside", "{path} with {method:?}");
            }
        }
    }

    #[test]
    fn creating_through_hostile_links_stays_inside() {
        for method in [Method::Kernel, Method::Walk] {
            let t = Tree::new(&format!("create-{method:?}"));
            let host_new = t.outside().join("made");
            t.link("dangling", &host_new)
                .link("escape", "../../outside/file")
                .link("dir/up", "../../../../outside/dir/new");
            let root = t.open_root();
            let dir = resolve_by(
                method,
                &root,
                Path::new("dangling/sub"),
                O_PATH_DIR,
                Some(Leaf::Dir),
                None,
            )
            .unwrap();
            let inside = t.root().join(host_new.strip_prefix("/").unwrap()).join("sub");
            assert_eq!(outcome(Ok(dir)), identity(&inside), "{method:?}");
            let file = resolve_by(method, &root, Path::new("escape"), libc::O_PATH, Some(Leaf::File), None).unwrap();
            assert_eq!(
                outcome(Ok(file)),
                identity(&t.root().join("outside/file")),
                "{method:?}"
            );
            let dir = resolve_by(method, &root, Path::new("dir/up"), O_PATH_DIR, Some(Leaf::Dir), None).unwrap();
            assert_eq!(
                outcome(Ok(dir)),
                identity(&t.root().join("outside/dir/new")),
                "{method:?}"
            );
            assert!(!host_new.exists(), "{method:?} created {}", host_new.display());
            assert!(!t.outside().join("file").exists(), "{method:?} created a host file");
            assert!(!t.outside().join("dir/new").exists(), "{method:?} created a host dir");
        }
    }

    #[test]
    fn creating_refuses_the_wrong_kind() {
        for method in [Method::Kernel, Method::Walk] {
            let t = Tree::new(&format!("kind-{method:?}"));
            let root = t.open_root();
            let as_dir = resolve_by(
                method,
                &root,
                Path::new("etc/passwd/x"),
                O_PATH_DIR,
                Some(Leaf::Dir),
                None,
            );
            let err = as_dir.expect_err("a file is no directory");
            assert!(err.message().starts_with("resolve etc/passwd/x in rootfs: "), "{err}");
            let as_file = resolve_by(
                method,
                &root,
                Path::new("dir/new/"),
                libc::O_PATH,
                Some(Leaf::File),
                None,
            );
            assert!(as_file.is_err(), "{method:?}: a trailing slash names a directory");
        }
    }

    #[test]
    fn a_guard_stops_the_making_where_it_refuses() {
        let t = Tree::new("guard");
        t.link("lnk", "/dir/a");
        let root = t.open_root();
        let refused = identity(&t.root().join("dir"));
        let guard = |d: &OwnedFd| match outcome(d.try_clone()) == refused {
            true => Err(Error::new("not in /dir")),
            false => Ok(()),
        };
        let err = make_guarded(&root, Path::new("/lnk/b"), Leaf::File, &guard).unwrap_err();
        assert_eq!(err.message(), "not in /dir");
        assert!(!t.root().join("dir/a").exists(), "made in the refused directory");
        make_guarded(&root, Path::new("/x/y"), Leaf::Dir, &guard).unwrap();
        assert!(t.root().join("x/y").is_dir());
        // What exists is found whatever the guard says.
        make_guarded(&root, Path::new("/dir/file"), Leaf::File, &guard).unwrap();
    }

    #[test]
    fn the_public_functions_create_what_is_missing() {
        let t = Tree::new("public");
        let root = t.open_root();
        resolve_dir(&root, Path::new("/a/b/c"), true).unwrap();
        assert!(t.root().join("a/b/c").is_dir());
        resolve_file(&root, Path::new("/a/f")).unwrap();
        assert!(t.root().join("a/f").is_file());
        let (_, name) = resolve_parent(&root, Path::new("/x/y/z")).unwrap();
        assert_eq!(name, "z");
        assert!(t.root().join("x/y").is_dir());
        let missing = resolve_dir(&root, Path::new("/nope"), false).unwrap_err();
        assert_eq!(
            missing.message(),
            "resolve /nope in rootfs: No such file or directory (os error 2)"
        );
    }
}
