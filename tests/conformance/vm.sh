#!/usr/bin/env bash
# Runs conformance.sh in the pure cgroup v2 QEMU VM (integration/vm/run-in-vm.sh):
# the suites are built here first, the guest sees them (and the runtime) at the
# same paths, and its per-test logs come back into --logdir on this host (the
# guest's writes vanish with it: they travel as a tar on its output).
#
# usage: tests/conformance/vm.sh [conformance.sh options] [NAME...]
#   --logdir DIR is this host's (default
#   /var/tmp/husk-conformance/RUNTIME-cgroupv2-DATE); --timeout is per test in
#   the guest (default 900: the VM runs under TCG, several times slower).
# env: CONFORMANCE_VM_TIMEOUT  limit of the whole VM run in seconds (default 14400)
#      HUSK_VM_CPUS            the guest's CPUs (run-in-vm.sh; default 2 here: contest's
#                              exec_cpu_affinity needs two, and TCG is faster with them)
# Exit status: conformance.sh's in the guest; 124 when the VM run timed out.
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
guest_logs=/var/tmp/husk-conformance-guest
begin='==== conformance logs (tar.gz, base64) ===='
end='==== end of conformance logs ===='

if [ "${1:-}" = --guest ]; then
    shift
    # process substitution needs /dev/fd, which the guest's devtmpfs lacks
    [ -e /dev/fd ] || ln -s /proc/self/fd /dev/fd
    # The sandboxes on a tmpfs, as on a host's /tmp, not on the guest's
    # overlayfs root: overlayfs refuses a 0:0 character device (its whiteout),
    # which runtime-tools' linux_masked_paths makes in its bundle.
    export CONFORMANCE_TMP=/run
    # The guest's loopback is down (its init configures no network), which a
    # real host's is not: criu's kernel probe (kerndat_tcp_repair connects to
    # 127.0.0.1) fails there, and every contest checkpoint with it.
    ip link set lo up 2>/dev/null || echo "conformance: cannot bring lo up in the guest" >&2
    "$here/conformance.sh" --logdir "$guest_logs" "$@"
    rc=$?
    echo "$begin"
    tar -C "$guest_logs" -cz . | base64
    echo "$end"
    exit $rc
fi

# This host: pick out --logdir, --runtime and --timeout; build the suites.
args=() logdir= runtime=husk timeout=900 suites=
while [ $# -gt 0 ]; do
    case $1 in
        --logdir) logdir=$2; shift 2 ;;
        --timeout) timeout=$2; shift 2 ;;
        --runtime) runtime=$2; args+=("$1" "$2"); shift 2 ;;
        --runtime-tools | --contest) suites=$suites$2; args+=("$1" "$2"); shift 2 ;;
        --expected) args+=("$1" "$2"); shift 2 ;;
        *) args+=("$1"); shift ;;
    esac
done
"$here/conformance.sh" --build-only "${args[@]}" || exit
[ -n "$suites" ] || exit 0 # (conformance.sh said which were skipped)
logdir=${logdir:-/var/tmp/husk-conformance/$(basename "$runtime")-cgroupv2-$(date +%Y%m%d-%H%M%S)}
mkdir -p "$logdir" && logdir=$(cd "$logdir" && pwd -P)
blob=$(mktemp /tmp/husk-conformance-vm.XXXXXX)
trap 'rm -f "$blob"' EXIT

cd "$here/../.." || exit 2
export HUSK_VM_CPUS=${HUSK_VM_CPUS:-2}
# The guest's output, line by line as it comes (no buffering): the tar goes
# to a file, the rest to stdout, and result lines to results.txt at once so
# that they outlive a VM that runs out of time.
split_output() {
    local line inside=0
    while IFS= read -r line; do
        if [ "$line" = "$begin" ]; then inside=1
        elif [ "$line" = "$end" ]; then inside=0
        elif [ $inside = 1 ]; then echo "$line" >>"$blob"
        else
            echo "$line"
            case $line in
                "runtime-tools "* | "contest "*) echo "$line" >>"$logdir/results.txt" ;;
            esac
        fi
    done
}
: >"$logdir/results.txt"
integration/vm/run-in-vm.sh --timeout "${CONFORMANCE_VM_TIMEOUT:-14400}" -- \
    "$here/vm.sh" --guest --timeout "$timeout" "${args[@]}" | split_output
rc=${PIPESTATUS[0]}
if [ -s "$blob" ] && base64 -d "$blob" | tar -xz -C "$logdir"; then
    echo "conformance: the guest's logs are in $logdir"
else
    echo "conformance: no logs came back from the VM; results so far in $logdir/results.txt" >&2
fi
exit "$rc"
