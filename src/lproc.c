/*
 * lproc.c: require "serfhand.proc" — run a command without a shell and
 * collect its output under a timeout and a size cap, spawn a fully detached
 * child that cannot hold up the Serf agent, and kill / probe processes.
 * Used by handlers (restart actions, helper tools) and by `serfhand action`.
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

#include <lauxlib.h>
#include <lua.h>

#include "serfhand.h"

#define PROC_MAX_OUTPUT_DEFAULT ((lua_Integer)1 << 20) /* per stream */
#define PROC_MAX_OUTPUT_LIMIT ((lua_Integer)64 << 20)
#define PROC_KILL_GRACE_MS 200 /* SIGTERM, then SIGKILL this much later */
#define PROC_CHUNK 65536
#define PROC_JOB_MT "serfhand.proc.job"
#define PROC_MAX_DELAY_MS ((lua_Integer)24 * 3600 * 1000) /* spawn's delay_ms */

/* The environment a child gets when the caller passes no env. */
static const char *const env_allow[] = {
    "PATH", "HOME", "LANG", "LC_ALL", "TZ", "SERF_RPC_ADDR", "SERF_RPC_AUTH", NULL,
};

/* What a child reports through its close-on-exec status pipe. */
enum stage { ST_CHDIR, ST_EXEC };

struct rec {
    int stage;
    int val; /* errno */
};

/* Everything a child needs, prepared by the parent before fork(). */
struct childspec {
    char *const *argv;
    char *const *envp;
    const char *cwd;   /* NULL: stay */
    int fd0, fd1, fd2; /* become stdin, stdout, stderr; all >= 3 */
    int status_fd;     /* write end of the status pipe, close-on-exec */
    int max_fd;        /* for the close loop when close_range is missing */
    bool detached;     /* spawn: umask 022, CPU limit lifted; run: own group */
    int64_t exec_at;   /* spawn: CLOCK_MONOTONIC ms to exec at; 0 = at once */
};

/* The output buffers of a run, owned by a userdata so that pushing the
 * results (which may raise on memory) cannot leak them. */
struct job {
    struct buf out[2];
};

struct runopt {
    const char *stdin_data; /* NULL: /dev/null */
    size_t stdin_len;
    size_t max_output;
    int64_t deadline; /* CLOCK_MONOTONIC ms, 0 = none */
};

struct runres {
    int wstatus;
    bool reaped, timed_out, truncated;
};

