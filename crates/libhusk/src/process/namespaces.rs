//! `linux.namespaces`: which namespaces the container gets new (clone flags) and
//! which it joins by path (files opened and type-checked at validation, entered in
//! the child; a pid namespace is entered by the parent, since it only applies to
//! children).

use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;

use oci_spec::runtime::{LinuxNamespace, LinuxNamespaceType};

use crate::bail;
use crate::error::{Context, Result};
use crate::sys;

pub struct Join {
    pub flag: i32,
    pub path: PathBuf,
    pub fd: OwnedFd,
}

#[derive(Default)]
pub struct NamespacePlan {
    /// CLONE_NEW* flags of the namespaces created for the container.
    pub new: u64,
    /// Namespaces joined by path, user first (it grants the rights to enter the rest).
    pub joins: Vec<Join>,
    /// The init builds the container outside the pid namespace it joins and
    /// starts the container's process there after pivot_root: a process of
    /// that namespace never sees it with the host's root or husk's fds.
    pub pid_joined_late: bool,
    /// With `pid_joined_late` on a kernel whose procfs lacks the pidns option
    /// (and no new user namespace): the container's process mounts its /proc
    /// once it is in the namespace.
    pub proc_after_join: bool,
}

pub fn clone_flag(t: LinuxNamespaceType) -> i32 {
    match t {
        LinuxNamespaceType::Mount => libc::CLONE_NEWNS,
        LinuxNamespaceType::Cgroup => libc::CLONE_NEWCGROUP,
        LinuxNamespaceType::Uts => libc::CLONE_NEWUTS,
        LinuxNamespaceType::Ipc => libc::CLONE_NEWIPC,
        LinuxNamespaceType::User => libc::CLONE_NEWUSER,
        LinuxNamespaceType::Pid => libc::CLONE_NEWPID,
        LinuxNamespaceType::Network => libc::CLONE_NEWNET,
        LinuxNamespaceType::Time => libc::CLONE_NEWTIME,
    }
}

fn spec_name(t: LinuxNamespaceType) -> &'static str {
    match t {
        LinuxNamespaceType::Mount => "mount",
        LinuxNamespaceType::Cgroup => "cgroup",
        LinuxNamespaceType::Uts => "uts",
        LinuxNamespaceType::Ipc => "ipc",
        LinuxNamespaceType::User => "user",
        LinuxNamespaceType::Pid => "pid",
        LinuxNamespaceType::Network => "network",
        LinuxNamespaceType::Time => "time",
    }
}

impl NamespacePlan {
    pub fn from_spec(list: &[LinuxNamespace]) -> Result<NamespacePlan> {
        let mut plan = NamespacePlan::default();
        let mut seen = 0i64;
        for (i, ns) in list.iter().enumerate() {
            let flag = clone_flag(ns.typ());
            let name = spec_name(ns.typ());
            if seen & flag as i64 != 0 {
                bail!("linux.namespaces[{i}]: the {name} namespace is listed twice");
            }
            seen |= flag as i64;
            match ns.path() {
                None => plan.new |= flag as u64,
                Some(path) => plan.joins.push(open_namespace(i, name, flag, path)?),
            }
        }
        plan.pid_joined_late = plan.joined(libc::CLONE_NEWPID).is_some();
        // A member with a user namespace of its own can mount no procfs of
        // the pod's pid namespace, from inside or out: it is born confined
        // (review 61b F2: it waited through a host procfs it had closed).
        let proc_inside = plan.pid_joined_late && !plan.is_new(libc::CLONE_NEWUSER);
        plan.proc_after_join = proc_inside && !plan.procfs_takes_pidns();
        Ok(plan)
    }

    pub fn has(&self, flag: i32) -> bool {
        self.new & flag as u64 != 0 || self.joins.iter().any(|j| j.flag == flag)
    }

    pub fn is_new(&self, flag: i32) -> bool {
        self.new & flag as u64 != 0
    }

    /// Flags for clone3. A new time namespace is made with unshare in the parent
    /// instead, so that offsets can be written before the child enters it; a new
    /// cgroup namespace by the init once it is in its cgroup, so that the
    /// namespace is rooted there; a new network namespace by the init first
    /// thing (`unshare_in_init`).
    pub fn clone_flags(&self) -> u64 {
        match self.userns_after_pid() {
            true => 0,
            false => self.made_at_clone(),
        }
    }

