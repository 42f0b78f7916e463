//! The container state store: one directory per container under `--root`,
//! holding `state.json` (written atomically) and, until `start`, the `exec.fifo`
//! the init process waits on. Commands that change a container hold an exclusive
//! flock on its directory; `state` and `list` read without locking.
//!
//! `create` commits a container by writing `state.json`. Until then the
//! directory holds `creating.json`, the same record written before anything
//! exists on the host (the cgroup path and systemd unit) and again with the
//! init's pid once it is cloned, so that whatever a killed `create` left can be
//! found and removed by `delete`.

use std::collections::HashMap;
use std::fs::File;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::bail;
use crate::error::{Context, Error, Result};
use crate::sys;

mod freeze_lock;
mod trust;

pub use freeze_lock::{clear_left_mark, FreezeLock};

pub use crate::{CACHE_DIR, DEFAULT_ROOT};
/// A committed container's record, in its directory.
pub const STATE_FILE: &str = "state.json";
/// The fifo a created init waits on until `start` opens it.
pub const FIFO: &str = "exec.fifo";
/// The record of a container that `create` has not committed yet.
pub const CREATING_FILE: &str = "creating.json";
const MAX_ID_LEN: usize = 1024;

/// A container's status, as the runtime spec names them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// A `create` is under way (or was killed midway: then `Stopped`).
    Creating,
    /// Built, its init waiting for `start`.
    Created,
    /// The container's program runs.
    Running,
    /// Its cgroup is frozen.
    Paused,
    /// Its init has exited.
    Stopped,
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = match self {
            Status::Creating => "creating",
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Stopped => "stopped",
        };
        f.write_str(s)
    }
}

/// What husk keeps about a container between commands.
#[derive(Serialize, Deserialize, Debug, Clone)]
#[serde(rename_all = "camelCase")]
pub struct Saved {
    /// The runtime spec version of the config.
    pub oci_version: String,
    /// The container's id.
    pub id: String,
    /// The init's pid (in the caller's pid namespace); 0 before it exists.
    pub pid: i32,
    /// Start time of the init process (clock ticks since boot), against pid reuse.
    pub start_time: u64,
    /// The bundle directory.
    pub bundle: PathBuf,
    /// The root filesystem, as an absolute path.
    pub rootfs: PathBuf,
    /// When it was created (RFC 3339, UTC).
    pub created: String,
    /// The name of the user who created it.
    pub owner: String,
    /// The config's annotations.
    #[serde(default)]
    pub annotations: HashMap<String, String>,
    /// The config's hooks, for start (poststart) and delete (poststop).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hooks: Option<oci_spec::runtime::Hooks>,
    /// The host's NOTIFY_SOCKET at create, which start relays to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notify_socket: Option<PathBuf>,
    /// The file name of the socket the container sends to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notify_name: Option<String>,
    /// The container's cgroup, as its driver describes it (`cgroup`,
    /// `cgroupExisted`, `freezer`, `systemdUnit`).
    #[serde(flatten)]
    pub cgroup: crate::cgroups::Record,
    /// Restored from a checkpoint by CRIU: its init never exec'd in this
    /// life (CRIU forks it), so it is `running`, never `created`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub restored: bool,
    /// What checkpoint records of the init's stdio (runc's
    /// `external_descriptors`), taken before the container's program runs:
    /// see `criu::own_stdio`. None with a terminal, and from older husks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stdio: Option<Vec<String>>,
    /// In a cgroup husk did not make: the id of the mount namespace the
    /// container made (see `container::members`), by which what it leaves
    /// there is told from the cgroup owner's processes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mount_namespace: Option<u64>,
    /// Read from `creating.json`: `create` has not committed the container.
    #[serde(skip)]
    pub provisional: bool,
}

/// The OCI state, plus runc's extra fields, as `state` prints it.
#[derive(Serialize, Debug)]
#[serde(rename_all = "camelCase")]
pub struct OciState<'a> {
    /// The runtime spec version of the config.
    pub oci_version: &'a str,
    /// The container's id.
    pub id: &'a str,
    /// The init's pid; 0 once stopped.
    pub pid: i32,
    /// The status now.
    pub status: Status,
    /// The bundle directory.
    pub bundle: &'a Path,
    /// The root filesystem (runc's extra field).
    pub rootfs: &'a Path,
    /// When it was created (runc's extra field).
    pub created: &'a str,
    /// Who created it (runc's extra field).
    pub owner: &'a str,
    /// The config's annotations.
    pub annotations: &'a HashMap<String, String>,
}

impl Saved {
    /// The state as hooks get it on stdin.
    pub fn hook_state(&self, status: &str) -> String {
        let mut v = serde_json::to_value(self.oci_state(Status::Running)).expect("state serialises");
        v["status"] = serde_json::Value::from(status);
        v.to_string()
    }

