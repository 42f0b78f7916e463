//! Mount extensions: `tmpcopyup` (what `podman run --read-only` asks for its
//! tmpfs mounts), `copy-symlink`, the recursive options on any mount, and a
//! tmpfs taking the mode of the directory it covers. The image is hostile:
//! what tmpcopyup copies may be symlinks out of the rootfs, fifos, device
//! nodes or deep trees.

mod common;

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::time::{Duration, Instant};

use common::*;
use nix::sys::stat::{makedev, mknod, Mode, SFlag};
use serde_json::{json, Value};

/// The most directories deep a tmpcopyup tree may be (libhusk's copyup::MAX_DEPTH).
const MAX_DEPTH: usize = 256;

/// A tmpfs mount as podman makes it for `--read-only`, with `extra` options.
fn tmpcopyup(dest: &str, extra: &[&str]) -> Value {
    let mut options = vec!["rw", "rprivate", "nosuid", "nodev", "tmpcopyup"];
    options.extend_from_slice(extra);
    json!({"destination": dest, "type": "tmpfs", "source": "tmpfs", "options": options})
}

fn add_mount(b: &mut Bundle, m: Value) {
    b.config["mounts"].as_array_mut().unwrap().push(m);
    b.save();
}

fn set_mode(p: &Path, mode: u32) {
    std::fs::set_permissions(p, PermissionsExt::from_mode(mode)).unwrap();
}

/// What `ls -lnR`-like listing the host sees of a directory, to show it unchanged.
fn listing(dir: &Path) -> Vec<(String, u32, u64, i64)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let m = std::fs::symlink_metadata(e.path()).unwrap();
            out.push((e.path().display().to_string(), m.mode(), m.size(), m.mtime()));
            if m.is_dir() {
                stack.push(e.path());
            }
        }
    }
    out.sort();
    out
}

#[test]
fn tmpcopyup_fills_the_tmpfs_with_what_the_image_holds_there() {
    let mut b = Bundle::new("copyup");
    let run = b.rootfs().join("run");
    std::fs::create_dir_all(run.join("a/b")).unwrap();
    std::fs::write(run.join("a/b/f"), "hello").unwrap();
    std::os::unix::fs::chown(run.join("a/b/f"), Some(9), Some(10)).unwrap();
    set_mode(&run.join("a/b/f"), 0o444);
    std::os::unix::fs::chown(run.join("a"), Some(7), Some(8)).unwrap();
    // The container's root has no CAP_DAC_OVERRIDE: others may search.
    set_mode(&run.join("a"), 0o751);
    std::fs::write(run.join("s"), "").unwrap();
    set_mode(&run.join("s"), 0o4755);
    std::os::unix::fs::symlink("a/b/f", run.join("l")).unwrap();
    set_mode(&run, 0o755);
    set_mode(&b.rootfs().join("tmp"), 0o1777);
    let before = listing(&run);
    // As `podman run --read-only`: /var/tmp is not in the image.
    for dest in ["/tmp", "/run", "/var/tmp"] {
        add_mount(&mut b, tmpcopyup(dest, &[]));
    }
    let out = b.output_of(
        "stat -c '%n %a %u:%g %F' /run /run/a /run/a/b/f /run/s /tmp /var/tmp; readlink /run/l; cat /run/l; echo; \
         echo x > /run/new && echo > /tmp/t && echo > /var/tmp/t && echo writable; touch /etc/x 2>/dev/null || echo root-ro",
    );
    assert_eq!(
        out.lines().collect::<Vec<_>>(),
        [
            "/run 755 0:0 directory",
            "/run/a 751 7:8 directory",
            "/run/a/b/f 444 9:10 regular file",
            "/run/s 4755 0:0 regular empty file",
            "/tmp 1777 0:0 directory",
            "/var/tmp 1777 0:0 directory",
            "a/b/f",
            "hello",
            "writable",
            "root-ro",
        ]
    );
    assert_eq!(listing(&run), before, "the image's /run is left as it was");
}

