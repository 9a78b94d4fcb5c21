/* muc_ping.c - MUC self-ping (XEP-0410): does a quiet room still have us?
 *
 * A room's service that restarts, or a MUC component that is reloaded,
 * may forget its occupants without a word to them: to us the room just
 * goes quiet, for good.  So a joined room from which nothing has come for
 * room_ping seconds (muc_heard, muc_log.c: any stanza from the room or an
 * occupant but an error) is sent a ping to our own occupant JID
 * (ROOM/NICK).  The room answers it itself (the self-ping optimization of
 * Prosody and ejabberd) or passes it on to a client of ours, which
 * answers.  The answer, as XEP-0410 §3.2 reads it:
 *
 *   result, service-unavailable, feature-not-implemented: still in;
 *   remote-server-not-found, remote-server-timeout, or none within
 *     ROOM_PING_TIMEOUT_S: the service is unreachable; we take ourselves
 *     out, to be let in again on the rejoin backoff (muc.c), which keeps
 *     trying until the room answers;
 *   any other error (not-acceptable above all; not-allowed, bad-request,
 *     item-not-found...): we are out.
 *
 * The XEP counts item-not-found as "in, under a nick another client of
 * ours just chose".  Such a change reaches us as a presence (303) before
 * the room's answer to a ping that came after it, so we know our new nick
 * by then: an answer about a nick that is no longer ours says nothing, and
 * the next quiet period asks again.  For the nick we have, item-not-found
 * is what Prosody and ejabberd say of a room that no longer exists: out.
 *
 * Out is as after a lost stream, for this room alone: not joined, its
 * occupants gone, what we sent it and it did not reflect back waits again
 * (muc_out.c); a `rejoin` event; and a join that nobody waits for, which
 * first reads the room's archive, so that nothing said meanwhile is lost
 * and nothing is logged twice (muc_archive.c).
 *
 * One ping per room at a time, and none while a join, leave or change
 * waits for the room: its answer says more, and a ping sent during a nick
 * change would ask about a nick that is on its way out (XEP-0410 §4).
 * The last file of group chat (muc_int.h): only the core calls it, through
 * room_ping_feature.  Pool thread only. */
#include "features/featureset.h"
#include "features/muc_int.h"

#include <errno.h>
#include <string.h>

#include "base/log.h"
#include "xmpp/await.h"

#define NS_PING "urn:xmpp:ping"
/* the wait for an answer: SPEC's for an iq; a room on another server
 * answers over s2s, which may have to connect first */
#define ROOM_PING_TIMEOUT_S 30

/* What muc_ping.c keeps of each account (acct_state).  Pool thread. */
typedef struct {
	GHashTable *pings; /* room -> the nick its ping went to, while the
			    * ping waits for its answer (await.c) */
} RoomPings;

typedef enum { PING_IN, PING_OUT, PING_UNREACHABLE } PingVerdict;

static RoomPings *pings_of(Account *a)
{
	return acct_state(a, &room_ping_feature);
}

static gint64 quiet_us(Account *a)
{
	return (gint64)acct_cfg(a)->room_ping * G_USEC_PER_SEC;
}

/* @room may be asked: joined, not asked already, no request waiting. */
static bool may_ping(Account *a, const char *room)
{
	Muc *mu = muc_of(a);

	return rooms_joined(mu->rooms, room) &&
	       !g_hash_table_contains(mu->waits, room) &&
	       !g_hash_table_contains(pings_of(a)->pings, room);
}

/* The condition of an error stanza (the first child of <error> that is
 * not its text), or NULL. */
static const char *error_condition(xmpp_stanza_t *st)
{
	xmpp_stanza_t *err = xmpp_stanza_get_child_by_name(st, "error");

	for (xmpp_stanza_t *c = err ? xmpp_stanza_get_children(err) : NULL; c;
	     c = xmpp_stanza_get_next(c))
		if (xmpp_stanza_is_tag(c) &&
		    strcmp(xmpp_stanza_get_name(c), "text"))
			return xmpp_stanza_get_name(c);
	return NULL;
}

/* What the answer @iq (NULL: none in time) says (XEP-0410 §3.2); in
 * @why, for the event, the condition. */
static PingVerdict ping_verdict(xmpp_stanza_t *iq, const char **why)
{
	const char *cond;

	*why = "no answer";
	if (!iq)
		return PING_UNREACHABLE;
	if (!g_strcmp0(xmpp_stanza_get_type(iq), "result"))
		return PING_IN;
	cond = error_condition(iq);
	*why = cond ? cond : "an error";
	/* the room passed it on to a client of ours without ping */
	if (!g_strcmp0(cond, "service-unavailable") ||
	    !g_strcmp0(cond, "feature-not-implemented"))
		return PING_IN;
	if (!g_strcmp0(cond, "remote-server-not-found") ||
	    !g_strcmp0(cond, "remote-server-timeout"))
		return PING_UNREACHABLE;
	return PING_OUT;
}

/* The room no longer has us (@why): out of it as after a lost stream, an
 * event, and back in with the archive first: now, or (@later) on the
 * rejoin backoff. */
