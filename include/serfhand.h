/*
 * serfhand.h: shared types and every cross-file prototype, one block per
 * source file, ordered by layer: the base, the plain C units (no Lua), the
 * Lua host and what runs bundle code, the Lua modules, the command line. A
 * block only uses the blocks above it; everything else is static.
 */
#ifndef SERFHAND_H
#define SERFHAND_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

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

/* =========================================================================
 * the base: memory and buffers, durable files, configuration, log
 * ========================================================================= */

/* ---- util.c */
/* A growable byte buffer; data is always NUL-terminated after len. */
struct buf {
    char *data;
    size_t len, cap;
};

void *xmalloc(size_t n);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
void buf_add(struct buf *b, const void *p, size_t n);
/* Room for n more bytes (and the NUL), allocated exactly: capacity that
 * is charged to a budget before the bytes are written. */
void buf_reserve(struct buf *b, size_t n);
void buf_addstr(struct buf *b, const char *s);
void buf_printf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void buf_free(struct buf *b);
/* Read all of fd or a file, refusing more than max bytes. 0 or -1 + err. */
int util_read_fd(int fd, size_t max, struct buf *out, char *err, size_t errlen);
int util_read_file(const char *path, size_t max, struct buf *out, char *err, size_t errlen);
/* Files the configuration names (config, trust.keys, factomd.conf, the
 * bundle-version record): looked at first, opened O_NONBLOCK so that nothing
 * can block, and refused unless a regular file of at most max bytes. The
 * error names the path and what it is instead (a FIFO, a directory, a
 * device, a socket, a dangling symlink). flags adds O_NOFOLLOW. The fd is
 * blocking again on return; the caller closes it. */
enum util_open {
    UTIL_OPEN_OK = 0,
    UTIL_OPEN_FAILED = -1,
    UTIL_OPEN_MISSING = -2, /* no such file (not a dangling symlink) */
};
enum util_open util_open_regular(const char *path, int flags, size_t max, int *fd, char *err,
                                 size_t errlen);
/* "a FIFO (named pipe)", "a directory", ... for a st_mode that is not S_IFREG. */
const char *util_file_kind(unsigned mode);
enum util_open util_read_regular(const char *path, size_t max, struct buf *out, char *err,
                                 size_t errlen);
/* Read a file holding a secret (a regular file of at most max bytes, opened
 * as util_open_regular does) straight into sodium_malloc memory: its bytes
 * never pass through the stack or a freed heap buffer. 0 with *text (NUL
 * after *len bytes; the caller sodium_free()s it) and *st (may be NULL), or
 * -1 with err naming path. Used by identity.c (factomd.conf) and
 * minisign.c (secret key files). */
struct stat;
int util_read_secret(const char *path, size_t max, char **text, size_t *len, struct stat *st,
                     char *err, size_t errlen);
/* Let a child forked from now on see zeros in [p, p+n) (MADV_WIPEONFORK on
 * the pages around it; best effort). For secrets in sodium_malloc memory,
 * whose pages hold nothing else: a forked child (proc.spawn's executor
 * sleeps for minutes before it execs) would keep a copy, and mlock is not
 * inherited, so the copy could be swapped out. */
void util_wipe_on_fork(void *p, size_t n);
/* Milliseconds of CLOCK_MONOTONIC / CLOCK_REALTIME. */
int64_t util_mono_ms(void);
int64_t util_now_ms(void);
/* A date for people: unix seconds t in UTC ISO 8601 next to how long ago
 * (or in how long) it is from now: "2026-12-05T06:00:00Z, 3 min ago",
 * "..., in 180 days". t and now within +-2^40 s. */
