//! The container's cgroup as the lifecycle sees it: one trait, `Driver`, and
//! its implementations. `V1` is cgroupfs on a v1 or hybrid host (the v1
//! hierarchies, with the unified hierarchy's v2 controllers where only it has
//! them), `V2` cgroupfs on a unified host, `Systemd` (in `systemd`) a transient
//! unit systemd makes, with husk's own writes of the limits into it, and
//! `NoCgroup` a container without one (unprivileged, without delegation).
//! `for_plan` and `for_record` choose the driver, at `create` and after it.

use std::fs::File;
use std::path::{Path, PathBuf};

use oci_spec::runtime::LinuxResources;

use crate::cgroups::place::{SelfPlacement, Target};
use crate::cgroups::resources::{self, DeviceRule, Write};
use crate::cgroups::systemd::{Systemd, SystemdPlan};
use crate::cgroups::{Cgroup, CgroupPlan, Delegation, Record};
use crate::error::{Context, Error, Result};
use crate::log;

/// What the container lifecycle asks of its cgroup, whichever driver makes it.
pub trait Driver {
    /// The cgroup's directories (what `events`, `ps` and `update` read); None
    /// when the container has no cgroup.
    fn cgroup(&self) -> Option<&Cgroup>;

    /// What the container's record keeps of the cgroup, for `for_record`.
    fn record(&self) -> Record;

    /// Before the init exists: makes the cgroup and applies the planned
    /// limits, or leaves that to `place` (systemd makes its unit's cgroup
    /// around the init). What it made is `destroy`'s to remove on failure.
    fn create(&mut self) -> Result<()>;

    /// The cgroup directory to clone the init into (CLONE_INTO_CGROUP), when
    /// the driver places it so; None when `place` moves it.
    fn clone_into(&self) -> Result<Option<File>>;

    /// The files through which the init moves itself into the cgroup, when
    /// the driver places it so (see `place`); None when `place` moves it.
    fn self_placement(&self) -> Result<Option<SelfPlacement>> {
        Ok(None)
    }

    /// Whether `create` may make the cgroup after the clone, while the init
    /// sets up, and hand it the files of `self_placement` then: every
    /// hierarchy is v1, where a thread moves itself cheaply at any time (a
    /// cgroup2 directory must exist before the clone, for CLONE_INTO_CGROUP).
    fn places_after_clone(&self) -> bool {
        false
    }

    /// Moves the cloned init (`pid`) into the cgroup. `recorded` gets the
    /// record as soon as the driver holds something new that the record must
    /// name (a systemd unit it started), before anything else can fail.
    fn place(&mut self, pid: libc::pid_t, recorded: &mut dyn FnMut(&Record) -> Result<()>) -> Result<()>;

    /// Writes new limits (only what `r` sets).
    fn update(&self, r: &LinuxResources) -> Result<()>;

    /// Freezes or thaws every process and waits (bounded) until it is done.
    fn freeze(&self, frozen: bool) -> Result<()>;

    /// Every process in the cgroup.
    fn pids(&self) -> Result<Vec<libc::pid_t>>;

    /// Sends `sig` to every process of the cgroup (none escapes by forking).
    fn signal_all(&self, sig: i32) -> Result<()>;

    /// Removes what husk made, once the init is gone: kills what is left in a
    /// cgroup husk made (processes outside the init's pid namespace), stops a
    /// unit husk started, removes the directories husk made. A cgroup or unit
    /// that was there before is left as it is, with whatever is in it.
    fn destroy(&self) -> Result<()>;
}

/// The driver that makes the cgroup of `plan` (none without one), before
/// anything is made: the directories of the cgroup that exist now are not
/// the container's.
pub fn for_plan(plan: Option<&CgroupPlan>) -> Result<Box<dyn Driver>> {
    let Some(plan) = plan else {
        return Ok(Box::new(NoCgroup));
    };
    let Some(path) = &plan.path else {
        return Err(Error::new(
            "the systemd unit's cgroup has not been looked up (spec::prepare does)",
        ));
    };
    let limits = Limits {
        writes: plan.writes.clone(),
        devices: plan.devices.clone(),
        device_nodes: plan.device_nodes.clone(),
    };
    let cgroup = Cgroup::at(&plan.hierarchies, path);
    let (owner, systemd) = match &plan.systemd {
        // Whatever of a unit's cgroup exists once husk started it, systemd
        // made for it (until then, the driver records what exists as not ours).
        Some(unit) => (Owner::Container, Some((unit.clone(), false))),
        None => (Owner::Existing, None),
    };
    Ok(choose(cgroup, plan.unified, limits, plan.at_clone, owner, systemd))
}

