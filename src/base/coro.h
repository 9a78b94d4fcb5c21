/* coro.h - coroutines on the pool thread.
 *
 * Each account runs its libstrophe work on a stack of its own, so that a
 * call which would block (libstrophe 0.12's TLS handshake loop) can yield
 * back to the pool loop and be resumed later, while every libstrophe call
 * still happens on the one pool thread.  Pool thread only. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

typedef struct Coro Coro;

/* A coroutine with a stack of @stack_size bytes (reserved, committed only
 * as used) that runs @fn(@arg) each time it is started. */
Coro *coro_new(void (*fn)(void *arg), void *arg, size_t stack_size);
void coro_free(Coro *c);

/* From the pool loop: run @c from the start of fn, or, when it yielded,
 * from where it yielded; returns true when fn has returned. */
bool coro_run(Coro *c);
/* True while @c has yielded and waits to be resumed. */
bool coro_suspended(const Coro *c);

/* The coroutine running now, NULL on the pool loop's own stack. */
Coro *coro_current(void);
/* From inside a coroutine: back to the pool loop, until coro_run. */
void coro_yield(void);
