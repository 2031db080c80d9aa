/*
 * machine.c: the workflows of one partition as a state machine
 * (machine_int.h): starts, signals, cancellation, activity results with
 * retries and the four timeouts, durable timers, and restore.
 *
 * apply() is the one place that turns a history event into derived state
 * (pending activities and their deadlines, pending timers, status); both
 * the live path and restore go through it, so deadlines computed from
 * event timestamps agree after a restart. Deadlines sit in one min-heap;
 * an entry is checked against the current state when it comes due, so
 * superseded entries are simply dropped then.
 *
 * Cancellation reaches activities as ActivityCancel records on their task
 * topics, for every attempt sent and not finished: when the run gets its
 * first WorkflowCancelRequested (those activities are marked cancelled and
 * never retried; one waiting for a retry fails at once) and when the run
 * closes (those not told already). Activities the workflow schedules after
 * the request, such as compensations, run and retry as usual, and so do
 * those scheduled as not cancellable (the saga's compensations).
 */
#include "machine_int.h"

#include "keel/codec.h"
#include "keel/partition.h"
#include "client_int.h"
#include "search_attrs_int.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define H "keel.history."
#define I "keel.inbox."

enum {
        ST_RUNNING,
        ST_BLOCKED,
        ST_COMPLETED,
        ST_FAILED,
        ST_CANCELLED,
        ST_TERMINATED,
        ST_CONTINUED,
};

static const char *const status_names[] = {
    "running",   "blocked",    "completed", "failed",
    "cancelled", "terminated", "continued"};

typedef struct act_s {
        char id[24];
        int attempt;
        int64_t scheduled_at; /* first attempt's task: schedule-to-close */
        int64_t attempt_at;   /* current attempt's task; 0 while waiting */
        int64_t retry_at;     /* > 0: the next attempt is due then */
        int64_t last_hb_at;
        int started;         /* a heartbeat came for this attempt */
        int cancelled;       /* pending at the run's cancel request: no retry */
        int non_cancellable; /* scheduled with cancellable false */
        int64_t sts_ms, stc_ms, sctc_ms, hb_ms;
        int64_t sched_seq; /* seq of its ActivityScheduled event */
        char *hb_details;  /* last heartbeat's details (JSON text) */
} act_t;

typedef struct timer_s {
        char id[24];
        int64_t fire_at;
} timer_t_;

typedef struct run_s {
        char *workflow_id, *run_id, *type, *start_command_id;
        /*
         * Its history, n_events events, while it is open, and once closed
         * where the machine keeps histories (keel__machine_keep_history()).
         * The history is `blob`: each event single-object encoded after
         * its length (4 bytes, little-endian). `events` is the same
         * decoded, or NULL: decoded when the run's code runs (warm()),
         * dropped while it waits for a timer, a signal or a child
         * (cool()), kept while it has activities pending. A run with an
         * event that does not encode (no_blob) keeps `events` only.
         */
        unsigned char *blob;
        size_t blob_len, blob_cap;
        json_t *events;
        int64_t n_events;
        int no_blob;
        /* Restore reads events without deriving state from them (only
         * status and counts): derived is how many were, unsettled says
         * there are more (settle()). */
        int64_t n_derived;
        int unsettled;
        int status;
        int cancel_requested; /* a WorkflowCancelRequested was applied */
        /* From WorkflowStarted: when the run, and the workflow execution
         * (across continue-as-new), time out; 0: never. */
        int64_t run_deadline, exec_deadline;
        /* Children it started (ChildWorkflowInitiated), in order. */
        struct kid_s {
                char *id;
                int policy;  /* KEEL_PARENT_CLOSE_* */
                int closed;  /* its ChildWorkflowClosed was applied */
                int64_t seq; /* of its ChildWorkflowInitiated */
        } * kids;
        size_t n_kids, cap_kids;
        int64_t new_from; /* first event since the last activation */
        act_t *acts;
        size_t n_acts, cap_acts;
        timer_t_ *timers;
        size_t n_timers, cap_timers;
        /* Retention and history limits (the section at the end). */
        int64_t bytes;     /* encoded size of its events */
        int64_t closed_at; /* its closing event's ts; 0 while open */
        int64_t delete_at; /* when its history is deleted; 0: never */
        int retired;       /* a newer run of its ID replaced it */
        int deleted;       /* history deleted: in the graveyard */
        int close_noted, limit_warned, limit_hit;
        struct run_s *next; /* hash chain; the graveyard's once deleted */
} run_t;

enum {
        HK_TIMER,
        HK_RETRY,
        HK_STS,
        HK_STC,
        HK_SCTC,
        HK_HB,
        HK_RUN_TIMEOUT,  /* the run's run timeout */
        HK_EXEC_TIMEOUT, /* the workflow execution timeout */
        HK_ACTIVATE,     /* a run continued as new, to be run */
        HK_RETENTION,    /* a closed run's history is to be deleted */
};

typedef struct hent_s {
        int64_t due;
        run_t *run;
        int kind;
        int attempt;
        char id[24];
} hent_t;

struct keel__machine_s {
        const keel_registry_t *reg;
        run_t **buckets;
        size_t nbuckets, nruns;
        hent_t *heap;
        size_t nheap, capheap;
        keel__machine_stats_t st;
        int can_depth; /* runs continued as new within one activation */
        /* Retention and history limits (the section at the end). */
        keel__machine_limits_t lim;
        json_t *retention_by_type; /* owned; lim's points here */
        run_t *graveyard;          /* deleted runs, until reap() */
        size_t ngrave;
        int keep_history; /* closed runs keep their events */
        int unsettled;    /* some run restored raw waits for settle() */
};

/* Retention and history limits: the section at the end. */
static void retire_run(keel__machine_t *m, run_t *r);
static int note_closed(keel__machine_t *m, run_t *r, int64_t ts);
static int enforce_limits(keel__machine_t *m, run_t *r, int64_t now,
                          keel__out_t *out);
static int delete_run(keel__machine_t *m, run_t *r, int64_t now,
                      keel__out_t *out);
static int restore_deleted(keel__machine_t *m, const json_t *rec);
static int past_warning(const keel__machine_t *m, const run_t *r);
static void forget_run(keel__machine_t *m, run_t *r);
static int settle(keel__machine_t *m);
static void reap(keel__machine_t *m);
static void free_graveyard(keel__machine_t *m);
static int deletions_full(const keel__machine_t *m, const keel__out_t *out);

/* ---- out --------------------------------------------------------------- */

int keel__out_init(keel__out_t *out)
{
        out->history = json_array();
        out->tasks = json_array();
        out->rejects = json_array();
        out->emits = json_array();
        out->statuses = json_array();
        out->tombstones = json_array();
        out->inbox = json_array();
        if (!out->history || !out->tasks || !out->rejects || !out->emits ||
            !out->statuses || !out->tombstones || !out->inbox) {
                keel__out_destroy(out);
                return KEEL_ERR_NOMEM;
        }
        return KEEL_OK;
}

void keel__out_reset(keel__out_t *out)
{
        json_array_clear(out->history);
        json_array_clear(out->tasks);
        json_array_clear(out->rejects);
        json_array_clear(out->emits);
        json_array_clear(out->statuses);
        json_array_clear(out->tombstones);
        json_array_clear(out->inbox);
}

void keel__out_destroy(keel__out_t *out)
{
        json_decref(out->history);
        json_decref(out->tasks);
        json_decref(out->rejects);
        json_decref(out->emits);
        json_decref(out->statuses);
        json_decref(out->tombstones);
        json_decref(out->inbox);
        out->history = out->tasks = out->rejects = out->emits = NULL;
        out->statuses = out->tombstones = out->inbox = NULL;
}

/* ---- runs -------------------------------------------------------------- */

static size_t bucket_of(const keel__machine_t *m, const char *id)
{
        return ((uint32_t)keel_murmur2(id, strlen(id))) % m->nbuckets;
}

/* The workflow's latest run (runs it replaced are retired). */
static run_t *find_run(const keel__machine_t *m, const char *id)
{
        for (run_t *r = m->buckets[bucket_of(m, id)]; r; r = r->next)
                if (!r->retired && !strcmp(r->workflow_id, id))
                        return r;
        return NULL;
}

static void run_free(run_t *r)
{
        if (!r)
                return;
        for (size_t i = 0; i < r->n_acts; i++)
                free(r->acts[i].hb_details);
        free(r->acts);
        free(r->timers);
        for (size_t i = 0; i < r->n_kids; i++)
                free(r->kids[i].id);
        free(r->kids);
        json_decref(r->events);
        free(r->blob);
        free(r->workflow_id);
        free(r->run_id);
        free(r->type);
        free(r->start_command_id);
        free(r);
}

/* Forget r's events (their count stays in n_events). */
static void drop_events(run_t *r)
{
        json_decref(r->events);
        r->events = NULL;
        free(r->blob);
        r->blob = NULL;
        r->blob_len = r->blob_cap = 0;
}

/* ---- a run's history: encoded, and decoded while its code runs --------- */

static int blob_append(run_t *r, const void *p, size_t n)
{
        size_t need = r->blob_len + 4 + n;
        if (n > UINT32_MAX)
                return KEEL_ERR_TOO_LARGE;
        if (need > r->blob_cap) {
                size_t cap = r->blob_cap ? r->blob_cap + r->blob_cap / 2 : 0;
                unsigned char *b;
                if (cap < need)
                        cap = need;
                if (!(b = realloc(r->blob, cap)))
                        return KEEL_ERR_NOMEM;
                r->blob = b;
                r->blob_cap = cap;
        }
        for (int i = 0; i < 4; i++)
                r->blob[r->blob_len + (size_t)i] =
                    (unsigned char)((uint64_t)n >> (8 * i));
        memcpy(r->blob + r->blob_len + 4, p, n);
        r->blob_len = need;
        return KEEL_OK;
}

/* The blob entry at *pos: its bytes and length; *pos moves past it. */
static const unsigned char *blob_next(const run_t *r, size_t *pos, size_t *len)
{
        const unsigned char *b = r->blob + *pos;
        *len = (size_t)b[0] | (size_t)b[1] << 8 | (size_t)b[2] << 16 |
               (size_t)b[3] << 24;
        *pos += 4 + *len;
        return b + 4;
}

/* Decode a blob entry into an event {"type","record"}: KEEL_OK (*ev new),
 * or the codec's error (the bytes were checked when they came in, so
 * only KEEL_ERR_NOMEM in practice). */
static int blob_event(const unsigned char *p, size_t len, json_t **ev)
{
        const char *type;
        json_t *rec;
        int rc = keel_codec_decode(p, len, &type, &rec, NULL, 0);
        *ev = NULL;
        if (rc)
                return rc;
        *ev = keel__ev_new(type, rec);
        return *ev ? KEEL_OK : KEEL_ERR_NOMEM;
}

/* Make r->events its history, decoded. */
static int warm(run_t *r)
{
        json_t *evs, *ev;
        size_t pos = 0, len;
        int rc;
        if (r->events || r->no_blob)
                return KEEL_OK;
        if (!(evs = json_array()))
                return KEEL_ERR_NOMEM;
        while (pos < r->blob_len) {
                const unsigned char *p = blob_next(r, &pos, &len);
                if ((rc = blob_event(p, len, &ev)) ||
                    json_array_append_new(evs, ev)) {
                        json_decref(evs);
                        return rc ? rc : KEEL_ERR_NOMEM;
                }
        }
        r->events = evs;
        return KEEL_OK;
}

/* r waits (for a timer, a signal, a child): keep its history encoded
 * only. Runs with activities pending keep it decoded too, for the result
 * that comes soon; so does a machine that keeps histories. */
static void cool(const keel__machine_t *m, run_t *r)
{
        if (m->keep_history || r->no_blob || !r->events || r->n_acts)
                return;
        json_decref(r->events);
        r->events = NULL;
        if (r->blob_cap > r->blob_len) {
                unsigned char *b = realloc(r->blob, r->blob_len);
                if (b || !r->blob_len) {
                        r->blob = b;
                        r->blob_cap = r->blob_len;
                }
        }
}

/* The record of a's ActivityScheduled event, or NULL without memory. */
static const json_t *sched_rec(run_t *r, const act_t *a)
{
        if (warm(r))
                return NULL;
        return keel__ev_rec(
            json_array_get(r->events, (size_t)a->sched_seq - 1));
}

static int is_open(const run_t *r)
{
        return r->status == ST_RUNNING || r->status == ST_BLOCKED;
}

