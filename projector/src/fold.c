/*
 * fold.c: the projector's fold of keel.history events into the current
 * state of every workflow's latest run (proj.h). It keeps plain structs,
 * not histories: status, input and result as text, pending activities and
 * timers, a signal count and the last few signal names, the search
 * attributes as an object (search_attrs_int.h folds them). Status follows
 * keel_client_result(): WorkflowStarted opens a run (replacing the
 * previous one), the closing events set the final status,
 * NonDeterminismDetected blocks a run until new commands show it moving.
 * The fold never locks: its caller holds proj_t.lock.
 */
#include "proj.h"

#include "keel/error.h"
#include "search_attrs_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

const char *proj_status_name(proj_status_t st)
{
        return st < PROJ_NSTATUS ? keel__run_status_names[st] : "unknown";
}

int proj_status_parse(const char *name, proj_status_t *st)
{
        for (int i = 0; i < PROJ_NSTATUS; i++) {
                if (!strcmp(name, keel__run_status_names[i])) {
                        *st = (proj_status_t)i;
                        return 0;
                }
        }
        return -1;
}

/* ---- record fields ----------------------------------------------------- */

static const char *rec_str(const json_t *rec, const char *k)
{
        return json_string_value(json_object_get(rec, k));
}

static int64_t rec_int(const json_t *rec, const char *k)
{
        return (int64_t)json_integer_value(json_object_get(rec, k));
}

/* strdup of s, or NULL for NULL (and on out of memory: the field is then
 * simply shown as absent). */
static char *dup_or_null(const char *s)
{
        return s ? strdup(s) : NULL;
}

static void set_str(char **dst, const char *s)
{
        free(*dst);
        *dst = dup_or_null(s);
}

/* ---- the table --------------------------------------------------------- */

static uint64_t hash(const char *s)
{
        uint64_t h = 1469598103934665603ULL;
        for (; *s; s++)
                h = (h ^ (unsigned char)*s) * 1099511628211ULL;
        return h;
}

int proj_fold_init(proj_fold_t *f)
{
        memset(f, 0, sizeof(*f));
        f->nbuckets = 1024;
        f->buckets = calloc(f->nbuckets, sizeof(*f->buckets));
        return f->buckets ? KEEL_OK : KEEL_ERR_NOMEM;
}

static void run_clear(proj_wf_t *wf)
{
        free(wf->run_id);
        free(wf->type);
        free(wf->input);
        free(wf->result);
        free(wf->failure);
        free(wf->state);
        json_decref(wf->search_attrs);
        json_decref(wf->origin);
        json_decref(wf->children);
        free(wf->close_reason);
        wf->run_id = wf->type = wf->input = wf->result = wf->failure = NULL;
        wf->state = wf->close_reason = NULL;
        wf->search_attrs = wf->origin = wf->children = NULL;
        wf->noffsets = 0;
        for (size_t i = 0; i < wf->nacts; i++) {
                free(wf->acts[i].id);
                free(wf->acts[i].type);
                free(wf->acts[i].last_failure);
                free(wf->acts[i].hb_details);
        }
        wf->nacts = 0;
        for (size_t i = 0; i < wf->ntimers; i++)
                free(wf->timers[i].id);
        wf->ntimers = 0;
        for (int i = 0; i < PROJ_LAST_SIGNALS; i++) {
                free(wf->last_signals[i]);
                wf->last_signals[i] = NULL;
        }
        wf->signals = 0;
        wf->closed = 0;
        wf->start_ts = wf->close_ts = wf->history_length = 0;
}

static void wf_free(proj_wf_t *wf)
{
        run_clear(wf);
        free(wf->acts);
        free(wf->timers);
        free(wf->offsets);
        free(wf->id);
        free(wf);
}

void proj_fold_destroy(proj_fold_t *f)
{
        if (!f->buckets)
                return;
        /* Gone ones are only in the listing arrays. */
        for (size_t i = 0; i < f->nsorted; i++)
                if (f->sorted[i]->gone)
                        wf_free(f->sorted[i]);
        for (size_t i = 0; i < f->nfresh; i++)
                if (f->fresh[i]->gone)
                        wf_free(f->fresh[i]);
        for (size_t b = 0; b < f->nbuckets; b++) {
                proj_wf_t *wf = f->buckets[b], *next;
                for (; wf; wf = next) {
                        next = wf->next;
                        wf_free(wf);
                }
        }
        free(f->buckets);
        free(f->sorted);
        free(f->fresh);
        memset(f, 0, sizeof(*f));
}

proj_wf_t *proj_fold_get(proj_fold_t *f, const char *id)
{
        proj_wf_t *wf = f->buckets[hash(id) & (f->nbuckets - 1)];
        for (; wf; wf = wf->next)
                if (!strcmp(wf->id, id))
                        return wf;
        return NULL;
}

