/* test_omemo_store.c - the OMEMO 0.3 store: AES-128-GCM against NIST's
 * vectors, fingerprints, two stores (alice and bob, each in a directory
 * of its own) talking through sessions as two clients would, what is
 * kept across a reopen, trust by policy, and files that are private and
 * never written over when they cannot be read. */
#include <errno.h>
#include <glib.h>
#include <glib/gstdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "store/omemo_store.h"

#define ALICE "alice@example.org"
#define BOB "bob@example.net"

/* ---- helpers ---- */

static guint8 *unhex(const char *hex, gsize *len)
{
	gsize n = strlen(hex) / 2;
	guint8 *out = g_malloc(n + 1);

	for (gsize i = 0; i < n; i++)
		out[i] = g_ascii_xdigit_value(hex[2 * i]) << 4 |
			 g_ascii_xdigit_value(hex[2 * i + 1]);
	*len = n;
	return out;
}

static char *tmp_dir(void)
{
	g_autofree char *top = g_dir_make_tmp("omemo-XXXXXX", NULL);

	g_assert_nonnull(top);
	/* the store makes its own directory: let it */
	return g_build_filename(top, "omemo", NULL);
}

static void rm_rf(const char *path)
{
	g_autoptr(GDir) d = g_dir_open(path, 0, NULL);
	const char *name;

	while (d && (name = g_dir_read_name(d))) {
		g_autofree char *p = g_build_filename(path, name, NULL);

		if (g_file_test(p, G_FILE_TEST_IS_DIR))
			rm_rf(p);
		else
			g_unlink(p);
	}
	g_rmdir(path);
}

static void cleanup(const char *dir)
{
	g_autofree char *top = g_path_get_dirname(dir);

	rm_rf(top);
}

static OmemoStore *open_ok(const char *dir, OmemoPolicy policy)
{
	g_autoptr(GError) err = NULL;
	OmemoStore *s = omemo_store_open(dir, policy, &err);

	g_assert_no_error(err);
	g_assert_nonnull(s);
	return s;
}

static OmemoEnvelope *encrypt_to(OmemoStore *s, const char *text,
				 const char *jid, guint32 id)
{
	OmemoAddr to = {jid, id};
	OmemoEnvelope *e = NULL;

	g_assert_cmpint(omemo_store_encrypt(s, text, &to, 1, &e), ==, 0);
	g_assert_nonnull(e);
	g_assert_cmpuint(e->sid, ==, omemo_store_device_id(s));
	g_assert_cmpuint(e->keys->len, ==, 1);
	g_assert_cmpuint(g_bytes_get_size(e->iv), ==, 12);
	return e;
}

static OmemoKey *key0(OmemoEnvelope *e)
{
	return e->keys->pdata[0];
}

static void decrypt_is(OmemoStore *s, const char *from,
		       const OmemoEnvelope *e, const char *want,
		       bool want_prekey)
{
	g_autofree char *text = NULL;
	bool used = !want_prekey;

	g_assert_cmpint(omemo_store_decrypt(s, from, e, &text, &used), ==, 0);
	g_assert_cmpstr(text, ==, want);
	g_assert_cmpint(used, ==, want_prekey);
}

static int decrypt_err(OmemoStore *s, const char *from, const OmemoEnvelope *e)
{
	g_autofree char *text = NULL;
	bool used;
	int ret = omemo_store_decrypt(s, from, e, &text, &used);

	g_assert_null(text);
	return ret;
}

/* A copy of @e, its key data and payload copied too (for tampering). */
static OmemoEnvelope *envelope_copy(const OmemoEnvelope *e)
{
	OmemoEnvelope *c = omemo_envelope_new();

	c->sid = e->sid;
	c->iv = e->iv ? g_bytes_ref(e->iv) : NULL;
	if (e->payload)
		c->payload = g_bytes_new(g_bytes_get_data(e->payload, NULL),
					 g_bytes_get_size(e->payload));
	for (guint i = 0; i < e->keys->len; i++) {
		OmemoKey *k = e->keys->pdata[i], *n = g_new0(OmemoKey, 1);

		n->jid = g_strdup(k->jid);
		n->rid = k->rid;
		n->prekey = k->prekey;
		n->data = g_bytes_new(g_bytes_get_data(k->data, NULL),
				      g_bytes_get_size(k->data));
		g_ptr_array_add(c->keys, n);
	}
	return c;
}

static void flip(GBytes *b, gsize at)
{
	guint8 *p = (guint8 *)g_bytes_get_data(b, NULL);

	p[at] ^= 0x01;
}

static GHashTable *prekey_ids(OmemoStore *s)
{
	g_autoptr(OmemoBundle) b = omemo_store_bundle(s);
	GHashTable *ids = g_hash_table_new(g_direct_hash, g_direct_equal);

	for (guint i = 0; i < b->prekeys->len; i++)
		g_hash_table_add(ids, GUINT_TO_POINTER(g_array_index(
				b->prekeys, OmemoPreKey, i).id));
	return ids;
}

static OmemoDevice *device(GArray *devs, guint32 id)
{
	for (guint i = 0; i < devs->len; i++)
		if (g_array_index(devs, OmemoDevice, i).id == id)
			return &g_array_index(devs, OmemoDevice, i);
	return NULL;
}

static OmemoTrust trust_of(OmemoStore *s, const char *jid, guint32 id)
{
	g_autoptr(GArray) devs = omemo_store_devices(s, jid);
	OmemoDevice *d = device(devs, id);

	g_assert_nonnull(d);
	return d->trust;
}