/* Drop heap entries of a run that is about to be freed. */
static void heap_purge(keel__machine_t *m, const run_t *r);

static int grow_table(keel__machine_t *m)
{
        size_t nb = m->nbuckets * 2;
        run_t **b = calloc(nb, sizeof(*b));
        if (!b)
                return KEEL_ERR_NOMEM;
        for (size_t i = 0; i < m->nbuckets; i++) {
                run_t *r = m->buckets[i], *next;
                for (; r; r = next) {
                        size_t k =
                            ((uint32_t)keel_murmur2(r->workflow_id,
                                                    strlen(r->workflow_id))) %
                            nb;
                        next = r->next;
                        r->next = b[k];
                        b[k] = r;
                }
        }
        free(m->buckets);
        m->buckets = b;
        m->nbuckets = nb;
        return KEEL_OK;
}

/* A new run for workflow_id, replacing its previous run. */
static run_t *new_run(keel__machine_t *m, const char *workflow_id,
                      const char *run_id, const char *type,
                      const char *command_id)
{
        run_t *old = find_run(m, workflow_id), *r;
        size_t b;

        if (!old && m->nruns + 1 > m->nbuckets * 2 && grow_table(m))
                return NULL;
        r = calloc(1, sizeof(*r));
        if (!r)
                return NULL;
        r->workflow_id = strdup(workflow_id);
        r->run_id = strdup(run_id);
        r->type = strdup(type);
        r->start_command_id = strdup(command_id ? command_id : "");
        r->events = json_array();
        if (!r->workflow_id || !r->run_id || !r->type || !r->start_command_id ||
            !r->events) {
                run_free(r);
                return NULL;
        }
        r->new_from = 1;
        b = bucket_of(m, workflow_id);
        if (old && old->delete_at) {
                retire_run(m, old); /* kept until its history is deleted */
        } else if (old) {
                run_t **pp = &m->buckets[b];
                while (*pp != old)
                        pp = &(*pp)->next;
                *pp = old->next;
                if (is_open(old))
                        m->st.open--;
                heap_purge(m, old);
                run_free(old);
                m->nruns--;
        }
        r->next = m->buckets[b];
        m->buckets[b] = r;
        m->nruns++;
        m->st.open++;
        return r;
}

static void set_status(keel__machine_t *m, run_t *r, int st)
{
        if (is_open(r) && !(st == ST_RUNNING || st == ST_BLOCKED))
                m->st.open--;
        r->status = st;
}

static act_t *find_act(run_t *r, const char *id)
{
        for (size_t i = 0; i < r->n_acts; i++)
                if (!strcmp(r->acts[i].id, id))
                        return &r->acts[i];
        return NULL;
}

static void remove_act(run_t *r, act_t *a)
{
        free(a->hb_details);
        *a = r->acts[--r->n_acts];
}

static timer_t_ *find_timer(run_t *r, const char *id)
{
        for (size_t i = 0; i < r->n_timers; i++)
                if (!strcmp(r->timers[i].id, id))
                        return &r->timers[i];
        return NULL;
}

/* ---- heap -------------------------------------------------------------- */

static void heap_swap(hent_t *a, hent_t *b)
{
        hent_t t = *a;
        *a = *b;
        *b = t;
}

static void heap_down(keel__machine_t *m, size_t i)
{
        for (;;) {
                size_t l = 2 * i + 1, r = l + 1, s = i;
                if (l < m->nheap && m->heap[l].due < m->heap[s].due)
                        s = l;
                if (r < m->nheap && m->heap[r].due < m->heap[s].due)
                        s = r;
                if (s == i)
                        return;
                heap_swap(&m->heap[i], &m->heap[s]);
                i = s;
        }
}

static int heap_push(keel__machine_t *m, int64_t due, run_t *r, int kind,
                     const char *id, int attempt)
{
        size_t i;
        if (m->nheap == m->capheap) {
                size_t cap = m->capheap ? m->capheap * 2 : 256;
                hent_t *h = realloc(m->heap, cap * sizeof(*h));
                if (!h)
                        return KEEL_ERR_NOMEM;
                m->heap = h;
                m->capheap = cap;
        }
        i = m->nheap++;
        m->heap[i].due = due;
        m->heap[i].run = r;
        m->heap[i].kind = kind;
        m->heap[i].attempt = attempt;
        snprintf(m->heap[i].id, sizeof(m->heap[i].id), "%s", id);
        while (i > 0 && m->heap[(i - 1) / 2].due > m->heap[i].due) {
                heap_swap(&m->heap[i], &m->heap[(i - 1) / 2]);
                i = (i - 1) / 2;
        }
        return KEEL_OK;
}

static hent_t heap_pop(keel__machine_t *m)
{
        hent_t top = m->heap[0];
        m->heap[0] = m->heap[--m->nheap];
        heap_down(m, 0);
        return top;
}

/* Drop the heap entries of run r; with r NULL, of every deleted run. */
static void heap_purge(keel__machine_t *m, const run_t *r)
{
        size_t k = 0;
        for (size_t i = 0; i < m->nheap; i++)
                if (r ? m->heap[i].run != r : !m->heap[i].run->deleted)
                        m->heap[k++] = m->heap[i];
        m->nheap = k;
        for (size_t i = m->nheap / 2 + 1; i-- > 0;)
                heap_down(m, i);
}

static int still_due(run_t *r, const struct hent_s *e, struct act_s **ap);

int64_t keel__machine_next_due(keel__machine_t *m)
{
        if (settle(m))
                return 0; /* without memory: try again at once */
        /* Superseded entries (an activity that completed before its
         * timeout, a cancelled timer) are dropped here, so the answer is
         * a real deadline. */
        while (m->nheap) {
                act_t *a = NULL;
                if (still_due(m->heap[0].run, &m->heap[0], &a))
                        return m->heap[0].due;
                heap_pop(m);
        }
        return INT64_MAX;
}

/* ---- machine ------------------------------------------------------------ */

keel__machine_t *keel__machine_new(const keel_registry_t *reg)
{
        keel__machine_t *m = calloc(1, sizeof(*m));
        if (!m)
                return NULL;
        m->reg = reg;
        keel__machine_limits_init(&m->lim);
        m->nbuckets = 1024;
        m->buckets = calloc(m->nbuckets, sizeof(*m->buckets));
        if (!m->buckets) {
                free(m);
                return NULL;
        }
        return m;
}

void keel__machine_destroy(keel__machine_t *m)
{
        if (!m)
                return;
        for (size_t i = 0; i < m->nbuckets; i++) {
                run_t *r = m->buckets[i], *next;
                for (; r; r = next) {
                        next = r->next;
                        run_free(r);
                }
        }
        free_graveyard(m);
        json_decref(m->retention_by_type);
        free(m->buckets);
        free(m->heap);
        free(m);
}

void keel__machine_stats(const keel__machine_t *m, keel__machine_stats_t *st)
{
        *st = m->st;
}

/* ---- events ------------------------------------------------------------ */

static const char *rstr(const json_t *rec, const char *k)
{
        const char *s = json_string_value(json_object_get(rec, k));
        return s ? s : "";
}

static int64_t rint_(const json_t *rec, const char *k)
{
        return (int64_t)json_integer_value(json_object_get(rec, k));
}

static int is(const char *type, const char *short_name)
{
        /* Called several times for every event restored: no strlen(). */
        return !strncmp(type, H, sizeof(H) - 1) &&
               !strcmp(type + sizeof(H) - 1, short_name);
}

/* Push the deadlines of an activity's current attempt. */
static int push_attempt_deadlines(keel__machine_t *m, run_t *r, act_t *a)
{
        int rc = KEEL_OK;
        if (a->stc_ms > 0)
                rc |= heap_push(m, a->attempt_at + a->stc_ms, r, HK_STC, a->id,
                                a->attempt);
        if (a->sts_ms > 0)
                rc |= heap_push(m, a->attempt_at + a->sts_ms, r, HK_STS, a->id,
                                a->attempt);
        if (a->hb_ms > 0)
                rc |= heap_push(m, a->last_hb_at + a->hb_ms, r, HK_HB, a->id,
                                a->attempt);
        return rc ? KEEL_ERR_NOMEM : KEEL_OK;
}

static int64_t opt_int(const json_t *rec, const char *k)
{
        const json_t *v = json_object_get(rec, k);
        return json_is_integer(v) ? (int64_t)json_integer_value(v) : 0;
}

/* ---- children: what a run keeps of them -------------------------------- */

static struct kid_s *find_kid(run_t *r, const char *id)
{
        for (size_t i = 0; i < r->n_kids; i++)
                if (!strcmp(r->kids[i].id, id))
                        return &r->kids[i];
        return NULL;
}

static int add_kid(run_t *r, const json_t *rec)
{
        static const char *const policies[] = {"TERMINATE", "REQUEST_CANCEL",
                                               "ABANDON"};
        struct kid_s *k;
        const char *pol = rstr(rec, "parent_close_policy");
        if (r->n_kids == r->cap_kids) {
                size_t cap = r->cap_kids ? r->cap_kids * 2 : 4;
                struct kid_s *nk = realloc(r->kids, cap * sizeof(*nk));
                if (!nk)
                        return KEEL_ERR_NOMEM;
                r->kids = nk;
                r->cap_kids = cap;
        }
        k = &r->kids[r->n_kids];
        memset(k, 0, sizeof(*k));
        for (int i = 0; i < 3; i++)
                if (!strcmp(pol, policies[i]))
                        k->policy = i;
        if (!(k->id = strdup(rstr(rec, "child_workflow_id"))))
                return KEEL_ERR_NOMEM;
        k->seq = rint_(rec, "seq");
        r->n_kids++;
        return KEEL_OK;
}

/* The length of v as an Avro long (zigzag varint). */
static int64_t varint_len(int64_t v)
{
        uint64_t z = ((uint64_t)v << 1) ^ (uint64_t)(v >> 63);
        int64_t n = 1;
        while (z >= 0x80) {
                z >>= 7;
                n++;
        }
        return n;
}

/*
 * Append ev (borrowed) to r's history. r->bytes counts its single-object
 * encoded size with its epoch counted as 0 (the writer sets it later), so
 * that a live run and a restored one count alike: the record's length if
 * the history reader gave it (its "size", taken out of ev here), else ev
 * encoded now.
 */
static int store(run_t *r, json_t *ev)
{
        const json_t *rec = keel__ev_rec(ev);
        const json_t *size = json_object_get(ev, "size");
        int64_t extra = varint_len(rint_(rec, "epoch")) - 1;
        unsigned char *buf = NULL;
        size_t len = 0;
        int rc = keel_codec_encode(keel__ev_type(ev), rec, &buf, &len, NULL, 0);

        if (json_is_integer(size)) {
                r->bytes += (int64_t)json_integer_value(size) - extra;
                json_object_del(ev, "size");
        } else if (!rc) {
                r->bytes += (int64_t)len - extra;
        }
        if (rc == KEEL_ERR_NOMEM)
                return rc;
        if (rc && !r->no_blob) {
                /* It does not encode: this run keeps its events decoded. */
                if ((rc = warm(r)))
                        return rc;
                free(r->blob);
                r->blob = NULL;
                r->blob_len = r->blob_cap = 0;
                r->no_blob = 1;
        }
        if (!r->no_blob && (rc = blob_append(r, buf, len))) {
                free(buf);
                return rc;
        }
        free(buf);
        if (r->events && json_array_append(r->events, ev))
                return KEEL_ERR_NOMEM;
        r->n_events++;
        return KEEL_OK;
}

static int derive(keel__machine_t *m, run_t *r, const char *type,
                  const json_t *rec, int64_t seq);
static int derive_status(keel__machine_t *m, run_t *r, const char *type,
                         int64_t ts);

/*
 * Append ev (stolen) to r's history and derive state from it. The one
 * place state changes, for live events and restored ones alike (restore
 * may derive later: settle()).
 */
static int apply(keel__machine_t *m, run_t *r, json_t *ev)
{
        const char *type = keel__ev_type(ev);
        const json_t *rec = keel__ev_rec(ev);
        int rc;

        if ((rc = store(r, ev)) ||
            (rc = derive(m, r, type, rec, r->n_events)) ||
            (rc = derive_status(m, r, type, rint_(rec, "ts")))) {
                json_decref(ev);
                return rc;
        }
        r->n_derived = r->n_events;
        json_decref(ev);
        return KEEL_OK;
}

