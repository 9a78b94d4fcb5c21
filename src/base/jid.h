/* jid.h - JIDs as RFC 7622 defines them: parse, validate, normalize, and
 * map to file names.  Pure: no I/O, no globals, safe from any thread. */
#pragma once

#include <glib.h>
#include <stdbool.h>

#define JID_ERROR (jid_error_quark())
GQuark jid_error_quark(void);

typedef enum {
	JID_ERROR_EMPTY,     /* a part is empty, or the whole string is */
	JID_ERROR_TOO_LONG,  /* a part is longer than 1023 bytes */
	JID_ERROR_UTF8,      /* not valid UTF-8, or has control characters */
	JID_ERROR_LOCALPART, /* forbidden character in the localpart */
	JID_ERROR_DOMAIN,    /* not a DNS name or IP literal */
	JID_ERROR_RESOURCE,  /* forbidden character in the resourcepart */
	JID_ERROR_NOT_BARE,  /* a resource where only a bare JID is allowed */
} JidError;

#define JID_PART_MAX 1023

/* A normalized JID.  Parts are NUL-terminated UTF-8; local and resource
 * are NULL when absent, domain never is. */
typedef struct {
	char *local;
	char *domain;
	char *resource;
} Jid;

/* Build from parts (local and resource may be NULL).  Validates and
 * normalizes each part; NULL with @err set when any part is invalid. */
Jid *jid_new(const char *local, const char *domain, const char *resource,
	     GError **err);
/* Parse "[local@]domain[/resource]". */
Jid *jid_parse(const char *str, GError **err);
void jid_free(Jid *jid);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(Jid, jid_free)

/* "local@domain" or "domain"; newly allocated. */
char *jid_bare(const Jid *jid);
/* "local@domain/resource" (or the bare form without resource). */
char *jid_full(const Jid *jid);

/* Parse @str, require it to be bare, and return its normalized form;
 * NULL with @err (JID_ERROR_NOT_BARE for a resource) otherwise. */
char *jid_normalize_bare(const char *str, GError **err);

/* A resourcepart (a resource, or a MUC nick) validated and normalized as
 * jid_new does it; NULL with @err otherwise. */
char *jid_normalize_resource(const char *str, GError **err);

/* A resource or nick as a file name: '/' becomes U+2215 (DIVISION SLASH),
 * and "." and ".." become U+2024 (ONE DOT LEADER) runs so no name can
 * walk the tree.  NULL for an empty string. */
char *jid_to_filename(const char *part);
/* The inverse of jid_to_filename. */
char *jid_from_filename(const char *name);
