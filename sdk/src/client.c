/*
 * client.c: the workflow client (keel/client.h). Each call builds one
 * keel.inbox command, writes it with an idempotent producer to the
 * workflow's partition p and waits for its delivery report; a call that
 * waits for the outcome first takes the end offsets of keel.history[p] and
 * keel.dlq[p], then reads both from there with a group-less consumer until
 * the orchestrator's answer to its command ID (history) or inbox offset
 * (dead letter) shows up. History is read under DESIGN.md's batch rule: an
 * event counts once the Checkpoint of its epoch follows it, and events of
 * an epoch older than a PartitionClaim seen before them are ignored.
 */
#include "keel/client.h"

#include "client_int.h"
#include "clock_int.h"
#include "config_int.h"
#include "error_int.h"
#include "keel/codec.h"
#include "keel/log.h"
#include "keel/partition.h"
#include "keel/topics.h"

#include "history_int.h"
#include "search_attrs_int.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

/* How long one poll of the producer or the reader may block: bounds how
 * late a thread notices a delivery report another thread served. */
#define POLL_SLICE_MS 50

struct keel_client_s {
        rd_kafka_t *rk; /* idempotent producer */
        char *bootstrap;
        int timeout_ms;

        /* Guards delivery reports, served on whichever thread polls. */
        pthread_mutex_t lock;

        /* Guards partitions, looked up by the first command. */
        pthread_mutex_t meta_lock;
        int32_t partitions;

        /* Held by a waiting call for as long as it reads. */
        pthread_mutex_t read_lock;
        rd_kafka_conf_t *reader_conf; /* template for the reader */
        rd_kafka_t *reader;           /* created by the first wait */
        rd_kafka_topic_t *t_history, *t_dlq;
};

/* What a call waits for. */
typedef enum cmd_kind_e {
        CMD_START,
        CMD_SIGNAL,
        CMD_CANCEL,
        CMD_TERMINATE,
} cmd_kind_t;

typedef struct command_s {
        cmd_kind_t kind;
        const char *verb; /* for messages: "start", "signal", ... */
        const char *workflow_id;
        const char *run_id; /* target run; NULL: current */
        char command_id[KEEL__NAME_MAX_BYTES + 1];
        int with_signal; /* start: signal-with-start */
        int wait_ms;
        char run_id_out[KEEL_UUID_SIZE];
} command_t;

/* One message's delivery report, filled in by dr_cb. */
typedef struct delivery_s {
        int done;
        rd_kafka_resp_err_t err;
        rd_kafka_msg_status_t status;
        int64_t offset;
} delivery_t;

#define now_ms keel__clock_ms

int keel_client_command_id(char out[KEEL_UUID_SIZE])
{
        unsigned char b[16];
        size_t got = 0;

        out[0] = '\0';
        while (got < sizeof(b)) {
                ssize_t r = getrandom(b + got, sizeof(b) - got, 0);
                if (r < 0) {
                        if (errno == EINTR)
                                continue;
                        return KEEL_ERR_IO;
                }
                got += (size_t)r;
        }
        b[6] = (unsigned char)((b[6] & 0x0f) | 0x40); /* version 4 */
        b[8] = (unsigned char)((b[8] & 0x3f) | 0x80); /* RFC 4122 variant */
        snprintf(out, KEEL_UUID_SIZE,
                 "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-"
                 "%02x%02x%02x%02x%02x%02x",
                 b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9],
                 b[10], b[11], b[12], b[13], b[14], b[15]);
        return KEEL_OK;
}

/* Runs on whichever thread polls the producer. */
static void dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
        keel_client_t *c = opaque;
        delivery_t *d = m->_private;

        (void)rk;
        pthread_mutex_lock(&c->lock);
        d->err = m->err;
        d->status = rd_kafka_message_status(m);
        d->offset = m->offset;
        d->done = 1;
        pthread_mutex_unlock(&c->lock);
}

/* Set a librdkafka property unless the user set it through kafka.<name>. */
static int conf_default(rd_kafka_conf_t *conf, const keel_config_t *cfg,
                        const char *name, const char *value, char *errstr,
                        size_t errsize)
{
        char key[128], rderr[256];

        snprintf(key, sizeof(key), "kafka.%s", name);
        if (keel_config_get(cfg, key))
                return KEEL_OK;
        if (rd_kafka_conf_set(conf, name, value, rderr, sizeof(rderr)) !=
            RD_KAFKA_CONF_OK)
                return keel__fail(errstr, errsize, KEEL_ERR_CONFIG, "%s=%s: %s",
                                  name, value, rderr);
        return KEEL_OK;
}

static int conf_force(rd_kafka_conf_t *conf, const char *name,
                      const char *value, char *errstr, size_t errsize)
{
        char rderr[256];

        if (rd_kafka_conf_set(conf, name, value, rderr, sizeof(rderr)) !=
            RD_KAFKA_CONF_OK)
                return keel__fail(errstr, errsize, KEEL_ERR_CONFIG, "%s=%s: %s",
                                  name, value, rderr);
        return KEEL_OK;
}

static rd_kafka_conf_t *producer_conf(keel_client_t *c,
                                      const keel_config_t *cfg, char *errstr,
                                      size_t errsize)
{
        char timeout[32];
        rd_kafka_conf_t *conf =
            keel__kafka_conf_new(cfg, KEEL__PRODUCER, errstr, errsize);

        if (!conf)
                return NULL;
        snprintf(timeout, sizeof(timeout), "%d", c->timeout_ms);
        /* Commands go one at a time: send at once rather than linger. A
         * delivery report callback also keeps polls from waiting in 10 ms
         * slices (DESIGN.md). */
        if (conf_force(conf, "enable.idempotence", "true", errstr, errsize) ||
            conf_default(conf, cfg, "linger.ms", "0", errstr, errsize) ||
            conf_default(conf, cfg, "message.timeout.ms", timeout, errstr,
                         errsize) ||
            conf_default(conf, cfg, "client.id", "keel-client", errstr,
                         errsize)) {
                rd_kafka_conf_destroy(conf);
                return NULL;
        }
        rd_kafka_conf_set_dr_msg_cb(conf, dr_cb);
        rd_kafka_conf_set_opaque(conf, c);
        return conf;
}

