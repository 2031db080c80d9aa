/*
 * search_attrs.c: the rules and the fold of search attributes
 * (search_attrs_int.h). A set is a JSON object of names to scalars; an
 * upsert is the same with null for a key to remove. The limits are
 * Temporal's defaults (keel/workflow.h), measured on what a reader keeps:
 * a string's bytes, a number's or boolean's JSON text.
 */
#include "search_attrs_int.h"

#include "error_int.h"
#include "workflow_int.h"

#include <stdio.h>
#include <string.h>

#define NAME_CHARS                                                             \
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_"

int keel__sa_name_ok(const char *name)
{
        size_t n = name ? strlen(name) : 0;
        if (!n || n > KEEL_SEARCH_ATTR_NAME_MAX ||
            (name[0] >= '0' && name[0] <= '9'))
                return 0;
        return strspn(name, NAME_CHARS) == n;
}

/* A value a set may hold: a string without NUL bytes, a number or a
 * boolean. */
static int value_ok(const json_t *v)
{
        return json_is_number(v) || json_is_boolean(v) ||
               (json_is_string(v) &&
                strlen(json_string_value(v)) == json_string_length(v));
}

/* What a value counts for against the limits: a string's bytes, or the
 * length of a number's or boolean's JSON text. */
static size_t value_bytes(const json_t *v)
{
        char buf[64];
        if (json_is_integer(v))
                return (size_t)snprintf(buf, sizeof(buf),
                                        "%" JSON_INTEGER_FORMAT,
                                        json_integer_value(v));
        if (json_is_real(v))
                return (size_t)snprintf(buf, sizeof(buf), "%.17g",
                                        json_real_value(v));
        if (json_is_boolean(v))
                return json_is_true(v) ? 4 : 5;
        return json_string_length(v);
}

int keel__sa_check(const json_t *attrs, int upsert, char *why, size_t size)
{
        const char *k;
        json_t *v;
        size_t bytes = 0;

        if (!json_is_object(attrs))
                return keel__fail(why, size, KEEL_ERR_INVALID_ARG,
                                  "search attributes must be a JSON object");
        if (upsert && !json_object_size(attrs))
                return keel__fail(why, size, KEEL_ERR_INVALID_ARG,
                                  "an upsert needs at least one search "
                                  "attribute");
        if (json_object_size(attrs) > KEEL_SEARCH_ATTRS_MAX_KEYS)
                return keel__fail(why, size, KEEL_ERR_INVALID_ARG,
                                  "more than %d search attributes",
                                  KEEL_SEARCH_ATTRS_MAX_KEYS);
        json_object_foreach((json_t *)attrs, k, v)
        {
                if (!keel__sa_name_ok(k))
                        return keel__fail(
                            why, size, KEEL_ERR_INVALID_ARG,
                            "'%.80s' is not a search attribute name (1 to %d "
                            "of A-Z, a-z, 0-9 and _, not starting with a "
                            "digit)",
                            k, KEEL_SEARCH_ATTR_NAME_MAX);
                if (upsert && json_is_null(v))
                        continue;
                if (!value_ok(v))
                        return keel__fail(
                            why, size, KEEL_ERR_INVALID_ARG,
                            "search attribute %s must be a "
                            "string (without NUL), a number or "
                            "a boolean%s",
                            k, upsert ? ", or null to remove it" : "");
                if (value_bytes(v) > KEEL_SEARCH_ATTR_VALUE_MAX)
                        return keel__fail(why, size, KEEL_ERR_INVALID_ARG,
                                          "search attribute %s is over %d "
                                          "bytes",
                                          k, KEEL_SEARCH_ATTR_VALUE_MAX);
                bytes += strlen(k) + value_bytes(v);
        }
        if (bytes > KEEL_SEARCH_ATTRS_MAX_BYTES)
                return keel__fail(why, size, KEEL_ERR_INVALID_ARG,
                                  "search attributes over %d bytes (names "
                                  "and values)",
                                  KEEL_SEARCH_ATTRS_MAX_BYTES);
        return KEEL_OK;
}

int keel__sa_check_text(const char *text, char *why, size_t size)
{
        json_error_t e;
        json_t *v = json_loads(text, JSON_REJECT_DUPLICATES, &e);
        int rc = v ? keel__sa_check(v, 0, why, size)
                   : keel__fail(why, size, KEEL_ERR_INVALID_ARG,
                                "search attributes are not JSON: %s", e.text);
        json_decref(v);
        return rc;
}

int keel__sa_merge(json_t *set, const json_t *upsert)
{
        const char *k;
        json_t *v;

        json_object_foreach((json_t *)upsert, k, v)
        {
                if (!keel__sa_name_ok(k))
                        continue;
                if (json_is_null(v))
                        json_object_del(set, k);
                else if (value_ok(v) &&
                         value_bytes(v) <= KEEL_SEARCH_ATTR_VALUE_MAX &&
                         json_object_set(set, k, v))
                        return -1;
        }
        return 0;
}

int keel__sa_apply(json_t **set, const json_t *ev)
{
        const char *type = keel__ev_type(ev), *text = NULL;
        int started = !strcmp(type, "keel.history.WorkflowStarted");
        json_t *v;
        int rc;

        if (started)
                text = json_string_value(
                    json_object_get(keel__ev_rec(ev), "search_attributes"));
        else if (!strcmp(type, "keel.history.MarkerRecorded") &&
                 !strcmp(keel__ev_str(ev, "marker_name"), KEEL__SA_MARKER))
                text = keel__ev_str(ev, "details");
        else
                return 0;
        if (started && *set)
                json_object_clear(*set);
        if (!text)
                return 0;
        v = json_loads(text, 0, NULL);
        if (!json_is_object(v)) {
                json_decref(v);
                return 0;
        }
        if (!*set && !(*set = json_object())) {
                json_decref(v);
                return -1;
        }
        rc = keel__sa_merge(*set, v);
        json_decref(v);
        return rc;
}
