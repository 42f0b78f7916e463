//! The container's init: the child that `create` clones straight into the new
//! namespaces. It builds the container, reports Ready (or its error) over the
//! sync socket, waits on `exec.fifo` for `start`, then becomes the container
//! process. No re-exec of husk, no intermediate process.
//!
//! After Ready the only channel left is the fifo: a failed exec writes its error
//! there for `start` to report, while a successful exec closes it (O_CLOEXEC).

use std::convert::Infallible;
use std::ffi::CString;
use std::io::Write;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::bail;
use crate::error::{Context, Result};
use crate::process::channel::{self, Msg};
use crate::process::{attrs, capabilities, console, sysctl};
use crate::seccomp::SeccompPlan;
use crate::spec::{Plan, ProcessPlan};
use crate::sys;
use crate::{rootfs, seccomp};

const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

pub struct InitArgs<'a> {
    pub plan: &'a Plan,
    pub sock: OwnedFd,
    /// The container's exec.fifo (O_PATH), opened for writing once set up.
    pub exec_fifo: OwnedFd,
    pub preserve_fds: u32,
    /// Descriptors of the parent that must not stay open here (the state lock).
    pub close: Vec<RawFd>,
    /// Mounts the parent prepared, by mount index (idmapped ones).
    pub premounted: Vec<Option<OwnedFd>>,
    /// Where the pty master goes when the process has a terminal.
    pub console: Option<OwnedFd>,
    /// The container's cgroup, when the parent made one.
    pub cgroup: Option<String>,
}

/// Runs in the cloned child; never returns.
pub fn run(args: InitArgs) -> ! {
    // Tied to `create` until it has committed the state (see `report_ready`); should it
    // die before this call, the sync socket's end tells us at the next message.
    // SAFETY: prctl with integer arguments.
    unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) };
    for fd in &args.close {
        // SAFETY: closing the child's copies of the parent's descriptors.
        unsafe { libc::close(*fd) };
    }
    match prepare(&args) {
        Ok(Prepared {
            program,
            proc,
            hook_state,
        }) => {
            // Confined before Ready: from here until `start`, whatever can see
            // the init finds the container's user, capabilities and seccomp
            // filter, and no fd but the fifo, a read-only pid-only procfs and
            // the passed ones.
            let plan = args.plan;
            let proc = match confine_for_start(&args, &proc) {
                Ok(waiting) => waiting,
                Err(e) => {
                    let _ = channel::send(&args.sock, &Msg::Error(e.to_string()));
                    exit(1);
                }
            };
            if !report_ready(&args.sock) {
                exit(1);
            }
            drop(args.sock);
            wait_and_exec(plan, &program, &proc, &args.exec_fifo, hook_state.as_deref())
        }
        Err(e) => {
            let _ = channel::send(&args.sock, &Msg::Error(e.to_string()));
            exit(1)
        }
    }
}

/// Confines the init (`confine`) and closes every fd it does not need until
/// `start`; returns the procfs it keeps for that wait, in place of `proc`.
fn confine_for_start(args: &InitArgs, proc: &OwnedFd) -> Result<OwnedFd> {
    let plan = args.plan;
    let waiting = sys::waiting_procfs().context(|| "mount a private procfs".into())?;
    // Before the seccomp filter, which need not allow close_range.
    let keep = [
        args.sock.as_raw_fd(),
        args.exec_fifo.as_raw_fd(),
        waiting.as_raw_fd(),
        proc.as_raw_fd(),
    ];
    sys::close_fds_from_except(3 + args.preserve_fds as RawFd, &keep).context(|| "close fds".into())?;
    let filter = plan.seccomp.as_ref().filter(|f| f.listener.is_none());
    confine(&plan.process, filter, plan.last_cap, plan.in_userns(), proc)?;
    // SAFETY: the full procfs is not used again; its OwnedFd is never dropped
    // (the init leaves by execve or _exit).
    unsafe { libc::close(proc.as_raw_fd()) };
    Ok(waiting)
}

/// Says Ready, then waits until the parent has committed the container's
/// state. The init stops dying with the parent (PR_SET_PDEATHSIG) before it
/// says Ready, since the parent exits right after it commits; from then on a
/// parent that dies before committing closes the socket instead, and the init
/// exits: no init outlives a `create` unrecorded.
fn report_ready(sock: &OwnedFd) -> bool {
    // SAFETY: prctl with integer arguments.
    unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, 0) };
    // Plain write and read: the seccomp filter may be in place.
    channel::send_plain(sock, &Msg::Ready).is_ok() && matches!(channel::recv_plain(sock), Ok(Some(Msg::Committed)))
}

pub fn exit(code: i32) -> ! {
    // SAFETY: _exit skips atexit handlers and buffers that belong to the parent.
    unsafe { libc::_exit(code) }
}

