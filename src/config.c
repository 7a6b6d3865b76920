/*
 * config.c: the configuration file. It is Lua table syntax read as data: the
 * chunk runs text-only in an empty environment under an instruction budget,
 * and every key it sets is checked against the schema below. An unknown key
 * or a wrong type is an error that names the key and its line in the file;
 * so is a trust.keys entry that is no public key, or a threshold no set of
 * the listed keys could meet. Used by main.c and cmd_handle.c.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <lauxlib.h>
#include <lualib.h>
#include <sodium.h>

#include "serfhand.h"

#define MB (1024LL * 1024)

/* Every key the file may set. Keep sorted by section; docs and the sample
 * config (serfhand.conf.sample) list the same keys. */
static const struct cfg_item schema[] = {
    {"bundle", CFG_STR, "", 0, 0, 0, "active bundle directory (default <state_dir>/current)"},
    {"state_dir", CFG_STR, "/var/lib/serfhand", 0, 0, 0, "state: database, bundles"},

    {"trust.keys", CFG_STRLIST, NULL, 0, 0, 0, "minisign public keys: files or RW... strings"},
    {"trust.threshold", CFG_INT, NULL, 1, 1, 64, "distinct trusted keys that must sign"},

    {"limits.memory_mb", CFG_INT, NULL, 64, 1, 4096, "Lua heap cap per run"},
    {"limits.event_ms", CFG_INT, NULL, 2000, 10, 600000, "deadline of an event handler"},
    {"limits.query_ms", CFG_INT, NULL, 1000, 10, 600000, "deadline of a query handler"},
    {"limits.tick_ms", CFG_INT, NULL, 10000, 10, 600000, "deadline of `serfhand tick`"},
    {"limits.grace_ms", CFG_INT, NULL, 100, 10, 60000, "after a deadline, before the process ends"},
    {"limits.response_bytes", CFG_INT, NULL, 900, 0, 8192, "largest query response"},
    {"limits.file_bytes", CFG_INT, NULL, 1 * MB, 1024, 256 * MB, "largest bundle file"},
    {"limits.stdin_bytes", CFG_INT, NULL, 64 * 1024, 1024, 16 * MB, "largest event payload read"},

    {"log.target", CFG_STR, "syslog", 0, 0, 0, "syslog, stderr, or a file path"},
    {"log.level", CFG_STR, "info", 0, 0, 0, "debug, info, warn or error"},
    {"log.format", CFG_STR, "text", 0, 0, 0,
     "text, or json: one JSON object per line (ts, level, pid, event, bundle, msg)"},

    {"metrics.enabled", CFG_BOOL, NULL, 0, 0, 0,
     "count events, outcomes, durations and limit hits for `serfhand metrics`"},
    {"metrics.textfile", CFG_STR, "", 0, 0, 0,
     "tick writes the metrics here (absolute path ending in .prom: node_exporter's textfile "
     "collector); \"\" = not written"},

    {"serf.rpc_addr", CFG_STR, "", 0, 0, 0,
     "agent RPC host:port (default $SERF_RPC_ADDR, 127.0.0.1:7373)"},
    {"serf.rpc_auth", CFG_STR, "", 0, 0, 0, "agent RPC token (default $SERF_RPC_AUTH)"},
    {"serf.timeout_ms", CFG_INT, NULL, 2000, 10, 600000, "RPC connect and reply timeout"},

    {"factomd.url", CFG_STR, "http://127.0.0.1:8088/v2", 0, 0, 0, "factomd JSON-RPC v2 endpoint"},
    {"factomd.user", CFG_STR, "", 0, 0, 0,
     "basic auth user (\"\": FactomdRpcUser of factomd.conf)"},
    {"factomd.password", CFG_STR, "", 0, 0, 0,
     "basic auth password (with user \"\": FactomdRpcPass of factomd.conf)"},
    {"factomd.timeout_ms", CFG_INT, NULL, 800, 10, 600000, "per-call timeout"},
    {"factomd.max_response_bytes", CFG_INT, NULL, 4 * MB, 1024, 256 * MB, "largest reply"},
    {"factomd.conf", CFG_STR, "/var/lib/docker/volumes/factom_keys/_data/factomd.conf", 0, 0, 0,
     "factomd.conf holding this node's identity"},
    {"factomd.network", CFG_STR, "MAIN", 0, 0, 0, "network name carried in envelopes"},
    {"factomd.restart", CFG_STRLIST, NULL, 0, 0, 0, "restart command argv"},
    {"factomd.authorities", CFG_STRLIST, NULL, 0, 0, 0,
     "pinned authority set, \"CHAINID:SIGNINGKEY\" (hex) each; empty = ask factomd"},
    {"factomd.authset_timeout_ms", CFG_INT, NULL, 5000, 10, 600000,
     "per-call timeout of tick's authority-set refresh (diagnostics is slow)"},
    {"factomd.tls.ca_file", CFG_STR, "", 0, 0, 0,
     "https: CA bundle (PEM) to trust, e.g. factomd's own certificate"},
    {"factomd.tls.pin", CFG_STR, "", 0, 0, 0,
     "https: pinned public key, \"sha256//<base64>\" (alone: for a self-signed certificate)"},

    {"reboot.stall_minutes", CFG_INT, NULL, 30, 1, 100000,
     "factomd minutes (block time / 10) without a new minute = sick"},
    {"reboot.auto_propose", CFG_BOOL, NULL, 0, 0, 0, "tick proposes when this authority is sick"},
    {"reboot.cooldown_minutes", CFG_INT, NULL, 30, 0, 100000, "no second restart within"},
    {"reboot.followers", CFG_BOOL, NULL, 0, 0, 0, "followers restart on a decision too"},
    {"reboot.delay_seconds", CFG_INT, NULL, 300, 0, 86400, "proposed restart time: now + this"},
    {"reboot.ttl_minutes", CFG_INT, NULL, 15, 1, 60, "a proposal's lifetime"},
    {"reboot.log", CFG_STR, "", 0, 0, 0, "log file of the detached restart executor"},
    {"reboot.health_max_age_seconds", CFG_INT, NULL, 90, 0, 3600,
     "a vote may rest on tick's \"sick\" record this old; 0 = always ask factomd"},
    {"reboot.quorum", CFG_INT, NULL, 0, 0, 1000,
     "votes that decide; 0 = a majority (floor(n/2)+1); never below a majority"},
    {"reboot.min_authorities", CFG_INT, NULL, 3, 1, 1000,
     "refuse an authority set from factomd smaller than this (a pinned set is exempt)"},
    {"reboot.at_min_seconds", CFG_INT, NULL, 20, 1, 3600,
     "a proposal's at: at least this after its iat"},
    {"reboot.at_max_seconds", CFG_INT, NULL, 600, 1, 3600,
     "a proposal's at: at most this after its iat; also the shortest cooldown"},

    {"proc.allow", CFG_STRLIST, NULL, 0, 0, 0,
     "absolute paths of the executables proc.run/proc.spawn may start (factomd.restart: implied)"},
    {"proc.logs", CFG_STRLIST, NULL, 0, 0, 0,
     "absolute paths of the files proc.spawn may append a child's output to (reboot.log: "
     "implied)"},
    {"proc.env", CFG_STRLIST, NULL, 0, 0, 0,
     "variables passed from serfhand's environment to children (empty: PATH HOME LANG LC_ALL TZ "
     "SERF_RPC_ADDR)"},

    {"update.auto", CFG_BOOL, NULL, 0, 0, 0, "install announced bundles automatically"},
    {"update.keep", CFG_INT, NULL, 3, 2, 100, "bundles kept in <state_dir>/bundles"},
    {"update.max_bytes", CFG_INT, NULL, 16 * MB, 1024, 1024 * MB, "largest download"},
    {"update.timeout_ms", CFG_INT, NULL, 30000, 100, 3600000, "per-file download time cap"},
    {"update.sources", CFG_STRLIST, NULL, 0, 0, 0,
     "URL prefixes an announced update may come from (https://...); empty = none"},
    {"update.allow_http", CFG_BOOL, NULL, 0, 0, 0,
     "allow http:// prefixes in update.sources (no transport security)"},
    {NULL, CFG_STR, NULL, 0, 0, 0, NULL},
};

