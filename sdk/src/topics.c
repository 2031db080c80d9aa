/*
 * topics.c: create and describe keel's topics through librdkafka's Admin
 * API (keel/topics.h).
 */
#include "keel/topics.h"

#include "config_int.h"
#include "error_int.h"
#include "keel/error.h"
#include "keel/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RETENTION_7D  (7LL * 24 * 3600 * 1000)
#define RETENTION_30D (30LL * 24 * 3600 * 1000)
#define MAX_SPECS     64

/* Kafka's rule for topic names: [a-zA-Z0-9._-], at most 249 chars. */
static int valid_queue(const char *q)
{
        size_t n = strlen(q);
        if (!n || n + strlen(KEEL_TOPIC_TASKS_PREFIX) > 249)
                return 0;
        for (size_t i = 0; i < n; i++) {
                char c = q[i];
                if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                      (c >= '0' && c <= '9') || c == '.' || c == '_' ||
                      c == '-'))
                        return 0;
        }
        return 1;
}

int keel_topics_specs(const char *const *task_queues, size_t n_queues,
                      keel_topic_spec_t *specs, size_t max, size_t *cnt)
{
        static const char *const dflt[] = {KEEL_TASK_QUEUE_DEFAULT};
        size_t n = 0;

        *cnt = 0;
        if (!task_queues || !n_queues) {
                task_queues = dflt;
                n_queues = 1;
        }
        if (max < 3 + n_queues)
                return KEEL_ERR_INVALID_ARG;
        snprintf(specs[n].name, sizeof(specs[n].name), KEEL_TOPIC_INBOX);
        specs[n].cleanup_policy = "delete";
        specs[n++].retention_ms = RETENTION_7D;
        snprintf(specs[n].name, sizeof(specs[n].name), KEEL_TOPIC_HISTORY);
        specs[n].cleanup_policy = "compact";
        specs[n++].retention_ms = -1;
        snprintf(specs[n].name, sizeof(specs[n].name), KEEL_TOPIC_DLQ);
        specs[n].cleanup_policy = "delete";
        specs[n++].retention_ms = RETENTION_30D;
        for (size_t i = 0; i < n_queues; i++) {
                if (!valid_queue(task_queues[i]))
                        return KEEL_ERR_INVALID_ARG;
                snprintf(specs[n].name, sizeof(specs[n].name), "%s%s",
                         KEEL_TOPIC_TASKS_PREFIX, task_queues[i]);
                specs[n].cleanup_policy = "delete";
                specs[n++].retention_ms = RETENTION_7D;
        }
        *cnt = n;
        return KEEL_OK;
}

typedef struct admin_s {
        rd_kafka_t *rk;
        const char *bootstrap;
        int timeout_ms;
        const struct rd_kafka_metadata *md;
        int has_controller; /* the Admin API needs one */
} admin_t;

static void admin_close(admin_t *ad)
{
        if (ad->md)
                rd_kafka_metadata_destroy(ad->md);
        if (ad->rk)
                rd_kafka_destroy(ad->rk);
}

static int admin_open(admin_t *ad, const keel_config_t *cfg, char *errstr,
                      size_t errsize)
{
        char rderr[512];
        int64_t timeout;
        rd_kafka_conf_t *conf;
        rd_kafka_resp_err_t err;

        memset(ad, 0, sizeof(*ad));
        keel_config_get_int(cfg, "timeout.ms", &timeout);
        ad->timeout_ms = (int)timeout;
        ad->bootstrap = keel_config_get(cfg, "bootstrap");
        conf = keel__kafka_conf_new(cfg, KEEL__PRODUCER, errstr, errsize);
        if (!conf)
                return KEEL_ERR_CONFIG;
        ad->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, rderr, sizeof(rderr));
        if (!ad->rk) {
                rd_kafka_conf_destroy(conf);
                return keel__fail(errstr, errsize, KEEL_ERR_CONFIG,
                                  "Kafka client: %s", rderr);
        }
        err = rd_kafka_metadata(ad->rk, 1, NULL, &ad->md, ad->timeout_ms);
        if (err) {
                int rc = keel__kafka_err(err);
                ad->md = NULL;
                admin_close(ad);
                return keel__fail(errstr, errsize, rc,
                                  "no broker at %s answered within %d ms (%s)",
                                  ad->bootstrap, ad->timeout_ms,
                                  rd_kafka_err2str(err));
        }
        /* Admin requests go to the controller. A broker that names none of
         * its brokers as controller (the dev broker answers 0) would leave
         * them waiting until the timeout; notice that now instead. */
        {
                int32_t ctl = rd_kafka_controllerid(ad->rk, 0);
                for (int i = 0; i < ad->md->broker_cnt; i++)
                        if (ad->md->brokers[i].id == ctl)
                                ad->has_controller = 1;
        }
        return KEEL_OK;
}

