/*
 * sandbox.c: the lua_State every handler, module and Lua test runs in. Only
 * the safe libraries, a capped allocator, text-only chunks with their own
 * _ENV, a require() that reads only through the verified bundle, and a
 * deadline enforced three ways: an instruction-count hook that pcall cannot
 * swallow, a SIGALRM backstop for long C calls, and RLIMIT_CPU. A bundle
 * module that fails verification stops the run through the same hook.
 */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <unistd.h>

#include <lauxlib.h>
#include <lualib.h>

#include "serfhand.h"

/* The host's own modules, sorted; require "serfhand.X" finds them here. */
static const luaL_Reg host_modules[] = {
    {"serfhand.config", luaopen_serfhand_config},
    {"serfhand.crypto", luaopen_serfhand_crypto},
    {"serfhand.factomd", luaopen_serfhand_factomd},
    {"serfhand.identity", luaopen_serfhand_identity},
    {"serfhand.json", luaopen_serfhand_json},
    {"serfhand.log", luaopen_serfhand_log},
    {"serfhand.proc", luaopen_serfhand_proc},
    {"serfhand.serf", luaopen_serfhand_serf},
    {"serfhand.store", luaopen_serfhand_store},
    {"serfhand.time", luaopen_serfhand_time},
    {NULL, NULL},
};

#define HOOK_COUNT 1000
#define SANDBOX_LOG_MAX 65536 /* bytes of one log line from handler code */
#define LOADED_KEY "serfhand.loaded"
#define GLOBALS_KEY "serfhand.globals"

struct sandbox {
    lua_State *L;
    size_t used, limit; /* allocator accounting */
    bool mem_hit;
    struct sandbox_limits lim;
    struct bundle *bundle;
    const struct config *cfg;
    int64_t deadline; /* CLOCK_MONOTONIC ms; 0 = none */
    volatile sig_atomic_t timed_out;
    volatile sig_atomic_t alarms;
    bool in_handler;
    volatile sig_atomic_t closing; /* lua_close runs: the host's finalizers must run too */
    bool refused;                  /* a bundle module failed verification: the run is over */
    char refusal[640];             /* why, for the host's "refused:" line */
    char alarm_msg[160];           /* the backstop's log line, written before any signal */
};

/* The SIGALRM backstop needs the state; lua.c keeps `globalL` for the same
 * reason. Only the signal handler reads it. */
static struct sandbox *volatile alarm_sb;

/* lua_Alloc with a cap. When ptr is NULL, osize is a type tag, not a size. */
static void *cap_alloc(void *ud, void *ptr, size_t osize, size_t nsize)
{
    struct sandbox *sb = ud;
    if (!ptr)
        osize = 0;
    if (nsize == 0) {
        free(ptr);
        sb->used -= osize;
        return NULL;
    }
    if (nsize > osize && sb->used + (nsize - osize) > sb->limit) {
        sb->mem_hit = true;
        return NULL;
    }
    void *p = realloc(ptr, nsize);
    if (!p) {
        sb->mem_hit = true; /* the address-space backstop: the same cap */
        return NULL;
    }
    sb->used = sb->used - osize + nsize;
    return p;
}

struct sandbox *sandbox_of(lua_State *L)
{
    return *(struct sandbox **)lua_getextraspace(L);
}

lua_State *sandbox_state(struct sandbox *sb)
{
    return sb->L;
}

const struct config *sandbox_config(lua_State *L)
{
    return sandbox_of(L)->cfg;
}

bool sandbox_in_handler(lua_State *L)
{
    return sandbox_of(L)->in_handler;
}

void sandbox_set_handler(struct sandbox *sb, bool in_handler)
{
    sb->in_handler = in_handler;
}

int64_t sandbox_deadline_ms(const struct sandbox *sb)
{
    return sb ? sb->deadline : 0;
}

/* Past the deadline counts even when no hook noticed (a long C call, code
 * the host ran after the handler returned). */
bool sandbox_timed_out(const struct sandbox *sb)
{
    return sb->timed_out != 0 || (sb->deadline && util_mono_ms() >= sb->deadline);
}

bool sandbox_out_of_memory(const struct sandbox *sb)
{
    return sb->mem_hit;
}

const char *sandbox_deadline_name(const struct sandbox *sb)
{
    return sb->lim.deadline_name ? sb->lim.deadline_name : "the run's deadline";
}

/* The sandbox of L, or NULL for a plain state (the config reader, unit
 * tests): told by the allocator, which is ours only in a sandbox. */
