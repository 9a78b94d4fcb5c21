/* muc_request.c - what a file operation on rooms/ asks of a room
 * (muc_request): mkdir joins, rmdir leaves, and writes change the nick
 * or the subject, invite (XEP-0249), kick or ban (XEP-0045 §8.2, §9.1).
 * A join, a leave, a nick or a subject waits in muc.c's room_waits; a
 * kick or a ban waits for the room's iq answer.  [any]: muc_request
 * waits for the pool thread, which runs the rest. */
#include "features/muc.h"
#include "features/muc_int.h"

#include <errno.h>
#include <string.h>

#include "base/jid.h"
#include "base/text.h"
#include "features/kinds.h"
#include "store/history.h"
#include "xmpp/await.h"
#include "xmpp/pool.h"

/* How long a kick or a ban waits for the room's answer: longer than the
 * write waits (pool_call). */
#define MUC_ADMIN_TIMEOUT_S 30

static void room_join(Account *a, const char *room, PoolReq *r)
{
	Muc *mu = muc_of(a);
	const CfgRoom *cr = cfg_room(acct_cfg(a), room);
	const char *nick = cr && cr->nick ? cr->nick : acct_cfg(a)->nick;

	if (rooms_has(mu->rooms, room)) {
		pool_complete(r, -EEXIST);
		return;
	}
	if (!acct_is_online(a)) {
		pool_complete(r, -ENOTCONN);
		return;
	}
	rooms_set(mu->rooms, room, nick);
	muc_start_join(a, room, nick,
		       muc_room_wait(a, room, r, ACCT_ROOM_JOIN));
}

static void room_leave(Account *a, const char *room, PoolReq *r)
{
	Muc *mu = muc_of(a);

	if (!acct_is_online(a) || (!rooms_joined(mu->rooms, room) &&
				   !g_hash_table_contains(mu->waits, room))) {
		/* not in it (offline, or a rejoin waits for its retry):
		 * nothing to tell the room */
		muc_forget(a, room);
		if (r)
			pool_complete(r, 0);
		return;
	}
	/* the room stays known until the server confirms (muc_answered):
	 * its confirmation is a presence from the room */
	muc_send_leave(a, room);
	muc_room_wait(a, room, r, ACCT_ROOM_LEAVE);
}

/* A nick change is a presence to the new ROOM/NICK; the server answers
 * with our presence under the new nick, or an error from it. */
static void room_nick(Account *a, const char *room, const char *old,
		      const char *nick, PoolReq *r)
{
	g_autofree char *to = g_strdup_printf("%s/%s", room, nick);
	xmpp_stanza_t *p;
	RoomWait *w;

	if (!strcmp(old, nick)) {
		pool_complete(r, 0);
		return;
	}
	p = acct_own_presence(a, to);
	sm_send(a, p);
	xmpp_stanza_release(p);
	w = muc_room_wait(a, room, r, ACCT_ROOM_NICK);
	w->value = g_strdup(nick);
	w->old = g_strdup(old);
}

/* A subject change is a groupchat message with only a <subject/>; the
 * room answers by sending it to everyone, us too, or with an error. */
static void room_subject(Account *a, const char *room, const char *subject,
			 PoolReq *r)
{
	Muc *mu = muc_of(a);
	g_autofree char *now = rooms_subject(mu->rooms, room);
	g_autofree char *shown = muc_one_line(subject);
	g_autofree char *id = acct_next_id(a);
	xmpp_stanza_t *msg;
	RoomWait *w;

	/* Prosody sends nothing for a change that changes nothing */
	if (!g_strcmp0(now ? now : "", shown)) {
		pool_complete(r, 0);
		return;
	}
	msg = xmpp_message_new(a->ctx, "groupchat", room, id);
	acct_add_text_child(a, msg, "subject", subject);
	sm_send(a, msg);
	xmpp_stanza_release(msg);
	w = muc_room_wait(a, room, r, ACCT_ROOM_SUBJECT);
	w->id = g_steal_pointer(&id);
	w->value = g_steal_pointer(&shown);
}

/* Split "FIRST<sep>REST" at the first of @seps: FIRST (new), and REST
 * (in @line; NULL when there is none or it is empty). */
