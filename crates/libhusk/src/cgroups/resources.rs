//! `linux.resources` turned into cgroup file writes. Pure: which file names
//! and values depends only on whether each controller is on cgroup v1 or v2 on
//! this host (a hybrid host can have both), so all of it is unit-tested here.
//! Device rules are separate: v1 writes them, v2 compiles them to eBPF.

use oci_spec::runtime::{LinuxDeviceCgroup, LinuxDeviceType, LinuxResources};

use crate::bail;
use crate::error::Result;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Write {
    pub controller: &'static str,
    pub file: String,
    pub value: String,
    pub tolerate: Tolerate,
}

/// Which failure of a write is not an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tolerate {
    Nothing,
    /// EINVAL: a first try of two limits the kernel checks against each other
    /// (a burst against the quota, memsw against the memory limit); the same
    /// write follows the other one, as runc retries it.
    InvalidBeforeRetry,
    /// A missing file: a value that only lifts a limit the kernel does not
    /// account (memory.swap.max without swap accounting).
    Missing,
}

fn w(controller: &'static str, file: impl Into<String>, value: impl ToString) -> Write {
    Write {
        controller,
        file: file.into(),
        value: value.to_string(),
        tolerate: Tolerate::Nothing,
    }
}

impl Write {
    fn tolerating(mut self, tolerate: Tolerate) -> Write {
        self.tolerate = tolerate;
        self
    }
}

/// cpu.shares (2-262144) to cpu.weight (1-10000) as runc 1.3 and crun 1.23
/// convert them: a quadratic in log2(shares) through (2, 1), (1024, 100) and
/// (262144, 10000), so that the default 1024 shares give the kernel's default
/// weight 100 (the older linear mapping gave 39, below every uncontained
/// process). contest and Kubernetes expect this mapping.
pub fn shares_to_weight(shares: u64) -> u64 {
    if shares == 0 {
        return 0;
    }
    // The kernel clamps shares into 2..=262144 too.
    let l = (shares.clamp(2, 262144) as f64).log2();
    let exponent = (l * l + 125.0 * l) / 612.0 - 7.0 / 34.0;
    (10f64.powf(exponent).ceil() as u64).clamp(1, 10000)
}

/// blkio.weight (10-1000) to io.weight (1-10000).
fn blkio_to_io_weight(weight: u16) -> u64 {
    1 + (weight.saturating_sub(10) as u64 * 9999) / 990
}

/// A page size as the kernel names hugetlb's files (`hugetlb.2MB.max`): it
/// becomes part of a file name, so nothing else may pass.
fn is_hugepage_size(size: &str) -> bool {
    let digits = size.trim_end_matches(['K', 'M', 'G', 'B']);
    let unit = &size[digits.len()..];
    !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) && ["KB", "MB", "GB"].contains(&unit)
}

fn max_or(v: i64) -> String {
    if v < 0 {
        "max".to_string()
    } else {
        v.to_string()
    }
}

