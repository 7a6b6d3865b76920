/*
 * manifest.c: the bundle manifest (MANIFEST.json), read by a small strict
 * JSON reader and written canonically; each listed file read once with its
 * size and BLAKE2b-256 checked; the walk of handlers/ and lua/ that builds a
 * manifest (sign) or finds unlisted files (verify, check, install).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "serfhand.h"

#define JSON_DEPTH_MAX 8
#define MANIFEST_FILES_MAX 10000
#define WALK_DEPTH_MAX 16

/* ------------------------------------------------------ strict JSON read */

enum jtype { J_OBJ, J_STR, J_INT };

struct jnode {
    enum jtype type;
    char *str;     /* J_STR */
    long long num; /* J_INT */
    char **keys;   /* J_OBJ */
    struct jnode *vals;
    size_t n;
};

struct jparser {
    const char *start, *s, *end;
    char *err;
    size_t errlen;
    int depth;
};

static void jfree(struct jnode *j)
{
    free(j->str);
    for (size_t i = 0; i < j->n; i++) {
        free(j->keys[i]);
        jfree(&j->vals[i]);
    }
    free(j->keys);
    free(j->vals);
    memset(j, 0, sizeof *j);
}

static int jerr(struct jparser *p, const char *msg)
{
    util_errf(p->err, p->errlen, "manifest: %s at byte %zu", msg, (size_t)(p->s - p->start));
    return -1;
}

static void jws(struct jparser *p)
{
    while (p->s < p->end && (*p->s == ' ' || *p->s == '\t' || *p->s == '\n' || *p->s == '\r'))
        p->s++;
}

static int jhex4(const char *s)
{
    int v = 0;
    for (int i = 0; i < 4; i++) {
        char c = s[i];
        v <<= 4;
        if (c >= '0' && c <= '9')
            v |= c - '0';
        else if (c >= 'a' && c <= 'f')
            v |= c - 'a' + 10;
        else if (c >= 'A' && c <= 'F')
            v |= c - 'A' + 10;
        else
            return -1;
    }
    return v;
}

/* Strings: printable ASCII only (every name and path in a manifest is). */
static int jstring(struct jparser *p, char **out)
{
    struct buf b = {0};
    p->s++; /* opening quote */
    for (;;) {
        if (p->s >= p->end) {
            buf_free(&b);
            return jerr(p, "unterminated string");
        }
        unsigned char c = (unsigned char)*p->s;
        if (c == '"') {
            p->s++;
            break;
        }
        if (c < 0x20 || c > 0x7e) {
            buf_free(&b);
            return jerr(p, "control or non-ASCII byte in string");
        }
        if (c == '\\') {
            if (p->end - p->s < 2) {
                buf_free(&b);
                return jerr(p, "bad escape");
            }
            char e = p->s[1], r;
            p->s += 2;
            switch (e) {
            case '"': r = '"'; break;
            case '\\': r = '\\'; break;
            case '/': r = '/'; break;
            case 'u': {
                int v = p->end - p->s >= 4 ? jhex4(p->s) : -1;
                if (v < 0x20 || v > 0x7e) {
                    buf_free(&b);
                    return jerr(p, "\\u escape outside printable ASCII");
                }
                p->s += 4;
                r = (char)v;
                break;
            }
            default: buf_free(&b); return jerr(p, "escape not allowed in a manifest string");
            }
            buf_add(&b, &r, 1);
            continue;
        }
        buf_add(&b, p->s, 1);
        p->s++;
    }
    if (!b.data)
        buf_add(&b, "", 0);
    *out = b.data;
    return 0;
}

static int jvalue(struct jparser *p, struct jnode *j);

