/*
 * log.c: serfhand's log. While a query is handled, stdout and stderr are the
 * query's response, so logs go to syslog, a file or an inherited fd; stderr
 * only when the caller says it is safe. Control characters are escaped so one
 * message is always one line; log.format = "json" makes each line one JSON
 * object (valid whatever bytes a handler logs) for log shippers.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "serfhand.h"

enum sink { SINK_SYSLOG, SINK_FD, SINK_NONE };
enum format { FMT_TEXT, FMT_JSON };

/* The log is process-wide by nature (one process handles one event), like
 * syslog's own state. */
static struct {
    enum sink sink;
    int fd;
    bool own_fd;
    int level;
    enum format format;
    char ctx[128];
    char bundle[160]; /* "name@version" of the open bundle, or "" */
} lg = {SINK_FD, 2, false, LOG_LVL_INFO, FMT_TEXT, "", ""};

static const char *const level_names[] = {"debug", "info", "warn", "error"};

static int log_level_parse(const char *s)
{
    for (int i = 0; i < 4; i++)
        if (strcmp(s, level_names[i]) == 0)
            return i;
    return -1;
}

void log_set_context(const char *ctx)
{
    snprintf(lg.ctx, sizeof lg.ctx, "%s", ctx ? ctx : "");
}

void log_set_bundle(const char *name, long long version)
{
    if (name && version > 0) /* 0: an unsigned working copy, no version */
        snprintf(lg.bundle, sizeof lg.bundle, "%s@%lld", name, version);
    else
        lg.bundle[0] = '\0';
}

void log_open(const struct config *c, bool quiet_stdio)
{
    const char *target = config_str(c, "log.target");
    const char *env = getenv("SERFHAND_LOG_FD"); /* set by `serfhand run` */
    int lvl = log_level_parse(config_str(c, "log.level"));
    lg.level = lvl < 0 ? LOG_LVL_INFO : lvl;
    lg.format = strcmp(config_str(c, "log.format"), "json") == 0 ? FMT_JSON : FMT_TEXT;
    log_close();
    if (env && *env) {
        lg.sink = SINK_FD;
        lg.fd = (int)strtol(env, NULL, 10); /* atoi's meaning: not a number is 0 */
    } else if (strcmp(target, "syslog") == 0) {
        lg.sink = SINK_SYSLOG;
        openlog("serfhand", LOG_PID | LOG_NDELAY, LOG_DAEMON);
    } else if (strcmp(target, "stderr") == 0) {
        lg.sink = quiet_stdio ? SINK_SYSLOG : SINK_FD;
        lg.fd = 2;
        if (quiet_stdio)
            openlog("serfhand", LOG_PID | LOG_NDELAY, LOG_DAEMON);
    } else {
        /* O_NONBLOCK: a FIFO with no reader must not hang the open (it
         * fails with ENXIO and the log goes to syslog); writes block again. */
        int fd =
            open(target, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOCTTY | O_NONBLOCK, 0640);
        if (fd >= 0)
            (void)fcntl(fd, F_SETFL, O_APPEND);
        if (fd >= 0) {
            lg.sink = SINK_FD;
            lg.fd = fd;
            lg.own_fd = true;
        } else {
            lg.sink = SINK_SYSLOG;
            openlog("serfhand", LOG_PID | LOG_NDELAY, LOG_DAEMON);
            syslog(LOG_ERR, "cannot open log file %s: %s", target, strerror(errno));
        }
    }
}

void log_close(void)
{
    if (lg.own_fd)
        close(lg.fd);
    if (lg.sink == SINK_SYSLOG)
        closelog();
    lg.own_fd = false;
    lg.sink = SINK_FD;
    lg.fd = 2;
}

/* Escape control characters and DEL; keep UTF-8 bytes as they are. */
static void escape(struct buf *out, const char *s, size_t n)
{
    for (const char *end = s + n; s < end; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '\n')
            buf_addstr(out, "\\n");
        else if (c == '\t')
            buf_addstr(out, "\\t");
        else if (c < 0x20 || c == 0x7f)
            buf_printf(out, "\\x%02x", c);
        else
            buf_add(out, s, 1);
    }
}

/* A fixed-size output for the JSON writers, which log_signal_safe uses too:
 * no allocation. Pieces are whole escapes and characters; from the first
 * piece that does not fit on, everything is dropped (cut = true). */
struct out {
    char *p;
    size_t n, cap;
    bool cut;
};

static void out_add(struct out *o, const char *s, size_t n)
{
    if (o->cut || o->n + n > o->cap) {
        o->cut = true;
        return;
    }
    memcpy(o->p + o->n, s, n);
    o->n += n;
}

static void out_str(struct out *o, const char *s)
{
    out_add(o, s, strlen(s));
}

