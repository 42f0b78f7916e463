//! Commands that act on a running container through its cgroup: pause,
//! resume, ps, events and update.

use std::io::Read;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::time::Duration;

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use oci_spec::runtime::LinuxResources;
use serde_json::{json, Value};

use crate::bail;
use crate::cgroups::{resources, Cgroup, Driver};
use crate::container::members::{
    descends_from, in_containers_mount_namespace, in_pid_namespace_or_below, pid_namespace_of,
};
use crate::container::open_init;
use crate::error::{Context, Error, Result};
use crate::state::{FreezeLock, Locked, Saved, Status, Store};
use crate::sys::cgroupfs;

/// The container's cgroup, for what reads its files (stats, events).
fn cgroup_of(saved: &Saved) -> Result<Cgroup> {
    match &saved.cgroup.path {
        Some(path) => Cgroup::new(path),
        None => Err(no_cgroup(saved)),
    }
}

/// The driver of the container's cgroup; an error when it has none.
fn driver_of(saved: &Saved) -> Result<Box<dyn Driver>> {
    if saved.cgroup.path.is_none() {
        return Err(no_cgroup(saved));
    }
    crate::cgroups::driver::for_record(&saved.cgroup)
}

/// A container without a cgroup was made by a user no cgroup was delegated
/// to (root always gets one): say how to get one.
fn no_cgroup(saved: &Saved) -> Error {
    let mut msg = format!("container \"{}\" has no cgroup", saved.id);
    if !nix::unistd::geteuid().is_root() || saved.owner != "root" {
        msg.push_str(
            ": it was created unprivileged, and no cgroup was delegated to the user; \
             create it inside a systemd unit or scope with Delegate=yes \
             (systemd-run --user --scope -p Delegate=yes husk ...), \
             or with husk --systemd-cgroup in a systemd user session",
        );
    }
    Error::new(msg)
}

/// Freezes every process of a running or created container (its cgroup's
/// freezer). A paused created container is created again once resumed, and
/// `start` refuses it until then, as with runc.
pub fn pause(store: &Store, id: &str) -> Result<()> {
    let locked = store.lock(id)?;
    let saved = locked.load(id)?;
    let _turn = freeze_turn(&locked, &saved)?;
    match locked.status(&saved) {
        Status::Running | Status::Created => {
            let cgroup = driver_of(&saved)?;
            refuse_to_reach_bystanders(&saved, cgroup.as_ref(), "pause")?;
            cgroup.freeze(true)
        }
        Status::Paused => bail!("container \"{id}\" is already paused"),
        _ => Err(Error::not_running(id)),
    }
}

/// Thaws a paused container.
pub fn resume(store: &Store, id: &str) -> Result<()> {
    let locked = store.lock(id)?;
    let saved = locked.load(id)?;
    let _turn = freeze_turn(&locked, &saved)?;
    match locked.status(&saved) {
        Status::Paused => {
            let cgroup = driver_of(&saved)?;
            // A cgroup husk made is always thawed: what is frozen there
            // with the container is husk's own (an exec's joiner caught by
            // the pause) or came after it, and refusing would leave the
            // container paused for good.
            if !saved.cgroup.owns() {
                refuse_to_reach_bystanders(&saved, cgroup.as_ref(), "resume")?;
            }
            cgroup.freeze(false)
        }
        Status::Stopped => Err(Error::not_running(id)),
        _ => bail!("container \"{id}\" is not paused"),
    }
}

/// The container's freeze turn, so that a `kill --all` freezing it to
/// signal it does not thaw a pause, nor a resume thaw it before its signal;
/// with the freeze of one that died in it undone.
fn freeze_turn(locked: &Locked, saved: &Saved) -> Result<Option<FreezeLock>> {
    match saved.cgroup.freezer.as_deref() {
        Some(freezer) => FreezeLock::take_undoing_left(&locked.dir, freezer),
        None => Ok(None),
    }
}

