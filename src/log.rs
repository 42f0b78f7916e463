//! Error and debug reporting: to stderr, and to `--log FILE` in runc's (logrus's)
//! text or JSON format. containerd reads the last error line of that file and
//! podman parses a failed create's file as one JSON object, so one failure writes
//! exactly one line.

use std::io::Write;
use std::sync::OnceLock;
use std::time::{SystemTime, UNIX_EPOCH};

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

static LOGGER: OnceLock<Logger> = OnceLock::new();

pub fn init(path: Option<&std::path::Path>, format: Format, debug: bool) -> crate::error::Result<()> {
    use crate::error::Context;
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
    let _ = LOGGER.set(Logger { file, format, debug });
    Ok(())
}

fn write(level: &str, msg: &str, to_stderr: bool) {
    let Some(logger) = LOGGER.get() else {
        eprintln!("husk: {msg}");
        return;
    };
    if to_stderr {
        eprintln!("husk: {msg}");
    }
    if let Some(mut file) = logger.file.as_ref() {
        let line = format_line(logger.format, level, msg, &rfc3339(SystemTime::now(), false));
        let _ = file.write_all(line.as_bytes());
    }
}

pub fn error(msg: &str) {
    write("error", msg, true);
}

/// A warning goes to stderr only: a log file holds errors, which callers parse.
pub fn warn(msg: &str) {
    eprintln!("husk: warning: {msg}");
    if LOGGER.get().is_some_and(|l| l.debug) {
        write("warning", msg, false);
    }
}

pub fn debug(msg: &str) {
    if LOGGER.get().is_some_and(|l| l.debug) {
        write("debug", msg, true);
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

/// RFC 3339 in UTC, as Go prints `time.Time`: `2026-01-02T03:04:05Z`, or with
/// nanoseconds (`...05.123456789Z`) when `nanos` is set.
pub fn rfc3339(t: SystemTime, nanos: bool) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs();
    let (days, rem) = (secs / 86400, secs % 86400);
    let (y, m, day) = civil_from_days(days as i64);
    let (hh, mm, ss) = (rem / 3600, rem % 3600 / 60, rem % 60);
    let frac = if nanos {
        format!(".{:09}", d.subsec_nanos())
    } else {
        String::new()
    };
    format!("{y:04}-{m:02}-{day:02}T{hh:02}:{mm:02}:{ss:02}{frac}Z")
}

/// Howard Hinnant's days-to-civil algorithm.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719468;
    let era = z.div_euclid(146097);
    let doe = z.rem_euclid(146097);
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + if m <= 2 { 1 } else { 0 };
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn rfc3339_matches_known_instants() {
        assert_eq!(rfc3339(UNIX_EPOCH, false), "1970-01-01T00:00:00Z");
        let t = UNIX_EPOCH + Duration::new(1_772_420_645, 7);
        assert_eq!(rfc3339(t, false), "2026-03-02T03:04:05Z");
        assert_eq!(rfc3339(t, true), "2026-03-02T03:04:05.000000007Z");
        let leap = UNIX_EPOCH + Duration::from_secs(951_782_400); // 2000-02-29
        assert_eq!(rfc3339(leap, false), "2000-02-29T00:00:00Z");
    }

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
