/* leak.c: creates, sizes (8192 bytes), maps and writes the object, then
 * unmaps and closes it -- and never calls shm_unlink. It exits 0 and the
 * object stays in /dev/shm until someone removes it (or the machine
 * reboots).
 *
 * Build: cc -Wall -Wextra -O2 -o leak leak.c -lrt
 */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define SIZE 8192

int main(int argc, char **argv) {
    const char *name = argc > 1 ? argv[1] : "/demo";
    int fd = shm_open(name, O_CREAT | O_RDWR, 0600);
    if (fd == -1) { perror("shm_open"); return 1; }
    if (ftruncate(fd, SIZE) == -1) { perror("ftruncate"); return 1; }
    char *ptr = mmap(NULL, SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (ptr == MAP_FAILED) { perror("mmap"); return 1; }
    strcpy(ptr, "forgotten");
    munmap(ptr, SIZE);
    close(fd);
    /* Missing: shm_unlink(name); */
    return 0;
}
