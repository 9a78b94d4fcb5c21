/* omemo_store.h - an account's OMEMO 0.3 (eu.siacs.conversations.axolotl)
 * keys, sessions and trust, kept in DATA/ACCOUNT/omemo/ (0700, files
 * 0600), and the Signal-protocol work on them (libomemo-c, with OpenSSL
 * as its crypto provider).  No XMPP: features/omemo.c turns what this
 * gives into stanzas and PEP items, and back.  Any thread: one lock
 * inside.  Nothing secret is ever logged.
 *
 * Keys travel as libsignal serializes them: a public key is 33 bytes,
 * the type byte 0x05 and the 32 bytes of the Curve25519 key. */
#pragma once

#include <glib.h>
#include <stdbool.h>
#include <stdint.h>

typedef struct OmemoStore OmemoStore;

/* How a device whose identity key we have never seen is trusted
 * (config omemo_trust; README says the risk of each). */
typedef enum {
	OMEMO_POLICY_TOFU,   /* trusted while the user decided on no device of
			      * that JID by hand; after that, undecided */
	OMEMO_POLICY_BLIND,  /* every new key trusted, even a changed one */
	OMEMO_POLICY_MANUAL, /* nothing trusted until the user says so */
} OmemoPolicy;

typedef enum {
	OMEMO_UNDECIDED, /* not encrypted to until decided */
	OMEMO_TRUSTED,
	OMEMO_UNTRUSTED, /* distrusted by the user */
} OmemoTrust;

/* Open the store in @dir (created 0700 when missing).  At first use
 * this generates the identity key pair, the device id (random, 1 to
 * 2^31-1), signed pre-key 1 and 100 pre-keys, and stores them before it
 * returns.  A file that cannot be read or parsed is an error (nothing is
 * generated over it).  NULL and *err on failure. */
OmemoStore *omemo_store_open(const char *dir, OmemoPolicy policy,
			     GError **err);
void omemo_store_free(OmemoStore *s);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(OmemoStore, omemo_store_free)

guint32 omemo_store_device_id(OmemoStore *s);
/* Our identity key's fingerprint (omemo_fingerprint). */
char *omemo_store_fingerprint(OmemoStore *s);
/* The fingerprint as clients show it: the 32 key bytes (without 0x05)
 * in lower-case hex, in 8 groups of 8 separated by one space.  @key: 33
 * bytes with the 0x05 prefix, or 32 without.  NULL for another length. */
char *omemo_fingerprint(const guint8 *key, gsize len);

/* ---- bundles (XEP-0384 0.3: signed pre-key, its signature, the
 * identity key, the pre-keys) ---- */
typedef struct {
	guint32 id;
	GBytes *pub; /* 33 bytes */
} OmemoPreKey;

typedef struct {
	GBytes *identity; /* 33 bytes */
	guint32 spk_id;
	GBytes *spk;     /* 33 bytes */
	GBytes *spk_sig; /* 64 bytes */
	GArray *prekeys; /* of OmemoPreKey, each pub owned by the array */
} OmemoBundle;

OmemoBundle *omemo_bundle_new(void);
void omemo_bundle_free(OmemoBundle *b);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(OmemoBundle, omemo_bundle_free)
/* Ours, to publish. */
OmemoBundle *omemo_store_bundle(OmemoStore *s);

/* ---- devices, trust and sessions of other JIDs (and of our own other
 * devices: @jid our own bare JID) ---- */
typedef struct {
	guint32 id;
	char *fingerprint; /* NULL until the identity key is known */
	OmemoTrust trust;
	bool active;  /* in the JID's last published device list */
	bool session; /* a session exists */
} OmemoDevice;

/* The devices known for @jid, by id; free with g_array_unref (the
 * fingerprints go with it).  Never NULL. */
GArray *omemo_store_devices(OmemoStore *s, const char *jid);
/* @jid published the device list @ids: those not yet known are added
 * (trust undecided until their key is seen), known ones missing from it
 * become inactive, listed ones active.  Our own device id in our own
 * list is ignored.  Stored before it returns; 0 or -errno. */
