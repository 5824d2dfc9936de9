/*
 * strand-launcher: the local executor's native launcher, a small static program (built by
 * `npm run build` into dist/strand-launcher; without a C compiler the executor uses its Node
 * launcher and `sh` wrapper instead, which contain attempts less strictly: see
 * docs/feature-support.md).
 *
 * It reads launch requests on standard input and answers on standard output. For each request it
 * makes the attempt's directories and log, then forks: the child, in a session of its own, is the
 * attempt's wrapper. The wrapper
 *   1. becomes a child subreaper, so every process of the attempt that loses its parent (a double
 *      fork, a daemon that called setsid) is handed to the wrapper instead of to init: the
 *      wrapper's descendants are all of the attempt's processes, wherever their session or group;
 *   2. claims the attempt by creating the pid file exclusively with
 *      "pid starttime memoryMiB:timeoutSeconds:graceSeconds v2:wrapper\n" (if the file exists
 *      another wrapper has the attempt, and this one runs nothing);
 *   3. records "exit 143 terminated\n" without running anything if the stop file exists or it
 *      was sent SIGTERM already;
 *   4. otherwise runs the command as argv, looked up on PATH (never through a shell), with the
 *      attempt's read-only inputs mounted read-only where it may mount (see readonly());
 *   5. enforces the limits while it runs, whether or not any Strand process is alive: over the
 *      memory limit (all of its descendants, measured fairly: see over_memory()) it kills them
 *      all; at the timeout, or when it is sent SIGTERM (a terminate; SIGINT and SIGHUP alike), it
 *      sends them SIGTERM and, graceSeconds later, SIGKILL;
 *   6. when the command has ended, kills whatever it left behind and reaps it, and only then
 *      appends "exit CODE[ CAUSE] cpu=SECONDS mem=MIB\n" (SECONDS: the user and system CPU time
 *      of all of the attempt's processes; MIB: their peak memory together, see over_memory()
 *      and peak_bytes): the exit status, 128 + the signal for a command ended by a
 *      signal, 127 when the program is not found and 126 when it cannot be run, as a shell
 *      reports them; 137 for a memory kill. CAUSE is "oom", "timeout" or "terminated" when the
 *      wrapper stopped the command. A recorded exit therefore means no process of the attempt
 *      remains, as when a container's init ends.
 * The wrapper outlives this launcher and the engine, so a restarted engine re-attaches through
 * the pid file alone, and a terminate needs nothing but a SIGTERM to the wrapper.
 *
 * Why a program: on a virtual machine every exec of a dynamically linked program costs about a
 * millisecond of CPU, and a spawn from a bare Node process about half a millisecond more. This
 * launcher used 0.09 ms of CPU per job (measured, 1,000 jobs), and its children need no exec
 * before the command's own.
 *
 * Requests: fields ending in NUL bytes: id, pid file, stop file, log, note, limits, stdout file
 * ("" for the log), the number of directories to make then each (the first is the working
 * directory), the number of argv words then each, the number of environment entries then each
 * ("NAME=value"), the number of read-only paths then each (absolute).
 * Answers, one line each: "P id pid" (started), "E id" (the pid file exists: started before),
 * "F id message" (could not start), "X id" (the wrapper ended).
 * End of input (the engine went away): the launcher exits; running attempts are unaffected.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/types.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* ---- the wrapper (runs in the forked child) ---- */

static void append(const char *path, const char *text) {
  int fd = open(path, O_WRONLY | O_APPEND | O_CLOEXEC);
  if (fd < 0) return;
  ssize_t ignored = write(fd, text, strlen(text));
  (void)ignored;
  close(fd);
}

/* Reads a small /proc file into buf (NUL-terminated); its length, or -1. */
static ssize_t slurp(const char *path, char *buf, size_t size) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  size_t len = 0;
  for (;;) {
    ssize_t n = read(fd, buf + len, size - 1 - len);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    len += (size_t)n;
    if (len == size - 1) break;
  }
  close(fd);
  buf[len] = '\0';
  return (ssize_t)len;
}

