/*
 * update.c: the signed serfhand-update pointer {name, version, manifest
 * hash, base URL, expiry} (encoded by `announce`), and the host's handler of
 * the serfhand-update user event: check the pointer against trust.keys and
 * the active bundle and update.sources and, with update.auto, start a
 * detached `install` (one pending at a time).
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "serfhand.h"

/* ------------------------------------------------------------ pointer */

#define PTR_RAW 136 /* key id 8 + signature 64 + global signature 64 */
#define PTR_B64 182

static bool url_ok(const char *u, size_t n)
{
    if (!(n > 7 && strncmp(u, "http://", 7) == 0) && !(n > 8 && strncmp(u, "https://", 8) == 0))
        return false;
    for (size_t i = 0; i < n; i++)
        if (u[i] <= 0x20 || u[i] > 0x7e || u[i] == '"' || u[i] == '\\')
            return false;
    return u[n - 1] != '/';
}

static bool hex64(const char *s, size_t n)
{
    if (n != 64)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!isdigit((unsigned char)s[i]) && !(s[i] >= 'a' && s[i] <= 'f'))
            return false;
    return true;
}

/* Parse the compact body: exactly the keys n v h u e, no whitespace, no
 * escapes, strings printable, integers without sign or leading zero. */
static int body_parse(struct update_pointer *p, const char *s, size_t n, char *err, size_t errlen)
{
    static const char *const keys = "nvhue";
    unsigned seen = 0;
    size_t i = 1;
    memset(p, 0, sizeof *p);
    if (n < 2 || s[0] != '{' || s[n - 1] != '}')
        goto bad;
    while (i < n - 1) {
        if (s[i] != '"' || i + 4 >= n || s[i + 2] != '"' || s[i + 3] != ':')
            goto bad;
        const char *k = strchr(keys, s[i + 1]);
        if (!k || !s[i + 1])
            goto bad;
        unsigned bit = 1u << (k - keys);
        if (seen & bit)
            goto bad;
        seen |= bit;
        i += 4;
        bool is_str = *k == 'n' || *k == 'h' || *k == 'u';
        size_t vs = i;
        long long num = 0;
        if (is_str) {
            if (s[i] != '"')
                goto bad;
            vs = ++i;
            while (i < n - 1 && s[i] != '"') {
                if (s[i] == '\\')
                    goto bad;
                i++;
            }
            if (i >= n - 1)
                goto bad;
            i++; /* the closing quote */
        } else {
            while (i < n - 1 && isdigit((unsigned char)s[i]))
                i++;
            if (i == vs || i - vs > 18 || (s[vs] == '0' && i - vs > 1))
                goto bad;
            num = strtoll(s + vs, NULL, 10);
        }
        size_t vl = is_str ? i - 1 - vs : i - vs;
        switch (*k) {
        case 'n':
            if (vl >= sizeof p->name)
                goto bad;
            memcpy(p->name, s + vs, vl);
            if (!util_valid_name(p->name))
                goto bad;
            break;
        case 'h':
            if (!hex64(s + vs, vl))
                goto bad;
            memcpy(p->hash, s + vs, vl);
            break;
        case 'u':
            if (vl >= sizeof p->url || !url_ok(s + vs, vl))
                goto bad;
            memcpy(p->url, s + vs, vl);
            break;
        case 'v':
            if (num < 1)
                goto bad;
            p->version = num;
            break;
        default: p->expires = num;
        }
        if (s[i] == ',' && i + 1 < n - 1)
            i++;
        else if (i != n - 1)
            goto bad;
    }
    if (seen != 0x1f)
        goto bad;
    return 0;
bad:
    util_errf(err, errlen,
              "update pointer: malformed body (want compact JSON with exactly n, v, h, "
              "u, e)");
    return -1;
}

