#!/usr/bin/env bash
# Prints the markdown tables of docs/conformance.md from the results.txt of
# several runs: a summary, then one row per test file / group and one column
# per run (TIMEOUT: killed at the time limit; - : not run).
#
# usage: tests/conformance/table.sh LABEL=RESULTS... (e.g. husk=/var/tmp/.../results.txt)
set -euo pipefail
[ $# -gt 0 ] || { echo "usage: $0 LABEL=RESULTS..." >&2; exit 2; }

labels=() files=()
for a in "$@"; do
    labels+=("${a%%=*}")
    files+=("${a#*=}")
done

cell() { # SUITE NAME FILE
    awk -v s="$1" -v n="$2" '
        $1 == s && $2 == n { v = $3; if (v == "FAIL" && $0 ~ /^[^ ]+ [^ ]+ FAIL not ok [^ ]*timeout[^ ]*:/) v = "TIMEOUT"; print v; found = 1; exit }
        END { if (!found) print "-" }' "$3"
}

header() { # FIRST-COLUMN
    local l
    printf '| %s |' "$1"
    for l in "${labels[@]}"; do printf ' %s |' "$l"; done
    printf '\n|---|'
    for l in "${labels[@]}"; do printf -- '---|'; done
    echo
}

suites=$(cat "${files[@]}" | awk '{ print $1 }' | awk '!seen[$0]++')

header suite
for suite in $suites; do
    printf '| %s |' "$suite"
    for f in "${files[@]}"; do
        awk -v s="$suite" '$1 == s { n[$3]++ } END { printf " %d pass, %d fail, %d skip |", n["PASS"], n["FAIL"], n["SKIP"] }' "$f"
    done
    echo
done

for suite in $suites; do
    echo
    header "$suite"
    for name in $(cat "${files[@]}" | awk -v s="$suite" '$1 == s { print $2 }' | sort -u); do
        printf '| %s |' "$name"
        for f in "${files[@]}"; do printf ' %s |' "$(cell "$suite" "$name" "$f")"; done
        echo
    done
done
