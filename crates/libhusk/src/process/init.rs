//! The container's init: the child that `create` clones straight into the new
//! namespaces. It builds the container, reports Ready (or its error) over the
//! create channel (see `channel.rs`), waits on `exec.fifo` for `start`, then
//! becomes the container process. No re-exec of husk, no intermediate process.
//!
//! After Ready the only channel left is the fifo: a failed exec writes its error
//! there for `start` to report, while a successful exec closes it (O_CLOEXEC).

use std::ffi::CString;
use std::io::Write;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};

use crate::cgroups::place::SelfPlacement;
use crate::error::{Context, Result};
use crate::process::channel::{InitChild, PlacementStep};
use crate::process::hook_runner::HookRunner;
use crate::process::prologue::{self, exit};
use crate::process::{attrs, sysctl};
use crate::rootfs;
use crate::spec::Plan;
use crate::sys;

pub struct InitArgs<'a> {
    pub plan: &'a Plan,
    /// The init's end of the create channel.
    pub channel: InitChild,
    /// The container's exec.fifo, written to only if its program cannot run.
    pub exec_fifo: ExecFifo,
    pub preserve_fds: u32,
    /// Descriptors of the parent that must not stay open here (the state lock).
    pub close: Vec<RawFd>,
    /// Mounts the parent prepared, by mount index (idmapped ones).
    pub premounted: Vec<Option<OwnedFd>>,
    /// A bind mount (by index) whose source only the caller's ids may reach
    /// (the NOTIFY_SOCKET directory in an unprivileged user's state
    /// directory), which the parent could not clone: we clone it before we
    /// take the user namespace's root, which may be another uid.
    pub clone_before_root: Option<usize>,
    /// The container's cgroup, when the parent made one.
    pub cgroup: Option<String>,
    /// The files through which the init moves itself into that cgroup.
    pub placement: Option<SelfPlacement>,
    /// husk makes the cgroup while we set up, then hands us those files
    /// (`Driver::places_after_clone`): we wait for them where the cgroup
    /// counts, as for a cgroup husk places us in.
    pub cgroup_after_clone: bool,
}

/// Runs in the cloned child; never returns.
pub fn run(mut args: InitArgs) -> ! {
    // Tied to `create` until it has committed the state (see `report_ready`); should it
    // die before this call, the channel's end tells us at the next message.
    prologue::die_with_parent();
    for &fd in &args.close {
        // Our copies of the parent's descriptors: their owners (in the
        // parent's memory, copied here) are never dropped in this process,
        // which leaves by execve or _exit. Closed before any wait: a process
        // that can read our fds (a pod's, when we are born in its pid
        // namespace) must find the state directory's lock gone.
        let _ = nix::unistd::close(fd);
    }
    // A pod will see the container's process, which inherits our channel.
    if args.plan.namespaces.pid_joined_late {
        if let Err(e) = args.channel.make_own_end() {
            let _ = args.channel.send_error(&format!("make the channel: {e}"));
            exit(1);
        }
    }
    // --debug lines go to `create`: our stderr is the container's.
    crate::log::forward_debug_to(args.channel.as_raw_fd());
    crate::log::begin("init");
    let placement = args.placement.take();
    match prepare(&mut args, placement) {
        Ok(Prepared {
            program,
            proc,
            waiting,
            hook_state,
            terminal,
            setgroups_denied,
        }) => {
            // Confined before Ready: from here until `start`, whatever can see
            // the init finds the container's user, capabilities and seccomp
            // filter, and no fd but the fifo, its own fd directory in the
            // container's /proc (or a read-only pid-only procfs) and the
            // passed ones.
            let plan = args.plan;
            let denied = setgroups_denied || denies_setgroups(plan);
            if let Err(e) = confine_for_start(&args, proc, waiting.as_ref(), terminal.as_ref(), denied) {
                let _ = args.channel.send_error(&e.to_string());
                exit(1);
            }
            let mut hook_state = hook_state;
            if born_confined_in_pod(plan) {
                match start_confined_in_joined_pid_namespace(&args, terminal) {
                    Ok(pid) => hook_state = hook_state.zip(pid).map(|(state, pid)| with_pid(state, pid)),
                    Err(e) => {
                        let _ = args.channel.send_error(&e.to_string());
                        exit(1);
                    }
                }
            }
            if !report_ready(&args.channel) {
                exit(1);
            }
            drop(args.channel);
            let fifo = open_fifo_for_writing(args.exec_fifo, waiting.as_ref());
            sys::process::report_signal_death_to(fifo.as_raw_fd());
            exec_or_report(plan, &program, fifo, hook_state.as_deref())
        }
        Err(e) => {
            let _ = args.channel.send_error(&e.to_string());
            exit(1)
        }
    }
}