static int jobject(struct jparser *p, struct jnode *j)
{
    j->type = J_OBJ;
    if (++p->depth > JSON_DEPTH_MAX)
        return jerr(p, "nested too deeply");
    p->s++; /* { */
    jws(p);
    if (p->s < p->end && *p->s == '}') {
        p->s++;
        p->depth--;
        return 0;
    }
    for (;;) {
        char *key = NULL;
        jws(p);
        if (p->s >= p->end || *p->s != '"')
            return jerr(p, "expected a string key");
        if (jstring(p, &key) < 0)
            return -1;
        for (size_t i = 0; i < j->n; i++) {
            if (strcmp(j->keys[i], key) == 0) {
                char m[300];
                snprintf(m, sizeof m, "duplicate key \"%.200s\"", key);
                free(key);
                return jerr(p, m);
            }
        }
        if (j->n >= MANIFEST_FILES_MAX + 16) {
            free(key);
            return jerr(p, "too many keys");
        }
        j->keys = xrealloc(j->keys, (j->n + 1) * sizeof *j->keys);
        j->vals = xrealloc(j->vals, (j->n + 1) * sizeof *j->vals);
        j->keys[j->n] = key;
        memset(&j->vals[j->n], 0, sizeof j->vals[0]);
        j->n++;
        jws(p);
        if (p->s >= p->end || *p->s != ':')
            return jerr(p, "expected ':'");
        p->s++;
        if (jvalue(p, &j->vals[j->n - 1]) < 0)
            return -1;
        jws(p);
        if (p->s < p->end && *p->s == ',') {
            p->s++;
            continue;
        }
        if (p->s < p->end && *p->s == '}') {
            p->s++;
            p->depth--;
            return 0;
        }
        return jerr(p, "expected ',' or '}'");
    }
}

static int jvalue(struct jparser *p, struct jnode *j)
{
    jws(p);
    if (p->s >= p->end)
        return jerr(p, "unexpected end");
    char c = *p->s;
    if (c == '{')
        return jobject(p, j);
    if (c == '"') {
        j->type = J_STR;
        return jstring(p, &j->str);
    }
    if (c == '-' || (c >= '0' && c <= '9')) {
        bool neg = c == '-';
        long long v = 0;
        if (neg)
            p->s++;
        if (p->s >= p->end || *p->s < '0' || *p->s > '9')
            return jerr(p, "bad number");
        if (*p->s == '0' && p->s + 1 < p->end && p->s[1] >= '0' && p->s[1] <= '9')
            return jerr(p, "leading zero");
        while (p->s < p->end && *p->s >= '0' && *p->s <= '9') {
            int d = *p->s - '0';
            /* checked before it is computed: the value never wraps */
            if (v > (MANIFEST_INT_MAX - d) / 10)
                return jerr(p, "integer out of range (beyond +-9007199254740991, the largest "
                               "every JSON reader reads exactly)");
            v = v * 10 + d;
            p->s++;
        }
        if (p->s < p->end && (*p->s == '.' || *p->s == 'e' || *p->s == 'E'))
            return jerr(p, "only integers are allowed");
        if (neg && v == 0)
            return jerr(p, "-0 is not an integer (write 0)");
        j->type = J_INT;
        j->num = neg ? -v : v;
        return 0;
    }
    return jerr(p, "expected an object, a string or an integer");
}

/* -------------------------------------------------------------- manifest */

bool manifest_valid_rel(const char *rel)
{
    size_t len = strlen(rel);
    if (len > 255 || (strncmp(rel, "handlers/", 9) != 0 && strncmp(rel, "lua/", 4) != 0))
        return false;
    const char *s = rel;
    for (;;) {
        const char *e = strchr(s, '/');
        size_t n = e ? (size_t)(e - s) : strlen(s);
        if (n == 0 || (n == 1 && s[0] == '.') || (n == 2 && s[0] == '.' && s[1] == '.'))
            return false;
        for (size_t i = 0; i < n; i++) {
            char c = s[i];
            if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '_' || c == '-' || c == '.' || c == '+' || c == '@'))
                return false;
        }
        if (!e)
            return true;
        s = e + 1;
    }
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

static int cmp_file(const void *a, const void *b)
{
    return strcmp(((const struct manifest_file *)a)->path, ((const struct manifest_file *)b)->path);
}

static const struct jnode *jget(const struct jnode *o, const char *key)
{
    for (size_t i = 0; i < o->n; i++)
        if (strcmp(o->keys[i], key) == 0)
            return &o->vals[i];
    return NULL;
}

static int jint_field(const struct jnode *o, const char *key, long long min, long long *out,
                      char *err, size_t errlen)
{
    const struct jnode *v = jget(o, key);
    if (!v || v->type != J_INT) {
        util_errf(err, errlen, "manifest: \"%s\" must be an integer", key);
        return -1;
    }
    if (v->num < min) {
        util_errf(err, errlen, "manifest: \"%s\" must be at least %lld", key, min);
        return -1;
    }
    *out = v->num;
    return 0;
}

