/* omemo_signal.c - libomemo-c's context, and the stores it calls back
 * (omemo_int.h): sessions, pre-keys, the signed pre-key and identities,
 * each kept in the OmemoStore's tables and written through
 * omemo_files.c before the callback returns.
 *
 * Every callback runs inside a libsignal call made by omemo_store.c or
 * omemo_session.c with s->lock held, so the tables need no more locking.
 * A callback that cannot write its file notes the errno in s->io_err,
 * so the caller reports that, not libsignal's generic code.
 *
 * Identities: libsignal asks whether an identity key is trusted before
 * it builds a session.  We always say yes: whether a device is encrypted
 * to is decided above, with OmemoTrust.  The key it then saves is only
 * noted (s->seen) and recorded by the caller once the whole call
 * succeeded (omemo_seen_commit). */
#include "store/omemo_int.h"

#include <errno.h>
#include <key_helper.h>
#include <session_pre_key.h>
#include <string.h>

#include "base/log.h"
#include "base/omemo_crypto.h"

static void lock_cb(void *user)
{
	OmemoStore *s = user;

	g_rec_mutex_lock(&s->lock);
}

static void unlock_cb(void *user)
{
	OmemoStore *s = user;

	g_rec_mutex_unlock(&s->lock);
}

/* libsignal's own messages name addresses and counters, never keys. */
static void log_cb(int level, const char *msg, size_t len, void *user)
{
	xfs_debug("omemo: libomemo-c: %.*s", (int)MIN(len, 512), msg);
}

static int io_failed(OmemoStore *s, int err)
{
	s->io_err = err;
	return err;
}

static char *addr_jid(const signal_protocol_address *a)
{
	return g_strndup(a->name, a->name_len);
}

static signal_buffer *buffer_of(GBytes *b)
{
	gsize len;
	const guint8 *data = g_bytes_get_data(b, &len);

	return signal_buffer_create(data, len);
}

/* ---- sessions ---- */

static GBytes *session_of(OmemoStore *s, const signal_protocol_address *a)
{
	g_autofree char *jid = addr_jid(a);
	GHashTable *t = omemo_jid_table(s->sessions, jid, false, NULL);

	return t ? g_hash_table_lookup(t, OMEMO_ID_KEY(a->device_id)) : NULL;
}

static int load_session(signal_buffer **record, signal_buffer **user_record,
			const signal_protocol_address *a, void *user)
{
	GBytes *b = session_of(user, a);

	if (!b)
		return 0;
	*record = buffer_of(b);
	return *record ? 1 : SG_ERR_NOMEM;
}

static int sub_device_sessions(signal_int_list **sessions, const char *name,
			       size_t name_len, void *user)
{
	OmemoStore *s = user;
	g_autofree char *jid = g_strndup(name, name_len);
	GHashTable *t = omemo_jid_table(s->sessions, jid, false, NULL);
	signal_int_list *l = signal_int_list_alloc();
	GHashTableIter it;
	gpointer k;

	if (!l)
		return SG_ERR_NOMEM;
	if (t) {
		g_hash_table_iter_init(&it, t);
		while (g_hash_table_iter_next(&it, &k, NULL))
			if (signal_int_list_push_back(l, GPOINTER_TO_INT(k))) {
				signal_int_list_free(l);
				return SG_ERR_NOMEM;
			}
	}
	*sessions = l;
	return (int)signal_int_list_size(l);
}

/* @user_record: libsignal passes what the application attached to the
 * record; we attach nothing, so there is nothing to keep. */
static int store_session(const signal_protocol_address *a, uint8_t *record,
			 size_t len, uint8_t *user_record, size_t user_len,
			 void *user)
{
	OmemoStore *s = user;
	g_autofree char *jid = addr_jid(a);
	GBytes *b = g_bytes_new(record, len);
	int ret = omemo_save_session(s, jid, a->device_id, b);

	if (ret) {
		g_bytes_unref(b);
		return io_failed(s, ret);
	}
	g_hash_table_insert(omemo_jid_table(s->sessions, jid, true,
					    (GDestroyNotify)g_bytes_unref),
			    OMEMO_ID_KEY(a->device_id), b);
	return 0;
}

