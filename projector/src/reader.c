/*
 * reader.c: the projector's consumer thread (proj.h). Every projector is a
 * full replica: it assigns itself every partition of keel.history from the
 * beginning (no group membership, no commits; group.id is set only because
 * consumer_poll needs one), reads with read_committed and feeds each
 * partition's records, in log order, to that partition's
 * keel__history_reader, whose complete batches reach the fold. At start it
 * reads each partition's end offset; once every partition has been read
 * that far the projector is ready (/readyz).
 */
#include "clock_int.h"
#include "config_int.h"
#include "error_int.h"
#include "history_int.h"
#include "proj.h"

#include "keel/codec.h"
#include "keel/error.h"
#include "keel/log.h"
#include "keel/topics.h"

#include <librdkafka/rdkafka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define POLL_MS 200

int proj_init(proj_t *p, const keel_config_t *cfg, int32_t partitions)
{
        keel__history_reader_t *r;

        memset(p, 0, sizeof(*p));
        p->cfg = cfg;
        p->partitions = partitions;
        pthread_mutex_init(&p->lock, NULL);
        {
                /* Waits on it are timed on the monotonic clock
                 * (http.c). */
                pthread_condattr_t ca;
                pthread_condattr_init(&ca);
                pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
                pthread_cond_init(&p->changed, &ca);
                pthread_condattr_destroy(&ca);
        }
        pthread_mutex_init(&p->fetch_lock, NULL);
        if (proj_fold_init(&p->fold))
                goto nomem;
        r = calloc((size_t)partitions, sizeof(*r));
        p->readers = r;
        p->positions = calloc((size_t)partitions, sizeof(*p->positions));
        p->ends = calloc((size_t)partitions, sizeof(*p->ends));
        if (!r || !p->positions || !p->ends)
                goto nomem;
        for (int32_t i = 0; i < partitions; i++) {
                p->positions[i] = -1;
                p->ends[i] = -1;
                if (keel__history_reader_init(&r[i], proj_fold_apply, &p->fold))
                        goto nomem;
        }
        return KEEL_OK;
nomem:
        proj_destroy(p);
        return KEEL_ERR_NOMEM;
}

void proj_destroy(proj_t *p)
{
        keel__history_reader_t *r = p->readers;
        for (int32_t i = 0; r && i < p->partitions; i++)
                keel__history_reader_destroy(&r[i]);
        free(r);
        free(p->positions);
        free(p->ends);
        p->readers = NULL;
        p->positions = p->ends = NULL;
        proj_fold_destroy(&p->fold);
        if (p->fetcher)
                rd_kafka_destroy(p->fetcher);
        p->fetcher = NULL;
        pthread_cond_destroy(&p->changed);
        pthread_mutex_destroy(&p->fetch_lock);
        pthread_mutex_destroy(&p->lock);
}

int64_t proj_inbox_done(proj_t *p, int32_t part)
{
        keel__history_reader_t *r = p->readers;
        return part >= 0 && part < p->partitions ? r[part].checkpoint : -1;
}

void proj_read_position(proj_t *p, char *buf, size_t size)
{
        size_t len = 0;
        buf[0] = '\0';
        for (int32_t i = 0; i < p->partitions && len < size; i++) {
                int n;
                if (p->positions[i] < 0)
                        continue;
                n = snprintf(buf + len, size - len, "%s%d:%lld", len ? "," : "",
                             (int)i, (long long)p->positions[i]);
                if (n < 0 || (size_t)n >= size - len) {
                        buf[len] = '\0';
                        break;
                }
                len += (size_t)n;
        }
        if (!len)
                snprintf(buf, size, "-");
}

/* Ready once every partition is read up to its end offset at start.
 * Reader thread, lock held. */