    /// The runtime spec's state document for this container at `status`.
    pub fn oci_state(&self, status: Status) -> OciState<'_> {
        OciState {
            oci_version: &self.oci_version,
            id: &self.id,
            pid: if status == Status::Stopped { 0 } else { self.pid },
            status,
            bundle: &self.bundle,
            rootfs: &self.rootfs,
            created: &self.created,
            owner: &self.owner,
            annotations: &self.annotations,
        }
    }

    /// Whether the init process is still the one we started.
    pub fn init_alive(&self) -> bool {
        self.init_stat().is_some()
    }

    /// Whether the init is alive and has not exec'd the container's program yet.
    pub fn init_before_exec(&self) -> bool {
        self.init_stat().is_some_and(|s| s.flags & sys::PF_FORKNOEXEC != 0)
    }

    /// Whether the init is exiting (its namespaces and root going away, new
    /// processes refused there): the container is stopping.
    pub fn init_exiting(&self) -> bool {
        self.init_stat().is_some_and(|s| s.flags & sys::PF_EXITING != 0)
    }

    fn init_stat(&self) -> Option<sys::ProcStat> {
        self.init_stat_even_ended().filter(sys::ProcStat::alive)
    }

    /// The init's stat, alive or a zombie not yet reaped.
    pub fn init_stat_even_ended(&self) -> Option<sys::ProcStat> {
        sys::process_stat(self.pid).filter(|s| s.start_time == self.start_time)
    }

    /// What is known of a container whose directory holds no record at all (a
    /// `create` killed right after making it).
    pub(crate) fn unrecorded(id: &str) -> Saved {
        Saved {
            oci_version: crate::spec::template::OCI_VERSION.to_string(),
            id: id.to_string(),
            pid: 0,
            start_time: 0,
            bundle: PathBuf::new(),
            rootfs: PathBuf::new(),
            created: String::new(),
            owner: String::new(),
            annotations: HashMap::new(),
            hooks: None,
            notify_socket: None,
            notify_name: None,
            cgroup: Default::default(),
            restored: false,
            stdio: None,
            mount_namespace: None,
            provisional: true,
        }
    }
}

/// Checks that `id` can name a container: a non-empty file name of at most
/// 1024 bytes of letters, digits and `._-+:@`.
pub fn validate_id(id: &str) -> Result<()> {
    if id.is_empty() {
        bail!("container id must not be empty");
    }
    if id.len() > MAX_ID_LEN {
        bail!("container id is longer than {MAX_ID_LEN} bytes");
    }
    if id == "." || id == ".." || id.contains('/') || id.contains('\0') {
        bail!("invalid container id \"{id}\": it must not contain '/' or be '.' or '..'");
    }
    if !id.chars().all(|c| c.is_ascii_alphanumeric() || "._-+:@".contains(c)) {
        bail!("invalid container id \"{id}\": use letters, digits and ._-+:@");
    }
    Ok(())
}

/// The state root (`--root`): one directory per container.
pub struct Store {
    root: PathBuf,
    /// Set once the root has passed [`Store::check_root`].
    root_checked: std::sync::OnceLock<()>,
}

/// A container's directory, locked for the lifetime of this value.
pub struct Locked {
    /// The container's directory.
    pub dir: PathBuf,
    _lock: File,
}

/// How long a command waits for another one (a `create` in a slow hook, say)
/// to let go of a container before it gives up.
const LOCK_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

fn lock_dir(dir: &Path) -> std::io::Result<File> {
    lock_dir_within(dir, LOCK_TIMEOUT)
}

/// How long a holder of a container's lock that is stopped (SIGSTOP, ^Z)
/// is waited for before the wait gives up and names it: nothing moves
/// until someone resumes or ends it (review 49b F1: `delete -f` waited the
/// whole minute for a stopped `create`).
const STOPPED_HOLDER_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

fn lock_dir_within(dir: &Path, timeout: std::time::Duration) -> std::io::Result<File> {
    let start = std::time::Instant::now();
    let mut holder_check = HolderCheck::new(start + STOPPED_HOLDER_WAIT);
    loop {
        let f = File::options()
            .read(true)
            .custom_flags(libc::O_DIRECTORY | libc::O_CLOEXEC)
            .open(dir)?;
        wait_for_flock(&f, start, timeout, &mut holder_check)?;
        // The holder we waited for may have removed the directory, and a
        // `create` made another at its path: the lock must be that one's.
        if still_at(&f, dir)? {
            return Ok(f);
        }
    }
}