static void grow_buckets(proj_fold_t *f)
{
        size_t n = f->nbuckets * 2;
        proj_wf_t **b = calloc(n, sizeof(*b));
        if (!b)
                return; /* longer chains, still correct */
        for (size_t i = 0; i < f->nbuckets; i++) {
                proj_wf_t *wf = f->buckets[i], *next;
                for (; wf; wf = next) {
                        size_t k = hash(wf->id) & (n - 1);
                        next = wf->next;
                        wf->next = b[k];
                        b[k] = wf;
                }
        }
        free(f->buckets);
        f->buckets = b;
        f->nbuckets = n;
}

/* The workflow `id`, added (running, not yet counted) if new; NULL on out
 * of memory. */
static proj_wf_t *wf_add(proj_fold_t *f, const char *id)
{
        proj_wf_t *wf;
        size_t k;

        if (f->nfresh == f->fresh_cap) {
                size_t cap = f->fresh_cap ? f->fresh_cap * 2 : 256;
                proj_wf_t **a = realloc(f->fresh, cap * sizeof(*a));
                if (!a)
                        return NULL;
                f->fresh = a;
                f->fresh_cap = cap;
        }
        wf = calloc(1, sizeof(*wf));
        if (!wf || !(wf->id = strdup(id))) {
                free(wf);
                return NULL;
        }
        if (f->count >= f->nbuckets)
                grow_buckets(f);
        k = hash(id) & (f->nbuckets - 1);
        wf->next = f->buckets[k];
        f->buckets[k] = wf;
        f->count++;
        f->fresh[f->nfresh++] = wf;
        return wf;
}

static int cmp_wf(const void *a, const void *b)
{
        return strcmp((*(proj_wf_t *const *)a)->id,
                      (*(proj_wf_t *const *)b)->id);
}

/* Drop the gone workflows from a listing array, in order, and free
 * them. */
static size_t sweep_array(proj_wf_t **a, size_t n)
{
        size_t k = 0;
        for (size_t i = 0; i < n; i++) {
                if (a[i]->gone)
                        wf_free(a[i]);
                else
                        a[k++] = a[i];
        }
        return k;
}

static void sweep(proj_fold_t *f)
{
        f->nsorted = sweep_array(f->sorted, f->nsorted);
        f->nfresh = sweep_array(f->fresh, f->nfresh);
        f->ngone = 0;
}

/* A RunDeleted: if it deletes wf's latest run, the workflow leaves the
 * table now and the listing arrays at the next sweep (a pass over all
 * workflows, so only every so often). */
static void forget(proj_fold_t *f, proj_wf_t *wf, const char *run)
{
        proj_wf_t **pp;
        if (!wf || !wf->run_id || strcmp(wf->run_id, run))
                return; /* another run's, or a run never seen */
        pp = &f->buckets[hash(wf->id) & (f->nbuckets - 1)];
        while (*pp != wf)
                pp = &(*pp)->next;
        *pp = wf->next;
        f->by_status[wf->status]--;
        f->count--;
        f->deleted++;
        run_clear(wf);
        wf->gone = 1;
        if (++f->ngone > 1024 + f->count / 4)
                sweep(f);
}

int proj_fold_ordered(proj_fold_t *f, proj_wf_t ***out, size_t *n)
{
        if (f->ngone)
                sweep(f);
        if (f->nfresh) {
                size_t total = f->nsorted + f->nfresh, i = 0, j = 0, k = 0;
                proj_wf_t **m = malloc((total ? total : 1) * sizeof(*m));
                if (!m)
                        return KEEL_ERR_NOMEM;
                qsort(f->fresh, f->nfresh, sizeof(*f->fresh), cmp_wf);
                while (i < f->nsorted || j < f->nfresh) {
                        if (j == f->nfresh ||
                            (i < f->nsorted &&
                             strcmp(f->sorted[i]->id, f->fresh[j]->id) < 0))
                                m[k++] = f->sorted[i++];
                        else
                                m[k++] = f->fresh[j++];
                }
                free(f->sorted);
                f->sorted = m;
                f->nsorted = total;
                f->nfresh = 0;
        }
        *out = f->sorted;
        *n = f->nsorted;
        return KEEL_OK;
}

/* ---- applying events --------------------------------------------------- */

static void set_status(proj_fold_t *f, proj_wf_t *wf, proj_status_t st)
{
        f->by_status[wf->status]--;
        wf->status = st;
        f->by_status[st]++;
}

static proj_activity_t *act_find(proj_wf_t *wf, const char *id)
{
        for (size_t i = 0; id && i < wf->nacts; i++)
                if (!strcmp(wf->acts[i].id, id))
                        return &wf->acts[i];
        return NULL;
}

