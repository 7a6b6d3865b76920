/*
 * cmd_run.c: `serfhand run`, the handler author's simulator. It builds the
 * environment and stdin Serf would give `handle`, runs `handle` in a child
 * exactly as Serf would, and prints what Serf would receive (stdout and
 * stderr together) plus the exit code. Logs go to this terminal's stderr.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "serfhand.h"

extern char **environ;

struct run_opts {
    const char *event, *name, *payload, *payload_file, *bundle, *self, *ltime;
    const char *const *tags, *const *members;
    size_t ntags, nmembers;
    bool unsigned_ok;
};

/* The options into o; the checks across them. The event type, or -1. */
static int read_opts(struct run_opts *o, const struct args *a)
{
    o->event = a->pos[0];
    o->name = args_str(a, "--name", NULL);
    o->payload = args_str(a, "--payload", NULL);
    o->payload_file = args_str(a, "--payload-file", NULL);
    o->bundle = args_str(a, "--bundle", NULL);
    o->self = args_str(a, "--self", NULL);
    o->ltime = args_str(a, "--ltime", NULL);
    o->tags = args_list(a, "--tag", &o->ntags);
    o->members = args_list(a, "--member", &o->nmembers);
    o->unsigned_ok = args_has(a, "--unsigned");
    for (size_t i = 0; i < o->ntags; i++) {
        const char *v = o->tags[i];
        if (!strchr(v, '=') || v[0] == '=') {
            fprintf(stderr, "serfhand run: --tag wants k=v, not '%s'\n", v);
            return -1;
        }
    }
    int t = event_type_parse(o->event);
    if (t < 0 || t == EV_TICK) {
        fprintf(stderr, "serfhand run: unknown event '%s'\n", o->event);
        return -1;
    }
    if ((t == EV_USER || t == EV_QUERY) && !o->name) {
        fprintf(stderr, "serfhand run: %s needs --name\n", o->event);
        return -1;
    }
    if (o->payload && o->payload_file) {
        fprintf(stderr, "serfhand run: --payload and --payload-file exclude each other\n");
        return -1;
    }
    return t;
}