/* What event `type` (record rec, the run's event seq) changes of r but
 * its status: deadlines, activities, timers, children. */
static int derive(keel__machine_t *m, run_t *r, const char *type,
                  const json_t *rec, int64_t seq)
{
        int64_t ts = rint_(rec, "ts");
        act_t *a;

        if (is(type, "WorkflowStarted")) {
                int64_t run_ms = opt_int(rec, "run_timeout_ms");
                int64_t exec_ms = opt_int(rec, "execution_timeout_ms");
                r->run_deadline = run_ms > 0 ? ts + run_ms : 0;
                r->exec_deadline = exec_ms > 0 ? ts + exec_ms : 0;
                if ((r->run_deadline &&
                     heap_push(m, r->run_deadline, r, HK_RUN_TIMEOUT, "", 0)) ||
                    (r->exec_deadline &&
                     heap_push(m, r->exec_deadline, r, HK_EXEC_TIMEOUT, "", 0)))
                        return KEEL_ERR_NOMEM;
                return KEEL_OK;
        }
        if (is(type, "ChildWorkflowInitiated"))
                return add_kid(r, rec);
        if (is(type, "ChildWorkflowClosed")) {
                struct kid_s *k = find_kid(r, rstr(rec, "child_workflow_id"));
                if (k)
                        k->closed = 1;
                return KEEL_OK;
        }
        if (is(type, "ActivityScheduled")) {
                if (r->n_acts == r->cap_acts) {
                        size_t cap = r->cap_acts ? r->cap_acts * 2 : 4;
                        act_t *na = realloc(r->acts, cap * sizeof(*na));
                        if (!na)
                                return KEEL_ERR_NOMEM;
                        r->acts = na;
                        r->cap_acts = cap;
                }
                a = &r->acts[r->n_acts++];
                memset(a, 0, sizeof(*a));
                snprintf(a->id, sizeof(a->id), "%s", rstr(rec, "activity_id"));
                a->attempt = 1;
                a->scheduled_at = a->attempt_at = a->last_hb_at = ts;
                a->sts_ms = opt_int(rec, "schedule_to_start_ms");
                a->stc_ms = opt_int(rec, "start_to_close_ms");
                a->sctc_ms = opt_int(rec, "schedule_to_close_ms");
                a->hb_ms = opt_int(rec, "heartbeat_ms");
                a->non_cancellable =
                    json_is_false(json_object_get(rec, "cancellable"));
                a->sched_seq = seq;
                if (a->sctc_ms > 0 &&
                    heap_push(m, ts + a->sctc_ms, r, HK_SCTC, a->id, 0))
                        return KEEL_ERR_NOMEM;
                return push_attempt_deadlines(m, r, a);
        }
        if (is(type, "ActivityRetried")) {
                if (!(a = find_act(r, rstr(rec, "activity_id"))))
                        return KEEL_OK;
                a->attempt = (int)rint_(rec, "attempt");
                a->attempt_at = a->last_hb_at = ts;
                a->retry_at = 0;
                a->started = 0;
                return push_attempt_deadlines(m, r, a);
        }
        if (is(type, "ActivityFailed") || is(type, "ActivityTimedOut")) {
                const json_t *next = json_object_get(rec, "next_attempt_at");
                if (!(a = find_act(r, rstr(rec, "activity_id"))))
                        return KEEL_OK;
                if (json_is_integer(next)) {
                        a->retry_at = (int64_t)json_integer_value(next);
                        a->attempt_at = 0;
                        return heap_push(m, a->retry_at, r, HK_RETRY, a->id,
                                         a->attempt);
                }
                remove_act(r, a);
                return KEEL_OK;
        }
        if (is(type, "ActivityCompleted")) {
                if ((a = find_act(r, rstr(rec, "activity_id"))))
                        remove_act(r, a);
                return KEEL_OK;
        }
        if (is(type, "ActivityHeartbeatRecorded")) {
                if (!(a = find_act(r, rstr(rec, "activity_id"))))
                        return KEEL_OK;
                a->last_hb_at = ts;
                a->started = 1;
                free(a->hb_details);
                a->hb_details = strdup(rstr(rec, "details"));
                if (a->hb_ms > 0)
                        return heap_push(m, ts + a->hb_ms, r, HK_HB, a->id,
                                         a->attempt);
                return KEEL_OK;
        }
        if (is(type, "TimerStarted")) {
                timer_t_ *t;
                if (r->n_timers == r->cap_timers) {
                        size_t cap = r->cap_timers ? r->cap_timers * 2 : 4;
                        timer_t_ *nt = realloc(r->timers, cap * sizeof(*nt));
                        if (!nt)
                                return KEEL_ERR_NOMEM;
                        r->timers = nt;
                        r->cap_timers = cap;
                }
                t = &r->timers[r->n_timers++];
                snprintf(t->id, sizeof(t->id), "%s", rstr(rec, "timer_id"));
                t->fire_at = rint_(rec, "fire_at");
                return heap_push(m, t->fire_at, r, HK_TIMER, t->id, 0);
        }
        if (is(type, "TimerFired") || is(type, "TimerCancelled")) {
                timer_t_ *t = find_timer(r, rstr(rec, "timer_id"));
                if (t)
                        *t = r->timers[--r->n_timers];
                return KEEL_OK;
        }
        if (is(type, "WorkflowCancelRequested")) {
                /* The first request counts, as in workflow.c: what was
                 * pending then is cancelled; a later request does not
                 * touch the compensations scheduled since. */
                if (!r->cancel_requested)
                        for (size_t i = 0; i < r->n_acts; i++)
                                if (!r->acts[i].non_cancellable)
                                        r->acts[i].cancelled = 1;
                r->cancel_requested = 1;
                return KEEL_OK;
        }
        return KEEL_OK;
}

/* r's status after event `type` stamped ts. */
static int derive_status(keel__machine_t *m, run_t *r, const char *type,
                         int64_t ts)
{
        if (is(type, "WorkflowCompleted"))
                set_status(m, r, ST_COMPLETED);
        else if (is(type, "WorkflowFailed"))
                set_status(m, r, ST_FAILED);
        else if (is(type, "WorkflowCancelled"))
                set_status(m, r, ST_CANCELLED);
        else if (is(type, "WorkflowTerminated"))
                set_status(m, r, ST_TERMINATED);
        else if (is(type, "WorkflowContinuedAsNew"))
                set_status(m, r, ST_CONTINUED);
        else if (is(type, "NonDeterminismDetected") && is_open(r))
                r->status = ST_BLOCKED;
        if (!is_open(r)) {
                /* A closed run has nothing pending. */
                while (r->n_acts)
                        remove_act(r, &r->acts[0]);
                r->n_timers = 0;
        }
        if (!is_open(r) && !m->keep_history && r->status != ST_CONTINUED)
                drop_events(r); /* a run continued as new: see continue_run */
        if (!is_open(r) && !r->close_noted)
                return note_closed(m, r, ts); /* its retention starts */
        return KEEL_OK;
}

static int cancel_on_close(keel__machine_t *m, run_t *r, const json_t *ev,
                           int64_t now, keel__out_t *out);
static int close_kids(run_t *r, int64_t now, keel__out_t *out);
static int notify_parent(run_t *r, const json_t *ev, int64_t now,
                         keel__out_t *out);
static int activate(keel__machine_t *m, run_t *r, int64_t now,
                    keel__out_t *out);

/* If ev (new, not applied yet) starts or closes r, say so in
 * out->statuses, for the lifecycle stream. */
static int note_status(const run_t *r, json_t *ev, keel__out_t *out)
{
        static const char *const changes[][2] = {
            {"WorkflowStarted", "RUNNING"},
            {"WorkflowCompleted", "COMPLETED"},
            {"WorkflowFailed", "FAILED"},
            {"WorkflowCancelled", "CANCELLED"},
            {"WorkflowTerminated", "TERMINATED"},
            {"WorkflowContinuedAsNew", "CONTINUED_AS_NEW"},
        };
        const char *type = keel__ev_type(ev);
        for (size_t k = 0; k < sizeof(changes) / sizeof(changes[0]); k++) {
                json_t *st;
                if (!is(type, changes[k][0]))
                        continue;
                st = json_pack("{ss ss sO}", "workflow_type", r->type, "status",
                               changes[k][1], "event", ev);
                if (!st || json_array_append_new(out->statuses, st))
                        return KEEL_ERR_NOMEM;
        }
        return KEEL_OK;
}

/* A new event of `type` for r, stamped and applied; rec stolen. Also
 * appended to out->history. */
static int emit(keel__machine_t *m, run_t *r, const char *type, json_t *rec,
                int64_t now, keel__out_t *out)
{
        json_t *ev;
        int rc;
        if (!rec)
                return KEEL_ERR_NOMEM;
        if (!is_open(r)) {
                /* Closed, e.g. at its history limit by the event before:
                 * a closed run takes no more events. */
                json_decref(rec);
                return KEEL_OK;
        }
        json_object_set_new(rec, "workflow_id", json_string(r->workflow_id));
        json_object_set_new(rec, "run_id", json_string(r->run_id));
        json_object_set_new(rec, "seq",
                            json_integer((json_int_t)r->n_events + 1));
        json_object_set_new(rec, "epoch", json_integer(0));
        json_object_set_new(rec, "ts", json_integer(now));
        ev = keel__ev_new(type, rec);
        if (!ev)
                return KEEL_ERR_NOMEM;
        if (json_array_append(out->history, ev)) {
                json_decref(ev);
                return KEEL_ERR_NOMEM;
        }
        m->st.events++;
        if ((rc = cancel_on_close(m, r, ev, now, out)) ||
            (rc = note_status(r, ev, out))) {
                json_decref(ev);
                return rc;
        }
        if ((rc = apply(m, r, ev)))
                return rc;
        return enforce_limits(m, r, now, out);
}

/* The task for an activity's current attempt. */
static int emit_task(keel__machine_t *m, run_t *r, act_t *a, int64_t now,
                     keel__out_t *out)
{
        const json_t *s = sched_rec(r, a);
        /* A workflow ID has up to 1000 bytes, a run ID 36. */
        char key[1200];
        char keel_id[1200];
        json_t *t;

        if (!s)
                return KEEL_ERR_NOMEM;
        /* The run's ID is in both: a workflow ID may be used again by a
         * later run, whose activities are new side effects. */
        snprintf(key, sizeof(key), "%s/%s/%s", r->workflow_id, r->run_id,
                 a->id);
        /* DESIGN.md: records outside history carry the ID of the history
         * event that caused them, to drop duplicates of torn batches. */
        snprintf(keel_id, sizeof(keel_id), "%s/%s/%zu", r->workflow_id,
                 r->run_id, (size_t)r->n_events);
        t = json_pack(
            "{ss ss ss ss ss ss si ss sI sO? sO? sO? sO? so sI sI}",
            "workflow_id", r->workflow_id, "run_id", r->run_id, "activity_id",
            a->id, "activity_type", rstr(s, "activity_type"), "task_queue",
            rstr(s, "task_queue"), "input", rstr(s, "input"), "attempt",
            a->attempt, "idempotency_key", key, "scheduled_at",
            (json_int_t)a->scheduled_at, "schedule_to_start_ms",
            json_object_get(s, "schedule_to_start_ms"), "start_to_close_ms",
            json_object_get(s, "start_to_close_ms"), "schedule_to_close_ms",
            json_object_get(s, "schedule_to_close_ms"), "heartbeat_ms",
            json_object_get(s, "heartbeat_ms"), "heartbeat_details",
            a->hb_details ? json_string(a->hb_details) : json_null(), "epoch",
            (json_int_t)0, "ts", (json_int_t)now);
        if (t)
                json_object_set_new(t, "keel_id", json_string(keel_id));
        if (!t || json_array_append_new(out->tasks, t))
                return KEEL_ERR_NOMEM;
        m->st.tasks++;
        return KEEL_OK;
}

/*
 * An ActivityCancel for a's current attempt, to the task topic its task went
 * to. `cause_seq` is the seq of the event that caused it (the cancel request
 * or the closing event); one event may stop several activities, so the
 * record's ID also names the activity.
 */
