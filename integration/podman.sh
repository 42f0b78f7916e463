#!/usr/bin/env bash
# End-to-end: podman (as root, through conmon) with husk as its runtime.
# Builds a local busybox image (no registry is reachable), then checks run,
# run -d + exec + logs + stop + rm, cgroup limits, pause/unpause, top, kill.
# Prints "N passed, N failed, N skipped"; exits non-zero on any failure.
#
# usage: integration/podman.sh HUSK_BINARY
set -uo pipefail

husk=$(readlink -f "${1:?usage: integration/podman.sh HUSK_BINARY}")
passed=0 failed=0 skipped=0
pass() { echo "ok   $1"; passed=$((passed + 1)); }
fail() { echo "FAIL $1: $2"; failed=$((failed + 1)); }
skip() { echo "skip $1: $2"; skipped=$((skipped + 1)); }
summary() { echo "$passed passed, $failed failed, $skipped skipped"; [ "$failed" = 0 ]; exit $?; }

if ! command -v podman >/dev/null; then
    skip podman "podman is not installed (apt-get install podman)"
    summary
fi

work=$(mktemp -d /tmp/husk-podman.XXXXXX)
# podman keeps its own state; this run's lives in $work and goes with it.
export CONTAINERS_CONF=$work/containers.conf XDG_DATA_HOME=$work/data
cat > "$CONTAINERS_CONF" <<'EOF'
[containers]
# Root here lacks CAP_SYS_RESOURCE and the hard nofile limit is 20000.
default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]
[engine]
# No systemd on these machines.
cgroup_manager = "cgroupfs"
events_logger = "file"
EOF
image=localhost/husk-busybox:test
P() { timeout 60 podman --root "$work/storage" --runroot "$work/run" --runtime "$husk" "$@"; }
# No network: the runtime is under test, and the host's firewall stays untouched.
R() { P run --network none "$@"; }
cleanup() {
    P rm -af >/dev/null 2>&1
    P rmi -af >/dev/null 2>&1
    rm -rf "$work"
}
trap cleanup EXIT
cd "$work" || exit 1

mkdir -p rootfs/bin rootfs/etc rootfs/www
cp /bin/busybox rootfs/bin/busybox
for a in $(rootfs/bin/busybox --list); do [ "$a" = busybox ] || ln -s busybox "rootfs/bin/$a"; done
echo 'root:x:0:0:root:/root:/bin/sh' > rootfs/etc/passwd
echo 'root:x:0:' > rootfs/etc/group
tar -C rootfs -cf busybox.tar .
P import busybox.tar "$image" >/dev/null || { fail import "podman import"; summary; }

out=$(R --rm "$image" echo hi 2>&1)
[ "$out" = hi ] && pass "run --rm" || fail "run --rm" "$out"

if R -d --name t1 --memory 64m --pids-limit 32 "$image" sh -c 'echo started; exec sleep 300' >/dev/null; then
    pass "run -d"
    out=$(P exec t1 sh -c 'echo exec-ok' 2>&1)
    [ "$out" = exec-ok ] && pass exec || fail exec "$out"
    out=$(P logs t1 2>&1)
    [ "$out" = started ] && pass logs || fail logs "$out"
    limits=$(P exec t1 cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/pids/pids.max 2>&1 | tr '\n' ' ')
    [ "$limits" = "67108864 32 " ] && pass "memory and pids limits" || fail "memory and pids limits" "$limits"
    P pause t1 >/dev/null && [ "$(P inspect -f '{{.State.Status}}' t1)" = paused ] && pass pause || fail pause "not paused"
    P unpause t1 >/dev/null && [ "$(P inspect -f '{{.State.Status}}' t1)" = running ] && pass unpause || fail unpause "not running"
    P top t1 | grep -q 'sleep 300' && pass top || fail top "no sleep in podman top"
    P kill -s KILL t1 >/dev/null && pass "kill -s" || fail "kill -s" "podman kill"
    P rm -f t1 >/dev/null && pass rm || fail rm "podman rm"
else
    fail "run -d" "podman run -d"
fi
summary
