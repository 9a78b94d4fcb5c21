/* rooms.h - the account's group chats (XEP-0045): which rooms it wants to
 * be in (kept in a file, so they are rejoined after a reconnect and a
 * remount), its nick there, the subject and the occupants.  Plain data,
 * no FUSE, no XMPP; any thread, one lock inside. */
#pragma once

#include <glib.h>
#include <stdbool.h>

typedef struct Rooms Rooms;

Rooms *rooms_new(const char *path);
void rooms_free(Rooms *r);

/* Joined (or to be rejoined) rooms, sorted. */
GPtrArray *rooms_list(Rooms *r);
bool rooms_has(Rooms *r, const char *room);
/* In the room with @nick, or (NULL) out of it; written to the file. */
void rooms_set(Rooms *r, const char *room, const char *nick);
/* The own nick in @room, NULL when not in it (newly allocated). */
char *rooms_nick(Rooms *r, const char *room);
/* The server knows us by @nick in @room now (a nick change, or a nick it
 * chose); the rest of the room's state stays.  Written to the file. */
void rooms_rename(Rooms *r, const char *room, const char *nick);
/* The occupants' nicks in @room, sorted (free with g_ptr_array_unref). */
GPtrArray *rooms_occupant_nicks(Rooms *r, const char *room);
/* The subject of @room, NULL for none (newly allocated). */
char *rooms_subject(Rooms *r, const char *room);

/* An occupant came or changed (@role non-NULL) or left (NULL). */
void rooms_occupant(Rooms *r, const char *room, const char *nick,
		    const char *role, const char *affiliation,
		    const char *jid);
/* The stream went down: no room has us or its occupants any more. */
void rooms_clear_occupants(Rooms *r);
/* The room confirmed us (or we are out of it, and its occupants gone). */
void rooms_set_joined(Rooms *r, const char *room, bool joined);
bool rooms_joined(Rooms *r, const char *room);
void rooms_set_subject(Rooms *r, const char *room, const char *subject);

/* The texts of rooms/ROOM/{nick,subject,occupants}. */
char *rooms_nick_text(Rooms *r, const char *room);
char *rooms_subject_text(Rooms *r, const char *room);
char *rooms_occupants_text(Rooms *r, const char *room);
