//! CRIU (checkpoint/restore in userspace), as `checkpoint` and `restore` use
//! it: the flags both share, what the container's config must tell CRIU
//! (bind mounts and masked files are external mounts, joined namespaces are
//! external namespaces), and one bounded run of criu.
//!
//! husk runs criu as runc does, as its RPC service (`criu swrk FD`, one
//! request over a SOCK_SEQPACKET socket pair, see [`rpc`]), not its command
//! line: only RPC restores a terminal container's pty as its session's
//! controlling terminal (`orphan_pts_master`: criu makes a new pty pair and
//! sends the master back in a notification), and with notifications criu
//! waits for husk at each step, so that a husk that dies makes criu fail
//! cleanly (thaw what it froze, kill what it restored) rather than go on
//! alone. Every run goes through RPC, one code path for all containers;
//! `--debug` logs the request's options.

pub mod rpc;

use std::ffi::{CString, OsString};
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use oci_spec::runtime::{LinuxNamespaceType, Spec};

use crate::bail;
use crate::error::{Context, Error, Result};
use crate::log;
use rpc::{CgMode, Opts, ReqType};

/// criu's version (major, minor), from `criu --version` ("Version: 3.17");
/// None when it cannot be told.
pub fn version() -> Option<(u32, u32)> {
    use std::process::Stdio;
    let mut child = std::process::Command::new(program())
        .arg("--version")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while child.try_wait().ok()?.is_none() {
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    let mut out = String::new();
    std::io::Read::read_to_string(&mut child.stdout.take()?, &mut out).ok()?;
    parse_version(&out)
}

fn parse_version(text: &str) -> Option<(u32, u32)> {
    let v = text.lines().find_map(|l| l.trim().strip_prefix("Version:"))?.trim();
    let mut parts = v.split('.').map(|p| p.parse::<u32>().ok());
    Some((parts.next()??, parts.next()??))
}

static PROGRAM: std::sync::OnceLock<OsString> = std::sync::OnceLock::new();

/// Runs `program` as criu from now on (runc's `--criu`); the first call counts.
pub fn use_program(program: OsString) {
    let _ = PROGRAM.set(program);
}

/// The criu program: the one [`use_program`] named, else $HUSK_CRIU (a test
/// can point at a wrapper), else criu in PATH.
fn program() -> OsString {
    if let Some(p) = PROGRAM.get() {
        return p.clone();
    }
    std::env::var_os("HUSK_CRIU")
        .filter(|p| !p.is_empty())
        .unwrap_or_else(|| "criu".into())
}

/// How long one criu run may take before husk kills it (criu can hang on a
/// process it cannot freeze).
pub const TIMEOUT: Duration = Duration::from_secs(600);

/// Where runc keeps the container's stdio at checkpoint, read at restore.
pub const DESCRIPTORS: &str = "descriptors.json";

/// The flags `checkpoint` and `restore` share, as runc names them.
#[derive(Clone, Debug, Default)]
pub struct CriuOptions {
    /// The checkpoint's image directory (default ./checkpoint).
    pub image_path: Option<PathBuf>,
    /// Where criu writes its work files and log (default: the image directory).
    pub work_path: Option<PathBuf>,
    /// Checkpoint established TCP connections (`--tcp-established`).
    pub tcp_established: bool,
    /// Allow unix sockets connected outside the container (`--ext-unix-sk`).
    pub ext_unix_sk: bool,
    /// The container is a shell job: its session and terminal are outside.
    pub shell_job: bool,
    /// Checkpoint and restore file locks.
    pub file_locks: bool,
    /// soft, full, strict or ignore: what criu does with the cgroups.
    pub manage_cgroups_mode: Option<String>,
    /// Namespaces to make empty rather than restore: only `network`.
    pub empty_ns: Vec<String>,
    /// Deduplicate memory pages against the parent images as it goes.
    pub auto_dedup: bool,
    /// Restore memory lazily through userfaultfd: not supported (an error).
    pub lazy_pages: bool,
    /// `ADDR:PORT` of a criu page server the memory pages go to (checkpoint).
    pub page_server: Option<String>,
    /// Skip TCP connections not yet established or closing (checkpoint).
    pub tcp_skip_in_flight: bool,
    /// Dump files unlinked but still open by linking them back (checkpoint).
    pub link_remap: bool,
}

impl CriuOptions {
    /// The image directory as given, or ./checkpoint as runc has it; absolute.
    pub fn image_dir(&self) -> Result<PathBuf> {
        absolute(self.image_path.as_deref().unwrap_or(Path::new("checkpoint")))
    }

    /// The work directory (the image directory unless --work-path).
    pub fn work_dir(&self) -> Result<PathBuf> {
        match &self.work_path {
            Some(w) => absolute(w),
            None => self.image_dir(),
        }
    }

    /// Refuses what husk cannot do before anything happens.
    pub fn check(&self) -> Result<()> {
        if self.lazy_pages {
            bail!(
                "--lazy-pages is not supported: husk runs criu without the lazy-pages daemon and page server it needs"
            );
        }
        if let Some(mode) = &self.manage_cgroups_mode {
            if CgMode::parse(mode).is_none() {
                bail!("--manage-cgroups-mode must be soft, full, strict or ignore, not \"{mode}\"");
            }
        }
        for ns in &self.empty_ns {
            if ns != "network" {
                bail!("--empty-ns {ns}: only the network namespace can be left empty");
            }
        }
        if let Some(ps) = &self.page_server {
            page_server(ps)?;
        }
        Ok(())
    }

    /// The options both actions give criu.
    pub fn common_opts(&self, opts: &mut Opts) {
        let mode = self.manage_cgroups_mode.as_deref().unwrap_or("soft");
        opts.manage_cgroups_mode = Some(CgMode::parse(mode).unwrap_or(CgMode::Soft));
        opts.tcp_established = self.tcp_established;
        opts.ext_unix_sk = self.ext_unix_sk;
        opts.shell_job = self.shell_job;
        opts.file_locks = self.file_locks;
        opts.auto_dedup = self.auto_dedup;
        if !self.empty_ns.is_empty() {
            opts.empty_ns = libc::CLONE_NEWNET as u32;
        }
    }

    /// The options only a checkpoint gives criu.
    pub fn dump_opts(&self, opts: &mut Opts) -> Result<()> {
        opts.tcp_skip_in_flight = self.tcp_skip_in_flight;
        opts.link_remap = self.link_remap;
        if let Some(ps) = &self.page_server {
            opts.page_server = Some(page_server(ps)?);
        }
        Ok(())
    }

    /// Refuses the checkpoint-only flags at restore, as criu would ignore them.
    pub fn check_restore(&self) -> Result<()> {
        for (on, flag) in [
            (self.page_server.is_some(), "--page-server"),
            (self.tcp_skip_in_flight, "--tcp-skip-in-flight"),
            (self.link_remap, "--link-remap"),
        ] {
            if on {
                bail!("{flag} is a checkpoint flag: restore does not take it");
            }
        }
        Ok(())
    }
}

/// `ADDR:PORT` (runc's --page-server; an IPv6 address in brackets) as
/// criu's page server address and port.
fn page_server(value: &str) -> Result<(String, i32)> {
    let bad = || {
        Error::new(format!(
            "--page-server {value}: give ADDRESS:PORT, a port from 1 to 65535"
        ))
    };
    let (addr, port) = value.rsplit_once(':').ok_or_else(bad)?;
    let addr = addr.trim_start_matches('[').trim_end_matches(']');
    let port: u16 = port.parse().map_err(|_| bad())?;
    if addr.is_empty() || port == 0 || addr.contains(|c: char| c.is_whitespace() || c.is_control()) {
        return Err(bad());
    }
    Ok((addr.to_string(), port.into()))
}

fn absolute(p: &Path) -> Result<PathBuf> {
    if p.is_absolute() {
        Ok(p.to_path_buf())
    } else {
        Ok(std::env::current_dir().context(|| "current directory".into())?.join(p))
    }
}

/// A directory husk made for criu: how many levels above the pinned
/// directory it is (0: that one), its name in its parent and what it is
/// (device, inode), so that undoing removes it and nothing put in its place.
#[derive(Debug)]
struct Made {
    level: usize,
    name: CString,
    id: (u64, u64),
}

fn id_of(fd: &OwnedFd) -> std::io::Result<(u64, u64)> {
    let m = std::fs::metadata(format!("/proc/self/fd/{}", fd.as_raw_fd()))?;
    Ok((m.dev(), m.ino()))
}

/// Makes the directories of `dir` that are missing (mode 0700; one that
/// exists is fine, as runc has it: a container may be checkpointed into the
/// same directory more than once), each in its parent's fd from the deepest
/// one that exists, so that none is made or entered through a symlink
/// planted among them meanwhile; returns `dir` open and what was made.
fn make_dirs(dir: &Path) -> std::io::Result<(OwnedFd, Vec<Made>)> {
    let existing = dir.ancestors().find(|a| a.is_dir()).unwrap_or(Path::new("/"));
    let missing: Vec<_> = dir
        .strip_prefix(existing)
        .unwrap_or(Path::new(""))
        .components()
        .collect();
    let flags = libc::O_RDONLY | libc::O_DIRECTORY;
    let mut at = crate::sys::openat(libc::AT_FDCWD, &crate::sys::cstring(existing)?, flags, 0)?;
    let mut made = Vec::new();
    for (i, component) in missing.iter().enumerate() {
        let name = crate::sys::cstring(component)?;
        let new = match crate::sys::mkdir_at(at.as_fd(), &name, 0o700) {
            Ok(()) => true,
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => false,
            Err(e) => return Err(e),
        };
        at = crate::sys::openat(at.as_raw_fd(), &name, flags | libc::O_NOFOLLOW, 0)?;
        if new {
            let level = missing.len() - 1 - i;
            made.push(Made {
                level,
                name,
                id: id_of(&at)?,
            });
        }
    }
    Ok((at, made))
}

/// A directory criu reads or writes (`--image-path`, `--work-path`), opened
/// once: husk checks what it opened and hands criu that very directory as
/// husk's fd N (criu opens `/proc/HUSK/fd/N`, husk being its RPC peer), so
/// a path swapped (a component replaced by a symlink) after the checks
/// changes nothing.
#[derive(Debug)]
pub struct PinnedDir {
    /// The flag that named it, for errors.
    pub flag: &'static str,
    /// Where it is (resolved), for messages.
    pub path: PathBuf,
    fd: OwnedFd,
    made: Vec<Made>,
}

impl PinnedDir {
    /// Opens directory `path` (made first, mode 0700, with `create`);
    /// refuses it inside one of `writable`, directories the container's
    /// processes can write (its rootfs, the sources of its bind mounts):
    /// they could read the images (its memory, its secrets), swap them for
    /// images that restore as root what they like, or turn the path or
    /// criu's files into symlinks to the host's. Checked as given and as
    /// resolved, before anything is made and after.
    pub fn open(flag: &'static str, path: &Path, create: bool, writable: &[(String, PathBuf)]) -> Result<PinnedDir> {
        refuse_inside(flag, path, writable)?;
        let (fd, made) = if create {
            // What exists already is checked by its fd's ancestors before
            // anything is made: a path through /proc/PID/root would
            // otherwise make directories in the container, or through its
            // symlinks on the host.
            if let Some(existing) = path.ancestors().find_map(|a| std::fs::File::open(a).ok()) {
                refuse_below(flag, &OwnedFd::from(existing), path, writable)?;
            }
            make_dirs(path).context(|| format!("{flag} {}: create", path.display()))?
        } else {
            let file = std::fs::OpenOptions::new()
                .read(true)
                .custom_flags(libc::O_DIRECTORY | libc::O_CLOEXEC)
                .open(path)
                .context(|| format!("{flag} {}", path.display()))?;
            (OwnedFd::from(file), Vec::new())
        };
        let real =
            std::fs::read_link(format!("/proc/self/fd/{}", fd.as_raw_fd())).unwrap_or_else(|_| path.to_path_buf());
        let pinned = PinnedDir {
            flag,
            path: real,
            fd,
            made,
        };
        let checked =
            refuse_inside(flag, &pinned.path, writable).and_then(|()| refuse_below(flag, &pinned.fd, path, writable));
        checked.inspect_err(|_| pinned.remove_made())?;
        Ok(pinned)
    }

    /// Removes the directories [`open`](PinnedDir::open) made, the deepest
    /// first, climbing from the pinned one through `..` (never by a path,
    /// whose components could have been swapped for symlinks), each only if
    /// it is still the one made and empty.
    pub fn remove_made(&self) {
        let flags = libc::O_RDONLY | libc::O_DIRECTORY;
        let Ok(mut at) = crate::sys::openat(self.fd.as_raw_fd(), c".", flags, 0) else {
            return;
        };
        for (level, made) in self.made.iter().rev().enumerate() {
            let Ok(parent) = crate::sys::openat(at.as_raw_fd(), c"..", flags, 0) else {
                return;
            };
            let Ok(child) = crate::sys::openat(parent.as_raw_fd(), &made.name, flags | libc::O_NOFOLLOW, 0) else {
                return;
            };
            let same = id_of(&child).is_ok_and(|id| id == made.id);
            if made.level != level || !same || crate::sys::rmdir_at(parent.as_fd(), &made.name).is_err() {
                return;
            }
            at = parent;
        }
    }

    /// The directory as husk reaches it through the fd.
    pub fn arg(&self) -> String {
        format!("/proc/self/fd/{}", self.fd.as_raw_fd())
    }

    /// A file in the directory, reached through the fd.
    pub fn file(&self, name: &str) -> PathBuf {
        Path::new(&self.arg()).join(name)
    }

    /// Refuses a directory another user could write: it must be husk's
    /// user's (root) and not writable by group or others, as must, with
    /// `contents`, every file and directory in it (and in the `parent`
    /// images a pre-dump chain links). The images decide what criu restores
    /// as root; the logs and images criu writes follow symlinks.
    pub fn check_owner(&self, contents: bool) -> Result<()> {
        let me = nix::unistd::geteuid().as_raw();
        let unsafe_meta = |m: &std::fs::Metadata| m.uid() != me || m.mode() & 0o022 != 0;
        let meta = std::fs::metadata(self.arg()).context(|| format!("{} {}", self.flag, self.path.display()))?;
        if unsafe_meta(&meta) {
            bail!(
                "{} {}: owned by uid {} with mode {:o}: it must be owned by uid {me} and not writable by group or others",
                self.flag,
                self.path.display(),
                meta.uid(),
                meta.mode() & 0o7777
            );
        }
        if !contents {
            return Ok(());
        }
        let mut dir = PathBuf::from(self.arg());
        // A pre-dump chain is short; the bound stops a loop of `parent` links.
        for _ in 0..16 {
            for entry in std::fs::read_dir(&dir).context(|| format!("{} {}", self.flag, self.path.display()))? {
                let entry = entry.context(|| format!("{} {}", self.flag, self.path.display()))?;
                let Ok(m) = entry.metadata() else { continue };
                if !m.file_type().is_symlink() && unsafe_meta(&m) {
                    bail!(
                        "{} {}: {} is owned by uid {} with mode {:o}: the images must be owned by uid {me} and not writable by group or others",
                        self.flag,
                        self.path.display(),
                        entry.file_name().to_string_lossy(),
                        m.uid(),
                        m.mode() & 0o7777
                    );
                }
            }
            let parent = dir.join("parent");
            if !parent.is_dir() {
                break;
            }
            // The pre-dump `parent` links to (--parent-path, relative, may
            // lead anywhere): its entries are checked next, and a
            // directory another user can write could have them swapped after.
            let meta = std::fs::metadata(&parent).context(|| format!("{} {}", self.flag, self.path.display()))?;
            if unsafe_meta(&meta) {
                bail!(
                    "{} {}: its parent images {} are owned by uid {} with mode {:o}: they must be owned by uid {me} and not writable by group or others",
                    self.flag,
                    self.path.display(),
                    std::fs::canonicalize(&parent).unwrap_or_else(|_| parent.clone()).display(),
                    meta.uid(),
                    meta.mode() & 0o7777
                );
            }
            dir = parent;
        }
        Ok(())
    }
}

/// Refuses `path` (absolute) when it, or the deepest part of it that
/// exists, resolved, is inside one of `writable` (itself as given or resolved).
fn refuse_inside(flag: &str, path: &Path, writable: &[(String, PathBuf)]) -> Result<()> {
    let lexical = PathBuf::from(clean(path));
    let existing = path.ancestors().find_map(|a| std::fs::canonicalize(a).ok());
    for (what, dir) in writable {
        let dirs = [Some(PathBuf::from(clean(dir))), std::fs::canonicalize(dir).ok()];
        for dir in dirs.iter().flatten() {
            if lexical.starts_with(dir) || existing.as_ref().is_some_and(|e| e.starts_with(dir)) {
                bail!(
                    "{flag} {}: inside {what} {}, which the container's processes can write: choose a directory outside the container",
                    path.display(),
                    dir.display()
                );
            }
        }
    }
    Ok(())
}

/// Refuses the directory open at `fd` when it or one of its ancestors, by
/// device and inode, is one of `writable`: paths and their resolution can
/// lie (`/proc/PID/root/...` of a container's process resolves, as text, to
/// a path in the container, not on the host, and /proc/self/fd then names
/// it as the container sees it), but `..` from the fd climbs to the
/// container's rootfs, whichever way the path went.
fn refuse_below(flag: &str, fd: &OwnedFd, path: &Path, writable: &[(String, PathBuf)]) -> Result<()> {
    let flags = libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC;
    let id = |fd: &OwnedFd| -> Result<(u64, u64)> {
        let m = std::fs::metadata(format!("/proc/self/fd/{}", fd.as_raw_fd()))
            .context(|| format!("{flag} {}", path.display()))?;
        Ok((m.dev(), m.ino()))
    };
    let dirs: Vec<(&str, &Path, (u64, u64))> = writable
        .iter()
        .filter_map(|(what, dir)| {
            // A bind source on a FUSE or NFS mount that stopped answering
            // must not hold the checkpoint (and the container's lock).
            let id = crate::sys::fs::dir_id(dir).ok().flatten()?;
            Some((what.as_str(), dir.as_path(), id))
        })
        .collect();
    let mut at = crate::sys::openat(fd.as_raw_fd(), c".", flags, 0).context(|| format!("{flag} {}", path.display()))?;
    let mut here = id(&at)?;
    // The bound stops a walk that never reaches a root.
    for _ in 0..4096 {
        if let Some((what, dir, _)) = dirs.iter().find(|(_, _, d)| *d == here) {
            bail!(
                "{flag} {}: inside {what} {}, which the container's processes can write: choose a directory outside the container",
                path.display(),
                dir.display()
            );
        }
        let up =
            crate::sys::openat(at.as_raw_fd(), c"..", flags, 0).context(|| format!("{flag} {}", path.display()))?;
        let above = id(&up)?;
        if above == here {
            return Ok(());
        }
        (at, here) = (up, above);
    }
    bail!("{flag} {}: too deep", path.display())
}

/// The image and the work directory of one criu run, and the container's
/// criu configuration file.
#[derive(Debug)]
pub struct Dirs {
    /// `--image-path`.
    pub image: PinnedDir,
    /// `--work-path` (the image directory again without it).
    pub work: PinnedDir,
    /// The file the `org.criu.config` annotation names ([`config_file`]).
    pub config: Option<PinnedFile>,
}

/// The annotation that names a criu configuration file for the container,
/// as runc reads it (criu 3.11 and later; its settings override the RPC's).
pub const CONFIG_ANNOTATION: &str = "org.criu.config";

/// The only directory husk takes criu configuration files from.
pub const CONFIG_DIR: &str = "/etc/criu";

/// criu skips a configuration file that is not there (runc relies on it).
fn not_found(flag: &str, name: &str) -> Option<PinnedFile> {
    log::warn(&format!("{flag} {name}: not found; criu runs without it"));
    None
}

/// A criu configuration file, opened once and handed to criu as husk's fd,
/// as [`PinnedDir`]s are.
#[derive(Debug)]
pub struct PinnedFile {
    fd: OwnedFd,
}

impl PinnedFile {
    /// The path criu opens: husk's fd, through /proc.
    fn for_criu(&self) -> String {
        format!("/proc/{}/fd/{}", std::process::id(), self.fd.as_raw_fd())
    }
}

/// The file the config's `org.criu.config` annotation names (none when it
/// is absent or empty: runc then reads /etc/criu/runc.conf, which is
/// runc's, and husk reads none; none, with a warning, when it is not
/// there). criu runs as root and an `action-script` in the file runs as
/// root on the host, so the file must be in [`CONFIG_DIR`] (which paths
/// and mountinfo cannot tell from a container's storage in every layout: an
/// overlay's relative upperdir, fuse-overlayfs, a bind of an overlay), not
/// through a symlink, root's (husk's user's), a regular file with one link,
/// not writable by group or others, and outside what the container writes.
pub fn config_file(spec: &Spec, writable: &[(String, PathBuf)]) -> Result<Option<PinnedFile>> {
    let named = spec.annotations().as_ref().and_then(|a| a.get(CONFIG_ANNOTATION));
    let Some(name) = named.filter(|n| !n.is_empty()) else {
        return Ok(None);
    };
    let flag = format!("annotations[\"{CONFIG_ANNOTATION}\"]");
    let path = PathBuf::from(clean(&absolute(Path::new(name))?));
    let (Some(dir), Some(file)) = (path.parent(), path.file_name()) else {
        bail!("{flag} {name}: not a file");
    };
    let outside = || {
        format!("{flag} {name}: criu reads it as root and runs the commands it names, so husk takes configuration files only from {CONFIG_DIR}, which the container's storage never is (an overlay's upper layer, say)")
    };
    if !path.starts_with(CONFIG_DIR) {
        bail!("{}", outside());
    }
    refuse_inside(&flag, &path, writable)?;
    let dir = match std::fs::File::open(dir) {
        Ok(dir) => OwnedFd::from(dir),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(not_found(&flag, name)),
        Err(e) => return Err(e).context(|| format!("{flag} {name}")),
    };
    // Through a symlink among its directories the file could be anywhere.
    let real = std::fs::read_link(format!("/proc/self/fd/{}", dir.as_raw_fd())).unwrap_or_default();
    let trusted = std::fs::canonicalize(CONFIG_DIR).unwrap_or_default();
    if trusted.as_os_str().is_empty() || !real.starts_with(&trusted) {
        bail!("{} (it is in {})", outside(), real.display());
    }
    refuse_below(&flag, &dir, &path, writable)?;
    let flags = libc::O_RDONLY | libc::O_NOFOLLOW | libc::O_NONBLOCK;
    let fd = match crate::sys::cstring(file).and_then(|file| crate::sys::openat(dir.as_raw_fd(), &file, flags, 0)) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(not_found(&flag, name)),
        Err(e) if e.raw_os_error() == Some(libc::ELOOP) => {
            bail!("{flag} {name}: a symlink; name the file itself")
        }
        other => other.context(|| format!("{flag} {name}"))?,
    };
    let meta = std::fs::metadata(format!("/proc/self/fd/{}", fd.as_raw_fd())).context(|| format!("{flag} {name}"))?;
    let me = nix::unistd::geteuid().as_raw();
    if !meta.is_file() || meta.nlink() != 1 || meta.uid() != me || meta.mode() & 0o022 != 0 {
        bail!(
            "{flag} {name}: criu reads it as root and runs the commands it names, so it must be a regular file with one link, owned by uid {me} and not writable by group or others (it is uid {} mode {:o} with {} links)",
            meta.uid(),
            meta.mode() & 0o7777,
            meta.nlink()
        );
    }
    Ok(Some(PinnedFile { fd }))
}

