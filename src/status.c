/*
 * status.c: a member's answer to query factomd-status, read as hostile bytes.
 * The answer is decoded by lua-cjson in a protected call and copied field by
 * field into bounded C values (names from a small alphabet, integers in
 * range); cmd_status.c prints and encodes only these values, never the
 * answer's own bytes. The same for answers to serfhand-check (check
 * --cluster); any other answer (`query`) is escaped for a terminal or JSON.
 * status_ask is the one query round `query` and `check --cluster` share.
 * Also used by the fuzz harness fuzz_status.c.
 */
#include <stddef.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

#include <lauxlib.h>

#include "serfhand.h"

#define HEIGHT_MAX (INT64_C(1) << 40)  /* far beyond any chain; keeps sums exact */
#define SECONDS_MAX (INT64_C(1) << 40) /* ~35,000 years */
#define MS_MAX (INT64_C(1) << 52)      /* year ~144,000 in unix ms */

enum field_kind { F_WORD, F_INT, F_BOOL, F_VERSION };

struct field {
    const char *key;
    enum field_kind kind;
    int64_t max; /* F_INT, F_VERSION: the range is 0..max */
    size_t off;  /* of the char[] (F_WORD), int64_t (F_INT, F_VERSION) or int (F_BOOL) */
};

#define OFF(m) offsetof(struct status_answer, m)
static const struct field fields[] = {
    {"role", F_WORD, 0, OFF(role)},
    {"state", F_WORD, 0, OFF(state)},
    {"sick", F_BOOL, 0, OFF(sick)},
    {"h", F_INT, HEIGHT_MAX, OFF(h)},
    {"saved", F_INT, HEIGHT_MAX, OFF(saved)},
    {"minute", F_INT, 10, OFF(minute)},
    {"stalled_s", F_INT, SECONDS_MAX, OFF(stalled_s)},
    {"bundle", F_VERSION, INT64_MAX, OFF(bundle)},
    {"last_restart", F_INT, MS_MAX, OFF(last_restart)},
    {"last_ok", F_BOOL, 0, OFF(last_ok)},
};
#define NFIELDS (sizeof fields / sizeof *fields)

/* A word is what the bundle's roles and states are made of: [a-z0-9_-]. */
static bool word_ok(const char *s, size_t n)
{
    if (n == 0 || n >= STATUS_WORD_MAX)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '_' ||
              s[i] == '-'))
            return false;
    return true;
}

/* A bundle version as a decimal string (some bundles send it so): 1-19 digits,
 * no sign, no leading zero, within 0..max. */
static bool version_string(const char *s, size_t n, int64_t max, int64_t *out)
{
    if (n == 0 || n > 19 || (n > 1 && s[0] == '0'))
        return false;
    int64_t v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9' || v > (max - (s[i] - '0')) / 10)
            return false;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return true;
}

/* The integer on top, if it is one in 0..max (a float never is). */
static bool int_in_range(lua_State *L, int64_t max, int64_t *out)
{
    if (!lua_isinteger(L, -1) || lua_tointeger(L, -1) < 0 || lua_tointeger(L, -1) > max)
        return false;
    *out = (int64_t)lua_tointeger(L, -1);
    return true;
}

/* Protected: the decoded answer at 1, the struct status_answer at 2 (light
 * userdata). Raises a message naming the first field that is wrong. */
