//! Process attributes other than the user and capabilities: rlimits, OOM score,
//! scheduler, I/O priority, personality, the NUMA memory policy, CPU affinity,
//! the session keyring, no_new_privs and LSM labels. Validated into
//! `AttrsPlan`; applied by the init and the exec process.

use nix::sched::{sched_setaffinity, CpuSet};
use nix::unistd::Pid;
use oci_spec::runtime::{Linux, PosixRlimitType, Process};

use crate::bail;
use crate::error::{Context, Error, Result};
use crate::process::mempolicy::{self, MemPolicy};
use crate::sys;

/// `process.scheduler` as sched_setattr(2) takes it.
pub use crate::sys::attrs::SchedParams as SchedAttr;

#[derive(Debug, Default, Clone)]
pub struct AttrsPlan {
    pub rlimits: Vec<(sys::attrs::Resource, libc::rlimit)>,
    pub oom_score_adj: Option<i32>,
    pub scheduler: Option<SchedAttr>,
    pub io_priority: Option<i32>,
    pub personality: Option<libc::c_ulong>,
    /// `linux.memoryPolicy`: the container's, for the init and exec processes alike.
    pub memory_policy: Option<MemPolicy>,
    pub affinity_initial: Option<Vec<usize>>,
    pub affinity_final: Option<Vec<usize>>,
    pub no_new_privileges: bool,
    pub apparmor: Option<String>,
    pub selinux: Option<String>,
    /// Name of the session keyring to join, None with --no-new-keyring.
    pub keyring: Option<String>,
}

fn rlimit_resource(t: PosixRlimitType) -> sys::attrs::Resource {
    use PosixRlimitType::*;
    match t {
        RlimitCpu => libc::RLIMIT_CPU,
        RlimitFsize => libc::RLIMIT_FSIZE,
        RlimitData => libc::RLIMIT_DATA,
        RlimitStack => libc::RLIMIT_STACK,
        RlimitCore => libc::RLIMIT_CORE,
        RlimitRss => libc::RLIMIT_RSS,
        RlimitNproc => libc::RLIMIT_NPROC,
        RlimitNofile => libc::RLIMIT_NOFILE,
        RlimitMemlock => libc::RLIMIT_MEMLOCK,
        RlimitAs => libc::RLIMIT_AS,
        RlimitLocks => libc::RLIMIT_LOCKS,
        RlimitSigpending => libc::RLIMIT_SIGPENDING,
        RlimitMsgqueue => libc::RLIMIT_MSGQUEUE,
        RlimitNice => libc::RLIMIT_NICE,
        RlimitRtprio => libc::RLIMIT_RTPRIO,
        RlimitRttime => libc::RLIMIT_RTTIME,
    }
}

/// "0-3,7" → [0, 1, 2, 3, 7]: each CPU once, in order. CPUs go up to what
/// the kernel's cpu_set_t holds (nix's count: 1024; libc's CPU_SETSIZE is
/// 128 for musl, which refused CPUs 128-1023 in the musl build), and a
/// hostile list of many ranges costs no more memory than that (expanded
/// range by range, 700 KB of "0-127," took 226 MB; review 66).
pub fn parse_cpu_list(field: &str, list: &str) -> Result<Vec<usize>> {
    let bad = || Error::new(format!("{field}: invalid CPU list \"{}\"", shortened(list)));
    let mut named = vec![false; CpuSet::count()];
    for part in list.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (a, b) = part.split_once('-').unwrap_or((part, part));
        let (a, b): (usize, usize) = (a.parse().map_err(|_| bad())?, b.parse().map_err(|_| bad())?);
        if a > b || b >= named.len() {
            return Err(bad());
        }
        named[a..=b].fill(true);
    }
    Ok((0..named.len()).filter(|&c| named[c]).collect())
}

/// A config value as an error quotes it: at most 64 characters of it.
fn shortened(value: &str) -> String {
    match value.char_indices().nth(64) {
        Some((end, _)) => format!("{}... ({} bytes)", &value[..end], value.len()),
        None => value.to_string(),
    }
}

