/*
 * regfast_remote.h — the live registry of another process, as an rf_hive.
 *
 * The remote backend (src/remote) implements the backend method table by
 * speaking regfast-agent's protocol (src/agent/agent.h, ops in
 * src/agent/ag_ops.def) over a byte stream: `wine regfast-agent.exe` on
 * Linux, the agent on Windows, `ssh host regfast-agent.exe`. Keys, values,
 * batches, writes, security, snapshots and watches then use the same rf_*
 * calls as an offline hive or the in-process nt backend.
 *
 * How it behaves:
 *  - One request at a time per connection (a mutex; rf_* calls from several
 *    threads are serialized). Every wait has the connection's timeout.
 *  - rf_read_values() receives a reply's columns straight into the caller's
 *    rf_batch columns and its data arena straight into the caller's arena:
 *    one read from the stream per part, no intermediate copy of the data.
 *    When the caller's arena (or row capacity) is too small, the columns are
 *    parked and the data left in the stream: RF_E_MORE_DATA says the sizes,
 *    and the caller's next rf_read_values() of the same request takes the
 *    data from the stream into the new arena (no second request). Any other
 *    call first discards the parked reply.
 *  - Errors from the agent come back as the agent's rf_status with its
 *    message in rf_last_error() (native = the agent's NTSTATUS or Win32 code).
 *  - Frames carry the CRC-32 trailer of protocol 3 and later (src/agent/
 *    ag_ops.def): the backend writes it after every request payload and
 *    checks it after every reply and event, as Python's agent client does.
 *  - A frame cut by a timeout or by the end of the stream (a request partly
 *    written, a reply partly read), a reply or event whose CRC does not
 *    match, or one that does not parse kills the connection: the transport
 *    is closed (the agent sees end-of-file and never applies a request it
 *    did not receive whole) and every later call fails at once with
 *    RF_E_CONNECTION_CUT (1236, ConnectionCutError in Python) and the first
 *    failure's reason. The agent gone at a frame boundary (its output
 *    closed, its input refusing a request's first byte) kills it too, with
 *    RF_E_CONNECTION. A timeout before the first byte of a reply
 *    (RF_E_TIMEOUT) keeps the connection: the late reply is recognized by
 *    its id and dropped.
 *  - rf_key tokens name entries of a per-hive table (path as opened or as
 *    stored when enumerated; agent handles opened on first use, at most
 *    `max_handles` open, least recently used closed first). rf_value tokens
 *    intern (key, value name). Borrowed pointers (names, value data,
 *    watch snapshots) live in per-connection scratch: valid until the next
 *    call on the same connection.
 *  - rf_hive_get_info() -> RF_E_NOT_SUPPORTED; rf_hive_mapping() -> NULL;
 *    rf_hive_scan(), rf_hive_cell(), rf_hive_deleted(), rf_hive_deleted_read(),
 *    rf_hive_slack() -> RF_E_NOT_SUPPORTED.
 */
#ifndef REGFAST_REMOTE_H
#define REGFAST_REMOTE_H

#include "regfast/regfast.h"

