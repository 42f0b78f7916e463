#!/usr/bin/env bash
# End-to-end: dockerd with husk added as a runtime (--add-runtime). Starts its
# own dockerd (and so its own containerd) on a private socket, data root and
# exec root, with no bridge and no firewall changes, imports a busybox image,
# then checks docker run, exec, stop and rm with --runtime husk.
# Prints "N passed, N failed, N skipped"; exits non-zero on any failure.
#
# usage: integration/docker.sh HUSK_BINARY
set -uo pipefail
here=$(dirname "$(readlink -f "$0")")
. "$here/lib.sh"

husk=$(readlink -f "${1:?usage: integration/docker.sh HUSK_BINARY}")
require_tools docker docker.io dockerd docker containerd
need_root docker

work=$(mktemp -d /tmp/husk-docker.XXXXXX)
sock=$work/docker.sock
image=localhost/husk-busybox:test
daemon=
# dockerd and its shims make these and leave them behind.
run_dirs_existed=$([ -d /run/docker ] && echo docker; [ -d /run/containerd ] && echo containerd)
cgroup_parents_note docker
D() { timeout 60 docker -H "unix://$sock" "$@"; }

cleanup() {
    if [ -n "$daemon" ]; then
        D rm -f $(D ps -aq 2>/dev/null) >/dev/null 2>&1
        stop_daemon "$daemon"
    fi
    pkill -KILL -f "containerd-shim-runc-v2 .*-address $work/" 2>/dev/null
    pkill -KILL -f "containerd --config $work/" 2>/dev/null
    grep -o " $work/[^ ]*" /proc/self/mounts | sort -r | xargs -r -n1 umount -l 2>/dev/null
    rm -rf "$work"
    cgroup_parents_restore
    for dir in docker containerd; do
        echo "$run_dirs_existed" | grep -qx "$dir" || rm -rf "/run/$dir"
    done
}
trap cleanup EXIT
cd "$work" || exit 1

start_dockerd() {
    # No bridge, no iptables, no forwarding: only loopback exists, and the
    # host's network settings stay as they are.
    dockerd --data-root "$work/data" --exec-root "$work/exec" --pidfile "$work/docker.pid" \
        -H "unix://$sock" --add-runtime "husk=$husk" \
        --bridge=none --iptables=false --ip6tables=false --ip-masq=false --ip-forward=false \
        --storage-driver overlay2 --userland-proxy=false > dockerd.log 2>&1 &
    daemon=$!
    retry 60 D version >/dev/null 2>&1
}

make_rootfs rootfs && tar -C rootfs -cf busybox.tar . || { fail image "cannot build the busybox rootfs"; summary; }
start_dockerd || { fail dockerd "did not start: $(tail -3 dockerd.log)"; summary; }
runtimes=$(D info --format '{{json .Runtimes}}' 2>&1)
echo "$runtimes" | grep -q '"husk"' && pass "husk registered" || fail "husk registered" "docker info: $runtimes"
D import busybox.tar "$image" >/dev/null 2>&1 || { fail import "$(D import busybox.tar "$image" 2>&1 | tail -1)"; summary; }

R() { D run --runtime husk --network none "$@"; }
check "run --rm" hi "$(R --rm "$image" echo hi 2>&1)"
out=$(R --rm "$image" sh -c 'exit 5' 2>&1)
check "run exit status" 5 "$?${out:+ $out}"

if R -d --name d1 --memory 64m "$image" sleep 300 >/dev/null 2>&1; then
    pass "run -d"
    check "runtime is husk" husk "$(D inspect -f '{{.HostConfig.Runtime}}' d1 2>&1)"
    check exec exec-ok "$(D exec d1 echo exec-ok 2>&1)"
    check "exec -u" "65534" "$(D exec -u 65534 d1 id -u 2>&1)"
    check "memory limit" 67108864 "$(D exec d1 cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>&1)"
    D pause d1 >/dev/null 2>&1
    check pause paused "$(D inspect -f '{{.State.Status}}' d1 2>&1)"
    D unpause d1 >/dev/null 2>&1
    check unpause running "$(D inspect -f '{{.State.Status}}' d1 2>&1)"
    D top d1 2>/dev/null | grep -q 'sleep 300' && pass top || fail top "no sleep in docker top"
    D stop -t 1 d1 >/dev/null 2>&1
    check stop exited "$(D inspect -f '{{.State.Status}}' d1 2>&1)"
    D rm d1 >/dev/null 2>&1 && pass rm || fail rm "docker rm"
else
    fail "run -d" "$(R -d "$image" true 2>&1 | tail -1)"
fi

# An interactive terminal: docker hands husk a console socket through the shim.
out=$(printf 'echo reply-$((6*7)); tty\nexit\n' | timeout 60 script -qec \
    "docker -H unix://$sock run --runtime husk --network none -it --rm $image sh" /dev/null 2>&1 | tr -d '\r')
if echo "$out" | grep -qx reply-42 && echo "$out" | grep -qx /dev/pts/0; then
    pass "run -it"
else
    fail "run -it" "$out"
fi

out=$(R --rm "$image" /no/such/program 2>&1)
echo "$out" | grep -q '/no/such/program' && pass "error reaches docker" || fail "error reaches docker" "$out"
summary
