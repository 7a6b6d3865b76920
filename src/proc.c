/*
 * proc.c: run a command without a shell and collect its output under a
 * deadline and a size cap, or start it fully detached (optionally after a
 * delay); plain C (fork/exec, pipes, resource limits). lproc.c, the binding
 * of require "serfhand.proc", is its one user.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "serfhand.h"

#define PROC_KILL_GRACE_MS 200 /* SIGTERM, then SIGKILL this much later */
#define PROC_CHUNK 65536

/* What a child reports through its close-on-exec status pipe. */
enum stage { ST_CHDIR, ST_EXEC, ST_STARTED };

struct rec {
    int stage;
    int val;    /* errno */
    int64_t ms; /* ST_STARTED: CLOCK_REALTIME ms just before the exec */
};

/* Everything a child needs, prepared by the parent before fork(). */
struct childspec {
    char *const *argv;
    const char *path; /* exec this file; NULL: search argv[0] */
    char *const *envp;
    const char *cwd;   /* NULL: stay */
    int fd0, fd1, fd2; /* become stdin, stdout, stderr; all >= 3 */
    int status_fd;     /* write end of the status pipe, close-on-exec */
    int max_fd;        /* for the close loop when close_range is missing */
    bool detached;     /* spawn: umask 022, CPU limit lifted; run: own group */
    int64_t exec_at;   /* CLOCK_MONOTONIC ms to exec at; 0 = at once */
};

/* Set once proc_spawn started a child that waits before it execs. */
static bool spawned_waiting;

bool proc_spawned_waiting(void)
{
    return spawned_waiting;
}

static const char *stage_what(int stage)
{
    switch (stage) {
    case ST_CHDIR: return "cannot change to directory";
    default: return "cannot run";
    }
}

/* Move fd to a number >= 3 (so dup2 onto 0-2 never clobbers a source) and
 * make it close-on-exec. Returns the new fd or -1. */
static int fd_high(int fd)
{
    if (fd < 0 || fd >= 3)
        return fd;
    int n = fcntl(fd, F_DUPFD_CLOEXEC, 3);
    int e = errno;
    close(fd);
    errno = e;
    return n;
}

static int pipe_high(int p[2])
{
    p[0] = p[1] = -1;
    int q[2];
    if (pipe2(q, O_CLOEXEC) < 0)
        return -1;
    p[0] = fd_high(q[0]);
    p[1] = fd_high(q[1]);
    if (p[0] < 0 || p[1] < 0) {
        int e = errno;
        if (p[0] >= 0)
            close(p[0]);
        if (p[1] >= 0)
            close(p[1]);
        p[0] = p[1] = -1;
        errno = e;
        return -1;
    }
    return 0;
}

static void fd_close(int *fd)
{
    if (*fd >= 0)
        close(*fd);
    *fd = -1;
}

static int max_fd_guess(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < 65536)
        return (int)rl.rlim_cur;
    return 65536;
}

/* Close every descriptor >= 3 except keep. Async-signal-safe. */
static void close_others(int keep, int max_fd)
{
#ifdef SYS_close_range
    if ((keep == 3 || syscall(SYS_close_range, 3u, (unsigned)keep - 1, 0u) == 0) &&
        syscall(SYS_close_range, (unsigned)keep + 1, ~0u, 0u) == 0)
        return;
#endif
    for (int fd = 3; fd < max_fd; fd++)
        if (fd != keep)
            close(fd);
}

static void child_report(int fd, int stage, int val)
{
    struct rec r = {stage, val, 0};
    if (stage == ST_STARTED) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts); /* async-signal-safe */
        r.ms = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
    }
    (void)!write(fd, &r, sizeof r); /* <= PIPE_BUF: atomic */
}

/* 0 when execvp(file) would find an executable file (PATH of environ, or
 * "/bin:/usr/bin" as execvp assumes without one), else the errno it would
 * fail with. Async-signal-safe: no allocation. */