static rd_kafka_conf_t *reader_conf(const keel_config_t *cfg, char *errstr,
                                    size_t errsize)
{
        rd_kafka_conf_t *conf =
            keel__kafka_conf_new(cfg, KEEL__CONSUMER, errstr, errsize);

        if (!conf)
                return NULL;
        /* No group: the reader is assigned two partitions per wait and
         * never commits. A short fetch wait bounds how late an answer is
         * seen on brokers that do not hold fetches open. */
        if (conf_force(conf, "isolation.level", "read_committed", errstr,
                       errsize) ||
            conf_force(conf, "enable.auto.commit", "false", errstr, errsize) ||
            conf_force(conf, "enable.auto.offset.store", "false", errstr,
                       errsize) ||
            conf_force(conf, "enable.partition.eof", "false", errstr,
                       errsize) ||
            conf_default(conf, cfg, "fetch.wait.max.ms", "100", errstr,
                         errsize) ||
            conf_default(conf, cfg, "fetch.error.backoff.ms", "100", errstr,
                         errsize) ||
            conf_default(conf, cfg, "queued.max.messages.kbytes", "16384",
                         errstr, errsize) ||
            conf_default(conf, cfg, "client.id", "keel-client", errstr,
                         errsize)) {
                rd_kafka_conf_destroy(conf);
                return NULL;
        }
        return conf;
}

keel_client_t *keel_client_new(const keel_config_t *cfg, char *errstr,
                               size_t errstr_size)
{
        keel_client_t *c;
        rd_kafka_conf_t *conf;
        char rderr[512];
        int64_t timeout = 30000;

        if (!cfg) {
                keel__fail(errstr, errstr_size, KEEL_ERR_INVALID_ARG,
                           "no configuration");
                return NULL;
        }
        c = calloc(1, sizeof(*c));
        if (!c) {
                keel__fail(errstr, errstr_size, KEEL_ERR_NOMEM,
                           "out of memory");
                return NULL;
        }
        keel_config_get_int(cfg, "timeout.ms", &timeout);
        c->timeout_ms = (int)timeout;
        c->bootstrap = strdup(keel_config_get(cfg, "bootstrap"));
        pthread_mutex_init(&c->lock, NULL);
        pthread_mutex_init(&c->meta_lock, NULL);
        pthread_mutex_init(&c->read_lock, NULL);
        if (!c->bootstrap) {
                keel__fail(errstr, errstr_size, KEEL_ERR_NOMEM,
                           "out of memory");
                goto err;
        }
        c->reader_conf = reader_conf(cfg, errstr, errstr_size);
        if (!c->reader_conf)
                goto err;
        conf = producer_conf(c, cfg, errstr, errstr_size);
        if (!conf)
                goto err;
        c->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, rderr, sizeof(rderr));
        if (!c->rk) {
                rd_kafka_conf_destroy(conf);
                keel__fail(errstr, errstr_size, KEEL_ERR_CONFIG,
                           "Kafka client: %s", rderr);
                goto err;
        }
        return c;
err:
        keel_client_destroy(c);
        return NULL;
}

void keel_client_destroy(keel_client_t *c)
{
        if (!c)
                return;
        if (c->t_history)
                rd_kafka_topic_destroy(c->t_history);
        if (c->t_dlq)
                rd_kafka_topic_destroy(c->t_dlq);
        if (c->reader)
                rd_kafka_destroy(c->reader);
        if (c->reader_conf)
                rd_kafka_conf_destroy(c->reader_conf);
        if (c->rk) {
                /* Every call waited for its delivery report: nothing is
                 * left to flush but in-flight protocol state. */
                rd_kafka_flush(c->rk, c->timeout_ms);
                rd_kafka_destroy(c->rk);
        }
        pthread_mutex_destroy(&c->lock);
        pthread_mutex_destroy(&c->meta_lock);
        pthread_mutex_destroy(&c->read_lock);
        free(c->bootstrap);
        free(c);
}

/* keel.inbox's partition count, looked up once: keel.inbox, keel.history
 * and keel.dlq must all exist with the same count. */
static int partitions(keel_client_t *c, int32_t *out, char *errstr,
                      size_t errsize)
{
        static const char *const need[] = {KEEL_TOPIC_INBOX, KEEL_TOPIC_HISTORY,
                                           KEEL_TOPIC_DLQ};
        const struct rd_kafka_metadata *md = NULL;
        rd_kafka_resp_err_t err;
        int32_t n = 0;
        int rc = KEEL_OK;

        pthread_mutex_lock(&c->meta_lock);
        if (c->partitions) {
                *out = c->partitions;
                pthread_mutex_unlock(&c->meta_lock);
                return KEEL_OK;
        }
        /* All topics, not three by name: asking for a missing topic by
         * name may create it with the broker's default partition count. */
        err = rd_kafka_metadata(c->rk, 1, NULL, &md, c->timeout_ms);
        if (err) {
                rc = keel__kafka_err(err);
                if (rc == KEEL_ERR_NOT_FOUND)
                        rc = KEEL_ERR_KAFKA;
                rc = keel__fail(errstr, errsize, rc,
                                "no broker at %s answered within %d ms (%s)",
                                c->bootstrap, c->timeout_ms,
                                rd_kafka_err2str(err));
                goto out;
        }
        for (size_t i = 0; i < sizeof(need) / sizeof(need[0]) && !rc; i++) {
                const struct rd_kafka_metadata_topic *mt = NULL;
                for (int k = 0; k < md->topic_cnt; k++)
                        if (!strcmp(md->topics[k].topic, need[i]) &&
                            !md->topics[k].err)
                                mt = &md->topics[k];
                if (!mt || mt->partition_cnt <= 0)
                        rc = keel__fail(
                            errstr, errsize, KEEL_ERR_NOT_FOUND,
                            "topic %s does not exist on %s: run 'keel "
                            "topics create --bootstrap %s'",
                            need[i], c->bootstrap, c->bootstrap);
                else if (n && mt->partition_cnt != n)
                        rc = keel__fail(errstr, errsize, KEEL_ERR_MISMATCH,
                                        "%s has %d partitions but %s has %d: "
                                        "keel's topics must be co-partitioned",
                                        need[i], mt->partition_cnt, need[0], n);
                else
                        n = mt->partition_cnt;
        }
        if (!rc)
                c->partitions = n;
out:
        if (md)
                rd_kafka_metadata_destroy(md);
        *out = rc ? 0 : c->partitions;
        pthread_mutex_unlock(&c->meta_lock);
        return rc;
}