impl Dirs {
    /// Removes the directories opening them made (a checkpoint refused
    /// after that).
    pub fn remove_made(&self) {
        self.work.remove_made();
        self.image.remove_made();
    }
}

impl CriuOptions {
    /// Opens both directories (made, at checkpoint); refuses them inside
    /// `writable` or writable by another user, and at restore images
    /// another user could have written.
    pub fn open_dirs(&self, create_image: bool, writable: &[(String, PathBuf)]) -> Result<Dirs> {
        let image_path = self.image_dir()?;
        if !create_image && !image_path.join("inventory.img").is_file() {
            bail!(
                "{}: no checkpoint there (no inventory.img): give --image-path",
                image_path.display()
            );
        }
        let image = PinnedDir::open("--image-path", &image_path, create_image, writable)?;
        image.check_owner(!create_image)?;
        let work = match &self.work_path {
            Some(w) => absolute(w).and_then(|w| PinnedDir::open("--work-path", &w, true, writable)),
            None => PinnedDir::open("--image-path", &image_path, false, writable),
        };
        let work = work.inspect_err(|_| image.remove_made())?;
        work.check_owner(false).inspect_err(|_| {
            work.remove_made();
            image.remove_made();
        })?;
        Ok(Dirs {
            image,
            work,
            config: None,
        })
    }
}

