/* node.c - what a node of the tree is as a file: its mode, the text it
 * shows, what a write of a value or a line to it asks (FileOps), its log,
 * its attributes, and which names under contacts/ and private/ are
 * directories.  The bottom of src/fs: it calls no other file of it.
 *
 * Small state files (`connection`, `status`) are opened with direct_io
 * (handle.c): each open takes a snapshot of the text, getattr reports the
 * size of the current text, and the kernel caches nothing, so `cat`
 * always sees one consistent version and never a stale or zero size. */
#include "fs/fs_int.h"

#include <errno.h>
#include <string.h>

#include "base/jid.h"
#include "base/text.h"
#include "features/block.h"
#include "features/chat.h"
#include "features/chatstates.h"
#include "features/mds.h"
#include "features/contacts.h"
#include "features/muc.h"
#include "features/omemo.h"
#include "features/files.h"
#include "features/profile.h"
#include "features/receipts.h"
#include "features/vcard.h"

static HistSet *hists_of(const TreeNode *n)
{
	if (node_in_private(n))
		return muc_private_hists(n->acct, node_private_room(n));
	return node_in_room(n) ? muc_room_hists(n->acct) : acct_hists(n->acct);
}

/* The log a file of @n reads (made with @create), or NULL. */
Hist *node_hist(const TreeNode *n, bool create, GError **err)
{
	HistSet *s = hists_of(n);

	if (!s) {
		g_set_error(err, G_FILE_ERROR, G_FILE_ERROR_IO,
			    "no log directory for %s", n->jid);
		return NULL;
	}
	return hist_set_get(s, n->jid, create, err);
}

/* The log of a conversation's, a room's or a private conversation's
 * directory, NULL for none (yet). */
static Hist *dir_hist(const TreeNode *n)
{
	HistSet *s = NULL;

	if (n->kind == NODE_CONTACT)
		s = acct_hists(n->acct);
	else if (n->kind == NODE_ROOM)
		s = muc_room_hists(n->acct);
	else if (n->kind == NODE_PRIVATE)
		s = muc_private_hists(n->acct, n->parent->parent->jid);
	return s ? hist_set_get(s, n->jid, false, NULL) : NULL;
}

static int status_line(Xfs *x, Account *a, const char *line)
{
	AcctShow show;
	g_autofree char *text = NULL;
	int r = acct_parse_status(line, &show, &text);

	if (r)
		return r;
	/* a reconnect takes what the config says now; a config that does
	 * not load is reported (log, events) and the reconnect goes on with
	 * the settings in use: a broken file must not stop a user from
	 * getting back online */
	if (show == ACCT_SHOW_RECONNECT)
		pool_reload(x->pool, a);
	return pool_set_show(x->pool, a, show, text);
}

static char *connection_text(Account *a, const char *jid)
{
	return acct_connection_text(a);
}

static char *status_text(Account *a, const char *jid)
{
	return acct_status_text(a);
}

static char *presence_text(Account *a, const char *jid)
{
	return roster_presence_text(acct_roster(a), jid);
}

static char *name_text(Account *a, const char *jid)
{
	return roster_name_text(acct_roster(a), jid);
}

static char *groups_text(Account *a, const char *jid)
{
	return roster_groups_text(acct_roster(a), jid);
}

static char *subscription_text(Account *a, const char *jid)
{
	return roster_subscription_text(acct_roster(a), jid);
}

static int name_value(Xfs *x, Account *a, const char *jid, const char *v)
{
	RosterChange c = {.jid = (char *)jid, .set_name = true};

	if (strchr(v, '\n') || !text_is_clean(v, strlen(v), false))
		return strchr(v, '\n') ? -EINVAL : -EILSEQ;
	c.name = *v ? (char *)v : NULL;
	return contacts_change(x->pool, a, &c);
}

