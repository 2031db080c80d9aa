/*
 * effects.h: the effect log of keel's examples. Their activities stand in
 * for real side effects (charging a card, sending an email) by recording
 * each one, keyed by the activity's idempotency key, the way a real
 * activity hands that key to its provider: an effect already recorded
 * under its key is not made again. Tests and demos count the lines to
 * check that every effect happened once.
 */
#ifndef KEEL_EXAMPLE_EFFECTS_H
#define KEEL_EXAMPLE_EFFECTS_H

#include <keel/keel.h>

/* Effects made so far, in memory and, if a path was given, in a file of
 * lines "<activity type>\t<idempotency key>". Thread-safe; processes
 * sharing the file share its effects too. */
typedef struct example_effects_s example_effects_t;

/* A log appending to path (NULL: in memory only). Before each effect it
 * reads what the file gained since (under an exclusive flock), so neither
 * a restarted worker nor another worker on the same file makes an effect
 * recorded there again. NULL if the file cannot be opened or out of
 * memory. */
example_effects_t *example_effects_open(const char *path);

/* Frees fx; accepts NULL. */
void example_effects_close(example_effects_t *fx);

/*
 * Record the effect of the activity ctx runs, once per activity type and
 * idempotency key, in the log that is ctx's opaque (keel_activity_opaque();
 * NULL: record nothing, as the tests' fakes do). Returns KEEL_OK, also
 * when it was recorded before, or KEEL_ERR_NOMEM.
 */
int example_effect(keel_activity_ctx_t *ctx);

#endif
