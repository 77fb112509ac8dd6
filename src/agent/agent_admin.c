/*
 * agent_admin.c — administration ops of regfast-agent (AG_OP_ADMIN_FIRST..LAST):
 * rename, security, privileges, hive save/load/restore/replace, app hives,
 * MUI strings. The Python side is src/regfast/live.py.
 */
#include "agent.h"

rf_status op_admin(uint16_t op, ibuf *in, obuf *out)
{
    (void)in; (void)out;
    return ag_fail(RF_E_NOT_SUPPORTED, 0, "unknown op %u", op);
}
