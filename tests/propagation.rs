//! Mount propagation between the container and the host. A mount the
//! container makes reaches the host only through a bind the config asks to
//! share both ways (`rshared` with `rootfsPropagation` shared, what
//! Kubernetes' Bidirectional sets), as with runc, and never from a container
//! with a user namespace; nothing husk binds for its own ends (the notify
//! directory, idmapped binds, the cgroup tmpfs) shares anything with the
//! host. "The host" in these tests is a throw-away private mount namespace
//! in which the bind's source is a shared mount: the real host's table is
//! never touched.

mod common;

use common::*;
use serde_json::json;
use std::path::{Path, PathBuf};

/// A bundle whose program mounts a tmpfs at `target` (CAP_SYS_ADMIN, no
/// seccomp filter), says so in /data/done and waits, with the host
/// directory `src` (made, holding `sub`) bound at /data with `options`.
fn mounting_bundle(name: &str, options: &[&str], target: &str) -> (Bundle, PathBuf) {
    let mut b = Bundle::new(name);
    let src = b.dir.join("src");
    std::fs::create_dir_all(src.join("sub")).unwrap();
    std::fs::create_dir_all(b.rootfs().join("data")).unwrap();
    b.config["linux"].as_object_mut().unwrap().remove("seccomp");
    let caps = json!(["CAP_SYS_ADMIN"]);
    b.config["process"]["capabilities"] = json!({"bounding": caps, "effective": caps, "permitted": caps});
    b.config["mounts"]
        .as_array_mut()
        .unwrap()
        .push(json!({"destination": "/data", "type": "bind", "source": src, "options": options}));
    // The container's root may write there in a user namespace too.
    std::fs::set_permissions(&src, std::os::unix::fs::PermissionsExt::from_mode(0o777)).unwrap();
    b.script(&format!(
        "mount -t tmpfs from-the-container {target} && echo mounted > /data/done; sleep 60"
    ));
    (b, src)
}

/// Runs shell `script` as root in a private mount namespace, the throw-away
/// host, and asserts that it succeeded.
fn in_a_throwaway_host(b: &Bundle, script: &str) -> std::process::Output {
    let mut cmd = std::process::Command::new("unshare");
    cmd.args(["-m", "--propagation", "private", "sh", "-c", script]);
    b.tag(&mut cmd);
    let o = run_with_timeout(&mut cmd, COMMAND_TIMEOUT);
    assert_ok(&o);
    o
}

/// Runs container `c` of `b` in a throw-away host where `shared` is a shared
/// mount (after `prepare`, a shell line run there first; `start` in the
/// background: with a NOTIFY_SOCKET it waits for READY=1), and returns what
/// the container said once it had mounted, and that host's mountinfo lines
/// of tmpfs mounts named "from-the-container" seen while it runs (husk's
/// removal of the container's directories would take some away after).
fn run_in_a_host_sharing(b: &Bundle, shared: &Path, prepare: &str) -> (String, Vec<String>) {
    let done = b.dir.join("src/done");
    let script = format!(
        "set -e; mount --bind {shared} {shared}; mount --make-shared {shared}; {prepare}; \
         {husk} --root {root} create --bundle {bundle} c </dev/null >/dev/null; \
         {husk} --root {root} start c & \
         i=0; while [ ! -e {done} ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done; \
         cat {done} 2>/dev/null || true; echo ---; \
         grep ' from-the-container ' /proc/self/mountinfo || true; \
         {husk} --root {root} delete -f c; wait",
        shared = shared.display(),
        done = done.display(),
        husk = HUSK,
        root = b.root.display(),
        bundle = b.dir.display()
    );
    let o = in_a_throwaway_host(b, &script);
    let out = stdout(&o);
    let (container, host) = out.split_once("---\n").unwrap_or_else(|| panic!("{out}"));
    b.assert_gone("c");
    (container.to_string(), host.lines().map(String::from).collect())
}

/// Runs `b` as [`run_in_a_host_sharing`] does and asserts that its program
/// mounted, and that nothing of it reached the host.
#[track_caller]
fn assert_kept_from_the_host(b: &Bundle, shared: &Path, prepare: &str, what: &str) {
    let (container, host) = run_in_a_host_sharing(b, shared, prepare);
    assert_eq!(container, "mounted\n");
    assert!(host.is_empty(), "{what} reached the host: {host:?}");
}

