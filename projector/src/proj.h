/*
 * proj.h: the projector's parts (DESIGN.md, "Projector"). The fold
 * (fold.c) keeps every workflow's latest run as plain structs built from
 * keel.history events; the reader (reader.c) owns one consumer thread that
 * reads every partition of keel.history by the reader rules
 * (history_int.h) and feeds the fold; the HTTP server (http.c) answers on
 * libmicrohttpd's pool threads, and a request that may wait on a thread of
 * its own. They share the fold through proj_t.lock: the reader holds it
 * while it feeds one record, the server while it builds one response.
 */
#ifndef KEEL_PROJ_H
#define KEEL_PROJ_H

#include "keel/config.h"

#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include "history_int.h"

#include <stdint.h>

/* ---- the fold ---------------------------------------------------------- */

/* A run's status: the one every reader derives (history_int.h). */
typedef keel__run_status_t proj_status_t;
#define PROJ_RUNNING KEEL__RUN_RUNNING
#define PROJ_BLOCKED KEEL__RUN_BLOCKED
#define PROJ_NSTATUS KEEL__RUN_NSTATUS

/* The status's name ("running", ...). */
const char *proj_status_name(proj_status_t st);

/* The status named `name`; 0 with *st set, or -1 for an unknown name. */
int proj_status_parse(const char *name, proj_status_t *st);

/* How many signal names a workflow remembers. */
#define PROJ_LAST_SIGNALS 5

typedef struct proj_activity_s {
        char *id, *type;
        int attempt;
        char *last_failure; /* JSON text of the last failure, or NULL */
        char *hb_details;   /* JSON text of the last heartbeat's details */
} proj_activity_t;

typedef struct proj_timer_s {
        char *id;
        int64_t fire_at; /* ms since the epoch */
} proj_timer_t;

/* One workflow's latest run. Strings are owned; JSON values are kept as
 * the text the history holds, but for the search attributes, which
 * listings filter on. */
typedef struct proj_wf_s {
        struct proj_wf_s *next; /* hash chain */
        char *id, *run_id, *type;
        proj_status_t status;
        int closed;
        char *input;                /* JSON text */
        char *result;               /* completed: the result's JSON text */
        char *failure;              /* failed: the failure as JSON text */
        int64_t start_ts, close_ts; /* ms since the epoch; close 0 if open */
        int64_t history_length;     /* events of the run (its last seq) */
        char *state;                /* published (keel_set_state), JSON */
        json_t *search_attrs;       /* search attributes (an object), or NULL */
        json_t *origin;   /* {"parent": {...} or null, "continued_from_run_id"}
                             from WorkflowStarted, or NULL */
        json_t *children; /* [{"workflow_id","type","status"}] it started */
        char *close_reason; /* terminated: the reason (a timeout, a limit) */
        int64_t *offsets;   /* keel.history offset of seq i+1 */
        size_t noffsets, offsets_cap;
        proj_activity_t *acts;
        size_t nacts, acts_cap;
        proj_timer_t *timers;
        size_t ntimers, timers_cap;
        uint64_t signals;
        char *last_signals[PROJ_LAST_SIGNALS]; /* ring, newest at
                                                   (signals-1) % N */
        int gone; /* deleted (RunDeleted): out of the table, in the listing
                     arrays until the next sweep */
} proj_wf_t;

typedef struct proj_fold_s {
        proj_wf_t **buckets;
        size_t nbuckets, count;
        /* IDs in order for listing: `sorted` holds nsorted workflows in
         * strcmp order, `fresh` those added since, merged in lazily. */
        proj_wf_t **sorted, **fresh;
        size_t nsorted, nfresh, fresh_cap;
        uint64_t by_status[PROJ_NSTATUS];
        uint64_t events;  /* events applied */
        uint64_t deleted; /* workflows forgotten at a RunDeleted */
        size_t ngone;     /* gone ones still in sorted or fresh */
} proj_fold_t;

/* An empty fold; KEEL_OK or KEEL_ERR_NOMEM. */
int proj_fold_init(proj_fold_t *f);
void proj_fold_destroy(proj_fold_t *f);

/* Apply one event ({"type","record"} and its "offset" if known, borrowed):
 * a keel__history_apply_fn_t with the fold as opaque. Events of older runs,
 * and events whose seq was applied already, are ignored. A RunDeleted of
 * the latest run forgets the workflow: its ID is unknown again. */