static struct sandbox *sandbox_if(lua_State *L)
{
    void *ud = NULL;
    return lua_getallocf(L, &ud) == cap_alloc ? ud : NULL;
}

size_t sandbox_mem_left(lua_State *L)
{
    struct sandbox *sb = sandbox_if(L);
    if (!sb)
        return SIZE_MAX / 4;
    return sb->used < sb->limit ? sb->limit - sb->used : 0;
}

int sandbox_reserve(lua_State *L, size_t n)
{
    struct sandbox *sb = sandbox_if(L);
    if (!sb)
        return 0;
    if (n > sb->limit || sb->used > sb->limit - n) {
        sb->mem_hit = true;
        return -1;
    }
    return 0;
}

const char *sandbox_refusal(const struct sandbox *sb)
{
    return sb && sb->refused ? sb->refusal : NULL;
}

/* --- deadline and refusal ------------------------------------------------- */

static int msghandler(lua_State *L);
static void stop_hook(lua_State *L, lua_Debug *ar);

/* From now on every call, return and instruction raises, in L and in the main
 * thread (a coroutine's error returns to its resumer, which a pcall there
 * could otherwise let run until its next count hook): a pcall that catches
 * the error only meets it again. A refusal outranks the deadline. */
static int raise_stop(lua_State *L)
{
    struct sandbox *sb = sandbox_of(L);
    lua_sethook(L, stop_hook, LUA_MASKCALL | LUA_MASKRET | LUA_MASKCOUNT, 1);
    if (L != sb->L)
        lua_sethook(sb->L, stop_hook, LUA_MASKCALL | LUA_MASKRET | LUA_MASKCOUNT, 1);
    if (sb->refused)
        return luaL_error(L, "refused: %s", sb->refusal);
    return luaL_error(L, "deadline of %d ms exceeded (%s)", sb->lim.deadline_ms,
                      sandbox_deadline_name(sb));
}

static void stop_hook(lua_State *L, lua_Debug *ar)
{
    struct sandbox *sb = sandbox_of(L);
    if (!sb->timed_out && !sb->refused) {
        if (sb->deadline == 0 || util_mono_ms() < sb->deadline)
            return;
        sb->timed_out = 1;
    }
    if (ar->event == LUA_HOOKCALL && lua_getinfo(L, "f", ar)) {
        bool ours = lua_tocfunction(L, -1) == msghandler;
        lua_pop(L, 1);
        if (ours)
            return; /* let the traceback be written */
    }
    raise_stop(L);
}

static void on_alarm(int sig)
{
    (void)sig;
    struct sandbox *sb = alarm_sb;
    if (!sb)
        return;
    if (sb->alarms++ == 0) {
        /* The hook may not have run (a long C call): make the next VM step
         * raise, and give the unwinding grace_ms. */
        sb->timed_out = 1;
        /* While lua_close runs only finalizers run, with hooks off, and the
         * state may already be freed when this arrives: leave it alone. */
        if (!sb->closing)
            lua_sethook(sb->L, stop_hook, LUA_MASKCALL | LUA_MASKRET | LUA_MASKCOUNT, 1);
        struct itimerval it = {{0, 0}, {sb->lim.grace_ms / 1000, (sb->lim.grace_ms % 1000) * 1000}};
        setitimer(ITIMER_REAL, &it, NULL);
        return;
    }
    /* Code that no hook reaches (a finalizer, which Lua runs with hooks off;
     * a message handler called from the hook; a long pattern match) or a
     * wait that ignored the deadline: the process ends here, grace_ms after
     * the deadline. A crash to SQLite: the store keeps every committed
     * transaction; the log line is one write(2). */
    log_signal_safe(sb->alarm_msg);
    _exit(SH_EXIT_TIMEOUT); /* in a signal handler, nothing returns to a command */
}

/* The backstop fires ms from now. */
static void arm_alarm(struct sandbox *sb, int64_t ms)
{
    if (ms < 1)
        ms = 1;
    alarm_sb = sb;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_alarm;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGALRM, &sa, NULL);
    struct itimerval it = {{0, 0}, {(time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000}};
    setitimer(ITIMER_REAL, &it, NULL);
}

