//! runc's command line. Managers pass it verbatim, so flag names, short forms and
//! positional arguments follow runc; a global flag given twice takes the last value.

use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

use crate::commands::checkpoint::{CheckpointArgs, RestoreArgs};
use crate::log::Format;

#[derive(Parser, Debug)]
#[command(
    name = "husk",
    about = "A daemonless OCI container runtime",
    long_about = "A daemonless OCI container runtime, with runc's command line.\n\n\
                  Global options go before the command: husk --root DIR list.",
    disable_version_flag = true,
    args_override_self = true,
    subcommand_value_name = "COMMAND",
    subcommand_help_heading = "Commands"
)]
pub struct Cli {
    /// Directory for container state (default /run/husk, or $XDG_RUNTIME_DIR/husk unprivileged)
    #[arg(long, value_name = "DIR")]
    pub root: Option<PathBuf>,

    /// Also write errors (and --debug messages) to this file
    #[arg(long, value_name = "FILE")]
    pub log: Option<PathBuf>,

    /// Format of the --log file (without --log, json is stderr's format)
    #[arg(long, value_enum, value_name = "FORMAT", default_value = "text")]
    pub log_format: Format,

    /// Print debug messages
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true", value_name = "BOOL", value_parser = go_bool, hide_possible_values = true)]
    pub debug: bool,

    /// Manage cgroups through systemd
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true", value_name = "BOOL", value_parser = go_bool, hide_possible_values = true)]
    pub systemd_cgroup: bool,

    /// Rootless mode: auto, true or false
    #[arg(long, value_name = "MODE", default_value = "auto")]
    pub rootless: String,

    /// The criu program for checkpoint and restore (default: criu in PATH)
    #[arg(long, value_name = "PATH")]
    pub criu: Option<PathBuf>,

    /// Print version information
    #[arg(short = 'v', long)]
    pub version: bool,

    #[command(subcommand)]
    pub command: Option<Command>,
}

