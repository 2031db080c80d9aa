/*
 * web.h: the dashboard's static files (projector/web), compiled into
 * keel-projector by cmake/embed_web.cmake so that nothing is read from
 * disk at run time. http.c serves them at "/" (index.html) and "/ui/<file>".
 */
#ifndef KEEL_PROJ_WEB_H
#define KEEL_PROJ_WEB_H

#include <stddef.h>

/* One embedded file: its URL path, Content-Type and bytes (static). */
typedef struct proj_asset_s {
        const char *path;
        const char *type;
        const unsigned char *data;
        size_t len;
} proj_asset_t;

/* The asset served at url path `path` ("/" is index.html; "/ui/app.js"
 * etc.), or NULL. The answer is static: nothing to free. path is the
 * request's path without its query string. */
const proj_asset_t *proj_web_asset(const char *path);

#endif