/// Takes an exclusive flock on `f`, waiting until `timeout` has passed
/// since `start`, or (an error naming it) until `holder_check` finds its
/// holder stopped.
fn wait_for_flock(
    f: &File,
    start: std::time::Instant,
    timeout: std::time::Duration,
    holder_check: &mut HolderCheck,
) -> std::io::Result<()> {
    loop {
        match sys::cgroupfs::flock(f, libc::LOCK_EX | libc::LOCK_NB) {
            Ok(()) => return Ok(()),
            Err(e) if e.raw_os_error() != Some(libc::EWOULDBLOCK) => return Err(e),
            Err(_) => {}
        }
        if start.elapsed() > timeout {
            let why = format!("another husk command has held it for {timeout:?}{}", holder_of(f));
            return Err(std::io::Error::new(std::io::ErrorKind::TimedOut, why));
        }
        if let Some(pid) = holder_check.stopped_holder(f) {
            let why = match is_traced(pid) {
                true => format!(
                    "another husk command holds it and is stopped by its tracer: {}: detach the tracer or end it",
                    describe_process(pid)
                ),
                false => format!(
                    "another husk command holds it and is stopped: {}: resume it (kill -CONT {pid}) or end it",
                    describe_process(pid)
                ),
            };
            return Err(std::io::Error::new(std::io::ErrorKind::TimedOut, why));
        }
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
}

/// An exclusive flock on `f`, waited for as a container's lock is (see
/// [`wait_for_flock`]).
fn flock_within(f: &File, timeout: std::time::Duration) -> std::io::Result<()> {
    let start = std::time::Instant::now();
    wait_for_flock(f, start, timeout, &mut HolderCheck::new(start + STOPPED_HOLDER_WAIT))
}

/// When a lock wait next looks up its holder, to see whether it is stopped:
/// from [`STOPPED_HOLDER_WAIT`] on, at growing intervals counted from the
/// end of each lookup.
struct HolderCheck {
    next: std::time::Instant,
    interval: std::time::Duration,
}

impl HolderCheck {
    fn new(first: std::time::Instant) -> HolderCheck {
        HolderCheck {
            next: first,
            interval: STOPPED_HOLDER_WAIT / 8,
        }
    }

    /// The holder of `f`'s lock when it is due for a lookup and stopped.
    fn stopped_holder(&mut self, f: &File) -> Option<libc::pid_t> {
        if std::time::Instant::now() < self.next {
            return None;
        }
        let stopped = lock_holder(f).filter(|&pid| is_stopped(pid));
        self.next = std::time::Instant::now() + self.interval;
        self.interval = (self.interval * 2).min(std::time::Duration::from_secs(4));
        stopped
    }
}

/// How much of /proc/locks a holder lookup reads: any local user can fill it
/// with locks of their own (review 49c F2: 380,000 locks took 16 s to read
/// whole), and each page read takes the kernel's lock table for writing,
/// which can wait for an RCU grace period (256 KiB took 2.4 s under such a
/// flood). A holder past this (~900 lines) is not named; the wait goes on
/// as before.
const LOCKS_READ_LIMIT: u64 = 64 * 1024;

/// The pid of the process that holds the flock on the file or directory open as
/// `f`, as /proc/locks names it (0 there: not in our pid namespace).
fn lock_holder(f: &File) -> Option<libc::pid_t> {
    use std::io::Read;
    use std::os::unix::fs::MetadataExt;
    let m = f.metadata().ok()?;
    let file = format!("{:02x}:{:02x}:{}", libc::major(m.dev()), libc::minor(m.dev()), m.ino());
    let mut locks = Vec::new();
    File::open("/proc/locks")
        .ok()?
        .take(LOCKS_READ_LIMIT)
        .read_to_end(&mut locks)
        .ok()?;
    // Whole lines only: the limit may have cut the last one.
    let text = String::from_utf8_lossy(&locks);
    text.split_inclusive('\n')
        .filter(|l| l.ends_with('\n'))
        .find_map(|line| {
            // "1: FLOCK  ADVISORY  WRITE 1234 fd:01:5678 0 EOF"; waiters have "->".
            let fields: Vec<&str> = line.split_whitespace().collect();
            match fields.as_slice() {
                [_, "FLOCK", _, _, pid, at, ..] if *at == file => pid.parse().ok().filter(|&p| p > 0),
                _ => None,
            }
        })
}

/// Stopped by a signal (`T`), or by a tracer (`t`: under a debugger or
/// strace, review 56d).
fn is_stopped(pid: libc::pid_t) -> bool {
    sys::process_stat(pid).is_some_and(|s| matches!(s.state, b'T' | b't'))
}

/// Stopped by a tracer, which SIGCONT does not resume.
fn is_traced(pid: libc::pid_t) -> bool {
    sys::process_stat(pid).is_some_and(|s| s.state == b't')
}

/// ": pid N (its command line), stopped" of the holder of `f`'s lock, or
/// nothing when it cannot be told.
fn holder_of(f: &File) -> String {
    match lock_holder(f) {
        Some(pid) if is_stopped(pid) => format!(": {}, stopped", describe_process(pid)),
        Some(pid) => format!(": {}", describe_process(pid)),
        None => String::new(),
    }
}

/// "pid N (its command line)", the command line's first words without
/// control characters.
fn describe_process(pid: libc::pid_t) -> String {
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    let words: Vec<String> = cmdline
        .split(|&b| b == 0)
        .filter(|w| !w.is_empty())
        .take(8)
        .map(|w| crate::log::printable(&String::from_utf8_lossy(w)))
        .collect();
    format!("pid {pid} ({})", words.join(" "))
}

/// Whether the directory open as `f` is still the one at `path`.
fn still_at(f: &File, path: &Path) -> std::io::Result<bool> {
    use std::os::unix::fs::MetadataExt;
    let (held, now) = (f.metadata()?, std::fs::metadata(path)?);
    Ok((held.dev(), held.ino()) == (now.dev(), now.ino()))
}

impl Store {
    /// The store under `root`, which is made when the first container is.
    pub fn new(root: PathBuf) -> Store {
        Store {
            root,
            root_checked: std::sync::OnceLock::new(),
        }
    }

    /// The state root.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The directory of container `id`.
    pub fn dir(&self, id: &str) -> PathBuf {
        self.root.join(id)
    }

    /// Refuses a state root that another user controls: one who can write it,
    /// or a directory above it, or owns a link on the way, can plant a
    /// container there whose state.json names hooks that `delete` runs as
    /// the caller, or a pid that `exec` joins, or swap the root for their own
    /// between two steps of a command (every directory on the way is checked:
    /// see `trust::check`). runc and crun take any directory; a root under a
    /// directory a user made in /tmp is the trap. Checked once per command,
    /// before anything there is read. Whether the root exists: where it does
    /// not, nothing further is looked for there (another user might make it
    /// meanwhile); `create` makes it first ([`Store::make_root`]).
    fn check_root(&self) -> Result<bool> {
        if self.root_checked.get().is_some() {
            return Ok(true);
        }
        let exists = trust::check(&self.absolute_root()?).map_err(|why| self.untrusted(why))?;
        if exists {
            let _ = self.root_checked.set(());
        }
        Ok(exists)
    }

    /// Makes the state root where it is missing, each directory only once
    /// the walk of `Store::check_root` has found its parent trusted
    /// (`trust::make`): before `create` reads or writes anything there (the
    /// seccomp cache, the container's directory).
    pub fn make_root(&self) -> Result<()> {
        if self.root_checked.get().is_some() {
            return Ok(());
        }
        match trust::make(&self.absolute_root()?) {
            Ok(()) => {
                let _ = self.root_checked.set(());
                Ok(())
            }
            Err(trust::Refusal::Untrusted(why)) => Err(self.untrusted(why)),
            Err(trust::Refusal::Unmade(why)) => bail!("state root (--root) {}: {why}", self.root.display()),
        }
    }

    fn absolute_root(&self) -> Result<PathBuf> {
        match self.root.is_absolute() {
            true => Ok(self.root.clone()),
            false => Ok(std::env::current_dir()
                .context(|| "current directory".into())?
                .join(&self.root)),
        }
    }

    fn untrusted(&self, why: String) -> Error {
        Error::new(format!(
            "state root (--root) {}: {why}: another user could plant containers there",
            self.root.display()
        ))
    }

    /// The checked root, or the error of a container that is not there.
    fn root_holding(&self, id: &str) -> Result<()> {
        match self.check_root()? {
            true => Ok(()),
            false => Err(Error::container_not_found(id).with_errno(libc::ENOENT)),
        }
    }

    /// Makes the directory of a new container, locked; exactly one of two
    /// racing creates wins. It is made and locked under a name of
    /// `STAGING_DIR`, then renamed to the id (never over another): no
    /// command ever finds it there unlocked and without a record, as one a
    /// killed `create` left (review 59: `state` called it `stopped`).
    pub fn create(&self, id: &str) -> Result<Locked> {
        validate_id(id)?;
        self.make_root()?;
        let dir = self.dir(id);
        if dir.symlink_metadata().is_ok() {
            return Err(Error::container_exists(id).with_errno(libc::EEXIST));
        }
        let (staged, lock) = self.stage()?;
        match sys::fs::rename_no_replace(&staged, &dir) {
            Ok(()) => Ok(Locked { dir, _lock: lock }),
            Err(e) => {
                let _ = std::fs::remove_dir_all(&staged);
                match e.raw_os_error() {
                    Some(libc::EEXIST | libc::ENOTEMPTY) => Err(Error::container_exists(id).with_errno(libc::EEXIST)),
                    _ => Err(e).context(|| format!("create {}", dir.display())),
                }
            }
        }
    }

    /// A new container's directory, locked, under a random name in
    /// `STAGING_DIR`. The owner's alone: the exec fifo inside must be
    /// writable by the init (see create), which reopens it through its own
    /// fd and needs no way through this directory (nor does it bind the
    /// NOTIFY_SOCKET directory inside by path); another user who could
    /// reach it could write a false error into it, or close it to fake an
    /// exec.
    fn stage(&self) -> Result<(PathBuf, File)> {
        let staging = self.root.join(STAGING_DIR);
        match std::fs::DirBuilder::new().mode(0o700).create(&staging) {
            Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => {
                return Err(e).context(|| format!("create {}", staging.display()))
            }
            _ if !staging.symlink_metadata().is_ok_and(|m| m.is_dir()) => {
                bail!("state root (--root): {} is not a directory", staging.display())
            }
            _ => {}
        }
        sweep_staging(&staging);
        let name = sys::fs::random_name("").context(|| "random name".into())?;
        let dir = staging.join(name);
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(&dir)
            .context(|| format!("create {}", dir.display()))?;
        let made = lock_dir(&dir)
            .context(|| format!("lock {}", dir.display()))
            .and_then(|lock| FreezeLock::make(&dir).map(|()| lock));
        match made {
            Ok(lock) => Ok((dir, lock)),
            Err(e) => {
                let _ = std::fs::remove_dir_all(&dir);
                Err(e)
            }
        }
    }

    /// Locks an existing container's directory.
    pub fn lock(&self, id: &str) -> Result<Locked> {
        validate_id(id)?;
        self.root_holding(id)?;
        let dir = self.dir(id);
        let lock = lock_dir(&dir).map_err(|e| not_found_or(e, id, &dir))?;
        Ok(Locked { dir, _lock: lock })
    }

    /// Locks container `id` if no other command holds it now; `None` if one does.
    pub fn try_lock(&self, id: &str) -> Result<Option<Locked>> {
        validate_id(id)?;
        self.root_holding(id)?;
        let dir = self.dir(id);
        match lock_dir_within(&dir, std::time::Duration::ZERO) {
            Ok(lock) => Ok(Some(Locked { dir, _lock: lock })),
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => Ok(None),
            Err(e) => Err(not_found_or(e, id, &dir)),
        }
    }

    /// The committed state of container `id`.
    pub fn load(&self, id: &str) -> Result<Saved> {
        validate_id(id)?;
        self.root_holding(id)?;
        load_from(&self.dir(id), id)
    }

    /// The committed state, or else what a `create` recorded before it.
    pub fn load_any(&self, id: &str) -> Result<Saved> {
        validate_id(id)?;
        self.root_holding(id)?;
        load_any(&self.dir(id), id)
    }

    /// The ids of the containers under the root, sorted.
    pub fn ids(&self) -> Result<Vec<String>> {
        if !self.check_root()? {
            return Ok(Vec::new());
        }
        let entries = match std::fs::read_dir(&self.root) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e).context(|| format!("read {}", self.root.display())),
        };
        let mut ids: Vec<String> = entries
            .filter_map(|e| e.ok())
            .filter_map(|e| e.file_name().into_string().ok())
            .filter(|name| validate_id(name).is_ok())
            .collect();
        ids.sort();
        Ok(ids)
    }
}

