//! Calls for the processes husk clones (the container's init, the exec
//! joiner and the exec process) on their way to execve, and the one receive
//! of the channel between them and husk that takes an fd from the kernel.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

/// Ends this process at once: no atexit handlers, and no flushing of buffers
/// that are copies of the parent's. Async-signal-safe. Where a seccomp
/// filter refuses exit_group and exit (an init under a profile that makes
/// every call fail), the process ends by a fault (SIGSEGV), as glibc's
/// _exit does; musl's would retry them for ever.
pub fn exit_now(code: i32) -> ! {
    // SAFETY: exit_group takes an integer and returns only when refused; it
    // touches no memory of ours.
    unsafe { libc::syscall(libc::SYS_exit_group, code) };
    // SAFETY: as above.
    unsafe { libc::syscall(libc::SYS_exit, code) };
    fault()
}

/// Ends this process by SIGABRT, as abort(3), but signalling the thread the
/// kernel says this is: musl's abort() and raise() signal the thread id
/// cached at the program's start, which in a child of husk's raw clones is
/// its parent's (`husk run` itself, or whatever process has that number
/// now). A fault where SIGABRT does not end it (refused by a seccomp
/// filter). For panics (husk's panic hook) and anything else that would
/// abort in a cloned child.
pub fn abort_self() -> ! {
    raw_sigaction(libc::SIGABRT, libc::SIG_DFL);
    // SAFETY: a local set, initialised before sigprocmask reads it; getpid,
    // gettid and tgkill take integers.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGABRT);
        libc::sigprocmask(libc::SIG_UNBLOCK, &set, std::ptr::null_mut());
        let (pid, tid) = (libc::syscall(libc::SYS_getpid), libc::syscall(libc::SYS_gettid));
        libc::syscall(libc::SYS_tgkill, pid, tid, libc::SIGABRT);
    }
    fault()
}

/// A fault that ends the process (SIGSEGV from `hlt` in user mode; its
/// handler, if one is left, returns to it again).
#[cfg(target_arch = "x86_64")]
fn fault() -> ! {
    loop {
        // SAFETY: hlt touches no memory; in user mode it raises #GP.
        unsafe { std::arch::asm!("hlt") };
    }
}

#[cfg(not(target_arch = "x86_64"))]
fn fault() -> ! {
    std::process::abort()
}

/// Empties the signal mask and puts every catchable signal back to its
/// default disposition: a cloned child starts with husk's. `proc` is a
/// procfs of our pid namespace, when /proc may be another's (a joined
/// mount namespace's).
pub fn reset_signals(proc: Option<RawFd>) {
    // All 64 when the kernel will not say which: one call each.
    let changed = changed_dispositions(proc).unwrap_or(u64::MAX);
    // SAFETY: `set` is a local sigset_t that sigemptyset initialises before
    // sigprocmask reads it; signal() with SIG_DFL installs no handler of ours.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigprocmask(libc::SIG_SETMASK, &set, std::ptr::null_mut());
        for sig in 1..=64 {
            if changed & (1 << (sig - 1)) != 0 && sig != libc::SIGKILL && sig != libc::SIGSTOP {
                // The C library refuses the numbers it reserves (glibc 32
                // and 33, musl 32 to 34), whose SIG_IGN would outlive execve.
                if libc::signal(sig, libc::SIG_DFL) == libc::SIG_ERR {
                    raw_sigaction(sig, libc::SIG_DFL);
                }
            }
        }
    }
}

/// The signals this thread ignores or catches, as thread-self/status of
/// `proc` (or /proc) says (bit N-1 for signal N); None if it cannot be read.
fn changed_dispositions(proc: Option<RawFd>) -> Option<u64> {
    let status = match proc {
        None => super::fs::read_proc("/proc/thread-self/status").ok()?,
        Some(proc) => {
            use std::io::Read;
            let fd = super::openat(proc, c"thread-self/status", libc::O_RDONLY, 0).ok()?;
            let mut text = String::with_capacity(2048);
            std::fs::File::from(fd).read_to_string(&mut text).ok()?;
            text
        }
    };
    parse_changed_dispositions(&status)
}

