/*
 * ag_proto.h — regfast-agent's wire constants, portable C: shared by the
 * agent (agent.h, Windows) and the C client (src/remote, every OS). The ops
 * themselves are in ag_ops.def; the framing is described in agent.h.
 */
#ifndef REGFAST_AG_PROTO_H
#define REGFAST_AG_PROTO_H

/* Protocol versions: AG_V_<NAME> from the one list in ag_ops.def (what each
 * adds is said there). HELLO agrees on the highest version both sides speak
 * in AG_VERSION_MIN..AG_VERSION; the framing (the CRC trailer) applies from
 * AG_V_TRAILER, the newer payload layouts from AG_V_LAYOUTS. */
enum {
#define AG_PROTO(num, NAME, what) AG_V_##NAME = num,
#include "ag_ops.def"
#undef AG_PROTO
};
#define AG_VERSION_MIN    AG_V_SD_HASH   /* the first of ag_ops.def's list */
#define AG_VERSION        AG_V_LINKS     /* the last */

#define AG_MAGIC          0x6652u
#define AG_HEADER         16u
#define AG_TRAILER        4u            /* version >= AG_V_TRAILER: u32 CRC-32 of the payload */
#define AG_RESPONSE       0x8000u
#define AG_EVENT          0xC000u
#define AG_MAX_REQUEST    (16u << 20)   /* bigger frames: RF_E_LIMIT, payload skipped */
#define AG_MAX_RESPONSE   (64u << 20)   /* bigger answers: RF_E_LIMIT instead */
#define AG_MAX_HANDLES    65535u
#define AG_MAX_NAME_CHARS 16383u        /* value names (Windows: 16,383) */
#define AG_MAX_PATH_CHARS 32767u

/* Ops: AG_OP_<NAME> from the one table. */
enum {
#define AG_OP(num, NAME, name, write, req, rep) AG_OP_##NAME = num,
#include "ag_ops.def"
#undef AG_OP
};

#define AG_ALL 0xFFFFFFFFu
#define AG_OPEN_CREATE    0x1u    /* OPEN_KEY flags */
#define AG_OPEN_VOLATILE  0x2u
#define AG_RV_FULL        0x1u    /* READ_VALUES flags: RF_BATCH_FULL */
#define AG_RV_COLUMNS     0x100u  /* ... the reply as columns (ag_ops.def) */
#define AG_DELETE_TREE    0x1u    /* DELETE_KEY flags */
#define AG_SUBKEYS_HINTS  0x1u    /* SUBKEYS flags (version 5): hints; entry flags: */
#define AG_SUBKEY_NO_SUBKEYS 0x1u /* ... its own node lists no subkeys (RF_SUBKEY_NO_SUBKEYS) */
#define AG_SUBKEY_HAS_SUBKEYS 0x2u /* ... it lists some: not a link (RF_SUBKEY_HAS_SUBKEYS; 0 from
                                      an agent before it, which the client reads as unknown) */

/* Watch events (op AG_OP_WATCH | AG_EVENT, id = watch id):
 *   u32 kind u32 index u64 seq u64 agent_time_ns, then
 *   kind AG_EV_CHANGE: a snapshot of key `index`;
 *   kind AG_EV_LOST:   i32 status (the key cannot be watched any more: deleted...);
 *   kind AG_EV_ENDED:  u32 reason (AG_END_*) — the last event of a watch.
 * CHANGE and LOST are rf_watch_event kinds (RF_WATCH_CHANGE, RF_WATCH_LOST). */
enum { AG_EV_CHANGE = 1, AG_EV_LOST = 2, AG_EV_ENDED = 3 };
enum { AG_END_UNWATCH = 1, AG_END_KEY_CLOSED = 2, AG_END_QUIT = 3 };
#define AG_EVENT_HEADER 24u

/* A frame's payload check (version >= AG_V_TRAILER) is rf_crc32 (regfast.h),
 * zlib's CRC-32, so Python checks it with zlib.crc32. */

/* FNV-1a 32 of a frame header's first 12 bytes: its check field. */
static inline uint32_t ag_fnv1a32(const uint8_t *p, size_t n)
{
    uint32_t h = 0x811C9DC5u;
    for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * 0x01000193u;
    return h;
}

#endif
