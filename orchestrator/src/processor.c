/*
 * processor.c: a partition processor (orch.h). Opening one restores the
 * partition's workflows from keel.history[p] by the reader rules, appends
 * a PartitionClaim with the next epoch and reads history on until the
 * claim comes back, so whatever the previous owner committed meanwhile is
 * applied first. Each batch then is one Kafka transaction on the
 * processor's own transactional producer: the history events, the tasks,
 * the records workflows emit to other topics, any dead letters and, last,
 * the Checkpoint with the inbox offset. Any failure inside a transaction
 * aborts it and the caller reopens the processor, so its memory is always
 * what the log says.
 */
#include "orch.h"

#include "config_int.h"
#include "history_int.h"
#include "keel/codec.h"
#include "keel/log.h"
#include "keel/partition.h"
#include "keel/topics.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *msg, void *opaque)
{
        orch_pp_t *pp = opaque;
        (void)rk;
        if (msg->err) {
                atomic_store(&pp->dr_failed, 1);
                keel_log(KEEL_LOG_WARN, "orchestrator",
                         "partition=%d msg=\"delivery failed\" topic=%s "
                         "error=\"%s\"",
                         pp->p, rd_kafka_topic_name(msg->rkt),
                         rd_kafka_err2str(msg->err));
        }
}

static int timeout_ms(const orch_pp_t *pp)
{
        int64_t t;
        keel_config_get_int(pp->o->cfg, "timeout.ms", &t);
        return (int)t;
}

/* Log a librdkafka error object and free it. Returns KEEL_ERR_KAFKA. */
static int kerr(orch_pp_t *pp, const char *what, rd_kafka_error_t *e)
{
        rd_kafka_resp_err_t code = rd_kafka_error_code(e);
        if (rd_kafka_error_is_fatal(e) || code == RD_KAFKA_RESP_ERR__FENCED ||
            code == RD_KAFKA_RESP_ERR_PRODUCER_FENCED ||
            code == RD_KAFKA_RESP_ERR_INVALID_PRODUCER_EPOCH)
                pp->fenced = 1;
        keel_log(KEEL_LOG_ERROR, "orchestrator",
                 "partition=%d msg=\"%s failed\" error=\"%s\" fatal=%d "
                 "retriable=%d",
                 pp->p, what, rd_kafka_error_string(e),
                 rd_kafka_error_is_fatal(e), rd_kafka_error_is_retriable(e));
        rd_kafka_error_destroy(e);
        return KEEL_ERR_KAFKA;
}

/* Fetch the metadata of topic (with all: of every topic) into rk, which
 * also makes it know topic. KEEL_OK or KEEL_ERR_KAFKA. */
static int learn_topics(rd_kafka_t *rk, const char *topic, int all, int timeout)
{
        const struct rd_kafka_metadata *md;
        rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
        rd_kafka_resp_err_t e = RD_KAFKA_RESP_ERR__FAIL;
        if (rkt)
                e = rd_kafka_metadata(rk, all, all ? NULL : rkt, &md, timeout);
        if (!e)
                rd_kafka_metadata_destroy(md);
        if (rkt)
                rd_kafka_topic_destroy(rkt);
        return e ? KEEL_ERR_KAFKA : KEEL_OK;
}

static rd_kafka_t *new_producer(orch_pp_t *pp, char *err, size_t errsize)
{
        rd_kafka_conf_t *conf =
            keel__kafka_conf_new(pp->o->cfg, KEEL__PRODUCER, err, errsize);
        rd_kafka_t *rk;
        if (!conf)
                return NULL;
        if (rd_kafka_conf_set(conf, "transactional.id", pp->txn_id, err,
                              errsize) ||
            keel__kafka_conf_default(conf, pp->o->cfg, "transaction.timeout.ms",
                                     "10000", err, errsize) ||
            /* Records wait for the commit, which sends them at once
             * (commit_transaction() flushes, and a flush ignores linger):
             * fewer, fuller requests and far fewer wake-ups of the
             * producer's threads, twelve producers of them. */
            keel__kafka_conf_default(conf, pp->o->cfg, "linger.ms", "100", err,
                                     errsize)) {
                rd_kafka_conf_destroy(conf);
                return NULL;
        }
        rd_kafka_conf_set_dr_msg_cb(conf, dr_cb);
        rd_kafka_conf_set_opaque(conf, pp);
        rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, errsize);
        if (!rk) {
                rd_kafka_conf_destroy(conf);
                return NULL;
        }
        /* Learn keel's topics now: a producer otherwise looks up a new
         * topic only at its next periodic scan, up to a second later. */
        learn_topics(rk, KEEL_TOPIC_HISTORY, 1, timeout_ms(pp));
        return rk;
}

/* Produce value (malloc'd; freed here or by librdkafka) to topic/part
 * with the header keel-id, then `headers` ([{"name","value"}], may be
 * NULL). key may be NULL. */