static int groups_value(Xfs *x, Account *a, const char *jid, const char *v)
{
	g_auto(GStrv) groups = *v ? g_strsplit(v, "\n", -1) : g_new0(char *, 1);
	RosterChange c = {.jid = (char *)jid, .set_groups = true};

	for (char **g = groups; *g; g++) {
		if (!**g || strlen(*g) > 1023)
			return -EINVAL;
		if (!text_is_clean(*g, strlen(*g), false))
			return -EILSEQ;
	}
	c.groups = groups;
	return contacts_change(x->pool, a, &c);
}

static int subscription_value(Xfs *x, Account *a, const char *jid,
			      const char *v)
{
	return contacts_subscription(x->pool, a, jid, v);
}

static char *blocked_text(Account *a, const char *jid)
{
	return block_text(a, jid);
}

static char *blocklist_text(Account *a, const char *jid)
{
	return block_list_text(a);
}

/* `correct`, `retract`, `react`, `reply`: one message of ours about an
 * earlier one each write (chat.c); accepted as `send` accepts. */
static int correct_value(Xfs *x, Account *a, const char *jid, const char *v)
{
	return chat_correct(a, jid, v);
}

static int retract_value(Xfs *x, Account *a, const char *jid, const char *v)
{
	return chat_retract(a, jid, v);
}

static int react_value(Xfs *x, Account *a, const char *jid, const char *v)
{
	return chat_react(a, jid, v);
}

static int reply_value(Xfs *x, Account *a, const char *jid, const char *v)
{
	return chat_reply(a, jid, v);
}

/* `chatstate`: ours, sent when the config allows (chatstates.c). */
static int chatstate_value(Xfs *x, Account *a, const char *jid,
			   const char *v)
{
	return chatstates_say(x->pool, a, jid, v);
}

static int room_correct_value(Xfs *x, Account *a, const char *room,
			      const char *v)
{
	return muc_about(a, room, "correction", v);
}

static int room_retract_value(Xfs *x, Account *a, const char *room,
			      const char *v)
{
	return muc_about(a, room, "retraction", v);
}

static int room_react_value(Xfs *x, Account *a, const char *room,
			    const char *v)
{
	return muc_about(a, room, "reaction", v);
}

static int room_reply_value(Xfs *x, Account *a, const char *room,
			    const char *v)
{
	return muc_about(a, room, "reply", v);
}

/* `moderate`: "ID[<TAB>REASON]", someone's message retracted by us as a
 * moderator; returns when the room answered. */
static int moderate_value(Xfs *x, Account *a, const char *room,
			  const char *v)
{
	return muc_moderate(x->pool, a, room, v);
}

/* `read`: an ID of log.ids, or nothing or "all" for all of it; the write
 * returns once the position moved (and a displayed marker went out). */
static int read_value(Xfs *x, Account *a, const char *jid, const char *v)
{
	int ret = receipts_read(x->pool, a, jid, v);

	/* and the account's other clients learn it (XEP-0490) */
	return ret ? ret : mds_publish(x->pool, a, jid, false);
}

static int room_read_value(Xfs *x, Account *a, const char *room,
			   const char *v)
{
	int ret = receipts_room_read(x->pool, a, room, v);

	return ret ? ret : mds_publish(x->pool, a, room, true);
}

/* `blocked`: yes or no; the write returns once the server changed its
 * blocklist. */
static int blocked_value(Xfs *x, Account *a, const char *jid, const char *v)
{
	if (strcmp(v, "yes") && strcmp(v, "no"))
		return -EINVAL;
	return block_set(x->pool, a, jid, !strcmp(v, "yes"));
}

static char *nick_text(Account *a, const char *room)
{
	return rooms_nick_text(muc_rooms(a), room);
}

static char *subject_text(Account *a, const char *room)
{
	return rooms_subject_text(muc_rooms(a), room);
}

static char *occupants_text(Account *a, const char *room)
{
	return rooms_occupants_text(muc_rooms(a), room);
}