/* Create the reader on first use. Called with read_lock held. */
static int reader_open(keel_client_t *c, char *errstr, size_t errsize)
{
        rd_kafka_conf_t *conf;
        char rderr[512];

        if (c->reader)
                return KEEL_OK;
        conf = rd_kafka_conf_dup(c->reader_conf);
        if (!conf)
                return keel__fail(errstr, errsize, KEEL_ERR_NOMEM,
                                  "out of memory");
        c->reader = rd_kafka_new(RD_KAFKA_CONSUMER, conf, rderr, sizeof(rderr));
        if (!c->reader) {
                rd_kafka_conf_destroy(conf);
                return keel__fail(errstr, errsize, KEEL_ERR_CONFIG,
                                  "Kafka consumer: %s", rderr);
        }
        c->t_history = rd_kafka_topic_new(c->reader, KEEL_TOPIC_HISTORY, NULL);
        c->t_dlq = rd_kafka_topic_new(c->reader, KEEL_TOPIC_DLQ, NULL);
        if (!c->t_history || !c->t_dlq)
                return keel__fail(errstr, errsize, KEEL_ERR_KAFKA,
                                  "Kafka topic handle: %s",
                                  rd_kafka_err2str(rd_kafka_last_error()));
        return KEEL_OK;
}

/* The offset the next record of topic[p] will get. */
static int end_offset(keel_client_t *c, const char *topic, int32_t p,
                      int64_t *end, char *errstr, size_t errsize)
{
        int64_t lo, hi;
        rd_kafka_resp_err_t err = rd_kafka_query_watermark_offsets(
            c->reader, topic, p, &lo, &hi, c->timeout_ms);

        if (err) {
                int rc = keel__kafka_err(err);
                return keel__fail(
                    errstr, errsize,
                    rc == KEEL_ERR_NOT_FOUND ? KEEL_ERR_KAFKA : rc,
                    "end offset of %s[%d] from %s: %s (nothing was "
                    "sent)",
                    topic, (int)p, c->bootstrap, rd_kafka_err2str(err));
        }
        *end = hi;
        return KEEL_OK;
}

/* The calling thread's last command written (client_int.h). */
static _Thread_local keel__receipt_t last_receipt = {.partition = -1};

void keel__client_last_receipt(keel__receipt_t *out)
{
        *out = last_receipt;
}

/* Write one encoded command (value: freed here) to keel.inbox[p] and wait
 * for its delivery report; *offset is its offset. */
static int produce(keel_client_t *c, const command_t *cmd, int32_t p,
                   unsigned char *value, size_t len, int64_t *offset,
                   char *errstr, size_t errsize)
{
        delivery_t d = {0};
        rd_kafka_resp_err_t err;
        int64_t deadline = now_ms(CLOCK_MONOTONIC) + c->timeout_ms;
        int done = 0;

        for (;;) {
                err = rd_kafka_producev(
                    c->rk, RD_KAFKA_V_TOPIC(KEEL_TOPIC_INBOX),
                    RD_KAFKA_V_PARTITION(p),
                    RD_KAFKA_V_KEY(cmd->workflow_id, strlen(cmd->workflow_id)),
                    RD_KAFKA_V_VALUE(value, len),
                    RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_FREE),
                    RD_KAFKA_V_OPAQUE(&d), RD_KAFKA_V_END);
                if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL ||
                    now_ms(CLOCK_MONOTONIC) >= deadline)
                        break;
                rd_kafka_poll(c->rk, POLL_SLICE_MS);
        }
        if (err) {
                free(value); /* not taken over on failure */
                return keel__fail(
                    errstr, errsize, keel__kafka_err(err),
                    "%s %s: cannot queue the command: %s (nothing "
                    "was sent)",
                    cmd->verb, cmd->workflow_id, rd_kafka_err2str(err));
        }
        /* The report always comes, within message.timeout.ms at most, and
         * d lives on this stack: wait for it whatever happens. */
        while (!done) {
                rd_kafka_poll(c->rk, POLL_SLICE_MS);
                pthread_mutex_lock(&c->lock);
                done = d.done;
                pthread_mutex_unlock(&c->lock);
        }
        if (d.err) {
                char fatal[256] = "";
                int rc = keel__kafka_err(d.err);
                if (rd_kafka_fatal_error(c->rk, fatal, sizeof(fatal)))
                        return keel__fail(
                            errstr, errsize, KEEL_ERR_KAFKA,
                            "%s %s: the producer failed for good (%s): "
                            "create a new client",
                            cmd->verb, cmd->workflow_id, fatal);
                return keel__fail(
                    errstr, errsize, rc, "%s %s: %s to %s: %s (command ID %s)",
                    cmd->verb, cmd->workflow_id,
                    d.status == RD_KAFKA_MSG_STATUS_NOT_PERSISTED
                        ? "not written"
                        : "may or may not have been written",
                    c->bootstrap, rd_kafka_err2str(d.err), cmd->command_id);
        }
        *offset = d.offset;
        last_receipt.partition = p;
        last_receipt.offset = d.offset;
        snprintf(last_receipt.command_id, sizeof(last_receipt.command_id), "%s",
                 cmd->command_id);
        return KEEL_OK;
}

