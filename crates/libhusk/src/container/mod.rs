//! The lifecycle of a container, on the caller's side: [`create`], [`start`],
//! [`state`](fn@state), [`kill`], [`delete`], [`run`] and [`list`]; [`exec`] runs one
//! more process in a running container, [`control`] pauses, resumes, lists
//! processes, reports events and updates limits.
//!
//! Every call takes the [`Store`] where container state lives (`--root`) and
//! returns [`Result`], whose error is one line that names what
//! failed. A call that starts a container process ([`create`], [`run`],
//! [`exec::exec`]) needs a single-threaded caller, and first re-executes the
//! calling program once from a read-only copy of its binary
//! ([`crate::process::seal::ensure_sealed`]): call that at the top of `main`.

pub mod control;
pub mod exec;
pub(crate) mod foreground;
pub(crate) mod notify;
mod wait;

pub use wait::wait;

use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use crate::bail;
use crate::cgroups::Driver;
use crate::container::foreground::Foreground;
use crate::error::{Context, Error, Result};
use crate::process::channel::{self, FromInit, InitParent};
use crate::process::init::{self, InitArgs};
use crate::spec::{self, Plan};
use crate::state::{self, Locked, Saved, Status, Store, FIFO};
use crate::{log, sys};

/// How long `delete` waits for a killed init to exit.
const KILL_TIMEOUT: Duration = Duration::from_secs(10);

/// A freshly cloned init that is killed and reaped unless creation succeeds.
struct InitGuard {
    pid: libc::pid_t,
    armed: bool,
}

impl InitGuard {
    fn reap(&mut self) -> i32 {
        self.armed = false;
        wait_status(self.pid)
    }
}

impl Drop for InitGuard {
    fn drop(&mut self) {
        if self.armed {
            sigkill(self.pid);
            wait_status(self.pid);
        }
    }
}

/// Kills our own child `pid` (which must then be reaped).
pub(crate) fn sigkill(pid: libc::pid_t) {
    let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL);
}

/// Reaps our own child `pid`: its raw wait status (0 when there is none to reap).
pub(crate) fn wait_status(pid: libc::pid_t) -> i32 {
    loop {
        match sys::process::waitpid(pid) {
            Ok(status) => return status,
            Err(e) if e.raw_os_error() == Some(libc::EINTR) => continue,
            Err(_) => return 0,
        }
    }
}

fn describe_wait(status: i32) -> String {
    if libc::WIFSIGNALED(status) {
        format!("killed by signal {}", libc::WTERMSIG(status))
    } else {
        format!("exit status {}", libc::WEXITSTATUS(status))
    }
}

/// What `create` needs besides the bundle's config.json: runc's create flags.
#[derive(Clone, Debug, Default)]
pub struct CreateOptions {
    /// The container's name, unique under the state root.
    pub id: String,
    /// The bundle directory; the current directory when `None`.
    pub bundle: Option<PathBuf>,
    /// A file to write the init's pid to.
    pub pid_file: Option<PathBuf>,
    /// The unix socket that receives the pty master of a terminal container.
    pub console_socket: Option<PathBuf>,
    /// Move the rootfs over `/` and chroot instead of pivot_root (for ramfs roots).
    pub no_pivot: bool,
    /// Keep the caller's session keyring instead of a new one for the container.
    pub no_new_keyring: bool,
    /// How many fds after stdio (3, 4, ...) the container process gets.
    pub preserve_fds: u32,
}

/// `run`: create and start, then (unless `detach`) wait for the process and
/// delete the container (unless `keep`).
#[derive(Clone, Debug, Default)]
pub struct RunOptions {
    /// The container to create, as for [`create`].
    pub create: CreateOptions,
    /// Return once the container's process runs instead of waiting for it.
    pub detach: bool,
    /// Keep the stopped container instead of deleting it after its exit.
    pub keep: bool,
}

