/* omemo_store.c - see omemo_store.h: opening the store (and the keys of
 * its first use), our bundle, fingerprints, and the devices of other
 * JIDs with their trust.  The Signal-protocol work on messages is in
 * omemo_session.c; the files in omemo_files.c (their format is there);
 * libomemo-c's callbacks in omemo_signal.c.
 *
 * Trust, as omemo_store.h's policies say:
 *   - a device's identity key seen for the first time gets the policy's
 *     trust: BLIND and TOFU trusted, except that TOFU stops trusting new
 *     keys of a JID once the user decided on any of its devices by hand;
 *     MANUAL undecided.  A decision the user made on that device before
 *     its key was known stands (it was about this device).
 *   - a key that differs from the one known for the device: undecided
 *     (BLIND: trusted), and any decision by hand on it is forgotten.
 * libsignal's own identity check always passes (omemo_signal.c). */
#include "store/omemo_int.h"

#include <errno.h>
#include <key_helper.h>
#include <session_pre_key.h>
#include <string.h>
#include <sys/stat.h>

#include "base/omemo_crypto.h"

static void store_clear(OmemoStore *s)
{
	omemo_signal_free(s);
	SIGNAL_UNREF(s->identity);
	SIGNAL_UNREF(s->spk);
	g_clear_pointer(&s->prekeys, g_hash_table_unref);
	g_clear_pointer(&s->devices, g_hash_table_unref);
	g_clear_pointer(&s->sessions, g_hash_table_unref);
	g_clear_pointer(&s->seen.jid, g_free);
	g_clear_pointer(&s->seen.key, g_bytes_unref);
	g_clear_pointer(&s->dir, g_free);
	g_clear_pointer(&s->sessions_dir, g_free);
}

void omemo_store_free(OmemoStore *s)
{
	if (!s)
		return;
	store_clear(s);
	g_rec_mutex_clear(&s->lock);
	g_free(s);
}

static bool io_error(GError **err, const char *path, int e, const char *what)
{
	g_set_error(err, G_FILE_ERROR, g_file_error_from_errno(e),
		    "%s: cannot %s: %s", path, what, g_strerror(e));
	return false;
}

/* @dir exists, is ours alone, and so is its sessions/. */
static bool make_dirs(OmemoStore *s, GError **err)
{
	const char *dirs[] = {s->dir, s->sessions_dir};
	struct stat st;

	for (guint i = 0; i < G_N_ELEMENTS(dirs); i++) {
		if (g_mkdir_with_parents(dirs[i], 0700) < 0)
			return io_error(err, dirs[i], errno, "create it");
		if (stat(dirs[i], &st) < 0)
			return io_error(err, dirs[i], errno, "stat it");
		/* what it keeps is secret: whoever made it, it is 0700 */
		if ((st.st_mode & 077) && chmod(dirs[i], 0700) < 0)
			return io_error(err, dirs[i], errno, "chmod it");
	}
	return true;
}

/* 1 to 2^31-1, as XEP-0384 asks. */
static int new_device_id(guint32 *id)
{
	guint32 r;
	int ret = omemo_crypto_random((guint8 *)&r, sizeof r);

	*id = r % 0x7fffffffu + 1;
	return ret;
}

/* First use: the identity, the device id, the signed pre-key and the
 * pre-keys, written before open returns ("own" last: see omemo_files.c). */
static bool first_use(OmemoStore *s, GError **err)
{
	int ret;

	if (new_device_id(&s->device_id) < 0 ||
	    signal_protocol_key_helper_generate_identity_key_pair(
		    &s->identity, s->ctx) < 0 ||
	    signal_protocol_key_helper_generate_signed_pre_key(
		    &s->spk, s->identity, OMEMO_SPK_ID,
		    (guint64)(g_get_real_time() / 1000), s->ctx) < 0) {
		g_set_error(err, G_FILE_ERROR, G_FILE_ERROR_FAILED,
			    "%s: cannot generate the OMEMO keys", s->dir);
		return false;
	}
	s->next_prekey_id = 1;
	if (omemo_prekeys_generate(s, OMEMO_PREKEYS) < 0) {
		g_set_error(err, G_FILE_ERROR, G_FILE_ERROR_FAILED,
			    "%s: cannot generate the OMEMO pre-keys", s->dir);
		return false;
	}
	if ((ret = omemo_save_prekeys(s)) < 0)
		return io_error(err, s->dir, -ret, "write prekeys");
	if ((ret = omemo_save_own(s)) < 0)
		return io_error(err, s->dir, -ret, "write own");
	return true;
}

