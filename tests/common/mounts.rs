//! Helpers for containers that share husk's mount namespace: what the host's
//! mount table looks like, and a bundle without a mount namespace.

use super::Bundle;
use serde_json::json;
use std::os::unix::fs::MetadataExt;

/// The propagation fields of the host's `/` and every line that names the bundle.
pub fn host_mount_view(b: &Bundle) -> (String, Vec<String>) {
    mount_view_of("self", b)
}

pub fn mount_view_of(pid: &str, b: &Bundle) -> (String, Vec<String>) {
    let info = std::fs::read_to_string(format!("/proc/{pid}/mountinfo")).unwrap();
    let root = info
        .lines()
        .find(|l| l.split(' ').nth(4) == Some("/"))
        .map(|l| {
            l.split(" - ")
                .next()
                .unwrap()
                .split(' ')
                .skip(6)
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap();
    let bundle = b.dir.to_str().unwrap();
    let ours = info.lines().filter(|l| l.contains(bundle)).map(String::from).collect();
    (root, ours)
}

/// A bundle whose config lists no mount namespace (default mounts kept).
pub fn shared_mounts_bundle(name: &str) -> Bundle {
    let mut b = Bundle::new(name);
    b.without_namespace("mount");
    b.config["linux"]["maskedPaths"] = json!([]);
    b.config["linux"]["readonlyPaths"] = json!([]);
    b.config["root"]["readonly"] = json!(false);
    std::fs::write(b.rootfs().join("marker"), "in the rootfs\n").unwrap();
    b.save();
    b
}

pub fn rootfs_inode(b: &Bundle) -> String {
    std::fs::metadata(b.rootfs()).unwrap().ino().to_string()
}
