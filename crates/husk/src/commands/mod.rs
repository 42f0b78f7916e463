//! One handler per command: each turns its flags into a library call and
//! prints what comes back.

pub mod checkpoint;
mod control;
mod create;
mod docs;
mod exec;
pub mod generate;
mod list;
mod update;

use crate::out::outln;
use std::path::PathBuf;

use libhusk::container::{self, Mode};
use libhusk::state::Store;
use libhusk::{Error, Result};

use crate::cli::{Cli, Command};

const VERSION: &str = env!("CARGO_PKG_VERSION");

/// What every command that touches a container needs: where state lives and
/// how containers are made.
pub struct Runtime {
    pub store: Store,
    pub mode: Mode,
}

pub fn dispatch(cli: Cli) -> Result<i32> {
    if cli.version {
        print_version();
        return Ok(0);
    }
    let Some(command) = cli.command.as_ref() else {
        // As runc: no command is a request for help.
        let _ = <Cli as clap::CommandFactory>::command().print_help();
        return Ok(0);
    };
    if let Some(criu) = &cli.criu {
        libhusk::criu::use_program(criu.into());
    }
    let euid = nix::unistd::geteuid().as_raw();
    // Only root needs to know (an ordinary user is rootless either way).
    let in_userns = euid == 0 && libhusk::sys::in_user_namespace();
    let mode = Mode {
        rootless: is_rootless(&cli.rootless, euid, in_userns)?,
        systemd_cgroup: cli.systemd_cgroup,
    };
    let rt = || -> Result<Runtime> {
        let root = match &cli.root {
            Some(r) => r.clone(),
            None => default_root(euid, in_userns)?,
        };
        Ok(Runtime {
            store: Store::new(root),
            mode,
        })
    };
    match command {
        Command::Spec(a) => {
            let bundle = a.bundle.clone().unwrap_or_else(|| PathBuf::from("."));
            libhusk::spec::template::write(&bundle, a.rootless)?;
        }
        Command::Features => outln!(
            "{}",
            serde_json::to_string_pretty(&libhusk::spec::features::document()).expect("serialises")
        ),
        Command::Create(a) => create::create(&rt()?, a)?,
        Command::Run(a) => return create::run(&rt()?, a),
        Command::Start { id } => container::start(&rt()?.store, id)?,
        Command::State { id } => list::state(&rt()?, id)?,
        Command::List { format, quiet } => list::list(&rt()?, *format, *quiet)?,
        Command::Kill { all, id, signal } => control::kill(&rt()?, id, signal.as_deref(), *all)?,
        Command::Delete { force, id } => container::delete(&rt()?.store, id, *force)?,
        Command::Exec(a) => return exec::exec(&rt()?, a),
        Command::Pause { id } => container::control::pause(&rt()?.store, id)?,
        Command::Resume { id } => container::control::resume(&rt()?.store, id)?,
        Command::Ps { format, id, ps_args } => control::ps(&rt()?, id, *format, ps_args)?,
        Command::Events { stats, interval, id } => control::events(&rt()?, id, *stats, interval)?,
        Command::Update(a) => update::update(&rt()?, a)?,
        Command::Checkpoint(a) => checkpoint::checkpoint(&rt()?, a)?,
        Command::Restore(a) => return checkpoint::restore(&rt()?, a),
        Command::Completion { shell } => docs::completion(*shell)?,
        Command::Man { dir } => docs::man(dir)?,
        Command::Generate(a) => generate::generate(&cli, a)?,
    }
    Ok(0)
}

/// For the commands that start a container process, before husk opens
/// anything: runs from a sealed copy of the binary (create, run and
/// exec would do it first thing anyway), then holds fds 3..3+N for the
/// container. A failure of either is left for the library's call to report
/// (through the log, which is not open yet).
pub fn prepare(cli: &Cli) {
    let (preserve, listen) = match &cli.command {
        Some(Command::Create(a)) => (a.preserve_fds, container::listen_fds()),
        Some(Command::Run(a)) => (a.create.preserve_fds, container::listen_fds()),
        Some(Command::Exec(a)) => (a.preserve_fds, 0),
        _ => return,
    };
    if libhusk::process::seal::ensure_sealed().is_ok() {
        let _ = container::hold_passed_fds(preserve, listen);
    }
}

fn print_version() {
    outln!("husk version {VERSION}");
    outln!("commit: {}", option_env!("HUSK_COMMIT").unwrap_or("unknown"));
    outln!("spec: {}", libhusk::spec::template::OCI_VERSION);
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
        _ => Ok(PathBuf::from(libhusk::state::DEFAULT_ROOT)),
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