/// A container as `state` and `list` see it: its record and its status now.
#[derive(Debug)]
pub struct ContainerState {
    /// What husk recorded about the container.
    pub saved: Saved,
    /// Its status now, asked of its init.
    pub status: Status,
}

impl ContainerState {
    /// The runtime-spec state document (`husk state`).
    pub fn oci_state(&self) -> state::OciState<'_> {
        self.saved.oci_state(self.status)
    }
}

/// A created container: its locked state, and for a foreground run with a
/// terminal, the socket on which its pty master arrives.
struct Spawned {
    locked: Locked,
    saved: Saved,
    console: Option<OwnedFd>,
}

/// Global options that shape how containers are made (husk's `--rootless`
/// and `--systemd-cgroup`).
#[derive(Clone, Copy, Debug, Default)]
pub struct Mode {
    /// The caller is an ordinary user, or root in a user namespace it did not
    /// get from the host: devices are bound rather than made, and cgroups are
    /// used only where delegated (skipped with a warning when limits were asked).
    pub rootless: bool,
    /// The cgroup is a transient systemd scope (or slice), made over D-Bus.
    pub systemd_cgroup: bool,
}

fn spawn(store: &Store, args: &CreateOptions, mode: Mode, foreground: bool) -> Result<Spawned> {
    state::validate_id(&args.id)?;
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
    spec::prepare(&mut plan, &opts)?;
    let preserve = preserved_fds(args.preserve_fds, pass_listen_fds(&mut plan))?;
    let notify = crate::container::notify::host_socket();
    if let Some(host) = &notify {
        pass_notify_socket(&mut plan, host, &store.dir(&args.id));
    }
    let (to_init, proxy) = console_for(plan.process.terminal, args.console_socket.as_deref(), foreground)?;
    reserve_preserved_fds(preserve);
    let mut cgroup = crate::cgroups::driver::for_plan(plan.cgroup.as_ref())?;
    let locked = store.create(&args.id)?;
    // Recorded before the cgroup or the init exist, so that `delete` finds them
    // whenever this command dies.
    let record = describe(&plan, args, notify.as_deref(), cgroup.record());
    let made = locked.record(&record).and_then(|()| match &notify {
        Some(_) => std::fs::DirBuilder::new()
            .mode(0o755)
            .create(locked.dir.join(crate::container::notify::DIR))
            .context(|| "create notify directory".into()),
        None => Ok(()),
    });
    let spawned = made.and_then(|()| {
        let fds = Fds {
            preserve,
            console: to_init,
        };
        spawn_init(&plan, &locked, args, fds, record, &mut cgroup)
    });
    match spawned {
        Ok(saved) => Ok(Spawned {
            locked,
            saved,
            console: proxy,
        }),
        Err(e) => {
            // The init is dead and reaped by now: nothing holds the cgroup.
            let _ = cgroup.destroy();
            let _ = locked.remove();
            Err(e)
        }
    }
}

