/*
 * cmd_metrics.c: `serfhand metrics`, the counters of metrics.c in the
 * Prometheus text exposition format on stdout, for a scraper or a look.
 * It only reads: the journal is folded in memory (at most it creates the
 * empty metrics.lock it shares with compactions).
 */
#include <stdio.h>
#include <stdlib.h>

#include "serfhand.h"

static int exec_metrics(const struct args *a, const struct config *cfg)
{
    (void)a;
    struct metrics *m = xmalloc(sizeof *m);
    struct buf out = {0};
    char err[512];
    int rc = SH_EXIT_OK;
    if (!config_bool(cfg, "metrics.enabled"))
        fprintf(stderr, "serfhand: metrics.enabled is false: no run is being counted\n");
    if (metrics_read(config_str(cfg, "state_dir"), m, err, sizeof err) < 0) {
        fprintf(stderr, "serfhand: %s\n", err);
        rc = SH_EXIT_USAGE;
        goto out;
    }
    metrics_render(m, &out);
    if (util_write_all(1, out.data, out.len) < 0)
        rc = SH_EXIT_USAGE;
out:
    buf_free(&out);
    free(m);
    return rc;
}

const struct cmd_entry cmd_metrics_entry = {
    .name = "metrics",
    .summary = "print the run counters (metrics.enabled) in the Prometheus text format",
    .description = "Events by type and outcome, handler durations (a histogram), refusals and\n"
                   "limit hits, counted since metrics.enabled was turned on. With\n"
                   "metrics.textfile set, every `serfhand tick` also writes them there for\n"
                   "node_exporter's textfile collector.",
    .exits = "  0 printed (no samples when metrics are off or nothing ran yet)\n"
             "  2 usage, configuration, or the state cannot be read (no state_dir yet)",
    .exec = exec_metrics,
    .needs_config = true,
};
