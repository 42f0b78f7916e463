//! The container's filesystem, built in the child's new mount namespace: root
//! propagation, the mounts of the config in order, /dev, then pivot_root (or
//! move + chroot with --no-pivot) and the read-only remount of `/`.
//!
//! Every mount target is resolved inside the rootfs (`resolve`: openat2
//! RESOLVE_IN_ROOT, or a walk that expands symlinks itself) and mounted
//! through its fd, so a symlink in the image (or one swapped in by a shared
//! volume) cannot redirect a mount to the host (CVE-2021-30465 class).

pub mod copyup;
pub mod devices;
pub mod mounts;
pub mod resolve;

pub use resolve::{lexically_clean, make_guarded, open_in_root, resolve_dir, resolve_file, resolve_parent, Leaf};

use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::sys::statfs;

use crate::bail;
use crate::cgroups::{self, Hierarchy};
use crate::error::{Context, Result};
use crate::rootfs::mounts::{Attrs, MountKind, MountPlan};
use crate::spec::Plan;
use crate::sys::{self, cstring, fd_path};

const O_PATH_DIR: i32 = libc::O_PATH | libc::O_DIRECTORY;

fn is_enoent(e: &std::io::Error) -> bool {
    e.raw_os_error() == Some(libc::ENOENT)
}

fn fstat(fd: &OwnedFd) -> std::io::Result<libc::stat> {
    Ok(nix::sys::stat::fstat(fd)?)
}

const MOUNT_ATTR_IDMAP: u64 = 0x0010_0000;

/// In the parent, before the clone: the detached trees the init attaches, by
/// mount index. Idmapped binds (the idmap takes a user namespace of the
/// host's), and binds shared both ways with the host (`shares_with_host`):
/// cloned here they are peers of the host's mounts, while the init's clones
/// are slaves like every mount of its namespace. Every other tree made here
/// is made a slave of the host's too.
pub fn premounted_trees(plan: &Plan) -> Result<Vec<Option<OwnedFd>>> {
    if !plan.own_mount_namespace {
        return Ok(Vec::new());
    }
    plan.mounts
        .iter()
        .enumerate()
        .map(|(i, m)| premounted_tree(plan, i, m))
        .collect()
}

fn premounted_tree(plan: &Plan, i: usize, m: &MountPlan) -> Result<Option<OwnedFd>> {
    let MountKind::Bind { source, recursive } = &m.kind else {
        return Ok(None);
    };
    let shared = shares_with_host(plan, m);
    if m.idmap.is_none() && !shared {
        return Ok(None);
    }
    let field = || format!("mounts[{i}] {}", m.destination.display());
    let flags = sys::OPEN_TREE_CLONE | if *recursive { sys::AT_RECURSIVE } else { 0 };
    let tree =
        sys::open_tree(&cstring(source)?, flags).context(|| format!("{}: bind {}", field(), source.display()))?;
    if let Some(idmap) = &m.idmap {
        let userns = crate::process::userns::idmap_userns(&idmap.uids, &idmap.gids).context(field)?;
        let attr = sys::MountAttr {
            attr_set: MOUNT_ATTR_IDMAP,
            attr_clr: 0,
            propagation: 0,
            userns_fd: userns.as_raw_fd() as u64,
        };
        sys::mount_setattr(&tree, idmap.recursive, &attr).context(|| format!("{}: idmap", field()))?;
    }
    if !shared {
        slave_of_host(&tree).context(field)?;
    }
    Ok(Some(tree))
}

/// Whether bind `m` is to share mounts both ways with the host, as runc
/// shares it: its last propagation option and `rootfsPropagation` are
/// shared (what Kubernetes' Bidirectional sets). Never for a container with
/// a user namespace, whose root must not mount into the host's namespace
/// (the kernel makes the copies of shared mounts slaves for a mount
/// namespace such a root owns), nor rootless.
fn shares_with_host(plan: &Plan, m: &MountPlan) -> bool {
    let shared = |p: libc::c_ulong| p & libc::MS_SHARED != 0;
    m.propagation.last().is_some_and(|&p| shared(p))
        && plan.rootfs_propagation.is_some_and(shared)
        && !plan.in_userns()
        && !plan.rootless
}

/// The bind shared with the host, if any, that `path` lies in as the
/// config names it: its index in `plan.mounts`.
pub fn shared_bind_holding(plan: &Plan, path: &Path) -> Option<usize> {
    let path = lexically_clean(path);
    plan.mounts
        .iter()
        .position(|m| shares_with_host(plan, m) && path.starts_with(lexically_clean(&m.destination)))
}

/// Refuses a terminal whose /dev/console, which husk binds the pty on
/// after the switch of root, lies in a bind shared with the host: the bind
/// would cover the host's own console and stay there after `delete`
/// (review 58 F2; runc fails there too, its open of the host's node refused).
pub fn refuse_console_in_shared_bind(plan: &Plan) -> Result<()> {
    let console = Path::new("/dev/console");
    match shared_bind_holding(plan, console).filter(|_| plan.process.terminal) {
        Some(i) => bail!(
            "process.terminal: /dev/console lies in mounts[{i}] {}, a bind shared with the host, where the console's bind would reach the host",
            plan.mounts[i].destination.display()
        ),
        None => Ok(()),
    }
}

/// The binds shared with the host attached so far: what husk mounts or
/// makes inside one reaches the host, so it goes there only where the
/// config names a place inside the bind, never where a symlink of the image
/// leads (review 57b F1: /dev linked into such a bind put the /dev tmpfs,
/// devpts, shm and mqueue mounts in the host's table, for good).
#[derive(Default)]
pub struct SharedBinds(Vec<HostBind>);

impl SharedBinds {
    /// Records bind `m` (mounts[`index`]), attached: `at` names its mount.
    fn add(&mut self, at: &OwnedFd, index: usize, m: &MountPlan) -> Result<()> {
        let id = sys::fs::file_id(at.as_fd()).context(|| "statx the attached bind".into())?;
        let Some(mount) = id.mount else {
            bail!("statx gives no mount id: a bind shared with the host needs Linux 5.8")
        };
        self.0.push(HostBind {
            mount,
            index,
            destination: lexically_clean(&m.destination),
        });
        Ok(())
    }

    /// The shared binds of `plan` as the container's root `root` shows
    /// them once switched to: each found again at its destination.
    fn found(root: &OwnedFd, plan: &Plan) -> Result<SharedBinds> {
        let mut shared = SharedBinds::default();
        for (i, m) in plan
            .mounts
            .iter()
            .enumerate()
            .filter(|(_, m)| shares_with_host(plan, m))
        {
            let at = open_in_root(root, &m.destination, libc::O_PATH)
                .context(|| format!("mounts[{i}] {}", m.destination.display()))?;
            shared.add(&at, i, m)?;
        }
        Ok(shared)
    }

    /// Refuses `target`, which `named` resolved to, when it lies in a shared
    /// bind whose destination `named` is not under.
    pub fn refuse_unless_named(&self, target: &OwnedFd, named: &Path) -> Result<()> {
        match bind_not_named(target, named, &self.0)? {
            Some(b) => bail!(
                "resolves into mounts[{}] {}, a bind shared with the host, where it would reach the host (a symlink in the image?)",
                b.index,
                b.destination.display()
            ),
            None => Ok(()),
        }
    }
}