#[test]
fn a_bind_shared_both_ways_carries_the_containers_mounts_to_the_host() {
    let (mut b, src) = mounting_bundle("bidirectional", &["rbind", "rshared"], "/data/sub");
    b.config["linux"]["rootfsPropagation"] = json!("rshared");
    b.save();
    let (container, host) = run_in_a_host_sharing(&b, &src, "true");
    assert_eq!(container, "mounted\n");
    let at = format!(" {}/sub ", src.display());
    assert!(
        host.len() == 1 && host[0].contains(&at),
        "the host has the container's mount at {at}: {host:?}"
    );
}

#[test]
fn a_shared_bind_under_a_slave_root_keeps_the_containers_mounts() {
    // runc's semantics: without rootfsPropagation shared the root is rslave,
    // and a bind's rshared makes it shared among the container's mounts only.
    let (b, src) = mounting_bundle("shared-slave-root", &["rbind", "rshared"], "/data/sub");
    assert_kept_from_the_host(&b, &src, "true", "a container's mount");
}

#[test]
fn a_container_with_a_user_namespace_shares_nothing_with_the_host() {
    // Its root does not own the host's mount namespace: the kernel makes
    // the copies of shared mounts slaves for a namespace such a root owns,
    // and husk hands it no mount that is the host's peer.
    let (mut b, src) = mounting_bundle("bidirectional-userns", &["rbind", "rshared"], "/data/sub");
    b.config["linux"]["rootfsPropagation"] = json!("rshared");
    b.with_user_namespace(100000, 100000);
    b.save();
    assert_kept_from_the_host(&b, &src, "true", "a user namespace's mount");
}

#[test]
fn an_idmapped_bind_made_before_the_clone_shares_nothing_with_the_host() {
    // husk clones an idmapped bind's source in the host's mount namespace,
    // before the container's exists: that clone must not stay the host's peer.
    let idmap = json!([{"containerID": 0, "hostID": 0, "size": 65536}]);
    let (mut b, src) = mounting_bundle("idmapped-slave", &["rbind", "idmap"], "/data/sub");
    let mounts = b.config["mounts"].as_array_mut().unwrap();
    let data = mounts.last_mut().unwrap();
    data["uidMappings"] = idmap.clone();
    data["gidMappings"] = idmap;
    b.save();
    assert_kept_from_the_host(&b, &src, "true", "a mount on an idmapped bind");
}

#[test]
fn the_cgroup_tmpfs_made_before_the_clone_shares_nothing_with_the_host() {
    // On a pure v1 host without a cgroup namespace, `create` builds the
    // cgroup tmpfs from binds of the host's hierarchies: where those are
    // shared (systemd's hosts), the binds must not stay the host's peers.
    let (mut b, src) = mounting_bundle("cgroup-tree-slave", &["rbind"], "/sys/fs/cgroup/memory");
    b.without_namespace("cgroup");
    b.save();
    let prepare = "umount /sys/fs/cgroup/unified 2>/dev/null || true; mount --make-shared /sys/fs/cgroup/memory";
    assert_kept_from_the_host(&b, &src, prepare, "a mount on the cgroup tmpfs");
}

#[test]
fn the_notify_directory_bound_before_the_clone_shares_nothing_with_the_host() {
    // For a container with a user namespace husk clones the NOTIFY_SOCKET
    // directory (under its state root) in the host's mount namespace; the
    // container's root may mount on what it gets.
    let (mut b, _) = mounting_bundle("notify-slave", &["rbind"], "\"$(dirname $NOTIFY_SOCKET)\"");
    b.with_user_namespace(100000, 100000);
    b.save();
    std::fs::create_dir_all(&b.root).unwrap();
    let host_socket = b.dir.join("notify.sock");
    // Where the directory is bound: the rootfs is the host root's.
    std::fs::create_dir_all(b.rootfs().join(b.dir.strip_prefix("/").unwrap())).unwrap();
    let _socket = std::os::unix::net::UnixDatagram::bind(&host_socket).unwrap();
    let prepare = format!("export NOTIFY_SOCKET={}", host_socket.display());
    assert_kept_from_the_host(&b, &b.root, &prepare, "a mount on the notify directory");
}

