/* test_args.c: the one command-line parser of args.c and its one duration
 * syntax: every kind of option, mixed operands, "--" and "--x=y", required
 * options, each mistake named, and every malformed duration refused. */
#include <stdlib.h>
#include <string.h>

#include "serfhand.h"
#include "t.h"

static const struct cmd_opt opts[] = {
    {.name = "--flag", .kind = OPT_FLAG, .help = "a flag"},
    {.name = "-s", .alias = "--secret", .kind = OPT_STR, .arg = "KEY", .help = "a string"},
    {.name = "--tag", .kind = OPT_LIST, .arg = "k=v", .help = "a list"},
    {.name = "--n", .kind = OPT_INT, .arg = "N", .help = "an integer", .min = 1, .max = 10},
    {.name = "--ttl",
     .kind = OPT_DURATION,
     .arg = "D",
     .help = "a duration",
     .min = 1,
     .max = 3600},
    {NULL},
};

static const struct cmd_opt required[] = {
    {.name = "--url", .kind = OPT_STR, .arg = "BASE", .help = "needed", .required = true},
    {NULL},
};

/* Parse a NULL-terminated argv (argv[0] is the command). */
static enum args_parse parse(const struct cmd_opt *o, const char **argv, bool stop, struct args *a,
                             char *err)
{
    int argc = 0;
    while (argv[argc])
        argc++;
    err[0] = 0;
    return args_parse(o, argc, (char **)argv, stop, a, err, 300);
}