static void check_ready(proj_t *p)
{
        for (int32_t i = 0; i < p->partitions; i++)
                if (p->ends[i] < 0 ||
                    (p->ends[i] > 0 && p->positions[i] < p->ends[i]))
                        return;
        if (!atomic_exchange(&p->ready, 1))
                keel_log(KEEL_LOG_INFO, "projector",
                         "msg=ready workflows=%zu events=%llu", p->fold.count,
                         (unsigned long long)p->fold.events);
}

/* Read the end offsets still unknown; 0 when all are known. Reader
 * thread. */
static int query_ends(proj_t *p, rd_kafka_t *rk)
{
        int missing = 0;
        p->end_queries++;
        for (int32_t i = 0; i < p->partitions && !atomic_load(&p->stop); i++) {
                int64_t lo, hi;
                rd_kafka_resp_err_t err;
                if (p->ends[i] >= 0)
                        continue;
                err = rd_kafka_query_watermark_offsets(rk, KEEL_TOPIC_HISTORY,
                                                       i, &lo, &hi, 5000);
                if (err) {
                        /* Right after topics are created leaders are still
                         * being elected: warn only when it lasts. */
                        keel_log(p->end_queries > 25 ? KEEL_LOG_WARN
                                                     : KEEL_LOG_DEBUG,
                                 "projector",
                                 "msg=\"cannot read end offset\" "
                                 "partition=%d error=\"%s\"",
                                 (int)i, rd_kafka_err2str(err));
                        missing++;
                        continue;
                }
                pthread_mutex_lock(&p->lock);
                p->ends[i] = hi;
                pthread_mutex_unlock(&p->lock);
        }
        return missing;
}

/* One record or event from the consumer. Reader thread. */
static void handle(proj_t *p, rd_kafka_message_t *m)
{
        keel__history_reader_t *r = p->readers;
        int32_t part = m->partition;
        char err[512];
        int rc;

        if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
                /* At the end: with read_committed the end may lie past
                 * the last record (transaction markers). */
                if (part >= 0 && part < p->partitions) {
                        pthread_mutex_lock(&p->lock);
                        if (m->offset > p->positions[part])
                                p->positions[part] = m->offset;
                        check_ready(p);
                        pthread_cond_broadcast(&p->changed);
                        pthread_mutex_unlock(&p->lock);
                }
                return;
        }
        if (m->err) {
                keel_log(KEEL_LOG_WARN, "projector",
                         "msg=\"consumer error\" error=\"%s\"",
                         rd_kafka_message_errstr(m));
                return;
        }
        if (part < 0 || part >= p->partitions)
                return;
        atomic_fetch_add(&p->m.records, 1);
        /* The fold is shared with the HTTP thread: feed under the lock. */
        pthread_mutex_lock(&p->lock);
        r[part].offset = m->offset;
        rc = keel__history_reader_feed(&r[part], m->payload, m->len, err,
                                       sizeof(err));
        p->positions[part] = m->offset + 1;
        check_ready(p);
        pthread_cond_broadcast(&p->changed);
        pthread_mutex_unlock(&p->lock);
        if (rc) {
                unsigned long long n = atomic_fetch_add(&p->m.undecodable, 1);
                /* A flood of bad records must not flood the log. */
                keel_log(n < 10 ? KEEL_LOG_WARN : KEEL_LOG_DEBUG, "projector",
                         "msg=\"undecodable record, skipped\" partition=%d "
                         "offset=%lld error=\"%s\"",
                         (int)part, (long long)m->offset, err);
        }
}