static void act_remove(proj_wf_t *wf, proj_activity_t *a)
{
        free(a->id);
        free(a->type);
        free(a->last_failure);
        free(a->hb_details);
        *a = wf->acts[--wf->nacts];
}

static void act_add(proj_wf_t *wf, const char *id, const char *type)
{
        proj_activity_t *a;
        if (!id || act_find(wf, id))
                return;
        if (wf->nacts == wf->acts_cap) {
                size_t cap = wf->acts_cap ? wf->acts_cap * 2 : 2;
                proj_activity_t *n = realloc(wf->acts, cap * sizeof(*n));
                if (!n)
                        return;
                wf->acts = n;
                wf->acts_cap = cap;
        }
        a = &wf->acts[wf->nacts];
        a->id = strdup(id);
        a->type = dup_or_null(type);
        a->attempt = 1;
        a->last_failure = NULL;
        a->hb_details = NULL;
        if (a->id)
                wf->nacts++;
        else
                free(a->type);
}

/* An attempt ended without success: remember why, and drop the activity
 * unless another attempt follows (next_attempt_at set). */
static void act_failed(proj_wf_t *wf, const json_t *rec, json_t *failure)
{
        proj_activity_t *a = act_find(wf, rec_str(rec, "activity_id"));
        if (!a)
                return;
        if (json_is_integer(json_object_get(rec, "next_attempt_at"))) {
                free(a->last_failure);
                a->last_failure =
                    failure ? json_dumps(failure, JSON_COMPACT) : NULL;
                a->attempt = (int)rec_int(rec, "attempt");
        } else {
                act_remove(wf, a);
        }
}

static void timer_remove(proj_wf_t *wf, const char *id)
{
        for (size_t i = 0; id && i < wf->ntimers; i++) {
                if (!strcmp(wf->timers[i].id, id)) {
                        free(wf->timers[i].id);
                        wf->timers[i] = wf->timers[--wf->ntimers];
                        return;
                }
        }
}

static void timer_add(proj_wf_t *wf, const char *id, int64_t fire_at)
{
        if (!id)
                return;
        timer_remove(wf, id);
        if (wf->ntimers == wf->timers_cap) {
                size_t cap = wf->timers_cap ? wf->timers_cap * 2 : 2;
                proj_timer_t *n = realloc(wf->timers, cap * sizeof(*n));
                if (!n)
                        return;
                wf->timers = n;
                wf->timers_cap = cap;
        }
        wf->timers[wf->ntimers].id = strdup(id);
        wf->timers[wf->ntimers].fire_at = fire_at;
        if (wf->timers[wf->ntimers].id)
                wf->ntimers++;
}

/* A closing event: the final status; nothing is pending any more. */
static void close_run(proj_fold_t *f, proj_wf_t *wf, proj_status_t st,
                      const json_t *rec)
{
        set_status(f, wf, st);
        wf->closed = 1;
        wf->close_ts = rec_int(rec, "ts");
        for (size_t i = wf->nacts; i > 0; i--)
                act_remove(wf, &wf->acts[i - 1]);
        for (size_t i = 0; i < wf->ntimers; i++)
                free(wf->timers[i].id);
        wf->ntimers = 0;
}

static void start_run(proj_fold_t *f, const char *id, const json_t *rec)
{
        proj_wf_t *wf = proj_fold_get(f, id);
        if (!wf) {
                wf = wf_add(f, id);
                if (!wf)
                        return;
                wf->status = PROJ_RUNNING;
                f->by_status[PROJ_RUNNING]++;
        }
        run_clear(wf);
        set_status(f, wf, PROJ_RUNNING);
        wf->run_id = dup_or_null(rec_str(rec, "run_id"));
        wf->type = dup_or_null(rec_str(rec, "workflow_type"));
        wf->input = dup_or_null(rec_str(rec, "input"));
        wf->start_ts = rec_int(rec, "ts");
        {
                const char *pid = rec_str(rec, "parent_workflow_id");
                const char *prun = rec_str(rec, "parent_run_id");
                const char *from = rec_str(rec, "continued_from_run_id");
                /* out of memory: shown without them */
                wf->origin =
                    json_pack("{so ss?}", "parent",
                              pid ? json_pack("{ss ss?}", "workflow_id", pid,
                                              "run_id", prun)
                                  : json_null(),
                              "continued_from_run_id", from);
        }
}

/* The children a run started, and how each ended (lower case, as a
 * run's status). */