void util_date(struct buf *out, int64_t t, int64_t now);
void util_errf(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* [A-Za-z0-9][A-Za-z0-9_.-]{0,63}: the names of user events and queries. */
bool util_valid_name(const char *s);
/* n bytes as 2n lowercase hex digits and a NUL into out. */
void util_hex(const uint8_t *p, size_t n, char *out);
/* Append s as a JSON string literal (control characters escaped). */
void util_json_str(struct buf *b, const char *s);
/* Write all n bytes to fd, through EINTR: 0, or -1 with errno. */
int util_write_all(int fd, const void *p, size_t n);
/* qsort comparison of two char * */
int util_cmp_str(const void *a, const void *b);
/* A list of malloc'ed lines (problems, file names); p may be NULL. */
struct util_lines {
    char **v;
    size_t n;
};
void util_line_add(struct util_lines *p, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void util_lines_free(struct util_lines *p);
/* Open rel below dirfd without leaving it (openat2 RESOLVE_BENEATH): an fd,
 * or UTIL_OPEN_MISSING, or UTIL_OPEN_FAILED with err ("symlink leads out of
 * the bundle"). */
int util_open_beneath(int dirfd, const char *rel, char *err, size_t errlen);
/* Read a regular file below dirfd, at most max bytes: UTIL_OPEN_OK, _MISSING,
 * or _FAILED with err naming rel (and "dangling symlink" for one). Over max,
 * err names setting, the configuration key that set max (e.g.
 * "limits.file_bytes"), or with setting NULL says the limit is fixed.
 * util_read_beneath names no limit (its callers pass several). */
enum util_open util_read_limited(int dirfd, const char *rel, size_t max, const char *setting,
                                 struct buf *out, char *err, size_t errlen);
enum util_open util_read_beneath(int dirfd, const char *rel, size_t max, struct buf *out, char *err,
                                 size_t errlen);

/* ---- files.c */
/* fsync a directory (EINVAL, a file system that cannot, is no error). */
int files_fsync_dir(int dfd);
/* mkdir -p path (mode 0700: it makes the state directory). 0 or -1 with err. */
int files_mkdir_p(const char *path, char *err, size_t errlen);
/* Remove name below dfd and everything in it (symlinks are not followed). */
int files_rm_tree(int dfd, const char *name);
/* Write rel (with its parent directories) below rootfd, O_EXCL, mode 0600
 * (directories 0700: it writes below the state directory), and fsync
 * it; the directories made are added to dirs (one NUL-terminated path
 * each) for files_fsync_dirs. 0 or -1 with err. */
int files_write_at(int rootfd, const char *rel, const struct buf *b, struct buf *dirs, char *err,
                   size_t errlen);
/* fsync every directory in dirs (deepest last made first) and the root. */
int files_fsync_dirs(int rootfd, const struct buf *dirs, char *err, size_t errlen);
/* Write name below dirfd atomically: temp file, fsync, rename. 0 or -1. */
int files_write_atomic(int dirfd, const char *name, const struct buf *b, char *err, size_t errlen);

/* ---- config.c */
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
    bool set;   /* given in the file (not a default) */
    int line;   /* where the file sets it; 0 for a default */
    int *lines; /* CFG_STRLIST: the line of each entry (nlist of them) */
};

struct config {
    char *file;          /* the file read, or NULL: built-in defaults */
    struct cfg_value *v; /* one per schema item */
};

#define SH_DEFAULT_CONFIG "/etc/serfhand/serfhand.conf"

/* Load the configuration: path (from -c) or $SERFHAND_CONFIG or the default
 * path; the default path may be missing, an explicit one may not. Unknown
 * keys and wrong types fail with the key and the file line. A non-empty
 * trust.keys is checked as trust_keyset_load will read it: every entry a
 * valid minisign public key ("RW..." inline, else an absolute path to a .pub
 * file) and at least trust.threshold distinct keys; a failure names the
 * entry, its line and what it was taken for. */
int config_load(struct config *c, const char *path, char *err, size_t errlen);
void config_free(struct config *c);
const char *config_str(const struct config *c, const char *path);
/* Override the string setting at path (run and test: state_dir). */
void config_set_str(struct config *c, const char *path, const char *value);
long long config_int(const struct config *c, const char *path);
bool config_bool(const struct config *c, const char *path);
char *const *config_list(const struct config *c, const char *path, size_t *n);
/* Is the setting at path a secret (a password, a token)? Every view of the
 * settings (`serfhand config`, serfhand.config) shows it only as "(set)". */
bool config_secret(const char *path);
/* Log a warning when the config file holds a secret but is readable by group
 * or others; call once the log is open (stderr may be a query response). */
void config_warn_exposed(const struct config *c);
/* The schema, for `serfhand config` and the Lua view; ends with path NULL. */
const struct cfg_item *config_schema(void);
const struct cfg_value *config_value(const struct config *c, size_t i);

/* ---- log.c */
enum log_level { LOG_LVL_DEBUG, LOG_LVL_INFO, LOG_LVL_WARN, LOG_LVL_ERROR };

/* Open the log per config ("syslog", "stderr", "fd:N" or a file path).
 * quiet_stdio: never use fd 1/2 (while a query is handled). */
void log_open(const struct config *c, bool quiet_stdio);
void log_close(void);
void log_msg(enum log_level lvl, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* One message of n bytes as it is (NULs and all: escaped, never cut). */
void log_bytes(enum log_level lvl, const char *msg, size_t n);
/* Write one message without locks or allocation (from a signal handler). */
void log_signal_safe(const char *msg);
/* Context prefixed to every line, e.g. "user:deploy"; may be NULL. */
void log_set_context(const char *ctx);
/* The bundle the run uses, "name@version" in JSON lines ("bundle"); NULL
 * clears it. Set by bundle_open. */
void log_set_bundle(const char *name, long long version);

/* =========================================================================
 * plain C units: formats, trust, the bundle, state, processes, the network
 * ========================================================================= */

/* ---- event.c */
enum event_type {
    EV_MEMBER_JOIN,
    EV_MEMBER_LEAVE,
    EV_MEMBER_FAILED,
    EV_MEMBER_UPDATE,
    EV_MEMBER_REAP,
    EV_USER,
    EV_QUERY,
    EV_TICK,
    EV_TOOL, /* a command's run (action, propose, test): type_name names it */
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
    char **args; /* EV_TOOL: the command's operands (ev.args); args[0] is the payload */
    size_t nargs;
};

/* Fill ev from the environment and the stdin bytes. Returns 0, or -1 with
 * err (unknown SERF_EVENT, invalid name, bad member line). */
int event_parse(struct event *ev, char *const *envp, const char *in, size_t inlen, char *err,
                size_t errlen);
void event_free(struct event *ev);
int event_type_parse(const char *s);
/* "member-join", "query", "tick", ...; "tool" for EV_TOOL. */
const char *event_type_name(enum event_type t);
/* The handler file for an event, relative to the bundle, e.g.
 * "handlers/user/deploy.lua". NULL if the name is invalid. */
char *event_handler_path(const struct event *ev);
/* An event no Serf agent sent: a tick (EV_TICK) or a command's run (EV_TOOL,
 * type_name "action", name "restart": handlers/action/restart.lua), for self
 * (this node's name), with args (payload = args[0]). Free with event_free. */
void event_local(struct event *ev, enum event_type type, const char *type_name, const char *name,
                 const char *self, const char *const *args, size_t nargs);
/* Push the Lua table ev = {type, name, ltime, payload, self = {name, role,
 * tags}, members = {...}, args = {...} (EV_TOOL), bundle = {name, version}
 * (when b is set; the version an integer)}. Raises at the memory cap: call
 * it protected. The one place ev is built. */
struct bundle;
void event_push(lua_State *L, const struct event *ev, const struct bundle *b);

/* ---- minisign.c */
/* minisign keys and signatures (libsodium only). Secret keys live in
 * sodium_malloc memory (wiped on free). Parsers are strict like minisign
 * 0.12: exact line counts and base64 lengths, no CR/NUL/control characters,
 * printable trusted comment. */
#define MINISIGN_PK_B64 56        /* base64 characters of a public key */
#define MINISIGN_COMMENT_MAX 1024 /* minisign COMMENTMAXBYTES */
#define MINISIGN_TRUSTED_MAX 8192 /* minisign TRUSTEDCOMMENTMAXBYTES */
/* The largest .minisig file: two comment lines and two base64 lines. */
#define MINISIGN_SIG_FILE_MAX (2 * MINISIGN_COMMENT_MAX + MINISIGN_TRUSTED_MAX + 512)
struct minisign_pubkey {
    uint8_t keyid[8]; /* random, not signed: selects a key, is no identity */
    uint8_t pk[32];
};
struct minisign_seckey {
    uint8_t keyid[8];
    uint8_t sk[64]; /* libsodium secret key: seed || pk */
};
struct minisign_sig {
    bool legacy; /* "Ed": signs the message itself, refused for bundles */
    uint8_t keyid[8], sig[64], global[64];
    char *trusted; /* trusted comment without its prefix (malloc'ed) */
};
int minisign_init(void); /* sodium_init; needed by key tools, not by verification */
/* A key id in 16 hex digits, as serfhand writes it in comments and in
 * MANIFEST.json.<KEYID>.minisig. minisign prints the same id without leading
 * zeros, so a signature file named from its output may carry fewer digits:
 * trust_sig_names gives both names (1 if they are the same) and
 * minisign_keyid_is reads either form. */
void minisign_keyid_hex(const uint8_t keyid[8], char out[17]);
bool minisign_keyid_is(const uint8_t keyid[8], const char *hex);
/* "RW" and base64 characters only: meant as a key string, not a file name. */
bool minisign_looks_like_key(const char *s);
/* A .pub file (2 lines) or a bare "RW..." key string. */
int minisign_pubkey_parse(struct minisign_pubkey *pk, const char *text, size_t len, char *err,
                          size_t errlen);
void minisign_pubkey_base64(const struct minisign_pubkey *pk, char out[57]);
void minisign_pubkey_write(const struct minisign_pubkey *pk, struct buf *out);
/* 1 encrypted (scrypt), 0 not, -1 not a valid secret key file. */
/* Read a secret key file (a regular file, at most 4 KiB) straight into
 * sodium_malloc memory: no copy of its bytes on the stack or in freed heap.
 * 0 with *text, *len (the caller sodium_free()s *text), or -1 with err. */
int minisign_seckey_read(const char *path, char **text, size_t *len, char *err, size_t errlen);
int minisign_seckey_encrypted(const char *text, size_t len);
/* Decrypt (password may be NULL for -W keys) and check the checksum and that
 * the public half matches the seed. *out is freed with minisign_seckey_free. */
int minisign_seckey_parse(struct minisign_seckey **out, const char *text, size_t len,
                          const char *password, char *err, size_t errlen);
void minisign_seckey_free(struct minisign_seckey *sk);
void minisign_seckey_pubkey(const struct minisign_seckey *sk, struct minisign_pubkey *pk);
int minisign_keygen(struct minisign_pubkey *pk, struct minisign_seckey **sk);
/* password NULL: unencrypted (minisign -W). Else scrypt with these limits. */
int minisign_seckey_write(const struct minisign_seckey *sk, const char *password,
                          unsigned long long opslimit, size_t memlimit, struct buf *out, char *err,
                          size_t errlen);
int minisign_sig_parse(struct minisign_sig *s, const char *text, size_t len, char *err,
                       size_t errlen);
void minisign_sig_free(struct minisign_sig *s);
/* Key id, signature over BLAKE2b-512(msg) (or msg if legacy and allowed),
 * and the global signature over sig || trusted comment. */
int minisign_sig_verify(const struct minisign_sig *s, const struct minisign_pubkey *pk,
                        const void *msg, size_t len, bool allow_legacy, char *err, size_t errlen);
/* Append a 4-line prehashed "ED" .minisig for msg to out. */
int minisign_sign(const struct minisign_seckey *sk, const void *msg, size_t len,
                  const char *trusted, const char *untrusted, struct buf *out, char *err,
                  size_t errlen);

/* ---- password.c */
/* A password from $SERFHAND_PASSWORD (scripts, tests) or read from the
 * terminal without echo (confirm: asked twice). Free with password_free. */
int password_read(const char *prompt, bool confirm, char **out, char *err, size_t errlen);
void password_free(char *pw);

/* ---- manifest.c */
/* MANIFEST.json: what a bundle holds, each file with its size and hash. */
#define MANIFEST_MAX (4 * 1024 * 1024)
/* The largest integer a manifest may hold: 2^53 - 1, the largest that every
 * JSON reader (jq, JavaScript, anything that reads numbers as doubles) reads
 * exactly, so serfhand and any other reader see the same version and sizes. */
#define MANIFEST_INT_MAX 9007199254740991LL
struct manifest_file {
    char *path; /* handlers/... or lua/... */
    uint64_t size;
    uint8_t hash[32]; /* BLAKE2b-256 */
};
struct manifest {
    char *bundle;
    long long version, created, expires; /* unix seconds */
    struct manifest_file *files;         /* sorted by path */
    size_t nfiles;
};
/* Strict JSON (duplicate keys, unknown keys, floats, non-ASCII refused),
 * paths checked with manifest_valid_rel. */
int manifest_parse(struct manifest *m, const char *text, size_t len, char *err, size_t errlen);
void manifest_write(const struct manifest *m, struct buf *out);
void manifest_free(struct manifest *m);
const struct manifest_file *manifest_find(const struct manifest *m, const char *path);
/* Fill m->files from every file under dir/handlers and dir/lua. 0, or -1
 * with problems added. */
int manifest_build(struct manifest *m, const char *dir, size_t max_file, struct util_lines *p);
/* handlers/... or lua/..., components [A-Za-z0-9_.+@-]+, no "." or "..". */
bool manifest_valid_rel(const char *rel);
/* Read f once and check its size and hash: out holds exactly those bytes. */
int manifest_read_checked(int dirfd, const struct manifest_file *f, size_t max, struct buf *out,
                          char *err, size_t errlen);
/* Every listed file matches and no unlisted file: number of problems added. */
int manifest_check_files(int rootfd, const struct manifest *m, size_t max_file,
                         struct util_lines *p);

/* ---- trust.c */
/* The operator's trust root and the bundle checks made against it. */
struct trust_keyset {
    struct minisign_pubkey *keys; /* trust.keys, in order */
    size_t n;
    long long threshold;
};
/* Which checks failed, for machines: each bit is named in the JSON report
 * ("failed": ["signatures", ...]) next to the prose problems. */
enum trust_fail {
    TRUST_FAIL_BUNDLE = 1 << 0,     /* "bundle": the directory cannot be opened */
    TRUST_FAIL_MANIFEST = 1 << 1,   /* "manifest": missing, unreadable or invalid */
    TRUST_FAIL_SIGNATURES = 1 << 2, /* "signatures": below the threshold, bad signature files */
    TRUST_FAIL_FILES = 1 << 3,      /* "files": a hash, size, missing or unlisted file */
    TRUST_FAIL_EXPIRED = 1 << 4,    /* "expired" */
    TRUST_FAIL_COMPILE = 1 << 5,    /* "compile": a Lua file does not compile */
    TRUST_FAIL_VERSION = 1 << 6,    /* "version": below the recorded one, or that is unknown */
    TRUST_FAIL_HANDLERS = 1 << 7,   /* "handlers": a top level raised, returned no handler,
                                       or required a refused module */
    TRUST_FAIL_KEYS = 1 << 8,       /* "keys": trust.keys cannot be loaded */
};
struct trust_report {
    bool have_manifest;
    struct manifest m;
    char manifest_hash[65]; /* BLAKE2b-256 hex of MANIFEST.json, "" if absent */
    int distinct;           /* distinct trusted keys with a valid signature */
    long long threshold;
    struct util_lines sigs;     /* one line per signature file */
    struct util_lines problems; /* empty = bundle ok */
    unsigned failed;            /* enum trust_fail bits, one per failed check */
};
#define TRUST_SIGNAME_MAX 64
/* The names a signature by keyid may have (see minisign_keyid_hex). */
int trust_sig_names(const uint8_t keyid[8], char names[2][TRUST_SIGNAME_MAX]);
/* Two keys may share a key id (it is random and not signed), but not one
 * file name: the key name MANIFEST.json.<KEYID>-<PK>.minisig (PK: the first
 * 8 bytes of the Ed25519 public key, 16 upper-case hex digits) holds a
 * signature when the key-id name holds another key's. Runs and every command
 * read the key-id names and the key name of each trusted key. */
void trust_sig_keyname(const struct minisign_pubkey *pk, char name[TRUST_SIGNAME_MAX]);
/* Every file name trust_verify_sigs reads for ks, sorted, each once. */
void trust_sig_files(const struct trust_keyset *ks, struct util_lines *names);
/* name is a key-id name with fewer than 16 digits (minisign's short form):
 * true with full, the same name with 16 digits. */
bool trust_sig_fullname(const char *name, char full[TRUST_SIGNAME_MAX]);
/* Where sign writes pk's signature of man in the bundle dirfd: the 16-digit
 * key-id name, unless it holds a signature by the same key id that pk does
 * not verify (another key's), then the key name. stale: minisign's short
 * key-id name if it holds pk's own signature (to remove), else "". */
void trust_sig_name_for(int dirfd, const struct minisign_pubkey *pk, const char *man, size_t len,
                        char name[TRUST_SIGNAME_MAX], char stale[TRUST_SIGNAME_MAX]);
/* trust.keys (files or RW... strings) and trust.threshold. */
int trust_keyset_load(struct trust_keyset *ks, const struct config *cfg, char *err, size_t errlen);
void trust_keyset_free(struct trust_keyset *ks);
/* Verify the signatures of the raw manifest bytes: 0 when at least
 * threshold distinct trusted public keys signed, else -1 with err. The one
 * counting rule of every run and command: the files of the trusted keys
 * (trust_sig_names, trust_sig_keyname) are read, each counts for the trusted
 * key that verifies it (every key with its id is tried), each distinct public
 * key once. lines/problems (may be NULL) get one line per file; scan_all also
 * reports the other MANIFEST.json.*.minisig files, which never count. */
int trust_verify_sigs(int rootfd, const char *man, size_t len, const struct trust_keyset *ks,
                      bool scan_all, struct util_lines *lines, struct util_lines *problems,
                      int *distinct, char *err, size_t errlen);
/* verify/check: signatures, threshold, manifest, files, expiry. Returns the
 * number of problems (r->problems). */
int trust_check_bundle(struct trust_report *r, const char *dir, const struct trust_keyset *ks,
                       size_t max_file, int64_t now_s);
void trust_report_free(struct trust_report *r);
/* The report as JSON {bundle, version, manifest, ok, [threshold,
 * valid_keys, created, expires, files, signatures,] failed, problems} (full
 * adds the bracketed part; without full, failed only when not empty; max > 0
 * caps the length by dropping problems, with a final "... N more"). */
void trust_report_json(const struct trust_report *r, bool full, size_t max, struct buf *out);
/* Print r to stdout as `verify` and `check` do: text, or one line of JSON. */
void trust_report_print(const struct trust_report *r, const char *dir, bool json);

/* ---- bundle.c */
/* The active handler bundle. bundle_read is the one place through which
 * every handler and module is read: it hands back exactly the bytes that were
 * checked, so the caller loads what was verified. */
struct bundle {
    char *dir;
    char *name;        /* from the manifest, or "unsigned" */
    long long version; /* from the manifest, or 0 (unsigned); versions are long long everywhere */
    size_t max_file;
    bool verify;               /* false only for `serfhand run --unsigned`-like tools */
    int dirfd;                 /* the bundle directory, -1 when closed */
    struct manifest *manifest; /* verified manifest (verify only) */
};

/* Open the bundle in dir. With verify (every real run), read MANIFEST.json
 * once, check the signatures over its raw bytes and the threshold against
 * trust.keys/trust.threshold, parse it, refuse a version below the highest
 * one this node recorded (raising the record when higher) and log a warning
 * when it has expired. Fails closed: -1 with err. No directory walk: files
 * are checked as bundle_read loads them. limits.file_bytes caps each file. */
int bundle_open(struct bundle *b, const char *dir, const struct config *cfg, bool verify, char *err,
                size_t errlen);
void bundle_close(struct bundle *b);
/* The highest bundle version this node accepted, kept in
 * <state_dir>/bundle-version; 0 when none. 0, or -1 + err (unreadable or
 * damaged: the caller fails closed). */
int bundle_highest_version(const char *state_dir, long long *out, char *err, size_t errlen);
/* Raise the record to version if it is higher. 0 or -1 + err. */
int bundle_record_version(const char *state_dir, long long version, char *err, size_t errlen);
/* Set the record to exactly version (an operator's downgrade). 0 or -1 + err. */
int bundle_set_version(const char *state_dir, long long version, char *err, size_t errlen);
/* Read rel (e.g. "handlers/tick.lua"): UTIL_OPEN_OK with out filled,
 * UTIL_OPEN_MISSING if the file does not exist, UTIL_OPEN_FAILED with err
 * when it must not be run. */
enum util_open bundle_read(struct bundle *b, const char *rel, struct buf *out, char *err,
                           size_t errlen);
/* rel must be handlers/... or lua/..., no "..", no absolute path. */
bool bundle_valid_rel(const char *rel);

/* ---- store.c */
/* The durable key-value store: SQLite in <state_dir>/serfhand.db, WAL mode,
 * busy timeout. Keys and values are byte strings; expires_ms 0 = never. */
struct store;

int store_open(struct store **out, const char *state_dir, char *err, size_t errlen);
void store_close(struct store *s);
/* 1 found (value malloc'ed into out), 0 absent or expired, -1 error. */
int store_get(struct store *s, const char *key, struct buf *out, char *err, size_t errlen);
int store_put(struct store *s, const char *key, const void *val, size_t len, int64_t ttl_ms,
              char *err, size_t errlen);
/* Insert only if absent (or expired): 1 inserted, 0 already there, -1 error. */
int store_add(struct store *s, const char *key, const void *val, size_t len, int64_t ttl_ms,
              char *err, size_t errlen);
int store_del(struct store *s, const char *key, char *err, size_t errlen);

/* Keys are C strings of 1..STORE_MAX_KEY bytes; values at most
 * STORE_MAX_VALUE bytes. */
#define STORE_MAX_KEY 256
#define STORE_MAX_VALUE (1024 * 1024)
#define STORE_BUSY_MS 2000  /* busy timeout set by store_open */
#define STORE_WAL_PAGES 100 /* WAL frames at which a commit checkpoints and empties it */

/* store_open with a busy timeout of busy_ms instead of STORE_BUSY_MS. */
int store_open_ms(struct store **out, const char *state_dir, int busy_ms, char *err, size_t errlen);
/* Wait at most ms for a lock held by another process (0: fail at once). */
void store_busy_timeout(struct store *s, int ms);
/* The database file, <state_dir>/serfhand.db. */
const char *store_path(const struct store *s);
/* store_get that also reports the value's kind: *json true if it was
 * written with json (a Lua table), false for bytes. json may be NULL. */
int store_get_kind(struct store *s, const char *key, struct buf *out, bool *json, char *err,
                   size_t errlen);
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
int store_keys(struct store *s, const char *prefix, int64_t limit, struct buf *out, size_t *n,
               char *err, size_t errlen);
/* BEGIN IMMEDIATE (waits up to the busy timeout), COMMIT, ROLLBACK (a no-op
 * when no transaction is open). 0 or -1 + err. */
int store_begin(struct store *s, char *err, size_t errlen);
int store_commit(struct store *s, char *err, size_t errlen);
int store_rollback(struct store *s, char *err, size_t errlen);
/* What a stored value is: its SQLite storage class. */
enum store_kind { STORE_BYTES, STORE_JSON, STORE_INT };
/* store_get with the value's kind; a counter (STORE_INT) comes as decimal
 * text in out. */
int store_get_value(struct store *s, const char *key, struct buf *out, enum store_kind *kind,
                    char *err, size_t errlen);
enum store_incr {
    STORE_INCR_OK,
    STORE_INCR_NOT_INTEGER, /* the live value is bytes or JSON, not a counter */
    STORE_INCR_OVERFLOW,    /* the sum leaves int64: nothing written */
    STORE_INCR_ERROR,       /* SQLite failed (locked, disk full, ...) */
};
/* Add by to the counter at key atomically (absent or expired counts as 0)
 * and set *out to the new value. ttl_ms > 0 sets the expiry of a counter it
 * creates; a live counter keeps its own. err is filled unless _OK. */
enum store_incr store_incr(struct store *s, const char *key, int64_t by, int64_t ttl_ms,
                           int64_t *out, char *err, size_t errlen);

/* ---- metrics.c */
/* Opt-in counters (metrics.enabled) for Prometheus, kept in an append-only
 * journal under state_dir that readers fold. Labels come from fixed sets. */
#define MT_NTYPE 9    /* the 5 member events, user, query, tick, other */
#define MT_NOUTCOME 8 /* by exit code, SH_EXIT_OK .. SH_EXIT_EVENT */
#define MT_NBUCKET 12 /* duration buckets 5 ms .. 10 s, then +Inf */
struct metrics {
    uint64_t events[MT_NTYPE][MT_NOUTCOME];
    uint64_t bucket[MT_NTYPE][MT_NBUCKET]; /* runs per bucket, not cumulative */
    uint64_t sum_us[MT_NTYPE];
    uint64_t bad_records; /* journal lines that did not parse */
    uint64_t generation;  /* journals compacted into the state so far */
};
/* Count one run: type is SERF_EVENT's value or "tick" (anything else counts
 * as "other"), exit_code the process's, ms its wall time. Nothing at all
 * unless metrics.enabled; never fails the run (a failure is logged). After a
 * tick, also writes metrics.textfile. */
void metrics_record(const struct config *cfg, const char *type, int exit_code, int64_t ms);
/* Every run counted so far (read-only, under a shared lock). 0 or -1. */
int metrics_read(const char *state_dir, struct metrics *m, char *err, size_t errlen);
/* Fold the journal into <state_dir>/metrics.state and start it again;
 * m gets the totals. wait: for another compaction, else return 0 at once
 * if one runs. 1 done, 0 skipped, -1 error. */
int metrics_compact(const char *state_dir, struct metrics *m, bool wait, char *err, size_t errlen);
/* The Prometheus text exposition format (HELP and TYPE for each family). */
void metrics_render(const struct metrics *m, struct buf *out);

/* ---- identity.c */
/* This node's Factom identity from factomd.conf. sk is libsodium's 64-byte
 * secret key (seed || pk) in sodium_malloc memory, owned by the struct and
 * released by identity_keys_wipe; NULL when not loaded or closed. */
/* What the LocalServerPublicKey line said: factomd never reads it (it
 * derives the key from LocalServerPrivKey), so only a warning comes of it. */
enum identity_pub_line {
    IDENTITY_PUB_MATCH = 0, /* the line names the derived key */
    IDENTITY_PUB_ABSENT,    /* no line */
    IDENTITY_PUB_MISMATCH,  /* another key (stale, or copied from elsewhere) */
    IDENTITY_PUB_INVALID,   /* not 64 hex digits */
};
struct identity_keys {
    char chain_id[65];    /* lowercase hex, starts with 888888 */
    unsigned char pk[32]; /* derived from LocalServerPrivKey, as factomd does */
    unsigned char *sk;
    enum identity_pub_line pub_line;
};

/* Find key in [section] (no subsection) of gcfg/INI text as gcfg 1.2 (which
 * factomd uses) reads it: a leading UTF-8 BOM is skipped, names are
 * case-insensitive, ';' and '#' start comments, values may be double-quoted
 * with \\ \" \n \t \b escapes and continued by a trailing backslash; the
 * last definition wins. Copies the value, NUL-terminated, into out. Returns 1
 * found, 0 absent, -1 with err (syntax error with its line, value too long). */
int identity_conf_get(const char *text, size_t len, const char *section, const char *key, char *out,
                      size_t outlen, char *err, size_t errlen);
/* Read IdentityChainID and LocalServerPrivKey (hex of a 32-byte seed or of
 * seed || pk) from [app] of text, derive the public key from the private one
 * as factomd does, and refuse factomd's public sample key. A
 * LocalServerPublicKey line is only compared (k->pub_line). 0 with k filled,
 * or -1 with err and k wiped. */
int identity_parse(const char *text, size_t len, struct identity_keys *k, char *err, size_t errlen);
/* identity_parse of the file at path, read into sodium_malloc memory; logs a
 * warning if the file is readable by group or others, or if its
 * LocalServerPublicKey line disagrees. 0 or -1 with err. */
int identity_load_file(const char *path, struct identity_keys *k, char *err, size_t errlen);
/* factomd's own RPC credentials, FactomdRpcUser and FactomdRpcPass in [app]
 * of the factomd.conf at path, into user and pass (the caller wipes pass).
 * 1 when a user is set, 0 when none, -1 with err (file or syntax). */
int identity_rpc_auth(const char *path, char *user, size_t ulen, char *pass, size_t plen, char *err,
                      size_t errlen);
/* Wipe and free the secret and zero k; safe to call twice. */
void identity_keys_wipe(struct identity_keys *k);
/* The only message the identity key ever signs (DESIGN 4b, no signing
 * oracle): "serfhand/1\n" context "\n" msg. */
#define IDENTITY_DOMAIN "serfhand/1\n"
#define IDENTITY_CONTEXT_MAX 64
/* Is context a valid framing name, [a-z0-9][a-z0-9._-]{0,63}? */
int identity_context_ok(const char *context, size_t len);
/* Bytes of the framed message for a context of clen and a message of mlen;
 * 0 on overflow. */
size_t identity_frame_len(size_t clen, size_t mlen);
/* Sign the framed message with k into sig (64 bytes). The frame is built in
 * the caller's scratch of identity_frame_len(clen, mlen) bytes (so a Lua
 * caller can charge it to the state's memory cap). -1 with err when the
 * context is invalid or the key is closed. */
int identity_sign_framed(const struct identity_keys *k, const char *context, size_t clen,
                         const unsigned char *msg, size_t mlen, unsigned char *scratch,
                         unsigned char *sig, char *err, size_t errlen);

/* ---- proc.c */
/* Run a command without a shell, or start it detached; used by lproc.c.
 * argv[0] is searched in the PATH of envp; the child gets envp, default
 * signal dispositions and resource limits, and no other descriptors. */
struct proc_cmd {
    char *const *argv;
    const char *path; /* the file to exec (proc_allowed's answer); NULL: search argv[0] */
    char *const *envp;
    const char *cwd; /* NULL: stay */
    int64_t exec_at; /* CLOCK_MONOTONIC ms to exec at; 0 = at once. proc_run: the
                        fork and set-up happen at the call, only the exec waits */
};
struct proc_run_opts {
    const char *stdin_data; /* NULL: /dev/null */
    size_t stdin_len;
    size_t max_output; /* per stream */
    size_t mem_max;    /* the most both output buffers may hold (allocated
                          bytes): the run's memory cap; 0 = no bound */
    int64_t deadline;  /* CLOCK_MONOTONIC ms, 0 = none */
};
struct proc_run_result {
    int64_t started_ms; /* CLOCK_REALTIME ms at which the child exec'd */
    int wstatus;
    bool reaped, timed_out, truncated;
    bool out_of_memory; /* the output passed mem_max (or malloc failed) */
};
/* Run c in its own process group with pipes for stdin, stdout and stderr;
 * at the deadline, when an output passes max_output or the buffers would
 * pass mem_max, SIGTERM the group, then SIGKILL. 0 with r filled and
 * stdout/stderr appended to out[0] and out[1] (owned by the caller; their
 * capacity never passes mem_max), or -1 with err when it could not start. */
int proc_run(const struct proc_cmd *c, const struct proc_run_opts *o, struct buf out[2],
             struct proc_run_result *r, char *err, size_t errlen);
/* Start c fully detached (setsid, stdin /dev/null, output to log or
 * /dev/null): its pid, or -1 with err (cannot fork, exec or chdir). */
pid_t proc_spawn(const struct proc_cmd *c, const char *log, char *err, size_t errlen);
/* What proc_allowed says of an argv (DESIGN 4b: operator-approved only). */
enum proc_allow {
    PROC_ALLOWED,     /* path filled */
    PROC_NOT_ALLOWED, /* resolved, but not in proc.allow */
    PROC_NOT_FOUND,   /* a bare name not found in PROC_SAFE_PATH */
    PROC_SELF,        /* this serfhand binary as `action` (restart executor): path filled */
    PROC_BAD_SELF,    /* this serfhand binary, but not as exactly `action ACT DIGEST` */
};
/* Where a bare command name is looked up; never the caller's PATH. */
#define PROC_SAFE_PATH "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
/* May argv run? A bare argv[0] is resolved through PROC_SAFE_PATH. Allowed
 * are: a file listed in allow (absolute paths; the same path, or the same
 * real file under the same base name, so a multi-call binary cannot be
 * reached under another name); argv equal to restart, element for element
 * (the configured factomd.restart command, nrestart elements; none when 0);
 * and exactly {"/proc/self/exe", "action", ACT, DIGEST} (ACT a handler name,
 * DIGEST 64 lowercase hex: no option can reach the executor). Fills path
 * (the file to exec, pathlen >= PATH_MAX) or err. */
enum proc_allow proc_allowed(char *const *argv, char *const *allow, size_t nallow,
                             char *const *restart, size_t nrestart, char *path, size_t pathlen,
                             char *err, size_t errlen);
/* True while pid is a live process (not a zombie); reaps our own child. */
bool proc_alive(pid_t pid);
/* True once proc_spawn has started a child that waits (exec_at) before it
 * execs: until then it shares this process's memory copy-on-write. */
bool proc_spawned_waiting(void);

/* ---- msgpack.c */
/* The msgpack writer appends to a struct buf; the reader is bounded. */
void msgpack_map(struct buf *b, uint32_t n);
void msgpack_array(struct buf *b, uint32_t n);
void msgpack_str(struct buf *b, const char *s, size_t n);
void msgpack_cstr(struct buf *b, const char *s);
void msgpack_bin(struct buf *b, const void *p, size_t n);
void msgpack_bool(struct buf *b, bool v);
void msgpack_uint(struct buf *b, uint64_t v);
void msgpack_int(struct buf *b, int64_t v);

enum mp_type {
    MP_NIL,
    MP_BOOL,
    MP_UINT,
    MP_INT,
    MP_FLOAT,
    MP_STR,
    MP_BIN,
    MP_ARRAY,
    MP_MAP,
    MP_EXT
};

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
        struct {
            const char *p;
            size_t len;
        } s;
        struct {
            struct mp_value *items;
            size_t n;
        } a;
    } v;
};

