//! `create`: the bundle validated into a plan, the state recorded before
//! anything exists, the cgroup, the init cloned into its namespaces and the
//! protocol with it until it waits for `start`.

use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use super::start::EarlyStart;
use super::stdio::{hold_passed_fds, listen_fds, Console};
use super::wait::{kill_and_reap, sigkill};
use super::{CreateOptions, Mode};
use crate::bail;
use crate::cgroups::place::SelfPlacement;
use crate::cgroups::Driver;
use crate::container::endings::{Endings, Held};
use crate::container::foreground::Foreground;
use crate::error::{Context, Error, Result};
use crate::process::attrs::OomScoreAdjForClone;
use crate::process::channel::{self, FromInit, InitParent};
use crate::process::init::{self, ExecFifo, InitArgs};
use crate::process::namespaces::EnteredForClone;
use crate::spec::{self, Plan};
use crate::state::{self, Locked, Saved, Status, Store, FIFO};
use crate::{log, sys};

/// A freshly cloned init that is killed and reaped unless creation succeeds.
struct InitGuard {
    pid: libc::pid_t,
    armed: bool,
    /// The container's cgroup, once made (see `kill_and_reap`).
    cgroup: Option<crate::cgroups::Record>,
}

impl InitGuard {
    /// Reaps the init, on its way out, within `EXIT_WAIT`: its raw wait
    /// status; None leaves it to the guard, which kills it (bounded too).
    fn reap(&mut self) -> Option<i32> {
        let status = super::wait::wait_status_within(self.pid, super::wait::EXIT_WAIT);
        self.armed = status.is_none();
        status
    }

    /// Ends the first init of a late pid namespace join, which has said the
    /// pid of its clone and exits: one stopped on its way out (by a host
    /// process with its uid) held create in its reap (review 52, F3).
    fn end_first_init(&mut self) {
        self.armed = false;
        sigkill(self.pid);
        let _ = super::wait::wait(self.pid, FIRST_INIT_EXIT);
    }
}

/// How long the first init of a late pid namespace join may take to go
/// once killed (a frozen one goes only once thawed, later).
const FIRST_INIT_EXIT: std::time::Duration = std::time::Duration::from_secs(2);

impl Drop for InitGuard {
    fn drop(&mut self) {
        if self.armed {
            kill_and_reap(self.pid, self.cgroup.as_ref());
        }
    }
}

/// Runs husk's own hooks of `kind` before the container's process starts;
/// an ending signal ends them as it would the wait for the init.
fn run_hooks(
    caller: Caller,
    id: &str,
    kind: &str,
    hooks: Option<&[oci_spec::runtime::Hook]>,
    state: &str,
) -> Result<()> {
    let hooks = hooks.unwrap_or(&[]);
    let stop = || caller.ended(id);
    crate::hooks::run_all_unless(kind, hooks, state, &stop)
}

fn describe_wait(status: i32) -> String {
    if libc::WIFSIGNALED(status) {
        format!("killed by signal {}", libc::WTERMSIG(status))
    } else {
        format!("exit status {}", libc::WEXITSTATUS(status))
    }
}

/// The init died before it could say why: a SIGKILL under a memory limit is
/// most likely the OOM killer, which the limit's field should be named for.
fn init_died(status: Option<i32>, plan: &Plan) -> Error {
    let Some(status) = status else {
        return Error::new(format!(
            "container init closed its channel during setup and had not exited {}s later: killed",
            super::wait::EXIT_WAIT.as_secs()
        ));
    };
    let mut msg = format!("container init exited during setup ({})", describe_wait(status));
    let killed = libc::WIFSIGNALED(status) && libc::WTERMSIG(status) == libc::SIGKILL;
    let limit = plan.cgroup.as_ref().and_then(|c| {
        c.writes
            .iter()
            .find(|w| w.file == "memory.limit_in_bytes" || w.file == "memory.max")
    });
    if let (true, Some(limit)) = (killed, limit) {
        msg.push_str(&format!(
            ": linux.resources.memory.limit {} may be too low for it to start",
            limit.value
        ));
    }
    // A fault after the filter went in, before Ready: what a filter that
    // refuses the init's next steps, then its error's write and exit_group,
    // leads to.
    let faulted = libc::WIFSIGNALED(status) && matches!(libc::WTERMSIG(status), libc::SIGSEGV | libc::SIGSYS);
    if faulted && plan.seccomp.is_some() {
        msg.push_str(
            ": does linux.seccomp allow what the init does under it (read, write, openat, execve, exit_group)?",
        );
    }
    Error::new(msg)
}

/// Who spawns the container, and how it watches for a signal that asks it
/// to end: `create`, or `run`, which starts it at once (in the foreground,
/// with the signals it holds for the process).
#[derive(Clone, Copy)]
pub(super) enum Caller<'a> {
    Create(&'a Held),
    Run(Endings<'a>),
}

impl<'a> Caller<'a> {
    fn endings(self) -> Endings<'a> {
        match self {
            Caller::Create(held) => Endings::Held(held),
            Caller::Run(endings) => endings,
        }
    }

    fn foreground(self) -> Option<&'a Foreground> {
        match self {
            Caller::Run(Endings::Foreground(fg)) => Some(fg),
            _ => None,
        }
    }

    /// The error of this command that `sig` ended.
    fn ended_by(self, id: &str, sig: nix::sys::signal::Signal) -> Error {
        let what = match self {
            Caller::Create(_) => format!("create of container \"{id}\""),
            Caller::Run(_) => format!("run of container \"{id}\""),
        };
        self.endings().error(&what, "the container's process", sig)
    }

    /// The error of this command if an ending signal ends it now.
    fn ended(self, id: &str) -> Option<Error> {
        self.endings().ending().map(|sig| self.ended_by(id, sig))
    }
}

