/*
 * workflow_read.h: `keel workflow list|describe|history|result`, the
 * verbs that read workflows from keel-projector's HTTP API
 * (docs/http-api.md) rather than from Kafka. workflow_cmd.c parses the
 * flags; workflow_read.c asks the projector named by `projector.url` and
 * prints a table, a description or the API's JSON.
 */
#ifndef KEEL_CLI_WORKFLOW_READ_H
#define KEEL_CLI_WORKFLOW_READ_H

#include "keel/config.h"

#include <jansson.h>

#include <stddef.h>
#include <stdint.h>

/* The most --search terms a list takes (the projector takes 16 query
 * parameters in all). */
#define KEEL_CLI_MAX_SEARCH 8

/* What to read; strings are borrowed, NULL when not given. */
typedef struct keel_cli_read_s {
        const char *verb; /* "list", "describe", "history" or "result" */
        const char *id;   /* every verb but list */
        const char *status, *type, *prefix, *cursor; /* list filters */
        const char *search[KEEL_CLI_MAX_SEARCH];     /* list: "NAME=VALUE" */
        size_t nsearch;
        int limit;       /* list page size; 0: the projector's default */
        int all;         /* list: follow next_cursor to the last page */
        int json;        /* print the API's JSON instead of text */
        int64_t wait_ms; /* result: how long to wait for the run to close */
} keel_cli_read_t;

/*
 * Run q against the projector cfg names (projector.url, http.token,
 * timeout.ms): the answer goes to stdout, errors to stderr as
 * "keel workflow VERB: ...". Returns the exit code: KEEL_EXIT_OK;
 * KEEL_EXIT_FAILURE for an unknown workflow, a run still open after
 * result's wait, or an error answer; KEEL_EXIT_USAGE when the projector
 * finds the request invalid (400) or unauthorised (401: http.token);
 * KEEL_EXIT_UNAVAILABLE when it cannot be reached or is not ready within
 * timeout.ms.
 */
int keel_cli_workflow_read(const keel_config_t *cfg, const keel_cli_read_t *q);

/*
 * One GET of /api/v1/workflows[/id][?k=v&...] from the projector cfg
 * names, for other verbs that read it (`keel schedule list|describe`):
 * kv holds nkv keys and values in turn (pairs whose value is NULL are
 * left out); 503 is retried until timeout.ms. Errors go to stderr as
 * "<prog>: ...". Returns an exit code as keel_cli_workflow_read(); *out
 * (a JSON object, a new reference) is set only with KEEL_EXIT_OK.
 */
int keel_cli_projector_get(const keel_config_t *cfg, const char *prog,
                           const char *id, const char *const *kv, size_t nkv,
                           json_t **out);

/* v as text: a string as is, null (or NULL) as "-", anything else as
 * compact JSON. A malloc'd string (NULL: out of memory). */
char *keel_cli_text_of(const json_t *v);

/* The string obj[key], or "?" when it is missing or not a string. */
const char *keel_cli_str_of(const json_t *obj, const char *key);

/* Print "label  value" (value as keel_cli_text_of()), label padded to 19
 * columns as in `keel workflow describe`. */
void keel_cli_field(const char *label, const json_t *v);

/* Print rows (an array of arrays of strings) under headers as a table of
 * ncols (at most 8) columns, each as wide as its widest cell. */
void keel_cli_print_table(const char *const *headers, size_t ncols,
                          const json_t *rows);

#endif
