#!/usr/bin/env bash
# Installs what building and testing husk needs on Debian 12. Idempotent; root only.
# With --managers, also podman, conmon, containerd and docker.io for
# integration/ (their daemons are not started: the tests start private ones).
set -euo pipefail

packages=(busybox-static libseccomp-dev libc6-dev pkg-config gcc make uidmap procps util-linux hyperfine time
          crun runc criu iproute2 qemu-system-x86 linux-image-amd64 cpio xz-utils python3 strace)
if [ "${1:-}" = --managers ]; then
    packages=(podman conmon containerd docker.io iptables iproute2 passwd bsdutils python3 gcc libc6-dev busybox-static)
fi
missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
    if [ "$(id -u)" -ne 0 ]; then
        echo "install-deps: run as root to install: ${missing[*]}" >&2
        exit 1
    fi
    export DEBIAN_FRONTEND=noninteractive
    # Packaged daemons (containerd, dockerd) must not start on install.
    policy=/usr/sbin/policy-rc.d
    made_policy=
    if [ ! -e "$policy" ]; then
        printf '#!/bin/sh\nexit 101\n' > "$policy"
        chmod 755 "$policy"
        made_policy=yes
    fi
    apt-get update -qq
    apt-get install -y -qq "${missing[@]}" >/dev/null
    [ -n "$made_policy" ] && rm -f "$policy"
fi
if ! command -v cargo >/dev/null; then
    echo "install-deps: cargo not found: install Rust (rustup) first" >&2
    exit 1
fi