static int read_fields(lua_State *L)
{
    struct status_answer *a = lua_touserdata(L, 2);
    if (!lua_istable(L, 1) || lua_getmetatable(L, 1) || lua_rawlen(L, 1) > 0) /* an array */
        return luaL_error(L, "not a JSON object");
    for (size_t i = 0; i < NFIELDS; i++) {
        const struct field *f = &fields[i];
        char *p = (char *)a + f->off;
        lua_pushstring(L, f->key);
        int t = lua_rawget(L, 1);
        if (t == LUA_TNIL) {
            lua_pop(L, 1);
            continue;
        }
        size_t n;
        const char *s;
        switch (f->kind) {
        case F_WORD:
            s = t == LUA_TSTRING ? lua_tolstring(L, -1, &n) : NULL;
            if (!s || !word_ok(s, n))
                return luaL_error(L, "field %s: not a short word", f->key);
            memcpy(p, s, n + 1);
            break;
        case F_BOOL:
            if (t != LUA_TBOOLEAN)
                return luaL_error(L, "field %s: not true or false", f->key);
            *(int *)p = lua_toboolean(L, -1);
            break;
        case F_VERSION:
            if (t == LUA_TSTRING) {
                s = lua_tolstring(L, -1, &n);
                if (!version_string(s, n, f->max, (int64_t *)p))
                    return luaL_error(L, "field %s: not a version", f->key);
            } else if (!int_in_range(L, f->max, (int64_t *)p)) {
                return luaL_error(L, "field %s: not a version", f->key);
            }
            break;
        case F_INT:
            if (!int_in_range(L, f->max, (int64_t *)p))
                return luaL_error(L, "field %s: not an integer in 0..%I", f->key,
                                  (lua_Integer)f->max);
            break;
        }
        lua_pop(L, 1);
    }
    return 0;
}

int status_answer_parse(lua_State *L, const char *s, size_t len, struct status_answer *a, char *err,
                        size_t errlen)
{
    *a = (struct status_answer){0};
    for (size_t i = 0; i < NFIELDS; i++) {
        char *p = (char *)a + fields[i].off;
        if (fields[i].kind == F_BOOL)
            *(int *)p = -1;
        else if (fields[i].kind != F_WORD)
            *(int64_t *)p = STATUS_ABSENT;
    }
    int top = lua_gettop(L);
    char jerr[160];
    if (ljson_decode(L, s, len, jerr, sizeof jerr) < 0) {
        util_errf(err, errlen, "not JSON");
        return -1;
    }
    lua_pushcfunction(L, read_fields);
    lua_insert(L, -2);
    lua_pushlightuserdata(L, a);
    int rc = lua_pcall(L, 2, 0, 0);
    if (rc != LUA_OK) {
        /* the message is ours (field names and limits), or a memory error */
        util_errf(err, errlen, "%s", rc == LUA_ERRRUN ? lua_tostring(L, -1) : "out of memory");
        *a = (struct status_answer){0};
    }
    lua_settop(L, top);
    return rc == LUA_OK ? 0 : -1;
}

void status_safe_text(struct buf *out, const char *s, size_t max)
{
    size_t i = 0;
    for (; i < max && s[i]; i++) {
        unsigned char c = (unsigned char)s[i];
        buf_add(out, c >= 0x20 && c < 0x7f ? (const char *)&s[i] : "?", 1);
    }
    if (s[i])
        buf_addstr(out, "...");
}

/* "-" for an absent integer, else the number with an optional suffix. */
static void cell_int(char *out, size_t n, int64_t v, const char *suffix)
{
    if (v == STATUS_ABSENT)
        snprintf(out, n, "-");
    else
        snprintf(out, n, "%lld%s", (long long)v, suffix);
}

