/* omemo.c - OMEMO 0.3 for conversations (omemo.h), on the keys and
 * sessions of store/omemo_store.c.
 *
 * Out: chat.c asks omemo_send_mode at the write, and the outbox keeps
 * "omemo" with the message (OutboxItem.enc), so that a message accepted
 * for encryption never goes out in the clear, whenever it goes.  When it
 * leaves the queue (omemo_outgoing), the recipient's devices and our own
 * other devices that lack a session have their bundles fetched first;
 * meanwhile every message to that JID waits here, in order.  Then the
 * body is encrypted to each trusted device with a session, and
 * omemo_own_message puts the envelope in the stanza; the server's
 * acknowledgement takes it out of the outbox as any other.  A message
 * that no trusted device of the contact can read fails (ENOKEY).
 *
 * In: chat.c's chat_log (live messages, carbons, the archive's pages)
 * calls omemo_message_in before it reads the body.  A pre-key message
 * uses up a pre-key of ours: the bundle is published again, and an empty
 * message (a heartbeat) answers it, so that the sender stops sending
 * pre-key messages.  What was decrypted is kept until it is recorded:
 * when its record cannot be written (a full disk), the archive gives the
 * message again, and its key is used up by then.  Once recorded, a copy
 * (a replay) is nothing.
 *
 * Device lists: ours is fetched at each connect and published again
 * with our device in it when it lacks it; every list we are told of
 * (PEP notifications: our caps ask for them) is kept in the store.
 * Everything that is published is open to anyone (PEP_OPEN).
 *
 * The store is opened at attach and locks itself: the FUSE threads read
 * and change trust through it.  The rest is the pool thread's, but the
 * conversations' modes (modes, under lock). */
#include "features/omemo.h"
#include "features/featureset.h"
#include "features/pep.h"
#include "xmpp/account_int.h"

#include <errno.h>
#include <string.h>

#include "base/jid.h"
#include "base/log.h"
#include "base/text.h"
#include "store/omemo_store.h"
#include "store/outbox.h"
#include "xmpp/await.h"
#include "xmpp/dispatch.h"
#include "xmpp/pool.h"

#define NS_AXOLOTL "eu.siacs.conversations.axolotl"
#define NODE_DEVICES NS_AXOLOTL ".devicelist"
#define NODE_BUNDLES NS_AXOLOTL ".bundles:"
#define NS_EME "urn:xmpp:eme:0"
#define OMEMO_FALLBACK                                                   \
	"I sent you an OMEMO encrypted message but your client doesn't " \
	"seem to support that."
/* a device whose bundle could not be had is not asked again for this
 * long (its messages go to the devices that have sessions) */
#define BUNDLE_RETRY_US (10 * 60 * G_USEC_PER_SEC)
/* a pre-key used up: the bundle is published again this much later, so
 * that a burst of pre-key messages (the catch-up) publishes it once */
#define BUNDLE_REPUBLISH_US (2 * G_USEC_PER_SEC)
/* decrypted messages kept for a second delivery (see above) */
#define RECENT_MAX 256
/* the devices taken from one device list: nobody has more, and each
 * costs a bundle fetch and a line in the store's file, which a hostile
 * contact (or a broken client) could otherwise grow without end */
#define LIST_MAX 100

typedef struct {
	OmemoStore *store; /* NULL: OMEMO off; fixed after attach */
	/* the conversations' `encryption` set by hand: JID -> "omemo" or
	 * "plain"; DATA/ACCOUNT/encryption; under lock */
	GMutex lock;
	GHashTable *modes;
	char *modes_path;
	GHashTable *asked;   /* JIDs whose device list a writer asked for */
	/* pool thread: */
	GHashTable *prep;    /* JID -> guint: bundles being fetched */
	GQueue held;         /* OutMsg*, by seq: waiting for prep */
	GHashTable *failed;  /* "JID/ID" -> monotonic µs of the failure */
	OmemoEnvelope *env;  /* of the message going out now ... */
	char *env_id;        /* ... whose id this is (omemo_own_message) */
	gint64 bundle_due;   /* publish the bundle again then; 0: no */
	GHashTable *recent;  /* key -> plain text (RECENT_MAX) */
	GQueue recent_order; /* of keys, oldest first */
	char *last_key;      /* of what omemo_message_in last decrypted */
} Omemo;

const Feature omemo_feature;

static Omemo *omemo_of(Account *a)
{
	return acct_state(a, &omemo_feature);
}

bool omemo_enabled(Account *a)
{
	return omemo_of(a)->store != NULL;
}

static const char *own_jid(Account *a)
{
	return acct_cfg(a)->jid;
}

/* ---- the conversations' modes ---- */

static void modes_load(Omemo *o)
{
	g_autofree char *data = NULL;
	g_auto(GStrv) lines = NULL;

	if (!g_file_get_contents(o->modes_path, &data, NULL, NULL))
		return;
	lines = g_strsplit(data, "\n", -1);
	for (char **l = lines; *l; l++) {
		char *tab = strchr(*l, '\t');
		if (!tab)
			continue;
		*tab = '\0';
		if (!strcmp(tab + 1, "omemo") || !strcmp(tab + 1, "plain"))
			g_hash_table_insert(o->modes, g_strdup(*l),
					    g_strdup(tab + 1));
	}
}

/* With the lock held. */
static int modes_save(Omemo *o)
{
	g_autoptr(GString) s = g_string_new(NULL);
	g_autoptr(GError) err = NULL;
	GHashTableIter it;
	gpointer k, v;

	g_hash_table_iter_init(&it, o->modes);
	while (g_hash_table_iter_next(&it, &k, &v))
		g_string_append_printf(s, "%s\t%s\n", (char *)k, (char *)v);
	if (!g_file_set_contents_full(o->modes_path, s->str, s->len,
				      G_FILE_SET_CONTENTS_CONSISTENT |
					      G_FILE_SET_CONTENTS_DURABLE,
				      0600, &err))
		return -acct_errno_of(err);
	return 0;
}

