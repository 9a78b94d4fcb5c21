/* test_dispatch.c - the stanza chain (src/xmpp/dispatch.c) on stanzas
 * built in memory, without a connection: each stanza is parsed once into
 * an In and offered to the handlers of its kind in the order they were
 * added, until one takes it; what the In says of the sender, the ids and
 * the time.
 *
 * The handlers here note what they saw in a Trace (passed as the
 * "account" pointer: the chain hands it through untouched). */
#include <glib.h>
#include <string.h>
#include <strophe.h>

#include "xmpp/dispatch.h"

#define OWN "alice@example.org"

typedef struct {
	GString *calls;   /* "a,b," : the handlers that ran, in order */
	const In *seen[4]; /* the In each handler got */
	guint n;
	char *bare, *from, *id, *type, *jid_error;
	bool has_jid, from_self;
	gint64 time;
	InKind kind;
} Trace;

static void note(Trace *t, const char *name, const In *in)
{
	g_string_append_printf(t->calls, "%s,", name);
	if (t->n < G_N_ELEMENTS(t->seen))
		t->seen[t->n++] = in;
	g_free(t->bare);
	g_free(t->from);
	g_free(t->id);
	g_free(t->type);
	g_free(t->jid_error);
	t->bare = g_strdup(in->bare);
	t->from = g_strdup(in->from);
	t->id = g_strdup(in->id);
	t->type = g_strdup(in->type);
	t->jid_error = g_strdup(in->jid_error);
	t->has_jid = in->jid != NULL;
	t->from_self = in->from_self;
	t->time = in->time;
	t->kind = in->kind;
}

static Trace *trace_of(Account *a)
{
	return (Trace *)a;
}

static bool pass_a(Account *a, const In *in)
{
	note(trace_of(a), "a", in);
	return false;
}

static bool take_b(Account *a, const In *in)
{
	note(trace_of(a), "b", in);
	return true;
}

static bool never_c(Account *a, const In *in)
{
	note(trace_of(a), "c", in);
	return true;
}

static bool presence_p(Account *a, const In *in)
{
	note(trace_of(a), "p", in);
	return true;
}

static bool iq_pass_i(Account *a, const In *in)
{
	note(trace_of(a), "i", in);
	return false;
}

typedef struct {
	xmpp_ctx_t *ctx;
	Dispatch *d;
	Trace t;
} Fixture;

static void fixture_set_up(Fixture *f, gconstpointer data)
{
	f->ctx = xmpp_ctx_new(NULL, NULL);
	f->d = dispatch_new();
	f->t.calls = g_string_new(NULL);
	dispatch_add(f->d, IN_MESSAGE, "passes", pass_a);
	dispatch_add(f->d, IN_MESSAGE, "takes", take_b);
	dispatch_add(f->d, IN_MESSAGE, "never reached", never_c);
	dispatch_add(f->d, IN_PRESENCE, "takes presences", presence_p);
	dispatch_add(f->d, IN_IQ, "passes iqs", iq_pass_i);
}

static void fixture_tear_down(Fixture *f, gconstpointer data)
{
	dispatch_free(f->d);
	xmpp_ctx_free(f->ctx);
	g_string_free(f->t.calls, TRUE);
	g_free(f->t.bare);
	g_free(f->t.from);
	g_free(f->t.id);
	g_free(f->t.type);
	g_free(f->t.jid_error);
}

/* Offer @xml to the chain: true when a handler took it. */
static bool offer(Fixture *f, const char *xml)
{
	xmpp_stanza_t *st = xmpp_stanza_new_from_string(f->ctx, xml);
	bool taken;

	g_assert_nonnull(st);
	g_string_truncate(f->t.calls, 0);
	f->t.n = 0;
	taken = dispatch_stanza(f->d, (Account *)&f->t, OWN, st);
	xmpp_stanza_release(st);
	return taken;
}

static void test_order_and_claim(Fixture *f, gconstpointer data)
{
	g_assert_true(offer(f, "<message from='bob@example.org/phone' "
			       "type='chat' id='m1'><body>hi</body>"
			       "</message>"));
	/* a passed, b took it: c never saw it */
	g_assert_cmpstr(f->t.calls->str, ==, "a,b,");
	/* parsed once: every handler got the same In */
	g_assert_cmpuint(f->t.n, ==, 2);
	g_assert_true(f->t.seen[0] == f->t.seen[1]);
	g_assert_cmpint(f->t.kind, ==, IN_MESSAGE);
}

static void test_kinds_have_their_own_chain(Fixture *f, gconstpointer data)
{
	g_assert_true(offer(f, "<presence from='bob@example.org/phone'/>"));
	g_assert_cmpstr(f->t.calls->str, ==, "p,");
	g_assert_cmpint(f->t.kind, ==, IN_PRESENCE);
	/* no iq handler takes it: the chain says so */
	g_assert_false(offer(f, "<iq type='get' id='q1' "
				"from='example.org'><ping "
				"xmlns='urn:xmpp:ping'/></iq>"));
	g_assert_cmpstr(f->t.calls->str, ==, "i,");
	/* stream management and anything else: no chain at all */
	g_assert_false(offer(f, "<a xmlns='urn:xmpp:sm:3' h='3'/>"));
	g_assert_false(offer(f, "<r xmlns='urn:xmpp:sm:3'/>"));
	g_assert_cmpstr(f->t.calls->str, ==, "");
}