static int produce(orch_pp_t *pp, const char *topic, int32_t part,
                   const void *key, size_t keylen, unsigned char *value,
                   size_t len, const char *keel_id, const json_t *headers)
{
        rd_kafka_headers_t *hdrs =
            rd_kafka_headers_new(1 + json_array_size(headers));
        size_t i;
        const json_t *h;

        rd_kafka_header_add(hdrs, "keel-id", -1, keel_id, -1);
        json_array_foreach(headers, i, h)
        {
                rd_kafka_header_add(
                    hdrs, json_string_value(json_object_get(h, "name")), -1,
                    json_string_value(json_object_get(h, "value")), -1);
        }
        for (int tries = 0;; tries++) {
                /* On success librdkafka owns hdrs and value. */
                rd_kafka_resp_err_t e = rd_kafka_producev(
                    pp->producer, RD_KAFKA_V_TOPIC(topic),
                    RD_KAFKA_V_PARTITION(part), RD_KAFKA_V_KEY(key, keylen),
                    RD_KAFKA_V_VALUE(value, len),
                    RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_FREE),
                    RD_KAFKA_V_HEADERS(hdrs), RD_KAFKA_V_END);
                if (!e)
                        return KEEL_OK;
                if (e == RD_KAFKA_RESP_ERR__QUEUE_FULL && tries < 1000) {
                        rd_kafka_poll(pp->producer, 10);
                        continue;
                }
                keel_log(KEEL_LOG_ERROR, "orchestrator",
                         "partition=%d msg=\"produce failed\" topic=%s "
                         "error=\"%s\"",
                         pp->p, topic, rd_kafka_err2str(e));
                rd_kafka_headers_destroy(hdrs);
                free(value);
                return KEEL_ERR_KAFKA;
        }
}

/* Encode rec as a `type` record and produce it, with headers as for
 * produce(). */
static int produce_record_h(orch_pp_t *pp, const char *topic, int32_t part,
                            const void *key, size_t keylen, const char *type,
                            const json_t *rec, const char *keel_id,
                            const json_t *headers)
{
        unsigned char *buf;
        size_t len;
        char err[256];
        int rc = keel_codec_encode(type, rec, &buf, &len, err, sizeof(err));
        if (rc) {
                keel_log(KEEL_LOG_ERROR, "orchestrator",
                         "partition=%d msg=\"cannot encode\" type=%s "
                         "error=%s detail=\"%s\"",
                         pp->p, type, keel_err_name(rc), err);
                return rc;
        }
        return produce(pp, topic, part, key, keylen, buf, len, keel_id,
                       headers);
}

static int produce_record(orch_pp_t *pp, const char *topic, int32_t part,
                          const void *key, size_t keylen, const char *type,
                          const json_t *rec, const char *keel_id)
{
        return produce_record_h(pp, topic, part, key, keylen, type, rec,
                                keel_id, NULL);
}

static int topic_target(orch_pp_t *pp, const char *topic, int32_t *parts,
                        char *why, size_t whysize);

/* A record keel cannot process goes to keel.dlq with the reason. */
static int dead_letter(orch_pp_t *pp, const rd_kafka_message_t *msg,
                       const char *error, const char *reason, int64_t now)
{
        int32_t parts = orch_topic_partitions(pp->o, KEEL_TOPIC_DLQ);
        char key[64];
        json_t *rec;
        int rc;

        rec = keel_codec_dead_letter(rd_kafka_topic_name(msg->rkt),
                                     msg->partition, msg->offset, msg->key,
                                     msg->key_len, msg->payload, msg->len,
                                     error, reason, "orchestrator", now);
        if (!rec)
                return KEEL_ERR_NOMEM;
        keel_log(KEEL_LOG_WARN, "orchestrator",
                 "partition=%d offset=%lld msg=\"dead-lettered\" error=%s "
                 "reason=\"%s\"",
                 pp->p, (long long)msg->offset, error, reason);
        snprintf(key, sizeof(key), "%s/%d/%lld", rd_kafka_topic_name(msg->rkt),
                 (int)msg->partition, (long long)msg->offset);
        /* Keyed like the original, so it lands beside its workflow. */
        rc = produce_record(pp, KEEL_TOPIC_DLQ, parts > 0 ? pp->p % parts : 0,
                            msg->key ? msg->key : key,
                            msg->key ? msg->key_len : strlen(key),
                            "keel.dlq.DeadLetter", rec, key);
        json_decref(rec);
        atomic_fetch_add(&pp->o->metrics.dlq, 1);
        return rc;
}

/* ---- restore ------------------------------------------------------------ */

typedef struct restore_s {
        orch_pp_t *pp;
        uint64_t n, errors;
} restore_t;

/* Each event of a complete batch, raw: the machine keeps it encoded and
 * decodes only what is still open at the end (machine_int.h). */
static void restore_apply(void *opaque, const keel__history_raw_t *ev)
{
        restore_t *rs = opaque;
        char err[512];
        int rc = keel__machine_restore_raw(rs->pp->m, ev, err, sizeof(err));
        rs->n++;
        if (rc && rs->errors++ < 10)
                keel_log(KEEL_LOG_WARN, "orchestrator",
                         "partition=%d msg=\"history event skipped\" "
                         "error=%s detail=\"%s\"",
                         rs->pp->p, keel_err_name(rc), err);
}

/* One partition being opened: its processor and its history reader. */
typedef struct opening_s {
        orch_pp_t *pp;
        keel__history_reader_t hr;
        restore_t rs;
        uint64_t records;
        int eof;    /* reached the end of history */
        int failed; /* gave up on this partition */
        int64_t t0;
} opening_t;

static opening_t *find_opening(opening_t *ops, int n, int32_t p)
{
        for (int i = 0; i < n; i++)
                if (ops[i].pp && ops[i].pp->p == p)
                        return &ops[i];
        return NULL;
}

/* Are we done reading? Phase 0: every partition at its end; phase 1:
 * every partition has read its own claim back. */
static int reading_done(opening_t *ops, int n, int phase)
{
        for (int i = 0; i < n; i++) {
                opening_t *op = &ops[i];
                if (op->failed || !op->pp)
                        continue;
                if (phase == 0 && !op->eof)
                        return 0;
                if (phase == 1 && op->hr.epoch < op->pp->epoch)
                        return 0;
        }
        return 1;
}

