/* test_util.c: util.c's readers of files the configuration names;
 * util_read_secret, which reads key files and factomd.conf into
 * sodium_malloc memory for identity.c and minisign.c. */
#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "serfhand.h"
#include "t.h"

static char dir[] = "/tmp/serfhand-test-util.XXXXXX";

static void put(const char *name, const char *bytes, size_t n, mode_t mode)
{
    char p[256];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, mode);
    if (fd < 0 || write(fd, bytes, n) != (ssize_t)n) {
        perror(p);
        exit(2);
    }
    fchmod(fd, mode);
    close(fd);
}

/* read_secret NAME MAX: util_read_secret's result; *text is freed here,
 * err and the bytes read (copied, for the checks) are returned. */
static int read_secret(const char *name, size_t max, char *got, size_t gotlen, size_t *len,
                       struct stat *st, char *err, size_t errlen)
{
    char p[256], *text = (char *)1; /* must be reset, also on failure */
    snprintf(p, sizeof p, "%s/%s", dir, name);
    *len = 99;
    err[0] = 0;
    got[0] = 0;
    int rc = util_read_secret(p, max, &text, len, st, err, errlen);
    if (rc == 0) {
        T_OK(text[*len] == '\0', "the bytes are NUL-terminated");
        if (*len < gotlen)
            memcpy(got, text, *len + 1);
        sodium_free(text);
    } else {
        T_OK(text == NULL && *len == 0, "failure leaves *text NULL and *len 0");
    }
    return rc;
}

int main(void)
{
    char got[8192], err[512], p[300];
    size_t len;
    struct stat st;

    if (sodium_init() < 0 || !mkdtemp(dir))
        return 2;

    /* the whole file, exactly, and its stat */
    put("key", "untrusted comment: x\nRWQ\n", 25, 0600);
    T_OK(read_secret("key", 4096, got, sizeof got, &len, &st, err, sizeof err) == 0, err);
    T_OK(len == 25 && memcmp(got, "untrusted comment: x\nRWQ\n", 25) == 0, "the bytes read");
    T_OK((st.st_mode & 07777) == 0600 && st.st_size == 25, "st is filled");

    /* st may be NULL (minisign.c does not want it) */
    T_OK(read_secret("key", 4096, got, sizeof got, &len, NULL, err, sizeof err) == 0, err);

    /* binary bytes and an empty file */
    put("bin", "a\0b\0", 4, 0600);
    T_OK(read_secret("bin", 16, got, sizeof got, &len, NULL, err, sizeof err) == 0 && len == 4 &&
             memcmp(got, "a\0b\0", 4) == 0,
         "NUL bytes are kept");
    put("empty", "", 0, 0600);
    T_OK(read_secret("empty", 16, got, sizeof got, &len, NULL, err, sizeof err) == 0 && len == 0,
         "an empty file is 0 bytes");

    /* exactly max is read, one more byte is refused with the path named */
    memset(got, 'k', 4097);
    put("max", got, 4096, 0600);
    put("over", got, 4097, 0600);
    T_OK(read_secret("max", 4096, got, sizeof got, &len, NULL, err, sizeof err) == 0 && len == 4096,
         "a file of exactly max bytes");
    T_OK(read_secret("over", 4096, got, sizeof got, &len, NULL, err, sizeof err) < 0, "over max");
    T_OK(strstr(err, "/over: 4097 bytes, over the fixed limit of 4096") != NULL, err);

    /* what is not a regular file is refused without blocking or reading */
    snprintf(p, sizeof p, "%s/fifo", dir);
    T_OK(mkfifo(p, 0600) == 0, "mkfifo");
    T_OK(read_secret("fifo", 4096, got, sizeof got, &len, NULL, err, sizeof err) < 0 &&
             strstr(err, "FIFO") != NULL,
         err);
    snprintf(p, sizeof p, "%s/sub", dir);
    T_OK(mkdir(p, 0700) == 0, "mkdir");
    T_OK(read_secret("sub", 4096, got, sizeof got, &len, NULL, err, sizeof err) < 0 &&
             strstr(err, "directory") != NULL,
         err);
    T_OK(read_secret("missing", 4096, got, sizeof got, &len, NULL, err, sizeof err) < 0 &&
             strstr(err, "/missing: No such file") != NULL,
         err);
    snprintf(p, sizeof p, "%s/dangling", dir);
    T_OK(symlink("/nonexistent/serfhand-x", p) == 0, "symlink");
    T_OK(read_secret("dangling", 4096, got, sizeof got, &len, NULL, err, sizeof err) < 0 &&
             strstr(err, "dangling symlink") != NULL,
         err);

    /* the two callers go through it: their limits and errors */
    put("big.sec", got, 5000, 0600);
    char *text;
    snprintf(p, sizeof p, "%s/big.sec", dir);
    T_OK(minisign_seckey_read(p, &text, &len, err, sizeof err) < 0 &&
             strstr(err, "over the fixed limit of 4096") != NULL,
         err);
    snprintf(p, sizeof p, "%s/fifo", dir);
    struct identity_keys k;
    T_OK(identity_load_file(p, &k, err, sizeof err) < 0 && strstr(err, "FIFO") != NULL, err);

    const char *rm[] = {"key", "bin", "empty", "max", "over", "fifo", "sub", "dangling", "big.sec"};
    for (size_t i = 0; i < sizeof rm / sizeof rm[0]; i++) {
        snprintf(p, sizeof p, "%s/%s", dir, rm[i]);
        if (remove(p) < 0)
            perror(p);
    }
    rmdir(dir);
    return t_done();
}