/// Confines the init (`confine`) and closes every fd it does not need until
/// `start`: it keeps `waiting` in place of `proc`, to reopen the fifo through.
fn confine_for_start(
    args: &InitArgs,
    proc: sys::Procfs,
    waiting: Option<&Waiting>,
    terminal: Option<&OwnedFd>,
    setgroups_denied: bool,
) -> Result<()> {
    let plan = args.plan;
    // Before the seccomp filter, which need not allow close_range.
    let mut keep = vec![args.channel.as_raw_fd(), args.exec_fifo.as_raw_fd()];
    keep.extend(waiting.map(|w| w.as_raw_fd()));
    keep.extend(proc.raw_fd());
    // Born confined in a pod: the pty the container's process takes.
    keep.extend(terminal.map(|f| f.as_raw_fd()));
    prologue::close_fds_except(args.preserve_fds, &keep)?;
    crate::log::step("fds closed");
    // A listener's notify fd goes to husk at once: it hands it to the agent
    // (or holds it until it knows the pid of a pod member's process).
    let mut hand_over = |fd: OwnedFd| {
        args.channel
            .send_seccomp_fd(&fd)
            .context(|| "send seccomp notify fd".into())
    };
    let filter = plan.seccomp.as_ref();
    prologue::confine(
        &plan.process,
        filter,
        plan.last_cap,
        &proc,
        setgroups_denied,
        &mut hand_over,
    )?;
    crate::log::step("confined: user, capabilities");
    // The full procfs is not used again.
    drop(proc);
    Ok(())
}

/// Whether the new user namespace's maps were written after denying
/// setgroups (an unprivileged self-mapping): known without reading /proc,
/// which the container may not mount.
fn denies_setgroups(plan: &Plan) -> bool {
    use crate::process::userns::{UsernsPlan, Writer};
    matches!(
        plan.userns,
        Some(UsernsPlan {
            writer: Writer::Direct { deny_setgroups: true },
            ..
        })
    )
}

/// Says Ready, then waits until the parent has committed the container's
/// state. The init stops dying with the parent (PR_SET_PDEATHSIG) before it
/// says Ready, since the parent exits right after it commits; from then on a
/// parent that dies before committing closes the socket instead, and the init
/// exits: no init outlives a `create` unrecorded.
fn report_ready(channel: &InitChild) -> bool {
    prologue::outlive_parent();
    crate::log::stop_forwarding();
    channel.send_ready().is_ok() && channel.wait_committed().is_ok()
}

struct Prepared {
    program: CString,
    proc: sys::Procfs,
    /// The procfs kept to reopen exec.fifo through, when the init has only its path.
    waiting: Option<Waiting>,
    /// The state the parent sent for the hooks the init runs.
    hook_state: Option<String>,
    /// The pty's peer, for the container's process to take (ditto).
    terminal: Option<OwnedFd>,
    /// Our user namespace denies setgroups, as read before the pivot.
    setgroups_denied: bool,
}

