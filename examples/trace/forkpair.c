/* forkpair.c: producer and consumer in one program, through fork(). The
 * parent creates, sizes and maps the object; the child (which inherits
 * the mapping) writes; the parent waits, reads, unmaps and unlinks.
 * Nothing is left behind.
 *
 * Build: cc -Wall -Wextra -O2 -o forkpair forkpair.c -lrt
 */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#define SIZE 4096

int main(int argc, char **argv) {
    const char *name = argc > 1 ? argv[1] : "/demo";
    int fd = shm_open(name, O_CREAT | O_RDWR, 0600);
    if (fd == -1) { perror("shm_open"); return 1; }
    if (ftruncate(fd, SIZE) == -1) { perror("ftruncate"); return 1; }
    char *ptr = mmap(NULL, SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (ptr == MAP_FAILED) { perror("mmap"); return 1; }
    close(fd);
    pid_t pid = fork();
    if (pid == -1) { perror("fork"); return 1; }
    if (pid == 0) {
        strcpy(ptr, "written by the child");
        return 0;
    }
    waitpid(pid, NULL, 0);
    printf("parent read: %s\n", ptr);
    munmap(ptr, SIZE);
    shm_unlink(name);
    return 0;
}
