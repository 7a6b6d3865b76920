/*
 * bundle.c: the active handler bundle. bundle_open verifies the signed
 * manifest once per run (signatures, threshold, recorded version, expiry);
 * bundle_read is the single place through which the sandbox reads a handler
 * or a module: it reads the file once, checks its size and BLAKE2b-256
 * against the manifest and returns exactly those bytes for loading.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "serfhand.h"

#define VERSION_KEY "bundle.highest_version"

bool bundle_valid_rel(const char *rel)
{
    return trust_valid_rel(rel);
}

static bool have_db(const char *state_dir)
{
    struct buf p = {0};
    buf_printf(&p, "%s/serfhand.db", state_dir);
    bool ok = access(p.data, F_OK) == 0;
    buf_free(&p);
    return ok;
}

static int read_version(struct store *s, long long *out, char *err, size_t errlen)
{
    struct buf v = {0};
    char sub[256];
    *out = 0;
    int rc = store_get(s, VERSION_KEY, &v, sub, sizeof sub);
    if (rc < 0) {
        util_errf(err, errlen, "%s", sub);
        return -1;
    }
    if (rc == 1) {
        char *end;
        errno = 0;
        long long n = strtoll(v.data, &end, 10);
        if (errno || end == v.data || *end || n < 0) {
            util_errf(err, errlen, "store: %s is not an integer", VERSION_KEY);
            buf_free(&v);
            return -1;
        }
        *out = n;
    }
    buf_free(&v);
    return 0;
}

/* Every run reads the record, so this is the fast path: a read-only
 * connection and one SELECT on store.c's kv table (store_open would switch
 * journal modes and create the schema: ~1 ms per process). Writes go
 * through the store API. */
int bundle_highest_version(const char *state_dir, long long *out, char *err, size_t errlen)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    struct buf path = {0};
    int rc = -1;
    *out = 0;
    if (!have_db(state_dir))
        return 0; /* nothing was ever recorded on this node */
    buf_printf(&path, "%s/serfhand.db", state_dir);
    if (sqlite3_open_v2(path.data, &db,
                        SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_NOFOLLOW,
                        NULL) != SQLITE_OK)
        goto out;
    sqlite3_busy_timeout(db, STORE_BUSY_MS);
    if (sqlite3_prepare_v2(db,
                           "SELECT value FROM kv WHERE key = ?1 AND "
                           "(expires IS NULL OR expires > ?2)",
                           -1, &st, NULL) != SQLITE_OK)
        goto out;
    sqlite3_bind_text(st, 1, VERSION_KEY, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, util_now_ms());
    int r = sqlite3_step(st);
    if (r == SQLITE_ROW) {
        char num[32] = "", *end;
        int n = sqlite3_column_bytes(st, 0);
        const void *p = sqlite3_column_blob(st, 0);
        if (n > 0 && n < (int)sizeof num && p)
            memcpy(num, p, (size_t)n);
        errno = 0;
        long long v = strtoll(num, &end, 10);
        if (errno || end == num || *end || v < 0) {
            util_errf(err, errlen, "store: %s is not an integer", VERSION_KEY);
            rc = -2;
            goto out;
        }
        *out = v;
    } else if (r != SQLITE_DONE) {
        goto out;
    }
    rc = 0;
out:
    if (rc == -1)
        util_errf(err, errlen, "store: %s: %s", path.data, db ? sqlite3_errmsg(db) : "cannot open");
    sqlite3_finalize(st);
    sqlite3_close(db);
    buf_free(&path);
    return rc < 0 ? -1 : 0;
}

int bundle_record_version(const char *state_dir, long long version, char *err, size_t errlen)
{
    struct store *s;
    long long cur;
    char num[32];
    if (store_open(&s, state_dir, err, errlen) < 0)
        return -1;
    int rc = read_version(s, &cur, err, errlen);
    if (rc == 0 && version > cur) {
        snprintf(num, sizeof num, "%lld", version);
        rc = store_put(s, VERSION_KEY, num, strlen(num), 0, err, errlen);
    }
    store_close(s);
    return rc;
}