static int emit_cancel(keel__machine_t *m, run_t *r, const act_t *a,
                       int64_t cause_seq, const char *reason, int64_t now,
                       keel__out_t *out)
{
        const json_t *s = sched_rec(r, a);
        char keel_id[1300];
        json_t *t;

        if (!s)
                return KEEL_ERR_NOMEM;
        snprintf(keel_id, sizeof(keel_id), "%s/%s/%lld/%s", r->workflow_id,
                 r->run_id, (long long)cause_seq, a->id);
        t = json_pack("{ss ss ss ss si ss sI sI ss ss}", "record_type",
                      "keel.tasks.ActivityCancel", "workflow_id",
                      r->workflow_id, "run_id", r->run_id, "activity_id", a->id,
                      "attempt", a->attempt, "reason", reason, "epoch",
                      (json_int_t)0, "ts", (json_int_t)now, "task_queue",
                      rstr(s, "task_queue"), "keel_id", keel_id);
        if (!t || json_array_append_new(out->tasks, t))
                return KEEL_ERR_NOMEM;
        m->st.cancels++;
        return KEEL_OK;
}

/* The final failure of a cancelled activity that waits for a retry: its
 * next attempt will not run. */
static int emit_cancelled_failure(keel__machine_t *m, run_t *r, const act_t *a,
                                  int64_t now, keel__out_t *out)
{
        return emit(m, r, H "ActivityFailed",
                    json_pack("{ss si s{ss ss ss sb} sn}", "activity_id", a->id,
                              "attempt", a->attempt, "failure", "type",
                              "Cancelled", "message",
                              "the workflow was cancelled before the "
                              "activity's next attempt",
                              "details", "null", "non_retryable", 1,
                              "next_attempt_at"),
                    now, out);
}

/* After r's first WorkflowCancelRequested (seq cause_seq): stop what runs,
 * end what waits for a retry. */
static int cancel_activities(keel__machine_t *m, run_t *r, int64_t cause_seq,
                             const char *reason, int64_t now, keel__out_t *out)
{
        size_t i = 0;
        int rc;

        while (i < r->n_acts) {
                act_t *a = &r->acts[i];
                if (!a->cancelled) {
                        i++;
                } else if (a->attempt_at) {
                        if ((rc = emit_cancel(m, r, a, cause_seq, reason, now,
                                              out)))
                                return rc;
                        i++;
                } else if ((rc = emit_cancelled_failure(m, r, a, now, out))) {
                        return rc; /* else a was removed: acts[i] is new */
                }
        }
        return KEEL_OK;
}

/* ev (not applied yet) closes r: stop the attempts still running that
 * were not told already, before apply() forgets them. */
static int cancel_on_close(keel__machine_t *m, run_t *r, const json_t *ev,
                           int64_t now, keel__out_t *out)
{
        static const char *const closing[][2] = {
            {"WorkflowCompleted", "the workflow completed"},
            {"WorkflowFailed", "the workflow failed"},
            {"WorkflowCancelled", "the workflow was cancelled"},
            {"WorkflowTerminated", "the workflow was terminated"},
            {"WorkflowContinuedAsNew", "the workflow continued as new"},
        };
        const char *type = keel__ev_type(ev);
        const char *reason = NULL;
        int rc;

        if (!is_open(r))
                return KEEL_OK;
        for (size_t k = 0; k < sizeof(closing) / sizeof(closing[0]); k++)
                if (is(type, closing[k][0]))
                        reason = closing[k][1];
        if (!reason)
                return KEEL_OK;
        for (size_t i = 0; i < r->n_acts; i++) {
                const act_t *a = &r->acts[i];
                if (!a->attempt_at || a->cancelled)
                        continue;
                if ((rc = emit_cancel(m, r, a, rint_(keel__ev_rec(ev), "seq"),
                                      reason, now, out)))
                        return rc;
        }
        /* Its children, by their parent close policies; its parent, if it
         * is a child (a run continued as new goes on for its parent). */
        if ((rc = close_kids(r, now, out)))
                return rc;
        return is(type, "WorkflowContinuedAsNew")
                   ? KEEL_OK
                   : notify_parent(r, ev, now, out);
}

/* The record a new RecordEmitted event ev (applied, so its seq is the
 * run's last) sends to its topic. Only events the workflow code issues
 * now come here, never restored ones: a replay emits nothing again. */
static int emit_record(keel__machine_t *m, run_t *r, const json_t *ev,
                       keel__out_t *out)
{
        const json_t *s = keel__ev_rec(ev);
        int64_t seq = rint_(s, "seq");
        char keel_id[1200];
        json_t *e;

        snprintf(keel_id, sizeof(keel_id), "%s/%s/%lld", r->workflow_id,
                 r->run_id, (long long)seq);
        e = json_pack("{ss ss sI ss sO? ss sO? sO? ss}", "workflow_id",
                      r->workflow_id, "run_id", r->run_id, "seq",
                      (json_int_t)seq, "topic", rstr(s, "topic"), "key",
                      json_object_get(s, "key"), "value", rstr(s, "value"),
                      "partition", json_object_get(s, "partition"), "headers",
                      json_object_get(s, "headers"), "keel_id", keel_id);
        if (!e || json_array_append_new(out->emits, e))
                return KEEL_ERR_NOMEM;
        m->st.emitted++;
        return KEEL_OK;
}

/* ---- children: commands to other workflows ------------------------------ */

/* Queue command keel.inbox.<type>, rec (stolen), for another workflow:
 * the orchestrator writes it to that workflow's partition of keel.inbox
 * in this batch's transaction. */
static int send_inbox(keel__out_t *out, const char *type, json_t *rec,
                      int64_t now)
{
        char full[64];
        json_t *c;
        if (!rec)
                return KEEL_ERR_NOMEM;
        json_object_set_new(rec, "ts", json_integer(now));
        snprintf(full, sizeof(full), "%s%s", I, type);
        c = json_pack("{ss so}", "type", full, "record", rec);
        if (!c || json_array_append_new(out->inbox, c))
                return KEEL_ERR_NOMEM;
        return KEEL_OK;
}

/* The start command of kid k of r, and the run it makes: both derive from
 * r and the kid's ChildWorkflowInitiated, so they are the same however
 * often the step is taken again. */
static void kid_start_id(const run_t *r, const struct kid_s *k, char *cid,
                         size_t size, char run_id[37])
{
        snprintf(cid, size, "child/%s/%s/%lld", r->workflow_id, r->run_id,
                 (long long)k->seq);
        keel__run_id_make(k->id, cid, run_id);
}

/* The new ChildWorkflowInitiated ev of r (applied): start the child. */
static int start_child(keel__machine_t *m, run_t *r, const json_t *ev,
                       int64_t now, keel__out_t *out)
{
        const json_t *rec = keel__ev_rec(ev);
        struct kid_s *k = find_kid(r, rstr(rec, "child_workflow_id"));
        char cid[1200], run_id[37];
        (void)m;
        if (!k)
                return KEEL_OK;
        kid_start_id(r, k, cid, sizeof(cid), run_id);
        return send_inbox(
            out, "StartWorkflow",
            json_pack("{ss ss ss ss ss ss sn sn sn ss ss ss sn}", "workflow_id",
                      k->id, "command_id", cid, "workflow_type",
                      rstr(rec, "workflow_type"), "input", rstr(rec, "input"),
                      "id_reuse_policy", "ALLOW_DUPLICATE",
                      "id_conflict_policy", "FAIL", "execution_timeout_ms",
                      "run_timeout_ms", "signal_name", "signal_payload", "null",
                      "parent_workflow_id", r->workflow_id, "parent_run_id",
                      r->run_id, "search_attributes"),
            now);
}

/* Ask r's open children to cancel (why: the parent's own cancel request,
 * or its close under REQUEST_CANCEL), or terminate them (terminate), each
 * under the policy want (-1: every policy but ABANDON). */
static int signal_kids(run_t *r, int want, int terminate, const char *tag,
                       const char *why, int64_t now, keel__out_t *out)
{
        for (size_t i = 0; i < r->n_kids; i++) {
                struct kid_s *k = &r->kids[i];
                char cid[1300], start[1200], run_id[37];
                int rc;
                if (k->closed || k->policy == KEEL_PARENT_CLOSE_ABANDON ||
                    (want >= 0 && k->policy != want))
                        continue;
                kid_start_id(r, k, start, sizeof(start), run_id);
                snprintf(cid, sizeof(cid), "%s/%s/%s/%s", tag, r->workflow_id,
                         r->run_id, k->id);
                rc =
                    terminate
                        ? send_inbox(out, "TerminateWorkflow",
                                     json_pack("{ss ss ss ss ss}",
                                               "workflow_id", k->id,
                                               "command_id", cid, "run_id",
                                               run_id, "reason", why, "details",
                                               "null"),
                                     now)
                        : send_inbox(out, "CancelWorkflow",
                                     json_pack("{ss ss ss ss}", "workflow_id",
                                               k->id, "command_id", cid,
                                               "run_id", run_id, "reason", why),
                                     now);
                if (rc)
                        return rc;
        }
        return KEEL_OK;
}

/* r closes with ev (not applied yet): apply its parent close policies. */
static int close_kids(run_t *r, int64_t now, keel__out_t *out)
{
        char why[1200];
        int rc;
        snprintf(why, sizeof(why),
                 "parent workflow %.1000s closed (parent close policy "
                 "TERMINATE)",
                 r->workflow_id);
        if ((rc = signal_kids(r, KEEL_PARENT_CLOSE_TERMINATE, 1, "parentclosed",
                              why, now, out)))
                return rc;
        snprintf(why, sizeof(why),
                 "parent workflow %.1000s closed (parent close policy "
                 "REQUEST_CANCEL)",
                 r->workflow_id);
        return signal_kids(r, KEEL_PARENT_CLOSE_REQUEST_CANCEL, 0,
                           "parentclosed", why, now, out);
}

/* Tell parent `parent` (run parent_run) how its child child/child_run
 * ended; cid is the command's ID. failure stolen (may be NULL). */
static int tell_parent(const char *parent, const char *parent_run,
                       const char *cid, const char *child,
                       const char *child_run, const char *status,
                       const char *result, json_t *failure, int64_t now,
                       keel__out_t *out)
{
        return send_inbox(out, "ChildWorkflowClosed",
                          json_pack("{ss ss ss ss ss ss ss so}", "workflow_id",
                                    parent, "command_id", cid, "run_id",
                                    parent_run, "child_workflow_id", child,
                                    "child_run_id", child_run, "status", status,
                                    "result", result ? result : "null",
                                    "failure", failure ? failure : json_null()),
                          now);
}

static json_t *failure_of(const char *type, const char *message,
                          const char *details)
{
        return json_pack("{ss ss ss sb}", "type", type, "message", message,
                         "details", details && *details ? details : "null",
                         "non_retryable", 1);
}

/* ev (not applied yet) closes r for good (not continued as new): if r is a
 * child, tell its parent, with the result or why. */
static int notify_parent(run_t *r, const json_t *ev, int64_t now,
                         keel__out_t *out)
{
        const json_t *st =
            warm(r) ? NULL : keel__ev_rec(json_array_get(r->events, 0));
        const json_t *rec = keel__ev_rec(ev);
        const char *type = keel__ev_type(ev);
        const char *parent =
            json_string_value(json_object_get(st, "parent_workflow_id"));
        const char *status = "FAILED", *result = NULL;
        json_t *failure = NULL;
        char cid[1200];

        if (!st)
                return KEEL_ERR_NOMEM;
        if (!parent)
                return KEEL_OK;
        if (is(type, "WorkflowCompleted")) {
                status = "COMPLETED";
                result = rstr(rec, "result");
        } else if (is(type, "WorkflowFailed")) {
                const json_t *f = json_object_get(rec, "failure");
                failure = failure_of(rstr(f, "type"), rstr(f, "message"),
                                     rstr(f, "details"));
        } else if (is(type, "WorkflowCancelled")) {
                status = "CANCELLED";
                failure =
                    failure_of("Cancelled", "the child workflow was cancelled",
                               rstr(rec, "details"));
        } else if (is(type, "WorkflowTerminated")) {
                json_t *d = json_loads(rstr(rec, "details"), 0, NULL);
                status =
                    json_object_get(d, "timeout") ? "TIMED_OUT" : "TERMINATED";
                json_decref(d);
                failure = failure_of(strcmp(status, "TIMED_OUT") ? "Terminated"
                                                                 : "TimedOut",
                                     rstr(rec, "reason"), rstr(rec, "details"));
        }
        snprintf(cid, sizeof(cid), "childclosed/%s/%s", r->workflow_id,
                 r->run_id);
        return tell_parent(parent, rstr(st, "parent_run_id"), cid,
                           r->workflow_id, r->run_id, status, result, failure,
                           now, out);
}

