/*
 * cmd_test.c: `serfhand test FILE...`, the bundle author's Lua test runner.
 * Each file runs through the runner (run.c) in the sandbox handlers get, with
 * the bundle of --bundle (default: the current directory) read without
 * signature checks and a global T (test, eq, ok, raises, report, event,
 * query). T.event and T.query run `handle` in a child exactly as Serf would
 * (run_serf). State goes to a scratch directory unless --state. Output: text
 * ending "N passed, N failed", TAP version 13 (--tap) or one JSON object.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>

#include "serfhand.h"

/* The test library, run as the host chunk: it gets the host functions,
 * builds T, loads the test file (its text from host.source) with T in its
 * environment and runs it. A file that raises is reported through
 * host.file_failed; past the deadline nothing more runs and the runner
 * reports it. */
static const char t_lib[] =
    "local host = ...\n"
    "local T = {}\n"
    "local function show(v)\n"
    "  if type(v) == 'string' then return string.format('%q', v) end\n"
    "  if type(v) ~= 'table' then return tostring(v) end\n"
    "  local keys, out = {}, {}\n"
    "  for k in pairs(v) do keys[#keys + 1] = k end\n"
    "  table.sort(keys, function(a, b) return tostring(a) < tostring(b) end)\n"
    "  for _, k in ipairs(keys) do out[#out + 1] = tostring(k) .. '=' .. show(v[k]) end\n"
    "  return '{' .. table.concat(out, ',') .. '}'\n"
    "end\n"
    "local function same(a, b)\n"
    "  if a == b then return true end\n"
    "  if type(a) ~= 'table' or type(b) ~= 'table' then return false end\n"
    "  for k, v in pairs(a) do if not same(v, b[k]) then return false end end\n"
    "  for k in pairs(b) do if a[k] == nil then return false end end\n"
    "  return true\n"
    "end\n"
    "function T.eq(got, want, msg)\n"
    "  if not same(got, want) then\n"
    "    error((msg and msg .. ': ' or '') .. 'got ' .. show(got) .. ', want ' .. show(want), 2)\n"
    "  end\n"
    "end\n"
    "function T.ok(v, msg) if not v then error(msg or 'expected a true value', 2) end return v "
    "end\n"
    "function T.raises(fn, pattern, msg)\n"
    "  local ok, err = pcall(fn)\n"
    "  if ok then error((msg and msg .. ': ' or '') .. 'expected an error', 2) end\n"
    "  if pattern and not string.find(tostring(err), pattern) then\n"
    "    error((msg and msg .. ': ' or '') .. 'error ' .. show(tostring(err)) .. ' does not match "
    "' .. show(pattern), 2)\n"
    "  end\n"
    "  return err\n"
    "end\n"
    "function T.test(name, fn)\n"
    "  local ok, err = xpcall(fn, function(e) return tostring(e) end)\n"
    "  host.result(tostring(name), ok, err)\n"
    "end\n"
    "T.report = host.report\n"
    "T.event = host.event\n"
    "function T.query(spec)\n"
    "  local t = {}\n"
    "  for k, v in pairs(spec) do t[k] = v end\n"
    "  t.type = 'query'\n"
    "  return host.event(t)\n"
    "end\n"
    "local env = setmetatable({T = T}, {__index = _ENV, __metatable = false})\n"
    "env._G = env\n"
    "local fn, err = load(host.source(), host.name(), 't', env)\n"
    "if not fn then host.file_failed(err) return true end\n"
    "local ok, e = xpcall(fn, host.traceback)\n"
    "if not ok then host.file_failed(e) end\n"
    "return true\n";

enum fmt { FMT_TEXT, FMT_TAP, FMT_JSON };

/* The run of one `serfhand test`, upvalue 1 of every host function. */
struct tctx {
    enum fmt fmt;
    const char *file; /* the file being run */
    struct buf source;
    const char *bundle_dir, *state_dir;
    int pass, fail, n;         /* n: the TAP test number */
    struct buf tests, reports; /* JSON: the insides of two arrays */
};