/* `nick`: the new nick; the write returns once the room took it. */
static int nick_value(Xfs *x, Account *a, const char *room, const char *v)
{
	g_autofree char *nick = NULL;

	if (memchr(v, '\n', strlen(v)) || !*v)
		return -EINVAL;
	if (!text_is_clean(v, strlen(v), false))
		return -EILSEQ;
	if (!(nick = jid_normalize_resource(v, NULL)))
		return -EINVAL;
	return muc_request(x->pool, a, room, ACCT_ROOM_NICK, nick);
}

/* `subject`: one line, empty to clear; EACCES when the room says no. */
static int subject_value(Xfs *x, Account *a, const char *room, const char *v)
{
	if (strchr(v, '\n'))
		return -EINVAL;
	if (!text_is_clean(v, strlen(v), false))
		return -EILSEQ;
	return muc_request(x->pool, a, room, ACCT_ROOM_SUBJECT, v);
}

/* A line of `invite` ("JID[ REASON]", done once sent), `kick`
 * ("NICK[<TAB>REASON]") or `ban` ("JID[ REASON]"; both done when the room
 * answered). */
static int room_line(Xfs *x, Account *a, const char *room, const char *v,
		       AcctRoomOp op)
{
	if (!*v || strlen(v) > 4096)
		return -EINVAL;
	if (!text_is_clean(v, strlen(v), false))
		return -EILSEQ;
	return muc_request(x->pool, a, room, op, v);
}

static int invite_value(Xfs *x, Account *a, const char *room, const char *v)
{
	return room_line(x, a, room, v, ACCT_ROOM_INVITE);
}

static int kick_value(Xfs *x, Account *a, const char *room, const char *v)
{
	return room_line(x, a, room, v, ACCT_ROOM_KICK);
}

static int ban_value(Xfs *x, Account *a, const char *room, const char *v)
{
	return room_line(x, a, room, v, ACCT_ROOM_BAN);
}

static char *own_nick_text(Account *a, const char *jid)
{
	return profile_nick_text(a, NULL);
}

static int own_nick_value(Xfs *x, Account *a, const char *jid, const char *v)
{
	return profile_set_nick(x->pool, a, v);
}

static char *contact_nick_text(Account *a, const char *jid)
{
	return profile_nick_text(a, jid);
}

static char *own_vcard_text(Account *a, const char *jid)
{
	return vcard_own_text(a);
}

static int own_vcard_value(Xfs *x, Account *a, const char *jid,
			   const char *v)
{
	return vcard_set_own(x->pool, a, v);
}

static char *omemo_text(Account *a, const char *jid)
{
	return omemo_devices_text(a, acct_cfg(a)->jid);
}

static int omemo_value(Xfs *x, Account *a, const char *jid, const char *v)
{
	return omemo_devices_write(a, acct_cfg(a)->jid, v);
}

static char *devices_text(Account *a, const char *jid)
{
	return omemo_devices_text(a, jid);
}

static int devices_value(Xfs *x, Account *a, const char *jid, const char *v)
{
	return omemo_devices_write(a, jid, v);
}

static char *encryption_text(Account *a, const char *jid)
{
	return omemo_mode_text(a, jid);
}

static int encryption_value(Xfs *x, Account *a, const char *jid,
			    const char *v)
{
	g_autofree char *w = g_strstrip(g_strdup(v));

	return omemo_set_mode(a, jid, w);
}

/* The files one writes to (send, post, invite, kick, ban) read as empty,
 * so that cp -r, rsync -a and tar, which read every file they copy, copy
 * them as empty files rather than fail on them. */
