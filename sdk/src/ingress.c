/*
 * ingress.c: records of the users' topics become workflow starts and
 * signals, exactly once (ingress_int.h, docs/streams.md).
 */
#include "ingress_int.h"

#include "client_int.h"
#include "clock_int.h"
#include "config_int.h"
#include "error_int.h"
#include "keel/client.h"
#include "keel/codec.h"
#include "keel/error.h"
#include "keel/log.h"
#include "keel/partition.h"
#include "keel/topics.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define LOG "ingress"

/* Longest routes name: it is part of the consumer group ID and of every
 * command ID, neither of which may be cut short. */
#define ROUTES_NAME_MAX_BYTES 200

/* ---- routes ------------------------------------------------------------- */

/* Where a value comes from: the record's key, its value (whole, or a
 * member of it: value.a.b), a header, or the record's position. */
typedef enum sel_kind_e {
        SEL_KEY,
        SEL_VALUE,
        SEL_HEADER,
        SEL_SOURCE,
} sel_kind_t;

typedef struct sel_s {
        sel_kind_t kind;
        char *text;   /* as written, for messages */
        char **path;  /* SEL_VALUE: members, NULL-terminated */
        char *header; /* SEL_HEADER: its name */
} sel_t;

typedef struct cond_s {
        sel_t sel;
        char *equals;
} cond_t;

typedef struct route_s {
        char *topic;
        char *workflow_type; /* start, or signal-with-start */
        char *signal_name;   /* signal, or signal-with-start */
        sel_t workflow_id, input;
        char *id_prefix;
        char *reuse, *conflict;
        cond_t *when;
        size_t nwhen;
} route_t;

struct keel__ingress_routes_s {
        char *name;
        char *from; /* "earliest" or "latest" */
        route_t *routes;
        size_t n;
        char **topics; /* distinct, NULL-terminated */
        size_t ntopics;
};

static void sel_free(sel_t *s)
{
        free(s->text);
        for (size_t i = 0; s->path && s->path[i]; i++)
                free(s->path[i]);
        free(s->path);
        free(s->header);
}

void keel__ingress_routes_free(keel__ingress_routes_t *r)
{
        if (!r)
                return;
        for (size_t i = 0; i < r->n; i++) {
                route_t *rt = &r->routes[i];
                free(rt->topic);
                free(rt->workflow_type);
                free(rt->signal_name);
                sel_free(&rt->workflow_id);
                sel_free(&rt->input);
                free(rt->id_prefix);
                free(rt->reuse);
                free(rt->conflict);
                for (size_t k = 0; k < rt->nwhen; k++) {
                        sel_free(&rt->when[k].sel);
                        free(rt->when[k].equals);
                }
                free(rt->when);
        }
        free(r->routes);
        for (size_t i = 0; i < r->ntopics; i++)
                free(r->topics[i]);
        free(r->topics);
        free(r->name);
        free(r->from);
        free(r);
}

const char *keel__ingress_routes_name(const keel__ingress_routes_t *r)
{
        return r->name;
}

