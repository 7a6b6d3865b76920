/*
 * cmd_verify.c: `serfhand verify DIR`, an offline report on a bundle
 * against the configured trust root: signatures, threshold, every listed
 * file, unlisted files, expiry, every Lua file compiled (check.c). Exit 0
 * ok, 3 the bundle fails (a node would refuse it), 2 usage.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "serfhand.h"

static int exec_verify(const struct args *a, const struct config *cfg)
{
    const char *dir = a->pos[0];
    bool json = args_has(a, "--json");
    char err[512];
    struct trust_keyset ks;
    if (trust_keyset_load(&ks, cfg, err, sizeof err) < 0) {
        fprintf(stderr, "serfhand verify: %s\n", err);
        return SH_EXIT_USAGE;
    }
    struct trust_report r;
    enum check_result res = check_verify(&r, dir, &ks, (size_t)config_int(cfg, "limits.file_bytes"),
                                         (int64_t)time(NULL));
    trust_report_print(&r, dir, json);
    int rc = res == CHECK_OK ? SH_EXIT_OK : SH_EXIT_TRUST;
    trust_report_free(&r);
    trust_keyset_free(&ks);
    return rc;
}

static const struct cmd_opt opts[] = {
    {.name = "--json", .kind = OPT_FLAG, .help = "one line of JSON instead of the text report"},
    {NULL},
};

const struct cmd_entry cmd_verify_entry = {
    .name = "verify",
    .summary = "check a bundle's signatures, threshold, files and Lua syntax against trust.keys "
               "(offline)",
    .opts = opts,
    .operands = "DIR",
    .min_operands = 1,
    .max_operands = 1,
    .description =
        "--json: {bundle, version, manifest, ok, threshold, valid_keys, created, expires,\n"
        "files, signatures, failed, problems} (dates in unix seconds); failed lists\n"
        "codes (bundle, manifest, signatures, files, expired, compile), problems the\n"
        "prose.",
    .exits = "  0 ok\n"
             "  2 usage, configuration, an unusable trust.keys\n"
             "  3 the bundle fails (a node would refuse it)",
    .exec = exec_verify,
    .needs_config = true,
};
