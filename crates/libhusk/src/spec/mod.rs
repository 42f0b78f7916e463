//! config.json read, validated and turned into a `Plan` (`load`, `plan`),
//! without side effects: planning reads files (the config, namespace paths,
//! the cgroup hierarchies) and writes none, and talks to no one. `prepare` is
//! the step after it that may: it compiles the seccomp filter through the
//! cache in the state root, and asks systemd where a unit's cgroup is. Nothing
//! for the container is created until both succeed; every error names the
//! field or path at fault.

pub mod features;
#[cfg(test)]
mod fuzz_tests;
pub mod strict;
pub mod template;

use std::collections::HashMap;
use std::ffi::CString;
use std::path::{Path, PathBuf};

use oci_spec::runtime::{Linux, Process, Spec};

use crate::bail;
use crate::error::{Context, Error, ErrorKind, Result};
use crate::log;
use crate::process::attrs::{self, AttrsPlan};
use crate::process::capabilities::{self, CapsPlan};
use crate::process::namespaces::{NamespacePlan, Shared};
use crate::process::sysctl;
use crate::process::userns::{self, UsernsPlan};
use crate::rootfs::devices::{self, DevicePlan};
use crate::rootfs::mounts::{self, MountPlan};
use crate::seccomp::{self, SeccompPlan};
use crate::sys::cstring;

pub struct ProcessPlan {
    pub args: Vec<CString>,
    /// `args[0]` as given, for messages.
    pub program: String,
    pub env: Vec<CString>,
    pub cwd: PathBuf,
    pub uid: u32,
    pub gid: u32,
    pub additional_gids: Vec<u32>,
    pub umask: u32,
    pub terminal: bool,
    /// process.consoleSize as (rows, columns).
    pub console_size: Option<(u16, u16)>,
    /// None when the config has no `capabilities`: the sets are then left as they are.
    pub caps: Option<CapsPlan>,
    pub attrs: AttrsPlan,
}

pub struct Plan {
    pub bundle: PathBuf,
    pub rootfs: PathBuf,
    pub root_readonly: bool,
    /// Whether config.json has a `process`. Without one (the spec makes it
    /// optional at create), the init waits as `placeholder_process` and
    /// `start` fails.
    pub has_process: bool,
    /// Whether the container has a mount namespace husk may mount in: a new
    /// one, or one joined that is neither husk's own nor pid 1's. Without it
    /// husk mounts nothing (that would change the host's mount table) and
    /// chroots.
    pub own_mount_namespace: bool,
    pub namespaces: NamespacePlan,
    pub hostname: Option<String>,
    pub domainname: Option<String>,
    pub mounts: Vec<MountPlan>,
    pub rootfs_propagation: Option<libc::c_ulong>,
    pub devices: Vec<DevicePlan>,
    /// `linux.netDevices`, moved by `create` (see `netdev`).
    pub net_devices: Vec<crate::netdev::NetDevicePlan>,
    pub process: ProcessPlan,
    pub annotations: HashMap<String, String>,
    pub oci_version: String,
    pub no_pivot: bool,
    pub masked_paths: Vec<PathBuf>,
    pub readonly_paths: Vec<PathBuf>,
    pub sysctl: Vec<(String, String)>,
    pub seccomp: Option<SeccompPlan>,
    /// The kernel's highest capability number.
    pub last_cap: u8,
    /// `linux.timeOffsets` as /proc/self/timens_offsets takes them.
    pub time_offsets: String,
    /// The mappings of a new user namespace.
    pub userns: Option<UsernsPlan>,
    /// Whether husk runs unprivileged.
    pub rootless: bool,
    /// config.json as read, kept in the state directory for `exec`.
    pub config_text: String,
    pub hooks: oci_spec::runtime::Hooks,
    /// The file name of the notify socket in the container (NOTIFY_SOCKET set).
    pub notify_name: Option<String>,
    pub cgroup: Option<CgroupPlan>,
}

pub use crate::cgroups::CgroupPlan;

impl Plan {
    /// Whether the parent moves the init into its cgroup after the clone
    /// (unprivileged, or a systemd unit), which the init must wait for before
    /// anything the cgroup affects.
    pub fn parent_places_cgroup(&self) -> bool {
        self.cgroup.as_ref().is_some_and(|c| !c.at_clone)
    }

    /// Whether the init must stop before pivot_root for hooks (its own or the parent's).
    pub fn has_create_hooks(&self) -> bool {
        let h = &self.hooks;
        [
            h.prestart(),
            h.create_runtime(),
            h.create_container(),
            h.start_container(),
        ]
        .iter()
        .any(|l| l.as_ref().is_some_and(|l| !l.is_empty()))
    }

    /// Whether husk itself runs hooks for this container (prestart,
    /// createRuntime, poststart, poststop): its children.
    pub fn has_host_hooks(&self) -> bool {
        let h = &self.hooks;
        [h.prestart(), h.create_runtime(), h.poststart(), h.poststop()]
            .iter()
            .any(|l| l.as_ref().is_some_and(|l| !l.is_empty()))
    }

    /// Whether the container runs in a user namespace (new or joined).
    pub fn in_userns(&self) -> bool {
        self.namespaces.has(libc::CLONE_NEWUSER)
    }

    /// Whether the namespaces of
    /// [`NamespacePlan::joined_before_userns`](crate::process::namespaces::NamespacePlan::joined_before_userns)
    /// are entered before the container's new user namespace exists, which
    /// may have no right to enter them: by husk, for the init to be born in
    /// them ([`Plan::parent_joins_before_new_userns`]), or by an init that
    /// makes that namespace itself (`userns_after_pid`).
    pub fn joins_before_new_userns(&self) -> bool {
        let userns_after_pid = self.namespaces.userns_after_pid();
        self.namespaces.is_new(libc::CLONE_NEWUSER) && (!self.rootless || userns_after_pid)
    }