/// Creates the container's cgroup and applies its limits (or, with systemd,
/// leaves that to the placing of the init). Unprivileged, a cgroup that cannot
/// be made (not delegated to the user) is given up, with a warning when limits
/// were asked for: the container then has none.
fn make_cgroup(plan: &Plan, cgroup: &mut Box<dyn Driver>) -> Result<()> {
    let Some(cp) = &plan.cgroup else { return Ok(()) };
    match cgroup.create() {
        Ok(()) => Ok(()),
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

/// The fds `create` hands to the init: how many to preserve, and the console.
struct Fds {
    preserve: u32,
    console: Option<OwnedFd>,
}

/// systemd socket activation: with LISTEN_FDS=N set for husk, fds 3..3+N go to
/// the container process (before --preserve-fds ones), which is told so by
/// LISTEN_FDS=N and LISTEN_PID=1, as runc does. Returns N.
fn pass_listen_fds(plan: &mut Plan) -> u32 {
    let Some(n) = std::env::var("LISTEN_FDS")
        .ok()
        .and_then(|v| v.parse::<u32>().ok())
        .filter(|n| *n > 0)
    else {
        return 0;
    };
    let env = &mut plan.process.env;
    env.retain(|e| !e.as_bytes().starts_with(b"LISTEN_FDS=") && !e.as_bytes().starts_with(b"LISTEN_PID="));
    env.push(std::ffi::CString::new(format!("LISTEN_FDS={n}")).expect("no NUL"));
    env.push(std::ffi::CString::new("LISTEN_PID=1").expect("no NUL"));
    n
}

/// The container gets the notify directory of its state dir bound at the
/// directory of its NOTIFY_SOCKET path, and that path in its environment.
fn pass_notify_socket(plan: &mut Plan, host: &Path, state_dir: &Path) {
    let inside = crate::container::notify::container_path(&plan.process.env, host);
    plan.notify_name = inside.file_name().map(|n| n.to_string_lossy().into_owned());
    let dir = inside.parent().unwrap_or(Path::new("/")).to_path_buf();
    plan.mounts.push(crate::rootfs::mounts::MountPlan {
        destination: dir,
        kind: crate::rootfs::mounts::MountKind::Bind {
            source: state_dir.join(crate::container::notify::DIR),
            recursive: false,
        },
        flags: 0,
        attrs: Default::default(),
        recursive_attrs: Default::default(),
        propagation: Vec::new(),
        data: String::new(),
        idmap: None,
    });
    plan.process
        .env
        .retain(|e| !e.as_bytes().starts_with(b"NOTIFY_SOCKET="));
    let var = format!("NOTIFY_SOCKET={}", inside.display());
    plan.process
        .env
        .push(std::ffi::CString::new(var).expect("a path has no NUL"));
}

/// Where a terminal's pty master goes: the console socket, or (a foreground
/// command without one) a socketpair whose other end husk keeps to proxy.
pub(crate) fn console_for(
    terminal: bool,
    socket: Option<&Path>,
    foreground: bool,
) -> Result<(Option<OwnedFd>, Option<OwnedFd>)> {
    match (terminal, socket) {
        (false, _) => Ok((None, None)),
        (true, Some(path)) => Ok((Some(crate::process::console::connect(path)?), None)),
        (true, None) if foreground => {
            let (mine, theirs) = std::os::unix::net::UnixStream::pair().context(|| "console socketpair".into())?;
            Ok((Some(theirs.into()), Some(mine.into())))
        }
        (true, None) => bail!("cannot allocate tty if husk will detach without setting console socket"),
    }
}

/// How many fds after stdio the container gets: systemd's LISTEN_FDS, then
/// --preserve-fds; no more than this process may have open.
pub(crate) fn preserved_fds(flag: u32, listen: u32) -> Result<u32> {
    let limit = sys::process::open_files_limit().unwrap_or(1024);
    let total = u64::from(flag) + u64::from(listen);
    if total + 3 > limit {
        let also = match listen {
            0 => String::new(),
            n => format!(" (with {n} from LISTEN_FDS)"),
        };
        bail!("--preserve-fds {flag}: more fds than the limit of {limit} open files{also}");
    }
    Ok(total as u32)
}

/// Fds 3..3+N are the caller's to pass on; none of ours may take one of those numbers.
pub(crate) fn reserve_preserved_fds(n: u32) {
    for fd in 3..3 + n as i32 {
        // The lowest free number is this one: the ones below are taken.
        if !sys::process::is_open(fd) {
            sys::process::hold_lowest_free_fd();
        }
    }
}

/// The container's record, before its init exists (pid 0): what `create`
/// is about to make, for `delete` to undo.
fn describe(plan: &Plan, args: &CreateOptions, notify: Option<&Path>, cgroup: crate::cgroups::Record) -> Saved {
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
        provisional: false,
    }
}

fn spawn_init(
    plan: &Plan,
    locked: &Locked,
    args: &CreateOptions,
    fds: Fds,
    mut saved: Saved,
    cgroup: &mut Box<dyn Driver>,
) -> Result<Saved> {
    let Fds {
        preserve: preserve_fds,
        console,
    } = fds;
    let fifo_path = locked.dir.join(FIFO);
    let fifo = sys::cstring(&fifo_path)?;
    nix::unistd::mkfifo(fifo.as_c_str(), nix::sys::stat::Mode::from_bits_truncate(0o600))
        .map_err(std::io::Error::from)
        .context(|| "create exec fifo".into())?;
    // Writable by an init that is root of a user namespace (an "other" to the
    // host), readable only by the owner: nobody else can trigger `start`.
    std::fs::set_permissions(&fifo_path, std::os::unix::fs::PermissionsExt::from_mode(0o622))
        .context(|| "chmod exec fifo".into())?;
    // The init holds only the fifo until `start`, never the state directory:
    // a container process that can read the init's fds must find nothing
    // there to climb out of with "..".
    let exec_fifo = sys::openat(libc::AT_FDCWD, &fifo, libc::O_PATH | libc::O_CLOEXEC, 0)?;
    let (to_init, init_end) = channel::init_channel()?;
    make_cgroup(plan, cgroup)?;
    let premounted = crate::rootfs::idmapped_trees(plan)?;
    plan.namespaces.enter_before_clone(!plan.rootless)?;
    if plan.namespaces.is_new(libc::CLONE_NEWTIME) {
        nix::sched::unshare(nix::sched::CloneFlags::from_bits_retain(libc::CLONE_NEWTIME))
            .context(|| "create time namespace".into())?;
        if !plan.time_offsets.is_empty() {
            // Only possible before any process has entered the new namespace.
            std::fs::write("/proc/self/timens_offsets", &plan.time_offsets)
                .context(|| "write linux.timeOffsets".into())?;
        }
    }
    let into = cgroup.clone_into()?;
    // Inherited by the init: non-dumpable from birth until it execs. Not when
    // we write its maps, which needs it dumpable: it is then in a new user
    // namespace, and makes itself non-dumpable once it has them.
    if plan.userns.is_none() {
        sys::set_non_dumpable();
    }
    // SAFETY: husk is single-threaded; the child only runs init::run and exits.
    let pid = unsafe { sys::clone_into(plan.namespaces.clone_flags(), into.as_ref().map(|f| f.as_raw_fd())) }
        .context(|| "clone container init".into())?;
    drop(into);
    if pid == 0 {
        drop(to_init);
        init::run(InitArgs {
            plan,
            channel: init_end,
            exec_fifo,
            preserve_fds,
            close: vec![locked.lock_fd()],
            premounted,
            console,
            cgroup: cgroup.cgroup().map(|c| c.path.clone()),
        });
    }
    drop(init_end);
    drop(exec_fifo);
    let mut guard = InitGuard { pid, armed: true };
    let Some((start_time, _)) = sys::process_start(pid) else {
        bail!("container init {pid} vanished at once")
    };
    (saved.pid, saved.start_time) = (pid, start_time);
    let mut set_up = || -> Result<()> {
        locked.record(&saved)?;
        if let Some(userns) = &plan.userns {
            // The init waits for its maps before it does anything.
            crate::process::userns::write_maps(pid, userns)?;
            to_init.send_maps_written().context(|| "signal container init".into())?;
        }
        if plan.parent_places_cgroup() {
            // The first migration on cgroup v1 waits for an RCU grace period (~10 ms):
            // the init sets up its mounts meanwhile, and waits only where it must.
            let mut recorded = |cgroup: &crate::cgroups::Record| {
                let cgroup = cgroup.clone();
                locked.record(&Saved {
                    cgroup,
                    ..saved.clone()
                })
            };
            cgroup.place(pid, &mut recorded)?;
            to_init.send_placed().context(|| "signal container init".into())?;
        }
        Ok(())
    };
    if let Err(e) = set_up() {
        // The init may be waiting for us: stop it, so that the read below
        // finds either why it failed on its own (said before it exited) or
        // the end of the socket, never a wait.
        sigkill(pid);
        guard.reap();
        return Err(to_init.failure().map(Error::new).unwrap_or(e));
    }
    // What the driver made (none for a best-effort cgroup that could not be made).
    saved.cgroup = cgroup.record();
    let mut notify_fd = None;
    loop {
        match to_init.recv_setup().context(|| "read from container init".into())? {
            FromInit::Ready => break,
            FromInit::RunHooks => {
                let state = saved.hook_state("creating");
                let h = &plan.hooks;
                crate::hooks::run_all("prestart", h.prestart().as_deref().unwrap_or(&[]), &state)?;
                crate::hooks::run_all("createRuntime", h.create_runtime().as_deref().unwrap_or(&[]), &state)?;
                to_init
                    .send_hook_state(&state)
                    .context(|| "signal container init".into())?;
            }
            FromInit::SeccompFd(fd) => notify_fd = Some(fd),
            // The init started the container's process in the pid namespace it
            // joins late, and exits: that process is the container's init now.
            FromInit::Pid(process) if guard.pid == pid && sys::is_own_child(process) => {
                guard.reap();
                guard = InitGuard {
                    pid: process,
                    armed: true,
                };
                let Some((start_time, _)) = sys::process_start(process) else {
                    bail!("container process {process} vanished at once")
                };
                (saved.pid, saved.start_time) = (process, start_time);
                locked.record(&saved)?;
            }
            FromInit::Failed(e) => {
                guard.reap();
                return Err(Error::new(e));
            }
            FromInit::Pid(process) => bail!("container init sent an unexpected message: pid {process}"),
            FromInit::Exited => {
                let status = guard.reap();
                bail!("container init exited during setup ({})", describe_wait(status));
            }
        }
    }
    // exec reads the config as it was at create.
    state::write_atomic(&locked.dir.join("config.json"), plan.config_text.as_bytes(), 0o600)?;
    locked.commit(&saved)?;
    if let (Some(fd), Some(listener)) = (notify_fd, plan.seccomp.as_ref().and_then(|s| s.listener.as_ref())) {
        send_to_listener(listener, &fd, &saved)?;
    }
    if let Some(p) = &args.pid_file {
        let path = absolute(p)?;
        state::write_atomic(&path, saved.pid.to_string().as_bytes(), 0o644)?;
    }
    detach(&to_init)?;
    guard.armed = false;
    Ok(saved)
}

/// Lets the committed init go on: until it reads this, the end of our socket
/// (our death) makes it exit, so a `create` killed at any point before leaves
/// no init that no record names; after, the state names it.
fn detach(to_init: &InitParent) -> Result<()> {
    to_init.send_committed().context(|| "signal container init".into())
}

/// Hands the seccomp notify fd to the listener with the container's state, in
/// runc's format (`ContainerProcessState`).
fn send_to_listener(listener: &crate::seccomp::Listener, fd: &OwnedFd, saved: &Saved) -> Result<()> {
    let path = &listener.path;
    let stream = std::os::unix::net::UnixStream::connect(path)
        .context(|| format!("linux.seccomp.listenerPath {}", path.display()))?;
    let message = serde_json::json!({
        "ociVersion": saved.oci_version,
        "fds": ["seccompFd"],
        "pid": saved.pid,
        "metadata": listener.metadata,
        "state": saved.oci_state(Status::Created),
    });
    channel::send_with_fd(&stream, message.to_string().as_bytes(), fd)
        .context(|| format!("send seccomp fd to {}", path.display()))
}

fn absolute(p: &Path) -> Result<PathBuf> {
    if p.is_absolute() {
        Ok(p.to_path_buf())
    } else {
        Ok(std::env::current_dir()?.join(p))
    }
}

fn owner_name() -> String {
    let uid = nix::unistd::geteuid().as_raw();
    crate::process::userns::user_name(uid).unwrap_or_else(|| uid.to_string())
}

/// Creates the container: validates the bundle, builds the container in new
/// namespaces and leaves its init waiting for [`start`]. Returns the init's
/// pid; the init is a child of the caller (see [`wait`](fn@wait)).
///
/// The caller must be single-threaded: the init is a clone of it. Unless the
/// program already runs from a read-only or sealed copy of its binary, the
/// first call re-executes the program from one (see
/// [`crate::process::seal`]) and so never returns: call
/// [`ensure_sealed`](crate::process::seal::ensure_sealed) first thing in
/// `main` to have that happen before anything else.
pub fn create(store: &Store, args: &CreateOptions, mode: Mode) -> Result<libc::pid_t> {
    crate::process::seal::ensure_sealed()?;
    spawn(store, args, mode, false).map(|s| s.saved.pid)
}

/// Starts a created container: its init runs the startContainer hooks and
/// execs the program; an error there (a failed exec) is this call's error.
/// Then runs the poststart hooks and, when the container was created with
/// NOTIFY_SOCKET set, relays its notifications until READY=1 or its end.
pub fn start(store: &Store, id: &str) -> Result<()> {
    let locked = store.lock(id)?;
    let saved = locked.load(id)?;
    match locked.status(&saved) {
        Status::Created => start_process(&locked.dir, &saved),
        Status::Stopped => bail!("cannot start a container that has stopped"),
        _ => bail!("cannot start an already running container"),
    }
}

/// Starts the program, then runs the poststart hooks and, with NOTIFY_SOCKET,
/// relays the container's notifications until READY=1.
fn start_process(dir: &Path, saved: &Saved) -> Result<()> {
    let pidfd = open_init(saved)?;
    // Bound before the program runs, so that no notification is lost.
    let notify = saved
        .notify_name
        .as_deref()
        .map(|name| crate::container::notify::bind(dir, name))
        .transpose()?;
    release(dir, saved)?;
    if let Some(hooks) = saved.hooks.as_ref().and_then(|h| h.poststart().as_ref()) {
        crate::hooks::run_all_warn("poststart", hooks, &saved.hook_state("running"));
    }
    if let (Some(sock), Some(host)) = (&notify, &saved.notify_socket) {
        crate::container::notify::relay(sock, host, saved.pid, &pidfd)?;
    }
    Ok(())
}

/// The poststop hooks, once the container is gone; failures are warnings.
fn poststop(saved: &Saved) {
    if let Some(hooks) = saved.hooks.as_ref().and_then(|h| h.poststop().as_ref()) {
        crate::hooks::run_all_warn("poststop", hooks, &saved.hook_state("stopped"));
    }
}

/// Lets a created init exec its program: opening the fifo's read end unblocks the
/// init; its exec then closes the write end (success) or it writes the error.
/// The fifo is removed only afterwards, since the init opens it by name after Ready.
fn release(dir: &Path, saved: &Saved) -> Result<()> {
    // Taken while the init is still blocked on the fifo, so it is surely alive.
    let pidfd = open_init(saved)?;
    let fifo_path = dir.join(FIFO);
    let fifo = sys::openat(
        libc::AT_FDCWD,
        &sys::cstring(&fifo_path)?,
        libc::O_RDONLY | libc::O_NONBLOCK,
        0,
    )
    .context(|| format!("open {}", fifo_path.display()))?;
    let result = await_exec(&fifo, &pidfd, saved);
    match std::fs::remove_file(&fifo_path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            return Err(e).context(|| format!("remove {}", fifo_path.display()))
        }
        _ => {}
    }
    result
}

