/*
 * serfhand.h: shared types and every cross-file prototype, grouped by the
 * source file that defines them. Plain C units (no Lua) come first, then the
 * Lua host, then the Lua modules and subcommands.
 */
#ifndef SERFHAND_H
#define SERFHAND_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <lua.h>

#define SERFHAND_VERSION "0.1.0"

/* Exit codes. Only main.c and cmd_*.c decide them (minisign: 1 = check
 * failed, 2 = usage or system error); the rest say which limit was hit. */
enum sh_exit {
    SH_EXIT_OK = 0,
    SH_EXIT_FAIL = 1,     /* handler raised, a check failed */
    SH_EXIT_USAGE = 2,    /* bad command line, config or system error */
    SH_EXIT_TRUST = 3,    /* a signature, hash or manifest check refused */
    SH_EXIT_TIMEOUT = 4,  /* the handler passed its deadline */
    SH_EXIT_MEMORY = 5,   /* the handler hit the memory cap */
    SH_EXIT_RESPONSE = 6, /* query response refused: wrong type or too big */
    SH_EXIT_EVENT = 7,    /* unknown event type or invalid event name */
};

/* ---------------------------------------------------------------- util.c */

/* A growable byte buffer; data is always NUL-terminated after len. */
struct buf {
    char *data;
    size_t len, cap;
};