/* A ChildWorkflowClosed command: the child's outcome into its parent's
 * history, once; then the parent's code runs on. */
static int cmd_child_closed(keel__machine_t *m, const json_t *rec, int64_t now,
                            keel__out_t *out)
{
        static const char *const statuses[] = {
            "COMPLETED", "FAILED", "CANCELLED", "TERMINATED", "TIMED_OUT"};
        run_t *r = find_run(m, rstr(rec, "workflow_id"));
        const json_t *f = json_object_get(rec, "failure");
        struct kid_s *k;
        int known = 0, rc;

        for (size_t i = 0; i < sizeof(statuses) / sizeof(statuses[0]); i++)
                known |= !strcmp(rstr(rec, "status"), statuses[i]);
        if (!known)
                return KEEL_ERR_INVALID_ARG;
        /* A parent that closed since (its close policy went out), another
         * run, a child it never started, or news it has had already. */
        if (!r || !is_open(r) || strcmp(r->run_id, rstr(rec, "run_id")) ||
            !(k = find_kid(r, rstr(rec, "child_workflow_id"))) || k->closed) {
                m->st.stale++;
                return KEEL_OK;
        }
        rc = emit(m, r, H "ChildWorkflowClosed",
                  json_pack("{ss ss ss ss sO?}", "child_workflow_id", k->id,
                            "child_run_id", rstr(rec, "child_run_id"), "status",
                            rstr(rec, "status"), "result",
                            json_is_string(json_object_get(rec, "result"))
                                ? rstr(rec, "result")
                                : "null",
                            "failure", json_is_object(f) ? f : NULL),
                  now, out);
        return rc ? rc : activate(m, r, now, out);
}

static int reject(keel__machine_t *m, keel__out_t *out, const char *command,
                  const json_t *rec, int err, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));

static int reject(keel__machine_t *m, keel__out_t *out, const char *command,
                  const json_t *rec, int err, const char *fmt, ...)
{
        char reason[512];
        va_list ap;
        json_t *j;
        va_start(ap, fmt);
        vsnprintf(reason, sizeof(reason), fmt, ap);
        va_end(ap);
        m->st.rejected++;
        j = json_pack("{ss ss ss ss ss}", "workflow_id",
                      rstr(rec, "workflow_id"), "command_id",
                      rstr(rec, "command_id"), "command", command, "error",
                      keel_err_name(err), "reason", reason);
        if (!j || json_array_append_new(out->rejects, j))
                return KEEL_ERR_NOMEM;
        /* A child's start refused: its parent hears of it. */
        if (!strcmp(command, "StartWorkflow") &&
            json_is_string(json_object_get(rec, "parent_workflow_id"))) {
                char cid[1200];
                snprintf(cid, sizeof(cid), "childstartfailed/%s",
                         rstr(rec, "command_id"));
                return tell_parent(
                    rstr(rec, "parent_workflow_id"), rstr(rec, "parent_run_id"),
                    cid, rstr(rec, "workflow_id"), "", "FAILED", NULL,
                    failure_of("ChildWorkflowStartFailed", reason, NULL),
                    json_integer_value(json_object_get(rec, "ts")), out);
        }
        return KEEL_OK;
}

/* ---- activation --------------------------------------------------------- */

static int activate(keel__machine_t *m, run_t *r, int64_t now,
                    keel__out_t *out);

/* A copy of field k of r's first event (WorkflowStarted), or NULL. */
static json_t *started_field(run_t *r, const char *k)
{
        const json_t *v =
            json_object_get(keel__ev_rec(json_array_get(r->events, 0)), k);
        return v ? json_deep_copy(v) : NULL;
}

/*
 * r has just closed with WorkflowContinuedAsNew, its last event: start the
 * run that continues it (r is freed), with the SignalReceived events its
 * code did not take (carried: their seqs in r) again, in order and with
 * their command IDs, so that none is lost and none is taken twice. The
 * run's timeouts, parent and search attributes go along; the execution
 * timeout keeps its deadline.
 */
static int continue_run(keel__machine_t *m, run_t *r, const json_t *carried,
                        int64_t now, keel__out_t *out)
{
        const json_t *can =
            warm(r) ? NULL
                    : keel__ev_rec(json_array_get(
                          r->events, json_array_size(r->events) - 1));
        json_t *sigs = json_array(), *attrs = NULL, *start = NULL, *v;
        char cid[80], *wid = NULL, *rid = NULL, *type = NULL, *sa = NULL;
        const json_t *ev;
        run_t *nr;
        size_t i;
        int rc = KEEL_ERR_NOMEM;

        if (!carried || !sigs || !can)
                goto out;
        json_array_foreach(carried, i, v)
        {
                ev = json_array_get(r->events,
                                    (size_t)json_integer_value(v) - 1);
                if (!ev || json_array_append_new(
                               sigs, json_deep_copy(keel__ev_rec(ev))))
                        goto out;
        }
        json_array_foreach(r->events, i, ev)
        {
                if (keel__sa_apply(&attrs, ev))
                        goto out;
        }
        if (attrs && json_object_size(attrs) &&
            !(sa = json_dumps(attrs, JSON_COMPACT | JSON_SORT_KEYS)))
                goto out;
        keel__continued_command_id(r->run_id, cid, sizeof(cid));
        start = json_pack(
            "{ss ss ss so? so? so? so? ss ss?}", "workflow_type",
            rstr(can, "workflow_type"), "input", rstr(can, "input"),
            "command_id", cid, "execution_timeout_ms",
            r->exec_deadline
                ? json_integer(r->exec_deadline > now ? r->exec_deadline - now
                                                      : 1)
                : NULL,
            "run_timeout_ms", started_field(r, "run_timeout_ms"),
            "parent_workflow_id", started_field(r, "parent_workflow_id"),
            "parent_run_id", started_field(r, "parent_run_id"),
            "continued_from_run_id", r->run_id, "search_attributes", sa);
        wid = strdup(r->workflow_id);
        rid = strdup(rstr(can, "new_run_id"));
        type = strdup(rstr(can, "workflow_type"));
        if (!start || !wid || !rid || !type)
                goto out;
        if (!(nr = new_run(m, wid, rid, type, cid)))
                goto out;
        r = NULL; /* freed: nr replaced it */
        m->st.continued++;
        rc = emit(m, nr, H "WorkflowStarted", start, now, out);
        start = NULL;
        json_array_foreach(sigs, i, v)
        {
                if (rc)
                        break;
                rc = emit(m, nr, H "SignalReceived",
                          json_pack("{ss ss ss}", "signal_name",
                                    rstr(v, "signal_name"), "payload",
                                    rstr(v, "payload"), "command_id",
                                    rstr(v, "command_id")),
                          now, out);
        }
        if (rc)
                goto out;
        /* A workflow that continues as new at once, again and again, is
         * run on the next tick after a few rounds, not in a recursion. */
        if (m->can_depth < 8) {
                m->can_depth++;
                rc = activate(m, nr, now, out);
                m->can_depth--;
        } else {
                rc = heap_push(m, now, nr, HK_ACTIVATE, "", 0);
        }
out:
        json_decref(start);
        json_decref(sigs);
        json_decref(attrs);
        free(sa);
        free(wid);
        free(rid);
        free(type);
        return rc;
}

static int activate(keel__machine_t *m, run_t *r, int64_t now, keel__out_t *out)
{
        keel__history_t h;
        keel__activation_t act;
        size_t i;
        json_t *ev;
        int rc;

        if (!is_open(r))
                return KEEL_OK;
        if ((rc = warm(r)))
                return rc;
        h = (keel__history_t){r->workflow_id, r->run_id, r->events,
                              r->new_from};
        m->st.activations++;
        rc = keel__wf_activate(m->reg, &h, now, &act);
        if (rc)
                return rc;
        if (act.status == KEEL__WF_ERROR)
                keel_log(KEEL_LOG_WARN, "machine",
                         "workflow_id=%s run_id=%s msg=\"cannot run: %s\"",
                         r->workflow_id, r->run_id, act.message);
        else if (act.status == KEEL__WF_BLOCKED &&
                 json_array_size(act.new_events))
                keel_log(KEEL_LOG_ERROR, "machine",
                         "workflow_id=%s run_id=%s msg=\"blocked: %s\"",
                         r->workflow_id, r->run_id, act.message);
        if (r->status == ST_BLOCKED && act.status != KEEL__WF_BLOCKED &&
            act.status != KEEL__WF_ERROR)
                r->status = ST_RUNNING; /* fixed code took over */
        json_array_foreach(act.new_events, i, ev)
        {
                const char *type = keel__ev_type(ev);
                json_incref(ev);
                if (json_array_append(out->history, ev) ||
                    cancel_on_close(m, r, ev, now, out) ||
                    note_status(r, ev, out) || (rc = apply(m, r, ev))) {
                        json_decref(ev);
                        json_decref(act.new_events);
                        json_decref(act.carried_signals);
                        return KEEL_ERR_NOMEM;
                }
                m->st.events++;
                if (is(type, "ActivityScheduled")) {
                        act_t *a =
                            find_act(r, rstr(keel__ev_rec(ev), "activity_id"));
                        if (a && (rc = emit_task(m, r, a, now, out))) {
                                json_decref(act.new_events);
                                json_decref(act.carried_signals);
                                return rc;
                        }
                } else if ((is(type, "RecordEmitted") &&
                            (rc = emit_record(m, r, ev, out))) ||
                           (is(type, "ChildWorkflowInitiated") &&
                            (rc = start_child(m, r, ev, now, out)))) {
                        json_decref(act.new_events);
                        json_decref(act.carried_signals);
                        return rc;
                }
                /* At a history limit the run is terminated: what its code
                 * issued beyond that is dropped. */
                if ((rc = enforce_limits(m, r, now, out))) {
                        json_decref(act.new_events);
                        json_decref(act.carried_signals);
                        return rc;
                }
                if (r->limit_hit) {
                        act.status = KEEL__WF_SUSPENDED;
                        break;
                }
        }
        json_decref(act.new_events);
        r->new_from = r->n_events + 1;
        rc = KEEL_OK;
        if (act.status == KEEL__WF_CONTINUED)
                rc = continue_run(m, r, act.carried_signals, now, out);
        else
                cool(m, r);
        json_decref(act.carried_signals);
        return rc;
}

/* ---- retries ------------------------------------------------------------ */

/* When the attempt after `a`'s current one is due, or 0 if no retry is
 * allowed (attempts used up, past schedule-to-close). */
static int64_t next_attempt_at(run_t *r, const act_t *a, int64_t now)
{
        const json_t *rp = json_object_get(sched_rec(r, a), "retry_policy");
        int64_t initial = opt_int(rp, "initial_interval_ms");
        double coeff =
            json_number_value(json_object_get(rp, "backoff_coefficient"));
        int64_t maxi = opt_int(rp, "maximum_interval_ms");
        int64_t maxa = opt_int(rp, "maximum_attempts");
        double delay;
        int64_t at;

        if (initial <= 0)
                initial = 1000;
        if (coeff <= 0)
                coeff = 2.0;
        if (maxi <= 0)
                maxi = 100 * initial;
        if (a->cancelled || (maxa > 0 && a->attempt >= maxa))
                return 0;
        delay = (double)initial * pow(coeff, a->attempt - 1);
        if (delay > (double)maxi)
                delay = (double)maxi;
        at = now + (int64_t)delay;
        if (a->sctc_ms > 0 && at >= a->scheduled_at + a->sctc_ms)
                return 0;
        return at;
}

static int retryable_type(run_t *r, const act_t *a, const char *type)
{
        const json_t *rp = json_object_get(sched_rec(r, a), "retry_policy");
        size_t i;
        const json_t *t;
        json_array_foreach(json_object_get(rp, "non_retryable_error_types"), i,
                           t)
        {
                if (!strcmp(json_string_value(t) ? json_string_value(t) : "",
                            type))
                        return 0;
        }
        return 1;
}

/* ---- commands ----------------------------------------------------------- */

static const char *short_cmd(const char *type)
{
        return strncmp(type, I, strlen(I)) ? type : type + strlen(I);
}

/* A JSON text field must hold JSON. */
static int json_text_ok(const json_t *rec, const char *k)
{
        const char *s = json_string_value(json_object_get(rec, k));
        json_t *j;
        if (!s)
                return 1; /* absent or null: fine */
        j = json_loads(s, JSON_DECODE_ANY, NULL);
        json_decref(j);
        return j != NULL;
}

