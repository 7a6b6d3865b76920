/* libFuzzer harness: <state_dir>/bundle-version (bundle.c), the highest
 * version this node accepted, read back from disk on every run and install. */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "serfhand.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static char dir[64], path[96];
    if (!dir[0]) {
        snprintf(dir, sizeof dir, "/tmp/serfhand-fuzz-bv-XXXXXX");
        if (!mkdtemp(dir))
            abort();
        snprintf(path, sizeof path, "%s/bundle-version", dir);
    }
    FILE *f = fopen(path, "w");
    if (!f)
        return 0;
    fwrite(data, 1, size, f);
    fclose(f);
    long long v = -1;
    char err[256];
    if (bundle_highest_version(dir, &v, err, sizeof err) == 0 && v < 0)
        abort();
    return 0;
}
