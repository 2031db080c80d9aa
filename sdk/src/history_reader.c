/*
 * history_reader.c: reading keel.history by the claim, epoch and
 * checkpoint rules (history_int.h).
 */
#include "history_int.h"

#include "keel/codec.h"
#include "keel/error.h"

#include <stdio.h>
#include <string.h>

int keel__history_reader_init(keel__history_reader_t *r,
                              keel__history_apply_fn_t apply, void *opaque)
{
        memset(r, 0, sizeof(*r));
        r->apply = apply;
        r->opaque = opaque;
        r->checkpoint = -1;
        r->offset = -1;
        r->pending = json_array();
        return r->pending ? KEEL_OK : KEEL_ERR_NOMEM;
}

void keel__history_reader_destroy(keel__history_reader_t *r)
{
        json_decref(r->pending);
        r->pending = NULL;
}

static int64_t ival(const json_t *rec, const char *k)
{
        return (int64_t)json_integer_value(json_object_get(rec, k));
}

int keel__history_reader_feed(keel__history_reader_t *r, const void *value,
                              size_t len, char *errstr, size_t errstr_size)
{
        const char *type;
        json_t *rec, *ev;
        int64_t epoch;
        int rc;

        if (!value) {
                /* A tombstone: its run was forgotten at its RunDeleted. */
                r->tombstones++;
                return KEEL_OK;
        }
        rc = keel_codec_decode(value, len, &type, &rec, errstr, errstr_size);
        if (rc) {
                r->undecodable++;
                return rc;
        }
        epoch = ival(rec, "epoch");
        if (!strcmp(type, "keel.history.PartitionClaim")) {
                if (epoch > r->epoch) {
                        /* A new owner: what the old one left unfinished
                         * never happened. */
                        r->torn += json_array_size(r->pending);
                        json_array_clear(r->pending);
                        r->epoch = epoch;
                        snprintf(
                            r->claim_owner, sizeof(r->claim_owner), "%s",
                            json_string_value(json_object_get(rec, "owner"))
                                ? json_string_value(
                                      json_object_get(rec, "owner"))
                                : "");
                } else {
                        r->fenced++;
                }
                json_decref(rec);
                return KEEL_OK;
        }
        if (epoch < r->epoch) {
                r->fenced++; /* written by an owner that lost the partition */
                json_decref(rec);
                return KEEL_OK;
        }
        r->epoch = epoch;
        if (!strcmp(type, "keel.history.Checkpoint")) {
                size_t i;
                json_t *e;
                json_array_foreach(r->pending, i, e)
                {
                        r->apply(r->opaque, e);
                        r->applied++;
                }
                json_array_clear(r->pending);
                r->checkpoint = ival(rec, "inbox_offset");
                r->batches++;
                json_decref(rec);
                return KEEL_OK;
        }
        ev = json_pack("{ss so sI}", "type", type, "record", rec, "size",
                       (json_int_t)len);
        if (ev && r->offset >= 0 &&
            json_object_set_new(ev, "offset", json_integer(r->offset))) {
                json_decref(ev);
                ev = NULL;
        }
        if (!ev || json_array_append_new(r->pending, ev))
                return KEEL_ERR_NOMEM;
        return KEEL_OK;
}

const char *const keel__run_status_names[KEEL__RUN_NSTATUS] = {
    "running",   "blocked",    "completed", "failed",
    "cancelled", "terminated", "continued"};

keel__run_status_t keel__run_status_after(keel__run_status_t st,
                                          const char *type)
{
        static const struct {
                const char *type;
                keel__run_status_t st;
        } closes[] = {
            {"keel.history.WorkflowCompleted", KEEL__RUN_COMPLETED},
            {"keel.history.WorkflowFailed", KEEL__RUN_FAILED},
            {"keel.history.WorkflowCancelled", KEEL__RUN_CANCELLED},
            {"keel.history.WorkflowTerminated", KEEL__RUN_TERMINATED},
            {"keel.history.WorkflowContinuedAsNew", KEEL__RUN_CONTINUED},
        };

        if (st >= KEEL__RUN_COMPLETED || !type)
                return st;
        for (size_t i = 0; i < sizeof(closes) / sizeof(closes[0]); i++)
                if (!strcmp(type, closes[i].type))
                        return closes[i].st;
        if (!strcmp(type, "keel.history.NonDeterminismDetected"))
                return KEEL__RUN_BLOCKED;
        if (st == KEEL__RUN_BLOCKED &&
            (!strcmp(type, "keel.history.ActivityScheduled") ||
             !strcmp(type, "keel.history.TimerStarted")))
                return KEEL__RUN_RUNNING;
        return st;
}