    /// Whether husk enters them, around the clone. Not for an init that
    /// makes its user namespace itself: the runner of its createContainer
    /// hooks, forked first, must stay in husk's cgroup namespace to find the
    /// init's cgroups (review 62b F1).
    pub fn parent_joins_before_new_userns(&self) -> bool {
        self.joins_before_new_userns() && !self.namespaces.userns_after_pid()
    }
}

/// What `create` and `run` add to the config.
pub struct Options<'a> {
    pub id: &'a str,
    pub no_pivot: bool,
    pub new_keyring: bool,
    pub rootless: bool,
    pub systemd_cgroup: bool,
    /// The state root, which scopes default cgroup paths.
    pub root: PathBuf,
}

/// Reads `BUNDLE/config.json` and validates it (`plan`): no side effects.
pub fn load(bundle: &Path, opts: &Options) -> Result<Plan> {
    let bundle = std::fs::canonicalize(bundle).context(|| format!("bundle {}", bundle.display()))?;
    let path = bundle.join("config.json");
    let text = read_config(&path).context(|| format!("read {}", path.display()))?;
    let spec = parse(&text).context(|| path.display().to_string())?;
    let mut plan = plan(spec, bundle, opts)?;
    plan.config_text = text;
    Ok(plan)
}

/// The step after validation, the first that reaches outside husk: compiles
/// the seccomp filter through the cache of compiled filters in the state root
/// (writing it on a miss), and with `--systemd-cgroup` finds the systemd
/// instance and asks it where the unit's cgroup is. Nothing is made for the
/// container yet.
pub fn prepare(plan: &mut Plan, opts: &Options) -> Result<()> {
    if let Some(filter) = &mut plan.seccomp {
        seccomp::compile_planned(filter, &opts.root.join(crate::CACHE_DIR))?;
    }
    if let Some(cgroup) = &mut plan.cgroup {
        if let Some(systemd) = &cgroup.systemd {
            cgroup.path = Some(crate::cgroups::systemd::locate(&systemd.unit)?);
        }
    }
    Ok(())
}

/// The most a JSON file husk reads (config.json, exec's --process, update's
/// --resources) may hold: far above any real one, and a bound on what a
/// hostile bundle (config.json a link to /dev/zero) makes husk allocate.
pub const MAX_JSON: u64 = 16 << 20;

/// Reads a JSON file of at most [`MAX_JSON`] bytes as text.
pub fn read_json(path: &Path) -> std::io::Result<String> {
    let file = std::fs::File::open(path)?;
    let size = file.metadata().map(|m| m.len()).unwrap_or(0);
    read_json_from(file, size)
}

/// Reads config.json, which must be a regular file: a bundle's is not the
/// caller's to vouch for, and opening what else it may name can wait for ever
/// (a FIFO: `run` holds the signals that would end it) or wake a driver
/// (/dev/watchdog arms on open). So the name is opened O_PATH, which opens
/// nothing, and the file itself only once it is known to be a regular one,
/// through that fd: nothing can be swapped in between.
pub fn read_config(path: &Path) -> std::io::Result<String> {
    use nix::fcntl::OFlag;
    use std::os::fd::AsRawFd;
    use std::os::unix::fs::FileTypeExt;
    // Not std's OpenOptions: its custom_flags drop O_PATH with musl, whose
    // O_ACCMODE includes it.
    let flags = OFlag::O_PATH | OFlag::O_CLOEXEC;
    let named = std::fs::File::from(nix::fcntl::open(path, flags, nix::sys::stat::Mode::empty())?);
    let meta = named.metadata()?;
    let kind = meta.file_type();
    let what = match () {
        _ if kind.is_file() => None,
        _ if kind.is_fifo() => Some("a FIFO"),
        _ if kind.is_char_device() || kind.is_block_device() => Some("a device"),
        _ if kind.is_socket() => Some("a socket"),
        _ if kind.is_dir() => Some("a directory"),
        _ => Some("not a file"),
    };
    if let Some(what) = what {
        return Err(std::io::Error::other(format!("not a regular file ({what})")));
    }
    if let Some(fs) = kernel_interface(&named) {
        return Err(std::io::Error::other(format!(
            "a file of the kernel's {fs}, not a config"
        )));
    }
    let file = std::fs::File::open(format!("/proc/self/fd/{}", named.as_raw_fd()))?;
    read_json_from(file, meta.len())
}

/// The kernel interface `file` is on, when it is one: their "regular" files
/// may block a read (/proc/kmsg, tracefs's trace_pipe) or act when read.
fn kernel_interface(file: &std::fs::File) -> Option<&'static str> {
    use nix::sys::statfs::*;
    const TRACEFS_MAGIC: FsType = FsType(0x7472_6163);
    const CONFIGFS_MAGIC: FsType = FsType(0x6265_6570);
    const BPF_FS_MAGIC: FsType = FsType(0xcafe_4a11);
    let kind = fstatfs(file).ok()?.filesystem_type();
    let known = [
        (PROC_SUPER_MAGIC, "procfs"),
        (SYSFS_MAGIC, "sysfs"),
        (DEBUGFS_MAGIC, "debugfs"),
        (TRACEFS_MAGIC, "tracefs"),
        (SECURITYFS_MAGIC, "securityfs"),
        (CONFIGFS_MAGIC, "configfs"),
        (BPF_FS_MAGIC, "bpf filesystem"),
        (CGROUP_SUPER_MAGIC, "cgroupfs"),
        (CGROUP2_SUPER_MAGIC, "cgroupfs"),
    ];
    known.iter().find(|(magic, _)| *magic == kind).map(|(_, name)| *name)
}

/// As [`read_json`], from a reader; `size` is a hint (0: unknown).
pub fn read_json_from(reader: impl std::io::Read, size: u64) -> std::io::Result<String> {
    use std::io::Read;
    let mut bytes = Vec::with_capacity(size.min(MAX_JSON) as usize + 1);
    reader.take(MAX_JSON + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > MAX_JSON {
        return Err(std::io::Error::other(format!("larger than {} MiB", MAX_JSON >> 20)));
    }
    String::from_utf8(bytes).map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))
}

