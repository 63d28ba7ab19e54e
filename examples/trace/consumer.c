/* consumer.c: the textbook consumer. Opens argv[1] read-only, maps it,
 * prints the message, unmaps, closes and removes the object.
 * Mistake when run first: the object does not exist yet (ENOENT).
 *
 * Build: cc -Wall -Wextra -O2 -o consumer consumer.c -lrt
 */
#include <fcntl.h>
#include <stdio.h>
#include <sys/mman.h>
#include <unistd.h>

#define SIZE 4096

int main(int argc, char **argv) {
    const char *name = argc > 1 ? argv[1] : "/demo";
    int fd = shm_open(name, O_RDONLY, 0);
    if (fd == -1) { perror("shm_open"); return 1; }
    char *ptr = mmap(NULL, SIZE, PROT_READ, MAP_SHARED, fd, 0);
    if (ptr == MAP_FAILED) { perror("mmap"); return 1; }
    printf("%s\n", ptr);
    munmap(ptr, SIZE);
    close(fd);
    if (shm_unlink(name) == -1) { perror("shm_unlink"); return 1; }
    return 0;
}
