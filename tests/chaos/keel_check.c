/*
 * keel_check.c: keel-check, the independent checker of a chaos run
 * (docs/reliability.md, "Chaos"). After a run it reads keel's topics back
 * from the broker, from the beginning to their ends, the way any outside
 * reader could, and checks that nothing was lost and nothing let in:
 *
 *  (a) every workflow of the run (IDs with --prefix) started in keel.inbox
 *      ran once and closed once, with the outcome the in-process test
 *      environment (keel/testing.h: no Kafka, no crash) gives for the same
 *      commands, and with the same activities completed;
 *  (b) every run's applied events have seqs 1..n, no gap, no duplicate,
 *      nothing after the close (keel.history read_committed, by the
 *      reader rules of history_int.h: claims, epochs, checkpoints);
 *  (c) every completed activity made its side effect exactly once per
 *      idempotency key in the effect logs (--effects), and none was made
 *      for an activity that never completed;
 *  (d) every event the reader rules apply was written under the epoch of
 *      the newest claim before it in its partition: never by a fenced
 *      owner (older epoch), never by one that never claimed (newer);
 *      records the rules ignore (fenced, torn) are counted, and so are
 *      records of aborted transactions (seen only read_uncommitted);
 *  (e) every start, signal, cancel and terminate command of the run in
 *      keel.inbox has its outcome (the event that carries its command ID,
 *      or a dead letter naming its offset, once), and no run started
 *      without a start command;
 *  (f) with --projector, keel-projector's list and state agree with all
 *      of the above.
 * It prints figures and violations by kind and exits 0 (no violation),
 * 1 (violations) or 2 (usage, or a topic could not be read to its end).
 * The reference runs the payment example's workflow and activities.
 */
#include "e2e_support.h"
#include "history_int.h"
#include "keel/keel.h"
#include "keel_http.h"
#include "payment.h"

#include <getopt.h>
#include <librdkafka/rdkafka.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define H "keel.history."

/* Kinds of violation, as the report names them. */
enum {
        V_COUNT,     /* --expect: how many workflows the run started */
        V_CLOSED,    /* (a) not closed, closed twice, several runs */
        V_RESULT,    /* (a) outcome or activities differ from the reference */
        V_SEQ,       /* (b) */
        V_EFFECTS,   /* (c) */
        V_FENCING,   /* (d) */
        V_INBOX,     /* (e) */
        V_PROJECTOR, /* (f) */
        V_N
};
static const char *const vnames[V_N] = {"count", "closed",   "result",
                                        "seq",   "effects",  "fencing",
                                        "inbox", "projector"};

/* One partition of keel.history. */
typedef struct part_s {
        keel__history_reader_t hr;
        /* claims in log order: offset, and the newest epoch up to it */
        struct {
                int64_t offset, newest;
        } * claims;
        size_t nclaims, capclaims;
        int64_t *offs; /* offsets read read_committed, in order */
        size_t noffs, capoffs;
        uint64_t records, aborted;
} part_t;

/* One workflow of the run. */
typedef struct wf_s {
        char *id;
        json_t *cmds; /* its client commands in keel.inbox, in order */
        int runs, closes, after_close;
        char run[64];
        int64_t last_seq;
        json_t *close;   /* the first close event {"type","record"} */
        json_t *acts;    /* activity_id -> activity_type */
        json_t *done;    /* activity types completed, in order */
        json_t *started; /* command IDs of its WorkflowStarted events */
        int terminated;
} wf_t;

typedef struct check_s {
        const char *bootstrap, *prefix;
        const char *trace; /* --trace: print what the topics hold of it */
        size_t plen;
        int expect, timeout_ms;
        /* workflows of the run */
        wf_t *wfs;
        size_t nwfs, capwfs;
        json_t *index; /* id -> position in wfs */
        /* keel.history */
        part_t *parts;
        int nparts, cur;
        json_t *outcomes;    /* command IDs the history answered */
        json_t *event_types; /* the run's applied events by type (and
                                failure type) */
        json_t *completions; /* "type\tkey" -> times completed */
        uint64_t claims, foreign_events;
        /* keel.inbox and keel.dlq */
        json_t *inbox_types; /* record type -> count (the run's) */
        uint64_t inbox_records, inbox_undecodable;
        json_t *dead; /* "p/offset" of keel.inbox -> dead letters */
        uint64_t dlq_records;
        /* activity attempts: "<wf>/<run>/<activity>/<attempt>" -> [sent,
         * answered] (ms): when the orchestrator scheduled it, when a
         * worker answered (the first answer) */
        json_t *attempts;
        const char *latencies; /* --latencies: write them there */
        /* effects */
        json_t *effects;      /* "type\tkey" -> lines */
        json_t *effect_types; /* type -> lines */
        uint64_t effect_lines;
        /* verdict */
        uint64_t v[V_N];
        json_t *examples; /* the first violations, as text */
        json_t *figures;
} check_t;

/* ---- small helpers ---------------------------------------------------- */

static const char *sget(const json_t *o, const char *k)
{
        const char *s = json_string_value(json_object_get(o, k));
        return s ? s : "";
}

static int64_t iget(const json_t *o, const char *k)
{
        return (int64_t)json_integer_value(json_object_get(o, k));
}

static void violation(check_t *ck, int kind, const char *fmt, ...)
{
        char buf[1024];
        va_list ap;
        int n;
        ck->v[kind]++;
        if (json_array_size(ck->examples) >= 50)
                return;
        n = snprintf(buf, sizeof(buf), "%s: ", vnames[kind]);
        va_start(ap, fmt);
        vsnprintf(buf + n, sizeof(buf) - (size_t)n, fmt, ap);
        va_end(ap);
        json_array_append_new(ck->examples, json_string(buf));
}

static void bump(json_t *counts, const char *key)
{
        json_t *v = json_object_get(counts, key);
        json_object_set_new(counts, key,
                            json_integer(v ? json_integer_value(v) + 1 : 1));
}

static int grow(void **p, size_t *cap, size_t n, size_t size)
{
        void *q;
        if (n < *cap)
                return 0;
        q = realloc(*p, (*cap ? *cap * 2 : 256) * size);
        if (!q)
                return -1;
        *p = q;
        *cap = *cap ? *cap * 2 : 256;
        return 0;
}

static int of_run(const check_t *ck, const char *id)
{
        return id && !strncmp(id, ck->prefix, ck->plen);
}

