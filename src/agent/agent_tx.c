/*
 * agent_tx.c — transaction ops of regfast-agent (ag_ops.def, 64..73): KTM
 * through the rf_live_tx_* API (src/nt/nt_tx.c), which loads every KTM export
 * with GetProcAddress and probes that transactions really work.
 * The Python side, with its journal fallback, is src/regfast/transaction.py.
 *
 * Request payload -> response payload after the i32 status (agent.h framing):
 *   TX_PROBE        64  -> (nothing)   error 120 + the reason when KTM does
 *                       not work here (Wine: RegCreateKeyTransactedW -> 120)
 *   TX_BEGIN        65  u32 timeout_ms str16 description -> u32 tx
 *                       (description: at most 63 characters, else 87 —
 *                       KTM's limit, checked by rf_live_tx_begin)
 *   TX_COMMIT       66  u32 tx ->      (ends the tx and closes its keys)
 *   TX_ROLLBACK     67  u32 tx ->      (same)
 *   TX_OPEN_KEY     68  u32 tx u32 root u32 view u32 access u32 flags(1 create)
 *                       str16 path -> u32 tkey u32 disposition (1 created, 2 opened)
 *   TX_SET_VALUE    69  u32 tkey u32 type str16 name u32 len bytes ->
 *   TX_DELETE_VALUE 70  u32 tkey str16 name ->
 *   TX_DELETE_KEY   71  u32 tkey u32 flags(1 tree) str16 subkey ->
 *   TX_GET_VALUE    72  u32 tkey str16 name -> u32 type u32 len bytes
 *   TX_CLOSE_KEY    73  u32 tkey ->
 * tx and tkey ids are their own namespaces (not the key handles of OPEN_KEY):
 * index + 1 in the low 16 bits, a generation above, so a stale id is 6.
 */
#include "agent.h"

#include <stdlib.h>
#include <string.h>


#define TX_MAX   64u      /* open transactions per agent */
#define TKEY_MAX 4096u    /* open transacted keys per agent */

typedef struct { rf_live_tx *tx; uint32_t gen; } tx_slot;
typedef struct { HKEY hk; uint32_t tx_id, view, gen; } tkey_slot;

static tx_slot txs[TX_MAX];
static tkey_slot tkeys[TKEY_MAX];

static uint32_t mk_id(uint32_t idx, uint32_t gen) { return (gen << 16) | (idx + 1); }

static int find_id(uint32_t id, uint32_t max, uint32_t *idx)
{
    uint32_t i = (id & 0xFFFFu);
    if (i == 0 || i > max)
        return 0;
    *idx = i - 1;
    return 1;
}

static tx_slot *tx_get(uint32_t id)
{
    uint32_t i;
    if (!find_id(id, TX_MAX, &i) || !txs[i].tx || txs[i].gen != (id >> 16)) {
        ag_fail(RF_E_INVALID_HANDLE, 0, "transaction 0x%08x is not open", (unsigned)id);
        return NULL;
    }
    return &txs[i];
}

static tkey_slot *tkey_get(uint32_t id)
{
    uint32_t i;
    if (!find_id(id, TKEY_MAX, &i) || !tkeys[i].hk || tkeys[i].gen != (id >> 16)) {
        ag_fail(RF_E_INVALID_HANDLE, 0, "transacted key 0x%08x is not open", (unsigned)id);
        return NULL;
    }
    return &tkeys[i];
}

static void tkey_release(tkey_slot *k)
{
    RegCloseKey(k->hk);
    k->hk = NULL;
    k->gen = (k->gen + 1) & 0x7FFFu;
}

/* Ends a transaction: its keys are closed first (their handles die with it). */
static void tx_end(tx_slot *t, uint32_t id)
{
    for (uint32_t i = 0; i < TKEY_MAX; i++)
        if (tkeys[i].hk && tkeys[i].tx_id == id)
            tkey_release(&tkeys[i]);
    rf_live_tx_close(t->tx);
    t->tx = NULL;
    t->gen = (t->gen + 1) & 0x7FFFu;
}

static rf_status malformed(const char *what) { return ag_fail(RF_E_INVALID_PARAMETER, 0, "%s: malformed", what); }

static rf_status op_probe(ibuf *in)
{
    if (in->n)
        return malformed("TX_PROBE");
    rf_status st = rf_live_tx_available();
    return st ? ag_fail_rf(st) : RF_OK;
}

