#!/usr/bin/env bash
# podman's and containerd's checkpoint and restore with husk as the runtime,
# only: make test-checkpoint runs this inside the QEMU VM, whose 6.1 kernel
# criu 3.17 works on (podman.sh and containerd.sh skip them elsewhere).
# The VM's root is an overlay: podman stores with vfs, containerd with the
# native snapshotter. Exits non-zero on any failure.
#
# usage: integration/checkpoint-managers.sh HUSK_BINARY
set -uo pipefail
here=$(dirname "$(readlink -f "$0")")
husk=$(readlink -f "${1:?usage: integration/checkpoint-managers.sh HUSK_BINARY}")
# The VM's init leaves loopback down (criu probes TCP repair over it) and
# makes no /dev/fd (bash's process substitution needs it).
ip link set lo up 2>/dev/null
[ -e /dev/fd ] || ln -s /proc/self/fd /dev/fd
rc=0
echo "== podman"
HUSK_INTEGRATION_ONLY=checkpoint HUSK_PODMAN_STORAGE_DRIVER=vfs "$here/podman.sh" "$husk" || rc=1
echo "== containerd"
HUSK_INTEGRATION_ONLY=checkpoint HUSK_CTR_SNAPSHOTTER=native "$here/containerd.sh" "$husk" || rc=1
exit $rc
