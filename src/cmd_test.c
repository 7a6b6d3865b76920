/*
 * cmd_test.c: `serfhand test FILE...`, the Lua test runner. Each file runs in
 * the same sandbox handlers get (host modules, bundle modules from --bundle,
 * default the current directory, read without signature checks), with a
 * global T for table-driven tests. Ends with "N passed, N failed".
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>

#include "serfhand.h"

/* The test API, in Lua: T.test, T.eq, T.ok, T.raises, T.summary. */
static const char t_lib[] =
    "local T, pass, fail = {}, 0, 0\n"
    "local function show(v)\n"
    "  if type(v) == 'string' then return string.format('%q', v) end\n"
    "  if type(v) ~= 'table' then return tostring(v) end\n"
    "  local keys, out = {}, {}\n"
    "  for k in pairs(v) do keys[#keys + 1] = k end\n"
    "  table.sort(keys, function(a, b) return tostring(a) < tostring(b) end)\n"
    "  for _, k in ipairs(keys) do out[#out + 1] = tostring(k) .. '=' .. show(v[k]) end\n"
    "  return '{' .. table.concat(out, ',') .. '}'\n"
    "end\n"
    "local function same(a, b)\n"
    "  if a == b then return true end\n"
    "  if type(a) ~= 'table' or type(b) ~= 'table' then return false end\n"
    "  for k, v in pairs(a) do if not same(v, b[k]) then return false end end\n"
    "  for k in pairs(b) do if a[k] == nil then return false end end\n"
    "  return true\n"
    "end\n"
    "function T.eq(got, want, msg)\n"
    "  if not same(got, want) then\n"
    "    error((msg and msg .. ': ' or '') .. 'got ' .. show(got) .. ', want ' .. show(want), 2)\n"
    "  end\n"
    "end\n"
    "function T.ok(v, msg) if not v then error(msg or 'expected a true value', 2) end return v "
    "end\n"
    "function T.raises(fn, pattern, msg)\n"
    "  local ok, err = pcall(fn)\n"
    "  if ok then error((msg and msg .. ': ' or '') .. 'expected an error', 2) end\n"
    "  if pattern and not string.find(tostring(err), pattern) then\n"
    "    error((msg and msg .. ': ' or '') .. 'error ' .. show(tostring(err)) .. ' does not match "
    "' .. show(pattern), 2)\n"
    "  end\n"
    "  return err\n"
    "end\n"
    "function T.test(name, fn)\n"
    "  local ok, err = xpcall(fn, function(e) return tostring(e) end)\n"
    "  if ok then pass = pass + 1 else fail = fail + 1; T.report('FAIL ' .. name .. ': ' .. err) "
    "end\n"
    "end\n"
    "function T.summary() return pass, fail end\n"
    "return T\n";

static int l_report(lua_State *L)
{
    printf("%s\n", luaL_checkstring(L, 1));
    fflush(stdout);
    return 0;
}

/* Run one test file; adds its counts to *pass / *fail. */
static void run_file(const struct config *cfg, struct bundle *b, const char *file, int timeout_ms,
                     int *pass, int *fail)
{
    char err[1024];
    struct buf code = {0};
    struct sandbox_limits lim = run_limits(cfg, NULL, timeout_ms);
    lim.deadline_name = "--timeout-ms";
    lim.stub_modules = true; /* tests replace host functions with stubs */
    struct sandbox *sb = sandbox_new(&lim, b, cfg, err, sizeof err);
    if (!sb) {
        printf("FAIL %s: %s\n", file, err);
        (*fail)++;
        return;
    }
    lua_State *L = sandbox_state(sb);
    sandbox_start_clock(sb);
    if (sandbox_load_buffer(sb, t_lib, sizeof t_lib - 1, "=T", err, sizeof err) < 0 ||
        sandbox_pcall(sb, 0, 1) != LUA_OK) {
        printf("FAIL %s: test library: %s\n", file, lua_tostring(L, -1));
        (*fail)++;
        goto out;
    }
    lua_pushcfunction(L, l_report);
    lua_setfield(L, -2, "report"); /* T */
    if (util_read_file(file, 16 * 1024 * 1024, &code, err, sizeof err) < 0) {
        printf("FAIL %s\n", err);
        (*fail)++;
        goto out;
    }
    char chunk[512];
    snprintf(chunk, sizeof chunk, "@%s", file);
    if (sandbox_load_buffer(sb, code.data, code.len, chunk, err, sizeof err) < 0) {
        printf("FAIL %s\n", err);
        (*fail)++;
        goto out;
    }
    /* The file's _ENV gets T. */
    lua_getupvalue(L, -1, 1);
    lua_pushvalue(L, -3);
    lua_setfield(L, -2, "T");
    lua_pop(L, 1);
    if (sandbox_pcall(sb, 0, 0) != LUA_OK) {
        printf("FAIL %s: %s\n", file, lua_tostring(L, -1));
        (*fail)++;
        lua_pop(L, 1);
    }
    sandbox_stop_clock(sb);
    lua_getfield(L, -1, "summary");
    if (lua_pcall(L, 0, 2, 0) == LUA_OK) {
        *pass += (int)lua_tointeger(L, -2);
        *fail += (int)lua_tointeger(L, -1);
    }
out:
    buf_free(&code);
    sandbox_free(sb);
}

static int exec_test(const struct args *a, const struct config *cfg)
{
    const char *bundle_dir = args_str(a, "--bundle", ".");
    int timeout_ms = (int)args_num(a, "--timeout-ms", 120000), pass = 0, fail = 0;
    struct bundle b;
    char err[512];
    if (bundle_open(&b, bundle_dir, cfg, false, err, sizeof err) < 0) {
        fprintf(stderr, "serfhand test: %s\n", err);
        return SH_EXIT_USAGE;
    }
    /* An author's tool: test files and modules are read as they are. */
    for (size_t i = 0; i < a->npos; i++)
        run_file(cfg, &b, a->pos[i], timeout_ms, &pass, &fail);
    bundle_close(&b);
    printf("%d passed, %d failed\n", pass, fail);
    return fail ? SH_EXIT_FAIL : SH_EXIT_OK;
}

static const struct cmd_opt opts[] = {
    {.name = "--bundle",
     .kind = OPT_STR,
     .arg = "DIR",
     .help = "the bundle whose lua/ modules tests require (default: the current directory)"},
    {.name = "--timeout-ms",
     .kind = OPT_INT,
     .arg = "N",
     .help = "the deadline of each file (default 120000; 0: none)",
     .min = 0,
     .max = INT32_MAX},
    {NULL},
};

const struct cmd_entry cmd_test_entry = {
    .name = "test",
    .summary = "run Lua test files in the handler sandbox (global T: test, eq, ok, raises)",
    .opts = opts,
    .operands = "FILE...",
    .min_operands = 1,
    .max_operands = -1,
    .exec = exec_test,
    .needs_config = true,
};
