//! The systemd cgroup driver (`--systemd-cgroup`): the container's cgroup is a
//! transient scope that systemd makes (StartTransientUnit, Delegate=yes) from
//! `linux.cgroupsPath` written as runc reads it, `slice:prefix:name`. systemd
//! moves the init into it; husk then writes the limits itself, as with the
//! cgroupfs driver. Root talks to the system instance, a rootless caller to
//! its user instance (systemd --user), both over their private sockets.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use oci_spec::runtime::LinuxResources;

use crate::bail;
use crate::cgroups::dbus::{Connection, Value};
use crate::cgroups::{Cgroup, Driver, Record};
use crate::error::{Context, Result};

const MANAGER_PATH: &str = "/org/freedesktop/systemd1";
const MANAGER: &str = "org.freedesktop.systemd1.Manager";
/// Every D-Bus call, and the wait for systemd to place the init, is bounded.
const TIMEOUT: Duration = Duration::from_secs(10);
/// systemd's answer to a call about a unit it does not have.
const NO_SUCH_UNIT: &str = "org.freedesktop.systemd1.NoSuchUnit";

/// The unit a container's cgroup is, and the manager that owns it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Unit {
    /// `PREFIX-NAME.scope`, or NAME when that is itself a slice.
    pub name: String,
    /// The slice it goes in.
    pub slice: String,
    /// Whether it belongs to the user's systemd instance.
    pub user: bool,
}

/// The private socket of the systemd instance for this caller (the system's,
/// or the user's own), or a clear error when none runs.
pub fn socket(user: bool) -> Result<PathBuf> {
    let path = match user {
        false => Some(PathBuf::from("/run/systemd/private")),
        true => std::env::var_os("XDG_RUNTIME_DIR")
            .filter(|d| !d.is_empty())
            .map(|d| PathBuf::from(d).join("systemd/private")),
    };
    match path.filter(|p| p.exists()) {
        Some(path) => Ok(path),
        None if user => {
            bail!("--systemd-cgroup: no systemd user instance for this user ($XDG_RUNTIME_DIR/systemd/private)")
        }
        None => bail!("--systemd-cgroup: systemd is not running on this host (use the cgroupfs driver)"),
    }
}

/// `slice:prefix:name` as runc reads it; an empty path is `:husk:ID`, an empty
/// slice is system.slice (user.slice for the user instance).
pub fn parse_path(configured: &str, id: &str, user: bool) -> Result<Unit> {
    let what = || format!("linux.cgroupsPath \"{configured}\"");
    let (slice, prefix, name) = if configured.is_empty() {
        ("", "husk", id)
    } else {
        let parts: Vec<&str> = configured.split(':').collect();
        let [slice, prefix, name] = parts[..] else {
            bail!("{}: with --systemd-cgroup it must be slice:prefix:name", what())
        };
        (slice, prefix, name)
    };
    let slice = match slice {
        "" if user => "user.slice",
        "" => "system.slice",
        s => s,
    };
    expand_slice(slice).map_err(|e| crate::error::Error::new(format!("{}: {e}", what())))?;
    if name.is_empty() || name.contains('/') || prefix.contains('/') {
        bail!("{}: the name must be non-empty and without /", what());
    }
    let name = if name.ends_with(".slice") {
        expand_slice(name).map_err(|e| crate::error::Error::new(format!("{}: {e}", what())))?;
        name.to_string()
    } else if prefix.is_empty() {
        format!("{name}.scope")
    } else {
        format!("{prefix}-{name}.scope")
    };
    Ok(Unit {
        name,
        slice: slice.to_string(),
        user,
    })
}

/// A slice's cgroup path: `a-b.slice` is `/a.slice/a-b.slice`, `-.slice` is `/`.
pub fn expand_slice(slice: &str) -> Result<String> {
    let Some(stem) = slice.strip_suffix(".slice") else {
        bail!("slice \"{slice}\" must end in .slice")
    };
    if slice.contains('/') {
        bail!("slice \"{slice}\" must not contain /");
    }
    if stem == "-" {
        return Ok("/".into());
    }
    if stem.is_empty() || stem.starts_with('-') || stem.ends_with('-') || stem.contains("--") {
        bail!("slice \"{slice}\" is not a valid slice name");
    }
    let mut path = String::new();
    let mut prefix = String::new();
    for component in stem.split('-') {
        if !prefix.is_empty() {
            prefix.push('-');
        }
        prefix.push_str(component);
        path.push_str(&format!("/{prefix}.slice"));
    }
    Ok(path)
}

fn connect(user: bool) -> Result<Connection> {
    #[cfg(test)]
    tests::CONNECTS.with(|n| n.set(n.get() + 1));
    Connection::connect(&socket(user)?, TIMEOUT)
}