static int bad(char *errstr, size_t errsize, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int bad(char *errstr, size_t errsize, const char *fmt, ...)
{
        char msg[512];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        return keel__fail(errstr, errsize, KEEL_ERR_CONFIG, "routes: %s", msg);
}

/* "key", "value", "value.a.b", "header.NAME" or "source". */
static int sel_parse(const char *text, sel_t *out, const char *where,
                     char *errstr, size_t errsize)
{
        memset(out, 0, sizeof(*out));
        if (!(out->text = strdup(text)))
                return KEEL_ERR_NOMEM;
        if (!strcmp(text, "key")) {
                out->kind = SEL_KEY;
        } else if (!strcmp(text, "source")) {
                out->kind = SEL_SOURCE;
        } else if (!strncmp(text, "header.", 7) && text[7]) {
                out->kind = SEL_HEADER;
                if (!(out->header = strdup(text + 7)))
                        return KEEL_ERR_NOMEM;
        } else if (!strcmp(text, "value") || !strncmp(text, "value.", 6)) {
                size_t n = 0, k = 0;
                const char *p = text + 5;
                out->kind = SEL_VALUE;
                for (const char *c = p; *c; c++)
                        n += *c == '.';
                if (!(out->path = calloc(n + 1, sizeof(*out->path))))
                        return KEEL_ERR_NOMEM;
                while (*p == '.') {
                        const char *end = strchr(p + 1, '.');
                        size_t len =
                            end ? (size_t)(end - p - 1) : strlen(p + 1);
                        if (!len)
                                return bad(errstr, errsize,
                                           "%s: '%s' has an empty member name",
                                           where, text);
                        if (!(out->path[k++] = strndup(p + 1, len)))
                                return KEEL_ERR_NOMEM;
                        p += len + 1;
                }
        } else {
                return bad(errstr, errsize,
                           "%s: '%s' is none of key, value, value.<field>, "
                           "header.<name>, source",
                           where, text);
        }
        return KEEL_OK;
}

static int str_member(const json_t *o, const char *name, const char *where,
                      int required, char **out, char *errstr, size_t errsize)
{
        const json_t *v = json_object_get(o, name);
        *out = NULL;
        if (!v) {
                if (required)
                        return bad(errstr, errsize, "%s: \"%s\" is missing",
                                   where, name);
                return KEEL_OK;
        }
        if (!json_is_string(v) || !json_string_length(v))
                return bad(errstr, errsize,
                           "%s: \"%s\" must be a non-empty string", where,
                           name);
        return (*out = strdup(json_string_value(v))) ? KEEL_OK : KEEL_ERR_NOMEM;
}

static int one_of(const char *s, const char *const *symbols, const char *what,
                  const char *where, char *errstr, size_t errsize)
{
        for (size_t i = 0; symbols[i]; i++)
                if (!strcmp(s, symbols[i]))
                        return KEEL_OK;
        return bad(errstr, errsize, "%s: %s '%s' is not one keel knows", where,
                   what, s);
}

static int route_parse(const json_t *o, route_t *rt, const char *where,
                       char *errstr, size_t errsize)
{
        static const char *const known[] = {
            "topic",     "start", "signal",          "workflow_id",
            "id_prefix", "input", "id_reuse_policy", "id_conflict_policy",
            "when",      NULL};
        static const char *const reuse[] = {"ALLOW_DUPLICATE",
                                            "ALLOW_DUPLICATE_FAILED_ONLY",
                                            "REJECT_DUPLICATE", NULL};
        static const char *const conflict[] = {"FAIL", "USE_EXISTING", NULL};
        const char *key;
        const json_t *v;
        char *wid = NULL, *input = NULL, msg[300];
        int rc;

        if (!json_is_object(o))
                return bad(errstr, errsize, "%s is not an object", where);
        json_object_foreach((json_t *)o, key, v)
        {
                if ((rc = one_of(key, known, "member", where, errstr, errsize)))
                        return rc;
        }
        if ((rc = str_member(o, "topic", where, 1, &rt->topic, errstr,
                             errsize)) ||
            (rc = str_member(o, "start", where, 0, &rt->workflow_type, errstr,
                             errsize)) ||
            (rc = str_member(o, "signal", where, 0, &rt->signal_name, errstr,
                             errsize)) ||
            (rc = str_member(o, "workflow_id", where, 1, &wid, errstr,
                             errsize)) ||
            (rc = str_member(o, "input", where, 0, &input, errstr, errsize)) ||
            (rc = str_member(o, "id_reuse_policy", where, 0, &rt->reuse, errstr,
                             errsize)) ||
            (rc = str_member(o, "id_conflict_policy", where, 0, &rt->conflict,
                             errstr, errsize)))
                goto out;
        if (json_object_get(o, "id_prefix")) {
                /* Checked here as the start of an ID, so that a bad
                 * prefix is a routes error and not a dead letter for
                 * every record. */
                if (!json_is_string(json_object_get(o, "id_prefix"))) {
                        rc = bad(errstr, errsize,
                                 "%s: \"id_prefix\" must be a string", where);
                        goto out;
                }
                if (!(rt->id_prefix = strdup(
                          json_string_value(json_object_get(o, "id_prefix")))))
                        goto nomem;
                if (*rt->id_prefix &&
                    (keel__check_name(rt->id_prefix, "\"id_prefix\"",
                                      KEEL_WORKFLOW_ID_MAX - 1, msg,
                                      sizeof(msg)) ||
                     (rt->id_prefix[0] == '!' &&
                      snprintf(msg, sizeof(msg),
                               "\"id_prefix\" starts with '!' (reserved)")))) {
                        rc = bad(errstr, errsize, "%s: %s", where, msg);
                        goto out;
                }
        }
        if (!rt->workflow_type && !rt->signal_name) {
                rc = bad(errstr, errsize,
                         "%s: say what a record does: \"start\": \"<workflow "
                         "type>\", \"signal\": \"<signal name>\", or both "
                         "(signal-with-start)",
                         where);
                goto out;
        }
        /* A routes error, like the others: KEEL_ERR_CONFIG, naming the
         * route. */
        if ((rt->workflow_type &&
             keel__check_name(rt->workflow_type, "the workflow type",
                              KEEL__NAME_MAX_BYTES, msg, sizeof(msg))) ||
            (rt->signal_name &&
             keel__check_name(rt->signal_name, "the signal name",
                              KEEL__NAME_MAX_BYTES, msg, sizeof(msg)))) {
                rc = bad(errstr, errsize, "%s: %s", where, msg);
                goto out;
        }
        if (!rt->reuse && !(rt->reuse = strdup(reuse[0])))
                goto nomem;
        /* Signal-with-start signals a running workflow: USE_EXISTING,
         * as Temporal's SignalWithStart always does. */
        if (!rt->conflict &&
            !(rt->conflict =
                  strdup(rt->workflow_type && rt->signal_name ? conflict[1]
                                                              : conflict[0])))
                goto nomem;
        if ((rc = one_of(rt->reuse, reuse, "id_reuse_policy", where, errstr,
                         errsize)) ||
            (rc = one_of(rt->conflict, conflict, "id_conflict_policy", where,
                         errstr, errsize)))
                goto out;
        if ((json_object_get(o, "id_reuse_policy") ||
             json_object_get(o, "id_conflict_policy")) &&
            !rt->workflow_type) {
                rc = bad(errstr, errsize,
                         "%s: ID policies apply to starts only", where);
                goto out;
        }
        if ((rc = sel_parse(wid, &rt->workflow_id, where, errstr, errsize)) ||
            (rc = sel_parse(input ? input : "value", &rt->input, where, errstr,
                            errsize)))
                goto out;
        v = json_object_get(o, "when");
        if (v) {
                const json_t *want;
                if (!json_is_object(v) || !json_object_size(v)) {
                        rc = bad(errstr, errsize,
                                 "%s: \"when\" must be an object of "
                                 "\"<selector>\": \"<text>\"",
                                 where);
                        goto out;
                }
                rt->when = calloc(json_object_size(v), sizeof(*rt->when));
                if (!rt->when)
                        goto nomem;
                json_object_foreach((json_t *)v, key, want)
                {
                        cond_t *c = &rt->when[rt->nwhen++];
                        if (!json_is_string(want)) {
                                rc = bad(errstr, errsize,
                                         "%s: when.%s must be a string", where,
                                         key);
                                goto out;
                        }
                        if ((rc = sel_parse(key, &c->sel, where, errstr,
                                            errsize)))
                                goto out;
                        if (!(c->equals = strdup(json_string_value(want))))
                                goto nomem;
                }
        }
        rc = KEEL_OK;
        goto out;
nomem:
        rc = KEEL_ERR_NOMEM;
out:
        free(wid);
        free(input);
        return rc;
}

int keel__ingress_routes_parse(const json_t *doc, keel__ingress_routes_t **out,
                               char *errstr, size_t errsize)
{
        static const char *const known[] = {"name", "from", "routes", NULL};
        static const char *const from[] = {"earliest", "latest", NULL};
        keel__ingress_routes_t *r;
        const json_t *routes, *v;
        const char *key;
        char where[64];
        size_t i;
        int rc;

        *out = NULL;
        if (!json_is_object(doc))
                return bad(errstr, errsize,
                           "the document must be an object "
                           "with \"routes\": [...]");
        json_object_foreach((json_t *)doc, key, v)
        {
                if ((rc = one_of(key, known, "member", "the document", errstr,
                                 errsize)))
                        return rc;
        }
        routes = json_object_get(doc, "routes");
        if (!json_is_array(routes) || !json_array_size(routes))
                return bad(errstr, errsize,
                           "\"routes\" must be a non-empty array");
        if (!(r = calloc(1, sizeof(*r))))
                return KEEL_ERR_NOMEM;
        if ((rc = str_member(doc, "name", "the document", 0, &r->name, errstr,
                             errsize)) ||
            (rc = str_member(doc, "from", "the document", 0, &r->from, errstr,
                             errsize)))
                goto fail;
        if (!r->name && !(r->name = strdup("default")))
                goto nomem;
        if (!r->from && !(r->from = strdup("earliest")))
                goto nomem;
        if ((rc = one_of(r->from, from, "from", "the document", errstr,
                         errsize)))
                goto fail;
        for (const char *c = r->name; *c; c++)
                if (!(*c >= 'a' && *c <= 'z') && !(*c >= 'A' && *c <= 'Z') &&
                    !(*c >= '0' && *c <= '9') && *c != '-' && *c != '_' &&
                    *c != '.') {
                        rc = bad(errstr, errsize,
                                 "\"name\" '%s' may hold only letters, "
                                 "digits, '.', '_' and '-'",
                                 r->name);
                        goto fail;
                }
        if (strlen(r->name) > ROUTES_NAME_MAX_BYTES) {
                rc = bad(errstr, errsize,
                         "\"name\" is %zu bytes long; the most is %d bytes",
                         strlen(r->name), ROUTES_NAME_MAX_BYTES);
                goto fail;
        }
        r->routes = calloc(json_array_size(routes), sizeof(*r->routes));
        r->topics = calloc(json_array_size(routes) + 1, sizeof(*r->topics));
        if (!r->routes || !r->topics)
                goto nomem;
        json_array_foreach(routes, i, v)
        {
                size_t t;
                snprintf(where, sizeof(where), "routes[%zu]", i);
                r->n++;
                if ((rc =
                         route_parse(v, &r->routes[i], where, errstr, errsize)))
                        goto fail;
                if (!strncmp(r->routes[i].topic, "keel.", 5) ||
                    !strncmp(r->routes[i].topic, "__", 2)) {
                        rc = bad(errstr, errsize,
                                 "%s: topic %s is keel's or Kafka's own", where,
                                 r->routes[i].topic);
                        goto fail;
                }
                for (t = 0; t < r->ntopics; t++)
                        if (!strcmp(r->topics[t], r->routes[i].topic))
                                break;
                if (t == r->ntopics &&
                    !(r->topics[r->ntopics++] = strdup(r->routes[i].topic)))
                        goto nomem;
        }
        *out = r;
        return KEEL_OK;
nomem:
        rc = KEEL_ERR_NOMEM;
fail:
        keel__ingress_routes_free(r);
        return rc;
}

int keel__ingress_routes_load(const char *path, keel__ingress_routes_t **out,
                              char *errstr, size_t errsize)
{
        json_error_t je;
        json_t *doc = json_load_file(path, JSON_REJECT_DUPLICATES, &je);
        int rc;
        *out = NULL;
        if (!doc)
                return keel__fail(errstr, errsize, KEEL_ERR_CONFIG,
                                  "routes file %s: %s (line %d)", path, je.text,
                                  je.line);
        rc = keel__ingress_routes_parse(doc, out, errstr, errsize);
        json_decref(doc);
        return rc;
}

/* ---- mapping ------------------------------------------------------------ */

/* The record's value as JSON, parsed once per record. */
typedef struct rec_ctx_s {
        const keel__ingress_src_t *src;
        json_t *value;   /* parsed, or NULL */
        int value_tried; /* parsed (or failed to) already */
        char value_err[300];
} rec_ctx_t;

static const json_t *value_json(rec_ctx_t *c)
{
        if (!c->value_tried) {
                json_error_t je;
                c->value_tried = 1;
                if (!c->src->value) {
                        snprintf(c->value_err, sizeof(c->value_err),
                                 "the record has no value (a tombstone)");
                } else {
                        c->value = json_loadb(c->src->value, c->src->value_len,
                                              JSON_DECODE_ANY, &je);
                        if (!c->value)
                                snprintf(c->value_err, sizeof(c->value_err),
                                         "the value is not JSON: %s (at byte "
                                         "%d)",
                                         je.text, je.position);
                }
        }
        return c->value;
}

/* What sel picks out of the record, as JSON (new reference), or NULL with
 * why. Key and header bytes become a JSON string (they must be UTF-8). */
static json_t *sel_get(rec_ctx_t *c, const sel_t *s, char *why, size_t whysize)
{
        const void *bytes = NULL;
        size_t len = 0;
        const json_t *v;
        json_t *str;

        switch (s->kind) {
        case SEL_SOURCE: {
                char buf[400];
                snprintf(buf, sizeof(buf), "%s/%d/%lld", c->src->topic,
                         (int)c->src->partition, (long long)c->src->offset);
                return json_string(buf);
        }
        case SEL_KEY:
                if (!c->src->key) {
                        snprintf(why, whysize, "the record has no key");
                        return NULL;
                }
                bytes = c->src->key;
                len = c->src->key_len;
                break;
        case SEL_HEADER:
                if (!c->src->headers ||
                    rd_kafka_header_get_last(c->src->headers, s->header, &bytes,
                                             &len) ||
                    !bytes) {
                        snprintf(why, whysize, "the record has no header %s",
                                 s->header);
                        return NULL;
                }
                break;
        case SEL_VALUE:
                if (!(v = value_json(c))) {
                        snprintf(why, whysize, "%s", c->value_err);
                        return NULL;
                }
                for (size_t i = 0; s->path[i]; i++) {
                        if (!json_is_object(v)) {
                                snprintf(why, whysize,
                                         "%s: the value is not an object "
                                         "there",
                                         s->text);
                                return NULL;
                        }
                        v = json_object_get(v, s->path[i]);
                        if (!v) {
                                snprintf(why, whysize,
                                         "%s: the value has no such member",
                                         s->text);
                                return NULL;
                        }
                }
                return json_incref((json_t *)v);
        }
        str = json_stringn(bytes, len);
        if (!str)
                snprintf(why, whysize, "%s is not UTF-8 text", s->text);
        return str;
}

/* sel's value as text: a string as is, an integer in decimal. */
static int sel_text(rec_ctx_t *c, const sel_t *s, char *out, size_t outsize,
                    char *why, size_t whysize)
{
        json_t *v = sel_get(c, s, why, whysize);
        int rc = -1;
        if (!v)
                return -1;
        if (json_is_string(v)) {
                if (json_string_length(v) < outsize) {
                        memcpy(out, json_string_value(v),
                               json_string_length(v) + 1);
                        rc = memchr(out, 0, json_string_length(v)) ? -1 : 0;
                        if (rc)
                                snprintf(why, whysize, "%s holds a NUL byte",
                                         s->text);
                } else {
                        snprintf(why, whysize, "%s is %zu bytes long", s->text,
                                 json_string_length(v));
                }
        } else if (json_is_integer(v)) {
                snprintf(out, outsize, "%" JSON_INTEGER_FORMAT,
                         json_integer_value(v));
                rc = 0;
        } else {
                snprintf(why, whysize, "%s is not a string or an integer",
                         s->text);
        }
        json_decref(v);
        return rc;
}

/* The first route of the record's topic whose "when" holds, or NULL. A
 * condition on a record's absent key, header or member does not hold; one
 * on a value that is there but is not JSON cannot be decided, and that
 * record is dead (*undecided: why). */
static const route_t *route_for(const keel__ingress_routes_t *r, rec_ctx_t *c,
                                int *undecided, char *why, size_t whysize)
{
        char got[1024];
        *undecided = 0;
        for (size_t i = 0; i < r->n; i++) {
                const route_t *rt = &r->routes[i];
                size_t k;
                if (strcmp(rt->topic, c->src->topic))
                        continue;
                for (k = 0; k < rt->nwhen; k++) {
                        const sel_t *sel = &rt->when[k].sel;
                        if (sel->kind == SEL_VALUE && c->src->value &&
                            !value_json(c)) {
                                snprintf(why, whysize,
                                         "cannot tell whether a route wants "
                                         "it (when %s): %s",
                                         sel->text, c->value_err);
                                *undecided = 1;
                                return NULL;
                        }
                        if (sel_text(c, sel, got, sizeof(got), why, whysize) ||
                            strcmp(got, rt->when[k].equals))
                                break;
                }
                if (k == rt->nwhen)
                        return rt;
        }
        why[0] = '\0';
        return NULL;
}

static char *json_text_of(const json_t *v)
{
        return json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
}

keel__ingress_verdict_t keel__ingress_map(const keel__ingress_routes_t *r,
                                          const keel__ingress_src_t *src,
                                          int64_t now_ms, const char **type,
                                          json_t **rec, char *why,
                                          size_t whysize)
{
        rec_ctx_t c = {.src = src};
        const route_t *rt;
        char wid[KEEL_WORKFLOW_ID_MAX * 2 + 2],
            idpart[KEEL_WORKFLOW_ID_MAX + 1];
        char cid[1200], err[300];
        keel__ingress_verdict_t v = KEEL__INGRESS_DEAD;
        json_t *input = NULL;
        char *text = NULL;
        int undecided;

        *type = NULL;
        *rec = NULL;
        why[0] = '\0';
        if (!(rt = route_for(r, &c, &undecided, why, whysize))) {
                json_decref(c.value);
                return undecided ? KEEL__INGRESS_DEAD : KEEL__INGRESS_SKIP;
        }
        if (sel_text(&c, &rt->workflow_id, idpart, sizeof(idpart), err,
                     sizeof(err))) {
                snprintf(why, whysize, "no workflow ID: %s", err);
                goto out;
        }
        snprintf(wid, sizeof(wid), "%s%s", rt->id_prefix ? rt->id_prefix : "",
                 idpart);
        if (keel__check_name(wid, "the workflow ID", KEEL_WORKFLOW_ID_MAX, err,
                             sizeof(err)) ||
            (wid[0] == '!' &&
             snprintf(err, sizeof(err), "the workflow ID starts with '!'"))) {
                snprintf(why, whysize, "bad workflow ID from %s: %s",
                         rt->workflow_id.text, err);
                goto out;
        }
        if (!(input = sel_get(&c, &rt->input, err, sizeof(err)))) {
                snprintf(why, whysize, "no input: %s", err);
                goto out;
        }
        if (!(text = json_text_of(input))) {
                snprintf(why, whysize, "out of memory");
                goto out;
        }
        if (strlen(text) > KEEL__INGRESS_MAX_INPUT) {
                snprintf(why, whysize,
                         "the %s from %s is %zu bytes of JSON, over the "
                         "limit of %d",
                         rt->workflow_type ? "input" : "payload",
                         rt->input.text, strlen(text), KEEL__INGRESS_MAX_INPUT);
                goto out;
        }
        snprintf(cid, sizeof(cid), "ingress/%s/%s/%d/%lld", r->name, src->topic,
                 (int)src->partition, (long long)src->offset);
        if (rt->workflow_type) {
                *type = "keel.inbox.StartWorkflow";
                *rec = json_pack(
                    "{ss ss sI ss ss ss ss ss? ss}", "workflow_id", wid,
                    "command_id", cid, "ts", (json_int_t)now_ms,
                    "workflow_type", rt->workflow_type, "input", text,
                    "id_reuse_policy", rt->reuse, "id_conflict_policy",
                    rt->conflict, "signal_name", rt->signal_name,
                    "signal_payload", rt->signal_name ? text : "null");
                /* Signal-with-start: the input is also the signal's
                 * payload. */
        } else {
                *type = "keel.inbox.SignalWorkflow";
                *rec = json_pack("{ss ss sI sn ss ss}", "workflow_id", wid,
                                 "command_id", cid, "ts", (json_int_t)now_ms,
                                 "run_id", "signal_name", rt->signal_name,
                                 "payload", text);
        }
        if (!*rec) {
                snprintf(why, whysize, "out of memory");
                *type = NULL;
                goto out;
        }
        v = KEEL__INGRESS_COMMAND;
out:
        free(text);
        json_decref(input);
        json_decref(c.value);
        return v;
}

/* ---- the runner --------------------------------------------------------- */

/* A source partition this ingress owns. */
typedef struct part_s {
        struct keel__ingress_s *ing;
        char *topic;
        int32_t partition;
        rd_kafka_t *producer; /* NULL: down, retried at retry_at */
        int64_t retry_at;
        int backoff_ms;
        atomic_int dr_failed; /* a delivery failed in this transaction */
        char txn_id[512];
} part_t;

struct keel__ingress_s {
        const keel_config_t *cfg;
        keel__ingress_routes_t *routes;
        rd_kafka_t *consumer;
        part_t **parts;
        size_t nparts, cap;
        int32_t inbox_parts, dlq_parts;
        int plain_commit; /* the dev broker keeps no transactional offsets */
        int batch_max, batch_ms;
        unsigned generation; /* rebalances so far */
        char group[300];
        keel__ingress_stats_t stats;
};

static int64_t mono_ms(void)
{
        return keel__clock_ms(CLOCK_MONOTONIC);
}

static void dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
        part_t *pt = opaque;
        (void)rk;
        if (m->err) {
                atomic_store(&pt->dr_failed, 1);
                keel_log(KEEL_LOG_WARN, LOG,
                         "topic=%s partition=%d msg=\"delivery failed\" "
                         "error=\"%s\"",
                         pt->topic, (int)pt->partition,
                         rd_kafka_err2str(m->err));
        }
}