/* The workflow id of the run (created on first sight). */
static wf_t *wf_get(check_t *ck, const char *id)
{
        json_t *at = json_object_get(ck->index, id);
        wf_t *wf;
        if (at)
                return &ck->wfs[json_integer_value(at)];
        if (grow((void **)&ck->wfs, &ck->capwfs, ck->nwfs, sizeof(*wf))) {
                fprintf(stderr, "keel-check: out of memory\n");
                exit(2);
        }
        wf = &ck->wfs[ck->nwfs];
        memset(wf, 0, sizeof(*wf));
        wf->id = strdup(id);
        wf->cmds = json_array();
        wf->acts = json_object();
        wf->done = json_array();
        wf->started = json_array();
        json_object_set_new(ck->index, id, json_integer((json_int_t)ck->nwfs));
        ck->nwfs++;
        return wf;
}

static void on_event(void *opaque, const json_t *ev);

static part_t *part_get(check_t *ck, int p)
{
        if (p < 0 || p >= 4096)
                return NULL;
        if (p >= ck->nparts) {
                part_t *np = realloc(ck->parts, (size_t)(p + 1) * sizeof(*np));
                if (!np)
                        return NULL;
                ck->parts = np;
                for (int i = ck->nparts; i <= p; i++) {
                        memset(&np[i], 0, sizeof(np[i]));
                        keel__history_reader_init(&np[i].hr, on_event, ck);
                }
                ck->nparts = p + 1;
        }
        return &ck->parts[p];
}

/* The epoch of the newest claim before offset in pt (0: none). Claims
 * are kept with the running maximum, so this is the newest by epoch. */
static int64_t claim_before(const part_t *pt, int64_t offset)
{
        size_t lo = 0, hi = pt->nclaims;
        while (lo < hi) {
                size_t mid = (lo + hi) / 2;
                if (pt->claims[mid].offset < offset)
                        lo = mid + 1;
                else
                        hi = mid;
        }
        return lo ? pt->claims[lo - 1].newest : 0;
}

/* --trace: one record of the traced workflow, with what tells it apart. */
static void trace(const check_t *ck, const char *where,
                  const rd_kafka_message_t *m, const char *type,
                  const json_t *rec)
{
        const json_t *f = json_object_get(rec, "failure");
        if (!ck->trace || strcmp(sget(rec, "workflow_id"), ck->trace))
                return;
        printf("trace %s %d/%lld %s", where, (int)m->partition,
               (long long)m->offset, type);
        if (json_object_get(rec, "seq"))
                printf(" seq=%lld epoch=%lld", (long long)iget(rec, "seq"),
                       (long long)iget(rec, "epoch"));
        if (json_object_get(rec, "activity_id"))
                printf(" activity=%s attempt=%lld", sget(rec, "activity_id"),
                       (long long)iget(rec, "attempt"));
        if (*sget(rec, "command_id"))
                printf(" command=%s", sget(rec, "command_id"));
        if (f)
                printf(" failure=%s", sget(f, "type"));
        if (*sget(rec, "timer_id"))
                printf(" timer=%s", sget(rec, "timer_id"));
        printf(" ts=%lld\n", (long long)iget(rec, "ts"));
}

/* Note when attempt `attempt` of an activity was sent (slot 0) or first
 * answered (slot 1). */
static void attempt_at(check_t *ck, const json_t *rec, int64_t attempt,
                       int slot, int64_t ts)
{
        char key[1400];
        json_t *a;
        snprintf(key, sizeof(key), "%s/%s/%s/%lld", sget(rec, "workflow_id"),
                 sget(rec, "run_id"), sget(rec, "activity_id"),
                 (long long)attempt);
        if (!(a = json_object_get(ck->attempts, key))) {
                a = json_pack("[II]", (json_int_t)-1, (json_int_t)-1);
                json_object_set_new(ck->attempts, key, a);
        }
        if (json_integer_value(json_array_get(a, (size_t)slot)) < 0)
                json_array_set_new(a, (size_t)slot, json_integer(ts));
}

/* ---- keel.inbox ---------------------------------------------------------- */

static int client_command(const char *type)
{
        return !strcmp(type, "keel.inbox.StartWorkflow") ||
               !strcmp(type, "keel.inbox.SignalWorkflow") ||
               !strcmp(type, "keel.inbox.CancelWorkflow") ||
               !strcmp(type, "keel.inbox.TerminateWorkflow");
}

static void on_inbox(void *opaque, const rd_kafka_message_t *m)
{
        check_t *ck = opaque;
        const char *type;
        json_t *rec;

        ck->inbox_records++;
        if (keel_codec_decode(m->payload, m->len, &type, &rec, NULL, 0)) {
                ck->inbox_undecodable++;
                return;
        }
        trace(ck, "inbox", m, type, rec);
        if (of_run(ck, sget(rec, "workflow_id"))) {
                bump(ck->inbox_types, type + 5);
                if (!strcmp(type, "keel.inbox.ActivityCompleted") ||
                    !strcmp(type, "keel.inbox.ActivityFailed"))
                        attempt_at(ck, rec, iget(rec, "attempt"), 1,
                                   iget(rec, "ts"));
                if (client_command(type))
                        json_array_append_new(
                            wf_get(ck, sget(rec, "workflow_id"))->cmds,
                            json_pack("{ss sO si sI}", "type", type, "record",
                                      rec, "partition", (int)m->partition,
                                      "offset", (json_int_t)m->offset));
        }
        json_decref(rec);
}

/* ---- keel.dlq ------------------------------------------------------------ */

static void on_dlq(void *opaque, const rd_kafka_message_t *m)
{
        check_t *ck = opaque;
        const char *type;
        json_t *rec;
        char pos[64];

        ck->dlq_records++;
        if (keel_codec_decode(m->payload, m->len, &type, &rec, NULL, 0))
                return;
        if (!strcmp(type, "keel.dlq.DeadLetter") &&
            !strcmp(sget(rec, "source_topic"), KEEL_TOPIC_INBOX)) {
                snprintf(pos, sizeof(pos), "%lld/%lld",
                         (long long)iget(rec, "source_partition"),
                         (long long)iget(rec, "source_offset"));
                bump(ck->dead, pos);
        }
        json_decref(rec);
}

/* ---- keel.history ---------------------------------------------------------
 */

