# youki's contest (tests/contest in a youki checkout): one group
# (`contest run -t GROUP`) at a time. Sourced by conformance.sh; uses lib.sh.

CT_TESTED_COMMIT=bc787206

# Builds contest and a static runtimetest when missing (--rebuild: always),
# as youki's `just contest` (scripts/build.sh -r -c contest) does, without
# `just`. Cargo fetches the crates. youki's rust-toolchain.toml pins a
# toolchain that may not be installed: RUSTUP_TOOLCHAIN (default stable)
# overrides it.
ct_build() { # CHECKOUT REBUILD
    local dir=$1 target
    if [ "$2" != 1 ] && [ -x "$dir/contest" ] && [ -x "$dir/runtimetest" ] && [ -f "$dir/bundle.tar.gz" ]; then
        return 0
    fi
    echo "conformance: building contest in $dir" >&2
    target=$(rustc -vV | sed -n 's/^host: //p')
    (
        set -e
        cd "$dir"
        export RUSTUP_TOOLCHAIN=${RUSTUP_TOOLCHAIN:-stable}
        cargo build --release --target "$target" --bin contest
        cp "target/$target/release/contest" contest
        # runtimetest runs inside the containers: static, in its own target dir
        CARGO_TARGET_DIR="$dir/contest-target" RUSTFLAGS="-C target-feature=+crt-static" \
            cargo build --release --target "$target" --bin runtimetest
        cp "contest-target/$target/release/runtimetest" runtimetest
        # contest reads ./bundle.tar.gz
        cp tests/contest/contest/bundle.tar.gz bundle.tar.gz
    ) >&2
}

# `contest list` builds every group first, which unpacks a bundle into TMPDIR.
ct_tests() { # CHECKOUT
    local tmp
    tmp=$(mktemp -d "${CONFORMANCE_TMP:-/tmp}/husk-conformance-list.XXXXXX") || return 1
    (cd "$1" && TMPDIR=$tmp ./contest list 2>/dev/null) | sed -n 's/^[[:space:]]*\([A-Za-z0-9_]\{1,\}\)[[:space:]]*$/\1/p'
    rm -rf --one-file-system "$tmp"
}

# Runs one group in a sandbox (cwd = the sandbox, holding bundle.tar.gz;
# contest makes its bundles and --root dirs under TMPDIR) and prints its
# result. RUNTIME_KIND tells contest which runtime's known deviations to
# skip: "runc" by default, for every runtime (husk speaks runc's command
# line, and issue #15 measures it so); CONTEST_KIND=husk runs everything,
# including the tests contest skips for runc's deviations from the spec.
ct_run() { # CHECKOUT GROUP LOG
    local checkout=$1 group=$2 log=$3 dir before kind
    dir=$(sandbox_new) || return 1
    sandbox_wrapper "$dir" no-root
    cp "$checkout/bundle.tar.gz" "$dir/"
    kind=${CONTEST_KIND:-runc}
    before=$(mktemp "${CONFORMANCE_TMP:-/tmp}/husk-conformance-cgroups.XXXXXX")
    cgroup_dirs >"$before"
    sandbox_run "$dir" "$log" env RUNTIME_KIND="$kind" \
        "$checkout/contest" run --runtime "$dir/runtime" --runtimetest "$checkout/runtimetest" -t "$group"
    sandbox_cleanup "$dir" "$before"
    rm -f "$before"
    echo "contest $group $(ct_verdict "$log")"
}

# contest prints "i / n : TEST : ok|not ok|skipped", the reason on the next
# line. PASS: no test failed and one passed; SKIP: every test skipped (the
# host cannot run them); FAIL "not ok LIST: details", LIST naming the failed
# tests plus `timeout` (killed at the time limit) or `exit` (contest stopped,
# e.g. panicked, without a result for the group).
ct_verdict() { # LOG
    local out=$1.out err=$1.err rc oks failed first skipped
    rc=$(cat "$1.rc")
    oks=$(grep -cE ' : ok$' "$out")
    skipped=$(grep -cE ' : skipped$' "$out")
    # (test names may hold spaces: "_" in the list)
    failed=$(sed -n 's/^[0-9]* \/ [0-9]* : \(.*\) : not ok$/\1/p' "$out" | tr ' ' _ | paste -sd,)
    first=$(grep -A1 -E ' : not ok$' "$out" | sed -n 2p)
    if [ "$rc" = 124 ] || [ "$rc" = 137 ]; then
        fail_line "${failed:+$failed,}timeout" "killed after ${TIMEOUT}s${first:+; $first}"
    elif [ -n "$failed" ]; then
        fail_line "$failed" "$first"
    elif [ "$rc" != 0 ] || [ $((oks + skipped)) = 0 ]; then
        fail_line exit "exit status $rc: $(grep -A1 -m1 'panicked at' "$err" | sed -n 2p)"
    elif [ "$oks" = 0 ]; then
        echo "SKIP $(grep -A1 -m1 -E ' : skipped$' "$out" | sed -n 2p | tr -s '\t ' '  ' | sed 's/^ //')"
    else
        echo PASS
    fi
}
