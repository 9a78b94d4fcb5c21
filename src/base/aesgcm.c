/* aesgcm.c - see aesgcm.h.  Files go through in blocks: a file may be as
 * large as the upload service takes, and is never read whole. */
#include "base/aesgcm.h"

#include <errno.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "base/util.h"

#define BLOCK (64 * 1024)

/* @n bytes of @fd at @off into @buf (all of them, or -errno / -EIO for a
 * file that ended early). */
static int read_at(int fd, guint8 *buf, gsize n, off_t off)
{
	while (n) {
		ssize_t r = pread(fd, buf, n, off);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -errno;
		if (r == 0)
			return -EIO;
		buf += r;
		n -= (gsize)r;
		off += r;
	}
	return 0;
}

/* Through @ctx, @len bytes of @in from offset 0 into @out. */
static int crypt_blocks(EVP_CIPHER_CTX *ctx, int in, int out, guint64 len)
{
	g_autofree guint8 *buf = g_malloc(BLOCK), *obuf = g_malloc(BLOCK);
	guint64 done = 0;
	int ret, olen;

	while (done < len) {
		gsize n = MIN((guint64)BLOCK, len - done);
		if ((ret = read_at(in, buf, n, (off_t)done)))
			return ret;
		if (!EVP_CipherUpdate(ctx, obuf, &olen, buf, (int)n))
			return -EIO;
		if ((ret = util_write_all(out, (const char *)obuf, (gsize)olen)))
			return ret;
		done += n;
	}
	OPENSSL_cleanse(buf, BLOCK);
	OPENSSL_cleanse(obuf, BLOCK);
	return 0;
}

int aesgcm_new_key(guint8 key[AESGCM_KEY], guint8 iv[AESGCM_IV])
{
	return RAND_bytes(key, AESGCM_KEY) == 1 && RAND_bytes(iv, AESGCM_IV) == 1
		       ? 0
		       : -EIO;
}

static int start(int out)
{
	if (ftruncate(out, 0) < 0 || lseek(out, 0, SEEK_SET) < 0)
		return -errno;
	return 0;
}

int aesgcm_encrypt_fd(int in, int out, const guint8 key[AESGCM_KEY],
		      const guint8 iv[AESGCM_IV], guint64 *size)
{
	EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
	guint8 tag[AESGCM_TAG];
	struct stat st;
	int ret, olen;

	if (!ctx)
		return -ENOMEM;
	if (fstat(in, &st) < 0) {
		ret = -errno;
		goto out;
	}
	if ((ret = start(out)))
		goto out;
	if (!EVP_EncryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, NULL, NULL) ||
	    !EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN, AESGCM_IV,
				 NULL) ||
	    !EVP_EncryptInit_ex(ctx, NULL, NULL, key, iv)) {
		ret = -EIO;
		goto out;
	}
	if ((ret = crypt_blocks(ctx, in, out, (guint64)st.st_size)))
		goto out;
	if (!EVP_EncryptFinal_ex(ctx, tag, &olen) ||
	    !EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, AESGCM_TAG, tag)) {
		ret = -EIO;
		goto out;
	}
	if ((ret = util_write_all(out, (const char *)tag, AESGCM_TAG)))
		goto out;
	*size = (guint64)st.st_size + AESGCM_TAG;
out:
	EVP_CIPHER_CTX_free(ctx);
	return ret;
}

int aesgcm_decrypt_fd(int in, int out, const guint8 key[AESGCM_KEY],
		      const guint8 *iv, gsize iv_len)
{
	EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
	guint8 tag[AESGCM_TAG], last[16];
	struct stat st;
	guint64 len;
	int ret, olen;

	if (!ctx)
		return -ENOMEM;
	if (fstat(in, &st) < 0) {
		ret = -errno;
		goto out;
	}
	if (st.st_size < AESGCM_TAG || (iv_len != 12 && iv_len != 16)) {
		ret = -EBADMSG;
		goto out;
	}
	len = (guint64)st.st_size - AESGCM_TAG;
	if ((ret = read_at(in, tag, AESGCM_TAG, (off_t)len)) ||
	    (ret = start(out)))
		goto out;
	if (!EVP_DecryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, NULL, NULL) ||
	    !EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN, (int)iv_len,
				 NULL) ||
	    !EVP_DecryptInit_ex(ctx, NULL, NULL, key, iv)) {
		ret = -EIO;
		goto out;
	}
	if ((ret = crypt_blocks(ctx, in, out, len)))
		goto out;
	if (!EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, AESGCM_TAG, tag) ||
	    EVP_DecryptFinal_ex(ctx, last, &olen) <= 0)
		ret = -EBADMSG;
out:
	if (ret == -EBADMSG)
		(void)start(out); /* nothing of it is to be read */
	EVP_CIPHER_CTX_free(ctx);
	return ret;
}

static int hexval(char c)
{
	return g_ascii_isxdigit(c) ? g_ascii_xdigit_value(c) : -1;
}

bool aesgcm_url_parse(const char *url, char **https, guint8 iv[16],
		      gsize *iv_len, guint8 key[AESGCM_KEY])
{
	const char *hash, *hex;
	gsize n;

	if (!g_str_has_prefix(url, "aesgcm://") || strpbrk(url, " \t\r\n"))
		return false;
	hash = strchr(url, '#');
	if (!hash || hash == url + 9 || !memchr(url + 9, '/', hash - url - 9))
		return false;
	hex = hash + 1;
	n = strlen(hex);
	if (n != 2 * (12 + AESGCM_KEY) && n != 2 * (16 + AESGCM_KEY))
		return false;
	*iv_len = n / 2 - AESGCM_KEY;
	for (gsize i = 0; i < n / 2; i++) {
		int hi = hexval(hex[2 * i]), lo = hexval(hex[2 * i + 1]);
		if (hi < 0 || lo < 0)
			return false;
		if (i < *iv_len)
			iv[i] = (guint8)(hi << 4 | lo);
		else
			key[i - *iv_len] = (guint8)(hi << 4 | lo);
	}
	*https = g_strdup_printf("https://%.*s", (int)(hash - url - 9),
				 url + 9);
	return true;
}

char *aesgcm_url(const char *https, const guint8 iv[AESGCM_IV],
		 const guint8 key[AESGCM_KEY])
{
	GString *s = g_string_new("aesgcm://");

	g_string_append(s, https + (g_str_has_prefix(https, "https://") ? 8
									  : 0));
	g_string_append_c(s, '#');
	for (guint i = 0; i < AESGCM_IV; i++)
		g_string_append_printf(s, "%02x", iv[i]);
	for (guint i = 0; i < AESGCM_KEY; i++)
		g_string_append_printf(s, "%02x", key[i]);
	return g_string_free(s, FALSE);
}
