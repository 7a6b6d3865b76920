/* libFuzzer harness: MANIFEST.json parser; an accepted manifest must
 * survive write + parse unchanged (every field, every file), and no integer
 * it holds may lie beyond MANIFEST_INT_MAX (issue 13.3: read exactly or refuse). */
#include <stdlib.h>
#include <string.h>

#include "serfhand.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct manifest m, m2;
    char err[512];
    if (manifest_parse(&m, (const char *)data, size, err, sizeof err) == 0) {
        struct buf out = {0};
        manifest_write(&m, &out);
        if (manifest_parse(&m2, out.data, out.len, err, sizeof err) != 0 || m2.nfiles != m.nfiles ||
            m2.version != m.version || m2.created != m.created || m2.expires != m.expires ||
            strcmp(m2.bundle, m.bundle) != 0)
            abort();
        if (m.version < 1 || m.version > MANIFEST_INT_MAX || m.created < 0 ||
            m.expires > MANIFEST_INT_MAX)
            abort();
        for (size_t i = 0; i < m.nfiles; i++)
            if (strcmp(m.files[i].path, m2.files[i].path) != 0 ||
                manifest_find(&m2, m.files[i].path) == NULL ||
                m.files[i].size != m2.files[i].size || m.files[i].size > MANIFEST_INT_MAX ||
                memcmp(m.files[i].hash, m2.files[i].hash, 32) != 0)
                abort();
        manifest_free(&m2);
        buf_free(&out);
        manifest_free(&m);
    }
    return 0;
}