#[test]
fn tmpcopyup_copies_a_hostile_image_without_following_or_opening_anything() {
    let mut b = Bundle::new("copyup-hostile");
    let outside = b.dir.join("outside");
    std::fs::create_dir_all(&outside).unwrap();
    std::fs::write(outside.join("secret"), "host-only").unwrap();
    let run = b.rootfs().join("run");
    std::fs::create_dir_all(&run).unwrap();
    std::os::unix::fs::symlink("/etc/shadow", run.join("shadow")).unwrap();
    std::os::unix::fs::symlink("../../../../../../../../etc", run.join("up")).unwrap();
    std::os::unix::fs::symlink(&outside, run.join("outside")).unwrap();
    // Read, a fifo without a writer would hang create; a device would be opened.
    nix::unistd::mkfifo(&run.join("fifo"), Mode::from_bits_truncate(0o600)).unwrap();
    mknod(
        &run.join("null"),
        SFlag::S_IFCHR,
        Mode::from_bits_truncate(0o666),
        makedev(1, 3),
    )
    .unwrap();
    drop(std::os::unix::net::UnixListener::bind(run.join("sock")).unwrap());
    let mut deep = run.join("deep");
    for _ in 0..200 {
        deep.push("d");
    }
    std::fs::create_dir_all(&deep).unwrap();
    std::fs::write(deep.join("leaf"), "bottom").unwrap();
    let before = (listing(&run), listing(&outside));
    let shadow = std::fs::metadata("/etc/shadow").unwrap();
    add_mount(&mut b, tmpcopyup("/run", &[]));

    let started = Instant::now();
    let leaf = format!("/run/deep{}/leaf", "/d".repeat(200));
    let out = b.output_of(&format!(
        "for l in shadow up outside; do readlink /run/$l; done; stat -c '%n %F' /run/fifo /run/sock /run/null; \
         stat -c '%t:%T' /run/null; cat {leaf}; echo; ls /run/outside/ 2>/dev/null || echo no-host-dir; \
         cat /run/shadow 2>/dev/null || echo no-shadow"
    ));
    assert!(started.elapsed() < Duration::from_secs(20), "create must not hang");
    assert_eq!(
        out.lines().collect::<Vec<_>>(),
        [
            "/etc/shadow",
            "../../../../../../../../etc",
            outside.to_str().unwrap(),
            "/run/fifo fifo",
            "/run/sock socket",
            "/run/null character special file",
            "1:3",
            "bottom",
            "no-host-dir",
            "no-shadow",
        ]
    );
    // The host: nothing read into the container, nothing written or touched.
    assert_eq!((listing(&run), listing(&outside)), before);
    let after = std::fs::metadata("/etc/shadow").unwrap();
    assert_eq!(
        (after.mtime(), after.ctime(), after.len()),
        (shadow.mtime(), shadow.ctime(), shadow.len())
    );
}

#[test]
fn a_tmpcopyup_tree_too_deep_or_too_big_fails_cleanly() {
    let mut b = Bundle::new("copyup-deep");
    let mut deep = b.rootfs().join("run");
    for _ in 0..MAX_DEPTH + 1 {
        deep.push("d");
    }
    std::fs::create_dir_all(&deep).unwrap();
    add_mount(&mut b, tmpcopyup("/run", &[]));
    let index = b.config["mounts"].as_array().unwrap().len() - 1;
    b.create_fails("deep", &format!("mounts[{index}] /run: tmpcopyup: /run/d/d/"));
    b.create_fails("deep", &format!("more than {MAX_DEPTH} directories deep"));

    let mut b = Bundle::new("copyup-big");
    std::fs::create_dir_all(b.rootfs().join("run")).unwrap();
    let big = std::fs::File::create(b.rootfs().join("run/big")).unwrap();
    big.set_len(64 << 20).unwrap(); // sparse on the host, 64 MiB to copy
    add_mount(&mut b, tmpcopyup("/run", &["size=1m"]));
    b.create_fails("big", "tmpcopyup: copy /run/big: No space left on device");
}

