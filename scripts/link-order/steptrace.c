// steptrace OUT INODE CMD ARGS...: runs CMD single-stepping it and every
// process it forks, recording which instructions of the binary with inode
// INODE are executed (offsets from its load address), in first-hit order:
// "offset sequence role" lines, role 0 for the command's own process and 1
// for the processes it clones (a container's init, exec's joiner), so that
// their code can be laid out apart from the caller's.
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/user.h>
#include <sys/wait.h>
#include <unistd.h>

#define SPAN (64u << 20)
static uint32_t *first[2]; /* first[role][off] = 1 + sequence of first execution */
static uint32_t seq;
static unsigned long ino;
#define MAXPID (1 << 22)
static unsigned long *bias; /* 0: not traced (any more), 1: not our binary */
static volatile sig_atomic_t stopping; /* SIGTERM, SIGINT or SIGHUP came */

static void on_signal(int sig) { (void)sig; stopping = 1; }

/* Detaching clears the single-step flag; a tracee the kernel detaches
 * because the tracer died keeps it and dies of SIGTRAP at its next
 * instruction. A detached pid is forgotten: it may be reused by any process,
 * which release_others would stop. */
static void detach(pid_t pid, int sig) {
    ptrace(PTRACE_DETACH, pid, 0, sig);
    bias[pid] = 0;
}

static unsigned long find_bias(pid_t pid) {
    char path[64], line[512];
    snprintf(path, sizeof path, "/proc/%d/maps", pid);
    FILE *f = fopen(path, "r");
    if (!f) return 1;
    unsigned long b = 1;
    while (fgets(line, sizeof line, f)) {
        unsigned long start, end, off, inode; char perm[8]; unsigned maj, min;
        if (sscanf(line, "%lx-%lx %7s %lx %x:%x %lu", &start, &end, perm, &off, &maj, &min, &inode) == 7 &&
            inode == ino && off == 0) { b = start; break; }
    }
    fclose(f);
    return b;
}

/* Lets the processes the command left (a created container's init) go on
 * untraced: each is stopped with SIGSTOP (it may be asleep in a syscall) and
 * detached from that stop, which swallows the SIGSTOP. */
static void release_others(void) {
    for (pid_t p = 1; p < MAXPID; p++)
        if (bias[p]) kill(p, SIGSTOP);
    int st;
    pid_t pid;
    while ((pid = waitpid(-1, &st, __WALL)) > 0) {
        if (!WIFSTOPPED(st)) continue;
        int sig = WSTOPSIG(st);
        if (sig == SIGSTOP && (st >> 16) == 0) detach(pid, 0);
        else ptrace(PTRACE_CONT, pid, 0, sig == SIGTRAP ? 0 : sig);
    }
}

int main(int argc, char **argv) {
    if (argc < 4) { fprintf(stderr, "usage\n"); return 2; }
    ino = strtoul(argv[2], 0, 10);
    first[0] = calloc(SPAN, sizeof *first[0]);
    first[1] = calloc(SPAN, sizeof *first[1]);
    bias = calloc(MAXPID, sizeof *bias);
    /* Not SA_RESTART: waitpid returns EINTR and the tracees are released. */
    struct sigaction sa = {.sa_handler = on_signal};
    sigaction(SIGTERM, &sa, 0);
    sigaction(SIGINT, &sa, 0);
    sigaction(SIGHUP, &sa, 0);
    pid_t child = fork();
    if (child == 0) {
        ptrace(PTRACE_TRACEME, 0, 0, 0);
        execvp(argv[3], argv + 3);
        _exit(127);
    }
    int st, opts = PTRACE_O_TRACECLONE | PTRACE_O_TRACEFORK | PTRACE_O_TRACEVFORK | PTRACE_O_TRACEEXEC;
    waitpid(child, &st, 0);
    ptrace(PTRACE_SETOPTIONS, child, 0, opts);
    bias[child] = find_bias(child);
    ptrace(PTRACE_SINGLESTEP, child, 0, 0);
    int exit_code = 0;
    for (;;) {
        if (stopping) {
            /* The command goes on untraced to its end: killing it (or letting
             * the kernel's SIGTRAP do so) could leave a half-made container. */
            fprintf(stderr, "steptrace: interrupted, releasing the traced processes\n");
            release_others();
            return 128 + SIGTERM;
        }
        pid_t pid = waitpid(-1, &st, __WALL);
        if (pid < 0) { if (errno == EINTR) continue; break; }
        if (WIFEXITED(st) || WIFSIGNALED(st)) {
            bias[pid] = 0;
            if (pid == child) {
                exit_code = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
                release_others();
                break;
            }
            continue;
        }
        if (!WIFSTOPPED(st)) continue;
        int sig = WSTOPSIG(st), event = st >> 16;
        if (!bias[pid]) { ptrace(PTRACE_SETOPTIONS, pid, 0, opts); bias[pid] = find_bias(pid); }
        if (event == PTRACE_EVENT_EXEC) {
            bias[pid] = find_bias(pid);
            if (bias[pid] == 1) { detach(pid, 0); continue; }
            sig = 0;
        } else if (event) {
            sig = 0;
        } else if (sig == SIGTRAP) {
            struct user_regs_struct r;
            if (bias[pid] > 1 && ptrace(PTRACE_GETREGS, pid, 0, &r) == 0) {
                unsigned long off = r.rip - bias[pid];
                uint32_t *mine = first[pid != child];
                if (off < SPAN && !mine[off]) mine[off] = ++seq;
            }
            sig = 0;
        } else if (sig == SIGSTOP) {
            sig = 0;
        }
        if (bias[pid] == 1) { detach(pid, sig); continue; }
        ptrace(PTRACE_SINGLESTEP, pid, 0, sig);
    }
    FILE *out = fopen(argv[1], "a");
    for (int role = 0; role < 2; role++)
        for (unsigned long off = 0; off < SPAN; off++)
            if (first[role][off]) fprintf(out, "%lx %u %d\n", off, first[role][off], role);
    fclose(out);
    return exit_code;
}
