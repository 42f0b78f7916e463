//! Where `exec` puts its process: the container's cgroup as its record names
//! it, not wherever the container's init has moved itself since (as runc), or
//! with `--cgroup` a sub-cgroup of it (runc 1.2's `exec --cgroup`):
//!
//! - `--cgroup PATH` (one only): PATH below the container's cgroup, in every
//!   hierarchy (the one of a cgroup v2 host);
//! - `--cgroup CTRL[,CTRL...]:PATH`, repeatable: PATH in the hierarchy of
//!   each controller (cgroup v1), the container's cgroup in the others.
//!
//! A sub-cgroup is the caller's input, and the container itself may make
//! directories below its cgroup: PATH may not name `..`, and it is opened
//! beneath the container's cgroup directory by fd (openat2 RESOLVE_BENEATH,
//! no symlinks, no other mount), so it never leads out of it.
//!
//! Without `--cgroup`, on a cgroup v2 host, a container cgroup that refuses
//! the process (its init moved to a child cgroup and enabled a domain
//! controller: no internal processes) leaves the process in the init's
//! cgroup instead, as runc does, provided that is below the container's.

use std::io::Write;
use std::os::fd::OwnedFd;
use std::path::PathBuf;

use crate::bail;
use crate::cgroups::place::{SelfPlacement, Target};
use crate::cgroups::{hierarchy_for, is_unified, path_in, Cgroup, Hierarchy, Record};
use crate::error::{Context, Error, Result};
use crate::sys;

/// `exec --cgroup`, parsed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum SubCgroups {
    /// Not given: the container's cgroup (with the v2 fallback above).
    #[default]
    None,
    /// `--cgroup PATH`: this path below the container's cgroup everywhere
    /// ("" for the container's cgroup itself).
    All(String),
    /// `--cgroup CTRL,...:PATH`: (controller, path) pairs.
    PerController(Vec<(String, String)>),
}

impl SubCgroups {
    /// Reads the `--cgroup` arguments as runc does.
    pub fn parse(args: &[String]) -> Result<SubCgroups> {
        let mut per_controller: Vec<(String, String)> = Vec::new();
        for arg in args {
            let Some((controllers, path)) = arg.split_once(':') else {
                if args.len() != 1 {
                    bail!("exec --cgroup {arg}: give CONTROLLER:PATH when there are several --cgroup");
                }
                return Ok(SubCgroups::All(sub_path(arg, arg)?));
            };
            let path = sub_path(arg, path)?;
            for controller in controllers.split(',') {
                if controller.is_empty() {
                    bail!("exec --cgroup {arg}: a controller name is empty");
                }
                if per_controller.iter().any(|(c, _)| c == controller) {
                    bail!("exec --cgroup {arg}: controller {controller} given twice");
                }
                per_controller.push((controller.to_string(), path.clone()));
            }
        }
        Ok(match per_controller.is_empty() {
            true => SubCgroups::None,
            false => SubCgroups::PerController(per_controller),
        })
    }
}

/// A sub-cgroup path as a relative path of plain names ("" for the cgroup
/// itself): "/", "." and empty components name nothing, `..` is refused.
fn sub_path(arg: &str, path: &str) -> Result<String> {
    let names: Vec<&str> = path.split('/').filter(|c| !c.is_empty() && *c != ".").collect();
    if names.contains(&"..") {
        bail!("exec --cgroup {arg}: a sub-cgroup cannot be outside the container's cgroup (..)");
    }
    Ok(names.join("/"))
}

/// Where the exec process goes, worked out before it exists.
#[derive(Debug)]
pub enum Targets {
    /// The container has no cgroup of its own (unprivileged, not delegated):
    /// the process follows the init wherever it is.
    AsInit,
    /// In each hierarchy: the container's cgroup directory and the sub-cgroup below it.
    Below {
        dirs: Vec<(PathBuf, String)>,
        /// The container's cgroup path (for the v2 fallback).
        path: String,
        /// Which of `dirs` is the cgroup2 one (a unified or hybrid host).
        v2: Option<usize>,
        /// Whether the v2 fallback to the init's cgroup applies.
        fallback: bool,
    },
}

