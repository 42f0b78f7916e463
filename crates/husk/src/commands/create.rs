//! `create` and `run`.

use libhusk::container::{self, CreateOptions, RunOptions};
use libhusk::Result;

use super::Runtime;
use crate::cli::{CreateArgs, RunArgs};

pub fn create(rt: &Runtime, a: &CreateArgs) -> Result<()> {
    container::create(&rt.store, &options(a), rt.mode).map(drop)
}

/// Returns the exit status husk exits with: the container process's when it
/// ran in the foreground.
pub fn run(rt: &Runtime, a: &RunArgs) -> Result<i32> {
    let opts = RunOptions {
        create: options(&a.create),
        detach: a.detach,
        keep: a.keep,
        no_subreaper: a.no_subreaper,
    };
    container::run(&rt.store, &opts, rt.mode)
}

fn options(a: &CreateArgs) -> CreateOptions {
    CreateOptions {
        id: a.id.clone(),
        bundle: a.bundle.clone(),
        pid_file: a.pid_file.clone(),
        console_socket: a.console_socket.clone(),
        no_pivot: a.no_pivot,
        no_new_keyring: a.no_new_keyring,
        preserve_fds: a.preserve_fds,
    }
}
