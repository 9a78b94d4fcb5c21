/* omemo_tool.c - store/omemo_store.c from the command line, for
 * omemo_interop.py, which puts it against python-oldmemo (the OMEMO 0.3
 * of the integration tests' other client).  Binary fields travel as
 * base64, one "NAME VALUE..." per line.
 *
 *   omemo_tool DIR bundle
 *       id ID / ik KEY / spk ID KEY / sig SIG / pk ID KEY (one a pre-key)
 *   omemo_tool DIR session JID ID    < the same lines, a peer's bundle
 *   omemo_tool DIR encrypt JID ID [TEXT]    (no TEXT: key transport)
 *       sid ID / prekey 0|1 / key DATA / iv IV / payload DATA|-
 *   omemo_tool DIR decrypt JID SID PREKEY DATA IV PAYLOAD|-
 *       prekey_used 0|1 / text TEXT (absent for key transport)
 *
 * Exit 0, or 1 with the errno on stderr. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/omemo_store.h"

static GBytes *unb64(const char *text)
{
	gsize len;
	guchar *data = g_base64_decode(text, &len);

	return g_bytes_new_take(data, len);
}

/* @b in base64, "-" for none. */
static char *b64(GBytes *b)
{
	if (!b)
		return g_strdup("-");
	return g_base64_encode(g_bytes_get_data(b, NULL), g_bytes_get_size(b));
}

static void put(const char *name, GBytes *b)
{
	g_autofree char *text = b64(b);

	printf("%s %s\n", name, text);
}

static void put_id(const char *name, guint32 id, GBytes *b)
{
	g_autofree char *text = b64(b);

	printf("%s %" G_GUINT32_FORMAT " %s\n", name, id, text);
}

static int fail(const char *what, int err)
{
	fprintf(stderr, "omemo_tool: %s: %s\n", what, g_strerror(-err));
	return 1;
}

static int bundle(OmemoStore *s)
{
	g_autoptr(OmemoBundle) b = omemo_store_bundle(s);

	printf("id %" G_GUINT32_FORMAT "\n", omemo_store_device_id(s));
	put("ik", b->identity);
	put_id("spk", b->spk_id, b->spk);
	put("sig", b->spk_sig);
	for (guint i = 0; i < b->prekeys->len; i++) {
		OmemoPreKey *k = &g_array_index(b->prekeys, OmemoPreKey, i);

		put_id("pk", k->id, k->pub);
	}
	return 0;
}

static void bundle_line(OmemoBundle *b, char **f)
{
	guint n = g_strv_length(f);

	if (n == 2 && !strcmp(f[0], "ik")) {
		b->identity = unb64(f[1]);
	} else if (n == 3 && !strcmp(f[0], "spk")) {
		b->spk_id = strtoul(f[1], NULL, 10);
		b->spk = unb64(f[2]);
	} else if (n == 2 && !strcmp(f[0], "sig")) {
		b->spk_sig = unb64(f[1]);
	} else if (n == 3 && !strcmp(f[0], "pk")) {
		OmemoPreKey k = {strtoul(f[1], NULL, 10), unb64(f[2])};

		g_array_append_val(b->prekeys, k);
	}
}

static int session(OmemoStore *s, const char *jid, guint32 id)
{
	g_autoptr(OmemoBundle) b = omemo_bundle_new();
	char line[4096];
	int ret;

	while (fgets(line, sizeof line, stdin)) {
		g_auto(GStrv) f = NULL;

		line[strcspn(line, "\n")] = '\0';
		f = g_strsplit(line, " ", -1);
		bundle_line(b, f);
	}
	ret = omemo_store_session_from_bundle(s, jid, id, b);
	return ret ? fail("session", ret) : 0;
}

static int encrypt(OmemoStore *s, const char *jid, guint32 id,
		   const char *text)
{
	OmemoAddr to = {jid, id};
	g_autoptr(OmemoEnvelope) e = NULL;
	OmemoKey *k;
	int ret = omemo_store_encrypt(s, text, &to, 1, &e);

	if (ret)
		return fail("encrypt", ret);
	k = e->keys->pdata[0];
	printf("sid %" G_GUINT32_FORMAT "\nprekey %d\n", e->sid, k->prekey);
	put("key", k->data);
	put("iv", e->iv);
	put("payload", e->payload);
	return 0;
}

static int decrypt(OmemoStore *s, char **argv)
{
	g_autoptr(OmemoEnvelope) e = omemo_envelope_new();
	g_autofree char *text = NULL;
	OmemoKey *k = g_new0(OmemoKey, 1);
	bool used = false;
	int ret;

	e->sid = strtoul(argv[1], NULL, 10);
	k->rid = omemo_store_device_id(s);
	k->prekey = atoi(argv[2]);
	k->data = unb64(argv[3]);
	g_ptr_array_add(e->keys, k);
	e->iv = unb64(argv[4]);
	if (strcmp(argv[5], "-"))
		e->payload = unb64(argv[5]);
	ret = omemo_store_decrypt(s, argv[0], e, &text, &used);
	if (ret)
		return fail("decrypt", ret);
	printf("prekey_used %d\n", used);
	if (text)
		printf("text %s\n", text);
	return 0;
}

int main(int argc, char **argv)
{
	g_autoptr(GError) err = NULL;
	g_autoptr(OmemoStore) s = NULL;
	const char *cmd = argc > 2 ? argv[2] : "";

	if (argc < 3) {
		fprintf(stderr, "usage: omemo_tool DIR COMMAND [ARG...]\n");
		return 2;
	}
	s = omemo_store_open(argv[1], OMEMO_POLICY_TOFU, &err);
	if (!s) {
		fprintf(stderr, "omemo_tool: %s\n", err->message);
		return 1;
	}
	if (!strcmp(cmd, "bundle"))
		return bundle(s);
	if (!strcmp(cmd, "session") && argc == 5)
		return session(s, argv[3], strtoul(argv[4], NULL, 10));
	if (!strcmp(cmd, "encrypt") && (argc == 5 || argc == 6))
		return encrypt(s, argv[3], strtoul(argv[4], NULL, 10),
			       argc == 6 ? argv[5] : NULL);
	if (!strcmp(cmd, "decrypt") && argc == 9)
		return decrypt(s, argv + 3);
	fprintf(stderr, "omemo_tool: bad command\n");
	return 2;
}