static int contains_session(const signal_protocol_address *a, void *user)
{
	return session_of(user, a) != NULL;
}

static int delete_session(const signal_protocol_address *a, void *user)
{
	OmemoStore *s = user;
	g_autofree char *jid = addr_jid(a);
	GHashTable *t = omemo_jid_table(s->sessions, jid, false, NULL);
	int ret;

	if (!t || !g_hash_table_contains(t, OMEMO_ID_KEY(a->device_id)))
		return 0;
	ret = omemo_remove_session(s, jid, a->device_id);
	if (ret)
		return io_failed(s, ret);
	g_hash_table_remove(t, OMEMO_ID_KEY(a->device_id));
	return 1;
}

static int delete_all_sessions(const char *name, size_t name_len, void *user)
{
	OmemoStore *s = user;
	g_autofree char *jid = g_strndup(name, name_len);
	GHashTable *t = omemo_jid_table(s->sessions, jid, false, NULL);
	GHashTableIter it;
	gpointer k;
	int n = 0, ret;

	if (!t)
		return 0;
	g_hash_table_iter_init(&it, t);
	while (g_hash_table_iter_next(&it, &k, NULL)) {
		ret = omemo_remove_session(s, jid, GPOINTER_TO_UINT(k));
		if (ret)
			return io_failed(s, ret);
		g_hash_table_iter_remove(&it);
		n++;
	}
	return n;
}

/* ---- pre-keys ---- */

static int load_pre_key(signal_buffer **record, uint32_t id, void *user)
{
	OmemoStore *s = user;
	OmemoPreKeyRec *r = g_hash_table_lookup(s->prekeys, OMEMO_ID_KEY(id));

	if (!r)
		return SG_ERR_INVALID_KEY_ID;
	*record = buffer_of(r->record);
	return *record ? SG_SUCCESS : SG_ERR_NOMEM;
}

static int store_pre_key(uint32_t id, uint8_t *record, size_t len, void *user)
{
	OmemoStore *s = user;
	g_autoptr(GBytes) b = g_bytes_new(record, len);
	OmemoPreKeyRec *r = omemo_prekey_rec_new(s, b);
	gpointer old = NULL;
	int ret;

	if (!r || r->id != id) {
		omemo_prekey_rec_free(r);
		return SG_ERR_INVALID_KEY;
	}
	g_hash_table_steal_extended(s->prekeys, OMEMO_ID_KEY(id), NULL, &old);
	g_hash_table_insert(s->prekeys, OMEMO_ID_KEY(id), r);
	ret = omemo_save_prekeys(s);
	if (ret) {
		g_hash_table_remove(s->prekeys, OMEMO_ID_KEY(id));
		if (old)
			g_hash_table_insert(s->prekeys, OMEMO_ID_KEY(id), old);
		return io_failed(s, ret);
	}
	omemo_prekey_rec_free(old);
	return 0;
}

static int contains_pre_key(uint32_t id, void *user)
{
	OmemoStore *s = user;

	return g_hash_table_contains(s->prekeys, OMEMO_ID_KEY(id));
}

/* A pre-key a message used is gone for good; a new one with an id never
 * used takes its place in the same write, so the file always holds
 * OMEMO_PREKEYS of them. */
static int remove_pre_key(uint32_t id, void *user)
{
	OmemoStore *s = user;
	guint32 next = s->next_prekey_id;
	gpointer old = NULL;
	int fresh, ret;

	if (!g_hash_table_steal_extended(s->prekeys, OMEMO_ID_KEY(id), NULL,
					 &old))
		return 0;
	fresh = omemo_prekeys_generate(s, 1);
	if (fresh < 0) {
		g_hash_table_insert(s->prekeys, OMEMO_ID_KEY(id), old);
		return fresh;
	}
	ret = omemo_save_prekeys(s);
	if (ret) {
		/* the table as the file still has it */
		g_hash_table_remove(s->prekeys, OMEMO_ID_KEY(fresh));
		g_hash_table_insert(s->prekeys, OMEMO_ID_KEY(id), old);
		s->next_prekey_id = next;
		return io_failed(s, ret);
	}
	omemo_prekey_rec_free(old);
	s->prekey_replaced = true;
	return 0;
}

