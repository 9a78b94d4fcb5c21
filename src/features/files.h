/* files.h - files sent to the account with a link (XEP-0066 out-of-band
 * data, an XEP-0363 upload), fetched into the conversation's files/ when
 * the account's `downloads` key says so (files.c); and the HTTPS options
 * both directions use. */
#pragma once

#include <glib.h>

#include "base/https.h"

typedef struct Account Account;

/* [pool] @url (https://) came in a message of @conv (a contact's bare
 * JID, or a room's): fetched on a worker thread, once, if the account
 * fetches files; a `download` event says how it went. */
void files_offer(Account *a, const char *conv, const char *url);
/* [any] The names of @conv's fetched files, sorted. */
GPtrArray *files_list(Account *a, const char *conv);
/* [any] Where @conv's file @name is kept (NULL: no such name). */
char *files_path(Account *a, const char *conv, const char *name);
/* [any] How to reach @url as the account reaches its server: its CA
 * file, and its `host` when @url names the account's own domain (an
 * address given there needs no DNS); @o's strings are the config's. */
void files_https_opts(Account *a, const char *url, HttpsOpts *o);
