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

static const char run_usage[] =
    "EVENT [--name N] [--payload TEXT | --payload-file F|-] [--bundle DIR]\n"
    "       [--tag k=v]... [--member LINE]... [--self NAME] [--ltime N] [--unsigned]\n"
    "\n"
    "EVENT is member-join, member-leave, member-failed, member-update, member-reap,\n"
    "user or query (user and query need --name). Member events read member lines\n"
    "(name TAB addr TAB role TAB k=v,...) from --member or the payload.\n"
    "Prints exactly what Serf would receive; the exit code is the handler's.\n"
    "--unsigned skips signature checks, for a bundle being written.";

struct run_opts {
    const char *event, *name, *payload, *payload_file, *bundle, *self, *ltime;
    const char **tags, **members;
    size_t ntags, nmembers;
    bool unsigned_ok;
};

static int parse_args(struct run_opts *o, int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char **slot = NULL;
        if (strcmp(a, "--unsigned") == 0) {
            o->unsigned_ok = true;
            continue;
        }
        if (a[0] != '-') {
            if (o->event) {
                fprintf(stderr, "serfhand run: one EVENT only ('%s' and '%s')\n", o->event, a);
                return -1;
            }
            o->event = a;
            continue;
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "serfhand run: %s needs a value\n", a);
            return -1;
        }
        const char *v = argv[++i];
        if (strcmp(a, "--name") == 0)
            slot = &o->name;
        else if (strcmp(a, "--payload") == 0)
            slot = &o->payload;
        else if (strcmp(a, "--payload-file") == 0)
            slot = &o->payload_file;
        else if (strcmp(a, "--bundle") == 0)
            slot = &o->bundle;
        else if (strcmp(a, "--self") == 0)
            slot = &o->self;
        else if (strcmp(a, "--ltime") == 0)
            slot = &o->ltime;
        else if (strcmp(a, "--tag") == 0) {
            if (!strchr(v, '=') || v[0] == '=') {
                fprintf(stderr, "serfhand run: --tag wants k=v, not '%s'\n", v);
                return -1;
            }
            o->tags = xrealloc(o->tags, (o->ntags + 1) * sizeof *o->tags);
            o->tags[o->ntags++] = v;
            continue;
        } else if (strcmp(a, "--member") == 0) {
            o->members = xrealloc(o->members, (o->nmembers + 1) * sizeof *o->members);
            o->members[o->nmembers++] = v;
            continue;
        } else {
            fprintf(stderr, "serfhand run: unknown option '%s'\n", a);
            return -1;
        }
        *slot = v;
    }
    if (!o->event) {
        fprintf(stderr, "usage: serfhand run %s\n", run_usage);
        return -1;
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

static int exec_run(int argc, char **argv, const struct config *cfg)
{
    (void)cfg;
    struct run_opts o = {0};
    struct buf input = {0}, output = {0};
    char err[512];
    int rc = SH_EXIT_USAGE;
    int t = parse_args(&o, argc, argv);
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
    free(o.tags);
    free(o.members);
    buf_free(&input);
    buf_free(&output);
    return rc;
}

const struct cmd_entry cmd_run_entry = {
    .name = "run",
    .usage = run_usage,
    .summary = "run one handler with a fake Serf environment and show what Serf would get",
    .exec = exec_run,
    .needs_config = true,
};
