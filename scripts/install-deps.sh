#!/usr/bin/env bash
# Installs the Debian 12 packages one part of husk's work needs; idempotent.
#   (no option)  building husk, `make demo` and `make test`
#   --vm         the QEMU VM suites (make test-cgroupv2, test-systemd,
#                test-checkpoint, conformance-cgroupv2): qemu, Debian's kernel
#                (linux-image-amd64 also becomes the next boot kernel of the
#                machine it is installed on), criu, cpio, xz
#   --bench      make bench / bench-quick: hyperfine, time, crun and runc, and
#                gcc for the managers' part's wrapper (make bench also runs
#                --managers for podman, containerd and docker)
#   --managers   make integration: podman, conmon, containerd and docker.io
#                (their daemons are not started: the tests start private ones)
#   --all        everything above (CI on a fresh machine)
# Run it as root, or as an ordinary user: then only apt-get runs through sudo.
set -euo pipefail

build=(busybox-static libseccomp-dev libc6-dev pkg-config gcc make)
# The tests: newuidmap for rootless, unshare/script/setsid, ps, strace's
# fault injection, ip for the network devices moved in.
tests=(uidmap procps util-linux strace passwd iproute2)
vm=(qemu-system-x86 linux-image-amd64 cpio xz-utils criu iproute2 busybox-static)
bench=(hyperfine time crun runc python3 util-linux procps findutils gcc libc6-dev busybox-static)
managers=(podman conmon containerd docker.io iptables iproute2 passwd bsdutils python3 gcc libc6-dev busybox-static)

case "${1:-}" in
    "") packages=("${build[@]}" "${tests[@]}") ;;
    --vm) packages=("${vm[@]}") ;;
    --bench) packages=("${bench[@]}") ;;
    --managers) packages=("${managers[@]}") ;;
    --all) packages=("${build[@]}" "${tests[@]}" "${vm[@]}" "${bench[@]}" "${managers[@]}") ;;
    *) echo "usage: $0 [--vm|--bench|--managers|--all]" >&2; exit 2 ;;
esac

# Every target that installs packages then builds with cargo: fail before
# installing anything when there is none. sudo resets PATH, so this must run
# as the user whose rustup put cargo on PATH (the Makefile never runs cargo
# under sudo).
if ! command -v "${CARGO:-cargo}" >/dev/null; then
    echo "install-deps: cargo not found in PATH: install Rust first (https://rustup.rs)," \
         "as the user who runs make, then open a new shell or run: . ~/.cargo/env" >&2
    exit 1
fi

# The shipped husk is built for Rust's x86_64-unknown-linux-musl target (its
# own musl, not a Debian package) where Rust has it: rustup adds it, as the
# user, like cargo. Without it, `make build` makes a glibc husk instead.
musl=x86_64-unknown-linux-musl
case "${1:-}" in
    "" | --all)
        if [ ! -d "$(rustc --print target-libdir --target "$musl" 2>/dev/null)" ] &&
            ! { command -v rustup >/dev/null && timeout 300 rustup target add "$musl"; }; then
            echo "install-deps: no Rust standard library for $musl (rustup target add $musl):" \
                 "make build makes a glibc husk, whose every command starts 0.3-0.6 ms later" >&2
        fi
        ;;
esac

missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ "${#missing[@]}" -eq 0 ] && exit 0

as_root=()
if [ "$(id -u)" -ne 0 ]; then
    if ! command -v sudo >/dev/null; then
        echo "install-deps: not root and no sudo: as root, run: apt-get install ${missing[*]}" >&2
        exit 1
    fi
    as_root=(sudo)
fi
echo "install-deps: installing ${missing[*]}" >&2
# Packaged daemons (containerd, dockerd) must not start on install.
policy=/usr/sbin/policy-rc.d
made_policy=
if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' | "${as_root[@]}" tee "$policy" >/dev/null
    "${as_root[@]}" chmod 755 "$policy"
    made_policy=yes
fi
status=0
"${as_root[@]}" apt-get update -qq || status=$?
[ "$status" -ne 0 ] || "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive \
    apt-get install -y -qq "${missing[@]}" >/dev/null || status=$?
[ -z "$made_policy" ] || "${as_root[@]}" rm -f "$policy"
exit "$status"