static const char *get_str(const json_t *rec, const char *key)
{
        return json_string_value(json_object_get(rec, key));
}

static int64_t get_int(const json_t *rec, const char *key)
{
        return (int64_t)json_integer_value(json_object_get(rec, key));
}

static int str_eq(const char *a, const char *b)
{
        return a && b && !strcmp(a, b);
}

/* Is history event `type` the answer to cmd? */
static int answers(const command_t *cmd, const char *type, const json_t *ev)
{
        if (!str_eq(get_str(ev, "workflow_id"), cmd->workflow_id))
                return 0;
        switch (cmd->kind) {
        case CMD_START:
                return (!strcmp(type, "keel.history.WorkflowStarted") ||
                        (cmd->with_signal &&
                         !strcmp(type, "keel.history.SignalReceived"))) &&
                       str_eq(get_str(ev, "command_id"), cmd->command_id);
        case CMD_SIGNAL:
                return !strcmp(type, "keel.history.SignalReceived") &&
                       str_eq(get_str(ev, "command_id"), cmd->command_id);
        case CMD_CANCEL:
                return !strcmp(type, "keel.history.WorkflowCancelRequested") &&
                       str_eq(get_str(ev, "command_id"), cmd->command_id);
        case CMD_TERMINATE:
                /* WorkflowTerminated names no command: any termination of
                 * the targeted run after the command was sent will do. */
                return !strcmp(type, "keel.history.WorkflowTerminated") &&
                       (!cmd->run_id ||
                        str_eq(get_str(ev, "run_id"), cmd->run_id));
        }
        return 0;
}

/* The keel error a dead letter names; KEEL_ERR_INVALID_ARG for a name
 * this version does not know. */
static int err_by_name(const char *name)
{
        for (int e = -1; e >= -64; e--)
                if (str_eq(keel_err_name(e), name))
                        return e;
        return KEEL_ERR_INVALID_ARG;
}

/* The state of one wait. */
typedef struct waiter_s {
        command_t *cmd;
        int32_t p;
        int64_t offset;    /* the command's inbox offset */
        int64_t max_claim; /* newest PartitionClaim epoch seen; -1: none */
        int pending;       /* an answer seen, its batch not yet closed */
        int64_t pending_epoch;
        char pending_run[KEEL_UUID_SIZE];
} waiter_t;

/* Look at one record. Returns 1 with *rc set when it settles the wait. */
static int on_record(waiter_t *w, const rd_kafka_message_t *m, int *rc,
                     char *errstr, size_t errsize)
{
        const char *topic = rd_kafka_topic_name(m->rkt);
        const char *type;
        json_t *rec = NULL;
        int settled = 0;

        if (keel_codec_decode(m->payload, m->len, &type, &rec, NULL, 0))
                return 0; /* not ours to judge: skip */
        if (!strcmp(topic, KEEL_TOPIC_DLQ)) {
                if (!strcmp(type, "keel.dlq.DeadLetter") &&
                    str_eq(get_str(rec, "source_topic"), KEEL_TOPIC_INBOX) &&
                    get_int(rec, "source_partition") == w->p &&
                    get_int(rec, "source_offset") == w->offset) {
                        const char *name = get_str(rec, "error");
                        const char *reason = get_str(rec, "reason");
                        *rc = err_by_name(name);
                        if (str_eq(keel_err_name(*rc), name))
                                keel__fail(errstr, errsize, *rc, "%s",
                                           reason ? reason : "");
                        else
                                keel__fail(errstr, errsize, *rc, "%s: %s",
                                           name ? name : "?",
                                           reason ? reason : "");
                        settled = 1;
                }
        } else if (!strcmp(type, "keel.history.PartitionClaim")) {
                int64_t e = get_int(rec, "epoch");
                if (e > w->max_claim)
                        w->max_claim = e;
                if (w->pending && w->pending_epoch < e)
                        w->pending = 0; /* its batch was cut off */
        } else if (!strcmp(type, "keel.history.Checkpoint")) {
                if (w->pending && get_int(rec, "epoch") == w->pending_epoch) {
                        *rc = KEEL_OK;
                        settled = 1;
                }
        } else if (answers(w->cmd, type, rec)) {
                int64_t e = get_int(rec, "epoch");
                if (e >= w->max_claim &&
                    (!w->pending || e >= w->pending_epoch)) {
                        const char *run = get_str(rec, "run_id");
                        w->pending = 1;
                        w->pending_epoch = e;
                        snprintf(w->pending_run, sizeof(w->pending_run), "%s",
                                 run ? run : "");
                }
        }
        if (settled && *rc == KEEL_OK)
                memcpy(w->cmd->run_id_out, w->pending_run,
                       sizeof(w->pending_run));
        json_decref(rec);
        return settled;
}

/* Read q until the answer to cmd or wait_ms. */
static int await_answer(rd_kafka_queue_t *q, waiter_t *w, char *errstr,
                        size_t errsize)
{
        const command_t *cmd = w->cmd;
        int64_t deadline = now_ms(CLOCK_MONOTONIC) + cmd->wait_ms;
        int rc = KEEL_OK;

        for (;;) {
                int64_t left = deadline - now_ms(CLOCK_MONOTONIC);
                rd_kafka_message_t *m;
                if (left <= 0)
                        break;
                m = rd_kafka_consume_queue(
                    q, (int)(left < POLL_SLICE_MS ? left : POLL_SLICE_MS));
                if (!m)
                        continue;
                if (m->err) {
                        keel_log(KEEL_LOG_DEBUG, "client",
                                 "msg=\"reader error\" error=\"%s\"",
                                 rd_kafka_message_errstr(m));
                } else if (on_record(w, m, &rc, errstr, errsize)) {
                        rd_kafka_message_destroy(m);
                        return rc;
                }
                rd_kafka_message_destroy(m);
        }
        return keel__fail(
            errstr, errsize, KEEL_ERR_TIMEOUT,
            "%s %s: the command was sent (command ID %s, %s[%d] "
            "offset %lld) but no outcome was seen within %d ms: is an "
            "orchestrator running?",
            cmd->verb, cmd->workflow_id, cmd->command_id, KEEL_TOPIC_INBOX,
            (int)w->p, (long long)w->offset, cmd->wait_ms);
}