static int only_keys(const struct jnode *o, const char *const *allowed, const char *where,
                     char *err, size_t errlen)
{
    for (size_t i = 0; i < o->n; i++) {
        bool ok = false;
        for (size_t k = 0; allowed[k]; k++)
            ok = ok || strcmp(o->keys[i], allowed[k]) == 0;
        if (!ok) {
            util_errf(err, errlen, "manifest: unknown key \"%.100s\" in %s", o->keys[i], where);
            return -1;
        }
    }
    return 0;
}

int manifest_parse(struct manifest *m, const char *text, size_t len, char *err, size_t errlen)
{
    static const char *const top[] = {"format",  "bundle", "version", "created",
                                      "expires", "files",  NULL};
    static const char *const fkeys[] = {"size", "blake2b", NULL};
    struct jparser p = {text, text, text + len, err, errlen, 0};
    struct jnode root = {0};
    const struct jnode *v;
    long long fmt;
    int rc = -1;
    memset(m, 0, sizeof *m);
    if (memchr(text, 0, len)) {
        util_errf(err, errlen, "manifest: NUL byte");
        return -1;
    }
    jws(&p);
    if (p.s >= p.end || *p.s != '{') {
        util_errf(err, errlen, "manifest: not a JSON object");
        return -1;
    }
    if (jobject(&p, &root) < 0)
        goto out;
    jws(&p);
    if (p.s != p.end) {
        jerr(&p, "trailing bytes after the object");
        goto out;
    }
    if (only_keys(&root, top, "the manifest", err, errlen) < 0 ||
        jint_field(&root, "format", 1, &fmt, err, errlen) < 0)
        goto out;
    if (fmt != 1) {
        util_errf(err, errlen, "manifest: format %lld not supported (want 1)", fmt);
        goto out;
    }
    v = jget(&root, "bundle");
    if (!v || v->type != J_STR || !util_valid_name(v->str)) {
        util_errf(err, errlen,
                  "manifest: \"bundle\" must be a name [A-Za-z0-9][A-Za-z0-9_.-]{0,63}");
        goto out;
    }
    m->bundle = xstrdup(v->str);
    if (jint_field(&root, "version", 1, &m->version, err, errlen) < 0 ||
        jint_field(&root, "created", 0, &m->created, err, errlen) < 0 ||
        jint_field(&root, "expires", 0, &m->expires, err, errlen) < 0)
        goto out;
    if (m->expires <= m->created) {
        util_errf(err, errlen, "manifest: \"expires\" is not after \"created\"");
        goto out;
    }
    v = jget(&root, "files");
    if (!v || v->type != J_OBJ) {
        util_errf(err, errlen, "manifest: \"files\" must be an object");
        goto out;
    }
    if (v->n > MANIFEST_FILES_MAX) {
        util_errf(err, errlen, "manifest: more than %d files", MANIFEST_FILES_MAX);
        goto out;
    }
    m->files = xmalloc((v->n ? v->n : 1) * sizeof *m->files);
    for (size_t i = 0; i < v->n; i++) {
        const struct jnode *f = &v->vals[i], *sz, *h;
        const char *path = v->keys[i];
        if (!manifest_valid_rel(path)) {
            util_errf(err, errlen,
                      "manifest: invalid path \"%.200s\" (must be handlers/... or lua/..., "
                      "no \"..\", no absolute path, only [A-Za-z0-9_.+@-])",
                      path);
            goto out;
        }
        if (f->type != J_OBJ || only_keys(f, fkeys, path, err, errlen) < 0) {
            if (f->type != J_OBJ)
                util_errf(err, errlen, "manifest: entry for %.200s must be an object", path);
            goto out;
        }
        sz = jget(f, "size");
        h = jget(f, "blake2b");
        if (!sz || sz->type != J_INT || sz->num < 0) {
            util_errf(err, errlen, "manifest: %.200s: \"size\" must be a non-negative integer",
                      path);
            goto out;
        }
        if (!h || h->type != J_STR || strlen(h->str) != 64) {
            util_errf(err, errlen, "manifest: %.200s: \"blake2b\" must be 64 lowercase hex digits",
                      path);
            goto out;
        }
        struct manifest_file *tf = &m->files[m->nfiles];
        for (int k = 0; k < 32; k++) {
            int hi = hexval(h->str[2 * k]), lo = hexval(h->str[2 * k + 1]);
            if (hi < 0 || lo < 0) {
                util_errf(err, errlen,
                          "manifest: %.200s: \"blake2b\" must be 64 lowercase hex digits", path);
                goto out;
            }
            tf->hash[k] = (uint8_t)(hi << 4 | lo);
        }
        tf->size = (uint64_t)sz->num;
        tf->path = xstrdup(path);
        m->nfiles++;
    }
    qsort(m->files, m->nfiles, sizeof *m->files, cmp_file);
    rc = 0;
out:
    jfree(&root);
    if (rc < 0)
        manifest_free(m);
    return rc;
}

