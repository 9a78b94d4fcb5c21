/* mam_query.c - a query of an archive (XEP-0313), ours or a room's, and
 * what its answer says: the one place that builds the query and reads
 * its pages, for our catch-up (mam.c), the outbox check (mam_check.c)
 * and the rooms' archives (muc_archive.c).  It keeps no state and calls
 * no other feature.  Pool thread only (account_int.h). */
#include "features/mam_int.h"

#include <string.h>

#include "base/jid.h"
#include "base/record.h"
#include "xmpp/dispatch.h"

#define NS_RSM "http://jabber.org/protocol/rsm"

static void add_field(Account *a, xmpp_stanza_t *form, const char *var,
		      const char *value)
{
	xmpp_stanza_t *f = xmpp_stanza_new(a->ctx);

	xmpp_stanza_set_name(f, "field");
	xmpp_stanza_set_attribute(f, "var", var);
	acct_add_text_child(a, f, "value", value);
	xmpp_stanza_add_child_ex(form, f, 0);
}

char *mam_send_query(Account *a, const char *to, const char *start,
		     const char *after, const char *before, const char *max,
		     AwaitFn answer)
{
	char *id = acct_next_id(a); /* the queryid its results carry */
	xmpp_stanza_t *iq = xmpp_iq_new(a->ctx, "set", NULL);
	xmpp_stanza_t *q = xmpp_stanza_new(a->ctx);
	xmpp_stanza_t *set = xmpp_stanza_new(a->ctx);

	xmpp_stanza_set_name(q, "query");
	xmpp_stanza_set_ns(q, NS_MAM);
	xmpp_stanza_set_attribute(q, "queryid", id);
	if (start) {
		xmpp_stanza_t *form = xmpp_stanza_new(a->ctx);
		xmpp_stanza_set_name(form, "x");
		xmpp_stanza_set_ns(form, "jabber:x:data");
		xmpp_stanza_set_type(form, "submit");
		add_field(a, form, "FORM_TYPE", NS_MAM);
		add_field(a, form, "start", start);
		xmpp_stanza_add_child_ex(q, form, 0);
	}
	xmpp_stanza_set_name(set, "set");
	xmpp_stanza_set_ns(set, NS_RSM);
	acct_add_text_child(a, set, "max", max);
	if (before && !*before) {
		xmpp_stanza_t *b = xmpp_stanza_new(a->ctx);
		xmpp_stanza_set_name(b, "before"); /* the last page */
		xmpp_stanza_add_child_ex(set, b, 0);
	} else if (before) {
		acct_add_text_child(a, set, "before", before);
	} else if (after) {
		acct_add_text_child(a, set, "after", after);
	}
	xmpp_stanza_add_child_ex(q, set, 0);
	xmpp_stanza_add_child_ex(iq, q, 0);
	if (to)
		xmpp_stanza_set_to(iq, to);
	await_iq(a, iq, MAM_QUERY_TIMEOUT_S, answer, g_strdup(id), g_free);
	xmpp_stanza_release(iq);
	return id;
}

bool mam_id_ok(const char *id)
{
	if (!id || !*id || strlen(id) > 256)
		return false;
	for (const char *p = id; *p; p++)
		if (*p <= ' ' || *p > '~' || strchr("<>&'\"", *p))
			return false;
	return true;
}

char *mam_page_id(xmpp_stanza_t *iq, const char *which, xmpp_stanza_t **fin)
{
	xmpp_stanza_t *set;
	char *id;

	*fin = xmpp_stanza_get_child_by_name_and_ns(iq, "fin", NS_MAM);
	set = *fin ? xmpp_stanza_get_child_by_name_and_ns(*fin, "set", NS_RSM)
		   : NULL;
	id = set ? acct_child_text(set, which) : NULL;
	if (id && !mam_id_ok(id))
		g_clear_pointer(&id, g_free);
	return id;
}

char *mam_page_end(xmpp_stanza_t *iq, bool *complete)
{
	xmpp_stanza_t *fin;
	char *last = mam_page_id(iq, "last", &fin);

	*complete = !fin || !g_strcmp0(xmpp_stanza_get_attribute(fin, "complete"),
				       "true");
	return last;
}

xmpp_stanza_t *mam_forwarded(xmpp_stanza_t *res, gint64 *t, Jid **from)
{
	xmpp_stanza_t *fwd =
		xmpp_stanza_get_child_by_name_and_ns(res, "forwarded", NS_FORWARD);
	xmpp_stanza_t *inner =
		fwd ? xmpp_stanza_get_child_by_name(fwd, "message") : NULL;
	const char *ifrom = inner ? xmpp_stanza_get_from(inner) : NULL;
	xmpp_stanza_t *delay;

	*from = ifrom ? jid_parse(ifrom, NULL) : NULL;
	if (!*from)
		return NULL;
	delay = xmpp_stanza_get_child_by_name_and_ns(fwd, "delay",
						     "urn:xmpp:delay");
	if (!delay || !record_parse_stamp(
			      xmpp_stanza_get_attribute(delay, "stamp"), t))
		*t = in_time(inner);
	return inner;
}