fn name_of<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_value(v)
        .ok()
        .and_then(|v| v.as_str().map(String::from))
        .unwrap_or_default()
}

fn scheduler(p: &Process) -> Result<Option<SchedAttr>> {
    let Some(s) = p.scheduler() else {
        return Ok(None);
    };
    let policy = match name_of(&s.policy()).as_str() {
        "SCHED_OTHER" => libc::SCHED_OTHER,
        "SCHED_FIFO" => libc::SCHED_FIFO,
        "SCHED_RR" => libc::SCHED_RR,
        "SCHED_BATCH" => libc::SCHED_BATCH,
        "SCHED_ISO" => 4,
        "SCHED_IDLE" => libc::SCHED_IDLE,
        "SCHED_DEADLINE" => 6,
        other => bail!("process.scheduler.policy: unknown {other}"),
    } as u32;
    let mut flags = 0u64;
    for f in s.flags().iter().flatten() {
        flags |= match name_of(f).as_str() {
            "SCHED_FLAG_RESET_ON_FORK" => 0x01,
            "SCHED_FLAG_RECLAIM" => 0x02,
            "SCHED_FLAG_DL_OVERRUN" => 0x04,
            "SCHED_FLAG_KEEP_POLICY" => 0x08,
            "SCHED_FLAG_KEEP_PARAMS" => 0x10,
            "SCHED_FLAG_UTIL_CLAMP_MIN" => 0x20,
            "SCHED_FLAG_UTIL_CLAMP_MAX" => 0x40,
            other => bail!("process.scheduler.flags: unknown {other}"),
        };
    }
    Ok(Some(SchedAttr {
        policy,
        flags,
        nice: s.nice().unwrap_or(0),
        priority: s.priority().unwrap_or(0) as u32,
        runtime: s.runtime().unwrap_or(0),
        deadline: s.deadline().unwrap_or(0),
        period: s.period().unwrap_or(0),
    }))
}

fn io_priority(p: &Process) -> Result<Option<i32>> {
    let Some(io) = p.io_priority() else {
        return Ok(None);
    };
    let class = match name_of(&io.class()).as_str() {
        "IOPRIO_CLASS_RT" => 1,
        "IOPRIO_CLASS_BE" => 2,
        "IOPRIO_CLASS_IDLE" => 3,
        other => bail!("process.ioPriority.class: unknown {other}"),
    };
    if !(0..=7).contains(&io.priority()) {
        bail!("process.ioPriority.priority {} is not within 0-7", io.priority());
    }
    Ok(Some(class << 13 | io.priority() as i32))
}

fn personality(linux: &Linux) -> Result<Option<libc::c_ulong>> {
    let Some(p) = linux.personality() else {
        return Ok(None);
    };
    if p.flags().as_ref().is_some_and(|f| !f.is_empty()) {
        bail!("linux.personality.flags are not supported");
    }
    Ok(Some(match name_of(&p.domain()).as_str() {
        "LINUX" => 0x0000,
        "LINUX32" => 0x0008,
        other => bail!("linux.personality.domain: unknown {other}"),
    }))
}

pub fn apparmor_enabled() -> bool {
    std::fs::read_to_string("/sys/module/apparmor/parameters/enabled").is_ok_and(|s| s.trim() == "Y")
}

pub fn selinux_enabled() -> bool {
    std::path::Path::new("/sys/fs/selinux/enforce").exists()
}

