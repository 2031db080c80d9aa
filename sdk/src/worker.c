/*
 * worker.c: the activity worker (keel/worker.h). The thread that calls
 * keel_worker_run() owns the consumer: it polls keel.tasks.<queue>, serves
 * rebalances, takes no more tasks while it holds twice as many as it has
 * handler threads, and commits. Each assigned partition's records go to a
 * queue of the worker's own (a forwarded partition queue) which it reads
 * only while it has room, so librdkafka keeps fetching ahead, within
 * queued.max.messages.kbytes a partition, and a freed handler finds the
 * next task at once (pausing the partitions instead purges what was
 * fetched, and librdkafka fetches again only up to a second after a
 * resume). A pool of worker.concurrency threads runs handlers through
 * keel__activity_run() and produces their results to keel.inbox; a
 * delivery thread polls the idempotent producer, whose delivery reports
 * mark tasks finished. Each partition keeps its tasks in offset order, so
 * the commit position is the first unfinished task (or the offset after
 * the last record consumed): a crash or a revoked partition never skips a
 * task whose result was not delivered. An ActivityCancel on the same
 * topic marks its task cancelled: a queued one is answered with a
 * "Cancelled" failure without running, a running one learns it from its
 * next heartbeat; the cancel itself is finished once read. Other records
 * are sent to keel.dlq and count as finished once that is delivered. One
 * mutex guards tasks, the run queue and the counters; the partition table
 * belongs to the consumer thread.
 */
#include "keel/worker.h"

#include "activity_int.h"
#include "clock_int.h"
#include "config_int.h"
#include "keel/codec.h"
#include "keel/error.h"
#include "keel/log.h"
#include "keel/partition.h"
#include "keel/topics.h"

#include <librdkafka/rdkafka.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define COMPONENT          "worker"
#define TASK_TYPE          "keel.tasks.ActivityTask"
#define CANCEL_TYPE        "keel.tasks.ActivityCancel"
#define POLL_MS            100
#define PAUSED_POLL_MS     5
#define COMMIT_INTERVAL_MS 200
#define RETRY_BACKOFF_MS   1000
#define QUEUE_FULL_WAIT_MS 50
#define FLUSH_MS           1000

typedef enum task_state_e {
        T_QUEUED,     /* in the run queue */
        T_RUNNING,    /* a thread runs its handler */
        T_DELIVERING, /* its record is with the producer */
        T_RETRY,      /* delivery failed; produce again at retry_at */
        T_DONE,       /* delivered, or nothing to send */
} task_state_t;

typedef struct task_s {
        keel_worker_t *w;
        struct task_s *pnext; /* next of its partition by offset, or orphan */
        struct task_s *qnext; /* next in the run queue */
        int32_t partition;
        int64_t offset;
        task_state_t state;
        int abandoned;   /* its partition is no longer ours: drop results */
        int shrunk;      /* out_rec was already replaced by a smaller one */
        int cancelled;   /* an ActivityCancel came for it */
        json_t *task;    /* the ActivityTask; NULL for a dead letter */
        unsigned hb_seq; /* heartbeats sent (handler thread only) */
        /* The record to deliver: */
        const char *out_type; /* codec type name (static) */
        json_t *out_rec;
        const char *out_topic;
        int32_t out_partition;
        char *out_key;
        size_t out_key_len;
        unsigned char *out;
        size_t out_len;
        int64_t retry_at; /* monotonic ms */
} task_t;

typedef struct part_s {
        task_t *head, *tail; /* tasks by offset */
        int64_t next;        /* offset after the last record consumed, -1 */
        int64_t committed;   /* offset last committed, -1 if none/unknown */
        int revoking;
} part_t;

typedef struct handler_s {
        char *type;
        keel_activity_fn_t fn;
        void *opaque;
} handler_t;

struct keel_worker_s {
        char *queue, *topic, *group, *worker_id;
        int concurrency;
        int64_t grace_ms, timeout_ms;
        rd_kafka_t *consumer, *producer;
        rd_kafka_queue_t *taskq; /* assigned partitions' records */
        int32_t inbox_partitions;

        handler_t *handlers; /* fixed once run starts */
        size_t n_handlers;

        /* Consumer thread only. */
        part_t **parts; /* by partition number */
        int32_t n_parts;
        int full, stopping, closed;
        int64_t stop_deadline;

        pthread_mutex_t lock;
        pthread_cond_t work_cv; /* a task was queued, or quit */
        pthread_cond_t done_cv; /* a task changed state */
        /* Under lock: */
        task_t *q_head, *q_tail;
        task_t *orphans; /* tasks of partitions given up, not yet done */
        int active;      /* tasks queued or running */
        int running;     /* handlers running */
        int n_retry;     /* tasks in T_RETRY */
        int quit;        /* handler threads: exit */
        int quiesced;    /* run is over: drop late results */

        pthread_t *threads;
        int n_threads;
        pthread_t dr_thread;
        int dr_started;
        atomic_int dr_quit;

        atomic_int started, stop, fatal;
        atomic_uint_fast64_t st_started, st_completed, st_failed,
            st_undecodable, st_heartbeats, st_cancels, st_cancels_unmatched;
};

/* ---- small helpers ------------------------------------------------------ */

static int64_t mono_ms(void)
{
        return keel__clock_ms(CLOCK_MONOTONIC);
}

static int64_t wall_ms(void)
{
        return keel__clock_ms(CLOCK_REALTIME);
}

static void fmt_err(char *errstr, size_t errstr_size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void fmt_err(char *errstr, size_t errstr_size, const char *fmt, ...)
{
        va_list ap;
        if (!errstr || !errstr_size)
                return;
        va_start(ap, fmt);
        vsnprintf(errstr, errstr_size, fmt, ap);
        va_end(ap);
}

static char *dup_printf(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));

static char *dup_printf(const char *fmt, ...)
{
        va_list ap;
        int n;
        char *s;

        va_start(ap, fmt);
        n = vsnprintf(NULL, 0, fmt, ap);
        va_end(ap);
        if (n < 0 || !(s = malloc((size_t)n + 1)))
                return NULL;
        va_start(ap, fmt);
        vsnprintf(s, (size_t)n + 1, fmt, ap);
        va_end(ap);
        return s;
}

static const char *tstr(const json_t *task, const char *key)
{
        const char *s = json_string_value(json_object_get(task, key));
        return s ? s : "";
}

static int tattempt(const json_t *task)
{
        return (int)json_integer_value(json_object_get(task, "attempt"));
}

static void cond_wait_until(pthread_cond_t *cv, pthread_mutex_t *mu,
                            int64_t until_mono_ms)
{
        struct timespec ts;
        ts.tv_sec = (time_t)(until_mono_ms / 1000);
        ts.tv_nsec = (long)(until_mono_ms % 1000) * 1000000L;
        pthread_cond_timedwait(cv, mu, &ts);
}

static const handler_t *find_handler(const keel_worker_t *w, const char *type)
{
        for (size_t i = 0; i < w->n_handlers; i++)
                if (!strcmp(w->handlers[i].type, type))
                        return &w->handlers[i];
        return NULL;
}

/* ---- tasks -------------------------------------------------------------- */

static void task_free(task_t *t)
{
        if (!t)
                return;
        json_decref(t->task);
        json_decref(t->out_rec);
        free(t->out_key);
        free(t->out);
        free(t);
}

/* Encode t->out_rec into t->out. */
static int task_encode(task_t *t, char *errstr, size_t errstr_size)
{
        free(t->out);
        t->out = NULL;
        t->out_len = 0;
        return keel_codec_encode(t->out_type, t->out_rec, &t->out, &t->out_len,
                                 errstr, errstr_size);
}

/* A non-retryable ActivityFailed for task, as the handler's result would
 * be (new reference; NULL if out of memory). */