/// A created container: its locked state, for a foreground run with a
/// terminal the socket on which its pty master arrives, and for a run the
/// fifo and pidfd taken before the init went on (`open_exec_fifo_early`).
pub(super) struct Spawned {
    pub(super) locked: Locked,
    pub(super) saved: Saved,
    /// The pty master a foreground `run` proxies.
    pub(super) console: Option<OwnedFd>,
    pub(super) early: Option<EarlyStart>,
    /// The host's cgroup hierarchies as create found them (none without a cgroup).
    pub(super) hierarchies: Option<Vec<crate::cgroups::Hierarchy>>,
}

pub(super) fn spawn(store: &Store, args: &CreateOptions, mode: Mode, caller: Caller) -> Result<Spawned> {
    let foreground = caller.foreground().is_some();
    log::begin("create");
    state::validate_id(&args.id)?;
    check_pid_file(args.pid_file.as_deref())?;
    let setup_bound = super::wait::setup_timeout()?;
    let listen = listen_fds();
    let preserve = hold_passed_fds(args.preserve_fds, listen)?;
    let mut plan = load_plan(store, args, mode, &caller)?;
    crate::rootfs::refuse_console_in_shared_bind(&plan)?;
    pass_listen_fds(&mut plan, listen);
    let notify = crate::container::notify::host_socket();
    if let Some(host) = &notify {
        pass_notify_socket(&mut plan, host, &store.dir(&args.id))?;
    }
    let console = Console::for_process(plan.process.terminal, args.console_socket.as_deref(), foreground)?;
    let mut cgroup = crate::cgroups::driver::for_plan(plan.cgroup.as_ref())?;
    let locked = store.create(&args.id)?;
    let record = describe(&plan, args, notify.as_deref(), cgroup.record());
    let made = record_state(&locked, &record, notify.is_some());
    let spawned = made.and_then(|()| {
        let c = Creating {
            plan: &plan,
            locked: &locked,
            args,
            caller,
            setup_bound,
            console: &console,
        };
        spawn_init(c, preserve, record, &mut cgroup)
    });

    match spawned {
        Ok((saved, early)) => Ok(Spawned {
            locked,
            saved,
            console: console.into_master(),
            early,
            hierarchies: plan.cgroup.map(|c| c.hierarchies),
        }),
        Err(e) => {
            clean_up_failed(&args.id, cgroup, locked);
            Err(e)
        }
    }
}

/// The bundle's config, validated and prepared for `args` (the seccomp
/// filter compiled or taken from the cache, systemd's unit named). A
/// foreground run holds its terminal from here on.
fn load_plan(store: &Store, args: &CreateOptions, mode: Mode, caller: &Caller) -> Result<Plan> {
    let bundle = match &args.bundle {
        Some(b) => b.clone(),
        None => std::env::current_dir().context(|| "current directory".into())?,
    };
    let opts = spec::Options {
        id: &args.id,
        no_pivot: args.no_pivot,
        new_keyring: !args.no_new_keyring,
        rootless: mode.rootless,
        systemd_cgroup: mode.systemd_cgroup,
        root: store.root().to_path_buf(),
    };
    let mut plan = spec::load(&bundle, &opts)?;
    caller.endings().hold()?;
    log::step("config loaded and validated");
    // Before the seccomp cache under the root is read or written.
    store.make_root()?;
    spec::prepare(&mut plan, &opts)?;
    log::step("prepared (seccomp filter, systemd)");
    Ok(plan)
}

/// Records the container's state (and makes its notify directory) before
/// its cgroup or init exist, so that `delete` finds them whenever this
/// command dies.
fn record_state(locked: &Locked, record: &Saved, notify: bool) -> Result<()> {
    locked.record(record)?;
    log::step("state recorded");
    if notify {
        std::fs::DirBuilder::new()
            .mode(0o755)
            .create(locked.dir.join(crate::container::notify::DIR))
            .context(|| "create notify directory".into())?;
    }
    Ok(())
}

/// After a failed create: the cgroup and the state go. The init is dead and
/// reaped by now, unless a frozen ancestor kept it from dying (kill_and_reap
/// gave up): a cgroup that cannot be removed keeps the state that records
/// it, for `delete -f` (review 43b, N1). Only a cgroup with processes left:
/// one that never was (a bad cgroupsPath) would keep a state no `delete` can
/// remove (review 43c).
fn clean_up_failed(id: &str, cgroup: Box<dyn Driver>, locked: Locked) {
    match cgroup.destroy() {
        Err(d) if cgroup.pids().is_ok_and(|p| !p.is_empty()) => log::warn(&format!(
            "container \"{id}\" failed; its cgroup is left with processes in it, and its state for `delete -f`: {d}"
        )),
        _ => {
            let _ = locked.remove();
        }
    }
}

/// Creates the container's cgroup and applies its limits (or, with systemd,
/// leaves that to the placing of the init). Unprivileged, a cgroup that cannot
/// be made (not delegated to the user) is given up, with a warning when limits
/// were asked for: the container then has none.
pub(super) fn make_cgroup(plan: &Plan, cgroup: &mut Box<dyn Driver>) -> Result<()> {
    let Some(cp) = &plan.cgroup else { return Ok(()) };
    match cgroup.create() {
        Ok(()) => refuse_frozen(cgroup.as_ref()),
        Err(e) if cp.best_effort => {
            let _ = cgroup.destroy();
            if cp.has_limits {
                log::warn(&format!(
                    "no cgroup for this unprivileged container, its limits are not applied: {e}"
                ));
            }
            *cgroup = Box::new(crate::cgroups::driver::NoCgroup);
            Ok(())
        }
        Err(e) => Err(e),
    }
}

