/* libFuzzer harness: the Serf RPC client (serfrpc.c) reading an agent's
 * replies: the fuzz bytes are what the "agent" sends on a socketpair after
 * the client's members or query request (the first byte's low bit picks
 * which; its next bit puts the call under a 64 KiB memory budget, which must
 * never be passed, and must account for every byte it was charged). Whoever
 * answers on serf.rpc_addr sends these bytes; a query's records carry other
 * members' names and payloads. */
#include <sys/socket.h>
#include <unistd.h>

#include "../../src/serfrpc.c" /* the static reply readers */

#define BUDGET ((size_t)64 << 10)

static int budget_charge(void *ctx, size_t n)
{
    size_t *used = ctx;
    if (n > BUDGET - *used)
        return -1;
    *used += n;
    return 0;
}

static void budget_release(void *ctx, size_t n)
{
    size_t *used = ctx;
    if (n > *used)
        __builtin_trap(); /* released more than was charged */
    *used -= n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int sv[2];
    if (size < 1 || socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0)
        return 0;
    struct serfrpc c = {.fd = sv[0], .deadline = util_mono_ms() + 2000};
    snprintf(c.addr, sizeof c.addr, "fuzz");
    const char *p = (const char *)data + 1;
    size_t n = size - 1;
    while (n > 0) {
        ssize_t w = write(sv[1], p, n);
        if (w <= 0)
            break;
        p += w;
        n -= (size_t)w;
    }
    shutdown(sv[1], SHUT_WR); /* EOF after the bytes; our requests still land */
    char err[256];
    size_t used = 0;
    bool budget = data[0] & 2;
    if (budget)
        serfrpc_set_budget(&c, budget_charge, budget_release, &used);
    if (data[0] & 1) {
        struct serf_member *m = NULL;
        size_t nm = 0;
        if (serfrpc_members(&c, &m, &nm, err, sizeof err) == 0)
            serfrpc_members_free(m, nm);
    } else {
        struct serf_query q = {.name = "factomd-status", .payload = "", .ack = true};
        struct serf_query_result r;
        serfrpc_query(&c, &q, &r, err, sizeof err);
        for (size_t i = 0; i < r.nresp; i++)
            if (!r.resp[i].from)
                __builtin_trap();
        if (budget && (used > BUDGET || used != r.held + c.in_held))
            __builtin_trap(); /* what is kept is what is charged, within the budget */
        if (budget)
            budget_release(&used, r.held);
        serfrpc_query_result_free(&r);
    }
    if (budget)
        budget_release(&used, c.in_held);
    if (used != 0)
        __builtin_trap();
    buf_free(&c.in);
    close(sv[0]);
    close(sv[1]);
    return 0;
}
