//! Cgroups: the hierarchies of this host as /proc/self/mountinfo shows them,
//! a container's cgroup in them (`Cgroup`), what its record keeps of it, and
//! moving a process into the cgroups of another (for `exec`). The drivers that
//! make and manage a container's cgroup (cgroupfs v1 and v2, systemd, none)
//! are in `driver`; `resources` plans the file writes of `linux.resources`;
//! `exec` says where an exec process goes (`exec --cgroup`).

pub mod bpf;
pub mod dbus;
pub mod driver;
pub mod exec;
pub mod place;
pub mod resources;
pub mod systemd;
mod tree;

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::bail;
use crate::cgroups::resources::{DeviceRule, Tolerate, Write};
use crate::error::{Context, Error, Result};
use crate::sys::cgroup_root::CgroupRoot;

pub use driver::Driver;
pub use tree::{pids_in, thaw_below};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hierarchy {
    /// The directory name under /sys/fs/cgroup: `memory`, `cpu,cpuacct`, `unified`.
    pub name: String,
    pub mountpoint: PathBuf,
    /// Mount data naming the hierarchy: `memory`, `name=systemd`; empty for cgroup2.
    pub controllers: String,
    pub v2: bool,
}

/// The cgroup hierarchies mounted under /sys/fs/cgroup (or cgroup2 on it).
pub fn hierarchies() -> Result<Vec<Hierarchy>> {
    let info = crate::sys::fs::read_proc("/proc/self/mountinfo").context(|| "read /proc/self/mountinfo".into())?;
    let known = crate::sys::fs::read_proc("/proc/cgroups").unwrap_or_default();
    Ok(parse_mountinfo(&info, &known))
}

fn parse_mountinfo(info: &str, known: &str) -> Vec<Hierarchy> {
    let is_controller = |o: &str| o.starts_with("name=") || known.lines().any(|l| l.split('\t').next() == Some(o));
    let mut out = Vec::new();
    for line in info.lines() {
        let Some((pre, post)) = line.split_once(" - ") else {
            continue;
        };
        let mountpoint = pre.split(' ').nth(4).unwrap_or("");
        let mut post = post.split(' ');
        let fstype = post.next().unwrap_or("");
        let options = post.nth(1).unwrap_or("");
        if fstype != "cgroup" && fstype != "cgroup2" {
            continue;
        }
        let name = match mountpoint.strip_prefix("/sys/fs/cgroup") {
            Some("") => String::new(),
            Some(rest) if rest.starts_with('/') && !rest[1..].contains('/') => rest[1..].to_string(),
            _ => continue,
        };
        let controllers: Vec<&str> = options.split(',').filter(|o| is_controller(o)).collect();
        out.push(Hierarchy {
            name,
            mountpoint: PathBuf::from(mountpoint),
            controllers: controllers.join(","),
            v2: fstype == "cgroup2",
        });
    }
    out
}

/// A process's path in hierarchy `h`, from its /proc/PID/cgroup text.
pub fn path_in(proc_cgroup: &str, h: &Hierarchy) -> Option<String> {
    proc_cgroup.lines().find_map(|line| {
        let mut parts = line.splitn(3, ':');
        let (_, ctrls, path) = (parts.next()?, parts.next()?, parts.next()?);
        let same = if h.v2 {
            ctrls.is_empty()
        } else {
            let mut a: Vec<&str> = ctrls.split(',').collect();
            let mut b: Vec<&str> = h.controllers.split(',').collect();
            a.sort_unstable();
            b.sort_unstable();
            !ctrls.is_empty() && a == b
        };
        same.then(|| path.to_string())
    })
}

/// Moves `pid` into every cgroup that `of` is in.
pub fn join_cgroups_of(pid: libc::pid_t, of: libc::pid_t) -> Result<()> {
    let theirs =
        crate::sys::fs::read_proc(format!("/proc/{of}/cgroup")).context(|| format!("read /proc/{of}/cgroup"))?;
    let ours = crate::sys::fs::read_proc("/proc/self/cgroup").unwrap_or_default();
    for h in hierarchies()? {
        let Some(path) = path_in(&theirs, &h) else { continue };
        if path_in(&ours, &h).as_deref() == Some(path.as_str()) {
            continue;
        }
        let procs = h.mountpoint.join(path.trim_start_matches('/')).join("cgroup.procs");
        std::fs::write(&procs, pid.to_string()).context(|| format!("join cgroup {}", procs.display()))?;
    }
    Ok(())
}