/// A cgroup that is frozen (one that was there, or below a frozen parent)
/// freezes the init as it joins, and create waited for it for ever, deaf to
/// SIGTERM under `run` (runc fails: "container's cgroup unexpectedly
/// frozen").
fn refuse_frozen(cgroup: &dyn Driver) -> Result<()> {
    let record = cgroup.record();
    match record.freezer.as_deref() {
        Some(file) if crate::cgroups::is_frozen_in_effect(file) => bail!(
            "cgroup {}: it is frozen (paused): the container's processes would stop as they join it",
            record.path.as_deref().unwrap_or_default()
        ),
        _ => Ok(()),
    }
}

fn warn_unmounted(plan: &Plan) {
    if !plan.own_mount_namespace && !plan.mounts.is_empty() {
        log::warn(&format!(
            "mounts: the container has no mount namespace of its own, so its {} mounts and /dev are not set up (they would change the host's mount table)",
            plan.mounts.len()
        ));
    }
}

/// systemd socket activation: with LISTEN_FDS=N set for husk, fds 3..3+N go to
/// the container process (before --preserve-fds ones), which is told so by
/// LISTEN_FDS=N and LISTEN_PID=1, as runc does.
fn pass_listen_fds(plan: &mut Plan, n: u32) {
    if n == 0 {
        return;
    }
    let env = &mut plan.process.env;
    env.retain(|e| !e.as_bytes().starts_with(b"LISTEN_FDS=") && !e.as_bytes().starts_with(b"LISTEN_PID="));
    env.push(std::ffi::CString::new(format!("LISTEN_FDS={n}")).expect("no NUL"));
    env.push(std::ffi::CString::new("LISTEN_PID=1").expect("no NUL"));
}

/// The container gets the notify directory of its state dir bound at the
/// directory of its NOTIFY_SOCKET path, and that path in its environment.
/// Read-only, as runc binds it: sending needs no write to the directory, and
/// a writable one would let the container fill root's state dir, or nest
/// directories there that `delete` could not remove.
/// Never inside a bind shared with the host: the directory would be bound
/// over the host's own (the host's /run/systemd for a container sharing
/// /run) and stay there after `delete` (review 57d F3). A symlink of the
/// image leading there is refused when the mount is made.
fn pass_notify_socket(plan: &mut Plan, host: &Path, state_dir: &Path) -> Result<()> {
    let inside = crate::container::notify::container_path(&plan.process.env, host);
    let dir = inside.parent().unwrap_or(Path::new("/")).to_path_buf();
    if let Some(i) = crate::rootfs::shared_bind_holding(plan, &dir) {
        bail!(
            "NOTIFY_SOCKET {}: its directory lies in mounts[{i}] {}, a bind shared with the host, where husk's notify directory would reach the host (set a NOTIFY_SOCKET outside it in process.env)",
            inside.display(),
            plan.mounts[i].destination.display()
        );
    }
    plan.notify_name = inside.file_name().map(|n| n.to_string_lossy().into_owned());
    let flags = libc::MS_RDONLY | libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC;
    plan.mounts.push(crate::rootfs::mounts::MountPlan {
        destination: dir,
        kind: crate::rootfs::mounts::MountKind::Bind {
            source: state_dir.join(crate::container::notify::DIR),
            recursive: false,
        },
        flags,
        attrs: crate::rootfs::mounts::bind_attrs(flags, 0),
        recursive_attrs: Default::default(),
        propagation: Vec::new(),
        data: String::new(),
        idmap: None,
        extensions: Default::default(),
    });
    plan.process
        .env
        .retain(|e| !e.as_bytes().starts_with(b"NOTIFY_SOCKET="));
    let var = format!("NOTIFY_SOCKET={}", inside.display());
    plan.process
        .env
        .push(std::ffi::CString::new(var).expect("a path has no NUL"));
    Ok(())
}

/// The container's record, before its init exists (pid 0): what `create`
/// is about to make, for `delete` to undo.
pub(super) fn describe(
    plan: &Plan,
    args: &CreateOptions,
    notify: Option<&Path>,
    cgroup: crate::cgroups::Record,
) -> Saved {
    Saved {
        oci_version: plan.oci_version.clone(),
        id: args.id.clone(),
        pid: 0,
        start_time: 0,
        bundle: plan.bundle.clone(),
        rootfs: plan.rootfs.clone(),
        created: log::rfc3339(SystemTime::now(), true),
        owner: owner_name(),
        annotations: plan.annotations.clone(),
        hooks: Some(plan.hooks.clone()).filter(|h| *h != Default::default()),
        notify_socket: notify.map(Path::to_path_buf),
        notify_name: notify.and_then(|_| plan.notify_name.clone()),
        // Its directories that exist now are not ours, whatever becomes of
        // this create: never to be killed or removed. A systemd unit is
        // recorded once husk started it: one it did not start is not its to stop.
        cgroup,
        restored: false,
        // A terminal's pty is the container's own (criu dumps it).
        stdio: (!plan.process.terminal).then(crate::criu::own_stdio),
        mount_namespace: None,
        provisional: false,
    }
}

/// What stays the same through one `create` of the init.
#[derive(Clone, Copy)]
struct Creating<'a> {
    plan: &'a Plan,
    locked: &'a Locked,
    args: &'a CreateOptions,
    caller: Caller<'a>,
    /// How long the init may take for each step of its setup (see
    /// `wait::setup_timeout`; the step of its createContainer hooks:
    /// `wait::with_hooks`).
    setup_bound: Option<std::time::Duration>,
    /// Where the pty master the init sends goes.
    console: &'a Console,
}

/// husk's side of a cloned init.
struct Cloned {
    pid: libc::pid_t,
    to_init: InitParent,
    /// husk's CPUs before the clone (see `make_way_for_child`).
    cpus: Option<nix::sched::CpuSet>,
    /// Whether husk makes the cgroup after the clone, while the init builds
    /// the container.
    cgroup_after_clone: bool,
}

