/*
 * install.c: installs a verified bundle into <state_dir>/bundles/ and, once
 * the copy verifies and compiles, switches <state_dir>/current atomically
 * (temp dir + rename, temp symlink + rename, fsync everywhere), keeps
 * <state_dir>/previous, prunes, rolls back; and the signed serfhand-update
 * pointer codec. Used by cmd_install.c, cmd_announce.c and cmd_rollback.c.
 */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "serfhand.h"

#define SIG_MAX 16384
#define LINK_MAX_LEN 4096

void install_test_crash(const char *step)
{
    const char *at = getenv("SERFHAND_TEST_CRASH_AT");
    if (at && strcmp(at, step) == 0) {
        log_msg(LOG_LVL_WARN, "install: test hook: killed at step %s", step);
        kill(getpid(), SIGKILL);
    }
}

/* ------------------------------------------------------------ files */

static int fsync_fd_dir(int dfd)
{
    return fsync(dfd) < 0 && errno != EINVAL ? -1 : 0;
}

static int mkdir_p(const char *path, char *err, size_t errlen)
{
    char *p = xstrdup(path);
    for (char *s = p + 1;; s++) {
        if (*s == '/' || *s == 0) {
            char c = *s;
            *s = 0;
            if (mkdir(p, 0755) < 0 && errno != EEXIST) {
                util_errf(err, errlen, "%s: %s", p, strerror(errno));
                free(p);
                return -1;
            }
            if (!c)
                break;
            *s = c;
        }
    }
    free(p);
    return 0;
}

