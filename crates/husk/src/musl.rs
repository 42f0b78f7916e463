//! What the musl build of husk (the shipped one, `make build`) carries of
//! its own; libhusk's seccomp module has what any musl build of it needs.
//! Why musl: docs/design.md, record 4.

/// dlmalloc instead of musl's malloc, which maps and unmaps its groups as
/// they fill and empty (38 mmap and 32 munmap in one `run`, ~0.2 ms).
#[global_allocator]
static ALLOCATOR: dlmalloc::GlobalDlmalloc = dlmalloc::GlobalDlmalloc;

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
    #[test]
    fn os_errors_read_as_glibc_words_them() {
        for errno in -1..=134 {
            let want = format!("{} (os error {errno})", libhusk::error::errno_text(errno));
            assert_eq!(std::io::Error::from_raw_os_error(errno).to_string(), want);
        }
    }
}
