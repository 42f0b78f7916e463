//! linux.netDevices: host network devices moved into the container's network
//! namespace (veth pairs made for each test; their host ends are removed
//! after it, and a named namespace is deleted).

mod common;

use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

use common::*;
use serde_json::json;

static N: AtomicUsize = AtomicUsize::new(0);

/// A unique device name of at most 15 bytes.
fn device_name(tag: char) -> String {
    let n = N.fetch_add(1, Ordering::SeqCst);
    format!("hk{}{tag}{n}", std::process::id() % 100_000)
}

#[track_caller]
fn ip(args: &[&str]) -> String {
    let o = run_with_timeout(Command::new("ip").args(args), COMMAND_TIMEOUT);
    assert_ok(&o);
    stdout(&o)
}

fn ip_succeeds(args: &[&str]) -> bool {
    run_with_timeout(Command::new("ip").args(args), COMMAND_TIMEOUT)
        .status
        .success()
}

/// A veth pair on the host: `name` to move, its peer left behind.
struct Veth {
    name: String,
    peer: String,
}

impl Veth {
    fn new(tag: char) -> Veth {
        let (name, peer) = (device_name(tag), device_name('p'));
        ip(&["link", "add", &name, "type", "veth", "peer", "name", &peer]);
        Veth { name, peer }
    }
}

impl Drop for Veth {
    fn drop(&mut self) {
        // Deleting either end deletes both; a moved end goes with its namespace.
        for end in [&self.peer, &self.name] {
            let _ = run_with_timeout(Command::new("ip").args(["link", "del", end]), COMMAND_TIMEOUT);
        }
    }
}

/// A device of the host made by the test, deleted after it.
struct Device(String);

impl Drop for Device {
    fn drop(&mut self) {
        let _ = run_with_timeout(Command::new("ip").args(["link", "del", &self.0]), COMMAND_TIMEOUT);
    }
}

/// A named network namespace (/run/netns/NAME), deleted after the test.
struct NetNs(String);

impl NetNs {
    fn new() -> NetNs {
        let name = device_name('n');
        ip(&["netns", "add", &name]);
        NetNs(name)
    }

    fn path(&self) -> String {
        format!("/run/netns/{}", self.0)
    }
}

impl Drop for NetNs {
    fn drop(&mut self) {
        let _ = run_with_timeout(Command::new("ip").args(["netns", "del", &self.0]), COMMAND_TIMEOUT);
    }
}

fn on_host(device: &str) -> bool {
    ip_succeeds(&["link", "show", device])
}

fn join_network_namespace(b: &mut Bundle, path: &str) {
    let ns = b.config["linux"]["namespaces"].as_array_mut().unwrap();
    ns.retain(|n| n["type"] != "network");
    ns.push(json!({"type": "network", "path": path}));
}

#[test]
fn devices_move_in_renamed_with_their_global_addresses_and_up_before_the_sysctls() {
    let a = Veth::new('a');
    let t = Veth::new('t');
    ip(&["addr", "add", "10.201.7.2/24", "dev", &a.name]);
    ip(&["addr", "add", "fd00:201::2/64", "dev", &a.name, "nodad"]);
    // Neither moves: one of link scope, one with a lifetime (not permanent).
    ip(&["addr", "add", "10.202.7.2/24", "scope", "link", "dev", &a.name]);
    ip(&[
        "addr",
        "add",
        "10.203.7.2/24",
        "dev",
        &a.name,
        "valid_lft",
        "300",
        "preferred_lft",
        "300",
    ]);
    let mut b = Bundle::new("netdev-move");
    b.config["linux"]["netDevices"] = json!({ &a.name: {"name": "ceth0"}, &t.name: {"name": "c%d"} });
    b.config["linux"]["sysctl"] = json!({"net.ipv4.conf.ceth0.forwarding": "1"});
    let out = b.output_of(
        "ip -o link show ceth0; ip -o addr show dev ceth0; ip -o link show c0; \
         cat /proc/sys/net/ipv4/conf/ceth0/forwarding; ls /sys/class/net",
    );
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines[0].contains(": ceth0@") && lines[0].contains(",UP"), "{out}");
    let addresses = lines.iter().filter(|l| l.contains(" inet")).count();
    assert!(
        out.contains("inet 10.201.7.2/24 ") && out.contains("inet6 fd00:201::2/64 "),
        "{out}"
    );
    assert!(!out.contains("10.202.") && !out.contains("10.203."), "{out}");
    // The two moved, and the kernel's link-local IPv6 address if it made one.
    assert!((2..=3).contains(&addresses), "{out}");
    assert!(out.contains(": c0@"), "the template was filled: {out}");
    assert_eq!(lines[lines.len() - 4], "1", "the sysctl named the moved device: {out}");
    let inside: Vec<&str> = lines[lines.len() - 3..].to_vec();
    assert_eq!(inside, ["c0", "ceth0", "lo"]);
    assert!(!on_host(&a.name) && !on_host(&t.name), "the devices left the host");
}

