//! The command lines that managers run for every container (create, start,
//! state, kill, delete), parsed without clap. clap builds its command tree
//! and matches against it on every start: ~55 us of user time a process, 40%
//! of a `husk state`'s, and the page faults of its code (docs/design.md,
//! record 4, "Command lines without clap").
//!
//! Only a command line made of the flags below, each in the one spelling
//! written here, is taken: anything else (help, version, another command, an
//! unknown, abbreviated or combined flag, a value missing, empty or starting
//! with `-`, `--`, a switch given a value, an argument that is not UTF-8)
//! goes to clap, which parses it or words the error. The tests hold the two
//! to the same result.

use std::ffi::OsString;

use crate::cli::{go_bool, Cli, Command, CreateArgs};
use crate::log::Format;

/// `args` (the program's name first) as clap would parse them, or None to
/// leave them to clap.
pub fn parse(args: impl IntoIterator<Item = OsString>) -> Option<Cli> {
    let args: Vec<String> = args
        .into_iter()
        .skip(1)
        .map(|a| a.into_string().ok())
        .collect::<Option<_>>()?;
    let mut cli = Cli {
        root: None,
        log: None,
        log_format: Format::Text,
        debug: false,
        systemd_cgroup: false,
        rootless: "auto".to_string(),
        criu: None,
        version: false,
        command: None,
    };
    let mut words = args.iter().map(String::as_str);
    let command = loop {
        let word = words.next()?;
        if !word.starts_with('-') {
            break word;
        }
        let (flag, inline) = split_value(word);
        match flag {
            "--root" => cli.root = Some(value(inline, &mut words)?.into()),
            "--log" => cli.log = Some(value(inline, &mut words)?.into()),
            "--log-format" => {
                cli.log_format = match value(inline, &mut words)? {
                    "text" => Format::Text,
                    "json" => Format::Json,
                    _ => return None,
                }
            }
            "--debug" => cli.debug = switch(inline)?,
            "--systemd-cgroup" => cli.systemd_cgroup = switch(inline)?,
            "--rootless" => cli.rootless = value(inline, &mut words)?.to_string(),
            "--criu" => cli.criu = Some(value(inline, &mut words)?.into()),
            _ => return None,
        }
    };
    let rest: Vec<&str> = words.collect();
    cli.command = Some(match command {
        "create" => Command::Create(create(&rest)?),
        "start" => Command::Start { id: one_id(&rest)? },
        "state" => Command::State { id: one_id(&rest)? },
        "delete" => {
            let (force, positional) = with_switch(&rest, "-f", "--force")?;
            let [id] = positional[..] else { return None };
            Command::Delete {
                force,
                id: id.to_string(),
            }
        }
        "kill" => {
            let (all, positional) = with_switch(&rest, "-a", "--all")?;
            let (id, signal) = match positional[..] {
                [id] => (id, None),
                [id, signal] => (id, Some(signal.to_string())),
                _ => return None,
            };
            Command::Kill {
                all,
                id: id.to_string(),
                signal,
            }
        }
        _ => return None,
    });
    Some(cli)
}

/// `--flag=value` as the flag and its value.
fn split_value(word: &str) -> (&str, Option<&str>) {
    match word.split_once('=') {
        Some((flag, value)) if flag.starts_with("--") => (flag, Some(value)),
        _ => (word, None),
    }
}

/// A flag's value: after `=`, or the next word.
fn value<'a>(inline: Option<&'a str>, words: &mut impl Iterator<Item = &'a str>) -> Option<&'a str> {
    let value = match inline {
        Some(value) => value,
        None => words.next()?,
    };
    (!value.is_empty() && !value.starts_with('-')).then_some(value)
}

/// A global switch: on alone, or as `=BOOL` says.
fn switch(inline: Option<&str>) -> Option<bool> {
    match inline {
        None => Some(true),
        Some(value) => go_bool(value).ok(),
    }
}

/// A single positional argument that is an id.
fn one_id(rest: &[&str]) -> Option<String> {
    match rest {
        [id] if plain(id) => Some(id.to_string()),
        _ => None,
    }
}

/// A word clap takes as a positional value.
fn plain(word: &str) -> bool {
    !word.is_empty() && !word.starts_with('-')
}

/// The words without the switch (either spelling, any number of times), and
/// whether it was there; None where a word is some other flag.
fn with_switch<'a>(rest: &[&'a str], short: &str, long: &str) -> Option<(bool, Vec<&'a str>)> {
    let mut on = false;
    let mut positional = Vec::new();
    for &word in rest {
        if word == short || word == long {
            on = true;
        } else if plain(word) {
            positional.push(word);
        } else {
            return None;
        }
    }
    Some((on, positional))
}

fn create(rest: &[&str]) -> Option<CreateArgs> {
    let mut args = CreateArgs {
        bundle: None,
        pid_file: None,
        console_socket: None,
        no_pivot: false,
        no_new_keyring: false,
        preserve_fds: 0,
        id: String::new(),
    };
    let mut id = None;
    let mut words = rest.iter().copied();
    while let Some(word) = words.next() {
        if plain(word) {
            if id.replace(word).is_some() {
                return None;
            }
            continue;
        }
        let (flag, inline) = split_value(word);
        match flag {
            "-b" | "--bundle" => args.bundle = Some(value(inline, &mut words)?.into()),
            "--pid-file" => args.pid_file = Some(value(inline, &mut words)?.into()),
            "--console-socket" => args.console_socket = Some(value(inline, &mut words)?.into()),
            "--preserve-fds" => args.preserve_fds = digits(value(inline, &mut words)?)?,
            "--no-pivot" if inline.is_none() => args.no_pivot = true,
            "--no-new-keyring" if inline.is_none() => args.no_new_keyring = true,
            _ => return None,
        }
    }
    args.id = id?.to_string();
    Some(args)
}

