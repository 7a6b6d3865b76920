/* libFuzzer harness: factomd.conf (identity.c), the file the node's
 * operator or factomd's container writes: the gcfg reader and the identity
 * (IdentityChainID, LocalServerPrivKey, LocalServerPublicKey) read from it. */
#include <stdlib.h>
#include <string.h>

#include "serfhand.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static bool init;
    if (!init)
        init = sodium_init() >= 0;
    const char *t = (const char *)data;
    char out[300], err[300];
    int r = identity_conf_get(t, size, "app", "FactomdRpcUser", out, sizeof out, err, sizeof err);
    if (r == 1 && strlen(out) >= sizeof out)
        abort();
    struct identity_keys k;
    if (identity_parse(t, size, &k, err, sizeof err) == 0) {
        if (strncmp(k.chain_id, "888888", 6) != 0 || strlen(k.chain_id) != 64 || !k.sk)
            abort();
    } else if (k.sk)
        abort(); /* refused: nothing secret left behind */
    identity_keys_wipe(&k);
    return 0;
}
