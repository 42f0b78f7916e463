//! `restore`: a container made again from a checkpoint by CRIU. husk records
//! it as `create` does (the state before anything exists, the cgroup made
//! with the config's limits), runs criu inside that cgroup with the bundle's
//! rootfs as root, then commits the restored init as a running container.
//! A failed restore kills what criu restored and leaves nothing behind.

use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};

use super::checkpoint::refuse_rootless;
use super::create::{absolute, describe, make_cgroup};
use super::delete::remove_unless_replaced;
use super::endings::{Endings, Held};
use super::foreground::Foreground;
use super::{CreateOptions, Mode};
use crate::bail;
use crate::cgroups::Driver;
use crate::criu::rpc::{Opts, ReqType};
use crate::criu::{self, CriuOptions};
use crate::error::{Context, Result};
use crate::spec::{self, Plan};
use crate::state::{self, Locked, Saved, Store};
use crate::{log, sys};

/// runc's restore flags.
#[derive(Clone, Debug, Default)]
pub struct RestoreOptions {
    /// The new container's name.
    pub id: String,
    /// The bundle whose config.json and rootfs the container gets (default: the current directory).
    pub bundle: Option<PathBuf>,
    /// The flags checkpoint and restore share.
    pub criu: CriuOptions,
    /// Return once the container runs instead of waiting for it.
    pub detach: bool,
    /// A file to write the restored init's pid to.
    pub pid_file: Option<PathBuf>,
    /// The socket the restored terminal's new pty master is sent to.
    pub console_socket: Option<PathBuf>,
    /// Accepted for runc's sake: criu makes the mount namespace itself.
    pub no_pivot: bool,
    /// Do not become a subreaper while waiting in the foreground.
    pub no_subreaper: bool,
}

/// The state directory's mount point for the rootfs criu restores into:
/// criu wants its root a mount point whose parent is not overmounted.
const CRIU_ROOT: &str = "criu-root";
/// The directory criu mounts the cgroup hierarchies it restores into on
/// (in the state directory; mounted only in criu's own mount namespace).
const CRIU_YARD: &str = "criu-yard";
/// The directory of the state directory on which criu's mount namespace gets
/// a tmpfs with a /dev/null of the container's alone, which criu binds over
/// its masked files: the host's, bound there, would be the container root's
/// to chmod (review 50, F3), as it was with runc.
const CRIU_NULL: &str = "criu-null";

/// Restores container `opts.id` from the image directory; see
/// [`RestoreOptions`]. Returns 0 detached, else the exit code of the
/// container's process once it exits (the container is then deleted).
pub fn restore(store: &Store, opts: &RestoreOptions, mode: Mode) -> Result<i32> {
    check_request(opts, mode)?;
    let create = CreateOptions {
        id: opts.id.clone(),
        bundle: opts.bundle.clone(),
        no_pivot: opts.no_pivot,
        ..Default::default()
    };
    let plan = plan_restore(store, opts)?;
    let console = connect_console(&plan, opts)?;
    let spec = spec::parse(&plan.config_text)?;
    let writable = criu::writable_by_container(&spec, &plan.rootfs, &plan.bundle);
    let mut dirs = opts.criu.open_dirs(false, &writable)?;
    dirs.config = criu::config_file(&spec, &writable)?;
    check_bind_sources(&spec, &plan.bundle)?;
    let foreground = match opts.detach {
        true => None,
        false => Some(Foreground::prepare()?),
    };
    // Detached, an ending signal ends the restore (what it made undone),
    // then is raised again, as for create.
    let held = opts.detach.then(Held::unheld);
    if let Some(held) = &held {
        held.hold()?;
    }
    let endings = (held.as_ref().map(Endings::Held)).or(foreground.as_ref().map(Endings::Foreground));
    if opts.no_subreaper {
        let _ = nix::sys::prctl::set_child_subreaper(false);
    }
    // A held signal's error is the restore's own when it failed first.
    let said = |e: crate::Error| {
        if let Some(held) = &held {
            held.failed(&e);
        }
        e
    };
    let mut cgroup = crate::cgroups::driver::for_plan(plan.cgroup.as_ref()).map_err(said)?;
    let locked = store.create(&opts.id).map_err(said)?;
    // Recorded before the cgroup exists, as create does, so that `delete`
    // finds what a killed restore made.
    let mut saved = describe(&plan, &create, None, cgroup.record());
    let restored = locked
        .record(&saved)
        .and_then(|()| {
            let r = Restoring {
                plan: &plan,
                spec: &spec,
                locked: &locked,
                opts,
                endings,
                console: console.as_ref(),
                dirs: &dirs,
            };
            restore_into(&r, &mut cgroup, &mut saved)
        })
        // A caller told restore failed must not find the container running.
        .and_then(|()| match &opts.pid_file {
            Some(p) => state::write_atomic(&absolute(p)?, saved.pid.to_string().as_bytes(), 0o644),
            None => Ok(()),
        });
    if let Err(e) = restored {
        // Whatever criu restored is in the cgroup: destroy kills it all.
        if let Err(c) = cgroup.destroy() {
            log::warn(&format!("restore: clean up the cgroup: {c}"));
        }
        let _ = locked.remove();
        return Err(said(e));
    }
    let Some(foreground) = foreground else {
        return Ok(0);
    };
    drop(locked); // kill, state, delete -f must work while we wait
    let code = foreground.wait(saved.pid, None, None);
    if let Err(e) = remove_unless_replaced(store, &saved, None, false) {
        log::warn(&format!("remove container {}: {e}", opts.id));
    }
    code
}