impl SharedBinds {
    /// `path` in `root`, made where missing (`leaf` at the end) but never
    /// inside a shared bind that `path` does not name: a refused create
    /// leaves nothing in the host's directory (review 57c F3). What is
    /// found there is the caller's to check.
    pub fn make(&self, root: &OwnedFd, path: &Path, leaf: Leaf) -> Result<OwnedFd> {
        make_guarded(root, path, leaf, &|dir| self.refuse_unless_named(dir, path))
    }
}

/// Refuses a /dev that resolves into a bind shared with the host, whatever
/// made it (the /dev tmpfs is checked as a mount; a bind at /dev is not).
fn refuse_dev_in_shared_bind(root: &OwnedFd, shared: &SharedBinds) -> Result<()> {
    if shared.0.is_empty() {
        return Ok(());
    }
    let dev = Path::new("/dev");
    match resolve_dir(root, dev, false) {
        Ok(fd) => shared.refuse_unless_named(&fd, dev).context(|| "/dev".into()),
        Err(e) if e.errno() == Some(libc::ENOENT) => Ok(()),
        // A /dev husk cannot follow (a magic link such as /proc/self/root/..)
        // the kernel would follow for /dev/console (review 57d F1).
        Err(e) => Err(e).context(|| "/dev, with a bind shared with the host".into()),
    }
}

/// A bind of a host path, attached: its mount, and where the config has it.
pub(crate) struct HostBind {
    mount: u64,
    index: usize,
    destination: PathBuf,
}

/// The binds of host paths among `mounts` as `root` shows them now, each
/// found again at its destination (one that no longer resolves is left out).
pub(crate) fn host_bind_mounts(root: &OwnedFd, mounts: &[MountPlan]) -> Vec<HostBind> {
    let found = |(index, m): (usize, &MountPlan)| {
        let fd = open_in_root(root, &m.destination, libc::O_PATH).ok()?;
        Some(HostBind {
            mount: sys::fs::file_id(fd.as_fd()).ok()?.mount?,
            index,
            destination: lexically_clean(&m.destination),
        })
    };
    mounts
        .iter()
        .enumerate()
        .filter(|(_, m)| m.is_bind())
        .filter_map(found)
        .collect()
}

/// The binds of `binds` that `fd` lies in (in their mount, or beneath it).
fn binds_holding<'b>(fd: &OwnedFd, binds: &'b [HostBind]) -> Result<Vec<&'b HostBind>> {
    if binds.is_empty() {
        return Ok(Vec::new());
    }
    let id = sys::fs::file_id(fd.as_fd()).context(|| "statx".into())?;
    let Some(mount) = id.mount else {
        bail!("statx gives no mount id: Linux 5.8 is needed")
    };
    let chain = mount_and_ancestors(mount)?;
    Ok(binds.iter().filter(|b| chain.contains(&b.mount)).collect())
}

/// Whether `fd` lies in one of `binds`.
pub(crate) fn in_a_bind(fd: &OwnedFd, binds: &[HostBind]) -> Result<bool> {
    Ok(!binds_holding(fd, binds)?.is_empty())
}

/// A bind of `binds` that `fd`, which `named` resolved to, lies in while
/// `named` is not under its destination: a symlink of the image led there.
fn bind_not_named<'b>(fd: &OwnedFd, named: &Path, binds: &'b [HostBind]) -> Result<Option<&'b HostBind>> {
    let held = binds_holding(fd, binds)?;
    Ok(held.into_iter().find(|b| !lexically_under(named, &b.destination)))
}

/// Refuses `fd`, which `named` resolved to, when it lies in a bind of a
/// host path whose destination `named` is not under: what husk makes there
/// stays in the host's directory (review 58c F2: an image's /dev -> /data,
/// with a volume at /data, had the device nodes made in the volume).
pub(crate) fn refuse_host_bind_unless_named(fd: &OwnedFd, named: &Path, binds: &[HostBind]) -> Result<()> {
    match bind_not_named(fd, named, binds)? {
        Some(b) => bail!(
            "resolves into mounts[{}] {}, a bind of a host path, where it would stay on the host (a symlink in the image?)",
            b.index,
            b.destination.display()
        ),
        None => Ok(()),
    }
}

/// Mount `mount` and the mounts it sits in, from this process's mountinfo.
fn mount_and_ancestors(mount: u64) -> Result<Vec<u64>> {
    let info = std::fs::read_to_string("/proc/thread-self/mountinfo").context(|| "read mountinfo".into())?;
    let parents: std::collections::HashMap<u64, u64> = info
        .lines()
        .filter_map(|l| {
            let mut fields = l.split(' ');
            Some((fields.next()?.parse().ok()?, fields.next()?.parse().ok()?))
        })
        .collect();
    let mut chain = vec![mount];
    while let Some(&parent) = chain.last().and_then(|m| parents.get(m)) {
        if chain.contains(&parent) {
            break;
        }
        chain.push(parent);
    }
    Ok(chain)
}

/// Makes detached tree `tree`, cloned in the host's mount namespace, a slave
/// of the host's mounts (recursively): it gets the host's mounts and events,
/// and nothing mounted in it reaches the host.
pub fn slave_of_host(tree: &OwnedFd) -> Result<()> {
    let attr = sys::MountAttr {
        attr_set: 0,
        attr_clr: 0,
        propagation: libc::MS_SLAVE,
        userns_fd: 0,
    };
    sys::mount_setattr(tree, true, &attr).context(|| "make the bind a slave of the host's mounts".into())
}

