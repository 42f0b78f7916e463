#!/usr/bin/env bash
# End-to-end: podman (through conmon) with husk as its runtime, as root and as
# an unprivileged user. Builds a local busybox image (no registry is reachable).
# Prints "N passed, N failed, N skipped"; exits non-zero on any failure.
#
# usage: integration/podman.sh HUSK_BINARY
set -uo pipefail
here=$(dirname "$(readlink -f "$0")")
. "$here/lib.sh"

husk=$(readlink -f "${1:?usage: integration/podman.sh HUSK_BINARY}")
require_tools podman "podman conmon" podman conmon
need_root podman

work=$(mktemp -d /tmp/husk-podman.XXXXXX)
chmod 755 "$work"
image=localhost/husk-busybox:test
rootless_user=husk-podman
conf_common='
[containers]
# Root here lacks CAP_SYS_RESOURCE and the hard nofile limit is 20000.
default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]
[engine]
# These machines have no systemd.
cgroup_manager = "cgroupfs"
events_logger = "file"'
# podman keeps its own state; this run's lives in $work and goes with it.
export CONTAINERS_CONF=$work/containers.conf XDG_DATA_HOME=$work/data
echo "$conf_common" > "$CONTAINERS_CONF"
# $HUSK_PODMAN_STORAGE_DRIVER: vfs where the root is itself an overlay (the VM).
P() { timeout 60 podman --root "$work/storage" --runroot "$work/run" ${HUSK_PODMAN_STORAGE_DRIVER:+--storage-driver "$HUSK_PODMAN_STORAGE_DRIVER"} --runtime "$husk" "$@"; }
# Most checks need no network: the runtime is under test, not netavark.
R() { P run --network none "$@"; }

# The default network makes netavark add iptables chains, a bridge and turn on
# ip_forward; note what the host had so that cleanup can put it back.
forward_before=$(cat /proc/sys/net/ipv4/ip_forward)
bridge_before=$(ip -o link show podman0 2>/dev/null)
chains_before=$(iptables-save 2>/dev/null | grep -c NETAVARK)
cgroup_parents_note libpod_parent
restore_host_network() {
    if [ "$chains_before" = 0 ] && command -v iptables >/dev/null; then
        for table in nat filter; do
            iptables -t "$table" -S 2>/dev/null | grep -E '^-A (PREROUTING|POSTROUTING|OUTPUT|INPUT|FORWARD) .*NETAVARK' |
                sed 's/^-A/-D/' | while read -r rule; do eval iptables -t "$table" "$rule"; done
            for chain in $(iptables -t "$table" -S 2>/dev/null | awk '/^-N NETAVARK/ {print $2}'); do
                iptables -t "$table" -F "$chain"
            done
            for chain in $(iptables -t "$table" -S 2>/dev/null | awk '/^-N NETAVARK/ {print $2}'); do
                iptables -t "$table" -X "$chain"
            done
        done
    fi
    [ -z "$bridge_before" ] && ip link del podman0 2>/dev/null
    echo "$forward_before" > /proc/sys/net/ipv4/ip_forward
}

cleanup() {
    P rm -af -t 0 >/dev/null 2>&1
    P rmi -af >/dev/null 2>&1
    restore_host_network
    if id "$rootless_user" >/dev/null 2>&1; then
        pkill -KILL -u "$rootless_user" 2>/dev/null
        sleep 0.2
        userdel -r "$rootless_user" >/dev/null 2>&1
    fi
    # podman's overlay storage may hold mounts under $work.
    grep -o " $work/[^ ]*" /proc/self/mounts | sort -r | xargs -r -n1 umount -l 2>/dev/null
    rm -rf "$work"
    cgroup_parents_restore
}
trap cleanup EXIT
cd "$work" || exit 1 # conmon writes an oom marker file into its cwd

make_rootfs rootfs && make_sd_notify rootfs/bin/sd-notify || { fail image "cannot build the busybox rootfs"; summary; }
tar -C rootfs -cf busybox.tar .
P import busybox.tar "$image" >/dev/null || { fail import "podman import"; summary; }