/// What can be refused before the bundle is read: the mode, criu, the id,
/// the pid file and the image directory.
fn check_request(opts: &RestoreOptions, mode: Mode) -> Result<()> {
    refuse_rootless(mode, "restore")?;
    opts.criu.check()?;
    opts.criu.check_restore()?;
    if mode.systemd_cgroup {
        bail!("restore with --systemd-cgroup is not supported yet: use the cgroupfs driver");
    }
    state::validate_id(&opts.id)?;
    super::create::check_pid_file(opts.pid_file.as_deref())?;
    if !opts.criu.image_dir()?.join("inventory.img").is_file() {
        // Checked before the bundle, which matters less.
        opts.criu.open_dirs(false, &[])?;
    }
    Ok(())
}

/// The plan of the bundle's container, prepared as create prepares it.
fn plan_restore(store: &Store, opts: &RestoreOptions) -> Result<Plan> {
    let bundle = match &opts.bundle {
        Some(b) => b.clone(),
        None => std::env::current_dir().context(|| "current directory".into())?,
    };
    let spec_opts = spec::Options {
        id: &opts.id,
        no_pivot: opts.no_pivot,
        new_keyring: true,
        rootless: false,
        systemd_cgroup: false,
        root: store.root().to_path_buf(),
    };
    let mut plan = spec::load(&bundle, &spec_opts)?;
    if !plan.net_devices.is_empty() && plan.namespaces.is_new(libc::CLONE_NEWNET) {
        // criu makes that namespace anew, and nothing would move them into
        // it; in a joined one they stayed (criu takes it as external).
        bail!("linux.netDevices: restore cannot move network devices into the network namespace criu makes (in a joined one they stay)");
    }
    // Before the seccomp cache under the root is read or written.
    store.make_root()?;
    spec::prepare(&mut plan, &spec_opts)?;
    Ok(plan)
}

/// As create: a terminal's master goes over the console socket, which is
/// connected before anything is made.
fn connect_console(plan: &Plan, opts: &RestoreOptions) -> Result<Option<OwnedFd>> {
    Ok(match (plan.process.terminal, &opts.console_socket) {
        (true, Some(path)) => Some(crate::process::console::connect(path)?),
        (true, None) => bail!("process.terminal: restore needs --console-socket, to send the new terminal's master to"),
        (false, Some(_)) => bail!("--console-socket: the config's process.terminal is false"),
        (false, None) => None,
    })
}

/// Every bind mount source of the bundle's config is there: criu would
/// fail on a missing one deep in its restore, with a message about its images.
fn check_bind_sources(spec: &oci_spec::runtime::Spec, bundle: &Path) -> Result<()> {
    for m in criu::external_mounts(spec, bundle) {
        if let Err(e) = std::fs::metadata(&m.source) {
            bail!(
                "mounts: the source {} of the bind mount {}: {e}: restore needs every bind mount of the checkpointed container",
                m.source.display(),
                m.destination
            );
        }
    }
    Ok(())
}