fn spawn_init(
    c: Creating,
    preserve_fds: u32,
    mut saved: Saved,
    cgroup: &mut Box<dyn Driver>,
) -> Result<(Saved, Option<EarlyStart>)> {
    let (exec_fifo, early_reader) = make_exec_fifo(c, &saved)?;
    let init = clone_init(c, preserve_fds, exec_fifo, early_reader.as_ref(), cgroup)?;
    let mut guard = InitGuard {
        pid: init.pid,
        armed: true,
        cgroup: None,
    };
    if c.plan.namespaces.pid_joined_late {
        await_pod_inits_first_words(c, &init)?;
    }
    let Some(stat) = sys::process_stat(init.pid) else {
        bail!("container init {} vanished at once", init.pid)
    };
    // Both of us have work to do until it is ready (see cgroup_after_clone).
    // Not when husk will run hooks: moving records a CPU set on husk, which
    // its hooks (and what they leave running) would inherit as a limit.
    if let (Some(cpus), Some(cpu), false) = (&init.cpus, stat.processor, c.plan.has_host_hooks()) {
        sys::process::make_way_for_child(cpus, cpu);
    }
    (saved.pid, saved.start_time) = (init.pid, stat.start_time);
    let born_in = super::members::init_mount_namespace(
        &saved,
        init.pid,
        c.plan.namespaces.is_new(libc::CLONE_NEWNS),
        c.plan.namespaces.is_new(libc::CLONE_NEWPID),
    );
    if let Err(e) = set_up_init(c, &init, &saved, cgroup) {
        return Err(set_up_failed(e, c.plan, &init, &mut guard));
    }
    // What the driver made (none for a best-effort cgroup that could not be made).
    saved.cgroup = cgroup.record();
    guard.cgroup = Some(saved.cgroup.clone());
    let mut moved = None;
    let ready = await_ready(c, &init, &mut guard, &mut saved, &mut moved).and_then(|()| {
        let new_pid_namespace = c.plan.namespaces.is_new(libc::CLONE_NEWPID);
        saved.mount_namespace = super::members::mount_namespace_to_record(&saved, born_in, new_pid_namespace);
        commit(c, &init, &saved, early_reader)
    });
    match ready {
        Ok(early) => {
            guard.armed = false;
            Ok((saved, early))
        }
        Err(e) => {
            // The host's devices go back where they were.
            if let Some(moved) = moved.as_mut() {
                moved.move_back();
            }
            Err(when_init_gone(e, c.plan, &init, &mut guard))
        }
    }
}

/// An error of a word to the init that found its end of the channel
/// closed: the init died (killed from outside, by the OOM killer), and its
/// status says how, as anywhere else in its setup (review 69: "signal
/// container init: Broken pipe" said neither).
fn when_init_gone(e: Error, plan: &Plan, init: &Cloned, guard: &mut InitGuard) -> Error {
    if !matches!(e.errno(), Some(libc::EPIPE | libc::ECONNRESET)) {
        return e;
    }
    sigkill(init.pid);
    init_died(guard.reap(), plan)
}

/// The first words of an init whose process a pod will see, before husk
/// does anything else with it: the end of a channel of its own making
/// (`InitChild::make_own_end`), then, when it joins the pod's pid namespace
/// before it makes its user namespace (`NamespacePlan::userns_after_pid`),
/// that it has (its maps, and the namespaces husk records, come after).
fn await_pod_inits_first_words(c: Creating, init: &Cloned) -> Result<()> {
    let to_init = &init.to_init;
    to_init.hear_from(init.pid);
    let said = to_init.bound_receives(c.setup_bound).and_then(|()| {
        to_init.take_inits_end()?;
        match c.plan.namespaces.userns_after_pid() {
            true => to_init.wait_userns_made(),
            false => Ok(()),
        }
    });
    match (said, c.setup_bound) {
        (Err(e), Some(bound)) if e.kind() == std::io::ErrorKind::WouldBlock => {
            Err(super::wait::stalled("container init", bound))
        }
        (said, _) => said.context(|| "container init".into()),
    }
}

/// Makes the exec fifo in the state directory: what the init gets of it
/// (the write end for `run`, else a path fd to reopen it by), and for `run`
/// the read end.
fn make_exec_fifo(c: Creating, saved: &Saved) -> Result<(ExecFifo, Option<OwnedFd>)> {
    let fifo_path = c.locked.dir.join(FIFO);
    let fifo = sys::cstring(&fifo_path)?;
    nix::unistd::mkfifo(fifo.as_c_str(), nix::sys::stat::Mode::from_bits_truncate(0o600))
        .map_err(std::io::Error::from)
        .context(|| "create exec fifo".into())?;
    // Writable by an init that is root of a user namespace (an "other" to the
    // host), readable only by the owner: nobody else can trigger `start`. No
    // other user reaches it: the state directory is the owner's alone.
    std::fs::set_permissions(&fifo_path, std::os::unix::fs::PermissionsExt::from_mode(0o622))
        .context(|| "chmod exec fifo".into())?;
    // The init holds only the fifo until `start`, never the state directory:
    // a container process that can read the init's fds must find nothing
    // there to climb out of with "..".
    Ok(match open_exec_fifo_early(c.plan, saved, c.caller) {
        true => {
            let reader = super::start::open_fifo(&fifo_path)?;
            let writer = sys::openat(libc::AT_FDCWD, &fifo, libc::O_WRONLY | libc::O_NONBLOCK, 0)
                .context(|| format!("open {}", fifo_path.display()))?;
            (ExecFifo::Writer(writer), Some(reader))
        }
        false => (
            ExecFifo::Path(sys::openat(libc::AT_FDCWD, &fifo, libc::O_PATH, 0)?),
            None,
        ),
    })
}