/// Whether the container's process is cloned into the pid namespace it
/// joins only once it is confined (its user, capabilities, no_new_privs and
/// seccomp filter): where procfs takes the pidns option, nothing needs doing
/// from inside. Cloned first, it was seen by the pod's processes with every
/// capability of husk's and no filter until then, and one that may ptrace it
/// (CAP_SYS_PTRACE, no user namespace) ran code with them (review 54b F1).
/// On older kernels it still mounts /proc from inside, unconfined.
pub(crate) fn born_confined_in_pod(plan: &Plan) -> bool {
    plan.namespaces.late_pid_namespace().is_some() && !plan.namespaces.proc_after_join
}

/// Everything that can fail at `create`: namespaces, the filesystem, limits.
fn prepare(args: &mut InitArgs, placement: Option<SelfPlacement>) -> Result<Prepared> {
    let plan = args.plan;
    let host_proc = host_proc_to_wait_through(args)?;
    let hook_runner = enter_new_namespaces(args, placement)?;
    let gate = CgroupGate {
        channel: &args.channel,
        pending: std::cell::Cell::new(plan.parent_places_cgroup() || args.cgroup_after_clone),
        new_namespace: plan.namespaces.is_new(libc::CLONE_NEWCGROUP),
        cgroup_tree: std::cell::Cell::new(None),
    };
    if !gate.pending.get() {
        gate.enter_namespace()?;
    }
    prologue::die_with_parent();
    // Nothing may ptrace or read our memory until we are the container's program.
    sys::set_non_dumpable();
    nix::sys::stat::umask(nix::sys::stat::Mode::empty());
    prologue::pass_preserved_fds(args.preserve_fds)?;
    let proc = join_and_name(args)?;
    // Born confined in a pod, the init confines itself outside the pod's pid
    // namespace, where the container's /proc has no self/ for it: whether a
    // joined user namespace denies setgroups is read now, in the host's.
    let setgroups_denied =
        born_confined_in_pod(plan) && std::fs::read_to_string("/proc/self/setgroups").is_ok_and(|s| s.trim() == "deny");
    let mut hook_state = build_rootfs(args, &gate, hook_runner)?;
    prologue::replace_outside_null_stdio(plan.process.terminal)?;
    let proc = match plan.namespaces.late_pid_namespace() {
        Some(pid_ns) if plan.namespaces.proc_after_join => {
            drop(proc);
            gate.wait()?;
            if let Some(pid) = start_in_joined_pid_namespace(args, pid_ns)? {
                hook_state = hook_state.map(|state| with_pid(state, pid));
            }
            rootfs::mount_deferred_proc(plan)?;
            // A procfs of the host's pid namespace must not stay open where the
            // pod can see it: the container's process makes its own.
            sys::Procfs::private(plan.process.attrs.writes_proc()).context(|| "mount a private procfs".into())?
        }
        Some(pid_ns) => {
            // For the children only: the clone comes once we are confined
            // (`born_confined_in_pod`); this procfs of the host's pid
            // namespace is closed before it.
            join_pid_namespace_for_children(plan, pid_ns)?;
            proc
        }
        None => proc,
    };
    let program = if plan.has_process {
        prologue::enter_cwd_and_find_program(&plan.process)?
    } else {
        CString::default()
    };
    // Before the limits (RLIMIT_NOFILE) and a listener's seccomp filter
    // (which may refuse mounts): the procfs that the wait for `start` needs.
    let pod = plan
        .namespaces
        .late_pid_namespace()
        .filter(|_| born_confined_in_pod(plan));
    let waiting = match (&args.exec_fifo, host_proc, pod) {
        (ExecFifo::Writer(_), _, _) => None,
        // Made before our user namespace (`host_proc_to_wait_through`).
        (ExecFifo::Path(_), Some(made), _) if plan.namespaces.userns_after_pid() => Some(Waiting::Procfs(made)),
        // The container's process waits there, and reopens the fifo through its self/.
        (ExecFifo::Path(_), _, Some(pod)) => Some(Waiting::Procfs(
            sys::waiting_procfs_of(&pod.fd).context(|| "mount a procfs of the joined pid namespace".into())?,
        )),
        (ExecFifo::Path(_), Some(host_proc), None) => Some(Waiting::Procfs(sys::waiting_procfs().unwrap_or(host_proc))),
        (ExecFifo::Path(_), None, None) => match own_fd_dir_in_containers_proc() {
            Some(dir) => Some(Waiting::FdDir(dir)),
            None => Some(Waiting::Procfs(
                sys::waiting_procfs().context(|| waiting_procfs_failed(plan))?,
            )),
        },
    };
    if plan.namespaces.is_new(libc::CLONE_NEWPID) {
        // Before any seccomp filter, which need not allow rt_sigaction.
        prologue::exit_on_terminating_signals();
    }
    // Born confined in a pod, the container's process takes the terminal
    // itself, once cloned (a session of its own); the bind needs our rights.
    let send_master = |master: &OwnedFd| args.channel.send_master(master);
    let terminal = match pod {
        Some(_) => prologue::open_terminal(&plan.process, &send_master, true)?,
        None => {
            prologue::set_up_terminal(&plan.process, &send_master, true)?;
            None
        }
    };
    attrs::apply_early(&plan.process.attrs)?;
    crate::log::step("cwd, program, terminal, limits");
    gate.wait()?;
    Ok(Prepared {
        program,
        proc,
        waiting,
        hook_state,
        terminal,
        setgroups_denied,
    })
}

