/*
 * strand-launcher: the local executor's native launcher, a small static program (built by
 * `npm run build` into dist/strand-launcher; without a C compiler the executor uses its Node
 * launcher and `sh` wrapper instead, which behave the same).
 *
 * It reads launch requests on standard input and answers on standard output. For each request it
 * makes the attempt's directories and log, then forks: the child, in a session of its own, is the
 * attempt's wrapper. The wrapper
 *   1. claims the attempt by creating the pid file exclusively with "pid starttime limits\n"
 *      (if the file exists another wrapper has the attempt, and this one runs nothing);
 *   2. records "exit 143\n" without running anything if the stop file exists;
 *   3. otherwise runs the command as argv, looked up on PATH (never through a shell), waits for
 *      it and appends "exit CODE\n": the exit status, 128 + the signal for a command ended by a
 *      signal, 127 when the program is not found and 126 when it cannot be run, as a shell
 *      reports them.
 * The wrapper outlives this launcher and the engine, so a restarted engine re-attaches through
 * the pid file alone.
 *
 * Why a program: on a virtual machine every exec of a dynamically linked program costs about a
 * millisecond of CPU, and a spawn from a bare Node process about half a millisecond more. This
 * launcher used 0.09 ms of CPU per job (measured, 1,000 jobs), and its children need no exec
 * before the command's own.
 *
 * Requests: fields ending in NUL bytes: id, pid file, stop file, log, note, limits, stdout file
 * ("" for the log), the number of directories to make then each (the first is the working
 * directory), the number of argv words then each, the number of environment entries then each
 * ("NAME=value").
 * Answers, one line each: "P id pid" (started), "E id" (the pid file exists: started before),
 * "F id message" (could not start), "X id" (the wrapper ended).
 * End of input (the engine went away): the launcher exits; running attempts are unaffected.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

/* ---- the wrapper (runs in the forked child) ---- */

static void append(const char *path, const char *text) {
  int fd = open(path, O_WRONLY | O_APPEND | O_CLOEXEC);
  if (fd < 0) return;
  ssize_t ignored = write(fd, text, strlen(text));
  (void)ignored;
  close(fd);
}

/* Field 22 of /proc/self/stat (the start time in clock ticks since boot); 0 on failure. */
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

