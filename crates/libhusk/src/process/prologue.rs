//! What the container's init (`init.rs`) and the exec process (`exec.rs`)
//! both do on their way from husk's clone to the container's program: the
//! signals and ids they start with, the fds they keep, the cwd and the program,
//! the terminal, their confinement (labels, capabilities, groups, ids,
//! no_new_privs, the seccomp filter) and the execve itself.
//!
//! Each caller runs these steps in its own order, which is security-relevant
//! (fds closed before the seccomp filter, the exec process cloned only once
//! the joiner is confined, ...): see the callers.

use std::convert::Infallible;
use std::ffi::CString;
use std::os::fd::{OwnedFd, RawFd};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::bail;
use crate::error::{Context, Error, Result};
use crate::process::{attrs, capabilities, console};
use crate::seccomp::{self, SeccompPlan};
use crate::spec::ProcessPlan;
use crate::sys;

const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// SIGKILL when husk dies: until a process is handed over, husk's end is its end.
pub fn die_with_parent() {
    let _ = nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL);
}

/// No signal when husk dies: for the init once husk may exit (see `InitChild::send_ready`).
pub fn outlive_parent() {
    let _ = nix::sys::prctl::set_pdeathsig(None);
}

/// An empty signal mask and default dispositions: a clone starts with husk's.
pub fn reset_signals(proc: Option<&sys::Procfs>) {
    sys::process::reset_signals(proc.and_then(sys::Procfs::raw_fd));
}

/// The init of a pid namespace ignores every signal it has no handler for
/// (but SIGKILL from outside), so the init that waits for `start` would lose
/// a `kill` of the created container: it ends instead as the default action
/// would end its program, with status 128 + the signal (as runc's does), and
/// execve restores the defaults for the program.
pub fn exit_on_terminating_signals() {
    sys::process::exit_on_terminating_signals();
}

/// In a user namespace, take its uid and gid 0 (when mapped), so that what the
/// process creates belongs to the container's root. An unmapped 0 leaves the ids be.
pub fn become_root_of_userns() {
    let (gid, uid) = (nix::unistd::Gid::from_raw(0), nix::unistd::Uid::from_raw(0));
    // Failure (EINVAL for an unmapped id) changes nothing.
    let _ = nix::unistd::setresgid(gid, gid, gid);
    let _ = nix::unistd::setresuid(uid, uid, uid);
}

/// The passed fds 3..3+`preserve_fds` stay open across execve, but for the
/// numbers the caller left closed, whose placeholders (see
/// `hold_passed_fds`) are closed now: a container process that can ptrace
/// would find them until the execve (they were the host's /dev/null).
/// Every fd above them is marked close-on-exec; whatever takes a
/// placeholder's number later is too.
pub fn pass_preserved_fds(preserve_fds: u32) -> Result<()> {
    use crate::container::stdio::is_placeholder;
    sys::cloexec_from(3 + preserve_fds).context(|| "mark fds close-on-exec".into())?;
    let (held, passed): (Vec<RawFd>, Vec<RawFd>) = (3..3 + preserve_fds as RawFd).partition(|fd| is_placeholder(*fd));
    sys::process::inherit_fds(passed);
    for fd in held {
        let _ = nix::unistd::close(fd);
    }
    Ok(())
}

/// Closes every fd above stdio and the passed ones but those in `keep`, and
/// whatever took the number of a placeholder (see [`pass_preserved_fds`]).
pub fn close_fds_except(preserve_fds: u32, keep: &[RawFd]) -> Result<()> {
    let taken = (3..3 + preserve_fds as RawFd).filter(|fd| crate::container::stdio::is_placeholder(*fd));
    for fd in taken.filter(|fd| !keep.contains(fd)) {
        let _ = nix::unistd::close(fd);
    }
    sys::close_fds_from_except(3 + preserve_fds as RawFd, keep).context(|| "close fds".into())
}

/// Enters process.cwd, then finds the program to exec (relative to it).
pub fn enter_cwd_and_find_program(p: &ProcessPlan) -> Result<CString> {
    enter_cwd(&p.cwd)?;
    find_executable(p)
}

/// chdir to process.cwd (made by the rootfs setup), refusing any cwd that ends
/// up outside the container's root (CVE-2024-21626).
fn enter_cwd(cwd: &Path) -> Result<()> {
    std::env::set_current_dir(cwd).context(|| format!("process.cwd {}", cwd.display()))?;
    match std::env::current_dir() {
        Ok(p) if p.is_absolute() => Ok(()),
        _ => bail!("process.cwd {} is outside the container", cwd.display()),
    }
}

