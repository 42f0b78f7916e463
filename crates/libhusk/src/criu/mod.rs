//! CRIU (checkpoint/restore in userspace), as `checkpoint` and `restore` use
//! it: the flags both share, what the container's config must tell CRIU
//! (bind mounts and masked files are external mounts, joined namespaces are
//! external namespaces), and one bounded run of the `criu` program.
//!
//! husk runs criu's command line (`criu dump|pre-dump|restore ...`) rather
//! than its RPC service (`criu swrk`): every option husk needs has a flag,
//! the command is logged whole with `--debug` and can be rerun by hand, and
//! husk carries no protobuf schema. What RPC alone offers (notifications,
//! among them the pty master of a restored terminal) husk does not use yet.

use std::ffi::OsString;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use oci_spec::runtime::{LinuxNamespaceType, Spec};

use crate::bail;
use crate::error::{Context, Error, Result};
use crate::log;

/// The criu program; $HUSK_CRIU overrides (a test can point at a wrapper).
fn program() -> OsString {
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
            if !["soft", "full", "strict", "ignore"].contains(&mode.as_str()) {
                bail!("--manage-cgroups-mode must be soft, full, strict or ignore, not \"{mode}\"");
            }
        }
        for ns in &self.empty_ns {
            if ns != "network" {
                bail!("--empty-ns {ns}: only the network namespace can be left empty");
            }
        }
        Ok(())
    }

    /// The flags both actions pass to criu.
    pub fn common_args(&self, args: &mut Args) {
        let mode = self.manage_cgroups_mode.as_deref().unwrap_or("soft");
        args.push(format!("--manage-cgroups={mode}"));
        args.flag(self.tcp_established, "--tcp-established");
        args.flag(self.ext_unix_sk, "--ext-unix-sk");
        args.flag(self.shell_job, "--shell-job");
        args.flag(self.file_locks, "--file-locks");
        args.flag(self.auto_dedup, "--auto-dedup");
        if !self.empty_ns.is_empty() {
            args.push("--empty-ns");
            args.push("net");
        }
    }
}

/// A criu command line under construction.
#[derive(Default, Debug)]
pub struct Args(pub Vec<OsString>);

impl Args {
    /// Appends one argument.
    pub fn push(&mut self, a: impl Into<OsString>) {
        self.0.push(a.into());
    }

    /// Appends `name` when `on`.
    pub fn flag(&mut self, on: bool, name: &str) {
        if on {
            self.push(name);
        }
    }

    /// Appends `name value`.
    pub fn pair(&mut self, name: &str, value: impl Into<OsString>) {
        self.push(name);
        self.push(value);
    }
}

fn absolute(p: &Path) -> Result<PathBuf> {
    if p.is_absolute() {
        Ok(p.to_path_buf())
    } else {
        Ok(std::env::current_dir().context(|| "current directory".into())?.join(p))
    }
}

/// Makes `dir` (mode 0700) unless it exists, as runc does: a container may
/// be checkpointed into the same directory more than once.
pub fn make_dir(dir: &Path) -> Result<()> {
    match std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir) {
        Ok(()) => Ok(()),
        Err(e) => Err(e).context(|| format!("create {}", dir.display())),
    }
}

/// A directory criu reads or writes (`--image-path`, `--work-path`), opened
/// once: husk checks what it opened and hands criu that very directory as
/// `/proc/self/fd/N` of an fd it inherits, so a path swapped (a component
/// replaced by a symlink) after the checks changes nothing.
#[derive(Debug)]
pub struct PinnedDir {
    /// The flag that named it, for errors.
    pub flag: &'static str,
    /// Where it is (resolved), for messages.
    pub path: PathBuf,
    fd: OwnedFd,
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
        if create {
            // What exists already is checked by its fd's ancestors before
            // anything is made: a path through /proc/PID/root would
            // otherwise make directories in the container, or through its
            // symlinks on the host.
            if let Some(existing) = path.ancestors().find_map(|a| std::fs::File::open(a).ok()) {
                refuse_below(flag, &OwnedFd::from(existing), path, writable)?;
            }
            make_dir(path).context(|| flag.to_string())?;
        }
        let file = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_DIRECTORY | libc::O_CLOEXEC)
            .open(path)
            .context(|| format!("{flag} {}", path.display()))?;
        let fd = OwnedFd::from(file);
        let real =
            std::fs::read_link(format!("/proc/self/fd/{}", fd.as_raw_fd())).unwrap_or_else(|_| path.to_path_buf());
        refuse_inside(flag, &real, writable)?;
        refuse_below(flag, &fd, path, writable)?;
        Ok(PinnedDir { flag, path: real, fd })
    }

    /// The directory as criu (which inherits the fd) and husk reach it.
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
            let m = std::fs::metadata(dir).ok().filter(|m| m.is_dir())?;
            Some((what.as_str(), dir.as_path(), (m.dev(), m.ino())))
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