/// What husk does and takes just before it clones the init, for the clone.
struct ForClone {
    /// Whether husk makes the cgroup after the clone (see `Cloned`).
    cgroup_after_clone: bool,
    /// The idmapped mounts' trees, and the notify directory's.
    premounted: Vec<Option<OwnedFd>>,
    /// Which of `premounted` is mounted before the pivot (the notify directory).
    clone_before_root: Option<usize>,
    /// process.oomScoreAdj, set on husk for the clone to inherit.
    oom_score_adj: OomScoreAdjForClone,
    /// The cgroup the clone is born in (CLONE_INTO_CGROUP).
    into: Option<std::fs::File>,
    /// The files through which the init places itself in its cgroup.
    placement: Option<SelfPlacement>,
}

/// The cgroup (unless it is made after the clone), the mounts prepared
/// outside, the oom score, the namespaces husk enters for the clone to be
/// born in, and where the init's cgroup is joined: in this order.
fn prepare_clone(plan: &Plan, state_dir: &Path, cgroup: &mut Box<dyn Driver>) -> Result<ForClone> {
    // On a v1 host the cgroup is made while the init builds the container
    // (its namespaces and mounts take longer), which waits for it only where
    // the cgroup counts: before a cgroup mount, the hooks, and Ready.
    let cgroup_after_clone = cgroup.places_after_clone();
    if !cgroup_after_clone {
        make_cgroup(plan, cgroup)?;
        log::step("cgroup made");
    }
    warn_unmounted(plan);
    let mut premounted = crate::rootfs::premounted_trees(plan)?;
    let clone_before_root = premount_notify_dir(plan, state_dir, &mut premounted)?;
    let oom_score_adj = OomScoreAdjForClone::set(&plan.process.attrs)?;
    plan.namespaces.enter_before_clone(!plan.rootless, false)?;
    if plan.namespaces.is_new(libc::CLONE_NEWTIME) && plan.userns.is_none() {
        // The clone is born in it. With a new user namespace the init makes
        // it (`new_time_namespace`), so that the container's user namespace
        // owns it.
        crate::process::namespaces::new_time_namespace(&plan.time_offsets, false)?;
    }
    let into = cgroup.clone_into()?;
    let placement = match cgroup_after_clone {
        true => None,
        false => cgroup.self_placement()?,
    };
    Ok(ForClone {
        cgroup_after_clone,
        premounted,
        clone_before_root,
        oom_score_adj,
        into,
        placement,
    })
}

/// Clones the init into its namespaces (and, where the driver can, its
/// cgroup); the clone runs `init::run` and never returns here.
fn clone_init(
    c: Creating,
    preserve_fds: u32,
    exec_fifo: ExecFifo,
    early_reader: Option<&OwnedFd>,
    cgroup: &mut Box<dyn Driver>,
) -> Result<Cloned> {
    let plan = c.plan;
    let (to_init, init_end) = channel::init_channel()?;
    let ForClone {
        cgroup_after_clone,
        premounted,
        clone_before_root,
        oom_score_adj,
        into,
        mut placement,
    } = prepare_clone(plan, &c.locked.dir, cgroup)?;
    // Inherited by the init: non-dumpable from birth until it execs. Not when
    // a husk other than root writes the maps of its new user namespace, which
    // needs it dumpable (its /proc files would belong to root of husk's user
    // namespace); it makes itself non-dumpable once it has them. Root, of the
    // host or of a manager's user namespace (podman's rootless mode), writes
    // them either way. A dumpable init is open to every process of husk's
    // user namespace with husk's uid, which has all rights in the init's new
    // one: a pod process of the manager's user namespace would reach the
    // host's root through its /proc/PID/root, or its fds (the state
    // directory's lock among them), until it has its maps.
    if plan.userns.is_none() || nix::unistd::geteuid().is_root() {
        sys::set_non_dumpable();
    }
    let flags = plan.namespaces.clone_flags();
    let cpus = sys::process::own_affinity();
    let entered = match plan.parent_joins_before_new_userns() {
        true => Some(EnteredForClone::enter(&plan.namespaces)?),
        false => None,
    };
    // SAFETY: husk is single-threaded; the child only runs init::run and exits.
    #[allow(unsafe_code)]
    let pid = sys::process::clone_with_strings_blanked(b"husk\0init", || unsafe {
        SelfPlacement::clone_with(placement.as_mut(), flags, into.as_ref().map(|f| f.as_raw_fd()))
    });
    // In the init too: husk's namespaces are not the container's to hold.
    let returned = match (entered, &pid) {
        (Some(entered), Ok(pid)) if *pid != 0 => entered.leave(),
        (Some(entered), Err(_)) => entered.leave(),
        // The init closes ours at once.
        _ => Ok(()),
    };
    let pid = pid.context(|| "clone container init".into())?;
    returned?;
    drop(into);
    match pid {
        0 => oom_score_adj.forget(),
        _ => oom_score_adj.restore(),
    }
    if pid == 0 {
        drop(to_init);
        init::run(InitArgs {
            plan,
            channel: init_end,
            exec_fifo,
            preserve_fds,
            close: [Some(c.locked.lock_fd()), early_reader.map(|r| r.as_raw_fd())]
                .into_iter()
                .flatten()
                .collect(),
            premounted,
            clone_before_root,
            cgroup: cgroup.cgroup().map(|c| c.path.clone()),
            placement,
            cgroup_after_clone,
        });
    }
    drop(placement);
    drop(init_end);
    // Ours closed: the init's end alone tells `start` whether it exec'd.
    drop(exec_fifo);
    log::step("init cloned");
    Ok(Cloned {
        pid,
        to_init,
        cpus,
        cgroup_after_clone,
    })
}