static int wrap(const char *pidfile, const char *stopfile, const char *limits, char **argv) {
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
  if (argv[0] != NULL) {
    pid_t child = fork();
    if (child < 0) {
      fprintf(stderr, "strand: fork: %s\n", strerror(errno));
      code = 126;
    } else if (child == 0) {
      execvp(argv[0], argv);
      int missing = errno == ENOENT || errno == ENOTDIR;
      fprintf(stderr, "strand: %s: %s\n", argv[0], strerror(errno));
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

/* ---- the launcher ---- */

struct request {
  const char *id, *pidfile, *stopfile, *log, *note, *limits, *out;
  char **dirs, **argv, **env;
};

/* The next NUL-terminated field of buf[*at, len), or NULL when the request is not complete yet. */
static const char *field(const char *buf, size_t len, size_t *at) {
  const char *start = buf + *at;
  const char *end = memchr(start, '\0', len - *at);
  if (end == NULL) return NULL;
  *at = (size_t)(end - buf) + 1;
  return start;
}

/* A counted list of fields as a NULL-terminated array; 0 when incomplete or invalid. */
static int list(const char *buf, size_t len, size_t *at, char ***out) {
  const char *count = field(buf, len, at);
  if (count == NULL) return 0;
  long n = strtol(count, NULL, 10);
  if (n < 0 || n > 1000000) return -1;
  char **items = calloc((size_t)n + 1, sizeof *items);
  if (items == NULL) return -1;
  for (long i = 0; i < n; i++) {
    const char *f = field(buf, len, at);
    if (f == NULL) {
      free(items);
      return 0;
    }
    items[i] = (char *)f;
  }
  *out = items;
  return 1;
}

/* Parses one request from buf[0, len): 1 (and *used) when complete, 0 when not, -1 if invalid. */
static int parse(const char *buf, size_t len, struct request *r, size_t *used) {
  size_t at = 0;
  const char **fixed[] = {&r->id, &r->pidfile, &r->stopfile, &r->log, &r->note, &r->limits, &r->out};
  for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++)
    if ((*fixed[i] = field(buf, len, &at)) == NULL) return 0;
  r->dirs = r->argv = r->env = NULL;
  int ok = list(buf, len, &at, &r->dirs);
  if (ok == 1) ok = list(buf, len, &at, &r->argv);
  if (ok == 1) ok = list(buf, len, &at, &r->env);
  if (ok != 1) {
    free(r->dirs);
    free(r->argv);
    return ok;
  }
  *used = at;
  return 1;
}

static void answer(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void answer(const char *fmt, ...) {
  char line[4096];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(line, sizeof line - 1, fmt, ap);
  va_end(ap);
  if (n < 0) return;
  if (n > (int)sizeof line - 2) n = (int)sizeof line - 2;
  for (int i = 0; i < n; i++)
    if (line[i] == '\n') line[i] = ' '; /* one answer, one line */
  line[n++] = '\n';
  for (int done = 0; done < n;) {
    ssize_t w = write(STDOUT_FILENO, line + done, (size_t)(n - done));
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) exit(0); /* the engine went away */
    done += (int)w;
  }
}

/* mkdir -p */
static int make_dirs(const char *path) {
  char buf[4096];
  size_t len = strlen(path);
  if (len == 0 || len >= sizeof buf) return -1;
  memcpy(buf, path, len + 1);
  for (char *p = buf + 1;; p++) {
    if (*p == '/' || *p == '\0') {
      char c = *p;
      *p = '\0';
      if (mkdir(buf, 0755) < 0 && errno != EEXIST) return -1;
      *p = c;
      if (c == '\0') break;
    }
  }
  return 0;
}

/* The wrappers still running: their pid and the request id to answer when they end. */
static struct {
  pid_t pid;
  char id[24];
} *running;
static size_t nrunning, caprunning;

static void reap(void) {
  int status;
  pid_t pid;
  while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
    for (size_t i = 0; i < nrunning; i++) {
      if (running[i].pid != pid) continue;
      answer("X %s", running[i].id);
      running[i] = running[--nrunning];
      break;
    }
  }
}

static void launch(const struct request *r, const sigset_t *original) {
  if (access(r->pidfile, F_OK) == 0) {
    answer("E %s", r->id);
    return;
  }
  for (char **d = r->dirs; *d != NULL; d++) {
    if (make_dirs(*d) < 0) {
      answer("F %s %s: %s", r->id, *d, strerror(errno));
      return;
    }
  }
  if (r->note[0] != '\0') {
    int fd = open(r->log, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd >= 0) {
      ssize_t ignored = write(fd, r->note, strlen(r->note));
      (void)ignored;
      close(fd);
    }
  }
  int log = open(r->log, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
  if (log < 0) {
    answer("F %s %s: %s", r->id, r->log, strerror(errno));
    return;
  }
  int out = log;
  if (r->out[0] != '\0') {
    out = open(r->out, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (out < 0) {
      answer("F %s %s: %s", r->id, r->out, strerror(errno));
      close(log);
      return;
    }
  }
  int null = open("/dev/null", O_RDONLY | O_CLOEXEC);
  if (nrunning == caprunning) {
    size_t cap = caprunning ? caprunning * 2 : 16;
    void *grown = realloc(running, cap * sizeof *running);
    if (grown == NULL) {
      answer("F %s out of memory", r->id);
      goto done;
    }
    running = grown;
    caprunning = cap;
  }
  pid_t pid = fork();
  if (pid < 0) {
    answer("F %s fork: %s", r->id, strerror(errno));
  } else if (pid == 0) {
    signal(SIGCHLD, SIG_DFL);
    signal(SIGPIPE, SIG_DFL); /* ignored dispositions would reach the command */
    sigprocmask(SIG_SETMASK, original, NULL);
    setsid();
    if (null < 0 || dup2(null, 0) < 0 || dup2(out, 1) < 0 || dup2(log, 2) < 0) _exit(0);
    if (chdir(r->dirs[0] != NULL ? r->dirs[0] : "/") < 0) {
      fprintf(stderr, "strand: %s: %s\n", r->dirs[0], strerror(errno));
      _exit(0);
    }
    environ = r->env;
    _exit(wrap(r->pidfile, r->stopfile, r->limits, r->argv));
  } else {
    running[nrunning].pid = pid;
    snprintf(running[nrunning].id, sizeof running[nrunning].id, "%s", r->id);
    nrunning++;
    answer("P %s %ld", r->id, (long)pid);
  }
done:
  if (null >= 0) close(null);
  if (out != log) close(out);
  close(log);
}

static void on_child(int sig) { (void)sig; }

int main(void) {
  /* SIGCHLD is blocked except while waiting for input, so it interrupts only that wait. */
  sigset_t chld, original;
  sigemptyset(&chld);
  sigaddset(&chld, SIGCHLD);
  sigprocmask(SIG_BLOCK, &chld, &original);
  struct sigaction sa = {0};
  sa.sa_handler = on_child;
  sigaction(SIGCHLD, &sa, NULL);
  signal(SIGPIPE, SIG_IGN);
  sigset_t waiting = original;
  sigdelset(&waiting, SIGCHLD);

  size_t cap = 1 << 16, len = 0;
  char *buf = malloc(cap);
  if (buf == NULL) return 1;
  for (;;) {
    struct pollfd in = {.fd = STDIN_FILENO, .events = POLLIN};
    int ready = ppoll(&in, 1, NULL, &waiting);
    reap();
    if (ready <= 0) continue;
    if (len == cap) {
      char *grown = realloc(buf, cap * 2);
      if (grown == NULL) return 1;
      buf = grown;
      cap *= 2;
    }
    ssize_t n = read(STDIN_FILENO, buf + len, cap - len);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return 0; /* the engine went away */
    len += (size_t)n;
    size_t start = 0;
    for (;;) {
      struct request r;
      size_t used = 0;
      int ok = parse(buf + start, len - start, &r, &used);
      if (ok == 0) break;
      if (ok < 0) {
        fprintf(stderr, "strand-launcher: malformed request\n");
        return 1;
      }
      launch(&r, &original);
      free(r.dirs);
      free(r.argv);
      free(r.env);
      start += used;
      reap();
    }
    memmove(buf, buf + start, len - start);
    len -= start;
  }
}