/* Field 22 of /proc/self/stat (the start time in clock ticks since boot); 0 on failure. */
static int start_time(char *out, size_t size) {
  char buf[1024];
  if (slurp("/proc/self/stat", buf, sizeof buf) <= 0) return 0;
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

static long long now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* A growable list of pids. */
struct pids {
  pid_t *v;
  size_t n, cap;
};

static void push(struct pids *p, pid_t pid) {
  if (p->n >= 4194304) return; /* PID_MAX_LIMIT: a list this long can only be a walk gone wrong */
  if (p->n == p->cap) {
    size_t cap = p->cap ? p->cap * 2 : 64;
    pid_t *grown = realloc(p->v, cap * sizeof *grown);
    if (grown == NULL) return; /* a smaller list this pass; the next pass sees the rest */
    p->v = grown;
    p->cap = cap;
  }
  p->v[p->n++] = pid;
}

/* Whether /proc/PID/task/TID/children exists (CONFIG_PROC_CHILDREN); else /proc is scanned. */
static int has_children_files;

/* Appends the children of every thread of `pid`. */
static void children_of(pid_t pid, struct pids *out) {
  char path[64], buf[16384];
  snprintf(path, sizeof path, "/proc/%ld/task", (long)pid);
  DIR *d = opendir(path);
  if (d == NULL) return; /* ended meanwhile */
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
    snprintf(path, sizeof path, "/proc/%ld/task/%.16s/children", (long)pid, e->d_name);
    if (slurp(path, buf, sizeof buf) <= 0) continue;
    for (char *p = buf, *end; *p != '\0'; p = end) {
      long child = strtol(p, &end, 10);
      if (end == p) break;
      if (child > 0) push(out, (pid_t)child);
    }
  }
  closedir(d);
}

/* The parent of `pid` from /proc/PID/stat (field 4); 0 when it is gone. */
static pid_t parent_of(const char *pid) {
  char path[64], buf[1024];
  snprintf(path, sizeof path, "/proc/%.16s/stat", pid);
  if (slurp(path, buf, sizeof buf) <= 0) return 0;
  char *p = strrchr(buf, ')');
  return p == NULL ? 0 : (pid_t)strtol(p + 4, NULL, 10); /* ") S PPID" */
}

/* Every descendant of this process, parents before their children. */
static struct pids descendants(void) {
  struct pids all = {0};
  pid_t self = getpid();
  if (has_children_files) {
    children_of(self, &all);
    for (size_t i = 0; i < all.n; i++) children_of(all.v[i], &all);
    return all;
  }
  /* Without children files: every process's parent, then the tree below this one. */
  struct pids pid = {0}, parent = {0};
  DIR *d = opendir("/proc");
  if (d == NULL) return all;
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
    pid_t pp = parent_of(e->d_name);
    if (pp <= 0) continue;
    push(&pid, (pid_t)strtol(e->d_name, NULL, 10));
    push(&parent, pp);
  }
  closedir(d);
  size_t n = pid.n < parent.n ? pid.n : parent.n;
  for (size_t i = 0; i < n; i++)
    if (parent.v[i] == self) push(&all, pid.v[i]);
  for (size_t k = 0; k < all.n; k++)
    for (size_t i = 0; i < n; i++)
      if (parent.v[i] == all.v[k]) push(&all, pid.v[i]);
  free(pid.v);
  free(parent.v);
  return all;
}

static void signal_tree(int sig) {
  struct pids all = descendants();
  for (size_t i = 0; i < all.n; i++) kill(all.v[i], sig);
  free(all.v);
}

/* A number after `key` in /proc/PID/<file>, in kB (smaps_rollup); -1 when absent. */
static long long kb_field(pid_t pid, const char *file, const char *key) {
  char path[64], buf[4096];
  snprintf(path, sizeof path, "/proc/%ld/%s", (long)pid, file);
  if (slurp(path, buf, sizeof buf) <= 0) return -1;
  const char *p = strstr(buf, key);
  return p == NULL ? -1 : strtoll(p + strlen(key), NULL, 10);
}

/*
 * The attempt's peak memory so far, in bytes: the most its processes used together at one of
 * the checks (measured as over_memory() measures), and the largest resident size any one of
 * them reached (the kernel's high-water mark, which also sees a peak between two checks).
 */
static long long peak_bytes;
/* The largest sum of resident sizes seen: the fair measure is taken again only above it. */
static long long peak_rss;

