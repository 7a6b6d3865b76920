/*
 * status.c: a member's answer to query factomd-status, read as hostile bytes.
 * The answer is decoded by lua-cjson in a protected call and copied field by
 * field into bounded C values (names from a small alphabet, integers in
 * range); cmd_status.c prints and encodes only these values, never the
 * answer's own bytes. Also used by the fuzz harness fuzz_status.c.
 */
#include <stddef.h>
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