/* Read the partitions' history with consumer c for phase 0 or 1. The
 * timeout bounds a wait with no record coming, not the whole read: a
 * history of millions of records takes as long as it takes. */
static int read_history(orch_t *o, rd_kafka_t *c, opening_t *ops, int n,
                        int phase, int timeout)
{
        int64_t deadline = orch_now_ms() + timeout;
        char err[512];

        while (!reading_done(ops, n, phase)) {
                rd_kafka_message_t *msg;
                opening_t *op;
                if (orch_now_ms() > deadline) {
                        keel_log(KEEL_LOG_ERROR, "orchestrator",
                                 "msg=\"reading history timed out: nothing "
                                 "read for timeout.ms\" timeout_ms=%d",
                                 timeout);
                        return KEEL_ERR_TIMEOUT;
                }
                msg = rd_kafka_consumer_poll(c, 100);
                if (!msg)
                        continue;
                deadline = orch_now_ms() + timeout; /* progress */
                op = find_opening(ops, n, msg->partition);
                if (!op || op->failed) {
                        rd_kafka_message_destroy(msg);
                        continue;
                }
                if (msg->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
                        op->eof = 1;
                } else if (msg->err) {
                        keel_log(KEEL_LOG_WARN, "orchestrator",
                                 "partition=%d msg=\"history read error\" "
                                 "error=\"%s\"",
                                 (int)msg->partition,
                                 rd_kafka_message_errstr(msg));
                } else {
                        op->records++;
                        if (keel__history_reader_feed(&op->hr, msg->payload,
                                                      msg->len, err,
                                                      sizeof(err)) &&
                            op->hr.undecodable < 10)
                                keel_log(KEEL_LOG_WARN, "orchestrator",
                                         "partition=%d offset=%lld "
                                         "msg=\"undecodable history record "
                                         "skipped\" detail=\"%s\"",
                                         (int)msg->partition,
                                         (long long)msg->offset, err);
                }
                rd_kafka_message_destroy(msg);
        }
        (void)o;
        return KEEL_OK;
}

static rd_kafka_t *history_consumer(orch_t *o, opening_t *ops, int n, char *err,
                                    size_t errsize)
{
        rd_kafka_conf_t *conf =
            keel__kafka_conf_new(o->cfg, KEEL__CONSUMER, err, errsize);
        rd_kafka_topic_partition_list_t *tl;
        char group[300];
        rd_kafka_t *c;

        if (!conf)
                return NULL;
        snprintf(group, sizeof(group), "%s-orch-restore",
                 keel_config_get(o->cfg, "cluster.name"));
        if (rd_kafka_conf_set(conf, "group.id", group, err, errsize) ||
            rd_kafka_conf_set(conf, "enable.auto.commit", "false", err,
                              errsize) ||
            rd_kafka_conf_set(conf, "enable.partition.eof", "true", err,
                              errsize) ||
            rd_kafka_conf_set(conf, "isolation.level", "read_committed", err,
                              errsize) ||
            /* An empty fetch would otherwise wait its full 500 ms: restore
             * wants the end of the log now. */
            keel__kafka_conf_default(conf, o->cfg, "fetch.wait.max.ms", "10",
                                     err, errsize)) {
                rd_kafka_conf_destroy(conf);
                return NULL;
        }
        c = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, errsize);
        if (!c) {
                rd_kafka_conf_destroy(conf);
                return NULL;
        }
        tl = rd_kafka_topic_partition_list_new(n);
        for (int i = 0; i < n; i++)
                if (ops[i].pp)
                        rd_kafka_topic_partition_list_add(
                            tl, KEEL_TOPIC_HISTORY, ops[i].pp->p)
                            ->offset = RD_KAFKA_OFFSET_BEGINNING;
        rd_kafka_assign(c, tl);
        rd_kafka_topic_partition_list_destroy(tl);
        return c;
}

static int claim(orch_pp_t *pp, int64_t epoch)
{
        char key[64];
        json_t *rec;
        rd_kafka_error_t *e;
        int rc;

        if ((e = rd_kafka_begin_transaction(pp->producer)))
                return kerr(pp, "begin_transaction", e);
        snprintf(key, sizeof(key), "%s%d/%lld", KEEL__KEY_CLAIM, pp->p,
                 (long long)epoch);
        rec = json_pack("{si sI ss sI}", "partition", (int)pp->p, "epoch",
                        (json_int_t)epoch, "owner", pp->owner, "ts",
                        (json_int_t)orch_now_ms());
        rc = produce_record(pp, KEEL_TOPIC_HISTORY, pp->p, key, strlen(key),
                            "keel.history.PartitionClaim", rec, key);
        json_decref(rec);
        if (rc) {
                rd_kafka_error_t *ae =
                    rd_kafka_abort_transaction(pp->producer, timeout_ms(pp));
                if (ae)
                        rd_kafka_error_destroy(ae);
                return rc;
        }
        if ((e = rd_kafka_commit_transaction(pp->producer, timeout_ms(pp))))
                return kerr(pp, "committing the claim", e);
        return KEEL_OK;
}