/* A JSON string of s: util_json_str's escapes, and a byte that is not part
 * of valid UTF-8 (a failed T.eq on binary data shows it) as U+FFFD, so the
 * document stays valid for every reader. */
static void json_str(struct buf *b, const char *s)
{
    struct buf tmp = {0};
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        size_t n = *p < 0x80             ? 1
                   : (*p & 0xe0) == 0xc0 ? 2
                   : (*p & 0xf0) == 0xe0 ? 3
                   : (*p & 0xf8) == 0xf0 ? 4
                                         : 0;
        bool ok = n > 0 && !(n == 2 && *p < 0xc2) && !(n == 4 && *p > 0xf4);
        for (size_t i = 1; ok && i < n; i++)
            ok = (p[i] & 0xc0) == 0x80;
        if (ok && n == 3) /* no overlong forms, no surrogates */
            ok = !(p[0] == 0xe0 && p[1] < 0xa0) && !(p[0] == 0xed && p[1] >= 0xa0);
        if (ok && n == 4)
            ok = !(p[0] == 0xf0 && p[1] < 0x90) && !(p[0] == 0xf4 && p[1] >= 0x90);
        if (ok) {
            buf_add(&tmp, p, n);
            p += n;
        } else {
            buf_addstr(&tmp, "\xef\xbf\xbd");
            p++;
        }
    }
    util_json_str(b, tmp.data ? tmp.data : "");
    buf_free(&tmp);
}

static struct tctx *ctx_of(lua_State *L)
{
    return lua_touserdata(L, lua_upvalueindex(1));
}

/* TAP: a description on one line, '#' escaped (it would start a directive). */
static void tap_text(const char *s)
{
    for (; *s; s++) {
        if (*s == '#')
            fputs("\\#", stdout);
        else
            putchar(*s == '\n' || *s == '\r' ? ' ' : *s);
    }
}

/* One outcome: a T.test (name) or the file itself (name NULL). */
static void record(struct tctx *t, const char *name, bool ok, const char *msg)
{
    if (ok)
        t->pass++;
    else
        t->fail++;
    t->n++;
    switch (t->fmt) {
    case FMT_TEXT:
        if (!ok)
            printf("FAIL %s: %s\n", name ? name : t->file, msg ? msg : "");
        break;
    case FMT_TAP:
        printf("%s %d - ", ok ? "ok" : "not ok", t->n);
        tap_text(t->file);
        if (name) {
            fputs(": ", stdout);
            tap_text(name);
        }
        putchar('\n');
        if (!ok) { /* a YAML block; a JSON string is a YAML scalar */
            struct buf m = {0};
            json_str(&m, msg ? msg : "");
            printf("  ---\n  message: %s\n  ...\n", m.data);
            buf_free(&m);
        }
        break;
    case FMT_JSON:
        buf_addstr(&t->tests, t->tests.len ? ",{\"file\":" : "{\"file\":");
        json_str(&t->tests, t->file);
        buf_addstr(&t->tests, ",\"name\":");
        if (name)
            json_str(&t->tests, name);
        else
            buf_addstr(&t->tests, "null");
        buf_printf(&t->tests, ",\"ok\":%s", ok ? "true" : "false");
        if (!ok) {
            buf_addstr(&t->tests, ",\"message\":");
            json_str(&t->tests, msg ? msg : "");
        }
        buf_addstr(&t->tests, "}");
        break;
    }
    fflush(stdout);
}

static int h_result(lua_State *L) /* (name, ok, err) */
{
    record(ctx_of(L), luaL_checkstring(L, 1), lua_toboolean(L, 2), luaL_optstring(L, 3, ""));
    return 0;
}

static int h_file_failed(lua_State *L) /* (message) */
{
    record(ctx_of(L), NULL, false, luaL_optstring(L, 1, "(no message)"));
    return 0;
}