/* Decode one object from p[0..len): 1 = decoded (*used bytes consumed, *out
 * to be freed with msgpack_free), 0 = incomplete (more bytes needed),
 * -1 = malformed (err). Depth, element count and size are bounded. */
int msgpack_decode(const char *p, size_t len, size_t *used, struct mp_value **out, char *err,
                   size_t errlen);
void msgpack_free(struct mp_value *v);
/* The value of the str key in map, or NULL (also when map is not a map). */
const struct mp_value *msgpack_get(const struct mp_value *map, const char *key);
/* An unsigned integer value (MP_UINT, or MP_INT >= 0): true and *out. */
bool msgpack_uint_of(const struct mp_value *v, uint64_t *out);

/* ---- serfrpc.c */
/* A client for the Serf agent's msgpack RPC (reference/serf.md section 9),
 * used by lserf.c, cmd_status.c and cmd_announce.c. */
struct serfrpc;

/* Connect to addr ("host:port", "[v6]:port"), handshake, and authenticate
 * with token unless it is NULL or "". Every step ends by deadline_ms
 * (util_mono_ms scale). Errors read "serf: cannot connect to ADDR: ...",
 * "serf: Invalid authentication token" (Serf's text), "serf: timed out ...". */
int serfrpc_open(struct serfrpc **out, const char *addr, const char *token, int64_t deadline_ms,
                 char *err, size_t errlen);
