/*
 * history_reader.c: reading keel.history by the claim, epoch and
 * checkpoint rules (history_int.h).
 */
#include "history_int.h"

#include "codec_int.h"
#include "keel/codec.h"
#include "keel/error.h"

#include <stdio.h>
#include <stdlib.h>
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

int keel__history_reader_init_raw(keel__history_reader_t *r,
                                  keel__history_apply_raw_fn_t apply,
                                  void *opaque)
{
        int rc = keel__history_reader_init(r, NULL, opaque);
        r->apply_raw = apply;
        return rc;
}

void keel__history_reader_destroy(keel__history_reader_t *r)
{
        json_decref(r->pending);
        r->pending = NULL;
        free(r->raw);
        free(r->arena);
        r->raw = NULL;
        r->arena = NULL;
        r->n_raw = r->cap_raw = r->arena_len = r->arena_cap = 0;
}

/* Events of the batch being read. */
static size_t pending_count(const keel__history_reader_t *r)
{
        return r->apply_raw ? r->n_raw : json_array_size(r->pending);
}

static void pending_clear(keel__history_reader_t *r)
{
        json_array_clear(r->pending);
        r->n_raw = 0;
        r->arena_len = 0;
}

/* Copy n bytes (and a NUL after them with nul) into the arena: their
 * offset, or (size_t)-1 without memory. */
static size_t arena_put(keel__history_reader_t *r, const void *p, size_t n,
                        int nul)
{
        size_t at = r->arena_len, need = at + n + (nul ? 1 : 0);
        if (need > r->arena_cap) {
                size_t cap = r->arena_cap ? r->arena_cap : 65536;
                unsigned char *a;
                while (cap < need)
                        cap *= 2;
                if (!(a = realloc(r->arena, cap)))
                        return (size_t)-1;
                r->arena = a;
                r->arena_cap = cap;
        }
        if (n)
                memcpy(r->arena + at, p, n);
        if (nul)
                r->arena[at + n] = 0;
        r->arena_len = need;
        return at;
}

enum { F_WID, F_RID, F_SEQ, F_EPOCH, F_TS, F_WTYPE, F_CID, F_INBOX, F_OWNER };

/* Keep a scanned event of the batch being read. */
static int pend_raw(keel__history_reader_t *r, const char *type,
                    const void *value, size_t len, const keel__scan_field_t *f)
{
        keel__history_pending_t *e;
        int started = !strcmp(type, "keel.history.WorkflowStarted");
        if (r->n_raw == r->cap_raw) {
                size_t cap = r->cap_raw ? r->cap_raw * 2 : 1024;
                keel__history_pending_t *n = realloc(r->raw, cap * sizeof(*n));
                if (!n)
                        return KEEL_ERR_NOMEM;
                r->raw = n;
                r->cap_raw = cap;
        }
        e = &r->raw[r->n_raw];
        e->type = type;
        e->len = len;
        e->seq = f[F_SEQ].i;
        e->epoch = f[F_EPOCH].i;
        e->ts = f[F_TS].i;
        if ((e->value = arena_put(r, value, len, 0)) == (size_t)-1 ||
            (e->wid = arena_put(r, f[F_WID].s, f[F_WID].n, 1)) == (size_t)-1 ||
            (e->rid = arena_put(r, f[F_RID].s, f[F_RID].n, 1)) == (size_t)-1 ||
            (e->wtype = arena_put(r, started ? f[F_WTYPE].s : NULL,
                                  started ? f[F_WTYPE].n : 0, 1)) ==
                (size_t)-1 ||
            (e->cid = arena_put(r, started ? f[F_CID].s : NULL,
                                started ? f[F_CID].n : 0, 1)) == (size_t)-1)
                return KEEL_ERR_NOMEM;
        r->n_raw++;
        return KEEL_OK;
}

/* Hand the batch's events over, in order. */
static void apply_pending(keel__history_reader_t *r)
{
        size_t i;
        json_t *e;
        if (!r->apply_raw) {
                json_array_foreach(r->pending, i, e)
                {
                        r->apply(r->opaque, e);
                        r->applied++;
                }
                return;
        }
        for (i = 0; i < r->n_raw; i++) {
                const keel__history_pending_t *p = &r->raw[i];
                const char *a = (const char *)r->arena;
                keel__history_raw_t ev = {p->type,      r->arena + p->value,
                                          p->len,       a + p->wid,
                                          a + p->rid,   p->seq,
                                          p->epoch,     p->ts,
                                          a + p->wtype, a + p->cid};
                r->apply_raw(r->opaque, &ev);
                r->applied++;
        }
}

static int64_t ival(const json_t *rec, const char *k)
{
        return (int64_t)json_integer_value(json_object_get(rec, k));
}

int keel__history_reader_feed(keel__history_reader_t *r, const void *value,
                              size_t len, char *errstr, size_t errstr_size)
{
        keel__scan_field_t f[] = {[F_WID] = {.name = "workflow_id"},
                                  [F_RID] = {.name = "run_id"},
                                  [F_SEQ] = {.name = "seq"},
                                  [F_EPOCH] = {.name = "epoch"},
                                  [F_TS] = {.name = "ts"},
                                  [F_WTYPE] = {.name = "workflow_type"},
                                  [F_CID] = {.name = "command_id"},
                                  [F_INBOX] = {.name = "inbox_offset"},
                                  [F_OWNER] = {.name = "owner"}};
        char owner[sizeof(r->claim_owner)];
        const char *type;
        json_t *rec, *ev;
        int64_t epoch, inbox_offset;
        int rc;

        if (!value) {
                /* A tombstone: its run was forgotten at its RunDeleted. */
                r->tombstones++;
                return KEEL_OK;
        }
        if (r->apply_raw) {
                /* Raw mode: the same checks, nothing decoded. */
                rc = keel__codec_scan(value, len, &type, f,
                                      sizeof(f) / sizeof(f[0]), errstr,
                                      errstr_size);
                rec = NULL;
                epoch = f[F_EPOCH].i;
                snprintf(owner, sizeof(owner), "%.*s", (int)f[F_OWNER].n,
                         f[F_OWNER].s ? f[F_OWNER].s : "");
                inbox_offset = f[F_INBOX].i;
        } else {
                rc = keel_codec_decode(value, len, &type, &rec, errstr,
                                       errstr_size);
                epoch = ival(rec, "epoch");
                snprintf(owner, sizeof(owner), "%s",
                         json_string_value(json_object_get(rec, "owner"))
                             ? json_string_value(json_object_get(rec, "owner"))
                             : "");
                inbox_offset = ival(rec, "inbox_offset");
        }
        if (rc) {
                r->undecodable++;
                return rc;
        }
        if (!strcmp(type, "keel.history.PartitionClaim")) {
                if (epoch > r->epoch) {
                        /* A new owner: what the old one left unfinished
                         * never happened. */
                        r->torn += pending_count(r);
                        pending_clear(r);
                        r->epoch = epoch;
                        snprintf(r->claim_owner, sizeof(r->claim_owner), "%s",
                                 owner);
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
                apply_pending(r);
                pending_clear(r);
                r->checkpoint = inbox_offset;
                r->batches++;
                json_decref(rec);
                return KEEL_OK;
        }
        if (r->apply_raw)
                return pend_raw(r, type, value, len, f);
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