/* An event the reader rules applied, on partition ck->cur. */
static void on_event(void *opaque, const json_t *ev)
{
        check_t *ck = opaque;
        part_t *pt = &ck->parts[ck->cur];
        const char *type = sget(ev, "type");
        const json_t *rec = json_object_get(ev, "record");
        const char *id = sget(rec, "workflow_id"), *run = sget(rec, "run_id");
        int64_t seq = iget(rec, "seq"), epoch = iget(rec, "epoch");
        int64_t offset = iget(ev, "offset"), newest;
        const char *t = !strncmp(type, H, strlen(H)) ? type + strlen(H) : type;
        wf_t *wf;

        if (ck->trace && !strcmp(id, ck->trace))
                printf("trace applied %d/%lld %s seq=%lld\n", ck->cur,
                       (long long)offset, t, (long long)seq);
        if (!of_run(ck, id)) {
                ck->foreign_events++;
                return;
        }
        if (json_object_get(rec, "failure")) {
                char ft[300];
                snprintf(ft, sizeof(ft), "%s(%s)", t,
                         sget(json_object_get(rec, "failure"), "type"));
                bump(ck->event_types, ft);
        } else {
                bump(ck->event_types, t);
        }
        /* (d), independently of the reader's own bookkeeping. */
        newest = claim_before(pt, offset);
        if (epoch < newest)
                violation(ck, V_FENCING,
                          "%s seq %lld (partition %d offset %lld) applied "
                          "with epoch %lld after a claim of epoch %lld",
                          id, (long long)seq, ck->cur, (long long)offset,
                          (long long)epoch, (long long)newest);
        else if (epoch > newest)
                violation(ck, V_FENCING,
                          "%s seq %lld (partition %d offset %lld) applied "
                          "with epoch %lld, which no claim before it has "
                          "(newest %lld)",
                          id, (long long)seq, ck->cur, (long long)offset,
                          (long long)epoch, (long long)newest);
        /* (b) */
        wf = wf_get(ck, id);
        if (strcmp(wf->run, run)) {
                wf->runs++;
                snprintf(wf->run, sizeof(wf->run), "%s", run);
                wf->last_seq = 0;
                wf->after_close = 0;
                if (strcmp(t, "WorkflowStarted"))
                        violation(ck, V_SEQ, "%s run %s begins with %s", id,
                                  run, t);
        }
        if (seq != wf->last_seq + 1)
                violation(ck, V_SEQ, "%s: %s seq %lld after seq %lld (%s)", id,
                          seq <= wf->last_seq ? "duplicate" : "gap",
                          (long long)seq, (long long)wf->last_seq, t);
        if (wf->after_close)
                violation(ck, V_SEQ, "%s: %s seq %lld after the close", id, t,
                          (long long)seq);
        if (seq > wf->last_seq)
                wf->last_seq = seq;

        if (!strcmp(t, "WorkflowStarted")) {
                json_array_append_new(wf->started,
                                      json_string(sget(rec, "command_id")));
                json_object_set_new(ck->outcomes, sget(rec, "command_id"),
                                    json_true());
        } else if (!strcmp(t, "SignalReceived") ||
                   !strcmp(t, "WorkflowCancelRequested")) {
                if (*sget(rec, "command_id"))
                        json_object_set_new(
                            ck->outcomes, sget(rec, "command_id"), json_true());
        } else if (!strcmp(t, "ActivityScheduled")) {
                json_object_set_new(wf->acts, sget(rec, "activity_id"),
                                    json_string(sget(rec, "activity_type")));
                attempt_at(ck, rec, 1, 0, iget(rec, "ts"));
        } else if (!strcmp(t, "ActivityRetried")) {
                attempt_at(ck, rec, iget(rec, "attempt"), 0, iget(rec, "ts"));
        } else if (!strcmp(t, "ActivityCompleted")) {
                const char *at = sget(wf->acts, sget(rec, "activity_id"));
                char key[1400];
                snprintf(key, sizeof(key), "%s\t%s/%s/%s", at, id, run,
                         sget(rec, "activity_id"));
                bump(ck->completions, key);
                json_array_append_new(wf->done, json_string(at));
        } else if (!strcmp(t, "WorkflowCompleted") ||
                   !strcmp(t, "WorkflowFailed") ||
                   !strcmp(t, "WorkflowCancelled") ||
                   !strcmp(t, "WorkflowTerminated") ||
                   !strcmp(t, "WorkflowContinuedAsNew")) {
                wf->after_close = 1;
                if (!strcmp(t, "WorkflowTerminated"))
                        wf->terminated = 1;
                if (wf->closes++ == 0)
                        wf->close = json_deep_copy(ev);
        }
}

static void on_history(void *opaque, const rd_kafka_message_t *m)
{
        check_t *ck = opaque;
        part_t *pt = part_get(ck, m->partition);
        char err[512];

        if (!pt)
                return;
        pt->records++;
        if (!grow((void **)&pt->offs, &pt->capoffs, pt->noffs,
                  sizeof(*pt->offs)))
                pt->offs[pt->noffs++] = m->offset;
        if (m->key && m->key_len >= strlen(KEEL__KEY_CLAIM) &&
            !memcmp(m->key, KEEL__KEY_CLAIM, strlen(KEEL__KEY_CLAIM))) {
                const char *type;
                json_t *rec;
                if (!keel_codec_decode(m->payload, m->len, &type, &rec, NULL,
                                       0)) {
                        int64_t e = iget(rec, "epoch");
                        int64_t newest = claim_before(pt, m->offset);
                        if (!grow((void **)&pt->claims, &pt->capclaims,
                                  pt->nclaims, sizeof(*pt->claims))) {
                                pt->claims[pt->nclaims].offset = m->offset;
                                pt->claims[pt->nclaims++].newest =
                                    e > newest ? e : newest;
                        }
                        ck->claims++;
                        json_decref(rec);
                }
        }
        if (ck->trace && m->key && m->key_len > strlen(ck->trace) &&
            !memcmp(m->key, ck->trace, strlen(ck->trace)) &&
            ((const char *)m->key)[strlen(ck->trace)] == '/') {
                const char *type;
                json_t *rec;
                if (!keel_codec_decode(m->payload, m->len, &type, &rec, NULL,
                                       0)) {
                        trace(ck, "history", m, type, rec);
                        json_decref(rec);
                }
        }
        ck->cur = m->partition;
        pt->hr.offset = m->offset;
        keel__history_reader_feed(&pt->hr, m->payload, m->len, err,
                                  sizeof(err));
}

static int has_offset(const part_t *pt, int64_t offset)
{
        size_t lo = 0, hi = pt->noffs;
        while (lo < hi) {
                size_t mid = (lo + hi) / 2;
                if (pt->offs[mid] < offset)
                        lo = mid + 1;
                else
                        hi = mid;
        }
        return lo < pt->noffs && pt->offs[lo] == offset;
}