void manifest_free(struct manifest *m)
{
    for (size_t i = 0; i < m->nfiles; i++)
        free(m->files[i].path);
    free(m->files);
    free(m->bundle);
    memset(m, 0, sizeof *m);
}

const struct manifest_file *manifest_find(const struct manifest *m, const char *path)
{
    struct manifest_file key = {.path = (char *)path};
    if (!m->nfiles)
        return NULL;
    return bsearch(&key, m->files, m->nfiles, sizeof *m->files, cmp_file);
}

void manifest_write(const struct manifest *m, struct buf *out)
{
    char hex[65];
    buf_printf(out, "{\n  \"format\": 1,\n  \"bundle\": ");
    util_json_str(out, m->bundle);
    buf_printf(out,
               ",\n  \"version\": %lld,\n  \"created\": %lld,\n  \"expires\": %lld,\n"
               "  \"files\": {",
               m->version, m->created, m->expires);
    for (size_t i = 0; i < m->nfiles; i++) {
        util_hex(m->files[i].hash, 32, hex);
        buf_addstr(out, i ? ",\n    " : "\n    ");
        util_json_str(out, m->files[i].path);
        buf_printf(out, ": {\"size\": %llu, \"blake2b\": \"%s\"}",
                   (unsigned long long)m->files[i].size, hex);
    }
    buf_addstr(out, m->nfiles ? "\n  }\n}\n" : "}\n}\n");
}

int manifest_read_checked(int dirfd, const struct manifest_file *f, size_t max, struct buf *out,
                          char *err, size_t errlen)
{
    uint8_t h[32];
    enum util_open rc =
        util_read_limited(dirfd, f->path, max, "limits.file_bytes", out, err, errlen);
    if (rc == UTIL_OPEN_MISSING)
        util_errf(err, errlen, "%s: listed in the manifest but missing", f->path);
    if (rc != UTIL_OPEN_OK)
        goto fail;
    if (out->len != f->size) {
        util_errf(err, errlen, "%s: %zu bytes, the manifest says %llu", f->path, out->len,
                  (unsigned long long)f->size);
        goto fail;
    }
    crypto_generichash(h, 32, (const uint8_t *)out->data, out->len, NULL, 0);
    if (sodium_memcmp(h, f->hash, 32) != 0) {
        util_errf(err, errlen, "%s: BLAKE2b-256 hash does not match the manifest", f->path);
        goto fail;
    }
    return 0;
fail:
    buf_free(out);
    return -1;
}

struct walk {
    char **paths;
    size_t n;
    struct util_lines *p;
};