static void session_with(OmemoStore *s, const char *jid, guint32 id,
			 OmemoStore *peer)
{
	g_autoptr(OmemoBundle) b = omemo_store_bundle(peer);

	g_assert_cmpint(omemo_store_session_from_bundle(s, jid, id, b), ==, 0);
}

static mode_t mode_of(const char *path)
{
	struct stat st;

	g_assert_cmpint(g_stat(path, &st), ==, 0);
	return st.st_mode & 07777;
}

/* ---- AES-128-GCM ---- */

typedef struct {
	const char *key, *iv, *plain, *cipher, *tag;
} GcmVector;

/* NIST's GCM spec (McGrew & Viega), test cases 1-3: AES-128, 96-bit IV,
 * no associated data (OMEMO has none; case 4 has some).  The last, with
 * a 16-byte IV as the first OMEMO clients sent, is from Python's
 * cryptography (OpenSSL too, but not this code). */
static const GcmVector gcm_vectors[] = {
	{"00000000000000000000000000000000", "000000000000000000000000", "",
	 "", "58e2fccefa7e3061367f1d57a4e7455a"},
	{"00000000000000000000000000000000", "000000000000000000000000",
	 "00000000000000000000000000000000",
	 "0388dace60b6a392f328c2b971b2fe78",
	 "ab6e47d42cec13bdf53a67b21257bddf"},
	{"feffe9928665731c6d6a8f9467308308", "cafebabefacedbaddecaf888",
	 "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a72"
	 "1c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b391aafd255",
	 "42831ec2217774244b7221b784d0d49ce3aa212f2c02a4e035c17e2329aca12e"
	 "21d514b25466931c7d8f6a5aac84aa051ba30b396a0aac973d58e091473f5985",
	 "4d5c2af327cd64a62cf35abd2ba6fab4"},
	{"feffe9928665731c6d6a8f9467308308", "000102030405060708090a0b0c0d0e0f",
	 "4f4d454d4f207769746820612031362d6279746520495600",
	 "054f51f7c63405f0dd71dd4204e25b7b50fb3649341b2c00",
	 "80a34997d6692f0d4fe4364c8e9783a2"},
};

static void test_gcm_vectors(void)
{
	for (guint i = 0; i < G_N_ELEMENTS(gcm_vectors); i++) {
		const GcmVector *v = &gcm_vectors[i];
		gsize klen, ivlen, plen, clen, tlen;
		g_autofree guint8 *key = unhex(v->key, &klen);
		g_autofree guint8 *iv = unhex(v->iv, &ivlen);
		g_autofree guint8 *plain = unhex(v->plain, &plen);
		g_autofree guint8 *cipher = unhex(v->cipher, &clen);
		g_autofree guint8 *tag = unhex(v->tag, &tlen);
		g_autofree guint8 *out = g_malloc(plen + 1);
		guint8 got[16];

		/* the last vector's text is 23 bytes: its hex ends "00" to
		 * keep the table even; the vector is for 23 */
		if (i == 3)
			plen = clen = 23;
		g_test_message("vector %u", i);
		g_assert_cmpint(omemo_gcm_encrypt(key, iv, ivlen, plain, plen,
						  out, got),
				==, 0);
		g_assert_cmpmem(out, plen, cipher, clen);
		g_assert_cmpmem(got, 16, tag, tlen);
		g_assert_cmpint(omemo_gcm_decrypt(key, iv, ivlen, cipher, clen,
						  tag, out),
				==, 0);
		g_assert_cmpmem(out, clen, plain, plen);
		tag[15] ^= 0x80;
		g_assert_cmpint(omemo_gcm_decrypt(key, iv, ivlen, cipher, clen,
						  tag, out),
				==, -EBADMSG);
		tag[15] ^= 0x80;
		if (clen) {
			cipher[0] ^= 1;
			g_assert_cmpint(omemo_gcm_decrypt(key, iv, ivlen,
							  cipher, clen, tag,
							  out),
					==, -EBADMSG);
		}
	}
}

/* ---- fingerprints ---- */

static void test_fingerprint(void)
{
	guint8 key[33];
	g_autofree char *with = NULL, *without = NULL;

	key[0] = 0x05;
	for (int i = 0; i < 32; i++)
		key[i + 1] = 0xa0 + i;
	with = omemo_fingerprint(key, 33);
	without = omemo_fingerprint(key + 1, 32);
	g_assert_cmpstr(with, ==,
			"a0a1a2a3 a4a5a6a7 a8a9aaab acadaeaf "
			"b0b1b2b3 b4b5b6b7 b8b9babb bcbdbebf");
	g_assert_cmpstr(without, ==, with);
	g_assert_null(omemo_fingerprint(key, 31));
	g_assert_null(omemo_fingerprint(key, 34));
	g_assert_null(omemo_fingerprint(key, 0));
}

/* ---- first use, and what the directory holds ---- */