/* read_uncommitted: what only that shows was written by transactions that
 * were aborted (a fenced or dead owner's). */
static void on_history_uncommitted(void *opaque, const rd_kafka_message_t *m)
{
        check_t *ck = opaque;
        part_t *pt = m->partition < ck->nparts ? &ck->parts[m->partition]
                                               : part_get(ck, m->partition);
        if (pt && !has_offset(pt, m->offset))
                pt->aborted++;
}

/* ---- the reference ---------------------------------------------------------
 */

static json_t *loads(const char *text)
{
        return json_loads(text, JSON_DECODE_ANY, NULL);
}

/* Play wf's client commands into a test environment and run it: the
 * history a crash-free run gives (a new reference), or NULL. */
static json_t *reference(const keel_registry_t *reg, const wf_t *wf)
{
        keel_testenv_t *env = keel_testenv_new(reg, 0);
        json_t *seen = json_object(), *hist = NULL;
        const json_t *c;
        size_t i;

        if (!env || !seen)
                goto out;
        for (size_t k = 0; k < payment_activities_cnt; k++)
                keel_testenv_register_activity(env, payment_activities[k].name,
                                               payment_activities[k].fn, NULL);
        json_array_foreach(wf->cmds, i, c)
        {
                const char *type = sget(c, "type");
                const json_t *rec = json_object_get(c, "record");
                const char *cid = sget(rec, "command_id");
                if (*cid && json_object_get(seen, cid))
                        continue; /* delivered again: dropped */
                json_object_set_new(seen, cid, json_true());
                if (!strcmp(type, "keel.inbox.StartWorkflow")) {
                        keel_start_options_t o = {0};
                        json_t *pl = NULL, *sa = NULL;
                        o.id_reuse_policy = sget(rec, "id_reuse_policy");
                        o.id_conflict_policy = sget(rec, "id_conflict_policy");
                        if (json_is_string(
                                json_object_get(rec, "signal_name"))) {
                                o.signal_name = sget(rec, "signal_name");
                                o.signal_payload = pl =
                                    loads(sget(rec, "signal_payload"));
                        }
                        o.execution_timeout_ms =
                            iget(rec, "execution_timeout_ms");
                        o.run_timeout_ms = iget(rec, "run_timeout_ms");
                        if (json_is_string(
                                json_object_get(rec, "search_attributes")))
                                o.search_attributes = sa =
                                    loads(sget(rec, "search_attributes"));
                        keel_testenv_start_ex(env, wf->id,
                                              sget(rec, "workflow_type"),
                                              loads(sget(rec, "input")), &o);
                        json_decref(pl);
                        json_decref(sa);
                } else if (!strcmp(type, "keel.inbox.SignalWorkflow")) {
                        keel_testenv_signal(env, wf->id,
                                            sget(rec, "signal_name"),
                                            loads(sget(rec, "payload")));
                } else if (!strcmp(type, "keel.inbox.CancelWorkflow")) {
                        keel_testenv_cancel(env, wf->id, sget(rec, "reason"));
                } else if (!strcmp(type, "keel.inbox.TerminateWorkflow")) {
                        keel_testenv_terminate(env, wf->id,
                                               sget(rec, "reason"));
                }
        }
        keel_testenv_run(env);
        hist = json_deep_copy(keel_testenv_history(env, wf->id));
out:
        json_decref(seen);
        keel_testenv_destroy(env);
        return hist;
}

/* The outcome of a close event, as text: "WorkflowCompleted {...}",
 * "WorkflowFailed <type>: <message>", or the type. Into buf. */
static const char *outcome(const json_t *ev, char *buf, size_t size)
{
        const char *type = sget(ev, "type");
        const json_t *rec = json_object_get(ev, "record");
        const char *t = !strncmp(type, H, strlen(H)) ? type + strlen(H) : type;
        if (!strcmp(t, "WorkflowCompleted")) {
                json_t *r = loads(sget(rec, "result"));
                char *s = r ? json_dumps(r, JSON_COMPACT | JSON_SORT_KEYS |
                                                JSON_ENCODE_ANY)
                            : NULL;
                snprintf(buf, size, "%s %s", t, s ? s : sget(rec, "result"));
                free(s);
                json_decref(r);
        } else if (!strcmp(t, "WorkflowFailed")) {
                const json_t *f = json_object_get(rec, "failure");
                snprintf(buf, size, "%s %s: %s", t, sget(f, "type"),
                         sget(f, "message"));
        } else {
                snprintf(buf, size, "%s", t);
        }
        return buf;
}

/* The activity types completed in a history, sorted, as text. */
static void completed_types(const json_t *done, char *buf, size_t size)
{
        const char *names[64];
        size_t n = 0, i, len = 0;
        const json_t *v;
        json_array_foreach(done, i, v)
        {
                if (n < 64)
                        names[n++] = json_string_value(v);
        }
        for (i = 1; i < n; i++)
                for (size_t j = i; j > 0 && strcmp(names[j - 1], names[j]) > 0;
                     j--) {
                        const char *x = names[j];
                        names[j] = names[j - 1];
                        names[j - 1] = x;
                }
        buf[0] = '\0';
        for (i = 0; i < n && len < size; i++)
                len += (size_t)snprintf(buf + len, size - len, "%s%s",
                                        i ? "," : "", names[i]);
}

/* The activity types a reference history completed. */
static json_t *reference_done(const json_t *hist)
{
        json_t *acts = json_object(), *done = json_array();
        const json_t *ev;
        size_t i;
        json_array_foreach(hist, i, ev)
        {
                const char *t = sget(ev, "type");
                const json_t *rec = json_object_get(ev, "record");
                if (!strcmp(t, H "ActivityScheduled"))
                        json_object_set_new(
                            acts, sget(rec, "activity_id"),
                            json_string(sget(rec, "activity_type")));
                else if (!strcmp(t, H "ActivityCompleted"))
                        json_array_append_new(
                            done,
                            json_string(sget(acts, sget(rec, "activity_id"))));
        }
        json_decref(acts);
        return done;
}

/* ---- the checks --------------------------------------------------------- */

static const char *status_of(const wf_t *wf)
{
        const char *t = wf->close ? sget(wf->close, "type") + strlen(H) : "";
        if (!wf->close)
                return "running";
        if (!strcmp(t, "WorkflowCompleted"))
                return "completed";
        if (!strcmp(t, "WorkflowFailed"))
                return "failed";
        if (!strcmp(t, "WorkflowCancelled"))
                return "cancelled";
        if (!strcmp(t, "WorkflowTerminated"))
                return "terminated";
        return "continued";
}

