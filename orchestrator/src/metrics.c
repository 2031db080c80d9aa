/*
 * metrics.c: the orchestrator's counters (and its ingress's, if it runs
 * one) in Prometheus text format at /metrics, served by keel's metrics
 * server (sdk/app/metrics.c). Only atomic counters are read.
 */
#include "orch.h"

#include "app.h"
#include "ingress_int.h"

#include <stdio.h>

#define LD(x) ((unsigned long long)atomic_load(&(x)))

static void render(void *opaque, char *body, size_t size, size_t *len)
{
        orch_t *o = opaque;
        orch_metrics_t *m = &o->metrics;
        int w = snprintf(
            body, size,
            "# HELP keel_orchestrator_commands_total Inbox commands "
            "applied.\n"
            "# TYPE keel_orchestrator_commands_total counter\n"
            "keel_orchestrator_commands_total %llu\n"
            "# TYPE keel_orchestrator_events_total counter\n"
            "keel_orchestrator_events_total %llu\n"
            "# TYPE keel_orchestrator_tasks_total counter\n"
            "keel_orchestrator_tasks_total %llu\n"
            "# TYPE keel_orchestrator_transactions_total counter\n"
            "keel_orchestrator_transactions_total %llu\n"
            "# TYPE keel_orchestrator_transaction_failures_total "
            "counter\n"
            "keel_orchestrator_transaction_failures_total %llu\n"
            "# HELP keel_orchestrator_dead_letters_total Records "
            "sent to keel.dlq.\n"
            "# TYPE keel_orchestrator_dead_letters_total counter\n"
            "keel_orchestrator_dead_letters_total %llu\n"
            "# TYPE keel_orchestrator_rejected_total counter\n"
            "keel_orchestrator_rejected_total %llu\n"
            "# HELP keel_orchestrator_stale_results_total Results "
            "for attempts no longer current, dropped.\n"
            "# TYPE keel_orchestrator_stale_results_total counter\n"
            "keel_orchestrator_stale_results_total %llu\n"
            "# TYPE keel_orchestrator_restores_total counter\n"
            "keel_orchestrator_restores_total %llu\n"
            "# TYPE keel_orchestrator_restore_records_total counter\n"
            "keel_orchestrator_restore_records_total %llu\n"
            "# TYPE keel_orchestrator_restore_seconds_total counter\n"
            "keel_orchestrator_restore_seconds_total %.3f\n"
            "# HELP keel_orchestrator_fenced_records_total History "
            "records of fenced owners, ignored.\n"
            "# TYPE keel_orchestrator_fenced_records_total counter\n"
            "keel_orchestrator_fenced_records_total %llu\n"
            "# HELP keel_orchestrator_runs_deleted_total Closed runs "
            "whose history was deleted after their retention.\n"
            "# TYPE keel_orchestrator_runs_deleted_total counter\n"
            "keel_orchestrator_runs_deleted_total %llu\n"
            "# HELP keel_orchestrator_tombstones_total Tombstones written "
            "to keel.history.\n"
            "# TYPE keel_orchestrator_tombstones_total counter\n"
            "keel_orchestrator_tombstones_total %llu\n"
            "# HELP keel_orchestrator_history_warnings_total Runs past "
            "history.warn.percent of a history limit.\n"
            "# TYPE keel_orchestrator_history_warnings_total counter\n"
            "keel_orchestrator_history_warnings_total %llu\n"
            "# HELP keel_orchestrator_history_limit_terminations_total "
            "Runs terminated at a history limit.\n"
            "# TYPE keel_orchestrator_history_limit_terminations_total "
            "counter\n"
            "keel_orchestrator_history_limit_terminations_total %llu\n"
            "# TYPE keel_orchestrator_open_workflows gauge\n"
            "keel_orchestrator_open_workflows %lld\n"
            "# TYPE keel_orchestrator_partitions gauge\n"
            "keel_orchestrator_partitions %lld\n",
            LD(m->commands), LD(m->events), LD(m->tasks), LD(m->transactions),
            LD(m->txn_failures), LD(m->dlq), LD(m->rejected), LD(m->stale),
            LD(m->restores), LD(m->restore_events),
            (double)atomic_load(&m->restore_ms) / 1000.0, LD(m->fenced),
            LD(m->runs_deleted), LD(m->tombstones), LD(m->history_warnings),
            LD(m->history_limited), (long long)atomic_load(&m->open_workflows),
            (long long)atomic_load(&m->partitions));
        *len = w < 0 ? 0 : (size_t)w < size ? (size_t)w : size - 1;
        if (o->ingress)
                keel__ingress_metrics(o->ingress, body, size, len);
}

void *orch_metrics_start(orch_t *o, const char *addr, int *port)
{
        return keel__app_metrics_start(addr, "orchestrator", render, o, port);
}

void orch_metrics_stop(void *handle)
{
        keel__app_metrics_stop(handle);
}