fn parse_changed_dispositions(status: &str) -> Option<u64> {
    let mask = |field: &str| {
        let value = status.lines().find_map(|l| l.strip_prefix(field))?;
        u64::from_str_radix(value.trim(), 16).ok()
    };
    Some(mask("SigIgn:")? | mask("SigCgt:")?)
}

/// The signals whose default action ends a process, but those the kernel
/// raises for a fault of the process itself (SEGV, BUS, ILL, FPE, TRAP, SYS)
/// or a broken pipe, and the uncatchable SIGKILL.
const TERMINATING: [libc::c_int; 15] = [
    libc::SIGHUP,
    libc::SIGINT,
    libc::SIGQUIT,
    libc::SIGABRT,
    libc::SIGUSR1,
    libc::SIGUSR2,
    libc::SIGALRM,
    libc::SIGTERM,
    libc::SIGSTKFLT,
    libc::SIGXCPU,
    libc::SIGXFSZ,
    libc::SIGVTALRM,
    libc::SIGPROF,
    libc::SIGIO,
    libc::SIGPWR,
];

/// Where the handler says why the process ended (exec.fifo, once `start`
/// opened it); -1 for nowhere.
static DEATH_REPORT_FD: std::sync::atomic::AtomicI32 = std::sync::atomic::AtomicI32::new(-1);

extern "C" fn exit_with_signal(sig: libc::c_int) {
    let fd = DEATH_REPORT_FD.load(std::sync::atomic::Ordering::Relaxed);
    if fd >= 0 {
        // Formatted by hand: no allocation in a signal handler.
        let mut msg = *b"the container's init ended by signal 00 before its program ran";
        msg[37] = b'0' + (sig / 10 % 10) as u8;
        msg[38] = b'0' + (sig % 10) as u8;
        // SAFETY: write(2) is async-signal-safe; `msg` is a live local buffer.
        unsafe { libc::write(fd, msg.as_ptr().cast(), msg.len()) };
    }
    exit_now(128 + sig)
}

/// From now on, a signal that ends the process (see
/// `exit_on_terminating_signals`) first writes why into `fd`, where `start`
/// would otherwise read an end of file as the program's execve.
pub fn report_signal_death_to(fd: RawFd) {
    DEATH_REPORT_FD.store(fd, std::sync::atomic::Ordering::Relaxed);
}

/// Makes each signal that would end a process end this one with status
/// 128 + the signal, through a handler (execve puts the defaults back).
pub fn exit_on_terminating_signals() {
    let realtime = libc::SIGRTMIN()..=libc::SIGRTMAX();
    for sig in TERMINATING.into_iter().chain(realtime) {
        // SAFETY: the handler only calls _exit.
        unsafe { libc::signal(sig, exit_with_signal as *const () as libc::sighandler_t) };
    }
    // The C library keeps these for its threads (glibc 32 and 33, musl 32
    // to 34) and refuses them to sigaction; a caller may still send them, and
    // this process, single-threaded until execve, does not use them.
    for sig in 32..libc::SIGRTMIN() {
        set_exiting_handler_raw(sig);
    }
}

/// rt_sigaction(2) itself, for the numbers the C library refuses. The
/// handler never returns, so the restorer x86_64 requires is never called.
fn set_exiting_handler_raw(sig: libc::c_int) {
    raw_sigaction(sig, exit_with_signal as *const () as usize);
}

/// rt_sigaction(2) of `handler` (SIG_DFL, SIG_IGN, or one that never
/// returns: the restorer x86_64 requires is never called), past the C library.
#[cfg(target_arch = "x86_64")]
fn raw_sigaction(sig: libc::c_int, handler: libc::sighandler_t) {
    #[repr(C)]
    struct KernelSigaction {
        handler: usize,
        flags: libc::c_ulong,
        restorer: usize,
        mask: u64,
    }
    // <asm/signal.h>; the libc crate leaves it out for glibc.
    const SA_RESTORER: libc::c_int = 0x0400_0000;
    extern "C" fn never_called() {
        exit_now(127)
    }
    let action = KernelSigaction {
        handler,
        flags: (SA_RESTORER | libc::SA_RESTART) as libc::c_ulong,
        restorer: never_called as *const () as usize,
        mask: 0,
    };
    // SAFETY: the kernel reads `action` (the layout x86_64 defines, with an
    // 8-byte mask) and writes no old action (null).
    unsafe {
        libc::syscall(
            libc::SYS_rt_sigaction,
            sig,
            &action as *const KernelSigaction,
            std::ptr::null_mut::<KernelSigaction>(),
            8usize,
        )
    };
}