/// The writes for `r`; `v2(controller)` says whether that controller is on the
/// unified hierarchy here. Writes are in the order they must be made.
pub fn writes(r: &LinuxResources, v2: &dyn Fn(&str) -> bool) -> Result<Vec<Write>> {
    let mut out = Vec::new();
    memory(r, v2("memory"), &mut out)?;
    cpu(r, v2("cpu"), &mut out)?;
    if let Some(cpu) = r.cpu() {
        if let Some(cpus) = cpu.cpus().as_ref().filter(|c| !c.is_empty()) {
            out.push(w("cpuset", "cpuset.cpus", cpus));
        }
        if let Some(mems) = cpu.mems().as_ref().filter(|m| !m.is_empty()) {
            out.push(w("cpuset", "cpuset.mems", mems));
        }
    }
    if let Some(limit) = r.pids().map(|p| p.limit()).filter(|l| *l != 0) {
        out.push(w("pids", "pids.max", max_or(limit)));
    }
    block_io(r, v2("io") || v2("blkio"), &mut out)?;
    for (i, h) in r.hugepage_limits().iter().flatten().enumerate() {
        if !is_hugepage_size(h.page_size()) {
            bail!(
                "linux.resources.hugepageLimits[{i}].pageSize {:?} is not a page size such as 2MB or 1GB",
                h.page_size()
            );
        }
        let suffix = if v2("hugetlb") { "max" } else { "limit_in_bytes" };
        out.push(w("hugetlb", format!("hugetlb.{}.{suffix}", h.page_size()), h.limit()));
    }
    if let Some(n) = r.network() {
        if v2("net_cls") {
            bail!("linux.resources.network needs the cgroup v1 net_cls and net_prio controllers");
        }
        if let Some(id) = n.class_id().filter(|id| *id != 0) {
            out.push(w("net_cls", "net_cls.classid", id));
        }
        for p in n.priorities().iter().flatten() {
            out.push(w(
                "net_prio",
                "net_prio.ifpriomap",
                format!("{} {}", p.name(), p.priority()),
            ));
        }
    }
    if let Some(unified) = r.unified().as_ref().filter(|u| !u.is_empty()) {
        let mut keys: Vec<_> = unified.iter().collect();
        keys.sort();
        for (key, value) in keys {
            let Some((controller, _)) = key.split_once('.') else {
                bail!("linux.resources.unified: invalid key \"{key}\"")
            };
            if key.contains('/') || !v2(controller) {
                bail!("linux.resources.unified: {key} needs the {controller} controller on cgroup v2");
            }
            out.push(w("unified", key.clone(), value));
        }
    }
    Ok(out)
}

/// `update`'s request completed from the cgroup as it is now (`read` gives
/// a controller's file), where cgroup v2 keeps two of the spec's values in one
/// file: a new period keeps the quota of cpu.max and a new quota its period,
/// and a swap limit alone is counted from memory.max (runc keeps both from
/// the container's config).
pub fn keep_current(
    r: &LinuxResources,
    v2: &dyn Fn(&str) -> bool,
    read: &dyn Fn(&str, &str) -> Option<String>,
) -> LinuxResources {
    let mut r = r.clone();
    // "max" is the spec's -1.
    let number = |s: &str| if s == "max" { Some(-1) } else { s.parse::<i64>().ok() };
    if let Some(mut c) = r.cpu().clone().filter(|_| v2("cpu")) {
        let (quota, period) = (c.quota().filter(|q| *q != 0), c.period().filter(|p| *p != 0));
        if quota.is_some() != period.is_some() {
            let current = read("cpu", "cpu.max").unwrap_or_default();
            let mut fields = current.split_whitespace();
            let (old_quota, old_period) = (fields.next().and_then(number), fields.next().and_then(number));
            if quota.is_none() {
                c.set_quota(old_quota);
            } else if let Some(p) = old_period.filter(|p| *p > 0) {
                c.set_period(Some(p as u64));
            }
            r.set_cpu(Some(c));
        }
    }
    if let Some(mut m) = r.memory().filter(|_| v2("memory")) {
        if m.swap().is_some_and(|s| s > 0) && m.limit().is_none_or(|l| l == 0) {
            m.set_limit(read("memory", "memory.max").as_deref().and_then(number));
            r.set_memory(Some(m));
        }
    }
    r
}

