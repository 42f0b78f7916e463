# opencontainers/runtime-tools' validation suite: one test file
# (validation/NAME/NAME.t, a Go program printing TAP) at a time.
# Sourced by conformance.sh; uses lib.sh.

RT_TESTED_COMMIT=260e151

# Builds runtimetest and the validation programs when missing (--rebuild:
# always), with the checkout's vendored modules: no network needed.
rt_build() { # CHECKOUT REBUILD
    local dir=$1
    if [ "$2" != 1 ] && [ -x "$dir/runtimetest" ] && ls "$dir"/validation/*/*.t >/dev/null 2>&1; then
        return 0
    fi
    echo "conformance: building runtime-tools in $dir" >&2
    (cd "$dir" && GOFLAGS="-mod=vendor ${GOFLAGS:-}" make runtimetest validation-executables) >&2
}

rt_tests() { # CHECKOUT
    local t
    for t in "$1"/validation/*/*.t; do
        [ -x "$t" ] && basename "$t" .t
    done
}

# Runs one test file in a sandbox (cwd = the sandbox, holding runtimetest and
# the rootfs tarballs, where the suite looks for them) and prints its result.
rt_run() { # CHECKOUT NAME LOG
    local checkout=$1 name=$2 log=$3 dir before
    local t=$checkout/validation/$name/$name.t
    if [ ! -x "$t" ]; then
        echo "runtime-tools $name FAIL no such test file: $t"
        return
    fi
    dir=$(sandbox_new) || return 1
    sandbox_wrapper "$dir" own-root
    cp "$checkout/runtimetest" "$checkout"/rootfs-*.tar.gz "$dir/"
    before=$(mktemp "${CONFORMANCE_TMP:-/tmp}/husk-conformance-cgroups.XXXXXX")
    cgroup_dirs >"$before"
    sandbox_run "$dir" "$log" env RUNTIME="$dir/runtime" "$t"
    sandbox_cleanup "$dir" "$before"
    rm -f "$before"
    echo "runtime-tools $name $(rt_verdict "$log")"
}

# PASS, SKIP reason, or FAIL "not ok LIST: details", LIST naming the failing
# TAP test numbers, plus `timeout` (killed at the time limit), `error` (no
# test line, only a YAML "error" diagnostic: how the lifecycle tests such as
# hooks report) or `exit` (non-zero exit status with no failing test line).
rt_verdict() { # LOG
    local out=$1.out err=$1.err rc tests notok ids first diag skips
    rc=$(cat "$1.rc")
    tests=$(grep -cE '^(not )?ok\b' "$out")
    notok=$(grep -E '^not ok\b' "$out" | grep -viE '#[[:space:]]*(skip|todo)')
    ids=$(echo "$notok" | sed -n 's/^not ok \([0-9]*\).*/\1/p' | paste -sd,)
    first=$(echo "$notok" | head -1 | sed 's/^not ok [0-9]* *-* *//')
    diag=$(sed -n 's/^ *"error": "\(..*\)",\{0,1\}$/\1/p' "$out" | head -1 | sed 's/\\n.*//')
    skips=$(grep -ciE '^ok\b.*#[[:space:]]*skip' "$out")
    if [ "$rc" = 124 ] || [ "$rc" = 137 ]; then
        fail_line "${ids:+$ids,}timeout" "killed after ${TIMEOUT}s${first:+; $first}"
    elif [ -n "$ids" ]; then
        fail_line "$ids" "$first"
    elif [ "$tests" = 0 ] && [ -n "$diag" ]; then
        fail_line error "$diag"
    elif [ "$rc" != 0 ]; then
        # (the process_*_fail tests print nothing when they pass: exit 0 is the verdict)
        fail_line exit "exit status $rc: $(grep -v '^[[:space:]]*$' "$err" | tail -1)"
    elif [ "$tests" -gt 0 ] && [ "$skips" = "$tests" ]; then
        echo "SKIP $(grep -iE '^ok\b.*#[[:space:]]*skip' "$out" | head -1 | sed 's/.*#[[:space:]]*[Ss][Kk][Ii][Pp] *//')"
    else
        echo PASS
    fi
}

# FAIL "not ok LIST: DETAILS", on one line, DETAILS cut to a readable length.
fail_line() { # LIST DETAILS
    local details
    details=$(printf '%s' "$2" | tr -s '\n\t ' '   ' | sed 's/^ //' | cut -c1-160)
    echo "FAIL not ok $1: $details"
}
