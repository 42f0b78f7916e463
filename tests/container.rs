//! What the process sees inside: hostname, user, cwd, env, mounts, namespaces,
//! devices and the root filesystem.

mod common;

use common::*;
use serde_json::{json, Value};

fn remove_namespace(b: &mut Bundle, kind: &str) {
    let ns = b.config["linux"]["namespaces"].as_array_mut().unwrap();
    ns.retain(|n| n["type"] != kind);
    b.save();
}

#[test]
fn hostname_domainname_user_cwd_env_umask() {
    let mut b = Bundle::new("process");
    b.config["hostname"] = json!("box1");
    b.config["domainname"] = json!("example.org");
    b.config["process"]["user"] = json!({"uid": 1000, "gid": 1001, "additionalGids": [5, 1002], "umask": 63});
    b.config["process"]["cwd"] = json!("/work/dir");
    b.config["process"]["env"] = json!(["PATH=/bin", "GREETING=hello world"]);
    b.save();
    let out =
        b.output_of("hostname; cat /proc/sys/kernel/domainname; id -u; id -g; id -G; pwd; echo \"$GREETING\"; umask");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines,
        [
            "box1",
            "example.org",
            "1000",
            "1001",
            "1001 5 1002",
            "/work/dir",
            "hello world",
            "0077"
        ]
    );
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    assert_ne!(host.trim(), "box1", "the host's hostname is untouched");
}

#[test]
fn program_is_found_in_the_containers_path() {
    let mut b = Bundle::new("pathlookup");
    std::fs::create_dir_all(b.rootfs().join("opt/tools")).unwrap();
    std::fs::write(b.rootfs().join("opt/tools/hello"), "#!/bin/sh\necho found-in-path\n").unwrap();
    std::fs::set_permissions(
        b.rootfs().join("opt/tools/hello"),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    b.config["process"]["env"] = json!(["PATH=/opt/tools:/bin"]);
    b.config["process"]["args"] = json!(["hello"]);
    b.save();
    let o = b.run("p");
    assert_ok(&o);
    assert_eq!(stdout(&o), "found-in-path\n");
}

fn ns_inode(path: &str) -> String {
    std::fs::read_link(path).unwrap().to_string_lossy().into_owned()
}

#[test]
fn namespaces_differ_from_the_host() {
    let mut b = Bundle::new("namespaces");
    let out = b.output_of("for n in pid net ipc uts mnt cgroup; do readlink /proc/self/ns/$n; done");
    let inside: Vec<&str> = out.lines().collect();
    assert_eq!(inside.len(), 6);
    for (n, seen) in ["pid", "net", "ipc", "uts", "mnt", "cgroup"].iter().zip(&inside) {
        assert_ne!(
            ns_inode(&format!("/proc/self/ns/{n}")),
            *seen,
            "{n} namespace is the host's"
        );
    }
    assert_eq!(
        b.output_of("echo $$"),
        "1\n",
        "the process is pid 1 of its pid namespace"
    );
}

#[test]
fn namespaces_not_listed_are_shared_with_the_host() {
    let mut b = Bundle::new("sharedns");
    remove_namespace(&mut b, "network");
    remove_namespace(&mut b, "ipc");
    let out = b.output_of("readlink /proc/self/ns/net; readlink /proc/self/ns/ipc");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines, [ns_inode("/proc/self/ns/net"), ns_inode("/proc/self/ns/ipc")]);
}

