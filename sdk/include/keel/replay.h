/*
 * keel/replay.h: replay recorded workflow histories against the current
 * code, to find a change that would break workflows already running
 * before it is deployed.
 *
 * A history is the JSON `keel workflow history --json` writes and the
 * projector's GET /api/v1/workflows/{id}/history answers:
 * {"workflow_id", "run_id", "events": [{"type": "keel.history.X",
 * "record": {...}}, ...]} (a bare array of events is taken too). The
 * replay runs the workflow's registered function through the same replay
 * engine as the orchestrator, against every recorded event, and checks
 * that the code issues the recorded commands (activities, timers,
 * markers, its close) in order: the first that differs is reported with
 * its event seq, what the history has and what the code issued.
 */
#ifndef KEEL_REPLAY_H
#define KEEL_REPLAY_H

#include "keel/workflow.h"

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct keel_replay_report_s {
        char workflow_id[1001];
        char run_id[64];
        char type[256];
        size_t events; /* events replayed */
        /* 0: the code reproduces the history. Otherwise the seq of the
         * first recorded event it does not reproduce. */
        int64_t event_seq;
        char expected[256]; /* what the history has there */
        char actual[256];   /* what the code issued instead */
        char message[1024]; /* the whole finding, for people */
} keel_replay_report_t;

/*
 * Replay `history` (borrowed) against the workflows registered in reg.
 * Returns KEEL_OK when the code reproduces it, KEEL_ERR_NONDETERMINISM
 * when it does not (rep says where and how), KEEL_ERR_NOT_FOUND when its
 * type is not registered, KEEL_ERR_INVALID_ARG for a malformed history
 * (no events, a first event other than WorkflowStarted, seqs out of
 * order), KEEL_ERR_NOMEM. rep->message says why in every case.
 */
int keel_replay(const keel_registry_t *reg, const json_t *history,
                keel_replay_report_t *rep);

/* The same for a history in a file ("-": standard input); KEEL_ERR_IO
 * when it cannot be read, KEEL_ERR_INVALID_ARG when it is not JSON. */
int keel_replay_file(const keel_registry_t *reg, const char *path,
                     keel_replay_report_t *rep);

#ifdef __cplusplus
}
#endif
#endif