static bool store_load(OmemoStore *s, GError **err)
{
	int own;

	if (!make_dirs(s, err))
		return false;
	omemo_remove_leftovers(s->dir);
	omemo_remove_leftovers(s->sessions_dir);
	if (omemo_signal_init(s) < 0) {
		g_set_error(err, G_FILE_ERROR, G_FILE_ERROR_NOMEM,
			    "cannot set up libomemo-c");
		return false;
	}
	if (!omemo_load_devices(s, err) || !omemo_load_sessions(s, err))
		return false;
	own = omemo_load_own(s, err);
	if (own < 0)
		return false;
	if (own == 1)
		return omemo_load_prekeys(s, err);
	/* Sessions belong to the identity they were built with: under a
	 * new one they would send what nobody can read.  (Pre-keys without
	 * "own" are what a first use cut short left: written over.) */
	if (g_hash_table_size(s->sessions)) {
		g_set_error(err, G_FILE_ERROR, G_FILE_ERROR_NOENT,
			    "%s: sessions but no own keys: not starting over",
			    s->dir);
		return false;
	}
	return first_use(s, err);
}

OmemoStore *omemo_store_open(const char *dir, OmemoPolicy policy,
			     GError **err)
{
	OmemoStore *s = g_new0(OmemoStore, 1);

	g_rec_mutex_init(&s->lock);
	s->dir = g_strdup(dir);
	s->sessions_dir = g_build_filename(dir, "sessions", NULL);
	s->policy = policy;
	s->prekeys = g_hash_table_new_full(g_direct_hash, g_direct_equal, NULL,
					   omemo_prekey_rec_free);
	s->devices = g_hash_table_new_full(g_str_hash, g_str_equal, g_free,
					   (GDestroyNotify)g_hash_table_unref);
	s->sessions = g_hash_table_new_full(g_str_hash, g_str_equal, g_free,
					    (GDestroyNotify)g_hash_table_unref);
	if (!store_load(s, err)) {
		omemo_store_free(s);
		return NULL;
	}
	return s;
}

guint32 omemo_store_device_id(OmemoStore *s)
{
	return s->device_id; /* set once, at open */
}

char *omemo_fingerprint(const guint8 *key, gsize len)
{
	GString *out;

	if (len == OMEMO_KEY_LEN && key[0] == 0x05) {
		key++;
		len--;
	}
	if (len != 32)
		return NULL;
	out = g_string_sized_new(72);
	for (gsize i = 0; i < len; i++) {
		if (i && i % 4 == 0)
			g_string_append_c(out, ' ');
		g_string_append_printf(out, "%02x", key[i]);
	}
	return g_string_free(out, FALSE);
}

static GBytes *public_bytes(const ec_public_key *key)
{
	signal_buffer *b = NULL;
	GBytes *ret;

	if (ec_public_key_serialize(&b, key) < 0)
		return NULL;
	ret = g_bytes_new(signal_buffer_data(b), signal_buffer_len(b));
	signal_buffer_free(b);
	return ret;
}

static GBytes *own_identity(OmemoStore *s)
{
	return public_bytes(ratchet_identity_key_pair_get_public(s->identity));
}

char *omemo_store_fingerprint(OmemoStore *s)
{
	g_autoptr(GBytes) pub = own_identity(s); /* the pair is set at open */

	return pub ? omemo_fingerprint(g_bytes_get_data(pub, NULL),
				       g_bytes_get_size(pub))
		   : NULL;
}

/* ---- bundles ---- */

static void prekey_clear(gpointer p)
{
	OmemoPreKey *k = p;

	g_clear_pointer(&k->pub, g_bytes_unref);
}

OmemoBundle *omemo_bundle_new(void)
{
	OmemoBundle *b = g_new0(OmemoBundle, 1);

	b->prekeys = g_array_new(FALSE, TRUE, sizeof(OmemoPreKey));
	g_array_set_clear_func(b->prekeys, prekey_clear);
	return b;
}

void omemo_bundle_free(OmemoBundle *b)
{
	if (!b)
		return;
	g_clear_pointer(&b->identity, g_bytes_unref);
	g_clear_pointer(&b->spk, g_bytes_unref);
	g_clear_pointer(&b->spk_sig, g_bytes_unref);
	g_clear_pointer(&b->prekeys, g_array_unref);
	g_free(b);
}

static gint cmp_prekey(gconstpointer a, gconstpointer b)
{
	guint32 x = ((const OmemoPreKey *)a)->id;
	guint32 y = ((const OmemoPreKey *)b)->id;

	return x < y ? -1 : x > y;
}

