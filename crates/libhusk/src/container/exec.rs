//! `exec`: a new process in a running container. It joins every namespace of
//! the container's init (user and pid through the parent, the rest in the
//! child), gets the container's seccomp filter, capabilities and no_new_privs
//! as its process spec says, and runs in the foreground (status, signals, a
//! proxied terminal) or detached.

use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;

use oci_spec::runtime::{Capability, Process, Spec};

use crate::bail;
use crate::container;
use crate::container::foreground::Foreground;
use crate::error::{Context, Error, Result};
use crate::process::channel::{self, Msg};
use crate::process::init;
use crate::process::namespaces::{Join, NamespacePlan};
use crate::process::{attrs, capabilities, console};
use crate::seccomp::{self, SeccompPlan};
use crate::spec::{self, ProcessPlan};
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
/// waits for it and returns its exit status.
pub fn exec(store: &Store, a: &ExecOptions, mode: container::Mode) -> Result<i32> {
    crate::process::seal::ensure_sealed()?;
    let rootless = mode.rootless;
    let saved = store.load(&a.id)?;
    let dir = store.dir(&a.id);
    match state::status_of(&dir, &saved) {
        Status::Stopped => bail!("cannot exec in a stopped container: container \"{}\" not running", a.id),
        Status::Paused if !a.ignore_paused => bail!("cannot exec in a paused container: container paused"),
        _ => {}
    }
    let text = std::fs::read_to_string(dir.join("config.json")).context(|| format!("container \"{}\" config", a.id))?;
    let spec = spec::parse(&text)?;
    let process = exec_process(&spec, a)?;
    let linux = spec.linux().clone().unwrap_or_default();
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
    let namespaces = init_namespaces(saved.pid)?;
    let _alive = container::open_init(&saved)?;
    let (to_child, proxy) = container::console_for(plan.terminal, a.console_socket.as_deref(), !a.detach)?;
    let foreground = if a.detach { None } else { Some(Foreground::prepare()?) };
    container::preserved_fds(a.preserve_fds, 0)?;
    container::reserve_preserved_fds(a.preserve_fds);

    let (parent_sock, child_sock) = sys::seqpacket_pair()?;
    // Inherited by every clone: the exec process is non-dumpable from birth to execve.
    sys::set_non_dumpable();
    // SAFETY: husk is single-threaded; the child only runs `join_and_spawn` and exits.
    let joiner = unsafe { sys::clone_process(0) }.context(|| "clone exec process".into())?;
    if joiner == 0 {
        drop(parent_sock);
        let ctx = Child {
            plan: &plan,
            filter: filter.as_ref(),
            last_cap,
            namespaces: &namespaces,
            rootless,
            sock: child_sock,
            console: to_child,
            preserve_fds: a.preserve_fds,
        };
        join_and_spawn(ctx);
    }
    drop(child_sock);
    drop(to_child);
    // The joiner goes into the container's cgroups, and the exec process it
    // starts is born there. Unprivileged, the cgroups are usually not ours to
    // write: best effort then.
    let joined = crate::cgroups::join_cgroups_of(joiner, saved.pid).or_else(|e| if rootless { Ok(()) } else { Err(e) });
    if let Err(e) = joined.and_then(|()| channel::send(&parent_sock, &Msg::Go).context(|| "signal exec process".into()))
    {
        // Stop the joiner first (it may be waiting for Go), then read why it
        // failed if it did so on its own before.
        // SAFETY: killing and reaping our own child.
        unsafe { libc::kill(joiner, libc::SIGKILL) };
        container::wait_status(joiner);
        return Err(match channel::recv(&parent_sock) {
            Ok(Some(Msg::Error(why))) => Error::new(why),
            _ => e,
        });
    }
    let pid = spawned_pid(&parent_sock, joiner)?;
    // Success is the exec closing the child's end; anything else is an error.
    if let Some(Msg::Error(e)) = channel::recv(&parent_sock).context(|| "read from exec process".into())? {
        container::wait_status(pid);
        return Err(Error::new(e));
    }
    if let Some(p) = &a.pid_file {
        let path = if p.is_absolute() {
            p.clone()
        } else {
            std::env::current_dir()?.join(p)
        };
        state::write_atomic(&path, pid.to_string().as_bytes(), 0o644)?;
    }
    match foreground {
        None => Ok(0),
        Some(fg) => {
            let master = proxy.as_ref().map(console::receive_master).transpose()?;
            fg.wait(pid, master)
        }
    }
}

