//! Mount entries of config.json turned into plans: option strings parsed into
//! mount(2) flags, mount_setattr(2) attributes, propagation changes and fs data.
//! Pure: nothing here touches the host, so every rule is unit-tested.

use std::path::{Path, PathBuf};

use oci_spec::runtime::Mount;

use crate::bail;
use crate::error::Result;
use crate::process::userns::{self, IdRange, UsernsPlan};

// mount_setattr(2) attributes (linux/mount.h).
pub const MOUNT_ATTR_RDONLY: u64 = 0x01;
pub const MOUNT_ATTR_NOSUID: u64 = 0x02;
pub const MOUNT_ATTR_NODEV: u64 = 0x04;
pub const MOUNT_ATTR_NOEXEC: u64 = 0x08;
pub const MOUNT_ATTR_ATIME: u64 = 0x70;
pub const MOUNT_ATTR_RELATIME: u64 = 0x00;
pub const MOUNT_ATTR_NOATIME: u64 = 0x10;
pub const MOUNT_ATTR_STRICTATIME: u64 = 0x20;
pub const MOUNT_ATTR_NODIRATIME: u64 = 0x80;
pub const MOUNT_ATTR_NOSYMFOLLOW: u64 = 0x0020_0000;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MountKind {
    /// A bind of a host path (relative sources are relative to the bundle).
    Bind { source: PathBuf, recursive: bool },
    /// `type: cgroup`: the host's cgroup hierarchies as the container should see them.
    Cgroup,
    /// Any other filesystem: proc, sysfs, tmpfs, devpts, mqueue, cgroup2, ...
    Fs { fstype: String, source: String },
}

/// A set of attributes to set and clear with mount_setattr(2).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Attrs {
    pub set: u64,
    pub clear: u64,
}

impl Attrs {
    pub fn is_empty(&self) -> bool {
        self.set == 0 && self.clear == 0
    }