static int find_exec(const char *file)
{
    if (strchr(file, '/'))
        return access(file, X_OK) == 0 ? 0 : errno;
    extern char **environ;
    const char *path = "/bin:/usr/bin";
    for (char **e = environ; e && *e; e++)
        if (strncmp(*e, "PATH=", 5) == 0) {
            path = *e + 5;
            break;
        }
    size_t flen = strlen(file);
    int err = ENOENT;
    for (const char *p = path;; p++) {
        const char *end = strchr(p, ':');
        size_t dlen = end ? (size_t)(end - p) : strlen(p);
        char buf[PATH_MAX];
        if (dlen + 1 + flen < sizeof buf) {
            memcpy(buf, dlen ? p : ".", dlen ? dlen : 1);
            size_t at = dlen ? dlen : 1;
            buf[at] = '/';
            memcpy(buf + at + 1, file, flen + 1);
            if (access(buf, X_OK) == 0)
                return 0;
            if (errno == EACCES)
                err = EACCES; /* what execvp reports when nothing else runs */
        }
        if (!end)
            return err;
        p = end;
    }
}

/* For a delayed start: the exec failed after the wait, when nobody waits
 * for the status pipe; say so on stderr (the log). Async-signal-safe. */
static void report_late_exec(const char *file, int err)
{
    char num[16];
    int n = (int)sizeof num;
    unsigned v = (unsigned)err;
    do {
        num[--n] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    const char *parts[] = {"serfhand proc.spawn: cannot run '", file, "' after the wait: errno ",
                           NULL, "\n"};
    for (size_t i = 0; i < sizeof parts / sizeof *parts; i++) {
        const char *p = parts[i] ? parts[i] : num + n;
        size_t len = parts[i] ? strlen(p) : sizeof num - (size_t)n;
        (void)!write(2, p, len);
    }
}

/* Sleep until CLOCK_MONOTONIC reaches at_ms, through signals. */
static void sleep_until(int64_t at_ms)
{
    struct timespec ts = {(time_t)(at_ms / 1000), (long)(at_ms % 1000) * 1000000L};
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
        ;
}

/* In the child after fork(): set up and exec, or report why not and exit.
 * Only async-signal-safe calls. */
static void child_exec(const struct childspec *cs, pid_t parent)
{
    extern char **environ;
    sigset_t none;
    sigemptyset(&none);
    for (int s = 1; s < NSIG; s++) { /* SIG_IGN survives exec: undo it */
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = SIG_DFL;
        sigaction(s, &sa, NULL);
    }
    sigprocmask(SIG_SETMASK, &none, NULL);
    struct rlimit rl; /* the handler's lowered CPU cap must not follow the child */
    if (getrlimit(RLIMIT_CPU, &rl) == 0) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_CPU, &rl);
    }
    struct rlimit as; /* the sandbox's address-space backstop is not the child's */
    if (getrlimit(RLIMIT_AS, &as) == 0 && as.rlim_cur != as.rlim_max) {
        as.rlim_cur = as.rlim_max;
        setrlimit(RLIMIT_AS, &as);
    }
    if (cs->detached) {
        umask(022);
    } else {
        setpgid(0, 0);
        prctl(PR_SET_PDEATHSIG, SIGKILL); /* if serfhand is killed mid-run */
        if (getppid() != parent)
            _exit(127);
    }
    if (dup2(cs->fd0, 0) < 0 || dup2(cs->fd1, 1) < 0 || dup2(cs->fd2, 2) < 0) {
        child_report(cs->status_fd, ST_EXEC, errno);
        _exit(127);
    }
    close_others(cs->status_fd, cs->max_fd);
    if (cs->cwd && chdir(cs->cwd) < 0) {
        child_report(cs->status_fd, ST_CHDIR, errno);
        _exit(127);
    }
    environ = (char **)cs->envp; /* execvp then searches the child's PATH */
    if (cs->exec_at > 0 && !cs->detached) {
        /* run: the parent waits on the status pipe; the fork and the set-up
         * are done, only the exec is left for the agreed moment. */
        sleep_until(cs->exec_at);
    } else if (cs->exec_at > 0) {
        /* A delayed start: report now whether the command can be found, let
         * the parent go, and wait. A failure at exec time goes to stderr. */
        int e = find_exec(cs->path ? cs->path : cs->argv[0]);
        if (e) {
            child_report(cs->status_fd, ST_EXEC, e);
            _exit(127);
        }
        close(cs->status_fd);
        sleep_until(cs->exec_at);
        if (cs->path)
            execv(cs->path, cs->argv);
        else
            execvp(cs->argv[0], cs->argv);
        report_late_exec(cs->argv[0], errno);
        _exit(127);
    }
    if (!cs->detached)
        child_report(cs->status_fd, ST_STARTED, 0);
    if (cs->path)
        execv(cs->path, cs->argv);
    else
        execvp(cs->argv[0], cs->argv);
    child_report(cs->status_fd, ST_EXEC, errno);
    _exit(127);
}

