//! One error type for the whole runtime: a message that reads as a single line,
//! built up with context as it travels outwards, and beside it what callers
//! branch on: the errno of the system call that failed, and a kind.

use std::any::Any;
use std::fmt;

/// An error of libhusk: one line that names what failed (the config field,
/// the path, the step), with the errno and the [`ErrorKind`] a caller may
/// branch on.
#[derive(Debug)]
pub struct Error {
    message: String,
    errno: Option<i32>,
    kind: ErrorKind,
}

/// What a caller may need to tell apart without reading the message. Only
/// what someone branches on is here; the message says everything else.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// Anything else: the message says what.
    #[default]
    Other,
    /// No container of that id exists.
    ContainerNotFound,
    /// A container of that id exists already.
    ContainerExists,
    /// The container's init is not running (any more).
    NotRunning,
    /// The config (config.json, or what the command line adds to it) is at
    /// fault: the message names the field.
    InvalidConfig,
    /// A D-Bus peer answered with this error name (`org.freedesktop.systemd1.NoSuchUnit`).
    DBus(String),
}

/// What every fallible call of libhusk returns.
pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    /// An error of kind `Other` with no errno; line breaks in `msg` are shown
    /// escaped, so that it stays one line.
    pub fn new(msg: impl Into<String>) -> Self {
        Error {
            message: one_line(msg.into()),
            errno: None,
            kind: ErrorKind::Other,
        }
    }

    /// `container does not exist: "ID"`: managers match runc's phrase.
    pub fn container_not_found(id: &str) -> Self {
        Error::new(format!("container does not exist: \"{id}\"")).with_kind(ErrorKind::ContainerNotFound)
    }

    /// `container "ID" already exists`.
    pub fn container_exists(id: &str) -> Self {
        Error::new(format!("container \"{id}\" already exists")).with_kind(ErrorKind::ContainerExists)
    }

    /// `container not running: "ID"`: containerd's shim takes a kill that
    /// fails with runc's phrase for a process that has already exited.
    pub fn not_running(id: &str) -> Self {
        Error::new(format!("container not running: \"{id}\"")).with_kind(ErrorKind::NotRunning)
    }

    /// The same error, of kind `kind`.
    pub fn with_kind(mut self, kind: ErrorKind) -> Self {
        self.kind = kind;
        self
    }

    /// The same error, caused by a system call that failed with `errno`.
    pub fn with_errno(mut self, errno: i32) -> Self {
        self.errno = Some(errno);
        self
    }

    /// The one-line message.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The errno of the system call at the root of the error, when there was one.
    pub fn errno(&self) -> Option<i32> {
        self.errno
    }

    /// What kind of error it is.
    pub fn kind(&self) -> &ErrorKind {
        &self.kind
    }

    /// Whether a D-Bus peer answered with the error `name`.
    pub fn is_dbus(&self, name: &str) -> bool {
        matches!(&self.kind, ErrorKind::DBus(n) if n == name)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        let errno = e.raw_os_error();
        Error {
            message: one_line(e.to_string()),
            errno,
            kind: ErrorKind::Other,
        }
    }
}

impl From<nix::Error> for Error {
    fn from(e: nix::Error) -> Self {
        Error::new(errno_text(e as i32)).with_errno(e as i32)
    }
}

/// glibc's words for the errnos, which husk's messages use whatever the C
/// library (musl's differ for 73 of the 133: EBUSY "Resource busy", ENOMEM
/// "Out of memory") or nix (34 differ: ELOOP "Too many symbolic links
/// encountered") would say: they are what runc and crun print and what
/// people search for. glibc 2.36's `strerror` for errno 0 to 133, a line each.
const GLIBC_ERRNO_TEXT: &str = include_str!("errno_text.txt");

/// glibc's text for `errno`; past its table, glibc's "Unknown error N".
pub fn errno_text(errno: i32) -> std::borrow::Cow<'static, str> {
    match usize::try_from(errno)
        .ok()
        .and_then(|n| GLIBC_ERRNO_TEXT.lines().nth(n))
    {
        Some(text) => text.into(),
        None => format!("Unknown error {errno}").into(),
    }
}

/// An error as a message shows it: nix's errors in glibc's words.
fn describe<E: fmt::Display + 'static>(e: &E) -> String {
    match (e as &dyn Any).downcast_ref::<nix::Error>() {
        Some(errno) => format!("{errno:?}: {}", errno_text(*errno as i32)),
        None => e.to_string(),
    }
}

/// The errno and kind that an error of any type carries, when it is one of
/// the types that carry them.
fn cause(e: &dyn Any) -> (Option<i32>, ErrorKind) {
    if let Some(e) = e.downcast_ref::<Error>() {
        (e.errno, e.kind.clone())
    } else if let Some(e) = e.downcast_ref::<std::io::Error>() {
        (e.raw_os_error(), ErrorKind::Other)
    } else if let Some(e) = e.downcast_ref::<nix::Error>() {
        (Some(*e as i32), ErrorKind::Other)
    } else {
        (None, ErrorKind::Other)
    }
}

