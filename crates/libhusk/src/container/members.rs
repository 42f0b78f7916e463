//! Which processes are the container's, where its cgroup may hold others: a
//! cgroup husk did not make (a linux.cgroupsPath that existed), whose owner's
//! processes `pause`, `kill --all` and `delete` must leave alone; or where
//! nothing holds them: no cgroup (rootless on cgroup v1) and no pid
//! namespace of its own.

use std::os::fd::OwnedFd;

use crate::state::Saved;

/// The inode of the pid namespace of `pid`; `None` when it cannot be read.
pub(super) fn pid_namespace_of(pid: libc::pid_t) -> Option<u64> {
    namespace_inode(&open_namespace(pid, "pid")?)
}

/// Whether `pid` is in husk's own pid namespace (false when it cannot be read).
pub(super) fn shares_our_pid_namespace(pid: libc::pid_t) -> bool {
    let own = pid_namespace_of(std::process::id() as libc::pid_t);
    own.is_some() && pid_namespace_of(pid) == own
}

/// `/proc/PID/ns/NAME`.
fn open_namespace(pid: libc::pid_t, name: &str) -> Option<OwnedFd> {
    let path = std::ffi::CString::new(format!("/proc/{pid}/ns/{name}")).ok()?;
    crate::sys::openat(libc::AT_FDCWD, &path, libc::O_RDONLY, 0).ok()
}

fn namespace_inode(fd: &OwnedFd) -> Option<u64> {
    nix::sys::stat::fstat(fd).ok().map(|st| st.st_ino)
}

/// Whether `pid`'s pid namespace `name` (`pid`, or `pid_for_children`) is
/// `ns` or a namespace below it (a container may make its own); `None` when
/// it cannot be read.
pub(super) fn in_pid_namespace_or_below(pid: libc::pid_t, ns: u64, name: &str) -> Option<bool> {
    let mut fd = open_namespace(pid, name)?;
    loop {
        if namespace_inode(&fd)? == ns {
            return Some(true);
        }
        match crate::sys::namespace_parent(&fd) {
            Ok(parent) => fd = parent,
            Err(_) => return Some(false),
        }
    }
}

/// Whether `pid` is `ancestor` or one of its descendants (by parent pids,
/// a bounded walk: the chain is read one process at a time).
pub(super) fn descends_from(pid: libc::pid_t, ancestor: libc::pid_t) -> bool {
    let mut p = pid;
    for _ in 0..4096 {
        if p == ancestor {
            return true;
        }
        match crate::sys::process_stat(p) {
            Some(stat) if stat.ppid > 1 => p = stat.ppid,
            _ => return false,
        }
    }
    false
}

/// The id of `pid`'s mount namespace that no other namespace ever gets
/// (Linux 6.8); `None` when it cannot be read (an older kernel, a process
/// gone or not ours to look at).
pub(super) fn mount_namespace_of(pid: libc::pid_t) -> Option<u64> {
    let ns = open_namespace(pid, "mnt").or_else(|| open_a_threads_namespace(pid, "mnt"))?;
    crate::sys::mount_namespace_id(&ns).ok()
}

/// `/proc/PID/task/TID/ns/NAME` of the first thread whose is there: a
/// process whose main thread has exited (the others run on) has none of its
/// own to show (review 47b F3).
fn open_a_threads_namespace(pid: libc::pid_t, name: &str) -> Option<OwnedFd> {
    std::fs::read_dir(format!("/proc/{pid}/task")).ok()?.find_map(|task| {
        let path = std::ffi::CString::new(format!(
            "/proc/{pid}/task/{}/ns/{name}",
            task.ok()?.file_name().to_str()?
        ))
        .ok()?;
        crate::sys::openat(libc::AT_FDCWD, &path, libc::O_RDONLY, 0).ok()
    })
}

/// What `create` records of a container in a cgroup it did not make, or in
/// no cgroup and no pid namespace of its own: the id of the mount namespace
/// it made (`born_in`, see [`init_mount_namespace`]). Without a pid
/// namespace of its own, the processes it leaves (a daemon, reparented away
/// from its init; what `exec` started) are told from the cgroup owner's, or
/// found at all, by it. Not in a cgroup husk made (all of it is the
/// container's), nor with a pid namespace and no cgroup (its processes die
/// with its init).
pub(super) fn mount_namespace_to_record(saved: &Saved, born_in: Option<u64>, new_pid_namespace: bool) -> Option<u64> {
    let foreign_cgroup = saved.cgroup.path.is_some() && !saved.cgroup.owns();
    let nothing_holds_it = saved.cgroup.path.is_none() && !new_pid_namespace;
    born_in.filter(|_| foreign_cgroup || nothing_holds_it)
}