/// The image and the work directory of one criu run.
#[derive(Debug)]
pub struct Dirs {
    /// `--image-path`.
    pub image: PinnedDir,
    /// `--work-path` (the image directory again without it).
    pub work: PinnedDir,
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
            Some(w) => PinnedDir::open("--work-path", &absolute(w)?, true, writable)?,
            None => PinnedDir::open("--image-path", &image_path, false, writable)?,
        };
        work.check_owner(false)?;
        Ok(Dirs { image, work })
    }
}

/// What the container's processes can write on the host: its rootfs and
/// the sources of its bind mounts.
pub fn writable_by_container(spec: &Spec, rootfs: &Path, bundle: &Path) -> Vec<(String, PathBuf)> {
    let mut out = vec![("the container's rootfs".to_string(), rootfs.to_path_buf())];
    for m in external_mounts(spec, bundle) {
        out.push((format!("the source of its bind mount {}", m.destination), m.source));
    }
    out
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
    let mut parts: Vec<String> = Vec::new();
    for c in dest.components() {
        match c {
            std::path::Component::Normal(s) => parts.push(s.to_string_lossy().into_owned()),
            std::path::Component::ParentDir => {
                parts.pop();
            }
            _ => {}
        }
    }
    format!("/{}", parts.join("/"))
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
/// running container `pid`; a masked directory is an empty tmpfs that criu
/// dumps itself. Read through /proc/PID/root without following the last
/// component: a wrong answer makes criu fail, it gives nothing away.
pub fn masked_files(spec: &Spec, pid: libc::pid_t) -> Vec<String> {
    let masked = spec.linux().as_ref().and_then(|l| l.masked_paths().clone());
    masked
        .unwrap_or_default()
        .iter()
        .map(|p| clean(Path::new(p)))
        .filter(|p| {
            let at = format!("/proc/{pid}/root{p}");
            std::fs::symlink_metadata(at).is_ok_and(|m| !m.is_dir())
        })
        .collect()
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

/// `--external net[INODE]:extRootNetNS` for each joined namespace.
pub fn dump_external_namespaces(spec: &Spec, args: &mut Args) -> Result<()> {
    for (t, path) in joined_namespaces(spec) {
        let ino = std::fs::metadata(&path)
            .context(|| format!("linux.namespaces: {}", path.display()))?
            .ino();
        args.pair("--external", format!("{}[{ino}]:{}", criu_ns_name(t), namespace_key(t)));
    }
    Ok(())
}

/// Opens each joined namespace for criu to inherit (`--inherit-fd
/// fd[N]:extRootNetNS`); the fds must stay open until criu has run.
pub fn restore_external_namespaces(spec: &Spec, args: &mut Args) -> Result<Vec<OwnedFd>> {
    let mut fds = Vec::new();
    for (t, path) in joined_namespaces(spec) {
        let f = std::fs::File::open(&path).context(|| format!("linux.namespaces: {}", path.display()))?;
        let fd = OwnedFd::from(f);
        args.pair("--inherit-fd", format!("fd[{}]:{}", fd.as_raw_fd(), namespace_key(t)));
        fds.push(fd);
    }
    Ok(fds)
}

/// What the container's stdio (fds 0-2 of its init) were at checkpoint, in
/// runc's `descriptors.json` (a list of three strings), and how restore
/// reconnects each to the restoring husk's own fd of the same number: a pipe
/// (`pipe:[INODE]`) as runc does, and a file outside the container's mounts
/// (its caller's /dev/null, a log file) as an external file
/// (`file[MNT:INODE]`, which `--external` tells criu to leave out of the images).
pub fn dump_stdio(image_dir: &PinnedDir, pid: libc::pid_t, args: &mut Args) -> Result<()> {
    let mounts = std::fs::read_to_string(format!("/proc/{pid}/mountinfo")).unwrap_or_default();
    let ids: Vec<&str> = mounts.lines().filter_map(|l| l.split(' ').next()).collect();
    let mut fds = Vec::new();
    for n in 0..3 {
        let link = std::fs::read_link(format!("/proc/{pid}/fd/{n}"))
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or_default();
        let external = external_file(pid, n).filter(|(mnt, _)| !ids.contains(&mnt.to_string().as_str()));
        let entry = match external {
            Some((mnt, ino)) if link.starts_with('/') => {
                let key = format!("file[{mnt:x}:{ino:x}]");
                if !fds.contains(&key) {
                    args.pair("--external", &key);
                }
                key
            }
            _ => link,
        };
        fds.push(entry);
    }
    let json = serde_json::to_vec(&fds).expect("strings serialise");
    crate::state::write_atomic(&image_dir.file(DESCRIPTORS), &json, 0o600)
        .context(|| format!("write {}", image_dir.path.join(DESCRIPTORS).display()))
}

/// The mount id and inode of fd `n` of `pid`.
fn external_file(pid: libc::pid_t, n: i32) -> Option<(u64, u64)> {
    let info = std::fs::read_to_string(format!("/proc/{pid}/fdinfo/{n}")).ok()?;
    let mnt = info
        .lines()
        .find_map(|l| l.strip_prefix("mnt_id:"))
        .and_then(|v| v.trim().parse().ok())?;
    let ino = std::fs::metadata(format!("/proc/{pid}/fd/{n}")).ok()?.ino();
    Some((mnt, ino))
}

/// `--inherit-fd fd[N]:KEY` for the checkpointed stdio that restore
/// reconnects (see [`dump_stdio`]); the fds it inherits.
pub fn inherit_stdio(image_dir: &PinnedDir, args: &mut Args) -> Result<Vec<RawFd>> {
    let path = image_dir.path.join(DESCRIPTORS);
    let text = match std::fs::read(image_dir.file(DESCRIPTORS)) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e).context(|| format!("read {}", path.display())),
    };
    let fds: Vec<String> = serde_json::from_slice(&text).context(|| format!("corrupt {}", path.display()))?;
    let mut inherited = Vec::new();
    for (n, what) in fds.iter().enumerate().take(3) {
        let reconnect = what.starts_with("pipe:[") || what.starts_with("file[");
        if reconnect && what.ends_with(']') && !what.contains([',', '\n', ' ']) {
            args.pair("--inherit-fd", format!("fd[{n}]:{what}"));
            inherited.push(n as RawFd);
        }
    }
    Ok(inherited)
}

