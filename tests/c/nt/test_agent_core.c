/*
 * test_agent_core: the agent's request handler driven in-process, as the
 * Windows Python extension regfast._live drives it — no pipe, no frames:
 * ag_init with an event sink, ag_dispatch per request, watch events from the
 * core's threads to the sink, ag_shutdown ending watches and handles, and a
 * second session after it. Runs under Wine here, natively on the Windows CI.
 */
#include "nt_test_util.h"
#include "agent.h"

#include <stdlib.h>

/* ---- the sink: what the core emitted -------------------------------------- */
static CRITICAL_SECTION ev_lock;
static HANDLE ev_signal;
static int ev_count, ev_changes, ev_ended;
static uint32_t ev_last_watch;

static uint32_t rd32(const uint8_t *p) { return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24; }

static void sink(uint16_t op, uint32_t id, const uint8_t *p, size_t n, void *ctx)
{
    CHECK(ctx == &ev_lock);
    CHECK_EQ_INT(op, AG_OP_WATCH | AG_EVENT);
    EnterCriticalSection(&ev_lock);
    ev_count++;
    ev_last_watch = id;
    if (n >= 4 && rd32(p) == AG_EV_CHANGE) ev_changes++;
    if (n >= 4 && rd32(p) == AG_EV_ENDED) ev_ended++;
    LeaveCriticalSection(&ev_lock);
    SetEvent(ev_signal);
}

static int wait_for(int *counter, int want, DWORD ms)
{
    DWORD t0 = GetTickCount();
    for (;;) {
        EnterCriticalSection(&ev_lock);
        int have = *counter;
        LeaveCriticalSection(&ev_lock);
        if (have >= want) return 1;
        if (GetTickCount() - t0 > ms) return 0;
        WaitForSingleObject(ev_signal, 100);
    }
}

/* ---- requests -------------------------------------------------------------- */
static obuf req, reply;
static uint32_t next_id = 1;

static void put_str16(const wchar_t *s) { ob_str16(&req, s, wcslen(s)); }

/* Sends req as op; returns the status, leaves reply. */
static uint32_t call(uint16_t op)
{
    int deferred = -1;
    int quit = ag_dispatch(op, next_id++, req.p, req.n, &reply, &deferred);
    CHECK(deferred == 0 || deferred == 1);
    if (deferred) watch_after_reply();
    CHECK(quit == (op == AG_OP_QUIT));
    req.n = 0;
    CHECK(reply.n >= 4);
    return reply.n >= 4 ? rd32(reply.p) : 0xFFFFFFFFu;
}

static uint32_t hello(void)
{
    ob_put(&req, "RFAG", 4);
    ob_u16(&req, AG_VERSION);
    ob_u16(&req, AG_VERSION);
    return call(AG_OP_HELLO);
}

static uint32_t open_key(const wchar_t *path, int create, uint32_t *handle)
{
    ob_u32(&req, RF_HKEY_CURRENT_USER);
    ob_u32(&req, 0);
    ob_u32(&req, KEY_ALL_ACCESS);
    ob_u32(&req, create ? 1 : 0);
    put_str16(path);
    uint32_t st = call(AG_OP_OPEN_KEY);
    *handle = st == 0 && reply.n >= 12 ? rd32(reply.p + 4) : 0;
    return st;
}