/* The signed checks of bundle_open; b->dirfd is open. */
static int verify_open(struct bundle *b, const struct config *cfg, char *err, size_t errlen)
{
    struct buf man = {0};
    struct trust_keyset ks = {0};
    char sub[600];
    int distinct, rc = -1;
    int r =
        trust_read_beneath(b->dirfd, "MANIFEST.json", TRUST_MANIFEST_MAX, &man, sub, sizeof sub);
    if (r < 0) {
        util_errf(err, errlen, "bundle %s: %s", b->dir,
                  r == -2 ? "no MANIFEST.json: the bundle is not signed" : sub);
        goto out;
    }
    if (trust_keyset_load(&ks, cfg, sub, sizeof sub) < 0) {
        util_errf(err, errlen, "%s", sub);
        goto out;
    }
    if (trust_verify_sigs(b->dirfd, man.data, man.len, &ks, false, NULL, NULL, &distinct, sub,
                          sizeof sub) < 0) {
        util_errf(err, errlen, "bundle %s: %s", b->dir, sub);
        goto out;
    }
    b->manifest = xmalloc(sizeof *b->manifest);
    if (trust_manifest_parse(b->manifest, man.data, man.len, sub, sizeof sub) < 0) {
        free(b->manifest);
        b->manifest = NULL;
        util_errf(err, errlen, "bundle %s: %s", b->dir, sub);
        goto out;
    }
    const struct trust_manifest *m = b->manifest;
    const char *state = config_str(cfg, "state_dir");
    long long highest;
    if (bundle_highest_version(state, &highest, sub, sizeof sub) < 0) {
        util_errf(err, errlen, "bundle %s: recorded version unknown: %s", b->dir, sub);
        goto out;
    }
    if (m->version < highest) {
        util_errf(err, errlen,
                  "bundle %s version %lld is below the highest version this node "
                  "accepted (%lld): refused",
                  m->bundle, m->version, highest);
        goto out;
    }
    /* The first accepted bundle creates the record, so a later downgrade is
     * refused even on a node that never used the store. */
    if (m->version > highest && bundle_record_version(state, m->version, sub, sizeof sub) < 0)
        log_msg(LOG_LVL_WARN, "bundle %s version %lld: could not record the version: %s", m->bundle,
                m->version, sub);
    if ((long long)time(NULL) >= m->expires)
        log_msg(LOG_LVL_WARN,
                "bundle %s version %lld expired at %lld; it still runs, but "
                "`serfhand check` fails: install a newly signed bundle",
                m->bundle, m->version, m->expires);
    free(b->name);
    free(b->version);
    b->name = xstrdup(m->bundle);
    char v[32];
    snprintf(v, sizeof v, "%lld", m->version);
    b->version = xstrdup(v);
    rc = 0;
out:
    buf_free(&man);
    trust_keyset_free(&ks);
    return rc;
}

int bundle_open(struct bundle *b, const char *dir, const struct config *cfg, bool verify, char *err,
                size_t errlen)
{
    memset(b, 0, sizeof *b);
    b->dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (b->dirfd < 0) {
        util_errf(err, errlen, "bundle %s: %s", dir, strerror(errno));
        return -1;
    }
    b->dir = xstrdup(dir);
    b->name = xstrdup("unsigned");
    b->version = xstrdup("dev");
    b->max_file = (size_t)config_int(cfg, "limits.file_bytes");
    b->verify = verify;
    if (verify && verify_open(b, cfg, err, errlen) < 0) {
        bundle_close(b);
        return -1;
    }
    return 0;
}

void bundle_close(struct bundle *b)
{
    if (b->dir && b->dirfd >= 0)
        close(b->dirfd);
    if (b->manifest) {
        trust_manifest_free(b->manifest);
        free(b->manifest);
    }
    free(b->dir);
    free(b->name);
    free(b->version);
    memset(b, 0, sizeof *b);
    b->dirfd = -1;
}

int bundle_read(struct bundle *b, const char *rel, struct buf *out, char *err, size_t errlen)
{
    char sub[600];
    if (!bundle_valid_rel(rel)) {
        util_errf(err, errlen, "%s: not a bundle path", rel);
        return -1;
    }
    if (!b->verify) {
        int rc = trust_read_beneath(b->dirfd, rel, b->max_file, out, err, errlen);
        return rc == -2 ? 1 : rc;
    }
    if (!b->manifest) {
        util_errf(err, errlen, "%s: bundle not verified", rel);
        return -1;
    }
    const struct trust_file *f = trust_manifest_find(b->manifest, rel);
    if (!f) {
        struct stat st;
        if (fstatat(b->dirfd, rel, &st, AT_SYMLINK_NOFOLLOW) < 0 && errno == ENOENT)
            return 1; /* neither listed nor present: no such handler */
        util_errf(err, errlen, "%s: not listed in the signed manifest", rel);
        return -1;
    }
    if (trust_read_checked(b->dirfd, f, b->max_file, out, sub, sizeof sub) < 0) {
        util_errf(err, errlen, "%s", sub);
        return -1;
    }
    return 0;
}
