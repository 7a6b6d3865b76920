/* libFuzzer harness: minisign public key parser (minisign_pubkey_parse). */
#include "serfhand.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct minisign_pubkey pk;
    char err[256];
    minisign_pubkey_parse(&pk, (const char *)data, size, err, sizeof err);
    return 0;
}