void status_row_text(struct buf *out, const char *node, const struct status_answer *a,
                     const char *problem, int64_t now_ms)
{
    struct buf name = {0};
    status_safe_text(&name, node, 64);
    if (!a) {
        if (problem)
            buf_printf(out, "%-16s (bad answer: %s)\n", name.data, problem);
        else
            buf_printf(out, "%-16s (no answer)\n", name.data);
        buf_free(&name);
        return;
    }
    char h[24], saved[24], minute[24], stalled[24], bundle[24], last[64] = "-";
    cell_int(h, sizeof h, a->h, "");
    cell_int(saved, sizeof saved, a->saved, "");
    cell_int(minute, sizeof minute, a->minute, "");
    cell_int(stalled, sizeof stalled, a->stalled_s, "s");
    cell_int(bundle, sizeof bundle, a->bundle, "");
    if (a->last_restart != STATUS_ABSENT) {
        int64_t ago = now_ms - a->last_restart; /* both within 0..2^52: no overflow */
        if (ago >= 0)
            snprintf(last, sizeof last, "%llds ago%s", (long long)(ago / 1000),
                     a->last_ok == 1 ? " ok" : " failed");
        else
            snprintf(last, sizeof last, "in the future%s", a->last_ok == 1 ? " ok" : " failed");
    }
    buf_printf(out, "%-16s %-10s %-8s %8s %8s %3s %8s %-4s %-7s %s\n", name.data,
               a->role[0] ? a->role : "-", a->state[0] ? a->state : "-", saved, h, minute, stalled,
               a->sick < 0 ? "-"
               : a->sick   ? "yes"
                           : "no",
               bundle, last);
    buf_free(&name);
}

void status_row_json(struct buf *out, const struct status_answer *a, const char *problem)
{
    if (!a) {
        if (!problem) {
            buf_addstr(out, "null");
            return;
        }
        buf_addstr(out, "{\"error\":");
        util_json_str(out, problem);
        buf_addstr(out, "}");
        return;
    }
    const char *sep = "{";
    for (size_t i = 0; i < NFIELDS; i++) {
        const struct field *f = &fields[i];
        const char *p = (const char *)a + f->off;
        if (f->kind == F_WORD   ? !*p
            : f->kind == F_BOOL ? *(const int *)p < 0
                                : *(const int64_t *)p == STATUS_ABSENT)
            continue;
        buf_printf(out, "%s\"%s\":", sep, f->key);
        sep = ",";
        if (f->kind == F_WORD)
            util_json_str(out, p); /* a word: nothing to escape, but never spliced */
        else if (f->kind == F_BOOL)
            buf_addstr(out, *(const int *)p ? "true" : "false");
        else
            buf_printf(out, "%lld", (long long)*(const int64_t *)p);
    }
    buf_addstr(out, *sep == '{' ? "{}" : "}");
}

/* ------------------------------------------------- any member's answer */

/* The length of the valid UTF-8 sequence at p (at most n bytes), or 0:
 * no overlong forms, no surrogates, nothing above U+10FFFF. */
static size_t utf8_seq(const unsigned char *p, size_t n)
{
    if (p[0] < 0x80)
        return 1;
    size_t len = p[0] >= 0xc2 && p[0] <= 0xdf   ? 2
                 : p[0] >= 0xe0 && p[0] <= 0xef ? 3
                 : p[0] >= 0xf0 && p[0] <= 0xf4 ? 4
                                                : 0;
    if (!len || len > n)
        return 0;
    for (size_t i = 1; i < len; i++)
        if ((p[i] & 0xc0) != 0x80)
            return 0;
    if ((p[0] == 0xe0 && p[1] < 0xa0) || (p[0] == 0xed && p[1] > 0x9f) || /* overlong, surrogate */
        (p[0] == 0xf0 && p[1] < 0x90) || (p[0] == 0xf4 && p[1] > 0x8f))   /* overlong, > 10FFFF */
        return 0;
    return len;
}

bool status_utf8_valid(const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s;
    for (size_t i = 0; i < n;) {
        size_t k = utf8_seq(p + i, n - i);
        if (!k)
            return false;
        i += k;
    }
    return true;
}

void status_json_bytes(struct buf *out, const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s;
    buf_addstr(out, "\"");
    for (size_t i = 0; i < n;) {
        size_t k = utf8_seq(p + i, n - i);
        if (!k) {
            buf_addstr(out, "\\ufffd"); /* one per byte that is not UTF-8 */
            i++;
        } else if (p[i] == '"' || p[i] == '\\') {
            buf_printf(out, "\\%c", p[i]);
            i++;
        } else if (p[i] < 0x20 || p[i] == 0x7f) {
            buf_printf(out, "\\u%04x", p[i]);
            i++;
        } else {
            buf_add(out, p + i, k);
            i += k;
        }
    }
    buf_addstr(out, "\"");
}