/* "omemo", "plain" or NULL (the default), as set by hand. */
static char *mode_of(Omemo *o, const char *jid)
{
	char *m;

	g_mutex_lock(&o->lock);
	m = g_strdup(g_hash_table_lookup(o->modes, jid));
	g_mutex_unlock(&o->lock);
	return m;
}

int omemo_set_mode(Account *a, const char *jid, const char *word)
{
	Omemo *o = omemo_of(a);
	g_autofree char *had = NULL;
	int ret;

	if (strcmp(word, "omemo") && strcmp(word, "plain") &&
	    strcmp(word, "default"))
		return -EINVAL;
	if (!o->store)
		return strcmp(word, "omemo") ? 0 : -EOPNOTSUPP;
	g_mutex_lock(&o->lock);
	had = g_strdup(g_hash_table_lookup(o->modes, jid));
	if (!strcmp(word, "default"))
		g_hash_table_remove(o->modes, jid);
	else
		g_hash_table_insert(o->modes, g_strdup(jid), g_strdup(word));
	ret = modes_save(o);
	if (ret) { /* as it was */
		if (had)
			g_hash_table_insert(o->modes, g_strdup(jid),
					    g_steal_pointer(&had));
		else
			g_hash_table_remove(o->modes, jid);
	}
	g_mutex_unlock(&o->lock);
	return ret;
}

/* A device a message may be encrypted to once it has a session, or
 * might be once its key is seen (the policy may trust it then). */
static bool may_trust(const OmemoDevice *d, CfgOmemoTrust policy)
{
	if (d->trust == OMEMO_TRUSTED)
		return true;
	return !d->fingerprint && d->trust == OMEMO_UNDECIDED &&
	       policy != CFG_OMEMO_MANUAL;
}

static void list_seen(Account *a, const char *jid, GArray *ids);
static GArray *list_parse(xmpp_stanza_t *item);

/* A device list asked for by a writer (shared with the pool: an atomic
 * reference each, as the writer may stop waiting first). */
typedef struct {
	PoolReq *r;
	char *jid;
} ListAsk;

static void list_ask_clear(gpointer p)
{
	g_free(((ListAsk *)p)->jid);
}

static void list_ask_release(gpointer p)
{
	g_atomic_rc_box_release_full(p, list_ask_clear);
}

static void list_answered(Account *a, xmpp_stanza_t *answer, int err,
			  void *data)
{
	ListAsk *k = data;
	int res = await_errno(answer, err);

	/* none (item-not-found) is no device */
	if (!res || res == -ENOENT) {
		g_autoptr(GArray) ids = list_parse(pep_first_item(answer));
		list_seen(a, k->jid, ids);
		res = 0;
	}
	pool_complete(k->r, res);
}

static void list_ask_run(Account *a, void *data, PoolReq *r)
{
	ListAsk *k = data;

	k->r = r;
	if (!acct_is_online(a) || !omemo_of(a)->store) {
		pool_complete(r, -ENOTCONN);
		return;
	}
	pep_fetch_from(a, k->jid, NODE_DEVICES, list_answered,
		       g_atomic_rc_box_acquire(k), list_ask_release);
}

/* [not pool] @jid's devices, asked of its server when we know of none
 * yet: a contact who shares no presence with us is told of no device
 * list.  Once for each JID in a mount. */
static GArray *devices_asked(Account *a, const char *jid)
{
	Omemo *o = omemo_of(a);
	GArray *devs = omemo_store_devices(o->store, jid);
	ListAsk *k;
	bool first;

	if (devs->len || pool_on_thread())
		return devs;
	g_mutex_lock(&o->lock);
	first = g_hash_table_add(o->asked, g_strdup(jid));
	g_mutex_unlock(&o->lock);
	if (!first)
		return devs;
	k = g_atomic_rc_box_new0(ListAsk);
	k->jid = g_strdup(jid);
	if (pool_call(a->pool, a, list_ask_run, g_atomic_rc_box_acquire(k),
		      list_ask_release) == 0) {
		g_array_unref(devs);
		devs = omemo_store_devices(o->store, jid);
	} else { /* (offline, no answer: asked again at the next write) */
		g_mutex_lock(&o->lock);
		g_hash_table_remove(o->asked, jid);
		g_mutex_unlock(&o->lock);
	}
	list_ask_release(k);
	return devs;
}

int omemo_send_mode(Account *a, const char *jid, const char **enc)
{
	Omemo *o = omemo_of(a);
	g_autofree char *mode = NULL;
	g_autoptr(GArray) devs = NULL;
	guint active = 0, usable = 0;

	*enc = NULL;
	if (!o->store)
		return 0;
	mode = mode_of(o, jid);
	if (mode && !strcmp(mode, "plain"))
		return 0;
	devs = devices_asked(a, jid);
	for (guint i = 0; i < devs->len; i++) {
		const OmemoDevice *d = &g_array_index(devs, OmemoDevice, i);
		if (!d->active)
			continue;
		active++;
		if (may_trust(d, acct_cfg(a)->omemo_trust))
			usable++;
	}
	/* by default, encrypted when the contact has devices */
	if (!mode && !active)
		return 0;
	if (!usable)
		return -ENOKEY;
	*enc = "omemo";
	return 0;
}

char *omemo_mode_text(Account *a, const char *jid)
{
	const char *enc = NULL;
	int ret = omemo_send_mode(a, jid, &enc);

	/* (no trusted device: what a write does is fail, not go out plain) */
	return g_strdup(enc || ret ? "omemo\n" : "plain\n");
}

/* ---- devices and trust ---- */

