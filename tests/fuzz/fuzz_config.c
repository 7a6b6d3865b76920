/* libFuzzer harness: the config file (config.c), written by the node's
 * operator (or whoever can write /etc/serfhand): loaded as Lua data under the
 * loader's budget, then every setting read back. */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "serfhand.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static char path[64];
    if (!path[0])
        snprintf(path, sizeof path, "/tmp/serfhand-fuzz-config-%ld", (long)getpid());
    FILE *f = fopen(path, "w");
    if (!f)
        return 0;
    fwrite(data, 1, size, f);
    fclose(f);
    struct config c;
    char err[1024];
    if (config_load(&c, path, err, sizeof err) == 0) {
        for (const struct cfg_item *it = config_schema(); it->path; it++) {
            size_t n;
            if (it->type == CFG_STR && !config_str(&c, it->path))
                abort();
            if (it->type == CFG_INT) {
                long long v = config_int(&c, it->path);
                if (v < it->min || v > it->max)
                    abort();
            }
            if (it->type == CFG_STRLIST)
                config_list(&c, it->path, &n);
        }
    }
    config_free(&c);
    return 0;
}
