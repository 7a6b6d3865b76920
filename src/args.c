/*
 * args.c: the one command-line parser (after tmux's args_parse and git's
 * parse-options). Each command declares its options in its cmd_entry; main.c
 * parses argv against them before the command runs, so an unknown or
 * malformed option is always named, and `serfhand help COMMAND` is generated
 * from the same table. Also the one duration syntax of every option.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "serfhand.h"

int args_duration(const char *s, long long *secs)
{
    static const struct {
        char unit;
        long long mul;
    } units[] = {{'s', 1}, {'m', 60}, {'h', 3600}, {'d', 86400}, {'w', 7 * 86400}};
    char *end;
    if (*s < '0' || *s > '9')
        return -1; /* no sign, no space */
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || end == s)
        return -1;
    long long mul = 0;
    if (*end == '\0')
        mul = 1; /* a bare number is seconds, everywhere */
    else if (end[1] == '\0')
        for (size_t i = 0; i < sizeof units / sizeof *units; i++)
            if (*end == units[i].unit)
                mul = units[i].mul;
    if (!mul || v > ARGS_DURATION_MAX / mul)
        return -1;
    *secs = v * mul;
    return 0;
}

static const struct cmd_opt *find_opt(const struct cmd_opt *opts, const char *name, size_t len,
                                      size_t *index)
{
    for (size_t i = 0; opts && opts[i].name; i++) {
        const char *alias = opts[i].alias;
        if ((strlen(opts[i].name) == len && strncmp(opts[i].name, name, len) == 0) ||
            (alias && strlen(alias) == len && strncmp(alias, name, len) == 0)) {
            *index = i;
            return &opts[i];
        }
    }
    return NULL;
}

/* Read the value of opt from text into v: 0, or -1 with err naming both. */
static int take_value(const struct cmd_opt *opt, const char *text, struct args_value *v, char *err,
                      size_t errlen)
{
    switch (opt->kind) {
    case OPT_FLAG: /* not reached: a flag takes no value */
    case OPT_STR: break;
    case OPT_LIST:
        v->list = xrealloc(v->list, (v->nlist + 1) * sizeof *v->list);
        v->list[v->nlist++] = text;
        break;
    case OPT_INT: {
        char *end;
        errno = 0;
        long long n = strtoll(text, &end, 10);
        if (errno || end == text || *end || n < opt->min || n > opt->max) {
            util_errf(err, errlen, "%s needs an integer from %lld to %lld, not '%s'", opt->name,
                      opt->min, opt->max, text);
            return -1;
        }
        v->num = n;
        break;
    }
    case OPT_DURATION: {
        long long n;
        if (args_duration(text, &n) < 0) {
            util_errf(err, errlen,
                      "%s: bad duration '%s' (seconds, or a number with s, m, h, d or w: "
                      "90, 90s, 2m, 1h, 7d)",
                      opt->name, text);
            return -1;
        }
        if (n < opt->min || n > opt->max) {
            util_errf(err, errlen, "%s: %s is out of range (%llds to %llds)", opt->name, text,
                      opt->min, opt->max);
            return -1;
        }
        v->num = n;
        break;
    }
    }
    if (opt->kind != OPT_LIST)
        v->str = text; /* the last one given wins */
    return 0;
}

