//! husk: a daemonless OCI container runtime with runc's command line.
#![warn(clippy::undocumented_unsafe_blocks)]

mod bpf;
mod capabilities;
mod cgroups;
mod cli;
mod config;
mod console;
mod container;
mod control;
mod dbus;
mod devices;
mod error;
mod exec;
mod features;
mod foreground;
#[cfg(test)]
mod fuzz_tests;
mod hooks;
mod init;
mod log;
mod mounts;
mod namespaces;
mod notify;
mod process;
mod resources;
mod rootfs;
mod seal;
mod seccomp;
mod signal;
mod spec;
mod state;
mod sync;
mod sys;
mod sysctl;
mod systemd;
mod userns;

use std::path::PathBuf;

use clap::Parser;

use cli::{Cli, Command};
use error::{Error, Result};
use state::Store;

const VERSION: &str = env!("CARGO_PKG_VERSION");

fn main() {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => usage_error(e),
    };
    if let Err(e) = log::init(cli.log.as_deref(), cli.log_format, cli.debug) {
        eprintln!("husk: {e}");
        std::process::exit(1);
    }
    match dispatch(cli) {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            log::error(e.message());
            std::process::exit(1);
        }
    }
}

/// Help and version go to stdout as clap prints them; a usage error becomes one line.
fn usage_error(e: clap::Error) -> ! {
    use clap::error::ErrorKind;
    if matches!(
        e.kind(),
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
    ) {
        e.exit();
    }
    let text = e.render().to_string();
    let first = text.lines().next().unwrap_or("invalid arguments");
    eprintln!("husk: {}", first.trim_start_matches("error: "));
    std::process::exit(2);
}

fn print_version() {
    println!("husk version {VERSION}");
    println!("commit: {}", option_env!("HUSK_COMMIT").unwrap_or("unknown"));
    println!("spec: {}", spec::OCI_VERSION);
}

/// Where state lives unless --root says: /run/husk for root, and
/// $XDG_RUNTIME_DIR/husk for an ordinary user, or for a user's root inside a
/// user namespace (podman rootless), as runc decides.
fn default_root(euid: u32, in_userns: bool) -> Result<PathBuf> {
    let xdg = std::env::var_os("XDG_RUNTIME_DIR").filter(|d| !d.is_empty());
    let honour_xdg = euid != 0 || (in_userns && std::env::var_os("USER").is_none_or(|u| u != "root"));
    match xdg {
        Some(dir) if honour_xdg => Ok(PathBuf::from(dir).join("husk")),
        None if euid != 0 => Err(Error::new(
            "XDG_RUNTIME_DIR is not set: give --root DIR, a directory this user can write",
        )),
        _ => Ok(PathBuf::from(cgroups::DEFAULT_ROOT)),
    }
}

/// Rootless mode: an ordinary user, or root in a user namespace it did not
/// get from the host (no cgroups unless delegated, devices bound, not made).
fn is_rootless(mode: &str, euid: u32, in_userns: bool) -> Result<bool> {
    match mode {
        "auto" => Ok(euid != 0 || in_userns),
        "true" => Ok(true),
        "false" => Ok(false),
        other => Err(Error::new(format!(
            "--rootless must be auto, true or false, not \"{other}\""
        ))),
    }
}

fn dispatch(cli: Cli) -> Result<i32> {
    if cli.version {
        print_version();
        return Ok(0);
    }
    let Some(command) = cli.command else {
        print_version();
        return Ok(0);
    };
    // SAFETY: geteuid cannot fail.
    let euid = unsafe { libc::geteuid() };
    // Only root needs to know (an ordinary user is rootless either way).
    let in_userns = euid == 0 && sys::in_user_namespace();
    let rootless = is_rootless(&cli.rootless, euid, in_userns)?;
    let mode = container::Mode {
        rootless,
        systemd_cgroup: cli.systemd_cgroup,
    };
    let store = || -> Result<Store> {
        let root = match &cli.root {
            Some(r) => r.clone(),
            None => default_root(euid, in_userns)?,
        };
        Ok(Store::new(root))
    };
    match command {
        Command::Spec(a) => {
            let bundle = a.bundle.unwrap_or_else(|| PathBuf::from("."));
            spec::write(&bundle, a.rootless)?;
        }
        Command::Create(a) => {
            seal::ensure_sealed()?;
            container::create(&store()?, &a, mode)?
        }
        Command::Start { id } => container::start(&store()?, &id)?,
        Command::State { id } => container::state(&store()?, &id)?,
        Command::Kill { all, id, signal } => container::kill(&store()?, &id, signal.as_deref(), all)?,
        Command::Delete { force, id } => container::delete(&store()?, &id, force)?,
        Command::Run(a) => {
            seal::ensure_sealed()?;
            return container::run(&store()?, &a, mode);
        }
        Command::Exec(a) => {
            seal::ensure_sealed()?;
            return exec::exec(&store()?, &a, mode);
        }
        Command::Features => println!(
            "{}",
            serde_json::to_string_pretty(&features::document()).expect("serialises")
        ),
        Command::Pause { id } => control::pause(&store()?, &id)?,
        Command::Resume { id } => control::resume(&store()?, &id)?,
        Command::Ps { format, id, ps_args } => control::ps(&store()?, &id, format, &ps_args)?,
        Command::Events { stats, interval, id } => control::events(&store()?, &id, stats, &interval)?,
        Command::Update(a) => control::update(&store()?, &a)?,
        Command::List { format, quiet } => container::list(&store()?, format, quiet)?,
    }
    Ok(0)
}
