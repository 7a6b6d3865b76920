/* test_status.c: status.c reads other members' factomd-status answers as
 * hostile bytes: bounded fields, nothing spliced, nothing raw on a terminal. */
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>

#include "serfhand.h"
#include "t.h"

static lua_State *L;

/* Parse s; 0/-1 as status_answer_parse. */
static int parse(const char *s, struct status_answer *a, char *err)
{
    return status_answer_parse(L, s, strlen(s), a, err, 96);
}

static void test_good_answer(void)
{
    struct status_answer a;
    char err[96];
    const char *s = "{\"name\":\"n1\",\"role\":\"authority\",\"state\":\"sick\",\"sick\":true,"
                    "\"h\":1005,\"saved\":1004,\"minute\":5,\"stalled_s\":42,\"bundle\":\"3\","
                    "\"last_restart\":1700000000000,\"last_ok\":true,\"reason\":\"x\"}";
    T_OK(parse(s, &a, err) == 0, "a real answer parses");
    T_STR(a.role, "authority", "role");
    T_STR(a.state, "sick", "state");
    T_OK(a.sick == 1 && a.last_ok == 1, "booleans");
    T_OK(a.h == 1005 && a.saved == 1004 && a.minute == 5 && a.stalled_s == 42, "integers");
    T_OK(a.bundle == 3, "bundle version sent as a string");
    T_OK(a.last_restart == INT64_C(1700000000000), "last restart ms");

    struct buf o = {0};
    status_row_text(&o, "n1", &a, NULL, INT64_C(1700000060000));
    T_STR(
        o.data,
        "n1               authority  sick         1004     1005   5      42s yes  3       60s ago "
        "ok\n",
        "table row");
    buf_free(&o);
    status_row_json(&o, &a, NULL);
    T_STR(o.data,
          "{\"role\":\"authority\",\"state\":\"sick\",\"sick\":true,\"h\":1005,\"saved\":1004,"
          "\"minute\":5,\"stalled_s\":42,\"bundle\":3,\"last_restart\":1700000000000,"
          "\"last_ok\":true}",
          "json: parsed fields only, unknown ones dropped");
    buf_free(&o);

    T_OK(parse("{\"state\":\"unknown\"}", &a, err) == 0, "a sparse answer parses");
    status_row_text(&o, "n6", &a, NULL, 0);
    T_STR(o.data,
          "n6               -          unknown         -        -   -        - -    -       -\n",
          "absent fields print as -");
    buf_free(&o);
    status_row_json(&o, &a, NULL);
    T_STR(o.data, "{\"state\":\"unknown\"}", "json: absent fields left out");
    buf_free(&o);
}

