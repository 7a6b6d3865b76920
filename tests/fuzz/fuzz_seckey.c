/* libFuzzer harness: minisign secret key parser. Encrypted keys are only
 * classified (scrypt with fuzzed limits would be slow, not a parser bug);
 * unencrypted ones are parsed fully (checksum, seed check). */
#include "serfhand.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct minisign_seckey *sk = NULL;
    char err[256];
    if (minisign_seckey_encrypted((const char *)data, size) == 0 &&
        minisign_seckey_parse(&sk, (const char *)data, size, NULL, err, sizeof err) == 0)
        minisign_seckey_free(sk);
    return 0;
}