const struct cfg_item *config_schema(void)
{
    return schema;
}

bool config_secret(const char *path)
{
    static const char *const secrets[] = {"factomd.password", "serf.rpc_auth", NULL};

    for (int i = 0; secrets[i]; i++)
        if (strcmp(path, secrets[i]) == 0)
            return true;
    return false;
}

void config_warn_exposed(const struct config *c)
{
    struct stat st;
    const char *held = NULL;

    if (c->file == NULL || stat(c->file, &st) < 0 || !(st.st_mode & (S_IRGRP | S_IROTH)))
        return;
    for (int i = 0; schema[i].path && !held; i++)
        if (config_secret(schema[i].path) && c->v[i].set && c->v[i].str && *c->v[i].str)
            held = schema[i].path;
    if (held)
        log_msg(LOG_LVL_WARN,
                "config: %s holds a secret (%s) but is readable by group or others "
                "(mode %04o); run chmod 600 on it",
                c->file, held, (unsigned)(st.st_mode & 07777));
}

static int schema_find(const char *path)
{
    for (int i = 0; schema[i].path; i++)
        if (strcmp(schema[i].path, path) == 0)
            return i;
    return -1;
}

/* True when path is a section ("trust" for "trust.keys"). */
static bool schema_is_section(const char *path)
{
    size_t n = strlen(path);
    for (int i = 0; schema[i].path; i++)
        if (strncmp(schema[i].path, path, n) == 0 && schema[i].path[n] == '.')
            return true;
    return false;
}