/// What the container's processes can write on the host: its rootfs and
/// the sources of its bind mounts.
pub fn writable_by_container(spec: &Spec, rootfs: &Path, bundle: &Path) -> Vec<(String, PathBuf)> {
    let mut out = vec![("the container's rootfs".to_string(), rootfs.to_path_buf())];
    for m in external_mounts(spec, bundle) {
        out.push((format!("the source of its bind mount {}", m.destination), m.source));
    }
    let info = crate::sys::fs::read_proc("/proc/self/mountinfo").unwrap_or_default();
    let real = std::fs::canonicalize(rootfs).unwrap_or_else(|_| rootfs.to_path_buf());
    for options in overlays_at(&info, &real) {
        out.extend(overlay_dirs(&options, "its rootfs overlay"));
    }
    for m in spec
        .mounts()
        .iter()
        .flatten()
        .filter(|m| m.typ().as_deref() == Some("overlay"))
    {
        let options = m.options().clone().unwrap_or_default().join(",");
        let what = format!("its overlay mount {}", m.destination().display());
        out.extend(overlay_dirs(&options, &what));
    }
    out
}

/// The options of each overlay mounted at `point` in `mountinfo` (as
/// containerd, podman and docker mount a container's rootfs).
fn overlays_at(mountinfo: &str, point: &Path) -> Vec<String> {
    let mut out = Vec::new();
    for line in mountinfo.lines() {
        let Some((mount, fs)) = line.split_once(" - ") else {
            continue;
        };
        let at = mount.split(' ').nth(4).map(unescape);
        let mut fs = fs.split(' ');
        if fs.next() == Some("overlay") && at.as_deref() == Some(point.as_os_str()) {
            out.push(fs.nth(1).unwrap_or_default().to_string());
        }
    }
    out
}