    fn made_at_clone(&self) -> u64 {
        self.new & !((libc::CLONE_NEWTIME | libc::CLONE_NEWCGROUP | libc::CLONE_NEWNET) as u64)
    }

    /// A joined pid namespace and a new user namespace, which would have no
    /// right to enter the pid namespace (it belongs to an ancestor): the init
    /// joins it (for its children) first, with husk's rights, then makes its
    /// user namespace and the rest that clone makes otherwise (`join_pid_then_unshare`).
    /// Cloned into that pid namespace instead, the init was seen there with the
    /// host's root and its copies of husk's fds, which a process that may ptrace
    /// it took (review 61 F1).
    pub fn userns_after_pid(&self) -> bool {
        self.pid_joined_late && self.is_new(libc::CLONE_NEWUSER)
    }

    /// In the init, first thing, for `userns_after_pid`: the pid namespace for
    /// our children and those of [`NamespacePlan::joined_before_userns`],
    /// then our user namespace and the others of the clone. Whether it did.
    pub fn join_pid_then_unshare(&self) -> Result<bool> {
        let Some(pid) = self.joined(libc::CLONE_NEWPID).filter(|_| self.userns_after_pid()) else {
            return Ok(false);
        };
        enter(pid)?;
        self.joined_before_userns().try_for_each(enter)?;
        let flags = nix::sched::CloneFlags::from_bits_retain(self.made_at_clone() as i32);
        nix::sched::unshare(flags).context(|| "create the user namespace and the namespaces it owns".into())?;
        Ok(true)
    }

    /// In the init, before anything else: the new network namespace. Its
    /// making is the longest part of a clone (~0.6 ms); made here, it runs
    /// while `create` makes the cgroup instead of before. The init is already
    /// in the user namespace it will have (created by the clone or joined by
    /// the parent before it), so that namespace owns the new one, as it
    /// would at the clone.
    pub fn unshare_in_init(&self) -> Result<()> {
        if self.is_new(libc::CLONE_NEWNET) {
            nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET).context(|| "create network namespace".into())?;
        }
        Ok(())
    }

    /// The namespace of type `flag` that husk itself or the host (pid 1) is
    /// in, when the container would share it: none listed, or one joined by a
    /// path that leads back to husk's own or pid 1's (/proc/self/ns/net,
    /// /proc/1/ns/net). A write there (sysctl, hostname, mounts) would change
    /// the host.
    pub fn shared_with_caller(&self, flag: i32) -> Result<Option<Shared>> {
        if self.is_new(flag) {
            return Ok(None);
        }
        let Some(join) = self.joined(flag) else {
            return Ok(Some(Shared::Unlisted));
        };
        let own = format!("/proc/self/ns/{}", proc_name(flag));
        let own = std::fs::metadata(&own).context(|| format!("stat {own}"))?;
        // pid 1's too: husk may run in private namespaces of its own (a
        // systemd unit's PrivateTmp=, unshare) while the config names the host's.
        let host = std::fs::metadata(format!("/proc/1/ns/{}", proc_name(flag))).ok();
        let joined = nix::sys::stat::fstat(&join.fd).context(|| format!("stat {}", join.path.display()))?;
        let is = |m: &std::fs::Metadata| joined.st_dev == m.dev() && joined.st_ino == m.ino();
        let same = is(&own) || host.as_ref().is_some_and(is);
        Ok(same.then(|| Shared::Joined(join.path.clone())))
    }

    /// The path of the namespace of type `flag` joined by path, if any.
    pub fn joined_path(&self, flag: i32) -> Option<&std::path::Path> {
        self.joined(flag).map(|j| j.path.as_path())
    }

    /// The namespace of type `flag` joined by path, open.
    pub fn joined_fd(&self, flag: i32) -> Option<std::os::fd::BorrowedFd<'_>> {
        self.joined(flag).map(|j| std::os::fd::AsFd::as_fd(&j.fd))
    }

    fn joined(&self, flag: i32) -> Option<&Join> {
        self.joins.iter().find(|j| j.flag == flag)
    }

    /// In the parent, before the clone: the joined user and pid namespaces, which
    /// must own (user) or contain (pid) what the clone creates. Root enters the pid
    /// namespace first, while it still has every right on the host; an
    /// unprivileged caller gets its rights on that namespace from the user one.
    /// With `before_userns` (root's `exec`), the namespaces of
    /// [`NamespacePlan::joined_before_userns`] are entered before the user one.
    pub fn enter_before_clone(&self, privileged: bool, before_userns: bool) -> Result<()> {
        let order = if privileged {
            [libc::CLONE_NEWPID, libc::CLONE_NEWUSER]
        } else {
            [libc::CLONE_NEWUSER, libc::CLONE_NEWPID]
        };
        let late = |f: i32| f == libc::CLONE_NEWPID && self.pid_joined_late;
        for join in order.iter().filter(|&&f| !late(f)).filter_map(|&f| self.joined(f)) {
            if join.flag == libc::CLONE_NEWUSER && before_userns {
                self.joined_before_userns().try_for_each(enter)?;
            }
            enter(join)?;
        }
        Ok(())
    }

    /// In the child: enter every other joined namespace; with
    /// `before_userns`, those of [`NamespacePlan::joined_before_userns`] were.
    pub fn enter_joined(&self, before_userns: bool) -> Result<()> {
        let by_parent = |f: i32| f == libc::CLONE_NEWPID || f == libc::CLONE_NEWUSER;
        let early = |f: i32| before_userns && BEFORE_USERNS.contains(&f);
        self.joins
            .iter()
            .filter(|j| !by_parent(j.flag) && !early(j.flag))
            .try_for_each(enter)
    }

    /// The namespaces joined by path that root enters before the container's
    /// user namespace (made or joined): they may belong to an ancestor of it
    /// (the host's network namespace of `ip netns`, a pod's made by root),
    /// where that user namespace has no right and husk has (review 61b F3;
    /// runc joins every path first). Not the mount namespace: husk's own
    /// paths must not change under it, and a new user namespace could mount
    /// nothing there.
    pub fn joined_before_userns(&self) -> impl Iterator<Item = &Join> {
        self.joins.iter().filter(|j| BEFORE_USERNS.contains(&j.flag))
    }
}

