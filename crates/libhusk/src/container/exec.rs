//! `exec`: a new process in a running container. It joins every namespace of
//! the container's init (user and pid through the parent, the rest in the
//! child), gets the container's seccomp filter, capabilities and no_new_privs
//! as its process spec says, and runs in the foreground (status, signals, a
//! proxied terminal) or detached. This is the caller's side; the child's is
//! `process/exec.rs`, and the channel between them `process/channel.rs`.

use std::os::fd::{AsRawFd, OwnedFd};
use std::path::PathBuf;

use oci_spec::runtime::{Capability, Process, Spec};

use crate::bail;
use crate::cgroups::exec::{SubCgroups, Targets};
use crate::cgroups::place::SelfPlacement;
use crate::container;
use crate::container::endings::{Endings, Held};
use crate::container::foreground::Foreground;
use crate::container::stdio::Console;
use crate::error::{Context, Error, Result};
use crate::process::attrs::OomScoreAdjForClone;
use crate::process::capabilities;
use crate::process::channel::{self, ExecOutcome, ExecParent, FromJoiner};
use crate::process::exec::{join_and_spawn, ExecArgs};
use crate::process::namespaces::{Join, NamespacePlan};
use crate::seccomp;
use crate::spec;
use crate::state::{self, Status, Store};
use crate::sys;

/// The namespaces of the init, in the order the child enters them (mount last).
const NAMESPACES: [(&str, i32); 8] = [
    ("user", libc::CLONE_NEWUSER),
    ("pid", libc::CLONE_NEWPID),
    ("ipc", libc::CLONE_NEWIPC),
    ("uts", libc::CLONE_NEWUTS),
    ("net", libc::CLONE_NEWNET),
    ("cgroup", libc::CLONE_NEWCGROUP),
    ("time", libc::CLONE_NEWTIME),
    ("mnt", libc::CLONE_NEWNS),
];

/// Runs a new process in the running container `a.id`; in the foreground,
/// waits for it and returns its exit status (128 + N when signal N killed
/// it); detached, returns 0 once it runs.
///
/// As for [`create`](super::create), the caller must be single-threaded and
/// may be re-executed once from a read-only copy of its binary; in the
/// foreground it also blocks the signals it forwards and becomes a child
/// subreaper, as [`run`](super::run) does.
pub fn exec(store: &Store, a: &ExecOptions, mode: container::Mode) -> Result<i32> {
    crate::process::seal::ensure_sealed()?;
    crate::log::begin("exec");
    container::hold_passed_fds(a.preserve_fds, 0)?;
    let saved = store.load(&a.id)?;
    container::create::check_pid_file(a.pid_file.as_deref())?;
    // An init that is exiting fails what comes in its own words (its root is
    // gone, its pid namespace takes no new process: ENOMEM): say what it means.
    exec_in(store, a, mode, &saved).map_err(|e| match saved.init_exiting() {
        true => Error::new(format!(
            "cannot exec in container \"{}\": it is stopping (its init has exited)",
            a.id
        )),
        false => e,
    })
}