/// A global switch's value as runc (Go's strconv.ParseBool) reads it:
/// `--debug`, `--debug=true`, `--systemd-cgroup=false`.
pub(crate) fn go_bool(value: &str) -> Result<bool, String> {
    match value {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Ok(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Ok(false),
        _ => Err(format!("{value:?} is not true or false")),
    }
}

/// `defer`: clap makes a command's arguments only when that command is the
/// one parsed (or for help, man pages and completions), not those of every
/// command on every start: `husk list` runs a third fewer instructions.
#[derive(Subcommand, Debug)]
#[command(defer = true)]
pub enum Command {
    /// Write a default config.json into the bundle
    Spec(SpecArgs),
    /// Create a container whose process waits for `start`
    Create(CreateArgs),
    /// Let a created container run its process
    Start {
        /// The container's ID
        id: String,
    },
    /// Print the state of a container as JSON
    State {
        /// The container's ID
        id: String,
    },
    /// Send a signal to a container's process (default SIGTERM)
    Kill {
        /// Signal every process of the container
        #[arg(short, long)]
        all: bool,
        /// The container's ID
        id: String,
        /// Signal name or number: TERM, SIGKILL, 9, RTMIN+3 ... (default SIGTERM)
        signal: Option<String>,
    },
    /// Delete a container (--force kills a running one first)
    Delete {
        /// Kill a running container (SIGKILL) and delete it
        #[arg(short, long)]
        force: bool,
        /// The container's ID
        id: String,
    },
    /// Create and start a container
    Run(RunArgs),
    /// Run a new process inside a running container
    Exec(ExecArgs),
    /// Print what this runtime supports (runtime-spec features document)
    Features,
    /// Freeze every process of a container
    Pause {
        /// The container's ID
        id: String,
    },
    /// Thaw a paused container
    Resume {
        /// The container's ID
        id: String,
    },
    /// List the processes of a container
    Ps {
        /// Output format: ps(1)'s table, or a JSON array of pids
        #[arg(short, long, value_enum, default_value = "table")]
        format: ListFormat,
        /// The container's ID
        id: String,
        /// Options for ps(1) (default -ef)
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        ps_args: Vec<String>,
    },
    /// Print resource usage (and OOM) events of a container
    Events {
        /// Print the stats once and exit
        #[arg(long)]
        stats: bool,
        /// How often to print stats
        #[arg(long, default_value = "5s", value_name = "DURATION")]
        interval: String,
        /// The container's ID
        id: String,
    },
    /// Change the resource limits of a running container
    Update(UpdateArgs),
    /// Checkpoint a running container with CRIU
    Checkpoint(CheckpointArgs),
    /// Restore a container from a CRIU checkpoint
    Restore(RestoreArgs),
    /// Print a systemd unit that runs a bundle (generate systemd --bundle B ID)
    Generate(crate::commands::generate::GenerateArgs),
    /// List containers
    #[command(visible_alias = "ps-all")]
    List {
        /// Output format: a table, or a JSON array of states
        #[arg(short, long, value_enum, default_value = "table")]
        format: ListFormat,
        /// Print only the ids
        #[arg(short, long)]
        quiet: bool,
    },
    /// Print a shell completion script for husk
    ///
    /// make install puts the three scripts where the shells look; for one user:
    ///
    /// bash: husk completion bash > ~/.local/share/bash-completion/completions/husk
    ///
    /// zsh: husk completion zsh > DIR/_husk (DIR one of $fpath)
    ///
    /// fish: husk completion fish > ~/.config/fish/completions/husk.fish
    Completion {
        /// The shell to write the script for
        #[arg(value_enum)]
        shell: CompletionShell,
    },
    /// Write the man pages: husk.8, and husk-COMMAND.8 for each command
    ///
    /// Read one with man -l DIR/husk-run.8 (make install puts them in
    /// PREFIX/share/man/man8).
    Man {
        /// Directory for the pages (made if missing)
        #[arg(value_name = "DIR")]
        dir: PathBuf,
    },
}

#[derive(Args, Debug)]
pub struct SpecArgs {
    /// Bundle directory (default: current directory)
    #[arg(short, long, value_name = "DIR")]
    pub bundle: Option<PathBuf>,
    /// A config that an unprivileged user can run as is
    #[arg(long)]
    pub rootless: bool,
}

#[derive(Args, Debug, Clone)]
pub struct CreateArgs {
    /// Bundle directory (default: current directory)
    #[arg(short, long, value_name = "DIR")]
    pub bundle: Option<PathBuf>,
    /// Write the container process's pid to this file
    #[arg(long, value_name = "FILE")]
    pub pid_file: Option<PathBuf>,
    /// Unix socket that receives the pty master of a terminal container
    #[arg(long, value_name = "PATH")]
    pub console_socket: Option<PathBuf>,
    /// Move the rootfs over / and chroot instead of pivot_root
    #[arg(long)]
    pub no_pivot: bool,
    /// Keep the caller's session keyring
    #[arg(long)]
    pub no_new_keyring: bool,
    /// Pass this many fds after stdio (3, 4, ...) to the container process
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub preserve_fds: u32,
    /// The new container's ID (unique under --root)
    pub id: String,
}

#[derive(Args, Debug)]
pub struct RunArgs {
    #[command(flatten)]
    pub create: CreateArgs,
    /// Return once the container runs instead of waiting for it
    #[arg(short, long)]
    pub detach: bool,
    /// Keep the container's state after it exits
    #[arg(long)]
    pub keep: bool,
    /// Do not become a subreaper while waiting
    #[arg(long)]
    pub no_subreaper: bool,
}

#[derive(Args, Debug)]
pub struct ExecArgs {
    /// A JSON `process` object (as in config.json) to run
    #[arg(short, long, value_name = "FILE")]
    pub process: Option<PathBuf>,
    /// Allocate a pseudo-terminal
    #[arg(short, long)]
    pub tty: bool,
    /// Unix socket that receives the pty master
    #[arg(long, value_name = "PATH")]
    pub console_socket: Option<PathBuf>,
    /// Return once the process runs instead of waiting for it
    #[arg(short, long)]
    pub detach: bool,
    /// Write the process's pid to this file
    #[arg(long, value_name = "FILE")]
    pub pid_file: Option<PathBuf>,
    /// Working directory in the container
    #[arg(long, value_name = "DIR")]
    pub cwd: Option<PathBuf>,
    /// Add or override an environment variable (KEY=VALUE)
    #[arg(short, long = "env", value_name = "KEY=VALUE")]
    pub env: Vec<String>,
    // The help is not a doc comment: rustdoc would read [:GID] as a link.
    #[arg(short, long, value_name = "UID[:GID]", help = "UID[:GID] to run as")]
    pub user: Option<String>,
    /// An additional group
    #[arg(short = 'g', long = "additional-gids", value_name = "GID")]
    pub additional_gids: Vec<u32>,
    /// Add a capability (bounding, effective, permitted)
    #[arg(short, long = "cap", value_name = "CAP")]
    pub cap: Vec<String>,
    /// Set no_new_privs
    #[arg(long)]
    pub no_new_privs: bool,
    /// AppArmor profile
    #[arg(long, value_name = "PROFILE")]
    pub apparmor: Option<String>,
    /// SELinux process label
    #[arg(long, value_name = "LABEL")]
    pub process_label: Option<String>,
    /// Pass this many fds after stdio (3, 4, ...) to the process
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub preserve_fds: u32,
    /// Exec even into a paused container
    #[arg(long)]
    pub ignore_paused: bool,
    // Not a doc comment: rustdoc would read [...] as a link.
    #[arg(
        long,
        value_name = "[CONTROLLER:]PATH",
        help = "Run in this sub-cgroup of the container's cgroup (v1: CONTROLLER[,CONTROLLER]:PATH, repeatable)"
    )]
    pub cgroup: Vec<String>,
    /// The container's ID
    pub id: String,
    /// The command and its arguments (unless --process)
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub command: Vec<String>,
}

