/*
 * orchestrator.c: the orchestrator's main loop (orch.h). One consumer in
 * group keel-orchestrator reads keel.inbox. When the group assigns it a
 * partition, a partition processor restores and claims it, and the
 * consumer starts the partition at the processor's checkpoint + 1 (the
 * checkpoint in history, not committed offsets, is the truth). The loop
 * gathers commands for up to batch.max.ms or batch.max.commands, then
 * gives each partition with commands or due timers one transaction. A
 * processor whose transaction failed is reopened, which re-reads the
 * log and claims a new epoch; its partition is sought back to the new
 * checkpoint. A partition that cannot be taken (a broker away for a
 * while) is tried again every few seconds for as long as it is assigned.
 * All on the main thread, but for the commits: a round's transactions are
 * prepared one after another, then committed side by side by a pool of
 * threads (each partition has its own producer), so a round costs the
 * slowest commit rather than the sum of them.
 */
#include "orch.h"

#include "app.h"
#include "clock_int.h"
#include "config_int.h"
#include "keel/log.h"
#include "keel/topics.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int64_t orch_now_ms(void)
{
        return keel__clock_ms(CLOCK_REALTIME);
}

int32_t orch_topic_partitions(orch_t *o, const char *topic)
{
        const struct rd_kafka_metadata *md;
        json_t *cached = json_object_get(o->topic_parts, topic);
        rd_kafka_topic_t *rkt;
        int32_t n = -1;

        if (cached)
                return (int32_t)json_integer_value(cached);
        rkt = rd_kafka_topic_new(o->consumer, topic, NULL);
        if (rkt && !rd_kafka_metadata(o->consumer, 0, rkt, &md, 5000)) {
                if (md->topic_cnt == 1 && !md->topics[0].err)
                        n = md->topics[0].partition_cnt;
                rd_kafka_metadata_destroy(md);
        }
        if (rkt)
                rd_kafka_topic_destroy(rkt);
        if (n > 0) /* a missing topic is asked for again next time */
                json_object_set_new(o->topic_parts, topic, json_integer(n));
        return n;
}

int32_t orch_queue_partitions(orch_t *o, const char *queue)
{
        char topic[300];
        snprintf(topic, sizeof(topic), "%s%s", KEEL_TOPIC_TASKS_PREFIX,
                 queue ? queue : "");
        return orch_topic_partitions(o, topic);
}

/* How long a partition that could not be taken waits to be tried again. */
#define RETRY_MS 5000

/* How long a partition just taken holds its overdue timers back while its
 * inbox is read (see hold_timers()). */
#define HOLD_TIMERS_MS 5000

/* Has the consumer read p's inbox up to its end, as far as it knows? */
static int inbox_read(orch_t *o, const orch_pp_t *pp)
{
        int64_t lo, hi;
        if (pp->inbox_next < 0) /* no checkpoint: nothing restored */
                return 1;
        return !rd_kafka_get_watermark_offsets(o->consumer, KEEL_TOPIC_INBOX,
                                               pp->p, &lo, &hi) &&
               hi >= 0 && pp->inbox_next >= hi;
}

/* Whether pp, just taken, still holds its overdue timers back. While we
 * were away, results may have reached the inbox before their deadlines:
 * they are not late, so they are read before any timeout fires. The first
 * batches after taking a partition usually hold none of its commands yet
 * (the consumer has not fetched them), so until the inbox is read to its
 * end, or HOLD_TIMERS_MS passed (a transaction marker can end the inbox,
 * which no command reaches), nothing overdue fires. */
static int hold_timers(orch_t *o, orch_pp_t *pp, int64_t now)
{
        if (pp->hold_timers_until &&
            (now >= pp->hold_timers_until || inbox_read(o, pp)))
                pp->hold_timers_until = 0;
        return pp->hold_timers_until != 0;
}

static void close_pp(orch_t *o, int32_t p)
{
        if (p < 0 || p >= o->partitions || !o->pps[p])
                return;
        orch_pp_close(o->pps[p]);
        o->pps[p] = NULL;
        atomic_fetch_sub(&o->metrics.partitions, 1);
}