#[test]
fn a_read_only_tmpcopyup_is_filled_first_and_rro_holds_on_a_tmpfs() {
    let mut b = Bundle::new("copyup-ro");
    std::fs::create_dir_all(b.rootfs().join("run")).unwrap();
    std::fs::write(b.rootfs().join("run/f"), "kept").unwrap();
    add_mount(&mut b, tmpcopyup("/run", &["ro"]));
    add_mount(
        &mut b,
        json!({"destination": "/data", "type": "tmpfs", "source": "tmpfs", "options": ["rro", "rnoatime"]}),
    );
    let out = b.output_of(
        "cat /run/f; echo; touch /run/g 2>/dev/null || echo run-ro; touch /data/g 2>/dev/null || echo data-ro; \
         grep -E ' /(run|data) ' /proc/self/mountinfo | cut -d' ' -f5,6",
    );
    assert_eq!(
        out.lines().collect::<Vec<_>>(),
        [
            "kept",
            "run-ro",
            "data-ro",
            "/run ro,nosuid,nodev,relatime",
            "/data ro,noatime"
        ]
    );
}

#[test]
fn a_tmpfs_takes_the_mode_of_the_directory_it_covers_unless_told() {
    let mut b = Bundle::new("tmpfs-mode");
    for dir in ["private", "told"] {
        std::fs::create_dir_all(b.rootfs().join(dir)).unwrap();
        set_mode(&b.rootfs().join(dir), 0o750);
    }
    for (dest, options) in [
        ("/private", json!([])),
        ("/told", json!(["mode=1777"])),
        ("/new", json!([])),
    ] {
        add_mount(
            &mut b,
            json!({"destination": dest, "type": "tmpfs", "source": "tmpfs", "options": options}),
        );
    }
    let out = b.output_of("stat -c '%n %a' /private /told /new");
    assert_eq!(out, "/private 750\n/told 1777\n/new 1777\n");
}

#[test]
fn copy_symlink_makes_the_sources_symlink_instead_of_binding_its_target() {
    let mut b = Bundle::new("copy-symlink");
    // Bound, this would show the host's /etc/shadow in the container.
    std::os::unix::fs::symlink("/etc/shadow", b.dir.join("link")).unwrap();
    std::fs::write(b.dir.join("plain"), "plain-file").unwrap();
    std::os::unix::fs::symlink("/etc/shadow", b.rootfs().join("etc/same")).unwrap();
    let bind = |dest: &str, source: &str| json!({"destination": dest, "type": "bind", "source": source, "options": ["bind", "copy-symlink"]});
    add_mount(&mut b, bind("/etc/link", "link"));
    add_mount(&mut b, bind("/etc/plain", "plain"));
    add_mount(&mut b, bind("/etc/same", "link"));
    let out = b.output_of(
        "readlink /etc/link; readlink /etc/same; cat /etc/plain; echo; cat /etc/link 2>/dev/null || echo no-shadow",
    );
    assert_eq!(out, "/etc/shadow\n/etc/shadow\nplain-file\nno-shadow\n");

    // A destination that exists and is something else is an error.
    let mut b = Bundle::new("copy-symlink-exists");
    std::os::unix::fs::symlink("/etc/shadow", b.dir.join("link")).unwrap();
    std::fs::write(b.rootfs().join("etc/taken"), "image file").unwrap();
    add_mount(&mut b, bind("/etc/taken", "link"));
    b.create_fails(
        "taken",
        "copy-symlink: /etc/taken exists and is not a symlink to /etc/shadow",
    );
    assert_eq!(
        std::fs::read_to_string(b.rootfs().join("etc/taken")).unwrap(),
        "image file"
    );
}

