//! `linux.netDevices` (runtime-spec 1.3): network devices of the host moved
//! into the container's network namespace, renamed if asked, with their
//! permanent addresses of global scope, and set up.
//!
//! `create` moves them itself, from the host's namespaces, once the init is
//! in the container's network namespace and before it writes the sysctls
//! (which may name a moved device): the init waits for it. Nothing moves
//! them back: when the namespace ends, the kernel returns physical devices
//! to the host and destroys virtual ones, as the spec wants.

use std::collections::HashMap;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use oci_spec::runtime::LinuxNetDevice;

use crate::bail;
use crate::error::{Context, Result};
use crate::process::namespaces::NamespacePlan;
use crate::sys::netlink::{Address, Route};

/// One device to move: its name on the host and in the container (a name
/// ending in `%d` is a template the kernel fills).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetDevicePlan {
    pub host_name: String,
    pub name: String,
}

/// The kernel's IFNAMSIZ, the terminating NUL included.
const IFNAMSIZ: usize = 16;

/// Checks `linux.netDevices` against the rest of the config: the devices,
/// sorted by their host name.
pub fn plan(
    devices: Option<&HashMap<String, LinuxNetDevice>>,
    namespaces: &NamespacePlan,
    rootless: bool,
) -> Result<Vec<NetDevicePlan>> {
    let Some(devices) = devices.filter(|d| !d.is_empty()) else {
        return Ok(Vec::new());
    };
    if !namespaces.has(libc::CLONE_NEWNET) {
        bail!("linux.netDevices: moving network devices needs a network namespace in linux.namespaces");
    }
    if namespaces.shared_with_caller(libc::CLONE_NEWNET)?.is_some() {
        bail!("linux.netDevices: the network namespace joined is the host's, where the devices already are");
    }
    if rootless {
        bail!("linux.netDevices: moving network devices needs root (husk runs rootless)");
    }
    let mut planned = Vec::new();
    for (host_name, device) in devices {
        if !is_valid_name(host_name, false) {
            bail!("linux.netDevices: \"{host_name}\" is not a valid network device name");
        }
        let name = device.name().as_deref().filter(|n| !n.is_empty()).unwrap_or(host_name);
        if !is_valid_name(name, true) {
            bail!("linux.netDevices[\"{host_name}\"].name: \"{name}\" is not a valid network device name");
        }
        planned.push(NetDevicePlan {
            host_name: host_name.clone(),
            name: name.to_string(),
        });
    }
    planned.sort_by(|a, b| a.host_name.cmp(&b.host_name));
    for (i, d) in planned.iter().enumerate() {
        if !is_template(&d.name) && planned[..i].iter().any(|e| e.name == d.name) {
            bail!(
                "linux.netDevices: two devices would be named \"{}\" in the container",
                d.name
            );
        }
    }
    Ok(planned)
}

/// The kernel's rule (dev_valid_name): 1 to 15 bytes, not `.` or `..`, no
/// `/`, `:` or white space; `%` only as one `%d`, in a template.
fn is_valid_name(name: &str, template_allowed: bool) -> bool {
    let percent_ok = match name.find('%') {
        None => true,
        Some(at) => template_allowed && name[at..].starts_with("%d") && !name[at + 1..].contains('%'),
    };
    !name.is_empty()
        && name.len() < IFNAMSIZ
        && name != "."
        && name != ".."
        && !name
            .bytes()
            .any(|b| b == b'/' || b == b':' || b.is_ascii_whitespace() || b == 0x0b)
        && percent_ok
}

fn is_template(name: &str) -> bool {
    name.contains('%')
}

/// The network namespace the devices go to: the joined one, else the
/// init's (`pid`, husk's unreaped child, so the number is its).
pub fn namespace_of(namespaces: &NamespacePlan, pid: libc::pid_t) -> Result<NetNamespace<'_>> {
    if let Some(fd) = namespaces.joined_fd(libc::CLONE_NEWNET) {
        return Ok(NetNamespace::Joined(fd));
    }
    let path = format!("/proc/{pid}/ns/net");
    let fd: OwnedFd = std::fs::File::open(&path).context(|| format!("open {path}"))?.into();
    let own = std::fs::metadata("/proc/self/ns/net").context(|| "stat /proc/self/ns/net".into())?;
    let theirs = nix::sys::stat::fstat(&fd).context(|| format!("stat {path}"))?;
    if std::os::unix::fs::MetadataExt::ino(&own) == theirs.st_ino {
        bail!("container init {pid} is not in a network namespace of its own");
    }
    Ok(NetNamespace::New(fd))
}

/// See [`namespace_of`].
pub enum NetNamespace<'a> {
    Joined(BorrowedFd<'a>),
    New(OwnedFd),
}

impl NetNamespace<'_> {
    fn fd(&self) -> BorrowedFd<'_> {
        match self {
            NetNamespace::Joined(fd) => *fd,
            NetNamespace::New(fd) => fd.as_fd(),
        }
    }
}

/// Moves `devices` into `netns`. husk must be single-threaded (it enters
/// the namespace for a moment, for a socket there).
pub fn move_into(devices: &[NetDevicePlan], netns: &NetNamespace) -> Result<()> {
    let netns = netns.fd();
    let mut host = Route::open().context(|| "linux.netDevices: netlink socket".into())?;
    let mut inside = Route::open_in(netns)
        .context(|| "linux.netDevices: netlink socket in the container's network namespace".into())?;
    for device in devices {
        move_one(device, &mut host, &mut inside, netns)?;
    }
    Ok(())
}