fn exec_in(store: &Store, a: &ExecOptions, mode: container::Mode, saved: &crate::state::Saved) -> Result<i32> {
    let setup_bound = container::wait::setup_timeout()?;
    let dir = store.dir(&a.id);
    let status = state::status_of(&dir, saved);
    match status {
        Status::Stopped => bail!(
            "cannot exec in a stopped container: container not running: \"{}\"",
            a.id
        ),
        Status::Paused if !a.ignore_paused => bail!("cannot exec in a paused container: container paused"),
        _ => {}
    }
    let sub_cgroups = SubCgroups::parse(&a.cgroup)?;
    let planned = plan_exec(store, a, mode.rootless, &dir)?;
    crate::log::step("state and config loaded, process planned, seccomp filter ready");
    let cgroup = Targets::of(&saved.cgroup, &sub_cgroups)?;
    let _alive = container::open_init(saved)?;
    let entry = open_init_entry(a, saved, status)?;
    crate::log::step("init's namespaces opened");
    let console = Console::for_process(planned.plan.terminal, a.console_socket.as_deref(), !a.detach)?;
    let foreground = if a.detach { None } else { Some(Foreground::prepare()?) };
    // Detached, an ending signal ends the exec (its processes killed), then
    // is raised again.
    let held = a.detach.then(Held::unheld);
    let endings = (held.as_ref().map(Endings::Held)).or(foreground.as_ref().map(Endings::Foreground));
    if let Some(held) = &held {
        held.hold()?;
    }
    let started = (|| {
        let joiner = clone_joiner(&planned, a, &entry, &cgroup)?;
        let bounded = joiner.to_child.bound_receives(setup_bound);
        bounded.context(|| "bound the wait for the exec process".into())?;
        // The joiner goes into the container's cgroups, and the exec process it
        // starts is born there. Unprivileged, the cgroups are usually not ours to
        // write: best effort then, unless --cgroup asked for a particular one.
        if !joiner.self_placed {
            let best_effort = planned.rootless && sub_cgroups == SubCgroups::None;
            place_joiner(&joiner, &cgroup, saved.pid, best_effort)?;
            crate::log::step("joiner placed in the container's cgroups");
        }
        let listener = planned.filter.as_ref().and_then(|f| f.listener.as_ref());
        await_exec_process(a, &joiner, (listener, saved), &console, (endings, setup_bound))
    })();
    if let Some(held) = &held {
        held.outcome(&started);
    }
    let pid = started?;
    let master = console.into_master();
    match foreground {
        None => Ok(0),
        Some(fg) => fg.wait(pid, master, None),
    }
}

/// The exec process as planned from the container's config as it was at
/// create and exec's options.
struct Planned {
    plan: spec::ProcessPlan,
    filter: Option<seccomp::SeccompPlan>,
    last_cap: u8,
    rootless: bool,
}

fn plan_exec(store: &Store, a: &ExecOptions, rootless: bool, dir: &std::path::Path) -> Result<Planned> {
    let text = std::fs::read_to_string(dir.join("config.json")).context(|| format!("container \"{}\" config", a.id))?;
    let spec = spec::parse(&text)?;
    let process = exec_process(&spec, a)?;
    let linux = spec::linux_or_empty(&spec);
    let opts = spec::Options {
        id: &a.id,
        no_pivot: false,
        new_keyring: false,
        rootless,
        systemd_cgroup: false,
        root: store.root().to_path_buf(),
    };
    let last_cap = capabilities::last_cap();
    let plan = spec::process_plan(&process, &linux, &opts, last_cap)?;
    let cache = store.root().join(crate::state::CACHE_DIR);
    let filter = linux
        .seccomp()
        .as_ref()
        .map(|s| seccomp::compile_cached(s, &cache))
        .transpose()?;
    Ok(Planned {
        plan,
        filter,
        last_cap,
        rootless,
    })
}

/// The init's namespaces, and its root when it has no mount namespace of
/// its own (it only chrooted: so does the exec).
struct InitEntry {
    namespaces: NamespacePlan,
    root: Option<OwnedFd>,
}

fn open_init_entry(a: &ExecOptions, saved: &crate::state::Saved, status: Status) -> Result<InitEntry> {
    let namespaces = init_namespaces(saved.pid).map_err(|e| match (status, e.errno()) {
        // The waiting init is not dumpable, so that nothing of the container
        // reaches husk through it: /proc/PID/ns is root's until it execs.
        (Status::Created, Some(libc::EACCES | libc::EPERM)) => Error::new(format!(
            "cannot exec in container \"{}\" before it is started: its init, waiting for `start`, \
             cannot be entered unprivileged ({e})",
            a.id
        )),
        _ => e,
    })?;
    let root = (!namespaces.has(libc::CLONE_NEWNS))
        .then(|| init_root(saved.pid))
        .transpose()?;
    // Alive after the opens (the pidfd keeps the pid from reuse until we
    // exit): the namespaces and root are the init's.
    if !saved.init_alive() {
        return Err(Error::not_running(&a.id));
    }
    Ok(InitEntry { namespaces, root })
}