static json_t *failure_rec(const keel_worker_t *w, const json_t *task,
                           const char *type, const char *message)
{
        char *command_id =
            dup_printf("%s/%d", tstr(task, "idempotency_key"), tattempt(task));
        json_t *rec =
            command_id ? json_pack("{ss ss sI ss ss si ss s{ss ss ss sb}}",
                                   "workflow_id", tstr(task, "workflow_id"),
                                   "command_id", command_id, "ts",
                                   (json_int_t)wall_ms(), "run_id",
                                   tstr(task, "run_id"), "activity_id",
                                   tstr(task, "activity_id"), "attempt",
                                   tattempt(task), "worker_id", w->worker_id,
                                   "failure", "type", type, "message", message,
                                   "details", "null", "non_retryable", 1)
                       : NULL;
        free(command_id);
        return rec;
}

/*
 * Replace t's record by a smaller one after it could not be encoded or
 * the broker refused its size: a result becomes a non-retryable
 * ActivityFailed, a dead letter loses the original key and value.
 * Returns KEEL_OK with t->out re-encoded, or an error if t cannot shrink.
 */
static int task_shrink(keel_worker_t *w, task_t *t, const char *why)
{
        json_t *rec;
        char err[256];

        if (t->shrunk)
                return KEEL_ERR_TOO_LARGE;
        t->shrunk = 1;
        if (t->task) {
                if (!(rec = failure_rec(w, t->task, "ResultTooLarge", why)))
                        return KEEL_ERR_NOMEM;
                json_decref(t->out_rec);
                t->out_rec = rec;
                t->out_type = "keel.inbox.ActivityFailed";
        } else {
                char reason[512];
                snprintf(reason, sizeof(reason),
                         "%s (original key and value "
                         "omitted: %s)",
                         tstr(t->out_rec, "reason"), why);
                if (json_object_set_new(t->out_rec, "key", json_null()) ||
                    json_object_set_new(t->out_rec, "value", json_null()) ||
                    json_object_set_new(t->out_rec, "reason",
                                        json_string(reason)))
                        return KEEL_ERR_NOMEM;
        }
        return task_encode(t, err, sizeof(err));
}

/* Hand t's record to the producer. Called with w->lock held; sets t's
 * state to T_DELIVERING, T_RETRY or (if it cannot be sent) T_DONE. */
static void produce_locked(keel_worker_t *w, task_t *t)
{
        rd_kafka_resp_err_t err;

        for (;;) {
                err = rd_kafka_producev(
                    w->producer, RD_KAFKA_V_TOPIC(t->out_topic),
                    RD_KAFKA_V_PARTITION(t->out_partition),
                    RD_KAFKA_V_KEY(t->out_key, t->out_key_len),
                    RD_KAFKA_V_VALUE(t->out, t->out_len), RD_KAFKA_V_OPAQUE(t),
                    RD_KAFKA_V_END);
                if (err != RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE ||
                    task_shrink(w, t, "record larger than message.max.bytes"))
                        break;
        }
        if (!err) {
                t->state = T_DELIVERING;
                return;
        }
        if (err == RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE) {
                keel_log(KEEL_LOG_ERROR, COMPONENT,
                         "msg=\"record too large to send, dropped\" type=%s "
                         "workflow_id=%s activity_id=%s attempt=%d topic=%s "
                         "source_partition=%d source_offset=%lld",
                         t->out_type, tstr(t->task, "workflow_id"),
                         tstr(t->task, "activity_id"), tattempt(t->task),
                         t->out_topic, (int)t->partition, (long long)t->offset);
                t->state = T_DONE;
                return;
        }
        keel_log(err == RD_KAFKA_RESP_ERR__QUEUE_FULL ? KEEL_LOG_DEBUG
                                                      : KEEL_LOG_WARN,
                 COMPONENT,
                 "msg=\"produce failed, will retry\" type=%s workflow_id=%s "
                 "activity_id=%s attempt=%d topic=%s error=%s",
                 t->out_type, tstr(t->task, "workflow_id"),
                 tstr(t->task, "activity_id"), tattempt(t->task), t->out_topic,
                 rd_kafka_err2name(err));
        if (t->state != T_RETRY)
                w->n_retry++;
        t->state = T_RETRY;
        t->retry_at = mono_ms() + (err == RD_KAFKA_RESP_ERR__QUEUE_FULL
                                       ? QUEUE_FULL_WAIT_MS
                                       : RETRY_BACKOFF_MS);
}

/* Produce again every task whose retry is due (lock held, consumer
 * thread). */
static void retry_due_locked(keel_worker_t *w)
{
        int64_t now;

        if (!w->n_retry)
                return;
        now = mono_ms();
        for (int32_t p = 0; p < w->n_parts; p++) {
                if (!w->parts[p])
                        continue;
                for (task_t *t = w->parts[p]->head; t; t = t->pnext) {
                        if (t->state != T_RETRY || t->retry_at > now)
                                continue;
                        w->n_retry--;
                        t->state = T_DELIVERING; /* not counted twice */
                        produce_locked(w, t);
                }
        }
}

/* Give t up: it belongs to a partition being released while it still
 * runs or delivers. Lock held. */
static void abandon_locked(keel_worker_t *w, task_t *t)
{
        t->abandoned = 1;
        if (t->state == T_RETRY) {
                w->n_retry--;
                t->state = T_DONE;
        }
        t->pnext = w->orphans;
        w->orphans = t;
}

/* Free orphans that are done (lock held). */
static void reap_orphans_locked(keel_worker_t *w)
{
        task_t **pp = &w->orphans;
        while (*pp) {
                task_t *t = *pp;
                if (t->state == T_DONE) {
                        *pp = t->pnext;
                        task_free(t);
                } else {
                        pp = &t->pnext;
                }
        }
}

/* ---- partitions (consumer thread) --------------------------------------- */

static part_t *part_find(const keel_worker_t *w, int32_t p)
{
        return p >= 0 && p < w->n_parts ? w->parts[p] : NULL;
}

static part_t *part_get(keel_worker_t *w, int32_t p)
{
        part_t *pt;

        if (p < 0)
                return NULL;
        if (p >= w->n_parts) {
                int32_t n = p + 1;
                part_t **np = realloc(w->parts, (size_t)n * sizeof(*np));
                if (!np)
                        return NULL;
                for (int32_t i = w->n_parts; i < n; i++)
                        np[i] = NULL;
                w->parts = np;
                w->n_parts = n;
        }
        if (!w->parts[p]) {
                if (!(pt = calloc(1, sizeof(*pt))))
                        return NULL;
                pt->next = -1;
                pt->committed = -1;
                w->parts[p] = pt;
        }
        return w->parts[p];
}

/* Where the partition's committed offset may go: its first unfinished
 * task, or past the last record consumed; -1 if nothing was consumed. */
static int64_t part_position_locked(const part_t *pt)
{
        for (const task_t *t = pt->head; t; t = t->pnext)
                if (t->state != T_DONE)
                        return t->offset;
        return pt->next;
}

/* Free the finished tasks at the head of the partition (lock held). */
static void part_prune_locked(part_t *pt)
{
        while (pt->head && pt->head->state == T_DONE) {
                task_t *t = pt->head;
                pt->head = t->pnext;
                task_free(t);
        }
        if (!pt->head)
                pt->tail = NULL;
}

/* Does a task of a partition being revoked (or of any partition, when
 * all is set) still run or deliver? Lock held. */
static int busy_locked(const keel_worker_t *w, int all)
{
        for (int32_t p = 0; p < w->n_parts; p++) {
                const part_t *pt = w->parts[p];
                if (!pt || (!all && !pt->revoking))
                        continue;
                for (const task_t *t = pt->head; t; t = t->pnext)
                        if (t->state == T_RUNNING || t->state == T_DELIVERING ||
                            t->state == T_RETRY)
                                return 1;
        }
        return 0;
}

/* Take the queued tasks of revoking partitions (or all, when all is set)
 * out of the run queue: they were never started and stay unfinished in
 * their partition. Lock held. */
static void unqueue_locked(keel_worker_t *w, int all)
{
        task_t **pp = &w->q_head;
        w->q_tail = NULL;
        while (*pp) {
                task_t *t = *pp;
                const part_t *pt = part_find(w, t->partition);
                if (all || !pt || pt->revoking) {
                        *pp = t->qnext;
                        t->qnext = NULL;
                        w->active--;
                } else {
                        w->q_tail = t;
                        pp = &t->qnext;
                }
        }
}

