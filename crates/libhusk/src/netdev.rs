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
use crate::sys::netlink::{Address, Link, Route};

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
    if namespaces.joined_path(libc::CLONE_NEWUSER).is_some() {
        // husk joins it before the clone, and so has no rights on the host's devices.
        bail!("linux.netDevices: moving network devices cannot be done with a user namespace joined by path");
    }
    let mut planned = Vec::new();
    for (host_name, device) in devices {
        if !is_valid_name(host_name, false) {
            bail!("linux.netDevices: {host_name:?} is not a valid network device name");
        }
        let name = device.name().as_deref().filter(|n| !n.is_empty()).unwrap_or(host_name);
        if !is_valid_name(name, true) {
            bail!("linux.netDevices[{host_name:?}].name: {name:?} is not a valid network device name");
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

/// Printable ASCII but `/`, `:` and space, 1 to 15 bytes, not `.`, `..`,
/// `all` or `default` (the kernel's dev_valid_name and its sysctl
/// directories; stricter: its other bytes, NUL or 0xA0, it cuts or
/// refuses only at the rename, after the move); `%` only as one `%d`, in
/// a template.
fn is_valid_name(name: &str, template_allowed: bool) -> bool {
    let percent_ok = match name.find('%') {
        None => true,
        Some(at) => template_allowed && name[at..].starts_with("%d") && !name[at + 1..].contains('%'),
    };
    !name.is_empty()
        && name.len() < IFNAMSIZ
        && ![".", "..", "all", "default"].contains(&name)
        && name.bytes().all(|b| b.is_ascii_graphic() && b != b'/' && b != b':')
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

/// Moves `devices` into `netns`: every device is found on the host and its
/// name and index checked in `netns` before any moves, and a failure on
/// the way (or `init_alive` saying no) moves back those already moved
/// (see [`Moved::move_back`]).
/// husk must be single-threaded (it enters the namespace for a moment, for
/// a socket there).
pub fn move_into(devices: &[NetDevicePlan], netns: &NetNamespace, init_alive: &dyn Fn() -> bool) -> Result<Moved> {
    let joined = matches!(netns, NetNamespace::Joined(_));
    let netns = netns.fd();
    let home: OwnedFd = std::fs::File::open("/proc/thread-self/ns/net")
        .context(|| "open husk's own network namespace".into())?
        .into();
    let mut host = Route::open().context(|| "linux.netDevices: netlink socket".into())?;
    let mut inside = Route::open_in(netns)
        .context(|| "linux.netDevices: netlink socket in the container's network namespace".into())?;
    let checked = check_all(devices, &mut host, &mut inside)?;
    let mut moved = Moved {
        host,
        inside,
        home,
        joined,
        devices: Vec::new(),
    };
    for device in checked {
        let result = if init_alive() {
            moved.move_one(device, netns)
        } else {
            Err(crate::error::Error::new(
                "linux.netDevices: the container's init ended while its network devices were moved",
            ))
        };
        if let Err(e) = result {
            moved.move_back();
            return Err(e);
        }
    }
    Ok(moved)
}

/// A device found on the host and checked against the container's
/// namespace, not moved yet.
struct Checked<'a> {
    plan: &'a NetDevicePlan,
    /// As found on the host: its index, its name (the key may be an
    /// altname) and whether it was up.
    host: Link,
    /// Its name in the container: as planned, but its own name when the
    /// plan names it by an altname of its (which it keeps there: the
    /// kernel renames no device to an altname it has).
    name: String,
    addresses: Vec<Address>,
    index: i32,
}

/// Every device found and checked, those with a plain name first (a
/// template then skips their names): found on the host, movable, given a
/// name no other (nor any altname of theirs, which go along) takes, and
/// no name or altname of it taken in the container's namespace.
fn check_all<'a>(devices: &'a [NetDevicePlan], host: &mut Route, inside: &mut Route) -> Result<Vec<Checked<'a>>> {
    let mut ordered: Vec<&NetDevicePlan> = devices.iter().collect();
    ordered.sort_by_key(|d| is_template(&d.name));
    let mut found: Vec<(&NetDevicePlan, Link, String)> = Vec::new();
    for d in ordered {
        let (link, name) = find_on_host(d, host)?;
        if let Some((same, ..)) = found.iter().find(|(_, l, _)| l.index == link.index) {
            bail!(
                "{}: the same device as linux.netDevices[\"{}\"]",
                what(d),
                same.host_name
            );
        }
        found.push((d, link, name));
    }
    let altnames: Vec<&String> = found.iter().flat_map(|(_, l, _)| &l.altnames).collect();
    for (i, (d, link, name)) in found.iter().enumerate() {
        let plain = !is_template(name);
        if plain && (found[..i].iter().any(|(_, _, n)| n == name) || altnames.contains(&name)) {
            bail!("linux.netDevices: two devices would be named \"{name}\" in the container (a name or an altname)");
        }
        let names = std::iter::once(name).filter(|_| plain).chain(&link.altnames);
        for taken in names {
            if inside.link_by_name(taken).context(|| what(d))?.is_some() {
                bail!(
                    "{}: the container's network namespace already has a device named {taken}",
                    what(d)
                );
            }
        }
    }
    let mut checked: Vec<Checked> = Vec::new();
    for (d, link, name) in found {
        let addresses = host
            .addresses(link.index)
            .context(|| format!("{}: read its addresses", what(d)))?
            .into_iter()
            .filter(Address::moves_with_device)
            .collect();
        let taken: Vec<i32> = checked.iter().map(|c| c.index).collect();
        let index = free_index(inside, link.index, &taken).context(|| what(d))?;
        checked.push(Checked {
            plan: d,
            host: link,
            name,
            addresses,
            index,
        });
    }
    Ok(checked)
}

