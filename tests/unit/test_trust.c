/* test_trust.c: minisign formats, the manifest parser and the threshold
 * rules of trust.c, without the binary. */
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "serfhand.h"
#include "t.h"

/* Known-answer vector (minisign 0.11, docs/reference lua-and-libs.md). */
static const char kat_pub[] = "untrusted comment: minisign public key 9112CA6A284A421A\n"
                              "RWQaQkooasoSkfEGvHICib7/UsrAsQTNt8eN6Fk075YwuL9vSmImZvz4\n";
static const char kat_sig[] =
    "untrusted comment: signature from minisign secret key\n"
    "RUQaQkooasoSkeDzEg87lB29Iqj/"
    "fe78IxZjBYWpBvw0kf+ocawUwajCu2pSWuKNpWJLG+SV+t+wwrNAknDqi9zsFKuc3x0v/wk=\n"
    "trusted comment: handler=member-join version=7\n"
    "aQGkNYkxhxm+rL1qxENRG8QQkte2Lj6dPw714qi7ndSio04U5zCcMQJ8aAGSb1cdL2yIUw7HVECv5Ex0DuupDQ==\n";
static const char kat_msg[] = "print(\"hello\")\n";

static int sig_ok(const char *sig, const struct minisign_pubkey *pk, const char *msg, char *err)
{
    struct minisign_sig s;
    if (minisign_sig_parse(&s, sig, strlen(sig), err, 300) < 0)
        return -1;
    int rc = minisign_sig_verify(&s, pk, msg, strlen(msg), false, err, 300);
    minisign_sig_free(&s);
    return rc;
}

static void test_kat(void)
{
    struct minisign_pubkey pk;
    char err[300], id[17], b64[57];
    /* no sodium_init before verifying: the run-time path does not call it */
    T_OK(minisign_pubkey_parse(&pk, kat_pub, strlen(kat_pub), err, sizeof err) == 0, "kat pubkey");
    minisign_keyid_hex(pk.keyid, id);
    T_STR(id, "9112CA6A284A421A", "key id display");
    minisign_pubkey_base64(&pk, b64);
    T_STR(b64, "RWQaQkooasoSkfEGvHICib7/UsrAsQTNt8eN6Fk075YwuL9vSmImZvz4", "pubkey base64");
    T_OK(sig_ok(kat_sig, &pk, kat_msg, err) == 0, "kat signature verifies");
    T_OK(sig_ok(kat_sig, &pk, "print(\"hellO\")\n", err) < 0, "kat tampered message");
    uint8_t h[64];
    char hex[129];
    crypto_generichash(h, 64, (const uint8_t *)kat_msg, strlen(kat_msg), NULL, 0);
    util_hex(h, 64, hex);
    T_STR(hex,
          "96f9b6feacfce7011bb2a7d62f2ed86ef926f2ec002f0cb2752193c51096681c435a9fc5bc39292b8e57ad80"
          "0ce37ee0d49b25288e8df1594549f1d7f8c7ad4e",
          "BLAKE2b-512 of the vector");
    /* a bare key string */
    T_OK(minisign_pubkey_parse(&pk, b64, strlen(b64), err, sizeof err) == 0, "bare key string");

    /* edits: trusted comment, untrusted comment, signature line */
    char buf[600];
    strcpy(buf, kat_sig);
    *strstr(buf, "version=7") = 'V';
    T_OK(sig_ok(buf, &pk, kat_msg, err) < 0 && strstr(err, "trusted comment"),
         "trusted comment edit");
    strcpy(buf, kat_sig);
    memcpy(strstr(buf, "from minisign"), "FROM", 4);
    T_OK(sig_ok(buf, &pk, kat_msg, err) == 0, "untrusted comment is not authenticated");
    strcpy(buf, kat_sig);
    buf[strlen("untrusted comment: signature from minisign secret key\n") + 30] ^= 1;
    T_OK(sig_ok(buf, &pk, kat_msg, err) < 0, "signature line edit");
}

