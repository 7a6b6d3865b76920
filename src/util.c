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
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "serfhand.h"

void *xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p) {
        static const char msg[] = "serfhand: out of memory\n";
        (void)!write(2, msg, sizeof msg - 1);
        _exit(SH_EXIT_USAGE);
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
