/* test_chain.c - an account's features, as main.c gives them
 * (featureset_attach), on stanzas built in memory, without a server:
 * each stanza goes through the account's stanza chain on the pool thread
 * (pool_call), and the test reads what it left on disk, as a user would.
 *
 * The account points at a port where nothing listens, and is then set
 * offline (status), so it has no stream and sends nothing; what is tried here is what the features
 * make of what arrives: a conversation's record, a message dropped for a
 * bad sender, a carbon copy only from our own account, an archive result
 * nobody asked for, the same archived message twice, a room's message
 * outside any room, the time of a delayed message, an error presence as
 * an event; and the await engine: an answer taken only from whom the
 * request went to, once, and a deadline. */
#include <arpa/inet.h>
#include <errno.h>
#include <glib.h>
#include <glib/gstdio.h>
#include <netinet/in.h>
#include <string.h>
#include <strophe.h>
#include <sys/socket.h>
#include <unistd.h>

#include "base/config.h"
#include "features/featureset.h"
#include "store/history.h"
#include "store/omemo_store.h"
#include "xmpp/account.h"
#include "xmpp/await.h"
#include "xmpp/dispatch.h"
#include "xmpp/pool.h"
#include "xmpp/watchdog.h"

#define OWN "alice@chain.test"

static char *dir, *datadir;
static CfgFile *cfg; /* the pool keeps pointers into it */
static Pool *pool;
static Account *account; /* alice */
static xmpp_ctx_t *ctx; /* the pool thread's, for the test's stanzas */
static int refuser = -1;

/* A TCP port of 127.0.0.1 bound but not listening: connections to it are
 * refused, so the account keeps retrying and never gets a stream. */
static guint16 refusing_port(void)
{
	struct sockaddr_in sa = {.sin_family = AF_INET};
	socklen_t len = sizeof sa;

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	refuser = socket(AF_INET, SOCK_STREAM, 0);
	g_assert_cmpint(refuser, >=, 0);
	g_assert_cmpint(bind(refuser, (struct sockaddr *)&sa, sizeof sa), ==,
			0);
	g_assert_cmpint(getsockname(refuser, (struct sockaddr *)&sa, &len), ==,
			0);
	return ntohs(sa.sin_port);
}

static void feed_run(Account *a, void *xml, PoolReq *r)
{
	xmpp_stanza_t *st;
	bool taken;

	if (!ctx)
		ctx = xmpp_ctx_new(NULL, NULL);
	st = xmpp_stanza_new_from_string(ctx, xml);
	g_assert_nonnull(st);
	taken = dispatch_stanza(acct_dispatch(a), a, OWN, st);
	xmpp_stanza_release(st);
	pool_complete(r, taken ? 1 : 0);
}

static void ctx_free_run(Account *a, void *unused, PoolReq *r)
{
	g_clear_pointer(&ctx, xmpp_ctx_free);
	pool_complete(r, 0);
}

/* Offer @xml to the account's chain on the pool thread: true when one of
 * its features took it. */
static bool feed(const char *xml)
{
	int ret = pool_call(pool, account, feed_run, g_strdup(xml), g_free);

	g_assert_cmpint(ret, >=, 0);
	return ret == 1;
}

/* The log of a conversation, "" when it has none. */
static char *log_of(const char *jid)
{
	g_autofree char *path =
		g_build_filename(datadir, OWN, "contacts", jid, "log", NULL);
	char *text = NULL;

	if (!g_file_get_contents(path, &text, NULL, NULL))
		return g_strdup("");
	return text;
}

static bool has_conversation(const char *jid)
{
	g_autofree char *path =
		g_build_filename(datadir, OWN, "contacts", jid, NULL);

	return g_file_test(path, G_FILE_TEST_EXISTS);
}

static char *events_text(void)
{
	Hist *h = acct_events(account);
	goffset size = hist_size(h);
	char *buf = g_malloc0(size + 1);

	g_assert_cmpint(hist_pread(h, buf, size, 0), ==, size);
	return buf;
}

static guint count(const char *text, const char *needle)
{
	guint n = 0;

	for (const char *p = text; (p = strstr(p, needle)); p++)
		n++;
	return n;
}