void status_term_bytes(struct buf *out, const char *s, size_t n, size_t max)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;
    for (; i < n && i < max; i++) {
        unsigned char c = p[i];
        if (c == '\\')
            buf_addstr(out, "\\\\");
        else if (c == '\n')
            buf_addstr(out, "\\n");
        else if (c == '\t')
            buf_addstr(out, "\\t");
        else if (c == '\r')
            buf_addstr(out, "\\r");
        else if (c >= 0x20 && c < 0x7f)
            buf_add(out, &p[i], 1);
        else
            buf_printf(out, "\\x%02x", c); /* escape sequences, NUL, any non-ASCII */
    }
    if (i < n)
        buf_addstr(out, "...");
}

/* ------------------------------------------- answers to serfhand-check */

static bool hex64(const char *s, size_t n)
{
    if (n != 64)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return false;
    return true;
}

/* A failure code: [a-z_], 1-31 bytes (trust.c's names). */
static bool code_ok(const char *s, size_t n)
{
    if (n == 0 || n > 31)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || s[i] == '_'))
            return false;
    return true;
}

/* The array at the top, or nil: each element a string passing keep (or
 * any string when keep is NULL), the first STATUS_CHECK_PROBLEMS kept. */
static size_t read_strings(lua_State *L, const char *key, bool (*keep)(const char *, size_t),
                           struct util_lines *out)
{
    int t = lua_type(L, -1);
    if (t == LUA_TNIL)
        return 0;
    if (t != LUA_TTABLE || lua_getmetatable(L, -1))
        return (size_t)luaL_error(L, "field %s: not an array", key);
    lua_Integer n = (lua_Integer)lua_rawlen(L, -1);
    lua_pushnil(L);
    lua_Integer count = 0;
    while (lua_next(L, -2)) { /* every key must be 1..n: no object posing as an array */
        count++;
        if (!lua_isinteger(L, -2) || lua_tointeger(L, -2) < 1 || lua_tointeger(L, -2) > n ||
            lua_type(L, -1) != LUA_TSTRING)
            return (size_t)luaL_error(L, "field %s: not an array of strings", key);
        lua_pop(L, 1);
    }
    if (count != n)
        return (size_t)luaL_error(L, "field %s: not an array of strings", key);
    for (lua_Integer i = 1; i <= n && i <= STATUS_CHECK_PROBLEMS; i++) {
        size_t len;
        lua_rawgeti(L, -1, i);
        const char *s = lua_tolstring(L, -1, &len);
        if (keep && !keep(s, len))
            return (size_t)luaL_error(L, "field %s: not a code", key);
        util_line_add(out, "%.*s", (int)(len > STATUS_CHECK_TEXT ? STATUS_CHECK_TEXT : len), s);
        lua_pop(L, 1);
    }
    return (size_t)n;
}