/// The program to exec, looked up in the container's PATH, checked now so that
/// a missing or non-executable program is reported before the process is handed over.
fn find_executable(p: &ProcessPlan) -> Result<CString> {
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

/// A char device 1:3 on fds 0-2 other than the container's own /dev/null
/// came from outside: conmon's for a detached container, a shell's
/// `</dev/null`. A container root with CAP_FOWNER could fchmod the host's
/// /dev/null through it and leave it mode 000, which breaks the host
/// (newuidmap among others). Such fds get the container's own /dev/null, as
/// runc's init does (reOpenDevNull), or, where the container has no 1:3 node
/// there (it may remove or replace it at any time before an exec), one of
/// the process's own ([`sys::private_null`]). Without either (in a user
/// namespace, where mknod is refused, a container that removed its own) the
/// process fails, but for one that gets a `terminal` in their place, which
/// holds an empty memfd there until then.
/// Call it in the container's mount namespace and root, before the process
/// is confined (the private /dev/null needs husk's rights) and, where that
/// can be, before the container can see the process (exec's joiner).
pub fn replace_outside_null_stdio(terminal: bool) -> Result<()> {
    use nix::sys::stat::fstat;
    let stdio = [
        (0, fstat(std::io::stdin())),
        (1, fstat(std::io::stdout())),
        (2, fstat(std::io::stderr())),
    ];
    let outside: Vec<(RawFd, libc::stat)> = stdio
        .into_iter()
        .filter_map(|(fd, st)| st.ok().filter(sys::fs::is_dev_null).map(|st| (fd, st)))
        .collect();
    if outside.is_empty() {
        return Ok(());
    }
    let (null, own_id) = match own_null() {
        Some((null, st)) => (Ok(null), Some((st.st_dev, st.st_ino))),
        None => (sys::private_null(), None),
    };
    for (fd, _) in outside
        .into_iter()
        .filter(|(_, st)| Some((st.st_dev, st.st_ino)) != own_id)
    {
        match &null {
            Ok(null) => put_on_stdio(null, fd).context(|| format!("put a /dev/null on fd {fd}"))?,
            // The pty replaces it before the execve: until then, an empty
            // file of the process's own (review 50c C1).
            Err(_) if terminal => {
                let memfd = sys::empty_memfd(c"husk-stdio").context(|| "an empty memfd".into())?;
                put_on_stdio(&memfd, fd).context(|| format!("put a memfd on fd {fd}"))?
            }
            Err(e) => bail!(
                "fd {fd} is a /dev/null from outside the container, and the container has no /dev/null of its own to put in its place ({e})"
            ),
        }
    }
    Ok(())
}

/// dup2 of `file` onto stdio fd `fd` (0, 1 or 2).
pub(crate) fn put_on_stdio(file: &OwnedFd, fd: RawFd) -> nix::Result<()> {
    match fd {
        0 => nix::unistd::dup2_stdin(file),
        1 => nix::unistd::dup2_stdout(file),
        _ => nix::unistd::dup2_stderr(file),
    }
}

/// The container's own /dev/null, opened in its root, when it is a 1:3 node.
/// Checked before it is opened: without a mount namespace of its own the
/// node is the image's, and opening another device (a serial line, a
/// watchdog) could block or act; checked again once open (the container may
/// swap it meanwhile).
fn own_null() -> Option<(OwnedFd, libc::stat)> {
    use nix::fcntl::{fcntl, FcntlArg, OFlag};
    let at = nix::sys::stat::fstatat(
        nix::fcntl::AT_FDCWD,
        c"/dev/null",
        nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
    );
    if !at.is_ok_and(|st| sys::fs::is_dev_null(&st)) {
        return None;
    }
    let flags = libc::O_RDWR | libc::O_NOFOLLOW | libc::O_NOCTTY | libc::O_NONBLOCK;
    let null = sys::openat(libc::AT_FDCWD, c"/dev/null", flags, 0).ok()?;
    let st = nix::sys::stat::fstat(&null).ok().filter(sys::fs::is_dev_null)?;
    fcntl(&null, FcntlArg::F_SETFL(OFlag::O_RDWR)).ok()?;
    Some((null, st))
}

/// With process.terminal, a new pty becomes the process's stdio and
/// controlling terminal (and with `dev_console`, /dev/console); its master
/// goes to husk through `send_master` (our channel). Either way the process
/// leads a new session.
pub fn set_up_terminal(p: &ProcessPlan, send_master: &console::SendMaster, dev_console: bool) -> Result<()> {
    take_terminal(open_terminal(p, send_master, dev_console)?)
}

/// The part of [`set_up_terminal`] that needs rights (the bind on
/// /dev/console): the pty's peer, none without a terminal.
pub fn open_terminal(p: &ProcessPlan, send_master: &console::SendMaster, dev_console: bool) -> Result<Option<OwnedFd>> {
    if !p.terminal {
        return Ok(None);
    }
    console::open(send_master, p.console_size, dev_console).map(Some)
}

/// The rest, in the process that runs the program: a session of its own,
/// with the pty `peer` as its terminal when there is one.
pub fn take_terminal(peer: Option<OwnedFd>) -> Result<()> {
    let Some(peer) = peer else {
        // A session of its own, as runc and crun give every container
        // process: the caller's session and job control stop at the
        // container (and CRIU refuses a process whose session leader is
        // outside it). It fails only for a group leader, which a clone is not.
        let _ = nix::unistd::setsid();
        return Ok(());
    };
    console::take(peer)
}

/// Whether our user namespace denies setgroups. Through `proc` when there is
/// one (exec's joiner always has husk's: it has no /proc/self in the
/// container's /proc, outside its pid namespace), else through /proc, which
/// for the init is the procfs it has just mounted (a private one made only
/// for this would cost its start ~60 us).
fn setgroups_denied(proc: &sys::Procfs) -> bool {
    let text = match proc.raw_fd() {
        Some(_) => sys::read_proc(proc, "self/setgroups"),
        None => std::fs::read_to_string("/proc/self/setgroups"),
    };
    text.is_ok_and(|s| s.trim() == "deny")
}

/// Labels, capabilities, the user, no_new_privs and the seccomp filter
/// (`filter`, unless already loaded), in the order that leaves each the
/// rights it needs: the filter before the ids when it needs CAP_SYS_ADMIN
/// (without no_new_privs), else last. A listener's notify fd goes to
/// `hand_over` as soon as the filter is loaded, before anything else (a
/// `--debug` line's write, capset, setuid may be calls the agent answers:
/// review 55 F2). With no_new_privs, a listener's filter too comes last:
/// loaded before the ids, it let an agent that answered setuid and capset
/// with a success it never performed run the program as root with every
/// capability (review 55b F1; without no_new_privs it must come first, as
/// with runc).
/// `denies_setgroups`: our user namespace is known to deny setgroups.
pub fn confine(
    p: &ProcessPlan,
    filter: Option<&SeccompPlan>,
    last_cap: u8,
    proc: &sys::Procfs,
    denies_setgroups: bool,
    hand_over: &mut dyn FnMut(OwnedFd) -> Result<()>,
) -> Result<()> {
    let attrs = &p.attrs;
    if let Some(cpus) = &attrs.affinity_final {
        attrs::set_affinity("final", cpus)?;
    }
    attrs::set_exec_labels(attrs, proc)?;
    let mut load = |filter: &SeccompPlan| -> Result<()> {
        if let Some(fd) = seccomp::load(filter).context(|| "load seccomp filter".into())? {
            hand_over(fd)?;
        }
        crate::log::step("seccomp filter loaded");
        Ok(())
    };
    if let Some(filter) = filter.filter(|_| !attrs.no_new_privileges) {
        load(filter)?;
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
        // A user namespace whose setgroups is denied keeps its groups; fine
        // when none are asked. Any other refusal (the bundle's own seccomp
        // filter, say) must not leave the caller's groups to the process.
        let denied = || denies_setgroups || setgroups_denied(proc);
        if !(e == nix::errno::Errno::EPERM && gids.is_empty() && denied()) {
            return Err(e).context(|| "setgroups process.user.additionalGids".into());
        }
    }
    if let Err(e) = nix::unistd::setgid(nix::unistd::Gid::from_raw(p.gid)) {
        return Err(e).context(|| id_error("setgid", "process.user.gid", p.gid, e));
    }
    if let Err(e) = nix::unistd::setuid(nix::unistd::Uid::from_raw(p.uid)) {
        return Err(e).context(|| id_error("setuid", "process.user.uid", p.uid, e));
    }
    if let Some(caps) = &p.caps {
        capabilities::after_setuid(caps)?;
    }
    nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(p.umask as libc::mode_t));
    if attrs.no_new_privileges {
        attrs::set_no_new_privileges()?;
        // Needing no capability, it could wait until just before the execve,
        // but a process the container can see by then (exec's, or a pod
        // member's init between create and start) was unfiltered meanwhile:
        // one that may ptrace it (CAP_SYS_PTRACE, no user namespace) made it
        // run a program of its own without the filter (review 54 F1). What
        // follows runs under it, as it always did without no_new_privs.
        if let Some(filter) = filter {
            load(filter)?;
        }
    }
    Ok(())
}