struct Prepared {
    program: CString,
    proc: OwnedFd,
    /// The state the parent sent for the hooks the init runs.
    hook_state: Option<String>,
}

/// Everything that can fail at `create`: namespaces, the filesystem, limits.
fn prepare(args: &InitArgs) -> Result<Prepared> {
    let plan = args.plan;
    let attrs = &plan.process.attrs;
    if let Some(cpus) = &attrs.affinity_initial {
        attrs::set_affinity(cpus)?;
    }
    reset_signals();
    if plan.userns.is_some() {
        match channel::recv(&args.sock) {
            Ok(Some(Msg::Go)) => {}
            _ => bail!("the parent did not write the user namespace maps"),
        }
    }
    if plan.in_userns() {
        become_root_of_userns();
    }
    let gate = CgroupGate {
        sock: &args.sock,
        pending: std::cell::Cell::new(plan.parent_places_cgroup()),
        new_namespace: plan.namespaces.is_new(libc::CLONE_NEWCGROUP),
    };
    if !gate.pending.get() {
        gate.enter_namespace()?;
    }
    // SAFETY: plain prctl/umask calls on this process.
    unsafe {
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
        // Nothing may ptrace or read our memory until we are the container's program.
        libc::prctl(libc::PR_SET_DUMPABLE, 0);
        libc::umask(0);
    }
    sys::cloexec_from(3 + args.preserve_fds).context(|| "mark fds close-on-exec".into())?;
    pass_preserved_fds(args.preserve_fds);

    plan.namespaces.enter_joined()?;
    if let Some(h) = &plan.hostname {
        nix::unistd::sethostname(h).context(|| format!("set hostname {h}"))?;
    }
    if let Some(d) = &plan.domainname {
        set_domainname(d)?;
    }
    let proc = sys::private_procfs().context(|| "mount a private procfs".into())?;
    sysctl::apply(&plan.sysctl, &proc)?;
    let mut hook_state = None;
    rootfs::setup(
        plan,
        &args.premounted,
        args.cgroup.as_deref(),
        &mut || gate.wait(),
        &mut || {
            gate.wait()?;
            if !plan.has_create_hooks() {
                return Ok(());
            }
            // The parent runs prestart and createRuntime, and sends the state.
            channel::send(&args.sock, &Msg::Hooks).context(|| "ask for hooks".into())?;
            let state = match channel::recv(&args.sock) {
                Ok(Some(Msg::State(s))) => s,
                _ => bail!("the parent did not run the createRuntime hooks"),
            };
            let hooks = plan.hooks.create_container().as_deref().unwrap_or(&[]);
            crate::hooks::run_all("createContainer", hooks, &state)?;
            hook_state = Some(state);
            Ok(())
        },
    )?;
    let proc = match plan.namespaces.late_pid_namespace() {
        Some(pid_ns) => {
            drop(proc);
            gate.wait()?;
            start_in_joined_pid_namespace(args, pid_ns)?;
            rootfs::mount_deferred_proc(plan)?;
            // A procfs of the host's pid namespace must not stay open where the
            // pod can see it: the container's process makes its own.
            sys::private_procfs().context(|| "mount a private procfs".into())?
        }
        None => proc,
    };
    enter_cwd(&plan.process.cwd)?;
    let program = find_executable(&plan.process)?;
    if plan.process.terminal {
        let socket = args
            .console
            .as_ref()
            .ok_or_else(|| crate::error::Error::new("no console socket"))?;
        console::setup(socket, plan.process.console_size, true)?;
    }
    attrs::apply_early(attrs, &proc)?;
    if let Some(filter) = plan.seccomp.as_ref().filter(|f| f.listener.is_some()) {
        // The listener must have the notify fd before the program runs, and the
        // parent, which hands it over, is gone by `start`: load the filter now.
        if attrs.no_new_privileges {
            attrs::set_no_new_privileges()?;
        }
        let fd = seccomp::load(filter).context(|| "load seccomp filter".into())?;
        let fd = fd.ok_or_else(|| crate::error::Error::new("seccomp: no notify fd"))?;
        channel::send(&args.sock, &Msg::SeccompFd(fd)).context(|| "send seccomp notify fd".into())?;
    }
    gate.wait()?;
    Ok(Prepared {
        program,
        proc,
        hook_state,
    })
}