/// Whether /sys/fs/cgroup itself is cgroup2 (a unified host).
pub fn is_unified() -> bool {
    use nix::sys::statfs::{statfs, CGROUP2_SUPER_MAGIC};
    statfs("/sys/fs/cgroup").is_ok_and(|st| st.filesystem_type() == CGROUP2_SUPER_MAGIC)
}

/// `linux.cgroupsPath` as runc reads it: absolute as is, relative under husk's
/// own cgroup, empty as /husk/ID (/husk/root=HASH/ID for a state root other
/// than the default one, since ids are unique only within a root). The '='
/// no container id may hold keeps a root's directory apart from the default
/// root's containers: without it, a container named like another root's HASH
/// got that root's directory (its limits over all that root's containers, its
/// `delete -f` killing them), or a root's containers were made inside it.
/// systemd's slice:prefix:name is `systemd::parse_path`'s.
pub fn resolve_path(configured: &str, id: &str, root: &Path) -> Result<String> {
    if configured.contains(':') && !configured.starts_with('/') {
        bail!("linux.cgroupsPath {configured}: slice:prefix:name paths need --systemd-cgroup");
    }
    if configured.split('/').any(|c| c == "..") {
        bail!("linux.cgroupsPath {configured} must not contain ..");
    }
    if configured.is_empty() {
        let root = absolute_form(root);
        if root == Path::new(crate::DEFAULT_ROOT) {
            return Ok(format!("/husk/{id}"));
        }
        return Ok(format!("/husk/{}/{id}", root_dir_name(&root)));
    }
    let own = crate::sys::fs::read_proc("/proc/self/cgroup").unwrap_or_default();
    let path = match configured.starts_with('/') {
        true => normalize(configured),
        false => {
            let base = own.lines().find_map(|l| l.strip_prefix("0::")).unwrap_or("/");
            normalize(&format!("{base}/{configured}"))
        }
    };
    check_not_husks_own(configured, &path, &own)?;
    Ok(path)
}

/// An absolute cgroup path without empty or "." components ("//a/./b/" is /a/b).
fn normalize(path: &str) -> String {
    let parts: Vec<&str> = path.split('/').filter(|c| !c.is_empty() && *c != ".").collect();
    format!("/{}", parts.join("/"))
}

/// A container's cgroup is killed whole and removed by `delete`: the root of a
/// hierarchy, or a cgroup that holds husk itself (and so its caller), never is.
fn check_not_husks_own(configured: &str, path: &str, own_cgroups: &str) -> Result<()> {
    if path == "/" {
        bail!("linux.cgroupsPath \"{configured}\": the root of the cgroup hierarchy cannot be a container's cgroup");
    }
    let holds = |own: &str| own == path || own.strip_prefix(path).is_some_and(|rest| rest.starts_with('/'));
    let own_paths = own_cgroups.lines().filter_map(|l| l.splitn(3, ':').nth(2));
    if let Some(own) = own_paths.into_iter().find(|own| holds(own)) {
        bail!("linux.cgroupsPath \"{configured}\": {path} holds husk's own cgroup {own}: it cannot be a container's cgroup");
    }
    Ok(())
}

/// One spelling per state root, so that `r`, `./r/` and `$PWD//r` share their
/// cgroup directory and two relative `r` in different directories do not:
/// absolute, without "." components, repeated or trailing slashes. Links and
/// ".." are left as typed (the root may not exist yet).
fn absolute_form(root: &Path) -> PathBuf {
    let absolute = match root.is_absolute() {
        true => root.to_path_buf(),
        false => std::env::current_dir().map_or_else(|_| root.to_path_buf(), |cwd| cwd.join(root)),
    };
    absolute.components().collect()
}

/// The directory of a state root's containers under /husk: `root=HASH`, never
/// a container id (validate_id refuses '='). All 64 bits of the hash: with 32,
/// two roots that collide (one in ~65,000 names tried) shared their
/// directories, and `delete -f` of one root's container killed the other's
/// container of the same id.
fn root_dir_name(root: &Path) -> String {
    format!("root={:016x}", fnv1a(root.as_os_str().as_encoded_bytes()))
}

fn fnv1a(bytes: &[u8]) -> u64 {
    bytes
        .iter()
        .fold(0xcbf29ce484222325, |h, b| (h ^ *b as u64).wrapping_mul(0x100000001b3))
}