/// Parses config.json text; a type error names the JSON path of the bad field.
pub fn parse(text: &str) -> Result<Spec> {
    strict::from_str(text).map_err(|e| {
        let at = e.path().to_string();
        let inner = e.into_inner();
        // serde_json calls a wrong type for an enum (`"type": 7`) a syntax
        // error: only JSON that does not parse at all is malformed.
        let malformed = at == "." || serde_json::from_str::<serde::de::IgnoredAny>(text).is_err();
        let e = if malformed {
            Error::new(format!("malformed JSON: {inner}"))
        } else if inner.is_syntax() {
            Error::new(format!("{at}: not a value this field takes ({inner})"))
        } else {
            Error::new(format!("{at}: {inner}"))
        };
        e.with_kind(ErrorKind::InvalidConfig)
    })
}

/// Versions of the runtime spec this runtime implements: 1.0.0 up to 1.3.x.
pub fn check_version(v: &str) -> Result<()> {
    if v.is_empty() {
        bail!("ociVersion is missing");
    }
    let core = v.split(['-', '+']).next().unwrap_or("");
    let parts: Vec<&str> = core.split('.').collect();
    let nums: Option<Vec<u32>> = parts.iter().map(|p| p.parse().ok()).collect();
    match nums.as_deref() {
        Some([1, minor, _]) if *minor <= 3 => Ok(()),
        Some([_, _, _]) => {
            bail!("ociVersion {v} is not supported (husk implements 1.0.0 to 1.3.x)")
        }
        _ => bail!("ociVersion \"{v}\" is not a semantic version"),
    }
}

/// The minor version of a runtime-spec version `1.MINOR.PATCH[-pre][+meta]`.
pub fn minor_version(v: &str) -> Option<u32> {
    let core = v.split(['-', '+']).next()?;
    match core.split('.').collect::<Vec<_>>().as_slice() {
        ["1", minor, _] => minor.parse().ok(),
        _ => None,
    }
}

/// Validates the config and plans the container from it: no side effects
/// (see the module's comment). An error is the config's (`InvalidConfig`).
pub fn plan(spec: Spec, bundle: PathBuf, opts: &Options) -> Result<Plan> {
    plan_of(spec, bundle, opts).map_err(|e| e.with_kind(ErrorKind::InvalidConfig))
}

fn plan_of(spec: Spec, bundle: PathBuf, opts: &Options) -> Result<Plan> {
    check_version(spec.version())?;
    let root = spec.root().as_ref().ok_or_else(|| Error::new("root.path is missing"))?;
    let rootfs = rootfs_of(root, &bundle)?;
    let has_process = spec.process().is_some();
    let placeholder = spec.process().is_none().then(placeholder_process);
    let process = spec.process().as_ref().or(placeholder.as_ref()).expect("one of them");
    let linux = linux_or_empty(&spec);
    let namespaces = NamespacePlan::from_spec(linux.namespaces().as_deref().unwrap_or(&[]))?;

    let (hostname, domainname) = names_of(&spec, &namespaces)?;
    let own_mount_namespace = namespaces.shared_with_caller(libc::CLONE_NEWNS)?.is_none();
    if !own_mount_namespace {
        check_shared_mount_namespace(root.readonly().unwrap_or(false), &linux, process)?;
    }

    let userns = userns_plan(&linux, &namespaces, opts.rootless)?;
    let mounts = mounts_of(&spec, &linux, &bundle, userns.as_ref(), opts.rootless)?;
    let rootfs_propagation = linux
        .rootfs_propagation()
        .as_deref()
        .map(rootfs_propagation)
        .transpose()?;
    let devices = devices::plan(linux.devices().as_deref().unwrap_or(&[]))?;
    let net_devices = crate::netdev::plan(linux.net_devices().as_ref(), &namespaces, opts.rootless)?;
    let paths = |v: &Option<Vec<String>>| v.iter().flatten().map(PathBuf::from).collect::<Vec<_>>();
    let sysctl = sysctl::plan(&linux.sysctl().clone().unwrap_or_default(), &namespaces)?;
    let seccomp = linux.seccomp().as_ref().map(seccomp::check).transpose()?;
    let last_cap = capabilities::last_cap();
    let time_offsets = time_offsets(&linux, &namespaces)?;
    let rootless = opts.rootless;
    let cgroup = cgroup_plan(&linux, opts, &devices)?;
    let hooks = spec.hooks().clone().unwrap_or_default();
    check_hooks(&hooks)?;
    check_create_container_hooks(&hooks, &namespaces, own_mount_namespace)?;
    check_paths_and_rdt(&linux)?;

    Ok(Plan {
        process: process_plan(process, &linux, opts, last_cap)?,
        bundle,
        rootfs,
        root_readonly: root.readonly().unwrap_or(false),
        has_process,
        own_mount_namespace,
        namespaces,
        hostname,
        domainname,
        mounts,
        rootfs_propagation,
        devices,
        net_devices,
        annotations: spec.annotations().clone().unwrap_or_default(),
        oci_version: spec.version().clone(),
        no_pivot: opts.no_pivot,
        masked_paths: paths(linux.masked_paths()),
        readonly_paths: paths(linux.readonly_paths()),
        sysctl,
        seccomp,
        last_cap,
        time_offsets,
        userns,
        rootless,
        config_text: String::new(),
        hooks,
        notify_name: None,
        cgroup,
    })
}

/// root.path, resolved against the bundle: an existing directory.
fn rootfs_of(root: &oci_spec::runtime::Root, bundle: &Path) -> Result<PathBuf> {
    if root.path().as_os_str().is_empty() {
        bail!("root.path is missing");
    }
    let given = bundle.join(root.path());
    let rootfs = std::fs::canonicalize(&given).context(|| format!("root.path {}", given.display()))?;
    if !rootfs.is_dir() {
        bail!("root.path {} is not a directory", rootfs.display());
    }
    Ok(rootfs)
}