const struct cfg_value *config_value(const struct config *c, size_t i)
{
    return &c->v[i];
}

static const struct cfg_value *get(const struct config *c, const char *path, enum cfg_type t)
{
    int i = schema_find(path);
    if (i < 0 || schema[i].type != t) {
        fprintf(stderr, "serfhand: internal: no config key %s of that type\n", path);
        abort();
    }
    return &c->v[i];
}

const char *config_str(const struct config *c, const char *path)
{
    return get(c, path, CFG_STR)->str;
}

void config_set_str(struct config *c, const char *path, const char *value)
{
    struct cfg_value *v = &c->v[get(c, path, CFG_STR) - c->v];
    free(v->str);
    v->str = xstrdup(value);
}

long long config_int(const struct config *c, const char *path)
{
    return get(c, path, CFG_INT)->num;
}

bool config_bool(const struct config *c, const char *path)
{
    return get(c, path, CFG_BOOL)->num != 0;
}

char *const *config_list(const struct config *c, const char *path, size_t *n)
{
    const struct cfg_value *v = get(c, path, CFG_STRLIST);
    *n = v->nlist;
    return v->list;
}

static void set_defaults(struct config *c)
{
    size_t n = 0;
    while (schema[n].path)
        n++;
    c->v = calloc(n, sizeof *c->v);
    if (!c->v)
        c->v = xmalloc(0); /* xmalloc exits with a message */
    for (size_t i = 0; i < n; i++) {
        c->v[i].num = schema[i].defint;
        if (schema[i].type == CFG_STR)
            c->v[i].str = xstrdup(schema[i].defstr);
    }
}

/* --- reading the file -------------------------------------------------- */

struct reader {
    const char *text; /* the file, for finding the line of a nested key */
    char *err;
    size_t errlen;
    const char *file;
};

/* The line of `key =` at or after line `from`: nested keys carry no line
 * information once the chunk has run, so the text is searched. */
static int find_line(const char *text, const char *key, int from)
{
    int line = 1;
    size_t klen = strlen(key);
    for (const char *p = text; *p; p++) {
        if (line >= from && strncmp(p, key, klen) == 0 &&
            (p == text || !(p[-1] == '_' || (p[-1] >= 'a' && p[-1] <= 'z') ||
                            (p[-1] >= 'A' && p[-1] <= 'Z') || (p[-1] >= '0' && p[-1] <= '9')))) {
            const char *q = p + klen;
            while (*q == ' ' || *q == '\t')
                q++;
            if (*q == '=' && q[1] != '=')
                return line;
        }
        if (*p == '\n')
            line++;
    }
    return 0;
}

