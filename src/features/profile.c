/* profile.c - who the account and its contacts are to others, from PEP:
 * nicknames (XEP-0172, node http://jabber.org/protocol/nick) and avatars
 * (XEP-0084: the metadata node says which image is current, by its
 * SHA-1; the data node holds it in base64).
 *
 * Contacts' (and our other clients') changes come as notifications, to
 * which our caps subscribe (+notify); ours are fetched at each connect.
 * An avatar is kept on disk as DATA/ACCOUNT/avatars/JID.EXT (the mount
 * shows it as contacts/JID/avatar.EXT, ours as ACCOUNT/avatar.EXT), its
 * id beside it in JID.id, and fetched only when the id changes; what is
 * fetched must have that SHA-1, a known image type and a sane size.
 * Nicks are kept in memory: the server sends them again at each connect.
 * Pool thread, but the [any] functions (profile.h). */
#include "features/profile.h"
#include "features/featureset.h"
#include "features/pep.h"
#include "xmpp/account_int.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "base/jid.h"
#include "base/log.h"
#include "base/text.h"
#include "store/roster.h"

#define NS_NICK "http://jabber.org/protocol/nick"
#define NS_AV_DATA "urn:xmpp:avatar:data"
#define NS_AV_META "urn:xmpp:avatar:metadata"
#define NS_VCARD_UPDATE "vcard-temp:x:update"
#define NS_VCARD_TEMP "vcard-temp"
#define NICK_MAX 1023

/* Each account's (Feature.state_size). */
typedef struct {
	GMutex lock;       /* around nicks: FUSE threads read them */
	GHashTable *nicks; /* bare JID (ours too) -> nick */
	GHashTable *fetching; /* bare JID -> avatar id asked for (pool) */
	char *dir;         /* DATA/ACCOUNT/avatars (set at attach) */
} Profile;

const Feature profile_feature;

static Profile *pr_of(Account *a)
{
	return acct_state(a, &profile_feature);
}

/* The image types an avatar may have, as extension and MIME type. */
static const struct {
	const char *ext, *mime;
} types[] = {
	{"png", "image/png"},
	{"jpg", "image/jpeg"},
	{"gif", "image/gif"},
	{"webp", "image/webp"},
};

static const char *mime_of_ext(const char *ext)
{
	if (!g_strcmp0(ext, "jpeg"))
		ext = "jpg";
	for (guint i = 0; i < G_N_ELEMENTS(types); i++)
		if (!g_strcmp0(types[i].ext, ext))
			return types[i].mime;
	return NULL;
}

static const char *ext_of_mime(const char *mime)
{
	for (guint i = 0; i < G_N_ELEMENTS(types); i++)
		if (!g_strcmp0(types[i].mime, mime))
			return types[i].ext;
	return NULL;
}

/* What the bytes themselves say they are (their magic), or NULL. */
static const char *mime_of_bytes(const guint8 *d, gsize n)
{
	if (n >= 8 && !memcmp(d, "\x89PNG\r\n\x1a\n", 8))
		return "image/png";
	if (n >= 3 && !memcmp(d, "\xff\xd8\xff", 3))
		return "image/jpeg";
	if (n >= 6 && (!memcmp(d, "GIF87a", 6) || !memcmp(d, "GIF89a", 6)))
		return "image/gif";
	if (n >= 12 && !memcmp(d, "RIFF", 4) && !memcmp(d + 8, "WEBP", 4))
		return "image/webp";
	return NULL;
}

static const char *who(Account *a, const char *jid)
{
	return jid ? jid : acct_cfg(a)->jid;
}

/* ---- nicknames ---- */

char *profile_nick_text(Account *a, const char *jid)
{
	Profile *p = pr_of(a);
	const char *nick;
	char *text;

	g_mutex_lock(&p->lock);
	nick = g_hash_table_lookup(p->nicks, who(a, jid));
	text = nick ? g_strdup_printf("%s\n", nick) : g_strdup("");
	g_mutex_unlock(&p->lock);
	return text;
}

static void nick_set(Account *a, const char *jid, const char *nick)
{
	Profile *p = pr_of(a);

	g_mutex_lock(&p->lock);
	if (nick && *nick)
		g_hash_table_replace(p->nicks, g_strdup(jid), g_strdup(nick));
	else
		g_hash_table_remove(p->nicks, jid);
	g_mutex_unlock(&p->lock);
}

