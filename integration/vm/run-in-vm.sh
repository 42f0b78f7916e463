#!/usr/bin/env bash
# Runs one command as root in a throw-away QEMU VM whose only cgroup hierarchy
# is cgroup v2 with every controller enabled at the root: husk's pure cgroup v2
# test host. The guest boots Debian's kernel (linux-image-amd64) with a busybox
# initramfs built here; its root is the host's / (read-only, over virtio-9p)
# under a RAM overlay, so the freshly built husk, the test binaries and
# /bin/busybox are at the same paths and nothing the guest writes survives.
#
# With --systemd, the guest boots the host's systemd as PID 1 (which mounts
# cgroup2 itself) and runs COMMAND as a oneshot service: the host for the
# systemd cgroup driver's tests.
#
# usage: integration/vm/run-in-vm.sh [--timeout SECS] [--systemd] -- COMMAND [ARGS...]
# Exit status: COMMAND's; 124 on timeout; 125 when the VM gave no status.
#
# KVM is not usable on these machines (the /dev/kvm present hangs), so the VM
# runs under TCG. It boots an uncompressed vmlinux through QEMU's microvm
# machine, and hands the guest the host's TSC rate (tsc_early_khz), since
# microvm has no other clock to calibrate against and calibration under load
# hangs otherwise.
set -euo pipefail

timeout_s=900
systemd=
while [ $# -gt 0 ]; do
    case $1 in
        --timeout) timeout_s=$2; shift 2 ;;
        --systemd) systemd=yes; shift ;;
        --) shift; break ;;
        *) echo "usage: $0 [--timeout SECS] [--systemd] -- COMMAND [ARGS...]" >&2; exit 2 ;;
    esac
done
[ $# -gt 0 ] || { echo "$0: no command" >&2; exit 2; }

cache=${HUSK_VM_CACHE:-/var/tmp/husk-vm-cache}
mkdir -p "$cache"

# One VM at a time: two TCG guests on a small host starve each other into
# timeouts. A second caller waits here (its --timeout starts after the wait).
exec 9>"$cache/vm.lock"
if ! flock -n 9; then
    echo "$0: waiting for another husk VM to finish" >&2
    flock 9
fi

kernel=
for k in $(ls -1 /boot/vmlinuz-* 2>/dev/null | sort -V -r); do
    [ -f "/lib/modules/${k#/boot/vmlinuz-}/modules.dep" ] && { kernel=$k; break; }
done
[ -n "$kernel" ] || { echo "$0: no kernel: apt-get install linux-image-amd64" >&2; exit 2; }
kver=${kernel#/boot/vmlinuz-}
moddir=/lib/modules/$kver
busybox=/bin/busybox
if ldd "$busybox" >/dev/null 2>&1; then
    echo "$0: $busybox is not static: apt-get install busybox-static" >&2; exit 2
fi

# An uncompressed vmlinux boots through the PVH entry: no in-guest decompression.
vmlinux=$cache/vmlinux-$kver
if [ ! -f "$vmlinux" ]; then
    for sig in 'fd377a585a00:xz -dc' '28b52ffd:zstd -dc' '1f8b08:gzip -dc'; do
        hex=${sig%%:*}; tool=${sig#*:}
        command -v "${tool%% *}" >/dev/null || continue
        pattern=$(echo "$hex" | sed 's/../\\x&/g')
        for off in $(LC_ALL=C grep -obUaP "$pattern" "$kernel" | cut -d: -f1 | head -3); do
            tail -c +$((off + 1)) "$kernel" | $tool > "$vmlinux.tmp" 2>/dev/null || true
            if [ "$(head -c4 "$vmlinux.tmp" | od -An -tx1 | tr -d ' ')" = 7f454c46 ]; then
                mv "$vmlinux.tmp" "$vmlinux"; break 2
            fi
        done
    done
    rm -f "$vmlinux.tmp"
    [ -f "$vmlinux" ] || { echo "$0: cannot extract vmlinux from $kernel" >&2; exit 2; }
fi

# The initramfs: busybox, the modules to reach the host's root, and init.
initrd=$cache/initrd-$kver-$(md5sum < "$0" | cut -c1-8).cpio
if [ ! -f "$initrd" ]; then
    root=$(mktemp -d)
    mkdir -p "$root"/{bin,dev,proc,sys,ctl,lower,upper,newroot,mods}
    cp "$busybox" "$root/bin/busybox"
    order=()
    declare -A seen=()
    resolve() {
        local rel=$1 line dep
        [ -n "${seen[$rel]:-}" ] && return 0
        seen[$rel]=1
        line=$(grep -m1 -F "$rel:" "$moddir/modules.dep") || return 0
        for dep in ${line#*:}; do resolve "$dep"; done
        order+=("$rel")
    }
    for m in virtio_mmio 9pnet_virtio 9p overlay; do
        rel=$(grep -oE "^[^:]*/${m//_/[_-]}\.ko(\.(xz|zst|gz))?:" "$moddir/modules.dep" | head -1) || true
        [ -n "$rel" ] && resolve "${rel%:}"
    done
    i=10
    for rel in "${order[@]}"; do
        case $rel in
            *.xz) xz -dc "$moddir/$rel" ;;
            *.zst) zstd -qdc "$moddir/$rel" ;;
            *.gz) gzip -dc "$moddir/$rel" ;;
            *) cat "$moddir/$rel" ;;
        esac > "$root/mods/$i.ko"
        i=$((i + 1))
    done
    cat > "$root/init" <<'INIT'
