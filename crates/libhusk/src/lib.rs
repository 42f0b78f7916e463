//! libhusk: the OCI container runtime behind the `husk` command, as a library.
//!
//! It takes an OCI bundle (a `config.json` and a root filesystem) and runs it
//! as a container, doing all the work itself: namespaces, uid/gid maps,
//! mounts, devices, pivot_root, capabilities, rlimits, seccomp, cgroups v1 and
//! v2 (directly or through systemd), hooks. No daemon and no helper process:
//! the container's init is cloned from the calling process straight into its
//! namespaces, and after [`container::create`] returns only the container's
//! processes remain. The `husk` binary is runc's command line over this crate.
//!
//! # Layers
//!
//! From the caller down:
//! - [`container`]: the lifecycle as library calls: [`container::create`],
//!   [`container::start`], [`container::state`], [`container::kill`],
//!   [`container::delete`], [`container::run`], [`container::list`],
//!   [`container::exec::exec`], and [`container::control`] (pause, resume,
//!   pids, events, update). Each takes a [`state::Store`].
//! - [`spec`]: `config.json` read and validated into a complete plan without
//!   side effects (every error names the field at fault), then prepared in a
//!   step of its own (the seccomp cache, systemd lookups).
//! - [`process`]: what runs in the cloned children (the container's init and
//!   the exec process), the parent/child channel, and
//!   [`process::seal`] (CVE-2019-5736).
//! - [`rootfs`]: the container's filesystem: mounts, devices, and the in-root
//!   path resolver ([`rootfs::resolve`]).
//! - [`cgroups`] (a driver for cgroupfs v1 and v2, systemd, or none),
//!   [`seccomp`], [`hooks`]: limits, syscall filters, lifecycle hooks.
//! - [`state`]: the state root, one directory per container, with its lock.
//! - [`sys`]: the raw syscalls, each behind a small safe function.
//! - [`error`] and [`log`]: one-line errors that keep the errno and a kind,
//!   and where warnings go.
//!
//! # Usage
//!
//! ```no_run
//! use std::time::Duration;
//! use libhusk::container::{self, CreateOptions, Mode};
//! use libhusk::state::Store;
//!
//! fn main() -> libhusk::Result<()> {
//!     // First thing: may re-execute this program once (see below).
//!     libhusk::process::seal::ensure_sealed()?;
//!     let store = Store::new("/run/my-runtime".into());
//!     let options = CreateOptions {
//!         id: "demo".into(),
//!         bundle: Some("/path/to/bundle".into()),
//!         ..CreateOptions::default()
//!     };
//!     let pid = container::create(&store, &options, Mode::default())?;
//!     container::start(&store, "demo")?;
//!     let status = container::wait(pid, Duration::from_secs(60))?;
//!     container::delete(&store, "demo", true)?;
//!     println!("exited with {status}");
//!     Ok(())
//! }
//! ```
//!
//! `examples/run.rs` is this as a program, and [`container::run`] does it in
//! one call (with signal forwarding and a proxied terminal).
//!
//! # What the calling program must do
//!
//! - **Stay single-threaded** when it calls [`container::create`],
//!   [`container::run`] or [`container::exec::exec`]: the container's init
//!   (and the exec process) is a clone of the calling process, which copies
//!   only the calling thread, and joining a user namespace needs a
//!   single-threaded caller. Start no threads before these calls, and use no
//!   library that does.
//! - **Let libhusk re-execute it once.** These calls first make sure the
//!   program runs from a copy of its binary that nobody can write (a
//!   read-only bind mount, or a sealed memfd when rootless), so that a
//!   container cannot overwrite the binary its init was cloned from
//!   (CVE-2019-5736). Unless it already does, the copy becomes the process's
//!   executable in place where the kernel allows it (root: its segments are
//!   remapped from the copy, its data moved to anonymous memory), and
//!   otherwise the program is re-executed from the copy with the same
//!   arguments and environment, and starts again from `main`. Call
//!   [`process::seal::ensure_sealed`] at the top of `main`, before anything
//!   with side effects, so that a re-exec happens there.
//! - **Reap its children** only through [`container::wait`] (or leave them
//!   to [`container::run`]): the init of a created container is the caller's
//!   child, and a caller that ignores SIGCHLD or reaps every child loses its
//!   exit status.
//! - **Know that SIGINT, SIGTERM, SIGHUP and SIGQUIT are held** (blocked)
//!   while [`container::create`], a detached [`container::run`] or a
//!   detached [`container::exec::exec`] sets up, those the caller neither
//!   blocks nor ignores: one that comes fails the call, which undoes what it
//!   made, and is raised again as the call returns, reaching the caller's
//!   handler (or default action) then. A foreground `run` or `exec` takes
//!   them for the container's process instead (see [`container::run`]).
//! - Optionally install a [`log::Sink`] for warnings and debug lines (without
//!   one, warnings go to stderr).
#![warn(clippy::undocumented_unsafe_blocks)]
// Raw syscalls live in sys/, behind safe functions; elsewhere `unsafe` is an
// error, but for the few clone calls whose contract the caller keeps.
#![deny(unsafe_code)]

pub mod cgroups;
#[warn(missing_docs)]
pub mod container;
#[warn(missing_docs)]
pub mod criu;
#[warn(missing_docs)]
pub mod error;
pub mod hooks;
#[warn(missing_docs)]
pub mod log;
pub mod netdev;
pub mod process;
pub mod rootfs;
pub mod seccomp;
pub mod spec;
#[warn(missing_docs)]
pub mod state;
#[allow(unsafe_code)]
pub mod sys;
#[cfg(test)]
mod test_support;

pub use error::{Error, Result};

/// Where root keeps container state unless told otherwise (`--root`).
pub const DEFAULT_ROOT: &str = "/run/husk";
/// Compiled seccomp filters, in the state root; '#' is never in a container id.
pub const CACHE_DIR: &str = "#seccomp";
