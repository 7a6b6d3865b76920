/*
 * main.c: argv -> subcommand. With no subcommand serfhand is Serf's event
 * handler (`handle`). Global options come before the subcommand.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "serfhand.h"

/* Every subcommand, in the order `serfhand --help` lists them. */
static const struct cmd_entry *const commands[] = {
    &cmd_handle_entry,   &cmd_tick_entry,     &cmd_status_entry, &cmd_propose_entry,
    &cmd_action_entry,   &cmd_run_entry,      &cmd_test_entry,   &cmd_check_entry,
    &cmd_verify_entry,   &cmd_sign_entry,     &cmd_keygen_entry, &cmd_install_entry,
    &cmd_announce_entry, &cmd_rollback_entry, &cmd_config_entry,
};

#define NCOMMANDS (sizeof commands / sizeof *commands)

const struct cmd_entry *main_find_cmd(const char *name)
{
    for (size_t i = 0; i < NCOMMANDS; i++)
        if (commands[i] && strcmp(commands[i]->name, name) == 0)
            return commands[i];
    return NULL;
}

static void usage(FILE *f)
{
    fprintf(f, "usage: serfhand [-c FILE] [COMMAND [ARGS...]]\n"
               "\n"
               "serfhand runs Serf events through signed, sandboxed Lua handlers.\n"
               "With no command it is Serf's event handler; point the agent at it with\n"
               "  serf agent -event-handler '*=/usr/local/bin/serfhand'\n"
               "\n"
               "commands:\n");
    for (size_t i = 0; i < NCOMMANDS; i++)
        if (commands[i])
            fprintf(f, "  %-8s %s\n", commands[i]->name, commands[i]->summary);
    fprintf(f,
            "\n"
            "options:\n"
            "  -c FILE      configuration file (default $SERFHAND_CONFIG, then %s)\n"
            "  -h, --help   this help; `serfhand help COMMAND` for one command\n"
            "  --version    print the version\n"
            "\n"
            "exit codes: 0 ok, 1 failed, 2 usage or system error, 3 refused by\n"
            "verification, 4 deadline, 5 memory cap, 6 response refused, 7 bad event\n",
            SH_DEFAULT_CONFIG);
}

static int command_help(const char *name)
{
    const struct cmd_entry *c = main_find_cmd(name);
    if (!c) {
        fprintf(stderr, "serfhand: unknown command '%s' (see serfhand --help)\n", name);
        return SH_EXIT_USAGE;
    }
    printf("usage: serfhand [-c FILE] %s %s\n\n%s\n", c->name, c->usage, c->summary);
    return SH_EXIT_OK;
}

int main(int argc, char **argv)
{
    const char *cfgpath = NULL;
    int i = 1;
    for (; i < argc && argv[i][0] == '-'; i++) {
        if (strcmp(argv[i], "-c") == 0 || strcmp(argv[i], "--config") == 0) {
            if (i + 1 >= argc) {
                fprintf(stderr, "serfhand: %s needs a file\n", argv[i]);
                return SH_EXIT_USAGE;
            }
            cfgpath = argv[++i];
        } else if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            usage(stdout);
            return SH_EXIT_OK;
        } else if (strcmp(argv[i], "--version") == 0) {
            printf("serfhand %s (Lua %s.%s)\n", SERFHAND_VERSION, LUA_VERSION_MAJOR,
                   LUA_VERSION_MINOR);
            return SH_EXIT_OK;
        } else {
            fprintf(stderr, "serfhand: unknown option '%s' (see serfhand --help)\n", argv[i]);
            return SH_EXIT_USAGE;
        }
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
    if (cargc > 1 && (strcmp(cargv[1], "-h") == 0 || strcmp(cargv[1], "--help") == 0))
        return command_help(cmd->name);
    if (cfgpath)
        setenv("SERFHAND_CONFIG", cfgpath, 1); /* children (run, spawn) see it too */
    if (!cmd->needs_config)
        return cmd->exec(cargc, cargv, NULL);
    struct config cfg;
    char err[512];
    if (config_load(&cfg, cfgpath, err, sizeof err) < 0) {
        fprintf(stderr, "serfhand: config: %s\n", err);
        config_free(&cfg);
        return SH_EXIT_USAGE;
    }
    log_open(&cfg, false);
    int rc = cmd->exec(cargc, cargv, &cfg);
    log_close();
    config_free(&cfg);
    return rc;
}
