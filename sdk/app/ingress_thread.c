/*
 * ingress_thread.c: an ingress (sdk/src/ingress.c) on a thread of its own,
 * for `keel ingress` and keel-orchestrator --ingress. If it fails for good
 * it sends the process SIGTERM, so that the program stops (and its
 * supervisor restarts it) instead of running on without it.
 */
#include "app.h"

#include "ingress_int.h"
#include "keel/error.h"
#include "keel/log.h"

#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

struct keel_app_ingress_s {
        keel__ingress_t *ing;
        pthread_t thread;
        atomic_int stop;
        int rc;
        const char *component;
};

static void *run(void *arg)
{
        keel_app_ingress_t *h = arg;
        h->rc = keel__ingress_run(h->ing, &h->stop);
        if (h->rc && !atomic_load(&h->stop)) {
                keel_log(KEEL_LOG_ERROR, h->component,
                         "msg=\"the ingress failed; stopping\" error=%s",
                         keel_err_name(h->rc));
                kill(getpid(), SIGTERM);
        }
        return NULL;
}

keel_app_ingress_t *keel__app_ingress_start(const keel_config_t *cfg,
                                            const char *routes_path,
                                            const char *component, char *errstr,
                                            size_t errsize)
{
        keel__ingress_routes_t *routes;
        keel_app_ingress_t *h;

        if (keel__ingress_routes_load(routes_path, &routes, errstr, errsize))
                return NULL;
        if (!(h = calloc(1, sizeof(*h)))) {
                keel__ingress_routes_free(routes);
                return NULL;
        }
        h->component = component;
        if (!(h->ing = keel__ingress_new(cfg, routes, errstr, errsize))) {
                free(h);
                return NULL;
        }
        if (pthread_create(&h->thread, NULL, run, h)) {
                keel__ingress_destroy(h->ing);
                free(h);
                return NULL;
        }
        return h;
}

struct keel__ingress_s *keel__app_ingress_get(keel_app_ingress_t *h)
{
        return h ? h->ing : NULL;
}

int keel__app_ingress_stop(keel_app_ingress_t *h)
{
        int rc;
        if (!h)
                return KEEL_OK;
        atomic_store(&h->stop, 1);
        pthread_join(h->thread, NULL);
        rc = h->rc;
        keel__ingress_destroy(h->ing);
        free(h);
        return rc;
}