static void part_close(part_t *pt)
{
        if (pt->producer) {
                rd_kafka_destroy(pt->producer);
                pt->producer = NULL;
        }
}

/* A transactional producer for pt, initialised: that fences a previous
 * owner of the partition and aborts what it left open. */
static int part_open(part_t *pt)
{
        keel__ingress_t *ing = pt->ing;
        char err[512];
        rd_kafka_conf_t *conf =
            keel__kafka_conf_new(ing->cfg, KEEL__PRODUCER, err, sizeof(err));
        rd_kafka_error_t *e;

        if (!conf)
                goto fail;
        if (rd_kafka_conf_set(conf, "transactional.id", pt->txn_id, err,
                              sizeof(err)) ||
            keel__kafka_conf_default(conf, ing->cfg, "transaction.timeout.ms",
                                     "10000", err, sizeof(err)) ||
            keel__kafka_conf_default(conf, ing->cfg, "linger.ms", "1", err,
                                     sizeof(err))) {
                rd_kafka_conf_destroy(conf);
                goto fail;
        }
        rd_kafka_conf_set_dr_msg_cb(conf, dr_cb);
        rd_kafka_conf_set_opaque(conf, pt);
        if (!(pt->producer =
                  rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err)))) {
                rd_kafka_conf_destroy(conf);
                goto fail;
        }
        if ((e = rd_kafka_init_transactions(pt->producer, 30000))) {
                snprintf(err, sizeof(err), "%s", rd_kafka_error_string(e));
                rd_kafka_error_destroy(e);
                part_close(pt);
                goto fail;
        }
        pt->backoff_ms = 0;
        return KEEL_OK;
