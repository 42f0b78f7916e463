//! Error and debug reporting: to stderr, and to `--log FILE` in runc's (logrus's)
//! text or JSON format. containerd reads the last error line of that file and
//! podman parses a failed create's file as one JSON object, so one failure writes
//! exactly one line. Without `--log`, JSON lines go to stderr instead of husk's
//! text ones, as runc and crun write them.

use std::io::Write;
use std::time::SystemTime;

use libhusk::error::{Context, Result};
use libhusk::log::{rfc3339, Level, Sink};

#[derive(Clone, Copy, PartialEq, Eq, Debug, clap::ValueEnum)]
pub enum Format {
    Text,
    Json,
}

struct Logger {
    file: Option<std::fs::File>,
    format: Format,
    debug: bool,
}

/// Installs husk's sink for the library's log lines: `--log`, `--log-format`, `--debug`.
pub fn init(path: Option<&std::path::Path>, format: Format, debug: bool) -> Result<()> {
    let file = match path {
        Some(p) => Some(open_log(p).context(|| format!("open log file {}", p.display()))?),
        None => None,
    };
    libhusk::log::set_sink(Box::new(Logger { file, format, debug }));
    Ok(())
}

/// How long a `--log` fifo may go without a reader before husk gives up.
const LOG_READER_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

/// Opens `--log` for appending without waiting for ever: a fifo that no one
/// reads within [`LOG_READER_WAIT`] (one planted at the path, say) fails
/// (ENXIO) instead of holding husk for good (runc's open waits for ever);
/// writes then block as usual.
fn open_log(path: &std::path::Path) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    let deadline = std::time::Instant::now() + LOG_READER_WAIT;
    let open = || {
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
            .open(path)
    };
    let file = loop {
        match open() {
            Err(e) if e.raw_os_error() == Some(libc::ENXIO) && std::time::Instant::now() < deadline => {
                std::thread::sleep(std::time::Duration::from_millis(10))
            }
            other => break other?,
        }
    };
    let flags = nix::fcntl::fcntl(&file, nix::fcntl::FcntlArg::F_GETFL)?;
    let blocking = nix::fcntl::OFlag::from_bits_retain(flags) & !nix::fcntl::OFlag::O_NONBLOCK;
    nix::fcntl::fcntl(&file, nix::fcntl::FcntlArg::F_SETFL(blocking))?;
    Ok(file)
}

impl Logger {
    fn to_file(&self, level: Level, msg: &str) {
        if let Some(mut file) = self.file.as_ref() {
            let _ = file.write_all(self.line(level, msg).as_bytes());
        }
    }

    /// `husk: error: MSG` for people; but without `--log`, `--log-format
    /// json` makes stderr the log, each line the JSON one (as runc and crun).
    fn to_stderr(&self, level: Level, prefix: &str, msg: &str) {
        let line = match (&self.file, self.format) {
            (None, Format::Json) => self.line(level, msg),
            _ => format!("husk: {prefix}{msg}\n"),
        };
        let _ = std::io::stderr().write_all(line.as_bytes());
    }

    fn line(&self, level: Level, msg: &str) -> String {
        format_line(self.format, level.name(), msg, &rfc3339(SystemTime::now(), false))
    }
}

impl Sink for Logger {
    fn write(&self, level: Level, msg: &str) {
        match level {
            // A warning goes to stderr only: a log file holds errors, which
            // callers parse, unless debugging.
            Level::Warning => {
                self.to_stderr(level, "warning: ", msg);
                if self.debug {
                    self.to_file(level, msg);
                }
            }
            // "error" on stderr, as runc's level=error: callers (contest)
            // look for the word to tell a failed command.
            Level::Error => {
                self.to_stderr(level, "error: ", msg);
                self.to_file(level, msg);
            }
            Level::Debug => {
                self.to_stderr(level, "", msg);
                self.to_file(level, msg);
            }
        }
    }

    fn debug_enabled(&self) -> bool {
        self.debug
    }
}

fn format_line(format: Format, level: &str, msg: &str, time: &str) -> String {
    match format {
        Format::Json => {
            let obj = serde_json::json!({ "level": level, "msg": msg, "time": time });
            format!("{obj}\n")
        }
        Format::Text => format!("time=\"{time}\" level={level} msg={}\n", serde_json::Value::from(msg)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_lines_are_logrus_shaped() {
        let line = format_line(Format::Json, "error", "boom \"x\"", "T");
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["level"], "error");
        assert_eq!(v["msg"], "boom \"x\"");
        assert_eq!(v["time"], "T");
        assert!(line.ends_with('\n') && line.matches('\n').count() == 1);
    }

    #[test]
    fn text_lines_quote_the_message() {
        let line = format_line(Format::Text, "error", "a b", "T");
        assert_eq!(line, "time=\"T\" level=error msg=\"a b\"\n");
    }
}