pub fn plan(p: &Process, linux: &Linux, id: &str, new_keyring: bool) -> Result<AttrsPlan> {
    let rlimits = p
        .rlimits()
        .iter()
        .flatten()
        .map(|r| {
            let limit = libc::rlimit {
                rlim_cur: r.soft(),
                rlim_max: r.hard(),
            };
            (rlimit_resource(r.typ()), limit)
        })
        .collect::<Vec<_>>();
    if let Some((i, _)) = rlimits.iter().enumerate().find(|(_, (_, l))| l.rlim_cur > l.rlim_max) {
        bail!("process.rlimits[{i}]: soft limit is above the hard limit");
    }
    let apparmor = p.apparmor_profile().clone().filter(|a| !a.is_empty());
    if let Some(a) = &apparmor {
        if !apparmor_enabled() {
            bail!("process.apparmorProfile {a}: AppArmor is not enabled on this host");
        }
    }
    // Without SELinux there is no policy to label for: dropped with a
    // warning, as crun and runc do (an AppArmor profile stays an error).
    let selinux = p.selinux_label().clone().filter(|l| !l.is_empty()).filter(|l| {
        let enabled = selinux_enabled();
        if !enabled {
            crate::log::warn(&format!(
                "process.selinuxLabel {l}: SELinux is not enabled on this host, ignored"
            ));
        }
        enabled
    });
    let affinity = p.exec_cpu_affinity().as_ref();
    let cpus = |field: &str, v: Option<&String>| v.map(|l| parse_cpu_list(field, l)).transpose();
    Ok(AttrsPlan {
        rlimits,
        oom_score_adj: p.oom_score_adj(),
        scheduler: scheduler(p)?,
        io_priority: io_priority(p)?,
        personality: personality(linux)?,
        memory_policy: mempolicy::plan(linux.memory_policy().as_ref())?,
        affinity_initial: cpus(
            "process.execCPUAffinity.initial",
            affinity.and_then(|a| a.initial().as_ref()),
        )?,
        affinity_final: cpus(
            "process.execCPUAffinity.final",
            affinity.and_then(|a| a.cpu_affinity_final().as_ref()),
        )?,
        no_new_privileges: p.no_new_privileges().unwrap_or(false),
        apparmor,
        selinux,
        keyring: new_keyring.then(|| format!("_ses.{id}")),
    })
}

/// Runs the calling process on `cpus`, `field` of process.execCPUAffinity
/// (EINVAL: none of them is online and in the cpuset).
pub fn set_affinity(field: &str, cpus: &[usize]) -> Result<()> {
    let mut set = CpuSet::new();
    // Every cpu fits in the set: checked at parse.
    cpus.iter()
        .try_for_each(|&c| set.set(c))
        .and_then(|()| sched_setaffinity(Pid::from_raw(0), &set))
        .map_err(std::io::Error::from)
        .context(|| {
            format!(
                "process.execCPUAffinity.{field}: run on CPUs {}",
                shortened(&cpu_list(cpus))
            )
        })
}

/// [0, 1, 2, 3, 7] → "0-3,7".
fn cpu_list(cpus: &[usize]) -> String {
    let mut ranges: Vec<(usize, usize)> = Vec::new();
    for &c in cpus {
        match ranges.last_mut() {
            Some((_, end)) if *end + 1 == c => *end = c,
            _ => ranges.push((c, c)),
        }
    }
    let text: Vec<String> = ranges
        .iter()
        .map(|&(a, b)| if a == b { a.to_string() } else { format!("{a}-{b}") })
        .collect();
    text.join(",")
}

/// The calling process's CPU affinity as a hexadecimal mask (CPU 0 the
/// lowest bit), as runc's and youki's debug logs print it.
pub fn affinity_mask() -> Result<String> {
    let set = nix::sched::sched_getaffinity(Pid::from_raw(0))
        .map_err(std::io::Error::from)
        .context(|| "sched_getaffinity".into())?;
    Ok(hex_mask(
        (0..CpuSet::count()).filter(|&c| set.is_set(c).unwrap_or(false)),
    ))
}

/// CPUs [0, 1, 65] → "0x20000000000000003".
fn hex_mask(cpus: impl Iterator<Item = usize>) -> String {
    let mut words: Vec<u64> = vec![0];
    for cpu in cpus {
        if words.len() <= cpu / 64 {
            words.resize(cpu / 64 + 1, 0);
        }
        words[cpu / 64] |= 1 << (cpu % 64);
    }
    let mut hex = format!("0x{:x}", words.pop().unwrap_or(0));
    for w in words.iter().rev() {
        hex.push_str(&format!("{w:016x}"));
    }
    hex
}

impl AttrsPlan {
    /// Whether applying these writes through the private procfs (`set_exec_labels`).
    pub fn writes_proc(&self) -> bool {
        self.apparmor.is_some() || self.selinux.is_some()
    }
}

