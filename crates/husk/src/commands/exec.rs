//! `exec`.

use libhusk::container::exec::{self, ExecOptions};
use libhusk::Result;

use super::Runtime;
use crate::cli::ExecArgs;

/// Returns the exit status of the process when it ran in the foreground.
pub fn exec(rt: &Runtime, a: &ExecArgs) -> Result<i32> {
    let opts = ExecOptions {
        process: a.process.clone(),
        tty: a.tty,
        console_socket: a.console_socket.clone(),
        detach: a.detach,
        pid_file: a.pid_file.clone(),
        cwd: a.cwd.clone(),
        env: a.env.clone(),
        user: a.user.clone(),
        additional_gids: a.additional_gids.clone(),
        cap: a.cap.clone(),
        no_new_privs: a.no_new_privs,
        apparmor: a.apparmor.clone(),
        process_label: a.process_label.clone(),
        preserve_fds: a.preserve_fds,
        ignore_paused: a.ignore_paused,
        cgroup: a.cgroup.clone(),
        id: a.id.clone(),
        command: a.command.clone(),
    };
    exec::exec(&rt.store, &opts, rt.mode)
}
