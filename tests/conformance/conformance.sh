#!/usr/bin/env bash
# Runs the OCI runtime conformance suites against a runtime speaking runc's
# CLI, from checkouts the caller names (nothing is fetched here, nothing is
# built in this repository): opencontainers/runtime-tools' validation tests
# (one test file at a time) and youki's contest (one group at a time). Each
# runs alone in its own sandbox dir with a time limit, and everything it leaves
# (containers, processes, cgroups, mounts) is removed after it; see lib.sh.
# docs/conformance.md has the results and how to build the suites.
#
# usage: tests/conformance/conformance.sh --runtime BIN [options] [NAME...]
#   --runtime BIN          the runtime under test (husk, runc, crun)
#   --runtime-tools DIR    runtime-tools checkout (tested at 260e151); built
#                          there when not yet (Go; vendored modules)
#   --contest DIR          youki checkout (tested at bc787206); contest is
#                          built there when not yet (cargo)
#   --expected FILE        compare with FILE (compare.sh): exit 1 on a
#                          regression; without it, results are only printed.
#                          A test expected to pass that fails gets one retry
#                          (flaky.txt in the logs lists those that then passed)
#   --logdir DIR           per-test logs and results.txt (default
#                          /var/tmp/husk-conformance/RUNTIME-DATE)
#   --timeout SECS         time limit per test file or group (default 180)
#   --hide-cgroup2         run every test in a private mount namespace without
#                          /sys/fs/cgroup/unified (crun 1.8 on a hybrid host)
#   --id-last              move create's container id after its options (crun
#                          1.8 takes no option after the id; contest puts
#                          --bundle there)
#   --rebuild              build the suites even when already built
#   --build-only           build the suites, run nothing
#   NAME...                run only these test files / groups (of both suites)
# A suite whose directory is not given (or is empty) is skipped, saying so.
# Exit status: 0, 1 on a regression against --expected, 2 on a usage or build
# error.
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
. "$here/runtime-tools.sh"
. "$here/contest.sh"

usage() { sed -n '/^# usage:/,/^# Exit status/p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }

RUNTIME= RT_DIR= CT_DIR= EXPECTED= LOGDIR= TIMEOUT=180 HIDE_CGROUP2=0 ID_LAST=0
rebuild=0 build_only=0
while [ $# -gt 0 ]; do
    case $1 in
        --runtime) RUNTIME=$2; shift 2 ;;
        --runtime-tools) RT_DIR=$2; shift 2 ;;
        --contest) CT_DIR=$2; shift 2 ;;
        --expected) EXPECTED=$2; shift 2 ;;
        --logdir) LOGDIR=$2; shift 2 ;;
        --timeout) TIMEOUT=$2; shift 2 ;;
        --hide-cgroup2) HIDE_CGROUP2=1; shift ;;
        --id-last) ID_LAST=1; shift ;;
        --rebuild) rebuild=1; shift ;;
        --build-only) build_only=1; shift ;;
        -h | --help) usage ;;
        -*) echo "conformance: unknown option $1" >&2; usage ;;
        *) break ;;
    esac
done
only=("$@")
[ -z "$EXPECTED" ] || [ -f "$EXPECTED" ] || { echo "conformance: no file $EXPECTED" >&2; exit 2; }

# The suites to run: "NAME DIR" of each one given.
suites=()
check_checkout() { # SUITE DIR TESTED_COMMIT
    local suite=$1 dir=$2 commit=$3 head
    if [ -z "$dir" ]; then
        echo "conformance: $suite skipped: no checkout given" \
            "(make conformance $( [ "$suite" = runtime-tools ] && echo RUNTIME_TOOLS || echo CONTEST)=DIR)"
        return
    fi
    [ -d "$dir" ] || { echo "conformance: $suite: $dir is not a directory" >&2; exit 2; }
    dir=$(cd "$dir" && pwd -P)
    head=$(git -C "$dir" rev-parse HEAD 2>/dev/null || echo unknown)
    [[ $head == "$commit"* ]] ||
        echo "conformance: note: $suite at $head, expected results are for $commit" >&2
    suites+=("$suite $dir")
}
check_checkout runtime-tools "$RT_DIR" "$RT_TESTED_COMMIT"
check_checkout contest "$CT_DIR" "$CT_TESTED_COMMIT"