static void test_strict(void)
{
    struct minisign_pubkey pk;
    struct minisign_sig s;
    char err[300], buf[800];
    const char *pubs[] = {
        "untrusted comment: x\r\nRWQaQkooasoSkfEGvHICib7/UsrAsQTNt8eN6Fk075YwuL9vSmImZvz4\n",
        "untrusted comment: x\nRWQaQkooasoSkfEGvHICib7/UsrAsQTNt8eN6Fk075YwuL9vSmImZvz4\n\n",
        "untrusted comment: x\nRWQaQkooasoSkfEGvHICib7/UsrAsQTNt8eN6Fk075YwuL9vSmImZvz\n",
        "untrusted comment: x\nRWQaQkooasoSkfEGvHICib7/UsrAsQTNt8eN6Fk075YwuL9vSmImZvz4=\n",
        "untrusted comment: x\nRWQaQkooasoSkfEGvHICib7/UsrAsQTNt8eN6Fk075YwuL9vSmImZv!4\n",
        "comment: x\nRWQaQkooasoSkfEGvHICib7/UsrAsQTNt8eN6Fk075YwuL9vSmImZvz4\n",
        "untrusted comment: x\n",
        "untrusted comment: x\x01\nRWQaQkooasoSkfEGvHICib7/UsrAsQTNt8eN6Fk075YwuL9vSmImZvz4\n",
        "untrusted comment: x\nRUQaQkooasoSkfEGvHICib7/UsrAsQTNt8eN6Fk075YwuL9vSmImZvz4\n",
    };
    for (size_t i = 0; i < sizeof pubs / sizeof *pubs; i++)
        T_OK(minisign_pubkey_parse(&pk, pubs[i], strlen(pubs[i]), err, sizeof err) < 0, pubs[i]);
    /* without the last LF is fine, as minisign reads it */
    const char *nolf =
        "untrusted comment: x\nRWQaQkooasoSkfEGvHICib7/UsrAsQTNt8eN6Fk075YwuL9vSmImZvz4";
    T_OK(minisign_pubkey_parse(&pk, nolf, strlen(nolf), err, sizeof err) == 0, "no final LF");
    /* NUL inside */
    memcpy(buf, kat_pub, sizeof kat_pub);
    buf[5] = 0;
    T_OK(minisign_pubkey_parse(&pk, buf, strlen(kat_pub), err, sizeof err) < 0, "NUL in key file");

    /* signatures: truncated, extra line, CR, unprintable trusted comment, oversized */
    size_t n = strlen(kat_sig);
    T_OK(minisign_sig_parse(&s, kat_sig, n - 30, err, sizeof err) < 0, "truncated signature");
    T_OK(minisign_sig_parse(&s, kat_sig, n - 90, err, sizeof err) < 0, "3-line signature");
    snprintf(buf, sizeof buf, "%sextra\n", kat_sig);
    T_OK(minisign_sig_parse(&s, buf, strlen(buf), err, sizeof err) < 0 &&
             strstr(err, "more than 4"),
         "5-line signature");
    strcpy(buf, kat_sig);
    *strstr(buf, "=7") = '\r';
    T_OK(minisign_sig_parse(&s, buf, strlen(buf), err, sizeof err) < 0, "CR in trusted comment");
    strcpy(buf, kat_sig);
    *strstr(buf, "=7") = (char)0xe9;
    T_OK(minisign_sig_parse(&s, buf, strlen(buf), err, sizeof err) < 0 &&
             strstr(err, "unprintable"),
         "non-printable trusted comment");
    struct buf big = {0};
    buf_addstr(&big, "untrusted comment: x\n");
    buf_addstr(&big, "RUQaQkooasoSkeDzEg87lB29Iqj/"
                     "fe78IxZjBYWpBvw0kf+ocawUwajCu2pSWuKNpWJLG+SV+t+wwrNAknDqi9zsFKuc3x0v/"
                     "wk=\ntrusted comment: ");
    for (int i = 0; i < 9000; i++)
        buf_add(&big, "a", 1);
    buf_addstr(&big,
               "\naQGkNYkxhxm+"
               "rL1qxENRG8QQkte2Lj6dPw714qi7ndSio04U5zCcMQJ8aAGSb1cdL2yIUw7HVECv5Ex0DuupDQ==\n");
    T_OK(minisign_sig_parse(&s, big.data, big.len, err, sizeof err) < 0 && strstr(err, "longer"),
         "oversized trusted comment");
    buf_free(&big);
}