static void test_chat_message_recorded(void)
{
	g_autofree char *log = NULL;

	g_assert_true(feed("<message from='bob@chain.test/phone' type='chat' "
			   "id='c1'><body>hello alice</body></message>"));
	log = log_of("bob@chain.test");
	g_assert_cmpuint(count(log, "\tbob@chain.test\thello alice\n"), ==, 1);
}

static void test_body_of_lines_and_tabs(void)
{
	g_autofree char *log = NULL;

	/* one record per line; a CR (&#13;: XML makes a raw one a LF)
	 * cannot split a record */
	feed("<message from='lines@chain.test/x' type='chat'><body>one\n"
	     "two&#13;three</body></message>");
	log = log_of("lines@chain.test");
	g_assert_cmpuint(count(log, "\n"), ==, 2);
	g_assert_cmpuint(count(log, "\tlines@chain.test\tone\n"), ==, 1);
	g_assert_cmpuint(count(log, "\tlines@chain.test\ttwo three\n"), ==, 1);
}

static void test_invalid_sender_dropped(void)
{
	/* taken (nobody after sees it) and left nowhere */
	g_assert_true(feed("<message from='@chain.test' type='chat'>"
			   "<body>forged</body></message>"));
	g_assert_true(feed("<message from='a@b@chain.test' type='chat'>"
			   "<body>forged</body></message>"));
	g_assert_false(has_conversation("@chain.test"));
	g_assert_false(has_conversation("a@b@chain.test"));
	g_assert_false(has_conversation("b@chain.test"));
}

static void test_no_body_no_record(void)
{
	/* a chat state alone is no record */
	g_autofree char *log = NULL;

	feed("<message from='quiet@chain.test/x' type='chat'><composing "
	     "xmlns='http://jabber.org/protocol/chatstates'/></message>");
	log = log_of("quiet@chain.test");
	g_assert_cmpstr(log, ==, "");
}

static void test_delayed_message_keeps_its_time(void)
{
	g_autofree char *log = NULL;

	feed("<message from='late@chain.test/x' type='chat'><body>offline "
	     "one</body><delay xmlns='urn:xmpp:delay' "
	     "stamp='2021-03-04T05:06:07Z'/></message>");
	log = log_of("late@chain.test");
	g_assert_cmpstr(log, ==,
			"2021-03-04T05:06:07Z\tlate@chain.test\toffline one\n");
}

#define CARBON(from, inner_from, body)                                     \
	"<message from='" from "' to='alice@chain.test/fs' type='chat'>"    \
	"<received xmlns='urn:xmpp:carbons:2'><forwarded "                  \
	"xmlns='urn:xmpp:forward:0'><message from='" inner_from "' "        \
	"to='alice@chain.test/phone' type='chat'><body>" body "</body>"     \
	"</message></forwarded></received></message>"

static void test_carbon_from_our_account(void)
{
	g_autofree char *log = NULL;

	/* XEP-0280: our own account copies what another client got */
	g_assert_true(feed(CARBON(OWN, "carol@chain.test/desk", "via phone")));
	log = log_of("carol@chain.test");
	g_assert_cmpuint(count(log, "\tcarol@chain.test\tvia phone\n"), ==, 1);
}

static void test_carbon_forged_by_another(void)
{
	/* a "copy" from anyone else would put words in dave's mouth */
	feed(CARBON("mallory@chain.test", "dave@chain.test/desk", "forged"));
	feed(CARBON("mallory@chain.test/x", "dave@chain.test/desk", "forged"));
	feed(CARBON("alice@chain.test/other", "dave@chain.test/desk",
		    "forged"));
	g_assert_false(has_conversation("dave@chain.test"));
}

static void test_archive_result_nobody_asked_for(void)
{
	/* XEP-0313: only results of our own queries are archive results */
	feed("<message from='mallory@chain.test'><result "
	     "xmlns='urn:xmpp:mam:2' queryid='not-ours' id='r1'><forwarded "
	     "xmlns='urn:xmpp:forward:0'><message from='erin@chain.test/x' "
	     "type='chat'><body>forged</body></message></forwarded></result>"
	     "</message>");
	feed("<message><result xmlns='urn:xmpp:mam:2' queryid='not-ours' "
	     "id='r2'><forwarded xmlns='urn:xmpp:forward:0'><message "
	     "from='erin@chain.test/x' type='chat'><body>forged</body>"
	     "</message></forwarded></result></message>");
	g_assert_false(has_conversation("erin@chain.test"));
}