void serfrpc_close(struct serfrpc *c);
/* Where the agent's RPC is and its token, as configured: serf.rpc_addr,
 * else $SERF_RPC_ADDR, else 127.0.0.1:7373; serf.rpc_auth, else
 * $SERF_RPC_AUTH (NULL when neither: no auth). cfg may be NULL. */
void serfrpc_endpoint(const struct config *cfg, const char **addr, const char **token);
/* Later calls on c end by deadline_ms. */
void serfrpc_set_deadline(struct serfrpc *c, int64_t deadline_ms);
/* What the calls return when c's memory budget would be passed; err then
 * names what did not fit ("the answers to NAME", "the request (N bytes)"). */
#define SERFRPC_NO_MEMORY (-2)
/* Charge what c holds from now on to a memory budget: charge(ctx, n) says
 * whether n more bytes fit (0) or not (-1, and nothing is charged); release
 * gives bytes back. Charged: the receive buffer's capacity as it grows
 * (released at serfrpc_close) and what a query's result keeps (acks, names,
 * answers: its held bytes, which the caller releases once the result is
 * freed). A call that would pass the budget ends with SERFRPC_NO_MEMORY. */
void serfrpc_set_budget(struct serfrpc *c, int (*charge)(void *ctx, size_t n),
                        void (*release)(void *ctx, size_t n), void *ctx);
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
/* All members the agent knows. *out is owned by the caller and not charged
 * to c's budget: serfrpc_members_size says what it holds. */
