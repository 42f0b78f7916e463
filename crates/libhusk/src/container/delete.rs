//! `kill` and `delete`: signals, and removing a container and what it made.

use std::os::fd::AsFd;
use std::time::Duration;

use super::{members, open_init};
use crate::bail;
use crate::error::{Context, Error, ErrorKind, Result};
use crate::state::{FreezeLock, Locked, Saved, Status, Store};
use crate::{log, sys};

/// How long `delete` waits for a killed init to exit.
const KILL_TIMEOUT: Duration = Duration::from_secs(10);

/// The poststop hooks, once the container is gone; failures are warnings.
fn poststop(saved: &Saved) {
    if let Some(hooks) = saved.hooks.as_ref().and_then(|h| h.poststop().as_ref()) {
        crate::hooks::run_all_warn("poststop", hooks, &saved.hook_state("stopped"));
        log::step("poststop hooks run");
    }
}

/// Sends `sig` (a signal number; 0 only checks the init is there) to the
/// container's init, or with `all` to every process of its cgroup (when
/// husk did not make that cgroup, or there is none and no pid namespace of
/// its own, those of the mount namespace the container made, or only the
/// init).
pub fn kill(store: &Store, id: &str, sig: i32, all: bool) -> Result<()> {
    let saved = store.load(id)?;
    let has_cgroup = saved.cgroup.path.is_some();
    if all && has_cgroup && saved.cgroup.owns() {
        // Also once the init is gone, as runc: what it left in the cgroup
        // (processes outside its pid namespace) is still the container's, and
        // containerd's shim kills a shared-pid container's leftovers so.
        return signal_all_in_turn(&store.dir(id), &saved, sig);
    }
    if all && saved.mount_namespace.is_some() {
        // The init too, which may have made a mount namespace of its own
        // (review 46b F2).
        if let Ok(pidfd) = open_init(&saved) {
            let _ = sys::pidfd_send_signal(&pidfd, sig);
        }
        signal_left(&saved, sig, None)?;
        return thaw_if_killed(&saved, sig);
    }
    let pidfd = open_init(&saved)?;
    if all && has_cgroup {
        log::warn(&format!(
            "kill --all: the cgroup {} was there before the container: only its init is signalled",
            saved.cgroup.path.as_deref().unwrap_or_default()
        ));
    }
    if all && !has_cgroup && members::shares_our_pid_namespace(saved.pid) {
        // Nothing to find the others by (a kernel before 6.8 records no
        // mount namespace id).
        log::warn(&format!(
            "kill --all: container \"{id}\" has no cgroup and no pid namespace of its own: only its init is signalled"
        ));
    }
    sys::pidfd_send_signal(&pidfd, sig).map_err(|e| {
        if e.raw_os_error() == Some(libc::ESRCH) {
            Error::not_running(id).with_errno(libc::ESRCH)
        } else {
            Error::new(format!("kill container \"{id}\": {e}"))
        }
    })?;
    thaw_if_killed(&saved, sig)
}

/// [`signal_all`] in the container's freeze turn (see [`FreezeLock`]): a
/// freeze of its own is marked while it lasts, so that the next status
/// undoes it should this command die before its thaw; a paused container
/// is left paused (but for SIGKILL).
fn signal_all_in_turn(dir: &std::path::Path, saved: &Saved, sig: i32) -> Result<()> {
    let Some(freezer) = saved.cgroup.freezer.as_deref().filter(|_| sig != 0) else {
        return signal_all(saved, sig);
    };
    let mut turn = match FreezeLock::take_undoing_left(dir, freezer) {
        Ok(turn) => turn,
        // A signal must get through (containerd's shim stops a container
        // with `kill --all KILL`), but a freeze without the turn could undo
        // a pause, or be left by a kill killed in it with no mark
        // (review 56d F1).
        Err(e) => {
            log::warn(&format!("kill --all: {e}: signalling without freezing"));
            return signal_all_unfrozen(saved, sig);
        }
    };
    let frozen = || crate::cgroups::is_frozen_file(freezer);
    if let Some(turn) = turn.as_mut().filter(|_| !frozen()) {
        turn.mark();
    }
    let signalled = signal_all(saved, sig);
    // A thaw that failed stays marked: the next status tries it again.
    if let Some(turn) = turn.as_mut().filter(|_| !frozen()) {
        turn.unmark();
    }
    signalled
}

