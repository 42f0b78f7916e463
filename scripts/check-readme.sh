#!/usr/bin/env bash
# Runs the README's two commands, `make demo` and `make test`, the way a
# newcomer would: in a fresh clone of this repository's HEAD (committed work
# only), as root and as a fresh ordinary user who may use sudo and has cargo
# only in ~/.cargo/bin (rustup's place, which sudo's PATH lacks). Checks that
# the demo's container prints its greeting, that the tests pass, and that
# nothing in the user's clone was written by root (cargo never ran under sudo).
#
# Root only, on Debian 12. Whatever it adds is removed at the end, and the
# machine is checked to be as it was: the user (with its home and its
# /etc/subuid and /etc/subgid ranges), its sudoers entry, the sudo package if
# it had to install it, the clones. The user's toolchain is root's, bound
# read-only into a private mount namespace that ends with the script; crates
# are fetched from crates.io into the user's ~/.cargo.
#
#   scripts/check-readme.sh [--as root|user|both] [--test-args ARGS]
# --test-args: passed as `make test TEST_ARGS=...` (e.g. "--test lifecycle"),
# to run part of the suite; by default the whole of it.
set -euo pipefail

as=both
test_args=
while [ $# -gt 0 ]; do
    case "$1" in
        --as) as=$2; shift 2 ;;
        --test-args) test_args=$2; shift 2 ;;
        *) echo "usage: $0 [--as root|user|both] [--test-args ARGS]" >&2; exit 2 ;;
    esac
done
[ "$(id -u)" -eq 0 ] || { echo "$0: run as root" >&2; exit 1; }
repo=$(git -C "$(dirname "$0")" rev-parse --show-toplevel)

# Everything below runs in a private mount namespace: the toolchain's bind
# mount disappears with it.
if [ -z "${CHECK_README_UNSHARED:-}" ]; then
    exec env CHECK_README_UNSHARED=1 unshare --mount --propagation private -- "$0" --as "$as" --test-args "$test_args"
fi

user=husk-newcomer
sysroot=$(rustc --print sysroot)
work=$(mktemp -d /tmp/husk-readme.XXXXXX)
chmod 755 "$work"
snapshot() {
    for f in /etc/passwd /etc/group /etc/shadow /etc/gshadow /etc/subuid /etc/subgid; do
        echo "== $f"; cat "$f"
    done
    echo "== sudoers.d"; ls /etc/sudoers.d 2>/dev/null || true
    echo "== packages"; dpkg-query -W -f='${Package} ${Status}\n' | grep ' installed$' || true
    echo "== home"; ls /home
}
snapshot > "$work/before"

installed_sudo=
cleanup() {
    local status=$?
    set +e
    if id -u "$user" >/dev/null 2>&1; then
        pkill -KILL -u "$user" 2>/dev/null
        userdel -r "$user" 2>/dev/null
    fi
    rm -f "/etc/sudoers.d/$user"
    if [ -n "$installed_sudo" ]; then
        # sudo's prerm refuses when root has no password unless forced; the
        # purge also runs the triggers (ldconfig, man-db) the install left pending.
        SUDO_FORCE_REMOVE=yes DEBIAN_FRONTEND=noninteractive NEEDRESTART_SUSPEND=1 \
            apt-get purge -y -qq $installed_sudo > "$work/purge.log" 2>&1 ||
            { echo "check-readme: apt-get purge $installed_sudo failed:" >&2; tail -5 "$work/purge.log" >&2; }
    fi
    umount "$work/rust" 2>/dev/null
    snapshot > "$work/after"
    if diff -u "$work/before" "$work/after" > "$work/diff"; then
        echo "check-readme: the machine is as it was"
    else
        echo "check-readme: the machine differs from before:" >&2
        cat "$work/diff" >&2
        status=1
    fi
    rm -rf "$work"
    exit "$status"
}
trap cleanup EXIT

ok() { echo "check-readme: ok: $*"; }
fail() { echo "check-readme: FAILED: $*" >&2; exit 1; }