int omemo_store_set_device_list(OmemoStore *s, const char *jid,
				const guint32 *ids, guint n);
/* The user's decision on device @id of @jid: 0, -ENOENT for a device
 * not known, -errno when it cannot be stored.  A decision by hand is
 * remembered as such (OMEMO_POLICY_TOFU). */
int omemo_store_set_trust(OmemoStore *s, const char *jid, guint32 id,
			  OmemoTrust trust);

/* Build a session with device @id of @jid from its bundle: checks the
 * signed pre-key's signature, picks one of the pre-keys at random, and
 * records the identity key (trusted by the policy; a key that differs
 * from the one known for that device becomes undecided, except under
 * OMEMO_POLICY_BLIND).  0, -EBADMSG for a bad signature or key, -EINVAL
 * for a bundle without pre-keys, -errno when it cannot be stored. */
int omemo_store_session_from_bundle(OmemoStore *s, const char *jid,
				    guint32 id, const OmemoBundle *b);

/* ---- messages ---- */
typedef struct {
	char *jid; /* bare */
	guint32 rid;
	bool prekey;  /* data is a PreKeyWhisperMessage */
	GBytes *data; /* the serialized (PreKey)WhisperMessage */
} OmemoKey;

typedef struct {
	guint32 sid;     /* the sending device */
	GBytes *iv;      /* 12 bytes when we make it; 12 or 16 accepted */
	GBytes *payload; /* AES-128-GCM ciphertext without its tag; NULL: a
			  * key-transport (or heartbeat) message */
	GPtrArray *keys; /* of OmemoKey * */
} OmemoEnvelope;

OmemoEnvelope *omemo_envelope_new(void);
void omemo_envelope_free(OmemoEnvelope *e);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(OmemoEnvelope, omemo_envelope_free)

typedef struct {
	const char *jid;
	guint32 id;
} OmemoAddr;

/* Encrypt @text (NUL-terminated; NULL: a key-transport message, as a
 * heartbeat is) to each of the @n devices in @to that has a session:
 * a fresh AES-128 key and 12-byte IV; each device's key element holds
 * key||tag (32 bytes) encrypted by its session.  Devices without a
 * session are left out.  0 and *out, -ENOKEY when no device of @to has
 * a session, -errno when a session cannot be stored (the ratchet's new
 * state is stored before this returns: a key is never used twice). */
int omemo_store_encrypt(OmemoStore *s, const char *text,
			const OmemoAddr *to, guint n, OmemoEnvelope **out);

/* Decrypt what device @e->sid of @jid sent: its key for our device id,
 * then the payload.  0 and *text (NULL for a key-transport message;
 * bytes as they came, not checked for UTF-8), or:
 *   -ENOKEY   no key for our device in it;
 *   -EBADMSG  the key or the payload does not authenticate, or is
 *             malformed;
 *   -EALREADY a message whose key we used already (a duplicate);
 *   -ENOENT   a WhisperMessage with no session for that device;
 *   -errno    the new state cannot be stored.
 * *prekey_used: a pre-key of ours was consumed (it is gone, a new one
 * took its place: publish the bundle again).  A pre-key message builds
 * or replaces the session and records the sender's identity key as
 * omemo_store_session_from_bundle does. */
int omemo_store_decrypt(OmemoStore *s, const char *jid,
			const OmemoEnvelope *e, char **text,
			bool *prekey_used);

/* The payload alone (exported for the unit tests' fixed vectors):
 * AES-128-GCM of @in under @key (16 bytes) and @iv (@iv_len 12 or 16),
 * the 16-byte tag apart.  0 or -EBADMSG (decrypt: tag mismatch). */
int omemo_gcm_encrypt(const guint8 *key, const guint8 *iv, gsize iv_len,
		      const guint8 *in, gsize len, guint8 *out,
		      guint8 tag[16]);
int omemo_gcm_decrypt(const guint8 *key, const guint8 *iv, gsize iv_len,
		      const guint8 *in, gsize len, const guint8 tag[16],
		      guint8 *out);