static void child_note(proj_wf_t *wf, const json_t *rec, int closed)
{
        const char *id = rec_str(rec, "child_workflow_id");
        size_t i;
        json_t *c;
        if (!id)
                return;
        if (!wf->children && !(wf->children = json_array()))
                return;
        if (!closed) {
                json_array_append_new(wf->children,
                                      json_pack("{ss ss? ss}", "workflow_id",
                                                id, "type",
                                                rec_str(rec, "workflow_type"),
                                                "status", "running"));
                return;
        }
        json_array_foreach(wf->children, i, c)
        {
                char st[16];
                const char *s = rec_str(rec, "status");
                size_t k = 0;
                if (strcmp(json_string_value(json_object_get(c, "workflow_id")),
                           id))
                        continue;
                for (; s && s[k] && k < sizeof(st) - 1; k++)
                        st[k] =
                            (char)(s[k] >= 'A' && s[k] <= 'Z' ? s[k] - 'A' + 'a'
                                                              : s[k]);
                st[k] = '\0';
                json_object_set_new(c, "status", json_string(st));
                json_object_set_new(
                    c, "run_id",
                    json_string(rec_str(rec, "child_run_id")
                                    ? rec_str(rec, "child_run_id")
                                    : ""));
        }
}

#define IS(name) (!strcmp(type, "keel.history." name))

/* Remember where event `seq` of wf's run lies in keel.history. */
static void offset_add(proj_wf_t *wf, int64_t seq, const json_t *off)
{
        if (!json_is_integer(off) || seq != (int64_t)wf->noffsets + 1)
                return;
        if (wf->noffsets == wf->offsets_cap) {
                size_t cap = wf->offsets_cap ? wf->offsets_cap * 2 : 16;
                int64_t *n = realloc(wf->offsets, cap * sizeof(*n));
                if (!n)
                        return; /* the history endpoint then says so */
                wf->offsets = n;
                wf->offsets_cap = cap;
        }
        wf->offsets[wf->noffsets++] = json_integer_value(off);
}

void proj_fold_apply(void *fold, const json_t *ev)
{
        proj_fold_t *f = fold;
        const json_t *rec = json_object_get(ev, "record");
        const char *type = json_string_value(json_object_get(ev, "type"));
        const char *id = rec_str(rec, "workflow_id");
        const char *run = rec_str(rec, "run_id");
        proj_wf_t *wf;

        if (!type || !id || !run)
                return;
        wf = proj_fold_get(f, id);
        if (IS("RunDeleted")) {
                forget(f, wf, run);
                return;
        }
        if (IS("WorkflowStarted") &&
            !(wf && wf->run_id && !strcmp(wf->run_id, run))) {
                start_run(f, id, rec);
                wf = proj_fold_get(f, id);
        } else if (wf && rec_int(rec, "seq") <= wf->history_length) {
                return; /* applied already */
        }
        if (!wf || !wf->run_id || strcmp(wf->run_id, run))
                return; /* no run seen, or an older run's event */
        f->events++;
        wf->history_length = rec_int(rec, "seq");
        offset_add(wf, wf->history_length, json_object_get(ev, "offset"));
        /* The start's search attributes and upserts; out of memory, the
         * workflow shows and matches what was merged so far. */
        keel__sa_apply(&wf->search_attrs, ev);

        if (IS("ActivityScheduled")) {
                act_add(wf, rec_str(rec, "activity_id"),
                        rec_str(rec, "activity_type"));
        } else if (IS("ActivityRetried")) {
                proj_activity_t *a = act_find(wf, rec_str(rec, "activity_id"));
                if (a)
                        a->attempt = (int)rec_int(rec, "attempt");
        } else if (IS("ActivityCompleted")) {
                proj_activity_t *a = act_find(wf, rec_str(rec, "activity_id"));
                if (a)
                        act_remove(wf, a);
        } else if (IS("ActivityFailed")) {
                act_failed(wf, rec, json_object_get(rec, "failure"));
        } else if (IS("ActivityTimedOut")) {
                json_t *failure = json_pack(
                    "{ss ss}", "type", "Timeout", "timeout_type",
                    rec_str(rec, "timeout_type") ? rec_str(rec, "timeout_type")
                                                 : "");
                act_failed(wf, rec, failure);
                json_decref(failure);
        } else if (IS("TimerStarted")) {
                timer_add(wf, rec_str(rec, "timer_id"),
                          rec_int(rec, "fire_at"));
        } else if (IS("TimerFired") || IS("TimerCancelled")) {
                timer_remove(wf, rec_str(rec, "timer_id"));
        } else if (IS("ActivityHeartbeatRecorded")) {
                proj_activity_t *a = act_find(wf, rec_str(rec, "activity_id"));
                if (a)
                        set_str(&a->hb_details, rec_str(rec, "details"));
        } else if (IS("MarkerRecorded")) {
                const char *name = rec_str(rec, "marker_name");
                if (name && !strcmp(name, "state"))
                        set_str(&wf->state, rec_str(rec, "details"));
        } else if (IS("SignalReceived")) {
                size_t k = wf->signals % PROJ_LAST_SIGNALS;
                set_str(&wf->last_signals[k], rec_str(rec, "signal_name"));
                wf->signals++;
        } else if (IS("WorkflowCompleted")) {
                set_str(&wf->result, rec_str(rec, "result"));
        } else if (IS("WorkflowFailed")) {
                free(wf->failure);
                wf->failure =
                    json_dumps(json_object_get(rec, "failure"), JSON_COMPACT);
        } else if (IS("WorkflowTerminated")) {
                set_str(&wf->close_reason, rec_str(rec, "reason"));
        } else if (IS("ChildWorkflowInitiated")) {
                child_note(wf, rec, 0);
        } else if (IS("ChildWorkflowClosed")) {
                child_note(wf, rec, 1);
        }
        /* Status by the rule every reader follows. */
        if (!wf->closed) {
                proj_status_t next = keel__run_status_after(wf->status, type);
                if (next >= KEEL__RUN_COMPLETED)
                        close_run(f, wf, next, rec);
                else if (next != wf->status)
                        set_status(f, wf, next);
        }
}