const BEFORE_USERNS: [i32; 5] = [
    libc::CLONE_NEWNET,
    libc::CLONE_NEWIPC,
    libc::CLONE_NEWUTS,
    libc::CLONE_NEWCGROUP,
    libc::CLONE_NEWTIME,
];

fn enter(join: &Join) -> Result<()> {
    sys::setns(join.fd.as_raw_fd(), join.flag).context(|| format!("join namespace {}", join.path.display()))
}

/// husk's own namespaces of the kinds it entered for a clone to be born in
/// ([`NamespacePlan::joined_before_userns`], for a new user namespace),
/// returned to once the clone is made.
pub struct EnteredForClone {
    own: Vec<(i32, OwnedFd)>,
}

impl EnteredForClone {
    pub fn enter(plan: &NamespacePlan) -> Result<EnteredForClone> {
        let mut own = Vec::new();
        for join in plan.joined_before_userns() {
            // Time: the namespace of our children, which setns changes.
            let name = match join.flag {
                libc::CLONE_NEWTIME => "time_for_children",
                flag => proc_name(flag),
            };
            let path = sys::cstring(format!("/proc/self/ns/{name}"))?;
            let fd = sys::openat(libc::AT_FDCWD, &path, libc::O_RDONLY | libc::O_CLOEXEC, 0)
                .context(|| format!("open /proc/self/ns/{name}"))?;
            own.push((join.flag, fd));
        }
        let entered = EnteredForClone { own };
        if let Err(e) = plan.joined_before_userns().try_for_each(enter) {
            // Those joined so far must not stay husk's for its error path.
            let _ = entered.leave();
            return Err(e);
        }
        Ok(entered)
    }

    /// In husk, after the clone: every one it can, the first failure the error.
    pub fn leave(self) -> Result<()> {
        let mut result = Ok(());
        for (flag, fd) in &self.own {
            let back = sys::setns(fd.as_raw_fd(), *flag)
                .context(|| format!("return to husk's {} namespace", proc_name(*flag)));
            result = result.and(back);
        }
        result
    }
}