fn memory(r: &LinuxResources, v2: bool, out: &mut Vec<Write>) -> Result<()> {
    let Some(m) = r.memory() else { return Ok(()) };
    let set = |v: Option<i64>| v.filter(|v| *v != 0);
    if v2 {
        let limit = set(m.limit());
        if let Some(swap) = v2_swap(set(m.swap()), limit)? {
            // Unlimited or none: fine where the kernel accounts no swap.
            let tolerate = match swap.as_str() {
                "max" | "0" => Tolerate::Missing,
                _ => Tolerate::Nothing,
            };
            out.push(w("memory", "memory.swap.max", swap).tolerating(tolerate));
        }
        if let Some(limit) = limit {
            out.push(w("memory", "memory.max", max_or(limit)));
        }
        if let Some(res) = set(m.reservation()) {
            out.push(w("memory", "memory.low", max_or(res)));
        }
        if m.swappiness().is_some() {
            bail!("linux.resources.memory.swappiness is not supported on cgroup v2");
        }
        if m.disable_oom_killer() == Some(true) {
            bail!("linux.resources.memory.disableOOMKiller is not supported on cgroup v2");
        }
        return Ok(());
    }
    let limit = set(m.limit());
    let memsw = |v: i64| w("memory", "memory.memsw.limit_in_bytes", v.max(-1));
    match (limit, set(m.swap())) {
        (Some(limit), Some(swap)) => {
            // memsw must stay >= the limit at each step, whichever way both move.
            out.push(memsw(swap).tolerating(Tolerate::InvalidBeforeRetry));
            out.push(w("memory", "memory.limit_in_bytes", limit.max(-1)));
            out.push(memsw(swap));
        }
        (Some(limit), None) => {
            // An unlimited memory lifts the memory+swap limit too (as runc
            // does), first: the kernel refuses a memory limit above memsw.
            if limit < 0 {
                out.push(memsw(-1).tolerating(Tolerate::Missing));
            }
            out.push(w("memory", "memory.limit_in_bytes", limit.max(-1)));
        }
        (None, Some(swap)) => out.push(memsw(swap)),
        (None, None) => {}
    }
    if let Some(res) = set(m.reservation()) {
        out.push(w("memory", "memory.soft_limit_in_bytes", res));
    }
    // cgroup v2 has no such limit (socket memory is charged to memory.max).
    if let Some(tcp) = set(m.kernel_tcp()) {
        out.push(w("memory", "memory.kmem.tcp.limit_in_bytes", tcp));
    }
    if let Some(s) = m.swappiness() {
        if s > 100 {
            bail!("linux.resources.memory.swappiness {s} is over 100");
        }
        out.push(w("memory", "memory.swappiness", s));
    }
    if m.disable_oom_killer() == Some(true) {
        out.push(w("memory", "memory.oom_control", 1));
    }
    Ok(())
}

/// The v2 memory.swap.max for the spec's memory+swap `swap` and memory
/// `limit` (runc's conversion): swap alone, or nothing to write.
fn v2_swap(swap: Option<i64>, limit: Option<i64>) -> Result<Option<String>> {
    let value = match (swap, limit) {
        // Unlimited memory without a swap limit: unlimited swap, as on v1.
        (None, Some(l)) if l < 0 => "max".to_string(),
        (None, _) => return Ok(None),
        (Some(s), _) if s < 0 => "max".to_string(),
        (Some(s), Some(l)) if l < 0 => s.to_string(),
        (Some(_), None) => bail!("linux.resources.memory.swap needs memory.limit on cgroup v2"),
        (Some(s), Some(l)) if s < l => {
            bail!("linux.resources.memory.swap {s} is below memory.limit {l} (swap counts memory+swap)")
        }
        (Some(s), Some(l)) => (s - l).to_string(),
    };
    Ok(Some(value))
}

fn cpu(r: &LinuxResources, v2: bool, out: &mut Vec<Write>) -> Result<()> {
    let Some(c) = r.cpu() else { return Ok(()) };
    // Zero means unset, as runc reads it (docker passes zeros).
    let (quota, period) = (c.quota().filter(|q| *q != 0), c.period().filter(|p| *p != 0));
    let (rt_runtime, rt_period) = (
        c.realtime_runtime().filter(|r| *r != 0),
        c.realtime_period().filter(|p| *p != 0),
    );
    if v2 {
        // Idle first: the kernel refuses a weight for an idle cgroup.
        if let Some(idle) = idle(c.idle())? {
            out.push(w("cpu", "cpu.idle", idle));
        }
        if let Some(shares) = c.shares().filter(|s| *s > 0) {
            out.push(w("cpu", "cpu.weight", shares_to_weight(shares)));
        }
        let max = (quota.is_some() || period.is_some()).then(|| {
            let quota = quota.filter(|q| *q > 0).map_or("max".to_string(), |q| q.to_string());
            w("cpu", "cpu.max", format!("{quota} {}", period.unwrap_or(100000)))
        });
        burst_around(w("cpu", "cpu.max.burst", c.burst().unwrap_or(0)), c.burst(), max, out);
        if rt_runtime.is_some() || rt_period.is_some() {
            bail!("linux.resources.cpu.realtimeRuntime is not supported on cgroup v2");
        }
        return Ok(());
    }
    // Idle first: the kernel refuses shares for an idle cgroup.
    if let Some(idle) = idle(c.idle())? {
        out.push(w("cpu", "cpu.idle", idle));
    }
    if let Some(shares) = c.shares().filter(|s| *s > 0) {
        out.push(w("cpu", "cpu.shares", shares));
    }
    if let Some(period) = period {
        out.push(w("cpu", "cpu.cfs_period_us", period));
    }
    let quota = quota.map(|q| w("cpu", "cpu.cfs_quota_us", q.max(-1)));
    burst_around(
        w("cpu", "cpu.cfs_burst_us", c.burst().unwrap_or(0)),
        c.burst(),
        quota,
        out,
    );
    if let Some(p) = rt_period {
        out.push(w("cpu", "cpu.rt_period_us", p));
    }
    if let Some(rt) = rt_runtime {
        out.push(w("cpu", "cpu.rt_runtime_us", rt));
    }
    Ok(())
}

