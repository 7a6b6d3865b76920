/* t.h: the smallest C test harness. Each check prints a line on failure; the
 * runner ends with "N passed, N failed" and exits non-zero on any failure. */
#ifndef T_H
#define T_H
#include <stdio.h>
#include <string.h>

static int t_pass, t_fail;

#define T_OK(cond, name)                                                                           \
    do {                                                                                           \
        if (cond) {                                                                                \
            t_pass++;                                                                              \
        } else {                                                                                   \
            t_fail++;                                                                              \
            printf("FAIL %s:%d: %s\n", __FILE__, __LINE__, name);                                  \
        }                                                                                          \
    } while (0)

#define T_STR(got, want, name)                                                                     \
    do {                                                                                           \
        const char *g_ = (got), *w_ = (want);                                                      \
        if (g_ && w_ && strcmp(g_, w_) == 0) {                                                     \
            t_pass++;                                                                              \
        } else {                                                                                   \
            t_fail++;                                                                              \
            printf("FAIL %s:%d: %s: got \"%s\", want \"%s\"\n", __FILE__, __LINE__, name,          \
                   g_ ? g_ : "(null)", w_ ? w_ : "(null)");                                        \
        }                                                                                          \
    } while (0)

static inline int t_done(void)
{
    printf("%d passed, %d failed\n", t_pass, t_fail);
    return t_fail ? 1 : 0;
}
#endif