for s in "${suites[@]}"; do
    set -- $s
    case $1 in
        runtime-tools) rt_build "$2" "$rebuild" ;;
        contest) ct_build "$2" "$rebuild" ;;
    esac || { echo "conformance: building $1 in $2 failed" >&2; exit 2; }
done
[ $build_only = 1 ] && exit 0
[ ${#suites[@]} -gt 0 ] || exit 0

[ -n "$RUNTIME" ] || { echo "conformance: --runtime is required" >&2; usage; }
path=$(command -v "$RUNTIME") || { echo "conformance: no runtime $RUNTIME" >&2; exit 2; }
RUNTIME=$(readlink -f "$path")
[ "$(id -u)" = 0 ] || { echo "conformance: the suites need root" >&2; exit 2; }
LOGDIR=${LOGDIR:-/var/tmp/husk-conformance/$(basename "$RUNTIME")-$(date +%Y%m%d-%H%M%S)}
mkdir -p "$LOGDIR" && LOGDIR=$(cd "$LOGDIR" && pwd -P)
results=$LOGDIR/results.txt
: >"$results"
echo "conformance: $RUNTIME ($("$RUNTIME" --version 2>/dev/null | head -1)); logs in $LOGDIR"

selected() { # NAME
    [ ${#only[@]} = 0 ] && return 0
    printf '%s\n' "${only[@]}" | grep -xF -- "$1" >/dev/null
}

run_test() { # SUITE DIR NAME LOG: prints the result line
    case $1 in
        runtime-tools) rt_run "$2" "$3" "$4" ;;
        contest) ct_run "$2" "$3" "$4" ;;
    esac
}
verdict() { echo "$1" | cut -d' ' -f3; }
expected_verdict() { # SUITE NAME
    [ -n "$EXPECTED" ] && awk -v s="$1" -v n="$2" '$1 == s && $2 == n { print $3; exit }' "$EXPECTED"
}

# ^C: the running test is killed and cleaned up (sandbox_run), then we stop.
trap 'echo "conformance: interrupted" >&2; exit 130' INT TERM

full=()
start=$SECONDS
for s in "${suites[@]}"; do
    set -- $s
    suite=$1 dir=$2
    mkdir -p "$LOGDIR/$suite"
    case $suite in
        runtime-tools) names=$(rt_tests "$dir") ;;
        contest) names=$(ct_tests "$dir") ;;
    esac
    [ -n "$names" ] || { echo "conformance: $suite: no tests found in $dir" >&2; exit 2; }
    [ ${#only[@]} = 0 ] && full+=("$suite")
    suite_start=$SECONDS
    for name in $names; do
        selected "$name" || continue
        log=$LOGDIR/$suite/$name
        line=$(run_test "$suite" "$dir" "$name" "$log")
        # Timing-sensitive tests fail now and then on a loaded host: one
        # expected to pass gets a second try (the first one's logs kept).
        if [ "$(verdict "$line")" != PASS ] && [ "$(expected_verdict "$suite" "$name")" = PASS ]; then
            for f in "$log".*; do mv "$f" "$log.try1${f#"$log"}"; done
            retry=$(run_test "$suite" "$dir" "$name" "$log")
            if [ "$(verdict "$retry")" = PASS ]; then
                echo "conformance: flaky: $line (passed on retry)" | tee -a "$LOGDIR/flaky.txt"
            fi
            line=$retry
        fi
        echo "$line" | tee -a "$results"
    done
    echo "conformance: $suite took $((SECONDS - suite_start)) s"
done
echo "conformance: results in $results ($((SECONDS - start)) s)"

if [ -n "$EXPECTED" ]; then
    "$here/compare.sh" "$EXPECTED" "$results" "${full[@]}"
else
    awk '{ n[$3]++ } END { printf "%d passed, %d failed, %d skipped\n", n["PASS"], n["FAIL"], n["SKIP"] }' "$results"
fi