/// What a container's record keeps of its cgroup, for the commands after
/// `create` to find the same driver (`driver::for_record`). Flattened into
/// state.json: the keys are those of older husks.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Record {
    /// The container's cgroup path (in every hierarchy), when it has one.
    #[serde(default, rename = "cgroup", skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// The cgroup's directories that existed before create: husk did not make
    /// them, so delete neither kills what is in them nor removes them. Empty
    /// (as in states of older husks) when the cgroup is the container's own.
    #[serde(default, rename = "cgroupExisted", skip_serializing_if = "Vec::is_empty")]
    pub existed: Vec<PathBuf>,
    /// The file that says whether that cgroup is frozen.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub freezer: Option<PathBuf>,
    /// The systemd unit the cgroup is (`--systemd-cgroup`), once husk started it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub systemd_unit: Option<systemd::Unit>,
    /// The device nodes of linux.devices, which an `update` of the device
    /// rules allows as `create` did.
    #[serde(default, rename = "deviceNodes", skip_serializing_if = "Vec::is_empty")]
    pub device_nodes: Vec<resources::DeviceNode>,
}

impl Record {
    /// Whether every process of the cgroup is the container's: husk made it.
    pub fn owns(&self) -> bool {
        self.existed.is_empty()
    }
}

/// The container's cgroup as `spec::plan` made it out of the config: where it
/// is, what goes into it, and how it is made. `driver::for_plan` picks the
/// driver that makes it.
#[derive(Debug, Clone)]
pub struct CgroupPlan {
    /// The path in every hierarchy. For a systemd unit, None until
    /// `spec::prepare` has asked systemd where the unit's cgroup is.
    pub path: Option<String>,
    /// The hierarchies of this host.
    pub hierarchies: Vec<Hierarchy>,
    /// Whether /sys/fs/cgroup is cgroup2 only.
    pub unified: bool,
    pub writes: Vec<Write>,
    pub devices: Vec<DeviceRule>,
    /// The device nodes of linux.devices, allowed whatever the rules say.
    pub device_nodes: Vec<resources::DeviceNode>,
    /// Unprivileged: made only where the user's cgroup is delegated.
    pub best_effort: bool,
    /// Privileged and without systemd: the init is in the cgroup from its
    /// clone on, cloned into it (unified host) or moving itself (v1, see
    /// `place`), rather than moved in by husk.
    pub at_clone: bool,
    /// Whether linux.resources asked for anything.
    pub has_limits: bool,
    /// `--systemd-cgroup`: the unit systemd makes the cgroup as.
    pub systemd: Option<systemd::SystemdPlan>,
}

/// The hierarchy among `hs` that has `controller`: its v1 one, or the unified
/// one when that offers it (`unified` names the latter). An index into `hs`.
fn hierarchy_for<'a>(mut hs: impl Iterator<Item = &'a Hierarchy> + Clone, controller: &str) -> Option<usize> {
    hs.clone()
        .position(|h| !h.v2 && h.controllers.split(',').any(|c| c == controller))
        .or_else(|| hs.position(|h| h.v2 && (controller == "unified" || v2_offers(&h.mountpoint, controller))))
}

/// Whether `controller` is on cgroup v2 on a host with hierarchies `hs`.
pub fn is_v2_in(hs: &[Hierarchy], controller: &str) -> bool {
    hierarchy_for(hs.iter(), controller).is_some_and(|i| hs[i].v2)
}

/// Which controllers the levels above a new cgroup2 directory delegate to it.
#[derive(Debug, Clone, Copy)]
pub enum Delegation<'a> {
    /// None (a hybrid host whose limits all go to v1 controllers).
    Nothing,
    /// These ones (a hybrid host: the v2 controllers its limits use).
    Only(&'a [&'a str]),
    /// Every controller the level has (a unified host).
    Everything,
}

/// A container's cgroup: the same path in every hierarchy of the host. What
/// is here reads and writes its files the same way on every host; what
/// differs between v1, v2 and systemd is the drivers' (`driver`).
#[derive(Debug, Clone)]
pub struct Cgroup {
    pub path: String,
    pub dirs: Vec<(Hierarchy, PathBuf)>,
    /// /sys/fs/cgroup, opened at the first use: one lookup through sysfs a
    /// command, not one a method.
    root: LazyRoot,
}

/// A [`CgroupRoot`] opened when first asked for; a clone of it opens its own.
#[derive(Default)]
struct LazyRoot(std::sync::OnceLock<CgroupRoot>);

impl Clone for LazyRoot {
    fn clone(&self) -> LazyRoot {
        LazyRoot::default()
    }
}

impl std::fmt::Debug for LazyRoot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("/sys/fs/cgroup")
    }
}