static void test_first_use(void)
{
	g_autofree char *dir = tmp_dir();
	g_autofree char *own = g_build_filename(dir, "own", NULL);
	g_autofree char *prekeys = g_build_filename(dir, "prekeys", NULL);
	g_autofree char *sessions = g_build_filename(dir, "sessions", NULL);
	g_autofree char *fp = NULL, *fp2 = NULL, *bfp = NULL;
	g_autoptr(OmemoBundle) b = NULL, b2 = NULL;
	OmemoStore *s = open_ok(dir, OMEMO_POLICY_TOFU);
	guint32 id = omemo_store_device_id(s);
	const guint8 *identity;

	g_assert_cmpuint(id, >=, 1);
	g_assert_cmpuint(id, <=, G_MAXINT32);
	b = omemo_store_bundle(s);
	g_assert_cmpuint(g_bytes_get_size(b->identity), ==, 33);
	identity = g_bytes_get_data(b->identity, NULL);
	g_assert_cmpint(identity[0], ==, 0x05);
	g_assert_cmpuint(b->spk_id, ==, 1);
	g_assert_cmpuint(g_bytes_get_size(b->spk), ==, 33);
	g_assert_cmpuint(g_bytes_get_size(b->spk_sig), ==, 64);
	g_assert_cmpuint(b->prekeys->len, ==, 100);
	for (guint i = 0; i < 100; i++) {
		OmemoPreKey *k = &g_array_index(b->prekeys, OmemoPreKey, i);

		g_assert_cmpuint(k->id, ==, i + 1);
		g_assert_cmpuint(g_bytes_get_size(k->pub), ==, 33);
	}
	fp = omemo_store_fingerprint(s);
	bfp = omemo_fingerprint(identity, 33);
	g_assert_cmpstr(fp, ==, bfp);
	g_assert_cmpuint(strlen(fp), ==, 71);
	omemo_store_free(s);

	g_assert_cmpint(mode_of(dir), ==, 0700);
	g_assert_cmpint(mode_of(sessions), ==, 0700);
	g_assert_cmpint(mode_of(own), ==, 0600);
	g_assert_cmpint(mode_of(prekeys), ==, 0600);

	s = open_ok(dir, OMEMO_POLICY_TOFU);
	g_assert_cmpuint(omemo_store_device_id(s), ==, id);
	fp2 = omemo_store_fingerprint(s);
	g_assert_cmpstr(fp2, ==, fp);
	b2 = omemo_store_bundle(s);
	g_assert_true(g_bytes_equal(b->spk, b2->spk));
	g_assert_true(g_bytes_equal(b->spk_sig, b2->spk_sig));
	g_assert_cmpuint(b2->prekeys->len, ==, 100);
	for (guint i = 0; i < 100; i++)
		g_assert_true(g_bytes_equal(
			g_array_index(b->prekeys, OmemoPreKey, i).pub,
			g_array_index(b2->prekeys, OmemoPreKey, i).pub));
	omemo_store_free(s);
	cleanup(dir);
}

/* ---- two clients ---- */

typedef struct {
	char *adir, *bdir;
	OmemoStore *a, *b;
	guint32 aid, bid;
} Pair;

static void pair_open(Pair *p)
{
	p->a = open_ok(p->adir, OMEMO_POLICY_TOFU);
	p->b = open_ok(p->bdir, OMEMO_POLICY_TOFU);
	p->aid = omemo_store_device_id(p->a);
	p->bid = omemo_store_device_id(p->b);
}

static void pair_reopen(Pair *p)
{
	omemo_store_free(p->a);
	omemo_store_free(p->b);
	pair_open(p);
}

static void pair_init(Pair *p)
{
	p->adir = tmp_dir();
	p->bdir = tmp_dir();
	pair_open(p);
}

static void pair_clear(Pair *p)
{
	omemo_store_free(p->a);
	omemo_store_free(p->b);
	cleanup(p->adir);
	cleanup(p->bdir);
	g_free(p->adir);
	g_free(p->bdir);
}

/* Bob starts from Alice's bundle; she answers; both go on. */
static void test_exchange(void)
{
	Pair p;
	g_autoptr(GHashTable) before = NULL, after = NULL;
	g_autoptr(OmemoEnvelope) hello = NULL, again = NULL, reply = NULL;
	g_autoptr(OmemoEnvelope) next = NULL;
	g_autoptr(GArray) devs = NULL;
	g_autofree char *bfp = NULL;
	GHashTableIter it;
	gpointer k;
	guint gone = 0;

	pair_init(&p);
	before = prekey_ids(p.a);
	session_with(p.b, ALICE, p.aid, p.a);

	hello = encrypt_to(p.b, "hello", ALICE, p.aid);
	g_assert_true(key0(hello)->prekey);
	g_assert_cmpstr(key0(hello)->jid, ==, ALICE);
	g_assert_cmpuint(key0(hello)->rid, ==, p.aid);
	/* until Alice answers, every message can build the session */
	again = encrypt_to(p.b, "hello again", ALICE, p.aid);
	g_assert_true(key0(again)->prekey);

	decrypt_is(p.a, BOB, hello, "hello", true);
	after = prekey_ids(p.a);
	g_assert_cmpuint(g_hash_table_size(after), ==, 100);
	g_hash_table_iter_init(&it, before);
	while (g_hash_table_iter_next(&it, &k, NULL))
		gone += !g_hash_table_contains(after, k);
	g_assert_cmpuint(gone, ==, 1);
	/* the same session: no pre-key used a second time */
	decrypt_is(p.a, BOB, again, "hello again", false);

	/* she knows his device now, trusted on first use */
	devs = omemo_store_devices(p.a, BOB);
	g_assert_cmpuint(devs->len, ==, 1);
	bfp = omemo_store_fingerprint(p.b);
	g_assert_cmpstr(device(devs, p.bid)->fingerprint, ==, bfp);
	g_assert_cmpint(device(devs, p.bid)->trust, ==, OMEMO_TRUSTED);
	g_assert_true(device(devs, p.bid)->session);
	g_assert_false(device(devs, p.bid)->active);

	reply = encrypt_to(p.a, "hi bob", BOB, p.bid);
	g_assert_false(key0(reply)->prekey);
	decrypt_is(p.b, ALICE, reply, "hi bob", false);
	/* his answer acknowledged the session: plain messages from now */
	next = encrypt_to(p.b, "and now?", ALICE, p.aid);
	g_assert_false(key0(next)->prekey);
	decrypt_is(p.a, BOB, next, "and now?", false);
	pair_clear(&p);
}

