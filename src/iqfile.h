/* iqfile.h - ACCOUNT/iq (iqfile.c). */
#pragma once

#include "iqcall.h"
#include "pool.h"

/* [any] Send the <iq/> a user wrote (one stanza, checked by xmlcheck):
 * it must be a get or set (-EINVAL); an id is added when it has none;
 * @c gets the answer, or -ETIMEDOUT after IQCALL_TIMEOUT_S.  Waits until
 * sent: 0, -EINVAL or -ENOTCONN. */
int iqfile_send(Pool *p, Account *a, IqCall *c, const char *text);
