/* libFuzzer harness: MANIFEST.json parser; an accepted manifest must
 * survive write + parse unchanged. */
#include <stdlib.h>
#include <string.h>

#include "serfhand.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct trust_manifest m, m2;
    char err[512];
    if (trust_manifest_parse(&m, (const char *)data, size, err, sizeof err) == 0) {
        struct buf out = {0};
        trust_manifest_write(&m, &out);
        if (trust_manifest_parse(&m2, out.data, out.len, err, sizeof err) != 0 ||
            m2.nfiles != m.nfiles || m2.version != m.version)
            abort();
        for (size_t i = 0; i < m.nfiles; i++)
            if (strcmp(m.files[i].path, m2.files[i].path) != 0 ||
                trust_manifest_find(&m2, m.files[i].path) == NULL)
                abort();
        trust_manifest_free(&m2);
        buf_free(&out);
        trust_manifest_free(&m);
    }
    return 0;
}