static void test_same_archive_id_once(void)
{
	g_autofree char *log = NULL;
	const char *msg =
		"<message from='frank@chain.test/x' type='chat' id='f1'>"
		"<body>once</body><stanza-id xmlns='urn:xmpp:sid:0' "
		"by='alice@chain.test' id='arch-1'/></message>";
	const char *other_by =
		"<message from='frank@chain.test/x' type='chat' id='f2'>"
		"<body>twice</body><stanza-id xmlns='urn:xmpp:sid:0' "
		"by='frank@chain.test' id='arch-2'/></message>";

	/* the id our own archive gave: the second is the same message */
	feed(msg);
	feed(msg);
	/* an id anyone else stamped means nothing: both are logged */
	feed(other_by);
	feed(other_by);
	log = log_of("frank@chain.test");
	g_assert_cmpuint(count(log, "\tfrank@chain.test\tonce\n"), ==, 1);
	g_assert_cmpuint(count(log, "\tfrank@chain.test\ttwice\n"), ==, 2);
}

static void test_groupchat_outside_rooms(void)
{
	g_autofree char *log = NULL;

	/* a room's message, from a room we are not in: no conversation */
	feed("<message from='room@rooms.chain.test/nick' type='groupchat'>"
	     "<body>hi all</body></message>");
	log = log_of("room@rooms.chain.test");
	g_assert_cmpstr(log, ==, "");
}

static void test_presence_error_is_an_event(void)
{
	g_autofree char *ev = NULL;

	g_assert_true(feed("<presence from='gone@chain.test' type='error'>"
			   "<error type='cancel'><remote-server-not-found "
			   "xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>"
			   "</error></presence>"));
	ev = events_text();
	g_assert_cmpuint(count(ev, "\terror\t"), >=, 1);
	g_assert_nonnull(strstr(ev, "gone@chain.test"));
	/* a presence from no valid JID: taken, and no event */
	g_assert_true(feed("<presence from='@@' type='error'/>"));
	g_free(ev);
	ev = events_text();
	g_assert_null(strstr(ev, "@@"));
}

static void test_iq_without_request_taken(void)
{
	/* an answer nobody waits for: taken, nothing sent (no stream) */
	g_assert_true(feed("<iq type='result' id='nobody-asked' "
			   "from='chain.test'/>"));
	g_assert_true(feed("<iq type='error' id='nobody-asked-2' "
			   "from='chain.test'/>"));
}

/* ---- the await engine (xmpp/await.c) ---- */

typedef struct {
	char *to;        /* the request's `to`, or NULL */
	guint timeout_s;
	char *id;        /* out: the id it went with */
} AwaitStart;

/* What the callback was given (pool thread; read after pool_call). */
static struct {
	guint calls;
	int err;
	char *from;  /* the answer's from, or NULL */
	char *type;
} got;

static void await_done(Account *a, xmpp_stanza_t *answer, int err,
		       void *data)
{
	got.calls++;
	got.err = err;
	g_free(got.from);
	g_free(got.type);
	got.from = answer ? g_strdup(xmpp_stanza_get_from(answer)) : NULL;
	got.type = answer ? g_strdup(xmpp_stanza_get_type(answer)) : NULL;
}

static void await_start_run(Account *a, void *data, PoolReq *r)
{
	AwaitStart *s = data;
	xmpp_stanza_t *iq;

	if (!ctx)
		ctx = xmpp_ctx_new(NULL, NULL);
	iq = xmpp_iq_new(ctx, "get", NULL);
	if (s->to)
		xmpp_stanza_set_to(iq, s->to);
	await_iq(a, iq, s->timeout_s, await_done, NULL, NULL);
	s->id = g_strdup(xmpp_stanza_get_id(iq));
	xmpp_stanza_release(iq);
	pool_complete(r, 0);
}

static char *await_start(const char *to, guint timeout_s)
{
	AwaitStart s = {(char *)to, timeout_s, NULL};

	g_free(got.from);
	g_free(got.type);
	memset(&got, 0, sizeof got);
	g_assert_cmpint(pool_call(pool, account, await_start_run, &s, NULL),
			==, 0);
	g_assert_nonnull(s.id);
	return s.id;
}