impl NamespacePlan {
    /// Whether procfs takes the pidns option (Linux 6.15). HUSK_NO_PROCFS_PIDNS=1
    /// makes husk act as on an older kernel, for the tests of that path. An
    /// unprivileged husk may not ask procfs (the init, in its user namespace,
    /// may): the kernel's release answers then.
    fn procfs_takes_pidns(&self) -> bool {
        let pretend_old = std::env::var_os("HUSK_NO_PROCFS_PIDNS").is_some_and(|v| v == "1");
        !pretend_old
            && self
                .joined(libc::CLONE_NEWPID)
                .is_some_and(|pid| sys::procfs_takes_pidns(&pid.fd).unwrap_or_else(|| sys::kernel_at_least(6, 15)))
    }

    /// The joined pid namespace, when the init mounts /proc for it from outside.
    pub fn pidns_for_proc_mounts(&self) -> Option<&Join> {
        self.late_pid_namespace().filter(|_| !self.proc_after_join)
    }

    /// Whether the init is cloned into a joined pid namespace, where its
    /// processes see it from its birth.
    /// The joined pid namespace, for the init that joins it late.
    pub fn late_pid_namespace(&self) -> Option<&Join> {
        self.joined(libc::CLONE_NEWPID).filter(|_| self.pid_joined_late)
    }
}

/// A new time namespace with `offsets` (the lines of /proc/PID/timens_offsets)
/// for this process's children; with `enter`, this process enters it too.
/// The namespace belongs to this process's user namespace, in which the
/// process needs CAP_SYS_ADMIN, and it must still be dumpable to write its
/// own timens_offsets as a user namespace's root.
pub fn new_time_namespace(offsets: &str, enter: bool) -> Result<()> {
    nix::sched::unshare(nix::sched::CloneFlags::from_bits_retain(libc::CLONE_NEWTIME))
        .context(|| "create time namespace".into())?;
    if !offsets.is_empty() {
        // Only possible before any process has entered the new namespace.
        std::fs::write("/proc/self/timens_offsets", offsets).context(|| "write linux.timeOffsets".into())?;
    }
    if enter {
        let path = c"/proc/self/ns/time_for_children";
        let ns =
            sys::openat(libc::AT_FDCWD, path, libc::O_RDONLY, 0).context(|| "open the new time namespace".into())?;
        sys::setns(ns.as_raw_fd(), libc::CLONE_NEWTIME).context(|| "enter the new time namespace".into())?;
    }
    Ok(())
}

/// How a container would share one of husk's own namespaces.
#[derive(Debug, PartialEq, Eq)]
pub enum Shared {
    /// The namespace is not in linux.namespaces at all.
    Unlisted,
    /// Joined by this path, which is husk's own namespace or pid 1's.
    Joined(PathBuf),
}

/// The name of a namespace type in /proc/PID/ns.
fn proc_name(flag: i32) -> &'static str {
    match flag {
        libc::CLONE_NEWNS => "mnt",
        libc::CLONE_NEWCGROUP => "cgroup",
        libc::CLONE_NEWUTS => "uts",
        libc::CLONE_NEWIPC => "ipc",
        libc::CLONE_NEWUSER => "user",
        libc::CLONE_NEWPID => "pid",
        libc::CLONE_NEWNET => "net",
        _ => "time",
    }
}

