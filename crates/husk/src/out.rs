//! What commands print on standard output. A reader that goes away (`husk
//! list | head -1`) ends husk by SIGPIPE, as it ends runc and crun, rather
//! than with a panic (Rust ignores SIGPIPE, so println! sees the error). Only
//! read-only commands print, so dying there leaves nothing half done.

use std::io::Write;

/// println! for standard output.
macro_rules! outln {
    ($($arg:tt)*) => {
        $crate::out::print(format_args!("{}\n", format_args!($($arg)*)))
    };
}
pub(crate) use outln;

/// print! for standard output.
pub fn print(args: std::fmt::Arguments) {
    let mut out = std::io::stdout().lock();
    if let Err(e) = out.write_fmt(args).and_then(|()| out.flush()) {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            libhusk::sys::signal::die_of_sigpipe();
        }
        // Anything else (a full disk): the command fails, as it did not print.
        let _ = writeln!(std::io::stderr(), "husk: error: write standard output: {e}");
        std::process::exit(1);
    }
}
