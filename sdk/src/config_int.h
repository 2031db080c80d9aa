/*
 * config_int.h: configuration plumbing shared inside libkeel.
 */
#ifndef KEEL_CONFIG_INT_H
#define KEEL_CONFIG_INT_H

#include "keel/config.h"

#include <librdkafka/rdkafka.h>

/* Settings of one workflow type: "retention.closed.ms.<type>" overrides
 * retention.closed.ms for that type (machine_limits.c). */
#define KEEL__RETENTION_TYPE_PREFIX "retention.closed.ms."

/* Which kind of client a configuration is for. */
typedef enum keel__client_kind_e {
        KEEL__PRODUCER, /* producers and admin clients */
        KEEL__CONSUMER,
} keel__client_kind_t;

/*
 * A librdkafka configuration for a client of `kind` with bootstrap.servers
 * and cfg's librdkafka properties, plus a log callback routed to keel's
 * log. `kafka.X` applies to both kinds, except properties librdkafka knows
 * only for the other kind (group.instance.id for consumers, linger.ms for
 * producers, ...), which are left out instead of warned about;
 * `kafka.producer.X` and `kafka.consumer.X` apply to one kind only. NULL
 * with errstr on failure.
 */
rd_kafka_conf_t *keel__kafka_conf_new(const keel_config_t *cfg,
                                      keel__client_kind_t kind, char *errstr,
                                      size_t errstr_size);

/* A librdkafka error as keel's: KEEL_ERR_TRANSPORT when no broker answered
 * (retriable), KEEL_ERR_TOO_LARGE, KEEL_ERR_NOT_FOUND for an unknown topic
 * or partition, KEEL_ERR_UNSUPPORTED when the broker lacks the request,
 * else KEEL_ERR_KAFKA. */
int keel__kafka_err(rd_kafka_resp_err_t err);

/* Set property key to value on conf unless the user configured
 * kafka.<key>: keel's defaults for a client, which users may override.
 * Returns 0, or -1 with errstr. */
int keel__kafka_conf_default(rd_kafka_conf_t *conf, const keel_config_t *cfg,
                             const char *key, const char *value, char *errstr,
                             size_t errstr_size);

#endif
