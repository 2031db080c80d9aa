/*
 * orch.h: keel-orchestrator's parts and how they fit. The orchestrator
 * (orchestrator.c) is one consumer in group keel-orchestrator on
 * keel.inbox; for each partition p it is assigned it runs a partition
 * processor (processor.c) with its own transactional producer, which
 * restores the partition's workflows from keel.history[p], claims the
 * partition, and then turns batches of commands and due timers into
 * history events, activity tasks and a checkpoint, all in one Kafka
 * transaction. metrics.c counts and serves Prometheus text; modules.c
 * loads the workflow code. Everything runs on the main thread except the
 * metrics HTTP server, which only reads atomic counters, and the commits
 * of a round's transactions, which a pool of threads runs side by side
 * while the main thread waits for them (orch_pp_commit()).
 */
#ifndef KEEL_ORCH_H
#define KEEL_ORCH_H

#include "keel/config.h"
#include "keel/workflow.h"
#include "machine_int.h"

#include <librdkafka/rdkafka.h>
#include <stdatomic.h>
#include <stdint.h>

typedef struct orch_metrics_s {
        atomic_uint_least64_t commands;         /* inbox commands applied */
        atomic_uint_least64_t events;           /* history events written */
        atomic_uint_least64_t tasks;            /* activity tasks written */
        atomic_uint_least64_t transactions;     /* committed */
        atomic_uint_least64_t txn_failures;     /* aborted or failed */
        atomic_uint_least64_t dlq;              /* records dead-lettered */
        atomic_uint_least64_t rejected;         /* commands refused */
        atomic_uint_least64_t stale;            /* results of old attempts */
        atomic_uint_least64_t restores;         /* partitions restored */
        atomic_uint_least64_t restore_events;   /* history records read */
        atomic_uint_least64_t restore_ms;       /* time spent restoring */
        atomic_uint_least64_t fenced;           /* records of fenced writers */
        atomic_uint_least64_t runs_deleted;     /* closed runs' histories */
        atomic_uint_least64_t tombstones;       /* written to keel.history */
        atomic_uint_least64_t history_warnings; /* runs near a limit */
        atomic_uint_least64_t history_limited;  /* terminated at a limit */
        atomic_int_least64_t open_workflows;
        atomic_int_least64_t partitions; /* owned now */
} orch_metrics_t;

typedef struct orch_s orch_t;

/* A transaction between orch_pp_prepare() and orch_pp_commit(). */
typedef struct orch_txn_s {
        int open; /* begun, not yet committed or aborted */
        int rc;   /* what preparing it gave: commit aborts unless OK */
        int64_t now;
        keel__machine_stats_t before;
} orch_txn_t;

/* A partition processor: everything about one owned partition. */
typedef struct orch_pp_s {
        orch_t *o;
        int32_t p;
        rd_kafka_t *producer; /* transactional.id <cluster>-orch-<p> */
        keel__machine_t *m;
        int64_t epoch;
        int64_t inbox_next; /* next inbox offset to process */
        int64_t last_inbox; /* last processed, for the checkpoint; -1 */
        int64_t committed;  /* inbox offset last committed to the group */
        keel__out_t out;
        json_t *emit_topics;  /* topics (emitted to, task queues) whose
                                 metadata the producer has fetched */
        atomic_int dr_failed; /* a delivery failed in this transaction */
        int fenced;           /* another owner's producer fenced ours */
        /* Just taken: fire no overdue timer until the inbox is read to its
         * end or this time (ms) passes; 0 once so. */
        int64_t hold_timers_until;
        orch_txn_t txn;
        char txn_id[256];
        char owner[512];
} orch_pp_t;

struct orch_s {
        const keel_config_t *cfg;
        const keel_registry_t *reg;
        rd_kafka_t *consumer;
        orch_pp_t **pps;     /* by partition, NULL when not owned */
        int64_t *retry_at;   /* by partition: when to retry a given-up one */
        int32_t partitions;  /* of keel.inbox */
        json_t *topic_parts; /* topic -> partition count */
        orch_metrics_t metrics;
        int batch_max, batch_ms;
        int commit_threads;       /* at most this many commits side by side */
        struct orch_pool_s *pool; /* commits transactions side by side */
        volatile int stop;
        /* An ingress run on its own thread (--ingress), or NULL. */
        struct keel__ingress_s *ingress;
};

/* processor.c: open (restore and claim) the processors of n partitions
 * at once, sharing one history reader. out[i] is NULL for a partition
 * that could not be taken. KEEL_OK when all were. */
int orch_pps_open(orch_t *o, const int32_t *parts, int n, orch_pp_t **out);
void orch_pp_close(orch_pp_t *pp);
/* One transaction in two steps. orch_pp_prepare() (main thread): begin
 * it, apply msgs (may be 0), then whatever was due by due_until (now, or
 * earlier while the partition's inbox has a backlog), and produce what
 * they caused. orch_pp_commit() (any one thread; it touches only pp and
 * atomic counters): the checkpoint, the inbox position, and the commit,
 * or the abort if preparing failed. Each gives KEEL_OK, or an error after
 * which the processor must be reopened. The transactions of several
 * partitions commit side by side: each has its own producer. */
int orch_pp_prepare(orch_pp_t *pp, rd_kafka_message_t **msgs, size_t n,
                    int64_t due_until, int64_t now);
int orch_pp_commit(orch_pp_t *pp);

/* orchestrator.c */
int orch_run(orch_t *o);
int64_t orch_now_ms(void);
/* Partition count of a topic, or -1 if it does not exist (cached). */
int32_t orch_topic_partitions(orch_t *o, const char *topic);
/* The same for keel.tasks.<queue>. */
int32_t orch_queue_partitions(orch_t *o, const char *queue);

/* metrics.c: serve /metrics on addr ("host:port", port 0: any); the
 * bound port goes to *port. NULL handle on failure (logged). */
void *orch_metrics_start(orch_t *o, const char *addr, int *port);
void orch_metrics_stop(void *handle);

#endif
