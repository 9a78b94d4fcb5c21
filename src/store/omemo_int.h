/* omemo_int.h - what the files of the OMEMO store share: the store's
 * state, its files (omemo_files.c), the callbacks libomemo-c calls
 * (omemo_signal.c).  Not for use outside store/omemo_*.c.
 *
 * Who calls whom, so no call cycle comes: omemo_store.c and
 * omemo_session.c call omemo_signal.c and omemo_files.c;
 * omemo_signal.c calls omemo_files.c; omemo_session.c calls
 * omemo_store.c (the identity a libsignal call saw). */
#pragma once

#include <signal_protocol.h>
#include <stdbool.h>

#include "store/omemo_store.h"

#define OMEMO_PREKEYS 100
/* libsignal's pre-key ids run 1 to PRE_KEY_MEDIUM_MAX_VALUE - 1 (the
 * last is reserved for a "last resort" key we do not use). */
#define OMEMO_PREKEY_ID_MAX (PRE_KEY_MEDIUM_MAX_VALUE - 1)
#define OMEMO_SPK_ID 1
#define OMEMO_KEY_LEN 33 /* 0x05 and a Curve25519 public key */

typedef struct {
	guint32 id;
	GBytes *record; /* session_pre_key_serialize(): secret */
	GBytes *pub;    /* 33 bytes */
} OmemoPreKeyRec;

typedef struct {
	guint32 id;
	GBytes *identity; /* 33 bytes; NULL until seen */
	OmemoTrust trust;
	bool active; /* in the JID's last device list */
	bool manual; /* @trust is the user's own decision */
} OmemoDeviceRec;

/* An identity key libsignal asked us to save during the call under way:
 * recorded only once the call succeeded (a pre-key message whose MAC
 * fails must not change what we know of the device). */
typedef struct {
	char *jid;
	guint32 id;
	GBytes *key;
} OmemoSeen;

struct OmemoStore {
	/* Everything below.  Recursive: libsignal takes it too (its locking
	 * callbacks), inside calls that already hold it. */
	GRecMutex lock;
	char *dir;
	char *sessions_dir;
	OmemoPolicy policy;
	signal_context *ctx;
	signal_protocol_store_context *sctx;

	/* file "own" */
	guint32 device_id;
	ratchet_identity_key_pair *identity;
	session_signed_pre_key *spk;

	/* file "prekeys" */
	GHashTable *prekeys; /* id -> OmemoPreKeyRec* */
	guint32 next_prekey_id;

	/* file "devices" */
	GHashTable *devices; /* jid -> (GHashTable id -> OmemoDeviceRec*) */

	/* directory "sessions/" */
	GHashTable *sessions; /* jid -> (GHashTable id -> GBytes* record) */

	/* Set by the callbacks during one libsignal call; cleared before. */
	int io_err;           /* a file could not be written: -errno */
	bool prekey_replaced; /* a pre-key was consumed and replaced */
	OmemoSeen seen;
};

#define OMEMO_ID_KEY(id) GUINT_TO_POINTER(id)

/* ---- omemo_files.c: the directory, and the tables it fills ---- */

/* A pre-key's serialized record with its public key read from it; NULL
 * when libsignal cannot read it. */
OmemoPreKeyRec *omemo_prekey_rec_new(OmemoStore *s, GBytes *record);
void omemo_prekey_rec_free(gpointer p);
void omemo_device_rec_free(gpointer p);
/* The inner table of @outer for @jid, or NULL; created when @create. */
GHashTable *omemo_jid_table(GHashTable *outer, const char *jid, bool create,
			    GDestroyNotify value_free);

/* Write @data to @dir/@name: a temporary file (0600), fsync, rename
 * over @name, fsync of @dir.  0 or -errno. */
int omemo_file_write(const char *dir, const char *name, const void *data,
		     gsize len);
int omemo_save_own(OmemoStore *s);
int omemo_save_prekeys(OmemoStore *s);
int omemo_save_devices(OmemoStore *s);
int omemo_save_session(OmemoStore *s, const char *jid, guint32 id,
		       GBytes *record);
/* 0 also when there was none. */
int omemo_remove_session(OmemoStore *s, const char *jid, guint32 id);
/* Remove the temporary files a crash left in @dir. */
void omemo_remove_leftovers(const char *dir);
/* Read "own": 1 when read, 0 when it does not exist, -1 with @err when it
 * cannot be read or parsed. */
int omemo_load_own(OmemoStore *s, GError **err);
bool omemo_load_prekeys(OmemoStore *s, GError **err);
bool omemo_load_devices(OmemoStore *s, GError **err);
bool omemo_load_sessions(OmemoStore *s, GError **err);
/* A JID we can keep: not empty, UTF-8, no control characters. */
bool omemo_jid_ok(const char *jid);

/* ---- omemo_signal.c: libomemo-c's context and stores ---- */

/* Create s->ctx and s->sctx with our crypto provider, s->lock and the
 * store callbacks.  0 or SG_ERR_*. */
int omemo_signal_init(OmemoStore *s);
void omemo_signal_free(OmemoStore *s);
/* Generate @n pre-keys with fresh ids from s->next_prekey_id on, into
 * s->prekeys (not written).  The id of the last one, or SG_ERR_*. */
int omemo_prekeys_generate(OmemoStore *s, guint n);
/* Before a libsignal call: forget what the callbacks noted. */
void omemo_call_begin(OmemoStore *s);
/* A libsignal result as -errno: what a callback failed to store first,
 * then the library's codes (-EBADMSG for anything about the message). */
int omemo_sg_errno(OmemoStore *s, int r);

/* ---- omemo_store.c ---- */

/* Record what libsignal saw during the call (s->seen): the identity key
 * of a device, and its trust by the policy.  0 or -errno. */
int omemo_seen_commit(OmemoStore *s);
