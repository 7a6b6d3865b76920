/*
 * util.c: small helpers every unit uses: checked allocation, a growable byte
 * buffer, whole-file reads with a size cap, clocks and error formatting.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <limits.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <linux/openat2.h>

#include <sodium.h>

#include "serfhand.h"

void *xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p) {
        static const char msg[] = "serfhand: out of memory\n";
        (void)!write(2, msg, sizeof msg - 1);
        _exit(SH_EXIT_USAGE); /* no caller to return to: the one exception to exit
                                 codes being decided in main.c and cmd_*.c */
    }
    return p;
}

void *xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    if (!q) {
        free(p);
        return xmalloc((size_t)-1 / 2); /* fails and exits with the message */
    }
    return q;
}

char *xstrdup(const char *s)
{
    size_t n = strlen(s) + 1;
    return memcpy(xmalloc(n), s, n);
}

static void buf_grow(struct buf *b, size_t extra)
{
    size_t need = b->len + extra + 1;
    if (need <= b->cap)
        return;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < need)
        cap *= 2;
    b->data = xrealloc(b->data, cap);
    b->cap = cap;
}

void buf_reserve(struct buf *b, size_t n)
{
    size_t need = b->len + n + 1;
    if (need > b->cap) {
        b->data = xrealloc(b->data, need);
        b->cap = need;
    }
}

void buf_add(struct buf *b, const void *p, size_t n)
{
    buf_grow(b, n);
    if (n)
        memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
}

void buf_addstr(struct buf *b, const char *s)
{
    buf_add(b, s, strlen(s));
}

void buf_printf(struct buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    buf_grow(b, (size_t)n);
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

void buf_free(struct buf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

void util_errf(char *err, size_t errlen, const char *fmt, ...)
{
    if (!err || !errlen)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

int util_read_fd(int fd, size_t max, struct buf *out, char *err, size_t errlen)
{
    char chunk[16384];
    for (;;) {
        ssize_t n = read(fd, chunk, sizeof chunk);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            util_errf(err, errlen, "read: %s", strerror(errno));
            return -1;
        }
        if (n == 0)
            break;
        if (out->len + (size_t)n > max) {
            util_errf(err, errlen, "input larger than %zu bytes", max);
            return -1;
        }
        buf_add(out, chunk, (size_t)n);
    }
    if (!out->data)
        buf_add(out, "", 0);
    return 0;
}

int util_read_file(const char *path, size_t max, struct buf *out, char *err, size_t errlen)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) {
        util_errf(err, errlen, "%s: %s", path, strerror(errno));
        return -1;
    }
    char sub[256];
    int rc = util_read_fd(fd, max, out, sub, sizeof sub);
    if (rc < 0)
        util_errf(err, errlen, "%s: %s", path, sub);
    close(fd);
    return rc;
}

const char *util_file_kind(unsigned mode)
{
    mode_t m = (mode_t)mode;
    if (S_ISDIR(m))
        return "a directory";
    if (S_ISFIFO(m))
        return "a FIFO (named pipe)";
    if (S_ISCHR(m))
        return "a character device";
    if (S_ISBLK(m))
        return "a block device";
    if (S_ISSOCK(m))
        return "a socket";
    if (S_ISLNK(m))
        return "a symlink";
    return "not a plain file";
}