/// husk's half of the init's setup, while the init does its own: the state
/// that names the init, its uid/gid maps, its cgroup, the config as it was.
fn set_up_init(c: Creating, init: &Cloned, saved: &Saved, cgroup: &mut Box<dyn Driver>) -> Result<()> {
    let (plan, locked, to_init) = (c.plan, c.locked, &init.to_init);
    locked.record(saved)?;
    if let Some(userns) = &plan.userns {
        // The init waits for its maps before it does anything.
        crate::process::userns::write_maps(init.pid, userns)?;
        to_init.send_maps_written().context(|| "signal container init".into())?;
        log::step("uid/gid maps written");
    }
    if init.cgroup_after_clone {
        make_cgroup(plan, cgroup)?;
        let tasks = match cgroup.self_placement()? {
            Some(placement) => placement.into_tasks()?,
            // Given up (unprivileged, best effort): no cgroup to join.
            None if cgroup.cgroup().is_none() => Vec::new(),
            None => bail!("container cgroup: no files through which the init could join it"),
        };
        // Sent first: the init moves itself while the cgroup tmpfs is built.
        to_init.send_tasks(&tasks).context(|| "signal container init".into())?;
        drop(tasks);
        let tree = match cgroup.cgroup() {
            Some(c) => crate::rootfs::cgroup_tree_for_init(plan, &c.path),
            None => None,
        };
        to_init
            .send_placed_with(tree.as_ref())
            .context(|| "signal container init".into())?;
        log::step("cgroup made, its files handed to the init");
    } else if plan.parent_places_cgroup() {
        // The first migration on cgroup v1 waits for an RCU grace period (~10 ms):
        // the init sets up its mounts meanwhile, and waits only where it must.
        let mut recorded = |cgroup: &crate::cgroups::Record| {
            let cgroup = cgroup.clone();
            locked.record(&Saved {
                cgroup,
                ..saved.clone()
            })
        };
        cgroup.place(init.pid, &mut recorded)?;
        to_init.send_placed().context(|| "signal container init".into())?;
        log::step("init placed in its cgroup");
    }
    // exec reads the config as it was at create. Written while the init
    // sets up, not after.
    state::write_atomic(&locked.dir.join("config.json"), plan.config_text.as_bytes(), 0o600)
}

/// The error of a failed [`set_up_init`]. The init may be waiting for us:
/// it is killed first, so that the read of its end finds either why it
/// failed on its own (said before it exited) or the end of the socket,
/// never a wait.
fn set_up_failed(e: Error, plan: &Plan, init: &Cloned, guard: &mut InitGuard) -> Error {
    sigkill(init.pid);
    let status = guard.reap();
    let gone = matches!(e.errno(), Some(libc::EPIPE | libc::ECONNRESET));
    match init.to_init.failure() {
        Some(said) => Error::new(said),
        // Its end closed under us: it had died (how is its status).
        None if gone => init_died(status, plan),
        None => e,
    }
}

/// Whether the init's end of the channel closed (it died) or has something
/// to say while it waits for us.
fn init_went_away(to_init: &InitParent) -> bool {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    let mut fds = [PollFd::new(to_init.as_fd(), PollFlags::POLLIN)];
    poll(&mut fds, PollTimeout::ZERO).is_ok_and(|n| n > 0)
}

/// Answers the init until it is ready: the network devices moved in (into
/// `moved`, for the caller to move back should create fail later), the
/// prestart and createRuntime hooks when it asks, its seccomp fd for the
/// listener, and the pid of the process it started in a pid namespace it
/// joined late, which takes its place.
fn await_ready(
    c: Creating,
    init: &Cloned,
    guard: &mut InitGuard,
    saved: &mut Saved,
    moved: &mut Option<crate::netdev::Moved>,
) -> Result<()> {
    let to_init = &init.to_init;
    let mut bound = c.setup_bound;
    to_init
        .bound_receives(bound)
        .context(|| "bound the wait for container init".into())?;
    // A listener's notify fd that waits for the pid of the process it is for.
    let held_listener_fd = &mut None;
    loop {
        match next_from_init(c, to_init, bound)? {
            FromInit::Ready => {
                c.console.check_received()?;
                log::step("init ready");
                return Ok(());
            }
            FromInit::RunHooks => {
                // Steps 3-5 of the spec's lifecycle come after step 2, the last
                // one it calls `creating` (crun and runtime-tools agree; runc
                // says `creating`).
                let state = saved.hook_state("created");
                let h = &c.plan.hooks;
                run_hooks(c.caller, &c.args.id, "prestart", h.prestart().as_deref(), &state)?;
                run_hooks(
                    c.caller,
                    &c.args.id,
                    "createRuntime",
                    h.create_runtime().as_deref(),
                    &state,
                )?;
                log::step("prestart and createRuntime hooks run");
                if let Some(hooks) = h.create_container().as_ref().filter(|hooks| !hooks.is_empty()) {
                    // The init runs them next, then says so (HooksRun): the
                    // wait is as long as their timeouts, unbounded when one has none.
                    bound = super::wait::with_hooks(c.setup_bound, hooks);
                    to_init
                        .bound_receives(bound)
                        .context(|| "bound the wait for container init".into())?;
                }
                to_init
                    .send_hook_state(&state)
                    .context(|| "signal container init".into())?;
            }
            FromInit::SeccompFd(fd) => {
                // At once, as runc (state `creating`): the init's next calls
                // may be ones the listener must answer. But for the process
                // a pod member's init is about to clone (born confined): its
                // pid, which the listener is told, comes next.
                let listener = c.plan.seccomp.as_ref().and_then(|s| s.listener.as_ref());
                match listener {
                    Some(_) if crate::process::init::born_confined_in_pod(c.plan) && guard.pid == init.pid => {
                        *held_listener_fd = Some(fd)
                    }
                    Some(listener) => send_to_listener(listener, &fd, saved, Status::Creating)?,
                    None => {}
                }
            }
            // The init started the container's process in the pid namespace it
            // joins late, and exits: that process is the container's init now.
            FromInit::Pid(process) if guard.pid == init.pid && sys::is_own_child(process) => {
                to_init.hear_only(process);
                guard.end_first_init();
                *guard = InitGuard {
                    pid: process,
                    armed: true,
                    cgroup: Some(saved.cgroup.clone()),
                };
                let Some((start_time, _)) = sys::process_start(process) else {
                    bail!("container process {process} vanished at once")
                };
                (saved.pid, saved.start_time) = (process, start_time);
                c.locked.record(saved)?;
                let listener = c.plan.seccomp.as_ref().and_then(|s| s.listener.as_ref());
                if let (Some(listener), Some(fd)) = (listener, held_listener_fd.take()) {
                    send_to_listener(listener, &fd, saved, Status::Creating)?;
                }
            }
            FromInit::Logged => {}
            FromInit::Master(master) => c.console.pass_on(master)?,
            FromInit::HooksRun => {
                bound = c.setup_bound;
                to_init
                    .bound_receives(bound)
                    .context(|| "bound the wait for container init".into())?;
            }
            FromInit::NetReady => {
                let netns = crate::netdev::namespace_of(&c.plan.namespaces, guard.pid)?;
                let alive = || !init_went_away(to_init);
                *moved = Some(crate::netdev::move_into(&c.plan.net_devices, &netns, &alive)?);
                to_init.send_net_moved().context(|| "signal container init".into())?;
            }
            // The guard kills and reaps it, bounded: one stopped on its way
            // out (a host process with its uid) is not waited for.
            FromInit::Failed(e) => return Err(Error::new(e)),
            FromInit::Pid(process) => bail!("container init sent an unexpected message: pid {process}"),
            FromInit::Exited => {
                let status = guard.reap();
                return Err(init_died(status, c.plan));
            }
        }
    }
}

