/*
 * lproc.c: require "serfhand.proc" — run a command without a shell and
 * collect its output under a timeout and a size cap, spawn a fully detached
 * child that cannot hold up the Serf agent, and kill / probe processes.
 * The binding only (proc.c does the work); used by handlers (restart
 * actions, helper tools) and by `serfhand action`.
 */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include <lauxlib.h>
#include <lua.h>

#include "serfhand.h"

#define PROC_MAX_OUTPUT_DEFAULT ((lua_Integer)1 << 20) /* per stream */
#define PROC_MAX_OUTPUT_LIMIT ((lua_Integer)64 << 20)
#define PROC_JOB_MT "serfhand.proc.job"
#define PROC_MAX_DELAY_MS ((lua_Integer)24 * 3600 * 1000) /* spawn's delay_ms */

/* The variables a child gets from serfhand's environment when the caller
 * passes no env and proc.env is empty. No credentials (SERF_RPC_AUTH): a
 * child is not host code. */
static const char *const env_default[] = {
    "PATH", "HOME", "LANG", "LC_ALL", "TZ", "SERF_RPC_ADDR", NULL,
};

/* What serfhand itself (the restart executor, PROC_SELF) gets on top: it is
 * host code and needs its config and the agent's token. */
static const char *const env_self[] = {"SERFHAND_CONFIG", "SERF_RPC_AUTH",
#if defined(__SANITIZE_ADDRESS__)
                                       /* make SANITIZE=1: where its reports go (tests/run) */
                                       "ASAN_OPTIONS", "UBSAN_OPTIONS",
#endif
                                       NULL};

/* Variables a handler may not set for a child: they make an allowed binary
 * load or run other code. */
static bool env_name_refused(const char *k, size_t klen)
{
    static const char *const names[] = {
        "BASH_ENV",      "ENV",      "IFS",      "GCONV_PATH",   "PYTHONPATH",
        "PYTHONSTARTUP", "PERL5LIB", "PERL5OPT", "NODE_OPTIONS", NULL};
    if (klen >= 3 && strncmp(k, "LD_", 3) == 0)
        return true;
    for (int i = 0; names[i]; i++)
        if (strlen(names[i]) == klen && strncmp(k, names[i], klen) == 0)
            return true;
    return false;
}

static void env_add(lua_State *L, int t, int *n, const char *k)
{
    const char *v = getenv(k);
    if (v) {
        lua_pushfstring(L, "%s=%s", k, v);
        lua_rawseti(L, t, ++*n);
    }
}

/* The output buffers of a run, owned by a userdata so that pushing the
 * results (which may raise on memory) cannot leak them; charged bytes of
 * them count against the memory cap until they are freed. */
struct job {
    struct buf out[2];
    size_t charged;
};

static void job_free(lua_State *L, struct job *j)
{
    buf_free(&j->out[0]);
    buf_free(&j->out[1]);
    sandbox_release(L, j->charged);
    j->charged = 0;
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
 * idx is the caller's env option (a table) or 0 for proc.env; self adds
 * env_self (the child is serfhand itself). */
static char **build_env(lua_State *L, int idx, const char *fn, bool self)
{
    /* serfhand itself reads its config, state and log from the environment
     * (SERFHAND_CONFIG, ...): a handler chooses none of it. */
    if (self && idx != 0)
        luaL_error(L, "bad option 'env' to '%s' (serfhand itself gets its own environment)", fn);
    lua_newtable(L); /* the strings */
    int t = lua_gettop(L);
    int n = 0;
    if (idx == 0) {
        const struct config *cfg = sandbox_config(L);
        size_t nlist = 0;
        char *const *list = cfg ? config_list(cfg, "proc.env", &nlist) : NULL;
        if (nlist > 0) {
            for (size_t i = 0; i < nlist; i++)
                if (strcmp(list[i], "SERF_RPC_AUTH") != 0) /* a credential: never */
                    env_add(L, t, &n, list[i]);
        } else {
            for (const char *const *k = env_default; *k; k++)
                env_add(L, t, &n, *k);
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
                if (env_name_refused(v, (size_t)(eq - v)))
                    luaL_error(L, "bad option 'env' to '%s' (%s may not be set)", fn, v);
                lua_pushvalue(L, -1);
            } else if (lua_type(L, -2) == LUA_TSTRING) { /* K = V */
                const char *k = lua_tolstring(L, -2, &klen);
                if (!valid_env_name(k, klen))
                    luaL_error(L, "bad option 'env' to '%s' (bad variable name)", fn);
                if (env_name_refused(k, klen))
                    luaL_error(L, "bad option 'env' to '%s' (%s may not be set)", fn, k);
                lua_pushfstring(L, "%s=%s", k, v);
            } else {
                luaL_error(L, "bad option 'env' to '%s' (keys must be names or indexes)", fn);
            }
            lua_rawseti(L, t, ++n);
            lua_pop(L, 1); /* the value; the key stays for lua_next */
        }
    }
    if (self)
        for (const char *const *k = env_self; *k; k++)
            env_add(L, t, &n, *k);
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
    job_free(L, luaL_checkudata(L, 1, PROC_JOB_MT));
    return 0;
}