static void await_count_run(Account *a, void *data, PoolReq *r)
{
	pool_complete(r, (int)await_count(a));
}

static int waiting(void)
{
	return pool_call(pool, account, await_count_run, NULL, NULL);
}

static void feed_answer(const char *from, const char *id, const char *type)
{
	g_autofree char *xml =
		from ? g_strdup_printf("<iq type='%s' id='%s' from='%s'/>", type,
				       id, from)
		     : g_strdup_printf("<iq type='%s' id='%s'/>", type, id);

	feed(xml);
}

static void test_await_answer_from_the_addressee(void)
{
	g_autofree char *id = await_start("pubsub.chain.test", 30);

	g_assert_cmpint(waiting(), ==, 1);
	/* forged: another JID, our own account, a resource of it */
	feed_answer("mallory@chain.test/x", id, "result");
	feed_answer(NULL, id, "result");
	feed_answer("pubsub.chain.test/res", id, "result");
	/* not an answer: a request of the same id */
	feed_answer("pubsub.chain.test", id, "get");
	g_assert_cmpuint(got.calls, ==, 0);
	g_assert_cmpint(waiting(), ==, 1);
	/* the real one (a JID compared normalised), once */
	feed_answer("PubSub.Chain.Test", id, "error");
	feed_answer("pubsub.chain.test", id, "result");
	g_assert_cmpuint(got.calls, ==, 1);
	g_assert_cmpint(got.err, ==, 0);
	g_assert_cmpstr(got.type, ==, "error");
	g_assert_cmpstr(got.from, ==, "PubSub.Chain.Test");
	g_assert_cmpint(waiting(), ==, 0);
}

static void test_await_own_account_answers(void)
{
	g_autofree char *id = await_start(NULL, 30);
	g_autofree char *id2 = NULL;

	/* a request to our account: no from, or our bare JID */
	feed_answer("bob@chain.test", id, "result");
	g_assert_cmpuint(got.calls, ==, 0);
	feed_answer("alice@chain.test", id, "result");
	g_assert_cmpuint(got.calls, ==, 1);
	id2 = await_start(OWN, 30);
	g_assert_cmpstr(id, !=, id2);
	feed_answer(NULL, id2, "result");
	g_assert_cmpuint(got.calls, ==, 1);
	g_assert_null(got.from);
	g_assert_cmpint(waiting(), ==, 0);
}

static void test_await_deadline(void)
{
	g_autofree char *id = await_start("slow.chain.test", 1);
	gint64 deadline = g_get_monotonic_time() + 10 * G_USEC_PER_SEC;

	while (waiting() > 0) {
		g_assert_cmpint(g_get_monotonic_time(), <, deadline);
		g_usleep(50000);
	}
	g_assert_cmpuint(got.calls, ==, 1);
	g_assert_cmpint(got.err, ==, -ETIMEDOUT);
	g_assert_null(got.type);
	/* too late: nobody waits, and nothing is called again */
	feed_answer("slow.chain.test", id, "result");
	g_assert_cmpuint(got.calls, ==, 1);
}

/* ---- OMEMO: bob, a store of the test's own, writes to alice ---- */

#define BOB "bob@omemo.test"

static OmemoStore *bob;
static guint32 alice_dev;

/* Bob has a session with alice's device, built from her bundle (read
 * from her store's files while the account, offline, changes none). */
static void bob_meets_alice(void)
{
	g_autofree char *adir = g_build_filename(datadir, OWN, "omemo", NULL);
	g_autofree char *bdir = g_build_filename(dir, "bob-omemo", NULL);
	g_autoptr(GError) err = NULL;
	g_autoptr(OmemoStore) alice = NULL;
	g_autoptr(OmemoBundle) b = NULL;

	if (bob)
		return;
	alice = omemo_store_open(adir, OMEMO_POLICY_TOFU, &err);
	g_assert_no_error(err);
	alice_dev = omemo_store_device_id(alice);
	b = omemo_store_bundle(alice);
	bob = omemo_store_open(bdir, OMEMO_POLICY_BLIND, &err);
	g_assert_no_error(err);
	g_assert_cmpint(omemo_store_session_from_bundle(bob, OWN, alice_dev, b),
			==, 0);
}

