//! The bpf(2) commands husk uses: loading a program and attaching it to a
//! cgroup. Each builds its `union bpf_attr` from typed arguments, so no
//! caller can hand the kernel a pointer.

use std::ffi::CStr;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};

use super::{check, owned};

const BPF_PROG_LOAD: i32 = 5;
const BPF_PROG_ATTACH: i32 = 8;

/// Room for every field of `union bpf_attr` that husk sets; the rest is zero.
type Attr = [u8; 128];

fn put32(attr: &mut Attr, off: usize, v: u32) {
    attr[off..off + 4].copy_from_slice(&v.to_ne_bytes());
}

fn put64(attr: &mut Attr, off: usize, v: u64) {
    attr[off..off + 8].copy_from_slice(&v.to_ne_bytes());
}

fn bpf(cmd: i32, attr: &mut Attr) -> io::Result<libc::c_long> {
    // SAFETY: attr is a zeroed, large enough union bpf_attr; the pointers in it
    // (set by the callers below) outlive the call.
    check(unsafe { libc::syscall(libc::SYS_bpf, cmd, attr.as_mut_ptr(), attr.len()) })
}

/// Loads a program of type `prog_type` (BPF_PROG_LOAD) from `insns`, the
/// encoded instructions (8 bytes each), under `license`. Returns its fd.
pub fn prog_load(prog_type: u32, insns: &[u8], license: &CStr) -> io::Result<OwnedFd> {
    let mut attr = [0u8; 128];
    put32(&mut attr, 0, prog_type);
    put32(&mut attr, 4, (insns.len() / 8) as u32);
    put64(&mut attr, 8, insns.as_ptr() as u64);
    put64(&mut attr, 16, license.as_ptr() as u64);
    bpf(BPF_PROG_LOAD, &mut attr).map(owned)
}

/// Attaches the program `prog` to `target` (a cgroup directory) at
/// `attach_type` with `flags` (BPF_PROG_ATTACH).
pub fn prog_attach(target: BorrowedFd<'_>, prog: BorrowedFd<'_>, attach_type: u32, flags: u32) -> io::Result<()> {
    let mut attr = [0u8; 128];
    put32(&mut attr, 0, target.as_raw_fd() as u32);
    put32(&mut attr, 4, prog.as_raw_fd() as u32);
    put32(&mut attr, 8, attach_type);
    put32(&mut attr, 12, flags);
    bpf(BPF_PROG_ATTACH, &mut attr).map(drop)
}
