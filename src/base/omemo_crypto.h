/* omemo_crypto.h - OpenSSL 3 as libomemo-c's crypto provider, and the
 * AES-128-GCM of OMEMO 0.3's payload.  Pure: no state of its own, safe
 * from any thread. */
#pragma once

#include <glib.h>
#include <signal_protocol.h>

/* Fill @p with our callbacks (random, HMAC-SHA256, SHA-512, AES-CBC
 * with PKCS#5 padding and AES-CTR, for 128, 192 or 256-bit keys). */
void omemo_crypto_provider(signal_crypto_provider *p);

/* @len cryptographically random bytes; 0 or -EIO. */
int omemo_crypto_random(guint8 *buf, gsize len);

/* AES-128-GCM with the 16-byte tag apart; @iv_len 12 or 16.  0, -EINVAL
 * for another IV length, -EBADMSG when decryption does not
 * authenticate, -EIO when OpenSSL fails. */
int omemo_crypto_gcm_encrypt(const guint8 *key, const guint8 *iv,
			     gsize iv_len, const guint8 *in, gsize len,
			     guint8 *out, guint8 tag[16]);
int omemo_crypto_gcm_decrypt(const guint8 *key, const guint8 *iv,
			     gsize iv_len, const guint8 *in, gsize len,
			     const guint8 tag[16], guint8 *out);