# The README's commands in a fresh clone; $1: how to run a shell command.
readme_commands() {
    local dir=$1; shift
    local log=$work/$(basename "$dir").log
    "$@" "cd $dir && make demo" > "$log.demo" 2>&1 || { tail -30 "$log.demo" >&2; fail "make demo ($*)"; }
    grep -q "Hello from a husk container" "$log.demo" || { tail -30 "$log.demo" >&2; fail "no greeting from make demo"; }
    ok "make demo: $(grep -c . "$log.demo") lines, greeting printed"
    "$@" "cd $dir && make test TEST_ARGS='$test_args'" > "$log.test" 2>&1 || { grep -E '^test .*FAILED|panicked|error' "$log.test" | head -30 >&2; tail -20 "$log.test" >&2; fail "make test ($*)"; }
    ok "make test: $(grep -E '^test result' "$log.test" | awk '{p+=$4; f+=$6} END {print p " passed, " f " failed"}')"
}

if [ "$as" = root ] || [ "$as" = both ]; then
    echo "check-readme: as root, in $work/root-clone"
    git clone --quiet "$repo" "$work/root-clone"
    readme_commands "$work/root-clone" bash -c
fi

if [ "$as" = user ] || [ "$as" = both ]; then
    if ! command -v sudo >/dev/null; then
        before=$(dpkg-query -W -f='${Package} ${Status}\n' | grep ' installed$' | cut -d' ' -f1)
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive NEEDRESTART_SUSPEND=1 apt-get install -y -qq sudo >/dev/null 2>&1
        installed_sudo=$(comm -13 <(echo "$before" | sort) \
            <(dpkg-query -W -f='${Package} ${Status}\n' | grep ' installed$' | cut -d' ' -f1 | sort) | xargs)
        ok "installed $installed_sudo (purged at the end)"
    fi
    useradd -m -s /bin/bash "$user"
    home=$(getent passwd "$user" | cut -d: -f6)
    chmod 700 "$home"  # adduser's default on Debian 12
    echo "$user ALL=(ALL:ALL) NOPASSWD: ALL" > "/etc/sudoers.d/$user"
    chmod 440 "/etc/sudoers.d/$user"
    visudo -cqf "/etc/sudoers.d/$user"

    # rustup's layout: cargo and rustc in ~/.cargo/bin, put on PATH by ~/.cargo/env.
    mkdir "$work/rust"
    mount --bind "$sysroot" "$work/rust"
    mount -o remount,bind,ro "$work/rust"
    runuser -u "$user" -- sh -c 'mkdir -p ~/.cargo/bin && echo "export PATH=\$HOME/.cargo/bin:\$PATH" > ~/.cargo/env'
    for tool in cargo rustc rustdoc; do
        runuser -u "$user" -- ln -s "$work/rust/bin/$tool" "$home/.cargo/bin/$tool"
    done
    as_user() { runuser -u "$user" -- env -i HOME="$home" USER="$user" LOGNAME="$user" \
        PATH=/usr/local/bin:/usr/bin:/bin TERM=dumb bash -c ". ~/.cargo/env && $1"; }
    as_user "cargo --version" >/dev/null || fail "the user has no cargo"
    # What the README's old `sudo make ...` hit: sudo's PATH has no cargo.
    if as_user "sudo sh -c 'command -v cargo'" >/dev/null; then
        echo "check-readme: note: cargo is on sudo's PATH here" >&2
    else
        ok "cargo is not on sudo's PATH (so nothing may run cargo under sudo)"
    fi

    echo "check-readme: as $user (sudo), in $home/husk"
    git clone --quiet "$repo" "$work/user-clone"
    mv "$work/user-clone" "$home/husk"
    chown -R "$user:$user" "$home/husk"
    readme_commands "$home/husk" as_user
    root_owned=$(find "$home/husk" ! -user "$user" | head -5)
    [ -z "$root_owned" ] || fail "files in the clone not owned by $user: $root_owned"
    ok "every file in the user's clone is the user's"
fi