#[cfg(not(target_arch = "x86_64"))]
fn raw_sigaction(_sig: libc::c_int, _handler: libc::sighandler_t) {}

/// Clears FD_CLOEXEC on each fd in `fds`, so that they stay open across
/// execve; a number that is not open is skipped (EBADF).
pub fn inherit_fds(fds: impl IntoIterator<Item = RawFd>) {
    for fd in fds {
        // SAFETY: F_SETFD with an integer flag only changes the descriptor's
        // flags, and borrows no memory; a closed fd just fails with EBADF.
        unsafe { libc::fcntl(fd, libc::F_SETFD, 0) };
    }
}

/// setdomainname(2): the NIS domain name of the current UTS namespace.
pub fn set_domainname(name: &str) -> io::Result<()> {
    // SAFETY: pointer and length of a live buffer, which the kernel only reads.
    if unsafe { libc::setdomainname(name.as_ptr().cast(), name.len()) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// One waitpid(2) for the child `pid`, blocking: its raw wait status.
pub fn waitpid(pid: libc::pid_t) -> io::Result<i32> {
    let mut status = 0;
    // SAFETY: `status` is a live int that waitpid fills.
    if unsafe { libc::waitpid(pid, &mut status, 0) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(status)
}

/// The soft limit on this process's open files (RLIMIT_NOFILE).
pub fn open_files_limit() -> io::Result<u64> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit fills the struct it is given.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(limit.rlim_cur)
}

/// Whether `fd` is an open descriptor of this process.
pub fn is_open(fd: RawFd) -> bool {
    // SAFETY: F_GETFD only queries the descriptor's flags.
    unsafe { libc::fcntl(fd, libc::F_GETFD) >= 0 }
}

/// Makes an empty memfd (close-on-exec) at the lowest free fd number, and
/// leaves it open: a placeholder that keeps that number taken. A file of its
/// own, which needs no /dev/null and is no file of the host's. Returns the
/// number.
pub fn hold_lowest_free_fd() -> io::Result<RawFd> {
    // Deliberately owned by nothing from here on.
    super::empty_memfd(c"husk-placeholder").map(std::os::fd::IntoRawFd::into_raw_fd)
}

/// The most fds one message may carry (`recv_with_fds`).
pub const MAX_FDS: usize = 16;

/// One recvmsg(2) on `sock` into `buf`: how many bytes came, and the fd that
/// came with them (SCM_RIGHTS, received close-on-exec), if any.
pub fn recv_with_fd(sock: &impl AsRawFd, buf: &mut [u8]) -> nix::Result<(usize, Option<OwnedFd>)> {
    // Any fd past the first is closed here rather than leaked.
    recv_with_fds(sock, buf).map(|(n, fds)| (n, fds.into_iter().next()))
}

/// One recvmsg(2) on `sock` into `buf`: how many bytes came, and the fds that
/// came with them (SCM_RIGHTS, received close-on-exec). A message with more
/// than MAX_FDS fds is an error (ENOBUFS: nix sees MSG_CTRUNC), the kernel
/// having closed the ones that did not fit.
pub fn recv_with_fds(sock: &impl AsRawFd, buf: &mut [u8]) -> nix::Result<(usize, Vec<OwnedFd>)> {
    recv_from(sock, buf).map(|r| (r.bytes, r.fds))
}

/// What one recvmsg(2) got.
pub struct Received {
    /// How many bytes (0 for an empty message, or the end of the stream).
    pub bytes: usize,
    /// The fds that came with them (SCM_RIGHTS), close-on-exec.
    pub fds: Vec<OwnedFd>,
    /// The pid (in this process's pid namespace) of the process that sent
    /// them, which the kernel vouches for, on a socket `pass_credentials`
    /// set up; None at the end of the stream.
    pub sender: Option<libc::pid_t>,
}

/// One recvmsg(2) on `sock` into `buf`, as [`recv_with_fds`], with the sender.
pub fn recv_from(sock: &impl AsRawFd, buf: &mut [u8]) -> nix::Result<Received> {
    use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};
    let mut space = nix::cmsg_space!([RawFd; MAX_FDS], libc::ucred);
    let mut iov = [io::IoSliceMut::new(buf)];
    let msg = recvmsg::<()>(sock.as_raw_fd(), &mut iov, Some(&mut space), MsgFlags::MSG_CMSG_CLOEXEC)?;
    let (mut fds, mut sender) = (Vec::new(), None);
    for cmsg in msg.cmsgs()? {
        match cmsg {
            ControlMessageOwned::ScmRights(received) => {
                // SAFETY: the kernel installed these descriptors in this
                // process for this message; nothing else refers to them.
                fds.extend(received.into_iter().map(|fd| unsafe { OwnedFd::from_raw_fd(fd) }))
            }
            ControlMessageOwned::ScmCredentials(creds) => sender = Some(creds.pid()),
            _ => {}
        }
    }
    // Room was made for the credentials too, which a socket without them
    // leaves to a few more fds: the limit holds all the same (dropped: closed).
    if fds.len() > MAX_FDS {
        return Err(nix::errno::Errno::ENOBUFS);
    }
    Ok(Received {
        bytes: msg.bytes,
        fds,
        sender,
    })
}

/// Makes every message received on `sock` say which process sent it
/// (SO_PASSCRED: [`recv_from`]'s sender). A process can claim another
/// pid only with CAP_SYS_ADMIN over the pid namespace it names it in.
pub fn pass_credentials(sock: &impl std::os::fd::AsFd) -> io::Result<()> {
    nix::sys::socket::setsockopt(sock, nix::sys::socket::sockopt::PassCred, &true).map_err(io::Error::from)
}

/// The CPUs this process may run on (None if the kernel will not say).
pub fn own_affinity() -> Option<nix::sched::CpuSet> {
    nix::sched::sched_getaffinity(nix::unistd::Pid::from_raw(0)).ok()
}

/// Moves this process off the CPU it runs on, to another of `cpus`, then
/// lets it run on all of `cpus` again (it stays where it went), when
/// `child_cpu`, where the kernel queued a child that has not run yet, is
/// this one and `cpus` has another: a new child is queued on its parent's
/// CPU far more often than on an idle one, and then waits until the parent
/// blocks. Only this process's CPUs change, never the child's (its user
/// affinity would then narrow what its cpuset gives it later); this
/// process keeps `cpus` as its user affinity, which its later children
/// inherit. Best effort.
pub fn make_way_for_child(cpus: &nix::sched::CpuSet, child_cpu: u32) {
    // SAFETY: no arguments; returns the CPU or -1.
    #[allow(unsafe_code)]
    let here = unsafe { libc::sched_getcpu() };
    let Ok(here) = usize::try_from(here) else {
        return;
    };
    if usize::try_from(child_cpu) != Ok(here) {
        return;
    }
    let mut elsewhere = *cpus;
    if elsewhere.unset(here).is_err() {
        return;
    }
    let any_left = (0..nix::sched::CpuSet::count()).any(|c| elsewhere.is_set(c).unwrap_or(false));
    let me = nix::unistd::Pid::from_raw(0);
    if any_left && nix::sched::sched_setaffinity(me, &elsewhere).is_ok() {
        let _ = nix::sched::sched_setaffinity(me, cpus);
    }
}

/// Every process of husk's pid namespace, as /proc lists them.
pub fn all_pids() -> io::Result<Vec<libc::pid_t>> {
    Ok(std::fs::read_dir("/proc")?
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .collect())
}

/// Clones this process by `clone` (0 in the child, as fork) with none of
/// the caller's environment nor husk's arguments in the child: the init and
/// exec process keep husk's memory until they execve, in the container's
/// pid namespace, where /proc/PID/cmdline (to any process that sees the
/// pid), environ and mem (to one with CAP_SYS_PTRACE, a pod's first
/// container, say) gave away the caller's environment (its tokens) and
/// husk's arguments (review 42, F1 and 42b, G1; runc starts its init with
/// a clean environment). The stack strings the kernel shows are blanked for
/// the clone (`title`, "husk\0init", is its cmdline) and given back to the
/// parent; the environment getenv reads lives where a clone gets zeroes
/// (`environment_kept_from_clones`), and the child starts with an empty
/// one: nothing after the clone reads it.
pub fn clone_with_strings_blanked(
    title: &[u8],
    clone: impl FnOnce() -> io::Result<libc::pid_t>,
) -> io::Result<libc::pid_t> {
    let full = environment_kept_from_clones();
    let areas = shown_string_areas();
    let saved = areas.and_then(|areas| blank(&areas, title));
    // SAFETY: single-threaded; EMPTY_ENVIRONMENT is a NULL-ended array that
    // lives for ever, and nothing ever writes through it (setenv copies an
    // array it did not allocate).
    unsafe { environ = std::ptr::addr_of_mut!(EMPTY_ENVIRONMENT).cast() };
    let cloned = clone();
    if cloned.as_ref().map_or(true, |pid| *pid != 0) {
        // SAFETY: as above; `full` is the array environment_kept_from_clones made.
        unsafe { environ = full };
        if let (Some(areas), Some(saved)) = (areas, saved) {
            let mut from = saved;
            for (start, end) in areas {
                // SAFETY: each area is this process's own writable stack
                // strings (see `shown_string_areas`); `blank` saved them,
                // one after the other, at `saved`.
                unsafe {
                    std::ptr::copy_nonoverlapping(from, start as *mut u8, end - start);
                    from = from.add(end - start);
                }
            }
        }
    }
    cloned
}

/// The environment of a clone of husk (`clone_with_strings_blanked`).
static mut EMPTY_ENVIRONMENT: [*mut libc::c_char; 1] = [std::ptr::null_mut()];

/// [arg_start, arg_end) and [env_start, env_end) of this process, from
/// /proc/self/stat (fields 48-51): the strings the kernel put on the stack
/// at execve.
fn shown_string_areas() -> Option<[(usize, usize); 2]> {
    let stat = crate::sys::fs::read_proc("/proc/self/stat").ok()?;
    let fields: Vec<usize> = stat
        .get(stat.rfind(')')? + 1..)?
        .split_ascii_whitespace()
        .skip(45)
        .take(4)
        .map(|f| f.parse().ok())
        .collect::<Option<_>>()?;
    let [arg_start, arg_end, env_start, env_end] = fields[..] else {
        return None;
    };
    (arg_start > 0 && arg_start <= arg_end && env_start <= env_end)
        .then_some([(arg_start, arg_end), (env_start, env_end)])
}

/// Saves both areas (one after the other, where a clone gets zeroes: the
/// copy holds the caller's strings), zeroes them and writes `title` at the
/// start of the first (the arguments) where it fits with its NUL. Where the
/// saved copy is, or None (nothing blanked) without such memory.
fn blank(areas: &[(usize, usize); 2], title: &[u8]) -> Option<*const u8> {
    static SAVE: std::sync::OnceLock<Option<usize>> = std::sync::OnceLock::new();
    let len: usize = areas.iter().map(|(start, end)| end - start).sum();
    // The areas of a process never change: one save area for all clones.
    let save = (*SAVE.get_or_init(|| wipe_on_fork_area(len).map(|p| p as usize)))? as *mut u8;
    let mut to = save;
    for (i, (start, end)) in areas.iter().enumerate() {
        // SAFETY: the areas lie in this process's stack, mapped and writable
        // for as long as the process lives; nothing holds a reference into
        // them once the environment has moved (Rust's args are read from
        // there, but only at parse time) and the process is single-threaded.
        // `save` has room for both (`len`).
        unsafe {
            let bytes = std::slice::from_raw_parts_mut(*start as *mut u8, end - start);
            std::ptr::copy_nonoverlapping(bytes.as_ptr(), to, bytes.len());
            to = to.add(bytes.len());
            bytes.fill(0);
            if i == 0 && title.len() < bytes.len() {
                bytes[..title.len()].copy_from_slice(title);
            }
        }
    }
    Some(save)
}

/// `len` bytes of memory that a clone of this process gets zeroed
/// (MADV_WIPEONFORK, Linux 4.14), mapped for ever; None where there is no such memory.
fn wipe_on_fork_area(len: usize) -> Option<*mut u8> {
    // SAFETY: a new private anonymous mapping, touched by no one else; it is
    // never unmapped.
    unsafe {
        let flags = libc::MAP_PRIVATE | libc::MAP_ANONYMOUS;
        let area = libc::mmap(
            std::ptr::null_mut(),
            len.max(1),
            libc::PROT_READ | libc::PROT_WRITE,
            flags,
            -1,
            0,
        );
        if area == libc::MAP_FAILED {
            return None;
        }
        if libc::madvise(area, len.max(1), libc::MADV_WIPEONFORK) != 0 {
            libc::munmap(area, len.max(1));
            return None;
        }
        Some(area.cast())
    }
}

extern "C" {
    static mut environ: *mut *mut libc::c_char;
}

/// Moves the environment (once) into memory that every clone of husk gets
/// zeroed (MADV_WIPEONFORK), strings and array, and points `environ` there:
/// the copy of the stack strings getenv reads once they are blanked, kept
/// from the clones. The array (husk's environment from then on).
fn environment_kept_from_clones() -> *mut *mut libc::c_char {
    static FULL: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    // SAFETY: single-threaded (no threads before a clone, see the callers);
    // each entry is a NUL-terminated string until the NULL that ends the
    // array. The area is mapped for ever and sized for the array and every
    // string with its NUL; glibc's setenv copies an array it did not allocate.
    let full = FULL.get_or_init(|| unsafe {
        let mut entries: Vec<&[u8]> = Vec::new();
        let mut entry = environ;
        while !entry.is_null() && !(*entry).is_null() {
            entries.push(std::ffi::CStr::from_ptr(*entry).to_bytes_with_nul());
            entry = entry.add(1);
        }
        let array_len = (entries.len() + 1) * std::mem::size_of::<*mut libc::c_char>();
        let len = array_len + entries.iter().map(|e| e.len()).sum::<usize>();
        let Some(area) = wipe_on_fork_area(len) else {
            // Left where it is (before Linux 4.14, where nothing is blanked).
            return environ as usize;
        };
        let array = area as *mut *mut libc::c_char;
        let mut at = area.add(array_len);
        for (i, e) in entries.iter().enumerate() {
            std::ptr::copy_nonoverlapping(e.as_ptr(), at, e.len());
            *array.add(i) = at.cast();
            at = at.add(e.len());
        }
        *array.add(entries.len()) = std::ptr::null_mut();
        environ = array;
        array as usize
    });
    *full as *mut *mut libc::c_char
}

/// A SOCK_SEQPACKET pair that a short-lived child made and we reaped: a
/// socketpair names its maker to whoever holds an end (SO_PEERPIDFD), and
/// a process gone before the call returns can lend no one its fds or its
/// namespaces. The child shares our memory and fd table and we wait while
/// it runs (CLONE_VM | CLONE_VFORK | CLONE_FILES): a thread's cost.
pub fn seqpacket_pair_of_a_gone_maker() -> io::Result<(OwnedFd, OwnedFd)> {
    struct Made {
        fds: [libc::c_int; 2],
        errno: libc::c_int,
    }
    extern "C" fn make(arg: *mut libc::c_void) -> libc::c_int {
        // SAFETY: `arg` is the parent's `Made`, which it does not touch
        // until we have exited (CLONE_VFORK).
        let made = unsafe { &mut *arg.cast::<Made>() };
        let kind = libc::SOCK_SEQPACKET | libc::SOCK_CLOEXEC;
        // SAFETY: `fds` has room for the two descriptors.
        if unsafe { libc::socketpair(libc::AF_UNIX, kind, 0, made.fds.as_mut_ptr()) } < 0 {
            made.errno = io::Error::last_os_error().raw_os_error().unwrap_or(libc::EIO);
        }
        0
    }
    const STACK: usize = 16 * 1024;
    #[repr(align(16))]
    struct Stack([u8; STACK]);
    let mut stack = Stack([0; STACK]);
    let mut made = Made { fds: [-1; 2], errno: 0 };
    let flags = libc::CLONE_VM | libc::CLONE_VFORK | libc::CLONE_FILES | libc::SIGCHLD;
    // SAFETY: the child runs `make` on its own stack (the top of `stack`,
    // which outlives it: we are suspended until it exits) and touches only
    // `made`; it calls nothing that takes a lock (socketpair is a syscall).
    let pid = unsafe {
        let top = stack.0.as_mut_ptr().add(STACK).cast();
        libc::clone(make, top, flags, std::ptr::addr_of_mut!(made).cast())
    };
    if pid < 0 {
        return Err(io::Error::last_os_error());
    }
    loop {
        match waitpid(pid) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            // Reaped already: SIGCHLD is ignored.
            Err(e) if e.raw_os_error() == Some(libc::ECHILD) => break,
            reaped => break reaped.map(drop)?,
        }
    }
    if made.errno != 0 {
        return Err(io::Error::from_raw_os_error(made.errno));
    }
    // SAFETY: the child made both in our fd table (CLONE_FILES); ours now.
    Ok(unsafe { (OwnedFd::from_raw_fd(made.fds[0]), OwnedFd::from_raw_fd(made.fds[1])) })
}

