/*
 * client_int.h: what a client call leaves behind for keel's own servers.
 */
#ifndef KEEL_CLIENT_INT_H
#define KEEL_CLIENT_INT_H

#include "keel/client.h"

#include <stdint.h>

/* Where a command was written. */
typedef struct keel__receipt_s {
        int32_t partition; /* of keel.inbox; -1: none yet */
        int64_t offset;
        char command_id[KEEL_WORKFLOW_ID_MAX + 1]; /* as given, or a UUID */
} keel__receipt_t;

/* The last command the calling thread wrote to keel.inbox, through any
 * client: the projector answers a POST with it, so that the caller can
 * wait until the command's outcome is visible. */
void keel__client_last_receipt(keel__receipt_t *out);

/* Longest workflow type or signal name, in bytes. */
#define KEEL__NAME_MAX_BYTES 1000

/* A name or ID (workflow ID, type, signal name): 1 to max bytes of UTF-8
 * without control characters (they would break log lines and tables).
 * KEEL_OK, or KEEL_ERR_INVALID_ARG with errstr naming it `what`. */
int keel__check_name(const char *s, const char *what, size_t max, char *errstr,
                     size_t errsize);

#endif
