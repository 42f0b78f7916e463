//! Signal names and numbers as `kill` takes them: `TERM`, `SIGTERM`, `15`,
//! `SIGRTMIN+3`, `37`. The real-time range follows glibc and Go (SIGRTMIN = 34),
//! which is what podman means when it sends 37.

use crate::error::{Error, Result};

pub const SIGRTMIN: i32 = 34;
pub const SIGRTMAX: i32 = 64;

const NAMES: &[(&str, i32)] = &[
    ("HUP", libc::SIGHUP),
    ("INT", libc::SIGINT),
    ("QUIT", libc::SIGQUIT),
    ("ILL", libc::SIGILL),
    ("TRAP", libc::SIGTRAP),
    ("ABRT", libc::SIGABRT),
    ("IOT", libc::SIGIOT),
    ("BUS", libc::SIGBUS),
    ("FPE", libc::SIGFPE),
    ("KILL", libc::SIGKILL),
    ("USR1", libc::SIGUSR1),
    ("SEGV", libc::SIGSEGV),
    ("USR2", libc::SIGUSR2),
    ("PIPE", libc::SIGPIPE),
    ("ALRM", libc::SIGALRM),
    ("TERM", libc::SIGTERM),
    ("STKFLT", libc::SIGSTKFLT),
    ("CHLD", libc::SIGCHLD),
    ("CLD", libc::SIGCHLD),
    ("CONT", libc::SIGCONT),
    ("STOP", libc::SIGSTOP),
    ("TSTP", libc::SIGTSTP),
    ("TTIN", libc::SIGTTIN),
    ("TTOU", libc::SIGTTOU),
    ("URG", libc::SIGURG),
    ("XCPU", libc::SIGXCPU),
    ("XFSZ", libc::SIGXFSZ),
    ("VTALRM", libc::SIGVTALRM),
    ("PROF", libc::SIGPROF),
    ("WINCH", libc::SIGWINCH),
    ("IO", libc::SIGIO),
    ("POLL", libc::SIGPOLL),
    ("PWR", libc::SIGPWR),
    ("SYS", libc::SIGSYS),
];

/// A signal by name (`TERM`, `SIGTERM`, `RTMIN+3`) or number; 0 (no signal:
/// only whether the process is there) as runc takes it, for liveness probes.
pub fn parse(input: &str) -> Result<i32> {
    let unknown = || Error::new(format!("unknown signal \"{input}\""));
    if let Ok(n) = input.parse::<i32>() {
        return if (0..=SIGRTMAX).contains(&n) {
            Ok(n)
        } else {
            Err(unknown())
        };
    }
    let upper = input.to_ascii_uppercase();
    let name = upper.strip_prefix("SIG").unwrap_or(&upper);
    if let Some(&(_, n)) = NAMES.iter().find(|(n, _)| *n == name) {
        return Ok(n);
    }
    realtime(name).ok_or_else(unknown)
}

fn realtime(name: &str) -> Option<i32> {
    let offset = |s: &str| -> Option<i32> {
        if s.is_empty() {
            Some(0)
        } else {
            s.parse().ok()
        }
    };
    let n = if let Some(rest) = name.strip_prefix("RTMIN") {
        SIGRTMIN.checked_add(offset(rest.strip_prefix('+').unwrap_or(rest))?)?
    } else if let Some(rest) = name.strip_prefix("RTMAX") {
        SIGRTMAX.checked_sub(offset(rest.strip_prefix('-').unwrap_or(rest))?)?
    } else {
        return None;
    };
    (SIGRTMIN..=SIGRTMAX).contains(&n).then_some(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_with_and_without_prefix() {
        assert_eq!(parse("TERM").unwrap(), 15);
        assert_eq!(parse("SIGKILL").unwrap(), 9);
        assert_eq!(parse("sigusr1").unwrap(), 10);
        assert_eq!(parse("9").unwrap(), 9);
        assert_eq!(parse("0").unwrap(), 0);
    }

    #[test]
    fn realtime_signals() {
        assert_eq!(parse("37").unwrap(), 37);
        assert_eq!(parse("SIGRTMIN+3").unwrap(), 37);
        assert_eq!(parse("RTMIN").unwrap(), 34);
        assert_eq!(parse("SIGRTMAX-1").unwrap(), 63);
    }

    #[test]
    fn rejects_unknown_and_out_of_range() {
        for bad in [
            "SIGFOO",
            "65",
            "-1",
            "RTMIN+40",
            "",
            "SIG",
            "RTMIN+2147483647",
            "RTMAX--2147483648",
            "99999999999999999999",
        ] {
            let err = parse(bad).unwrap_err();
            assert!(err.message().contains("unknown signal"), "{bad}: {err}");
        }
    }
}