/* Wait (lock held) until no task of the partitions concerned runs or
 * delivers, or until deadline (monotonic ms). */
static void wait_idle_locked(keel_worker_t *w, int all, int64_t deadline)
{
        for (;;) {
                int64_t now = mono_ms();
                retry_due_locked(w);
                if (!busy_locked(w, all) || now >= deadline)
                        return;
                cond_wait_until(&w->done_cv, &w->lock,
                                now + POLL_MS < deadline ? now + POLL_MS
                                                         : deadline);
        }
}

/*
 * Commit the position of every partition that moved (or only of the
 * revoking ones). Consumer thread. async: periodic commits; failures come
 * back through on_commit and are retried on the next tick.
 */
static void commit_positions(keel_worker_t *w, int only_revoking, int async)
{
        rd_kafka_topic_partition_list_t *list;
        rd_kafka_resp_err_t err;

        list =
            rd_kafka_topic_partition_list_new(w->n_parts > 0 ? w->n_parts : 1);
        pthread_mutex_lock(&w->lock);
        for (int32_t p = 0; p < w->n_parts; p++) {
                part_t *pt = w->parts[p];
                int64_t pos;
                if (!pt || (only_revoking && !pt->revoking))
                        continue;
                part_prune_locked(pt);
                pos = part_position_locked(pt);
                if (pos < 0 || pos == pt->committed)
                        continue;
                rd_kafka_topic_partition_list_add(list, w->topic, p)->offset =
                    pos;
                pt->committed = pos;
        }
        pthread_mutex_unlock(&w->lock);
        if (list->cnt) {
                err = rd_kafka_commit(w->consumer, list, async);
                if (err && err != RD_KAFKA_RESP_ERR__NO_OFFSET) {
                        keel_log(KEEL_LOG_WARN, COMPONENT,
                                 "msg=\"offset commit failed\" topic=%s "
                                 "partitions=%d error=%s",
                                 w->topic, list->cnt, rd_kafka_err2name(err));
                        for (int i = 0; i < list->cnt; i++) {
                                part_t *pt =
                                    part_find(w, list->elems[i].partition);
                                if (pt)
                                        pt->committed = -1;
                        }
                } else if (!async) {
                        for (int i = 0; i < list->cnt; i++)
                                keel_log(KEEL_LOG_DEBUG, COMPONENT,
                                         "msg=committed topic=%s "
                                         "partition=%d offset=%lld",
                                         w->topic, list->elems[i].partition,
                                         (long long)list->elems[i].offset);
                }
        }
        rd_kafka_topic_partition_list_destroy(list);
}

/* Pause (or resume) every partition assigned to the consumer. */
static void pause_all(keel_worker_t *w, int pause)
{
        rd_kafka_topic_partition_list_t *list = NULL;

        if (rd_kafka_assignment(w->consumer, &list) || !list)
                return;
        if (list->cnt)
                (pause ? rd_kafka_pause_partitions
                       : rd_kafka_resume_partitions)(w->consumer, list);
        rd_kafka_topic_partition_list_destroy(list);
}

static void list_partitions(const rd_kafka_topic_partition_list_t *list,
                            char *buf, size_t size)
{
        size_t n = 0;
        buf[0] = '\0';
        for (int i = 0; i < list->cnt && n + 12 < size; i++)
                n += (size_t)snprintf(buf + n, size - n, "%s%d", i ? "," : "",
                                      list->elems[i].partition);
}

/*
 * Release revoked partitions: stop starting their queued tasks, give the
 * running ones until the grace deadline, commit below the first
 * unfinished task, and forget them. Consumer thread (rebalance callback,
 * also during consumer close).
 */
static void release_partitions(keel_worker_t *w,
                               const rd_kafka_topic_partition_list_t *list,
                               int lost)
{
        int64_t deadline = lost          ? mono_ms()
                           : w->stopping ? w->stop_deadline
                                         : mono_ms() + w->grace_ms;
        int abandoned = 0;
        char parts[256];

        pthread_mutex_lock(&w->lock);
        for (int i = 0; i < list->cnt; i++) {
                part_t *pt = part_find(w, list->elems[i].partition);
                if (pt && !strcmp(list->elems[i].topic, w->topic))
                        pt->revoking = 1;
        }
        unqueue_locked(w, 0);
        wait_idle_locked(w, 0, deadline);
        pthread_mutex_unlock(&w->lock);

        if (!lost)
                commit_positions(w, 1, 0);

        pthread_mutex_lock(&w->lock);
        for (int32_t p = 0; p < w->n_parts; p++) {
                part_t *pt = w->parts[p];
                if (!pt || !pt->revoking)
                        continue;
                while (pt->head) {
                        task_t *t = pt->head;
                        pt->head = t->pnext;
                        if (t->state == T_DONE || t->state == T_QUEUED) {
                                task_free(t);
                        } else {
                                abandon_locked(w, t);
                                abandoned++;
                        }
                }
                free(pt);
                w->parts[p] = NULL;
        }
        pthread_cond_broadcast(&w->done_cv);
        pthread_mutex_unlock(&w->lock);

        list_partitions(list, parts, sizeof(parts));
        keel_log(KEEL_LOG_INFO, COMPONENT,
                 "msg=\"partitions revoked\" topic=%s partitions=%s lost=%d",
                 w->topic, parts, lost);
        if (abandoned)
                keel_log(KEEL_LOG_WARN, COMPONENT,
                         "msg=\"tasks still running after worker.grace.ms, "
                         "their results will be dropped and the tasks run "
                         "again\" tasks=%d grace_ms=%lld",
                         abandoned, (long long)w->grace_ms);
}

/* ---- Kafka callbacks ---------------------------------------------------- */

/* Send the records of list's partitions to the worker's task queue (on),
 * or stop doing so (off, on revoke). Records the consumer's own queue
 * still receives (fetched before this took effect) are read there. */
static void forward_partitions(keel_worker_t *w,
                               const rd_kafka_topic_partition_list_t *list,
                               int on)
{
        for (int i = 0; i < list->cnt; i++) {
                rd_kafka_queue_t *pq = rd_kafka_queue_get_partition(
                    w->consumer, list->elems[i].topic,
                    list->elems[i].partition);
                if (!pq)
                        continue;
                rd_kafka_queue_forward(pq, on ? w->taskq : NULL);
                rd_kafka_queue_destroy(pq);
        }
}

/* Consumer thread, from rd_kafka_consumer_poll() and close. */
static void on_rebalance(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                         rd_kafka_topic_partition_list_t *list, void *opaque)
{
        keel_worker_t *w = opaque;
        const char *proto = rd_kafka_rebalance_protocol(rk);
        int coop = proto && !strcmp(proto, "COOPERATIVE");
        rd_kafka_error_t *error = NULL;
        rd_kafka_resp_err_t aerr = RD_KAFKA_RESP_ERR_NO_ERROR;
        char parts[256];

        if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
                for (int i = 0; i < list->cnt; i++)
                        if (!part_get(w, list->elems[i].partition))
                                keel_log(KEEL_LOG_ERROR, COMPONENT,
                                         "msg=\"out of memory\"");
                if (coop)
                        error = rd_kafka_incremental_assign(rk, list);
                else
                        aerr = rd_kafka_assign(rk, list);
                forward_partitions(w, list, 1);
                if (w->stopping)
                        rd_kafka_pause_partitions(rk, list);
                list_partitions(list, parts, sizeof(parts));
                keel_log(KEEL_LOG_INFO, COMPONENT,
                         "msg=\"partitions assigned\" topic=%s "
                         "partitions=%s",
                         w->topic, parts);
        } else if (err == RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS) {
                release_partitions(w, list, rd_kafka_assignment_lost(rk));
                forward_partitions(w, list, 0);
                if (coop)
                        error = rd_kafka_incremental_unassign(rk, list);
                else
                        aerr = rd_kafka_assign(rk, NULL);
        } else {
                keel_log(KEEL_LOG_ERROR, COMPONENT,
                         "msg=\"rebalance failed\" error=%s",
                         rd_kafka_err2name(err));
                release_partitions(w, list, 1);
                aerr = rd_kafka_assign(rk, NULL);
        }
        if (error) {
                keel_log(KEEL_LOG_ERROR, COMPONENT,
                         "msg=\"assignment failed\" error=%s",
                         rd_kafka_error_name(error));
                rd_kafka_error_destroy(error);
        } else if (aerr) {
                keel_log(KEEL_LOG_ERROR, COMPONENT,
                         "msg=\"assignment failed\" error=%s",
                         rd_kafka_err2name(aerr));
        }
}