fn not_found_or(e: std::io::Error, id: &str, dir: &Path) -> Error {
    if e.kind() == std::io::ErrorKind::NotFound {
        Error::container_not_found(id).with_errno(libc::ENOENT)
    } else {
        let errno = e.raw_os_error();
        let err = Error::new(format!("{}: {e}", dir.display()));
        match errno {
            Some(n) => err.with_errno(n),
            None => err,
        }
    }
}

/// `state.json`, else `creating.json` (marked provisional), else a blank
/// provisional record for a directory that exists without either.
pub fn load_any(dir: &Path, id: &str) -> Result<Saved> {
    match load_from(dir, id) {
        Err(_) if !dir.join(STATE_FILE).exists() && dir.is_dir() => {}
        other => return other,
    }
    let path = dir.join(CREATING_FILE);
    let mut saved = match std::fs::read(&path) {
        // Written atomically, so unreadable only if tampered with: still removable.
        Ok(text) => serde_json::from_slice(&text).unwrap_or_else(|_| Saved::unrecorded(id)),
        Err(_) => Saved::unrecorded(id),
    };
    saved.provisional = true;
    Ok(saved)
}

/// The committed state (`state.json`) in `dir`.
pub fn load_from(dir: &Path, id: &str) -> Result<Saved> {
    let path = dir.join(STATE_FILE);
    let text = std::fs::read(&path).map_err(|e| not_found_or(e, id, dir))?;
    serde_json::from_slice(&text).context(|| format!("corrupt state {}", path.display()))
}