/// Makes the mount points of the config's bind mounts in the rootfs, as
/// runc does before a restore: criu mounts on them but makes none, and a
/// rootfs made afresh (`podman container restore --import`) lacks those the
/// runtime made at create (/etc/hosts and the like). Made through the
/// rootfs's fd: a symlink in it cannot lead them out.
fn make_mount_points(spec: &oci_spec::runtime::Spec, plan: &Plan) -> Result<()> {
    let rootfs = sys::cstring(&plan.rootfs)?;
    let root = sys::openat(
        libc::AT_FDCWD,
        &rootfs,
        libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC,
        0,
    )
    .context(|| format!("root.path {}", plan.rootfs.display()))?;
    for m in criu::external_mounts(spec, &plan.bundle) {
        let at = Path::new(&m.destination);
        if m.source.is_dir() {
            crate::rootfs::resolve::resolve_dir(&root, at, true)?;
        } else {
            crate::rootfs::resolve::resolve_file(&root, at)?;
        }
    }
    Ok(())
}

/// The prestart and createRuntime hooks of a restore (runc's order), their
/// state naming `pid`, the root of the tree criu restores. An ending signal
/// ends them as it does `run`'s own (see `Endings`): a hook that never ends
/// held a foreground restore's SIGTERM for ever (review 43b).
fn run_create_hooks(plan: &Plan, saved: &Saved, pid: Option<libc::pid_t>, endings: Option<Endings>) -> Result<()> {
    let h = &plan.hooks;
    let (prestart, create_runtime) = (h.prestart().as_deref(), h.create_runtime().as_deref());
    if prestart.is_none_or(<[_]>::is_empty) && create_runtime.is_none_or(<[_]>::is_empty) {
        return Ok(());
    }
    // criu makes the tree's root husk's child (rst_sibling): anything else
    // is not a pid to hand the hooks.
    let Some(pid) = pid.filter(|&p| sys::is_own_child(p)) else {
        bail!("criu's setup-namespaces notification names no process of husk's")
    };
    let state = Saved { pid, ..saved.clone() }.hook_state("created");
    let run = |kind: &str, hooks: Option<&[oci_spec::runtime::Hook]>| match endings {
        Some(endings) => {
            let what = format!("restore of container \"{}\"", saved.id);
            let stop = || {
                endings
                    .ending()
                    .map(|sig| endings.error(&what, "the container's process", sig))
            };
            crate::hooks::run_all_unless(kind, hooks.unwrap_or(&[]), &state, &stop)
        }
        None => crate::hooks::run_all(kind, hooks.unwrap_or(&[]), &state),
    };
    run("prestart", prestart)?;
    run("createRuntime", create_runtime)
}

/// What stays the same through one restore.
struct Restoring<'a> {
    plan: &'a Plan,
    spec: &'a oci_spec::runtime::Spec,
    locked: &'a Locked,
    opts: &'a RestoreOptions,
    /// How it watches for a signal that ends it.
    endings: Option<Endings<'a>>,
    console: Option<&'a OwnedFd>,
    dirs: &'a criu::Dirs,
}