root_basic() {
    check "run --rm" hi "$(R --rm "$image" echo hi 2>&1)"

    if ! R -d --name t1 --memory 64m --pids-limit 32 "$image" sh -c 'echo started; exec sleep 300' >/dev/null; then
        fail "run -d" "podman run -d"
        return
    fi
    pass "run -d"
    check exec exec-ok "$(P exec t1 sh -c 'echo exec-ok' 2>&1)"
    check logs started "$(P logs t1 2>&1)"
    check "memory and pids limits" "67108864 32 " \
        "$(P exec t1 cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/pids/pids.max 2>&1 | tr '\n' ' ')"
    P pause t1 >/dev/null
    check pause paused "$(P inspect -f '{{.State.Status}}' t1 2>&1)"
    P unpause t1 >/dev/null
    check unpause running "$(P inspect -f '{{.State.Status}}' t1 2>&1)"
    P top t1 | grep -q 'sleep 300' && pass top || fail top "no sleep in podman top"
    P kill -s KILL t1 >/dev/null && pass "kill -s" || fail "kill -s" "podman kill"
    P rm -f t1 >/dev/null && pass rm || fail rm "podman rm"

    # A PID 1 without a handler ignores SIGTERM; this one exits on it.
    R -d --name t2 "$image" sh -c 'trap "exit 0" TERM; while :; do sleep 0.1; done' >/dev/null
    P stop -t 2 t2 >/dev/null && check stop exited "$(P inspect -f '{{.State.Status}}' t2 2>&1)" || fail stop "podman stop"
    P rm t2 >/dev/null
}

# --read-only: podman mounts tmpfs on /tmp, /run and /var/tmp with tmpcopyup;
# each keeps the mode of the image's directory and stays writable.
read_only_script='echo $(stat -c %a /run /tmp /var/tmp) $(touch /run/a /tmp/b /var/tmp/c && echo writable) $(touch /etc/x 2>/dev/null || echo root-ro)'
root_read_only() {
    check "run --read-only --cap-drop=all" "755 1777 1777 writable root-ro" \
        "$(R --rm --read-only --cap-drop=all "$image" sh -c "$read_only_script" 2>&1)"
}

# -v SRC:DST:rshared (Kubernetes' Bidirectional): podman asks for a shared
# rootfsPropagation and an rshared bind; a mount the container makes under
# it reaches the host, SRC being on a shared mount: a bind of itself made
# shared, whatever / is (shared under systemd, private on some hosts).
# Without rshared it does not.
root_bind_propagation() {
    local src=$work/propagation
    mkdir -p "$src/both" "$src/one"
    mount --bind "$src" "$src" && mount --make-shared "$src"
    R --rm --cap-add sys_admin --security-opt seccomp=unconfined -v "$src:/data:rshared" "$image" \
        mount -t tmpfs from-podman /data/both >/dev/null 2>&1
    check "-v :rshared reaches the host" from-podman "$(findmnt -n -o SOURCE "$src/both")"
    umount "$src/both" 2>/dev/null
    R --rm --cap-add sys_admin --security-opt seccomp=unconfined -v "$src:/data" "$image" \
        mount -t tmpfs from-podman /data/one >/dev/null 2>&1
    check "-v without rshared does not" "" "$(findmnt -n -o SOURCE "$src/one")"
    umount "$src/one" 2>/dev/null
    umount "$src" 2>/dev/null
}

# run -it: conmon hands husk a console socket. script(1) gives podman a
# terminal and types into it; the shell's answer must come back through it.
root_terminal() {
    local out
    out=$(printf 'echo reply-$((6*7)); tty\nexit\n' | timeout 60 script -qec "podman --root $work/storage \
        --runroot $work/run --runtime $husk run -it --rm --network none $image sh" /dev/null 2>&1 | tr -d '\r')
    if echo "$out" | grep -qx reply-42 && echo "$out" | grep -qx /dev/pts/0; then
        pass "run -it"
    else
        fail "run -it" "$out"
    fi
}