/// Builds the whole filesystem and switches root. Runs in the child.
/// `premounted` holds, by mount index, trees the parent prepared (idmapped
/// binds, binds shared with the host, the notify directory).
/// `before_pivot` runs with the container's mounts in place and the host's
/// filesystem still reachable: the createRuntime and createContainer hooks.
/// `cgroup` is the container's cgroup path when the parent made one;
/// `before_cgroup_mount` runs before a mount of a cgroup filesystem (cgroup or
/// cgroup2), and returns the cgroup tmpfs `create` built (see
/// [`cgroup_tree_for_init`]), if any, when asked for it (for `type: cgroup`).
pub fn setup(
    plan: &Plan,
    premounted: &[Option<OwnedFd>],
    cgroup: Option<&str>,
    before_cgroup_mount: &mut dyn FnMut(bool) -> Result<Option<OwnedFd>>,
    before_pivot: &mut dyn FnMut() -> Result<()>,
) -> Result<()> {
    if !plan.own_mount_namespace {
        return chroot_without_mounts(plan, before_pivot);
    }
    let private = plan.rootfs_propagation.is_some_and(|p| p & libc::MS_PRIVATE != 0);
    let initial = libc::MS_REC | if private { libc::MS_PRIVATE } else { libc::MS_SLAVE };
    sys::mount(None, c"/", None, initial, None).context(|| "make / a slave mount".into())?;

    let rootfs = cstring(&plan.rootfs)?;
    sys::mount(Some(&rootfs), &rootfs, None, libc::MS_BIND | libc::MS_REC, None)
        .context(|| format!("bind rootfs {}", plan.rootfs.display()))?;
    let root = sys::openat(libc::AT_FDCWD, &rootfs, O_PATH_DIR, 0)?;

    refuse_proc_symlink(&root, plan)?;
    let deferred = deferred_proc_mounts(plan)?;
    let mut shared = SharedBinds::default();
    for (i, m) in plan.mounts.iter().enumerate() {
        if deferred.contains(&i) {
            continue;
        }
        let prepared = match mounts_a_cgroup_fs(m) {
            true => before_cgroup_mount(matches!(m.kind, MountKind::Cgroup))?,
            false => None,
        };
        let tree = prepared.as_ref().or(premounted.get(i).and_then(Option::as_ref));
        let field = || format!("mounts[{i}] {}", m.destination.display());
        mount_one(&root, m, plan, tree, cgroup, &shared).context(field)?;
        if let Some(tree) = tree.filter(|_| shares_with_host(plan, m)) {
            shared.add(tree, i, m).context(field)?;
        }
    }
    crate::log::step("mounts");
    if deferred.is_empty() {
        check_proc_is_procfs(&root, plan)?;
    }
    // As it reads: a bind at /dev/pts/.. is at /dev too (review 58b F2).
    let dev_is_bind = plan
        .mounts
        .iter()
        .any(|m| m.is_bind() && lexically_clean(&m.destination) == Path::new("/dev"));
    if !dev_is_bind {
        let bind_from_host = plan.in_userns() || plan.rootless;
        devices::create(&root, &plan.devices, bind_from_host, &shared, &plan.mounts)?;
        crate::log::step("devices");
    }
    // /dev/console is bound there once the root is switched (review 57c
    // F1: a bind at /dev led by the image into a shared bind).
    refuse_dev_in_shared_bind(&root, &shared)?;
    let under_deferred = |p: &Path| {
        deferred
            .iter()
            .any(|&i| lexically_under(p, &plan.mounts[i].destination))
    };
    protect_paths(&root, plan, &|p| !under_deferred(p), &shared)?;
    // Made now, while the root may still be written (runc does the same).
    // Only what is made is checked: entering a directory reaches no host
    // (review 58b F3: an existing cwd the image leads into a shared bind).
    let cwd_field = || format!("process.cwd {}", plan.process.cwd.display());
    shared.make(&root, &plan.process.cwd, Leaf::Dir).context(cwd_field)?;
    crate::log::step("masked and read-only paths, cwd");

    before_pivot()?;
    if plan.no_pivot {
        move_root(&root)?;
        crate::log::step("root moved (no pivot_root)");
    } else {
        pivot(&root)?;
        crate::log::step("pivot_root");
    }
    if plan.root_readonly {
        remount_root_readonly()?;
    }
    if let Some(p) = plan.rootfs_propagation {
        sys::mount(None, c"/", None, p, None).context(|| "set rootfsPropagation".into())?;
    }
    Ok(())
}

/// Whether `m` mounts a cgroup filesystem, whose root is the mounter's
/// cgroup namespace root: a `cgroup2` mount made before the init is in its
/// cgroup namespace would show the host's whole tree (only `cgroup` is
/// `MountKind::Cgroup`).
fn mounts_a_cgroup_fs(m: &MountPlan) -> bool {
    match &m.kind {
        MountKind::Cgroup => true,
        MountKind::Fs { fstype, .. } => fstype == "cgroup2",
        _ => false,
    }
}

/// A container in husk's own mount namespace (see `Plan::own_mount_namespace`):
/// no mount and no /dev, only its cwd made and a chroot into its rootfs.
fn chroot_without_mounts(plan: &Plan, before_chroot: &mut dyn FnMut() -> Result<()>) -> Result<()> {
    let root = sys::openat(libc::AT_FDCWD, &cstring(&plan.rootfs)?, O_PATH_DIR, 0)
        .context(|| format!("open rootfs {}", plan.rootfs.display()))?;
    resolve_dir(&root, &plan.process.cwd, true).context(|| "process.cwd".into())?;
    before_chroot()?;
    chroot_into(&root)
}

/// Makes `root` the root and the working directory. Without a pivot_root in
/// a mount namespace of its own, a process with CAP_SYS_CHROOT can leave such
/// a root: it is a view, not a boundary (as in runc and crun).
pub fn chroot_into(root: &OwnedFd) -> Result<()> {
    enter(root)?;
    nix::unistd::chroot(c".")
        .map_err(std::io::Error::from)
        .context(|| "chroot".into())?;
    std::env::set_current_dir("/").context(|| "chdir /".into())
}

/// linux.readonlyPaths and linux.maskedPaths, those that `which` takes.
fn protect_paths(root: &OwnedFd, plan: &Plan, which: &dyn Fn(&Path) -> bool, shared: &SharedBinds) -> Result<()> {
    for path in plan.readonly_paths.iter().filter(|p| which(p)) {
        make_readonly(root, path, shared).context(|| format!("linux.readonlyPaths {}", path.display()))?;
    }
    let masked: Vec<&PathBuf> = plan.masked_paths.iter().filter(|p| which(p)).collect();
    if !masked.is_empty() {
        let covers = Covers {
            null: verified_dev_null(root)?,
            empty_dir: std::cell::OnceCell::new(),
        };
        for path in masked {
            mask(root, &covers, path, shared).context(|| format!("linux.maskedPaths {}", path.display()))?;
        }
    }
    Ok(())
}

/// What masked paths are covered with: a file with the container's
/// /dev/null, a directory with an empty read-only tmpfs, one for all of
/// them (the first made, the others binds of it): each new superblock costs
/// its making and unmaking, and a slot in every memory cgroup's shrinker
/// map (alloc_shrinker_info took 1/3 of a parallel create's cgroup mkdirs).
struct Covers {
    null: OwnedFd,
    /// The tmpfs, once attached over the first directory.
    empty_dir: std::cell::OnceCell<OwnedFd>,
}

impl Covers {
    /// Attaches the empty tmpfs (or a bind of it) over directory `target`.
    fn cover_dir(&self, target: &OwnedFd) -> Result<()> {
        if let Some(first) = self.empty_dir.get() {
            let bind = sys::open_tree_of(first, sys::OPEN_TREE_CLONE)?;
            // A clone of a shared mount joins its peer group, and the first
            // directory may be in a bind shared with the host: what is
            // mounted there would reach every other masked directory, and
            // what is mounted over those, the host (review 68 M1).
            let private = sys::MountAttr {
                attr_set: 0,
                attr_clr: 0,
                propagation: libc::MS_PRIVATE,
                userns_fd: 0,
            };
            sys::mount_setattr(&bind, false, &private)?;
            sys::move_mount(&bind, target)?;
            return Ok(());
        }
        let tmpfs = sys::empty_readonly_tmpfs()?;
        // Attached, its fd no longer holds a detached mount: closing it later
        // unmounts nothing (and waits for no RCU grace period).
        sys::move_mount(&tmpfs, target)?;
        let _ = self.empty_dir.set(tmpfs);
        Ok(())
    }
}

