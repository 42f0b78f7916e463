//! `checkpoint` and `restore` (CRIU), with runc's flags.

use std::path::PathBuf;

use clap::Args;
use libhusk::container::{self, CheckpointOptions, RestoreOptions};
use libhusk::criu::CriuOptions;
use libhusk::Result;

use super::Runtime;

// The flags checkpoint and restore share. (Not a doc comment: a flattened
// struct's doc would replace the command's about line.)
#[derive(Args, Debug, Clone)]
pub struct CriuArgs {
    /// Directory of the checkpoint's images (default ./checkpoint)
    #[arg(long, value_name = "DIR")]
    pub image_path: Option<PathBuf>,
    /// Directory for criu's work files and log (default: the image directory)
    #[arg(long, value_name = "DIR")]
    pub work_path: Option<PathBuf>,
    /// Allow open TCP connections
    #[arg(long)]
    pub tcp_established: bool,
    /// Allow unix sockets connected outside the container
    #[arg(long)]
    pub ext_unix_sk: bool,
    /// The container is a shell job
    #[arg(long)]
    pub shell_job: bool,
    /// Handle file locks
    #[arg(long)]
    pub file_locks: bool,
    /// What criu does with cgroups: soft, full, strict or ignore (default soft)
    #[arg(long, value_name = "MODE")]
    pub manage_cgroups_mode: Option<String>,
    /// Make this namespace empty rather than restore it (network)
    #[arg(long, value_name = "NS")]
    pub empty_ns: Vec<String>,
    /// Deduplicate memory images against the parent's
    #[arg(long)]
    pub auto_dedup: bool,
    /// Restore memory lazily (not supported)
    #[arg(long)]
    pub lazy_pages: bool,
}

#[derive(Args, Debug)]
pub struct CheckpointArgs {
    #[command(flatten)]
    pub criu: CriuArgs,
    /// Image directory of a previous pre-dump, relative to --image-path
    #[arg(long, value_name = "DIR")]
    pub parent_path: Option<PathBuf>,
    /// Leave the container running after the checkpoint
    #[arg(long)]
    pub leave_running: bool,
    /// Dump only the memory, leaving the container running
    #[arg(long)]
    pub pre_dump: bool,
    /// Send the memory pages to a criu page server at ADDRESS:PORT
    #[arg(long, value_name = "ADDRESS:PORT")]
    pub page_server: Option<String>,
    /// Skip TCP connections being established or closed
    #[arg(long)]
    pub tcp_skip_in_flight: bool,
    /// Dump files unlinked but open by linking them back
    #[arg(long)]
    pub link_remap: bool,
    /// The container's ID
    pub id: String,
}

#[derive(Args, Debug)]
pub struct RestoreArgs {
    #[command(flatten)]
    pub criu: CriuArgs,
    /// Bundle directory (default: current directory)
    #[arg(short, long, value_name = "DIR")]
    pub bundle: Option<PathBuf>,
    /// Return once the container runs instead of waiting for it
    #[arg(short, long)]
    pub detach: bool,
    /// Write the restored process's pid to this file
    #[arg(long, value_name = "FILE")]
    pub pid_file: Option<PathBuf>,
    /// Unix socket that receives the restored terminal's pty master
    #[arg(long, value_name = "PATH")]
    pub console_socket: Option<PathBuf>,
    /// Accepted as runc does (criu makes the mount namespace)
    #[arg(long)]
    pub no_pivot: bool,
    /// Do not become a subreaper while waiting
    #[arg(long)]
    pub no_subreaper: bool,
    /// The restored container's ID
    pub id: String,
}

fn criu_options(a: &CriuArgs) -> CriuOptions {
    CriuOptions {
        image_path: a.image_path.clone(),
        work_path: a.work_path.clone(),
        tcp_established: a.tcp_established,
        ext_unix_sk: a.ext_unix_sk,
        shell_job: a.shell_job,
        file_locks: a.file_locks,
        manage_cgroups_mode: a.manage_cgroups_mode.clone(),
        empty_ns: a.empty_ns.clone(),
        auto_dedup: a.auto_dedup,
        lazy_pages: a.lazy_pages,
        ..Default::default()
    }
}

pub fn checkpoint(rt: &Runtime, a: &CheckpointArgs) -> Result<()> {
    let opts = CheckpointOptions {
        id: a.id.clone(),
        criu: CriuOptions {
            page_server: a.page_server.clone(),
            tcp_skip_in_flight: a.tcp_skip_in_flight,
            link_remap: a.link_remap,
            ..criu_options(&a.criu)
        },
        leave_running: a.leave_running,
        pre_dump: a.pre_dump,
        parent_path: a.parent_path.clone(),
    };
    container::checkpoint(&rt.store, &opts, rt.mode)
}

/// Returns the exit status husk exits with: the restored process's when it
/// ran in the foreground.
pub fn restore(rt: &Runtime, a: &RestoreArgs) -> Result<i32> {
    let opts = RestoreOptions {
        id: a.id.clone(),
        bundle: a.bundle.clone(),
        criu: criu_options(&a.criu),
        detach: a.detach,
        pid_file: a.pid_file.clone(),
        console_socket: a.console_socket.clone(),
        no_pivot: a.no_pivot,
        no_subreaper: a.no_subreaper,
    };
    container::restore(&rt.store, &opts, rt.mode)
}