static void test_keys_and_sign(void)
{
    struct minisign_pubkey pk, pk2;
    struct minisign_seckey *sk = NULL, *sk2 = NULL;
    struct buf text = {0}, sig = {0};
    char err[300];
    T_OK(minisign_keygen(&pk, &sk) == 0, "keygen");
    /* unencrypted round trip */
    T_OK(minisign_seckey_write(sk, NULL, 0, 0, &text, err, sizeof err) == 0, "write -W key");
    T_OK(strncmp(strchr(text.data, '\n') + 1, "RWQAAEIy", 8) == 0, "-W prefix RWQAAEIy");
    T_OK(minisign_seckey_encrypted(text.data, text.len) == 0, "-W not encrypted");
    T_OK(minisign_seckey_parse(&sk2, text.data, text.len, NULL, err, sizeof err) == 0,
         "parse -W key");
    minisign_seckey_pubkey(sk2, &pk2);
    T_OK(memcmp(&pk, &pk2, sizeof pk) == 0, "same public key");
    minisign_seckey_free(sk2);
    sk2 = NULL;
    buf_free(&text);
    /* encrypted, interactive limits to stay quick */
    T_OK(minisign_seckey_write(sk, "pw", crypto_pwhash_scryptsalsa208sha256_OPSLIMIT_INTERACTIVE,
                               crypto_pwhash_scryptsalsa208sha256_MEMLIMIT_INTERACTIVE, &text, err,
                               sizeof err) == 0,
         "write encrypted key");
    T_OK(strncmp(strchr(text.data, '\n') + 1, "RWRTY0Iy", 8) == 0, "encrypted prefix RWRTY0Iy");
    T_OK(minisign_seckey_encrypted(text.data, text.len) == 1, "is encrypted");
    T_OK(minisign_seckey_parse(&sk2, text.data, text.len, NULL, err, sizeof err) < 0,
         "needs password");
    T_OK(minisign_seckey_parse(&sk2, text.data, text.len, "wrong", err, sizeof err) < 0 &&
             strstr(err, "wrong password"),
         "wrong password");
    T_OK(minisign_seckey_parse(&sk2, text.data, text.len, "pw", err, sizeof err) == 0,
         "right password");
    minisign_seckey_free(sk2);
    buf_free(&text);

    /* sign and verify; legacy refused */
    const char *msg = "{\"x\":1}\n";
    T_OK(minisign_sign(sk, msg, strlen(msg), "t=1", "u", &sig, err, sizeof err) == 0, "sign");
    T_OK(sig_ok(sig.data, &pk, msg, err) == 0, "own signature verifies");
    T_OK(sig_ok(sig.data, &pk, "{\"x\":2}\n", err) < 0, "other message");
    T_OK(minisign_sign(sk, msg, strlen(msg), "bad\x01", "u", &sig, err, sizeof err) < 0,
         "unprintable trusted comment refused when signing");
    buf_free(&sig);
    /* a legacy "Ed" signature made by hand */
    uint8_t raw[74] = {'E', 'd'}, g[64], gm[64 + 3];
    memcpy(raw + 2, sk->keyid, 8);
    crypto_sign_detached(raw + 10, NULL, (const uint8_t *)msg, strlen(msg), sk->sk);
    memcpy(gm, raw + 10, 64);
    memcpy(gm + 64, "t=1", 3);
    crypto_sign_detached(g, NULL, gm, sizeof gm, sk->sk);
    char b1[101], b2[89];
    sodium_bin2base64(b1, sizeof b1, raw, 74, sodium_base64_VARIANT_ORIGINAL);
    sodium_bin2base64(b2, sizeof b2, g, 64, sodium_base64_VARIANT_ORIGINAL);
    buf_printf(&sig, "untrusted comment: legacy\n%s\ntrusted comment: t=1\n%s\n", b1, b2);
    struct minisign_sig s;
    T_OK(minisign_sig_parse(&s, sig.data, sig.len, err, sizeof err) == 0 && s.legacy,
         "legacy parses");
    T_OK(minisign_sig_verify(&s, &pk, msg, strlen(msg), true, err, sizeof err) == 0,
         "legacy is valid");
    T_OK(minisign_sig_verify(&s, &pk, msg, strlen(msg), false, err, sizeof err) < 0 &&
             strstr(err, "legacy"),
         "legacy refused for bundles");
    minisign_sig_free(&s);
    buf_free(&sig);
    minisign_seckey_free(sk);
}

