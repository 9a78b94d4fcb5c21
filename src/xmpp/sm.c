/* sm.c - see sm.h.
 *
 * XEP-0198 is ours, not libstrophe's: 0.12 keeps the text of every stanza
 * it sent for a resumption it cannot export, never trims that queue
 * (~850 bytes a message for the life of the stream), and tells nobody
 * when the server acknowledged anything.  So its SM is disabled
 * (login.c, conn_flags) and the counts are kept here, from the stanzas
 * this file sends and the ones the account's handler sees: never from
 * libstrophe's log, whose "SENT:" lines come when the socket is written,
 * long after xmpp_send, so a count taken from them gave a message the
 * number of a stanza sent before it.
 *
 * Without stream management (a server that does not offer it, or answers
 * <enable/> with <failed/>) the acknowledgement is the answer to a ping
 * sent after the messages: a server handles one stream's stanzas in
 * order. */
#include "xmpp/sm.h"

#include <string.h>

#include "base/log.h"
#include "xmpp/account_int.h"
#include "xmpp/pool.h"
#include "xmpp/strophe012.h"

#define NS_SM "urn:xmpp:sm:3"

static bool is_stanza_name(const char *name)
{
	return name && (!strcmp(name, "message") || !strcmp(name, "presence") ||
			!strcmp(name, "iq"));
}

void sm_reset(Account *a)
{
	g_free(a->sm.barrier);
	a->sm = (Sm){0};
}

void sm_offered(Account *a)
{
	a->sm.offered = true;
}

/* @len bytes of a stanza onto the stream, and after a large one the
 * space that keeps libstrophe 0.12 writing it out (strophe012.h). */
static void queue(Account *a, const char *xml, size_t len)
{
	xmpp_send_raw(a->conn, xml, len);
	if (len > STROPHE012_PARTIAL_WRITE_MIN)
		xmpp_send_raw_string(a->conn, STROPHE012_TRAILER);
}

void sm_send(Account *a, xmpp_stanza_t *st)
{
	char *buf;
	size_t len;

	POOL_ASSERT();
	if (!a->conn) {
		/* no stream (a caller's bug, or a test of the chain without a
		 * server): nothing to send on, and nothing counted */
		xfs_debug("%s: no stream: a <%s/> not sent", a->cfg->jid,
			  xmpp_stanza_get_name(st));
		return;
	}
	/* what xmpp_send does, with the length in hand */
	if (xmpp_stanza_to_text(st, &buf, &len) != XMPP_EOK) {
		xfs_warn("%s: a <%s/> could not be written out: no memory",
			 a->cfg->jid, xmpp_stanza_get_name(st));
		return;
	}
	queue(a, buf, len);
	xmpp_free(a->ctx, buf);
	if (is_stanza_name(xmpp_stanza_get_name(st)))
		a->sm.out++;
}

void sm_send_raw(Account *a, const char *xml)
{
	POOL_ASSERT();
	queue(a, xml, strlen(xml));
	a->sm.out++; /* xmlcheck let only stanzas through */
}

void sm_start(Account *a)
{
	if (!a->sm.offered) {
		a->sm.barriers = true;
		return;
	}
	xmpp_send_raw_string(a->conn, "<enable xmlns='" NS_SM "'/>");
	/* XEP-0198 §4: the outbound count starts at <enable/> */
	a->sm.enabling = true;
	a->sm.out = 0;
}

/* The server has handled our first @h stanzas of this stream: their
 * messages leave the outbox. */
static void acked(Account *a, guint32 h)
{
	OutMsg *m;

	if (h > a->sm.out) {
		xfs_warn("%s: the server acknowledged %u stanzas of the %u we "
			 "sent; taken as %u", a->cfg->jid, h, a->sm.out,
			 a->sm.out);
		h = a->sm.out;
	}
	if (h <= a->sm.acked)
		return;
	a->sm.acked = h;
	while ((m = g_queue_peek_head(&a->inflight)) && m->seq <= h) {
		g_queue_pop_head(&a->inflight);
		outbox_done(a->outbox, m->item->id);
		acct_outmsg_free(m);
	}
}

/* "<a h='12'/>": 12 as a count; false for anything else. */
static bool parse_h(xmpp_stanza_t *st, guint32 *h)
{
	const char *s = xmpp_stanza_get_attribute(st, "h");
	char *end;
	guint64 v;

	if (!s || !g_ascii_isdigit(*s))
		return false;
	v = g_ascii_strtoull(s, &end, 10);
	if (*end || v > G_MAXUINT32)
		return false;
	*h = (guint32)v;
	return true;
}