/* A nick from the wire, on one line and not too long; NULL for none. */
static char *nick_from(xmpp_stanza_t *item)
{
	xmpp_stanza_t *n = xmpp_stanza_get_child_by_name_and_ns(item, "nick",
								NS_NICK);
	char *nick = acct_text(n);

	if (nick && (!*nick || strlen(nick) > NICK_MAX ||
		     !g_utf8_validate(nick, -1, NULL))) {
		g_free(nick);
		return NULL;
	}
	for (char *c = nick; c && *c; c++)
		if ((guchar)*c < 0x20 || *c == 0x7f)
			*c = ' ';
	return nick;
}

static void take_nick(Account *a, xmpp_stanza_t *item, void *data)
{
	g_autofree char *nick = nick_from(item);

	nick_set(a, data, nick);
}

/* ---- avatars ---- */

char *profile_avatar_path(Account *a, const char *jid, const char *ext)
{
	g_autofree char *name = jid_to_filename(who(a, jid));
	g_autofree char *file = g_strdup_printf("%s.%s", name, ext);

	return g_build_filename(pr_of(a)->dir, file, NULL);
}

char *profile_avatar_ext(Account *a, const char *jid)
{
	for (guint i = 0; i < G_N_ELEMENTS(types); i++) {
		g_autofree char *path = profile_avatar_path(a, jid,
							    types[i].ext);
		if (g_file_test(path, G_FILE_TEST_IS_REGULAR))
			return g_strdup(types[i].ext);
	}
	return NULL;
}

/* The id (SHA-1, hex) of the avatar kept for @jid, NULL for none. */
static char *kept_id(Account *a, const char *jid)
{
	g_autofree char *path = profile_avatar_path(a, jid, "id");
	char *id = NULL;

	if (!g_file_get_contents(path, &id, NULL, NULL))
		return NULL;
	return g_strstrip(id);
}

/* @jid's avatar is now @data of @ext (NULL: none): the other types'
 * files go, the id beside it says which it is. */
static int keep(Account *a, const char *jid, const char *ext,
		const void *data, gsize len, const char *id)
{
	g_autoptr(GError) err = NULL;
	g_autofree char *idpath = profile_avatar_path(a, jid, "id");

	for (guint i = 0; i < G_N_ELEMENTS(types); i++) {
		g_autofree char *path = profile_avatar_path(a, jid,
							    types[i].ext);
		if (!ext || strcmp(ext, types[i].ext))
			unlink(path);
	}
	if (!ext) {
		unlink(idpath);
		return 0;
	}
	g_autofree char *path = profile_avatar_path(a, jid, ext);
	if (!g_file_set_contents(path, data, len, &err) ||
	    !g_file_set_contents(idpath, id, -1, &err)) {
		xfs_warn("%s: the avatar of %s is not kept: %s",
			 acct_cfg(a)->jid, who(a, jid), err->message);
		return -EIO;
	}
	return 0;
}

typedef struct {
	char *jid, *id, *ext;
	guint bytes;
} Fetch;

static void fetch_free(void *data)
{
	Fetch *f = data;

	g_free(f->jid);
	g_free(f->id);
	g_free(f->ext);
	g_free(f);
}

/* An answer for @f: whether it is the avatar still wanted (the newest
 * asked for, or, after a reconnect, the only one). */
static bool fetch_done(Profile *p, const Fetch *f)
{
	const char *want = g_hash_table_lookup(p->fetching, f->jid);

	if (want && strcmp(want, f->id))
		return false;
	g_hash_table_remove(p->fetching, f->jid);
	return true;
}

/* At most this many avatars asked for at once: a flood of notifications
 * (each with a new id) must not become a flood of requests. */
#define FETCHING_MAX 64