static void room_lost(Account *a, const char *room, const char *nick,
		      const char *why, bool later)
{
	Muc *mu = muc_of(a);
	g_autofree char *text = NULL;

	rooms_set_joined(mu->rooms, room, false);
	muc_unreflected_back(a, room);
	if (later)
		text = g_strdup_printf("the room does not answer (self-ping: "
				       "%s); joining again in %d s",
				       why, muc_schedule_retry(a));
	else
		text = g_strdup_printf("the room no longer has us (self-ping: "
				       "%s); joining again", why);
	xfs_info("%s: %s: %s", acct_cfg(a)->jid, room, text);
	acct_event(a, "rejoin", room, text);
	if (!later)
		muc_start_join(a, room, nick,
			       muc_room_wait(a, room, NULL, ACCT_ROOM_JOIN));
}

/* The answer to @room's ping (await.c took it only from ROOM/NICK). */
static void ping_answer(Account *a, xmpp_stanza_t *iq, int err, void *room)
{
	Muc *mu = muc_of(a);
	gpointer key = NULL, value = NULL;
	g_autofree char *pinged = NULL, *nick = NULL;
	const char *why;
	PingVerdict v;

	if (!g_hash_table_steal_extended(pings_of(a)->pings, room, &key,
					 &value))
		return;
	g_free(key);
	pinged = value;
	nick = rooms_nick(mu->rooms, room);
	/* the stream went (the reconnect rejoins); we left or were put
	 * out; a request for the room waits, whose answer says more; or
	 * the answer is about a nick that is no longer ours */
	if (err == -ECONNRESET || !nick || !rooms_joined(mu->rooms, room) ||
	    g_hash_table_contains(mu->waits, room) || strcmp(nick, pinged))
		return;
	v = ping_verdict(iq, &why);
	if (v == PING_IN)
		muc_heard(a, room, NULL); /* quiet again from now */
	else
		room_lost(a, room, nick, why, v == PING_UNREACHABLE);
}

/* <iq type='get' to='ROOM/NICK'><ping xmlns='urn:xmpp:ping'/></iq> */
static void send_ping(Account *a, const char *room)
{
	Muc *mu = muc_of(a);
	g_autofree char *nick = rooms_nick(mu->rooms, room);
	g_autofree char *to = NULL;
	xmpp_stanza_t *iq;

	if (!nick)
		return;
	to = g_strdup_printf("%s/%s", room, nick);
	iq = xmpp_iq_new(a->ctx, "get", NULL);
	xmpp_stanza_set_to(iq, to);
	acct_add_child(a, iq, "ping", NS_PING);
	g_hash_table_replace(pings_of(a)->pings, g_strdup(room),
			     g_steal_pointer(&nick));
	await_iq(a, iq, ROOM_PING_TIMEOUT_S, ping_answer, g_strdup(room),
		 g_free);
	xmpp_stanza_release(iq);
}

/* When the first joined room will have been quiet for room_ping
 * (G_MAXINT64: none, or the ping is off). */
static gint64 ping_due(Account *a)
{
	Muc *mu = muc_of(a);
	gint64 quiet = quiet_us(a), due = G_MAXINT64;
	GHashTableIter it;
	gpointer k, v;

	if (!quiet || !acct_is_online(a))
		return G_MAXINT64;
	g_hash_table_iter_init(&it, mu->heard);
	while (g_hash_table_iter_next(&it, &k, &v))
		if (may_ping(a, k))
			due = MIN(due, *(gint64 *)v + quiet);
	return due;
}

/* Ping every room quiet for room_ping (as ping_due counts them). */
static void ping_tick(Account *a, gint64 now)
{
	Muc *mu = muc_of(a);
	gint64 quiet = quiet_us(a);
	g_autoptr(GPtrArray) due = g_ptr_array_new_with_free_func(g_free);
	GHashTableIter it;
	gpointer k, v;

	if (!quiet || !acct_is_online(a))
		return;
	g_hash_table_iter_init(&it, mu->heard);
	while (g_hash_table_iter_next(&it, &k, &v)) {
		if (!rooms_has(mu->rooms, k))
			g_hash_table_iter_remove(&it); /* no longer ours */
		else if (may_ping(a, k) && now >= *(gint64 *)v + quiet)
			g_ptr_array_add(due, g_strdup(k));
	}
	for (guint i = 0; i < due->len; i++)
		send_ping(a, g_ptr_array_index(due, i));
}

static void ping_attach(Account *a, const char *dir)
{
	(void)dir;
	pings_of(a)->pings = g_hash_table_new_full(g_str_hash, g_str_equal,
						   g_free, g_free);
}

static void ping_detach(Account *a)
{
	g_clear_pointer(&pings_of(a)->pings, g_hash_table_unref);
}

/* The stream went: its pings ended with it (await.c), and no room has us
 * until it is joined again, which its presences say. */
static void ping_offline(Account *a)
{
	g_hash_table_remove_all(pings_of(a)->pings);
	g_hash_table_remove_all(muc_of(a)->heard);
}

const Feature room_ping_feature = {
	.name = "MUC self-ping (XEP-0410)",
	.state_size = sizeof(RoomPings),
	.attach = ping_attach,
	.detach = ping_detach,
	.offline = ping_offline,
	.due = ping_due,
	.tick = ping_tick,
};