/// The last step, execve (the process is confined). Returns only if it failed.
pub fn exec_program(p: &ProcessPlan, program: &CString) -> Error {
    let env = env_with_home(p);
    match execute(p, program, &env) {
        Err(e) => e,
        Ok(never) => match never {},
    }
}

fn execute(p: &ProcessPlan, program: &CString, env: &[CString]) -> Result<Infallible> {
    let e = nix::unistd::execve(program, &p.args, env).unwrap_err();
    bail!(
        "exec {}: {}",
        program.to_string_lossy(),
        crate::error::errno_text(e as i32)
    )
}

/// process.env, with HOME added when it has none, as runc and crun do: the
/// home of process.user.uid in the container's /etc/passwd, else "/".
/// Looked up by the confined process itself, in the container's root and
/// cgroup, so that it opens nothing the container could not, but for its own
/// /proc/self (husk's memory until execve): no procfs file is read.
fn env_with_home(p: &ProcessPlan) -> std::borrow::Cow<'_, [CString]> {
    if p.env.iter().any(|e| e.as_bytes().starts_with(b"HOME=")) {
        return std::borrow::Cow::Borrowed(&p.env);
    }
    let home = home_in_passwd(p.uid).unwrap_or_else(|| b"/".to_vec());
    let mut env = p.env.clone();
    env.push(CString::new([b"HOME=".as_slice(), &home].concat()).unwrap_or_else(|_| c"HOME=/".into()));
    std::borrow::Cow::Owned(env)
}

