/*
 * cmd_handle.c: `serfhand handle` (also: no command), what Serf runs for each
 * event. It reads the SERF_* environment and stdin, finds the handler in the
 * active bundle, runs it in the sandbox under its deadline and, for a query,
 * writes the handler's return value as the response. Nothing else ever
 * reaches stdout or stderr while a query is handled.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include <lauxlib.h>

#include "serfhand.h"

/* The CPU time this process has used, user and system, in ms. */
static long long cpu_ms(void)
{
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) != 0)
        return -1;
    return (long long)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000 +
           (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1000;
}

extern char **environ;

static int write_all(int fd, const char *p, size_t n)
{
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Check the handler's return value (top of the stack) and put the query
 * response into out; it is written once the run is over. Returns an exit
 * code. */
static int respond(lua_State *L, const struct config *cfg, struct buf *out)
{
    char err[256];
    size_t cap = (size_t)config_int(cfg, "limits.response_bytes");
    switch (lua_type(L, -1)) {
    case LUA_TNIL: log_msg(LOG_LVL_DEBUG, "no response"); return SH_EXIT_OK;
    case LUA_TSTRING: {
        size_t n;
        const char *s = lua_tolstring(L, -1, &n);
        buf_add(out, s, n);
        break;
    }
    case LUA_TTABLE:
        if (ljson_encode(L, -1, out, err, sizeof err) < 0) {
            log_msg(LOG_LVL_ERROR, "response refused: cannot encode the returned table: %s", err);
            return SH_EXIT_RESPONSE;
        }
        break;
    default:
        log_msg(LOG_LVL_ERROR,
                "response refused: a query handler returns a string, a table or nil, not a %s",
                luaL_typename(L, -1));
        return SH_EXIT_RESPONSE;
    }
    if (out->len > cap) {
        log_msg(LOG_LVL_ERROR, "response refused: %zu bytes is over limits.response_bytes = %zu",
                out->len, cap);
        return SH_EXIT_RESPONSE;
    }
    return SH_EXIT_OK;
}

static int deadline_for(const struct config *cfg, enum event_type t)
{
    if (t == EV_QUERY)
        return (int)config_int(cfg, "limits.query_ms");
    if (t == EV_TICK)
        return (int)config_int(cfg, "limits.tick_ms");
    return (int)config_int(cfg, "limits.event_ms");
}

/* Turn a failed pcall into a log line and an exit code. */
static int failed(struct sandbox *sb, int status, const char *what)
{
    lua_State *L = sandbox_state(sb);
    const char *msg = lua_tostring(L, -1);
    if (sandbox_timed_out(sb)) {
        log_msg(LOG_LVL_ERROR, "%s stopped: %s", what, msg ? msg : "deadline exceeded");
        return SH_EXIT_TIMEOUT;
    }
    if (status == LUA_ERRMEM || sandbox_out_of_memory(sb)) {
        log_msg(LOG_LVL_ERROR, "%s stopped: memory cap reached (%s)", what, msg ? msg : "");
        return SH_EXIT_MEMORY;
    }
    log_msg(LOG_LVL_ERROR, "%s failed: %s", what, msg ? msg : "(no message)");
    return SH_EXIT_FAIL;
}

/* The end of a run: a refused module makes it a refusal (logged once, no
 * answer); otherwise a successful query's response is written now. */
static int finish(struct sandbox *sb, int rc, const struct buf *resp, int out_fd)
{
    const char *why = sandbox_refusal(sb);
    if (why) {
        log_msg(LOG_LVL_ERROR, "refused: %s", why);
        return SH_EXIT_TRUST;
    }
    if (rc == SH_EXIT_OK && resp->len && write_all(out_fd, resp->data, resp->len) < 0) {
        log_msg(LOG_LVL_ERROR, "cannot write the response: %s", strerror(errno));
        return SH_EXIT_USAGE;
    }
    return rc;
}

static void log_bundle_exit(const struct bundle *b, int rc)
{
    if (b->version && strcmp(b->version, "dev") != 0)
        log_msg(LOG_LVL_DEBUG, "bundle %s version %s, exit %d", b->name, b->version, rc);
}

/* When the process started by exec_handle began (util_mono_ms). */
static int64_t started_ms;

/* The run's last log line. */
static void log_exit(int rc, const char *how)
{
    log_msg(LOG_LVL_DEBUG, "exit %d after %lld ms (%lld ms of CPU)%s", rc,
            (long long)(util_mono_ms() - started_ms), (long long)cpu_ms(), how);
}

int handle_event(const struct config *cfg, const char *bundle_dir, bool verify, struct event *ev,
                 int out_fd, bool exit_after)
{
    struct bundle b;
    struct sandbox *sb = NULL;
    struct buf resp = {0};
    char err[1024];
    char *rel = NULL;
    int rc;

    if (bundle_open(&b, bundle_dir, cfg, verify, err, sizeof err) < 0) {
        log_msg(LOG_LVL_ERROR, "refused: %s", err);
        return SH_EXIT_TRUST;
    }
    rel = event_handler_path(ev);
    if (!rel) {
        log_msg(LOG_LVL_ERROR, "invalid event name");
        rc = SH_EXIT_EVENT;
        goto out;
    }
    struct sandbox_limits lim = {
        .memory = (size_t)config_int(cfg, "limits.memory_mb") * 1024 * 1024,
        .deadline_ms = deadline_for(cfg, ev->type),
        .grace_ms = (int)config_int(cfg, "limits.grace_ms"),
    };
    sb = sandbox_new(&lim, &b, cfg, err, sizeof err);
    if (!sb) {
        log_msg(LOG_LVL_ERROR, "%s", err);
        rc = SH_EXIT_USAGE;
        goto out;
    }
    sandbox_set_query(sb, ev->type == EV_QUERY);
    sandbox_set_handler(sb, ev->type != EV_TICK);
    sandbox_start_clock(sb);
    lua_State *L = sandbox_state(sb);

    /* A refused module decides the outcome first, whatever the Lua code did
     * with the error (checked again at the end: finalizers run later). */
    int status = LUA_OK;
    rc = sandbox_load_handler(sb, rel, &status, err, sizeof err);
    if (sandbox_refusal(sb)) {
        rc = SH_EXIT_TRUST;
        goto out;
    }
    if (rc == 1) {
        log_msg(LOG_LVL_DEBUG, "no handler %s in bundle %s", rel, b.dir);
        rc = SH_EXIT_OK;
        goto out;
    }
    if (rc == -2) {
        log_msg(LOG_LVL_ERROR, "refused: %s", err);
        rc = SH_EXIT_TRUST;
        goto out;
    }
    if (rc == -3) {
        rc = failed(sb, status, rel);
        goto out;
    }
    if (rc == -4) {
        log_msg(LOG_LVL_ERROR, "%s must return a function (or a table with handle), not a %s", rel,
                err);
        rc = SH_EXIT_FAIL;
        goto out;
    }
    if (rc < 0) {
        log_msg(LOG_LVL_ERROR, "cannot load %s: %s", rel, err);
        rc = SH_EXIT_FAIL;
        goto out;
    }
    event_push(L, ev);
    lua_createtable(L, 0, 2); /* ev.bundle: what is running */
    lua_pushstring(L, b.name);
    lua_setfield(L, -2, "name");
    lua_pushstring(L, b.version);
    lua_setfield(L, -2, "version");
    lua_setfield(L, -2, "bundle");
    status = sandbox_pcall(sb, 1, 1);
    if (sandbox_refusal(sb)) {
        rc = SH_EXIT_TRUST;
        goto out;
    }
    if (status != LUA_OK) {
        rc = failed(sb, status, rel);
        goto out;
    }
    /* The value is the handler's: its metamethods run under its limits. */
    if (ev->type == EV_QUERY) {
        rc = respond(L, cfg, &resp);
    } else {
        struct buf s = {0};
        if (lua_isnil(L, -1))
            ;
        else if (sandbox_tostring(sb, -1, &s) == 0)
            log_msg(LOG_LVL_DEBUG, "returned %s", s.data);
        else
            log_msg(LOG_LVL_DEBUG, "returned a value whose __tostring raised: %s",
                    lua_tostring(L, -1));
        buf_free(&s);
        rc = SH_EXIT_OK;
    }
    if (sandbox_refusal(sb)) {
        rc = SH_EXIT_TRUST;
        goto out;
    }
    if (sandbox_timed_out(sb)) { /* the deadline passed, but nothing raised */
        rc = SH_EXIT_TIMEOUT;
        log_msg(LOG_LVL_ERROR, "%s stopped: deadline exceeded", rel);
        goto out;
    }
    sandbox_stop_clock(sb);
out:
    if (exit_after && proc_spawned_waiting()) {
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
        rc = finish(sb, rc, &resp, out_fd);
        log_bundle_exit(&b, rc);
        log_exit(rc, ", without teardown: a spawned child shares this memory");
        log_close();
        _exit(rc);
    }
    /* Finalizers run here and may require a module: the answer waits. */
    sandbox_close(sb);
    rc = finish(sb, rc, &resp, out_fd);
    log_bundle_exit(&b, rc);
    sandbox_free(sb);
    buf_free(&resp);
    free(rel);
    bundle_close(&b);
    return rc;
}

/* Events the host answers itself, so they work with a broken bundle. */
static int handle_builtin(const struct config *cfg, const char *bundle_dir, const struct event *ev,
                          int out_fd)
{
    if (ev->type == EV_QUERY && strcmp(ev->name, "serfhand-check") == 0) {
        struct buf json = {0};
        check_report(cfg, bundle_dir, &json);
        int rc = write_all(out_fd, json.data, json.len) < 0 ? SH_EXIT_USAGE : SH_EXIT_OK;
        buf_free(&json);
        return rc;
    }
    if (ev->type == EV_USER && strcmp(ev->name, "serfhand-update") == 0) {
        return update_announcement(cfg, ev->payload.data, ev->payload.len);
    }
    log_msg(LOG_LVL_ERROR, "refused: names starting with serfhand- are reserved for the host");
    return SH_EXIT_EVENT;
}

static bool is_reserved(const struct event *ev)
{
    return ev->name && strncmp(ev->name, "serfhand-", 9) == 0;
}

static int exec_handle(int argc, char **argv, const struct config *unused)
{
    (void)unused;
    started_ms = util_mono_ms();
    const char *type = getenv("SERF_EVENT");
    bool query = type && strcmp(type, "query") == 0;
    const char *bundle_dir = NULL;
    bool verify = true;
    char err[512];

    /* Keep the real stdout for the response only; whatever else writes to
     * fd 1 or 2 (a library, a crash message) must not become the answer. */
    int out_fd = fcntl(1, F_DUPFD_CLOEXEC, 3);
    int devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
    if (devnull >= 0) {
        dup2(devnull, 1);
        if (query)
            dup2(devnull, 2);
        close(devnull);
    }
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--bundle") == 0 && i + 1 < argc) {
            bundle_dir = argv[++i];
        } else if (strcmp(argv[i], "--unsigned") == 0) {
            verify = false;
        } else {
            fprintf(stderr, "serfhand handle: unknown argument '%s'\n", argv[i]);
            return SH_EXIT_USAGE;
        }
    }

    struct config cfg;
    if (config_load(&cfg, NULL, err, sizeof err) < 0) {
        log_open(&cfg, true); /* the defaults: syslog */
        log_msg(LOG_LVL_ERROR, "config: %s", err);
        if (!query)
            fprintf(stderr, "serfhand: config: %s\n", err);
        config_free(&cfg);
        return SH_EXIT_USAGE;
    }
    log_open(&cfg, query);

    struct buf in = {0};
    struct event ev;
    int rc;
    if (util_read_fd(0, (size_t)config_int(&cfg, "limits.stdin_bytes"), &in, err, sizeof err) < 0) {
        log_msg(LOG_LVL_ERROR, "stdin: %s", err);
        rc = SH_EXIT_EVENT;
        goto out_nofree;
    }
    if (event_parse(&ev, environ, in.data, in.len, err, sizeof err) < 0) {
        log_msg(LOG_LVL_ERROR, "refused event: %s", err);
        rc = SH_EXIT_EVENT;
        event_free(&ev);
        goto out_nofree;
    }
    {
        char ctx[128];
        snprintf(ctx, sizeof ctx, "%s%s%s", ev.type_name, ev.name ? ":" : "",
                 ev.name ? ev.name : "");
        log_set_context(ctx);
    }
    if (!bundle_dir)
        bundle_dir = config_str(&cfg, "bundle");
    if (is_reserved(&ev))
        rc = handle_builtin(&cfg, bundle_dir, &ev, out_fd);
    else
        rc = handle_event(&cfg, bundle_dir, verify, &ev, out_fd, true);
    event_free(&ev);
out_nofree:
    log_exit(rc, "");
    buf_free(&in);
    log_close();
    config_free(&cfg);
    if (out_fd >= 0)
        close(out_fd);
    return rc;
}

const struct cmd_entry cmd_handle_entry = {
    .name = "handle",
    .usage = "[--bundle DIR] [--unsigned]\n\n"
             "--unsigned runs a bundle without checking signatures: for `serfhand run`\n"
             "and tests only, never in an agent's -event-handler line.",
    .summary = "handle one Serf event (what `serf agent -event-handler` runs)",
    .exec = exec_handle,
    .needs_config = false,
};
