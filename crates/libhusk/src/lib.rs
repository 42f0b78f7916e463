//! libhusk: the OCI container runtime behind the `husk` command, as a library.
#![warn(clippy::undocumented_unsafe_blocks)]

pub mod cgroups;
pub mod container;
pub mod error;
pub mod hooks;
pub mod log;
pub mod process;
pub mod rootfs;
pub mod seccomp;
pub mod spec;
pub mod state;
pub mod sys;

pub use error::{Error, Result};
