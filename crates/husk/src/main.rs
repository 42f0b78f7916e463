//! husk: a daemonless OCI container runtime with runc's command line, over libhusk.
//!
//! No Rust `main`: `main` below is the C entry point, and Rust's own start
//! (reading /proc/self/maps for the main thread's stack guard, stack-overflow
//! handlers on an alternate stack) is skipped: 36 syscalls at start become
//! 19. create, run and exec seal husk (libhusk's process::seal) before clap
//! parses anything: where that takes a re-exec (rootless), the first start
//! does no work that the second does again. Both together, interleaved
//! against the previous binary: exec 0.94, run 0.96-0.98,
//! create+start+delete 0.99 of its time. What husk needs of Rust's start is
//! done in `start_process`. The arguments reach `std::env::args` from glibc's
//! init_array, as they do with a Rust `main`. musl passes init_array nothing,
//! so a musl build (the shipped one) keeps Rust's `main`: its start costs
//! ~12 syscalls more (the stack-overflow handlers), against the 0.4 ms of
//! `cpuid`s that glibc's own start takes (docs/design.md, record 4).
#![cfg_attr(all(not(test), target_env = "gnu"), no_main)]
#![deny(unsafe_code)]
// The unit tests get libtest's main instead of the one below.
#![cfg_attr(test, allow(dead_code))]

mod cli;
mod commands;
mod fast_cli;
mod log;
#[cfg(target_env = "musl")]
mod musl;
mod out;

use clap::Parser;

use cli::Cli;

/// The process's entry point with glibc (see the crate's comment).
#[cfg(all(not(test), target_env = "gnu"))]
#[allow(unsafe_code)]
#[unsafe(no_mangle)]
extern "C" fn main(_argc: std::ffi::c_int, _argv: *const *const std::ffi::c_char) -> std::ffi::c_int {
    start()
}

/// The process's entry point with another libc (see the crate's comment).
#[cfg(all(not(test), not(target_env = "gnu")))]
fn main() {
    start()
}

fn start() -> ! {
    // Hardening only: nothing is worse off where it cannot be done.
    let _ = libhusk::sys::exe::protect_relro();
    // After the message, SIGABRT to this very thread: with musl, the
    // abort() that ends a panic signals the thread id cached at start, which
    // in the container's init or exec's joiner (raw clones) is husk's.
    // (glibc's asks the kernel: nothing to do there.)
    #[cfg(not(target_env = "gnu"))]
    {
        let report = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            report(info);
            libhusk::sys::process::abort_self()
        }));
    }
    start_process();
    if starts_container_process(std::env::args_os().skip(1)) {
        // Before clap parses anything: the first start of husk does no work
        // that the sealed one does again. commands::prepare checks again,
        // for the cases this reading misses.
        let _ = libhusk::process::seal::ensure_sealed();
    }
    husk()
}

/// Whether the command (the first word that is neither a global flag nor a
/// global flag's value) is one that starts a container process: create, run
/// or exec. A wrong answer costs only time: a needless seal, or the one in
/// commands::prepare.
fn starts_container_process(args: impl Iterator<Item = std::ffi::OsString>) -> bool {
    const TAKES_VALUE: [&str; 5] = ["--root", "--log", "--log-format", "--rootless", "--criu"];
    let mut args = args;
    while let Some(arg) = args.next() {
        let Some(word) = arg.to_str() else {
            return false;
        };
        if TAKES_VALUE.contains(&word) {
            args.next();
        } else if !word.starts_with('-') {
            return matches!(word, "create" | "run" | "exec");
        }
    }
    false
}

