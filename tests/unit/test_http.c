/* test_http.c: http.c against a one-shot HTTP server forked per case on a
 * kernel-chosen loopback port: headers sent, status, caps, timeouts, refused
 * schemes, proxies ignored, no redirects, libcurl loaded lazily. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "serfhand.h"
#include "t.h"

static char got_req[8192]; /* the request the last server saw (via a pipe) */

/* Listen on 127.0.0.1:0; returns the fd and the URL. */
static int listen_any(char *url, size_t n)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) < 0 || listen(fd, 4) < 0 ||
        getsockname(fd, (struct sockaddr *)&a, &len) < 0)
        abort();
    snprintf(url, n, "http://127.0.0.1:%d/v2", ntohs(a.sin_port));
    return fd;
}

/* Fork a server that answers one connection with head + nbody bytes of 'x'. */
static pid_t serve_once(int lfd, const char *head, size_t nbody, int *rpipe)
{
    int p[2];
    if (pipe(p) < 0)
        abort();
    pid_t pid = fork();
    if (pid == 0) {
        close(p[0]);
        int c = accept(lfd, NULL, NULL);
        char req[8192];
        ssize_t r = 0, k;
        /* read the head and (small) body: until the request has gone quiet */
        struct timeval tv = {0, 200000};
        setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        while (r < (ssize_t)sizeof req - 1 &&
               (k = read(c, req + r, sizeof req - 1 - (size_t)r)) > 0) {
            r += k;
            req[r] = 0;
            char *e = strstr(req, "\r\n\r\n");
            if (e && (strstr(req, "GET ") == req || strlen(e + 4) > 0))
                break;
        }
        (void)!write(p[1], req, (size_t)(r > 0 ? r : 0));
        close(p[1]);
        (void)!write(c, head, strlen(head));
        char chunk[4096];
        memset(chunk, 'x', sizeof chunk);
        signal(SIGPIPE, SIG_IGN);
        for (size_t sent = 0; sent < nbody;) {
            size_t m = nbody - sent < sizeof chunk ? nbody - sent : sizeof chunk;
            if (write(c, chunk, m) <= 0)
                break;
            sent += m;
        }
        close(c);
        _exit(0);
    }
    close(p[1]);
    *rpipe = p[0];
    return pid;
}

static void finish_server(pid_t pid, int rfd)
{
    ssize_t n = read(rfd, got_req, sizeof got_req - 1);
    got_req[n > 0 ? n : 0] = 0;
    close(rfd);
    kill(pid, SIGTERM);
    waitpid(pid, NULL, 0);
}

