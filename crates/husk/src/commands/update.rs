//! `update`: the new limits from --resources and the flags, applied by the library.

use oci_spec::runtime::LinuxResources;
use serde_json::{json, Value};

use libhusk::error::{Context, Error, Result};

use super::Runtime;
use crate::cli::UpdateArgs;

pub fn update(rt: &Runtime, a: &UpdateArgs) -> Result<()> {
    libhusk::container::control::update(&rt.store, &a.id, &requested(a)?)
}

/// "64m", "1g", "1024", "-1" (unlimited) as bytes.
fn bytes(flag: &str, s: &str) -> Result<i64> {
    let bad = || Error::new(format!("{flag} {s}: not a size such as 64m"));
    if s == "-1" {
        return Ok(-1);
    }
    let lower = s.to_ascii_lowercase();
    let trimmed = lower.trim_end_matches('b');
    let (num, mult) = match trimmed.chars().last() {
        Some('k') => (&trimmed[..trimmed.len() - 1], 1i64 << 10),
        Some('m') => (&trimmed[..trimmed.len() - 1], 1 << 20),
        Some('g') => (&trimmed[..trimmed.len() - 1], 1 << 30),
        Some('t') => (&trimmed[..trimmed.len() - 1], 1 << 40),
        _ => (trimmed, 1),
    };
    let n: i64 = num.parse().map_err(|_| bad())?;
    // Only "-1" means unlimited: any other negative size is a mistake.
    if n < 0 {
        return Err(bad());
    }
    n.checked_mul(mult)
        .ok_or_else(|| Error::new(format!("{flag} {s}: too large")))
}

/// The resources `update` asks for: --resources (a file or - for stdin), then flags.
fn requested(a: &UpdateArgs) -> Result<LinuxResources> {
    let mut r: Value = match a.resources.as_deref() {
        None => json!({}),
        Some(src) => {
            let text = match src {
                // Taken as it is (a pipe or a socket): never reopened by path.
                "-" => libhusk::spec::read_json_from(std::io::stdin().lock(), 0),
                file => libhusk::spec::read_json(std::path::Path::new(file)),
            }
            .context(|| format!("--resources {src}"))?;
            serde_json::from_str(&text).context(|| format!("--resources {src}"))?
        }
    };
    let mut set = |section: &str, key: &str, v: Value| {
        if !r[section].is_object() {
            r[section] = json!({});
        }
        r[section][key] = v;
    };
    if let Some(m) = &a.memory {
        set("memory", "limit", json!(bytes("--memory", m)?));
    }
    if let Some(m) = &a.memory_swap {
        set("memory", "swap", json!(bytes("--memory-swap", m)?));
    }
    if let Some(m) = &a.memory_reservation {
        set("memory", "reservation", json!(bytes("--memory-reservation", m)?));
    }
    let cpu = [
        ("quota", a.cpu_quota.map(Value::from)),
        ("realtimeRuntime", a.cpu_rt_runtime.map(Value::from)),
        ("period", a.cpu_period.map(Value::from)),
        ("shares", a.cpu_share.map(Value::from)),
        ("burst", a.cpu_burst.map(Value::from)),
        ("realtimePeriod", a.cpu_rt_period.map(Value::from)),
    ];
    for (key, v) in cpu {
        if let Some(v) = v {
            set("cpu", key, v);
        }
    }
    if let Some(idle) = a.cpu_idle {
        if !(0..=1).contains(&idle) {
            return Err(Error::new(format!("--cpu-idle {idle}: must be 0 or 1")));
        }
        set("cpu", "idle", json!(idle));
    }
    if let Some(c) = &a.cpuset_cpus {
        set("cpu", "cpus", json!(c));
    }
    if let Some(m) = &a.cpuset_mems {
        set("cpu", "mems", json!(m));
    }
    if let Some(p) = a.pids_limit {
        set("pids", "limit", json!(p));
    }
    if let Some(w) = a.blkio_weight {
        set("blockIO", "weight", json!(w));
    }
    // A pids limit of 0 means no new process at all to `update`, not "unset"
    // as in a config: runc writes 1 (systemd refuses 0, the kernel counts the
    // same either way).
    if r["pids"]["limit"] == json!(0) {
        r["pids"]["limit"] = json!(1);
    }
    libhusk::spec::strict::from_value(r).map_err(|e| Error::new(format!("update: {}: {}", e.path(), e.inner())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{Cli, Command};
    use clap::Parser;

    fn args(flags: &[&str]) -> UpdateArgs {
        let argv = ["husk", "update"].iter().chain(flags).chain(&["c"]).copied();
        match Cli::try_parse_from(argv).unwrap().command {
            Some(Command::Update(u)) => u,
            _ => panic!("not update"),
        }
    }

    #[test]
    fn flags_as_runc_takes_them() {
        let r = requested(&args(&[
            "--cpu-burst",
            "500000",
            "--cpu-idle",
            "1",
            "--pids-limit",
            "0",
        ]))
        .unwrap();
        let cpu = r.cpu().clone().unwrap();
        assert_eq!((cpu.burst(), cpu.idle()), (Some(500000), Some(1)));
        assert_eq!(r.pids().as_ref().unwrap().limit(), 1);
        let r = requested(&args(&["--pids-limit", "-1", "--memory-swap", "-1"])).unwrap();
        assert_eq!(r.pids().as_ref().unwrap().limit(), -1);
        assert_eq!(r.memory().as_ref().unwrap().swap(), Some(-1));
        let e = requested(&args(&["--cpu-idle", "2"])).unwrap_err();
        assert_eq!(e.message(), "--cpu-idle 2: must be 0 or 1");
        let e = requested(&args(&["--memory", "-5m"])).unwrap_err();
        assert!(e.message().starts_with("--memory -5m:"), "{e}");
    }

    #[test]
    fn sizes() {
        assert_eq!(bytes("f", "64m").unwrap(), 64 << 20);
        assert_eq!(bytes("f", "1G").unwrap(), 1 << 30);
        assert_eq!(bytes("f", "512kb").unwrap(), 512 << 10);
        assert_eq!(bytes("f", "-1").unwrap(), -1);
        assert!(bytes("f", "lots").is_err());
    }
}