/// Creates container `c` of `b` in a throw-away host where `shared` is a
/// shared mount (after `prepare`, a shell line run there first), expecting
/// it to fail: returns husk's error and that host's mountinfo lines that
/// name the bundle (nothing of the container's).
fn refused_in_a_host_sharing(b: &Bundle, shared: &Path, prepare: &str) -> (String, Vec<String>) {
    let script = format!(
        "mount --bind {shared} {shared} && mount --make-shared {shared} || exit 1; {prepare}; \
         {husk} --root {root} create --bundle {bundle} c </dev/null >/dev/null 2>{bundle}/error && exit 2; \
         grep -F '{bundle}' /proc/self/mountinfo | grep -v ' {shared} {shared} ' || true",
        shared = shared.display(),
        husk = HUSK,
        root = b.root.display(),
        bundle = b.dir.display()
    );
    let o = in_a_throwaway_host(b, &script);
    b.assert_gone("c");
    let error = std::fs::read_to_string(b.dir.join("error")).unwrap();
    (error, stdout(&o).lines().map(String::from).collect())
}

/// A bind shared both ways listed first, then an image whose /dev leads
/// into it: husk's own mounts (the /dev tmpfs, devpts, shm, mqueue) would
/// land in the bind and stay in the host's table (review 57b F1).
fn image_dev_into_a_shared_bind(name: &str, bind_first: bool) -> (Bundle, PathBuf) {
    let (mut b, src) = mounting_bundle(name, &["rbind", "rshared"], "/data/sub");
    b.config["linux"]["rootfsPropagation"] = json!("rshared");
    let mounts = b.config["mounts"].as_array_mut().unwrap();
    if bind_first {
        let data = mounts.pop().unwrap();
        mounts.insert(0, data);
    }
    b.save();
    std::fs::create_dir_all(src.join("dev")).unwrap();
    std::fs::remove_dir(b.rootfs().join("dev")).unwrap();
    std::os::unix::fs::symlink("/data/dev", b.rootfs().join("dev")).unwrap();
    (b, src)
}

#[test]
fn an_image_cannot_lead_husks_mounts_into_a_bind_shared_with_the_host() {
    let (b, src) = image_dev_into_a_shared_bind("dev-into-shared", true);
    let (error, host) = refused_in_a_host_sharing(&b, &src, "true");
    assert!(
        error.contains("] /dev: resolves into mounts[0] /data, a bind shared with the host"),
        "{error}"
    );
    assert_eq!(error.lines().count(), 1, "{error}");
    assert!(host.is_empty(), "the host got the container's mounts: {host:?}");
    assert_eq!(std::fs::read_dir(src.join("dev")).unwrap().count(), 0);
}

#[test]
fn an_image_cannot_lead_husks_device_nodes_into_a_bind_shared_with_the_host() {
    // The bind last: the /dev tmpfs went where /data/dev was in the rootfs,
    // under the bind; the nodes would be made in the host's directory.
    let (b, src) = image_dev_into_a_shared_bind("devnodes-into-shared", false);
    let (error, host) = refused_in_a_host_sharing(&b, &src, "true");
    assert!(
        error.contains("create device /dev/null: resolves into mounts[")
            && error.contains("] /data, a bind shared with the host"),
        "{error}"
    );
    assert!(host.is_empty(), "the host got the container's mounts: {host:?}");
    assert_eq!(std::fs::read_dir(src.join("dev")).unwrap().count(), 0);
}

#[test]
fn a_masked_directory_shares_nothing_with_one_in_a_shared_bind() {
    // The masked directories share one tmpfs, the first's bound over the
    // others: a bind of a shared mount would have joined its peer group,
    // here the host's (review 68 M1).
    let (mut b, src) = mounting_bundle("masked-in-shared", &["rbind", "rshared"], "/opt/masked");
    b.config["linux"]["rootfsPropagation"] = json!("rshared");
    std::fs::create_dir_all(b.rootfs().join("opt/masked")).unwrap();
    b.config["linux"]["maskedPaths"] = json!(["/data/sub", "/opt/masked"]);
    b.save();
    assert_kept_from_the_host(&b, &src, "true", "a mount over a masked directory");
}

#[test]
fn a_mount_the_config_puts_inside_a_shared_bind_reaches_the_host() {
    // The config's own choice, as with runc: not refused.
    let (mut b, src) = mounting_bundle("nested-in-shared", &["rbind", "rshared"], "/data/sub");
    b.config["linux"]["rootfsPropagation"] = json!("rshared");
    std::fs::create_dir_all(src.join("cache")).unwrap();
    b.config["mounts"]
        .as_array_mut()
        .unwrap()
        .push(json!({"destination": "/data/cache", "type": "tmpfs", "source": "from-the-container"}));
    b.save();
    let (container, host) = run_in_a_host_sharing(&b, &src, "true");
    assert_eq!(container, "mounted\n");
    assert_eq!(
        host.len(),
        2,
        "the container's two mounts in the bind reach the host: {host:?}"
    );
}