/*
 * Whether the attempt's processes use more than `limit` bytes (0: no limit), recording their
 * peak. The resident sizes (statm, cheap counters) first: their sum is an upper bound. It counts
 * a page shared by several processes (a library, memory a forked child shares with its parent)
 * once per process, so 200 forked `sleep`s would look like 150 MB: the fair measure, the
 * proportional set size (each shared page divided among its users; smaps_rollup, which costs a
 * walk of the page tables), is taken only over the limit, or, for the peak, when the sum passes
 * the largest seen before. A single process's peak is its resident size.
 */
static int over_memory(long long limit) {
  struct pids all = descendants();
  long long rss = 0, pss = 0;
  long page = sysconf(_SC_PAGESIZE);
  for (size_t i = 0; i < all.n; i++) {
    char path[64], buf[256];
    snprintf(path, sizeof path, "/proc/%ld/statm", (long)all.v[i]);
    if (slurp(path, buf, sizeof buf) <= 0) continue;
    long long size = 0, resident = 0;
    if (sscanf(buf, "%lld %lld", &size, &resident) == 2) rss += resident * page;
  }
  int over = limit > 0 && rss > limit;
  int higher = rss > peak_rss;
  if (higher) peak_rss = rss;
  long long measured = all.n <= 1 ? rss : -1; /* the fair measure, when taken */
  if (over || (higher && all.n > 1)) {
    for (size_t i = 0; i < all.n; i++) {
      long long kb = kb_field(all.v[i], "smaps_rollup", "\nPss:");
      if (kb < 0) kb = kb_field(all.v[i], "status", "\nVmRSS:"); /* kernels before 4.14 */
      if (kb > 0) pss += kb * 1024;
    }
    over = over && pss > limit;
    measured = pss;
  }
  if (measured > peak_bytes) peak_bytes = measured;
  free(all.v);
  return over;
}

/* Reaps every ended child; sets *status when one of them is `command`. -1 once none is left. */
static int reap_children(pid_t command, int *status, int *ended) {
  for (;;) {
    int st;
    pid_t p = waitpid(-1, &st, WNOHANG);
    if (p > 0) {
      if (p == command) {
        *status = st;
        *ended = 1;
      }
      continue;
    }
    if (p < 0 && errno == EINTR) continue;
    return p < 0 && errno == ECHILD ? -1 : 0;
  }
}

/*
 * Kills every remaining process of the attempt and reaps it. The wrapper is a subreaper: a
 * process whose parent is killed comes to it, so once it has no children left, nothing of the
 * attempt is left (a process forked while its parent was being killed is found in the next pass).
 */
static void kill_remaining(void) {
  sigset_t chld;
  sigemptyset(&chld);
  sigaddset(&chld, SIGCHLD);
  struct timespec pause = {0, 10 * 1000 * 1000};
  int status, ended = 0;
  while (reap_children(0, &status, &ended) == 0) {
    signal_tree(SIGKILL);
    sigtimedwait(&chld, NULL, &pause);
  }
}

/* Binds `path` onto itself and remounts it read-only or read-write; 0 when done. */
static int rebind(const char *path, int rdonly) {
  struct statvfs vfs;
  if (statvfs(path, &vfs) < 0 || mount(path, path, NULL, MS_BIND | MS_REC, NULL) < 0) return -1;
  /* A remount sets every per-mount flag: keep those the path had (nosuid, nodev, …). */
  unsigned long flags = MS_BIND | MS_REMOUNT | (rdonly ? MS_RDONLY : 0);
  if (vfs.f_flag & ST_NOSUID) flags |= MS_NOSUID;
  if (vfs.f_flag & ST_NODEV) flags |= MS_NODEV;
  if (vfs.f_flag & ST_NOEXEC) flags |= MS_NOEXEC;
  if (vfs.f_flag & ST_NOATIME) flags |= MS_NOATIME;
  if (vfs.f_flag & ST_NODIRATIME) flags |= MS_NODIRATIME;
  if (vfs.f_flag & ST_RELATIME) flags |= MS_RELATIME;
  return mount(NULL, path, NULL, flags, NULL);
}

