/*
 * version.c: keel_version() (keel/version.h).
 */
#include "keel/version.h"

const char *keel_version(void)
{
        return KEEL_VERSION_STR;
}
