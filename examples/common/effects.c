/*
 * effects.c: the examples' effect log (effects.h): the effects made, as
 * strings "<activity type>\t<idempotency key>" in memory, mirrored to an
 * append-only file.
 */
#include "effects.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct example_effects_s {
        FILE *f;
        pthread_mutex_t lock;
        char **entries;
        size_t n, cap;
};

/* Add entry to the ones in memory; KEEL_ERR_NOMEM. Under fx->lock, or
 * before anyone else has fx. */
static int remember(example_effects_t *fx, const char *entry)
{
        char *copy;
        if (fx->n == fx->cap) {
                size_t cap = fx->cap ? fx->cap * 2 : 64;
                char **e = realloc(fx->entries, cap * sizeof(*e));
                if (!e)
                        return KEEL_ERR_NOMEM;
                fx->entries = e;
                fx->cap = cap;
        }
        if (!(copy = strdup(entry)))
                return KEEL_ERR_NOMEM;
        fx->entries[fx->n++] = copy;
        return KEEL_OK;
}

example_effects_t *example_effects_open(const char *path)
{
        example_effects_t *fx = calloc(1, sizeof(*fx));
        char line[1024];
        if (!fx)
                return NULL;
        pthread_mutex_init(&fx->lock, NULL);
        if (!path)
                return fx;
        if (!(fx->f = fopen(path, "a+"))) {
                example_effects_close(fx);
                return NULL;
        }
        rewind(fx->f);
        while (fgets(line, sizeof(line), fx->f)) {
                line[strcspn(line, "\n")] = '\0';
                if (remember(fx, line)) {
                        example_effects_close(fx);
                        return NULL;
                }
        }
        return fx;
}

void example_effects_close(example_effects_t *fx)
{
        if (!fx)
                return;
        if (fx->f)
                fclose(fx->f);
        for (size_t i = 0; i < fx->n; i++)
                free(fx->entries[i]);
        free(fx->entries);
        pthread_mutex_destroy(&fx->lock);
        free(fx);
}

int example_effect(keel_activity_ctx_t *ctx)
{
        example_effects_t *fx = keel_activity_opaque(ctx);
        char entry[700];
        int rc = KEEL_OK;
        size_t i;

        if (!fx)
                return KEEL_OK;
        snprintf(entry, sizeof(entry), "%s\t%s", keel_activity_type(ctx),
                 keel_activity_idempotency_key(ctx));
        pthread_mutex_lock(&fx->lock);
        for (i = 0; i < fx->n && strcmp(fx->entries[i], entry); i++)
                ;
        if (i == fx->n && !(rc = remember(fx, entry)) && fx->f) {
                fprintf(fx->f, "%s\n", entry);
                fflush(fx->f);
        }
        pthread_mutex_unlock(&fx->lock);
        return rc;
}
