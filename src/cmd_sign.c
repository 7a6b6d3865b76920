/*
 * cmd_sign.c: `serfhand sign`, the author's tool. The first signer writes
 * MANIFEST.json (every file under handlers/ and lua/ with size and BLAKE2b)
 * and MANIFEST.json.<KEYID>.minisig; a later signer adds only a signature,
 * after checking that the manifest still matches the files. A bundle whose
 * Lua does not compile is never signed (exit 3).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "serfhand.h"

#define SIGN_LIFETIME_S (180LL * 86400) /* --expires by default */

/* Describe how the files differ from the manifest m (at most a few lines). */
static int diff_files(const struct manifest *m, const struct manifest *cur, struct util_lines *p)
{
    for (size_t i = 0; i < cur->nfiles; i++) {
        const struct manifest_file *f = manifest_find(m, cur->files[i].path);
        if (!f)
            util_line_add(p, "%s: added (not in the manifest)", cur->files[i].path);
        else if (f->size != cur->files[i].size || memcmp(f->hash, cur->files[i].hash, 32) != 0)
            util_line_add(p, "%s: changed", cur->files[i].path);
    }
    for (size_t i = 0; i < m->nfiles; i++)
        if (!manifest_find(cur, m->files[i].path))
            util_line_add(p, "%s: removed (listed in the manifest)", m->files[i].path);
    return (int)p->n;
}

static int remove_old_sigs(int dirfd)
{
    int fd = dup(dirfd), n = 0;
    DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
    struct dirent *e;
    if (!d) {
        if (fd >= 0)
            close(fd);
        return 0;
    }
    while ((e = readdir(d))) {
        size_t l = strlen(e->d_name);
        if (strncmp(e->d_name, "MANIFEST.json.", 14) == 0 && l > 22 &&
            strcmp(e->d_name + l - 8, ".minisig") == 0 && unlinkat(dirfd, e->d_name, 0) == 0)
            n++;
    }
    closedir(d);
    return n;
}

