/*
 * event.c: what Serf hands a handler (SERF_* environment and stdin bytes)
 * turned into a C struct, and that struct into the Lua table `ev`; also the
 * event of a tick or a tool run (action, propose, test). The one place `ev`
 * is built: run.c pushes it for every run.
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>

#include "serfhand.h"

static const char *const type_names[] = {
    [EV_MEMBER_JOIN] = "member-join",
    [EV_MEMBER_LEAVE] = "member-leave",
    [EV_MEMBER_FAILED] = "member-failed",
    [EV_MEMBER_UPDATE] = "member-update",
    [EV_MEMBER_REAP] = "member-reap",
    [EV_USER] = "user",
    [EV_QUERY] = "query",
    [EV_TICK] = "tick",
    [EV_TOOL] = NULL, /* named by its command: ev->type_name */
};

const char *event_type_name(enum event_type t)
{
    return type_names[t] ? type_names[t] : "tool";
}

int event_type_parse(const char *s)
{
    for (size_t i = 0; i < sizeof type_names / sizeof *type_names; i++)
        if (type_names[i] && strcmp(type_names[i], s) == 0)
            return (int)i;
    return -1;
}

static const char *env_get(char *const *envp, const char *name)
{
    size_t n = strlen(name);
    for (; *envp; envp++)
        if (strncmp(*envp, name, n) == 0 && (*envp)[n] == '=')
            return *envp + n + 1;
    return NULL;
}

/* Undo Serf's eventClean: "\t" -> TAB, "\n" -> LF; other bytes as they are. */
static char *unclean(const char *s, size_t len)
{
    char *out = xmalloc(len + 1), *o = out;
    for (size_t i = 0; i < len; i++) {
        if (s[i] == '\\' && i + 1 < len && (s[i + 1] == 't' || s[i + 1] == 'n')) {
            *o++ = s[i + 1] == 't' ? '\t' : '\n';
            i++;
        } else {
            *o++ = s[i];
        }
    }
    *o = '\0';
    return out;
}

static void member_free(struct member *m)
{
    free(m->name);
    free(m->addr);
    free(m->role);
    for (size_t i = 0; i < m->ntags; i++) {
        free(m->tagk[i]);
        free(m->tagv[i]);
    }
    free(m->tagk);
    free(m->tagv);
}

/* Tags are "k=v,k2=v2", escaped only for TAB and LF: a ',' or '=' inside a
 * value cannot be told apart, so split on ',' and the first '='. */
static void parse_tags(struct member *m, const char *s, size_t len)
{
    size_t i = 0;
    while (i < len) {
        size_t j = i;
        while (j < len && s[j] != ',')
            j++;
        if (j > i) {
            size_t eq = i;
            while (eq < j && s[eq] != '=')
                eq++;
            m->tagk = xrealloc(m->tagk, (m->ntags + 1) * sizeof *m->tagk);
            m->tagv = xrealloc(m->tagv, (m->ntags + 1) * sizeof *m->tagv);
            m->tagk[m->ntags] = unclean(s + i, eq - i);
            m->tagv[m->ntags] = eq < j ? unclean(s + eq + 1, j - eq - 1) : xstrdup("");
            m->ntags++;
        }
        i = j + 1;
    }
}

static int event_parse_member(struct member *m, const char *line, size_t len)
{
    const char *f[4];
    size_t flen[4], nf = 0, start = 0;
    memset(m, 0, sizeof *m);
    for (size_t i = 0; i <= len && nf < 4; i++) {
        if (i == len || line[i] == '\t') {
            f[nf] = line + start;
            flen[nf++] = i - start;
            start = i + 1;
        }
    }
    if (nf < 2 || flen[0] == 0 || start < len + 1)
        return -1; /* need at least name and address; at most four fields */
    m->name = unclean(f[0], flen[0]);
    m->addr = unclean(f[1], flen[1]);
    m->role = nf > 2 ? unclean(f[2], flen[2]) : xstrdup("");
    if (nf > 3)
        parse_tags(m, f[3], flen[3]);
    return 0;
}

