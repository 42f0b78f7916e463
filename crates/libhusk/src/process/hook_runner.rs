//! The createContainer hooks of a pod member with a user namespace of its
//! own (`NamespacePlan::userns_after_pid`). Its init joins the pod's pid
//! namespace for its children first thing, before it makes that user
//! namespace, which would have no right to. A hook it forked was then born
//! in the pod, seen there before its exec with the host's root and the
//! init's fds, which a pod process that may ptrace took: it wrote the host's
//! files as root (review 61b F1; runc's hooks are born in the pod too).
//!
//! The init forks this runner before that join instead: it waits for the
//! hooks' state, enters the init's namespaces but the pid one, and runs the
//! hooks there, born in husk's pid namespace, where the pod sees nothing.
//! The runner joins the init's cgroups before it runs them.

use std::io::Read;
use std::os::fd::{AsRawFd, OwnedFd};

use nix::sys::socket::{send, shutdown, socketpair, AddressFamily, MsgFlags, Shutdown, SockFlag, SockType};
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::{getpid, getppid, ForkResult, Pid};

use crate::error::{Context, Error, Result};
use crate::process::prologue;
use crate::spec::Plan;
use crate::{bail, sys};

/// The namespaces the runner takes from the init, but the user one, which
/// it enters last: its rights on the rest come from husk's user namespace.
const NAMESPACES: [(&str, i32); 6] = [
    ("mnt", libc::CLONE_NEWNS),
    ("net", libc::CLONE_NEWNET),
    ("uts", libc::CLONE_NEWUTS),
    ("ipc", libc::CLONE_NEWIPC),
    ("cgroup", libc::CLONE_NEWCGROUP),
    ("time_for_children", libc::CLONE_NEWTIME),
];

/// The init's handle on its runner.
pub struct HookRunner {
    pid: Pid,
    /// A stream: the hooks' state goes one way (closed unwritten, the runner
    /// exits), the runner's error, if any, the other.
    socket: OwnedFd,
}

impl HookRunner {
    /// In the init, before it joins the pod's pid namespace: the runner, if
    /// the container has createContainer hooks there.
    pub fn fork_if_needed(plan: &Plan) -> Result<Option<HookRunner>> {
        let hooks = plan.hooks.create_container().as_deref().unwrap_or(&[]);
        if hooks.is_empty() || !plan.namespaces.userns_after_pid() {
            return Ok(None);
        }
        let (socket, runners) = socketpair(AddressFamily::Unix, SockType::Stream, None, SockFlag::SOCK_CLOEXEC)
            .context(|| "socketpair".into())?;
        let init = getpid();
        // SAFETY: the init is single-threaded; the child only runs `serve`.
        #[allow(unsafe_code)]
        match unsafe { nix::unistd::fork() }.context(|| "fork the createContainer hooks' runner".into())? {
            ForkResult::Child => {
                drop(socket);
                serve(plan, init, runners)
            }
            ForkResult::Parent { child } => Ok(Some(HookRunner { pid: child, socket })),
        }
    }

    /// Has the runner run the hooks with `state`: their first error is the error.
    pub fn run(self, state: &str) -> Result<()> {
        let HookRunner { pid, socket } = self;
        // No SIGPIPE should the runner be gone: its status says why.
        let sent =
            send_all(&socket, state.as_bytes()).and_then(|()| Ok(shutdown(socket.as_raw_fd(), Shutdown::Write)?));
        let mut error = String::new();
        let read = std::fs::File::from(socket).read_to_string(&mut error);
        // It exits once it has answered (or dies with us).
        let status = waitpid(pid, None);
        match status {
            Ok(WaitStatus::Exited(_, 0)) if sent.is_ok() && read.is_ok() => Ok(()),
            _ if !error.is_empty() => Err(Error::new(error)),
            status => bail!("the process that runs the createContainer hooks ended: {status:?}"),
        }
    }
}