fail:
        keel_log(KEEL_LOG_ERROR, LOG,
                 "topic=%s partition=%d msg=\"cannot start the transactional "
                 "producer; retrying\" transactional_id=%s error=\"%s\"",
                 pt->topic, (int)pt->partition, pt->txn_id, err);
        return KEEL_ERR_KAFKA;
}

static void parts_clear(keel__ingress_t *ing)
{
        for (size_t i = 0; i < ing->nparts; i++) {
                part_close(ing->parts[i]);
                free(ing->parts[i]->topic);
                free(ing->parts[i]);
        }
        ing->nparts = 0;
        atomic_store(&ing->stats.partitions, 0);
}

/* Take partition (topic, p): a producer first, then (by the caller) the
 * assignment, whose committed offsets are read only after the producer
 * has fenced whoever owned it before. */
static part_t *part_add(keel__ingress_t *ing, const char *topic, int32_t p)
{
        part_t *pt;
        if (ing->nparts == ing->cap) {
                size_t cap = ing->cap ? ing->cap * 2 : 16;
                part_t **np = realloc(ing->parts, cap * sizeof(*np));
                if (!np)
                        return NULL;
                ing->parts = np;
                ing->cap = cap;
        }
        if (!(pt = calloc(1, sizeof(*pt))) || !(pt->topic = strdup(topic))) {
                free(pt);
                return NULL;
        }
        pt->ing = ing;
        pt->partition = p;
        snprintf(pt->txn_id, sizeof(pt->txn_id), "%s-ingress-%s-%s-%d",
                 keel_config_get(ing->cfg, "cluster.name"), ing->routes->name,
                 topic, (int)p);
        ing->parts[ing->nparts++] = pt;
        atomic_store(&ing->stats.partitions, (int64_t)ing->nparts);
        if (part_open(pt))
                pt->retry_at = mono_ms() + 1000;
        return pt;
}