static const char *trust_name(OmemoTrust t)
{
	switch (t) {
	case OMEMO_TRUSTED:
		return "trusted";
	case OMEMO_UNTRUSTED:
		return "untrusted";
	default:
		return "undecided";
	}
}

char *omemo_devices_text(Account *a, const char *jid)
{
	Omemo *o = omemo_of(a);
	GString *s = g_string_new(NULL);
	g_autoptr(GArray) devs = NULL;
	guint32 own = 0;

	if (!o->store)
		return g_string_free(s, FALSE);
	if (!strcmp(jid, own_jid(a))) {
		g_autofree char *fp = omemo_store_fingerprint(o->store);
		own = omemo_store_device_id(o->store);
		g_string_append_printf(s, "%u\t%s\town\n", own, fp);
	}
	devs = omemo_store_devices(o->store, jid);
	for (guint i = 0; i < devs->len; i++) {
		const OmemoDevice *d = &g_array_index(devs, OmemoDevice, i);
		if (d->active && d->id != own)
			g_string_append_printf(s, "%u\t%s\t%s\n", d->id,
					       d->fingerprint ? d->fingerprint
							      : "-",
					       trust_name(d->trust));
	}
	return g_string_free(s, FALSE);
}

/* "123" -> 123; 0 for anything else (no device has id 0). */
static guint32 device_id_of(const char *s)
{
	guint64 v;
	char *end;

	if (!s || !g_ascii_isdigit(*s))
		return 0;
	errno = 0;
	v = g_ascii_strtoull(s, &end, 10);
	return *end || errno || v > G_MAXUINT32 ? 0 : (guint32)v;
}

int omemo_devices_write(Account *a, const char *jid, const char *text)
{
	Omemo *o = omemo_of(a);
	g_auto(GStrv) lines = g_strsplit(text, "\n", -1);
	g_autoptr(GArray) ids = g_array_new(FALSE, FALSE, sizeof(guint32));
	g_autoptr(GArray) trusts = g_array_new(FALSE, FALSE, sizeof(int));
	int ret = 0;

	if (!o->store)
		return -EOPNOTSUPP;
	/* every line checked before any is done */
	for (char **l = lines; *l; l++) {
		g_auto(GStrv) w = g_strsplit_set(g_strstrip(*l), " \t", -1);
		const char *word[3] = {NULL, NULL, NULL};
		guint n = 0;
		guint32 id;
		int t;
		for (char **p = w; *p && n < 3; p++)
			if (**p)
				word[n++] = *p;
		if (!n)
			continue; /* an empty line */
		if (n != 2 || !(id = device_id_of(word[1])))
			return -EINVAL;
		if (!strcmp(word[0], "trust"))
			t = OMEMO_TRUSTED;
		else if (!strcmp(word[0], "distrust"))
			t = OMEMO_UNTRUSTED;
		else
			return -EINVAL;
		g_array_append_val(ids, id);
		g_array_append_val(trusts, t);
	}
	if (!ids->len)
		return -EINVAL;
	for (guint i = 0; i < ids->len && !ret; i++)
		ret = omemo_store_set_trust(o->store, jid,
					    g_array_index(ids, guint32, i),
					    g_array_index(trusts, int, i));
	return ret;
}

/* ---- XML ---- */

static xmpp_stanza_t *b64_child(Account *a, xmpp_stanza_t *parent,
				const char *name, GBytes *bytes)
{
	xmpp_stanza_t *c = acct_add_child(a, parent, name, NULL);
	xmpp_stanza_t *t = xmpp_stanza_new(a->ctx);
	gsize len;
	const guint8 *d = g_bytes_get_data(bytes, &len);
	g_autofree char *b64 = g_base64_encode(d, len);

	xmpp_stanza_set_text(t, b64);
	xmpp_stanza_add_child_ex(c, t, 0);
	return c;
}

static void set_uint(xmpp_stanza_t *el, const char *attr, guint32 v)
{
	char buf[16];

	g_snprintf(buf, sizeof buf, "%u", v);
	xmpp_stanza_set_attribute(el, attr, buf);
}

/* The base64 text of @el, decoded; NULL when there is none. */
static GBytes *b64_of(xmpp_stanza_t *el)
{
	g_autofree char *t = acct_text(el);
	guchar *d;
	gsize len;

	if (!t)
		return NULL;
	g_strstrip(t);
	if (!*t)
		return NULL;
	d = g_base64_decode(t, &len);
	return len ? g_bytes_new_take(d, len) : (g_free(d), NULL);
}

static xmpp_stanza_t *child_ns(xmpp_stanza_t *st, const char *name)
{
	return st ? xmpp_stanza_get_child_by_name(st, name) : NULL;
}

static xmpp_stanza_t *bundle_xml(Account *a, const OmemoBundle *b)
{
	xmpp_stanza_t *bundle = xmpp_stanza_new(a->ctx), *c, *pks;

	xmpp_stanza_set_name(bundle, "bundle");
	xmpp_stanza_set_ns(bundle, NS_AXOLOTL);
	c = b64_child(a, bundle, "signedPreKeyPublic", b->spk);
	set_uint(c, "signedPreKeyId", b->spk_id);
	b64_child(a, bundle, "signedPreKeySignature", b->spk_sig);
	b64_child(a, bundle, "identityKey", b->identity);
	pks = acct_add_child(a, bundle, "prekeys", NULL);
	for (guint i = 0; i < b->prekeys->len; i++) {
		const OmemoPreKey *pk = &g_array_index(b->prekeys, OmemoPreKey,
						      i);
		c = b64_child(a, pks, "preKeyPublic", pk->pub);
		set_uint(c, "preKeyId", pk->id);
	}
	return bundle;
}

