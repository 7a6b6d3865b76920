/*
 * store.c: the durable key-value store, one SQLite table in
 * <state_dir>/serfhand.db (WAL, busy timeout, prepared statements kept for
 * the connection's life). No Lua here: lstore.c wraps it for handlers, and C
 * subcommands may call it directly.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sqlite3.h>

#include "serfhand.h"

/* The value's SQLite storage class is its kind: BLOB = raw bytes (a Lua
 * string), TEXT = JSON (a Lua table), INTEGER = a counter (store_incr). expires is CLOCK_REALTIME
 * ms or NULL; a row whose expires has passed is treated as absent everywhere. */
static const char schema_sql[] =
    "CREATE TABLE IF NOT EXISTS kv ("
    " key TEXT PRIMARY KEY NOT NULL,"
    " value BLOB NOT NULL,"
    " expires INTEGER"
    ") WITHOUT ROWID;"
    "CREATE INDEX IF NOT EXISTS kv_expires ON kv(expires) WHERE expires IS NOT NULL;";

enum st_id {
    ST_GET,
    ST_PUT,
    ST_ADD,
    ST_DEL,
    ST_COUNT,
    ST_KEYS,
    ST_PURGE,
    ST_GET_INCR,
    ST_SET_INCR,
    ST_BEGIN,
    ST_COMMIT,
    ST_ROLLBACK,
    ST_MAX
};

/* Prefix ranges use ?1 <= key < ?2 where ?2 is the prefix's successor (or a
 * BLOB, which sorts after every TEXT key), so % and _ are plain bytes. */
static const char *const st_sql[ST_MAX] = {
    [ST_GET] = "SELECT value FROM kv WHERE key = ?1 AND (expires IS NULL OR expires > ?2)",
    [ST_PUT] = "INSERT INTO kv(key, value, expires) VALUES (?1, ?2, ?3)"
               " ON CONFLICT(key) DO UPDATE SET value = excluded.value, expires = excluded.expires",
    [ST_ADD] = "INSERT INTO kv(key, value, expires) VALUES (?1, ?2, ?3)"
               " ON CONFLICT(key) DO UPDATE SET value = excluded.value, expires = excluded.expires"
               " WHERE kv.expires IS NOT NULL AND kv.expires <= ?4",
    [ST_DEL] = "DELETE FROM kv WHERE key = ?1",
    [ST_COUNT] = "SELECT count(*) FROM kv WHERE key >= ?1 AND key < ?2"
                 " AND (expires IS NULL OR expires > ?3)",
    [ST_KEYS] = "SELECT key FROM kv WHERE key >= ?1 AND key < ?2"
                " AND (expires IS NULL OR expires > ?3) ORDER BY key LIMIT ?4",
    [ST_PURGE] = "DELETE FROM kv WHERE key IN"
                 " (SELECT key FROM kv WHERE expires <= ?1 LIMIT 256)",
    [ST_GET_INCR] =
        "SELECT value, expires FROM kv WHERE key = ?1 AND (expires IS NULL OR expires > ?2)",
    /* ?3 = the expiry of a new counter; a live one keeps its own. */
    [ST_SET_INCR] = "INSERT INTO kv(key, value, expires) VALUES (?1, ?2, ?3)"
                    " ON CONFLICT(key) DO UPDATE SET value = excluded.value,"
                    " expires = CASE WHEN ?4 THEN kv.expires ELSE excluded.expires END",
    [ST_BEGIN] = "BEGIN IMMEDIATE",
    [ST_COMMIT] = "COMMIT",
    [ST_ROLLBACK] = "ROLLBACK",
};

struct store {
    sqlite3 *db;
    sqlite3_stmt *st[ST_MAX]; /* prepared on first use */
    char *path;
    int busy_ms;
    bool purged; /* expired rows swept once per connection, on first write */
};

static int db_err(struct store *s, char *err, size_t errlen)
{
    util_errf(err, errlen, "store: %s", sqlite3_errmsg(s->db));
    return -1;
}

/* The statement for id, reset and unbound, or NULL with err. */
static sqlite3_stmt *stmt(struct store *s, enum st_id id, char *err, size_t errlen)
{
    if (!s->st[id] && sqlite3_prepare_v3(s->db, st_sql[id], -1, SQLITE_PREPARE_PERSISTENT,
                                         &s->st[id], NULL) != SQLITE_OK) {
        db_err(s, err, errlen);
        return NULL;
    }
    return s->st[id];
}