static int parse(const char *json, char *err)
{
    struct manifest m;
    int rc = manifest_parse(&m, json, strlen(json), err, 300);
    if (rc == 0)
        manifest_free(&m);
    return rc;
}

#define H64 "0000000000000000000000000000000000000000000000000000000000000000"
#define HEAD "{\"format\":1,\"bundle\":\"b\",\"version\":3,\"created\":1,\"expires\":9,"

static void test_manifest(void)
{
    char err[300];
    struct manifest m;
    const char *good = HEAD "\"files\":{\"lua/z.lua\":{\"size\":1,\"blake2b\":\"" H64 "\"},"
                            "\"handlers/a.lua\":{\"blake2b\":\"" H64 "\",\"size\":0}}}";
    T_OK(manifest_parse(&m, good, strlen(good), err, sizeof err) == 0, "good manifest");
    T_OK(m.nfiles == 2 && strcmp(m.files[0].path, "handlers/a.lua") == 0, "files sorted");
    T_OK(manifest_find(&m, "lua/z.lua") != NULL, "find");
    T_OK(manifest_find(&m, "lua/y.lua") == NULL, "find absent");
    struct buf out = {0};
    manifest_write(&m, &out);
    struct manifest m2;
    T_OK(manifest_parse(&m2, out.data, out.len, err, sizeof err) == 0, "write/parse round trip");
    T_OK(m2.version == 3 && m2.nfiles == 2, "round trip fields");
    manifest_free(&m2);
    manifest_free(&m);
    buf_free(&out);

    struct {
        const char *json, *want;
    } bad[] = {
        {HEAD "\"files\":{},\"version\":4}", "duplicate key \"version\""},
        {HEAD "\"files\":{\"lua/a.lua\":{\"size\":1,\"size\":1,\"blake2b\":\"" H64 "\"}}}",
         "duplicate"},
        {HEAD "\"files\":{\"lua/a.lua\":{\"size\":1,\"blake2b\":\"" H64
              "\"},\"lua/a.lua\":{\"size\":1,\"blake2b\":\"" H64 "\"}}}",
         "duplicate"},
        {HEAD "\"files\":{\"lua/../x.lua\":{\"size\":1,\"blake2b\":\"" H64 "\"}}}", "invalid path"},
        {HEAD "\"files\":{\"/etc/passwd\":{\"size\":1,\"blake2b\":\"" H64 "\"}}}", "invalid path"},
        {HEAD "\"files\":{\"lua//x.lua\":{\"size\":1,\"blake2b\":\"" H64 "\"}}}", "invalid path"},
        {HEAD "\"files\":{\"other/x.lua\":{\"size\":1,\"blake2b\":\"" H64 "\"}}}", "invalid path"},
        {HEAD "\"files\":{\"lua/x.lua\":{\"size\":1.5,\"blake2b\":\"" H64 "\"}}}", "integers"},
        {HEAD "\"files\":{\"lua/x.lua\":{\"size\":-1,\"blake2b\":\"" H64 "\"}}}", "non-negative"},
        {HEAD "\"files\":{\"lua/x.lua\":{\"size\":1,\"blake2b\":\"ABC\"}}}", "64 lowercase"},
        {HEAD "\"files\":{\"lua/x.lua\":{\"size\":1,\"blake2b\":\"" H64 "\",\"mode\":1}}}",
         "unknown key"},
        {HEAD "\"files\":{},\"extra\":1}", "unknown key"},
        {HEAD "\"files\":{}} x", "trailing"},
        {HEAD "\"files\":{}", "expected"},
        {"{\"format\":1,\"bundle\":\"b\",\"version\":0,\"created\":1,\"expires\":9,\"files\":{}}",
         "at least 1"},
        {"{\"format\":1,\"bundle\":\"b\",\"version\":99999999999999999999,\"created\":1,"
         "\"expires\":9,\"files\":{}}",
         "out of range"},
        {"{\"format\":1,\"bundle\":\"b\",\"version\":1,\"created\":9,\"expires\":9,\"files\":{}}",
         "not after"},
        {"{\"format\":2,\"bundle\":\"b\",\"version\":1,\"created\":1,\"expires\":9,\"files\":{}}",
         "format 2"},
        {"{\"format\":1,\"bundle\":\"../"
         "b\",\"version\":1,\"created\":1,\"expires\":9,\"files\":{}}",
         "bundle"},
        {"{\"format\":1,\"bundle\":\"b\xc3\xa9\",\"version\":1,\"created\":1,\"expires\":9,"
         "\"files\":{}}",
         "non-ASCII"},
        {"{\"format\":1,\"bundle\":\"b\\u0000\",\"version\":1,\"created\":1,\"expires\":9,"
         "\"files\":{}}",
         "escape"},
        {"{\"format\":1,\"version\":1,\"created\":1,\"expires\":9,\"files\":{}}", "bundle"},
        {"[1]", "not a JSON object"},
        {"{\"a\":{\"a\":{\"a\":{\"a\":{\"a\":{\"a\":{\"a\":{\"a\":{\"a\":{}}}}}}}}}}", "deeply"},
        {"{\"format\":01}", "leading zero"},
        /* issue 13.3: numbers are read exactly or refused, never wrapped */
        {"{\"format\":1,\"bundle\":\"b\",\"version\":18446744073709551621,\"created\":1,"
         "\"expires\":9,\"files\":{}}",
         "out of range"},
        {HEAD "\"files\":{\"lua/x.lua\":{\"size\":18446744073709551617,\"blake2b\":\"" H64 "\"}}}",
         "out of range"},
        {"{\"format\":1,\"bundle\":\"b\",\"version\":9223372036854775808,\"created\":1,"
         "\"expires\":9,\"files\":{}}",
         "out of range"},
        {"{\"format\":1,\"bundle\":\"b\",\"version\":9007199254740992,\"created\":1,"
         "\"expires\":9,\"files\":{}}",
         "out of range"},
        {"{\"format\":1,\"bundle\":\"b\",\"version\":1,\"created\":-0,\"expires\":9,"
         "\"files\":{}}",
         "-0"},
        {"{\"format\":1,\"bundle\":\"b\",\"version\":1,\"created\":-9223372036854775809,"
         "\"expires\":9,\"files\":{}}",
         "out of range"},
        {"{\"format\":1,\"bundle\":\"b\",\"version\":+1,\"created\":1,\"expires\":9,"
         "\"files\":{}}",
         "expected an object"},
        {"{\"format\":1,\"bundle\":\"b\",\"version\":1e0,\"created\":1,\"expires\":9,"
         "\"files\":{}}",
         "integers"},
        {"{\"format\":1,\"bundle\":\"b\",\"version\":1.0,\"created\":1,\"expires\":9,"
         "\"files\":{}}",
         "integers"},
        {"{\"format\":1,\"bundle\":\"b\\ud800\",\"version\":1,\"created\":1,\"expires\":9,"
         "\"files\":{}}",
         "escape"},
        {"{\"format\":1,\"bundle\":\"b\",\"bundl\\u0065\":\"c\",\"version\":1,\"created\":1,"
         "\"expires\":9,\"files\":{}}",
         "duplicate key \"bundle\""},
        {"{\"format\":true}", "expected an object"},
    };
    /* the largest integer every JSON reader reads exactly is accepted */
    const char *edge = "{\"format\":1,\"bundle\":\"b\",\"version\":9007199254740991,\"created\":0,"
                       "\"expires\":9007199254740991,\"files\":{\"lua/a.lua\":{\"size\":"
                       "9007199254740991,\"blake2b\":\"" H64 "\"}}}";
    T_OK(manifest_parse(&m, edge, strlen(edge), err, sizeof err) == 0 &&
             m.version == MANIFEST_INT_MAX && m.expires == MANIFEST_INT_MAX &&
             m.files[0].size == (uint64_t)MANIFEST_INT_MAX,
         "2^53-1 read exactly");
    manifest_free(&m);
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        int rc = parse(bad[i].json, err);
        T_OK(rc < 0 && strstr(err, bad[i].want), bad[i].json);
        if (rc == 0 || !strstr(err, bad[i].want))
            printf("  got: %s\n", rc == 0 ? "accepted" : err);
    }
}

