/* systemd-notify for a busybox container: sends each argument, one datagram
 * each, to the socket $NOTIFY_SOCKET names (a path; "@name" is abstract). */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>

int main(int argc, char **argv) {
    const char *path = getenv("NOTIFY_SOCKET");
    if (!path || !*path || strlen(path) >= sizeof(((struct sockaddr_un *)0)->sun_path))
        return 2;
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return 1;
    struct sockaddr_un a = {0};
    a.sun_family = AF_UNIX;
    strcpy(a.sun_path, path);
    if (path[0] == '@')
        a.sun_path[0] = '\0';
    socklen_t len = offsetof(struct sockaddr_un, sun_path) + strlen(path);
    for (int i = 1; i < argc; i++)
        if (sendto(fd, argv[i], strlen(argv[i]), 0, (struct sockaddr *)&a, len) < 0)
            return 1;
    return 0;
}
