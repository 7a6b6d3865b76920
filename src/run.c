/*
 * run.c: the runner. Every run of bundle code goes through run_exec: open
 * the bundle (verified), a sandbox with the limits, load the handler (or a
 * trusted chunk), call it, and turn what happened into one result. Used by
 * handle and tick (a Serf event) and by propose and action (tools).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <lauxlib.h>

#include "serfhand.h"

/* Check the handler's return value (top of the stack) and put the query
 * response into out; it is written once the run is over. */
static enum run_result respond(lua_State *L, const struct config *cfg, struct buf *out)
{
    char err[256];
    size_t cap = (size_t)config_int(cfg, "limits.response_bytes");
    switch (lua_type(L, -1)) {
    case LUA_TNIL: log_msg(LOG_LVL_DEBUG, "no response"); return RUN_OK;
    case LUA_TSTRING: {
        size_t n;
        const char *s = lua_tolstring(L, -1, &n);
        if (n > cap) { /* refused before the host copies it out of the cap */
            log_msg(LOG_LVL_ERROR,
                    "response refused: %zu bytes is over limits.response_bytes = %zu", n, cap);
            return RUN_RESPONSE;
        }
        buf_add(out, s, n);
        break;
    }
    case LUA_TTABLE: {
        int jr = ljson_encode_max(L, -1, cap, out, err, sizeof err);
        if (jr == LJSON_TOO_LONG) { /* refused before the host copies it */
            log_msg(LOG_LVL_ERROR, "response refused: %s is over limits.response_bytes = %zu", err,
                    cap);
            return RUN_RESPONSE;
        }
        if (jr < 0) {
            if (jr == LJSON_NO_MEMORY) {
                log_msg(LOG_LVL_ERROR,
                        "response refused: memory cap reached (limits.memory_mb = %lld): %s",
                        config_int(cfg, "limits.memory_mb"), err);
                return RUN_MEMORY;
            }
            log_msg(LOG_LVL_ERROR, "response refused: cannot encode the returned table: %s", err);
            return RUN_RESPONSE;
        }
        break;
    }
    default:
        log_msg(LOG_LVL_ERROR,
                "response refused: a query handler returns a string, a table or nil, not a %s",
                luaL_typename(L, -1));
        return RUN_RESPONSE;
    }
    if (out->len > cap) {
        log_msg(LOG_LVL_ERROR, "response refused: %zu bytes is over limits.response_bytes = %zu",
                out->len, cap);
        buf_free(out); /* not held through the teardown */
        return RUN_RESPONSE;
    }
    return RUN_OK;
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
    if (t == EV_TICK)
        return "limits.tick_ms";
    return "limits.event_ms";
}

struct push_args {
    const struct event *ev;
    const struct bundle *b;
};

/* Protected (sandbox_cpcall): push ev, with ev.bundle = what is running. At
 * the memory cap this raises like any allocation. */
static int push_event(lua_State *L)
{
    const struct push_args *a = lua_touserdata(L, 1);
    event_push(L, a->ev);
    lua_createtable(L, 0, 2);
    lua_pushstring(L, a->b->name);
    lua_setfield(L, -2, "name");
    lua_pushstring(L, a->b->version);
    lua_setfield(L, -2, "version");
    lua_setfield(L, -2, "bundle");
    return 1;
}

/* Turn a failed pcall into a log line and a result. */
static enum run_result failed(struct sandbox *sb, int status, const char *what)
{
    lua_State *L = sandbox_state(sb);
    const char *msg = lua_tostring(L, -1);
    if (sandbox_timed_out(sb)) {
        log_msg(LOG_LVL_ERROR, "%s stopped: deadline exceeded (%s): %s", what,
                sandbox_deadline_name(sb), msg ? msg : "");
        return RUN_TIMEOUT;
    }
    if (status == LUA_ERRMEM || sandbox_out_of_memory(sb)) {
        log_msg(LOG_LVL_ERROR, "%s stopped: memory cap reached (limits.memory_mb): %s", what,
                msg ? msg : "");
        return RUN_MEMORY;
    }
    log_msg(LOG_LVL_ERROR, "%s failed: %s", what, msg ? msg : "(no message)");
    return RUN_FAILED;
}