static char *b64(GBytes *b)
{
	gsize len;
	const guint8 *d = g_bytes_get_data(b, &len);

	return g_base64_encode(d, len);
}

/* A message from bob's device with @text encrypted to alice (@tamper:
 * a payload byte flipped), as XML. */
static char *bob_says(const char *text, bool tamper)
{
	OmemoAddr to;
	g_autoptr(OmemoEnvelope) e = NULL;
	g_autofree char *key = NULL, *iv = NULL, *payload = NULL;
	const OmemoKey *k;

	bob_meets_alice();
	to = (OmemoAddr){OWN, alice_dev};
	g_assert_cmpint(omemo_store_encrypt(bob, text, &to, 1, &e), ==, 0);
	k = g_ptr_array_index(e->keys, 0);
	key = b64(k->data);
	iv = b64(e->iv);
	if (tamper) {
		gsize len;
		guint8 *d = g_bytes_unref_to_data(e->payload, &len);
		d[len / 2] ^= 0x20;
		e->payload = g_bytes_new_take(d, len);
	}
	payload = b64(e->payload);
	return g_strdup_printf(
		"<message from='" BOB "/phone' type='chat' id='om-%u'>"
		"<encrypted xmlns='eu.siacs.conversations.axolotl'>"
		"<header sid='%u'><key rid='%u'%s>%s</key><iv>%s</iv></header>"
		"<payload>%s</payload></encrypted>"
		"<body>I sent you an OMEMO encrypted message</body></message>",
		g_random_int(), e->sid, alice_dev,
		k->prekey ? " prekey='true'" : "", key, iv, payload);
}

static char *ids_of(const char *jid)
{
	g_autofree char *path = g_build_filename(datadir, OWN, "contacts", jid,
						 "log.ids", NULL);
	char *text = NULL;

	if (!g_file_get_contents(path, &text, NULL, NULL))
		return g_strdup("");
	return text;
}

/* What bob encrypts is logged as text, its ids line marked omemo; the
 * same stanza again is logged once; the fallback body never. */
static void test_omemo_decrypted_once(void)
{
	g_autofree char *first = bob_says("hello, secretly", false);
	g_autofree char *second = bob_says("and again", false);
	g_autofree char *log = NULL, *ids = NULL;

	feed(first);
	feed(first); /* (a duplicate: its key is spent) */
	feed(second);
	log = log_of(BOB);
	ids = ids_of(BOB);
	g_assert_cmpuint(count(log, "\t" BOB "\thello, secretly\n"), ==, 1);
	g_assert_cmpuint(count(log, "\t" BOB "\tand again\n"), ==, 1);
	g_assert_cmpuint(count(log, "OMEMO encrypted"), ==, 0);
	g_assert_cmpuint(count(ids, "\tmessage\t-\t-\tomemo\n"), ==, 2);
}

/* An envelope that does not authenticate, one not for our device, and
 * malformed ones: each is one record saying why, never the fallback. */
static void test_omemo_undecryptable(void)
{
	static const struct {
		const char *xml, *why;
	} bad[] = {
		{"<message from='" BOB "/p' type='chat' id='m1'><encrypted "
		 "xmlns='eu.siacs.conversations.axolotl'/><body>fb</body>"
		 "</message>",
		 "malformed OMEMO element"},
		{"<message from='" BOB "/p' type='chat' id='m2'><encrypted "
		 "xmlns='eu.siacs.conversations.axolotl'><header sid='7'>"
		 "<key rid='1'>AAAA</key><iv>AAAAAAAAAAAAAAAA</iv></header>"
		 "<payload>AAAA</payload></encrypted><body>fb</body></message>",
		 "not encrypted for this device"},
		{"<message from='" BOB "/p' type='chat' id='m3'><encrypted "
		 "xmlns='eu.siacs.conversations.axolotl'><header sid='x'>"
		 "<iv>AAAA</iv></header></encrypted><body>fb</body></message>",
		 "malformed OMEMO element"},
	};
	g_autofree char *tampered = bob_says("evil twin", true);
	g_autofree char *log = NULL;

	for (guint i = 0; i < G_N_ELEMENTS(bad); i++)
		feed(bad[i].xml);
	feed(tampered);
	log = log_of(BOB);
	for (guint i = 0; i < G_N_ELEMENTS(bad); i++)
		g_assert_cmpuint(count(log, bad[i].why), >=, 1);
	g_assert_cmpuint(count(log, "[undecryptable: does not authenticate"),
			 ==, 1);
	g_assert_cmpuint(count(log, "[undecryptable: "), ==, 4);
	g_assert_cmpuint(count(log, "evil twin"), ==, 0);
	g_assert_cmpuint(count(log, "\tfb\n"), ==, 0);
}