#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc; mount -t sysfs sysfs /sys; mount -t devtmpfs devtmpfs /dev
exec </dev/null >/dev/console 2>&1
for m in /mods/*.ko; do insmod "$m"; done
fail() { echo "vm init: $*"; poweroff -f; }
o=trans=virtio,version=9p2000.L,msize=512000
mount -t 9p -o $o,cache=none ctl /ctl || fail "mount ctl"
mount -t 9p -o $o,cache=loose,ro hostroot /lower || fail "mount host root"
mount -t tmpfs tmpfs /upper && mkdir /upper/u /upper/w
mount -t overlay -o lowerdir=/lower,upperdir=/upper/u,workdir=/upper/w overlay /newroot || fail overlay
R=/newroot
mount -t proc proc $R/proc; mount -t sysfs sysfs $R/sys; mount --move /dev $R/dev
# /tmp stays the host's (through the overlay): a checkout may live there.
mount -t tmpfs -o mode=755 tmpfs $R/run
mkdir -p $R/dev/pts $R/dev/shm $R/run/vmctl
mount -t devpts -o gid=5,mode=620,ptmxmode=666 devpts $R/dev/pts; mount -t tmpfs -o mode=1777 shm $R/dev/shm
mount --move /ctl $R/run/vmctl
if [ -f $R/run/vmctl/systemd ]; then
    # systemd mounts cgroup2 and starts only the test's unit.
    cat > $R/etc/systemd/system/husk-vm.service <<UNIT
[Unit]
DefaultDependencies=no
[Service]
Type=oneshot
ExecStart=/bin/busybox sh /run/vmctl/stage2
StandardInput=null
StandardOutput=null
StandardError=null
UNIT
    # /tmp must stay the host's (a test's files live there): no tmpfs on it,
    # and no boot-time cleaning of it (tmpfiles' "D /tmp").
    for u in tmp.mount systemd-tmpfiles-setup.service systemd-tmpfiles-clean.timer; do
        ln -sf /dev/null $R/etc/systemd/system/$u
    done
    exec switch_root $R /lib/systemd/systemd --unit=husk-vm.service
fi
mount -t cgroup2 cgroup2 $R/sys/fs/cgroup || fail "mount cgroup2"
for c in $(cat $R/sys/fs/cgroup/cgroup.controllers); do echo "+$c" > $R/sys/fs/cgroup/cgroup.subtree_control; done
mount -t bpf bpf $R/sys/fs/bpf 2>/dev/null
exec switch_root $R /bin/busybox sh /run/vmctl/stage2
INIT
    chmod 755 "$root/init"
    (cd "$root" && find . | cpio -o -H newc --quiet) > "$initrd.tmp"
    mv "$initrd.tmp" "$initrd"
    rm -rf "$root"
fi

work=$(mktemp -d /tmp/husk-vm.XXXXXX)
trap 'rm -rf "$work"' EXIT
{
    echo 'export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8'
    echo "cd '$(pwd -P)'"
    printf '('
    for a in "$@"; do printf " '%s'" "${a//\'/\'\\\'\'}"; done
    printf ') </dev/null >/run/vmctl/out 2>&1\n'
    echo 'echo $? > /run/vmctl/rc; sync; poweroff -f'
} > "$work/stage2"
: > "$work/out"
[ -n "$systemd" ] && : > "$work/systemd"

tsc=$(awk -F: '/^cpu MHz/{printf "%d", $2*1000; exit}' /proc/cpuinfo)
append="console=ttyS0 quiet panic=-1 rdinit=/init cgroup_no_v1=all mitigations=off tsc=reliable tsc_early_khz=$tsc"
timeout -k 5 "$timeout_s" qemu-system-x86_64 \
    -machine microvm,accel=tcg,rtc=on -cpu max -smp ${HUSK_VM_CPUS:-1} -m 2048 \
    -nodefaults -no-user-config -display none -no-reboot \
    -kernel "$vmlinux" -initrd "$initrd" -append "$append" \
    -chardev file,id=con,path="$work/console" -serial chardev:con \
    -fsdev local,id=ctl,path="$work",security_model=passthrough \
    -device virtio-9p-device,fsdev=ctl,mount_tag=ctl \
    -fsdev local,id=root,path=/,security_model=passthrough,readonly=on,multidevs=remap \
    -device virtio-9p-device,fsdev=root,mount_tag=hostroot </dev/null >"$work/qemu.log" 2>&1 &
qemu=$!
tail -n +1 -s 0.2 -f --pid=$qemu "$work/out" &
wait $qemu && qrc=0 || qrc=$?
sleep 0.3
if [ -f "$work/rc" ]; then
    exit "$(cat "$work/rc")"
fi
[ "$qrc" = 124 ] && { echo "$0: timed out after ${timeout_s}s" >&2; tail -20 "$work/console" >&2; exit 124; }
echo "$0: the VM gave no exit status (qemu: $qrc)" >&2
tail -30 "$work/console" >&2
cat "$work/qemu.log" >&2
exit 125