static int parse_members(struct event *ev, const char *in, size_t len, char *err, size_t errlen)
{
    size_t i = 0, lineno = 0;
    while (i < len) {
        size_t j = i;
        while (j < len && in[j] != '\n')
            j++;
        lineno++;
        if (j > i) {
            struct member m;
            if (memchr(in + i, '\0', j - i) || event_parse_member(&m, in + i, j - i) < 0) {
                util_errf(err, errlen, "member line %zu is malformed", lineno);
                return -1;
            }
            ev->members = xrealloc(ev->members, (ev->nmembers + 1) * sizeof *ev->members);
            ev->members[ev->nmembers++] = m;
        }
        i = j + 1;
    }
    return 0;
}

static void parse_tags_env(struct event *ev, char *const *envp)
{
    static const char prefix[] = "SERF_TAG_";
    for (; *envp; envp++) {
        if (strncmp(*envp, prefix, sizeof prefix - 1) != 0)
            continue;
        const char *k = *envp + sizeof prefix - 1, *eq = strchr(k, '=');
        if (!eq || eq == k)
            continue;
        char *key = xmalloc((size_t)(eq - k) + 1);
        for (size_t i = 0; i < (size_t)(eq - k); i++)
            key[i] = (char)tolower((unsigned char)k[i]);
        key[eq - k] = '\0';
        ev->tags = xrealloc(ev->tags, (ev->ntags + 1) * sizeof *ev->tags);
        ev->tags[ev->ntags].key = key;
        ev->tags[ev->ntags].value = xstrdup(eq + 1);
        ev->ntags++;
    }
}

int event_parse(struct event *ev, char *const *envp, const char *in, size_t inlen, char *err,
                size_t errlen)
{
    memset(ev, 0, sizeof *ev);
    const char *type = env_get(envp, "SERF_EVENT");
    if (!type || !*type) {
        util_errf(err, errlen,
                  "SERF_EVENT is not set: serfhand handle runs under `serf agent -event-handler`");
        return -1;
    }
    int t = event_type_parse(type);
    if (t < 0 || t == EV_TICK) {
        util_errf(err, errlen, "unknown SERF_EVENT \"%s\"", type);
        return -1;
    }
    ev->type = (enum event_type)t;
    ev->type_name = xstrdup(type);
    const char *self = env_get(envp, "SERF_SELF_NAME");
    const char *role = env_get(envp, "SERF_SELF_ROLE");
    ev->self_name = xstrdup(self ? self : "");
    ev->self_role = xstrdup(role ? role : "");
    parse_tags_env(ev, envp);

    if (ev->type == EV_USER || ev->type == EV_QUERY) {
        const char *name =
            env_get(envp, ev->type == EV_USER ? "SERF_USER_EVENT" : "SERF_QUERY_NAME");
        const char *lt =
            env_get(envp, ev->type == EV_USER ? "SERF_USER_LTIME" : "SERF_QUERY_LTIME");
        ev->name = xstrdup(name ? name : "");
        if (lt && *lt)
            ev->ltime = strtoull(lt, NULL, 10);
        /* Serf appends one LF to a non-empty payload that lacks one. */
        size_t n = inlen;
        if (n > 0 && in[n - 1] == '\n')
            n--;
        buf_add(&ev->payload, in, n);
        if (!util_valid_name(ev->name)) {
            util_errf(err, errlen,
                      "invalid %s name \"%.80s\": names match [A-Za-z0-9][A-Za-z0-9_.-]{0,63}",
                      ev->type == EV_USER ? "user event" : "query", ev->name);
            return -1;
        }
    } else {
        buf_add(&ev->payload, in, inlen);
        if (parse_members(ev, in, inlen, err, errlen) < 0)
            return -1;
    }
    return 0;
}

void event_local(struct event *ev, enum event_type type, const char *type_name, const char *name,
                 const char *self, const char *const *args, size_t nargs)
{
    memset(ev, 0, sizeof *ev);
    ev->type = type;
    ev->type_name = xstrdup(type_name ? type_name : type_names[type]);
    ev->name = name ? xstrdup(name) : NULL;
    ev->self_name = xstrdup(self ? self : "");
    ev->self_role = xstrdup("");
    if (nargs) {
        buf_addstr(&ev->payload, args[0]);
        ev->args = xmalloc(nargs * sizeof *ev->args);
        for (size_t i = 0; i < nargs; i++)
            ev->args[i] = xstrdup(args[i]);
        ev->nargs = nargs;
    }
}

