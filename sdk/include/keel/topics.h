/*
 * keel/topics.h: keel's topics and their configuration.
 *
 * keel.inbox (delete, 7 days), keel.history (compacted), keel.dlq (delete,
 * 30 days) and one keel.tasks.<queue> (delete, 7 days) per task queue, all
 * with the same partition count, which is what keeps a workflow's records
 * co-partitioned. keel_topics_create() creates the missing ones through the
 * Kafka Admin API and checks the shape of those that exist.
 */
#ifndef KEEL_TOPICS_H
#define KEEL_TOPICS_H

#include "keel/config.h"

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define KEEL_TOPIC_INBOX        "keel.inbox"
#define KEEL_TOPIC_HISTORY      "keel.history"
#define KEEL_TOPIC_DLQ          "keel.dlq"
#define KEEL_TOPIC_TASKS_PREFIX "keel.tasks."
#define KEEL_TASK_QUEUE_DEFAULT "default"

/* One topic keel needs. */
typedef struct keel_topic_spec_s {
        char name[256];
        const char *cleanup_policy; /* "delete" or "compact" */
        int64_t retention_ms;       /* -1: not set (compacted topics) */
} keel_topic_spec_t;

/*
 * Fill specs (room for max entries) with every topic keel needs for the
 * given task queues (NULL/0: the default queue). *cnt is set to the count.
 * KEEL_ERR_INVALID_ARG for a queue name Kafka would reject.
 */
int keel_topics_specs(const char *const *task_queues, size_t n_queues,
                      keel_topic_spec_t *specs, size_t max, size_t *cnt);

/* How a topic came out of keel_topics_create(). */
typedef enum keel_topic_outcome_e {
        KEEL_TOPIC_CREATED,
        KEEL_TOPIC_EXISTS, /* already there with the right shape */
} keel_topic_outcome_t;

/*
 * Create every missing keel topic on the cluster cfg names, with
 * `partitions` partitions and `replication` replicas, and check that those
 * that exist have that partition count and cleanup policy. report (may be
 * NULL) is called once per topic. Errors: KEEL_ERR_MISMATCH (an existing
 * topic has another shape; errstr says which and how), KEEL_ERR_UNSUPPORTED
 * (the broker has no Admin API, such as the dev broker), KEEL_ERR_TRANSPORT
 * (no broker answered within timeout.ms), KEEL_ERR_KAFKA.
 */
int keel_topics_create(const keel_config_t *cfg, int32_t partitions,
                       int16_t replication, const char *const *task_queues,
                       size_t n_queues,
                       void (*report)(const keel_topic_spec_t *spec,
                                      keel_topic_outcome_t outcome,
                                      void *opaque),
                       void *opaque, char *errstr, size_t errstr_size);

/* What exists of a topic on the cluster. */
typedef struct keel_topic_info_s {
        char name[256];
        int32_t partitions;
        int16_t replication;
        char cleanup_policy[32]; /* "" where the broker cannot say */
        int64_t retention_ms;    /* -1 where unknown */
} keel_topic_info_t;

/*
 * Describe every topic whose name starts with "keel." through fn. Uses
 * metadata, plus DescribeConfigs where the broker has it.
 */
int keel_topics_describe(const keel_config_t *cfg,
                         void (*fn)(const keel_topic_info_t *info,
                                    void *opaque),
                         void *opaque, char *errstr, size_t errstr_size);

/*
 * Check that the cluster cfg names has keel.inbox and keel.history with the
 * same partition count, which goes to *partitions. KEEL_ERR_NOT_FOUND (a
 * topic is missing: run 'keel topics create'), KEEL_ERR_MISMATCH,
 * KEEL_ERR_TRANSPORT.
 */
int keel_topics_check(const keel_config_t *cfg, int32_t *partitions,
                      char *errstr, size_t errstr_size);

#ifdef __cplusplus
}
#endif
#endif
