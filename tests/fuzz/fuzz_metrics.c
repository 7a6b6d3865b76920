/* libFuzzer harness: <state_dir>/metrics.journal and metrics.state
 * (metrics.c), read back by `serfhand metrics`, every tick and any run that
 * compacts; then their Prometheus rendering, which must stay one sample or
 * comment per line in printable ASCII whatever the files held. The first
 * byte picks the file the rest goes to. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "serfhand.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static char dir[64], journal[96], state[96];
    if (!dir[0]) {
        snprintf(dir, sizeof dir, "/tmp/serfhand-fuzz-mt-XXXXXX");
        if (!mkdtemp(dir))
            abort();
        snprintf(journal, sizeof journal, "%s/metrics.journal", dir);
        snprintf(state, sizeof state, "%s/metrics.state", dir);
    }
    if (size == 0)
        return 0;
    unlink(journal);
    unlink(state);
    FILE *f = fopen(data[0] & 1 ? state : journal, "w");
    if (!f)
        return 0;
    fwrite(data + 1, 1, size - 1, f);
    fclose(f);
    struct metrics m;
    memset(&m, 0, sizeof m);
    char err[256];
    if (metrics_read(dir, &m, err, sizeof err) < 0)
        return 0;
    struct buf out = {0};
    metrics_render(&m, &out);
    for (size_t i = 0; i < out.len; i++) {
        unsigned char c = (unsigned char)out.data[i];
        if (c != '\n' && (c < 0x20 || c > 0x7e))
            abort(); /* a byte from the files reached the exposition */
    }
    if (out.len && out.data[out.len - 1] != '\n')
        abort();
    buf_free(&out);
    return 0;
}