static OmemoBundle *bundle_parse(xmpp_stanza_t *bundle)
{
	g_autoptr(OmemoBundle) b = omemo_bundle_new();
	xmpp_stanza_t *spk = child_ns(bundle, "signedPreKeyPublic");
	xmpp_stanza_t *pks = child_ns(bundle, "prekeys");

	if (!bundle || !spk || !pks ||
	    g_strcmp0(xmpp_stanza_get_ns(bundle), NS_AXOLOTL))
		return NULL;
	b->spk_id = device_id_of(xmpp_stanza_get_attribute(spk,
							   "signedPreKeyId"));
	b->spk = b64_of(spk);
	b->spk_sig = b64_of(child_ns(bundle, "signedPreKeySignature"));
	b->identity = b64_of(child_ns(bundle, "identityKey"));
	if (!b->spk || !b->spk_sig || !b->identity)
		return NULL;
	for (xmpp_stanza_t *c = xmpp_stanza_get_children(pks); c;
	     c = xmpp_stanza_get_next(c)) {
		OmemoPreKey pk;
		if (!xmpp_stanza_is_tag(c) ||
		    g_strcmp0(xmpp_stanza_get_name(c), "preKeyPublic"))
			continue;
		pk.id = device_id_of(xmpp_stanza_get_attribute(c, "preKeyId"));
		pk.pub = b64_of(c);
		if (!pk.id || !pk.pub) {
			if (pk.pub)
				g_bytes_unref(pk.pub);
			continue;
		}
		g_array_append_val(b->prekeys, pk);
	}
	return g_steal_pointer(&b);
}

/* The device ids of a <list/> (in an <item/>), 0s left out. */
static GArray *list_parse(xmpp_stanza_t *item)
{
	GArray *ids = g_array_new(FALSE, FALSE, sizeof(guint32));
	xmpp_stanza_t *list = item ? xmpp_stanza_get_child_by_name_and_ns(
					     item, "list", NS_AXOLOTL)
				   : NULL;

	for (xmpp_stanza_t *c = list ? xmpp_stanza_get_children(list) : NULL;
	     c; c = xmpp_stanza_get_next(c)) {
		guint32 id;
		if (!xmpp_stanza_is_tag(c) ||
		    g_strcmp0(xmpp_stanza_get_name(c), "device"))
			continue;
		id = device_id_of(xmpp_stanza_get_attribute(c, "id"));
		if (id)
			g_array_append_val(ids, id);
	}
	return ids;
}

static xmpp_stanza_t *envelope_xml(Account *a, const OmemoEnvelope *e)
{
	xmpp_stanza_t *enc = xmpp_stanza_new(a->ctx), *h, *k;

	xmpp_stanza_set_name(enc, "encrypted");
	xmpp_stanza_set_ns(enc, NS_AXOLOTL);
	h = acct_add_child(a, enc, "header", NULL);
	set_uint(h, "sid", e->sid);
	for (guint i = 0; i < e->keys->len; i++) {
		const OmemoKey *key = g_ptr_array_index(e->keys, i);
		k = b64_child(a, h, "key", key->data);
		set_uint(k, "rid", key->rid);
		if (key->prekey)
			xmpp_stanza_set_attribute(k, "prekey", "true");
	}
	b64_child(a, h, "iv", e->iv);
	if (e->payload)
		b64_child(a, enc, "payload", e->payload);
	return enc;
}

static void key_free(gpointer p)
{
	OmemoKey *k = p;

	g_free(k->jid);
	if (k->data)
		g_bytes_unref(k->data);
	g_free(k);
}

/* An <encrypted/> as it came: NULL when it is malformed.  Only the keys
 * for @rid are kept (the others are no concern of ours). */
static OmemoEnvelope *envelope_parse(xmpp_stanza_t *enc, const char *from,
				     guint32 rid)
{
	g_autoptr(OmemoEnvelope) e = omemo_envelope_new();
	xmpp_stanza_t *h = child_ns(enc, "header");
	xmpp_stanza_t *p = child_ns(enc, "payload");

	if (!h || !(e->sid = device_id_of(xmpp_stanza_get_attribute(h, "sid"))))
		return NULL;
	if (!(e->iv = b64_of(child_ns(h, "iv"))))
		return NULL;
	if (p && !(e->payload = b64_of(p)))
		return NULL;
	for (xmpp_stanza_t *c = xmpp_stanza_get_children(h); c;
	     c = xmpp_stanza_get_next(c)) {
		const char *pk;
		OmemoKey *k;
		if (!xmpp_stanza_is_tag(c) ||
		    g_strcmp0(xmpp_stanza_get_name(c), "key") ||
		    device_id_of(xmpp_stanza_get_attribute(c, "rid")) != rid)
			continue;
		k = g_new0(OmemoKey, 1);
		k->jid = g_strdup(from);
		k->rid = rid;
		pk = xmpp_stanza_get_attribute(c, "prekey");
		k->prekey = pk && (!strcmp(pk, "true") || !strcmp(pk, "1"));
		k->data = b64_of(c);
		if (!k->data) {
			key_free(k);
			return NULL;
		}
		g_ptr_array_add(e->keys, k);
	}
	return g_steal_pointer(&e);
}

/* ---- publishing ours ---- */

static void publish_bundle(Account *a)
{
	Omemo *o = omemo_of(a);
	g_autoptr(OmemoBundle) b = omemo_store_bundle(o->store);
	g_autofree char *node = g_strdup_printf(
		NODE_BUNDLES "%u", omemo_store_device_id(o->store));
	xmpp_stanza_t *x = bundle_xml(a, b);

	pep_publish(a, node, "current", x, PEP_OPEN, "our OMEMO bundle",
		    NULL, NULL, NULL);
	xmpp_stanza_release(x);
}