/* Whether `path` is `dir` or lies under it (both resolved: a symbolic link may name either). */
static int lies_under(const char *path, const char *dir) {
  char real_path[PATH_MAX], real_dir[PATH_MAX];
  if (realpath(path, real_path) == NULL || realpath(dir, real_dir) == NULL) return 0;
  size_t len = strlen(real_dir);
  if (len == 1) return 1; /* "/" */
  return strncmp(real_path, real_dir, len) == 0 &&
         (real_path[len] == '/' || real_path[len] == '\0');
}

/*
 * Mounts the attempt's read-only inputs read-only in a mount namespace of the command's own, so
 * that a write to them fails (EROFS), even for root. Needs CAP_SYS_ADMIN; without it (or if the
 * kernel refuses) the command runs without, and the executor detects a change after the end
 * from what it recorded before the start. Directories first, then the working directory bound
 * back read-write if it lies under one of them, then regular files (which may lie in it). Only
 * the top mount of a directory is made read-only: a file system mounted below it stays as it is.
 */
static void readonly(char **paths, const char *work) {
  if (paths == NULL || paths[0] == NULL) return;
  if (unshare(CLONE_NEWNS) < 0) return;
  /* Nothing mounted here may reach the host's namespace (a shared / would propagate it). */
  if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0) return;
  int work_under = 0;
  for (char **p = paths; *p != NULL; p++) {
    struct stat st;
    if (stat(*p, &st) < 0 || !S_ISDIR(st.st_mode) || rebind(*p, 1) < 0) continue;
    work_under = work_under || lies_under(work, *p);
  }
  if (work_under) rebind(work, 0);
  for (char **p = paths; *p != NULL; p++) {
    struct stat st;
    if (stat(*p, &st) == 0 && S_ISREG(st.st_mode)) rebind(*p, 1);
  }
}

struct limits {
  long long memory_bytes; /* 0: none */
  long long timeout_ms;   /* 0: none */
  long long grace_ms;
};

/* "memoryMiB:timeoutSeconds:graceSeconds", the timeout empty when there is none. */
static struct limits parse_limits(const char *text) {
  struct limits l = {0, 0, 10000};
  char *end;
  l.memory_bytes = strtoll(text, &end, 10) * 1024 * 1024;
  if (*end != ':') return l;
  const char *timeout = end + 1;
  l.timeout_ms = strtoll(timeout, &end, 10) * 1000;
  if (*end != ':') return l;
  const char *grace = end + 1;
  long long g = strtoll(grace, &end, 10);
  if (end != grace && g >= 0) l.grace_ms = g * 1000;
  return l;
}

static int exit_code(int status) {
  return WIFEXITED(status)     ? WEXITSTATUS(status)
         : WIFSIGNALED(status) ? 128 + WTERMSIG(status)
                               : 1;
}

/* Set by `wrap` mode: the wrapper is a container's first process, its limits the container's. */
static int in_container;

/*
 * Whether the kernel's OOM killer has killed a process of this cgroup (the container's memory
 * limit): the oom_kill count of cgroup v1's memory.oom_control, or of cgroup v2's memory.events.
 */
static int cgroup_oom_killed(void) {
  static const char *files[] = {"/sys/fs/cgroup/memory/memory.oom_control",
                                "/sys/fs/cgroup/memory.events"};
  char buf[1024];
  for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
    if (slurp(files[i], buf, sizeof buf) < 0) continue;
    const char *at = strstr(buf, "oom_kill ");
    if (at != NULL && strtoll(at + 9, NULL, 10) > 0) return 1;
  }
  return 0;
}