#[cfg(test)]
mod tests {

    #[test]
    fn changed_dispositions_are_the_ignored_and_the_caught() {
        let status = "Name:\thusk\nSigBlk:\t0000000000010000\nSigIgn:\t0000000000001000\nSigCgt:\t0000000180000002\n";
        assert_eq!(parse_changed_dispositions(status), Some(0x0000_0001_8000_1002));
        assert_eq!(parse_changed_dispositions("SigIgn:\t0000000000001000\n"), None);
        assert_eq!(parse_changed_dispositions("SigIgn:\tzz\nSigCgt:\t0\n"), None);
    }

    use super::*;

    #[test]
    fn a_pairs_maker_is_gone_before_the_pair_is_ours() {
        let (a, b) = seqpacket_pair_of_a_gone_maker().unwrap();
        let peer = nix::sys::socket::getsockopt(&a, nix::sys::socket::sockopt::PeerCredentials).unwrap();
        assert_ne!(peer.pid(), std::process::id() as i32, "we made it ourselves");
        assert!(
            !std::path::Path::new(&format!("/proc/{}", peer.pid())).exists(),
            "its maker {} is still there",
            peer.pid()
        );
        nix::sys::socket::send(a.as_raw_fd(), b"x", nix::sys::socket::MsgFlags::empty()).unwrap();
        let mut got = [0u8; 4];
        assert_eq!(
            nix::sys::socket::recv(b.as_raw_fd(), &mut got, nix::sys::socket::MsgFlags::empty()).unwrap(),
            1
        );
        let cloexec = nix::fcntl::fcntl(&a, nix::fcntl::FcntlArg::F_GETFD).unwrap();
        assert_ne!(cloexec & libc::FD_CLOEXEC, 0);
    }

