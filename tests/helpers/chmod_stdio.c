/* A container program that tries to change the file its stdin and stderr
 * are (mode 0, owner 7:7) through the fds themselves, without /proc: what a
 * container root could do to a host's /dev/null passed to it. */
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

int main(void) {
    int fds[] = {0, 2};
    for (int i = 0; i < 2; i++) {
        fchmod(fds[i], 0);
        if (fchown(fds[i], 7, 7) != 0) { /* tried; the test looks at the file */ }
    }
    puts("done");
    return 0;
}
