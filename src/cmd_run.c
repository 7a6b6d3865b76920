/*
 * cmd_run.c: `serfhand run`, the handler author's simulator. It runs
 * `handle` in a child exactly as Serf would (run_serf, run.c) and prints what
 * Serf would receive (stdout and stderr together) plus the exit code. Logs
 * go to this terminal's stderr.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "serfhand.h"

struct run_opts {
    const char *event, *name, *payload, *payload_file, *bundle, *self, *ltime, *state;
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
    o->state = args_str(a, "--state", NULL);
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

static int exec_run(const struct args *a, const struct config *cfg)
{
    (void)cfg;
    struct run_opts o = {0};
    struct buf input = {0};
    char err[512], *scratch = NULL;
    int rc = SH_EXIT_USAGE;
    int t = read_opts(&o, a);
    if (t < 0)
        goto out;
    /* An author's simulator never writes into the node's state. */
    if (o.state)
        fprintf(stderr, "serfhand run: state directory %s (--state): the handler writes there\n",
                o.state);
    else if (!(o.state = scratch = run_scratch_state("serfhand-run", err, sizeof err))) {
        fprintf(stderr, "serfhand run: %s\n", err);
        goto out;
    }

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

    struct run_serf sim = {
        .type = (enum event_type)t,
        .name = o.name,
        .payload = input.data,
        .payload_len = input.len,
        .self = o.self,
        .ltime = o.ltime,
        .tags = o.tags,
        .ntags = o.ntags,
        .bundle_dir = o.bundle,
        .state_dir = o.state,
        .unsigned_ok = o.unsigned_ok,
        .log_fd = 2, /* logs to this terminal, not into what Serf would receive */
    };
    struct run_serf_out res = {0};
    if (run_serf(&sim, &res, err, sizeof err) < 0) {
        fprintf(stderr, "serfhand run: %s\n", err);
        goto out;
    }
    rc = res.code;
    if (res.out.len)
        fwrite(res.out.data, 1, res.out.len, stdout);
    fflush(stdout);
    if (t == EV_QUERY)
        fprintf(stderr, "serfhand run: exit %d; %s (%zu bytes)\n", rc,
                rc == 0 && res.out.len ? "Serf sends this response" : "Serf sends no response",
                res.out.len);
    else
        fprintf(stderr, "serfhand run: exit %d; %zu bytes of output\n", rc, res.out.len);
    buf_free(&res.out);
    buf_free(&res.log);
out:
    run_scratch_remove(scratch);
    free(scratch);
    buf_free(&input);
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
    {.name = "--state",
     .kind = OPT_STR,
     .arg = "DIR",
     .help = "the state directory (default: a scratch one, removed at exit; never the node's)"},
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
        "Prints exactly what Serf would receive; the exit code is the handler's.\n"
        "The handler's state (store, recorded bundle version) goes to a scratch\n"
        "directory under $TMPDIR, removed at exit, unless --state DIR is given.",
    .exec = exec_run,
    .needs_config = true,
};