/// The driver of a container's cgroup as its record names it.
pub fn for_record(record: &Record) -> Result<Box<dyn Driver>> {
    for_record_in(record, None)
}

/// [`for_record`] in the hierarchies `known` (this host's, as a command that
/// made the cgroup found them) rather than found again in mountinfo.
pub fn for_record_in(record: &Record, known: Option<&[super::Hierarchy]>) -> Result<Box<dyn Driver>> {
    let Some(path) = &record.path else {
        return Ok(Box::new(NoCgroup));
    };
    let cgroup = match known {
        Some(hs) => Cgroup::at(hs, path),
        None => Cgroup::new(path)?,
    };
    let owner = Owner::Recorded(record.existed.clone());
    // A unit is recorded once husk has started it.
    let systemd = record.systemd_unit.clone().map(|unit| (SystemdPlan::of(unit), true));
    let limits = Limits {
        device_nodes: record.device_nodes.clone(),
        ..Limits::default()
    };
    Ok(choose(cgroup, super::is_unified(), limits, false, owner, systemd))
}

/// The one place that picks the driver: systemd when a unit makes the
/// cgroup (and whether husk started it already), else cgroupfs as the host
/// has it.
fn choose(
    cgroup: Cgroup,
    unified: bool,
    limits: Limits,
    at_clone: bool,
    owner: Owner,
    systemd: Option<(SystemdPlan, bool)>,
) -> Box<dyn Driver> {
    let fs = Fs::new(cgroup, limits, owner);
    match systemd {
        Some((unit, started)) => Box::new(Systemd::new(unit, started, cgroupfs(unified, fs, false), unified)),
        None => cgroupfs(unified, fs, at_clone),
    }
}

fn cgroupfs(unified: bool, fs: Fs, at_clone: bool) -> Box<dyn Driver> {
    match unified {
        true => Box::new(V2 {
            fs,
            clone_into: at_clone,
        }),
        false => Box::new(V1 {
            fs,
            self_placed: at_clone,
        }),
    }
}

/// The limits `create` writes.
#[derive(Debug, Clone, Default)]
struct Limits {
    writes: Vec<Write>,
    devices: Vec<DeviceRule>,
    device_nodes: Vec<resources::DeviceNode>,
}

/// Which of the cgroup's directories are not the container's.
enum Owner {
    /// Those that exist before husk makes them (linux.cgroupsPath may name a
    /// cgroup of someone else): those that exist now, and those mkdir finds.
    Existing,
    /// Those the container's record names.
    Recorded(Vec<PathBuf>),
    /// None: the cgroup of a unit husk started is all the container's.
    Container,
}

/// What the cgroupfs drivers share: the directories, which of them husk did
/// not make (never to be killed or removed), the limits to write.
struct Fs {
    cgroup: Cgroup,
    existed: Vec<PathBuf>,
    /// Whether directories found to exist are someone else's.
    track_existing: bool,
    limits: Limits,
}

impl Fs {
    fn new(cgroup: Cgroup, limits: Limits, owner: Owner) -> Fs {
        let (existed, track_existing) = match owner {
            Owner::Existing => (cgroup.existing_dirs(), true),
            Owner::Recorded(existed) => (existed, true),
            Owner::Container => (Vec::new(), false),
        };
        Fs {
            cgroup,
            existed,
            track_existing,
            limits,
        }
    }

    fn owns(&self) -> bool {
        self.existed.is_empty()
    }

    /// Makes the directories and writes the limits (the devices are the
    /// driver's); a directory that was there already is not the container's.
    fn make(&mut self, delegation: Delegation) -> Result<()> {
        let mut existed = Vec::new();
        let made = self.cgroup.make_dirs(delegation, &mut existed);
        if self.track_existing {
            for dir in existed {
                if !self.existed.contains(&dir) {
                    self.existed.push(dir);
                }
            }
        }
        made?;
        if self.track_existing {
            self.warn_if_occupied();
        }
        self.cgroup.apply(&self.limits.writes)
    }

    /// A cgroup with processes in it before the container is shared with them
    /// (as runc, a warning): the container's limits apply to them too, and
    /// delete leaves them and the cgroup alone.
    fn warn_if_occupied(&self) {
        if !self.existed.is_empty() && !self.cgroup.pids().unwrap_or_default().is_empty() {
            log::warn(&format!(
                "linux.cgroupsPath {}: the cgroup already has processes; they share the container's limits, and delete will neither kill them nor remove the cgroup",
                self.cgroup.path
            ));
        }
    }

