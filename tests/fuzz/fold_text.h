/*
 * fold_text.h: workflow events written as text, for the fuzz targets that
 * feed the projector's fold (fuzz_json's fold mode, fuzz_http's set-up).
 * One event a line, fields separated by tabs:
 *
 *   Type  workflow_id  run_id  seq  [field ...]
 *
 * Type is a keel.history record name without "keel.history."; the fields
 * after seq are, by type: WorkflowStarted workflow_type, input;
 * WorkflowCompleted result; WorkflowFailed failure (JSON);
 * ActivityScheduled activity_id, activity_type; ActivityRetried
 * activity_id, attempt; ActivityCompleted activity_id, result;
 * ActivityFailed activity_id, failure (JSON), next_attempt_at, attempt;
 * ActivityTimedOut activity_id, timeout_type, next_attempt_at, attempt;
 * ActivityHeartbeatRecorded activity_id, details; TimerStarted timer_id,
 * fire_at; TimerFired and TimerCancelled timer_id; MarkerRecorded
 * marker_name, details; SignalReceived signal_name, payload. A number
 * that does not parse stays text and JSON that does not parse becomes a
 * string, so the fold meets wrongly typed fields too. Each event gets
 * epoch 1, ts 1795000000000 + 1000 * seq and, when seq is a number,
 * offset = seq.
 */
#ifndef KEEL_FUZZ_FOLD_TEXT_H
#define KEEL_FUZZ_FOLD_TEXT_H

#include "proj.h"

/* Apply the event on `line` (modified: split in place) to f; a line of
 * fewer than four fields or with a type that is not UTF-8 is skipped. */
void fuzz_fold_line(proj_fold_t *f, char *line);

/* Apply every line of text (modified) to f, in order. */
void fuzz_fold_text(proj_fold_t *f, char *text);

#endif