static void publish_list(Account *a, const GArray *ids)
{
	Omemo *o = omemo_of(a);
	xmpp_stanza_t *list = xmpp_stanza_new(a->ctx), *d;
	guint32 own = omemo_store_device_id(o->store);

	xmpp_stanza_set_name(list, "list");
	xmpp_stanza_set_ns(list, NS_AXOLOTL);
	for (guint i = 0; i < ids->len; i++) {
		if (g_array_index(ids, guint32, i) == own)
			continue;
		d = acct_add_child(a, list, "device", NULL);
		set_uint(d, "id", g_array_index(ids, guint32, i));
	}
	d = acct_add_child(a, list, "device", NULL);
	set_uint(d, "id", own);
	pep_publish(a, NODE_DEVICES, "current", list, PEP_OPEN,
		    "our OMEMO device list", NULL, NULL, NULL);
	xmpp_stanza_release(list);
}

static bool has_id(const GArray *ids, guint32 id)
{
	for (guint i = 0; i < ids->len; i++)
		if (g_array_index(ids, guint32, i) == id)
			return true;
	return false;
}

static void prep_start(Account *a, const char *jid);

/* @ids without repeats, cut at LIST_MAX (in place). */
static void list_trim(Account *a, const char *jid, GArray *ids)
{
	g_autoptr(GHashTable) seen = g_hash_table_new(g_direct_hash,
						      g_direct_equal);
	guint n = 0, had = ids->len;

	for (guint i = 0; i < ids->len && n < LIST_MAX; i++) {
		guint32 id = g_array_index(ids, guint32, i);
		if (g_hash_table_add(seen, GUINT_TO_POINTER(id)))
			g_array_index(ids, guint32, n++) = id;
	}
	g_array_set_size(ids, n);
	if (n == LIST_MAX && had > n)
		xfs_info("%s: the OMEMO device list of %s has more than %u "
			 "devices: the first %u are taken",
			 own_jid(a), jid, LIST_MAX, LIST_MAX);
}

/* @jid published the device list @ids (our own: ours must be in it). */
static void list_seen(Account *a, const char *jid, GArray *ids)
{
	Omemo *o = omemo_of(a);
	int ret;

	list_trim(a, jid, ids);
	ret = omemo_store_set_device_list(o->store, jid,
					  (const guint32 *)ids->data, ids->len);
	if (ret)
		xfs_warn("%s: the OMEMO devices of %s are not kept: %s",
			 own_jid(a), jid, g_strerror(-ret));
	if (!strcmp(jid, own_jid(a)) &&
	    !has_id(ids, omemo_store_device_id(o->store)))
		publish_list(a, ids);
	/* sessions with the new devices before the first message needs
	 * them: their keys show in `devices` */
	prep_start(a, jid);
}

static void own_list_fetched(Account *a, xmpp_stanza_t *answer, int err,
			     void *data)
{
	xmpp_stanza_t *item = pep_first_item(answer);
	g_autoptr(GArray) ids = NULL;
	int res = await_errno(answer, err);

	(void)data;
	if (!omemo_of(a)->store || res == -ECONNRESET)
		return;
	/* none yet (item-not-found) is an empty list */
	if (res && res != -ENOENT) {
		xfs_info("%s: our OMEMO device list cannot be read: %s",
			 own_jid(a), g_strerror(-res));
		return;
	}
	ids = list_parse(item);
	list_seen(a, own_jid(a), ids);
}

/* ---- sessions: bundles fetched before a message needs them ---- */

static char *failed_key(const char *jid, guint32 id)
{
	return g_strdup_printf("%s/%u", jid, id);
}

/* A device of @jid a message would go to that has no session yet, and
 * whose bundle is worth asking for. */
static bool wants_session(Account *a, const char *jid, const OmemoDevice *d)
{
	Omemo *o = omemo_of(a);
	g_autofree char *key = NULL;
	gint64 *at;

	if (!d->active || d->session || d->trust == OMEMO_UNTRUSTED ||
	    (d->fingerprint && d->trust != OMEMO_TRUSTED))
		return false;
	if (!strcmp(jid, own_jid(a)) && d->id == omemo_store_device_id(o->store))
		return false;
	key = failed_key(jid, d->id);
	at = g_hash_table_lookup(o->failed, key);
	return !at || g_get_monotonic_time() - *at >= BUNDLE_RETRY_US;
}

static bool prep_busy(Account *a, const char *jid)
{
	return g_hash_table_contains(omemo_of(a)->prep, jid);
}

static gint by_seq(gconstpointer x, gconstpointer y, gpointer unused)
{
	guint64 p = ((const OutMsg *)x)->item->seq;
	guint64 q = ((const OutMsg *)y)->item->seq;

	(void)unused;
	return p < q ? -1 : p > q;
}

/* What waited for sessions and need wait no more goes back in the queue,
 * in order, and out. */
static void release(Account *a)
{
	Omemo *o = omemo_of(a);
	bool any = false;

	if (prep_busy(a, own_jid(a)))
		return;
	for (GList *l = o->held.head, *next; l; l = next) {
		OutMsg *m = l->data;
		next = l->next;
		if (prep_busy(a, m->item->to))
			continue;
		g_queue_delete_link(&o->held, l);
		g_queue_insert_sorted(&a->outq, m, by_seq, NULL);
		any = true;
	}
	if (any)
		acct_flush_outq(a);
}

typedef struct {
	char *jid;
	guint32 id;
} Fetch;

static void fetch_free(void *p)
{
	Fetch *f = p;

	g_free(f->jid);
	g_free(f);
}