static void durations(void)
{
    static const struct {
        const char *s;
        long long want; /* -1: refused */
    } cases[] = {
        {"90", 90},
        {"90s", 90},
        {"2m", 120},
        {"1h", 3600},
        {"180d", 15552000},
        {"2w", 1209600},
        {"0", 0},
        {"36500d", ARGS_DURATION_MAX},
        {"36501d", -1},
        {"", -1},
        {"-1", -1},
        {"+5", -1},
        {" 5", -1},
        {"5 ", -1},
        {"5x", -1},
        {"5mm", -1},
        {"1.5h", -1},
        {"m", -1},
        {"5M", -1},
        {"99999999999999999999", -1},
        {"9223372036854775807s", -1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        long long got = -1;
        int rc = args_duration(cases[i].s, &got);
        char name[80];
        snprintf(name, sizeof name, "duration '%s'", cases[i].s);
        if (cases[i].want < 0)
            T_OK(rc < 0, name);
        else
            T_OK(rc == 0 && got == cases[i].want, name);
    }
}

int main(void)
{
    struct args a;
    char err[300];

    durations();

    const char *v1[] = {"cmd",   "x",   "--flag", "-s", "k1", "--tag", "a=1", "--secret=k2",
                        "--tag", "b=2", "--n",    "7",  "y",  "--ttl", "2m",  NULL};
    T_OK(parse(opts, v1, false, &a, err) == ARGS_OK, "every kind parses");
    T_OK(args_has(&a, "--flag"), "flag set");
    T_STR(args_str(&a, "-s", NULL), "k2", "the last value wins, alias and --x=y");
    T_STR(args_str(&a, "--secret", NULL), "k2", "looked up by the alias too");
    size_t n;
    const char *const *tags = args_list(&a, "--tag", &n);
    T_OK(n == 2 && strcmp(tags[0], "a=1") == 0 && strcmp(tags[1], "b=2") == 0, "list in order");
    T_OK(args_num(&a, "--n", 0) == 7, "integer");
    T_OK(args_num(&a, "--ttl", 0) == 120, "duration in seconds");
    T_OK(a.npos == 2 && strcmp(a.pos[0], "x") == 0 && strcmp(a.pos[1], "y") == 0,
         "operands mixed with options");
    args_free(&a);

    const char *v2[] = {"cmd", NULL};
    T_OK(parse(opts, v2, false, &a, err) == ARGS_OK, "nothing given");
    T_OK(!args_has(&a, "--flag") && args_str(&a, "-s", "d") &&
             !strcmp(args_str(&a, "-s", "d"), "d"),
         "defaults");
    T_OK(args_num(&a, "--n", 5) == 5 && args_list(&a, "--tag", &n) == NULL && n == 0,
         "default number, empty list");
    args_free(&a);

    const char *v3[] = {"cmd", "--", "--flag", "-", NULL};
    T_OK(parse(opts, v3, false, &a, err) == ARGS_OK && !args_has(&a, "--flag") && a.npos == 2 &&
             strcmp(a.pos[0], "--flag") == 0 && strcmp(a.pos[1], "-") == 0,
         "-- ends the options; - is an operand");
    args_free(&a);

    static const struct {
        const char *argv[4];
        const char *want; /* in err */
    } bad[] = {
        {{"cmd", "--bogus", NULL}, "unknown option --bogus"},
        {{"cmd", "--bogus=1", NULL}, "unknown option --bogus"},
        {{"cmd", "-x", NULL}, "unknown option -x"},
        {{"cmd", "--n", "abc"}, "--n needs an integer from 1 to 10, not 'abc'"},
        {{"cmd", "--n", "11"}, "--n needs an integer from 1 to 10, not '11'"},
        {{"cmd", "--n", "3x"}, "--n needs an integer"},
        {{"cmd", "--n", NULL}, "--n needs a value (N)"},
        {{"cmd", "-s", NULL}, "-s needs a value (KEY)"},
        {{"cmd", "--ttl", "2x"}, "--ttl: bad duration '2x'"},
        {{"cmd", "--ttl", "2h"}, "--ttl: 2h is out of range (1s to 3600s)"},
        {{"cmd", "--ttl", "0"}, "out of range"},
        {{"cmd", "--flag=yes", NULL}, "--flag takes no value"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        const char *v[4] = {bad[i].argv[0], bad[i].argv[1], bad[i].argv[2], NULL};
        enum args_parse r = parse(opts, v, false, &a, err);
        T_OK(r == ARGS_ERROR, bad[i].want);
        T_OK(strstr(err, bad[i].want) != NULL, err);
        args_free(&a);
    }

    const char *v4[] = {"cmd", "x", "--help", NULL};
    T_OK(parse(opts, v4, false, &a, err) == ARGS_HELP, "--help anywhere");
    args_free(&a);
    const char *v5[] = {"cmd", "-h", NULL};
    T_OK(parse(opts, v5, false, &a, err) == ARGS_HELP, "-h");
    args_free(&a);

    const char *v6[] = {"cmd", NULL};
    T_OK(parse(required, v6, false, &a, err) == ARGS_ERROR &&
             strcmp(err, "--url BASE is required") == 0,
         "a required option is named");
    args_free(&a);

    const char *v7[] = {"serfhand", "-c", "f", "sign", "--flag", NULL};
    T_OK(parse(opts + 1, v7, true, &a, err) == ARGS_ERROR, "global: -c is not in this table");
    args_free(&a);
    static const struct cmd_opt global[] = {
        {.name = "-c", .alias = "--config", .kind = OPT_STR, .arg = "FILE", .help = "config"},
        {NULL},
    };
    T_OK(parse(global, v7, true, &a, err) == ARGS_OK && a.next == 3 && a.npos == 0 &&
             strcmp(args_str(&a, "--config", ""), "f") == 0,
         "stop at the command: what follows is its own");
    args_free(&a);

    struct buf syn = {0}, help = {0};
    args_synopsis(opts, "DIR", &syn);
    T_STR(syn.data, " [--flag] [-s KEY] [--tag k=v]... [--n N] [--ttl D] DIR", "synopsis");
    args_synopsis(required, NULL, &syn);
    T_OK(strstr(syn.data, " --url BASE") != NULL && !strstr(syn.data, "[--url"),
         "a required option is not in brackets");
    args_options_help(opts, &help);
    T_OK(strstr(help.data, "-s, --secret KEY") && strstr(help.data, "a duration"),
         "help lists each option with its alias, value and line");
    buf_free(&syn);
    buf_free(&help);
    return t_done();
}