/* Consumer thread: results of asynchronous commits. */
static void on_commit(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                      rd_kafka_topic_partition_list_t *list, void *opaque)
{
        keel_worker_t *w = opaque;
        (void)rk;
        if (err == RD_KAFKA_RESP_ERR__NO_OFFSET || !list)
                return;
        for (int i = 0; i < list->cnt; i++) {
                rd_kafka_resp_err_t e = err ? err : list->elems[i].err;
                part_t *pt;
                if (!e)
                        continue;
                keel_log(KEEL_LOG_WARN, COMPONENT,
                         "msg=\"offset commit failed, will retry\" topic=%s "
                         "partition=%d offset=%lld error=%s",
                         list->elems[i].topic, list->elems[i].partition,
                         (long long)list->elems[i].offset,
                         rd_kafka_err2name(e));
                if ((pt = part_find(w, list->elems[i].partition)))
                        pt->committed = -1;
        }
}

/* Consumer thread or delivery thread. */
static void on_error(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
        keel_worker_t *w = opaque;
        char fatal[512];

        if (err == RD_KAFKA_RESP_ERR__FATAL) {
                rd_kafka_resp_err_t orig =
                    rd_kafka_fatal_error(rk, fatal, sizeof(fatal));
                keel_log(KEEL_LOG_ERROR, COMPONENT,
                         "msg=\"fatal Kafka client error, stopping\" "
                         "client=%s error=%s detail=\"%s\"",
                         rd_kafka_name(rk), rd_kafka_err2name(orig), fatal);
                atomic_store(&w->fatal, 1);
                return;
        }
        keel_log(KEEL_LOG_WARN, COMPONENT,
                 "msg=\"Kafka client error\" client=%s error=%s detail=\"%s\"",
                 rd_kafka_name(rk), rd_kafka_err2name(err), reason);
}

/* Delivery thread: a record was acknowledged or failed for good. */
static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m,
                        void *opaque)
{
        keel_worker_t *w = opaque;
        task_t *t = m->_private;
        (void)rk;

        if (!t) { /* a heartbeat: best effort */
                if (m->err)
                        keel_log(KEEL_LOG_WARN, COMPONENT,
                                 "msg=\"heartbeat not delivered\" error=%s",
                                 rd_kafka_err2name(m->err));
                return;
        }
        pthread_mutex_lock(&w->lock);
        if (!m->err) {
                t->state = T_DONE;
                if (t->task &&
                    !strcmp(t->out_type, "keel.inbox.ActivityCompleted"))
                        atomic_fetch_add(&w->st_completed, 1);
                else if (t->task)
                        atomic_fetch_add(&w->st_failed, 1);
                keel_log(KEEL_LOG_DEBUG, COMPONENT,
                         "msg=delivered type=%s workflow_id=%s "
                         "activity_id=%s attempt=%d topic=%s partition=%d "
                         "offset=%lld source_partition=%d "
                         "source_offset=%lld",
                         t->out_type, tstr(t->task, "workflow_id"),
                         tstr(t->task, "activity_id"), tattempt(t->task),
                         t->out_topic, (int)m->partition, (long long)m->offset,
                         (int)t->partition, (long long)t->offset);
        } else if (t->abandoned) {
                t->state = T_DONE;
        } else if (m->err == RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE &&
                   !task_shrink(w, t,
                                "the broker refused the record's "
                                "size")) {
                produce_locked(w, t);
        } else {
                keel_log(KEEL_LOG_WARN, COMPONENT,
                         "msg=\"delivery failed, will retry\" type=%s "
                         "workflow_id=%s activity_id=%s attempt=%d topic=%s "
                         "source_partition=%d source_offset=%lld error=%s",
                         t->out_type, tstr(t->task, "workflow_id"),
                         tstr(t->task, "activity_id"), tattempt(t->task),
                         t->out_topic, (int)t->partition, (long long)t->offset,
                         rd_kafka_err2name(m->err));
                w->n_retry++;
                t->state = T_RETRY;
                t->retry_at = mono_ms() + RETRY_BACKOFF_MS;
        }
        pthread_cond_broadcast(&w->done_cv);
        pthread_mutex_unlock(&w->lock);
}

static void *delivery_main(void *arg)
{
        keel_worker_t *w = arg;
        while (!atomic_load(&w->dr_quit))
                rd_kafka_poll(w->producer, POLL_MS);
        return NULL;
}

/* ---- handler threads ---------------------------------------------------- */

/* keel__heartbeat_fn_t: on a handler thread, during its handler. Sends an
 * ActivityHeartbeat (best effort); KEEL_ERR_CANCELLED once an
 * ActivityCancel came for the task or it is no longer this worker's. */
static int heartbeat(void *opaque, const json_t *task, const json_t *details)
{
        task_t *t = opaque;
        keel_worker_t *w = t->w;
        const char *wf = tstr(task, "workflow_id");
        char *text, *command_id;
        json_t *rec;
        unsigned char *buf = NULL;
        size_t len = 0;
        char err[256];
        int gone, rc;
        rd_kafka_resp_err_t kerr;

        pthread_mutex_lock(&w->lock);
        gone = t->abandoned || w->quiesced || t->cancelled;
        pthread_mutex_unlock(&w->lock);
        if (gone)
                return KEEL_ERR_CANCELLED;

        t->hb_seq++;
        text = json_dumps(details ? details : json_null(),
                          JSON_COMPACT | JSON_ENCODE_ANY | JSON_SORT_KEYS);
        command_id = dup_printf("%s/%d/hb/%u", tstr(task, "idempotency_key"),
                                tattempt(task), t->hb_seq);
        rec = text && command_id
                  ? json_pack(
                        "{ss ss sI ss ss si ss ss}", "workflow_id", wf,
                        "command_id", command_id, "ts", (json_int_t)wall_ms(),
                        "run_id", tstr(task, "run_id"), "activity_id",
                        tstr(task, "activity_id"), "attempt", tattempt(task),
                        "worker_id", w->worker_id, "details", text)
                  : NULL;
        free(text);
        free(command_id);
        if (!rec)
                return KEEL_OK; /* progress reports are best effort */
        rc = keel_codec_encode("keel.inbox.ActivityHeartbeat", rec, &buf, &len,
                               err, sizeof(err));
        json_decref(rec);
        if (rc) {
                keel_log(KEEL_LOG_WARN, COMPONENT,
                         "msg=\"heartbeat not sent\" workflow_id=%s "
                         "activity_id=%s attempt=%d error=%s detail=\"%s\"",
                         wf, tstr(task, "activity_id"), tattempt(task),
                         keel_err_name(rc), err);
                return KEEL_OK;
        }
        kerr = rd_kafka_producev(
            w->producer, RD_KAFKA_V_TOPIC(KEEL_TOPIC_INBOX),
            RD_KAFKA_V_PARTITION(
                keel_partition_of(wf, strlen(wf), w->inbox_partitions)),
            RD_KAFKA_V_KEY(wf, strlen(wf)), RD_KAFKA_V_VALUE(buf, len),
            RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_FREE), RD_KAFKA_V_OPAQUE(NULL),
            RD_KAFKA_V_END);
        if (kerr) {
                free(buf);
                keel_log(KEEL_LOG_WARN, COMPONENT,
                         "msg=\"heartbeat not sent\" workflow_id=%s "
                         "activity_id=%s attempt=%d error=%s",
                         wf, tstr(task, "activity_id"), tattempt(task),
                         rd_kafka_err2name(kerr));
                return KEEL_OK;
        }
        atomic_fetch_add(&w->st_heartbeats, 1);
        return KEEL_OK;
}