/// Freezing or thawing a cgroup reaches every process in it: refuse when one
/// is not the container's. In a cgroup husk made, a process of a pid
/// namespace that is neither the container's nor below it belongs to another
/// container given the same cgroupsPath, which this would pause or unpause,
/// unless its children's pid namespace is the container's, or it is husk
/// itself in husk's pid namespace: `exec`'s joiner, which stays in husk's
/// pid namespace until its child has exec'd, and enters the cgroup before
/// it joins the container's for its children.
/// A cgroup husk did not make may hold the host's processes: there, what
/// cannot be shown to be the container's counts as a bystander (with no pid
/// namespace of its own, only the init, its descendants and the processes
/// of the mount namespace it made are).
fn refuse_to_reach_bystanders(saved: &Saved, cgroup: &dyn Driver, verb: &str) -> Result<()> {
    let ours = saved.cgroup.owns();
    let Some(container_ns) = pid_namespace_of(saved.pid) else {
        return match ours {
            true => Ok(()),
            false => Err(bystanders(saved, verb, saved.pid)),
        };
    };
    let husks_ns = pid_namespace_of(std::process::id() as libc::pid_t);
    let own_ns = husks_ns != Some(container_ns);
    // What the freeze reaches: on v1 the freezer hierarchy's processes,
    // which need not be those of the others (a foreign cgroup).
    let pids = match saved.cgroup.freezer.as_deref().and_then(std::path::Path::parent) {
        Some(dir) => crate::cgroups::pids_in(dir)?,
        None => cgroup.pids()?,
    };
    for pid in pids {
        let container_s = match own_ns {
            true => in_pid_namespace_or_below(pid, container_ns, "pid")
                .filter(|&yes| yes)
                .or_else(|| in_pid_namespace_or_below(pid, container_ns, "pid_for_children")),
            false => Some(ours || descends_from(pid, saved.pid)),
        };
        let container_s = container_s.unwrap_or(ours) || in_containers_mount_namespace(saved, pid);
        if !container_s && !is_exec_joiner(pid, husks_ns, &saved.id) {
            return Err(bystanders(saved, verb, pid));
        }
    }
    Ok(())
}

fn bystanders(saved: &Saved, verb: &str, pid: libc::pid_t) -> Error {
    let path = saved.cgroup.path.as_deref().unwrap_or_default();
    let whose = match saved.cgroup.owns() {
        true => "another container's, given the same cgroupsPath",
        false => "not the container's (the cgroup was not made by husk)",
    };
    Error::new(format!(
        "cannot {verb} container \"{}\": its cgroup {path} holds process {pid}, {whose}",
        saved.id
    ))
}

/// Whether `pid` is the joiner of an `exec` into container `id`, which
/// enters the container's cgroup before its pid namespace (and then has it
/// for its children only): it runs this very husk binary in husk's pid
/// namespace, and so does its parent, `husk ... exec ... ID`. Running husk
/// is not enough: any husk command, or code loaded into one, would pass.
fn is_exec_joiner(pid: libc::pid_t, husks_ns: Option<u64>, id: &str) -> bool {
    let runs_husk_here = |p: libc::pid_t| runs_this_husk(p) && husks_ns.is_some() && pid_namespace_of(p) == husks_ns;
    let Some(parent) = crate::sys::process_stat(pid).map(|s| s.ppid) else {
        return false;
    };
    let cmdline = std::fs::read(format!("/proc/{parent}/cmdline")).unwrap_or_default();
    let mut args = cmdline.split(|&b| b == 0).map(|a| std::str::from_utf8(a).unwrap_or(""));
    let execs_into_id = args.any(|a| a == "exec") && args.any(|a| a == id);
    execs_into_id && runs_husk_here(pid) && runs_husk_here(parent)
}

