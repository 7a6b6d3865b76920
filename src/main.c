/*
 * main.c: argv -> subcommand. With no subcommand serfhand is Serf's event
 * handler (`handle`). Global options come before the subcommand.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "serfhand.h"

/* Every subcommand, in the order `serfhand --help` lists them. */
static const struct cmd_entry *const commands[] = {
    &cmd_handle_entry,  &cmd_tick_entry,     &cmd_status_entry,
    &cmd_query_entry,   &cmd_propose_entry,  &cmd_action_entry,
    &cmd_run_entry,     &cmd_test_entry,     &cmd_check_entry,
    &cmd_verify_entry,  &cmd_sign_entry,     &cmd_keygen_entry,
    &cmd_install_entry, &cmd_announce_entry, &cmd_rollback_entry,
    &cmd_config_entry,  &cmd_metrics_entry,  NULL,
};

static const struct cmd_entry *main_find_cmd(const char *name)
{
    for (size_t i = 0; commands[i]; i++)
        if (strcmp(commands[i]->name, name) == 0)
            return commands[i];
    return NULL;
}

/* The options before the command. */
static const struct cmd_opt main_opts[] = {
    {.name = "-c",
     .alias = "--config",
     .kind = OPT_STR,
     .arg = "FILE",
     .help = "configuration file (default $SERFHAND_CONFIG, then " SH_DEFAULT_CONFIG ")"},
    {.name = "-h",
     .alias = "--help",
     .kind = OPT_FLAG,
     .help = "this help; `serfhand help COMMAND` for one command"},
    {.name = "--version", .kind = OPT_FLAG, .help = "print the version"},
    {NULL},
};

/* What every run of a handler may exit with (handle, run, tick, ...). */
static const char common_exits[] =
    "  0 ok\n"
    "  1 failed (a handler raised or returned nil, err; a check failed)\n"
    "  2 usage, configuration or system error\n"
    "  3 refused by verification\n"
    "  4 deadline\n"
    "  5 memory cap\n"
    "  6 query response refused\n"
    "  7 bad event";

static void usage(FILE *f)
{
    struct buf opts = {0};
    args_options_help(main_opts, &opts);
    fprintf(f, "usage: serfhand [-c FILE] [COMMAND [ARGS...]]\n"
               "\n"
               "serfhand runs Serf events through signed, sandboxed Lua handlers.\n"
               "With no command it is Serf's event handler; point the agent at it with\n"
               "  serf agent -event-handler '*=/usr/local/bin/serfhand'\n"
               "(on a terminal without SERF_EVENT it prints this and exits 2)\n"
               "\n"
               "commands:\n");
    for (size_t i = 0; commands[i]; i++)
        fprintf(f, "  %-8s %s\n", commands[i]->name, commands[i]->summary);
    fprintf(f,
            "\n"
            "options:\n"
            "%s"
            "\n"
            "exit codes:\n%s\n"
            "(each command's own: serfhand help COMMAND)\n",
            opts.data, common_exits);
    buf_free(&opts);
}

/* "usage: serfhand [-c FILE] NAME [options] OPERANDS", generated from the entry. */
static void synopsis(const struct cmd_entry *c, struct buf *out)
{
    buf_printf(out, "usage: serfhand [-c FILE] %s", c->name);
    args_synopsis(c->opts, c->operands, out);
    buf_addstr(out, "\n");
}

static int command_help(const char *name)
{
    const struct cmd_entry *c = main_find_cmd(name);
    if (!c) {
        fprintf(stderr, "serfhand: unknown command '%s' (see serfhand --help)\n", name);
        return SH_EXIT_USAGE;
    }
    struct buf out = {0};
    synopsis(c, &out);
    buf_printf(&out, "\n%s\n", c->summary);
    if (c->description)
        buf_printf(&out, "\n%s\n", c->description);
    if (c->opts && c->opts[0].name) {
        buf_addstr(&out, "\noptions:\n");
        args_options_help(c->opts, &out);
    }
    buf_printf(&out, "\nexit codes:\n%s\n", c->exits ? c->exits : common_exits);
    fwrite(out.data, 1, out.len, stdout);
    buf_free(&out);
    return SH_EXIT_OK;
}

/* Parse the command's options and operands; on a mistake say which one.
 * Returns -1 to go on, else the exit code. */