#[test]
fn joining_another_containers_namespaces_by_path() {
    let mut first = Bundle::new("joinfirst");
    first.script("sleep 30");
    assert_ok(&first.create("holder"));
    let pid = first.state("holder")["pid"].as_i64().unwrap();

    let mut b = Bundle::new("joinsecond");
    let nss = b.config["linux"]["namespaces"].as_array_mut().unwrap();
    for n in nss.iter_mut() {
        let path = match n["type"].as_str().unwrap() {
            "network" => "net",
            "uts" => "uts",
            "ipc" => "ipc",
            "pid" => "pid",
            _ => continue,
        };
        n["path"] = Value::from(format!("/proc/{pid}/ns/{path}"));
    }
    b.config.as_object_mut().unwrap().remove("hostname");
    b.save();
    let out = b.output_of("for n in net uts ipc pid; do readlink /proc/self/ns/$n; done");
    let expected: Vec<String> = ["net", "uts", "ipc", "pid"]
        .iter()
        .map(|n| ns_inode(&format!("/proc/{pid}/ns/{n}")))
        .collect();
    assert_eq!(out.lines().collect::<Vec<_>>(), expected);
    assert_ok(&first.husk(&["delete", "holder"]));
}

fn mountinfo_line<'a>(info: &'a str, mountpoint: &str) -> &'a str {
    info.lines()
        .find(|l| l.split(' ').nth(4) == Some(mountpoint))
        .unwrap_or_else(|| panic!("{mountpoint} not mounted:\n{info}"))
}

#[test]
fn mounts_of_the_config_appear_with_their_options() {
    let mut b = Bundle::new("mounts");
    let vol = b.dir.join("vol");
    std::fs::create_dir_all(&vol).unwrap();
    std::fs::write(vol.join("file"), "from-host").unwrap();
    let mounts = b.config["mounts"].as_array_mut().unwrap();
    mounts.push(json!({"destination": "/data", "type": "bind", "source": vol, "options": ["rbind", "ro", "nosuid"]}));
    mounts.push(json!({"destination": "/scratch/deep", "type": "tmpfs", "source": "tmpfs", "options": ["noexec", "size=1m", "mode=700"]}));
    mounts
        .push(json!({"destination": "/etc/hostfile", "type": "none", "source": vol.join("file"), "options": ["bind"]}));
    b.save();
    let out = b.output_of("cat /proc/self/mountinfo; echo ---; cat /data/file; echo; cat /etc/hostfile; echo; touch /data/x 2>&1 || echo ro-ok");
    let (info, rest) = out.split_once("---\n").unwrap();
    assert!(mountinfo_line(info, "/proc").contains(" - proc "));
    assert!(mountinfo_line(info, "/dev").contains("nosuid") && mountinfo_line(info, "/dev").contains(" - tmpfs "));
    assert!(mountinfo_line(info, "/dev/pts").contains(" - devpts "));
    assert!(mountinfo_line(info, "/dev/mqueue").contains(" - mqueue "));
    assert!(mountinfo_line(info, "/dev/shm").contains("nodev"));
    let sys = mountinfo_line(info, "/sys");
    assert!(sys.contains(" ro,") && sys.contains(" - sysfs "), "{sys}");
    let cgroup = mountinfo_line(info, "/sys/fs/cgroup");
    assert!(cgroup.contains(" ro,"), "{cgroup}");
    let data = mountinfo_line(info, "/data");
    assert!(data.contains(" ro,nosuid"), "{data}");
    let scratch = mountinfo_line(info, "/scratch/deep");
    assert!(
        scratch.contains("noexec") && scratch.contains("size=1024k") && scratch.contains("mode=700"),
        "{scratch}"
    );
    mountinfo_line(info, "/etc/hostfile");
    assert!(mountinfo_line(info, "/").contains(" / ro,"), "root.readonly");
    let rest: Vec<&str> = rest.lines().collect();
    assert_eq!(rest[..2], ["from-host", "from-host"]);
    assert!(rest[2].contains("Read-only file system"), "{rest:?}");
    assert!(!b.rootfs().join("data/x").exists());
}

/// A tmpfs mounted on the host for the length of a test.
struct HostTmpfs(std::path::PathBuf);