/// What Rust's start would do that husk relies on. A closed 0, 1 or 2 gets
/// /dev/null, or the first file husk opens (a state file, a cgroup file)
/// would become its stdout or stderr. SIGPIPE is ignored: a closed pipe is an
/// error husk reports (EPIPE), not a silent death halfway through a command.
/// SIGCHLD ignored by the caller (inherited through exec) would have the
/// kernel reap the container's process unseen: `run` would wait for it
/// forever; it gets its default back.
#[allow(unsafe_code)]
fn start_process() {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    use std::os::fd::{BorrowedFd, IntoRawFd};
    // SAFETY: 0..=2 are only polled, never closed or owned here.
    let std_fds = [0, 1, 2].map(|fd| unsafe { BorrowedFd::borrow_raw(fd) });
    let mut fds = std_fds.map(|fd| PollFd::new(fd, PollFlags::empty()));
    let closed = match poll(&mut fds, PollTimeout::ZERO) {
        Ok(_) => fds.map(|fd| fd.revents().is_some_and(|r| r.contains(PollFlags::POLLNVAL))),
        // As Rust's start does when poll fails (EINVAL below 3 open files, ENOMEM).
        Err(_) => {
            std_fds.map(|fd| nix::fcntl::fcntl(fd, nix::fcntl::FcntlArg::F_GETFD) == Err(nix::errno::Errno::EBADF))
        }
    };
    for _ in closed.iter().filter(|closed| **closed) {
        // The lowest free fd is the closed one; it stays open for good,
        // and across exec (std's File would be close-on-exec).
        match nix::fcntl::open("/dev/null", nix::fcntl::OFlag::O_RDWR, nix::sys::stat::Mode::empty()) {
            Ok(null) => {
                let _ = null.into_raw_fd();
            }
            // Without it, the next file husk opens would become this stdio
            // fd and get what husk prints (or the container's stdio). Rust's
            // start (and Go's) abort here too.
            Err(_) => std::process::abort(),
        }
    }
    use nix::sys::signal::{signal, SigHandler, Signal};
    // SAFETY: SIG_IGN and SIG_DFL install no handler; nothing else runs yet.
    let _ = unsafe { signal(Signal::SIGPIPE, SigHandler::SigIgn) };
    let _ = unsafe { signal(Signal::SIGCHLD, SigHandler::SigDfl) };
    // Rust's start (kept with musl) catches SIGSEGV and SIGBUS to name a
    // stack overflow; the clones would inherit the handler, which puts the
    // default back with sigaction, and a fault under a seccomp filter that
    // refuses it would loop (review 65 L1). As with glibc: no handler.
    #[cfg(not(target_env = "gnu"))]
    {
        let _ = unsafe { signal(Signal::SIGSEGV, SigHandler::SigDfl) };
        let _ = unsafe { signal(Signal::SIGBUS, SigHandler::SigDfl) };
    }
}

fn husk() -> ! {
    let cli = match fast_cli::parse(std::env::args_os())
        .map(Ok)
        .unwrap_or_else(Cli::try_parse)
    {
        Ok(cli) => cli,
        Err(e) => usage_error(e),
    };
    // The fds the container gets (3, 4, ...) must not be taken by the log file.
    commands::prepare(&cli);
    if let Err(e) = log::init(cli.log.as_deref(), cli.log_format, cli.debug) {
        eprintln!("husk: error: {e}");
        std::process::exit(1);
    }
    // exec passes its process's status through: its own failure is 255, as
    // runc's, out of the range a program's exit status usually takes.
    let failed = match cli.command {
        Some(cli::Command::Exec(_)) => 255,
        _ => 1,
    };
    match commands::dispatch(cli) {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            libhusk::log::error(e.message());
            std::process::exit(failed);
        }
    }
}

/// Help and version go to stdout as clap prints them; a usage error becomes one line.
fn usage_error(e: clap::Error) -> ! {
    use clap::error::ErrorKind;
    if matches!(
        e.kind(),
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
    ) {
        e.exit();
    }
    let text = e.render().to_string();
    let first = text.lines().next().unwrap_or("invalid arguments");
    eprintln!(
        "husk: error: {}{}",
        first.trim_start_matches("error: "),
        global_flag_hint(&e)
    );
    std::process::exit(2);
}

/// runc's global flags go before the command (`husk --root R list`); given
/// after it, clap only says the argument is unexpected.
fn global_flag_hint(e: &clap::Error) -> String {
    use clap::error::{ContextKind, ContextValue, ErrorKind};
    if e.kind() != ErrorKind::UnknownArgument {
        // A global flag before the command, with a bad value or none.
        return String::new();
    }
    let Some(ContextValue::String(arg)) = e.get(ContextKind::InvalidArg) else {
        return String::new();
    };
    let flag = arg.split('=').next().unwrap_or(arg);
    let globals = <Cli as clap::CommandFactory>::command();
    let is_global = globals
        .get_arguments()
        .any(|a| a.get_long().is_some_and(|l| flag == format!("--{l}")));
    if is_global {
        format!(" ({flag} is a global flag: put it before the command, as in husk {flag} ... COMMAND)")
    } else {
        String::new()
    }
}

#[cfg(test)]
mod tests {
    use super::starts_container_process;

    fn starts(line: &str) -> bool {
        starts_container_process(line.split_whitespace().map(Into::into))
    }

    #[test]
    fn the_command_word_is_found_past_global_flags_and_their_values() {
        assert!(starts("run --bundle b c1"));
        assert!(starts("--root /r --log run --debug create -b b c1")); // --log's value is "run"
        assert!(starts("--root=/r --systemd-cgroup exec c1 true"));
        assert!(!starts("--root run state c1")); // "run" is the root
        assert!(starts("--criu /usr/sbin/criu create c1")); // review 67 I4
        assert!(!starts("--criu create state c1"));
        assert!(!starts("state run")); // a container named run
        assert!(!starts("--debug list"));
        assert!(!starts("--root"));
        assert!(!starts(""));
    }
}
