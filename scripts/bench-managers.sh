#!/usr/bin/env bash
# The managers' part of `make bench` (issue #18, item 3): `podman run --rm`
# (root, --network none), `ctr run --rm` (runc v2 shim, --runc-binary) and
# `docker run --rm` of a `true` image, with husk and with runc as the runtime.
#
# Two measurements:
# - the time of one manager run, hyperfine (-N), ROUNDS rounds of
#   MANAGER_RUNS runs, the order of husk and runc swapped each round;
# - the runtime's share of it: SHARE_RUNS more runs in which the manager runs
#   the runtime through a small static wrapper (compiled here) that notes the
#   CLOCK_REALTIME before it forks the runtime and after it has reaped it. The
#   report adds up the runtime's intervals inside the run (their union), and
#   takes from the run's total the wrapper's own cost, measured separately
#   (hyperfine: the wrapper running /bin/true against /bin/true), once for
#   each invocation.
#
# Run by scripts/bench.sh inside its private mount namespace (fresh /tmp and
# /run): the daemons' state and mounts are there and go with it. Every daemon
# started here is stopped, every container removed.
#
# usage: scripts/bench-managers.sh HUSK_BINARY RESULTS_DIR
set -uo pipefail
here=$(dirname "$(readlink -f "$0")")
. "$here/../integration/lib.sh"

husk=$(readlink -f "${1:?usage: bench-managers.sh HUSK_BINARY RESULTS_DIR}")
res=$(readlink -f "${2:?usage: bench-managers.sh HUSK_BINARY RESULTS_DIR}")
ROUNDS=${ROUNDS:-3} MANAGER_RUNS=${MANAGER_RUNS:-10} SHARE_RUNS=${SHARE_RUNS:-10} WARMUP=${WARMUP:-3}
runc=$(command -v runc) || { echo "bench-managers: no runc" >&2; exit 1; }
tag=${HUSK_BENCH_TAG:-hb$$}
work=$(mktemp -d /tmp/husk-bench-managers.XXXXXX)
chmod 755 "$work"
image=localhost/husk-bench:true
note() { echo "bench: $(date +%T) managers: $*" >&2; }

containerd_pid= dockerd_pid=
sock=$work/containerd.sock dsock=$work/docker.sock
P() { timeout 60 podman --root "$work/storage" --runroot "$work/podman-run" "$@"; }
C() { timeout 60 ctr --address "$sock" --namespace "$tag" "$@"; }
D() { timeout 60 docker -H "unix://$dsock" "$@"; }
cgroup_parents_note libpod_parent docker "$tag"
cleanup() {
    set +e
    if command -v podman >/dev/null; then
        P rm -af -t 0 >/dev/null 2>&1
        P rmi -af >/dev/null 2>&1
    fi
    if [ -n "$dockerd_pid" ]; then
        D rm -f $(D ps -aq 2>/dev/null) >/dev/null 2>&1
        stop_daemon "$dockerd_pid"
    fi
    if [ -n "$containerd_pid" ]; then
        for id in $(C task ls -q 2>/dev/null); do C task kill -s KILL "$id" >/dev/null 2>&1; done
        for id in $(C task ls -q 2>/dev/null); do C task delete -f "$id" >/dev/null 2>&1; done
        for id in $(C container ls -q 2>/dev/null); do C container delete "$id" >/dev/null 2>&1; done
        kill "$containerd_pid" 2>/dev/null
        wait "$containerd_pid" 2>/dev/null
    fi
    # Shims outlive their daemon by design; these are this run's (our socket paths).
    pkill -KILL -f "containerd-shim-runc-v2 .*-address $work/" 2>/dev/null
    pkill -KILL -f "containerd --config $work/" 2>/dev/null
    grep -o " $work/[^ ]*" /proc/self/mounts | sort -r | xargs -r -n1 umount -l 2>/dev/null
    cgroup_parents_restore
    rm -rf "$work"
}
trap cleanup EXIT
cd "$work" || exit 1 # conmon writes an oom marker file into its cwd

