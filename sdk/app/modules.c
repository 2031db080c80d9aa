/*
 * modules.c: loading workflow code into keel-orchestrator and `keel
 * replay` (app.h). A workflow module is a shared library exporting
 *   int keel_module_init(keel_registry_t *reg);
 * which registers its workflow types; it is built without linking libkeel,
 * whose symbols the program loading it provides.
 */
#include "app.h"

#include "keel/log.h"

#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int keel__app_load_modules(keel_registry_t *reg, const char *list,
                           const char *component, char *errstr,
                           size_t errstr_size)
{
        char *copy = strdup(list ? list : ""), *save = NULL, *path;
        int rc = KEEL_OK;

        if (!copy)
                return KEEL_ERR_NOMEM;
        for (path = strtok_r(copy, ",", &save); path && !rc;
             path = strtok_r(NULL, ",", &save)) {
                void *h;
                int (*init)(keel_registry_t *);
                while (*path == ' ')
                        path++;
                if (!*path)
                        continue;
                h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
                if (!h) {
                        snprintf(errstr, errstr_size,
                                 "cannot load workflow module: %s", dlerror());
                        rc = KEEL_ERR_CONFIG;
                        break;
                }
                *(void **)&init = dlsym(h, "keel_module_init");
                if (!init) {
                        snprintf(errstr, errstr_size,
                                 "%s has no keel_module_init()", path);
                        rc = KEEL_ERR_CONFIG;
                        break;
                }
                if ((rc = init(reg))) {
                        snprintf(errstr, errstr_size,
                                 "%s: keel_module_init failed: %s", path,
                                 keel_err_str(rc));
                        rc = KEEL_ERR_CONFIG;
                        break;
                }
                keel_log(KEEL_LOG_INFO, component,
                         "msg=\"workflow module loaded\" path=%s", path);
                /* The module stays loaded for the life of the process. */
        }
        free(copy);
        return rc;
}
