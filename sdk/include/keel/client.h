/*
 * keel/client.h: start, signal, cancel and terminate workflows from any
 * program.
 *
 * A client writes commands to keel.inbox (key = workflow ID, partition =
 * keel_partition_of(workflow ID) among keel.inbox's partitions) with an
 * idempotent producer; every command carries a unique command ID. The
 * orchestrator that owns the partition answers in keel.history (the run
 * started, the signal was received, ...) or, when it refuses a command, in
 * keel.dlq (a DeadLetter naming the command's inbox offset and the error).
 * A call that waits reads both partitions from their ends, taken before
 * the command was written, until it sees its answer. History events count
 * only once the Checkpoint that closes their batch is read and no newer
 * PartitionClaim came before it, the rule every history reader follows
 * (DESIGN.md), so a torn batch on a broker without transaction markers is
 * never taken for an answer.
 *
 * A client is safe to use from several threads at once. Calls that wait
 * for an outcome take turns: each holds the client's reader while it
 * waits, so use one client per thread for parallel waits.
 */
#ifndef KEEL_CLIENT_H
#define KEEL_CLIENT_H

#include "keel/config.h"
#include "keel/error.h"

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Longest workflow ID, in bytes. */
#define KEEL_WORKFLOW_ID_MAX 1000

/* Room for a command or run ID (a UUID: 36 characters and the NUL). */
#define KEEL_UUID_SIZE 37

typedef struct keel_client_s keel_client_t;

/*
 * A new client for the cluster cfg names (cfg is read now and may be
 * freed afterwards). Nothing is sent yet: the first command looks up
 * keel.inbox's partition count, so a broker that is down now is no error
 * here. NULL on a configuration librdkafka rejects or out of memory, with
 * the reason in errstr (which may be NULL). Free with keel_client_destroy().
 */
keel_client_t *keel_client_new(const keel_config_t *cfg, char *errstr,
                               size_t errstr_size);

/* Free c, waiting for nothing: every call has already seen its command
 * delivered or failed. Accepts NULL. No call may be running on c. */
void keel_client_destroy(keel_client_t *c);

/*
 * A new random command ID (UUID v4) in out. Pass it as a command's ID and
 * again when retrying the same command after an error: the orchestrator
 * drops commands whose ID it has seen. KEEL_OK or KEEL_ERR_IO (no system
 * randomness).
 */
int keel_client_command_id(char out[KEEL_UUID_SIZE]);

/* How to start a workflow. Zero every field (or pass NULL) for defaults. */
typedef struct keel_start_options_s {
        /* Command ID (copied); NULL: a new one. Reuse it to retry. */
        const char *command_id;
        /* NULL: "ALLOW_DUPLICATE"; or "ALLOW_DUPLICATE_FAILED_ONLY",
         * "REJECT_DUPLICATE": may the ID of a closed workflow be reused. */
        const char *id_reuse_policy;
        /* NULL: "FAIL"; or "USE_EXISTING": what to do while a run with
         * the ID is open. */
        const char *id_conflict_policy;
        /* Signal-with-start: a signal delivered with the start (NULL: none)
         * and its payload (borrowed; NULL: JSON null). */
        const char *signal_name;
        const json_t *signal_payload;
        /* Timeout over all runs and of one run; 0: none. */
        int64_t execution_timeout_ms;
        int64_t run_timeout_ms;
        /* > 0: wait up to this long, after the command is written, for
         * the orchestrator's answer; 0: return once it is written. */
        int wait_ms;
        /* The run's initial search attributes (borrowed; NULL: none): a
         * JSON object of names to values by the rules and limits of
         * keel/workflow.h, without nulls. */
        const json_t *search_attributes;
} keel_start_options_t;