/* ---- JSON -------------------------------------------------------------- */

/* A timestamp in ms as RFC 3339 UTC ("2026-01-02T03:04:05.678Z"); null
 * for 0. */
static json_t *ts_json(int64_t ms)
{
        char buf[40];
        struct tm tm;
        time_t s;

        if (ms <= 0)
                return json_null();
        s = (time_t)(ms / 1000);
        if (!gmtime_r(&s, &tm))
                return json_null();
        strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%S", &tm);
        snprintf(buf + strlen(buf), sizeof(buf) - strlen(buf), ".%03dZ",
                 (int)(ms % 1000));
        return json_string(buf);
}

/* Recorded JSON text as a value: parsed, or the text itself if it does not
 * parse; null for NULL. */
static json_t *text_json(const char *text)
{
        json_t *v;
        if (!text)
                return json_null();
        v = json_loads(text, JSON_DECODE_ANY, NULL);
        return v ? v : json_string(text);
}

/* A recorded failure ({type, message, details, non_retryable}, details
 * as JSON text) as a value with details parsed. */
static json_t *failure_json(const char *text)
{
        json_t *f = text_json(text);
        const char *d = json_string_value(json_object_get(f, "details"));
        if (d)
                json_object_set_new(f, "details", text_json(d));
        return f;
}

json_t *proj_wf_summary_json(const proj_wf_t *wf)
{
        return json_pack("{ss ss* ss* ss so so sI so}", "workflow_id", wf->id,
                         "run_id", wf->run_id, "type", wf->type, "status",
                         proj_status_name(wf->status), "start_time",
                         ts_json(wf->start_ts), "close_time",
                         ts_json(wf->close_ts), "history_length",
                         (json_int_t)wf->history_length, "search_attributes",
                         wf->search_attrs ? json_deep_copy(wf->search_attrs)
                                          : json_object());
}

json_t *proj_wf_json(const proj_wf_t *wf)
{
        json_t *o = proj_wf_summary_json(wf), *acts, *timers, *names;

        if (!o)
                return NULL;
        acts = json_array();
        timers = json_array();
        names = json_array();
        for (size_t i = 0; i < wf->nacts; i++) {
                const proj_activity_t *a = &wf->acts[i];
                json_array_append_new(
                    acts,
                    json_pack("{ss ss* si so so}", "activity_id", a->id,
                              "activity_type", a->type, "attempt", a->attempt,
                              "last_failure", failure_json(a->last_failure),
                              "heartbeat_details", text_json(a->hb_details)));
        }
        for (size_t i = 0; i < wf->ntimers; i++)
                json_array_append_new(
                    timers,
                    json_pack("{ss so}", "timer_id", wf->timers[i].id,
                              "fire_at", ts_json(wf->timers[i].fire_at)));
        /* The remembered names, oldest first. */
        for (uint64_t k = wf->signals > PROJ_LAST_SIGNALS
                              ? wf->signals - PROJ_LAST_SIGNALS
                              : 0;
             k < wf->signals; k++) {
                const char *n = wf->last_signals[k % PROJ_LAST_SIGNALS];
                json_array_append_new(names, n ? json_string(n) : json_null());
        }
        json_object_set_new(o, "input", text_json(wf->input));
        json_object_set_new(o, "result",
                            wf->status == KEEL__RUN_COMPLETED
                                ? text_json(wf->result)
                                : json_null());
        json_object_set_new(o, "failure",
                            wf->status == KEEL__RUN_FAILED
                                ? failure_json(wf->failure)
                                : json_null());
        json_object_set_new(o, "state", text_json(wf->state));
        json_object_set_new(
            o, "parent",
            json_incref(json_object_get(wf->origin, "parent")
                            ? json_object_get(wf->origin, "parent")
                            : json_null()));
        json_object_set_new(
            o, "continued_from_run_id",
            json_incref(
                json_object_get(wf->origin, "continued_from_run_id")
                    ? json_object_get(wf->origin, "continued_from_run_id")
                    : json_null()));
        json_object_set_new(o, "children",
                            wf->children ? json_deep_copy(wf->children)
                                         : json_array());
        json_object_set_new(o, "close_reason",
                            wf->close_reason ? json_string(wf->close_reason)
                                             : json_null());
        json_object_set_new(o, "pending_activities", acts);
        json_object_set_new(o, "pending_timers", timers);
        json_object_set_new(o, "signals",
                            json_pack("{sI so}", "count",
                                      (json_int_t)wf->signals, "last", names));
        return o;
}