/// Finds the systemd instance of the unit and the unit's cgroup path: the
/// step after planning (`spec::prepare`), the first that talks to systemd.
pub fn locate(unit: &Unit) -> Result<String> {
    socket(unit.user)?;
    cgroup_path(unit)
}

/// The unit's cgroup path: the manager's own cgroup (the user instance's
/// lives under user@UID.service), the slice, the unit.
pub fn cgroup_path(unit: &Unit) -> Result<String> {
    let base = if unit.user {
        let mut conn = connect(true)?;
        let reply = conn.call(
            MANAGER_PATH,
            "org.freedesktop.DBus.Properties",
            "Get",
            &[Value::Str(MANAGER.into()), Value::Str("ControlGroup".into())],
        )?;
        reply.first().and_then(Value::as_str).unwrap_or_default().to_string()
    } else {
        String::new()
    };
    let slice = expand_slice(&unit.slice)?;
    Ok(format!(
        "{}{}/{}",
        base.trim_end_matches('/'),
        slice.trim_end_matches('/'),
        unit.name
    ))
}

fn prop(name: &str, v: Value) -> Value {
    Value::Struct(vec![Value::Str(name.into()), Value::Variant(Box::new(v))])
}

/// The limits systemd should know of too, so that it keeps them (husk writes
/// every limit to the cgroup itself afterwards).
pub fn resource_properties(r: Option<&LinuxResources>, v2: bool) -> Vec<Value> {
    let mut props = Vec::new();
    let Some(r) = r else { return props };
    if let Some(limit) = r.memory().as_ref().and_then(|m| m.limit()).filter(|l| *l > 0) {
        props.push(prop(
            if v2 { "MemoryMax" } else { "MemoryLimit" },
            Value::U64(limit as u64),
        ));
    }
    if let Some(limit) = r.pids().as_ref().map(|p| p.limit()).filter(|l| *l != 0) {
        props.push(prop(
            "TasksMax",
            Value::U64(if limit < 0 { u64::MAX } else { limit as u64 }),
        ));
    }
    if let Some(cpu) = r.cpu() {
        if let Some(shares) = cpu.shares().filter(|s| *s > 0) {
            props.push(match v2 {
                true => prop(
                    "CPUWeight",
                    Value::U64(crate::cgroups::resources::shares_to_weight(shares)),
                ),
                false => prop("CPUShares", Value::U64(shares)),
            });
        }
        if let Some(quota) = cpu.quota().filter(|q| *q > 0) {
            let period = cpu.period().filter(|p| *p > 0).unwrap_or(100_000);
            // systemd counts CPU time per second, in whole 10 ms steps.
            let per_sec = (quota as u64 * 1_000_000 / period).div_ceil(10_000) * 10_000;
            props.push(prop("CPUQuotaPerSecUSec", Value::U64(per_sec)));
        }
    }
    props
}

/// Has systemd make the unit with `pid` in it (`wait_placed` then waits until
/// the pid is there).
pub fn start(unit: &Unit, pid: libc::pid_t, resources: &[Value], description: &str) -> Result<()> {
    let mut props = vec![
        prop("Description", Value::Str(description.into())),
        prop("Delegate", Value::Bool(true)),
        prop("DefaultDependencies", Value::Bool(false)),
        prop("MemoryAccounting", Value::Bool(true)),
        prop("CPUAccounting", Value::Bool(true)),
        prop("TasksAccounting", Value::Bool(true)),
        prop("PIDs", Value::Array("u".into(), vec![Value::U32(pid as u32)])),
    ];
    if unit.name.ends_with(".scope") {
        props.push(prop("Slice", Value::Str(unit.slice.clone())));
    }
    props.extend_from_slice(resources);
    let mut conn = connect(unit.user)?;
    conn.call(
        MANAGER_PATH,
        MANAGER,
        "StartTransientUnit",
        &[
            Value::Str(unit.name.clone()),
            Value::Str("replace".into()),
            Value::Array("(sv)".into(), props),
            Value::Array("(sa(sv))".into(), vec![]),
        ],
    )
    .context(|| format!("systemd: start {}", unit.name))
    .map(drop)
}

/// Tells systemd new limits of a running unit (runtime only, as runc does).
pub fn set_properties(unit: &Unit, props: Vec<Value>) -> Result<()> {
    if props.is_empty() {
        return Ok(());
    }
    let mut conn = connect(unit.user)?;
    conn.call(
        MANAGER_PATH,
        MANAGER,
        "SetUnitProperties",
        &[
            Value::Str(unit.name.clone()),
            Value::Bool(true),
            Value::Array("(sv)".into(), props),
        ],
    )
    .context(|| format!("systemd: set the limits of {}", unit.name))?;
    Ok(())
}

