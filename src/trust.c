/*
 * trust.c: the operator's trust root (trust.keys, trust.threshold) and the
 * bundle checks made against it: which signature files count and how
 * (distinct trusted keys, the threshold), the whole-bundle check of verify,
 * check and install, and its report. Used by bundle.c on every run.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include "serfhand.h"

int trust_sig_names(const uint8_t keyid[8], char names[2][TRUST_SIGNAME_MAX])
{
    char id[17];
    minisign_keyid_hex(keyid, id);
    const char *s = id;
    while (s[0] == '0' && s[1])
        s++;
    snprintf(names[0], TRUST_SIGNAME_MAX, "MANIFEST.json.%s.minisig", id);
    snprintf(names[1], TRUST_SIGNAME_MAX, "MANIFEST.json.%s.minisig", s);
    return s == id ? 1 : 2;
}

void trust_sig_keyname(const struct minisign_pubkey *pk, char name[TRUST_SIGNAME_MAX])
{
    char id[17], pkx[17];
    minisign_keyid_hex(pk->keyid, id);
    for (int i = 0; i < 8; i++)
        snprintf(pkx + 2 * i, 3, "%02X", pk->pk[i]);
    snprintf(name, TRUST_SIGNAME_MAX, "MANIFEST.json.%s-%s.minisig", id, pkx);
}

/* ------------------------------------------------------ trust and threshold */

int trust_keyset_load(struct trust_keyset *ks, const struct config *cfg, char *err, size_t errlen)
{
    size_t n = 0;
    char *const *list = config_list(cfg, "trust.keys", &n);
    memset(ks, 0, sizeof *ks);
    ks->threshold = config_int(cfg, "trust.threshold");
    ks->keys = xmalloc((n ? n : 1) * sizeof *ks->keys);
    for (size_t i = 0; i < n; i++) {
        char sub[300];
        const char *e = list[i];
        int rc;
        /* A key string, also when mistyped (RW and base64, and no file of
         * that name): its error then says what is wrong with the key, not
         * that no such file exists. */
        if (minisign_looks_like_key(e) && (strlen(e) == MINISIGN_PK_B64 || access(e, F_OK) != 0)) {
            rc = minisign_pubkey_parse(&ks->keys[i], e, strlen(e), sub, sizeof sub);
        } else {
            struct buf b = {0};
            rc = util_read_regular(e, 4096, &b, sub, sizeof sub) == UTIL_OPEN_OK ? 0 : -1;
            if (rc == 0)
                rc = minisign_pubkey_parse(&ks->keys[i], b.data, b.len, sub, sizeof sub);
            buf_free(&b);
        }
        if (rc < 0) {
            util_errf(err, errlen, "trust.keys[%zu] (%s): %s", i + 1, e, sub);
            trust_keyset_free(ks);
            return -1;
        }
        ks->n++;
    }
    return 0;
}

void trust_keyset_free(struct trust_keyset *ks)
{
    free(ks->keys);
    memset(ks, 0, sizeof *ks);
}

/* Count key i once: false if an earlier counted key has the same Ed25519
 * public key (the key id is random and not signed, so it does not count). */
static bool distinct_add(const struct trust_keyset *ks, bool *counted, size_t i)
{
    for (size_t k = 0; k < ks->n; k++)
        if (counted[k] && memcmp(ks->keys[k].pk, ks->keys[i].pk, 32) == 0)
            return false;
    counted[i] = true;
    return true;
}

#define SIGFILE_MAX MINISIGN_SIG_FILE_MAX

/* What one signature file is worth. */
enum sigfile {
    SIGFILE_VALID,     /* a trusted key verified it (*key says which) */
    SIGFILE_MISSING,   /* no such file */
    SIGFILE_INVALID,   /* unreadable, malformed, misnamed or does not verify */
    SIGFILE_UNTRUSTED, /* well formed, by a key id no trusted key has */
};

/* One file serfhand reads for a trusted key, and that key's id. */
struct signame {
    char name[TRUST_SIGNAME_MAX];
    uint8_t keyid[8];
};

static int cmp_signame(const void *a, const void *b)
{
    return strcmp(((const struct signame *)a)->name, ((const struct signame *)b)->name);
}

/* The signature files of the trusted keys: for each key its key-id names
 * (16 digits, minisign's short form) and its key name; sorted, each once
 * (keys sharing an id share its key-id names). */