#[test]
fn a_bind_at_dev_that_the_image_leads_into_a_shared_bind_is_refused() {
    // /dev/console would be bound there once the root is switched (review
    // 57c F1); the nodes are not made in a bind at /dev, so /dev itself is checked.
    let (mut b, src) = mounting_bundle("devbind-into-shared", &["rbind", "rshared"], "/data/sub");
    b.config["linux"]["rootfsPropagation"] = json!("rshared");
    let other = b.dir.join("other");
    std::fs::create_dir_all(&other).unwrap();
    let mounts = b.config["mounts"].as_array_mut().unwrap();
    mounts.retain(|m| !m["destination"].as_str().unwrap().starts_with("/dev"));
    let data = mounts.pop().unwrap();
    mounts.insert(
        0,
        json!({"destination": "/dev", "type": "bind", "source": other, "options": ["rbind"]}),
    );
    mounts.insert(1, data);
    b.save();
    std::fs::remove_dir(b.rootfs().join("dev")).unwrap();
    std::os::unix::fs::symlink("/data", b.rootfs().join("dev")).unwrap();
    let (error, host) = refused_in_a_host_sharing(&b, &src, "true");
    assert!(
        error.contains("/dev: resolves into mounts[1] /data, a bind shared with the host"),
        "{error}"
    );
    assert!(host.is_empty(), "the host got the container's mounts: {host:?}");
}

#[test]
fn a_cwd_that_the_image_leads_into_a_shared_bind_is_refused() {
    let (mut b, src) = mounting_bundle("cwd-into-shared", &["rbind", "rshared"], "/data/sub");
    b.config["linux"]["rootfsPropagation"] = json!("rshared");
    b.config["process"]["cwd"] = json!("/work/a");
    b.save();
    std::os::unix::fs::symlink("/data/w", b.rootfs().join("work")).unwrap();
    let (error, host) = refused_in_a_host_sharing(&b, &src, "true");
    assert!(
        error.contains("process.cwd /work/a: resolves into mounts[") && error.contains("] /data, a bind shared"),
        "{error}"
    );
    assert!(host.is_empty(), "the host got the container's mounts: {host:?}");
    assert!(!src.join("w").exists(), "the cwd was made in the host's directory");
}

#[test]
fn an_existing_cwd_the_image_leads_into_a_shared_bind_is_entered() {
    // Nothing is made or mounted there: as runc (review 58b F3).
    let (mut b, src) = mounting_bundle("cwd-existing-in-shared", &["rbind", "rshared"], "/data/sub");
    b.config["linux"]["rootfsPropagation"] = json!("rshared");
    b.config["process"]["cwd"] = json!("/work");
    b.save();
    std::os::unix::fs::symlink("/data/sub", b.rootfs().join("work")).unwrap();
    let (container, host) = run_in_a_host_sharing(&b, &src, "true");
    assert_eq!(container, "mounted\n");
    assert_eq!(
        host.len(),
        1,
        "the container's mount in the bind reaches the host: {host:?}"
    );
}

#[test]
fn nothing_is_made_in_a_shared_bind_where_the_image_leads() {
    // Mount targets missing in the image are made on the way to the mount:
    // never in the host's directory, where husk refuses to mount (review 57c F3).
    for (link, mount) in [
        (
            "mnt",
            json!({"destination": "/mnt/x/y", "type": "tmpfs", "source": "tmpfs"}),
        ),
        (
            "opt",
            json!({"destination": "/opt/f", "type": "bind", "source": "/etc/hostname", "options": ["bind"]}),
        ),
        (
            "srv",
            json!({"destination": "/srv/l", "type": "bind", "source": "a symlink", "options": ["bind", "copy-symlink"]}),
        ),
    ] {
        let (mut b, src) = mounting_bundle(&format!("made-in-shared-{link}"), &["rbind", "rshared"], "/data/sub");
        b.config["linux"]["rootfsPropagation"] = json!("rshared");
        let mut mount = mount;
        if mount["source"] == "a symlink" {
            let symlink = b.dir.join("symlink");
            std::os::unix::fs::symlink("/somewhere", &symlink).unwrap();
            mount["source"] = json!(symlink);
        }
        b.config["mounts"].as_array_mut().unwrap().push(mount);
        b.save();
        std::os::unix::fs::symlink(format!("/data/{link}"), b.rootfs().join(link)).unwrap();
        let (error, host) = refused_in_a_host_sharing(&b, &src, "true");
        assert!(
            error.contains(&format!(" /{link}/"))
                && error.contains(": resolves into mounts[")
                && error.contains("] /data, a bind shared"),
            "{error}"
        );
        assert!(host.is_empty(), "the host got the container's mounts: {host:?}");
        let made: Vec<_> = std::fs::read_dir(&src)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(made, ["sub"], "made in the host's directory");
    }
}