/// hostname and domainname (none when empty), which need a UTS namespace of the container's own.
fn names_of(spec: &Spec, namespaces: &NamespacePlan) -> Result<(Option<String>, Option<String>)> {
    let hostname = spec.hostname().clone().filter(|h| !h.is_empty());
    let domainname = spec.domainname().clone().filter(|h| !h.is_empty());
    for (field, value) in [("hostname", &hostname), ("domainname", &domainname)] {
        if value.is_some() {
            check_private_uts(field, namespaces)?;
        }
    }
    Ok((hostname, domainname))
}

/// The plans of the config's mounts, labelled with linux.mountLabel.
fn mounts_of(
    spec: &Spec,
    linux: &Linux,
    bundle: &Path,
    userns: Option<&UsernsPlan>,
    rootless: bool,
) -> Result<Vec<MountPlan>> {
    let mut mounts = spec
        .mounts()
        .as_deref()
        .unwrap_or(&[])
        .iter()
        .enumerate()
        .map(|(i, m)| mounts::plan(i, m, bundle, userns))
        .collect::<Result<Vec<_>>>()?;
    if let Some(label) = linux.mount_label().as_ref().filter(|l| !l.is_empty()) {
        label_mounts(&mut mounts, label)?;
    }
    if let Some((i, m)) = mounts.iter().enumerate().find(|(_, m)| rootless && m.idmap.is_some()) {
        bail!(
            "mounts[{i}] {}: idmap and ridmap are not supported unprivileged yet",
            m.destination.display()
        );
    }
    Ok(mounts)
}

/// maskedPaths and readonlyPaths are absolute; intelRdt is refused where it cannot be had.
fn check_paths_and_rdt(linux: &Linux) -> Result<()> {
    check_absolute("linux.maskedPaths", linux.masked_paths())?;
    check_absolute("linux.readonlyPaths", linux.readonly_paths())?;
    if linux.intel_rdt().is_some() {
        check_intel_rdt()?;
    }
    Ok(())
}

/// The config's `linux`, or, where it has none, one that asks for nothing
/// (as `"linux": {}`): no namespaces, masked paths or resources. oci-spec's
/// `Linux::default()` is not that but a template, with new namespaces and
/// masked paths: a container would get them from create and not from
/// checkpoint, which reads the config as it is.
pub fn linux_or_empty(spec: &Spec) -> Linux {
    spec.linux()
        .clone()
        .unwrap_or_else(|| serde_json::from_str("{}").expect("every field of linux is optional"))
}

/// What the init of a container without `process` is until `start` fails:
/// root in the container, no capability, no_new_privileges, no program.
fn placeholder_process() -> Process {
    let none = std::collections::HashSet::new();
    let caps = oci_spec::runtime::LinuxCapabilitiesBuilder::default()
        .bounding(none.clone())
        .effective(none.clone())
        .inheritable(none.clone())
        .permitted(none.clone())
        .ambient(none)
        .build()
        .expect("all fields set");
    let mut p = Process::default();
    p.set_terminal(Some(false));
    p.set_args(Some(vec!["(no process)".into()]));
    p.set_env(None);
    p.set_rlimits(None);
    p.set_capabilities(Some(caps));
    p.set_no_new_privileges(Some(true));
    p.set_apparmor_profile(None);
    p.set_selinux_label(None);
    p
}

/// A container in husk's mount namespace gets no mounts (they would land in
/// the host's mount table, and `/` would lose its propagation): what only
/// mounts give is refused rather than silently missing.
fn check_shared_mount_namespace(root_readonly: bool, linux: &Linux, process: &Process) -> Result<()> {
    let non_empty = |v: &Option<Vec<String>>| v.as_ref().is_some_and(|v| !v.is_empty());
    let needs = [
        ("root.readonly", root_readonly),
        ("linux.maskedPaths", non_empty(linux.masked_paths())),
        ("linux.readonlyPaths", non_empty(linux.readonly_paths())),
        ("linux.rootfsPropagation", linux.rootfs_propagation().is_some()),
        // The pty comes from the container's own devpts.
        ("process.terminal", process.terminal().unwrap_or(false)),
    ];
    if let Some((field, _)) = needs.iter().find(|(_, set)| *set) {
        bail!("{field}: needs a mount namespace of the container's own, not husk's or the host's");
    }
    Ok(())
}

/// createContainer hooks' paths resolve in the runtime's mount namespace (the
/// spec), of which a new mount namespace is a copy until pivot_root. In one
/// joined by path they would resolve in that namespace's files (another
/// container's, say), and that file run with husk's rights (review 46 F2).
fn check_create_container_hooks(
    hooks: &oci_spec::runtime::Hooks,
    namespaces: &NamespacePlan,
    own_mount_namespace: bool,
) -> Result<()> {
    let joined = namespaces
        .joined_path(libc::CLONE_NEWNS)
        .filter(|_| own_mount_namespace);
    match (joined, hooks.create_container().as_deref()) {
        (Some(path), Some([_, ..])) => bail!(
            "hooks.createContainer: not with the mount namespace joined from {}: the hooks' paths must resolve in the runtime's mount namespace",
            path.display()
        ),
        _ => Ok(()),
    }
}

/// Hooks run on the host: a path relative to wherever husk happens to run, or a
/// timeout that expires at once, is a mistake rather than a choice.
fn check_hooks(hooks: &oci_spec::runtime::Hooks) -> Result<()> {
    let kinds = [
        ("prestart", hooks.prestart()),
        ("createRuntime", hooks.create_runtime()),
        ("createContainer", hooks.create_container()),
        ("startContainer", hooks.start_container()),
        ("poststart", hooks.poststart()),
        ("poststop", hooks.poststop()),
    ];
    for (kind, list) in kinds {
        for (i, hook) in list.iter().flatten().enumerate() {
            let path = hook.path();
            if !path.is_absolute() {
                bail!("hooks.{kind}[{i}].path \"{}\": must be absolute", path.display());
            }
            if let Some(t) = hook.timeout().filter(|t| *t <= 0) {
                bail!("hooks.{kind}[{i}].timeout {t}: must be a positive number of seconds");
            }
        }
    }
    Ok(())
}

