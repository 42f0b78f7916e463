//! `/dev` inside the container: the default device nodes, `linux.devices`, and
//! the standard symlinks. Every node and link is made relative to a directory fd
//! resolved inside the rootfs, so an image whose `/dev` is a symlink cannot send
//! device setup to the host (CVE-2026-41579).

use std::ffi::CString;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::AtFlags;
use nix::sys::stat::{mknodat, Mode, SFlag};
use nix::unistd::{fchownat, symlinkat, unlinkat, Gid, Uid, UnlinkatFlags};
use oci_spec::runtime::{LinuxDevice, LinuxDeviceType};

use crate::bail;
use crate::error::{Context, Result};
use crate::rootfs::resolve;
use crate::sys;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DevicePlan {
    pub path: PathBuf,
    /// S_IFCHR, S_IFBLK or S_IFIFO.
    pub kind: libc::mode_t,
    pub major: u64,
    pub minor: u64,
    pub mode: libc::mode_t,
    pub uid: u32,
    pub gid: u32,
}

const DEFAULTS: [(&str, u64, u64); 6] = [
    ("/dev/null", 1, 3),
    ("/dev/zero", 1, 5),
    ("/dev/full", 1, 7),
    ("/dev/random", 1, 8),
    ("/dev/urandom", 1, 9),
    ("/dev/tty", 5, 0),
];

const SYMLINKS: [(&str, &str); 5] = [
    ("/proc/self/fd", "fd"),
    ("/proc/self/fd/0", "stdin"),
    ("/proc/self/fd/1", "stdout"),
    ("/proc/self/fd/2", "stderr"),
    ("pts/ptmx", "ptmx"),
];

/// The default devices, then `linux.devices` (which replace a default of the same path).
pub fn plan(devices: &[LinuxDevice]) -> Result<Vec<DevicePlan>> {
    let mut plans: Vec<DevicePlan> = DEFAULTS
        .iter()
        .map(|&(path, major, minor)| DevicePlan {
            path: path.into(),
            kind: libc::S_IFCHR,
            major,
            minor,
            mode: 0o666,
            uid: 0,
            gid: 0,
        })
        .collect();
    for (i, d) in devices.iter().enumerate() {
        let p = device_plan(i, d)?;
        plans.retain(|existing| existing.path != p.path);
        plans.push(p);
    }
    Ok(plans)
}

fn device_plan(i: usize, d: &LinuxDevice) -> Result<DevicePlan> {
    let path = d.path();
    if !path.is_absolute() {
        bail!("linux.devices[{i}].path {} is not absolute", path.display());
    }
    let kind = match d.typ() {
        LinuxDeviceType::C | LinuxDeviceType::U => libc::S_IFCHR,
        LinuxDeviceType::B => libc::S_IFBLK,
        LinuxDeviceType::P => libc::S_IFIFO,
        LinuxDeviceType::A => bail!("linux.devices[{i}].type \"a\" is not a device node type"),
    };
    Ok(DevicePlan {
        path: path.clone(),
        kind,
        major: d.major() as u64,
        minor: d.minor() as u64,
        mode: d.file_mode().unwrap_or(0o666) & 0o7777,
        uid: d.uid().unwrap_or(0),
        gid: d.gid().unwrap_or(0),
    })
}

/// Creates the device nodes and the /dev symlinks inside the rootfs. In a user
/// namespace, where mknod is refused, the host's nodes are bound instead.
/// `mounts` are the container's, for the binds of host directories among them.
pub fn create(
    root: &OwnedFd,
    devices: &[DevicePlan],
    bind_from_host: bool,
    shared: &super::SharedBinds,
    mounts: &[super::mounts::MountPlan],
) -> Result<()> {
    let mut dirs = Dirs {
        root,
        shared,
        mounts,
        host_binds: std::cell::OnceCell::new(),
        open: Vec::new(),
    };
    for d in devices {
        let made = if bind_from_host {
            bind_node(&mut dirs, d)
        } else {
            create_node(&mut dirs, d)
        };
        made.context(|| format!("create device {}", d.path.display()))?;
    }
    let dev = dirs.get(Path::new("/dev"))?;
    for (target, name) in SYMLINKS {
        symlink(dev, target, name)?;
    }
    if Path::new("/proc/kcore").exists() {
        symlink(dev, "/proc/kcore", "core")?;
    }
    Ok(())
}

