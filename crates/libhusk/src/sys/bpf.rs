//! The bpf(2) commands husk uses: loading a program, attaching it to a
//! cgroup, and finding and detaching the programs attached there. Each builds its `union bpf_attr` from typed arguments, so no
//! caller can hand the kernel a pointer.

use std::ffi::CStr;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};

use super::{check, owned};

const BPF_PROG_LOAD: i32 = 5;
const BPF_PROG_ATTACH: i32 = 8;
const BPF_PROG_DETACH: i32 = 9;
const BPF_PROG_GET_FD_BY_ID: i32 = 13;
const BPF_OBJ_GET_INFO_BY_FD: i32 = 15;
const BPF_PROG_QUERY: i32 = 16;

/// BPF_PROG_ATTACH's flag: `replace` is replaced by the new program, in one step.
const BPF_F_REPLACE: u32 = 4;

/// How many programs a cgroup may have at one attach point (BPF_CGROUP_MAX_PROGS).
const MAX_PROGS: usize = 64;

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
/// encoded instructions (8 bytes each), under `license`, named `name`
/// (at most 15 letters, digits or '_'). Returns its fd.
pub fn prog_load(prog_type: u32, insns: &[u8], license: &CStr, name: &CStr) -> io::Result<OwnedFd> {
    let mut attr = [0u8; 128];
    put32(&mut attr, 0, prog_type);
    put32(&mut attr, 4, (insns.len() / 8) as u32);
    put64(&mut attr, 8, insns.as_ptr() as u64);
    put64(&mut attr, 16, license.as_ptr() as u64);
    let name = name.to_bytes();
    if name.len() > 15 {
        return Err(io::Error::from_raw_os_error(libc::EINVAL));
    }
    attr[48..48 + name.len()].copy_from_slice(name);
    bpf(BPF_PROG_LOAD, &mut attr).map(owned)
}

/// Attaches the program `prog` to `target` (a cgroup directory) at
/// `attach_type` with `flags` (BPF_PROG_ATTACH); with `replace`, in the
/// place of that program, which must be attached there (BPF_F_REPLACE).
pub fn prog_attach(
    target: BorrowedFd<'_>,
    prog: BorrowedFd<'_>,
    attach_type: u32,
    flags: u32,
    replace: Option<BorrowedFd<'_>>,
) -> io::Result<()> {
    let mut attr = [0u8; 128];
    put32(&mut attr, 0, target.as_raw_fd() as u32);
    put32(&mut attr, 4, prog.as_raw_fd() as u32);
    put32(&mut attr, 8, attach_type);
    put32(&mut attr, 12, flags | replace.map_or(0, |_| BPF_F_REPLACE));
    if let Some(old) = replace {
        put32(&mut attr, 16, old.as_raw_fd() as u32);
    }
    bpf(BPF_PROG_ATTACH, &mut attr).map(drop)
}

/// Detaches the program `prog` from `target` at `attach_type` (BPF_PROG_DETACH).
pub fn prog_detach(target: BorrowedFd<'_>, prog: BorrowedFd<'_>, attach_type: u32) -> io::Result<()> {
    let mut attr = [0u8; 128];
    put32(&mut attr, 0, target.as_raw_fd() as u32);
    put32(&mut attr, 4, prog.as_raw_fd() as u32);
    put32(&mut attr, 8, attach_type);
    bpf(BPF_PROG_DETACH, &mut attr).map(drop)
}

/// The ids of the programs attached to `target` itself (not inherited) at
/// `attach_type` (BPF_PROG_QUERY).
pub fn prog_query(target: BorrowedFd<'_>, attach_type: u32) -> io::Result<Vec<u32>> {
    let mut ids = [0u32; MAX_PROGS];
    let mut attr = [0u8; 128];
    put32(&mut attr, 0, target.as_raw_fd() as u32);
    put32(&mut attr, 4, attach_type);
    put64(&mut attr, 16, ids.as_mut_ptr() as u64);
    put32(&mut attr, 24, ids.len() as u32);
    bpf(BPF_PROG_QUERY, &mut attr)?;
    let count = u32::from_ne_bytes(attr[24..28].try_into().expect("4 bytes")) as usize;
    Ok(ids[..count.min(MAX_PROGS)].to_vec())
}

/// An fd of the loaded program `id` (BPF_PROG_GET_FD_BY_ID).
pub fn prog_fd_by_id(id: u32) -> io::Result<OwnedFd> {
    let mut attr = [0u8; 128];
    put32(&mut attr, 0, id);
    bpf(BPF_PROG_GET_FD_BY_ID, &mut attr).map(owned)
}

/// The name the program `prog` was loaded with (BPF_OBJ_GET_INFO_BY_FD).
pub fn prog_name(prog: BorrowedFd<'_>) -> io::Result<Vec<u8>> {
    // struct bpf_prog_info up to its `name` (offset 64, 16 bytes).
    let mut info = [0u8; 80];
    let mut attr = [0u8; 128];
    put32(&mut attr, 0, prog.as_raw_fd() as u32);
    put32(&mut attr, 4, info.len() as u32);
    put64(&mut attr, 8, info.as_mut_ptr() as u64);
    bpf(BPF_OBJ_GET_INFO_BY_FD, &mut attr)?;
    let name = &info[64..80];
    Ok(name[..name.iter().position(|&b| b == 0).unwrap_or(16)].to_vec())
}
