/*
 * cmd_announce.c: `serfhand announce -s KEY.sec --url BASE DIR`, the
 * operator's rollout trigger: checks the published bundle DIR, signs a
 * pointer {name, version, manifest hash, URL, expiry} with a trusted bundle
 * key, checks that the URL serves that manifest, and sends it as the
 * non-coalesced user event serfhand-update.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sodium.h>

#include "serfhand.h"

#define SERF_EVENT_LIMIT 512 /* Serf's default user_event_size_limit */

/* Fetch url/MANIFEST.json as a node will (the same caps as install) and
 * compare it with the manifest the pointer names: its hash, and for the
 * message its name and version. Before anything is sent, so a pointer to a
 * URL that does not serve the bundle never reaches the nodes. Returns
 * SH_EXIT_OK, SH_EXIT_FAIL (the URL did not answer 200) or SH_EXIT_TRUST
 * (it serves another manifest), with msg saying which and the HTTP status. */
static int check_published(const struct config *cfg, const struct update_pointer *p,
                           const char *dir, char *msg, size_t msglen)
{
    struct buf url = {0}, body = {0};
    struct manifest m = {0};
    char sub[512], hex[65];
    long status = 0;
    size_t max_dl = (size_t)config_int(cfg, "update.max_bytes");
    bool fixed = INSTALL_MANIFEST_MAX <= max_dl;
    int rc = SH_EXIT_FAIL;
    buf_printf(&url, "%s/MANIFEST.json", p->url);
    struct http_req req = {
        .url = url.data,
        .timeout_ms = (long)config_int(cfg, "update.timeout_ms"),
        .max_bytes = fixed ? INSTALL_MANIFEST_MAX : max_dl,
    };
    int r = http_get(&req, &body, &status, sub, sizeof sub);
    if (r == HTTP_TIMEOUT) {
        util_errf(msg, msglen, "GET %s: %s (update.timeout_ms), no HTTP status", url.data, sub);
    } else if (r == HTTP_TOO_BIG) {
        util_errf(msg, msglen, "GET %s: HTTP %ld, %s (%s)", url.data, status, sub,
                  fixed ? "a manifest's fixed limit" : "update.max_bytes");
    } else if (r != HTTP_OK) {
        util_errf(msg, msglen, "GET %s: %s, no HTTP status", url.data, sub);
    } else if (status != 200) {
        util_errf(msg, msglen, "GET %s: HTTP %ld: the URL does not serve the bundle", url.data,
                  status);
    } else {
        uint8_t h[32];
        crypto_generichash(h, 32, (const uint8_t *)body.data, body.len, NULL, 0);
        util_hex(h, 32, hex);
        rc = SH_EXIT_TRUST;
        if (strcmp(hex, p->hash) == 0)
            rc = SH_EXIT_OK;
        else if (manifest_parse(&m, body.data, body.len, sub, sizeof sub) < 0)
            util_errf(msg, msglen, "GET %s: HTTP 200, but not a valid manifest (%s)", url.data,
                      sub);
        else if (strcmp(m.bundle, p->name) != 0)
            util_errf(msg, msglen, "GET %s: HTTP 200, but it is bundle %s, %s is bundle %s",
                      url.data, m.bundle, dir, p->name);
        else if (m.version != p->version)
            util_errf(msg, msglen, "GET %s: HTTP 200, but it is version %lld, %s is version %lld",
                      url.data, m.version, dir, p->version);
        else
            util_errf(msg, msglen,
                      "GET %s: HTTP 200, bundle %s version %lld, but another manifest (hash "
                      "%.16s..., %s has %.16s...): signed again since it was published?",
                      url.data, m.bundle, m.version, hex, dir, p->hash);
    }
    manifest_free(&m);
    buf_free(&body);
    buf_free(&url);
    return rc;
}

/* --json: what was (or, with --print, would be) sent. */
static void print_json(const struct update_pointer *p, const char *id, const struct buf *payload,
                       bool sent)
{
    struct buf o = {0};
    buf_printf(&o, "{\"sent\":%s,\"bundle\":", sent ? "true" : "false");
    util_json_str(&o, p->name);
    buf_printf(&o, ",\"version\":%lld,\"manifest\":\"%s\",\"url\":", p->version, p->hash);
    util_json_str(&o, p->url);
    buf_printf(&o,
               ",\"expires\":%lld,\"key\":\"%s\",\"payload_bytes\":%zu,\"payload_max\":%d,"
               "\"payload\":",
               p->expires, id, payload->len, UPDATE_PAYLOAD_MAX);
    util_json_str(&o, payload->data); /* base64url "." compact JSON: printable */
    buf_addstr(&o, "}\n");
    fwrite(o.data, 1, o.len, stdout);
    buf_free(&o);
}

