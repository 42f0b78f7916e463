/* Runs inside a container with CAP_SYS_ADMIN and CAP_SYS_PTRACE: for every
 * process named NAME (husk's clones keep husk's name until they exec), it
 * takes the mount of its executable (open_tree of /proc/PID/exe, no clone)
 * and asks mount_setattr to clear that mount's read-only flag, putting it
 * back at once where that works. The read-only bind of husk's binary takes
 * that while it is still in a mount namespace (a detached one): then the
 * container could write husk's binary (CVE-2019-5736).
 * Usage: exe_unsealer NAME RESULT STOPFILE
 * Loops until STOPFILE exists (at most 120 s), then writes
 * "seen=N unsealed=M" to RESULT. */
#define _GNU_SOURCE
#include <dirent.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define MOUNT_ATTR_RDONLY 0x1

struct attr {
    uint64_t set, clear, propagation, userns_fd;
};

static int set_attr(int fd, uint64_t set, uint64_t clear) {
    struct attr a = {set, clear, 0, 0};
    return syscall(SYS_mount_setattr, fd, "", AT_EMPTY_PATH, &a, sizeof a);
}

/* Whether /proc/PID/comm is `name`. */
static int named(const char *pid, const char *name) {
    char path[300], comm[64] = {0};
    snprintf(path, sizeof path, "/proc/%s/comm", pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    ssize_t n = read(fd, comm, sizeof comm - 1);
    close(fd);
    if (n > 0 && comm[n - 1] == '\n')
        comm[n - 1] = 0;
    return n > 0 && strcmp(comm, name) == 0;
}

int main(int argc, char **argv) {
    if (argc != 4)
        return 2;
    const char *name = argv[1], *result = argv[2], *stop = argv[3];
    unsigned long seen = 0, unsealed = 0;
    time_t end = time(NULL) + 120;
    while (access(stop, F_OK) != 0 && time(NULL) < end) {
        DIR *d = opendir("/proc");
        if (!d)
            return 1;
        struct dirent *e;
        while ((e = readdir(d))) {
            if (e->d_name[0] < '1' || e->d_name[0] > '9' || !named(e->d_name, name))
                continue;
            char exe[300];
            snprintf(exe, sizeof exe, "/proc/%s/exe", e->d_name);
            int fd = syscall(SYS_open_tree, AT_FDCWD, exe, O_CLOEXEC);
            if (fd < 0)
                continue;
            seen++;
            if (set_attr(fd, 0, MOUNT_ATTR_RDONLY) == 0) {
                unsealed++;
                set_attr(fd, MOUNT_ATTR_RDONLY, 0);
            }
            close(fd);
        }
        closedir(d);
    }
    FILE *f = fopen(result, "w");
    if (!f)
        return 1;
    fprintf(f, "seen=%lu unsealed=%lu\n", seen, unsealed);
    return fclose(f) != 0;
}
