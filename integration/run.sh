#!/usr/bin/env bash
# Runs every end-to-end manager script against one husk binary and prints the
# total: "N passed, N failed, N skipped". Exits non-zero if any check failed.
#
# usage: integration/run.sh HUSK_BINARY [podman|containerd|docker ...]
set -uo pipefail
here=$(dirname "$(readlink -f "$0")")
husk=$(readlink -f "${1:?usage: integration/run.sh HUSK_BINARY [SCRIPT...]}")
shift
scripts=("$@")
[ "${#scripts[@]}" -gt 0 ] || scripts=(podman containerd docker)

HUSK_RESULTS=$(mktemp /tmp/husk-results.XXXXXX)
export HUSK_RESULTS
# The managers' network setup (as `ip netns add`) makes /run/netns a mount
# of its own and leaves it: unmounted again, empty, if they made it here.
netns_mounted=0
! mountpoint -q /run/netns 2>/dev/null || netns_mounted=1
clean_up() {
    rm -f "$HUSK_RESULTS"
    if [ "$netns_mounted" = 0 ] && mountpoint -q /run/netns 2>/dev/null &&
        [ -z "$(ls -A /run/netns 2>/dev/null)" ]; then
        umount /run/netns 2>/dev/null || echo "integration: could not unmount /run/netns" >&2
    fi
}
trap clean_up EXIT
for s in "${scripts[@]}"; do
    echo "== $s"
    # Each script bounds its own commands; this bounds a script that wedges.
    timeout -k 10 900 "$here/$s.sh" "$husk"
    rc=$?
    # A script killed before its summary counts as one failure.
    [ "$rc" = 124 ] || [ "$rc" = 137 ] && echo "0 1 0" >> "$HUSK_RESULTS" && echo "FAIL $s: timed out"
done
awk '{p += $1; f += $2; s += $3} END {printf "== total: %d passed, %d failed, %d skipped\n", p, f, s; exit f > 0}' "$HUSK_RESULTS"