impl HostTmpfs {
    fn at(dir: std::path::PathBuf) -> HostTmpfs {
        std::fs::create_dir_all(&dir).unwrap();
        let flags = nix::mount::MsFlags::empty();
        nix::mount::mount(Some("tmpfs"), &dir, Some("tmpfs"), flags, Some("size=64k")).unwrap();
        HostTmpfs(dir)
    }
}

impl Drop for HostTmpfs {
    fn drop(&mut self) {
        let _ = nix::mount::umount2(&self.0, nix::mount::MntFlags::MNT_DETACH);
    }
}

#[test]
fn nosymfollow_holds_on_the_mount_and_rnosymfollow_on_its_submounts_too() {
    let mut b = Bundle::new("nosymfollow");
    let vol = b.dir.join("vol");
    let sub = HostTmpfs::at(vol.join("sub"));
    for dir in [&vol, &sub.0] {
        std::fs::write(dir.join("file"), "followed").unwrap();
        std::os::unix::fs::symlink("file", dir.join("link")).unwrap();
    }
    let mounts = b.config["mounts"].as_array_mut().unwrap();
    mounts.push(json!({"destination": "/all", "type": "bind", "source": vol, "options": ["rbind", "rnosymfollow"]}));
    mounts.push(json!({"destination": "/top", "type": "bind", "source": vol, "options": ["rbind", "nosymfollow"]}));
    mounts.push(json!({"destination": "/t", "type": "tmpfs", "source": "tmpfs", "options": ["nosymfollow"]}));
    b.save();
    let out = b.output_of(
        "for l in /all/link /all/sub/link /top/link /top/sub/link; do \
           echo $l $(cat $l 2>/dev/null || echo refused) $(readlink $l); done; \
         grep ' /t ' /proc/self/mountinfo",
    );
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines[..4],
        [
            "/all/link refused file",
            "/all/sub/link refused file",
            "/top/link refused file",
            "/top/sub/link followed file",
        ],
        "{out}"
    );
    assert!(lines[4].contains("nosymfollow"), "{out}");
    drop(sub);
}

#[test]
fn mount_target_symlink_cannot_escape_the_rootfs() {
    let mut b = Bundle::new("symlinkescape");
    let outside = b.dir.join("outside");
    std::fs::create_dir_all(&outside).unwrap();
    // An image whose /evil points at a host path: the mount must land inside the rootfs.
    std::os::unix::fs::symlink(&outside, b.rootfs().join("evil")).unwrap();
    b.config["mounts"]
        .as_array_mut()
        .unwrap()
        .push(json!({"destination": "/evil", "type": "tmpfs", "source": "tmpfs"}));
    b.save();
    let out = b.output_of("awk '$5 ~ \"^/tmp\"' /proc/self/mountinfo | cut -d' ' -f5");
    let expected = outside.to_str().unwrap();
    assert_eq!(out.trim(), expected, "mounted at the path inside the rootfs");
    assert!(
        b.rootfs().join(expected.trim_start_matches('/')).is_dir(),
        "target created inside the rootfs"
    );
    let host = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(!host.contains(expected));
}

#[test]
fn devices_and_dev_symlinks() {
    let mut b = Bundle::new("devices");
    b.config["linux"]["devices"] = json!([
        {"path": "/dev/fuse", "type": "c", "major": 10, "minor": 229, "fileMode": 432, "uid": 7, "gid": 8},
        {"path": "/dev/sub/loopx", "type": "b", "major": 7, "minor": 200}
    ]);
    b.save();
    let out = b.output_of(
        "for d in null zero full random urandom tty fuse sub/loopx; do stat -c '%n %F %t:%T %a %u:%g' /dev/$d; done; \
         for l in fd stdin stdout stderr ptmx; do echo \"$l -> $(readlink /dev/$l)\"; done; echo x > /dev/null && echo null-ok",
    );
    let expected = [
        "/dev/null character special file 1:3 666 0:0",
        "/dev/zero character special file 1:5 666 0:0",
        "/dev/full character special file 1:7 666 0:0",
        "/dev/random character special file 1:8 666 0:0",
        "/dev/urandom character special file 1:9 666 0:0",
        "/dev/tty character special file 5:0 666 0:0",
        "/dev/fuse character special file a:e5 660 7:8",
        "/dev/sub/loopx block special file 7:c8 666 0:0",
        "fd -> /proc/self/fd",
        "stdin -> /proc/self/fd/0",
        "stdout -> /proc/self/fd/1",
        "stderr -> /proc/self/fd/2",
        "ptmx -> pts/ptmx",
        "null-ok",
    ];
    assert_eq!(out.lines().collect::<Vec<_>>(), expected);
}