/* Check argv against proc.allow (proc_allowed) and set c->path to the
 * userdata-anchored file to exec: pushes that userdata. Returns false with
 * nil, err pushed when refused; true for PROC_SELF in *self. */
static bool check_allowed(lua_State *L, struct proc_cmd *c, bool *self)
{
    const struct config *cfg = sandbox_config(L);
    size_t nallow = 0, nrestart = 0;
    char *const *allow = cfg ? config_list(cfg, "proc.allow", &nallow) : NULL;
    char *const *restart = cfg ? config_list(cfg, "factomd.restart", &nrestart) : NULL;
    char *path = lua_newuserdatauv(L, PATH_MAX, 0); /* anchored on the stack */
    char err[PATH_MAX + 128];

    enum proc_allow a =
        proc_allowed(c->argv, allow, nallow, restart, nrestart, path, PATH_MAX, err, sizeof err);
    *self = a == PROC_SELF;
    if (a == PROC_ALLOWED || a == PROC_SELF) {
        c->path = path;
        return true;
    }
    luaL_pushfail(L);
    lua_pushfstring(L, "proc: %s", err);
    return false;
}

/* A spawned child's output goes only to a file the operator named:
 * reboot.log or an entry of proc.logs, exactly. Handler code choosing the
 * path could otherwise append to any file the serfhand user can write
 * (DESIGN 4b). Pushes fail, err when refused. */
static bool log_allowed(lua_State *L, const char *log)
{
    const struct config *cfg = sandbox_config(L);
    size_t n = 0;
    char *const *logs = cfg ? config_list(cfg, "proc.logs", &n) : NULL;
    const char *reboot = cfg ? config_str(cfg, "reboot.log") : NULL;
    if (reboot && *reboot && strcmp(reboot, log) == 0)
        return true;
    for (size_t k = 0; k < n; k++)
        if (strcmp(logs[k], log) == 0)
            return true;
    luaL_pushfail(L);
    lua_pushfstring(L, "proc: log file '%s' is not allowed (add its absolute path to proc.logs)",
                    log);
    return false;
}

static const char *const run_opts[] = {"cwd",   "delay_ms",   "env", "max_output",
                                       "stdin", "timeout_ms", NULL};
static const char *const spawn_opts[] = {"cwd", "delay_ms", "env", "log", NULL};

/* run(argv [, opts]) -> {status, signal, stdout, stderr, timed_out, truncated,
 * started_ms} | nil, err */
