/* A FUSE filesystem that never answers: mounted on argv[1], it answers the
 * kernel's INIT and GETATTR (so that the mount can be bound and its root
 * looked at) and reads every other request without answering it. A process
 * that looks a name up in it waits in the kernel, killable at first, then
 * (once a signal came) where no signal reaches it, until this process dies
 * and the connection with it. Prints "mounted" once it is. */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <unistd.h>

struct in_header {
	uint32_t len, opcode;
	uint64_t unique, nodeid;
	uint32_t uid, gid, pid;
	uint16_t total_extlen, padding;
};

struct out_header {
	uint32_t len;
	int32_t error;
	uint64_t unique;
};

struct init_out {
	uint32_t major, minor, max_readahead, flags;
	uint16_t max_background, congestion_threshold;
	uint32_t max_write, time_gran;
	uint16_t max_pages, map_alignment;
	uint32_t flags2, unused[7];
};

struct attr_out {
	uint64_t attr_valid;
	uint32_t attr_valid_nsec, dummy;
	uint64_t ino, size, blocks, atime, mtime, ctime;
	uint32_t atimensec, mtimensec, ctimensec, mode, nlink, uid, gid, rdev, blksize, flags;
};

static int reply(int fd, uint64_t unique, const void *body, size_t len)
{
	char buf[sizeof(struct out_header) + 256];
	struct out_header h = {.len = sizeof(h) + len, .error = 0, .unique = unique};
	memcpy(buf, &h, sizeof(h));
	memcpy(buf + sizeof(h), body, len);
	return write(fd, buf, sizeof(h) + len) < 0 ? -1 : 0;
}

int main(int argc, char **argv)
{
	static char buf[1 << 20];
	char opts[128];
	int fd = open("/dev/fuse", O_RDWR | O_CLOEXEC);
	if (argc != 2 || fd < 0) {
		perror("fuse_hang: open /dev/fuse");
		return 1;
	}
	snprintf(opts, sizeof(opts), "fd=%d,rootmode=40000,user_id=0,group_id=0,allow_other", fd);
	if (mount("fuse_hang", argv[1], "fuse", 0, opts) != 0) {
		perror("fuse_hang: mount");
		return 1;
	}
	printf("mounted\n");
	fflush(stdout);
	for (;;) {
		ssize_t n = read(fd, buf, sizeof(buf));
		struct in_header in;
		if (n < (ssize_t)sizeof(in))
			return 1;
		memcpy(&in, buf, sizeof(in));
		if (in.opcode == 26) { /* INIT */
			struct init_out out = {.major = 7, .minor = 26, .max_write = 1 << 17, .time_gran = 1, .max_pages = 1};
			if (reply(fd, in.unique, &out, sizeof(out)))
				return 1;
		} else if (in.opcode == 3) { /* GETATTR: the root, a directory */
			struct attr_out out = {.ino = 1, .mode = 040755, .nlink = 2, .blksize = 4096};
			if (reply(fd, in.unique, &out, sizeof(out)))
				return 1;
		}
		/* anything else stays unanswered */
	}
}