void sandbox_start_clock(struct sandbox *sb)
{
    if (sb->lim.deadline_ms <= 0)
        return;
    sb->deadline = util_mono_ms() + sb->lim.deadline_ms;
    snprintf(sb->alarm_msg, sizeof sb->alarm_msg,
             "deadline of %d ms exceeded (%s) where no hook runs (a finalizer, a message "
             "handler or one long C call); process ended",
             sb->lim.deadline_ms, sandbox_deadline_name(sb));
    arm_alarm(sb, sb->lim.deadline_ms);
    /* Last resort if even SIGALRM cannot help: the kernel ends a spinning
     * process. Soft limit only lowers; SIGXCPU's default action kills. */
    struct rlimit rl;
    rlim_t secs = (rlim_t)(sb->lim.deadline_ms + sb->lim.grace_ms) / 1000 + 2;
    if (getrlimit(RLIMIT_CPU, &rl) == 0 && (rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur > secs)) {
        rl.rlim_cur = secs;
        setrlimit(RLIMIT_CPU, &rl);
    }
}

/* The backstop for memory the allocator does not see (a library's own
 * buffers): the address space may grow by twice the cap plus room for the
 * libraries a run loads, then allocations fail as at the cap. Only the soft
 * limit moves; proc.c restores it in children. */
static void limit_address_space(const struct sandbox *sb)
{
    char line[64];
    FILE *f = fopen("/proc/self/statm", "re");
    if (!f)
        return;
    char *got = fgets(line, sizeof line, f);
    fclose(f);
    char *end;
    errno = 0;
    unsigned long pages = got ? strtoul(line, &end, 10) : 0;
    if (!got || errno || end == line)
        return;
    struct rlimit rl;
    rlim_t want =
        (rlim_t)pages * (rlim_t)sysconf(_SC_PAGESIZE) + 2 * (rlim_t)sb->limit + ((rlim_t)256 << 20);
    if (getrlimit(RLIMIT_AS, &rl) == 0) {
        rl.rlim_cur = rl.rlim_max != RLIM_INFINITY && rl.rlim_max < want ? rl.rlim_max : want;
        setrlimit(RLIMIT_AS, &rl);
    }
}

void sandbox_stop_clock(struct sandbox *sb)
{
    struct itimerval off = {{0, 0}, {0, 0}};
    setitimer(ITIMER_REAL, &off, NULL);
    if (alarm_sb == sb)
        alarm_sb = NULL;
}

/* --- replaced base functions --------------------------------------------- */

void sandbox_log(lua_State *L, enum log_level lvl, int idx)
{
    size_t len;
    const char *s = lua_tolstring(L, idx, &len);
    if (!s)
        return;
    /* log.c formats the line, then escapes it (up to 4 bytes a byte), in
     * malloc'ed buffers: count them against the cap, cut what does not fit,
     * and keep a line readable (and cheap to escape) anyway. */
    size_t fit = sandbox_mem_left(L) / 5;
    if (fit > SANDBOX_LOG_MAX)
        fit = SANDBOX_LOG_MAX;
    if (len <= fit) {
        log_msg(lvl, "%.*s", (int)(len < INT_MAX ? len : INT_MAX), s);
        return;
    }
    log_msg(lvl, "%.*s... [%zu bytes cut: a line holds at most %d bytes, within limits.memory_mb]",
            (int)fit, s, len - fit, SANDBOX_LOG_MAX);
}

static int sb_print(lua_State *L)
{
    int n = lua_gettop(L);
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    for (int i = 1; i <= n; i++) {
        size_t len;
        const char *s = luaL_tolstring(L, i, &len);
        if (i > 1)
            luaL_addchar(&b, '\t');
        luaL_addvalue(&b);
        (void)s;
        (void)len;
    }
    luaL_pushresult(&b);
    sandbox_log(L, LOG_LVL_INFO, -1);
    return 0;
}

static int sb_collectgarbage(lua_State *L)
{
    const char *opt = luaL_optstring(L, 1, "count");
    luaL_argcheck(L, strcmp(opt, "count") == 0, 1, "only \"count\" is allowed in the sandbox");
    struct sandbox *sb = sandbox_of(L);
    lua_pushnumber(L, (lua_Number)sb->used / 1024.0);
    return 1;
}

/* Give the function on top a fresh _ENV whose misses fall back to the safe
 * globals; env._G is the env itself. */
