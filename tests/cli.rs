//! Commands that run no container: --version, help, spec, completion, man,
//! `make install`, and the default state root.

mod common;

use common::*;
use std::process::Command;

#[test]
fn version_has_three_runc_style_lines() {
    let o = run_with_timeout(Command::new(HUSK).arg("--version"), COMMAND_TIMEOUT);
    assert_ok(&o);
    let out = stdout(&o);
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines[0].starts_with("husk version "), "{out}");
    assert!(lines[1].starts_with("commit: "), "{out}");
    assert!(lines[2].starts_with("spec: 1.3."), "{out}");
}

/// A reader that goes away (`husk list | head -1`) ends husk by SIGPIPE, as
/// it ends runc and crun, never with a panic.
#[test]
fn a_closed_stdout_ends_husk_by_sigpipe() {
    use std::os::unix::process::ExitStatusExt;
    // Never made: list prints its header alone.
    let root = std::env::temp_dir().join(format!("husk-sigpipe-{}", std::process::id()));
    let root = root.to_str().unwrap();
    for args in [vec!["--version"], vec!["features"], vec!["--root", root, "list"]] {
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        let mut child = Command::new(HUSK)
            .args(&args)
            .stdout(writer)
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let status = wait_within(&mut child, COMMAND_TIMEOUT, &format!("{args:?}"));
        let mut err = String::new();
        std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
        assert_eq!(status.signal(), Some(libc::SIGPIPE), "{args:?}: {status:?} {err}");
        assert!(!err.contains("panicked"), "{args:?}: {err}");
    }
}

#[test]
fn no_command_prints_usage() {
    let o = run_with_timeout(&mut Command::new(HUSK), COMMAND_TIMEOUT);
    assert_ok(&o);
    assert!(stdout(&o).contains("Usage: husk [OPTIONS] [COMMAND]"), "{}", stdout(&o));
}

#[test]
fn a_global_flag_after_the_command_gets_a_hint() {
    let o = run_with_timeout(
        Command::new(HUSK).args(["list", "--root", "/nonexistent"]),
        COMMAND_TIMEOUT,
    );
    assert_eq!(o.status.code(), Some(2));
    assert_eq!(
        stderr(&o).trim(),
        "husk: error: unexpected argument '--root' found (--root is a global flag: put it before the command, as in husk --root ... COMMAND)"
    );
    let o = run_with_timeout(Command::new(HUSK).args(["list", "--bogus"]), COMMAND_TIMEOUT);
    assert_eq!(stderr(&o).trim(), "husk: error: unexpected argument '--bogus' found");
    // Before the command, with a bad value: no hint to move it.
    let o = run_with_timeout(Command::new(HUSK).args(["--debug=maybe", "list"]), COMMAND_TIMEOUT);
    assert_eq!(o.status.code(), Some(2));
    assert!(!stderr(&o).contains("global flag"), "{}", stderr(&o));
    assert!(stderr(&o).contains("\"maybe\" is not true or false"), "{}", stderr(&o));
}

