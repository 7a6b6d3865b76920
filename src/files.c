/*
 * files.c: durable file operations for what serfhand writes into the state
 * directory and into bundles: make directories, write a file and fsync it
 * (in place below a directory, or atomically by rename), fsync directories,
 * remove a tree without following symlinks. Used by install.c and sign.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "serfhand.h"

int files_fsync_dir(int dfd)
{
    return fsync(dfd) < 0 && errno != EINVAL ? -1 : 0;
}

int files_mkdir_p(const char *path, char *err, size_t errlen)
{
    char *p = xstrdup(path);
    for (char *s = p + 1;; s++) {
        if (*s == '/' || *s == 0) {
            char c = *s;
            *s = 0;
            /* the state directory's parts: 0700 whoever makes them (DESIGN 4b) */
            if (mkdir(p, 0700) < 0 && errno != EEXIST) {
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
int files_rm_tree(int dfd, const char *name)
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
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
            files_rm_tree(dirfd(d), e->d_name);
    closedir(d);
    return unlinkat(dfd, name, AT_REMOVEDIR) < 0 && errno != ENOENT ? -1 : 0;
}

/* Write rel (with its parent directories) below rootfd and fsync it; the
 * directories made are added to dirs (one NUL-terminated path each). */
int files_write_at(int rootfd, const char *rel, const struct buf *b, struct buf *dirs, char *err,
                   size_t errlen)
{
    char *p = xstrdup(rel);
    int rc = -1;
    for (char *s = strchr(p, '/'); s; s = strchr(s + 1, '/')) {
        *s = 0;
        if (mkdirat(rootfd, p, 0700) == 0) /* below the state dir: private */
            buf_add(dirs, p, strlen(p) + 1);
        else if (errno != EEXIST) {
            util_errf(err, errlen, "%s: %s", p, strerror(errno));
            goto out;
        }
        *s = '/';
    }
    int fd = openat(rootfd, rel, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0) {
        util_errf(err, errlen, "%s: %s", rel, strerror(errno));
        goto out;
    }
    bool ok = util_write_all(fd, b->data ? b->data : "", b->len) == 0 && fsync(fd) == 0;
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
int files_fsync_dirs(int rootfd, const struct buf *dirs, char *err, size_t errlen)
{
    size_t off = dirs->len;
    while (off > 0) {
        size_t start = off - 1;
        while (start > 0 && dirs->data[start - 1] != 0)
            start--;
        const char *d = dirs->data + start;
        int fd = openat(rootfd, d, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0 || files_fsync_dir(fd) < 0) {
            util_errf(err, errlen, "fsync %s: %s", d, strerror(errno));
            if (fd >= 0)
                close(fd);
            return -1;
        }
        close(fd);
        off = start;
    }
    if (files_fsync_dir(rootfd) < 0) {
        util_errf(err, errlen, "fsync: %s", strerror(errno));
        return -1;
    }
    return 0;
}

int files_write_atomic(int dirfd, const char *name, const struct buf *b, char *err, size_t errlen)
{
    char tmp[256];
    snprintf(tmp, sizeof tmp, ".%s.tmp.%ld", name, (long)getpid());
    int fd = openat(dirfd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
    if (fd < 0) {
        util_errf(err, errlen, "%s: %s", tmp, strerror(errno));
        return -1;
    }
    bool ok = write(fd, b->data, b->len) == (ssize_t)b->len && fsync(fd) == 0;
    ok = close(fd) == 0 && ok;
    if (!ok || renameat(dirfd, tmp, dirfd, name) < 0) {
        util_errf(err, errlen, "%s: %s", name, strerror(errno));
        unlinkat(dirfd, tmp, 0);
        return -1;
    }
    fsync(dirfd);
    return 0;
}