#[test]
fn dev_symlink_in_the_image_cannot_send_devices_to_the_host() {
    let mut b = Bundle::new("devsymlink");
    let host_dir = b.dir.join("hostdev");
    std::fs::create_dir_all(&host_dir).unwrap();
    std::fs::remove_dir(b.rootfs().join("dev")).unwrap();
    std::os::unix::fs::symlink(&host_dir, b.rootfs().join("dev")).unwrap();
    // No /dev mount: devices go into the image's /dev, resolved inside the rootfs.
    b.config["mounts"]
        .as_array_mut()
        .unwrap()
        .retain(|m| !m["destination"].as_str().unwrap().starts_with("/dev"));
    b.config["root"]["readonly"] = Value::Bool(false);
    b.save();
    let out = b.output_of("stat -c %t:%T /dev/null");
    assert_eq!(out, "1:3\n");
    assert_eq!(
        std::fs::read_dir(&host_dir).unwrap().count(),
        0,
        "nothing was created in the host directory"
    );
}

#[test]
fn a_device_in_a_bind_of_a_host_directory_keeps_the_hosts_file() {
    // A device plugin's /dev/net or /dev/dri bound in with device entries in
    // it: what the host has at a node's name is the host's, kept as runc
    // keeps it; husk replaced it with the config's node, for good (review
    // 58b F1). A read-only bind failed with EEXIST.
    for options in [json!(["rbind"]), json!(["rbind", "ro"])] {
        let mut b = Bundle::new("device-in-bind");
        let host_dir = b.dir.join("hostnet");
        std::fs::create_dir_all(&host_dir).unwrap();
        std::fs::write(host_dir.join("tun"), "the host's").unwrap();
        let read_only = options.as_array().unwrap().len() > 1;
        // And a host file bound at a node's own path (-v /dev/fuse:/dev/fuse
        // with --device /dev/fuse: review 58c F1).
        let host_file = b.dir.join("hostfile");
        std::fs::write(&host_file, "the host's file").unwrap();
        let mut devices = vec![
            json!({"path": "/dev/net/tun", "type": "c", "major": 10, "minor": 200}),
            json!({"path": "/dev/hostfile", "type": "c", "major": 1, "minor": 3}),
        ];
        if !read_only {
            devices.push(json!({"path": "/dev/net/new", "type": "c", "major": 1, "minor": 3}));
        }
        b.config["linux"]["devices"] = json!(devices);
        b.config["mounts"]
            .as_array_mut()
            .unwrap()
            .push(json!({"destination": "/dev/net", "type": "bind", "source": host_dir, "options": options}));
        b.config["mounts"]
            .as_array_mut()
            .unwrap()
            .push(json!({"destination": "/dev/hostfile", "type": "bind", "source": host_file, "options": ["bind"]}));
        b.save();
        let out = b.output_of("cat /dev/net/tun; echo; stat -c '%F' /dev/net/new 2>&1 | head -1; cat /dev/hostfile");
        assert_eq!(std::fs::read_to_string(host_dir.join("tun")).unwrap(), "the host's");
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines[0], "the host's", "{out}");
        // Where the name is free, the node is made, as runc makes it.
        if !read_only {
            assert_eq!(lines[1], "character special file", "{out}");
        }
        assert_eq!(lines.last(), Some(&"the host's file"), "{out}");
        assert_eq!(std::fs::read_to_string(&host_file).unwrap(), "the host's file");
    }
}