/* Read status records until EOF (every write end closed or exec'd). */
static int read_records(int fd, struct rec *recs, int max)
{
    int n = 0;
    size_t got = 0;
    char *p = (char *)recs;
    size_t want = (size_t)max * sizeof *recs;
    for (;;) {
        ssize_t r = read(fd, p + got, want - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        got += (size_t)r;
        if (got == want)
            break;
    }
    n = (int)(got / sizeof *recs);
    return n;
}

static pid_t wait_eintr(pid_t pid, int *st, int flags)
{
    pid_t r;
    do
        r = waitpid(pid, st, flags);
    while (r < 0 && errno == EINTR);
    return r;
}

static int open_pidfd(pid_t pid)
{
#ifdef SYS_pidfd_open
    int fd = (int)syscall(SYS_pidfd_open, pid, 0);
    if (fd >= 0) {
        fcntl(fd, F_SETFD, FD_CLOEXEC);
        return fd;
    }
#else
    (void)pid;
#endif
    return -1;
}

/* What keep_output made of a chunk. */
enum kept { KEPT_ALL, KEPT_CUT, KEPT_NO_MEMORY };

/* Append what was read to b, up to max bytes. *held is what the buffers of
 * the run hold (their capacity, both streams) and may reach mem_max (0 = no
 * such bound): b grows by doubling but never past it. KEPT_CUT when max cut
 * the chunk, KEPT_NO_MEMORY when mem_max did (nothing kept). */
static enum kept keep_output(struct buf *b, const char *p, size_t n, size_t max, size_t *held,
                             size_t mem_max)
{
    size_t room = b->len < max ? max - b->len : 0;
    enum kept k = n <= room ? KEPT_ALL : KEPT_CUT;
    if (n > room)
        n = room;
    size_t need = b->len + n + 1;
    if (need > b->cap) {
        size_t cap = b->cap ? b->cap : 64;
        while (cap < need)
            cap = cap > SIZE_MAX / 2 ? need : cap * 2;
        if (mem_max) {
            size_t others = *held - b->cap;
            if (others > mem_max || need > mem_max - others)
                return KEPT_NO_MEMORY;
            if (cap > mem_max - others)
                cap = mem_max - others; /* >= need */
        }
        char *q = realloc(b->data, cap);
        if (!q)
            return KEPT_NO_MEMORY;
        *held = *held - b->cap + cap;
        b->data = q;
        b->cap = cap;
    }
    if (n)
        memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
    return k;
}

/*
 * Run argv with the pipes, timeout and caps of o. Returns 0 with r filled
 * and the output in out_bufs, or -1 with err when the command could not be started.
 * Writing to a child that stopped reading does not raise SIGPIPE here.
 */
int proc_run(const struct proc_cmd *c, const struct proc_run_opts *o, struct buf out_bufs[2],
             struct proc_run_result *r, char *err, size_t errlen)
{
    int in[2] = {-1, -1}, out[2] = {-1, -1}, er[2] = {-1, -1}, st[2] = {-1, -1};
    int devnull = -1, pidfd = -1, rc = -1;
    pid_t pid = -1;
    sigset_t pipeset, oldmask, pend;
    bool pipe_was_pending = false;
    struct childspec cs = {
        .argv = c->argv, .path = c->path, .envp = c->envp, .cwd = c->cwd, .exec_at = c->exec_at};

    memset(r, 0, sizeof *r);
    sigemptyset(&pipeset);
    sigaddset(&pipeset, SIGPIPE);
    sigpending(&pend);
    pipe_was_pending = sigismember(&pend, SIGPIPE);
    sigprocmask(SIG_BLOCK, &pipeset, &oldmask);

    if (pipe_high(out) < 0 || pipe_high(er) < 0 || pipe_high(st) < 0) {
        util_errf(err, errlen, "proc: cannot make a pipe: %s", strerror(errno));
        goto out;
    }
    if (o->stdin_data) {
        if (pipe_high(in) < 0) {
            util_errf(err, errlen, "proc: cannot make a pipe: %s", strerror(errno));
            goto out;
        }
    } else if ((devnull = fd_high(open("/dev/null", O_RDONLY | O_CLOEXEC))) < 0) {
        util_errf(err, errlen, "proc: cannot open /dev/null: %s", strerror(errno));
        goto out;
    }
    cs.fd0 = o->stdin_data ? in[0] : devnull;
    cs.fd1 = out[1];
    cs.fd2 = er[1];
    cs.status_fd = st[1];
    cs.max_fd = max_fd_guess();

    pid_t self = getpid();
    pid = fork();
    if (pid == 0)
        child_exec(&cs, self);
    if (pid < 0) {
        util_errf(err, errlen, "proc: cannot fork: %s", strerror(errno));
        goto out;
    }
    setpgid(pid, pid); /* also done by the child: whoever runs first */
    fd_close(&in[0]);
    fd_close(&out[1]);
    fd_close(&er[1]);
    fd_close(&st[1]);
    fd_close(&devnull);

    /* ST_STARTED, then EOF when the exec succeeds; or a failure record
     * (after ST_STARTED when the exec itself failed). With exec_at this
     * waits for it: lproc.c keeps exec_at before the deadline. */
    struct rec rec[2];
    int nrec = read_records(st[0], rec, 2), bad = 0;
    if (nrec > 0 && rec[0].stage == ST_STARTED) {
        r->started_ms = rec[0].ms;
        bad = 1;
    }
    if (nrec > bad) { /* it could not start: the child exits */
        wait_eintr(pid, &r->wstatus, 0);
        pid = -1;
        util_errf(err, errlen, "proc: %s '%s': %s", stage_what(rec[bad].stage),
                  rec[bad].stage == ST_CHDIR ? cs.cwd : cs.argv[0], strerror(rec[bad].val));
        goto out;
    }
    fd_close(&st[0]);
    pidfd = open_pidfd(pid);

    int *fds[2] = {&out[0], &er[0]}; /* closed at EOF, in place */
    size_t inoff = 0;
    if (in[1] >= 0) {
        fcntl(in[1], F_SETFL, O_NONBLOCK);
        if (o->stdin_len == 0)
            fd_close(&in[1]);
    }
    size_t held = out_bufs[0].cap + out_bufs[1].cap;
    int phase = 0; /* 0 running, 1 SIGTERM sent, 2 SIGKILL sent */
    int64_t kill_at = 0;
    char chunk[PROC_CHUNK];

    for (;;) {
        if (!r->reaped) {
            pid_t w = wait_eintr(pid, &r->wstatus, WNOHANG);
            if (w == pid || (w < 0 && errno == ECHILD)) {
                r->reaped = true;
                fd_close(&in[1]); /* nobody left to read it */
            }
        }
        if (r->reaped && (phase > 0 || (*fds[0] < 0 && *fds[1] < 0)))
            break;
        int64_t now = util_mono_ms();
        bool start_kill = false;
        if (phase == 0 && o->deadline && now >= o->deadline) {
            r->timed_out = true;
            start_kill = true;
        }
        if (phase == 0 && (r->truncated || r->out_of_memory))
            start_kill = true;
        if (start_kill) {
            if (kill(-pid, SIGTERM) < 0)
                kill(pid, SIGTERM); /* no group after all */
            phase = 1;
            kill_at = now + PROC_KILL_GRACE_MS;
            continue; /* a reaped child now ends the loop */
        }
        if (phase == 1 && now >= kill_at) {
            if (kill(-pid, SIGKILL) < 0)
                kill(pid, SIGKILL);
            phase = 2;
        }

        int timeout = -1;
        if (phase == 0 && o->deadline)
            timeout = (int)(o->deadline - now);
        else if (phase == 1)
            timeout = (int)(kill_at - now);
        else if (phase == 2)
            timeout = 100;
        if (!r->reaped && pidfd < 0 && (timeout < 0 || timeout > 10))
            timeout = 10; /* no pidfd: poll waitpid */

        struct pollfd pf[4];
        int np = 0, ix_in = -1, ix_out[2] = {-1, -1}, ix_pid = -1;
        if (in[1] >= 0) {
            ix_in = np;
            pf[np++] = (struct pollfd){.fd = in[1], .events = POLLOUT};
        }
        for (int k = 0; k < 2; k++)
            if (*fds[k] >= 0) {
                ix_out[k] = np;
                pf[np++] = (struct pollfd){.fd = *fds[k], .events = POLLIN};
            }
        if (!r->reaped && pidfd >= 0) {
            ix_pid = np;
            pf[np++] = (struct pollfd){.fd = pidfd, .events = POLLIN};
        }
        int n = poll(pf, (nfds_t)np, timeout);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            util_errf(err, errlen, "proc: poll: %s", strerror(errno));
            goto out;
        }
        (void)ix_pid; /* a readable pidfd just wakes us for waitpid above */
        if (ix_in >= 0 && pf[ix_in].revents) {
            size_t left = o->stdin_len - inoff;
            ssize_t w = write(in[1], o->stdin_data + inoff, left > PROC_CHUNK ? PROC_CHUNK : left);
            if (w > 0)
                inoff += (size_t)w;
            if ((w < 0 && errno != EAGAIN && errno != EINTR) || inoff == o->stdin_len)
                fd_close(&in[1]); /* done, or EPIPE: the child stopped reading */
        }
        for (int k = 0; k < 2; k++) {
            if (ix_out[k] < 0 || !pf[ix_out[k]].revents)
                continue;
            ssize_t got = read(*fds[k], chunk, sizeof chunk);
            if (got > 0) {
                switch (keep_output(&out_bufs[k], chunk, (size_t)got, o->max_output, &held,
                                    o->mem_max)) {
                case KEPT_ALL: break;
                case KEPT_CUT: r->truncated = true; break;
                case KEPT_NO_MEMORY: r->out_of_memory = true; break;
                }
            } else if (got == 0 || (errno != EAGAIN && errno != EINTR)) {
                fd_close(fds[k]);
            }
        }
    }
    if (phase > 0)
        kill(-pid, SIGKILL); /* members of the group that ignored SIGTERM */
    pid = -1;
    rc = 0;
out:
    if (pid > 0) { /* failed after the fork: leave nothing behind */
        kill(-pid, SIGKILL);
        kill(pid, SIGKILL);
        wait_eintr(pid, &r->wstatus, 0);
    }
    fd_close(&in[0]);
    fd_close(&in[1]);
    fd_close(&out[0]);
    fd_close(&out[1]);
    fd_close(&er[0]);
    fd_close(&er[1]);
    fd_close(&st[0]);
    fd_close(&st[1]);
    fd_close(&devnull);
    fd_close(&pidfd);
    sigpending(&pend);
    if (!pipe_was_pending && sigismember(&pend, SIGPIPE)) {
        struct timespec zero = {0, 0};
        sigtimedwait(&pipeset, NULL, &zero); /* swallow our own EPIPE's signal */
    }
    sigprocmask(SIG_SETMASK, &oldmask, NULL);
    return rc;
}