/* The offset of the first byte of line `line` (1-based) in text. */
static size_t line_offset(const char *text, int line)
{
    const char *p = text;
    for (int l = 1; l < line && *p; p++)
        if (*p == '\n')
            l++;
    return (size_t)(p - text);
}

/* The line of the first string literal holding exactly s at or after offset
 * *at, which then moves past it, so that a value listed twice finds its
 * second place. A value written with escapes is not found: then `line` (where
 * its list starts) is the best answer. */
static int find_literal(const char *text, const char *s, size_t *at, int line)
{
    size_t n = strlen(s);
    for (const char *p = text + *at; n && (p = strstr(p, s)); p++) {
        if (p > text && (p[-1] == '"' || p[-1] == '\'') && p[n] == p[-1]) {
            int l = 1;
            for (const char *q = text; q < p; q++)
                l += *q == '\n';
            *at = (size_t)(p - text) + n + 1;
            return l;
        }
    }
    return line;
}

static const char *lua_type_word(enum cfg_type t)
{
    switch (t) {
    case CFG_STR: return "a string";
    case CFG_INT: return "an integer";
    case CFG_BOOL: return "a boolean";
    case CFG_STRLIST: return "a list of strings";
    }
    return "?";
}

/* Check the value at the top of L against schema item i and store it. */
static int take_value(struct config *c, lua_State *L, int i, const struct reader *r, int line)
{
    const struct cfg_item *it = &schema[i];
    struct cfg_value *v = &c->v[i];
    int t = lua_type(L, -1);
    bool ok = false;
    /* ["trust.keys"] = ... and trust = {keys = ...} in one file name one
     * setting twice; which wins would depend on table order, and a list
     * taken twice would overrun the first allocation: refuse. */
    if (v->set) {
        util_errf(r->err, r->errlen, "%s:%d: %s is set twice (also line %d)", r->file, line,
                  it->path, v->line);
        return -1;
    }
    switch (it->type) {
    case CFG_STR:
        if (t == LUA_TSTRING) {
            free(v->str);
            v->str = xstrdup(lua_tostring(L, -1));
            ok = strlen(v->str) == lua_rawlen(L, -1); /* no NUL inside */
        }
        break;
    case CFG_INT:
        if (lua_isinteger(L, -1)) {
            lua_Integer n = lua_tointeger(L, -1);
            if (n < it->min || n > it->max) {
                util_errf(r->err, r->errlen, "%s:%d: %s must be between %lld and %lld, not %lld",
                          r->file, line, it->path, it->min, it->max, (long long)n);
                return -1;
            }
            v->num = n;
            ok = true;
        }
        break;
    case CFG_BOOL:
        if (t == LUA_TBOOLEAN) {
            v->num = lua_toboolean(L, -1);
            ok = true;
        }
        break;
    case CFG_STRLIST:
        if (t == LUA_TTABLE) {
            size_t n = lua_rawlen(L, -1), count = 0;
            lua_pushnil(L);
            while (lua_next(L, -2)) {
                count++;
                lua_pop(L, 1);
            }
            if (count != n)
                break; /* not a sequence */
            v->list = calloc(n + 1, sizeof *v->list);
            v->lines = calloc(n + 1, sizeof *v->lines);
            if (!v->list || !v->lines)
                return -1;
            ok = true;
            size_t at = line_offset(r->text, line);
            for (size_t k = 1; k <= n; k++) {
                if (lua_rawgeti(L, -1, (lua_Integer)k) != LUA_TSTRING) {
                    ok = false;
                } else {
                    v->lines[v->nlist] = find_literal(r->text, lua_tostring(L, -1), &at, line);
                    v->list[v->nlist++] = xstrdup(lua_tostring(L, -1));
                }
                lua_pop(L, 1);
            }
        }
        break;
    }
    if (!ok) {
        util_errf(r->err, r->errlen, "%s:%d: %s must be %s, not %s", r->file, line, it->path,
                  lua_type_word(it->type),
                  t == LUA_TNUMBER && !lua_isinteger(L, -1) ? "a fractional number"
                                                            : lua_typename(L, t));
        return -1;
    }
    v->set = true;
    v->line = line;
    return 0;
}