/* (a) and (e) for every workflow of the run. */
static void check_workflows(check_t *ck)
{
        keel_registry_t *reg = keel_registry_new();
        json_t *outcomes = json_object();
        uint64_t started = 0;

        payment_register_workflow(reg);
        for (size_t w = 0; w < ck->nwfs; w++) {
                wf_t *wf = &ck->wfs[w];
                int starts = 0;
                size_t i;
                const json_t *c, *sid;
                char got[1024], want[1024];

                /* (e) every command answered; no run without its start */
                json_array_foreach(wf->cmds, i, c)
                {
                        const char *type = sget(c, "type") + 11;
                        const json_t *rec = json_object_get(c, "record");
                        char pos[64];
                        int64_t dead;
                        snprintf(pos, sizeof(pos), "%lld/%lld",
                                 (long long)iget(c, "partition"),
                                 (long long)iget(c, "offset"));
                        dead = iget(ck->dead, pos);
                        if (!strcmp(type, "StartWorkflow"))
                                starts++;
                        if (dead > 1)
                                violation(ck, V_INBOX,
                                          "%s: %s at keel.inbox %s "
                                          "dead-lettered %lld times",
                                          wf->id, type, pos, (long long)dead);
                        if (dead ||
                            json_object_get(ck->outcomes,
                                            sget(rec, "command_id")) ||
                            (!strcmp(type, "TerminateWorkflow") &&
                             wf->terminated))
                                continue;
                        violation(ck, V_INBOX,
                                  "%s: %s %s at keel.inbox %s has no "
                                  "outcome (no event, no dead letter)",
                                  wf->id, type, sget(rec, "command_id"), pos);
                }
                json_array_foreach(wf->started, i, sid)
                {
                        int found = 0;
                        size_t j;
                        json_array_foreach(wf->cmds, j, c)
                        {
                                found |=
                                    !strcmp(sget(json_object_get(c, "record"),
                                                 "command_id"),
                                            json_string_value(sid));
                        }
                        if (!found)
                                violation(ck, V_INBOX,
                                          "%s: a run started by command %s, "
                                          "which keel.inbox does not hold",
                                          wf->id, json_string_value(sid));
                }
                if (!starts)
                        continue;
                started++;

                /* (a) once, closed once, like the reference */
                if (wf->runs != 1 || wf->closes != 1) {
                        violation(ck, V_CLOSED,
                                  "%s: %d run(s), closed %d "
                                  "time(s)",
                                  wf->id, wf->runs, wf->closes);
                        if (!wf->close)
                                continue;
                }
                bump(outcomes, outcome(wf->close, got, sizeof(got)));
                {
                        json_t *ref = reference(reg, wf);
                        const json_t *last =
                            json_array_get(ref, json_array_size(ref) - 1);
                        json_t *rdone;
                        if (!last) {
                                violation(ck, V_RESULT,
                                          "%s: no reference (the test "
                                          "environment started no run)",
                                          wf->id);
                                json_decref(ref);
                                continue;
                        }
                        outcome(last, want, sizeof(want));
                        if (strcmp(got, want))
                                violation(ck, V_RESULT,
                                          "%s: closed with %s, the "
                                          "reference with %s",
                                          wf->id, got, want);
                        rdone = reference_done(ref);
                        completed_types(wf->done, got, sizeof(got));
                        completed_types(rdone, want, sizeof(want));
                        if (strcmp(got, want))
                                violation(ck, V_RESULT,
                                          "%s: activities completed [%s], "
                                          "the reference's [%s]",
                                          wf->id, got, want);
                        json_decref(rdone);
                        json_decref(ref);
                }
        }
        if (ck->expect >= 0 && started != (uint64_t)ck->expect)
                violation(ck, V_COUNT,
                          "%llu workflows started in keel.inbox, %d expected",
                          (unsigned long long)started, ck->expect);
        json_object_set_new(ck->figures, "workflows_started",
                            json_integer((json_int_t)started));
        json_object_set_new(ck->figures, "outcomes", outcomes);
        keel_registry_destroy(reg);
}

/* Every key of `have` once, and in `other` too. */
static void cross_check(check_t *ck, const json_t *have, const json_t *other,
                        const char *what, const char *done, const char *alone)
{
        const char *key;
        const json_t *v;
        json_object_foreach((json_t *)have, key, v)
        {
                if (json_integer_value(v) > 1)
                        violation(ck, V_EFFECTS, "%s \"%s\" %s %lld times",
                                  what, key, done,
                                  (long long)json_integer_value(v));
                if (!json_object_get(other, key))
                        violation(ck, V_EFFECTS, "%s \"%s\" %s", what, key,
                                  alone);
        }
}

/* (c) the effect logs against the completed activities. */
static int check_effects(check_t *ck, char **files, int nfiles)
{
        for (int i = 0; i < nfiles; i++) {
                char line[2048];
                FILE *f = fopen(files[i], "r");
                if (!f) {
                        fprintf(stderr, "keel-check: cannot read %s\n",
                                files[i]);
                        return -1;
                }
                while (fgets(line, sizeof(line), f)) {
                        char *tab = strchr(line, '\t');
                        line[strcspn(line, "\n")] = '\0';
                        if (!tab || !of_run(ck, tab + 1))
                                continue;
                        ck->effect_lines++;
                        bump(ck->effects, line);
                        *tab = '\0';
                        bump(ck->effect_types, line);
                }
                fclose(f);
        }
        cross_check(ck, ck->effects, ck->completions, "effect", "made",
                    "of an activity that never completed");
        cross_check(ck, ck->completions, ck->effects, "activity", "completed",
                    "completed without its effect");
        return 0;
}

/* (d) what the readers were left with. */
static void check_partitions(check_t *ck)
{
        uint64_t rec = 0, ab = 0, app = 0, fen = 0, torn = 0, batches = 0;
        for (int p = 0; p < ck->nparts; p++) {
                part_t *pt = &ck->parts[p];
                size_t left = json_array_size(pt->hr.pending);
                rec += pt->records;
                ab += pt->aborted;
                app += pt->hr.applied;
                fen += pt->hr.fenced;
                torn += pt->hr.torn;
                batches += pt->hr.batches;
                if (left)
                        violation(ck, V_FENCING,
                                  "partition %d ends with %zu committed "
                                  "events no checkpoint closes",
                                  p, left);
        }
        json_object_set_new(
            ck->figures, "history",
            json_pack("{sI sI sI sI sI sI sI sI si}", "records",
                      (json_int_t)rec, "aborted_records", (json_int_t)ab,
                      "claims", (json_int_t)ck->claims, "batches",
                      (json_int_t)batches, "events_applied", (json_int_t)app,
                      "run_events_applied",
                      (json_int_t)(app - ck->foreign_events), "fenced_records",
                      (json_int_t)fen, "torn_events", (json_int_t)torn,
                      "partitions", ck->nparts));
}