static rd_kafka_t *consumer_new(proj_t *p, char *errstr, size_t errsize)
{
        rd_kafka_conf_t *conf =
            keel__kafka_conf_new(p->cfg, KEEL__CONSUMER, errstr, errsize);
        rd_kafka_t *rk;
        char rderr[512];

        if (!conf)
                return NULL;
        /* consumer_poll needs a group.id; this consumer never joins the
         * group (assign, not subscribe) and never commits. */
        if (rd_kafka_conf_set(conf, "group.id", "keel-projector", rderr,
                              sizeof(rderr)) != RD_KAFKA_CONF_OK ||
            rd_kafka_conf_set(conf, "enable.auto.commit", "false", rderr,
                              sizeof(rderr)) != RD_KAFKA_CONF_OK ||
            rd_kafka_conf_set(conf, "enable.auto.offset.store", "false", rderr,
                              sizeof(rderr)) != RD_KAFKA_CONF_OK ||
            rd_kafka_conf_set(conf, "isolation.level", "read_committed", rderr,
                              sizeof(rderr)) != RD_KAFKA_CONF_OK ||
            rd_kafka_conf_set(conf, "enable.partition.eof", "true", rderr,
                              sizeof(rderr)) != RD_KAFKA_CONF_OK ||
            keel__kafka_conf_default(conf, p->cfg, "fetch.wait.max.ms", "100",
                                     rderr, sizeof(rderr)) ||
            keel__kafka_conf_default(conf, p->cfg, "client.id",
                                     "keel-projector", rderr, sizeof(rderr))) {
                snprintf(errstr, errsize, "Kafka consumer: %.400s", rderr);
                rd_kafka_conf_destroy(conf);
                return NULL;
        }
        rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, rderr, sizeof(rderr));
        if (!rk) {
                snprintf(errstr, errsize, "Kafka consumer: %.400s", rderr);
                rd_kafka_conf_destroy(conf);
                return NULL;
        }
        return rk;
}

/* ---- reading single records back ----------------------------------------- */

/* Seek instead of reading through a gap wider than this. */
#define FETCH_GAP     500
#define FETCH_WAIT_MS 10000

/* Decode m into out as {"seq", "type", "record"}. */
static int fetched(const rd_kafka_message_t *m, json_t *out, char *errstr,
                   size_t errsize)
{
        const char *type;
        json_t *rec;
        int rc =
            keel_codec_decode(m->payload, m->len, &type, &rec, errstr, errsize);
        if (rc)
                return rc;
        if (json_array_append_new(out, json_pack("{sO ss so}", "seq",
                                                 json_object_get(rec, "seq"),
                                                 "type", type, "record", rec)))
                return KEEL_ERR_NOMEM;
        return KEEL_OK;
}

int proj_fetch_events(proj_t *p, int32_t part, const int64_t *offsets, size_t n,
                      json_t *out, char *errstr, size_t errstr_size)
{
        rd_kafka_topic_t *rkt;
        int64_t deadline;
        size_t i = 0;
        int rc = KEEL_OK;

        if (!n)
                return KEEL_OK;
        pthread_mutex_lock(&p->fetch_lock);
        if (!p->fetcher)
                p->fetcher = consumer_new(p, errstr, errstr_size);
        if (!p->fetcher) {
                pthread_mutex_unlock(&p->fetch_lock);
                return KEEL_ERR_KAFKA;
        }
        rkt = rd_kafka_topic_new(p->fetcher, KEEL_TOPIC_HISTORY, NULL);
        if (!rkt || rd_kafka_consume_start(rkt, part, offsets[0])) {
                rc = keel__fail(errstr, errstr_size, KEEL_ERR_KAFKA,
                                "cannot read %s[%d]: %s", KEEL_TOPIC_HISTORY,
                                (int)part,
                                rd_kafka_err2str(rd_kafka_last_error()));
                if (rkt)
                        rd_kafka_topic_destroy(rkt);
                pthread_mutex_unlock(&p->fetch_lock);
                return rc;
        }
        deadline = keel__clock_ms(CLOCK_MONOTONIC) + FETCH_WAIT_MS;
        while (i < n && !rc) {
                rd_kafka_message_t *m;
                if (keel__clock_ms(CLOCK_MONOTONIC) > deadline) {
                        rc = keel__fail(errstr, errstr_size, KEEL_ERR_TRANSPORT,
                                        "%s[%d] offset %lld was not read "
                                        "back within %d ms",
                                        KEEL_TOPIC_HISTORY, (int)part,
                                        (long long)offsets[i], FETCH_WAIT_MS);
                        break;
                }
                m = rd_kafka_consume(rkt, part, 200);
                if (!m)
                        continue;
                if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
                        /* Past the end: the records left are gone
                         * (compacted away). */
                        if (m->offset > offsets[n - 1])
                                i = n;
                } else if (m->err) {
                        rc =
                            keel__fail(errstr, errstr_size, KEEL_ERR_KAFKA,
                                       "reading %s[%d]: %s", KEEL_TOPIC_HISTORY,
                                       (int)part, rd_kafka_message_errstr(m));
                } else {
                        /* Records compacted away are skipped over. */
                        while (i < n && offsets[i] < m->offset)
                                i++;
                        if (i < n && offsets[i] == m->offset) {
                                rc = fetched(m, out, errstr, errstr_size);
                                i++;
                        }
                        if (!rc && i < n &&
                            offsets[i] - m->offset > FETCH_GAP &&
                            rd_kafka_seek(rkt, part, offsets[i], 5000))
                                rc = keel__fail(errstr, errstr_size,
                                                KEEL_ERR_KAFKA,
                                                "cannot seek %s[%d]",
                                                KEEL_TOPIC_HISTORY, (int)part);
                }
                rd_kafka_message_destroy(m);
        }
        rd_kafka_consume_stop(rkt, part);
        rd_kafka_topic_destroy(rkt);
        pthread_mutex_unlock(&p->fetch_lock);
        return rc;
}