/* Walk the table at the top of L (prefix "" = top level). */
static int take_table(struct config *c, lua_State *L, const char *prefix, const struct reader *r,
                      int base_line)
{
    lua_pushnil(L);
    while (lua_next(L, -2)) {
        char path[128];
        int line = base_line;
        if (lua_type(L, -2) != LUA_TSTRING) {
            util_errf(r->err, r->errlen, "%s:%d: %s%skeys must be names, not %s", r->file, line,
                      prefix, *prefix ? ": " : "", lua_typename(L, lua_type(L, -2)));
            return -1;
        }
        const char *key = lua_tostring(L, -2);
        snprintf(path, sizeof path, "%s%s%s", prefix, *prefix ? "." : "", key);
        if (*prefix) {
            line = find_line(r->text, key, base_line);
            if (!line)
                line = base_line;
        } else {
            /* The chunk reports where an assignment ends; its start is
             * where `key =` first appears. */
            lua_getfield(L, LUA_REGISTRYINDEX, "serfhand.config.lines");
            lua_getfield(L, -1, key);
            line = (int)lua_tointeger(L, -1);
            lua_pop(L, 2);
            int at = find_line(r->text, key, 1);
            if (at)
                line = at;
        }
        int i = schema_find(path);
        if (i >= 0) {
            if (take_value(c, L, i, r, line) < 0)
                return -1;
        } else if (schema_is_section(path)) {
            if (!lua_istable(L, -1)) {
                util_errf(r->err, r->errlen, "%s:%d: %s must be a table of settings, not %s",
                          r->file, line, path, lua_typename(L, lua_type(L, -1)));
                return -1;
            }
            if (take_table(c, L, path, r, line) < 0)
                return -1;
        } else {
            util_errf(r->err, r->errlen, "%s:%d: unknown key %s", r->file, line, path);
            return -1;
        }
        lua_pop(L, 1);
    }
    return 0;
}

/* __newindex of the empty environment: store the key and its line. */
static int env_newindex(lua_State *L)
{
    lua_Debug ar;
    int line = 0;
    if (lua_getstack(L, 1, &ar) && lua_getinfo(L, "l", &ar))
        line = ar.currentline;
    lua_getfield(L, LUA_REGISTRYINDEX, "serfhand.config.lines");
    lua_pushvalue(L, 2);
    lua_pushinteger(L, line);
    lua_rawset(L, -3);
    lua_pop(L, 1);
    lua_rawset(L, 1);
    return 0;
}

static void budget_hook(lua_State *L, lua_Debug *ar)
{
    (void)ar;
    luaL_error(L, "configuration takes too long to evaluate (it must be plain data)");
}

static int read_file(struct config *c, const char *path, char *err, size_t errlen)
{
    struct buf text = {0};
    int rc = -1;
    lua_State *L = NULL;
    if (util_read_regular(path, 1024 * 1024, &text, err, errlen) != UTIL_OPEN_OK)
        goto out;
    L = luaL_newstate();
    if (!L) {
        util_errf(err, errlen, "%s: cannot create a Lua state", path);
        goto out;
    }
    char chunk[512];
    snprintf(chunk, sizeof chunk, "@%s", path);
    if (luaL_loadbufferx(L, text.data, text.len, chunk, "t") != LUA_OK) {
        util_errf(err, errlen, "%s", lua_tostring(L, -1));
        goto out;
    }
    lua_newtable(L);
    lua_setfield(L, LUA_REGISTRYINDEX, "serfhand.config.lines");
    lua_newtable(L); /* the empty environment */
    lua_newtable(L);
    lua_pushcfunction(L, env_newindex);
    lua_setfield(L, -2, "__newindex");
    lua_setmetatable(L, -2);
    lua_pushvalue(L, -1);
    lua_insert(L, -3);        /* env, chunk, env */
    lua_setupvalue(L, -2, 1); /* chunk's _ENV = env */
    lua_sethook(L, budget_hook, LUA_MASKCOUNT, 1000000);
    if (lua_pcall(L, 0, 1, 0) != LUA_OK) {
        util_errf(err, errlen, "%s", lua_tostring(L, -1));
        goto out;
    }
    lua_sethook(L, NULL, 0, 0);
    if (lua_istable(L, -1)) {
        /* `return { ... }` style: keys of the returned table. */
        lua_remove(L, -2);
    } else if (!lua_isnil(L, -1)) {
        util_errf(err, errlen, "%s: the file must set keys or return a table, not a %s", path,
                  luaL_typename(L, -1));
        goto out;
    } else {
        lua_pop(L, 1);
    }
    struct reader r = {text.data, err, errlen, path};
    rc = take_table(c, L, "", &r, 1);
out:
    if (L)
        lua_close(L);
    buf_free(&text);
    return rc;
}

