/*
 * strand-wrap: the local executor's per-attempt wrapper, as a small static program. It does
 * exactly what the `sh` wrapper in local-executor.ts does, which stays the fallback when this
 * cannot be built (no C compiler, no static C library):
 *
 *   strand-wrap PIDFILE STOPFILE LIMITS COMMAND [ARG...]
 *
 * 1. Claims the attempt by creating PIDFILE exclusively and writing "pid starttime limits\n"
 *    (its own pid and start time from /proc/self/stat): if the file exists, another wrapper has
 *    the attempt, and this one exits at once without running anything.
 * 2. If STOPFILE exists (the attempt was terminated before it started), records "exit 143\n".
 * 3. Otherwise runs COMMAND as argv, looked up on PATH (never through a shell), waits for it and
 *    appends "exit CODE\n": the exit status, 128 + the signal for a command ended by a signal,
 *    127 when the program is not found and 126 when it cannot be run, as a shell reports them.
 *
 * Why a program and not only the shell script: on a virtual machine every exec of a dynamically
 * linked program costs about a millisecond of CPU (mostly the dynamic loader and page faults), and
 * a job that runs for milliseconds paid that twice (sh, then the command). A static program
 * starts without the loader. Its stdout and stderr are the attempt's log, inherited.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

static void append(const char *path, const char *text) {
  int fd = open(path, O_WRONLY | O_APPEND | O_CLOEXEC);
  if (fd < 0) return;
  ssize_t ignored = write(fd, text, strlen(text));
  (void)ignored;
  close(fd);
}

/* Field 22 of /proc/self/stat (the start time in clock ticks since boot), or 0 on failure. */
static int start_time(char *out, size_t size) {
  char buf[1024];
  int fd = open("/proc/self/stat", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return 0;
  ssize_t n = read(fd, buf, sizeof buf - 1);
  close(fd);
  if (n <= 0) return 0;
  buf[n] = '\0';
  /* The command name (field 2) may hold spaces and parentheses: count from its last ')'. */
  char *p = strrchr(buf, ')');
  if (p == NULL || p[1] != ' ') return 0;
  p += 2; /* field 3 */
  for (int field = 3; field < 22; field++) {
    p = strchr(p, ' ');
    if (p == NULL) return 0;
    p++;
  }
  size_t len = strcspn(p, " \n");
  if (len == 0 || len >= size) return 0;
  memcpy(out, p, len);
  out[len] = '\0';
  return 1;
}

int main(int argc, char **argv) {
  if (argc < 4) {
    fprintf(stderr, "usage: strand-wrap PIDFILE STOPFILE LIMITS COMMAND [ARG...]\n");
    return 2;
  }
  const char *pidfile = argv[1], *stopfile = argv[2], *limits = argv[3];
  char start[32], line[256];
  if (!start_time(start, sizeof start)) return 0;
  int fd = open(pidfile, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0) return 0; /* claimed by another wrapper (or not writable): run nothing */
  int len = snprintf(line, sizeof line, "%ld %s %s\n", (long)getpid(), start, limits);
  if (len <= 0 || len >= (int)sizeof line || write(fd, line, (size_t)len) != len) {
    close(fd);
    return 0;
  }
  close(fd);
  struct stat st;
  if (stat(stopfile, &st) == 0) {
    append(pidfile, "exit 143\n");
    return 0;
  }
  int code = 0;
  if (argc > 4) {
    pid_t child = fork();
    if (child < 0) {
      fprintf(stderr, "strand-wrap: fork: %s\n", strerror(errno));
      code = 126;
    } else if (child == 0) {
      execvp(argv[4], argv + 4);
      int missing = errno == ENOENT || errno == ENOTDIR;
      fprintf(stderr, "strand-wrap: %s: %s\n", argv[4], strerror(errno));
      _exit(missing ? 127 : 126);
    } else {
      int status = 0;
      pid_t waited;
      do waited = waitpid(child, &status, 0);
      while (waited < 0 && errno == EINTR);
      code = waited < 0             ? 1
             : WIFEXITED(status)   ? WEXITSTATUS(status)
             : WIFSIGNALED(status) ? 128 + WTERMSIG(status)
                                   : 1;
    }
  }
  snprintf(line, sizeof line, "exit %d\n", code);
  append(pidfile, line);
  return 0;
}