/* Messages that come in another order than sent, both ways, across
 * ratchet steps; a duplicate; tampering; someone else's key. */
static void test_out_of_order(void)
{
	Pair p;
	OmemoEnvelope *m[4], *n[3];
	g_autoptr(OmemoEnvelope) first = NULL, bad = NULL, other = NULL;
	g_autoptr(OmemoEnvelope) stray = NULL;
	static OmemoEnvelope dummy;

	pair_init(&p);
	session_with(p.b, ALICE, p.aid, p.a);
	first = encrypt_to(p.b, "first", ALICE, p.aid);
	decrypt_is(p.a, BOB, first, "first", true);

	for (guint i = 0; i < G_N_ELEMENTS(m); i++) {
		g_autofree char *t = g_strdup_printf("a%u", i);
		m[i] = encrypt_to(p.a, t, BOB, p.bid);
	}
	decrypt_is(p.b, ALICE, m[2], "a2", false);
	for (guint i = 0; i < G_N_ELEMENTS(n); i++) {
		g_autofree char *t = g_strdup_printf("b%u", i);
		n[i] = encrypt_to(p.b, t, ALICE, p.aid);
	}
	decrypt_is(p.a, BOB, n[1], "b1", false);
	decrypt_is(p.b, ALICE, m[0], "a0", false);
	decrypt_is(p.a, BOB, n[2], "b2", false);
	decrypt_is(p.b, ALICE, m[3], "a3", false);
	decrypt_is(p.a, BOB, n[0], "b0", false);
	decrypt_is(p.b, ALICE, m[1], "a1", false);

	g_assert_cmpint(decrypt_err(p.b, ALICE, m[1]), ==, -EALREADY);
	g_assert_cmpint(decrypt_err(p.a, BOB, n[0]), ==, -EALREADY);
	g_assert_cmpint(decrypt_err(p.a, BOB, first), ==, -EALREADY);

	/* a payload changed on the way */
	bad = encrypt_to(p.a, "do not touch", BOB, p.bid);
	other = envelope_copy(bad);
	flip(other->payload, 3);
	g_assert_cmpint(decrypt_err(p.b, ALICE, other), ==, -EBADMSG);
	g_clear_pointer(&other, omemo_envelope_free);
	g_clear_pointer(&bad, omemo_envelope_free);
	/* a key changed on the way: its MAC fails, the session survives */
	bad = encrypt_to(p.a, "nor this", BOB, p.bid);
	other = envelope_copy(bad);
	flip(key0(other)->data, g_bytes_get_size(key0(other)->data) - 2);
	g_assert_cmpint(decrypt_err(p.b, ALICE, other), ==, -EBADMSG);
	decrypt_is(p.b, ALICE, bad, "nor this", false);
	g_clear_pointer(&other, omemo_envelope_free);
	g_clear_pointer(&bad, omemo_envelope_free);
	/* garbage where a key should be */
	bad = encrypt_to(p.a, "x", BOB, p.bid);
	g_bytes_unref(key0(bad)->data);
	key0(bad)->data = g_bytes_new_static("\x33garbage", 8);
	g_assert_cmpint(decrypt_err(p.b, ALICE, bad), ==, -EBADMSG);
	key0(bad)->prekey = true;
	g_assert_cmpint(decrypt_err(p.b, ALICE, bad), ==, -EBADMSG);
	g_clear_pointer(&bad, omemo_envelope_free);

	/* for another device only */
	other = encrypt_to(p.a, "not for you", BOB, p.bid);
	key0(other)->rid = p.bid + 1;
	g_assert_cmpint(decrypt_err(p.b, ALICE, other), ==, -ENOKEY);
	/* from a device Bob has no session with */
	stray = encrypt_to(p.a, "who?", BOB, p.bid);
	stray->sid = p.aid + 1;
	g_assert_cmpint(decrypt_err(p.b, ALICE, stray), ==, -ENOENT);

	/* nobody to encrypt to */
	{
		OmemoAddr to[] = {{ALICE, 4242}, {"x@y.z", 1}};
		OmemoEnvelope *e = &dummy; /* set to NULL on failure */

		g_assert_cmpint(omemo_store_encrypt(p.a, "t", to, 2, &e), ==,
				-ENOKEY);
		g_assert_null(e);
	}

	for (guint i = 0; i < G_N_ELEMENTS(m); i++)
		omemo_envelope_free(m[i]);
	for (guint i = 0; i < G_N_ELEMENTS(n); i++)
		omemo_envelope_free(n[i]);
	pair_clear(&p);
}

/* Both close mid-conversation (with a message in flight each way) and go
 * on from what is on disk. */