static void set_fresh_env(lua_State *L)
{
    lua_newtable(L); /* fn env */
    lua_newtable(L); /* fn env mt */
    lua_getfield(L, LUA_REGISTRYINDEX, GLOBALS_KEY);
    lua_setfield(L, -2, "__index");
    lua_pushboolean(L, 0);
    lua_setfield(L, -2, "__metatable"); /* the globals stay hidden */
    lua_setmetatable(L, -2);
    lua_pushvalue(L, -1);
    lua_setfield(L, -2, "_G");
    if (!lua_setupvalue(L, -2, 1)) /* fn */
        lua_pop(L, 1);
}

/* load(chunk [, chunkname [, mode [, env]]]): text only; without env the
 * chunk gets a fresh environment, never the host's globals. */
static int sb_load(lua_State *L)
{
    size_t len;
    const char *s = luaL_checklstring(L, 1, &len);
    const char *name = luaL_optstring(L, 2, "=(load)");
    const char *mode = luaL_optstring(L, 3, "t");
    if (strcmp(mode, "t") != 0)
        return luaL_error(L, "load: only text chunks (mode \"t\") are allowed");
    int has_env = !lua_isnone(L, 4);
    if (luaL_loadbufferx(L, s, len, name, "t") != LUA_OK) {
        luaL_pushfail(L);
        lua_insert(L, -2);
        return 2;
    }
    if (has_env) {
        lua_pushvalue(L, 4);
        if (!lua_setupvalue(L, -2, 1))
            lua_pop(L, 1);
    } else {
        set_fresh_env(L);
    }
    return 1;
}

/* A bundle module failed verification (changed, unlisted, missing, a
 * symlink out, not a regular file, too big): the run ends as a refusal. It is
 * recorded here, in the state's own context, for the host to find whatever
 * the Lua code does next; the error is raised again on every step after, as
 * for the deadline. While lua_close runs the finalizers, only record it: the
 * host's own finalizers (store, identity key) must still run. */
static int refuse_module(lua_State *L, const char *name, const char *why)
{
    struct sandbox *sb = sandbox_of(L);
    if (!sb->refused) {
        snprintf(sb->refusal, sizeof sb->refusal, "module '%s': %s", name, why);
        sb->refused = true;
    }
    if (sb->closing)
        return luaL_error(L, "refused: %s", sb->refusal);
    return raise_stop(L);
}

/* coroutine.resume, coroutine.close and what coroutine.wrap returns, with the
 * original as upvalue 1: when the run was stopped while the coroutine ran,
 * the resumer stops at once too, not at its next count hook. */
static int sb_coresume(lua_State *L)
{
    int n = lua_gettop(L);
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_insert(L, 1);
    int status = lua_pcall(L, n, LUA_MULTRET, 0);
    struct sandbox *sb = sandbox_of(L);
    if (sb->refused || sb->timed_out)
        return raise_stop(L);
    if (status != LUA_OK)
        return lua_error(L); /* what wrap's function raised, unchanged */
    return lua_gettop(L);
}

static int sb_cowrap(lua_State *L)
{
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_insert(L, 1);
    lua_call(L, lua_gettop(L) - 1, 1);
    lua_pushcclosure(L, sb_coresume, 1);
    return 1;
}

static enum sandbox_load sandbox_load_file(struct sandbox *sb, const char *rel, char *err,
                                           size_t errlen);

/* --- read-only host modules ----------------------------------------------- */

/* A host module reaches handler code as an empty proxy table: reads go to the
 * module (upvalue/__index), writes raise, pairs() walks the module without
 * handing it out, the metatable is hidden and rawset refuses the proxy. So a
 * handler cannot swap serfhand.crypto.verify under a module it requires
 * later. */
static int ro_newindex(lua_State *L)
{
    return luaL_error(L, "host module %s is read-only",
                      lua_tostring(L, lua_upvalueindex(1)) ? lua_tostring(L, lua_upvalueindex(1))
                                                           : "table");
}

static int ro_next(lua_State *L) /* upvalue 1: the module; (_, key) */
{
    lua_settop(L, 2);
    if (lua_next(L, lua_upvalueindex(1)))
        return 2;
    lua_pushnil(L);
    return 1;
}

static int ro_pairs(lua_State *L) /* upvalue 1: the module */
{
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_pushcclosure(L, ro_next, 1);
    lua_pushnil(L);
    lua_pushnil(L);
    return 3;
}

static int ro_len(lua_State *L)
{
    lua_pushinteger(L, (lua_Integer)lua_rawlen(L, lua_upvalueindex(1)));
    return 1;
}

/* Replace the table on top with its read-only proxy; its table fields are
 * made read-only too (depth-bounded: module tables are shallow). */