/// The upper and work directories an overlay's `options` name: the host
/// directories the container writes through it.
fn overlay_dirs(options: &str, what: &str) -> Vec<(String, PathBuf)> {
    let mut out = Vec::new();
    for option in options.split(',') {
        for key in ["upperdir", "workdir"] {
            if let Some(dir) = option.strip_prefix(key).and_then(|o| o.strip_prefix('=')) {
                out.push((format!("the {key} of {what}"), PathBuf::from(unescape(dir))));
            }
        }
    }
    out
}

/// A mountinfo field with its octal escapes (`\040` for a space) undone.
fn unescape(field: &str) -> OsString {
    use std::os::unix::ffi::OsStringExt;
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes
            .get(i + 1..i + 4)
            .filter(|d| bytes[i] == b'\\' && d.iter().all(|b| (b'0'..=b'7').contains(b)));
        match octal.and_then(|d| u8::from_str_radix(std::str::from_utf8(d).ok()?, 8).ok()) {
            Some(b) => {
                out.push(b);
                i += 4;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    OsString::from_vec(out)
}

/// A mount the container has from outside its mount namespace, which criu
/// can neither dump nor make: where it is in the container, and what it is
/// on the host at restore.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct External {
    /// The mount point in the container.
    pub destination: String,
    /// The key in the images: the destination, or /dev/null for masked files.
    pub key: String,
    /// At restore, the host path bound there.
    pub source: PathBuf,
}

fn is_bind(m: &oci_spec::runtime::Mount) -> bool {
    m.typ().as_deref() == Some("bind")
        || m.options()
            .as_ref()
            .is_some_and(|o| o.iter().any(|o| o == "bind" || o == "rbind"))
}

/// A container path as criu's mount table has it: absolute, no `.`, `..`
/// or repeated or trailing slashes (`..` stops at the root, as in the rootfs).
fn clean(dest: &Path) -> String {
    crate::rootfs::lexically_clean(dest).to_string_lossy().into_owned()
}

/// The bind mounts of the config (and /dev/null, bound over masked files),
/// which criu must be told are external.
pub fn external_mounts(spec: &Spec, bundle: &Path) -> Vec<External> {
    let mut out = Vec::new();
    for m in spec.mounts().iter().flatten().filter(|m| is_bind(m)) {
        let destination = clean(m.destination());
        let source = m.source().clone().unwrap_or_default();
        let source = if source.is_absolute() {
            source
        } else {
            bundle.join(source)
        };
        out.push(External {
            key: destination.clone(),
            destination,
            source,
        });
    }
    out
}

/// The masked paths that are files (bound over with /dev/null) in the
/// running container whose `mountinfo` is given; a masked directory is an
/// empty tmpfs that criu dumps itself. Read from the mount table, not looked
/// up: a lookup in the container's root followed the container's links
/// (to the host's files through /proc/PID/root, review 54 F5; into its own
/// FUSE mount that never answers, which held `checkpoint` unkillably with
/// the lock, review 54b F3). A bind of a file has the file's path for its
/// root; a filesystem's own root ("/") is a directory. A wrong answer makes
/// criu fail, it gives nothing away.
pub fn masked_files(spec: &Spec, mountinfo: &str) -> Vec<String> {
    let masked = spec.linux().as_ref().and_then(|l| l.masked_paths().clone());
    masked
        .unwrap_or_default()
        .iter()
        .map(|p| clean(Path::new(p)))
        .filter(|p| topmost_mount_root(mountinfo, p).is_some_and(|root| root != "/"))
        .collect()
}

/// The root (the path in its filesystem) of the last mount at `point` in
/// `mountinfo`: the one the path shows.
fn topmost_mount_root(mountinfo: &str, point: &str) -> Option<OsString> {
    mountinfo.lines().rev().find_map(|line| {
        let mut fields = line.split(' ');
        let root = fields.nth(3)?;
        (unescape(fields.next()?) == point).then(|| unescape(root))
    })
}

/// The key in the images of an external namespace of type `t` (runc's names).
fn namespace_key(t: LinuxNamespaceType) -> &'static str {
    match t {
        LinuxNamespaceType::Network => "extRootNetNS",
        _ => "extRootPidNS",
    }
}

fn criu_ns_name(t: LinuxNamespaceType) -> &'static str {
    match t {
        LinuxNamespaceType::Network => "net",
        _ => "pid",
    }
}

/// The network and pid namespaces the config joins by path: criu dumps
/// neither, and restore puts the processes back into the ones the config names.
fn joined_namespaces(spec: &Spec) -> Vec<(LinuxNamespaceType, PathBuf)> {
    let nss = spec.linux().as_ref().and_then(|l| l.namespaces().clone());
    nss.unwrap_or_default()
        .into_iter()
        .filter(|n| matches!(n.typ(), LinuxNamespaceType::Network | LinuxNamespaceType::Pid))
        .filter_map(|n| n.path().clone().map(|p| (n.typ(), p)))
        .collect()
}

/// `net[INODE]:extRootNetNS` (criu's `--external`) for each joined namespace.
pub fn dump_external_namespaces(spec: &Spec, opts: &mut Opts) -> Result<()> {
    for (t, path) in joined_namespaces(spec) {
        let ino = std::fs::metadata(&path)
            .context(|| format!("linux.namespaces: {}", path.display()))?
            .ino();
        opts.external
            .push(format!("{}[{ino}]:{}", criu_ns_name(t), namespace_key(t)));
    }
    Ok(())
}

/// Opens each joined namespace for criu to inherit (`inherit_fd`
/// extRootNetNS, criu's `--inherit-fd fd[N]:extRootNetNS`); the fds must
/// stay open until criu has run.
pub fn restore_external_namespaces(spec: &Spec, opts: &mut Opts) -> Result<Vec<OwnedFd>> {
    let mut fds = Vec::new();
    for (t, path) in joined_namespaces(spec) {
        let f = std::fs::File::open(&path).context(|| format!("linux.namespaces: {}", path.display()))?;
        let fd = OwnedFd::from(f);
        opts.inherit_fd.push((namespace_key(t).to_string(), fd.as_raw_fd()));
        fds.push(fd);
    }
    Ok(fds)
}

/// What the container's stdio (fds 0-2 of its init) were at checkpoint, in
/// runc's `descriptors.json` (a list of three strings), and how restore
/// reconnects each to the restoring husk's own fd of the same number: a pipe
/// (`pipe:[INODE]`) as runc does, and a file outside the container's mounts
/// (its caller's /dev/null, a log file) as an external file
/// (`file[MNT:INODE]`, which `external` tells criu to leave out of the images).
/// `recorded` is what [`own_stdio`] took when the container was made (a
/// container recorded by an older husk has none), merged with what the
/// init's fds 0-2 are now by `merge_stdio`. `mounts`: the [`mount_ids`] of
/// the init.
pub fn dump_stdio(
    image_dir: &PinnedDir,
    pid: libc::pid_t,
    mounts: &[u64],
    recorded: Option<&[String]>,
    opts: &mut Opts,
) -> Result<()> {
    let live = live_stdio(pid, mounts);
    let entries = match recorded {
        Some(recorded) => merge_stdio(&live, recorded),
        None => live,
    };
    let keys = entries.iter().chain(recorded.into_iter().flatten());
    for key in keys.filter(|e| is_external(e)) {
        if !opts.external.contains(key) {
            opts.external.push(key.clone());
        }
    }
    let json = serde_json::to_vec(&entries).expect("strings serialise");
    crate::state::write_atomic(&image_dir.file(DESCRIPTORS), &json, 0o600)
        .context(|| format!("write {}", image_dir.path.join(DESCRIPTORS).display()))
}

/// Fd N's entry: what it is now when that is a file outside the container
/// (which it could only have been handed: a host file passed with
/// --preserve-fds and moved onto fd 1, review 44 F1), else the record (a
/// file inside the container now may be a shell's redirection of an
/// instant). Every recorded file is left out of the images as well, for
/// the fd the container moved it to.
fn merge_stdio(live: &[String], recorded: &[String]) -> Vec<String> {
    live.iter()
        .zip(recorded)
        .map(|(now, then)| if is_external(now) { now } else { then }.clone())
        .collect()
}

