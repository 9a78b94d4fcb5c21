/* vcard.h - the account's vCard and its contacts' (XEP-0292: vCard4 in
 * PEP; XEP-0054 vcard-temp where there is none), as text: one property
 * a line, "NAME:VALUE" as RFC 6350 writes it (vcard.c). */
#pragma once

#include <glib.h>

#include "xmpp/pool.h"

/* [any] Ours, as last heard (fetched at each connect, kept in step by
 * notifications): "BEGIN:VCARD" ... "END:VCARD", or "" for none. */
char *vcard_own_text(Account *a);
/* [any] Publish @text as ours: lines of FN, NICKNAME, EMAIL, TEL, URL,
 * NOTE, BDAY, ORG, TITLE, ROLE, TZ, IMPP (BEGIN, END and VERSION lines
 * are skipped; parameters after ';' ignored; values escaped as RFC 6350
 * says).  0, -EINVAL (another property, a line that is none), -EILSEQ,
 * -ENOTCONN, or the server's refusal.  "" publishes an empty vCard. */
int vcard_set_own(Pool *p, Account *a, const char *text);
/* [any, blocking] @jid's, asked of its server now: the text, "" when it
 * has none, NULL with @err (-errno) when it could not be asked. */
char *vcard_fetch(Pool *p, Account *a, const char *jid, int *err);
