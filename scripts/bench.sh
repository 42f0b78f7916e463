#!/usr/bin/env bash
# Benchmarks husk against Debian's crun and runc (issue #18's method) and writes
# docs/bench.md, the charts docs/bench-*.svg and README's benchmark table
# (scripts/bench_report.py). With --quick (CI): only the timings (a)-(d) of both
# bundle kinds, few runs, and the ratios to crun printed.
#
# Phases (BENCH_PHASES, comma-separated; all by default):
#   time      (a) create+start+delete -f, (b) run, (c) exec, (d) state and list
#             with STATE_COUNT containers present; both bundle kinds
#   memory    peak RSS of every command, the waiting init's VmHWM; both kinds
#   scale     state and list with SCALE containers present
#   parallel  PARALLEL containers created and started at once
#   cycles    CYCLES sequential create+start+delete, time per block, leaks
#   managers  podman, ctr and docker with husk and with runc, and the share of
#             the total spent in the runtime (scripts/bench-managers.sh)
#
# Every timing is hyperfine's (-N, no shell), ROUNDS rounds of RUNS runs, the
# order of the runtimes rotated each round; the report takes the median of all
# the rounds' samples together.
#
# crun 1.8 refuses hybrid cgroup hosts, so the whole run happens in one private
# mount namespace in which the cgroup2 mount at /sys/fs/cgroup/unified is
# unmounted (a cgroup v1 host to all three runtimes); /tmp and /run are fresh
# tmpfs there, so that what a runtime leaves in them is counted, and goes.
#
# usage: scripts/bench.sh [--quick] HUSK_BINARY        (as root)
# Sizes (environment; defaults in brackets):
#   RUNS [30] ROUNDS [3] WARMUP [3] KINDS ["plain seccomp"] STATE_COUNT [50]
#   MEM_RUNS [5] SCALE [1,10,100,1000] SCALE_RUNS [20] SCALE_RUNTIMES ["husk crun"]
#   PARALLEL [50] PARALLEL_RUNS [10] PARALLEL_RUNTIMES ["husk crun"]
#   CYCLES [1000] CYCLE_RUNTIMES ["husk crun"] MANAGERS [1: 0 skips them]
#   MANAGER_RUNS [10 a round] SHARE_RUNS [10] BENCH_PHASES [all]
#   BENCH_DOCS [docs/ of this repository: where the report goes]
#   BENCH_README [README.md of this repository: its table between the markers]
#   BENCH_KEEP [unset: a directory to copy the raw results to; regenerate the
#     report from it with scripts/bench_report.py KEEP DOCS README]
#   (none of these, nor husk, under /tmp or /run)
#   BENCH_SMOKE [unset: a note the report prints on top, e.g. "smoke run"]
set -euo pipefail