void event_free(struct event *ev)
{
    free(ev->type_name);
    free(ev->name);
    free(ev->self_name);
    free(ev->self_role);
    buf_free(&ev->payload);
    for (size_t i = 0; i < ev->ntags; i++) {
        free(ev->tags[i].key);
        free(ev->tags[i].value);
    }
    free(ev->tags);
    for (size_t i = 0; i < ev->nmembers; i++)
        member_free(&ev->members[i]);
    free(ev->members);
    for (size_t i = 0; i < ev->nargs; i++)
        free(ev->args[i]);
    free(ev->args);
    memset(ev, 0, sizeof *ev);
}

char *event_handler_path(const struct event *ev)
{
    struct buf b = {0};
    switch (ev->type) {
    case EV_USER:
    case EV_QUERY:
        if (!util_valid_name(ev->name))
            return NULL;
        buf_printf(&b, "handlers/%s/%s.lua", ev->type == EV_USER ? "user" : "query", ev->name);
        break;
    case EV_TICK: buf_addstr(&b, "handlers/tick.lua"); break;
    case EV_TOOL: /* `action restart`: handlers/action/restart.lua */
        if (!util_valid_name(ev->type_name) || !ev->name || !util_valid_name(ev->name))
            return NULL;
        buf_printf(&b, "handlers/%s/%s.lua", ev->type_name, ev->name);
        break;
    default: buf_printf(&b, "handlers/%s.lua", type_names[ev->type]); break;
    }
    return b.data;
}

static void push_member(lua_State *L, const struct member *m)
{
    lua_createtable(L, 0, 4);
    lua_pushstring(L, m->name);
    lua_setfield(L, -2, "name");
    lua_pushstring(L, m->addr);
    lua_setfield(L, -2, "addr");
    lua_pushstring(L, m->role);
    lua_setfield(L, -2, "role");
    lua_createtable(L, 0, (int)m->ntags);
    for (size_t i = 0; i < m->ntags; i++) {
        lua_pushstring(L, m->tagv[i]);
        lua_setfield(L, -2, m->tagk[i]);
    }
    lua_setfield(L, -2, "tags");
}

void event_push(lua_State *L, const struct event *ev, const struct bundle *b)
{
    lua_createtable(L, 0, 9);
    lua_pushstring(L, type_names[ev->type] ? type_names[ev->type] : ev->type_name);
    lua_setfield(L, -2, "type");
    if (ev->name) {
        lua_pushstring(L, ev->name);
        lua_setfield(L, -2, "name");
    }
    lua_pushinteger(L, (lua_Integer)ev->ltime);
    lua_setfield(L, -2, "ltime");
    lua_pushlstring(L, ev->payload.data ? ev->payload.data : "", ev->payload.len);
    lua_setfield(L, -2, "payload");

    lua_createtable(L, 0, 3); /* self */
    lua_pushstring(L, ev->self_name);
    lua_setfield(L, -2, "name");
    lua_pushstring(L, ev->self_role);
    lua_setfield(L, -2, "role");
    lua_createtable(L, 0, (int)ev->ntags);
    for (size_t i = 0; i < ev->ntags; i++) {
        lua_pushstring(L, ev->tags[i].value);
        lua_setfield(L, -2, ev->tags[i].key);
    }
    lua_setfield(L, -2, "tags");
    lua_setfield(L, -2, "self");

    lua_createtable(L, (int)ev->nmembers, 0);
    for (size_t i = 0; i < ev->nmembers; i++) {
        push_member(L, &ev->members[i]);
        lua_rawseti(L, -2, (lua_Integer)i + 1);
    }
    lua_setfield(L, -2, "members");

    if (ev->type == EV_TOOL) { /* the command line's operands */
        lua_createtable(L, (int)ev->nargs, 0);
        for (size_t i = 0; i < ev->nargs; i++) {
            lua_pushstring(L, ev->args[i]);
            lua_rawseti(L, -2, (lua_Integer)i + 1);
        }
        lua_setfield(L, -2, "args");
    }
    if (b) { /* what runs: ev.bundle.version is an integer like every version */
        lua_createtable(L, 0, 2);
        lua_pushstring(L, b->name);
        lua_setfield(L, -2, "name");
        lua_pushinteger(L, (lua_Integer)b->version);
        lua_setfield(L, -2, "version");
        lua_setfield(L, -2, "bundle");
    }
}
