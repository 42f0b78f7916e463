//! `run`: create and start, then in the foreground wait and delete.

use super::create::{remove_pid_file, spawn, Caller, Spawned};
use super::delete::{kill_and_wait, remove_container, remove_unless_replaced};
use super::start::{poststart, relay_until_ready, start_in_foreground, start_process};
use super::wait::kill_and_reap;
use super::{Mode, RunOptions};
use crate::container::endings::{Endings, Held};
use crate::container::foreground::Foreground;
use crate::error::Result;
use crate::log;
use crate::state::Store;

/// Creates and starts a container; in the foreground, waits for its process
/// and returns its exit status (128 + signal when killed), then deletes the
/// container unless `keep`. Detached, returns 0 once the process runs.
///
/// As for [`create`](super::create), the caller must be single-threaded and may be
/// re-executed once. In the foreground this process also blocks SIGCHLD and
/// the signals it forwards to the container (TERM, INT, HUP, QUIT, USR1,
/// USR2, WINCH), becomes a child subreaper, and proxies its terminal when the
/// process has one; that stays so after the call.
pub fn run(store: &Store, args: &RunOptions, mode: Mode) -> Result<i32> {
    crate::process::seal::ensure_sealed()?;
    // Before the foreground opens anything of its own.
    super::hold_passed_fds(args.create.preserve_fds, super::listen_fds())?;
    if args.detach {
        let held = Held::unheld();
        let pid_file = args.create.pid_file.as_deref();
        let ran = spawn(store, &args.create, mode, Caller::Run(Endings::Held(&held)))
            .and_then(|s| start_detached(store, s, &held, pid_file));
        held.outcome(&ran);
        return ran.map(|()| 0);
    }
    // Held by `spawn` once it has read the bundle.
    let foreground = Foreground::unheld();
    if args.no_subreaper {
        let _ = nix::sys::prctl::set_child_subreaper(false);
    }
    let Spawned {
        locked,
        saved,
        console,
        early,
        hierarchies,
    } = spawn(store, &args.create, mode, Caller::Run(Endings::Foreground(&foreground)))?;
    let dir = locked.dir.clone();
    drop(locked); // other commands (kill, state, delete -f) must work while we wait
    let master = console.inspect(sized_as_the_callers);
    log::begin("start");
    let code = match start_in_foreground(&dir, &saved, early, &foreground) {
        Ok(relay) => foreground.wait(saved.pid, master, relay),
        Err(e) => {
            kill_and_reap(saved.pid, Some(&saved.cgroup));
            remove_pid_file(args.create.pid_file.as_deref(), saved.pid);
            Err(e)
        }
    };
    if !args.keep || code.is_err() {
        if let Err(e) = remove_unless_replaced(store, &saved, hierarchies.as_deref(), false) {
            log::warn(&format!("remove container {}: {e}", args.create.id));
        }
    }
    code
}

/// Starts the program, and relays its notifications until READY=1 with
/// the lock let go. A container that cannot be started, or whose relay
/// fails, is killed and removed (and its `pid_file`); so is one whose start
/// an ending signal `held` ended before the poststart hooks were done.
fn start_detached(store: &Store, spawned: Spawned, held: &Held, pid_file: Option<&std::path::Path>) -> Result<()> {
    let Spawned {
        locked, saved, early, ..
    } = spawned;
    log::begin("start");
    let endings = Endings::Held(held);
    let notifications = match start_process(&locked.dir, &saved, early, Some(endings)) {
        Ok(n) => n,
        Err(e) => {
            let _ = kill_and_wait(&saved).and_then(|()| remove_container(locked, &saved));
            remove_pid_file(pid_file, saved.pid);
            return Err(e);
        }
    };
    // kill, state, delete -f must work while the poststart hooks run and we
    // wait for READY=1.
    drop(locked);
    let relayed = match poststart(&saved, Some(endings)) {
        Ok(()) => {
            // Started: as before `run -d` held them, a signal that comes
            // while it waits for READY=1 ends husk, the container running.
            held.let_go();
            relay_until_ready(notifications)
        }
        // `held` raises its signal once the container is removed.
        Err(e) => Err(e),
    };
    if relayed.is_err() {
        // Only once it is known to be ours: a `delete -f` and a `create` may
        // have made another under its id, and cgroup, meanwhile.
        let _ = remove_unless_replaced(store, &saved, None, true);
        remove_pid_file(pid_file, saved.pid);
    }
    relayed
}

/// The pty sized as the caller's terminal before the process starts: `wait`
/// does it too, but only once the poststart hooks have run, and until then
/// the process saw a 0x0 terminal (review 43b; runc the same).
fn sized_as_the_callers(master: &std::os::fd::OwnedFd) {
    use std::os::fd::AsFd;
    if let Some((rows, cols)) = crate::process::console::caller_size() {
        crate::process::console::set_size(master.as_fd(), rows, cols);
    }
}