static void test_persistence(void)
{
	Pair p;
	g_autoptr(OmemoEnvelope) m1 = NULL, m2 = NULL, m3 = NULL, n1 = NULL;
	g_autoptr(OmemoEnvelope) pre = NULL;
	g_autoptr(GHashTable) before = NULL, after = NULL;
	g_autoptr(GArray) devs = NULL;

	pair_init(&p);
	session_with(p.b, ALICE, p.aid, p.a);
	pre = encrypt_to(p.b, "one", ALICE, p.aid);
	pair_reopen(&p); /* the pre-key message waits */
	decrypt_is(p.a, BOB, pre, "one", true);
	before = prekey_ids(p.a);
	m1 = encrypt_to(p.a, "two", BOB, p.bid);
	m2 = encrypt_to(p.a, "three", BOB, p.bid);
	pair_reopen(&p);
	after = prekey_ids(p.a);
	g_assert_cmpuint(g_hash_table_size(after), ==, 100);
	g_assert_true(g_hash_table_size(before) == 100);
	decrypt_is(p.b, ALICE, m2, "three", false);
	n1 = encrypt_to(p.b, "four", ALICE, p.aid);
	g_assert_false(key0(n1)->prekey);
	pair_reopen(&p);
	decrypt_is(p.b, ALICE, m1, "two", false);
	g_assert_cmpint(decrypt_err(p.b, ALICE, m2), ==, -EALREADY);
	decrypt_is(p.a, BOB, n1, "four", false);
	m3 = encrypt_to(p.a, "five", BOB, p.bid);
	decrypt_is(p.b, ALICE, m3, "five", false);
	/* the pre-key message used its pre-key: the session is what is left */
	g_assert_cmpint(decrypt_err(p.a, BOB, pre), ==, -EALREADY);

	devs = omemo_store_devices(p.b, ALICE);
	g_assert_cmpuint(devs->len, ==, 1);
	g_assert_true(device(devs, p.aid)->session);
	g_assert_cmpint(device(devs, p.aid)->trust, ==, OMEMO_TRUSTED);
	pair_clear(&p);
}

/* A key-transport message (a heartbeat) has a key and no payload. */
static void test_key_transport(void)
{
	Pair p;
	g_autoptr(OmemoEnvelope) m = NULL, k = NULL, after = NULL;

	pair_init(&p);
	session_with(p.b, ALICE, p.aid, p.a);
	m = encrypt_to(p.b, "start", ALICE, p.aid);
	decrypt_is(p.a, BOB, m, "start", true);
	k = encrypt_to(p.a, NULL, BOB, p.bid);
	g_assert_null(k->payload);
	g_assert_nonnull(k->iv);
	decrypt_is(p.b, ALICE, k, NULL, false);
	g_assert_cmpint(decrypt_err(p.b, ALICE, k), ==, -EALREADY);
	after = encrypt_to(p.a, "after", BOB, p.bid);
	decrypt_is(p.b, ALICE, after, "after", false);
	pair_clear(&p);
}

/* One message to several devices: each gets its own key element; a
 * device named twice gets one; one without a session is left out. */
static void test_several_devices(void)
{
	Pair p;
	g_autofree char *cdir = tmp_dir();
	OmemoStore *c = open_ok(cdir, OMEMO_POLICY_TOFU);
	guint32 cid = omemo_store_device_id(c);
	g_autoptr(OmemoEnvelope) e = NULL;

	pair_init(&p);
	session_with(p.a, BOB, p.bid, p.b);
	session_with(p.a, BOB, cid, c);
	{
		OmemoAddr to[] = {{BOB, p.bid}, {BOB, cid}, {BOB, p.bid},
				  {BOB, 777}};

		g_assert_cmpint(omemo_store_encrypt(p.a, "to both", to,
						    G_N_ELEMENTS(to), &e),
				==, 0);
	}
	g_assert_cmpuint(e->keys->len, ==, 2);
	decrypt_is(p.b, ALICE, e, "to both", true);
	decrypt_is(c, ALICE, e, "to both", true);
	omemo_store_free(c);
	cleanup(cdir);
	pair_clear(&p);
}

/* ---- trust ---- */

static OmemoStore *device_store(char **dir)
{
	*dir = tmp_dir();
	return open_ok(*dir, OMEMO_POLICY_TOFU);
}

/* Trust on first use until the user decides on a device of that JID;
 * then new devices wait for a decision.  A changed key always does. */
