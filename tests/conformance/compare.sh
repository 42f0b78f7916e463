#!/usr/bin/env bash
# Compares a run's results with the expected results and prints the summary.
#
# usage: tests/conformance/compare.sh EXPECTED RESULTS [SUITE...]
#   EXPECTED  tests/conformance/expected.txt (or expected-cgroupv2.txt)
#   RESULTS   results.txt of a run: "SUITE NAME PASS|FAIL|SKIP [details]"
#   SUITE...  the suites run in full: for them, an expected test that did not
#             run is reported too
#
# Both files have one line per test: SUITE NAME VERDICT [text]; # starts a
# comment. A FAIL whose text starts with "not ok LIST:" names what fails
# (TAP numbers or contest test names, and `timeout`, `error` or `exit`): the
# run may fail less than that but nothing else. Otherwise the text is the
# reason and any failure of that test is as expected.
#
# Exit status 1 on a regression: a test expected to PASS that did not, a FAIL
# in a test not in the expected LIST, or a test missing from EXPECTED.
# A test doing better than expected is reported, not fatal.
set -euo pipefail

expected_file=${1:?usage: compare.sh EXPECTED RESULTS [SUITE...]}
results_file=${2:?usage: compare.sh EXPECTED RESULTS [SUITE...]}
shift 2
full_suites=" $* "

declare -A want=() want_text=() seen=()
while read -r suite name verdict text; do
    case $suite in '' | '#'*) continue ;; esac
    want[$suite/$name]=$verdict
    want_text[$suite/$name]=$text
done <"$expected_file"

# The "not ok LIST:" of a result or expectation, one item a line.
fail_list() { sed -n 's/^not ok \([^ :]*\):.*/\1/p' <<<"$1" | tr ',' '\n' | grep -v '^$' || true; }

regressions=() better=() changed=()
declare -A passed=() failed=() skipped=()
while read -r suite name verdict text; do
    [ -n "$suite" ] || continue
    key=$suite/$name
    seen[$key]=1
    case $verdict in
        PASS) passed[$suite]=$((${passed[$suite]:-0} + 1)) ;;
        SKIP) skipped[$suite]=$((${skipped[$suite]:-0} + 1)) ;;
        *) failed[$suite]=$((${failed[$suite]:-0} + 1)) ;;
    esac
    exp=${want[$key]:-}
    if [ -z "$exp" ]; then
        regressions+=("$key: not in $expected_file (unknown test): $verdict $text")
    elif [ "$verdict" = "$exp" ] && [ "$verdict" != FAIL ]; then
        :
    elif [ "$exp" = PASS ]; then
        regressions+=("$key: expected PASS, got $verdict $text")
    elif [ "$verdict" = PASS ]; then
        better+=("$key: now passes (expected $exp): update $expected_file")
    elif [ "$verdict" = FAIL ] && [ "$exp" = FAIL ]; then
        allowed=$(fail_list "${want_text[$key]}")
        [ -n "$allowed" ] || continue
        got=$(fail_list "$text")
        new=$(comm -13 <(sort <<<"$allowed") <(sort <<<"$got") | paste -sd, -)
        fixed=$(comm -23 <(sort <<<"$allowed") <(sort <<<"$got") | paste -sd, -)
        [ -z "$new" ] || regressions+=("$key: newly failing: $new ($text)")
        [ -z "$fixed" ] || better+=("$key: now passes: $fixed: update $expected_file")
    else
        changed+=("$key: expected $exp, got $verdict $text")
    fi
done <"$results_file"

for key in "${!want[@]}"; do
    [ -z "${seen[$key]:-}" ] && [[ $full_suites == *" ${key%%/*} "* ]] &&
        changed+=("$key: expected ${want[$key]}, did not run")
done

report() { # TITLE ITEM...
    local title=$1
    shift
    [ $# -gt 0 ] || return 0
    echo "$title:"
    printf '  %s\n' "$@" | sort
}
report "REGRESSIONS" "${regressions[@]}"
report "better than expected" "${better[@]}"
report "changed (not fatal)" "${changed[@]}"

total_p=0 total_f=0 total_s=0
for suite in $(awk '{print $1}' "$results_file" | sort -u); do
    p=${passed[$suite]:-0} f=${failed[$suite]:-0} s=${skipped[$suite]:-0}
    echo "$suite: $p passed, $f failed, $s skipped"
    total_p=$((total_p + p)) total_f=$((total_f + f)) total_s=$((total_s + s))
done
echo "$total_p passed, $total_f failed, $total_s skipped"
if [ ${#regressions[@]} -gt 0 ]; then
    echo "conformance: ${#regressions[@]} regression(s) against $expected_file"
    exit 1
fi
echo "conformance: as expected ($expected_file)"