#[test]
fn mount_extensions_on_the_wrong_kind_of_mount_are_refused() {
    let mut b = Bundle::new("ext-kind");
    add_mount(
        &mut b,
        json!({"destination": "/x", "type": "bind", "source": "/etc", "options": ["rbind", "tmpcopyup"]}),
    );
    let index = b.config["mounts"].as_array().unwrap().len() - 1;
    b.create_fails(
        "kind",
        &format!("mounts[{index}]: mount option \"tmpcopyup\" is for tmpfs mounts only"),
    );
}

#[test]
fn tmpcopyup_in_a_rootless_container() {
    let mut b = Bundle::rootless("copyup-rootless");
    let run = b.rootfs().join("run");
    std::fs::create_dir_all(run.join("sub")).unwrap();
    std::fs::write(run.join("sub/f"), "mine").unwrap();
    std::os::unix::fs::symlink("sub/f", run.join("l")).unwrap();
    let (uid, gid) = b.user.unwrap();
    chown_tree(&run, uid, gid);
    b.config["root"]["readonly"] = json!(true);
    add_mount(&mut b, tmpcopyup("/run", &[]));
    let out = b.output_of("stat -c '%n %u' /run/sub/f; cat /run/l; echo; echo > /run/new && echo writable");
    assert_eq!(out, "/run/sub/f 0\nmine\nwritable\n");
    assert!(!run.join("new").exists());
}

#[test]
fn idmap_unprivileged_is_refused_naming_the_mount() {
    let mut b = Bundle::rootless("idmap-rootless");
    add_mount(
        &mut b,
        json!({"destination": "/data", "type": "bind", "source": "/etc", "options": ["rbind", "ridmap"]}),
    );
    let index = b.config["mounts"].as_array().unwrap().len() - 1;
    b.create_fails(
        "idmap",
        &format!("mounts[{index}] /data: idmap and ridmap are not supported unprivileged yet"),
    );
}

/// Errors name the mount, its type and what the kernel refused (#17): a type
/// it does not know, options a filesystem refuses; a bind mount's options
/// that are no flag are ignored as in runc, with a warning naming them.
#[test]
fn mount_errors_name_the_type_and_the_options_at_fault() {
    let cases = [
        (
            json!({"destination": "/x", "type": "nosuchfs", "source": "none"}),
            " /x: type nosuchfs: not a filesystem this kernel knows",
        ),
        (
            json!({"destination": "/x", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "size=abc"]}),
            " /x: type tmpfs refused its options \"size=abc\"",
        ),
        (
            json!({"destination": "/x", "type": "proc", "source": "proc", "options": ["hidepid=zz"]}),
            " /x: type proc refused its options \"hidepid=zz\"",
        ),
    ];
    for (i, (mount, expect)) in cases.into_iter().enumerate() {
        let mut b = Bundle::new("mount-errors");
        let index = b.config["mounts"].as_array().unwrap().len();
        add_mount(&mut b, mount);
        b.create_fails(&format!("c{i}"), &format!("mounts[{index}]{expect}"));
    }
    let mut b = Bundle::new("mount-bind-unknown");
    let index = b.config["mounts"].as_array().unwrap().len();
    let source = b.dir.join("src");
    std::fs::create_dir(&source).unwrap();
    add_mount(
        &mut b,
        json!({"destination": "/y", "type": "bind", "source": source, "options": ["rbind", "ro", "rfoo", "bar=1"]}),
    );
    b.script("grep -q ' /y ' /proc/mounts && touch /y/f 2>/dev/null || echo read-only");
    let o = b.run("c");
    assert_ok(&o);
    assert_eq!(stdout(&o), "read-only\n");
    assert_eq!(
        stderr(&o).trim_end(),
        format!("husk: warning: mounts[{index}] /y: options a bind mount does not know are ignored: rfoo, bar=1")
    );
}