static void test_trust_tofu(void)
{
	g_autofree char *adir = tmp_dir(), *d1 = NULL, *d2 = NULL, *d3 = NULL;
	OmemoStore *a = open_ok(adir, OMEMO_POLICY_TOFU);
	OmemoStore *b1 = device_store(&d1), *b2 = device_store(&d2);
	OmemoStore *b3 = device_store(&d3);
	guint32 id1 = omemo_store_device_id(b1);
	guint32 id2 = omemo_store_device_id(b2);

	session_with(a, BOB, id1, b1);
	g_assert_cmpint(trust_of(a, BOB, id1), ==, OMEMO_TRUSTED);
	g_assert_cmpint(omemo_store_set_trust(a, BOB, id1, OMEMO_TRUSTED), ==,
			0);
	g_assert_cmpint(omemo_store_set_trust(a, BOB, 99, OMEMO_TRUSTED), ==,
			-ENOENT);
	g_assert_cmpint(omemo_store_set_trust(a, "nobody@x.y", id1,
					      OMEMO_TRUSTED),
			==, -ENOENT);
	session_with(a, BOB, id2, b2);
	g_assert_cmpint(trust_of(a, BOB, id2), ==, OMEMO_UNDECIDED);
	/* another JID is another matter */
	session_with(a, "carol@example.com", id2, b2);
	g_assert_cmpint(trust_of(a, "carol@example.com", id2), ==,
			OMEMO_TRUSTED);

	/* device 1 shows another key (b3's, under id1) */
	session_with(a, BOB, id1, b3);
	g_assert_cmpint(trust_of(a, BOB, id1), ==, OMEMO_UNDECIDED);
	/* the same key again changes nothing */
	g_assert_cmpint(omemo_store_set_trust(a, BOB, id1, OMEMO_UNTRUSTED),
			==, 0);
	session_with(a, BOB, id1, b3);
	g_assert_cmpint(trust_of(a, BOB, id1), ==, OMEMO_UNTRUSTED);

	/* all of it kept */
	omemo_store_free(a);
	a = open_ok(adir, OMEMO_POLICY_TOFU);
	g_assert_cmpint(trust_of(a, BOB, id1), ==, OMEMO_UNTRUSTED);
	g_assert_cmpint(trust_of(a, BOB, id2), ==, OMEMO_UNDECIDED);
	g_assert_cmpint(trust_of(a, "carol@example.com", id2), ==,
			OMEMO_TRUSTED);

	omemo_store_free(a);
	omemo_store_free(b1);
	omemo_store_free(b2);
	omemo_store_free(b3);
	cleanup(adir);
	cleanup(d1);
	cleanup(d2);
	cleanup(d3);
}

/* Blind trust takes every key, a changed one too, even over a decision
 * the user made on the old key. */
static void test_trust_blind(void)
{
	g_autofree char *adir = tmp_dir(), *d1 = NULL, *d2 = NULL;
	OmemoStore *a = open_ok(adir, OMEMO_POLICY_BLIND);
	OmemoStore *b1 = device_store(&d1), *b2 = device_store(&d2);
	guint32 id1 = omemo_store_device_id(b1);

	session_with(a, BOB, id1, b1);
	g_assert_cmpint(trust_of(a, BOB, id1), ==, OMEMO_TRUSTED);
	g_assert_cmpint(omemo_store_set_trust(a, BOB, id1, OMEMO_UNTRUSTED),
			==, 0);
	g_assert_cmpint(trust_of(a, BOB, id1), ==, OMEMO_UNTRUSTED);
	session_with(a, BOB, id1, b2); /* a new key for that device */
	g_assert_cmpint(trust_of(a, BOB, id1), ==, OMEMO_TRUSTED);
	omemo_store_free(a);
	omemo_store_free(b1);
	omemo_store_free(b2);
	cleanup(adir);
	cleanup(d1);
	cleanup(d2);
}

/* Manual: nothing is trusted until the user says so; what the user said
 * about a device before its key was seen stands when it comes. */
static void test_trust_manual(void)
{
	g_autofree char *adir = tmp_dir(), *d1 = NULL, *d2 = NULL;
	OmemoStore *a = open_ok(adir, OMEMO_POLICY_MANUAL);
	OmemoStore *b1 = device_store(&d1), *b2 = device_store(&d2);
	guint32 id1 = omemo_store_device_id(b1);
	guint32 id2 = omemo_store_device_id(b2);

	session_with(a, BOB, id1, b1);
	g_assert_cmpint(trust_of(a, BOB, id1), ==, OMEMO_UNDECIDED);
	g_assert_cmpint(omemo_store_set_trust(a, BOB, id1, OMEMO_TRUSTED), ==,
			0);
	g_assert_cmpint(trust_of(a, BOB, id1), ==, OMEMO_TRUSTED);

	g_assert_cmpint(omemo_store_set_device_list(a, BOB, &id2, 1), ==, 0);
	g_assert_cmpint(omemo_store_set_trust(a, BOB, id2, OMEMO_UNTRUSTED),
			==, 0);
	session_with(a, BOB, id2, b2);
	g_assert_cmpint(trust_of(a, BOB, id2), ==, OMEMO_UNTRUSTED);
	omemo_store_free(a);
	omemo_store_free(b1);
	omemo_store_free(b2);
	cleanup(adir);
	cleanup(d1);
	cleanup(d2);
}

/* A pre-key message records the sender's key as a bundle does: with the
 * policy's trust. */
static void test_trust_from_prekey_message(void)
{
	Pair p;
	g_autoptr(OmemoEnvelope) m = NULL;

	p.adir = tmp_dir();
	p.bdir = tmp_dir();
	p.a = open_ok(p.adir, OMEMO_POLICY_MANUAL);
	p.b = open_ok(p.bdir, OMEMO_POLICY_TOFU);
	p.aid = omemo_store_device_id(p.a);
	p.bid = omemo_store_device_id(p.b);
	session_with(p.b, ALICE, p.aid, p.a);
	m = encrypt_to(p.b, "hi", ALICE, p.aid);
	decrypt_is(p.a, BOB, m, "hi", true);
	g_assert_cmpint(trust_of(p.a, BOB, p.bid), ==, OMEMO_UNDECIDED);
	pair_clear(&p);
}

/* ---- device lists ---- */

