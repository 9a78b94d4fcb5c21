/* dispatch.c - see dispatch.h. */
#include "xmpp/dispatch.h"

#include <string.h>

#include "base/log.h"
#include "base/record.h"

typedef struct {
	InHandler fn;
	const char *what;
} Link;

struct Dispatch {
	GArray *chain[IN_KINDS]; /* of Link, in the order of registration */
};

Dispatch *dispatch_new(void)
{
	Dispatch *d = g_new0(Dispatch, 1);

	for (guint k = 0; k < IN_KINDS; k++)
		d->chain[k] = g_array_new(FALSE, FALSE, sizeof(Link));
	return d;
}

void dispatch_free(Dispatch *d)
{
	if (!d)
		return;
	for (guint k = 0; k < IN_KINDS; k++)
		g_array_unref(d->chain[k]);
	g_free(d);
}

void dispatch_add(Dispatch *d, InKind kind, const char *what, InHandler fn)
{
	Link l = {fn, what};

	g_return_if_fail(kind < IN_KINDS);
	g_array_append_val(d->chain[kind], l);
}

gint64 in_time(xmpp_stanza_t *st)
{
	xmpp_stanza_t *d =
		xmpp_stanza_get_child_by_name_and_ns(st, "delay", "urn:xmpp:delay");
	gint64 t;

	if (d && record_parse_stamp(xmpp_stanza_get_attribute(d, "stamp"), &t))
		return t;
	return g_get_real_time() / G_USEC_PER_SEC;
}

static InKind kind_of(const char *name)
{
	if (!name)
		return IN_KINDS;
	if (!strcmp(name, "message"))
		return IN_MESSAGE;
	if (!strcmp(name, "presence"))
		return IN_PRESENCE;
	if (!strcmp(name, "iq"))
		return IN_IQ;
	return IN_KINDS;
}

static void in_parse(In *in, const char *own, xmpp_stanza_t *st)
{
	g_autoptr(GError) err = NULL;

	memset(in, 0, sizeof *in);
	in->st = st;
	in->kind = kind_of(xmpp_stanza_get_name(st));
	in->type = xmpp_stanza_get_type(st);
	in->id = xmpp_stanza_get_id(st);
	in->from = xmpp_stanza_get_from(st);
	if (in->from && !(in->jid = jid_parse(in->from, &err)))
		in->jid_error = g_strdup(err->message);
	in->bare = in->jid ? jid_bare(in->jid) : NULL;
	in->from_self = !in->from || !g_strcmp0(in->bare, own);
	in->time = in->kind == IN_MESSAGE ? in_time(st) : 0;
}

static void in_clear(In *in)
{
	g_clear_pointer(&in->jid, jid_free);
	g_clear_pointer(&in->bare, g_free);
	g_clear_pointer(&in->jid_error, g_free);
}

bool dispatch_stanza(Dispatch *d, Account *a, const char *own,
		     xmpp_stanza_t *st)
{
	In in;
	bool taken = false;

	in_parse(&in, own, st);
	if (in.kind < IN_KINDS) {
		GArray *c = d->chain[in.kind];
		for (guint i = 0; i < c->len && !taken; i++) {
			Link *l = &g_array_index(c, Link, i);
			taken = l->fn(a, &in);
			if (taken && xfs_log_xml())
				xfs_debug("%s: %s", own, l->what);
		}
	}
	in_clear(&in);
	return taken;
}