# wrap RUNTIME LOG OUT: a static wrapper that runs RUNTIME with its own
# arguments and appends "START_NS END_NS STATUS ARGS..." to LOG.
wrap() {
    cat > "$work/wrap.c" <<'EOF'
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
static pid_t child;
static void forward(int sig) { if (child > 0) kill(child, sig); }
static long long now(void) {
    struct timespec t;
    clock_gettime(CLOCK_REALTIME, &t);
    return t.tv_sec * 1000000000LL + t.tv_nsec;
}
int main(int argc, char **argv) {
    long long start = now();
    child = fork();
    if (child == 0) {
        argv[0] = RUNTIME;
        execv(RUNTIME, argv);
        _exit(127);
    }
    int sigs[] = {SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGWINCH};
    for (unsigned i = 0; i < sizeof sigs / sizeof *sigs; i++) signal(sigs[i], forward);
    int status = 0;
    while (waitpid(child, &status, 0) < 0 && errno == EINTR) {}
    long long end = now();
    char line[4096];
    int n = snprintf(line, sizeof line, "%lld %lld %d", start, end, status);
    for (int i = 1; i < argc && n < (int)sizeof line - 2; i++)
        n += snprintf(line + n, sizeof line - n, " %s", argv[i]);
    if (n > (int)sizeof line - 2) n = sizeof line - 2;
    line[n++] = '\n';
    int fd = open(LOG, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (fd >= 0) { (void)!write(fd, line, n); close(fd); }
    if (WIFSIGNALED(status)) { signal(WTERMSIG(status), SIG_DFL); raise(WTERMSIG(status)); }
    return WIFEXITED(status) ? WEXITSTATUS(status) : 1;
}
EOF
    gcc -static -O2 -DRUNTIME="\"$1\"" -DLOG="\"$2\"" -o "$3" "$work/wrap.c"
}
wrap "$husk" "$work/invocations.log" "$work/husk-wrapped" &&
    wrap "$runc" "$work/invocations.log" "$work/runc-wrapped" &&
    wrap /bin/true "$work/true.log" "$work/true-wrapped" ||
    { echo "bench-managers: cannot build the wrapper (gcc, libc6-dev)" >&2; exit 1; }
hyperfine -N --warmup 10 --runs 200 --export-json "$res/share-wrapper.json" \
    -n wrapped "$work/true-wrapped" -n bare /bin/true > "$res/share-wrapper.log" 2>&1 ||
    echo "bench-managers: could not time the wrapper" >&2

make_rootfs "$work/rootfs" && tar -C "$work/rootfs" -cf "$work/busybox.tar" . ||
    { echo "bench-managers: cannot build the busybox rootfs" >&2; exit 1; }

# time NAME HUSK_COMMAND RUNC_COMMAND: ROUNDS hyperfine rounds, order swapped.
time_runs() {
    local name=$1 round
    for round in $(seq "$ROUNDS"); do
        local a=(-n husk "$2") b=(-n runc "$3")
        [ $((round % 2)) = 1 ] || { a=(-n runc "$3"); b=(-n husk "$2"); }
        hyperfine -N --warmup "$WARMUP" --runs "$MANAGER_RUNS" --export-json "$res/manager-$name-r$round.json" \
            "${a[@]}" "${b[@]}" > "$res/manager-$name-r$round.log" 2>&1 ||
            { echo "bench-managers: $name round $round failed: $(tail -3 "$res/manager-$name-r$round.log")" >&2; rm -f "$res/manager-$name-r$round.json"; }
    done
}
# share NAME RUNTIME COMMAND...: SHARE_RUNS runs through the wrapper; each
# run's window and the invocations logged in it go to share-NAME-RUNTIME.txt.
share_runs() {
    local name=$1 runtime=$2 i t0 t1 out=$res/share-$1-$2.txt
    shift 2
    : > "$out"
    for i in $(seq "$SHARE_RUNS"); do
        : > "$work/invocations.log"
        t0=$EPOCHREALTIME
        "$@" > /dev/null 2>&1 || echo "bench-managers: $name with $runtime failed" >&2
        t1=$EPOCHREALTIME
        sleep 0.3 # what the manager does after it returned is logged, and left out
        echo "run ${t0/./}000 ${t1/./}000" >> "$out"
        sed 's/^/inv /' "$work/invocations.log" >> "$out"
    done
}

podman_bench() {
    command -v podman >/dev/null && command -v conmon >/dev/null || { note "no podman or conmon: skipped"; return; }
    export CONTAINERS_CONF=$work/containers.conf XDG_DATA_HOME=$work/data
    cat > "$CONTAINERS_CONF" <<'EOF'
[containers]
# Root here lacks CAP_SYS_RESOURCE and the hard nofile limit is 20000.
default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]
[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
EOF
    P import "$work/busybox.tar" "$image" > /dev/null 2>&1 || { note "podman import failed: skipped"; return; }
    local base="podman --root $work/storage --runroot $work/podman-run"
    note "podman run --rm, $ROUNDS rounds of $MANAGER_RUNS"
    time_runs podman "$base --runtime $husk run --rm --network none $image true" \
        "$base --runtime $runc run --rm --network none $image true"
    note "podman, the runtime's share"
    share_runs podman husk P --runtime "$work/husk-wrapped" run --rm --network none "$image" true
    share_runs podman runc P --runtime "$work/runc-wrapped" run --rm --network none "$image" true
    P rm -af -t 0 > /dev/null 2>&1
    P rmi -af > /dev/null 2>&1
}

containerd_bench() {
    command -v containerd >/dev/null && command -v ctr >/dev/null || { note "no containerd or ctr: skipped"; return; }
    containerd_config "$work/containerd-" "$sock" > "$work/containerd.toml"
    containerd --config "$work/containerd.toml" > "$work/containerd.log" 2>&1 &
    containerd_pid=$!
    retry 30 C version > /dev/null 2>&1 || { note "containerd did not start: skipped"; return; }
    # An OCI image layout of one uncompressed layer, as `ctr images import` takes it.
    python3 - "$work/busybox.tar" "$work/image.tar" "$image" <<'EOF' || { note "no image: skipped"; return; }
import hashlib, io, json, sys, tarfile
layer_path, out, name = sys.argv[1:]
blobs = {}
def blob(data):
    d = hashlib.sha256(data).hexdigest()
    blobs[d] = data
    return {"digest": "sha256:" + d, "size": len(data)}
layer = blob(open(layer_path, "rb").read())
config = blob(json.dumps({"architecture": "amd64", "os": "linux",
    "config": {"Env": ["PATH=/bin"], "Cmd": ["true"]},
    "rootfs": {"type": "layers", "diff_ids": [layer["digest"]]}}).encode())
manifest = blob(json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
    "config": {"mediaType": "application/vnd.oci.image.config.v1+json", **config},
    "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", **layer}]}).encode())