static int cmp_i64(const void *a, const void *b)
{
        int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
        return x < y ? -1 : x > y;
}

/* How long attempts waited for a worker's answer: a figure (p50, p99,
 * max), not a check. Timeouts and retries follow from long waits. */
static void attempt_figures(check_t *ck)
{
        size_t n = 0, cap = json_object_size(ck->attempts) + 1;
        int64_t *lat = malloc(cap * sizeof(*lat));
        FILE *out = ck->latencies ? fopen(ck->latencies, "w") : NULL;
        const char *key;
        const json_t *a;

        if (!lat) {
                if (out)
                        fclose(out);
                return;
        }
        json_object_foreach(ck->attempts, key, a)
        {
                int64_t sent = json_integer_value(json_array_get(a, 0));
                int64_t answered = json_integer_value(json_array_get(a, 1));
                if (sent < 0 || answered < 0)
                        continue;
                lat[n++] = answered - sent;
                if (out)
                        fprintf(out, "%lld %lld %s\n", (long long)sent,
                                (long long)answered, key);
        }
        if (out)
                fclose(out);
        qsort(lat, n, sizeof(*lat), cmp_i64);
        json_object_set_new(
            ck->figures, "attempts",
            json_pack("{sI sI sI sI sI}", "sent",
                      (json_int_t)json_object_size(ck->attempts), "answered",
                      (json_int_t)n, "wait_p50_ms",
                      (json_int_t)(n ? lat[n / 2] : 0), "wait_p99_ms",
                      (json_int_t)(n ? lat[n * 99 / 100] : 0), "wait_max_ms",
                      (json_int_t)(n ? lat[n - 1] : 0)));
        free(lat);
}

/* ---- (f) the projector ----------------------------------------------------
 */

/* Every workflow of the run the projector at port lists: id -> entry. */
static json_t *projector_list(check_t *ck, int port)
{
        json_t *all = json_object();
        char path[1200], cursor[512] = "";
        for (;;) {
                http_res_t r;
                const json_t *w, *next;
                size_t i;
                snprintf(path, sizeof(path),
                         "/api/v1/workflows?prefix=%s&limit=1000%s%s",
                         ck->prefix, *cursor ? "&cursor=" : "", cursor);
                r = http_req(port, "GET", path, NULL);
                if (r.status != 200 || !r.json) {
                        http_res_free(&r);
                        json_decref(all);
                        return NULL;
                }
                json_array_foreach(json_object_get(r.json, "workflows"), i, w)
                {
                        json_object_set(all, sget(w, "workflow_id"),
                                        (json_t *)w);
                }
                next = json_object_get(r.json, "next_cursor");
                snprintf(cursor, sizeof(cursor), "%s",
                         json_is_string(next) ? json_string_value(next) : "");
                http_res_free(&r);
                if (!*cursor)
                        return all;
        }
}

/* Differences between the projector's list and the checker's view:
 * how many, the first ones described in diffs. */
static int projector_diff(check_t *ck, const json_t *list, json_t *diffs)
{
        int n = 0;
        const char *id;
        const json_t *w;
        for (size_t i = 0; i < ck->nwfs; i++) {
                const wf_t *wf = &ck->wfs[i];
                char d[600] = "";
                if (!wf->runs)
                        continue;
                w = json_object_get(list, wf->id);
                if (!w)
                        snprintf(d, sizeof(d), "%s: not listed", wf->id);
                else if (strcmp(sget(w, "status"), status_of(wf)) ||
                         strcmp(sget(w, "run_id"), wf->run) ||
                         iget(w, "history_length") != wf->last_seq)
                        snprintf(d, sizeof(d),
                                 "%s: projector %s, run %s, %lld events; "
                                 "history %s, run %s, %lld events",
                                 wf->id, sget(w, "status"), sget(w, "run_id"),
                                 (long long)iget(w, "history_length"),
                                 status_of(wf), wf->run,
                                 (long long)wf->last_seq);
                if (*d && n++ < 10)
                        json_array_append_new(diffs, json_string(d));
        }
        json_object_foreach((json_t *)list, id, w)
        {
                json_t *at = json_object_get(ck->index, id);
                if (!at || !ck->wfs[json_integer_value(at)].runs) {
                        char d[600];
                        snprintf(d, sizeof(d), "%s: listed, not in history",
                                 id);
                        if (n++ < 10)
                                json_array_append_new(diffs, json_string(d));
                }
        }
        return n;
}

/* Compare a closed workflow's result or failure with the projector's
 * state of it; 1 if they agree. */
static int projector_detail(int port, const wf_t *wf)
{
        char path[600], a[1024], b[1024];
        const json_t *rec = json_object_get(wf->close, "record");
        http_res_t r;
        int ok;
        snprintf(path, sizeof(path), "/api/v1/workflows/%s", wf->id);
        r = http_req(port, "GET", path, NULL);
        ok = r.status == 200 && r.json;
        if (ok && !strcmp(status_of(wf), "completed")) {
                json_t *want = loads(sget(rec, "result"));
                ok = json_equal(want, json_object_get(r.json, "result"));
                json_decref(want);
        } else if (ok && !strcmp(status_of(wf), "failed")) {
                snprintf(a, sizeof(a), "%s",
                         sget(json_object_get(rec, "failure"), "type"));
                snprintf(b, sizeof(b), "%s",
                         sget(json_object_get(r.json, "failure"), "type"));
                ok = !strcmp(a, b);
        }
        if (ok)
                ok = !strcmp(sget(r.json, "status"), status_of(wf));
        http_res_free(&r);
        return ok;
}

