/* test_event.c: event.c (SERF_* environment and stdin) and util.c names. */
#include <stdlib.h>

#include "serfhand.h"
#include "t.h"

static void test_user_event(void)
{
    char *env[] = {(char *)"SERF_EVENT=user",
                   (char *)"SERF_USER_EVENT=deploy",
                   (char *)"SERF_USER_LTIME=42",
                   (char *)"SERF_SELF_NAME=n1",
                   (char *)"SERF_SELF_ROLE=web",
                   (char *)"SERF_TAG_ROLE=web",
                   (char *)"SERF_TAG_FOO_BAR=a\tb",
                   (char *)"OTHER=x",
                   NULL};
    struct event ev;
    char err[256];
    T_OK(event_parse(&ev, env, "a\0b\n", 4, err, sizeof err) == 0, "user event parses");
    T_OK(ev.type == EV_USER, "type user");
    T_STR(ev.name, "deploy", "name");
    T_OK(ev.ltime == 42, "ltime");
    T_OK(ev.payload.len == 3 && memcmp(ev.payload.data, "a\0b", 3) == 0, "payload without LF");
    T_STR(ev.self_name, "n1", "self name");
    T_STR(ev.self_role, "web", "self role");
    T_OK(ev.ntags == 2, "two tags");
    char *path = event_handler_path(&ev);
    T_STR(path, "handlers/user/deploy.lua", "handler path");
    free(path);
    event_free(&ev);
}

static void test_payload_newlines(void)
{
    char *env[] = {(char *)"SERF_EVENT=query", (char *)"SERF_QUERY_NAME=q", NULL};
    struct event ev;
    char err[256];
    T_OK(event_parse(&ev, env, "", 0, err, sizeof err) == 0, "empty payload");
    T_OK(ev.payload.len == 0, "empty stays empty");
    event_free(&ev);
    T_OK(event_parse(&ev, env, "x\n\n", 3, err, sizeof err) == 0, "two LFs");
    T_OK(ev.payload.len == 2, "only one LF removed");
    event_free(&ev);
}

static void test_bad_events(void)
{
    struct event ev;
    char err[256];
    char *none[] = {NULL};
    T_OK(event_parse(&ev, none, "", 0, err, sizeof err) < 0, "no SERF_EVENT");
    event_free(&ev);
    char *bogus[] = {(char *)"SERF_EVENT=bogus", NULL};
    T_OK(event_parse(&ev, bogus, "", 0, err, sizeof err) < 0, "unknown event");
    T_OK(strstr(err, "unknown SERF_EVENT") != NULL, "error names it");
    event_free(&ev);
    char *tick[] = {(char *)"SERF_EVENT=tick", NULL};
    T_OK(event_parse(&ev, tick, "", 0, err, sizeof err) < 0, "tick is not a Serf event");
    event_free(&ev);
    const char *names[] = {
        (char *)"../x",
        (char *)"a/b",
        (char *)"",
        (char *)".x",
        (char *)"-x",
        (char *)"a b",
        (char *)"a\nb",
        (char *)"0123456789012345678901234567890123456789012345678901234567890123X"};
    for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
        char var[128];
        snprintf(var, sizeof var, "SERF_USER_EVENT=%s", names[i]);
        char *env[] = {(char *)"SERF_EVENT=user", var, NULL};
        T_OK(event_parse(&ev, env, "", 0, err, sizeof err) < 0, names[i]);
        event_free(&ev);
    }
}