static void test_device_list(void)
{
	g_autofree char *dir = tmp_dir();
	OmemoStore *s = open_ok(dir, OMEMO_POLICY_TOFU);
	guint32 own = omemo_store_device_id(s);
	guint32 first[] = {11, 22, 33, own};
	guint32 second[] = {22, 33, 44, 0};
	g_autoptr(GArray) devs = NULL;

	devs = omemo_store_devices(s, BOB);
	g_assert_cmpuint(devs->len, ==, 0);
	g_clear_pointer(&devs, g_array_unref);
	g_assert_cmpint(omemo_store_set_device_list(s, BOB, first, 4), ==, 0);
	devs = omemo_store_devices(s, BOB);
	g_assert_cmpuint(devs->len, ==, 3);
	for (guint i = 0; i < 3; i++) {
		OmemoDevice *d = &g_array_index(devs, OmemoDevice, i);

		g_assert_cmpuint(d->id, ==, first[i]);
		g_assert_null(d->fingerprint);
		g_assert_cmpint(d->trust, ==, OMEMO_UNDECIDED);
		g_assert_true(d->active);
		g_assert_false(d->session);
	}
	g_clear_pointer(&devs, g_array_unref);

	g_assert_cmpint(omemo_store_set_device_list(s, BOB, second, 4), ==, 0);
	omemo_store_free(s);
	s = open_ok(dir, OMEMO_POLICY_TOFU);
	/* 11 left the list with nothing known of it: forgotten */
	devs = omemo_store_devices(s, BOB);
	g_assert_cmpuint(devs->len, ==, 3);
	g_assert_null(device(devs, 11));
	g_assert_true(device(devs, 22)->active);
	g_assert_true(device(devs, 44)->active);
	g_assert_null(device(devs, 0));
	g_clear_pointer(&devs, g_array_unref);

	/* one the user decided on stays, out of the list */
	g_assert_cmpint(omemo_store_set_trust(s, BOB, 22, OMEMO_TRUSTED), ==, 0);
	g_assert_cmpint(omemo_store_set_device_list(s, BOB, NULL, 0), ==, 0);
	devs = omemo_store_devices(s, BOB);
	g_assert_cmpuint(devs->len, ==, 1);
	g_assert_false(device(devs, 22)->active);
	g_assert_cmpint(device(devs, 22)->trust, ==, OMEMO_TRUSTED);
	g_clear_pointer(&devs, g_array_unref);
	g_assert_cmpint(omemo_store_set_device_list(s, "bad\tjid", first, 1),
			==, -EINVAL);
	omemo_store_free(s);
	cleanup(dir);
}

/* ---- bundles that cannot be used ---- */

static void test_bad_bundles(void)
{
	Pair p;
	g_autoptr(OmemoBundle) b = NULL;
	GArray *keep;

	pair_init(&p);
	b = omemo_store_bundle(p.a);
	flip(b->spk_sig, 10);
	g_assert_cmpint(omemo_store_session_from_bundle(p.b, ALICE, p.aid, b),
			==, -EBADMSG);
	flip(b->spk_sig, 10);
	flip(b->spk, 5); /* the signature no longer matches */
	g_assert_cmpint(omemo_store_session_from_bundle(p.b, ALICE, p.aid, b),
			==, -EBADMSG);
	flip(b->spk, 5);
	keep = b->prekeys;
	b->prekeys = g_array_new(FALSE, TRUE, sizeof(OmemoPreKey));
	g_assert_cmpint(omemo_store_session_from_bundle(p.b, ALICE, p.aid, b),
			==, -EINVAL);
	g_array_unref(b->prekeys);
	b->prekeys = keep;
	g_bytes_unref(b->identity);
	b->identity = g_bytes_new_static("\x05short", 6);
	g_assert_cmpint(omemo_store_session_from_bundle(p.b, ALICE, p.aid, b),
			==, -EBADMSG);
	{
		g_autoptr(GArray) devs = omemo_store_devices(p.b, ALICE);

		g_assert_cmpuint(devs->len, ==, 0); /* nothing recorded */
	}
	pair_clear(&p);
}

/* ---- the files ---- */

static void assert_private(const char *dir)
{
	g_autoptr(GDir) d = g_dir_open(dir, 0, NULL);
	const char *name;

	g_assert_nonnull(d);
	g_assert_cmpint(mode_of(dir), ==, 0700);
	while ((name = g_dir_read_name(d))) {
		g_autofree char *p = g_build_filename(dir, name, NULL);

		if (g_file_test(p, G_FILE_TEST_IS_DIR))
			assert_private(p);
		else
			g_assert_cmpint(mode_of(p), ==, 0600);
	}
}

/* Every file 0600, every directory 0700, whatever the umask says; a
 * session file named after its JID. */
static void test_modes(void)
{
	Pair p;
	g_autoptr(OmemoEnvelope) m = NULL;
	g_autofree char *name = NULL, *path = NULL;
	mode_t old = umask(0);

	pair_init(&p);
	session_with(p.b, ALICE, p.aid, p.a);
	m = encrypt_to(p.b, "hi", ALICE, p.aid);
	decrypt_is(p.a, BOB, m, "hi", true);
	assert_private(p.adir);
	assert_private(p.bdir);
	name = g_strdup_printf("%s.%u", ALICE, p.aid);
	path = g_build_filename(p.bdir, "sessions", name, NULL);
	g_assert_true(g_file_test(path, G_FILE_TEST_IS_REGULAR));
	umask(old);
	pair_clear(&p);
}