static char *split_line(const char *line, const char *seps, const char **rest)
{
	size_t n = strcspn(line, seps);

	*rest = line[n] && line[n + 1] ? line + n + 1 : NULL;
	return g_strndup(line, n);
}

/* The room's answer to a kick or a ban (await.c takes it only from the
 * room): the write that asked gets it. */
static void admin_answer(Account *a, xmpp_stanza_t *iq, int err, void *r)
{
	pool_complete(r, await_errno(iq, err));
}

/* A kick (@value "NICK[<TAB>REASON]": its role becomes none) or a ban
 * (@value "JID[ REASON]": its affiliation becomes outcast), XEP-0045
 * §8.2 and §9.1; @r is completed with the room's answer. */
static void room_admin(Account *a, const char *room, AcctRoomOp op,
		       const char *value, PoolReq *r)
{
	const char *reason;
	g_autofree char *who = split_line(value, op == ACCT_ROOM_KICK
							 ? "\t" : " \t",
					  &reason);
	g_autofree char *nick = NULL, *bare = NULL;
	xmpp_stanza_t *iq, *q, *item;

	if (!acct_is_online(a)) {
		pool_complete(r, -ENOTCONN);
		return;
	}
	if (op == ACCT_ROOM_KICK)
		nick = jid_normalize_resource(who, NULL);
	else
		bare = jid_normalize_bare(who, NULL);
	if (!nick && !bare) {
		pool_complete(r, -EINVAL);
		return;
	}
	iq = xmpp_iq_new(a->ctx, "set", NULL);
	xmpp_stanza_set_to(iq, room);
	q = xmpp_stanza_new(a->ctx);
	xmpp_stanza_set_name(q, "query");
	xmpp_stanza_set_ns(q, "http://jabber.org/protocol/muc#admin");
	item = xmpp_stanza_new(a->ctx);
	xmpp_stanza_set_name(item, "item");
	if (nick) {
		xmpp_stanza_set_attribute(item, "nick", nick);
		xmpp_stanza_set_attribute(item, "role", "none");
	} else {
		xmpp_stanza_set_attribute(item, "jid", bare);
		xmpp_stanza_set_attribute(item, "affiliation", "outcast");
	}
	if (reason)
		acct_add_text_child(a, item, "reason", reason);
	xmpp_stanza_add_child_ex(q, item, 0);
	xmpp_stanza_add_child_ex(iq, q, 0);
	await_iq(a, iq, MUC_ADMIN_TIMEOUT_S, admin_answer, r, NULL);
	xmpp_stanza_release(iq);
}

/* XEP-0425, in the form of 0.3 (urn:xmpp:message-moderate:1) and, if
 * the room knows only that, of 0.2 (the fasten form that Debian 12's
 * mod_muc_moderation speaks). */
#define NS_MODERATE "urn:xmpp:message-moderate:1"
#define NS_MODERATE0 "urn:xmpp:message-moderate:0"
#define NS_RETRACT "urn:xmpp:message-retract:1"
#define NS_RETRACT0 "urn:xmpp:message-retract:0"
#define NS_FASTEN "urn:xmpp:fasten:0"

typedef struct {
	char *room, *sid, *reason;
	PoolReq *r;
	bool old; /* the 0.2 form went */
} Moderation;

static void moderation_free(void *data)
{
	Moderation *m = data;

	g_free(m->room);
	g_free(m->sid);
	g_free(m->reason);
	g_free(m);
}

static void moderate_send(Account *a, Moderation *m);

static void moderate_answer(Account *a, xmpp_stanza_t *iq, int err,
			    void *data)
{
	Moderation *m = data;
	int res = await_errno(iq, err);

	if ((res == -ENOSYS || res == -EHOSTUNREACH || res == -EINVAL) &&
	    !m->old) {
		/* not this form: the older one */
		Moderation *again = g_new0(Moderation, 1);
		*again = *m;
		again->room = g_strdup(m->room);
		again->sid = g_strdup(m->sid);
		again->reason = g_strdup(m->reason);
		again->old = true;
		m->r = NULL;
		moderate_send(a, again);
		return;
	}
	if (res == -ENOSYS || res == -EHOSTUNREACH)
		res = -EOPNOTSUPP; /* a room without moderation */
	if (m->r)
		pool_complete(m->r, res);
	m->r = NULL;
}

