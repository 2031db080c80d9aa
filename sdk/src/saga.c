/*
 * saga.c: compensations registered step by step and run in reverse order
 * as durable activities (keel/workflow.h, "Saga"). Built on the public
 * workflow API only; every allocation is in the run's arena.
 */
#include "keel/workflow.h"

#include "keel/error.h"

#include <string.h>

typedef struct comp_s {
        struct comp_s *prev; /* the one registered before */
        const char *name;
        json_t *input; /* owned by the run */
        keel_activity_options_t opts;
} comp_t;

struct keel_saga_s {
        keel_wf_t *wf;
        comp_t *last;
        size_t n;
};

keel_saga_t *keel_saga_new(keel_wf_t *wf)
{
        keel_saga_t *s = keel_alloc(wf, sizeof(*s));
        s->wf = wf;
        return s;
}

void keel_saga_add(keel_saga_t *s, const char *name, json_t *input,
                   const keel_activity_options_t *opts)
{
        comp_t *c = keel_alloc(s->wf, sizeof(*c));
        c->name = keel_strdup(s->wf, name);
        c->input = keel_own(s->wf, input);
        if (opts) {
                c->opts = *opts;
                if (opts->task_queue)
                        c->opts.task_queue =
                            keel_strdup(s->wf, opts->task_queue);
        }
        /* A cancellation request does not stop a compensation. */
        c->opts.non_cancellable = 1;
        c->prev = s->last;
        s->last = c;
        s->n++;
}

size_t keel_saga_size(const keel_saga_t *s)
{
        return s->n;
}

/* Wait for a compensation to finish: a cancellation request that arrives
 * meanwhile does not stop it. */
static int finish(keel_wf_t *wf, keel_future_t *f)
{
        int rc;
        while ((rc = keel_await(wf, f, NULL)) == KEEL_ERR_CANCELLED)
                ;
        return rc;
}

int keel_saga_compensate(keel_saga_t *s, int parallel)
{
        keel_future_t **fs;
        comp_t *c;
        size_t i = 0;
        int rc = KEEL_OK;

        if (!s->n)
                return KEEL_OK;
        fs = keel_alloc(s->wf, s->n * sizeof(*fs));
        for (c = s->last; c; c = c->prev, i++) {
                /* The run keeps owning the input: the activity takes its
                 * own reference. */
                fs[i] = keel_activity_async(s->wf, c->name,
                                            json_incref(c->input), &c->opts);
                if (!parallel) {
                        int r = finish(s->wf, fs[i]);
                        if (r && rc == KEEL_OK)
                                rc = r;
                }
        }
        for (i = 0; parallel && i < s->n; i++) {
                int r = finish(s->wf, fs[i]);
                if (r && rc == KEEL_OK)
                        rc = r;
        }
        /* Compensated: a second call runs nothing. */
        s->last = NULL;
        s->n = 0;
        return rc;
}