/* The end of a run: a refused module makes it a refusal (logged once, no
 * answer); otherwise a successful query's response is written now. */
static enum run_result finish(struct sandbox *sb, enum run_result rc, const struct buf *resp,
                              int out_fd)
{
    const char *why = sandbox_refusal(sb);
    if (why) {
        log_msg(LOG_LVL_ERROR, "refused: %s", why);
        return RUN_REFUSED;
    }
    if (rc == RUN_OK && resp->len && util_write_all(out_fd, resp->data, resp->len) < 0) {
        log_msg(LOG_LVL_ERROR, "cannot write the response: %s", strerror(errno));
        return RUN_SYSTEM;
    }
    return rc;
}

static void log_bundle_exit(const struct bundle *b, enum run_result rc)
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
    if (b->version && strcmp(b->version, "dev") != 0)
        log_msg(LOG_LVL_DEBUG, "bundle %s version %s: %s", b->name, b->version, names[rc]);
}

/* A Serf event or tick: failures are logged, a query's response goes to
 * r->out_fd. */
static enum run_result run_event(const struct run_req *r)
{
    const struct config *cfg = r->cfg;
    const struct event *ev = r->ev;
    const char *bundle_dir = r->bundle_dir ? r->bundle_dir : config_str(cfg, "bundle");
    int out_fd = r->out_fd;
    struct bundle b;
    struct sandbox *sb = NULL;
    struct buf resp = {0};
    char err[1024];
    char *rel = NULL;
    enum run_result rc;

    if (bundle_open(&b, bundle_dir, cfg, r->verify, err, sizeof err) < 0) {
        log_msg(LOG_LVL_ERROR, "refused: %s", err);
        return RUN_REFUSED;
    }
    rel = event_handler_path(ev);
    if (!rel) {
        log_msg(LOG_LVL_ERROR, "invalid event name");
        rc = RUN_BAD_EVENT;
        goto out;
    }
    struct sandbox_limits lim = run_limits(cfg, deadline_for(ev->type), 0);
    sb = sandbox_new(&lim, &b, cfg, err, sizeof err);
    if (!sb) {
        log_msg(LOG_LVL_ERROR, "%s", err);
        rc = RUN_SYSTEM;
        goto out;
    }
    sandbox_set_handler(sb, ev->type != EV_TICK);
    sandbox_start_clock(sb);
    lua_State *L = sandbox_state(sb);

