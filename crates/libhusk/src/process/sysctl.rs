//! `linux.sysctl`: each key checked against the namespace it lives in, then
//! written by the init through its private procfs (never the container's /proc).

use std::collections::HashMap;

use crate::bail;
use crate::error::{Context, Result};
use crate::process::namespaces::{NamespacePlan, Shared};
use crate::sys;

/// The key's file below /proc/sys: a key with a '/' is in that form already
/// (sysctl(8)'s other form, where a '.' belongs to a name, as in an
/// interface `eth0.100`), else each '.' separates two names.
fn path_of(key: &str) -> String {
    match key.contains('/') {
        true => key.to_string(),
        false => key.replace('.', "/"),
    }
}

/// The namespace a sysctl key belongs to, or None for a host-wide key.
fn namespace_of(key: &str) -> Option<(i32, &'static str)> {
    let dotted = path_of(key).replace('/', ".");
    let key = dotted.as_str();
    const IPC: [&str; 6] = [
        "kernel.msgmax",
        "kernel.msgmnb",
        "kernel.msgmni",
        "kernel.sem",
        "kernel.shmall",
        "kernel.shmmax",
    ];
    if key.starts_with("net.") {
        Some((libc::CLONE_NEWNET, "network"))
    } else if IPC.contains(&key) || key.starts_with("kernel.shm") || key.starts_with("fs.mqueue.") {
        Some((libc::CLONE_NEWIPC, "ipc"))
    } else if key == "kernel.hostname" || key == "kernel.domainname" {
        Some((libc::CLONE_NEWUTS, "uts"))
    } else {
        None
    }
}

pub fn plan(sysctl: &HashMap<String, String>, ns: &NamespacePlan) -> Result<Vec<(String, String)>> {
    let mut out = Vec::new();
    for (key, value) in sysctl {
        if key.is_empty() || key.split(['.', '/']).any(|part| part.is_empty() || part == "..") {
            bail!("linux.sysctl: invalid key \"{key}\"");
        }
        let Some((flag, name)) = namespace_of(key) else {
            bail!("linux.sysctl: {key} is not namespaced: it would change the host")
        };
        match ns.shared_with_caller(flag)? {
            None => {}
            Some(Shared::Unlisted) => {
                bail!("linux.sysctl: {key} needs a {name} namespace of the container's own")
            }
            Some(Shared::Joined(path)) => bail!(
                "linux.sysctl: {key}: the {name} namespace {} is husk's own or the host's, not the container's",
                path.display()
            ),
        }
        out.push((key.clone(), value.clone()));
    }
    out.sort();
    Ok(out)
}

pub fn apply(sysctls: &[(String, String)], proc: &sys::Procfs) -> Result<()> {
    for (key, value) in sysctls {
        let path = format!("sys/{}", path_of(key));
        sys::write_proc(proc, &path, value).context(|| format!("linux.sysctl {key}={value}"))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ns(flags: u64) -> NamespacePlan {
        NamespacePlan {
            new: flags,
            ..Default::default()
        }
    }

    #[test]
    fn keys_need_their_namespace() {
        let map = |k: &str| HashMap::from([(k.to_string(), "1".to_string())]);
        let net = libc::CLONE_NEWNET as u64;
        let ipc = libc::CLONE_NEWIPC as u64;
        assert!(plan(&map("net.ipv4.ip_forward"), &ns(net)).is_ok());
        let e = plan(&map("net.ipv4.ip_forward"), &ns(ipc)).unwrap_err();
        assert!(e.message().contains("needs a network namespace"), "{e}");
        assert!(plan(&map("kernel.shmmax"), &ns(ipc)).is_ok());
        assert!(plan(&map("fs.mqueue.msg_max"), &ns(net)).is_err());
        let e = plan(&map("vm.swappiness"), &ns(net | ipc)).unwrap_err();
        assert!(e.message().contains("not namespaced"), "{e}");
        assert!(plan(&map("net..x"), &ns(net)).is_err());
        // sysctl(8)'s form with '/': the same namespaces; a '.' stays in its name.
        assert!(plan(&map("net/core/somaxconn"), &ns(net)).is_ok());
        assert!(plan(&map("kernel/shmmax"), &ns(ipc)).is_ok());
        let e = plan(&map("net/core/somaxconn"), &ns(ipc)).unwrap_err();
        assert!(e.message().contains("needs a network namespace"), "{e}");
        let e = plan(&map("vm/swappiness"), &ns(net | ipc)).unwrap_err();
        assert!(e.message().contains("not namespaced"), "{e}");
        assert!(plan(&map("net/../vm/swappiness"), &ns(net)).is_err());
        assert_eq!(
            path_of("net/ipv4/conf/eth0.100/forwarding"),
            "net/ipv4/conf/eth0.100/forwarding"
        );
        assert_eq!(path_of("net.ipv4.ip_forward"), "net/ipv4/ip_forward");
    }

    #[test]
    fn keys_of_a_joined_namespace_of_husks_own_are_refused() {
        let list: Vec<oci_spec::runtime::LinuxNamespace> = serde_json::from_str(
            r#"[{"type":"network","path":"/proc/self/ns/net"},{"type":"ipc","path":"/proc/self/ns/ipc"}]"#,
        )
        .unwrap();
        let joined = NamespacePlan::from_spec(&list).unwrap();
        let map = |k: &str| HashMap::from([(k.to_string(), "1".to_string())]);
        let e = plan(&map("net.ipv4.ip_forward"), &joined).unwrap_err();
        assert_eq!(
            e.message(),
            "linux.sysctl: net.ipv4.ip_forward: the network namespace /proc/self/ns/net is husk's own or the host's, not the container's"
        );
        let e = plan(&map("fs.mqueue.msg_max"), &joined).unwrap_err();
        assert!(
            e.message()
                .contains("the ipc namespace /proc/self/ns/ipc is husk's own"),
            "{e}"
        );
    }
}
