//! What the library reports besides its errors: warnings and debug lines. They
//! go to the sink the program installs (husk's writes runc's log formats), or
//! without one, warnings to stderr.

use std::os::fd::RawFd;
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// How serious a line is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Level {
    /// What made a command fail (the program reports it).
    Error,
    /// Something done differently than asked, or left undone; the call goes on.
    Warning,
    /// Detail for `--debug`.
    Debug,
}

impl Level {
    /// The name logrus gives the level.
    pub fn name(self) -> &'static str {
        match self {
            Level::Error => "error",
            Level::Warning => "warning",
            Level::Debug => "debug",
        }
    }
}

/// Where log lines go. Set once per process with [`set_sink`].
pub trait Sink: Send + Sync {
    /// Writes one line (`msg` has no line break).
    fn write(&self, level: Level, msg: &str);
    /// Whether debug lines are wanted at all (they can be costly to format).
    fn debug_enabled(&self) -> bool;
}

static SINK: OnceLock<Box<dyn Sink>> = OnceLock::new();

/// Installs the process's sink; false if one was installed already.
pub fn set_sink(sink: Box<dyn Sink>) -> bool {
    SINK.set(sink).is_ok()
}

/// Logs an error line (without a sink: `husk: MSG` on stderr).
pub fn error(msg: &str) {
    match SINK.get() {
        Some(sink) => sink.write(Level::Error, msg),
        None => eprintln!("husk: error: {msg}"),
    }
}

/// Logs a warning (without a sink: `husk: warning: MSG` on stderr).
pub fn warn(msg: &str) {
    // One line, like errors: a field's value may hold line breaks.
    let msg = &crate::error::one_line(msg.to_string());
    match SINK.get() {
        Some(sink) => sink.write(Level::Warning, msg),
        None => eprintln!("husk: warning: {msg}"),
    }
}

/// Logs a debug line, only to a sink that wants them. In a process husk cloned
/// (the init, exec's joiner), whose stderr is the container's, the line goes to
/// husk over their channel instead (see `forward_debug_to`).
pub fn debug(msg: &str) {
    let Some(sink) = SINK.get().filter(|s| s.debug_enabled()) else {
        return;
    };
    match FORWARD.load(Ordering::Relaxed) {
        -1 => sink.write(Level::Debug, msg),
        fd => forward(fd, msg),
    }
}

/// The first byte of a debug line a cloned child forwards on its channel;
/// the channel's receiving end logs such a message and reads on.
pub(crate) const FORWARDED_TAG: u8 = b'D';

/// The channel fd of this cloned process, or -1 in husk itself.
static FORWARD: AtomicI32 = AtomicI32::new(-1);

/// From now on, debug lines go to husk on this channel (a SOCK_SEQPACKET
/// socket): a plain write, as the process's seccomp filter may be in place.
pub(crate) fn forward_debug_to(fd: RawFd) {
    FORWARD.store(fd, Ordering::Relaxed);
}

/// Debug lines are dropped from now on: husk stops reading the channel.
pub(crate) fn stop_forwarding() {
    FORWARD.store(-2, Ordering::Relaxed);
}

fn forward(fd: RawFd, msg: &str) {
    if fd < 0 {
        return;
    }
    let mut packet = Vec::with_capacity(1 + msg.len());
    packet.push(FORWARDED_TAG);
    packet.extend_from_slice(&msg.as_bytes()[..msg.len().min(1024)]);
    let _ = crate::sys::write_raw(fd, &packet);
}

/// `--debug` step timings: the phase (`create`, `init`, `exec`...) and when its
/// last step ended. The processes husk runs are single-threaded.
static LAST_STEP: Mutex<Option<(&str, Instant)>> = Mutex::new(None);

/// Starts timing a phase of a command: the next [`step`] measures from here.
/// Costs nothing without `--debug`.
pub fn begin(phase: &'static str) {
    if debug_enabled() {
        *LAST_STEP.lock().unwrap_or_else(|e| e.into_inner()) = Some((phase, Instant::now()));
    }
}