enum util_open util_open_regular(const char *path, int flags, size_t max, int *fd, char *err,
                                 size_t errlen)
{
    struct stat st;
    bool nofollow = (flags & O_NOFOLLOW) != 0;
    *fd = -1;
    /* Look before opening: opening a device can have effects of its own (a
     * tape rewinds, a modem line waits for carrier), a FIFO can block. */
    if ((nofollow ? lstat(path, &st) : stat(path, &st)) < 0) {
        int e = errno;
        struct stat ls;
        if (e == ENOENT && !nofollow && lstat(path, &ls) == 0 && S_ISLNK(ls.st_mode)) {
            util_errf(err, errlen, "%s: dangling symlink (its target does not exist)", path);
            return UTIL_OPEN_FAILED;
        }
        util_errf(err, errlen, "%s: %s", path, strerror(e));
        return e == ENOENT ? UTIL_OPEN_MISSING : UTIL_OPEN_FAILED;
    }
    if (!S_ISREG(st.st_mode)) {
        util_errf(err, errlen, "%s: is %s, not a regular file", path, util_file_kind(st.st_mode));
        return UTIL_OPEN_FAILED;
    }
    /* O_NONBLOCK: should the path be swapped for a FIFO after the look,
     * the open still returns at once and fstat below refuses it. */
    int f = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK | flags);
    if (f < 0) {
        int e = errno;
        if (e == ELOOP && nofollow)
            util_errf(err, errlen, "%s: is a symlink, not a regular file", path);
        else
            util_errf(err, errlen, "%s: %s", path, strerror(e));
        return e == ENOENT ? UTIL_OPEN_MISSING : UTIL_OPEN_FAILED;
    }
    if (fstat(f, &st) < 0 || !S_ISREG(st.st_mode)) {
        util_errf(err, errlen, "%s: is %s, not a regular file", path, util_file_kind(st.st_mode));
        close(f);
        return UTIL_OPEN_FAILED;
    }
    if ((uint64_t)st.st_size > max) {
        util_errf(err, errlen, "%s: %lld bytes, over the fixed limit of %zu bytes for this file",
                  path, (long long)st.st_size, max);
        close(f);
        return UTIL_OPEN_FAILED;
    }
    int fl = fcntl(f, F_GETFL);
    if (fl >= 0)
        (void)fcntl(f, F_SETFL, fl & ~O_NONBLOCK);
    *fd = f;
    return UTIL_OPEN_OK;
}

enum util_open util_read_regular(const char *path, size_t max, struct buf *out, char *err,
                                 size_t errlen)
{
    int fd;
    char sub[256];
    enum util_open rc = util_open_regular(path, 0, max, &fd, err, errlen);
    if (rc != UTIL_OPEN_OK)
        return rc;
    if (util_read_fd(fd, max, out, sub, sizeof sub) < 0) {
        util_errf(err, errlen, "%s: %s", path, sub);
        rc = UTIL_OPEN_FAILED;
    }
    close(fd);
    return rc;
}

int util_read_secret(const char *path, size_t max, char **text, size_t *len, struct stat *st,
                     char *err, size_t errlen)
{
    int fd, rc = -1;
    struct stat own;

    *text = NULL;
    *len = 0;
    if (st == NULL)
        st = &own;
    if (sodium_init() < 0) { /* sodium_malloc needs it; lfactomd.c calls in without */
        util_errf(err, errlen, "%s: libsodium failed to initialise", path);
        return -1;
    }
    /* never blocks (a FIFO, a device), must be a regular file under the cap */
    if (util_open_regular(path, 0, max, &fd, err, errlen) != UTIL_OPEN_OK)
        return -1;
    if (fstat(fd, st) < 0) {
        util_errf(err, errlen, "%s: %s", path, strerror(errno));
        goto out;
    }
    /* One byte more than stat said (at most max), to notice a file that grew:
     * the secret never passes through a stack buffer or a realloc'ed heap one. */
    size_t cap = (size_t)st->st_size + 1;
    *text = sodium_malloc(cap);
    if (*text == NULL) {
        util_errf(err, errlen, "%s: out of secure memory", path);
        goto out;
    }
    while (*len < cap) {
        ssize_t n = read(fd, *text + *len, cap - *len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            util_errf(err, errlen, "%s: %s", path, strerror(errno));
            goto out;
        }
        if (n == 0)
            break;
        *len += (size_t)n;
    }
    if (*len == cap) {
        util_errf(err, errlen, "%s: changed while being read", path);
        goto out;
    }
    (*text)[*len] = '\0'; /* cap > len: room for it */
    rc = 0;
out:
    if (rc < 0) {
        sodium_free(*text);
        *text = NULL;
        *len = 0;
    }
    close(fd);
    return rc;
}