#[test]
fn spec_writes_a_runnable_config_once() {
    let dir = std::env::temp_dir().join(format!("husk-spec-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let o = run_with_timeout(Command::new(HUSK).args(["spec", "--bundle"]).arg(&dir), COMMAND_TIMEOUT);
    assert_ok(&o);
    let config: serde_json::Value = serde_json::from_slice(&std::fs::read(dir.join("config.json")).unwrap()).unwrap();
    assert_eq!(config["ociVersion"], "1.3.0");
    assert_eq!(config["root"]["path"], "rootfs");
    assert_eq!(config["process"]["args"][0], "sh");
    let types: Vec<&str> = config["linux"]["namespaces"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["type"].as_str().unwrap())
        .collect();
    for ns in ["pid", "network", "ipc", "uts", "mount"] {
        assert!(types.contains(&ns), "{ns} missing");
    }
    // As runc's: a cgroup namespace on a pure cgroup v2 host only.
    let unified = Command::new("stat")
        .args(["-f", "-c", "%T", "/sys/fs/cgroup"])
        .output()
        .unwrap();
    let unified = String::from_utf8_lossy(&unified.stdout).trim() == "cgroup2fs";
    assert_eq!(types.contains(&"cgroup"), unified, "{types:?}");
    assert!(config["linux"]["maskedPaths"].as_array().unwrap().len() > 5);

    let written = std::fs::read(dir.join("config.json")).unwrap();
    let again = run_with_timeout(Command::new(HUSK).args(["spec", "--bundle"]).arg(&dir), COMMAND_TIMEOUT);
    assert_eq!(again.status.code(), Some(1));
    assert_eq!(
        stderr(&again),
        format!(
            "husk: error: {}/config.json already exists (remove it first)\n",
            dir.display()
        )
    );
    assert_eq!(
        std::fs::read(dir.join("config.json")).unwrap(),
        written,
        "left as it was"
    );

    let rootless = dir.join("rootless");
    std::fs::create_dir_all(&rootless).unwrap();
    let o = run_with_timeout(
        Command::new(HUSK).args(["spec", "--rootless", "-b"]).arg(&rootless),
        COMMAND_TIMEOUT,
    );
    assert_ok(&o);
    let config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(rootless.join("config.json")).unwrap()).unwrap();
    assert_eq!(config["linux"]["uidMappings"][0]["hostID"], 0);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A config.json that is a symlink, even a dangling one, is never written
/// through: `husk spec` in a hostile directory cannot create or clobber a file
/// elsewhere.
#[test]
fn spec_does_not_write_through_a_symlink() {
    let dir = std::env::temp_dir().join(format!("husk-spec-link-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let target = dir.join("elsewhere");
    std::os::unix::fs::symlink(&target, dir.join("config.json")).unwrap();
    let o = run_with_timeout(Command::new(HUSK).args(["spec", "--bundle"]).arg(&dir), COMMAND_TIMEOUT);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("config.json already exists"), "{}", stderr(&o));
    assert!(!target.exists(), "spec wrote through the symlink");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The commands `husk --help` lists (without clap's `help`).
fn commands_in_help() -> Vec<String> {
    let o = run_with_timeout(Command::new(HUSK).arg("--help"), COMMAND_TIMEOUT);
    assert_ok(&o);
    let help = stdout(&o);
    let listing = help.split("Commands:").nth(1).expect("a Commands: section");
    let listing = listing.split("\n\n").next().unwrap();
    let names: Vec<String> = listing
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|n| *n != "help")
        .map(String::from)
        .collect();
    assert!(names.iter().any(|n| n == "create") && names.len() > 15, "{names:?}");
    names
}

#[test]
fn completion_scripts_for_bash_zsh_and_fish() {
    for (shell, marker) in [
        ("bash", "complete -F _husk"),
        ("zsh", "#compdef husk"),
        ("fish", "complete -c husk"),
    ] {
        let o = run_with_timeout(Command::new(HUSK).args(["completion", shell]), COMMAND_TIMEOUT);
        assert_ok(&o);
        let script = stdout(&o);
        assert!(script.contains(marker), "{shell}: no {marker:?}");
        for command in commands_in_help() {
            assert!(script.contains(&command), "{shell}: {command} not completed");
        }
        assert!(
            script.contains("console-socket") && script.contains("pids-limit"),
            "{shell}"
        );
        // The shell parses it, where that shell is installed (zsh and fish may not be).
        let check = match shell {
            "fish" => "--no-execute",
            _ => "-n",
        };
        let file = std::env::temp_dir().join(format!("husk-completion-{}.{shell}", std::process::id()));
        std::fs::write(&file, &script).unwrap();
        if let Ok(o) = Command::new(shell).arg(check).arg(&file).output() {
            assert!(o.status.success(), "{shell} {check}: {}", stderr(&o));
        }
        std::fs::remove_file(&file).unwrap();
    }
    // bash itself completes a command and an option from the script.
    let bash = |words: &str| {
        let o = run_with_timeout(
            Command::new("bash").arg("-c").arg(format!(
                "source <({HUSK} completion bash) && COMP_WORDS=({words}) && \
                 COMP_CWORD=$((${{#COMP_WORDS[@]}} - 1)) && \
                 _husk husk \"${{COMP_WORDS[COMP_CWORD]}}\" \"${{COMP_WORDS[COMP_CWORD-1]}}\" && \
                 echo \"${{COMPREPLY[@]}}\""
            )),
            COMMAND_TIMEOUT,
        );
        assert_ok(&o);
        stdout(&o).trim().to_string()
    };
    assert_eq!(bash("husk chec"), "checkpoint");
    assert_eq!(bash("husk exec --preserve"), "--preserve-fds");
    let o = run_with_timeout(Command::new(HUSK).args(["completion", "tcsh"]), COMMAND_TIMEOUT);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).starts_with("husk: error: invalid value 'tcsh'"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn man_pages_for_husk_and_each_command() {
    let dir = std::env::temp_dir().join(format!("husk-man-{}", std::process::id()));
    // DIR may be one others write: a link planted at a page's name is
    // replaced, not written through (husk 5f164bf overwrote its target).
    std::fs::create_dir_all(dir.join("man8")).unwrap();
    let victim = dir.join("victim");
    std::fs::write(&victim, "keep").unwrap();
    std::os::unix::fs::symlink(&victim, dir.join("man8/husk-run.8")).unwrap();
    let o = run_with_timeout(Command::new(HUSK).arg("man").arg(dir.join("man8")), COMMAND_TIMEOUT);
    assert_ok(&o);
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "keep");
    assert!(std::fs::symlink_metadata(dir.join("man8/husk-run.8"))
        .unwrap()
        .is_file());
    let mut pages: Vec<String> = std::fs::read_dir(dir.join("man8"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    pages.sort();
    let mut expected: Vec<String> = commands_in_help().iter().map(|c| format!("husk-{c}.8")).collect();
    expected.push("husk.8".into());
    expected.sort();
    assert_eq!(pages, expected);
    let husk = std::fs::read_to_string(dir.join("man8/husk.8")).unwrap();
    assert!(husk.contains("\n.TH HUSK 8 "), "{husk}");
    assert!(
        husk.contains("husk\\-create(8)") && husk.contains("systemd\\-cgroup"),
        "{husk}"
    );
    let create = std::fs::read_to_string(dir.join("man8/husk-create.8")).unwrap();
    assert!(create.contains("\n.TH HUSK-CREATE 8 "), "{create}");
    assert!(
        create.contains("console\\-socket") && create.contains("SEE ALSO"),
        "{create}"
    );
    // man(1) renders it (where man is installed).
    if let Ok(o) = Command::new("man").arg("-l").arg(dir.join("man8/husk-run.8")).output() {
        assert_ok(&o);
        assert!(stdout(&o).contains("Create and start a container"), "{}", stdout(&o));
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

/// `make install` installs the binary it is given, and the pages and scripts
/// that binary writes, under DESTDIR; it never runs cargo (CARGO=false).
#[test]
fn make_install_into_destdir() {
    let repo = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");
    let dest = std::env::temp_dir().join(format!("husk-destdir-{}", std::process::id()));
    let make = |husk: &str| {
        run_with_timeout(
            Command::new("make")
                .args(["-s", "-C", repo, "install", "CARGO=false", "PREFIX=/opt/husk"])
                .arg(format!("HUSK={husk}"))
                .arg(format!("DESTDIR={}", dest.display())),
            COMMAND_TIMEOUT,
        )
    };
    let o = make("/nonexistent/husk");
    assert!(!o.status.success());
    assert!(stderr(&o).contains("run make build first"), "{}", stderr(&o));
    assert!(!dest.exists(), "nothing installed without a binary");

    assert_ok(&make(HUSK));
    let prefix = dest.join("opt/husk");
    let mut installed = Vec::new();
    let mut dirs = vec![prefix.clone()];
    while let Some(d) = dirs.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                dirs.push(p);
            } else {
                installed.push(p.strip_prefix(&prefix).unwrap().display().to_string());
            }
        }
    }
    installed.sort();
    for file in [
        "bin/husk",
        "share/bash-completion/completions/husk",
        "share/fish/vendor_completions.d/husk.fish",
        "share/man/man8/husk-create.8",
        "share/man/man8/husk-update.8",
        "share/man/man8/husk.8",
        "share/zsh/site-functions/_husk",
    ] {
        assert!(installed.iter().any(|f| f == file), "{file} not in {installed:?}");
    }
    let pages = installed.iter().filter(|f| f.starts_with("share/man/man8/")).count();
    assert_eq!(pages, commands_in_help().len() + 1, "{installed:?}");
    assert_eq!(installed.len(), pages + 4, "{installed:?}");
    assert_eq!(
        std::fs::read(prefix.join("bin/husk")).unwrap(),
        std::fs::read(HUSK).unwrap()
    );
    std::fs::remove_dir_all(&dest).unwrap();
}

#[test]
fn list_of_an_empty_root_is_empty() {
    let dir = std::env::temp_dir().join(format!("husk-emptyroot-{}", std::process::id()));
    let o = run_with_timeout(
        Command::new(HUSK).arg("--root").arg(&dir).args(["list", "-f", "json"]),
        COMMAND_TIMEOUT,
    );
    assert_ok(&o);
    assert_eq!(stdout(&o).trim(), "[]");
    assert!(!dir.exists(), "listing creates nothing");
}

/// `husk ARGS` must fail with a one-line error containing `expect`, not abort
/// (status 1, 2 for a usage error, 255 for exec's own failure).
#[track_caller]
fn refused(b: &Bundle, args: &[&str], expect: &str) {
    let o = b.husk(args);
    let code = if args.first() == Some(&"exec") { 255 } else { 1 };
    assert!(
        matches!(o.status.code(), Some(c) if c == code || c == 2),
        "{args:?}: {} {}",
        o.status,
        stderr(&o)
    );
    let err = stderr(&o);
    assert_eq!(err.lines().count(), 1, "{args:?}: one line: {err}");
    assert!(err.contains(expect), "{args:?}: expected {expect:?} in: {err}");
}

#[test]
fn huge_and_negative_numbers_on_the_command_line() {
    let mut b = Bundle::new("numbers");
    b.script("sleep 30");
    let bundle = b.dir.to_str().unwrap().to_string();
    assert_ok(&b.husk(&["run", "-d", "--bundle", &bundle, "c"]));
    refused(
        &b,
        &["events", "--interval", "99999999999999999999999s", "c"],
        "--interval 99999999999999999999999s: too long",
    );
    for n in ["4294967295", "4294967293", "100000000"] {
        refused(
            &b,
            &["create", "--preserve-fds", n, "--bundle", &bundle, "p"],
            &format!("--preserve-fds {n}: more fds than the limit"),
        );
        assert!(!b.root.join("p").exists(), "state of p left behind");
        refused(
            &b,
            &["exec", "--preserve-fds", n, "c", "true"],
            &format!("--preserve-fds {n}"),
        );
    }
    refused(
        &b,
        &["create", "--preserve-fds=-1", "--bundle", &bundle, "p"],
        "--preserve-fds",
    );
    for sig in ["RTMIN+2147483647", "RTMAX--2147483648", "99999999999999999999", "-5"] {
        refused(&b, &["kill", "c", sig], "");
    }
    refused(
        &b,
        &["update", "--memory", "9999999999t", "c"],
        "--memory 9999999999t: too large",
    );
    refused(&b, &["update", "--memory", "-5m", "c"], "--memory -5m: not a size");
    refused(
        &b,
        &["update", "--pids-limit", "99999999999999999999", "c"],
        "--pids-limit",
    );
    refused(&b, &["update", "--cpu-period", "18446744073709551615", "c"], "cpu");
    refused(&b, &["update", "--blkio-weight", "70000", "c"], "--blkio-weight");
    refused(&b, &["exec", "--user", "4294967296", "c", "true"], "--user 4294967296");
    refused(&b, &["exec", "-g", "99999999999", "c", "true"], "--additional-gids");
    // -1 is runc's "unlimited", and must reach update as a value, not a flag.
    assert_ok(&b.husk(&[
        "update",
        "--memory",
        "-1",
        "--pids-limit",
        "-1",
        "--cpu-quota",
        "-1",
        "c",
    ]));
    assert_eq!(b.status("c"), "running");
    assert_ok(&b.husk(&["delete", "-f", "c"]));
    b.assert_gone("c");
    b.assert_gone("p");
}

/// husk started with stdout closed where /dev/null cannot be opened (a
/// private /dev without it) must not run on: the first file it opened would
/// take fd 1 and get what husk prints (here the --log file got `list`'s
/// table). It aborts, as Rust's own start did before husk had no Rust `main`
/// (and as Go's runtime does).
#[test]
fn closed_stdout_without_dev_null_aborts_husk() {
    require_root();
    use std::os::unix::process::ExitStatusExt;
    let dir = std::env::temp_dir().join(format!("husk-nonull-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let log = dir.join("log");
    // A private mount namespace whose /dev is an empty tmpfs; `>&-` closes fd 1.
    let script = "mount -t tmpfs none /dev && exec \"$0\" --root \"$1\" --log \"$2\" list >&-";
    let mut cmd = Command::new("unshare");
    cmd.args(["-m", "--propagation", "private", "sh", "-c", script, HUSK])
        .arg(dir.join("root"))
        .arg(&log);
    let o = run_with_timeout(&mut cmd, COMMAND_TIMEOUT);
    let logged = std::fs::read_to_string(&log).unwrap_or_default();
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        !logged.contains("STATUS"),
        "list's output went into the --log file: {logged:?}"
    );
    assert_eq!(o.status.signal(), Some(libc::SIGABRT), "{o:?}");
}

/// The ELF section headers of `binary`: (name, type) of each.
fn elf_sections(binary: &[u8]) -> Vec<(String, u32)> {
    let u16_at = |at: usize| u16::from_le_bytes(binary[at..at + 2].try_into().unwrap()) as usize;
    let u32_at = |at: usize| u32::from_le_bytes(binary[at..at + 4].try_into().unwrap());
    let u64_at = |at: usize| u64::from_le_bytes(binary[at..at + 8].try_into().unwrap()) as usize;
    assert_eq!(&binary[..5], b"\x7fELF\x02", "not a 64-bit ELF file");
    let (shoff, shentsize, shnum, shstrndx) = (u64_at(0x28), u16_at(0x3a), u16_at(0x3c), u16_at(0x3e));
    let header = |i: usize| shoff + i * shentsize;
    let names = u64_at(header(shstrndx) + 0x18);
    (0..shnum)
        .map(|i| {
            let name = names + u32_at(header(i)) as usize;
            let end = binary[name..].iter().position(|b| *b == 0).unwrap();
            (
                String::from_utf8_lossy(&binary[name..name + end]).into_owned(),
                u32_at(header(i) + 4),
            )
        })
        .collect()
}

/// Where lld links husk and its libc applies RELR (glibc 2.36, Rust's own
/// musl from Rust 1.93), crates/husk/build.rs packs the relative relocations:
/// each start reads 3 KiB of them, not 242 KiB. Where the libc does not,
/// they must not be, or husk would crash at start (every other test would
/// show that; an older glibc host is checked here).
#[test]
fn relocations_are_packed_only_where_the_libc_applies_them() {
    const SHT_RELR: u32 = 19;
    let binary = std::fs::read(HUSK).unwrap();
    let sections = elf_sections(&binary);
    let packed = sections.iter().any(|(_, kind)| *kind == SHT_RELR);
    let promised = env!("HUSK_BUILD_RELR") == "1";
    assert_eq!(packed, promised, "build.rs said RELR {promised}: {sections:?}");
    if cfg!(target_env = "gnu") {
        let getconf = Command::new("getconf").arg("GNU_LIBC_VERSION").output().unwrap();
        let version = String::from_utf8_lossy(&getconf.stdout).trim().to_string();
        let minor: u32 = version
            .strip_prefix("glibc 2.")
            .and_then(|m| m.parse().ok())
            .unwrap_or(0);
        assert!(
            minor >= 36 || !packed,
            "{version}: RELR relocations that this glibc does not apply"
        );
    }
}

/// runc's global --criu names the criu program (go-runc passes it when a
/// manager is configured with one); husk 0.1.0 (4491cad) refused the flag.
#[test]
fn the_global_criu_flag_names_the_program() {
    let mut b = Bundle::new("cli-criu");
    b.script("sleep 30");
    assert_ok(&b.husk(&["run", "-d", "--bundle", b.dir.to_str().unwrap(), "c"]));
    let image = b.dir.join("image");
    let o = b.husk(&[
        "--criu",
        "/nonexistent/criu",
        "checkpoint",
        "--image-path",
        image.to_str().unwrap(),
        "c",
    ]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("run --criu /nonexistent/criu: No such file"),
        "{}",
        stderr(&o)
    );
    assert_eq!(b.status("c"), "running", "a failed checkpoint leaves it running");
    assert_ok(&b.husk(&["delete", "-f", "c"]));
    b.assert_gone("c");
}

/// `run` in the foreground is a subreaper of what the container's process
/// leaves behind, unless --no-subreaper (runc's flag; husk 0.1.0 had it only
/// for restore).
#[test]
fn run_without_subreaper_leaves_orphans_to_the_caller() {
    let mut b = Bundle::new("cli-subreaper");
    b.without_namespace("pid");
    b.script(
        "(sleep 100 & echo $! > /dev/shm/o); sleep 0.3; o=$(cat /dev/shm/o); \
         p=$(awk '/^PPid/{print $2}' /proc/$o/status); kill $o; \
         [ \"$p\" = \"$PPID\" ] && echo reaped-by-husk || echo reaped-elsewhere",
    );
    let dir = b.dir.to_str().unwrap().to_string();
    let o = b.husk(&["run", "--bundle", &dir, "s1"]);
    assert_ok(&o);
    assert_eq!(stdout(&o).trim(), "reaped-by-husk");
    let o = b.husk(&["run", "--no-subreaper", "--bundle", &dir, "s2"]);
    assert_ok(&o);
    assert_eq!(stdout(&o).trim(), "reaped-elsewhere");
}

/// link-order.txt names the functions by their mangled names, whose hashes
/// follow the rustc and the dependency graph: after a dependency changed
/// (the regex facade, e38bf4a, left 38% of them), lld skips the rest and the
/// commands run from twice the memory (`create` 3.2 MiB instead of 1.4).
/// The list's first line says for which rustc and Cargo.lock it was made:
/// builds by another rustc are not checked (the list is remade for the
/// rustc husk ships with), a changed Cargo.lock fails here. The list is
/// made for the musl build.
#[test]
fn the_link_order_is_made_for_this_cargo_lock() {
    let order = include_str!("../crates/husk/link-order.txt");
    let Some((rustc, lock)) = order
        .lines()
        .next()
        .and_then(|l| l.strip_prefix("# made for "))
        .and_then(|l| l.rsplit_once(", Cargo.lock "))
    else {
        panic!("crates/husk/link-order.txt: no '# made for RUSTC, Cargo.lock HASH' line: run make link-order");
    };
    let built_by = rustc_of(&std::fs::read(HUSK).unwrap());
    if !cfg!(target_env = "musl") || built_by.as_deref() != Some(rustc) {
        eprintln!("skipped: the link order is made for the musl build of {rustc}, not {built_by:?}");
        return;
    }
    let now = format!("{:016x}", fnv1a(include_bytes!("../Cargo.lock")));
    assert_eq!(
        lock, now,
        "Cargo.lock changed since crates/husk/link-order.txt was made: run make link-order"
    );
}

/// "rustc version 1.95.0 (59807616e 2026-04-14)": rustc's line in the
/// binary's .comment, which stripping keeps.
fn rustc_of(binary: &[u8]) -> Option<String> {
    let start = binary.windows(14).position(|w| w == b"rustc version ")?;
    let len = binary[start..].iter().position(|b| *b == 0)?;
    Some(String::from_utf8_lossy(&binary[start..start + len]).into_owned())
}

/// FNV-1a, 64 bits, of the bytes but carriage returns (a checkout with
/// core.autocrlf; scripts/link-order/lock_hash.py does the same).
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes
        .iter()
        .filter(|b| **b != b'\r')
        .fold(0xcbf2_9ce4_8422_2325, |h, b| {
            (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3)
        })
}