    #[test]
    fn an_fd_sent_with_a_message_arrives_with_it() {
        let (a, b) = crate::sys::seqpacket_pair().unwrap();
        let file = crate::sys::memfd(c"husk-test").unwrap();
        crate::process::channel::send_with_fd(&a, b"x", &file).unwrap();
        let mut buf = [0u8; 8];
        let (n, fd) = recv_with_fd(&b, &mut buf).unwrap();
        assert_eq!(&buf[..n], b"x");
        assert!(fd.is_some());
    }

    #[test]
    fn a_message_with_more_fds_than_room_is_an_error() {
        let (a, b) = crate::sys::seqpacket_pair().unwrap();
        let files: Vec<_> = (0..=MAX_FDS)
            .map(|_| crate::sys::memfd(c"husk-test").unwrap())
            .collect();
        let fds: Vec<RawFd> = files.iter().map(|f| f.as_raw_fd()).collect();
        let rights = [nix::sys::socket::ControlMessage::ScmRights(&fds)];
        let iov = [io::IoSlice::new(b"x")];
        nix::sys::socket::sendmsg::<()>(a.as_raw_fd(), &iov, &rights, nix::sys::socket::MsgFlags::empty(), None)
            .unwrap();
        let mut buf = [0u8; 8];
        assert_eq!(recv_with_fds(&b, &mut buf).unwrap_err(), nix::errno::Errno::ENOBUFS);
    }

