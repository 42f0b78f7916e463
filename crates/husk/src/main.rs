//! husk: a daemonless OCI container runtime with runc's command line, over libhusk.
#![forbid(unsafe_code)]

mod cli;
mod commands;
mod log;
mod out;

use clap::Parser;

use cli::Cli;

fn main() {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => usage_error(e),
    };
    // The fds the container gets (3, 4, ...) must not be taken by the log file.
    commands::prepare(&cli);
    if let Err(e) = log::init(cli.log.as_deref(), cli.log_format, cli.debug) {
        eprintln!("husk: error: {e}");
        std::process::exit(1);
    }
    match commands::dispatch(cli) {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            libhusk::log::error(e.message());
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
    eprintln!(
        "husk: error: {}{}",
        first.trim_start_matches("error: "),
        global_flag_hint(&e)
    );
    std::process::exit(2);
}

/// runc's global flags go before the command (`husk --root R list`); given
/// after it, clap only says the argument is unexpected.
fn global_flag_hint(e: &clap::Error) -> String {
    use clap::error::{ContextKind, ContextValue};
    let Some(ContextValue::String(arg)) = e.get(ContextKind::InvalidArg) else {
        return String::new();
    };
    let flag = arg.split('=').next().unwrap_or(arg);
    let globals = <Cli as clap::CommandFactory>::command();
    let is_global = globals
        .get_arguments()
        .any(|a| a.get_long().is_some_and(|l| flag == format!("--{l}")));
    if is_global {
        format!(" ({flag} is a global flag: put it before the command, as in husk {flag} ... COMMAND)")
    } else {
        String::new()
    }
}