quick=0
[ "${1:-}" = --quick ] && { quick=1; shift; }
husk=$(readlink -f "${1:?usage: scripts/bench.sh [--quick] HUSK_BINARY}")
repo=$(cd "$(dirname "$0")/.." && pwd)
if [ -z "${HUSK_BENCH_INNER:-}" ]; then
    [ "$(id -u)" = 0 ] || { echo "bench: run as root" >&2; exit 1; }
    # /tmp and /run are fresh in the benchmark's namespace: nothing there is seen.
    for path in "$husk" "${BENCH_DOCS:-}" "${BENCH_KEEP:-}" "${BENCH_README:-}"; do
        case $(readlink -m "$path") in /tmp | /tmp/* | /run | /run/*)
            echo "bench: $path: /tmp and /run are replaced in the benchmark's namespace; use another directory" >&2
            exit 1 ;;
        esac
    done
    exec unshare -m --propagation private env HUSK_BENCH_INNER=1 "$0" $([ $quick = 1 ] && echo --quick) "$husk"
fi
# Inside the private mount namespace from here on.
if mountpoint -q /sys/fs/cgroup/unified; then
    umount /sys/fs/cgroup/unified
fi
mount -t tmpfs -o mode=1777 husk-bench /tmp
mount -t tmpfs -o mode=755 husk-bench /run

if [ $quick = 1 ]; then
    : "${RUNS:=5}" "${ROUNDS:=1}" "${WARMUP:=1}" "${BENCH_PHASES:=time}"
fi
RUNS=${RUNS:-30} ROUNDS=${ROUNDS:-3} WARMUP=${WARMUP:-3} KINDS=${KINDS:-plain seccomp}
STATE_COUNT=${STATE_COUNT:-50} MEM_RUNS=${MEM_RUNS:-5}
SCALE=${SCALE:-1,10,100,1000} SCALE_RUNS=${SCALE_RUNS:-20} SCALE_RUNTIMES=${SCALE_RUNTIMES:-husk crun}
PARALLEL=${PARALLEL:-50} PARALLEL_RUNS=${PARALLEL_RUNS:-10} PARALLEL_RUNTIMES=${PARALLEL_RUNTIMES:-husk crun}
CYCLES=${CYCLES:-1000} CYCLE_RUNTIMES=${CYCLE_RUNTIMES:-husk crun}
MANAGERS=${MANAGERS:-1} MANAGER_RUNS=${MANAGER_RUNS:-10} SHARE_RUNS=${SHARE_RUNS:-10}
BENCH_PHASES=${BENCH_PHASES:-time,memory,scale,parallel,cycles,managers}
BENCH_DOCS=${BENCH_DOCS:-$repo/docs} BENCH_README=${BENCH_README:-$repo/README.md}
[ "$MANAGERS" = 0 ] && BENCH_PHASES=${BENCH_PHASES//managers/}
want() { [[ ",$BENCH_PHASES," == *",$1,"* ]]; }

work=$(mktemp -d /tmp/husk-bench.XXXXXX)
res=$work/results
mkdir -p "$res" "$work/roots"
# Ids unique to this run: crun and runc put a container's cgroup at /ID.
tag=hb$$
bin_of() { case $1 in husk) echo "$husk" ;; crun) command -v crun ;; runc) command -v runc ;; esac; }
runtimes=(husk)
for r in crun runc; do command -v $r >/dev/null && runtimes+=($r); done
# present LIST...: those of LIST that are installed.
present() { local r; for r in "$@"; do [[ " ${runtimes[*]} " == *" $r "* ]] && echo -n "$r "; done; }
SCALE_RUNTIMES=$(present $SCALE_RUNTIMES) PARALLEL_RUNTIMES=$(present $PARALLEL_RUNTIMES)
CYCLE_RUNTIMES=$(present $CYCLE_RUNTIMES)

# delete_all BINARY ROOT: removes every container of ROOT, two at a time.
delete_all() {
    "$1" --root "$2" list -q 2>/dev/null | xargs -r -P 2 -n 1 "$1" --root "$2" delete -f >/dev/null 2>&1 || true
}
# husk's cgroups for a --root other than its default are /husk/root=HASH/ID,
# HASH from the root's path (cgroups::resolve_path): the root=HASH parents go
# at the end. husk_cgroup_hash prints that directory's name.
husk_cgroup_hash() {
    python3 -c 'import sys
h = 0xcbf29ce484222325
for b in sys.argv[1].encode():
    h = ((h ^ b) * 0x100000001b3) % 2**64
print("root=%016x" % h)' "$1"
}
husk_parents_before=$(ls -d /sys/fs/cgroup/*/husk 2>/dev/null || true)
cleanup() {
    set +e
    local root r hash dir
    for root in "$work"/roots/*; do
        [ -d "$root" ] || continue
        r=${root##*-}
        [ "$r" = husk ] || [ "$r" = crun ] || [ "$r" = runc ] || continue
        delete_all "$(bin_of "$r")" "$root"
        if [ "$r" = husk ]; then
            hash=$(husk_cgroup_hash "$root")
            rmdir /sys/fs/cgroup/*/husk/"$hash" 2>/dev/null
        fi
    done
    # crun, seeing no cgroup2 mount at /sys/fs/cgroup/unified, makes
    # directories (with a cgroup.procs file) in the tmpfs beneath it: no
    # cgroups, but they outlive the namespace, hidden under the host's mount.
    mountpoint -q /sys/fs/cgroup/unified || rm -rf /sys/fs/cgroup/unified/"$tag"-*
    for dir in /sys/fs/cgroup/*/husk; do
        echo "$husk_parents_before" | grep -qx "$dir" || rmdir "$dir" 2>/dev/null
    done
    [ -z "${BENCH_KEEP:-}" ] || { mkdir -p "$BENCH_KEEP" && cp -a "$res"/. "$BENCH_KEEP"/; }
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# rotated ROUND NAME...: the names, rotated left by ROUND-1 (round 1: as given).
rotated() {
    local k=$(( ($1 - 1) % ($# - 1) )) all=("${@:2}")
    echo "${all[@]:k}" "${all[@]:0:k}"
}
# hf NAME RUNS HYPERFINE_ARGS...: one hyperfine call, its JSON in the results.
# A failure is reported and leaves its benchmark out of the report, no more.
hf() {
    local name=$1 runs=$2
    shift 2
    if ! hyperfine -N --warmup "$WARMUP" --runs "$runs" --export-json "$res/$name.json" "$@" \
        > "$res/$name.log" 2>&1; then
        echo "bench: $name failed:" >&2
        tail -5 "$res/$name.log" >&2
        rm -f "$res/$name.json"
        return 0
    fi
}
note() { echo "bench: $(date +%T) $*" >&2; }

# The bundles: static busybox, husk's default config (`husk spec`), running
# `true` or `sleep`; "plain" drops linux.seccomp, "seccomp" keeps husk's
# default profile. All three runtimes get the same config.json.
rootfs=$work/rootfs
mkdir -p "$rootfs/bin" "$rootfs/"{proc,sys,dev,etc,tmp}
cp /bin/busybox "$rootfs/bin/busybox"
for a in true sh sleep; do ln -s busybox "$rootfs/bin/$a"; done
"$husk" spec --bundle "$work"
for kind in plain seccomp; do
    for what in true sleep; do
        python3 - "$work/config.json" "$work/bundles/$kind-$what" "$rootfs" "$kind" "$what" <<'EOF'
import json, os, sys
src, bundle, rootfs, kind, what = sys.argv[1:]
c = json.load(open(src))
c["root"]["path"] = rootfs
c["process"]["args"] = ["true"] if what == "true" else ["sleep", "600"]
c["process"]["terminal"] = False
c["ociVersion"] = "1.0.2-dev"  # crun 1.8 refuses 1.2.0
if kind == "plain":
    c["linux"].pop("seccomp", None)
elif "seccomp" not in c["linux"]:
    sys.exit("bench: husk spec's config has no linux.seccomp")
os.makedirs(bundle)
json.dump(c, open(os.path.join(bundle, "config.json"), "w"))
EOF
    done
done
bundle() { echo "$work/bundles/$1-$2"; }

# (a) one create+start+delete -f (youki's method); ids unique per call.
cat > "$work/lifecycle.sh" <<'EOF'
#!/bin/sh
r=$1; root=$2; bundle=$3; id=$4-$$
$r --root $root create --bundle $bundle $id >/dev/null && $r --root $root start $id && $r --root $root delete -f $id
EOF
# PARALLEL containers created and started at once; fails if any does.
cat > "$work/parallel.sh" <<'EOF'
#!/bin/bash
r=$1; root=$2; bundle=$3; prefix=$4; n=$5
pids=()
for i in $(seq $n); do
    ( $r --root $root create --bundle $bundle $prefix-$i >/dev/null && $r --root $root start $prefix-$i ) &
    pids+=($!)
done
status=0
for p in "${pids[@]}"; do wait $p || status=1; done
exit $status
EOF
# Removes the parallel runs' containers before each run (not timed).
cat > "$work/parallel-clean.sh" <<EOF
#!/bin/bash
$(declare -f delete_all)
delete_all "\$1" "\$2"
EOF
chmod +x "$work"/*.sh

# populate BINARY ROOT BUNDLE PREFIX FROM TO: creates PREFIX-FROM..PREFIX-TO.
populate() {
    local b=$1 root=$2 bundle=$3 prefix=$4 i
    for i in $(seq "$5" "$6"); do
        "$b" --root "$root" create --bundle "$bundle" "$prefix-$i" > /dev/null 2>&1 < /dev/null ||
            { echo "bench: $b create $prefix-$i failed" >&2; return 1; }
    done
}

time_phase() {
    local kind round r b life many args
    for kind in $KINDS; do
        note "time, $kind bundle: $STATE_COUNT containers for (c) and (d)"
        for r in "${runtimes[@]}"; do
            b=$(bin_of $r) many=$work/roots/$kind-n-$r
            mkdir -p "$many" "$work/roots/$kind-life-$r"
            "$b" --root "$many" run -d --bundle "$(bundle $kind sleep)" "$tag-$kind-t" > /dev/null 2>&1 < /dev/null
            populate "$b" "$many" "$(bundle $kind sleep)" "$tag-$kind-i" 2 "$STATE_COUNT"
        done
        for round in $(seq "$ROUNDS"); do
            note "time, $kind bundle, round $round/$ROUNDS: $(rotated $round "${runtimes[@]}")"
            for bench in lifecycle run exec state list; do
                args=()
                for r in $(rotated $round "${runtimes[@]}"); do
                    b=$(bin_of $r) life=$work/roots/$kind-life-$r many=$work/roots/$kind-n-$r
                    case $bench in
                    lifecycle) args+=(-n $r "$work/lifecycle.sh $b $life $(bundle $kind true) $tag-c") ;;
                    run) args+=(-n $r "$b --root $life run --bundle $(bundle $kind true) $tag-run-$r") ;;
                    exec) args+=(-n $r "$b --root $many exec $tag-$kind-t true") ;;
                    state) args+=(-n $r "$b --root $many state $tag-$kind-t") ;;
                    list) args+=(-n $r "$b --root $many list") ;;
                    esac
                done
                hf "time-$kind-$bench-r$round" "$RUNS" "${args[@]}"
            done
        done
        for r in "${runtimes[@]}"; do delete_all "$(bin_of $r)" "$work/roots/$kind-n-$r"; done
    done
}

# measure KIND RUNTIME COMMAND ARGS...: peak RSS (KiB) of one command, to memory.txt.
measure() {
    local kind=$1 r=$2 what=$3 out=$work/rss.txt
    shift 3
    if /usr/bin/time -o "$out" -f %M "$@" > /dev/null 2>&1 < /dev/null; then
        echo "$kind $r $what $(tail -1 "$out")" >> "$res/memory.txt"
    else
        echo "bench: memory: $r $what failed" >&2
    fi
}
# wait_stopped BINARY ROOT ID: until state says stopped (at most 5 s).
wait_stopped() {
    local i
    for i in $(seq 50); do
        # Read whole: a reader that quits early would make a writer see EPIPE.
        case $("$1" --root "$2" state "$3" 2>/dev/null) in *'"status": "stopped"'* | *'"status":"stopped"'*) return 0 ;; esac
        sleep 0.1
    done
    return 1
}
memory_phase() {
    local kind i r b root id pid
    for kind in $KINDS; do
        note "memory, $kind bundle: $MEM_RUNS times every command"
        for i in $(seq "$MEM_RUNS"); do
            for r in $(rotated "$i" "${runtimes[@]}"); do
                b=$(bin_of $r) root=$work/roots/mem-$kind-$r id=$tag-m$i
                mkdir -p "$root"
                measure $kind $r create "$b" --root "$root" create --bundle "$(bundle $kind sleep)" "$id"
                pid=$("$b" --root "$root" state "$id" | grep -o '"pid": *[0-9]*' | grep -o '[0-9]*$') || true
                [ -z "$pid" ] || echo "$kind $r init-vmhwm $(awk '/^VmHWM/ {print $2}' /proc/$pid/status)" >> "$res/memory.txt"
                measure $kind $r state "$b" --root "$root" state "$id"
                measure $kind $r list "$b" --root "$root" list
                measure $kind $r start "$b" --root "$root" start "$id"
                measure $kind $r exec "$b" --root "$root" exec "$id" true
                measure $kind $r kill "$b" --root "$root" kill "$id" KILL
                wait_stopped "$b" "$root" "$id" || echo "bench: memory: $r $id did not stop" >&2
                measure $kind $r delete "$b" --root "$root" delete "$id"
                measure $kind $r run "$b" --root "$root" run --bundle "$(bundle $kind true)" "$id-run"
                delete_all "$b" "$root"
            done
        done
    done
}

scale_phase() {
    local counts have=0 n r round args
    counts=$(echo "$SCALE" | tr ',' '\n' | sort -n | tr '\n' ' ')
    for n in $counts; do
        note "scale: $n containers of each of $SCALE_RUNTIMES"
        for r in $SCALE_RUNTIMES; do
            mkdir -p "$work/roots/scale-$r"
            populate "$(bin_of $r)" "$work/roots/scale-$r" "$(bundle plain sleep)" "$tag-s" $((have + 1)) "$n"
        done
        have=$n
        for round in $(seq "$ROUNDS"); do
            for what in state list; do
                args=()
                for r in $(rotated $round $SCALE_RUNTIMES); do
                    case $what in
                    state) args+=(-n $r "$(bin_of $r) --root $work/roots/scale-$r state $tag-s-1") ;;
                    list) args+=(-n $r "$(bin_of $r) --root $work/roots/scale-$r list") ;;
                    esac
                done
                # A control: what the host's load alone (all those containers'
                # processes and cgroups) does to starting any process.
                [ $what = list ] || args+=(-n baseline /bin/true)
                hf "scale-$what-$n-r$round" "$SCALE_RUNS" "${args[@]}"
            done
        done
    done
    note "scale: deleting them"
    for r in $SCALE_RUNTIMES; do delete_all "$(bin_of $r)" "$work/roots/scale-$r"; done
}

parallel_phase() {
    local round r args prepare
    note "parallel: $PARALLEL containers at once, $ROUNDS rounds of $PARALLEL_RUNS"
    for round in $(seq "$ROUNDS"); do
        args=()
        for r in $(rotated $round $PARALLEL_RUNTIMES); do
            mkdir -p "$work/roots/parallel-$r"
            args+=(-n $r --prepare "$work/parallel-clean.sh $(bin_of $r) $work/roots/parallel-$r"
                "$work/parallel.sh $(bin_of $r) $work/roots/parallel-$r $(bundle plain true) $tag-p $PARALLEL")
        done
        hf "parallel-r$round" "$PARALLEL_RUNS" "${args[@]}"
    done
    for r in $PARALLEL_RUNTIMES; do delete_all "$(bin_of $r)" "$work/roots/parallel-$r"; done
}

# What a leak would leave, one "name count" a line. ROOT: the state root.
leak_counts() {
    local root=$1
    echo "shell-fds $(ls /proc/$cycles_shell/fd | wc -l)"
    # But husk's staging directory #new itself ('#': never a container's
    # id); what is in it counts.
    echo "state-root-entries $(find "$root" -mindepth 1 ! -path "$root/#new" | wc -l)"
    # Real cgroups only: not crun's directories in the tmpfs beneath the
    # hidden cgroup2 mount (see cleanup).
    echo "cgroups $(find /sys/fs/cgroup/ -maxdepth 5 -path /sys/fs/cgroup/unified -prune -o -type d -name "$tag-y-*" -print | wc -l)"
    echo "mounts $(wc -l < /proc/self/mounts)"
    echo "processes $(( $(grep -ls -- "$tag-y-" /proc/[0-9]*/cgroup | wc -l) + $(pgrep -fc -- "$root" || true) ))"
    # The state root is under /tmp: its #new again, which a first create makes.
    echo "tmp-files $(find /tmp -xdev ! -path "$res" ! -path "$res/*" ! -path "$work/rss.txt" ! -path "$root/#new" | wc -l)"
    echo "run-files $(find /run -xdev | wc -l)"
}
cycles_phase() {
    local r b root block=$((CYCLES >= 10 ? CYCLES / 10 : 1)) blocks i j id t0 t1
    blocks=$((CYCLES / block)) cycles_shell=$BASHPID
    for r in $CYCLE_RUNTIMES; do
        note "cycles: $((blocks * block)) create+start+delete of $r"
        b=$(bin_of $r) root=$work/roots/cycles-$r
        mkdir -p "$root"
        leak_counts "$root" > "$res/cycles-$r-before.txt"
        : > "$res/cycles-$r-blocks.txt"
        for i in $(seq "$blocks"); do
            t0=$EPOCHREALTIME
            for j in $(seq "$block"); do
                id=$tag-y-$i-$j
                "$b" --root "$root" create --bundle "$(bundle plain true)" "$id" > /dev/null < /dev/null &&
                    "$b" --root "$root" start "$id" && "$b" --root "$root" delete -f "$id" ||
                    echo "bench: cycles: $r cycle $i-$j failed" >&2
            done
            t1=$EPOCHREALTIME
            echo "$block ${t0/./} ${t1/./}" >> "$res/cycles-$r-blocks.txt"
        done
        leak_counts "$root" > "$res/cycles-$r-after.txt"
    done
}

# The per-command wrapper the issue's figures included (each command in its
# own namespace): its cost, to say how these figures differ.
wrapper_cost() {
    hf namespace-wrapper 30 -n wrapped "unshare -m sh -c 'mountpoint -q /sys/fs/cgroup/unified && umount /sys/fs/cgroup/unified; exec true'" -n bare true
}

# What the report needs to know of this run.
write_settings() {
python3 - "$res/settings.json" <<EOF
import json, sys
json.dump({
    "runs": $RUNS, "rounds": $ROUNDS, "warmup": $WARMUP, "kinds": "$KINDS".split(),
    "state_count": $STATE_COUNT, "mem_runs": $MEM_RUNS, "scale_runs": $SCALE_RUNS,
    "parallel": $PARALLEL, "parallel_runs": $PARALLEL_RUNS, "cycles": $CYCLES,
    "manager_runs": $MANAGER_RUNS, "share_runs": $SHARE_RUNS, "runtimes": "${runtimes[*]}".split(),
    "machine": "$(nproc) cores, $(awk '/MemTotal/{printf "%d GiB", $2/1048576}' /proc/meminfo), kernel $(uname -r)",
    "versions": {$(for r in "${runtimes[@]}"; do printf '"%s": "%s", ' $r "$($(bin_of $r) --version | sed -n 1p)"; done)},
    "sizes": {$(for r in "${runtimes[@]}"; do printf '"%s": %s, ' $r "$(stat -L -c %s "$(bin_of $r)")"; done)},
    "smoke": "${BENCH_SMOKE:-}", "duration_s": $SECONDS,
}, open(sys.argv[1], "w"), indent=1)
EOF
}

# phase NAME: runs NAME_phase if wanted, in a subshell that stops at its
# first failure; the other phases and the report go on without it.
phase() {
    want "$1" || return 0
    set +e
    ( set -e; "$1_phase" )
    local rc=$?
    set -e
    [ $rc = 0 ] || echo "bench: the $1 phase failed (status $rc); the report leaves out what it lacks" >&2
}
managers_phase() {
    note "managers"
    HUSK_BENCH_TAG=$tag "$repo/scripts/bench-managers.sh" "$husk" "$res"
}

phase time
if [ $quick = 1 ]; then
    write_settings
    python3 "$repo/scripts/bench_report.py" --quick "$res"
    exit 0
fi
phase memory
phase scale
phase parallel
phase cycles
phase managers
wrapper_cost
write_settings
python3 "$repo/scripts/bench_report.py" "$res" "$BENCH_DOCS" "$BENCH_README"