/// Whether `path` is `dir` or beneath it as both read, `..` taken as it
/// reads: /tmp/../proc/kcore is under /proc (review 58 I3: it was masked
/// neither before nor after a deferred /proc).
fn lexically_under(path: &Path, dir: &Path) -> bool {
    lexically_clean(path).starts_with(lexically_clean(dir))
}

/// The proc mounts (by index) that the container's process makes once it is
/// in the pid namespace it joins (`proc_after_join`). Any other mount under
/// one of them could not be made then: refused.
fn deferred_proc_mounts(plan: &Plan) -> Result<Vec<usize>> {
    if !plan.namespaces.proc_after_join {
        return Ok(Vec::new());
    }
    let is_proc = |m: &MountPlan| matches!(&m.kind, MountKind::Fs { fstype, .. } if fstype == "proc");
    let deferred: Vec<usize> = (0..plan.mounts.len()).filter(|&i| is_proc(&plan.mounts[i])).collect();
    for (i, m) in plan.mounts.iter().enumerate().filter(|(_, m)| !is_proc(m)) {
        if deferred
            .iter()
            .any(|&d| lexically_under(&m.destination, &plan.mounts[d].destination))
        {
            bail!(
                "mounts[{i}] {}: a mount under /proc of a container that joins a pid namespace needs procfs's pidns option (Linux 6.15)",
                m.destination.display()
            );
        }
    }
    Ok(deferred)
}

/// In the container's process, in the pid namespace it joined and under the
/// container's root: the proc mounts deferred by `setup`, then the read-only
/// and masked paths beneath them.
pub fn mount_deferred_proc(plan: &Plan) -> Result<()> {
    if !plan.own_mount_namespace {
        return Ok(());
    }
    let deferred = deferred_proc_mounts(plan)?;
    if deferred.is_empty() {
        return Ok(());
    }
    let root = sys::openat(libc::AT_FDCWD, c"/", O_PATH_DIR, 0)?;
    let shared = SharedBinds::found(&root, plan)?;
    for &i in &deferred {
        let m = &plan.mounts[i];
        let target = Target {
            root: &root,
            shared: &shared,
        };
        mount_proc_here(&target, m, plan).context(|| format!("mounts[{i}] {}", m.destination.display()))?;
    }
    check_proc_is_procfs(&root, plan)?;
    let under_deferred = |p: &Path| {
        deferred
            .iter()
            .any(|&i| lexically_under(p, &plan.mounts[i].destination))
    };
    protect_paths(&root, plan, &under_deferred, &shared)
}

/// A proc mount made with no /proc to name its target by (/proc/self/fd/N):
/// through the cwd instead.
fn mount_proc_here(t: &Target, m: &MountPlan, plan: &Plan) -> Result<()> {
    let root = t.root;
    let MountKind::Fs { fstype, source } = &m.kind else {
        bail!("not a proc mount")
    };
    let target = t.make(m, Leaf::Dir)?;
    nix::unistd::fchdir(&target).context(|| "enter the mount's target".into())?;
    let data = fs_data(m, fstype, plan);
    let data = (!data.is_empty()).then(|| cstring(&data)).transpose()?;
    let mounted = sys::mount(
        Some(&cstring(source)?),
        c".",
        Some(&cstring(fstype)?),
        m.flags,
        data.as_deref(),
    );
    nix::unistd::fchdir(root).context(|| "return to the root".into())?;
    mounted?;
    if !m.propagation.is_empty() || !m.recursive_attrs.is_empty() {
        let mounted = resolve_dir(root, &m.destination, false)?;
        propagate(&mounted, &m.propagation)?;
        set_attrs(&mounted, m.recursive_attrs, true)?;
    }
    Ok(())
}

fn mounts_proc(plan: &Plan) -> bool {
    plan.mounts
        .iter()
        .any(|m| lexically_clean(&m.destination) == Path::new("/proc"))
}

/// A /proc (or /sys, or any proc or sysfs mount point) in the image that is a
/// symlink could aim that mount, and all that is written under it, elsewhere
/// in the rootfs (CVE-2019-16884 and CVE-2019-19921 class): refused, as runc
/// does, instead of followed.
fn refuse_proc_symlink(root: &OwnedFd, plan: &Plan) -> Result<()> {
    for m in &plan.mounts {
        let MountKind::Fs { fstype, .. } = &m.kind else {
            continue;
        };
        if fstype != "proc" && fstype != "sysfs" {
            continue;
        }
        // A mount point (or parent) that does not exist yet is made later,
        // as a directory; nothing is made here.
        let (Some(dir), Some(name)) = (m.destination.parent(), m.destination.file_name()) else {
            continue;
        };
        let Ok(parent) = resolve_dir(root, dir, false) else {
            continue;
        };
        let Ok(name) = sys::cstring(name) else { continue };
        if let Ok(fd) = sys::openat(parent.as_raw_fd(), &name, libc::O_PATH | libc::O_NOFOLLOW, 0) {
            if fstat(&fd)?.st_mode & libc::S_IFMT == libc::S_IFLNK {
                // runc's wording, which the conformance suites look for.
                bail!(
                    "{}: filesystem \"{fstype}\" must be mounted on ordinary directory, not on the rootfs's symlink",
                    m.destination.display(),
                );
            }
        }
    }
    Ok(())
}

fn check_proc_is_procfs(root: &OwnedFd, plan: &Plan) -> Result<()> {
    if !mounts_proc(plan) {
        return Ok(());
    }
    let proc = resolve_dir(root, Path::new("/proc"), false)?;
    let is_proc = statfs::fstatfs(&proc).is_ok_and(|st| st.filesystem_type() == statfs::PROC_SUPER_MAGIC);
    if !is_proc {
        bail!("/proc in the container is not procfs");
    }
    Ok(())
}

/// The container's /dev/null, checked to be the real 1:3 character device before
/// it is bound over masked files (CVE-2025-31133).
fn verified_dev_null(root: &OwnedFd) -> Result<OwnedFd> {
    let null = open_in_root(root, Path::new("/dev/null"), libc::O_PATH | libc::O_NOFOLLOW)
        .context(|| "open /dev/null in rootfs".into())?;
    let st = fstat(&null)?;
    if st.st_mode & libc::S_IFMT != libc::S_IFCHR || st.st_rdev != libc::makedev(1, 3) {
        bail!("/dev/null in the container is not the 1:3 character device");
    }
    Ok(null)
}

/// A file gets /dev/null bound over it; a directory, an empty read-only tmpfs.
fn mask(root: &OwnedFd, covers: &Covers, path: &Path, shared: &SharedBinds) -> Result<()> {
    let target = match open_in_root(root, path, libc::O_PATH) {
        Ok(fd) => fd,
        Err(e) if is_enoent(&e) => return Ok(()),
        Err(e) => return Err(e.into()),
    };
    // A mount stacked on the root would be left behind by the switch of
    // root, which goes by the root's fd: the path would stay as it is.
    not_the_root(root, &target, "the path")?;
    shared.refuse_unless_named(&target, path)?;
    if fstat(&target)?.st_mode & libc::S_IFMT == libc::S_IFDIR {
        return covers.cover_dir(&target);
    }
    let tree = sys::open_tree_of(&covers.null, sys::OPEN_TREE_CLONE)?;
    sys::move_mount(&tree, &target)?;
    Ok(())
}