impl Locked {
    /// Writes the committed state.
    pub fn save(&self, saved: &Saved) -> Result<()> {
        let json = serde_json::to_vec(saved).expect("state serialises");
        write_own(&self.dir.join(STATE_FILE), &json)
    }

    /// The committed state.
    pub fn load(&self, id: &str) -> Result<Saved> {
        load_from(&self.dir, id)
    }

    /// The committed state, or else the provisional record.
    pub fn load_any(&self, id: &str) -> Result<Saved> {
        load_any(&self.dir, id)
    }

    /// Writes the provisional record of a container being created.
    pub fn record(&self, saved: &Saved) -> Result<()> {
        let json = serde_json::to_vec(saved).expect("state serialises");
        write_own(&self.dir.join(CREATING_FILE), &json)
    }

    /// Commits the container: its state, then the provisional record goes.
    pub fn commit(&self, saved: &Saved) -> Result<()> {
        self.save(saved)?;
        let _ = std::fs::remove_file(self.dir.join(CREATING_FILE));
        Ok(())
    }

    /// The container's status now (see [`status_of`]).
    pub fn status(&self, saved: &Saved) -> Status {
        status_of(&self.dir, saved)
    }

    /// The fd that holds the lock (closed in the init, which must not hold it).
    pub fn lock_fd(&self) -> std::os::fd::RawFd {
        self._lock.as_raw_fd()
    }

    /// Removes the directory and everything in it; the lock goes with it.
    pub fn remove(self) -> Result<()> {
        crate::sys::fs::remove_dir_all_forcing(&self.dir).context(|| format!("remove {}", self.dir.display()))
    }

    /// As [`Locked::remove`], its subdirectory `first` (one the container
    /// could write: the notify directory) before the rest: while that cannot
    /// be removed, the records stay, and the container is listed with its
    /// pid and bundle (review 47d F2).
    pub fn remove_after(self, first: Option<&str>) -> Result<()> {
        if let Some(sub) = first {
            let dir = self.dir.join(sub);
            match crate::sys::fs::remove_dir_all_forcing(&dir) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    return Err(e).context(|| format!("remove {}", dir.display()))
                }
                _ => {}
            }
        }
        self.remove()
    }
}

/// The status, from the init itself: `created` until it has exec'd the
/// program, whatever a killed `start` left in the directory, and `paused`
/// whenever its cgroup is frozen (but by a `kill --all` that died before
/// its thaw: that freeze is undone here). An uncommitted
/// container is `creating` while a command holds its lock, else `stopped`
/// (its init dies with the `create` that made it), unless `restore`
/// recorded the processes criu restored, which outlive a killed restore:
/// then they tell.
pub fn status_of(dir: &Path, saved: &Saved) -> Status {
    if saved.provisional && is_locked(dir) {
        return Status::Creating;
    }
    if saved.provisional && !saved.restored {
        return Status::Stopped;
    }
    let Some(init) = saved.init_stat() else {
        return Status::Stopped;
    };
    let before_exec = !saved.restored && init.flags & sys::PF_FORKNOEXEC != 0;
    // A created init waits in `S` (the fifo's open); frozen by the v1
    // freezer, it is `D` (v2's freezes it in `S`: its file is read always).
    // `list` of 200 created containers took 1.36 times as long when every
    // v1 freezer.state was read.
    let v1_freezer = saved
        .cgroup
        .freezer
        .as_deref()
        .is_some_and(|f| f.ends_with("freezer.state"));
    if before_exec && init.state == b'S' && v1_freezer {
        return Status::Created;
    }
    // Frozen first: runc calls a paused created container `paused` too.
    let frozen = saved
        .cgroup
        .freezer
        .as_deref()
        .filter(|f| crate::cgroups::is_frozen_file(f));
    if frozen.is_some_and(|f| !freeze_lock::thaw_if_left_frozen(dir, f)) {
        Status::Paused
    } else if before_exec {
        Status::Created
    } else {
        Status::Running
    }
}

