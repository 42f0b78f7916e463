//! Runs a container from an OCI bundle through libhusk, as `husk run` would:
//! create, start, wait for its exit status, delete.
//!
//! ```text
//! run [--root DIR] BUNDLE [ID]
//! ```
//!
//! The state lives under `--root` (by default a fresh directory under $TMPDIR,
//! removed at the end); the id defaults to `example-PID`. The container's
//! process shares this program's stdio. The exit status is the container's
//! (128 + N when signal N killed it), 1 when libhusk failed, 2 for bad usage.
//! Run as root, or as a user with a rootless bundle (`husk spec --rootless`).

use std::path::PathBuf;
use std::process::exit;
use std::time::Duration;

use libhusk::container::{self, CreateOptions, Mode};
use libhusk::state::Store;

/// How long the container may run before it is killed and deleted.
const TIMEOUT: Duration = Duration::from_secs(60);

struct Args {
    root: Option<PathBuf>,
    bundle: PathBuf,
    id: String,
}

fn main() {
    // First of all, while nothing has been done yet: create and run re-execute
    // this program once from a read-only copy of its binary (CVE-2019-5736),
    // so that no container can write the binary its init is a clone of. Doing
    // it here makes that re-exec happen before anything else. The program must
    // also stay single-threaded: the container's init is a clone of it.
    if let Err(e) = libhusk::process::seal::ensure_sealed() {
        eprintln!("run: {e}");
        exit(1);
    }
    let Some(args) = parse(std::env::args().skip(1)) else {
        eprintln!("usage: run [--root DIR] BUNDLE [ID]");
        exit(2);
    };
    match run(&args) {
        Ok(code) => exit(code),
        Err(e) => {
            eprintln!("run: {e}");
            exit(1);
        }
    }
}

fn parse(mut argv: impl Iterator<Item = String>) -> Option<Args> {
    let mut root = None;
    let mut rest = Vec::new();
    while let Some(arg) = argv.next() {
        match arg.as_str() {
            "--root" => root = Some(PathBuf::from(argv.next()?)),
            _ => rest.push(arg),
        }
    }
    let mut rest = rest.into_iter();
    let bundle = PathBuf::from(rest.next()?);
    let id = rest.next().unwrap_or_else(|| format!("example-{}", std::process::id()));
    if rest.next().is_some() {
        return None;
    }
    Some(Args { root, bundle, id })
}

fn run(args: &Args) -> libhusk::Result<i32> {
    let root = args
        .root
        .clone()
        .unwrap_or_else(|| std::env::temp_dir().join(format!("husk-example-{}", std::process::id())));
    let store = Store::new(root.clone());
    let mode = Mode {
        rootless: !nix::unistd::geteuid().is_root(),
        systemd_cgroup: false,
    };
    let options = CreateOptions {
        id: args.id.clone(),
        bundle: Some(args.bundle.clone()),
        ..CreateOptions::default()
    };
    // The init is built and waits for `start`; it is this program's child.
    let pid = container::create(&store, &options, mode)?;
    let exited = container::start(&store, &args.id).and_then(|()| container::wait(pid, TIMEOUT));
    // Stopped, or (start failed, timed out) still there: force removes it either way.
    let deleted = container::delete(&store, &args.id, true);
    if args.root.is_none() {
        let _ = std::fs::remove_dir_all(&root);
    }
    let code = exited?;
    deleted?;
    println!("container {} exited with status {code}", args.id);
    Ok(code)
}
