/* omemo_session.c - see omemo_store.h: sessions from bundles, and
 * messages encrypted and decrypted with them.
 *
 * OMEMO 0.3 wraps two layers.  The body is AES-128-GCM under a fresh key
 * and IV; the 16-byte key and the 16-byte GCM tag, concatenated (32
 * bytes), are what each recipient device gets, encrypted by its Signal
 * session: a WhisperMessage, or while the peer has not answered yet a
 * PreKeyWhisperMessage that carries what it needs to build the session.
 * Every session here is libsignal's version 3 (CIPHERTEXT_CURRENT_VERSION:
 * keys serialized with the 0x05 prefix, AES-256-CBC bodies, 8-byte MACs),
 * never libomemo-c's version 4, which is OMEMO 2 (urn:xmpp:omemo:2). */
#include "store/omemo_int.h"

#include <errno.h>
#include <openssl/crypto.h>
#include <protocol.h>
#include <session_builder.h>
#include <session_cipher.h>
#include <session_pre_key.h>
#include <string.h>

#include "base/log.h"
#include "base/omemo_crypto.h"

#define GCM_KEY 16
#define GCM_TAG 16
#define GCM_IV 12

static bool addr_ok(const char *jid, guint32 id)
{
	return omemo_jid_ok(jid) && id >= 1 && id <= G_MAXINT32;
}

static signal_protocol_address addr_of(const char *jid, guint32 id)
{
	return (signal_protocol_address){
		.name = jid, .name_len = strlen(jid), .device_id = (int32_t)id};
}

/* libomemo-c 0.5.0: a session builder (and so a cipher) starts with
 * preferred version 2, and a fresh session only becomes version 3 because
 * ratcheting_session_*_initialize raises anything below 3 to 3.  Ask for
 * 3 outright, so a future default of 4 (OMEMO 2) cannot reach us. */
static session_cipher *cipher_new(OmemoStore *s,
				  const signal_protocol_address *a)
{
	session_cipher *c = NULL;

	if (session_cipher_create(&c, s->sctx, a, s->ctx) < 0)
		return NULL;
	session_cipher_set_version(c, CIPHERTEXT_CURRENT_VERSION);
	return c;
}

/* A public key as a bundle carries it: 33 bytes, 0x05 first.  32 bytes
 * without the prefix are taken as the same Curve25519 key: libomemo-c
 * 0.5.0's curve_decode_point would read 32 bytes as an Ed25519 key
 * (OMEMO 2's form), so those go to curve_decode_point_mont. */
static ec_public_key *decode_key(OmemoStore *s, GBytes *b)
{
	ec_public_key *k = NULL;
	gsize len;
	const guint8 *data = b ? g_bytes_get_data(b, &len) : NULL;
	int ret;

	if (!data)
		return NULL;
	if (len == OMEMO_KEY_LEN && data[0] == 0x05)
		ret = curve_decode_point(&k, data, len, s->ctx);
	else if (len == 32)
		ret = curve_decode_point_mont(&k, data, len, s->ctx);
	else
		return NULL;
	return ret < 0 ? NULL : k;
}

static const OmemoPreKey *random_prekey(const OmemoBundle *b)
{
	guint32 r = 0;

	if (omemo_crypto_random((guint8 *)&r, sizeof r) < 0)
		return NULL;
	return &g_array_index(b->prekeys, OmemoPreKey, r % b->prekeys->len);
}

/* The libsignal bundle of @b with one of its pre-keys; -EBADMSG for a
 * key that is not one, a signature that is not 64 bytes. */