/// husk's side of the cloned joiner.
struct Joiner {
    pid: libc::pid_t,
    to_child: ExecParent,
    /// It moves itself into the container's cgroups (else husk moves it).
    self_placed: bool,
}

/// Clones the joiner, which enters the init's namespaces and starts the exec
/// process; the clone runs `join_and_spawn` and never returns here.
fn clone_joiner(planned: &Planned, a: &ExecOptions, entry: &InitEntry, cgroup: &Targets) -> Result<Joiner> {
    let (to_child, child_end) = channel::exec_channel()?;
    // Privileged, the joiner moves itself into the container's cgroups where
    // it can (see cgroups::place); unprivileged, husk tries it (best effort).
    let mut placement = match planned.rootless {
        true => None,
        false => cgroup.self_placement()?,
    };
    let self_placed = placement.is_some();
    let husk_pid = std::process::id() as libc::pid_t;
    crate::log::step("stdio, signals and cgroup files ready");
    let oom_score_adj = OomScoreAdjForClone::set(&planned.plan.attrs)?;
    // Inherited by every clone: the exec process is non-dumpable from birth to execve.
    sys::set_non_dumpable();
    // SAFETY: husk is single-threaded; the child only runs `join_and_spawn` and exits.
    #[allow(unsafe_code)]
    let pid = sys::process::clone_with_strings_blanked(b"husk\0exec", || unsafe {
        SelfPlacement::clone_with(placement.as_mut(), 0, None)
    })
    .context(|| "clone exec process".into())?;
    match pid {
        0 => oom_score_adj.forget(),
        _ => oom_score_adj.restore(),
    }
    if pid == 0 {
        drop(to_child);
        join_and_spawn(ExecArgs {
            plan: &planned.plan,
            filter: planned.filter.as_ref(),
            last_cap: planned.last_cap,
            namespaces: &entry.namespaces,
            root: entry.root.as_ref(),
            rootless: planned.rootless,
            channel: child_end,
            preserve_fds: a.preserve_fds,
            placement,
            parent: husk_pid,
        });
    }
    drop(placement);
    drop(child_end);
    to_child.hear_from(pid);
    crate::log::step("joiner cloned");
    Ok(Joiner {
        pid,
        to_child,
        self_placed,
    })
}

/// Moves the joiner into the container's cgroups and tells it so.
fn place_joiner(joiner: &Joiner, cgroup: &Targets, init: libc::pid_t, best_effort: bool) -> Result<()> {
    let joined = cgroup
        .join(joiner.pid, init)
        .or_else(|e| if best_effort { Ok(()) } else { Err(e) })
        .and_then(|()| take_joiners_end(joiner))
        .and_then(|()| joiner.to_child.send_placed().context(|| "signal exec process".into()));
    if let Err(e) = joined {
        // Stop the joiner first (it may be waiting to be placed), then read
        // why it failed if it did so on its own before.
        container::wait::sigkill(joiner.pid);
        container::wait::wait_status_within(joiner.pid, container::wait::EXIT_WAIT);
        return Err(joiner.to_child.failure().map(Error::new).unwrap_or(e));
    }
    Ok(())
}

/// Until the joiner has handed over the end of a channel of its own making
/// (bounded: `bound_receives`); at once when it has.
fn take_joiners_end(joiner: &Joiner) -> Result<()> {
    joiner.to_child.take_joiners_end().map_err(|e| match e.kind() {
        std::io::ErrorKind::WouldBlock => {
            Error::new("exec: the process that joins the container's namespaces did not start")
        }
        _ => Error::new(format!("exec: {e}")),
    })
}