static size_t sig_candidates(const struct trust_keyset *ks, struct signame **out)
{
    struct signame *v = xmalloc((3 * ks->n + 1) * sizeof *v);
    size_t n = 0, m = 0;
    for (size_t i = 0; i < ks->n; i++) {
        char names[2][TRUST_SIGNAME_MAX];
        int nn = trust_sig_names(ks->keys[i].keyid, names);
        for (int j = 0; j < nn; j++) {
            memcpy(v[n].name, names[j], TRUST_SIGNAME_MAX);
            memcpy(v[n++].keyid, ks->keys[i].keyid, 8);
        }
        trust_sig_keyname(&ks->keys[i], v[n].name);
        memcpy(v[n++].keyid, ks->keys[i].keyid, 8);
    }
    if (n)
        qsort(v, n, sizeof *v, cmp_signame);
    for (size_t i = 0; i < n; i++)
        if (m == 0 || strcmp(v[m - 1].name, v[i].name) != 0)
            v[m++] = v[i];
    *out = v;
    return m;
}

void trust_sig_files(const struct trust_keyset *ks, struct util_lines *names)
{
    struct signame *v;
    size_t n = sig_candidates(ks, &v);
    for (size_t i = 0; i < n; i++)
        util_line_add(names, "%s", v[i].name);
    free(v);
}

bool trust_sig_fullname(const char *name, char full[TRUST_SIGNAME_MAX])
{
    size_t l = strlen(name);
    if (l <= 22 || strncmp(name, "MANIFEST.json.", 14) != 0 ||
        strcmp(name + l - 8, ".minisig") != 0)
        return false;
    size_t digits = l - 22;
    if (digits >= 16)
        return false;
    for (size_t i = 14; i < l - 8; i++)
        if (!((name[i] >= '0' && name[i] <= '9') || (name[i] >= 'A' && name[i] <= 'F')))
            return false;
    snprintf(full, TRUST_SIGNAME_MAX, "MANIFEST.json.%.*s%.*s.minisig", (int)(16 - digits),
             "0000000000000000", (int)digits, name + 14);
    return true;
}

/* Check one signature file: it must be by keyid (the id its name is for;
 * NULL: the id the name spells, if it spells one) and verify under a trusted
 * key with that id. Every trusted key with the id is tried, not only the
 * first: two keys may share one. */
static enum sigfile check_sigfile(int rootfd, const char *name, const uint8_t *keyid,
                                  const char *man, size_t len, const struct trust_keyset *ks,
                                  size_t *key, char *err, size_t errlen)
{
    struct buf b = {0};
    struct minisign_sig s = {0};
    char sub[300], id[17];
    enum sigfile rc = SIGFILE_INVALID;
    enum util_open r = util_read_limited(rootfd, name, SIGFILE_MAX, NULL, &b, sub, sizeof sub);
    if (r != UTIL_OPEN_OK) {
        util_errf(err, errlen, "%s", sub);
        buf_free(&b);
        return r == UTIL_OPEN_MISSING ? SIGFILE_MISSING : SIGFILE_INVALID;
    }
    if (minisign_sig_parse(&s, b.data, b.len, sub, sizeof sub) < 0) {
        util_errf(err, errlen, "%s: %s", name, sub);
        goto out;
    }
    minisign_keyid_hex(s.keyid, id);
    if (!keyid) { /* MANIFEST.json.<KEYID>[-<PK>].minisig */
        char named[17] = "";
        size_t l = strlen(name) - 14 - 8;
        const char *dash = memchr(name + 14, '-', l);
        if (dash)
            l = (size_t)(dash - (name + 14));
        if (l < sizeof named) {
            memcpy(named, name + 14, l);
            named[l] = 0;
        }
        if (!minisign_keyid_is(s.keyid, named)) {
            util_errf(err, errlen, "%s: signature is by key id %s, not the one in its file name",
                      name, id);
            goto out;
        }
    } else if (memcmp(s.keyid, keyid, 8) != 0) {
        util_errf(err, errlen, "%s: signature is by key id %s, not the one in its file name", name,
                  id);
        goto out;
    }
    rc = SIGFILE_UNTRUSTED;
    util_errf(err, errlen, "%s: key %s is not trusted (trust.keys)", name, id);
    for (size_t i = 0; i < ks->n; i++) {
        if (memcmp(ks->keys[i].keyid, s.keyid, 8) != 0)
            continue;
        if (minisign_sig_verify(&s, &ks->keys[i], man, len, false, sub, sizeof sub) == 0) {
            *key = i;
            rc = SIGFILE_VALID;
            break;
        }
        util_errf(err, errlen, "%s: %s", name, sub);
        rc = SIGFILE_INVALID;
    }
out:
    minisign_sig_free(&s);
    buf_free(&b);
    return rc;
}