index = {"schemaVersion": 2, "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json",
    **manifest, "annotations": {"io.containerd.image.name": name, "org.opencontainers.image.ref.name": "true"}}]}
with tarfile.open(out, "w") as t:
    def add(path, data):
        info = tarfile.TarInfo(path)
        info.size = len(data)
        t.addfile(info, io.BytesIO(data))
    add("oci-layout", b'{"imageLayoutVersion":"1.0.0"}')
    add("index.json", json.dumps(index).encode())
    for d, data in blobs.items():
        add("blobs/sha256/" + d, data)
EOF
    C images import "$work/image.tar" > /dev/null 2>&1 || { note "ctr images import failed: skipped"; return; }
    local base="ctr --address $sock --namespace $tag run --rm"
    note "ctr run --rm, $ROUNDS rounds of $MANAGER_RUNS"
    time_runs ctr "$base --runc-binary $husk $image $tag-ctr-husk true" \
        "$base --runc-binary $runc $image $tag-ctr-runc true"
    note "ctr, the runtime's share"
    share_runs ctr husk C run --rm --runc-binary "$work/husk-wrapped" "$image" "$tag-ctr-husk" true
    share_runs ctr runc C run --rm --runc-binary "$work/runc-wrapped" "$image" "$tag-ctr-runc" true
    C images rm "$image" > /dev/null 2>&1
    kill "$containerd_pid" 2>/dev/null
    wait "$containerd_pid" 2>/dev/null
    containerd_pid=
}

docker_bench() {
    command -v dockerd >/dev/null && command -v docker >/dev/null || { note "no dockerd or docker: skipped"; return; }
    # No bridge, no iptables, no forwarding (integration/docker.sh's setup);
    # runc is dockerd's default runtime.
    dockerd --data-root "$work/docker-data" --exec-root "$work/docker-exec" --pidfile "$work/docker.pid" \
        -H "unix://$dsock" --add-runtime "husk=$husk" \
        --add-runtime "husk-wrapped=$work/husk-wrapped" --add-runtime "runc-wrapped=$work/runc-wrapped" \
        --bridge=none --iptables=false --ip6tables=false --ip-masq=false --ip-forward=false \
        --storage-driver overlay2 --userland-proxy=false > "$work/dockerd.log" 2>&1 &
    dockerd_pid=$!
    retry 60 D version > /dev/null 2>&1 || { note "dockerd did not start: skipped ($(tail -1 "$work/dockerd.log"))"; return; }
    D import "$work/busybox.tar" "$image" > /dev/null 2>&1 || { note "docker import failed: skipped"; return; }
    local base="docker -H unix://$dsock run --rm --network none"
    note "docker run --rm, $ROUNDS rounds of $MANAGER_RUNS"
    time_runs docker "$base --runtime husk $image true" "$base --runtime runc $image true"
    note "docker, the runtime's share"
    share_runs docker husk D run --rm --network none --runtime husk-wrapped "$image" true
    share_runs docker runc D run --rm --network none --runtime runc-wrapped "$image" true
}

podman_bench
containerd_bench
docker_bench
