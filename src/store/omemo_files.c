/* omemo_files.c - the OMEMO store's directory (omemo_int.h).
 *
 * DIR (0700) holds, each file 0600 and each written whole to a
 * temporary file that is fsynced and renamed over the old one (then DIR
 * is fsynced), so a crash leaves the old version or the new, never half:
 *
 *   own       a GKeyFile, written last at first use (without it nothing
 *             else here is ours):
 *                 [omemo]
 *                 format=1
 *                 device_id=12345
 *                 identity=BASE64       identity key pair, secret
 *                 signed_prekey=BASE64  signed pre-key record, secret
 *             the BASE64 values are libsignal's own serializations
 *             (ratchet_identity_key_pair_serialize,
 *             session_signed_pre_key_serialize).
 *   prekeys   "xmppfs-omemo-prekeys 1\n", "next N\n" (the id the next
 *             new pre-key gets: ids are not used twice), then one line
 *             "ID BASE64\n" per pre-key (session_pre_key_serialize,
 *             secret).
 *   devices   "xmppfs-omemo-devices 1\n", then one line per device of
 *             another JID (or of our own JID but another device):
 *                 JID TAB ID TAB TRUST TAB FLAGS TAB KEY
 *             TRUST undecided, trusted or untrusted; FLAGS "-" or some
 *             of "a" (active: in the JID's last device list) and "m"
 *             (TRUST is the user's decision); KEY the base64 of the 33
 *             bytes of its identity key, or "-" while none is known.
 *   sessions/ one file per session, named by its JID and device id
 *             (omemo_session_name): "xmppfs-omemo-session 1\n",
 *             "JID\n", "ID\n", and base64 of session_record_serialize
 *             (secret) and "\n".  The name is only for people: the JID
 *             is read from the file.
 *
 * Temporary files are ".tmp-NAME-XXXXXX"; one a crash left is removed
 * at the next open.  A file that is there but cannot be read or parsed
 * fails the open: it is never written over.  Nothing here logs what a
 * file holds. */
#include "store/omemo_int.h"

#include <errno.h>
#include <fcntl.h>
#include <glib/gstdio.h>
#include <session_pre_key.h>
#include <session_record.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/util.h"

#define TMP_PREFIX ".tmp-"
#define PREKEYS_MAGIC "xmppfs-omemo-prekeys 1"
#define DEVICES_MAGIC "xmppfs-omemo-devices 1"
#define SESSION_MAGIC "xmppfs-omemo-session 1"
/* Longer escaped JIDs are named by their hash: a file name has 255
 * bytes, and the temporary name adds to it. */
#define NAME_MAX_JID 200

void omemo_prekey_rec_free(gpointer p)
{
	OmemoPreKeyRec *r = p;

	if (!r)
		return;
	g_bytes_unref(r->record);
	g_bytes_unref(r->pub);
	g_free(r);
}

void omemo_device_rec_free(gpointer p)
{
	OmemoDeviceRec *d = p;

	if (!d)
		return;
	g_bytes_unref(d->identity);
	g_free(d);
}

GHashTable *omemo_jid_table(GHashTable *outer, const char *jid, bool create,
			    GDestroyNotify value_free)
{
	GHashTable *t = g_hash_table_lookup(outer, jid);

	if (!t && create) {
		t = g_hash_table_new_full(g_direct_hash, g_direct_equal, NULL,
					  value_free);
		g_hash_table_insert(outer, g_strdup(jid), t);
	}
	return t;
}

bool omemo_jid_ok(const char *jid)
{
	if (!jid || !*jid || !g_utf8_validate(jid, -1, NULL))
		return false;
	for (const char *p = jid; *p; p++)
		if ((guchar)*p < 0x20 || *p == 0x7f)
			return false;
	return true;
}

/* ---- writing ---- */

static int fsync_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int ret = 0;

	if (fd < 0)
		return -errno;
	if (fsync(fd) < 0)
		ret = -errno;
	close(fd);
	return ret;
}