/// The home directory of `uid` in /etc/passwd, which the image made: read
/// only if it is a regular file outside procfs (a link to /proc/self/environ
/// would hand over husk's environment), and only its first MiB; a fifo
/// there is not waited on (O_NONBLOCK), nor a terminal taken (O_NOCTTY), and
/// a device node opens only as the container could open it itself.
fn home_in_passwd(uid: u32) -> Option<Vec<u8>> {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    let file = std::fs::File::options()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open("/etc/passwd")
        .ok()?;
    let on_procfs = nix::sys::statfs::fstatfs(&file).ok()?.filesystem_type() == nix::sys::statfs::PROC_SUPER_MAGIC;
    if on_procfs || !file.metadata().ok()?.is_file() {
        return None;
    }
    let mut text = Vec::new();
    file.take(1 << 20).read_to_end(&mut text).ok()?;
    home_of(&text, uid)
}

/// The sixth field of the passwd line whose third field is `uid`, as bytes.
fn home_of(passwd: &[u8], uid: u32) -> Option<Vec<u8>> {
    passwd.split(|&b| b == b'\n').find_map(|line| {
        let fields: Vec<&[u8]> = line.split(|&b| b == b':').collect();
        let id = fields
            .get(2)
            .and_then(|f| std::str::from_utf8(f).ok()?.parse::<u32>().ok());
        let matches = fields.len() >= 7 && id == Some(uid);
        (matches && !fields[5].is_empty()).then(|| fields[5].to_vec())
    })
}

/// Leaves at once (`_exit`): the atexit handlers and buffers are husk's.
pub fn exit(code: i32) -> ! {
    sys::process::exit_now(code)
}

/// The context of a failed setuid or setgid: the field, and why EINVAL.
fn id_error(call: &str, field: &str, id: u32, e: nix::errno::Errno) -> String {
    match e {
        nix::errno::Errno::EINVAL => format!("{field} {id}: not mapped in the container's user namespace ({call})"),
        _ => format!("{call} {field} {id}"),
    }
}

#[cfg(test)]
mod tests {
    use super::home_of;

    #[test]
    fn home_is_the_sixth_field_of_the_uids_line() {
        let passwd = b"root:x:0:0:root:/root:/bin/sh\nbroken\nsvc:x:1000:1000::/home/svc:/bin/false\nnohome:x:7:7:::\nraw:x:8:8::/h\xff:/s\n";
        assert_eq!(home_of(passwd, 0).as_deref(), Some(b"/root".as_slice()));
        assert_eq!(home_of(passwd, 1000).as_deref(), Some(b"/home/svc".as_slice()));
        assert_eq!(home_of(passwd, 7), None);
        assert_eq!(home_of(passwd, 42), None);
        assert_eq!(
            home_of(passwd, 8).as_deref(),
            Some(b"/h\xff".as_slice()),
            "the image's bytes"
        );
        assert_eq!(home_of(b"x:x:notanumber:0::/h:/s", 0), None);
    }
}