/// Logs (with `--debug`) that `what` is done, with the microseconds since
/// the previous step or [`begin`]: `create: cgroup made (312us)`.
pub fn step(what: &str) {
    if !debug_enabled() {
        return;
    }
    let now = Instant::now();
    let (phase, since) = {
        let mut last = LAST_STEP.lock().unwrap_or_else(|e| e.into_inner());
        let (phase, then) = last.get_or_insert(("husk", now));
        let since = now.duration_since(*then);
        *then = now;
        (*phase, since)
    };
    debug(&format!("{phase}: {what} ({}us)", since.as_micros()));
}

/// Whether debug lines are wanted (to skip the work of one that is not).
pub fn debug_enabled() -> bool {
    SINK.get().is_some_and(|s| s.debug_enabled())
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

/// `text` on one line, its control characters (escape sequences among them)
/// and the invisible ones that reorder or break what follows (bidi overrides,
/// line separators) shown as escapes.
pub(crate) fn printable(text: &str) -> String {
    let mut line = String::with_capacity(text.len());
    for c in text.trim().chars() {
        match c {
            '\n' | '\t' | '\r' => line.push(' '),
            c if c.is_control() || is_invisible_format(c) => line.extend(c.escape_default()),
            c => line.push(c),
        }
    }
    line
}

/// `line` as it is, with its control characters and invisible format
/// characters shown as escapes (what `printable` does, without joining
/// lines or trimming): for lines of others that keep their layout, such as
/// `ps`'s, whose command lines a container writes (review 60c F4).
pub fn escaped_line(line: &str) -> String {
    let mut shown = String::with_capacity(line.len());
    for c in line.chars() {
        match c {
            c if c.is_control() || is_invisible_format(c) => shown.extend(c.escape_default()),
            c => shown.push(c),
        }
    }
    shown
}

/// Unicode's format characters that change how a terminal shows the rest of
/// a line: zero-width ones, bidi marks (the Arabic letter mark too),
/// embeddings, overrides and isolates, line and paragraph separators, the
/// byte-order mark, interlinear annotation, the soft hyphen, the Mongolian
/// vowel separator and the tag characters (review 49d F1).
pub(crate) fn is_invisible_format(c: char) -> bool {
    matches!(
        c,
        '\u{ad}'
            | '\u{61c}'
            | '\u{180e}'
            | '\u{200b}'..='\u{200f}'
            | '\u{2028}'..='\u{202e}'
            | '\u{2060}'..='\u{206f}'
            | '\u{feff}'
            | '\u{fff9}'..='\u{fffb}'
            | '\u{e0000}'..='\u{e007f}'
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What a hook or another process can put in husk's messages cannot
    /// move the operator's cursor or reorder what follows (reviews 46 F4,
    /// 49c F3, 49d F1).
    #[test]
    fn an_escaped_line_keeps_its_layout_and_shows_what_would_hide() {
        assert_eq!(escaped_line("  123 ?  sh"), "  123 ?  sh");
        assert_eq!(escaped_line(" 7 a\u{202e}b\u{1b}[31m"), " 7 a\\u{202e}b\\u{1b}[31m");
    }

    #[test]
    fn printable_escapes_controls_and_invisible_format_characters() {
        for c in [
            '\u{1b}',
            '\u{9b}',
            '\u{ad}',
            '\u{61c}',
            '\u{180e}',
            '\u{200b}',
            '\u{202e}',
            '\u{2066}',
            '\u{feff}',
            '\u{e0041}',
        ] {
            let shown = printable(&format!("a{c}b"));
            assert_eq!(shown, format!("a{}b", c.escape_default()), "{c:?}");
        }
        assert_eq!(printable(" one\ntwo\t\u{e9} "), "one two \u{e9}");
    }
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
}