static const FileOps file_ops[] = {
	{NODE_NICK, 0600, nick_text, NULL, nick_value},
	{NODE_SUBJECT, 0600, subject_text, NULL, subject_value},
	{NODE_OCCUPANTS, 0400, occupants_text, NULL, NULL},
	{NODE_INVITE, 0600, NULL, NULL, invite_value},
	{NODE_KICK, 0600, NULL, NULL, kick_value},
	{NODE_BAN, 0600, NULL, NULL, ban_value},
	{NODE_CONNECTION, 0400, connection_text, NULL, NULL},
	{NODE_STATUS, 0600, status_text, status_line, NULL},
	{NODE_SEND, 0600, NULL, NULL, NULL},
	{NODE_POST, 0600, NULL, NULL, NULL},
	{NODE_LOG, 0400, NULL, NULL, NULL},
	{NODE_IDS, 0400, NULL, NULL, NULL},
	{NODE_STREAM, 0400, NULL, NULL, NULL},
	{NODE_EVENTS, 0400, NULL, NULL, NULL},
	{NODE_EVENTLOG, 0400, NULL, NULL, NULL},
	{NODE_RAW, 0600, NULL, NULL, NULL},
	{NODE_IQ, 0600, NULL, NULL, NULL},
	{NODE_PRESENCE, 0400, presence_text, NULL, NULL},
	{NODE_NAME, 0600, name_text, NULL, name_value},
	{NODE_GROUPS, 0600, groups_text, NULL, groups_value},
	{NODE_SUBSCRIPTION, 0600, subscription_text, NULL, subscription_value},
	{NODE_BLOCKED, 0600, blocked_text, NULL, blocked_value},
	{NODE_BLOCKLIST, 0400, blocklist_text, NULL, NULL},
	{NODE_DELIVERED, 0400, receipts_delivered_text, NULL, NULL},
	{NODE_DISPLAYED, 0400, receipts_displayed_text, NULL, NULL},
	{NODE_READ, 0600, receipts_read_text, NULL, read_value},
	{NODE_UNREAD, 0400, receipts_unread_text, NULL, NULL},
	{NODE_UNREAD_ALL, 0400, receipts_unread_total_text, NULL, NULL},
	{NODE_CORRECT, 0600, NULL, NULL, correct_value},
	{NODE_RETRACT, 0600, NULL, NULL, retract_value},
	{NODE_REACT, 0600, NULL, NULL, react_value},
	{NODE_REPLY, 0600, NULL, NULL, reply_value},
	{NODE_CHATSTATE, 0600, chatstates_text, NULL, chatstate_value},
	{NODE_ROOM_CORRECT, 0600, NULL, NULL, room_correct_value},
	{NODE_ROOM_RETRACT, 0600, NULL, NULL, room_retract_value},
	{NODE_ROOM_REACT, 0600, NULL, NULL, room_react_value},
	{NODE_ROOM_REPLY, 0600, NULL, NULL, room_reply_value},
	{NODE_MODERATE, 0600, NULL, NULL, moderate_value},
	{NODE_ROOM_READ, 0600, receipts_room_read_text, NULL, room_read_value},
	{NODE_ROOM_UNREAD, 0400, receipts_room_unread_text, NULL, NULL},
	{NODE_OWN_NICK, 0600, own_nick_text, NULL, own_nick_value},
	{NODE_CONTACT_NICK, 0400, contact_nick_text, NULL, NULL},
	/* (their bytes: node_avatar_path) */
	{NODE_OWN_AVATAR, 0600, NULL, NULL, NULL},
	{NODE_AVATAR, 0400, NULL, NULL, NULL},
	{NODE_UPLOAD, 0600, NULL, NULL, NULL},
	{NODE_FILE, 0400, NULL, NULL, NULL},
	{NODE_OWN_VCARD, 0600, own_vcard_text, NULL, own_vcard_value},
	/* (its text is asked of the contact's server at open: handle.c) */
	{NODE_CONTACT_VCARD, 0400, NULL, NULL, NULL},
	{NODE_OMEMO, 0600, omemo_text, NULL, omemo_value},
	{NODE_DEVICES, 0600, devices_text, NULL, devices_value},
	{NODE_ENCRYPTION, 0600, encryption_text, NULL, encryption_value},
};

static bool is_avatar(const TreeNode *n)
{
	return n->kind == NODE_AVATAR || n->kind == NODE_OWN_AVATAR;
}