/* Step a statement that returns no rows, then reset it. 0 or -1 + err. */
static int run_done(struct store *s, sqlite3_stmt *st, char *err, size_t errlen)
{
    int rc = sqlite3_step(st);
    if (rc != SQLITE_DONE && rc != SQLITE_ROW)
        db_err(s, err, errlen);
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return rc == SQLITE_DONE || rc == SQLITE_ROW ? 0 : -1;
}

/* mkdir -p with mode 0700 for the parts that are missing. */
static int make_dirs(const char *dir, char *err, size_t errlen)
{
    char *p = xstrdup(dir);
    int rc = -1;
    for (char *q = p + 1;; q++) {
        if (*q != '/' && *q != '\0')
            continue;
        char c = *q;
        *q = '\0';
        if (mkdir(p, 0700) != 0 && errno != EEXIST) {
            util_errf(err, errlen, "store: %s: %s", p, strerror(errno));
            goto out;
        }
        *q = c;
        if (c == '\0')
            break;
    }
    struct stat sb;
    if (stat(dir, &sb) != 0 || !S_ISDIR(sb.st_mode)) {
        util_errf(err, errlen, "store: %s: not a directory", dir);
        goto out;
    }
    rc = 0;
out:
    free(p);
    return rc;
}

static int wal_row(void *ud, int ncol, char **vals, char **names)
{
    (void)names;
    *(bool *)ud = ncol == 1 && vals[0] && strcmp(vals[0], "wal") == 0;
    return 0;
}

/* After each commit: once the WAL holds STORE_WAL_PAGES frames, checkpoint
 * it and truncate it to nothing. SQLite's own automatic checkpoint is not
 * enough here. A process that opens the store with no other connection
 * open (the usual case: one handler run per event, seldom overlapping)
 * rebuilds the WAL index from every frame in the WAL and, doing so, forgets
 * what was already checkpointed; so the WAL is never restarted, every
 * commit past the threshold checkpoints the whole WAL again (two fsyncs),
 * and the WAL grows without end. Measured with SQLite's default threshold
 * of 1000 pages: a vote-shaped handler went from 4.4 to 5.9 ms per run over
 * 300 runs, its WAL to 2.6 MB and growing. Other processes' readers are not
 * waited for (the busy timeout would be spent at every commit past the
 * threshold): a later commit tries again. */
static int wal_hook(void *ud, sqlite3 *db, const char *name, int frames)
{
    struct store *s = ud;
    if (frames < STORE_WAL_PAGES)
        return SQLITE_OK;
    sqlite3_busy_timeout(db, 0);
    (void)sqlite3_wal_checkpoint_v2(db, name, SQLITE_CHECKPOINT_TRUNCATE, NULL, NULL);
    sqlite3_busy_timeout(db, s->busy_ms);
    return SQLITE_OK; /* the commit stands whatever the checkpoint did */
}

/* Switch to WAL and create the table. Setting up a fresh file takes an
 * exclusive lock, and SQLite answers SQLITE_BUSY at once (without waiting)
 * when two processes would deadlock; so retry here, within the busy
 * timeout. */
static int init_db(struct store *s, char *err, size_t errlen)
{
    int64_t until = util_mono_ms() + s->busy_ms;
    for (int delay = 1;; delay = delay < 32 ? delay * 2 : delay) {
        bool wal = false;
        int rc = sqlite3_exec(s->db, "PRAGMA journal_mode=WAL", wal_row, &wal, NULL);
        if (rc == SQLITE_OK && !wal) {
            util_errf(err, errlen, "store: %s: cannot switch to WAL", s->path);
            return -1;
        }
        if (rc == SQLITE_OK)
            rc = sqlite3_exec(s->db, "PRAGMA synchronous=NORMAL", NULL, NULL, NULL);
        if (rc == SQLITE_OK)
            rc = sqlite3_exec(s->db, schema_sql, NULL, NULL, NULL);
        if (rc == SQLITE_OK)
            return 0;
        if ((rc & 0xff) != SQLITE_BUSY || util_mono_ms() + delay > until) {
            util_errf(err, errlen, "store: %s: %s", s->path, sqlite3_errmsg(s->db));
            return -1;
        }
        sqlite3_sleep(delay);
    }
}

int store_open(struct store **out, const char *state_dir, char *err, size_t errlen)
{
    return store_open_ms(out, state_dir, STORE_BUSY_MS, err, errlen);
}