    /// The v2 controllers the writes use (delegated on a hybrid host).
    fn v2_controllers(&self) -> Vec<&'static str> {
        let writes = self.limits.writes.iter();
        writes.map(|w| w.controller).filter(|c| self.cgroup.is_v2(c)).collect()
    }

    fn record(&self, freezer: Option<PathBuf>) -> Record {
        Record {
            path: Some(self.cgroup.path.clone()),
            existed: self.existed.clone(),
            freezer,
            systemd_unit: None,
            device_nodes: self.limits.device_nodes.clone(),
        }
    }

    /// `update`: the writes, then the device rules through `devices`.
    fn update(&self, r: &LinuxResources, devices: impl Fn(&[DeviceRule]) -> Result<()>) -> Result<()> {
        let writes = resources::writes(r, &|c| self.cgroup.is_v2(c))?;
        self.cgroup.apply(&writes)?;
        if r.devices().is_some() {
            devices(&resources::device_rules(Some(r), &self.limits.device_nodes)?)?;
        }
        Ok(())
    }

    /// `destroy`, with `signal_all` of the driver for what is left.
    fn destroy(&self, signal_all: impl Fn(i32) -> Result<()>) -> Result<()> {
        if self.owns() && !self.cgroup.pids().unwrap_or_default().is_empty() {
            signal_all(libc::SIGKILL)?;
        }
        self.cgroup.remove_dirs(&self.existed)
    }
}

/// cgroupfs on a v1 or hybrid host: the container's directory in every
/// hierarchy; each limit goes to its v1 controller, or where only the unified
/// hierarchy has the controller, there (delegated just for it). The init
/// moves itself in (see `place`), unless unprivileged, when the parent
/// moves it.
pub struct V1 {
    fs: Fs,
    self_placed: bool,
}

impl V1 {
    /// The v1 freezer's state file, when the freezer is mounted.
    fn freezer_file(&self) -> Option<PathBuf> {
        self.fs.cgroup.v1_dir("freezer").map(|d| d.join("freezer.state"))
    }

    /// The device rules: deny everything, then the rules in order, in the v1
    /// devices controller (when it is mounted).
    fn apply_devices(&self, rules: &[DeviceRule]) -> Result<()> {
        if rules.is_empty() {
            return Ok(()); // none planned (rootless): device access is left alone
        }
        let Some(dir) = self.fs.cgroup.v1_dir("devices") else {
            return Ok(());
        };
        use std::io::Write as _;
        // Each write is one rule: the two files are opened once for all of
        // them (a path lookup through /sys costs more than the write).
        let cg = self.fs.cgroup.root();
        let open = |file: &str| {
            let path = dir.join(file);
            cg.open_file(&path, libc::O_WRONLY)
                .context(|| format!("linux.resources.devices: open {}", path.display()))
        };
        let (mut deny, mut allow) = (open("devices.deny")?, open("devices.allow")?);
        deny.write_all(b"a").context(|| "linux.resources.devices".into())?;
        for r in rules {
            let file = if r.allow { &mut allow } else { &mut deny };
            file.write_all(r.v1_line().as_bytes())
                .context(|| format!("linux.resources.devices {}", r.v1_line()))?;
        }
        Ok(())
    }
}

impl Driver for V1 {
    fn cgroup(&self) -> Option<&Cgroup> {
        Some(&self.fs.cgroup)
    }

    fn record(&self) -> Record {
        self.fs.record(self.freezer_file())
    }

    fn create(&mut self) -> Result<()> {
        let wanted = self.fs.v2_controllers();
        let delegation = match wanted.is_empty() {
            true => Delegation::Nothing,
            false => Delegation::Only(&wanted),
        };
        self.fs.make(delegation)?;
        self.apply_devices(&self.fs.limits.devices)
    }

    fn clone_into(&self) -> Result<Option<File>> {
        Ok(None)
    }

    fn self_placement(&self) -> Result<Option<SelfPlacement>> {
        if !self.self_placed {
            return Ok(None);
        }
        let targets = self
            .fs
            .cgroup
            .dirs
            .iter()
            .map(|(h, dir)| Target { dir, sub: "", v2: h.v2 });
        SelfPlacement::open(self.fs.cgroup.root(), targets).map(Some)
    }

    fn places_after_clone(&self) -> bool {
        self.self_placed && self.fs.cgroup.dirs.iter().all(|(h, _)| !h.v2)
    }

