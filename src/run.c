/*
 * run.c: the runner. Every run of Lua code goes through run_exec: open the
 * bundle (verified unless told not to), a sandbox with the limits, load the
 * handler (or a host chunk), push ev (built by event.c), call it, encode the
 * reply, classify what happened into one enum run_result, tear down. Used by
 * handle and tick (a Serf event), action and propose (tools), test and check.
 * run_serf, below, is Serf's side: `handle` in a child, for run and test,
 * which also share the scratch state directory made here.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <lauxlib.h>

#include "serfhand.h"

/* One run under way. */
struct run {
    const struct run_req *r;
    struct bundle b;
    bool have_bundle;
    struct sandbox *sb;
    char *rel;        /* the bundle file run, or NULL for a host chunk */
    const char *what; /* rel or the chunk's name, for messages */
    struct buf reply; /* delivered only when the run ends RUN_OK */
    char *err;
    size_t errlen;
};

/* A failure: its message goes to err and, for a Serf run (no one else could
 * see it: a query's stderr is its answer), to the log. */
static enum run_result fail(struct run *x, enum run_result rc, const char *fmt, ...)
{
    char msg[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (x->r->mode == RUN_SERF)
        log_msg(LOG_LVL_ERROR, "%s", msg);
    util_errf(x->err, x->errlen, "%s", msg);
    return rc;
}

struct sandbox_limits run_limits(const struct config *cfg, const char *deadline_name,
                                 int deadline_ms)
{
    struct sandbox_limits lim = {
        .memory = (size_t)config_int(cfg, "limits.memory_mb") * 1024 * 1024,
        .deadline_ms = deadline_name ? (int)config_int(cfg, deadline_name) : deadline_ms,
        .grace_ms = (int)config_int(cfg, "limits.grace_ms"),
        .deadline_name = deadline_name,
    };
    return lim;
}

/* The setting that holds the deadline of an event of type t. */
static const char *deadline_for(enum event_type t)
{
    if (t == EV_QUERY)
        return "limits.query_ms";
    if (t == EV_TICK || t == EV_TOOL)
        return "limits.tick_ms";
    return "limits.event_ms";
}

/* Turn a failed pcall (message on top) into a result and its message. */
static enum run_result lua_failed(struct run *x, int status, const char *what)
{
    lua_State *L = sandbox_state(x->sb);
    const char *msg = lua_tostring(L, -1);
    if (!msg)
        msg = "(no message)";
    if (sandbox_timed_out(x->sb))
        return fail(x, RUN_TIMEOUT, "%s stopped: deadline exceeded (%s): %s", what,
                    sandbox_deadline_name(x->sb), msg);
    if (status == LUA_ERRMEM || sandbox_out_of_memory(x->sb))
        return fail(x, RUN_MEMORY, "%s stopped: memory cap reached (limits.memory_mb): %s", what,
                    msg);
    if (x->r->mode == RUN_LOAD) /* check lists it: the first line, no traceback */
        return fail(x, RUN_FAILED, "%s: loading raised: %.*s", what, (int)strcspn(msg, "\n"), msg);
    return fail(x, RUN_FAILED, "%s failed: %s", what, msg);
}

/* The value on top into x->reply: a string as is, a table as JSON (the
 * encoder runs the table's metamethods under the handler's limits), nil as
 * nothing. Anything else: a Serf query refuses it, a tool takes tostring. */
static enum run_result encode(struct run *x, size_t cap)
{
    lua_State *L = sandbox_state(x->sb);
    bool query = x->r->mode == RUN_SERF;
    char err[256];
    switch (lua_type(L, -1)) {
    case LUA_TNIL: return RUN_OK;
    case LUA_TSTRING: {
        size_t n;
        const char *s = lua_tolstring(L, -1, &n);
        if (n > cap) /* refused before the host copies it out of the cap */
            return fail(x, RUN_RESPONSE,
                        "response refused: %zu bytes is over limits.response_bytes = %zu", n, cap);
        buf_add(&x->reply, s, n);
        return RUN_OK;
    }
    case LUA_TTABLE:
        switch (ljson_encode_max(L, -1, cap, &x->reply, err, sizeof err)) {
        case LJSON_OK: return RUN_OK;
        case LJSON_TOO_LONG: /* refused before the host copies it */
            return fail(x, RUN_RESPONSE, "response refused: %s is over limits.response_bytes = %zu",
                        err, cap);
        case LJSON_NO_MEMORY:
            return fail(x, RUN_MEMORY,
                        "response refused: memory cap reached (limits.memory_mb = %lld): %s",
                        config_int(x->r->cfg, "limits.memory_mb"), err);
        default:
            if (sandbox_out_of_memory(x->sb))
                return fail(x, RUN_MEMORY,
                            "response refused: memory cap reached (limits.memory_mb = %lld): %s",
                            config_int(x->r->cfg, "limits.memory_mb"), err);
            return fail(x, query ? RUN_RESPONSE : RUN_FAILED,
                        "response refused: cannot encode the returned table: %s", err);
        }
    default:
        if (query)
            return fail(x, RUN_RESPONSE,
                        "response refused: a query handler returns a string, a table or nil, "
                        "not a %s",
                        luaL_typename(L, -1));
        if (sandbox_tostring(x->sb, -1, &x->reply) < 0)
            return lua_failed(x, LUA_ERRRUN, x->what);
        return RUN_OK;
    }
}

/* What a Serf event's handler returned (on top). */
static enum run_result serf_reply(struct run *x)
{
    lua_State *L = sandbox_state(x->sb);
    if (x->r->ev->type == EV_QUERY) {
        size_t cap = (size_t)config_int(x->r->cfg, "limits.response_bytes");
        if (lua_isnil(L, -1))
            log_msg(LOG_LVL_DEBUG, "no response");
        enum run_result rc = encode(x, cap);
        if (rc == RUN_OK && x->reply.len > cap) {
            size_t n = x->reply.len;
            buf_free(&x->reply); /* not held through the teardown */
            return fail(x, RUN_RESPONSE,
                        "response refused: %zu bytes is over limits.response_bytes = %zu", n, cap);
        }
        return rc;
    }
    /* Only logged; the value is the handler's: its __tostring runs under its
     * limits. */
    struct buf s = {0};
    if (lua_isnil(L, -1))
        ;
    else if (sandbox_tostring(x->sb, -1, &s) == 0)
        log_msg(LOG_LVL_DEBUG, "returned %s", s.data);
    else
        log_msg(LOG_LVL_DEBUG, "returned a value whose __tostring raised: %s", lua_tostring(L, -1));
    buf_free(&s);
    return RUN_OK;
}

/* What a tool returned: value, err (on top). `nil, err` is a failure. */
static enum run_result tool_reply(struct run *x)
{
    lua_State *L = sandbox_state(x->sb);
    if (lua_isnil(L, -2))
        return fail(x, RUN_FAILED, "%s", lua_isstring(L, -1) ? lua_tostring(L, -1) : "failed");
    lua_pop(L, 1);
    return encode(x, SIZE_MAX);
}

/* Protected (sandbox_cpcall): push what is called with. A handler gets ev;
 * a host chunk gets the host functions (a table, if any) and ev's args. At
 * the memory cap this raises like any allocation. */
static int push_call_args(lua_State *L)
{
    struct run *x = lua_touserdata(L, 1);
    const struct run_req *r = x->r;
    if (!r->chunk) {
        event_push(L, r->ev, &x->b);
        return 1;
    }
    int n = 0;
    if (r->funcs) {
        lua_newtable(L);
        for (const luaL_Reg *f = r->funcs; f->name; f++) {
            lua_pushlightuserdata(L, r->funcs_ud);
            lua_pushcclosure(L, f->func, 1);
            lua_setfield(L, -2, f->name);
        }
        n++;
    }
    luaL_checkstack(L, (int)r->ev->nargs, "too many arguments");
    for (size_t i = 0; i < r->ev->nargs; i++)
        lua_pushstring(L, r->ev->args[i]);
    return n + (int)r->ev->nargs;
}

/* Load what runs; its function on top when RUN_OK and !*done. *done: the run
 * has nothing more to do (no handler, or only loading was asked). */
static enum run_result load(struct run *x, bool *done)
{
    const struct run_req *r = x->r;
    struct sandbox *sb = x->sb;
    char err[1024];
    int status = LUA_OK;
    *done = false;
    if (r->chunk) {
        if (sandbox_load_buffer(sb, r->chunk, r->chunk_len ? r->chunk_len : strlen(r->chunk),
                                r->chunk_name ? r->chunk_name : "=serfhand", err, sizeof err) < 0)
            return fail(x, RUN_FAILED, "cannot load %s: %s", x->what, err);
        return RUN_OK;
    }
    enum sandbox_load lr = sandbox_load_handler(sb, x->rel, &status, err, sizeof err);
    /* A refused module decides the outcome first, whatever the Lua code did
     * with the error (asked again at the end: finalizers run later). */
    if (sandbox_refusal(sb))
        return RUN_REFUSED;
    switch (lr) {
    case SANDBOX_LOAD_OK:
        if (r->mode == RUN_LOAD) {
            lua_pop(sandbox_state(sb), 1);
            *done = true;
        }
        return RUN_OK;
    case SANDBOX_LOAD_ABSENT:
        *done = true;
        if (r->mode == RUN_TOOL)
            return fail(x, RUN_FAILED, "%s: no such file in bundle %s", x->rel, x->b.dir);
        if (r->mode == RUN_SERF) /* a typo in a query name ends here: name the file */
            log_msg(LOG_LVL_INFO, "no handler %s in bundle %s", x->rel, x->b.dir);
        return RUN_OK; /* check: the file check reports a listed file that is missing */
    case SANDBOX_LOAD_REFUSED: return fail(x, RUN_REFUSED, "refused: %s", err);
    case SANDBOX_LOAD_RAISED: return lua_failed(x, status, x->rel);
    case SANDBOX_LOAD_NOT_HANDLER:
        if (r->mode == RUN_LOAD) /* check's problem line */
            return fail(x, RUN_FAILED, "%s: returns a %s, not a function (or a table with handle)",
                        x->rel, err);
        return fail(x, RUN_FAILED, "%s must return a function (or a table with handle), not a %s",
                    x->rel, err);
    case SANDBOX_LOAD_ERROR: return fail(x, RUN_FAILED, "cannot load %s: %s", x->rel, err);
    }
    return fail(x, RUN_SYSTEM, "%s: unknown load result", x->rel);
}

/* Everything up to the teardown. */
static enum run_result run_body(struct run *x)
{
    const struct run_req *r = x->r;
    const char *dir = r->bundle_dir ? r->bundle_dir : config_str(r->cfg, "bundle");
    char err[1024];