static rf_status op_begin(ibuf *in, obuf *out)
{
    uint32_t timeout = ib_u32(in);
    /* the framing limit only: rf_live_tx_begin refuses more than KTM's 63
     * characters with 87 and says why (a "malformed" here would not) */
    wchar_t *desc = ib_str16(in, 4096, NULL);
    if (in->bad || in->pos != in->n) {
        free(desc);
        return malformed("TX_BEGIN");
    }
    uint32_t i = 0;
    while (i < TX_MAX && txs[i].tx) i++;
    if (i == TX_MAX) {
        free(desc);
        return ag_fail(RF_E_LIMIT, 0, "%u transactions open", TX_MAX);
    }
    rf_live_tx *tx;
    rf_status st = rf_live_tx_begin(timeout, (const uint16_t *)desc, &tx);
    free(desc);
    if (st)
        return ag_fail_rf(st);
    if (!txs[i].gen)
        txs[i].gen = 1;
    txs[i].tx = tx;
    ob_u32(out, mk_id(i, txs[i].gen));
    return RF_OK;
}

static rf_status op_end(ibuf *in, int commit)
{
    uint32_t id = ib_u32(in);
    if (in->bad || in->pos != in->n)
        return malformed(commit ? "TX_COMMIT" : "TX_ROLLBACK");
    tx_slot *t = tx_get(id);
    if (!t)
        return ag_last();
    /* The keys first: a transacted handle left open does not block the
     * commit, but nothing may write through it afterwards. */
    for (uint32_t i = 0; i < TKEY_MAX; i++)
        if (tkeys[i].hk && tkeys[i].tx_id == id)
            tkey_release(&tkeys[i]);
    rf_status st = commit ? rf_live_tx_commit(t->tx) : rf_live_tx_rollback(t->tx);
    tx_end(t, id);   /* closing an uncommitted KTM transaction rolls it back */
    return st ? ag_fail_rf(st) : RF_OK;
}

static rf_status op_open(ibuf *in, obuf *out)
{
    uint32_t tx_id = ib_u32(in), root = ib_u32(in), view = ib_u32(in), access = ib_u32(in),
             flags = ib_u32(in);
    wchar_t *path = ib_str16(in, AG_MAX_PATH_CHARS, NULL);
    if (in->bad || in->pos != in->n || flags & ~1u) {
        free(path);
        return malformed("TX_OPEN_KEY");
    }
    tx_slot *t = tx_get(tx_id);
    HKEY parent = root_hkey(root);
    rf_status st = RF_OK;
    if (!t)
        st = ag_last();
    else if (!parent)
        st = ag_fail(RF_E_INVALID_HANDLE, 0, "0x%08x is not a predefined root key", (unsigned)root);
    else if (view & ~(uint32_t)(RF_VIEW_32 | RF_VIEW_64) || (view & RF_VIEW_32 && view & RF_VIEW_64))
        st = ag_fail(RF_E_INVALID_PARAMETER, 0, "view 0x%x: 0, 0x100 (64) or 0x200 (32)", (unsigned)view);
    uint32_t i = 0;
    while (!st && i < TKEY_MAX && tkeys[i].hk) i++;
    if (!st && i == TKEY_MAX)
        st = ag_fail(RF_E_LIMIT, 0, "%u transacted keys open", TKEY_MAX);
    void *hk = NULL;
    uint32_t disp = 2;
    if (!st) {
        st = rf_live_tx_open_key(t->tx, parent, (const uint16_t *)path, (access ? access : KEY_ALL_ACCESS) | view,
                                 flags & 1, &hk, &disp);
        if (st)
            st = ag_fail_rf(st);
    }
    free(path);
    if (st)
        return st;
    if (!tkeys[i].gen)
        tkeys[i].gen = 1;
    tkeys[i].hk = (HKEY)hk;
    tkeys[i].tx_id = tx_id;
    tkeys[i].view = view;
    ob_u32(out, mk_id(i, tkeys[i].gen));
    ob_u32(out, disp);
    return RF_OK;
}