static void rebalance_cb(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                         rd_kafka_topic_partition_list_t *parts, void *opaque)
{
        keel__ingress_t *ing = opaque;
        ing->generation++;
        if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
                for (int i = 0; i < parts->cnt; i++)
                        if (!part_add(ing, parts->elems[i].topic,
                                      parts->elems[i].partition))
                                keel_log(KEEL_LOG_ERROR, LOG,
                                         "msg=\"out of memory\"");
                keel_log(KEEL_LOG_INFO, LOG,
                         "msg=\"partitions assigned\" group=%s count=%d",
                         ing->group, parts->cnt);
                rd_kafka_assign(rk, parts);
                for (size_t i = 0; i < ing->nparts; i++)
                        if (!ing->parts[i]->producer) {
                                rd_kafka_topic_partition_list_t *l =
                                    rd_kafka_topic_partition_list_new(1);
                                rd_kafka_topic_partition_list_add(
                                    l, ing->parts[i]->topic,
                                    ing->parts[i]->partition);
                                rd_kafka_pause_partitions(rk, l);
                                rd_kafka_topic_partition_list_destroy(l);
                        }
                /* Down ones are not read until their producer is up. */
        } else {
                /* Every batch was committed or aborted before this poll. */
                keel_log(KEEL_LOG_INFO, LOG,
                         "msg=\"partitions revoked\" group=%s count=%d",
                         ing->group, parts->cnt);
                parts_clear(ing);
                rd_kafka_assign(rk, NULL);
        }
}

static int32_t topic_partitions(rd_kafka_t *rk, const char *topic)
{
        const struct rd_kafka_metadata *md = NULL;
        rd_kafka_topic_t *t = rd_kafka_topic_new(rk, topic, NULL);
        int32_t n = -1;
        if (!t)
                return -1;
        if (!rd_kafka_metadata(rk, 0, t, &md, 10000) && md->topic_cnt == 1 &&
            !md->topics[0].err)
                n = md->topics[0].partition_cnt;
        if (md)
                rd_kafka_metadata_destroy(md);
        rd_kafka_topic_destroy(t);
        return n;
}

