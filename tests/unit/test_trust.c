/* test_trust.c: the threshold rules and signature file names of trust.c,
 * without the binary. */
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "serfhand.h"
#include "t.h"

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
    test_distinct();
    test_keyid_names();
    test_shared_keyid();
    return t_done();
}
