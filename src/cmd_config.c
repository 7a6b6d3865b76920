/*
 * cmd_config.c: `serfhand config`, the settings in effect (file values and
 * defaults) in the configuration file's own syntax. Loading them is the check:
 * an invalid file (trust.keys and trust.threshold included) fails before this
 * runs, naming the key and the line.
 */
#include <stdio.h>
#include <string.h>

#include "serfhand.h"

static void print_str(const char *s)
{
    putchar('"');
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            printf("\\%c", c);
        else if (c < 0x20 || c == 0x7f)
            printf("\\%03d", c);
        else
            putchar(c);
    }
    putchar('"');
}

static int exec_config(const struct args *a, const struct config *cfg)
{
    (void)a;
    const struct cfg_item *s = config_schema();
    printf("-- %s\n", cfg->file ? cfg->file : "no configuration file: built-in defaults");
    char section[32] = "";
    for (size_t i = 0; s[i].path; i++) {
        const struct cfg_value *v = config_value(cfg, i);
        const char *dot = strchr(s[i].path, '.');
        const char *key = dot ? dot + 1 : s[i].path;
        size_t seclen = dot ? (size_t)(dot - s[i].path) : 0;
        if (strlen(section) != seclen || strncmp(section, s[i].path, seclen) != 0) {
            if (*section)
                printf("}\n");
            snprintf(section, sizeof section, "%.*s", (int)seclen, s[i].path);
            if (*section)
                printf("%s = {\n", section);
        }
        printf("%s%s = ", *section ? "  " : "", key);
        switch (s[i].type) {
        case CFG_STR:
            /* secrets masked: this output gets pasted into tickets */
            if (config_secret(s[i].path) && *v->str)
                printf("\"(set)\"");
            else
                print_str(v->str);
            break;
        case CFG_INT: printf("%lld", v->num); break;
        case CFG_BOOL: printf("%s", v->num ? "true" : "false"); break;
        case CFG_STRLIST:
            printf("{");
            for (size_t k = 0; k < v->nlist; k++) {
                printf(k ? ", " : " ");
                print_str(v->list[k]);
            }
            printf(v->nlist ? " }" : "}");
            break;
        }
        printf("%s  -- %s%s\n", *section ? "," : "", s[i].help, v->set ? "" : " (default)");
    }
    if (*section)
        printf("}\n");
    return SH_EXIT_OK;
}

const struct cmd_entry cmd_config_entry = {
    .name = "config",
    .summary = "check the configuration and trust keys, print the settings in effect",
    .exec = exec_config,
    .needs_config = true,
};