/* Open the processors of n partitions (restore and claim). Retries those
 * that failed a few times: a broker may be briefly away. */
static void open_pps(orch_t *o, const int32_t *parts, int n)
{
        int32_t *todo = calloc((size_t)n, sizeof(*todo));
        orch_pp_t **got = calloc((size_t)n, sizeof(*got));
        int left = 0;

        if (!todo || !got) {
                free(todo);
                free(got);
                return;
        }
        for (int i = 0; i < n; i++)
                if (parts[i] >= 0 && parts[i] < o->partitions &&
                    !o->pps[parts[i]])
                        todo[left++] = parts[i];
        for (int attempt = 0; attempt < 5 && left && !o->stop; attempt++) {
                int k = 0;
                orch_pps_open(o, todo, left, got);
                for (int i = 0; i < left; i++) {
                        if (got[i]) {
                                got[i]->hold_timers_until =
                                    orch_now_ms() + HOLD_TIMERS_MS;
                                o->pps[todo[i]] = got[i];
                                atomic_fetch_add(&o->metrics.partitions, 1);
                        } else {
                                todo[k++] = todo[i];
                        }
                }
                if (k)
                        keel_log(KEEL_LOG_WARN, "orchestrator",
                                 "msg=\"could not take partitions\" "
                                 "count=%d attempt=%d",
                                 k, attempt + 1);
                left = k;
        }
        free(todo);
        free(got);
}

static void rebalance_cb(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                         rd_kafka_topic_partition_list_t *parts, void *opaque)
{
        orch_t *o = opaque;

        if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
                int32_t *ps = calloc((size_t)parts->cnt + 1, sizeof(*ps));
                for (int i = 0; ps && i < parts->cnt; i++) {
                        ps[i] = parts->elems[i].partition;
                        if (ps[i] >= 0 && ps[i] < o->partitions)
                                o->retry_at[ps[i]] = 0;
                }
                if (ps)
                        open_pps(o, ps, parts->cnt);
                free(ps);
                for (int i = 0; i < parts->cnt; i++) {
                        int32_t p = parts->elems[i].partition;
                        if (p < 0 || p >= o->partitions)
                                continue;
                        if (!o->pps[p]) {
                                /* Not taken (a broker away, say): the main
                                 * loop tries again while it is ours, and
                                 * seeks it back to its checkpoint then. */
                                parts->elems[i].offset = RD_KAFKA_OFFSET_END;
                                o->retry_at[p] = orch_now_ms() + RETRY_MS;
                                continue;
                        }
                        parts->elems[i].offset = o->pps[p]->inbox_next;
                }
                rd_kafka_assign(rk, parts);
                keel_log(KEEL_LOG_INFO, "orchestrator",
                         "msg=assigned partitions=%d", parts->cnt);
        } else {
                for (int i = 0; i < parts->cnt; i++)
                        close_pp(o, parts->elems[i].partition);
                rd_kafka_assign(rk, NULL);
                keel_log(KEEL_LOG_INFO, "orchestrator",
                         "msg=revoked partitions=%d", parts->cnt);
        }
}

/* Is p among the consumer's assigned partitions? */
static int assigned(orch_t *o, int32_t p)
{
        rd_kafka_topic_partition_list_t *l = NULL;
        int found = 0;
        if (rd_kafka_assignment(o->consumer, &l) || !l)
                return 0;
        for (int i = 0; i < l->cnt; i++)
                if (l->elems[i].partition == p)
                        found = 1;
        rd_kafka_topic_partition_list_destroy(l);
        return found;
}

/* After a failed transaction: reopen the processor and restart its
 * partition from the new checkpoint. A processor that was fenced (another
 * orchestrator owns the partition now; we were frozen, say) gives the
 * partition up instead: reopening would fence the rightful owner in turn.
 * It is tried again later only if the group still assigns it to us. */
