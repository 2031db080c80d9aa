/*
 * search_attrs_int.h: search attributes (keel/workflow.h), the indexed
 * key-values of a run, shared by everything that writes or reads them: the
 * rules a set or an upsert must follow (checked by the workflow API, the
 * client's start and the orchestrator's start), and the fold that gives a
 * run's current set from its history (the start's initial set, then each
 * MarkerRecorded "search_attributes" merged in), applied by the workflow
 * engine, the test environment and the projector alike.
 */
#ifndef KEEL_SEARCH_ATTRS_INT_H
#define KEEL_SEARCH_ATTRS_INT_H

#include "keel/workflow.h"

#include <stddef.h>

/* The marker_name of an upsert's MarkerRecorded event. */
#define KEEL__SA_MARKER "search_attributes"

/* 1 if name is a valid search attribute name, else 0. */
int keel__sa_name_ok(const char *name);

/*
 * Check attrs (borrowed): an object of valid names and values within the
 * limits of keel/workflow.h. upsert: null values (removals) are allowed
 * and the object may not be empty; otherwise attrs is a whole set. KEEL_OK,
 * or KEEL_ERR_INVALID_ARG with the reason in why (may be NULL).
 */
int keel__sa_check(const json_t *attrs, int upsert, char *why, size_t size);

/* The same for a whole set given as JSON text, as a start carries it. */
int keel__sa_check_text(const char *text, char *why, size_t size);

/* Merge upsert (borrowed) into set: a null removes its key, a valid value
 * replaces it; anything keel__sa_check() would refuse is skipped. 0, or -1
 * when out of memory. */
int keel__sa_merge(json_t *set, const json_t *upsert);

/*
 * Fold history event ev ({"type","record"}, borrowed) into *set: a
 * WorkflowStarted replaces the set with its initial attributes, a
 * MarkerRecorded "search_attributes" merges its details in, anything else
 * changes nothing. *set is made (an object) when first needed. Recorded
 * text that is not a JSON object is ignored. 0, or -1 when out of memory.
 */
int keel__sa_apply(json_t **set, const json_t *ev);

#endif
