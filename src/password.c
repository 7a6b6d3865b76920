/*
 * password.c: the password of a secret key, from $SERFHAND_PASSWORD (scripts,
 * tests) or read from the terminal without echo, into sodium_malloc memory.
 * Used by keygen, sign and announce (as minisign keeps its prompt apart).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include <sodium.h>

#include "serfhand.h"

int password_read(const char *prompt, bool confirm, char **out, char *err, size_t errlen)
{
    const size_t max = 1024;
    char *pw = NULL, *again = NULL;
    const char *env = getenv("SERFHAND_PASSWORD");
    *out = NULL;
    if (sodium_init() < 0 || !(pw = sodium_malloc(max)) || !(again = sodium_malloc(max))) {
        util_errf(err, errlen, "password: out of memory");
        goto fail;
    }
    if (env) {
        if (strlen(env) >= max) {
            util_errf(err, errlen, "password: SERFHAND_PASSWORD too long");
            goto fail;
        }
        strcpy(pw, env);
        sodium_free(again);
        *out = pw;
        return 0;
    }
    int fd = open("/dev/tty", O_RDWR | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) {
        util_errf(err, errlen, "password: no terminal (set SERFHAND_PASSWORD for scripts)");
        goto fail;
    }
    for (int round = 0; round < (confirm ? 2 : 1); round++) {
        char *dst = round ? again : pw;
        struct termios old, quiet;
        bool tio = tcgetattr(fd, &old) == 0;
        if (tio) {
            quiet = old;
            quiet.c_lflag &= ~(tcflag_t)ECHO;
            tcsetattr(fd, TCSAFLUSH, &quiet);
        }
        const char *pr = round ? "Password (again): " : prompt;
        if (write(fd, pr, strlen(pr)) < 0) { /* best effort */
        }
        size_t n = 0;
        char c;
        ssize_t r;
        while ((r = read(fd, &c, 1)) == 1 && c != '\n' && c != '\r')
            if (n + 1 < max)
                dst[n++] = c;
        dst[n] = 0;
        if (tio)
            tcsetattr(fd, TCSAFLUSH, &old);
        if (write(fd, "\n", 1) < 0) {
        }
        if (r < 0) {
            close(fd);
            util_errf(err, errlen, "password: %s", strerror(errno));
            goto fail;
        }
    }
    close(fd);
    if (confirm && strcmp(pw, again) != 0) {
        util_errf(err, errlen, "password: the two passwords differ");
        goto fail;
    }
    sodium_free(again);
    *out = pw;
    return 0;
fail:
    sodium_free(pw);
    sodium_free(again);
    return -1;
}

void password_free(char *pw)
{
    sodium_free(pw);
}