int serfrpc_members(struct serfrpc *c, struct serf_member **out, size_t *n, char *err,
                    size_t errlen);
void serfrpc_members_free(struct serf_member *m, size_t n);
size_t serfrpc_members_size(const struct serf_member *m, size_t n);

struct serf_reply {
    char *from;
    struct buf payload;
};

/* What on_response wants next: more answers, the end of this query (its
 * stream is stopped), or the end of every query of the call at once. */
enum serf_next { SERF_MORE = 0, SERF_STOP, SERF_ABORT };

struct serf_query {
    const char *name;
    const void *payload;
    size_t len;
    const char *const *nodes; /* FilterNodes, exact names */
    size_t nnodes;
    const char *const *tagk, *const *tagv; /* FilterTags, tag -> regexp */
    size_t ntags;
    int64_t timeout_ms;   /* sent to Serf; 0 = the agent's default */
    bool ack;             /* RequestAck */
    uint8_t relay_factor; /* RelayFactor: each answer also goes through this
                             many other members (0 = direct only) */
    size_t expect;        /* return once this many responses arrived; 0 = wait for done */
    /* called with each new response (or NULL) */
    enum serf_next (*on_response)(void *ctx, const struct serf_reply *r);
    void *on_response_ctx;
    /* Retries (Serf does not repeat a query a node missed by gossip): after
     * 1, 3 and 7 x retry_ms (SERF_MAX_RETRIES), the nodes of retry_nodes that
     * have neither acked nor answered get the query again, targeted at them
     * (FilterNodes), for the rest of its timeout; their acks and answers join
     * this query's result. A node that acked has the query and is not asked
     * again. retry_nodes set implies ack. A retry names at most retry_max of
     * them (0 = no bound; each name makes the encoded query longer, and
     * Serf refuses one over its size limit), the first in retry_nodes' order. */
    const char *const *retry_nodes;
    size_t nretry_nodes;
    int64_t retry_ms;
    size_t retry_max;
};

#define SERF_MAX_RETRIES 3

struct serf_query_result {
    char **acks;
    size_t nacks;
    struct serf_reply *resp; /* one per node, first answer kept */
    size_t nresp;
    size_t held; /* bytes charged to the connection's budget for these */
    bool done;   /* Serf said done (else: expect reached or the deadline passed) */
};

/* Send a query and collect acks and responses until done, until expect
 * responses arrived or on_response returned SERF_STOP (then the agent is
 * asked to stop the stream), or until the connection's deadline (not an
 * error: res holds what arrived). res is zeroed first and must be freed with
 * serfrpc_query_result_free, also after an error. The connection should be
 * closed afterwards: records the agent had queued may still arrive. */
int serfrpc_query(struct serfrpc *c, const struct serf_query *q, struct serf_query_result *res,
                  char *err, size_t errlen);
/* serfrpc_query for n queries at once on one connection: every request goes
 * out in one write (the agent starts them all before any answer), then the
 * streams are read together, each query ending on its own terms (done,
 * expect, on_response) into res[i] (n results, zeroed first, each freed by
 * the caller). The call ends when every query has ended, when an
 * on_response returns SERF_ABORT, or at the deadline (not an error, once the
 * agent accepted every query). Serf refusing any one query (e.g. over its
 * size limit) fails the whole call with Serf's text. */
int serfrpc_query_many(struct serfrpc *c, const struct serf_query *qs, size_t n,
                       struct serf_query_result *res, char *err, size_t errlen);
void serfrpc_query_result_free(struct serf_query_result *r);

/* ---- http.c */
/* One HTTP(S) request through libcurl, loaded with dlopen on first use. Only
 * http:// and https:// (no redirects followed), proxies from the environment
 * ignored, NOSIGNAL (SIGPIPE is ignored once libcurl is loaded). */
struct http_req {
    const char *url;
    const char *body; /* POST body (http_post; NULL = empty) */
    size_t body_len;
    const char *content_type;    /* POST only; NULL = application/json */
    const char *user, *password; /* basic auth when user is non-empty */
    long timeout_ms;             /* whole transfer; <= 0 is taken as 1 */
    long connect_timeout_ms;     /* <= 0 or over timeout_ms: timeout_ms */
    size_t max_bytes;            /* response body cap */
    size_t mem_max;              /* the most the body buffer may hold (allocated
                                    bytes): the run's memory cap; 0 = no bound */
    int64_t deadline_ms;         /* util_mono_ms() by which the request must end
                                    (timeouts are cut to fit, after libcurl is
                                    loaded); 0 = none */
    const char *ca_file;         /* https: trust this CA bundle (PEM); NULL/"" = system */
    const char *pinned_pubkey;   /* https: "sha256//<base64>[;...]" or a key file;
                                    alone it replaces the chain and name checks
                                    (a self-signed certificate); NULL/"" = none */
};
enum http_result {
    HTTP_OK = 0,
    HTTP_ERROR = -1,
    HTTP_TIMEOUT = -2,
    HTTP_TOO_BIG = -3,
    HTTP_NO_MEMORY = -4,
};
/* HTTP_OK: any HTTP status (in *status), the body in body_out (caller frees;
 * data never NULL; its capacity never passes mem_max). Otherwise err is
 * filled, body_out is freed and *status is 0 (or the status seen before the
 * cap was hit): HTTP_TIMEOUT when the timeout passed, HTTP_TOO_BIG over
 * max_bytes, HTTP_NO_MEMORY when the body would pass mem_max first,
 * HTTP_ERROR for the rest (connection refused, DNS, TLS, bad URL, libcurl
 * missing). */
int http_post(const struct http_req *req, struct buf *body_out, long *status, char *err,
              size_t errlen);
int http_get(const struct http_req *req, struct buf *body_out, long *status, char *err,
             size_t errlen);
/* Whether libcurl has been loaded into this process. */
bool http_loaded(void);

/* =========================================================================
 * the Lua host and the units that run bundle code or compile it
 * ========================================================================= */

/* ---- sandbox.c */
struct sandbox_limits {
    size_t memory;             /* bytes the Lua allocator may hold */
    int deadline_ms;           /* wall clock for the whole run */
    int grace_ms;              /* after the deadline, before the process is ended */
    const char *deadline_name; /* the setting, for log lines: "limits.event_ms" */
    bool stub_modules;         /* serfhand test only: host modules stay writable, for stubs */
};

struct sandbox;

/* A fresh lua_State with only the safe libraries, a capped allocator, the
 * deadline hook and require() bound to b (which may be NULL). */
struct sandbox *sandbox_new(const struct sandbox_limits *lim, struct bundle *b,
                            const struct config *cfg, char *err, size_t errlen);
/* Close the Lua state (finalizers run, a refusal they cause is recorded) and
 * keep sb for sandbox_refusal; sandbox_free then frees it. Idempotent. */
