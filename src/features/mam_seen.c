/* mam_seen.c - which messages of our archive (XEP-0313) are in the
 * logs, kept in DATA/JID/mam: "last ID", the position of the catch-up
 * (mam.c), or "last *" (from the start of the archive); then "seen ID"
 * for each message logged since, live (chat.c, muc_private.c, carbons.c)
 * or from the archive, so that no catch-up logs it twice.  And what a
 * message that could not be logged does to the position.
 *
 * Below the conversations and the catch-up, it calls neither: what the
 * catch-up does when a live message is logged (mam_live_logged) is a
 * hook that featureset.c sets.  Pool thread only (account_int.h). */
#include "features/mam_int.h"

#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>

#include "base/jid.h"
#include "base/log.h"
#include "base/util.h"
#include "store/fdcache.h"

/* set by featureset.c before the pool runs, never after */
static MamLiveHook live_hook;

void mam_seen_on_live(MamLiveHook fn)
{
	live_hook = fn;
}

static void mam_seen_load(Account *a, const char *dir)
{
	MamSeen *ms = mam_seen_of(a);
	g_autofree char *text = NULL;
	g_auto(GStrv) lines = NULL;
	struct stat st;

	ms->path = g_build_filename(dir, "mam", NULL);
	ms->file = fdfile_new(ms->path, O_WRONLY | O_APPEND | O_CREAT, 0600);
	ms->seen = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
	if (!g_file_get_contents(ms->path, &text, NULL, NULL))
		return;
	if (stat(ms->path, &st) == 0)
		ms->stamp = st.st_mtime;
	lines = g_strsplit(text, "\n", -1);
	for (char **l = lines; *l; l++) {
		if (g_str_has_prefix(*l, "last ") &&
		    (mam_id_ok(*l + 5) || !strcmp(*l + 5, MAM_FROM_START))) {
			g_free(ms->last);
			ms->last = g_strdup(*l + 5);
		} else if (g_str_has_prefix(*l, "seen ") && mam_id_ok(*l + 5)) {
			g_hash_table_add(ms->seen, g_strdup(*l + 5));
		}
	}
}

static void mam_seen_free(Account *a)
{
	MamSeen *ms = mam_seen_of(a);

	g_clear_pointer(&ms->file, fdfile_free);
	g_clear_pointer(&ms->path, g_free);
	g_clear_pointer(&ms->last, g_free);
	g_clear_pointer(&ms->seen, g_hash_table_unref);
}

void mam_save(Account *a)
{
	MamSeen *ms = mam_seen_of(a);
	GString *out = g_string_new(NULL);
	GHashTableIter it;
	gpointer k;

	if (ms->last)
		g_string_append_printf(out, "last %s\n", ms->last);
	g_hash_table_iter_init(&it, ms->seen);
	while (g_hash_table_iter_next(&it, &k, NULL))
		g_string_append_printf(out, "seen %s\n", (char *)k);
	if (!g_file_set_contents_full(ms->path, out->str, out->len,
				      G_FILE_SET_CONTENTS_CONSISTENT, 0600,
				      NULL))
		xfs_warn("%s: cannot write %s", acct_cfg(a)->jid, ms->path);
	ms->stamp = g_get_real_time() / G_USEC_PER_SEC;
	g_string_free(out, TRUE);
	/* the file was renamed over: later appends go to the new one */
	fdfile_reopen(ms->file);
}

void mam_note_logged(Account *a, const char *id)
{
	MamSeen *ms = mam_seen_of(a);
	g_autofree char *line = NULL;
	int fd, ret = 0;

	if (!mam_id_ok(id) || !g_hash_table_add(ms->seen, g_strdup(id)))
		return;
	line = g_strdup_printf("seen %s\n", id);
	if ((fd = fdfile_get(ms->file)) >= 0) {
		ret = util_write_all(fd, line, strlen(line));
		fdfile_put(ms->file);
	}
	if (fd < 0 || ret < 0)
		xfs_warn("%s: cannot write %s", acct_cfg(a)->jid, ms->path);
	ms->stamp = g_get_real_time() / G_USEC_PER_SEC;
}

const char *mam_stanza_id(Account *a, xmpp_stanza_t *msg)
{
	for (xmpp_stanza_t *c = xmpp_stanza_get_children(msg); c;
	     c = xmpp_stanza_get_next(c)) {
		const char *by;
		g_autofree char *bare = NULL;
		if (!xmpp_stanza_is_tag(c) ||
		    strcmp(xmpp_stanza_get_name(c), "stanza-id") ||
		    g_strcmp0(xmpp_stanza_get_ns(c), NS_SID))
			continue;
		by = xmpp_stanza_get_attribute(c, "by");
		bare = by ? jid_normalize_bare(by, NULL) : NULL;
		if (bare && !strcmp(bare, acct_cfg(a)->jid))
			return xmpp_stanza_get_attribute(c, "id");
	}
	return NULL;
}

bool mam_seen_live(Account *a, xmpp_stanza_t *msg)
{
	MamSeen *ms = mam_seen_of(a);
	const char *id = mam_stanza_id(a, msg);

	return id && g_hash_table_contains(ms->seen, id);
}

void mam_logged_live(Account *a, xmpp_stanza_t *msg)
{
	const char *id = mam_stanza_id(a, msg);

	if (!id)
		return;
	mam_note_logged(a, id);
	if (live_hook)
		live_hook(a, id);
}

/* A message could not be logged: the catch-up running now must not move
 * the position past it; one runs again every few seconds (mam.c) until all is
 * logged. */
void mam_log_failed(Account *a, const char *where, int err)
{
	MamSeen *ms = mam_seen_of(a);

	if (!a->log_gap_since)
		a->log_gap_since = g_get_real_time() / G_USEC_PER_SEC;
	acct_log_note(a, where, err);
	ms->incomplete = true;
	if (!ms->last || ms->probe)
		ms->gap_by_time = true;
}

/* The archive ids in the logs, and where the catch-up stands: below the
 * other features of the archive, which read it (mam_seen_of). */
const Feature archive_ids_feature = {
	.name = "the archive's ids in the logs (mam_seen.c)",
	.state_size = sizeof(MamSeen),
	.attach = mam_seen_load,
	.detach = mam_seen_free,
};
