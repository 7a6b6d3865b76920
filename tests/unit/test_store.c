/* test_store.c: the plain C store (store.c): values, kinds, TTL, prefixes,
 * transactions, a lock held by another connection, corrupt files, and many
 * processes adding the same key at once. */
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "serfhand.h"
#include "t.h"

static char tmp[] = "/tmp/serfhand-test-store.XXXXXX";

static char *path_in(const char *rel)
{
    struct buf b = {0};
    buf_printf(&b, "%s/%s", tmp, rel);
    return b.data;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static void write_file(const char *path, const void *p, size_t n, off_t at)
{
    int fd = open(path, O_WRONLY | O_CREAT, 0600);
    if (fd >= 0) {
        (void)!pwrite(fd, p, n, at);
        close(fd);
    }
}

/* A store open allocates page-cache memory as pages are read, not 20 page
 * slots up front: a handler that reads a few pages touches no more (each
 * page touched is a page fault, 13 to 16 us on the test host). Must run
 * first: SQLite takes the setting only before it initialises. */
static void test_small_page_cache(void)
{
    char err[256] = "";
    struct store *s = NULL;
    struct buf v = {0};
    char *dir = path_in("small");
    T_OK(store_open(&s, dir, err, sizeof err) == 0, "open");
    T_OK(store_put(s, "k", "v", 1, 0, err, sizeof err) == 0, "put");
    store_close(s);
    sqlite3_memory_highwater(1);
    T_OK(store_open(&s, dir, err, sizeof err) == 0, "open again");
    T_OK(store_get(s, "k", &v, err, sizeof err) == 1, "get");
    sqlite3_int64 hw = sqlite3_memory_highwater(0);
    T_OK(hw < 80 * 1024, "SQLite used under 80 KB to open and read (55 KB; 114 KB with the bulk)");
    if (hw >= 80 * 1024)
        printf("  SQLite's high-water mark: %lld bytes\n", (long long)hw);
    store_close(s);
    buf_free(&v);
    free(dir);
}

static void test_basic(void)
{
    char err[256] = "";
    struct store *s = NULL;
    struct buf v = {0};
    bool json = true;
    char *dir = path_in("a/b/state");
    T_OK(store_open(&s, dir, err, sizeof err) == 0, "open creates the missing dirs");
    T_STR(err, "", "no error");
    struct stat sb;
    T_OK(stat(dir, &sb) == 0 && (sb.st_mode & 0777) == 0700, "state dir is 0700");
    char *db = path_in("a/b/state/serfhand.db");
    T_STR(store_path(s), db, "path");

    T_OK(store_get(s, "nope", &v, err, sizeof err) == 0, "absent");
    T_OK(store_put(s, "k", "a\0b", 3, 0, err, sizeof err) == 0, "put");
    T_OK(store_get_kind(s, "k", &v, &json, err, sizeof err) == 1, "get found");
    T_OK(v.len == 3 && memcmp(v.data, "a\0b", 3) == 0, "bytes with NUL come back");
    T_OK(!json, "bytes kind");
    T_OK(store_set(s, "j", "{\"a\":1}", 7, true, false, 0, err, sizeof err) == 1, "put json");
    T_OK(store_get_kind(s, "j", &v, &json, err, sizeof err) == 1 && json, "json kind");
    T_STR(v.data, "{\"a\":1}", "json text");
    T_OK(store_put(s, "k", "", 0, 0, err, sizeof err) == 0, "put empty overwrites");
    T_OK(store_get(s, "k", &v, err, sizeof err) == 1 && v.len == 0, "empty value found");

    T_OK(store_add(s, "once", "1", 1, 0, err, sizeof err) == 1, "add inserts");
    T_OK(store_add(s, "once", "2", 1, 0, err, sizeof err) == 0, "add refuses present");
    T_OK(store_get(s, "once", &v, err, sizeof err) == 1 && strcmp(v.data, "1") == 0,
         "add kept the first value");

    T_OK(store_del(s, "once", err, sizeof err) == 0, "del");
    T_OK(store_get(s, "once", &v, err, sizeof err) == 0, "deleted is absent");
    T_OK(store_del(s, "once", err, sizeof err) == 0, "del absent is fine");
    T_OK(store_add(s, "once", "3", 1, 0, err, sizeof err) == 1, "add after del");

    char *big = calloc(1, STORE_MAX_VALUE + 1);
    T_OK(store_put(s, "big", big, STORE_MAX_VALUE + 1, 0, err, sizeof err) == -1,
         "value over the cap refused");
    T_OK(strstr(err, "store: value") != NULL, "cap error says so");
    T_OK(store_put(s, "big", big, STORE_MAX_VALUE, 0, err, sizeof err) == 0, "value at the cap");
    free(big);

    /* TTL: expired rows are absent, may be re-added, and get purged. */
    T_OK(store_put(s, "t/1", "x", 1, 1, err, sizeof err) == 0, "put ttl");
    T_OK(store_add(s, "t/2", "x", 1, 1, err, sizeof err) == 1, "add ttl");
    T_OK(store_put(s, "t/3", "x", 1, 60000, err, sizeof err) == 0, "put long ttl");
    sleep_ms(5);
    T_OK(store_get(s, "t/1", &v, err, sizeof err) == 0, "expired is absent");
    T_OK(store_get(s, "t/3", &v, err, sizeof err) == 1, "not yet expired");
    int64_t n = -1;
    T_OK(store_count(s, "t/", &n, err, sizeof err) == 0 && n == 1, "count skips expired");
    T_OK(store_add(s, "t/2", "y", 1, 0, err, sizeof err) == 1, "add over an expired row");
    T_OK(store_get(s, "t/2", &v, err, sizeof err) == 1 && strcmp(v.data, "y") == 0,
         "re-added value");
    T_OK(store_purge(s, err, sizeof err) == 1, "purge removes the expired row");
    T_OK(store_purge(s, err, sizeof err) == 0, "nothing left to purge");

    store_close(s);
    /* Reopen: data is durable. */
    T_OK(store_open(&s, dir, err, sizeof err) == 0, "reopen");
    T_OK(store_get(s, "j", &v, err, sizeof err) == 1 && strcmp(v.data, "{\"a\":1}") == 0,
         "value survives reopen");
    store_close(s);
    buf_free(&v);
    free(dir);
    free(db);
}

static void test_prefix(void)
{
    char err[256];
    struct store *s = NULL;
    struct buf v = {0};
    char *dir = path_in("prefix");
    T_OK(store_open(&s, dir, err, sizeof err) == 0, "open");
    const char *keys[] = {"a%b", "a_b", "aXb", "a\xff", "a\xff\xff", "b", "\xff"};
    for (size_t i = 0; i < sizeof keys / sizeof *keys; i++)
        store_put(s, keys[i], "v", 1, 0, err, sizeof err);
    struct {
        const char *prefix;
        int64_t count;
    } cases[] = {
        {"", 7},     {"a", 5}, {"a%", 1},  {"a_", 1},   {"a\xff", 2},
        {"\xff", 1}, {"c", 0}, {"a%b", 1}, {"a%bc", 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        int64_t n = -1;
        char name[64];
        snprintf(name, sizeof name, "count case %zu", i);
        T_OK(store_count(s, cases[i].prefix, &n, err, sizeof err) == 0 && n == cases[i].count,
             name);
    }
    size_t n = 0;
    T_OK(store_keys(s, "a", 100, &v, &n, err, sizeof err) == 0 && n == 5, "keys a");
    const char *want[] = {"a%b", "aXb", "a_b", "a\xff", "a\xff\xff"}; /* byte order */
    const char *p = v.data;
    for (size_t i = 0; i < 5 && i < n; i++) {
        T_STR(p, want[i], "keys sorted by bytes");
        p += strlen(p) + 1;
    }
    T_OK(store_keys(s, "", 2, &v, &n, err, sizeof err) == 0 && n == 2, "limit");
    T_STR(v.data, "a%b", "limit keeps the first");
    T_OK(store_keys(s, "zz", 10, &v, &n, err, sizeof err) == 0 && n == 0 && v.len == 0, "no keys");
    store_close(s);
    buf_free(&v);
    free(dir);
}

static void test_tx_and_lock(void)
{
    char err[256];
    struct store *s = NULL, *s2 = NULL;
    struct buf v = {0};
    char *dir = path_in("tx");
    T_OK(store_open(&s, dir, err, sizeof err) == 0, "open");
    T_OK(store_open(&s2, dir, err, sizeof err) == 0, "open second connection");

    T_OK(store_begin(s, err, sizeof err) == 0, "begin");
    store_put(s, "r", "1", 1, 0, err, sizeof err);
    T_OK(store_get(s, "r", &v, err, sizeof err) == 1, "visible inside the tx");
    T_OK(store_get(s2, "r", &v, err, sizeof err) == 0, "invisible outside the tx");

    /* s holds the write lock: s2's writes wait out the busy timeout. */
    store_busy_timeout(s2, 200);
    int64_t t0 = util_mono_ms();
    err[0] = '\0';
    T_OK(store_put(s2, "x", "1", 1, 0, err, sizeof err) == -1, "write while locked fails");
    int64_t waited = util_mono_ms() - t0;
    T_STR(err, "store: database is locked", "locked message");
    T_OK(waited >= 150 && waited < 2000, "waited about the busy timeout");
    store_busy_timeout(s2, 0);
    t0 = util_mono_ms();
    T_OK(store_begin(s2, err, sizeof err) == -1, "begin while locked fails");
    T_OK(util_mono_ms() - t0 < 100, "busy timeout 0 fails at once");
    T_OK(store_rollback(s2, err, sizeof err) == 0, "rollback with nothing open");

    T_OK(store_rollback(s, err, sizeof err) == 0, "rollback");
    T_OK(store_get(s, "r", &v, err, sizeof err) == 0, "rolled back");
    T_OK(store_begin(s, err, sizeof err) == 0, "begin again");
    store_put(s, "r", "2", 1, 0, err, sizeof err);
    T_OK(store_commit(s, err, sizeof err) == 0, "commit");
    T_OK(store_get(s2, "r", &v, err, sizeof err) == 1 && strcmp(v.data, "2") == 0,
         "committed is visible");
    T_OK(store_put(s2, "x", "1", 1, 0, err, sizeof err) == 0, "write after unlock");
    T_OK(store_commit(s, err, sizeof err) == -1, "commit without a tx fails");
    store_close(s2);
    store_close(s);
    buf_free(&v);
    free(dir);
}

static void test_bad_files(void)
{
    char err[256];
    struct store *s = NULL;
    struct buf v = {0};

    T_OK(store_open(&s, "", err, sizeof err) == -1 && !s, "empty state_dir");
    T_STR(err, "store: state_dir is not set", "empty state_dir message");
    char *file = path_in("plainfile");
    write_file(file, "x", 1, 0);
    T_OK(store_open(&s, file, err, sizeof err) == -1, "state_dir is a file");
    T_OK(strstr(err, "not a directory") != NULL, "not a directory message");
    free(file);

    /* Garbage where the database should be. */
    char *dir = path_in("garbage");
    mkdir(dir, 0700);
    char *db = path_in("garbage/serfhand.db");
    char junk[8192];
    for (size_t i = 0; i < sizeof junk; i++)
        junk[i] = (char)(i * 7 + 3);
    write_file(db, junk, sizeof junk, 0);
    T_OK(store_open(&s, dir, err, sizeof err) == -1 && !s, "garbage file refused");
    T_OK(strstr(err, "store: ") == err && strstr(err, "not a database") != NULL, "garbage message");
    free(dir);
    free(db);

    /* A real database whose table pages were overwritten afterwards. */
    dir = path_in("corrupt");
    db = path_in("corrupt/serfhand.db");
    T_OK(store_open(&s, dir, err, sizeof err) == 0, "open fresh");
    for (int i = 0; i < 200; i++) {
        char k[32];
        snprintf(k, sizeof k, "key/%04d", i);
        store_put(s, k, junk, 100, 0, err, sizeof err);
    }
    store_close(s);
    sqlite3 *raw;
    sqlite3_open(db, &raw);
    sqlite3_exec(raw, "PRAGMA wal_checkpoint(TRUNCATE)", NULL, NULL, NULL);
    sqlite3_close(raw);
    for (off_t at = 4096; at < 16 * 4096; at += 4096)
        write_file(db, junk, 4096, at);
    int rc = store_open(&s, dir, err, sizeof err);
    if (rc == 0) {
        int64_t n;
        int a = store_get(s, "key/0100", &v, err, sizeof err);
        int b = store_count(s, "key/", &n, err, sizeof err);
        T_OK(a == -1 || b == -1, "corrupt pages give an error");
        T_OK(strstr(err, "store: ") == err, "corrupt error names the store");
        store_close(s);
    } else {
        T_OK(strstr(err, "store: ") == err, "corrupt open error names the store");
    }
    free(dir);
    free(db);
    buf_free(&v);
}

/* NPROC children open the same fresh database and add one key at once. */
#define NPROC 20
static void test_race(void)
{
    char *dir = path_in("race");
    int go[2];
    pid_t pids[NPROC];
    T_OK(pipe(go) == 0, "pipe");
    for (int i = 0; i < NPROC; i++) {
        pids[i] = fork();
        if (pids[i] == 0) {
            char err[256], c, val[16];
            close(go[1]);
            (void)!read(go[0], &c, 1); /* returns at EOF: everybody starts now */
            struct store *s;
            if (store_open(&s, dir, err, sizeof err) < 0) {
                fprintf(stderr, "child %d: %s\n", i, err);
                _exit(2);
            }
            snprintf(val, sizeof val, "%d", i);
            int rc = store_add(s, "race", val, strlen(val), 0, err, sizeof err);
            if (rc < 0)
                fprintf(stderr, "child %d: %s\n", i, err);
            store_close(s);
            _exit(rc == 1 ? 0 : rc == 0 ? 1 : 2);
        }
    }
    close(go[0]);
    sleep_ms(100);
    close(go[1]);
    int won = 0, lost = 0, errors = 0, winner = -1;
    for (int i = 0; i < NPROC; i++) {
        int st;
        waitpid(pids[i], &st, 0);
        int code = WIFEXITED(st) ? WEXITSTATUS(st) : 3;
        if (code == 0) {
            won++;
            winner = i;
        } else if (code == 1) {
            lost++;
        } else {
            errors++;
        }
    }
    T_OK(won == 1, "exactly one process won");
    T_OK(lost == NPROC - 1, "all others lost");
    T_OK(errors == 0, "no process failed");
    char err[256], want[16];
    struct store *s;
    struct buf v = {0};
    snprintf(want, sizeof want, "%d", winner);
    T_OK(store_open(&s, dir, err, sizeof err) == 0 &&
             store_get(s, "race", &v, err, sizeof err) == 1,
         "race key is there");
    T_STR(v.data, want, "the winner's value was kept");
    store_close(s);
    buf_free(&v);
    free(dir);
}

/* Every store_open with no other connection rebuilds the WAL index from all
 * frames since the last checkpoint, and forgets what was checkpointed: so
 * the WAL must be emptied, not just checkpointed, however many writes a
 * long-lived node makes, in one process or (the usual case: one handler run
 * per event) in many. */
static bool wal_writes(const char *dir, int procs, int per_proc)
{
    char val[300];
    bool ok = true;
    memset(val, 'v', sizeof val);
    for (int p = 0; ok && p < procs; p++) {
        char err[256] = "";
        struct store *s = NULL;
        ok = store_open(&s, dir, err, sizeof err) == 0;
        for (int i = 0; ok && i < per_proc; i++) {
            char key[32];
            snprintf(key, sizeof key, "k/%d", p * per_proc + i);
            ok = store_put(s, key, val, sizeof val, 0, err, sizeof err) == 0;
        }
        store_close(s);
    }
    return ok;
}

static void test_wal_stays_short(void)
{
    /* A frame is a 24-byte header and a 4096-byte page; a commit adds a few. */
    long max = (STORE_WAL_PAGES + 16) * (24 + 4096) + 32;
    const struct {
        const char *name;
        int procs, per_proc;
    } cases[] = {
        {"one connection, 600 commits", 1, 600},
        {"600 connections, one commit each", 600, 1},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        char rel[32];
        snprintf(rel, sizeof rel, "wal%zu", c);
        char *dir = path_in(rel);
        T_OK(wal_writes(dir, cases[c].procs, cases[c].per_proc), "600 writes");
        struct buf wal = {0};
        buf_printf(&wal, "%s/serfhand.db-wal", dir);
        struct stat sb;
        T_OK(stat(wal.data, &sb) == 0, "the WAL file is there");
        T_OK(sb.st_size <= max, cases[c].name);
        if (sb.st_size > max)
            fprintf(stderr, "  %s: the WAL is %ld bytes, more than %ld\n", cases[c].name,
                    (long)sb.st_size, max);
        char err[256] = "";
        struct store *s = NULL;
        int64_t n = -1;
        T_OK(store_open(&s, dir, err, sizeof err) == 0 &&
                 store_count(s, "k/", &n, err, sizeof err) == 0 && n == 600,
             "every write is there after a reopen");
        store_close(s);
        buf_free(&wal);
        free(dir);
    }
}

/* While another connection reads, the checkpoint cannot empty the WAL: the
 * commits must neither wait for that reader (the busy timeout, here 100 ms,
 * would be spent at each commit past the threshold) nor fail, and the first
 * commit after it ends empties the WAL. */
static void test_wal_reader(void)
{
    char err[256] = "";
    struct store *s = NULL;
    sqlite3 *reader = NULL;
    char *dir = path_in("walreader");
    char *db = path_in("walreader/serfhand.db");
    char *wal = path_in("walreader/serfhand.db-wal");
    char val[300];
    memset(val, 'v', sizeof val);
    T_OK(store_open_ms(&s, dir, 100, err, sizeof err) == 0 &&
             store_put(s, "k/0", "v", 1, 0, err, sizeof err) == 0,
         "open");
    T_OK(sqlite3_open(db, &reader) == SQLITE_OK &&
             sqlite3_exec(reader, "BEGIN; SELECT count(*) FROM kv;", NULL, NULL, NULL) == SQLITE_OK,
         "another connection holds a read transaction");
    bool ok = true;
    int64_t t0 = util_mono_ms();
    for (int i = 1; ok && i <= 150; i++) {
        char key[32];
        snprintf(key, sizeof key, "k/%d", i);
        ok = store_put(s, key, val, sizeof val, 0, err, sizeof err) == 0;
    }
    int64_t took = util_mono_ms() - t0;
    T_OK(ok, "150 commits, most past the threshold, succeed while it reads");
    T_OK(took < 2000, "and do not wait for the reader");
    if (took >= 2000)
        fprintf(stderr, "  150 commits took %lld ms\n", (long long)took);
    struct stat sb;
    T_OK(stat(wal, &sb) == 0 && sb.st_size > (long)(STORE_WAL_PAGES * 4096),
         "the WAL could not be emptied meanwhile");
    T_OK(sqlite3_exec(reader, "COMMIT", NULL, NULL, NULL) == SQLITE_OK, "the reader ends");
    T_OK(store_put(s, "k/151", "v", 1, 0, err, sizeof err) == 0, "one more commit");
    T_OK(stat(wal, &sb) == 0 && sb.st_size == 0, "empties the WAL");
    int64_t n = -1;
    T_OK(store_count(s, "k/", &n, err, sizeof err) == 0 && n == 152, "nothing lost");
    sqlite3_close(reader);
    store_close(s);
    free(dir);
    free(db);
    free(wal);
}

int main(void)
{
    if (!mkdtemp(tmp)) {
        perror("mkdtemp");
        return 2;
    }
    test_small_page_cache();
    test_basic();
    test_prefix();
    test_tx_and_lock();
    test_bad_files();
    test_race();
    test_wal_stays_short();
    test_wal_reader();
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
    (void)!system(cmd);
    return t_done();
}