/* A processor with its transactional producer ready, not yet restored. */
static orch_pp_t *pp_new(orch_t *o, int32_t p)
{
        orch_pp_t *pp = calloc(1, sizeof(*pp));
        const char *lifecycle = keel_config_get(o->cfg, "lifecycle.topic");
        rd_kafka_error_t *e;
        char err[512], host[128] = "";
        int32_t parts;

        if (!pp)
                return NULL;
        pp->o = o;
        pp->p = p;
        pp->last_inbox = -1;
        pp->committed = -1;
        gethostname(host, sizeof(host) - 1);
        snprintf(pp->txn_id, sizeof(pp->txn_id), "%s-orch-%d",
                 keel_config_get(o->cfg, "cluster.name"), p);
        snprintf(pp->owner, sizeof(pp->owner), "%s@%s:%d:%lld", pp->txn_id,
                 host, (int)getpid(), (long long)orch_now_ms());
        if (keel__out_init(&pp->out) || !(pp->m = keel__machine_new(o->reg)) ||
            !(pp->emit_topics = json_object())) {
                orch_pp_close(pp);
                return NULL;
        }
        {
                /* Retention and history limits, from the settings. */
                keel__machine_limits_t lim;
                json_t *by_type;
                int rc =
                    keel__machine_limits_from_config(o->cfg, &lim, &by_type);
                if (!rc)
                        rc = keel__machine_set_limits(pp->m, &lim);
                json_decref(by_type);
                if (rc) {
                        orch_pp_close(pp);
                        return NULL;
                }
        }
        if (!(pp->producer = new_producer(pp, err, sizeof(err)))) {
                keel_log(KEEL_LOG_ERROR, "orchestrator",
                         "partition=%d msg=\"producer\" error=\"%s\"", p, err);
                orch_pp_close(pp);
                return NULL;
        }
        /* On real Kafka this fences the previous owner's producer. */
        if ((e = rd_kafka_init_transactions(pp->producer, timeout_ms(pp)))) {
                kerr(pp, "init_transactions", e);
                orch_pp_close(pp);
                return NULL;
        }
        /* A lifecycle stream that is configured must be there: its records
         * would all go to keel.dlq otherwise. */
        if (*lifecycle &&
            topic_target(pp, lifecycle, &parts, err, sizeof(err))) {
                keel_log(KEEL_LOG_ERROR, "orchestrator",
                         "partition=%d msg=\"lifecycle.topic is not there; "
                         "create it\" topic=%s error=\"%s\"",
                         p, lifecycle, err);
                orch_pp_close(pp);
                return NULL;
        }
        return pp;
}

int orch_pps_open(orch_t *o, const int32_t *parts, int n, orch_pp_t **out)
{
        opening_t *ops = calloc((size_t)n, sizeof(*ops));
        rd_kafka_t *c = NULL;
        char err[512];
        int64_t timeout;
        int rc = KEEL_OK, opened = 0;

        keel_config_get_int(o->cfg, "timeout.ms", &timeout);
        for (int i = 0; i < n; i++)
                out[i] = NULL;
        if (!ops)
                return KEEL_ERR_NOMEM;
        for (int i = 0; i < n; i++) {
                ops[i].t0 = orch_now_ms();
                ops[i].pp = pp_new(o, parts[i]);
                if (!ops[i].pp)
                        continue;
                ops[i].rs.pp = ops[i].pp;
                if (keel__history_reader_init_raw(&ops[i].hr, restore_apply,
                                                  &ops[i].rs)) {
                        orch_pp_close(ops[i].pp);
                        ops[i].pp = NULL;
                }
        }
        /* Read what previous owners committed, claim, and read on until
         * each claim is back: records that landed meanwhile are applied
         * first. */
        if (!(c = history_consumer(o, ops, n, err, sizeof(err)))) {
                keel_log(KEEL_LOG_ERROR, "orchestrator",
                         "msg=\"history consumer\" error=\"%s\"", err);
                rc = KEEL_ERR_CONFIG;
                goto done;
        }
        if ((rc = read_history(o, c, ops, n, 0, (int)timeout)))
                goto done;
        for (int i = 0; i < n; i++) {
                if (!ops[i].pp)
                        continue;
                ops[i].pp->epoch = ops[i].hr.epoch + 1;
                if (claim(ops[i].pp, ops[i].pp->epoch))
                        ops[i].failed = 1;
        }
        if ((rc = read_history(o, c, ops, n, 1, (int)timeout)))
                goto done;
        for (int i = 0; i < n; i++) {
                opening_t *op = &ops[i];
                orch_pp_t *pp = op->pp;
                keel__machine_stats_t st;
                if (!pp || op->failed)
                        continue;
                if (op->hr.epoch != pp->epoch ||
                    strcmp(op->hr.claim_owner, pp->owner)) {
                        keel_log(KEEL_LOG_WARN, "orchestrator",
                                 "partition=%d msg=\"another owner claimed "
                                 "it first\" epoch=%lld owner=\"%s\"",
                                 pp->p, (long long)op->hr.epoch,
                                 op->hr.claim_owner);
                        continue;
                }
                pp->last_inbox = op->hr.checkpoint;
                pp->inbox_next = op->hr.checkpoint >= 0
                                     ? op->hr.checkpoint + 1
                                     : RD_KAFKA_OFFSET_BEGINNING;
                atomic_fetch_add(&o->metrics.restores, 1);
                atomic_fetch_add(&o->metrics.restore_events, op->records);
                atomic_fetch_add(&o->metrics.restore_ms,
                                 (uint64_t)(orch_now_ms() - op->t0));
                atomic_fetch_add(&o->metrics.fenced, op->hr.fenced);
                keel__machine_stats(pp->m, &st);
                atomic_fetch_add(&o->metrics.open_workflows, (int64_t)st.open);
                keel_log(KEEL_LOG_INFO, "orchestrator",
                         "partition=%d msg=claimed epoch=%lld records=%llu "
                         "events=%llu fenced=%llu torn=%llu tombstones=%llu "
                         "checkpoint=%lld open=%zu restore_ms=%lld",
                         pp->p, (long long)pp->epoch,
                         (unsigned long long)op->records,
                         (unsigned long long)op->rs.n,
                         (unsigned long long)op->hr.fenced,
                         (unsigned long long)op->hr.torn,
                         (unsigned long long)op->hr.tombstones,
                         (long long)op->hr.checkpoint, st.open,
                         (long long)(orch_now_ms() - op->t0));
                /* Blocked runs may have been fixed by this deployment. */
                if (keel__machine_resume(pp->m, orch_now_ms(), &pp->out))
                        continue;
                out[i] = pp;
                op->pp = NULL; /* handed over */
                opened++;
        }
done:
        if (c) {
                rd_kafka_consumer_close(c);
                rd_kafka_destroy(c);
        }
        for (int i = 0; i < n; i++) {
                if (ops[i].pp)
                        orch_pp_close(ops[i].pp);
                keel__history_reader_destroy(&ops[i].hr);
        }
        free(ops);
        return rc ? rc : opened == n ? KEEL_OK : KEEL_ERR_KAFKA;
}