static int exec_sign(const struct args *a, const struct config *cfg)
{
    const char *keyfile = args_str(a, "-s", NULL), *dir = a->pos[0];
    const char *name = args_str(a, "--name", NULL);
    bool expires_given = args_has(a, "--expires"), json = args_has(a, "--json");
    int removed = 0;
    long long version = args_num(a, "--version", 0);
    long long lifetime = args_num(a, "--expires", SIGN_LIFETIME_S);
    char err[1024], *pw = NULL, id[17], hex[65];
    struct minisign_seckey *sk = NULL;
    struct manifest old = {0}, cur = {0};
    struct util_lines probs = {0};
    char *kb = NULL;
    size_t kblen = 0;
    struct buf man = {0}, sig = {0};
    bool have_old = false, new_manifest = false;
    int dirfd = -1, rc = SH_EXIT_USAGE;
    size_t max_file = (size_t)config_int(cfg, "limits.file_bytes");

    if (name && !util_valid_name(name)) {
        fprintf(stderr, "serfhand sign: --name must match [A-Za-z0-9][A-Za-z0-9_.-]{0,63}\n");
        return SH_EXIT_USAGE;
    }
    dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dirfd < 0) {
        fprintf(stderr, "serfhand sign: %s: %s\n", dir, strerror(errno));
        goto out;
    }

    /* the key first: a wrong password must not leave a half-written bundle */
    /* sodium memory: the key file's bytes never sit on the stack */
    if (minisign_seckey_read(keyfile, &kb, &kblen, err, sizeof err) < 0) {
        fprintf(stderr, "serfhand sign: %s\n", err);
        goto out;
    }
    int enc = minisign_seckey_encrypted(kb, kblen);
    if (enc < 0) {
        minisign_seckey_parse(&sk, kb, kblen, NULL, err, sizeof err);
        fprintf(stderr, "serfhand sign: %s: %s\n", keyfile, err);
        goto out;
    }
    if (enc && password_read("Password for the secret key: ", false, &pw, err, sizeof err) < 0) {
        fprintf(stderr, "serfhand sign: %s\n", err);
        goto out;
    }
    if (minisign_seckey_parse(&sk, kb, kblen, pw, err, sizeof err) < 0) {
        fprintf(stderr, "serfhand sign: %s: %s\n", keyfile, err);
        rc = SH_EXIT_FAIL;
        goto out;
    }
    minisign_keyid_hex(sk->keyid, id);

    rc = SH_EXIT_FAIL;
    if (manifest_build(&cur, dir, max_file, &probs) < 0) {
        fprintf(stderr, "serfhand sign: %s: cannot be signed:\n", dir);
        for (size_t i = 0; i < probs.n; i++)
            fprintf(stderr, "  %s\n", probs.v[i]);
        goto out;
    }
    /* What every node compiles before it installs (check.c): never sign less. */
    if (check_compile(dirfd, &cur, max_file, &probs) > 0) {
        fprintf(stderr, "serfhand sign: %s does not compile, nothing was signed:\n", dir);
        for (size_t i = 0; i < probs.n; i++)
            fprintf(stderr, "  %s\n", probs.v[i]);
        rc = SH_EXIT_TRUST;
        goto out;
    }
    enum util_open r =
        util_read_beneath(dirfd, "MANIFEST.json", MANIFEST_MAX, &man, err, sizeof err);
    if (r == UTIL_OPEN_FAILED) {
        fprintf(stderr, "serfhand sign: %s\n", err);
        goto out;
    }
    if (r == UTIL_OPEN_OK) {
        if (manifest_parse(&old, man.data, man.len, err, sizeof err) == 0) {
            have_old = true;
        } else if (!version) {
            fprintf(stderr,
                    "serfhand sign: existing MANIFEST.json is invalid: %s\n"
                    "  write a new one with --version N\n",
                    err);
            goto out;
        }
    }
    /* The name is the bundle's identity: nodes refuse an announcement for
     * another name than the one they run. So it is never guessed (from the
     * directory) and never changed by a later manifest. */
    if (have_old && name && strcmp(name, old.bundle) != 0) {
        fprintf(stderr,
                "serfhand sign: MANIFEST.json names bundle %s, not %s: a node running %s "
                "refuses every announcement for another name. Leave out --name to keep %s; "
                "to start a new bundle called %s, remove MANIFEST.json and its signatures "
                "first.\n",
                old.bundle, name, old.bundle, old.bundle, name);
        rc = SH_EXIT_USAGE;
        goto out;
    }
    if (have_old && !version) {
        /* a later signer: sign the manifest as it is, if it still matches */
        if (expires_given) {
            fprintf(stderr, "serfhand sign: MANIFEST.json exists: --expires only applies "
                            "to a new manifest (--version N)\n");
            rc = SH_EXIT_USAGE;
            goto out;
        }
        if (diff_files(&old, &cur, &probs) > 0) {
            fprintf(stderr,
                    "serfhand sign: MANIFEST.json (bundle %s version %lld) no longer matches "
                    "the files:\n",
                    old.bundle, old.version);
            for (size_t i = 0; i < probs.n && i < 20; i++)
                fprintf(stderr, "  %s\n", probs.v[i]);
            fprintf(stderr,
                    "  Nothing was signed. To sign the files as they are now, write a new "
                    "manifest with --version %lld (this removes the existing signatures).\n",
                    old.version + 1);
            goto out;
        }
    } else {
        if (have_old && version <= old.version) {
            fprintf(stderr,
                    "serfhand sign: --version %lld is not above the existing manifest's "
                    "version %lld\n",
                    version, old.version);
            rc = SH_EXIT_USAGE;
            goto out;
        }
        if (!name && have_old)
            name = old.bundle;
        if (!name) {
            fprintf(stderr,
                    "serfhand sign: %s has no valid MANIFEST.json: a new manifest needs the "
                    "bundle's name, --name NAME (the name the nodes run; it is not taken from "
                    "the directory)\n",
                    dir);
            rc = SH_EXIT_USAGE;
            goto out;
        }
        cur.bundle = xstrdup(name);
        cur.version = version ? version : 1;
        cur.created = (long long)time(NULL);
        cur.expires = cur.created + lifetime;
        buf_free(&man);
        manifest_write(&cur, &man);
        removed = remove_old_sigs(dirfd);
        if (files_write_atomic(dirfd, "MANIFEST.json", &man, err, sizeof err) < 0) {
            fprintf(stderr, "serfhand sign: %s\n", err);
            goto out;
        }
        new_manifest = true;
        if (!json) {
            struct buf when = {0};
            util_date(&when, cur.expires, cur.created);
            printf("wrote MANIFEST.json: bundle %s version %lld, %zu files, expires %s%s\n",
                   cur.bundle, cur.version, cur.nfiles, when.data,
                   removed ? " (old signatures removed)" : "");
            buf_free(&when);
        }
    }

    const struct manifest *m = new_manifest ? &cur : &old;
    char trusted[512], signame[TRUST_SIGNAME_MAX];
    snprintf(trusted, sizeof trusted,
             "timestamp:%lld\tfile:MANIFEST.json\tbundle:%s\tversion:%lld\thashed",
             (long long)time(NULL), m->bundle, m->version);
    if (minisign_sign(sk, man.data, man.len, trusted, "signature from serfhand secret key", &sig,
                      err, sizeof err) < 0) {
        fprintf(stderr, "serfhand sign: %s\n", err);
        goto out;
    }
    struct minisign_pubkey pk;
    char stale[TRUST_SIGNAME_MAX];
    minisign_seckey_pubkey(sk, &pk);
    trust_sig_name_for(dirfd, &pk, man.data, man.len, signame, stale);
    if (files_write_atomic(dirfd, signame, &sig, err, sizeof err) < 0) {
        fprintf(stderr, "serfhand sign: %s\n", err);
        goto out;
    }
    if (stale[0]) /* this key's older file, named from minisign's short id */
        unlinkat(dirfd, stale, 0);
    uint8_t h[32];
    crypto_generichash(h, 32, (const uint8_t *)man.data, man.len, NULL, 0);
    util_hex(h, 32, hex);
    if (json) {
        struct buf o = {0};
        buf_addstr(&o, "{\"bundle\":");
        util_json_str(&o, m->bundle);
        buf_printf(&o, ",\"version\":%lld,\"manifest\":\"%s\",\"key\":\"%s\",\"signature\":",
                   m->version, hex, id);
        util_json_str(&o, signame);
        buf_printf(&o,
                   ",\"new_manifest\":%s,\"removed_signatures\":%d,\"files\":%zu,"
                   "\"created\":%lld,\"expires\":%lld}\n",
                   new_manifest ? "true" : "false", removed, m->nfiles, m->created, m->expires);
        fwrite(o.data, 1, o.len, stdout);
        buf_free(&o);
    } else {
        printf("signed bundle %s version %lld (manifest blake2b %s) with key %s: %s\n", m->bundle,
               m->version, hex, id, signame);
    }
    rc = SH_EXIT_OK;
