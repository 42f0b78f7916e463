/* Counts the places where NEEDLE appears in the memory of every process it
 * can see: each readable mapping of /proc/PID/mem (a process with
 * CAP_SYS_PTRACE over them reads even non-dumpable ones). The needle comes
 * from a file, so that no other process holds it in its arguments; this
 * process is skipped. Prints "PID hits N" for each process with hits, then
 * "total N".
 * Usage: mem_grep NEEDLE_FILE */
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static long hits_in(int pid, const char *needle, size_t len) {
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/maps", pid);
    FILE *maps = fopen(path, "r");
    if (!maps)
        return 0;
    snprintf(path, sizeof path, "/proc/%d/mem", pid);
    int mem = open(path, O_RDONLY);
    long hits = 0;
    char line[512];
    while (mem >= 0 && fgets(line, sizeof line, maps)) {
        unsigned long start, end;
        char perms[8];
        if (sscanf(line, "%lx-%lx %7s", &start, &end, perms) != 3 || perms[0] != 'r' || end - start > (64UL << 20))
            continue;
        char *buf = malloc(end - start);
        ssize_t n = buf ? pread(mem, buf, end - start, start) : -1;
        for (ssize_t i = 0; i + (ssize_t)len <= n; i++)
            if (memcmp(buf + i, needle, len) == 0)
                hits++;
        free(buf);
    }
    if (mem >= 0)
        close(mem);
    fclose(maps);
    return hits;
}

int main(int argc, char **argv) {
    char needle[256];
    FILE *f = argc > 1 ? fopen(argv[1], "r") : NULL;
    if (!f || !fgets(needle, sizeof needle, f))
        return 2;
    fclose(f);
    needle[strcspn(needle, "\n")] = 0;
    DIR *proc = opendir("/proc");
    struct dirent *e;
    long total = 0;
    while (proc && (e = readdir(proc))) {
        int pid = atoi(e->d_name);
        if (pid <= 0 || pid == getpid())
            continue;
        long hits = hits_in(pid, needle, strlen(needle));
        if (hits)
            printf("%d hits %ld\n", pid, hits);
        total += hits;
    }
    printf("total %ld\n", total);
    return 0;
}
