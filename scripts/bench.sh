#!/usr/bin/env bash
# Benchmarks husk against Debian's crun and runc on one busybox bundle, in one
# run so that the ratios hold on a noisy machine. Writes docs/bench.md and
# docs/bench.svg (with --quick: prints the create+start+delete ratio only).
#
# crun 1.8 refuses hybrid cgroup hosts, so everything runs in a private mount
# namespace in which the cgroup2 mount at /sys/fs/cgroup/unified is unmounted:
# all three runtimes then see the same cgroup v1 host.
#
# usage: scripts/bench.sh [--quick] HUSK_BINARY
set -euo pipefail

quick=0
[ "${1:-}" = --quick ] && { quick=1; shift; }
husk=$(readlink -f "${1:?usage: scripts/bench.sh [--quick] HUSK_BINARY}")
if [ -z "${HUSK_BENCH_INNER:-}" ]; then
    exec unshare -m env HUSK_BENCH_INNER=1 "$0" $([ $quick = 1 ] && echo --quick) "$husk"
fi
# Inside the private mount namespace from here on.
if mountpoint -q /sys/fs/cgroup/unified; then
    umount /sys/fs/cgroup/unified
fi

repo=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d /tmp/husk-bench.XXXXXX)
# Ids unique to this run: crun and runc put a container's cgroup at /ID.
tag=hb$$
cleanup() {
    for r in husk crun runc; do
        for id in $("$(bin_of $r)" --root "$work/state-$r" list -q 2>/dev/null); do
            "$(bin_of $r)" --root "$work/state-$r" delete -f "$id" >/dev/null 2>&1 || true
        done
    done
    rm -rf "$work"
}
bin_of() { case $1 in husk) echo "$husk" ;; crun) command -v crun ;; runc) command -v runc ;; esac; }
trap cleanup EXIT

runtimes=(husk)
for r in crun runc; do command -v $r >/dev/null && runtimes+=($r); done

# The bundle: static busybox, husk's default config, running `true`.
bundle=$work/bundle
mkdir -p "$bundle/rootfs/bin" "$bundle/rootfs/"{proc,sys,dev,etc,tmp}
cp /bin/busybox "$bundle/rootfs/bin/busybox"
for a in true sh sleep; do ln -s busybox "$bundle/rootfs/bin/$a"; done
"$husk" spec --bundle "$bundle"
python3 - "$bundle/config.json" <<'EOF'
import json, sys
c = json.load(open(sys.argv[1]))
c["process"]["args"] = ["true"]
c["process"]["terminal"] = False
c["ociVersion"] = "1.0.2-dev"  # crun 1.8 refuses 1.2.0
json.dump(c, open(sys.argv[1], "w"))
EOF
sleeper=$work/sleeper
cp -a "$bundle" "$sleeper"
python3 - "$sleeper/config.json" <<'EOF'
import json, sys
c = json.load(open(sys.argv[1]))
c["process"]["args"] = ["sleep", "600"]
json.dump(c, open(sys.argv[1], "w"))
EOF

# One create+start+delete (youki's method); ids are unique per call.
cat > "$work/lifecycle.sh" <<'EOF'
#!/bin/sh
r=$1; root=$2; bundle=$3; id=hb-c$$
$r --root $root create --bundle $bundle $id >/dev/null && $r --root $root start $id && $r --root $root delete -f $id
EOF
cat > "$work/run100.sh" <<'EOF'
#!/bin/sh
r=$1; root=$2; bundle=$3
i=0; while [ $i -lt 100 ]; do $r --root $root run --bundle $bundle hb-r$$-$i || exit 1; i=$((i + 1)); done
EOF
cat > "$work/parallel20.sh" <<'EOF'
#!/bin/sh
r=$1; root=$2; bundle=$3
for i in $(seq 20); do ( $r --root $root create --bundle $bundle hb-p$$-$i >/dev/null && $r --root $root delete -f hb-p$$-$i ) & done
wait
EOF
chmod +x "$work"/*.sh

json=$work/results
mkdir -p "$json"
for r in "${runtimes[@]}"; do mkdir -p "$work/state-$r"; done
script_args() {  # $1 = script, $2 = bundle: sets A to the hyperfine arguments
    A=()
    for r in "${runtimes[@]}"; do A+=(-n "$r" "$work/$1 $(bin_of $r) $work/state-$r $2"); done
}
bench() {  # $1 = name, $2 = runs, then hyperfine arguments
    local name=$1 runs=$2; shift 2
    hyperfine -N --warmup 3 --runs "$runs" --export-json "$json/$name.json" "$@" >/dev/null 2>&1 ||
        hyperfine -N --warmup 3 --runs "$runs" --export-json "$json/$name.json" "$@"
}
script_args lifecycle.sh "$bundle"
if [ $quick = 1 ]; then
    bench lifecycle 20 "${A[@]}"
    python3 "$repo/scripts/bench_report.py" --quick "$json"
    exit 0
fi

bench lifecycle 50 "${A[@]}"
script_args run100.sh "$bundle"
bench run100 3 "${A[@]}"

# (c) exec true into a running container, and (d) state and list among 100 containers.
exec_args=() state_args=() list_args=()
for r in "${runtimes[@]}"; do
    b=$(bin_of $r); root=$work/state-$r
    $b --root $root run -d --bundle "$sleeper" $tag-target >/dev/null
    for i in $(seq 99); do $b --root $root create --bundle "$sleeper" $tag-idle$i >/dev/null; done
    exec_args+=(-n "$r" "$b --root $root exec $tag-target true")
    state_args+=(-n "$r" "$b --root $root state $tag-target")
    list_args+=(-n "$r" "$b --root $root list -q")
done
bench exec 50 "${exec_args[@]}"
bench state 100 "${state_args[@]}"
bench list 30 "${list_args[@]}"
for r in "${runtimes[@]}"; do
    b=$(bin_of $r); root=$work/state-$r
    for id in $($b --root $root list -q); do $b --root $root delete -f $id >/dev/null; done
done
script_args parallel20.sh "$bundle"
bench parallel20 10 "${A[@]}"

# Peak RSS of one create, and the binary sizes.
: > "$json/rss.txt"
for r in "${runtimes[@]}"; do
    b=$(bin_of $r); root=$work/state-$r
    # To a file: the waiting init keeps whatever stdout and stderr it was given.
    /usr/bin/time -o "$json/rss-$r" -f %M "$b" --root $root create --bundle "$bundle" $tag-rss >/dev/null 2>&1
    kb=$(tail -1 "$json/rss-$r")
    $b --root $root delete -f $tag-rss >/dev/null
    echo "$r $kb $(stat -L -c %s "$b")" >> "$json/rss.txt"
done
versions=$(for r in "${runtimes[@]}"; do echo "$r: $($(bin_of $r) --version | head -1)"; done)
machine="$(nproc) cores, $(awk '/MemTotal/{printf "%d GiB", $2/1048576}' /proc/meminfo), kernel $(uname -r)"
python3 "$repo/scripts/bench_report.py" "$json" "$repo/docs" "$machine" "$versions"