static void check_projector(check_t *ck, int port, int wait_ms, int details)
{
        int64_t deadline = e2e_now_ms() + wait_ms;
        json_t *list = NULL, *diffs = NULL;
        int n = -1, closed = 0, checked = 0, step;
        size_t i;

        while (e2e_now_ms() < deadline &&
               http_status(port, "GET", "/readyz") != 200)
                e2e_sleep_ms(200);
        /* It may still be catching up: agree within wait_ms. */
        do {
                json_decref(list);
                json_decref(diffs);
                diffs = json_array();
                list = projector_list(ck, port);
                n = list ? projector_diff(ck, list, diffs) : -1;
                if (n != 0)
                        e2e_sleep_ms(500);
        } while (n != 0 && e2e_now_ms() < deadline);
        if (n < 0) {
                violation(ck, V_PROJECTOR,
                          "no list from the projector on port %d", port);
        } else {
                const json_t *d;
                json_array_foreach(diffs, i, d)
                {
                        violation(ck, V_PROJECTOR, "%s", json_string_value(d));
                }
                if (n > (int)json_array_size(diffs))
                        ck->v[V_PROJECTOR] +=
                            (uint64_t)n - json_array_size(diffs);
        }
        for (i = 0; i < ck->nwfs; i++)
                closed += ck->wfs[i].close != NULL;
        step = details > 0 && closed > details ? closed / details : 1;
        for (i = 0; details > 0 && i < ck->nwfs; i++) {
                const wf_t *wf = &ck->wfs[i];
                if (!wf->close || (int)i % step)
                        continue;
                checked++;
                if (!projector_detail(port, wf))
                        violation(ck, V_PROJECTOR,
                                  "%s: the projector's state differs from "
                                  "its history's close (%s)",
                                  wf->id, status_of(wf));
        }
        json_object_set_new(ck->figures, "projector",
                            json_pack("{si si si}", "listed",
                                      list ? (int)json_object_size(list) : -1,
                                      "differences", n, "states_compared",
                                      checked));
        json_decref(list);
        json_decref(diffs);
}

static void check_free(check_t *ck)
{
        for (size_t i = 0; i < ck->nwfs; i++) {
                wf_t *wf = &ck->wfs[i];
                free(wf->id);
                json_decref(wf->cmds);
                json_decref(wf->close);
                json_decref(wf->acts);
                json_decref(wf->done);
                json_decref(wf->started);
        }
        free(ck->wfs);
        for (int p = 0; p < ck->nparts; p++) {
                keel__history_reader_destroy(&ck->parts[p].hr);
                free(ck->parts[p].claims);
                free(ck->parts[p].offs);
        }
        free(ck->parts);
        json_decref(ck->index);
        json_decref(ck->outcomes);
        json_decref(ck->event_types);
        json_decref(ck->completions);
        json_decref(ck->inbox_types);
        json_decref(ck->dead);
        json_decref(ck->attempts);
        json_decref(ck->effects);
        json_decref(ck->effect_types);
        json_decref(ck->examples);
        json_decref(ck->figures);
}

/* ---- the report ------------------------------------------------------------
 */

static uint64_t total_violations(const check_t *ck)
{
        uint64_t t = 0;
        for (int k = 0; k < V_N; k++)
                t += ck->v[k];
        return t;
}

static void report(check_t *ck, FILE *out)
{
        const json_t *h = json_object_get(ck->figures, "history");
        const json_t *pj = json_object_get(ck->figures, "projector");
        const char *key;
        const json_t *v;
        size_t i;

        fprintf(out, "keel-check: workflows \"%s*\" on %s\n", ck->prefix,
                ck->bootstrap);
        fprintf(out,
                "  keel.inbox    %llu records read (%llu undecodable), "
                "the run's:",
                (unsigned long long)ck->inbox_records,
                (unsigned long long)ck->inbox_undecodable);
        json_object_foreach(ck->inbox_types, key, v)
        {
                fprintf(out, " %s %lld", key, (long long)json_integer_value(v));
        }
        fprintf(out,
                "\n  keel.history  %lld records read_committed in %lld "
                "partitions (%lld more only read_uncommitted: aborted "
                "transactions)\n",
                (long long)iget(h, "records"), (long long)iget(h, "partitions"),
                (long long)iget(h, "aborted_records"));
        fprintf(out,
                "                %lld claims, %lld batches; %lld events "
                "applied (%lld of the run); ignored by the reader "
                "rules: %lld fenced records, %lld torn events\n",
                (long long)iget(h, "claims"), (long long)iget(h, "batches"),
                (long long)iget(h, "events_applied"),
                (long long)iget(h, "run_events_applied"),
                (long long)iget(h, "fenced_records"),
                (long long)iget(h, "torn_events"));
        fprintf(out, "  events       ");
        json_object_foreach(ck->event_types, key, v)
        {
                fprintf(out, " %s %lld", key, (long long)json_integer_value(v));
        }
        fprintf(out,
                "\n  keel.dlq      %llu records, %llu of keel.inbox "
                "commands\n",
                (unsigned long long)ck->dlq_records,
                (unsigned long long)json_object_size(ck->dead));
        fprintf(out, "  workflows     %lld started",
                (long long)iget(ck->figures, "workflows_started"));
        if (ck->expect >= 0)
                fprintf(out, " (%d expected)", ck->expect);
        fprintf(out, "; outcomes:\n");
        json_object_foreach(json_object_get(ck->figures, "outcomes"), key, v)
        {
                fprintf(out, "                %7lld  %s\n",
                        (long long)json_integer_value(v), key);
        }
        fprintf(out, "  effects       %llu lines of the run:",
                (unsigned long long)ck->effect_lines);
        json_object_foreach(ck->effect_types, key, v)
        {
                fprintf(out, " %s %lld", key, (long long)json_integer_value(v));
        }
        fprintf(out, "; %zu activities completed\n",
                json_object_size(ck->completions));
        {
                const json_t *at = json_object_get(ck->figures, "attempts");
                fprintf(out,
                        "  attempts      %lld sent to workers, %lld "
                        "answered; waited for an answer: p50 %lld ms, "
                        "p99 %lld ms, max %lld ms\n",
                        (long long)iget(at, "sent"),
                        (long long)iget(at, "answered"),
                        (long long)iget(at, "wait_p50_ms"),
                        (long long)iget(at, "wait_p99_ms"),
                        (long long)iget(at, "wait_max_ms"));
        }
        if (pj)
                fprintf(out,
                        "  projector     %lld listed, %lld differences, "
                        "%lld states compared\n",
                        (long long)iget(pj, "listed"),
                        (long long)iget(pj, "differences"),
                        (long long)iget(pj, "states_compared"));
        json_array_foreach(ck->examples, i, v)
        {
                fprintf(out, "  VIOLATION %s\n", json_string_value(v));
        }
        fprintf(out, "keel-check: violations total=%llu",
                (unsigned long long)total_violations(ck));
        for (int k = 0; k < V_N; k++)
                fprintf(out, " %s=%llu", vnames[k],
                        (unsigned long long)ck->v[k]);
        fprintf(out, "\n");
}