static void make_read_only(lua_State *L, const char *name, int depth)
{
    int mod = lua_gettop(L);
    if (depth < 3) {
        lua_pushnil(L);
        while (lua_next(L, mod)) {
            if (lua_type(L, -1) == LUA_TTABLE && lua_getmetatable(L, -1) == 0) {
                make_read_only(L, name, depth + 1); /* k proxy */
                lua_pushvalue(L, -2);
                lua_insert(L, -2);
                lua_rawset(L, mod); /* replacing an existing key: next() stays valid */
            } else {
                if (lua_type(L, -1) == LUA_TTABLE)
                    lua_pop(L, 1); /* the metatable lua_getmetatable pushed */
                lua_pop(L, 1);
            }
        }
    }
    lua_newtable(L);          /* mod proxy */
    lua_createtable(L, 0, 6); /* mod proxy mt */
    lua_pushvalue(L, mod);
    lua_setfield(L, -2, "__index");
    lua_pushstring(L, name);
    lua_pushcclosure(L, ro_newindex, 1);
    lua_setfield(L, -2, "__newindex");
    lua_pushvalue(L, mod);
    lua_pushcclosure(L, ro_pairs, 1);
    lua_setfield(L, -2, "__pairs");
    lua_pushvalue(L, mod);
    lua_pushcclosure(L, ro_len, 1);
    lua_setfield(L, -2, "__len");
    lua_pushboolean(L, 0);
    lua_setfield(L, -2, "__metatable");
    lua_pushboolean(L, 1);
    lua_rawsetp(L, LUA_REGISTRYINDEX, lua_topointer(L, -2)); /* marks the proxy's mt */
    lua_setmetatable(L, -2);
    lua_remove(L, mod); /* proxy */
}

/* rawset(t, k, v), refusing a read-only proxy (it would shadow the module). */
static int sb_rawset(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    if (lua_getmetatable(L, 1)) {
        bool ro = lua_rawgetp(L, LUA_REGISTRYINDEX, lua_topointer(L, -1)) == LUA_TBOOLEAN;
        lua_pop(L, 2);
        if (ro)
            return luaL_error(L, "host modules are read-only");
    }
    luaL_checkany(L, 2);
    luaL_checkany(L, 3);
    lua_settop(L, 3);
    lua_rawset(L, 1);
    return 1;
}

/* require(name): host modules by name, bundle modules from lua/<a>/<b>.lua
 * read through bundle_read, each loaded once. */