keel__ingress_t *keel__ingress_new(const keel_config_t *cfg,
                                   keel__ingress_routes_t *routes, char *errstr,
                                   size_t errsize)
{
        keel__ingress_t *ing = calloc(1, sizeof(*ing));
        rd_kafka_conf_t *conf = NULL;
        char err[512], cid_buf[128];
        int64_t v;

        if (!ing) {
                keel__ingress_routes_free(routes);
                return NULL;
        }
        ing->cfg = cfg;
        ing->routes = routes;
        keel_config_get_int(cfg, "batch.max.commands", &v);
        ing->batch_max = (int)v;
        keel_config_get_int(cfg, "batch.max.ms", &v);
        ing->batch_ms = (int)v;
        snprintf(ing->group, sizeof(ing->group), "keel-ingress-%s",
                 routes->name);
        conf = keel__kafka_conf_new(cfg, KEEL__CONSUMER, err, sizeof(err));
        if (!conf ||
            rd_kafka_conf_set(conf, "group.id", ing->group, err, sizeof(err)) ||
            rd_kafka_conf_set(conf, "enable.auto.commit", "false", err,
                              sizeof(err)) ||
            rd_kafka_conf_set(conf, "isolation.level", "read_committed", err,
                              sizeof(err)) ||
            rd_kafka_conf_set(conf, "partition.assignment.strategy",
                              "range,roundrobin", err, sizeof(err)) ||
            keel__kafka_conf_default(conf, cfg, "auto.offset.reset",
                                     routes->from, err, sizeof(err)) ||
            keel__kafka_conf_default(conf, cfg, "session.timeout.ms", "10000",
                                     err, sizeof(err)) ||
            keel__kafka_conf_default(conf, cfg, "heartbeat.interval.ms", "1000",
                                     err, sizeof(err)))
                goto fail;
        rd_kafka_conf_set_rebalance_cb(conf, rebalance_cb);
        rd_kafka_conf_set_opaque(conf, ing);
        if (!(ing->consumer =
                  rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof(err))))
                goto fail;
        conf = NULL;
        rd_kafka_poll_set_consumer(ing->consumer);
        ing->inbox_parts = topic_partitions(ing->consumer, KEEL_TOPIC_INBOX);
        ing->dlq_parts = topic_partitions(ing->consumer, KEEL_TOPIC_DLQ);
        if (ing->inbox_parts <= 0 || ing->dlq_parts <= 0) {
                snprintf(err, sizeof(err),
                         "%s or %s is not there on %s: run `keel topics "
                         "create` first",
                         KEEL_TOPIC_INBOX, KEEL_TOPIC_DLQ,
                         keel_config_get(cfg, "bootstrap"));
                goto fail;
        }
        {
                /* librdkafka's mock cluster (keel dev-broker) takes
                 * TxnOffsetCommit and stores nothing: there, offsets are
                 * also committed plainly once the transaction is. */
                char *id = rd_kafka_clusterid(ing->consumer, 5000);
                snprintf(cid_buf, sizeof(cid_buf), "%s", id ? id : "");
                if (id)
                        rd_kafka_mem_free(ing->consumer, id);
                ing->plain_commit = !strncmp(cid_buf, "mockCluster", 11);
        }
        /* A source topic that is not there would be picked up only at the
         * next metadata refresh, minutes later: say so now, as Kafka
         * Streams does for a missing source topic. (The dev broker makes
         * the topic on this look-up.) */
        for (size_t i = 0; i < routes->ntopics; i++)
                if (topic_partitions(ing->consumer, routes->topics[i]) <= 0) {
                        snprintf(err, sizeof(err),
                                 "source topic %s is not there on %s: "
                                 "create it first",
                                 routes->topics[i],
                                 keel_config_get(cfg, "bootstrap"));
                        goto fail;
                }
        keel_log(KEEL_LOG_INFO, LOG,
                 "msg=\"ingress ready\" name=%s group=%s routes=%zu "
                 "topics=%zu cluster_id=%s%s",
                 routes->name, ing->group, routes->n, routes->ntopics, cid_buf,
                 ing->plain_commit ? " offsets=transactional+plain" : "");
        return ing;
fail:
        if (conf)
                rd_kafka_conf_destroy(conf);
        keel__fail(errstr, errsize, KEEL_ERR_CONFIG, "ingress: %s", err);
        keel__ingress_destroy(ing);
        return NULL;
}

void keel__ingress_destroy(keel__ingress_t *ing)
{
        if (!ing)
                return;
        parts_clear(ing);
        free(ing->parts);
        if (ing->consumer)
                rd_kafka_destroy(ing->consumer);
        keel__ingress_routes_free(ing->routes);
        free(ing);
}

/* Produce one record of a transaction. */
static int txn_produce(part_t *pt, const char *topic, int32_t partition,
                       const void *key, size_t key_len, const char *type,
                       const json_t *rec, const char *source)
{
        unsigned char *buf;
        size_t len;
        char err[256];
        rd_kafka_headers_t *h;
        rd_kafka_resp_err_t e;

        if (keel_codec_encode(type, rec, &buf, &len, err, sizeof(err))) {
                keel_log(KEEL_LOG_ERROR, LOG,
                         "msg=\"cannot encode\" type=%s error=\"%s\"", type,
                         err);
                return KEEL_ERR_SCHEMA;
        }
        h = rd_kafka_headers_new(1);
        rd_kafka_header_add(h, "keel-source", -1, source, -1);
        e = rd_kafka_producev(pt->producer, RD_KAFKA_V_TOPIC(topic),
                              RD_KAFKA_V_PARTITION(partition),
                              RD_KAFKA_V_KEY(key, key_len),
                              RD_KAFKA_V_VALUE(buf, len),
                              RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_FREE),
                              RD_KAFKA_V_HEADERS(h), RD_KAFKA_V_END);
        if (e) {
                free(buf);
                rd_kafka_headers_destroy(h);
                keel_log(KEEL_LOG_WARN, LOG,
                         "topic=%s msg=\"cannot produce\" error=\"%s\"", topic,
                         rd_kafka_err2str(e));
                return KEEL_ERR_KAFKA;
        }
        return KEEL_OK;
}

/* One source record into the open transaction: its command, or its dead
 * letter. */
static int one(part_t *pt, const rd_kafka_message_t *m, int64_t now,
               uint64_t *starts, uint64_t *signals, uint64_t *dead,
               uint64_t *skipped)
{
        keel__ingress_t *ing = pt->ing;
        keel__ingress_src_t src = {
            .topic = pt->topic,
            .partition = m->partition,
            .offset = m->offset,
            .key = m->key,
            .key_len = m->key_len,
            .value = m->payload,
            .value_len = m->len,
        };
        const char *type;
        json_t *rec;
        char why[600], source[400];
        keel__ingress_verdict_t v;
        int rc;

        if (rd_kafka_message_headers(m, &src.headers))
                src.headers = NULL;
        snprintf(source, sizeof(source), "%s/%d/%lld", pt->topic,
                 (int)m->partition, (long long)m->offset);
        v = keel__ingress_map(ing->routes, &src, keel__clock_ms(CLOCK_REALTIME),
                              &type, &rec, why, sizeof(why));
        if (v == KEEL__INGRESS_SKIP) {
                (*skipped)++;
                return KEEL_OK;
        }
        if (v == KEEL__INGRESS_COMMAND) {
                const char *wid =
                    json_string_value(json_object_get(rec, "workflow_id"));
                rc = txn_produce(
                    pt, KEEL_TOPIC_INBOX,
                    keel_partition_of(wid, strlen(wid), ing->inbox_parts), wid,
                    strlen(wid), type, rec, source);
                if (!strcmp(type, "keel.inbox.StartWorkflow"))
                        (*starts)++;
                else
                        (*signals)++;
                json_decref(rec);
                return rc;
        }
        keel_log(KEEL_LOG_WARN, LOG,
                 "topic=%s partition=%d offset=%lld msg=\"dead-lettered\" "
                 "reason=\"%s\"",
                 pt->topic, (int)m->partition, (long long)m->offset, why);
        /* A value too large to map is too large to keep here too. */
        rec = keel_codec_dead_letter(
            pt->topic, m->partition, m->offset, m->key, m->key_len,
            m->len > KEEL__INGRESS_MAX_INPUT ? NULL : m->payload,
            m->len > KEEL__INGRESS_MAX_INPUT ? 0 : m->len,
            "KEEL_ERR_INVALID_ARG", why, "ingress", now);
        if (!rec)
                return KEEL_ERR_NOMEM;
        rc = txn_produce(pt, KEEL_TOPIC_DLQ, m->partition % ing->dlq_parts,
                         m->key ? m->key : source,
                         m->key ? m->key_len : strlen(source),
                         "keel.dlq.DeadLetter", rec, source);
        json_decref(rec);
        (*dead)++;
        return rc;
}