/// A container with a terminal: the pty's master is outside it (with
/// whoever got it over the console socket), so its processes are a shell
/// job to criu (`--shell-job`: a session whose terminal's master is not
/// dumped), and /dev/console, bound from the pty's peer, is an external
/// mount. (criu's RPC would remake the pty and hand back an orphan master;
/// its command line has no such option. `--external tty[RDEV:DEV]` does not
/// do: criu 3.17 then refuses a process that has /dev/tty open, as an
/// interactive shell has.)
pub fn dump_terminal(args: &mut Args) {
    args.push("--shell-job");
    args.pair("--ext-mount-map", "/dev/console:console");
}

/// A new pty standing for the checkpointed terminal at restore: criu, a
/// shell job, gives its stdin (the new pty's peer) to the processes in
/// place of the old terminal, and binds it on /dev/console. Returns the
/// master and the peer (criu's stdin) and the peer's path.
pub fn restore_terminal(args: &mut Args) -> Result<(OwnedFd, OwnedFd, String)> {
    let (master, peer, path) = open_host_pty().context(|| "open a pty for the restored terminal".into())?;
    args.push("--shell-job");
    args.pair("--ext-mount-map", format!("console:{path}"));
    Ok((master, peer, path))
}

/// A pty of the host's /dev/ptmx: master, peer (opened from the master,
/// TIOCGPTPEER) and the peer's path, checked to be that peer.
fn open_host_pty() -> std::io::Result<(OwnedFd, OwnedFd, String)> {
    use std::os::fd::AsFd;
    let flags = libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC;
    let master = crate::sys::openat(libc::AT_FDCWD, c"/dev/ptmx", flags, 0)?;
    crate::sys::term::unlock_pty(master.as_fd())?;
    let peer = crate::sys::term::open_pty_peer(master.as_fd(), flags)?;
    let path = format!("/dev/pts/{}", crate::sys::term::pty_number(master.as_fd())?);
    let same = |p: &std::fs::Metadata, q: &std::fs::Metadata| p.rdev() == q.rdev() && p.dev() == q.dev();
    let peer_meta = std::fs::metadata(format!("/proc/self/fd/{}", peer.as_raw_fd()))?;
    if !std::fs::metadata(&path).is_ok_and(|m| same(&m, &peer_meta)) {
        return Err(std::io::Error::other(format!(
            "{path} is not the peer of /dev/ptmx's new pty"
        )));
    }
    Ok((master, peer, path))
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
    /// criu's stdin instead of husk's.
    pub stdin: Option<OwnedFd>,
}