/* Before SQLite initialises (the first open in a process): no page-cache
 * bulk. By default every connection allocates 20 page slots at once and
 * writes to each, so all of their pages fault in, while a handler reads a
 * few pages of a small database. Measured on the test host, where a page
 * fault costs 13 to 16 us: 34 of a ballot handler's 250 page faults, and
 * SQLite's memory high-water mark for an open and a read from 114 KB to
 * 55 KB. Pages are then allocated as they are read. */
static void configure_sqlite(void)
{
    static bool done;
    if (!done)
        (void)sqlite3_config(SQLITE_CONFIG_PAGECACHE, NULL, 0, 0); /* too late: no matter */
    done = true;
}

int store_open_ms(struct store **out, const char *state_dir, int busy_ms, char *err, size_t errlen)
{
    struct store *s = NULL;
    *out = NULL;
    if (!state_dir || !*state_dir) {
        util_errf(err, errlen, "store: state_dir is not set");
        return -1;
    }
    if (make_dirs(state_dir, err, errlen) < 0)
        return -1;
    s = xmalloc(sizeof *s);
    memset(s, 0, sizeof *s);
    struct buf path = {0};
    buf_printf(&path, "%s/serfhand.db", state_dir);
    s->path = path.data;
    configure_sqlite();
    /* SQLite creates the file with 0644 & ~umask and gives its -wal and -shm
     * the file's mode: make it 0600 first (and tighten an older one). */
    int dbfd = open(s->path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK, 0600);
    if (dbfd >= 0) {
        struct stat dst;
        if (fstat(dbfd, &dst) == 0 && S_ISREG(dst.st_mode) && (dst.st_mode & 077))
            (void)fchmod(dbfd, dst.st_mode & 0700);
        close(dbfd);
    }
    int rc = sqlite3_open_v2(s->path, &s->db,
                             SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX |
                                 SQLITE_OPEN_NOFOLLOW,
                             NULL);
    if (rc != SQLITE_OK) {
        util_errf(err, errlen, "store: %s: %s", s->path,
                  s->db ? sqlite3_errmsg(s->db) : sqlite3_errstr(rc));
        goto fail;
    }
    sqlite3_extended_result_codes(s->db, 1);
    /* Harden against a corrupt or hostile file. */
    sqlite3_db_config(s->db, SQLITE_DBCONFIG_DEFENSIVE, 1, (int *)NULL);
    sqlite3_db_config(s->db, SQLITE_DBCONFIG_TRUSTED_SCHEMA, 0, (int *)NULL);
    /* Most runs write a row or two and exit: leave the WAL to SQLite's
     * automatic checkpoint instead of checkpointing (and fsyncing) at every
     * close, and keep the -wal file so the next process need not recreate it. */
    sqlite3_db_config(s->db, SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1, (int *)NULL);
    int persist = 1;
    sqlite3_file_control(s->db, "main", SQLITE_FCNTL_PERSIST_WAL, &persist);
    sqlite3_wal_hook(s->db, wal_hook, s);
    store_busy_timeout(s, busy_ms);

    if (init_db(s, err, errlen) < 0)
        goto fail;
    *out = s;
    return 0;
fail:
    store_close(s);
    return -1;
}

void store_close(struct store *s)
{
    if (!s)
        return;
    for (int i = 0; i < ST_MAX; i++)
        sqlite3_finalize(s->st[i]);
    sqlite3_close_v2(s->db); /* rolls back an open transaction */
    free(s->path);
    free(s);
}

void store_busy_timeout(struct store *s, int ms)
{
    if (ms < 0)
        ms = 0;
    if (ms == s->busy_ms && ms != 0)
        return;
    s->busy_ms = ms;
    sqlite3_busy_timeout(s->db, ms);
}

const char *store_path(const struct store *s)
{
    return s->path;
}

int store_get_kind(struct store *s, const char *key, struct buf *out, bool *json, char *err,
                   size_t errlen)
{
    enum store_kind kind;
    int rc = store_get_value(s, key, out, &kind, err, errlen);
    if (json)
        *json = rc == 1 && kind == STORE_JSON;
    return rc;
}

