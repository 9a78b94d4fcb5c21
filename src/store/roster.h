/* roster.h - the account's roster (RFC 6121), pending subscription
 * requests, and who is online: plain data, no FUSE, no XMPP.  Any thread:
 * one lock inside.  The roster and its version are cached in a file so a
 * reconnect can ask only for what changed (XEP-0237). */
#pragma once

#include <glib.h>
#include <stdbool.h>

typedef struct Roster Roster;

typedef struct {
	char *jid;          /* normalized bare JID */
	char *name;         /* NULL: none */
	char **groups;      /* NULL-terminated, never NULL */
	char *subscription; /* none|to|from|both */
	bool ask;           /* our subscription request waits */
} RosterItem;

RosterItem *roster_item_new(const char *jid);
void roster_item_free(RosterItem *it);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(RosterItem, roster_item_free)

/* Load the cache at @path (missing: empty roster, no version). */
Roster *roster_new(const char *path);
void roster_free(Roster *r);

/* The version of the cached roster, NULL if none (newly allocated). */
char *roster_version(Roster *r);
/* Write the cache if it changed since the last write (pushes only mark
 * it: a login can bring thousands). */
void roster_save(Roster *r);
/* A full roster from the server replaces the cache (takes @items). */
void roster_replace(Roster *r, GPtrArray *items, const char *ver);
/* A push: set (takes @it) or remove (subscription "remove"). */
void roster_set(Roster *r, RosterItem *it, const char *ver);
void roster_remove(Roster *r, const char *jid, const char *ver);
bool roster_has(Roster *r, const char *jid);
/* A copy of @jid's item, or NULL. */
RosterItem *roster_get(Roster *r, const char *jid);
GPtrArray *roster_jids(Roster *r);

/* Their subscription request waits for our answer. */
void roster_set_pending_in(Roster *r, const char *jid, bool pending);

/* Presence of a contact's resource; @show NULL means it went offline. */
void roster_presence(Roster *r, const char *jid, const char *resource,
		     const char *show, int priority, const char *status);
/* Everyone offline (our stream ended). */
void roster_presence_clear(Roster *r);

/* The texts of contacts/JID/{name,groups,subscription,presence}. */
char *roster_name_text(Roster *r, const char *jid);
char *roster_groups_text(Roster *r, const char *jid);
char *roster_subscription_text(Roster *r, const char *jid);
char *roster_presence_text(Roster *r, const char *jid);