#ifdef __cplusplus
extern "C" {
#endif

/**
 * A byte stream to an agent: two directions, each with a timeout. Every
 * callback returns RF_OK or a status; the remote backend calls them from
 * one thread at a time.
 */
typedef struct rf_transport {
    size_t struct_size;   /**< sizeof(rf_transport) */
    void  *ctx;
    /** Writes 1..n bytes of p; *done = bytes written. RF_E_TIMEOUT when not
     *  one byte could be written within timeout_ms; RF_E_CONNECTION when the
     *  peer is gone. */
    rf_status (*send)(void *ctx, const uint8_t *p, size_t n, size_t *done, uint32_t timeout_ms);
    /** Reads 1..n bytes into p; *got = bytes read. RF_E_TIMEOUT when none
     *  came within timeout_ms; RF_E_CONNECTION at end of stream. */
    rf_status (*recv)(void *ctx, uint8_t *p, size_t n, size_t *got, uint32_t timeout_ms);
    /** Called once, when the connection is freed or killed: release the
     *  stream (closing the write side tells the agent to stop). May be NULL. */
    void (*close)(void *ctx);
} rf_transport;

/**
 * A transport over two file descriptors (POSIX: pipes or a socket), with
 * poll()-based timeouts. The fds are left as they are (blocking, and maybe
 * shared with their owner): a write waits for POLLOUT and then writes at most
 * PIPE_BUF bytes, which a pipe then takes without blocking; a read waits for
 * POLLIN. SIGPIPE is blocked around each write, so a vanished reader is
 * RF_E_CONNECTION, not a signal.
 * @param own nonzero: the transport closes both fds when it is closed
 * @retval RF_E_NOT_SUPPORTED on Windows (use rf_transport_handles)
 */
rf_status rf_transport_fds(int fd_read, int fd_write, int own, rf_transport *out);

/**
 * A transport over two Windows HANDLEs (anonymous pipes, e.g. a child's
 * stdout/stdin). Anonymous pipes have no overlapped I/O, so a timed read
 * polls PeekNamedPipe (1 ms steps) before ReadFile, and a timed write is a
 * blocking WriteFile (an agent that stops reading can block it past the
 * timeout: anonymous pipes offer no way to wait for room). Built by mingw
 * and run under Wine by tests/c/nt/test_nt_write.c; never yet on Windows.
 * @retval RF_E_NOT_SUPPORTED off Windows
 */
rf_status rf_transport_handles(void *h_read, void *h_write, int own, rf_transport *out);

/** A connection to one agent. Opaque; reference-counted by its hives. */
typedef struct rf_remote rf_remote;

/**
 * Opens a connection: the handshake (HELLO, protocol versions 4..5: the
 * CRC trailer of 3, the payload layouts of 4, the links of 5; ag_ops.def).
 * The transport is copied; from here on the connection owns it (its close
 * callback runs when the last reference goes, or when the connection dies).
 * On failure the transport is closed too.
 * @param timeout_ms every request's timeout (0 = 30,000)
 * @retval RF_E_NOT_SUPPORTED the agent speaks neither 4 nor 5
 * @retval RF_E_CONNECTION no handshake (the message says what came back)
 */
rf_status rf_remote_connect(const rf_transport *t, uint32_t timeout_ms, rf_remote **out);

/**
 * A root of the agent's live registry as an rf_hive (as rf_live_open does
 * in-process). The hive holds a reference on the connection.
 * @param root   RF_HKEY_*
 * @param view   RF_VIEW_*
 * @param access desired access (KEY_READ = 0x20019 when 0); writes need
 *               KEY_SET_VALUE / KEY_CREATE_SUB_KEY / DELETE (KEY_ALL_ACCESS 0xF003F)
 */
rf_status rf_remote_open(rf_remote *c, uint32_t root, uint32_t view, uint32_t access, rf_hive **out);

/** Drops the caller's reference (the connection lives on while hives use it). NULL is fine. */
void rf_remote_release(rf_remote *c);

/** What the handshake said, and the connection's state. */
typedef struct rf_remote_info {
    size_t    struct_size;   /**< sizeof(rf_remote_info) */
    uint32_t  version;       /**< protocol version agreed */
    uint32_t  pid;           /**< the agent's process id */
    uint32_t  max_request;   /**< bytes */
    uint32_t  max_response;
    char      description[160]; /**< "regfast-agent 0.1 protocol 5 on Wine 8.0" */
    rf_status dead;          /**< 0 while usable; else RF_E_CONNECTION or RF_E_CONNECTION_CUT */
    uint64_t  requests;      /**< requests sent */
    uint64_t  bytes_in, bytes_out;
} rf_remote_info;

rf_status rf_remote_get_info(rf_remote *c, rf_remote_info *out);

/** Sets the timeout of later requests (milliseconds, > 0). */
rf_status rf_remote_set_timeout(rf_remote *c, uint32_t timeout_ms);

/** Marks the connection dead now and closes the transport (the agent sees
 *  end-of-file); every later call fails with RF_E_CONNECTION. Idempotent:
 *  a connection already dead keeps its first status and reason. */
void rf_remote_kill(rf_remote *c, const char *why);

/**
 * One request of the agent protocol (op numbers and payloads: src/agent/
 * ag_ops.def, protocol version 4 or 5) on the hive's connection, for the
 * operations rf_* has no call for (privileges, hive files, MUI strings,
 * transactions, STATS, PING, BENCH...). Framing, CRC trailers, timeouts and
 * the cut-frame rule are the connection's, as for every other call.
 * @param k       0: `payload` is the whole request; else the request is the
 *                key's agent handle (u32, opened if needed) then `payload`
 * @param reply   the reply's payload after its status is appended (owned by
 *                the caller: rf_bytes_free)
 * @retval RF_E_INVALID_PARAMETER an op with its own rf_* call (HELLO, QUIT,
 *         OPEN_KEY, CLOSE_KEY, READ_VALUES, WATCH, UNWATCH)
 * @retval RF_E_INVALID_HANDLE not a remote hive
 * Otherwise the agent's status, with its message in rf_last_error().
 * Hooked as RF_OP_REQUEST (request_op, payload; RF_OPREC_WRITE for the ops
 * ag_ops.def marks as writes): a PRE veto keeps the request from being sent.
 */
rf_status rf_remote_request(rf_hive *h, rf_key k, uint16_t op, const void *payload, size_t len,
                            rf_bytes *reply);

/** The connection behind a remote hive (borrowed), or NULL for another backend. */
rf_remote *rf_remote_of(rf_hive *h);

#ifdef __cplusplus
}
#endif

#endif /* REGFAST_REMOTE_H */