static void data_fetched(Account *a, xmpp_stanza_t *answer, int err,
			 void *data)
{
	Fetch *f = data;
	Profile *p = pr_of(a);
	xmpp_stanza_t *item, *d;
	g_autofree char *b64 = NULL;
	g_autofree guint8 *bytes = NULL;
	g_autofree char *sum = NULL, *text = NULL;
	gsize len = 0;

	if (!fetch_done(p, f))
		return; /* a newer one is on its way: this one is old */
	item = pep_first_item(answer);
	d = item ? xmpp_stanza_get_child_by_name_and_ns(item, "data",
							NS_AV_DATA)
		 : NULL;
	b64 = acct_text(d);
	if (b64 && strlen(b64) <= PROFILE_AVATAR_FETCH_MAX / 3 * 4 + 4096)
		bytes = g_base64_decode(b64, &len);
	if (!bytes || !len) {
		if (await_errno(answer, err) != -ECONNRESET)
			xfs_info("%s: the avatar of %s could not be fetched "
				 "(%s)", acct_cfg(a)->jid, f->jid,
				 err || !answer ? g_strerror(-await_errno(
							  answer, err))
						: "no data");
		return;
	}
	sum = g_compute_checksum_for_data(G_CHECKSUM_SHA1, bytes, len);
	/* what the metadata promised, or nothing: a data item that is not
	 * the image its id hashes, or of another type, is not kept */
	if (g_ascii_strcasecmp(sum, f->id) || len > PROFILE_AVATAR_FETCH_MAX ||
	    g_strcmp0(mime_of_bytes(bytes, len), mime_of_ext(f->ext))) {
		xfs_info("%s: the avatar of %s is not what its metadata "
			 "says; not kept", acct_cfg(a)->jid, f->jid);
		return;
	}
	if (keep(a, !strcmp(f->jid, acct_cfg(a)->jid) ? NULL : f->jid, f->ext,
		 bytes, len, f->id))
		return;
	text = g_strdup_printf("avatar.%s, %zu bytes", f->ext, (size_t)len);
	acct_event(a, "avatar", f->jid, text);
}

/* The metadata item of @jid's avatar: which image is current. */
static void take_meta(Account *a, const char *jid, xmpp_stanza_t *item)
{
	Profile *p = pr_of(a);
	xmpp_stanza_t *m = xmpp_stanza_get_child_by_name_and_ns(item,
								"metadata",
								NS_AV_META);
	const char *self = !strcmp(jid, acct_cfg(a)->jid) ? NULL : jid;
	g_autofree char *kept = kept_id(a, self);
	xmpp_stanza_t *iq, *ps, *items, *want;
	const char *id = NULL, *ext = NULL;
	Fetch *f;

	if (!m)
		return;
	for (xmpp_stanza_t *c = xmpp_stanza_get_children(m); c && !id;
	     c = xmpp_stanza_get_next(c)) {
		const char *cid;
		if (!xmpp_stanza_is_tag(c) ||
		    strcmp(xmpp_stanza_get_name(c), "info") ||
		    xmpp_stanza_get_attribute(c, "url"))
			continue; /* (one elsewhere over HTTP: not fetched) */
		cid = xmpp_stanza_get_id(c);
		ext = ext_of_mime(xmpp_stanza_get_type(c));
		if (ext && cid && strlen(cid) == 40 &&
		    strspn(cid, "0123456789abcdefABCDEF") == 40)
			id = cid;
	}
	if (!id) {
		/* none, or none we can show: it goes */
		g_autofree char *had = profile_avatar_ext(a, self);
		if (had) {
			keep(a, self, NULL, NULL, 0, NULL);
			acct_event(a, "avatar", jid, "removed");
		}
		return;
	}
	if ((kept && !g_ascii_strcasecmp(kept, id)) ||
	    !g_strcmp0(g_hash_table_lookup(p->fetching, jid), id))
		return; /* we have it, or asked for it */
	if (g_hash_table_size(p->fetching) >= FETCHING_MAX &&
	    !g_hash_table_contains(p->fetching, jid))
		return; /* (its next notification, or our next connect) */
	g_hash_table_replace(p->fetching, g_strdup(jid), g_strdup(id));
	iq = xmpp_iq_new(a->ctx, "get", NULL);
	if (self)
		xmpp_stanza_set_to(iq, jid);
	ps = acct_add_child(a, iq, "pubsub", NS_PUBSUB);
	items = acct_add_child(a, ps, "items", NULL);
	xmpp_stanza_set_attribute(items, "node", NS_AV_DATA);
	want = acct_add_child(a, items, "item", NULL);
	xmpp_stanza_set_id(want, id);
	f = g_new0(Fetch, 1);
	f->jid = g_strdup(jid);
	f->id = g_ascii_strdown(id, -1);
	f->ext = g_strdup(ext);
	await_iq(a, iq, acct_cfg(a)->iq_timeout, data_fetched, f, fetch_free);
	xmpp_stanza_release(iq);
}

static void take_meta_item(Account *a, xmpp_stanza_t *item, void *data)
{
	take_meta(a, data, item);
}

/* ---- the older avatars: XEP-0153, in vcard-temp ---- */