/// The process to run: `--process`, or the container's process with the
/// command line's changes.
fn exec_process(spec: &Spec, a: &ExecOptions) -> Result<Process> {
    if let Some(path) = &a.process {
        let text = std::fs::read_to_string(path).context(|| format!("--process {}", path.display()))?;
        let de = &mut serde_json::Deserializer::from_str(&text);
        return serde_path_to_error::deserialize(de)
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

fn ns_inode(path: &str) -> Option<u64> {
    std::fs::metadata(path).ok().map(|m| m.ino())
}

/// The init's namespaces that differ from ours, opened now.
fn init_namespaces(pid: libc::pid_t) -> Result<NamespacePlan> {
    let mut plan = NamespacePlan::default();
    for (name, flag) in NAMESPACES {
        let theirs = format!("/proc/{pid}/ns/{name}");
        let Some(inode) = ns_inode(&theirs) else { continue };
        if ns_inode(&format!("/proc/self/ns/{name}")) == Some(inode) {
            continue;
        }
        let fd: OwnedFd = std::fs::File::open(&theirs)
            .context(|| format!("open {theirs}"))?
            .into();
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
    pub tty: bool,
    pub console_socket: Option<PathBuf>,
    /// Return once the process runs instead of waiting for its exit.
    pub detach: bool,
    pub pid_file: Option<PathBuf>,
    pub cwd: Option<PathBuf>,
    /// KEY=VALUE entries that replace or add to the container's environment.
    pub env: Vec<String>,
    /// UID[:GID].
    pub user: Option<String>,
    pub additional_gids: Vec<u32>,
    /// Capabilities added to the bounding, effective and permitted sets.
    pub cap: Vec<String>,
    pub no_new_privs: bool,
    pub apparmor: Option<String>,
    pub process_label: Option<String>,
    pub preserve_fds: u32,
    /// Exec even in a paused container.
    pub ignore_paused: bool,
    pub id: String,
    /// The program and its arguments (unless `process` is given).
    pub command: Vec<String>,
}

struct Child<'a> {
    plan: &'a ProcessPlan,
    filter: Option<&'a SeccompPlan>,
    last_cap: u8,
    namespaces: &'a NamespacePlan,
    rootless: bool,
    sock: OwnedFd,
    console: Option<OwnedFd>,
    preserve_fds: u32,
}

/// The pid of the exec process, which the joiner reports before it exits.
fn spawned_pid(sock: &OwnedFd, joiner: libc::pid_t) -> Result<libc::pid_t> {
    let msg = channel::recv(sock).context(|| "read from exec process".into());
    let status = container::wait_status(joiner);
    match msg? {
        Some(Msg::Pid(pid)) if sys::is_own_child(pid) => Ok(pid),
        Some(Msg::Pid(pid)) => bail!("exec: the reported process {pid} is not husk's child"),
        Some(Msg::Error(e)) => Err(Error::new(e)),
        _ => bail!("exec: the process that joins the container's namespaces failed ({status:#x})"),
    }
}

/// The first child: it joins every namespace of the container (user and pid
/// too, which apply to its children), mount last, so that its root and cwd
/// become the container's; closes every fd the exec process must not hold;
/// waits until husk has put it in the container's cgroups; confines itself
/// (`prepare`); then starts the exec process as husk's child and exits. The
/// exec process is thus born in the container's pid namespace already inside
/// its mount namespace, root and cgroups, with the process's user,
/// capabilities and seccomp filter: a container process that can ptrace
/// (CAP_SYS_PTRACE) finds nothing of the host's or of husk's rights in it.
fn join_and_spawn(c: Child) -> ! {
    // SAFETY: prctl with integer arguments.
    unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) };
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
    let prepared = host_proc.and_then(|proc| {
        join_namespaces(&c, &proc)?;
        prepare(&c, &proc)
    });
    let spawned = prepared.and_then(|program| {
        // SAFETY: single-threaded; the child only runs `child` and exits.
        let pid = unsafe { sys::clone_sibling() }.context(|| "clone exec process".into())?;
        Ok((pid, program))
    });
    let msg = match spawned {
        Ok((0, program)) => child(c, &program),
        Ok((pid, _)) => Msg::Pid(pid),
        Err(e) => Msg::Error(e.to_string()),
    };
    // The seccomp filter may be in place: a plain write.
    let _ = channel::send_plain(&c.sock, &msg);
    init::exit(0)
}

