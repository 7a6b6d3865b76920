/*
 * cmd_keygen.c: `serfhand keygen`, a minisign-compatible Ed25519 key pair.
 * The secret key is encrypted with the password (scrypt, minisign's scheme
 * and limits) unless -W is given; the real `minisign` can use both files.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "serfhand.h"

static int write_file(const char *path, const struct buf *b, mode_t mode, bool force)
{
    int fd =
        open(path, O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW | (force ? O_TRUNC : O_EXCL), mode);
    if (fd < 0) {
        fprintf(stderr, "serfhand keygen: %s: %s%s\n", path, strerror(errno),
                errno == EEXIST ? " (use -f to overwrite)" : "");
        return -1;
    }
    int rc = 0;
    if (fchmod(fd, mode) < 0 || write(fd, b->data, b->len) != (ssize_t)b->len || fsync(fd) < 0)
        rc = -1;
    if (close(fd) < 0)
        rc = -1;
    if (rc < 0)
        fprintf(stderr, "serfhand keygen: %s: %s\n", path, strerror(errno));
    return rc;
}

static int exec_keygen(const struct args *a, const struct config *cfg)
{
    const char *pub = args_str(a, "-p", NULL), *sec = args_str(a, "-s", NULL);
    bool nopass = args_has(a, "-W"), force = args_has(a, "-f");
    char err[512], *pw = NULL;
    struct minisign_seckey *sk = NULL;
    struct minisign_pubkey pk;
    struct buf pb = {0}, sb = {0};
    int rc = SH_EXIT_USAGE;
    (void)cfg;
    if (!force && (access(pub, F_OK) == 0 || access(sec, F_OK) == 0)) {
        fprintf(stderr, "serfhand keygen: %s exists (use -f to overwrite)\n",
                access(sec, F_OK) == 0 ? sec : pub);
        return SH_EXIT_USAGE;
    }
    if (!nopass &&
        password_read("Password for the new secret key: ", true, &pw, err, sizeof err) < 0) {
        fprintf(stderr, "serfhand keygen: %s\n", err);
        return SH_EXIT_USAGE;
    }
    if (pw && !*pw) {
        fprintf(stderr, "serfhand keygen: empty password (use -W for an unencrypted key)\n");
        goto out;
    }
    if (minisign_keygen(&pk, &sk) < 0) {
        fprintf(stderr, "serfhand keygen: libsodium failed\n");
        goto out;
    }
    /* minisign's limits. Only the test binary (serfhand-test-hooks, built
     * with -DSERFHAND_TEST_HOOKS) lowers them for SERFHAND_KDF=interactive:
     * in the installed binary the variable would weaken every new key. */
    unsigned long long ops = crypto_pwhash_scryptsalsa208sha256_OPSLIMIT_SENSITIVE;
    size_t mem = crypto_pwhash_scryptsalsa208sha256_MEMLIMIT_SENSITIVE;
#ifdef SERFHAND_TEST_HOOKS
    const char *kdf = getenv("SERFHAND_KDF");
    if (kdf && strcmp(kdf, "interactive") == 0) {
        ops = crypto_pwhash_scryptsalsa208sha256_OPSLIMIT_INTERACTIVE;
        mem = crypto_pwhash_scryptsalsa208sha256_MEMLIMIT_INTERACTIVE;
    }
#endif
    if (minisign_seckey_write(sk, pw, ops, mem, &sb, err, sizeof err) < 0) {
        fprintf(stderr, "serfhand keygen: %s\n", err);
        goto out;
    }
    minisign_pubkey_write(&pk, &pb);
    if (write_file(sec, &sb, 0600, force) < 0 || write_file(pub, &pb, 0644, force) < 0)
        goto out;
    char id[17], b64[57];
    minisign_keyid_hex(pk.keyid, id);
    minisign_pubkey_base64(&pk, b64);
    if (args_has(a, "--json")) {
        struct buf o = {0};
        buf_printf(&o, "{\"key_id\":\"%s\",\"public_key\":\"%s\",\"public_key_file\":", id, b64);
        util_json_str(&o, pub);
        buf_addstr(&o, ",\"secret_key_file\":");
        util_json_str(&o, sec);
        buf_printf(&o, ",\"encrypted\":%s}\n", pw ? "true" : "false");
        fwrite(o.data, 1, o.len, stdout);
        buf_free(&o);
    } else {
        printf("key id %s\npublic key %s: %s\nsecret key %s (%s)\n"
               "trust it on nodes with: trust = { keys = { \"%s\" } }\n",
               id, pub, b64, sec, pw ? "password-protected" : "NOT encrypted", b64);
    }
    rc = SH_EXIT_OK;
out:
    if (sb.data)
        sodium_memzero(sb.data, sb.len);
    buf_free(&sb);
    buf_free(&pb);
    minisign_seckey_free(sk);
    password_free(pw);
    return rc;
}

static const struct cmd_opt opts[] = {
    {.name = "-p",
     .kind = OPT_STR,
     .arg = "KEY.pub",
     .help = "where the public key goes",
     .required = true},
    {.name = "-s",
     .kind = OPT_STR,
     .arg = "KEY.sec",
     .help = "where the secret key goes",
     .required = true},
    {.name = "-W", .kind = OPT_FLAG, .help = "no password: the secret key is not encrypted"},
    {.name = "-f", .kind = OPT_FLAG, .help = "overwrite existing files"},
    {.name = "--json", .kind = OPT_FLAG, .help = "one line of JSON on success"},
    {NULL},
};

const struct cmd_entry cmd_keygen_entry = {
    .name = "keygen",
    .summary = "make a minisign key pair (-W: no password; password from $SERFHAND_PASSWORD or "
               "the terminal)",
    .opts = opts,
    .description = "--json: {key_id, public_key, public_key_file, secret_key_file, encrypted};\n"
                   "errors stay on stderr.",
    .exits = "  0 written\n"
             "  2 a file exists (without -f) or cannot be written, or no password",
    .exec = exec_keygen,
    .needs_config = false,
};