void orch_pp_close(orch_pp_t *pp)
{
        if (!pp)
                return;
        if (pp->m) {
                keel__machine_stats_t st;
                keel__machine_stats(pp->m, &st);
                if (pp->epoch)
                        atomic_fetch_sub(&pp->o->metrics.open_workflows,
                                         (int64_t)st.open);
        }
        if (pp->producer)
                rd_kafka_destroy(pp->producer);
        keel__machine_destroy(pp->m);
        keel__out_destroy(&pp->out);
        json_decref(pp->emit_topics);
        free(pp);
}

/* ---- processing ---------------------------------------------------------- */

/* Dead-letter what the machine refused while applying msg. */
static int drain_rejects(orch_pp_t *pp, const rd_kafka_message_t *msg,
                         int64_t now)
{
        size_t i;
        json_t *r;
        int rc = KEEL_OK;
        json_array_foreach(pp->out.rejects, i, r)
        {
                char reason[700];
                snprintf(reason, sizeof(reason), "%s refused: %s",
                         json_string_value(json_object_get(r, "command")),
                         json_string_value(json_object_get(r, "reason")));
                if (!rc)
                        rc = dead_letter(
                            pp, msg,
                            json_string_value(json_object_get(r, "error")),
                            reason, now);
        }
        atomic_fetch_add(&pp->o->metrics.rejected,
                         json_array_size(pp->out.rejects));
        json_array_clear(pp->out.rejects);
        return rc;
}

static int apply_message(orch_pp_t *pp, const rd_kafka_message_t *msg,
                         int64_t now)
{
        const char *type;
        json_t *rec;
        char err[512];
        int rc;

        rc = keel_codec_decode(msg->payload, msg->len, &type, &rec, err,
                               sizeof(err));
        if (rc)
                return dead_letter(pp, msg, keel_err_name(rc), err, now);
        rc = keel__machine_command(pp->m, type, rec, now, &pp->out);
        json_decref(rec);
        if (rc == KEEL_ERR_INVALID_ARG) {
                snprintf(err, sizeof(err),
                         "a %s record is not an inbox command", type);
                return dead_letter(pp, msg, keel_err_name(rc), err, now);
        }
        if (rc)
                return rc;
        return drain_rejects(pp, msg, now);
}

/* ---- records for topics other than keel's ------------------------------ */

/*
 * Where records for topic can go: KEEL_OK with *parts, its partition
 * count, once the producer knows it; KEEL_ERR_NOT_FOUND (why says why)
 * when the cluster says the topic does not exist or may not be written;
 * KEEL_ERR_KAFKA when it could not say (the transaction fails and is
 * tried again).
 */
static int topic_target(orch_pp_t *pp, const char *topic, int32_t *parts,
                        char *why, size_t whysize)
{
        const struct rd_kafka_metadata *md;
        rd_kafka_topic_t *rkt;
        rd_kafka_resp_err_t e = RD_KAFKA_RESP_ERR__TRANSPORT;

        if ((*parts = orch_topic_partitions(pp->o, topic)) > 0) {
                if (json_object_get(pp->emit_topics, topic))
                        return KEEL_OK;
                /* As for keel's topics (new_producer()): a record would
                 * otherwise wait up to a second for the producer to look
                 * the topic up. */
                if (learn_topics(pp->producer, topic, 0, timeout_ms(pp)))
                        return KEEL_ERR_KAFKA;
                json_object_set_new(pp->emit_topics, topic, json_true());
                return KEEL_OK;
        }
        /* Why not? The consumer asks without creating topics, whatever
         * the broker's auto.create.topics.enable: a topic's partitions and
         * settings are its owner's to choose. */
        rkt = rd_kafka_topic_new(pp->o->consumer, topic, NULL);
        if (rkt &&
            !rd_kafka_metadata(pp->o->consumer, 0, rkt, &md, timeout_ms(pp))) {
                e = md->topic_cnt == 1 ? md->topics[0].err
                                       : RD_KAFKA_RESP_ERR__TRANSPORT;
                rd_kafka_metadata_destroy(md);
        }
        if (rkt)
                rd_kafka_topic_destroy(rkt);
        if (e != RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART &&
            e != RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED &&
            e != RD_KAFKA_RESP_ERR_TOPIC_EXCEPTION)
                return KEEL_ERR_KAFKA;
        snprintf(why, whysize, "topic %s: %s", topic, rd_kafka_err2str(e));
        return KEEL_ERR_NOT_FOUND;
}

/* A record that cannot go to topic goes to keel.dlq in the same
 * transaction, with its key (may be NULL), value (len bytes) and headers,
 * keyed by its key (its keel-id when it has none), beside its workflow. */