static void recover(orch_t *o, int32_t p)
{
        rd_kafka_topic_partition_list_t *tl;
        rd_kafka_error_t *e;

        if (o->pps[p] &&
            (o->pps[p]->fenced || rd_kafka_assignment_lost(o->consumer))) {
                keel_log(KEEL_LOG_WARN, "orchestrator",
                         "partition=%d msg=\"fenced: another orchestrator "
                         "owns the partition; giving it up\"",
                         p);
                close_pp(o, p);
                o->retry_at[p] = orch_now_ms() + 10000;
                return;
        }
        o->retry_at[p] = 0;
        close_pp(o, p);
        open_pps(o, &p, 1);
        if (!o->pps[p]) {
                /* A broker may be away longer than open_pps() tries: the
                 * partition stays ours, and nothing else would take it
                 * up again (a single orchestrator gets no rebalance). */
                keel_log(KEEL_LOG_ERROR, "orchestrator",
                         "partition=%d msg=\"could not take the partition; "
                         "trying again\" in_ms=%d",
                         p, RETRY_MS);
                o->retry_at[p] = orch_now_ms() + RETRY_MS;
                return;
        }
        tl = rd_kafka_topic_partition_list_new(1);
        rd_kafka_topic_partition_list_add(tl, KEEL_TOPIC_INBOX, p)->offset =
            o->pps[p]->inbox_next;
        e = rd_kafka_seek_partitions(o->consumer, tl, 10000);
        if (e) {
                keel_log(KEEL_LOG_ERROR, "orchestrator",
                         "partition=%d msg=\"seek failed\" error=\"%s\"", p,
                         rd_kafka_error_string(e));
                rd_kafka_error_destroy(e);
        }
        rd_kafka_topic_partition_list_destroy(tl);
}

static rd_kafka_t *new_consumer(orch_t *o, char *err, size_t errsize)
{
        rd_kafka_conf_t *conf =
            keel__kafka_conf_new(o->cfg, KEEL__CONSUMER, err, errsize);
        rd_kafka_t *c;
        if (!conf)
                return NULL;
        if (rd_kafka_conf_set(conf, "group.id", "keel-orchestrator", err,
                              errsize) ||
            rd_kafka_conf_set(conf, "enable.auto.commit", "false", err,
                              errsize) ||
            rd_kafka_conf_set(conf, "isolation.level", "read_committed", err,
                              errsize) ||
            rd_kafka_conf_set(conf, "auto.offset.reset", "earliest", err,
                              errsize) ||
            rd_kafka_conf_set(conf, "partition.assignment.strategy",
                              "range,roundrobin", err, errsize) ||
            /* A crashed orchestrator's partitions move after this long. */
            keel__kafka_conf_default(conf, o->cfg, "session.timeout.ms",
                                     "10000", err, errsize) ||
            keel__kafka_conf_default(conf, o->cfg, "heartbeat.interval.ms",
                                     "1000", err, errsize)) {
                rd_kafka_conf_destroy(conf);
                return NULL;
        }
        rd_kafka_conf_set_rebalance_cb(conf, rebalance_cb);
        rd_kafka_conf_set_opaque(conf, o);
        c = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, errsize);
        if (!c)
                rd_kafka_conf_destroy(conf);
        else
                rd_kafka_poll_set_consumer(c);
        return c;
}

/* ---- the commit pool ---------------------------------------------------- */

/* Threads that run orch_pp_commit() for a round's processors; the main
 * thread takes jobs too, and waits until all are done. */
typedef struct orch_pool_s {
        pthread_mutex_t lock;
        pthread_cond_t work, done;
        orch_pp_t **jobs;
        int *rcs;
        int n, next, finished, quit, n_threads;
        pthread_t *threads;
} orch_pool_t;

/* Take and run jobs until none is left; called with the lock held. */
static void pool_take(orch_pool_t *pl)
{
        while (pl->next < pl->n) {
                int i = pl->next++;
                int rc;
                pthread_mutex_unlock(&pl->lock);
                rc = orch_pp_commit(pl->jobs[i]);
                pthread_mutex_lock(&pl->lock);
                pl->rcs[i] = rc;
                if (++pl->finished == pl->n)
                        pthread_cond_signal(&pl->done);
        }
}

