/* libFuzzer harness: the serfhand-update pointer (update.c), the payload of
 * a user event any cluster member can send: the signed-pointer framing
 * (update_pointer_decode, against a key made at start) and the compact body
 * parser behind the signature (body_parse), whose result then meets
 * update.sources. */
#include <stdlib.h>

#include "../../src/update.c" /* body_parse is static */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct minisign_pubkey pk;
    static struct trust_keyset ks = {&pk, 1, 1};
    static bool init;
    if (!init) {
        struct minisign_seckey *sk;
        minisign_init();
        minisign_keygen(&pk, &sk);
        minisign_seckey_free(sk);
        init = true;
    }
    struct update_pointer p;
    char err[512], id[17];
    const char *s = (const char *)data;
    update_pointer_decode(&p, s, size, &ks, id, err, sizeof err);
    if (body_parse(&p, s, size, err, sizeof err) == 0) {
        if (p.version < 1 || !util_valid_name(p.name) || !hex64(p.hash, strlen(p.hash)) ||
            !url_ok(p.url, strlen(p.url)))
            abort();
        static char s1[] = "https://updates.example.org/factom", s2[] = "http://10.0.0.5/b/";
        char *src[] = {s1, s2};
        if (update_source_check(src, 2, true, p.url, err, sizeof err) == 0 &&
            (strstr(p.url, "/../") || strstr(p.url, "/./")))
            abort();
    }
    return 0;
}
