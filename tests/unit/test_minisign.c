/* test_minisign.c: the minisign formats of minisign.c (keys, signatures,
 * the known-answer vector and the strict parsers), without the binary. */
#include <fcntl.h>
#include <stdio.h>
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

/* minisign_seckey_read: the key file goes straight into sodium memory;
 * only a regular file of at most 4 KiB. */
static void test_seckey_read(void)
{
    struct minisign_pubkey pk;
    struct minisign_seckey *sk = NULL, *sk2 = NULL;
    struct buf text = {0};
    char err[300], dir[] = "/tmp/serfhand-unit-XXXXXX", path[64], fifo[64], big[64];
    char *kb = NULL;
    size_t kblen = 0;

    T_OK(mkdtemp(dir) != NULL, "temp dir");
    snprintf(path, sizeof path, "%s/k.sec", dir);
    snprintf(fifo, sizeof fifo, "%s/fifo", dir);
    snprintf(big, sizeof big, "%s/big", dir);
    T_OK(minisign_keygen(&pk, &sk) == 0, "keygen");
    T_OK(minisign_seckey_write(sk, NULL, 0, 0, &text, err, sizeof err) == 0, "write key");
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    T_OK(fd >= 0 && write(fd, text.data, text.len) == (ssize_t)text.len, "key file");
    close(fd);
    T_OK(minisign_seckey_read(path, &kb, &kblen, err, sizeof err) == 0, "read key file");
    T_OK(kblen == text.len && memcmp(kb, text.data, kblen) == 0, "same bytes");
    T_OK(minisign_seckey_parse(&sk2, kb, kblen, NULL, err, sizeof err) == 0, "parses");
    sodium_free(kb);
    minisign_seckey_free(sk2);
    char pad[1000];
    memset(pad, 'x', sizeof pad);
    fd = open(big, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    for (int i = 0; i < 5; i++)
        T_OK(write(fd, pad, sizeof pad) == (ssize_t)sizeof pad, "big file");
    close(fd);
    T_OK(minisign_seckey_read(big, &kb, &kblen, err, sizeof err) < 0 && kb == NULL,
         "over 4 KiB refused");
    T_OK(strstr(err, "4096") != NULL, err);
    T_OK(mkfifo(fifo, 0600) == 0, "fifo");
    T_OK(minisign_seckey_read(fifo, &kb, &kblen, err, sizeof err) < 0 && kb == NULL,
         "a FIFO refused, not waited on");
    T_OK(minisign_seckey_read("/nonexistent/k", &kb, &kblen, err, sizeof err) < 0, "missing");
    unlink(path);
    unlink(big);
    unlink(fifo);
    rmdir(dir);
    buf_free(&text);
    minisign_seckey_free(sk);
}

int main(void)
{
    test_kat();
    test_strict();
    test_keys_and_sign();
    test_seckey_read();
    return t_done();
}