static void *pool_main(void *arg)
{
        orch_pool_t *pl = arg;
        pthread_mutex_lock(&pl->lock);
        while (!pl->quit) {
                if (pl->next < pl->n)
                        pool_take(pl);
                else
                        pthread_cond_wait(&pl->work, &pl->lock);
        }
        pthread_mutex_unlock(&pl->lock);
        return NULL;
}

/* A pool of threads-1 threads for up to max jobs a round; NULL when it
 * could not be made (rounds then commit one after another). */
static orch_pool_t *pool_new(int threads, int max)
{
        orch_pool_t *pl = calloc(1, sizeof(*pl));
        if (!pl)
                return NULL;
        pl->jobs = calloc((size_t)max, sizeof(*pl->jobs));
        pl->rcs = calloc((size_t)max, sizeof(*pl->rcs));
        pl->threads = calloc((size_t)threads, sizeof(*pl->threads));
        pthread_mutex_init(&pl->lock, NULL);
        pthread_cond_init(&pl->work, NULL);
        pthread_cond_init(&pl->done, NULL);
        if (!pl->jobs || !pl->rcs || !pl->threads)
                threads = 0;
        for (int i = 0; i < threads - 1; i++) {
                if (pthread_create(&pl->threads[i], NULL, pool_main, pl))
                        break;
                pl->n_threads++;
        }
        if (!pl->jobs || !pl->rcs || !pl->threads) {
                free(pl->jobs);
                free(pl->rcs);
                free(pl->threads);
                free(pl);
                return NULL;
        }
        return pl;
}

static void pool_free(orch_pool_t *pl)
{
        if (!pl)
                return;
        pthread_mutex_lock(&pl->lock);
        pl->quit = 1;
        pthread_cond_broadcast(&pl->work);
        pthread_mutex_unlock(&pl->lock);
        for (int i = 0; i < pl->n_threads; i++)
                pthread_join(pl->threads[i], NULL);
        pthread_mutex_destroy(&pl->lock);
        pthread_cond_destroy(&pl->work);
        pthread_cond_destroy(&pl->done);
        free(pl->jobs);
        free(pl->rcs);
        free(pl->threads);
        free(pl);
}

/* Commit the n prepared processors' transactions (side by side with a
 * pool); rcs[i] gets each one's result. */
static void commit_all(orch_t *o, orch_pp_t **jobs, int *rcs, int n)
{
        orch_pool_t *pl = o->pool;
        if (!pl || n < 2) {
                for (int i = 0; i < n; i++)
                        rcs[i] = orch_pp_commit(jobs[i]);
                return;
        }
        pthread_mutex_lock(&pl->lock);
        memcpy(pl->jobs, jobs, (size_t)n * sizeof(*jobs));
        pl->n = n;
        pl->next = pl->finished = 0;
        pthread_cond_broadcast(&pl->work);
        pool_take(pl);
        while (pl->finished < pl->n)
                pthread_cond_wait(&pl->done, &pl->lock);
        memcpy(rcs, pl->rcs, (size_t)n * sizeof(*rcs));
        pl->n = pl->next = pl->finished = 0;
        pthread_mutex_unlock(&pl->lock);
}

/* How often the group's committed inbox offsets are brought up to date. */
#define OFFSETS_MS 200

/* Commit each partition's inbox position to the group (asynchronously).
 * They are for tooling (lag): the truth is the checkpoint each transaction
 * writes to history, which the partition restarts from. So they are not
 * part of the transactions, whose every commit would otherwise wait for
 * two more requests (AddOffsetsToTxn, TxnOffsetCommit). At a stop,
 * async is 0: the last positions are committed before the group is left. */