/* ---- the signed pre-key: we have one, OMEMO_SPK_ID ---- */

static int load_spk(signal_buffer **record, uint32_t id, void *user)
{
	OmemoStore *s = user;

	if (!s->spk || session_signed_pre_key_get_id(s->spk) != id)
		return SG_ERR_INVALID_KEY_ID;
	return session_signed_pre_key_serialize(record, s->spk);
}

static int store_spk(uint32_t id, uint8_t *record, size_t len, void *user)
{
	OmemoStore *s = user;
	session_signed_pre_key *spk = NULL, *old = s->spk;
	int ret = session_signed_pre_key_deserialize(&spk, record, len, s->ctx);

	if (ret < 0)
		return ret;
	s->spk = spk;
	ret = omemo_save_own(s);
	if (ret) {
		s->spk = old;
		SIGNAL_UNREF(spk);
		return io_failed(s, ret);
	}
	SIGNAL_UNREF(old);
	return 0;
}

static int contains_spk(uint32_t id, void *user)
{
	OmemoStore *s = user;

	return s->spk && session_signed_pre_key_get_id(s->spk) == id;
}

/* Never called by the calls we make; removing our only signed pre-key
 * would leave the published bundle without its private half. */
static int remove_spk(uint32_t id, void *user)
{
	return SG_ERR_INVAL;
}

/* ---- identities ---- */

static int identity_pair(signal_buffer **pub, signal_buffer **priv, void *user)
{
	OmemoStore *s = user;
	int ret;

	ret = ec_public_key_serialize(
		pub, ratchet_identity_key_pair_get_public(s->identity));
	if (ret < 0)
		return ret;
	ret = ec_private_key_serialize(
		priv, ratchet_identity_key_pair_get_private(s->identity));
	if (ret < 0) {
		signal_buffer_free(*pub);
		*pub = NULL;
	}
	return ret;
}

/* OMEMO has no registration id of its own: the device id is it. */
static int registration_id(void *user, uint32_t *id)
{
	OmemoStore *s = user;

	*id = s->device_id;
	return 0;
}

static int save_identity(const signal_protocol_address *a, uint8_t *key,
			 size_t len, void *user)
{
	OmemoStore *s = user;

	if (!key) /* "forget the key": never asked by the calls we make */
		return 0;
	g_free(s->seen.jid);
	g_bytes_unref(s->seen.key);
	s->seen.jid = addr_jid(a);
	s->seen.id = a->device_id;
	s->seen.key = g_bytes_new(key, len);
	return 0;
}

static int is_trusted(const signal_protocol_address *a, uint8_t *key,
		      size_t len, void *user)
{
	return 1;
}

/* ---- the context ---- */

int omemo_signal_init(OmemoStore *s)
{
	signal_crypto_provider crypto;
	signal_protocol_session_store sessions = {
		.load_session_func = load_session,
		.get_sub_device_sessions_func = sub_device_sessions,
		.store_session_func = store_session,
		.contains_session_func = contains_session,
		.delete_session_func = delete_session,
		.delete_all_sessions_func = delete_all_sessions,
		.user_data = s,
	};
	signal_protocol_pre_key_store prekeys = {
		.load_pre_key = load_pre_key,
		.store_pre_key = store_pre_key,
		.contains_pre_key = contains_pre_key,
		.remove_pre_key = remove_pre_key,
		.user_data = s,
	};
	signal_protocol_signed_pre_key_store spks = {
		.load_signed_pre_key = load_spk,
		.store_signed_pre_key = store_spk,
		.contains_signed_pre_key = contains_spk,
		.remove_signed_pre_key = remove_spk,
		.user_data = s,
	};
	signal_protocol_identity_key_store identities = {
		.get_identity_key_pair = identity_pair,
		.get_local_registration_id = registration_id,
		.save_identity = save_identity,
		.is_trusted_identity = is_trusted,
		.user_data = s,
	};
	int ret;

	omemo_crypto_provider(&crypto);
	ret = signal_context_create(&s->ctx, s);
	if (ret < 0)
		return ret;
	if ((ret = signal_context_set_crypto_provider(s->ctx, &crypto)) < 0 ||
	    (ret = signal_context_set_locking_functions(s->ctx, lock_cb,
							unlock_cb)) < 0 ||
	    (ret = signal_context_set_log_function(s->ctx, log_cb)) < 0 ||
	    (ret = signal_protocol_store_context_create(&s->sctx, s->ctx)) < 0)
		return ret;
	if ((ret = signal_protocol_store_context_set_session_store(
		     s->sctx, &sessions)) < 0 ||
	    (ret = signal_protocol_store_context_set_pre_key_store(
		     s->sctx, &prekeys)) < 0 ||
	    (ret = signal_protocol_store_context_set_signed_pre_key_store(
		     s->sctx, &spks)) < 0 ||
	    (ret = signal_protocol_store_context_set_identity_key_store(
		     s->sctx, &identities)) < 0)
		return ret;
	return 0;
}