    if (bundle_open(&x->b, dir, r->cfg, r->verify, err, sizeof err) < 0)
        return r->verify ? fail(x, RUN_REFUSED, "refused: %s", err)
                         : fail(x, RUN_SYSTEM, "%s", err); /* no such directory */
    x->have_bundle = true;
    if (r->chunk) {
        x->what = r->chunk_name ? r->chunk_name : "=serfhand";
        if (*x->what == '=' || *x->what == '@') /* Lua's chunk name marks */
            x->what++;
    } else {
        x->rel = r->rel ? xstrdup(r->rel) : event_handler_path(r->ev);
        if (!x->rel)
            return fail(x, RUN_BAD_EVENT, "invalid event name");
        x->what = x->rel;
    }
    const char *setting = r->deadline_ms || r->deadline_name
                              ? NULL /* deadline_ms; 0 with a name: none */
                              : deadline_for(r->ev ? r->ev->type : EV_QUERY);
    struct sandbox_limits lim = run_limits(r->cfg, setting, r->deadline_ms);
    if (r->deadline_name)
        lim.deadline_name = r->deadline_name;
    lim.stub_modules = r->stub_modules;
    x->sb = sandbox_new(&lim, &x->b, r->cfg, err, sizeof err);
    if (!x->sb)
        return fail(x, RUN_SYSTEM, "%s", err);
    sandbox_set_handler(x->sb, r->mode == RUN_SERF ? r->ev->type != EV_TICK : r->in_handler);
    sandbox_start_clock(x->sb);