static int has_command_id(run_t *r, const char *command_id)
{
        size_t i;
        const json_t *ev;
        if (!*command_id)
                return 0;
        /* The run's code runs next (or it was a duplicate): decoded. On
         * KEEL_ERR_NOMEM, r->events stays NULL, found nothing, and the
         * activation after fails. */
        warm(r);
        json_array_foreach(r->events, i, ev)
        {
                if (!strcmp(keel__ev_str(ev, "command_id"), command_id))
                        return 1;
        }
        return 0;
}

/* Signal-with-start: the start's signal, to run r. */
static int start_signal(keel__machine_t *m, run_t *r, const json_t *rec,
                        int64_t now, keel__out_t *out)
{
        return emit(
            m, r, H "SignalReceived",
            json_pack("{ss ss ss}", "signal_name", rstr(rec, "signal_name"),
                      "payload",
                      json_is_string(json_object_get(rec, "signal_payload"))
                          ? rstr(rec, "signal_payload")
                          : "null",
                      "command_id", rstr(rec, "command_id")),
            now, out);
}

static int cmd_start(keel__machine_t *m, const json_t *rec, int64_t now,
                     keel__out_t *out)
{
        const char *wid = rstr(rec, "workflow_id");
        const char *cid = rstr(rec, "command_id");
        const char *type = rstr(rec, "workflow_type");
        const char *reuse = rstr(rec, "id_reuse_policy");
        int with_signal = json_is_string(json_object_get(rec, "signal_name"));
        run_t *r = find_run(m, wid);
        char run_id[37], why[256];
        int rc;

        if (!*type)
                return reject(m, out, "StartWorkflow", rec,
                              KEEL_ERR_INVALID_ARG, "no workflow_type");
        if (wid[0] == '!' || strlen(wid) > KEEL_WORKFLOW_ID_MAX)
                return reject(m, out, "StartWorkflow", rec,
                              KEEL_ERR_INVALID_ARG,
                              "a workflow ID must be 1 to 1000 bytes and not "
                              "start with '!' (reserved)");
        /* What keel's client refuses, refused here too for records other
         * producers write: control characters would break log lines,
         * tables and keys. */
        if (keel__check_name(wid, "the workflow ID", KEEL_WORKFLOW_ID_MAX, why,
                             sizeof(why)) ||
            keel__check_name(type, "the workflow type", KEEL__NAME_MAX_BYTES,
                             why, sizeof(why)) ||
            (with_signal &&
             keel__check_name(rstr(rec, "signal_name"), "the signal name",
                              KEEL__NAME_MAX_BYTES, why, sizeof(why))))
                return reject(m, out, "StartWorkflow", rec,
                              KEEL_ERR_INVALID_ARG, "%s", why);
        if (!json_text_ok(rec, "input") || !json_text_ok(rec, "signal_payload"))
                return reject(m, out, "StartWorkflow", rec,
                              KEEL_ERR_INVALID_ARG, "input is not JSON");
        if (json_is_string(json_object_get(rec, "search_attributes")) &&
            keel__sa_check_text(rstr(rec, "search_attributes"), why,
                                sizeof(why)))
                return reject(m, out, "StartWorkflow", rec,
                              KEEL_ERR_INVALID_ARG, "%s", why);
        if (r && *cid && !strcmp(r->start_command_id, cid))
                return KEEL_OK; /* the same start, delivered again */
        if (r && is_open(r)) {
                if (strcmp(rstr(rec, "id_conflict_policy"), "USE_EXISTING"))
                        return reject(m, out, "StartWorkflow", rec,
                                      KEEL_ERR_ALREADY_STARTED,
                                      "workflow %s is already running (run "
                                      "%s)",
                                      wid, r->run_id);
                if (!with_signal || has_command_id(r, cid))
                        return KEEL_OK;
                rc = start_signal(m, r, rec, now, out);
                return rc ? rc : activate(m, r, now, out);
        }
        if (r && !strcmp(reuse, "REJECT_DUPLICATE"))
                return reject(m, out, "StartWorkflow", rec,
                              KEEL_ERR_ALREADY_STARTED,
                              "workflow %s already ran (run %s, %s) and the "
                              "reuse policy is REJECT_DUPLICATE",
                              wid, r->run_id, status_names[r->status]);
        if (r && !strcmp(reuse, "ALLOW_DUPLICATE_FAILED_ONLY") &&
            r->status == ST_COMPLETED)
                return reject(m, out, "StartWorkflow", rec,
                              KEEL_ERR_ALREADY_STARTED,
                              "workflow %s completed (run %s) and the reuse "
                              "policy is ALLOW_DUPLICATE_FAILED_ONLY",
                              wid, r->run_id);
        /* Deterministic: a start processed again after a crash makes the
         * same run. */
        keel__run_id_make(wid, cid, run_id);
        r = new_run(m, wid, run_id, type, cid);
        if (!r)
                return KEEL_ERR_NOMEM;
        rc = emit(
            m, r, H "WorkflowStarted",
            json_pack(
                "{ss ss ss sO? sO? sO? sO? sn sO?}", "workflow_type", type,
                "input",
                json_is_string(json_object_get(rec, "input"))
                    ? rstr(rec, "input")
                    : "null",
                "command_id", cid, "execution_timeout_ms",
                json_object_get(rec, "execution_timeout_ms"), "run_timeout_ms",
                json_object_get(rec, "run_timeout_ms"), "parent_workflow_id",
                json_object_get(rec, "parent_workflow_id"), "parent_run_id",
                json_object_get(rec, "parent_run_id"), "continued_from_run_id",
                "search_attributes", json_object_get(rec, "search_attributes")),
            now, out);
        if (!rc && with_signal)
                rc = start_signal(m, r, rec, now, out);
        return rc ? rc : activate(m, r, now, out);
}

/* The open run a command addresses, or NULL after rejecting it. */
static run_t *target(keel__machine_t *m, const char *command, const json_t *rec,
                     keel__out_t *out, int *rc)
{
        run_t *r = find_run(m, rstr(rec, "workflow_id"));
        const json_t *rid = json_object_get(rec, "run_id");
        *rc = KEEL_OK;
        if (!r || (json_is_string(rid) &&
                   strcmp(json_string_value(rid), r->run_id))) {
                *rc = reject(m, out, command, rec, KEEL_ERR_NOT_FOUND,
                             "no run of workflow %s%s%s",
                             rstr(rec, "workflow_id"),
                             json_is_string(rid) ? " with run ID " : "",
                             json_is_string(rid) ? json_string_value(rid) : "");
                return NULL;
        }
        if (!is_open(r)) {
                *rc = reject(m, out, command, rec, KEEL_ERR_NOT_FOUND,
                             "workflow %s is %s", r->workflow_id,
                             status_names[r->status]);
                return NULL;
        }
        return r;
}

static int cmd_signal_cancel(keel__machine_t *m, const char *type,
                             const json_t *rec, int64_t now, keel__out_t *out)
{
        const char *cmd = short_cmd(type);
        int rc;
        run_t *r = target(m, cmd, rec, out, &rc);
        if (!r)
                return rc;
        if (has_command_id(r, rstr(rec, "command_id")))
                return KEEL_OK; /* delivered again */
        if (!strcmp(cmd, "SignalWorkflow")) {
                char why[256];
                if (!json_text_ok(rec, "payload"))
                        return reject(m, out, cmd, rec, KEEL_ERR_INVALID_ARG,
                                      "payload is not JSON");
                if (keel__check_name(rstr(rec, "signal_name"),
                                     "the signal name", KEEL__NAME_MAX_BYTES,
                                     why, sizeof(why)))
                        return reject(m, out, cmd, rec, KEEL_ERR_INVALID_ARG,
                                      "%s", why);
                rc = emit(m, r, H "SignalReceived",
                          json_pack("{ss ss ss}", "signal_name",
                                    rstr(rec, "signal_name"), "payload",
                                    rstr(rec, "payload"), "command_id",
                                    rstr(rec, "command_id")),
                          now, out);
        } else if (!strcmp(cmd, "CancelWorkflow")) {
                int first = !r->cancel_requested;
                rc = emit(m, r, H "WorkflowCancelRequested",
                          json_pack("{ss ss}", "reason", rstr(rec, "reason"),
                                    "command_id", rstr(rec, "command_id")),
                          now, out);
                if (!rc && first)
                        rc = cancel_activities(m, r, r->n_events,
                                               rstr(rec, "reason"), now, out);
                if (!rc && first) {
                        char why[1200];
                        snprintf(why, sizeof(why),
                                 "parent workflow %.900s was asked to "
                                 "cancel: %.200s",
                                 r->workflow_id, rstr(rec, "reason"));
                        rc = signal_kids(r, -1, 0, "parentcancel", why, now,
                                         out);
                }
        } else {
                return emit(
                    m, r, H "WorkflowTerminated",
                    json_pack("{ss ss}", "reason", rstr(rec, "reason"),
                              "details",
                              json_is_string(json_object_get(rec, "details"))
                                  ? rstr(rec, "details")
                                  : "null"),
                    now, out);
        }
        return rc ? rc : activate(m, r, now, out);
}

/* A worker's result, failure or heartbeat for the current attempt. */
static int cmd_activity(keel__machine_t *m, const char *type, const json_t *rec,
                        int64_t now, keel__out_t *out)
{
        const char *cmd = short_cmd(type);
        run_t *r = find_run(m, rstr(rec, "workflow_id"));
        act_t *a;
        json_t *ev;
        int rc;

        if (!r || !is_open(r) || strcmp(r->run_id, rstr(rec, "run_id")) ||
            !(a = find_act(r, rstr(rec, "activity_id"))) ||
            a->attempt != (int)rint_(rec, "attempt") || !a->attempt_at) {
                /* Late, duplicate or for an attempt no longer current: at
                 * least once delivery, exactly one result. */
                m->st.stale++;
                return KEEL_OK;
        }
        if ((rc = warm(r)))
                return rc;
        if (!strcmp(cmd, "ActivityHeartbeat")) {
                if (!json_text_ok(rec, "details"))
                        return reject(m, out, cmd, rec, KEEL_ERR_INVALID_ARG,
                                      "details are not JSON");
                return emit(m, r, H "ActivityHeartbeatRecorded",
                            json_pack("{ss si ss}", "activity_id", a->id,
                                      "attempt", a->attempt, "details",
                                      rstr(rec, "details")),
                            now, out);
        }
        if (!strcmp(cmd, "ActivityCompleted")) {
                if (!json_text_ok(rec, "result"))
                        return reject(m, out, cmd, rec, KEEL_ERR_INVALID_ARG,
                                      "result is not JSON");
                rc = emit(m, r, H "ActivityCompleted",
                          json_pack("{ss si ss}", "activity_id", a->id,
                                    "attempt", a->attempt, "result",
                                    rstr(rec, "result")),
                          now, out);
                return rc ? rc : activate(m, r, now, out);
        }
        {
                const json_t *f = json_object_get(rec, "failure");
                int64_t next = 0;
                json_t *fj;
                if (!json_text_ok(f, "details"))
                        return reject(m, out, cmd, rec, KEEL_ERR_INVALID_ARG,
                                      "failure details are not JSON");
                if (!json_is_true(json_object_get(f, "non_retryable")) &&
                    retryable_type(r, a, rstr(f, "type")))
                        next = next_attempt_at(r, a, now);
                fj = json_pack(
                    "{ss ss ss sb}", "type", rstr(f, "type"), "message",
                    rstr(f, "message"), "details",
                    json_is_string(json_object_get(f, "details"))
                        ? rstr(f, "details")
                        : "null",
                    "non_retryable",
                    json_is_true(json_object_get(f, "non_retryable")));
                ev = json_pack("{ss si so so}", "activity_id", a->id, "attempt",
                               a->attempt, "failure", fj, "next_attempt_at",
                               next ? json_integer(next) : json_null());
                if ((rc = emit(m, r, H "ActivityFailed", ev, now, out)))
                        return rc;
                return next ? KEEL_OK : activate(m, r, now, out);
        }
}