/// Whether `pid`'s executable is the same file as this process's.
fn runs_this_husk(pid: libc::pid_t) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (
        std::fs::metadata(format!("/proc/{pid}/exe")),
        std::fs::metadata("/proc/self/exe"),
    ) {
        (Ok(a), Ok(b)) => (a.dev(), a.ino()) == (b.dev(), b.ino()),
        _ => false,
    }
}

/// The pids (in husk's pid namespace) of every process in the container's cgroup.
pub fn pids(store: &Store, id: &str) -> Result<Vec<i32>> {
    let saved = store.load(id)?;
    driver_of(&saved)?.pids()
}

fn number(cg: &Cgroup, controller: &str, file: &str) -> Value {
    match cg.read(controller, file).as_deref() {
        Some("max") | None => json!(0),
        Some(v) => v.parse::<u64>().map(Value::from).unwrap_or(json!(0)),
    }
}

fn keyed(cg: &Cgroup, controller: &str, file: &str) -> serde_json::Map<String, Value> {
    let text = cg.read(controller, file).unwrap_or_default();
    text.lines()
        .filter_map(|l| {
            let (k, v) = l.split_once(' ')?;
            Some((k.to_string(), Value::from(v.trim().parse::<u64>().ok()?)))
        })
        .collect()
}

/// runc's stats (the parts containerd and podman read), from cgroup v1 or v2.
pub fn stats(cg: &Cgroup) -> Value {
    let pids = json!({ "current": number(cg, "pids", "pids.current"), "limit": number(cg, "pids", "pids.max") });
    if cg.is_v2("memory") {
        let cpu = keyed(cg, "cpu", "cpu.stat");
        let usec = |k: &str| cpu.get(k).and_then(Value::as_u64).unwrap_or(0) * 1000;
        let events = keyed(cg, "memory", "memory.events");
        let raw = keyed(cg, "memory", "memory.stat");
        return json!({
            "cpu": { "usage": { "total": usec("usage_usec"), "user": usec("user_usec"), "kernel": usec("system_usec"), "percpu": [] }, "throttling": throttling(&cpu, "throttled_usec", 1000) },
            "memory": {
                "cache": raw.get("file").cloned().unwrap_or(json!(0)),
                "usage": { "usage": number(cg, "memory", "memory.current"), "max": number(cg, "memory", "memory.peak"), "limit": number(cg, "memory", "memory.max"), "failcnt": events.get("max").cloned().unwrap_or(json!(0)) },
                "swap": { "usage": number(cg, "memory", "memory.swap.current"), "limit": number(cg, "memory", "memory.swap.max") },
                "raw": raw
            },
            "pids": pids, "blkio": blkio_v2(cg), "hugetlb": {}
        });
    }
    let acct = keyed(cg, "cpuacct", "cpuacct.stat");
    let tick_ns = 1_000_000_000 / cgroupfs::clock_ticks_per_second();
    let ticks = |k: &str| acct.get(k).and_then(Value::as_u64).unwrap_or(0) * tick_ns;
    let percpu: Vec<u64> = cg
        .read("cpuacct", "cpuacct.usage_percpu")
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|n| n.parse().ok())
        .collect();
    let raw = keyed(cg, "memory", "memory.stat");
    json!({
        "cpu": { "usage": { "total": number(cg, "cpuacct", "cpuacct.usage"), "user": ticks("user"), "kernel": ticks("system"), "percpu": percpu }, "throttling": throttling(&keyed(cg, "cpu", "cpu.stat"), "throttled_time", 1) },
        "memory": {
            "cache": raw.get("cache").cloned().unwrap_or(json!(0)),
            "usage": { "usage": number(cg, "memory", "memory.usage_in_bytes"), "max": number(cg, "memory", "memory.max_usage_in_bytes"), "limit": number(cg, "memory", "memory.limit_in_bytes"), "failcnt": number(cg, "memory", "memory.failcnt") },
            "swap": { "usage": number(cg, "memory", "memory.memsw.usage_in_bytes"), "limit": number(cg, "memory", "memory.memsw.limit_in_bytes") },
            "raw": raw
        },
        "pids": pids,
        "blkio": {
            "ioServiceBytesRecursive": blkio_v1(cg, "blkio.throttle.io_service_bytes_recursive"),
            "ioServicedRecursive": blkio_v1(cg, "blkio.throttle.io_serviced_recursive"),
        },
        "hugetlb": {}
    })
}