/* Encode rec as `type`, write it, and wait for the outcome if asked. */
static int send_command(keel_client_t *c, command_t *cmd, const char *type,
                        json_t *rec, char *errstr, size_t errsize)
{
        unsigned char *value = NULL;
        size_t len;
        int32_t p;
        int64_t offset, hist_end = 0, dlq_end = 0;
        rd_kafka_queue_t *q = NULL;
        int started_history = 0, started_dlq = 0;
        int rc;

        rc = keel_codec_encode(type, rec, &value, &len, errstr, errsize);
        if (rc)
                return rc == KEEL_ERR_SCHEMA ? KEEL_ERR_INVALID_ARG : rc;
        rc = partitions(c, &p, errstr, errsize);
        if (rc) {
                free(value);
                return rc;
        }
        p = keel_partition_of(cmd->workflow_id, strlen(cmd->workflow_id), p);
        if (cmd->wait_ms <= 0)
                return produce(c, cmd, p, value, len, &offset, errstr, errsize);

        pthread_mutex_lock(&c->read_lock);
        rc = reader_open(c, errstr, errsize);
        if (!rc)
                rc = end_offset(c, KEEL_TOPIC_HISTORY, p, &hist_end, errstr,
                                errsize);
        if (!rc)
                rc =
                    end_offset(c, KEEL_TOPIC_DLQ, p, &dlq_end, errstr, errsize);
        if (rc) {
                free(value);
                goto out;
        }
        /* Start fetching before the command goes out: the answer can come
         * within a millisecond of it. */
        q = rd_kafka_queue_new(c->reader);
        if (!rd_kafka_consume_start_queue(c->t_history, p, hist_end, q))
                started_history = 1;
        if (started_history &&
            !rd_kafka_consume_start_queue(c->t_dlq, p, dlq_end, q))
                started_dlq = 1;
        if (!started_dlq) {
                free(value);
                rc = keel__fail(
                    errstr, errsize, KEEL_ERR_KAFKA,
                    "cannot read %s and %s [%d]: %s (nothing was sent)",
                    KEEL_TOPIC_HISTORY, KEEL_TOPIC_DLQ, (int)p,
                    rd_kafka_err2str(rd_kafka_last_error()));
                goto out;
        }
        rc = produce(c, cmd, p, value, len, &offset, errstr, errsize);
        if (!rc) {
                waiter_t w = {
                    .cmd = cmd, .p = p, .offset = offset, .max_claim = -1};
                rc = await_answer(q, &w, errstr, errsize);
        }
out:
        if (started_history)
                rd_kafka_consume_stop(c->t_history, p);
        if (started_dlq)
                rd_kafka_consume_stop(c->t_dlq, p);
        if (q)
                rd_kafka_queue_destroy(q);
        pthread_mutex_unlock(&c->read_lock);
        return rc;
}

/* ---- arguments ---------------------------------------------------------- */

/* Check a text argument: non-empty unless allow_empty, at most max bytes,
 * valid UTF-8 (which is what an Avro string holds). */
static int check_text(const char *s, const char *what, size_t max,
                      int allow_empty, char *errstr, size_t errsize)
{
        json_t *j;
        size_t n;

        if (!s)
                return keel__fail(errstr, errsize, KEEL_ERR_INVALID_ARG,
                                  "%s is missing", what);
        n = strlen(s);
        if (!n && !allow_empty)
                return keel__fail(errstr, errsize, KEEL_ERR_INVALID_ARG,
                                  "%s is empty", what);
        if (n > max)
                return keel__fail(errstr, errsize, KEEL_ERR_INVALID_ARG,
                                  "%s is %zu bytes long; the most is %zu", what,
                                  n, max);
        j = json_string(s);
        if (!j)
                return keel__fail(errstr, errsize, KEEL_ERR_INVALID_ARG,
                                  "%s is not valid UTF-8", what);
        json_decref(j);
        return KEEL_OK;
}

int keel__check_name(const char *s, const char *what, size_t max, char *errstr,
                     size_t errsize)
{
        int rc = check_text(s, what, max, 0, errstr, errsize);
        if (rc)
                return rc;
        for (const unsigned char *u = (const unsigned char *)s; *u; u++)
                if (*u < 0x20 || *u == 0x7f)
                        return keel__fail(
                            errstr, errsize, KEEL_ERR_INVALID_ARG,
                            "%s holds a control character "
                            "(byte 0x%02x at %zu)",
                            what, *u, (size_t)(u - (const unsigned char *)s));
        return KEEL_OK;
}

/* JSON text of v (NULL: "null") in *out, freed by the caller. */
static int json_text(const json_t *v, const char *what, char **out,
                     char *errstr, size_t errsize)
{
        *out =
            v ? json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY) : strdup("null");
        if (!*out)
                return keel__fail(
                    errstr, errsize, KEEL_ERR_INVALID_ARG,
                    "%s cannot be written as JSON (does it contain "
                    "itself?)",
                    what);
        return KEEL_OK;
}

static int check_symbol(const char *s, const char *what,
                        const char *const *symbols, char *errstr,
                        size_t errsize)
{
        for (size_t i = 0; symbols[i]; i++)
                if (!strcmp(s, symbols[i]))
                        return KEEL_OK;
        return keel__fail(errstr, errsize, KEEL_ERR_INVALID_ARG,
                          "%s '%s' is none of %s%s%s%s%s", what, s, symbols[0],
                          symbols[1] ? ", " : "", symbols[1] ? symbols[1] : "",
                          symbols[1] && symbols[2] ? ", " : "",
                          symbols[1] && symbols[2] ? symbols[2] : "");
}

