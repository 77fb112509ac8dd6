/*
 * agent_dispatch.c — one request in, one reply out: the op number is looked
 * up in the table built from ag_ops.def, the handler runs, its status (or
 * error) heads the reply. Also the session: HELLO first, shutdown.
 */
#include "agent.h"

#include <stdlib.h>
#include <string.h>

typedef rf_status (*ag_handler)(ibuf *in, obuf *out, ag_call *call);

/* Op number -> handler, every op of ag_ops.def (numbers are below 128). */
static const ag_handler handlers[128] = {
#define AG_OP(num, NAME, name, write, req, rep) [num] = ag_op_##name,
#include "ag_ops.def"
#undef AG_OP
};

/* The session's version (agent.h): 0 until the first HELLO, then fixed;
 * agent_main.c frames by it. */
uint32_t ag_version;

int ag_dispatch(uint16_t op, uint32_t id, const uint8_t *payload, size_t len, obuf *reply,
                int *deferred)
{
    ibuf in = { payload, len, 0, 0 };
    obuf *out = reply;
    ag_call call = { id, ag_version, 0, 0, 0 };
    out->n = 0;
    out->oom = 0;
    ob_u32(out, 0);
    ag_clear_error();
    rf_clear_error();
    ag_frames++;
    rf_status st;
    *deferred = 0;
    ag_handler h = op < sizeof handlers / sizeof handlers[0] ? handlers[op] : NULL;
    if (!ag_version && op != AG_OP_HELLO)
        st = ag_fail(RF_E_INVALID_PARAMETER, 0, "the first request must be HELLO");
    else if (!h)
        st = ag_fail(RF_E_NOT_SUPPORTED, 0, "unknown op %u", op);
    else
        st = h(&in, out, &call);
    if (!st && out->oom)
        st = ag_fail(RF_E_NO_MEMORY, 0, "out of memory building the answer");
    if (!st && out->n > AG_MAX_RESPONSE)
        st = ag_fail(RF_E_LIMIT, 0, "answer of %zu bytes over the %u-byte limit", out->n, AG_MAX_RESPONSE);
    if (st) {
        if (st == RF_E_INVALID_PARAMETER || st == RF_E_INVALID_DATA)
            ag_bad_frames++;
        if (ag_error_status() != st)
            ag_fail_rf(st);   /* a handler that returned an rf_* status as it came */
        call.deferred = 0;
        ag_error_payload(st, out);
    } else if (call.hello) {
        ag_version = call.hello;
    }
    *deferred = call.deferred;
    return call.quit;
}

void ag_shutdown(void)
{
    watch_stop_all(AG_END_QUIT);
    tx_shutdown();   /* before the key handles: a transacted key belongs to its tx */
    kh_shutdown();
    ag_version = 0;
}
