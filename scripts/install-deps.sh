#!/usr/bin/env bash
# Installs what building and testing husk needs on Debian 12. Idempotent; root only.
set -euo pipefail

packages=(busybox-static libseccomp-dev pkg-config gcc make uidmap procps util-linux hyperfine time crun runc
          qemu-system-x86 linux-image-amd64 cpio xz-utils)
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
    apt-get update -qq
    apt-get install -y -qq "${missing[@]}" >/dev/null
fi
if ! command -v cargo >/dev/null; then
    echo "install-deps: cargo not found: install Rust (rustup) first" >&2
    exit 1
fi