/// With a late pid namespace join, the init has built the container outside
/// the pid namespace it joins, so that no process there ever saw it with the
/// host's root. Now that its root is the container's, it starts the
/// container's process in that namespace as husk's child, tells husk its pid,
/// and exits: only the new process returns, once husk knows about it.
fn start_in_joined_pid_namespace(args: &InitArgs, pid_ns: &crate::process::namespaces::Join) -> Result<()> {
    sys::setns(pid_ns.fd.as_raw_fd(), libc::CLONE_NEWPID)
        .context(|| format!("join namespace {}", pid_ns.path.display()))?;
    // What the process needs until it execs: stdio, the passed fds, the sync
    // socket, exec.fifo and the console.
    let mut keep = vec![args.sock.as_raw_fd(), args.exec_fifo.as_raw_fd()];
    keep.extend(args.console.as_ref().map(|f| f.as_raw_fd()));
    let (known, announced) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).context(|| "pipe".into())?;
    keep.extend([known.as_raw_fd(), announced.as_raw_fd()]);
    sys::close_fds_from_except(3 + args.preserve_fds as RawFd, &keep).context(|| "close fds".into())?;
    // SAFETY: single-threaded; the child returns into the init's code path.
    match unsafe { sys::clone_sibling() }.context(|| "clone the container's process".into())? {
        0 => {
            drop(announced);
            // SAFETY: prctl with integer arguments.
            unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) };
            // EOF once the first init has sent our pid and exited.
            let _ = nix::unistd::read(&known, &mut [0u8; 1]);
            Ok(())
        }
        pid => {
            let _ = channel::send(&args.sock, &Msg::Pid(pid));
            exit(0)
        }
    }
}

/// Waits (once) for the parent to have moved the init into its cgroup, then
/// enters a new cgroup namespace, rooted there.
struct CgroupGate<'a> {
    sock: &'a OwnedFd,
    pending: std::cell::Cell<bool>,
    new_namespace: bool,
}

impl CgroupGate<'_> {
    fn wait(&self) -> Result<()> {
        if !self.pending.get() {
            return Ok(());
        }
        match channel::recv(self.sock) {
            Ok(Some(Msg::Placed)) => {}
            _ => bail!("the parent did not place the init in its cgroup"),
        }
        self.pending.set(false);
        self.enter_namespace()
    }

    fn enter_namespace(&self) -> Result<()> {
        if self.new_namespace {
            nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWCGROUP)
                .context(|| "create cgroup namespace".into())?;
        }
        Ok(())
    }
}

/// In a user namespace, take its uid and gid 0 (when mapped), so that what the
/// init creates belongs to the container's root. An unmapped 0 leaves the ids be.
pub fn become_root_of_userns() {
    // SAFETY: plain syscalls; failure (EINVAL for an unmapped id) changes nothing.
    unsafe {
        libc::setresgid(0, 0, 0);
        libc::setresuid(0, 0, 0);
    }
}

pub fn reset_signals() {
    // SAFETY: an empty set and default dispositions for catchable signals.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigprocmask(libc::SIG_SETMASK, &set, std::ptr::null_mut());
        for sig in 1..=64 {
            if sig != libc::SIGKILL && sig != libc::SIGSTOP {
                libc::signal(sig, libc::SIG_DFL);
            }
        }
    }
}

pub fn pass_preserved_fds(n: u32) {
    for fd in 3..3 + n as RawFd {
        // SAFETY: clearing FD_CLOEXEC; a closed fd just fails with EBADF.
        unsafe { libc::fcntl(fd, libc::F_SETFD, 0) };
    }
}

fn set_domainname(d: &str) -> Result<()> {
    // SAFETY: pointer and length of a live buffer.
    if unsafe { libc::setdomainname(d.as_ptr().cast(), d.len()) } < 0 {
        return Err(std::io::Error::last_os_error()).context(|| format!("set domainname {d}"));
    }
    Ok(())
}

/// chdir to process.cwd (made by the rootfs setup), refusing any cwd that ends
/// up outside the container's root (CVE-2024-21626).
pub fn enter_cwd(cwd: &Path) -> Result<()> {
    std::env::set_current_dir(cwd).context(|| format!("process.cwd {}", cwd.display()))?;
    match std::env::current_dir() {
        Ok(p) if p.is_absolute() => Ok(()),
        _ => bail!("process.cwd {} is outside the container", cwd.display()),
    }
}

/// The program to exec, looked up in the container's PATH, checked now so that
/// `create` reports a missing or non-executable program.
pub fn find_executable(p: &ProcessPlan) -> Result<CString> {
    let program = &p.program;
    let check = |path: &Path| -> std::io::Result<bool> {
        let meta = std::fs::metadata(path)?;
        Ok(meta.is_file() && meta.permissions().mode() & 0o111 != 0)
    };
    if program.contains('/') {
        return match check(Path::new(program)) {
            Ok(true) => Ok(sys::cstring(program)?),
            Ok(false) => bail!("exec: \"{program}\": permission denied"),
            Err(e) => bail!("exec: \"{program}\": {e}"),
        };
    }
    let path_var = p.path_var().unwrap_or(DEFAULT_PATH);
    for dir in path_var.split(':') {
        let dir = if dir.is_empty() { "." } else { dir };
        let candidate = PathBuf::from(dir).join(program);
        if let Ok(true) = check(&candidate) {
            return Ok(sys::cstring(&candidate)?);
        }
    }
    bail!("exec: \"{program}\": executable file not found in $PATH")
}