static int undeliverable(orch_pp_t *pp, const char *topic, int32_t part,
                         const char *key, const void *value, size_t len,
                         const char *keel_id, const json_t *headers,
                         const char *why, int64_t now)
{
        int32_t parts = orch_topic_partitions(pp->o, KEEL_TOPIC_DLQ);
        char reason[1600];
        json_t *rec;
        int rc;

        snprintf(reason, sizeof(reason),
                 "the record with keel-id %s cannot be produced: %s", keel_id,
                 why);
        keel_log(KEEL_LOG_WARN, "orchestrator",
                 "partition=%d msg=\"record dead-lettered\" keel_id=%s "
                 "topic=%s reason=\"%s\"",
                 pp->p, keel_id, topic, why);
        rec = keel_codec_dead_letter(
            topic, part, -1, key, key ? strlen(key) : 0, value, len,
            "KEEL_ERR_NOT_FOUND", reason, "orchestrator", now);
        if (!rec)
                return KEEL_ERR_NOMEM;
        rc = produce_record_h(pp, KEEL_TOPIC_DLQ, parts > 0 ? pp->p % parts : 0,
                              key ? key : keel_id, strlen(key ? key : keel_id),
                              "keel.dlq.DeadLetter", rec, keel_id, headers);
        json_decref(rec);
        atomic_fetch_add(&pp->o->metrics.dlq, 1);
        return rc;
}

/* Produce a record a workflow emitted (keel__out_t emits): its value is
 * the JSON text as is, its partition murmur2 of the key as Kafka's Java
 * client picks it (of the keel-id without a key, so that a record
 * produced again after an aborted transaction lands where the first try
 * did) or the one the workflow asked for. */
static int write_emit(orch_pp_t *pp, const json_t *em, int64_t now)
{
        const char *topic = json_string_value(json_object_get(em, "topic"));
        const char *key = json_string_value(json_object_get(em, "key"));
        const char *value = json_string_value(json_object_get(em, "value"));
        const char *keel_id = json_string_value(json_object_get(em, "keel_id"));
        const json_t *headers = json_object_get(em, "headers");
        const json_t *want = json_object_get(em, "partition");
        int32_t parts, part = -1;
        char why[512];
        char *copy;
        int rc = topic_target(pp, topic, &parts, why, sizeof(why));

        if (!rc && json_is_integer(want)) {
                part = (int32_t)json_integer_value(want);
                if (part < 0 || part >= parts) {
                        snprintf(why, sizeof(why),
                                 "topic %s has no partition %d (it has %d)",
                                 topic, (int)part, (int)parts);
                        rc = KEEL_ERR_NOT_FOUND;
                }
        } else if (!rc) {
                part = key ? keel_partition_of(key, strlen(key), parts)
                           : keel_partition_of(keel_id, strlen(keel_id), parts);
        }
        if (rc == KEEL_ERR_NOT_FOUND)
                return undeliverable(pp, topic, part, key, value, strlen(value),
                                     keel_id, headers, why, now);
        if (rc)
                return rc;
        if (!(copy = strdup(value)))
                return KEEL_ERR_NOMEM;
        return produce(pp, topic, part, key, key ? strlen(key) : 0,
                       (unsigned char *)copy, strlen(copy), keel_id, headers);
}

/* ---- the lifecycle stream ----------------------------------------------- */

/* The keel.lifecycle.WorkflowStatusChanged record (new reference) of a
 * status change (keel__out_t statuses), or NULL if out of memory. */
static json_t *lifecycle_record(const json_t *st)
{
        static const char *const fields[][2] = {
            {"RUNNING", "input"},      {"COMPLETED", "result"},
            {"FAILED", "failure"},     {"TERMINATED", "reason"},
            {"TERMINATED", "details"}, {"CANCELLED", "details"},
        };
        const json_t *rec = keel__ev_rec(json_object_get(st, "event"));
        const char *status = json_string_value(json_object_get(st, "status"));
        json_t *l = json_pack(
            "{sO sO sO sO sO ss sn sn sn sn sn}", "workflow_id",
            json_object_get(rec, "workflow_id"), "run_id",
            json_object_get(rec, "run_id"), "seq", json_object_get(rec, "seq"),
            "ts", json_object_get(rec, "ts"), "workflow_type",
            json_object_get(st, "workflow_type"), "status", status, "input",
            "result", "failure", "reason", "details");
        for (size_t k = 0; l && k < sizeof(fields) / sizeof(fields[0]); k++) {
                const json_t *v = json_object_get(rec, fields[k][1]);
                if (!strcmp(status, fields[k][0]) && v)
                        json_object_set(l, fields[k][1], (json_t *)v);
        }
        return l;
}

/* Publish the batch's status changes to lifecycle.topic, if set: keyed by
 * workflow ID, on murmur2's partition of it, with the keel-id of the
 * event. A topic that is not there sends them to keel.dlq, as for emitted
 * records. */
