#!/usr/bin/env bash
# Builds a busybox bundle in ./demo as the invoking user and runs it with husk
# in the foreground as root: directly when root, else through sudo (only husk
# runs as root; its state is under husk's default /run/husk).
set -euo pipefail
husk=${HUSK:-target/release/husk}
as_root=()
if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || { echo "demo: the container runs as root: run make demo as root, or install sudo" >&2; exit 1; }
    as_root=(sudo)
fi
bundle=demo/bundle

rm -rf "$bundle"
# The mount points too: husk, as root, would make them root's in your tree.
mkdir -p "$bundle"/rootfs/{bin,etc,proc,dev,sys}
cp /bin/busybox "$bundle/rootfs/bin/busybox"
for applet in $(/bin/busybox --list); do
    [ "$applet" = busybox ] || ln -s busybox "$bundle/rootfs/bin/$applet"
done
echo 'root:x:0:0:root:/root:/bin/sh' > "$bundle/rootfs/etc/passwd"
echo 'root:x:0:' > "$bundle/rootfs/etc/group"

"$husk" spec --bundle "$bundle"
# The default process is an interactive sh on a terminal; the demo runs a
# script instead, with plain output (so it also runs without a terminal).
script='echo "Hello from a husk container"; echo "hostname: $(hostname)"; echo "pid: $$"; id; ps'
sed -i "s|^\(\s*\)\"sh\"$|\1\"sh\", \"-c\", \"${script//\"/\\\\\"}\"|; s|\"terminal\": true|\"terminal\": false|" "$bundle/config.json"
exec "${as_root[@]}" "$husk" run --bundle "$bundle" husk-demo-$$