fn restore_into(r: &Restoring, cgroup: &mut Box<dyn Driver>, saved: &mut Saved) -> Result<()> {
    let (plan, locked) = (r.plan, r.locked);
    make_cgroup(plan, cgroup)?;
    saved.cgroup = cgroup.record();
    locked.record(saved)?;
    make_mount_points(r.spec, plan)?;
    let root = locked.dir.join(CRIU_ROOT);
    let yard = locked.dir.join(CRIU_YARD);
    let null_dir = locked.dir.join(CRIU_NULL);
    let null = null_dir.join("null");
    let mut args = criu_opts(r, cgroup.as_ref(), &root, &yard, &null);
    let namespaces: Vec<OwnedFd> = criu::restore_external_namespaces(r.spec, &mut args)?;
    let mut inherit: Vec<_> = namespaces.iter().map(std::os::fd::AsRawFd::as_raw_fd).collect();
    let stdio = criu::inherit_stdio(&r.dirs.image, &mut args)?;
    inherit.extend(stdio.iter().map(std::os::fd::AsRawFd::as_raw_fd));
    // criu wants its root a mount point whose parent is not overmounted: the
    // rootfs bound on a directory of the state dir, in criu's own mount
    // namespace (see Spawn::bind), so no SIGKILL leaves it mounted here,
    // where `delete` would remove the state dir through it.
    let _root_dir = ScratchDir::make(&root)?;
    let _yard_dir = ScratchDir::make(&yard)?;
    let _null_dir = ScratchDir::make(&null_dir)?;
    let spawn = criu::Spawn {
        cgroup_procs: cgroup_procs(cgroup.as_ref())?,
        inherit,
        bind: Some(sys::spawn::PrivateBind {
            source: sys::cstring(&plan.rootfs)?,
            target: sys::cstring(&root)?,
            cwd: -1, // criu::run sets it
            null: Some((sys::cstring(&null_dir)?, sys::cstring(&null)?)),
        }),
    };
    // With the namespaces made and before any process is restored into
    // them, criu sends setup-namespaces: the prestart and createRuntime
    // hooks run then, with the pid of the tree's root, as runc runs them.
    // The restored tree exists, stopped, when criu sends post-restore: it
    // is recorded (still uncommitted) before criu is told to go on, so
    // that whenever husk dies from then on, `state` finds the processes
    // and `delete --force` kills them. A husk that dies before answering
    // makes criu kill them itself.
    let what = format!("restore of container \"{}\"", saved.id);
    let mut on_notify = |script: &str, pid: Option<libc::pid_t>| -> Result<()> {
        match script {
            "setup-namespaces" => run_create_hooks(plan, saved, pid, r.endings),
            "post-restore" => record_restored(plan, locked, saved, pid),
            _ => Ok(()),
        }
    };
    let ended = |endings: Endings| {
        endings
            .ending()
            .map(|sig| endings.error(&what, "the container's process", sig))
    };
    let stop = r.endings.map(|endings| move || ended(endings));
    let stop = stop.as_ref().map(|s| s as &dyn Fn() -> Option<crate::Error>);
    let outcome = criu::run(
        ReqType::Restore,
        args,
        r.dirs,
        "restore.log",
        spawn,
        &mut on_notify,
        stop,
    )?;
    drop(namespaces);
    let log_path = r.dirs.work.path.join("restore.log");
    let Some(pid) = outcome.restored_pid.filter(|&p| sys::is_own_child(p)) else {
        bail!(
            "criu named no restored process of husk's ({:?}); see {}",
            outcome.restored_pid,
            log_path.display()
        )
    };
    let Some((start_time, _)) = sys::process_start(pid) else {
        bail!("the restored process {pid} exited at once; see {}", log_path.display())
    };
    (saved.pid, saved.start_time, saved.restored) = (pid, start_time, true);
    refuse_lost_no_new_privs(plan, pid, &log_path)?;
    // exec reads the config as it was at create.
    state::write_atomic(&locked.dir.join("config.json"), plan.config_text.as_bytes(), 0o600)?;
    hand_over_terminal(plan, r.console, outcome.pts_master)?;
    locked.commit(saved)
}

/// criu's restore request: its root and cgroup yard in the state directory
/// (`root`, `yard`), the new cgroup, the bind mounts' sources, and the
/// `null` it binds over masked files.
fn criu_opts(r: &Restoring, cgroup: &dyn Driver, root: &Path, yard: &Path, null: &Path) -> Opts {
    let mut args = Opts {
        root: Some(root.to_string_lossy().into_owned()),
        rst_sibling: true,
        // Devices the image names by their numbers may be other nodes here.
        evasive_devices: true,
        // criu's work directory is reached through husk's /proc/PID/fd, in
        // husk's mount namespace, where criu (in its own) can mount nothing:
        // its cgroup yard is a directory of the state dir instead.
        cgroup_yard: Some(yard.to_string_lossy().into_owned()),
        ..Default::default()
    };
    r.opts.criu.common_opts(&mut args);
    if let Some(c) = cgroup.cgroup() {
        // The restored processes go into the new cgroup, whatever the old one was.
        args.cg_root.push(c.path.clone());
    }
    for m in criu::external_mounts(r.spec, &r.plan.bundle) {
        args.ext_mnt.push((m.key, m.source.to_string_lossy().into_owned()));
    }
    if !r.plan.masked_paths.is_empty() {
        args.ext_mnt
            .push(("/dev/null".into(), null.to_string_lossy().into_owned()));
    }
    args
}

