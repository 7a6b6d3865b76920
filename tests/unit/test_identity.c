/* test_identity.c: the factomd.conf (gcfg/INI) reader and the identity key
 * checks of lidentity.c, table-driven, without Lua. */
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include "serfhand.h"
#include "t.h"

#define RFC_SEED "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60"
#define RFC_PK "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"
#define CHAIN "888888aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define DEF_PRIV "4c38c72fc5cdad68f13b74674d3ffb1f3d63a112710868c9b08946553448d26d"
#define DEF_PUB "cc1985cdfae4e32b5a454dfda8ce5e1361558482684f3367649c3ad852c8e31a"

struct get_case {
    const char *name, *text, *section, *key;
    int rc;
    const char *want; /* value when rc == 1, error substring when rc == -1 */
};

static const struct get_case get_cases[] = {
    {"plain", "[app]\nKey = value\n", "app", "Key", 1, "value"},
    {"case-insensitive names", "[APP]\nkEY=v\n", "app", "Key", 1, "v"},
    {"no final newline", "[app]\nKey=v", "app", "Key", 1, "v"},
    {"crlf", "[app]\r\nKey = v \r\n", "app", "Key", 1, "v"},
    {"other section", "[log]\nKey=v\n", "app", "Key", 0, NULL},
    {"subsection is not the section", "[app \"x\"]\nKey=v\n", "app", "Key", 0, NULL},
    {"before any section", "Key=v\n[app]\n", "app", "Key", 0, NULL},
    {"absent", "[app]\nOther=v\n", "app", "Key", 0, NULL},
    {"semicolon comment", "; c\n[app] ; c\nKey = v ; trailing\n", "app", "Key", 1, "v"},
    {"hash comment", "# c\n[app]\nKey = v# trailing\n", "app", "Key", 1, "v"},
    {"quoted", "[app]\nKey = \"  a;b#c  \"\n", "app", "Key", 1, "  a;b#c  "},
    {"partly quoted", "[app]\nKey = a \"b\" c\n", "app", "Key", 1, "a b c"},
    {"escapes", "[app]\nKey = \"q\\\"\\\\\\t\"\n", "app", "Key", 1, "q\"\\\t"},
    {"continuation", "[app]\nKey = ab\\\ncd\nNext=1\n", "app", "Key", 1, "abcd"},
    {"empty value", "[app]\nKey =\n", "app", "Key", 1, ""},
    {"implicit true", "[app]\nKey\n", "app", "Key", 1, "true"},
    {"last wins", "[app]\nKey=1\n[log]\nKey=2\n[app]\nKey=3\n", "app", "Key", 1, "3"},
    {"indented", "  [app]\n\tKey\t=\tv\n", "app", "Key", 1, "v"},
    {"unterminated quote", "[app]\nKey = \"abc\n", "app", "Key", -1, "line 2: unterminated"},
    {"bad escape", "[app]\nX = a\\q\n", "app", "Key", -1, "line 2: invalid escape"},
    {"bad header", "[app\nKey=v\n", "app", "Key", -1, "line 1: invalid section"},
    {"text after header", "[app] x\n", "app", "Key", -1, "line 1: text after"},
    {"missing =", "[app]\nKey v\n", "app", "Key", -1, "line 2: expected '='"},
    {"bad name", "[app]\n=v\n", "app", "Key", -1, "line 2: invalid variable"},
    {"error line after continuation", "[app]\nA=1\\\n2\n\"\n", "app", "Key", -1, "line 4:"},
    {"NUL byte", "[app]\nKey=v\0x\n", "app", "Key", -1, "NUL"},
    {"too long with blanks and quotes", "[app]\nKey=a                              \"\"\n", "app",
     "Key", -1, "longer"},
    {"escaped blank is kept", "[app]\nKey = a\\t\n", "app", "Key", 1, "a\t"},
    {"escaped backslash then blank", "[app]\nKey = a\\\\ \n", "app", "Key", 1, "a\\"},
    {"too long", "[app]\nKey=0123456789abcdef0123456789\n", "app", "Key", -1, "longer"},
    /* gcfg 1.2 (factomd's parser) skips a UTF-8 BOM at the start only */
    {"BOM skipped", "\xEF\xBB\xBF[app]\nKey = v\n", "app", "Key", 1, "v"},
    {"BOM before a comment", "\xEF\xBB\xBF; c\n[App]\nKEY=v\n", "app", "Key", 1, "v"},
    {"BOM later is an error", "[app]\n\xEF\xBB\xBFKey = v\n", "app", "Key", -1, "line 2"},
    {"backspace escape", "[app]\nKey = \"a\\bc\"\n", "app", "Key", 1, "a\bc"},
    {"quoted then last wins", "[app]\nKey = \"x y\"\nkey = z\n", "app", "Key", 1, "z"},
};

