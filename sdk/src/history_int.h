/*
 * history_int.h: reading keel.history[p] by the rules every reader follows
 * (DESIGN.md, "Orchestrator: exactly once"), for the orchestrator's
 * restore and the projector.
 *
 * - A PartitionClaim with a newer epoch starts a new owner's era: records
 *   written afterwards under an older epoch are ignored (a fenced writer),
 *   and an unfinished batch before it is discarded (its writer died).
 * - A batch's events apply only once its Checkpoint is read.
 * So on any broker, with or without transaction markers, every reader
 * sees the same history, exactly once.
 *
 * Record keys: events "<workflow ID>/<run ID>/<seq>", claims
 * "!claim/<p>/<epoch>", checkpoints "!checkpoint/<p>/<epoch>".
 *
 * A record with a null value is a tombstone: the orchestrator deletes a
 * closed run's events with one per key once the run's retention has
 * passed, after a RunDeleted event in the same batch. Readers skip
 * tombstones (counted) and forget the run at its RunDeleted, so a reader
 * that starts after compaction removed the run, or part of it, ends in
 * the same state as one that read everything.
 * keel.history is compacted: keys are unique per event (a reused workflow
 * ID has a new run ID) and claim, and per epoch for checkpoints, so
 * compaction keeps every owner's last checkpoint, which still closes every
 * batch that owner completed. Workflow IDs may not start with '!'.
 */
#ifndef KEEL_HISTORY_INT_H
#define KEEL_HISTORY_INT_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#define KEEL__KEY_CLAIM      "!claim/"
#define KEEL__KEY_CHECKPOINT "!checkpoint/"

/* The status of a workflow run, as every reader reports it. */
typedef enum keel__run_status_e {
        KEEL__RUN_RUNNING,
        KEEL__RUN_BLOCKED, /* non-determinism: waits for fixed code */
        KEEL__RUN_COMPLETED,
        KEEL__RUN_FAILED,
        KEEL__RUN_CANCELLED,
        KEEL__RUN_TERMINATED,
        KEEL__RUN_CONTINUED, /* continued as new */
        KEEL__RUN_NSTATUS
} keel__run_status_t;

/* "running", "blocked", "completed", ... by status. */
extern const char *const keel__run_status_names[KEEL__RUN_NSTATUS];

/*
 * A run's status after its next event of schema name `type`: a closing
 * event closes it; NonDeterminismDetected blocks an open run; a blocked
 * run that issues commands again (ActivityScheduled, TimerStarted) runs
 * fixed code. A closed run stays as it is.
 */
keel__run_status_t keel__run_status_after(keel__run_status_t st,
                                          const char *type);

/* The event that deletes a closed run's history (see above). */
#define KEEL__RUN_DELETED "keel.history.RunDeleted"

/* Called with each workflow event ({"type","record","size"}, plus
 * "offset" when the caller set it; "size" is the record's length in
 * bytes; borrowed) once its batch is complete, in log order. */
typedef void (*keel__history_apply_fn_t)(void *opaque, const json_t *ev);

/*
 * An event as a raw reader (keel__history_reader_init_raw()) hands it
 * over: the record as it was read, not decoded, and what restore needs of
 * it, read by keel__codec_scan(). Borrowed for the call.
 */
typedef struct keel__history_raw_s {
        const char *type;           /* schema full name (current version) */
        const unsigned char *value; /* the record, single-object encoded */
        size_t len;
        const char *workflow_id, *run_id; /* NUL-terminated */
        int64_t seq, epoch, ts;
        /* WorkflowStarted's (else ""): */
        const char *workflow_type, *command_id;
} keel__history_raw_t;

typedef void (*keel__history_apply_raw_fn_t)(void *opaque,
                                             const keel__history_raw_t *ev);

/* An event of the batch being read, in raw mode: where its parts are in
 * the reader's arena. */
typedef struct keel__history_pending_s {
        const char *type;
        size_t value, len;           /* offset, length */
        size_t wid, rid, wtype, cid; /* offsets of NUL-terminated strings */
        int64_t seq, epoch, ts;
} keel__history_pending_t;

typedef struct keel__history_reader_s {
        keel__history_apply_fn_t apply;
        keel__history_apply_raw_fn_t apply_raw; /* raw mode when set */
        void *opaque;
        int64_t epoch;         /* newest claim's epoch; 0 before any */
        int64_t checkpoint;    /* inbox offset of the last checkpoint; -1 */
        char claim_owner[256]; /* the newest claim's owner */
        json_t *pending;       /* events of the batch being read */
        /* The same in raw mode: entries, and their bytes in one arena
         * emptied at each checkpoint. */
        keel__history_pending_t *raw;
        size_t n_raw, cap_raw;
        unsigned char *arena;
        size_t arena_len, arena_cap;
        /* The offset of the record about to be fed, set by callers that
         * want it: when >= 0 each event carries it as "offset". */
        int64_t offset;
        /* counters */
        uint64_t applied, fenced, torn, undecodable, batches;
        uint64_t tombstones; /* records with a null value, skipped */
} keel__history_reader_t;

/* Start reading; KEEL_ERR_NOMEM. */
int keel__history_reader_init(keel__history_reader_t *r,
                              keel__history_apply_fn_t apply, void *opaque);
/*
 * The same rules, in raw mode: records are checked as the decoder would
 * (a record it refuses is undecodable here too) but not decoded, and each
 * event of a complete batch goes to apply as keel__history_raw_t (without
 * "offset"). For the orchestrator's restore, which reads every record of
 * a partition. KEEL_ERR_NOMEM.
 */
int keel__history_reader_init_raw(keel__history_reader_t *r,
                                  keel__history_apply_raw_fn_t apply,
                                  void *opaque);
void keel__history_reader_destroy(keel__history_reader_t *r);

/*
 * Feed the next record value of the partition, in log order. KEEL_OK, or
 * the codec's error for a record that does not decode (counted in
 * undecodable, errstr says why; the caller logs it and goes on). A NULL
 * value (a tombstone) is counted in tombstones and otherwise skipped.
 */
int keel__history_reader_feed(keel__history_reader_t *r, const void *value,
                              size_t len, char *errstr, size_t errstr_size);

#endif