void *xmalloc(size_t n);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
void buf_add(struct buf *b, const void *p, size_t n);
void buf_addstr(struct buf *b, const char *s);
void buf_printf(struct buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void buf_free(struct buf *b);
/* Read all of fd or a file, refusing more than max bytes. 0 or -1 + err. */
int util_read_fd(int fd, size_t max, struct buf *out, char *err, size_t errlen);
int util_read_file(const char *path, size_t max, struct buf *out, char *err,
                   size_t errlen);
/* Milliseconds of CLOCK_MONOTONIC / CLOCK_REALTIME. */
int64_t util_mono_ms(void);
int64_t util_now_ms(void);
void util_errf(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* [A-Za-z0-9][A-Za-z0-9_.-]{0,63}: the names of user events and queries. */
bool util_valid_name(const char *s);

/* -------------------------------------------------------------- config.c */

enum cfg_type { CFG_STR, CFG_INT, CFG_BOOL, CFG_STRLIST };

/* One setting: its dotted path, type and value. The schema in config.c is
 * the list of every key the file may set. */
struct cfg_item {
    const char *path;
    enum cfg_type type;
    const char *defstr; /* default for CFG_STR */
    long long defint;   /* default for CFG_INT and CFG_BOOL */
    long long min, max; /* range for CFG_INT */
    const char *help;
};

struct cfg_value {
    char *str;
    long long num;
    char **list;
    size_t nlist;
    bool set; /* given in the file (not a default) */
};

struct config {
    char *file; /* the file read, or NULL: built-in defaults */
    struct cfg_value *v; /* one per schema item */
};

#define SH_DEFAULT_CONFIG "/etc/serfhand/serfhand.conf"

/* Load the configuration: path (from -c) or $SERFHAND_CONFIG or the default
 * path; the default path may be missing, an explicit one may not. Unknown
 * keys and wrong types fail with the key and the file line. */
int config_load(struct config *c, const char *path, char *err, size_t errlen);
void config_free(struct config *c);
const char *config_str(const struct config *c, const char *path);
long long config_int(const struct config *c, const char *path);
bool config_bool(const struct config *c, const char *path);
char *const *config_list(const struct config *c, const char *path, size_t *n);
/* The schema, for `serfhand config` and the Lua view; ends with path NULL. */
const struct cfg_item *config_schema(void);
const struct cfg_value *config_value(const struct config *c, size_t i);

/* ----------------------------------------------------------------- log.c */

enum log_level { LOG_LVL_DEBUG, LOG_LVL_INFO, LOG_LVL_WARN, LOG_LVL_ERROR };

/* Open the log per config ("syslog", "stderr", "fd:N" or a file path).
 * quiet_stdio: never use fd 1/2 (while a query is handled). */
void log_open(const struct config *c, bool quiet_stdio);
void log_close(void);
void log_msg(enum log_level lvl, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void log_vmsg(enum log_level lvl, const char *fmt, va_list ap);
/* Write one message without locks or allocation (from a signal handler). */
void log_signal_safe(const char *msg);
int log_level_parse(const char *s);
const char *log_level_name(int lvl);
/* Context prefixed to every line, e.g. "user:deploy"; may be NULL. */
void log_set_context(const char *ctx);

/* --------------------------------------------------------------- event.c */

enum event_type {
    EV_MEMBER_JOIN,
    EV_MEMBER_LEAVE,
    EV_MEMBER_FAILED,
    EV_MEMBER_UPDATE,
    EV_MEMBER_REAP,
    EV_USER,
    EV_QUERY,
    EV_TICK,
};

struct member {
    char *name, *addr, *role;
    char **tagk, **tagv; /* parsed best-effort: Serf does not escape , = */
    size_t ntags;
};

struct tag {
    char *key, *value;
};

struct event {
    enum event_type type;
    char *type_name; /* as in SERF_EVENT */
    char *name;      /* user event or query name, else NULL */
    uint64_t ltime;
    struct buf payload; /* exact bytes, minus Serf's trailing newline */
    char *self_name, *self_role;
    struct tag *tags; /* local tags from SERF_TAG_*, keys lowercased */
    size_t ntags;
    struct member *members;
    size_t nmembers;
};

/* Fill ev from the environment and the stdin bytes. Returns 0, or -1 with
 * err (unknown SERF_EVENT, invalid name, bad member line). */
int event_parse(struct event *ev, char *const *envp, const char *in, size_t inlen,
                char *err, size_t errlen);
void event_free(struct event *ev);
const char *event_type_name(enum event_type t);
int event_type_parse(const char *s);
/* The handler file for an event, relative to the bundle, e.g.
 * "handlers/user/deploy.lua". NULL if the name is invalid. */
char *event_handler_path(const struct event *ev);
/* Parse one member line (Serf's eventClean escapes undone). */
int event_parse_member(struct member *m, const char *line, size_t len);
void event_push(lua_State *L, const struct event *ev);

/* -------------------------------------------------------------- bundle.c */

/* The active handler bundle. bundle_read is the one place through which
 * every handler and module is read: it hands back exactly the bytes that were
 * checked, so the caller loads what was verified. */
struct bundle {
    char *dir;
    char *name;    /* from the manifest, or "unsigned" */
    char *version; /* from the manifest, or "dev" */
    size_t max_file;
    bool verify;   /* false only for `serfhand run --unsigned`-like tools */
};

int bundle_open(struct bundle *b, const char *dir, size_t max_file, char *err,
                size_t errlen);
void bundle_close(struct bundle *b);
/* Read rel (e.g. "handlers/tick.lua"). Returns 0 with out filled, 1 if the
 * file does not exist, -1 with err when it must not be run. */
int bundle_read(struct bundle *b, const char *rel, struct buf *out, char *err,
                size_t errlen);
/* rel must be handlers/... or lua/..., no "..", no absolute path. */
bool bundle_valid_rel(const char *rel);

/* --------------------------------------------------------------- store.c */

/* The durable key-value store: SQLite in <state_dir>/serfhand.db, WAL mode,
 * busy timeout. Keys and values are byte strings; expires_ms 0 = never. */
struct store;

int store_open(struct store **out, const char *state_dir, char *err, size_t errlen);
void store_close(struct store *s);
/* 1 found (value malloc'ed into out), 0 absent or expired, -1 error. */
int store_get(struct store *s, const char *key, struct buf *out, char *err,
              size_t errlen);
int store_put(struct store *s, const char *key, const void *val, size_t len,
              int64_t ttl_ms, char *err, size_t errlen);
/* Insert only if absent (or expired): 1 inserted, 0 already there, -1 error. */
int store_add(struct store *s, const char *key, const void *val, size_t len,
              int64_t ttl_ms, char *err, size_t errlen);
int store_del(struct store *s, const char *key, char *err, size_t errlen);

/* ------------------------------------------------------------- sandbox.c */

struct sandbox_limits {
    size_t memory;   /* bytes the Lua allocator may hold */
    int deadline_ms; /* wall clock for the whole run */
    int grace_ms;    /* after the deadline, before the process is ended */
};

struct sandbox;

/* A fresh lua_State with only the safe libraries, a capped allocator, the
 * deadline hook and require() bound to b (which may be NULL). */
struct sandbox *sandbox_new(const struct sandbox_limits *lim, struct bundle *b,
                            const struct config *cfg, char *err, size_t errlen);
void sandbox_free(struct sandbox *sb);
lua_State *sandbox_state(struct sandbox *sb);
struct sandbox *sandbox_of(lua_State *L);
/* Arm the deadline (hook + SIGALRM backstop + RLIMIT_CPU) from now. */
void sandbox_start_clock(struct sandbox *sb);
void sandbox_stop_clock(struct sandbox *sb);
int64_t sandbox_deadline_ms(const struct sandbox *sb); /* monotonic */
bool sandbox_timed_out(const struct sandbox *sb);
bool sandbox_out_of_memory(const struct sandbox *sb);
size_t sandbox_memory_used(const struct sandbox *sb);
/* Read rel through the bundle and push the loaded chunk (a function with its
 * own _ENV). 0; 1 = no such file; -1 = does not compile; -2 = refused by the
 * bundle (verification); err says why. */
int sandbox_load_file(struct sandbox *sb, const char *rel, char *err, size_t errlen);
/* Load a chunk from memory (tests, tools): text only, fresh _ENV. */
int sandbox_load_buffer(struct sandbox *sb, const char *buf, size_t len,
                        const char *chunkname, char *err, size_t errlen);
/* lua_pcall with a traceback message handler. */
int sandbox_pcall(struct sandbox *sb, int nargs, int nresults);
const struct config *sandbox_config(lua_State *L);
bool sandbox_is_query(lua_State *L);
/* True while a Serf event or query handler runs (not for CLI tools/tests). */
bool sandbox_in_handler(lua_State *L);
void sandbox_set_handler(struct sandbox *sb, bool in_handler);
void sandbox_set_query(struct sandbox *sb, bool query);
const struct bundle *sandbox_bundle(lua_State *L);

/* ------------------------------------------------------- Lua modules l*.c */

int luaopen_serfhand_config(lua_State *L);
int luaopen_serfhand_crypto(lua_State *L);
int luaopen_serfhand_factomd(lua_State *L);
int luaopen_serfhand_identity(lua_State *L);
int luaopen_serfhand_json(lua_State *L);
int luaopen_serfhand_log(lua_State *L);
int luaopen_serfhand_proc(lua_State *L);
int luaopen_serfhand_serf(lua_State *L);
int luaopen_serfhand_store(lua_State *L);
int luaopen_serfhand_time(lua_State *L);

/* ljson.c: encode the value at idx as JSON into out (0, or -1 with err), and
 * decode s into a Lua value pushed on L (0, or -1 with err and nothing
 * pushed). Both run protected: they never raise. Integral numbers a double
 * holds exactly decode as Lua integers. */
int ljson_encode(lua_State *L, int idx, struct buf *out, char *err, size_t errlen);
int ljson_decode(lua_State *L, const char *s, size_t len, char *err, size_t errlen);

/* ---------------------------------------------------- subcommands cmd_*.c */

struct cmd_entry {
    const char *name;
    const char *usage; /* one line: arguments */
    const char *summary;
    int (*exec)(int argc, char **argv, const struct config *cfg);
    bool needs_config; /* main loads the config before exec */
};

extern const struct cmd_entry cmd_handle_entry;
extern const struct cmd_entry cmd_run_entry;
extern const struct cmd_entry cmd_test_entry;
extern const struct cmd_entry cmd_config_entry;
extern const struct cmd_entry cmd_keygen_entry;
extern const struct cmd_entry cmd_sign_entry;
extern const struct cmd_entry cmd_verify_entry;
extern const struct cmd_entry cmd_check_entry;

/* cmd_check.c: check the bundle in dir as `serfhand check` does and write the
 * answer of the built-in query serfhand-check, compact JSON
 * {bundle, version, manifest, ok, problems}, into json (at most 900 bytes).
 * Returns 0 if the bundle is fine, 1 if not. */
int check_report(const struct config *cfg, const char *bundle_dir, struct buf *json);

/* cmd_handle.c: handle ev with the active bundle; returns the exit code and
 * writes a query response to out_fd. Shared by `handle` and `run`. */
int handle_event(const struct config *cfg, const char *bundle_dir,
                 struct event *ev, int out_fd);

/* main.c */
const struct cmd_entry *main_find_cmd(const char *name);

/* ---- serfrpc.c */

/* A client for the Serf agent's msgpack RPC (reference/serf.md section 9),
 * used by lserf.c. The msgpack writer appends to a struct buf. */
void serfrpc_mp_map(struct buf *b, uint32_t n);
void serfrpc_mp_array(struct buf *b, uint32_t n);
void serfrpc_mp_str(struct buf *b, const char *s, size_t n);
void serfrpc_mp_cstr(struct buf *b, const char *s);
void serfrpc_mp_bin(struct buf *b, const void *p, size_t n);
void serfrpc_mp_bool(struct buf *b, bool v);
void serfrpc_mp_uint(struct buf *b, uint64_t v);
void serfrpc_mp_int(struct buf *b, int64_t v);

enum mp_type { MP_NIL, MP_BOOL, MP_UINT, MP_INT, MP_FLOAT, MP_STR, MP_BIN, MP_ARRAY, MP_MAP, MP_EXT };

/* One decoded msgpack value. Strings, bin and ext point into the decoded
 * input, which must outlive the value. A map holds n pairs: items[2k] is a
 * key, items[2k+1] its value. Signed formats give MP_INT, unsigned MP_UINT. */
struct mp_value {
    enum mp_type type;
    union {
        bool b;
        uint64_t u;
        int64_t i;
        double f;
        struct { const char *p; size_t len; } s;
        struct { struct mp_value *items; size_t n; } a;
    } v;
};

/* Decode one object from p[0..len): 1 = decoded (*used bytes consumed, *out
 * to be freed with serfrpc_mp_free), 0 = incomplete (more bytes needed),
 * -1 = malformed (err). Depth, element count and size are bounded. */
int serfrpc_mp_decode(const char *p, size_t len, size_t *used, struct mp_value **out,
                      char *err, size_t errlen);
void serfrpc_mp_free(struct mp_value *v);
/* The value of the str key in map, or NULL (also when map is not a map). */
const struct mp_value *serfrpc_mp_get(const struct mp_value *map, const char *key);
/* An unsigned integer value (MP_UINT, or MP_INT >= 0): true and *out. */
bool serfrpc_mp_uint_of(const struct mp_value *v, uint64_t *out);

struct serfrpc;

/* Connect to addr ("host:port", "[v6]:port"), handshake, and authenticate
 * with token unless it is NULL or "". Every step ends by deadline_ms
 * (util_mono_ms scale). Errors read "serf: cannot connect to ADDR: ...",
 * "serf: Invalid authentication token" (Serf's text), "serf: timed out ...". */
int serfrpc_open(struct serfrpc **out, const char *addr, const char *token,
                 int64_t deadline_ms, char *err, size_t errlen);
void serfrpc_close(struct serfrpc *c);
/* Later calls on c end by deadline_ms. */
void serfrpc_set_deadline(struct serfrpc *c, int64_t deadline_ms);
/* Send a user event; an error from Serf (e.g. over its size limit) comes back
 * as "serf: <Serf's text>". */
int serfrpc_event(struct serfrpc *c, const char *name, const void *payload, size_t len,
                  bool coalesce, char *err, size_t errlen);

struct serf_member {
    char *name, *status;
    char addr[48]; /* textual IP */
    unsigned port;
    char **tagk, **tagv; /* exact tags, as Serf holds them */
    size_t ntags;
};
/* All members the agent knows. *out is owned by the caller. */
int serfrpc_members(struct serfrpc *c, struct serf_member **out, size_t *n, char *err,
                    size_t errlen);
void serfrpc_members_free(struct serf_member *m, size_t n);

struct serf_query {
    const char *name;
    const void *payload;
    size_t len;
    const char *const *nodes; /* FilterNodes, exact names */
    size_t nnodes;
    const char *const *tagk, *const *tagv; /* FilterTags, tag -> regexp */
    size_t ntags;
    int64_t timeout_ms; /* sent to Serf; 0 = the agent's default */
    bool ack;           /* RequestAck */
    size_t expect;      /* return once this many responses arrived; 0 = wait for done */
};

struct serf_reply {
    char *from;
    struct buf payload;
};

struct serf_query_result {
    char **acks;
    size_t nacks;
    struct serf_reply *resp; /* one per node, first answer kept */
    size_t nresp;
    bool done; /* Serf said done (else: expect reached or the deadline passed) */
};

/* Send a query and collect acks and responses until done, until expect
 * responses arrived (then the stream is stopped) or until the connection's
 * deadline (not an error: res holds what arrived). res is zeroed first and
 * must be freed with serfrpc_query_result_free, also after an error. */
int serfrpc_query(struct serfrpc *c, const struct serf_query *q, struct serf_query_result *res,
                  char *err, size_t errlen);
void serfrpc_query_result_free(struct serf_query_result *r);

/* ---- http.c */

/* One HTTP(S) request through libcurl, loaded with dlopen on first use. Only
 * http:// and https:// (no redirects followed), proxies from the environment
 * ignored, NOSIGNAL (SIGPIPE is ignored once libcurl is loaded). */
struct http_req {
    const char *url;
    const char *body;            /* POST body (http_post; NULL = empty) */
    size_t body_len;
    const char *content_type;    /* POST only; NULL = application/json */
    const char *user, *password; /* basic auth when user is non-empty */
    long timeout_ms;             /* whole transfer; <= 0 is taken as 1 */
    long connect_timeout_ms;     /* <= 0 or over timeout_ms: timeout_ms */
    size_t max_bytes;            /* response body cap */
};
enum http_result { HTTP_OK = 0, HTTP_ERROR = -1, HTTP_TIMEOUT = -2, HTTP_TOO_BIG = -3 };
/* HTTP_OK: any HTTP status (in *status), the body in body_out (caller frees;
 * data never NULL). Otherwise err is filled, body_out is freed and *status is
 * 0 (or the status seen before the cap was hit): HTTP_TIMEOUT when the
 * timeout passed, HTTP_TOO_BIG over max_bytes, HTTP_ERROR for the rest
 * (connection refused, DNS, TLS, bad URL, libcurl missing). */
int http_post(const struct http_req *req, struct buf *body_out, long *status,
              char *err, size_t errlen);
int http_get(const struct http_req *req, struct buf *body_out, long *status,
             char *err, size_t errlen);
/* Whether libcurl has been loaded into this process. */
bool http_loaded(void);

/* ---- store.c */

/* More of the store (the basic API is under store.c above). Keys are C
 * strings of 1..STORE_MAX_KEY bytes; values at most STORE_MAX_VALUE bytes. */
#define STORE_MAX_KEY 256
#define STORE_MAX_VALUE (1024 * 1024)
#define STORE_BUSY_MS 2000 /* busy timeout set by store_open */

/* Wait at most ms for a lock held by another process (0: fail at once). */
void store_busy_timeout(struct store *s, int ms);
/* The database file, <state_dir>/serfhand.db. */
const char *store_path(const struct store *s);
/* store_get that also reports the value's kind: *json true if it was
 * written with json (a Lua table), false for bytes. json may be NULL. */
int store_get_kind(struct store *s, const char *key, struct buf *out, bool *json,
                   char *err, size_t errlen);
/* Write val (JSON text if json, else bytes); only_new: only if absent or
 * expired. 1 written, 0 present (only_new), -1 error. ttl_ms 0 = never. */
int store_set(struct store *s, const char *key, const void *val, size_t len, bool json,
              bool only_new, int64_t ttl_ms, char *err, size_t errlen);
/* Delete up to 256 expired rows: their number, or -1. Writes sweep once
 * per connection by themselves. */
int store_purge(struct store *s, char *err, size_t errlen);
/* Live keys starting with prefix (bytes, no wildcards): their number, or
 * the first limit of them in byte order, each NUL-terminated, into out
 * (out->len reset first). 0 or -1 + err. */
int store_count(struct store *s, const char *prefix, int64_t *n, char *err, size_t errlen);
int store_keys(struct store *s, const char *prefix, int64_t limit, struct buf *out,
               size_t *n, char *err, size_t errlen);
/* BEGIN IMMEDIATE (waits up to the busy timeout), COMMIT, ROLLBACK (a no-op
 * when no transaction is open). 0 or -1 + err. */
int store_begin(struct store *s, char *err, size_t errlen);
int store_commit(struct store *s, char *err, size_t errlen);
int store_rollback(struct store *s, char *err, size_t errlen);

/* ---- lidentity.c */

/* This node's Factom identity from factomd.conf. sk is libsodium's 64-byte
 * secret key (seed || pk) in sodium_malloc memory, owned by the struct and
 * released by identity_keys_wipe; NULL when not loaded or closed. */
struct identity_keys {
    char chain_id[65]; /* lowercase hex, starts with 888888 */
    unsigned char pk[32];
    unsigned char *sk;
};

/* Find key in [section] (no subsection) of gcfg/INI text: names are
 * case-insensitive, ';' and '#' start comments, values may be double-quoted
 * with \\ \" \n \t escapes and continued by a trailing backslash; the last
 * definition wins. Copies the value, NUL-terminated, into out. Returns 1
 * found, 0 absent, -1 with err (syntax error with its line, value too long). */
int identity_conf_get(const char *text, size_t len, const char *section,
                      const char *key, char *out, size_t outlen, char *err,
                      size_t errlen);
/* Read IdentityChainID, LocalServerPrivKey (hex of a 32-byte seed or of
 * seed || pk) and LocalServerPublicKey from [app] of text; check the formats,
 * that the public key matches, and refuse factomd's public sample pair.
 * 0 with k filled, or -1 with err and k wiped. */
int identity_parse(const char *text, size_t len, struct identity_keys *k, char *err,
                   size_t errlen);
/* identity_parse of the file at path, read into sodium_malloc memory; logs a
 * warning if the file is readable by group or others. 0 or -1 with err. */
int identity_load_file(const char *path, struct identity_keys *k, char *err,
                       size_t errlen);
/* Wipe and free the secret and zero k; safe to call twice. */
void identity_keys_wipe(struct identity_keys *k);

#endif