int main(void)
{
    char err[256], url[64];
    struct buf body = {0};
    long status = -1;
    struct http_req req = {.timeout_ms = 2000, .max_bytes = 1 << 20};

    T_OK(!http_loaded(), "libcurl not loaded at start");
    const char *bad[] = {"ftp://127.0.0.1/x", "file:///etc/passwd", "gopher://x", "",
                         "127.0.0.1:80"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        req.url = bad[i];
        T_OK(http_get(&req, &body, &status, err, sizeof err) == HTTP_ERROR, bad[i]);
        T_OK(strstr(err, "only http") != NULL, "scheme refused with a clear message");
    }
    req.url = NULL;
    T_OK(http_post(&req, &body, &status, err, sizeof err) == HTTP_ERROR, "NULL url");
    T_OK(!http_loaded(), "refused URLs do not load libcurl");

    /* a plain reply; check what was sent */
    setenv("http_proxy", "http://127.0.0.1:9/", 1); /* must be ignored */
    setenv("HTTP_PROXY", "http://127.0.0.1:9/", 1);
    int lfd = listen_any(url, sizeof url), rfd;
    pid_t pid = serve_once(
        lfd, "HTTP/1.1 200 OK\r\nContent-Length: 11\r\nConnection: close\r\n\r\n{\"ok\":true}", 0,
        &rfd);
    req.url = url;
    req.body = "{\"a\":1}";
    req.body_len = 7;
    req.user = "alice";
    req.password = "pw";
    int rc = http_post(&req, &body, &status, err, sizeof err);
    finish_server(pid, rfd);
    T_OK(rc == HTTP_OK, err);
    T_OK(status == 200, "status 200");
    T_STR(body.data, "{\"ok\":true}", "body");
    T_OK(http_loaded(), "libcurl loaded after a request");
    T_OK(strncmp(got_req, "POST /v2 HTTP/1.1\r\n", 19) == 0, "POST line (no proxy)");
    T_OK(strstr(got_req, "\r\nContent-Type: application/json\r\n") != NULL, "content type");
    T_OK(strstr(got_req, "\r\nUser-Agent: serfhand/" SERFHAND_VERSION "\r\n") != NULL,
         "user agent");
    T_OK(strstr(got_req, "\r\nAuthorization: Basic YWxpY2U6cHc=\r\n") != NULL, "basic auth");
    T_OK(strstr(got_req, "Expect:") == NULL, "no Expect header");
    T_OK(strstr(got_req, "\r\n\r\n{\"a\":1}") != NULL, "body sent");
    buf_free(&body);

    /* GET, no auth, an error status is not a transport error; no redirect */
    req.user = NULL;
    pid = serve_once(lfd,
                     "HTTP/1.1 302 Found\r\nLocation: ftp://127.0.0.1/\r\nContent-Length: "
                     "0\r\nConnection: close\r\n\r\n",
                     0, &rfd);
    rc = http_get(&req, &body, &status, err, sizeof err);
    finish_server(pid, rfd);
    T_OK(rc == HTTP_OK && status == 302, "302 returned, not followed");
    T_OK(body.data && body.len == 0, "empty body is an empty string");
    T_OK(strncmp(got_req, "GET /v2 HTTP/1.1\r\n", 18) == 0, "GET line");
    T_OK(strstr(got_req, "Authorization") == NULL, "no auth without a user");
    buf_free(&body);

    /* size cap: with Content-Length, and without (read until close) */
    req.max_bytes = 1000;
    pid = serve_once(lfd, "HTTP/1.1 200 OK\r\nContent-Length: 100000\r\nConnection: close\r\n\r\n",
                     100000, &rfd);
    rc = http_get(&req, &body, &status, err, sizeof err);
    finish_server(pid, rfd);
    T_OK(rc == HTTP_TOO_BIG, "over the cap (Content-Length)");
    T_OK(strstr(err, "larger than 1000 bytes") != NULL, err);
    T_OK(body.data == NULL, "body freed on error");
    pid = serve_once(lfd, "HTTP/1.0 200 OK\r\n\r\n", 100000, &rfd);
    rc = http_get(&req, &body, &status, err, sizeof err);
    finish_server(pid, rfd);
    T_OK(rc == HTTP_TOO_BIG, "over the cap (no length)");
    pid = serve_once(lfd, "HTTP/1.0 200 OK\r\n\r\n", 1000, &rfd);
    rc = http_get(&req, &body, &status, err, sizeof err);
    finish_server(pid, rfd);
    T_OK(rc == HTTP_OK && body.len == 1000, "exactly the cap is fine");
    buf_free(&body);

    /* the memory bound (the run's cap) comes before max_bytes; the buffer
     * never holds more than it, also when the body fits */
    req.max_bytes = 1 << 20;
    req.mem_max = 5000;
    pid = serve_once(lfd, "HTTP/1.0 200 OK\r\n\r\n", 100000, &rfd);
    rc = http_get(&req, &body, &status, err, sizeof err);
    finish_server(pid, rfd);
    T_OK(rc == HTTP_NO_MEMORY, "over the memory bound is HTTP_NO_MEMORY");
    T_OK(strstr(err, "5000 bytes memory allows") != NULL, err);
    T_OK(body.data == NULL, "body freed on error");
    pid = serve_once(lfd, "HTTP/1.0 200 OK\r\n\r\n", 4000, &rfd);
    rc = http_get(&req, &body, &status, err, sizeof err);
    finish_server(pid, rfd);
    T_OK(rc == HTTP_OK && body.len == 4000, "a body under the memory bound");
    T_OK(body.cap <= 5000, "its buffer stays within the bound");
    buf_free(&body);
    req.mem_max = 0;
    req.max_bytes = 1 << 20;

    /* timeout: the listener accepts (kernel backlog) but nobody answers */
    req.timeout_ms = 150;
    int64_t t0 = util_mono_ms();
    rc = http_get(&req, &body, &status, err, sizeof err);
    int64_t dt = util_mono_ms() - t0;
    T_OK(rc == HTTP_TIMEOUT, "timeout kind");
    T_OK(dt >= 140 && dt < 400, "returns near the timeout");
    T_OK(strstr(err, "timed out after 150 ms") != NULL, err);
    /* the deadline cuts the timeout; a passed deadline fails at once */
    req.timeout_ms = 5000;
    req.deadline_ms = util_mono_ms() + 100;
    t0 = util_mono_ms();
    rc = http_get(&req, &body, &status, err, sizeof err);
    dt = util_mono_ms() - t0;
    T_OK(rc == HTTP_TIMEOUT && dt < 300, "deadline bounds the timeout");
    req.deadline_ms = util_mono_ms() - 1;
    T_OK(http_get(&req, &body, &status, err, sizeof err) == HTTP_TIMEOUT, "deadline passed");
    req.deadline_ms = 0;
    close(lfd);

    /* connection refused: the port just closed */
    rc = http_get(&req, &body, &status, err, sizeof err);
    T_OK(rc == HTTP_ERROR && status == 0, "connection refused is HTTP_ERROR");
    T_OK(strstr(err, "onnect") != NULL, err);
    return t_done();
}
