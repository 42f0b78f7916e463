//! One error type for the whole runtime: a message that reads as a single line,
//! built up with context as it travels outwards.

use std::fmt;

#[derive(Debug)]
pub struct Error(String);

pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    pub fn new(msg: impl Into<String>) -> Self {
        Error(one_line(msg.into()))
    }

    pub fn message(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        Error::new(e.to_string())
    }
}

impl From<nix::Error> for Error {
    fn from(e: nix::Error) -> Self {
        Error::new(e.desc())
    }
}

/// Line breaks in what a message quotes (a config value, a hook's output, a
/// library's message) are shown escaped: callers read the last line of the log
/// as the error, so an error is always exactly one line.
fn one_line(msg: String) -> String {
    if !msg.contains(['\n', '\r']) {
        return msg;
    }
    msg.replace('\n', "\\n").replace('\r', "\\r")
}

/// Prefixes an error with what was being done: `open /x: No such file or directory`.
pub trait Context<T> {
    fn context<F: FnOnce() -> String>(self, what: F) -> Result<T>;
}

impl<T, E: fmt::Display> Context<T> for std::result::Result<T, E> {
    fn context<F: FnOnce() -> String>(self, what: F) -> Result<T> {
        self.map_err(|e| Error::new(format!("{}: {}", what(), e)))
    }
}

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
}