/*
 * Make rec (stolen: an inbox command of codec type `type`) the record t
 * delivers, to its workflow's inbox partition, encoded (or shrunk to a
 * failure that encodes). On error t has no record and the error is
 * logged.
 */
static int task_set_result(keel_worker_t *w, task_t *t, const char *type,
                           json_t *rec)
{
        const char *wf = tstr(t->task, "workflow_id");
        char err[256] = "";
        int rc = KEEL_OK;

        t->out_type = type;
        t->out_rec = rec;
        t->out_topic = KEEL_TOPIC_INBOX;
        t->out_partition =
            keel_partition_of(wf, strlen(wf), w->inbox_partitions);
        free(t->out_key);
        t->out_key = strdup(wf);
        t->out_key_len = strlen(wf);
        if (!t->out_key)
                rc = KEEL_ERR_NOMEM;
        else if ((rc = task_encode(t, err, sizeof(err))))
                rc = task_shrink(w, t, err);
        if (rc) {
                keel_log(KEEL_LOG_ERROR, COMPONENT,
                         "msg=\"result not encodable, none sent\" "
                         "workflow_id=%s activity_id=%s attempt=%d error=%s",
                         wf, tstr(t->task, "activity_id"), tattempt(t->task),
                         keel_err_name(rc));
                json_decref(t->out_rec);
                t->out_rec = NULL;
        }
        return rc;
}

/* Run one task's handler and hand its result to the producer. On a
 * handler thread; t is T_RUNNING. */
static void run_task(keel_worker_t *w, task_t *t)
{
        const json_t *task = t->task;
        const char *wf = tstr(task, "workflow_id");
        const char *atype = tstr(task, "activity_type");
        const handler_t *h = find_handler(w, atype);
        const char *type = NULL;
        json_t *rec = NULL;
        int rc;

        atomic_fetch_add(&w->st_started, 1);
        keel_log(KEEL_LOG_DEBUG, COMPONENT,
                 "msg=\"task started\" workflow_id=%s activity_id=%s "
                 "attempt=%d activity_type=%s partition=%d offset=%lld",
                 wf, tstr(task, "activity_id"), tattempt(task), atype,
                 (int)t->partition, (long long)t->offset);
        rc = keel__activity_run(h ? h->fn : NULL, h ? h->opaque : NULL, task,
                                w->worker_id, wall_ms(), heartbeat, t, &type,
                                &rec);
        if (rc)
                keel_log(KEEL_LOG_ERROR, COMPONENT,
                         "msg=\"could not build the task's result\" "
                         "workflow_id=%s activity_id=%s attempt=%d error=%s",
                         wf, tstr(task, "activity_id"), tattempt(task),
                         keel_err_name(rc));
        if (rec)
                rc = task_set_result(w, t, type, rec);

        pthread_mutex_lock(&w->lock);
        w->running--;
        w->active--;
        if (t->abandoned || w->quiesced) {
                keel_log(KEEL_LOG_WARN, COMPONENT,
                         "msg=\"result dropped: the task is no longer this "
                         "worker's\" workflow_id=%s activity_id=%s attempt=%d",
                         wf, tstr(task, "activity_id"), tattempt(task));
                t->state = T_DONE;
        } else if (!t->out_rec) {
                if (!rc)
                        keel_log(KEEL_LOG_WARN, COMPONENT,
                                 "msg=\"handler returned KEEL_ERR_TIMEOUT, no "
                                 "result sent\" workflow_id=%s activity_id=%s "
                                 "attempt=%d",
                                 wf, tstr(task, "activity_id"), tattempt(task));
                t->state = T_DONE;
        } else {
                keel_log(KEEL_LOG_DEBUG, COMPONENT,
                         "msg=\"task finished\" workflow_id=%s "
                         "activity_id=%s attempt=%d result=%s",
                         wf, tstr(task, "activity_id"), tattempt(task),
                         t->out_type);
                produce_locked(w, t);
        }
        pthread_cond_broadcast(&w->done_cv);
        pthread_mutex_unlock(&w->lock);
}

static void *handler_main(void *arg)
{
        keel_worker_t *w = arg;

        pthread_mutex_lock(&w->lock);
        for (;;) {
                task_t *t;
                while (!w->quit && !w->q_head)
                        pthread_cond_wait(&w->work_cv, &w->lock);
                if (w->quit)
                        break;
                t = w->q_head;
                w->q_head = t->qnext;
                if (!w->q_head)
                        w->q_tail = NULL;
                t->qnext = NULL;
                t->state = T_RUNNING;
                w->running++;
                pthread_mutex_unlock(&w->lock);
                run_task(w, t);
                pthread_mutex_lock(&w->lock);
        }
        pthread_mutex_unlock(&w->lock);
        return NULL;
}

/* ---- consuming (consumer thread) ---------------------------------------- */

/* A record that is not an activity task: to keel.dlq, keyed like the
 * original. Its offset is finished once that is delivered. */
static task_t *dead_letter(keel_worker_t *w, const rd_kafka_message_t *m,
                           int rc, const char *reason)
{
        task_t *t = calloc(1, sizeof(*t));
        char err[256];

        atomic_fetch_add(&w->st_undecodable, 1);
        keel_log(KEEL_LOG_WARN, COMPONENT,
                 "msg=\"record is not an activity task, sent to %s\" "
                 "topic=%s partition=%d offset=%lld error=%s detail=\"%s\"",
                 KEEL_TOPIC_DLQ, w->topic, (int)m->partition,
                 (long long)m->offset, keel_err_name(rc), reason);
        if (!t)
                goto nomem;
        t->w = w;
        t->partition = m->partition;
        t->offset = m->offset;
        t->out_type = "keel.dlq.DeadLetter";
        t->out_topic = KEEL_TOPIC_DLQ;
        t->out_partition = RD_KAFKA_PARTITION_UA;
        if (m->key) {
                if (!(t->out_key = malloc(m->key_len ? m->key_len : 1)))
                        goto nomem;
                memcpy(t->out_key, m->key, m->key_len);
                t->out_key_len = m->key_len;
        }
        t->out_rec = keel_codec_dead_letter(
            w->topic, m->partition, m->offset, m->key, m->key_len, m->payload,
            m->len, keel_err_name(rc), reason, COMPONENT, wall_ms());
        if (!t->out_rec)
                goto nomem;
        if (task_encode(t, err, sizeof(err)) && task_shrink(w, t, err)) {
                keel_log(KEEL_LOG_ERROR, COMPONENT,
                         "msg=\"dead letter not encodable, record skipped\" "
                         "topic=%s partition=%d offset=%lld",
                         w->topic, (int)m->partition, (long long)m->offset);
                t->state = T_DONE;
        }
        return t;
nomem:
        task_free(t);
        return NULL;
}

/* The queued or running task an ActivityCancel is for, or NULL (lock
 * held). Tasks and their cancels share a key, hence a partition, but any
 * partition will do. */
static task_t *find_cancelled_locked(const keel_worker_t *w, const json_t *c)
{
        for (int32_t p = 0; p < w->n_parts; p++) {
                if (!w->parts[p])
                        continue;
                for (task_t *t = w->parts[p]->head; t; t = t->pnext)
                        if (t->task &&
                            (t->state == T_QUEUED || t->state == T_RUNNING) &&
                            tattempt(t->task) == tattempt(c) &&
                            !strcmp(tstr(t->task, "activity_id"),
                                    tstr(c, "activity_id")) &&
                            !strcmp(tstr(t->task, "workflow_id"),
                                    tstr(c, "workflow_id")) &&
                            !strcmp(tstr(t->task, "run_id"), tstr(c, "run_id")))
                                return t;
        }
        return NULL;
}

