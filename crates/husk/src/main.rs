//! husk: a daemonless OCI container runtime with runc's command line, over libhusk.
#![forbid(unsafe_code)]

mod cli;
mod commands;
mod log;

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
    eprintln!("husk: error: {}", first.trim_start_matches("error: "));
    std::process::exit(2);
}
