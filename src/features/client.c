/* client.c - what every client does: say what it is (XEP-0115 caps in
 * our presence, XEP-0030 disco#info, XEP-0092 software version), answer
 * pings (XEP-0199), and answer every other request with an error. */
#include "xmpp/account_int.h"

#include <string.h>

#include "features/featureset.h"
#include "xmpp/dispatch.h"

/* XEP-0030: who we are and what we do.  Sorted: XEP-0115 hashes them in
 * this order. */
static const char *const disco_features[] = {
	/* (OMEMO: a contact's device list comes as it changes; an account
	 * without OMEMO lets it pass) */
	"eu.siacs.conversations.axolotl.devicelist+notify",
	"http://jabber.org/protocol/caps",
	"http://jabber.org/protocol/chatstates",
	XMPP_NS_DISCO_INFO,
	"http://jabber.org/protocol/nick+notify",
	"jabber:iq:version",
	"jabber:x:oob",
	"urn:xmpp:avatar:metadata+notify",
	"urn:xmpp:bookmarks:1+notify",
	"urn:xmpp:chat-markers:0",
	"urn:xmpp:delay",
	"urn:xmpp:mds:displayed:0+notify",
	"urn:xmpp:message-correct:0",
	"urn:xmpp:message-retract:1",
	"urn:xmpp:ping",
	"urn:xmpp:reactions:0",
	"urn:xmpp:receipts",
	"urn:xmpp:reply:0",
	"urn:xmpp:vcard4+notify",
};

#define CAPS_NODE "https://xmppfs.invalid/caps"

/* XEP-0115 §5.1: base64(SHA-1("client/pc//xmppfs<" + each feature "<")). */
static const char *caps_ver(void)
{
	static char *ver;
	GChecksum *ck;
	guint8 digest[20];
	gsize len = sizeof digest;

	if (ver)
		return ver;
	ck = g_checksum_new(G_CHECKSUM_SHA1);
	g_checksum_update(ck, (const guchar *)"client/pc//xmppfs<", -1);
	for (guint i = 0; i < G_N_ELEMENTS(disco_features); i++) {
		g_checksum_update(ck, (const guchar *)disco_features[i], -1);
		g_checksum_update(ck, (const guchar *)"<", 1);
	}
	g_checksum_get_digest(ck, digest, &len);
	g_checksum_free(ck);
	ver = g_base64_encode(digest, len);
	return ver;
}

static void add_caps(Account *a, xmpp_stanza_t *presence, const char *to)
{
	(void)to;
	xmpp_stanza_t *c = xmpp_stanza_new(a->ctx);

	xmpp_stanza_set_name(c, "c");
	xmpp_stanza_set_ns(c, "http://jabber.org/protocol/caps");
	xmpp_stanza_set_attribute(c, "hash", "sha-1");
	xmpp_stanza_set_attribute(c, "node", CAPS_NODE);
	xmpp_stanza_set_attribute(c, "ver", caps_ver());
	xmpp_stanza_add_child_ex(presence, c, 0);
}

static xmpp_stanza_t *disco_info_reply(Account *a, xmpp_stanza_t *iq)
{
	const char *const *features = disco_features;
	xmpp_stanza_t *q, *reply = acct_query_reply(a, iq, XMPP_NS_DISCO_INFO, &q);
	xmpp_stanza_t *id = xmpp_stanza_new(a->ctx);
	xmpp_stanza_t *asked = xmpp_stanza_get_child_by_name_and_ns(
		iq, "query", XMPP_NS_DISCO_INFO);
	const char *node = asked ? xmpp_stanza_get_attribute(asked, "node")
				 : NULL;

	xmpp_stanza_set_name(id, "identity");
	xmpp_stanza_set_attribute(id, "category", "client");
	xmpp_stanza_set_attribute(id, "type", "pc");
	xmpp_stanza_set_attribute(id, "name", "xmppfs");
	xmpp_stanza_add_child_ex(q, id, 0);
	if (node) /* node#ver of our caps, or any: echo it */
		xmpp_stanza_set_attribute(q, "node", node);
	for (guint i = 0; i < G_N_ELEMENTS(disco_features); i++) {
		xmpp_stanza_t *f = xmpp_stanza_new(a->ctx);
		xmpp_stanza_set_name(f, "feature");
		xmpp_stanza_set_attribute(f, "var", features[i]);
		xmpp_stanza_add_child_ex(q, f, 0);
	}
	return reply;
}

/* XEP-0092: name and version, not the operating system. */
static xmpp_stanza_t *version_reply(Account *a, xmpp_stanza_t *iq)
{
	xmpp_stanza_t *q, *reply = acct_query_reply(a, iq, "jabber:iq:version", &q);

	acct_add_text_child(a, q, "name", "xmppfs");
	acct_add_text_child(a, q, "version", XFS_VERSION);
	return reply;
}

/* Answer every get/set nobody handles, as RFC 6120 §8.2.3 requires; ping
 * (XEP-0199) gets its empty result. */
/* An iq that is no request (a result, an error) is no one's to answer;
 * an error to someone else's request is an event.  (An error to one of
 * our own requests goes to whoever made it: a write's result, the iq
 * file, or the log for what xmppfs asks by itself.) */
bool client_not_request_in(Account *a, const In *in)
{
	if ((in->type && (!strcmp(in->type, "get") || !strcmp(in->type, "set"))) &&
	    in->id)
		return false;
	if (in->type && !strcmp(in->type, "error") &&
	    !g_str_has_prefix(in->id ? in->id : "", "xfs-")) {
		g_autofree char *ev = acct_error_event_text(in->st, "iq");
		acct_event(a, "error", in->from ? in->from : acct_cfg(a)->jid,
			   ev);
	}
	return true; /* (a request without an id cannot be answered) */
}

static void reply(Account *a, xmpp_stanza_t *r)
{
	sm_send(a, r);
	xmpp_stanza_release(r);
}

/* Ping (XEP-0199), disco#info (XEP-0030), software version (XEP-0092). */
bool client_answer_in(Account *a, const In *in)
{
	bool get = !strcmp(in->type, "get");

	if (xmpp_stanza_get_child_by_name_and_ns(in->st, "ping", "urn:xmpp:ping"))
		reply(a, acct_answer(a, in->st, NULL));
	else if (get && xmpp_stanza_get_child_by_name_and_ns(
				in->st, "query", XMPP_NS_DISCO_INFO))
		reply(a, disco_info_reply(a, in->st));
	else if (get && xmpp_stanza_get_child_by_name_and_ns(
				in->st, "query", "jabber:iq:version"))
		reply(a, version_reply(a, in->st));
	else
		return false;
	return true;
}

/* Every get or set nobody took gets an error, as RFC 6120 §8.2.3
 * requires (the last of the chain). */
bool client_unhandled_in(Account *a, const In *in)
{
	reply(a, acct_answer(a, in->st, "feature-not-implemented"));
	return true;
}

const Feature client_feature = {
	.name = "a client like any (caps, disco, version, ping)",
	.own_presence = add_caps,
};