fn open_namespace(i: usize, name: &str, flag: i32, path: &std::path::Path) -> Result<Join> {
    let fd: OwnedFd = std::fs::File::open(path)
        .context(|| format!("linux.namespaces[{i}].path {}", path.display()))?
        .into();
    let actual = sys::namespace_type(&fd)
        .context(|| format!("linux.namespaces[{i}].path {} is not a namespace", path.display()))?;
    if actual != flag {
        bail!(
            "linux.namespaces[{i}].path {} is not a {name} namespace",
            path.display()
        );
    }
    Ok(Join {
        flag,
        path: path.to_path_buf(),
        fd,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(json: &str) -> Result<NamespacePlan> {
        let list: Vec<LinuxNamespace> = serde_json::from_str(json).unwrap();
        NamespacePlan::from_spec(&list)
    }

    #[test]
    fn new_namespaces_become_clone_flags_but_time_cgroup_and_network() {
        let p =
            plan(r#"[{"type":"pid"},{"type":"mount"},{"type":"network"},{"type":"time"},{"type":"cgroup"}]"#).unwrap();
        for flag in [
            libc::CLONE_NEWPID,
            libc::CLONE_NEWNS,
            libc::CLONE_NEWNET,
            libc::CLONE_NEWTIME,
            libc::CLONE_NEWCGROUP,
        ] {
            assert!(p.is_new(flag) && p.has(flag), "{flag:#x}");
        }
        assert!(!p.has(libc::CLONE_NEWUSER) && !p.has(libc::CLONE_NEWUTS));
        // Time: unshared by the parent; cgroup: by the init once in its
        // cgroup; network: by the init first thing.
        let want = (libc::CLONE_NEWPID | libc::CLONE_NEWNS) as u64;
        assert_eq!(p.clone_flags(), want);
        assert!(p.joins.is_empty() && !p.pid_joined_late);
    }

    #[test]
    fn a_namespace_listed_twice_is_an_error() {
        let e = plan(r#"[{"type":"ipc"},{"type":"uts"},{"type":"ipc","path":"/proc/self/ns/ipc"}]"#)
            .err()
            .expect("refused");
        assert_eq!(e.message(), "linux.namespaces[2]: the ipc namespace is listed twice");
    }

    #[test]
    fn joined_paths_are_opened_and_type_checked() {
        let p = plan(r#"[{"type":"uts","path":"/proc/self/ns/uts"},{"type":"mount"}]"#).unwrap();
        assert_eq!(p.joins.len(), 1);
        assert_eq!(p.joins[0].flag, libc::CLONE_NEWUTS);
        assert!(p.has(libc::CLONE_NEWUTS) && !p.is_new(libc::CLONE_NEWUTS));
        assert_eq!(p.clone_flags(), libc::CLONE_NEWNS as u64);

        let e = plan(r#"[{"type":"network","path":"/proc/self/ns/uts"}]"#)
            .err()
            .expect("refused");
        assert_eq!(
            e.message(),
            "linux.namespaces[0].path /proc/self/ns/uts is not a network namespace"
        );
        let e = plan(r#"[{"type":"ipc","path":"/proc/self/status"}]"#)
            .err()
            .expect("refused");
        assert!(
            e.message()
                .starts_with("linux.namespaces[0].path /proc/self/status is not a namespace: "),
            "{e}"
        );
        let e = plan(r#"[{"type":"ipc","path":"/no/such/ns"}]"#).err().expect("refused");
        assert!(e.message().starts_with("linux.namespaces[0].path /no/such/ns: "), "{e}");
    }

    #[test]
    fn namespaces_shared_with_husk_are_found() {
        let p = plan(r#"[{"type":"uts","path":"/proc/self/ns/uts"},{"type":"ipc"}]"#).unwrap();
        assert_eq!(
            p.shared_with_caller(libc::CLONE_NEWUTS).unwrap(),
            Some(Shared::Joined(PathBuf::from("/proc/self/ns/uts")))
        );
        assert_eq!(p.shared_with_caller(libc::CLONE_NEWIPC).unwrap(), None);
        assert_eq!(
            p.shared_with_caller(libc::CLONE_NEWNET).unwrap(),
            Some(Shared::Unlisted)
        );
    }

    #[test]
    fn a_joined_pid_namespace_is_entered_late_and_before_a_new_user_namespace() {
        let late = plan(r#"[{"type":"pid","path":"/proc/self/ns/pid"},{"type":"mount"}]"#).unwrap();
        assert!(late.pid_joined_late && !late.userns_after_pid());
        assert_eq!(late.late_pid_namespace().map(|j| j.flag), Some(libc::CLONE_NEWPID));
        assert_eq!(late.clone_flags(), libc::CLONE_NEWNS as u64);

        let with_userns =
            plan(r#"[{"type":"pid","path":"/proc/self/ns/pid"},{"type":"user"},{"type":"mount"},{"type":"network"}]"#)
                .unwrap();
        assert!(with_userns.pid_joined_late && with_userns.userns_after_pid());
        // The init makes them all, once in the pid namespace.
        assert_eq!(with_userns.clone_flags(), 0);
    }
}