/// The init's next word, within `bound`; an ending signal ends the wait too.
fn next_from_init(c: Creating, to_init: &InitParent, bound: Option<std::time::Duration>) -> Result<FromInit> {
    let stalled = |bound| super::wait::stalled("container init", bound);
    let deadline = bound.map(|b| std::time::Instant::now() + b);
    let readable = c
        .caller
        .endings()
        .until_readable(to_init.as_fd(), deadline)
        .map_err(|sig| c.caller.ended_by(&c.args.id, sig))?;
    if let (false, Some(bound)) = (readable, bound) {
        return Err(stalled(bound));
    }
    match (to_init.recv_setup(), bound) {
        (Err(e), Some(bound)) if e.kind() == std::io::ErrorKind::WouldBlock => Err(stalled(bound)),
        (received, _) => received.context(|| "read from container init".into()),
    }
}

/// Commits the ready container's record (and the pid file), then lets the
/// init go on; for `run`, what it takes before (see `EarlyStart`).
fn commit(c: Creating, init: &Cloned, saved: &Saved, early_reader: Option<OwnedFd>) -> Result<Option<EarlyStart>> {
    // The last moment at which an ending signal undoes the create: once the
    // init is let go, the container is made.
    if let Some(e) = c.caller.ended(&c.args.id) {
        return Err(e);
    }
    c.locked.commit(saved)?;
    let early = match early_reader {
        Some(fifo) => Some(EarlyStart::new(fifo, saved.pid)?),
        None => None,
    };
    if let Some(p) = &c.args.pid_file {
        let path = absolute(p)?;
        state::write_atomic(&path, saved.pid.to_string().as_bytes(), 0o644)?;
    }
    // An init that died meanwhile (the OOM killer, a host kill) fails the
    // create: its pid, free for another process, must not stay in the file.
    detach(&init.to_init).inspect_err(|_| remove_pid_file(c.args.pid_file.as_deref(), saved.pid))?;
    log::step("state committed, init detached");
    Ok(early)
}

/// The pid file of a create or run that failed once it was written goes,
/// while it names the container's init: a caller told of the failure must
/// not find a pid that another process may take (runc writes it only once
/// it has succeeded).
pub(super) fn remove_pid_file(pid_file: Option<&Path>, pid: libc::pid_t) {
    let Some(path) = pid_file.and_then(|p| absolute(p).ok()) else {
        return;
    };
    if std::fs::read_to_string(&path).is_ok_and(|text| text.trim() == pid.to_string()) {
        let _ = std::fs::remove_file(&path);
    }
}

/// The NOTIFY_SOCKET directory inside the state directory, cloned here for
/// an init in a user namespace: as the user it is there, it could not pass
/// through the state directory (the owner's alone) to bind it by path.
/// An unprivileged husk may not clone a mount: then the index of that mount,
/// which the init clones itself while it still has the user's ids.
fn premount_notify_dir(plan: &Plan, dir: &Path, premounted: &mut [Option<OwnedFd>]) -> Result<Option<usize>> {
    if plan.notify_name.is_none() || !plan.in_userns() {
        return Ok(None);
    }
    let source = dir.join(crate::container::notify::DIR);
    let is_notify = |m: &crate::rootfs::mounts::MountPlan| matches!(&m.kind, crate::rootfs::mounts::MountKind::Bind { source: s, .. } if *s == source);
    // None without a mount namespace of its own: nothing is mounted then.
    let Some((index, slot)) = plan
        .mounts
        .iter()
        .position(is_notify)
        .and_then(|i| Some((i, premounted.get_mut(i)?)))
    else {
        return Ok(None);
    };
    match sys::open_tree(&sys::cstring(&source)?, sys::OPEN_TREE_CLONE) {
        Ok(tree) => {
            crate::rootfs::slave_of_host(&tree).context(|| format!("bind {}", source.display()))?;
            *slot = Some(tree)
        }
        Err(e) if e.raw_os_error() == Some(libc::EPERM) && !nix::unistd::geteuid().is_root() => return Ok(Some(index)),
        Err(e) => return Err(e).context(|| format!("bind {}", source.display())),
    }
    Ok(None)
}