/// `process.oomScoreAdj`, handed to a clone (the init, exec's joiner) by its
/// parent: the parent sets its own just before the clone, which inherits it,
/// and puts its own back after. The clone could not set it itself in a user
/// namespace (not dumpable, its /proc files are the host root's), nor lower
/// it without the host's CAP_SYS_RESOURCE.
///
/// The parent's file stays open from the set to the restore: by then the
/// parent may be non-dumpable (exec's parent always is), so that an
/// unprivileged husk could no longer open it, and a foreground `exec` or
/// `run` kept the container's value for as long as it waited.
pub struct OomScoreAdjForClone(Option<(std::fs::File, String)>);

const OWN_OOM_SCORE_ADJ: &str = "/proc/self/oom_score_adj";

impl OomScoreAdjForClone {
    /// Before the parent makes itself non-dumpable (unprivileged, it could
    /// not open its own file then) or joins a namespace.
    pub fn set(a: &AttrsPlan) -> Result<OomScoreAdjForClone> {
        use std::io::Read;
        let Some(adj) = a.oom_score_adj else {
            return Ok(OomScoreAdjForClone(None));
        };
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(OWN_OOM_SCORE_ADJ)
            .context(|| format!("open {OWN_OOM_SCORE_ADJ}"))?;
        let mut own = String::new();
        file.read_to_string(&mut own)
            .context(|| format!("read {OWN_OOM_SCORE_ADJ}"))?;
        write_oom_score_adj(&file, &adj.to_string()).context(|| format!("process.oomScoreAdj {adj}"))?;
        Ok(OomScoreAdjForClone(Some((file, own.trim().to_string()))))
    }

    /// After the clone, in the parent. Best effort: lowering it back below a
    /// minimum that the set raised needs CAP_SYS_RESOURCE, which a parent
    /// that joined a user namespace has lost.
    pub fn restore(self) {
        if let Some((file, own)) = self.0 {
            let _ = write_oom_score_adj(&file, &own);
        }
    }

    /// In the clone: closes the parent's file (it is the parent's process).
    pub fn forget(self) {}
}

fn write_oom_score_adj(file: &std::fs::File, value: &str) -> std::io::Result<()> {
    std::os::unix::fs::FileExt::write_all_at(file, value.as_bytes(), 0)
}

/// Applied in the init before it reports Ready, so that a failure fails `create`.
pub fn apply_early(a: &AttrsPlan) -> Result<()> {
    for (resource, limit) in &a.rlimits {
        sys::attrs::setrlimit(*resource, limit).context(|| format!("setrlimit {resource}"))?;
    }
    if let Some(s) = &a.scheduler {
        set_scheduler(s)?;
    }
    if let Some(prio) = a.io_priority {
        sys::attrs::set_io_priority(prio).context(|| "process.ioPriority".into())?;
    }
    if let Some(p) = a.personality {
        sys::attrs::personality(p).context(|| "linux.personality".into())?;
    }
    if let Some(policy) = &a.memory_policy {
        mempolicy::apply(policy)?;
    }
    if let Some(name) = &a.keyring {
        join_session_keyring(name)?;
    }
    Ok(())
}

fn set_scheduler(s: &SchedAttr) -> Result<()> {
    sys::attrs::sched_setattr(s).context(|| "process.scheduler".into())
}

fn join_session_keyring(name: &str) -> Result<()> {
    let c = sys::cstring(name)?;
    match sys::attrs::join_session_keyring(&c) {
        // Kernels without keys, or keyrings denied in a user namespace: keep the caller's.
        Err(e) if !matches!(e.raw_os_error(), Some(libc::ENOSYS | libc::EACCES | libc::EPERM)) => {
            Err(e).context(|| "join a new session keyring".into())
        }
        _ => Ok(()),
    }
}

/// LSM labels for the exec, written through the private procfs.
pub fn set_exec_labels(a: &AttrsPlan, proc: &sys::Procfs) -> Result<()> {
    if let Some(profile) = &a.apparmor {
        let r = sys::write_proc(proc, "thread-self/attr/apparmor/exec", &format!("exec {profile}"))
            .or_else(|_| sys::write_proc(proc, "thread-self/attr/exec", &format!("exec {profile}")));
        r.context(|| format!("apply AppArmor profile {profile}"))?;
    }
    if let Some(label) = &a.selinux {
        sys::write_proc(proc, "thread-self/attr/exec", label).context(|| format!("apply SELinux label {label}"))?;
    }
    Ok(())
}

