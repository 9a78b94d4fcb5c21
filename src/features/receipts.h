/* receipts.h - delivery receipts and chat markers (XEP-0184, XEP-0333), as
 * contacts/JID/delivered and displayed show them (receipts.c). */
#pragma once

#include "xmpp/pool.h"

/* [any] "ID\n": the id of the last message of ours @jid's client said
 * arrived (delivered) or showed (displayed); "" for none yet. */
char *receipts_delivered_text(Account *a, const char *jid);
char *receipts_displayed_text(Account *a, const char *jid);
/* [any] "N\n": the records of @jid's conversation after its read
 * position; the total of all conversations (@jid unused). */
char *receipts_unread_text(Account *a, const char *jid);
char *receipts_unread_total_text(Account *a, const char *jid);
/* [any] "ID\n": the log.ids ID of the last record read; "" for none. */
char *receipts_read_text(Account *a, const char *jid);
/* [any] A line written to `read`: an ID of log.ids (up to its last
 * record), or "" or "all" (all of it).  0, -EINVAL, -ENOENT (no such
 * ID). */
int receipts_read(Pool *p, Account *a, const char *jid, const char *line);
/* [pool] Another client of ours read @jid's conversation (@room: the
 * room @jid) up to the message its archive calls @sid (XEP-0490): the
 * position moves there if that is later (no marker: that client sent its
 * own). */
void receipts_read_sid(Account *a, const char *jid, bool room,
		       const char *sid);
/* [any] The SID (log.ids) of the last record up to the read position of
 * @jid (@room: the room @jid) that has one, or NULL. */
char *receipts_read_sid_of(Account *a, const char *jid, bool room);
/* [any] The same as for a conversation, for rooms/ROOM/{unread,read}. */
char *receipts_room_unread_text(Account *a, const char *room);
char *receipts_room_read_text(Account *a, const char *room);
int receipts_room_read(Pool *p, Account *a, const char *room,
		       const char *line);
/* [any] We wrote to @jid, our records ending at @end of its log: all
 * before is read. */
void receipts_sent(Account *a, const char *jid, goffset end);