/// Whether `run` opens the read end of the exec fifo before the clone, and
/// hands the init the write end (and takes the init's pidfd, `EarlyStart`,
/// before it lets the init go on): the init then does not wait for `start`,
/// needs no procfs to reopen the fifo through, and nothing that can fail is
/// left between the init going on and its program. Never
/// for `create`, whose init must wait for `start`; nor where `start` has
/// work of its own to do before the program runs (bind the NOTIFY_SOCKET
/// relay) or a terminal (its master comes after).
fn open_exec_fifo_early(plan: &Plan, saved: &Saved, caller: Caller) -> bool {
    matches!(caller, Caller::Run(_)) && saved.notify_name.is_none() && !plan.process.terminal
}

/// Lets the committed init go on: until it reads this, the end of our socket
/// (our death) makes it exit, so a `create` killed at any point before leaves
/// no init that no record names; after, the state names it.
fn detach(to_init: &InitParent) -> Result<()> {
    to_init.send_committed().context(|| "signal container init".into())
}

/// How long the seccomp agent may take to accept husk's connection and take
/// the whole message, together: `create` holds the container's lock meanwhile.
const LISTENER_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Hands the seccomp notify fd to the listener with the container's state
/// (`status`: creating for the init, running for an exec process), in
/// runc's format (`ContainerProcessState`, whose pid is the init's for an
/// exec process too, as runc has it).
pub(super) fn send_to_listener(
    listener: &crate::seccomp::Listener,
    fd: &OwnedFd,
    saved: &Saved,
    status: Status,
) -> Result<()> {
    let path = &listener.path;
    // One bound for the connect and the send (review 46d F1).
    let deadline = std::time::Instant::now() + LISTENER_TIMEOUT;
    let stream = match sys::fs::connect_within(path, LISTENER_TIMEOUT) {
        Ok(stream) => stream,
        Err(nix::errno::Errno::EAGAIN) => bail!(
            "linux.seccomp.listenerPath {}: the agent did not accept within {}s",
            path.display(),
            LISTENER_TIMEOUT.as_secs()
        ),
        Err(e) => {
            return Err(std::io::Error::from(e)).context(|| format!("linux.seccomp.listenerPath {}", path.display()))
        }
    };
    let message = serde_json::json!({
        "ociVersion": saved.oci_version,
        "fds": ["seccompFd"],
        "pid": saved.pid,
        "metadata": listener.metadata,
        "state": saved.oci_state(status),
    });
    let message = message.to_string();
    channel::send_all_with_fd(&stream, message.as_bytes(), fd, deadline).map_err(|(e, sent)| {
        let why = match e.raw_os_error() {
            Some(libc::EAGAIN) | None => format!("the agent did not read it within {}s", LISTENER_TIMEOUT.as_secs()),
            _ => e.to_string(),
        };
        Error::new(format!(
            "linux.seccomp.listenerPath {}: send the seccomp fd and the state: {sent} of {} bytes sent: {why}",
            path.display(),
            message.len()
        ))
    })
}

/// --pid-file names a file that husk replaces (renames a new one over):
/// one that is there and is neither a regular file nor a link (a link is
/// replaced, not followed) would be lost, as the host's /dev/null was to
/// `--pid-file /dev/null` (runc the same; review 46). Refused before
/// anything is made.
pub(super) fn check_pid_file(p: Option<&Path>) -> Result<()> {
    let Some(p) = p else {
        return Ok(());
    };
    let path = absolute(p)?;
    match std::fs::symlink_metadata(&path) {
        Ok(m) if !m.is_file() && !m.is_symlink() => bail!(
            "--pid-file {}: there already and not a regular file: not replaced",
            path.display()
        ),
        _ => Ok(()),
    }
}

/// Where a `--pid-file` goes: `p` made absolute and cleaned of `.` and `..`
/// by its text, as runc's filepath.Clean does, so that a `..` after a link
/// the container planted in the path stays where the caller's text says.
pub(super) fn absolute(p: &Path) -> Result<PathBuf> {
    let joined = match p.is_absolute() {
        true => p.to_path_buf(),
        false => std::env::current_dir()?.join(p),
    };
    Ok(crate::rootfs::lexically_clean(&joined))
}

fn owner_name() -> String {
    let uid = nix::unistd::geteuid().as_raw();
    crate::process::userns::user_name(uid).unwrap_or_else(|| uid.to_string())
}

/// Creates the container: validates the bundle, builds the container in new
/// namespaces and leaves its init waiting for [`start`](super::start). Returns the init's
/// pid; the init is a child of the caller (see [`wait`](super::wait)).
///
/// The caller must be single-threaded: the init is a clone of it. Unless the
/// program already runs from a read-only or sealed copy of its binary, the
/// first call makes one its executable (see [`crate::process::seal`]): in
/// place as root, otherwise by re-executing the program, and then it never
/// returns: call [`ensure_sealed`](crate::process::seal::ensure_sealed)
/// first thing in `main` to have that happen before anything else.
///
/// An ending signal (INT, TERM, HUP, QUIT) that the caller neither blocks nor
/// ignores is held meanwhile: one that comes fails the create, which undoes
/// what it made, and is raised again as it returns.
pub fn create(store: &Store, args: &CreateOptions, mode: Mode) -> Result<libc::pid_t> {
    crate::process::seal::ensure_sealed()?;
    // Taken again, once what was made is undone, if one ended the create.
    let held = Held::unheld();
    let created = spawn(store, args, mode, Caller::Create(&held)).map(|s| s.saved.pid);
    held.outcome(&created);
    created
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pid_file_paths_are_cleaned_by_their_text() {
        let clean = |p: &str| crate::rootfs::lexically_clean(Path::new(p));
        assert_eq!(clean("/a/link/../p"), PathBuf::from("/a/p"));
        assert_eq!(clean("/a/./b//p"), PathBuf::from("/a/b/p"));
        assert_eq!(clean("/../../p"), PathBuf::from("/p"));
        assert_eq!(clean("/a/b/.."), PathBuf::from("/a"));
        assert_eq!(
            absolute(Path::new("x/../p")).unwrap(),
            std::env::current_dir().unwrap().join("p")
        );
    }
}