/// Waits for the joiner's exec process to exec its program: its pid. The
/// whole within `bound` (a stream of `--debug` lines forged into the channel
/// held husk as long as the container liked when each line restarted it,
/// review 60 F4): past it, or on an ending signal, the processes husk knows
/// are ended; one the joiner cloned and did not name yet exits by itself
/// when husk's end of the channel closes, before its program runs
/// (`run_program` waits for our go).
fn await_exec_process(
    a: &ExecOptions,
    joiner: &Joiner,
    (listener, saved): (Option<&seccomp::Listener>, &crate::state::Saved),
    console: &Console,
    (endings, bound): (Option<Endings>, Option<std::time::Duration>),
) -> Result<libc::pid_t> {
    let to_child = &joiner.to_child;
    take_joiners_end(joiner).inspect_err(|_| end_known(&[joiner.pid]))?;
    let deadline = bound.map(|b| std::time::Instant::now() + b);
    let stalled = |pids: &[libc::pid_t]| {
        end_known(pids);
        container::wait::stalled("exec process", bound.unwrap_or_default())
    };
    let timed_out = |e: &std::io::Error| bound.is_some() && e.kind() == std::io::ErrorKind::WouldBlock;
    let readable = |pids: &[libc::pid_t]| {
        if deadline.is_some_and(|d| std::time::Instant::now() >= d) {
            return Err(stalled(pids));
        }
        let Some(endings) = endings else { return Ok(()) };
        match endings.until_readable(to_child.as_fd(), deadline) {
            Err(sig) => Err(end_unstarted(&a.id, pids, endings, sig)),
            Ok(false) => Err(stalled(pids)),
            Ok(true) => Ok(()),
        }
    };
    let said = loop {
        readable(&[joiner.pid])?;
        match to_child.recv_spawned() {
            Ok(FromJoiner::Logged) => {}
            Ok(FromJoiner::SeccompFd(fd)) => {
                let Some(listener) = listener else {
                    end_known(&[joiner.pid]);
                    bail!(
                        "exec: a seccomp fd from the process that joins the container's namespaces, with no listener"
                    );
                };
                // The joiner waits for our word: it clones the exec process
                // only once the agent has the fd.
                let handed = super::create::send_to_listener(listener, &fd, saved, Status::Running).and_then(|()| {
                    to_child
                        .send_seccomp_fd_taken()
                        .context(|| "signal exec process".into())
                });
                handed.inspect_err(|_| end_known(&[joiner.pid]))?;
                crate::log::step("seccomp notify fd handed to the listener");
            }
            Err(e) if timed_out(&e) => return Err(stalled(&[joiner.pid])),
            said => break said,
        }
    };
    let pid = joiners_word(said, joiner.pid)?;
    // No go then, and nothing killed: the exec process exits at our end of file.
    if to_child
        .more_after_the_word()
        .context(|| "read from exec process".into())?
    {
        bail!("exec: a second word from the process that joins the container's namespaces: one was forged");
    }
    to_child.hear_only(pid);
    crate::log::step("exec process cloned");
    let_run(a.pid_file.as_deref(), pid, to_child)?;
    // Success is the exec closing the child's end; an error is its own.
    let execed = (|| loop {
        readable(&[pid])?;
        match to_child.wait_exec() {
            Ok(ExecOutcome::Logged) => {}
            Ok(ExecOutcome::Master(master)) => {
                let passed = console
                    .pass_on(master)
                    .and_then(|()| to_child.send_go().context(|| "signal exec process".into()));
                passed.inspect_err(|_| end_exec_process(pid))?;
            }
            Ok(ExecOutcome::Execed) => match died_before_execve(pid) {
                None => return console.check_received().inspect_err(|_| end_exec_process(pid)),
                Some(e) => return Err(e),
            },
            Ok(ExecOutcome::Failed(e)) => {
                end_exec_process(pid);
                return Err(Error::new(e));
            }
            Err(e) if timed_out(&e) => return Err(stalled(&[pid])),
            Err(e) => {
                // A message we never send (one the container wrote into the
                // exec process's end, review 59 F1): the process, our
                // unreaped child, must not run on unseen.
                end_exec_process(pid);
                return Err(e).context(|| "read from exec process".into());
            }
        }
    })();
    if execed.is_err() {
        container::create::remove_pid_file(a.pid_file.as_deref(), pid);
    }
    execed?;
    crate::log::step("program exec'd");
    Ok(pid)
}