static const struct rd_kafka_metadata_topic *md_topic(const admin_t *ad,
                                                      const char *name)
{
        for (int i = 0; i < ad->md->topic_cnt; i++)
                if (!strcmp(ad->md->topics[i].topic, name) &&
                    !ad->md->topics[i].err)
                        return &ad->md->topics[i];
        return NULL;
}

static rd_kafka_AdminOptions_t *admin_options(admin_t *ad,
                                              rd_kafka_admin_op_t op)
{
        char e[256];
        rd_kafka_AdminOptions_t *o = rd_kafka_AdminOptions_new(ad->rk, op);
        rd_kafka_AdminOptions_set_request_timeout(o, ad->timeout_ms, e,
                                                  sizeof(e));
        if (op == RD_KAFKA_ADMIN_OP_CREATETOPICS)
                rd_kafka_AdminOptions_set_operation_timeout(o, ad->timeout_ms,
                                                            e, sizeof(e));
        return o;
}

/* Wait for an admin result event; NULL on timeout. */
static rd_kafka_event_t *admin_wait(admin_t *ad, rd_kafka_queue_t *q)
{
        return rd_kafka_queue_poll(q, ad->timeout_ms + 5000);
}

static int unsupported(admin_t *ad, char *errstr, size_t errsize,
                       const char *api)
{
        return keel__fail(
            errstr, errsize, KEEL_ERR_UNSUPPORTED,
            "the broker at %s does not support the Kafka Admin API "
            "(%s). If it is the keel dev broker: it has no "
            "CreateTopics and creates keel's topics itself at start "
            "(see 'keel topics describe')",
            ad->bootstrap, api);
}

/* Read cleanup.policy and retention.ms of `n` topics through
 * DescribeConfigs into info[]. */
static int describe_configs(admin_t *ad, keel_topic_info_t *info, size_t n,
                            char *errstr, size_t errsize)
{
        rd_kafka_ConfigResource_t **res;
        rd_kafka_queue_t *q;
        rd_kafka_event_t *ev;
        int rc = KEEL_OK;

        if (!n)
                return KEEL_OK;
        if (!ad->has_controller)
                return unsupported(ad, errstr, errsize, "DescribeConfigs");
        res = calloc(n, sizeof(*res));
        if (!res)
                return KEEL_ERR_NOMEM;
        for (size_t i = 0; i < n; i++)
                res[i] = rd_kafka_ConfigResource_new(RD_KAFKA_RESOURCE_TOPIC,
                                                     info[i].name);
        q = rd_kafka_queue_new(ad->rk);
        {
                rd_kafka_AdminOptions_t *o =
                    admin_options(ad, RD_KAFKA_ADMIN_OP_DESCRIBECONFIGS);
                rd_kafka_DescribeConfigs(ad->rk, res, n, o, q);
                rd_kafka_AdminOptions_destroy(o);
        }
        ev = admin_wait(ad, q);
        if (!ev) {
                rc = keel__fail(
                    errstr, errsize, KEEL_ERR_TIMEOUT,
                    "DescribeConfigs: no answer from %s within %d ms",
                    ad->bootstrap, ad->timeout_ms);
        } else if (rd_kafka_event_error(ev)) {
                rc = keel__kafka_err(rd_kafka_event_error(ev));
                if (rc == KEEL_ERR_UNSUPPORTED)
                        unsupported(ad, errstr, errsize, "DescribeConfigs");
                else
                        keel__fail(errstr, errsize, rc, "DescribeConfigs: %s",
                                   rd_kafka_event_error_string(ev));
        } else {
                const rd_kafka_DescribeConfigs_result_t *r =
                    rd_kafka_event_DescribeConfigs_result(ev);
                size_t rn;
                const rd_kafka_ConfigResource_t **rr =
                    rd_kafka_DescribeConfigs_result_resources(r, &rn);
                for (size_t i = 0; i < rn && !rc; i++) {
                        const char *name = rd_kafka_ConfigResource_name(rr[i]);
                        keel_topic_info_t *ti = NULL;
                        size_t cn;
                        const rd_kafka_ConfigEntry_t **ce;
                        for (size_t k = 0; k < n; k++)
                                if (!strcmp(info[k].name, name))
                                        ti = &info[k];
                        if (!ti)
                                continue;
                        if (rd_kafka_ConfigResource_error(rr[i])) {
                                rc = keel__fail(
                                    errstr, errsize, KEEL_ERR_KAFKA,
                                    "DescribeConfigs %s: %s", name,
                                    rd_kafka_ConfigResource_error_string(
                                        rr[i]));
                                break;
                        }
                        ce = rd_kafka_ConfigResource_configs(rr[i], &cn);
                        for (size_t k = 0; k < cn; k++) {
                                const char *cname =
                                    rd_kafka_ConfigEntry_name(ce[k]);
                                const char *cval =
                                    rd_kafka_ConfigEntry_value(ce[k]);
                                if (!cval)
                                        continue;
                                if (!strcmp(cname, "cleanup.policy"))
                                        snprintf(ti->cleanup_policy,
                                                 sizeof(ti->cleanup_policy),
                                                 "%s", cval);
                                else if (!strcmp(cname, "retention.ms"))
                                        ti->retention_ms =
                                            strtoll(cval, NULL, 10);
                        }
                }
        }
        if (ev)
                rd_kafka_event_destroy(ev);
        rd_kafka_queue_destroy(q);
        for (size_t i = 0; i < n; i++)
                rd_kafka_ConfigResource_destroy(res[i]);
        free(res);
        return rc;
}