fn is_external(entry: &str) -> bool {
    entry.starts_with("file[")
}

/// The three entries of `descriptors.json` (see [`dump_stdio`]) for the
/// stdio this process hands a container's init: its own fds 0-2, every one
/// opened outside the container's mounts. Taken when the container is made,
/// as runc does, not at checkpoint: by then the container's program may have
/// moved its stdio about (a shell running `echo 1 > /data/n` has that file
/// on fd 1 and its stdout on fd 10 for an instant), and criu would find the
/// real stdout on some fd, not left out of the images, and fail.
pub fn own_stdio() -> Vec<String> {
    use std::os::fd::AsFd;
    let (stdin, stdout, stderr) = (std::io::stdin(), std::io::stdout(), std::io::stderr());
    let fds = [stdin.as_fd(), stdout.as_fd(), stderr.as_fd()];
    (0..3)
        .zip(fds)
        .map(|(n, fd)| {
            let id = match crate::sys::fs::file_id(fd) {
                Ok(id) if id.mount.is_some() => Some(id),
                _ => proc_file_id("self", n),
            };
            stdio_entry(fd_link("self", n), id)
        })
        .collect()
}

/// The entries of `descriptors.json` for the stdio the init `pid` has now:
/// an external file is one on a mount the container does not have.
fn live_stdio(pid: libc::pid_t, ids: &[u64]) -> Vec<String> {
    let proc = pid.to_string();
    (0..3)
        .map(|n| {
            let id = proc_file_id(&proc, n).filter(|id| !id.mount.is_some_and(|m| ids.contains(&m)));
            stdio_entry(fd_link(&proc, n), id)
        })
        .collect()
}

/// The mount table of `pid`, as it sees it. Read once a checkpoint: the
/// kernel walks every mount's path to print it, which a container that
/// stacked 30,000 mounts made take 6 s a read (review 54 F2).
pub fn mountinfo(pid: libc::pid_t) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/mountinfo")).unwrap_or_default()
}

/// The mount ids in a [`mountinfo`].
pub fn mount_ids(mountinfo: &str) -> Vec<u64> {
    mountinfo
        .lines()
        .filter_map(|l| l.split(' ').next()?.parse().ok())
        .collect()
}

/// Fds 0-2 of the init `pid` that are terminals outside the container (a
/// caller's terminal handed as its stdio, without `process.terminal`): criu
/// dumps them, but restores them only as a shell job (`--shell-job`).
/// `ids`: the [`mount_ids`] of the init.
pub fn host_terminals(pid: libc::pid_t, ids: &[u64]) -> Vec<(i32, String)> {
    let proc = pid.to_string();
    (0..3)
        .filter(|&n| {
            proc_file_id(&proc, n).is_some_and(|id| id.terminal && !id.mount.is_some_and(|m| ids.contains(&m)))
        })
        .map(|n| (n, fd_link(&proc, n)))
        .collect()
}

/// A file outside the container (`link` a path, `outside` its identity) is
/// named by its key; anything else (a pipe, a socket) by its link, and so
/// is a terminal, as runc writes it: a `--shell-job` restore takes the
/// terminal from criu's stdin, and criu needs its path to open it (a key
/// for a path makes criu 3.17 fail: "tty: BUG").
fn stdio_entry(link: String, outside: Option<crate::sys::fs::FileId>) -> String {
    match outside {
        Some(id) if link.starts_with('/') && !id.terminal => {
            format!("file[{:x}:{:x}]", id.mount.unwrap_or_default(), id.inode)
        }
        _ => link,
    }
}

/// What fd `n` of the process `proc` (a pid, or `self`) links to.
fn fd_link(proc: &str, n: i32) -> String {
    std::fs::read_link(format!("/proc/{proc}/fd/{n}"))
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// The identity of fd `n` of the process `proc` (a pid, or `self`), its
/// mount read from fdinfo. Asks nothing of the file's filesystem: a
/// container's init with its stdout on a FUSE file whose daemon stopped
/// held `checkpoint` in a wait no signal ends (review 55 F1).
fn proc_file_id(proc: &str, n: i32) -> Option<crate::sys::fs::FileId> {
    let info = std::fs::read_to_string(format!("/proc/{proc}/fdinfo/{n}")).ok()?;
    let mount = info
        .lines()
        .find_map(|l| l.strip_prefix("mnt_id:"))
        .and_then(|v| v.trim().parse().ok())?;
    let id = crate::sys::fs::path_file_id(Path::new(&format!("/proc/{proc}/fd/{n}"))).ok()?;
    Some(crate::sys::fs::FileId {
        mount: Some(mount),
        ..id
    })
}

/// `inherit_fd` (criu's `--inherit-fd fd[N]:KEY`) for the checkpointed
/// stdio that restore reconnects (see [`dump_stdio`]): copies of this
/// process's fds 0-2, for criu to inherit, but a /dev/null of its own for
/// one that is a /dev/null. Not fds 0-2 themselves: criu
/// moves what it inherits to its fd store and closes it, and a `--shell-job`
/// restore then finds its stdin, the terminal it restores, closed.
pub fn inherit_stdio(image_dir: &PinnedDir, opts: &mut Opts) -> Result<Vec<OwnedFd>> {
    let path = image_dir.path.join(DESCRIPTORS);
    let text = match std::fs::read(image_dir.file(DESCRIPTORS)) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e).context(|| format!("read {}", path.display())),
    };
    let fds: Vec<String> = serde_json::from_slice(&text).context(|| format!("corrupt {}", path.display()))?;
    use std::os::fd::AsFd;
    let (stdin, stdout, stderr) = (std::io::stdin(), std::io::stdout(), std::io::stderr());
    let own = [stdin.as_fd(), stdout.as_fd(), stderr.as_fd()];
    let mut copies = Vec::new();
    for ((n, what), fd) in fds.iter().enumerate().zip(own) {
        let reconnect = what.starts_with("pipe:[") || what.starts_with("file[");
        if reconnect && what.ends_with(']') && !what.contains([',', '\n', ' ']) {
            let copy = match nix::sys::stat::fstat(fd).is_ok_and(|st| crate::sys::fs::is_dev_null(&st)) {
                // The host's, a root container could chmod through its fd
                // (review 50b N1): one of its own instead.
                true => crate::sys::private_null(),
                false => fd.try_clone_to_owned(),
            }
            .context(|| format!("restore: a copy of fd {n} for criu"))?;
            opts.inherit_fd.push((what.clone(), copy.as_raw_fd()));
            copies.push(copy);
        }
    }
    Ok(copies)
}

/// Extra setup of the criu process: cgroups it joins before exec (restore
/// puts criu in the new container's cgroup, so that what it forks is
/// there from birth), fds it inherits, the rootfs it binds for itself.
#[derive(Default)]
pub struct Spawn {
    /// Open `cgroup.procs` files of the cgroup criu joins.
    pub cgroup_procs: Vec<OwnedFd>,
    /// fds criu keeps open across its exec.
    pub inherit: Vec<RawFd>,
    /// A bind mount criu gets in a mount namespace of its own (restore's
    /// root): never mounted where husk is, so nothing stays mounted on the
    /// host whenever husk or criu dies.
    pub bind: Option<crate::sys::spawn::PrivateBind>,
}

/// The path of a pty master's peer, as the devpts it was made in numbers it
/// (the container's /dev/pts, for the master criu makes at restore).
pub fn pty_path(master: &OwnedFd) -> Option<String> {
    use std::os::fd::AsFd;
    let n = crate::sys::term::pty_number(master.as_fd()).ok()?;
    Some(format!("/dev/pts/{n}"))
}

/// What a successful criu run handed back.
#[derive(Debug, Default)]
pub struct Outcome {
    /// The restored tree's root (restore).
    pub restored_pid: Option<libc::pid_t>,
    /// The master of the new pty criu made for a pty slave whose master
    /// was outside (a terminal container's console), from its
    /// "orphan-pts-master" notification.
    pub pts_master: Option<OwnedFd>,
}

/// The largest answer husk reads from criu (runc's size): its answers are
/// a few hundred bytes.
const MAX_ANSWER: usize = 10 * 4096;

fn action_name(kind: ReqType) -> &'static str {
    match kind {
        ReqType::Dump => "dump",
        ReqType::Restore => "restore",
        ReqType::PreDump => "pre-dump",
        ReqType::Notify => "notify",
    }
}