static int exec_announce(const struct args *a, const struct config *cfg)
{
    const char *keyfile = args_str(a, "-s", NULL), *url = args_str(a, "--url", NULL);
    const char *dir = a->pos[0];
    bool print_only = args_has(a, "--print"), no_check = args_has(a, "--no-check");
    bool json = args_has(a, "--json");
    long long ttl = args_num(a, "--ttl", 3600);
    struct trust_keyset ks = {0};
    struct trust_report rep = {0};
    struct minisign_seckey *sk = NULL;
    char *kb = NULL;
    size_t kblen = 0;
    struct buf payload = {0};
    struct serfrpc *rpc = NULL;
    char err[1024] = "", *pw = NULL;
    int rc = SH_EXIT_USAGE;

    if (minisign_init() < 0)
        util_errf(err, sizeof err, "libsodium cannot be initialised");
    else if (trust_keyset_load(&ks, cfg, err, sizeof err) == 0)
        err[0] = 0;
    if (err[0]) {
        fprintf(stderr, "serfhand announce: %s\n", err);
        goto out;
    }

    /* The key: it must be one the nodes trust, or every node refuses. */
    /* sodium memory: the key file's bytes never sit on the stack */
    if (minisign_seckey_read(keyfile, &kb, &kblen, err, sizeof err) < 0) {
        fprintf(stderr, "serfhand announce: %s\n", err);
        goto out;
    }
    int enc = minisign_seckey_encrypted(kb, kblen);
    if (enc > 0 &&
        password_read("Password for the secret key: ", false, &pw, err, sizeof err) < 0) {
        fprintf(stderr, "serfhand announce: %s\n", err);
        goto out;
    }
    if (minisign_seckey_parse(&sk, kb, kblen, pw, err, sizeof err) < 0) {
        fprintf(stderr, "serfhand announce: %s: %s\n", keyfile, err);
        rc = SH_EXIT_FAIL;
        goto out;
    }
    struct minisign_pubkey pk;
    minisign_seckey_pubkey(sk, &pk);
    bool trusted = false;
    for (size_t i = 0; i < ks.n; i++)
        trusted = trusted || memcmp(ks.keys[i].pk, pk.pk, 32) == 0;
    char id[17];
    minisign_keyid_hex(sk->keyid, id);
    if (!trusted) {
        fprintf(stderr,
                "serfhand announce: key %s is not in trust.keys: every node would refuse "
                "the announcement\n",
                id);
        rc = SH_EXIT_TRUST;
        goto out;
    }

    /* The bundle as published: it must pass the check every node makes. */
    check_verify(&rep, dir, &ks, (size_t)config_int(cfg, "limits.file_bytes"), (int64_t)time(NULL));
    if (rep.problems.n || !rep.have_manifest) {
        fprintf(stderr, "serfhand announce: %s does not verify, nothing was sent:\n", dir);
        for (size_t i = 0; i < rep.problems.n; i++)
            fprintf(stderr, "  %s\n", rep.problems.v[i]);
        rc = SH_EXIT_TRUST;
        goto out;
    }

    struct update_pointer p = {0};
    long long now = (long long)time(NULL);
    snprintf(p.name, sizeof p.name, "%s", rep.m.bundle);
    p.version = rep.m.version;
    snprintf(p.hash, sizeof p.hash, "%s", rep.manifest_hash);
    size_t ul = strlen(url);
    while (ul > 8 && url[ul - 1] == '/')
        ul--;
    if (ul >= sizeof p.url) {
        fprintf(stderr, "serfhand announce: --url is too long\n");
        goto out;
    }
    memcpy(p.url, url, ul);
    p.expires = now + ttl < rep.m.expires ? now + ttl : rep.m.expires;
    if (update_pointer_encode(&p, sk, &payload, err, sizeof err) < 0) {
        fprintf(stderr, "serfhand announce: %s\n", err);
        goto out;
    }
    size_t total = strlen(UPDATE_EVENT) + payload.len;
    if (payload.len > UPDATE_PAYLOAD_MAX) {
        fprintf(stderr,
                "serfhand announce: the signed pointer is %zu bytes (event name + payload "
                "%zu), over the %d bytes that fit Serf's %d-byte user event limit after "
                "encoding: use a shorter --url (%zu bytes too many)\n",
                payload.len, total, UPDATE_PAYLOAD_MAX, SERF_EVENT_LIMIT,
                payload.len - UPDATE_PAYLOAD_MAX);
        rc = SH_EXIT_FAIL;
        goto out;
    }
    /* The URL must serve what the pointer names; checked before anything
     * is printed or sent, and before the agent is contacted. */
    if (!no_check && (rc = check_published(cfg, &p, dir, err, sizeof err)) != SH_EXIT_OK) {
        fprintf(stderr, "serfhand announce: %s: nothing was sent (--no-check skips this)\n", err);
        goto out;
    }
    rc = SH_EXIT_USAGE;
    if (print_only) {
        if (json)
            print_json(&p, id, &payload, false);
        else
            printf("%s\n", payload.data);
        rc = SH_EXIT_OK;
        goto out;
    }

    const char *addr, *token;
    serfrpc_endpoint(cfg, &addr, &token);
    int64_t deadline = util_mono_ms() + config_int(cfg, "serf.timeout_ms");
    if (serfrpc_open(&rpc, addr, token, deadline, err, sizeof err) < 0 ||
        serfrpc_event(rpc, UPDATE_EVENT, payload.data, payload.len, false, err, sizeof err) < 0) {
        fprintf(stderr, "serfhand announce: %s\n", err);
        rc = SH_EXIT_FAIL;
        goto out;
    }
    log_msg(LOG_LVL_INFO,
            "announce: bundle %s version %lld (manifest %.16s) at %s, expires %lld, "
            "signed by key %s, %zu bytes",
            p.name, p.version, p.hash, p.url, p.expires, id, payload.len);
    if (json) {
        print_json(&p, id, &payload, true);
    } else {
        struct buf until = {0};
        util_date(&until, p.expires, now);
        printf("announced bundle %s version %lld (manifest %s) at %s, valid until %s, signed by "
               "key %s (%zu of %d payload bytes); watch with `serfhand check --cluster`\n",
               p.name, p.version, p.hash, p.url, until.data, id, payload.len, UPDATE_PAYLOAD_MAX);
        buf_free(&until);
    }
    rc = SH_EXIT_OK;
out:
    if (rpc)
        serfrpc_close(rpc);
    sodium_free(kb); /* wipes */
    buf_free(&payload);
    minisign_seckey_free(sk);
    password_free(pw);
    trust_report_free(&rep);
    trust_keyset_free(&ks);
    return rc;
}