/* Each of these is refused whole, with a reason in our own words. */
static void test_hostile_answers(void)
{
    static const struct {
        const char *answer, *why;
    } bad[] = {
        {"{\"stalled_s\":\"XXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX\"}", "field stalled_s"},
        {"{\"stalled_s\":1e300}", "field stalled_s"},
        {"{\"last_restart\":1e300}", "field last_restart"},
        {"{\"last_restart\":-9223372036854775808}", "field last_restart"},
        {"{\"last_restart\":9223372036854775807}", "field last_restart"},
        {"{\"h\":1.5}", "field h"},
        {"{\"h\":-1}", "field h"},
        {"{\"minute\":11}", "field minute"},
        {"{\"role\":\"\\u001b[2Jauthority\"}", "field role"},
        {"{\"state\":\"healthy\\n\"}", "field state"},
        {"{\"state\":\"averyveryverylongstate\"}", "field state"},
        {"{\"state\":{\"nested\":1}}", "field state"},
        {"{\"sick\":\"yes\"}", "field sick"},
        {"{\"bundle\":\"007\"}", "field bundle"},
        {"{\"bundle\":\"99999999999999999999\"}", "field bundle"},
        {"{\"bundle\":-3}", "field bundle"},
        {"[1,2]", "not a JSON object"},
        {"\"str\"", "not a JSON object"},
        {"{\"a\":1},\"n9\":{\"role\":\"authority\"}", "not JSON"},
        {"\x1b[2J", "not JSON"},
        {"", "not JSON"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        struct status_answer a;
        char err[96] = "";
        int rc = parse(bad[i].answer, &a, err);
        T_OK(rc == -1, bad[i].answer);
        T_OK(strncmp(err, bad[i].why, strlen(bad[i].why)) == 0, err);
        struct buf o = {0};
        status_row_text(&o, "n1", NULL, err, 0);
        for (size_t k = 0; k < o.len; k++)
            if ((unsigned char)o.data[k] < 0x20 && o.data[k] != '\n') {
                T_OK(0, "no control byte in a refused row");
                break;
            }
        buf_free(&o);
        status_row_json(&o, NULL, err);
        T_OK(o.len > 10 && strncmp(o.data, "{\"error\":\"", 10) == 0, "json: an error object");
        buf_free(&o);
    }
    T_OK(lua_gettop(L) == 0, "the stack is left as found");
}

static void test_safe_names(void)
{
    struct buf o = {0};
    status_safe_text(&o, "n\x1b[2J\x07\xc3\xa9", 64);
    T_STR(o.data, "n?[2J???", "control and non-ASCII bytes become ?");
    buf_free(&o);
    status_safe_text(&o, "abcdefgh", 4);
    T_STR(o.data, "abcd...", "long names are cut");
    buf_free(&o);
    status_row_text(&o, "ev\x1bil", NULL, NULL, 0);
    T_STR(o.data, "ev?il            (no answer)\n", "a member's name is made safe");
    buf_free(&o);
}

/* Fuzz-style: random answers of every length, mostly bytes that are not
 * ASCII. On a terminal only printable ASCII (and nothing cut mid-escape); in
 * JSON a valid UTF-8 document that decodes, exactly, when the bytes were UTF-8. */
static void test_any_bytes(void)
{
    unsigned seed = 18;
    int term_bad = 0, json_bad = 0, exact_bad = 0, utf8_seen = 0;
    for (int round = 0; round < 3000; round++) {
        size_t n = (size_t)(rand_r(&seed) % (round < 2900 ? 64 : 9000));
        char *p = malloc(n + 1);
        for (size_t i = 0; i < n; i++) /* every third round ASCII, control bytes too */
            p[i] = (char)(round % 3 == 0           ? rand_r(&seed) % 0x80
                          : rand_r(&seed) % 3 == 0 ? 0x80 + rand_r(&seed) % 0x50
                                                   : rand_r(&seed));
        if (round % 3 == 0 && n > 2)
            memcpy(p, "\xc3\xa9", 2); /* and a character of two bytes */
        struct buf t = {0}, j = {0};
        status_term_bytes(&t, p, n, 200);
        for (size_t i = 0; i < t.len; i++)
            term_bad += t.data[i] < 0x20 || t.data[i] > 0x7e;
        term_bad += t.len > 200 * 4 + 3;
        status_json_bytes(&j, p, n);
        json_bad += !status_utf8_valid(j.data, j.len);
        for (size_t i = 0; i < j.len; i++)
            json_bad += (unsigned char)j.data[i] < 0x20;
        char err[160];
        if (ljson_decode(L, j.data, j.len, err, sizeof err) < 0 || !lua_isstring(L, -1)) {
            json_bad++;
        } else if (status_utf8_valid(p, n)) {
            size_t len;
            const char *back = lua_tolstring(L, -1, &len);
            utf8_seen++;
            exact_bad += len != n || memcmp(back, p, n) != 0;
        }
        lua_settop(L, 0);
        buf_free(&t);
        buf_free(&j);
        free(p);
    }
    T_OK(term_bad == 0, "the terminal form is printable ASCII, and bounded");
    T_OK(json_bad == 0, "the JSON form is valid UTF-8 JSON without a raw control byte");
    T_OK(exact_bad == 0, "valid UTF-8 comes back exact");
    T_OK(utf8_seen > 100, "enough of the inputs were valid UTF-8");

    struct buf o = {0};
    status_term_bytes(&o, "a\\b\n\x1b[2J\0\xff", 10, 100);
    T_STR(o.data, "a\\\\b\\n\\x1b[2J\\x00\\xff", "escapes a person can read");
    buf_free(&o);
    status_json_bytes(&o, "\"\xc3\xa9\xed\xa0\x80\xc0\xaf\x7f", 9);
    T_STR(o.data, "\"\\\"\xc3\xa9\\ufffd\\ufffd\\ufffd\\ufffd\\ufffd\\u007f\"",
          "a surrogate and an overlong form are not UTF-8");
    buf_free(&o);
    T_OK(!status_utf8_valid("\xf4\x90\x80\x80", 4), "above U+10FFFF");
    T_OK(status_utf8_valid("\xf4\x8f\xbf\xbf", 4), "U+10FFFF");
}

/* Answers to serfhand-check, read strictly. */
static void test_check_answers(void)
{
    struct status_check c;
    char err[96];
    const char *good = "{\"bundle\":\"view\",\"version\":4,\"manifest\":\""
                       "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\","
                       "\"ok\":false,\"failed\":[\"files\"],\"problems\":[\"a\\u001bb\",\"c\"]}";
    T_OK(status_check_parse(L, good, strlen(good), &c, err, sizeof err) == 0, "a real answer");
    T_STR(c.bundle, "view", "bundle");
    T_OK(c.version == 4 && !c.ok && c.nproblems == 2, "version, ok, count");
    T_STR(c.problems.v[0],
          "a\x1b"
          "b",
          "problems kept raw, escaped where shown");
    T_STR(c.failed.v[0], "files", "codes");
    status_check_free(&c);
    const char *bad[] = {
        "[]",
        "{\"ok\":1}",
        "{\"bundle\":\"x\"}",
        "{\"ok\":true,\"version\":\"4\"}",
        "{\"ok\":true,\"version\":-1}",
        "{\"ok\":true,\"version\":4.5}",
        "{\"ok\":true,\"bundle\":\"a b\"}",
        "{\"ok\":true,\"bundle\":\"\\u001b[2J\"}",
        "{\"ok\":true,\"manifest\":\"xyz\"}",
        "{\"ok\":true,\"problems\":\"x\"}",
        "{\"ok\":true,\"problems\":[1]}",
        "{\"ok\":true,\"problems\":{\"1\":\"a\",\"x\":\"b\"}}",
        "{\"ok\":true,\"failed\":[\"Files!\"]}",
        "not json",
        "",
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        int rc = status_check_parse(L, bad[i], strlen(bad[i]), &c, err, sizeof err);
        T_OK(rc == -1 && c.problems.n == 0 && c.bundle[0] == 0, bad[i]);
        status_check_free(&c);
    }
    struct buf many = {0};
    buf_addstr(&many, "{\"ok\":false,\"problems\":[");
    for (int i = 0; i < 500; i++)
        buf_printf(&many, "%s\"%0999d\"", i ? "," : "", i);
    buf_addstr(&many, "]}");
    T_OK(status_check_parse(L, many.data, many.len, &c, err, sizeof err) == 0, "a long list");
    T_OK(c.nproblems == 500 && c.problems.n == STATUS_CHECK_PROBLEMS &&
             strlen(c.problems.v[0]) == STATUS_CHECK_TEXT,
         "counted in full, kept bounded");
    status_check_free(&c);
    buf_free(&many);
    T_OK(lua_gettop(L) == 0, "the stack is left as found");
}

int main(void)
{
    L = luaL_newstate();
    test_good_answer();
    test_hostile_answers();
    test_safe_names();
    test_any_bytes();
    test_check_answers();
    lua_close(L);
    return t_done();
}
