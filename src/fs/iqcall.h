/* iqcall.h - one request of the `iq` file: written on a descriptor, sent
 * by the pool, answered later, read back on the same descriptor.  Shared
 * by a FUSE handle and the pool, counted; its own lock.  No libstrophe. */
#pragma once

#include <fuse_lowlevel.h>
#include <glib.h>
#include <stdbool.h>

typedef struct IqCall IqCall;

IqCall *iqcall_new(void);
IqCall *iqcall_ref(IqCall *c);
void iqcall_unref(IqCall *c);

/* A request was sent: until the answer comes, reads wait. */
void iqcall_start(IqCall *c);
/* [pool] The answer (one line of XML), or -errno (-ETIMEDOUT); answers a
 * parked read at once. */
void iqcall_finish(IqCall *c, const char *line, int err);
/* FUSE read: the answer, EAGAIN under @nonblock, 0 bytes when no request
 * was written, else parked until the answer (EINTR on interrupt). */
void iqcall_read(IqCall *c, fuse_req_t req, size_t size, bool nonblock);
bool iqcall_pending(IqCall *c);