void sandbox_close(struct sandbox *sb);
void sandbox_free(struct sandbox *sb);
lua_State *sandbox_state(struct sandbox *sb);
struct sandbox *sandbox_of(lua_State *L);
/* Arm the deadline (hook + SIGALRM backstop + RLIMIT_CPU) from now. */
void sandbox_start_clock(struct sandbox *sb);
void sandbox_stop_clock(struct sandbox *sb);
int64_t sandbox_deadline_ms(const struct sandbox *sb); /* monotonic */
/* What a call that waits (factomd, a store lock, the Serf agent) leaves of
 * the deadline, for the handler to react to the call's failure. */
#define SANDBOX_RESERVE_MS 100
bool sandbox_timed_out(const struct sandbox *sb);
/* Why the run was refused, or NULL: a bundle module that require() read
 * failed verification (bundle_read said no). From then on every step of the
 * Lua code raises again, like the deadline, so no pcall can go on; the host
 * checks this first and ends the run as a refusal whatever Lua returned.
 * Still answers after sandbox_close. */
const char *sandbox_refusal(const struct sandbox *sb);
bool sandbox_out_of_memory(const struct sandbox *sb);
/* The setting the deadline comes from ("limits.event_ms"), for log lines. */
const char *sandbox_deadline_name(const struct sandbox *sb);
/* Count n bytes the host is about to hold outside the Lua allocator (a JSON
 * buffer) against the memory cap: 0 when they fit, else -1 and the run is
 * marked out of memory. Nothing is kept reserved. */
int sandbox_reserve(lua_State *L, size_t n);
/* Count n bytes of a host buffer that handler code made the host hold
 * (process output, an HTTP body, a JSON buffer) against the memory cap for
 * as long as it is held: 0 when they fit (then sandbox_release the same n
 * when the buffer is freed), else -1, nothing counted and the run is marked
 * out of memory. In a plain state (no sandbox) always 0. */
int sandbox_charge(lua_State *L, size_t n);
void sandbox_release(lua_State *L, size_t n);
/* Mark the run out of memory and raise "<what>: not enough memory
 * (limits.memory_mb = N)". Never returns. */
int sandbox_memory_error(lua_State *L, const char *what);
size_t sandbox_mem_left(lua_State *L); /* bytes under the cap */
/* Log the string at idx for handler code (print, serfhand.log): the host's
 * buffers for the line count against the cap; what does not fit is cut. */
void sandbox_log(lua_State *L, enum log_level lvl, int idx);
/* What loading a bundle file came to. */
enum sandbox_load {
    SANDBOX_LOAD_OK,          /* the chunk (the handler function) is on top */
    SANDBOX_LOAD_ABSENT,      /* no such file in the bundle */
    SANDBOX_LOAD_ERROR,       /* it does not compile (or no bundle): err says why */
    SANDBOX_LOAD_REFUSED,     /* the bundle refused it (verification): err */
    SANDBOX_LOAD_RAISED,      /* handler: the top level raised (*status is the pcall
                                 status, the message with traceback on top) */
    SANDBOX_LOAD_NOT_HANDLER, /* handler: it returned no handler (err names the type) */
};
/* Load rel and run its top level, which returns the handler: a function, or
 * a table with a handle function. SANDBOX_LOAD_OK with the handler function
 * on top, or any other result. */
enum sandbox_load sandbox_load_handler(struct sandbox *sb, const char *rel, int *status, char *err,
                                       size_t errlen);
/* Load a chunk from memory (tests, tools): text only, fresh _ENV. */
int sandbox_load_buffer(struct sandbox *sb, const char *buf, size_t len, const char *chunkname,
                        char *err, size_t errlen);
/* lua_pcall with a traceback message handler. */
int sandbox_pcall(struct sandbox *sb, int nargs, int nresults);
/* f(ud) run by sandbox_pcall, for host code that touches Lua values (builds
 * ev, reads fields): its status; nresults of f on top when LUA_OK. */
int sandbox_cpcall(struct sandbox *sb, lua_CFunction f, void *ud, int nresults);
/* Append tostring(value at idx) to out, protected (a __tostring is the
 * bundle's code, under its limits): 0, or -1 when it raised, with the
 * message on top. */
int sandbox_tostring(struct sandbox *sb, int idx, struct buf *out);
const struct config *sandbox_config(lua_State *L);
/* True while a Serf event or query handler runs (not for CLI tools/tests). */
bool sandbox_in_handler(lua_State *L);
void sandbox_set_handler(struct sandbox *sb, bool in_handler);

/* ---- check.c */
/* The checks sign, verify, install, check and serfhand-check share. */
enum check_result {
    CHECK_OK,
    CHECK_REFUSED, /* fails verification (or does not compile): a node refuses it */
    CHECK_FAILED,  /* verified, but a handler's top level raised or returned no handler */
};
/* Compile every listed .lua file below dirfd (read once with its size and
 * hash checked, luaL_loadbufferx mode "t", nothing runs). Each that does not
 * compile adds a problem "path:line: message"; a file that cannot be read is
 * left to the caller's file check. Returns the number of problems added. */
int check_compile(int dirfd, const struct manifest *m, size_t max_file, struct util_lines *p);
/* `verify`: trust_check_bundle, then check_compile. r is filled (free with
 * trust_report_free). CHECK_OK or CHECK_REFUSED. */
enum check_result check_verify(struct trust_report *r, const char *dir,
                               const struct trust_keyset *ks, size_t max_file, int64_t now_s);
/* `check` of the bundle in dir: check_verify with the configured keys, the
 * version recorded on this node, then every handler's top level run in the
 * sandbox (a module refused there is CHECK_REFUSED). r is filled. */
enum check_result check_bundle(const struct config *cfg, const char *dir, struct trust_report *r);
/* check_bundle, written as the answer of the built-in query serfhand-check:
 * compact JSON {bundle, version, manifest, ok, problems} into json (at most
 * 900 bytes). */
enum check_result check_report(const struct config *cfg, const char *bundle_dir, struct buf *json);

/* ---- run.c */
/* The runner, the one path from a bundle to a result for every run of Lua
 * code (handle, run through handle, tick, action, propose, test, check):
 * open the bundle (verified unless !verify), a sandbox with the limits,
 * load, push ev (event.c), call, encode the reply, classify, tear down. A
 * module refused anywhere in the run (also by a finalizer) makes it a
 * refusal. Commands only map the result to exit codes and output. */
enum run_result {
    RUN_OK,
    RUN_FAILED,    /* the handler raised or returned nil, err; or no such handler file */
    RUN_SYSTEM,    /* no sandbox, no bundle directory, or the response could not be written */
    RUN_REFUSED,   /* the bundle or a module it required failed verification */
    RUN_TIMEOUT,   /* the deadline passed */
    RUN_MEMORY,    /* the memory cap was reached */
    RUN_RESPONSE,  /* a query's response was refused: wrong type or too big */
    RUN_BAD_EVENT, /* the event names no valid handler file */
};
/* What runs and how its value is taken. */
enum run_mode {
    /* The handler of ev as Serf runs it: a query's value is its response (a
     * string as is, a table as JSON, nil: none; at most
     * limits.response_bytes), any other event's value is only logged; no
     * handler file is no failure (logged at info). Failures are logged. */
    RUN_SERF,
    /* A tool (action, propose, test): the handler file of ev, or the host
     * chunk, returns value, err; `nil, err` is a failure; a string is the
     * reply as is, a table as JSON, else tostring. Failures go to err only. */
    RUN_TOOL,
    /* check: only the top level of rel runs, which must return a handler;
     * nothing is called. Failures go to err only. */
    RUN_LOAD,
};
struct run_req {
    const struct config *cfg;
    const char *bundle_dir; /* NULL: config "bundle" */
    bool verify;
    enum run_mode mode;
    const struct event *ev; /* the handler's ev (RUN_LOAD: NULL) */
    const char *rel;        /* the file to run; NULL: event_handler_path(ev) */
    /* Host Lua text run instead of a bundle file (propose, test), named
     * chunk_name ("=serfhand" if NULL; chunk_len 0: strlen). It is called
     * with a table of the host functions funcs (each with funcs_ud as its
     * upvalue 1), when funcs is set, then ev's args. */
    const char *chunk;
    size_t chunk_len;
    const char *chunk_name;
    const struct luaL_Reg *funcs;
    void *funcs_ud;
    /* The deadline: deadline_ms named deadline_name (0 with a name: none),
     * else the setting of ev's type (limits.event_ms, query_ms or tick_ms). */
    int deadline_ms;
    const char *deadline_name;
    bool in_handler;   /* RUN_TOOL: as for a Serf handler (serf.query refused) */
    bool stub_modules; /* test: host modules stay writable, for stubs */
    /* RUN_SERF with a NULL out: the response is written to out_fd. exit_now,
     * if set, is called with the result instead of the teardown when
     * proc_spawned_waiting() (the caller exits as soon as run_exec returns)
     * and must not return. */
    int out_fd;
    void (*exit_now)(enum run_result res);
};
/* Run r. A successful run's reply is appended to out (or, for RUN_SERF with
 * out NULL, written to r->out_fd); a failure's message is in err. */
enum run_result run_exec(const struct run_req *r, struct buf *out, char *err, size_t errlen);
/* The sandbox limits of a run, the one place they are read from the config:
 * the deadline from the setting deadline_name ("limits.event_ms"), or
 * deadline_ms (named by nothing) when deadline_name is NULL. */
struct sandbox_limits run_limits(const struct config *cfg, const char *deadline_name,
                                 int deadline_ms);