/// Every device is found and checked before any moves: a refusal at a later
/// one used to lose those moved before it (review 51, L1).
#[test]
fn a_device_the_host_does_not_have_fails_create_before_any_device_moves() {
    let present = Veth::new('q');
    let missing = format!("{}z", present.name);
    let mut b = Bundle::new("netdev-missing");
    b.config["linux"]["netDevices"] = json!({ &present.name: {"name": "first0"}, &missing: {} });
    b.save();
    b.create_fails(
        "x",
        &format!("linux.netDevices[\"{missing}\"]: the host has no network device {missing}"),
    );
    assert!(on_host(&present.name), "the device found first stayed on the host");

    // One device under two names (its altname).
    let altname = format!("{}alt", present.name);
    ip(&["link", "property", "add", "dev", &present.name, "altname", &altname]);
    b.config["linux"]["netDevices"] = json!({ &present.name: {}, &altname: {"name": "second0"} });
    b.save();
    b.create_fails("x", "the same device as linux.netDevices");
    assert!(on_host(&present.name));
}

/// A create that fails once the devices are in (here a prestart hook) gives
/// them back to the host from the namespace it made, with their index,
/// addresses and up state: a veth would otherwise die with the container's
/// namespace. The key may be an altname: the device comes back under its
/// name (review 51b, M1).
#[test]
fn a_create_that_fails_after_the_move_gives_the_devices_back() {
    let v = Veth::new('r');
    let w = Veth::new('s');
    ip(&["addr", "add", "10.205.7.2/24", "dev", &v.name]);
    ip(&["link", "set", &v.name, "up"]);
    let altname = format!("{}alt", w.name);
    ip(&["link", "property", "add", "dev", &w.name, "altname", &altname]);
    let before = ip(&["-o", "link", "show", &v.name]);
    let index = before.split(':').next().unwrap().to_string();
    let mut b = Bundle::new("netdev-back");
    b.config["linux"]["netDevices"] = json!({ &v.name: {"name": "gone0"}, &altname: {} });
    b.config["hooks"] = json!({"prestart": [{"path": "/bin/sh", "args": ["sh", "-c", "exit 7"]}]});
    b.save();
    b.create_fails("x", "prestart hook /bin/sh: exit status 7");
    let after = ip(&["-o", "link", "show", &v.name]);
    assert!(
        after.starts_with(&format!("{index}: {}@", v.name)),
        "{before} then {after}"
    );
    assert!(after.contains(",UP"), "set up again: {after}");
    let addresses = ip(&["-o", "addr", "show", "dev", &v.name]);
    assert!(addresses.contains("inet 10.205.7.2/24 "), "{addresses}");
    assert!(
        on_host(&w.name),
        "the device named by its altname is back under its name"
    );
}

/// An init stopped once the devices are in (by a createRuntime hook here;
/// a host process with its uid could) held `create`, and the devices with
/// it, for ever (review 51c, L1): past the setup bound `create` fails and
/// gives them back.
#[test]
fn a_create_whose_init_makes_no_progress_gives_the_devices_back() {
    let v = Veth::new('t');
    let mut b = Bundle::new("netdev-stalled");
    b.config["linux"]["netDevices"] = json!({ &v.name: {} });
    b.config["hooks"] = hook_that_stops_the_init();
    b.save();
    let mut cmd = b.husk_command(&["create", "--bundle", b.dir.to_str().unwrap(), "x"]);
    cmd.env("HUSK_SETUP_TIMEOUT", "2");
    let o = run_with_timeout(&mut cmd, std::time::Duration::from_secs(30));
    assert!(!o.status.success(), "create of a stopped init succeeded");
    assert!(
        stderr(&o).contains("container init made no progress within 2s"),
        "{}",
        stderr(&o)
    );
    b.assert_gone("x");
    assert!(on_host(&v.name), "the device is back on the host");
}