/* Remove name below dfd and everything in it (symlinks are not followed). */
static int rm_tree(int dfd, const char *name)
{
    int fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return unlinkat(dfd, name, 0) < 0 && errno != ENOENT ? -1 : 0;
    DIR *d = fdopendir(fd);
    if (!d) {
        close(fd);
        return -1;
    }
    struct dirent *e;
    while ((e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
            rm_tree(dirfd(d), e->d_name);
    closedir(d);
    return unlinkat(dfd, name, AT_REMOVEDIR) < 0 && errno != ENOENT ? -1 : 0;
}

static int write_all(int fd, const char *p, size_t n)
{
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Write rel (with its parent directories) below rootfd and fsync it; the
 * directories made are added to dirs (one NUL-terminated path each). */
static int write_at(int rootfd, const char *rel, const struct buf *b, struct buf *dirs, char *err,
                    size_t errlen)
{
    char *p = xstrdup(rel);
    int rc = -1;
    for (char *s = strchr(p, '/'); s; s = strchr(s + 1, '/')) {
        *s = 0;
        if (mkdirat(rootfd, p, 0755) == 0)
            buf_add(dirs, p, strlen(p) + 1);
        else if (errno != EEXIST) {
            util_errf(err, errlen, "%s: %s", p, strerror(errno));
            goto out;
        }
        *s = '/';
    }
    int fd = openat(rootfd, rel, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
    if (fd < 0) {
        util_errf(err, errlen, "%s: %s", rel, strerror(errno));
        goto out;
    }
    bool ok = write_all(fd, b->data ? b->data : "", b->len) == 0 && fsync(fd) == 0;
    ok = close(fd) == 0 && ok;
    if (!ok) {
        util_errf(err, errlen, "%s: %s", rel, strerror(errno));
        goto out;
    }
    rc = 0;
out:
    free(p);
    return rc;
}

/* fsync every directory in dirs (deepest last made first) and the root. */
static int fsync_dirs(int rootfd, const struct buf *dirs, char *err, size_t errlen)
{
    size_t off = dirs->len;
    while (off > 0) {
        size_t start = off - 1;
        while (start > 0 && dirs->data[start - 1] != 0)
            start--;
        const char *d = dirs->data + start;
        int fd = openat(rootfd, d, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0 || fsync_fd_dir(fd) < 0) {
            util_errf(err, errlen, "fsync %s: %s", d, strerror(errno));
            if (fd >= 0)
                close(fd);
            return -1;
        }
        close(fd);
        off = start;
    }
    if (fsync_fd_dir(rootfd) < 0) {
        util_errf(err, errlen, "fsync: %s", strerror(errno));
        return -1;
    }
    return 0;
}

/* The target of the symlink name in statefd, malloc'ed; NULL when absent
 * (1) or not a symlink (-1 with err). */
static int read_link(int statefd, const char *name, char **out, char *err, size_t errlen)
{
    char t[LINK_MAX_LEN];
    *out = NULL;
    ssize_t n = readlinkat(statefd, name, t, sizeof t - 1);
    if (n < 0) {
        if (errno == ENOENT)
            return 1;
        util_errf(err, errlen, "%s: %s (it must be a symlink that serfhand manages)", name,
                  errno == EINVAL ? "not a symlink" : strerror(errno));
        return -1;
    }
    t[n] = 0;
    *out = xstrdup(t);
    return 0;
}

/* Point name at target atomically: a temp symlink renamed over it. */
static int set_link(int statefd, const char *name, const char *target, const char *step, char *err,
                    size_t errlen)
{
    char tmp[128];
    snprintf(tmp, sizeof tmp, ".%s.tmp-%ld", name, (long)getpid());
    unlinkat(statefd, tmp, 0);
    if (symlinkat(target, statefd, tmp) < 0) {
        util_errf(err, errlen, "symlink %s: %s", tmp, strerror(errno));
        return -1;
    }
    if (step)
        install_test_crash(step);
    if (renameat(statefd, tmp, statefd, name) < 0) {
        util_errf(err, errlen, "cannot switch %s: %s", name, strerror(errno));
        unlinkat(statefd, tmp, 0);
        return -1;
    }
    if (fsync_fd_dir(statefd) < 0) {
        util_errf(err, errlen, "fsync of the state directory: %s", strerror(errno));
        return -1;
    }
    return 0;
}

/* "bundles/NAME" -> NAME (inside bundles/), else NULL. */
static const char *bundle_of(const char *target)
{
    if (!target || strncmp(target, "bundles/", 8) != 0 || !target[8] || strchr(target + 8, '/'))
        return NULL;
    return target + 8;
}

/* Remove what a crashed install left: bundles/.tmp-*, bundles/.del-* and
 * the temp symlinks. Only called with the lock held. */
static void clean_stale(int statefd, int bfd)
{
    static const char *const dirs_prefix[] = {".tmp-", ".del-"};
    for (int pass = 0; pass < 2; pass++) {
        int fd = dup(pass ? statefd : bfd);
        DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
        if (!d) {
            if (fd >= 0)
                close(fd);
            continue;
        }
        rewinddir(d); /* a dup shares the offset of the fd it came from */
        struct dirent *e;
        char **names = NULL;
        size_t n = 0;
        while ((e = readdir(d))) {
            bool stale = false;
            if (!pass)
                stale = strncmp(e->d_name, dirs_prefix[0], 5) == 0 ||
                        strncmp(e->d_name, dirs_prefix[1], 5) == 0;
            else
                stale = strncmp(e->d_name, ".current.tmp-", 13) == 0 ||
                        strncmp(e->d_name, ".previous.tmp-", 14) == 0;
            if (stale) {
                names = xrealloc(names, (n + 1) * sizeof *names);
                names[n++] = xstrdup(e->d_name);
            }
        }
        closedir(d);
        for (size_t i = 0; i < n; i++) {
            log_msg(LOG_LVL_INFO, "install: removing %s left by an interrupted install", names[i]);
            rm_tree(pass ? statefd : bfd, names[i]);
            free(names[i]);
        }
        free(names);
        fsync_fd_dir(pass ? statefd : bfd);
    }
}

/* ------------------------------------------------------------ state */

struct state {
    const char *dir;
    int fd, bfd, lockfd;
};

static void state_close(struct state *st)
{
    if (st->bfd >= 0)
        close(st->bfd);
    if (st->fd >= 0)
        close(st->fd);
    if (st->lockfd >= 0)
        close(st->lockfd); /* releases the flock */
    st->fd = st->bfd = st->lockfd = -1;
}

/* Make and open the state dir and bundles/, take the install lock, clean up. */
static int state_open(struct state *st, const struct config *cfg, int wait_ms, char *err,
                      size_t errlen)
{
    st->dir = config_str(cfg, "state_dir");
    st->fd = st->bfd = st->lockfd = -1;
    if (mkdir_p(st->dir, err, errlen) < 0)
        return -1;
    st->fd = open(st->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (st->fd < 0) {
        util_errf(err, errlen, "%s: %s", st->dir, strerror(errno));
        return -1;
    }
    if (mkdirat(st->fd, "bundles", 0755) < 0 && errno != EEXIST) {
        util_errf(err, errlen, "%s/bundles: %s", st->dir, strerror(errno));
        return -1;
    }
    st->bfd = openat(st->fd, "bundles", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    st->lockfd = openat(st->fd, "install.lock", O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (st->bfd < 0 || st->lockfd < 0) {
        util_errf(err, errlen, "%s: %s", st->dir, strerror(errno));
        return -1;
    }
    int64_t until = util_mono_ms() + (wait_ms > 0 ? wait_ms : 0);
    bool told = false;
    while (flock(st->lockfd, LOCK_EX | LOCK_NB) < 0) {
        if (errno != EWOULDBLOCK && errno != EINTR) {
            util_errf(err, errlen, "%s/install.lock: %s", st->dir, strerror(errno));
            return -1;
        }
        if (util_mono_ms() >= until) {
            util_errf(err, errlen,
                      "another install is running (%s/install.lock held for over %d "
                      "ms): try again when it has finished",
                      st->dir, wait_ms);
            return -2;
        }
        if (!told)
            log_msg(LOG_LVL_INFO, "install: waiting for another install to finish");
        told = true;
        usleep(50 * 1000);
    }
    install_test_crash("locked");
    clean_stale(st->fd, st->bfd);
    return 0;
}

/* Full check of an installed copy: no problems and the expected manifest. */
static int verify_copy(const struct state *st, const char *rel, const struct trust_keyset *ks,
                       size_t max_file, const char *hash, struct trust_report *r, char *err,
                       size_t errlen)
{
    struct buf path = {0};
    buf_printf(&path, "%s/%s", st->dir, rel);
    trust_check_bundle(r, path.data, ks, max_file, (int64_t)time(NULL));
    int rc = 0;
    if (r->problems.n) {
        util_errf(err, errlen, "%s does not verify: %s%s", path.data, r->problems.v[0],
                  r->problems.n > 1 ? " (and more)" : "");
        rc = -1;
    } else if (hash && strcmp(r->manifest_hash, hash) != 0) {
        util_errf(err, errlen, "%s holds another manifest (%.16s, not %.16s)", path.data,
                  r->manifest_hash, hash);
        rc = -1;
    }
    buf_free(&path);
    return rc;
}

/* ------------------------------------------------------------ prune */

struct entry {
    char *name;
    long long version;
};

static int cmp_entry(const void *a, const void *b)
{
    const struct entry *x = a, *y = b;
    if (x->version != y->version)
        return x->version < y->version ? -1 : 1;
    return strcmp(x->name, y->name);
}

/* Keep at most keep bundles, never current's or previous'; the lowest
 * versions go first. Each is renamed to .del-* before removal, so a crash
 * never leaves a half-removed bundle under its real name. */
static void prune(struct state *st, long long keep)
{
    char *cur = NULL, *prev = NULL, err[256];
    read_link(st->fd, "current", &cur, err, sizeof err);
    read_link(st->fd, "previous", &prev, err, sizeof err);
    const char *cn = bundle_of(cur), *pn = bundle_of(prev);
    int fd = dup(st->bfd);
    DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
    struct entry *v = NULL;
    size_t n = 0, total = 0;
    if (!d) {
        if (fd >= 0)
            close(fd);
        goto out;
    }
    rewinddir(d); /* a dup shares the offset of the fd it came from */
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        total++;
        if ((cn && strcmp(cn, e->d_name) == 0) || (pn && strcmp(pn, e->d_name) == 0))
            continue;
        v = xrealloc(v, (n + 1) * sizeof *v);
        v[n].name = xstrdup(e->d_name);
        v[n].version = strtoll(e->d_name, NULL, 10);
        n++;
    }
    closedir(d);
    if (n)
        qsort(v, n, sizeof *v, cmp_entry);
    for (size_t i = 0; i < n && total > (size_t)keep; i++, total--) {
        char del[300];
        snprintf(del, sizeof del, ".del-%ld-%s", (long)getpid(), v[i].name);
        if (renameat(st->bfd, v[i].name, st->bfd, del) == 0) {
            fsync_fd_dir(st->bfd);
            rm_tree(st->bfd, del);
            log_msg(LOG_LVL_INFO, "install: pruned bundles/%s (update.keep = %lld)", v[i].name,
                    keep);
        }
    }
    fsync_fd_dir(st->bfd);
out:
    for (size_t i = 0; i < n; i++)
        free(v[i].name);
    free(v);
    free(cur);
    free(prev);
}

/* ------------------------------------------------------------ install */

static int refuse(char *msg, size_t msglen, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int refuse(char *msg, size_t msglen, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, msglen, fmt, ap);
    va_end(ap);
    return code;
}

int install_bundle(const struct config *cfg, const struct install_source *src,
                   const struct install_opts *o, char *msg, size_t msglen)
{
    struct state st = {0};
    struct trust_keyset ks = {0};
    struct manifest m = {0};
    struct trust_report rep = {0};
    struct buf man = {0}, file = {0}, dirs = {0};
    char sub[1024], hex[65], tmpname[64], dirname[128], target[160];
    char absent[1030] = ""; /* a URL: the first trusted key's signature it did not serve */
    char *cur = NULL;
    int tfd = -1, srcfd = -1, rc = SH_EXIT_USAGE;
    bool tmp_made = false;
    size_t max_file = (size_t)config_int(cfg, "limits.file_bytes");
    size_t max_dl = (size_t)config_int(cfg, "update.max_bytes");
    const char *label = src->label;

    int r = state_open(&st, cfg, o->lock_wait_ms, sub, sizeof sub);
    if (r < 0) {
        rc = refuse(msg, msglen, r == -2 ? SH_EXIT_FAIL : SH_EXIT_USAGE, "%s", sub);
        goto out;
    }
    if (trust_keyset_load(&ks, cfg, sub, sizeof sub) < 0) {
        rc = refuse(msg, msglen, SH_EXIT_USAGE, "%s", sub);
        goto out;
    }
    if (read_link(st.fd, "current", &cur, sub, sizeof sub) < 0) {
        rc = refuse(msg, msglen, SH_EXIT_USAGE, "%s/%s", st.dir, sub);
        goto out;
    }

    /* 1. The manifest and the signatures of the trusted keys, staged. */
    r = src->read(src->ctx, "MANIFEST.json", MANIFEST_MAX, &man, sub, sizeof sub);
    if (r == -2 && !src->dir) { /* a URL: say what the server answered (404, 410) */
        rc = refuse(msg, msglen, SH_EXIT_FAIL, "%s: MANIFEST.json: missing (%s)", label, sub);
        goto out;
    }
    if (r < 0) {
        rc = refuse(msg, msglen, r == -2 ? SH_EXIT_TRUST : SH_EXIT_FAIL, "%s: MANIFEST.json: %s",
                    label, r == -2 ? "missing: not a signed bundle" : sub);
        goto out;
    }
    uint8_t h[32];
    crypto_generichash(h, 32, (const uint8_t *)man.data, man.len, NULL, 0);
    util_hex(h, 32, hex);
    if (o->expect_hash && strcmp(o->expect_hash, hex) != 0) {
        rc = refuse(msg, msglen, SH_EXIT_TRUST,
                    "%s: MANIFEST.json has hash %.16s..., the "
                    "announcement named %.16s...: refused",
                    label, hex, o->expect_hash);
        goto out;
    }
    snprintf(tmpname, sizeof tmpname, ".tmp-%ld", (long)getpid());
    if (mkdirat(st.bfd, tmpname, 0755) < 0 ||
        (tfd = openat(st.bfd, tmpname, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) < 0) {
        rc = refuse(msg, msglen, SH_EXIT_FAIL, "%s/bundles/%s: %s", st.dir, tmpname,
                    strerror(errno));
        goto out;
    }
    tmp_made = true;
    if (write_at(tfd, "MANIFEST.json", &man, &dirs, sub, sizeof sub) < 0) {
        rc = refuse(msg, msglen, SH_EXIT_FAIL, "staging: %s", sub);
        goto out;
    }
    /* Every file a run reads for the trusted keys, staged under its own
     * name; one named with minisign's short key id goes under the 16-digit
     * name when no file came by that (sorted, the 16-digit name is first). */
    struct util_lines sn = {0};
    trust_sig_files(&ks, &sn);
    for (size_t i = 0; i < sn.n; i++) {
        struct buf sig = {0};
        char full[TRUST_SIGNAME_MAX];
        const char *as = sn.v[i];
        r = src->read(src->ctx, sn.v[i], SIG_MAX, &sig, sub, sizeof sub);
        if (r == -1)
            rc = refuse(msg, msglen, SH_EXIT_FAIL, "%s: %s: %s", label, sn.v[i], sub);
        if (r == -2 && !src->dir && !absent[0]) /* what the server said, for the refusal */
            snprintf(absent, sizeof absent, "; %s", sub);
        if (r == 0 && trust_sig_fullname(sn.v[i], full) &&
            faccessat(tfd, full, F_OK, AT_SYMLINK_NOFOLLOW) != 0)
            as = full;
        if (r == 0 && write_at(tfd, as, &sig, &dirs, sub, sizeof sub) < 0) {
            rc = refuse(msg, msglen, SH_EXIT_FAIL, "staging: %s", sub);
            r = -1;
        }
        buf_free(&sig);
        if (r == -1) {
            util_lines_free(&sn);
            goto out;
        }
    }
    util_lines_free(&sn);
    install_test_crash("staged");

    /* 2. Signatures over the raw bytes, then the manifest's own terms. */
    int distinct;
    rc = SH_EXIT_TRUST;
    if (trust_verify_sigs(tfd, man.data, man.len, &ks, false, NULL, NULL, &distinct, sub,
                          sizeof sub) < 0) {
        refuse(msg, msglen, 0, "%s: %s: refused%s", label, sub, absent);
        goto out;
    }
    if (manifest_parse(&m, man.data, man.len, sub, sizeof sub) < 0) {
        refuse(msg, msglen, 0, "%s: %s: refused", label, sub);
        goto out;
    }
    if (o->expect_name && strcmp(o->expect_name, m.bundle) != 0) {
        refuse(msg, msglen, 0, "%s: bundle %s, but the announcement named %s: refused", label,
               m.bundle, o->expect_name);
        goto out;
    }
    long long now = (long long)time(NULL);
    if (now >= m.expires) {
        refuse(msg, msglen, 0,
               "%s: bundle %s version %lld expired at %lld (now %lld): an expired "
               "bundle is never installed",
               label, m.bundle, m.version, m.expires, now);
        goto out;
    }
    long long highest;
    if (bundle_highest_version(st.dir, &highest, sub, sizeof sub) < 0) {
        rc = refuse(msg, msglen, SH_EXIT_FAIL, "recorded version unknown: %s", sub);
        goto out;
    }
    bool downgrade = m.version < highest;
    if (downgrade && !o->allow_downgrade) {
        refuse(msg, msglen, 0,
               "%s: bundle %s version %lld is below the highest version this node "
               "accepted (%lld): refused (an operator may pass --allow-downgrade)",
               label, m.bundle, m.version, highest);
        goto out;
    }
    for (size_t i = 0; i < m.nfiles; i++) {
        if (m.files[i].size > max_file || m.files[i].size > max_dl) {
            refuse(msg, msglen, 0,
                   "%s: %s is %llu bytes, over limits.file_bytes (%zu) or "
                   "update.max_bytes (%zu): refused",
                   label, m.files[i].path, (unsigned long long)m.files[i].size, max_file, max_dl);
            goto out;
        }
    }
    if (src->dir) { /* a directory: every file, and nothing unlisted */
        struct util_lines p = {0};
        srcfd = open(src->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (srcfd < 0) {
            rc = refuse(msg, msglen, SH_EXIT_FAIL, "%s: %s", src->dir, strerror(errno));
            goto out;
        }
        if (manifest_check_files(srcfd, &m, max_file, &p) > 0) {
            refuse(msg, msglen, 0, "%s: %s%s: refused", label, p.v[0],
                   p.n > 1 ? " (and more)" : "");
            util_lines_free(&p);
            goto out;
        }
        util_lines_free(&p);
    }
    snprintf(dirname, sizeof dirname, "%lld-%.16s", m.version, hex);
    snprintf(target, sizeof target, "bundles/%s", dirname);
    install_test_crash("verified");

    bool active = cur && strcmp(cur, target) == 0;
    if (active && verify_copy(&st, target, &ks, max_file, hex, &rep, sub, sizeof sub) == 0) {
        log_msg(LOG_LVL_INFO, "install: bundle %s version %lld is already active", m.bundle,
                m.version);
        goto record;
    }
    trust_report_free(&rep);

    /* 3. Copy: each file read once, checked, written, fsynced. */
    for (size_t i = 0; i < m.nfiles; i++) {
        const struct manifest_file *f = &m.files[i];
        uint8_t fh[32];
        r = src->read(src->ctx, f->path, (size_t)f->size, &file, sub, sizeof sub);
        if (r < 0) {
            rc = refuse(msg, msglen, SH_EXIT_FAIL, "%s: %s: %s%s%s", label, f->path,
                        r == -2 ? "listed in the manifest but missing (" : "", sub,
                        r == -2 ? ")" : "");
            goto out;
        }
        crypto_generichash(fh, 32, (const uint8_t *)file.data, file.len, NULL, 0);
        if (file.len != f->size || sodium_memcmp(fh, f->hash, 32) != 0) {
            rc = refuse(msg, msglen, SH_EXIT_TRUST,
                        "%s: %s: %zu bytes that do not match the "
                        "manifest (%llu bytes, BLAKE2b-256): refused",
                        label, f->path, file.len, (unsigned long long)f->size);
            goto out;
        }
        if (write_at(tfd, f->path, &file, &dirs, sub, sizeof sub) < 0) {
            rc = refuse(msg, msglen, SH_EXIT_FAIL, "staging: %s", sub);
            goto out;
        }
        buf_free(&file);
        if (i == 0)
            install_test_crash("copy");
    }
    if (fsync_dirs(tfd, &dirs, sub, sizeof sub) < 0) {
        rc = refuse(msg, msglen, SH_EXIT_FAIL, "staging: %s", sub);
        goto out;
    }
    install_test_crash("copied");

    /* 4. Verify the copy, then give it its name. */
    char tmprel[96];
    snprintf(tmprel, sizeof tmprel, "bundles/%s", tmpname);
    if (verify_copy(&st, tmprel, &ks, max_file, hex, &rep, sub, sizeof sub) < 0) {
        rc = refuse(msg, msglen, SH_EXIT_FAIL, "the copy: %s", sub);
        goto out;
    }
    trust_report_free(&rep);
    /* What `check` would fail is never switched to: every Lua file of the
     * copy compiles (signed or not, a syntax error would only fail later,
     * on every event). */
    struct util_lines cp = {0};
    if (check_compile(tfd, &m, max_file, &cp) > 0) {
        rc = refuse(msg, msglen, SH_EXIT_TRUST, "%s: does not compile: %s%s: refused", label,
                    cp.v[0], cp.n > 1 ? " (and more)" : "");
        util_lines_free(&cp);
        goto out;
    }
    util_lines_free(&cp);
    install_test_crash("verified-copy");
    struct stat sb;
    if (fstatat(st.bfd, dirname, &sb, AT_SYMLINK_NOFOLLOW) == 0) {
        /* an earlier, interrupted install got this far: keep a good copy */
        if (verify_copy(&st, target, &ks, max_file, hex, &rep, sub, sizeof sub) == 0) {
            log_msg(LOG_LVL_INFO, "install: bundles/%s is already complete", dirname);
        } else {
            char del[200];
            log_msg(LOG_LVL_WARN, "install: replacing bundles/%s: %s", dirname, sub);
            snprintf(del, sizeof del, ".del-%ld-%s", (long)getpid(), dirname);
            if (renameat(st.bfd, dirname, st.bfd, del) == 0)
                rm_tree(st.bfd, del);
        }
        trust_report_free(&rep);
    }
    if (fstatat(st.bfd, dirname, &sb, AT_SYMLINK_NOFOLLOW) < 0) {
        if (renameat(st.bfd, tmpname, st.bfd, dirname) < 0) {
            rc = refuse(msg, msglen, SH_EXIT_FAIL, "rename to bundles/%s: %s", dirname,
                        strerror(errno));
            goto out;
        }
        tmp_made = false;
    }
    if (fsync_fd_dir(st.bfd) < 0) {
        rc = refuse(msg, msglen, SH_EXIT_FAIL, "fsync bundles/: %s", strerror(errno));
        goto out;
    }
    install_test_crash("renamed");

    /* 5. Switch. A downgrade lowers the record first, so the active bundle
     * is never below it, and again after the switch (a handler run by the
     * old bundle in between raises it); an upgrade records after the switch. */
    if (downgrade) {
        if (bundle_set_version(st.dir, m.version, sub, sizeof sub) < 0) {
            rc = refuse(msg, msglen, SH_EXIT_FAIL, "cannot lower the recorded version: %s", sub);
            goto out;
        }
        log_msg(LOG_LVL_WARN,
                "install: DOWNGRADE to bundle %s version %lld (highest accepted was "
                "%lld), allowed by the operator (--allow-downgrade)",
                m.bundle, m.version, highest);
        install_test_crash("lowered");
    }
    if (cur && strcmp(cur, target) != 0) {
        if (set_link(st.fd, "previous", cur, NULL, sub, sizeof sub) < 0) {
            rc = refuse(msg, msglen, SH_EXIT_FAIL, "%s", sub);
            goto out;
        }
        install_test_crash("previous");
    }
    if (set_link(st.fd, "current", target, "link", sub, sizeof sub) < 0) {
        rc = refuse(msg, msglen, SH_EXIT_FAIL, "%s", sub);
        goto out;
    }
    install_test_crash("switched");

record:
    if ((downgrade ? bundle_set_version(st.dir, m.version, sub, sizeof sub)
                   : bundle_record_version(st.dir, m.version, sub, sizeof sub)) < 0) {
        rc = refuse(msg, msglen, SH_EXIT_FAIL,
                    "installed and active, but the version could not "
                    "be recorded: %s",
                    sub);
        goto out;
    }
    install_test_crash("recorded");
    prune(&st, config_int(cfg, "update.keep"));
    install_test_crash("pruned");
    {
        const char *b = config_str(cfg, "bundle");
        struct buf want = {0};
        buf_printf(&want, "%s/current", st.dir);
        if (strcmp(b, want.data) != 0)
            log_msg(LOG_LVL_WARN,
                    "install: config `bundle` is %s, not %s: the installed bundle "
                    "is not the one handlers run",
                    b, want.data);
        buf_free(&want);
    }
    rc = refuse(msg, msglen, SH_EXIT_OK,
                "installed bundle %s version %lld (manifest %.16s) from "
                "%s as %s/%s%s%s",
                m.bundle, m.version, hex, label, st.dir, target,
                cur && strcmp(cur, target) ? "; previous: " : "",
                cur && strcmp(cur, target) ? cur : "");
out:
    if (tmp_made && st.bfd >= 0)
        rm_tree(st.bfd, tmpname);
    if (tfd >= 0)
        close(tfd);
    if (srcfd >= 0)
        close(srcfd);
    state_close(&st);
    free(cur);
    buf_free(&man);
    buf_free(&file);
    buf_free(&dirs);
    manifest_free(&m);
    trust_report_free(&rep);
    trust_keyset_free(&ks);
    return rc;
}

int install_rollback(const struct config *cfg, bool allow_downgrade, int lock_wait_ms, char *msg,
                     size_t msglen)
{
    struct state st = {0};
    struct trust_keyset ks = {0};
    struct trust_report rep = {0};
    char sub[1024], *cur = NULL, *prev = NULL;
    int rc;
    if (!allow_downgrade)
        return refuse(msg, msglen, SH_EXIT_USAGE,
                      "rollback switches to an older bundle: it is "
                      "done only with --allow-downgrade");
    st.fd = st.bfd = st.lockfd = -1;
    int r = state_open(&st, cfg, lock_wait_ms, sub, sizeof sub);
    if (r < 0) {
        rc = refuse(msg, msglen, r == -2 ? SH_EXIT_FAIL : SH_EXIT_USAGE, "%s", sub);
        goto out;
    }
    if (trust_keyset_load(&ks, cfg, sub, sizeof sub) < 0) {
        rc = refuse(msg, msglen, SH_EXIT_USAGE, "%s", sub);
        goto out;
    }
    if (read_link(st.fd, "current", &cur, sub, sizeof sub) < 0 ||
        read_link(st.fd, "previous", &prev, sub, sizeof sub) < 0) {
        rc = refuse(msg, msglen, SH_EXIT_USAGE, "%s/%s", st.dir, sub);
        goto out;
    }
    if (!prev || (cur && strcmp(cur, prev) == 0)) {
        rc = refuse(msg, msglen, SH_EXIT_FAIL, "no previous bundle is kept in %s (previous %s)",
                    st.dir,
                    prev ? "is the active one: a rollback already switched to it" : "is absent");
        goto out;
    }
    size_t max_file = (size_t)config_int(cfg, "limits.file_bytes");
    if (verify_copy(&st, prev, &ks, max_file, NULL, &rep, sub, sizeof sub) < 0) {
        rc = refuse(msg, msglen, SH_EXIT_TRUST, "previous bundle: %s: rollback refused", sub);
        goto out;
    }
    if (bundle_set_version(st.dir, rep.m.version, sub, sizeof sub) < 0) {
        rc = refuse(msg, msglen, SH_EXIT_FAIL, "cannot lower the recorded version: %s", sub);
        goto out;
    }
    install_test_crash("rollback-lowered");
    if (set_link(st.fd, "current", prev, "rollback-link", sub, sizeof sub) < 0) {
        rc = refuse(msg, msglen, SH_EXIT_FAIL, "%s", sub);
        goto out;
    }
    install_test_crash("rollback-switched");
    /* again: a handler run by the old bundle in between may have raised it */
    if (bundle_set_version(st.dir, rep.m.version, sub, sizeof sub) < 0) {
        rc = refuse(msg, msglen, SH_EXIT_FAIL,
                    "switched, but cannot lower the recorded version: "
                    "%s",
                    sub);
        goto out;
    }
    if (cur && set_link(st.fd, "previous", cur, NULL, sub, sizeof sub) < 0) {
        rc = refuse(msg, msglen, SH_EXIT_FAIL, "%s", sub);
        goto out;
    }
    log_msg(LOG_LVL_WARN,
            "rollback: current is now %s (bundle %s version %lld), was %s; "
            "done by an operator with --allow-downgrade",
            prev, rep.m.bundle, rep.m.version, cur ? cur : "(none)");
    rc = refuse(msg, msglen, SH_EXIT_OK,
                "rolled back to bundle %s version %lld (%s/%s); "
                "previous is now %s",
                rep.m.bundle, rep.m.version, st.dir, prev, cur ? cur : "(none)");
out:
    state_close(&st);
    trust_report_free(&rep);
    trust_keyset_free(&ks);
    free(cur);
    free(prev);
    return rc;
}

/* ------------------------------------------------------------ pointer */

#define PTR_RAW 136 /* key id 8 + signature 64 + global signature 64 */
#define PTR_B64 182

static bool url_ok(const char *u, size_t n)
{
    if (!(n > 7 && strncmp(u, "http://", 7) == 0) && !(n > 8 && strncmp(u, "https://", 8) == 0))
        return false;
    for (size_t i = 0; i < n; i++)
        if (u[i] <= 0x20 || u[i] > 0x7e || u[i] == '"' || u[i] == '\\')
            return false;
    return u[n - 1] != '/';
}

static bool hex64(const char *s, size_t n)
{
    if (n != 64)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!isdigit((unsigned char)s[i]) && !(s[i] >= 'a' && s[i] <= 'f'))
            return false;
    return true;
}

/* Parse the compact body: exactly the keys n v h u e, no whitespace, no
 * escapes, strings printable, integers without sign or leading zero. */
static int body_parse(struct update_pointer *p, const char *s, size_t n, char *err, size_t errlen)
{
    static const char *const keys = "nvhue";
    unsigned seen = 0;
    size_t i = 1;
    memset(p, 0, sizeof *p);
    if (n < 2 || s[0] != '{' || s[n - 1] != '}')
        goto bad;
    while (i < n - 1) {
        if (s[i] != '"' || i + 4 >= n || s[i + 2] != '"' || s[i + 3] != ':')
            goto bad;
        const char *k = strchr(keys, s[i + 1]);
        if (!k || !s[i + 1])
            goto bad;
        unsigned bit = 1u << (k - keys);
        if (seen & bit)
            goto bad;
        seen |= bit;
        i += 4;
        bool is_str = *k == 'n' || *k == 'h' || *k == 'u';
        size_t vs = i;
        long long num = 0;
        if (is_str) {
            if (s[i] != '"')
                goto bad;
            vs = ++i;
            while (i < n - 1 && s[i] != '"') {
                if (s[i] == '\\')
                    goto bad;
                i++;
            }
            if (i >= n - 1)
                goto bad;
            i++; /* the closing quote */
        } else {
            while (i < n - 1 && isdigit((unsigned char)s[i]))
                i++;
            if (i == vs || i - vs > 18 || (s[vs] == '0' && i - vs > 1))
                goto bad;
            num = strtoll(s + vs, NULL, 10);
        }
        size_t vl = is_str ? i - 1 - vs : i - vs;
        switch (*k) {
        case 'n':
            if (vl >= sizeof p->name)
                goto bad;
            memcpy(p->name, s + vs, vl);
            if (!util_valid_name(p->name))
                goto bad;
            break;
        case 'h':
            if (!hex64(s + vs, vl))
                goto bad;
            memcpy(p->hash, s + vs, vl);
            break;
        case 'u':
            if (vl >= sizeof p->url || !url_ok(s + vs, vl))
                goto bad;
            memcpy(p->url, s + vs, vl);
            break;
        case 'v':
            if (num < 1)
                goto bad;
            p->version = num;
            break;
        default: p->expires = num;
        }
        if (s[i] == ',' && i + 1 < n - 1)
            i++;
        else if (i != n - 1)
            goto bad;
    }
    if (seen != 0x1f)
        goto bad;
    return 0;
bad:
    util_errf(err, errlen,
              "update pointer: malformed body (want compact JSON with exactly n, v, h, "
              "u, e)");
    return -1;
}

int update_pointer_encode(const struct update_pointer *p, const struct minisign_seckey *sk,
                          struct buf *out, char *err, size_t errlen)
{
    struct buf body = {0}, msg = {0}, sigtext = {0};
    struct minisign_sig sig = {0};
    uint8_t raw[PTR_RAW];
    char b64[PTR_B64 + 2];
    int rc = -1;
    if (!util_valid_name(p->name) || p->version < 1 || !hex64(p->hash, strlen(p->hash)) ||
        !url_ok(p->url, strlen(p->url)) || strlen(p->url) >= sizeof p->url) {
        util_errf(err, errlen,
                  "update pointer: invalid name, version, hash or URL (http:// or "
                  "https://, printable, no quotes or spaces, no trailing slash)");
        return -1;
    }
    buf_printf(&body, "{\"n\":\"%s\",\"v\":%lld,\"h\":\"%s\",\"u\":\"%s\",\"e\":%lld}", p->name,
               p->version, p->hash, p->url, p->expires);
    buf_printf(&msg, "%s%s", UPDATE_SIG_CONTEXT, body.data);
    if (minisign_sign(sk, msg.data, msg.len, body.data, "serfhand-update pointer", &sigtext, err,
                      errlen) < 0 ||
        minisign_sig_parse(&sig, sigtext.data, sigtext.len, err, errlen) < 0)
        goto out;
    memcpy(raw, sig.keyid, 8);
    memcpy(raw + 8, sig.sig, 64);
    memcpy(raw + 72, sig.global, 64);
    sodium_bin2base64(b64, sizeof b64, raw, sizeof raw, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    out->len = 0;
    buf_printf(out, "%s.%s", b64, body.data);
    rc = 0;
out:
    minisign_sig_free(&sig);
    buf_free(&body);
    buf_free(&msg);
    buf_free(&sigtext);
    return rc;
}

int update_pointer_decode(struct update_pointer *p, const char *payload, size_t len,
                          const struct trust_keyset *ks, char *keyid, char *err, size_t errlen)
{
    uint8_t raw[PTR_RAW];
    size_t rawlen = 0;
    char id[17] = "";
    memset(p, 0, sizeof *p);
    if (keyid)
        keyid[0] = 0;
    const char *dot = memchr(payload, '.', len);
    if (len > UPDATE_PAYLOAD_MAX || !dot || dot - payload != PTR_B64 ||
        sodium_base642bin(raw, sizeof raw, payload, PTR_B64, NULL, &rawlen, NULL,
                          sodium_base64_VARIANT_URLSAFE_NO_PADDING) != 0 ||
        rawlen != PTR_RAW) {
        util_errf(err, errlen, "update pointer: not a signed pointer (%zu bytes)", len);
        return -1;
    }
    const char *body = dot + 1;
    size_t blen = len - PTR_B64 - 1;
    for (size_t i = 0; i < blen; i++)
        if (body[i] < 0x20 || body[i] > 0x7e) {
            util_errf(err, errlen, "update pointer: unprintable byte in the body");
            return -1;
        }
    struct minisign_sig sig = {0};
    sig.legacy = false;
    memcpy(sig.keyid, raw, 8);
    memcpy(sig.sig, raw + 8, 64);
    memcpy(sig.global, raw + 72, 64);
    sig.trusted = xmalloc(blen + 1);
    memcpy(sig.trusted, body, blen);
    sig.trusted[blen] = 0;
    minisign_keyid_hex(sig.keyid, id);
    if (keyid)
        memcpy(keyid, id, 17);
    struct buf msg = {0};
    buf_addstr(&msg, UPDATE_SIG_CONTEXT);
    buf_add(&msg, body, blen);
    int rc = -1;
    bool known = false;
    char sub[256] = "";
    for (size_t i = 0; i < ks->n && rc < 0; i++) {
        if (memcmp(ks->keys[i].keyid, sig.keyid, 8) != 0)
            continue;
        known = true;
        if (minisign_sig_verify(&sig, &ks->keys[i], msg.data, msg.len, false, sub, sizeof sub) == 0)
            rc = 0;
    }
    if (rc < 0 && !known)
        util_errf(err, errlen, "update pointer: signed by key %s, which is not in trust.keys", id);
    else if (rc < 0)
        util_errf(err, errlen, "update pointer: signature by key %s: %s", id, sub);
    else
        rc = body_parse(p, body, blen, err, errlen);
    minisign_sig_free(&sig);
    buf_free(&msg);
    return rc;
}
