//! glibc's words for the errnos, which husk's messages use in either build:
//! musl's differ for 73 of the 133 (EBUSY "Resource busy", ENOMEM "Out of
//! memory"), and glibc's are what runc and crun print and what people search
//! for. The table is glibc 2.36's `strerror` for errno 0 to 133, a line each.

const GLIBC: &str = include_str!("errno_text.txt");

/// glibc's text for `errno`; past the table, glibc's "Unknown error N".
pub fn glibc_text(errno: i32) -> std::borrow::Cow<'static, str> {
    let line = usize::try_from(errno).ok().and_then(|n| GLIBC.lines().nth(n));
    match line {
        Some(text) => text.into(),
        None => format!("Unknown error {errno}").into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// On glibc this checks the table against glibc; on musl, that std's
    /// messages come from it (`__xpg_strerror_r` in musl.rs).
    #[test]
    fn os_errors_read_as_glibc_words_them() {
        for errno in 0..=133 {
            let want = format!("{} (os error {errno})", glibc_text(errno));
            assert_eq!(std::io::Error::from_raw_os_error(errno).to_string(), want);
        }
        assert_eq!(glibc_text(libc::EBUSY), "Device or resource busy");
        assert_eq!(glibc_text(-1), "Unknown error -1");
        assert_eq!(glibc_text(134), "Unknown error 134");
    }
}