/// Writes the `--pid-file` if asked, then lets the exec process, which
/// waits for this, run its program. A caller told of a failure must not
/// find the process running (as runc): it would never be waited for, nor
/// killed.
fn let_run(pid_file: Option<&std::path::Path>, pid: libc::pid_t, to_child: &ExecParent) -> Result<()> {
    if let Some(p) = pid_file {
        write_pid_file(p, pid).inspect_err(|_| end_exec_process(pid))?;
        crate::log::step("pid file written");
    }
    to_child
        .send_go()
        .context(|| "signal exec process".into())
        .inspect_err(|_| {
            end_exec_process(pid);
            container::create::remove_pid_file(pid_file, pid);
        })
}

/// Kills and reaps (bounded: a process frozen by the v1 freezer dies only
/// once thawed) the processes of a failed exec that husk knows: the joiner,
/// or the exec process. Nothing else: the exec process the joiner cloned
/// and did not name waits for a go that never comes (`let_run`), and exits.
fn end_known(pids: &[libc::pid_t]) {
    for &pid in pids {
        container::wait::sigkill(pid);
    }
    for &pid in pids {
        let _ = container::wait::wait(pid, std::time::Duration::from_secs(2));
    }
}

/// The error of an exec that `sig` ended before its process started, its
/// processes ended.
fn end_unstarted(id: &str, known: &[libc::pid_t], endings: Endings, sig: nix::sys::signal::Signal) -> Error {
    end_known(known);
    endings.error(&format!("exec in container \"{id}\""), "the process", sig)
}

/// Kills and reaps the exec process of a failed exec, for at most 2 s: one
/// the container froze (the v1 freezer) dies only once thawed, and the reap
/// waited for ever, deaf to SIGTERM (review 43b, N3). Past that it is left,
/// killed, for whoever reaps it once it is thawed.
/// The error of an exec process whose end of the channel closed because it
/// is dying, not because it exec'd: it still has PF_FORKNOEXEC, which the
/// kernel clears before an execve closes the channel. Reaped here. A fault
/// is most likely the filter's (a profile that kills on setsid, say: the exec
/// process runs under it from its clone), which ended it with no word.
fn died_before_execve(pid: libc::pid_t) -> Option<Error> {
    sys::process_stat(pid).filter(|s| s.flags & sys::PF_FORKNOEXEC != 0)?;
    let code = match container::wait::wait(pid, container::wait::EXIT_WAIT) {
        Ok(code) => code,
        Err(_) => {
            end_exec_process(pid);
            return Some(Error::new("exec: the exec process ended before its program ran"));
        }
    };
    let hint = match code - 128 {
        libc::SIGSYS | libc::SIGSEGV => {
            " (does linux.seccomp allow what it does under the filter: a read, setsid, with a terminal ioctl and dup2, then execve?)"
        }
        _ => "",
    };
    let how = match code {
        129..=192 => format!("by signal {}", code - 128),
        code => format!("with status {code}"),
    };
    Some(Error::new(format!(
        "exec: the exec process ended {how} before its program ran{hint}"
    )))
}

fn end_exec_process(pid: libc::pid_t) {
    container::wait::sigkill(pid);
    if let Err(e) = container::wait::wait(pid, std::time::Duration::from_secs(2)) {
        crate::log::warn(&format!("exec process, killed: {e}"));
    }
}

fn write_pid_file(p: &std::path::Path, pid: libc::pid_t) -> Result<()> {
    let path = crate::container::create::absolute(p)?;
    state::write_atomic(&path, pid.to_string().as_bytes(), 0o644)
}