/// A recursive read-only bind of the path onto itself.
fn make_readonly(root: &OwnedFd, path: &Path, shared: &SharedBinds) -> Result<()> {
    let target = match open_in_root(root, path, libc::O_PATH) {
        Ok(fd) => fd,
        Err(e) if is_enoent(&e) => return Ok(()),
        Err(e) => return Err(e.into()),
    };
    // A mount stacked on the root would be left behind by the switch of
    // root, which goes by the root's fd: the path would stay as it is.
    not_the_root(root, &target, "the path")?;
    shared.refuse_unless_named(&target, path)?;
    let tree = sys::open_tree(&fd_path(target.as_raw_fd()), sys::OPEN_TREE_CLONE | sys::AT_RECURSIVE)?;
    let ro = Attrs {
        set: crate::rootfs::mounts::MOUNT_ATTR_RDONLY,
        clear: 0,
    };
    attach(tree, &target, Attrs::default(), ro, &[])
}

fn mount_one(
    root: &OwnedFd,
    m: &MountPlan,
    plan: &Plan,
    premounted: Option<&OwnedFd>,
    cgroup: Option<&str>,
    shared: &SharedBinds,
) -> Result<()> {
    let target = Target { root, shared };
    match &m.kind {
        MountKind::Bind { source, recursive } => bind(&target, m, source, *recursive, premounted),
        MountKind::Fs { fstype, source } => mount_fs(&target, m, plan, fstype, source),
        MountKind::Cgroup => mount_cgroup(&target, m, plan, cgroup, premounted),
    }
}

/// Where a mount may land: in the rootfs, and in the binds shared with the
/// host attached so far only where its destination says so.
struct Target<'a> {
    root: &'a OwnedFd,
    shared: &'a SharedBinds,
}

impl Target<'_> {
    /// What a mount's resolved target may not be: the container's root, a
    /// place inside its procfs, or inside a bind shared with the host that
    /// its destination does not name.
    fn check(&self, target: &OwnedFd, m: &MountPlan) -> Result<()> {
        not_the_root(self.root, target, "the destination")?;
        not_inside_procfs(target, m)?;
        self.shared.refuse_unless_named(target, &m.destination)
    }

    /// `m`'s destination, made where missing (`leaf` at the end), then
    /// checked.
    fn make(&self, m: &MountPlan, leaf: Leaf) -> Result<OwnedFd> {
        let target = self.shared.make(self.root, &m.destination, leaf)?;
        self.check(&target, m)?;
        Ok(target)
    }
}

fn mount_fs(t: &Target, m: &MountPlan, plan: &Plan, fstype: &str, source: &str) -> Result<()> {
    let root = t.root;
    let is_tmpfs = fstype == "tmpfs";
    let (target, existed) = match is_tmpfs.then(|| resolve_dir(root, &m.destination, false)) {
        Some(Ok(dir)) => (dir, true),
        Some(Err(_)) | None => (t.make(m, Leaf::Dir)?, false),
    };
    if existed {
        t.check(&target, m)?;
    }
    let mut data = fs_data(m, fstype, plan);
    if existed {
        // A tmpfs over a directory of the image takes its mode unless the
        // options say otherwise (a later mode= wins), as with runc and crun.
        let mode = format!("mode={:04o}", fstat(&target)?.st_mode & 0o7777);
        data = if data.is_empty() {
            mode
        } else {
            format!("{mode},{data}")
        };
    }
    let data_c = (!data.is_empty()).then(|| cstring(&data)).transpose()?;
    let copy_up = m.extensions.copy_up;
    // A tmpfs that is copied into is made read-only only once it is filled.
    let flags = if copy_up { m.flags & !libc::MS_RDONLY } else { m.flags };
    sys::mount(
        Some(&cstring(source)?),
        &fd_path(target.as_raw_fd()),
        Some(&cstring(fstype)?),
        flags,
        data_c.as_deref(),
    )
    .map_err(|e| refused_fs(&e, fstype, &data))?;
    if !copy_up && m.propagation.is_empty() && m.recursive_attrs.is_empty() {
        return Ok(());
    }
    let mounted = resolve_dir(root, &m.destination, false)?;
    if copy_up {
        // `target` still names the directory under the new tmpfs.
        fill_tmpfs(&target, &mounted, m)?;
    }
    propagate(&mounted, &m.propagation)?;
    set_attrs(&mounted, m.recursive_attrs, true)
}

/// A mount target that is the container's root (a destination through a
/// symlink to / or ..): the plan refuses what reads so, the image's symlinks
/// are seen only here. A mount there would stand in for root.path.
fn not_the_root(root: &OwnedFd, target: &OwnedFd, what: &str) -> Result<()> {
    let (t, r) = (fstat(target)?, fstat(root)?);
    if (t.st_dev, t.st_ino) == (r.st_dev, r.st_ino) {
        bail!("{what} resolves to the container's root, which cannot be a mount destination");
    }
    Ok(())
}

/// The files of /proc that lxcfs stands in for, which may be mounted over
/// (runc's list).
const LXCFS_PROC_FILES: [&str; 10] = [
    "/proc/cpuinfo",
    "/proc/diskstats",
    "/proc/meminfo",
    "/proc/stat",
    "/proc/swaps",
    "/proc/uptime",
    "/proc/loadavg",
    "/proc/slabinfo",
    "/proc/net/dev",
    "/proc/sys/kernel/ns_last_pid",
];

/// A mount inside the container's procfs hides what the kernel says there:
/// an image whose /dev was a symlink to /proc/self had the /dev tmpfs,
/// devpts, shm and mqueue mounted over /proc/1, where the container could
/// fake its processes' status, environment and cgroups to what runs in it
/// later, an operator's `husk exec` among them (review 49 F1); through
/// /proc/sys it could hide the read-only /proc/sys. Refused, as runc does
/// (CVE-2019-19921), but for a proc mount on the root of a procfs and the
/// files lxcfs stands in for.
fn not_inside_procfs(target: &OwnedFd, m: &MountPlan) -> Result<()> {
    let in_procfs = statfs::fstatfs(target).is_ok_and(|st| st.filesystem_type() == statfs::PROC_SUPER_MAGIC);
    if !in_procfs {
        return Ok(());
    }
    let is_proc = matches!(&m.kind, MountKind::Fs { fstype, .. } if fstype == "proc");
    if is_proc && fstat(target)?.st_ino == PROC_ROOT_INO {
        return Ok(());
    }
    if LXCFS_PROC_FILES.iter().any(|f| m.destination == Path::new(f)) {
        return Ok(());
    }
    bail!("the destination resolves inside /proc, where only proc and the files lxcfs stands in for may be mounted")
}

/// The inode number of a procfs's root directory.
const PROC_ROOT_INO: u64 = 1;