/// The namespaces the init makes itself, its CPUs and cgroup when it moves
/// itself, its uid/gid maps awaited and the root of its new user namespace
/// taken. The runner of its createContainer hooks, when it needs one.
fn enter_new_namespaces(args: &mut InitArgs, placement: Option<SelfPlacement>) -> Result<Option<HookRunner>> {
    let plan = args.plan;
    // Before our children are born in a pod.
    let hook_runner = HookRunner::fork_if_needed(plan)?;
    if plan.namespaces.join_pid_then_unshare()? {
        args.channel.send_userns_made().context(|| "signal the parent".into())?;
    }
    plan.namespaces.unshare_in_init()?;
    if let Some(cpus) = &plan.process.attrs.affinity_initial {
        attrs::set_affinity("initial", cpus)?;
    }
    if let Some(placement) = placement {
        placement.enter()?;
        crate::log::step("in its cgroup");
    }
    prologue::reset_signals(None);
    if plan.userns.is_some() {
        args.channel
            .wait_maps_written()
            .context(|| "the parent did not write the user namespace maps".into())?;
        crate::log::step("uid/gid maps awaited");
    }
    if plan.userns.is_some() && plan.namespaces.is_new(libc::CLONE_NEWTIME) {
        // Before we take the namespace's uid 0: a change of uid makes us
        // non-dumpable, and our /proc files the host root's.
        crate::process::namespaces::new_time_namespace(&plan.time_offsets, true)?;
    }
    if let Some(i) = args.clone_before_root {
        let tree = rootfs::clone_bind_source(&plan.mounts[i]).context(|| format!("mounts[{i}]"))?;
        args.premounted[i] = Some(tree);
    }
    if plan.in_userns() {
        prologue::become_root_of_userns();
    }
    Ok(hook_runner)
}

/// The namespaces joined by path, the network devices moved in, the
/// hostname, the domainname and the sysctls; the private procfs they are written through, kept for what
/// writes to /proc later.
fn join_and_name(args: &InitArgs) -> Result<sys::Procfs> {
    let plan = args.plan;
    plan.namespaces.enter_joined(plan.joins_before_new_userns())?;
    if !plan.net_devices.is_empty() {
        // Before the sysctls, which may name a device moved in.
        args.channel
            .await_net_devices()
            .context(|| "the parent did not move the network devices".into())?;
        crate::log::step("network devices awaited");
    }
    if let Some(h) = &plan.hostname {
        nix::unistd::sethostname(h).context(|| format!("set hostname {h}"))?;
    }
    if let Some(d) = &plan.domainname {
        sys::process::set_domainname(d).context(|| format!("set domainname {d}"))?;
    }
    let writes_proc = !plan.sysctl.is_empty() || plan.process.attrs.writes_proc();
    let proc = sys::Procfs::private(writes_proc).context(|| "mount a private procfs".into())?;
    sysctl::apply(&plan.sysctl, &proc)?;
    crate::log::step("namespaces joined, hostname, sysctls");
    Ok(proc)
}