void proj_fold_apply(void *fold, const json_t *ev);

/* The workflow `id`, or NULL. Borrowed; valid while the lock is held. */
proj_wf_t *proj_fold_get(proj_fold_t *f, const char *id);

/* Every workflow in ID order (merging fresh ones in first): *out borrowed,
 * valid while the lock is held. KEEL_OK or KEEL_ERR_NOMEM. */
int proj_fold_ordered(proj_fold_t *f, proj_wf_t ***out, size_t *n);

/* The full state of wf as JSON (new reference, NULL on out of memory). */
json_t *proj_wf_json(const proj_wf_t *wf);

/* The full state of wf as compact JSON text: byte for byte
 * json_dumps(proj_wf_json(wf), JSON_COMPACT), mostly written without
 * building the tree. Freed by the caller; NULL where proj_wf_json()
 * fails. */
char *proj_wf_text(const proj_wf_t *wf);

/* The summary of wf used in listings (new reference). */
json_t *proj_wf_summary_json(const proj_wf_t *wf);

/* ---- the projector ----------------------------------------------------- */

typedef struct proj_metrics_s {
        atomic_ullong records, undecodable;
        atomic_ullong commands; /* written to keel.inbox for HTTP clients */
        atomic_ullong http[10]; /* by proj_http_code_index() */
} proj_metrics_t;

typedef struct proj_s {
        const keel_config_t *cfg;
        int32_t partitions;
        pthread_mutex_t lock;   /* guards fold, readers and positions */
        pthread_cond_t changed; /* broadcast (under lock) as reading goes on */
        proj_fold_t fold;
        void *readers;      /* keel__history_reader_t[partitions] */
        int64_t *positions; /* next offset read per partition, -1 none */
        int64_t *ends;      /* end offsets read at start, -1 unknown */
        int end_queries;    /* rounds of reading ends (reader thread) */
        atomic_int ready;   /* caught up to ends */
        atomic_int stop;
        proj_metrics_t m;
        pthread_t thread;
        int thread_started;
        /* Reading single records back for the history endpoint. */
        pthread_mutex_t fetch_lock;
        void *fetcher; /* rd_kafka_t, made on first use */
} proj_t;

/* Set up p for `partitions` partitions with configuration cfg (borrowed,
 * must outlive p). KEEL_OK or KEEL_ERR_NOMEM. */
int proj_init(proj_t *p, const keel_config_t *cfg, int32_t partitions);

/* Start the reader thread. KEEL_OK, or an error with errstr (no thread). */
int proj_reader_start(proj_t *p, char *errstr, size_t errstr_size);

/* Stop and join the reader thread (if started), closing its consumer. */
void proj_reader_stop(proj_t *p);

/* Free what p holds; the reader must be stopped. */
void proj_destroy(proj_t *p);

/*
 * Read the records at offsets[0..n) (ascending) of keel.history[part]
 * back and append each, decoded, to `out` as {"seq", "type", "record"}.
 * Any thread; not with p->lock held. KEEL_OK, or an error with errstr
 * (KEEL_ERR_TRANSPORT when the broker does not answer in time).
 */
int proj_fetch_events(proj_t *p, int32_t part, const int64_t *offsets, size_t n,
                      json_t *out, char *errstr, size_t errstr_size);

/* The inbox offset up to which partition `part`'s commands have been
 * processed, as far as p has read (-1: none). Call with p->lock held. */
int64_t proj_inbox_done(proj_t *p, int32_t part);

/* "X-Keel-Read-Position" for p: "<partition>:<next offset>,..." for the
 * partitions read so far, "-" if none. Call with p->lock held. */
void proj_read_position(proj_t *p, char *buf, size_t size);

/* ---- the HTTP server --------------------------------------------------- */

/* Index of an HTTP status in proj_metrics_t.http (200, 202, 400, 401, 404,
 * 405, 413, 500, 503, anything else). */
int proj_http_code_index(unsigned code);

/*
 * Serve p on `listen` ("IPv4:port", port 0 for any) from libmicrohttpd's
 * pool of http.threads threads. Returns the server (free with
 * proj_http_stop(), which waits for requests under way) with *port the
 * bound port, or NULL after logging why.
 */
void *proj_http_start(proj_t *p, const char *listen, int *port);
void proj_http_stop(void *server);

#endif