/// maskedPaths and readonlyPaths are paths in the container, from its root.
fn check_absolute(field: &str, paths: &Option<Vec<String>>) -> Result<()> {
    for (i, p) in paths.iter().flatten().enumerate() {
        if !p.starts_with('/') {
            bail!("{field}[{i}] \"{p}\": must be absolute");
        }
    }
    Ok(())
}

/// husk does not implement Intel RDT: a config that asks for it must not
/// silently run without it.
fn check_intel_rdt() -> Result<()> {
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let has_resctrl = info.lines().any(|l| {
        l.split_once(" - ")
            .is_some_and(|(_, post)| post.starts_with("resctrl "))
    });
    if !has_resctrl {
        bail!("linux.intelRdt: this host has no resctrl filesystem (Intel RDT is not enabled)");
    }
    bail!("linux.intelRdt: not supported by husk")
}

/// The hostname and domainname go into the container's uts namespace, which
/// must not be husk's own (the host's).
fn check_private_uts(field: &str, namespaces: &NamespacePlan) -> Result<()> {
    match namespaces.shared_with_caller(libc::CLONE_NEWUTS)? {
        None => Ok(()),
        Some(Shared::Unlisted) => bail!("{field}: cannot set a {field} without a private UTS namespace"),
        Some(Shared::Joined(path)) => bail!(
            "{field}: the uts namespace {} is husk's own or the host's, not the container's",
            path.display()
        ),
    }
}

fn time_offsets(linux: &oci_spec::runtime::Linux, ns: &NamespacePlan) -> Result<String> {
    let Some(offsets) = linux.time_offsets().as_ref().filter(|o| !o.is_empty()) else {
        return Ok(String::new());
    };
    if !ns.is_new(libc::CLONE_NEWTIME) {
        bail!("linux.timeOffsets need a new time namespace");
    }
    let mut lines = Vec::new();
    for (clock, o) in offsets {
        if clock != "monotonic" && clock != "boottime" {
            bail!("linux.timeOffsets: unknown clock \"{clock}\"");
        }
        lines.push(format!(
            "{clock} {} {}\n",
            o.secs().unwrap_or(0),
            o.nanosecs().unwrap_or(0)
        ));
    }
    lines.sort();
    Ok(lines.concat())
}

/// `linux.mountLabel`: the SELinux context of the filesystems mounted for the
/// container, as `context=` mount data (as runc does; proc, sysfs and cgroup
/// take none). Without SELinux there is no policy to label for: dropped with
/// a warning, as crun and runc do.
fn label_mounts(mounts: &mut [MountPlan], label: &str) -> Result<()> {
    if !attrs::selinux_enabled() {
        log::warn(&format!(
            "linux.mountLabel {label}: SELinux is not enabled on this host, ignored"
        ));
        return Ok(());
    }
    for m in mounts.iter_mut() {
        if let mounts::MountKind::Fs { fstype, .. } = &m.kind {
            if !matches!(fstype.as_str(), "proc" | "sysfs" | "cgroup2") {
                let context = format!("context=\"{label}\"");
                m.data = if m.data.is_empty() {
                    context
                } else {
                    format!("{},{context}", m.data)
                };
            }
        }
    }
    Ok(())
}

fn cgroup_plan(linux: &oci_spec::runtime::Linux, opts: &Options, devices: &[DevicePlan]) -> Result<Option<CgroupPlan>> {
    use crate::cgroups::{self, resources, systemd};
    let configured = linux
        .cgroups_path()
        .as_ref()
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_default();
    // A unit's cgroup path is systemd's to tell: `prepare` asks.
    let (unit, path) = match opts.systemd_cgroup {
        true => (Some(systemd::parse_path(&configured, opts.id, opts.rootless)?), None),
        false => (None, Some(cgroups::resolve_path(&configured, opts.id, &opts.root)?)),
    };
    let hierarchies = cgroups::hierarchies()?;
    let is_v2 = |c: &str| cgroups::is_v2_in(&hierarchies, c);
    let resources = linux.resources().as_ref();
    let writes = match resources {
        Some(r) => resources::writes(r, &is_v2)?,
        None => Vec::new(),
    };
    // Unprivileged, nobody can attach device rules (v2 eBPF, v1 devices
    // cgroup); the user namespace keeps the container from host devices.
    let device_nodes = match opts.rootless {
        true => Vec::new(),
        false => resources::device_nodes(devices),
    };
    let devices = match opts.rootless {
        true => Vec::new(),
        false => resources::device_rules(resources, &device_nodes)?,
    };
    let has_limits = !writes.is_empty();
    let unified = cgroups::is_unified();
    // systemd can only make a scope around a process that exists.
    let at_clone = !opts.rootless && unit.is_none();
    let systemd = unit.map(|unit| systemd::SystemdPlan {
        unit,
        properties: systemd::resource_properties(resources, is_v2("memory")),
        description: format!("husk container {}", opts.id),
    });
    Ok(Some(CgroupPlan {
        path,
        hierarchies,
        unified,
        writes,
        devices,
        device_nodes,
        best_effort: opts.rootless && systemd.is_none(),
        has_limits,
        at_clone,
        systemd,
    }))
}

fn userns_plan(linux: &oci_spec::runtime::Linux, ns: &NamespacePlan, rootless: bool) -> Result<Option<UsernsPlan>> {
    let (euid, egid) = (nix::unistd::geteuid().as_raw(), nix::unistd::getegid().as_raw());
    let uid_maps = linux.uid_mappings().clone().unwrap_or_default();
    let gid_maps = linux.gid_mappings().clone().unwrap_or_default();
    if rootless && euid != 0 && !ns.has(libc::CLONE_NEWUSER) {
        bail!("linux.namespaces: running unprivileged needs a user namespace (see husk spec --rootless)");
    }
    if ns.is_new(libc::CLONE_NEWUSER) {
        Ok(Some(userns::plan(&uid_maps, &gid_maps, euid, egid)?))
    } else if !uid_maps.is_empty() || !gid_maps.is_empty() {
        bail!("linux.uidMappings: mappings need a new user namespace in linux.namespaces");
    } else {
        Ok(None)
    }
}