static void bundle_fetched(Account *a, xmpp_stanza_t *answer, int err,
			   void *data)
{
	Fetch *f = data;
	Omemo *o = omemo_of(a);
	int res = await_errno(answer, err), ret = res;
	xmpp_stanza_t *item = pep_first_item(answer);
	guint pending;

	if (!res) {
		g_autoptr(OmemoBundle) b = bundle_parse(
			item ? xmpp_stanza_get_child_by_name_and_ns(
				       item, "bundle", NS_AXOLOTL)
			     : NULL);
		ret = b ? omemo_store_session_from_bundle(o->store, f->jid,
							  f->id, b)
			: -EBADMSG;
	}
	if (ret && res != -ECONNRESET) {
		gint64 *at = g_new(gint64, 1);
		*at = g_get_monotonic_time();
		g_hash_table_insert(o->failed, failed_key(f->jid, f->id), at);
		xfs_info("%s: no OMEMO session with device %u of %s: %s",
			 own_jid(a), f->id, f->jid, g_strerror(-ret));
	}
	pending = GPOINTER_TO_UINT(g_hash_table_lookup(o->prep, f->jid));
	if (!pending)
		return; /* (the stream went: offline forgot them) */
	if (pending > 1) {
		g_hash_table_insert(o->prep, g_strdup(f->jid),
				    GUINT_TO_POINTER(pending - 1));
		return;
	}
	g_hash_table_remove(o->prep, f->jid);
	release(a);
}

/* Ask for the bundle of every device of @jid that wants a session (none
 * while some are being asked for already). */
static void prep_start(Account *a, const char *jid)
{
	Omemo *o = omemo_of(a);
	g_autoptr(GArray) devs = NULL;
	guint n = 0;

	if (!o->store || prep_busy(a, jid) || !acct_is_online(a))
		return;
	devs = omemo_store_devices(o->store, jid);
	for (guint i = 0; i < devs->len; i++) {
		const OmemoDevice *d = &g_array_index(devs, OmemoDevice, i);
		g_autofree char *node = NULL;
		Fetch *f;
		if (!wants_session(a, jid, d))
			continue;
		f = g_new0(Fetch, 1);
		f->jid = g_strdup(jid);
		f->id = d->id;
		node = g_strdup_printf(NODE_BUNDLES "%u", d->id);
		pep_fetch_from(a, jid, node, bundle_fetched, f, fetch_free);
		n++;
	}
	if (n)
		g_hash_table_insert(o->prep, g_strdup(jid), GUINT_TO_POINTER(n));
}

/* ---- out ---- */

/* The devices of @jid a message goes to: trusted, with a session. */
static guint add_recipients(Omemo *o, const char *jid, guint32 skip,
			    GArray *to)
{
	g_autoptr(GArray) devs = omemo_store_devices(o->store, jid);
	guint n = 0;

	for (guint i = 0; i < devs->len; i++) {
		const OmemoDevice *d = &g_array_index(devs, OmemoDevice, i);
		OmemoAddr ad = {jid, d->id};
		if (!d->active || !d->session || d->trust != OMEMO_TRUSTED ||
		    d->id == skip)
			continue;
		g_array_append_val(to, ad);
		n++;
	}
	return n;
}

static void fail(Account *a, OutMsg *m, int err, const char *why)
{
	g_autofree char *text = g_strdup_printf("message not sent (%s): %s",
						why, m->item->body);

	g_strdelimit(text, "\r\n", ' ');
	outbox_fail(a->outbox, m->item->id, err);
	acct_event(a, "error", m->item->to, text);
	acct_outmsg_free(m);
}

static bool omemo_outgoing(Account *a, OutMsg *m)
{
	Omemo *o = omemo_of(a);
	const char *jid = m->item->to;
	g_autoptr(GArray) to = NULL;
	g_autoptr(OmemoEnvelope) env = NULL;
	int ret;

	if (strcmp(m->item->type, "chat"))
		return false;
	/* after what waits for the same JID, in order */
	for (GList *l = o->held.head; l; l = l->next)
		if (!strcmp(((OutMsg *)l->data)->item->to, jid)) {
			g_queue_insert_sorted(&o->held, m, by_seq, NULL);
			return true;
		}
	if (g_strcmp0(m->item->enc, "omemo"))
		return false;
	if (!o->store) {
		fail(a, m, EOPNOTSUPP, "OMEMO is off for this account");
		return true;
	}
	prep_start(a, jid);
	prep_start(a, own_jid(a));
	if (prep_busy(a, jid) || prep_busy(a, own_jid(a))) {
		g_queue_insert_sorted(&o->held, m, by_seq, NULL);
		return true;
	}
	to = g_array_new(FALSE, FALSE, sizeof(OmemoAddr));
	if (!add_recipients(o, jid, 0, to)) {
		fail(a, m, ENOKEY, "no trusted OMEMO device of the contact");
		return true;
	}
	add_recipients(o, own_jid(a), omemo_store_device_id(o->store), to);
	ret = omemo_store_encrypt(o->store, m->item->body,
				  (const OmemoAddr *)to->data, to->len, &env);
	if (ret) {
		fail(a, m, -ret, g_strerror(-ret));
		return true;
	}
	o->env = env;
	o->env_id = m->item->id;
	acct_send_message(a, acct_message_new(a, m->item->type, jid,
					      m->item->id),
			  m->item);
	o->env = NULL;
	o->env_id = NULL;
	sm_track(a, m);
	return true;
}

/* The envelope, the EME hint, and a body for clients without OMEMO. */
static void add_envelope(Account *a, xmpp_stanza_t *msg,
			 const OmemoEnvelope *e)
{
	xmpp_stanza_t *eme;

	xmpp_stanza_add_child_ex(msg, envelope_xml(a, e), 0);
	eme = acct_add_child(a, msg, "encryption", NS_EME);
	xmpp_stanza_set_attribute(eme, "namespace", NS_AXOLOTL);
	xmpp_stanza_set_attribute(eme, "name", "OMEMO");
	acct_add_child(a, msg, "store", NS_HINTS);
}

