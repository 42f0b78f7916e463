//! memcpy and memmove for the musl build of husk, in place of musl's.
//!
//! musl's x86_64 memcpy is `rep movsq` with `movsb` for the unaligned head
//! and the tail; string instructions start slowly (here ~40 ns a call
//! whatever the size, against ~1.5 ns for glibc's up to 128 bytes), and a
//! container's create, init and start make ~1,600 copies, most of them
//! under 64 bytes (Rust moves, pushes of a byte, path joins). These copy
//! with unaligned 4, 8 and 16-byte loads and stores, every load of a piece
//! before its stores, so that one routine serves memcpy and both directions
//! of memmove. Defined here, the linker never takes musl's memcpy.o or
//! memmove.o from libc.a (which it would only for a symbol still missing):
//! musl's own calls come here too.
//!
//! `no_builtins`: LLVM must not recognise the loops below as a copy and
//! call memcpy, which is this very function. musl calls memcpy at its
//! start, before thread-local storage exists: these must use neither TLS
//! nor a stack protector.

#![no_std]
#![no_builtins]
#![deny(unsafe_op_in_unsafe_fn)]

use core::ptr::{read_unaligned, write_unaligned};

/// Copies `n <= 32` bytes: every load before any store, so the ranges may overlap.
#[inline(always)]
unsafe fn copy_upto_32(d: *mut u8, s: *const u8, n: usize) {
    // SAFETY (every block): the caller gives `n` readable bytes at `s` and
    // writable ones at `d`; each access lies within them (`n - K >= 0` where
    // a K-byte access is made), and unaligned accesses are allowed.
    unsafe {
        if n >= 16 {
            let a = read_unaligned(s.cast::<u128>());
            let b = read_unaligned(s.add(n - 16).cast::<u128>());
            write_unaligned(d.cast::<u128>(), a);
            write_unaligned(d.add(n - 16).cast::<u128>(), b);
        } else if n >= 8 {
            let a = read_unaligned(s.cast::<u64>());
            let b = read_unaligned(s.add(n - 8).cast::<u64>());
            write_unaligned(d.cast::<u64>(), a);
            write_unaligned(d.add(n - 8).cast::<u64>(), b);
        } else if n >= 4 {
            let a = read_unaligned(s.cast::<u32>());
            let b = read_unaligned(s.add(n - 4).cast::<u32>());
            write_unaligned(d.cast::<u32>(), a);
            write_unaligned(d.add(n - 4).cast::<u32>(), b);
        } else if n > 0 {
            let (a, b, c) = (*s, *s.add(n / 2), *s.add(n - 1));
            *d = a;
            *d.add(n / 2) = b;
            *d.add(n - 1) = c;
        }
    }
}

/// 32 bytes at `p`, read as two unaligned halves.
#[inline(always)]
unsafe fn load_32(p: *const u8) -> (u128, u128) {
    // SAFETY: the caller gives 32 readable bytes at `p`.
    unsafe {
        (
            read_unaligned(p.cast::<u128>()),
            read_unaligned(p.add(16).cast::<u128>()),
        )
    }
}

#[inline(always)]
unsafe fn store_32(p: *mut u8, (a, b): (u128, u128)) {
    // SAFETY: the caller gives 32 writable bytes at `p`.
    unsafe {
        write_unaligned(p.cast::<u128>(), a);
        write_unaligned(p.add(16).cast::<u128>(), b);
    }
}

/// Copies `n > 32` bytes front to back: right for disjoint ranges and for
/// `d` below `s`. The last 32 bytes are read first, whatever the loop
/// writes over them.
#[inline(always)]
unsafe fn copy_forward(d: *mut u8, s: *const u8, n: usize) {
    // SAFETY: `n > 32` bytes at each; every chunk lies within them. A store
    // at `d + off` ends at or before `s + off + 32` (d <= s or disjoint),
    // where the next load starts.
    unsafe {
        let tail = load_32(s.add(n - 32));
        let mut off = 0;
        while off + 32 < n {
            store_32(d.add(off), load_32(s.add(off)));
            off += 32;
        }
        store_32(d.add(n - 32), tail);
    }
}

