# Shared by the end-to-end scripts in integration/: result counting, the local
# busybox image, and small helpers. Source it; it sets no shell options.

passed=0 failed=0 skipped=0
pass() { echo "ok   $1"; passed=$((passed + 1)); }
fail() { echo "FAIL $1: $2"; failed=$((failed + 1)); }
skip() { echo "skip $1: $2"; skipped=$((skipped + 1)); }

# Prints the counts (and appends them to $HUSK_RESULTS for integration/run.sh),
# then exits non-zero if anything failed.
summary() {
    echo "$passed passed, $failed failed, $skipped skipped"
    [ -n "${HUSK_RESULTS:-}" ] && echo "$passed $failed $skipped" >> "$HUSK_RESULTS"
    [ "$failed" = 0 ]
    exit $?
}

# check NAME EXPECTED ACTUAL
check() {
    if [ "$3" = "$2" ]; then pass "$1"; else fail "$1" "expected '$2', got '$(echo "$3" | head -c 400)'"; fi
}

# require_tools CHECK PACKAGE TOOL...: skips CHECK (and ends the script) unless
# every TOOL is installed.
require_tools() {
    local check=$1 package=$2 tool
    shift 2
    for tool in "$@"; do
        command -v "$tool" >/dev/null || { skip "$check" "$tool is not installed (apt-get install $package)"; summary; }
    done
}

need_root() {
    [ "$(id -u)" = 0 ] || { skip "$1" "needs root"; summary; }
}

# make_rootfs DIR: a busybox root filesystem with applet links, users and a
# page for httpd. busybox-static is used because the image has no libc.
make_rootfs() {
    local dir=$1 busybox
    busybox=$(command -v busybox) || return 1
    ldd "$busybox" >/dev/null 2>&1 && return 1 # dynamic: useless in the image
    mkdir -p "$dir"/{bin,etc,www,tmp,root,proc,sys,dev,run}
    cp "$busybox" "$dir/bin/busybox"
    for a in $("$dir/bin/busybox" --list); do [ "$a" = busybox ] || ln -sf busybox "$dir/bin/$a"; done
    printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n' > "$dir/etc/passwd"
    printf 'root:x:0:\nnobody:x:65534:\n' > "$dir/etc/group"
    echo husk-httpd-ok > "$dir/www/index.html"
    chmod 1777 "$dir/tmp"
}

# make_sd_notify DEST: a static sd_notify sender for the image (busybox has
# none): sends its arguments, one per line, to $NOTIFY_SOCKET.
make_sd_notify() {
    local src
    src=$(mktemp /tmp/husk-sd-notify.XXXXXX.c)
    cat > "$src" <<'EOF'
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
int main(int argc, char **argv) {
    const char *path = getenv("NOTIFY_SOCKET");
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    char msg[4096] = "";
    if (!path || strlen(path) >= sizeof addr.sun_path) { fputs("sd-notify: no NOTIFY_SOCKET\n", stderr); return 1; }
    strcpy(addr.sun_path, path);
    for (int i = 1; i < argc; i++) { strncat(msg, argv[i], sizeof msg - strlen(msg) - 2); strcat(msg, "\n"); }
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || sendto(fd, msg, strlen(msg), 0, (struct sockaddr *)&addr, sizeof addr) < 0) { perror("sd-notify"); return 1; }
    return 0;
}
EOF
    gcc -static -O2 -o "$1" "$src"
    local rc=$?
    rm -f "$src"
    return $rc
}

# free_port: a TCP port on 127.0.0.1 that nothing listens on now.
free_port() {
    local port
    for port in $(seq 18080 18180); do
        ss -Htln "sport = :$port" 2>/dev/null | grep -q . || { echo "$port"; return; }
    done
    return 1
}

# retry SECONDS COMMAND...: runs COMMAND every 0.2 s until it succeeds.
retry() {
    local deadline=$((SECONDS + $1))
    shift
    until "$@"; do
        [ "$SECONDS" -lt "$deadline" ] || return 1
        sleep 0.2
    done
}

# Managers make parent cgroups (podman's libpod_parent, docker's /docker) and
# leave them. cgroup_parents_note NAME... records which are there already;
# cgroup_parents_restore removes the ones this run made, children first.
cgroup_parents_note() {
    cgroup_parents_new=()
    local name dir
    for name in "$@"; do
        for dir in /sys/fs/cgroup /sys/fs/cgroup/*/; do
            [ -d "${dir%/}/cgroup.procs" ] || [ -f "${dir%/}/cgroup.procs" ] || continue
            [ -d "${dir%/}/$name" ] || cgroup_parents_new+=("${dir%/}/$name")
        done
    done
}
cgroup_parents_restore() {
    local dir
    for dir in "${cgroup_parents_new[@]}"; do
        [ -d "$dir" ] && find "$dir" -depth -type d -exec rmdir {} + 2>/dev/null
    done
}

# criu_works: whether criu can dump a process on this kernel (criu 3.17 fails
# on kernels much newer than 6.1: a vDSO it does not know).
criu_works() {
    local dir pid ok=1
    command -v criu >/dev/null || return 1
    dir=$(mktemp -d /tmp/husk-criu-probe.XXXXXX)
    setsid sleep 60 </dev/null >/dev/null 2>&1 &
    pid=$!
    timeout 60 criu dump -t "$pid" -D "$dir" --leave-running --shell-job -o dump.log >/dev/null 2>&1 && ok=0
    kill -KILL "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
    rm -rf "$dir"
    return $ok
}

# stop_daemon PID: SIGTERM, up to 10 s to exit, then SIGKILL; reaps it.
stop_daemon() {
    kill "$1" 2>/dev/null
    for _ in $(seq 50); do kill -0 "$1" 2>/dev/null || break; sleep 0.2; done
    kill -KILL "$1" 2>/dev/null
    wait "$1" 2>/dev/null
}

# containerd_config PREFIX SOCKET: a containerd 1.x config that keeps its
# root, state and debug socket at PREFIXroot, PREFIXstate, PREFIXdebug.sock,
# listens on SOCKET, and has no CRI plugin.
containerd_config() {
    cat <<CONFIG
version = 2
root = "${1}root"
state = "${1}state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "$2"
[ttrpc]
  address = "$2.ttrpc"
[debug]
  address = "${1}debug.sock"
CONFIG
}