/* --- trust settings --------------------------------------------------- */

/* A trust.keys entry for a message: a path up to 160 bytes, an inline key
 * up to 20 (one that is a secret key, pasted by mistake, shows only its
 * header and salt), control bytes and non-ASCII as '?', "..." when cut. */
#define ENTRY_LABEL_MAX 168
static void entry_label(const char *e, char out[ENTRY_LABEL_MAX])
{
    size_t i = 0, max = strncmp(e, "RW", 2) == 0 ? 20 : 160;
    for (; i < max && e[i]; i++)
        out[i] = (char)(e[i] >= 0x20 && e[i] < 0x7f ? e[i] : '?');
    snprintf(out + i, ENTRY_LABEL_MAX - i, "%s", e[i] ? "..." : "");
}

/* Why text is not a public key file, in the words of the mistakes people
 * make: a secret key, or a file of the wrong shape (the parser's own words
 * otherwise). */
static void keyfile_problem(const char *text, size_t len, const char *parser, char *why,
                            size_t whylen)
{
    int lines = 0;
    for (size_t i = 0; i < len; i++)
        lines += text[i] == '\n';
    if (len && text[len - 1] != '\n')
        lines++;
    if (minisign_seckey_encrypted(text, len) >= 0)
        util_errf(why, whylen, "a secret key file, not a public key (list its .pub file)");
    else if (lines != 2 && !(lines == 1 && text[0] == 'R' && text[1] == 'W'))
        util_errf(why, whylen, "%d line%s, want 2 (an untrusted comment and the key)", lines,
                  lines == 1 ? "" : "s");
    else
        util_errf(why, whylen, "%s", parser);
}

/* One trust.keys entry, read as trust_keyset_load reads it: "RW..." is an
 * inline key, anything else the path of a .pub file. Relative paths are
 * refused: Serf starts handlers in its own working directory, not the one
 * `serfhand config` ran in. 0 with pk, or -1 with why. */
static int trust_entry(const char *e, struct minisign_pubkey *pk, char *why, size_t whylen)
{
    char sub[400];
    if (strncmp(e, "RW", 2) == 0) {
        if (minisign_pubkey_parse(pk, e, strlen(e), sub, sizeof sub) == 0)
            return 0;
        struct buf b = {0}; /* a secret key line is a 2-line file's second line */
        buf_printf(&b, "untrusted comment: \n%s\n", e);
        bool secret = minisign_seckey_encrypted(b.data, b.len) >= 0;
        sodium_memzero(b.data, b.len);
        buf_free(&b);
        util_errf(why, whylen, "taken for an inline key (it starts with RW): %s",
                  secret ? "a secret key, not a public key" : sub);
        return -1;
    }
    const char *as = "taken for a path (it does not start with RW)";
    if (e[0] != '/') {
        util_errf(why, whylen, "%s: not absolute (Serf runs serfhand in its own directory)", as);
        return -1;
    }
    struct buf b = {0};
    /* never blocks (a FIFO, a device): a regular file or a clear error */
    int rc = util_read_regular(e, 4096, &b, sub, sizeof sub) == UTIL_OPEN_OK ? 0 : -1;
    if (rc < 0) {
        util_errf(why, whylen, "%s: %s", as, sub);
    } else if ((rc = minisign_pubkey_parse(pk, b.data, b.len, sub, sizeof sub)) < 0) {
        char what[400];
        keyfile_problem(b.data, b.len, sub, what, sizeof what);
        util_errf(why, whylen, "%s: %s", as, what);
    }
    if (b.data)
        sodium_memzero(b.data, b.len); /* it may be a secret key */
    buf_free(&b);
    return rc;
}

