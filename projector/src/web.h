/*
 * web.h: the dashboard's files, embedded in keel-projector at build time.
 */
#ifndef KEEL_PROJ_WEB_H
#define KEEL_PROJ_WEB_H

#include <stddef.h>

typedef struct proj_asset_s {
        const char *path;
        const char *type;
        const unsigned char *data;
        size_t len;
} proj_asset_t;

/* The asset served at url path `path` ("/" is index.html; "/ui/app.js"
 * etc.), or NULL. */
const proj_asset_t *proj_web_asset(const char *path);

#endif
