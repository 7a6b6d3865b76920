/*
 * cmd_install.c: `serfhand install DIR|URL`, reading a bundle from a
 * directory or over http(s) with size and time caps; install.c does the
 * verifying and switching.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "serfhand.h"

#define LOCK_WAIT_S 30 /* --wait by default */

/* ------------------------------------------------------------ sources */

struct dir_src {
    int fd;
};

static enum util_open dir_read(void *ctx, const char *rel, size_t max, struct buf *out, char *err,
                               size_t errlen)
{
    struct dir_src *d = ctx;
    return util_read_beneath(d->fd, rel, max, out, err, errlen);
}

struct url_src {
    const char *base; /* no trailing slash */
    long timeout_ms;
    size_t max_bytes;
};

static enum util_open url_read(void *ctx, const char *rel, size_t max, struct buf *out, char *err,
                               size_t errlen)
{
    struct url_src *u = ctx;
    struct buf url = {0};
    char sub[512];
    long status = 0;
    buf_printf(&url, "%s/%s", u->base, rel);
    struct http_req req = {
        .url = url.data,
        .timeout_ms = u->timeout_ms,
        .max_bytes = max < u->max_bytes ? max : u->max_bytes,
    };
    int64_t t0 = util_mono_ms();
    int r = http_get(&req, out, &status, sub, sizeof sub);
    enum util_open rc = UTIL_OPEN_FAILED;
    if (r == HTTP_TIMEOUT)
        util_errf(err, errlen, "GET %s: %s (update.timeout_ms)", url.data, sub);
    else if (r == HTTP_TOO_BIG)
        util_errf(err, errlen, "GET %s: %s (%s)", url.data, sub,
                  max == INSTALL_MANIFEST_MAX || max == INSTALL_SIG_MAX
                      ? "the cap read before any signature check"
                      : "the manifest's size, update.max_bytes");
    else if (r != HTTP_OK)
        util_errf(err, errlen, "GET %s: %s", url.data, sub);
    else if (status == 404 || status == 410) {
        util_errf(err, errlen, "GET %s: HTTP %ld", url.data, status);
        rc = UTIL_OPEN_MISSING;
    } else if (status != 200)
        util_errf(err, errlen, "GET %s: HTTP %ld", url.data, status);
    else
        rc = UTIL_OPEN_OK;
    if (rc == UTIL_OPEN_OK)
        log_msg(LOG_LVL_DEBUG, "install: GET %s: %zu bytes in %lld ms", url.data, out->len,
                (long long)(util_mono_ms() - t0));
    else
        buf_free(out);
    buf_free(&url);
    return rc;
}

static bool is_url(const char *s)
{
    return strncasecmp(s, "http://", 7) == 0 || strncasecmp(s, "https://", 8) == 0;
}

/* ------------------------------------------------------------ install */

/* --json: {ok, result, message[, active]}, active being the bundle now at
 * <state_dir>/current as `verify --json` reports it. */
static void print_json(const struct config *cfg, enum install_result res, const char *msg)
{
    static const char *const results[] = {
        [INSTALL_OK] = "installed",
        [INSTALL_REFUSED] = "refused",
        [INSTALL_FAILED] = "failed",
        [INSTALL_ERROR] = "error",
    };
    struct buf o = {0}, dir = {0};
    buf_printf(&o,
               "{\"ok\":%s,\"result\":\"%s\",\"message\":", res == INSTALL_OK ? "true" : "false",
               results[res]);
    util_json_str(&o, msg);
    struct trust_keyset ks;
    char err[512];
    if (res == INSTALL_OK && trust_keyset_load(&ks, cfg, err, sizeof err) == 0) {
        struct trust_report r;
        buf_printf(&dir, "%s/current", config_str(cfg, "state_dir"));
        trust_check_bundle(&r, dir.data, &ks, (size_t)config_int(cfg, "limits.file_bytes"),
                           util_now_ms() / 1000);
        buf_addstr(&o, ",\"active\":");
        trust_report_json(&r, true, 0, &o);
        trust_report_free(&r);
        trust_keyset_free(&ks);
    }
    buf_addstr(&o, "}\n");
    fwrite(o.data, 1, o.len, stdout);
    buf_free(&o);
    buf_free(&dir);
}