/// The container's filesystem and root, with the prestart, createRuntime
/// (the parent's) and createContainer hooks run before the pivot: the state
/// the parent sent for them, if it did.
fn build_rootfs(args: &InitArgs, gate: &CgroupGate, mut hook_runner: Option<HookRunner>) -> Result<Option<String>> {
    let plan = args.plan;
    let mut hook_state = None;
    rootfs::setup(
        plan,
        &args.premounted,
        args.cgroup.as_deref(),
        &mut |wanted| gate.wait_for_mount(wanted),
        &mut || {
            gate.wait()?;
            if !plan.has_create_hooks() {
                return Ok(());
            }
            // The parent runs prestart and createRuntime, and sends the state.
            args.channel.send_run_hooks().context(|| "ask for hooks".into())?;
            let state = args
                .channel
                .wait_hook_state()
                .context(|| "the parent did not run the createRuntime hooks".into())?;
            let hooks = plan.hooks.create_container().as_deref().unwrap_or(&[]);
            crate::log::step("prestart and createRuntime hooks awaited");
            match hook_runner.take() {
                Some(runner) => runner.run(&state)?,
                None => crate::hooks::run_all("createContainer", hooks, &state)?,
            }
            if !hooks.is_empty() {
                args.channel.send_hooks_run().context(|| "signal husk".into())?;
            }
            crate::log::step("createContainer hooks run");
            hook_state = Some(state);
            Ok(())
        },
    )?;
    Ok(hook_state)
}

/// The host's /proc, opened before anything else, for an init that waits for
/// `start` in a user namespace without a pid namespace of its own: no procfs
/// can be mounted there (the kernel wants a pid namespace the user namespace
/// owns), and exec.fifo is reopened through `self/fd/N` of this one then
/// (review 47 F1; the container sees the host's pids anyway). It is closed
/// at the program's exec, and the init is non-dumpable meanwhile.
fn host_proc_to_wait_through(args: &InitArgs) -> Result<Option<OwnedFd>> {
    let plan = args.plan;
    let waits = matches!(args.exec_fifo, ExecFifo::Path(_));
    // A late pid namespace join closes every fd it does not name, and makes
    // a procfs of that namespace.
    let own_procfs = plan.namespaces.is_new(libc::CLONE_NEWPID)
        || (plan.namespaces.late_pid_namespace().is_some() && !plan.namespaces.userns_after_pid());
    if !waits || !plan.in_userns() || own_procfs {
        return Ok(None);
    }
    // Made now, with husk's rights, before we make our user namespace, from
    // which no procfs of the pod's pid namespace can be mounted: the pod sees
    // the process that waits with it, which must hold nothing of the host's.
    // Where husk may not mount one either, the host's, as without a pod.
    let pod = plan
        .namespaces
        .late_pid_namespace()
        .filter(|_| !plan.namespaces.proc_after_join);
    if let Some(Ok(made)) = pod.map(|pod| sys::waiting_procfs_of(&pod.fd)) {
        return Ok(Some(made));
    }
    let flags = libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC;
    let proc = sys::openat(libc::AT_FDCWD, c"/proc", flags, 0).context(|| "open /proc".into())?;
    Ok(Some(proc))
}

