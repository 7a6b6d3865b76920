/*
 * cmd_config.c: `serfhand config`, the settings in effect (file values and
 * defaults) in the configuration file's own syntax, nested tables included
 * (factomd = { tls = { ca_file = ... } }), or as JSON. Loading them is the
 * check: an invalid file (trust.keys and trust.threshold included) fails
 * before this runs, naming the key and the line.
 */
#include <stdio.h>
#include <string.h>

#include "serfhand.h"

static void lua_str(struct buf *o, const char *s)
{
    buf_addstr(o, "\"");
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            buf_printf(o, "\\%c", c);
        else if (c < 0x20 || c == 0x7f)
            buf_printf(o, "\\%03d", c);
        else
            buf_add(o, s, 1);
    }
    buf_addstr(o, "\"");
}

/* One value in Lua syntax (json false) or JSON; secrets masked: this output
 * gets pasted into tickets. */
static void value(struct buf *o, const struct cfg_item *it, const struct cfg_value *v, bool json)
{
    void (*str)(struct buf *, const char *) = json ? util_json_str : lua_str;
    switch (it->type) {
    case CFG_STR: str(o, config_secret(it->path) && *v->str ? "(set)" : v->str); break;
    case CFG_INT: buf_printf(o, "%lld", v->num); break;
    case CFG_BOOL: buf_addstr(o, v->num ? "true" : "false"); break;
    case CFG_STRLIST:
        buf_addstr(o, json ? "[" : "{");
        for (size_t k = 0; k < v->nlist; k++) {
            buf_addstr(o, json ? (k ? "," : "") : k ? ", " : " ");
            str(o, v->list[k]);
        }
        buf_addstr(o, json ? "]" : v->nlist ? " }" : "}");
        break;
    }
}

/* Does path lie below prefix (which ends with a dot, or is "")? */
static bool below(const char *path, const char *prefix, size_t plen)
{
    return strncmp(path, prefix, plen) == 0;
}

/* The settings below prefix (plen bytes, "" or ending with '.'), in schema
 * order; a nested table is written once, where its first key comes. */
static void level(struct buf *o, const struct config *cfg, const char *prefix, size_t plen,
                  int depth, bool json)
{
    const struct cfg_item *s = config_schema();
    const char *sep = "";
    for (size_t i = 0; s[i].path; i++) {
        if (!below(s[i].path, prefix, plen))
            continue;
        const char *rest = s[i].path + plen;
        const char *dot = strchr(rest, '.');
        size_t klen = dot ? (size_t)(dot - rest) : strlen(rest);
        if (dot) { /* a table: only at the first of its keys */
            bool seen = false;
            for (size_t k = 0; k < i && !seen; k++)
                seen = below(s[k].path, s[i].path, plen + klen + 1);
            if (seen)
                continue;
        }
        if (json)
            buf_printf(o, "%s\"%.*s\":", sep, (int)klen, rest);
        else
            buf_printf(o, "%*s%.*s = ", 2 * depth, "", (int)klen, rest);
        sep = ",";
        if (dot) {
            buf_addstr(o, json ? "{" : "{\n");
            level(o, cfg, s[i].path, plen + klen + 1, depth + 1, json);
            if (json)
                buf_addstr(o, "}");
            else
                buf_printf(o, "%*s}%s\n", 2 * depth, "", depth ? "," : "");
            continue;
        }
        const struct cfg_value *v = config_value(cfg, i);
        value(o, &s[i], v, json);
        if (!json)
            buf_printf(o, "%s  -- %s%s\n", depth ? "," : "", s[i].help, v->set ? "" : " (default)");
    }
}

static int exec_config(const struct args *a, const struct config *cfg)
{
    struct buf o = {0};
    if (args_has(a, "--json")) {
        const struct cfg_item *s = config_schema();
        buf_addstr(&o, "{\"file\":");
        if (cfg->file)
            util_json_str(&o, cfg->file);
        else
            buf_addstr(&o, "null");
        buf_addstr(&o, ",\"settings\":{");
        level(&o, cfg, "", 0, 0, true);
        buf_addstr(&o, "},\"from_file\":[");
        const char *sep = "";
        for (size_t i = 0; s[i].path; i++)
            if (config_value(cfg, i)->set) {
                buf_printf(&o, "%s\"%s\"", sep, s[i].path);
                sep = ",";
            }
        buf_addstr(&o, "]}\n");
    } else {
        buf_printf(&o, "-- %s\n",
                   cfg->file ? cfg->file : "no configuration file: built-in defaults");
        level(&o, cfg, "", 0, 0, false);
    }
    fwrite(o.data, 1, o.len, stdout);
    buf_free(&o);
    return SH_EXIT_OK;
}

static const struct cmd_opt opts[] = {
    {.name = "--json", .kind = OPT_FLAG, .help = "one line of JSON instead of the file syntax"},
    {NULL},
};

const struct cmd_entry cmd_config_entry = {
    .name = "config",
    .summary = "check the configuration and trust keys, print the settings in effect",
    .opts = opts,
    .description = "Prints every setting in the configuration file's own syntax (a valid file),\n"
                   "each with its help and \"(default)\" when the file does not set it; secrets\n"
                   "show as \"(set)\".\n"
                   "--json: {file, settings: {nested as in the file}, from_file: [dotted keys the\n"
                   "file sets]}, keys in the order of serfhand.conf.sample.",
    .exits = "  0 the file is valid\n"
             "  2 it is not (the message names the key and the line)",
    .exec = exec_config,
    .needs_config = true,
};
