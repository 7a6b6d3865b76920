/* libFuzzer harness: minisign signature parser, then verification of the
 * parsed signature against a fixed key (the known-answer vector's). */
#include <string.h>

#include "serfhand.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char pub[] = "RWQaQkooasoSkfEGvHICib7/UsrAsQTNt8eN6Fk075YwuL9vSmImZvz4";
    struct minisign_pubkey pk;
    struct minisign_sig s;
    char err[256];
    minisign_pubkey_parse(&pk, pub, strlen(pub), err, sizeof err);
    if (minisign_sig_parse(&s, (const char *)data, size, err, sizeof err) == 0) {
        minisign_sig_verify(&s, &pk, "print(\"hello\")\n", 15, false, err, sizeof err);
        minisign_sig_free(&s);
    }
    return 0;
}