/// The process to run: `--process`, or the container's process with the
/// command line's changes.
fn exec_process(spec: &Spec, a: &ExecOptions) -> Result<Process> {
    if let Some(path) = &a.process {
        let text = crate::spec::read_json(path).context(|| format!("--process {}", path.display()))?;
        return crate::spec::strict::from_str(&text)
            .map_err(|e| Error::new(format!("--process {}: {}: {}", path.display(), e.path(), e.inner())));
    }
    if a.command.is_empty() {
        bail!("exec needs a command, or --process");
    }
    let mut p = spec
        .process()
        .clone()
        .ok_or_else(|| Error::new("the container's config has no process"))?;
    p.set_args(Some(a.command.clone()));
    p.set_terminal(Some(a.tty));
    let mut env = p.env().clone().unwrap_or_default();
    for kv in &a.env {
        let Some((key, _)) = kv.split_once('=') else {
            bail!("--env {kv}: not KEY=VALUE")
        };
        env.retain(|e| e.split_once('=').map(|(k, _)| k) != Some(key));
        env.push(kv.clone());
    }
    p.set_env(Some(env));
    if let Some(cwd) = &a.cwd {
        p.set_cwd(cwd.clone());
    }
    let mut user = p.user().clone();
    if let Some(u) = &a.user {
        let (uid, gid) = u.split_once(':').unwrap_or((u, ""));
        user.set_uid(
            uid.parse()
                .map_err(|_| Error::new(format!("--user {u}: not UID[:GID]")))?,
        );
        if !gid.is_empty() {
            user.set_gid(
                gid.parse()
                    .map_err(|_| Error::new(format!("--user {u}: not UID[:GID]")))?,
            );
        }
    }
    if !a.additional_gids.is_empty() {
        user.set_additional_gids(Some(a.additional_gids.clone()));
    }
    p.set_user(user);
    if !a.cap.is_empty() {
        add_capabilities(&mut p, &a.cap)?;
    }
    if a.no_new_privs {
        p.set_no_new_privileges(Some(true));
    }
    if let Some(profile) = &a.apparmor {
        p.set_apparmor_profile(Some(profile.clone()));
    }
    if let Some(label) = &a.process_label {
        p.set_selinux_label(Some(label.clone()));
    }
    Ok(p)
}

/// `--cap`: added to the bounding, effective and permitted sets, never to the
/// inheritable one (CVE-2022-29162).
fn add_capabilities(p: &mut Process, names: &[String]) -> Result<()> {
    let mut caps = p.capabilities().clone().unwrap_or_default();
    for name in names {
        let upper = name.to_ascii_uppercase();
        let full = if upper.starts_with("CAP_") {
            upper
        } else {
            format!("CAP_{upper}")
        };
        let cap: Capability = serde_json::from_value(serde_json::Value::from(full.clone()))
            .map_err(|_| Error::new(format!("--cap {name}: unknown capability")))?;
        let add = |s: &Option<oci_spec::runtime::Capabilities>| {
            let mut s = s.clone().unwrap_or_default();
            s.insert(cap);
            Some(s)
        };
        let (b, e, pm) = (add(caps.bounding()), add(caps.effective()), add(caps.permitted()));
        caps.set_bounding(b).set_effective(e).set_permitted(pm);
    }
    p.set_capabilities(Some(caps));
    Ok(())
}

/// The init's root, when it shares husk's mount namespace.
fn init_root(pid: libc::pid_t) -> Result<OwnedFd> {
    let path = format!("/proc/{pid}/root");
    sys::openat(
        libc::AT_FDCWD,
        &sys::cstring(&path)?,
        libc::O_PATH | libc::O_DIRECTORY,
        0,
    )
    .context(|| format!("open {path}"))
}

/// The init's namespaces that differ from ours, opened now. Both ns
/// directories are opened once: each path from /proc looks the process up
/// again (it was 16 such lookups and 6 opens; 1-2% of an exec measured).
fn init_namespaces(pid: libc::pid_t) -> Result<NamespacePlan> {
    let open_dir = |path: &str| {
        sys::openat(
            libc::AT_FDCWD,
            &sys::cstring(path)?,
            libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC,
            0,
        )
        .context(|| format!("open {path}"))
    };
    let theirs_dir = open_dir(&format!("/proc/{pid}/ns"))?;
    let ours_dir = open_dir("/proc/self/ns")?;
    let mut plan = NamespacePlan::default();
    for (name, flag) in NAMESPACES {
        let theirs = format!("/proc/{pid}/ns/{name}");
        let fd = match sys::openat(
            theirs_dir.as_raw_fd(),
            &sys::cstring(name)?,
            libc::O_RDONLY | libc::O_CLOEXEC,
            0,
        ) {
            Ok(fd) => fd,
            // A kernel without this kind of namespace.
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => continue,
            Err(e) => return Err(Error::from(e)).context(|| format!("open {theirs}")),
        };
        let joined = nix::sys::stat::fstat(&fd)
            .map_err(std::io::Error::from)
            .context(|| format!("stat {theirs}"))?;
        let ours = nix::sys::stat::fstatat(&ours_dir, name, nix::fcntl::AtFlags::empty()).ok();
        if ours.is_some_and(|o| (o.st_dev, o.st_ino) == (joined.st_dev, joined.st_ino)) {
            continue;
        }
        plan.joins.push(Join {
            flag,
            path: PathBuf::from(theirs),
            fd,
        });
    }
    Ok(plan)
}