/// cpu.idle: the kernel knows only 0 and 1.
fn idle(idle: Option<i64>) -> Result<Option<i64>> {
    match idle {
        Some(i) if !(0..=1).contains(&i) => bail!("linux.resources.cpu.idle {i}: must be 0 or 1"),
        _ => Ok(idle),
    }
}

/// The quota write with the burst one around it: the kernel checks the burst
/// against the quota, so a burst above the old quota only fits after the new
/// quota, and a quota below the old burst only after the new burst. Like runc,
/// try the burst first, tolerate EINVAL there, and write it again after.
fn burst_around(burst: Write, wanted: Option<u64>, quota: Option<Write>, out: &mut Vec<Write>) {
    match (wanted, quota) {
        (Some(_), Some(quota)) => {
            out.push(burst.clone().tolerating(Tolerate::InvalidBeforeRetry));
            out.push(quota);
            out.push(burst);
        }
        (Some(_), None) => out.push(burst),
        (None, Some(quota)) => out.push(quota),
        (None, None) => {}
    }
}

fn block_io(r: &LinuxResources, v2: bool, out: &mut Vec<Write>) -> Result<()> {
    let Some(b) = r.block_io() else { return Ok(()) };
    let (ctrl, weight_file) = if v2 {
        ("io", "io.weight")
    } else {
        ("blkio", "blkio.weight")
    };
    if let Some(weight) = b.weight().filter(|w| *w != 0) {
        let value = if v2 {
            format!("default {}", blkio_to_io_weight(weight))
        } else {
            weight.to_string()
        };
        out.push(w(ctrl, weight_file, value));
    }
    for d in b.weight_device().iter().flatten() {
        if let Some(weight) = d.weight() {
            let weight = if v2 { blkio_to_io_weight(weight) } else { weight as u64 };
            let file = if v2 { "io.weight" } else { "blkio.weight_device" };
            out.push(w(ctrl, file, format!("{}:{} {weight}", d.major(), d.minor())));
        }
    }
    let throttles = [
        (b.throttle_read_bps_device(), "blkio.throttle.read_bps_device", "rbps"),
        (b.throttle_write_bps_device(), "blkio.throttle.write_bps_device", "wbps"),
        (
            b.throttle_read_iops_device(),
            "blkio.throttle.read_iops_device",
            "riops",
        ),
        (
            b.throttle_write_iops_device(),
            "blkio.throttle.write_iops_device",
            "wiops",
        ),
    ];
    for (list, v1_file, v2_key) in throttles {
        for d in list.iter().flatten() {
            let dev = format!("{}:{}", d.major(), d.minor());
            if v2 {
                out.push(w("io", "io.max", format!("{dev} {v2_key}={}", d.rate())));
            } else {
                out.push(w("blkio", v1_file, format!("{dev} {}", d.rate())));
            }
        }
    }
    Ok(())
}

/// A device rule as husk applies it (v1 lines, v2 eBPF).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceRule {
    pub allow: bool,
    /// 'a', 'c' or 'b'.
    pub kind: char,
    pub major: Option<i64>,
    pub minor: Option<i64>,
    /// Any of "rwm".
    pub access: String,
}

impl DeviceRule {
    pub fn v1_line(&self) -> String {
        let n = |v: Option<i64>| v.map_or("*".to_string(), |v| v.to_string());
        if self.kind == 'a' {
            return "a".to_string();
        }
        format!("{} {}:{} {}", self.kind, n(self.major), n(self.minor), self.access)
    }
}

