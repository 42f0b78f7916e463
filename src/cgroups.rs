//! Cgroup hierarchies of this host as /proc/self/mountinfo shows them, and
//! moving a process into the cgroups of another (for `exec`).

use std::path::{Path, PathBuf};

use crate::error::{Context, Result};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hierarchy {
    /// The directory name under /sys/fs/cgroup: `memory`, `cpu,cpuacct`, `unified`.
    pub name: String,
    pub mountpoint: PathBuf,
    /// Mount data naming the hierarchy: `memory`, `name=systemd`; empty for cgroup2.
    pub controllers: String,
    pub v2: bool,
}

/// The cgroup hierarchies mounted under /sys/fs/cgroup (or cgroup2 on it).
pub fn hierarchies() -> Result<Vec<Hierarchy>> {
    let info = std::fs::read_to_string("/proc/self/mountinfo").context(|| "read /proc/self/mountinfo".into())?;
    let known = std::fs::read_to_string("/proc/cgroups").unwrap_or_default();
    Ok(parse_mountinfo(&info, &known))
}

fn parse_mountinfo(info: &str, known: &str) -> Vec<Hierarchy> {
    let is_controller = |o: &str| o.starts_with("name=") || known.lines().any(|l| l.split('\t').next() == Some(o));
    let mut out = Vec::new();
    for line in info.lines() {
        let Some((pre, post)) = line.split_once(" - ") else {
            continue;
        };
        let mountpoint = pre.split(' ').nth(4).unwrap_or("");
        let mut post = post.split(' ');
        let fstype = post.next().unwrap_or("");
        let options = post.nth(1).unwrap_or("");
        if fstype != "cgroup" && fstype != "cgroup2" {
            continue;
        }
        let name = match mountpoint.strip_prefix("/sys/fs/cgroup") {
            Some("") => String::new(),
            Some(rest) if rest.starts_with('/') && !rest[1..].contains('/') => rest[1..].to_string(),
            _ => continue,
        };
        let controllers: Vec<&str> = options.split(',').filter(|o| is_controller(o)).collect();
        out.push(Hierarchy {
            name,
            mountpoint: PathBuf::from(mountpoint),
            controllers: controllers.join(","),
            v2: fstype == "cgroup2",
        });
    }
    out
}

/// A process's path in hierarchy `h`, from its /proc/PID/cgroup text.
pub fn path_in(proc_cgroup: &str, h: &Hierarchy) -> Option<String> {
    proc_cgroup.lines().find_map(|line| {
        let mut parts = line.splitn(3, ':');
        let (_, ctrls, path) = (parts.next()?, parts.next()?, parts.next()?);
        let same = if h.v2 {
            ctrls.is_empty()
        } else {
            let mut a: Vec<&str> = ctrls.split(',').collect();
            let mut b: Vec<&str> = h.controllers.split(',').collect();
            a.sort_unstable();
            b.sort_unstable();
            !ctrls.is_empty() && a == b
        };
        same.then(|| path.to_string())
    })
}

/// Moves `pid` into every cgroup that `of` is in.
pub fn join_cgroups_of(pid: libc::pid_t, of: libc::pid_t) -> Result<()> {
    let theirs = std::fs::read_to_string(format!("/proc/{of}/cgroup")).context(|| format!("read /proc/{of}/cgroup"))?;
    let ours = std::fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
    for h in hierarchies()? {
        let Some(path) = path_in(&theirs, &h) else { continue };
        if path_in(&ours, &h).as_deref() == Some(path.as_str()) {
            continue;
        }
        let procs = h.mountpoint.join(path.trim_start_matches('/')).join("cgroup.procs");
        std::fs::write(&procs, pid.to_string()).context(|| format!("join cgroup {}", display(&procs)))?;
    }
    Ok(())
}

fn display(p: &Path) -> String {
    p.display().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    const INFO: &str = "31 23 0:28 / /sys/fs/cgroup rw - tmpfs tmpfs rw,mode=755\n\
        32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct\n\
        35 31 0:32 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n\
        40 31 0:37 / /sys/fs/cgroup/systemd rw - cgroup cgroup rw,xattr,name=systemd\n\
        41 31 0:38 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw,nsdelegate\n\
        50 27 0:40 / /mnt/other rw - cgroup cgroup rw,pids\n";
    const KNOWN: &str = "#subsys_name\thierarchy\nfoo\ncpu\t1\ncpuacct\t2\nmemory\t3\npids\t4\n";

    #[test]
    fn hybrid_mountinfo() {
        let hs = parse_mountinfo(INFO, KNOWN);
        let names: Vec<(&str, &str, bool)> = hs
            .iter()
            .map(|h| (h.name.as_str(), h.controllers.as_str(), h.v2))
            .collect();
        assert_eq!(
            names,
            [
                ("cpu,cpuacct", "cpu,cpuacct", false),
                ("memory", "memory", false),
                ("systemd", "name=systemd", false),
                ("unified", "", true)
            ]
        );
    }

    #[test]
    fn unified_mountinfo() {
        let hs = parse_mountinfo("30 23 0:26 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n", KNOWN);
        assert_eq!(hs.len(), 1);
        assert!(hs[0].v2 && hs[0].name.is_empty());
    }

    #[test]
    fn paths_match_hierarchies() {
        let hs = parse_mountinfo(INFO, KNOWN);
        let own = "9:name=systemd:/a\n4:cpuacct,cpu:/b\n3:memory:/c/d\n0::/e\n";
        let got: Vec<Option<String>> = hs.iter().map(|h| path_in(own, h)).collect();
        assert_eq!(
            got,
            [
                Some("/b".into()),
                Some("/c/d".into()),
                Some("/a".into()),
                Some("/e".into())
            ]
        );
    }
}
