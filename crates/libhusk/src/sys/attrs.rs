//! Process attributes that nix does not wrap (or wraps in types husk's plans do
//! not use): resource limits, I/O priority, personality, the scheduler, the
//! NUMA memory policy and the session keyring. Each applies to the calling process.

use std::ffi::CStr;
use std::io;

use super::{check, check_int};

/// setrlimit's resource: an enum type in glibc, an int in musl.
#[cfg(target_env = "gnu")]
pub type Resource = libc::__rlimit_resource_t;
#[cfg(not(target_env = "gnu"))]
pub type Resource = libc::c_int;

pub fn setrlimit(resource: Resource, limit: &libc::rlimit) -> io::Result<()> {
    // SAFETY: setrlimit reads a live rlimit.
    check_int(unsafe { libc::setrlimit(resource, limit) }).map(drop)
}

/// Sets this process's I/O priority (ioprio_set, IOPRIO_WHO_PROCESS 0):
/// class << 13 | level.
pub fn set_io_priority(prio: i32) -> io::Result<()> {
    const IOPRIO_WHO_PROCESS: i32 = 1;
    // SAFETY: plain syscall with integer arguments.
    check(unsafe { libc::syscall(libc::SYS_ioprio_set, IOPRIO_WHO_PROCESS, 0, prio) }).map(drop)
}

/// Sets the execution domain (personality(2)); returns the previous one.
pub fn personality(persona: libc::c_ulong) -> io::Result<libc::c_int> {
    // SAFETY: plain syscall with an integer argument.
    check_int(unsafe { libc::personality(persona) })
}

/// Sets the NUMA memory policy of the calling thread (set_mempolicy(2)):
/// `mode` with its flags, and the nodes of `mask` (64 a word; none when empty).
pub fn set_mempolicy(mode: i32, mask: &[u64]) -> io::Result<()> {
    // The kernel reads maxnode - 1 bits of the mask, an array of unsigned
    // long: u64 words are laid out alike on 64-bit and little-endian hosts.
    let maxnode = if mask.is_empty() { 0 } else { mask.len() as u64 * 64 + 1 };
    let ptr = if mask.is_empty() {
        std::ptr::null()
    } else {
        mask.as_ptr()
    };
    // SAFETY: `ptr` is null or points at `mask`, borrowed for the call, of
    // which the kernel reads at most maxnode - 1 bits (its whole length).
    check(unsafe { libc::syscall(libc::SYS_set_mempolicy, mode, ptr, maxnode) }).map(drop)
}

/// What sched_setattr(2) takes, but its size.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SchedParams {
    pub policy: u32,
    pub flags: u64,
    pub nice: i32,
    pub priority: u32,
    pub runtime: u64,
    pub deadline: u64,
    pub period: u64,
}

/// Sets this process's scheduling policy and its parameters.
pub fn sched_setattr(p: &SchedParams) -> io::Result<()> {
    /// The kernel's struct sched_attr (version 1, without the utilization clamps).
    #[repr(C)]
    struct SchedAttr {
        size: u32,
        policy: u32,
        flags: u64,
        nice: i32,
        priority: u32,
        runtime: u64,
        deadline: u64,
        period: u64,
    }
    let attr = SchedAttr {
        size: std::mem::size_of::<SchedAttr>() as u32,
        policy: p.policy,
        flags: p.flags,
        nice: p.nice,
        priority: p.priority,
        runtime: p.runtime,
        deadline: p.deadline,
        period: p.period,
    };
    // SAFETY: attr is a valid sched_attr, its size in its first field, for the
    // duration of the call.
    check(unsafe { libc::syscall(libc::SYS_sched_setattr, 0, &attr as *const SchedAttr, 0) }).map(drop)
}

/// Joins a new session keyring named `name` (keyctl KEYCTL_JOIN_SESSION_KEYRING).
pub fn join_session_keyring(name: &CStr) -> io::Result<()> {
    const KEYCTL_JOIN_SESSION_KEYRING: libc::c_long = 1;
    // SAFETY: plain syscall with a valid C string.
    check(unsafe { libc::syscall(libc::SYS_keyctl, KEYCTL_JOIN_SESSION_KEYRING, name.as_ptr()) }).map(drop)
}
