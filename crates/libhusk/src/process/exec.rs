//! The child side of `exec` (the caller's side is `container/exec.rs`): the
//! joiner, which husk clones, enters the container and confines itself, then
//! clones the exec process, which runs the program. The channel they share
//! with husk, and the sequence, are in `channel.rs`.

use std::ffi::CString;
use std::os::fd::{AsRawFd, OwnedFd};

use crate::cgroups::place::SelfPlacement;
use crate::error::{Context, Result};
use crate::process::attrs;
use crate::process::channel::ExecChild;
use crate::process::namespaces::NamespacePlan;
use crate::process::prologue::{self, exit};
use crate::seccomp::SeccompPlan;
use crate::spec::ProcessPlan;
use crate::sys;

/// What the joiner gets from husk.
pub struct ExecArgs<'a> {
    pub plan: &'a ProcessPlan,
    /// The container's seccomp filter.
    pub filter: Option<&'a SeccompPlan>,
    pub last_cap: u8,
    /// The init's namespaces that differ from husk's.
    pub namespaces: &'a NamespacePlan,
    /// The init's root, when it shares husk's mount namespace (joining none
    /// would leave us at husk's root).
    pub root: Option<&'a OwnedFd>,
    pub rootless: bool,
    /// The end of the exec channel of the joiner, then of the exec process.
    pub channel: ExecChild,
    pub preserve_fds: u32,
    /// The files through which the joiner moves itself into the container's
    /// cgroups first thing; None when husk moves it (and says when).
    pub placement: Option<SelfPlacement>,
    /// husk's pid: a joiner whose parent is another has outlived husk.
    pub parent: libc::pid_t,
}

/// The joiner, husk's clone: it joins every namespace of the container (user
/// and pid too, which apply to its children), mount last, so that its root
/// and cwd become the container's; closes every fd the exec process must not
/// hold; waits until husk has put it in the container's cgroups; confines
/// itself (`prepare`); then starts the exec process as husk's child and exits.
/// The exec process is thus born in the container's pid namespace already
/// inside its mount namespace, root and cgroups, with the process's user,
/// capabilities and seccomp filter: a container process that can ptrace
/// (CAP_SYS_PTRACE) finds nothing of the host's or of husk's rights in it.
/// Never returns.
pub fn join_and_spawn(mut args: ExecArgs) -> ! {
    prologue::die_with_parent();
    // husk killed before the line above: no signal comes, and a joiner that
    // places itself would go on to start the process for nobody.
    if nix::unistd::getppid().as_raw() != args.parent {
        exit(1);
    }
    // Before anything the exec process inherits: see `ExecChild::make_own_end`.
    if let Err(e) = args.channel.make_own_end() {
        let _ = args.channel.send_error(&format!("make the channel: {e}"));
        exit(1);
    }
    crate::log::forward_debug_to(args.channel.as_raw_fd());
    crate::log::begin("exec: joiner");
    // husk's own procfs, taken before we join the mount namespace: our
    // writes to self/ go there (the container's /proc may lie, and no procfs
    // can be mounted from a pid namespace we cannot administer, as for root
    // in a user namespace). Closed before the exec process is cloned.
    let host_proc = sys::openat(
        libc::AT_FDCWD,
        c"/proc",
        libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC,
        0,
    )
    .context(|| "open /proc".into());
    let placement = args.placement.take();
    let parent_places = placement.is_none();
    let prepared = host_proc.map(sys::Procfs::given).and_then(|proc| {
        initial_affinity(args.plan)?;
        if let Some(placement) = placement {
            placement.enter()?;
            crate::log::step("in the container's cgroups");
        }
        join_namespaces(&args, &proc)?;
        crate::log::step("namespaces joined, fds closed");
        prepare(&args, &proc, parent_places)
    });
    let spawned = prepared.and_then(|program| {
        // SAFETY: single-threaded; the child only runs `run_program` and exits.
        #[allow(unsafe_code)]
        let pid = unsafe { sys::clone_sibling() }.context(|| "clone exec process".into())?;
        Ok((pid, program))
    });
    // The seccomp filter may be in place: the channel writes plainly.
    let _ = match spawned {
        Ok((0, program)) => run_program(args, &program),
        Ok((pid, _)) => args.channel.send_pid(pid),
        Err(e) => args.channel.send_error(&e.to_string()),
    };
    exit(0)
}

/// process.execCPUAffinity.initial: the CPUs the joiner runs on until it is
/// in the container's cgroup (then `final`, or the cgroup's cpuset, applies).
/// Logged for --debug as runc and youki do.
fn initial_affinity(plan: &ProcessPlan) -> Result<()> {
    if let Some(cpus) = &plan.attrs.affinity_initial {
        attrs::set_affinity("initial", cpus)?;
    }
    if crate::log::debug_enabled() {
        crate::log::debug(&format!("exec: initial CPU affinity: {}", attrs::affinity_mask()?));
    }
    Ok(())
}

