/*
 * c11_threads.c: C11 threads (threads.h) on top of POSIX threads, linked
 * into every program of a KEEL_TSAN build only. librdkafka makes its
 * threads with thrd_create() and locks with mtx_lock()/cnd_wait(); glibc
 * implements those by calling its pthread functions internally, past the
 * interceptors ThreadSanitizer puts on pthread_create() and friends (gcc
 * 12's and clang 14's runtimes have none for C11 threads). A thread it
 * never saw start crashes the runtime on its first malloc, and locks it
 * never saw taken make every hand-over through librdkafka look like a
 * race. Defined here, in the program, these win over glibc's for every
 * library the program loads, and their pthread calls go through the
 * interceptors. glibc lays out thrd_t, mtx_t, cnd_t and once_flag as the
 * corresponding pthread types, which the casts rely on. Only what
 * librdkafka uses is here.
 */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <threads.h>
#include <time.h>

typedef struct start_s {
        thrd_start_t func;
        void *arg;
} start_t;

static void *trampoline(void *opaque)
{
        start_t s = *(start_t *)opaque;
        free(opaque);
        return (void *)(intptr_t)s.func(s.arg);
}

int thrd_create(thrd_t *thr, thrd_start_t func, void *arg)
{
        start_t *s = malloc(sizeof(*s));
        pthread_t t;
        int rc;

        if (!s)
                return thrd_nomem;
        s->func = func;
        s->arg = arg;
        rc = pthread_create(&t, NULL, trampoline, s);
        if (rc) {
                free(s);
                return thrd_error;
        }
        *thr = (thrd_t)t;
        return thrd_success;
}

int thrd_join(thrd_t thr, int *res)
{
        void *ret;
        if (pthread_join((pthread_t)thr, &ret))
                return thrd_error;
        if (res)
                *res = (int)(intptr_t)ret;
        return thrd_success;
}

int mtx_init(mtx_t *mtx, int type)
{
        pthread_mutexattr_t a;
        int rc;

        if (pthread_mutexattr_init(&a))
                return thrd_error;
        if (type & mtx_recursive)
                pthread_mutexattr_settype(&a, PTHREAD_MUTEX_RECURSIVE);
        rc = pthread_mutex_init((pthread_mutex_t *)mtx, &a);
        pthread_mutexattr_destroy(&a);
        return rc ? thrd_error : thrd_success;
}

int mtx_lock(mtx_t *mtx)
{
        return pthread_mutex_lock((pthread_mutex_t *)mtx) ? thrd_error
                                                          : thrd_success;
}

int mtx_unlock(mtx_t *mtx)
{
        return pthread_mutex_unlock((pthread_mutex_t *)mtx) ? thrd_error
                                                            : thrd_success;
}

void mtx_destroy(mtx_t *mtx)
{
        pthread_mutex_destroy((pthread_mutex_t *)mtx);
}

int cnd_init(cnd_t *cond)
{
        return pthread_cond_init((pthread_cond_t *)cond, NULL) ? thrd_error
                                                               : thrd_success;
}

int cnd_signal(cnd_t *cond)
{
        return pthread_cond_signal((pthread_cond_t *)cond) ? thrd_error
                                                           : thrd_success;
}

int cnd_broadcast(cnd_t *cond)
{
        return pthread_cond_broadcast((pthread_cond_t *)cond) ? thrd_error
                                                              : thrd_success;
}

int cnd_wait(cnd_t *cond, mtx_t *mtx)
{
        return pthread_cond_wait((pthread_cond_t *)cond, (pthread_mutex_t *)mtx)
                   ? thrd_error
                   : thrd_success;
}

int cnd_timedwait(cnd_t *restrict cond, mtx_t *restrict mtx,
                  const struct timespec *restrict ts)
{
        int rc = pthread_cond_timedwait((pthread_cond_t *)cond,
                                        (pthread_mutex_t *)mtx, ts);
        return rc == 0           ? thrd_success
               : rc == ETIMEDOUT ? thrd_timedout
                                 : thrd_error;
}

void cnd_destroy(cnd_t *cond)
{
        pthread_cond_destroy((pthread_cond_t *)cond);
}

void call_once(once_flag *flag, void (*func)(void))
{
        pthread_once((pthread_once_t *)flag, func);
}
