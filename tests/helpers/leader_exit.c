/* A container program whose main thread exits while another thread runs on:
 * the process lives, but its thread group leader is a zombie ('Z' in
 * /proc/PID/stat). Used to check that the runtime still sees it running. */
#include <pthread.h>
#include <unistd.h>

static void *run_on(void *arg) {
    (void)arg;
    for (;;)
        sleep(1000);
    return NULL;
}

int main(void) {
    pthread_t t;
    if (pthread_create(&t, NULL, run_on, NULL) != 0)
        return 1;
    pthread_exit(NULL);
}
