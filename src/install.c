/*
 * install.c: installs a verified bundle into <state_dir>/bundles/ and, once
 * the copy verifies and compiles, switches <state_dir>/current atomically
 * (temp dir + rename, temp symlink + rename, fsync everywhere), keeps
 * <state_dir>/previous, prunes, rolls back. Used by cmd_install.c and
 * cmd_rollback.c.
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

#define LINK_MAX_LEN 4096

/* Only in the test binary (make builds serfhand-test-hooks with
 * -DSERFHAND_TEST_HOOKS): the installed serfhand has no such hook. */
static void install_test_crash(const char *step)
{
#ifdef SERFHAND_TEST_HOOKS
    const char *at = getenv("SERFHAND_TEST_CRASH_AT");
    if (at && strcmp(at, step) == 0) {
        log_msg(LOG_LVL_WARN, "install: test hook: killed at step %s", step);
        kill(getpid(), SIGKILL);
    }
#else
    (void)step;
#endif
}

/* ------------------------------------------------------------ links */

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
    if (files_fsync_dir(statefd) < 0) {
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
            files_rm_tree(pass ? statefd : bfd, names[i]);
            free(names[i]);
        }
        free(names);
        files_fsync_dir(pass ? statefd : bfd);
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

/* Make and open the state dir and bundles/, take the install lock, clean up.
 * INSTALL_FAILED when another install holds the lock past wait_ms. */
static enum install_result state_open(struct state *st, const struct config *cfg, int wait_ms,
                                      char *err, size_t errlen)
{
    st->dir = config_str(cfg, "state_dir");
    st->fd = st->bfd = st->lockfd = -1;
    if (files_mkdir_p(st->dir, err, errlen) < 0)
        return INSTALL_ERROR;
    st->fd = open(st->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (st->fd < 0) {
        util_errf(err, errlen, "%s: %s", st->dir, strerror(errno));
        return INSTALL_ERROR;
    }
    if (mkdirat(st->fd, "bundles", 0700) < 0 && errno != EEXIST) {
        util_errf(err, errlen, "%s/bundles: %s", st->dir, strerror(errno));
        return INSTALL_ERROR;
    }
    st->bfd = openat(st->fd, "bundles", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    st->lockfd = openat(st->fd, "install.lock", O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (st->bfd < 0 || st->lockfd < 0) {
        util_errf(err, errlen, "%s: %s", st->dir, strerror(errno));
        return INSTALL_ERROR;
    }
    int64_t until = util_mono_ms() + (wait_ms > 0 ? wait_ms : 0);
    bool told = false;
    while (flock(st->lockfd, LOCK_EX | LOCK_NB) < 0) {
        if (errno != EWOULDBLOCK && errno != EINTR) {
            util_errf(err, errlen, "%s/install.lock: %s", st->dir, strerror(errno));
            return INSTALL_ERROR;
        }
        if (util_mono_ms() >= until) {
            util_errf(err, errlen,
                      "another install is running (%s/install.lock held for over %d "
                      "ms): try again when it has finished",
                      st->dir, wait_ms);
            return INSTALL_FAILED; /* busy: try again later */
        }
        if (!told)
            log_msg(LOG_LVL_INFO, "install: waiting for another install to finish");
        told = true;
        usleep(50 * 1000);
    }
    install_test_crash("locked");
    clean_stale(st->fd, st->bfd);
    return INSTALL_OK;
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
            files_fsync_dir(st->bfd);
            files_rm_tree(st->bfd, del);
            log_msg(LOG_LVL_INFO, "install: pruned bundles/%s (update.keep = %lld)", v[i].name,
                    keep);
        }
    }
    files_fsync_dir(st->bfd);
out:
    for (size_t i = 0; i < n; i++)
        free(v[i].name);
    free(v);
    free(cur);
    free(prev);
}

/* ------------------------------------------------------------ install */

/* The outcome and the line that tells it, a summary or the reason. */
static enum install_result say(char *msg, size_t msglen, enum install_result res, const char *fmt,
                               ...) __attribute__((format(printf, 4, 5)));
static enum install_result say(char *msg, size_t msglen, enum install_result res, const char *fmt,
                               ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, msglen, fmt, ap);
    va_end(ap);
    return res;
}