/* ---- the state as text, written directly -------------------------------- */

/*
 * GET /api/v1/workflows/{id} writes proj_wf_json()'s text with no jansson
 * tree in between (a tree and its dump cost ~10 us, the request's largest
 * part): the same keys in the same order, strings escaped as jansson
 * escapes them. A recorded JSON text goes in verbatim when it is already
 * what jansson's compact dump of it would be (canon_value()); anything
 * else (a real number, an escape jansson writes differently, whitespace, a
 * text that is not JSON) takes jansson's way, value by value.
 */

typedef struct jbuf_s {
        char *b;
        size_t len, cap;
        int bad; /* out of memory, or a string jansson would refuse */
} jbuf_t;

static void jb_put(jbuf_t *j, const char *s, size_t n)
{
        if (j->bad)
                return;
        if (j->len + n + 1 > j->cap) {
                size_t cap = j->cap ? j->cap : 1024;
                char *b;
                while (cap < j->len + n + 1)
                        cap *= 2;
                if (!(b = realloc(j->b, cap))) {
                        j->bad = 1;
                        return;
                }
                j->b = b;
                j->cap = cap;
        }
        memcpy(j->b + j->len, s, n);
        j->len += n;
        j->b[j->len] = '\0';
}

#define JB_LIT(j, lit) jb_put((j), (lit), sizeof(lit) - 1)

/* The length of the UTF-8 sequence at u, as jansson checks it (no
 * overlong forms, surrogates or code points over U+10FFFF), or 0. */