static void write_json(check_t *ck, const char *path)
{
        json_t *viol = json_object();
        for (int k = 0; k < V_N; k++)
                json_object_set_new(viol, vnames[k],
                                    json_integer((json_int_t)ck->v[k]));
        json_object_set_new(ck->figures, "violations", viol);
        json_object_set_new(ck->figures, "violations_total",
                            json_integer((json_int_t)total_violations(ck)));
        json_object_set(ck->figures, "examples", ck->examples);
        json_object_set(ck->figures, "events", ck->event_types);
        json_object_set_new(ck->figures, "effects",
                            json_pack("{sI sO}", "lines",
                                      (json_int_t)ck->effect_lines,
                                      "by_activity", ck->effect_types));
        json_object_set_new(
            ck->figures, "dead_letters_of_inbox",
            json_integer((json_int_t)json_object_size(ck->dead)));
        if (json_dump_file(ck->figures, path, JSON_INDENT(2) | JSON_SORT_KEYS))
                fprintf(stderr, "keel-check: cannot write %s\n", path);
}

static const char usage[] =
    "Usage: keel-check --bootstrap HOST:PORT [OPTIONS]\n"
    "Read keel.inbox, keel.history and keel.dlq to their ends and check the\n"
    "workflows whose IDs start with --prefix (default: all).\n\n"
    "  --prefix P            the run's workflow IDs start with P\n"
    "  --expect N            the run started N workflows\n"
    "  --effects FILE        an effect log of the payment worker "
    "(repeatable)\n"
    "  --projector PORT      compare keel-projector on 127.0.0.1:PORT\n"
    "  --projector-states N  compare the state of N closed workflows "
    "(default 1000)\n"
    "  --json FILE           write the figures and violations as JSON\n"
    "  --timeout-ms MS       for reading each topic (default 120000)\n"
    "  --trace ID            print every record the topics hold of workflow "
    "ID\n"
    "  --latencies FILE      write each activity attempt's sent and answered "
    "times\n"
    "Exit: 0 no violation, 1 violations, 2 usage or a topic not read.\n";

int main(int argc, char **argv)
{
        static const struct option opts[] = {
            {"bootstrap", required_argument, NULL, 'b'},
            {"prefix", required_argument, NULL, 'p'},
            {"expect", required_argument, NULL, 'e'},
            {"effects", required_argument, NULL, 'f'},
            {"projector", required_argument, NULL, 'P'},
            {"projector-states", required_argument, NULL, 'S'},
            {"json", required_argument, NULL, 'j'},
            {"timeout-ms", required_argument, NULL, 't'},
            {"trace", required_argument, NULL, 'T'},
            {"latencies", required_argument, NULL, 'L'},
            {"help", no_argument, NULL, 'h'},
            {NULL, 0, NULL, 0}};
        check_t ck;
        char *effects[16];
        const char *json_out = NULL;
        int neffects = 0, port = 0, states = 1000, opt, ok, rc;
        int64_t t0 = e2e_now_ms(), t1;

        memset(&ck, 0, sizeof(ck));
        ck.prefix = "";
        ck.expect = -1;
        ck.timeout_ms = 120000;
        while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
                switch (opt) {
                case 'b':
                        ck.bootstrap = optarg;
                        break;
                case 'p':
                        ck.prefix = optarg;
                        break;
                case 'e':
                        ck.expect = atoi(optarg);
                        break;
                case 'f':
                        if (neffects < 16)
                                effects[neffects++] = optarg;
                        break;
                case 'P':
                        port = atoi(optarg);
                        break;
                case 'S':
                        states = atoi(optarg);
                        break;
                case 'j':
                        json_out = optarg;
                        break;
                case 't':
                        ck.timeout_ms = atoi(optarg);
                        break;
                case 'T':
                        ck.trace = optarg;
                        break;
                case 'L':
                        ck.latencies = optarg;
                        break;
                case 'h':
                        fputs(usage, stdout);
                        return 0;
                default:
                        fputs(usage, stderr);
                        return 2;
                }
        }
        if (!ck.bootstrap || optind != argc) {
                fputs(usage, stderr);
                return 2;
        }
        /* The references' workflows log what they do: not here. */
        keel_log_set_level(KEEL_LOG_ERROR);
        ck.plen = strlen(ck.prefix);
        ck.index = json_object();
        ck.outcomes = json_object();
        ck.event_types = json_object();
        ck.completions = json_object();
        ck.inbox_types = json_object();
        ck.dead = json_object();
        ck.attempts = json_object();
        ck.effects = json_object();
        ck.effect_types = json_object();
        ck.examples = json_array();
        ck.figures = json_object();

        ok =
            e2e_read_topic(ck.bootstrap, KEEL_TOPIC_INBOX, "read_committed",
                           ck.timeout_ms, on_inbox, &ck) &&
            e2e_read_topic(ck.bootstrap, KEEL_TOPIC_HISTORY, "read_committed",
                           ck.timeout_ms, on_history, &ck) &&
            e2e_read_topic(ck.bootstrap, KEEL_TOPIC_HISTORY, "read_uncommitted",
                           ck.timeout_ms, on_history_uncommitted, &ck) &&
            e2e_read_topic(ck.bootstrap, KEEL_TOPIC_DLQ, "read_committed",
                           ck.timeout_ms, on_dlq, &ck);
        json_object_set_new(ck.figures, "read_ms",
                            json_integer(e2e_now_ms() - t0));
        if (!ok) {
                fprintf(stderr,
                        "keel-check: could not read keel's topics on "
                        "%s to their ends\n",
                        ck.bootstrap);
                check_free(&ck);
                return 2;
        }
        check_partitions(&ck);
        t1 = e2e_now_ms();
        check_workflows(&ck);
        json_object_set_new(ck.figures, "workflows_ms",
                            json_integer(e2e_now_ms() - t1));
        attempt_figures(&ck);
        if (neffects && check_effects(&ck, effects, neffects)) {
                check_free(&ck);
                return 2;
        }
        if (port > 0)
                check_projector(&ck, port, 60000, states);
        json_object_set_new(ck.figures, "check_ms",
                            json_integer(e2e_now_ms() - t0));
        report(&ck, stdout);
        if (json_out)
                write_json(&ck, json_out);
        rc = total_violations(&ck) ? 1 : 0;
        check_free(&ck);
        return rc;
}
