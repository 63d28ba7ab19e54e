/* slow_producer.c: the producer, taking its time: creates, sizes and maps
 * the object, writes, then waits a second before it unmaps and removes
 * it -- long enough to attach to it: shmlab trace -p PID.
 *
 * Build: cc -Wall -Wextra -O2 -o slow_producer slow_producer.c -lrt
 */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define SIZE 4096

int main(int argc, char **argv) {
    const char *name = argc > 1 ? argv[1] : "/demo";
    int fd = shm_open(name, O_CREAT | O_RDWR, 0600);
    if (fd == -1) { perror("shm_open"); return 1; }
    if (ftruncate(fd, SIZE) == -1) { perror("ftruncate"); return 1; }
    char *ptr = mmap(NULL, SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (ptr == MAP_FAILED) { perror("mmap"); return 1; }
    strcpy(ptr, "written before anyone attached");
    sleep(1);
    munmap(ptr, SIZE);
    close(fd);
    shm_unlink(name);
    return 0;
}
