//! `exec`: a new process in a running container. It joins every namespace of
//! the container's init (user and pid through the parent, the rest in the
//! child), gets the container's seccomp filter, capabilities and no_new_privs
//! as its process spec says, and runs in the foreground (status, signals, a
//! proxied terminal) or detached.

use std::os::fd::OwnedFd;
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;

use oci_spec::runtime::{Capability, Process, Spec};

use crate::bail;
use crate::cli::ExecArgs;
use crate::config::{self, ProcessPlan};
use crate::container;
use crate::error::{Context, Error, Result};
use crate::foreground::Foreground;
use crate::init;
use crate::namespaces::{Join, NamespacePlan};
use crate::seccomp::{self, SeccompPlan};
use crate::state::{self, Status, Store};
use crate::sync::{self, Msg};
use crate::{capabilities, console, process, sys};

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

pub fn exec(store: &Store, a: &ExecArgs, mode: container::Mode) -> Result<i32> {
    let rootless = mode.rootless;
    let saved = store.load(&a.id)?;
    let dir = store.dir(&a.id);
    match state::status_of(&dir, &saved) {
        Status::Stopped => bail!("cannot exec in a stopped container: container \"{}\" not running", a.id),
        Status::Paused if !a.ignore_paused => bail!("cannot exec in a paused container: container paused"),
        _ => {}
    }
    let text = std::fs::read_to_string(dir.join("config.json")).context(|| format!("container \"{}\" config", a.id))?;
    let spec = config::parse(&text)?;
    let process = exec_process(&spec, a)?;
    let linux = spec.linux().clone().unwrap_or_default();
    let opts = config::Options {
        id: &a.id,
        no_pivot: false,
        new_keyring: false,
        rootless,
        systemd_cgroup: false,
        root: store.root().to_path_buf(),
    };
    let last_cap = capabilities::last_cap();
    let plan = config::process_plan(&process, &linux, &opts, last_cap)?;
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
    namespaces.enter_before_clone(!rootless)?;
    // SAFETY: husk is single-threaded; the child only runs `child` and exits.
    let pid = unsafe { sys::clone_process(0) }.context(|| "clone exec process".into())?;
    if pid == 0 {
        drop(parent_sock);
        let ctx = Child {
            plan: &plan,
            filter: filter.as_ref(),
            last_cap,
            namespaces: &namespaces,
            sock: child_sock,
            console: to_child,
            preserve_fds: a.preserve_fds,
        };
        child(ctx);
    }
    drop(child_sock);
    drop(to_child);
    // Unprivileged, the cgroups are usually not ours to write: best effort then.
    let joined = crate::cgroups::join_cgroups_of(pid, saved.pid).or_else(|e| if rootless { Ok(()) } else { Err(e) });
    if let Err(e) = joined.and_then(|()| sync::send(&parent_sock, &Msg::Go).context(|| "signal exec process".into())) {
        // Stop the child first (it may be waiting for Go), then read why it
        // failed if it did so on its own before.
        // SAFETY: killing and reaping our own child.
        unsafe { libc::kill(pid, libc::SIGKILL) };
        container::wait_status(pid);
        return Err(match sync::recv(&parent_sock) {
            Ok(Some(Msg::Error(why))) => Error::new(why),
            _ => e,
        });
    }
    // Success is the exec closing the child's end; anything else is an error.
    if let Some(Msg::Error(e)) = sync::recv(&parent_sock).context(|| "read from exec process".into())? {
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
fn exec_process(spec: &Spec, a: &ExecArgs) -> Result<Process> {
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

struct Child<'a> {
    plan: &'a ProcessPlan,
    filter: Option<&'a SeccompPlan>,
    last_cap: u8,
    namespaces: &'a NamespacePlan,
    sock: OwnedFd,
    console: Option<OwnedFd>,
    preserve_fds: u32,
}

fn child(c: Child) -> ! {
    let err = match prepare(&c) {
        Ok((program, proc)) => {
            let in_userns = c.namespaces.has(libc::CLONE_NEWUSER);
            match init::become_process(c.plan, c.filter, c.last_cap, in_userns, &program, &proc) {
                Err(e) => e,
                Ok(never) => match never {},
            }
        }
        Err(e) => e,
    };
    let _ = sync::send(&c.sock, &Msg::Error(err.to_string()));
    init::exit(127)
}

fn prepare(c: &Child) -> Result<(std::ffi::CString, OwnedFd)> {
    init::reset_signals();
    // SAFETY: plain prctl calls on this process.
    unsafe {
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
        libc::prctl(libc::PR_SET_DUMPABLE, 0);
    }
    sys::cloexec_from(3 + c.preserve_fds).context(|| "mark fds close-on-exec".into())?;
    init::pass_preserved_fds(c.preserve_fds);
    if c.namespaces.has(libc::CLONE_NEWUSER) {
        init::become_root_of_userns();
    }
    // Joining the mount namespace also moves our root and cwd to the container's.
    c.namespaces.enter_joined()?;
    let proc = sys::private_procfs().context(|| "mount a private procfs".into())?;
    init::enter_cwd(&c.plan.cwd)?;
    let program = init::find_executable(c.plan)?;
    if c.plan.terminal {
        let socket = c.console.as_ref().ok_or_else(|| Error::new("no console socket"))?;
        console::setup(socket, c.plan.console_size, false)?;
    }
    process::apply_early(&c.plan.attrs, &proc)?;
    // The parent moves us into the container's cgroups meanwhile (slow on v1).
    if !matches!(sync::recv(&c.sock), Ok(Some(Msg::Go))) {
        bail!("exec: the parent did not place the process in the container's cgroups");
    }
    // Set up: from here the process must outlive a husk that detaches.
    // SAFETY: prctl with integer arguments.
    unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, 0) };
    Ok((program, proc))
}