static void commit_offsets(orch_t *o, int async)
{
        rd_kafka_topic_partition_list_t *l =
            rd_kafka_topic_partition_list_new(o->partitions);
        rd_kafka_resp_err_t err;
        for (int32_t p = 0; p < o->partitions; p++) {
                orch_pp_t *pp = o->pps[p];
                if (!pp || pp->inbox_next < 0 ||
                    pp->inbox_next == pp->committed)
                        continue;
                rd_kafka_topic_partition_list_add(l, KEEL_TOPIC_INBOX, p)
                    ->offset = pp->inbox_next;
                pp->committed = pp->inbox_next;
        }
        if (l->cnt && (err = rd_kafka_commit(o->consumer, l, async)))
                keel_log(KEEL_LOG_WARN, "orchestrator",
                         "msg=\"cannot commit inbox offsets\" error=%s",
                         rd_kafka_err2name(err));
        rd_kafka_topic_partition_list_destroy(l);
}

/* Gather a batch of messages: wait up to wait_ms for the first, then take
 * what comes within batch.max.ms, up to batch.max.commands. */
static size_t gather(orch_t *o, rd_kafka_message_t **msgs, size_t max,
                     int wait_ms)
{
        size_t n = 0;
        int64_t until = 0;
        while (n < max) {
                int64_t now = orch_now_ms();
                int t = n ? (int)(until > now ? until - now : 0) : wait_ms;
                rd_kafka_message_t *m = rd_kafka_consumer_poll(o->consumer, t);
                if (!m)
                        break;
                if (m->err) {
                        if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
                                keel_log(KEEL_LOG_WARN, "orchestrator",
                                         "msg=\"consumer error\" error=\"%s\"",
                                         rd_kafka_message_errstr(m));
                        rd_kafka_message_destroy(m);
                        if (!n)
                                break;
                        continue;
                }
                if (!n)
                        until = now + o->batch_ms;
                msgs[n++] = m;
        }
        return n;
}