/* (profile.c keeps one file per JID, the others' types removed first:
 * the node's own name is the one to look for, not all four) */
char *node_avatar_path(const TreeNode *n)
{
	char *path = profile_avatar_path(n->acct, n->jid,
					 strchr(n->name, '.') + 1);

	if (!g_file_test(path, G_FILE_TEST_IS_REGULAR))
		g_clear_pointer(&path, g_free);
	return path;
}

char *node_file_path(const TreeNode *n)
{
	return files_path(n->acct, n->jid, n->name);
}

TreeNode *node_file(Xfs *x, TreeNode *files, const char *name)
{
	g_autofree char *path = files_path(files->acct, files->jid, name);

	if (!path || !g_file_test(path, G_FILE_TEST_IS_REGULAR))
		return NULL;
	return tree_file(x->tree, files, name);
}

bool node_visible(const TreeNode *n)
{
	g_autofree char *path = NULL;

	if (n->kind == NODE_UPLOAD)
		return g_atomic_int_get(&n->busy) > 0;
	if (n->kind == NODE_FILE) {
		path = node_file_path(n);
		return path && g_file_test(path, G_FILE_TEST_IS_REGULAR);
	}
	if (n->kind == NODE_OMEMO || n->kind == NODE_DEVICES)
		return omemo_enabled(n->acct);
	if (!is_avatar(n))
		return true;
	path = node_avatar_path(n);
	return path != NULL;
}

const FileOps *node_ops(const TreeNode *n)
{
	for (guint i = 0; i < G_N_ELEMENTS(file_ops); i++)
		if (file_ops[i].kind == n->kind)
			return &file_ops[i];
	return NULL;
}

/* @mode's permission bits as -o umask= gives them: the owner's for group
 * and others too, but the mask. */
static mode_t with_umask(const Xfs *x, mode_t mode)
{
	mode_t own = mode & 0700;

	if (x->umask < 0)
		return mode;
	return (mode & ~0777) |
	       ((own | own >> 3 | own >> 6) & ~(mode_t)x->umask);
}

void node_fill_attr(Xfs *x, const TreeNode *n, struct stat *st)
{
	const FileOps *fo = node_ops(n);

	memset(st, 0, sizeof *st);
	st->st_ino = n->ino;
	st->st_uid = x->uid;
	st->st_gid = x->gid;
	st->st_atime = st->st_mtime = st->st_ctime = x->mount_time;
	if (tree_is_dir(n)) {
		Hist *h = dir_hist(n);
		st->st_mode = S_IFDIR | with_umask(x, 0700);
		st->st_nlink = 2;
		/* a conversation's directory changes with its last record,
		 * so ls -t contacts/ sorts by activity; its ctime stays, as
		 * no name in it changes: tar compares ctimes to say "file
		 * changed as we read it", and the kernel's copy of the
		 * attributes may be a second old */
		if (h)
			st->st_mtime = hist_mtime(h);
		return;
	}
	if (n->kind == NODE_LINK) {
		st->st_mode = S_IFLNK | 0777;
		st->st_nlink = 1;
		st->st_size = strlen(n->name) + 1; /* ".NAME" */
		return;
	}
	st->st_mode = S_IFREG | with_umask(x, fo ? fo->mode : 0400);
	st->st_nlink = 1;
	if (fo && fo->text) {
		g_autofree char *text = fo->text(n->acct, n->jid);
		st->st_size = strlen(text);
		st->st_mtime = st->st_ctime = acct_since(n->acct);
	} else if (is_avatar(n) || n->kind == NODE_FILE) {
		g_autofree char *path = n->kind == NODE_FILE
						? node_file_path(n)
						: node_avatar_path(n);
		struct stat fst;
		if (path && !stat(path, &fst)) {
			st->st_size = fst.st_size;
			st->st_mtime = st->st_ctime = fst.st_mtime;
		}
	} else if (n->kind == NODE_UPLOAD) {
		st->st_size = __atomic_load_n(&n->size, __ATOMIC_RELAXED);
	} else if (n->kind == NODE_EVENTS) {
		st->st_mtime = st->st_ctime = hist_mtime(acct_events(n->acct));
	} else if (n->kind == NODE_EVENTLOG) {
		/* the events' own log: a size that grows, for tail -f */
		st->st_size = hist_size(acct_events(n->acct));
		st->st_mtime = st->st_ctime = hist_mtime(acct_events(n->acct));
	} else if (n->kind == NODE_IDS) {
		Hist *h = node_hist(n, false, NULL);
		if (h) {
			st->st_size = hist_ids_size(h);
			st->st_mtime = st->st_ctime = hist_mtime(h);
		}
	} else if (n->kind == NODE_LOG || n->kind == NODE_STREAM) {
		Hist *h = node_hist(n, false, NULL);
		if (h && n->kind == NODE_LOG)
			st->st_size = hist_size(h);
		if (h)
			st->st_mtime = st->st_ctime = hist_mtime(h);
	}
	st->st_blksize = 4096;
	st->st_blocks = (st->st_size + 511) / 512;
}