/*
 * Start argv fully detached: one fork, setsid, stdin on /dev/null,
 * stdout/stderr on /dev/null or appended to log, other descriptors closed.
 * Returns the child's pid, or -1 with err. A second fork (to leave a process
 * that is not a session leader) costs a whole process more (10 ms of CPU per
 * spawn instead of 6, measured); serfhand never opens a terminal, and a
 * session leader only gains one by opening a terminal without O_NOCTTY. The
 * child belongs to init (or the nearest subreaper) once the caller exits.
 */
pid_t proc_spawn(const struct proc_cmd *c, const char *log, char *err, size_t errlen)
{
    int st[2] = {-1, -1}, devnull = -1, logfd = -1;
    pid_t pid = -1, result = -1;
    struct childspec cs = {
        .argv = c->argv, .path = c->path, .envp = c->envp, .cwd = c->cwd, .exec_at = c->exec_at};

    if (pipe_high(st) < 0) {
        util_errf(err, errlen, "proc: cannot make a pipe: %s", strerror(errno));
        goto out;
    }
    if ((devnull = fd_high(open("/dev/null", O_RDWR | O_CLOEXEC))) < 0) {
        util_errf(err, errlen, "proc: cannot open /dev/null: %s", strerror(errno));
        goto out;
    }
    if (log) {
        logfd = fd_high(open(log, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOCTTY, 0640));
        if (logfd < 0) {
            util_errf(err, errlen, "proc: cannot open log '%s': %s", log, strerror(errno));
            goto out;
        }
    }
    cs.fd0 = devnull;
    cs.fd1 = cs.fd2 = logfd >= 0 ? logfd : devnull;
    cs.status_fd = st[1];
    cs.max_fd = max_fd_guess();
    cs.detached = true;

    pid = fork();
    if (pid == 0) {
        setsid(); /* new session and group, no controlling terminal */
        child_exec(&cs, 0);
    }
    if (pid < 0) {
        util_errf(err, errlen, "proc: cannot fork: %s", strerror(errno));
        goto out;
    }
    fd_close(&st[1]);
    fd_close(&devnull);
    fd_close(&logfd);

    struct rec r;
    if (read_records(st[0], &r, 1) > 0) { /* else EOF: it exec'd (or waits to) */
        int wst;
        wait_eintr(pid, &wst, 0); /* it exits 127 after the report: no zombie */
        util_errf(err, errlen, "proc: %s '%s': %s", stage_what(r.stage),
                  r.stage == ST_CHDIR ? cs.cwd : cs.argv[0], strerror(r.val));
        goto out;
    }
    result = pid;
    spawned_waiting = spawned_waiting || cs.exec_at > 0;
out:
    fd_close(&st[0]);
    fd_close(&st[1]);
    fd_close(&devnull);
    fd_close(&logfd);
    return result;
}

