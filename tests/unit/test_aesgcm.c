/* test_aesgcm - base/aesgcm.c: files shared encrypted (XEP-0454): the
 * AES-256-GCM of a file against a fixed vector (the GCM specification's
 * test case 14), round trips across blocks, a tampered file refused with
 * nothing left to read, and aesgcm:// links made and parsed. */
#include <errno.h>
#include <glib.h>
#include <glib/gstdio.h>
#include <string.h>
#include <unistd.h>

#include "base/aesgcm.h"

static char *tmpdir;

static int tmpfile_with(const guint8 *data, gsize len)
{
	g_autofree char *path = g_build_filename(tmpdir, "f-XXXXXX", NULL);
	int fd = g_mkstemp(path);

	g_assert_cmpint(fd, >=, 0);
	unlink(path);
	g_assert_cmpint(write(fd, data, len), ==, (ssize_t)len);
	return fd;
}

static GBytes *contents(int fd)
{
	off_t end = lseek(fd, 0, SEEK_END);
	guint8 *buf = g_malloc(end + 1);

	g_assert_cmpint(pread(fd, buf, end, 0), ==, end);
	return g_bytes_new_take(buf, end);
}

static void unhex(const char *h, guint8 *out)
{
	for (gsize i = 0; h[2 * i]; i++)
		out[i] = (guint8)(g_ascii_xdigit_value(h[2 * i]) << 4 |
				  g_ascii_xdigit_value(h[2 * i + 1]));
}

/* GCM spec test case 14: K = 0^256, IV = 0^96, P = 0^128. */
static void test_fixed_vector(void)
{
	guint8 key[32] = {0}, iv[12] = {0}, pt[16] = {0}, want[32];
	int in = tmpfile_with(pt, sizeof pt), out = tmpfile_with(NULL, 0);
	g_autoptr(GBytes) got = NULL;
	guint64 size = 0;

	unhex("cea7403d4d606b6e074ec5d3baf39d18"
	      "d0d1c8a799996bf0265b98b5d48ab919", want);
	g_assert_cmpint(aesgcm_encrypt_fd(in, out, key, iv, &size), ==, 0);
	g_assert_cmpuint(size, ==, 32);
	got = contents(out);
	g_assert_cmpmem(g_bytes_get_data(got, NULL), g_bytes_get_size(got),
			want, sizeof want);
	close(in);
	close(out);
}

static void test_round_trip_and_tamper(void)
{
	gsize len = 200 * 1024 + 7; /* more than three blocks */
	g_autofree guint8 *pt = g_malloc(len);
	guint8 key[32], iv[12], b;
	int in, enc, dec;
	guint64 size;
	g_autoptr(GBytes) back = NULL, empty = NULL;

	for (gsize i = 0; i < len; i++)
		pt[i] = (guint8)g_random_int();
	for (gsize i = 0; i < 32; i++)
		key[i] = (guint8)g_random_int();
	for (gsize i = 0; i < 12; i++)
		iv[i] = (guint8)g_random_int();
	in = tmpfile_with(pt, len);
	enc = tmpfile_with(NULL, 0);
	dec = tmpfile_with((const guint8 *)"stale", 5);
	g_assert_cmpint(aesgcm_encrypt_fd(in, enc, key, iv, &size), ==, 0);
	g_assert_cmpuint(size, ==, len + 16);
	g_assert_cmpint(aesgcm_decrypt_fd(enc, dec, key, iv, 12), ==, 0);
	back = contents(dec);
	g_assert_cmpmem(g_bytes_get_data(back, NULL), g_bytes_get_size(back),
			pt, len);
	/* one bit of the ciphertext: refused, nothing left */
	g_assert_cmpint(pread(enc, &b, 1, 1000), ==, 1);
	b ^= 1;
	g_assert_cmpint(pwrite(enc, &b, 1, 1000), ==, 1);
	g_assert_cmpint(aesgcm_decrypt_fd(enc, dec, key, iv, 12), ==,
			-EBADMSG);
	empty = contents(dec);
	g_assert_cmpuint(g_bytes_get_size(empty), ==, 0);
	/* shorter than a tag */
	g_assert_cmpint(ftruncate(enc, 5), ==, 0);
	g_assert_cmpint(aesgcm_decrypt_fd(enc, dec, key, iv, 12), ==,
			-EBADMSG);
	close(in);
	close(enc);
	close(dec);
}

static void test_urls(void)
{
	guint8 key[32], iv[12], k2[32], iv2[16];
	g_autofree char *url = NULL, *https = NULL, *old = NULL;
	gsize iv_len = 0;
	static const char *const bad[] = {
		"https://h/p#00",
		"aesgcm://h/p",
		"aesgcm://h/p#0011",
		"aesgcm://#000000000000000000000000"
		"0000000000000000000000000000000000000000000000000000000000000000",
		"aesgcm://hostonly#000000000000000000000000"
		"0000000000000000000000000000000000000000000000000000000000000000",
		"aesgcm://h/p q#000000000000000000000000"
		"0000000000000000000000000000000000000000000000000000000000000000",
		"aesgcm://h/p#zz0000000000000000000000"
		"0000000000000000000000000000000000000000000000000000000000000000",
	};

	for (gsize i = 0; i < 32; i++)
		key[i] = (guint8)(i * 7);
	for (gsize i = 0; i < 12; i++)
		iv[i] = (guint8)(0xf0 | i);
	url = aesgcm_url("https://up.example.org/abc/f%20x.png", iv, key);
	g_assert_true(g_str_has_prefix(url,
				       "aesgcm://up.example.org/abc/f%20x.png#"
				       "f0f1f2f3f4f5f6f7f8f9fafb00070e15"));
	g_assert_true(aesgcm_url_parse(url, &https, iv2, &iv_len, k2));
	g_assert_cmpstr(https, ==, "https://up.example.org/abc/f%20x.png");
	g_assert_cmpuint(iv_len, ==, 12);
	g_assert_cmpmem(iv2, 12, iv, 12);
	g_assert_cmpmem(k2, 32, key, 32);
	/* a 16-byte IV, as older clients make */
	old = g_strdup_printf("aesgcm://h/p#%s%s",
			      "000102030405060708090a0b0c0d0e0f",
			      "00000000000000000000000000000000"
			      "00000000000000000000000000000000");
	g_clear_pointer(&https, g_free);
	g_assert_true(aesgcm_url_parse(old, &https, iv2, &iv_len, k2));
	g_assert_cmpuint(iv_len, ==, 16);
	g_assert_cmpuint(iv2[15], ==, 0x0f);
	for (gsize i = 0; i < G_N_ELEMENTS(bad); i++) {
		char *h = NULL;
		g_assert_false(aesgcm_url_parse(bad[i], &h, iv2, &iv_len, k2));
		g_assert_null(h);
	}
}

int main(int argc, char **argv)
{
	int ret;

	g_test_init(&argc, &argv, NULL);
	tmpdir = g_dir_make_tmp("aesgcm-XXXXXX", NULL);
	g_test_add_func("/aesgcm/fixed-vector", test_fixed_vector);
	g_test_add_func("/aesgcm/round-trip-and-tamper",
			test_round_trip_and_tamper);
	g_test_add_func("/aesgcm/urls", test_urls);
	ret = g_test_run();
	g_rmdir(tmpdir);
	g_free(tmpdir);
	return ret;
}