fn rootfs_propagation(p: &str) -> Result<libc::c_ulong> {
    use libc::*;
    Ok(match p {
        "private" => MS_PRIVATE,
        "rprivate" => MS_PRIVATE | MS_REC,
        "shared" => MS_SHARED,
        "rshared" => MS_SHARED | MS_REC,
        "slave" => MS_SLAVE,
        "rslave" => MS_SLAVE | MS_REC,
        "unbindable" => MS_UNBINDABLE,
        "runbindable" => MS_UNBINDABLE | MS_REC,
        _ => bail!("linux.rootfsPropagation: unknown propagation \"{p}\""),
    })
}

/// process.consoleSize as the terminal takes it (16 bits each): a larger
/// value was cut to its low bits (65537 rows became 1), as runc does.
fn console_size(p: &Process) -> Result<Option<(u16, u16)>> {
    let Some(size) = p.console_size() else {
        return Ok(None);
    };
    let fit = |field: &str, value: u64| {
        u16::try_from(value)
            .map_err(|_| Error::new(format!("process.consoleSize.{field} {value}: must be at most 65535")))
    };
    Ok(Some((fit("height", size.height())?, fit("width", size.width())?)))
}

pub fn process_plan(
    p: &Process,
    linux: &oci_spec::runtime::Linux,
    opts: &Options,
    last_cap: u8,
) -> Result<ProcessPlan> {
    let args = p.args().clone().unwrap_or_default();
    let Some(program) = args.first().cloned() else {
        bail!("process.args must not be empty")
    };
    if program.is_empty() {
        bail!("process.args[0] is empty");
    }
    if !p.cwd().is_absolute() {
        bail!("process.cwd {} must be an absolute path", p.cwd().display());
    }
    let env = p.env().clone().unwrap_or_default();
    if let Some((i, bad)) = env.iter().enumerate().find(|(_, e)| !e.contains('=')) {
        bail!("process.env[{i}] \"{bad}\" is not KEY=VALUE");
    }
    let to_c = |v: &[String], field: &str| -> Result<Vec<CString>> {
        v.iter()
            .map(|s| cstring(s).context(|| format!("process.{field}")))
            .collect()
    };
    let user = p.user();
    Ok(ProcessPlan {
        args: to_c(&args, "args")?,
        program,
        env: to_c(&env, "env")?,
        cwd: p.cwd().clone(),
        uid: user.uid(),
        gid: user.gid(),
        additional_gids: user.additional_gids().clone().unwrap_or_default(),
        umask: user.umask().unwrap_or(0o022),
        terminal: p.terminal().unwrap_or(false),
        console_size: console_size(p)?,
        caps: caps_plan(p, last_cap)?,
        attrs: attrs::plan(p, linux, opts.id, opts.new_keyring)?,
    })
}

fn caps_plan(p: &Process, last_cap: u8) -> Result<Option<CapsPlan>> {
    let Some(c) = p.capabilities() else {
        return Ok(None);
    };
    let (plan, missing) = capabilities::plan(c, last_cap)?;
    if !missing.is_empty() {
        log::warn(&format!(
            "this kernel lacks {}: left out of process.capabilities",
            missing.join(", ")
        ));
    }
    Ok(Some(plan))
}

