//! `features`: the runtime-spec features document. containerd reads it to decide
//! what to offer (Kubernetes user-namespace pods need `user` and idmap), so
//! every entry must be true of this binary.

use serde_json::{json, Value};

const MOUNT_OPTIONS: &[&str] = &[
    "async",
    "atime",
    "bind",
    "copy-symlink",
    "defaults",
    "dev",
    "diratime",
    "dirsync",
    "exec",
    "idmap",
    "lazytime",
    "loud",
    "mand",
    "noatime",
    "nodev",
    "nodiratime",
    "noexec",
    "nolazytime",
    "nomand",
    "norelatime",
    "nostrictatime",
    "nosuid",
    "private",
    "rbind",
    "rdev",
    "rdiratime",
    "relatime",
    "remount",
    "rexec",
    "ridmap",
    "rnoatime",
    "rnodev",
    "rnodiratime",
    "rnoexec",
    "rnosuid",
    "ro",
    "rprivate",
    "rrelatime",
    "rro",
    "rrw",
    "rshared",
    "rslave",
    "rstrictatime",
    "rsuid",
    "runbindable",
    "rw",
    "shared",
    "silent",
    "slave",
    "strictatime",
    "suid",
    "sync",
    "tmpcopyup",
    "unbindable",
    "ratime",
    "rnostrictatime",
    "rnorelatime",
    "rnolazytime",
    "rlazytime",
    "rmand",
    "rnomand",
    "nosymfollow",
    "symfollow",
    "rnosymfollow",
    "rsymfollow",
];

fn capabilities() -> Vec<String> {
    let mut caps: Vec<String> = caps::all().into_iter().map(|c| c.to_string()).collect();
    caps.sort();
    caps
}

pub fn document() -> Value {
    // Options husk parses; the r* forms it does not know are left out.
    let mount_options: Vec<&str> = MOUNT_OPTIONS
        .iter()
        .copied()
        .filter(|o| crate::rootfs::mounts::is_known_option(o))
        .collect();
    json!({
        "ociVersionMin": "1.0.0",
        "ociVersionMax": crate::spec::template::OCI_VERSION,
        "hooks": ["prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"],
        "mountOptions": mount_options,
        "linux": {
            "namespaces": ["cgroup", "ipc", "mount", "network", "pid", "time", "user", "uts"],
            "capabilities": capabilities(),
            "cgroup": { "v1": true, "v2": true, "systemd": true, "systemdUser": true, "rdma": false },
            "seccomp": {
                "enabled": true,
                "actions": ["SCMP_ACT_ALLOW", "SCMP_ACT_ERRNO", "SCMP_ACT_KILL", "SCMP_ACT_KILL_PROCESS",
                            "SCMP_ACT_KILL_THREAD", "SCMP_ACT_LOG", "SCMP_ACT_NOTIFY", "SCMP_ACT_TRACE", "SCMP_ACT_TRAP"],
                "operators": ["SCMP_CMP_EQ", "SCMP_CMP_GE", "SCMP_CMP_GT", "SCMP_CMP_LE", "SCMP_CMP_LT",
                              "SCMP_CMP_MASKED_EQ", "SCMP_CMP_NE"],
                "archs": ["SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM", "SCMP_ARCH_X86", "SCMP_ARCH_X86_64", "SCMP_ARCH_X32"],
                "knownFlags": ["SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW", "SECCOMP_FILTER_FLAG_TSYNC",
                               "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"],
                "supportedFlags": ["SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW", "SECCOMP_FILTER_FLAG_TSYNC",
                                   "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"]
            },
            "apparmor": { "enabled": crate::process::attrs::apparmor_enabled() },
            "selinux": { "enabled": crate::process::attrs::selinux_enabled() },
            "intelRdt": { "enabled": false },
            "memoryPolicy": {
                "modes": ["MPOL_BIND", "MPOL_DEFAULT", "MPOL_INTERLEAVE", "MPOL_LOCAL", "MPOL_PREFERRED",
                          "MPOL_PREFERRED_MANY", "MPOL_WEIGHTED_INTERLEAVE"],
                "flags": ["MPOL_F_NUMA_BALANCING", "MPOL_F_RELATIVE_NODES", "MPOL_F_STATIC_NODES"]
            },
            "mountExtensions": { "idmap": { "enabled": true } },
            "netDevices": { "enabled": true }
        },
        "annotations": {
            "io.github.husk.version": env!("CARGO_PKG_VERSION"),
            // As runc's org.opencontainers.runc.checkpoint.enabled: checkpoint
            // and restore through criu(8), which must be installed.
            "io.github.husk.checkpoint.enabled": "true",
            "io.github.husk.checkpoint.unsupported": "rootless, --lazy-pages, restore with --systemd-cgroup, restore of process.noNewPrivileges with criu before 3.19"
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_containerd_looks_for() {
        let d = document();
        assert!(d["linux"]["namespaces"].as_array().unwrap().contains(&json!("user")));
        assert_eq!(d["linux"]["mountExtensions"]["idmap"]["enabled"], true);
        assert_eq!(d["linux"]["netDevices"]["enabled"], true);
        let opts = d["mountOptions"].as_array().unwrap();
        for o in [
            "rro",
            "idmap",
            "ridmap",
            "rbind",
            "ro",
            "tmpcopyup",
            "copy-symlink",
            "ratime",
            "rnostrictatime",
            "rnosymfollow",
            "nosymfollow",
        ] {
            assert!(opts.contains(&json!(o)), "{o}");
        }
        let modes = d["linux"]["memoryPolicy"]["modes"].as_array().unwrap();
        assert!(modes.contains(&json!("MPOL_BIND")) && modes.len() == 7);
        assert!(d["linux"]["capabilities"]
            .as_array()
            .unwrap()
            .contains(&json!("CAP_SYS_ADMIN")));
        assert_eq!(d["annotations"]["io.github.husk.checkpoint.enabled"], "true");
    }
}