/// The joined pid namespace, for our children, unless we joined it first
/// thing (`userns_after_pid`: our user namespace has no right to now).
fn join_pid_namespace_for_children(plan: &Plan, pid_ns: &crate::process::namespaces::Join) -> Result<()> {
    if plan.namespaces.userns_after_pid() {
        return Ok(());
    }
    sys::setns(pid_ns.fd.as_raw_fd(), libc::CLONE_NEWPID)
        .context(|| format!("join namespace {}", pid_ns.path.display()))
}

/// With a late pid namespace join, the init has built the container outside
/// the pid namespace it joins, so that no process there ever saw it with the
/// host's root. Now that its root is the container's, it starts the
/// container's process in that namespace as husk's child, tells husk its pid,
/// and exits: only the new process returns, once husk knows about it.
fn start_in_joined_pid_namespace(
    args: &InitArgs,
    pid_ns: &crate::process::namespaces::Join,
) -> Result<Option<libc::pid_t>> {
    join_pid_namespace_for_children(args.plan, pid_ns)?;
    // What the process needs until it execs: stdio, the passed fds, the
    // channel and exec.fifo.
    let mut keep = vec![args.channel.as_raw_fd(), args.exec_fifo.as_raw_fd()];
    let pipe = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).context(|| "pipe".into())?;
    keep.extend([pipe.0.as_raw_fd(), pipe.1.as_raw_fd()]);
    prologue::close_fds_except(args.preserve_fds, &keep)?;
    clone_into_joined_pid_namespace(args, pipe)
}

/// Clones the container's process into the pid namespace we joined for our
/// children, as husk's child. The init tells husk its pid and exits; the new
/// process returns once husk knows about it (`pipe`'s end of file).
/// Returns in the new process only, with its pid as husk sees it (the first
/// init's pid namespace is husk's), which the pod's namespace cannot tell it.
fn clone_into_joined_pid_namespace(args: &InitArgs, pipe: (OwnedFd, OwnedFd)) -> Result<Option<libc::pid_t>> {
    let (known, announced) = pipe;
    // SAFETY: single-threaded; the child returns into the init's code path.
    #[allow(unsafe_code)]
    let cloned = unsafe { sys::clone_sibling() };
    match cloned.context(|| "clone the container's process".into())? {
        0 => {
            drop(announced);
            prologue::die_with_parent();
            // Our pid, then EOF once the first init has sent it to husk and
            // exited. A plain read: we are confined.
            let mut said = [0u8; 16];
            let n = nix::unistd::read(&known, &mut said).unwrap_or(0);
            let _ = nix::unistd::read(&known, &mut [0u8; 1]);
            Ok(std::str::from_utf8(&said[..n]).ok().and_then(|s| s.parse().ok()))
        }
        pid => {
            let _ = nix::unistd::write(&announced, pid.to_string().as_bytes());
            let _ = args.channel.send_pid(pid);
            exit(0)
        }
    }
}

/// `born_confined_in_pod`: the init, confined and a member of the pid
/// namespace's children already (setns), starts the container's process
/// there as husk's child, tells husk its pid, and
/// exits; only the new process returns, once husk knows about it, and sets
/// up its terminal (a session of its own) under its filter, as exec's does.
fn start_confined_in_joined_pid_namespace(args: &InitArgs, terminal: Option<OwnedFd>) -> Result<Option<libc::pid_t>> {
    let pipe = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).context(|| "pipe".into())?;
    let pid = clone_into_joined_pid_namespace(args, pipe)?;
    prologue::take_terminal(terminal)?;
    Ok(pid)
}

/// The hooks' `state` with the container's process's pid: husk made it
/// before a pod member's first init cloned that process (review 54c F3: its
/// startContainer hooks were given the first init's pid, which had exited).
fn with_pid(state: String, pid: libc::pid_t) -> String {
    match serde_json::from_str::<serde_json::Value>(&state) {
        Ok(mut value) if value.get("pid").is_some() => {
            value["pid"] = pid.into();
            value.to_string()
        }
        _ => state,
    }
}