static int bundle_of(OmemoStore *s, guint32 id, const OmemoBundle *b,
		     session_pre_key_bundle **out)
{
	const OmemoPreKey *pk = random_prekey(b);
	ec_public_key *identity = decode_key(s, b->identity);
	ec_public_key *spk = decode_key(s, b->spk);
	ec_public_key *prekey = pk ? decode_key(s, pk->pub) : NULL;
	int ret = -EBADMSG;

	if (!pk)
		ret = -EIO;
	else if (identity && spk && prekey && b->spk_sig &&
		 g_bytes_get_size(b->spk_sig) == 64 &&
		 session_pre_key_bundle_create(
			 out, 0 /* OMEMO has no registration id */, (int)id,
			 pk->id, prekey, b->spk_id, spk,
			 g_bytes_get_data(b->spk_sig, NULL), 64, identity) >= 0)
		ret = 0;
	SIGNAL_UNREF(identity);
	SIGNAL_UNREF(spk);
	SIGNAL_UNREF(prekey);
	return ret;
}

int omemo_store_session_from_bundle(OmemoStore *s, const char *jid,
				    guint32 id, const OmemoBundle *b)
{
	signal_protocol_address a;
	session_pre_key_bundle *bundle = NULL;
	session_builder *builder = NULL;
	int ret;

	if (!addr_ok(jid, id) || !b || !b->prekeys || !b->prekeys->len)
		return -EINVAL;
	a = addr_of(jid, id);
	g_rec_mutex_lock(&s->lock);
	ret = bundle_of(s, id, b, &bundle);
	if (ret)
		goto out;
	if (session_builder_create(&builder, s->sctx, &a, s->ctx) < 0) {
		ret = -ENOMEM;
		goto out;
	}
	session_builder_set_version(builder, CIPHERTEXT_CURRENT_VERSION);
	omemo_call_begin(s);
	/* fails with SG_ERR_INVALID_KEY for a bad signature: -EBADMSG */
	ret = omemo_sg_errno(s, session_builder_process_pre_key_bundle(builder,
								       bundle));
	if (!ret)
		ret = omemo_seen_commit(s);
out:
	omemo_call_begin(s); /* nothing of the call stays behind */
	g_rec_mutex_unlock(&s->lock);
	session_builder_free(builder);
	SIGNAL_UNREF(bundle);
	return ret;
}

static bool has_session(OmemoStore *s, const char *jid, guint32 id)
{
	GHashTable *t = omemo_jid_table(s->sessions, jid, false, NULL);

	return t && g_hash_table_contains(t, OMEMO_ID_KEY(id));
}

/* @key (key||tag, 32 bytes) for one device, by its session.  0, 1 when
 * the session cannot be used (left out), or -errno when its new state
 * cannot be stored. */
static int encrypt_key(OmemoStore *s, const OmemoAddr *to, const guint8 *key,
		       OmemoEnvelope *e)
{
	signal_protocol_address a = addr_of(to->jid, to->id);
	session_cipher *c = cipher_new(s, &a);
	ciphertext_message *msg = NULL;
	signal_buffer *data;
	OmemoKey *k;
	int ret;

	if (!c)
		return -ENOMEM;
	omemo_call_begin(s);
	ret = session_cipher_encrypt(c, key, GCM_KEY + GCM_TAG, &msg);
	session_cipher_free(c);
	if (ret < 0) {
		if (s->io_err)
			return s->io_err;
		xfs_debug("omemo: session with device %" G_GUINT32_FORMAT
			  " of %s unusable (%d): left out", to->id, to->jid,
			  ret);
		return 1;
	}
	data = ciphertext_message_get_serialized(msg);
	k = g_new0(OmemoKey, 1);
	k->jid = g_strdup(to->jid);
	k->rid = to->id;
	k->prekey = ciphertext_message_get_type(msg) ==
		    CIPHERTEXT_PREKEY_TYPE;
	k->data = g_bytes_new(signal_buffer_data(data),
			      signal_buffer_len(data));
	g_ptr_array_add(e->keys, k);
	SIGNAL_UNREF(msg);
	return 0;
}

/* The payload of @text under a fresh key and IV into @e; @keytag gets
 * key||tag.  A key-transport message (@text NULL) has no payload, and
 * its tag is GCM's over nothing: every key element holds 32 bytes. */
