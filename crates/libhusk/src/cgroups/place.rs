//! A process that moves itself into its cgroup: the init and exec's joiner
//! on a cgroup v1 or hybrid host, as husk's clones.
//!
//! Why: moving another process (its pid into `cgroup.procs`) takes the
//! kernel's global cgroup_threadgroup_rwsem for writing, and the first writer
//! after a quiet spell waits for a full RCU grace period (6-10 ms measured on a
//! 2-core host, most of a container's start). A thread that moves itself
//! through a v1 `tasks` file ("0": the calling thread) needs no such lock
//! (cgroup_procs_write_start), ~30 us per hierarchy; the clones are
//! single-threaded, so their one thread is the whole process. The cgroup2
//! directory of a hybrid host has no such file for processes: the clone
//! starts there instead (CLONE_INTO_CGROUP takes the lock only for reading).
//!
//! husk opens the files, so the kernel checks husk's rights (a v1 write is
//! checked against the opener's credentials). Usually it opens them before
//! the clone, which writes them first thing, before it joins anything of the
//! container's. On a pure v1 host (no cgroup2 directory to clone into) the
//! init instead starts on its namespaces and mounts while husk makes the
//! cgroup, and gets the files over the create channel (SCM_RIGHTS keeps the
//! opener's credentials): it writes them before anything the cgroup governs
//! can matter, i.e. before a cgroup mount, the hooks, and Ready (see
//! `Driver::places_after_clone`); until then only husk's own code runs in it.

use std::fs::File;
use std::io::Write;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use crate::error::{Context, Result};
use crate::sys;
use crate::sys::cgroup_root::CgroupRoot;

/// One directory the process goes into: `dir/sub`, `sub` resolved beneath
/// `dir` (the container's cgroup, `sub` an `exec --cgroup` below it).
pub struct Target<'a> {
    pub dir: &'a Path,
    pub sub: &'a str,
    pub v2: bool,
}

/// The open files through which a clone moves itself into its cgroup.
#[derive(Debug)]
pub struct SelfPlacement {
    /// Each v1 hierarchy's `tasks` file, with the directory for errors.
    tasks: Vec<(PathBuf, File)>,
    v2: Option<V2Dir>,
    /// In the clone: whether it started in the cgroup2 directory.
    started_in_v2: bool,
}

#[derive(Debug)]
struct V2Dir {
    shown: PathBuf,
    /// The directory, for CLONE_INTO_CGROUP.
    dir: OwnedFd,
    /// Its `cgroup.procs`, where the clone goes when clone3 is filtered.
    procs: File,
}

impl SelfPlacement {
    /// Opens the files of `targets`; an error names the directory.
    pub fn open<'a>(cg: &CgroupRoot, targets: impl IntoIterator<Item = Target<'a>>) -> Result<SelfPlacement> {
        let mut placement = SelfPlacement {
            tasks: Vec::new(),
            v2: None,
            started_in_v2: false,
        };
        for t in targets {
            let shown = match t.sub {
                "" => t.dir.to_path_buf(),
                sub => t.dir.join(sub),
            };
            let context = || format!("join cgroup {}", shown.display());
            if t.sub.is_empty() && !t.v2 {
                // The container's own directory (husk's path): one open.
                let tasks = cg.open_file(&t.dir.join("tasks"), libc::O_WRONLY | libc::O_NOFOLLOW);
                let tasks = tasks.context(context)?;
                placement.tasks.push((shown, tasks));
                continue;
            }
            let base = OwnedFd::from(cg.open_file(t.dir, libc::O_PATH | libc::O_DIRECTORY).context(context)?);
            let open = |name: &str, flags: i32| -> Result<OwnedFd> {
                let path = match (t.sub, name) {
                    ("", "") => ".".to_string(),
                    ("", name) => name.to_string(),
                    (sub, "") => sub.to_string(),
                    (sub, name) => format!("{sub}/{name}"),
                };
                sys::resolve::openat2_beneath(&base, &sys::cstring(&path)?, flags | libc::O_CLOEXEC).context(context)
            };
            if t.v2 {
                let dir = open("", libc::O_RDONLY | libc::O_DIRECTORY)?;
                let procs = File::from(open("cgroup.procs", libc::O_WRONLY)?);
                placement.v2 = Some(V2Dir { shown, dir, procs });
            } else {
                let tasks = File::from(open("tasks", libc::O_WRONLY)?);
                placement.tasks.push((shown, tasks));
            }
        }
        Ok(placement)
    }

    /// Clones with `flags` (as [`sys::clone_process`]), the child starting in
    /// the cgroup2 directory when there is one. Returns 0 in the child.
    ///
    /// # Safety
    /// As [`sys::clone_process`]: the caller must be single-threaded.
    #[allow(unsafe_code)]
    pub unsafe fn clone_process(&mut self, flags: u64) -> std::io::Result<libc::pid_t> {
        let Some(v2) = &self.v2 else {
            return sys::clone_process(flags);
        };
        // Set before each clone, so that the child's copy says how it began.
        self.started_in_v2 = true;
        match sys::clone_into(flags, Some(v2.dir.as_raw_fd())) {
            // clone3 filtered (husk inside a container): the child writes.
            Err(e) if e.raw_os_error() == Some(libc::ENOSYS) => {
                self.started_in_v2 = false;
                sys::clone_process(flags)
            }
            cloned => cloned,
        }
    }

    /// Clones with `flags` (as [`sys::clone_process`]): through `placement`
    /// when there is one, else into the cgroup2 directory `into` when given.
    ///
    /// # Safety
    /// As [`sys::clone_process`]: the caller must be single-threaded.
    #[allow(unsafe_code)]
    pub unsafe fn clone_with(
        placement: Option<&mut SelfPlacement>,
        flags: u64,
        into: Option<std::os::fd::RawFd>,
    ) -> std::io::Result<libc::pid_t> {
        match placement {
            Some(p) => p.clone_process(flags),
            None => sys::clone_into(flags, into),
        }
    }

    /// The v1 `tasks` files, to hand to a clone that moves itself later
    /// (`Driver::places_after_clone`: there is no cgroup2 directory then).
    pub fn into_tasks(self) -> Result<Vec<(PathBuf, File)>> {
        match self.v2 {
            None => Ok(self.tasks),
            Some(v2) => Err(crate::error::Error::new(format!(
                "join cgroup {}: a cgroup2 directory cannot be joined after the clone",
                v2.shown.display()
            ))),
        }
    }

    /// The placement of `tasks` files handed over by `into_tasks`.
    pub fn from_tasks(tasks: Vec<(PathBuf, File)>) -> SelfPlacement {
        SelfPlacement {
            tasks,
            v2: None,
            started_in_v2: false,
        }
    }

    /// In the clone: moves its one thread into every hierarchy, then closes
    /// the files.
    pub fn enter(self) -> Result<()> {
        for (shown, mut tasks) in self.tasks {
            tasks
                .write_all(b"0")
                .context(|| format!("join cgroup {}", shown.display()))?;
        }
        let started_in_v2 = self.started_in_v2;
        if let Some(mut v2) = self.v2.filter(|_| !started_in_v2) {
            v2.procs
                .write_all(b"0")
                .context(|| format!("join cgroup {}", v2.shown.display()))?;
        }
        Ok(())
    }
}