static int h_report(lua_State *L) /* T.report(text) */
{
    struct tctx *t = ctx_of(L);
    const char *s = luaL_checkstring(L, 1);
    switch (t->fmt) {
    case FMT_TEXT: printf("%s\n", s); break;
    case FMT_TAP: /* a comment line each */
        for (const char *p = s;;) {
            size_t n = strcspn(p, "\n");
            printf("# %.*s\n", (int)n, p);
            if (!p[n])
                break;
            p += n + 1;
        }
        break;
    case FMT_JSON:
        buf_addstr(&t->reports, t->reports.len ? ",{\"file\":" : "{\"file\":");
        json_str(&t->reports, t->file);
        buf_addstr(&t->reports, ",\"text\":");
        json_str(&t->reports, s);
        buf_addstr(&t->reports, "}");
        break;
    }
    fflush(stdout);
    return 0;
}

static int h_source(lua_State *L)
{
    struct tctx *t = ctx_of(L);
    lua_pushlstring(L, t->source.data ? t->source.data : "", t->source.len);
    return 1;
}

static int h_name(lua_State *L)
{
    lua_pushfstring(L, "@%s", ctx_of(L)->file);
    return 1;
}

/* The message handler of the file's top level: lua.c's traceback. */
static int h_traceback(lua_State *L)
{
    const char *msg = lua_tostring(L, 1);
    if (!msg)
        msg = lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, 1));
    luaL_traceback(L, L, msg, 1);
    return 1;
}

/* What run_serf filled, owned by a userdata so that nothing leaks when
 * pushing the results raises (the memory cap). */
static int out_gc(lua_State *L)
{
    struct run_serf_out *o = lua_touserdata(L, 1);
    buf_free(&o->out);
    buf_free(&o->log);
    return 0;
}

/* Member line of a {name, addr, role, tags} table, escaped as Serf does
 * (eventClean: TAB and LF). The line is pushed. A luaL_Buffer wants nothing
 * above it when it grows, so the tags ("k=v,k2=v2") are joined first. */
static void push_member_line(lua_State *L, int idx)
{
    static const char *const fields[] = {"name", "addr", "role"};
    int top = lua_gettop(L);
    lua_getfield(L, idx, "tags"); /* top+1 */
    lua_pushliteral(L, "");       /* top+2: the tags joined so far */
    if (lua_istable(L, top + 1)) {
        lua_pushnil(L);
        while (lua_next(L, top + 1)) { /* key top+3, value top+4 */
            lua_pushvalue(L, top + 3); /* tostring must not change the key */
            const char *k = lua_tostring(L, -1), *v = lua_tostring(L, top + 4);
            if (!k || !v)
                luaL_error(L, "T.event: member tags are strings");
            lua_pushfstring(L, "%s%s%s=%s", lua_tostring(L, top + 2),
                            lua_rawlen(L, top + 2) ? "," : "", k, v);
            lua_replace(L, top + 2);
            lua_pop(L, 2); /* the copy and the value; the key stays for lua_next */
        }
    }
    lua_remove(L, top + 1);       /* the tags, joined, at top+1 */
    for (int f = 0; f < 3; f++) { /* top+2 .. top+4, kept on the stack while in use */
        lua_getfield(L, idx, fields[f]);
        if (!lua_tostring(L, -1)) {
            if (f < 2)
                luaL_error(L, "T.event: a member needs %s", fields[f]);
            lua_pop(L, 1);
            lua_pushliteral(L, "");
        }
    }
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    for (int f = 0; f < 3; f++) {
        size_t n;
        const char *s = lua_tolstring(L, top + 2 + f, &n);
        for (size_t i = 0; i < n; i++) {
            if (s[i] == '\t')
                luaL_addstring(&b, "\\t");
            else if (s[i] == '\n')
                luaL_addstring(&b, "\\n");
            else
                luaL_addchar(&b, s[i]);
        }
        luaL_addchar(&b, '\t');
    }
    luaL_addstring(&b, lua_tostring(L, top + 1));
    luaL_pushresult(&b);
    lua_replace(L, top + 1);
    lua_settop(L, top + 1);
}