OmemoBundle *omemo_store_bundle(OmemoStore *s)
{
	OmemoBundle *b = omemo_bundle_new();
	ec_key_pair *spk;
	GHashTableIter it;
	gpointer v;

	g_rec_mutex_lock(&s->lock);
	spk = session_signed_pre_key_get_key_pair(s->spk);
	b->identity = own_identity(s);
	b->spk_id = session_signed_pre_key_get_id(s->spk);
	b->spk = public_bytes(ec_key_pair_get_public(spk));
	b->spk_sig = g_bytes_new(
		session_signed_pre_key_get_signature(s->spk),
		session_signed_pre_key_get_signature_len(s->spk));
	g_hash_table_iter_init(&it, s->prekeys);
	while (g_hash_table_iter_next(&it, NULL, &v)) {
		OmemoPreKeyRec *r = v;
		OmemoPreKey k = {.id = r->id, .pub = g_bytes_ref(r->pub)};

		g_array_append_val(b->prekeys, k);
	}
	g_rec_mutex_unlock(&s->lock);
	g_array_sort(b->prekeys, cmp_prekey);
	return b;
}

/* ---- devices and trust ---- */

static void device_clear(gpointer p)
{
	OmemoDevice *d = p;

	g_clear_pointer(&d->fingerprint, g_free);
}

static gint cmp_device(gconstpointer a, gconstpointer b)
{
	guint32 x = ((const OmemoDevice *)a)->id;
	guint32 y = ((const OmemoDevice *)b)->id;

	return x < y ? -1 : x > y;
}

GArray *omemo_store_devices(OmemoStore *s, const char *jid)
{
	GArray *out = g_array_new(FALSE, TRUE, sizeof(OmemoDevice));
	GHashTable *t, *sessions;
	GHashTableIter it;
	gpointer v;

	g_array_set_clear_func(out, device_clear);
	if (!omemo_jid_ok(jid))
		return out;
	g_rec_mutex_lock(&s->lock);
	t = omemo_jid_table(s->devices, jid, false, NULL);
	sessions = omemo_jid_table(s->sessions, jid, false, NULL);
	if (t) {
		g_hash_table_iter_init(&it, t);
		while (g_hash_table_iter_next(&it, NULL, &v)) {
			OmemoDeviceRec *r = v;
			OmemoDevice d = {
				.id = r->id,
				.trust = r->trust,
				.active = r->active,
				.session = sessions && g_hash_table_contains(
					sessions, OMEMO_ID_KEY(r->id)),
			};

			if (r->identity)
				d.fingerprint = omemo_fingerprint(
					g_bytes_get_data(r->identity, NULL),
					g_bytes_get_size(r->identity));
			g_array_append_val(out, d);
		}
	}
	g_rec_mutex_unlock(&s->lock);
	g_array_sort(out, cmp_device);
	return out;
}

static bool id_ok(guint32 id)
{
	return id >= 1 && id <= G_MAXINT32;
}

static OmemoDeviceRec *device_add(GHashTable *t, guint32 id)
{
	OmemoDeviceRec *d = g_new0(OmemoDeviceRec, 1);

	d->id = id;
	d->trust = OMEMO_UNDECIDED;
	g_hash_table_insert(t, OMEMO_ID_KEY(id), d);
	return d;
}

/* Our own id is left out of every list, not only of our own JID's (the
 * store does not know which that is): another JID's device with the same
 * id could not be told from ours in OMEMO 0.3's key elements anyway,
 * whose rid names no JID. */
int omemo_store_set_device_list(OmemoStore *s, const char *jid,
				const guint32 *ids, guint n)
{
	g_autoptr(GHashTable) listed = g_hash_table_new(g_direct_hash,
							g_direct_equal);
	GHashTable *t;
	GHashTableIter it;
	gpointer v;
	bool changed = false;
	int ret = 0;

	if (!omemo_jid_ok(jid) || (n && !ids))
		return -EINVAL;
	for (guint i = 0; i < n; i++)
		if (id_ok(ids[i]) && ids[i] != s->device_id)
			g_hash_table_add(listed, OMEMO_ID_KEY(ids[i]));
	g_rec_mutex_lock(&s->lock);
	t = omemo_jid_table(s->devices, jid, g_hash_table_size(listed) > 0,
			    omemo_device_rec_free);
	if (!t)
		goto out; /* nothing known, nothing listed */
	g_hash_table_iter_init(&it, t);
	while (g_hash_table_iter_next(&it, NULL, &v)) {
		OmemoDeviceRec *d = v;
		bool on = g_hash_table_contains(listed, OMEMO_ID_KEY(d->id));

		changed |= d->active != on;
		g_hash_table_remove(listed, OMEMO_ID_KEY(d->id));
		/* a device gone from the list with nothing known of it (no
		 * key, no decision) is forgotten: else every list of new
		 * ids a contact publishes would stay in the file for good */
		if (!on && !d->identity && !d->manual) {
			g_hash_table_iter_remove(&it);
			changed = true;
			continue;
		}
		d->active = on;
	}
	g_hash_table_iter_init(&it, listed);
	while (g_hash_table_iter_next(&it, &v, NULL)) {
		device_add(t, GPOINTER_TO_UINT(v))->active = true;
		changed = true;
	}
	if (changed)
		ret = omemo_save_devices(s);
out:
	g_rec_mutex_unlock(&s->lock);
	return ret;
}