static void temp_fetched(Account *a, xmpp_stanza_t *answer, int err,
			 void *data)
{
	Fetch *f = data;
	Profile *p = pr_of(a);
	xmpp_stanza_t *vc = answer ? xmpp_stanza_get_child_by_name_and_ns(
					     answer, "vCard", NS_VCARD_TEMP)
				   : NULL;
	xmpp_stanza_t *photo = vc ? xmpp_stanza_get_child_by_name(vc, "PHOTO")
				  : NULL;
	g_autofree char *b64 = photo ? acct_child_text(photo, "BINVAL") : NULL;
	g_autofree guint8 *bytes = NULL;
	g_autofree char *sum = NULL, *text = NULL;
	const char *mime, *ext;
	gsize len = 0;

	(void)err;
	if (!fetch_done(p, f))
		return; /* a newer one is on its way: this one is old */
	if (b64 && strlen(b64) <= PROFILE_AVATAR_FETCH_MAX / 3 * 4 + 65536)
		bytes = g_base64_decode(b64, &len); /* (it skips the line
						     * breaks vCards have) */
	mime = bytes ? mime_of_bytes(bytes, len) : NULL;
	ext = ext_of_mime(mime);
	if (!ext || len > PROFILE_AVATAR_FETCH_MAX)
		return;
	sum = g_compute_checksum_for_data(G_CHECKSUM_SHA1, bytes, len);
	if (g_ascii_strcasecmp(sum, f->id))
		return; /* not the photo the presence named */
	if (keep(a, f->jid, ext, bytes, len, f->id))
		return;
	text = g_strdup_printf("avatar.%s, %zu bytes", ext, (size_t)len);
	acct_event(a, "avatar", f->jid, text);
}

/* A contact's presence may name its avatar by hash (XEP-0153): when it
 * is not the one kept, their vcard-temp has it.  Only looks: the
 * presence goes on to contacts.c. */
bool profile_presence_in(Account *a, const In *in)
{
	Profile *p = pr_of(a);
	xmpp_stanza_t *x = xmpp_stanza_get_child_by_name_and_ns(
		in->st, "x", NS_VCARD_UPDATE);
	g_autofree char *hash = x ? acct_child_text(x, "photo") : NULL;
	g_autofree char *kept = NULL;
	xmpp_stanza_t *iq;
	Fetch *f;

	if (!hash || !in->bare || in->from_self || in->type ||
	    strlen(hash) != 40 || strspn(hash, "0123456789abcdefABCDEF") != 40)
		return false; /* (an empty photo is no avatar: the PEP one,
			       * if any, stays) */
	kept = kept_id(a, in->bare);
	if ((kept && !g_ascii_strcasecmp(kept, hash)) ||
	    !g_strcmp0(g_hash_table_lookup(p->fetching, in->bare), hash))
		return false;
	if (g_hash_table_size(p->fetching) >= FETCHING_MAX &&
	    !g_hash_table_contains(p->fetching, in->bare))
		return false;
	g_hash_table_replace(p->fetching, g_strdup(in->bare),
			     g_ascii_strdown(hash, -1));
	f = g_new0(Fetch, 1);
	f->jid = g_strdup(in->bare);
	f->id = g_ascii_strdown(hash, -1);
	iq = xmpp_iq_new(a->ctx, "get", NULL);
	xmpp_stanza_set_to(iq, in->bare);
	acct_add_child(a, iq, "vCard", NS_VCARD_TEMP);
	await_iq(a, iq, acct_cfg(a)->iq_timeout, temp_fetched, f, fetch_free);
	xmpp_stanza_release(iq);
	return false;
}

/* A notification of a nick or an avatar, from a contact's service or
 * our own.  Only a roster item's: the server notifies us of those whose
 * presence we have; anyone else's is a forgery (a stranger naming itself
 * "Your Bank"), and each would be kept (a nick in memory, an avatar on
 * disk) for as many JIDs as a hostile server makes up. */
bool profile_in(Account *a, const In *in)
{
	xmpp_stanza_t *items = pep_event_items(in, NS_NICK);
	bool ours = pep_from_us(a, in);
	const char *jid = ours ? acct_cfg(a)->jid : in->bare;

	if (jid && !ours && (in->from_self || !roster_has(acct_roster(a), jid)))
		jid = NULL; /* (taken, and ignored) */

	if (items) {
		if (jid) {
			pep_each(items, "item", take_nick, a, (void *)jid);
			/* (a nick taken back rather than published empty) */
			pep_each(items, "retract", take_nick, a, (void *)jid);
		}
		return true;
	}
	items = pep_event_items(in, NS_AV_META);
	if (!items)
		return false;
	if (jid)
		pep_each(items, "item", take_meta_item, a, (void *)jid);
	return true;
}