/* Take t out of the run queue; 0 if it was not there (lock held). */
static int dequeue_locked(keel_worker_t *w, task_t *t)
{
        task_t *prev = NULL;
        for (task_t *q = w->q_head; q; prev = q, q = q->qnext) {
                if (q != t)
                        continue;
                if (prev)
                        prev->qnext = t->qnext;
                else
                        w->q_head = t->qnext;
                if (w->q_tail == t)
                        w->q_tail = prev;
                t->qnext = NULL;
                w->active--;
                return 1;
        }
        return 0;
}

/*
 * An ActivityCancel c: a queued task is not started and answers with a
 * non-retryable "Cancelled" failure, so its attempt closes in the
 * orchestrator; a running one's next heartbeat returns KEEL_ERR_CANCELLED.
 * A cancel for a task that is finished or was never here changes nothing.
 * It has nothing to deliver, so its offset is finished at once. Consumer
 * thread.
 */
static void handle_cancel(keel_worker_t *w, part_t *pt,
                          const rd_kafka_message_t *m, const json_t *c)
{
        const char *state = "unmatched";
        task_t *t;

        pthread_mutex_lock(&w->lock);
        pt->next = m->offset + 1;
        t = find_cancelled_locked(w, c);
        if (t && !t->cancelled && t->state == T_RUNNING) {
                t->cancelled = 1;
                state = "running";
        } else if (t && !t->cancelled && dequeue_locked(w, t)) {
                const char *reason = tstr(c, "reason");
                char *msg = dup_printf("cancelled before it started%s%s",
                                       *reason ? ": " : "", reason);
                json_t *rec =
                    msg ? failure_rec(w, t->task, "Cancelled", msg) : NULL;
                free(msg);
                t->cancelled = 1;
                t->state = T_RUNNING; /* until its result is handed over */
                if (!rec ||
                    task_set_result(w, t, "keel.inbox.ActivityFailed", rec))
                        t->state = T_DONE; /* its timeouts apply */
                else
                        produce_locked(w, t);
                state = "queued";
                pthread_cond_broadcast(&w->done_cv);
        }
        pthread_mutex_unlock(&w->lock);
        atomic_fetch_add(strcmp(state, "unmatched") ? &w->st_cancels
                                                    : &w->st_cancels_unmatched,
                         1);
        keel_log(KEEL_LOG_DEBUG, COMPONENT,
                 "msg=\"cancel received\" workflow_id=%s activity_id=%s "
                 "attempt=%d task=%s partition=%d offset=%lld",
                 tstr(c, "workflow_id"), tstr(c, "activity_id"), tattempt(c),
                 state, (int)m->partition, (long long)m->offset);
}

static void handle_message(keel_worker_t *w, const rd_kafka_message_t *m)
{
        const char *type = NULL;
        json_t *rec = NULL;
        char err[512] = "";
        part_t *pt;
        task_t *t;
        int rc;

        if (m->err) {
                if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF)
                        return;
                keel_log(KEEL_LOG_WARN, COMPONENT,
                         "msg=\"consumer error\" topic=%s partition=%d "
                         "error=%s detail=\"%s\"",
                         m->rkt ? rd_kafka_topic_name(m->rkt) : "-",
                         (int)m->partition, rd_kafka_err2name(m->err),
                         rd_kafka_message_errstr(m));
                return;
        }
        if (!(pt = part_get(w, m->partition))) {
                keel_log(KEEL_LOG_ERROR, COMPONENT, "msg=\"out of memory\"");
                return;
        }

        if (!m->payload) {
                rc = KEEL_ERR_TRUNCATED;
                snprintf(err, sizeof(err), "the record has no value");
        } else {
                rc = keel_codec_decode(m->payload, m->len, &type, &rec, err,
                                       sizeof(err));
        }
        if (!rc && !strcmp(type, CANCEL_TYPE)) {
                handle_cancel(w, pt, m, rec);
                json_decref(rec);
                return;
        }
        if (!rc && strcmp(type, TASK_TYPE)) {
                rc = KEEL_ERR_SCHEMA;
                snprintf(err, sizeof(err), "a %s record, not %s", type,
                         TASK_TYPE);
                json_decref(rec);
                rec = NULL;
        }

        if (rc) {
                t = dead_letter(w, m, rc, err);
        } else if ((t = calloc(1, sizeof(*t)))) {
                t->w = w;
                t->partition = m->partition;
                t->offset = m->offset;
                t->task = rec;
                t->state = T_QUEUED;
                keel_log(KEEL_LOG_DEBUG, COMPONENT,
                         "msg=\"task received\" workflow_id=%s "
                         "activity_id=%s attempt=%d activity_type=%s "
                         "partition=%d offset=%lld",
                         tstr(rec, "workflow_id"), tstr(rec, "activity_id"),
                         tattempt(rec), tstr(rec, "activity_type"),
                         (int)m->partition, (long long)m->offset);
        } else {
                json_decref(rec);
        }
        if (!t) {
                /* Leave the offset unfinished rather than skip the record:
                 * the next owner of the partition reads it again. */
                keel_log(KEEL_LOG_ERROR, COMPONENT,
                         "msg=\"out of memory, record not processed\" "
                         "topic=%s partition=%d offset=%lld",
                         w->topic, (int)m->partition, (long long)m->offset);
                return;
        }

        pthread_mutex_lock(&w->lock);
        pt->next = m->offset + 1;
        if (pt->tail)
                pt->tail->pnext = t;
        else
                pt->head = t;
        pt->tail = t;
        if (t->task) {
                if (w->q_tail)
                        w->q_tail->qnext = t;
                else
                        w->q_head = t;
                w->q_tail = t;
                w->active++;
                pthread_cond_signal(&w->work_cv);
        } else if (t->state != T_DONE) {
                produce_locked(w, t);
        }
        pthread_mutex_unlock(&w->lock);
}

/* Work between polls: flow control, retries, orphans, periodic commit. */
static void housekeep(keel_worker_t *w, int64_t *last_commit)
{
        int64_t now = mono_ms();

        pthread_mutex_lock(&w->lock);
        /* Keep as many tasks again queued as run, so a handler that
         * finishes finds the next one waiting; the rest wait in the task
         * queue. */
        w->full = w->active >= 2 * w->concurrency;
        retry_due_locked(w);
        reap_orphans_locked(w);
        pthread_mutex_unlock(&w->lock);
        if (now - *last_commit >= COMMIT_INTERVAL_MS) {
                commit_positions(w, 0, 1);
                *last_commit = now;
        }
}

/* keel.inbox, keel.dlq and the queue's topic must exist; note the inbox's
 * partition count, which places results. */
static int check_topics(keel_worker_t *w)
{
        const struct rd_kafka_metadata *md = NULL;
        const char *need[3] = {KEEL_TOPIC_INBOX, KEEL_TOPIC_DLQ, w->topic};
        rd_kafka_resp_err_t err;

        err = rd_kafka_metadata(w->producer, 1, NULL, &md, (int)w->timeout_ms);
        if (err) {
                keel_log(KEEL_LOG_ERROR, COMPONENT,
                         "msg=\"cannot read the cluster's metadata\" "
                         "error=%s timeout_ms=%lld",
                         rd_kafka_err2name(err), (long long)w->timeout_ms);
                return err == RD_KAFKA_RESP_ERR__TRANSPORT ||
                               err == RD_KAFKA_RESP_ERR__TIMED_OUT ||
                               err == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN
                           ? KEEL_ERR_TRANSPORT
                           : KEEL_ERR_KAFKA;
        }
        for (int n = 0; n < 3; n++) {
                int found = 0;
                for (int i = 0; i < md->topic_cnt; i++) {
                        const struct rd_kafka_metadata_topic *mt =
                            &md->topics[i];
                        if (strcmp(mt->topic, need[n]) || mt->err ||
                            mt->partition_cnt <= 0)
                                continue;
                        found = 1;
                        if (n == 0)
                                w->inbox_partitions = mt->partition_cnt;
                }
                if (!found) {
                        keel_log(KEEL_LOG_ERROR, COMPONENT,
                                 "msg=\"topic missing; run 'keel topics "
                                 "create --task-queue %s'\" topic=%s",
                                 w->queue, need[n]);
                        rd_kafka_metadata_destroy(md);
                        return KEEL_ERR_NOT_FOUND;
                }
        }
        rd_kafka_metadata_destroy(md);
        return KEEL_OK;
}

