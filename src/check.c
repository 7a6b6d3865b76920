/*
 * check.c: the bundle checks several commands share. check_compile compiles
 * every Lua file of a manifest (sign, verify, install and check all run it);
 * check_verify is `verify`'s check; check_bundle is `check`'s, which adds the
 * node's recorded version and loads every handler; check_report answers the
 * built-in query serfhand-check.
 */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <lauxlib.h>
#include <lualib.h>

#include "serfhand.h"

/* Read a file once and compile it in text mode. A bare state without
 * libraries is enough: nothing runs, so no sandbox and no limits apply
 * beyond the file size cap of the read. */
int check_compile(int dirfd, const struct manifest *m, size_t max_file, struct util_lines *p)
{
    size_t before = p->n;
    lua_State *L = luaL_newstate();
    if (!L) {
        util_line_add(p, "cannot compile the Lua files: no memory");
        return (int)(p->n - before);
    }
    for (size_t i = 0; i < m->nfiles; i++) {
        const struct manifest_file *f = &m->files[i];
        size_t n = strlen(f->path);
        if (n < 4 || strcmp(f->path + n - 4, ".lua") != 0)
            continue;
        struct buf b = {0};
        char err[600], chunk[300];
        if (manifest_read_checked(dirfd, f, max_file, &b, err, sizeof err) < 0) {
            buf_free(&b);
            continue; /* the caller's file check reports it */
        }
        snprintf(chunk, sizeof chunk, "@%s", f->path);
        if (luaL_loadbufferx(L, b.data, b.len, chunk, "t") != LUA_OK)
            util_line_add(p, "%s", lua_tostring(L, -1)); /* "path:line: message" */
        lua_settop(L, 0);
        buf_free(&b);
    }
    lua_close(L);
    return (int)(p->n - before);
}

enum check_result check_verify(struct trust_report *r, const char *dir,
                               const struct trust_keyset *ks, size_t max_file, int64_t now_s)
{
    trust_check_bundle(r, dir, ks, max_file, now_s);
    if (r->have_manifest) {
        int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd >= 0) {
            if (check_compile(dfd, &r->m, max_file, &r->problems) > 0)
                r->failed |= TRUST_FAIL_COMPILE;
            close(dfd);
        } /* else trust_check_bundle reported it */
    }
    return r->problems.n ? CHECK_REFUSED : CHECK_OK;
}

/* Run the top level of every handler file through the runner (RUN_LOAD: a
 * fresh sandbox each, modules load through the verified bundle, nothing is
 * called) and check that it returns a function or a table with handle.
 * Loading a handler has no side effects by contract. All of them share one
 * limits.query_ms, since serfhand-check answers a query with this. True when
 * a module one required was refused. */
static bool load_handlers(const struct config *cfg, const char *dir, const struct manifest *m,
                          struct util_lines *p)
{
    int budget = (int)config_int(cfg, "limits.query_ms");
    int64_t start = util_mono_ms();
    for (size_t i = 0; i < m->nfiles; i++) {
        const char *rel = m->files[i].path;
        size_t n = strlen(rel);
        if (strncmp(rel, "handlers/", 9) != 0 || n < 4 || strcmp(rel + n - 4, ".lua") != 0)
            continue;
        int left = budget - (int)(util_mono_ms() - start);
        if (left <= 0) {
            util_line_add(p, "%s: not loaded: the check's deadline (limits.query_ms) passed", rel);
            continue;
        }
        struct run_req r = {
            .cfg = cfg,
            .bundle_dir = dir,
            .verify = true,
            .mode = RUN_LOAD,
            .rel = rel,
            .deadline_ms = left,
            .deadline_name = "limits.query_ms",
        };
        char err[600];
        struct buf none = {0};
        enum run_result rc = run_exec(&r, &none, err, sizeof err);
        buf_free(&none);
        if (rc == RUN_REFUSED) {
            util_line_add(p, "%s", err); /* "refused: ..."; every later load would say it again */
            return true;
        }
        /* Every file compiles: check_bundle gets here only without problems. */
        if (rc != RUN_OK)
            util_line_add(p, "%s", err);
    }
    return false;
}

enum check_result check_bundle(const struct config *cfg, const char *dir, struct trust_report *r)
{
    struct trust_keyset ks;
    char err[600];
    size_t max_file = (size_t)config_int(cfg, "limits.file_bytes");
    if (trust_keyset_load(&ks, cfg, err, sizeof err) < 0) {
        memset(r, 0, sizeof *r);
        r->failed = TRUST_FAIL_KEYS;
        util_line_add(&r->problems, "%s", err);
        return CHECK_REFUSED;
    }
    check_verify(r, dir, &ks, max_file, (int64_t)time(NULL));
    trust_keyset_free(&ks);
    if (!r->have_manifest)
        return CHECK_REFUSED;
    long long highest;
    size_t before = r->problems.n;
    if (bundle_highest_version(config_str(cfg, "state_dir"), &highest, err, sizeof err) < 0)
        util_line_add(&r->problems, "recorded version unknown: %s", err);
    else if (r->m.version < highest)
        util_line_add(&r->problems,
                      "version %lld is below the highest version this node "
                      "accepted (%lld)",
                      r->m.version, highest);
    if (r->problems.n > before)
        r->failed |= TRUST_FAIL_VERSION;
    if (r->problems.n)
        return CHECK_REFUSED;
    bool refused = load_handlers(cfg, dir, &r->m, &r->problems);
    if (r->problems.n)
        r->failed |= TRUST_FAIL_HANDLERS;
    if (refused)
        return CHECK_REFUSED;
    return r->problems.n ? CHECK_FAILED : CHECK_OK;
}

enum check_result check_report(const struct config *cfg, const char *bundle_dir, struct buf *json)
{
    struct trust_report r;
    enum check_result res = check_bundle(cfg, bundle_dir, &r);
    trust_report_json(&r, false, 900, json);
    trust_report_free(&r);
    return res;
}