static void set_up(void)
{
	g_autofree char *cfgpath = NULL, *text = NULL;
	g_autoptr(GError) err = NULL;

	dir = g_dir_make_tmp("chain-XXXXXX", NULL);
	datadir = g_build_filename(dir, "data", NULL);
	cfgpath = g_build_filename(dir, "config", NULL);
	text = g_strdup_printf("[" OWN "]\npassword = x\nhost = 127.0.0.1\n"
			       "port = %u\nomemo = true\n",
			       refusing_port());
	g_assert_true(g_file_set_contents_full(cfgpath, text, -1,
					       G_FILE_SET_CONTENTS_NONE, 0600,
					       NULL));
	cfg = cfg_load(cfgpath, &err);
	g_assert_no_error(err);
	pool = pool_new(cfg, datadir, &err);
	g_assert_no_error(err);
	account = pool_account(pool, 0);
	featureset_attach(account);
	wd_start();
	g_assert_cmpint(pool_start(pool), ==, 0);
	/* and it stays offline: no attempt, so no stream's end, comes
	 * between a test's stanzas */
	g_assert_cmpint(pool_set_show(pool, account, ACCT_SHOW_OFFLINE, NULL),
			==, 0);
}

static void tear_down(void)
{
	g_autofree char *rm = g_strdup_printf("rm -rf '%s'", dir);

	pool_call(pool, account, ctx_free_run, NULL, NULL);
	g_clear_pointer(&bob, omemo_store_free);
	g_free(got.from);
	g_free(got.type);
	pool_stop(pool);
	pool_free(pool);
	cfg_free(cfg);
	close(refuser);
	g_assert_cmpint(system(rm), ==, 0);
	g_free(datadir);
	g_free(dir);
}

int main(int argc, char **argv)
{
	int ret;

	g_test_init(&argc, &argv, NULL);
	set_up();
	g_test_add_func("/chain/chat-message-recorded",
			test_chat_message_recorded);
	g_test_add_func("/chain/body-of-lines", test_body_of_lines_and_tabs);
	g_test_add_func("/chain/invalid-sender-dropped",
			test_invalid_sender_dropped);
	g_test_add_func("/chain/no-body-no-record", test_no_body_no_record);
	g_test_add_func("/chain/delayed-message-keeps-its-time",
			test_delayed_message_keeps_its_time);
	g_test_add_func("/chain/carbon-from-our-account",
			test_carbon_from_our_account);
	g_test_add_func("/chain/carbon-forged-by-another",
			test_carbon_forged_by_another);
	g_test_add_func("/chain/archive-result-nobody-asked-for",
			test_archive_result_nobody_asked_for);
	g_test_add_func("/chain/same-archive-id-once",
			test_same_archive_id_once);
	g_test_add_func("/chain/groupchat-outside-rooms",
			test_groupchat_outside_rooms);
	g_test_add_func("/chain/presence-error-is-an-event",
			test_presence_error_is_an_event);
	g_test_add_func("/chain/iq-without-request-taken",
			test_iq_without_request_taken);
	g_test_add_func("/chain/await-answer-from-the-addressee",
			test_await_answer_from_the_addressee);
	g_test_add_func("/chain/await-own-account-answers",
			test_await_own_account_answers);
	g_test_add_func("/chain/await-deadline", test_await_deadline);
	g_test_add_func("/chain/omemo-decrypted-once", test_omemo_decrypted_once);
	g_test_add_func("/chain/omemo-undecryptable", test_omemo_undecryptable);
	ret = g_test_run();
	tear_down();
	return ret;
}