/* trust.keys and trust.threshold, checked at load so that a typo fails as a
 * configuration error (exit 2) naming the entry, instead of every event being
 * refused at run time. An empty list is no trust root: nothing signed runs. */
/* proc.allow and proc.logs hold absolute paths only: a bare name would be a
 * PATH search (or a file relative to wherever serfhand runs) the operator did
 * not see (DESIGN 4b), so an operator's "systemctl" is an error here, not a
 * silent refusal at restart time. */
static int check_proc(const struct config *c, char *err, size_t errlen)
{
    static const char *const keys[] = {"proc.allow", "proc.logs"};
    for (size_t i = 0; i < sizeof keys / sizeof *keys; i++) {
        const struct cfg_value *v = get(c, keys[i], CFG_STRLIST);
        for (size_t k = 0; k < v->nlist; k++) {
            if (v->list[k][0] != '/') {
                char label[ENTRY_LABEL_MAX];
                entry_label(v->list[k], label);
                util_errf(err, errlen, "%s:%d: %s[%zu] \"%s\" is not an absolute path", c->file,
                          v->lines ? v->lines[k] : v->line, keys[i], k + 1, label);
                return -1;
            }
        }
    }
    return 0;
}

static int check_trust(const struct config *c, char *err, size_t errlen)
{
    const struct cfg_value *keys = &c->v[schema_find("trust.keys")];
    const struct cfg_value *thr = &c->v[schema_find("trust.threshold")];
    const char *file = c->file ? c->file : "(defaults)";
    if (keys->nlist == 0)
        return 0;
    struct minisign_pubkey *pk = xmalloc(keys->nlist * sizeof *pk);
    size_t distinct = 0, dup_of = 0, dup = 0;
    int rc = -1;
    for (size_t i = 0; i < keys->nlist; i++) {
        char why[600], label[ENTRY_LABEL_MAX];
        if (trust_entry(keys->list[i], &pk[i], why, sizeof why) < 0) {
            entry_label(keys->list[i], label);
            util_errf(err, errlen, "%s:%d: trust.keys[%zu] \"%s\": %s", file,
                      keys->lines ? keys->lines[i] : keys->line, i + 1, label, why);
            goto out;
        }
        size_t k = 0; /* distinct by the Ed25519 key: the key id is not signed */
        while (k < i && memcmp(pk[k].pk, pk[i].pk, sizeof pk[i].pk) != 0)
            k++;
        if (k == i)
            distinct++;
        else if (!dup)
            dup_of = k + 1, dup = i + 1;
    }
    if ((long long)distinct < thr->num) {
        char same[96] = "";
        if (dup)
            snprintf(same, sizeof same, " (entries %zu and %zu are the same key)", dup_of, dup);
        util_errf(err, errlen,
                  "%s:%d: trust.threshold is %lld%s, but trust.keys (line %d) holds %zu "
                  "distinct key%s%s: no bundle could ever verify",
                  file, thr->set ? thr->line : keys->line, thr->num,
                  thr->set ? "" : " (the default)", keys->line, distinct, distinct == 1 ? "" : "s",
                  same);
        goto out;
    }
    rc = 0;
out:
    free(pk);
    return rc;
}

/* update.sources, checked at load so that an operator's typo fails loudly:
 * each an http(s) URL with a host, printable, and http:// only with
 * update.allow_http. */
