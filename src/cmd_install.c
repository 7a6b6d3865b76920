/*
 * cmd_install.c: `serfhand install DIR|URL`, reading a bundle from a
 * directory or over http(s) with size and time caps (install.c does the
 * verifying and switching), and update_announcement, the host's handler of
 * the serfhand-update user event (called by cmd_handle.c).
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

#define LOCK_WAIT_MS 30000

/* ------------------------------------------------------------ sources */

struct dir_src {
    int fd;
};

static int dir_read(void *ctx, const char *rel, size_t max, struct buf *out, char *err,
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

static int url_read(void *ctx, const char *rel, size_t max, struct buf *out, char *err,
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
    int rc = -1;
    if (r == HTTP_TIMEOUT)
        util_errf(err, errlen, "GET %s: %s (update.timeout_ms)", url.data, sub);
    else if (r == HTTP_TOO_BIG)
        util_errf(err, errlen, "GET %s: %s (the manifest's size, update.max_bytes)", url.data, sub);
    else if (r != HTTP_OK)
        util_errf(err, errlen, "GET %s: %s", url.data, sub);
    else if (status == 404 || status == 410) {
        util_errf(err, errlen, "GET %s: HTTP %ld", url.data, status);
        rc = -2;
    } else if (status != 200)
        util_errf(err, errlen, "GET %s: HTTP %ld", url.data, status);
    else
        rc = 0;
    if (rc == 0)
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

static int exec_install(int argc, char **argv, const struct config *cfg)
{
    struct install_opts o = {.lock_wait_ms = LOCK_WAIT_MS};
    const char *from = NULL;
    char msg[2048];
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--allow-downgrade") == 0) {
            o.allow_downgrade = true;
        } else if (strcmp(argv[i], "--wait") == 0 && i + 1 < argc) {
            char *end;
            long s = strtol(argv[++i], &end, 10);
            if (*end || s < 0 || s > 86400)
                goto usage;
            o.lock_wait_ms = (int)s * 1000;
        } else if (strcmp(argv[i], "--manifest-hash") == 0 && i + 1 < argc) {
            o.expect_hash = argv[++i];
        } else if (strcmp(argv[i], "--expect-name") == 0 && i + 1 < argc) {
            o.expect_name = argv[++i];
        } else if (argv[i][0] != '-' && !from) {
            from = argv[i];
        } else {
            goto usage;
        }
    }
    if (!from)
        goto usage;
    if (strstr(from, "://") && !is_url(from)) {
        fprintf(stderr, "serfhand install: %s: only http:// and https:// URLs are allowed\n", from);
        return SH_EXIT_USAGE;
    }
    struct install_source src = {.label = from};
    struct dir_src ds = {-1};
    struct url_src us = {0};
    char *base = NULL;
    if (is_url(from)) {
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
    int rc = install_bundle(cfg, &src, &o, msg, sizeof msg);
    if (rc == SH_EXIT_OK) {
        log_msg(LOG_LVL_INFO, "install: %s (%lld ms)", msg, (long long)(util_mono_ms() - t0));
        printf("%s\n", msg);
    } else {
        log_msg(LOG_LVL_ERROR, "install failed, nothing changed: %s", msg);
        if (strcmp(config_str(cfg, "log.target"), "stderr") != 0)
            fprintf(stderr, "serfhand install: %s\nnothing was changed\n", msg);
    }
    if (ds.fd >= 0)
        close(ds.fd);
    free(base);
    return rc;
usage:
    fprintf(stderr, "usage: serfhand install [--allow-downgrade] [--wait SECONDS] DIR|URL\n");
    return SH_EXIT_USAGE;
}

const struct cmd_entry cmd_install_entry = {
    "install",
    "[--allow-downgrade] [--wait SECONDS] DIR|URL\n\n"
    "Verify the bundle (signatures, threshold, files, expiry, version), copy it into\n"
    "<state_dir>/bundles/, verify the copy, compile its Lua (a syntax error is refused,\n"
    "exit 3) and switch <state_dir>/current to it. The\n"
    "previous bundle is kept (`serfhand rollback`). A URL is the base the bundle's files\n"
    "are published under (BASE/MANIFEST.json, BASE/handlers/...). --wait: how long to\n"
    "wait for another install (default 30). --manifest-hash HEX and --expect-name NAME\n"
    "pin the manifest (used by the install an update announcement starts).",
    "install a signed bundle from a directory or an http(s) URL and switch to it",
    exec_install,
    true,
};

/* ------------------------------------------------------------ announcement */

/* Start `serfhand [-c FILE] install ... URL` fully detached: double fork,
 * setsid, stdio on /dev/null, no other fds. The pid of the middle child is
 * reaped here; the installer is reparented. */
static int spawn_install(const struct config *cfg, const struct update_pointer *p, char *err,
                         size_t errlen)
{
    char self[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n <= 0) {
        util_errf(err, errlen, "cannot find the serfhand binary: %s", strerror(errno));
        return -1;
    }
    self[n] = 0;
    const char *argv[12];
    int a = 0;
    argv[a++] = "serfhand";
    if (cfg->file) {
        argv[a++] = "-c";
        argv[a++] = cfg->file;
    }
    argv[a++] = "install";
    argv[a++] = "--wait";
    argv[a++] = "300";
    argv[a++] = "--manifest-hash";
    argv[a++] = p->hash;
    argv[a++] = "--expect-name";
    argv[a++] = p->name;
    argv[a++] = p->url;
    argv[a] = NULL;
    pid_t pid = fork();
    if (pid < 0) {
        util_errf(err, errlen, "fork: %s", strerror(errno));
        return -1;
    }
    if (pid == 0) {
        if (setsid() < 0)
            _exit(1);
        pid_t q = fork();
        if (q != 0)
            _exit(q < 0 ? 1 : 0);
        int fd = open("/dev/null", O_RDWR);
        if (fd < 0)
            _exit(1);
        dup2(fd, 0);
        dup2(fd, 1);
        dup2(fd, 2);
        if (close_range(3, ~0U, 0) < 0) { /* Linux >= 5.9; else one by one */
            long maxfd = sysconf(_SC_OPEN_MAX);
            for (long i = 3; i < (maxfd > 0 && maxfd < 65536 ? maxfd : 65536); i++)
                close((int)i);
        }
        if (chdir("/") < 0)
            _exit(1);
        unsetenv("SERFHAND_LOG_FD");
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        signal(SIGPIPE, SIG_DFL);
        execv(self, (char *const *)argv);
        _exit(127);
    }
    int status;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        util_errf(err, errlen, "the detached installer could not be started");
        return -1;
    }
    return 0;
}