static int wrap(const char *pidfile, const char *stopfile, const char *limits, const char *work,
                char **readonly_paths, char **argv) {
  /*
   * SIGCHLD (a process of the attempt ended) and SIGTERM (terminate; SIGINT and SIGHUP from a
   * user's kill are taken the same way rather than end the wrapper alone) are taken synchronously.
   */
  sigset_t handled, stops, before;
  sigemptyset(&stops);
  sigaddset(&stops, SIGTERM);
  sigaddset(&stops, SIGINT);
  sigaddset(&stops, SIGHUP);
  handled = stops;
  sigaddset(&handled, SIGCHLD);
  sigprocmask(SIG_BLOCK, &handled, &before);
  /* Fails only before Linux 3.4: then orphans go to init, as under the sh wrapper. */
  prctl(PR_SET_CHILD_SUBREAPER, 1);
  char start[32], line[256], probe[64];
  snprintf(probe, sizeof probe, "/proc/%ld/task/%ld/children", (long)getpid(), (long)getpid());
  has_children_files = access(probe, R_OK) == 0;
  if (!start_time(start, sizeof start)) return 0;
  int fd = open(pidfile, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0) return 0; /* claimed by another wrapper (or not writable): run nothing */
  int len = snprintf(line, sizeof line, "%ld %s %s v2:wrapper\n", (long)getpid(), start, limits);
  if (len <= 0 || len >= (int)sizeof line || write(fd, line, (size_t)len) != len) {
    close(fd);
    return 0;
  }
  close(fd);
  struct stat st;
  sigset_t pending;
  sigpending(&pending);
  if (stat(stopfile, &st) == 0 || sigismember(&pending, SIGTERM) ||
      sigismember(&pending, SIGINT) || sigismember(&pending, SIGHUP)) {
    append(pidfile, "exit 143 terminated\n");
    return 0;
  }
  struct limits l = parse_limits(limits);
  int code = 0;
  const char *cause = NULL;
  pid_t wrapper = getpid();
  pid_t child = argv[0] == NULL ? -2 : fork();
  if (child == -1) {
    fprintf(stderr, "strand: fork: %s\n", strerror(errno));
    code = 126;
  } else if (child == 0) {
    sigprocmask(SIG_SETMASK, &before, NULL);
    /* Killed with the wrapper, should anything kill it. */
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != wrapper) _exit(137);
    readonly(readonly_paths, work);
    execvp(argv[0], argv);
    int missing = errno == ENOENT || errno == ENOTDIR;
    fprintf(stderr, "strand: %s: %s\n", argv[0], strerror(errno));
    _exit(missing ? 127 : 126);
  } else if (child > 0) {
    long long now = now_ms();
    /* next memory check (the limit: the wrapper's own measure, or the container's OOM killer;
       and the peak, measured alike everywhere): the first sooner, for a short command */
    long long check = now + 20;
    long long deadline = l.timeout_ms > 0 ? now + l.timeout_ms : -1;
    long long kill_at = -1; /* when SIGTERM turns into SIGKILL */
    int status = 0, ended = 0;
    for (;;) {
      long long wake = -1;
      if (check >= 0) wake = check;
      if (deadline >= 0 && (wake < 0 || deadline < wake)) wake = deadline;
      if (kill_at >= 0 && (wake < 0 || kill_at < wake)) wake = kill_at;
      int sig;
      if (wake < 0) {
        sig = sigwaitinfo(&handled, NULL);
      } else {
        long long wait = wake - now_ms();
        if (wait < 0) wait = 0;
        struct timespec ts = {(time_t)(wait / 1000), (long)(wait % 1000) * 1000000};
        sig = sigtimedwait(&handled, NULL, &ts);
      }
      reap_children(child, &status, &ended);
      if (ended) break;
      now = now_ms();
      if (sig > 0 && sigismember(&stops, sig) && kill_at < 0) {
        if (cause == NULL) cause = "terminated";
        kill_at = now + l.grace_ms;
        signal_tree(SIGTERM);
      }
      if (deadline >= 0 && now >= deadline) {
        deadline = -1;
        if (cause == NULL) cause = "timeout";
        if (kill_at < 0) kill_at = now + l.grace_ms;
        signal_tree(SIGTERM);
      }
      if (kill_at >= 0 && now >= kill_at) {
        signal_tree(SIGKILL);
        kill_at = now + 1000; /* again, should a process have been forked meanwhile */
      }
      if (check >= 0 && now >= check) {
        check = now + 100;
        /* The OOM killer ends one process of a container; Batch ends the container. */
        int over = over_memory(in_container ? 0 : l.memory_bytes);
        if (in_container ? cgroup_oom_killed() : over) {
          if (cause == NULL) cause = "oom";
          check = -1;
          signal_tree(SIGKILL);
        }
      }
    }
    code = cause != NULL && strcmp(cause, "oom") == 0 ? 137 : exit_code(status);
    if (cause == NULL && in_container && code == 137 && cgroup_oom_killed()) cause = "oom";
  }
  kill_remaining();
  /* Every process of the attempt has been reaped by this subreaper: their CPU time is its
     children's (what an elastic size is chosen from). */
  struct rusage ru;
  double cpu = 0;
  if (getrusage(RUSAGE_CHILDREN, &ru) == 0) {
    cpu = ru.ru_utime.tv_sec + ru.ru_stime.tv_sec +
          (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
    /* ru_maxrss (kB): the largest high-water mark of any one of them */
    if ((long long)ru.ru_maxrss * 1024 > peak_bytes) peak_bytes = (long long)ru.ru_maxrss * 1024;
  }
  double mem = peak_bytes / 1048576.0;
  if (cause != NULL)
    snprintf(line, sizeof line, "exit %d %s cpu=%.3f mem=%.1f\n", code, cause, cpu, mem);
  else
    snprintf(line, sizeof line, "exit %d cpu=%.3f mem=%.1f\n", code, cpu, mem);
  append(pidfile, line);
  return code;
}