/* The orderly stop: no new task, running ones get worker.grace.ms, commit,
 * leave the group, flush. Consumer thread. */
static void shut_down(keel_worker_t *w)
{
        int running;

        w->stopping = 1;
        w->stop_deadline = mono_ms() + w->grace_ms;
        pause_all(w, 1);
        pthread_mutex_lock(&w->lock);
        running = w->running;
        unqueue_locked(w, 1);
        pthread_mutex_unlock(&w->lock);
        keel_log(KEEL_LOG_INFO, COMPONENT,
                 "msg=\"worker stopping\" queue=%s running=%d grace_ms=%lld",
                 w->queue, running, (long long)w->grace_ms);

        pthread_mutex_lock(&w->lock);
        wait_idle_locked(w, 1, w->stop_deadline);
        pthread_mutex_unlock(&w->lock);
        commit_positions(w, 0, 0);

        pthread_mutex_lock(&w->lock);
        w->quiesced = 1;
        pthread_mutex_unlock(&w->lock);
        /* Serves the final revocation (release_partitions) and leaves the
         * group. */
        rd_kafka_consumer_close(w->consumer);
        w->closed = 1;

        pthread_mutex_lock(&w->lock);
        w->quit = 1;
        running = w->running;
        pthread_cond_broadcast(&w->work_cv);
        pthread_mutex_unlock(&w->lock);
        if (!running) {
                for (int i = 0; i < w->n_threads; i++)
                        pthread_join(w->threads[i], NULL);
                w->n_threads = 0;
        }

        atomic_store(&w->dr_quit, 1);
        pthread_join(w->dr_thread, NULL);
        w->dr_started = 0;
        if (rd_kafka_flush(w->producer, FLUSH_MS))
                keel_log(KEEL_LOG_WARN, COMPONENT,
                         "msg=\"records not delivered at stop\" count=%d",
                         rd_kafka_outq_len(w->producer));
        keel_log(KEEL_LOG_INFO, COMPONENT,
                 "msg=\"worker stopped\" queue=%s tasks_started=%llu "
                 "tasks_completed=%llu tasks_failed=%llu "
                 "tasks_undecodable=%llu still_running=%d",
                 w->queue, (unsigned long long)atomic_load(&w->st_started),
                 (unsigned long long)atomic_load(&w->st_completed),
                 (unsigned long long)atomic_load(&w->st_failed),
                 (unsigned long long)atomic_load(&w->st_undecodable), running);
}

/* ---- public API --------------------------------------------------------- */

static int conf_set(rd_kafka_conf_t *conf, const char *key, const char *value,
                    char *errstr, size_t errstr_size)
{
        char rderr[512];
        if (rd_kafka_conf_set(conf, key, value, rderr, sizeof(rderr)) ==
            RD_KAFKA_CONF_OK)
                return 0;
        fmt_err(errstr, errstr_size, "librdkafka property '%s': %s", key,
                rderr);
        return -1;
}

static rd_kafka_t *make_producer(keel_worker_t *w, const keel_config_t *cfg,
                                 char *errstr, size_t errstr_size)
{
        rd_kafka_conf_t *conf =
            keel__kafka_conf_new(cfg, KEEL__PRODUCER, errstr, errstr_size);
        char rderr[512];
        rd_kafka_t *rk;

        if (!conf)
                return NULL;
        /* murmur2_random places dead letters like Kafka's Java client. */
        /* A result is sent after at most 1 ms: librdkafka's default
         * linger (5 ms) would add to every step of every workflow. */
        if (conf_set(conf, "enable.idempotence", "true", errstr, errstr_size) ||
            conf_set(conf, "partitioner", "murmur2_random", errstr,
                     errstr_size) ||
            keel__kafka_conf_default(conf, cfg, "linger.ms", "1", errstr,
                                     errstr_size)) {
                rd_kafka_conf_destroy(conf);
                return NULL;
        }
        rd_kafka_conf_set_opaque(conf, w);
        rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
        rd_kafka_conf_set_error_cb(conf, on_error);
        rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, rderr, sizeof(rderr));
        if (!rk) {
                fmt_err(errstr, errstr_size, "producer: %s", rderr);
                rd_kafka_conf_destroy(conf);
        }
        return rk;
}

static rd_kafka_t *make_consumer(keel_worker_t *w, const keel_config_t *cfg,
                                 char *errstr, size_t errstr_size)
{
        rd_kafka_conf_t *conf =
            keel__kafka_conf_new(cfg, KEEL__CONSUMER, errstr, errstr_size);
        static const char *const props[][2] = {
            {"enable.auto.commit", "false"},
            {"enable.auto.offset.store", "false"},
            {"isolation.level", "read_committed"},
            {"auto.offset.reset", "earliest"},
        };
        /* What librdkafka fetches ahead, per partition (the task queue is
         * a queue of partition queues): about 2,000 tasks rather than
         * librdkafka's 64 MB. */
        static const char *const ahead[][2] = {
            {"queued.max.messages.kbytes", "1024"},
            {"queued.min.messages", "2000"},
        };
        char rderr[512];
        rd_kafka_t *rk;

        if (!conf)
                return NULL;
        if (conf_set(conf, "group.id", w->group, errstr, errstr_size))
                goto fail;
        for (size_t i = 0; i < sizeof(props) / sizeof(props[0]); i++)
                if (conf_set(conf, props[i][0], props[i][1], errstr,
                             errstr_size))
                        goto fail;
        for (size_t i = 0; i < sizeof(ahead) / sizeof(ahead[0]); i++)
                if (keel__kafka_conf_default(conf, cfg, ahead[i][0],
                                             ahead[i][1], errstr, errstr_size))
                        goto fail;
        rd_kafka_conf_set_opaque(conf, w);
        rd_kafka_conf_set_rebalance_cb(conf, on_rebalance);
        rd_kafka_conf_set_offset_commit_cb(conf, on_commit);
        rd_kafka_conf_set_error_cb(conf, on_error);
        rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, rderr, sizeof(rderr));
        if (!rk) {
                fmt_err(errstr, errstr_size, "consumer: %s", rderr);
                goto fail;
        }
        rd_kafka_poll_set_consumer(rk);
        return rk;
fail:
        rd_kafka_conf_destroy(conf);
        return NULL;
}

keel_worker_t *keel_worker_new(const keel_config_t *cfg, const char *task_queue,
                               char *errstr, size_t errstr_size)
{
        keel_topic_spec_t specs[4];
        size_t nspecs;
        keel_worker_t *w;
        pthread_condattr_t ca;
        int64_t v;
        const char *id;

        if (!cfg) {
                fmt_err(errstr, errstr_size, "a configuration is required");
                return NULL;
        }
        if (!task_queue ||
            keel_topics_specs(&task_queue, 1, specs, 4, &nspecs)) {
                fmt_err(errstr, errstr_size,
                        "invalid task queue name '%s': use 1-%d of "
                        "[a-zA-Z0-9._-]",
                        task_queue ? task_queue : "(null)",
                        (int)(249 - strlen(KEEL_TOPIC_TASKS_PREFIX)));
                return NULL;
        }
        if (!(w = calloc(1, sizeof(*w)))) {
                fmt_err(errstr, errstr_size, "out of memory");
                return NULL;
        }
        pthread_mutex_init(&w->lock, NULL);
        pthread_cond_init(&w->work_cv, NULL);
        pthread_condattr_init(&ca);
        pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
        pthread_cond_init(&w->done_cv, &ca);
        pthread_condattr_destroy(&ca);

        keel_config_get_int(cfg, "worker.concurrency", &v);
        w->concurrency = v > 0 ? (int)v : 1;
        keel_config_get_int(cfg, "worker.grace.ms", &w->grace_ms);
        keel_config_get_int(cfg, "timeout.ms", &w->timeout_ms);
        id = keel_config_get(cfg, "worker.id");
        if (id && *id) {
                w->worker_id = strdup(id);
        } else {
                char host[256] = "localhost";
                gethostname(host, sizeof(host) - 1);
                host[sizeof(host) - 1] = '\0';
                w->worker_id = dup_printf("%s-%ld", host, (long)getpid());
        }
        w->queue = strdup(task_queue);
        w->topic = dup_printf("%s%s", KEEL_TOPIC_TASKS_PREFIX, task_queue);
        w->group = dup_printf("keel-worker-%s", task_queue);
        if (!w->worker_id || !w->queue || !w->topic || !w->group) {
                fmt_err(errstr, errstr_size, "out of memory");
                keel_worker_destroy(w);
                return NULL;
        }
        if (!(w->producer = make_producer(w, cfg, errstr, errstr_size)) ||
            !(w->consumer = make_consumer(w, cfg, errstr, errstr_size)) ||
            !(w->taskq = rd_kafka_queue_new(w->consumer))) {
                keel_worker_destroy(w);
                return NULL;
        }
        return w;
}