/*
 * Start workflow `workflow_id` (1 to KEEL_WORKFLOW_ID_MAX bytes of UTF-8,
 * not starting with '!', which marks keel's own history keys) of type
 * `workflow_type` with `input` (borrowed; NULL: JSON null).
 * opts may be NULL. When opts->wait_ms > 0 and the run started, run_id
 * (may be NULL) receives its ID; otherwise it is set to "". With
 * USE_EXISTING and a signal, an open run that received the signal counts
 * as started and run_id is that run's.
 *
 * Returns KEEL_OK once the command is written (and, when waiting, once the
 * run started). Errors:
 *  - KEEL_ERR_INVALID_ARG: a bad argument, such as search attributes
 *    that break the rules (nothing was sent), or the orchestrator refused
 *    the command as invalid;
 *  - KEEL_ERR_ALREADY_STARTED, KEEL_ERR_NOT_FOUND: the orchestrator
 *    refused it; errstr holds its reason. A refusal naming another keel
 *    error returns that error; one naming an error this version does not
 *    know returns KEEL_ERR_INVALID_ARG with "NAME: reason" in errstr;
 *  - KEEL_ERR_TIMEOUT: the command was written but no answer came within
 *    wait_ms (errstr says so, with the command ID to retry with);
 *  - KEEL_ERR_TRANSPORT: no broker answered within timeout.ms (the
 *    command was not written, or errstr says it may have been);
 *  - KEEL_ERR_NOT_FOUND, KEEL_ERR_MISMATCH: keel's topics are missing or
 *    not co-partitioned;
 *  - KEEL_ERR_TOO_LARGE, KEEL_ERR_KAFKA, KEEL_ERR_IO, KEEL_ERR_NOMEM.
 * errstr may be NULL.
 */
int keel_client_start(keel_client_t *c, const char *workflow_id,
                      const char *workflow_type, const json_t *input,
                      const keel_start_options_t *opts,
                      char run_id[KEEL_UUID_SIZE], char *errstr,
                      size_t errstr_size);

/*
 * Send signal `signal_name` with `payload` (borrowed; NULL: JSON null) to
 * the run `run_id` of workflow_id (NULL: the current run). With wait_ms >
 * 0, wait that long for the orchestrator to record it (SignalReceived).
 * Returns and errors as keel_client_start(); KEEL_ERR_NOT_FOUND when there
 * is no such open workflow.
 */
int keel_client_signal(keel_client_t *c, const char *workflow_id,
                       const char *run_id, const char *signal_name,
                       const json_t *payload, int wait_ms, char *errstr,
                       size_t errstr_size);

/*
 * Ask the run `run_id` of workflow_id (NULL: the current run) to cancel,
 * for `reason` (NULL: ""). The workflow code sees the request and may
 * clean up. With wait_ms > 0, wait for the request to be recorded
 * (WorkflowCancelRequested). Returns and errors as keel_client_signal().
 */
int keel_client_cancel(keel_client_t *c, const char *workflow_id,
                       const char *run_id, const char *reason, int wait_ms,
                       char *errstr, size_t errstr_size);

/*
 * End the run `run_id` of workflow_id (NULL: the current run) at once,
 * without running its code, for `reason` (NULL: "") with `details`
 * (borrowed; NULL: JSON null). With wait_ms > 0, wait for the run to be
 * terminated (WorkflowTerminated). Returns and errors as
 * keel_client_signal().
 */
int keel_client_terminate(keel_client_t *c, const char *workflow_id,
                          const char *run_id, const char *reason,
                          const json_t *details, int wait_ms, char *errstr,
                          size_t errstr_size);

/* What keel_client_result() found of a workflow's latest run. */
typedef struct keel_client_run_s {
        char run_id[KEEL_UUID_SIZE];
        /* "running", "blocked", "completed", "failed", "cancelled",
         * "terminated" or "continued" */
        char status[16];
        /* completed: its result; failed: its failure {type, message,
         * details, non_retryable}; otherwise JSON null. A new reference
         * the caller releases with json_decref(). */
        json_t *result;
        int64_t events; /* history length */
} keel_client_run_t;

/*
 * Read workflow_id's history (by the same rules the orchestrator and
 * projector read it) and report its latest run in *run. With wait_ms > 0,
 * wait up to that long for the run to close. KEEL_OK when it is closed;
 * KEEL_ERR_TIMEOUT when it is still open (run filled in); KEEL_ERR_NOT_FOUND
 * when no run exists (run->result NULL); transport errors as
 * keel_client_start(). Reads the workflow's whole partition: meant for the
 * command line and tests; dashboards use the projector.
 */
int keel_client_result(keel_client_t *c, const char *workflow_id, int wait_ms,
                       keel_client_run_t *run, char *errstr,
                       size_t errstr_size);

#ifdef __cplusplus
}
#endif
#endif