static int l_run(lua_State *L)
{
    const char *fn = "run";
    struct proc_cmd cs;
    struct proc_run_opts o;
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
    lua_Integer delay = opt_int(L, 2, "delay_ms", 0, 0, PROC_MAX_DELAY_MS, fn);
    o.max_output =
        (size_t)opt_int(L, 2, "max_output", PROC_MAX_OUTPUT_DEFAULT, 1, PROC_MAX_OUTPUT_LIMIT, fn);
    size_t len;
    o.stdin_data = opt_str(L, 2, "stdin", fn, &o.stdin_len);
    cs.cwd = opt_str(L, 2, "cwd", fn, &len);
    if (cs.cwd && strlen(cs.cwd) != len)
        luaL_error(L, "bad option 'cwd' to '%s' (contains NUL)", fn);
    bool self;
    if (!check_allowed(L, &cs, &self))
        return 2;
    if (opt_field(L, 2, "env", LUA_TTABLE, fn) == LUA_TTABLE)
        cs.envp = build_env(L, lua_gettop(L), fn, self);
    else
        cs.envp = build_env(L, 0, fn, self);
    struct job *j = lua_newuserdatauv(L, sizeof *j, 0);
    memset(j, 0, sizeof *j);
    luaL_setmetatable(L, PROC_JOB_MT);

    /* delay_ms: forked and set up now, exec'd then; timeout_ms counts from
     * the exec. The parent waits for the exec unconditionally, so it must
     * come before the handler's deadline. */
    int64_t now = util_mono_ms(), sbd = sandbox_deadline(L);
    cs.exec_at = delay > 0 ? now + delay : 0;
    o.deadline = timeout > 0 ? now + delay + timeout : 0;
    if (sbd > 0 && (o.deadline == 0 || sbd < o.deadline))
        o.deadline = sbd;
    if (sbd > 0 && now >= sbd) {
        luaL_pushfail(L);
        lua_pushstring(L, "proc: the handler's deadline has passed");
        return 2;
    }
    if (sbd > 0 && now + delay >= sbd) {
        luaL_pushfail(L);
        lua_pushfstring(L, "proc: delay_ms %d reaches past the handler's deadline (%d ms away)",
                        (int)delay, (int)(sbd - now));
        return 2;
    }

    /* The output counts against the memory cap: the buffers may take half
     * of what is left, the strings copied from them the other half. */
    o.mem_max = sandbox_mem_left(L) / 2;
    if (o.mem_max == 0)
        o.mem_max = 1;

    /* From here to the pushes no Lua call: fds exist only inside proc_run. */
    struct proc_run_result r;
    char err[512];
    if (proc_run(&cs, &o, j->out, &r, err, sizeof err) < 0) {
        job_free(L, j);
        luaL_pushfail(L);
        lua_pushstring(L, err);
        return 2;
    }
    if (r.out_of_memory) {
        job_free(L, j);
        return sandbox_memory_error(L, "proc.run: the command's output");
    }
    /* Held while the results are pushed, which may run finalizers. */
    if (sandbox_charge(L, j->out[0].cap + j->out[1].cap) < 0) {
        job_free(L, j);
        return sandbox_memory_error(L, "proc.run: the command's output");
    }
    j->charged = j->out[0].cap + j->out[1].cap;
    lua_createtable(L, 0, 7);
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
    lua_pushinteger(L, (lua_Integer)r.started_ms);
    lua_setfield(L, -2, "started_ms");
    job_free(L, j); /* __gc would too; free the megabytes now */
    return 1;
}

/* spawn(argv [, {log, env, cwd, delay_ms}]) -> pid | nil, err */
static int l_spawn(lua_State *L)
{
    const char *fn = "spawn";
    struct proc_cmd cs;
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
    if (log && !log_allowed(L, log))
        return 2;
    cs.cwd = opt_str(L, 2, "cwd", fn, &len);
    if (cs.cwd && strlen(cs.cwd) != len)
        luaL_error(L, "bad option 'cwd' to '%s' (contains NUL)", fn);
    lua_Integer delay = opt_int(L, 2, "delay_ms", 0, 0, PROC_MAX_DELAY_MS, fn);
    bool self;
    if (!check_allowed(L, &cs, &self))
        return 2;
    if (opt_field(L, 2, "env", LUA_TTABLE, fn) == LUA_TTABLE)
        cs.envp = build_env(L, lua_gettop(L), fn, self);
    else
        cs.envp = build_env(L, 0, fn, self);
    cs.exec_at = delay > 0 ? util_mono_ms() + delay : 0;

    char err[512];
    pid_t pid = proc_spawn(&cs, log, err, sizeof err);
    if (pid < 0) {
        luaL_pushfail(L);
        lua_pushstring(L, err);
        return 2;
    }
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
static int l_kill(lua_State *L)
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

/* alive(pid) -> boolean */
static int l_alive(lua_State *L)
{
    lua_pushboolean(L, proc_alive(check_pid(L, 1)));
    return 1;
}

static const luaL_Reg proc_funcs[] = {
    {"alive", l_alive}, {"kill", l_kill}, {"run", l_run}, {"spawn", l_spawn}, {NULL, NULL},
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
