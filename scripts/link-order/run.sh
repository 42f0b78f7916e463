#!/usr/bin/env bash
# Remakes crates/husk/link-order.txt: the functions husk runs in a container's
# life, in the order the linker should place them (see crates/husk/build.rs).
# Usage: run.sh MAP HUSK, as root, after `make build` with HUSK_LINK_MAP=MAP (as
# `make link-order` does: cargo runs as the user, this script as root). Runs
# each command once under a tracer that single-steps it and every process it
# clones (steptrace.c), then maps the executed addresses to the functions
# that hold them through lld's MAP (order.py). Single-stepping is slow:
# 10-20 minutes.
set -euo pipefail
# In the benchmarks' view of this host (scripts/bench.sh): a private mount
# namespace without the cgroup2 mount at /sys/fs/cgroup/unified, so that a
# hybrid host is pure v1 to husk and the paths the bench takes are traced
# (the cgroup made after the clone, its tmpfs built by `create`).
if [ -z "${HUSK_LINK_ORDER_INNER:-}" ] && [ "$(id -u)" -eq 0 ]; then
    exec unshare -m --propagation private env HUSK_LINK_ORDER_INNER=1 "$0" "$@"
fi
if [ -n "${HUSK_LINK_ORDER_INNER:-}" ] && mountpoint -q /sys/fs/cgroup/unified; then
    umount /sys/fs/cgroup/unified
fi
cd "$(dirname "$0")/../.."
map=${1:?usage: run.sh MAP HUSK}
husk=${2:?usage: run.sh MAP HUSK}
[ "$(id -u)" -eq 0 ] || { echo "link-order: run as root (it runs containers)" >&2; exit 1; }
work=$(mktemp -d /tmp/husk-link-order.XXXXXX)
root=$work/state
# The per-root cgroup husk keeps for the containers of $root (its name is
# cgroups::root_dir_name's): no container of this throwaway root will use it again.
root_cgroup=$(python3 -c 'import sys
h = 0xcbf29ce484222325
for b in sys.argv[1].encode(): h = ((h ^ b) * 0x100000001b3) % 2**64
print("husk/root=%016x" % h)' "$root")
cleanup() {
    [ -x "$husk" ] && for id in $("$husk" --root "$root" list -q 2>/dev/null); do
        "$husk" --root "$root" delete -f "$id" || true
    done
    rmdir /sys/fs/cgroup/"$root_cgroup" /sys/fs/cgroup/*/"$root_cgroup" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

[ -f "$map" ] || { echo "link-order: no $map: build with HUSK_LINK_MAP=$map first (make link-order)" >&2; exit 1; }
cc -O2 -o "$work/steptrace" scripts/link-order/steptrace.c

# The bench's bundles: busybox, husk's default config, with and without seccomp.
mkdir -p "$work/rootfs/bin" "$work/rootfs/"{proc,sys,dev,etc,tmp}
cp /bin/busybox "$work/rootfs/bin/busybox"
for a in true sh sleep; do ln -s busybox "$work/rootfs/bin/$a"; done
"$husk" spec --bundle "$work"
for b in plain-true plain-sleep seccomp-true seccomp-sleep; do
    python3 - "$work" "$b" <<'PY'
import json, os, sys
work, name = sys.argv[1:]
kind, what = name.split("-")
c = json.load(open(os.path.join(work, "config.json")))
c["root"]["path"] = os.path.join(work, "rootfs")
c["process"]["args"] = ["true"] if what == "true" else ["sleep", "600"]
c["process"]["terminal"] = False
if kind == "plain":
    c["linux"].pop("seccomp")
os.makedirs(os.path.join(work, name))
json.dump(c, open(os.path.join(work, name, "config.json"), "w"))
PY
done

inode=$(stat -c %i "$husk")
n=0
# trace ARGS...: one husk command under the tracer, its addresses to trace-N.
trace() {
    n=$((n + 1))
    echo "link-order: tracing husk $*" >&2
    timeout 1800 "$work/steptrace" "$work/trace-$(printf %02d $n).txt" "$inode" "$husk" --root "$root" "$@" > /dev/null
}
# The seccomp filter is compiled once per profile and cached: trace the cached path.
"$husk" --root "$root" run --bundle "$work/seccomp-true" warm
trace run --bundle "$work/plain-true" r1
trace run --bundle "$work/seccomp-true" r2
trace create --bundle "$work/plain-sleep" c1
trace start c1
trace state c1
trace list
trace exec c1 true
trace kill c1 KILL
for _ in $(seq 50); do "$husk" --root "$root" state c1 | grep -q '"stopped"' && break; sleep 0.1; done
trace delete c1
trace create --bundle "$work/seccomp-sleep" c2
"$husk" --root "$root" start c2
trace delete -f c2

# Written whole or not at all: an interrupted run leaves the old list.
# The names' hashes follow the rustc and the dependency graph: the first
# line says which (lld skips '#' lines), and tests/cli.rs checks it.
rustc_version=$(readelf -p .comment "$husk" | grep -o 'rustc version .*' | head -1)
lock_hash=$(python3 scripts/link-order/lock_hash.py Cargo.lock)
{
    echo "# made for ${rustc_version:-an unknown rustc}, Cargo.lock $lock_hash"
    python3 scripts/link-order/order.py "$map" "$work"/trace-*.txt
} > "$work/link-order.txt"
cp "$work/link-order.txt" crates/husk/link-order.txt.new
chown --reference=crates/husk crates/husk/link-order.txt.new
mv crates/husk/link-order.txt.new crates/husk/link-order.txt
echo "link-order: crates/husk/link-order.txt: $(grep -vc '^#' crates/husk/link-order.txt) functions" >&2