/* Set SERF_TAG_<NAME> the way Serf names it: upper case, [^A-Z0-9_] -> _. */
static void set_tag_env(const char *kv)
{
    const char *eq = strchr(kv, '=');
    struct buf name = {0};
    buf_addstr(&name, "SERF_TAG_");
    for (const char *p = kv; p < eq; p++) {
        char c = *p;
        if (c >= 'a' && c <= 'z')
            c = (char)(c - 'a' + 'A');
        if (!((c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_'))
            c = '_';
        buf_add(&name, &c, 1);
    }
    setenv(name.data, eq + 1, 1);
    buf_free(&name);
}

static void clear_serf_env(void)
{
    for (;;) {
        char **e = environ;
        while (*e && strncmp(*e, "SERF_", 5) != 0)
            e++;
        if (!*e)
            return;
        char *eq = strchr(*e, '=');
        char name[256];
        size_t n = eq ? (size_t)(eq - *e) : strlen(*e);
        if (n >= sizeof name)
            n = sizeof name - 1;
        memcpy(name, *e, n);
        name[n] = '\0';
        unsetenv(name);
    }
}

static int exec_run(const struct args *a, const struct config *cfg)
{
    (void)cfg;
    struct run_opts o = {0};
    struct buf input = {0}, output = {0};
    char err[512];
    int rc = SH_EXIT_USAGE;
    int t = read_opts(&o, a);
    if (t < 0)
        goto out;

    if (o.payload) {
        buf_addstr(&input, o.payload);
    } else if (o.payload_file) {
        int r = strcmp(o.payload_file, "-") == 0
                    ? util_read_fd(0, 16 * 1024 * 1024, &input, err, sizeof err)
                    : util_read_file(o.payload_file, 16 * 1024 * 1024, &input, err, sizeof err);
        if (r < 0) {
            fprintf(stderr, "serfhand run: payload: %s\n", err);
            goto out;
        }
    }
    for (size_t i = 0; i < o.nmembers; i++) {
        buf_addstr(&input, o.members[i]);
        buf_add(&input, "\n", 1);
    }
    /* What Serf does to a user event or query payload. */
    if ((t == EV_USER || t == EV_QUERY) && input.len && input.data[input.len - 1] != '\n')
        buf_add(&input, "\n", 1);

    int in_pipe[2], out_pipe[2];
    if (pipe2(in_pipe, O_CLOEXEC) < 0 || pipe2(out_pipe, O_CLOEXEC) < 0) {
        fprintf(stderr, "serfhand run: pipe: %s\n", strerror(errno));
        goto out;
    }
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        fprintf(stderr, "serfhand run: fork: %s\n", strerror(errno));
        goto out;
    }
    if (pid == 0) {
        clear_serf_env();
        setenv("SERF_EVENT", o.event, 1);
        setenv("SERF_SELF_NAME", o.self ? o.self : "dev", 1);
        setenv("SERF_SELF_ROLE", "", 1);
        for (size_t i = 0; i < o.ntags; i++) {
            set_tag_env(o.tags[i]);
            if (strncmp(o.tags[i], "role=", 5) == 0)
                setenv("SERF_SELF_ROLE", o.tags[i] + 5, 1);
        }
        if (t == EV_USER || t == EV_QUERY) {
            setenv(t == EV_USER ? "SERF_USER_EVENT" : "SERF_QUERY_NAME", o.name, 1);
            setenv(t == EV_USER ? "SERF_USER_LTIME" : "SERF_QUERY_LTIME", o.ltime ? o.ltime : "1",
                   1);
        }
        /* Logs to this terminal, not into what Serf would receive. */
        int logfd = dup(2);
        char fdstr[16];
        snprintf(fdstr, sizeof fdstr, "%d", logfd);
        setenv("SERFHAND_LOG_FD", fdstr, 1);
        dup2(in_pipe[0], 0);
        dup2(out_pipe[1], 1);
        dup2(out_pipe[1], 2);
        char self[4096];
        ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
        if (n <= 0)
            _exit(SH_EXIT_USAGE);
        self[n] = '\0';
        char *args[6] = {self, (char *)"handle"};
        int n_args = 2;
        if (o.bundle) {
            args[n_args++] = (char *)"--bundle";
            args[n_args++] = (char *)o.bundle;
        }
        if (o.unsigned_ok)
            args[n_args++] = (char *)"--unsigned";
        args[n_args] = NULL;
        execv(self, args);
        _exit(SH_EXIT_USAGE);
    }
    close(in_pipe[0]);
    close(out_pipe[1]);
    signal(SIGPIPE, SIG_IGN);
    /* Payloads are small (Serf caps them at 9 KiB); the pipe holds 64 KiB. */
    if (input.len && write(in_pipe[1], input.data, input.len) < 0 && errno != EPIPE)
        fprintf(stderr, "serfhand run: writing stdin: %s\n", strerror(errno));
    close(in_pipe[1]);
    util_read_fd(out_pipe[0], 1024 * 1024, &output, err, sizeof err);
    close(out_pipe[0]);
    int status;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    rc = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    fwrite(output.data, 1, output.len, stdout);
    fflush(stdout);
    if (t == EV_QUERY)
        fprintf(stderr, "serfhand run: exit %d; %s (%zu bytes)\n", rc,
                rc == 0 && output.len ? "Serf sends this response" : "Serf sends no response",
                output.len);
    else
        fprintf(stderr, "serfhand run: exit %d; %zu bytes of output\n", rc, output.len);
out:
    buf_free(&input);
    buf_free(&output);
    return rc;
}

static const struct cmd_opt opts[] = {
    {.name = "--name",
     .kind = OPT_STR,
     .arg = "N",
     .help = "the user event's or query's name (user and query need it)"},
    {.name = "--payload", .kind = OPT_STR, .arg = "TEXT", .help = "the payload"},
    {.name = "--payload-file",
     .kind = OPT_STR,
     .arg = "F",
     .help = "the payload from file F, or stdin for -"},
    ARGS_OPT_BUNDLE,
    {.name = "--tag",
     .kind = OPT_LIST,
     .arg = "k=v",
     .help = "a tag of this node (SERF_TAG_K), repeatable"},
    {.name = "--member", .kind = OPT_LIST, .arg = "LINE", .help = "a member line, repeatable"},
    {.name = "--self", .kind = OPT_STR, .arg = "NAME", .help = "this node's name (default dev)"},
    {.name = "--ltime",
     .kind = OPT_STR,
     .arg = "N",
     .help = "the Lamport time of a user event or query (default 1)"},
    {.name = "--unsigned",
     .kind = OPT_FLAG,
     .help = "skip signature checks, for a bundle being written"},
    {NULL},
};

const struct cmd_entry cmd_run_entry = {
    .name = "run",
    .summary = "run one handler with a fake Serf environment and show what Serf would get",
    .opts = opts,
    .operands = "EVENT",
    .min_operands = 1,
    .max_operands = 1,
    .description =
        "EVENT is member-join, member-leave, member-failed, member-update, member-reap,\n"
        "user or query (user and query need --name). Member events read member lines\n"
        "(name TAB addr TAB role TAB k=v,...) from --member or the payload.\n"
        "Prints exactly what Serf would receive; the exit code is the handler's.",
    .exec = exec_run,
    .needs_config = true,
};