# -p 127.0.0.1:PORT:80 to busybox httpd, fetched from the host.
root_port() {
    local port out
    port=$(free_port) || { fail "run -p" "no free port"; return; }
    if ! P run -d --name web -p "127.0.0.1:$port:80" "$image" httpd -f -p 80 -h /www >/dev/null 2>&1; then
        fail "run -p" "podman run -p failed"
        return
    fi
    retry 10 sh -c "busybox wget -q -O - http://127.0.0.1:$port/ >/dev/null 2>&1"
    out=$(busybox wget -q -O - "http://127.0.0.1:$port/" 2>&1)
    check "run -p 127.0.0.1:$port:80" husk-httpd-ok "$out"
    P rm -f -t 0 web >/dev/null
}

# --sdnotify=container: READY=1 from inside reaches podman's NOTIFY_SOCKET.
root_sdnotify() {
    local sock=$work/notify.sock got=$work/notify.txt
    python3 - "$sock" "$got" <<'EOF' &
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
s.settimeout(60)
with open(sys.argv[2], "a") as out:
    while True:
        msg = s.recv(4096).decode()
        out.write(msg + "\n")
        out.flush()
        if "READY=1" in msg:
            break
EOF
    local listener=$!
    retry 5 test -S "$sock"
    NOTIFY_SOCKET=$sock R -d --name notify --sdnotify=container "$image" \
        sh -c 'sleep 0.3; sd-notify READY=1 STATUS=up; exec sleep 300' >/dev/null 2>&1
    retry 30 grep -q READY=1 "$got" 2>/dev/null
    if grep -q READY=1 "$got" 2>/dev/null; then
        pass "--sdnotify=container"
        grep -q '^MAINPID=[0-9]' "$got" && pass "--sdnotify=container MAINPID" ||
            fail "--sdnotify=container MAINPID" "$(tr '\n' ' ' < "$got")"
    else
        fail "--sdnotify=container" "no READY=1 reached podman's socket"
    fi
    kill "$listener" 2>/dev/null
    wait "$listener" 2>/dev/null
    P rm -f -t 0 notify >/dev/null
}

# Rootless: a fresh user with /etc/subuid ranges runs podman with husk.
rootless() {
    if ! useradd -m "$rootless_user" 2>/dev/null || ! grep -q "^$rootless_user:" /etc/subuid; then
        skip "rootless podman" "cannot create a user with /etc/subuid ranges"
        return
    fi
    local home run
    home=$(getent passwd "$rootless_user" | cut -d: -f6)
    # A short XDG_RUNTIME_DIR: podman rejects a longer runroot in conmon's
    # cleanup command and each exit then waits out a 20 s timeout.
    run=$(mktemp -d /tmp/hp.XXXXXX)
    chown "$rootless_user:" "$run"
    chmod 700 "$run"
    mkdir -p "$home/.config/containers"
    echo "$conf_common" > "$home/.config/containers/containers.conf"
    printf '[storage]\ndriver = "overlay"\n' > "$home/.config/containers/storage.conf"
    chown -R "$rootless_user:" "$home/.config"
    U() {
        (cd "$home" && timeout 60 runuser -u "$rootless_user" -- env -i PATH="$PATH" HOME="$home" \
            USER="$rootless_user" XDG_RUNTIME_DIR="$run" podman --runtime "$husk" "$@")
    }
    if ! U import "$work/busybox.tar" "$image" >/dev/null 2>&1; then
        fail "rootless import" "$(U import "$work/busybox.tar" "$image" 2>&1 | tail -1)"
        rm -rf "$run"
        return
    fi
    check "rootless run --rm" "hi 0" "$(U run --rm --network none "$image" sh -c 'echo hi $(id -u)' 2>&1)"
    check "rootless run --read-only --cap-drop=all" "755 1777 1777 writable root-ro" \
        "$(U run --rm --network none --read-only --cap-drop=all "$image" sh -c "$read_only_script" 2>&1)"
    if U run -d --name r1 --network none "$image" sleep 300 >/dev/null 2>&1; then
        pass "rootless run -d"
        check "rootless exec" exec-ok "$(U exec r1 echo exec-ok 2>&1)"
        U stop -t 2 r1 >/dev/null 2>&1
        check "rootless stop" exited "$(U inspect -f '{{.State.Status}}' r1 2>&1)"
        U rm r1 >/dev/null 2>&1 && pass "rootless rm" || fail "rootless rm" "podman rm"
    else
        fail "rootless run -d" "$(U run -d --name r1b --network none "$image" true 2>&1 | tail -1)"
    fi
    # A user namespace of the container's own inside podman's: husk, root
    # of podman's, writes its maps itself (the init non-dumpable throughout).
    check "rootless run --uidmap" "0 1 1000 exec-ok" \
        "$(U run --rm --network none --uidmap 0:1:1000 --gidmap 0:1:1000 "$image" \
            sh -c 'echo $(cat /proc/self/uid_map) exec-ok' 2>&1 | tr -s ' ' | sed 's/^ //')"
    U rm -af -t 0 >/dev/null 2>&1
    U rmi -af >/dev/null 2>&1
    U system migrate >/dev/null 2>&1 # stops the pause process
    rm -rf "$run"
}