/// How often a start that sees nothing on the fifo asks the init whether it
/// has exec'd meanwhile.
const EXEC_CHECK: Duration = Duration::from_millis(20);

fn await_exec(fifo: &OwnedFd, pidfd: &OwnedFd, saved: &Saved) -> Result<()> {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    let slice = PollTimeout::try_from(EXEC_CHECK).expect("fits");
    loop {
        let mut fds = [
            PollFd::new(fifo.as_fd(), PollFlags::POLLIN),
            PollFd::new(pidfd.as_fd(), PollFlags::POLLIN),
        ];
        match poll(&mut fds, slice) {
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(e).context(|| "wait for container start".into()),
            Ok(_) => {}
        }
        let fifo_ready = fds[0].revents().is_some_and(|r| !r.is_empty());
        let init_gone = fds[1].revents().is_some_and(|r| !r.is_empty());
        if !fifo_ready && !init_gone {
            // An init that exec'd before we opened the fifo (its `start` was
            // killed) never shows us its end: ask the kernel.
            if saved.init_alive() && !saved.init_before_exec() {
                return Ok(());
            }
            continue;
        }
        let mut buf = [0u8; 4096];
        return match nix::unistd::read(fifo, &mut buf) {
            Ok(n) if n > 0 => Err(Error::new(String::from_utf8_lossy(&buf[..n]).into_owned())),
            // EOF: the exec closed the write end.
            Ok(_) => Ok(()),
            Err(nix::errno::Errno::EAGAIN) if !init_gone => continue,
            Err(nix::errno::Errno::EAGAIN) => bail!("container init exited before it could start"),
            Err(e) => Err(e).context(|| "read exec fifo".into()),
        };
    }
}