int update_announcement(const struct config *cfg, const char *payload, size_t len)
{
    struct trust_keyset ks = {0};
    struct update_pointer p;
    struct bundle b = {0};
    bool bopen = false;
    char err[1024], keyid[17];
    int rc = SH_EXIT_TRUST;
    b.dirfd = -1;
    if (trust_keyset_load(&ks, cfg, err, sizeof err) < 0) {
        log_msg(LOG_LVL_ERROR, "update announcement refused: %s", err);
        rc = SH_EXIT_USAGE;
        goto out;
    }
    if (update_pointer_decode(&p, payload, len, &ks, keyid, err, sizeof err) < 0) {
        log_msg(LOG_LVL_ERROR, "update announcement refused: %s", err);
        goto out;
    }
    long long now = (long long)time(NULL);
    if (now >= p.expires) {
        log_msg(LOG_LVL_ERROR,
                "update announcement refused: bundle %s version %lld, announcement "
                "expired at %lld (now %lld)",
                p.name, p.version, p.expires, now);
        goto out;
    }
    const char *dir = config_str(cfg, "bundle");
    if (bundle_open(&b, dir, cfg, true, err, sizeof err) < 0) {
        log_msg(LOG_LVL_ERROR,
                "update announcement for bundle %s version %lld refused: the active "
                "bundle cannot be verified, so its name and version are unknown (%s); install "
                "by hand with `serfhand install %s`",
                p.name, p.version, err, p.url);
        goto out;
    }
    bopen = true;
    long long active = strtoll(b.version, NULL, 10), highest = 0;
    if (bundle_highest_version(config_str(cfg, "state_dir"), &highest, err, sizeof err) < 0)
        highest = active;
    long long cur = highest > active ? highest : active;
    if (strcmp(p.name, b.name) != 0) {
        log_msg(LOG_LVL_ERROR,
                "update announcement refused: it is for bundle %s, this node runs "
                "bundle %s",
                p.name, b.name);
        goto out;
    }
    if (p.version == cur) {
        log_msg(LOG_LVL_INFO,
                "update announcement of bundle %s version %lld: already at this "
                "version, nothing to do",
                p.name, p.version);
        rc = SH_EXIT_OK;
        goto out;
    }
    if (p.version < cur) {
        log_msg(LOG_LVL_ERROR,
                "update announcement refused: version %lld of bundle %s is below "
                "this node's version %lld (downgrades are only done by an operator)",
                p.version, p.name, cur);
        goto out;
    }
    rc = SH_EXIT_OK;
    if (!config_bool(cfg, "update.auto")) {
        log_msg(LOG_LVL_INFO,
                "update announcement: bundle %s version %lld (manifest %.16s) at %s, "
                "signed by key %s; update.auto is off, so nothing is installed: an operator can "
                "run `serfhand install %s`",
                p.name, p.version, p.hash, p.url, keyid, p.url);
        goto out;
    }
    if (spawn_install(cfg, &p, err, sizeof err) < 0) {
        log_msg(LOG_LVL_ERROR, "update announcement: bundle %s version %lld: %s", p.name, p.version,
                err);
        rc = SH_EXIT_FAIL;
        goto out;
    }
    log_msg(LOG_LVL_INFO,
            "update announcement: bundle %s version %lld (manifest %.16s) signed by "
            "key %s: detached install from %s started (update.auto)",
            p.name, p.version, p.hash, keyid, p.url);
out:
    if (bopen)
        bundle_close(&b);
    trust_keyset_free(&ks);
    return rc;
}
