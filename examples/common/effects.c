/*
 * effects.c: the examples' effect log (effects.h): the effects made, as
 * strings "<activity type>\t<idempotency key>" in memory (a set, to look
 * one up in constant time however many there are), mirrored to an
 * append-only file. Several workers may share the file, as they would
 * share a payment provider: each takes an exclusive lock on it (flock)
 * to read what the others appended since its last look, then decides and
 * appends, so an effect is made once whichever worker runs the task.
 */
#include "effects.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>

struct example_effects_s {
        FILE *f;
        long read_to; /* bytes of the file already in made */
        pthread_mutex_t lock;
        json_t *made; /* entry -> true */
};

/* Add entry to the ones in memory; KEEL_ERR_NOMEM. Under fx->lock, or
 * before anyone else has fx. */
static int remember(example_effects_t *fx, const char *entry)
{
        /* nocheck: a line of the file need not be UTF-8 to count. */
        return json_object_set_new_nocheck(fx->made, entry, json_true())
                   ? KEEL_ERR_NOMEM
                   : KEEL_OK;
}

example_effects_t *example_effects_open(const char *path)
{
        example_effects_t *fx = calloc(1, sizeof(*fx));
        if (!fx)
                return NULL;
        pthread_mutex_init(&fx->lock, NULL);
        if (!(fx->made = json_object())) {
                example_effects_close(fx);
                return NULL;
        }
        if (!path)
                return fx;
        if (!(fx->f = fopen(path, "a+"))) {
                example_effects_close(fx);
                return NULL;
        }
        return fx;
}

/* Remember the lines appended to the file since the last call (by this
 * process or another). Under fx->lock and the file's lock. */
static int catch_up(example_effects_t *fx)
{
        char line[1024];
        if (fseek(fx->f, fx->read_to, SEEK_SET))
                return KEEL_ERR_IO;
        while (fgets(line, sizeof(line), fx->f)) {
                line[strcspn(line, "\n")] = '\0';
                if (remember(fx, line))
                        return KEEL_ERR_NOMEM;
        }
        fx->read_to = ftell(fx->f);
        return KEEL_OK;
}

void example_effects_close(example_effects_t *fx)
{
        if (!fx)
                return;
        if (fx->f)
                fclose(fx->f);
        json_decref(fx->made);
        pthread_mutex_destroy(&fx->lock);
        free(fx);
}

int example_effect(keel_activity_ctx_t *ctx)
{
        example_effects_t *fx = keel_activity_opaque(ctx);
        char entry[700];
        int rc = KEEL_OK, made = 0;

        if (!fx)
                return KEEL_OK;
        snprintf(entry, sizeof(entry), "%s\t%s", keel_activity_type(ctx),
                 keel_activity_idempotency_key(ctx));
        pthread_mutex_lock(&fx->lock);
        if (fx->f) {
                flock(fileno(fx->f), LOCK_EX);
                rc = catch_up(fx);
        }
        if (!rc)
                made = json_object_get(fx->made, entry) != NULL;
        if (!rc && !made && fx->f) {
                /* Appended (the file is open for appending) and read back
                 * by the next catch_up(). */
                fseek(fx->f, 0, SEEK_END);
                fprintf(fx->f, "%s\n", entry);
                fflush(fx->f);
        } else if (!rc && !made) {
                rc = remember(fx, entry);
        }
        if (fx->f)
                flock(fileno(fx->f), LOCK_UN);
        pthread_mutex_unlock(&fx->lock);
        return rc;
}
