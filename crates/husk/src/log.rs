//! Error and debug reporting: to stderr, and to `--log FILE` in runc's (logrus's)
//! text or JSON format. containerd reads the last error line of that file and
//! podman parses a failed create's file as one JSON object, so one failure writes
//! exactly one line.

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
        Some(p) => Some(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(p)
                .context(|| format!("open log file {}", p.display()))?,
        ),
        None => None,
    };
    libhusk::log::set_sink(Box::new(Logger { file, format, debug }));
    Ok(())
}

impl Logger {
    fn to_file(&self, level: Level, msg: &str) {
        if let Some(mut file) = self.file.as_ref() {
            let line = format_line(self.format, level.name(), msg, &rfc3339(SystemTime::now(), false));
            let _ = file.write_all(line.as_bytes());
        }
    }
}

impl Sink for Logger {
    fn write(&self, level: Level, msg: &str) {
        match level {
            // A warning goes to stderr only: a log file holds errors, which
            // callers parse, unless debugging.
            Level::Warning => {
                let _ = writeln!(std::io::stderr(), "husk: warning: {msg}");
                if self.debug {
                    self.to_file(level, msg);
                }
            }
            // "error" on stderr, as runc's level=error: callers (contest)
            // look for the word to tell a failed command.
            Level::Error => {
                let _ = writeln!(std::io::stderr(), "husk: error: {msg}");
                self.to_file(level, msg);
            }
            Level::Debug => {
                let _ = writeln!(std::io::stderr(), "husk: {msg}");
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