fn send_all(socket: &OwnedFd, mut bytes: &[u8]) -> std::io::Result<()> {
    while !bytes.is_empty() {
        match send(socket.as_raw_fd(), bytes, MsgFlags::MSG_NOSIGNAL) {
            Ok(n) => bytes = &bytes[n..],
            Err(nix::errno::Errno::EINTR) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// The runner: never returns.
fn serve(plan: &Plan, init: Pid, socket: OwnedFd) -> ! {
    prologue::die_with_parent();
    if getppid() != init {
        prologue::exit(1);
    }
    let result = prologue::close_fds_except(0, &[socket.as_raw_fd()]).and_then(|()| run_requested(plan, init, &socket));
    match result {
        Ok(()) => prologue::exit(0),
        Err(e) => {
            let _ = send_all(&socket, e.to_string().as_bytes());
            prologue::exit(1)
        }
    }
}

fn run_requested(plan: &Plan, init: Pid, socket: &OwnedFd) -> Result<()> {
    let mut state = String::new();
    let mut request = std::fs::File::from(socket.try_clone().context(|| "dup".into())?);
    request
        .read_to_string(&mut state)
        .context(|| "read the createContainer hooks' state".into())?;
    drop(request);
    if state.is_empty() {
        // The init failed before its hooks.
        prologue::exit(0);
    }
    // The init is in the container's cgroups by now; we were forked before
    // it moved there, and a process a hook leaves must be the container's
    // to kill (and count against its limits): review 62 F1.
    crate::cgroups::join_cgroups_of(std::process::id() as libc::pid_t, init.as_raw())?;
    enter_namespaces_of(init)?;
    let hooks = plan.hooks.create_container().as_deref().unwrap_or(&[]);
    crate::hooks::run_all("createContainer", hooks, &state)
}

/// The init's namespaces but its pid one, its cwd, and the root of its user
/// namespace, as the init runs hooks.
fn enter_namespaces_of(init: Pid) -> Result<()> {
    let dir = |path: String| {
        let flags = libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC;
        sys::openat(libc::AT_FDCWD, &sys::cstring(&path)?, flags, 0).context(|| format!("open {path}"))
    };
    let (theirs, ours) = (dir(format!("/proc/{init}/ns"))?, dir("/proc/self/ns".into())?);
    let cwd = dir(format!("/proc/{init}/cwd"))?;
    let open = |dir: &OwnedFd, name: &str| {
        let name = sys::cstring(name).map_err(|_| std::io::Error::from_raw_os_error(libc::EINVAL))?;
        sys::openat(dir.as_raw_fd(), &name, libc::O_RDONLY | libc::O_CLOEXEC, 0)
    };
    let mut joins = Vec::new();
    for (name, flag) in NAMESPACES {
        let fd = match open(&theirs, name) {
            // A kernel without this kind of namespace.
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => continue,
            fd => fd.context(|| format!("open the init's {name} namespace"))?,
        };
        if !same_file(&fd, open(&ours, name).ok()) {
            joins.push((name, flag, fd));
        }
    }
    let user = open(&theirs, "user").context(|| "open the init's user namespace".into())?;
    joins.push(("user", libc::CLONE_NEWUSER, user));
    // Opened while the init lived: its pid was not another's.
    if getppid() != init {
        bail!("the init ended");
    }
    for (name, flag, fd) in &joins {
        sys::setns(fd.as_raw_fd(), *flag).context(|| format!("join the init's {name} namespace"))?;
    }
    prologue::become_root_of_userns();
    // A change of ids may have made us dumpable again (fs.suid_dumpable),
    // and has cleared our parent-death signal.
    sys::set_non_dumpable();
    prologue::die_with_parent();
    if getppid() != init {
        bail!("the init ended");
    }
    nix::unistd::fchdir(&cwd).context(|| "enter the init's cwd".into())
}

fn same_file(a: &OwnedFd, b: Option<OwnedFd>) -> bool {
    let id = |fd: &OwnedFd| nix::sys::stat::fstat(fd).ok().map(|s| (s.st_dev, s.st_ino));
    b.is_some_and(|b| id(a).is_some() && id(a) == id(&b))
}