/// Devices every container may use whatever the config says (runc's list).
pub fn default_device_rules() -> Vec<DeviceRule> {
    let c = |major, minor: Option<i64>| DeviceRule {
        allow: true,
        kind: 'c',
        major: Some(major),
        minor,
        access: "rwm".into(),
    };
    vec![
        c(1, Some(3)),    // null
        c(1, Some(5)),    // zero
        c(1, Some(7)),    // full
        c(1, Some(8)),    // random
        c(1, Some(9)),    // urandom
        c(5, Some(0)),    // tty
        c(5, Some(1)),    // console
        c(5, Some(2)),    // ptmx
        c(136, None),     // pts/*
        c(10, Some(200)), // net/tun
    ]
}

/// A device node of linux.devices: the container may use it whatever
/// linux.resources.devices says (its allow rule comes last), at create and
/// at every `update` (so it is recorded in the state).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DeviceNode {
    /// 'c' or 'b'.
    pub kind: char,
    pub major: i64,
    pub minor: i64,
}

/// The character and block devices of linux.devices.
pub fn device_nodes(devices: &[crate::rootfs::devices::DevicePlan]) -> Vec<DeviceNode> {
    let node = |d: &crate::rootfs::devices::DevicePlan| {
        let kind = match d.kind {
            libc::S_IFBLK => 'b',
            libc::S_IFCHR => 'c',
            _ => return None,
        };
        Some(DeviceNode {
            kind,
            major: d.major as i64,
            minor: d.minor as i64,
        })
    };
    devices.iter().filter_map(node).collect()
}

/// The config's rules, then the default ones, then the config's own devices.
pub fn device_rules(r: Option<&LinuxResources>, nodes: &[DeviceNode]) -> Result<Vec<DeviceRule>> {
    let mut rules = Vec::new();
    for (i, d) in r
        .and_then(|r| r.devices().as_ref())
        .iter()
        .flat_map(|v| v.iter())
        .enumerate()
    {
        rules.push(rule(i, d)?);
    }
    rules.extend(default_device_rules());
    for node in nodes {
        push_allow(
            &mut rules,
            DeviceRule {
                allow: true,
                kind: node.kind,
                major: Some(node.major),
                minor: Some(node.minor),
                access: "rwm".into(),
            },
        );
    }
    Ok(rules)
}

/// Adds an allow rule unless the same one already follows the last deny
/// (the default devices are in linux.devices too: each is a write on v1).
fn push_allow(rules: &mut Vec<DeviceRule>, rule: DeviceRule) {
    let since_deny = rules.iter().rev().take_while(|r| r.allow);
    let dup = since_deny
        .into_iter()
        .any(|r| (r.kind, r.major, r.minor, &r.access) == (rule.kind, rule.major, rule.minor, &rule.access));
    if !dup {
        rules.push(rule);
    }
}