/// runc's exec flags: the process to run (`process`, or the container's own
/// with the changes the other fields ask for) and how to run it.
#[derive(Clone, Debug, Default)]
pub struct ExecOptions {
    /// A process.json to run instead of the container's process.
    pub process: Option<PathBuf>,
    /// Give the process a terminal (its pty master goes to `console_socket`,
    /// or in the foreground is proxied to the caller's terminal).
    pub tty: bool,
    /// The unix socket that receives the pty master when `tty` is set.
    pub console_socket: Option<PathBuf>,
    /// Return once the process runs instead of waiting for its exit.
    pub detach: bool,
    /// A file to write the process's pid to.
    pub pid_file: Option<PathBuf>,
    /// The working directory in the container, instead of the process's.
    pub cwd: Option<PathBuf>,
    /// KEY=VALUE entries that replace or add to the container's environment.
    pub env: Vec<String>,
    /// `UID` or `UID:GID`.
    pub user: Option<String>,
    /// Supplementary groups, instead of the process's.
    pub additional_gids: Vec<u32>,
    /// Capabilities added to the bounding, effective and permitted sets.
    pub cap: Vec<String>,
    /// Set no_new_privs for the process.
    pub no_new_privs: bool,
    /// The AppArmor profile to run the process under.
    pub apparmor: Option<String>,
    /// The SELinux label to run the process with.
    pub process_label: Option<String>,
    /// How many fds after stdio (3, 4, ...) the process gets.
    pub preserve_fds: u32,
    /// Exec even in a paused container.
    pub ignore_paused: bool,
    /// `--cgroup`: a sub-cgroup of the container's to run in, `PATH` or
    /// `CONTROLLER[,CONTROLLER]:PATH` (see [`SubCgroups`]).
    pub cgroup: Vec<String>,
    /// The container to exec in.
    pub id: String,
    /// The program and its arguments (unless `process` is given).
    pub command: Vec<String>,
}

/// How long the joiner may take to exit once it has said its word: it is in
/// the container's cgroup, which the container may freeze meanwhile.
const JOINER_EXIT: std::time::Duration = std::time::Duration::from_secs(2);

/// The pid of the exec process, which the joiner reports before it exits.
fn joiners_word(said: std::io::Result<FromJoiner>, joiner: libc::pid_t) -> Result<libc::pid_t> {
    let msg = said.context(|| "read from exec process".into());
    let status = container::wait::wait(joiner, JOINER_EXIT);
    match msg? {
        FromJoiner::Pid(pid) if sys::is_own_child(pid) => Ok(pid),
        FromJoiner::Pid(pid) => bail!("exec: the reported process {pid} is not husk's child"),
        FromJoiner::Failed(e) => Err(Error::new(e)),
        // Taken by the loop that reads the joiner's words.
        FromJoiner::SeccompFd(_) => {
            bail!("exec: an unexpected seccomp fd from the process that joins the container's namespaces")
        }
        FromJoiner::Logged | FromJoiner::Exited => match status {
            Ok(code) if code == 128 + libc::SIGSYS => bail!(
                "exec: the process that joins the container's namespaces was killed by the container's seccomp \
                 filter (SIGSYS): linux.seccomp must allow what it does under it (clone3 or clone, write, exit_group)"
            ),
            Ok(code) => bail!("exec: the process that joins the container's namespaces failed (status {code})"),
            Err(e) => bail!("exec: the process that joins the container's namespaces failed: {e}"),
        },
    }
}