static int write_lifecycle(orch_pp_t *pp, const char *topic, int64_t now)
{
        size_t i;
        const json_t *st;
        int32_t parts;
        char why[512];
        int target = topic_target(pp, topic, &parts, why, sizeof(why)), rc;

        if (target && target != KEEL_ERR_NOT_FOUND)
                return target;
        json_array_foreach(pp->out.statuses, i, st)
        {
                json_t *l = lifecycle_record(st);
                const char *wid =
                    json_string_value(json_object_get(l, "workflow_id"));
                unsigned char *buf;
                size_t len;
                char keel_id[1200], err[256];
                int32_t part;

                if (!l)
                        return KEEL_ERR_NOMEM;
                snprintf(
                    keel_id, sizeof(keel_id), "%s/%s/%lld", wid,
                    json_string_value(json_object_get(l, "run_id")),
                    (long long)json_integer_value(json_object_get(l, "seq")));
                part = target ? -1 : keel_partition_of(wid, strlen(wid), parts);
                if (keel_codec_encode("keel.lifecycle.WorkflowStatusChanged", l,
                                      &buf, &len, err, sizeof(err))) {
                        keel_log(KEEL_LOG_ERROR, "orchestrator",
                                 "partition=%d msg=\"cannot encode\" "
                                 "keel_id=%s detail=\"%s\"",
                                 pp->p, keel_id, err);
                        json_decref(l);
                        return KEEL_ERR_SCHEMA;
                }
                json_decref(l);
                if (target) {
                        rc = undeliverable(pp, topic, part, wid, buf, len,
                                           keel_id, NULL, why, now);
                        free(buf);
                } else {
                        rc = produce(pp, topic, part, wid, strlen(wid), buf,
                                     len, keel_id, NULL);
                }
                if (rc)
                        return rc;
        }
        return KEEL_OK;
}

/* The keel.history key of the event (or tombstone) rec names. */
static void event_key(char *key, size_t size, const json_t *rec)
{
        snprintf(key, size, "%s/%s/%lld",
                 json_string_value(json_object_get(rec, "workflow_id")),
                 json_string_value(json_object_get(rec, "run_id")),
                 (long long)json_integer_value(json_object_get(rec, "seq")));
}

static int write_outputs(orch_pp_t *pp, int64_t now)
{
        const char *lifecycle = keel_config_get(pp->o->cfg, "lifecycle.topic");
        size_t i;
        json_t *ev, *t;
        char key[1100];
        int rc;

        json_array_foreach(pp->out.history, i, ev)
        {
                json_t *rec = json_object_get(ev, "record");
                json_object_set_new(rec, "epoch", json_integer(pp->epoch));
                event_key(key, sizeof(key), rec);
                if ((rc = produce_record(
                         pp, KEEL_TOPIC_HISTORY, pp->p, key, strlen(key),
                         json_string_value(json_object_get(ev, "type")), rec,
                         key)))
                        return rc;
        }
        /* Deleted runs (retention): a null value per key, after their
         * RunDeleted; compaction then removes them. */
        json_array_foreach(pp->out.tombstones, i, t)
        {
                event_key(key, sizeof(key), t);
                if ((rc = produce(pp, KEEL_TOPIC_HISTORY, pp->p, key,
                                  strlen(key), NULL, 0, key, NULL)))
                        return rc;
        }
        json_array_foreach(pp->out.tasks, i, t)
        {
                const char *queue =
                    json_string_value(json_object_get(t, "task_queue"));
                char topic[300], why[512];
                int32_t parts;
                snprintf(topic, sizeof(topic), "%s%s", KEEL_TOPIC_TASKS_PREFIX,
                         queue ? queue : "");
                json_object_set_new(t, "epoch", json_integer(pp->epoch));
                /* Only a queue whose topic the cluster says is not there
                 * loses its task (its timeouts apply). A topic it could
                 * not answer for (a broker away, a leader being elected)
                 * fails the transaction, which is tried again: skipping
                 * the task would cost its activity an attempt. */
                rc = topic_target(pp, topic, &parts, why, sizeof(why));
                if (rc == KEEL_ERR_NOT_FOUND) {
                        keel_log(KEEL_LOG_ERROR, "orchestrator",
                                 "partition=%d workflow_id=%s msg=\"no topic "
                                 "for task queue; run 'keel topics create "
                                 "--task-queue %s'\" queue=%s reason=\"%s\"",
                                 pp->p,
                                 json_string_value(
                                     json_object_get(t, "workflow_id")),
                                 queue, queue, why);
                        continue;
                }
                if (rc) {
                        keel_log(KEEL_LOG_WARN, "orchestrator",
                                 "partition=%d msg=\"task queue topic "
                                 "unavailable; trying again\" topic=%s",
                                 pp->p, topic);
                        return rc;
                }
                /* A cancel is keyed and placed like its task, so it
                 * follows the task on the same partition. */
                const char *ttype =
                    json_string_value(json_object_get(t, "record_type"));
                snprintf(key, sizeof(key), "%s/%s",
                         json_string_value(json_object_get(t, "workflow_id")),
                         json_string_value(json_object_get(t, "activity_id")));
                if ((rc = produce_record(
                         pp, topic, pp->p % parts, key, strlen(key),
                         ttype ? ttype : "keel.tasks.ActivityTask", t,
                         json_string_value(json_object_get(t, "keel_id")))))
                        return rc;
        }
        json_array_foreach(pp->out.emits, i, t)
        {
                if ((rc = write_emit(pp, t, now)))
                        return rc;
        }
        /* Commands for other workflows (child workflows): on their own
         * partition of keel.inbox, in this transaction. keel-id is the
         * command ID, which the receiver drops duplicates by. */
        json_array_foreach(pp->out.inbox, i, t)
        {
                const json_t *rec = json_object_get(t, "record");
                const char *wid =
                    json_string_value(json_object_get(rec, "workflow_id"));
                if ((rc = produce_record(
                         pp, KEEL_TOPIC_INBOX,
                         keel_partition_of(wid, strlen(wid), pp->o->partitions),
                         wid, strlen(wid),
                         json_string_value(json_object_get(t, "type")), rec,
                         json_string_value(
                             json_object_get(rec, "command_id")))))
                        return rc;
        }
        lifecycle = lifecycle && *lifecycle && json_array_size(pp->out.statuses)
                        ? lifecycle
                        : NULL;
        if (lifecycle && (rc = write_lifecycle(pp, lifecycle, now)))
                return rc;
        return KEEL_OK;
}