void omemo_signal_free(OmemoStore *s)
{
	if (s->sctx)
		signal_protocol_store_context_destroy(s->sctx);
	if (s->ctx)
		signal_context_destroy(s->ctx);
	s->sctx = NULL;
	s->ctx = NULL;
}

/* The id after @id, skipping ids in use (OMEMO_PREKEY_ID_MAX of them
 * and 100 in use: there is always one free). */
static guint32 next_id(OmemoStore *s, guint32 id)
{
	do
		id = id % OMEMO_PREKEY_ID_MAX + 1;
	while (g_hash_table_contains(s->prekeys, OMEMO_ID_KEY(id)));
	return id;
}

static int prekey_generate(OmemoStore *s, guint32 id)
{
	signal_protocol_key_helper_pre_key_list_node *head = NULL;
	signal_buffer *buf = NULL;
	GBytes *record;
	OmemoPreKeyRec *r;
	int ret;

	ret = signal_protocol_key_helper_generate_pre_keys(&head, id, 1,
							   s->ctx);
	if (ret < 0)
		return ret;
	ret = session_pre_key_serialize(
		&buf, signal_protocol_key_helper_key_list_element(head));
	signal_protocol_key_helper_key_list_free(head);
	if (ret < 0)
		return ret;
	record = g_bytes_new(signal_buffer_data(buf), signal_buffer_len(buf));
	signal_buffer_bzero_free(buf);
	r = omemo_prekey_rec_new(s, record);
	g_bytes_unref(record);
	if (!r || r->id != id) {
		omemo_prekey_rec_free(r);
		return SG_ERR_UNKNOWN;
	}
	g_hash_table_insert(s->prekeys, OMEMO_ID_KEY(id), r);
	return 0;
}

int omemo_prekeys_generate(OmemoStore *s, guint n)
{
	guint32 id = 0;

	for (guint i = 0; i < n; i++) {
		int ret;

		id = s->next_prekey_id;
		if (g_hash_table_contains(s->prekeys, OMEMO_ID_KEY(id)))
			id = next_id(s, id);
		ret = prekey_generate(s, id);
		if (ret < 0)
			return ret;
		s->next_prekey_id = next_id(s, id);
	}
	return (int)id;
}

void omemo_call_begin(OmemoStore *s)
{
	s->io_err = 0;
	s->prekey_replaced = false;
	g_clear_pointer(&s->seen.jid, g_free);
	g_clear_pointer(&s->seen.key, g_bytes_unref);
	s->seen.id = 0;
}

int omemo_sg_errno(OmemoStore *s, int r)
{
	if (r >= 0)
		return 0;
	if (s->io_err)
		return s->io_err;
	switch (r) {
	case SG_ERR_NOMEM:
		return -ENOMEM;
	case SG_ERR_DUPLICATE_MESSAGE:
		return -EALREADY;
	case SG_ERR_NO_SESSION:
		return -ENOENT;
	default: /* a bad MAC, message, key, key id, version... */
		return -EBADMSG;
	}
}