int main(void)
{
    InitializeCriticalSection(&ev_lock);
    ev_signal = CreateEventW(NULL, FALSE, FALSE, NULL);
    HKEY base;
    const wchar_t *path = nt_test_key(L"agent-core", &base);

    /* the keys whose subkeys are hive mount nodes: no SUBKEYS hints there */
    CHECK(rf_live_is_mount_container(U(L"\\REGISTRY\\MACHINE"), 17));
    CHECK(rf_live_is_mount_container(U(L"\\Registry\\User"), 14));
    CHECK(rf_live_is_mount_container(U(L"\\REGISTRY"), 9));
    CHECK(rf_live_is_mount_container(U(L"\\REGISTRY\\A"), 11));
    CHECK(!rf_live_is_mount_container(U(L"\\REGISTRY\\MACHINE\\SOFTWARE"), 26));
    CHECK(!rf_live_is_mount_container(U(L"\\REGISTRY\\USER\\S-1-5-18"), 23));
    CHECK(!rf_live_is_mount_container(U(L"\\REGISTRY\\MACHINX"), 17));

    ag_init(sink, &ev_lock);

    /* before HELLO: refused with 87 and a message, the session is not broken */
    uint32_t h = 0;
    CHECK_EQ_INT(open_key(path, 0, &h), RF_E_INVALID_PARAMETER);
    CHECK(reply.n > 16);                                    /* i64 native + str8 message */
    CHECK_EQ_INT(hello(), 0);
    CHECK(GetCurrentProcessId() == rd32(reply.p + 4 + 2 + 8));   /* in-process: our own pid */

    /* create, write through SET_VALUE, read back through GET_VALUE */
    CHECK_EQ_INT(open_key(nt_join(path, L"sub"), 1, &h), 0);
    CHECK(h != 0);
    ob_u32(&req, h);
    ob_u32(&req, REG_DWORD);
    put_str16(L"answer");
    ob_u32(&req, 4);
    ob_u32(&req, 42);
    CHECK_EQ_INT(call(AG_OP_SET_VALUE), 0);
    ob_u32(&req, h);
    put_str16(L"answer");
    CHECK_EQ_INT(call(AG_OP_GET_VALUE), 0);
    CHECK(reply.n == 16 && rd32(reply.p + 4) == REG_DWORD && rd32(reply.p + 8) == 4 && rd32(reply.p + 12) == 42);
    ob_u32(&req, h);
    put_str16(L"missing");
    CHECK_EQ_INT(call(AG_OP_GET_VALUE), ERROR_FILE_NOT_FOUND);

    /* a malformed payload: 87, and the next request still works */
    ob_u32(&req, h);
    CHECK_EQ_INT(call(AG_OP_SET_VALUE), RF_E_INVALID_PARAMETER);
    ob_u32(&req, 0xDEAD0001u);
    CHECK_EQ_INT(call(AG_OP_KEY_INFO), RF_E_INVALID_HANDLE);
    ob_u32(&req, h);
    CHECK_EQ_INT(call(AG_OP_KEY_INFO), 0);

    /* a watch: its events reach the sink from the core's thread */
    ob_u32(&req, AG_SNAP_SUBTREE);
    ob_u32(&req, REG_NOTIFY_CHANGE_NAME | REG_NOTIFY_CHANGE_LAST_SET);
    ob_u32(&req, 1000);
    ob_u32(&req, 0);
    ob_u32(&req, 1);
    ob_u32(&req, h);
    CHECK_EQ_INT(call(AG_OP_WATCH), 0);
    uint32_t wid = reply.n >= 8 ? rd32(reply.p + 4) : 0;
    CHECK(wid != 0);
    HKEY sub = nt_create(base, L"sub");
    nt_set_dword(sub, L"answer", 43);          /* a change made outside the core */
    CHECK(wait_for(&ev_changes, 1, 10000));
    CHECK_EQ_INT(ev_last_watch, wid);

    /* shutdown: the watch ends with an ENDED event, the handle is gone */
    ag_shutdown();
    CHECK(wait_for(&ev_ended, 1, 10000));
    ob_u32(&req, h);
    CHECK_EQ_INT(call(AG_OP_KEY_INFO), RF_E_INVALID_PARAMETER);   /* HELLO first again */

    /* a second session in the same process */
    CHECK_EQ_INT(hello(), 0);
    ob_u32(&req, h);
    CHECK_EQ_INT(call(AG_OP_KEY_INFO), RF_E_INVALID_HANDLE);      /* old handles stay dead */
    uint32_t h2 = 0;
    CHECK_EQ_INT(open_key(nt_join(path, L"sub"), 0, &h2), 0);
    ob_u32(&req, h2);
    put_str16(L"answer");
    CHECK_EQ_INT(call(AG_OP_GET_VALUE), 0);
    CHECK(reply.n == 16 && rd32(reply.p + 12) == 43);
    CHECK_EQ_INT(call(AG_OP_QUIT), 0);
    ag_shutdown();
    RegCloseKey(sub);
    ob_free(&req);
    ob_free(&reply);
    return CHECK_DONE();
}