static bool has_signame(const struct signame *v, size_t n, const char *name)
{
    struct signame key;
    snprintf(key.name, sizeof key.name, "%s", name);
    return strlen(name) < TRUST_SIGNAME_MAX && bsearch(&key, v, n, sizeof *v, cmp_signame);
}

/* The other MANIFEST.json.*.minisig files of the bundle (scan_all): never
 * counted, as no run reads them, but reported, and a problem when they are
 * malformed or hold a trusted key's signature under a name no run reads. */
static void report_others(int rootfd, const char *man, size_t len, const struct trust_keyset *ks,
                          const struct signame *cand, size_t ncand, struct util_lines *lines,
                          struct util_lines *problems, char *err, size_t errlen)
{
    int dfd = dup(rootfd);
    DIR *d = dfd >= 0 ? fdopendir(dfd) : NULL;
    struct dirent *e;
    char **names = NULL;
    size_t nn = 0;
    if (!d) {
        if (dfd >= 0)
            close(dfd);
        util_errf(err, errlen, "bundle: %s", strerror(errno));
        util_line_add(problems, "%s", err);
        return;
    }
    rewinddir(d); /* a dup shares the offset of the fd it came from */
    while ((e = readdir(d))) {
        size_t l = strlen(e->d_name);
        if (strncmp(e->d_name, "MANIFEST.json.", 14) == 0 && l > 22 &&
            strcmp(e->d_name + l - 8, ".minisig") == 0 && !has_signame(cand, ncand, e->d_name)) {
            names = xrealloc(names, (nn + 1) * sizeof *names);
            names[nn++] = xstrdup(e->d_name);
        }
    }
    closedir(d);
    if (nn)
        qsort(names, nn, sizeof *names, util_cmp_str);
    for (size_t j = 0; j < nn; j++) {
        char sub[400], idx[17];
        size_t k = 0;
        enum sigfile r = check_sigfile(rootfd, names[j], NULL, man, len, ks, &k, sub, sizeof sub);
        if (r == SIGFILE_UNTRUSTED) {
            util_line_add(lines, "%s (ignored)", sub);
        } else if (r == SIGFILE_VALID) {
            char want[TRUST_SIGNAME_MAX];
            minisign_keyid_hex(ks->keys[k].keyid, idx);
            trust_sig_keyname(&ks->keys[k], want);
            snprintf(sub, sizeof sub,
                     "%s: signed by trusted key %s, but no run reads this name: not counted "
                     "(name it MANIFEST.json.%s.minisig or %s)",
                     names[j], idx, idx, want);
            util_line_add(lines, "%s", sub);
            util_line_add(problems, "%s", sub);
        } else if (r == SIGFILE_INVALID) {
            util_line_add(lines, "%s", sub);
            util_line_add(problems, "%s", sub);
        }
        free(names[j]);
    }
    free(names);
}

/* Does the file name below dirfd hold a signature of man by pk's key id,
 * and does pk verify it? -1 absent or not such a signature, 0 another key's
 * (same id, pk does not verify it), 1 pk's own. */
static int sig_owner(int dirfd, const char *name, const struct minisign_pubkey *pk, const char *man,
                     size_t len)
{
    struct buf b = {0};
    struct minisign_sig s = {0};
    char sub[300];
    int rc = -1;
    if (util_read_limited(dirfd, name, SIGFILE_MAX, NULL, &b, sub, sizeof sub) == UTIL_OPEN_OK &&
        minisign_sig_parse(&s, b.data, b.len, sub, sizeof sub) == UTIL_OPEN_OK &&
        memcmp(s.keyid, pk->keyid, 8) == 0)
        rc = minisign_sig_verify(&s, pk, man, len, false, sub, sizeof sub) == 0;
    minisign_sig_free(&s);
    buf_free(&b);
    return rc;
}

void trust_sig_name_for(int dirfd, const struct minisign_pubkey *pk, const char *man, size_t len,
                        char name[TRUST_SIGNAME_MAX], char stale[TRUST_SIGNAME_MAX])
{
    char names[2][TRUST_SIGNAME_MAX];
    int nn = trust_sig_names(pk->keyid, names);
    memcpy(name, names[0], TRUST_SIGNAME_MAX);
    stale[0] = 0;
    if (sig_owner(dirfd, names[0], pk, man, len) == 0)
        trust_sig_keyname(pk, name); /* the key-id name is another key's */
    else if (nn == 2 && sig_owner(dirfd, names[1], pk, man, len) == 1)
        memcpy(stale, names[1], TRUST_SIGNAME_MAX);
}