/* ---- the launcher ---- */

struct request {
  const char *id, *pidfile, *stopfile, *log, *note, *limits, *out;
  char **dirs, **argv, **env, **readonly;
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
  r->dirs = r->argv = r->env = r->readonly = NULL;
  int ok = list(buf, len, &at, &r->dirs);
  if (ok == 1) ok = list(buf, len, &at, &r->argv);
  if (ok == 1) ok = list(buf, len, &at, &r->env);
  if (ok == 1) ok = list(buf, len, &at, &r->readonly);
  if (ok != 1) {
    free(r->dirs);
    free(r->argv);
    free(r->env);
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
    const char *work = r->dirs[0] != NULL ? r->dirs[0] : "/";
    if (chdir(work) < 0) {
      fprintf(stderr, "strand: %s: %s\n", work, strerror(errno));
      _exit(0);
    }
    environ = r->env;
    _exit(wrap(r->pidfile, r->stopfile, r->limits, work, r->readonly, r->argv));
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

/*
 * `strand-launcher wrap [-C DIR] PIDFILE STOPFILE LOG STDOUT LIMITS -- ARGV...`: one attempt's
 * wrapper, run directly rather than forked by a launcher: the container executor mounts this
 * static program read-only into a job's container and makes it the container's first process, so
 * the step's image needs nothing but its tool. It does what a forked wrapper does (pid file, exit
 * line, timeout and terminate with the grace period, output to LOG and the command's standard
 * output to STDOUT when not ""), in the container's working directory (DIR with -C: an AWS Batch
 * container cannot be given one) and environment; the memory limit is the container's (LIMITS'
 * memory is 0). Its exit status is the command's.
 */
static int wrap_main(int argc, char **argv) {
  const char *dir = NULL;
  if (argc > 3 && strcmp(argv[2], "-C") == 0) {
    dir = argv[3];
    argv += 2;
    argc -= 2;
  }
  if (argc < 9 || strcmp(argv[7], "--") != 0) {
    fprintf(stderr,
            "usage: strand-launcher wrap [-C DIR] PIDFILE STOPFILE LOG STDOUT LIMITS -- ARGV...\n");
    return 2;
  }
  const char *pidfile = argv[2], *stopfile = argv[3], *log_path = argv[4], *out_path = argv[5];
  int log = open(log_path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
  if (log < 0) {
    fprintf(stderr, "strand: %s: %s\n", log_path, strerror(errno));
    return 126;
  }
  if (dir != NULL && chdir(dir) != 0) {
    dprintf(log, "strand: %s: %s\n", dir, strerror(errno));
    return 126;
  }
  int out = log;
  if (out_path[0] != '\0') {
    out = open(out_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (out < 0) {
      dprintf(log, "strand: %s: %s\n", out_path, strerror(errno));
      return 126;
    }
  }
  int null = open("/dev/null", O_RDONLY | O_CLOEXEC);
  if (null < 0 || dup2(null, 0) < 0 || dup2(out, 1) < 0 || dup2(log, 2) < 0) return 126;
  char cwd[4096];
  if (getcwd(cwd, sizeof cwd) == NULL) snprintf(cwd, sizeof cwd, "/");
  char *none[] = {NULL};
  in_container = 1;
  return wrap(pidfile, stopfile, argv[6], cwd, none, argv + 8);
}

/*
 * `strand-launcher run REQUEST`: one attempt's wrapper in the foreground, its request read from
 * the file REQUEST (the launcher's request format; the id is not used). The SLURM executor's
 * batch script execs it on the node, so that a job there gets what a forked wrapper gives one on
 * this machine (its directories and log, the `stdout:` file, the memory limit measured over all
 * of its processes, timeout, terminate, read-only inputs where it may mount, the pid file and the
 * exit line), its argv and environment read from a file rather than from shell text. The
 * environment is the request's and the job's SLURM_* variables (what `srun` in a job, or a tool
 * reading SLURM_CPUS_PER_TASK, needs). Its exit status is the command's; 0 without running
 * anything when the attempt was claimed before (its pid file exists).
 */
static int run_main(int argc, char **argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: strand-launcher run REQUEST\n");
    return 2;
  }
  FILE *f = fopen(argv[2], "rb");
  if (f == NULL) {
    fprintf(stderr, "strand: %s: %s\n", argv[2], strerror(errno));
    return 126;
  }
  size_t cap = 1 << 16, len = 0;
  char *buf = malloc(cap);
  for (;;) {
    if (buf == NULL) return 126;
    len += fread(buf + len, 1, cap - len, f);
    if (len < cap) break;
    cap *= 2;
    buf = realloc(buf, cap);
  }
  fclose(f);
  struct request r;
  size_t used = 0;
  if (parse(buf, len, &r, &used) != 1) {
    fprintf(stderr, "strand: %s: not a complete launch request\n", argv[2]);
    return 126;
  }
  if (access(r.pidfile, F_OK) == 0) return 0; /* started before: that wrapper has the attempt */
  for (char **d = r.dirs; *d != NULL; d++) {
    if (make_dirs(*d) < 0) {
      fprintf(stderr, "strand: %s: %s\n", *d, strerror(errno));
      return 126;
    }
  }
  if (r.note[0] != '\0') {
    int fd = open(r.log, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd >= 0) {
      ssize_t ignored = write(fd, r.note, strlen(r.note));
      (void)ignored;
      close(fd);
    }
  }
  int log = open(r.log, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
  if (log < 0) {
    fprintf(stderr, "strand: %s: %s\n", r.log, strerror(errno));
    return 126;
  }
  int out = log;
  if (r.out[0] != '\0') {
    out = open(r.out, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (out < 0) {
      dprintf(log, "strand: %s: %s\n", r.out, strerror(errno));
      return 126;
    }
  }
  int null = open("/dev/null", O_RDONLY | O_CLOEXEC);
  if (null < 0 || dup2(null, 0) < 0 || dup2(out, 1) < 0 || dup2(log, 2) < 0) return 126;
  const char *work = r.dirs[0] != NULL ? r.dirs[0] : "/";
  if (chdir(work) < 0) {
    fprintf(stderr, "strand: %s: %s\n", work, strerror(errno));
    return 126;
  }
  size_t n = 0, slurm = 0;
  while (r.env[n] != NULL) n++;
  for (char **e = environ; e != NULL && *e != NULL; e++) slurm += strncmp(*e, "SLURM_", 6) == 0;
  char **env = calloc(n + slurm + 1, sizeof *env);
  if (env == NULL) return 126;
  memcpy(env, r.env, n * sizeof *env);
  for (char **e = environ; e != NULL && *e != NULL; e++)
    if (strncmp(*e, "SLURM_", 6) == 0) env[n++] = *e;
  /* What the batch script's shell left ignored or blocked would reach the command. */
  signal(SIGPIPE, SIG_DFL);
  signal(SIGCHLD, SIG_DFL);
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, NULL);
  environ = env;
  return wrap(r.pidfile, r.stopfile, r.limits, work, r.readonly, r.argv);
}

int main(int argc, char **argv) {
  if (argc > 1 && strcmp(argv[1], "wrap") == 0) return wrap_main(argc, argv);
  if (argc > 1 && strcmp(argv[1], "run") == 0) return run_main(argc, argv);
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
      free(r.readonly);
      start += used;
      reap();
    }
    memmove(buf, buf + start, len - start);
    len -= start;
  }
}