/// `tmpcopyup`: what the tmpfs `mounted` now covers is copied into it.
fn fill_tmpfs(covered: &OwnedFd, mounted: &OwnedFd, m: &MountPlan) -> Result<()> {
    let is_tmpfs = statfs::fstatfs(mounted).is_ok_and(|st| st.filesystem_type() == statfs::TMPFS_MAGIC);
    if !is_tmpfs || fstat(mounted)?.st_dev == fstat(covered)?.st_dev {
        bail!("tmpcopyup: {} is not the new tmpfs", m.destination.display());
    }
    copyup::copy_tree(covered, mounted, &m.destination).context(|| "tmpcopyup".into())?;
    if m.is_readonly() {
        let ro = Attrs {
            set: crate::rootfs::mounts::MOUNT_ATTR_RDONLY,
            clear: 0,
        };
        set_attrs(mounted, ro, false)?;
    }
    Ok(())
}

/// The mount's data; a proc mount made before the init is in the pid
/// namespace it joins shows that namespace (`pidns`).
fn fs_data(m: &MountPlan, fstype: &str, plan: &Plan) -> String {
    match plan.namespaces.pidns_for_proc_mounts() {
        Some(pid_ns) if fstype == "proc" => {
            let pidns = format!("pidns=/proc/self/fd/{}", pid_ns.fd.as_raw_fd());
            [m.data.as_str(), &pidns]
                .iter()
                .filter(|s| !s.is_empty())
                .copied()
                .collect::<Vec<_>>()
                .join(",")
        }
        _ => m.data.clone(),
    }
}

fn bind(t: &Target, m: &MountPlan, source: &Path, recursive: bool, premounted: Option<&OwnedFd>) -> Result<()> {
    if m.extensions.copy_symlink {
        if let Some(link) = symlink_target(source)? {
            return copy_symlink(t, &m.destination, &link);
        }
    }
    // The source is resolved once: what is mounted is what decides between a
    // directory and a file target, whatever is renamed meanwhile.
    let tree = match premounted {
        Some(tree) => tree.try_clone()?,
        None => clone_source(source, recursive)?,
    };
    let leaf = match fstat(&tree)?.st_mode & libc::S_IFMT == libc::S_IFDIR {
        true => Leaf::Dir,
        false => Leaf::File,
    };
    let target = t.make(m, leaf)?;
    attach(tree, &target, m.attrs, m.recursive_attrs, &m.propagation)
}

/// A detached copy of bind mount `m`'s source, made now (by the init, with
/// ids that the container's root may not have), for [`setup`] to attach.
pub fn clone_bind_source(m: &MountPlan) -> Result<OwnedFd> {
    let MountKind::Bind { source, recursive } = &m.kind else {
        bail!("{}: not a bind mount", m.destination.display())
    };
    clone_source(source, *recursive)
}

fn clone_source(source: &Path, recursive: bool) -> Result<OwnedFd> {
    let flags = sys::OPEN_TREE_CLONE | if recursive { sys::AT_RECURSIVE } else { 0 };
    sys::open_tree(&cstring(source)?, flags).context(|| format!("source {}", source.display()))
}

/// The target of the bind source `source` when it is a symlink (`copy-symlink`).
fn symlink_target(source: &Path) -> Result<Option<PathBuf>> {
    match std::fs::read_link(source) {
        Ok(link) => Ok(Some(link)),
        Err(e) if e.raw_os_error() == Some(libc::EINVAL) => Ok(None),
        Err(e) => Err(e).context(|| format!("source {}", source.display())),
    }
}

/// `copy-symlink` (as crun): the source's symlink made again at the
/// destination. One already there must point to the same place.
fn copy_symlink(t: &Target, destination: &Path, link: &Path) -> Result<()> {
    let Some(name) = destination.file_name() else {
        bail!("{} has no file name", destination.display())
    };
    let parent = destination.parent().unwrap_or(Path::new("/"));
    let parent_fd = t.shared.make(t.root, parent, Leaf::Dir)?;
    t.shared.refuse_unless_named(&parent_fd, destination)?;
    let parent = parent_fd;
    match nix::unistd::symlinkat(link, &parent, name) {
        Ok(()) => Ok(()),
        Err(nix::errno::Errno::EEXIST) => {
            if nix::fcntl::readlinkat(&parent, name).is_ok_and(|l| l == link.as_os_str()) {
                return Ok(());
            }
            bail!(
                "copy-symlink: {} exists and is not a symlink to {}",
                destination.display(),
                link.display()
            )
        }
        Err(e) => Err(e).context(|| format!("copy-symlink: make {} a symlink", destination.display())),
    }
}

/// mount_setattr(2) on the mount `fd` (or its whole tree with `recursive`).
fn set_attrs(fd: &OwnedFd, a: Attrs, recursive: bool) -> Result<()> {
    if a.is_empty() {
        return Ok(());
    }
    let attr = sys::MountAttr {
        attr_set: a.set,
        attr_clr: a.clear,
        propagation: 0,
        userns_fd: 0,
    };
    sys::mount_setattr(fd, recursive, &attr).context(|| "set mount attributes".into())
}

/// Sets attributes on a detached mount, attaches it at `target`, then sets propagation.
fn attach(
    tree: OwnedFd,
    target: &OwnedFd,
    attrs: Attrs,
    recursive: Attrs,
    propagation: &[libc::c_ulong],
) -> Result<()> {
    set_attrs(&tree, attrs, false)?;
    set_attrs(&tree, recursive, true)?;
    sys::move_mount(&tree, target).context(|| "attach mount".into())?;
    // After move_mount the tree fd names the attached mount.
    propagate(&tree, propagation)
}

fn propagate(mounted: &OwnedFd, propagation: &[libc::c_ulong]) -> Result<()> {
    for &p in propagation {
        sys::mount(None, &fd_path(mounted.as_raw_fd()), None, p, None).context(|| "set mount propagation".into())?;
    }
    Ok(())
}

fn is_cgroup2(path: &std::ffi::CStr) -> bool {
    statfs::statfs(path).is_ok_and(|st| st.filesystem_type() == statfs::CGROUP2_SUPER_MAGIC)
}

/// A filesystem mount the kernel refused, naming what it refused: a type it
/// does not know, or the options it was given (the kernel does not say which).
fn refused_fs(e: &std::io::Error, fstype: &str, data: &str) -> crate::error::Error {
    let what = match e.raw_os_error() {
        Some(libc::ENODEV) => format!("type {fstype}: not a filesystem this kernel knows"),
        Some(libc::EINVAL) if !data.is_empty() => format!("type {fstype} refused its options \"{data}\""),
        _ => format!("mount type {fstype}"),
    };
    crate::error::Error::new(format!("{what}: {e}")).with_errno(e.raw_os_error().unwrap_or(0))
}

