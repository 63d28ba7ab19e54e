/* producer.c: the textbook producer. Creates the shared-memory object
 * argv[1] (e.g. /demo), sizes it to 4096 bytes, maps it and writes a
 * message. It does not unlink it: the consumer does.
 *
 * Build: cc -Wall -Wextra -O2 -o producer producer.c -lrt
 * Run:   ./producer /demo && ./consumer /demo
 */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define SIZE 4096

int main(int argc, char **argv) {
    const char *name = argc > 1 ? argv[1] : "/demo";
    int fd = shm_open(name, O_CREAT | O_RDWR, 0666);
    if (fd == -1) { perror("shm_open"); return 1; }
    if (ftruncate(fd, SIZE) == -1) { perror("ftruncate"); return 1; }
    char *ptr = mmap(NULL, SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (ptr == MAP_FAILED) { perror("mmap"); return 1; }
    strcpy(ptr, "Hello from the producer");
    munmap(ptr, SIZE);
    close(fd);
    return 0;
}