static void test_conf_get(void)
{
    for (size_t i = 0; i < sizeof get_cases / sizeof get_cases[0]; i++) {
        const struct get_case *c = &get_cases[i];
        /* "NUL byte" has an embedded NUL: its length is the literal's */
        size_t len = strcmp(c->name, "NUL byte") == 0 ? 14 : strlen(c->text);
        char out[24], err[200] = "";
        int rc =
            identity_conf_get(c->text, len, c->section, c->key, out, sizeof out, err, sizeof err);
        T_OK(rc == c->rc, c->name);
        if (rc == 1 && c->rc == 1)
            T_STR(out, c->want, c->name);
        if (rc == -1 && c->rc == -1 && !strstr(err, c->want)) {
            printf("  error was: %s\n", err);
            T_OK(0, c->name);
        }
    }
}

struct parse_case {
    const char *name, *chain, *priv, *pub;
    const char *err;             /* NULL = must load */
    enum identity_pub_line line; /* when it loads */
};

static const struct parse_case parse_cases[] = {
    {"seed", CHAIN, RFC_SEED, RFC_PK, NULL, IDENTITY_PUB_MATCH},
    {"64-byte key", CHAIN, RFC_SEED RFC_PK, RFC_PK, NULL, IDENTITY_PUB_MATCH},
    {"upper-case hex", "888888AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
     "9D61B19DEFFD5A60BA844AF492EC2CC44449C5697B326919703BAC031CAE7F60", RFC_PK, NULL,
     IDENTITY_PUB_MATCH},
    /* factomd derives the public key and never reads the line: a stale,
     * broken or missing line loads, with the derived key (a warning) */
    {"mismatch", CHAIN, RFC_SEED,
     "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511b", NULL,
     IDENTITY_PUB_MISMATCH},
    {"default public key only", CHAIN, RFC_SEED, DEF_PUB, NULL, IDENTITY_PUB_MISMATCH},
    {"bad hex pub", CHAIN, RFC_SEED, "d75a98", NULL, IDENTITY_PUB_INVALID},
    {"missing pub", CHAIN, RFC_SEED, NULL, NULL, IDENTITY_PUB_ABSENT},
    {"64-byte key halves disagree", CHAIN, RFC_SEED DEF_PUB, RFC_PK, "second half", 0},
    {"default pair", CHAIN, DEF_PRIV, DEF_PUB, "public default key", 0},
    {"default private key only", CHAIN, DEF_PRIV, RFC_PK, "public default key", 0},
    {"default private key, no public line", CHAIN, DEF_PRIV, NULL, "public default key", 0},
    {"chain without 888888", "777777aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
     RFC_SEED, RFC_PK, "888888", 0},
    {"short chain", "888888aa", RFC_SEED, RFC_PK, "IdentityChainID is not 64 hex", 0},
    {"bad hex priv", CHAIN, "zz61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
     RFC_PK, "LocalServerPrivKey is not hex", 0},
    {"short priv", CHAIN, "9d61b19d", RFC_PK, "LocalServerPrivKey is not hex", 0},
    {"missing chain", NULL, RFC_SEED, RFC_PK, "IdentityChainID missing", 0},
    {"missing priv", CHAIN, NULL, RFC_PK, "LocalServerPrivKey missing", 0},
    {"missing priv: factomd would use the sample", CHAIN, NULL, NULL, "public sample key", 0},
};

static void test_parse(void)
{
    for (size_t i = 0; i < sizeof parse_cases / sizeof parse_cases[0]; i++) {
        const struct parse_case *c = &parse_cases[i];
        struct buf b = {0};
        struct identity_keys k;
        char err[300] = "";

        buf_addstr(&b, "; factomd.conf\n[app]\nPortNumber = 8088\n");
        if (c->chain)
            buf_printf(&b, "IdentityChainID = %s\n", c->chain);
        if (c->priv)
            buf_printf(&b, "LocalServerPrivKey = \"%s\"\n", c->priv);
        if (c->pub)
            buf_printf(&b, "localserverpublickey=%s ; ours\n", c->pub);
        buf_addstr(&b, "[Walletd]\nLocalServerPrivKey = 00\n");
        int rc = identity_parse(b.data, b.len, &k, err, sizeof err);
        if (c->err == NULL) {
            T_OK(rc == 0, c->name);
            if (rc == 0) {
                unsigned char sig[64];
                char pkhex[65];
                sodium_bin2hex(pkhex, sizeof pkhex, k.pk, 32);
                T_STR(pkhex, RFC_PK, c->name);
                T_STR(k.chain_id, CHAIN, c->name);
                T_OK(k.pub_line == c->line, c->name);
                T_OK(k.sk != NULL, c->name);
                crypto_sign_detached(sig, NULL, (const unsigned char *)"", 0, k.sk);
                sodium_bin2hex(pkhex, sizeof pkhex, sig, 32);
                T_STR(pkhex, "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e06522490155",
                      "RFC 8032 vector 1 signature");
            } else {
                printf("  error was: %s\n", err);
            }
        } else {
            T_OK(rc == -1 && strstr(err, c->err) != NULL, c->name);
            if (rc == 0 || !strstr(err, c->err))
                printf("  error was: %s\n", err);
            T_OK(k.sk == NULL, "no secret left after an error");
        }
        identity_keys_wipe(&k);
        identity_keys_wipe(&k); /* twice is fine */
        T_OK(k.sk == NULL, "wiped");
        buf_free(&b);
    }
}

