//! `linux.uidMappings` / `linux.gidMappings` of a new user namespace.
//!
//! Root writes /proc/PID/{uid,gid}_map itself. An unprivileged caller writes a
//! mapping of just its own uid and gid directly (after denying setgroups); any
//! wider mapping goes through the setuid helpers newuidmap and newgidmap, which
//! check /etc/subuid and /etc/subgid. That check is also made here first, at
//! validation, so an unentitled mapping fails before anything is created.

use std::path::Path;
use std::process::Command;

use oci_spec::runtime::LinuxIdMapping;

use crate::bail;
use crate::error::{Context, Error, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdRange {
    pub container: u32,
    pub host: u32,
    pub size: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Writer {
    /// Write the map files directly (root, or an unprivileged self-mapping).
    Direct { deny_setgroups: bool },
    /// newuidmap / newgidmap.
    Helpers,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsernsPlan {
    pub uids: Vec<IdRange>,
    pub gids: Vec<IdRange>,
    pub writer: Writer,
}

pub fn ranges(field: &str, list: &[LinuxIdMapping]) -> Result<Vec<IdRange>> {
    if list.is_empty() {
        bail!("{field} are required for a new user namespace");
    }
    let mut out: Vec<IdRange> = Vec::new();
    for (i, m) in list.iter().enumerate() {
        let r = IdRange {
            container: m.container_id(),
            host: m.host_id(),
            size: m.size(),
        };
        if r.size == 0 {
            bail!("{field}[{i}].size must not be 0");
        }
        let overlaps = |a: u32, b: u32, c: u32, d: u32| a < d && c < b;
        for o in &out {
            if overlaps(
                r.container,
                r.container.saturating_add(r.size),
                o.container,
                o.container.saturating_add(o.size),
            ) {
                bail!("{field}[{i}] overlaps another mapping inside the container");
            }
        }
        out.push(r);
    }
    Ok(out)
}

/// A subordinate id file (/etc/subuid, /etc/subgid): `name-or-id:start:count` lines.
pub fn subordinate_ranges(text: &str, name: &str, id: u32) -> Vec<(u64, u64)> {
    text.lines()
        .filter_map(|l| {
            let mut parts = l.trim().split(':');
            let (who, start, count) = (parts.next()?, parts.next()?, parts.next()?);
            let me = who == name || who.parse::<u32>().ok() == Some(id);
            me.then(|| Some((start.parse().ok()?, count.parse().ok()?)))?
        })
        .collect()
}

/// Every host range must be the caller's own id, or inside its subordinate ranges.
fn check_entitled(field: &str, ranges: &[IdRange], own: u32, subs: &[(u64, u64)], file: &str) -> Result<()> {
    for (i, r) in ranges.iter().enumerate() {
        let (lo, hi) = (r.host as u64, r.host as u64 + r.size as u64);
        let own_id = r.size == 1 && r.host == own;
        let delegated = subs.iter().any(|&(start, count)| lo >= start && hi <= start + count);
        if !own_id && !delegated {
            bail!("{field}[{i}]: host ids {lo}-{} are not yours: they are neither your id {own} nor in your {file} ranges", hi - 1);
        }
    }
    Ok(())
}

pub fn plan(uid_list: &[LinuxIdMapping], gid_list: &[LinuxIdMapping], euid: u32, egid: u32) -> Result<UsernsPlan> {
    let uids = ranges("linux.uidMappings", uid_list)?;
    let gids = ranges("linux.gidMappings", gid_list)?;
    if euid == 0 {
        return Ok(UsernsPlan {
            uids,
            gids,
            writer: Writer::Direct { deny_setgroups: false },
        });
    }
    let self_only = |r: &[IdRange], own: u32| r.len() == 1 && r[0].size == 1 && r[0].host == own;
    if self_only(&uids, euid) && self_only(&gids, egid) {
        return Ok(UsernsPlan {
            uids,
            gids,
            writer: Writer::Direct { deny_setgroups: true },
        });
    }
    let name = user_name(euid).unwrap_or_default();
    let subuid = std::fs::read_to_string("/etc/subuid").unwrap_or_default();
    let subgid = std::fs::read_to_string("/etc/subgid").unwrap_or_default();
    check_entitled(
        "linux.uidMappings",
        &uids,
        euid,
        &subordinate_ranges(&subuid, &name, euid),
        "/etc/subuid",
    )?;
    check_entitled(
        "linux.gidMappings",
        &gids,
        egid,
        &subordinate_ranges(&subgid, &name, egid),
        "/etc/subgid",
    )?;
    for helper in ["newuidmap", "newgidmap"] {
        if which(helper).is_none() {
            bail!("{helper} not found: install Debian's uidmap package for mappings wider than your own id");
        }
    }
    Ok(UsernsPlan {
        uids,
        gids,
        writer: Writer::Helpers,
    })
}

/// The name of `uid` in /etc/passwd (read directly: no NSS in a static binary).
pub fn user_name(uid: u32) -> Option<String> {
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|l| {
        let mut f = l.split(':');
        let name = f.next()?;
        (f.nth(1)?.parse::<u32>().ok()? == uid).then(|| name.to_string())
    })
}

fn which(prog: &str) -> Option<std::path::PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_else(|| "/usr/sbin:/usr/bin:/sbin:/bin".into());
    std::env::split_paths(&path).map(|d| d.join(prog)).find(|p| p.is_file())
}

fn map_text(ranges: &[IdRange]) -> String {
    ranges
        .iter()
        .map(|r| format!("{} {} {}\n", r.container, r.host, r.size))
        .collect()
}

/// Writes the maps of the (still waiting) process `pid`.
pub fn write_maps(pid: libc::pid_t, plan: &UsernsPlan) -> Result<()> {
    match plan.writer {
        Writer::Direct { deny_setgroups } => {
            let proc = Path::new("/proc").join(pid.to_string());
            if deny_setgroups {
                std::fs::write(proc.join("setgroups"), "deny").context(|| "deny setgroups".into())?;
            }
            std::fs::write(proc.join("uid_map"), map_text(&plan.uids)).context(|| "write uid_map".into())?;
            std::fs::write(proc.join("gid_map"), map_text(&plan.gids)).context(|| "write gid_map".into())
        }
        Writer::Helpers => {
            run_helper("newuidmap", pid, &plan.uids)?;
            run_helper("newgidmap", pid, &plan.gids)
        }
    }
}

/// A user namespace with these mappings, for an idmapped mount (root only). A
/// child that only waits holds it while the maps are written and it is opened.
pub fn idmap_userns(uids: &[IdRange], gids: &[IdRange]) -> Result<std::os::fd::OwnedFd> {
    // SAFETY: single-threaded; the child only waits to be killed.
    #[allow(unsafe_code)]
    let pid = unsafe { crate::sys::clone_process(libc::CLONE_NEWUSER as u64) }.context(|| "clone for idmap".into())?;
    if pid == 0 {
        loop {
            nix::unistd::pause();
        }
    }
    let plan = UsernsPlan {
        uids: uids.to_vec(),
        gids: gids.to_vec(),
        writer: Writer::Direct { deny_setgroups: false },
    };
    let result = write_maps(pid, &plan).and_then(|()| {
        let fd = std::fs::File::open(format!("/proc/{pid}/ns/user")).context(|| "open idmap user namespace".into())?;
        Ok(std::os::fd::OwnedFd::from(fd))
    });
    // Killing and reaping our own child.
    let child = nix::unistd::Pid::from_raw(pid);
    let _ = nix::sys::signal::kill(child, nix::sys::signal::Signal::SIGKILL);
    let _ = nix::sys::wait::waitpid(child, None);
    result
}

fn run_helper(helper: &str, pid: libc::pid_t, ranges: &[IdRange]) -> Result<()> {
    let mut cmd = Command::new(helper);
    cmd.arg(pid.to_string());
    // A foreground run has every signal it forwards blocked.
    crate::sys::signal::empty_signal_mask(&mut cmd);
    for r in ranges {
        cmd.args([r.container.to_string(), r.host.to_string(), r.size.to_string()]);
    }
    let out = cmd.output().context(|| format!("run {helper}"))?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        return Err(Error::new(format!("{helper} failed: {}", err.trim())));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn maps(json: &str) -> Vec<LinuxIdMapping> {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn user_names_come_from_etc_passwd() {
        assert_eq!(user_name(0).as_deref(), Some("root"));
        assert_eq!(user_name(4_000_000_000), None);
    }

    #[test]
    fn subordinate_files() {
        let text = "alice:100000:65536\n1001:200000:1000\nbob:300000:10\n";
        assert_eq!(subordinate_ranges(text, "alice", 1000), [(100000, 65536)]);
        assert_eq!(subordinate_ranges(text, "carol", 1001), [(200000, 1000)]);
        assert!(subordinate_ranges(text, "dave", 5).is_empty());
    }

    #[test]
    fn root_and_self_mappings_are_written_directly() {
        let own = maps(r#"[{"containerID":0,"hostID":1000,"size":1}]"#);
        let own_g = maps(r#"[{"containerID":0,"hostID":1001,"size":1}]"#);
        assert_eq!(
            plan(&own, &own_g, 1000, 1001).unwrap().writer,
            Writer::Direct { deny_setgroups: true }
        );
        let wide = maps(r#"[{"containerID":0,"hostID":100000,"size":65536}]"#);
        assert_eq!(
            plan(&wide, &wide, 0, 0).unwrap().writer,
            Writer::Direct { deny_setgroups: false }
        );
    }

    #[test]
    fn unentitled_ranges_are_named() {
        let subs = [(100000u64, 65536u64)];
        let ok = ranges(
            "m",
            &maps(r#"[{"containerID":0,"hostID":1000,"size":1},{"containerID":1,"hostID":100000,"size":65536}]"#),
        )
        .unwrap();
        check_entitled("m", &ok, 1000, &subs, "/etc/subuid").unwrap();
        let bad = ranges(
            "m",
            &maps(r#"[{"containerID":0,"hostID":1000,"size":1},{"containerID":1,"hostID":5000,"size":10}]"#),
        )
        .unwrap();
        let e = check_entitled("m", &bad, 1000, &subs, "/etc/subuid").unwrap_err();
        assert!(e.message().starts_with("m[1]: host ids 5000-5009 are not yours"), "{e}");
    }

    #[test]
    fn empty_zero_and_overlapping_mappings() {
        assert!(ranges("m", &[]).unwrap_err().message().contains("required"));
        assert!(ranges("m", &maps(r#"[{"containerID":0,"hostID":1,"size":0}]"#))
            .unwrap_err()
            .message()
            .contains("size"));
        let e = ranges(
            "m",
            &maps(r#"[{"containerID":0,"hostID":1,"size":10},{"containerID":5,"hostID":100,"size":1}]"#),
        )
        .unwrap_err();
        assert!(e.message().contains("overlaps"), "{e}");
    }
}