static void walk_dir(int rootfd, int dfd, const char *prefix, int depth, struct walk *w)
{
    DIR *d = fdopendir(dfd);
    if (!d) {
        util_line_add(w->p, "%s: %s", prefix, strerror(errno));
        close(dfd);
        return;
    }
    struct dirent *e;
    while ((e = readdir(d))) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        struct buf rel = {0};
        struct stat st;
        buf_printf(&rel, "%s/%s", prefix, e->d_name);
        if (fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
            util_line_add(w->p, "%s: %s", rel.data, strerror(errno));
        } else if (!manifest_valid_rel(rel.data)) {
            util_line_add(w->p, "%s: file name not allowed in a bundle (only [A-Za-z0-9_.+@-])",
                          rel.data);
        } else if (S_ISDIR(st.st_mode)) {
            int sub = openat(dirfd(d), e->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            if (depth >= WALK_DEPTH_MAX)
                util_line_add(w->p, "%s: directories nested too deeply", rel.data);
            else if (sub < 0)
                util_line_add(w->p, "%s: %s", rel.data, strerror(errno));
            else {
                walk_dir(rootfd, sub, rel.data, depth + 1, w);
                sub = -1;
            }
            if (sub >= 0)
                close(sub);
        } else if (S_ISREG(st.st_mode) || S_ISLNK(st.st_mode)) {
            bool ok = true;
            if (S_ISLNK(st.st_mode)) {
                char err[300];
                int fd = util_open_beneath(rootfd, rel.data, err, sizeof err);
                struct stat ts;
                if (fd < 0) {
                    if (fd == UTIL_OPEN_MISSING)
                        util_line_add(w->p, "%s: dangling symlink (its target does not exist)",
                                      rel.data);
                    else
                        util_line_add(w->p, "%s", err);
                    ok = false;
                } else if (fstat(fd, &ts) < 0 || !S_ISREG(ts.st_mode)) {
                    util_line_add(w->p, "%s: symlink to something other than a regular file",
                                  rel.data);
                    ok = false;
                }
                if (fd >= 0)
                    close(fd);
            }
            if (ok) {
                w->paths = xrealloc(w->paths, (w->n + 1) * sizeof *w->paths);
                w->paths[w->n++] = rel.data;
                rel.data = NULL;
            }
        } else {
            util_line_add(w->p, "%s: is %s, not a regular file or directory", rel.data,
                          util_file_kind(st.st_mode));
        }
        buf_free(&rel);
    }
    closedir(d);
}

/* Every file below handlers/ and lua/, sorted; problems for what cannot be
 * part of a bundle. */
static void walk_bundle(int rootfd, struct walk *w)
{
    static const char *const tops[] = {"handlers", "lua"};
    for (int i = 0; i < 2; i++) {
        struct stat st;
        if (fstatat(rootfd, tops[i], &st, AT_SYMLINK_NOFOLLOW) < 0)
            continue;
        if (!S_ISDIR(st.st_mode)) {
            util_line_add(w->p, "%s: not a directory", tops[i]);
            continue;
        }
        int fd = openat(rootfd, tops[i], O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0)
            util_line_add(w->p, "%s: %s", tops[i], strerror(errno));
        else
            walk_dir(rootfd, fd, tops[i], 0, w);
    }
    if (w->n)
        qsort(w->paths, w->n, sizeof *w->paths, util_cmp_str);
}

static void walk_free(struct walk *w)
{
    for (size_t i = 0; i < w->n; i++)
        free(w->paths[i]);
    free(w->paths);
}

int manifest_build(struct manifest *m, const char *dir, size_t max_file, struct util_lines *p)
{
    struct walk w = {0};
    w.p = p;
    size_t before = p->n;
    int rootfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (rootfd < 0) {
        util_line_add(p, "%s: %s", dir, strerror(errno));
        return -1;
    }
    walk_bundle(rootfd, &w);
    m->files = xmalloc((w.n ? w.n : 1) * sizeof *m->files);
    m->nfiles = 0;
    for (size_t i = 0; i < w.n; i++) {
        struct buf b = {0};
        char err[300];
        if (util_read_limited(rootfd, w.paths[i], max_file, "limits.file_bytes", &b, err,
                              sizeof err) != UTIL_OPEN_OK) {
            util_line_add(p, "%s", err);
        } else {
            struct manifest_file *f = &m->files[m->nfiles++];
            f->path = xstrdup(w.paths[i]);
            f->size = b.len;
            crypto_generichash(f->hash, 32, (const uint8_t *)b.data, b.len, NULL, 0);
        }
        buf_free(&b);
    }
    walk_free(&w);
    close(rootfd);
    return p->n == before ? 0 : -1;
}

int manifest_check_files(int rootfd, const struct manifest *m, size_t max_file,
                         struct util_lines *p)
{
    size_t before = p->n;
    struct walk w = {0};
    w.p = p;
    for (size_t i = 0; i < m->nfiles; i++) {
        struct buf b = {0};
        char err[400];
        if (manifest_read_checked(rootfd, &m->files[i], max_file, &b, err, sizeof err) < 0)
            util_line_add(p, "%s", err);
        buf_free(&b);
    }
    walk_bundle(rootfd, &w);
    for (size_t i = 0; i < w.n; i++)
        if (!manifest_find(m, w.paths[i]))
            util_line_add(p, "%s: not listed in the manifest", w.paths[i]);
    walk_free(&w);
    return (int)(p->n - before);
}