int omemo_store_set_trust(OmemoStore *s, const char *jid, guint32 id,
			  OmemoTrust trust)
{
	OmemoDeviceRec *d = NULL;
	GHashTable *t;
	int ret = 0;

	if (trust != OMEMO_UNDECIDED && trust != OMEMO_TRUSTED &&
	    trust != OMEMO_UNTRUSTED)
		return -EINVAL;
	if (!omemo_jid_ok(jid))
		return -ENOENT;
	g_rec_mutex_lock(&s->lock);
	t = omemo_jid_table(s->devices, jid, false, NULL);
	if (t)
		d = g_hash_table_lookup(t, OMEMO_ID_KEY(id));
	if (!d)
		ret = -ENOENT;
	else if (d->trust != trust || !d->manual) {
		d->trust = trust;
		d->manual = true;
		ret = omemo_save_devices(s);
	}
	g_rec_mutex_unlock(&s->lock);
	return ret;
}

/* The trust a device's first identity key gets; @t: its JID's devices. */
static OmemoTrust policy_trust(OmemoStore *s, GHashTable *t)
{
	GHashTableIter it;
	gpointer v;

	switch (s->policy) {
	case OMEMO_POLICY_BLIND:
		return OMEMO_TRUSTED;
	case OMEMO_POLICY_MANUAL:
		return OMEMO_UNDECIDED;
	case OMEMO_POLICY_TOFU:
	default:
		g_hash_table_iter_init(&it, t);
		while (g_hash_table_iter_next(&it, NULL, &v))
			if (((OmemoDeviceRec *)v)->manual)
				return OMEMO_UNDECIDED;
		return OMEMO_TRUSTED;
	}
}

/* A change that cannot be written stays in memory and goes to the file
 * with the next one; the caller hears of the failure. */
int omemo_seen_commit(OmemoStore *s)
{
	OmemoSeen *seen = &s->seen;
	OmemoDeviceRec *d;
	GHashTable *t;

	if (!seen->key || !omemo_jid_ok(seen->jid) || !id_ok(seen->id))
		return 0;
	t = omemo_jid_table(s->devices, seen->jid, true,
			    omemo_device_rec_free);
	d = g_hash_table_lookup(t, OMEMO_ID_KEY(seen->id));
	if (!d)
		d = device_add(t, seen->id);
	if (d->identity && g_bytes_equal(d->identity, seen->key))
		return 0;
	if (!d->identity) {
		if (!d->manual)
			d->trust = policy_trust(s, t);
	} else {
		d->trust = s->policy == OMEMO_POLICY_BLIND ? OMEMO_TRUSTED
							   : OMEMO_UNDECIDED;
		d->manual = false;
	}
	g_clear_pointer(&d->identity, g_bytes_unref);
	d->identity = g_bytes_ref(seen->key);
	return omemo_save_devices(s);
}

/* ---- envelopes ---- */

static void key_free(gpointer p)
{
	OmemoKey *k = p;

	g_free(k->jid);
	g_clear_pointer(&k->data, g_bytes_unref);
	g_free(k);
}

OmemoEnvelope *omemo_envelope_new(void)
{
	OmemoEnvelope *e = g_new0(OmemoEnvelope, 1);

	e->keys = g_ptr_array_new_with_free_func(key_free);
	return e;
}

void omemo_envelope_free(OmemoEnvelope *e)
{
	if (!e)
		return;
	g_clear_pointer(&e->iv, g_bytes_unref);
	g_clear_pointer(&e->payload, g_bytes_unref);
	g_clear_pointer(&e->keys, g_ptr_array_unref);
	g_free(e);
}