int store_get_value(struct store *s, const char *key, struct buf *out, enum store_kind *kind,
                    char *err, size_t errlen)
{
    sqlite3_stmt *st = stmt(s, ST_GET, err, errlen);
    if (!st)
        return -1;
    sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, util_now_ms());
    int rc = sqlite3_step(st), found = 0;
    if (rc == SQLITE_ROW) {
        const void *p = sqlite3_column_blob(st, 0);
        size_t n = (size_t)sqlite3_column_bytes(st, 0);
        int t = sqlite3_column_type(st, 0);
        *kind = t == SQLITE_TEXT ? STORE_JSON : t == SQLITE_INTEGER ? STORE_INT : STORE_BYTES;
        out->len = 0;
        buf_add(out, p, n);
        found = 1;
    } else if (rc != SQLITE_DONE) {
        found = db_err(s, err, errlen);
    }
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return found;
}

int store_get(struct store *s, const char *key, struct buf *out, char *err, size_t errlen)
{
    return store_get_kind(s, key, out, NULL, err, errlen);
}

int store_purge(struct store *s, char *err, size_t errlen)
{
    sqlite3_stmt *st = stmt(s, ST_PURGE, err, errlen);
    if (!st)
        return -1;
    sqlite3_bind_int64(st, 1, util_now_ms());
    if (run_done(s, st, err, errlen) < 0)
        return -1;
    s->purged = true;
    return sqlite3_changes(s->db);
}

int store_set(struct store *s, const char *key, const void *val, size_t len, bool json,
              bool only_new, int64_t ttl_ms, char *err, size_t errlen)
{
    if (len > STORE_MAX_VALUE) {
        util_errf(err, errlen, "store: value of %zu bytes is over %d", len, STORE_MAX_VALUE);
        return -1;
    }
    if (!s->purged && store_purge(s, err, errlen) < 0)
        return -1;
    sqlite3_stmt *st = stmt(s, only_new ? ST_ADD : ST_PUT, err, errlen);
    if (!st)
        return -1;
    int64_t now = util_now_ms();
    sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
    if (json)
        sqlite3_bind_text(st, 2, val ? val : "", (int)len, SQLITE_STATIC);
    else
        sqlite3_bind_blob(st, 2, val ? val : "", (int)len, SQLITE_STATIC);
    if (ttl_ms > 0)
        sqlite3_bind_int64(st, 3, now + ttl_ms);
    else
        sqlite3_bind_null(st, 3);
    if (only_new)
        sqlite3_bind_int64(st, 4, now);
    if (run_done(s, st, err, errlen) < 0)
        return -1;
    return sqlite3_changes(s->db) > 0 ? 1 : 0;
}

int store_put(struct store *s, const char *key, const void *val, size_t len, int64_t ttl_ms,
              char *err, size_t errlen)
{
    return store_set(s, key, val, len, false, false, ttl_ms, err, errlen) < 0 ? -1 : 0;
}

int store_add(struct store *s, const char *key, const void *val, size_t len, int64_t ttl_ms,
              char *err, size_t errlen)
{
    return store_set(s, key, val, len, false, true, ttl_ms, err, errlen);
}

int store_del(struct store *s, const char *key, char *err, size_t errlen)
{
    sqlite3_stmt *st = stmt(s, ST_DEL, err, errlen);
    if (!st)
        return -1;
    sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
    return run_done(s, st, err, errlen);
}

/* Bind ?1 = prefix and ?2 = the first string after every key that starts
 * with it: the prefix with its last non-0xff byte incremented and what
 * follows dropped; a BLOB (after all TEXT) when there is no such string. */
static void bind_range(sqlite3_stmt *st, const char *prefix, char *hi)
{
    size_t n = strlen(prefix);
    sqlite3_bind_text(st, 1, prefix, (int)n, SQLITE_STATIC);
    memcpy(hi, prefix, n); // NOLINT(bugprone-not-null-terminated-result): bound with its length
    while (n > 0 && (unsigned char)hi[n - 1] == 0xff)
        n--;
    if (n == 0) {
        sqlite3_bind_zeroblob(st, 2, 0);
        return;
    }
    hi[n - 1] = (char)((unsigned char)hi[n - 1] + 1);
    sqlite3_bind_text(st, 2, hi, (int)n, SQLITE_TRANSIENT);
}

int store_count(struct store *s, const char *prefix, int64_t *n, char *err, size_t errlen)
{
    char hi[STORE_MAX_KEY + 1];
    if (strlen(prefix) > STORE_MAX_KEY) {
        util_errf(err, errlen, "store: prefix over %d bytes", STORE_MAX_KEY);
        return -1;
    }
    sqlite3_stmt *st = stmt(s, ST_COUNT, err, errlen);
    if (!st)
        return -1;
    bind_range(st, prefix, hi);
    sqlite3_bind_int64(st, 3, util_now_ms());
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        *n = sqlite3_column_int64(st, 0);
    else
        db_err(s, err, errlen);
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return rc == SQLITE_ROW ? 0 : -1;
}

