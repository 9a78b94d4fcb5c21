/* iqfile.h - ACCOUNT/iq (iqfile.c): the pool's half.  The FUSE half, a
 * read parked until the answer, is fs/iqcall.c. */
#pragma once

#include "xmpp/pool.h"

/* [pool] The answer to a request: one line of XML, or NULL and -errno
 * (-ETIMEDOUT after the account's iq_timeout, -ECONNRESET when the stream
 * went). */
typedef void (*IqfileDone)(void *data, const char *line, int err);

/* [any] Send the <iq/> a user wrote (one stanza, checked by xmlcheck):
 * it must be a get or set (-EINVAL); an id is added when it has none;
 * @done gets the answer, once, unless this fails.  Waits until sent: 0,
 * -EINVAL or -ENOTCONN.  @data is freed with @free_data in any case. */
int iqfile_send(Pool *p, Account *a, const char *text, IqfileDone done,
		void *data, GDestroyNotify free_data);