    fn place(&mut self, pid: libc::pid_t, _: &mut dyn FnMut(&Record) -> Result<()>) -> Result<()> {
        match self.self_placed {
            true => Ok(()), // it moved itself
            false => self.fs.cgroup.add(pid),
        }
    }

    fn update(&self, r: &LinuxResources) -> Result<()> {
        self.fs.update(r, |rules| self.apply_devices(rules))
    }

    fn freeze(&self, frozen: bool) -> Result<()> {
        let file = self
            .freezer_file()
            .ok_or_else(|| Error::new("no freezer cgroup on this host"))?;
        super::freeze(&file, frozen)
    }

    fn pids(&self) -> Result<Vec<libc::pid_t>> {
        self.fs.cgroup.pids()
    }

    fn signal_all(&self, sig: i32) -> Result<()> {
        self.fs.cgroup.signal_each(sig, self.freezer_file().as_deref())
    }

    fn destroy(&self) -> Result<()> {
        self.fs.destroy(|sig| self.signal_all(sig))
    }
}

/// cgroupfs on a unified host (cgroup2 only): one directory, every controller
/// delegated to it, the device rules an eBPF filter, the init cloned straight
/// into it (unless unprivileged, when the parent moves it in).
pub struct V2 {
    fs: Fs,
    clone_into: bool,
}

impl V2 {
    fn dir(&self) -> Result<&Path> {
        self.fs
            .cgroup
            .v2_dir()
            .ok_or_else(|| Error::new("no cgroup v2 hierarchy"))
    }

    fn freezer_file(&self) -> Option<PathBuf> {
        self.fs.cgroup.v2_dir().map(|d| d.join("cgroup.freeze"))
    }

    /// Attaches the filter of `rules`, in the place of husk's earlier ones
    /// with `replace` (see `attach_device_filter`).
    fn apply_devices(&self, rules: &[DeviceRule], replace: bool) -> Result<()> {
        if rules.is_empty() {
            return Ok(()); // none planned (rootless): device access is left alone
        }
        match self.fs.cgroup.v2_dir() {
            Some(dir) => crate::cgroups::bpf::attach_device_filter(dir, rules, replace),
            None => Ok(()),
        }
    }
}

impl Driver for V2 {
    fn cgroup(&self) -> Option<&Cgroup> {
        Some(&self.fs.cgroup)
    }

    fn record(&self) -> Record {
        self.fs.record(self.freezer_file())
    }

    fn create(&mut self) -> Result<()> {
        self.fs.make(Delegation::Everything)?;
        // A cgroup that existed may have the filter of an earlier container.
        self.apply_devices(&self.fs.limits.devices, !self.fs.owns())
    }

    fn clone_into(&self) -> Result<Option<File>> {
        if !self.clone_into {
            return Ok(None);
        }
        let dir = self.dir()?;
        File::open(dir).context(|| format!("open {}", dir.display())).map(Some)
    }

    fn place(&mut self, pid: libc::pid_t, _: &mut dyn FnMut(&Record) -> Result<()>) -> Result<()> {
        match self.clone_into {
            true => Ok(()), // the clone put it there
            false => self.fs.cgroup.add(pid),
        }
    }

    fn update(&self, r: &LinuxResources) -> Result<()> {
        self.fs.update(r, |rules| self.apply_devices(rules, true))
    }

    fn freeze(&self, frozen: bool) -> Result<()> {
        let file = self
            .freezer_file()
            .ok_or_else(|| Error::new("no freezer cgroup on this host"))?;
        super::freeze(&file, frozen)
    }

    fn pids(&self) -> Result<Vec<libc::pid_t>> {
        self.fs.cgroup.pids()
    }

    fn signal_all(&self, sig: i32) -> Result<()> {
        if sig == libc::SIGKILL {
            let killed = self
                .fs
                .cgroup
                .v2_dir()
                .is_some_and(|dir| super::write_file(&dir.join("cgroup.kill"), "1").is_ok());
            if killed {
                return Ok(());
            }
        }
        self.fs.cgroup.signal_each(sig, self.freezer_file().as_deref())
    }

    fn destroy(&self) -> Result<()> {
        self.fs.destroy(|sig| self.signal_all(sig))
    }
}

/// A container without a cgroup: unprivileged where the user's cgroup is not
/// delegated, or a record that names none.
pub struct NoCgroup;

impl NoCgroup {
    fn none<T>() -> Result<T> {
        Err(Error::new("the container has no cgroup"))
    }
}