/// cpu.stat's throttling under runc's names (`throttledTime` in ns: the
/// file's `time_key` times `to_ns`).
fn throttling(cpu_stat: &serde_json::Map<String, Value>, time_key: &str, to_ns: u64) -> Value {
    let get = |k: &str| cpu_stat.get(k).and_then(Value::as_u64).unwrap_or(0);
    json!({
        "periods": get("nr_periods"),
        "throttledPeriods": get("nr_throttled"),
        "throttledTime": get(time_key).saturating_mul(to_ns),
    })
}

/// A v1 blkio file (`8:0 Read 4096` lines) as runc's entries.
fn blkio_v1(cg: &Cgroup, file: &str) -> Vec<Value> {
    let text = cg.read("blkio", file).unwrap_or_default();
    text.lines()
        .filter_map(|line| {
            let mut f = line.split_whitespace();
            let (dev, op, value) = (f.next()?, f.next()?, f.next()?.parse::<u64>().ok()?);
            let (major, minor) = dev.split_once(':')?;
            Some(json!({"major": major.parse::<u64>().ok()?, "minor": minor.parse::<u64>().ok()?, "op": op, "value": value}))
        })
        .collect()
}

/// io.stat (`8:0 rbytes=1 wbytes=2 rios=3 wios=4 ...`) as runc's blkio entries.
fn blkio_v2(cg: &Cgroup) -> Value {
    let text = cg.read("io", "io.stat").unwrap_or_default();
    let (mut bytes, mut ios) = (Vec::new(), Vec::new());
    for line in text.lines() {
        let mut f = line.split_whitespace();
        let Some((major, minor)) = f.next().and_then(|d| d.split_once(':')) else {
            continue;
        };
        let (Ok(major), Ok(minor)) = (major.parse::<u64>(), minor.parse::<u64>()) else {
            continue;
        };
        for (key, value) in f.filter_map(|kv| kv.split_once('=')) {
            let Ok(value) = value.parse::<u64>() else { continue };
            let (list, op) = match key {
                "rbytes" => (&mut bytes, "Read"),
                "wbytes" => (&mut bytes, "Write"),
                "rios" => (&mut ios, "Read"),
                "wios" => (&mut ios, "Write"),
                _ => continue,
            };
            list.push(json!({"major": major, "minor": minor, "op": op, "value": value}));
        }
    }
    json!({"ioServiceBytesRecursive": bytes, "ioServicedRecursive": ios})
}

/// An fd that becomes readable when the cgroup has an OOM kill, and how to
/// tell (v1: an eventfd registered on memory.oom_control; v2: memory.events).
enum OomWatch {
    V1(OwnedFd),
    V2 { events: std::fs::File, kills: u64 },
}

fn oom_kills(events: &mut std::fs::File) -> u64 {
    use std::io::Seek;
    let mut text = String::new();
    let _ = events.rewind();
    let _ = events.read_to_string(&mut text);
    text.lines()
        .find_map(|l| l.strip_prefix("oom_kill "))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or(0)
}

fn watch_oom(cg: &Cgroup) -> Option<OomWatch> {
    let dir = cg
        .dirs
        .iter()
        .find(|(h, _)| {
            if cg.is_v2("memory") {
                h.v2
            } else {
                h.controllers.split(',').any(|c| c == "memory")
            }
        })?
        .1
        .clone();
    if cg.is_v2("memory") {
        let mut events = std::fs::File::open(dir.join("memory.events")).ok()?;
        let kills = oom_kills(&mut events);
        return Some(OomWatch::V2 { events, kills });
    }
    let control = std::fs::File::open(dir.join("memory.oom_control")).ok()?;
    let efd = cgroupfs::eventfd().ok()?;
    let line = format!("{} {}", efd.as_raw_fd(), control.as_raw_fd());
    std::fs::write(dir.join("cgroup.event_control"), line).ok()?;
    std::mem::forget(control); // registered for as long as we listen
    Some(OomWatch::V1(efd))
}