/// Runs one criu request `kind` with `opts` through `criu swrk` in `dirs`
/// (images and work directory, log at `work/log_name`); waits at most
/// [`TIMEOUT`] in all (then kills criu). criu's notifications are answered
/// as they come, each first given to `on_notify` (script name and pid): its
/// error makes husk answer that the script failed, so criu gives up (thaws
/// what it froze, kills what it restored) and the error is returned. An
/// error names the action, why criu failed, the first error line of its
/// log and the log's path.
///
/// criu does not die with husk: a SIGKILL of husk makes criu fail at its
/// next notification, the way it fails on any error, rather than killing
/// it while its code is injected in the container's frozen processes.
pub fn run(
    kind: ReqType,
    mut opts: Opts,
    dirs: &Dirs,
    log_name: &str,
    mut spawn: Spawn,
    on_notify: &mut dyn FnMut(&str, Option<libc::pid_t>) -> Result<()>,
    stop: Stop<'_>,
) -> Result<Outcome> {
    let action = action_name(kind);
    let log_path = dirs.work.path.join(log_name);
    point_at_dirs(&mut opts, &mut spawn, dirs, log_name);
    let (client, server) = crate::sys::seqpacket_pair().context(|| format!("{action}: a socket pair for criu"))?;
    let pid = spawn_swrk(action, &opts, dirs, spawn, server)?;
    let deadline = std::time::Instant::now() + TIMEOUT;
    // criu's end of the socket may outlive criu: the processes it forks
    // at restore hold it until they close criu's files, and they are
    // stuck for good when criu dies first. Its exit ends the wait too.
    let exited = crate::sys::pidfd_open(pid).ok();
    let stopped = std::cell::Cell::new(false);
    let stop_and_say = || {
        let e = stop.and_then(|stop| stop());
        stopped.set(stopped.get() || e.is_some());
        e
    };
    let wait = Wait {
        exited: exited.as_ref(),
        deadline,
        stop: stop.map(|_| &stop_and_say as &dyn Fn() -> Option<Error>),
    };
    let talked = converse(&client, &wait, kind, &opts, on_notify);
    drop(client);
    if stopped.get() {
        // Asked to end (a restore only: what criu made goes with the
        // container's cgroup): criu is not waited for.
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL);
    }
    let left = deadline.saturating_duration_since(std::time::Instant::now());
    let code = match crate::container::wait(pid, left.max(Duration::from_secs(1))) {
        Ok(code) => code,
        Err(e) => {
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL);
            let _ = crate::sys::process::waitpid(pid);
            bail!("criu {action}: {e}, killed it; see {}", log_path.display());
        }
    };
    let why = |what: String| {
        let line = first_error(&dirs.work.file(log_name))
            .map(|l| format!(": {l}"))
            .unwrap_or_default();
        Error::new(format!(
            "criu {action} failed ({what}){line}; see {}",
            log_path.display()
        ))
    };
    outcome_of(kind, talked, code).map_err(why)
}

/// The options that point criu at `dirs` (which it opens through
/// /proc/HUSK/fd/N: husk is its socket's peer) and at its log `log_name`.
fn point_at_dirs(opts: &mut Opts, spawn: &mut Spawn, dirs: &Dirs, log_name: &str) {
    opts.images_dir_fd = dirs.image.fd.as_raw_fd();
    opts.work_dir_fd = Some(dirs.work.fd.as_raw_fd());
    opts.log_file = log_name.to_string();
    opts.log_level = 4;
    opts.notify_scripts = true;
    opts.orphan_pts_master = true;
    opts.config_file = dirs.config.as_ref().map(PinnedFile::for_criu);
    if let Some(b) = &mut spawn.bind {
        b.cwd = dirs.work.fd.as_raw_fd();
    }
}

/// Starts `criu swrk` on the socket's end `server` (closed here once criu
/// has it, so that a criu that dies is an end of file for husk); its pid.
fn spawn_swrk(action: &str, opts: &Opts, dirs: &Dirs, spawn: Spawn, server: OwnedFd) -> Result<libc::pid_t> {
    let mut cmd = Command::new(program());
    cmd.arg("swrk").arg(server.as_raw_fd().to_string());
    // A foreground restore has every signal it forwards blocked.
    crate::sys::signal::empty_signal_mask(&mut cmd);
    log::debug(&format!(
        "running {cmd:?}: {} (fd {} is {}, fd {} is {})",
        action,
        dirs.image.fd.as_raw_fd(),
        dirs.image.path.display(),
        dirs.work.fd.as_raw_fd(),
        dirs.work.path.display()
    ));
    log::debug(&format!("criu options: {opts:?}"));
    let mut inherit = spawn.inherit;
    inherit.push(server.as_raw_fd());
    crate::sys::spawn::before_exec(&mut cmd, spawn.cgroup_procs, inherit, spawn.bind);
    let child = cmd.spawn().map_err(|e| {
        let criu = program();
        let what = match PROGRAM.get() {
            Some(_) => format!("run --criu {}: {e}", criu.to_string_lossy()),
            None if e.kind() == std::io::ErrorKind::NotFound => {
                "criu is not installed (Debian: apt-get install criu)".to_string()
            }
            None => format!("run criu: {e}"),
        };
        Error::new(format!("{action}: {what}"))
    })?;
    // Dropping cmd closes our copies of the cgroup.procs files.
    Ok(child.id() as libc::pid_t)
}

/// What came of the request, from how the conversation `talked` ended and
/// criu's exit `code`; an error is why, for the caller to dress.
fn outcome_of(
    kind: ReqType,
    talked: Result<std::result::Result<Outcome, String>>,
    code: i32,
) -> std::result::Result<Outcome, String> {
    let outcome = match talked {
        Ok(Ok(o)) => o,
        Ok(Err(answer)) => return Err(answer),
        Err(e) => {
            // What broke the conversation (a garbled answer, an end of
            // file) is the news: criu's exit status only adds to it.
            return Err(match code {
                c if c > 128 => format!("{e}; criu was killed by signal {}", c - 128),
                c => format!("{e}; criu exit status {c}"),
            });
        }
    };
    // A pre-dump service waits for the next request, and ends with an error
    // once the socket closes: its answer said how it went (runc does so too).
    if code != 0 && kind != ReqType::PreDump {
        return Err(if code > 128 {
            format!("killed by signal {}", code - 128)
        } else {
            format!("exit status {code}")
        });
    }
    Ok(outcome)
}

/// Asked while husk waits for criu: an error ends the wait (and criu).
pub type Stop<'a> = Option<&'a dyn Fn() -> Option<Error>>;

/// How often a wait for criu asks its `Stop`.
const STOP_CHECK: Duration = Duration::from_millis(20);

/// What ends a wait for criu's next word: criu's exit (its pidfd), the
/// deadline, or `stop`.
struct Wait<'a> {
    exited: Option<&'a OwnedFd>,
    deadline: std::time::Instant,
    stop: Stop<'a>,
}

/// Sends the request and answers criu's notifications until its final
/// answer: Ok(Ok) when it succeeded, Ok(Err(why)) when criu said it failed,
/// Err when the conversation broke (criu died, timed out, garbled).
fn converse(
    client: &OwnedFd,
    wait: &Wait,
    kind: ReqType,
    opts: &Opts,
    on_notify: &mut dyn FnMut(&str, Option<libc::pid_t>) -> Result<()>,
) -> Result<std::result::Result<Outcome, String>> {
    send(client, &rpc::request(kind, opts))?;
    let mut outcome = Outcome::default();
    let mut refused: Option<Error> = None;
    let mut buf = vec![0u8; MAX_ANSWER];
    loop {
        let Some((n, fd)) = receive(client, wait, &mut buf)? else {
            bail!("criu ended without answering")
        };
        if n == buf.len() {
            bail!("criu's answer is larger than {MAX_ANSWER} bytes");
        }
        let answer = rpc::Response::decode(&buf[..n])?;
        if answer.kind == ReqType::Notify as u64 {
            let script = answer.script.clone().unwrap_or_default();
            log::debug(&format!("criu notification {script} (pid {:?})", answer.notify_pid));
            if script == "orphan-pts-master" {
                match fd {
                    Some(fd) => outcome.pts_master = Some(fd),
                    None => bail!("criu's orphan-pts-master notification came without the pty master"),
                }
            }
            let handled = if refused.is_some() {
                Ok(())
            } else {
                on_notify(&script, answer.notify_pid)
            };
            match handled {
                Ok(()) if refused.is_none() => send(client, &rpc::notify_success())?,
                Ok(()) => send(client, &rpc::notify_failure())?,
                Err(e) => {
                    refused = Some(e);
                    send(client, &rpc::notify_failure())?;
                }
            }
            continue;
        }
        if answer.kind != kind as u64 {
            bail!(
                "criu answered a request of type {} to one of type {}",
                answer.kind,
                kind as u64
            );
        }
        if let Some(e) = refused {
            return Err(e);
        }
        if !answer.success {
            let mut why = String::from("it said it failed");
            if let Some(m) = answer.errmsg.filter(|m| !m.is_empty()) {
                why = format!("{why}: {m}");
            }
            if let Some(errno) = answer.errno.filter(|&e| e > 0) {
                why = format!("{why}, {}", std::io::Error::from_raw_os_error(errno));
            }
            return Ok(Err(why));
        }
        outcome.restored_pid = answer.restored_pid;
        return Ok(Ok(outcome));
    }
}

