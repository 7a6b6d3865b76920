/*
 * cmd_handle.c: `serfhand handle` (also: no command), what Serf runs for each
 * event. It reads the SERF_* environment and stdin and hands the event to
 * run.c, which runs its handler of the active bundle and, for a query,
 * writes the response; serfhand-check and serfhand-update it answers itself
 * (check.c, update.c). Nothing else ever reaches stdout or stderr while a
 * query is handled.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "serfhand.h"

/* The CPU time this process has used, user and system, in ms. */
static long long cpu_ms(void)
{
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) != 0)
        return -1;
    return (long long)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000 +
           (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1000;
}

extern char **environ;

/* When the process started by exec_handle began (util_mono_ms). */
static int64_t started_ms;
/* What exit_now needs to count the run (metrics_record). */
static const struct config *run_cfg;
static const char *run_type;

/* The run's last log line. */
static void log_exit(int rc, const char *how)
{
    log_msg(LOG_LVL_DEBUG, "exit %d after %lld ms (%lld ms of CPU)%s", rc,
            (long long)(util_mono_ms() - started_ms), (long long)cpu_ms(), how);
}

/* What run_exec calls instead of its teardown when a child that
 * proc.spawn started still waits: the answer is written, so end here. */
static void exit_now(enum run_result res)
{
    int rc = cmd_exit_run(res);
    metrics_record(run_cfg, run_type, rc, util_mono_ms() - started_ms);
    log_exit(rc, ", without teardown: a spawned child shares this memory");
    log_close();
    _exit(rc);
}

/* Events the host answers itself, so they work with a broken bundle. */
static int handle_builtin(const struct config *cfg, const char *bundle_dir, const struct event *ev,
                          int out_fd)
{
    if (ev->type == EV_QUERY && strcmp(ev->name, "serfhand-check") == 0) {
        struct buf json = {0};
        check_report(cfg, bundle_dir, &json);
        int rc = util_write_all(out_fd, json.data, json.len) < 0 ? SH_EXIT_USAGE : SH_EXIT_OK;
        buf_free(&json);
        return rc;
    }
    if (ev->type == EV_USER && strcmp(ev->name, "serfhand-update") == 0) {
        return cmd_exit_update(update_announcement(cfg, ev->payload.data, ev->payload.len));
    }
    log_msg(LOG_LVL_ERROR, "refused: names starting with serfhand- are reserved for the host");
    return SH_EXIT_EVENT;
}

static bool is_reserved(const struct event *ev)
{
    return ev->name && strncmp(ev->name, "serfhand-", 9) == 0;
}

static int exec_handle(const struct args *a, const struct config *unused)
{
    (void)unused;
    started_ms = util_mono_ms();
    const char *type = getenv("SERF_EVENT");
    bool query = type && strcmp(type, "query") == 0;
    const char *bundle_dir = args_str(a, "--bundle", NULL);
    bool verify = !args_has(a, "--unsigned");
    const char *state_dir = args_str(a, "--state", NULL);
    char err[512];

    /* Keep the real stdout for the response only; whatever else writes to
     * fd 1 or 2 (a library, a crash message) must not become the answer. */
    int out_fd = fcntl(1, F_DUPFD_CLOEXEC, 3);
    int devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
    if (devnull >= 0) {
        dup2(devnull, 1);
        if (query)
            dup2(devnull, 2);
        close(devnull);
    }

    struct config cfg;
    if (config_load(&cfg, NULL, err, sizeof err) < 0) {
        log_open(&cfg, true); /* the defaults: syslog */
        log_msg(LOG_LVL_ERROR, "config: %s", err);
        if (!query)
            fprintf(stderr, "serfhand: config: %s\n", err);
        config_free(&cfg);
        return SH_EXIT_USAGE;
    }
    if (state_dir) /* serfhand run and test: their own state, never the node's */
        config_set_str(&cfg, "state_dir", state_dir);
    log_open(&cfg, query);

    struct buf in = {0};
    struct event ev;
    int rc;
    if (util_read_fd(0, (size_t)config_int(&cfg, "limits.stdin_bytes"), &in, err, sizeof err) < 0) {
        log_msg(LOG_LVL_ERROR, "stdin: %s", err);
        rc = SH_EXIT_EVENT;
        goto out_nofree;
    }
    int parsed = event_parse(&ev, environ, in.data, in.len, err, sizeof err);
    buf_free(&in); /* ev holds its own copy: not twice the payload while the handler runs */
    if (parsed < 0) {
        log_msg(LOG_LVL_ERROR, "refused event: %s", err);
        rc = SH_EXIT_EVENT;
        event_free(&ev);
        goto out_nofree;
    }
    {
        char ctx[128];
        snprintf(ctx, sizeof ctx, "%s%s%s", ev.type_name, ev.name ? ":" : "",
                 ev.name ? ev.name : "");
        log_set_context(ctx);
    }
    if (!bundle_dir)
        bundle_dir = config_str(&cfg, "bundle");
    if (is_reserved(&ev))
        rc = handle_builtin(&cfg, bundle_dir, &ev, out_fd);
    else {
        struct run_req r = {
            .cfg = &cfg,
            .bundle_dir = bundle_dir,
            .verify = verify,
            .mode = RUN_SERF,
            .ev = &ev,
            .out_fd = out_fd,
            .exit_now = exit_now,
        };
        run_cfg = &cfg;
        run_type = type;
        rc = cmd_exit_run(run_exec(&r, NULL, err, sizeof err));
    }
    event_free(&ev);
out_nofree:
    metrics_record(&cfg, type, rc, util_mono_ms() - started_ms);
    log_exit(rc, "");
    buf_free(&in);
    log_close();
    config_free(&cfg);
    if (out_fd >= 0)
        close(out_fd);
    return rc;
}

static const struct cmd_opt opts[] = {
    ARGS_OPT_BUNDLE,
    {.name = "--unsigned",
     .kind = OPT_FLAG,
     .help = "do not check signatures (serfhand run and tests only)"},
    {.name = "--state",
     .kind = OPT_STR,
     .arg = "DIR",
     .help = "the state directory instead of state_dir (serfhand run and tests only)"},
    {NULL},
};

const struct cmd_entry cmd_handle_entry = {
    .name = "handle",
    .summary = "handle one Serf event (what `serf agent -event-handler` runs)",
    .opts = opts,
    .description = "--unsigned runs a bundle without checking signatures and --state uses\n"
                   "another state directory: for `serfhand run` and tests only, never in an\n"
                   "agent's -event-handler line.",
    .exec = exec_handle,
    .needs_config = false,
    .quiet_usage = true,
};