/* The reader thread: read every partition until told to stop. */
static void *run(void *arg)
{
        proj_t *p = arg;
        rd_kafka_t *rk = NULL;
        rd_kafka_topic_partition_list_t *tl;
        char err[512];
        int missing;

        rk = consumer_new(p, err, sizeof(err));
        if (!rk) {
                keel_log(KEEL_LOG_ERROR, "projector", "msg=\"%s\"", err);
                return NULL;
        }
        missing = query_ends(p, rk);
        tl = rd_kafka_topic_partition_list_new(p->partitions);
        for (int32_t i = 0; tl && i < p->partitions; i++)
                rd_kafka_topic_partition_list_add(tl, KEEL_TOPIC_HISTORY, i)
                    ->offset = RD_KAFKA_OFFSET_BEGINNING;
        if (!tl || rd_kafka_assign(rk, tl)) {
                keel_log(KEEL_LOG_ERROR, "projector",
                         "msg=\"cannot assign keel.history\"");
                if (tl)
                        rd_kafka_topic_partition_list_destroy(tl);
                rd_kafka_destroy(rk);
                return NULL;
        }
        rd_kafka_topic_partition_list_destroy(tl);
        pthread_mutex_lock(&p->lock);
        check_ready(p); /* an empty topic is read at once */
        pthread_mutex_unlock(&p->lock);

        while (!atomic_load(&p->stop)) {
                rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, POLL_MS);
                if (missing && !m) {
                        missing = query_ends(p, rk);
                        pthread_mutex_lock(&p->lock);
                        check_ready(p);
                        pthread_mutex_unlock(&p->lock);
                }
                if (!m)
                        continue;
                handle(p, m);
                rd_kafka_message_destroy(m);
        }
        rd_kafka_consumer_close(rk);
        rd_kafka_destroy(rk);
        return NULL;
}

int proj_reader_start(proj_t *p, char *errstr, size_t errstr_size)
{
        if (pthread_create(&p->thread, NULL, run, p)) {
                snprintf(errstr, errstr_size, "cannot start the reader");
                return KEEL_ERR_NOMEM;
        }
        p->thread_started = 1;
        return KEEL_OK;
}

void proj_reader_stop(proj_t *p)
{
        if (!p->thread_started)
                return;
        atomic_store(&p->stop, 1);
        pthread_join(p->thread, NULL);
        p->thread_started = 0;
}