/* The default pair really is a pair: the refusal is about a real key. */
static void test_default_pair(void)
{
    unsigned char seed[32], pk[32], sk[64];
    char hex[65];
    size_t n;

    sodium_hex2bin(seed, 32, DEF_PRIV, 64, NULL, &n, NULL);
    crypto_sign_seed_keypair(pk, sk, seed);
    sodium_bin2hex(hex, sizeof hex, pk, 32);
    T_STR(hex, DEF_PUB, "factomd default private key gives the default public key");
}

/* A key pasted on a line of its own must not be echoed in an error. */
static void test_no_echo(void)
{
    static const char *texts[] = {
        "[app]\nc4a1b2c3d4e5f60718293a4b5c6d7e8f x\n",
        "[app]\nKey = \"c4a1b2c3d4e5f607\\q\"\n",
    };
    for (size_t i = 0; i < 2; i++) {
        char out[100], err[200] = "";
        int rc = identity_conf_get(texts[i], strlen(texts[i]), "app", "Key", out, sizeof out, err,
                                   sizeof err);
        T_OK(rc == -1 && strstr(err, "c4a1") == NULL && strstr(err, "line 2") != NULL,
             "error names the line, not its text");
    }
}

/* A forked child (proc.spawn's executor) sees zeros where the secret was. */
static void test_secret_not_inherited(void)
{
    struct buf b = {0};
    struct identity_keys k;
    char err[300] = "";
    buf_printf(&b,
               "[app]\nIdentityChainID = %s\nLocalServerPrivKey = %s\nLocalServerPublicKey = %s\n",
               CHAIN, RFC_SEED, RFC_PK);
    T_OK(identity_parse(b.data, b.len, &k, err, sizeof err) == 0, "parse");
    if (k.sk) {
        pid_t pid = fork();
        if (pid == 0) {
            bool zero = true;
            for (size_t i = 0; i < crypto_sign_SECRETKEYBYTES; i++)
                zero = zero && k.sk[i] == 0;
            _exit(zero ? 0 : 1);
        }
        int st = -1;
        T_OK(pid > 0 && waitpid(pid, &st, 0) == pid, "fork");
        T_OK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "the child sees no secret");
        bool kept = false;
        for (size_t i = 0; i < crypto_sign_SECRETKEYBYTES; i++)
            kept = kept || k.sk[i] != 0;
        T_OK(kept, "the parent keeps it");
    }
    identity_keys_wipe(&k);
    buf_free(&b);
}

/* FactomdRpcUser/FactomdRpcPass as factomd reads them, from a file. */
static void test_rpc_auth(void)
{
    static const struct {
        const char *name, *text;
        int rc;
        const char *user, *pass;
    } cases[] = {
        {"both", "[app]\nFactomdRpcUser = alice\nFactomdRpcPass = \"s3cret pass\" ; c\n", 1,
         "alice", "s3cret pass"},
        {"case and BOM", "\xEF\xBB\xBF[APP]\nfactomdrpcuser=bob\nFACTOMDRPCPASS=pw\n", 1, "bob",
         "pw"},
        {"last wins", "[app]\nFactomdRpcUser=a\n[app]\nFactomdRpcUser=b\n", 1, "b", ""},
        {"none", "[app]\nPortNumber = 8088\n", 0, "", ""},
        {"empty user", "[app]\nFactomdRpcUser =\nFactomdRpcPass = x\n", 0, "", ""},
        {"other section", "[Walletd]\nFactomdRpcUser = w\n", 0, "", ""},
        {"syntax error", "[app]\nFactomdRpcUser = \"x\n", -1, "", ""},
    };
    char path[] = "/tmp/serfhand-test-rpcauth-XXXXXX";
    int fd = mkstemp(path);
    T_OK(fd >= 0, "mkstemp");
    close(fd);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        FILE *f = fopen(path, "w");
        fputs(cases[i].text, f);
        fclose(f);
        char user[64], pass[64], err[300] = "";
        int rc = identity_rpc_auth(path, user, sizeof user, pass, sizeof pass, err, sizeof err);
        T_OK(rc == cases[i].rc, cases[i].name);
        if (rc >= 0) {
            T_STR(user, cases[i].user, cases[i].name);
            T_STR(pass, cases[i].pass, cases[i].name);
        } else {
            T_OK(strstr(err, "line 2") != NULL && user[0] == '\0', err);
        }
    }
    unlink(path);
    char user[8], pass[8], err[300];
    T_OK(identity_rpc_auth("/nonexistent/factomd.conf", user, sizeof user, pass, sizeof pass, err,
                           sizeof err) == -1,
         "missing file");
}

int main(void)
{
    if (sodium_init() < 0)
        return 2;
    test_conf_get();
    test_parse();
    test_default_pair();
    test_no_echo();
    test_secret_not_inherited();
    test_rpc_auth();
    return t_done();
}
