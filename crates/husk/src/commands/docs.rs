//! `husk completion SHELL` and `husk man DIR`: shell completions and man pages
//! generated from clap's definition of the command line, so they cannot drift
//! from it. They are part of the binary (as ripgrep's `rg --generate` is) so
//! that `make install` makes them from the very binary it installs, with no
//! cargo and no second build; the other commands never run this code.

use std::io::Write;
use std::path::Path;

use clap::CommandFactory;
use libhusk::error::{Context, Result};

use crate::cli::{Cli, CompletionShell};

const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Writes the completion script for `shell` to stdout.
pub fn completion(shell: CompletionShell) -> Result<()> {
    use clap_complete::{generate, shells};
    let mut cmd = Cli::command();
    // Rendered into memory first: clap_complete panics on a failed write, and
    // a closed pipe should be an error line, not an abort. One generator type
    // per shell (not clap_complete::Shell, whose match links all five).
    let mut script = Vec::new();
    match shell {
        CompletionShell::Bash => generate(shells::Bash, &mut cmd, "husk", &mut script),
        CompletionShell::Zsh => generate(shells::Zsh, &mut cmd, "husk", &mut script),
        CompletionShell::Fish => generate(shells::Fish, &mut cmd, "husk", &mut script),
    }
    std::io::stdout()
        .lock()
        .write_all(&script)
        .context(|| "write the completion script".to_string())
}

/// Writes husk.8 and one husk-COMMAND.8 per (visible) command into `dir`.
pub fn man(dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).context(|| format!("create {}", dir.display()))?;
    // `husk help` is clap's, not a command of its own page.
    let mut husk = Cli::command().disable_help_subcommand(true);
    husk.build();
    write_page(dir, &husk, "")?;
    for command in husk.get_subcommands().filter(|c| !c.is_hide_set()) {
        write_page(dir, command, SEE_ALSO_HUSK)?;
    }
    Ok(())
}

/// A command's page only lists its own flags: the global ones are in husk(8).
const SEE_ALSO_HUSK: &str = ".SH \"SEE ALSO\"\n\\fBhusk\\fR(8) for the global options, which go before the command.\n";

/// Renders `command`'s page (named by its display name, husk or husk-COMMAND)
/// in section 8, with `extra` roff appended.
fn write_page(dir: &Path, command: &clap::Command, extra: &str) -> Result<()> {
    let name = command.get_display_name().unwrap_or_else(|| command.get_name());
    let page = clap_mangen::Man::new(command.clone())
        .title(name.to_uppercase())
        .section("8")
        .source(format!("husk {VERSION}"))
        .manual("husk manual");
    let mut text = Vec::new();
    page.render(&mut text).context(|| format!("render {name}.8"))?;
    text.extend_from_slice(extra.as_bytes());
    let path = dir.join(page.get_filename());
    // DIR may be one others can write: a link planted at a page's name is
    // replaced, never written through.
    libhusk::state::write_atomic(&path, &text, 0o644)
}
