# The sandbox one test file (runtime-tools) or group (contest) runs in, and the
# cleanup after it. Sourced by conformance.sh, which sets:
#   RUNTIME       absolute path of the runtime under test
#   HIDE_CGROUP2  1: run the test in a private mount namespace without the
#                 hybrid cgroup2 mount /sys/fs/cgroup/unified (crun 1.8 refuses
#                 hybrid hosts); the host's mounts are untouched
#   ID_LAST       1: the wrapper moves `create ID OPTIONS` to `create OPTIONS ID`
#                 (crun 1.8 takes no option after the container id; contest
#                 puts --bundle there)
#   TIMEOUT       seconds one test may take
#
# Everything a test leaves is found by what ties it to that test, never by a
# broad pattern: several people's tests run on the same host at once.
#   - its processes: they carry HUSK_CONFORMANCE_SANDBOX=<its dir> in their
#     environment (containers' processes do not: they get the config's env);
#   - its containers: `list` in every --root it passed the runtime;
#   - its cgroups: created while it ran, with a path component that is one of
#     its container ids, husk's hash of one of its state roots, or a cgroup name
#     the suites use (cgrouptest, testdir, runtime-test);
#   - its mounts: below its dir.

# A fresh sandbox dir: 0755 (a container whose uid 0 is an unprivileged host
# uid must reach the bundle in it), with tmp/ (TMPDIR: the suites put their
# bundles and contest its state roots there) and state/ (a --root).
sandbox_new() {
    local dir
    dir=$(mktemp -d "${CONFORMANCE_TMP:-/tmp}/husk-conformance.XXXXXX") || return 1
    chmod 0755 "$dir"
    mkdir -m 0755 "$dir/tmp" "$dir/state"
    echo "$dir"
}