/// The id of the mount namespace the init `pid` was cloned into, where
/// `create` may record it (see [`mount_namespace_to_record`]; not with a
/// cgroup husk makes and a pid namespace): read at once, for an
/// unprivileged husk may read it only until the init takes its ids in its
/// user namespace. None for a mount namespace joined (not its own).
pub(super) fn init_mount_namespace(
    saved: &Saved,
    pid: libc::pid_t,
    new_mount_namespace: bool,
    new_pid_namespace: bool,
) -> Option<u64> {
    let may_record = !saved.cgroup.owns() || !new_pid_namespace;
    match may_record && new_mount_namespace {
        true => mount_namespace_of(pid),
        false => None,
    }
}

/// Whether `pid` is in the mount namespace the container made (when its
/// state recorded one). A process of the container that made a mount
/// namespace of its own is not found so.
pub(super) fn in_containers_mount_namespace(saved: &Saved, pid: libc::pid_t) -> bool {
    saved
        .mount_namespace
        .is_some_and(|id| mount_namespace_of(pid) == Some(id))
}

/// The processes of `pids` (the container's cgroup, one husk did not make;
/// or every process) in the mount namespace the container made, each as a
/// pidfd opened before its namespace was read (a pid reused meanwhile is
/// not signalled).
pub(super) fn left_in_mount_namespace(saved: &Saved, pids: &[libc::pid_t]) -> Vec<OwnedFd> {
    let mut found = Vec::new();
    for &pid in pids {
        let Ok(pidfd) = crate::sys::pidfd_open(pid) else {
            continue;
        };
        // Alive after the read: the pid was this process's throughout.
        if in_containers_mount_namespace(saved, pid) && crate::sys::pidfd_send_signal(&pidfd, 0).is_ok() {
            found.push(pidfd);
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mount_namespace_is_recorded_where_no_cgroup_of_husks_holds_the_container() {
        let record = |path: Option<&str>, existed: &[&str], new_pid_namespace| {
            let mut saved = Saved::unrecorded("t");
            saved.cgroup.path = path.map(String::from);
            saved.cgroup.existed = existed.iter().map(std::path::PathBuf::from).collect();
            mount_namespace_to_record(&saved, Some(7), new_pid_namespace)
        };
        assert_eq!(record(Some("/husk/t"), &[], false), None, "husk's cgroup");
        assert_eq!(record(Some("/theirs"), &["/sys/fs/cgroup/pids/theirs"], true), Some(7));
        assert_eq!(record(None, &[], false), Some(7), "no cgroup, no pid namespace");
        assert_eq!(record(None, &[], true), None, "no cgroup, a pid namespace");
    }

    #[test]
    fn the_mount_namespace_of_a_process_whose_main_thread_exited_is_read_from_another_thread() {
        // The main thread exits by exit(2), not exit_group: a thread sleeps on.
        let script = "import ctypes, threading, time; threading.Thread(target=time.sleep, args=(30,)).start(); ctypes.CDLL(None).syscall(60, 0)";
        let mut child = std::process::Command::new("python3")
            .args(["-c", script])
            .spawn()
            .unwrap();
        let pid = child.id() as libc::pid_t;
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        let zombie_leader = || crate::sys::process_stat(pid).is_some_and(|s| s.state == b'Z');
        while !zombie_leader() && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        let (leader, found) = (zombie_leader(), mount_namespace_of(pid));
        let _ = child.kill();
        let _ = child.wait();
        assert!(leader, "the main thread did not exit alone");
        if crate::sys::kernel_at_least(6, 8) {
            assert_eq!(found, mount_namespace_of(std::process::id() as libc::pid_t));
        }
    }

    #[test]
    fn a_mount_namespace_id_is_its_own() {
        let mut other = crate::test_support::in_new_mount_namespace();
        let me = std::process::id() as libc::pid_t;
        let ids = [me, me, other.id() as libc::pid_t].map(mount_namespace_of);
        let _ = other.kill();
        let _ = other.wait();
        if !crate::sys::kernel_at_least(6, 8) {
            return assert_eq!(ids, [None; 3]);
        }
        assert!(ids[0].is_some());
        assert_eq!(ids[0], ids[1]);
        assert_ne!(ids[0], ids[2]);
    }
}