/// A create ended by SIGTERM once the devices were in died, and the
/// namespace took them with it (a veth is deleted so; review 51b, L2): it
/// now gives them back, as a failed create does, then dies of the signal.
#[test]
fn a_create_ended_by_a_signal_gives_the_devices_back() {
    use std::os::unix::process::ExitStatusExt;
    let v = Veth::new('s');
    let mut b = Bundle::new("netdev-ended");
    let marker = b.dir.join("marker");
    b.config["linux"]["netDevices"] = json!({ &v.name: {} });
    b.config["hooks"] = hook_that_stops_the_init_and_marks(&marker);
    b.save();
    let mut create = b.husk_command(&["create", "--bundle", b.dir.to_str().unwrap(), "x"]);
    create
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    let mut create = create.spawn().unwrap();
    wait_for_file(&marker, std::time::Duration::from_secs(20));
    assert!(!on_host(&v.name), "the device was moved in");
    send_signal(&create, nix::sys::signal::Signal::SIGTERM);
    let status = wait_within(&mut create, std::time::Duration::from_secs(15), "create after SIGTERM");
    assert_eq!(status.signal(), Some(libc::SIGTERM), "{status}");
    b.assert_gone("x");
    assert!(on_host(&v.name), "the device is back on the host");
}

/// From a joined namespace nothing is moved back: others there may have
/// put a device of theirs at the moved one's index, which would come to the
/// host as the host's (review 51b, H1). Its owner holds what it was given.
#[test]
fn a_create_that_fails_leaves_devices_in_a_joined_namespace_to_its_owner() {
    let ns = NetNs::new();
    let v = Veth::new('j');
    let mut b = Bundle::new("netdev-joined-fail");
    join_network_namespace(&mut b, &ns.path());
    b.config["linux"]["netDevices"] = json!({ &v.name: {"name": "kept0"} });
    b.config["hooks"] = json!({"prestart": [{"path": "/bin/sh", "args": ["sh", "-c", "exit 7"]}]});
    b.save();
    let o = b.create("x");
    assert!(!o.status.success());
    let err = stderr(&o);
    assert!(err.contains("stays in the joined network namespace"), "{err}");
    assert!(err.contains("prestart hook /bin/sh: exit status 7"), "{err}");
    b.assert_gone("x");
    assert!(!on_host(&v.name));
    assert!(ip_succeeds(&["-n", &ns.0, "link", "show", "kept0"]));
}

#[test]
fn a_name_taken_in_a_joined_namespace_is_refused_before_the_device_leaves_the_host() {
    let ns = NetNs::new();
    ip(&[
        "-n", &ns.0, "link", "add", "taken0", "type", "veth", "peer", "name", "taken1",
    ]);
    let c = Veth::new('c');
    let mut b = Bundle::new("netdev-joined");
    join_network_namespace(&mut b, &ns.path());
    b.config["linux"]["netDevices"] = json!({ &c.name: {"name": "taken0"} });
    b.save();
    b.create_fails(
        "x",
        "the container's network namespace already has a device named taken0",
    );
    assert!(on_host(&c.name), "the device stayed on the host");

    // Moved into the joined namespace, it stays there when the container ends.
    b.config["linux"]["netDevices"] = json!({ &c.name: {"name": "inner0"} });
    let out = b.output_of("ip -o link show inner0");
    assert!(out.contains(": inner0@"), "{out}");
    assert!(!on_host(&c.name));
    assert!(
        ip_succeeds(&["-n", &ns.0, "link", "show", "inner0"]),
        "it stays in the namespace"
    );
}

#[test]
fn devices_move_into_a_container_with_a_user_namespace() {
    let u = Veth::new('u');
    ip(&["addr", "add", "10.204.7.2/24", "dev", &u.name]);
    let mut b = Bundle::new("netdev-userns");
    b.in_new_user_namespace(200000);
    b.config["linux"]["netDevices"] = json!({ &u.name: {"name": "eth0"} });
    let out = b.output_of("ip -o addr show dev eth0; head -1 /proc/self/uid_map");
    assert!(out.contains("inet 10.204.7.2/24 "), "{out}");
    assert!(out.contains("200000"), "{out}");
    assert!(!on_host(&u.name));
}