/// Makes `dir` and any missing parents: as `fs::create_dir_all`, but an
/// existing `dir` (the per-root parent, after the first container) costs one
/// mkdir and no stat; were it not a directory, the mkdir below it would fail.
/// Whether this call made `dir` itself (not another, racing it).
fn ensure_dir(cg: &CgroupRoot, dir: &Path) -> std::io::Result<bool> {
    let made = |result: std::io::Result<()>| match result {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(false),
        Err(e) => Err(e),
    };
    match cg.create_dir(dir) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if let Some(parent) = dir.parent() {
                std::fs::create_dir_all(parent)?;
            }
            made(cg.create_dir(dir))
        }
        other => made(other),
    }
}

impl Cgroup {
    pub fn new(path: &str) -> Result<Cgroup> {
        Ok(Cgroup::at(&hierarchies()?, path))
    }

    /// The cgroup `path` in the hierarchies `hs`.
    pub fn at(hs: &[Hierarchy], path: &str) -> Cgroup {
        let dirs = hs
            .iter()
            .map(|h| {
                let dir = h.mountpoint.join(path.trim_start_matches('/'));
                (h.clone(), dir)
            })
            .collect();
        Cgroup {
            path: path.to_string(),
            dirs,
            root: LazyRoot::default(),
        }
    }

    /// /sys/fs/cgroup open, to look the directories up from.
    pub fn root(&self) -> &CgroupRoot {
        self.root.0.get_or_init(CgroupRoot::open)
    }

    /// The directory of the hierarchy that has `controller` (v1), or of the
    /// unified hierarchy when it offers it (v2); `unified` names the latter.
    fn dir_for(&self, controller: &str) -> Option<&(Hierarchy, PathBuf)> {
        hierarchy_for(self.dirs.iter().map(|(h, _)| h), controller).map(|i| &self.dirs[i])
    }

    /// Whether `controller` is on cgroup v2 here.
    pub fn is_v2(&self, controller: &str) -> bool {
        self.dir_for(controller).is_some_and(|(h, _)| h.v2)
    }

    /// The directory in the v1 hierarchy of `controller`.
    pub fn v1_dir(&self, controller: &str) -> Option<&Path> {
        self.dirs
            .iter()
            .find(|(h, _)| !h.v2 && h.controllers.split(',').any(|c| c == controller))
            .map(|(_, d)| d.as_path())
    }

    /// The directory in the cgroup2 hierarchy.
    pub fn v2_dir(&self) -> Option<&Path> {
        self.dirs.iter().find(|(h, _)| h.v2).map(|(_, d)| d.as_path())
    }

    /// The directories of this cgroup that exist now.
    pub fn existing_dirs(&self) -> Vec<PathBuf> {
        let cg = self.root();
        self.dirs
            .iter()
            .map(|(_, d)| d)
            .filter(|d| cg.exists(d))
            .cloned()
            .collect()
    }