int keel__machine_command(keel__machine_t *m, const char *type,
                          const json_t *rec, int64_t now, keel__out_t *out)
{
        const char *cmd;
        int rc;
        if (!type || strncmp(type, I, strlen(I)) || !json_is_object(rec) ||
            !*rstr(rec, "workflow_id"))
                return KEEL_ERR_INVALID_ARG;
        if ((rc = settle(m)))
                return rc;
        cmd = short_cmd(type);
        m->st.commands++;
        if (!strcmp(cmd, "StartWorkflow"))
                return cmd_start(m, rec, now, out);
        if (!strcmp(cmd, "SignalWorkflow") || !strcmp(cmd, "CancelWorkflow") ||
            !strcmp(cmd, "TerminateWorkflow"))
                return cmd_signal_cancel(m, type, rec, now, out);
        if (!strcmp(cmd, "ActivityCompleted") ||
            !strcmp(cmd, "ActivityFailed") || !strcmp(cmd, "ActivityHeartbeat"))
                return cmd_activity(m, type, rec, now, out);
        if (!strcmp(cmd, "ChildWorkflowClosed"))
                return cmd_child_closed(m, rec, now, out);
        m->st.commands--;
        return KEEL_ERR_INVALID_ARG;
}

/* ---- time --------------------------------------------------------------- */

static const char *const timeout_names[] = {[HK_STS] = "SCHEDULE_TO_START",
                                            [HK_STC] = "START_TO_CLOSE",
                                            [HK_SCTC] = "SCHEDULE_TO_CLOSE",
                                            [HK_HB] = "HEARTBEAT"};

/* Is heap entry e still what the state says is due? */
static int still_due(run_t *r, const hent_t *e, act_t **ap)
{
        act_t *a;
        timer_t_ *t;
        if (e->kind == HK_RETENTION) /* of a closed run */
                return !r->deleted && r->delete_at == e->due;
        if (!is_open(r))
                return 0;
        if (e->kind == HK_TIMER)
                return (t = find_timer(r, e->id)) && t->fire_at == e->due;
        if (e->kind == HK_RUN_TIMEOUT)
                return r->run_deadline == e->due;
        if (e->kind == HK_EXEC_TIMEOUT)
                return r->exec_deadline == e->due;
        if (e->kind == HK_ACTIVATE)
                return 1;
        if (!(a = find_act(r, e->id)))
                return 0;
        *ap = a;
        switch (e->kind) {
        case HK_RETRY:
                return a->retry_at == e->due;
        case HK_STC:
                return a->attempt_at && a->attempt == e->attempt &&
                       a->attempt_at + a->stc_ms == e->due;
        case HK_STS:
                return a->attempt_at && !a->started &&
                       a->attempt == e->attempt &&
                       a->attempt_at + a->sts_ms == e->due;
        case HK_HB:
                return a->attempt_at && a->attempt == e->attempt &&
                       a->last_hb_at + a->hb_ms == e->due;
        case HK_SCTC:
                return a->scheduled_at + a->sctc_ms == e->due;
        }
        return 0;
}

/*
 * The run (or the workflow execution) outlived its timeout: terminate it,
 * as Temporal times a workflow out, without running its code again. A
 * termination is not a command of the code, so a replay of the history
 * stays deterministic.
 */
static int time_out(keel__machine_t *m, run_t *r, int run_timeout, int64_t now,
                    keel__out_t *out)
{
        const json_t *st =
            warm(r) ? NULL : keel__ev_rec(json_array_get(r->events, 0));
        int64_t ms = opt_int(st, run_timeout ? "run_timeout_ms"
                                             : "execution_timeout_ms");
        char reason[160], details[80];
        snprintf(reason, sizeof(reason),
                 "%s: the %s did not close within its timeout of %lld ms",
                 run_timeout ? "WorkflowRunTimedOut"
                             : "WorkflowExecutionTimedOut",
                 run_timeout ? "run" : "workflow execution", (long long)ms);
        keel_log(KEEL_LOG_INFO, "machine",
                 "workflow_id=%s run_id=%s msg=\"timed out\" timeout=%s "
                 "timeout_ms=%lld",
                 r->workflow_id, r->run_id, run_timeout ? "run" : "execution",
                 (long long)ms);
        m->st.timed_out++;
        snprintf(details, sizeof(details),
                 "{\"timeout\":\"%s\",\"timeout_ms\":%lld}",
                 run_timeout ? "RUN" : "EXECUTION", (long long)ms);
        return emit(m, r, H "WorkflowTerminated",
                    json_pack("{ss ss}", "reason", reason, "details", details),
                    now, out);
}

static int fire(keel__machine_t *m, const hent_t *e, int64_t now,
                keel__out_t *out)
{
        run_t *r = e->run;
        act_t *a = NULL;
        int rc;

        if (!still_due(r, e, &a))
                return KEEL_OK;
        if (e->kind == HK_RETENTION)
                return delete_run(m, r, now, out);
        if (e->kind == HK_RUN_TIMEOUT || e->kind == HK_EXEC_TIMEOUT)
                return time_out(m, r, e->kind == HK_RUN_TIMEOUT, now, out);
        if (e->kind == HK_ACTIVATE)
                return activate(m, r, now, out);
        if (e->kind != HK_TIMER && (rc = warm(r)))
                return rc; /* an activity's: its ActivityScheduled */
        if (e->kind == HK_TIMER) {
                rc = emit(m, r, H "TimerFired",
                          json_pack("{ss}", "timer_id", e->id), now, out);
                return rc ? rc : activate(m, r, now, out);
        }
        if (e->kind == HK_RETRY && a->cancelled) {
                /* Cancelled while waiting for this retry (a history
                 * written before cancel requests ended such waits). */
                rc = emit_cancelled_failure(m, r, a, now, out);
                return rc ? rc : activate(m, r, now, out);
        }
        if (e->kind == HK_RETRY) {
                rc = emit(m, r, H "ActivityRetried",
                          json_pack("{ss si}", "activity_id", a->id, "attempt",
                                    a->attempt + 1),
                          now, out);
                if (rc || !(a = find_act(r, e->id)))
                        return rc;
                return emit_task(m, r, a, now, out);
        }
        {
                int64_t next =
                    e->kind == HK_SCTC ? 0 : next_attempt_at(r, a, now);
                rc = emit(m, r, H "ActivityTimedOut",
                          json_pack("{ss si ss so}", "activity_id", a->id,
                                    "attempt", a->attempt, "timeout_type",
                                    timeout_names[e->kind], "next_attempt_at",
                                    next ? json_integer(next) : json_null()),
                          now, out);
                return rc || next ? rc : activate(m, r, now, out);
        }
}

int keel__machine_tick(keel__machine_t *m, int64_t due_until, int64_t now,
                       keel__out_t *out)
{
        int src = settle(m);
        if (src)
                return src;
        while (m->nheap && m->heap[0].due <= due_until) {
                hent_t e;
                int rc;
                if (deletions_full(m, out))
                        break; /* the rest is due in the next batch */
                e = heap_pop(m);
                rc = fire(m, &e, now, out);
                if (rc)
                        return rc;
        }
        return KEEL_OK;
}

/* ---- restore ------------------------------------------------------------ */

int keel__machine_restore(keel__machine_t *m, const json_t *ev, char *errstr,
                          size_t errstr_size)
{
        const char *type = keel__ev_type(ev);
        const json_t *rec = keel__ev_rec(ev);
        const char *wid = rstr(rec, "workflow_id");
        const char *rid = rstr(rec, "run_id");
        int64_t seq = rint_(rec, "seq");
        run_t *r;
        json_t *copy;
        int rc;

        if ((rc = settle(m)))
                return rc;
        r = find_run(m, wid);
        if (is(type, "RunDeleted"))
                return restore_deleted(m, rec);
        if (is(type, "WorkflowStarted")) {
                if (r && !strcmp(r->run_id, rid))
                        return KEEL_OK; /* applied already */
                r = new_run(m, wid, rid, rstr(rec, "workflow_type"),
                            rstr(rec, "command_id"));
                if (!r)
                        return KEEL_ERR_NOMEM;
        } else if (!r || strcmp(r->run_id, rid)) {
                snprintf(errstr, errstr_size,
                         "event %s seq %lld of %s run %s: no such run", type,
                         (long long)seq, wid, rid);
                return KEEL_ERR_CORRUPT;
        }
        if (seq <= r->n_events)
                return KEEL_OK; /* applied already */
        if (seq != r->n_events + 1) {
                snprintf(errstr, errstr_size,
                         "event %s of %s run %s has seq %lld, expected %lld",
                         type, wid, rid, (long long)seq,
                         (long long)r->n_events + 1);
                return KEEL_ERR_CORRUPT;
        }
        copy = json_deep_copy(ev);
        if (!copy)
                return KEEL_ERR_NOMEM;
        r->new_from = seq + 1;
        if ((rc = apply(m, r, copy)))
                return rc;
        /* Warned once per run: a restored run past the share was. */
        r->limit_warned |= past_warning(m, r);
        return KEEL_OK;
}

/*
 * Restore, fast: the record is kept as it came, and only the run's status
 * and counts follow from it now. What the rest of its events derive
 * (activities, timers, deadlines, children) matters only for a run still
 * open once restore is done, and is derived then (settle()): most runs a
 * partition holds have closed.
 */
int keel__machine_restore_raw(keel__machine_t *m, const keel__history_raw_t *ev,
                              char *errstr, size_t errstr_size)
{
        run_t *r = find_run(m, ev->workflow_id);
        int rc;

        if (is(ev->type, "RunDeleted")) {
                for (r = m->buckets[bucket_of(m, ev->workflow_id)]; r;
                     r = r->next)
                        if (!strcmp(r->workflow_id, ev->workflow_id) &&
                            !strcmp(r->run_id, ev->run_id)) {
                                forget_run(m, r);
                                break;
                        }
                return KEEL_OK;
        }
        if (r && (r->events || r->no_blob) &&
            !(is(ev->type, "WorkflowStarted") &&
              strcmp(r->run_id, ev->run_id))) {
                /* A run held decoded (not restored this way): decoded. */
                json_t *jev;
                if ((rc = blob_event(ev->value, ev->len, &jev)))
                        return rc;
                json_object_set_new(jev, "size",
                                    json_integer((json_int_t)ev->len));
                rc = keel__machine_restore(m, jev, errstr, errstr_size);
                json_decref(jev);
                return rc;
        }
        if (is(ev->type, "WorkflowStarted")) {
                if (r && !strcmp(r->run_id, ev->run_id))
                        return KEEL_OK; /* applied already */
                r = new_run(m, ev->workflow_id, ev->run_id, ev->workflow_type,
                            ev->command_id);
                if (!r)
                        return KEEL_ERR_NOMEM;
                json_decref(r->events);
                r->events = NULL;
        } else if (!r || strcmp(r->run_id, ev->run_id)) {
                snprintf(errstr, errstr_size,
                         "event %s seq %lld of %s run %s: no such run",
                         ev->type, (long long)ev->seq, ev->workflow_id,
                         ev->run_id);
                return KEEL_ERR_CORRUPT;
        }
        if (ev->seq <= r->n_events)
                return KEEL_OK; /* applied already */
        if (ev->seq != r->n_events + 1) {
                snprintf(errstr, errstr_size,
                         "event %s of %s run %s has seq %lld, expected %lld",
                         ev->type, ev->workflow_id, ev->run_id,
                         (long long)ev->seq, (long long)r->n_events + 1);
                return KEEL_ERR_CORRUPT;
        }
        if (is_open(r) || m->keep_history) {
                if ((rc = blob_append(r, ev->value, ev->len)))
                        return rc;
        }
        r->n_events++;
        r->bytes += (int64_t)ev->len - (varint_len(ev->epoch) - 1);
        r->new_from = ev->seq + 1;
        if ((rc = derive_status(m, r, ev->type, ev->ts)))
                return rc;
        if (is_open(r) && !r->unsettled) {
                r->unsettled = 1;
                m->unsettled = 1;
        }
        /* Warned once per run: a restored run past the share was. */
        r->limit_warned |= past_warning(m, r);
        return KEEL_OK;
}

/* Derive what r's events restored raw left to derive. */
static int settle_run(keel__machine_t *m, run_t *r)
{
        size_t pos = 0, len;
        int64_t k = 0;
        int rc;

        r->unsettled = 0;
        if (!is_open(r) || r->events || r->no_blob) {
                r->n_derived = r->n_events;
                return KEEL_OK;
        }
        while (pos < r->blob_len) {
                const unsigned char *p = blob_next(r, &pos, &len);
                json_t *ev;
                if (++k <= r->n_derived)
                        continue;
                if ((rc = blob_event(p, len, &ev)))
                        return rc;
                rc = derive(m, r, keel__ev_type(ev), keel__ev_rec(ev), k);
                json_decref(ev);
                if (rc)
                        return rc;
        }
        r->n_derived = r->n_events;
        return KEEL_OK;
}