/// A pidfd for the container's init, refusing a process that merely reused its pid.
pub(crate) fn open_init(saved: &Saved) -> Result<OwnedFd> {
    let not_running = || Error::not_running(&saved.id);
    let pidfd = sys::pidfd_open(saved.pid).map_err(|_| not_running())?;
    // Checked after pidfd_open: from here on the pidfd cannot refer to another process.
    if !saved.init_alive() {
        return Err(not_running());
    }
    Ok(pidfd)
}

/// The container's state now.
pub fn state(store: &Store, id: &str) -> Result<ContainerState> {
    let saved = store.load_any(id)?;
    let status = state::status_of(&store.dir(id), &saved);
    Ok(ContainerState { saved, status })
}

/// Sends `sig` (a signal number) to the container's init, or with `all` to
/// every process of its cgroup (only the init when husk did not make that cgroup).
pub fn kill(store: &Store, id: &str, sig: i32, all: bool) -> Result<()> {
    let saved = store.load(id)?;
    let pidfd = open_init(&saved)?;
    if let (true, Some(path)) = (all, &saved.cgroup.path) {
        if saved.cgroup.owns() {
            return crate::cgroups::driver::for_record(&saved.cgroup)?.signal_all(sig);
        }
        log::warn(&format!(
            "kill --all: the cgroup {path} was there before the container: only its init is signalled"
        ));
    }
    sys::pidfd_send_signal(&pidfd, sig).map_err(|e| {
        if e.raw_os_error() == Some(libc::ESRCH) {
            Error::not_running(id).with_errno(libc::ESRCH)
        } else {
            Error::new(format!("kill container \"{id}\": {e}"))
        }
    })
}