/* Fill what every command shares and validate the workflow and run IDs;
 * *rec is a new record object. */
static int command_init(command_t *cmd, cmd_kind_t kind, const char *verb,
                        const char *workflow_id, const char *run_id,
                        const char *command_id, int wait_ms, json_t **rec,
                        char *errstr, size_t errsize)
{
        int rc;

        *rec = NULL;
        memset(cmd, 0, sizeof(*cmd));
        cmd->kind = kind;
        cmd->verb = verb;
        cmd->workflow_id = workflow_id;
        cmd->run_id = run_id;
        cmd->wait_ms = wait_ms;
        if ((rc = keel__check_name(workflow_id, "the workflow ID",
                                   KEEL_WORKFLOW_ID_MAX, errstr, errsize)))
                return rc;
        if (workflow_id[0] == '!')
                return keel__fail(
                    errstr, errsize, KEEL_ERR_INVALID_ARG,
                    "workflow IDs may not start with '!': history "
                    "keys starting with it are keel's own");
        if (run_id &&
            (rc = check_text(run_id, "the run ID", KEEL__NAME_MAX_BYTES, 0,
                             errstr, errsize)))
                return rc;
        if (wait_ms < 0)
                return keel__fail(errstr, errsize, KEEL_ERR_INVALID_ARG,
                                  "the wait is negative (%d ms)", wait_ms);
        if (command_id) {
                if ((rc = check_text(command_id, "the command ID",
                                     KEEL__NAME_MAX_BYTES, 0, errstr, errsize)))
                        return rc;
                snprintf(cmd->command_id, sizeof(cmd->command_id), "%s",
                         command_id);
        } else if ((rc = keel_client_command_id(cmd->command_id))) {
                return keel__fail(errstr, errsize, rc,
                                  "no randomness for a command ID: %s",
                                  strerror(errno));
        }
        *rec = json_object();
        if (!*rec ||
            json_object_set_new(*rec, "workflow_id",
                                json_string(workflow_id)) ||
            json_object_set_new(*rec, "command_id",
                                json_string(cmd->command_id)) ||
            json_object_set_new(*rec, "ts",
                                json_integer(now_ms(CLOCK_REALTIME))) ||
            (kind != CMD_START &&
             json_object_set_new(*rec, "run_id",
                                 run_id ? json_string(run_id) : json_null()))) {
                json_decref(*rec);
                *rec = NULL;
                return keel__fail(errstr, errsize, KEEL_ERR_NOMEM,
                                  "out of memory");
        }
        return KEEL_OK;
}

/* Set key to a new value (stolen); -1 if out of memory. */
static int put(json_t *rec, const char *key, json_t *v)
{
        return json_object_set_new(rec, key, v);
}

/* Set key to the JSON text of v. */
static int put_json(json_t *rec, const char *key, const json_t *v,
                    const char *what, char *errstr, size_t errsize)
{
        char *text;
        int rc = json_text(v, what, &text, errstr, errsize);

        if (rc)
                return rc;
        if (put(rec, key, json_string(text)))
                rc = keel__fail(errstr, errsize, KEEL_ERR_INVALID_ARG,
                                "%s is not valid UTF-8", what);
        free(text);
        return rc;
}

static void out_str(char *out, size_t size, const char *s)
{
        if (out)
                snprintf(out, size, "%s", s);
}

int keel_client_start(keel_client_t *c, const char *workflow_id,
                      const char *workflow_type, const json_t *input,
                      const keel_start_options_t *opts,
                      char run_id[KEEL_UUID_SIZE], char *errstr,
                      size_t errstr_size)
{
        static const char *const reuse[] = {"ALLOW_DUPLICATE",
                                            "ALLOW_DUPLICATE_FAILED_ONLY",
                                            "REJECT_DUPLICATE", NULL};
        static const char *const conflict[] = {"FAIL", "USE_EXISTING", NULL};
        static const keel_start_options_t none = {0};
        const char *reuse_policy, *conflict_policy;
        command_t cmd;
        json_t *rec = NULL;
        int rc;

        out_str(run_id, KEEL_UUID_SIZE, "");
        if (!opts)
                opts = &none;
        if (!c)
                return keel__fail(errstr, errstr_size, KEEL_ERR_INVALID_ARG,
                                  "no client");
        rc = command_init(&cmd, CMD_START, "start", workflow_id, NULL,
                          opts->command_id, opts->wait_ms, &rec, errstr,
                          errstr_size);
        if (rc)
                goto out;
        reuse_policy = opts->id_reuse_policy ? opts->id_reuse_policy : reuse[0];
        conflict_policy =
            opts->id_conflict_policy ? opts->id_conflict_policy : conflict[0];
        if ((rc =
                 keel__check_name(workflow_type, "the workflow type",
                                  KEEL__NAME_MAX_BYTES, errstr, errstr_size)) ||
            (rc = check_symbol(reuse_policy, "the ID reuse policy", reuse,
                               errstr, errstr_size)) ||
            (rc = check_symbol(conflict_policy, "the ID conflict policy",
                               conflict, errstr, errstr_size)))
                goto out;
        if (opts->signal_name &&
            (rc = keel__check_name(opts->signal_name, "the signal name",
                                   KEEL__NAME_MAX_BYTES, errstr, errstr_size)))
                goto out;
        if (!opts->signal_name && opts->signal_payload) {
                rc = keel__fail(errstr, errstr_size, KEEL_ERR_INVALID_ARG,
                                "a signal payload needs a signal name");
                goto out;
        }
        if (opts->execution_timeout_ms < 0 || opts->run_timeout_ms < 0) {
                rc = keel__fail(errstr, errstr_size, KEEL_ERR_INVALID_ARG,
                                "timeouts cannot be negative");
                goto out;
        }
        if (opts->search_attributes &&
            ((rc = keel__sa_check(opts->search_attributes, 0, errstr,
                                  errstr_size)) ||
             (rc = put_json(rec, "search_attributes", opts->search_attributes,
                            "the search attributes", errstr, errstr_size))))
                goto out;
        cmd.with_signal = opts->signal_name != NULL;
        if ((rc = put_json(rec, "input", input, "the input", errstr,
                           errstr_size)) ||
            (rc = put_json(rec, "signal_payload", opts->signal_payload,
                           "the signal payload", errstr, errstr_size)))
                goto out;
        if (put(rec, "workflow_type", json_string(workflow_type)) ||
            put(rec, "id_reuse_policy", json_string(reuse_policy)) ||
            put(rec, "id_conflict_policy", json_string(conflict_policy)) ||
            put(rec, "execution_timeout_ms",
                opts->execution_timeout_ms
                    ? json_integer(opts->execution_timeout_ms)
                    : json_null()) ||
            put(rec, "run_timeout_ms",
                opts->run_timeout_ms ? json_integer(opts->run_timeout_ms)
                                     : json_null()) ||
            put(rec, "signal_name",
                opts->signal_name ? json_string(opts->signal_name)
                                  : json_null())) {
                rc = keel__fail(errstr, errstr_size, KEEL_ERR_NOMEM,
                                "out of memory");
                goto out;
        }
        rc = send_command(c, &cmd, "keel.inbox.StartWorkflow", rec, errstr,
                          errstr_size);
        if (!rc)
                out_str(run_id, KEEL_UUID_SIZE, cmd.run_id_out);
out:
        json_decref(rec);
        return rc;
}