static void info_from_md(keel_topic_info_t *ti,
                         const struct rd_kafka_metadata_topic *mt)
{
        memset(ti, 0, sizeof(*ti));
        snprintf(ti->name, sizeof(ti->name), "%s", mt->topic);
        ti->partitions = mt->partition_cnt;
        ti->replication =
            (int16_t)(mt->partition_cnt ? mt->partitions[0].replica_cnt : 0);
        ti->retention_ms = -1;
}

static int create_missing(admin_t *ad, const keel_topic_spec_t *specs, size_t n,
                          int32_t partitions, int16_t replication, int *created,
                          char *errstr, size_t errsize)
{
        rd_kafka_NewTopic_t *nt[MAX_SPECS];
        size_t nn = 0;
        rd_kafka_queue_t *q;
        rd_kafka_event_t *ev;
        int rc = KEEL_OK;
        char e[512];

        for (size_t i = 0; i < n; i++) {
                char ret[32];
                if (md_topic(ad, specs[i].name))
                        continue;
                nt[nn] = rd_kafka_NewTopic_new(specs[i].name, partitions,
                                               replication, e, sizeof(e));
                if (!nt[nn]) {
                        rc = keel__fail(errstr, errsize, KEEL_ERR_INVALID_ARG,
                                        "topic %s: %s", specs[i].name, e);
                        goto out;
                }
                rd_kafka_NewTopic_set_config(nt[nn], "cleanup.policy",
                                             specs[i].cleanup_policy);
                if (specs[i].retention_ms >= 0) {
                        snprintf(ret, sizeof(ret), "%lld",
                                 (long long)specs[i].retention_ms);
                        rd_kafka_NewTopic_set_config(nt[nn], "retention.ms",
                                                     ret);
                }
                nn++;
        }
        if (!nn)
                return KEEL_OK;
        if (!ad->has_controller) {
                rc = unsupported(ad, errstr, errsize, "CreateTopics");
                goto out;
        }
        q = rd_kafka_queue_new(ad->rk);
        {
                rd_kafka_AdminOptions_t *o =
                    admin_options(ad, RD_KAFKA_ADMIN_OP_CREATETOPICS);
                rd_kafka_CreateTopics(ad->rk, nt, nn, o, q);
                rd_kafka_AdminOptions_destroy(o);
        }
        ev = admin_wait(ad, q);
        if (!ev) {
                rc = keel__fail(errstr, errsize, KEEL_ERR_TIMEOUT,
                                "CreateTopics: no answer from %s within %d ms",
                                ad->bootstrap, ad->timeout_ms);
        } else if (rd_kafka_event_error(ev)) {
                rc = keel__kafka_err(rd_kafka_event_error(ev));
                if (rc == KEEL_ERR_UNSUPPORTED)
                        unsupported(ad, errstr, errsize, "CreateTopics");
                else
                        keel__fail(errstr, errsize, rc, "CreateTopics: %s",
                                   rd_kafka_event_error_string(ev));
        } else {
                size_t tn;
                const rd_kafka_topic_result_t **tr =
                    rd_kafka_CreateTopics_result_topics(
                        rd_kafka_event_CreateTopics_result(ev), &tn);
                for (size_t i = 0; i < tn; i++) {
                        rd_kafka_resp_err_t te =
                            rd_kafka_topic_result_error(tr[i]);
                        const char *name = rd_kafka_topic_result_name(tr[i]);
                        if (te == RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS)
                                continue; /* raced with another creator */
                        if (te) {
                                rc = keel__kafka_err(te);
                                if (rc == KEEL_ERR_UNSUPPORTED) {
                                        unsupported(ad, errstr, errsize,
                                                    "CreateTopics");
                                } else {
                                        keel__fail(
                                            errstr, errsize, rc,
                                            "creating %s: %s", name,
                                            rd_kafka_topic_result_error_string(
                                                tr[i]));
                                }
                                break;
                        }
                        for (size_t k = 0; k < n; k++)
                                if (!strcmp(specs[k].name, name))
                                        created[k] = 1;
                }
        }
        if (ev)
                rd_kafka_event_destroy(ev);
        rd_kafka_queue_destroy(q);
out:
        for (size_t i = 0; i < nn; i++)
                rd_kafka_NewTopic_destroy(nt[i]);
        return rc;
}