static void moderate_send(Account *a, Moderation *m)
{
	xmpp_stanza_t *iq = xmpp_iq_new(a->ctx, "set", NULL), *mod;

	xmpp_stanza_set_to(iq, m->room);
	if (m->old) {
		xmpp_stanza_t *apply = acct_add_child(a, iq, "apply-to",
						      NS_FASTEN);
		xmpp_stanza_set_attribute(apply, "id", m->sid);
		mod = acct_add_child(a, apply, "moderate", NS_MODERATE0);
		acct_add_child(a, mod, "retract", NS_RETRACT0);
	} else {
		mod = acct_add_child(a, iq, "moderate", NS_MODERATE);
		xmpp_stanza_set_attribute(mod, "id", m->sid);
		acct_add_child(a, mod, "retract", NS_RETRACT);
	}
	if (m->reason)
		acct_add_text_child(a, mod, "reason", m->reason);
	await_iq(a, iq, MUC_ADMIN_TIMEOUT_S, moderate_answer, m,
		 moderation_free);
	xmpp_stanza_release(iq);
}

static void room_moderate(Account *a, const char *room, const char *value,
			  PoolReq *r)
{
	const char *reason;
	Moderation *m;

	if (!acct_is_online(a)) {
		pool_complete(r, -ENOTCONN);
		return;
	}
	m = g_new0(Moderation, 1);
	m->room = g_strdup(room);
	m->sid = split_line(value, "\t", &reason);
	m->reason = g_strdup(reason);
	m->r = r;
	moderate_send(a, m);
}

/* A direct invitation (XEP-0249) to @value, "JID[ REASON]", with the
 * room's password when we have one, and a body for clients that do not
 * know invitations.  0 or -EINVAL. */
static int room_invite(Account *a, const char *room, const char *value)
{
	const char *reason;
	g_autofree char *who = split_line(value, " \t", &reason);
	g_autoptr(Jid) jid = jid_parse(who, NULL);
	g_autofree char *to = jid ? jid_full(jid) : NULL;
	g_autofree char *body = NULL;
	const char *password = muc_room_password(a, room);
	xmpp_stanza_t *msg, *x;

	if (!jid)
		return -EINVAL;
	msg = xmpp_message_new(a->ctx, NULL, to, NULL);
	body = g_strdup_printf("%s invites you to %s%s%s", acct_cfg(a)->jid,
			       room, reason ? ": " : "", reason ? reason : "");
	xmpp_message_set_body(msg, body);
	x = xmpp_stanza_new(a->ctx);
	xmpp_stanza_set_name(x, "x");
	xmpp_stanza_set_ns(x, NS_CONFERENCE);
	xmpp_stanza_set_attribute(x, "jid", room);
	if (reason)
		xmpp_stanza_set_attribute(x, "reason", reason);
	if (password)
		xmpp_stanza_set_attribute(x, "password", password);
	xmpp_stanza_add_child_ex(msg, x, 0);
	sm_send(a, msg);
	xmpp_stanza_release(msg);
	return 0;
}

static void room_op(Account *a, const char *room, AcctRoomOp op,
		    const char *value, PoolReq *r)
{
	Muc *mu = muc_of(a);
	g_autofree char *nick = NULL;
	RoomWait *w;

	POOL_ASSERT();
	if (op == ACCT_ROOM_JOIN) {
		room_join(a, room, r);
		return;
	}
	nick = rooms_nick(mu->rooms, room);
	if (!nick) {
		pool_complete(r, -ENOENT);
		return;
	}
	if (op == ACCT_ROOM_INVITE) {
		pool_complete(r, acct_is_online(a) ? room_invite(a, room, value)
						   : -ENOTCONN);
		return;
	}
	if (op == ACCT_ROOM_KICK || op == ACCT_ROOM_BAN) {
		room_admin(a, room, op, value, r);
		return;
	}
	if (op == ACCT_ROOM_MODERATE) {
		room_moderate(a, room, value, r);
		return;
	}
	w = g_hash_table_lookup(mu->waits, room);
	if (w && (w->req || op != ACCT_ROOM_LEAVE)) {
		/* one change at a time; a leave replaces a rejoin */
		pool_complete(r, -EBUSY);
		return;
	}
	if (op == ACCT_ROOM_LEAVE) {
		room_leave(a, room, r);
		return;
	}
	if (!acct_is_online(a) || !rooms_joined(mu->rooms, room)) {
		/* not in the room: nobody to answer (and a presence to it
		 * without the MUC element would be an old-style join) */
		pool_complete(r, -ENOTCONN);
		return;
	}
	if (op == ACCT_ROOM_NICK)
		room_nick(a, room, nick, value, r);
	else
		room_subject(a, room, value, r);
}