/// A count in plain decimal digits that fits a u32.
fn digits(value: &str) -> Option<u32> {
    value.bytes().all(|b| b.is_ascii_digit()).then(|| value.parse().ok())?
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn argv(words: &[&str]) -> Vec<OsString> {
        std::iter::once("husk")
            .chain(words.iter().copied())
            .map(OsString::from)
            .collect()
    }

    /// Where the fast path takes `words`, clap takes them too and makes the
    /// same Cli of them; whether the fast path took them.
    fn agrees(words: &[&str]) -> bool {
        let Some(fast) = parse(argv(words)) else {
            return false;
        };
        let clap = Cli::try_parse_from(argv(words)).unwrap_or_else(|e| panic!("{words:?}: clap refused: {e}"));
        assert_eq!(format!("{fast:?}"), format!("{clap:?}"), "{words:?}");
        true
    }

    fn globals() -> Vec<Vec<&'static str>> {
        vec![
            vec![],
            vec!["--root", "/run/r"],
            vec!["--root=/run/r"],
            vec!["--root", "/a", "--root", "/b"],
            vec!["--log", "/l", "--log-format", "json"],
            vec!["--log=/l", "--log-format=text", "--log-format", "json"],
            vec!["--systemd-cgroup", "--debug"],
            vec!["--debug=false", "--systemd-cgroup=T", "--rootless", "true"],
            vec!["--rootless=false", "--criu", "/usr/sbin/criu", "--debug=1"],
            vec!["--criu=/c", "--root", "/r", "--log", "l"],
        ]
    }

    fn commands() -> Vec<Vec<&'static str>> {
        vec![
            vec!["start", "c1"],
            vec!["state", "c1"],
            vec!["delete", "c1"],
            vec!["delete", "-f", "c1"],
            vec!["delete", "c1", "--force"],
            vec!["delete", "--force", "-f", "c1"],
            vec!["kill", "c1"],
            vec!["kill", "c1", "KILL"],
            vec!["kill", "--all", "c1", "9"],
            vec!["kill", "c1", "SIGRTMIN+3", "-a"],
            vec!["create", "c1"],
            vec!["create", "--bundle", "/b", "c1"],
            vec!["create", "-b", "/b", "c1"],
            vec!["create", "c1", "--bundle=/b"],
            vec!["create", "--bundle", "/a", "--bundle", "/b", "c1"],
            crate::cli::tests::CONMON_CREATE[4..].to_vec(),
            vec![
                "create",
                "--pid-file=/p",
                "--console-socket=/s",
                "--preserve-fds=007",
                "c1",
            ],
            vec![
                "create",
                "--no-pivot",
                "--no-pivot",
                "c1",
                "--preserve-fds",
                "4294967295",
            ],
        ]
    }

    #[test]
    fn what_managers_run_is_parsed_as_clap_parses_it() {
        assert!(agrees(crate::cli::tests::CONMON_CREATE));
        for global in globals() {
            for command in commands() {
                let words: Vec<&str> = global.iter().chain(&command).copied().collect();
                assert!(agrees(&words), "{words:?} went to clap");
            }
        }
    }

    #[test]
    fn anything_else_goes_to_clap() {
        let others: &[&[&str]] = &[
            &[],
            &["--root", "/r"],
            &["--help"],
            &["-h"],
            &["--version"],
            &["-v"],
            &["list"],
            &["run", "c1"],
            &["exec", "c1", "true"],
            &["--root"],
            &["--root", ""],
            &["--root="],
            &["--root", "-x", "state", "c1"],
            &["--ro", "/r", "state", "c1"],
            &["--debug", "true", "state", "c1"],
            &["--debug=maybe", "state", "c1"],
            &["--log-format", "JSON", "state", "c1"],
            &["--log-format", "xml", "state", "c1"],
            &["state"],
            &["state", "a", "b"],
            &["state", "-"],
            &["state", ""],
            &["state", "--", "c1"],
            &["state", "c1", "--help"],
            &["start", "--root", "/r", "c1"],
            &["delete", "-af", "c1"],
            &["delete", "--force=true", "c1"],
            &["delete", "-f"],
            &["kill", "c1", "-9"],
            &["kill", "c1", "TERM", "x"],
            &["kill", "-a"],
            &["create"],
            &["create", "a", "b"],
            &["create", "-b/b", "c1"],
            &["create", "-b=/b", "c1"],
            &["create", "--bundle", "c1"],
            &["create", "--no-pivot=true", "c1"],
            &["create", "--preserve-fds", "+2", "c1"],
            &["create", "--preserve-fds", "-1", "c1"],
            &["create", "--preserve-fds", "4294967296", "c1"],
            &["create", "--preserve-fds", "x", "c1"],
            &["create", "--pid", "/p", "c1"],
            &["create", "--bundle", "/b", "--", "c1"],
        ];
        for words in others {
            assert!(parse(argv(words)).is_none(), "{words:?} was taken");
        }
    }

    #[test]
    fn an_argument_that_is_not_utf8_goes_to_clap() {
        use std::os::unix::ffi::OsStringExt;
        let mut args = argv(&["--root"]);
        args.push(OsString::from_vec(b"/r\xff".to_vec()));
        args.extend(["state", "c1"].map(OsString::from));
        assert!(parse(args).is_none());
    }
}