enum install_result install_bundle(const struct config *cfg, const struct install_source *src,
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
    int tfd = -1, srcfd = -1;
    enum install_result rc = INSTALL_ERROR;
    bool tmp_made = false;
    size_t max_file = (size_t)config_int(cfg, "limits.file_bytes");
    size_t max_dl = (size_t)config_int(cfg, "update.max_bytes");
    const char *label = src->label;

    rc = state_open(&st, cfg, o->lock_wait_ms, sub, sizeof sub);
    if (rc != INSTALL_OK) {
        say(msg, msglen, rc, "%s", sub);
        goto out;
    }
    if (trust_keyset_load(&ks, cfg, sub, sizeof sub) < 0) {
        rc = say(msg, msglen, INSTALL_ERROR, "%s", sub);
        goto out;
    }
    if (read_link(st.fd, "current", &cur, sub, sizeof sub) < 0) {
        rc = say(msg, msglen, INSTALL_ERROR, "%s/%s", st.dir, sub);
        goto out;
    }

    /* 1. The manifest and the signatures of the trusted keys, staged. */
    enum util_open r =
        src->read(src->ctx, "MANIFEST.json", INSTALL_MANIFEST_MAX, &man, sub, sizeof sub);
    if (r == UTIL_OPEN_MISSING && !src->dir) { /* a URL: say what the server answered (404, 410) */
        rc = say(msg, msglen, INSTALL_FAILED, "%s: MANIFEST.json: missing (%s)", label, sub);
        goto out;
    }
    if (r != UTIL_OPEN_OK) {
        rc = say(msg, msglen, r == UTIL_OPEN_MISSING ? INSTALL_REFUSED : INSTALL_FAILED,
                 "%s: MANIFEST.json: %s", label,
                 r == UTIL_OPEN_MISSING ? "missing: not a signed bundle" : sub);
        goto out;
    }
    uint8_t h[32];
    crypto_generichash(h, 32, (const uint8_t *)man.data, man.len, NULL, 0);
    util_hex(h, 32, hex);
    if (o->expect_hash && strcmp(o->expect_hash, hex) != 0) {
        rc = say(msg, msglen, INSTALL_REFUSED,
                 "%s: MANIFEST.json has hash %.16s..., the "
                 "announcement named %.16s...: refused",
                 label, hex, o->expect_hash);
        goto out;
    }
    snprintf(tmpname, sizeof tmpname, ".tmp-%ld", (long)getpid());
    if (mkdirat(st.bfd, tmpname, 0700) < 0 ||
        (tfd = openat(st.bfd, tmpname, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) < 0) {
        rc =
            say(msg, msglen, INSTALL_FAILED, "%s/bundles/%s: %s", st.dir, tmpname, strerror(errno));
        goto out;
    }
    tmp_made = true;
    if (files_write_at(tfd, "MANIFEST.json", &man, &dirs, sub, sizeof sub) < 0) {
        rc = say(msg, msglen, INSTALL_FAILED, "staging: %s", sub);
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
        r = src->read(src->ctx, sn.v[i], INSTALL_SIG_MAX, &sig, sub, sizeof sub);
        if (r == UTIL_OPEN_FAILED)
            rc = say(msg, msglen, INSTALL_FAILED, "%s: %s: %s", label, sn.v[i], sub);
        if (r == UTIL_OPEN_MISSING && !src->dir &&
            !absent[0]) /* what the server said, for the refusal */
            snprintf(absent, sizeof absent, "; %s", sub);
        if (r == UTIL_OPEN_OK && trust_sig_fullname(sn.v[i], full) &&
            faccessat(tfd, full, F_OK, AT_SYMLINK_NOFOLLOW) != 0)
            as = full;
        if (r == UTIL_OPEN_OK && files_write_at(tfd, as, &sig, &dirs, sub, sizeof sub) < 0) {
            rc = say(msg, msglen, INSTALL_FAILED, "staging: %s", sub);
            r = UTIL_OPEN_FAILED;
        }
        buf_free(&sig);
        if (r == UTIL_OPEN_FAILED) {
            util_lines_free(&sn);
            goto out;
        }
    }
    util_lines_free(&sn);
    install_test_crash("staged");

    /* 2. Signatures over the raw bytes, then the manifest's own terms. */
    int distinct;
    rc = INSTALL_REFUSED;
    if (trust_verify_sigs(tfd, man.data, man.len, &ks, false, NULL, NULL, &distinct, sub,
                          sizeof sub) < 0) {
        say(msg, msglen, INSTALL_REFUSED, "%s: %s: refused%s", label, sub, absent);
        goto out;
    }
    if (manifest_parse(&m, man.data, man.len, sub, sizeof sub) < 0) {
        say(msg, msglen, INSTALL_REFUSED, "%s: %s: refused", label, sub);
        goto out;
    }
    if (o->expect_name && strcmp(o->expect_name, m.bundle) != 0) {
        say(msg, msglen, INSTALL_REFUSED, "%s: bundle %s, but the announcement named %s: refused",
            label, m.bundle, o->expect_name);
        goto out;
    }
    long long now = (long long)time(NULL);
    if (now >= m.expires) {
        say(msg, msglen, INSTALL_REFUSED,
            "%s: bundle %s version %lld expired at %lld (now %lld): an expired "
            "bundle is never installed",
            label, m.bundle, m.version, m.expires, now);
        goto out;
    }
    long long highest;
    if (bundle_highest_version(st.dir, &highest, sub, sizeof sub) < 0) {
        rc = say(msg, msglen, INSTALL_FAILED, "recorded version unknown: %s", sub);
        goto out;
    }
    bool downgrade = m.version < highest;
    if (downgrade && !o->allow_downgrade) {
        say(msg, msglen, INSTALL_REFUSED,
            "%s: bundle %s version %lld is below the highest version this node "
            "accepted (%lld): refused (an operator may pass --allow-downgrade)",
            label, m.bundle, m.version, highest);
        goto out;
    }
    for (size_t i = 0; i < m.nfiles; i++) {
        if (m.files[i].size > max_file || m.files[i].size > max_dl) {
            say(msg, msglen, INSTALL_REFUSED,
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
            rc = say(msg, msglen, INSTALL_FAILED, "%s: %s", src->dir, strerror(errno));
            goto out;
        }
        if (manifest_check_files(srcfd, &m, max_file, &p) > 0) {
            say(msg, msglen, INSTALL_REFUSED, "%s: %s%s: refused", label, p.v[0],
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
        if (r != UTIL_OPEN_OK) {
            bool missing = r == UTIL_OPEN_MISSING;
            rc =
                say(msg, msglen, INSTALL_FAILED, "%s: %s: %s%s%s", label, f->path,
                    missing ? "listed in the manifest but missing (" : "", sub, missing ? ")" : "");
            goto out;
        }
        crypto_generichash(fh, 32, (const uint8_t *)file.data, file.len, NULL, 0);
        if (file.len != f->size || sodium_memcmp(fh, f->hash, 32) != 0) {
            rc = say(msg, msglen, INSTALL_REFUSED,
                     "%s: %s: %zu bytes that do not match the "
                     "manifest (%llu bytes, BLAKE2b-256): refused",
                     label, f->path, file.len, (unsigned long long)f->size);
            goto out;
        }
        if (files_write_at(tfd, f->path, &file, &dirs, sub, sizeof sub) < 0) {
            rc = say(msg, msglen, INSTALL_FAILED, "staging: %s", sub);
            goto out;
        }
        buf_free(&file);
        if (i == 0)
            install_test_crash("copy");
    }
    if (files_fsync_dirs(tfd, &dirs, sub, sizeof sub) < 0) {
        rc = say(msg, msglen, INSTALL_FAILED, "staging: %s", sub);
        goto out;
    }
    install_test_crash("copied");

    /* 4. Verify the copy, then give it its name. */
    char tmprel[96];
    snprintf(tmprel, sizeof tmprel, "bundles/%s", tmpname);
    if (verify_copy(&st, tmprel, &ks, max_file, hex, &rep, sub, sizeof sub) < 0) {
        rc = say(msg, msglen, INSTALL_FAILED, "the copy: %s", sub);
        goto out;
    }
    trust_report_free(&rep);
    /* What `check` would fail is never switched to: every Lua file of the
     * copy compiles (signed or not, a syntax error would only fail later,
     * on every event). */
    struct util_lines cp = {0};
    if (check_compile(tfd, &m, max_file, &cp) > 0) {
        rc = say(msg, msglen, INSTALL_REFUSED, "%s: does not compile: %s%s: refused", label,
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
                files_rm_tree(st.bfd, del);
        }
        trust_report_free(&rep);
    }
    if (fstatat(st.bfd, dirname, &sb, AT_SYMLINK_NOFOLLOW) < 0) {
        if (renameat(st.bfd, tmpname, st.bfd, dirname) < 0) {
            rc = say(msg, msglen, INSTALL_FAILED, "rename to bundles/%s: %s", dirname,
                     strerror(errno));
            goto out;
        }
        tmp_made = false;
    }
    if (files_fsync_dir(st.bfd) < 0) {
        rc = say(msg, msglen, INSTALL_FAILED, "fsync bundles/: %s", strerror(errno));
        goto out;
    }
    install_test_crash("renamed");

    /* 5. Switch. A downgrade lowers the record first, so the active bundle
     * is never below it, and again after the switch (a handler run by the
     * old bundle in between raises it); an upgrade records after the switch. */
    if (downgrade) {
        if (bundle_set_version(st.dir, m.version, sub, sizeof sub) < 0) {
            rc = say(msg, msglen, INSTALL_FAILED, "cannot lower the recorded version: %s", sub);
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
            rc = say(msg, msglen, INSTALL_FAILED, "%s", sub);
            goto out;
        }
        install_test_crash("previous");
    }
    if (set_link(st.fd, "current", target, "link", sub, sizeof sub) < 0) {
        rc = say(msg, msglen, INSTALL_FAILED, "%s", sub);
        goto out;
    }
    install_test_crash("switched");

record:
    if ((downgrade ? bundle_set_version(st.dir, m.version, sub, sizeof sub)
                   : bundle_record_version(st.dir, m.version, sub, sizeof sub)) < 0) {
        rc = say(msg, msglen, INSTALL_FAILED,
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
    rc = say(msg, msglen, INSTALL_OK,
             "installed bundle %s version %lld (manifest %.16s) from "
             "%s as %s/%s%s%s",
             m.bundle, m.version, hex, label, st.dir, target,
             cur && strcmp(cur, target) != 0 ? "; previous: " : "",
             cur && strcmp(cur, target) != 0 ? cur : "");
out:
    if (tmp_made && st.bfd >= 0)
        files_rm_tree(st.bfd, tmpname);
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

enum install_result install_rollback(const struct config *cfg, bool allow_downgrade,
                                     int lock_wait_ms, char *msg, size_t msglen)
{
    struct state st = {0};
    struct trust_keyset ks = {0};
    struct trust_report rep = {0};
    char sub[1024], *cur = NULL, *prev = NULL;
    enum install_result rc;
    if (!allow_downgrade)
        return say(msg, msglen, INSTALL_ERROR,
                   "rollback switches to an older bundle: it is "
                   "done only with --allow-downgrade");
    st.fd = st.bfd = st.lockfd = -1;
    rc = state_open(&st, cfg, lock_wait_ms, sub, sizeof sub);
    if (rc != INSTALL_OK) {
        say(msg, msglen, rc, "%s", sub);
        goto out;
    }
    if (trust_keyset_load(&ks, cfg, sub, sizeof sub) < 0) {
        rc = say(msg, msglen, INSTALL_ERROR, "%s", sub);
        goto out;
    }
    if (read_link(st.fd, "current", &cur, sub, sizeof sub) < 0 ||
        read_link(st.fd, "previous", &prev, sub, sizeof sub) < 0) {
        rc = say(msg, msglen, INSTALL_ERROR, "%s/%s", st.dir, sub);
        goto out;
    }
    if (!prev || (cur && strcmp(cur, prev) == 0)) {
        rc = say(msg, msglen, INSTALL_FAILED, "no previous bundle is kept in %s (previous %s)",
                 st.dir,
                 prev ? "is the active one: a rollback already switched to it" : "is absent");
        goto out;
    }
    size_t max_file = (size_t)config_int(cfg, "limits.file_bytes");
    if (verify_copy(&st, prev, &ks, max_file, NULL, &rep, sub, sizeof sub) < 0) {
        rc = say(msg, msglen, INSTALL_REFUSED, "previous bundle: %s: rollback refused", sub);
        goto out;
    }
    if (bundle_set_version(st.dir, rep.m.version, sub, sizeof sub) < 0) {
        rc = say(msg, msglen, INSTALL_FAILED, "cannot lower the recorded version: %s", sub);
        goto out;
    }
    install_test_crash("rollback-lowered");
    if (set_link(st.fd, "current", prev, "rollback-link", sub, sizeof sub) < 0) {
        rc = say(msg, msglen, INSTALL_FAILED, "%s", sub);
        goto out;
    }
    install_test_crash("rollback-switched");
    /* again: a handler run by the old bundle in between may have raised it */
    if (bundle_set_version(st.dir, rep.m.version, sub, sizeof sub) < 0) {
        rc = say(msg, msglen, INSTALL_FAILED,
                 "switched, but cannot lower the recorded version: "
                 "%s",
                 sub);
        goto out;
    }
    if (cur && set_link(st.fd, "previous", cur, NULL, sub, sizeof sub) < 0) {
        rc = say(msg, msglen, INSTALL_FAILED, "%s", sub);
        goto out;
    }
    log_msg(LOG_LVL_WARN,
            "rollback: current is now %s (bundle %s version %lld), was %s; "
            "done by an operator with --allow-downgrade",
            prev, rep.m.bundle, rep.m.version, cur ? cur : "(none)");
    rc = say(msg, msglen, INSTALL_OK,
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
