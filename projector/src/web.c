/*
 * web.c: the dashboard's files (web.h). Nothing is embedded yet.
 */
#include "web.h"

const proj_asset_t *proj_web_asset(const char *path)
{
        (void)path;
        return NULL;
}