static void test_members(void)
{
    char *env[] = {(char *)"SERF_EVENT=member-join", NULL};
    const char in[] = "n1\t127.0.0.1\tr1\tweird=a,b=c\\ttab,role=r1\n"
                      "n\\n2\t::1\t\t\n"
                      "n3\t10.0.0.3\n";
    struct event ev;
    char err[256];
    T_OK(event_parse(&ev, env, in, sizeof in - 1, err, sizeof err) == 0, "members parse");
    T_OK(ev.nmembers == 3, "three members");
    if (ev.nmembers == 3) {
        T_STR(ev.members[0].name, "n1", "name");
        T_STR(ev.members[0].addr, "127.0.0.1", "addr");
        T_STR(ev.members[0].role, "r1", "role");
        T_OK(ev.members[0].ntags == 3, "tags split on , (ambiguous by Serf's design)");
        T_STR(ev.members[0].tagk[1], "b", "second tag key");
        T_STR(ev.members[0].tagv[1], "c\ttab", "escape undone in value");
        T_STR(ev.members[1].name, "n\n2", "escaped LF in name");
        T_STR(ev.members[1].addr, "::1", "IPv6 address");
        T_STR(ev.members[2].role, "", "missing role is empty");
    }
    char *path = event_handler_path(&ev);
    T_STR(path, "handlers/member-join.lua", "member handler path");
    free(path);
    event_free(&ev);
    const char bad[] = "n1\t1.2.3.4\tr\tt\textra\n";
    T_OK(event_parse(&ev, env, bad, sizeof bad - 1, err, sizeof err) < 0, "five fields refused");
    event_free(&ev);
    const char noaddr[] = "n1\n";
    T_OK(event_parse(&ev, env, noaddr, sizeof noaddr - 1, err, sizeof err) < 0,
         "one field refused");
    event_free(&ev);
}

static void test_names(void)
{
    T_OK(util_valid_name("a"), "a");
    T_OK(util_valid_name("factomd-restart-vote"), "dashes");
    T_OK(util_valid_name("a.b_c-9"), "dots");
    T_OK(!util_valid_name(NULL), "NULL");
    T_OK(bundle_valid_rel("handlers/user/x.lua"), "handler rel");
    T_OK(bundle_valid_rel("lua/factom/envelope.lua"), "module rel");
    T_OK(!bundle_valid_rel("handlers/../x.lua"), "..");
    T_OK(!bundle_valid_rel("/etc/passwd"), "absolute");
    T_OK(!bundle_valid_rel("other/x.lua"), "outside handlers and lua");
    T_OK(!bundle_valid_rel("handlers//x.lua"), "empty component");
    T_OK(!bundle_valid_rel("handlers/a b.lua"), "space");
}

/* A command's run (action, propose): its handler path stays a bundle path
 * whatever the operands; args[0] is the payload. */
static void test_tool_event(void)
{
    const char *args[] = {"digest", "x"};
    struct event ev;
    event_local(&ev, EV_TOOL, "action", "restart", "n1", args, 2);
    char *path = event_handler_path(&ev);
    T_STR(path, "handlers/action/restart.lua", "tool handler path");
    free(path);
    T_OK(ev.payload.len == 6 && memcmp(ev.payload.data, "digest", 6) == 0, "payload = args[0]");
    T_OK(ev.nargs == 2 && strcmp(ev.args[1], "x") == 0, "args kept");
    T_STR(event_type_name(ev.type), "tool", "EV_TOOL's type name");
    event_free(&ev);
    static const char *const bad[][2] = {
        {"action", "../x"}, {"action", ""}, {"a/b", "x"}, {"..", "x"}, {"action", NULL}};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        event_local(&ev, EV_TOOL, bad[i][0], bad[i][1], NULL, NULL, 0);
        T_OK(event_handler_path(&ev) == NULL, "a tool run with a bad name has no handler path");
        event_free(&ev);
    }
    event_local(&ev, EV_TICK, NULL, NULL, "n1", NULL, 0);
    path = event_handler_path(&ev);
    T_STR(path, "handlers/tick.lua", "tick path");
    T_STR(ev.type_name, "tick", "tick type name");
    free(path);
    event_free(&ev);
    T_OK(event_type_parse("tool") < 0, "tool is no SERF_EVENT");
}

int main(void)
{
    test_tool_event();
    test_user_event();
    test_payload_newlines();
    test_bad_events();
    test_members();
    test_names();
    return t_done();
}