enum args_parse args_parse(const struct cmd_opt *opts, int argc, char **argv, bool stop_at_arg,
                           struct args *a, char *err, size_t errlen)
{
    size_t nopts = 0;
    while (opts && opts[nopts].name)
        nopts++;
    memset(a, 0, sizeof *a);
    a->opts = opts;
    a->v = xmalloc((nopts + 1) * sizeof *a->v);
    memset(a->v, 0, (nopts + 1) * sizeof *a->v);
    a->pos = xmalloc(((size_t)argc + 1) * sizeof *a->pos);
    bool options_end = false;
    int i = 1;
    for (; i < argc; i++) {
        const char *s = argv[i];
        if (options_end || s[0] != '-' || s[1] == '\0') { /* "-" is an argument (stdin) */
            if (stop_at_arg)
                break;
            a->pos[a->npos++] = argv[i];
            continue;
        }
        if (strcmp(s, "--") == 0) {
            options_end = true;
            continue;
        }
        if (strcmp(s, "-h") == 0 || strcmp(s, "--help") == 0) {
            if (!find_opt(opts, s, strlen(s), &(size_t){0}))
                return ARGS_HELP;
        }
        const char *eq = strncmp(s, "--", 2) == 0 ? strchr(s, '=') : NULL;
        size_t len = eq ? (size_t)(eq - s) : strlen(s);
        size_t k;
        const struct cmd_opt *opt = find_opt(opts, s, len, &k);
        if (!opt) {
            util_errf(err, errlen, "unknown option %.*s", (int)len, s);
            return ARGS_ERROR;
        }
        struct args_value *v = &a->v[k];
        if (opt->kind == OPT_FLAG) {
            if (eq) {
                util_errf(err, errlen, "%s takes no value", opt->name);
                return ARGS_ERROR;
            }
            v->set = true;
            continue;
        }
        const char *text = eq ? eq + 1 : NULL;
        if (!text) {
            if (i + 1 >= argc) {
                util_errf(err, errlen, "%s needs a value (%s)", opt->name, opt->arg);
                return ARGS_ERROR;
            }
            text = argv[++i];
        }
        if (take_value(opt, text, v, err, errlen) < 0)
            return ARGS_ERROR;
        v->set = true;
    }
    a->next = i;
    for (size_t k = 0; k < nopts; k++)
        if (opts[k].required && !a->v[k].set) {
            util_errf(err, errlen, "%s %s is required", opts[k].name, opts[k].arg);
            return ARGS_ERROR;
        }
    return ARGS_OK;
}

void args_free(struct args *a)
{
    for (size_t k = 0; a->opts && a->opts[k].name; k++)
        free(a->v[k].list);
    free(a->v);
    free(a->pos);
    memset(a, 0, sizeof *a);
}

/* The value of the option called name; NULL for a name the table lacks (a
 * programming error, which the option tests of each command would show). */
static const struct args_value *value(const struct args *a, const char *name)
{
    size_t k;
    return find_opt(a->opts, name, strlen(name), &k) ? &a->v[k] : NULL;
}

bool args_has(const struct args *a, const char *name)
{
    const struct args_value *v = value(a, name);
    return v && v->set;
}

const char *args_str(const struct args *a, const char *name, const char *dflt)
{
    const struct args_value *v = value(a, name);
    return v && v->set ? v->str : dflt;
}

long long args_num(const struct args *a, const char *name, long long dflt)
{
    const struct args_value *v = value(a, name);
    return v && v->set ? v->num : dflt;
}

const char *const *args_list(const struct args *a, const char *name, size_t *n)
{
    const struct args_value *v = value(a, name);
    *n = v ? v->nlist : 0;
    return v ? v->list : NULL;
}

void args_synopsis(const struct cmd_opt *opts, const char *operands, struct buf *out)
{
    for (size_t i = 0; opts && opts[i].name; i++) {
        const struct cmd_opt *o = &opts[i];
        if (o->hidden)
            continue;
        buf_printf(out, " %s%s%s%s%s%s", o->required ? "" : "[", o->name, o->arg ? " " : "",
                   o->arg ? o->arg : "", o->required ? "" : "]", o->kind == OPT_LIST ? "..." : "");
    }
    if (operands && *operands)
        buf_printf(out, " %s", operands);
}

void args_options_help(const struct cmd_opt *opts, struct buf *out)
{
    for (size_t i = 0; opts && opts[i].name; i++) {
        const struct cmd_opt *o = &opts[i];
        if (o->hidden)
            continue;
        struct buf left = {0};
        buf_printf(&left, "%s%s%s%s%s", o->name, o->alias ? ", " : "", o->alias ? o->alias : "",
                   o->arg ? " " : "", o->arg ? o->arg : "");
        buf_printf(out, "  %-22s %s\n", left.data, o->help);
        buf_free(&left);
    }
}