int keel_topics_create(const keel_config_t *cfg, int32_t partitions,
                       int16_t replication, const char *const *task_queues,
                       size_t n_queues,
                       void (*report)(const keel_topic_spec_t *spec,
                                      keel_topic_outcome_t outcome,
                                      void *opaque),
                       void *opaque, char *errstr, size_t errstr_size)
{
        keel_topic_spec_t specs[MAX_SPECS];
        keel_topic_info_t info[MAX_SPECS];
        int created[MAX_SPECS] = {0};
        size_t n, ni = 0;
        admin_t ad;
        int rc;

        if (partitions <= 0 || replication <= 0)
                return keel__fail(
                    errstr, errstr_size, KEEL_ERR_INVALID_ARG,
                    "partitions and replication must be positive");
        rc = keel_topics_specs(task_queues, n_queues, specs, MAX_SPECS, &n);
        if (rc)
                return keel__fail(
                    errstr, errstr_size, rc,
                    "invalid task queue name (use letters, digits, "
                    "'.', '_', '-'; at most %d queues)",
                    MAX_SPECS - 3);
        if ((rc = admin_open(&ad, cfg, errstr, errstr_size)))
                return rc;

        rc = create_missing(&ad, specs, n, partitions, replication, created,
                            errstr, errstr_size);
        if (rc)
                goto out;
        /* Re-read metadata: it now includes what was just created and any
         * topic another creator raced us to. */
        rd_kafka_metadata_destroy(ad.md);
        ad.md = NULL;
        {
                rd_kafka_resp_err_t err =
                    rd_kafka_metadata(ad.rk, 1, NULL, &ad.md, ad.timeout_ms);
                if (err) {
                        ad.md = NULL;
                        rc = keel__fail(errstr, errstr_size,
                                        keel__kafka_err(err), "metadata: %s",
                                        rd_kafka_err2str(err));
                        goto out;
                }
        }
        for (size_t i = 0; i < n; i++) {
                const struct rd_kafka_metadata_topic *mt =
                    md_topic(&ad, specs[i].name);
                if (!mt) {
                        /* Created, but not in metadata yet. */
                        if (created[i])
                                continue;
                        rc =
                            keel__fail(errstr, errstr_size, KEEL_ERR_KAFKA,
                                       "topic %s is missing after CreateTopics",
                                       specs[i].name);
                        goto out;
                }
                if (mt->partition_cnt != partitions) {
                        rc = keel__fail(
                            errstr, errstr_size, KEEL_ERR_MISMATCH,
                            "topic %s exists with %d partitions, not "
                            "%d: every keel topic must have the same "
                            "partition count (use --partitions %d, or "
                            "recreate the topic)",
                            specs[i].name, mt->partition_cnt, partitions,
                            mt->partition_cnt);
                        goto out;
                }
                if (!created[i])
                        info_from_md(&info[ni++], mt);
        }
        rc = describe_configs(&ad, info, ni, errstr, errstr_size);
        if (rc)
                goto out;
        for (size_t i = 0; i < ni; i++) {
                for (size_t k = 0; k < n; k++) {
                        if (strcmp(specs[k].name, info[i].name))
                                continue;
                        if (strcmp(info[i].cleanup_policy,
                                   specs[k].cleanup_policy)) {
                                rc = keel__fail(
                                    errstr, errstr_size, KEEL_ERR_MISMATCH,
                                    "topic %s exists with "
                                    "cleanup.policy=%s, not %s",
                                    info[i].name, info[i].cleanup_policy,
                                    specs[k].cleanup_policy);
                                goto out;
                        }
                }
        }
        for (size_t i = 0; report && i < n; i++)
                report(&specs[i],
                       created[i] ? KEEL_TOPIC_CREATED : KEEL_TOPIC_EXISTS,
                       opaque);
out:
        admin_close(&ad);
        return rc;
}