    /// Makes the directories; those that were there already go into `existed`.
    /// A new v1 cpuset gets its parent's cpus and mems; the levels above the
    /// cgroup2 directory delegate the controllers `delegation` says.
    pub fn make_dirs(&self, delegation: Delegation, existed: &mut Vec<PathBuf>) -> Result<()> {
        let cg = self.root();
        for (h, dir) in &self.dirs {
            let mut made_parent = None;
            // mkdir itself tells, atomically, whether the directory is ours.
            let made = match cg.create_dir(dir) {
                // The parents (the per-root one is kept for all of a root's
                // containers) are made only when missing.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    if let Some(parent) = dir.parent() {
                        let made = ensure_dir(cg, parent).context(|| format!("create cgroup {}", parent.display()))?;
                        made_parent = made.then_some(parent);
                    }
                    cg.create_dir(dir)
                }
                other => other,
            };
            let made = match made {
                Ok(()) => true,
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => false,
                Err(e) => return Err(e).context(|| format!("create cgroup {}", dir.display())),
            };
            if !made {
                existed.push(dir.clone());
            }
            if made && h.controllers.split(',').any(|c| c == "cpuset") {
                inherit_cpuset(cg, &h.mountpoint, dir)?;
                if let Some(parent) = made_parent {
                    clone_cpusets_below(cg, parent);
                }
            }
            match delegation {
                _ if !h.v2 => {}
                Delegation::Nothing => {}
                Delegation::Only(wanted) => enable_controllers(cg, &h.mountpoint, dir, Some(wanted))?,
                Delegation::Everything => enable_controllers(cg, &h.mountpoint, dir, None)?,
            }
        }
        Ok(())
    }

    /// Applies writes; a failure names the key and the value.
    pub fn apply(&self, writes: &[Write]) -> Result<()> {
        let cg = self.root();
        for w in writes {
            let Some((_, dir)) = self.dir_for(w.controller) else {
                bail!(
                    "linux.resources: {}: the {} controller is not available on this host",
                    w.file,
                    w.controller
                )
            };
            // Every file is the cgroup's own: no value from a config or an
            // `update` may make a path that leaves it.
            if w.file.contains('/') || w.file.starts_with('.') {
                bail!("linux.resources: {:?} is not a cgroup file name", w.file);
            }
            let mut path = dir.join(&w.file);
            // BFQ names the blkio weights differently (as runc handles too).
            if w.file.starts_with("blkio.weight") && !cg.exists(&path) {
                path = dir.join(w.file.replacen("blkio.", "blkio.bfq.", 1));
                if !cg.exists(&path) {
                    bail!(
                        "linux.resources: {} = {}: this kernel's blkio controller has no weights \
                         (they come with the BFQ I/O scheduler)",
                        w.file,
                        w.value
                    )
                }
            }
            let tolerated = |e: &std::io::Error| match w.tolerate {
                Tolerate::Nothing => false,
                Tolerate::InvalidBeforeRetry => e.raw_os_error() == Some(libc::EINVAL),
                Tolerate::Missing => e.kind() == std::io::ErrorKind::NotFound,
            };
            match cg.write(&path, &w.value) {
                Err(e) if tolerated(&e) => {}
                r => r.context(|| format!("linux.resources: {} = {}", w.file, w.value))?,
            }
        }
        Ok(())
    }

    /// Moves `pid` into the cgroup in every hierarchy.
    pub fn add(&self, pid: libc::pid_t) -> Result<()> {
        let cg = self.root();
        for (_, dir) in &self.dirs {
            let procs = dir.join("cgroup.procs");
            cg.write(&procs, &pid.to_string())
                .context(|| format!("join cgroup {}", procs.display()))?;
        }
        Ok(())
    }

    /// Every process in the cgroup, its sub-cgroups included (where `exec
    /// --cgroup` or the container itself put some).
    pub fn pids(&self) -> Result<Vec<libc::pid_t>> {
        let (_, dir) = self
            .dir_for("pids")
            .or_else(|| self.dirs.first())
            .ok_or_else(|| Error::new("no cgroup hierarchy on this host"))?;
        pids_in(dir)
    }

    /// Sends `sig` to every process of the cgroup, frozen meanwhile through
    /// `freezer` (when there is one) so that none escapes by forking.
    pub fn signal_each(&self, sig: i32, freezer: Option<&Path>) -> Result<()> {
        // Signal 0 changes nothing, so it freezes nothing: a probe killed
        // between the freeze and the thaw would leave the container frozen.
        let freezer = freezer.filter(|_| sig != 0);
        // A `kill --all` or `delete -f` ended between the freeze and the
        // thaw left the container frozen, paused though nobody paused it
        // (review 54b F4): a signal asking husk to end waits for the thaw.
        let _deferred = freezer.map(|_| crate::sys::signal::EndingDeferred::block());
        let was_frozen = freezer.is_some_and(is_frozen_file);
        if let Some(file) = freezer.filter(|_| !was_frozen) {
            // Signalled frozen or not: a process that cannot freeze (one
            // waiting on a FUSE request) keeps the cgroup FREEZING for ever,
            // and waiting for it spent `delete -f`'s whole bound before the
            // kill that would end the FUSE daemon it waits for.
            let _ = freeze_within(file, true, FREEZE_BEFORE_SIGNAL);
        }
        // Thawed again even when the pids cannot be read: a frozen container
        // left behind could not even be killed.
        let signalled = self.pids().map(|pids| {
            for pid in pids {
                // A process that is gone already is fine.
                let _ = crate::sys::signal::kill(pid, sig);
            }
        });
        // A paused container stays paused, but for SIGKILL: a frozen process
        // (cgroup v1) dies of it only once thawed, in a sub-cgroup the
        // container froze too.
        if let Some(file) = freezer.filter(|_| !was_frozen || sig == libc::SIGKILL) {
            freeze(file, false)?;
        }
        let v1_freezer = freezer.filter(|f| f.ends_with("freezer.state"));
        if let Some(dir) = v1_freezer.filter(|_| sig == libc::SIGKILL).and_then(Path::parent) {
            tree::thaw_below(dir, &|_| true)?;
        }
        signalled
    }

    /// Removes the cgroup's directories but those in `keep` (not made by husk),
    /// with the sub-cgroups the container made in them, waiting (bounded) for
    /// processes that are still being reaped by their parent.
    pub fn remove_dirs(&self, keep: &[PathBuf]) -> Result<()> {
        for (_, dir) in self.dirs.iter().filter(|(_, d)| !keep.contains(d)) {
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
            // The per-root directory of default paths (husk/HASH) stays, as
            // the state root does: making it again for the next container
            // (a v1 cpuset's cpus and mems too) cost ~1.5 ms a container in
            // 10 hierarchies.
            tree::remove_tree(dir, deadline)?;
        }
        Ok(())
    }

    /// Reads a value of the cgroup: `file` in the directory of `controller`.
    pub fn read(&self, controller: &str, file: &str) -> Option<String> {
        let (_, dir) = self.dir_for(controller)?;
        std::fs::read_to_string(dir.join(file))
            .ok()
            .map(|s| s.trim().to_string())
    }
}

