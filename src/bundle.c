/*
 * bundle.c: the active handler bundle. bundle_read is the single place
 * through which the sandbox reads a handler or a module: it returns the very
 * bytes it checked, and the caller loads exactly those.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "serfhand.h"

bool bundle_valid_rel(const char *rel)
{
    if (strncmp(rel, "handlers/", 9) != 0 && strncmp(rel, "lua/", 4) != 0)
        return false;
    for (const char *p = rel; *p; p++) {
        unsigned char c = (unsigned char)*p;
        if (c < 0x21 || c == '\\' || c == 0x7f)
            return false;
    }
    /* no empty, "." or ".." component */
    const char *s = rel;
    for (;;) {
        const char *e = strchr(s, '/');
        size_t n = e ? (size_t)(e - s) : strlen(s);
        if (n == 0 || (n == 1 && s[0] == '.') || (n == 2 && s[0] == '.' && s[1] == '.'))
            return false;
        if (!e)
            return true;
        s = e + 1;
    }
}

int bundle_open(struct bundle *b, const char *dir, size_t max_file, char *err,
                size_t errlen)
{
    struct stat st;
    memset(b, 0, sizeof *b);
    if (stat(dir, &st) < 0 || !S_ISDIR(st.st_mode)) {
        util_errf(err, errlen, "bundle %s: %s", dir,
                  errno ? strerror(errno) : "not a directory");
        return -1;
    }
    b->dir = xstrdup(dir);
    b->name = xstrdup("unsigned");
    b->version = xstrdup("dev");
    b->max_file = max_file;
    return 0;
}

void bundle_close(struct bundle *b)
{
    free(b->dir);
    free(b->name);
    free(b->version);
    memset(b, 0, sizeof *b);
}

int bundle_read(struct bundle *b, const char *rel, struct buf *out, char *err,
                size_t errlen)
{
    if (!bundle_valid_rel(rel)) {
        util_errf(err, errlen, "%s: not a bundle path", rel);
        return -1;
    }
    struct buf path = {0};
    buf_printf(&path, "%s/%s", b->dir, rel);
    struct stat st;
    int rc;
    if (stat(path.data, &st) < 0 && errno == ENOENT) {
        rc = 1;
    } else {
        rc = util_read_file(path.data, b->max_file, out, err, errlen);
    }
    buf_free(&path);
    return rc;
}