# podman container checkpoint/restore through husk's checkpoint and restore
# (criu). Skipped where criu cannot dump on this kernel (criu 3.17 fails on
# kernels much newer than 6.1); make test-checkpoint covers husk itself there.
root_checkpoint() {
    if ! criu_works; then
        skip "checkpoint/restore" "criu cannot dump on kernel $(uname -r) (make test-checkpoint runs husk's in a 6.1 VM)"
        return
    fi
    R -d --name ck "$image" sh -c 'i=0; while :; do i=$((i+1)); echo $i; sleep 0.2; done' >/dev/null
    sleep 2
    local out before after
    out=$(P container checkpoint --leave-running ck 2>&1) && pass "container checkpoint --leave-running" ||
        fail "container checkpoint --leave-running" "$(echo "$out" | tail -1)"
    check "left running" running "$(P inspect -f '{{.State.Status}}' ck 2>&1)"
    out=$(P container checkpoint ck 2>&1) && pass "container checkpoint" || fail "container checkpoint" "$(echo "$out" | tail -1)"
    before=$(P logs ck 2>/dev/null | tail -1)
    out=$(P container restore ck 2>&1) && pass "container restore" || fail "container restore" "$(echo "$out" | tail -1)"
    sleep 2
    after=$(P logs ck 2>/dev/null | tail -1)
    check "restored and counting on" running "$(P inspect -f '{{.State.Status}}' ck 2>&1)"
    [ "${after:-0}" -gt "${before:-0}" ] 2>/dev/null && pass "counts on after restore" || fail "counts on after restore" "$before -> $after"
    # An exported checkpoint restores as a new container.
    out=$(P container checkpoint --export "$work/ck.tar.gz" ck 2>&1) && pass "container checkpoint --export" ||
        fail "container checkpoint --export" "$(echo "$out" | tail -1)"
    P rm -f -t 0 ck >/dev/null 2>&1
    out=$(P container restore --import "$work/ck.tar.gz" --name ck2 2>&1) && pass "container restore --import" ||
        fail "container restore --import" "$(echo "$out" | tail -1)"
    check "imported and running" running "$(P inspect -f '{{.State.Status}}' ck2 2>&1)"
    P rm -f -t 0 ck2 >/dev/null 2>&1
}

# HUSK_INTEGRATION_ONLY=checkpoint: only that (make test-checkpoint runs it
# in the VM, where criu works).
if [ "${HUSK_INTEGRATION_ONLY:-}" = checkpoint ]; then
    root_checkpoint
    summary
fi

root_basic
root_read_only
root_bind_propagation
root_terminal
root_port
root_sdnotify
root_checkpoint
rootless
summary