int trust_verify_sigs(int rootfd, const char *man, size_t len, const struct trust_keyset *ks,
                      bool scan_all, struct util_lines *lines, struct util_lines *problems,
                      int *distinct, char *err, size_t errlen)
{
    bool *counted = xmalloc(ks->n + 1);
    memset(counted, 0, ks->n + 1);
    struct signame *cand = NULL;
    size_t ncand = 0, nfiles = 0;
    int good = 0, rc = -1;
    char first_bad[420] = "";
    *distinct = 0;
    if (ks->n == 0) {
        util_errf(err, errlen,
                  "trust: no trusted keys configured (trust.keys); refusing the bundle");
        util_line_add(problems, "%s", err);
        goto out;
    }
    /* The one rule, for every command and every run: read exactly the files
     * of the trusted keys (no directory walk); a file counts for the trusted
     * key that verifies it, each distinct public key once. */
    ncand = sig_candidates(ks, &cand);
    for (size_t j = 0; j < ncand; j++) {
        char sub[400], idx[17];
        size_t k = 0;
        enum sigfile r =
            check_sigfile(rootfd, cand[j].name, cand[j].keyid, man, len, ks, &k, sub, sizeof sub);
        if (r == SIGFILE_MISSING)
            continue;
        nfiles++;
        if (r == SIGFILE_VALID) {
            minisign_keyid_hex(ks->keys[k].keyid, idx);
            if (distinct_add(ks, counted, k)) {
                good++;
                util_line_add(lines, "%s: valid, trusted key %s (trust.keys[%zu])", cand[j].name,
                              idx, k + 1);
            } else {
                util_line_add(lines,
                              "%s: valid, but the same public key already signed: "
                              "counted once",
                              cand[j].name);
            }
            continue;
        }
        util_line_add(lines, "%s", sub);
        util_line_add(problems, "%s", sub);
        if (!first_bad[0])
            snprintf(first_bad, sizeof first_bad, "; %s", sub);
    }
    if (scan_all) {
        size_t before = lines ? lines->n : 0;
        report_others(rootfd, man, len, ks, cand, ncand, lines, problems, err, errlen);
        if (nfiles == 0 && (!lines || lines->n == before))
            util_line_add(lines, "no signature files (MANIFEST.json.<KEYID>.minisig)");
    }
    *distinct = good;
    if (good < ks->threshold) {
        util_errf(err, errlen,
                  "signatures: %d of %lld required distinct trusted keys signed the manifest%s",
                  good, ks->threshold, first_bad);
        util_line_add(problems, "%s", err);
        goto out;
    }
    rc = 0;
out:
    free(cand);
    free(counted);
    return rc;
}

/* --------------------------------------------------------- whole bundle */

int trust_check_bundle(struct trust_report *r, const char *dir, const struct trust_keyset *ks,
                       size_t max_file, int64_t now_s)
{
    struct buf man = {0};
    char err[600];
    memset(r, 0, sizeof *r);
    r->threshold = ks->threshold;
    int rootfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (rootfd < 0) {
        r->failed |= TRUST_FAIL_BUNDLE;
        util_line_add(&r->problems, "bundle %s: %s", dir, strerror(errno));
        return (int)r->problems.n;
    }
    enum util_open rc =
        util_read_limited(rootfd, "MANIFEST.json", MANIFEST_MAX, NULL, &man, err, sizeof err);
    if (rc != UTIL_OPEN_OK) {
        r->failed |= TRUST_FAIL_MANIFEST;
        util_line_add(&r->problems, "%s",
                      rc == UTIL_OPEN_MISSING ? "MANIFEST.json: missing (unsigned bundle)" : err);
        goto out;
    }
    uint8_t h[32];
    crypto_generichash(h, 32, (const uint8_t *)man.data, man.len, NULL, 0);
    util_hex(h, 32, r->manifest_hash);
    size_t before = r->problems.n; /* each step's problems name its code */
    trust_verify_sigs(rootfd, man.data, man.len, ks, true, &r->sigs, &r->problems, &r->distinct,
                      err, sizeof err);
    if (r->problems.n > before)
        r->failed |= TRUST_FAIL_SIGNATURES;
    if (manifest_parse(&r->m, man.data, man.len, err, sizeof err) < 0) {
        r->failed |= TRUST_FAIL_MANIFEST;
        util_line_add(&r->problems, "%s", err);
        goto out;
    }
    r->have_manifest = true;
    before = r->problems.n;
    manifest_check_files(rootfd, &r->m, max_file, &r->problems);
    if (r->problems.n > before)
        r->failed |= TRUST_FAIL_FILES;
    if (now_s >= r->m.expires) {
        r->failed |= TRUST_FAIL_EXPIRED;
        struct buf when = {0};
        util_date(&when, r->m.expires, now_s);
        util_line_add(&r->problems, "manifest expired at %s: sign a new version", when.data);
        buf_free(&when);
    }
out:
    buf_free(&man);
    close(rootfd);
    return (int)r->problems.n;
}