int orch_run(orch_t *o)
{
        rd_kafka_topic_partition_list_t *topics;
        rd_kafka_message_t **msgs;
        rd_kafka_message_t ***by_p;
        orch_pp_t **jobs;
        int *rcs, njobs = 0;
        int64_t offsets_at = 0;
        size_t *cnt;
        char err[512];
        int rc = KEEL_OK;

        o->topic_parts = json_object();
        o->pps = calloc((size_t)o->partitions, sizeof(*o->pps));
        o->retry_at = calloc((size_t)o->partitions, sizeof(*o->retry_at));
        msgs = calloc((size_t)o->batch_max, sizeof(*msgs));
        by_p = calloc((size_t)o->partitions, sizeof(*by_p));
        cnt = calloc((size_t)o->partitions, sizeof(*cnt));
        jobs = calloc((size_t)o->partitions, sizeof(*jobs));
        rcs = calloc((size_t)o->partitions, sizeof(*rcs));
        if (!o->topic_parts || !o->pps || !o->retry_at || !msgs || !by_p ||
            !cnt || !jobs || !rcs)
                return KEEL_ERR_NOMEM;
        o->pool = pool_new(o->commit_threads < o->partitions ? o->commit_threads
                                                             : o->partitions,
                           o->partitions);
        for (int32_t p = 0; p < o->partitions; p++)
                if (!(by_p[p] = calloc((size_t)o->batch_max, sizeof(**by_p))))
                        return KEEL_ERR_NOMEM;
        if (!(o->consumer = new_consumer(o, err, sizeof(err)))) {
                keel_log(KEEL_LOG_ERROR, "orchestrator",
                         "msg=\"consumer\" error=\"%s\"", err);
                return KEEL_ERR_CONFIG;
        }
        topics = rd_kafka_topic_partition_list_new(1);
        rd_kafka_topic_partition_list_add(topics, KEEL_TOPIC_INBOX,
                                          RD_KAFKA_PARTITION_UA);
        rd_kafka_subscribe(o->consumer, topics);
        rd_kafka_topic_partition_list_destroy(topics);

        while (!o->stop) {
                int64_t now = orch_now_ms(), next = INT64_MAX;
                size_t n;
                int wait;

                for (int32_t p = 0; p < o->partitions; p++)
                        if (o->pps[p] && !hold_timers(o, o->pps[p], now)) {
                                int64_t d =
                                    keel__machine_next_due(o->pps[p]->m);
                                if (d < next)
                                        next = d;
                        }
                wait = next == INT64_MAX  ? 100
                       : next <= now      ? 0
                       : next - now > 100 ? 100
                                          : (int)(next - now);
                n = gather(o, msgs, (size_t)o->batch_max, wait);
                now = orch_now_ms();
                memset(cnt, 0, (size_t)o->partitions * sizeof(*cnt));
                for (size_t i = 0; i < n; i++) {
                        int32_t p = msgs[i]->partition;
                        if (p >= 0 && p < o->partitions)
                                by_p[p][cnt[p]++] = msgs[i];
                }
                for (int32_t p = 0; p < o->partitions && !o->stop; p++) {
                        orch_pp_t *pp = o->pps[p];
                        int64_t lo, hi, due_until = now;
                        if (!pp)
                                continue;
                        /* Behind on the inbox (after a restart, say)? Then
                         * fire only what was due by the last command read:
                         * a result a worker sent before its deadline is
                         * not late because we were away. Behind means this
                         * batch was full, or brought commands for p and
                         * more wait beyond them. */
                        if (cnt[p]) {
                                rd_kafka_message_t *lm = by_p[p][cnt[p] - 1];
                                rd_kafka_timestamp_type_t tt;
                                int64_t ts =
                                    rd_kafka_message_timestamp(lm, &tt);
                                int behind = n == (size_t)o->batch_max;
                                if (!behind &&
                                    !rd_kafka_get_watermark_offsets(
                                        o->consumer, KEEL_TOPIC_INBOX, p, &lo,
                                        &hi))
                                        behind = lm->offset + 1 < hi;
                                if (behind && ts > 0 && ts < now)
                                        due_until = ts;
                        } else if (hold_timers(o, pp, now)) {
                                due_until = INT64_MIN;
                        }
                        if (orch_pp_prepare(pp, by_p[p], cnt[p], due_until,
                                            now))
                                recover(o, p);
                        else if (pp->txn.open)
                                jobs[njobs++] = pp;
                }
                commit_all(o, jobs, rcs, njobs);
                for (int i = 0; i < njobs; i++)
                        if (rcs[i])
                                recover(o, jobs[i]->p);
                njobs = 0;
                if (orch_now_ms() - offsets_at >= OFFSETS_MS) {
                        commit_offsets(o, 1);
                        offsets_at = orch_now_ms();
                }
                for (size_t i = 0; i < n; i++)
                        rd_kafka_message_destroy(msgs[i]);
                /* Partitions given up after being fenced, or not taken:
                 * still ours? */
                for (int32_t p = 0; p < o->partitions && !o->stop; p++) {
                        if (!o->retry_at[p] || o->pps[p] ||
                            orch_now_ms() < o->retry_at[p])
                                continue;
                        o->retry_at[p] = 0;
                        if (assigned(o, p))
                                recover(o, p);
                }
                if (keel__app_wait_signal(0))
                        o->stop = 1;
        }

        keel_log(KEEL_LOG_INFO, "orchestrator", "msg=\"stopping\"");
        commit_offsets(o, 0);
        /* Leaving the group revokes (and closes) every processor; each
         * finished its last transaction in the loop above. */
        rd_kafka_consumer_close(o->consumer);
        for (int32_t p = 0; p < o->partitions; p++) {
                close_pp(o, p);
                free(by_p[p]);
        }
        rd_kafka_destroy(o->consumer);
        o->consumer = NULL;
        pool_free(o->pool);
        o->pool = NULL;
        free(jobs);
        free(rcs);
        free(by_p);
        free(cnt);
        free(msgs);
        free(o->pps);
        o->pps = NULL;
        free(o->retry_at);
        o->retry_at = NULL;
        json_decref(o->topic_parts);
        return rc;
}
