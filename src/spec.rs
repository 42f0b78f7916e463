//! `husk spec`: a default config.json, runc's with husk's name, for a busybox or
//! distribution rootfs in `BUNDLE/rootfs`.

use std::path::Path;

use serde_json::{json, Value};

use crate::bail;
use crate::error::{Context, Result};

pub const OCI_VERSION: &str = "1.2.0";

pub fn default_config() -> Value {
    let caps = json!(["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]);
    json!({
        "ociVersion": OCI_VERSION,
        "process": {
            "terminal": false,
            "user": { "uid": 0, "gid": 0 },
            "args": ["sh"],
            "env": [
                "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                "TERM=xterm"
            ],
            "cwd": "/",
            "capabilities": {
                "bounding": caps, "effective": caps, "permitted": caps, "ambient": caps
            },
            "rlimits": [ { "type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024 } ],
            "noNewPrivileges": true
        },
        "root": { "path": "rootfs", "readonly": true },
        "hostname": "husk",
        "mounts": [
            { "destination": "/proc", "type": "proc", "source": "proc" },
            { "destination": "/dev", "type": "tmpfs", "source": "tmpfs",
              "options": ["nosuid", "strictatime", "mode=755", "size=65536k"] },
            { "destination": "/dev/pts", "type": "devpts", "source": "devpts",
              "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"] },
            { "destination": "/dev/shm", "type": "tmpfs", "source": "shm",
              "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"] },
            { "destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
              "options": ["nosuid", "noexec", "nodev"] },
            { "destination": "/sys", "type": "sysfs", "source": "sysfs",
              "options": ["nosuid", "noexec", "nodev", "ro"] },
            { "destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
              "options": ["nosuid", "noexec", "nodev", "relatime", "ro"] }
        ],
        "linux": {
            "resources": { "devices": [ { "allow": false, "access": "rwm" } ] },
            "namespaces": [
                { "type": "pid" }, { "type": "network" }, { "type": "ipc" },
                { "type": "uts" }, { "type": "mount" }, { "type": "cgroup" }
            ],
            "maskedPaths": [
                "/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys",
                "/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats",
                "/proc/sched_debug", "/sys/firmware", "/proc/scsi"
            ],
            "readonlyPaths": [
                "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"
            ]
        }
    })
}

/// runc's `spec --rootless`: the caller mapped to root in a user namespace, no
/// network namespace, /sys bound from the host, no cgroup limits.
pub fn rootless_config(uid: u32, gid: u32) -> Value {
    let mut c = default_config();
    let linux = &mut c["linux"];
    linux.as_object_mut().expect("object").remove("resources");
    linux["namespaces"] = json!([
        { "type": "pid" }, { "type": "ipc" }, { "type": "uts" },
        { "type": "mount" }, { "type": "cgroup" }, { "type": "user" }
    ]);
    linux["uidMappings"] = json!([{ "containerID": 0, "hostID": uid, "size": 1 }]);
    linux["gidMappings"] = json!([{ "containerID": 0, "hostID": gid, "size": 1 }]);
    let mounts = c["mounts"].as_array_mut().expect("array");
    for m in mounts.iter_mut() {
        if let Some(opts) = m["options"].as_array_mut() {
            // gid= needs the group mapped, which a single-id mapping may not have.
            opts.retain(|o| !o.as_str().is_some_and(|s| s.starts_with("gid=")));
        }
        if m["destination"] == "/sys" {
            *m = json!({ "destination": "/sys", "type": "none", "source": "/sys",
                         "options": ["rbind", "nosuid", "noexec", "nodev", "ro"] });
        }
    }
    c
}

pub fn write(bundle: &Path, rootless: bool) -> Result<()> {
    let path = bundle.join("config.json");
    if path.exists() {
        bail!(
            "File {} exists. Remove it first or use --bundle",
            path.display()
        );
    }
    let config = if rootless {
        // SAFETY: getuid/getgid cannot fail.
        let (uid, gid) = unsafe { (libc::getuid(), libc::getgid()) };
        rootless_config(uid, gid)
    } else {
        default_config()
    };
    let text = serde_json::to_string_pretty(&config).expect("serialises");
    std::fs::write(&path, text + "\n").context(|| format!("write {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_config_is_a_valid_spec() {
        let text = default_config().to_string();
        let spec = crate::config::parse(&text).unwrap();
        crate::config::check_version(spec.version()).unwrap();
        assert_eq!(spec.hostname().as_deref(), Some("husk"));
    }

    #[test]
    fn rootless_config_maps_the_caller() {
        let c = rootless_config(1000, 1001);
        assert_eq!(c["linux"]["uidMappings"][0]["hostID"], 1000);
        assert_eq!(c["linux"]["gidMappings"][0]["hostID"], 1001);
        assert!(c["linux"].get("resources").is_none());
        let ns = c["linux"]["namespaces"].to_string();
        assert!(ns.contains("user") && !ns.contains("network"));
        let text = c["mounts"].to_string();
        assert!(!text.contains("gid=5") && !text.contains("sysfs"));
        crate::config::parse(&c.to_string()).unwrap();
    }
}
