/* pipe_hang.c: the classic pipe hang. The child writes "hi" and exits;
 * the parent reads until end-of-file -- but never closed its own copy of
 * the write end, so end-of-file never comes and read() waits for ever.
 * (An alarm ends it after 30 s when run by hand.)
 *
 * Build: cc -Wall -Wextra -O2 -o pipe_hang pipe_hang.c
 */
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

int main(void) {
    int fds[2];
    if (pipe(fds) == -1) { perror("pipe"); return 1; }
    alarm(30);
    pid_t pid = fork();
    if (pid == -1) { perror("fork"); return 1; }
    if (pid == 0) {
        close(fds[0]);
        if (write(fds[1], "hi\n", 3) != 3) return 1;
        close(fds[1]);
        return 0;
    }
    /* Missing: close(fds[1]); */
    char buf[64];
    ssize_t n;
    while ((n = read(fds[0], buf, sizeof buf)) > 0)
        fwrite(buf, 1, (size_t)n, stdout);
    waitpid(pid, NULL, 0);
    return 0;
}
