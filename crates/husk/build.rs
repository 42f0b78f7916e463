//! Links the code a container's commands run next to each other.
//!
//! A process maps the binary's text in 64 KiB windows around each page it
//! executes (the kernel's fault-around), so code scattered over the 3.8 MiB
//! text made each command resident in most of it. `link-order.txt` lists the
//! functions the commands run (`make link-order`, scripts/link-order/, records them), and lld
//! places them first, in that order. Names it does not find (code changed
//! since the list was made, or another target: the names carry hashes that
//! differ by target, and the list is made for the shipped musl build) are
//! skipped: the binary is the same, only larger in memory (the hashes follow
//! the rustc and the dependency graph: a changed dependency left 38% of them,
//! and `create` twice the memory; the list's first line says for which rustc
//! and Cargo.lock it was made, and tests/cli.rs checks that). The list is used
//! only where lld links: rustc's default for x86_64 glibc from Rust 1.90; for
//! x86_64 musl (`make build`) this script has the C compiler driver run the
//! toolchain's own lld; not where another linker was asked for.
//!
//! With lld and a libc that applies them in a static PIE (glibc 2.36, musl
//! 1.2.4), the relative relocations are packed (RELR): 3 KiB instead of 242
//! KiB of `.rela.dyn` that every start of husk reads through. The start of
//! `husk --version` takes 0.44 instead of 0.55 ms of CPU. An older libc
//! would not apply them and husk would crash at its first pointer, so the
//! glibc of the build host (which is the one linked into a static husk) is
//! asked first; Rust's own musl is 1.2.5 from Rust 1.93.

use std::env;
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=link-order.txt");
    println!("cargo:rerun-if-env-changed=HUSK_LINK_MAP");
    if let Some(map) = env::var_os("HUSK_LINK_MAP") {
        // scripts/link-order/ maps executed addresses back to functions with it.
        println!("cargo:rustc-link-arg-bins=-Wl,-Map={}", map.to_string_lossy());
    }
    let order = format!("{}/link-order.txt", env::var("CARGO_MANIFEST_DIR").unwrap_or_default());
    let relr = match linker() {
        Linker::RustLld => {
            env::var("HOST").ok() == env::var("TARGET").ok() && glibc_applies_relr(&host_glibc_version())
        }
        Linker::RustLldForMusl(gcc_ld) => {
            println!("cargo:rustc-link-arg-bins=-B{gcc_ld}");
            println!("cargo:rustc-link-arg-bins=-fuse-ld=lld");
            musl_applies_relr()
        }
        Linker::Other => {
            println!("cargo:rustc-env=HUSK_BUILD_RELR=0");
            return;
        }
    };
    // -Wl, splits its argument at commas.
    if !order.contains(',') {
        println!("cargo:rustc-link-arg-bins=-Wl,--symbol-ordering-file={order}");
        println!("cargo:rustc-link-arg-bins=-Wl,--no-warn-symbol-ordering");
    }
    if relr {
        println!("cargo:rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");
    }
    // For tests/cli.rs, which checks the binary against it.
    println!("cargo:rustc-env=HUSK_BUILD_RELR={}", u8::from(relr));
}

/// Who links husk: rust-lld, by rustc's default (x86_64 glibc from Rust
/// 1.90) or asked for by this script (x86_64 musl: the C compiler driver
/// runs the toolchain's own `ld.lld`, found in its gcc-ld directory, through
/// `-fuse-ld=lld`), or another linker, which knows no symbol ordering (bfd,
/// gold) or was chosen by the one who builds.
enum Linker {
    RustLld,
    RustLldForMusl(String),
    Other,
}

fn linker() -> Linker {
    let target = env::var("TARGET").unwrap_or_default();
    if chosen_linker() {
        return Linker::Other;
    }
    match target.as_str() {
        "x86_64-unknown-linux-gnu" if rustc_minor() >= Some(90) => Linker::RustLld,
        "x86_64-unknown-linux-musl" => match toolchains_gcc_ld() {
            Some(dir) => Linker::RustLldForMusl(dir),
            None => Linker::Other,
        },
        _ => Linker::Other,
    }
}

/// Whether whoever builds chose the linker: one from .cargo/config.toml or
/// CARGO_TARGET_<triple>_LINKER is in RUSTC_LINKER; -Clinker,
/// -Clinker-features=-lld or -Clink-self-contained=-linker say "linker";
/// -Clink-arg(s)=-fuse-ld=bfd|gold|mold picks another ld through the C
/// compiler.
fn chosen_linker() -> bool {
    let flags = env::var("CARGO_ENCODED_RUSTFLAGS").unwrap_or_default();
    let own_linker = env::var_os("RUSTC_LINKER").is_some()
        || env::vars().any(|(k, _)| k.starts_with("CARGO_TARGET_") && k.ends_with("_LINKER"));
    let other_ld = flags.contains("linker") || flags.contains("fuse-ld") || flags.contains("ld-path");
    own_linker || other_ld
}

/// The toolchain's `gcc-ld` directory (its `ld.lld` runs rust-lld), if it
/// has one: `rustc --print sysroot`, then lib/rustlib/HOST/bin/gcc-ld.
fn toolchains_gcc_ld() -> Option<String> {
    let rustc = env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let out = Command::new(rustc).args(["--print", "sysroot"]).output().ok()?;
    let sysroot = String::from_utf8(out.stdout).ok()?;
    let dir = format!("{}/lib/rustlib/{}/bin/gcc-ld", sysroot.trim(), env::var("HOST").ok()?);
    let usable = std::path::Path::new(&dir).join("ld.lld").exists() && !dir.contains(',');
    usable.then_some(dir)
}

/// Whether the musl that rustc links (its own, self-contained) applies RELR
/// relocations in a static PIE: musl 1.2.4 and later do; Rust bundles 1.2.5
/// from 1.93 (1.2.3 before, which would crash at husk's first pointer).
fn musl_applies_relr() -> bool {
    rustc_minor() >= Some(93)
}

/// What `getconf GNU_LIBC_VERSION` says (`glibc 2.36`), or nothing.
fn host_glibc_version() -> String {
    let out = Command::new("getconf").arg("GNU_LIBC_VERSION").output();
    out.ok()
        .filter(|o| o.status.success())
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .unwrap_or_default()
}

/// Whether a glibc of this `getconf GNU_LIBC_VERSION` applies RELR relocations (2.36+).
fn glibc_applies_relr(getconf: &str) -> bool {
    let Some(version) = getconf.trim().strip_prefix("glibc ") else {
        return false;
    };
    let mut parts = version.split('.').map(|p| p.parse::<u32>());
    match (parts.next(), parts.next()) {
        (Some(Ok(major)), Some(Ok(minor))) => (major, minor) >= (2, 36),
        _ => false,
    }
}

/// The minor version of the rustc that builds husk (`rustc 1.95.0 (...)`).
fn rustc_minor() -> Option<u32> {
    let rustc = env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let out = Command::new(rustc).arg("--version").output().ok()?;
    let text = String::from_utf8(out.stdout).ok()?;
    text.split_whitespace().nth(1)?.split('.').nth(1)?.parse().ok()
}