/* A file that cannot be parsed fails the open, and stays as it was. */
static void test_corrupt(void)
{
	const char *names[] = {"own", "prekeys", "devices", "sessions/x.1",
			       "sessions/" ALICE ".5"};
	static const char *const junk[] = {
		"garbage\n",
		"",
		"[omemo]\nformat=1\ndevice_id=5\nidentity=AAAA\n",
		"xmppfs-omemo-prekeys 1\nnext 5\n1 !!!!\n",
		"xmppfs-omemo-devices 1\nbob@x\t1\tmaybe\t-\t-\n",
		"xmppfs-omemo-session 1\n" ALICE "\n5\nAAAA\n",
	};

	for (guint i = 0; i < G_N_ELEMENTS(names); i++) {
		for (guint j = 0; j < G_N_ELEMENTS(junk); j++) {
			g_autofree char *dir = tmp_dir();
			g_autofree char *path = g_build_filename(dir, names[i],
								 NULL);
			g_autofree char *back = NULL;
			g_autoptr(GError) err = NULL;
			OmemoStore *s = open_ok(dir, OMEMO_POLICY_TOFU);

			omemo_store_free(s);
			g_assert_true(g_file_set_contents(path, junk[j], -1,
							  NULL));
			s = omemo_store_open(dir, OMEMO_POLICY_TOFU, &err);
			g_test_message("%s <- %u: %s", names[i], j,
				       err ? err->message : "opened");
			g_assert_null(s);
			g_assert_nonnull(err);
			g_assert_true(g_file_get_contents(path, &back, NULL,
							  NULL));
			g_assert_cmpstr(back, ==, junk[j]);
			cleanup(dir);
		}
	}
}

/* A store that cannot be read is an error, not a new identity: "own"
 * that is no file (even root cannot read it as one)... */
static void test_not_a_file(void)
{
	g_autofree char *dir = tmp_dir();
	g_autofree char *own = g_build_filename(dir, "own", NULL);
	g_autoptr(GError) err = NULL;
	OmemoStore *s = open_ok(dir, OMEMO_POLICY_TOFU);

	omemo_store_free(s);
	g_assert_cmpint(g_unlink(own), ==, 0);
	g_assert_cmpint(g_mkdir(own, 0700), ==, 0);
	s = omemo_store_open(dir, OMEMO_POLICY_TOFU, &err);
	g_assert_null(s);
	g_assert_nonnull(err);
	g_assert_true(g_file_test(own, G_FILE_TEST_IS_DIR));
	cleanup(dir);
}

/* ... or a file we may not read. */
static void test_no_permission(void)
{
	g_autofree char *dir = tmp_dir();
	g_autofree char *own = g_build_filename(dir, "own", NULL);
	g_autoptr(GError) err = NULL;
	OmemoStore *s;

	if (geteuid() == 0) {
		g_test_skip("root reads any file");
		cleanup(dir);
		return;
	}
	s = open_ok(dir, OMEMO_POLICY_TOFU);
	omemo_store_free(s);
	g_assert_cmpint(g_chmod(own, 0), ==, 0);
	s = omemo_store_open(dir, OMEMO_POLICY_TOFU, &err);
	g_assert_null(s);
	g_assert_error(err, G_FILE_ERROR, G_FILE_ERROR_ACCES);
	g_chmod(own, 0600);
	cleanup(dir);
}

/* Without "own", a store that has sessions does not start over: they
 * were built with the identity that is gone. */
static void test_lost_identity(void)
{
	Pair p;
	g_autofree char *own = NULL;
	g_autoptr(GError) err = NULL;
	OmemoStore *s;

	pair_init(&p);
	session_with(p.b, ALICE, p.aid, p.a);
	g_clear_pointer(&p.b, omemo_store_free);
	own = g_build_filename(p.bdir, "own", NULL);
	g_assert_cmpint(g_unlink(own), ==, 0);
	s = omemo_store_open(p.bdir, OMEMO_POLICY_TOFU, &err);
	g_assert_null(s);
	g_assert_nonnull(err);
	g_assert_false(g_file_test(own, G_FILE_TEST_EXISTS));
	pair_clear(&p);
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/omemo/gcm/vectors", test_gcm_vectors);
	g_test_add_func("/omemo/fingerprint", test_fingerprint);
	g_test_add_func("/omemo/first-use", test_first_use);
	g_test_add_func("/omemo/exchange", test_exchange);
	g_test_add_func("/omemo/out-of-order", test_out_of_order);
	g_test_add_func("/omemo/persistence", test_persistence);
	g_test_add_func("/omemo/key-transport", test_key_transport);
	g_test_add_func("/omemo/several-devices", test_several_devices);
	g_test_add_func("/omemo/trust/tofu", test_trust_tofu);
	g_test_add_func("/omemo/trust/blind", test_trust_blind);
	g_test_add_func("/omemo/trust/manual", test_trust_manual);
	g_test_add_func("/omemo/trust/prekey-message",
			test_trust_from_prekey_message);
	g_test_add_func("/omemo/device-list", test_device_list);
	g_test_add_func("/omemo/bad-bundles", test_bad_bundles);
	g_test_add_func("/omemo/modes", test_modes);
	g_test_add_func("/omemo/corrupt", test_corrupt);
	g_test_add_func("/omemo/unreadable/not-a-file", test_not_a_file);
	g_test_add_func("/omemo/unreadable/no-permission", test_no_permission);
	g_test_add_func("/omemo/lost-identity", test_lost_identity);
	return g_test_run();
}