static int parse_command(const struct cmd_entry *cmd, int argc, char **argv, struct args *a)
{
    char err[512] = "";
    enum args_parse r = args_parse(cmd->opts, argc, argv, false, a, err, sizeof err);
    if (r == ARGS_HELP)
        return command_help(cmd->name);
    if (r == ARGS_OK && a->npos < (size_t)cmd->min_operands)
        util_errf(err, sizeof err, "missing %s", cmd->operands);
    else if (r == ARGS_OK && cmd->max_operands >= 0 && a->npos > (size_t)cmd->max_operands)
        util_errf(err, sizeof err, "unexpected argument '%s'", a->pos[cmd->max_operands]);
    if (!err[0])
        return -1;
    /* A query's stdout and stderr are its answer: nothing else goes there. */
    const char *ev = getenv("SERF_EVENT");
    if (!(cmd->quiet_usage && ev && strcmp(ev, "query") == 0)) {
        struct buf u = {0};
        synopsis(cmd, &u);
        fprintf(stderr, "serfhand %s: %s\n%s", cmd->name, err, u.data);
        buf_free(&u);
    }
    return SH_EXIT_USAGE;
}

int main(int argc, char **argv)
{
    struct args g, ca;
    char err[512];
    int rc;
    enum args_parse r = args_parse(main_opts, argc, argv, true, &g, err, sizeof err);
    if (r != ARGS_OK || args_has(&g, "--help")) {
        if (r == ARGS_ERROR)
            fprintf(stderr, "serfhand: %s (see serfhand --help)\n", err);
        else
            usage(stdout);
        args_free(&g);
        return r == ARGS_ERROR ? SH_EXIT_USAGE : SH_EXIT_OK;
    }
    const char *cfgpath = args_str(&g, "-c", NULL);
    int i = g.next;
    bool version = args_has(&g, "--version");
    args_free(&g);
    if (version) {
        printf("serfhand %s (Lua %s.%s)\n", SERFHAND_VERSION, LUA_VERSION_MAJOR, LUA_VERSION_MINOR);
        return SH_EXIT_OK;
    }
    if (i < argc && strcmp(argv[i], "help") == 0) {
        if (i + 1 < argc)
            return command_help(argv[i + 1]);
        usage(stdout);
        return SH_EXIT_OK;
    }
    const struct cmd_entry *cmd = &cmd_handle_entry;
    char *handle_argv[] = {(char *)"handle", NULL};
    char **cargv = handle_argv;
    int cargc = 1;
    if (i < argc) {
        cmd = main_find_cmd(argv[i]);
        if (!cmd) {
            fprintf(stderr, "serfhand: unknown command '%s' (see serfhand --help)\n", argv[i]);
            return SH_EXIT_USAGE;
        }
        cargv = argv + i;
        cargc = argc - i;
    }
    rc = parse_command(cmd, cargc, cargv, &ca);
    if (rc >= 0) {
        args_free(&ca);
        return rc;
    }
    /* Serf always sets SERF_EVENT and gives a pipe or /dev/null as stdin; a
     * person at a terminal gets the usage instead of a syslog line and 7. */
    if (cmd == &cmd_handle_entry && !getenv("SERF_EVENT") && isatty(STDIN_FILENO)) {
        args_free(&ca);
        fprintf(stderr, "serfhand: not run by Serf (no SERF_EVENT, stdin is a terminal)\n\n");
        usage(stderr);
        return SH_EXIT_USAGE;
    }
    if (cfgpath)
        setenv("SERFHAND_CONFIG", cfgpath, 1); /* children (run, spawn) see it too */
    if (!cmd->needs_config) {
        rc = cmd->exec(&ca, NULL);
        args_free(&ca);
        return rc;
    }
    struct config cfg;
    if (config_load(&cfg, cfgpath, err, sizeof err) < 0) {
        fprintf(stderr, "serfhand: config: %s\n", err);
        config_free(&cfg);
        args_free(&ca);
        return SH_EXIT_USAGE;
    }
    log_open(&cfg, false);
    config_warn_exposed(&cfg);
    rc = cmd->exec(&ca, &cfg);
    log_close();
    config_free(&cfg);
    args_free(&ca);
    return rc;
}
