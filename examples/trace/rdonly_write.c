/* rdonly_write.c: opens the object O_RDONLY and asks mmap for
 * PROT_READ | PROT_WRITE with MAP_SHARED: mmap fails with EACCES
 * ("Permission denied"), because a shared writable mapping needs a
 * descriptor opened for writing. Removes the object, exits 1.
 *
 * Build: cc -Wall -Wextra -O2 -o rdonly_write rdonly_write.c -lrt
 */
#include <fcntl.h>
#include <stdio.h>
#include <sys/mman.h>
#include <unistd.h>

#define SIZE 4096

int main(int argc, char **argv) {
    const char *name = argc > 1 ? argv[1] : "/demo";
    int fd = shm_open(name, O_CREAT | O_RDWR, 0600);
    if (fd == -1) { perror("shm_open"); return 1; }
    if (ftruncate(fd, SIZE) == -1) { perror("ftruncate"); return 1; }
    close(fd);
    fd = shm_open(name, O_RDONLY, 0);
    if (fd == -1) { perror("shm_open"); return 1; }
    char *ptr = mmap(NULL, SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (ptr == MAP_FAILED) {
        perror("mmap");
        close(fd);
        shm_unlink(name);
        return 1;
    }
    return 0;
}