    /* A refused module decides the outcome first, whatever the Lua code did
     * with the error (checked again at the end: finalizers run later). */
    int status = LUA_OK;
    enum sandbox_load lr = sandbox_load_handler(sb, rel, &status, err, sizeof err);
    if (sandbox_refusal(sb)) {
        rc = RUN_REFUSED;
        goto out;
    }
    switch (lr) {
    case SANDBOX_LOAD_OK: break;
    case SANDBOX_LOAD_ABSENT:
        log_msg(LOG_LVL_DEBUG, "no handler %s in bundle %s", rel, b.dir);
        rc = RUN_OK;
        goto out;
    case SANDBOX_LOAD_REFUSED:
        log_msg(LOG_LVL_ERROR, "refused: %s", err);
        rc = RUN_REFUSED;
        goto out;
    case SANDBOX_LOAD_RAISED: rc = failed(sb, status, rel); goto out;
    case SANDBOX_LOAD_NOT_HANDLER:
        log_msg(LOG_LVL_ERROR, "%s must return a function (or a table with handle), not a %s", rel,
                err);
        rc = RUN_FAILED;
        goto out;
    case SANDBOX_LOAD_ERROR:
        log_msg(LOG_LVL_ERROR, "cannot load %s: %s", rel, err);
        rc = RUN_FAILED;
        goto out;
    }
    struct push_args pa = {ev, &b};
    status = sandbox_cpcall(sb, push_event, &pa, 1);
    if (status != LUA_OK) {
        rc = failed(sb, status, "building ev");
        goto out;
    }
    status = sandbox_pcall(sb, 1, 1);
    if (sandbox_refusal(sb)) {
        rc = RUN_REFUSED;
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
        rc = RUN_OK;
    }
    if (sandbox_refusal(sb)) {
        rc = RUN_REFUSED;
        goto out;
    }
    if (sandbox_timed_out(sb)) { /* the deadline passed, but nothing raised */
        rc = RUN_TIMEOUT;
        log_msg(LOG_LVL_ERROR, "%s stopped: deadline exceeded (%s)", rel,
                sandbox_deadline_name(sb));
        goto out;
    }
    sandbox_stop_clock(sb);
out:
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
        rc = finish(sb, rc, &resp, out_fd);
        log_bundle_exit(&b, rc);
        r->exit_now(rc);
    }
    /* Finalizers run here and may require a module: the answer waits. They
     * are the handler's code, under its deadline: past it, no answer. */
    bool was_late = sb && sandbox_timed_out(sb);
    sandbox_close(sb);
    if (sb && !was_late && sandbox_timed_out(sb) && rc != RUN_REFUSED) {
        log_msg(LOG_LVL_ERROR, "%s stopped: deadline exceeded (%s) in its finalizers", rel,
                sandbox_deadline_name(sb));
        rc = RUN_TIMEOUT;
    }
    rc = finish(sb, rc, &resp, out_fd);
    log_bundle_exit(&b, rc);
    sandbox_free(sb);
    buf_free(&resp);
    free(rel);
    bundle_close(&b);
    return rc;
}

/* Push ev = {type, name, payload, args = {...}, self = {name}, bundle = {name, version}}. */
static void push_ev(lua_State *L, const struct run_req *r, const struct bundle *b)
{
    lua_createtable(L, 0, 8);
    lua_pushstring(L, r->ev_type ? r->ev_type : "cli");
    lua_setfield(L, -2, "type");
    if (r->ev_name) {
        lua_pushstring(L, r->ev_name);
        lua_setfield(L, -2, "name");
    }
    lua_pushinteger(L, 0);
    lua_setfield(L, -2, "ltime");
    lua_pushstring(L, r->nargs > 0 ? r->args[0] : "");
    lua_setfield(L, -2, "payload");
    lua_createtable(L, (int)r->nargs, 0);
    for (size_t i = 0; i < r->nargs; i++) {
        lua_pushstring(L, r->args[i]);
        lua_rawseti(L, -2, (lua_Integer)i + 1);
    }
    lua_setfield(L, -2, "args");
    lua_createtable(L, 0, 3);
    lua_pushstring(L, r->self_name ? r->self_name : "");
    lua_setfield(L, -2, "name");
    lua_pushstring(L, "");
    lua_setfield(L, -2, "role");
    lua_newtable(L);
    lua_setfield(L, -2, "tags");
    lua_setfield(L, -2, "self");
    lua_createtable(L, 0, 2);
    lua_pushstring(L, b->name ? b->name : "");
    lua_setfield(L, -2, "name");
    lua_pushstring(L, b->version ? b->version : "");
    lua_setfield(L, -2, "version");
    lua_setfield(L, -2, "bundle");
    lua_newtable(L);
    lua_setfield(L, -2, "members");
}

struct tool_args {
    const struct run_req *r;
    const struct bundle *b;
};

static int push_tool_ev(lua_State *L) /* protected: sandbox_cpcall */
{
    const struct tool_args *a = lua_touserdata(L, 1);
    push_ev(L, a->r, a->b);
    return 1;
}

/* A handler file or a trusted chunk for propose and action: failures in err. */
static enum run_result run_tool(const struct run_req *r, struct buf *out, char *err, size_t errlen)
{
    struct bundle b;
    struct sandbox *sb = NULL;
    const char *dir = r->bundle_dir ? r->bundle_dir : config_str(r->cfg, "bundle");
    enum run_result rc = RUN_FAILED;
    int status;
    bool was_late;

