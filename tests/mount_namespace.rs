//! A container that shares husk's mount namespace (none listed in
//! linux.namespaces, as the spec allows, or one joined by a path that leads
//! back to husk's own): husk chroots it into its rootfs and changes nothing in
//! the host's mount table (no mount, no propagation change), and `exec` finds
//! the same root. What needs mounts of the container's own is refused.

mod common;

use common::mounts::*;
use common::*;
use serde_json::json;

#[test]
fn without_a_mount_namespace_the_container_is_chrooted_and_mounts_nothing() {
    let mut b = shared_mounts_bundle("nomntns");
    let before = host_mount_view(&b);
    b.script("cat /marker; stat -c %i /; ls /proc | wc -l");
    let o = b.run("c");
    assert_ok(&o);
    let out = stdout(&o);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "in the rootfs");
    assert_eq!(lines[1], rootfs_inode(&b), "the container's / is its rootfs");
    assert_eq!(lines[2], "0", "no procfs was mounted into the rootfs");
    assert!(
        stderr(&o).contains("warning: mounts:"),
        "the skipped mounts are reported: {}",
        stderr(&o)
    );
    assert_eq!(host_mount_view(&b), before, "the host's mount table changed");
    b.assert_gone("c");
}

#[test]
fn joining_husks_own_mount_namespace_mounts_nothing_either() {
    let mut b = shared_mounts_bundle("ownmntns");
    b.config["linux"]["namespaces"]
        .as_array_mut()
        .unwrap()
        .push(json!({"type": "mount", "path": "/proc/self/ns/mnt"}));
    b.save();
    let before = host_mount_view(&b);
    b.script("stat -c %i /; ls /proc | wc -l");
    let o = b.run("c");
    assert_ok(&o);
    assert_eq!(stdout(&o), format!("{}\n0\n", rootfs_inode(&b)));
    assert_eq!(host_mount_view(&b), before, "the host's mount table changed");
    b.assert_gone("c");
}

#[test]
fn exec_without_a_mount_namespace_gets_the_containers_root() {
    let mut b = shared_mounts_bundle("nomntns-exec");
    b.script("sleep 30");
    assert_ok(&b.create("c"));
    assert_ok(&b.husk(&["start", "c"]));
    let o = b.husk(&["exec", "--cwd", "/", "c", "sh", "-c", "cat /marker; stat -c %i /; pwd"]);
    assert_ok(&o);
    assert_eq!(stdout(&o), format!("in the rootfs\n{}\n/\n", rootfs_inode(&b)));
    assert_ok(&b.husk(&["delete", "--force", "c"]));
    b.assert_gone("c");
}

type Change = dyn Fn(&mut Bundle);

#[test]
fn what_needs_a_mount_namespace_of_its_own_is_refused() {
    let cases: [(&str, &Change, &str); 5] = [
        ("ro", &|b| b.config["root"]["readonly"] = json!(true), "root.readonly"),
        (
            "masked",
            &|b| b.config["linux"]["maskedPaths"] = json!(["/proc/kcore"]),
            "linux.maskedPaths",
        ),
        (
            "readonly",
            &|b| b.config["linux"]["readonlyPaths"] = json!(["/proc/sys"]),
            "linux.readonlyPaths",
        ),
        (
            "propagation",
            &|b| b.config["linux"]["rootfsPropagation"] = json!("shared"),
            "linux.rootfsPropagation",
        ),
        (
            "tty",
            &|b| b.config["process"]["terminal"] = json!(true),
            "process.terminal",
        ),
    ];
    for (name, change, field) in cases {
        let mut b = shared_mounts_bundle(&format!("nomntns-{name}"));
        change(&mut b);
        b.save();
        let before = host_mount_view(&b);
        b.create_fails("c", &format!("{field}: needs a mount namespace of the container's own"));
        assert_eq!(host_mount_view(&b), before);
    }
}

/// A config without `linux` (the spec makes it optional) asks for no
/// namespace, as `"linux": {}` does; it used to get oci-spec's template of
/// new namespaces and masked paths, which checkpoint did not know of.
#[test]
fn a_config_without_linux_shares_every_namespace_with_husk() {
    let mut b = shared_mounts_bundle("nolinux");
    b.config.as_object_mut().unwrap().remove("linux");
    b.config.as_object_mut().unwrap().remove("hostname");
    b.script("sleep 30");
    let before = host_mount_view(&b);
    assert_ok(&b.create("c"));
    let pid = b.state("c")["pid"].as_i64().unwrap();
    for ns in ["mnt", "net", "pid", "uts", "ipc", "cgroup"] {
        let own = std::fs::read_link(format!("/proc/self/ns/{ns}")).unwrap();
        let init = std::fs::read_link(format!("/proc/{pid}/ns/{ns}")).unwrap();
        assert_eq!(init, own, "the container's {ns} namespace is husk's");
    }
    assert_eq!(host_mount_view(&b), before, "the host's mount table changed");
    assert_ok(&b.husk(&["delete", "--force", "c"]));
    b.assert_gone("c");
}

/// A hostile bundle that leaves `linux` out gets no more than `"linux": {}`:
/// what needs a mount namespace of its own is refused, the host unchanged.
#[test]
fn a_config_without_linux_is_refused_what_needs_a_mount_namespace() {
    let mut b = shared_mounts_bundle("nolinux-ro");
    b.config.as_object_mut().unwrap().remove("linux");
    b.config.as_object_mut().unwrap().remove("hostname");
    b.config["root"]["readonly"] = json!(true);
    b.save();
    let before = host_mount_view(&b);
    b.create_fails("c", "root.readonly: needs a mount namespace of the container's own");
    assert_eq!(host_mount_view(&b), before, "the host's mount table changed");
}