fn what(d: &NetDevicePlan) -> String {
    format!("linux.netDevices[\"{}\"]", d.host_name)
}

/// The device on the host, and its name in the container: as planned, but
/// its own name when the plan names it by an altname (the kernel renames
/// no device to an altname it has, which goes along).
fn find_on_host(d: &NetDevicePlan, host: &mut Route) -> Result<(Link, String)> {
    let Some(link) = host.link_by_name(&d.host_name).context(|| what(d))? else {
        bail!("{}: the host has no network device {}", what(d), d.host_name);
    };
    if link.netns_immutable == Some(true) {
        bail!(
            "{}: the kernel keeps {} in its network namespace (a bridge, a loopback...)",
            what(d),
            link.name
        );
    }
    if d.name == d.host_name {
        let name = link.name.clone();
        return Ok((link, name));
    }
    if link.altnames.contains(&d.name) {
        bail!(
            "{}.name: {} is an altname the device has, and keeps in the container",
            what(d),
            d.name
        );
    }
    Ok((link, d.name.clone()))
}

/// The index the device gets in the container's namespace: its own where
/// that is free there (as the kernel would keep it), else the next free one.
/// Given explicitly, so that the device is found by it after the move,
/// whatever name a template gave it.
fn free_index(inside: &mut Route, wanted: i32, taken: &[i32]) -> Result<i32> {
    for index in (0..4096).map_while(|k| wanted.checked_add(k)) {
        if !taken.contains(&index) && inside.link_by_index(index)?.is_none() {
            return Ok(index);
        }
    }
    bail!("no free interface index from {wanted} in the container's network namespace")
}

/// Devices moved into a container's network namespace, and what it takes
/// to move them back: a create that fails after the move gives the host
/// its devices back from a namespace the container made (once it has
/// succeeded, nothing moves them back: the spec leaves them to the
/// namespace's end).
pub struct Moved {
    host: Route,
    /// Also keeps the namespace alive after the init is gone.
    inside: Route,
    /// husk's own network namespace.
    home: OwnedFd,
    /// Whether the container joined the namespace (not made it).
    joined: bool,
    devices: Vec<MovedDevice>,
}

struct MovedDevice {
    host: Link,
    index: i32,
    addresses: Vec<Address>,
}