/// How long a freeze may take: past it, it is undone.
const FREEZE_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// How long `signal_each` waits for the freeze that keeps forks from
/// escaping its signal before it signals anyway.
const FREEZE_BEFORE_SIGNAL: std::time::Duration = std::time::Duration::from_millis(500);

/// Freezes or thaws a cgroup through its freezer file (v1 `freezer.state`, v2
/// `cgroup.freeze`) and waits until the kernel says it is done.
pub fn freeze(file: &Path, frozen: bool) -> Result<()> {
    if freeze_within(file, frozen, FREEZE_WAIT)? {
        return Ok(());
    }
    let value = freezer_value(file, frozen);
    if frozen {
        // As runc: a freeze that does not finish is undone, rather than left
        // FREEZING, which husk and its callers read as paused (half the
        // processes stopped).
        let _ = write_file(file, freezer_value(file, false));
        bail!("the cgroup did not become {value} within 10s: thawed it again");
    }
    bail!("the cgroup did not become {value} within 10s")
}

fn freezer_value(file: &Path, frozen: bool) -> &'static str {
    match (file.ends_with("cgroup.freeze"), frozen) {
        (true, true) => "1",
        (true, false) => "0",
        (false, true) => "FROZEN",
        (false, false) => "THAWED",
    }
}

