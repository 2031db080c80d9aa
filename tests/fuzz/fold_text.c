/*
 * fold_text.c: workflow events written as text lines, applied to the
 * projector's fold (fold_text.h).
 */
#include "fold_text.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* What the fields after seq mean, by event type: a field name, with '#'
 * first for an integer and '{' for a JSON value (parsed from the text). */
static const struct {
        const char *type;
        const char *field[4];
} shapes[] = {
    {"WorkflowStarted", {"workflow_type", "input"}},
    {"WorkflowCompleted", {"result"}},
    {"WorkflowFailed", {"{failure"}},
    {"ActivityScheduled", {"activity_id", "activity_type"}},
    {"ActivityRetried", {"activity_id", "#attempt"}},
    {"ActivityCompleted", {"activity_id", "result"}},
    {"ActivityFailed",
     {"activity_id", "{failure", "#next_attempt_at", "#attempt"}},
    {"ActivityTimedOut",
     {"activity_id", "timeout_type", "#next_attempt_at", "#attempt"}},
    {"ActivityHeartbeatRecorded", {"activity_id", "details"}},
    {"TimerStarted", {"timer_id", "#fire_at"}},
    {"TimerFired", {"timer_id"}},
    {"TimerCancelled", {"timer_id"}},
    {"MarkerRecorded", {"marker_name", "details"}},
    {"SignalReceived", {"signal_name", "payload"}},
};

/* A field's value: an integer when it is one and '#' asks for it, a JSON
 * value when '{' asks for it and it parses, else the text (NULL when it is
 * not UTF-8). A number asked for but not given stays text, so the fold
 * meets wrongly typed fields too. */
static json_t *field_value(char kind, const char *s)
{
        char *end;
        long long n;
        if (kind == '#') {
                errno = 0;
                n = strtoll(s, &end, 10);
                if (*s && !*end && !errno)
                        return json_integer(n);
        } else if (kind == '{') {
                json_t *v = json_loads(s, JSON_DECODE_ANY, NULL);
                if (v)
                        return v;
        }
        return json_string(s);
}

void fuzz_fold_line(proj_fold_t *f, char *line)
{
        char *t[8];
        size_t n = 0;
        char full[160];
        json_t *rec, *ev, *type;
        json_int_t seq;

        t[n++] = line;
        for (char *c = line; *c && n < 8; c++)
                if (*c == '\t') {
                        *c = '\0';
                        t[n++] = c + 1;
                }
        if (n < 4)
                return;
        snprintf(full, sizeof(full), "keel.history.%s", t[0]);
        type = json_string(full);
        if (!type)
                return; /* not UTF-8, or cut in a character */
        rec = json_object();
        json_object_set_new(rec, "workflow_id", json_string(t[1]));
        json_object_set_new(rec, "run_id", json_string(t[2]));
        json_object_set_new(rec, "seq", field_value('#', t[3]));
        json_object_set_new(rec, "epoch", json_integer(1));
        seq = json_integer_value(json_object_get(rec, "seq"));
        json_object_set_new(
            rec, "ts",
            json_integer(1795000000000LL +
                         (seq > -1000000 && seq < 1000000 ? 1000 * seq : 0)));
        for (size_t s = 0; s < sizeof(shapes) / sizeof(shapes[0]); s++) {
                if (strcmp(shapes[s].type, t[0]))
                        continue;
                for (size_t i = 0; i < 4 && 4 + i < n && shapes[s].field[i];
                     i++) {
                        const char *name = shapes[s].field[i];
                        char kind = *name == '#' || *name == '{' ? *name : 0;
                        json_object_set_new(rec, kind ? name + 1 : name,
                                            field_value(kind, t[4 + i]));
                }
        }
        ev = json_object();
        json_object_set_new(ev, "type", type);
        json_object_set_new(ev, "record", rec);
        if (json_is_integer(json_object_get(rec, "seq")))
                json_object_set(ev, "offset", json_object_get(rec, "seq"));
        proj_fold_apply(f, ev);
        json_decref(ev);
}

void fuzz_fold_text(proj_fold_t *f, char *text)
{
        char *line = text, *nl;
        for (;;) {
                nl = strchr(line, '\n');
                if (nl)
                        *nl = '\0';
                fuzz_fold_line(f, line);
                if (!nl)
                        return;
                line = nl + 1;
        }
}