/// Deletes a stopped or created container (a created one is killed first), or
/// with `force` one in any state (SIGKILL, then a wait of at most 10 s): its
/// processes, its cgroup and its state go, then the poststop hooks run. Also
/// removes what a `create` killed midway left.
pub fn delete(store: &Store, id: &str, force: bool) -> Result<()> {
    let locked = store.lock(id)?;
    let saved = locked.load_any(id)?;
    if saved.provisional {
        // A create that died before it committed: undo what it recorded.
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
    remove_container(locked, &saved)
}

/// Removes a container whose init is gone: what is left of its cgroup, its
/// state directory; then the poststop hooks.
fn remove_container(locked: Locked, saved: &Saved) -> Result<()> {
    // Processes outside the init's pid namespace may still be in the cgroup:
    // the driver kills them, unless husk did not make it (they are someone
    // else's then), and removes what husk made.
    crate::cgroups::driver::for_record(&saved.cgroup)?.destroy()?;
    locked.remove()?;
    if !saved.provisional {
        poststop(saved);
    }
    Ok(())
}

/// Kills every process of the container (all of its cgroup when it has one,
/// which also thaws a paused one) and waits for the init to exit.
fn kill_and_wait(saved: &Saved) -> Result<()> {
    // A frozen init cannot die before it is thawed: kill the whole cgroup, which
    // thaws it. Otherwise killing the init is enough for a private pid namespace
    // (its end kills the rest), and remove_container signals whatever is left.
    let frozen = saved
        .cgroup
        .freezer
        .as_deref()
        .is_some_and(crate::cgroups::is_frozen_file);
    if frozen && saved.cgroup.path.is_some() {
        let cgroup = crate::cgroups::driver::for_record(&saved.cgroup)?;
        match saved.cgroup.owns() {
            true => cgroup.signal_all(libc::SIGKILL)?,
            false => cgroup.freeze(false)?,
        }
    }
    let Ok(pidfd) = open_init(saved) else {
        return Ok(()); // already gone
    };
    sys::pidfd_send_signal(&pidfd, libc::SIGKILL).context(|| format!("kill container \"{}\"", saved.id))?;
    let mut fds = [nix::poll::PollFd::new(pidfd.as_fd(), nix::poll::PollFlags::POLLIN)];
    let timeout = nix::poll::PollTimeout::try_from(KILL_TIMEOUT).expect("fits");
    match nix::poll::poll(&mut fds, timeout) {
        Ok(0) => bail!(
            "container \"{}\" did not exit within {:?} of SIGKILL",
            saved.id,
            KILL_TIMEOUT
        ),
        _ => Ok(()),
    }
}

/// Creates and starts a container; in the foreground, waits for its process
/// and returns its exit status (128 + signal when killed), then deletes the
/// container unless `keep`. Detached, returns 0 once the process runs.
///
/// As for [`create`], the caller must be single-threaded and may be
/// re-executed once. In the foreground this process also blocks SIGCHLD and
/// the signals it forwards to the container (TERM, INT, HUP, QUIT, USR1,
/// USR2, WINCH), becomes a child subreaper, and proxies its terminal when the
/// process has one; that stays so after the call.
pub fn run(store: &Store, args: &RunOptions, mode: Mode) -> Result<i32> {
    crate::process::seal::ensure_sealed()?;
    if args.detach {
        let s = spawn(store, &args.create, mode, false)?;
        return release_or_clean(s.locked, &s.saved).map(|()| 0);
    }
    let foreground = Foreground::prepare()?;
    let Spawned { locked, saved, console } = spawn(store, &args.create, mode, true)?;
    let dir = locked.dir.clone();
    drop(locked); // other commands (kill, state, delete -f) must work while we wait
    let master = console
        .as_ref()
        .map(crate::process::console::receive_master)
        .transpose();
    let started = master.and_then(|m| start_process(&dir, &saved).map(|()| m));
    let code = match started {
        Ok(master) => foreground.wait(saved.pid, master),
        Err(e) => {
            sigkill(saved.pid);
            wait_status(saved.pid);
            Err(e)
        }
    };
    if !args.keep || code.is_err() {
        if let Err(e) = store.lock(&args.create.id).and_then(|l| remove_container(l, &saved)) {
            log::warn(&format!("remove container {}: {e}", args.create.id));
        }
    }
    code
}

fn release_or_clean(locked: Locked, saved: &Saved) -> Result<()> {
    let started = start_process(&locked.dir, saved);
    if started.is_err() {
        let _ = kill_and_wait(saved).and_then(|()| remove_container(locked, saved));
    }
    started
}

/// Every container under the store's root, in directory order; a record that
/// cannot be read is left out.
pub fn list(store: &Store) -> Result<Vec<ContainerState>> {
    let mut all = Vec::new();
    for id in store.ids()? {
        let Ok(saved) = store.load_any(&id) else { continue };
        let status = state::status_of(&store.dir(&id), &saved);
        all.push(ContainerState { saved, status });
    }
    Ok(all)
}