impl Targets {
    /// Where `sub` puts an exec process of the container whose cgroup `record` names.
    pub fn of(record: &Record, sub: &SubCgroups) -> Result<Targets> {
        let Some(path) = &record.path else {
            return match sub {
                SubCgroups::None => Ok(Targets::AsInit),
                _ => bail!("exec --cgroup: the container has no cgroup"),
            };
        };
        let cgroup = Cgroup::new(path)?;
        let hierarchies: Vec<&Hierarchy> = cgroup.dirs.iter().map(|(h, _)| h).collect();
        let mut subs = vec![String::new(); hierarchies.len()];
        match sub {
            SubCgroups::None => {}
            SubCgroups::All(p) => subs.iter_mut().for_each(|s| s.clone_from(p)),
            SubCgroups::PerController(pairs) => {
                let mut set: Vec<Option<&str>> = vec![None; hierarchies.len()];
                for (controller, p) in pairs {
                    let Some(i) = hierarchy_for(hierarchies.iter().copied(), controller) else {
                        bail!(
                            "exec --cgroup {controller}:{p}: unknown controller {controller} (no such hierarchy here)"
                        );
                    };
                    if set[i].is_some_and(|other| other != p.as_str()) {
                        bail!("exec --cgroup {controller}:{p}: its hierarchy has another sub-cgroup already");
                    }
                    set[i] = Some(p);
                    subs[i].clone_from(p);
                }
            }
        }
        let v2 = cgroup.dirs.iter().position(|(h, _)| h.v2);
        let dirs = cgroup.dirs.into_iter().map(|(_, d)| d).zip(subs).collect();
        Ok(Targets::Below {
            dirs,
            v2,
            path: path.clone(),
            fallback: *sub == SubCgroups::None && is_unified(),
        })
    }

    /// Moves `pid` where it goes; `init` is the container's init.
    pub fn join(&self, pid: libc::pid_t, init: libc::pid_t) -> Result<()> {
        let (dirs, path, fallback) = match self {
            Targets::AsInit => return crate::cgroups::join_cgroups_of(pid, init),
            Targets::Below {
                dirs, path, fallback, ..
            } => (dirs, path, *fallback),
        };
        let mut first_error = None;
        // Every hierarchy is tried: unprivileged, the caller goes on after errors.
        for (dir, sub) in dirs {
            if let Err(e) = join_below(dir, sub, pid) {
                first_error.get_or_insert(e);
            }
        }
        match first_error {
            None => Ok(()),
            Some(e) if fallback => join_init_cgroup_v2(pid, init, dirs, path).map_err(|_| e),
            Some(e) => Err(e),
        }
    }
}

impl Targets {
    /// The files through which the joiner moves itself where it goes (see
    /// `place`), on a v1 or hybrid host; None where husk moves it (a unified
    /// host, whose fallback needs the write's error, or no cgroup of its own).
    pub fn self_placement(&self) -> Result<Option<SelfPlacement>> {
        match self {
            Targets::Below { dirs, v2, .. } if !is_unified() => {
                let targets = dirs.iter().enumerate().map(|(i, (dir, sub))| Target {
                    dir,
                    sub,
                    v2: *v2 == Some(i),
                });
                SelfPlacement::open(&crate::sys::cgroup_root::CgroupRoot::open(), targets).map(Some)
            }
            _ => Ok(None),
        }
    }
}

/// Writes `pid` into `DIR/SUB/cgroup.procs`, with SUB resolved beneath DIR.
fn join_below(dir: &std::path::Path, sub: &str, pid: libc::pid_t) -> Result<()> {
    let shown = match sub {
        "" => dir.to_path_buf(),
        sub => dir.join(sub),
    };
    let context = || format!("join cgroup {}", shown.display());
    let base: OwnedFd = sys::openat(
        libc::AT_FDCWD,
        &sys::cstring(dir)?,
        libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC,
        0,
    )
    .context(context)?;
    let procs = match sub {
        "" => "cgroup.procs".to_string(),
        sub => format!("{sub}/cgroup.procs"),
    };
    let file = sys::resolve::openat2_beneath(&base, &sys::cstring(&procs)?, libc::O_WRONLY).context(context)?;
    std::fs::File::from(file)
        .write_all(pid.to_string().as_bytes())
        .context(context)
}