/* A zombie still answers kill(pid, 0): look at its state too. A process
 * spawn started is the caller's child until the caller exits: once it has
 * ended, reap it here, so that a long-lived caller keeps no zombies. */
bool proc_alive(pid_t pid)
{
    int st;
    if (waitpid(pid, &st, WNOHANG) == pid)
        return false;
    if (kill(pid, 0) < 0 && errno != EPERM)
        return false;
    char path[64], stat[512];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return errno != ENOENT;
    ssize_t n = read(fd, stat, sizeof stat - 1);
    close(fd);
    if (n <= 0)
        return true;
    stat[n] = '\0';
    const char *p = strrchr(stat, ')'); /* the name may contain spaces and ')' */
    if (p && p[1] == ' ' && (p[2] == 'Z' || p[2] == 'X'))
        return false;
    return true;
}

/* The first executable regular file named name in PROC_SAFE_PATH, into out. */
static bool safe_path_lookup(const char *name, char *out, size_t outlen)
{
    const char *p = PROC_SAFE_PATH;

    for (;;) {
        const char *end = strchr(p, ':');
        size_t dlen = end ? (size_t)(end - p) : strlen(p);
        struct stat st;
        int n = snprintf(out, outlen, "%.*s/%s", (int)dlen, p, name);

        if (n > 0 && (size_t)n < outlen && stat(out, &st) == 0 && S_ISREG(st.st_mode) &&
            access(out, X_OK) == 0)
            return true;
        if (!end)
            return false;
        p = end + 1;
    }
}