/* T.event{type=, name=, payload=, tags=, members=, self=, ltime=}:
 * {out = what Serf receives, code = exit code, log = {lines}}. */
static int h_event(lua_State *L)
{
    struct tctx *t = ctx_of(L);
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_settop(L, 1);
    struct run_serf s = {
        .log_fd = -1, .bundle_dir = t->bundle_dir, .state_dir = t->state_dir, .unsigned_ok = true};

    lua_getfield(L, 1, "type"); /* 2 */
    int type = lua_type(L, 2) == LUA_TSTRING ? event_type_parse(lua_tostring(L, 2)) : -1;
    luaL_argcheck(L, type >= 0 && type != EV_TICK, 1,
                  "type is member-join, member-leave, member-failed, member-update, "
                  "member-reap, user or query");
    s.type = (enum event_type)type;
    lua_getfield(L, 1, "name"); /* 3 */
    s.name = lua_tostring(L, 3);
    luaL_argcheck(L, s.name || (type != EV_USER && type != EV_QUERY), 1,
                  "a user event or query needs a name");
    lua_getfield(L, 1, "self"); /* 4 */
    s.self = lua_tostring(L, 4);
    lua_getfield(L, 1, "ltime"); /* 5 */
    if (!lua_isnil(L, 5)) {
        luaL_argcheck(L, lua_isinteger(L, 5) && lua_tointeger(L, 5) >= 0, 1,
                      "ltime is an integer >= 0");
        s.ltime = lua_tostring(L, 5);
    }

    luaL_Buffer in;                /* the payload, then the member lines: stdin */
    lua_getfield(L, 1, "payload"); /* 6 */
    lua_getfield(L, 1, "members"); /* 7 */
    lua_getfield(L, 1, "tags");    /* 8 */
    luaL_argcheck(L, lua_isnil(L, 6) || lua_type(L, 6) == LUA_TSTRING, 1, "payload is a string");
    luaL_argcheck(L, lua_isnil(L, 7) || lua_istable(L, 7), 1, "members is a list");
    luaL_argcheck(L, lua_isnil(L, 8) || lua_istable(L, 8), 1, "tags is a table of strings");
    luaL_buffinit(L, &in);
    if (!lua_isnil(L, 6)) {
        lua_pushvalue(L, 6);
        luaL_addvalue(&in);
    }
    for (lua_Integer i = 1; !lua_isnil(L, 7) && lua_geti(L, 7, i) != LUA_TNIL; i++) {
        if (lua_istable(L, -1)) {
            push_member_line(L, lua_gettop(L));
            lua_remove(L, -2);
        } else if (lua_type(L, -1) != LUA_TSTRING) {
            return luaL_error(L, "T.event: a member is a line or {name, addr, role, tags}");
        }
        luaL_addvalue(&in);
        luaL_addchar(&in, '\n');
    }
    if (!lua_isnil(L, 7))
        lua_pop(L, 1);    /* the nil that ended the list */
    luaL_pushresult(&in); /* 9 */
    size_t inlen;
    s.payload = lua_tolstring(L, 9, &inlen);
    s.payload_len = inlen;

    /* The tags as "k=v", anchored in a table (10), pointed to from a
     * userdata (11): all of it Lua's memory, so a raise leaks nothing. */
    lua_newtable(L);
    size_t ntags = 0;
    for (int pass = 0; pass < 2 && !lua_isnil(L, 8); pass++) {
        const char **arr = NULL;
        if (pass == 1)
            arr = lua_newuserdatauv(L, (ntags ? ntags : 1) * sizeof *arr, 0);
        size_t i = 0;
        lua_pushnil(L);
        while (lua_next(L, 8)) {
            lua_pushvalue(L, -2);
            const char *k = lua_tostring(L, -1), *v = lua_tostring(L, -2);
            luaL_argcheck(L, k && v && *k && !strchr(k, '='), 1, "tags are k = \"v\" strings");
            if (pass == 0) {
                ntags++;
            } else {
                lua_pushfstring(L, "%s=%s", k, v);
                arr[i] = lua_tostring(L, -1);
                lua_rawseti(L, 10, (lua_Integer)++i);
            }
            lua_pop(L, 2);
        }
        s.tags = arr;
        s.ntags = pass == 1 ? ntags : 0;
    }

    struct run_serf_out *o = lua_newuserdatauv(L, sizeof *o, 0);
    memset(o, 0, sizeof *o);
    if (luaL_newmetatable(L, "serfhand.test.out")) {
        lua_pushcfunction(L, out_gc);
        lua_setfield(L, -2, "__gc");
    }
    lua_setmetatable(L, -2);
    char err[256];
    if (run_serf(&s, o, err, sizeof err) < 0)
        return luaL_error(L, "T.event: %s", err);

    lua_createtable(L, 0, 3);
    lua_pushlstring(L, o->out.data ? o->out.data : "", o->out.len);
    lua_setfield(L, -2, "out");
    lua_pushinteger(L, o->code);
    lua_setfield(L, -2, "code");
    lua_newtable(L);
    lua_Integer n = 0;
    for (size_t i = 0; i < o->log.len;) {
        const char *p = o->log.data + i, *nl = memchr(p, '\n', o->log.len - i);
        size_t len = nl ? (size_t)(nl - p) : o->log.len - i;
        lua_pushlstring(L, p, len);
        lua_rawseti(L, -2, ++n);
        i += len + 1;
    }
    lua_setfield(L, -2, "log");
    buf_free(&o->out); /* now, not at the next collection */
    buf_free(&o->log);
    return 1;
}

