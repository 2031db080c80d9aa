/*
 * machine_limits.c: the settings that shape what the partition state
 * machine enforces (machine_int.h): how long closed runs' histories are
 * kept (retention.closed.ms, and retention.closed.ms.<workflow type> for
 * one type) and how large a run's history may grow (history.max.events,
 * history.max.bytes, history.warn.percent). The orchestrator and the test
 * environment read them the same way.
 */
#include "machine_int.h"

#include "config_int.h"

#include <stdlib.h>
#include <string.h>

typedef struct by_type_s {
        json_t *obj;
        int failed;
} by_type_t;

static void collect(const char *key, const char *value, const char *origin,
                    void *opaque)
{
        by_type_t *bt = opaque;
        size_t n = strlen(KEEL__RETENTION_TYPE_PREFIX);
        int64_t ms;
        (void)origin;
        if (strncmp(key, KEEL__RETENTION_TYPE_PREFIX, n) || !key[n])
                return;
        /* keel_config_set() checked the value. */
        ms = strtoll(value, NULL, 10);
        if ((!bt->obj && !(bt->obj = json_object())) ||
            json_object_set_new(bt->obj, key + n, json_integer(ms)))
                bt->failed = 1;
}

int keel__machine_limits_from_config(const keel_config_t *cfg,
                                     keel__machine_limits_t *l,
                                     json_t **by_type)
{
        by_type_t bt = {NULL, 0};
        int64_t v;

        keel__machine_limits_init(l);
        *by_type = NULL;
        if (!keel_config_get_int(cfg, "retention.closed.ms", &v))
                l->retention_ms = v;
        if (!keel_config_get_int(cfg, "history.max.events", &v))
                l->max_events = v;
        if (!keel_config_get_int(cfg, "history.max.bytes", &v))
                l->max_bytes = v;
        if (!keel_config_get_int(cfg, "history.warn.percent", &v))
                l->warn_percent = (int)v;
        keel_config_foreach(cfg, collect, &bt);
        if (bt.failed) {
                json_decref(bt.obj);
                return KEEL_ERR_NOMEM;
        }
        l->retention_by_type = bt.obj;
        *by_type = bt.obj;
        return KEEL_OK;
}
