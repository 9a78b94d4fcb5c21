/* roomids.h - the ids a room gave the messages in its log (XEP-0359
 * <stanza-id by=ROOM/>, which is also their id in the room's archive),
 * so that a message the room sends again (its history at a join, its
 * archive after an absence) is written once, whatever second its copy is
 * stamped with.  No XMPP, no FUSE; the account layer's (pool thread).
 *
 * On disk: DATA/JID/rooms/ROOM/ids, one id per line, appended as records
 * are written; the newest ROOMIDS_KEEP are remembered. */
#pragma once

#include <glib.h>
#include <stdbool.h>

#define ROOMIDS_KEEP 2000

typedef struct RoomIds RoomIds;

/* The ids in @path (the file need not exist). */
RoomIds *roomids_open(const char *path);
void roomids_free(RoomIds *r);
/* Whether any id was ever written: until then a caller must tell copies
 * apart some other way (a log from before ids were kept). */
bool roomids_any(RoomIds *r);
bool roomids_has(RoomIds *r, const char *id);
/* Remember @id (its record is in the log); 0 or -errno when the file
 * could not take it (it is remembered all the same). */
int roomids_add(RoomIds *r, const char *id);