/* --------------------------------------------------------- plain C part */

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
    struct rec r = {stage, val};
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
    if (cs->detached) {
        struct rlimit rl; /* the handler's CPU cap must not follow it */
        if (getrlimit(RLIMIT_CPU, &rl) == 0) {
            rl.rlim_cur = rl.rlim_max;
            setrlimit(RLIMIT_CPU, &rl);
        }
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
    if (cs->exec_at > 0) {
        /* A delayed start: report now whether the command can be found, let
         * the parent go, and wait. A failure at exec time goes to stderr. */
        int e = find_exec(cs->argv[0]);
        if (e) {
            child_report(cs->status_fd, ST_EXEC, e);
            _exit(127);
        }
        close(cs->status_fd);
        sleep_until(cs->exec_at);
        execvp(cs->argv[0], cs->argv);
        report_late_exec(cs->argv[0], errno);
        _exit(127);
    }
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

/* Append what was read to b, up to max bytes; true if something was cut. */
static bool keep_output(struct buf *b, const char *p, size_t n, size_t max)
{
    size_t room = b->len < max ? max - b->len : 0;
    if (n <= room) {
        buf_add(b, p, n);
        return false;
    }
    buf_add(b, p, room);
    return true;
}

/*
 * Run argv with the pipes, timeout and caps of o. Returns 0 with r filled
 * and the output in j, or -1 with err when the command could not be started.
 * Writing to a child that stopped reading does not raise SIGPIPE here.
 */
static int run_job(const struct childspec *spec, const struct runopt *o, struct job *j,
                   struct runres *r, char *err, size_t errlen)
{
    int in[2] = {-1, -1}, out[2] = {-1, -1}, er[2] = {-1, -1}, st[2] = {-1, -1};
    int devnull = -1, pidfd = -1, rc = -1;
    pid_t pid = -1;
    sigset_t pipeset, oldmask, pend;
    bool pipe_was_pending = false;
    struct childspec cs = *spec;

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

    struct rec rec;
    if (read_records(st[0], &rec, 1) == 1) { /* exec failed: the child exits */
        wait_eintr(pid, &r->wstatus, 0);
        pid = -1;
        util_errf(err, errlen, "proc: %s '%s': %s", stage_what(rec.stage),
                  rec.stage == ST_CHDIR ? cs.cwd : cs.argv[0], strerror(rec.val));
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
        if (phase == 0 && r->truncated)
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
                if (keep_output(&j->out[k], chunk, (size_t)got, o->max_output))
                    r->truncated = true;
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
static pid_t spawn_job(const struct childspec *spec, const char *log, char *err, size_t errlen)
{
    int st[2] = {-1, -1}, devnull = -1, logfd = -1;
    pid_t pid = -1, result = -1;
    struct childspec cs = *spec;

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
out:
    fd_close(&st[0]);
    fd_close(&st[1]);
    fd_close(&devnull);
    fd_close(&logfd);
    return result;
}

/* ---------------------------------------------- collecting Lua arguments */

/* Check argv at idx and push a userdata holding a NULL-terminated char *[]
 * pointing into the strings of that table. The userdata anchors the strings
 * itself (its user value): the caller's table may be changed by a finalizer
 * that any later allocation can run, and a string it dropped would be freed
 * under the pointer. Raises on misuse. */
static char **check_argv(lua_State *L, int idx, const char *fn)
{
    if (lua_type(L, idx) != LUA_TTABLE)
        luaL_error(L, "bad argument #1 to '%s' (argv must be a non-empty array of strings)", fn);
    lua_Integer n = (lua_Integer)lua_rawlen(L, idx);
    if (n < 1)
        luaL_error(L, "bad argument #1 to '%s' (argv must be a non-empty array of strings)", fn);
    if (n > 4096)
        luaL_error(L, "bad argument #1 to '%s' (argv has more than 4096 elements)", fn);
    char **v = lua_newuserdatauv(L, (size_t)(n + 1) * sizeof *v, 1);
    lua_createtable(L, (int)n, 0); /* the anchor */
    lua_setiuservalue(L, -2, 1);
    lua_getiuservalue(L, -1, 1);
    int anchor = lua_gettop(L);
    for (lua_Integer i = 1; i <= n; i++) {
        size_t len;
        if (lua_rawgeti(L, idx, i) != LUA_TSTRING)
            luaL_error(L, "bad argument #1 to '%s' (argv[%d] is a %s, not a string)", fn, (int)i,
                       luaL_typename(L, -1));
        const char *s = lua_tolstring(L, -1, &len);
        if (strlen(s) != len || (i == 1 && len == 0))
            luaL_error(L, "bad argument #1 to '%s' (argv[%d] is empty or contains NUL)", fn,
                       (int)i);
        v[i - 1] = (char *)s;
        lua_rawseti(L, anchor, i); /* pops the string into the anchor */
    }
    lua_pop(L, 1); /* the anchor; the userdata on top holds it */
    v[n] = NULL;
    return v;
}

static bool valid_env_name(const char *s, size_t len)
{
    return len > 0 && strlen(s) == len && !strchr(s, '=');
}

/* Push a table of "K=V" strings followed by a userdata char *[] over them.
 * idx is the caller's env option (a table) or 0 for the allow-list. */
static char **build_env(lua_State *L, int idx, const char *fn)
{
    lua_newtable(L); /* the strings */
    int t = lua_gettop(L);
    int n = 0;
    if (idx == 0) {
        for (const char *const *k = env_allow; *k; k++) {
            const char *v = getenv(*k);
            if (v) {
                lua_pushfstring(L, "%s=%s", *k, v);
                lua_rawseti(L, t, ++n);
            }
        }
    } else {
        lua_pushnil(L);
        while (lua_next(L, idx)) { /* key at -2, value at -1 */
            size_t klen, vlen;
            if (lua_type(L, -1) != LUA_TSTRING)
                luaL_error(L, "bad option 'env' to '%s' (values must be strings)", fn);
            const char *v = lua_tolstring(L, -1, &vlen);
            if (strlen(v) != vlen)
                luaL_error(L, "bad option 'env' to '%s' (a value contains NUL)", fn);
            if (lua_type(L, -2) == LUA_TNUMBER) { /* "K=V" */
                const char *eq = strchr(v, '=');
                if (!eq || eq == v)
                    luaL_error(L, "bad option 'env' to '%s' ('%s' is not K=V)", fn, v);
                lua_pushvalue(L, -1);
            } else if (lua_type(L, -2) == LUA_TSTRING) { /* K = V */
                const char *k = lua_tolstring(L, -2, &klen);
                if (!valid_env_name(k, klen))
                    luaL_error(L, "bad option 'env' to '%s' (bad variable name)", fn);
                lua_pushfstring(L, "%s=%s", k, v);
            } else {
                luaL_error(L, "bad option 'env' to '%s' (keys must be names or indexes)", fn);
            }
            lua_rawseti(L, t, ++n);
            lua_pop(L, 1); /* the value; the key stays for lua_next */
        }
    }
    char **v = lua_newuserdatauv(L, (size_t)(n + 1) * sizeof *v, 0);
    for (int i = 1; i <= n; i++) {
        lua_rawgeti(L, t, i);
        v[i - 1] = (char *)lua_tostring(L, -1); /* table t keeps it alive */
        lua_pop(L, 1);
    }
    v[n] = NULL;
    return v;
}

/* Raise unless every key of the options table at idx is one of names. */
static void check_opt_keys(lua_State *L, int idx, const char *fn, const char *const *names)
{
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        bool ok = false;
        if (lua_type(L, -2) == LUA_TSTRING)
            for (const char *const *k = names; *k && !ok; k++)
                ok = strcmp(lua_tostring(L, -2), *k) == 0;
        if (!ok) {
            lua_pushvalue(L, -2);
            luaL_error(L, "bad argument #2 to '%s' (unknown option '%s')", fn,
                       luaL_tolstring(L, -1, NULL));
        }
        lua_pop(L, 1);
    }
}

/* Push option key of the table at idx; raise unless nil or of type want. */
static int opt_field(lua_State *L, int idx, const char *key, int want, const char *fn)
{
    lua_pushstring(L, key);
    int t = lua_rawget(L, idx); /* raw: no metamethod may run and touch argv */
    if (t != LUA_TNIL && t != want)
        luaL_error(L, "bad option '%s' to '%s' (%s expected, got %s)", key, fn,
                   lua_typename(L, want), luaL_typename(L, -1));
    return t;
}

static lua_Integer opt_int(lua_State *L, int idx, const char *key, lua_Integer dflt,
                           lua_Integer min, lua_Integer max, const char *fn)
{
    lua_Integer v = dflt;
    if (opt_field(L, idx, key, LUA_TNUMBER, fn) != LUA_TNIL) {
        int isint;
        v = lua_tointegerx(L, -1, &isint);
        if (!isint || v < min || v > max)
            luaL_error(L, "bad option '%s' to '%s' (integer in %I..%I expected)", key, fn, min,
                       max);
    }
    lua_pop(L, 1);
    return v;
}

/* Leave the string option (or nothing) in *out; the value stays on the stack. */
static const char *opt_str(lua_State *L, int idx, const char *key, const char *fn, size_t *len)
{
    if (opt_field(L, idx, key, LUA_TSTRING, fn) == LUA_TNIL)
        return NULL;
    return lua_tolstring(L, -1, len);
}

static int64_t sandbox_deadline(lua_State *L)
{
    struct sandbox *sb = sandbox_of(L);
    return sb ? sandbox_deadline_ms(sb) : 0;
}

/* ----------------------------------------------------------- Lua API */

static int job_gc(lua_State *L)
{
    struct job *j = luaL_checkudata(L, 1, PROC_JOB_MT);
    buf_free(&j->out[0]);
    buf_free(&j->out[1]);
    return 0;
}

static const char *const run_opts[] = {"cwd", "env", "max_output", "stdin", "timeout_ms", NULL};
static const char *const spawn_opts[] = {"cwd", "delay_ms", "env", "log", NULL};

/* run(argv [, opts]) -> {status, signal, stdout, stderr, timed_out, truncated}
 * | nil, err */
static int proc_run(lua_State *L)
{
    const char *fn = "run";
    struct childspec cs;
    struct runopt o;
    memset(&cs, 0, sizeof cs);
    memset(&o, 0, sizeof o);
    lua_settop(L, 2);
    cs.argv = check_argv(L, 1, fn);
    if (!lua_isnoneornil(L, 2))
        luaL_checktype(L, 2, LUA_TTABLE);
    else {
        lua_newtable(L);
        lua_replace(L, 2);
    }
    check_opt_keys(L, 2, fn, run_opts);
    lua_Integer timeout = opt_int(L, 2, "timeout_ms", 0, 0, INT32_MAX, fn);
    o.max_output =
        (size_t)opt_int(L, 2, "max_output", PROC_MAX_OUTPUT_DEFAULT, 1, PROC_MAX_OUTPUT_LIMIT, fn);
    size_t len;
    o.stdin_data = opt_str(L, 2, "stdin", fn, &o.stdin_len);
    cs.cwd = opt_str(L, 2, "cwd", fn, &len);
    if (cs.cwd && strlen(cs.cwd) != len)
        luaL_error(L, "bad option 'cwd' to '%s' (contains NUL)", fn);
    if (opt_field(L, 2, "env", LUA_TTABLE, fn) == LUA_TTABLE)
        cs.envp = build_env(L, lua_gettop(L), fn);
    else
        cs.envp = build_env(L, 0, fn);
    struct job *j = lua_newuserdatauv(L, sizeof *j, 0);
    memset(j, 0, sizeof *j);
    luaL_setmetatable(L, PROC_JOB_MT);

    int64_t now = util_mono_ms(), sbd = sandbox_deadline(L);
    o.deadline = timeout > 0 ? now + timeout : 0;
    if (sbd > 0 && (o.deadline == 0 || sbd < o.deadline))
        o.deadline = sbd;
    if (sbd > 0 && now >= sbd) {
        luaL_pushfail(L);
        lua_pushstring(L, "proc: the handler's deadline has passed");
        return 2;
    }

    /* From here to the pushes no Lua call: fds exist only inside run_job. */
    struct runres r;
    char err[512];
    if (run_job(&cs, &o, j, &r, err, sizeof err) < 0) {
        luaL_pushfail(L);
        lua_pushstring(L, err);
        return 2;
    }
    lua_createtable(L, 0, 6);
    if (r.reaped && WIFEXITED(r.wstatus)) {
        lua_pushinteger(L, WEXITSTATUS(r.wstatus));
        lua_setfield(L, -2, "status");
    }
    if (r.reaped && WIFSIGNALED(r.wstatus)) {
        lua_pushinteger(L, WTERMSIG(r.wstatus));
        lua_setfield(L, -2, "signal");
    }
    lua_pushlstring(L, j->out[0].data ? j->out[0].data : "", j->out[0].len);
    lua_setfield(L, -2, "stdout");
    lua_pushlstring(L, j->out[1].data ? j->out[1].data : "", j->out[1].len);
    lua_setfield(L, -2, "stderr");
    lua_pushboolean(L, r.timed_out);
    lua_setfield(L, -2, "timed_out");
    lua_pushboolean(L, r.truncated);
    lua_setfield(L, -2, "truncated");
    buf_free(&j->out[0]); /* __gc would too; free the megabytes now */
    buf_free(&j->out[1]);
    return 1;
}

static bool spawned_waiting;

bool proc_spawned_waiting(void)
{
    return spawned_waiting;
}

/* spawn(argv [, {log, env, cwd, delay_ms}]) -> pid | nil, err */
static int proc_spawn(lua_State *L)
{
    const char *fn = "spawn";
    struct childspec cs;
    memset(&cs, 0, sizeof cs);
    lua_settop(L, 2);
    cs.argv = check_argv(L, 1, fn);
    if (!lua_isnoneornil(L, 2))
        luaL_checktype(L, 2, LUA_TTABLE);
    else {
        lua_newtable(L);
        lua_replace(L, 2);
    }
    check_opt_keys(L, 2, fn, spawn_opts);
    size_t len;
    const char *log = opt_str(L, 2, "log", fn, &len);
    if (log && (strlen(log) != len || len == 0))
        luaL_error(L, "bad option 'log' to '%s' (empty or contains NUL)", fn);
    cs.cwd = opt_str(L, 2, "cwd", fn, &len);
    if (cs.cwd && strlen(cs.cwd) != len)
        luaL_error(L, "bad option 'cwd' to '%s' (contains NUL)", fn);
    lua_Integer delay = opt_int(L, 2, "delay_ms", 0, 0, PROC_MAX_DELAY_MS, fn);
    if (opt_field(L, 2, "env", LUA_TTABLE, fn) == LUA_TTABLE)
        cs.envp = build_env(L, lua_gettop(L), fn);
    else
        cs.envp = build_env(L, 0, fn);
    cs.exec_at = delay > 0 ? util_mono_ms() + delay : 0;

    char err[512];
    pid_t pid = spawn_job(&cs, log, err, sizeof err);
    if (pid < 0) {
        luaL_pushfail(L);
        lua_pushstring(L, err);
        return 2;
    }
    spawned_waiting = spawned_waiting || cs.exec_at > 0;
    lua_pushinteger(L, pid);
    return 1;
}

static const struct {
    const char *name;
    int sig;
} signames[] = {
    {"HUP", SIGHUP},   {"INT", SIGINT},   {"QUIT", SIGQUIT}, {"KILL", SIGKILL}, {"USR1", SIGUSR1},
    {"USR2", SIGUSR2}, {"TERM", SIGTERM}, {"CONT", SIGCONT}, {"STOP", SIGSTOP},
};

static pid_t check_pid(lua_State *L, int idx)
{
    lua_Integer pid = luaL_checkinteger(L, idx);
    luaL_argcheck(L, pid > 0 && pid <= INT_MAX, idx, "pid must be a positive integer");
    return (pid_t)pid;
}

/* kill(pid [, sig]) -> true | nil, err; sig a number or a name, default TERM */
static int proc_kill(lua_State *L)
{
    pid_t pid = check_pid(L, 1);
    int sig = SIGTERM;
    if (lua_type(L, 2) == LUA_TSTRING) {
        const char *s = lua_tostring(L, 2);
        if (strncmp(s, "SIG", 3) == 0)
            s += 3;
        sig = 0;
        for (size_t i = 0; i < sizeof signames / sizeof signames[0]; i++)
            if (strcmp(s, signames[i].name) == 0)
                sig = signames[i].sig;
        luaL_argcheck(L, sig != 0, 2, "unknown signal name");
    } else if (!lua_isnoneornil(L, 2)) {
        lua_Integer n = luaL_checkinteger(L, 2);
        luaL_argcheck(L, n >= 0 && n < NSIG, 2, "signal number out of range");
        sig = (int)n;
    }
    if (kill(pid, sig) < 0) {
        int e = errno;
        luaL_pushfail(L);
        lua_pushfstring(L, "proc: kill %d: %s", (int)pid, strerror(e));
        return 2;
    }
    lua_pushboolean(L, 1);
    return 1;
}

/* A zombie still answers kill(pid, 0): look at its state too. A process
 * spawn started is the caller's child until the caller exits: once it has
 * ended, reap it here, so that a long-lived caller keeps no zombies. */
static bool pid_alive(pid_t pid)
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

/* alive(pid) -> boolean */
static int proc_alive(lua_State *L)
{
    lua_pushboolean(L, pid_alive(check_pid(L, 1)));
    return 1;
}

static const luaL_Reg proc_funcs[] = {
    {"alive", proc_alive}, {"kill", proc_kill}, {"run", proc_run},
    {"spawn", proc_spawn}, {NULL, NULL},
};

int luaopen_serfhand_proc(lua_State *L)
{
    if (luaL_newmetatable(L, PROC_JOB_MT)) {
        lua_pushcfunction(L, job_gc);
        lua_setfield(L, -2, "__gc");
        lua_pushcfunction(L, job_gc);
        lua_setfield(L, -2, "__close");
    }
    lua_pop(L, 1);
    luaL_newlib(L, proc_funcs);
    return 1;
}
