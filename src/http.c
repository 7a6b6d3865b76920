/*
 * http.c: one HTTP(S) request with libcurl, for the factomd client (lfactomd.c)
 * and bundle downloads. libcurl is dlopen()ed on the first request, so the many
 * handler runs that make no HTTP call never pay its ~8 ms of loading.
 */
#define CURL_DISABLE_TYPECHECK 1 /* we call through pointers, not the macros */
#include <curl/curl.h>

#include <dlfcn.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "serfhand.h"

/* The few libcurl entry points we use, resolved once per process. The handle
 * is process-wide (a shared library), not per-Lua-state context. */
static struct {
    void *dl;
    CURLcode (*global_init)(long);
    CURL *(*easy_init)(void);
    CURLcode (*easy_setopt)(CURL *, CURLoption, ...);
    CURLcode (*easy_perform)(CURL *);
    CURLcode (*easy_getinfo)(CURL *, CURLINFO, ...);
    void (*easy_cleanup)(CURL *);
    const char *(*easy_strerror)(CURLcode);
    struct curl_slist *(*slist_append)(struct curl_slist *, const char *);
    void (*slist_free_all)(struct curl_slist *);
} cu;

bool http_loaded(void)
{
    return cu.dl != NULL;
}

static int load_curl(char *err, size_t errlen)
{
    if (cu.dl)
        return 0;
    void *dl = dlopen("libcurl.so.4", RTLD_NOW | RTLD_LOCAL);
    if (!dl) {
        util_errf(err, errlen, "libcurl not available: %s", dlerror());
        return -1;
    }
#define SYM(field, name)                                                                           \
    do {                                                                                           \
        *(void **)&cu.field = dlsym(dl, name);                                                     \
        if (!cu.field) {                                                                           \
            util_errf(err, errlen, "libcurl lacks %s", name);                                      \
            goto fail;                                                                             \
        }                                                                                          \
    } while (0)
    SYM(global_init, "curl_global_init");
    SYM(easy_init, "curl_easy_init");
    SYM(easy_setopt, "curl_easy_setopt");
    SYM(easy_perform, "curl_easy_perform");
    SYM(easy_getinfo, "curl_easy_getinfo");
    SYM(easy_cleanup, "curl_easy_cleanup");
    SYM(easy_strerror, "curl_easy_strerror");
    SYM(slist_append, "curl_slist_append");
    SYM(slist_free_all, "curl_slist_free_all");
#undef SYM
    if (cu.global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        util_errf(err, errlen, "curl_global_init failed");
        goto fail;
    }
    /* With CURLOPT_NOSIGNAL libcurl no longer ignores SIGPIPE itself. */
    signal(SIGPIPE, SIG_IGN);
    cu.dl = dl;
    return 0;
fail:
    memset(&cu, 0, sizeof cu);
    dlclose(dl);
    return -1;
}

struct sink {
    struct buf *out;
    size_t max, mem_max;
    bool too_big, no_memory;
};

static size_t on_data(char *p, size_t size, size_t n, void *ud)
{
    struct sink *s = ud;
    size_t len = size * n;
    if (len > s->max - s->out->len) { /* out->len <= max always holds */
        s->too_big = true;
        return 0; /* anything but len aborts with CURLE_WRITE_ERROR */
    }
    size_t need = s->out->len + len + 1;
    if (s->mem_max && need > s->out->cap) {
        /* Grow by doubling, as buf_add would, but never past mem_max. */
        if (need > s->mem_max) {
            s->no_memory = true;
            return 0;
        }
        size_t cap = s->out->cap ? s->out->cap : 64;
        while (cap < need)
            cap = cap > s->mem_max / 2 ? s->mem_max : cap * 2;
        char *q = realloc(s->out->data, cap);
        if (!q) {
            s->no_memory = true;
            return 0;
        }
        s->out->data = q;
        s->out->cap = cap;
    }
    buf_add(s->out, p, len);
    return len;
}

static bool scheme_ok(const char *url)
{
    return strncasecmp(url, "http://", 7) == 0 || strncasecmp(url, "https://", 8) == 0;
}

