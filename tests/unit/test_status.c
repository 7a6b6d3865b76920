/* test_status.c: status.c reads other members' factomd-status answers as
 * hostile bytes: bounded fields, nothing spliced, nothing raw on a terminal. */
#include <stdlib.h>

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

int main(void)
{
    L = luaL_newstate();
    test_good_answer();
    test_hostile_answers();
    test_safe_names();
    lua_close(L);
    return t_done();
}