    if (bundle_open(&b, dir, r->cfg, r->verify, err, errlen) < 0)
        return RUN_REFUSED;
    struct sandbox_limits lim = run_limits(r->cfg, NULL, r->deadline_ms);
    sb = sandbox_new(&lim, &b, r->cfg, err, errlen);
    if (!sb) {
        rc = RUN_SYSTEM;
        goto out;
    }
    sandbox_set_handler(sb, r->in_handler);
    sandbox_start_clock(sb);
    lua_State *L = sandbox_state(sb);
    int nargs = 0;
    if (r->rel) {
        enum sandbox_load lr = sandbox_load_handler(sb, r->rel, &status, err, errlen);
        if (lr == SANDBOX_LOAD_RAISED)
            goto lua_failed;
        if (lr != SANDBOX_LOAD_OK) {
            if (lr == SANDBOX_LOAD_ABSENT)
                util_errf(err, errlen, "%s: no such file in bundle %s", r->rel, b.dir);
            else if (lr == SANDBOX_LOAD_NOT_HANDLER)
                util_errf(err, errlen, "%s must return a function (or a table with handle)",
                          r->rel);
            rc = lr == SANDBOX_LOAD_REFUSED ? RUN_REFUSED : RUN_FAILED;
            goto out;
        }
        struct tool_args ta = {r, &b};
        status = sandbox_cpcall(sb, push_tool_ev, &ta, 1);
        if (status != LUA_OK)
            goto lua_failed;
        nargs = 1;
    } else {
        if (sandbox_load_buffer(sb, r->chunk, strlen(r->chunk), "=serfhand", err, errlen) < 0)
            goto out;
        for (size_t i = 0; i < r->nargs; i++)
            lua_pushstring(L, r->args[i]);
        nargs = (int)r->nargs;
    }
    status = sandbox_pcall(sb, nargs, 2);
    if (status != LUA_OK)
        goto lua_failed;
    if (lua_isnil(L, -2)) { /* nil, err */
        util_errf(err, errlen, "%s", lua_isstring(L, -1) ? lua_tostring(L, -1) : "failed");
        goto out;
    }
    lua_pop(L, 1);
    if (lua_type(L, -1) == LUA_TSTRING) {
        size_t n;
        const char *s = lua_tolstring(L, -1, &n);
        buf_add(out, s, n);
    } else if (lua_istable(L, -1)) {
        if (ljson_encode(L, -1, out, err, errlen) < 0)
            goto out;
    } else if (!lua_isnil(L, -1) && sandbox_tostring(sb, -1, out) < 0) {
        goto lua_failed;
    }
    sandbox_stop_clock(sb);
    rc = RUN_OK;
    goto out;
lua_failed:
    rc = sandbox_timed_out(sb) ? RUN_TIMEOUT : sandbox_out_of_memory(sb) ? RUN_MEMORY : RUN_FAILED;
    util_errf(err, errlen, "%s", lua_isstring(L, -1) ? lua_tostring(L, -1) : "error");
out:
    /* A refused module ends the run as a refusal whatever the Lua code did
     * with the error; finalizers run at the close, so it is asked after. */
    was_late = sb && sandbox_timed_out(sb);
    sandbox_close(sb);
    if (sb && !was_late && sandbox_timed_out(sb) && rc != RUN_REFUSED) {
        util_errf(err, errlen, "deadline exceeded (%s) in finalizers", sandbox_deadline_name(sb));
        out->len = 0;
        rc = RUN_TIMEOUT;
    }
    if (sandbox_refusal(sb)) {
        util_errf(err, errlen, "refused: %s", sandbox_refusal(sb));
        out->len = 0;
        rc = RUN_REFUSED;
    }
    sandbox_free(sb);
    bundle_close(&b);
    return rc;
}

enum run_result run_exec(const struct run_req *r, struct buf *out, char *err, size_t errlen)
{
    return r->ev ? run_event(r) : run_tool(r, out, err, errlen);
}
