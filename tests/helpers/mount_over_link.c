/* mount_over_link SOURCE TARGET: binds SOURCE over TARGET itself, not over
 * what TARGET links to (open_tree + move_mount without MOVE_MOUNT_T_SYMLINKS):
 * how a process could cover a /proc/PID/fd/N before Linux 6.12. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <sys/syscall.h>
#include <unistd.h>

int main(int argc, char **argv) {
    if (argc != 3) return 2;
    int tree = syscall(SYS_open_tree, AT_FDCWD, argv[1], 1 /* OPEN_TREE_CLONE */ | O_CLOEXEC);
    if (tree < 0) { perror("open_tree"); return 1; }
    if (syscall(SYS_move_mount, tree, "", AT_FDCWD, argv[2], 0x04 /* MOVE_MOUNT_F_EMPTY_PATH */) < 0) {
        perror("move_mount");
        return 1;
    }
    puts("mounted");
    return 0;
}