/// One packet to criu (never SIGPIPE: a dead criu is an error here).
fn send(client: &OwnedFd, packet: &[u8]) -> Result<()> {
    use nix::sys::socket::{send, MsgFlags};
    match send(client.as_raw_fd(), packet, MsgFlags::MSG_NOSIGNAL) {
        Ok(n) if n == packet.len() => Ok(()),
        Ok(_) => bail!("a short write to criu"),
        Err(e) => Err(Error::new(format!("write to criu: {e}"))),
    }
}

/// The next packet from criu and the fd it carried, waiting until
/// `deadline`; None when criu closed its end or exited (pidfd `exited`
/// readable) with nothing left to read: what it sent before it exited is
/// in the socket already.
fn receive(client: &OwnedFd, wait: &Wait, buf: &mut [u8]) -> Result<Option<(usize, Option<OwnedFd>)>> {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    use std::os::fd::AsFd;
    loop {
        let left = wait.deadline.saturating_duration_since(std::time::Instant::now());
        // With `stop`, asked every STOP_CHECK.
        let slice = match wait.stop {
            Some(_) => left.min(STOP_CHECK),
            None => left,
        };
        let mut fds = vec![PollFd::new(client.as_fd(), PollFlags::POLLIN)];
        if let Some(pidfd) = wait.exited {
            fds.push(PollFd::new(pidfd.as_fd(), PollFlags::POLLIN));
        }
        match poll(&mut fds, PollTimeout::try_from(slice).unwrap_or(PollTimeout::MAX)) {
            Ok(0) if slice == left => bail!("criu did not answer within {TIMEOUT:?}"),
            Ok(0) => match wait.stop.and_then(|stop| stop()) {
                Some(e) => return Err(e),
                None => continue,
            },
            Ok(_) => {}
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(Error::new(format!("wait for criu: {e}"))),
        }
        let ready = |fd: &PollFd| fd.revents().is_some_and(|r| !r.is_empty());
        if !ready(&fds[0]) {
            // Only the pidfd: criu exited, and sent nothing more.
            return Ok(None);
        }
        match crate::sys::process::recv_with_fd(client, buf) {
            Ok((0, _)) => return Ok(None),
            Ok((n, fd)) => return Ok(Some((n, fd))),
            Err(nix::errno::Errno::EINTR) => continue,
            Err(nix::errno::Errno::ECONNRESET) => return Ok(None),
            Err(e) => return Err(Error::new(format!("read from criu: {e}"))),
        }
    }
}

