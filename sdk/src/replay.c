/*
 * replay.c: replaying recorded histories against the current code
 * (keel/replay.h), through the orchestrator's replay engine
 * (workflow_int.h).
 */
#include "keel/replay.h"

#include "keel/error.h"
#include "workflow_int.h"

#include <stdio.h>
#include <string.h>

static int fail(keel_replay_report_t *rep, int rc, const char *msg)
{
        snprintf(rep->message, sizeof(rep->message), "%s", msg);
        return rc;
}

/* Copy s (or "") into a field of rep. */
#define SET(field, s)                                                          \
        snprintf(rep->field, sizeof(rep->field), "%s", (s) ? (s) : "")

int keel_replay(const keel_registry_t *reg, const json_t *history,
                keel_replay_report_t *rep)
{
        const json_t *events = json_is_array(history)
                                   ? history
                                   : json_object_get(history, "events");
        const json_t *first = json_array_get(events, 0);
        keel__history_t h;
        keel__activation_t act;
        const json_t *ev;
        size_t i, n;
        int rc;

        memset(rep, 0, sizeof(*rep));
        if (!json_is_array(events) || !json_array_size(events))
                return fail(rep, KEEL_ERR_INVALID_ARG,
                            "no events: a history is {\"events\": [...]} "
                            "or an array of events");
        n = json_array_size(events);
        json_array_foreach(events, i, ev)
        {
                const json_t *rec = keel__ev_rec(ev);
                if (!json_is_string(json_object_get(ev, "type")) ||
                    !json_is_object(rec) ||
                    keel__ev_int(ev, "seq") != (int64_t)i + 1) {
                        snprintf(rep->message, sizeof(rep->message),
                                 "event %zu is not {\"type\", \"record\"} "
                                 "with seq %zu",
                                 i + 1, i + 1);
                        return KEEL_ERR_INVALID_ARG;
                }
        }
        SET(workflow_id, keel__ev_str(first, "workflow_id"));
        SET(run_id, keel__ev_str(first, "run_id"));
        SET(type, keel__ev_str(first, "workflow_type"));
        rep->events = n;
        if (strcmp(keel__ev_type(first), "keel.history.WorkflowStarted") ||
            !*rep->workflow_id || !*rep->run_id)
                return fail(rep, KEEL_ERR_INVALID_ARG,
                            "the first event is not a WorkflowStarted with "
                            "a workflow and run ID");
        if (!keel__registry_find(reg, rep->type)) {
                snprintf(rep->message, sizeof(rep->message),
                         "no workflow type '%s' is registered", rep->type);
                return KEEL_ERR_NOT_FOUND;
        }

        h.workflow_id = rep->workflow_id;
        h.run_id = rep->run_id;
        h.events = events;
        h.first_new_seq = 0; /* a pure replay: workflow logs stay quiet */
        rc = keel__wf_activate(reg, &h, 0, &act);
        if (rc)
                return fail(rep, rc, "out of memory");
        rc = KEEL_OK;
        if (act.status == KEEL__WF_BLOCKED) {
                json_array_foreach(act.new_events, i, ev)
                {
                        if (strcmp(keel__ev_type(ev),
                                   "keel.history.NonDeterminismDetected"))
                                continue;
                        rep->event_seq = keel__ev_int(ev, "event_seq");
                        SET(expected, keel__ev_str(ev, "expected"));
                        SET(actual, keel__ev_str(ev, "actual"));
                }
                if (!rep->event_seq) /* said already in the history */
                        rep->event_seq = -1;
                SET(message, act.message);
                rc = KEEL_ERR_NONDETERMINISM;
        } else if (act.status == KEEL__WF_ERROR) {
                SET(message, act.message);
                rc = KEEL_ERR_INVALID_ARG;
        } else {
                snprintf(rep->message, sizeof(rep->message),
                         "%zu events replayed, the code reproduces them", n);
        }
        json_decref(act.new_events);
        json_decref(act.carried_signals);
        return rc;
}

int keel_replay_file(const keel_registry_t *reg, const char *path,
                     keel_replay_report_t *rep)
{
        json_error_t e;
        json_t *h;
        int rc;

        memset(rep, 0, sizeof(*rep));
        if (!strcmp(path, "-"))
                h = json_loadf(stdin, 0, &e);
        else
                h = json_load_file(path, 0, &e);
        if (!h) {
                int io = json_error_code(&e) == json_error_cannot_open_file;
                snprintf(rep->message, sizeof(rep->message), "%s: %s (line %d)",
                         path, e.text, e.line);
                return io ? KEEL_ERR_IO : KEEL_ERR_INVALID_ARG;
        }
        rc = keel_replay(reg, h, rep);
        json_decref(h);
        return rc;
}
