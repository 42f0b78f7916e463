#!/usr/bin/env bash
# Builds a busybox bundle in ./demo and runs it with husk in the foreground.
set -euo pipefail
husk=${HUSK:-target/release/husk}
bundle=demo/bundle

rm -rf "$bundle"
mkdir -p "$bundle/rootfs/bin" "$bundle/rootfs/etc"
cp /bin/busybox "$bundle/rootfs/bin/busybox"
for applet in $(/bin/busybox --list); do
    [ "$applet" = busybox ] || ln -s busybox "$bundle/rootfs/bin/$applet"
done
echo 'root:x:0:0:root:/root:/bin/sh' > "$bundle/rootfs/etc/passwd"
echo 'root:x:0:' > "$bundle/rootfs/etc/group"

"$husk" spec --bundle "$bundle"
# The default process is an interactive sh; the demo runs a script instead.
script='echo "Hello from a husk container"; echo "hostname: $(hostname)"; echo "pid: $$"; id; ps'
sed -i "s|^\(\s*\)\"sh\"$|\1\"sh\", \"-c\", \"${script//\"/\\\\\"}\"|" "$bundle/config.json"
exec "$husk" --root "$PWD/demo/state" run --bundle "$bundle" demo
