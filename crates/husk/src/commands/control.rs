//! `kill`, `ps` and `events`.

use crate::out::outln;
use std::time::Duration;

use libhusk::container;
use libhusk::container::control::Event;
use libhusk::error::{Context, Error, Result};

use super::Runtime;
use crate::cli::ListFormat;

pub fn kill(rt: &Runtime, id: &str, signal: Option<&str>, all: bool) -> Result<()> {
    let sig = libhusk::process::signal::parse(signal.unwrap_or("SIGTERM"))?;
    container::kill(&rt.store, id, sig, all)
}

/// The container's processes, as pids (json) or as `ps` prints them.
pub fn ps(rt: &Runtime, id: &str, format: ListFormat, ps_args: &[String]) -> Result<()> {
    let pids = container::control::pids(&rt.store, id)?;
    if format == ListFormat::Json {
        outln!("{}", serde_json::to_string(&pids).expect("serialises"));
        return Ok(());
    }
    let args: Vec<String> = if ps_args.is_empty() {
        vec!["-ef".into()]
    } else {
        ps_args.to_vec()
    };
    let out = std::process::Command::new("ps")
        .args(&args)
        .output()
        .context(|| "run ps".into())?;
    if !out.status.success() {
        return Err(Error::new(format!(
            "ps {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let mut lines = text.lines();
    let header = lines.next().unwrap_or("");
    let Some(column) = header.split_whitespace().position(|c| c == "PID") else {
        return Err(Error::new(format!(
            "ps {}: no PID column in its output",
            args.join(" ")
        )));
    };
    outln!("{header}");
    for line in lines {
        let pid = line.split_whitespace().nth(column).and_then(|p| p.parse::<i32>().ok());
        if pid.is_some_and(|p| pids.contains(&p)) {
            // The container writes its command lines; procps shows their
            // control characters as '?', not bidi overrides (review 60c F4).
            outln!("{}", libhusk::log::escaped_line(line));
        }
    }
    Ok(())
}

/// Stats every interval (once with --stats) and OOM events, one JSON line
/// each, until the container stops.
pub fn events(rt: &Runtime, id: &str, stats_once: bool, interval: &str) -> Result<()> {
    let every = match stats_once {
        true => None,
        false => Some(parse_duration(interval)?),
    };
    container::control::events(&rt.store, id, every, |event| outln!("{}", envelope(id, event)))
}

/// runc's envelope of an event: `{"type": "stats"|"oom", "id": ID, "data": ...}`.
fn envelope(id: &str, event: Event) -> serde_json::Value {
    match event {
        Event::Stats(data) => serde_json::json!({ "type": "stats", "id": id, "data": data }),
        Event::Oom => serde_json::json!({ "type": "oom", "id": id }),
    }
}

fn parse_duration(s: &str) -> Result<Duration> {
    let bad = || Error::new(format!("--interval {s}: not a duration such as 5s or 500ms"));
    let (num, unit) = s
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .map_or((s, "s"), |i| s.split_at(i));
    let n: f64 = num.parse().map_err(|_| bad())?;
    let secs = match unit {
        "ms" => n / 1000.0,
        "s" => n,
        "m" => n * 60.0,
        _ => return Err(bad()),
    };
    if secs <= 0.0 {
        return Err(bad());
    }
    Duration::try_from_secs_f64(secs).map_err(|_| Error::new(format!("--interval {s}: too long")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("5s").unwrap(), Duration::from_secs(5));
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_duration("2").unwrap(), Duration::from_secs(2));
        assert!(parse_duration("0s").is_err() && parse_duration("soon").is_err());
        let e = parse_duration("99999999999999999999999s").unwrap_err();
        assert_eq!(e.message(), "--interval 99999999999999999999999s: too long");
        assert!(parse_duration(&"9".repeat(400)).is_err());
    }
}