impl Moved {
    fn move_one(&mut self, c: Checked, netns: BorrowedFd) -> Result<()> {
        let d = c.plan;
        let what = || format!("linux.netDevices[\"{}\"]", d.host_name);
        let moving = self.host.move_link(c.host.index, netns, Some(c.index), &c.name);
        if let Err(e) = moving {
            // The kernel moves a device, then renames it: a failed rename
            // (a name taken there meanwhile) leaves it moved, to move back.
            if !self.is_on_host(&c.host) {
                self.record(&c);
            }
            return Err(e).context(|| {
                format!(
                    "{}: move it into the container's network namespace as {}",
                    what(),
                    c.name
                )
            });
        }
        self.record(&c);
        for a in &c.addresses {
            self.inside
                .add_address(c.index, a)
                .context(|| format!("{}: add address {} in the container", what(), a.describe()))?;
        }
        self.inside
            .set_up(c.index)
            .context(|| format!("{}: set it up in the container", what()))?;
        crate::log::step(&format!("network device {} moved in as {}", d.host_name, c.name));
        Ok(())
    }

    fn record(&mut self, c: &Checked) {
        self.devices.push(MovedDevice {
            host: c.host.clone(),
            index: c.index,
            addresses: c.addresses.clone(),
        });
    }

    fn is_on_host(&mut self, host: &Link) -> bool {
        matches!(self.host.link_by_index(host.index), Ok(Some(link)) if link.name == host.name)
    }

    /// Moves every device back to the host, under its name and index there
    /// when they are still free, with its addresses, up if it was. Not out
    /// of a joined namespace: others there may have replaced a device by one
    /// of theirs at its index (review 51b, H1), which would then come to the
    /// host as the host's; its owner holds what it was given. Best effort:
    /// what fails is a warning.
    pub fn move_back(&mut self) {
        let devices = std::mem::take(&mut self.devices);
        for d in devices.into_iter().rev() {
            let said = format!("linux.netDevices[\"{}\"]", d.host.name);
            if self.joined {
                crate::log::warn(&format!(
                    "{said}: stays in the joined network namespace, whose owner holds it"
                ));
            } else if let Err(e) = self.move_back_one(&d) {
                crate::log::warn(&format!("{said}: could not move it back to the host: {e}"));
            }
        }
    }

    fn move_back_one(&mut self, d: &MovedDevice) -> Result<()> {
        let home = self.home.as_fd();
        let name = &d.host.name;
        let pinned = self.inside.move_link(d.index, home, Some(d.host.index), name);
        let host_index = match pinned {
            Ok(()) => d.host.index,
            // Its old index was taken on the host meanwhile.
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) => {
                self.inside
                    .move_link(d.index, home, None, name)
                    .context(|| "move".into())?;
                match self.host.link_by_name(name).context(|| "find it".into())? {
                    Some(link) => link.index,
                    None => bail!("it is back, but not as {name}"),
                }
            }
            Err(e) => return Err(e).context(|| "move".into()),
        };
        for a in &d.addresses {
            self.host
                .add_address(host_index, a)
                .context(|| format!("add address {}", a.describe()))?;
        }
        if d.host.up {
            self.host.set_up(host_index).context(|| "set it up".into())?;
        }
        Ok(())
    }
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
            // The kernel cuts at a NUL, takes 0xA0 (also inside UTF-8) for a
            // space, and keeps all and default for its sysctl directories.
            (r#"{"a\u0000zz":{}}"#, r#""a\0zz" is not a valid"#),
            (r#"{"eth0":{"name":"x\u00a0"}}"#, "is not a valid"),
            (r#"{"eth0":{"name":"\u00e0"}}"#, "is not a valid"),
            (r#"{"eth0":{"name":"all"}}"#, "is not a valid"),
            (r#"{"default":{}}"#, "is not a valid"),
            // Escaped in the message: it goes to a terminal.
            (r#"{"\u001b[31mRED":{}}"#, r#""\u{1b}[31mRED" is not a valid"#),
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
        let joined_user = namespaces(r#"[{"type":"network"},{"type":"user","path":"/proc/self/ns/user"}]"#);
        let e = plan(Some(&one), &joined_user, false).unwrap_err();
        assert!(e.message().contains("user namespace joined by path"), "{}", e.message());
        // Nothing asked, nothing needed.
        assert!(plan(None, &namespaces("[]"), true).unwrap().is_empty());
        assert!(plan(Some(&devices("{}")), &namespaces("[]"), true).unwrap().is_empty());
    }
}