static size_t utf8_seq(const unsigned char *u)
{
        size_t n;
        uint32_t cp;
        if (u[0] < 0x80)
                return 1;
        if (u[0] < 0xc2 || u[0] > 0xf4)
                return 0;
        n = u[0] < 0xe0 ? 2 : u[0] < 0xf0 ? 3 : 4;
        cp = u[0] & (n == 2 ? 0x1f : n == 3 ? 0x0f : 0x07);
        for (size_t i = 1; i < n; i++) {
                if ((u[i] & 0xc0) != 0x80)
                        return 0;
                cp = cp << 6 | (u[i] & 0x3f);
        }
        if ((n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) ||
            (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff)
                return 0;
        return n;
}

/* s as a JSON string, escaped as jansson's dump escapes it; not UTF-8:
 * bad (jansson refuses such a string). */
static void jb_str(jbuf_t *j, const char *s)
{
        static const char from[] = "\"\\\b\f\n\r\t", to[] = "\"\\bfnrt";
        const unsigned char *u = (const unsigned char *)s, *run = u;
        const char *f;
        JB_LIT(j, "\"");
        while (*u) {
                char esc[8];
                size_t n;
                if (*u >= 0x20 && *u != '"' && *u != '\\') {
                        if (!(n = utf8_seq(u))) {
                                j->bad = 1;
                                return;
                        }
                        u += n;
                        continue;
                }
                jb_put(j, (const char *)run, (size_t)(u - run));
                /* jansson's short escapes, else \u00XX. */
                if ((f = strchr(from, *u))) {
                        esc[0] = '\\';
                        esc[1] = to[f - from];
                        esc[2] = '\0';
                } else {
                        snprintf(esc, sizeof(esc), "\\u%04X", (unsigned)*u);
                }
                jb_put(j, esc, strlen(esc));
                run = ++u;
        }
        jb_put(j, (const char *)run, (size_t)(u - run));
        JB_LIT(j, "\"");
}

static void jb_str_or_null(jbuf_t *j, const char *s)
{
        if (s)
                jb_str(j, s);
        else
                JB_LIT(j, "null");
}

static void jb_int(jbuf_t *j, int64_t v)
{
        char buf[32];
        jb_put(j, buf,
               (size_t)snprintf(buf, sizeof(buf), "%" JSON_INTEGER_FORMAT,
                                (json_int_t)v));
}

static int jb_dump_cb(const char *buf, size_t size, void *data)
{
        jb_put(data, buf, size);
        return 0;
}

/* A value (borrowed; NULL: null) as jansson dumps it. */
static void jb_value(jbuf_t *j, const json_t *v)
{
        if (!v)
                JB_LIT(j, "null");
        else if (json_dump_callback(v, jb_dump_cb, j,
                                    JSON_COMPACT | JSON_ENCODE_ANY))
                j->bad = 1;
}

/* A value (stolen; NULL: out of memory) as jansson dumps it. */
static void jb_value_new(jbuf_t *j, json_t *v)
{
        if (!v)
                j->bad = 1;
        jb_value(j, v);
        json_decref(v);
}

/* A time as ts_json() makes it. */
static void jb_ts(jbuf_t *j, int64_t ms)
{
        char buf[48];
        struct tm tm;
        time_t s;
        size_t n;

        s = (time_t)(ms / 1000);
        if (ms <= 0 || !gmtime_r(&s, &tm)) {
                JB_LIT(j, "null");
                return;
        }
        buf[0] = '"';
        n = 1 + strftime(buf + 1, sizeof(buf) - 1, "%Y-%m-%dT%H:%M:%S", &tm);
        n += (size_t)snprintf(buf + n, sizeof(buf) - n, ".%03dZ\"",
                              (int)(ms % 1000));
        jb_put(j, buf, n);
}

/*
 * Is s[*i..] a JSON value written as jansson's compact dump of it writes it
 * (then *i is past it)? No whitespace; integers of up to 18 digits, not
 * -0 (no reals: jansson rewrites them); strings of UTF-8 with only the
 * escapes jansson writes (\" \\ \b \f \n \r \t), no \u; objects of up to
 * 32 keys, none repeated; nesting up to 32. False for anything else,
 * whatever jansson would make of it.
 */
static int canon_value(const char *s, size_t *i, int depth)
{
        const unsigned char *u = (const unsigned char *)s;
        size_t k = *i;

        if (depth > 32)
                return 0;
        switch (s[k]) {
        case '"':
                for (k++; s[k] != '"'; k++) {
                        if (u[k] < 0x20)
                                return 0; /* the end, or a control byte */
                        if (s[k] == '\\') {
                                if (!strchr("\"\\bfnrt", s[k + 1]) || !s[k + 1])
                                        return 0;
                                k++;
                        } else if (u[k] >= 0x80) {
                                size_t n = utf8_seq(u + k);
                                if (!n)
                                        return 0;
                                k += n - 1;
                        }
                }
                *i = k + 1;
                return 1;
        case '{': {
                struct {
                        size_t at, len;
                } keys[32];
                size_t nkeys = 0;
                k++;
                if (s[k] == '}') {
                        *i = k + 1;
                        return 1;
                }
                for (;;) {
                        size_t at = k;
                        if (s[k] != '"' || !canon_value(s, &k, depth + 1) ||
                            nkeys == 32)
                                return 0;
                        for (size_t n = 0; n < nkeys; n++)
                                if (keys[n].len == k - at &&
                                    !memcmp(s + keys[n].at, s + at, k - at))
                                        return 0; /* repeated */
                        keys[nkeys].at = at;
                        keys[nkeys++].len = k - at;
                        if (s[k++] != ':' || !canon_value(s, &k, depth + 1))
                                return 0;
                        if (s[k] == '}') {
                                *i = k + 1;
                                return 1;
                        }
                        if (s[k++] != ',')
                                return 0;
                }
        }
        case '[':
                k++;
                if (s[k] == ']') {
                        *i = k + 1;
                        return 1;
                }
                for (;;) {
                        if (!canon_value(s, &k, depth + 1))
                                return 0;
                        if (s[k] == ']') {
                                *i = k + 1;
                                return 1;
                        }
                        if (s[k++] != ',')
                                return 0;
                }
        case 't':
        case 'f':
        case 'n': {
                static const char *const lits[] = {"true", "false", "null"};
                for (size_t n = 0; n < 3; n++) {
                        size_t len = strlen(lits[n]);
                        if (!strncmp(s + k, lits[n], len)) {
                                *i = k + len;
                                return 1;
                        }
                }
                return 0;
        }
        default: {
                size_t digits;
                if (s[k] == '-')
                        k++;
                if (s[k] < '0' || s[k] > '9' ||
                    (s[k] == '0' &&
                     (k > *i || (s[k + 1] >= '0' && s[k + 1] <= '9'))))
                        return 0; /* not a number, -0, or a leading 0 */
                for (digits = 0; s[k] >= '0' && s[k] <= '9'; k++)
                        digits++;
                if (digits > 18 || s[k] == '.' || s[k] == 'e' || s[k] == 'E')
                        return 0;
                *i = k;
                return 1;
        }
        }
}

/* A recorded JSON text, as text_json() makes it and jansson dumps it. */
static void jb_text(jbuf_t *j, const char *text)
{
        size_t end = 0;
        if (!text)
                JB_LIT(j, "null");
        else if (canon_value(text, &end, 0) && !text[end])
                jb_put(j, text, end);
        else
                jb_value_new(j, text_json(text));
}

char *proj_wf_text(const proj_wf_t *wf)
{
        uint64_t first = wf->signals > PROJ_LAST_SIGNALS
                             ? wf->signals - PROJ_LAST_SIGNALS
                             : 0;
        jbuf_t j = {0};
        JB_LIT(&j, "{\"workflow_id\":");
        jb_str(&j, wf->id);
        /* json_pack's "s*" leaves a key out for NULL. */
        if (wf->run_id) {
                JB_LIT(&j, ",\"run_id\":");
                jb_str(&j, wf->run_id);
        }
        if (wf->type) {
                JB_LIT(&j, ",\"type\":");
                jb_str(&j, wf->type);
        }
        JB_LIT(&j, ",\"status\":");
        jb_str(&j, proj_status_name(wf->status));
        JB_LIT(&j, ",\"start_time\":");
        jb_ts(&j, wf->start_ts);
        JB_LIT(&j, ",\"close_time\":");
        jb_ts(&j, wf->close_ts);
        JB_LIT(&j, ",\"history_length\":");
        jb_int(&j, wf->history_length);
        JB_LIT(&j, ",\"search_attributes\":");
        if (wf->search_attrs)
                jb_value(&j, wf->search_attrs);
        else
                JB_LIT(&j, "{}");
        JB_LIT(&j, ",\"input\":");
        jb_text(&j, wf->input);
        JB_LIT(&j, ",\"result\":");
        if (wf->status == KEEL__RUN_COMPLETED)
                jb_text(&j, wf->result);
        else
                JB_LIT(&j, "null");
        JB_LIT(&j, ",\"failure\":");
        if (wf->status == KEEL__RUN_FAILED)
                jb_value_new(&j, failure_json(wf->failure));
        else
                JB_LIT(&j, "null");
        JB_LIT(&j, ",\"state\":");
        jb_text(&j, wf->state);
        JB_LIT(&j, ",\"parent\":");
        jb_value(&j, json_object_get(wf->origin, "parent"));
        JB_LIT(&j, ",\"continued_from_run_id\":");
        jb_value(&j, json_object_get(wf->origin, "continued_from_run_id"));
        JB_LIT(&j, ",\"children\":");
        if (wf->children)
                jb_value(&j, wf->children);
        else
                JB_LIT(&j, "[]");
        JB_LIT(&j, ",\"close_reason\":");
        jb_str_or_null(&j, wf->close_reason);
        JB_LIT(&j, ",\"pending_activities\":[");
        for (size_t i = 0; i < wf->nacts; i++) {
                const proj_activity_t *a = &wf->acts[i];
                if (i)
                        JB_LIT(&j, ",");
                JB_LIT(&j, "{\"activity_id\":");
                if (!a->id)
                        j.bad = 1; /* jansson's way leaves it out */
                else
                        jb_str(&j, a->id);
                if (a->type) {
                        JB_LIT(&j, ",\"activity_type\":");
                        jb_str(&j, a->type);
                }
                JB_LIT(&j, ",\"attempt\":");
                jb_int(&j, a->attempt);
                JB_LIT(&j, ",\"last_failure\":");
                if (a->last_failure)
                        jb_value_new(&j, failure_json(a->last_failure));
                else
                        JB_LIT(&j, "null");
                JB_LIT(&j, ",\"heartbeat_details\":");
                jb_text(&j, a->hb_details);
                JB_LIT(&j, "}");
        }
        JB_LIT(&j, "],\"pending_timers\":[");
        for (size_t i = 0; i < wf->ntimers; i++) {
                if (i)
                        JB_LIT(&j, ",");
                JB_LIT(&j, "{\"timer_id\":");
                if (!wf->timers[i].id)
                        j.bad = 1;
                else
                        jb_str(&j, wf->timers[i].id);
                JB_LIT(&j, ",\"fire_at\":");
                jb_ts(&j, wf->timers[i].fire_at);
                JB_LIT(&j, "}");
        }
        JB_LIT(&j, "],\"signals\":{\"count\":");
        jb_int(&j, (int64_t)wf->signals);
        JB_LIT(&j, ",\"last\":[");
        for (uint64_t k = first; k < wf->signals; k++) {
                if (k > first)
                        JB_LIT(&j, ",");
                jb_str_or_null(&j, wf->last_signals[k % PROJ_LAST_SIGNALS]);
        }
        JB_LIT(&j, "]}}");
        if (!j.bad)
                return j.b;
        free(j.b);
        /* A string jansson refuses, say: its way, whatever it makes. */
        {
                json_t *o = proj_wf_json(wf);
                char *text = o ? json_dumps(o, JSON_COMPACT) : NULL;
                json_decref(o);
                return text;
        }
}