/// `type: cgroup`. On a unified host: cgroup2. On a v1 or hybrid host: a tmpfs
/// holding one mount per hierarchy, fresh ones inside a cgroup namespace (the
/// kernel shows the namespace's root), otherwise binds of the container's own
/// cgroup directories, as runc does; that tmpfs comes whole from `create`
/// when it could build it (`prepared`, see [`cgroup_tree_for_init`]).
fn mount_cgroup(
    t: &Target,
    m: &MountPlan,
    plan: &Plan,
    cgroup: Option<&str>,
    prepared: Option<&OwnedFd>,
) -> Result<()> {
    let root = t.root;
    if let Some(tree) = prepared {
        let target = t.make(m, Leaf::Dir)?;
        return sys::move_mount(tree, &target).context(|| "attach the cgroup tmpfs".into());
    }
    // Unprivileged and without a cgroup namespace, a writable /sys/fs/cgroup
    // would expose the host's hierarchy (CVE-2023-25809): always read-only then.
    let forced_ro;
    let m = if plan.rootless && !plan.namespaces.has(libc::CLONE_NEWCGROUP) && !m.is_readonly() {
        forced_ro = MountPlan {
            flags: m.flags | libc::MS_RDONLY,
            ..m.clone()
        };
        &forced_ro
    } else {
        m
    };
    let target = t.make(m, Leaf::Dir)?;
    if is_cgroup2(c"/sys/fs/cgroup") {
        mount_cgroup2(t, m, plan, cgroup, &target)
    } else {
        mount_cgroup_tmpfs(root, m, plan, cgroup, &target)
    }
}

/// cgroup2 on `target`, or, where a user namespace may not mount it, a bind
/// of the hierarchy.
fn mount_cgroup2(t: &Target, m: &MountPlan, plan: &Plan, cgroup: Option<&str>, target: &OwnedFd) -> Result<()> {
    let own_ns = plan.namespaces.has(libc::CLONE_NEWCGROUP);
    let mounted = sys::mount(
        Some(c"cgroup2"),
        &fd_path(target.as_raw_fd()),
        Some(c"cgroup2"),
        m.flags,
        None,
    );
    match mounted {
        Ok(()) => Ok(()),
        // A user namespace cannot mount the cgroup2 of a cgroup namespace it
        // does not own: bind the hierarchy instead (the container's own
        // cgroup when it asked for a cgroup namespace), as runc does.
        Err(e) if matches!(e.raw_os_error(), Some(libc::EPERM | libc::EBUSY)) && plan.in_userns() => {
            let source = match (own_ns, cgroup) {
                (true, Some(path)) => Path::new("/sys/fs/cgroup").join(path.trim_start_matches('/')),
                _ => PathBuf::from("/sys/fs/cgroup"),
            };
            let attrs = crate::rootfs::mounts::bind_attrs(m.flags, 0);
            let bound = MountPlan {
                attrs,
                recursive_attrs: attrs,
                propagation: Vec::new(),
                ..m.clone()
            };
            bind(t, &bound, &source, true, None)
        }
        Err(e) => Err(e.into()),
    }
}

/// A v1 or hybrid host's /sys/fs/cgroup: a tmpfs on `target` holding one
/// mount per hierarchy (see [`mount_cgroup`]).
fn mount_cgroup_tmpfs(
    root: &OwnedFd,
    m: &MountPlan,
    plan: &Plan,
    cgroup: Option<&str>,
    target: &OwnedFd,
) -> Result<()> {
    let own_ns = plan.namespaces.has(libc::CLONE_NEWCGROUP);
    let base = m.flags & (libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC);
    sys::mount(
        Some(c"tmpfs"),
        &fd_path(target.as_raw_fd()),
        Some(c"tmpfs"),
        base,
        Some(c"mode=755"),
    )?;
    // The tmpfs just mounted: empty, and nothing of the container runs yet.
    let top = resolve_dir(root, &m.destination, false)?;
    let own_cgroups = crate::sys::fs::read_proc("/proc/self/cgroup").unwrap_or_default();
    // A user namespace may mount cgroup2 but no v1 hierarchy: those are bound instead.
    let fresh = |h: &Hierarchy| own_ns && (h.v2 || !plan.in_userns());
    // As husk found them before the clone when this mount namespace is a new
    // copy of husk's; a joined one may have other cgroup mounts: read there.
    let hierarchies = match &plan.cgroup {
        Some(c) if plan.namespaces.is_new(libc::CLONE_NEWNS) => c.hierarchies.clone(),
        _ => cgroups::hierarchies()?,
    };
    // The container's own cgroup, as the host sees it.
    let own_dir = |h: &Hierarchy| match cgroup {
        Some(path) => path.to_string(),
        None => cgroups::path_in(&own_cgroups, h).unwrap_or_default(),
    };
    fill_cgroup_tmpfs(&top, m, &hierarchies, &fresh, &own_dir)?;
    if m.is_readonly() {
        sys::mount(
            None,
            &fd_path(top.as_raw_fd()),
            None,
            libc::MS_REMOUNT | libc::MS_RDONLY | base,
            None,
        )
        .context(|| "remount cgroup tmpfs read-only".into())?;
    }
    Ok(())
}

/// The v1 /sys/fs/cgroup that `create` builds for the init while the init
/// sets up (its mounts of the cgroup tmpfs cost ~0.35 ms on the critical
/// path of a `run`): a detached tmpfs with a bind of the container's
/// cgroup directory per hierarchy, as `mount_cgroup` would make it, which
/// the init attaches in one move. Only where that function would bind every
/// hierarchy from the host's tree: a new mount namespace (a copy of
/// husk's), no cgroup namespace, no user namespace (whose root must own
/// its mounts), not rootless, on a v1 or hybrid host. None otherwise, and
/// where it cannot be built here (see below): the init makes it then.
pub fn cgroup_tree_for_init(plan: &Plan, cgroup: &str) -> Option<OwnedFd> {
    let (i, m) = plan
        .mounts
        .iter()
        .enumerate()
        .find(|(_, m)| matches!(m.kind, MountKind::Cgroup))?;
    let cp = plan.cgroup.as_ref()?;
    let eligible = plan.namespaces.is_new(libc::CLONE_NEWNS)
        && !plan.namespaces.has(libc::CLONE_NEWCGROUP)
        && !plan.in_userns()
        && !plan.rootless
        && !is_cgroup2(c"/sys/fs/cgroup");
    if !eligible {
        return None;
    }
    // What `mount_cgroup` mounts its tmpfs with; read-only comes once it is filled.
    let base = m.flags & (libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC);
    let attrs = crate::rootfs::mounts::bind_attrs(base, 0).set;
    let built = build_cgroup_tmpfs(m, attrs, &cp.hierarchies, cgroup);
    // The init builds it where this could not (a kernel before 6.15 attaches
    // no mount to a detached one; a seccomp filter around husk), and says
    // why if it cannot either.
    if let Err(e) = &built {
        crate::log::debug(&format!(
            "mounts[{i}] {}: left to the init: {e}",
            crate::log::printable(&m.destination.to_string_lossy())
        ));
    }
    built.ok()
}

fn build_cgroup_tmpfs(m: &MountPlan, attrs: u64, hierarchies: &[Hierarchy], cgroup: &str) -> Result<OwnedFd> {
    let options = [(c"source", c"tmpfs"), (c"mode", c"755")];
    let top = sys::detached_tmpfs(&options, attrs)?;
    fill_cgroup_tmpfs(&top, m, hierarchies, &|_| false, &|_| cgroup.to_string())?;
    slave_of_host(&top)?;
    if m.is_readonly() {
        let ro = Attrs {
            set: crate::rootfs::mounts::MOUNT_ATTR_RDONLY,
            clear: 0,
        };
        set_attrs(&top, ro, false)?;
        // As the remount of `mount_cgroup` does: the filesystem too.
        sys::make_superblock_readonly(&top)?;
    }
    Ok(top)
}