/// What [`events`] reports.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// Resource usage, in runc's stats format (the part containerd and podman read).
    Stats(Value),
    /// The kernel's OOM killer killed a process of the container.
    Oom,
}

/// Stats every `every` and OOM events, each handed to `emit`, until the
/// container stops; with `every` None, one stats event (`events --stats`).
pub fn events(store: &Store, id: &str, every: Option<Duration>, mut emit: impl FnMut(Event)) -> Result<()> {
    let saved = store.load(id)?;
    let cg = cgroup_of(&saved)?;
    let Some(every) = every else {
        emit(Event::Stats(stats(&cg)));
        return Ok(());
    };
    let pidfd = open_init(&saved)?;
    let mut oom = watch_oom(&cg);
    let timeout = PollTimeout::try_from(every).unwrap_or(PollTimeout::MAX);
    loop {
        let mut fds = vec![PollFd::new(pidfd.as_fd(), PollFlags::POLLIN)];
        match &oom {
            Some(OomWatch::V1(efd)) => fds.push(PollFd::new(efd.as_fd(), PollFlags::POLLIN)),
            Some(OomWatch::V2 { events, .. }) => fds.push(PollFd::new(events.as_fd(), PollFlags::POLLPRI)),
            None => {}
        }
        let n = match poll(&mut fds, timeout) {
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(e).context(|| "wait for events".into()),
            Ok(n) => n,
        };
        let ready = |i: usize| fds.get(i).and_then(|f| f.revents()).is_some_and(|r| !r.is_empty());
        let (stopped, oom_ready) = (ready(0), ready(1));
        drop(fds);
        if oom_ready {
            let fired = match &mut oom {
                Some(OomWatch::V1(efd)) => {
                    let mut buf = [0u8; 8];
                    nix::unistd::read(&*efd, &mut buf).is_ok()
                }
                Some(OomWatch::V2 { events, kills }) => {
                    let now = oom_kills(events);
                    let fired = now > *kills;
                    *kills = now;
                    fired
                }
                None => false,
            };
            if fired {
                emit(Event::Oom);
            }
        }
        if stopped {
            return Ok(());
        }
        if n == 0 {
            emit(Event::Stats(stats(&cg)));
        }
    }
}

/// Changes the running container's cgroup limits to `r` (only what it sets).
pub fn update(store: &Store, id: &str, r: &LinuxResources) -> Result<()> {
    let locked = store.lock(id)?;
    let saved = locked.load(id)?;
    if locked.status(&saved) == Status::Stopped {
        return Err(Error::not_running(id));
    }
    let driver = driver_of(&saved)?;
    let completed;
    let r = match driver.cgroup() {
        Some(cg) => {
            completed = resources::keep_current(r, &|c| cg.is_v2(c), &|c, f| cg.read(c, f));
            &completed
        }
        None => r,
    };
    if let (Some(cg), Some(m)) = (driver.cgroup(), r.memory()) {
        if let (Some(true), Some(limit)) = (m.check_before_update(), m.limit().filter(|l| *l > 0)) {
            let file = if cg.is_v2("memory") {
                "memory.current"
            } else {
                "memory.usage_in_bytes"
            };
            let usage: i64 = cg.read("memory", file).and_then(|u| u.parse().ok()).unwrap_or(0);
            if limit < usage {
                bail!("linux.resources.memory.limit {limit} is below the current usage {usage}");
            }
        }
    }
    driver.update(r)
}