/// The directories the nodes go in (made where missing), each resolved in
/// the rootfs once: most nodes share /dev. Nothing of the container runs yet
/// that could move them.
struct Dirs<'r> {
    root: &'r OwnedFd,
    shared: &'r super::SharedBinds,
    mounts: &'r [super::mounts::MountPlan],
    /// The binds of host paths, found at the first directory.
    host_binds: std::cell::OnceCell<Vec<super::HostBind>>,
    open: Vec<(PathBuf, OwnedFd)>,
}

impl Dirs<'_> {
    fn get(&mut self, dir: &Path) -> Result<&OwnedFd> {
        let i = self.index(dir)?;
        Ok(&self.open[i].1)
    }

    fn host_binds(&self) -> &[super::HostBind] {
        self.host_binds
            .get_or_init(|| super::host_bind_mounts(self.root, self.mounts))
    }

    fn index(&mut self, dir: &Path) -> Result<usize> {
        let i = match self.open.iter().position(|(path, _)| path == dir) {
            Some(i) => i,
            None => {
                // Made and found only where the config's path names a bind
                // of a host path: never where a symlink of the image leads.
                let binds = self.host_binds();
                let allowed = |d: &OwnedFd| {
                    self.shared.refuse_unless_named(d, dir)?;
                    super::refuse_host_bind_unless_named(d, dir, binds)
                };
                let fd = resolve::make_guarded(self.root, dir, resolve::Leaf::Dir, &allowed)?;
                allowed(&fd)?;
                self.open.push((dir.to_path_buf(), fd));
                self.open.len() - 1
            }
        };
        Ok(i)
    }
}

/// The directory the node `d` goes in and its name there, whatever the
/// image had at that name removed: the node replaces it, never follows it.
/// None where what has the name is in a bind of a host path (a file in a
/// host directory bound in, or a host file bound there itself): it is the
/// host's, kept as runc keeps it (review 58b F1: a device plugin's /dev/dri
/// bound in had its host nodes replaced, for good; 58c F1: a bind of the
/// host's /dev/fuse at /dev/fuse failed with EEXIST).
fn place_of<'d>(dirs: &'d mut Dirs, d: &DevicePlan) -> Result<Option<(&'d OwnedFd, CString)>> {
    let (Some(dir), Some(name)) = (d.path.parent(), d.path.file_name()) else {
        bail!("{} has no file name", d.path.display())
    };
    let i = dirs.index(dir)?;
    let name = sys::cstring(name)?;
    let parent = &dirs.open[i].1;
    let flags = libc::O_PATH | libc::O_NOFOLLOW;
    if let Ok(there) = sys::openat(parent.as_raw_fd(), name.as_c_str(), flags, 0) {
        if super::in_a_bind(&there, dirs.host_binds())? {
            return Ok(None);
        }
        let _ = unlinkat(parent, name.as_c_str(), UnlinkatFlags::NoRemoveDir);
    }
    Ok(Some((parent, name)))
}

fn create_node(dirs: &mut Dirs, d: &DevicePlan) -> Result<()> {
    let Some((parent, name)) = place_of(dirs, d)? else {
        return Ok(());
    };
    let dev = libc::makedev(d.major as u32, d.minor as u32);
    let (kind, mode) = (SFlag::from_bits_retain(d.kind), Mode::from_bits_retain(d.mode));
    mknodat(parent, name.as_c_str(), kind, mode, dev).map_err(std::io::Error::from)?;
    let (uid, gid) = (Some(Uid::from_raw(d.uid)), Some(Gid::from_raw(d.gid)));
    fchownat(parent, name.as_c_str(), uid, gid, AtFlags::AT_SYMLINK_NOFOLLOW).map_err(std::io::Error::from)?;
    Ok(())
}