int update_pointer_encode(const struct update_pointer *p, const struct minisign_seckey *sk,
                          struct buf *out, char *err, size_t errlen)
{
    struct buf body = {0}, msg = {0}, sigtext = {0};
    struct minisign_sig sig = {0};
    uint8_t raw[PTR_RAW];
    char b64[PTR_B64 + 2];
    int rc = -1;
    if (!util_valid_name(p->name) || p->version < 1 || !hex64(p->hash, strlen(p->hash)) ||
        !url_ok(p->url, strlen(p->url)) || strlen(p->url) >= sizeof p->url) {
        util_errf(err, errlen,
                  "update pointer: invalid name, version, hash or URL (http:// or "
                  "https://, printable, no quotes or spaces, no trailing slash)");
        return -1;
    }
    buf_printf(&body, "{\"n\":\"%s\",\"v\":%lld,\"h\":\"%s\",\"u\":\"%s\",\"e\":%lld}", p->name,
               p->version, p->hash, p->url, p->expires);
    buf_printf(&msg, "%s%s", UPDATE_SIG_CONTEXT, body.data);
    if (minisign_sign(sk, msg.data, msg.len, body.data, "serfhand-update pointer", &sigtext, err,
                      errlen) < 0 ||
        minisign_sig_parse(&sig, sigtext.data, sigtext.len, err, errlen) < 0)
        goto out;
    memcpy(raw, sig.keyid, 8);
    memcpy(raw + 8, sig.sig, 64);
    memcpy(raw + 72, sig.global, 64);
    sodium_bin2base64(b64, sizeof b64, raw, sizeof raw, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    out->len = 0;
    buf_printf(out, "%s.%s", b64, body.data);
    rc = 0;
out:
    minisign_sig_free(&sig);
    buf_free(&body);
    buf_free(&msg);
    buf_free(&sigtext);
    return rc;
}

int update_pointer_decode(struct update_pointer *p, const char *payload, size_t len,
                          const struct trust_keyset *ks, char *keyid, char *err, size_t errlen)
{
    uint8_t raw[PTR_RAW];
    size_t rawlen = 0;
    char id[17] = "";
    memset(p, 0, sizeof *p);
    if (keyid)
        keyid[0] = 0;
    const char *dot = memchr(payload, '.', len);
    if (len > UPDATE_PAYLOAD_MAX || !dot || dot - payload != PTR_B64 ||
        sodium_base642bin(raw, sizeof raw, payload, PTR_B64, NULL, &rawlen, NULL,
                          sodium_base64_VARIANT_URLSAFE_NO_PADDING) != 0 ||
        rawlen != PTR_RAW) {
        util_errf(err, errlen, "update pointer: not a signed pointer (%zu bytes)", len);
        return -1;
    }
    const char *body = dot + 1;
    size_t blen = len - PTR_B64 - 1;
    for (size_t i = 0; i < blen; i++)
        if (body[i] < 0x20 || body[i] > 0x7e) {
            util_errf(err, errlen, "update pointer: unprintable byte in the body");
            return -1;
        }
    struct minisign_sig sig = {0};
    sig.legacy = false;
    memcpy(sig.keyid, raw, 8);
    memcpy(sig.sig, raw + 8, 64);
    memcpy(sig.global, raw + 72, 64);
    sig.trusted = xmalloc(blen + 1);
    memcpy(sig.trusted, body, blen);
    sig.trusted[blen] = 0;
    minisign_keyid_hex(sig.keyid, id);
    if (keyid)
        memcpy(keyid, id, 17);
    struct buf msg = {0};
    buf_addstr(&msg, UPDATE_SIG_CONTEXT);
    buf_add(&msg, body, blen);
    int rc = -1;
    bool known = false;
    char sub[256] = "";
    for (size_t i = 0; i < ks->n && rc < 0; i++) {
        if (memcmp(ks->keys[i].keyid, sig.keyid, 8) != 0)
            continue;
        known = true;
        if (minisign_sig_verify(&sig, &ks->keys[i], msg.data, msg.len, false, sub, sizeof sub) == 0)
            rc = 0;
    }
    if (rc < 0 && !known)
        util_errf(err, errlen, "update pointer: signed by key %s, which is not in trust.keys", id);
    else if (rc < 0)
        util_errf(err, errlen, "update pointer: signature by key %s: %s", id, sub);
    else
        rc = body_parse(p, body, blen, err, errlen);
    minisign_sig_free(&sig);
    buf_free(&msg);
    return rc;
}

/* ------------------------------------------------------------ sources */

/* A path segment "." or ".." (or one a server decodes to it), a query or a
 * fragment could make a URL that starts with an allowed prefix name another
 * place on the server, so a URL holding one is under no prefix. */
static bool url_escapes(const char *u)
{
    size_t n = strlen(u);
    for (size_t i = 0; i < n; i++) {
        if (u[i] == '?' || u[i] == '#' || u[i] == '\\')
            return true;
        if (u[i] == '%' && i + 2 < n && (u[i + 1] == '2' || u[i + 1] == '5') &&
            strchr("eEfFcC", u[i + 2]))
            return true; /* %2e ".", %2f "/", %5c "\\" */
        if (u[i] != '/')
            continue;
        size_t d = 0;
        while (i + 1 + d < n && u[i + 1 + d] == '.')
            d++;
        if ((d == 1 || d == 2) && (i + 1 + d == n || u[i + 1 + d] == '/'))
            return true;
    }
    return false;
}

int update_source_check(char *const *sources, size_t n, bool allow_http, const char *url, char *err,
                        size_t errlen)
{
    bool https = strncmp(url, "https://", 8) == 0;
    if (!https && !(allow_http && strncmp(url, "http://", 7) == 0)) {
        util_errf(err, errlen,
                  "%s is not https (plain http only with update.allow_http = true and an "
                  "http:// prefix in update.sources)",
                  url);
        return -1;
    }
    if (url_escapes(url)) {
        util_errf(err, errlen,
                  "%s holds a dot segment, an encoded dot, slash or backslash, a query or a "
                  "fragment, so it is under no prefix of update.sources",
                  url);
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        size_t pl = strlen(sources[i]);
        /* a prefix ends at a path boundary: "https://a.example/b" is not a
         * prefix of "https://a.example/bc" nor of "https://a.example.evil/" */
        if (pl > 0 && strncmp(url, sources[i], pl) == 0 &&
            (url[pl] == 0 || url[pl] == '/' || sources[i][pl - 1] == '/'))
            return 0;
    }
    util_errf(err, errlen, "%s is under no prefix of update.sources (%zu allowed)", url, n);
    return -1;
}

/* ------------------------------------------------------------ announcement */

/* At most one installer an announcement started waits or runs per node:
 * <state_dir>/update.pending, held with flock by the detached installer
 * (inherited as fd 3) until it exits. */
enum pending { PENDING_TAKEN, PENDING_BUSY, PENDING_ERROR };

static enum pending pending_lock(const struct config *cfg, int *fd, char *err, size_t errlen)
{
    struct buf path = {0};
    buf_printf(&path, "%s/update.pending", config_str(cfg, "state_dir"));
    *fd = open(path.data, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
    enum pending rc = PENDING_TAKEN;
    if (*fd < 0) {
        util_errf(err, errlen, "%s: %s", path.data, strerror(errno));
        rc = PENDING_ERROR;
    } else if (flock(*fd, LOCK_EX | LOCK_NB) < 0) {
        rc = errno == EWOULDBLOCK ? PENDING_BUSY : PENDING_ERROR;
        util_errf(err, errlen, "%s: %s", path.data,
                  rc == PENDING_BUSY ? "held by an installer started by an earlier announcement"
                                     : strerror(errno));
        close(*fd);
        *fd = -1;
    }
    buf_free(&path);
    return rc;
}

/* Start `serfhand [-c FILE] install ... URL` fully detached: double fork,
 * setsid, stdio on /dev/null, no other fds. The pid of the middle child is
 * reaped here; the installer is reparented. */
static int spawn_install(const struct config *cfg, const struct update_pointer *p, int lockfd,
                         char *err, size_t errlen)
{
    char self[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n <= 0) {
        util_errf(err, errlen, "cannot find the serfhand binary: %s", strerror(errno));
        return -1;
    }
    self[n] = 0;
    const char *argv[12];
    int a = 0;
    argv[a++] = "serfhand";
    if (cfg->file) {
        argv[a++] = "-c";
        argv[a++] = cfg->file;
    }
    argv[a++] = "install";
    argv[a++] = "--wait";
    argv[a++] = "300";
    argv[a++] = "--manifest-hash";
    argv[a++] = p->hash;
    argv[a++] = "--expect-name";
    argv[a++] = p->name;
    argv[a++] = p->url;
    argv[a] = NULL;
    pid_t pid = fork();
    if (pid < 0) {
        util_errf(err, errlen, "fork: %s", strerror(errno));
        return -1;
    }
    if (pid == 0) {
        if (setsid() < 0)
            _exit(1);
        pid_t q = fork();
        if (q != 0)
            _exit(q < 0 ? 1 : 0);
        int lk = fcntl(lockfd, F_DUPFD, 10); /* out of the way of stdio and 3 */
        int fd = open("/dev/null", O_RDWR);
        if (fd < 0 || lk < 0)
            _exit(1);
        dup2(fd, 0);
        dup2(fd, 1);
        dup2(fd, 2);
        if (dup2(lk, 3) < 0) /* the pending lock, kept open across exec */
            _exit(1);
        if (close_range(4, ~0U, 0) < 0) { /* Linux >= 5.9; else one by one */
            long maxfd = sysconf(_SC_OPEN_MAX);
            for (long i = 4; i < (maxfd > 0 && maxfd < 65536 ? maxfd : 65536); i++)
                close((int)i);
        }
        if (chdir("/") < 0)
            _exit(1);
        unsetenv("SERFHAND_LOG_FD");
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        signal(SIGPIPE, SIG_DFL);
        execv(self, (char *const *)argv);
        _exit(127);
    }
    int status;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        util_errf(err, errlen, "the detached installer could not be started");
        return -1;
    }
    return 0;
}

enum update_result update_announcement(const struct config *cfg, const char *payload, size_t len)
{
    struct trust_keyset ks = {0};
    struct update_pointer p;
    struct bundle b = {0};
    bool bopen = false;
    char err[1024], keyid[17];
    enum update_result rc = UPDATE_REFUSED;
    b.dirfd = -1;
    if (trust_keyset_load(&ks, cfg, err, sizeof err) < 0) {
        log_msg(LOG_LVL_ERROR, "update announcement refused: %s", err);
        rc = UPDATE_ERROR;
        goto out;
    }
    if (update_pointer_decode(&p, payload, len, &ks, keyid, err, sizeof err) < 0) {
        log_msg(LOG_LVL_ERROR, "update announcement refused: %s", err);
        goto out;
    }
    long long now = (long long)time(NULL);
    if (now >= p.expires) {
        log_msg(LOG_LVL_ERROR,
                "update announcement refused: bundle %s version %lld, announcement "
                "expired at %lld (now %lld)",
                p.name, p.version, p.expires, now);
        goto out;
    }
    size_t nsrc = 0;
    char *const *src = config_list(cfg, "update.sources", &nsrc);
    if (update_source_check(src, nsrc, config_bool(cfg, "update.allow_http"), p.url, err,
                            sizeof err) < 0) {
        log_msg(LOG_LVL_ERROR, "update announcement of bundle %s version %lld dropped: %s", p.name,
                p.version, err);
        goto out;
    }
    const char *dir = config_str(cfg, "bundle");
    if (bundle_open(&b, dir, cfg, true, err, sizeof err) < 0) {
        log_msg(LOG_LVL_ERROR,
                "update announcement for bundle %s version %lld refused: the active "
                "bundle cannot be verified, so its name and version are unknown (%s); install "
                "by hand with `serfhand install %s`",
                p.name, p.version, err, p.url);
        goto out;
    }
    bopen = true;
    long long active = b.version, highest = 0;
    if (bundle_highest_version(config_str(cfg, "state_dir"), &highest, err, sizeof err) < 0)
        highest = active;
    long long cur = highest > active ? highest : active;
    if (strcmp(p.name, b.name) != 0) {
        log_msg(LOG_LVL_ERROR,
                "update announcement refused: it is for bundle %s, this node runs "
                "bundle %s",
                p.name, b.name);
        goto out;
    }
    if (p.version == cur) {
        log_msg(LOG_LVL_INFO,
                "update announcement of bundle %s version %lld: already at this "
                "version, nothing to do",
                p.name, p.version);
        rc = UPDATE_OK;
        goto out;
    }
    if (p.version < cur) {
        log_msg(LOG_LVL_ERROR,
                "update announcement refused: version %lld of bundle %s is below "
                "this node's version %lld (downgrades are only done by an operator)",
                p.version, p.name, cur);
        goto out;
    }
    rc = UPDATE_OK;
    if (!config_bool(cfg, "update.auto")) {
        log_msg(LOG_LVL_INFO,
                "update announcement: bundle %s version %lld (manifest %.16s) at %s, "
                "signed by key %s; update.auto is off, so nothing is installed: an operator can "
                "run `serfhand install %s`",
                p.name, p.version, p.hash, p.url, keyid, p.url);
        goto out;
    }
    int lockfd;
    enum pending pl = pending_lock(cfg, &lockfd, err, sizeof err);
    if (pl != PENDING_TAKEN) {
        log_msg(pl == PENDING_BUSY ? LOG_LVL_WARN : LOG_LVL_ERROR,
                "update announcement of bundle %s version %lld dropped: %s%s", p.name, p.version,
                err, pl == PENDING_BUSY ? " (at most one pending installer per node)" : "");
        rc = pl == PENDING_BUSY ? UPDATE_OK : UPDATE_FAILED;
        goto out;
    }
    int sp = spawn_install(cfg, &p, lockfd, err, sizeof err);
    close(lockfd); /* the installer holds the lock now */
    if (sp < 0) {
        log_msg(LOG_LVL_ERROR, "update announcement: bundle %s version %lld: %s", p.name, p.version,
                err);
        rc = UPDATE_FAILED;
        goto out;
    }
    log_msg(LOG_LVL_INFO,
            "update announcement: bundle %s version %lld (manifest %.16s) signed by "
            "key %s: detached install from %s started (update.auto)",
            p.name, p.version, p.hash, keyid, p.url);
out:
    if (bopen)
        bundle_close(&b);
    trust_keyset_free(&ks);
    return rc;
}