pub fn set_no_new_privileges() -> Result<()> {
    nix::sys::prctl::set_no_new_privs()
        .map_err(std::io::Error::from)
        .context(|| "process.noNewPrivileges".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_lists() {
        assert_eq!(parse_cpu_list("f", "0-3,7").unwrap(), [0, 1, 2, 3, 7]);
        assert_eq!(parse_cpu_list("f", "1").unwrap(), [1]);
        assert!(parse_cpu_list("f", "3-1").is_err());
        assert_eq!(parse_cpu_list("f", "7,0-1,1,0").unwrap(), [0, 1, 7]);
        assert_eq!(
            parse_cpu_list("f", "1023").unwrap(),
            [1023],
            "musl's CPU_SETSIZE is 128"
        );
        assert!(parse_cpu_list("f", "1024").is_err());
        let hostile = "0-1023,".repeat(100_000);
        assert_eq!(parse_cpu_list("f", &hostile).unwrap().len(), 1024);
        let e = parse_cpu_list("f", &format!("{hostile}x")).unwrap_err();
        assert!(e.message().len() < 200, "{}", e.message());
        assert!(e.message().ends_with("... (700001 bytes)\""), "{}", e.message());
        assert_eq!(cpu_list(&[0, 1, 2, 3, 7, 9, 10]), "0-3,7,9-10");
        assert!(parse_cpu_list("f", "x")
            .unwrap_err()
            .message()
            .starts_with("f: invalid CPU list"));
    }

    #[test]
    fn affinity_masks_are_hexadecimal_with_cpu_0_lowest() {
        assert_eq!(hex_mask([].into_iter()), "0x0");
        assert_eq!(hex_mask([0].into_iter()), "0x1");
        assert_eq!(hex_mask([0, 1].into_iter()), "0x3");
        assert_eq!(hex_mask([1, 4].into_iter()), "0x12");
        assert_eq!(hex_mask([0, 1, 65].into_iter()), "0x20000000000000003");
        assert_eq!(hex_mask([64].into_iter()), "0x10000000000000000");
        assert!(affinity_mask().unwrap().starts_with("0x"));
    }

    #[test]
    fn plan_reads_limits_and_priorities() {
        let p: Process = serde_json::from_str(
            r#"{"cwd":"/","user":{"uid":0,"gid":0},"args":["sh"],"noNewPrivileges":true,
                "rlimits":[{"type":"RLIMIT_NOFILE","soft":100,"hard":200}],
                "ioPriority":{"class":"IOPRIO_CLASS_BE","priority":4},
                "scheduler":{"policy":"SCHED_BATCH","nice":5}}"#,
        )
        .unwrap();
        let a = plan(&p, &Linux::default(), "c1", true).unwrap();
        assert_eq!(a.rlimits.len(), 1);
        assert_eq!((a.rlimits[0].1.rlim_cur, a.rlimits[0].1.rlim_max), (100, 200));
        assert_eq!(a.io_priority, Some(2 << 13 | 4));
        assert_eq!(
            a.scheduler.as_ref().map(|s| (s.policy, s.nice)),
            Some((libc::SCHED_BATCH as u32, 5))
        );
        assert!(a.no_new_privileges);
        assert_eq!(a.keyring.as_deref(), Some("_ses.c1"));
    }

    #[test]
    fn soft_above_hard_is_an_error() {
        let p: Process = serde_json::from_str(
            r#"{"cwd":"/","user":{"uid":0,"gid":0},"rlimits":[{"type":"RLIMIT_NOFILE","soft":300,"hard":200}]}"#,
        )
        .unwrap();
        let Err(e) = plan(&p, &Linux::default(), "c", false) else {
            panic!("an error expected")
        };
        assert!(e.message().contains("process.rlimits[0]"), "{e}");
    }
}