/* Settle every run restored raw: before anything looks at the state. */
static int settle(keel__machine_t *m)
{
        if (!m->unsettled)
                return KEEL_OK;
        for (size_t i = 0; i < m->nbuckets; i++)
                for (run_t *r = m->buckets[i]; r; r = r->next) {
                        int rc;
                        if (r->unsettled && (rc = settle_run(m, r)))
                                return rc;
                }
        m->unsettled = 0;
        return KEEL_OK;
}

/* Only the events a run starts with (its start, the signals carried over
 * by continue-as-new or sent with the start): its code has not run, or
 * issued nothing yet. Activating it again issues nothing new. */
static int never_activated(const run_t *r)
{
        size_t i, pos = 0, len;
        const json_t *ev;
        const char *t;
        if (!r->events) {
                /* Encoded: the types are in the records' headers. */
                while (pos < r->blob_len) {
                        const unsigned char *p = blob_next(r, &pos, &len);
                        if (keel_codec_peek_type(p, len, &t) ||
                            (!is(t, "WorkflowStarted") &&
                             !is(t, "SignalReceived")))
                                return 0;
                }
                return 1;
        }
        json_array_foreach(r->events, i, ev)
        {
                t = keel__ev_type(ev);
                if (!is(t, "WorkflowStarted") && !is(t, "SignalReceived"))
                        return 0;
        }
        return 1;
}

int keel__machine_resume(keel__machine_t *m, int64_t now, keel__out_t *out)
{
        int rc = settle(m);
        if (rc)
                return rc;
        for (size_t i = 0; i < m->nbuckets; i++)
                for (run_t *r = m->buckets[i]; r; r = r->next) {
                        if (r->status != ST_BLOCKED &&
                            !(is_open(r) && never_activated(r)))
                                continue;
                        if ((rc = activate(m, r, now, out)))
                                return rc;
                }
        return KEEL_OK;
}

/* ---- queries ------------------------------------------------------------ */

static void info_of(const keel__machine_t *m, run_t *r, keel__run_info_t *info)
{
        if (is_open(r) || m->keep_history)
                warm(r); /* its events are shown (NULL without memory) */
        info->workflow_id = r->workflow_id;
        info->run_id = r->run_id;
        info->type = r->type;
        info->status = status_names[r->status];
        info->events = r->events;
        info->n_events = (size_t)r->n_events;
        info->pending_activities = r->n_acts;
        info->pending_timers = r->n_timers;
}

int keel__machine_run(keel__machine_t *m, const char *workflow_id,
                      keel__run_info_t *info)
{
        run_t *r;
        settle(m);
        if (!(r = find_run(m, workflow_id)))
                return KEEL_ERR_NOT_FOUND;
        info_of(m, r, info);
        return KEEL_OK;
}

int keel__machine_activity_cancelled(keel__machine_t *m,
                                     const char *workflow_id,
                                     const char *run_id,
                                     const char *activity_id, int attempt)
{
        run_t *r;
        const act_t *a;
        settle(m);
        if (!(r = find_run(m, workflow_id)))
                return 0;
        /* A newer run replaces a run only once it has closed. */
        if (strcmp(r->run_id, run_id) || !is_open(r))
                return 1;
        a = find_act(r, activity_id);
        return a && a->cancelled && a->attempt == attempt && a->attempt_at;
}

void keel__machine_foreach(keel__machine_t *m,
                           void (*fn)(const keel__run_info_t *info,
                                      void *opaque),
                           void *opaque)
{
        keel__run_info_t info;
        settle(m);
        for (size_t i = 0; i < m->nbuckets; i++)
                for (run_t *r = m->buckets[i]; r; r = r->next) {
                        if (r->retired)
                                continue; /* not a latest run */
                        info_of(m, r, &info);
                        fn(&info, opaque);
                }
}

/* ---- retention and history limits --------------------------------------- */

/*
 * A closed run's history is deleted once its retention (of its type, else
 * the default) has passed since its closing event: a RunDeleted event with
 * the next seq, then a tombstone for each of its events' keys, the last
 * event first, and for the RunDeleted's own key last of all. Compaction
 * cleans a partition up to some offset, so a reader that starts after it
 * may find the run's first events without its last ones, but then always
 * the RunDeleted after them: it ends up without the run like every other
 * reader. A run that a newer run of its ID replaced is retired: kept,
 * without its events, until then. A deleted run leaves the table at once
 * and waits in the graveyard until reap() has dropped its heap entries, in
 * one pass for many runs.
 */

void keel__machine_limits_init(keel__machine_limits_t *l)
{
        memset(l, 0, sizeof(*l));
        l->retention_ms = -1;
        l->max_events = 50000;
        l->max_bytes = 50 * 1024 * 1024;
        l->warn_percent = 80;
}

void keel__machine_keep_history(keel__machine_t *m, int keep)
{
        m->keep_history = keep;
}

int keel__machine_set_limits(keel__machine_t *m,
                             const keel__machine_limits_t *l)
{
        json_t *by_type = NULL;
        if (l->retention_by_type &&
            !(by_type = json_deep_copy(l->retention_by_type)))
                return KEEL_ERR_NOMEM;
        json_decref(m->retention_by_type);
        m->retention_by_type = by_type;
        m->lim = *l;
        m->lim.retention_by_type = by_type;
        return KEEL_OK;
}

static int64_t retention_of(const keel__machine_t *m, const run_t *r)
{
        const json_t *v = json_object_get(m->retention_by_type, r->type);
        return json_is_integer(v) ? (int64_t)json_integer_value(v)
                                  : m->lim.retention_ms;
}

/* r has just closed with an event stamped ts: its retention starts. */
static int note_closed(keel__machine_t *m, run_t *r, int64_t ts)
{
        int64_t keep = retention_of(m, r);
        r->close_noted = 1;
        r->closed_at = ts;
        if (keep < 0)
                return KEEL_OK; /* kept forever */
        r->delete_at = ts + keep > 0 ? ts + keep : 1;
        return heap_push(m, r->delete_at, r, HK_RETENTION, "", 0);
}

static int64_t run_nevents(const run_t *r)
{
        return r->n_events;
}

/* Free what a closed run no longer needs once it is not the latest run of
 * its ID: its events (their count stays), activities and timers. */
static void retire_run(keel__machine_t *m, run_t *r)
{
        (void)m;
        while (r->n_acts)
                remove_act(r, &r->acts[0]);
        r->n_timers = 0;
        drop_events(r);
        r->retired = 1;
}

static void free_graveyard(keel__machine_t *m)
{
        while (m->graveyard) {
                run_t *r = m->graveyard;
                m->graveyard = r->next;
                run_free(r);
        }
        m->ngrave = 0;
}

/* Drop the heap entries of deleted runs and free them. */
static void reap(keel__machine_t *m)
{
        if (!m->graveyard)
                return;
        heap_purge(m, NULL);
        free_graveyard(m);
}

/* Take r out of the table (it may be retired, or even open where
 * compaction left a reader the start of a deleted run only). */
static void forget_run(keel__machine_t *m, run_t *r)
{
        run_t **pp = &m->buckets[bucket_of(m, r->workflow_id)];
        while (*pp && *pp != r)
                pp = &(*pp)->next;
        if (*pp) {
                *pp = r->next;
                m->nruns--;
        }
        if (is_open(r))
                set_status(m, r, ST_TERMINATED);
        retire_run(m, r);
        r->deleted = 1;
        r->next = m->graveyard;
        m->graveyard = r;
        /* Each reap costs a pass over the heap: only every so often. */
        if (++m->ngrave > 256 + m->nheap / 4)
                reap(m);
}

static int delete_run(keel__machine_t *m, run_t *r, int64_t now,
                      keel__out_t *out)
{
        int64_t n = run_nevents(r);
        json_t *ev = keel__ev_new(
            H "RunDeleted",
            json_pack("{ss ss sI sI sI ss sI}", "workflow_id", r->workflow_id,
                      "run_id", r->run_id, "seq", (json_int_t)(n + 1), "epoch",
                      (json_int_t)0, "ts", (json_int_t)now, "reason",
                      "retention", "retention_ms",
                      (json_int_t)(r->delete_at - r->closed_at)));
        if (!ev || json_array_append_new(out->history, ev))
                return KEEL_ERR_NOMEM;
        m->st.events++;
        /* The last event first, the RunDeleted last (see above). */
        for (int64_t k = 0; k <= n; k++) {
                json_t *t = json_pack(
                    "{ss ss sI}", "workflow_id", r->workflow_id, "run_id",
                    r->run_id, "seq", (json_int_t)(k < n ? n - k : n + 1));
                if (!t || json_array_append_new(out->tombstones, t))
                        return KEEL_ERR_NOMEM;
        }
        m->st.tombstones += (uint64_t)n + 1;
        m->st.deleted++;
        keel_log(KEEL_LOG_DEBUG, "machine",
                 "workflow_id=%s run_id=%s msg=\"history deleted\" events=%lld "
                 "closed_at=%lld",
                 r->workflow_id, r->run_id, (long long)n,
                 (long long)r->closed_at);
        forget_run(m, r);
        return KEEL_OK;
}

/*
 * Does the next due entry delete a run while out already holds a batch's
 * worth of tombstones? Then it waits for the next batch, so that a backlog
 * of deletions (orchestrators away for days, or retention just enabled on
 * a long history) goes out in transactions of bounded size.
 */
#define TOMBSTONES_PER_BATCH 10000

static int deletions_full(const keel__machine_t *m, const keel__out_t *out)
{
        return m->heap[0].kind == HK_RETENTION &&
               json_array_size(out->tombstones) >= TOMBSTONES_PER_BATCH;
}

/* Restore: a RunDeleted. The run may be gone already (compaction). */
static int restore_deleted(keel__machine_t *m, const json_t *rec)
{
        const char *wid = rstr(rec, "workflow_id");
        const char *rid = rstr(rec, "run_id");
        for (run_t *r = m->buckets[bucket_of(m, wid)]; r; r = r->next) {
                if (!strcmp(r->workflow_id, wid) && !strcmp(r->run_id, rid)) {
                        forget_run(m, r);
                        break;
                }
        }
        return KEEL_OK;
}

/* Is r past the warning share of a limit? */
static int past_warning(const keel__machine_t *m, const run_t *r)
{
        int64_t p = m->lim.warn_percent;
        return run_nevents(r) * 100 >= m->lim.max_events * p ||
               r->bytes * 100 >= m->lim.max_bytes * p;
}

/* After an event of open run r: warn once past the share, and terminate
 * the run at a limit (r->limit_hit), as Temporal does. */
static int enforce_limits(keel__machine_t *m, run_t *r, int64_t now,
                          keel__out_t *out)
{
        int64_t n = run_nevents(r);
        char reason[256], details[256];

        if (!is_open(r))
                return KEEL_OK;
        if (!r->limit_warned && past_warning(m, r)) {
                r->limit_warned = 1;
                m->st.history_warnings++;
                keel_log(KEEL_LOG_WARN, "machine",
                         "workflow_id=%s run_id=%s msg=\"history near its "
                         "limit: the run is terminated at the limit\" "
                         "events=%lld bytes=%lld max_events=%lld "
                         "max_bytes=%lld",
                         r->workflow_id, r->run_id, (long long)n,
                         (long long)r->bytes, (long long)m->lim.max_events,
                         (long long)m->lim.max_bytes);
        }
        if (n < m->lim.max_events && r->bytes < m->lim.max_bytes)
                return KEEL_OK;
        r->limit_hit = 1;
        m->st.history_limited++;
        snprintf(reason, sizeof(reason),
                 "history size exceeds limit: %lld events, %lld bytes "
                 "(limits: %lld events, %lld bytes)",
                 (long long)n, (long long)r->bytes,
                 (long long)m->lim.max_events, (long long)m->lim.max_bytes);
        snprintf(details, sizeof(details),
                 "{\"events\":%lld,\"bytes\":%lld,\"max_events\":%lld,"
                 "\"max_bytes\":%lld}",
                 (long long)n, (long long)r->bytes,
                 (long long)m->lim.max_events, (long long)m->lim.max_bytes);
        keel_log(KEEL_LOG_ERROR, "machine",
                 "workflow_id=%s run_id=%s msg=\"terminated: %s\"",
                 r->workflow_id, r->run_id, reason);
        return emit(m, r, H "WorkflowTerminated",
                    json_pack("{ss ss}", "reason", reason, "details", details),
                    now, out);
}