static void out_uint(struct out *o, unsigned long long v, int width)
{
    char d[24];
    int n = 0;
    do {
        d[sizeof d - 1 - n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v || n < width);
    out_add(o, d + sizeof d - n, (size_t)n);
}

/* The length of the well-formed UTF-8 sequence at s (RFC 3629: no
 * overlong forms, no surrogates, at most U+10FFFF), or 0. */
static size_t utf8_len(const unsigned char *s, size_t n)
{
    unsigned char c = s[0];
    size_t len = c >= 0xc2 && c <= 0xdf   ? 2
                 : c >= 0xe0 && c <= 0xef ? 3
                 : c >= 0xf0 && c <= 0xf4 ? 4
                                          : 0;
    if (len == 0 || len > n)
        return 0;
    for (size_t i = 1; i < len; i++)
        if ((s[i] & 0xc0) != 0x80)
            return 0;
    if ((c == 0xe0 && s[1] < 0xa0) || (c == 0xed && s[1] > 0x9f) || (c == 0xf0 && s[1] < 0x90) ||
        (c == 0xf4 && s[1] > 0x8f))
        return 0;
    return len;
}

/* s[0..n) as a JSON string: quotes, backslashes, control bytes and DEL
 * escaped, each byte of ill-formed UTF-8 replaced by U+FFFD. */
static void out_json_str(struct out *o, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    out_add(o, "\"", 1);
    for (size_t i = 0; i < n;) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x80) {
            size_t len = utf8_len((const unsigned char *)s + i, n - i);
            if (len)
                out_add(o, s + i, len);
            else
                out_add(o, "\xef\xbf\xbd", 3);
            i += len ? len : 1;
            continue;
        }
        if (c == '"' || c == '\\') {
            char e[2] = {'\\', (char)c};
            out_add(o, e, 2);
        } else if (c == '\n') {
            out_add(o, "\\n", 2);
        } else if (c == '\t') {
            out_add(o, "\\t", 2);
        } else if (c < 0x20 || c == 0x7f) {
            char e[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
            out_add(o, e, 6);
        } else {
            out_add(o, s + i, 1);
        }
        i++;
    }
    out_add(o, "\"", 1);
}

/* "2026-12-05T06:22:10.123Z" from CLOCK_REALTIME, without gmtime_r (not
 * async-signal-safe): days to a civil date (H. Hinnant's algorithm). */
static void out_ts(struct out *o)
{
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    long long secs = (long long)now.tv_sec, days = secs / 86400, rem = secs % 86400;
    if (rem < 0)
        rem += 86400, days--;
    days += 719468;
    long long era = (days >= 0 ? days : days - 146096) / 146097;
    unsigned doe = (unsigned)(days - era * 146097);
    unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100), mp = (5 * doy + 2) / 153;
    unsigned d = doy - (153 * mp + 2) / 5 + 1, m = mp < 10 ? mp + 3 : mp - 9;
    long long y = (long long)yoe + era * 400 + (m <= 2);
    out_add(o, "\"", 1);
    out_uint(o, (unsigned long long)(y < 0 ? 0 : y), 4);
    out_add(o, "-", 1);
    out_uint(o, m, 2);
    out_add(o, "-", 1);
    out_uint(o, d, 2);
    out_add(o, "T", 1);
    out_uint(o, (unsigned long long)(rem / 3600), 2);
    out_add(o, ":", 1);
    out_uint(o, (unsigned long long)(rem / 60 % 60), 2);
    out_add(o, ":", 1);
    out_uint(o, (unsigned long long)(rem % 60), 2);
    out_add(o, ".", 1);
    out_uint(o, (unsigned long long)(now.tv_nsec / 1000000), 3);
    out_add(o, "Z\"", 2);
}

/* A string field, or null when s is empty. */
static void out_field(struct out *o, const char *key, const char *s)
{
    out_str(o, key);
    if (*s)
        out_json_str(o, s, strlen(s));
    else
        out_str(o, "null");
}

/* One JSON object, keys always in this order:
 * {"ts":...,"level":...,"pid":...,"event":...,"bundle":...,"msg":...}.
 * The caller leaves room for the fixed fields; a message that does not fit
 * is cut at a character, and the object is still closed and valid. */
static void out_json_line(struct out *o, enum log_level lvl, const char *msg, size_t n)
{
    out_str(o, "{\"ts\":");
    out_ts(o);
    out_str(o, ",\"level\":\"");
    out_str(o, level_names[lvl]);
    out_str(o, "\",\"pid\":");
    out_uint(o, (unsigned long long)getpid(), 1);
    out_field(o, ",\"event\":", lg.ctx);
    out_field(o, ",\"bundle\":", lg.bundle);
    out_str(o, ",\"msg\":");
    size_t cap = o->cap;
    o->cap = o->cut || cap < o->n + 2 ? o->n : cap - 2; /* room to close the string */
    out_json_str(o, msg, n);
    o->cap = cap;
    if (o->cut) {
        o->cut = false;
        out_add(o, "\"", 1);
    }
    out_str(o, "}");
}

