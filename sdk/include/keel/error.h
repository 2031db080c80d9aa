/*
 * keel/error.h: the one error enum every keel function returns.
 *
 * Every function that can fail returns `int`: KEEL_OK (0) or a negative
 * keel_err_t. Results go through trailing out-parameters; on failure those
 * are left NULL/zero and there is nothing to free. Errors from librdkafka,
 * the Avro codec and HTTP are translated to these at the boundary, keeping
 * whether retrying can help (keel_err_is_retriable()).
 */
#ifndef KEEL_ERROR_H
#define KEEL_ERROR_H

#ifdef __cplusplus
extern "C" {
#endif

typedef enum keel_err_e {
        KEEL_OK = 0,
        KEEL_ERR_INVALID_ARG = -1,       /* a caller passed a bad argument */
        KEEL_ERR_NOMEM = -2,             /* out of memory */
        KEEL_ERR_TRUNCATED = -3,         /* record ends before its schema */
        KEEL_ERR_CORRUPT = -4,           /* record does not decode */
        KEEL_ERR_UNKNOWN_SCHEMA = -5,    /* unknown schema fingerprint/name */
        KEEL_ERR_TOO_LARGE = -6,         /* over a configured size limit */
        KEEL_ERR_SCHEMA = -7,            /* value does not match its schema */
        KEEL_ERR_CONFIG = -8,            /* bad configuration key or value */
        KEEL_ERR_KAFKA = -9,             /* the Kafka client failed */
        KEEL_ERR_TIMEOUT = -10,          /* timed out; may succeed later */
        KEEL_ERR_UNSUPPORTED = -11,      /* the broker lacks a feature */
        KEEL_ERR_MISMATCH = -12,         /* exists, but with another shape */
        KEEL_ERR_NOT_FOUND = -13,        /* no such thing */
        KEEL_ERR_IO = -14,               /* file or socket I/O failed */
        KEEL_ERR_TRANSPORT = -15,        /* broker unreachable; retriable */
        KEEL_ERR_ACTIVITY_FAILED = -16,  /* an activity failed for good */
        KEEL_ERR_CANCELLED = -17,        /* cancellation was requested */
        KEEL_ERR_WORKFLOW_FAILED = -18,  /* the workflow failed (keel_fail) */
        KEEL_ERR_NONDETERMINISM = -19,   /* replay issued other commands */
        KEEL_ERR_ALREADY_STARTED = -20,  /* a run with that ID is open */
        KEEL_ERR_CONTINUED_AS_NEW = -21, /* the run goes on as a new run */
} keel_err_t;

/* A short static English description of err; never NULL. */
const char *keel_err_str(int err);

/* The enum's name ("KEEL_ERR_CORRUPT") for logs and metrics; never NULL. */
const char *keel_err_name(int err);

/* 1 if the same call may succeed when tried again later, else 0. */
int keel_err_is_retriable(int err);

#ifdef __cplusplus
}
#endif
#endif