#[test]
fn a_dev_husk_cannot_follow_is_refused_beside_a_shared_bind() {
    // A magic link: husk's walk stops there, the kernel's (for /dev/console,
    // once the root is switched) would go on into the shared bind (review 57d F1).
    let (mut b, src) = mounting_bundle("devmagic-into-shared", &["rbind", "rshared"], "/data/sub");
    b.config["linux"]["rootfsPropagation"] = json!("rshared");
    let other = b.dir.join("other");
    std::fs::create_dir_all(&other).unwrap();
    let mounts = b.config["mounts"].as_array_mut().unwrap();
    mounts.retain(|m| !m["destination"].as_str().unwrap().starts_with("/dev"));
    mounts.insert(
        0,
        json!({"destination": "/dev", "type": "bind", "source": other, "options": ["rbind"]}),
    );
    b.save();
    std::fs::remove_dir(b.rootfs().join("dev")).unwrap();
    std::os::unix::fs::symlink("/proc/self/root/data", b.rootfs().join("dev")).unwrap();
    let (error, host) = refused_in_a_host_sharing(&b, &src, "true");
    assert!(error.contains("/dev, with a bind shared with the host"), "{error}");
    assert_eq!(error.lines().count(), 1, "{error}");
    assert!(host.is_empty(), "the host got the container's mounts: {host:?}");
}

#[test]
fn the_notify_directory_is_never_bound_in_a_shared_bind() {
    // Bound there, husk's notify directory would cover the host's own (the
    // host's /run/systemd, for a container sharing /run) and stay after
    // `delete` (review 57d F3).
    let (mut b, src) = mounting_bundle("notify-into-shared", &["rbind", "rshared"], "/data/sub");
    b.config["linux"]["rootfsPropagation"] = json!("rshared");
    b.config["process"]["env"]
        .as_array_mut()
        .unwrap()
        .push(json!("NOTIFY_SOCKET=/data/run/notify.sock"));
    b.save();
    std::fs::create_dir_all(src.join("run")).unwrap();
    let host_socket = b.dir.join("notify.sock");
    let _socket = std::os::unix::net::UnixDatagram::bind(&host_socket).unwrap();
    let prepare = format!("export NOTIFY_SOCKET={}", host_socket.display());
    let (error, host) = refused_in_a_host_sharing(&b, &src, &prepare);
    assert!(
        error.contains("NOTIFY_SOCKET /data/run/notify.sock: its directory lies in mounts[")
            && error.contains("] /data, a bind shared with the host"),
        "{error}"
    );
    assert_eq!(error.lines().count(), 1, "{error}");
    assert!(host.is_empty(), "the host got the container's mounts: {host:?}");
    assert_eq!(std::fs::read_dir(src.join("run")).unwrap().count(), 0);
}

#[test]
fn a_terminal_is_refused_with_dev_console_in_a_shared_bind() {
    // husk binds the pty on /dev/console: in a bind of the host's /dev shared
    // both ways, over the host's console, for good (review 58 F2).
    for destination in ["/dev", "/dev/console"] {
        let mut b = Bundle::new("console-in-shared");
        let src = b.dir.join("devsrc");
        std::fs::create_dir_all(&src).unwrap();
        b.config["linux"]["rootfsPropagation"] = json!("rshared");
        b.config["process"]["terminal"] = json!(true);
        let (source, options) = match destination {
            "/dev" => (src.clone(), json!(["rbind", "rshared"])),
            _ => (src.join("console"), json!(["bind", "rshared"])),
        };
        std::fs::write(src.join("console"), "").unwrap();
        b.config["mounts"]
            .as_array_mut()
            .unwrap()
            .push(json!({"destination": destination, "type": "bind", "source": source, "options": options}));
        b.save();
        let (error, host) = refused_in_a_host_sharing(&b, &src, "true");
        assert!(
            error.contains("process.terminal: /dev/console lies in mounts[")
                && error.contains(&format!("] {destination}, a bind shared with the host")),
            "{error}"
        );
        assert_eq!(error.lines().count(), 1, "{error}");
        assert!(host.is_empty(), "the host got the container's mounts: {host:?}");
    }
}