/// What the kernel would refuse only once a device has moved (its rename,
/// an altname it takes along, a device it keeps in its namespace) is
/// refused before any moves: out of a joined namespace nothing comes back
/// (review 51c, M1). A host name that the joined namespace has too is no
/// obstacle to a device given another name there.
#[test]
fn what_the_kernel_would_refuse_after_a_move_is_refused_before_any() {
    let ns = NetNs::new();
    let (a, c) = (Veth::new('a'), Veth::new('c'));
    let (a_alt, c_alt) = (format!("{}alt", a.name), format!("{}alt", c.name));
    ip(&["link", "property", "add", "dev", &a.name, "altname", &a_alt]);
    ip(&["link", "property", "add", "dev", &c.name, "altname", &c_alt]);
    ip(&[
        "-n", &ns.0, "link", "add", &c_alt, "type", "veth", "peer", "name", "zz0",
    ]);
    let bridge = Device(device_name('b'));
    ip(&["link", "add", &bridge.0, "type", "bridge"]);
    let mut b = Bundle::new("netdev-before-any");
    join_network_namespace(&mut b, &ns.path());
    for (devices, said) in [
        (json!({ &a.name: {"name": &a_alt} }), "is an altname the device has"),
        (
            json!({ &a.name: {"name": "in0"}, &c.name: {"name": &a_alt} }),
            "two devices would be named",
        ),
        (
            json!({ &a.name: {"name": "in0"}, &c.name: {"name": "in1"} }),
            &format!("already has a device named {c_alt}"),
        ),
        (json!({ &a.name: {"name": "in0"}, &bridge.0: {} }), "the kernel keeps"),
    ] {
        b.config["linux"]["netDevices"] = devices;
        b.save();
        b.create_fails("x", said);
        assert!(on_host(&a.name) && on_host(&c.name), "both devices stayed on the host");
    }
    drop(bridge);

    ip(&[
        "-n", &ns.0, "link", "add", &a.name, "type", "veth", "peer", "name", "zz1",
    ]);
    b.config["linux"]["netDevices"] = json!({ &a.name: {"name": "other0"} });
    let out = b.output_of("ip -o link show other0");
    assert!(out.contains(": other0@"), "{out}");
}

/// A container with a user namespace of its own joins a network namespace
/// that root made (`ip netns`, as a manager makes one), which belongs to
/// the host's user namespace: the new one has no right to enter it, so
/// husk enters it for the init to be born in, and returns to its own for
/// the rest (a createRuntime hook runs in the host's). An exec joins it
/// before the user namespace. Both were refused (review 61b F3).
#[test]
fn a_container_with_its_own_user_namespace_joins_a_network_namespace_of_the_host() {
    let netns = NetNs::new();
    let mut b = Bundle::new("userns-netns");
    b.with_user_namespace(200000, 200000);
    join_network_namespace(&mut b, &netns.path());
    // sysfs: only for the owner of the network namespace.
    b.config["mounts"]
        .as_array_mut()
        .unwrap()
        .retain(|m| !m["destination"].as_str().unwrap().starts_with("/sys"));
    let hook_saw = b.dir.join("hook-saw");
    let script = format!("readlink /proc/self/ns/net > {}", hook_saw.display());
    b.config["hooks"] = json!({"createRuntime": [{"path": "/bin/sh", "args": ["sh", "-c", script]}]});
    b.config["process"]["args"] = json!(["sleep", "30"]);
    b.save();
    assert_ok(&b.husk(&["run", "-d", "--bundle", b.dir.to_str().unwrap(), "c"]));
    let pid = b.state("c")["pid"].as_i64().unwrap();
    let link = |path: String| std::fs::read_link(path).unwrap().display().to_string();
    let joined = format!(
        "net:[{}]",
        std::os::unix::fs::MetadataExt::ino(&std::fs::metadata(netns.path()).unwrap())
    );
    assert_eq!(link(format!("/proc/{pid}/ns/net")), joined);
    assert_ne!(link(format!("/proc/{pid}/ns/user")), link("/proc/self/ns/user".into()));
    let host = link("/proc/self/ns/net".into());
    assert_eq!(
        std::fs::read_to_string(&hook_saw).unwrap().trim(),
        host,
        "the hook ran in the host's network namespace"
    );
    let o = b.husk(&[
        "exec",
        "c",
        "sh",
        "-c",
        "readlink /proc/self/ns/net; cat /proc/self/uid_map",
    ]);
    assert_ok(&o);
    let out = stdout(&o);
    let words: Vec<&str> = out.split_whitespace().collect();
    assert_eq!(words, [joined.as_str(), "0", "200000", "65536"]);
    assert_ok(&b.husk(&["delete", "-f", "c"]));
    b.assert_gone("c");
}