#[test]
fn a_bind_at_dev_however_spelled_gets_no_device_nodes() {
    // runc makes none in a bind at /dev; husk knew one only by its exact
    // path, and at /tmp/../dev replaced the host's files (review 58b F2).
    let mut b = Bundle::new("dev-bind-spelled");
    let host_dir = b.dir.join("hostdev");
    std::fs::create_dir_all(&host_dir).unwrap();
    std::fs::write(host_dir.join("tty"), "the host's").unwrap();
    // Masking paths needs a true /dev/null.
    nix::sys::stat::mknod(
        &host_dir.join("null"),
        nix::sys::stat::SFlag::S_IFCHR,
        nix::sys::stat::Mode::from_bits_truncate(0o666),
        libc::makedev(1, 3),
    )
    .unwrap();
    let mounts = b.config["mounts"].as_array_mut().unwrap();
    mounts.retain(|m| !m["destination"].as_str().unwrap().starts_with("/dev"));
    mounts.push(json!({"destination": "/tmp/../dev", "type": "bind", "source": host_dir, "options": ["rbind"]}));
    b.save();
    assert_eq!(b.output_of("cat /dev/tty"), "the host's");
    let mut names: Vec<_> = std::fs::read_dir(&host_dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    names.sort();
    assert_eq!(names, ["null", "tty"], "made in the host's directory");
}

#[test]
fn an_image_cannot_lead_the_device_nodes_into_a_bind_of_a_host_directory() {
    // /dev -> /data, with a volume at /data: the nodes (a config's --device
    // /dev/sda too, with its mode) would stay in the host's directory, for
    // its users (review 58c F2). Refused, unless the config names a place
    // in the bind.
    let mut b = Bundle::new("dev-into-volume");
    let volume = b.dir.join("volume");
    std::fs::create_dir_all(&volume).unwrap();
    let mounts = b.config["mounts"].as_array_mut().unwrap();
    mounts.retain(|m| !m["destination"].as_str().unwrap().starts_with("/dev"));
    mounts.push(json!({"destination": "/data", "type": "bind", "source": volume, "options": ["rbind"]}));
    b.config["root"]["readonly"] = Value::Bool(false);
    b.save();
    std::fs::remove_dir(b.rootfs().join("dev")).unwrap();
    std::os::unix::fs::symlink("/data", b.rootfs().join("dev")).unwrap();
    let n = b.config["mounts"].as_array().unwrap().len() - 1;
    b.create_fails(
        "x",
        &format!("create device /dev/null: resolves into mounts[{n}] /data, a bind of a host path, where it would stay on the host"),
    );
    assert_eq!(
        std::fs::read_dir(&volume).unwrap().count(),
        0,
        "made in the host's directory"
    );
}

#[test]
fn readonly_root_and_writable_root() {
    let mut b = Bundle::new("roroot");
    let out = b.output_of("touch /newfile 2>&1; echo rc=$?");
    assert!(out.contains("Read-only file system") && out.contains("rc=1"), "{out}");
    b.config["root"]["readonly"] = Value::Bool(false);
    b.save();
    assert_eq!(b.output_of("touch /newfile && echo ok"), "ok\n");
    assert!(b.rootfs().join("newfile").exists());
}

#[test]
fn no_pivot_moves_the_root() {
    let mut b = Bundle::new("nopivot");
    b.script("cat /etc/passwd | head -1; ls /");
    let o = b.husk(&["run", "--no-pivot", "--bundle", b.dir.to_str().unwrap(), "np"]);
    assert_ok(&o);
    let out = stdout(&o);
    assert!(out.starts_with("root:x:0:0:root:/root:/bin/sh\n"), "{out}");
    assert!(out.contains("bin") && !out.contains("state"), "{out}");
}

#[test]
fn rootfs_propagation_is_applied() {
    let mut b = Bundle::new("propagation");
    b.config["linux"]["rootfsPropagation"] = json!("shared");
    b.save();
    let out = b.output_of("awk '$5 == \"/\"' /proc/self/mountinfo");
    assert!(out.contains("shared:"), "{out}");
}

#[test]
fn only_stdio_and_preserved_fds_reach_the_process() {
    let mut b = Bundle::new("fds");
    b.script("ls /proc/self/fd | sort -n | tr '\\n' ' '");
    let mut cmd = std::process::Command::new(HUSK);
    cmd.arg("--root")
        .arg(&b.root)
        .args(["run", "--preserve-fds", "1", "--bundle", b.dir.to_str().unwrap(), "fds"]);
    b.tag(&mut cmd);
    // fd 3 is passed on purpose; fd 4 (a host directory) must not leak.
    let keep = std::fs::File::open("/dev/null").unwrap();
    let leak = std::fs::File::open("/").unwrap();
    use std::os::fd::AsRawFd;
    pass_fds(&mut cmd, vec![(keep.as_raw_fd(), 3), (leak.as_raw_fd(), 4)]);
    let o = run_with_timeout(&mut cmd, COMMAND_TIMEOUT);
    assert_ok(&o);
    // ls itself opens one more fd for the directory it lists.
    assert_eq!(
        stdout(&o).split_whitespace().take(4).collect::<Vec<_>>(),
        ["0", "1", "2", "3"]
    );
    assert_eq!(stdout(&o).split_whitespace().count(), 5, "{}", stdout(&o));
}

#[test]
fn a_time_namespace_with_offsets() {
    let mut b = Bundle::new("timens");
    b.config["linux"]["namespaces"]
        .as_array_mut()
        .unwrap()
        .push(json!({"type": "time"}));
    b.config["linux"]["timeOffsets"] = json!({"boottime": {"secs": 864000, "nanosecs": 0}});
    b.save();
    let out = b.output_of("readlink /proc/self/ns/time; cut -d. -f1 /proc/uptime");
    let lines: Vec<&str> = out.lines().collect();
    assert_ne!(lines[0], ns_inode("/proc/self/ns/time"));
    let host_uptime: u64 = std::fs::read_to_string("/proc/uptime")
        .unwrap()
        .split('.')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let inside: u64 = lines[1].parse().unwrap();
    assert!(
        inside >= host_uptime + 864000 - 5,
        "boottime offset applied: {inside} vs {host_uptime}"
    );
}

/// Fds 3..3+N that the caller left closed must not be filled by husk's own
/// (the --log file, the console socket): the container would get them. They
/// reach the container closed, as the caller left them (runc's behaviour).
#[test]
fn preserved_fd_numbers_the_caller_left_closed_hold_nothing_of_husks() {
    let mut b = Bundle::new("fd-gaps");
    b.script(
        "for fd in 3 4; do readlink /proc/self/fd/$fd || echo closed; done; (echo INJECTED >&3) 2>/dev/null; true",
    );
    let log = b.dir.join("husk.log");
    let mut cmd = std::process::Command::new(HUSK);
    cmd.arg("--root").arg(&b.root).arg("--log").arg(&log);
    cmd.args(["run", "--preserve-fds", "2", "--bundle", b.dir.to_str().unwrap(), "c"]);
    b.tag(&mut cmd);
    close_inherited_fds(&mut cmd);
    let o = run_with_timeout(&mut cmd, COMMAND_TIMEOUT);
    assert_ok(&o);
    let out = stdout(&o);
    assert_eq!(out.lines().collect::<Vec<_>>(), ["closed", "closed"], "{out}");
    let logged = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(
        !logged.contains("INJECTED"),
        "the container wrote into husk's log: {logged}"
    );
}

/// As runc and crun: a process whose env has no HOME gets its user's home
/// from the container's /etc/passwd, else /; a HOME in env stays. husk
/// 0.1.0 (4491cad) set none.
#[test]
fn home_comes_from_the_containers_passwd_unless_the_env_has_one() {
    let mut b = Bundle::new("home");
    std::fs::write(
        b.rootfs().join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\nsvc:x:1000:1000::/home/svc:/bin/sh\n",
    )
    .unwrap();
    assert_eq!(b.output_of("echo $HOME").trim(), "/root");
    b.config["process"]["user"] = json!({"uid": 1000, "gid": 1000});
    assert_eq!(b.output_of("echo $HOME").trim(), "/home/svc");
    b.config["process"]["user"] = json!({"uid": 1001, "gid": 1000});
    assert_eq!(b.output_of("echo $HOME").trim(), "/");
    b.config["process"]["env"]
        .as_array_mut()
        .unwrap()
        .push(json!("HOME=/mine"));
    assert_eq!(b.output_of("echo $HOME").trim(), "/mine");
    b.config["process"]["env"]
        .as_array_mut()
        .unwrap()
        .retain(|e| e != "HOME=/mine");
    // The image's /etc/passwd a fifo: neither waited on nor read.
    let passwd = b.rootfs().join("etc/passwd");
    std::fs::remove_file(&passwd).unwrap();
    nix::unistd::mkfifo(&passwd, nix::sys::stat::Mode::from_bits_truncate(0o644)).unwrap();
    b.config["process"]["user"] = json!({"uid": 0, "gid": 0});
    assert_eq!(b.output_of("echo $HOME").trim(), "/");
    // Until execve the process is a clone of husk: a link to /proc/self/environ
    // read husk's environment into HOME in 1a7e6b3 (the outside review).
    std::fs::remove_file(&passwd).unwrap();
    std::os::unix::fs::symlink("/proc/self/environ", &passwd).unwrap();
    b.script("echo $HOME");
    let mut cmd = b.husk_command(&["run", "--bundle", b.dir.to_str().unwrap(), "leak"]);
    cmd.env("HUSK_TEST_SECRET", "x\nroot:x:0:0::LEAKED:/bin/sh\n");
    let o = run_with_timeout(&mut cmd, COMMAND_TIMEOUT);
    assert_ok(&o);
    assert_eq!(stdout(&o).trim(), "/");
}

/// Masked and read-only paths are done after every mount of the config,
/// also where an image symlink leads a mount and those paths into the place
/// of the cgroup mount that comes last (review 63 F1: made after them, a
/// writable cgroup mount covered a masked cgroup and a read-only one).
#[test]
fn masked_and_read_only_paths_an_image_leads_into_the_cgroup_mount_hold() {
    let mut b = Bundle::new("cg-last");
    std::os::unix::fs::symlink("/sys/fs/cgroup", b.rootfs().join("run")).unwrap();
    let mounts = b.config["mounts"].as_array_mut().unwrap();
    let mut cgroup = mounts.pop().unwrap();
    assert_eq!(cgroup["destination"], "/sys/fs/cgroup");
    cgroup["options"] = json!(["nosuid", "noexec", "nodev", "relatime"]);
    mounts.push(json!({"destination": "/run", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "nodev"]}));
    mounts.push(cgroup);
    b.config["linux"]["maskedPaths"]
        .as_array_mut()
        .unwrap()
        .push(json!("/run/memory"));
    b.config["linux"]["readonlyPaths"]
        .as_array_mut()
        .unwrap()
        .push(json!("/run"));
    b.save();
    let out = b.output_of(
        "ls /sys/fs/cgroup/memory | wc -l; mkdir /sys/fs/cgroup/cpu/probe 2>/dev/null && echo writable || echo read-only",
    );
    assert_eq!(out.lines().collect::<Vec<_>>(), ["0", "read-only"], "{out}");
    b.assert_gone("c");
}