#[derive(Args, Debug)]
pub struct UpdateArgs {
    /// linux.resources JSON from this file, or - for stdin
    #[arg(short, long, value_name = "FILE")]
    pub resources: Option<String>,
    /// Memory limit in bytes, or with a suffix k, m, g, t (64m, 1g; -1: no limit)
    #[arg(long, short = 'm', value_name = "SIZE", allow_hyphen_values = true)]
    pub memory: Option<String>,
    /// Memory plus swap limit (SIZE as --memory)
    #[arg(long, value_name = "SIZE", allow_hyphen_values = true)]
    pub memory_swap: Option<String>,
    /// Memory soft limit (SIZE as --memory)
    #[arg(long, value_name = "SIZE", allow_hyphen_values = true)]
    pub memory_reservation: Option<String>,
    /// Ignored (deprecated by the kernel)
    #[arg(long, value_name = "SIZE", hide = true, allow_hyphen_values = true)]
    pub kernel_memory: Option<String>,
    /// CPU CFS period in microseconds (alone: the quota stays)
    #[arg(long, value_name = "USEC", allow_negative_numbers = true)]
    pub cpu_period: Option<u64>,
    /// CPU time in microseconds the container may use per --cpu-period (-1: no limit)
    #[arg(long, value_name = "USEC", allow_negative_numbers = true)]
    pub cpu_quota: Option<i64>,
    /// CPU time in microseconds the container may save up and use above --cpu-quota (0: none)
    #[arg(long, value_name = "USEC", allow_negative_numbers = true)]
    pub cpu_burst: Option<u64>,
    /// 1: schedule the container's processes as SCHED_IDLE; 0: normally
    #[arg(long, value_name = "0|1", allow_negative_numbers = true)]
    pub cpu_idle: Option<i64>,
    /// CPU shares: weight relative to other cgroups (cgroup v2: mapped to cpu.weight)
    #[arg(long, value_name = "SHARES", alias = "cpu-shares")]
    pub cpu_share: Option<u64>,
    /// Realtime CPU period in microseconds (cgroup v1)
    #[arg(long, value_name = "USEC")]
    pub cpu_rt_period: Option<u64>,
    /// Realtime CPU time in microseconds per --cpu-rt-period (cgroup v1)
    #[arg(long, value_name = "USEC", allow_negative_numbers = true)]
    pub cpu_rt_runtime: Option<i64>,
    /// CPUs the container may use (0-3, 0,2)
    #[arg(long, value_name = "CPUS")]
    pub cpuset_cpus: Option<String>,
    /// Memory nodes the container may use (0-1)
    #[arg(long, value_name = "NODES")]
    pub cpuset_mems: Option<String>,
    /// Maximum number of processes (-1: no limit; 0 is taken as 1, as runc does)
    #[arg(long, value_name = "N", allow_negative_numbers = true)]
    pub pids_limit: Option<i64>,
    /// Block IO weight, 10 to 1000
    #[arg(long, value_name = "WEIGHT")]
    pub blkio_weight: Option<u16>,
    /// The container's ID
    pub id: String,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug, clap::ValueEnum)]
pub enum ListFormat {
    Table,
    Json,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug, clap::ValueEnum)]
pub enum CompletionShell {
    Bash,
    Zsh,
    Fish,
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A create as conmon runs it (podman's flags, all of create's own).
    pub(crate) const CONMON_CREATE: &[&str] = &[
        "--systemd-cgroup",
        "--log-format=json",
        "--log",
        "/l",
        "create",
        "--bundle",
        "/b",
        "--pid-file",
        "/p",
        "--no-pivot",
        "--no-new-keyring",
        "--preserve-fds",
        "2",
        "--console-socket",
        "/s",
        "ctr1",
    ];

    fn parse(args: &[&str]) -> Cli {
        Cli::try_parse_from(std::iter::once("husk").chain(args.iter().copied())).unwrap()
    }

    #[test]
    fn repeated_global_flag_keeps_the_last() {
        let cli = parse(&["--log", "a", "--log", "b", "state", "x"]);
        assert_eq!(cli.log, Some(PathBuf::from("b")));
    }

