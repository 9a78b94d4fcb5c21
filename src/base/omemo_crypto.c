/* omemo_crypto.c - see omemo_crypto.h.
 *
 * libomemo-c leaves every primitive but Curve25519 to its caller.  What
 * the OMEMO 0.3 (session version 3) path asks of us: HMAC-SHA256 for the
 * KDF chains and the message MAC, AES-256-CBC with PKCS#5 padding for
 * the message body, random bytes for keys; SHA-512 only for displayable
 * fingerprints, AES-CTR only for version 2 sessions.  All of it is
 * OpenSSL 3's EVP API; the deprecated HMAC_CTX is not used.
 *
 * Callbacks return SG_ERR_* (negative) on failure: libsignal passes them
 * up unchanged.  A decryption that fails (bad padding) is reported as
 * SG_ERR_INVALID_MESSAGE, so libsignal tries the session's older states
 * as it does after a MAC mismatch. */
#include "base/omemo_crypto.h"

#include <errno.h>
#include <limits.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <stdbool.h>
#include <string.h>

int omemo_crypto_random(guint8 *buf, gsize len)
{
	if (len > INT_MAX || RAND_bytes(buf, (int)len) != 1)
		return -EIO;
	return 0;
}

static int random_cb(uint8_t *data, size_t len, void *user)
{
	return omemo_crypto_random(data, len) ? SG_ERR_UNKNOWN : 0;
}

/* ---- HMAC-SHA256 ---- */

static int hmac_init(void **hctx, const uint8_t *key, size_t key_len,
		     void *user)
{
	EVP_MAC *mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
	EVP_MAC_CTX *ctx = mac ? EVP_MAC_CTX_new(mac) : NULL;
	OSSL_PARAM params[] = {
		OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST,
						 (char *)"SHA256", 0),
		OSSL_PARAM_construct_end(),
	};

	EVP_MAC_free(mac); /* the context keeps its own reference */
	if (!ctx)
		return SG_ERR_NOMEM;
	if (!EVP_MAC_init(ctx, key, key_len, params)) {
		EVP_MAC_CTX_free(ctx);
		return SG_ERR_UNKNOWN;
	}
	*hctx = ctx;
	return 0;
}

static int hmac_update(void *hctx, const uint8_t *data, size_t len,
		       void *user)
{
	return EVP_MAC_update(hctx, data, len) ? 0 : SG_ERR_UNKNOWN;
}

static int hmac_final(void *hctx, signal_buffer **output, void *user)
{
	guint8 md[EVP_MAX_MD_SIZE];
	size_t len = 0;

	if (!EVP_MAC_final(hctx, md, &len, sizeof md))
		return SG_ERR_UNKNOWN;
	*output = signal_buffer_create(md, len);
	OPENSSL_cleanse(md, sizeof md);
	return *output ? 0 : SG_ERR_NOMEM;
}

static void hmac_cleanup(void *hctx, void *user)
{
	EVP_MAC_CTX_free(hctx);
}

/* ---- SHA-512 ---- */

static int sha512_init(void **dctx, void *user)
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();

	if (!ctx)
		return SG_ERR_NOMEM;
	if (!EVP_DigestInit_ex(ctx, EVP_sha512(), NULL)) {
		EVP_MD_CTX_free(ctx);
		return SG_ERR_UNKNOWN;
	}
	*dctx = ctx;
	return 0;
}

static int sha512_update(void *dctx, const uint8_t *data, size_t len,
			 void *user)
{
	return EVP_DigestUpdate(dctx, data, len) ? 0 : SG_ERR_UNKNOWN;
}

/* libsignal's contract: the context can be used again after final
 * (the fingerprint generator hashes in rounds). */
static int sha512_final(void *dctx, signal_buffer **output, void *user)
{
	guint8 md[EVP_MAX_MD_SIZE];
	unsigned int len = 0;

	if (!EVP_DigestFinal_ex(dctx, md, &len) ||
	    !EVP_DigestInit_ex(dctx, EVP_sha512(), NULL))
		return SG_ERR_UNKNOWN;
	*output = signal_buffer_create(md, len);
	return *output ? 0 : SG_ERR_NOMEM;
}

static void sha512_cleanup(void *dctx, void *user)
{
	EVP_MD_CTX_free(dctx);
}

/* ---- AES-CBC/PKCS#5 and AES-CTR ---- */

static const EVP_CIPHER *aes_cipher(int mode, size_t key_len)
{
	bool cbc = mode == SG_CIPHER_AES_CBC_PKCS5;

	if (mode != SG_CIPHER_AES_CBC_PKCS5 &&
	    mode != SG_CIPHER_AES_CTR_NOPADDING)
		return NULL;
	switch (key_len) {
	case 16:
		return cbc ? EVP_aes_128_cbc() : EVP_aes_128_ctr();
	case 24:
		return cbc ? EVP_aes_192_cbc() : EVP_aes_192_ctr();
	case 32:
		return cbc ? EVP_aes_256_cbc() : EVP_aes_256_ctr();
	default:
		return NULL;
	}
}

/* One call for both directions: EVP_CipherInit_ex's @enc picks.  CBC
 * pads (EVP's default is PKCS#7, which is PKCS#5 for 16-byte blocks);
 * CTR is a stream cipher and has nothing to pad. */
