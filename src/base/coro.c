/* coro.c - see coro.h.  ucontext switching, with the annotations that let
 * AddressSanitizer follow the stack changes. */
#include "base/coro.h"

#include <glib.h>
#include <sys/mman.h>
#include <ucontext.h>

#if defined(__SANITIZE_ADDRESS__)
#define CORO_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define CORO_ASAN 1
#endif
#endif
#ifdef CORO_ASAN
#include <sanitizer/common_interface_defs.h>
#endif

struct Coro {
	ucontext_t uc;
	void *stack;
	size_t size;
	void (*fn)(void *arg);
	void *arg;
	bool started;   /* fn is on the stack (running or suspended) */
	bool suspended; /* yielded, waits for coro_run */
	void *asan_fake; /* ASan's fake stack of this coroutine */
};

/* pool thread only */
static ucontext_t loop_uc;
static Coro *current;
#ifdef CORO_ASAN
static const void *loop_bottom;
static size_t loop_size;
static void *loop_fake;
#endif

/* Switching from the loop into @c (start or resume). */
static void switch_in(Coro *c)
{
#ifdef CORO_ASAN
	__sanitizer_start_switch_fiber(&loop_fake, c->stack, c->size);
#endif
	swapcontext(&loop_uc, &c->uc);
#ifdef CORO_ASAN
	__sanitizer_finish_switch_fiber(loop_fake, NULL, NULL);
#endif
}

static void entry(void)
{
	Coro *c = current;

#ifdef CORO_ASAN
	__sanitizer_finish_switch_fiber(NULL, &loop_bottom, &loop_size);
#endif
	c->fn(c->arg);
	c->started = false;
#ifdef CORO_ASAN
	/* NULL: this run of the coroutine is over, forget its fake stack */
	__sanitizer_start_switch_fiber(NULL, loop_bottom, loop_size);
#endif
	/* returning resumes uc_link: the loop, in switch_in */
}

Coro *coro_new(void (*fn)(void *arg), void *arg, size_t stack_size)
{
	Coro *c = g_new0(Coro, 1);

	c->fn = fn;
	c->arg = arg;
	c->size = stack_size;
	c->stack = mmap(NULL, stack_size, PROT_READ | PROT_WRITE,
			MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (c->stack == MAP_FAILED)
		g_error("cannot reserve a %zu-byte coroutine stack", stack_size);
	/* a guard page below the stack turns an overflow into a crash */
	mprotect(c->stack, 4096, PROT_NONE);
	return c;
}

void coro_free(Coro *c)
{
	if (!c)
		return;
	g_assert(!c->started);
	munmap(c->stack, c->size);
	g_free(c);
}

bool coro_run(Coro *c)
{
	g_assert(!current);
	if (!c->started) {
		getcontext(&c->uc);
		c->uc.uc_stack.ss_sp = c->stack;
		c->uc.uc_stack.ss_size = c->size;
		c->uc.uc_link = &loop_uc;
		makecontext(&c->uc, entry, 0);
		c->started = true;
	}
	c->suspended = false;
	current = c;
	switch_in(c);
	current = NULL;
	return !c->started;
}

bool coro_suspended(const Coro *c)
{
	return c && c->suspended;
}

Coro *coro_current(void)
{
	return current;
}

void coro_yield(void)
{
	Coro *c = current;

	g_assert(c);
	c->suspended = true;
#ifdef CORO_ASAN
	__sanitizer_start_switch_fiber(&c->asan_fake, loop_bottom, loop_size);
#endif
	swapcontext(&c->uc, &loop_uc);
#ifdef CORO_ASAN
	__sanitizer_finish_switch_fiber(c->asan_fake, &loop_bottom, &loop_size);
#endif
}