void muc_join_bookmarked(Account *a, const char *room, const char *nick,
			 const char *password)
{
	Muc *mu = muc_of(a);
	const CfgRoom *cr = cfg_room(acct_cfg(a), room);

	POOL_ASSERT();
	if (password && *password)
		g_hash_table_replace(mu->bookmark_passwords, g_strdup(room),
				     g_strdup(password));
	else
		g_hash_table_remove(mu->bookmark_passwords, room);
	if (rooms_has(mu->rooms, room) || !acct_is_online(a))
		return;
	/* the config's nick for the room comes first, as for mkdir: it is
	 * this machine's choice */
	if (cr && cr->nick)
		nick = cr->nick;
	if (!nick || !*nick)
		nick = acct_cfg(a)->nick;
	rooms_set(mu->rooms, room, nick);
	/* nobody waits: a refusal for good puts it out (a `removed`
	 * event), anything else is tried again, as a rejoin is */
	muc_start_join(a, room, nick,
		       muc_room_wait(a, room, NULL, ACCT_ROOM_JOIN));
}

void muc_leave_unbookmarked(Account *a, const char *room)
{
	Muc *mu = muc_of(a);
	RoomWait *w = g_hash_table_lookup(mu->waits, room);

	POOL_ASSERT();
	g_hash_table_remove(mu->bookmark_passwords, room);
	if (!rooms_has(mu->rooms, room) || (w && w->op == ACCT_ROOM_LEAVE))
		return;
	if (w && w->req) /* a change that waits ends first */
		muc_answered(a, room, -ECONNRESET);
	room_leave(a, room, NULL);
}

typedef struct {
	char *room;
	AcctRoomOp op;
	char *value;
} RoomJob;

static void room_run(Account *a, void *data, PoolReq *r)
{
	RoomJob *j = data;

	room_op(a, j->room, j->op, j->value, r);
}

static void room_job_free(void *data)
{
	RoomJob *j = data;

	g_free(j->room);
	g_free(j->value);
	g_free(j);
}

int muc_request(Pool *p, Account *a, const char *room, AcctRoomOp op,
		const char *value)
{
	RoomJob *j = g_new0(RoomJob, 1);

	j->room = g_strdup(room);
	j->op = op;
	j->value = g_strdup(value);
	return pool_call(p, a, room_run, j, room_job_free);
}

int muc_moderate(Pool *p, Account *a, const char *room, const char *line)
{
	Muc *mu = muc_of(a);
	const char *tab = strchr(line, '\t');
	g_autofree char *id =
		g_strndup(line, tab ? (gsize)(tab - line) : strlen(line));
	g_autofree char *value = NULL;
	Hist *h = hist_set_get(mu->hists, room, false, NULL);
	g_auto(Found) f = {0};

	if (!*id || strchr(line, '\n') || (tab && strchr(tab + 1, '\t')))
		return -EINVAL;
	if (!text_is_clean(line, strlen(line), false))
		return -EILSEQ;
	if (!h || !kinds_find(h, id, NULL, &f))
		return -ENOENT;
	if (!strcmp(f.sid, "-"))
		return -EINVAL; /* the room gave it no id to name it by */
	value = g_strdup_printf("%s%s%s", f.sid, tab ? "\t" : "",
				tab ? tab + 1 : "");
	return muc_request(p, a, room, ACCT_ROOM_MODERATE, value);
}
