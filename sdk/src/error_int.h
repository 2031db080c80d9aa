/*
 * error_int.h: reporting an error with a message, inside libkeel.
 */
#ifndef KEEL_ERROR_INT_H
#define KEEL_ERROR_INT_H

#include <stddef.h>

/* Write the formatted message to errstr (when not NULL) and return err:
 * `return keel__fail(errstr, errsize, KEEL_ERR_X, "...", ...)`. */
int keel__fail(char *errstr, size_t errsize, int err, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#endif