int keel_topics_describe(const keel_config_t *cfg,
                         void (*fn)(const keel_topic_info_t *info,
                                    void *opaque),
                         void *opaque, char *errstr, size_t errstr_size)
{
        keel_topic_info_t info[MAX_SPECS * 4];
        size_t n = 0;
        admin_t ad;
        int rc;

        if ((rc = admin_open(&ad, cfg, errstr, errstr_size)))
                return rc;
        for (int i = 0; i < ad.md->topic_cnt && n < MAX_SPECS * 4; i++) {
                const struct rd_kafka_metadata_topic *mt = &ad.md->topics[i];
                if (strncmp(mt->topic, "keel.", 5) || mt->err)
                        continue;
                info_from_md(&info[n++], mt);
        }
        /* Sort by name for stable output. */
        for (size_t i = 1; i < n; i++)
                for (size_t k = i;
                     k > 0 && strcmp(info[k - 1].name, info[k].name) > 0; k--) {
                        keel_topic_info_t t = info[k];
                        info[k] = info[k - 1];
                        info[k - 1] = t;
                }
        rc = describe_configs(&ad, info, n, errstr, errstr_size);
        if (rc == KEEL_ERR_UNSUPPORTED) {
                /* The dev broker: metadata is all there is. */
                rc = KEEL_OK;
                if (errstr && errstr_size)
                        errstr[0] = '\0';
        }
        for (size_t i = 0; !rc && i < n; i++)
                fn(&info[i], opaque);
        admin_close(&ad);
        return rc;
}

int keel_topics_check(const keel_config_t *cfg, int32_t *partitions,
                      char *errstr, size_t errstr_size)
{
        static const char *const need[] = {KEEL_TOPIC_INBOX,
                                           KEEL_TOPIC_HISTORY};
        admin_t ad;
        int rc;

        *partitions = 0;
        if ((rc = admin_open(&ad, cfg, errstr, errstr_size)))
                return rc;
        for (size_t i = 0; i < 2 && !rc; i++) {
                const struct rd_kafka_metadata_topic *mt =
                    md_topic(&ad, need[i]);
                if (!mt)
                        rc = keel__fail(
                            errstr, errstr_size, KEEL_ERR_NOT_FOUND,
                            "topic %s does not exist on %s: run 'keel "
                            "topics create --bootstrap %s'",
                            need[i], ad.bootstrap, ad.bootstrap);
                else if (*partitions && mt->partition_cnt != *partitions)
                        rc = keel__fail(errstr, errstr_size, KEEL_ERR_MISMATCH,
                                        "%s has %d partitions but %s has %d",
                                        need[i], mt->partition_cnt, need[0],
                                        *partitions);
                else
                        *partitions = mt->partition_cnt;
        }
        if (rc)
                *partitions = 0;
        admin_close(&ad);
        return rc;
}