static void sm_element(Account *a, xmpp_stanza_t *st, const char *name)
{
	guint32 h;

	if (!strcmp(name, "enabled") && a->sm.enabling) {
		a->sm.on = true;
		a->sm.in = 0; /* §4: the inbound count starts at <enabled/> */
		a->sm.ask = a->inflight.length > 0;
	} else if (!strcmp(name, "failed") && a->sm.enabling) {
		/* no stream management on this stream: what was sent since
		 * <enable/> is acknowledged by a ping after it */
		xfs_info("%s: the server refused stream management; messages "
			 "are acknowledged by pings", a->cfg->jid);
		a->sm.enabling = a->sm.on = false;
		a->sm.barriers = true;
	} else if (!strcmp(name, "a") && a->sm.on && parse_h(st, &h)) {
		acked(a, h);
	} else if (!strcmp(name, "r") && a->sm.on) {
		a->sm.r_pending = true;
	}
}

void sm_received(Account *a, xmpp_stanza_t *st)
{
	const char *name = xmpp_stanza_get_name(st);

	if (!name)
		return;
	if (!g_strcmp0(xmpp_stanza_get_ns(st), NS_SM))
		sm_element(a, st, name);
	else if (a->sm.on && is_stanza_name(name))
		a->sm.in++;
}

/* The answer to a barrier ping: everything sent before it is handled. */
static int barrier_answer(xmpp_conn_t *conn, xmpp_stanza_t *iq, void *ud)
{
	Account *a = ud;
	const char *from = xmpp_stanza_get_from(iq);
	const char *domain = acct_domain(a);

	(void)conn;
	/* an id handler fires for any stanza with the id, from anyone: the
	 * answer comes from our server (or our own account) */
	if (strcmp(xmpp_stanza_get_name(iq), "iq") ||
	    (from && g_ascii_strcasecmp(from, domain) && !acct_from_self(a, iq)))
		return 1;
	if (g_strcmp0(xmpp_stanza_get_id(iq), a->sm.barrier))
		return 0;
	g_clear_pointer(&a->sm.barrier, g_free);
	acked(a, a->sm.barrier_out);
	return 0;
}

static void send_barrier(Account *a)
{
	xmpp_stanza_t *iq;

	a->sm.barrier = acct_next_id(a);
	iq = acct_ping_new(a, a->sm.barrier);
	xmpp_id_handler_add(a->conn, barrier_answer, a->sm.barrier, a);
	sm_send(a, iq);
	xmpp_stanza_release(iq);
	a->sm.barrier_out = a->sm.out;
}

/* Something sent and not yet covered by an acknowledgement asked for. */
static bool unasked(Account *a)
{
	OutMsg *last = g_queue_peek_tail(&a->inflight);

	return last && !(a->sm.barrier && last->seq <= a->sm.barrier_out);
}

bool sm_after_run_wanted(Account *a)
{
	return a->sm.r_pending || a->sm.ask ||
	       (a->sm.barriers && !a->sm.barrier && unasked(a));
}

void sm_after_run(Account *a)
{
	POOL_ASSERT();
	if (!a->conn || a->conn_dead || !a->was_online)
		return;
	if (a->sm.r_pending)
		sm_ack_all(a);
	if (a->sm.on && a->sm.ask && a->inflight.length)
		xmpp_send_raw_string(a->conn, "<r xmlns='" NS_SM "'/>");
	/* one ping at a time: its answer sends the next if more went out */
	if (a->sm.barriers && !a->sm.barrier && unasked(a))
		send_barrier(a);
	a->sm.r_pending = false;
	a->sm.ask = false;
}

void sm_track(Account *a, OutMsg *m)
{
	m->sent_no = ++a->messages_sent;
	m->seq = a->sm.out;
	m->sent_at = g_get_real_time() / G_USEC_PER_SEC;
	g_queue_push_tail(&a->inflight, m);
	a->sm.ask = a->sm.ask || a->sm.on;
}

void sm_ack_all(Account *a)
{
	if (a->sm.on)
		xmpp_send_raw_string(a->conn, "<a xmlns='" NS_SM "' h='%u'/>",
				     a->sm.in);
}

void sm_lost(Account *a)
{
	OutMsg *m;

	/* after what an earlier attempt left there: the order of acceptance */
	while ((m = g_queue_pop_head(&a->inflight)))
		g_queue_push_tail(&a->held, m);
	sm_reset(a);
}