/* Serf's side, for `run` and T.event/T.query of `test`: run `handle` in a
 * child exactly as a Serf agent would (SERF_* environment, the payload on
 * stdin with Serf's trailing LF), with --bundle, --state and --unsigned as
 * given. */
struct run_serf {
    enum event_type type; /* a Serf event: not EV_TICK or EV_TOOL */
    const char *name;     /* the user event's or query's name */
    const char *payload;  /* stdin (member lines for member events) */
    size_t payload_len;
    const char *self;        /* SERF_SELF_NAME; NULL: "dev" */
    const char *ltime;       /* SERF_*_LTIME; NULL: "1" */
    const char *const *tags; /* "k=v": SERF_TAG_K (and SERF_SELF_ROLE for role) */
    size_t ntags;
    const char *bundle_dir; /* NULL: the config's */
    const char *state_dir;  /* NULL: the config's */
    bool unsigned_ok;
    int log_fd; /* the child's log goes there; -1: into out->log */
};
struct run_serf_out {
    struct buf out; /* stdout and stderr together: what Serf receives (at most 1 MiB) */
    struct buf log; /* log_fd -1: the log lines (at most 1 MiB) */
    int code;       /* the exit code (128 + N for signal N) */
};
/* 0 with out filled (the caller frees its bufs), or -1 + err (no child). */
int run_serf(const struct run_serf *s, struct run_serf_out *out, char *err, size_t errlen);
/* `run` and `test` never touch a node's state: a fresh directory
 * $TMPDIR/<prefix>.XXXXXX (mode 0700, malloc'ed path), or NULL + err. */
char *run_scratch_state(const char *prefix, char *err, size_t errlen);
/* Remove dir and everything in it (symlinks are not followed). */
void run_scratch_remove(const char *dir);

/* ---- status.c */
/* One member's answer to query factomd-status, read strictly: every known
 * field bounded and typed, or the whole answer refused. Unknown fields are
 * dropped. Absent: "" (words), STATUS_ABSENT (integers), -1 (booleans). */
#define STATUS_WORD_MAX 16
#define STATUS_ABSENT INT64_MIN
struct status_answer {
    char role[STATUS_WORD_MAX], state[STATUS_WORD_MAX]; /* [a-z0-9_-]+ */
    int64_t h, saved, minute, stalled_s, bundle;
    int64_t last_restart; /* unix ms */
    int sick, last_ok;
};
/* Parse the answer s (len bytes, any bytes) using L for the JSON decode; never
 * raises. 0, or -1 with err naming what is wrong (our words, never the
 * answer's bytes) and *a zeroed. */
int status_answer_parse(lua_State *L, const char *s, size_t len, struct status_answer *a, char *err,
                        size_t errlen);
/* Append s (a member's name) for a terminal: printable ASCII only (others
 * as '?'), at most max bytes, then "..." if cut. */
void status_safe_text(struct buf *out, const char *s, size_t max);
/* One table row for node (a = NULL: no answer, or one refused with problem,
 * the err of status_answer_parse). */
void status_row_text(struct buf *out, const char *node, const struct status_answer *a,
                     const char *problem, int64_t now_ms);
/* The answer as a JSON object built from the parsed fields only;
 * {"error": problem} for a refused one, null for none. */
void status_row_json(struct buf *out, const struct status_answer *a, const char *problem);
/* Any member's answer (query, check --cluster) is hostile bytes: */
/* true when s[0..n) is valid UTF-8 (no overlong form, surrogate or code
 * point above U+10FFFF). */
bool status_utf8_valid(const char *s, size_t n);
/* s[0..n) as a JSON string: control characters as \u00XX, each byte that is
 * not part of valid UTF-8 as \ufffd. */
void status_json_bytes(struct buf *out, const char *s, size_t n);
/* s[0..n) for a terminal: printable ASCII as is, \\ \n \t \r escaped, every
 * other byte (control, escape, non-ASCII) as \xHH; at most max bytes of s,
 * then "..." if cut. */
void status_term_bytes(struct buf *out, const char *s, size_t n, size_t max);
/* A member's answer to the built-in query serfhand-check (check_report),
 * read strictly like status_answer. Problems are the member's own words:
 * kept raw (at most STATUS_CHECK_TEXT bytes each, the first
 * STATUS_CHECK_PROBLEMS of them) and escaped wherever they are shown. */
#define STATUS_CHECK_PROBLEMS 20
#define STATUS_CHECK_TEXT 300
struct status_check {
    char bundle[65];   /* a valid name, "" for null */
    int64_t version;   /* STATUS_ABSENT for null */
    char manifest[65]; /* 64 lowercase hex digits, or "" */
    int ok;
    size_t nproblems;           /* how many the member listed */
    struct util_lines problems; /* the first ones, raw */
    struct util_lines failed;   /* the failure codes it sent ([a-z_]+), if any */
};
/* 0, or -1 with err in our words and *c empty; free with status_check_free. */
int status_check_parse(lua_State *L, const char *s, size_t len, struct status_check *c, char *err,
                       size_t errlen);
void status_check_free(struct status_check *c);
/* One query to the cluster through the local agent (serf.rpc_addr or
 * $SERF_RPC_ADDR, serf.rpc_auth or $SERF_RPC_AUTH), as `query`, `check
 * --cluster` ask: acks requested, each response timed, and an early return
 * once expect answers arrived. */
struct status_ask {
    const char *name;
    const void *payload;
    size_t len;
    const char *const *nodes; /* FilterNodes; the targets when given */
    size_t nnodes;
    const char *const *tagk, *const *tagv; /* FilterTags (Go regexps) */
    size_t ntags;
    int64_t timeout_ms; /* 0: the agent's default */
    long long expect;   /* return after this many answers; -1: every target */
};
struct status_round {
    struct serf_query_result res; /* responses in arrival order, acks */
    int64_t *ms;                  /* ms from sending to each response */
    char **targets;               /* who should answer: named nodes or every alive member */
    size_t ntargets;
    bool known_targets; /* false with tag filters: only the agents know who matches */
    size_t alive;       /* alive members the agent knows */
    size_t expect;      /* what the early return waited for (0: Serf's done) */
    int64_t elapsed_ms;
};
/* 0 with r filled, or -1 with err (agent unreachable, auth, the agent
 * refused the query); free r with status_round_free in both cases. */
int status_ask(const struct config *cfg, const struct status_ask *q, struct status_round *r,
               char *err, size_t errlen);
/* The response of node (and its index), or NULL. */
const struct serf_reply *status_round_reply(const struct status_round *r, const char *node,
                                            size_t *index);
/* ms from sending to response i, or -1. */
int64_t status_round_ms(const struct status_round *r, size_t i);
void status_round_free(struct status_round *r);

/* ---- install.c */
/* Read caps before any signature check: a bundle's manifest is a few KB
 * (about 120 bytes a file), a signature file under 10 KB. */
#define INSTALL_MANIFEST_MAX (256 * 1024)
#define INSTALL_SIG_MAX MINISIGN_SIG_FILE_MAX
/* Installing a verified bundle under <state_dir>/bundles/<version>-<hash16>/,
 * switching <state_dir>/current atomically, rollback. */
enum install_result {
    INSTALL_OK,
    INSTALL_REFUSED, /* the bundle fails verification (or does not compile) */
    INSTALL_FAILED,  /* the source, the disk or the lock (another install) failed */
    INSTALL_ERROR,   /* state_dir or trust.keys unusable; a rollback not allowed */
};
/* Where install_bundle reads from. read fills out with rel (MANIFEST.json, a
 * MANIFEST.json.<KEYID>.minisig or a listed file), at most max bytes:
 * UTIL_OPEN_OK, _MISSING, or _FAILED with err. dir is the source directory
 * (also checked for unlisted files), or NULL for a URL; label names the
 * source in messages. */
struct install_source {
    enum util_open (*read)(void *ctx, const char *rel, size_t max, struct buf *out, char *err,
                           size_t errlen);
    void *ctx;
    const char *dir;
    const char *label;
};
struct install_opts {
    bool allow_downgrade;
    const char *expect_hash; /* manifest BLAKE2b-256 hex an announcement named, or NULL */
    const char *expect_name; /* bundle name an announcement named, or NULL */
    int lock_wait_ms;        /* wait this long for another install, then fail */
};
/* Verify, copy, verify the copy, fsync, switch current, record the version,
 * keep the previous bundle, prune past update.keep; one at a time
 * (<state_dir>/install.lock). msg holds the summary or the reason.
 * Idempotent: a rerun after a crash completes. */
enum install_result install_bundle(const struct config *cfg, const struct install_source *src,
                                   const struct install_opts *o, char *msg, size_t msglen);
/* Switch current back to <state_dir>/previous (verified, not expired) and
 * lower the recorded version to it; refused without allow_downgrade. */
enum install_result install_rollback(const struct config *cfg, bool allow_downgrade,
                                     int lock_wait_ms, char *msg, size_t msglen);

/* ---- update.c */
/* The signed serfhand-update pointer and the host's handler of it. */
#define UPDATE_EVENT "serfhand-update"
#define UPDATE_SIG_CONTEXT "serfhand-update/1\n" /* prefixed to the signed body */
/* Largest pointer payload: 467 bytes passed Serf's 512-byte limit after
 * encoding with the 15-byte event name at a small LTime (measured); 11
 * bytes are kept for the LTime's growth. */
#define UPDATE_PAYLOAD_MAX 456
struct update_pointer {
    char name[65];
    long long version;
    char hash[65];     /* manifest BLAKE2b-256, lowercase hex */
    char url[257];     /* http(s) base URL, no trailing slash */
    long long expires; /* unix seconds */
};
/* payload = base64url(keyid 8 || signature 64 || global signature 64) "."
 * body, body = compact JSON {"n","v","h","u","e"}; a prehashed minisign
 * signature over UPDATE_SIG_CONTEXT body with body as trusted comment. */