/// Where `create` makes a container's directory before it takes the id
/// (`Store::stage`); '#': never a container id.
const STAGING_DIR: &str = "#new";

/// How old a staged directory no one holds must be to be taken for one a
/// killed `create` left: a younger one may be between its mkdir and its lock.
const STAGING_GRACE: std::time::Duration = std::time::Duration::from_secs(10);

/// Removes what `create`s killed while staging left in `staging`: a
/// directory no one holds, made more than `STAGING_GRACE` ago.
fn sweep_staging(staging: &Path) {
    let Ok(entries) = std::fs::read_dir(staging) else {
        return;
    };
    for entry in entries.flatten().filter(is_old_directory) {
        if let Ok(lock) = lock_dir_within(&entry.path(), std::time::Duration::ZERO) {
            let _ = sys::fs::remove_dir_all_forcing(&entry.path());
            drop(lock);
        }
    }
}

/// A directory (not a link to one) last changed more than `STAGING_GRACE` ago.
fn is_old_directory(entry: &std::fs::DirEntry) -> bool {
    let changed = entry
        .metadata()
        .ok()
        .filter(|m| m.is_dir())
        .and_then(|m| m.modified().ok());
    let age = changed.and_then(|t| t.elapsed().ok());
    age.is_some_and(|age| age > STAGING_GRACE)
}

/// Whether a command holds the directory's lock (tried, never waited for).
fn is_locked(dir: &Path) -> bool {
    let Ok(f) = File::options()
        .read(true)
        .custom_flags(libc::O_DIRECTORY | libc::O_CLOEXEC)
        .open(dir)
    else {
        return false;
    };
    // Closing the file drops the shared lock, if we got it.
    let r = sys::cgroupfs::flock(&f, libc::LOCK_SH | libc::LOCK_NB);
    r.is_err_and(|e| e.raw_os_error() == Some(libc::EWOULDBLOCK))
}

/// Writes a file of a container's state directory, as [`write_atomic`].
fn write_own(path: &Path, data: &[u8]) -> Result<()> {
    crate::sys::fs::write_atomic_own(path, data, 0o600).context(|| format!("write {}", path.display()))
}