static bool omemo_own_message(Account *a, xmpp_stanza_t *msg,
			      const OutboxItem *it)
{
	Omemo *o = omemo_of(a);

	if (!o->env || g_strcmp0(o->env_id, it->id))
		return false;
	add_envelope(a, msg, o->env);
	xmpp_message_set_body(msg, OMEMO_FALLBACK);
	return true;
}

/* An empty message to device @id of @jid: it moves the session on, so
 * that it sends no more pre-key messages. */
static void send_heartbeat(Account *a, const char *jid, guint32 id)
{
	Omemo *o = omemo_of(a);
	OmemoAddr to = {jid, id};
	g_autoptr(OmemoEnvelope) e = NULL;
	g_autofree char *mid = g_uuid_string_random();
	xmpp_stanza_t *msg;

	if (!acct_is_online(a) ||
	    omemo_store_encrypt(o->store, NULL, &to, 1, &e))
		return;
	msg = xmpp_message_new(a->ctx, "chat", jid, mid);
	add_envelope(a, msg, e);
	sm_send(a, msg);
	xmpp_stanza_release(msg);
}

/* ---- in ---- */

static void recent_add(Omemo *o, const char *key, const char *text)
{
	char *k;

	if (g_hash_table_contains(o->recent, key))
		return;
	k = g_strdup(key);
	g_hash_table_insert(o->recent, k, g_strdup(text));
	g_queue_push_tail(&o->recent_order, k);
	if (o->recent_order.length > RECENT_MAX)
		g_hash_table_remove(o->recent,
				    g_queue_pop_head(&o->recent_order));
}

/* What omemo_message_in decrypted last is in the log now: it is kept no
 * longer.  The text is kept only for a record that could not be written
 * (the archive gives the message again, whose key is used up); a copy
 * of a message that was recorded (the same stanza sent again, by a
 * server or anyone who saw it) must not make a second record. */
void omemo_message_logged(Account *a)
{
	Omemo *o = omemo_of(a);
	gpointer k;

	if (o->last_key &&
	    g_hash_table_lookup_extended(o->recent, o->last_key, &k, NULL)) {
		g_queue_remove(&o->recent_order, k);
		g_hash_table_remove(o->recent, o->last_key);
	}
	g_clear_pointer(&o->last_key, g_free);
}

/* @text (valid UTF-8) as a <body/> could hold it: what XML 1.0 has no
 * room for (control characters but tab and line ends, U+FFFE, U+FFFF)
 * is U+FFFD.  A plain body cannot bring a terminal escape into `log`,
 * `stream` or `events`; an encrypted one, whose payload is any bytes,
 * must not either. */
static char *as_body_text(const char *text)
{
	GString *s = g_string_sized_new(strlen(text));

	for (const char *p = text; *p; p = g_utf8_next_char(p)) {
		gunichar c = g_utf8_get_char(p);
		if ((c < 0x20 && c != '\t' && c != '\n' && c != '\r') ||
		    c == 0xfffe || c == 0xffff)
			g_string_append_unichar(s, 0xfffd);
		else
			g_string_append_len(s, p, g_utf8_next_char(p) - p);
	}
	return g_string_free(s, FALSE);
}

/* Put @text in place of @msg's body. */
static void set_body(Account *a, xmpp_stanza_t *msg, const char *text)
{
	xmpp_stanza_t *body = xmpp_stanza_get_child_by_name(msg, "body");
	xmpp_stanza_t *t = body ? xmpp_stanza_get_children(body) : NULL;

	if (!body) {
		xmpp_message_set_body(msg, text);
		return;
	}
	if (t && xmpp_stanza_is_text(t) && !xmpp_stanza_get_next(t)) {
		xmpp_stanza_set_text(t, text);
		return;
	}
	/* (an empty body, or one in pieces: a new name for the old one,
	 * which no one reads) */
	xmpp_stanza_set_name(body, "xfs-old-body");
	xmpp_message_set_body(msg, text);
}

OmemoIn omemo_message_in(Account *a, xmpp_stanza_t *msg, const char *from,
			 char **why, int *err)
{
	Omemo *o = omemo_of(a);
	xmpp_stanza_t *enc = xmpp_stanza_get_child_by_name_and_ns(
		msg, "encrypted", NS_AXOLOTL);
	g_autoptr(OmemoEnvelope) e = NULL;
	g_autofree char *text = NULL, *key = NULL, *sum = NULL, *body = NULL;
	bool prekey_used = false;
	guint32 own;
	int ret;

	*why = NULL;
	*err = 0;
	g_clear_pointer(&o->last_key, g_free);
	if (!enc)
		return OMEMO_IN_PLAIN;
	if (!o->store) {
		*why = g_strdup("OMEMO is off for this account");
		return OMEMO_IN_FAILED;
	}
	own = omemo_store_device_id(o->store);
	if (!(e = envelope_parse(enc, from, own))) {
		*why = g_strdup("malformed OMEMO element");
		return OMEMO_IN_FAILED;
	}
	if (!strcmp(from, own_jid(a)) && e->sid == own)
		return OMEMO_IN_NOTHING; /* our own, which we cannot read */
	if (!e->keys->len) {
		if (!e->payload)
			return OMEMO_IN_NOTHING; /* another device's heartbeat */
		*why = g_strdup("not encrypted for this device");
		return OMEMO_IN_FAILED;
	}
	sum = g_compute_checksum_for_bytes(
		G_CHECKSUM_SHA256, ((OmemoKey *)e->keys->pdata[0])->data);
	key = g_strdup_printf("%s/%u/%s", from, e->sid, sum);
	ret = omemo_store_decrypt(o->store, from, e, &text, &prekey_used);
	if (prekey_used) {
		if (!o->bundle_due)
			o->bundle_due = g_get_monotonic_time() +
					BUNDLE_REPUBLISH_US;
		send_heartbeat(a, from, e->sid);
	}
	if (ret == -EALREADY) {
		const char *had = g_hash_table_lookup(o->recent, key);
		if (!had)
			return OMEMO_IN_NOTHING; /* a duplicate, logged */
		set_body(a, msg, had);
		o->last_key = g_steal_pointer(&key);
		return OMEMO_IN_DECRYPTED;
	}
	if (ret && ret != -ENOKEY && ret != -EBADMSG && ret != -ENOENT &&
	    ret != -EILSEQ && ret != -EINVAL) {
		/* the store could not keep what the decryption changed (a
		 * full disk): nothing was used up, the message can be read
		 * once it can; it is not the message's fault */
		*err = -ret;
		return OMEMO_IN_LATER;
	}
	if (ret) {
		*why = g_strdup(ret == -ENOKEY ? "not encrypted for this device"
				: ret == -EBADMSG
					? "does not authenticate: altered or "
					  "corrupt"
				: ret == -ENOENT ? "no session with that device"
				: ret == -EILSEQ ? "not text"
						 : g_strerror(-ret));
		return OMEMO_IN_FAILED;
	}
	if (!text)
		return OMEMO_IN_NOTHING; /* key transport, heartbeat */
	if (!g_utf8_validate(text, -1, NULL)) {
		*why = g_strdup("not UTF-8 text");
		return OMEMO_IN_FAILED;
	}
	body = as_body_text(text);
	recent_add(o, key, body);
	set_body(a, msg, body);
	o->last_key = g_steal_pointer(&key);
	return OMEMO_IN_DECRYPTED;
}