/* Ours, fetched: each item to @data, the taker of its node's items. */
static void own_fetched(Account *a, xmpp_stanza_t *answer, int err,
			void *data)
{
	xmpp_stanza_t *items = pep_items(answer);
	void (*take)(Account *, xmpp_stanza_t *, void *) = data;

	(void)err;
	if (items)
		pep_each(items, "item", take, a, (void *)acct_cfg(a)->jid);
}

/* At each connect: ours, as our other clients may have changed them
 * (contacts' come as notifications once the server has our caps). */
static void profile_online(Account *a)
{
	pep_fetch(a, NS_NICK, own_fetched, (void *)take_nick, NULL);
	pep_fetch(a, NS_AV_META, own_fetched, (void *)take_meta_item, NULL);
}

/* ---- ours, published ---- */

typedef struct {
	PoolReq *r;
	char *nick;  /* a nick */
	char *id, *ext; /* an avatar (NULL id: take it back) */
	GBytes *data;
	int width, height; /* (0: unknown) */
} Own;

static void own_free(void *data)
{
	Own *o = data;

	g_free(o->nick);
	g_free(o->id);
	g_free(o->ext);
	if (o->data)
		g_bytes_unref(o->data);
	g_free(o);
}

static void nick_published(Account *a, xmpp_stanza_t *answer, int err,
			   void *data)
{
	Own *o = data;
	int res = await_errno(answer, err);

	if (!res)
		nick_set(a, acct_cfg(a)->jid, o->nick);
	pool_complete(o->r, res);
}

static void nick_run(Account *a, void *data, PoolReq *r)
{
	Own *o = data, *mine;
	xmpp_stanza_t *n;

	if (!acct_is_online(a)) {
		pool_complete(r, -ENOTCONN);
		return;
	}
	mine = g_new0(Own, 1);
	mine->r = r;
	mine->nick = g_strdup(o->nick);
	n = xmpp_stanza_new(a->ctx);
	xmpp_stanza_set_name(n, "nick");
	xmpp_stanza_set_ns(n, NS_NICK);
	if (*o->nick) {
		xmpp_stanza_t *t = xmpp_stanza_new(a->ctx);
		xmpp_stanza_set_text(t, o->nick);
		xmpp_stanza_add_child_ex(n, t, 0);
	}
	pep_publish(a, NS_NICK, "current", n, PEP_CONTACTS, NULL,
		    nick_published, mine, own_free);
	xmpp_stanza_release(n);
}

int profile_set_nick(Pool *p, Account *a, const char *nick)
{
	Own *o;

	if (strlen(nick) > NICK_MAX || strchr(nick, '\n'))
		return -EINVAL;
	if (!text_is_clean(nick, strlen(nick), false))
		return -EILSEQ;
	o = g_new0(Own, 1);
	o->nick = g_strdup(nick);
	return pool_call(p, a, nick_run, o, own_free);
}

static void meta_published(Account *a, xmpp_stanza_t *answer, int err,
			   void *data)
{
	Own *o = data;
	int res = await_errno(answer, err);
	gsize len = 0;
	const void *bytes = o->data ? g_bytes_get_data(o->data, &len) : NULL;

	if (!res)
		res = keep(a, NULL, o->id ? o->ext : NULL, bytes, len, o->id);
	pool_complete(o->r, res);
}

static void publish_meta(Account *a, Own *o)
{
	xmpp_stanza_t *m = xmpp_stanza_new(a->ctx), *info;
	char num[32];

	xmpp_stanza_set_name(m, "metadata");
	xmpp_stanza_set_ns(m, NS_AV_META);
	if (o->id) {
		info = acct_add_child(a, m, "info", NULL);
		g_snprintf(num, sizeof num, "%zu", g_bytes_get_size(o->data));
		xmpp_stanza_set_attribute(info, "bytes", num);
		xmpp_stanza_set_id(info, o->id);
		xmpp_stanza_set_type(info, mime_of_ext(o->ext));
		if (o->width && o->height) {
			g_snprintf(num, sizeof num, "%d", o->width);
			xmpp_stanza_set_attribute(info, "width", num);
			g_snprintf(num, sizeof num, "%d", o->height);
			xmpp_stanza_set_attribute(info, "height", num);
		}
	}
	pep_publish(a, NS_AV_META, o->id ? o->id : "current", m, PEP_CONTACTS,
		    NULL, meta_published, o, own_free);
	xmpp_stanza_release(m);
}