    #[test]
    fn conmon_create_line_parses() {
        let cli = parse(CONMON_CREATE);
        let Some(Command::Create(c)) = cli.command else {
            panic!("not create")
        };
        assert_eq!(c.id, "ctr1");
        assert_eq!(c.preserve_fds, 2);
        assert!(c.no_pivot && c.no_new_keyring);
        assert_eq!(cli.log_format, Format::Json);
    }

    #[test]
    fn global_switches_take_runcs_optional_values() {
        let cli = parse(&["--debug", "--systemd-cgroup", "list"]);
        assert!(cli.debug && cli.systemd_cgroup);
        assert!(matches!(cli.command, Some(Command::List { .. })));
        let cli = parse(&["--debug=true", "--systemd-cgroup=false", "state", "x"]);
        assert!(cli.debug && !cli.systemd_cgroup);
        let cli = parse(&["--debug=0", "--systemd-cgroup=T", "list"]);
        assert!(!cli.debug && cli.systemd_cgroup);
        let err = Cli::try_parse_from(["husk", "--debug=maybe", "list"])
            .unwrap_err()
            .to_string();
        assert!(err.contains("\"maybe\" is not true or false"), "{err}");
    }

    #[test]
    fn spec_rootless_is_not_the_global_flag() {
        let cli = parse(&["spec", "--rootless"]);
        let Some(Command::Spec(s)) = cli.command else { panic!() };
        assert!(s.rootless);
        assert_eq!(cli.rootless, "auto");
    }

    #[test]
    fn exec_takes_the_command_after_the_id() {
        let cli = parse(&["exec", "-e", "A=1", "--user", "5:6", "c", "sh", "-c", "echo -n hi"]);
        let Some(Command::Exec(e)) = cli.command else { panic!() };
        assert_eq!(e.id, "c");
        assert_eq!(e.command, ["sh", "-c", "echo -n hi"]);
        assert_eq!((e.env, e.user.as_deref()), (vec!["A=1".to_string()], Some("5:6")));
        let cli = parse(&["exec", "--cgroup", "..", "--cgroup=", "--cgroup", "cpu:x", "c", "true"]);
        let Some(Command::Exec(e)) = cli.command else { panic!() };
        assert_eq!(e.cgroup, ["..", "", "cpu:x"]);
    }

    #[test]
    fn update_takes_negative_numbers_as_unlimited() {
        let cli = parse(&[
            "update",
            "--memory",
            "-1",
            "--pids-limit",
            "-1",
            "--cpu-quota",
            "-1",
            "c",
        ]);
        let Some(Command::Update(u)) = cli.command else {
            panic!()
        };
        assert_eq!(
            (u.memory.as_deref(), u.pids_limit, u.cpu_quota),
            (Some("-1"), Some(-1), Some(-1))
        );
    }

    /// Every option and positional argument of every command shows a help line
    /// (in --help, the man pages and the completions).
    #[test]
    fn every_argument_has_a_help_line() {
        fn undocumented(command: &clap::Command, path: &str, found: &mut Vec<String>) {
            if command.get_about().is_none() {
                found.push(format!("{path} (the command)"));
            }
            for arg in command.get_arguments() {
                if arg.get_help().is_none() && arg.get_long_help().is_none() {
                    found.push(format!("{path} {}", arg.get_id()));
                }
            }
            for sub in command.get_subcommands() {
                undocumented(sub, &format!("{path} {}", sub.get_name()), found);
            }
        }
        let mut husk = <Cli as clap::CommandFactory>::command();
        husk.build();
        let mut found = Vec::new();
        undocumented(&husk, "husk", &mut found);
        assert!(found.is_empty(), "no help line: {found:?}");
        // The walk does reach positional arguments (and would see one without help).
        let start = husk.find_subcommand("start").unwrap();
        assert!(start
            .get_positionals()
            .any(|a| a.get_id() == "id" && a.get_help().is_some()));
    }

    /// With `defer`, a command's arguments are added after its about line: a
    /// doc comment on an `Args` struct would then replace the about that
    /// `husk --help` lists (and `husk COMMAND --help`, the man page and the
    /// completions would show the struct's comment instead).
    #[test]
    fn a_command_keeps_its_about_line_once_built() {
        let listed = <Cli as clap::CommandFactory>::command();
        let mut built = listed.clone();
        built.build();
        for command in listed.get_subcommands() {
            let name = command.get_name();
            let about = |c: &clap::Command| c.get_about().map(|a| a.to_string());
            assert_eq!(
                about(built.find_subcommand(name).unwrap()),
                about(command),
                "husk {name}"
            );
        }
    }

    #[test]
    fn kill_takes_a_positional_signal() {
        let cli = parse(&["kill", "--all", "c", "KILL"]);
        let Some(Command::Kill { all, id, signal }) = cli.command else {
            panic!()
        };
        assert!(all);
        assert_eq!((id.as_str(), signal.as_deref()), ("c", Some("KILL")));
    }
}