/* A device list, from a contact's PEP service or ours. */
bool omemo_in(Account *a, const In *in)
{
	xmpp_stanza_t *items = pep_event_items(in, NODE_DEVICES);
	xmpp_stanza_t *item;
	g_autoptr(GArray) ids = NULL;

	if (!items)
		return false;
	if (!omemo_of(a)->store || !in->bare || in->jid->resource)
		return true;
	item = xmpp_stanza_get_child_by_name(items, "item");
	if (!item)
		return true; /* (a retraction: the next list says) */
	ids = list_parse(item);
	list_seen(a, in->bare, ids);
	return true;
}

/* ---- the feature ---- */

static void omemo_attach(Account *a, const char *dir)
{
	Omemo *o = omemo_of(a);
	static const OmemoPolicy policies[] = {
		[CFG_OMEMO_TOFU] = OMEMO_POLICY_TOFU,
		[CFG_OMEMO_BLIND] = OMEMO_POLICY_BLIND,
		[CFG_OMEMO_MANUAL] = OMEMO_POLICY_MANUAL,
	};
	g_autoptr(GError) err = NULL;
	g_autofree char *sdir = g_build_filename(dir, "omemo", NULL);

	g_mutex_init(&o->lock);
	o->modes = g_hash_table_new_full(g_str_hash, g_str_equal, g_free,
					 g_free);
	o->modes_path = g_build_filename(dir, "encryption", NULL);
	o->asked = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
	o->prep = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
	o->failed = g_hash_table_new_full(g_str_hash, g_str_equal, g_free,
					  g_free);
	o->recent = g_hash_table_new_full(g_str_hash, g_str_equal, g_free,
					  g_free);
	g_queue_init(&o->held);
	g_queue_init(&o->recent_order);
	modes_load(o);
	if (!acct_cfg(a)->omemo)
		return;
	o->store = omemo_store_open(sdir, policies[acct_cfg(a)->omemo_trust],
				    &err);
	if (!o->store)
		xfs_warn("%s: OMEMO is off: %s", acct_cfg(a)->jid,
			 err->message);
}

static void omemo_detach(Account *a)
{
	Omemo *o = omemo_of(a);

	g_queue_clear_full(&o->held, (GDestroyNotify)acct_outmsg_free);
	g_clear_pointer(&o->store, omemo_store_free);
	g_hash_table_unref(o->modes);
	g_hash_table_unref(o->asked);
	g_hash_table_unref(o->prep);
	g_hash_table_unref(o->failed);
	g_hash_table_unref(o->recent);
	g_queue_clear(&o->recent_order); /* (the keys were the table's) */
	g_free(o->last_key);
	g_free(o->modes_path);
	g_mutex_clear(&o->lock);
}

static void omemo_online(Account *a)
{
	Omemo *o = omemo_of(a);

	if (!o->store)
		return;
	publish_bundle(a);
	o->bundle_due = 0;
	pep_fetch(a, NODE_DEVICES, own_list_fetched, NULL, NULL);
}

static void omemo_offline(Account *a)
{
	Omemo *o = omemo_of(a);
	OutMsg *m;

	/* what waited goes back to the queue, for the next stream */
	g_hash_table_remove_all(o->prep);
	while ((m = g_queue_pop_head(&o->held)))
		g_queue_insert_sorted(&a->outq, m, by_seq, NULL);
}

static gint64 omemo_due(Account *a)
{
	Omemo *o = omemo_of(a);

	return o->bundle_due ? o->bundle_due : G_MAXINT64;
}

static void omemo_tick(Account *a, gint64 now)
{
	Omemo *o = omemo_of(a);

	if (!o->bundle_due || now < o->bundle_due)
		return;
	o->bundle_due = 0;
	if (acct_is_online(a))
		publish_bundle(a);
}

const Feature omemo_feature = {
	.name = "OMEMO end-to-end encryption (XEP-0384 0.3)",
	.state_size = sizeof(Omemo),
	.attach = omemo_attach,
	.detach = omemo_detach,
	.online = omemo_online,
	.offline = omemo_offline,
	.due = omemo_due,
	.tick = omemo_tick,
	.outgoing = omemo_outgoing,
	.own_message = omemo_own_message,
};
