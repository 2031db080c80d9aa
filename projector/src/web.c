/*
 * web.c: finds the dashboard's files in the table that
 * cmake/embed_web.cmake generates from projector/web (web_assets.c in the
 * build tree). A handful of files: a linear search is enough. Safe from
 * any thread: the table is constant.
 */
#include "web.h"

#include <string.h>

/* The generated table (web_assets.c). */
extern const proj_asset_t proj_web_assets[];
extern const size_t proj_web_nassets;

const proj_asset_t *proj_web_asset(const char *path)
{
        if (!path)
                return NULL;
        for (size_t i = 0; i < proj_web_nassets; i++)
                if (!strcmp(proj_web_assets[i].path, path))
                        return &proj_web_assets[i];
        return NULL;
}