static int64_t clock_ms(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t util_mono_ms(void)
{
    return clock_ms(CLOCK_MONOTONIC);
}

int64_t util_now_ms(void)
{
    return clock_ms(CLOCK_REALTIME);
}

void util_date(struct buf *out, int64_t t, int64_t now)
{
    time_t tt = (time_t)t;
    struct tm tm;
    char iso[32] = "?";
    if (gmtime_r(&tt, &tm))
        strftime(iso, sizeof iso, "%Y-%m-%dT%H:%M:%SZ", &tm);
    int64_t d = now - t;
    bool past = d >= 0;
    uint64_t a = past ? (uint64_t)d : (uint64_t)(t - now); /* both in range: no overflow */
    const char *unit = "s";
    uint64_t n = a;
    if (a >= 2 * 86400) {
        n = a / 86400;
        unit = " days";
    } else if (a >= 2 * 3600) {
        n = a / 3600;
        unit = " h";
    } else if (a >= 60) {
        n = a / 60;
        unit = " min";
    }
    if (a == 0)
        buf_printf(out, "%s, now", iso);
    else
        buf_printf(out, "%s, %s%llu%s%s", iso, past ? "" : "in ", (unsigned long long)n, unit,
                   past ? " ago" : "");
}

static bool name_char(char c, bool first)
{
    if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'))
        return true;
    return !first && (c == '_' || c == '.' || c == '-');
}

bool util_valid_name(const char *s)
{
    size_t i;
    if (!s)
        return false;
    for (i = 0; s[i]; i++)
        if (i >= 64 || !name_char(s[i], i == 0))
            return false;
    return i > 0;
}

void util_wipe_on_fork(void *p, size_t n)
{
#ifdef MADV_WIPEONFORK /* Linux 4.14 */
    uintptr_t pg = (uintptr_t)sysconf(_SC_PAGESIZE);
    uintptr_t a = (uintptr_t)p & ~(pg - 1);
    uintptr_t e = ((uintptr_t)p + n + pg - 1) & ~(pg - 1);
    (void)madvise((void *)a, e - a, MADV_WIPEONFORK);
#else
    (void)p;
    (void)n;
#endif
}

/* ------------------------------------------------------------ text */

void util_hex(const uint8_t *p, size_t n, char *out)
{
    static const char hx[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = hx[p[i] >> 4];
        out[2 * i + 1] = hx[p[i] & 15];
    }
    out[2 * n] = 0;
}

void util_json_str(struct buf *b, const char *s)
{
    buf_add(b, "\"", 1);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') {
            buf_add(b, "\\", 1);
            buf_add(b, s, 1);
        } else if (c < 0x20 || c == 0x7f) {
            buf_printf(b, "\\u%04x", c);
        } else {
            buf_add(b, s, 1);
        }
    }
    buf_add(b, "\"", 1);
}

void util_line_add(struct util_lines *p, const char *fmt, ...)
{
    if (!p)
        return; /* the caller keeps no list */
    va_list ap;
    va_start(ap, fmt);
    char tmp[1024];
    vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    p->v = xrealloc(p->v, (p->n + 1) * sizeof *p->v);
    p->v[p->n++] = xstrdup(tmp);
}

void util_lines_free(struct util_lines *p)
{
    for (size_t i = 0; i < p->n; i++)
        free(p->v[i]);
    free(p->v);
    p->v = NULL;
    p->n = 0;
}