out:
    sodium_free(kb); /* wipes */
    buf_free(&man);
    buf_free(&sig);
    manifest_free(&old);
    manifest_free(&cur);
    util_lines_free(&probs);
    minisign_seckey_free(sk);
    password_free(pw);
    if (dirfd >= 0)
        close(dirfd);
    return rc;
}

static const struct cmd_opt opts[] = {
    {.name = "-s",
     .kind = OPT_STR,
     .arg = "KEY.sec",
     .help = "the secret key to sign with",
     .required = true},
    {.name = "--version",
     .kind = OPT_INT,
     .arg = "N",
     .help = "write a new manifest with this version",
     .min = 1,
     .max = MANIFEST_INT_MAX},
    {.name = "--expires",
     .kind = OPT_DURATION,
     .arg = "DURATION",
     .help = "the new manifest's lifetime (default 180d; a bare number is seconds)",
     .min = 1,
     .max = ARGS_DURATION_MAX},
    {.name = "--name",
     .kind = OPT_STR,
     .arg = "NAME",
     .help = "the bundle's name (needed for a new manifest)"},
    {.name = "--json", .kind = OPT_FLAG, .help = "one line of JSON on success"},
    {NULL},
};

const struct cmd_entry cmd_sign_entry = {
    .name = "sign",
    .summary = "write MANIFEST.json (first signer) and add this key's signature",
    .opts = opts,
    .operands = "DIR",
    .min_operands = 1,
    .max_operands = 1,
    .description =
        "Without --version, signs DIR's MANIFEST.json as it is (a later signer); with\n"
        "--version N (or when there is none), writes a new one listing every file under\n"
        "handlers/ and lua/, which removes the old signatures. --name NAME names the\n"
        "bundle: required when DIR has no MANIFEST.json, and otherwise taken from it\n"
        "(a different --name is refused: nodes refuse announcements for another name).\n"
        "--expires takes a DURATION: seconds, or a number with s, m, h, d or w (180d).\n"
        "--json: {bundle, version, manifest, key, signature, new_manifest,\n"
        "removed_signatures, files, created, expires} (unix seconds); errors stay on\n"
        "stderr.",
    .exits = "  0 signed\n"
             "  1 a wrong password, files that cannot be listed or no longer match the\n"
             "    manifest, a failed write\n"
             "  2 usage, an unreadable key or DIR, a --name or --version conflict\n"
             "  3 the Lua does not compile",
    .exec = exec_sign,
    .needs_config = true,
};