void node_reply_entry(fuse_req_t req, Xfs *x, const TreeNode *n)
{
	struct fuse_entry_param e = {0};

	e.ino = n->ino;
	e.generation = 1;
	node_fill_attr(x, n, &e.attr);
	/* accounts never change while mounted; file attributes always may;
	 * a contact's directory is looked up afresh each time, so mkdir of a
	 * JID that resolved a moment ago still reaches dirs_mkdir: but for a
	 * roster item, whose mkdir is EEXIST anyway (ls -l looked each one up
	 * three times: stat and two xattrs) */
	/* (an avatar's name comes and goes with its type) */
	e.entry_timeout = (n->kind == NODE_CONTACT &&
			   !roster_has(acct_roster(n->acct), n->jid)) ||
					  n->kind == NODE_ROOM ||
					  n->kind == NODE_PRIVATE || is_avatar(n) ||
					  n->kind == NODE_UPLOAD ||
					  n->kind == NODE_FILE
				  ? 0.0
				  : 1.0;
	e.attr_timeout = tree_is_dir(n) || n->kind == NODE_LINK ? 1.0 : 0.0;
	fuse_reply_entry(req, &e);
}

/* Any valid bare JID names a conversation, listed or not; a name that is
 * not one in normalized form is no file (ENOENT), so two spellings never
 * make two directories. */
TreeNode *node_contact(Xfs *x, TreeNode *contacts, const char *name)
{
	g_autofree char *norm = jid_normalize_bare(name, NULL);

	if (!norm || strcmp(norm, name))
		return NULL;
	return tree_contact(x->tree, contacts, norm);
}

/* Any nick names a private conversation in a room, as a file name
 * (jid_to_filename); a name that is not the file name of a nick in its
 * normalized form is none. */
TreeNode *node_private(Xfs *x, TreeNode *privates, const char *name)
{
	g_autofree char *nick = jid_from_filename(name);
	g_autofree char *norm = nick ? jid_normalize_resource(nick, NULL) : NULL;
	g_autofree char *back = norm ? jid_to_filename(norm) : NULL;

	if (!back || strcmp(back, name))
		return NULL;
	return tree_private(x->tree, privates, name);
}

/* The nick of rooms/ROOM/private/NAME/FILE: an occupant's whose file name
 * is NAME (a nick may hold a real U+2215), else NAME read back. */
char *node_private_nick(const TreeNode *n)
{
	const char *room = node_private_room(n), *name = n->parent->name;
	g_autoptr(GPtrArray) nicks =
		rooms_occupant_nicks(muc_rooms(n->acct), room);

	for (guint i = 0; i < nicks->len; i++) {
		g_autofree char *f = jid_to_filename(nicks->pdata[i]);
		if (!g_strcmp0(f, name))
			return g_strdup(nicks->pdata[i]);
	}
	return jid_from_filename(name);
}
