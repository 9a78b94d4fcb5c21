/* upload.h - sending a file: the account's upload service (XEP-0363 HTTP
 * File Upload), found at each connect, hands out a slot: a URL to PUT
 * the file to, and one to give the other side (upload.c).  The PUT
 * itself is https.c's, on the thread that closes the file. */
#pragma once

#include <glib.h>

#include "base/https.h"
#include "xmpp/pool.h"

typedef struct {
	char *put, *get;   /* https:// URLs */
	GPtrArray *headers; /* "Name: value" for the PUT (those XEP-0363
			     * allows), NULL-terminated */
} UploadSlot;

void upload_slot_clear(UploadSlot *s);
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC(UploadSlot, upload_slot_clear)

/* [any] The largest file the service takes (0: it says none), or -1
 * when the account has no upload service (none found, or not yet). */
gint64 upload_max(Account *a);
/* [any] A slot for a file of @size bytes named @name, of @type: 0 and
 * @out, or -EOPNOTSUPP (no upload service), -EFBIG (too large),
 * -EDQUOT (over the quota), -ENOTCONN, or the service's refusal. */
int upload_slot(Pool *p, Account *a, const char *name, guint64 size,
		const char *type, UploadSlot *out);
/* [any] A file to hold what is written until it goes (unlinked: gone
 * with its descriptor), in the account's data directory; -errno. */
int upload_tmpfile(Account *a);
/* [any, blocking: not the pool thread] PUT @size bytes of @fd (from its
 * start) to @s's URL, the TLS checked as the account's stream is (its
 * ca_file), and to the account's `host` when the URL names the
 * account's domain; https_put's result. */
int upload_put(Account *a, const UploadSlot *s, int fd, guint64 size,
	       const char *type, HttpsProgress cb, void *data, GError **err);
/* [any] The MIME type a file name says (by its extension). */
const char *upload_type_of(const char *name);
