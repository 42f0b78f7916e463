//! `husk generate systemd`: prints a unit that runs a bundle as a systemd
//! service, the one docs/systemd.md explains: `Type=notify` (active once the
//! container sends READY=1, which husk relays), husk in the foreground as the
//! main process (it passes SIGTERM on and exits with the container's status),
//! `Delegate=yes` so that a relative `linux.cgroupsPath` puts the container's
//! cgroup under the service's, and `ExecStopPost` deleting whatever is left.

use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};
use libhusk::error::Context;
use libhusk::{Error, Result};

use crate::cli::Cli;

#[derive(Args, Debug)]
pub struct GenerateArgs {
    #[command(subcommand)]
    pub what: Generated,
}

#[derive(Subcommand, Debug)]
pub enum Generated {
    /// Print a Type=notify systemd unit that runs the bundle with `husk run`
    Systemd {
        /// Path to the bundle (default: the current directory)
        #[arg(short, long, value_name = "DIR")]
        bundle: Option<PathBuf>,
        /// The container's id (the unit is husk-ID.service)
        id: String,
    },
}

pub fn generate(cli: &Cli, a: &GenerateArgs) -> Result<()> {
    let Generated::Systemd { bundle, id } = &a.what;
    libhusk::state::validate_id(id)?;
    if cli.systemd_cgroup {
        return Err(Error::new(
            "generate systemd: --systemd-cgroup would put the container in a scope of its own, outside the service: leave it out",
        ));
    }
    let bundle = bundle.clone().unwrap_or_else(|| PathBuf::from("."));
    let bundle = std::fs::canonicalize(&bundle).context(|| format!("bundle {}", bundle.display()))?;
    check_config(&bundle)?;
    let husk = std::env::current_exe().context(|| "the path of husk".into())?;
    for (what, path) in [
        ("bundle", Some(bundle.as_path())),
        ("--root", cli.root.as_deref()),
        ("husk", Some(husk.as_path())),
    ] {
        if let Some(path) = path {
            refuse_control(what, path)?;
        }
    }
    crate::out::print(format_args!("{}", unit(&husk, cli.root.as_deref(), &bundle, id)));
    Ok(())
}

/// What would make the unit fail or miss the container: a terminal (a service
/// has none), a cgroup outside the service's (said, not refused: husk still
/// passes SIGTERM on and ExecStopPost still cleans up).
fn check_config(bundle: &Path) -> Result<()> {
    let path = bundle.join("config.json");
    let text = std::fs::read_to_string(&path).context(|| format!("read {}", path.display()))?;
    let config: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| Error::new(format!("{}: {e}", path.display())))?;
    if config["process"]["terminal"] == true {
        return Err(Error::new(format!(
            "{}: process.terminal is true, but a service has no terminal to give: set it to false",
            path.display()
        )));
    }
    let cgroups_path = config["linux"]["cgroupsPath"].as_str().unwrap_or("");
    if cgroups_path.is_empty() || cgroups_path.starts_with('/') {
        libhusk::log::warn(&format!(
            "{}: linux.cgroupsPath \"{cgroups_path}\" is outside the service's cgroup, so systemd will not see the container's processes: a relative path such as \"container\" puts it under the service's",
            path.display()
        ));
    }
    Ok(())
}

fn unit(husk: &Path, root: Option<&Path>, bundle: &Path, id: &str) -> String {
    let mut husk_args = vec![husk.display().to_string()];
    if let Some(root) = root {
        husk_args.extend(["--root".to_string(), absolute(root).display().to_string()]);
    }
    let command = |args: &[&str]| {
        let all = husk_args.iter().map(String::as_str).chain(args.iter().copied());
        all.map(quote).collect::<Vec<_>>().join(" ")
    };
    let bundle = bundle.display().to_string();
    let start = command(&["run", "--bundle", &bundle, id]);
    let stop_post = command(&["delete", "--force", id]);
    format!(
        "# husk-{id}.service, from husk generate systemd (docs/systemd.md)\n\
         [Unit]\n\
         Description=husk container {id}\n\
         \n\
         [Service]\n\
         # Active once the container sends READY=1 to $NOTIFY_SOCKET, which husk relays.\n\
         Type=notify\n\
         NotifyAccess=all\n\
         # The container's cgroup (a relative linux.cgroupsPath) is under the service's.\n\
         Delegate=yes\n\
         # SIGTERM to husk, which passes it on to the container; SIGKILL to all at TimeoutStopSec.\n\
         KillMode=mixed\n\
         ExecStart={start}\n\
         ExecStopPost={stop_post}\n\
         \n\
         [Install]\n\
         WantedBy=multi-user.target\n"
    )
}

/// A unit is read line by line: a newline (or another control character)
/// in a path, even quoted, would end the ExecStart= line and start a line of
/// the path's choosing (the bundle is resolved, so a symlink's target counts).
fn refuse_control(what: &str, path: &Path) -> Result<()> {
    if path.to_string_lossy().chars().any(char::is_control) {
        return Err(Error::new(format!(
            "generate systemd: {what} {:?} has a newline or another control character, which a unit file cannot hold: rename it",
            path
        )));
    }
    Ok(())
}

fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}

/// One word of a unit's command line: quoted when it has to be, with systemd's
/// specifiers (%) and variables ($) escaped.
fn quote(word: &str) -> String {
    let escaped = word
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('%', "%%")
        .replace('$', "$$");
    let plain = !word.is_empty()
        && !word
            .chars()
            .any(|c| c.is_whitespace() || c == '"' || c == '\'' || c == '\\');
    match plain {
        true => escaped,
        false => format!("\"{escaped}\""),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_are_quoted_for_systemd() {
        assert_eq!(quote("/srv/b"), "/srv/b");
        assert_eq!(quote("/srv/my bundle"), "\"/srv/my bundle\"");
        assert_eq!(quote("a%b$c"), "a%%b$$c");
        assert_eq!(quote("say \"hi\"\\"), "\"say \\\"hi\\\"\\\\\"");
        assert_eq!(quote(""), "\"\"");
    }

    #[test]
    fn paths_with_newlines_are_refused() {
        // A bundle resolved from a symlink a user owns: its target's name
        // would otherwise start a line of the unit after ExecStart=.
        let evil = Path::new("/tmp/x\nExecStart=/bin/touch /tmp/pwned\n#");
        assert!(refuse_control("bundle", evil).is_err());
        assert!(refuse_control("bundle", Path::new("/tmp/x\ry")).is_err());
        assert!(refuse_control("bundle", Path::new("/srv/my bundle")).is_ok());
    }

    #[test]
    fn the_unit_runs_and_deletes_the_container() {
        let text = unit(
            Path::new("/usr/bin/husk"),
            Some(Path::new("/run/h")),
            Path::new("/srv/web"),
            "web",
        );
        assert!(
            text.contains("\nExecStart=/usr/bin/husk --root /run/h run --bundle /srv/web web\n"),
            "{text}"
        );
        assert!(
            text.contains("\nExecStopPost=/usr/bin/husk --root /run/h delete --force web\n"),
            "{text}"
        );
        for line in ["Type=notify", "NotifyAccess=all", "Delegate=yes", "KillMode=mixed"] {
            assert!(text.lines().any(|l| l == line), "{line}: {text}");
        }
    }
}