static int check_sources(const struct config *c, char *err, size_t errlen)
{
    const struct cfg_value *v = &c->v[schema_find("update.sources")];
    bool http_ok = config_bool(c, "update.allow_http");
    const char *file = c->file ? c->file : "(defaults)";
    for (size_t i = 0; i < v->nlist; i++) {
        const char *e = v->list[i], *why = NULL;
        size_t n = strlen(e), at = strncmp(e, "https://", 8) == 0  ? 8
                                   : strncmp(e, "http://", 7) == 0 ? 7
                                                                   : 0;
        for (size_t k = 0; k < n && !why; k++)
            if (e[k] <= 0x20 || e[k] > 0x7e || strchr("\"\\?#%@", e[k]))
                why = "holds a space, quote, backslash, ?, #, % or @";
        if (!at)
            why = "is not an https:// URL";
        else if (at == 7 && !http_ok)
            why = "is plain http: set update.allow_http = true to allow it";
        else if (n == at || e[at] == '/')
            why = "has no host";
        if (why) {
            char label[ENTRY_LABEL_MAX];
            entry_label(e, label);
            util_errf(err, errlen, "%s:%d: update.sources[%zu] \"%s\" %s", file,
                      v->lines ? v->lines[i] : v->line, i + 1, label, why);
            return -1;
        }
    }
    return 0;
}

/* log.level, log.format and metrics.textfile, checked at load so that a
 * typo names the value instead of silently logging at info, logging text
 * or writing nowhere. */
static int check_log_metrics(const struct config *c, char *err, size_t errlen)
{
    const struct cfg_value *l = &c->v[schema_find("log.level")];
    const struct cfg_value *f = &c->v[schema_find("log.format")];
    const struct cfg_value *t = &c->v[schema_find("metrics.textfile")];
    const char *file = c->file ? c->file : "(defaults)";
    char label[ENTRY_LABEL_MAX];
    if (strcmp(l->str, "debug") != 0 && strcmp(l->str, "info") != 0 &&
        strcmp(l->str, "warn") != 0 && strcmp(l->str, "error") != 0) {
        entry_label(l->str, label);
        util_errf(err, errlen, "%s:%d: log.level \"%s\" is not debug, info, warn or error", file,
                  l->line, label);
        return -1;
    }
    if (strcmp(f->str, "text") != 0 && strcmp(f->str, "json") != 0) {
        entry_label(f->str, label);
        util_errf(err, errlen, "%s:%d: log.format \"%s\" is not text or json", file, f->line,
                  label);
        return -1;
    }
    size_t n = strlen(t->str);
    if (n > 0 && (t->str[0] != '/' || n < 6 || strcmp(t->str + n - 5, ".prom") != 0 ||
                  t->str[n - 6] == '/')) {
        entry_label(t->str, label);
        util_errf(err, errlen,
                  "%s:%d: metrics.textfile \"%s\" is not an absolute path to a *.prom file", file,
                  t->line, label);
        return -1;
    }
    return 0;
}

int config_load(struct config *c, const char *path, char *err, size_t errlen)
{
    memset(c, 0, sizeof *c);
    set_defaults(c);
    const char *p = path;
    if (!p || !*p)
        p = getenv("SERFHAND_CONFIG");
    bool explicit = p && *p;
    if (!explicit)
        p = SH_DEFAULT_CONFIG;
    if (!explicit && access(p, F_OK) != 0 && errno == ENOENT)
        goto derived;
    c->file = xstrdup(p);
    if (read_file(c, p, err, errlen) < 0 || check_trust(c, err, errlen) < 0 ||
        check_proc(c, err, errlen) < 0 || check_sources(c, err, errlen) < 0 ||
        check_log_metrics(c, err, errlen) < 0)
        return -1;
derived:
    if (!*config_str(c, "bundle")) {
        struct buf b = {0};
        buf_printf(&b, "%s/current", config_str(c, "state_dir"));
        int i = schema_find("bundle");
        free(c->v[i].str);
        c->v[i].str = b.data;
    }
    return 0;
}

void config_free(struct config *c)
{
    if (!c->v)
        return;
    for (int i = 0; schema[i].path; i++) {
        free(c->v[i].str);
        for (size_t k = 0; k < c->v[i].nlist; k++)
            free(c->v[i].list[k]);
        free(c->v[i].list);
        free(c->v[i].lines);
    }
    free(c->v);
    free(c->file);
    c->v = NULL;
    c->file = NULL;
}