/* Protected: the decoded answer at 1, the struct status_check at 2. */
static int read_check(lua_State *L)
{
    struct status_check *c = lua_touserdata(L, 2);
    size_t n;
    const char *s;
    if (!lua_istable(L, 1) || lua_getmetatable(L, 1) || lua_rawlen(L, 1) > 0)
        return luaL_error(L, "not a JSON object");
    lua_getfield(L, 1, "ok"); /* a plain table: no metamethod runs */
    if (!lua_isboolean(L, -1))
        return luaL_error(L, "field ok: not true or false");
    c->ok = lua_toboolean(L, -1);
    lua_pop(L, 1);
    int t = lua_getfield(L, 1, "bundle");
    s = t == LUA_TSTRING ? lua_tolstring(L, -1, &n) : NULL;
    if (t != LUA_TNIL && (!s || n >= sizeof c->bundle || !util_valid_name(s)))
        return luaL_error(L, "field bundle: not a bundle name");
    if (s)
        memcpy(c->bundle, s, n + 1);
    lua_pop(L, 1);
    t = lua_getfield(L, 1, "version");
    if (t != LUA_TNIL && !int_in_range(L, INT64_MAX, &c->version))
        return luaL_error(L, "field version: not an integer version");
    lua_pop(L, 1);
    t = lua_getfield(L, 1, "manifest");
    s = t == LUA_TSTRING ? lua_tolstring(L, -1, &n) : NULL;
    if (t != LUA_TNIL && (!s || (n != 0 && !hex64(s, n))))
        return luaL_error(L, "field manifest: not a BLAKE2b-256 hex digest");
    if (s)
        memcpy(c->manifest, s, n + 1);
    lua_pop(L, 1);
    lua_getfield(L, 1, "problems");
    c->nproblems = read_strings(L, "problems", NULL, &c->problems);
    lua_pop(L, 1);
    lua_getfield(L, 1, "failed");
    read_strings(L, "failed", code_ok, &c->failed);
    lua_pop(L, 1);
    return 0;
}

int status_check_parse(lua_State *L, const char *s, size_t len, struct status_check *c, char *err,
                       size_t errlen)
{
    memset(c, 0, sizeof *c);
    c->version = STATUS_ABSENT;
    int top = lua_gettop(L);
    char jerr[160];
    if (ljson_decode(L, s, len, jerr, sizeof jerr) < 0) {
        util_errf(err, errlen, "not JSON");
        return -1;
    }
    lua_pushcfunction(L, read_check);
    lua_insert(L, -2);
    lua_pushlightuserdata(L, c);
    int rc = lua_pcall(L, 2, 0, 0);
    if (rc != LUA_OK) {
        util_errf(err, errlen, "%s", rc == LUA_ERRRUN ? lua_tostring(L, -1) : "out of memory");
        status_check_free(c);
    }
    lua_settop(L, top);
    return rc == LUA_OK ? 0 : -1;
}

void status_check_free(struct status_check *c)
{
    util_lines_free(&c->problems);
    util_lines_free(&c->failed);
    memset(c, 0, sizeof *c);
    c->version = STATUS_ABSENT;
}

/* ------------------------------------------------ one round of a query */

struct timing {
    int64_t t0;
    int64_t *ms; /* one per response, in arrival order */
    size_t n;
};

static enum serf_next note_time(void *ctx, const struct serf_reply *r)
{
    (void)r;
    struct timing *t = ctx;
    t->ms = xrealloc(t->ms, (t->n + 1) * sizeof *t->ms);
    t->ms[t->n++] = util_mono_ms() - t->t0;
    return SERF_MORE; /* never ends the query: expect does */
}

/* Serf's own default query timeout for n members: 3.2 s x ceil(log10(n+1)). */
static int64_t serf_default_timeout(size_t n)
{
    int64_t k = 1;
    for (size_t m = 10; n + 1 > m && k < 12; m *= 10)
        k++;
    return 3200 * k;
}

static bool in_list(char *const *v, size_t n, const char *s)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(v[i], s) == 0)
            return true;
    return false;
}

/* What one round may hold of the agent's replies and the answers: far
 * above what 65 nodes answer, and an end to a member that answers under
 * ever new names (a name is the sender's word). */
#define STATUS_MEMORY ((size_t)64 << 20)

static int round_charge(void *ctx, size_t n)
{
    size_t *used = ctx;
    if (n > STATUS_MEMORY - *used)
        return -1;
    *used += n;
    return 0;
}

static void round_release(void *ctx, size_t n)
{
    size_t *used = ctx;
    *used -= n < *used ? n : *used;
}