/// The first line of criu's log that reports why it failed, trimmed of its
/// timestamp: not the probes of kernel features it tolerates (a missing
/// tun device), not the closing "FAILED".
fn first_error(log: &Path) -> Option<String> {
    let text = std::fs::read_to_string(log).ok()?;
    let errors: Vec<&str> = text.lines().filter(|l| l.contains("Error (")).collect();
    let noise = |l: &&str| l.contains("criu/tun.c") || l.contains("criu/kerndat.c") || l.contains("FAILED");
    let line = errors.iter().find(|l| !noise(l)).or(errors.first())?;
    let line = match line.strip_prefix('(') {
        Some(rest) => rest.split_once(") ").map_or(*line, |(_, l)| l),
        None => line,
    };
    Some(line.trim().chars().take(300).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn criu_version_lines_are_read() {
        assert_eq!(parse_version("Version: 3.17\n"), Some((3, 17)));
        assert_eq!(parse_version("Version: 3.19.1\nGitID: v3.19\n"), Some((3, 19)));
        assert_eq!(parse_version("criu: command not found"), None);
    }

    fn spec(json: &str) -> Spec {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn the_upper_and_work_directories_of_a_rootfs_overlay_are_the_containers() {
        let info = "\
22 1 254:0 / / rw - ext4 /dev/vda1 rw
99 22 0:55 / /b/with\\040space/rootfs rw,relatime - overlay overlay rw,lowerdir=/l1:/l2,upperdir=/var/u\\054p,workdir=/var/w
100 22 0:56 / /other rw - overlay overlay rw,lowerdir=/l,upperdir=/o,workdir=/ow
";
        let options = overlays_at(info, Path::new("/b/with space/rootfs"));
        assert_eq!(options.len(), 1, "{options:?}");
        let dirs = overlay_dirs(&options[0], "its rootfs overlay");
        assert_eq!(
            dirs,
            [
                (
                    "the upperdir of its rootfs overlay".to_string(),
                    PathBuf::from("/var/u,p")
                ),
                ("the workdir of its rootfs overlay".to_string(), PathBuf::from("/var/w")),
            ]
        );
        let s = spec(
            r#"{"ociVersion": "1.0.2", "root": {"path": "r"}, "mounts": [{"destination": "/data",
            "type": "overlay", "source": "overlay", "options": ["lowerdir=/l", "upperdir=/up", "workdir=/wk"]}]}"#,
        );
        let writable = writable_by_container(&s, Path::new("/no/such/rootfs"), Path::new("/b"));
        let names: Vec<_> = writable
            .iter()
            .map(|(what, dir)| (what.as_str(), dir.to_str().unwrap()))
            .collect();
        assert!(
            names.contains(&("the upperdir of its overlay mount /data", "/up")),
            "{names:?}"
        );
        assert!(
            names.contains(&("the workdir of its overlay mount /data", "/wk")),
            "{names:?}"
        );
    }

    #[test]
    fn paths_are_cleaned_as_criu_lists_mounts() {
        assert_eq!(clean(Path::new("/data/")), "/data");
        assert_eq!(clean(Path::new("data//x/.")), "/data/x");
        assert_eq!(clean(Path::new("/../../etc/x")), "/etc/x");
    }

    #[test]
    fn bind_mounts_are_external_with_bundle_relative_sources() {
        let s = spec(
            r#"{"ociVersion":"1.0.2","mounts":[
            {"destination":"/proc","type":"proc","source":"proc"},
            {"destination":"/data/","type":"bind","source":"/srv/data","options":["rbind"]},
            {"destination":"/conf","source":"conf","options":["bind","ro"]}]}"#,
        );
        let ext = external_mounts(&s, Path::new("/b"));
        assert_eq!(ext.len(), 2);
        assert_eq!(ext[0].destination, "/data");
        assert_eq!(ext[0].source, PathBuf::from("/srv/data"));
        assert_eq!(ext[1].source, PathBuf::from("/b/conf"));
    }

    #[test]
    fn unsupported_flags_are_refused_before_anything() {
        let lazy = CriuOptions {
            lazy_pages: true,
            ..Default::default()
        };
        assert!(lazy.check().unwrap_err().to_string().contains("--lazy-pages"));
        let mode = CriuOptions {
            manage_cgroups_mode: Some("loose".into()),
            ..Default::default()
        };
        assert!(mode.check().is_err());
        let ns = CriuOptions {
            empty_ns: vec!["ipc".into()],
            ..Default::default()
        };
        assert!(ns.check().is_err());
        let ok = CriuOptions {
            manage_cgroups_mode: Some("strict".into()),
            empty_ns: vec!["network".into()],
            ..Default::default()
        };
        ok.check().unwrap();
        let mut opts = Opts::default();
        ok.common_opts(&mut opts);
        assert_eq!(opts.manage_cgroups_mode, Some(CgMode::Strict));
        assert_eq!(opts.empty_ns, libc::CLONE_NEWNET as u32);
        for bad in ["10.0.0.1", "10.0.0.1:0", "10.0.0.1:65536", ":27", "a b:27", "h:x"] {
            let o = CriuOptions {
                page_server: Some(bad.into()),
                ..Default::default()
            };
            assert!(o.check().unwrap_err().to_string().contains("--page-server"), "{bad}");
        }
        assert_eq!(page_server("[::1]:27").unwrap(), ("::1".to_string(), 27));
        assert_eq!(page_server("10.0.0.1:27").unwrap(), ("10.0.0.1".to_string(), 27));
        let link = CriuOptions {
            link_remap: true,
            ..Default::default()
        };
        assert!(link.check_restore().unwrap_err().to_string().contains("--link-remap"));
    }

    #[test]
    fn directories_inside_what_the_container_writes_are_refused_as_given() {
        let writable = [(
            "the container's rootfs".to_string(),
            PathBuf::from("/nonexistent/b/rootfs"),
        )];
        for bad in [
            "/nonexistent/b/rootfs/tmp/x",
            "/nonexistent/b/x/../rootfs/ckpt",
            "/nonexistent/b/rootfs",
        ] {
            let err = refuse_inside("--image-path", Path::new(bad), &writable).unwrap_err();
            assert!(err.to_string().contains("--image-path"), "{err}");
        }
        for ok in ["/nonexistent/b/image", "/nonexistent/b/rootfs2"] {
            refuse_inside("--work-path", Path::new(ok), &writable).unwrap();
        }
    }

    #[test]
    fn parent_images_another_user_can_write_are_refused() {
        if !nix::unistd::geteuid().is_root() {
            return;
        }
        let tmp = std::env::temp_dir().join(format!("husk-criu-parent-{}", std::process::id()));
        let (image, parent) = (tmp.join("image"), tmp.join("pre"));
        for d in [&image, &parent] {
            std::fs::create_dir_all(d).unwrap();
            std::fs::set_permissions(d, std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
        }
        std::os::unix::fs::symlink("../pre", image.join("parent")).unwrap();
        let dir = PinnedDir::open("--image-path", &image, false, &[]).unwrap();
        dir.check_owner(true).unwrap();
        std::os::unix::fs::chown(&parent, Some(1000), Some(1000)).unwrap();
        let err = dir.check_owner(true).unwrap_err().to_string();
        assert!(err.contains("parent images") && err.contains("uid 1000"), "{err}");
        std::fs::remove_dir_all(&tmp).unwrap();
    }

    #[test]
    fn a_file_from_outside_on_fd_n_now_overrides_the_record() {
        let recorded = ["file[1e:7]", "pipe:[5]", "file[1e:7]"].map(String::from);
        // A shell's redirection of an instant, a host file moved onto fd 1,
        // a read that failed.
        let live = ["/data/count", "file[1e:9]", ""].map(String::from);
        assert_eq!(
            merge_stdio(&live, &recorded),
            ["file[1e:7]", "file[1e:9]", "file[1e:7]"]
        );
    }

    #[test]
    fn the_recorded_stdio_is_what_a_checkpoint_leaves_out() {
        let image = std::env::temp_dir().join(format!("husk-criu-stdio-{}", std::process::id()));
        let dir = PinnedDir::open("--image-path", &image, true, &[]).unwrap();
        let recorded = ["file[1e:7]", "pipe:[5]", "file[1e:7]"].map(String::from);
        let mut opts = Opts::default();
        // No process 0: nothing read live overrides the record.
        dump_stdio(&dir, 0, &[], Some(&recorded), &mut opts).unwrap();
        assert_eq!(opts.external, ["file[1e:7]"]);
        let written: Vec<String> = serde_json::from_slice(&std::fs::read(image.join(DESCRIPTORS)).unwrap()).unwrap();
        assert_eq!(written, recorded);
        std::fs::remove_dir_all(&image).unwrap();
    }

    /// A /dev/null on the restorer's stdio is the host's, which a restored
    /// root container could chmod through its fd: criu gets a /dev/null of
    /// the container's alone to reconnect instead (review 50b N1).
    #[test]
    fn a_dev_null_on_the_restorers_stdio_is_not_handed_to_criu() {
        use std::os::unix::fs::MetadataExt;
        if !nix::unistd::geteuid().is_root() {
            return;
        }
        let host = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open("/dev/null")
            .unwrap();
        nix::unistd::dup2_stdin(&host).unwrap();
        let image = std::env::temp_dir().join(format!("husk-criu-inherit-{}", std::process::id()));
        let dir = PinnedDir::open("--image-path", &image, true, &[]).unwrap();
        std::fs::write(image.join(DESCRIPTORS), r#"["file[1e:7]","/dev/pts/0","/dev/pts/0"]"#).unwrap();
        let mut opts = Opts::default();
        let copies = inherit_stdio(&dir, &mut opts).unwrap();
        assert_eq!(opts.inherit_fd.len(), 1);
        assert_eq!(opts.inherit_fd[0].0, "file[1e:7]");
        let given = nix::sys::stat::fstat(&copies[0]).unwrap();
        let host = host.metadata().unwrap();
        assert_eq!((given.st_rdev, given.st_mode & 0o777), (libc::makedev(1, 3), 0o666));
        assert_ne!((given.st_dev, given.st_ino), (host.dev(), host.ino()));
        std::fs::remove_dir_all(&image).unwrap();
    }

    #[test]
    fn a_file_is_named_by_its_mount_and_inode_alike_from_statx_and_fdinfo() {
        for path in ["/proc/self/status", "/dev/null"] {
            let file = std::fs::File::open(path).unwrap();
            let n = file.as_raw_fd();
            let id = crate::sys::fs::file_id(file.as_fd()).unwrap();
            assert!(id.mount.is_some(), "statx gave no mount id");
            assert!(!id.terminal, "{path}");
            assert_eq!(Some(id), proc_file_id("self", n));
            let key = stdio_entry(fd_link("self", n), Some(id));
            assert!(key.starts_with("file[") && key.ends_with(']'), "{key}");
            assert_eq!(stdio_entry("pipe:[5]".into(), Some(id)), "pipe:[5]");
        }
    }

    #[test]
    fn a_terminal_is_named_by_its_path_never_by_a_key() {
        let tty = crate::sys::fs::FileId {
            mount: Some(30),
            inode: 3,
            terminal: true,
        };
        assert_eq!(stdio_entry("/dev/pts/0".into(), Some(tty)), "/dev/pts/0");
        assert!(crate::sys::fs::is_terminal(libc::S_IFCHR, 136));
        assert!(!crate::sys::fs::is_terminal(libc::S_IFCHR, 1), "/dev/null");
        assert!(!crate::sys::fs::is_terminal(libc::S_IFBLK, 4));
    }

    #[test]
    fn directories_reached_through_proc_pid_root_are_refused() {
        // /proc/self/root/<rootfs>/x: as text neither the path nor its
        // canonical form need start with the rootfs; the fd's ancestors do.
        let tmp = std::env::temp_dir().join(format!("husk-criu-below-{}", std::process::id()));
        let rootfs = tmp.join("rootfs");
        std::fs::create_dir_all(rootfs.join("tmp/img")).unwrap();
        let writable = vec![("the container's rootfs".to_string(), rootfs.clone())];
        let file = std::fs::File::open(rootfs.join("tmp/img")).unwrap();
        let fd = OwnedFd::from(file);
        let via = Path::new("/proc/self/root/anything");
        let err = refuse_below("--image-path", &fd, via, &writable)
            .unwrap_err()
            .to_string();
        assert!(err.contains("inside the container's rootfs"), "{err}");
        let outside = OwnedFd::from(std::fs::File::open(&tmp).unwrap());
        refuse_below("--image-path", &outside, &tmp, &writable).unwrap();
        std::fs::remove_dir_all(&tmp).unwrap();
    }

    #[test]
    fn masked_files_are_read_from_the_mount_table() {
        // /proc/kcore bound over with /dev/null (a file: its root is the
        // file's path), /proc/acpi an empty tmpfs (a filesystem's root),
        // /proc/keys masked and then mounted over by a directory, /a b a
        // file with a space, /proc/missing not there (nothing mounted).
        let mountinfo = "\
22 1 0:20 / / rw - overlay overlay rw
23 22 0:21 / /proc rw - proc proc rw
24 23 0:5 /null /proc/kcore rw - devtmpfs udev rw
25 23 0:22 / /proc/acpi ro - tmpfs tmpfs ro,size=0k
26 23 0:23 /null /proc/keys rw - tmpfs tmpfs rw
27 23 0:24 / /proc/keys ro - tmpfs tmpfs ro
28 22 0:5 /null /a\\040b rw - devtmpfs udev rw
";
        let spec: Spec = serde_json::from_value(serde_json::json!({
            "ociVersion": "1.0.2",
            "root": {"path": "rootfs"},
            "linux": {"maskedPaths": ["/proc/kcore", "/proc/acpi", "/proc/keys", "/a b", "/proc//kcore/", "/proc/missing"]}
        }))
        .unwrap();
        assert_eq!(masked_files(&spec, mountinfo), ["/proc/kcore", "/a b", "/proc/kcore"]);
        assert_eq!(mount_ids(mountinfo), [22, 23, 24, 25, 26, 27, 28]);
    }

    #[test]
    fn the_first_error_of_the_log_is_quoted() {
        let dir = std::env::temp_dir().join(format!("husk-criu-log-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let log = dir.join("dump.log");
        std::fs::write(
            &log,
            "(00.000001) Version: 3.17\n(00.1) Error (criu/tun.c:85): tun: Unable to create tun\n(00.2) Error (criu/mount.c:1): mnt: 42:./data doesn't have a proper root mount\n(00.3) Error (x): later\n",
        )
        .unwrap();
        assert_eq!(
            first_error(&log).unwrap(),
            "Error (criu/mount.c:1): mnt: 42:./data doesn't have a proper root mount"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