static void test_paths(void)
{
    T_OK(manifest_valid_rel("handlers/user/deploy.lua"), "handler path");
    T_OK(manifest_valid_rel("lua/factom/vote.lua"), "module path");
    const char *bad[] = {"handlers/../x.lua",
                         "/handlers/x.lua",
                         "handlers/./x.lua",
                         "handlers/",
                         "lua",
                         "lua/a b.lua",
                         "lua/a\\b.lua",
                         "bin/x",
                         "handlers//x.lua",
                         ""};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        T_OK(!manifest_valid_rel(bad[i]), bad[i]);
}

/* One key, two key ids (the id is not signed): counted once. */
static void test_distinct(void)
{
    char tmpl[] = "/tmp/serfhand-trust.XXXXXX";
    char *dir = mkdtemp(tmpl), err[600], id[17], name[80];
    struct minisign_pubkey pk;
    struct minisign_seckey *sk;
    const char *man = "manifest bytes";
    T_OK(dir != NULL, "temp dir");
    minisign_keygen(&pk, &sk);
    struct trust_keyset ks = {0};
    ks.keys = xmalloc(2 * sizeof *ks.keys);
    ks.n = 2;
    ks.threshold = 2;
    int dfd = open(dir, O_RDONLY | O_DIRECTORY);
    for (int k = 0; k < 2; k++) {
        struct buf sig = {0};
        if (k == 1)
            sk->keyid[0] ^= 0xff; /* same Ed25519 key, another id */
        minisign_seckey_pubkey(sk, &ks.keys[k]);
        minisign_sign(sk, man, strlen(man), "t", "u", &sig, err, sizeof err);
        minisign_keyid_hex(sk->keyid, id);
        snprintf(name, sizeof name, "MANIFEST.json.%s.minisig", id);
        int fd = openat(dfd, name, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        T_OK(write(fd, sig.data, sig.len) == (ssize_t)sig.len, "write sig");
        close(fd);
        buf_free(&sig);
    }
    int distinct = -1;
    T_OK(trust_verify_sigs(dfd, man, strlen(man), &ks, false, NULL, NULL, &distinct, err,
                           sizeof err) < 0 &&
             distinct == 1,
         "two ids, one key: counted once");
    struct util_lines lines = {0}, probs = {0};
    T_OK(trust_verify_sigs(dfd, man, strlen(man), &ks, true, &lines, &probs, &distinct, err,
                           sizeof err) < 0 &&
             distinct == 1,
         "scan: counted once");
    T_OK(lines.n == 2 && (strstr(lines.v[0], "counted once") || strstr(lines.v[1], "counted once")),
         "report says counted once");
    ks.threshold = 1;
    T_OK(trust_verify_sigs(dfd, man, strlen(man), &ks, false, NULL, NULL, &distinct, err,
                           sizeof err) == 0,
         "threshold 1 met");
    T_OK(trust_verify_sigs(dfd, "other", 5, &ks, false, NULL, NULL, &distinct, err, sizeof err) < 0,
         "wrong manifest bytes");
    ks.n = 0;
    T_OK(trust_verify_sigs(dfd, man, strlen(man), &ks, false, NULL, NULL, &distinct, err,
                           sizeof err) < 0 &&
             strstr(err, "no trusted keys"),
         "no keys: fail closed");
    util_lines_free(&lines);
    util_lines_free(&probs);
    free(ks.keys);
    minisign_seckey_free(sk);
    close(dfd);
    char cmd[200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    T_OK(system(cmd) == 0, "cleanup");
}

static void put_file(int dfd, const char *name, const struct buf *b)
{
    int fd = openat(dfd, name, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    T_OK(fd >= 0 && write(fd, b->data, b->len) == (ssize_t)b->len, name);
    close(fd);
}

/* runs (no scan) and verify (scan) count: -1 if they differ */
static int count_both(int dfd, const char *man, const struct trust_keyset *ks)
{
    int run = -1, scan = -2;
    char err[600];
    struct util_lines lines = {0}, probs = {0};
    trust_verify_sigs(dfd, man, strlen(man), ks, false, NULL, NULL, &run, err, sizeof err);
    trust_verify_sigs(dfd, man, strlen(man), ks, true, &lines, &probs, &scan, err, sizeof err);
    util_lines_free(&lines);
    util_lines_free(&probs);
    return run == scan ? run : -1;
}

/* Issue 13.6: two trusted keys sharing one key id, and the names a run reads:
 * every command counts the same signatures. */
static void test_shared_keyid(void)
{
    char tmpl[] = "/tmp/serfhand-trust.XXXXXX";
    char *dir = mkdtemp(tmpl), err[600], name[TRUST_SIGNAME_MAX], stale[TRUST_SIGNAME_MAX];
    const char *man = "manifest bytes";
    /* 0x00798873479A7892: two leading zeros, so 15- and 14-digit forms exist */
    const uint8_t id[8] = {0x92, 0x78, 0x9A, 0x47, 0x73, 0x88, 0x79, 0x00};
    struct minisign_seckey *sk[2];
    struct buf sig[2] = {{0}};
    struct trust_keyset ks = {0};
    ks.keys = xmalloc(2 * sizeof *ks.keys);
    ks.n = 2;
    ks.threshold = 2;
    int dfd = open(dir, O_RDONLY | O_DIRECTORY);
    for (int k = 0; k < 2; k++) {
        minisign_keygen(&ks.keys[k], &sk[k]);
        memcpy(sk[k]->keyid, id, 8);
        minisign_seckey_pubkey(sk[k], &ks.keys[k]);
        minisign_sign(sk[k], man, strlen(man), "t", "u", &sig[k], err, sizeof err);
    }
    /* sign's rule: the first key takes the key-id name, the second its key name */
    trust_sig_name_for(dfd, &ks.keys[0], man, strlen(man), name, stale);
    T_STR(name, "MANIFEST.json.00798873479A7892.minisig", "first key: key-id name");
    put_file(dfd, name, &sig[0]);
    trust_sig_name_for(dfd, &ks.keys[0], man, strlen(man), name, stale);
    T_STR(name, "MANIFEST.json.00798873479A7892.minisig", "re-sign: its own file");
    trust_sig_name_for(dfd, &ks.keys[1], man, strlen(man), name, stale);
    char want[TRUST_SIGNAME_MAX];
    trust_sig_keyname(&ks.keys[1], want);
    T_STR(name, want, "second key with the id: key name");
    T_OK(strlen(want) == strlen("MANIFEST.json.00798873479A7892-0123456789ABCDEF.minisig"),
         "key name: id and 16 hex digits of the public key");
    put_file(dfd, name, &sig[1]);
    T_OK(count_both(dfd, man, &ks) == 2, "key-id name + key name: 2 everywhere");
    unlinkat(dfd, name, 0);
    /* the case: the second under minisign's short name */
    put_file(dfd, "MANIFEST.json.798873479A7892.minisig", &sig[1]);
    T_OK(count_both(dfd, man, &ks) == 2, "16-digit + short name: 2 everywhere (was 1 vs 2)");
    /* a bad 16-digit file does not hide the good short one */
    struct buf junk = {0};
    buf_addstr(&junk, "junk\n");
    put_file(dfd, "MANIFEST.json.00798873479A7892.minisig", &junk);
    T_OK(count_both(dfd, man, &ks) == 1, "bad 16-digit + good short: 1 everywhere (was 0 vs 1)");
    /* a 15-digit form no run reads: counted nowhere (verify counted it) */
    unlinkat(dfd, "MANIFEST.json.798873479A7892.minisig", 0);
    put_file(dfd, "MANIFEST.json.0798873479A7892.minisig", &sig[1]);
    T_OK(count_both(dfd, man, &ks) == 0, "15-digit form: 0 everywhere (was 0 vs 1)");
    struct util_lines lines = {0}, probs = {0};
    int n;
    trust_verify_sigs(dfd, man, strlen(man), &ks, true, &lines, &probs, &n, err, sizeof err);
    bool said = false;
    for (size_t i = 0; i < probs.n; i++)
        said = said || strstr(probs.v[i], "0798873479A7892.minisig: signed by trusted key");
    T_OK(said, "verify names the file no run reads as a problem");
    util_lines_free(&lines);
    util_lines_free(&probs);
    /* install's staging name for the short form */
    char full[TRUST_SIGNAME_MAX];
    T_OK(trust_sig_fullname("MANIFEST.json.798873479A7892.minisig", full), "short form");
    T_STR(full, "MANIFEST.json.00798873479A7892.minisig", "short form padded to 16 digits");
    T_OK(!trust_sig_fullname("MANIFEST.json.00798873479A7892.minisig", full), "16 digits as is");
    T_OK(!trust_sig_fullname(want, full), "a key name as is");
    struct util_lines files = {0};
    trust_sig_files(&ks, &files);
    T_OK(files.n == 4, "files read: 16-digit, short, two key names");
    util_lines_free(&files);
    buf_free(&junk);
    for (int k = 0; k < 2; k++) {
        buf_free(&sig[k]);
        minisign_seckey_free(sk[k]);
    }
    free(ks.keys);
    close(dfd);
    char cmd[200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    T_OK(system(cmd) == 0, "cleanup");
}

/* Key ids in file names: 16 digits from serfhand, fewer from minisign. */
static void test_keyid_names(void)
{
    /* keyid bytes are little-endian: this is 0x07988734479A7892 */
    const uint8_t z[8] = {0x92, 0x78, 0x9A, 0x47, 0x34, 0x87, 0x98, 0x07};
    const uint8_t full[8] = {0x1A, 0x42, 0x4A, 0x28, 0x6A, 0xCA, 0x12, 0x91};
    const uint8_t zero[8] = {0};
    char n[2][TRUST_SIGNAME_MAX], id[17];
    minisign_keyid_hex(z, id);
    T_STR(id, "07988734479A7892", "keyid_hex pads to 16 digits");
    T_OK(trust_sig_names(z, n) == 2, "leading zero: two names");
    T_STR(n[0], "MANIFEST.json.07988734479A7892.minisig", "serfhand's name");
    T_STR(n[1], "MANIFEST.json.7988734479A7892.minisig", "minisign's short name");
    T_OK(trust_sig_names(full, n) == 1, "no leading zero: one name");
    T_STR(n[0], "MANIFEST.json.9112CA6A284A421A.minisig", "16-digit id as is");
    T_OK(trust_sig_names(zero, n) == 2, "all-zero id: two names");
    T_STR(n[1], "MANIFEST.json.0.minisig", "all-zero id keeps one digit");
    T_OK(minisign_keyid_is(z, "07988734479A7892"), "keyid_is: 16 digits");
    T_OK(minisign_keyid_is(z, "7988734479A7892"), "keyid_is: short form");
    T_OK(minisign_keyid_is(z, "0007988734479A7892") == false, "keyid_is: over 16 digits");
    T_OK(minisign_keyid_is(z, "7988734479a7892") == false, "keyid_is: lower case");
    T_OK(minisign_keyid_is(z, "") == false, "keyid_is: empty");
    T_OK(minisign_keyid_is(z, "988734479A7892") == false, "keyid_is: another id");
    T_OK(minisign_keyid_is(full, "9112CA6A284A421A"), "keyid_is: full id");
    T_OK(minisign_keyid_is(zero, "0"), "keyid_is: zero");
}

int main(void)
{
    test_kat();
    test_strict();
    test_keys_and_sign();
    test_manifest();
    test_paths();
    test_distinct();
    test_keyid_names();
    test_shared_keyid();
    return t_done();
}
