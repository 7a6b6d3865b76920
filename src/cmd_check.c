/*
 * cmd_check.c: `serfhand check`, the full check of the active bundle
 * (config "bundle"): signatures, threshold, every hash, unlisted or missing
 * files, expiry, the recorded highest version, every Lua file compiled in
 * text mode, and every handler file loaded (its top level run, never its
 * handler) to see that it returns a function. check_report answers the query
 * serfhand-check with the same result as compact JSON.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <fcntl.h>
#include <unistd.h>

#include <lauxlib.h>
#include <lualib.h>

#include "serfhand.h"

/* Compile every listed .lua file (text mode only, nothing runs). */
static void compile_all(const char *dir, const struct trust_manifest *m, size_t max_file,
                        struct trust_problems *p)
{
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    lua_State *L = dfd >= 0 ? luaL_newstate() : NULL;
    if (!L) {
        trust_problem_add(p, "cannot compile the Lua files: %s",
                          dfd < 0 ? "no bundle" : "no memory");
        if (dfd >= 0)
            close(dfd);
        return;
    }
    for (size_t i = 0; i < m->nfiles; i++) {
        const struct trust_file *f = &m->files[i];
        size_t n = strlen(f->path);
        if (n < 4 || strcmp(f->path + n - 4, ".lua") != 0)
            continue;
        struct buf b = {0};
        char err[600], chunk[300];
        if (trust_read_checked(dfd, f, max_file, &b, err, sizeof err) < 0) {
            buf_free(&b);
            continue; /* already reported by the file check */
        }
        snprintf(chunk, sizeof chunk, "@%s", f->path);
        if (luaL_loadbufferx(L, b.data, b.len, chunk, "t") != LUA_OK)
            trust_problem_add(p, "%s", lua_tostring(L, -1));
        lua_settop(L, 0);
        buf_free(&b);
    }
    lua_close(L);
    close(dfd);
}

/* Run the top level of every handler file in the sandbox (modules load
 * through the verified bundle) and check that it returns a function or a
 * table with handle. Loading a handler has no side effects by contract. */
static void load_handlers(const struct config *cfg, const char *dir, const struct trust_manifest *m,
                          struct trust_problems *p)
{
    struct bundle b;
    char err[600];
    if (bundle_open(&b, dir, cfg, true, err, sizeof err) < 0) {
        trust_problem_add(p, "%s", err);
        return;
    }
    struct sandbox_limits lim = {
        .memory = (size_t)config_int(cfg, "limits.memory_mb") * 1024 * 1024,
        .deadline_ms = (int)config_int(cfg, "limits.query_ms"),
        .grace_ms = (int)config_int(cfg, "limits.grace_ms"),
    };
    struct sandbox *sb = sandbox_new(&lim, &b, cfg, err, sizeof err);
    if (!sb) {
        trust_problem_add(p, "%s", err);
        bundle_close(&b);
        return;
    }
    lua_State *L = sandbox_state(sb);
    sandbox_start_clock(sb);
    for (size_t i = 0; i < m->nfiles; i++) {
        const char *rel = m->files[i].path;
        size_t n = strlen(rel);
        if (strncmp(rel, "handlers/", 9) != 0 || n < 4 || strcmp(rel + n - 4, ".lua") != 0)
            continue;
        int status, rc = sandbox_load_handler(sb, rel, &status, err, sizeof err);
        if (rc == -3) {
            const char *msg = lua_tostring(L, -1);
            size_t cut = msg ? strcspn(msg, "\n") : 0; /* first line, no traceback */
            trust_problem_add(p, "%s: loading raised: %.*s", rel, (int)cut, msg ? msg : "");
        } else if (rc == -4) {
            trust_problem_add(p, "%s: returns a %s, not a function (or a table with handle)", rel,
                              err);
        } /* other failures are reported by the file check or compile_all */
        lua_settop(L, 0);
    }
    sandbox_free(sb);
    bundle_close(&b);
}

/* The whole check; r is filled (free with trust_report_free). */
static int check_bundle(const struct config *cfg, const char *dir, struct trust_report *r)
{
    struct trust_keyset ks;
    char err[600];
    size_t max_file = (size_t)config_int(cfg, "limits.file_bytes");
    if (trust_keyset_load(&ks, cfg, err, sizeof err) < 0) {
        memset(r, 0, sizeof *r);
        trust_problem_add(&r->problems, "%s", err);
        return 1;
    }
    trust_check_bundle(r, dir, &ks, max_file, (int64_t)time(NULL));
    trust_keyset_free(&ks);
    if (!r->have_manifest)
        return 1;
    long long highest;
    if (bundle_highest_version(config_str(cfg, "state_dir"), &highest, err, sizeof err) < 0)
        trust_problem_add(&r->problems, "recorded version unknown: %s", err);
    else if (r->m.version < highest)
        trust_problem_add(&r->problems,
                          "version %lld is below the highest version this node "
                          "accepted (%lld)",
                          r->m.version, highest);
    compile_all(dir, &r->m, max_file, &r->problems);
    if (!r->problems.n)
        load_handlers(cfg, dir, &r->m, &r->problems);
    return r->problems.n ? 1 : 0;
}

int check_report(const struct config *cfg, const char *bundle_dir, struct buf *json)
{
    struct trust_report r;
    int rc = check_bundle(cfg, bundle_dir, &r);
    trust_report_json(&r, false, 900, json);
    trust_report_free(&r);
    return rc;
}

static int exec_check(int argc, char **argv, const struct config *cfg)
{
    bool json = false;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--json") == 0) {
            json = true;
        } else {
            fprintf(stderr, "usage: serfhand check [--json]\n");
            return SH_EXIT_USAGE;
        }
    }
    const char *dir = config_str(cfg, "bundle");
    struct trust_report r;
    int rc = check_bundle(cfg, dir, &r);
    trust_report_print(&r, dir, json);
    trust_report_free(&r);
    return rc ? SH_EXIT_FAIL : SH_EXIT_OK;
}

const struct cmd_entry cmd_check_entry = {
    "check",
    "[--json]",
    "check the active bundle: signatures, threshold, hashes, files, expiry, version, Lua syntax",
    exec_check,
    true,
};