fn rule(i: usize, d: &LinuxDeviceCgroup) -> Result<DeviceRule> {
    let kind = match d.typ() {
        None | Some(LinuxDeviceType::A) => 'a',
        Some(LinuxDeviceType::C) | Some(LinuxDeviceType::U) => 'c',
        Some(LinuxDeviceType::B) => 'b',
        Some(LinuxDeviceType::P) => bail!("linux.resources.devices[{i}].type p is not a cgroup device type"),
    };
    let access = d.access().clone().unwrap_or_else(|| "rwm".into());
    if access.is_empty() || !access.chars().all(|c| "rwm".contains(c)) {
        bail!("linux.resources.devices[{i}].access \"{access}\" is not made of r, w and m");
    }
    Ok(DeviceRule {
        allow: d.allow(),
        kind,
        major: d.major(),
        minor: d.minor(),
        access,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn res(json: &str) -> LinuxResources {
        serde_json::from_str(json).unwrap()
    }

    fn files(ws: &[Write]) -> Vec<(String, String)> {
        ws.iter().map(|w| (w.file.clone(), w.value.clone())).collect()
    }

    fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
        p.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect()
    }

    const ALL: &str = r#"{"memory":{"limit":67108864,"reservation":33554432,"swap":134217728},
        "cpu":{"shares":1024,"quota":50000,"period":100000,"cpus":"0","mems":"0"},
        "pids":{"limit":32},
        "blockIO":{"weight":500,"throttleReadBpsDevice":[{"major":8,"minor":0,"rate":1048576}]},
        "hugepageLimits":[{"pageSize":"2MB","limit":4194304}]}"#;

    #[test]
    fn v1_files() {
        let ws = writes(&res(ALL), &|_| false).unwrap();
        assert_eq!(
            files(&ws),
            pairs(&[
                ("memory.memsw.limit_in_bytes", "134217728"),
                ("memory.limit_in_bytes", "67108864"),
                ("memory.memsw.limit_in_bytes", "134217728"),
                ("memory.soft_limit_in_bytes", "33554432"),
                ("cpu.shares", "1024"),
                ("cpu.cfs_period_us", "100000"),
                ("cpu.cfs_quota_us", "50000"),
                ("cpuset.cpus", "0"),
                ("cpuset.mems", "0"),
                ("pids.max", "32"),
                ("blkio.weight", "500"),
                ("blkio.throttle.read_bps_device", "8:0 1048576"),
                ("hugetlb.2MB.limit_in_bytes", "4194304"),
            ])
        );
    }

    #[test]
    fn kernel_tcp_is_a_v1_limit_only() {
        let r = res(r#"{"memory":{"limit":67108864,"kernelTCP":16777216}}"#);
        let v1 = writes(&r, &|_| false).unwrap();
        assert_eq!(
            files(&v1),
            pairs(&[
                ("memory.limit_in_bytes", "67108864"),
                ("memory.kmem.tcp.limit_in_bytes", "16777216")
            ])
        );
        assert_eq!(
            files(&writes(&r, &|_| true).unwrap()),
            pairs(&[("memory.max", "67108864")])
        );
    }

    #[test]
    fn v2_files() {
        let ws = writes(&res(ALL), &|_| true).unwrap();
        assert_eq!(
            files(&ws),
            pairs(&[
                ("memory.swap.max", "67108864"),
                ("memory.max", "67108864"),
                ("memory.low", "33554432"),
                ("cpu.weight", "100"),
                ("cpu.max", "50000 100000"),
                ("cpuset.cpus", "0"),
                ("cpuset.mems", "0"),
                ("pids.max", "32"),
                ("io.weight", "default 4950"),
                ("io.max", "8:0 rbps=1048576"),
                ("hugetlb.2MB.max", "4194304"),
            ])
        );
    }

    #[test]
    fn hybrid_host_uses_each_controllers_own_version() {
        let ws = writes(
            &res(r#"{"pids":{"limit":-1},"hugepageLimits":[{"pageSize":"1GB","limit":0}]}"#),
            &|c| c == "hugetlb",
        )
        .unwrap();
        assert_eq!(files(&ws), pairs(&[("pids.max", "max"), ("hugetlb.1GB.max", "0")]));
    }

    #[test]
    fn unsupported_values_name_the_key() {
        let e = writes(&res(r#"{"unified":{"memory.high":"1M"}}"#), &|_| false).unwrap_err();
        assert!(
            e.message().contains("linux.resources.unified: memory.high needs"),
            "{e}"
        );
        let e = writes(&res(r#"{"memory":{"swappiness":10}}"#), &|_| true).unwrap_err();
        assert!(e.message().contains("swappiness"), "{e}");
        let e = writes(&res(r#"{"cpu":{"realtimeRuntime":1000}}"#), &|_| true).unwrap_err();
        assert!(e.message().contains("realtimeRuntime"), "{e}");
        let ws = writes(&res(r#"{"unified":{"memory.high":"1048576"}}"#), &|_| true).unwrap();
        assert_eq!(files(&ws), pairs(&[("memory.high", "1048576")]));
    }

    #[test]
    fn a_page_size_is_digits_and_a_unit_never_a_path() {
        for size in ["64KB", "2MB", "1GB", "32MB"] {
            let r = res(&format!(r#"{{"hugepageLimits":[{{"pageSize":"{size}","limit":1}}]}}"#));
            assert!(writes(&r, &|_| true).is_ok(), "{size}");
        }
        for size in [
            "x/../../../victim",
            "2MB/../pids",
            "..",
            "",
            "MB",
            "2mb",
            "2 MB",
            "2MBB",
            "-2MB",
        ] {
            let r = res(&format!(
                r#"{{"hugepageLimits":[{{"pageSize":"1GB","limit":1}},{{"pageSize":"{size}","limit":1}}]}}"#
            ));
            let e = writes(&r, &|_| false).unwrap_err();
            assert!(e.message().contains("hugepageLimits[1].pageSize"), "{size}: {e}");
        }
    }

    #[test]
    fn device_rules_and_v1_lines() {
        let r = res(
            r#"{"devices":[{"allow":false,"access":"rwm"},{"allow":true,"type":"c","major":10,"minor":229,"access":"rw"}]}"#,
        );
        let rules = device_rules(Some(&r), &[]).unwrap();
        assert_eq!(rules[0].v1_line(), "a");
        assert!(!rules[0].allow);
        assert_eq!(rules[1].v1_line(), "c 10:229 rw");
        assert!(rules.iter().any(|r| r.v1_line() == "c 136:* rwm"));
        let bad = res(r#"{"devices":[{"allow":true,"access":"rx"}]}"#);
        assert!(device_rules(Some(&bad), &[])
            .unwrap_err()
            .message()
            .contains("devices[0].access"));
    }

    #[test]
    fn zero_means_unset_as_docker_passes_it() {
        let docker = r#"{"memory":{"limit":0,"reservation":0,"swap":0},
            "cpu":{"shares":0,"quota":0,"period":0,"realtimeRuntime":0,"realtimePeriod":0,"cpus":"","mems":""},
            "pids":{"limit":0},"blockIO":{"weight":0},"network":{"classID":0}}"#;
        assert_eq!(writes(&res(docker), &|_| false).unwrap(), vec![]);
        assert_eq!(writes(&res(docker), &|c| c != "net_cls").unwrap(), vec![]);
        let unlimited = writes(&res(r#"{"cpu":{"quota":-1},"pids":{"limit":-1}}"#), &|_| false).unwrap();
        assert_eq!(
            files(&unlimited),
            pairs(&[("cpu.cfs_quota_us", "-1"), ("pids.max", "max")])
        );
    }

    #[test]
    fn burst_is_tried_before_the_quota_and_written_again_after() {
        let r = res(r#"{"cpu":{"quota":600000,"period":900000,"burst":500000}}"#);
        let ws = writes(&r, &|_| true).unwrap();
        assert_eq!(
            files(&ws),
            pairs(&[
                ("cpu.max.burst", "500000"),
                ("cpu.max", "600000 900000"),
                ("cpu.max.burst", "500000")
            ])
        );
        assert_eq!(ws[0].tolerate, Tolerate::InvalidBeforeRetry);
        assert_eq!(ws[2].tolerate, Tolerate::Nothing);
        let v1 = writes(&r, &|_| false).unwrap();
        assert_eq!(
            files(&v1),
            pairs(&[
                ("cpu.cfs_period_us", "900000"),
                ("cpu.cfs_burst_us", "500000"),
                ("cpu.cfs_quota_us", "600000"),
                ("cpu.cfs_burst_us", "500000")
            ])
        );
        let alone = writes(&res(r#"{"cpu":{"burst":0}}"#), &|_| true).unwrap();
        assert_eq!(files(&alone), pairs(&[("cpu.max.burst", "0")]));
        assert_eq!(alone[0].tolerate, Tolerate::Nothing);
    }

    #[test]
    fn idle_is_0_or_1_and_goes_before_the_weight() {
        for (v2, weight) in [(true, ("cpu.weight", "100")), (false, ("cpu.shares", "1024"))] {
            let ws = writes(&res(r#"{"cpu":{"idle":0,"shares":1024}}"#), &|_| v2).unwrap();
            assert_eq!(files(&ws), pairs(&[("cpu.idle", "0"), weight]));
            for bad in ["-1", "2"] {
                let r = res(&format!(r#"{{"cpu":{{"idle":{bad}}}}}"#));
                let e = writes(&r, &|_| v2).unwrap_err();
                assert!(e.message().contains("linux.resources.cpu.idle"), "{e}");
            }
        }
    }

    #[test]
    fn v2_swap_is_counted_as_runc_does() {
        let v2 = |json: &str| files(&writes(&res(json), &|_| true).unwrap());
        assert_eq!(
            v2(r#"{"memory":{"limit":-1}}"#),
            pairs(&[("memory.swap.max", "max"), ("memory.max", "max")])
        );
        assert_eq!(v2(r#"{"memory":{"swap":-1}}"#), pairs(&[("memory.swap.max", "max")]));
        assert_eq!(
            v2(r#"{"memory":{"limit":31457280,"swap":52428800}}"#),
            pairs(&[("memory.swap.max", "20971520"), ("memory.max", "31457280")])
        );
        assert_eq!(
            v2(r#"{"memory":{"limit":-1,"swap":52428800}}"#),
            pairs(&[("memory.swap.max", "52428800"), ("memory.max", "max")])
        );
        let unlimited = writes(&res(r#"{"memory":{"limit":-1}}"#), &|_| true).unwrap();
        assert_eq!(unlimited[0].tolerate, Tolerate::Missing);
        for bad in [r#"{"swap":1048576}"#, r#"{"limit":2097152,"swap":1048576}"#] {
            let r = res(&format!(r#"{{"memory":{bad}}}"#));
            let e = writes(&r, &|_| true).unwrap_err();
            assert!(e.message().contains("linux.resources.memory.swap"), "{e}");
        }
    }

    #[test]
    fn v1_unlimited_memory_lifts_memsw_first() {
        let ws = writes(&res(r#"{"memory":{"limit":-1}}"#), &|_| false).unwrap();
        assert_eq!(
            files(&ws),
            pairs(&[("memory.memsw.limit_in_bytes", "-1"), ("memory.limit_in_bytes", "-1")])
        );
        assert_eq!(ws[0].tolerate, Tolerate::Missing);
    }

    #[test]
    fn update_keeps_the_other_half_of_cpu_max_and_counts_swap_from_memory_max() {
        let cgroup = |_: &str, file: &str| match file {
            "cpu.max" => Some("600000 900000".to_string()),
            "memory.max" => Some("52428800".to_string()),
            _ => None,
        };
        let kept = |json: &str, v2: bool| {
            let r = keep_current(&res(json), &|_| v2, &cgroup);
            files(&writes(&r, &|_| v2).unwrap())
        };
        assert_eq!(
            kept(r#"{"cpu":{"period":100000}}"#, true),
            pairs(&[("cpu.max", "600000 100000")])
        );
        assert_eq!(
            kept(r#"{"cpu":{"quota":-1}}"#, true),
            pairs(&[("cpu.max", "max 900000")])
        );
        assert_eq!(
            kept(r#"{"cpu":{"quota":5000,"period":10000}}"#, true),
            pairs(&[("cpu.max", "5000 10000")])
        );
        assert_eq!(
            kept(r#"{"memory":{"swap":104857600}}"#, true),
            pairs(&[("memory.swap.max", "52428800"), ("memory.max", "52428800")])
        );
        // v1 keeps the values in files of their own: nothing to complete.
        assert_eq!(
            kept(r#"{"cpu":{"period":100000}}"#, false),
            pairs(&[("cpu.cfs_period_us", "100000")])
        );
        let max = |_: &str, _: &str| Some("max 100000".to_string());
        let r = keep_current(&res(r#"{"cpu":{"period":50000}}"#), &|_| true, &max);
        assert_eq!(
            files(&writes(&r, &|_| true).unwrap()),
            pairs(&[("cpu.max", "max 50000")])
        );
    }

    #[test]
    fn weights() {
        assert_eq!(shares_to_weight(2), 1);
        assert_eq!(shares_to_weight(1024), 100);
        assert_eq!(shares_to_weight(22000), 1204);
        assert_eq!(shares_to_weight(262144), 10000);
        assert_eq!(shares_to_weight(1), 1);
        assert_eq!(shares_to_weight(u64::MAX), 10000);
        assert_eq!(blkio_to_io_weight(10), 1);
        assert_eq!(blkio_to_io_weight(1000), 10000);
    }
}
