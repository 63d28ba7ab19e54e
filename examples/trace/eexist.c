/* eexist.c: shm_open with O_CREAT | O_EXCL when the object already
 * exists -- as when an earlier run left it behind. The second call fails
 * with EEXIST. Removes the object, exits 1.
 *
 * Build: cc -Wall -Wextra -O2 -o eexist eexist.c -lrt
 */
#include <fcntl.h>
#include <stdio.h>
#include <sys/mman.h>
#include <unistd.h>

int main(int argc, char **argv) {
    const char *name = argc > 1 ? argv[1] : "/demo";
    int fd = shm_open(name, O_CREAT | O_EXCL | O_RDWR, 0600);
    if (fd == -1) { perror("shm_open"); return 1; }
    close(fd);
    /* "The next run": the object from the last one is still there. */
    fd = shm_open(name, O_CREAT | O_EXCL | O_RDWR, 0600);
    if (fd == -1) {
        perror("shm_open");
        shm_unlink(name);
        return 1;
    }
    return 0;
}