static int encrypt_payload(const char *text, guint8 keytag[32],
			   OmemoEnvelope *e)
{
	guint8 iv[GCM_IV];
	gsize len = text ? strlen(text) : 0;
	guint8 *out = g_malloc(len + 1);
	int ret;

	ret = omemo_crypto_random(keytag, GCM_KEY);
	if (!ret)
		ret = omemo_crypto_random(iv, sizeof iv);
	if (!ret)
		ret = omemo_crypto_gcm_encrypt(keytag, iv, sizeof iv,
					       (const guint8 *)text, len, out,
					       keytag + GCM_KEY);
	if (ret) {
		g_free(out);
		return ret;
	}
	e->iv = g_bytes_new(iv, sizeof iv);
	if (text)
		e->payload = g_bytes_new_take(out, len);
	else
		g_free(out);
	return 0;
}

int omemo_store_encrypt(OmemoStore *s, const char *text, const OmemoAddr *to,
			guint n, OmemoEnvelope **out)
{
	g_autoptr(OmemoEnvelope) e = omemo_envelope_new();
	g_autoptr(GHashTable) done = g_hash_table_new_full(g_str_hash,
							   g_str_equal, g_free,
							   NULL);
	guint8 keytag[GCM_KEY + GCM_TAG];
	bool any = false;
	int ret = 0;

	*out = NULL;
	if (n && !to)
		return -EINVAL;
	g_rec_mutex_lock(&s->lock);
	for (guint i = 0; i < n && !any; i++)
		any = addr_ok(to[i].jid, to[i].id) &&
		      has_session(s, to[i].jid, to[i].id);
	if (!any) {
		ret = -ENOKEY;
		goto out;
	}
	ret = encrypt_payload(text, keytag, e);
	for (guint i = 0; !ret && i < n; i++) {
		char *name;

		if (!addr_ok(to[i].jid, to[i].id) ||
		    !has_session(s, to[i].jid, to[i].id))
			continue;
		/* a device named twice gets one key, one ratchet step */
		name = g_strdup_printf("%s\n%" G_GUINT32_FORMAT, to[i].jid,
				       to[i].id);
		if (!g_hash_table_add(done, name))
			continue;
		ret = encrypt_key(s, &to[i], keytag, e);
		if (ret == 1)
			ret = 0;
	}
	OPENSSL_cleanse(keytag, sizeof keytag);
	if (!ret && !e->keys->len)
		ret = -ENOKEY;
	if (!ret) {
		e->sid = s->device_id;
		*out = g_steal_pointer(&e);
	}
out:
	omemo_call_begin(s);
	g_rec_mutex_unlock(&s->lock);
	return ret;
}

/* The key element for our device, if any. */
static const OmemoKey *our_key(OmemoStore *s, const OmemoEnvelope *e)
{
	for (guint i = 0; e->keys && i < e->keys->len; i++) {
		const OmemoKey *k = e->keys->pdata[i];

		if (k && k->rid == s->device_id && k->data)
			return k;
	}
	return NULL;
}

/* @k's Signal message, decrypted by the session with @a (or, for a
 * pre-key message, the session it builds).  0 and *plain, or -errno. */
static int decrypt_key(OmemoStore *s, const signal_protocol_address *a,
		       const OmemoKey *k, signal_buffer **plain)
{
	gsize len;
	const guint8 *data = g_bytes_get_data(k->data, &len);
	session_cipher *c = cipher_new(s, a);
	pre_key_signal_message *pm = NULL;
	signal_message *m = NULL;
	int ret;

	if (!c)
		return -ENOMEM;
	if (k->prekey) {
		ret = pre_key_signal_message_deserialize(&pm, data, len,
							 s->ctx);
		if (ret >= 0)
			ret = session_cipher_decrypt_pre_key_signal_message(
				c, pm, NULL, plain);
	} else {
		ret = signal_message_deserialize(&m, data, len, s->ctx);
		if (ret >= 0)
			ret = session_cipher_decrypt_signal_message(c, m, NULL,
								    plain);
	}
	SIGNAL_UNREF(pm);
	SIGNAL_UNREF(m);
	session_cipher_free(c);
	return omemo_sg_errno(s, ret);
}