int keel_client_signal(keel_client_t *c, const char *workflow_id,
                       const char *run_id, const char *signal_name,
                       const json_t *payload, int wait_ms, char *errstr,
                       size_t errstr_size)
{
        command_t cmd;
        json_t *rec = NULL;
        int rc;

        if (!c)
                return keel__fail(errstr, errstr_size, KEEL_ERR_INVALID_ARG,
                                  "no client");
        rc = command_init(&cmd, CMD_SIGNAL, "signal", workflow_id, run_id, NULL,
                          wait_ms, &rec, errstr, errstr_size);
        if (!rc)
                rc =
                    keel__check_name(signal_name, "the signal name",
                                     KEEL__NAME_MAX_BYTES, errstr, errstr_size);
        if (!rc)
                rc = put_json(rec, "payload", payload, "the signal payload",
                              errstr, errstr_size);
        if (!rc && put(rec, "signal_name", json_string(signal_name)))
                rc = keel__fail(errstr, errstr_size, KEEL_ERR_NOMEM,
                                "out of memory");
        if (!rc)
                rc = send_command(c, &cmd, "keel.inbox.SignalWorkflow", rec,
                                  errstr, errstr_size);
        json_decref(rec);
        return rc;
}

int keel_client_cancel(keel_client_t *c, const char *workflow_id,
                       const char *run_id, const char *reason, int wait_ms,
                       char *errstr, size_t errstr_size)
{
        command_t cmd;
        json_t *rec = NULL;
        int rc;

        if (!c)
                return keel__fail(errstr, errstr_size, KEEL_ERR_INVALID_ARG,
                                  "no client");
        rc = command_init(&cmd, CMD_CANCEL, "cancel", workflow_id, run_id, NULL,
                          wait_ms, &rec, errstr, errstr_size);
        if (!rc)
                rc = check_text(reason ? reason : "", "the reason",
                                KEEL_RECORD_MAX_BYTES, 1, errstr, errstr_size);
        if (!rc && put(rec, "reason", json_string(reason ? reason : "")))
                rc = keel__fail(errstr, errstr_size, KEEL_ERR_NOMEM,
                                "out of memory");
        if (!rc)
                rc = send_command(c, &cmd, "keel.inbox.CancelWorkflow", rec,
                                  errstr, errstr_size);
        json_decref(rec);
        return rc;
}

int keel_client_terminate(keel_client_t *c, const char *workflow_id,
                          const char *run_id, const char *reason,
                          const json_t *details, int wait_ms, char *errstr,
                          size_t errstr_size)
{
        command_t cmd;
        json_t *rec = NULL;
        int rc;

        if (!c)
                return keel__fail(errstr, errstr_size, KEEL_ERR_INVALID_ARG,
                                  "no client");
        rc = command_init(&cmd, CMD_TERMINATE, "terminate", workflow_id, run_id,
                          NULL, wait_ms, &rec, errstr, errstr_size);
        if (!rc)
                rc = check_text(reason ? reason : "", "the reason",
                                KEEL_RECORD_MAX_BYTES, 1, errstr, errstr_size);
        if (!rc)
                rc = put_json(rec, "details", details, "the details", errstr,
                              errstr_size);
        if (!rc && put(rec, "reason", json_string(reason ? reason : "")))
                rc = keel__fail(errstr, errstr_size, KEEL_ERR_NOMEM,
                                "out of memory");
        if (!rc)
                rc = send_command(c, &cmd, "keel.inbox.TerminateWorkflow", rec,
                                  errstr, errstr_size);
        json_decref(rec);
        return rc;
}

/* ---- result ---------------------------------------------------------------
 */

typedef struct result_s {
        const char *workflow_id;
        keel_client_run_t *run;
        int found;
        keel__run_status_t st;
} result_t;

