/* umask.c: asks shm_open for mode 0666 under the usual umask 022 and
 * prints the mode it really got (0644): the umask removed write
 * permission for group and others. Removes the object before exiting.
 *
 * Build: cc -Wall -Wextra -O2 -o umask umask.c -lrt
 */
#include <fcntl.h>
#include <stdio.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

int main(int argc, char **argv) {
    const char *name = argc > 1 ? argv[1] : "/demo";
    umask(022);
    int fd = shm_open(name, O_CREAT | O_RDWR, 0666);
    if (fd == -1) { perror("shm_open"); return 1; }
    struct stat st;
    if (fstat(fd, &st) == -1) { perror("fstat"); return 1; }
    printf("asked 0666, got %04o\n", (unsigned)(st.st_mode & 07777));
    close(fd);
    shm_unlink(name);
    return 0;
}