static int aes_run(signal_buffer **output, int mode, const uint8_t *key,
		   size_t key_len, const uint8_t *iv, size_t iv_len,
		   const uint8_t *in, size_t len, int enc)
{
	const EVP_CIPHER *cipher = aes_cipher(mode, key_len);
	EVP_CIPHER_CTX *ctx = NULL;
	guint8 *out = NULL;
	int n1 = 0, n2 = 0, ret = SG_ERR_UNKNOWN;

	if (!cipher || iv_len != 16 || len > INT_MAX - 32)
		return SG_ERR_INVAL;
	ctx = EVP_CIPHER_CTX_new();
	out = g_malloc(len + 32);
	if (!ctx || !EVP_CipherInit_ex(ctx, cipher, NULL, key, iv, enc))
		goto out;
	if (len && !EVP_CipherUpdate(ctx, out, &n1, in, (int)len))
		goto out;
	if (!EVP_CipherFinal_ex(ctx, out + n1, &n2)) {
		ret = enc ? SG_ERR_UNKNOWN : SG_ERR_INVALID_MESSAGE;
		goto out;
	}
	*output = signal_buffer_create(out, (size_t)n1 + (size_t)n2);
	ret = *output ? 0 : SG_ERR_NOMEM;
out:
	OPENSSL_cleanse(out, len + 32);
	g_free(out);
	EVP_CIPHER_CTX_free(ctx);
	return ret;
}

static int aes_encrypt(signal_buffer **output, int mode, const uint8_t *key,
		       size_t key_len, const uint8_t *iv, size_t iv_len,
		       const uint8_t *in, size_t len, void *user)
{
	return aes_run(output, mode, key, key_len, iv, iv_len, in, len, 1);
}

static int aes_decrypt(signal_buffer **output, int mode, const uint8_t *key,
		       size_t key_len, const uint8_t *iv, size_t iv_len,
		       const uint8_t *in, size_t len, void *user)
{
	return aes_run(output, mode, key, key_len, iv, iv_len, in, len, 0);
}

void omemo_crypto_provider(signal_crypto_provider *p)
{
	*p = (signal_crypto_provider){
		.random_func = random_cb,
		.hmac_sha256_init_func = hmac_init,
		.hmac_sha256_update_func = hmac_update,
		.hmac_sha256_final_func = hmac_final,
		.hmac_sha256_cleanup_func = hmac_cleanup,
		.sha512_digest_init_func = sha512_init,
		.sha512_digest_update_func = sha512_update,
		.sha512_digest_final_func = sha512_final,
		.sha512_digest_cleanup_func = sha512_cleanup,
		.encrypt_func = aes_encrypt,
		.decrypt_func = aes_decrypt,
	};
}

/* ---- AES-128-GCM ---- */

static int gcm_init(EVP_CIPHER_CTX *ctx, const guint8 *key, const guint8 *iv,
		    gsize iv_len, int enc)
{
	return EVP_CipherInit_ex(ctx, EVP_aes_128_gcm(), NULL, NULL, NULL,
				 enc) &&
	       EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN, (int)iv_len,
				   NULL) &&
	       EVP_CipherInit_ex(ctx, NULL, NULL, key, iv, enc);
}

int omemo_crypto_gcm_encrypt(const guint8 *key, const guint8 *iv,
			     gsize iv_len, const guint8 *in, gsize len,
			     guint8 *out, guint8 tag[16])
{
	EVP_CIPHER_CTX *ctx;
	guint8 fin[16]; /* GCM is a stream mode: final writes nothing */
	int n = 0, ret = -EIO;

	if ((iv_len != 12 && iv_len != 16) || len > INT_MAX)
		return -EINVAL;
	ctx = EVP_CIPHER_CTX_new();
	if (!ctx || !gcm_init(ctx, key, iv, iv_len, 1))
		goto out;
	if (len && !EVP_EncryptUpdate(ctx, out, &n, in, (int)len))
		goto out;
	if (!EVP_EncryptFinal_ex(ctx, fin, &n) ||
	    !EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, 16, tag))
		goto out;
	ret = 0;
out:
	EVP_CIPHER_CTX_free(ctx);
	return ret;
}

int omemo_crypto_gcm_decrypt(const guint8 *key, const guint8 *iv,
			     gsize iv_len, const guint8 *in, gsize len,
			     const guint8 tag[16], guint8 *out)
{
	EVP_CIPHER_CTX *ctx;
	guint8 fin[16];
	int n = 0, ret = -EIO;

	if ((iv_len != 12 && iv_len != 16) || len > INT_MAX)
		return -EINVAL;
	ctx = EVP_CIPHER_CTX_new();
	if (!ctx || !gcm_init(ctx, key, iv, iv_len, 0))
		goto out;
	if (len && !EVP_DecryptUpdate(ctx, out, &n, in, (int)len))
		goto out;
	if (!EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, 16, (void *)tag))
		goto out;
	if (EVP_DecryptFinal_ex(ctx, fin, &n) <= 0) {
		/* what was written does not authenticate: do not leave it */
		if (len)
			OPENSSL_cleanse(out, len);
		ret = -EBADMSG;
		goto out;
	}
	ret = 0;
out:
	EVP_CIPHER_CTX_free(ctx);
	return ret;
}