impl ProcessPlan {
    /// The container's PATH, as the process will see it.
    pub fn path_var(&self) -> Option<&str> {
        self.env
            .iter()
            .filter_map(|e| e.to_str().ok())
            .find_map(|e| e.strip_prefix("PATH="))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions() {
        for ok in [
            "1.0.0",
            "1.0.2-dev",
            "1.1.0",
            "1.2.0",
            "1.2.1+meta",
            "1.3.0",
            "1.3.1-rc.1",
        ] {
            check_version(ok).unwrap();
        }
        assert!(check_version("").unwrap_err().message().contains("missing"));
        assert!(check_version("2.0.0").unwrap_err().message().contains("not supported"));
        assert!(check_version("1.4.0").unwrap_err().message().contains("not supported"));
        assert_eq!(minor_version("1.3.0"), Some(3));
        assert_eq!(minor_version("1.0.2-dev"), Some(0));
        assert_eq!(minor_version("1.12.0+x"), Some(12));
        assert_eq!(minor_version("2.3.0"), None);
        assert_eq!(minor_version("one"), None);
        assert!(check_version("one").unwrap_err().message().contains("semantic"));
    }

    #[test]
    fn parse_errors_name_the_field() {
        let e =
            parse(r#"{"ociVersion":"1.0.0","linux":{"namespaces":[{"type":"pid"},{"type":"bogus"}]}}"#).unwrap_err();
        assert!(e.message().starts_with("linux.namespaces[1].type"), "{e}");
        // A wrong type for an enum is no syntax error (serde_json says so).
        let e = parse(r#"{"ociVersion":"1.0.0","process":{"cwd":"/","rlimits":[{"type":7,"soft":1,"hard":1}]}}"#)
            .unwrap_err();
        assert!(e.message().starts_with("process.rlimits[0].type: not a value"), "{e}");
        let e = parse("{\"ociVersion\": ").unwrap_err();
        assert!(e.message().starts_with("malformed JSON"), "{e}");
    }

    fn plan_of(json: &str) -> Result<Plan> {
        static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let dir = std::env::temp_dir().join(format!("husk-unit-{}-{n}", std::process::id()));
        std::fs::create_dir_all(dir.join("rootfs")).unwrap();
        let opts = Options {
            id: "t",
            no_pivot: false,
            new_keyring: false,
            rootless: false,
            systemd_cgroup: false,
            root: PathBuf::from("/run/husk"),
        };
        let r = plan(parse(json).unwrap(), dir.clone(), &opts);
        std::fs::remove_dir_all(&dir).unwrap();
        r
    }

    fn plan_err(json: &str) -> Error {
        plan_of(json).err().expect("an error")
    }

    #[test]
    fn plan_errors_name_the_field() {
        let base = |extra: &str| {
            format!(
                r#"{{"ociVersion":"1.0.0","root":{{"path":"rootfs"}},"process":{{"cwd":"/","args":["sh"],"user":{{"uid":0,"gid":0}}}}{extra}}}"#
            )
        };
        let ns = r#","linux":{"namespaces":[{"type":"mount"}]}"#;
        assert!(plan_of(&base(ns)).is_ok());
        let e = plan_err(&base(r#","hostname":"h","linux":{"namespaces":[{"type":"mount"}]}"#));
        assert!(e.message().contains("UTS namespace"), "{e}");
        let e = plan_err(&base(r#","linux":{"namespaces":[{"type":"mount"},{"type":"mount"}]}"#));
        assert!(e.message().contains("listed twice"), "{e}");
        let e = plan_err(&base(
            r#","linux":{"namespaces":[{"type":"mount"},{"type":"network","path":"/nonexistent"}]}"#,
        ));
        assert!(e.message().contains("linux.namespaces[1].path /nonexistent"), "{e}");
        let e = plan_err(&base(
            r#","linux":{"namespaces":[{"type":"mount"},{"type":"uts","path":"/proc/self/ns/net"}]}"#,
        ));
        assert!(e.message().contains("is not a uts namespace"), "{e}");
        let e = plan_err(&base(
            r#","linux":{"rootfsPropagation":"sideways","namespaces":[{"type":"mount"}]}"#,
        ));
        assert!(e.message().contains("rootfsPropagation"), "{e}");
        let shared = plan_of(&base(r#","linux":{"namespaces":[{"type":"pid"}]}"#)).unwrap();
        assert!(!shared.own_mount_namespace);
        let joined = r#","linux":{"namespaces":[{"type":"mount","path":"/proc/self/ns/mnt"}]}"#;
        assert!(!plan_of(&base(joined)).unwrap().own_mount_namespace);
        let hooked = r#","hooks":{"createContainer":[{"path":"/bin/true"}]},"linux":{"namespaces":[{"type":"mount","path":"/proc/self/ns/mnt"}]}"#;
        assert!(
            plan_of(&base(hooked)).is_ok(),
            "husk's own mount namespace is the runtime's"
        );
        let e = plan_err(&base(r#","linux":{"maskedPaths":["/proc/kcore"]}"#));
        assert!(
            e.message().starts_with("linux.maskedPaths: needs a mount namespace"),
            "{e}"
        );
    }

    #[test]
    fn memory_policy_errors_name_the_field() {
        let base = |policy: &str| {
            format!(
                r#"{{"ociVersion":"1.2.0","root":{{"path":"rootfs"}},"process":{{"cwd":"/","args":["sh"],"user":{{"uid":0,"gid":0}}}},"linux":{{"namespaces":[{{"type":"mount"}}],"memoryPolicy":{policy}}}}}"#
            )
        };
        let plan = plan_of(&base(r#"{"mode":"MPOL_INTERLEAVE","nodes":"0"}"#)).unwrap();
        let policy = plan.process.attrs.memory_policy.unwrap();
        assert_eq!((policy.mode, policy.nodes), (3, vec![1]));
        for (policy, at) in [
            (
                r#"{"mode":"INTERLEAVE","nodes":"0"}"#,
                "linux.memoryPolicy.mode: unknown variant",
            ),
            (r#"{"nodes":"0-7"}"#, "linux.memoryPolicy: missing field `mode`"),
            (
                r#"{"mode":"MPOL_PREFERRED","flags":["MPOL_F_RELATIVE_NODES","badflag"]}"#,
                "linux.memoryPolicy.flags[1]: unknown variant",
            ),
        ] {
            let e = parse(&base(policy)).expect_err("a parse error");
            assert!(e.message().starts_with(at), "{policy}: {e}");
        }
        let e = plan_err(&base(r#"{"mode":"MPOL_BIND","nodes":"0-9876543210"}"#));
        assert!(
            e.message().starts_with("linux.memoryPolicy.nodes \"0-9876543210\""),
            "{e}"
        );
        assert_eq!(e.kind(), &ErrorKind::InvalidConfig);
    }

    /// A config with a seccomp profile, run unprivileged through the user's
    /// systemd instance (whose unit path only a D-Bus call tells).
    fn seccomp_and_systemd_config(bundle: &Path) -> Spec {
        std::fs::create_dir_all(bundle.join("rootfs")).unwrap();
        let (uid, gid) = (nix::unistd::geteuid(), nix::unistd::getegid());
        parse(&format!(
            r#"{{"ociVersion":"1.0.0","root":{{"path":"rootfs"}},
                "process":{{"cwd":"/","args":["sh"],"user":{{"uid":0,"gid":0}}}},
                "linux":{{"namespaces":[{{"type":"mount"}},{{"type":"user"}}],
                    "uidMappings":[{{"containerID":0,"hostID":{uid},"size":1}}],
                    "gidMappings":[{{"containerID":0,"hostID":{gid},"size":1}}],
                    "resources":{{"memory":{{"limit":67108864}}}},
                    "seccomp":{{"defaultAction":"SCMP_ACT_ALLOW",
                        "syscalls":[{{"names":["unshare"],"action":"SCMP_ACT_ERRNO"}}]}}}}}}"#
        ))
        .unwrap()
    }

    #[test]
    fn planning_writes_nothing_and_talks_to_no_one() {
        let dir = std::env::temp_dir().join(format!("husk-pure-plan-{}", std::process::id()));
        let root = dir.join("state");
        let opts = Options {
            id: "t",
            no_pivot: false,
            new_keyring: false,
            rootless: true,
            systemd_cgroup: true,
            root: root.clone(),
        };
        let before = crate::cgroups::systemd::tests::CONNECTS.with(|n| n.get());
        let mut planned = plan(
            seccomp_and_systemd_config(&dir.join("bundle")),
            dir.join("bundle"),
            &opts,
        )
        .unwrap();
        let connects = crate::cgroups::systemd::tests::CONNECTS.with(|n| n.get()) - before;
        assert_eq!(connects, 0, "planning connected to systemd");
        assert!(!root.exists(), "planning wrote into the state root (the seccomp cache)");
        let filter = planned.seccomp.as_ref().unwrap();
        assert!(filter.bpf.is_empty(), "planning compiled the filter");
        let cgroup = planned.cgroup.as_ref().unwrap();
        assert!(cgroup.path.is_none(), "planning looked up the unit's cgroup");
        assert_eq!(cgroup.systemd.as_ref().unwrap().unit.name, "husk-t.scope");

        // Without systemd, prepare compiles (and caches) the filter only.
        planned.cgroup.as_mut().unwrap().systemd = None;
        prepare(&mut planned, &opts).unwrap();
        assert!(!planned.seccomp.as_ref().unwrap().bpf.is_empty());
        let cached = std::fs::read_dir(root.join(crate::CACHE_DIR)).unwrap().count();
        assert_eq!(cached, 1, "prepare caches the compiled filter");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_bad_seccomp_profile_fails_planning() {
        let e = plan_err(
            r#"{"ociVersion":"1.0.0","root":{"path":"rootfs"},"process":{"cwd":"/","args":["sh"],"user":{"uid":0,"gid":0}},
                "linux":{"namespaces":[{"type":"mount"}],"seccomp":{"defaultAction":"SCMP_ACT_ALLOW",
                "syscalls":[{"names":["read"],"action":"SCMP_ACT_ERRNO","args":[{"index":0,"value":0,"op":"SCMP_CMP_EQ"},{"index":9,"value":0,"op":"SCMP_CMP_EQ"}]}]}}}"#,
        );
        assert_eq!(e.message(), "linux.seccomp.syscalls[0].args[1].index 9 is over 5");
        assert_eq!(e.kind(), &ErrorKind::InvalidConfig);
    }

    #[test]
    fn a_console_size_beyond_16_bits_is_refused() {
        let config = |size: &str| {
            format!(
                r#"{{"ociVersion":"1.0.0","root":{{"path":"rootfs"}},"process":{{"cwd":"/","args":["sh"],"terminal":true,"consoleSize":{size},"user":{{"uid":0,"gid":0}}}},"linux":{{"namespaces":[{{"type":"mount"}}]}}}}"#
            )
        };
        let plan = plan_of(&config(r#"{"height":65535,"width":80}"#)).unwrap();
        assert_eq!(plan.process.console_size, Some((65535, 80)));
        let e = plan_err(&config(r#"{"height":24,"width":65536}"#));
        assert_eq!(e.message(), "process.consoleSize.width 65536: must be at most 65535");
    }

    #[test]
    fn create_container_hooks_are_refused_in_a_joined_mount_namespace() {
        let mut other = crate::test_support::in_new_mount_namespace();
        let ns = format!("/proc/{}/ns/mnt", other.id());
        let config = |hooks: &str| {
            format!(
                r#"{{"ociVersion":"1.0.0","root":{{"path":"rootfs"}},"process":{{"cwd":"/","args":["sh"],"user":{{"uid":0,"gid":0}}}},"hooks":{{{hooks}}},"linux":{{"namespaces":[{{"type":"mount","path":"{ns}"}}]}}}}"#
            )
        };
        let refused = plan_of(&config(r#""createContainer":[{"path":"/bin/true"}]"#)).err();
        let others = plan_of(&config(
            r#""createRuntime":[{"path":"/bin/true"}],"createContainer":[]"#,
        ))
        .is_ok();
        let _ = other.kill();
        let _ = other.wait();
        let refused = refused.expect("refused");
        assert_eq!(
            refused.message(),
            format!("hooks.createContainer: not with the mount namespace joined from {ns}: the hooks' paths must resolve in the runtime's mount namespace")
        );
        assert!(others);
    }

    #[test]
    fn hooks_paths_and_rdt_are_checked() {
        let base = |extra: &str| {
            format!(
                r#"{{"ociVersion":"1.0.0","root":{{"path":"rootfs"}},"process":{{"cwd":"/","args":["sh"],"user":{{"uid":0,"gid":0}}}},"linux":{{"namespaces":[{{"type":"mount"}}]{extra}}}}}"#
            )
        };
        let hooks = |h: &str| base(&format!(r#"}},"hooks":{{{h}"#));
        assert!(plan_of(&hooks(r#""prestart":[{"path":"/bin/true","timeout":1}]"#)).is_ok());
        let e = plan_err(&hooks(r#""prestart":[{"path":"/bin/true"},{"path":"x"}]"#));
        assert_eq!(e.message(), r#"hooks.prestart[1].path "x": must be absolute"#);
        let e = plan_err(&hooks(r#""poststop":[{"path":""}]"#));
        assert_eq!(e.message(), r#"hooks.poststop[0].path "": must be absolute"#);
        let e = plan_err(&hooks(r#""createRuntime":[{"path":"/bin/true","timeout":-1}]"#));
        assert!(
            e.message()
                .starts_with("hooks.createRuntime[0].timeout -1: must be a positive"),
            "{e}"
        );
        let e = plan_err(&hooks(r#""startContainer":[{"path":"/bin/true","timeout":0}]"#));
        assert!(e.message().starts_with("hooks.startContainer[0].timeout 0"), "{e}");
        let e = plan_err(&base(r#","maskedPaths":["/proc/kcore","proc/keys"]"#));
        assert_eq!(e.message(), r#"linux.maskedPaths[1] "proc/keys": must be absolute"#);
        let e = plan_err(&base(r#","readonlyPaths":[""]"#));
        assert_eq!(e.message(), r#"linux.readonlyPaths[0] "": must be absolute"#);
        let e = plan_err(&base(r#","intelRdt":{"closID":"c"}"#));
        assert!(e.message().starts_with("linux.intelRdt: "), "{e}");
    }
}