static int exec_install(const struct args *a, const struct config *cfg)
{
    struct install_opts o = {
        .allow_downgrade = args_has(a, "--allow-downgrade"),
        .expect_hash = args_str(a, "--manifest-hash", NULL),
        .expect_name = args_str(a, "--expect-name", NULL),
        .lock_wait_ms = (int)args_num(a, "--wait", LOCK_WAIT_S) * 1000,
    };
    const char *from = a->pos[0];
    char msg[2048];
    if (strstr(from, "://") && !is_url(from)) {
        fprintf(stderr, "serfhand install: %s: only http:// and https:// URLs are allowed\n", from);
        return SH_EXIT_USAGE;
    }
    struct install_source src = {.label = from};
    struct dir_src ds = {-1};
    struct url_src us = {0};
    char *base = NULL;
    if (is_url(from)) {
        /* The operator typing a URL consents to that URL, but a node's
         * update.sources says where its bundles come from: a URL outside it
         * (a typo, a pasted link) needs --allow-source, and plain http needs
         * update.allow_http either way. Checked before any byte is fetched. */
        char why[1024];
        bool allow_src = args_has(a, "--allow-source");
        bool http_ok = config_bool(cfg, "update.allow_http");
        if (strncasecmp(from, "http://", 7) == 0 && !http_ok) {
            fprintf(stderr,
                    "serfhand install: %s is plain http (no transport security): refused unless "
                    "update.allow_http = true\n",
                    from);
            log_msg(LOG_LVL_ERROR, "install refused, nothing fetched: %s is plain http", from);
            return SH_EXIT_USAGE;
        }
        size_t nsrc = 0;
        char *const *srcs = config_list(cfg, "update.sources", &nsrc);
        bool listed = update_source_check(srcs, nsrc, http_ok, from, why, sizeof why) == 0;
        if (!listed && !allow_src) {
            fprintf(stderr,
                    "serfhand install: refused: %s; add its prefix to update.sources, or pass "
                    "--allow-source to install from it once\n",
                    why);
            log_msg(LOG_LVL_ERROR, "install refused, nothing fetched: %s", why);
            return SH_EXIT_USAGE;
        }
        if (!listed)
            log_msg(LOG_LVL_WARN, "install: %s is outside update.sources (--allow-source)", from);
        base = xstrdup(from);
        size_t n = strlen(base);
        while (n > 8 && base[n - 1] == '/')
            base[--n] = 0;
        us.base = base;
        us.timeout_ms = (long)config_int(cfg, "update.timeout_ms");
        us.max_bytes = (size_t)config_int(cfg, "update.max_bytes");
        src.read = url_read;
        src.ctx = &us;
    } else {
        ds.fd = open(from, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (ds.fd < 0) {
            fprintf(stderr, "serfhand install: %s: %s\n", from, strerror(errno));
            return SH_EXIT_USAGE;
        }
        src.read = dir_read;
        src.ctx = &ds;
        src.dir = from;
    }
    log_msg(LOG_LVL_INFO, "install: from %s%s", from,
            o.allow_downgrade ? " (--allow-downgrade)" : "");
    int64_t t0 = util_mono_ms();
    enum install_result res = install_bundle(cfg, &src, &o, msg, sizeof msg);
    int rc = cmd_exit_install(res);
    if (rc == SH_EXIT_OK)
        log_msg(LOG_LVL_INFO, "install: %s (%lld ms)", msg, (long long)(util_mono_ms() - t0));
    else
        log_msg(LOG_LVL_ERROR, "install failed, nothing changed: %s", msg);
    if (args_has(a, "--json"))
        print_json(cfg, res, msg);
    else if (rc == SH_EXIT_OK)
        printf("%s\n", msg);
    else if (strcmp(config_str(cfg, "log.target"), "stderr") != 0)
        fprintf(stderr, "serfhand install: %s\nnothing was changed\n", msg);
    if (ds.fd >= 0)
        close(ds.fd);
    free(base);
    return rc;
}

static const struct cmd_opt opts[] = {
    {.name = "--allow-downgrade",
     .kind = OPT_FLAG,
     .help = "install a version below the highest this node accepted"},
    {.name = "--allow-source",
     .kind = OPT_FLAG,
     .help = "install from a URL outside update.sources (logged)"},
    ARGS_OPT_WAIT,
    {.name = "--manifest-hash",
     .kind = OPT_STR,
     .arg = "HEX",
     .help = "refuse any other manifest (BLAKE2b-256)",
     .hidden = true},
    {.name = "--expect-name",
     .kind = OPT_STR,
     .arg = "NAME",
     .help = "refuse a bundle of another name",
     .hidden = true},
    {.name = "--json", .kind = OPT_FLAG, .help = "one line of JSON, also when it fails"},
    {NULL},
};

const struct cmd_entry cmd_install_entry = {
    .name = "install",
    .summary = "install a signed bundle from a directory or an http(s) URL and switch to it",
    .opts = opts,
    .operands = "DIR|URL",
    .min_operands = 1,
    .max_operands = 1,
    .description =
        "Verify the bundle (signatures, threshold, files, expiry, version), copy it into\n"
        "<state_dir>/bundles/, verify the copy, compile its Lua (a syntax error is refused,\n"
        "exit 3) and switch <state_dir>/current to it. The previous bundle is kept\n"
        "(`serfhand rollback`). A URL is the base the bundle's files are published under\n"
        "(BASE/MANIFEST.json, BASE/handlers/...); it must be under a prefix of\n"
        "update.sources (as an announced URL must) unless --allow-source is given, and\n"
        "http:// needs update.allow_http = true. --manifest-hash HEX and --expect-name\n"
        "NAME pin the manifest (used by the install an update announcement starts).\n"
        "--json: {ok, result (installed, refused, failed, error), message, active},\n"
        "active being the now active bundle as `verify --json` reports it.",
    .exits = "  0 installed\n"
             "  1 the source, the disk or the lock failed\n"
             "  2 usage, an unusable state_dir or trust.keys, a URL outside update.sources\n"
             "  3 refused: verification, compilation, expiry, a lower version without\n"
             "    --allow-downgrade",
    .exec = exec_install,
    .needs_config = true,
};