int status_ask(const struct config *cfg, const struct status_ask *q, struct status_round *r,
               char *err, size_t errlen)
{
    size_t used = 0;
    const char *addr, *token;
    serfrpc_endpoint(cfg, &addr, &token);
    memset(r, 0, sizeof *r);
    struct serfrpc *c = NULL;
    struct serf_member *m = NULL;
    size_t nm = 0;
    int rc = -1;
    int64_t rpc_ms = config_int(cfg, "serf.timeout_ms");
    if (serfrpc_open(&c, addr, token, util_mono_ms() + rpc_ms, err, errlen) < 0)
        goto out;
    serfrpc_set_budget(c, round_charge, round_release, &used);
    if (serfrpc_members(c, &m, &nm, err, errlen) < 0)
        goto out;
    /* Who should answer: the named nodes, or every alive member. With tag
     * filters (Go regexps, matched by the agents) only the agents know. */
    r->known_targets = q->ntags == 0;
    r->targets = xmalloc((nm + q->nnodes + 1) * sizeof *r->targets);
    size_t expect = 0;
    for (size_t i = 0; r->known_targets && i < q->nnodes; i++)
        if (!in_list(r->targets, r->ntargets, q->nodes[i]))
            r->targets[r->ntargets++] = xstrdup(q->nodes[i]);
    for (size_t i = 0; i < nm; i++) {
        bool alive = strcmp(m[i].status, "alive") == 0;
        r->alive += alive;
        if (alive && r->known_targets && q->nnodes == 0)
            r->targets[r->ntargets++] = xstrdup(m[i].name);
        if (alive && q->nnodes && in_list(r->targets, r->ntargets, m[i].name))
            expect++; /* a named node that is not alive cannot answer */
    }
    if (q->nnodes == 0)
        expect = r->ntargets;
    if (q->expect >= 0)
        expect = (size_t)q->expect;
    else if (!r->known_targets)
        expect = 0; /* wait for Serf's done */
    r->expect = expect;
    struct timing t = {.t0 = util_mono_ms()};
    struct serf_query sq = {
        .name = q->name,
        .payload = q->payload,
        .len = q->len,
        .nodes = q->nodes,
        .nnodes = q->nnodes,
        .tagk = q->tagk,
        .tagv = q->tagv,
        .ntags = q->ntags,
        .timeout_ms = q->timeout_ms,
        .ack = true,
        .expect = expect,
        .on_response = note_time,
        .on_response_ctx = &t,
    };
    int64_t wait = q->timeout_ms ? q->timeout_ms : serf_default_timeout(nm) + 1000;
    serfrpc_set_deadline(c, t.t0 + wait + rpc_ms);
    rc = serfrpc_query(c, &sq, &r->res, err, errlen);
    if (rc == SERFRPC_NO_MEMORY) {
        char what[256];
        snprintf(what, sizeof what, "%s", err);
        util_errf(err, errlen,
                  "serf: %s came to more than %zu MiB (a member answering under many names?)", what,
                  STATUS_MEMORY >> 20);
        rc = -1;
    }
    r->elapsed_ms = util_mono_ms() - t.t0;
    r->ms = t.ms;
out:
    serfrpc_members_free(m, nm);
    serfrpc_close(c);
    return rc;
}

int64_t status_round_ms(const struct status_round *r, size_t i)
{
    return r->ms && i < r->res.nresp ? r->ms[i] : -1;
}

const struct serf_reply *status_round_reply(const struct status_round *r, const char *node,
                                            size_t *index)
{
    for (size_t i = 0; i < r->res.nresp; i++)
        if (strcmp(r->res.resp[i].from, node) == 0) {
            if (index)
                *index = i;
            return &r->res.resp[i];
        }
    return NULL;
}

void status_round_free(struct status_round *r)
{
    serfrpc_query_result_free(&r->res);
    for (size_t i = 0; i < r->ntargets; i++)
        free(r->targets[i]);
    free(r->targets);
    free(r->ms);
    memset(r, 0, sizeof *r);
}