static void result_apply(void *opaque, const json_t *ev)
{
        result_t *r = opaque;
        const json_t *rec = json_object_get(ev, "record");
        const char *type = get_str(ev, "type");
        const char *run = get_str(rec, "run_id");
        keel__run_status_t was;

        if (!str_eq(get_str(rec, "workflow_id"), r->workflow_id) || !type)
                return;
        if (!strcmp(type, "keel.history.WorkflowStarted")) {
                r->found = 1;
                r->st = KEEL__RUN_RUNNING;
                out_str(r->run->run_id, sizeof(r->run->run_id), run);
                json_decref(r->run->result);
                r->run->result = json_null();
        }
        if (!r->found || !str_eq(run, r->run->run_id))
                return;
        if (!strcmp(type, KEEL__RUN_DELETED)) {
                /* Its history is deleted (retention): as if never run,
                 * which is what a reader after compaction finds. */
                json_decref(r->run->result);
                memset(r->run, 0, sizeof(*r->run));
                r->found = 0;
                r->st = KEEL__RUN_RUNNING;
                return;
        }
        r->run->events = get_int(rec, "seq");
        was = r->st;
        r->st = keel__run_status_after(r->st, type);
        out_str(r->run->status, sizeof(r->run->status),
                keel__run_status_names[r->st]);
        if (was >= KEEL__RUN_COMPLETED || r->st < KEEL__RUN_COMPLETED)
                return;
        /* It closed with this event: its result or failure. */
        json_decref(r->run->result);
        r->run->result = NULL;
        if (r->st == KEEL__RUN_COMPLETED) {
                const char *text = get_str(rec, "result");
                r->run->result =
                    text ? json_loads(text, JSON_DECODE_ANY, NULL) : NULL;
        } else if (r->st == KEEL__RUN_FAILED) {
                r->run->result =
                    json_deep_copy(json_object_get(rec, "failure"));
        }
        if (!r->run->result)
                r->run->result = json_null();
}

int keel_client_result(keel_client_t *c, const char *workflow_id, int wait_ms,
                       keel_client_run_t *run, char *errstr, size_t errstr_size)
{
        keel__history_reader_t hr;
        result_t r = {workflow_id, run, 0, KEEL__RUN_RUNNING};
        rd_kafka_conf_t *conf;
        rd_kafka_topic_partition_list_t *tl;
        rd_kafka_t *rk;
        char rderr[512];
        int32_t parts, p;
        int64_t deadline;
        int eof = 0, rc;

        memset(run, 0, sizeof(*run));
        if (!c || !workflow_id || !*workflow_id || wait_ms < 0)
                return keel__fail(errstr, errstr_size, KEEL_ERR_INVALID_ARG,
                                  "a client and a workflow ID are required");
        if ((rc = partitions(c, &parts, errstr, errstr_size)))
                return rc;
        p = keel_partition_of(workflow_id, strlen(workflow_id), parts);
        conf = rd_kafka_conf_dup(c->reader_conf);
        /* consumer_poll needs a group; this one never joins or commits. */
        if (!conf ||
            rd_kafka_conf_set(conf, "enable.partition.eof", "true", rderr,
                              sizeof(rderr)) != RD_KAFKA_CONF_OK ||
            rd_kafka_conf_set(conf, "group.id", "keel-client-result", rderr,
                              sizeof(rderr)) != RD_KAFKA_CONF_OK) {
                if (conf)
                        rd_kafka_conf_destroy(conf);
                return keel__fail(errstr, errstr_size, KEEL_ERR_NOMEM,
                                  "out of memory");
        }
        rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, rderr, sizeof(rderr));
        if (!rk) {
                rd_kafka_conf_destroy(conf);
                return keel__fail(errstr, errstr_size, KEEL_ERR_CONFIG,
                                  "Kafka consumer: %s", rderr);
        }
        if (keel__history_reader_init(&hr, result_apply, &r)) {
                rd_kafka_destroy(rk);
                return keel__fail(errstr, errstr_size, KEEL_ERR_NOMEM,
                                  "out of memory");
        }
        tl = rd_kafka_topic_partition_list_new(1);
        rd_kafka_topic_partition_list_add(tl, KEEL_TOPIC_HISTORY, p)->offset =
            RD_KAFKA_OFFSET_BEGINNING;
        rd_kafka_assign(rk, tl);
        rd_kafka_topic_partition_list_destroy(tl);

        /* Read to the end, then on while waiting for the run to close. */
        deadline = now_ms(CLOCK_MONOTONIC) + c->timeout_ms + wait_ms;
        rc = KEEL_OK;
        while (
            !(eof && ((r.st >= KEEL__RUN_COMPLETED) ||
                      now_ms(CLOCK_MONOTONIC) >= deadline - c->timeout_ms))) {
                rd_kafka_message_t *m;
                if (now_ms(CLOCK_MONOTONIC) >= deadline) {
                        rc = keel__fail(
                            errstr, errstr_size, KEEL_ERR_TRANSPORT,
                            "could not read %s[%d] from %s within %d "
                            "ms",
                            KEEL_TOPIC_HISTORY, (int)p, c->bootstrap,
                            c->timeout_ms);
                        break;
                }
                m = rd_kafka_consumer_poll(rk, POLL_SLICE_MS);
                if (!m)
                        continue;
                if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF)
                        eof = 1;
                else if (m->err)
                        keel_log(KEEL_LOG_DEBUG, "client",
                                 "msg=\"reader error\" error=\"%s\"",
                                 rd_kafka_message_errstr(m));
                else
                        keel__history_reader_feed(&hr, m->payload, m->len, NULL,
                                                  0);
                rd_kafka_message_destroy(m);
        }
        keel__history_reader_destroy(&hr);
        rd_kafka_consumer_close(rk);
        rd_kafka_destroy(rk);
        if (rc)
                return rc;
        if (!r.found)
                return keel__fail(errstr, errstr_size, KEEL_ERR_NOT_FOUND,
                                  "no run of workflow %s in %s[%d]",
                                  workflow_id, KEEL_TOPIC_HISTORY, (int)p);
        if (!(r.st >= KEEL__RUN_COMPLETED))
                return keel__fail(errstr, errstr_size, KEEL_ERR_TIMEOUT,
                                  "workflow %s (run %s) is %s", workflow_id,
                                  run->run_id, run->status);
        return KEEL_OK;
}