/// Fills the cgroup tmpfs `top` of mount `m`: per hierarchy, a fresh cgroup
/// mount where `fresh` says so, otherwise a bind of its `own_dir`; the
/// names of co-mounted controllers as symlinks.
fn fill_cgroup_tmpfs(
    top: &OwnedFd,
    m: &MountPlan,
    hierarchies: &[Hierarchy],
    fresh: &dyn Fn(&Hierarchy) -> bool,
    own_dir: &dyn Fn(&Hierarchy) -> String,
) -> Result<()> {
    // Opened here: a bind's source must be in this mount namespace.
    let cg = crate::sys::cgroup_root::CgroupRoot::open();
    for h in hierarchies.iter().filter(|h| !h.name.is_empty()) {
        let sub = hierarchy_dir(top, &h.name)?;
        if fresh(h) {
            let (fstype, data) = if h.v2 {
                (c"cgroup2", None)
            } else {
                (c"cgroup", Some(cstring(&h.controllers)?))
            };
            sys::mount(
                Some(fstype),
                &fd_path(sub.as_raw_fd()),
                Some(fstype),
                m.flags,
                data.as_deref(),
            )
            .context(|| format!("mount cgroup {}", h.name))?;
        } else {
            let rel = own_dir(h);
            let source = h.mountpoint.join(rel.trim_start_matches('/'));
            let tree = cg
                .open_tree(&source, sys::OPEN_TREE_CLONE)
                .context(|| format!("bind {}", source.display()))?;
            let ro = if m.is_readonly() {
                crate::rootfs::mounts::MOUNT_ATTR_RDONLY
            } else {
                0
            };
            let attrs = Attrs {
                set: ro
                    | crate::rootfs::mounts::MOUNT_ATTR_NOSUID
                    | crate::rootfs::mounts::MOUNT_ATTR_NODEV
                    | crate::rootfs::mounts::MOUNT_ATTR_NOEXEC,
                clear: 0,
            };
            attach(tree, &sub, attrs, Attrs::default(), &[])?;
        }
        if h.name.contains(',') {
            for c in h.name.split(',') {
                let (t, n) = (cstring(&h.name)?, cstring(c)?);
                // An existing name is left alone.
                let _ = nix::unistd::symlinkat(t.as_c_str(), top, n.as_c_str());
            }
        }
    }
    Ok(())
}

/// The directory for hierarchy `name` (a mountpoint's last component, from
/// mountinfo) in the cgroup tmpfs `top` just mounted: made and opened by name,
/// with no walk from the rootfs (nothing else can be in that tmpfs yet).
fn hierarchy_dir(top: &OwnedFd, name: &str) -> Result<OwnedFd> {
    if name.contains('/') || name == "." || name == ".." {
        bail!("cgroup hierarchy name {name:?} is not a single path component");
    }
    let c_name = cstring(name)?;
    match nix::sys::stat::mkdirat(top, c_name.as_c_str(), nix::sys::stat::Mode::from_bits_truncate(0o755)) {
        Ok(()) | Err(nix::errno::Errno::EEXIST) => {}
        Err(e) => return Err(std::io::Error::from(e)).context(|| format!("mkdir {name} in the cgroup tmpfs")),
    }
    let flags = libc::O_PATH | libc::O_DIRECTORY | libc::O_NOFOLLOW;
    sys::openat(top.as_raw_fd(), &c_name, flags, 0).context(|| format!("open {name} in the cgroup tmpfs"))
}

fn pivot(root: &OwnedFd) -> Result<()> {
    let old_root = sys::openat(libc::AT_FDCWD, c"/", O_PATH_DIR, 0).context(|| "open the old root".into())?;
    enter(root)?;
    sys::pivot_root(c".", c".").context(|| "pivot_root".into())?;
    // The old root now sits on top of the new one: detach it without letting
    // the unmount propagate back to the host. Only it is made a slave: "."
    // before the fchdir is the new root, and a recursive change there would
    // undo every propagation the config gave the container's mounts.
    nix::unistd::fchdir(&old_root)
        .map_err(std::io::Error::from)
        .context(|| "chdir to the old root".into())?;
    sys::mount(None, c".", None, libc::MS_SLAVE | libc::MS_REC, None).context(|| "make old root a slave".into())?;
    sys::umount_detach(c".").context(|| "unmount old root".into())?;
    std::env::set_current_dir("/").context(|| "chdir /".into())
}

fn move_root(root: &OwnedFd) -> Result<()> {
    enter(root)?;
    sys::mount(Some(c"."), c"/", None, libc::MS_MOVE, None).context(|| "move rootfs to /".into())?;
    chroot_into(root)
}

/// Makes the rootfs the working directory, the "." that the root switch names.
fn enter(root: &OwnedFd) -> Result<()> {
    nix::unistd::fchdir(root)
        .map_err(std::io::Error::from)
        .context(|| "chdir to rootfs".into())
}

/// statvfs's relatime flag (Linux's ST_RELATIME; musl's libc crate lacks it).
const ST_RELATIME: libc::c_ulong = 0x1000;

/// `root.readonly`: remount / read-only, keeping the flags the kernel may have
/// locked on it (nosuid, nodev, noexec), which a remount must repeat.
fn remount_root_readonly() -> Result<()> {
    let flags = nix::sys::statvfs::statvfs(c"/")
        .map_err(std::io::Error::from)
        .context(|| "statvfs /".into())?
        .flags()
        .bits();
    let locked = [
        (libc::ST_NOSUID, libc::MS_NOSUID),
        (libc::ST_NODEV, libc::MS_NODEV),
        (libc::ST_NOEXEC, libc::MS_NOEXEC),
        (libc::ST_NOATIME, libc::MS_NOATIME),
        (libc::ST_NODIRATIME, libc::MS_NODIRATIME),
        (ST_RELATIME, libc::MS_RELATIME),
    ]
    .iter()
    .filter(|(st, _)| flags & st != 0)
    .fold(0, |acc, (_, ms)| acc | ms);
    sys::mount(
        None,
        c"/",
        None,
        libc::MS_REMOUNT | libc::MS_BIND | libc::MS_RDONLY | locked,
        None,
    )
    .context(|| "remount / read-only".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_path_is_in_a_bind_only_as_it_reads() {
        assert_eq!(lexically_clean(Path::new("/data/../dev")), Path::new("/dev"));
        assert_eq!(lexically_clean(Path::new("/data/./x/..//y")), Path::new("/data/y"));
        assert_eq!(lexically_clean(Path::new("/../..")), Path::new("/"));
        assert!(!lexically_clean(Path::new("/data/../dev")).starts_with("/data"));
        assert!(lexically_under(Path::new("/tmp/../proc/kcore"), Path::new("/proc")));
        assert!(lexically_under(Path::new("/proc"), Path::new("/proc/")));
        assert!(!lexically_under(Path::new("/proc/../sys"), Path::new("/proc")));
    }
}