impl Driver for NoCgroup {
    fn cgroup(&self) -> Option<&Cgroup> {
        None
    }

    fn record(&self) -> Record {
        Record::default()
    }

    fn create(&mut self) -> Result<()> {
        Ok(())
    }

    fn clone_into(&self) -> Result<Option<File>> {
        Ok(None)
    }

    fn place(&mut self, _: libc::pid_t, _: &mut dyn FnMut(&Record) -> Result<()>) -> Result<()> {
        Ok(())
    }

    fn update(&self, _: &LinuxResources) -> Result<()> {
        NoCgroup::none()
    }

    fn freeze(&self, _: bool) -> Result<()> {
        NoCgroup::none()
    }

    fn pids(&self) -> Result<Vec<libc::pid_t>> {
        NoCgroup::none()
    }

    fn signal_all(&self, _: i32) -> Result<()> {
        NoCgroup::none()
    }

    fn destroy(&self) -> Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cgroups::systemd::Unit;
    use crate::cgroups::Hierarchy;

    /// A host of directories standing in for a v1 `pids` hierarchy and a
    /// cgroup2 one: enough for what needs no kernel.
    struct FakeHost(PathBuf);

    impl FakeHost {
        fn new(name: &str) -> FakeHost {
            let dir = std::env::temp_dir().join(format!("husk-driver-{name}-{}", std::process::id()));
            for h in ["pids", "unified"] {
                std::fs::create_dir_all(dir.join(h)).unwrap();
            }
            FakeHost(dir)
        }

        fn hierarchies(&self) -> Vec<Hierarchy> {
            let h = |name: &str, controllers: &str, v2| Hierarchy {
                name: name.into(),
                mountpoint: self.0.join(name),
                controllers: controllers.into(),
                v2,
            };
            vec![h("pids", "pids", false), h("unified", "", true)]
        }
    }

    impl Drop for FakeHost {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn a_cgroup_that_was_there_is_never_removed() {
        let host = FakeHost::new("existed");
        let theirs = host.0.join("pids/c");
        std::fs::create_dir(&theirs).unwrap();
        let cgroup = Cgroup::at(&host.hierarchies(), "/c");
        let mut driver = choose(cgroup, false, Limits::default(), false, Owner::Existing, None);
        assert_eq!(
            driver.record().existed,
            std::slice::from_ref(&theirs),
            "recorded before create"
        );
        driver.create().unwrap();
        let record = driver.record();
        assert_eq!(record.existed, std::slice::from_ref(&theirs));
        assert!(!record.owns() && record.systemd_unit.is_none());
        assert!(host.0.join("unified/c").is_dir());
        driver.destroy().unwrap();
        assert!(theirs.is_dir(), "removed a cgroup husk did not make");
        assert!(!host.0.join("unified/c").exists(), "left a cgroup husk made");
    }

    #[test]
    fn a_unit_husk_did_not_start_is_left_alone() {
        let host = FakeHost::new("unit");
        let theirs = host.0.join("unified/system.slice/x.scope");
        std::fs::create_dir_all(&theirs).unwrap();
        let plan = SystemdPlan::of(Unit {
            name: "x.scope".into(),
            slice: "system.slice".into(),
            user: false,
        });
        let cgroup = Cgroup::at(&host.hierarchies(), "/system.slice/x.scope");
        let mut driver = choose(
            cgroup,
            true,
            Limits::default(),
            false,
            Owner::Container,
            Some((plan, false)),
        );
        driver.create().unwrap();
        assert!(driver.clone_into().unwrap().is_none(), "systemd places the init");
        let record = driver.record();
        assert_eq!(record.existed, std::slice::from_ref(&theirs));
        assert!(record.systemd_unit.is_none(), "a unit is recorded once husk started it");
        let before = crate::cgroups::systemd::tests::CONNECTS.with(|n| n.get());
        driver.destroy().unwrap();
        assert_eq!(
            crate::cgroups::systemd::tests::CONNECTS.with(|n| n.get()),
            before,
            "asked systemd to stop it"
        );
        assert!(theirs.is_dir(), "removed the cgroup of a unit husk did not start");
    }

    #[test]
    fn a_record_without_a_cgroup_has_none() {
        let driver = for_record(&Record::default()).unwrap();
        assert!(driver.cgroup().is_none());
        assert_eq!(driver.record(), Record::default());
        driver.destroy().unwrap();
        assert!(driver.freeze(true).is_err());
    }
}