/// criu's post-restore: the restored tree's root, stopped, recorded (still
/// uncommitted) as the container's init.
fn record_restored(plan: &Plan, locked: &Locked, saved: &mut Saved, pid: Option<libc::pid_t>) -> Result<()> {
    // criu forks the restored tree's root as husk's child (rst_sibling):
    // a pid that is not one (a confused criu's) is no container's init,
    // and `delete --force` would kill it.
    let Some(pid) = pid.filter(|&p| sys::is_own_child(p)) else {
        bail!("criu's post-restore notification names no child of husk's ({pid:?})")
    };
    let Some((start_time, _)) = sys::process_start(pid) else {
        bail!("the restored process {pid} is gone")
    };
    (saved.pid, saved.start_time, saved.restored) = (pid, start_time, true);
    let new_mount_namespace = plan.namespaces.is_new(libc::CLONE_NEWNS);
    let new_pid_namespace = plan.namespaces.is_new(libc::CLONE_NEWPID);
    let born_in = super::members::init_mount_namespace(saved, pid, new_mount_namespace, new_pid_namespace);
    saved.mount_namespace = super::members::mount_namespace_to_record(saved, born_in, new_pid_namespace);
    locked.record(saved)
}

/// Sends the restored terminal's new pty master over the console socket;
/// a checkpoint and a config that disagree on the terminal fail.
fn hand_over_terminal(plan: &Plan, console: Option<&OwnedFd>, master: Option<OwnedFd>) -> Result<()> {
    match (console, master) {
        (Some(socket), Some(master)) => {
            if let Some((rows, cols)) = plan.process.console_size {
                crate::process::console::set_size(master.as_fd(), rows, cols);
            }
            let path = criu::pty_path(&master).unwrap_or_else(|| "/dev/pts/ptmx".into());
            crate::process::channel::send_with_fd(socket, path.as_bytes(), &master)
                .context(|| "--console-socket: send the restored terminal's master".into())
        }
        (Some(_), None) => bail!(
            "process.terminal: the checkpoint has no terminal to restore (it was made of a container without one)"
        ),
        (None, Some(_)) => {
            bail!("the checkpoint has a terminal: restore it with process.terminal true and --console-socket")
        }
        (None, None) => Ok(()),
    }
}

/// Refuses a restored init without the no_new_privs its config asks for:
/// criu before 3.19 does not restore it (it restores the capabilities and
/// the seccomp filter, not that flag), and the container would then be free
/// to gain privileges through setuid and file-capability programs. criu has
/// resumed the tree when husk can see its credentials (they are restored
/// after the post-restore notification): the error undoes the restore.
fn refuse_lost_no_new_privs(plan: &Plan, pid: libc::pid_t, log: &Path) -> Result<()> {
    if !plan.process.attrs.no_new_privileges {
        return Ok(());
    }
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let kept = status.lines().any(|l| l.split_whitespace().eq(["NoNewPrivs:", "1"]));
    if !kept {
        bail!(
            "process.noNewPrivileges: criu did not restore no_new_privs of the restored process {pid} (criu 3.19 and later do): the restore is undone rather than let the container gain privileges through setuid programs; see {}",
            log.display()
        );
    }
    Ok(())
}

/// The `cgroup.procs` files of the new cgroup, open for criu to join
/// before it execs (none without a cgroup).
fn cgroup_procs(cgroup: &dyn Driver) -> Result<Vec<OwnedFd>> {
    let Some(c) = cgroup.cgroup() else {
        return Ok(Vec::new());
    };
    let mut fds = Vec::new();
    for (_, dir) in &c.dirs {
        if !dir.is_dir() {
            continue;
        }
        let procs = dir.join("cgroup.procs");
        let f = std::fs::OpenOptions::new()
            .write(true)
            .open(&procs)
            .context(|| format!("open {}", procs.display()))?;
        fds.push(OwnedFd::from(f));
    }
    Ok(fds)
}

/// An (empty) directory of the state dir criu mounts on in its own mount
/// namespace (its root, its cgroup yard); removed on drop.
struct ScratchDir {
    at: PathBuf,
}

impl ScratchDir {
    fn make(at: &Path) -> Result<ScratchDir> {
        match std::fs::create_dir(at) {
            Ok(()) => {}
            // Left by a restore that was killed.
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(e).context(|| format!("create {}", at.display())),
        }
        Ok(ScratchDir { at: at.to_path_buf() })
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        // criu makes a directory per hierarchy in the yard; mounted only
        // in its namespace, they are empty directories here.
        if let Ok(entries) = std::fs::read_dir(&self.at) {
            for e in entries.flatten() {
                let _ = std::fs::remove_dir(e.path());
            }
        }
        let _ = std::fs::remove_dir(&self.at);
    }
}