/// Waits (once) for the parent to have moved the init into its cgroup, then
/// enters a new cgroup namespace, rooted there.
struct CgroupGate<'a> {
    channel: &'a InitChild,
    pending: std::cell::Cell<bool>,
    new_namespace: bool,
    /// The cgroup tmpfs that came with the placement (`rootfs::cgroup_tree_for_init`).
    cgroup_tree: std::cell::Cell<Option<OwnedFd>>,
}

impl CgroupGate<'_> {
    fn wait(&self) -> Result<()> {
        if !self.pending.get() {
            return Ok(());
        }
        // The tasks files come first: we move ourselves while husk builds the
        // cgroup tmpfs, which comes with placed.
        let placed = || "the parent did not place the init in its cgroup".into();
        loop {
            match self.channel.recv_placement().context(placed)? {
                PlacementStep::Tasks(tasks) => SelfPlacement::from_tasks(tasks).enter()?,
                PlacementStep::Placed(tree) => {
                    self.cgroup_tree.set(tree);
                    break;
                }
            }
        }
        self.pending.set(false);
        self.enter_namespace()
    }

    /// Waits as `wait`, then hands over the cgroup tmpfs `create` built, if
    /// any and `wanted` (once: to the first `type: cgroup` mount).
    fn wait_for_mount(&self, wanted: bool) -> Result<Option<OwnedFd>> {
        self.wait()?;
        // Left for a later `type: cgroup` mount when this one is cgroup2.
        Ok(if wanted { self.cgroup_tree.take() } else { None })
    }

    fn enter_namespace(&self) -> Result<()> {
        if self.new_namespace {
            nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWCGROUP)
                .context(|| "create cgroup namespace".into())?;
        }
        Ok(())
    }
}

/// The container's exec.fifo as the init holds it until its program runs.
pub enum ExecFifo {
    /// An O_PATH fd (`create`): reopened for writing once Ready, which blocks
    /// until `start` opens the read end.
    Path(OwnedFd),
    /// The write end itself, opened before the clone by `run`, which holds
    /// the read end (`create::open_exec_fifo_early`): nothing to wait for,
    /// and no procfs to reopen it through.
    Writer(OwnedFd),
}

impl AsRawFd for ExecFifo {
    fn as_raw_fd(&self) -> RawFd {
        match self {
            ExecFifo::Path(fd) | ExecFifo::Writer(fd) => fd.as_raw_fd(),
        }
    }
}

/// The fifo's write end; with only its path, blocks until `start` opens the
/// read end.
fn open_fifo_for_writing(fifo: ExecFifo, waiting: Option<&Waiting>) -> OwnedFd {
    let path = match fifo {
        ExecFifo::Writer(fd) => return fd,
        ExecFifo::Path(path) => path,
    };
    let Some(waiting) = waiting else { exit(1) };
    // Reopened through our own fd: the init never held the state directory.
    let (dir, name) = match waiting {
        Waiting::Procfs(proc) => (proc, format!("self/fd/{}", path.as_raw_fd())),
        Waiting::FdDir(dir) => (dir, path.as_raw_fd().to_string()),
    };
    let name = CString::new(name).expect("no NUL");
    let flags = libc::O_WRONLY | libc::O_NOCTTY | libc::O_CLOEXEC;
    match sys::openat(dir.as_raw_fd(), &name, flags, 0) {
        Ok(fd) if same_file(&fd, &path) => fd,
        _ => exit(1),
    }
}

/// Whether `a` and `b` are the same file. The fifo is reopened by its fd's
/// name in a directory of the container's /proc: before Linux 6.12 a
/// process of the container with CAP_SYS_ADMIN could mount a file over that
/// name and, stopping and continuing the init, have the open looked up
/// again and find that file, which the init would take for `start` (review
/// 69 M1). Unsure (fstat refused by the filter), it is not.
fn same_file(a: &OwnedFd, b: &OwnedFd) -> bool {
    use nix::sys::stat::fstat;
    matches!((fstat(a), fstat(b)), (Ok(x), Ok(y)) if x.st_dev == y.st_dev && x.st_ino == y.st_ino)
}