fn join_namespaces(c: &Child, proc: &OwnedFd) -> Result<()> {
    c.namespaces.enter_before_clone(!c.rootless)?;
    if c.namespaces.has(libc::CLONE_NEWUSER) {
        init::become_root_of_userns();
    }
    // Joining the mount namespace also moves our root and cwd to the container's.
    c.namespaces.enter_joined()?;
    // A change of ids may have made us dumpable again (fs.suid_dumpable).
    sys::set_non_dumpable();
    // Nothing of husk's (its log, the namespace files, the pidfd) may be open
    // in a process the container can see: only stdio, the passed fds, the
    // sync socket and the console.
    let mut keep = vec![c.sock.as_raw_fd(), proc.as_raw_fd()];
    keep.extend(c.console.as_ref().map(|f| f.as_raw_fd()));
    sys::close_fds_from_except(3 + c.preserve_fds as i32, &keep).context(|| "close fds".into())
}

/// In the joiner, all that needs husk's rights and is inherited by a clone:
/// cwd, limits and priorities, then (once in the cgroups) labels, the seccomp
/// filter without no_new_privs, capabilities, ids and no_new_privs.
fn prepare(c: &Child, proc: &OwnedFd) -> Result<std::ffi::CString> {
    init::reset_signals();
    sys::cloexec_from(3 + c.preserve_fds).context(|| "mark fds close-on-exec".into())?;
    init::pass_preserved_fds(c.preserve_fds);
    init::enter_cwd(&c.plan.cwd)?;
    let program = init::find_executable(c.plan)?;
    attrs::apply_early(&c.plan.attrs, proc)?;
    // The parent moves us into the container's cgroups meanwhile (slow on v1).
    if !matches!(channel::recv(&c.sock), Ok(Some(Msg::Go))) {
        bail!("exec: the parent did not place the process in the container's cgroups");
    }
    let in_userns = c.namespaces.has(libc::CLONE_NEWUSER);
    init::confine(c.plan, c.filter, c.last_cap, in_userns, proc)?;
    Ok(program)
}

/// The exec process: its terminal, a no_new_privs filter, then execve. It
/// outlives a husk that detaches (no parent-death signal).
fn child(c: Child, program: &std::ffi::CString) -> ! {
    let run = || -> Result<std::convert::Infallible> {
        if c.plan.terminal {
            let socket = c.console.as_ref().ok_or_else(|| Error::new("no console socket"))?;
            console::setup(socket, c.plan.console_size, false)?;
        }
        init::load_late_seccomp(c.plan, c.filter)?;
        init::execute(c.plan, program)
    };
    let err = match run() {
        Err(e) => e,
        Ok(never) => match never {},
    };
    let _ = channel::send_plain(&c.sock, &Msg::Error(err.to_string()));
    init::exit(127)
}
