/* sem_leak.c: creates the named semaphore argv[1] with sem_open, uses it
 * and closes it -- but never calls sem_unlink, so /dev/shm/sem.NAME
 * stays behind.
 *
 * Build: cc -Wall -Wextra -O2 -o sem_leak sem_leak.c -pthread
 */
#include <fcntl.h>
#include <semaphore.h>
#include <stdio.h>

int main(int argc, char **argv) {
    const char *name = argc > 1 ? argv[1] : "/demo-sem";
    sem_t *s = sem_open(name, O_CREAT, 0600, 1);
    if (s == SEM_FAILED) { perror("sem_open"); return 1; }
    sem_wait(s);
    sem_post(s);
    sem_close(s);
    /* Missing: sem_unlink(name); */
    return 0;
}
