/* aesgcm.h - files shared encrypted (XEP-0454, OMEMO Media Sharing): the
 * file is encrypted with AES-256-GCM under a fresh key, uploaded as
 * ciphertext with its 16-byte tag after it, and its link is
 * aesgcm://HOST/PATH#IVKEY (the https:// URL of the upload, with the IV
 * and the key in hex as its fragment), sent inside an encrypted message.
 * Pure: OpenSSL only, any thread (aesgcm.c). */
#pragma once

#include <glib.h>
#include <stdbool.h>

#define AESGCM_KEY 32
#define AESGCM_IV 12 /* what we make; 16 is read too (older clients) */
#define AESGCM_TAG 16

/* A fresh random key and IV: 0 or -EIO. */
int aesgcm_new_key(guint8 key[AESGCM_KEY], guint8 iv[AESGCM_IV]);
/* The @in file from its start, encrypted into @out (from its start,
 * truncated first): ciphertext, then the tag.  0 and *size (the bytes
 * of @out), or -errno (-EIO: OpenSSL failed). */
int aesgcm_encrypt_fd(int in, int out, const guint8 key[AESGCM_KEY],
		      const guint8 iv[AESGCM_IV], guint64 *size);
/* @in (ciphertext and tag, from its start) decrypted into @out: 0,
 * -EBADMSG when it does not authenticate (@out then holds nothing to
 * keep), -errno. */
int aesgcm_decrypt_fd(int in, int out, const guint8 key[AESGCM_KEY],
		      const guint8 *iv, gsize iv_len);
/* An aesgcm:// link: the https:// URL to fetch (new), the IV (12 or 16
 * bytes: *iv_len) and the key; false for anything else. */
bool aesgcm_url_parse(const char *url, char **https, guint8 iv[16],
		      gsize *iv_len, guint8 key[AESGCM_KEY]);
/* The aesgcm:// link of @https (an https:// URL without a fragment). */
char *aesgcm_url(const char *https, const guint8 iv[AESGCM_IV],
		 const guint8 key[AESGCM_KEY]);