int update_pointer_encode(const struct update_pointer *p, const struct minisign_seckey *sk,
                          struct buf *out, char *err, size_t errlen);
/* Check the signature against the trusted keys (one suffices) and parse
 * the body; keyid (17 bytes) gets the signer's id when known. 0 or -1. */
int update_pointer_decode(struct update_pointer *p, const char *payload, size_t len,
                          const struct trust_keyset *ks, char *keyid, char *err, size_t errlen);
/* 0 when url is under one of the n prefixes (at a path boundary, no dot
 * segment, query or encoded separator) and https, or http with allow_http;
 * else -1 with err saying why. */
int update_source_check(char *const *sources, size_t n, bool allow_http, const char *url, char *err,
                        size_t errlen);
enum update_result {
    UPDATE_OK,      /* logged; with update.auto a detached install was started */
    UPDATE_REFUSED, /* the pointer fails a check (signature, expiry, update.sources, name,
                       version) */
    UPDATE_FAILED,  /* the detached install could not be started */
    UPDATE_ERROR,   /* trust.keys cannot be loaded */
};
/* Act on a serfhand-update announcement received as a user event: verify
 * the signed pointer and, with update.auto, start a detached install;
 * otherwise only log it. Never writes to stdout or stderr. */
enum update_result update_announcement(const struct config *cfg, const char *payload, size_t len);

/* =========================================================================
 * Lua modules: the bindings of require "serfhand.X" (l*.c)
 * ========================================================================= */

/* ---- ljson.c */
/* What encoding or decoding came to: LJSON_NO_MEMORY when the memory cap
 * (limits.memory_mb) refused it, which a caller reports as the cap, not as
 * bad input. */
enum ljson_result { LJSON_OK = 0, LJSON_ERROR = -1, LJSON_NO_MEMORY = -2, LJSON_TOO_LONG = -3 };
/* Encode the value at idx as JSON into out, and decode s into a Lua value
 * pushed on L (nothing pushed on failure, err filled). Both run protected:
 * they never raise. lua-cjson's buffers count against the memory cap while
 * they exist. Integral numbers a double holds exactly decode as Lua
 * integers. */
int ljson_encode(lua_State *L, int idx, struct buf *out, char *err, size_t errlen);
/* ljson_encode, but a text over max bytes is not copied into out:
 * LJSON_TOO_LONG, with err = "<n> bytes". */
int ljson_encode_max(lua_State *L, int idx, size_t max, struct buf *out, char *err, size_t errlen);
int ljson_decode(lua_State *L, const char *s, size_t len, char *err, size_t errlen);

/* ---- l*.c */
/* One luaopen_serfhand_X per module (require "serfhand.X"); sandbox.c
 * preloads them all. */
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

/* =========================================================================
 * the command line: the parser, the subcommands, main.c
 * ========================================================================= */

/* ---- args.c */
/* The one command-line parser: options are declared in each command's
 * entry, main.c parses argv against them before the command runs, and
 * `serfhand help COMMAND` is generated from the same table. */
enum opt_kind {
    OPT_FLAG,     /* no value */
    OPT_STR,      /* a string; the last one given wins */
    OPT_LIST,     /* a string, repeatable: every value in order */
    OPT_INT,      /* an integer in [min, max] */
    OPT_DURATION, /* args_duration, in seconds, in [min, max] */
};
struct cmd_opt {
    const char *name;  /* "--bundle", "-s" */
    const char *alias; /* another spelling of it, or NULL */
    enum opt_kind kind;
    const char *arg;  /* what the value is, in help: "DIR" (NULL for a flag) */
    const char *help; /* one line */
    long long min, max;
    bool required;
    bool hidden; /* left out of the synopsis and help (internal use) */
};
/* Options several commands share (as git's OPT__QUIET). */
#define ARGS_OPT_BUNDLE                                                                            \
    {                                                                                              \
        .name = "--bundle", .kind = OPT_STR, .arg = "DIR",                                         \
        .help = "the bundle to run (default: config bundle)"                                       \
    }
#define ARGS_OPT_UNSIGNED                                                                          \
    {                                                                                              \
        .name = "--unsigned", .kind = OPT_FLAG, .help = "do not check signatures (tests only)"     \
    }
#define ARGS_OPT_WAIT                                                                              \
    {                                                                                              \
        .name = "--wait", .kind = OPT_DURATION, .arg = "DURATION",                                 \
        .help = "how long to wait for another install (default 30)", .min = 0, .max = 86400        \
    }
/* The longest duration any option takes: 36500 days. */
#define ARGS_DURATION_MAX (36500LL * 86400)
/* A duration: a bare number is seconds, or a number followed by one of
 * s m h d w ("90", "90s", "2m", "1h", "180d", "2w"). 0 with *secs, or -1. */
int args_duration(const char *s, long long *secs);
struct args_value {
    bool set;
    const char *str; /* as given (OPT_STR, OPT_INT, OPT_DURATION) */
    long long num;   /* OPT_INT, OPT_DURATION */
    const char **list;
    size_t nlist;
};
struct args {
    const struct cmd_opt *opts;
    struct args_value *v; /* one per option, in table order */
    char **pos;           /* the operands, in order */
    size_t npos;
    int next; /* stop_at_arg: the index of the first operand (argc if none) */
};
enum args_parse {
    ARGS_OK,
    ARGS_ERROR, /* err names the option and what is wrong with it */
    ARGS_HELP,  /* -h or --help was given */
};
/* Parse argv[1..argc) against opts (ends with name NULL; NULL = none).
 * Options and operands may be mixed ("--" ends the options, "--name=value"
 * works too); with stop_at_arg, parsing stops at the first operand (the
 * global options before a command). Free a with args_free, also after an
 * error. */
enum args_parse args_parse(const struct cmd_opt *opts, int argc, char **argv, bool stop_at_arg,
                           struct args *a, char *err, size_t errlen);
void args_free(struct args *a);
bool args_has(const struct args *a, const char *name);
const char *args_str(const struct args *a, const char *name, const char *dflt);
long long args_num(const struct args *a, const char *name, long long dflt);
const char *const *args_list(const struct args *a, const char *name, size_t *n);
/* " [--bundle DIR] [--unsigned] OPERANDS" and the option lines of help. */
void args_synopsis(const struct cmd_opt *opts, const char *operands, struct buf *out);
void args_options_help(const struct cmd_opt *opts, struct buf *out);

/* ---- cmd_*.c */
/* A subcommand: main.c parses its options and operands, then calls exec. */
struct cmd_entry {
    const char *name;
    const char *summary;            /* one line, for serfhand --help */
    const struct cmd_opt *opts;     /* its options, or NULL */
    const char *operands;           /* what follows the options, e.g. "DIR", or NULL */
    int min_operands, max_operands; /* max -1: any number */
    const char *description;        /* more for `serfhand help NAME`, or NULL */
    const char *exits; /* help's "exit codes:" lines, "  N meaning"; NULL: the common list */
    int (*exec)(const struct args *a, const struct config *cfg);
    bool needs_config; /* main loads the config before exec */
    bool quiet_usage;  /* handle: a query's stdout/stderr is its answer */
};

extern const struct cmd_entry cmd_handle_entry;
extern const struct cmd_entry cmd_run_entry;
extern const struct cmd_entry cmd_test_entry;
extern const struct cmd_entry cmd_config_entry;
extern const struct cmd_entry cmd_keygen_entry;
extern const struct cmd_entry cmd_sign_entry;
extern const struct cmd_entry cmd_verify_entry;
extern const struct cmd_entry cmd_check_entry;
extern const struct cmd_entry cmd_propose_entry;
extern const struct cmd_entry cmd_status_entry;
extern const struct cmd_entry cmd_tick_entry;
extern const struct cmd_entry cmd_action_entry;
extern const struct cmd_entry cmd_install_entry;
extern const struct cmd_entry cmd_announce_entry;
extern const struct cmd_entry cmd_rollback_entry;
extern const struct cmd_entry cmd_metrics_entry;
extern const struct cmd_entry cmd_query_entry;

/* The exit code of each result: cmd_*.c alone decide them. */
static inline int cmd_exit_run(enum run_result res)
{
    switch (res) {
    case RUN_OK: return SH_EXIT_OK;
    case RUN_FAILED: return SH_EXIT_FAIL;
    case RUN_SYSTEM: return SH_EXIT_USAGE;
    case RUN_REFUSED: return SH_EXIT_TRUST;
    case RUN_TIMEOUT: return SH_EXIT_TIMEOUT;
    case RUN_MEMORY: return SH_EXIT_MEMORY;
    case RUN_RESPONSE: return SH_EXIT_RESPONSE;
    case RUN_BAD_EVENT: return SH_EXIT_EVENT;
    }
    return SH_EXIT_FAIL;
}

static inline int cmd_exit_install(enum install_result res)
{
    switch (res) {
    case INSTALL_OK: return SH_EXIT_OK;
    case INSTALL_REFUSED: return SH_EXIT_TRUST;
    case INSTALL_FAILED: return SH_EXIT_FAIL;
    case INSTALL_ERROR: return SH_EXIT_USAGE;
    }
    return SH_EXIT_FAIL;
}

static inline int cmd_exit_update(enum update_result res)
{
    switch (res) {
    case UPDATE_OK: return SH_EXIT_OK;
    case UPDATE_REFUSED: return SH_EXIT_TRUST;
    case UPDATE_FAILED: return SH_EXIT_FAIL;
    case UPDATE_ERROR: return SH_EXIT_USAGE;
    }
    return SH_EXIT_FAIL;
}

#endif
