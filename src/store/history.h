/* history.h - append-only conversation logs on disk, and the readers that
 * wait for them to grow.  No FUSE, no XMPP.  Any thread: each log has its
 * own lock, taken only inside history.c.
 *
 * A `stream` reader is just a cursor into the log file: what it has not
 * read yet stays on disk, so a reader that never reads costs xmppfs no
 * memory, and sees every record when it comes back. */
#pragma once

#include <glib.h>
#include <stdbool.h>

typedef struct Hist Hist;
typedef struct HistSet HistSet;

/* Someone waiting for a log to grow past a cursor.  wake() runs once, in
 * the appending thread, after every lock of history.c is released. */
typedef struct HistWaiter HistWaiter;
struct HistWaiter {
	void (*wake)(HistWaiter *w);
	bool queued; /* protected by the log's lock */
};

/* The logs of one account under @dir (DIR/JID/log); the existing ones are
 * found on disk.  Creates @dir. */
HistSet *hist_set_new(const char *dir, GError **err);
void hist_set_free(HistSet *s);
/* The log of @name (a normalized bare JID); with @create it is made when
 * missing, else NULL for none.  Borrowed: lives as long as the set. */
Hist *hist_set_get(HistSet *s, const char *name, bool create, GError **err);
/* Forget the log of @name: its folder DIR/NAME moves to the set's trash,
 * DIR/../trash/BASENAME(DIR)/NAME.TIME (*@moved_to, to free), and a log
 * of that name made afterwards starts empty.  A Hist of it that someone
 * holds stays valid until the set is freed: it reads the moved file, what
 * is appended through it lands there (nothing is lost), and its waiters
 * are woken to find it gone (hist_gone).  0, -ENOENT when @name has no
 * log, or -errno with @err set. */
int hist_set_forget(HistSet *s, const char *name, char **moved_to,
		    GError **err);
/* Names that have a log, sorted (free with g_ptr_array_unref). */
GPtrArray *hist_set_names(HistSet *s);

/* One log on its own: DIR/NAME/log, made when missing. */
Hist *hist_open(const char *dir, const char *name, GError **err);
void hist_close(Hist *h);

/* Append whole records; 0 or -errno.  Wakes the waiters. */
int hist_append(Hist *h, const char *data, gsize len);
/* The same, with their lines of the log's companion log.ids (a log of a
 * set only): @ids has one line per record of @data, and both are
 * written or neither.  *@at (unless NULL): where in the log they went. */
int hist_append_ids(Hist *h, const char *data, gsize len, const char *ids,
		    gsize ids_len, goffset *at);
/* log.ids: one line per record of the log, whatever wrote the log before
 * (records without ids lines get "-" ones at the first use in a mount). */
goffset hist_ids_size(Hist *h);
gssize hist_ids_pread(Hist *h, void *buf, gsize len, goffset off);
/* The lines of the log (@ids false) or of log.ids, read whole, without
 * their LFs (free with g_ptr_array_unref), or NULL on an error: for the
 * rare lookups of one message (a correction's original, a reply's quote),
 * not for what every record does. */
GPtrArray *hist_lines(Hist *h, bool ids);
goffset hist_size(Hist *h);
/* True once its set forgot it (hist_set_forget). */
bool hist_gone(Hist *h);
/* Unix seconds of the last change. */
gint64 hist_mtime(Hist *h);
gssize hist_pread(Hist *h, void *buf, gsize len, goffset off);

/* Call @fn(@data, old size, new size) after each append, from the
 * appending thread with no lock of history.c held (one observer a log;
 * fs/handle.c drops the kernel's cached end of the file). */
void hist_observe(Hist *h, void (*fn)(void *data, goffset from, goffset to),
		  void *data);

/* Wait for the log to grow past @cursor.  Returns true, and does not
 * register @w, when it already has or is gone; otherwise @w is woken
 * once. */
bool hist_wait(Hist *h, HistWaiter *w, goffset cursor);
/* Cancel a wait; true when @w was still registered (it will not wake). */
bool hist_unwait(Hist *h, HistWaiter *w);