/* The batch's checkpoint, last in history[p]. Touches nothing but pp. */
static int write_checkpoint(orch_pp_t *pp, int64_t now)
{
        const char *lifecycle = keel_config_get(pp->o->cfg, "lifecycle.topic");
        char key[1100];
        int rc;

        /* The checkpoint is what makes a batch count on a broker without
         * transaction markers (the dev broker), but only history[p] keeps
         * it in order with the batch's events: emitted, lifecycle and
         * inbox records on other topics are delivered first, or a crash could
         * leave a counted batch whose records never arrive. A lost task is
         * sent again when its activity times out; those would be lost. */
        if (json_array_size(pp->out.emits) || json_array_size(pp->out.inbox) ||
            (lifecycle && *lifecycle && json_array_size(pp->out.statuses))) {
                if (rd_kafka_flush(pp->producer, timeout_ms(pp)) ||
                    atomic_load(&pp->dr_failed)) {
                        keel_log(KEEL_LOG_ERROR, "orchestrator",
                                 "partition=%d msg=\"records for other "
                                 "topics not delivered\"",
                                 pp->p);
                        return KEEL_ERR_KAFKA;
                }
        }
        /* One key per epoch: compaction keeps each owner's last checkpoint,
         * which closes every batch that owner completed. */
        snprintf(key, sizeof(key), "%s%d/%lld", KEEL__KEY_CHECKPOINT, pp->p,
                 (long long)pp->epoch);
        {
                json_t *cp =
                    json_pack("{si sI sI si sI}", "partition", (int)pp->p,
                              "epoch", (json_int_t)pp->epoch, "inbox_offset",
                              (json_int_t)pp->last_inbox, "batch_events",
                              (int)json_array_size(pp->out.history), "ts",
                              (json_int_t)now);
                rc = produce_record(pp, KEEL_TOPIC_HISTORY, pp->p, key,
                                    strlen(key), "keel.history.Checkpoint", cp,
                                    key);
                json_decref(cp);
        }
        return rc;
}

int orch_pp_prepare(orch_pp_t *pp, rd_kafka_message_t **msgs, size_t n,
                    int64_t due_until, int64_t now)
{
        orch_txn_t *tx = &pp->txn;
        rd_kafka_error_t *e;
        int64_t last = pp->last_inbox;
        int rc = KEEL_OK;

        memset(tx, 0, sizeof(*tx));
        if (!n && keel__machine_next_due(pp->m) > due_until &&
            !json_array_size(pp->out.history) &&
            !json_array_size(pp->out.tasks))
                return KEEL_OK; /* nothing to do */
        keel__machine_stats(pp->m, &tx->before);
        tx->now = now;
        atomic_store(&pp->dr_failed, 0);
        if ((e = rd_kafka_begin_transaction(pp->producer)))
                return kerr(pp, "begin_transaction", e);
        tx->open = 1;
        for (size_t i = 0; i < n && !rc; i++) {
                /* Below inbox_next: applied already (gathered before the
                 * partition was reopened, and fetched again since). */
                if (msgs[i]->err ||
                    (pp->inbox_next >= 0 && msgs[i]->offset < pp->inbox_next))
                        continue;
                rc = apply_message(pp, msgs[i], now);
                last = msgs[i]->offset;
        }
        if (!rc)
                rc = keel__machine_tick(pp->m, due_until, now, &pp->out);
        pp->last_inbox = last;
        if (!rc)
                rc = write_outputs(pp, now);
        tx->rc = rc;
        return KEEL_OK;
}

int orch_pp_commit(orch_pp_t *pp)
{
        orch_txn_t *tx = &pp->txn;
        keel__machine_stats_t after;
        rd_kafka_error_t *e;
        int rc = tx->rc;

        if (!tx->open)
                return KEEL_OK;
        tx->open = 0;
        if (!rc)
                rc = write_checkpoint(pp, tx->now);
        if (!rc &&
            (e = rd_kafka_commit_transaction(pp->producer, timeout_ms(pp))))
                rc = kerr(pp, "commit_transaction", e);
        if (!rc && atomic_load(&pp->dr_failed))
                rc = KEEL_ERR_KAFKA;
        if (rc) {
                e = rd_kafka_abort_transaction(pp->producer, timeout_ms(pp));
                if (e)
                        rd_kafka_error_destroy(e);
                atomic_fetch_add(&pp->o->metrics.txn_failures, 1);
                return rc;
        }
        keel__machine_stats(pp->m, &after);
        atomic_fetch_add(&pp->o->metrics.transactions, 1);
        atomic_fetch_add(&pp->o->metrics.commands,
                         after.commands - tx->before.commands);
        atomic_fetch_add(&pp->o->metrics.events,
                         json_array_size(pp->out.history));
        atomic_fetch_add(&pp->o->metrics.tasks, json_array_size(pp->out.tasks));
        atomic_fetch_add(&pp->o->metrics.stale, after.stale - tx->before.stale);
        atomic_fetch_add(&pp->o->metrics.runs_deleted,
                         after.deleted - tx->before.deleted);
        atomic_fetch_add(&pp->o->metrics.tombstones,
                         after.tombstones - tx->before.tombstones);
        atomic_fetch_add(&pp->o->metrics.history_warnings,
                         after.history_warnings - tx->before.history_warnings);
        atomic_fetch_add(&pp->o->metrics.history_limited,
                         after.history_limited - tx->before.history_limited);
        atomic_fetch_add(&pp->o->metrics.open_workflows,
                         (int64_t)after.open - (int64_t)tx->before.open);
        pp->inbox_next = pp->last_inbox + 1;
        keel__out_reset(&pp->out);
        return KEEL_OK;
}
