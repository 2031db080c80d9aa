/*
 * error.c: names and descriptions of keel_err_t values (keel/error.h).
 */
#include "keel/error.h"
#include "error_int.h"

#include <stdarg.h>
#include <stdio.h>

#include <stddef.h>

static const struct {
        int err;
        const char *name;
        const char *str;
        int retriable;
} errs[] = {
    {KEEL_OK, "KEEL_OK", "success", 0},
    {KEEL_ERR_INVALID_ARG, "KEEL_ERR_INVALID_ARG", "invalid argument", 0},
    {KEEL_ERR_NOMEM, "KEEL_ERR_NOMEM", "out of memory", 1},
    {KEEL_ERR_TRUNCATED, "KEEL_ERR_TRUNCATED", "record is truncated", 0},
    {KEEL_ERR_CORRUPT, "KEEL_ERR_CORRUPT", "record is corrupt", 0},
    {KEEL_ERR_UNKNOWN_SCHEMA, "KEEL_ERR_UNKNOWN_SCHEMA", "unknown schema", 0},
    {KEEL_ERR_TOO_LARGE, "KEEL_ERR_TOO_LARGE", "too large", 0},
    {KEEL_ERR_SCHEMA, "KEEL_ERR_SCHEMA", "value does not match its schema", 0},
    {KEEL_ERR_CONFIG, "KEEL_ERR_CONFIG", "invalid configuration", 0},
    {KEEL_ERR_KAFKA, "KEEL_ERR_KAFKA", "Kafka client error", 0},
    {KEEL_ERR_TIMEOUT, "KEEL_ERR_TIMEOUT", "timed out", 1},
    {KEEL_ERR_UNSUPPORTED, "KEEL_ERR_UNSUPPORTED",
     "not supported by the broker", 0},
    {KEEL_ERR_MISMATCH, "KEEL_ERR_MISMATCH", "exists with another shape", 0},
    {KEEL_ERR_NOT_FOUND, "KEEL_ERR_NOT_FOUND", "not found", 0},
    {KEEL_ERR_IO, "KEEL_ERR_IO", "I/O error", 1},
    {KEEL_ERR_TRANSPORT, "KEEL_ERR_TRANSPORT", "broker unreachable", 1},
    {KEEL_ERR_ACTIVITY_FAILED, "KEEL_ERR_ACTIVITY_FAILED", "activity failed",
     0},
    {KEEL_ERR_CANCELLED, "KEEL_ERR_CANCELLED", "cancelled", 0},
    {KEEL_ERR_WORKFLOW_FAILED, "KEEL_ERR_WORKFLOW_FAILED", "workflow failed",
     0},
    {KEEL_ERR_NONDETERMINISM, "KEEL_ERR_NONDETERMINISM",
     "workflow code is not deterministic", 0},
    {KEEL_ERR_ALREADY_STARTED, "KEEL_ERR_ALREADY_STARTED",
     "workflow already started", 0},
    {KEEL_ERR_CONTINUED_AS_NEW, "KEEL_ERR_CONTINUED_AS_NEW",
     "the run continued as a new run", 0},
};

static int find(int err)
{
        for (size_t i = 0; i < sizeof(errs) / sizeof(errs[0]); i++)
                if (errs[i].err == err)
                        return (int)i;
        return -1;
}

const char *keel_err_str(int err)
{
        int i = find(err);
        return i < 0 ? "unknown error" : errs[i].str;
}

const char *keel_err_name(int err)
{
        int i = find(err);
        return i < 0 ? "KEEL_ERR_UNKNOWN" : errs[i].name;
}

int keel_err_is_retriable(int err)
{
        int i = find(err);
        return i < 0 ? 0 : errs[i].retriable;
}

int keel__fail(char *errstr, size_t errsize, int err, const char *fmt, ...)
{
        if (errstr && errsize) {
                va_list ap;
                va_start(ap, fmt);
                vsnprintf(errstr, errsize, fmt, ap);
                va_end(ap);
        }
        return err;
}