/// The host's node bound on a new empty file at its path. A symlink the
/// image had there was followed, and put the host's /dev/zero over
/// /proc/1/status (review 49c F1). The bind is read-only: the node reads
/// and writes as ever (a device's data is no write to its mount), but its
/// inode, the host's, is not the container's to chmod, chown or touch,
/// through the path or an fd (its stdio, a peer's /proc/PID/root): a
/// container whose user namespace maps the node's owner could (review 50
/// F5, 50c C2; as runc).
fn bind_node(dirs: &mut Dirs, d: &DevicePlan) -> Result<()> {
    let tree = sys::open_tree(&sys::cstring(&d.path)?, sys::OPEN_TREE_CLONE)
        .context(|| format!("bind {} from the host", d.path.display()))?;
    let read_only = sys::MountAttr {
        attr_set: crate::rootfs::mounts::MOUNT_ATTR_RDONLY,
        attr_clr: 0,
        propagation: 0,
        userns_fd: 0,
    };
    sys::mount_setattr(&tree, false, &read_only).context(|| format!("bind {} read-only", d.path.display()))?;
    let Some((parent, name)) = place_of(dirs, d)? else {
        return Ok(());
    };
    let flags = libc::O_RDONLY | libc::O_CREAT | libc::O_EXCL | libc::O_NOFOLLOW;
    let target = sys::openat(parent.as_raw_fd(), &name, flags, 0)?;
    sys::move_mount(&tree, &target)?;
    Ok(())
}

fn symlink(dir: &OwnedFd, target: &str, name: &str) -> Result<()> {
    let t = CString::new(target).expect("static");
    let n = CString::new(name).expect("static");
    match symlinkat(t.as_c_str(), dir, n.as_c_str()) {
        Ok(()) | Err(Errno::EEXIST) => Ok(()),
        Err(e) => Err(std::io::Error::from(e)).context(|| format!("symlink /dev/{name}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_devices_replace_defaults_of_the_same_path() {
        let devs: Vec<LinuxDevice> = serde_json::from_str(
            r#"[{"path":"/dev/null","type":"c","major":1,"minor":3,"fileMode":432,"uid":5},
                {"path":"/dev/fuse","type":"c","major":10,"minor":229}]"#,
        )
        .unwrap();
        let plans = plan(&devs).unwrap();
        assert_eq!(plans.len(), DEFAULTS.len() + 1);
        let null = plans.iter().find(|p| p.path == Path::new("/dev/null")).unwrap();
        assert_eq!((null.mode, null.uid), (0o660, 5));
        let fuse = plans.iter().find(|p| p.path == Path::new("/dev/fuse")).unwrap();
        assert_eq!(
            (fuse.kind, fuse.major, fuse.minor, fuse.mode),
            (libc::S_IFCHR, 10, 229, 0o666)
        );
    }

    #[test]
    fn device_types_and_modes() {
        let devs: Vec<LinuxDevice> = serde_json::from_str(
            r#"[{"path":"/dev/sda","type":"b","major":8,"minor":0,"fileMode":8624},
                {"path":"/dev/pipe","type":"p","major":0,"minor":0},
                {"path":"/dev/kmsg","type":"u","major":1,"minor":11,"gid":4}]"#,
        )
        .unwrap();
        let plans = plan(&devs).unwrap();
        let find = |p: &str| plans.iter().find(|d| d.path == Path::new(p)).unwrap().clone();
        // The file type bits of fileMode (0o20660 here) are not the node's mode.
        assert_eq!((find("/dev/sda").kind, find("/dev/sda").mode), (libc::S_IFBLK, 0o660));
        assert_eq!(find("/dev/pipe").kind, libc::S_IFIFO);
        assert_eq!((find("/dev/kmsg").kind, find("/dev/kmsg").gid), (libc::S_IFCHR, 4));
        let all: Vec<LinuxDevice> = serde_json::from_str(r#"[{"path":"/dev/x","type":"a"}]"#).unwrap();
        assert_eq!(
            plan(&all).unwrap_err().message(),
            "linux.devices[0].type \"a\" is not a device node type"
        );
    }

    #[test]
    fn relative_device_path_is_an_error() {
        let devs: Vec<LinuxDevice> =
            serde_json::from_str(r#"[{"path":"dev/x","type":"b","major":8,"minor":0}]"#).unwrap();
        let e = plan(&devs).unwrap_err();
        assert!(e.message().contains("linux.devices[0].path"), "{e}");
    }
}