/// Writes a file so that readers see the old content or the new, never a part.
pub fn write_atomic(path: &Path, data: &[u8], mode: u32) -> Result<()> {
    crate::sys::fs::write_atomic(path, data, mode).context(|| format!("write {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids() {
        for ok in ["a", "abc-123_x.y", "k8s.io:pod@1", &"x".repeat(1024)] {
            validate_id(ok).unwrap();
        }
        for bad in ["", ".", "..", "a/b", "../x", "a b", "a\0b", &"x".repeat(1025)] {
            assert!(validate_id(bad).is_err(), "{bad:?}");
        }
    }

    fn saved(pid: i32, start_time: u64) -> Saved {
        Saved {
            oci_version: "1.2.0".into(),
            pid,
            start_time,
            bundle: "/b".into(),
            rootfs: "/b/rootfs".into(),
            created: "T".into(),
            owner: "root".into(),
            provisional: false,
            ..Saved::unrecorded("t")
        }
    }

    #[test]
    fn a_lock_held_elsewhere_is_waited_for_within_a_bound() {
        let dir = std::env::temp_dir().join(format!("husk-lock-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let held = lock_dir(&dir).unwrap();
        let start = std::time::Instant::now();
        let e = lock_dir_within(&dir, std::time::Duration::from_millis(100)).unwrap_err();
        assert!(e.to_string().contains("another husk command has held it"), "{e}");
        assert!(start.elapsed() < std::time::Duration::from_secs(5));
        drop(held);
        lock_dir_within(&dir, std::time::Duration::from_millis(100)).unwrap();
        std::fs::remove_dir(&dir).unwrap();
    }

    /// Review 49b F1: a `delete -f` waited a minute for a `create` stopped
    /// with SIGSTOP, then failed without saying by whom.
    #[test]
    fn a_stopped_holder_of_the_lock_is_named_and_not_waited_for() {
        // A bidi override in its command line stays an escape (review 49c F3).
        let dir = std::env::temp_dir().join(format!("husk-lock-stopped-{}-\u{202e}x", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut holder = std::process::Command::new("flock")
            .arg("-o")
            .arg(&dir)
            .arg("cat")
            .stdin(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let pid = holder.id() as libc::pid_t;
        let held = (0..500).any(|_| {
            std::thread::sleep(std::time::Duration::from_millis(10));
            lock_dir_within(&dir, std::time::Duration::ZERO).is_err()
        });
        assert!(held, "flock never took the lock");
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::SIGSTOP).unwrap();
        let start = std::time::Instant::now();
        let e = lock_dir_within(&dir, std::time::Duration::from_secs(30)).unwrap_err();
        let waited = start.elapsed();
        let _ = holder.kill();
        drop(holder.stdin.take());
        let _ = holder.wait();
        std::fs::remove_dir(&dir).unwrap();
        let want = format!("holds it and is stopped: pid {pid} (flock -o ");
        assert!(e.to_string().contains(&want), "{e}");
        assert!(e.to_string().contains(&format!("kill -CONT {pid}")), "{e}");
        assert!(e.to_string().contains("-\\u{202e}x cat)"), "{e}");
        assert!(!e.to_string().contains('\u{202e}'), "{e}");
        assert!(waited < std::time::Duration::from_secs(10), "waited {waited:?}");
    }

    #[test]
    fn reused_pid_reads_as_stopped() {
        let me = std::process::id() as i32;
        let (start, _) = sys::process_start(me).unwrap();
        let dir = std::env::temp_dir();
        assert_eq!(status_of(&dir.join("nonexistent"), &saved(me, start)), Status::Running);
        assert_eq!(status_of(&dir, &saved(me, start + 1)), Status::Stopped);
        assert_eq!(status_of(&dir, &saved(0, 0)), Status::Stopped);
    }

    /// Review 59: between the mkdir of a container's directory and its
    /// lock, `state` called it `stopped`, as one a killed create left. It
    /// now takes its name by a rename, locked and with its files made.
    #[test]
    fn a_container_directory_takes_its_id_already_locked() {
        let store = Store::new(std::env::temp_dir().join(format!("husk-state-staged-{}", std::process::id())));
        store.make_root().unwrap();
        let watch = sys::fs::DirWatch::new(store.root(), true);
        let dir = store.dir("c");
        let seen = std::thread::spawn(move || loop {
            if let Some((_, mask)) = watch.events().into_iter().find(|(name, _)| name == "c") {
                return (mask, is_locked(&dir), dir.join(freeze_lock::LOCK_FILE).exists());
            }
        });
        let locked = store.create("c").unwrap();
        let (mask, was_locked, had_files) = seen.join().unwrap();
        assert_eq!(
            mask & libc::IN_MOVED_TO,
            libc::IN_MOVED_TO,
            "made in place, not renamed in"
        );
        assert!(was_locked && had_files, "locked {was_locked}, freeze.lock {had_files}");
        assert!(matches!(store.create("c").map(drop), Err(e) if e.errno() == Some(libc::EEXIST)));
        drop(locked);
        let staged: Vec<_> = std::fs::read_dir(store.root().join(STAGING_DIR)).unwrap().collect();
        assert!(staged.is_empty(), "left staged: {staged:?}");
        std::fs::remove_dir_all(store.root()).unwrap();
    }

    /// What a create killed while staging left goes with the next create;
    /// a staged directory that is held, or young, stays.
    #[test]
    fn a_staged_directory_a_killed_create_left_is_swept() {
        let store = Store::new(std::env::temp_dir().join(format!("husk-state-sweep-{}", std::process::id())));
        let staging = store.root().join(STAGING_DIR);
        let [left, held, young] = ["left", "held", "young"].map(|n| staging.join(n));
        for d in [&left, &held, &young] {
            std::fs::create_dir_all(d).unwrap();
            std::fs::write(d.join(freeze_lock::LOCK_FILE), "").unwrap();
        }
        let hour_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(3600);
        for d in [&left, &held] {
            File::open(d).unwrap().set_modified(hour_ago).unwrap();
        }
        let holder = lock_dir(&held).unwrap();
        let locked = store.create("c").unwrap();
        assert!(!left.exists(), "a killed create's staged directory stays");
        assert!(held.exists() && young.exists(), "a staged directory in use was swept");
        drop((locked, holder));
        std::fs::remove_dir_all(store.root()).unwrap();
    }

    #[test]
    fn an_uncommitted_container_is_creating_while_locked_and_stopped_after() {
        let store = Store::new(std::env::temp_dir().join(format!("husk-state-test-{}", std::process::id())));
        let locked = store.create("c").unwrap();
        let blank = store.load_any("c").unwrap();
        assert!(blank.provisional && blank.pid == 0);
        locked.record(&saved(std::process::id() as i32, 1)).unwrap();
        let recorded = store.load_any("c").unwrap();
        assert!(recorded.provisional && recorded.bundle == Path::new("/b"));
        assert_eq!(status_of(&locked.dir, &recorded), Status::Creating);
        assert!(store.load("c").is_err(), "other commands do not see it");
        let dir = locked.dir.clone();
        drop(locked);
        assert_eq!(status_of(&dir, &recorded), Status::Stopped);
        let locked = store.lock("c").unwrap();
        locked.commit(&saved(1, 1)).unwrap();
        assert!(!store.load_any("c").unwrap().provisional);
        assert!(!dir.join(CREATING_FILE).exists());
        locked.remove().unwrap();
        assert!(store.load_any("c").is_err());
        std::fs::remove_dir_all(store.root()).unwrap();
    }

    /// The notify directory a container could write goes first: while it
    /// cannot be removed (here a file in it made immutable, which root cannot
    /// unlink either), the state is still there to say what the container was.
    #[test]
    #[allow(unsafe_code)]
    fn a_notify_directory_that_cannot_go_keeps_the_state() {
        let store = Store::new(std::env::temp_dir().join(format!("husk-remove-after-{}", std::process::id())));
        let locked = store.create("c").unwrap();
        locked.commit(&saved(1, 1)).unwrap();
        let stuck = locked.dir.join("notify/stuck");
        std::fs::create_dir_all(locked.dir.join("notify")).unwrap();
        let file = std::fs::File::create(&stuck).unwrap();
        const FS_IMMUTABLE_FL: libc::c_long = 0x10;
        // SAFETY: FS_IOC_SETFLAGS reads one long from the pointer.
        let set = |flags: libc::c_long| unsafe { libc::ioctl(file.as_raw_fd(), libc::FS_IOC_SETFLAGS, &flags) };
        if set(FS_IMMUTABLE_FL) != 0 {
            drop(locked);
            std::fs::remove_dir_all(store.root()).unwrap();
            return eprintln!("skipped: no immutable files here ({})", std::io::Error::last_os_error());
        }
        let removed = locked.remove_after(Some("notify"));
        let still = store.load("c");
        set(0);
        std::fs::remove_dir_all(store.root()).unwrap();
        assert!(removed.is_err(), "an immutable file was removed");
        assert_eq!(still.unwrap().pid, 1, "the state went before the notify directory");
    }

    /// A command that waited for the lock while its holder removed the
    /// container, and a `create` made another of the same id, gets the new
    /// one's lock, not that of the directory that is gone.
    #[test]
    fn a_lock_waited_for_is_that_of_the_directory_at_the_path_now() {
        let root = std::env::temp_dir().join(format!("husk-lock-moved-{}", std::process::id()));
        let store = Store::new(root.clone());
        let first = store.create("c").unwrap();
        let waiter = {
            let store = Store::new(root.clone());
            std::thread::spawn(move || {
                use std::os::unix::fs::MetadataExt;
                let locked = store.lock("c").unwrap();
                let held = std::fs::metadata(format!("/proc/self/fd/{}", locked.lock_fd())).unwrap();
                (held.dev(), held.ino())
            })
        };
        std::thread::sleep(std::time::Duration::from_millis(50));
        let dir = first.dir.clone();
        std::fs::remove_dir_all(&dir).unwrap();
        std::fs::create_dir(&dir).unwrap();
        drop(first);
        use std::os::unix::fs::MetadataExt;
        let now = std::fs::metadata(&dir).unwrap();
        assert_eq!(waiter.join().unwrap(), (now.dev(), now.ino()));
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn an_uncommitted_restore_whose_processes_live_is_running() {
        // A restore killed after recording what criu restored: no lock.
        let me = std::process::id() as i32;
        let (start, _) = sys::process_start(me).unwrap();
        let unlocked = std::env::temp_dir().join("nonexistent");
        let mut s = saved(me, start);
        s.provisional = true;
        assert_eq!(
            status_of(&unlocked, &s),
            Status::Stopped,
            "a create's init dies with it"
        );
        s.restored = true;
        assert_eq!(status_of(&unlocked, &s), Status::Running);
        s.start_time += 1;
        assert_eq!(status_of(&unlocked, &s), Status::Stopped, "gone (its pid reused)");
    }

    #[test]
    fn stopped_state_has_pid_zero() {
        let s = saved(42, 1);
        let v = serde_json::to_value(s.oci_state(Status::Stopped)).unwrap();
        assert_eq!(v["pid"], 0);
        assert_eq!(v["status"], "stopped");
        assert_eq!(v["ociVersion"], "1.2.0");
        assert!(v["annotations"].is_object());
    }

    #[test]
    fn states_of_older_husks_own_their_cgroup() {
        let mut v = serde_json::to_value(saved(1, 1)).unwrap();
        v["cgroup"] = "/husk/t".into();
        assert!(v.get("cgroupExisted").is_none());
        let old: Saved = serde_json::from_value(v.clone()).unwrap();
        assert!(old.cgroup.owns());
        assert_eq!(old.cgroup.path.as_deref(), Some("/husk/t"));
        v["cgroupExisted"] = serde_json::json!(["/sys/fs/cgroup/pids/x"]);
        let shared: Saved = serde_json::from_value(v).unwrap();
        assert!(!shared.cgroup.owns());
    }

    #[test]
    fn the_cgroup_record_keeps_the_keys_of_older_husks() {
        let mut s = saved(1, 1);
        s.cgroup = crate::cgroups::Record {
            path: Some("/husk/t".into()),
            existed: vec!["/sys/fs/cgroup/pids/husk/t".into()],
            freezer: Some("/sys/fs/cgroup/freezer/husk/t/freezer.state".into()),
            systemd_unit: Some(crate::cgroups::systemd::Unit {
                name: "husk-t.scope".into(),
                slice: "system.slice".into(),
                user: false,
            }),
            device_nodes: vec![crate::cgroups::resources::DeviceNode {
                kind: 'c',
                major: 10,
                minor: 229,
            }],
        };
        let v = serde_json::to_value(&s).unwrap();
        assert_eq!(v["cgroup"], "/husk/t");
        assert_eq!(v["cgroupExisted"][0], "/sys/fs/cgroup/pids/husk/t");
        assert_eq!(v["freezer"], "/sys/fs/cgroup/freezer/husk/t/freezer.state");
        assert_eq!(v["systemdUnit"]["name"], "husk-t.scope");
        assert_eq!(
            v["deviceNodes"][0],
            serde_json::json!({"kind": "c", "major": 10, "minor": 229})
        );
        let back: Saved = serde_json::from_value(v).unwrap();
        assert_eq!(back.cgroup, s.cgroup);
        let none = serde_json::to_value(saved(1, 1)).unwrap();
        for key in ["cgroup", "cgroupExisted", "freezer", "systemdUnit", "deviceNodes"] {
            assert!(none.get(key).is_none(), "{key} written without a cgroup");
        }
    }
}