/// StartTransientUnit returns once the job is queued; the pid moves when it runs.
fn wait_placed(unit: &Unit, pid: libc::pid_t) -> Result<()> {
    let deadline = Instant::now() + TIMEOUT;
    let needle = format!("/{}", unit.name);
    loop {
        let Ok(cgroups) = crate::sys::fs::read_proc(format!("/proc/{pid}/cgroup")) else {
            bail!(
                "systemd: the container init {pid} exited before it reached {}",
                unit.name
            )
        };
        if cgroups
            .lines()
            .any(|l| l.ends_with(&needle) || l.contains(&format!("{needle}/")))
        {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!(
                "systemd: {} did not take the container init within {TIMEOUT:?}",
                unit.name
            );
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Stops the unit and waits until its cgroup is gone. A scope whose processes
/// are all dead (husk kills them first) is stopped and removed by systemd on
/// its own, so that is waited for first: asking systemd to stop a unit that
/// it is collecting at that moment was seen to go unanswered (systemd 252).
pub fn stop(unit: &Unit, cgroup_dir: Option<&Path>) -> Result<()> {
    let gone = |limit: Duration| {
        let deadline = Instant::now() + limit;
        loop {
            if !cgroup_dir.is_some_and(|d| d.exists()) {
                return true;
            }
            if Instant::now() > deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    };
    if unit.name.ends_with(".scope") && gone(Duration::from_secs(2)) {
        return Ok(());
    }
    let mut conn = connect(unit.user)?;
    match conn.call(
        MANAGER_PATH,
        MANAGER,
        "StopUnit",
        &[Value::Str(unit.name.clone()), Value::Str("replace".into())],
    ) {
        Ok(_) => {}
        Err(e) if e.is_dbus(NO_SUCH_UNIT) => return Ok(()),
        Err(e) => return Err(e).context(|| format!("systemd: stop {}", unit.name)),
    }
    if !gone(TIMEOUT) {
        bail!("systemd: {} was not removed within {TIMEOUT:?}", unit.name);
    }
    Ok(())
}

/// The unit `create` has systemd make, as planned.
#[derive(Debug, Clone)]
pub struct SystemdPlan {
    pub unit: Unit,
    /// The limits systemd is told of when it starts the unit.
    pub properties: Vec<Value>,
    /// The unit's Description.
    pub description: String,
}

impl SystemdPlan {
    /// A unit as a record names it (started already: nothing to start it with).
    pub fn of(unit: Unit) -> SystemdPlan {
        SystemdPlan {
            unit,
            properties: Vec::new(),
            description: String::new(),
        }
    }
}

/// The systemd driver: systemd makes the cgroup as a transient unit around
/// the init, once that exists; husk then makes the rest of it and writes the
/// limits as cgroupfs does (`fs`, the driver of the host's cgroupfs), tells
/// systemd of updates too, and stops the unit at the end. A unit that husk did
/// not start is not its: neither stopped nor touched.
pub struct Systemd {
    plan: SystemdPlan,
    started: bool,
    fs: Box<dyn Driver>,
    unified: bool,
}

impl Systemd {
    pub fn new(plan: SystemdPlan, started: bool, fs: Box<dyn Driver>, unified: bool) -> Systemd {
        Systemd {
            plan,
            started,
            fs,
            unified,
        }
    }

    /// The directory systemd makes for the unit and removes when it stops: the
    /// unified hierarchy's, or on a v1 host its own name=systemd one.
    fn systemd_dir(&self) -> Option<PathBuf> {
        let cgroup = self.fs.cgroup()?;
        cgroup
            .dirs
            .iter()
            .find(|(h, _)| (self.unified && h.v2) || h.controllers == "name=systemd")
            .map(|(_, dir)| dir.clone())
    }
}

impl Driver for Systemd {
    fn cgroup(&self) -> Option<&Cgroup> {
        self.fs.cgroup()
    }

    fn record(&self) -> Record {
        let mut record = self.fs.record();
        match self.started {
            true => record.systemd_unit = Some(self.plan.unit.clone()),
            // Until husk has started the unit, whatever of its cgroup exists is not the container's.
            false => record.existed = self.fs.cgroup().map(Cgroup::existing_dirs).unwrap_or_default(),
        }
        record
    }

    fn create(&mut self) -> Result<()> {
        Ok(()) // systemd makes the cgroup around the init, in `place`
    }

    fn clone_into(&self) -> Result<Option<File>> {
        Ok(None) // systemd can only make a scope around a process that exists
    }

    fn place(&mut self, pid: libc::pid_t, recorded: &mut dyn FnMut(&Record) -> Result<()>) -> Result<()> {
        let plan = &self.plan;
        start(&plan.unit, pid, &plan.properties, &plan.description)?;
        // Recorded before the wait for systemd to move the init, which can
        // fail: the unit exists from here on and is husk's to stop.
        self.started = true;
        recorded(&self.record())?;
        wait_placed(&plan.unit, pid)?;
        // The unit is new, and so is its cgroup: it is the container's.
        self.fs.create()?;
        self.fs.place(pid, recorded)
    }

    fn update(&self, r: &LinuxResources) -> Result<()> {
        let v2_memory = self.fs.cgroup().is_some_and(|c| c.is_v2("memory"));
        let mut limits = r.clone();
        limits.set_devices(None);
        self.fs.update(&limits)?;
        // systemd puts back what it knows of a unit (on daemon-reload): tell it too.
        set_properties(&self.plan.unit, resource_properties(Some(r), v2_memory))?;
        if r.devices().is_some() {
            let mut devices = LinuxResources::default();
            devices.set_devices(r.devices().clone());
            self.fs.update(&devices)?;
        }
        Ok(())
    }

    fn freeze(&self, frozen: bool) -> Result<()> {
        self.fs.freeze(frozen)
    }

    fn pids(&self) -> Result<Vec<libc::pid_t>> {
        self.fs.pids()
    }

    fn signal_all(&self, sig: i32) -> Result<()> {
        self.fs.signal_all(sig)
    }

    fn destroy(&self) -> Result<()> {
        if !self.started {
            return Ok(());
        }
        // Killed before the stop, which would have systemd wait for them.
        if self.fs.record().owns() && !self.fs.pids().unwrap_or_default().is_empty() {
            self.fs.signal_all(libc::SIGKILL)?;
        }
        stop(&self.plan.unit, self.systemd_dir().as_deref())?;
        self.fs.destroy()
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    thread_local! {
        /// Connections to systemd this thread tried (planning must try none).
        pub(crate) static CONNECTS: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
    }

    #[test]
    fn slices_expand_into_their_parents() {
        assert_eq!(expand_slice("system.slice").unwrap(), "/system.slice");
        assert_eq!(expand_slice("a-b-c.slice").unwrap(), "/a.slice/a-b.slice/a-b-c.slice");
        assert_eq!(expand_slice("-.slice").unwrap(), "/");
        for bad in ["system", "a--b.slice", "-a.slice", "a-.slice", "a/b.slice"] {
            assert!(expand_slice(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn cgroups_paths_as_runc_reads_them() {
        let u = parse_path("machine.slice:libpod:abc", "id", false).unwrap();
        assert_eq!(
            (u.name.as_str(), u.slice.as_str()),
            ("libpod-abc.scope", "machine.slice")
        );
        let u = parse_path("", "id", false).unwrap();
        assert_eq!((u.name.as_str(), u.slice.as_str()), ("husk-id.scope", "system.slice"));
        let u = parse_path(":crio:x", "id", true).unwrap();
        assert_eq!((u.name.as_str(), u.slice.as_str()), ("crio-x.scope", "user.slice"));
        let u = parse_path("system.slice::pod-x.slice", "id", false).unwrap();
        assert_eq!(u.name, "pod-x.slice");
        for bad in ["/abs/path", "a:b", "nots:p:n", "system.slice:p:", "system.slice:p:a/b"] {
            let e = parse_path(bad, "id", false).unwrap_err();
            assert!(e.message().starts_with("linux.cgroupsPath"), "{e}");
        }
    }

    #[test]
    fn systemd_learns_the_main_limits() {
        let r: LinuxResources = serde_json::from_str(
            r#"{"memory":{"limit":67108864},"pids":{"limit":-1},"cpu":{"shares":1024,"quota":50000,"period":100000}}"#,
        )
        .unwrap();
        let names = |v2| -> Vec<String> {
            resource_properties(Some(&r), v2)
                .iter()
                .map(|p| match p {
                    Value::Struct(f) => format!("{}={:?}", f[0].as_str().unwrap(), f[1]),
                    _ => unreachable!(),
                })
                .collect()
        };
        let v2 = names(true);
        assert!(v2[0].starts_with("MemoryMax=Variant(U64(67108864"), "{v2:?}");
        assert!(v2[1].contains(&format!("U64({})", u64::MAX)), "{v2:?}");
        assert!(v2[2].starts_with("CPUWeight=Variant(U64(100)"), "{v2:?}");
        assert!(v2[3].starts_with("CPUQuotaPerSecUSec=Variant(U64(500000"), "{v2:?}");
        assert!(names(false)[0].starts_with("MemoryLimit="));
    }
}