/// Writes the freezer file and waits at most `bound` until every task has
/// stopped (or runs again): whether it has. Freezing is asynchronous.
fn freeze_within(file: &Path, frozen: bool, bound: std::time::Duration) -> Result<bool> {
    let v2 = file.ends_with("cgroup.freeze");
    let value = freezer_value(file, frozen);
    write_file(file, value).context(|| format!("write {}", file.display()))?;
    let (check, want) = if v2 {
        (
            file.with_file_name("cgroup.events"),
            if frozen { "frozen 1" } else { "frozen 0" },
        )
    } else {
        (file.to_path_buf(), value)
    };
    let deadline = std::time::Instant::now() + bound;
    let mut pause = std::time::Duration::from_micros(100);
    loop {
        let now = std::fs::read_to_string(&check).unwrap_or_default();
        if now.lines().any(|l| l.trim() == want) {
            return Ok(true);
        }
        // On v1 `check` is the freezer's state: another command (a
        // `delete -f`) may have thawed it meanwhile.
        if frozen && !v2 && now.trim() == "THAWED" {
            bail!("the cgroup was thawed while husk froze it");
        }
        // A frozen ancestor keeps it frozen whatever it is told: no use
        // waiting 10 s (review 43b, N1).
        if !frozen && !v2 && is_frozen_file(&file.with_file_name("freezer.parent_freezing")) {
            bail!("a parent cgroup is frozen: this one cannot be thawed");
        }
        if std::time::Instant::now() > deadline {
            return Ok(false);
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(std::time::Duration::from_millis(20));
    }
}

/// Whether the cgroup of freezer `file` is frozen now, by itself or by an
/// ancestor (v2's cgroup.freeze says only what was asked of the cgroup
/// itself: cgroup.events says what is).
pub fn is_frozen_in_effect(file: &Path) -> bool {
    match file.ends_with("cgroup.freeze") {
        true => std::fs::read_to_string(file.with_file_name("cgroup.events"))
            .is_ok_and(|events| events.lines().any(|l| l == "frozen 1")),
        false => is_frozen_file(file),
    }
}

pub fn is_frozen_file(file: &Path) -> bool {
    let v = std::fs::read_to_string(file).unwrap_or_default();
    matches!(v.trim(), "1" | "FROZEN" | "FREEZING")
}

fn v2_offers(mountpoint: &Path, controller: &str) -> bool {
    let c = if controller == "blkio" { "io" } else { controller };
    std::fs::read_to_string(mountpoint.join("cgroup.controllers")).is_ok_and(|s| s.split_whitespace().any(|x| x == c))
}

pub(crate) fn write_file(path: &Path, value: &str) -> std::io::Result<()> {
    use std::io::Write as _;
    let mut f = std::fs::OpenOptions::new().write(true).open(path)?;
    f.write_all(value.as_bytes())
}

/// A new v1 cpuset starts empty: its cpus and mems are copied from the
/// nearest level above that has them (most often its parent), down through
/// the empty levels between.
fn inherit_cpuset(cg: &CgroupRoot, root: &Path, dir: &Path) -> Result<()> {
    for file in ["cpuset.cpus", "cpuset.mems"] {
        let read = |level: &Path| cg.read_line(&level.join(file)).unwrap_or_default();
        let mut empty = Vec::new();
        let mut level = dir.to_path_buf();
        let value = loop {
            let value = read(&level);
            if !value.trim().is_empty() || level == root || !level.starts_with(root) {
                break value;
            }
            empty.push(level.clone());
            level.pop();
        };
        for level in empty.iter().rev() {
            cg.write(&level.join(file), value.trim())
                .context(|| format!("initialise {}", level.join(file).display()))?;
        }
    }
    Ok(())
}

/// Has the kernel give the cpus and mems of a v1 cpuset `dir` (one husk
/// made) to every cgroup made below it: the next containers' cpusets need no
/// copy, whose writes make the kernel rebuild its scheduling domains, in
/// time that grows with the number of cpusets. Best effort: the copy
/// (`inherit_cpuset`) finds them filled, or fills them.
fn clone_cpusets_below(cg: &CgroupRoot, dir: &Path) {
    let _ = cg.write(&dir.join("cgroup.clone_children"), "1");
}

/// v2: every level above the cgroup delegates the controllers it has (or only
/// the `wanted` ones).
fn enable_controllers(cg: &CgroupRoot, root: &Path, dir: &Path, wanted: Option<&[&str]>) -> Result<()> {
    let mut levels = Vec::new();
    let mut d = dir.parent().map(Path::to_path_buf);
    while let Some(p) = d {
        if !p.starts_with(root) {
            break;
        }
        levels.push(p.clone());
        if p == root {
            break;
        }
        d = p.parent().map(Path::to_path_buf);
    }
    for level in levels.into_iter().rev() {
        let available = cg.read_line(&level.join("cgroup.controllers")).unwrap_or_default();
        let enable: Vec<String> = available
            .split_whitespace()
            .filter(|c| wanted.is_none_or(|w| w.contains(c)))
            .map(|c| format!("+{c}"))
            .collect();
        if !enable.is_empty() {
            // A level with processes of its own cannot delegate: leave it be.
            let _ = cg.write(&level.join("cgroup.subtree_control"), &enable.join(" "));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const INFO: &str = "31 23 0:28 / /sys/fs/cgroup rw - tmpfs tmpfs rw,mode=755\n\
        32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct\n\
        35 31 0:32 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n\
        40 31 0:37 / /sys/fs/cgroup/systemd rw - cgroup cgroup rw,xattr,name=systemd\n\
        41 31 0:38 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw,nsdelegate\n\
        50 27 0:40 / /mnt/other rw - cgroup cgroup rw,pids\n";
    const KNOWN: &str = "#subsys_name\thierarchy\nfoo\ncpu\t1\ncpuacct\t2\nmemory\t3\npids\t4\n";

    #[test]
    fn hybrid_mountinfo() {
        let hs = parse_mountinfo(INFO, KNOWN);
        let names: Vec<(&str, &str, bool)> = hs
            .iter()
            .map(|h| (h.name.as_str(), h.controllers.as_str(), h.v2))
            .collect();
        assert_eq!(
            names,
            [
                ("cpu,cpuacct", "cpu,cpuacct", false),
                ("memory", "memory", false),
                ("systemd", "name=systemd", false),
                ("unified", "", true)
            ]
        );
    }

    #[test]
    fn unified_mountinfo() {
        let hs = parse_mountinfo("30 23 0:26 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n", KNOWN);
        assert_eq!(hs.len(), 1);
        assert!(hs[0].v2 && hs[0].name.is_empty());
    }

    #[test]
    fn paths_match_hierarchies() {
        let hs = parse_mountinfo(INFO, KNOWN);
        let own = "9:name=systemd:/a\n4:cpuacct,cpu:/b\n3:memory:/c/d\n0::/e\n";
        let got: Vec<Option<String>> = hs.iter().map(|h| path_in(own, h)).collect();
        assert_eq!(
            got,
            [
                Some("/b".into()),
                Some("/c/d".into()),
                Some("/a".into()),
                Some("/e".into())
            ]
        );
    }

    #[test]
    fn cgroups_paths_resolve_without_escapes() {
        let root = Path::new(crate::DEFAULT_ROOT);
        assert_eq!(resolve_path("", "c", root).unwrap(), "/husk/c");
        assert_eq!(resolve_path("//a/./b/", "c", root).unwrap(), "/a/b");
        for bad in ["/", "//", "/.", "/./", "."] {
            let e = resolve_path(bad, "c", root).unwrap_err();
            assert!(
                e.message().starts_with(&format!("linux.cgroupsPath \"{bad}\": ")),
                "{bad}: {e}"
            );
        }
        for escape in ["/a/..", "../x", "/a/../../b", "a/../.."] {
            let e = resolve_path(escape, "c", root).unwrap_err();
            assert!(e.message().contains("must not contain .."), "{escape}: {e}");
        }
    }

    #[test]
    fn a_root_has_one_cgroup_directory_however_it_is_spelt() {
        let cwd = std::env::current_dir().unwrap();
        let dir_of = |root: &Path| resolve_path("", "c", root).unwrap();
        let expected = dir_of(&cwd.join("r"));
        for spelling in ["r", "./r", "r/", "./r//"] {
            assert_eq!(dir_of(Path::new(spelling)), expected, "{spelling}");
        }
        let doubled = format!("{}//./r/", cwd.display());
        assert_eq!(dir_of(Path::new(&doubled)), expected);
        assert_eq!(dir_of(Path::new("/run//husk/")), "/husk/c");
        assert_ne!(dir_of(Path::new("r")), dir_of(Path::new("/r")));
    }

    #[test]
    fn a_roots_directory_is_never_a_container_of_the_default_root() {
        let other = Path::new("/run/attack-r");
        let path = resolve_path("", "c", other).unwrap();
        assert_eq!(path, "/husk/root=2b9d463ba0c18c6b/c");
        let dir = path.split('/').nth(2).unwrap();
        assert!(crate::state::validate_id(dir).is_err(), "{dir} is a valid container id");
    }

    #[test]
    fn ancestors_of_husks_own_cgroup_are_refused() {
        let own = "4:memory:/process_api/abc\n1:cpu:/\n0::/user.slice/session-1.scope\n";
        let check = |p: &str| check_not_husks_own(p, p, own);
        assert!(check("/process_api/abc/husk").is_ok());
        assert!(check("/process_api/ab").is_ok());
        assert!(check("/user.slice/session-10.scope").is_ok());
        for held in [
            "/process_api",
            "/process_api/abc",
            "/user.slice",
            "/user.slice/session-1.scope",
        ] {
            let e = check(held).unwrap_err();
            assert!(e.message().contains("holds husk's own cgroup"), "{held}: {e}");
        }
    }

    #[test]
    fn a_new_cpuset_takes_the_nearest_values_above_it() {
        /// Removes the tree even when an assertion fails.
        struct TempTree(PathBuf);
        impl Drop for TempTree {
            fn drop(&mut self) {
                let _ = std::fs::remove_dir_all(&self.0);
            }
        }
        let tree = TempTree(std::env::temp_dir().join(format!("husk-cpuset-{}", std::process::id())));
        let root = tree.0.clone();
        let deepest = root.join("a/b/c");
        std::fs::create_dir_all(&deepest).unwrap();
        let file = |dir: &Path, name: &str| dir.join(name);
        for (dir, cpus, mems) in [(&root, "0-3\n", "0\n"), (&root.join("a"), "1-2\n", "")] {
            std::fs::write(file(dir, "cpuset.cpus"), cpus).unwrap();
            std::fs::write(file(dir, "cpuset.mems"), mems).unwrap();
        }
        for dir in [root.join("a/b"), deepest.clone()] {
            std::fs::write(file(&dir, "cpuset.cpus"), "\n").unwrap();
            std::fs::write(file(&dir, "cpuset.mems"), "\n").unwrap();
        }
        inherit_cpuset(&CgroupRoot::open(), &root, &deepest).unwrap();
        let read = |dir: &Path, name: &str| std::fs::read_to_string(file(dir, name)).unwrap();
        // cpus from its grandparent, mems from the root through every empty level.
        for dir in [root.join("a/b"), deepest.clone()] {
            assert_eq!(read(&dir, "cpuset.cpus"), "1-2", "{}", dir.display());
        }
        for dir in [root.join("a"), root.join("a/b"), deepest.clone()] {
            assert_eq!(read(&dir, "cpuset.mems"), "0", "{}", dir.display());
        }
        assert_eq!(
            read(&root.join("a"), "cpuset.cpus"),
            "1-2\n",
            "a level that had its value keeps it"
        );
    }
}