    bool done;
    enum run_result rc = load(x, &done);
    if (rc != RUN_OK || done)
        return rc;
    lua_State *L = sandbox_state(x->sb);
    int base = lua_gettop(L); /* the function */
    int status = sandbox_cpcall(x->sb, push_call_args, x, LUA_MULTRET);
    if (status != LUA_OK)
        return lua_failed(x, status, "building ev");
    status = sandbox_pcall(x->sb, lua_gettop(L) - base, r->mode == RUN_SERF ? 1 : 2);
    if (sandbox_refusal(x->sb))
        return RUN_REFUSED;
    if (status != LUA_OK)
        return lua_failed(x, status, x->what);
    rc = r->mode == RUN_SERF ? serf_reply(x) : tool_reply(x);
    if (sandbox_refusal(x->sb))
        return RUN_REFUSED;
    if (rc == RUN_OK && sandbox_timed_out(x->sb)) /* the deadline passed, but nothing raised */
        return fail(x, RUN_TIMEOUT, "%s stopped: deadline exceeded (%s)", x->what,
                    sandbox_deadline_name(x->sb));
    sandbox_stop_clock(x->sb);
    return rc;
}

/* The end of a run: a refused module makes it a refusal (reported once, no
 * reply); otherwise a successful run's reply is delivered now. */
static enum run_result deliver(struct run *x, enum run_result rc, struct buf *out)
{
    const char *why = x->sb ? sandbox_refusal(x->sb) : NULL;
    if (why)
        return fail(x, RUN_REFUSED, "refused: %s", why);
    if (rc != RUN_OK || !x->reply.len)
        return rc;
    if (out) {
        buf_add(out, x->reply.data, x->reply.len);
    } else if (util_write_all(x->r->out_fd, x->reply.data, x->reply.len) < 0) {
        return fail(x, RUN_SYSTEM, "cannot write the response: %s", strerror(errno));
    }
    return rc;
}

static void log_bundle_exit(const struct run *x, enum run_result rc)
{
    static const char *const names[] = {
        [RUN_OK] = "ok",
        [RUN_FAILED] = "failed",
        [RUN_SYSTEM] = "system error",
        [RUN_REFUSED] = "refused",
        [RUN_TIMEOUT] = "deadline",
        [RUN_MEMORY] = "memory cap",
        [RUN_RESPONSE] = "response refused",
        [RUN_BAD_EVENT] = "bad event",
    };
    if (x->r->mode == RUN_SERF && x->have_bundle && x->b.version > 0)
        log_msg(LOG_LVL_DEBUG, "bundle %s version %lld: %s", x->b.name, x->b.version, names[rc]);
}

enum run_result run_exec(const struct run_req *r, struct buf *out, char *err, size_t errlen)
{
    struct run x = {.r = r, .err = err, .errlen = errlen};
    if (errlen)
        err[0] = '\0';
    enum run_result rc = run_body(&x);
    if (r->exit_now && proc_spawned_waiting()) {
        /* A child that proc.spawn started waits (delay_ms: the restart
         * executor, for minutes) and shares every page of this process
         * copy-on-write until it execs. The teardown would write to most of
         * them (lua_close frees every object, and each free writes the
         * allocator's bookkeeping) and so copy each first. Measured with the
         * relay handler on the test host: 64 of its 368 page faults, and
         * 1.5 to 2.7 ms of its 15 to 20 ms of CPU. The response and the log
         * are written, the store has committed (to SQLite an exit is a
         * crash, which a commit survives) and the kernel takes the memory
         * back. The identity key's pages are locked, kept out of core dumps,
         * and read as zeros in the child. No finalizer runs, so none can
         * require a module. */
        rc = deliver(&x, rc, out);
        log_bundle_exit(&x, rc);
        r->exit_now(rc);
    }
    /* Finalizers run here and may require a module: the reply waits. They
     * are the handler's code, under its deadline: past it, no reply. */
    bool was_late = x.sb && sandbox_timed_out(x.sb);
    sandbox_close(x.sb);
    if (x.sb && !was_late && sandbox_timed_out(x.sb) && rc != RUN_REFUSED && !sandbox_refusal(x.sb))
        rc = fail(&x, RUN_TIMEOUT, "%s stopped: deadline exceeded (%s) in its finalizers", x.what,
                  sandbox_deadline_name(x.sb));
    rc = deliver(&x, rc, out);
    log_bundle_exit(&x, rc);
    sandbox_free(x.sb);
    buf_free(&x.reply);
    free(x.rel);
    if (x.have_bundle)
        bundle_close(&x.b);
    return rc;
}

/* --- Serf's side: `handle` in a child, as Serf runs it (run, test) ---- */

extern char **environ;

static void clear_serf_env(void)
{
    for (;;) {
        char **e = environ;
        while (*e && strncmp(*e, "SERF_", 5) != 0)
            e++;
        if (!*e)
            return;
        char *eq = strchr(*e, '=');
        char name[256];
        size_t n = eq ? (size_t)(eq - *e) : strlen(*e);
        if (n >= sizeof name)
            n = sizeof name - 1;
        memcpy(name, *e, n);
        name[n] = '\0';
        unsetenv(name);
    }
}

/* Set SERF_TAG_<NAME> the way Serf names it: upper case, [^A-Z0-9_] -> _. */
static void set_tag_env(const char *kv)
{
    const char *eq = strchr(kv, '=');
    struct buf name = {0};
    buf_addstr(&name, "SERF_TAG_");
    for (const char *p = kv; p < eq; p++) {
        char c = *p;
        if (c >= 'a' && c <= 'z')
            c = (char)(c - 'a' + 'A');
        if (!((c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_'))
            c = '_';
        buf_add(&name, &c, 1);
    }
    setenv(name.data, eq + 1, 1);
    buf_free(&name);
}

/* In the child: Serf's environment, the pipes, then exec `handle`. */
static void exec_handle_child(const struct run_serf *s, int in_fd, int out_fd, int log_fd)
{
    const char *type = event_type_name(s->type);
    signal(SIGPIPE, SIG_DFL); /* an ignored signal would stay ignored across exec */
    clear_serf_env();
    setenv("SERF_EVENT", type, 1);
    setenv("SERF_SELF_NAME", s->self ? s->self : "dev", 1);
    setenv("SERF_SELF_ROLE", "", 1);
    for (size_t i = 0; i < s->ntags; i++) {
        set_tag_env(s->tags[i]);
        if (strncmp(s->tags[i], "role=", 5) == 0)
            setenv("SERF_SELF_ROLE", s->tags[i] + 5, 1);
    }
    if (s->type == EV_USER || s->type == EV_QUERY) {
        bool user = s->type == EV_USER;
        setenv(user ? "SERF_USER_EVENT" : "SERF_QUERY_NAME", s->name ? s->name : "", 1);
        setenv(user ? "SERF_USER_LTIME" : "SERF_QUERY_LTIME", s->ltime ? s->ltime : "1", 1);
    }
    /* Logs apart from what Serf would receive. */
    int lfd = dup(log_fd); /* without FD_CLOEXEC */
    char fdstr[16];
    snprintf(fdstr, sizeof fdstr, "%d", lfd);
    setenv("SERFHAND_LOG_FD", fdstr, 1);
    dup2(in_fd, 0);
    dup2(out_fd, 1);
    dup2(out_fd, 2);
    char self[4096];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n <= 0)
        _exit(SH_EXIT_USAGE);
    self[n] = '\0';
    char *args[8] = {self, (char *)"handle"};
    int na = 2;
    if (s->bundle_dir) {
        args[na++] = (char *)"--bundle";
        args[na++] = (char *)s->bundle_dir;
    }
    if (s->state_dir) {
        args[na++] = (char *)"--state";
        args[na++] = (char *)s->state_dir;
    }
    if (s->unsigned_ok)
        args[na++] = (char *)"--unsigned";
    args[na] = NULL;
    execv(self, args);
    _exit(SH_EXIT_USAGE);
}

int run_serf(const struct run_serf *s, struct run_serf_out *res, char *err, size_t errlen)
{
    struct buf input = {0};
    int in_pipe[2] = {-1, -1}, out_pipe[2] = {-1, -1}, log_pipe[2] = {-1, -1}, rc = -1;
    res->code = -1;
    buf_add(&input, s->payload ? s->payload : "", s->payload_len);
    /* What Serf does to a user event or query payload. */
    if ((s->type == EV_USER || s->type == EV_QUERY) && input.len &&
        input.data[input.len - 1] != '\n')
        buf_add(&input, "\n", 1);
    if (pipe2(in_pipe, O_CLOEXEC) < 0 || pipe2(out_pipe, O_CLOEXEC) < 0 ||
        (s->log_fd < 0 && pipe2(log_pipe, O_CLOEXEC) < 0)) {
        util_errf(err, errlen, "pipe: %s", strerror(errno));
        goto out;
    }
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        util_errf(err, errlen, "fork: %s", strerror(errno));
        goto out;
    }
    if (pid == 0)
        exec_handle_child(s, in_pipe[0], out_pipe[1], s->log_fd >= 0 ? s->log_fd : log_pipe[1]);
    close(in_pipe[0]);
    close(out_pipe[1]);
    close(log_pipe[1]);
    in_pipe[0] = out_pipe[1] = log_pipe[1] = -1;
    signal(SIGPIPE, SIG_IGN);
    /* stdin, stdout+stderr and the log at once: a full pipe never blocks. */
    size_t sent = 0, cap = 1024 * 1024;
    struct pollfd pf[3] = {
        {in_pipe[1], POLLOUT, 0}, {out_pipe[0], POLLIN, 0}, {log_pipe[0], POLLIN, 0}};
    struct buf *dst[3] = {NULL, &res->out, &res->log};
    if (!input.len) {
        close(in_pipe[1]);
        in_pipe[1] = pf[0].fd = -1;
    }
    while (pf[0].fd >= 0 || pf[1].fd >= 0 || pf[2].fd >= 0) {
        if (poll(pf, 3, -1) < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        if (pf[0].fd >= 0 && pf[0].revents) {
            ssize_t w = (pf[0].revents & POLLOUT)
                            ? write(in_pipe[1], input.data + sent, input.len - sent)
                            : -1;
            if (w > 0)
                sent += (size_t)w;
            if (w < 0 && errno == EINTR)
                continue;
            if (w <= 0 || sent == input.len) { /* done, or the child stopped reading */
                close(in_pipe[1]);
                in_pipe[1] = pf[0].fd = -1;
            }
        }
        for (int i = 1; i < 3; i++) {
            if (pf[i].fd < 0 || !pf[i].revents)
                continue;
            char chunk[4096];
            ssize_t r = read(pf[i].fd, chunk, sizeof chunk);
            if (r < 0 && errno == EINTR)
                continue;
            if (r <= 0) {
                close(pf[i].fd);
                pf[i].fd = -1;
                if (i == 1)
                    out_pipe[0] = -1;
                else
                    log_pipe[0] = -1;
                continue;
            }
            if (dst[i]->len + (size_t)r <= cap) /* Serf keeps far less */
                buf_add(dst[i], chunk, (size_t)r);
        }
    }
    int status;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    res->code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    rc = 0;
out:
    for (int i = 0; i < 2; i++) {
        if (in_pipe[i] >= 0)
            close(in_pipe[i]);
        if (out_pipe[i] >= 0)
            close(out_pipe[i]);
        if (log_pipe[i] >= 0)
            close(log_pipe[i]);
    }
    buf_free(&input);
    return rc;
}

/* --- the scratch state of run and test --------------------------------- */

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)ftw;
    if (flag == FTW_DP)
        rmdir(path);
    else
        unlink(path);
    return 0;
}

char *run_scratch_state(const char *prefix, char *err, size_t errlen)
{
    const char *tmp = getenv("TMPDIR");
    struct buf dir = {0};
    buf_printf(&dir, "%s/%s.XXXXXX", tmp && *tmp ? tmp : "/tmp", prefix);
    if (!mkdtemp(dir.data)) { /* mode 0700 */
        util_errf(err, errlen, "cannot make a scratch state directory %s: %s", dir.data,
                  strerror(errno));
        buf_free(&dir);
        return NULL;
    }
    return dir.data;
}

void run_scratch_remove(const char *dir)
{
    if (dir) /* FTW_PHYS: a symlink a handler left is removed, never followed */
        nftw(dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}