/* A failed transaction: abort what can be, and take the partition down;
 * it comes back from its committed offset (run_parts). */
static void part_fail(part_t *pt, const char *what, rd_kafka_error_t *e)
{
        keel__ingress_t *ing = pt->ing;
        rd_kafka_topic_partition_list_t *l;

        atomic_fetch_add(&ing->stats.txn_failures, 1);
        keel_log(KEEL_LOG_WARN, LOG,
                 "topic=%s partition=%d msg=\"transaction failed; the batch "
                 "is read again\" step=%s error=\"%s\"",
                 pt->topic, (int)pt->partition, what,
                 e ? rd_kafka_error_string(e) : "a delivery failed");
        if (e)
                rd_kafka_error_destroy(e);
        part_close(pt); /* the next owner's init aborts what is open */
        pt->backoff_ms = pt->backoff_ms ? pt->backoff_ms * 2 : 100;
        if (pt->backoff_ms > 5000)
                pt->backoff_ms = 5000;
        pt->retry_at = mono_ms() + pt->backoff_ms;
        l = rd_kafka_topic_partition_list_new(1);
        rd_kafka_topic_partition_list_add(l, pt->topic, pt->partition);
        rd_kafka_pause_partitions(ing->consumer, l);
        rd_kafka_topic_partition_list_destroy(l);
}

/* Bring a down partition back: producer, then its committed offset. */
static void part_recover(part_t *pt)
{
        keel__ingress_t *ing = pt->ing;
        rd_kafka_topic_partition_list_t *l;
        rd_kafka_resp_err_t e;
        rd_kafka_error_t *se;

        if (part_open(pt)) {
                pt->backoff_ms = pt->backoff_ms ? pt->backoff_ms * 2 : 500;
                if (pt->backoff_ms > 5000)
                        pt->backoff_ms = 5000;
                pt->retry_at = mono_ms() + pt->backoff_ms;
                return;
        }
        l = rd_kafka_topic_partition_list_new(1);
        rd_kafka_topic_partition_list_add(l, pt->topic, pt->partition);
        e = rd_kafka_committed(ing->consumer, l, 10000);
        if (!e && l->elems[0].err)
                e = l->elems[0].err;
        if (!e && l->elems[0].offset < 0)
                l->elems[0].offset = !strcmp(ing->routes->from, "latest")
                                         ? RD_KAFKA_OFFSET_END
                                         : RD_KAFKA_OFFSET_BEGINNING;
        if (!e) {
                rd_kafka_resume_partitions(ing->consumer, l);
                se = rd_kafka_seek_partitions(ing->consumer, l, 10000);
                if (se) {
                        keel_log(KEEL_LOG_WARN, LOG,
                                 "topic=%s partition=%d msg=\"seek failed\" "
                                 "error=\"%s\"",
                                 pt->topic, (int)pt->partition,
                                 rd_kafka_error_string(se));
                        rd_kafka_error_destroy(se);
                        e = RD_KAFKA_RESP_ERR__FAIL;
                }
        }
        if (e) {
                keel_log(KEEL_LOG_WARN, LOG,
                         "topic=%s partition=%d msg=\"cannot read the "
                         "committed offset; retrying\" error=\"%s\"",
                         pt->topic, (int)pt->partition, rd_kafka_err2str(e));
                rd_kafka_pause_partitions(ing->consumer, l);
                part_close(pt);
                pt->retry_at = mono_ms() + 1000;
        } else {
                keel_log(KEEL_LOG_INFO, LOG,
                         "topic=%s partition=%d msg=\"partition back\" "
                         "offset=%lld",
                         pt->topic, (int)pt->partition,
                         (long long)l->elems[0].offset);
        }
        rd_kafka_topic_partition_list_destroy(l);
}

/* One transaction: the n records of pt's partition in msgs. */
static void run_batch(part_t *pt, rd_kafka_message_t **msgs, size_t n)
{
        keel__ingress_t *ing = pt->ing;
        rd_kafka_topic_partition_list_t *offs;
        rd_kafka_consumer_group_metadata_t *gmd;
        rd_kafka_error_t *e;
        uint64_t starts = 0, signals = 0, dead = 0, skipped = 0;
        int64_t now = keel__clock_ms(CLOCK_REALTIME);

        atomic_store(&pt->dr_failed, 0);
        if ((e = rd_kafka_begin_transaction(pt->producer))) {
                part_fail(pt, "begin", e);
                return;
        }
        for (size_t i = 0; i < n; i++)
                if (one(pt, msgs[i], now, &starts, &signals, &dead, &skipped)) {
                        rd_kafka_abort_transaction(pt->producer, 10000);
                        part_fail(pt, "produce", NULL);
                        return;
                }
        offs = rd_kafka_topic_partition_list_new(1);
        rd_kafka_topic_partition_list_add(offs, pt->topic, pt->partition)
            ->offset = msgs[n - 1]->offset + 1;
        gmd = rd_kafka_consumer_group_metadata(ing->consumer);
        e = rd_kafka_send_offsets_to_transaction(pt->producer, offs, gmd,
                                                 30000);
        rd_kafka_consumer_group_metadata_destroy(gmd);
        if (e) {
                rd_kafka_topic_partition_list_destroy(offs);
                part_fail(pt, "send_offsets", e);
                return;
        }
        if ((e = rd_kafka_commit_transaction(pt->producer, 30000))) {
                rd_kafka_topic_partition_list_destroy(offs);
                part_fail(pt, "commit", e);
                return;
        }
        if (atomic_load(&pt->dr_failed)) {
                /* Cannot happen once committed, but never count on it. */
                rd_kafka_topic_partition_list_destroy(offs);
                part_fail(pt, "delivery", NULL);
                return;
        }
        /* Synchronously: an owner that dies after its transaction but
         * before this commit leaves its successor to map the batch again
         * (the same command IDs, dropped by the orchestrator). */
        if (ing->plain_commit && rd_kafka_commit(ing->consumer, offs, 0))
                keel_log(KEEL_LOG_WARN, LOG,
                         "topic=%s partition=%d msg=\"offset commit failed; "
                         "the batch may be mapped again\"",
                         pt->topic, (int)pt->partition);
        rd_kafka_topic_partition_list_destroy(offs);
        atomic_fetch_add(&ing->stats.records, n);
        atomic_fetch_add(&ing->stats.starts, starts);
        atomic_fetch_add(&ing->stats.signals, signals);
        atomic_fetch_add(&ing->stats.dead_letters, dead);
        atomic_fetch_add(&ing->stats.skipped, skipped);
        atomic_fetch_add(&ing->stats.transactions, 1);
}

