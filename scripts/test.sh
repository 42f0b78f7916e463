#!/usr/bin/env bash
# `make test`: builds the unit and integration tests as the invoking user and
# runs them as root, which the container tests need: directly when root, else
# each test program through sudo (cargo's runner), so cargo, rustup's PATH and
# the build stay the user's. Arguments go to `cargo test` (e.g. --test rootless).
#
# The rootless tests run as the user husk-rootless (tests/common makes it with
# `useradd -m`, which also gives it /etc/subuid and /etc/subgid ranges). If it
# did not exist before, it is removed again at the end, with its home and ranges.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo=${CARGO:-cargo}
user=husk-rootless

command -v "$cargo" >/dev/null || {
    echo "test: cargo not found in PATH: install Rust first (https://rustup.rs)" >&2
    exit 1
}
as_root=()
if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || {
        echo "test: the tests run containers as root: run make test as root, or install sudo" >&2
        exit 1
    }
    as_root=(sudo)
fi

# The tests run the husk that `make build` ships where it is musl (the
# Makefile passes TARGET then); else cargo's usual host build, in
# target/release, apart from the static one `make build` makes.
target_args=()
[ -z "${TARGET:-}" ] || target_args=(--target "$TARGET")
target=${TARGET:-$(rustc -vV | sed -n 's/^host: //p')}

# Build first, as the user, so that a password prompt does not wait behind it.
"$cargo" test --release "${target_args[@]}" --no-run "$@"

remove_user() {
    if id -u "$user" >/dev/null 2>&1; then
        "${as_root[@]}" userdel -r "$user" 2>/dev/null ||
            echo "test: could not remove the test user $user (userdel -r $user)" >&2
    fi
}
made_user=0
id -u "$user" >/dev/null 2>&1 || made_user=1
# `ip netns add` (tests/net_devices.rs, tests/checkpoint.rs) makes
# /run/netns a mount of its own, which `ip netns del` leaves: unmounted
# again, empty, if the tests made it.
netns_mounted=0
! mountpoint -q /run/netns 2>/dev/null || netns_mounted=1
clean_up() {
    [ "$made_user" = 0 ] || remove_user
    if [ "$netns_mounted" = 0 ] && mountpoint -q /run/netns 2>/dev/null &&
        [ -z "$(ls -A /run/netns 2>/dev/null)" ]; then
        "${as_root[@]}" umount /run/netns 2>/dev/null ||
            echo "test: could not unmount /run/netns, which the tests mounted" >&2
    fi
}
trap clean_up EXIT

if [ "${#as_root[@]}" -gt 0 ]; then
    sudo -v
    runner_var=CARGO_TARGET_$(echo "$target" | tr 'a-z-' 'A-Z_')_RUNNER
    # libtest's own settings are the only environment the tests read.
    export "$runner_var=sudo --preserve-env=RUST_BACKTRACE,RUST_TEST_THREADS,RUST_TEST_NOCAPTURE --"
fi
"$cargo" test --release "${target_args[@]}" "$@"