# The runtime as the suite calls it: DIR/runtime logs every call to DIR/calls
# (the ids and roots to clean up afterwards) and execs the runtime, with
# `--root DIR/state` when $2 is "own-root" (runtime-tools passes no --root;
# contest passes its own).
sandbox_wrapper() { # DIR own-root|no-root
    local dir=$1 root_opt=()
    [ "$2" = own-root ] && root_opt=(--root "$dir/state")
    {
        echo '#!/bin/bash'
        printf 'printf "%%s\\n" "$*" >> %q\n' "$dir/calls"
        echo 'args=("$@")'
        if [ "$ID_LAST" = 1 ]; then
            cat <<'EOF'
for i in "${!args[@]}"; do
    [ "${args[i]}" = create ] || continue
    id=${args[i+1]:-}
    if [ -n "$id" ] && [ "${id#-}" = "$id" ] && [ $((i + 2)) -lt ${#args[@]} ]; then
        args=("${args[@]:0:i+1}" "${args[@]:i+2}" "$id")
    fi
    break
done
EOF
        fi
        printf 'exec %q' "$RUNTIME"
        [ ${#root_opt[@]} -gt 0 ] && printf ' %q' "${root_opt[@]}"
        echo ' "${args[@]}"'
    } > "$dir/runtime"
    chmod 0755 "$dir/runtime"
}

# Runs COMMAND in the sandbox DIR with the time limit, stdout and stderr to
# LOG.out and LOG.err, and the exit status in LOG.rc (124: timed out).
# `timeout` runs it in a process group of its own and kills the whole group;
# what left the group (containers, daemonized runtime parts) goes in cleanup.
# On ^C the group is killed at once, and the caller's cleanup follows.
sandbox_run() { # DIR LOG COMMAND...
    local dir=$1 log=$2 pid rc
    shift 2
    local ns=()
    [ "$HIDE_CGROUP2" = 1 ] &&
        ns=(unshare -m sh -c 'umount /sys/fs/cgroup/unified 2>/dev/null; exec "$@"' sh)
    (
        cd "$dir" || exit 1
        # only stdin, stdout and stderr: contest checks that no other fd
        # reaches the container, and our caller may have left some open
        for fd in $(ls /proc/$BASHPID/fd); do
            [ "$fd" -gt 2 ] && eval "exec $fd>&-" 2>/dev/null
        done
        exec env HUSK_CONFORMANCE_SANDBOX="$dir" TMPDIR="$dir/tmp" \
            timeout -k 10 "$TIMEOUT" "${ns[@]}" "$@"
    ) </dev/null >"$log.out" 2>"$log.err" &
    pid=$!
    # (timeout's pid is its process group's id)
    trap 'kill -KILL -- -$pid 2>/dev/null' INT TERM
    wait "$pid"
    rc=$?
    # a trapped signal ends `wait` early: wait again for the real status
    while kill -0 "$pid" 2>/dev/null; do
        wait "$pid"
        rc=$?
    done
    trap - INT TERM
    echo "$rc" >"$log.rc"
    cp "$dir/calls" "$log.calls" 2>/dev/null
    return 0
}

# Runs the runtime itself (for cleanup) as the test saw it.
sandbox_runtime() {
    if [ "$HIDE_CGROUP2" = 1 ]; then
        unshare -m sh -c 'umount /sys/fs/cgroup/unified 2>/dev/null; exec "$@"' sh "$RUNTIME" "$@"
    else
        "$RUNTIME" "$@"
    fi
}

# husk's cgroup for a container without linux.cgroupsPath under a state root
# other than its default is /husk/root=<FNV-1a-64 of the root, 16 hex digits>/<id>
# (husk_root_hash prints that root=... directory's name)
# (crates/libhusk/src/cgroups/mod.rs, resolve_path).
husk_root_hash() {
    local h=$((0xcbf29ce484222325)) b
    for b in $(printf %s "$1" | od -An -v -tu1); do
        h=$(((h ^ b) * 0x100000001b3))
    done
    printf 'root=%016x\n' "$h"
}

cgroup_dirs() { find /sys/fs/cgroup -mindepth 2 -type d 2>/dev/null | sort; }

# Thaws a cgroup (a paused container's processes cannot die while frozen)
# and kills what is in it.
cgroup_kill() {
    local cg=$1
    [ -f "$cg/freezer.state" ] && echo THAWED >"$cg/freezer.state" 2>/dev/null
    [ -f "$cg/cgroup.freeze" ] && echo 0 >"$cg/cgroup.freeze" 2>/dev/null
    if [ -f "$cg/cgroup.kill" ]; then
        echo 1 >"$cg/cgroup.kill" 2>/dev/null
    else
        # (cgroupfs files report size 0: read them, never test -s)
        xargs -r kill -9 <"$cg/cgroup.procs" 2>/dev/null
    fi
}

# Removes a cgroup, killing what is still in it (bounded: 5 s).
cgroup_remove() {
    local cg=$1 i
    for i in $(seq 50); do
        rmdir "$cg" 2>/dev/null && return 0
        [ -d "$cg" ] || return 0
        cgroup_kill "$cg"
        sleep 0.1
    done
    echo "conformance: could not remove cgroup $cg" >&2
}

# Processes that inherited the sandbox's marker (see sandbox_run).
sandbox_kill_marked() {
    local dir=$1 env pid
    for env in /proc/[0-9]*/environ; do
        pid=${env#/proc/}; pid=${pid%/environ}
        if grep -qszxF "HUSK_CONFORMANCE_SANDBOX=$dir" "$env"; then
            kill -9 "$pid" 2>/dev/null
        fi
    done
}

# Leaves the host as it was before the test: CGROUPS_BEFORE is the file
# cgroup_dirs wrote before it ran.
sandbox_cleanup() { # DIR CGROUPS_BEFORE
    local dir=$1 before=$2 root id cg c
    sandbox_kill_marked "$dir"
    # every state root the test used; what is left in them is force-deleted
    local roots=("$dir/state")
    mapfile -t -O 1 roots < <(grep -o -- '--root [^ ]*' "$dir/calls" 2>/dev/null | cut -d' ' -f2 | sort -u)
    local tags=(cgrouptest testdir runtime-test)
    for root in "${roots[@]}"; do
        tags+=("$(husk_root_hash "$root")")
        [ -d "$root" ] || continue
        for id in $(sandbox_runtime --root "$root" list -q 2>/dev/null); do
            sandbox_runtime --root "$root" kill "$id" KILL >/dev/null 2>&1
            sandbox_runtime --root "$root" delete --force "$id" >/dev/null 2>&1
        done
    done
    # container ids: both suites name containers by UUID
    mapfile -t -O ${#tags[@]} tags < <(grep -oE '[0-9a-f]{8}(-[0-9a-f]{4}){3}-[0-9a-f]{12}' \
        "$dir/calls" 2>/dev/null | sort -u)
    # the test's new cgroups, deepest first: every one thawed and emptied
    # before any is removed (a process can sit in one cgroup per hierarchy)
    local cgroups=()
    while read -r cg; do
        for c in ${cg//\// }; do
            # Not grep -q: leaving at the first match would end printf by
            # SIGPIPE, which pipefail takes for a failure (a cgroup left).
            if printf '%s\n' "${tags[@]}" | grep -xF -- "$c" >/dev/null; then
                cgroups+=("$cg")
                break
            fi
        done
    done < <(comm -13 "$before" <(cgroup_dirs) | sort -r)
    for cg in "${cgroups[@]}"; do cgroup_kill "$cg"; done
    for cg in "${cgroups[@]}"; do cgroup_remove "$cg"; done
    awk -v d="$dir" '$2 == d || index($2, d "/") == 1 { print $2 }' /proc/self/mounts | sort -r |
        while read -r m; do umount -l "$m" 2>/dev/null; done
    rm -rf --one-file-system "$dir"
    # contest's seccomp_notify hardcodes its agent's socket in /tmp, not
    # under the sandbox's TMPDIR.
    [ -S /tmp/youki_seccomp_agent.unix ] && rm -f /tmp/youki_seccomp_agent.unix
    return 0
}
