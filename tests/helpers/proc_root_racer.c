/* Runs inside a container with CAP_SYS_PTRACE and races every new process of
 * its pid namespace: it tries to open MARKER, a path that exists only on the
 * host, through /proc/PID/root. A process that appears in the namespace while
 * it still has the host's root makes that open succeed.
 * It also reads the fds of each new process: one whose target contains
 * LEAK is a runtime fd that the container could open through /proc/PID/fd.
 * Usage: proc_root_racer MARKER LEAK RESULT STOPFILE
 * Loops until STOPFILE exists (at most 120 s), then writes
 * "seen=N escaped=M leaked=L" to RESULT. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define MAX_PID 65536
#define WINDOW 16

static unsigned char seen[MAX_PID];

/* Whether any fd of `pid` points at a path containing `leak`. */
static int holds_fd_to(int pid, const char *leak) {
    char dir[64], link[4096 + 64], target[4096];
    snprintf(dir, sizeof dir, "/proc/%d/fd", pid);
    DIR *d = opendir(dir);
    if (!d)
        return 0;
    int found = 0;
    struct dirent *e;
    while (!found && (e = readdir(d))) {
        snprintf(link, sizeof link, "%s/%s", dir, e->d_name);
        ssize_t n = readlink(link, target, sizeof target - 1);
        if (n > 0) {
            target[n] = 0;
            found = strstr(target, leak) != NULL;
        }
    }
    closedir(d);
    return found;
}

int main(int argc, char **argv) {
    if (argc != 5)
        return 2;
    const char *marker = argv[1], *leak = argv[2], *result = argv[3], *stop = argv[4];
    time_t end = time(NULL) + 120;
    long nseen = 0, escaped = 0, leaked = 0, loops = 0;
    int base = getpid() + 1, maxseen = 0;
    char path[4096];
    struct stat st;
    for (;;) {
        if (++loops % 4096 == 0 && (access(stop, F_OK) == 0 || time(NULL) > end))
            break;
        for (int pid = base; pid < base + WINDOW && pid < MAX_PID; pid++) {
            snprintf(path, sizeof path, "/proc/%d/root%s", pid, marker);
            int fd = open(path, O_RDONLY | O_CLOEXEC);
            if (fd >= 0) {
                escaped++;
                close(fd);
            }
            snprintf(path, sizeof path, "/proc/%d", pid);
            if (stat(path, &st) == 0 && seen[pid] < 2 && holds_fd_to(pid, leak)) {
                seen[pid] = 2;
                leaked++;
            }
            if (stat(path, &st) == 0 && !seen[pid]) {
                seen[pid] = 1;
                nseen++;
                if (pid > maxseen)
                    maxseen = pid;
            }
        }
        /* Pids below the newest one seen that are gone will not come back soon. */
        for (;;) {
            snprintf(path, sizeof path, "/proc/%d", base);
            if (base >= maxseen || stat(path, &st) == 0)
                break;
            base++;
        }
    }
    FILE *out = fopen(result, "w");
    if (!out)
        return 1;
    fprintf(out, "seen=%ld escaped=%ld leaked=%ld\n", nseen, escaped, leaked);
    return fclose(out) == 0 ? 0 : 1;
}
