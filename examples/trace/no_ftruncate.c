/* no_ftruncate.c: the classic "Bus error". Creates the object and maps
 * 4096 bytes of it without ftruncate: the object is 0 bytes long, so the
 * first write kills the program with SIGBUS. The object is left behind
 * (size 0) for the tracer to show.
 *
 * Build: cc -Wall -Wextra -O2 -o no_ftruncate no_ftruncate.c -lrt
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
    /* Missing: ftruncate(fd, SIZE); */
    char *ptr = mmap(NULL, SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (ptr == MAP_FAILED) { perror("mmap"); return 1; }
    strcpy(ptr, "this write raises SIGBUS");
    printf("not reached\n");
    return 0;
}