int util_write_all(int fd, const void *p, size_t n)
{
    const char *c = p;
    while (n) {
        ssize_t w = write(fd, c, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        c += w;
        n -= (size_t)w;
    }
    return 0;
}

int util_cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* ---------------------------------------------- reads below a directory */

static int openat2_sys(int dirfd, const char *rel, int flags, uint64_t resolve)
{
    struct open_how how;
    memset(&how, 0, sizeof how);
    how.flags = (uint64_t)flags;
    how.resolve = resolve;
    return (int)syscall(SYS_openat2, dirfd, rel, &how, sizeof how);
}

int util_open_beneath(int dirfd, const char *rel, char *err, size_t errlen)
{
    int flags = O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK;
    int fd = openat2_sys(dirfd, rel, flags, RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS);
    if (fd < 0 && (errno == ENOSYS || errno == EPERM)) {
        /* no openat2 (old kernel, seccomp): compare real paths */
        char proc[64], root[PATH_MAX], real[PATH_MAX];
        snprintf(proc, sizeof proc, "/proc/self/fd/%d", dirfd);
        if (!realpath(proc, root)) {
            util_errf(err, errlen, "%s: %s", rel, strerror(errno));
            return UTIL_OPEN_FAILED;
        }
        struct buf full = {0};
        buf_printf(&full, "%s/%s", root, rel);
        char *r = realpath(full.data, real);
        buf_free(&full);
        if (!r) {
            util_errf(err, errlen, "%s: %s", rel, strerror(errno));
            return errno == ENOENT ? UTIL_OPEN_MISSING : UTIL_OPEN_FAILED;
        }
        size_t rl = strlen(root);
        if (strncmp(real, root, rl) != 0 || real[rl] != '/') {
            util_errf(err, errlen, "%s: symlink leads out of the bundle", rel);
            return UTIL_OPEN_FAILED;
        }
        fd = open(real, flags);
    } else if (fd < 0 && errno == EXDEV) {
        util_errf(err, errlen, "%s: symlink leads out of the bundle", rel);
        return UTIL_OPEN_FAILED;
    }
    if (fd < 0) {
        util_errf(err, errlen, "%s: %s", rel, strerror(errno));
        return errno == ENOENT ? UTIL_OPEN_MISSING : UTIL_OPEN_FAILED;
    }
    return fd;
}

/* A path below dirfd that does not exist: a dangling symlink (its own name
 * is there, its target is not) or nothing at all. */
static bool is_dangling(int dirfd, const char *rel)
{
    struct stat st;
    return fstatat(dirfd, rel, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(st.st_mode);
}

enum util_open util_read_limited(int dirfd, const char *rel, size_t max, const char *setting,
                                 struct buf *out, char *err, size_t errlen)
{
    struct stat st;
    int fd = util_open_beneath(dirfd, rel, err, errlen);
    if (fd == UTIL_OPEN_MISSING && is_dangling(dirfd, rel)) {
        util_errf(err, errlen, "%s: dangling symlink (its target does not exist)", rel);
        return UTIL_OPEN_FAILED;
    }
    if (fd < 0)
        return fd == UTIL_OPEN_MISSING ? UTIL_OPEN_MISSING : UTIL_OPEN_FAILED;
    enum util_open rc = UTIL_OPEN_FAILED;
    char sub[256];
    /* name the setting that set max, or say that none did */
    const char *why = !setting ? "a fixed limit: no setting changes it" : *setting ? setting : NULL;
    if (fstat(fd, &st) < 0) {
        util_errf(err, errlen, "%s: %s", rel, strerror(errno));
        goto out;
    }
    if (!S_ISREG(st.st_mode)) {
        util_errf(err, errlen, "%s: is %s, not a regular file", rel, util_file_kind(st.st_mode));
        goto out;
    }
    if ((uint64_t)st.st_size > max) {
        if (why)
            util_errf(err, errlen, "%s: %lld bytes, over the limit of %zu bytes (%s)", rel,
                      (long long)st.st_size, max, why);
        else
            util_errf(err, errlen, "%s: %lld bytes, over the limit of %zu bytes", rel,
                      (long long)st.st_size, max);
        goto out;
    }
    fcntl(fd, F_SETFL, 0);
    if (util_read_fd(fd, max, out, sub, sizeof sub) < 0) {
        if (why)
            util_errf(err, errlen, "%s: %s (%s)", rel, sub, why);
        else
            util_errf(err, errlen, "%s: %s", rel, sub);
        goto out;
    }
    rc = UTIL_OPEN_OK;
out:
    close(fd);
    return rc;
}

enum util_open util_read_beneath(int dirfd, const char *rel, size_t max, struct buf *out, char *err,
                                 size_t errlen)
{
    return util_read_limited(dirfd, rel, max, "", out, err, errlen);
}