int keel_worker_register(keel_worker_t *w, const char *activity_type,
                         keel_activity_fn_t fn, void *opaque)
{
        handler_t *nh;

        if (!w || !activity_type || !*activity_type || !fn ||
            atomic_load(&w->started) || find_handler(w, activity_type))
                return KEEL_ERR_INVALID_ARG;
        nh = realloc(w->handlers, (w->n_handlers + 1) * sizeof(*nh));
        if (!nh)
                return KEEL_ERR_NOMEM;
        w->handlers = nh;
        if (!(nh[w->n_handlers].type = strdup(activity_type)))
                return KEEL_ERR_NOMEM;
        nh[w->n_handlers].fn = fn;
        nh[w->n_handlers].opaque = opaque;
        w->n_handlers++;
        return KEEL_OK;
}

int keel_worker_run(keel_worker_t *w)
{
        rd_kafka_topic_partition_list_t *sub;
        rd_kafka_resp_err_t err;
        int64_t last_commit;
        int rc;

        if (!w || atomic_exchange(&w->started, 1))
                return KEEL_ERR_INVALID_ARG;
        if ((rc = check_topics(w)))
                return rc;

        if (pthread_create(&w->dr_thread, NULL, delivery_main, w))
                return KEEL_ERR_NOMEM;
        w->dr_started = 1;
        if (!(w->threads = calloc((size_t)w->concurrency, sizeof(pthread_t))))
                rc = KEEL_ERR_NOMEM;
        for (int i = 0; !rc && i < w->concurrency; i++) {
                if (pthread_create(&w->threads[i], NULL, handler_main, w))
                        rc = KEEL_ERR_NOMEM;
                else
                        w->n_threads++;
        }
        if (rc) {
                keel_log(KEEL_LOG_ERROR, COMPONENT,
                         "msg=\"cannot start handler threads\" wanted=%d "
                         "started=%d",
                         w->concurrency, w->n_threads);
                keel_worker_stop(w);
        }

        sub = rd_kafka_topic_partition_list_new(1);
        rd_kafka_topic_partition_list_add(sub, w->topic, RD_KAFKA_PARTITION_UA);
        err = rd_kafka_subscribe(w->consumer, sub);
        rd_kafka_topic_partition_list_destroy(sub);
        if (err) {
                keel_log(KEEL_LOG_ERROR, COMPONENT,
                         "msg=\"cannot subscribe\" topic=%s error=%s", w->topic,
                         rd_kafka_err2name(err));
                rc = KEEL_ERR_KAFKA;
                keel_worker_stop(w);
        }
        if (!rc)
                keel_log(KEEL_LOG_INFO, COMPONENT,
                         "msg=\"worker started\" queue=%s topic=%s group=%s "
                         "worker_id=%s concurrency=%d grace_ms=%lld "
                         "activity_types=%zu inbox_partitions=%d",
                         w->queue, w->topic, w->group, w->worker_id,
                         w->concurrency, (long long)w->grace_ms, w->n_handlers,
                         (int)w->inbox_partitions);

        last_commit = mono_ms();
        while (!atomic_load(&w->stop) && !atomic_load(&w->fatal)) {
                /* Tasks from the task queue while there is room (waiting
                 * for one there), else look again soon: a handler may have
                 * freed up. Then rebalances, errors, and records that
                 * reached the consumer's queue before their partition was
                 * forwarded. */
                rd_kafka_message_t *m =
                    w->full ? NULL : rd_kafka_consume_queue(w->taskq, POLL_MS);
                if (m) {
                        handle_message(w, m);
                        rd_kafka_message_destroy(m);
                }
                m = rd_kafka_consumer_poll(w->consumer,
                                           w->full ? PAUSED_POLL_MS : 0);
                if (m) {
                        handle_message(w, m);
                        rd_kafka_message_destroy(m);
                }
                housekeep(w, &last_commit);
        }
        shut_down(w);
        if (!rc && atomic_load(&w->fatal))
                rc = KEEL_ERR_KAFKA;
        return rc;
}

void keel_worker_stop(keel_worker_t *w)
{
        if (w)
                atomic_store(&w->stop, 1);
}

void keel_worker_stats(const keel_worker_t *w, keel_worker_stats_t *st)
{
        memset(st, 0, sizeof(*st));
        if (!w)
                return;
        st->tasks_started = atomic_load(&w->st_started);
        st->tasks_completed = atomic_load(&w->st_completed);
        st->tasks_failed = atomic_load(&w->st_failed);
        st->tasks_undecodable = atomic_load(&w->st_undecodable);
        st->heartbeats = atomic_load(&w->st_heartbeats);
        st->cancels = atomic_load(&w->st_cancels);
        st->cancels_unmatched = atomic_load(&w->st_cancels_unmatched);
}

void keel_worker_destroy(keel_worker_t *w)
{
        if (!w)
                return;
        pthread_mutex_lock(&w->lock);
        w->quit = 1;
        w->quiesced = 1;
        pthread_cond_broadcast(&w->work_cv);
        pthread_mutex_unlock(&w->lock);
        /* Handlers left running past the grace period end here. */
        for (int i = 0; i < w->n_threads; i++)
                pthread_join(w->threads[i], NULL);
        free(w->threads);
        if (w->dr_started) {
                atomic_store(&w->dr_quit, 1);
                pthread_join(w->dr_thread, NULL);
        }
        if (w->consumer) {
                if (!w->closed)
                        rd_kafka_consumer_close(w->consumer);
                if (w->taskq)
                        rd_kafka_queue_destroy(w->taskq);
                rd_kafka_destroy(w->consumer);
        }
        if (w->producer) {
                rd_kafka_purge(w->producer, RD_KAFKA_PURGE_F_QUEUE |
                                                RD_KAFKA_PURGE_F_INFLIGHT);
                rd_kafka_poll(w->producer, 0);
                rd_kafka_destroy(w->producer);
        }
        /* Every task is in one partition list or among the orphans (the
         * run queue only links tasks that are also in a partition). */
        for (int32_t p = 0; p < w->n_parts; p++) {
                part_t *pt = w->parts[p];
                if (!pt)
                        continue;
                while (pt->head) {
                        task_t *t = pt->head;
                        pt->head = t->pnext;
                        task_free(t);
                }
                free(pt);
        }
        free(w->parts);
        while (w->orphans) {
                task_t *t = w->orphans;
                w->orphans = t->pnext;
                task_free(t);
        }
        for (size_t i = 0; i < w->n_handlers; i++)
                free(w->handlers[i].type);
        free(w->handlers);
        free(w->queue);
        free(w->topic);
        free(w->group);
        free(w->worker_id);
        pthread_cond_destroy(&w->work_cv);
        pthread_cond_destroy(&w->done_cv);
        pthread_mutex_destroy(&w->lock);
        free(w);
}