/// What failed when the procfs to wait for `start` through could not be
/// made. In a user namespace Linux mounts procfs only where one is fully
/// visible already, which a container without a /proc of its own lacks
/// (review 69: the plain message left the cause to guess).
fn waiting_procfs_failed(plan: &Plan) -> String {
    let mounts_proc = plan
        .mounts
        .iter()
        .any(|m| m.destination == std::path::Path::new("/proc"));
    match plan.in_userns() && !mounts_proc {
        true => "mount a private procfs to wait for start through (in a user namespace Linux mounts procfs \
                 only where one is visible, and this container mounts none at /proc)"
            .into(),
        false => "mount a private procfs".into(),
    }
}

/// What the init reopens the exec fifo through, waiting for `start`.
pub(crate) enum Waiting {
    /// A procfs made for it (or, rootless, the host's): the fifo is
    /// `self/fd/N` there.
    Procfs(OwnedFd),
    /// Its own fd directory in the container's /proc: the fifo is `N` there.
    FdDir(OwnedFd),
}

impl AsRawFd for Waiting {
    fn as_raw_fd(&self) -> RawFd {
        match self {
            Waiting::Procfs(fd) | Waiting::FdDir(fd) => fd.as_raw_fd(),
        }
    }
}

/// Our own fd directory in the container's /proc (which the container sees
/// at once, masks and all), to wait through in place of a procfs made for
/// the wait: that one is a superblock made and torn down and, closed at
/// exec, a detached mount to dissolve (an expedited RCU grace period), ~4%
/// of 50 containers created and started at once. Only a procfs whose
/// `self` is us, so of our pid namespace (not a bind of the host's /proc),
/// and only reached without crossing a mount or following a link (nothing
/// the config stacked on it); else None, and the caller makes one. Through
/// this fd a process that may open the init's fds reaches what its
/// /proc/PID/fd gives it already.
fn own_fd_dir_in_containers_proc() -> Option<OwnedFd> {
    use nix::sys::statfs::{fstatfs, PROC_SUPER_MAGIC};
    let flags = libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC;
    let proc = sys::openat(libc::AT_FDCWD, c"/proc", flags, 0).ok()?;
    if fstatfs(&proc).ok()?.filesystem_type() != PROC_SUPER_MAGIC {
        return None;
    }
    let pid = nix::unistd::getpid().to_string();
    if nix::fcntl::readlinkat(&proc, "self").ok()? != std::ffi::OsStr::new(&pid) {
        return None;
    }
    let fds = CString::new(format!("{pid}/fd")).ok()?;
    sys::resolve::openat2_beneath(&proc, &fds, libc::O_PATH | libc::O_DIRECTORY).ok()
}

/// Runs the startContainer hooks and execs the container's program; an error
/// goes to `start` through the fifo.
fn exec_or_report(plan: &Plan, program: &CString, fifo: OwnedFd, hook_state: Option<&str>) -> ! {
    let start_hooks = plan.hooks.start_container().as_deref().unwrap_or(&[]);
    let state = hook_state.unwrap_or("{}");
    let env = &plan.process.env;
    let err = if !plan.has_process {
        crate::error::Error::new("process: config.json has none, so there is nothing to start")
    } else {
        // The hooks are the image's binaries, run in the container: under its
        // filter (loaded before Ready), as runc (review 46 F1).
        crate::hooks::run_all_inheriting("startContainer", start_hooks, state, env)
            .map_or_else(|e| e, |()| prologue::exec_program(&plan.process, program))
    };
    // Never dropped: the init leaves by _exit.
    let mut out = std::fs::File::from(fifo);
    let _ = out.write_all(err.to_string().as_bytes());
    exit(127)
}
