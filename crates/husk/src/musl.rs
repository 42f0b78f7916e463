//! What the musl build of husk (the shipped one, `make build`) carries of
//! its own; libhusk's seccomp module has what any musl build of it needs.
//! Why musl: docs/design.md, record 4.

/// dlmalloc instead of musl's malloc, which maps and unmaps its groups as
/// they fill and empty (38 mmap and 32 munmap in one `run`, ~0.2 ms).
#[global_allocator]
static ALLOCATOR: Allocator = Allocator {
    busy: AtomicBool::new(false),
    heap: UnsafeCell::new(dlmalloc::Dlmalloc::new()),
};

// memcpy and memmove in place of musl's (see the crate).
use musl_string as _;

use std::alloc::{GlobalAlloc, Layout};
use std::cell::UnsafeCell;
use std::sync::atomic::{AtomicBool, Ordering};

/// dlmalloc's heap behind a lock of one flag, not dlmalloc's own global
/// allocator's pthread mutex: a container takes ~3,000 allocations (create,
/// its init, start), and musl's lock and unlock (two calls, the mutex type's
/// checks, an xchg each) took as long as dlmalloc itself. Taking the flag
/// is one compare-exchange, giving it back a plain store. husk runs no
/// thread, so the flag is never contended; were it, the thread waits.
/// Found held for ~a second, it is held by this very thread (an allocation
/// from a panic inside dlmalloc, or from a signal handler): abort, where a
/// spin would burn a CPU for ever (review 67 L1).
struct Allocator {
    busy: AtomicBool,
    heap: UnsafeCell<dlmalloc::Dlmalloc>,
}

// SAFETY: the heap is touched only by the thread that holds `busy`.
#[allow(unsafe_code)]
unsafe impl Sync for Allocator {}

impl Allocator {
    /// Runs `f` on the heap, holding the flag.
    fn with_heap<T>(&self, f: impl FnOnce(&mut dlmalloc::Dlmalloc) -> T) -> T {
        let mut tries = 0u32;
        while self
            .busy
            .compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            tries += 1;
            match tries {
                0..64 => std::hint::spin_loop(),
                64..1_000_000 => std::thread::yield_now(),
                _ => std::process::abort(),
            }
        }
        // SAFETY: holding `busy`, this thread alone has the heap; `f` cannot
        // allocate through this allocator (it is handed the heap, not the
        // allocator), so nothing takes the flag again meanwhile.
        #[allow(unsafe_code)]
        let value = f(unsafe { &mut *self.heap.get() });
        self.busy.store(false, Ordering::Release);
        value
    }
}

// SAFETY: every call goes to dlmalloc's own with the layout it was given,
// under `with_heap`; dlmalloc meets GlobalAlloc's contract itself.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for Allocator {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        self.with_heap(|heap| unsafe { heap.malloc(layout.size(), layout.align()) })
    }

    #[inline]
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        self.with_heap(|heap| unsafe { heap.free(ptr, layout.size(), layout.align()) })
    }

    #[inline]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        self.with_heap(|heap| unsafe { heap.calloc(layout.size(), layout.align()) })
    }

    #[inline]
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        self.with_heap(|heap| unsafe { heap.realloc(ptr, layout.size(), layout.align(), new_size) })
    }
}

/// std words an OS error through `__xpg_strerror_r`: this one gives glibc's
/// words (libhusk's `errno_text`) in place of musl's, which differ for 73 of
/// the 133 errnos (EBUSY "Resource busy", ENOMEM "Out of memory").
///
/// # Safety
/// `buf` holds `buflen` writable bytes, as strerror_r's callers promise.
#[allow(unsafe_code)]
#[unsafe(no_mangle)]
unsafe extern "C" fn __xpg_strerror_r(errnum: libc::c_int, buf: *mut libc::c_char, buflen: usize) -> libc::c_int {
    let text = libhusk::error::errno_text(errnum);
    let Some(room) = buflen.checked_sub(1) else {
        return libc::ERANGE;
    };
    let n = text.len().min(room);
    // SAFETY: n + 1 <= buflen bytes, into the caller's buffer.
    unsafe {
        std::ptr::copy_nonoverlapping(text.as_ptr(), buf.cast::<u8>(), n);
        *buf.add(n) = 0;
    }
    if n < text.len() {
        libc::ERANGE
    } else {
        0
    }
}

#[cfg(test)]
mod tests {
    /// An allocation from inside the allocator (a panic in dlmalloc, a
    /// signal handler) finds the flag held by its own thread: the process
    /// aborts rather than spin for ever.
    #[test]
    #[allow(unsafe_code)]
    fn an_allocation_from_inside_the_allocator_aborts() {
        use nix::sys::signal::Signal;
        use nix::sys::wait::{waitpid, WaitStatus};
        use nix::unistd::{fork, ForkResult};
        // SAFETY: the child takes the flag twice and ends; it allocates nothing.
        match unsafe { fork() }.unwrap() {
            ForkResult::Child => {
                super::ALLOCATOR.with_heap(|_| super::ALLOCATOR.with_heap(|_| ()));
                unsafe { libc::_exit(0) }
            }
            ForkResult::Parent { child } => {
                let status = waitpid(child, None).unwrap();
                assert!(
                    matches!(status, WaitStatus::Signaled(_, Signal::SIGABRT, _)),
                    "{status:?}"
                );
            }
        }
    }

    /// The flag keeps the heap whole under threads that allocate at once
    /// (husk runs none; this test harness does).
    #[test]
    fn threads_allocating_at_once_keep_their_data() {
        let workers: Vec<_> = (0..4u8)
            .map(|t| {
                std::thread::spawn(move || {
                    let mut kept = Vec::new();
                    for i in 0..2000usize {
                        let mut v = vec![t; 1 + i % 700];
                        v.resize(v.len() + i % 5000, t);
                        let zeroed = vec![0u64; 1 + i % 300];
                        assert!(zeroed.iter().all(|&z| z == 0));
                        if i % 3 == 0 {
                            kept.push(v);
                        }
                    }
                    // A large allocation (dlmalloc maps it on its own).
                    kept.push(vec![t; 4 << 20]);
                    kept.iter().all(|v| v.iter().all(|&b| b == t))
                })
            })
            .collect();
        for w in workers {
            assert!(w.join().unwrap());
        }
    }

    /// The copies musl's own code makes (and libseccomp's) are the crate's:
    /// the linker took memcpy and memmove from it, not musl's libc.a.
    #[test]
    fn memcpy_and_memmove_are_musl_strings() {
        assert_eq!(libc::memcpy as *const (), musl_string::memcpy as *const ());
        assert_eq!(libc::memmove as *const (), musl_string::memmove as *const ());
    }

    #[test]
    fn os_errors_read_as_glibc_words_them() {
        for errno in -1..=134 {
            let want = format!("{} (os error {errno})", libhusk::error::errno_text(errno));
            assert_eq!(std::io::Error::from_raw_os_error(errno).to_string(), want);
        }
    }
}