int keel__ingress_run(keel__ingress_t *ing, atomic_int *stop)
{
        rd_kafka_topic_partition_list_t *topics;
        rd_kafka_message_t **msgs, **mine;
        rd_kafka_resp_err_t err;
        size_t n;

        msgs = calloc((size_t)ing->batch_max, sizeof(*msgs));
        mine = calloc((size_t)ing->batch_max, sizeof(*mine));
        topics = rd_kafka_topic_partition_list_new((int)ing->routes->ntopics);
        if (!msgs || !mine || !topics) {
                free(msgs);
                free(mine);
                if (topics)
                        rd_kafka_topic_partition_list_destroy(topics);
                return KEEL_ERR_NOMEM;
        }
        for (size_t i = 0; i < ing->routes->ntopics; i++)
                rd_kafka_topic_partition_list_add(
                    topics, ing->routes->topics[i], RD_KAFKA_PARTITION_UA);
        err = rd_kafka_subscribe(ing->consumer, topics);
        rd_kafka_topic_partition_list_destroy(topics);
        if (err) {
                keel_log(KEEL_LOG_ERROR, LOG,
                         "msg=\"cannot subscribe\" error=\"%s\"",
                         rd_kafka_err2str(err));
                free(msgs);
                free(mine);
                return KEEL_ERR_KAFKA;
        }
        while (!atomic_load(stop)) {
                int64_t until = 0;
                unsigned gen = ing->generation;
                n = 0;
                while (n < (size_t)ing->batch_max) {
                        int64_t now = mono_ms();
                        int t = n ? (int)(until > now ? until - now : 0) : 100;
                        rd_kafka_message_t *m =
                            rd_kafka_consumer_poll(ing->consumer, t);
                        if (!m)
                                break;
                        if (m->err) {
                                if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
                                        keel_log(KEEL_LOG_WARN, LOG,
                                                 "msg=\"consumer error\" "
                                                 "error=\"%s\"",
                                                 rd_kafka_message_errstr(m));
                                rd_kafka_message_destroy(m);
                                if (!n)
                                        break;
                                continue;
                        }
                        /* Records read before a rebalance (it runs inside
                         * the poll) are read again by whoever owns their
                         * partition now, from its committed offset: drop
                         * them. Those read after it are this owner's, and
                         * kept: its position has moved past them. */
                        if (gen != ing->generation) {
                                for (size_t j = 0; j < n; j++)
                                        rd_kafka_message_destroy(msgs[j]);
                                n = 0;
                                gen = ing->generation;
                        }
                        if (!n)
                                until = now + ing->batch_ms;
                        msgs[n++] = m;
                }
                if (gen != ing->generation) { /* a rebalance last */
                        for (size_t j = 0; j < n; j++)
                                rd_kafka_message_destroy(msgs[j]);
                        n = 0;
                }
                /* One transaction per source partition of the batch, the
                 * partition's records in order. */
                for (size_t i = 0; i < ing->nparts; i++) {
                        part_t *pt = ing->parts[i];
                        size_t k = 0;
                        if (!pt->producer) {
                                if (mono_ms() >= pt->retry_at)
                                        part_recover(pt);
                                continue; /* read again from its offset */
                        }
                        for (size_t j = 0; j < n; j++)
                                if (msgs[j]->partition == pt->partition &&
                                    !strcmp(rd_kafka_topic_name(msgs[j]->rkt),
                                            pt->topic))
                                        mine[k++] = msgs[j];
                        if (k)
                                run_batch(pt, mine, k);
                }
                for (size_t j = 0; j < n; j++)
                        rd_kafka_message_destroy(msgs[j]);
        }
        keel_log(KEEL_LOG_INFO, LOG, "msg=\"ingress stopping\" group=%s",
                 ing->group);
        rd_kafka_consumer_close(ing->consumer);
        free(msgs);
        free(mine);
        return KEEL_OK;
}

#define LD(x) ((unsigned long long)atomic_load(&(x)))

void keel__ingress_metrics(const keel__ingress_t *ing, char *buf, size_t size,
                           size_t *len)
{
        keel__ingress_stats_t *s = (keel__ingress_stats_t *)&ing->stats;
        int w;
        if (*len >= size)
                return;
        w = snprintf(
            buf + *len, size - *len,
            "# HELP keel_ingress_records_total Source records read and "
            "committed.\n"
            "# TYPE keel_ingress_records_total counter\n"
            "keel_ingress_records_total %llu\n"
            "# TYPE keel_ingress_starts_total counter\n"
            "keel_ingress_starts_total %llu\n"
            "# TYPE keel_ingress_signals_total counter\n"
            "keel_ingress_signals_total %llu\n"
            "# HELP keel_ingress_skipped_total Source records no route "
            "wanted.\n"
            "# TYPE keel_ingress_skipped_total counter\n"
            "keel_ingress_skipped_total %llu\n"
            "# HELP keel_ingress_dead_letters_total Source records that "
            "could not be mapped, sent to keel.dlq.\n"
            "# TYPE keel_ingress_dead_letters_total counter\n"
            "keel_ingress_dead_letters_total %llu\n"
            "# TYPE keel_ingress_transactions_total counter\n"
            "keel_ingress_transactions_total %llu\n"
            "# TYPE keel_ingress_transaction_failures_total counter\n"
            "keel_ingress_transaction_failures_total %llu\n"
            "# TYPE keel_ingress_partitions gauge\n"
            "keel_ingress_partitions %lld\n",
            LD(s->records), LD(s->starts), LD(s->signals), LD(s->skipped),
            LD(s->dead_letters), LD(s->transactions), LD(s->txn_failures),
            (long long)atomic_load(&s->partitions));
        if (w > 0)
                *len += (size_t)w < size - *len ? (size_t)w : size - *len - 1;
}