/// Runs `criu ACTION ARGS` in `dirs` (images and work directory, log at
/// `work/log_name`); waits at most [`TIMEOUT`] (then kills it). An error
/// names the action, how criu ended, the first error line of its log and
/// the log's path.
///
/// criu does not die with husk: a SIGKILL of husk leaves it to finish (or
/// fail) as if husk were there, rather than killing it while its code is
/// injected in the container's frozen processes.
pub fn run(action: &str, mut args: Args, dirs: &Dirs, log_name: &str, mut spawn: Spawn) -> Result<()> {
    let log_path = dirs.work.path.join(log_name);
    args.pair("--images-dir", dirs.image.arg());
    // With a mount namespace of its own, criu starts in the work directory
    // (see PrivateBind::cwd).
    let work = match &mut spawn.bind {
        Some(b) => {
            b.cwd = dirs.work.fd.as_raw_fd();
            ".".to_string()
        }
        None => dirs.work.arg(),
    };
    let stdin = match spawn.stdin.take() {
        Some(fd) => Stdio::from(fd),
        None => Stdio::inherit(),
    };
    let mut cmd = Command::new(program());
    cmd.arg(action)
        .args(&args.0)
        .arg("--work-dir")
        .arg(work)
        .arg("--log-file")
        .arg(log_name)
        .arg("-v4")
        .stdin(stdin);
    log::debug(&format!(
        "running {cmd:?} (fd {} is {}, fd {} is {})",
        dirs.image.fd.as_raw_fd(),
        dirs.image.path.display(),
        dirs.work.fd.as_raw_fd(),
        dirs.work.path.display()
    ));
    spawn
        .inherit
        .extend([dirs.image.fd.as_raw_fd(), dirs.work.fd.as_raw_fd()]);
    crate::sys::spawn::before_exec(&mut cmd, spawn.cgroup_procs, spawn.inherit, spawn.bind);
    let child = cmd.spawn().map_err(|e| {
        let what = if e.kind() == std::io::ErrorKind::NotFound {
            "criu is not installed (Debian: apt-get install criu)".to_string()
        } else {
            format!("run criu: {e}")
        };
        Error::new(format!("{action}: {what}"))
    })?;
    let pid = child.id() as libc::pid_t;
    drop(cmd); // closes our copies of the cgroup.procs files
    let code = match crate::container::wait(pid, TIMEOUT) {
        Ok(code) => code,
        Err(e) => {
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL);
            let _ = crate::sys::process::waitpid(pid);
            bail!("criu {action}: {e}, killed it; see {}", log_path.display());
        }
    };
    if code == 0 {
        return Ok(());
    }
    let how = if code > 128 {
        format!("killed by signal {}", code - 128)
    } else {
        format!("exit status {code}")
    };
    let why = first_error(&dirs.work.file(log_name))
        .map(|l| format!(": {l}"))
        .unwrap_or_default();
    bail!("criu {action} failed ({how}){why}; see {}", log_path.display())
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

    fn spec(json: &str) -> Spec {
        serde_json::from_str(json).unwrap()
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
        let mut args = Args::default();
        ok.common_args(&mut args);
        let args: Vec<String> = args.0.iter().map(|a| a.to_string_lossy().into_owned()).collect();
        assert_eq!(args, ["--manage-cgroups=strict", "--empty-ns", "net"]);
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