static rf_status op_key_write(uint16_t op, ibuf *in, obuf *out)
{
    tkey_slot *k = NULL;
    uint32_t id = ib_u32(in), type = 0, flags = 0, len = 0;
    if (op == AG_OP_TX_SET_VALUE) type = ib_u32(in);
    if (op == AG_OP_TX_DELETE_KEY) flags = ib_u32(in);
    size_t nc = 0;
    wchar_t *name = NULL;
    if (op != AG_OP_TX_CLOSE_KEY)
        name = ib_str16(in, op == AG_OP_TX_DELETE_KEY ? AG_MAX_PATH_CHARS : AG_MAX_NAME_CHARS, &nc);
    if (op == AG_OP_TX_SET_VALUE) len = ib_u32(in);
    int bad = in->bad || (op == AG_OP_TX_SET_VALUE ? in->n - in->pos != len : in->pos != in->n) || flags & ~1u;
    if (bad) {
        free(name);
        return malformed("transacted key op");
    }
    if (!(k = tkey_get(id))) {
        free(name);
        return ag_last();
    }
    LONG ls = 0;
    const char *api = "";
    switch (op) {
    case AG_OP_TX_CLOSE_KEY:
        tkey_release(k);
        return RF_OK;
    case AG_OP_TX_SET_VALUE:
        api = "RegSetValueExW";
        ls = RegSetValueExW(k->hk, name, 0, type, in->p + in->pos, len);
        break;
    case AG_OP_TX_DELETE_VALUE:
        api = "RegDeleteValueW";
        ls = RegDeleteValueW(k->hk, name);
        break;
    case AG_OP_TX_DELETE_KEY:
        if (nc == 0) {
            free(name);
            return ag_fail(RF_E_INVALID_PARAMETER, 0, "TX_DELETE_KEY: give the subkey to delete");
        }
        {
            tx_slot *t = tx_get(k->tx_id);
            rf_status st = !t ? ag_last()
                         : rf_live_tx_delete_key(t->tx, k->hk, (const uint16_t *)name, k->view,
                                                 flags & 1 ? RF_DELETE_TREE : 0);
            if (st && t)
                st = ag_fail_rf(st);
            free(name);
            return st;
        }
    case AG_OP_TX_GET_VALUE: {
        api = "RegQueryValueExW";
        DWORD t = 0, n = 0;
        ls = RegQueryValueExW(k->hk, name, NULL, &t, NULL, &n);
        for (int tries = 0; !ls && tries < 8; tries++) {
            BYTE *buf = malloc(n ? n : 1);
            DWORD got = n;
            if (!buf) {
                free(name);
                return ag_fail(RF_E_NO_MEMORY, 0, "out of memory");
            }
            ls = RegQueryValueExW(k->hk, name, NULL, &t, buf, &got);
            if (ls == ERROR_MORE_DATA && tries < 7) {   /* it grew between the two calls */
                free(buf);
                n = got;
                ls = 0;
                continue;
            }
            if (!ls) {
                ob_u32(out, t);
                ob_u32(out, got);
                ob_put(out, buf, got);
            }
            free(buf);
            break;
        }
        break;
    }
    }
    free(name);
    if (ls)
        return ag_fail(ls, ls, ls == 2 ? "%s: not found" : "%s failed: %ld", api, (long)ls);
    return RF_OK;
}

void tx_shutdown(void)
{
    /* An in-process core outlives its connection: leave no transaction (and
     * none of its locks on keys) behind. Closing the handle rolls it back. */
    for (uint32_t i = 0; i < TX_MAX; i++)
        if (txs[i].tx)
            tx_end(&txs[i], mk_id(i, txs[i].gen));
}

rf_status ag_op_tx_probe(ibuf *in, obuf *out, ag_call *call) { return op_probe(in); }
rf_status ag_op_tx_begin(ibuf *in, obuf *out, ag_call *call) { return op_begin(in, out); }
rf_status ag_op_tx_commit(ibuf *in, obuf *out, ag_call *call) { return op_end(in, 1); }
rf_status ag_op_tx_rollback(ibuf *in, obuf *out, ag_call *call) { return op_end(in, 0); }
rf_status ag_op_tx_open_key(ibuf *in, obuf *out, ag_call *call) { return op_open(in, out); }
rf_status ag_op_tx_set_value(ibuf *in, obuf *out, ag_call *call) { return op_key_write(AG_OP_TX_SET_VALUE, in, out); }
rf_status ag_op_tx_delete_value(ibuf *in, obuf *out, ag_call *call)
{
    return op_key_write(AG_OP_TX_DELETE_VALUE, in, out);
}
rf_status ag_op_tx_delete_key(ibuf *in, obuf *out, ag_call *call) { return op_key_write(AG_OP_TX_DELETE_KEY, in, out); }
rf_status ag_op_tx_get_value(ibuf *in, obuf *out, ag_call *call) { return op_key_write(AG_OP_TX_GET_VALUE, in, out); }
rf_status ag_op_tx_close_key(ibuf *in, obuf *out, ag_call *call) { return op_key_write(AG_OP_TX_CLOSE_KEY, in, out); }