fn join_namespaces(args: &ExecArgs, proc: &sys::Procfs) -> Result<()> {
    let privileged = !args.rootless;
    args.namespaces.enter_before_clone(privileged, privileged)?;
    if args.namespaces.has(libc::CLONE_NEWUSER) {
        prologue::become_root_of_userns();
    }
    // Joining the mount namespace also moves our root and cwd to the container's.
    let before_userns = privileged && args.namespaces.has(libc::CLONE_NEWUSER);
    args.namespaces.enter_joined(before_userns)?;
    if let Some(root) = args.root {
        crate::rootfs::chroot_into(root)?;
    }
    // A change of ids may have made us dumpable again (fs.suid_dumpable).
    sys::set_non_dumpable();
    // Nothing of husk's (its log, the namespace files, the pidfd) may be open
    // in a process the container can see: only stdio, the passed fds and
    // the channel.
    let mut keep = vec![args.channel.as_raw_fd()];
    keep.extend(proc.raw_fd());
    prologue::close_fds_except(args.preserve_fds, &keep)
}

/// In the joiner, all that needs husk's rights and is inherited by a clone:
/// stdio without the host's /dev/null, cwd, limits and priorities, then (once
/// in the cgroups) labels, capabilities, ids, no_new_privs and the seccomp
/// filter (before the ids when it needs CAP_SYS_ADMIN, without no_new_privs).
fn prepare(args: &ExecArgs, proc: &sys::Procfs, parent_places: bool) -> Result<CString> {
    // Through husk's procfs: /proc is the container's now, where we are not.
    prologue::reset_signals(Some(proc));
    prologue::pass_preserved_fds(args.preserve_fds)?;
    // Nothing of the container's is touched before we are in its cgroups
    // (as runc): its device rules apply to our open of its /dev/null (review
    // 58 F1: before them, a node the container swapped in between our check
    // and the open was opened whatever the rules said: /dev/kmsg, a
    // watchdog), its cpuset to our scheduler and memory policy (58b I1).
    if parent_places {
        args.channel
            .wait_placed()
            .context(|| "exec: the parent did not place the process in the container's cgroups".into())?;
        crate::log::step("placed in the container's cgroups");
    }
    // Here, where the container cannot see us: the exec process is born with it.
    prologue::replace_outside_null_stdio(args.plan.terminal)?;
    let program = prologue::enter_cwd_and_find_program(args.plan)?;
    attrs::apply_early(&args.plan.attrs)?;
    crate::log::step("cwd, program, limits");
    // The seccomp filter too, before the clone: the exec process is seen
    // by the container from its birth. A listener's notify fd goes to husk
    // for the agent (as the init's) and is closed at once: the exec process
    // never holds it where the container could take it (pidfd_getfd), and
    // an agent that closes its copy ends the listener (our wait below fails
    // then, rather than be held by a notified read: review 55b F3). We go
    // no further until husk says the agent has it: the program must not run
    // with calls that fail with ENOSYS (review 54b F5, 55 F3).
    let mut hand_over = |fd: OwnedFd| {
        let sent = args.channel.send_seccomp_fd(&fd);
        drop(fd);
        sent.and_then(|()| args.channel.wait_seccomp_fd_taken())
            .context(|| "hand the seccomp notify fd to the agent".into())
    };
    prologue::confine(args.plan, args.filter, args.last_cap, proc, false, &mut hand_over)?;
    crate::log::step("confined");
    Ok(program)
}

/// The exec process, born confined: its terminal, then execve; its error goes
/// to husk. It outlives a husk that detaches (no parent-death signal).
/// It first waits until husk knows its pid (and has written the
/// `--pid-file`), and exits if husk fails or dies before: a caller told of a
/// failure never finds the program running, untracked, where no pid file
/// says so (review 58 I4; review 60 F1-F3: husk told the process it had to
/// end from others by its pid namespace and cgroup, which a sub-cgroup or a
/// caller's own jobs fooled).
fn run_program(args: ExecArgs, program: &CString) -> ! {
    if args.channel.wait_go().is_err() {
        exit(1);
    }
    // The program runs only once husk has passed the master on (or kept it
    // for the caller): killed in between, husk left it hung up, and no pid
    // file or console socket told of it (review 61 F3).
    let send_master = |master: &OwnedFd| {
        args.channel.send_master(master)?;
        args.channel.wait_go()
    };
    let err = match prologue::set_up_terminal(args.plan, &send_master, false) {
        Ok(()) => prologue::exec_program(args.plan, program),
        Err(e) => e,
    };
    let _ = args.channel.send_error(&err.to_string());
    exit(127)
}