void trust_report_free(struct trust_report *r)
{
    manifest_free(&r->m);
    util_lines_free(&r->sigs);
    util_lines_free(&r->problems);
    memset(r, 0, sizeof *r);
}

/* -------------------------------------------------------------- reports */

static void trust_report_text(const struct trust_report *r, const char *dir, struct buf *out)
{
    buf_printf(out, "bundle      %s\n", dir);
    if (r->have_manifest) {
        buf_printf(out, "name        %s version %lld\n", r->m.bundle, r->m.version);
        int64_t now = util_now_ms() / 1000;
        buf_addstr(out, "created     ");
        util_date(out, r->m.created, now);
        buf_addstr(out, "\nexpires     ");
        util_date(out, r->m.expires, now);
        buf_addstr(out, "\n");
        buf_printf(out, "files       %zu listed\n", r->m.nfiles);
    }
    if (r->manifest_hash[0])
        buf_printf(out, "manifest    blake2b %s\n", r->manifest_hash);
    for (size_t i = 0; i < r->sigs.n; i++)
        buf_printf(out, "signature   %s\n", r->sigs.v[i]);
    buf_printf(out, "threshold   %d of %lld distinct trusted keys\n", r->distinct, r->threshold);
    for (size_t i = 0; i < r->problems.n; i++)
        buf_printf(out, "PROBLEM     %s\n", r->problems.v[i]);
    if (r->problems.n)
        buf_printf(out, "FAILED: %zu problem%s\n", r->problems.n, r->problems.n == 1 ? "" : "s");
    else
        buf_printf(out, "OK\n");
}

void trust_report_json(const struct trust_report *r, bool full, size_t max, struct buf *out)
{
    size_t start = out->len;
    buf_addstr(out, "{\"bundle\":");
    if (r->have_manifest) {
        util_json_str(out, r->m.bundle);
        buf_printf(out, ",\"version\":%lld", r->m.version);
    } else {
        buf_addstr(out, "null,\"version\":null");
    }
    buf_addstr(out, ",\"manifest\":");
    util_json_str(out, r->manifest_hash);
    buf_printf(out, ",\"ok\":%s", r->problems.n ? "false" : "true");
    if (full) {
        buf_printf(out, ",\"threshold\":%lld,\"valid_keys\":%d", r->threshold, r->distinct);
        if (r->have_manifest)
            buf_printf(out, ",\"created\":%lld,\"expires\":%lld,\"files\":%zu", r->m.created,
                       r->m.expires, r->m.nfiles);
        buf_addstr(out, ",\"signatures\":[");
        for (size_t i = 0; i < r->sigs.n; i++) {
            if (i)
                buf_addstr(out, ",");
            util_json_str(out, r->sigs.v[i]);
        }
        buf_addstr(out, "]");
    }
    if (full || r->failed) {
        static const char *const names[] = {"bundle",  "manifest", "signatures", "files", "expired",
                                            "compile", "version",  "handlers",   "keys"};
        const char *sep = "";
        buf_addstr(out, ",\"failed\":[");
        for (size_t i = 0; i < sizeof names / sizeof *names; i++)
            if (r->failed & (1u << i)) {
                buf_printf(out, "%s\"%s\"", sep, names[i]);
                sep = ",";
            }
        buf_addstr(out, "]");
    }
    buf_addstr(out, ",\"problems\":[");
    for (size_t i = 0; i < r->problems.n; i++) {
        size_t mark = out->len;
        if (i)
            buf_addstr(out, ",");
        util_json_str(out, r->problems.v[i]);
        if (max && out->len - start + 40 > max) {
            out->len = mark; /* drop it and say how many are left */
            out->data[out->len] = 0;
            buf_printf(out, "%s\"... %zu more\"", i ? "," : "", r->problems.n - i);
            break;
        }
    }
    buf_addstr(out, "]}");
}

void trust_report_print(const struct trust_report *r, const char *dir, bool json)
{
    struct buf out = {0};
    if (json) {
        trust_report_json(r, true, 0, &out);
        buf_addstr(&out, "\n");
    } else {
        trust_report_text(r, dir, &out);
    }
    fwrite(out.data, 1, out.len, stdout);
    buf_free(&out);
}