static void log_json(enum log_level lvl, const char *msg, size_t n)
{
    size_t cap = n * 6 + sizeof lg.ctx * 6 + sizeof lg.bundle * 6 + 128;
    struct out o = {xmalloc(cap + 1), 0, cap, false};
    out_json_line(&o, lvl, msg, n);
    if (lg.sink == SINK_SYSLOG) {
        static const int pri[] = {LOG_DEBUG, LOG_INFO, LOG_WARNING, LOG_ERR};
        syslog(pri[lvl], "%.*s", (int)o.n, o.p);
    } else {
        o.p[o.n++] = '\n'; /* cap + 1 */
        (void)!write(lg.fd, o.p, o.n);
    }
    free(o.p);
}

/* One line of n bytes (NULs included) at lvl, in the configured format. */
static void log_emit(enum log_level lvl, const char *msg, size_t n)
{
    if (lg.format == FMT_JSON) {
        log_json(lvl, msg, n);
        return;
    }
    struct buf line = {0};
    if (lg.sink == SINK_FD) {
        char ts[40];
        struct timespec now;
        struct tm tm;
        clock_gettime(CLOCK_REALTIME, &now);
        gmtime_r(&now.tv_sec, &tm);
        strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%S", &tm);
        buf_printf(&line, "%s.%03ldZ serfhand[%ld] %s: ", ts, now.tv_nsec / 1000000, (long)getpid(),
                   level_names[lvl]);
    }
    if (*lg.ctx)
        buf_printf(&line, "%s: ", lg.ctx);
    escape(&line, msg, n);
    if (lg.sink == SINK_SYSLOG) {
        static const int pri[] = {LOG_DEBUG, LOG_INFO, LOG_WARNING, LOG_ERR};
        syslog(pri[lvl], "%s", line.data);
    } else {
        buf_add(&line, "\n", 1);
        (void)!write(lg.fd, line.data, line.len);
    }
    buf_free(&line);
}

static void log_vmsg(enum log_level lvl, const char *fmt, va_list ap)
{
    if ((int)lvl < lg.level || lg.sink == SINK_NONE)
        return;
    va_list ap2;
    va_copy(ap2, ap);
    int n = vsnprintf(NULL, 0, fmt, ap2);
    va_end(ap2);
    if (n < 0)
        return;
    char *raw = xmalloc((size_t)n + 1);
    vsnprintf(raw, (size_t)n + 1, fmt, ap);
    log_emit(lvl, raw, (size_t)n);
    free(raw);
}

void log_bytes(enum log_level lvl, const char *msg, size_t n)
{
    if ((int)lvl < lg.level || lg.sink == SINK_NONE)
        return;
    log_emit(lvl, msg, n);
}

void log_msg(enum log_level lvl, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    log_vmsg(lvl, fmt, ap);
    va_end(ap);
}

/* Only async-signal-safe calls: write(2), or one datagram to /dev/log. */
void log_signal_safe(const char *msg)
{
    char line[512];
    size_t n = 0;
    if (lg.format == FMT_JSON) {
        struct out o = {line, 0, sizeof line - 1, false}; /* 1: the newline */
        size_t mlen = strnlen(msg, sizeof line);          /* the rest is cut anyway */
        if (lg.sink == SINK_SYSLOG)
            out_str(&o, "<27>serfhand: ");
        out_json_line(&o, LOG_LVL_ERROR, msg, mlen);
        n = o.n;
        if (lg.sink == SINK_FD)
            line[n++] = '\n';
        goto send;
    }
    const char *prefix = lg.sink == SINK_SYSLOG ? "<27>serfhand: " : "serfhand: error: ";
    for (const char *p = prefix; *p && n < sizeof line - 2; p++)
        line[n++] = *p;
    for (const char *p = lg.ctx; *p && n < sizeof line - 2; p++)
        line[n++] = *p;
    if (*lg.ctx && n < sizeof line - 4) {
        line[n++] = ':';
        line[n++] = ' ';
    }
    for (const char *p = msg; *p && n < sizeof line - 2; p++)
        line[n++] = *p;
    if (lg.sink == SINK_FD)
        line[n++] = '\n';
send:
    if (lg.sink == SINK_SYSLOG) {
        struct sockaddr_un sa = {.sun_family = AF_UNIX, .sun_path = "/dev/log"};
        int s = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        if (s >= 0) {
            (void)!sendto(s, line, n, 0, (struct sockaddr *)&sa, sizeof sa);
            close(s);
        }
    } else if (lg.sink == SINK_FD) {
        (void)!write(lg.fd, line, n);
    }
}