/// Blocks until `start` opens the fifo, then runs the startContainer hooks and
/// execs the container's program; an error goes to `start` through the fifo.
fn wait_and_exec(plan: &Plan, program: &CString, proc: &OwnedFd, exec_fifo: &OwnedFd, hook_state: Option<&str>) -> ! {
    // Reopened through our own fd: the init never held the state directory.
    let path = CString::new(format!("self/fd/{}", exec_fifo.as_raw_fd())).expect("no NUL");
    let fifo = match sys::openat(proc.as_raw_fd(), &path, libc::O_WRONLY | libc::O_CLOEXEC, 0) {
        Ok(fd) => fd,
        Err(_) => exit(1),
    };
    let start_hooks = plan.hooks.start_container().as_deref().unwrap_or(&[]);
    let state = hook_state.unwrap_or("{}").replacen("\"creating\"", "\"created\"", 1);
    let filter = plan.seccomp.as_ref().filter(|f| f.listener.is_none());
    let err = match crate::hooks::run_all("startContainer", start_hooks, &state)
        .and_then(|()| load_late_seccomp(&plan.process, filter))
        .and_then(|()| execute(&plan.process, program))
    {
        Err(e) => e,
        Ok(never) => match never {},
    };
    // SAFETY: the fifo fd is ours; File takes it over to write the error for `start`.
    let mut out = unsafe { std::fs::File::from_raw_fd(fifo.as_raw_fd()) };
    std::mem::forget(fifo);
    let _ = out.write_all(err.to_string().as_bytes());
    exit(127)
}

/// Labels, capabilities, the user and no_new_privs, in the order that leaves
/// each the rights it needs; the seccomp filter (`filter`, unless already
/// loaded) too when it needs CAP_SYS_ADMIN, that is without no_new_privs.
pub fn confine(
    p: &ProcessPlan,
    filter: Option<&SeccompPlan>,
    last_cap: u8,
    in_userns: bool,
    proc: &OwnedFd,
) -> Result<()> {
    let attrs = &p.attrs;
    if let Some(cpus) = &attrs.affinity_final {
        attrs::set_affinity(cpus)?;
    }
    attrs::set_exec_labels(attrs, proc)?;
    if let Some(filter) = filter.filter(|_| !attrs.no_new_privileges) {
        seccomp::load(filter).context(|| "load seccomp filter".into())?;
    }
    if let Some(caps) = &p.caps {
        capabilities::before_setuid(caps, last_cap)?;
    }
    let gids: Vec<nix::unistd::Gid> = p
        .additional_gids
        .iter()
        .map(|&g| nix::unistd::Gid::from_raw(g))
        .collect();
    if let Err(e) = nix::unistd::setgroups(&gids) {
        // A user namespace whose setgroups is denied keeps its groups; fine when none are asked.
        let userns = in_userns || crate::sys::in_user_namespace();
        if !(e == nix::errno::Errno::EPERM && gids.is_empty() && userns) {
            return Err(e).context(|| "setgroups process.user.additionalGids".into());
        }
    }
    nix::unistd::setgid(nix::unistd::Gid::from_raw(p.gid)).context(|| format!("setgid {}", p.gid))?;
    nix::unistd::setuid(nix::unistd::Uid::from_raw(p.uid)).context(|| format!("setuid {}", p.uid))?;
    if let Some(caps) = &p.caps {
        capabilities::after_setuid(caps)?;
    }
    // SAFETY: umask cannot fail.
    unsafe { libc::umask(p.umask as libc::mode_t) };
    if attrs.no_new_privileges {
        attrs::set_no_new_privileges()?;
    }
    Ok(())
}

/// With no_new_privs, the seccomp filter goes last, so that it need not allow
/// what the steps before the exec do.
pub fn load_late_seccomp(p: &ProcessPlan, filter: Option<&SeccompPlan>) -> Result<()> {
    match filter {
        Some(filter) if p.attrs.no_new_privileges => {
            seccomp::load(filter).context(|| "load seccomp filter".into()).map(drop)
        }
        _ => Ok(()),
    }
}

pub fn execute(p: &ProcessPlan, program: &CString) -> Result<Infallible> {
    let e = nix::unistd::execve(program, &p.args, &p.env).unwrap_err();
    bail!("exec {}: {}", program.to_string_lossy(), e.desc())
}