static void data_published(Account *a, xmpp_stanza_t *answer, int err,
			   void *data)
{
	Own *o = data;
	int res = await_errno(answer, err);

	if (res) {
		pool_complete(o->r, res);
		own_free(o);
		return;
	}
	publish_meta(a, o); /* (it frees o) */
}

static void avatar_run(Account *a, void *data, PoolReq *r)
{
	Own *o = data, *mine;
	xmpp_stanza_t *d, *t;
	g_autofree char *b64 = NULL;
	gsize len;

	if (!acct_is_online(a)) {
		pool_complete(r, -ENOTCONN);
		return;
	}
	mine = g_new0(Own, 1);
	mine->r = r;
	mine->id = g_strdup(o->id);
	mine->ext = g_strdup(o->ext);
	mine->data = o->data ? g_bytes_ref(o->data) : NULL;
	mine->width = o->width;
	mine->height = o->height;
	if (!o->id) { /* taken back: empty metadata */
		publish_meta(a, mine);
		return;
	}
	/* the image first, then the metadata that names it (§4.2) */
	d = xmpp_stanza_new(a->ctx);
	xmpp_stanza_set_name(d, "data");
	xmpp_stanza_set_ns(d, NS_AV_DATA);
	b64 = g_base64_encode(g_bytes_get_data(o->data, &len), g_bytes_get_size(
									  o->data));
	t = xmpp_stanza_new(a->ctx);
	xmpp_stanza_set_text(t, b64);
	xmpp_stanza_add_child_ex(d, t, 0);
	pep_publish(a, NS_AV_DATA, o->id, d, PEP_CONTACTS, NULL,
		    data_published, mine, NULL);
	xmpp_stanza_release(d);
}

int profile_set_avatar(Pool *p, Account *a, const char *ext,
		       const void *data, gsize len)
{
	const char *mime = mime_of_ext(ext);
	const guint8 *b = data;
	Own *o;

	if (!mime || g_strcmp0(mime_of_bytes(data, len), mime))
		return -EINVAL;
	if (len > PROFILE_AVATAR_MAX)
		return -EFBIG;
	o = g_new0(Own, 1);
	o->ext = g_strdup(ext_of_mime(mime));
	o->data = g_bytes_new(data, len);
	o->id = g_compute_checksum_for_data(G_CHECKSUM_SHA1, data, len);
	/* a PNG says its size in its header (IHDR) */
	if (!strcmp(mime, "image/png") && len >= 24) {
		o->width = (int)((guint32)b[16] << 24 | b[17] << 16 |
				 b[18] << 8 | b[19]);
		o->height = (int)((guint32)b[20] << 24 | b[21] << 16 |
				  b[22] << 8 | b[23]);
	}
	return pool_call(p, a, avatar_run, o, own_free);
}

int profile_remove_avatar(Pool *p, Account *a)
{
	return pool_call(p, a, avatar_run, g_new0(Own, 1), own_free);
}

/* ---- the feature ---- */

static void profile_attach(Account *a, const char *dir)
{
	Profile *p = pr_of(a);

	g_mutex_init(&p->lock);
	p->nicks = g_hash_table_new_full(g_str_hash, g_str_equal, g_free,
					 g_free);
	p->fetching = g_hash_table_new_full(g_str_hash, g_str_equal, g_free,
					    g_free);
	p->dir = g_build_filename(dir, "avatars", NULL);
	if (g_mkdir_with_parents(p->dir, 0700))
		xfs_warn("%s: %s: %s", acct_cfg(a)->jid, p->dir,
			 g_strerror(errno));
}

static void profile_offline(Account *a)
{
	g_hash_table_remove_all(pr_of(a)->fetching);
}

static void profile_detach(Account *a)
{
	Profile *p = pr_of(a);

	g_clear_pointer(&p->nicks, g_hash_table_unref);
	g_clear_pointer(&p->fetching, g_hash_table_unref);
	g_clear_pointer(&p->dir, g_free);
	g_mutex_clear(&p->lock);
}

const Feature profile_feature = {
	.name = "profile: nick (XEP-0172), avatar (XEP-0084)",
	.state_size = sizeof(Profile),
	.attach = profile_attach,
	.detach = profile_detach,
	.online = profile_online,
	.offline = profile_offline,
};
