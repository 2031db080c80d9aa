/*
 * ingress_int.h: keel's ingress, which turns records of the users' own
 * topics into workflow starts and signals on keel.inbox, exactly once
 * (docs/streams.md). A routes file says, per source topic, what a record
 * becomes; the mapping (keel__ingress_map) is a pure function of the
 * routes and the record, so tests check it without a broker. The runner
 * (keel__ingress_run) is a consumer in group keel-ingress-<name> with one
 * transactional producer per source partition it is assigned, as the
 * orchestrator has one per inbox partition: the inbox records of a batch
 * and the batch's source offsets commit in one transaction, and a new
 * owner of a source partition fences the old one by transactional.id.
 * Every command's ID is "ingress/<name>/<topic>/<partition>/<offset>", so
 * a record delivered twice (a broker without transaction markers shows
 * aborted batches) is a command the orchestrator has seen, and dropped.
 */
#ifndef KEEL_INGRESS_INT_H
#define KEEL_INGRESS_INT_H

#include "keel/config.h"

#include <jansson.h>
#include <librdkafka/rdkafka.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

typedef struct keel__ingress_routes_s keel__ingress_routes_t;

/* Largest input or payload a command may carry, in bytes of JSON text: a
 * keel.inbox record must fit Kafka's default limit of 1 MB. A record
 * mapped to more is dead (its value, over the limit too, is left out of
 * the dead letter), rather than a transaction the broker refuses for
 * ever. */
#define KEEL__INGRESS_MAX_INPUT 900000

/* Parse a routes document (the JSON of a routes file). KEEL_OK with *out
 * (free with keel__ingress_routes_free()), or KEEL_ERR_CONFIG with what
 * is wrong, and where, in errstr. */
int keel__ingress_routes_parse(const json_t *doc, keel__ingress_routes_t **out,
                               char *errstr, size_t errstr_size);
/* The same from a file. */
int keel__ingress_routes_load(const char *path, keel__ingress_routes_t **out,
                              char *errstr, size_t errstr_size);
void keel__ingress_routes_free(keel__ingress_routes_t *r);
const char *keel__ingress_routes_name(const keel__ingress_routes_t *r);

/* A source record, as the mapping sees it. */
typedef struct keel__ingress_src_s {
        const char *topic;
        int32_t partition;
        int64_t offset;
        const void *key, *value; /* NULL: none (a tombstone's value) */
        size_t key_len, value_len;
        rd_kafka_headers_t *headers; /* may be NULL */
} keel__ingress_src_t;

typedef enum keel__ingress_verdict_e {
        KEEL__INGRESS_COMMAND, /* a command for keel.inbox */
        KEEL__INGRESS_SKIP,    /* no route wants it ("when" did not match) */
        KEEL__INGRESS_DEAD,    /* a route wants it but cannot map it */
} keel__ingress_verdict_t;

/*
 * Map one record. COMMAND: *type is the inbox schema
 * ("keel.inbox.StartWorkflow" or "keel.inbox.SignalWorkflow") and *rec a
 * new record for it (workflow_id is its key). DEAD: why says what is
 * wrong with the record. SKIP: nothing.
 */
keel__ingress_verdict_t keel__ingress_map(const keel__ingress_routes_t *r,
                                          const keel__ingress_src_t *src,
                                          int64_t now_ms, const char **type,
                                          json_t **rec, char *why,
                                          size_t whysize);

/* What an ingress counts, for /metrics. */
typedef struct keel__ingress_stats_s {
        atomic_uint_least64_t records;      /* source records read */
        atomic_uint_least64_t starts;       /* start commands written */
        atomic_uint_least64_t signals;      /* signal commands written */
        atomic_uint_least64_t skipped;      /* records no route wanted */
        atomic_uint_least64_t dead_letters; /* records sent to keel.dlq */
        atomic_uint_least64_t transactions; /* committed */
        atomic_uint_least64_t txn_failures; /* aborted or failed */
        atomic_int_least64_t partitions;    /* source partitions owned */
} keel__ingress_stats_t;

typedef struct keel__ingress_s keel__ingress_t;

/* An ingress on cfg's cluster for routes (taken over, even on failure).
 * NULL with errstr on failure. */
keel__ingress_t *keel__ingress_new(const keel_config_t *cfg,
                                   keel__ingress_routes_t *routes, char *errstr,
                                   size_t errstr_size);

/* Run until *stop is set: read the routes' topics, write commands. KEEL_OK
 * after a clean stop, or an error that left it unable to go on (logged). */
int keel__ingress_run(keel__ingress_t *ing, atomic_int *stop);

void keel__ingress_destroy(keel__ingress_t *ing);

/* Its counters as Prometheus text (keel_ingress_*), appended to buf of
 * size bytes at *len. */
void keel__ingress_metrics(const keel__ingress_t *ing, char *buf, size_t size,
                           size_t *len);

#endif
