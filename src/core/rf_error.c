/* rf_error.c — the per-thread last error (libgit2's git_error_last shape):
 * the status says what kind of failure, the message says what happened. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include "core/rf_internal.h"

#if defined(_MSC_VER)
#define RF_THREAD_LOCAL __declspec(thread)
#else
#define RF_THREAD_LOCAL _Thread_local
#endif

static RF_THREAD_LOCAL rf_error last_error = { 0, 0, RF_NO_OFFSET, "" };

const rf_error *rf_last_error(void) { return &last_error; }

void rf_clear_error(void)
{
    last_error.code = RF_OK;
    last_error.native = 0;
    last_error.offset = RF_NO_OFFSET;
    last_error.message[0] = '\0';
}

rf_status rfi_fail(rf_status code, uint64_t offset, int64_t native, const char *fmt, ...)
{
    /* Formatted aside first: an argument may be the last error's own
     * message ("...: %s", rf_last_error()->message), and formatting a
     * buffer into itself garbles it (overlapping vsnprintf is undefined). */
    char msg[sizeof last_error.message];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    last_error.code = code;
    last_error.native = native;
    last_error.offset = offset;
    memcpy(last_error.message, msg, sizeof msg);
    return code;
}

const char *rf_status_text(rf_status st)
{
    switch (st) {
    case RF_OK: return "success";
    case RF_E_NOT_FOUND: return "the system cannot find the file specified";
    case RF_E_ACCESS_DENIED: return "access is denied";
    case RF_E_INVALID_HANDLE: return "the handle is invalid";
    case RF_E_NO_MEMORY: return "not enough memory";
    case RF_E_INVALID_DATA: return "the data is invalid";
    case RF_E_INVALID_PARAMETER: return "the parameter is incorrect";
    case RF_E_NOT_SUPPORTED: return "this function is not supported";
    case RF_E_INSUFFICIENT_BUFFER: return "the data area passed is too small";
    case RF_E_BAD_PATHNAME: return "the specified path is invalid";
    case RF_E_MORE_DATA: return "more data is available";
    case RF_E_NO_MORE_ITEMS: return "no more data is available";
    case RF_E_KEY_DELETED: return "illegal operation on a key marked for deletion";
    case RF_E_PRIVILEGE_NOT_HELD: return "a required privilege is not held by the client";
    case RF_E_KEY_HAS_CHILDREN: return "the key has subkeys";
    case RF_E_DATATYPE_MISMATCH: return "the data present in the reply is not of the expected type";
    case RF_E_UNSUPPORTED_TYPE: return "data of this type is not supported";
    case RF_E_CORRUPT: return "the hive is corrupt";
    case RF_E_UNSUPPORTED_FORMAT: return "not a supported regf hive";
    case RF_E_IO: return "input/output error";
    case RF_E_LIMIT: return "a configured limit was exceeded";
    default: return "unknown error";
    }
}
