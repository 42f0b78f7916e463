//! The lifecycle of a container, on the caller's side: [`create`], [`start`],
//! [`state`](fn@state), [`kill`], [`delete`], [`run`] and [`list`]; [`exec`] runs one
//! more process in a running container, [`control`] pauses, resumes, lists
//! processes, reports events and updates limits; [`checkpoint`] and
//! [`restore`] save a running container to disk and make it again (CRIU).
//!
//! Every call takes the [`Store`](crate::state::Store) where container state lives (`--root`) and
//! returns [`Result`], whose error is one line that names what
//! failed. A call that starts a container process ([`create`], [`run`],
//! [`exec::exec`]) needs a single-threaded caller, and first makes a
//! read-only copy of the calling program's binary its executable, in place
//! or by re-executing it once ([`crate::process::seal::ensure_sealed`]): call
//! that at the top of `main`.

mod checkpoint;
pub mod control;
mod create;
mod delete;
mod endings;
pub mod exec;
pub(crate) mod foreground;
mod members;
pub(crate) mod notify;
mod query;
mod restore;
mod run;
mod start;
pub(crate) mod stdio;
mod wait;

pub use checkpoint::{checkpoint, CheckpointOptions};
pub use create::create;
pub use delete::{delete, kill};
pub use query::{list, state};
pub use restore::{restore, RestoreOptions};
pub use run::run;
pub use start::start;
pub use stdio::{hold_passed_fds, listen_fds};
pub use wait::wait;

use std::os::fd::OwnedFd;
use std::path::PathBuf;

use crate::error::{Error, Result};
use crate::state::{self, Saved, Status};
use crate::sys;

/// What `create` needs besides the bundle's config.json: runc's create flags.
#[derive(Clone, Debug, Default)]
pub struct CreateOptions {
    /// The container's name, unique under the state root.
    pub id: String,
    /// The bundle directory; the current directory when `None`.
    pub bundle: Option<PathBuf>,
    /// A file to write the init's pid to.
    pub pid_file: Option<PathBuf>,
    /// The unix socket that receives the pty master of a terminal container.
    pub console_socket: Option<PathBuf>,
    /// Move the rootfs over `/` and chroot instead of pivot_root (for ramfs roots).
    pub no_pivot: bool,
    /// Keep the caller's session keyring instead of a new one for the container.
    pub no_new_keyring: bool,
    /// How many fds after stdio (3, 4, ...) the container process gets.
    pub preserve_fds: u32,
}

/// `run`: create and start, then (unless `detach`) wait for the process and
/// delete the container (unless `keep`).
#[derive(Clone, Debug, Default)]
pub struct RunOptions {
    /// The container to create, as for [`create`].
    pub create: CreateOptions,
    /// Return once the container's process runs instead of waiting for it.
    pub detach: bool,
    /// Keep the stopped container instead of deleting it after its exit.
    pub keep: bool,
    /// In the foreground, do not become a subreaper (runc's --no-subreaper):
    /// what the container's process leaves behind goes to the caller's.
    pub no_subreaper: bool,
}

/// A container as `state` and `list` see it: its record and its status now.
#[derive(Debug)]
pub struct ContainerState {
    /// What husk recorded about the container.
    pub saved: Saved,
    /// Its status now, asked of its init.
    pub status: Status,
}

impl ContainerState {
    /// The runtime-spec state document (`husk state`).
    pub fn oci_state(&self) -> state::OciState<'_> {
        self.saved.oci_state(self.status)
    }
}

/// Global options that shape how containers are made (husk's `--rootless`
/// and `--systemd-cgroup`).
#[derive(Clone, Copy, Debug, Default)]
pub struct Mode {
    /// The caller is an ordinary user, or root in a user namespace it did not
    /// get from the host: devices are bound rather than made, and cgroups are
    /// used only where delegated (skipped with a warning when limits were asked).
    pub rootless: bool,
    /// The cgroup is a transient systemd scope (or slice), made over D-Bus.
    pub systemd_cgroup: bool,
}

/// A pidfd for the container's init, refusing a process that merely reused its pid.
pub(crate) fn open_init(saved: &Saved) -> Result<OwnedFd> {
    let not_running = || Error::not_running(&saved.id);
    let pidfd = sys::pidfd_open(saved.pid).map_err(|_| not_running())?;
    // Checked after pidfd_open: from here on the pidfd cannot refer to another process.
    if !saved.init_alive() {
        return Err(not_running());
    }
    Ok(pidfd)
}