int store_keys(struct store *s, const char *prefix, int64_t limit, struct buf *out, size_t *n,
               char *err, size_t errlen)
{
    char hi[STORE_MAX_KEY + 1];
    *n = 0;
    out->len = 0;
    if (strlen(prefix) > STORE_MAX_KEY) {
        util_errf(err, errlen, "store: prefix over %d bytes", STORE_MAX_KEY);
        return -1;
    }
    sqlite3_stmt *st = stmt(s, ST_KEYS, err, errlen);
    if (!st)
        return -1;
    bind_range(st, prefix, hi);
    sqlite3_bind_int64(st, 3, util_now_ms());
    sqlite3_bind_int64(st, 4, limit);
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        const unsigned char *k = sqlite3_column_text(st, 0);
        buf_add(out, k, (size_t)sqlite3_column_bytes(st, 0) + 1); /* with its NUL */
        (*n)++;
    }
    if (rc != SQLITE_DONE)
        db_err(s, err, errlen);
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return rc == SQLITE_DONE ? 0 : -1;
}

/* One transaction: read, check, write. Inside a caller's transaction
 * (store.tx) it is already atomic, so it opens none of its own. */
enum store_incr store_incr(struct store *s, const char *key, int64_t by, int64_t ttl_ms,
                           int64_t *out, char *err, size_t errlen)
{
    bool own = sqlite3_get_autocommit(s->db);
    enum store_incr res = STORE_INCR_ERROR;
    if (!s->purged && store_purge(s, err, errlen) < 0)
        return STORE_INCR_ERROR;
    if (own && store_begin(s, err, errlen) < 0)
        return STORE_INCR_ERROR;
    int64_t now = util_now_ms(), cur = 0;
    bool found = false;
    sqlite3_stmt *st = stmt(s, ST_GET_INCR, err, errlen);
    if (!st)
        goto out;
    sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, now);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        found = true;
        if (sqlite3_column_type(st, 0) != SQLITE_INTEGER) {
            util_errf(err, errlen,
                      "store: %s: the stored value is not a counter (only store.incr writes "
                      "counters)",
                      key);
            res = STORE_INCR_NOT_INTEGER;
        }
        cur = sqlite3_column_int64(st, 0);
    } else if (rc != SQLITE_DONE) {
        db_err(s, err, errlen);
    }
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    if (res == STORE_INCR_NOT_INTEGER || (rc != SQLITE_ROW && rc != SQLITE_DONE))
        goto out;
    int64_t next;
    if (__builtin_add_overflow(cur, by, &next)) {
        util_errf(err, errlen, "store: %s: %lld + %lld overflows a 64-bit integer", key,
                  (long long)cur, (long long)by);
        res = STORE_INCR_OVERFLOW;
        goto out;
    }
    if (!(st = stmt(s, ST_SET_INCR, err, errlen)))
        goto out;
    sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, next);
    if (ttl_ms > 0)
        sqlite3_bind_int64(st, 3, now + ttl_ms);
    else
        sqlite3_bind_null(st, 3);
    sqlite3_bind_int(st, 4, found);
    if (run_done(s, st, err, errlen) < 0)
        goto out;
    if (own && store_commit(s, err, errlen) < 0)
        goto out;
    own = false;
    *out = next;
    res = STORE_INCR_OK;
out:
    if (own) {
        char rerr[256];
        store_rollback(s, rerr, sizeof rerr);
    }
    return res;
}

int store_begin(struct store *s, char *err, size_t errlen)
{
    sqlite3_stmt *st = stmt(s, ST_BEGIN, err, errlen);
    return st ? run_done(s, st, err, errlen) : -1;
}

int store_commit(struct store *s, char *err, size_t errlen)
{
    sqlite3_stmt *st = stmt(s, ST_COMMIT, err, errlen);
    return st ? run_done(s, st, err, errlen) : -1;
}

int store_rollback(struct store *s, char *err, size_t errlen)
{
    if (sqlite3_get_autocommit(s->db))
        return 0; /* nothing open (SQLite may have rolled back already) */
    sqlite3_stmt *st = stmt(s, ST_ROLLBACK, err, errlen);
    return st ? run_done(s, st, err, errlen) : -1;
}