int omemo_file_write(const char *dir, const char *name, const void *data,
		     gsize len)
{
	g_autofree char *tmp = g_strdup_printf("%s/" TMP_PREFIX "%s-XXXXXX",
					       dir, name);
	g_autofree char *path = g_build_filename(dir, name, NULL);
	int fd, ret;

	fd = g_mkstemp_full(tmp, O_WRONLY | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	ret = util_write_all(fd, data, len);
	if (!ret && fsync(fd) < 0)
		ret = -errno;
	if (close(fd) < 0 && !ret)
		ret = -errno;
	if (!ret && rename(tmp, path) < 0)
		ret = -errno;
	if (ret) {
		unlink(tmp);
		return ret;
	}
	return fsync_dir(dir);
}

static int write_gstring(const char *dir, const char *name, GString *text)
{
	int ret = omemo_file_write(dir, name, text->str, text->len);

	/* most of what these files hold is secret */
	memset(text->str, 0, text->allocated_len);
	g_string_free(text, TRUE);
	return ret;
}

static char *b64_bytes(GBytes *b)
{
	gsize len;
	const void *data = g_bytes_get_data(b, &len);

	return g_base64_encode(data, len);
}

static char *b64_signal(signal_buffer *b)
{
	char *ret = g_base64_encode(signal_buffer_data(b),
				    signal_buffer_len(b));

	signal_buffer_bzero_free(b);
	return ret;
}

int omemo_save_own(OmemoStore *s)
{
	signal_buffer *id = NULL, *spk = NULL;
	g_autofree char *id64 = NULL, *spk64 = NULL;
	GString *text;

	if (ratchet_identity_key_pair_serialize(&id, s->identity) < 0 ||
	    session_signed_pre_key_serialize(&spk, s->spk) < 0) {
		signal_buffer_bzero_free(id);
		return -ENOMEM;
	}
	id64 = b64_signal(id);
	spk64 = b64_signal(spk);
	/* sized once: a GString that grows leaves copies behind */
	text = g_string_sized_new(strlen(id64) + strlen(spk64) + 128);
	g_string_append_printf(text,
			       "[omemo]\nformat=1\ndevice_id=%" G_GUINT32_FORMAT
			       "\nidentity=%s\nsigned_prekey=%s\n",
			       s->device_id, id64, spk64);
	memset(id64, 0, strlen(id64));
	memset(spk64, 0, strlen(spk64));
	return write_gstring(s->dir, "own", text);
}

static gint cmp_id(gconstpointer a, gconstpointer b)
{
	guint32 x = GPOINTER_TO_UINT(*(gconstpointer const *)a);
	guint32 y = GPOINTER_TO_UINT(*(gconstpointer const *)b);

	return x < y ? -1 : x > y;
}

/* The keys of @t (ids) in order. */
static GPtrArray *sorted_ids(GHashTable *t)
{
	GPtrArray *ids = g_ptr_array_new();
	GHashTableIter it;
	gpointer k;

	g_hash_table_iter_init(&it, t);
	while (g_hash_table_iter_next(&it, &k, NULL))
		g_ptr_array_add(ids, k);
	g_ptr_array_sort(ids, cmp_id);
	return ids;
}

int omemo_save_prekeys(OmemoStore *s)
{
	g_autoptr(GPtrArray) ids = sorted_ids(s->prekeys);
	/* sized once (a record's base64 is about 70 bytes): a GString
	 * that grows leaves copies behind */
	GString *text = g_string_sized_new(64 + ids->len * 160);

	g_string_append(text, PREKEYS_MAGIC "\n");
	g_string_append_printf(text, "next %" G_GUINT32_FORMAT "\n",
			       s->next_prekey_id);
	for (guint i = 0; i < ids->len; i++) {
		OmemoPreKeyRec *r = g_hash_table_lookup(s->prekeys,
							ids->pdata[i]);
		g_autofree char *rec = b64_bytes(r->record);

		g_string_append_printf(text, "%" G_GUINT32_FORMAT " %s\n",
				       r->id, rec);
		memset(rec, 0, strlen(rec));
	}
	return write_gstring(s->dir, "prekeys", text);
}

static const char *const trust_names[] = {
	[OMEMO_UNDECIDED] = "undecided",
	[OMEMO_TRUSTED] = "trusted",
	[OMEMO_UNTRUSTED] = "untrusted",
};

static void append_device(GString *text, const char *jid,
			  const OmemoDeviceRec *d)
{
	g_autofree char *key = d->identity ? b64_bytes(d->identity) : NULL;

	g_string_append_printf(text,
			       "%s\t%" G_GUINT32_FORMAT "\t%s\t%s%s%s\t%s\n",
			       jid, d->id, trust_names[d->trust],
			       d->active ? "a" : "", d->manual ? "m" : "",
			       !d->active && !d->manual ? "-" : "",
			       key ? key : "-");
}

int omemo_save_devices(OmemoStore *s)
{
	g_autofree gpointer *jids = NULL;
	guint n;
	int ret;
	GString *text = g_string_new(DEVICES_MAGIC "\n");

	jids = g_hash_table_get_keys_as_array(s->devices, &n);
	qsort(jids, n, sizeof *jids, (GCompareFunc)util_cmp_strp);
	for (guint i = 0; i < n; i++) {
		GHashTable *t = g_hash_table_lookup(s->devices, jids[i]);
		g_autoptr(GPtrArray) ids = sorted_ids(t);

		for (guint j = 0; j < ids->len; j++)
			append_device(text, jids[i],
				      g_hash_table_lookup(t, ids->pdata[j]));
	}
	ret = omemo_file_write(s->dir, "devices", text->str, text->len);
	g_string_free(text, TRUE); /* public keys only */
	return ret;
}

/* "JID.ID" with the JID's bytes outside [A-Za-z0-9@._+-] (and a leading
 * '.') as %XX, or "~SHA256.ID" when that is too long. */
static char *session_name(const char *jid, guint32 id)
{
	GString *name = g_string_new(NULL);

	for (const char *p = jid; *p; p++) {
		guchar c = *p;
		bool keep = g_ascii_isalnum(c) || strchr("@._+-", c);

		if (keep && !(c == '.' && p == jid)) /* no hidden names */
			g_string_append_c(name, c);
		else
			g_string_append_printf(name, "%%%02X", c);
	}
	if (name->len > NAME_MAX_JID) {
		g_autofree char *sum = g_compute_checksum_for_string(
			G_CHECKSUM_SHA256, jid, -1);

		g_string_assign(name, "~");
		g_string_append(name, sum);
	}
	g_string_append_printf(name, ".%" G_GUINT32_FORMAT, id);
	return g_string_free(name, FALSE);
}

int omemo_save_session(OmemoStore *s, const char *jid, guint32 id,
		       GBytes *record)
{
	g_autofree char *name = session_name(jid, id);
	g_autofree char *rec = b64_bytes(record);
	GString *text = g_string_sized_new(strlen(rec) + strlen(jid) + 64);

	g_string_append(text, SESSION_MAGIC "\n");
	g_string_append_printf(text, "%s\n%" G_GUINT32_FORMAT "\n%s\n", jid, id,
			       rec);
	memset(rec, 0, strlen(rec));
	return write_gstring(s->sessions_dir, name, text);
}

int omemo_remove_session(OmemoStore *s, const char *jid, guint32 id)
{
	g_autofree char *name = session_name(jid, id);
	g_autofree char *path = g_build_filename(s->sessions_dir, name, NULL);

	if (unlink(path) < 0)
		return errno == ENOENT ? 0 : -errno;
	return fsync_dir(s->sessions_dir);
}

/* ---- reading ---- */

static bool corrupt(GError **err, const char *path, const char *what)
{
	g_set_error(err, G_FILE_ERROR, G_FILE_ERROR_INVAL,
		    "%s: not an OMEMO store file of ours (%s)", path, what);
	return false;
}

/* Base64 as we write it: nothing g_base64_decode would skip silently. */
static GBytes *unb64(const char *text)
{
	static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
				       "abcdefghijklmnopqrstuvwxyz0123456789+/=";
	gsize n = strlen(text), len;
	guchar *data;

	if (!n || n % 4 || strspn(text, alphabet) != n)
		return NULL;
	data = g_base64_decode(text, &len);
	return g_bytes_new_take(data, len);
}

static bool parse_u32(const char *text, guint32 min, guint32 max, guint32 *out)
{
	guint64 v;

	if (!g_ascii_string_to_unsigned(text, 10, min, max, &v, NULL))
		return false;
	*out = (guint32)v;
	return true;
}

/* The whole of @path; NULL with @err, ENOENT too. */
static char *slurp(const char *path, gsize *len, GError **err)
{
	char *text = NULL;

	if (!g_file_get_contents(path, &text, len, err))
		return NULL;
	return text;
}

static void free_secret(char *text, gsize len)
{
	if (text)
		memset(text, 0, len);
	g_free(text);
}

/* The base64 value @key of "own", decoded. */
static bool own_record(GKeyFile *kf, const char *key, GBytes **out)
{
	g_autofree char *text = g_key_file_get_string(kf, "omemo", key, NULL);

	*out = text ? unb64(text) : NULL;
	if (text)
		memset(text, 0, strlen(text));
	return *out != NULL;
}

int omemo_load_own(OmemoStore *s, GError **err)
{
	g_autofree char *path = g_build_filename(s->dir, "own", NULL);
	g_autoptr(GKeyFile) kf = g_key_file_new();
	g_autoptr(GError) e = NULL;
	g_autoptr(GBytes) id = NULL, spk = NULL;
	gsize len = 0;
	char *text = slurp(path, &len, &e);
	bool ok;
	gint64 format, dev;

	if (!text) {
		if (g_error_matches(e, G_FILE_ERROR, G_FILE_ERROR_NOENT))
			return 0;
		g_propagate_error(err, g_steal_pointer(&e));
		return -1;
	}
	ok = g_key_file_load_from_data(kf, text, len, G_KEY_FILE_NONE, NULL);
	free_secret(text, len);
	if (!ok)
		return corrupt(err, path, "not a key file"), -1;
	format = g_key_file_get_int64(kf, "omemo", "format", NULL);
	dev = g_key_file_get_int64(kf, "omemo", "device_id", NULL);
	if (format != 1)
		return corrupt(err, path, "format"), -1;
	if (dev < 1 || dev > G_MAXINT32)
		return corrupt(err, path, "device_id"), -1;
	s->device_id = (guint32)dev;
	if (!own_record(kf, "identity", &id) ||
	    ratchet_identity_key_pair_deserialize(&s->identity,
						  g_bytes_get_data(id, NULL),
						  g_bytes_get_size(id),
						  s->ctx) < 0)
		return corrupt(err, path, "identity"), -1;
	if (!own_record(kf, "signed_prekey", &spk) ||
	    session_signed_pre_key_deserialize(&s->spk,
					       g_bytes_get_data(spk, NULL),
					       g_bytes_get_size(spk),
					       s->ctx) < 0)
		return corrupt(err, path, "signed_prekey"), -1;
	return 1;
}

OmemoPreKeyRec *omemo_prekey_rec_new(OmemoStore *s, GBytes *record)
{
	session_pre_key *pk = NULL;
	signal_buffer *pub = NULL;
	OmemoPreKeyRec *r;

	if (session_pre_key_deserialize(&pk, g_bytes_get_data(record, NULL),
					g_bytes_get_size(record), s->ctx) < 0)
		return NULL;
	if (ec_public_key_serialize(&pub, ec_key_pair_get_public(
				session_pre_key_get_key_pair(pk))) < 0) {
		SIGNAL_UNREF(pk);
		return NULL;
	}
	r = g_new0(OmemoPreKeyRec, 1);
	r->id = session_pre_key_get_id(pk);
	r->record = g_bytes_ref(record);
	r->pub = g_bytes_new(signal_buffer_data(pub), signal_buffer_len(pub));
	signal_buffer_free(pub);
	SIGNAL_UNREF(pk);
	return r;
}

static bool prekey_line(OmemoStore *s, char *line)
{
	char *sp = strchr(line, ' ');
	g_autoptr(GBytes) record = NULL;
	OmemoPreKeyRec *r;
	guint32 id;

	if (!sp)
		return false;
	*sp = '\0';
	if (!parse_u32(line, 1, OMEMO_PREKEY_ID_MAX, &id) ||
	    !(record = unb64(sp + 1)) || !(r = omemo_prekey_rec_new(s, record)))
		return false;
	if (r->id != id || g_hash_table_contains(s->prekeys,
						 OMEMO_ID_KEY(id))) {
		omemo_prekey_rec_free(r);
		return false;
	}
	g_hash_table_insert(s->prekeys, OMEMO_ID_KEY(id), r);
	return true;
}

bool omemo_load_prekeys(OmemoStore *s, GError **err)
{
	g_autofree char *path = g_build_filename(s->dir, "prekeys", NULL);
	gsize len = 0;
	char *text = slurp(path, &len, err);
	char **lines;
	bool ok = true;
	guint n;

	if (!text)
		return false;
	lines = g_strsplit(text, "\n", -1);
	free_secret(text, len);
	n = g_strv_length(lines);
	/* the last line is the empty rest after the final newline */
	if (n < 3 || *lines[n - 1] || strcmp(lines[0], PREKEYS_MAGIC) ||
	    !g_str_has_prefix(lines[1], "next ") ||
	    !parse_u32(lines[1] + 5, 1, OMEMO_PREKEY_ID_MAX,
		       &s->next_prekey_id))
		ok = false;
	for (guint i = 2; ok && i < n - 1; i++)
		ok = prekey_line(s, lines[i]);
	for (guint i = 0; i < n; i++)
		memset(lines[i], 0, strlen(lines[i]));
	g_strfreev(lines);
	return ok ? true : corrupt(err, path, "prekeys");
}

static bool device_line(OmemoStore *s, const char *line)
{
	g_auto(GStrv) f = g_strsplit(line, "\t", -1);
	g_autoptr(GBytes) key = NULL;
	OmemoDeviceRec *d;
	GHashTable *t;
	guint32 id;
	int trust = -1;

	if (g_strv_length(f) != 5 || !omemo_jid_ok(f[0]) ||
	    !parse_u32(f[1], 1, G_MAXINT32, &id))
		return false;
	for (guint i = 0; i < G_N_ELEMENTS(trust_names); i++)
		if (!strcmp(f[2], trust_names[i]))
			trust = i;
	if (trust < 0 || strspn(f[3], "am-") != strlen(f[3]) || !*f[3])
		return false;
	if (strcmp(f[4], "-")) {
		key = unb64(f[4]);
		if (!key || g_bytes_get_size(key) != OMEMO_KEY_LEN ||
		    *(const guint8 *)g_bytes_get_data(key, NULL) != 0x05)
			return false;
	}
	t = omemo_jid_table(s->devices, f[0], true, omemo_device_rec_free);
	if (g_hash_table_contains(t, OMEMO_ID_KEY(id)))
		return false;
	d = g_new0(OmemoDeviceRec, 1);
	d->id = id;
	d->identity = g_steal_pointer(&key);
	d->trust = trust;
	d->active = strchr(f[3], 'a') != NULL;
	d->manual = strchr(f[3], 'm') != NULL;
	g_hash_table_insert(t, OMEMO_ID_KEY(id), d);
	return true;
}

bool omemo_load_devices(OmemoStore *s, GError **err)
{
	g_autofree char *path = g_build_filename(s->dir, "devices", NULL);
	g_autofree char *text = NULL;
	g_auto(GStrv) lines = NULL;
	g_autoptr(GError) e = NULL;
	bool ok = true;
	guint n;

	if (!g_file_get_contents(path, &text, NULL, &e)) {
		if (g_error_matches(e, G_FILE_ERROR, G_FILE_ERROR_NOENT))
			return true; /* no device seen yet */
		g_propagate_error(err, g_steal_pointer(&e));
		return false;
	}
	lines = g_strsplit(text, "\n", -1);
	n = g_strv_length(lines);
	if (n < 2 || *lines[n - 1] || strcmp(lines[0], DEVICES_MAGIC))
		ok = false;
	for (guint i = 1; ok && i < n - 1; i++)
		ok = device_line(s, lines[i]);
	return ok ? true : corrupt(err, path, "devices");
}

/* One file of sessions/: its JID, id and record, checked by libsignal. */
static bool session_file(OmemoStore *s, const char *name, GError **err)
{
	g_autofree char *path = g_build_filename(s->sessions_dir, name, NULL);
	g_autofree char *expect = NULL;
	g_autoptr(GBytes) record = NULL;
	session_record *rec = NULL;
	gsize len = 0;
	char *text = slurp(path, &len, err);
	char **f;
	guint32 id = 0;
	bool ok;

	if (!text)
		return false;
	f = g_strsplit(text, "\n", -1);
	free_secret(text, len);
	ok = g_strv_length(f) == 5 && !strcmp(f[0], SESSION_MAGIC) &&
	     omemo_jid_ok(f[1]) && parse_u32(f[2], 1, G_MAXINT32, &id) &&
	     !*f[4] && (record = unb64(f[3]));
	if (ok) {
		expect = session_name(f[1], id);
		ok = !strcmp(expect, name) &&
		     session_record_deserialize(&rec,
						g_bytes_get_data(record, NULL),
						g_bytes_get_size(record),
						s->ctx) >= 0;
		SIGNAL_UNREF(rec);
	}
	if (ok) {
		GHashTable *t = omemo_jid_table(s->sessions, f[1], true,
						(GDestroyNotify)g_bytes_unref);

		g_hash_table_insert(t, OMEMO_ID_KEY(id),
				    g_steal_pointer(&record));
	}
	for (guint i = 0; f[i]; i++)
		memset(f[i], 0, strlen(f[i]));
	g_strfreev(f);
	return ok ? true : corrupt(err, path, "session");
}

void omemo_remove_leftovers(const char *dir)
{
	g_autoptr(GDir) d = g_dir_open(dir, 0, NULL);
	const char *name;

	while (d && (name = g_dir_read_name(d))) {
		g_autofree char *path = g_build_filename(dir, name, NULL);

		if (g_str_has_prefix(name, TMP_PREFIX))
			unlink(path);
	}
}

bool omemo_load_sessions(OmemoStore *s, GError **err)
{
	g_autoptr(GDir) d = g_dir_open(s->sessions_dir, 0, err);
	const char *name;

	if (!d)
		return false;
	while ((name = g_dir_read_name(d)))
		if (!g_str_has_prefix(name, TMP_PREFIX) &&
		    !session_file(s, name, err))
			return false;
	return true;
}