/* The options every request gets; 0, or -1 if one that matters is refused. */
static int set_common(CURL *c, const struct http_req *req, long tmo, struct sink *sink,
                      struct curl_slist *hdrs, char *ebuf)
{
    long ctmo = req->connect_timeout_ms > 0 && req->connect_timeout_ms < tmo
                    ? req->connect_timeout_ms
                    : tmo;
    CURLcode rc = CURLE_OK;
#define OPT(o, v)                                                                                  \
    do {                                                                                           \
        if (rc == CURLE_OK)                                                                        \
            rc = cu.easy_setopt(c, o, v);                                                          \
    } while (0)
    OPT(CURLOPT_ERRORBUFFER, ebuf);
    OPT(CURLOPT_URL, req->url);
    OPT(CURLOPT_PROTOCOLS_STR, "http,https");
    OPT(CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    OPT(CURLOPT_FOLLOWLOCATION, 0L);
    OPT(CURLOPT_PROXY, ""); /* ignore http_proxy & co. from Serf's environment */
    OPT(CURLOPT_NOSIGNAL, 1L);
    OPT(CURLOPT_CONNECTTIMEOUT_MS, ctmo);
    OPT(CURLOPT_TIMEOUT_MS, tmo);
    OPT(CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)req->max_bytes);
    OPT(CURLOPT_WRITEFUNCTION, on_data);
    OPT(CURLOPT_WRITEDATA, sink);
    OPT(CURLOPT_USERAGENT, "serfhand/" SERFHAND_VERSION);
    OPT(CURLOPT_HTTPHEADER, hdrs);
    /* TLS is always verified: by the CA file (or the system's CAs), and by
     * the pinned key when one is set. With a pin and no CA file, the pin is
     * the check: factomd's own certificate is self-signed, so neither chain
     * nor name can verify, but a server without that very key is refused. */
    bool ca = req->ca_file && *req->ca_file, pin = req->pinned_pubkey && *req->pinned_pubkey;
    OPT(CURLOPT_SSL_VERIFYPEER, 1L);
    OPT(CURLOPT_SSL_VERIFYHOST, 2L);
    if (ca)
        OPT(CURLOPT_CAINFO, req->ca_file);
    if (pin) {
        OPT(CURLOPT_PINNEDPUBLICKEY, req->pinned_pubkey);
        if (!ca) {
            OPT(CURLOPT_SSL_VERIFYPEER, 0L);
            OPT(CURLOPT_SSL_VERIFYHOST, 0L);
        }
    }
    if (req->user && *req->user) {
        OPT(CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
        OPT(CURLOPT_USERNAME, req->user);
        OPT(CURLOPT_PASSWORD, req->password ? req->password : "");
    }
    if (req->body) {
        OPT(CURLOPT_POST, 1L);
        OPT(CURLOPT_POSTFIELDS, req->body);
        OPT(CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)req->body_len);
    } else {
        OPT(CURLOPT_HTTPGET, 1L);
    }
#undef OPT
    if (rc != CURLE_OK) {
        snprintf(ebuf, CURL_ERROR_SIZE, "setting options: %s", cu.easy_strerror(rc));
        return -1;
    }
    return 0;
}

static int request(const struct http_req *req, struct buf *out, long *status, char *err,
                   size_t errlen)
{
    char ebuf[CURL_ERROR_SIZE] = "";
    struct curl_slist *hdrs = NULL, *h;
    CURL *c = NULL;
    int ret = HTTP_ERROR;
    struct sink sink = {out, req->max_bytes, req->mem_max, false, false};

    *status = 0;
    out->len = 0;
    if (out->data)
        out->data[0] = '\0';
    if (!req->url || !scheme_ok(req->url)) {
        util_errf(err, errlen, "only http:// and https:// URLs are allowed");
        return HTTP_ERROR;
    }
    if (load_curl(err, errlen) < 0)
        return HTTP_ERROR;
    long tmo = req->timeout_ms > 0 ? req->timeout_ms : 1;
    if (req->deadline_ms > 0) { /* measured after loading libcurl */
        int64_t left = req->deadline_ms - util_mono_ms();
        if (left <= 0) {
            util_errf(err, errlen, "the deadline has passed");
            return HTTP_TIMEOUT;
        }
        if (left < tmo)
            tmo = (long)left;
    }
    if (!(c = cu.easy_init())) {
        util_errf(err, errlen, "curl_easy_init failed");
        return HTTP_ERROR;
    }
    char ctype[128];
    snprintf(ctype, sizeof ctype, "Content-Type: %s",
             req->content_type ? req->content_type : "application/json");
    const char *lines[] = {req->body ? ctype : NULL, "Expect:"};
    for (size_t i = 0; i < sizeof lines / sizeof lines[0]; i++) {
        if (!lines[i])
            continue;
        if (!(h = cu.slist_append(hdrs, lines[i]))) {
            util_errf(err, errlen, "out of memory for headers");
            goto out;
        }
        hdrs = h;
    }
    if (set_common(c, req, tmo, &sink, hdrs, ebuf) < 0) {
        util_errf(err, errlen, "%s", ebuf);
        goto out;
    }
    CURLcode rc = cu.easy_perform(c);
    if (rc == CURLE_OK) {
        cu.easy_getinfo(c, CURLINFO_RESPONSE_CODE, status);
        buf_add(out, "", 0); /* data is never NULL on success */
        ret = HTTP_OK;
    } else if (sink.no_memory) {
        util_errf(err, errlen, "response larger than the %zu bytes memory allows", req->mem_max);
        ret = HTTP_NO_MEMORY;
    } else if (rc == CURLE_OPERATION_TIMEDOUT) {
        util_errf(err, errlen, "timed out after %ld ms", tmo);
        ret = HTTP_TIMEOUT;
    } else if (sink.too_big || rc == CURLE_FILESIZE_EXCEEDED) {
        cu.easy_getinfo(c, CURLINFO_RESPONSE_CODE, status);
        util_errf(err, errlen, "response larger than %zu bytes", req->max_bytes);
        ret = HTTP_TOO_BIG;
    } else {
        util_errf(err, errlen, "%s", *ebuf ? ebuf : cu.easy_strerror(rc));
    }
out:
    cu.easy_cleanup(c);
    cu.slist_free_all(hdrs);
    if (ret != HTTP_OK)
        buf_free(out);
    return ret;
}

int http_post(const struct http_req *req, struct buf *body_out, long *status, char *err,
              size_t errlen)
{
    struct http_req r = *req;
    if (!r.body) {
        r.body = "";
        r.body_len = 0;
    }
    return request(&r, body_out, status, err, errlen);
}

int http_get(const struct http_req *req, struct buf *body_out, long *status, char *err,
             size_t errlen)
{
    struct http_req r = *req;
    r.body = NULL;
    r.body_len = 0;
    return request(&r, body_out, status, err, errlen);
}