/* The payload of @e under key||tag in @keymat (32 bytes), or the key
 * alone (16: the tag is then the payload's last 16 bytes, as the first
 * OMEMO clients sent it). */
static int decrypt_payload(const OmemoEnvelope *e, const guint8 *keymat,
			   gsize keylen, char **text)
{
	gsize len, ivlen;
	const guint8 *in, *iv, *tag;
	char *out;

	if (keylen != GCM_KEY && keylen != GCM_KEY + GCM_TAG)
		return -EBADMSG;
	if (!e->payload)
		return 0; /* key transport: the key is for whoever asked */
	in = g_bytes_get_data(e->payload, &len);
	iv = e->iv ? g_bytes_get_data(e->iv, &ivlen) : NULL;
	if (!iv || (ivlen != 12 && ivlen != 16))
		return -EBADMSG;
	if (keylen == GCM_KEY + GCM_TAG) {
		tag = keymat + GCM_KEY;
	} else {
		if (len < GCM_TAG)
			return -EBADMSG;
		len -= GCM_TAG;
		tag = in + len;
	}
	out = g_malloc(len + 1);
	if (omemo_crypto_gcm_decrypt(keymat, iv, ivlen, in, len, tag,
				     (guint8 *)out)) {
		g_free(out);
		return -EBADMSG;
	}
	/* no text holds a NUL: cut there, the record would hide the rest */
	if (memchr(out, '\0', len)) {
		OPENSSL_cleanse(out, len);
		g_free(out);
		return -EILSEQ;
	}
	out[len] = '\0';
	*text = out;
	return 0;
}

int omemo_store_decrypt(OmemoStore *s, const char *jid,
			const OmemoEnvelope *e, char **text,
			bool *prekey_used)
{
	signal_protocol_address a;
	signal_buffer *plain = NULL;
	const OmemoKey *k;
	int ret;

	*text = NULL;
	if (prekey_used)
		*prekey_used = false;
	if (!omemo_jid_ok(jid) || !e)
		return -EINVAL;
	if (!addr_ok(jid, e->sid))
		return -EBADMSG;
	g_rec_mutex_lock(&s->lock);
	k = our_key(s, e);
	if (!k) {
		ret = -ENOKEY;
		goto out;
	}
	a = addr_of(jid, e->sid);
	omemo_call_begin(s);
	ret = decrypt_key(s, &a, k, &plain);
	if (s->prekey_replaced && prekey_used)
		*prekey_used = true;
	/* the session's new state is kept by now, the message's key used
	 * up: a device's key that cannot be written to the file is kept in
	 * memory (written with the next change), and the text is read
	 * all the same, or it would be lost */
	if (!ret && (ret = omemo_seen_commit(s)) < 0) {
		xfs_warn("omemo: the key of device %" G_GUINT32_FORMAT
			 " of %s is not written yet: %s", e->sid, jid,
			 g_strerror(-ret));
		ret = 0;
	}
	if (!ret)
		ret = decrypt_payload(e, signal_buffer_data(plain),
				      signal_buffer_len(plain), text);
out:
	omemo_call_begin(s);
	g_rec_mutex_unlock(&s->lock);
	signal_buffer_bzero_free(plain);
	return ret;
}

int omemo_gcm_encrypt(const guint8 *key, const guint8 *iv, gsize iv_len,
		      const guint8 *in, gsize len, guint8 *out,
		      guint8 tag[16])
{
	return omemo_crypto_gcm_encrypt(key, iv, iv_len, in, len, out, tag);
}

int omemo_gcm_decrypt(const guint8 *key, const guint8 *iv, gsize iv_len,
		      const guint8 *in, gsize len, const guint8 tag[16],
		      guint8 *out)
{
	return omemo_crypto_gcm_decrypt(key, iv, iv_len, in, len, tag, out);
}
