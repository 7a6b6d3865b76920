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
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "serfhand.h"

/* The highest bundle version this node accepted: one decimal line in
 * <state_dir>/bundle-version. Every run reads it, so it is a plain file
 * (one open and read), not a database row; changes take a lock, are written
 * to a temporary file, fsynced and renamed into place. */
#define VERSION_FILE "bundle-version"

bool bundle_valid_rel(const char *rel)
{
    return manifest_valid_rel(rel);
}

int bundle_highest_version(const char *state_dir, long long *out, char *err, size_t errlen)
{
    struct buf path = {0};
    char num[32];
    int rc = -1;
    *out = 0;
    buf_printf(&path, "%s/" VERSION_FILE, state_dir);
    int fd;
    enum util_open o = util_open_regular(path.data, O_NOFOLLOW, sizeof num, &fd, err, errlen);
    if (o != UTIL_OPEN_OK) {
        if (o == UTIL_OPEN_MISSING)
            rc = 0; /* nothing was ever recorded on this node */
        goto out;
    }
    ssize_t n = read(fd, num, sizeof num - 1);
    close(fd);
    if (n < 0) {
        util_errf(err, errlen, "%s: %s", path.data, strerror(errno));
        goto out;
    }
    num[n] = '\0';
    char *end;
    errno = 0;
    long long v = strtoll(num, &end, 10);
    if (errno || end == num || (*end && strcmp(end, "\n") != 0) || v < 0) {
        util_errf(err, errlen, "%s: not a version number", path.data);
        goto out;
    }
    *out = v;
    rc = 0;
out:
    buf_free(&path);
    return rc;
}

/* Write version under the lock: raise only (raise_only) or set exactly. */
static int write_version(const char *state_dir, long long version, bool raise_only, char *err,
                         size_t errlen)
{
    struct buf path = {0}, tmp = {0}, lock = {0};
    int rc = -1, lfd = -1, fd = -1, dfd = -1;
    long long cur;
    if (mkdir(state_dir, 0700) < 0 && errno != EEXIST) {
        util_errf(err, errlen, "%s: %s", state_dir, strerror(errno));
        goto out;
    }
    buf_printf(&path, "%s/" VERSION_FILE, state_dir);
    buf_printf(&tmp, "%s/." VERSION_FILE ".%ld", state_dir, (long)getpid());
    buf_printf(&lock, "%s/" VERSION_FILE ".lock", state_dir);
    lfd = open(lock.data, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (lfd < 0 || flock(lfd, LOCK_EX) < 0) {
        util_errf(err, errlen, "%s: %s", lock.data, strerror(errno));
        goto out;
    }
    if (bundle_highest_version(state_dir, &cur, err, errlen) < 0 && raise_only)
        goto out; /* a damaged record is only ever replaced on purpose */
    if (raise_only && version <= cur) {
        rc = 0;
        goto out;
    }
    char num[32];
    int n = snprintf(num, sizeof num, "%lld\n", version);
    fd = open(tmp.data, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0 || write(fd, num, (size_t)n) != n || fsync(fd) < 0 ||
        rename(tmp.data, path.data) < 0) {
        util_errf(err, errlen, "%s: %s", path.data, strerror(errno));
        unlink(tmp.data);
        goto out;
    }
    dfd = open(state_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0)
        fsync(dfd);
    rc = 0;
out:
    if (fd >= 0)
        close(fd);
    if (dfd >= 0)
        close(dfd);
    if (lfd >= 0)
        close(lfd); /* releases the lock */
    buf_free(&path);
    buf_free(&tmp);
    buf_free(&lock);
    return rc;
}

int bundle_record_version(const char *state_dir, long long version, char *err, size_t errlen)
{
    return write_version(state_dir, version, true, err, errlen);
}

int bundle_set_version(const char *state_dir, long long version, char *err, size_t errlen)
{
    return write_version(state_dir, version, false, err, errlen);
}

/* The signed checks of bundle_open; b->dirfd is open. */
static int verify_open(struct bundle *b, const struct config *cfg, char *err, size_t errlen)
{
    struct buf man = {0};
    struct trust_keyset ks = {0};
    char sub[600];
    int distinct, rc = -1;
    enum util_open r =
        util_read_limited(b->dirfd, "MANIFEST.json", MANIFEST_MAX, NULL, &man, sub, sizeof sub);
    if (r != UTIL_OPEN_OK) {
        util_errf(err, errlen, "bundle %s: %s", b->dir,
                  r == UTIL_OPEN_MISSING ? "no MANIFEST.json: the bundle is not signed" : sub);
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
    if (manifest_parse(b->manifest, man.data, man.len, sub, sizeof sub) < 0) {
        free(b->manifest);
        b->manifest = NULL;
        util_errf(err, errlen, "bundle %s: %s", b->dir, sub);
        goto out;
    }
    const struct manifest *m = b->manifest;
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
    b->name = xstrdup(m->bundle);
    b->version = m->version;
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
    b->max_file = (size_t)config_int(cfg, "limits.file_bytes");
    b->verify = verify;
    if (verify && verify_open(b, cfg, err, errlen) < 0) {
        bundle_close(b);
        return -1;
    }
    log_set_bundle(b->name, b->version);
    return 0;
}

void bundle_close(struct bundle *b)
{
    if (b->dir && b->dirfd >= 0)
        close(b->dirfd);
    if (b->manifest) {
        manifest_free(b->manifest);
        free(b->manifest);
    }
    free(b->dir);
    free(b->name);
    memset(b, 0, sizeof *b);
    b->dirfd = -1;
}

enum util_open bundle_read(struct bundle *b, const char *rel, struct buf *out, char *err,
                           size_t errlen)
{
    char sub[600];
    if (!bundle_valid_rel(rel)) {
        util_errf(err, errlen, "%s: not a bundle path", rel);
        return UTIL_OPEN_FAILED;
    }
    if (!b->verify)
        return util_read_limited(b->dirfd, rel, b->max_file, "limits.file_bytes", out, err, errlen);
    if (!b->manifest) {
        util_errf(err, errlen, "%s: bundle not verified", rel);
        return UTIL_OPEN_FAILED;
    }
    const struct manifest_file *f = manifest_find(b->manifest, rel);
    if (!f) {
        struct stat st;
        if (fstatat(b->dirfd, rel, &st, AT_SYMLINK_NOFOLLOW) < 0 && errno == ENOENT)
            return UTIL_OPEN_MISSING; /* neither listed nor present: no such handler */
        util_errf(err, errlen, "%s: not listed in the signed manifest", rel);
        return UTIL_OPEN_FAILED;
    }
    if (manifest_read_checked(b->dirfd, f, b->max_file, out, sub, sizeof sub) < 0) {
        util_errf(err, errlen, "%s", sub);
        return UTIL_OPEN_FAILED;
    }
    return UTIL_OPEN_OK;
}
