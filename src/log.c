/*
 * log.c: serfhand's log. While a query is handled, stdout and stderr are the
 * query's response, so logs go to syslog, a file or an inherited fd; stderr
 * only when the caller says it is safe. Control characters are escaped so one
 * message is always one line.
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

/* The log is process-wide by nature (one process handles one event), like
 * syslog's own state. */
static struct {
    enum sink sink;
    int fd;
    bool own_fd;
    int level;
    char ctx[128];
} lg = {SINK_FD, 2, false, LOG_LVL_INFO, ""};

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

void log_open(const struct config *c, bool quiet_stdio)
{
    const char *target = config_str(c, "log.target");
    const char *env = getenv("SERFHAND_LOG_FD"); /* set by `serfhand run` */
    int lvl = log_level_parse(config_str(c, "log.level"));
    lg.level = lvl < 0 ? LOG_LVL_INFO : lvl;
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
static void escape(struct buf *out, const char *s)
{
    for (; *s; s++) {
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

static void log_vmsg(enum log_level lvl, const char *fmt, va_list ap)
{
    if ((int)lvl < lg.level || lg.sink == SINK_NONE)
        return;
    struct buf raw = {0}, line = {0};
    va_list ap2;
    va_copy(ap2, ap);
    int n = vsnprintf(NULL, 0, fmt, ap2);
    va_end(ap2);
    if (n < 0)
        return;
    raw.data = xmalloc((size_t)n + 1);
    raw.cap = (size_t)n + 1;
    vsnprintf(raw.data, raw.cap, fmt, ap);
    raw.len = (size_t)n;
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
    escape(&line, raw.data);
    if (lg.sink == SINK_SYSLOG) {
        static const int pri[] = {LOG_DEBUG, LOG_INFO, LOG_WARNING, LOG_ERR};
        syslog(pri[lvl], "%s", line.data);
    } else {
        buf_add(&line, "\n", 1);
        (void)!write(lg.fd, line.data, line.len);
    }
    buf_free(&raw);
    buf_free(&line);
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
    if (lg.sink == SINK_SYSLOG) {
        struct sockaddr_un sa = {.sun_family = AF_UNIX, .sun_path = "/dev/log"};
        int s = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        if (s >= 0) {
            (void)!sendto(s, line, n, 0, (struct sockaddr *)&sa, sizeof sa);
            close(s);
        }
    } else if (lg.sink == SINK_FD) {
        line[n++] = '\n';
        (void)!write(lg.fd, line, n);
    }
}