static int sb_require(lua_State *L)
{
    size_t len;
    const char *name = luaL_checklstring(L, 1, &len);
    lua_settop(L, 1);
    lua_getfield(L, LUA_REGISTRYINDEX, LOADED_KEY); /* name loaded */
    if (lua_getfield(L, 2, name) != LUA_TNIL) {
        if (lua_toboolean(L, -1) && lua_type(L, -1) == LUA_TLIGHTUSERDATA)
            return luaL_error(L, "module '%s': require loop", name);
        return 1;
    }
    lua_pop(L, 1);
    for (const luaL_Reg *m = host_modules; m->name; m++) {
        if (strcmp(m->name, name) == 0) {
            lua_pushcfunction(L, m->func);
            lua_pushstring(L, name);
            lua_call(L, 1, 1);
            if (lua_istable(L, -1) && !sandbox_of(L)->lim.stub_modules)
                make_read_only(L, name, 0);
            lua_pushvalue(L, -1);
            lua_setfield(L, 2, name);
            return 1;
        }
    }
    bool ok = len > 0 && len <= 128 && strncmp(name, "serfhand.", 9) != 0;
    for (size_t i = 0; ok && i < len; i++) {
        char c = name[i];
        bool word =
            (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
        ok = word || (c == '.' && i > 0 && i + 1 < len && name[i + 1] != '.');
    }
    if (!ok)
        return luaL_error(
            L, "module '%s' not found (modules are host serfhand.* or bundle lua/ names)", name);
    struct sandbox *sb = sandbox_of(L);
    if (!sb->bundle)
        return luaL_error(L, "module '%s' not found: no bundle", name);
    char rel[160];
    snprintf(rel, sizeof rel, "lua/%s.lua", name);
    for (char *p = rel + 4; *p; p++)
        if (*p == '.' && strcmp(p, ".lua") != 0)
            *p = '/';
    char err[512];
    enum sandbox_load rc = sandbox_load_file(sb, rel, err, sizeof err);
    if (rc == SANDBOX_LOAD_ABSENT)
        return luaL_error(L, "module '%s' not found in the bundle (%s)", name, rel);
    if (rc == SANDBOX_LOAD_REFUSED)
        return refuse_module(L, name, err);
    if (rc != SANDBOX_LOAD_OK)
        return luaL_error(L, "module '%s': %s", name, err);
    lua_pushlightuserdata(L, (void *)sb); /* loop sentinel while it runs */
    lua_setfield(L, 2, name);
    lua_pushstring(L, name);
    lua_call(L, 1, 1);
    if (lua_isnil(L, -1)) {
        lua_pop(L, 1);
        lua_pushboolean(L, 1);
    }
    lua_pushvalue(L, -1);
    lua_setfield(L, 2, name);
    return 1;
}

/* Open the safe libraries and strip what reaches outside the sandbox. */
static int setup(lua_State *L)
{
    static const luaL_Reg libs[] = {
        {LUA_GNAME, luaopen_base},
        {LUA_STRLIBNAME, luaopen_string},
        {LUA_TABLIBNAME, luaopen_table},
        {LUA_MATHLIBNAME, luaopen_math},
        {LUA_UTF8LIBNAME, luaopen_utf8},
        {LUA_COLIBNAME, luaopen_coroutine},
        {NULL, NULL},
    };
    for (const luaL_Reg *l = libs; l->name; l++) {
        luaL_requiref(L, l->name, l->func, 1);
        lua_pop(L, 1);
    }
    lua_pushglobaltable(L);
    static const char *const removed[] = {"dofile", "loadfile", NULL};
    for (const char *const *r = removed; *r; r++) {
        lua_pushnil(L);
        lua_setfield(L, -2, *r);
    }
    lua_pushcfunction(L, sb_print);
    lua_setfield(L, -2, "print");
    lua_pushcfunction(L, sb_collectgarbage);
    lua_setfield(L, -2, "collectgarbage");
    lua_pushcfunction(L, sb_load);
    lua_setfield(L, -2, "load");
    lua_pushcfunction(L, sb_require);
    lua_setfield(L, -2, "require");
    lua_pushcfunction(L, sb_rawset);
    lua_setfield(L, -2, "rawset");
    lua_setfield(L, LUA_REGISTRYINDEX, GLOBALS_KEY);

    /* string.dump from the real string table; hide the string metatable so
     * getmetatable("").__index cannot reach it either. */
    lua_getglobal(L, LUA_STRLIBNAME);
    lua_pushnil(L);
    lua_setfield(L, -2, "dump");
    lua_pop(L, 1);
    lua_pushliteral(L, "");
    lua_getmetatable(L, -1);
    lua_pushboolean(L, 0);
    lua_setfield(L, -2, "__metatable");
    lua_pop(L, 2);

    lua_getglobal(L, LUA_COLIBNAME);
    static const char *const resumers[] = {"close", "resume", NULL};
    for (const char *const *r = resumers; *r; r++) {
        lua_getfield(L, -1, *r);
        lua_pushcclosure(L, sb_coresume, 1);
        lua_setfield(L, -2, *r);
    }
    lua_getfield(L, -1, "wrap");
    lua_pushcclosure(L, sb_cowrap, 1);
    lua_setfield(L, -2, "wrap");
    lua_pop(L, 1);

    lua_newtable(L);
    lua_setfield(L, LUA_REGISTRYINDEX, LOADED_KEY);
    /* Drop package.loaded entries luaL_requiref made for the libraries. */
    lua_pushnil(L);
    lua_setfield(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
    return 0;
}

/* Nothing should reach here: every host call into Lua is protected. If
 * something does, log it and end with the code of what the run hit (4 for
 * the deadline, 5 for the memory cap, else 2: a host error), never abort(). */
static int sb_panic(lua_State *L)
{
    struct sandbox *sb = sandbox_of(L);
    const char *msg = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : "(no message)";
    if (sb->mem_hit) {
        log_msg(LOG_LVL_ERROR,
                "memory cap reached (limits.memory_mb = %zu) outside a protected "
                "call: %s; process ended",
                sb->limit >> 20, msg);
        _exit(SH_EXIT_MEMORY);
    }
    if (sandbox_timed_out(sb)) {
        log_msg(LOG_LVL_ERROR,
                "deadline of %d ms exceeded (%s) outside a protected call: %s; "
                "process ended",
                sb->lim.deadline_ms, sandbox_deadline_name(sb), msg);
        _exit(SH_EXIT_TIMEOUT);
    }
    log_msg(LOG_LVL_ERROR, "unprotected Lua error (a host bug): %s; process ended", msg);
    _exit(SH_EXIT_USAGE);
}

static void warnf_to_log(void *ud, const char *msg, int tocont)
{
    (void)ud;
    (void)tocont;
    if (*msg != '@')
        log_msg(LOG_LVL_WARN, "lua warning: %s", msg);
}

struct sandbox *sandbox_new(const struct sandbox_limits *lim, struct bundle *b,
                            const struct config *cfg, char *err, size_t errlen)
{
    struct sandbox *sb = calloc(1, sizeof *sb);
    if (!sb) {
        util_errf(err, errlen, "out of memory");
        return NULL;
    }
    sb->lim = *lim;
    sb->limit = lim->memory;
    sb->bundle = b;
    sb->cfg = cfg;
    sb->L = lua_newstate(cap_alloc, sb);
    if (!sb->L) {
        util_errf(err, errlen, "cannot create a Lua state");
        free(sb);
        return NULL;
    }
    *(struct sandbox **)lua_getextraspace(sb->L) = sb;
    limit_address_space(sb);
    lua_atpanic(sb->L, sb_panic);
    lua_setwarnf(sb->L, warnf_to_log, NULL);
    lua_sethook(sb->L, stop_hook, LUA_MASKCOUNT, HOOK_COUNT);
    lua_pushcfunction(sb->L, setup);
    if (lua_pcall(sb->L, 0, 0, 0) != LUA_OK) {
        util_errf(err, errlen, "sandbox: %s", lua_tostring(sb->L, -1));
        sandbox_free(sb);
        return NULL;
    }
    return sb;
}

/* The finalizers lua_close runs are the handler's code too: they run under
 * the same deadline, hook and backstop (a run without a deadline gets
 * grace_ms for its teardown). Past the deadline no more Lua runs: the state
 * is abandoned, not closed, and its memory goes back with the process. The
 * store loses nothing by it (every transaction commits before it returns;
 * SQLite treats an unclosed handle like a crash) and the log is written line
 * by line; the identity key's pages are locked and leave with the process. */
/* The state abandoned past its deadline, kept reachable: the process ends
 * right after (exit code 4), and LeakSanitizer (make SANITIZE=1) would
 * otherwise report its memory, which goes back with the process on purpose,
 * as a leak and turn exit 4 into 1. Not context: nothing reads it. */
static lua_State *volatile abandoned_state; /* volatile: never read, still kept */

void sandbox_close(struct sandbox *sb)
{
    if (!sb || !sb->L)
        return;
    sb->closing = 1;
    if (sb->deadline == 0) {
        sb->lim.deadline_ms = sb->lim.grace_ms > 0 ? sb->lim.grace_ms : 1;
        if (!sb->lim.deadline_name)
            sb->lim.deadline_name = "limits.grace_ms, for the teardown";
        sandbox_start_clock(sb);
    }
    int64_t left = sb->deadline - util_mono_ms();
    if (sb->timed_out || left <= 0) {
        sb->timed_out = 1;
        sandbox_stop_clock(sb);
        abandoned_state = sb->L;
        sb->L = NULL; /* abandoned */
        return;
    }
    arm_alarm(sb, left);
    lua_close(sb->L);
    sb->L = NULL;
    sandbox_stop_clock(sb);
}

void sandbox_free(struct sandbox *sb)
{
    if (!sb)
        return;
    sandbox_close(sb);
    free(sb);
}

/* --- loading and calling ------------------------------------------------- */

int sandbox_load_buffer(struct sandbox *sb, const char *buf, size_t len, const char *chunkname,
                        char *err, size_t errlen)
{
    lua_State *L = sb->L;
    if (luaL_loadbufferx(L, buf, len, chunkname, "t") != LUA_OK) {
        util_errf(err, errlen, "%s", lua_tostring(L, -1));
        lua_pop(L, 1);
        return -1;
    }
    set_fresh_env(L);
    return 0;
}

/* Read rel through the bundle and push the loaded chunk (a function with its
 * own _ENV): SANDBOX_LOAD_OK, _ABSENT, _ERROR or _REFUSED. */
static enum sandbox_load sandbox_load_file(struct sandbox *sb, const char *rel, char *err,
                                           size_t errlen)
{
    struct buf code = {0};
    enum sandbox_load rc = SANDBOX_LOAD_ERROR;
    if (!sb->bundle) {
        util_errf(err, errlen, "%s: no bundle", rel);
        return SANDBOX_LOAD_ERROR;
    }
    switch (bundle_read(sb->bundle, rel, &code, err, errlen)) {
    case UTIL_OPEN_MISSING: rc = SANDBOX_LOAD_ABSENT; break;
    case UTIL_OPEN_FAILED: rc = SANDBOX_LOAD_REFUSED; break; /* never loaded */
    case UTIL_OPEN_OK: {
        char chunk[256];
        snprintf(chunk, sizeof chunk, "@%s", rel);
        rc = sandbox_load_buffer(sb, code.data, code.len, chunk, err, errlen) == 0
                 ? SANDBOX_LOAD_OK
                 : SANDBOX_LOAD_ERROR;
        break;
    }
    }
    buf_free(&code);
    return rc;
}

/* Protected: t -> t.handle, or t itself when that is not a function. */
static int get_handle(lua_State *L)
{
    lua_getfield(L, 1, "handle");
    if (!lua_isfunction(L, -1))
        lua_pushvalue(L, 1);
    return 1;
}

enum sandbox_load sandbox_load_handler(struct sandbox *sb, const char *rel, int *status, char *err,
                                       size_t errlen)
{
    lua_State *L = sb->L;
    enum sandbox_load rc = sandbox_load_file(sb, rel, err, errlen);
    if (rc != SANDBOX_LOAD_OK)
        return rc;
    *status = sandbox_pcall(sb, 0, 1); /* the top level returns the handler */
    if (*status != LUA_OK)
        return SANDBOX_LOAD_RAISED;
    if (lua_istable(L, -1)) {
        /* t.handle may run the table's __index: the handler's code. */
        lua_pushcfunction(L, get_handle);
        lua_insert(L, -2);
        *status = sandbox_pcall(sb, 1, 1);
        if (*status != LUA_OK)
            return SANDBOX_LOAD_RAISED;
        if (lua_isfunction(L, -1))
            return SANDBOX_LOAD_OK;
        lua_pushliteral(L, "table without a handle function");
        lua_remove(L, -2);
    }
    if (lua_isfunction(L, -1))
        return SANDBOX_LOAD_OK;
    util_errf(err, errlen, "%s",
              lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : luaL_typename(L, -1));
    lua_pop(L, 1);
    return SANDBOX_LOAD_NOT_HANDLER;
}

static int tostring_value(lua_State *L)
{
    luaL_tolstring(L, 1, NULL);
    return 1;
}

int sandbox_tostring(struct sandbox *sb, int idx, struct buf *out)
{
    lua_State *L = sb->L;
    idx = lua_absindex(L, idx);
    lua_pushcfunction(L, tostring_value);
    lua_pushvalue(L, idx);
    if (sandbox_pcall(sb, 1, 1) != LUA_OK)
        return -1; /* the message stays on top */
    size_t n;
    const char *s = lua_tolstring(L, -1, &n);
    buf_add(out, s, n);
    lua_pop(L, 1);
    return 0;
}

/* lua.c's message handler, plus the bundle it came from. */
static int msghandler(lua_State *L)
{
    const char *msg = lua_tostring(L, 1);
    if (!msg) {
        if (luaL_callmeta(L, 1, "__tostring") && lua_type(L, -1) == LUA_TSTRING)
            return 1;
        msg = lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, 1));
    }
    const struct bundle *b = sandbox_of(L)->bundle;
    if (b)
        msg = lua_pushfstring(L, "%s [bundle %s version %s]", msg, b->name, b->version);
    luaL_traceback(L, L, msg, 1);
    return 1;
}

int sandbox_cpcall(struct sandbox *sb, lua_CFunction f, void *ud, int nresults)
{
    lua_State *L = sb->L;
    if (!lua_checkstack(L, 3))
        return LUA_ERRMEM;
    lua_pushcfunction(L, f);
    lua_pushlightuserdata(L, ud);
    return sandbox_pcall(sb, 1, nresults);
}

int sandbox_pcall(struct sandbox *sb, int nargs, int nresults)
{
    lua_State *L = sb->L;
    int base = lua_gettop(L) - nargs;
    lua_pushcfunction(L, msghandler);
    lua_insert(L, base);
    int rc = lua_pcall(L, nargs, nresults, base);
    lua_remove(L, base);
    return rc;
}