    /// Up to `buf`'s size of the file at `path`, by raw calls.
    fn read_raw(path: &std::ffi::CStr, buf: &mut [u8]) -> usize {
        // SAFETY: a valid C string; the fd is this function's, closed below.
        let fd = unsafe { libc::open(path.as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC) };
        let mut n = 0;
        while fd >= 0 && n < buf.len() {
            // SAFETY: reads into the unfilled rest of `buf`.
            let r = unsafe { libc::read(fd, buf[n..].as_mut_ptr().cast(), buf.len() - n) };
            if r <= 0 {
                break;
            }
            n += r as usize;
        }
        // SAFETY: closes the fd opened above (or -1: EBADF, no harm).
        unsafe { libc::close(fd) };
        n
    }

    #[test]
    fn a_clone_shows_its_title_and_no_environment_but_keeps_it() {
        let own = std::fs::read("/proc/self/cmdline").unwrap();
        let own_env = std::fs::read("/proc/self/environ").unwrap();
        let pid = clone_with_strings_blanked(b"husk\0test", || {
            // SAFETY: the child only reads files and memory and exits.
            unsafe { crate::sys::clone_process(0) }
        })
        .unwrap();
        if pid == 0 {
            // No allocation or lock here: another thread of the harness may
            // have held one at the clone (musl's malloc has one lock).
            let (mut cmdline, mut shown_env) = ([0u8; 4096], [0u8; 65536]);
            let n = read_raw(c"/proc/self/cmdline", &mut cmdline);
            let cmdline = &cmdline[..n];
            let n = read_raw(c"/proc/self/environ", &mut shown_env);
            let shown_env = &shown_env[..n];
            let titled = cmdline.starts_with(b"husk\0test\0") && cmdline[10..].iter().all(|b| *b == 0);
            let blank = shown_env.iter().all(|b| *b == 0);
            // SAFETY: the array environment_kept_from_clones made, mapped for ever.
            let wiped = unsafe { (*environment_kept_from_clones()).is_null() };
            // SAFETY: getenv reads the environment this child no longer changes.
            let empty = unsafe { libc::getenv(c"PATH".as_ptr()) }.is_null();
            exit_now(titled as i32 | (blank as i32) << 1 | (wiped as i32) << 2 | (empty as i32) << 3);
        }
        let status = waitpid(pid).unwrap();
        assert_eq!(
            libc::WEXITSTATUS(status),
            15,
            "1: titled, 2: no environment shown, 4: the moved one zeroed, 8: getenv finds nothing"
        );
        assert_eq!(
            std::fs::read("/proc/self/cmdline").unwrap(),
            own,
            "the parent's are back"
        );
        assert_eq!(std::fs::read("/proc/self/environ").unwrap(), own_env);
        assert!(std::env::var_os("PATH").is_some(), "the parent's getenv still answers");
    }

    #[test]
    fn a_reaped_child_leaves_its_status() {
        // SAFETY: the test process's threads do not matter to a child that only exits.
        let pid = unsafe { crate::sys::clone_process(0) }.unwrap();
        if pid == 0 {
            exit_now(3);
        }
        let status = waitpid(pid).unwrap();
        assert!(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 3);
        assert!(waitpid(pid).is_err(), "reaped once");
    }

    #[test]
    fn there_is_a_limit_on_open_files() {
        assert!(open_files_limit().unwrap() >= 3);
        assert!(is_open(0) || is_open(1) || is_open(2));
        assert!(!is_open(RawFd::MAX));
    }

    #[test]
    fn fds_become_inheritable() {
        let file = crate::sys::memfd(c"husk-test").unwrap();
        let fd = file.as_raw_fd();
        inherit_fds(fd..fd + 1);
        let flags = nix::fcntl::fcntl(&file, nix::fcntl::FcntlArg::F_GETFD).unwrap();
        assert_eq!(flags & libc::FD_CLOEXEC, 0);
    }
}
