/*
 * config_int.h: configuration plumbing shared inside libkeel.
 */
#ifndef KEEL_CONFIG_INT_H
#define KEEL_CONFIG_INT_H

#include "keel/config.h"

#include <librdkafka/rdkafka.h>

/* A librdkafka configuration with bootstrap.servers and every kafka.*
 * property of cfg set, plus a log callback routed to keel's log. NULL with
 * errstr on failure. */
rd_kafka_conf_t *keel__kafka_conf_new(const keel_config_t *cfg, char *errstr,
                                      size_t errstr_size);

/* Set property key to value on conf unless the user configured
 * kafka.<key>: keel's defaults for a client, which users may override.
 * Returns 0, or -1 with errstr. */
int keel__kafka_conf_default(rd_kafka_conf_t *conf, const keel_config_t *cfg,
                             const char *key, const char *value, char *errstr,
                             size_t errstr_size);

#endif
