//! Links the code a container's commands run next to each other.
//!
//! A process maps the binary's text in 64 KiB windows around each page it
//! executes (the kernel's fault-around), so code scattered over the 3.8 MiB
//! text made each command resident in most of it. `link-order.txt` lists the
//! functions the commands run (`make link-order`, scripts/link-order/, records them), and lld
//! places them first, in that order. Names it does not find (code changed
//! since the list was made) are skipped: the binary is the same, only larger
//! in memory. The list is used only where rustc links with lld by default
//! (x86_64 Linux from Rust 1.90) and no other linker was asked for.
//!
//! With lld and a glibc of 2.36 or later (the first that applies them, in
//! static binaries too), the relative relocations are packed (RELR): 3 KiB
//! instead of 242 KiB of `.rela.dyn` that every start of husk reads through.
//! The start of `husk --version` takes 0.44 instead of 0.55 ms of CPU. An
//! older glibc would not apply them and husk would crash at its first
//! pointer, so the glibc of the build host (which is the one linked into a
//! static husk) is asked first.

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
    // -Wl, splits its argument at commas.
    if !links_with_rust_lld() {
        return;
    }
    if !order.contains(',') {
        println!("cargo:rustc-link-arg-bins=-Wl,--symbol-ordering-file={order}");
        println!("cargo:rustc-link-arg-bins=-Wl,--no-warn-symbol-ordering");
    }
    if env::var("HOST").ok() == env::var("TARGET").ok() && glibc_applies_relr(&host_glibc_version()) {
        println!("cargo:rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");
    }
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

fn links_with_rust_lld() -> bool {
    let target = env::var("TARGET").unwrap_or_default();
    let flags = env::var("CARGO_ENCODED_RUSTFLAGS").unwrap_or_default();
    // A linker from .cargo/config.toml or CARGO_TARGET_<triple>_LINKER is in
    // RUSTC_LINKER; -Clinker, -Clinker-features=-lld or -Clink-self-contained=-linker
    // say "linker"; -Clink-arg(s)=-fuse-ld=bfd|gold|mold picks another ld
    // through the C compiler (bfd and gold know no --symbol-ordering-file).
    let own_linker = env::var_os("RUSTC_LINKER").is_some()
        || env::vars().any(|(k, _)| k.starts_with("CARGO_TARGET_") && k.ends_with("_LINKER"));
    let other_ld = flags.contains("linker") || flags.contains("fuse-ld") || flags.contains("ld-path");
    target == "x86_64-unknown-linux-gnu" && !other_ld && !own_linker && rustc_minor() >= Some(90)
}

/// The minor version of the rustc that builds husk (`rustc 1.95.0 (...)`).
fn rustc_minor() -> Option<u32> {
    let rustc = env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let out = Command::new(rustc).arg("--version").output().ok()?;
    let text = String::from_utf8(out.stdout).ok()?;
    text.split_whitespace().nth(1)?.split('.').nth(1)?.parse().ok()
}