static void test_sender_parsed(Fixture *f, gconstpointer data)
{
	offer(f, "<message from='Bob@Example.ORG/phone' type='chat' "
		 "id='x7'><body>hi</body></message>");
	g_assert_true(f->t.has_jid);
	/* as sent, and as a bare JID, normalised */
	g_assert_cmpstr(f->t.from, ==, "Bob@Example.ORG/phone");
	g_assert_cmpstr(f->t.bare, ==, "bob@example.org");
	g_assert_false(f->t.from_self);
	g_assert_null(f->t.jid_error);
	g_assert_cmpstr(f->t.id, ==, "x7");
	g_assert_cmpstr(f->t.type, ==, "chat");
}

static void test_from_self(Fixture *f, gconstpointer data)
{
	/* another client of ours */
	offer(f, "<message from='alice@example.org/laptop'><body>x</body>"
		 "</message>");
	g_assert_true(f->t.from_self);
	g_assert_cmpstr(f->t.bare, ==, OWN);
	/* no from: our own server on our behalf (RFC 6120 §8.1.2.1) */
	offer(f, "<message><body>x</body></message>");
	g_assert_true(f->t.from_self);
	g_assert_false(f->t.has_jid);
	g_assert_null(f->t.from);
	g_assert_null(f->t.jid_error);
	g_assert_null(f->t.type);
	g_assert_null(f->t.id);
	/* the same local part elsewhere is not us */
	offer(f, "<message from='alice@example.org.evil'><body>x</body>"
		 "</message>");
	g_assert_false(f->t.from_self);
}

static void test_invalid_sender(Fixture *f, gconstpointer data)
{
	const char *bad[] = {
		"<message from='@example.org'><body>x</body></message>",
		"<message from='a@b@example.org'><body>x</body></message>",
		"<message from='bob@'><body>x</body></message>",
		"<message from=''><body>x</body></message>",
	};

	for (guint i = 0; i < G_N_ELEMENTS(bad); i++) {
		offer(f, bad[i]);
		g_assert_false(f->t.has_jid);
		g_assert_null(f->t.bare);
		/* an invalid sender is never taken for ourselves */
		g_assert_false(f->t.from_self);
		g_assert_nonnull(f->t.jid_error);
		g_assert_cmpstr(f->t.jid_error, !=, "");
	}
}

static void test_time(Fixture *f, gconstpointer data)
{
	gint64 now = g_get_real_time() / G_USEC_PER_SEC;

	/* XEP-0203: the stamp is the time */
	offer(f, "<message from='bob@example.org'><body>x</body><delay "
		 "xmlns='urn:xmpp:delay' stamp='2020-01-02T03:04:05Z'/>"
		 "</message>");
	g_assert_cmpint(f->t.time, ==, 1577934245);
	/* another namespace's delay, or a stamp that is no time: now */
	offer(f, "<message from='bob@example.org'><body>x</body><delay "
		 "xmlns='urn:example:other' stamp='2020-01-02T03:04:05Z'/>"
		 "</message>");
	g_assert_cmpint(f->t.time, >=, now);
	g_assert_cmpint(f->t.time, <=, now + 5);
	offer(f, "<message from='bob@example.org'><body>x</body><delay "
		 "xmlns='urn:xmpp:delay' stamp='yesterday'/></message>");
	g_assert_cmpint(f->t.time, >=, now);
	g_assert_cmpint(f->t.time, <=, now + 5);
	/* only messages have a time */
	offer(f, "<presence from='bob@example.org'/>");
	g_assert_cmpint(f->t.time, ==, 0);
}

static void test_empty_chain(void)
{
	xmpp_ctx_t *ctx = xmpp_ctx_new(NULL, NULL);
	Dispatch *d = dispatch_new();
	xmpp_stanza_t *st = xmpp_stanza_new_from_string(
		ctx, "<message from='bob@example.org'><body>x</body></message>");

	/* nobody registered: nobody takes it, nothing breaks */
	g_assert_false(dispatch_stanza(d, NULL, OWN, st));
	xmpp_stanza_release(st);
	dispatch_free(d);
	dispatch_free(NULL);
	xmpp_ctx_free(ctx);
}

#define ADD(path, fn)                                                      \
	g_test_add(path, Fixture, NULL, fixture_set_up, fn, fixture_tear_down)

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	xmpp_initialize();
	ADD("/dispatch/order-and-claim", test_order_and_claim);
	ADD("/dispatch/kinds-have-their-own-chain",
	    test_kinds_have_their_own_chain);
	ADD("/dispatch/sender-parsed", test_sender_parsed);
	ADD("/dispatch/from-self", test_from_self);
	ADD("/dispatch/invalid-sender", test_invalid_sender);
	ADD("/dispatch/time", test_time);
	g_test_add_func("/dispatch/empty-chain", test_empty_chain);
	return g_test_run();
}