fn move_one(d: &NetDevicePlan, host: &mut Route, inside: &mut Route, netns: BorrowedFd) -> Result<()> {
    let what = || format!("linux.netDevices[\"{}\"]", d.host_name);
    let Some(link) = host.link_by_name(&d.host_name).context(what)? else {
        bail!("{}: the host has no network device {}", what(), d.host_name);
    };
    if !is_template(&d.name) && inside.link_by_name(&d.name).context(what)?.is_some() {
        bail!(
            "{}: the container's network namespace already has a device named {}",
            what(),
            d.name
        );
    }
    let addresses: Vec<Address> = host
        .addresses(link.index)
        .context(|| format!("{}: read its addresses", what()))?
        .into_iter()
        .filter(Address::moves_with_device)
        .collect();
    let index = free_index(inside, link.index).context(what)?;
    host.move_link(link.index, netns, index, &d.name).context(|| {
        format!(
            "{}: move it into the container's network namespace as {}",
            what(),
            d.name
        )
    })?;
    for a in &addresses {
        inside
            .add_address(index, a)
            .context(|| format!("{}: add address {} in the container", what(), a.describe()))?;
    }
    inside
        .set_up(index)
        .context(|| format!("{}: set it up in the container", what()))?;
    crate::log::step(&format!("network device {} moved in as {}", d.host_name, d.name));
    Ok(())
}

/// The index the device gets in the container's namespace: its own where
/// that is free there (as the kernel would keep it), else the next free one.
/// Given explicitly, so that the device is found by it after the move,
/// whatever name a template gave it.
fn free_index(inside: &mut Route, wanted: i32) -> Result<i32> {
    for index in (0..4096).map_while(|k| wanted.checked_add(k)) {
        if inside.link_by_index(index)?.is_none() {
            return Ok(index);
        }
    }
    bail!("no free interface index from {wanted} in the container's network namespace")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn namespaces(json: &str) -> NamespacePlan {
        NamespacePlan::from_spec(&serde_json::from_str::<Vec<_>>(json).unwrap()).unwrap()
    }

    fn devices(json: &str) -> HashMap<String, LinuxNetDevice> {
        serde_json::from_str(json).unwrap()
    }

    fn plan_of(json: &str) -> Result<Vec<NetDevicePlan>> {
        plan(Some(&devices(json)), &namespaces(r#"[{"type":"network"}]"#), false)
    }

    #[test]
    fn devices_are_planned_in_order_with_their_names_in_the_container() {
        let p = plan_of(r#"{"veth9":{},"eth1":{"name":"inner0"},"eth2":{"name":""}}"#).unwrap();
        let names: Vec<(&str, &str)> = p.iter().map(|d| (d.host_name.as_str(), d.name.as_str())).collect();
        assert_eq!(names, [("eth1", "inner0"), ("eth2", "eth2"), ("veth9", "veth9")]);
    }

    #[test]
    fn names_the_kernel_would_refuse_are_errors_that_name_them() {
        for (json, said) in [
            (r#"{"":{}}"#, r#""" is not a valid"#),
            (r#"{"a/b":{}}"#, r#""a/b" is not a valid"#),
            (r#"{"a b":{}}"#, "is not a valid"),
            (r#"{"eth%d":{}}"#, "is not a valid"),
            (r#"{"sixteen-bytes-xx":{}}"#, "is not a valid"),
            (
                r#"{"eth0":{"name":".."}}"#,
                r#"linux.netDevices["eth0"].name: ".." is not"#,
            ),
            (r#"{"eth0":{"name":"c:0"}}"#, "is not a valid"),
            (r#"{"eth0":{"name":"c%s"}}"#, "is not a valid"),
            (r#"{"eth0":{"name":"c%d%d"}}"#, "is not a valid"),
        ] {
            let e = plan_of(json).unwrap_err();
            assert!(e.message().contains(said), "{json}: {}", e.message());
        }
        assert_eq!(plan_of(r#"{"eth0":{"name":"c%d"}}"#).unwrap()[0].name, "c%d");
    }

    #[test]
    fn two_devices_may_not_take_one_name_unless_a_template_picks() {
        let e = plan_of(r#"{"eth0":{"name":"x"},"eth1":{"name":"x"}}"#).unwrap_err();
        assert!(
            e.message().contains("two devices would be named \"x\""),
            "{}",
            e.message()
        );
        let e = plan_of(r#"{"eth0":{},"eth1":{"name":"eth0"}}"#).unwrap_err();
        assert!(e.message().contains("\"eth0\""), "{}", e.message());
        assert_eq!(
            plan_of(r#"{"eth0":{"name":"c%d"},"eth1":{"name":"c%d"}}"#)
                .unwrap()
                .len(),
            2
        );
    }

    #[test]
    fn devices_need_a_network_namespace_of_the_containers_own_and_root() {
        let one = devices(r#"{"eth0":{}}"#);
        let e = plan(Some(&one), &namespaces(r#"[{"type":"mount"}]"#), false).unwrap_err();
        assert!(e.message().contains("needs a network namespace"), "{}", e.message());
        let hosts = namespaces(r#"[{"type":"network","path":"/proc/self/ns/net"}]"#);
        let e = plan(Some(&one), &hosts, false).unwrap_err();
        assert!(e.message().contains("is the host's"), "{}", e.message());
        let e = plan(Some(&one), &namespaces(r#"[{"type":"network"}]"#), true).unwrap_err();
        assert!(e.message().contains("needs root"), "{}", e.message());
        // Nothing asked, nothing needed.
        assert!(plan(None, &namespaces("[]"), true).unwrap().is_empty());
        assert!(plan(Some(&devices("{}")), &namespaces("[]"), true).unwrap().is_empty());
    }
}