static const luaL_Reg host_funcs[] = {
    {"event", h_event},         {"file_failed", h_file_failed},
    {"name", h_name},           {"report", h_report},
    {"result", h_result},       {"source", h_source},
    {"traceback", h_traceback}, {NULL, NULL},
};

/* Run one test file through the runner. -1: a system error (no bundle
 * directory), which ends the whole run. */
static int run_file(const struct config *cfg, struct tctx *t, const char *file, int timeout_ms)
{
    char err[4096];
    t->file = file;
    buf_free(&t->source);
    if (util_read_file(file, 16 * 1024 * 1024, &t->source, err, sizeof err) < 0) {
        record(t, NULL, false, err);
        return 0;
    }
    struct event ev;
    event_local(&ev, EV_TOOL, "test", NULL, "", NULL, 0);
    struct run_req r = {
        .cfg = cfg,
        .bundle_dir = t->bundle_dir,
        .verify = false, /* an author's working copy, read as it is */
        .mode = RUN_TOOL,
        .ev = &ev,
        .chunk = t_lib,
        .chunk_len = sizeof t_lib - 1,
        .chunk_name = "=serfhand test",
        .funcs = host_funcs,
        .funcs_ud = t,
        .deadline_ms = timeout_ms, /* 0: none */
        .deadline_name = "--timeout-ms",
        .stub_modules = true, /* tests replace host functions with stubs */
    };
    struct buf out = {0};
    enum run_result rc = run_exec(&r, &out, err, sizeof err);
    buf_free(&out);
    event_free(&ev);
    if (rc == RUN_SYSTEM) {
        fprintf(stderr, "serfhand test: %s\n", err);
        return -1;
    }
    if (rc != RUN_OK) /* the deadline, the memory cap, a refusal */
        record(t, NULL, false, err);
    return 0;
}