/// `sig` to every process of the container's cgroup without freezing it
/// first (a fork meanwhile may escape it); with SIGKILL, a frozen cgroup
/// (v1) is thawed, and the sub-cgroups the container froze, as their
/// processes die only then (review 56e F1).
fn signal_all_unfrozen(saved: &Saved, sig: i32) -> Result<()> {
    let cgroup = crate::cgroups::driver::for_record(&saved.cgroup)?;
    for pid in cgroup.pids()? {
        // A process that is gone already is fine.
        let _ = sys::signal::kill(pid, sig);
    }
    thaw_if_killed(saved, sig)?;
    let v1_freezer = saved.cgroup.freezer.as_deref().filter(|f| f.ends_with("freezer.state"));
    if let Some(dir) = v1_freezer
        .filter(|_| sig == libc::SIGKILL)
        .and_then(std::path::Path::parent)
    {
        crate::cgroups::thaw_below(dir, &|_| true)?;
    }
    Ok(())
}

/// A frozen init (cgroup v1) dies only once thawed: as runc, a paused
/// container killed is thawed, or it would stay paused until `resume`.
fn thaw_if_killed(saved: &Saved, sig: i32) -> Result<()> {
    if sig == libc::SIGKILL && is_frozen(saved) {
        crate::cgroups::driver::for_record(&saved.cgroup)?.freeze(false)?;
    }
    Ok(())
}

/// `sig` to the processes of the container's cgroup (one husk did not make),
/// or with no cgroup to every process, in the mount namespace the container
/// made; how many there were.
fn signal_left(saved: &Saved, sig: i32, hierarchies: Option<&[crate::cgroups::Hierarchy]>) -> Result<usize> {
    let pids = match saved.cgroup.path {
        None => sys::process::all_pids().context(|| "list processes".into())?,
        Some(_) => match crate::cgroups::driver::for_record_in(&saved.cgroup, hierarchies)?.pids() {
            Err(e) if e.errno() == Some(libc::ENOENT) => return Ok(0),
            other => other?,
        },
    };
    let left = members::left_in_mount_namespace(saved, &pids);
    for pidfd in &left {
        if let Err(e) = sys::pidfd_send_signal(pidfd, sig) {
            log::debug(&format!("signal a process the container left: {e}"));
        }
    }
    Ok(left.len())
}