    /// A recursive option: the later of two opposite options wins. The atime
    /// modes are one field, which mount_setattr changes only when told to
    /// clear it all (`rnoatime`, `rstrictatime`, `rrelatime` pick a mode;
    /// `ratime`, `rnostrictatime`, `rnorelatime` go back to relatime, as runc).
    fn apply(&mut self, set: bool, attr: u64) {
        if attr & MOUNT_ATTR_ATIME == attr {
            let mode = if set { attr } else { MOUNT_ATTR_RELATIME };
            self.set = (self.set & !MOUNT_ATTR_ATIME) | mode;
            self.clear |= MOUNT_ATTR_ATIME;
        } else if set {
            self.set |= attr;
            self.clear &= !attr;
        } else {
            self.clear |= attr;
            self.set &= !attr;
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountPlan {
    pub destination: PathBuf,
    pub kind: MountKind,
    /// MS_* flags for mount(2) (non-bind mounts).
    pub flags: libc::c_ulong,
    /// Attributes of the top mount (bind mounts).
    pub attrs: Attrs,
    /// Attributes of the whole tree: `rro`, `rnosuid`, ...
    pub recursive_attrs: Attrs,
    /// MS_SHARED, MS_SLAVE|MS_REC, ... applied after the mount, in order.
    pub propagation: Vec<libc::c_ulong>,
    /// Options the kernel interprets itself (`mode=755`, `size=64k`).
    pub data: String,
    /// `idmap` / `ridmap`: the mount shows its files through these mappings.
    pub idmap: Option<Idmap>,
    /// `tmpcopyup`, `copy-symlink`.
    pub extensions: Extensions,
}

/// Mount options that change what is mounted rather than how.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Extensions {
    /// `tmpcopyup` (tmpfs): the new tmpfs starts with a copy of what it covers.
    pub copy_up: bool,
    /// `copy-symlink` (bind, as crun): a source that is a symlink is recreated
    /// at the destination as the same symlink instead of bound.
    pub copy_symlink: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Idmap {
    pub recursive: bool,
    pub uids: Vec<IdRange>,
    pub gids: Vec<IdRange>,
}

impl MountPlan {
    pub fn is_bind(&self) -> bool {
        matches!(self.kind, MountKind::Bind { .. })
    }

    pub fn is_readonly(&self) -> bool {
        self.flags & libc::MS_RDONLY != 0
    }
}

enum Opt {
    Flag { set: bool, flag: libc::c_ulong },
    Propagation(libc::c_ulong),
    Recursive { set: bool, attr: u64 },
    Bind { recursive: bool },
    CopyUp,
    CopySymlink,
}

fn lookup(name: &str) -> Option<Opt> {
    use libc::*;
    let flag = |set, flag| Some(Opt::Flag { set, flag });
    let rec = |set, attr| Some(Opt::Recursive { set, attr });
    match name {
        "defaults" => flag(true, 0),
        "ro" => flag(true, MS_RDONLY),
        "rw" => flag(false, MS_RDONLY),
        "nosuid" => flag(true, MS_NOSUID),
        "suid" => flag(false, MS_NOSUID),
        "nodev" => flag(true, MS_NODEV),
        "dev" => flag(false, MS_NODEV),
        "noexec" => flag(true, MS_NOEXEC),
        "exec" => flag(false, MS_NOEXEC),
        "sync" => flag(true, MS_SYNCHRONOUS),
        "async" => flag(false, MS_SYNCHRONOUS),
        "dirsync" => flag(true, MS_DIRSYNC),
        "mand" => flag(true, MS_MANDLOCK),
        "nomand" => flag(false, MS_MANDLOCK),
        "noatime" => flag(true, MS_NOATIME),
        "atime" => flag(false, MS_NOATIME),
        "nodiratime" => flag(true, MS_NODIRATIME),
        "diratime" => flag(false, MS_NODIRATIME),
        "relatime" => flag(true, MS_RELATIME),
        "norelatime" => flag(false, MS_RELATIME),
        "strictatime" => flag(true, MS_STRICTATIME),
        "nostrictatime" => flag(false, MS_STRICTATIME),
        "lazytime" => flag(true, MS_LAZYTIME),
        "nolazytime" => flag(false, MS_LAZYTIME),
        "silent" => flag(true, MS_SILENT),
        "loud" => flag(false, MS_SILENT),
        "remount" => flag(true, MS_REMOUNT),
        "nosymfollow" => flag(true, MS_NOSYMFOLLOW),
        "symfollow" => flag(false, MS_NOSYMFOLLOW),
        "bind" => Some(Opt::Bind { recursive: false }),
        "rbind" => Some(Opt::Bind { recursive: true }),
        "private" => Some(Opt::Propagation(MS_PRIVATE)),
        "rprivate" => Some(Opt::Propagation(MS_PRIVATE | MS_REC)),
        "shared" => Some(Opt::Propagation(MS_SHARED)),
        "rshared" => Some(Opt::Propagation(MS_SHARED | MS_REC)),
        "slave" => Some(Opt::Propagation(MS_SLAVE)),
        "rslave" => Some(Opt::Propagation(MS_SLAVE | MS_REC)),
        "unbindable" => Some(Opt::Propagation(MS_UNBINDABLE)),
        "runbindable" => Some(Opt::Propagation(MS_UNBINDABLE | MS_REC)),
        "rro" => rec(true, MOUNT_ATTR_RDONLY),
        "rrw" => rec(false, MOUNT_ATTR_RDONLY),
        "rnosuid" => rec(true, MOUNT_ATTR_NOSUID),
        "rsuid" => rec(false, MOUNT_ATTR_NOSUID),
        "rnodev" => rec(true, MOUNT_ATTR_NODEV),
        "rdev" => rec(false, MOUNT_ATTR_NODEV),
        "rnoexec" => rec(true, MOUNT_ATTR_NOEXEC),
        "rexec" => rec(false, MOUNT_ATTR_NOEXEC),
        "rnodiratime" => rec(true, MOUNT_ATTR_NODIRATIME),
        "rdiratime" => rec(false, MOUNT_ATTR_NODIRATIME),
        "rrelatime" => rec(true, MOUNT_ATTR_RELATIME),
        "rnorelatime" => rec(false, MOUNT_ATTR_RELATIME),
        "rnoatime" => rec(true, MOUNT_ATTR_NOATIME),
        "ratime" => rec(false, MOUNT_ATTR_NOATIME),
        "rstrictatime" => rec(true, MOUNT_ATTR_STRICTATIME),
        "rnostrictatime" => rec(false, MOUNT_ATTR_STRICTATIME),
        "rnosymfollow" => rec(true, MOUNT_ATTR_NOSYMFOLLOW),
        "rsymfollow" => rec(false, MOUNT_ATTR_NOSYMFOLLOW),
        "tmpcopyup" => Some(Opt::CopyUp),
        "copy-symlink" => Some(Opt::CopySymlink),
        _ => None,
    }
}

/// Whether husk understands the mount option `name` (for `features`).
pub fn is_known_option(name: &str) -> bool {
    lookup(name).is_some() || matches!(name, "idmap" | "ridmap")
}

/// The mount_setattr(2) attributes that the MS_* `flags` ask of a bind mount.
/// `cleared` are the flags an option such as `rw` or `suid` explicitly turned off.
pub fn bind_attrs(flags: libc::c_ulong, cleared: libc::c_ulong) -> Attrs {
    let pairs = [
        (libc::MS_RDONLY, MOUNT_ATTR_RDONLY),
        (libc::MS_NOSUID, MOUNT_ATTR_NOSUID),
        (libc::MS_NODEV, MOUNT_ATTR_NODEV),
        (libc::MS_NOEXEC, MOUNT_ATTR_NOEXEC),
        (libc::MS_NODIRATIME, MOUNT_ATTR_NODIRATIME),
        (libc::MS_NOSYMFOLLOW, MOUNT_ATTR_NOSYMFOLLOW),
    ];
    let mut attrs = Attrs::default();
    for (flag, attr) in pairs {
        if flags & flag != 0 {
            attrs.set |= attr;
        } else if cleared & flag != 0 {
            attrs.clear |= attr;
        }
    }
    let atime = if flags & libc::MS_NOATIME != 0 {
        Some(MOUNT_ATTR_NOATIME)
    } else if flags & libc::MS_STRICTATIME != 0 {
        Some(MOUNT_ATTR_STRICTATIME)
    } else if flags & libc::MS_RELATIME != 0 {
        Some(MOUNT_ATTR_RELATIME)
    } else {
        None
    };
    if let Some(a) = atime {
        // Changing the atime mode means clearing the whole atime field first.
        attrs.set |= a;
        attrs.clear |= MOUNT_ATTR_ATIME;
    }
    attrs
}

/// Whether `path` (absolute) names / once `.` and `..` are taken as they read.
fn is_root(path: &Path) -> bool {
    use std::path::Component;
    let mut depth = 0usize;
    for c in path.components() {
        match c {
            Component::Normal(_) => depth += 1,
            Component::ParentDir => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    depth == 0
}

/// `container` is the container's user namespace, whose mappings an `idmap`
/// mount without mappings of its own uses.
pub fn plan(index: usize, m: &Mount, bundle: &Path, container: Option<&UsernsPlan>) -> Result<MountPlan> {
    let field = format!("mounts[{index}]");
    let destination = destination_of(&field, m)?;
    let fstype = m.typ().as_deref().unwrap_or("");
    let opts = Options::parse(fstype, m.options().as_deref().unwrap_or(&[]));
    let kind = kind_of(&field, m, fstype, opts.bind, bundle, &destination)?;
    check_extensions(&field, opts.extensions, &kind)?;
    if matches!(kind, MountKind::Bind { .. }) && !opts.data.is_empty() {
        // A bind mount takes no filesystem options: what is not a flag is
        // dropped (as runc does), but said, a misspelt flag among them.
        crate::log::warn(&format!(
            "{field} {}: options a bind mount does not know are ignored: {}",
            destination.display(),
            opts.data.join(", ")
        ));
    }
    let attrs = match kind {
        MountKind::Bind { .. } => bind_attrs(opts.flags, opts.cleared),
        _ => Attrs::default(),
    };
    let idmap = match opts.idmap {
        None if m.uid_mappings().is_some() || m.gid_mappings().is_some() => {
            bail!("{field}: uidMappings and gidMappings need the idmap or ridmap option")
        }
        None => None,
        Some(recursive) => Some(idmap_plan(&field, m, &kind, recursive, container)?),
    };
    Ok(MountPlan {
        destination,
        kind,
        flags: opts.flags,
        attrs,
        recursive_attrs: opts.recursive_attrs,
        propagation: opts.propagation,
        data: opts.data.join(","),
        idmap,
        extensions: opts.extensions,
    })
}

/// The mount's destination, absolute; never the container's root.
fn destination_of(field: &str, m: &Mount) -> Result<PathBuf> {
    let dest = m.destination();
    if dest.as_os_str().is_empty() {
        bail!("{field}.destination is empty");
    }
    let destination = Path::new("/").join(dest);
    if is_root(&destination) {
        // A mount over the root would stand in for root.path (its
        // readonly, its /dev made in the bundle's directory beneath).
        bail!(
            "{field}.destination {}: the container's root cannot be a mount destination",
            dest.display()
        );
    }
    if dest.is_relative() {
        // As runc: relative to the container's /, with a warning.
        crate::log::warn(&format!(
            "{field}.destination {} is not absolute: taken as {}",
            dest.display(),
            destination.display()
        ));
    }
    Ok(destination)
}

/// A mount's options, sorted by what each is.
struct Options<'a> {
    flags: libc::c_ulong,
    /// Flags an option cleared ("rw", "suid", ...).
    cleared: libc::c_ulong,
    /// Some(recursive) for a bind mount.
    bind: Option<bool>,
    propagation: Vec<libc::c_ulong>,
    recursive_attrs: Attrs,
    /// What is no flag: the filesystem's own options.
    data: Vec<&'a str>,
    /// Some(recursive) for an idmap or ridmap mount.
    idmap: Option<bool>,
    extensions: Extensions,
}

impl<'a> Options<'a> {
    fn parse(fstype: &str, options: &'a [String]) -> Options<'a> {
        let mut o = Options {
            flags: 0,
            cleared: 0,
            bind: (fstype == "bind").then_some(false),
            propagation: Vec::new(),
            recursive_attrs: Attrs::default(),
            data: Vec::new(),
            idmap: None,
            extensions: Extensions::default(),
        };
        for opt in options {
            match lookup(opt) {
                Some(Opt::Flag { set: true, flag }) => o.flags |= flag,
                Some(Opt::Flag { set: false, flag }) => {
                    o.flags &= !flag;
                    o.cleared |= flag;
                }
                Some(Opt::Propagation(p)) => o.propagation.push(p),
                Some(Opt::Recursive { set, attr }) => o.recursive_attrs.apply(set, attr),
                Some(Opt::Bind { recursive }) => o.bind = Some(recursive || o.bind == Some(true)),
                Some(Opt::CopyUp) => o.extensions.copy_up = true,
                Some(Opt::CopySymlink) => o.extensions.copy_symlink = true,
                None if opt == "idmap" || opt == "ridmap" => o.idmap = Some(opt == "ridmap"),
                None => o.data.push(opt.as_str()),
            }
        }
        o
    }
}

/// What is mounted: a bind of `bind`'s source (`Some(recursive)`), a
/// cgroup hierarchy, or a filesystem of `fstype`.
fn kind_of(
    field: &str,
    m: &Mount,
    fstype: &str,
    bind: Option<bool>,
    bundle: &Path,
    destination: &Path,
) -> Result<MountKind> {
    Ok(if let Some(recursive) = bind {
        let source = m.source().as_deref().unwrap_or(Path::new(""));
        if source.as_os_str().is_empty() {
            bail!("{field}: a bind mount needs a source");
        }
        MountKind::Bind {
            source: bundle.join(source),
            recursive,
        }
    } else if fstype == "cgroup" {
        // Its hierarchies would be made in the rootfs itself, under a tmpfs
        // that hides them from the container.
        MountKind::Cgroup
    } else if fstype.is_empty() {
        bail!("{field}.type is missing for {}", destination.display());
    } else {
        let source = m.source().as_deref().map(|s| s.to_string_lossy().into_owned());
        MountKind::Fs {
            fstype: fstype.to_string(),
            source: source.unwrap_or_else(|| fstype.to_string()),
        }
    })
}

/// Each extension on the one kind of mount it has a meaning for.
fn check_extensions(field: &str, extensions: Extensions, kind: &MountKind) -> Result<()> {
    let is_tmpfs = matches!(kind, MountKind::Fs { fstype, .. } if fstype == "tmpfs");
    if extensions.copy_up && !is_tmpfs {
        bail!("{field}: mount option \"tmpcopyup\" is for tmpfs mounts only");
    }
    if extensions.copy_symlink && !matches!(kind, MountKind::Bind { .. }) {
        bail!("{field}: mount option \"copy-symlink\" is for bind mounts only");
    }
    Ok(())
}

fn idmap_plan(
    field: &str,
    m: &Mount,
    kind: &MountKind,
    recursive: bool,
    container: Option<&UsernsPlan>,
) -> Result<Idmap> {
    if !matches!(kind, MountKind::Bind { .. }) {
        bail!("{field}: idmap is supported on bind mounts only");
    }
    let (uids, gids) = match (m.uid_mappings(), m.gid_mappings(), container) {
        (Some(u), Some(g), _) => (
            userns::ranges(&format!("{field}.uidMappings"), u)?,
            userns::ranges(&format!("{field}.gidMappings"), g)?,
        ),
        (None, None, Some(c)) => (c.uids.clone(), c.gids.clone()),
        (None, None, None) => {
            bail!("{field}: idmap without mappings needs a user namespace with mappings")
        }
        _ => bail!("{field}: give both uidMappings and gidMappings, or neither"),
    };
    Ok(Idmap { recursive, uids, gids })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mount(json: &str) -> Result<MountPlan> {
        let m: Mount = serde_json::from_str(json).unwrap();
        plan(0, &m, Path::new("/bundle"), None)
    }

    #[test]
    fn tmpfs_flags_and_data() {
        let p = mount(r#"{"destination":"/dev","type":"tmpfs","source":"tmpfs","options":["nosuid","strictatime","mode=755","size=65536k"]}"#).unwrap();
        assert_eq!(p.flags, libc::MS_NOSUID | libc::MS_STRICTATIME);
        assert_eq!(p.data, "mode=755,size=65536k");
        assert!(!p.is_bind());
    }

    #[test]
    fn bind_ro_becomes_attributes_and_relative_source_joins_bundle() {
        let p = mount(
            r#"{"destination":"data","type":"none","source":"vol","options":["rbind","ro","nosuid","rprivate"]}"#,
        )
        .unwrap();
        assert_eq!(p.destination, PathBuf::from("/data"));
        assert_eq!(
            p.kind,
            MountKind::Bind {
                source: "/bundle/vol".into(),
                recursive: true
            }
        );
        assert_eq!(p.attrs.set, MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID);
        assert_eq!(p.propagation, vec![libc::MS_PRIVATE | libc::MS_REC]);
    }

    #[test]
    fn rw_clears_and_rro_is_recursive() {
        let p = mount(r#"{"destination":"/x","type":"bind","source":"/y","options":["rw","rro","noatime"]}"#).unwrap();
        assert_eq!(
            p.kind,
            MountKind::Bind {
                source: "/y".into(),
                recursive: false
            }
        );
        assert_eq!(p.attrs.clear & MOUNT_ATTR_RDONLY, MOUNT_ATTR_RDONLY);
        assert_eq!(p.attrs.set, MOUNT_ATTR_NOATIME);
        assert_eq!(p.recursive_attrs.set, MOUNT_ATTR_RDONLY);
    }

    #[test]
    fn nosymfollow_plain_and_recursive() {
        // Unknown, these went into the fs data, which a bind mount ignores.
        let p =
            mount(r#"{"destination":"/x","type":"bind","source":"/y","options":["rbind","rnosymfollow"]}"#).unwrap();
        assert_eq!(p.recursive_attrs.set, MOUNT_ATTR_NOSYMFOLLOW);
        assert_eq!((p.attrs, p.data.as_str()), (Attrs::default(), ""));
        let p = mount(r#"{"destination":"/x","type":"bind","source":"/y","options":["nosymfollow","rsymfollow"]}"#)
            .unwrap();
        assert_eq!(p.attrs.set, MOUNT_ATTR_NOSYMFOLLOW);
        assert_eq!(p.recursive_attrs.clear, MOUNT_ATTR_NOSYMFOLLOW);
        let p = mount(r#"{"destination":"/t","type":"tmpfs","options":["nosymfollow","symfollow","nosymfollow"]}"#)
            .unwrap();
        assert_eq!((p.flags, p.data.as_str()), (libc::MS_NOSYMFOLLOW, ""));
        let p = mount(r#"{"destination":"/t","type":"tmpfs","options":["nosymfollow","symfollow"]}"#).unwrap();
        assert_eq!(p.flags, 0);
    }

    #[test]
    fn later_options_override_earlier_ones() {
        let p = mount(r#"{"destination":"/p","type":"proc","options":["ro","rw"]}"#).unwrap();
        assert_eq!(p.flags & libc::MS_RDONLY, 0);
        assert_eq!(
            p.kind,
            MountKind::Fs {
                fstype: "proc".into(),
                source: "proc".into()
            }
        );
    }

    #[test]
    fn errors_name_the_mount() {
        let e = mount(r#"{"destination":"/x","options":["bind"]}"#).unwrap_err();
        assert!(
            e.message().contains("mounts[0]") && e.message().contains("source"),
            "{e}"
        );
        let e = mount(r#"{"destination":"/x","source":"a"}"#).unwrap_err();
        assert!(e.message().contains("mounts[0].type"), "{e}");
        let e = mount(r#"{"destination":"/x","type":"bind","source":"/a","options":["idmap"]}"#).unwrap_err();
        assert!(e.message().contains("idmap without mappings"), "{e}");
        let e = mount(r#"{"destination":"/x","type":"tmpfs","options":["idmap"]}"#).unwrap_err();
        assert!(e.message().contains("bind mounts only"), "{e}");
        let e = mount(
            r#"{"destination":"/x","type":"bind","source":"/a","uidMappings":[{"containerID":0,"hostID":1,"size":1}]}"#,
        )
        .unwrap_err();
        assert!(e.message().contains("need the idmap"), "{e}");
    }

    #[test]
    fn tmpcopyup_on_tmpfs_and_copy_symlink_on_binds() {
        let p =
            mount(r#"{"destination":"/run","type":"tmpfs","source":"tmpfs","options":["rw","nosuid","tmpcopyup"]}"#)
                .unwrap();
        assert!(p.extensions.copy_up && !p.extensions.copy_symlink);
        assert_eq!(p.data, "", "not passed to the kernel");
        let p = mount(r#"{"destination":"/l","type":"bind","source":"/a","options":["bind","copy-symlink"]}"#).unwrap();
        assert!(p.extensions.copy_symlink && !p.extensions.copy_up);

        let e = mount(r#"{"destination":"/p","type":"proc","options":["tmpcopyup"]}"#).unwrap_err();
        assert!(
            e.message().contains("mounts[0]") && e.message().contains("tmpcopyup"),
            "{e}"
        );
        let e = mount(r#"{"destination":"/t","type":"tmpfs","options":["copy-symlink"]}"#).unwrap_err();
        assert!(
            e.message().contains("copy-symlink") && e.message().contains("bind"),
            "{e}"
        );
    }

    fn recursive(options: &str) -> Attrs {
        let json = format!(r#"{{"destination":"/x","type":"bind","source":"/y","options":[{options}]}}"#);
        mount(&json).unwrap().recursive_attrs
    }

    #[test]
    fn recursive_options_later_wins_and_atime_is_one_field() {
        let r = recursive(r#""rro","rrw""#);
        assert_eq!((r.set, r.clear), (0, MOUNT_ATTR_RDONLY));
        let r = recursive(r#""rnosuid","rnodev","rsuid""#);
        assert_eq!((r.set, r.clear), (MOUNT_ATTR_NODEV, MOUNT_ATTR_NOSUID));
        let r = recursive(r#""rnoatime""#);
        assert_eq!((r.set, r.clear), (MOUNT_ATTR_NOATIME, MOUNT_ATTR_ATIME));
        let r = recursive(r#""rnoatime","rstrictatime""#);
        assert_eq!((r.set, r.clear), (MOUNT_ATTR_STRICTATIME, MOUNT_ATTR_ATIME));
        // The "no" forms (and ratime) go back to the default, relatime.
        for back in ["ratime", "rnostrictatime", "rnorelatime", "rrelatime"] {
            let r = recursive(&format!(r#""rnoatime","{back}""#));
            assert_eq!((r.set, r.clear), (MOUNT_ATTR_RELATIME, MOUNT_ATTR_ATIME), "{back}");
        }
        let r = recursive(r#""rnodiratime","rstrictatime""#);
        assert_eq!(
            (r.set, r.clear),
            (MOUNT_ATTR_NODIRATIME | MOUNT_ATTR_STRICTATIME, MOUNT_ATTR_ATIME)
        );
    }

    #[test]
    fn every_option_that_features_lists_is_parsed() {
        for o in [
            "tmpcopyup",
            "copy-symlink",
            "ratime",
            "rnorelatime",
            "rnostrictatime",
            "rro",
            "idmap",
        ] {
            assert!(is_known_option(o), "{o}");
        }
    }

    #[test]
    fn idmap_with_own_mappings() {
        let p = mount(
            r#"{"destination":"/x","type":"bind","source":"/a","options":["rbind","ridmap"],
                "uidMappings":[{"containerID":0,"hostID":1000,"size":10}],"gidMappings":[{"containerID":0,"hostID":2000,"size":10}]}"#,
        )
        .unwrap();
        let idmap = p.idmap.unwrap();
        assert!(idmap.recursive);
        assert_eq!(
            idmap.uids[0],
            IdRange {
                container: 0,
                host: 1000,
                size: 10
            }
        );
        assert_eq!(idmap.gids[0].host, 2000);
    }
}