static const char *base_name(const char *path)
{
    const char *slash = strrchr(path, '/');
    return slash ? slash + 1 : path;
}

/* ACT of `action ACT DIGEST`, as propose takes it: [a-z][a-z0-9_-]*, at
 * most 32 bytes (never an option). */
static bool valid_act(const char *s)
{
    size_t n = strspn(s, "abcdefghijklmnopqrstuvwxyz0123456789_-");
    return n > 0 && n <= 32 && s[n] == '\0' && s[0] >= 'a' && s[0] <= 'z';
}

static bool valid_digest(const char *s)
{
    return strlen(s) == 64 && strspn(s, "0123456789abcdef") == 64;
}

/* argv equal to the configured restart command, element for element: the
 * operator approved that command, not its program with other arguments
 * (`sudo`, `docker`, `sh -c` would run anything). */
static bool is_restart(char *const *argv, char *const *restart, size_t nrestart)
{
    if (nrestart == 0)
        return false;
    for (size_t i = 0; i < nrestart; i++)
        if (!argv[i] || strcmp(argv[i], restart[i]) != 0)
            return false;
    return argv[nrestart] == NULL;
}

enum proc_allow proc_allowed(char *const *argv, char *const *allow, size_t nallow,
                             char *const *restart, size_t nrestart, char *path, size_t pathlen,
                             char *err, size_t errlen)
{
    const char *cmd = argv[0];
    char real[PATH_MAX], areal[PATH_MAX];

    /* The restart executor: this very binary, only as `action ACT DIGEST`.
     * No option (--unsigned, --bundle, -c) may reach host code from a
     * handler. */
    if (strcmp(cmd, "/proc/self/exe") == 0) {
        if (argv[1] && strcmp(argv[1], "action") == 0 && argv[2] && valid_act(argv[2]) && argv[3] &&
            valid_digest(argv[3]) && !argv[4]) {
            snprintf(path, pathlen, "%s", cmd);
            return PROC_SELF;
        }
        util_errf(err, errlen,
                  "'/proc/self/exe' is not allowed but as \"/proc/self/exe\", \"action\", ACT, "
                  "DIGEST (64 hex), nothing else");
        return PROC_BAD_SELF;
    }
    if (strchr(cmd, '/') == NULL) {
        if (!safe_path_lookup(cmd, path, pathlen)) {
            util_errf(err, errlen, "'%s' is not in %s", cmd, PROC_SAFE_PATH);
            return PROC_NOT_FOUND;
        }
    } else {
        snprintf(path, pathlen, "%s", cmd);
    }
    /* The operator's own restart command, exactly as configured. */
    if (is_restart(argv, restart, nrestart))
        return PROC_ALLOWED;
    if (path[0] == '/') {
        bool have_real = realpath(path, real) != NULL;
        for (size_t i = 0; i < nallow; i++) {
            if (allow[i][0] != '/')
                continue; /* refused when the config loads; never a PATH search */
            if (strcmp(allow[i], path) == 0)
                return PROC_ALLOWED;
            if (have_real && realpath(allow[i], areal) && strcmp(real, areal) == 0 &&
                strcmp(base_name(allow[i]), base_name(path)) == 0)
                return PROC_ALLOWED;
        }
    }
    util_errf(err, errlen, "'%s' is not allowed (add its absolute path to proc.allow)", path);
    return PROC_NOT_ALLOWED;
}