static const struct cmd_opt opts[] = {
    {.name = "-s",
     .kind = OPT_STR,
     .arg = "KEY.sec",
     .help = "a trusted bundle key to sign the pointer with",
     .required = true},
    {.name = "--url",
     .kind = OPT_STR,
     .arg = "BASE",
     .help = "where DIR is published",
     .required = true},
    {.name = "--ttl",
     .kind = OPT_DURATION,
     .arg = "DURATION",
     .help = "how long the announcement is valid (default 1h)",
     .min = 1,
     .max = 365LL * 86400},
    {.name = "--print", .kind = OPT_FLAG, .help = "print the payload instead of sending it"},
    {.name = "--no-check", .kind = OPT_FLAG, .help = "do not fetch BASE/MANIFEST.json first"},
    {.name = "--json", .kind = OPT_FLAG, .help = "one line of JSON on success"},
    {NULL},
};

const struct cmd_entry cmd_announce_entry = {
    .name = "announce",
    .summary = "announce a published bundle to the cluster (user event serfhand-update)",
    .opts = opts,
    .operands = "DIR",
    .min_operands = 1,
    .max_operands = 1,
    .description =
        "DIR is the signed bundle as published at BASE (BASE/MANIFEST.json, ...). Sends the\n"
        "user event serfhand-update with a pointer {name, version, manifest hash, BASE,\n"
        "expiry} signed by KEY (one of trust.keys) through the agent at serf.rpc_addr.\n"
        "First it fetches BASE/MANIFEST.json (update.timeout_ms, update.max_bytes) and\n"
        "sends nothing unless it is DIR's manifest: exit 1 when BASE does not answer\n"
        "HTTP 200, exit 3 when it serves another bundle, version or manifest.\n"
        "The announcement never outlives the bundle's expiry. --print prints the payload\n"
        "after the check. --no-check skips the fetch, for a BASE only the nodes can\n"
        "reach; each node still verifies what it fetches, so a wrong BASE only fails\n"
        "the rollout.\n"
        "--json: {sent, bundle, version, manifest, url, expires, key, payload_bytes,\n"
        "payload_max, payload}; errors stay on stderr.",
    .exits = "  0 sent (or printed)\n"
             "  1 BASE does not serve DIR (no HTTP 200), the pointer is too long, a wrong\n"
             "    password, or the agent is down or refused the event\n"
             "  2 usage, configuration, an unreadable key\n"
             "  3 DIR does not verify, KEY is not in trust.keys, or BASE serves another\n"
             "    bundle, version or manifest",
    .exec = exec_announce,
    .needs_config = true,
};