/// In a cgroup husk did not make, or in none, what the container leaves
/// (with no pid namespace of its own, a daemon that its init's end does not
/// take) is killed: the processes of the mount namespace it made, thawed
/// where a sub-cgroup it froze holds them. Again until none is left, for at
/// most the kill's timeout (then a warning).
fn kill_what_it_left(saved: &Saved, hierarchies: Option<&[crate::cgroups::Hierarchy]>) -> Result<()> {
    // Recorded only where no cgroup of husk's holds them all.
    if saved.mount_namespace.is_none() {
        return Ok(());
    }
    let deadline = std::time::Instant::now() + KILL_TIMEOUT;
    let freezer = saved.cgroup.freezer.as_deref().filter(|f| f.ends_with("freezer.state"));
    loop {
        let left = signal_left(saved, libc::SIGKILL, hierarchies)?;
        if left == 0 {
            return Ok(());
        }
        log::debug(&format!("killed {left} processes the container left in its cgroup"));
        if std::time::Instant::now() >= deadline {
            // Killed, they die once thawed (a cgroup its owner froze): not
            // a reason to keep a container that has ended.
            let place = match saved.cgroup.path.as_deref() {
                Some(path) => format!(" in the cgroup {path}"),
                None => String::new(),
            };
            log::warn(&format!(
                "container \"{}\": {left} processes it left{place} were killed but have not exited within {:?} (frozen?)",
                saved.id, KILL_TIMEOUT
            ));
            return Ok(());
        }
        if let Some(dir) = freezer.and_then(std::path::Path::parent) {
            let its_own = |pids: &[libc::pid_t]| {
                !pids.is_empty()
                    && pids
                        .iter()
                        .all(|&pid| members::in_containers_mount_namespace(saved, pid))
            };
            if let Err(e) = crate::cgroups::thaw_below(dir, &its_own) {
                log::debug(&format!("thaw the container's sub-cgroups: {e}"));
            }
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// `sig` to every process of the container's cgroup (husk's own); a cgroup
/// already removed (its init gone, a systemd unit's) holds none.
fn signal_all(saved: &Saved, sig: i32) -> Result<()> {
    let signalled = crate::cgroups::driver::for_record(&saved.cgroup)?.signal_all(sig);
    match signalled {
        Err(e) if e.errno() == Some(libc::ENOENT) && !saved.init_alive() => Ok(()),
        other => other,
    }
}

fn is_frozen(saved: &Saved) -> bool {
    saved
        .cgroup
        .freezer
        .as_deref()
        .is_some_and(crate::cgroups::is_frozen_file)
}

/// Deletes a stopped or created container (a created one is killed first), or
/// with `force` one in any state (SIGKILL, then a wait of at most 10 s): its
/// processes, its cgroup and its state go, then the poststop hooks run. Also
/// removes what a `create` killed midway left. With `force`, a container
/// that does not exist is no error, as with runc.
pub fn delete(store: &Store, id: &str, force: bool) -> Result<()> {
    log::begin("delete");
    let lock = match force {
        true => lock_killing_holder(store, id),
        false => store.lock(id),
    };
    let locked = match lock {
        // As runc: with --force, a container that is not there is deleted
        // (podman deletes the one that `checkpoint` already removed).
        Err(e) if force && matches!(e.kind(), crate::error::ErrorKind::ContainerNotFound) => return Ok(()),
        other => other?,
    };
    let saved = locked.load_any(id)?;
    log::step("state loaded");
    if saved.provisional {
        // A create or restore that died before it committed: undo what it
        // recorded. The processes a killed restore left running are a
        // running container's: only --force kills them.
        // (Not locked.status: the lock held here would make it `creating`.)
        if !force && saved.restored && saved.init_alive() {
            bail!("cannot delete container {id} that is not stopped: running (a restore that did not finish: use --force)");
        }
        kill_and_wait(&saved)?;
        return remove_container(locked, &saved);
    }
    match locked.status(&saved) {
        Status::Stopped => {}
        Status::Created => kill_and_wait(&saved)?,
        status if force => {
            log::debug(&format!("killing {status} container {id}"));
            kill_and_wait(&saved)?
        }
        status => bail!("cannot delete container {id} that is not stopped: {status}"),
    }
    log::step("processes ended");
    remove_container(locked, &saved)
}

/// With --force, another command that holds the container (a `start`
/// waiting for an init that a process of its pod stopped, say) does not keep
/// it for the lock's whole minute: the init is killed first, which ends that
/// command's wait, and the lock is then waited for as usual.
fn lock_killing_holder(store: &Store, id: &str) -> Result<Locked> {
    if let Some(locked) = store.try_lock(id)? {
        return Ok(locked);
    }
    if let Ok(saved) = store.load_any(id) {
        if let Ok(pidfd) = open_init(&saved) {
            log::debug(&format!("another command holds container {id}: killing its init"));
            let _ = sys::pidfd_send_signal(&pidfd, libc::SIGKILL);
            // A frozen init dies only once thawed (a `start` that found it
            // frozen by someone else after its status check waits on).
            if is_frozen(&saved) {
                let _ = crate::cgroups::driver::for_record(&saved.cgroup).and_then(|c| c.freeze(false));
            }
        }
    }
    store.lock(id)
}

/// Removes a container whose init is gone: what is left of its cgroup, its
/// state directory; then the poststop hooks.
pub(super) fn remove_container(locked: Locked, saved: &Saved) -> Result<()> {
    remove_container_in(locked, saved, None)
}

/// [`remove_container`] with the host's cgroup hierarchies as the caller
/// knows them (`run`, which found them at create).
pub(super) fn remove_container_in(
    locked: Locked,
    saved: &Saved,
    hierarchies: Option<&[crate::cgroups::Hierarchy]>,
) -> Result<()> {
    // Processes outside the init's pid namespace may still be in the cgroup:
    // the driver kills them, unless husk did not make it (they are someone
    // else's then, but for those of the container's mount namespace), and
    // removes what husk made.
    kill_what_it_left(saved, hierarchies)?;
    crate::cgroups::driver::for_record_in(&saved.cgroup, hierarchies)?.destroy()?;
    log::step("cgroup removed");
    let notify = saved.notify_socket.is_some().then_some(crate::container::notify::DIR);
    locked.remove_after(notify)?;
    log::step("state removed");
    if !saved.provisional {
        poststop(saved);
    }
    Ok(())
}

/// Removes the container `saved` describes once a caller that let its lock
/// go (to wait for it) is done, as [`remove_container_in`]; unless it is
/// gone (a `delete -f` meanwhile) or `id` names a container made since.
/// With `kill`, kills its processes first ([`kill_and_wait`]), once it is
/// known to be the same container: the one made since has the same cgroup,
/// which `kill_and_wait` would kill if it is paused.
pub(super) fn remove_unless_replaced(
    store: &Store,
    saved: &Saved,
    hierarchies: Option<&[crate::cgroups::Hierarchy]>,
    kill: bool,
) -> Result<()> {
    let gone = |e: &Error| matches!(e.kind(), ErrorKind::ContainerNotFound);
    let locked = match store.lock(&saved.id) {
        Err(e) if gone(&e) => return Ok(()),
        other => other?,
    };
    // The lock may be that of the directory a `delete -f` removed: what
    // now has the path is another container's, or nothing.
    let current = match locked.load(&saved.id) {
        Err(e) if gone(&e) => return Ok(()),
        other => other?,
    };
    if (current.pid, current.start_time) != (saved.pid, saved.start_time) {
        log::debug(&format!("container {} was deleted and made anew meanwhile", saved.id));
        return Ok(());
    }
    if kill {
        kill_and_wait(saved)?;
    }
    remove_container_in(locked, saved, hierarchies)
}

/// Kills every process of the container (all of its cgroup when it has one,
/// which also thaws a paused one) and waits for the init to exit.
pub(super) fn kill_and_wait(saved: &Saved) -> Result<()> {
    // A frozen init cannot die before it is thawed: kill the whole cgroup, which
    // thaws it. Otherwise killing the init is enough for a private pid namespace
    // (its end kills the rest), and remove_container signals whatever is left.
    if is_frozen(saved) && saved.cgroup.path.is_some() {
        let cgroup = crate::cgroups::driver::for_record(&saved.cgroup)?;
        match saved.cgroup.owns() {
            true => cgroup.signal_all(libc::SIGKILL)?,
            false => cgroup.freeze(false)?,
        }
    }
    let Ok(pidfd) = open_init(saved) else {
        return Ok(()); // already gone
    };
    let owned = saved.cgroup.owns() && saved.cgroup.path.is_some();
    let foreign_freezer = (!owned).then(|| containers_v1_freezer(saved)).flatten();
    sys::pidfd_send_signal(&pidfd, libc::SIGKILL).context(|| format!("kill container \"{}\"", saved.id))?;
    let deadline = std::time::Instant::now() + KILL_TIMEOUT;
    let mut wait = FIRST_WAIT;
    let exited = loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        if exits_within(&pidfd, wait.min(left)) {
            break true;
        }
        if left <= wait {
            break false;
        }
        if !owned {
            wait = match &foreign_freezer {
                Some(freezer) => {
                    freezer.thaw_the_containers_sub_cgroups();
                    AGAIN_AFTER
                }
                None => left,
            };
            continue;
        }
        // The init may wait in its exit for processes of its pid namespace
        // that a sub-cgroup the container froze keeps from dying: killing
        // the cgroup thaws them; again while it lasts, should anything of
        // the container's freeze them anew.
        log::debug("the init is still there: killing its cgroup, sub-cgroups thawed");
        let killed = crate::cgroups::driver::for_record(&saved.cgroup).and_then(|c| c.signal_all(libc::SIGKILL));
        if let Err(e) = killed {
            log::debug(&format!("kill the cgroup: {e}"));
        }
        wait = AGAIN_AFTER;
    };
    if let Some(stuck) = (!exited).then(|| unkillable(saved)).flatten() {
        bail!(
            "container \"{}\" did not exit within {:?} of SIGKILL: {stuck}",
            saved.id,
            KILL_TIMEOUT
        );
    }
    match exited {
        false if saved.init_exiting() => bail!(
            "container \"{}\" did not exit within {:?} of SIGKILL: its init has exited, but waits until \
             the processes of its pid namespace are reaped by their parents (an exec'd process whose \
             parent outside the container does not reap it)",
            saved.id,
            KILL_TIMEOUT
        ),
        false => bail!(
            "container \"{}\" did not exit within {:?} of SIGKILL",
            saved.id,
            KILL_TIMEOUT
        ),
        true => Ok(()),
    }
}

/// The v1 freezer directory of a cgroup husk did not make, and how the
/// container's processes in it are told from the others.
struct ForeignFreezer {
    dir: std::path::PathBuf,
    whose: Whose,
    /// The mount namespace the container made: its processes are the
    /// container's too (a daemon reparented away from the init).
    mount_namespace: Option<u64>,
}

enum Whose {
    /// The init is pid 1 of this pid namespace: its end kills the
    /// namespace's other processes and waits for them.
    PidNamespace(u64),
    /// The init shares its pid namespace (joined by path, or husk's): one
    /// that may hold others, another container's; the init and its
    /// descendants are the container's (review 45b F2, 45c G1).
    Descendants(libc::pid_t),
}

/// The container's [`ForeignFreezer`], read while its init is alive (a
/// zombie's namespaces are gone); none without a v1 freezer.
fn containers_v1_freezer(saved: &Saved) -> Option<ForeignFreezer> {
    let file = saved.cgroup.freezer.as_deref()?;
    let dir = file.ends_with("freezer.state").then(|| file.parent())??;
    let whose = match is_its_namespaces_init(saved.pid) {
        true => Whose::PidNamespace(members::pid_namespace_of(saved.pid)?),
        false => Whose::Descendants(saved.pid),
    };
    Some(ForeignFreezer {
        dir: dir.to_path_buf(),
        whose,
        mount_namespace: saved.mount_namespace,
    })
}

/// Whether `pid` is pid 1 of its own pid namespace (the last of its
/// `NSpid`, which is husk's view first and its own last).
fn is_its_namespaces_init(pid: libc::pid_t) -> bool {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let nspid = status.lines().find_map(|l| l.strip_prefix("NSpid:"));
    nspid.is_some_and(|ids| {
        let ids: Vec<&str> = ids.split_whitespace().collect();
        ids.len() > 1 && ids.last() == Some(&"1")
    })
}

impl ForeignFreezer {
    /// Thaws the frozen sub-cgroups whose every process (below them too) is
    /// the container's: the container froze them, and the killed init waits
    /// for their processes (or is one of them), which die of SIGKILL only
    /// once thawed (review 42b G3); a sub-cgroup holding anything else is
    /// the cgroup's owner's, left as it is.
    fn thaw_the_containers_sub_cgroups(&self) {
        let containers = |pids: &[libc::pid_t]| !pids.is_empty() && pids.iter().all(|&pid| self.is_the_containers(pid));
        log::debug("the init is still there: thawing the container's frozen sub-cgroups");
        if let Err(e) = crate::cgroups::thaw_below(&self.dir, &containers) {
            log::debug(&format!("thaw the container's sub-cgroups: {e}"));
        }
    }

    fn is_the_containers(&self, pid: libc::pid_t) -> bool {
        let by_pid = match self.whose {
            Whose::PidNamespace(ns) => members::in_pid_namespace_or_below(pid, ns, "pid") == Some(true),
            Whose::Descendants(init) => members::descends_from(pid, init),
        };
        by_pid || (self.mount_namespace.is_some() && members::mount_namespace_of(pid) == self.mount_namespace)
    }
}

/// How long `kill_and_wait` waits for the init alone before it kills its cgroup too.
const FIRST_WAIT: Duration = Duration::from_millis(100);

/// How often `kill_and_wait` kills the cgroup again while the init is there.
const AGAIN_AFTER: Duration = Duration::from_millis(500);

/// What keeps a killed container from dying when it is one of its processes
/// in an uninterruptible wait, which no signal ends (a request to a FUSE
/// filesystem that never answers): the first such one, named.
fn unkillable(saved: &Saved) -> Option<String> {
    let cgroup = saved
        .cgroup
        .path
        .as_ref()
        .and_then(|_| crate::cgroups::driver::for_record(&saved.cgroup).ok());
    let pids = cgroup.and_then(|c| c.pids().ok()).unwrap_or_default();
    let pid = [saved.pid]
        .into_iter()
        .chain(pids)
        .find(|&pid| sys::process_stat(pid).is_some_and(|s| s.state == b'D'))?;
    let read = |what: &str| std::fs::read_to_string(format!("/proc/{pid}/{what}")).unwrap_or_default();
    // The command name is the container's to choose: quoted, escaped.
    let (comm, wchan) = (read("comm"), read("wchan"));
    let wchan = match wchan.trim() {
        "" | "0" => String::new(),
        w => format!(" ({w:?})"),
    };
    Some(format!(
        "process {pid} {:?} waits in the kernel{wchan} where no signal reaches it (a filesystem that does not \
         answer, such as a FUSE mount?)",
        comm.trim_end_matches('\n')
    ))
}

/// Whether the process of `pidfd` exits within `timeout` (an error of poll counts as yes: nothing to wait for).
fn exits_within(pidfd: &std::os::fd::OwnedFd, timeout: Duration) -> bool {
    let mut fds = [nix::poll::PollFd::new(pidfd.as_fd(), nix::poll::PollFlags::POLLIN)];
    let timeout = nix::poll::PollTimeout::try_from(timeout).expect("fits");
    !matches!(nix::poll::poll(&mut fds, timeout), Ok(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_pid_1_of_a_namespace_below_is_its_init() {
        let mut unshare = std::process::Command::new("unshare")
            .args(["--user", "--map-root-user", "--pid", "--fork", "sleep", "30"])
            .spawn()
            .unwrap();
        let children = format!("/proc/{0}/task/{0}/children", unshare.id());
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        let sleep = loop {
            let text = std::fs::read_to_string(&children).unwrap_or_default();
            if let Some(pid) = text.split_whitespace().next() {
                break pid.parse::<libc::pid_t>().unwrap();
            }
            assert!(std::time::Instant::now() < deadline, "unshare's child never came");
            std::thread::sleep(Duration::from_millis(10));
        };
        let verdicts =
            [sleep, unshare.id() as libc::pid_t, std::process::id() as libc::pid_t].map(is_its_namespaces_init);
        let _ = unshare.kill();
        let _ = sys::signal::kill(sleep, libc::SIGKILL);
        let _ = unshare.wait();
        assert_eq!(verdicts, [true, false, false]);
    }
}