static int exec_test(const struct args *a, const struct config *unused)
{
    (void)unused;
    struct tctx t = {.fmt = args_has(a, "--tap") ? FMT_TAP : FMT_TEXT};
    struct config cfg;
    char err[512], *scratch = NULL;
    int rc = SH_EXIT_USAGE;
    if (args_has(a, "--json")) {
        if (t.fmt == FMT_TAP) {
            fprintf(stderr, "serfhand test: --tap and --json exclude each other\n");
            return SH_EXIT_USAGE;
        }
        t.fmt = FMT_JSON;
    }
    /* Loaded here, not by main: the state directory is this run's own. */
    if (config_load(&cfg, NULL, err, sizeof err) < 0) {
        fprintf(stderr, "serfhand: config: %s\n", err);
        config_free(&cfg);
        return SH_EXIT_USAGE;
    }
    log_open(&cfg, false);
    config_warn_exposed(&cfg);
    t.bundle_dir = args_str(a, "--bundle", ".");
    t.state_dir = args_str(a, "--state", NULL);
    if (t.state_dir) {
        fprintf(stderr, "serfhand test: state directory %s (--state): the tests write there\n",
                t.state_dir);
    } else if (!(t.state_dir = scratch = run_scratch_state("serfhand-test", err, sizeof err))) {
        fprintf(stderr, "serfhand test: %s\n", err);
        goto out;
    }
    config_set_str(&cfg, "state_dir", t.state_dir);
    int timeout_ms = (int)args_num(a, "--timeout-ms", 120000);
    if (t.fmt == FMT_TAP)
        printf("TAP version 13\n");
    for (size_t i = 0; i < a->npos; i++)
        if (run_file(&cfg, &t, a->pos[i], timeout_ms) < 0)
            goto out;
    switch (t.fmt) {
    case FMT_TEXT: printf("%d passed, %d failed\n", t.pass, t.fail); break;
    case FMT_TAP: printf("1..%d\n# %d passed, %d failed\n", t.n, t.pass, t.fail); break;
    case FMT_JSON:
        printf("{\"passed\":%d,\"failed\":%d,\"tests\":[%s],\"reports\":[%s]}\n", t.pass, t.fail,
               t.tests.data ? t.tests.data : "", t.reports.data ? t.reports.data : "");
        break;
    }
    rc = t.fail ? SH_EXIT_FAIL : SH_EXIT_OK;
out:
    run_scratch_remove(scratch);
    free(scratch);
    buf_free(&t.source);
    buf_free(&t.tests);
    buf_free(&t.reports);
    log_close();
    config_free(&cfg);
    return rc;
}

static const struct cmd_opt opts[] = {
    {.name = "--bundle",
     .kind = OPT_STR,
     .arg = "DIR",
     .help = "the bundle whose handlers and lua/ modules the tests use, read unsigned "
             "(default: ., the current directory)"},
    {.name = "--state",
     .kind = OPT_STR,
     .arg = "DIR",
     .help = "the state directory (default: a scratch one, removed at exit; never the node's)"},
    {.name = "--timeout-ms",
     .kind = OPT_INT,
     .arg = "N",
     .help = "the deadline of each file (default 120000; 0: none)",
     .min = 0,
     .max = INT32_MAX},
    {.name = "--tap", .kind = OPT_FLAG, .help = "TAP version 13 output"},
    {.name = "--json", .kind = OPT_FLAG, .help = "one JSON object: passed, failed, tests, reports"},
    {NULL},
};

const struct cmd_entry cmd_test_entry = {
    .name = "test",
    .summary = "run Lua test files in the handler sandbox (global T; see docs/authors.md)",
    .opts = opts,
    .operands = "FILE...",
    .min_operands = 1,
    .max_operands = -1,
    .description =
        "Each file runs in the sandbox handlers get, with a global T: T.test(name, fn),\n"
        "T.eq(got, want [, msg]), T.ok(v [, msg]), T.raises(fn [, pattern [, msg]]),\n"
        "T.report(text), and T.event{type=, name=, payload=, tags=, members=, self=,\n"
        "ltime=} and T.query{name=, payload=, ...}, which run `serfhand handle` in a child\n"
        "as Serf would and return {out = what Serf receives, code = exit code, log =\n"
        "{lines}}. Exit 0 when every test passed, 1 when one failed, 2 usage.",
    .exits = "  0 every test passed\n"
             "  1 a test failed, or a test file cannot be read or ran past --timeout-ms\n"
             "  2 usage, configuration, the bundle directory cannot be read",
    .exec = exec_test,
    .needs_config = false, /* loaded by exec_test, with its own state_dir */
};