/// Line breaks in what a message quotes (a config value, a hook's output, a
/// library's message) are shown escaped: callers read the last line of the log
/// as the error, so an error is always exactly one line. So are the other
/// control characters (a terminal's escape sequences: text a container sent,
/// review 60b F2) and the invisible ones that reorder what follows.
/// Past 4 KiB the rest is cut: a hostile config value quoted whole (oci-spec
/// quotes a bad execCPUAffinity list, 4 MB of it) is no use on one line.
pub(crate) fn one_line(msg: String) -> String {
    let msg = capped(msg);
    let escaped = |c: char| c.is_control() || crate::log::is_invisible_format(c);
    if !msg.contains(escaped) {
        return msg;
    }
    let mut line = String::with_capacity(msg.len() + 8);
    for c in msg.chars() {
        match c {
            '\n' => line.push_str("\\n"),
            '\r' => line.push_str("\\r"),
            c if escaped(c) => line.extend(c.escape_default()),
            c => line.push(c),
        }
    }
    line
}

const MESSAGE_CAP: usize = 4096;

fn capped(mut msg: String) -> String {
    if msg.len() <= MESSAGE_CAP {
        return msg;
    }
    let total = msg.len();
    let end = (0..=MESSAGE_CAP).rev().find(|&i| msg.is_char_boundary(i)).unwrap_or(0);
    msg.truncate(end);
    msg.push_str(&format!("... ({total} bytes)"));
    msg
}

/// Prefixes an error with what was being done: `open /x: No such file or
/// directory`. The errno and kind of the error it wraps are kept.
pub trait Context<T> {
    /// The error (if any) as an [`Error`] whose message starts with `what()`.
    fn context<F: FnOnce() -> String>(self, what: F) -> Result<T>;
}

impl<T, E: fmt::Display + 'static> Context<T> for std::result::Result<T, E> {
    fn context<F: FnOnce() -> String>(self, what: F) -> Result<T> {
        self.map_err(|e| {
            let (errno, kind) = cause(&e);
            Error {
                message: one_line(format!("{}: {}", what(), describe(&e))),
                errno,
                kind,
            }
        })
    }
}

/// Returns early with an [`Error`](crate::error::Error) formatted as `format!` would.
#[macro_export]
macro_rules! bail {
    ($($arg:tt)*) => { return Err($crate::error::Error::new(format!($($arg)*))) };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_are_one_line() {
        let e = Error::new("unknown propagation \"a\nb\r\"");
        assert_eq!(e.message(), "unknown propagation \"a\\nb\\r\"");
        let e: Result<()> = Err("x\ny").context(|| "read\nit".into());
        assert_eq!(e.unwrap_err().message(), "read\\nit: x\\ny");
    }

    /// Review 66 F4: a 4 MB execCPUAffinity list came back whole in one line.
    #[test]
    fn long_messages_are_cut() {
        let e = Error::new(format!("bad: {}", "\u{e9}".repeat(1_000_000)));
        assert!(e.message().len() < 4200, "{}", e.message().len());
        assert!(e.message().ends_with("... (2000005 bytes)"), "{}", &e.message()[4000..]);
        let e: Result<()> = Err("x".repeat(10_000)).context(|| "parse".into());
        assert!(e.unwrap_err().message().ends_with("... (10007 bytes)"));
        assert_eq!(Error::new("short").message(), "short");
    }

    /// Text a container sent (an error forged into the exec channel, review
    /// 60b F2) reached the caller's terminal with its escape sequences.
    #[test]
    fn errors_carry_no_escape_sequence_nor_invisible_reordering() {
        let e = Error::new("exec: \x1b[31mred\x07 \u{202e}txt.exe\tend");
        assert_eq!(e.message(), "exec: \\u{1b}[31mred\\u{7} \\u{202e}txt.exe\\tend");
        let e = Error::new("plain: caf\u{e9}, \u{4e2d}\u{6587}");
        assert_eq!(e.message(), "plain: caf\u{e9}, \u{4e2d}\u{6587}");
    }

    /// The table is glibc's (checked where std words errors with glibc's
    /// strerror); nix's errors read as glibc words them.
    #[test]
    fn errors_use_glibcs_words() {
        if cfg!(target_env = "gnu") {
            for errno in 0..=133 {
                let glibc = std::io::Error::from_raw_os_error(errno).to_string();
                assert_eq!(glibc, format!("{} (os error {errno})", errno_text(errno)));
            }
        }
        assert_eq!(errno_text(libc::EBUSY), "Device or resource busy");
        assert_eq!(errno_text(-1), "Unknown error -1");
        assert_eq!(errno_text(134), "Unknown error 134");
        let e = Error::from(nix::errno::Errno::ELOOP);
        assert_eq!(e.message(), "Too many levels of symbolic links");
        let e: Result<()> = Err(nix::errno::Errno::ENOMEM).context(|| "exec".into());
        assert_eq!(e.unwrap_err().message(), "exec: ENOMEM: Cannot allocate memory");
    }

    #[test]
    fn the_errno_and_kind_survive_context() {
        let io: Result<()> = Err(std::io::Error::from_raw_os_error(libc::EBUSY)).context(|| "remove x".into());
        let e = io.context(|| "delete".into()).unwrap_err();
        assert_eq!(e.errno(), Some(libc::EBUSY));
        assert!(e.message().starts_with("delete: remove x: "), "{e}");
        let e: Result<()> = Err(nix::errno::Errno::ESRCH).context(|| "kill".into());
        assert_eq!(e.unwrap_err().errno(), Some(libc::ESRCH));
        let e = Error::from(std::io::Error::from_raw_os_error(libc::ENOENT));
        assert_eq!(e.errno(), Some(libc::ENOENT));
        let e: Result<()> = Err(Error::not_running("c")).context(|| "pause".into());
        let e = e.unwrap_err();
        assert_eq!(
            (e.kind(), e.message()),
            (&ErrorKind::NotRunning, "pause: container not running: \"c\"")
        );
        assert_eq!(Error::new("x").errno(), None);
    }
}