/// The v2 fallback: `pid` into the init's cgroup, if that is below the
/// container's cgroup `path` (whose directory is the one of `dirs`).
fn join_init_cgroup_v2(pid: libc::pid_t, init: libc::pid_t, dirs: &[(PathBuf, String)], path: &str) -> Result<()> {
    let [(dir, _)] = dirs else {
        bail!("not a cgroup v2 host");
    };
    let theirs =
        crate::sys::fs::read_proc(format!("/proc/{init}/cgroup")).context(|| format!("read /proc/{init}/cgroup"))?;
    let v2 = Hierarchy {
        name: String::new(),
        mountpoint: PathBuf::new(),
        controllers: String::new(),
        v2: true,
    };
    let init_path = path_in(&theirs, &v2).ok_or_else(|| Error::new("the init has no cgroup v2 path"))?;
    let Some(sub) = below(&init_path, path) else {
        bail!("the init's cgroup {init_path} is not below the container's {path}");
    };
    join_below(dir, &sub_path(sub, sub)?, pid)
}

/// `path` relative to the cgroup `top` when it is strictly below it.
fn below<'a>(path: &'a str, top: &str) -> Option<&'a str> {
    let rest = path.strip_prefix(top.trim_end_matches('/'))?;
    rest.strip_prefix('/').filter(|r| !r.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<SubCgroups> {
        SubCgroups::parse(&args.iter().map(|a| a.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn arguments_as_runc_reads_them() {
        assert_eq!(parse(&[]).unwrap(), SubCgroups::None);
        assert_eq!(parse(&["sub"]).unwrap(), SubCgroups::All("sub".into()));
        assert_eq!(parse(&["/"]).unwrap(), SubCgroups::All("".into()));
        assert_eq!(parse(&[""]).unwrap(), SubCgroups::All("".into()));
        assert_eq!(parse(&["//a/./b/"]).unwrap(), SubCgroups::All("a/b".into()));
        assert_eq!(
            parse(&["memory:submem", "cpu,cpuacct:/subcpu"]).unwrap(),
            SubCgroups::PerController(vec![
                ("memory".into(), "submem".into()),
                ("cpu".into(), "subcpu".into()),
                ("cpuacct".into(), "subcpu".into()),
            ])
        );
        assert_eq!(
            parse(&["name=systemd:/"]).unwrap(),
            SubCgroups::PerController(vec![("name=systemd".into(), "".into())])
        );
    }

    #[test]
    fn bad_arguments_are_refused() {
        for (args, why) in [
            (&[".."][..], "exec --cgroup ..: a sub-cgroup cannot be outside"),
            (&["a/../../b"], "cannot be outside"),
            (&["cpu:.."], "exec --cgroup cpu:..: a sub-cgroup cannot be outside"),
            (&["a", "b"], "exec --cgroup a: give CONTROLLER:PATH"),
            (&[":x"], "a controller name is empty"),
            (&["cpu,:x"], "a controller name is empty"),
            (
                &["cpu:a", "cpu,memory:b"],
                "exec --cgroup cpu,memory:b: controller cpu given twice",
            ),
        ] {
            let e = parse(args).unwrap_err();
            assert!(
                e.message().starts_with(why) || e.message().contains(why),
                "{args:?}: {e}"
            );
        }
    }

    #[test]
    fn the_fallback_stays_below_the_containers_cgroup() {
        assert_eq!(below("/husk/c/foobar", "/husk/c"), Some("foobar"));
        assert_eq!(below("/husk/c/a/b", "/husk/c/"), Some("a/b"));
        assert_eq!(below("/husk/c", "/husk/c"), None);
        assert_eq!(below("/husk/c/", "/husk/c"), None);
        assert_eq!(below("/husk/cc/x", "/husk/c"), None);
        assert_eq!(below("/other", "/husk/c"), None);
    }

    #[test]
    fn targets_follow_the_record() {
        let none = Record::default();
        assert!(matches!(
            Targets::of(&none, &SubCgroups::None).unwrap(),
            Targets::AsInit
        ));
        let e = Targets::of(&none, &SubCgroups::All("x".into())).unwrap_err();
        assert_eq!(e.message(), "exec --cgroup: the container has no cgroup");

        // This host's hierarchies, whatever they are.
        let record = Record {
            path: Some("/husk-unit-test/c".into()),
            ..Default::default()
        };
        let Targets::Below { dirs, .. } = Targets::of(&record, &SubCgroups::All("s".into())).unwrap() else {
            panic!("a cgroup was recorded")
        };
        assert!(
            dirs.iter().all(|(d, s)| d.ends_with("husk-unit-test/c") && s == "s"),
            "{dirs:?}"
        );
        let e = Targets::of(&record, &SubCgroups::PerController(vec![("waaaaat".into(), "".into())])).unwrap_err();
        assert!(e.message().contains("unknown controller waaaaat"), "{e}");
    }
}