/// Copies `n > 32` bytes back to front: right for `d` above `s`. The first
/// 32 bytes are read first.
#[inline(always)]
unsafe fn copy_backward(d: *mut u8, s: *const u8, n: usize) {
    // SAFETY: `n > 32` bytes at each; every chunk lies within them. A store
    // at `d + off` starts above `s + off` (d > s), and every later load ends
    // at or below `s + off`.
    unsafe {
        let head = load_32(s);
        let mut off = n - 32;
        loop {
            store_32(d.add(off), load_32(s.add(off)));
            if off <= 32 {
                break;
            }
            off -= 32;
        }
        store_32(d, head);
    }
}

/// # Safety
/// As C's memcpy: `n` bytes readable at `s`, writable at `d`, not overlapping.
#[no_mangle]
pub unsafe extern "C" fn memcpy(d: *mut u8, s: *const u8, n: usize) -> *mut u8 {
    // SAFETY: the caller's contract, which copy_forward's covers.
    unsafe {
        match n {
            0..=32 => copy_upto_32(d, s, n),
            _ => copy_forward(d, s, n),
        }
    }
    d
}

/// # Safety
/// As C's memmove: `n` bytes readable at `s`, writable at `d`; they may overlap.
#[no_mangle]
pub unsafe extern "C" fn memmove(d: *mut u8, s: *const u8, n: usize) -> *mut u8 {
    // SAFETY: the caller's contract; the direction is the one whose stores
    // never reach bytes still to be read.
    unsafe {
        match n {
            0..=32 => copy_upto_32(d, s, n),
            _ if (d as usize).wrapping_sub(s as usize) >= n => copy_forward(d, s, n),
            _ => copy_backward(d, s, n),
        }
    }
    d
}

#[cfg(test)]
mod tests {
    extern crate std;
    use std::vec::Vec;

    fn pattern(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i * 131 + 7) as u8).collect()
    }

    #[test]
    fn memcpy_copies_every_length_at_every_alignment() {
        let src = pattern(700);
        for n in 0..=600 {
            for (so, dof) in [(0, 0), (1, 3), (7, 0), (3, 15), (15, 9), (8, 8)] {
                let mut dst = std::vec![0xAAu8; 700];
                // SAFETY: both ranges lie within their vectors.
                let ret = unsafe { super::memcpy(dst.as_mut_ptr().add(dof), src.as_ptr().add(so), n) };
                assert_eq!(ret, dst.as_mut_ptr().wrapping_add(dof));
                assert_eq!(&dst[dof..dof + n], &src[so..so + n], "n {n} src+{so} dst+{dof}");
                assert!(
                    dst[..dof].iter().chain(&dst[dof + n..]).all(|&b| b == 0xAA),
                    "wrote outside: n {n}"
                );
            }
        }
    }

    #[test]
    fn memcpy_copies_long_runs_exactly() {
        let src = pattern(70_000);
        for n in [1000, 4095, 4096, 4097, 8192, 57_344, 65_537] {
            let mut dst = std::vec![0xAAu8; 70_010];
            // SAFETY: both ranges lie within their vectors.
            unsafe { super::memcpy(dst.as_mut_ptr().add(5), src.as_ptr().add(3), n) };
            assert_eq!(&dst[5..5 + n], &src[3..3 + n], "n {n}");
            assert!(
                dst[..5].iter().chain(&dst[5 + n..]).all(|&b| b == 0xAA),
                "wrote outside: n {n}"
            );
        }
    }

    #[test]
    fn memmove_handles_every_overlap_in_both_directions() {
        for n in 0..=300 {
            for shift in [0usize, 1, 2, 7, 8, 15, 16, 17, 31, 32, 33, 64, 100, 301] {
                for forward in [true, false] {
                    let mut buf = pattern(n + shift + 40);
                    let expected_src: Vec<u8> = buf[..].to_vec();
                    let (s, d) = if forward { (shift, 0) } else { (0, shift) };
                    // SAFETY: both ranges lie within the vector.
                    unsafe { super::memmove(buf.as_mut_ptr().add(d), buf.as_ptr().add(s), n) };
                    assert_eq!(
                        &buf[d..d + n],
                        &expected_src[s..s + n],
                        "n {n} shift {shift} forward {forward}"
                    );
                    let outside = (0..buf.len()).filter(|&i| i < d || i >= d + n);
                    assert!(
                        outside.into_iter().all(|i| buf[i] == expected_src[i]),
                        "wrote outside: n {n}"
                    );
                }
            }
        }
    }
}
