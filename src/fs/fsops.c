/* fsops.c - the FUSE low-level operations: file operations become reads of
 * account state or requests to the pool.  Nothing here calls libstrophe.
 *
 * Small state files (`connection`, `status`) are opened with direct_io:
 * each open takes a snapshot of the text, getattr reports the size of the
 * current text, and the kernel caches nothing, so `cat` always sees one
 * consistent version and never a stale or zero size. */
#include "fs/fsops.h"

#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "base/jid.h"
#include "base/log.h"
#include "base/text.h"
#include "base/util.h"
#include "base/xmlcheck.h"
#include "features/block.h"
#include "features/chat.h"
#include "features/contacts.h"
#include "features/iqfile.h"
#include "features/muc.h"
#include "fs/iqcall.h"
#include "fs/stream.h"

/* A file of a room, of a private conversation in a room, or of a
 * conversation: whose logs it reads. */
static bool in_room(const TreeNode *n)
{
	return n->parent && n->parent->kind == NODE_ROOM;
}

static bool in_private(const TreeNode *n)
{
	return n->parent && n->parent->kind == NODE_PRIVATE;
}

/* rooms/ROOM/private/NICK/FILE -> ROOM */
static const char *private_room(const TreeNode *n)
{
	return n->parent->parent->jid;
}

static HistSet *hists_of(const TreeNode *n)
{
	if (in_private(n))
		return muc_private_hists(n->acct, private_room(n));
	return in_room(n) ? muc_room_hists(n->acct) : acct_hists(n->acct);
}

/* The log a file of @n reads (made with @create), or NULL. */
static Hist *hist_of(const TreeNode *n, bool create, GError **err)
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

typedef struct {
	NodeKind kind;
	mode_t mode;
	char *(*text)(Account *a, const char *jid);
	/* a line written to a control file (status) */
	int (*line)(Xfs *x, Account *a, const char *line);
	/* a whole write to a roster file: one value, answered by the server */
	int (*value)(Xfs *x, Account *a, const char *jid, const char *value);
} FileOps;

typedef struct {
	TreeNode *node;
	char *text;    /* snapshot taken at open, for reads */
	gsize len;
	GString *wbuf; /* written bytes not yet ending in a newline */
	GMutex lock;   /* protects wbuf and failed: one descriptor, many threads */
	bool failed;   /* post: a write failed, nothing will be sent */
	bool skip_rest; /* per-line files: a failed write dropped the start
			 * of a line; its rest, up to the newline, goes too */
	guint64 last_seq; /* outbox place of the last message sent through it */
	pid_t opener;  /* the thread that opened it */
	Hist *hist;    /* log: NULL while the conversation has none */
	StreamReader *reader; /* stream */
	IqCall *call;  /* iq: this descriptor's request */
} Handle;


static int status_line(Xfs *x, Account *a, const char *line)
{
	AcctShow show;
	g_autofree char *text = NULL;
	int r = acct_parse_status(line, &show, &text);

	if (r)
		return r;
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

static const FileOps file_ops[] = {
	{NODE_NICK, 0600, nick_text, NULL, nick_value},
	{NODE_SUBJECT, 0600, subject_text, NULL, subject_value},
	{NODE_OCCUPANTS, 0400, occupants_text, NULL, NULL},
	{NODE_INVITE, 0200, NULL, NULL, invite_value},
	{NODE_KICK, 0200, NULL, NULL, kick_value},
	{NODE_BAN, 0200, NULL, NULL, ban_value},
	{NODE_CONNECTION, 0400, connection_text, NULL, NULL},
	{NODE_STATUS, 0600, status_text, status_line, NULL},
	{NODE_SEND, 0200, NULL, NULL, NULL},
	{NODE_POST, 0200, NULL, NULL, NULL},
	{NODE_LOG, 0400, NULL, NULL, NULL},
	{NODE_STREAM, 0400, NULL, NULL, NULL},
	{NODE_EVENTS, 0400, NULL, NULL, NULL},
	{NODE_RAW, 0600, NULL, NULL, NULL},
	{NODE_IQ, 0600, NULL, NULL, NULL},
	{NODE_PRESENCE, 0400, presence_text, NULL, NULL},
	{NODE_NAME, 0600, name_text, NULL, name_value},
	{NODE_GROUPS, 0600, groups_text, NULL, groups_value},
	{NODE_SUBSCRIPTION, 0600, subscription_text, NULL, subscription_value},
	{NODE_BLOCKED, 0600, blocked_text, NULL, blocked_value},
	{NODE_BLOCKLIST, 0400, blocklist_text, NULL, NULL},
};

static const FileOps *ops_of(const TreeNode *n)
{
	for (guint i = 0; i < G_N_ELEMENTS(file_ops); i++)
		if (file_ops[i].kind == n->kind)
			return &file_ops[i];
	return NULL;
}

static Xfs *xfs_of(fuse_req_t req)
{
	return fuse_req_userdata(req);
}

static void fill_attr(Xfs *x, const TreeNode *n, struct stat *st)
{
	const FileOps *fo = ops_of(n);

	memset(st, 0, sizeof *st);
	st->st_ino = n->ino;
	st->st_uid = x->uid;
	st->st_gid = x->gid;
	st->st_atime = st->st_mtime = st->st_ctime = x->mount_time;
	if (tree_is_dir(n)) {
		Hist *h = dir_hist(n);
		st->st_mode = S_IFDIR | 0700;
		st->st_nlink = 2;
		/* a conversation's directory changes with its last record,
		 * so ls -t contacts/ sorts by activity */
		if (h)
			st->st_mtime = st->st_ctime = hist_mtime(h);
		return;
	}
	st->st_mode = S_IFREG | (fo ? fo->mode : 0400);
	st->st_nlink = 1;
	if (fo && fo->text) {
		g_autofree char *text = fo->text(n->acct, n->jid);
		st->st_size = strlen(text);
		st->st_mtime = st->st_ctime = acct_since(n->acct);
	} else if (n->kind == NODE_EVENTS) {
		st->st_mtime = st->st_ctime = hist_mtime(acct_events(n->acct));
	} else if (n->kind == NODE_LOG || n->kind == NODE_STREAM) {
		Hist *h = hist_of(n, false, NULL);
		if (h && n->kind == NODE_LOG)
			st->st_size = hist_size(h);
		if (h)
			st->st_mtime = st->st_ctime = hist_mtime(h);
	}
	st->st_blksize = 4096;
	st->st_blocks = (st->st_size + 511) / 512;
}

static void reply_entry(fuse_req_t req, Xfs *x, const TreeNode *n)
{
	struct fuse_entry_param e = {0};

	e.ino = n->ino;
	e.generation = 1;
	fill_attr(x, n, &e.attr);
	/* accounts never change while mounted; file attributes always may;
	 * a contact's directory is looked up afresh each time, so mkdir of a
	 * JID that resolved a moment ago still reaches op_mkdir: but for a
	 * roster item, whose mkdir is EEXIST anyway (ls -l looked each one up
	 * three times: stat and two xattrs) */
	e.entry_timeout = (n->kind == NODE_CONTACT &&
			   !roster_has(acct_roster(n->acct), n->jid)) ||
					  n->kind == NODE_ROOM ||
					  n->kind == NODE_PRIVATE
				  ? 0.0
				  : 1.0;
	e.attr_timeout = tree_is_dir(n) ? 1.0 : 0.0;
	fuse_reply_entry(req, &e);
}

/* Any valid bare JID names a conversation, listed or not; a name that is
 * not one in normalized form is no file (ENOENT), so two spellings never
 * make two directories. */
static TreeNode *contact_node(Xfs *x, TreeNode *contacts, const char *name)
{
	g_autofree char *norm = jid_normalize_bare(name, NULL);

	if (!norm || strcmp(norm, name))
		return NULL;
	return tree_contact(x->tree, contacts, norm);
}

/* Any nick names a private conversation in a room, as a file name
 * (jid_to_filename); a name that is not the file name of a nick in its
 * normalized form is none. */
static TreeNode *private_node(Xfs *x, TreeNode *privates, const char *name)
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
static char *private_nick(const TreeNode *n)
{
	const char *room = private_room(n), *name = n->parent->name;
	g_autoptr(GPtrArray) nicks =
		rooms_occupant_nicks(muc_rooms(n->acct), room);

	for (guint i = 0; i < nicks->len; i++) {
		g_autofree char *f = jid_to_filename(nicks->pdata[i]);
		if (!g_strcmp0(f, name))
			return g_strdup(nicks->pdata[i]);
	}
	return jid_from_filename(name);
}

/* Occupants (but us) and everyone we had a private conversation with. */
static GPtrArray *private_names(Account *a, const char *room)
{
	HistSet *s = muc_private_hists(a, room);
	GPtrArray *names = s ? hist_set_names(s)
			     : g_ptr_array_new_with_free_func(g_free);
	g_autoptr(GPtrArray) occ = rooms_occupant_nicks(muc_rooms(a), room);
	g_autofree char *mine = rooms_nick(muc_rooms(a), room);
	g_autoptr(GHashTable) seen = g_hash_table_new(g_str_hash, g_str_equal);

	for (guint i = 0; i < names->len; i++)
		g_hash_table_add(seen, g_ptr_array_index(names, i));
	for (guint i = 0; i < occ->len; i++) {
		char *f;
		if (!g_strcmp0(occ->pdata[i], mine))
			continue;
		f = jid_to_filename(occ->pdata[i]);
		if (f && !g_hash_table_contains(seen, f)) {
			g_ptr_array_add(names, f);
			g_hash_table_add(seen, f);
		} else {
			g_free(f);
		}
	}
	g_ptr_array_sort(names, util_cmp_strp);
	return names;
}

/* Roster items and everyone with a conversation, sorted, once each. */
static GPtrArray *contact_names(Account *a)
{
	GPtrArray *names = hist_set_names(acct_hists(a));
	g_autoptr(GPtrArray) roster = roster_jids(acct_roster(a));
	g_autoptr(GHashTable) seen = g_hash_table_new(g_str_hash, g_str_equal);

	for (guint i = 0; i < names->len; i++)
		g_hash_table_add(seen, g_ptr_array_index(names, i));
	for (guint i = 0; i < roster->len; i++) {
		char *j = g_ptr_array_index(roster, i);
		if (!g_hash_table_contains(seen, j))
			g_ptr_array_add(names, g_strdup(j));
	}
	g_ptr_array_sort(names, util_cmp_strp);
	return names;
}


/* Every valid JID resolves under contacts/, so the lookup the kernel makes
 * before FUSE_MKDIR would find the name and fail the mkdir with EEXIST;
 * FUSE lookups carry no intent.  A lookup made from inside mkdir(2) of a
 * JID that is not in the roster is answered ENOENT instead, so mkdir
 * reaches op_mkdir.  Unreadable /proc: resolve as usual. */
static bool caller_in_mkdir(fuse_req_t req)
{
	g_autofree char *path =
		g_strdup_printf("/proc/%d/syscall", (int)fuse_req_ctx(req)->pid);
	g_autofree char *text = NULL;
	long nr;

	if (!g_file_get_contents(path, &text, NULL, NULL))
		return false;
	nr = strtol(text, NULL, 10);
#ifdef SYS_mkdir
	if (nr == SYS_mkdir)
		return true;
#endif
	return nr == SYS_mkdirat;
}

static void op_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	Xfs *x = xfs_of(req);
	TreeNode *dir = tree_get(x->tree, parent), *n;

	if (!dir || !tree_is_dir(dir)) {
		fuse_reply_err(req, ENOTDIR);
		return;
	}
	if (dir->kind == NODE_CONTACTS &&
	    !roster_has(acct_roster(dir->acct), name) && caller_in_mkdir(req)) {
		fuse_reply_err(req, ENOENT);
		return;
	}
	if (dir->kind == NODE_ROOMS)
		n = rooms_has(muc_rooms(dir->acct), name)
			    ? tree_room(x->tree, dir, name)
			    : NULL;
	else if (dir->kind == NODE_PRIVATES)
		n = private_node(x, dir, name);
	else
		n = dir->kind == NODE_CONTACTS ? contact_node(x, dir, name)
					       : tree_child(x->tree, dir, name);
	if (!n) {
		fuse_reply_err(req, ENOENT);
		return;
	}
	reply_entry(req, x, n);
}

/* mkdir rooms/ROOM: join; answered when the server confirmed. */
static void room_mkdir(fuse_req_t req, Xfs *x, TreeNode *dir, const char *name)
{
	g_autofree char *norm = jid_normalize_bare(name, NULL);
	int ret;

	if (!norm || strcmp(norm, name) || !strchr(name, '@')) {
		fuse_reply_err(req, EINVAL);
		return;
	}
	ret = muc_request(x->pool, dir->acct, name, ACCT_ROOM_JOIN, NULL);
	if (ret) {
		fuse_reply_err(req, -ret);
		return;
	}
	reply_entry(req, x, tree_room(x->tree, dir, name));
}

static void op_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name,
		     mode_t mode)
{
	Xfs *x = xfs_of(req);
	TreeNode *dir = tree_get(x->tree, parent), *n;
	RosterChange c = {.add = true};
	int ret;

	if (dir && dir->kind == NODE_ROOMS) {
		room_mkdir(req, x, dir, name);
		return;
	}
	if (!dir || dir->kind != NODE_CONTACTS) {
		fuse_reply_err(req, dir ? EPERM : ENOENT);
		return;
	}
	if (!(n = contact_node(x, dir, name))) {
		fuse_reply_err(req, EINVAL);
		return;
	}
	if (roster_has(acct_roster(dir->acct), name)) {
		fuse_reply_err(req, EEXIST);
		return;
	}
	/* a roster item, and a request for their presence */
	c.jid = (char *)name;
	ret = contacts_change(x->pool, dir->acct, &c);
	if (ret) {
		fuse_reply_err(req, -ret);
		return;
	}
	reply_entry(req, x, n);
}

static void op_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	Xfs *x = xfs_of(req);
	TreeNode *dir = tree_get(x->tree, parent);
	RosterChange c = {.remove = true};
	int ret;

	if (dir && dir->kind == NODE_ROOMS) {
		/* leave; the room's log stays on disk */
		ret = rooms_has(muc_rooms(dir->acct), name)
			      ? muc_request(x->pool, dir->acct, name,
					  ACCT_ROOM_LEAVE, NULL)
			      : -ENOENT;
		fuse_reply_err(req, -ret);
		return;
	}
	if (!dir || dir->kind != NODE_CONTACTS) {
		fuse_reply_err(req, dir ? EPERM : ENOENT);
		return;
	}
	if (!roster_has(acct_roster(dir->acct), name)) {
		fuse_reply_err(req, ENOENT);
		return;
	}
	/* the roster item goes; the conversation's log stays on disk */
	c.jid = (char *)name;
	ret = contacts_change(x->pool, dir->acct, &c);
	fuse_reply_err(req, -ret);
}

static void op_getattr(fuse_req_t req, fuse_ino_t ino,
		       struct fuse_file_info *fi)
{
	Xfs *x = xfs_of(req);
	TreeNode *n = tree_get(x->tree, ino);
	struct stat st;

	if (!n) {
		fuse_reply_err(req, ENOENT);
		return;
	}
	fill_attr(x, n, &st);
	fuse_reply_attr(req, &st, tree_is_dir(n) ? 1.0 : 0.0);
}

static void op_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr,
		       int to_set, struct fuse_file_info *fi)
{
	Xfs *x = xfs_of(req);
	TreeNode *n = tree_get(x->tree, ino);
	const FileOps *fo = n ? ops_of(n) : NULL;
	struct stat st;
	const int times = FUSE_SET_ATTR_ATIME | FUSE_SET_ATTR_MTIME |
			  FUSE_SET_ATTR_ATIME_NOW | FUSE_SET_ATTR_MTIME_NOW |
			  FUSE_SET_ATTR_CTIME;

	if (!n) {
		fuse_reply_err(req, ENOENT);
		return;
	}
	/* `echo x > status` truncates first: a no-op for a control file */
	if ((to_set & FUSE_SET_ATTR_SIZE) && !(fo && (fo->line || fo->value))) {
		fuse_reply_err(req, tree_is_dir(n) ? EISDIR : EACCES);
		return;
	}
	if (to_set & ~(times | FUSE_SET_ATTR_SIZE)) {
		fuse_reply_err(req, EPERM);
		return;
	}
	fill_attr(x, n, &st);
	fuse_reply_attr(req, &st, 0.0);
}

/* ".", ".." and the children of @dir, sorted where they are dynamic. */
static GPtrArray *list_dir(Xfs *x, TreeNode *dir)
{
	GPtrArray *names;

	if (dir->kind == NODE_CONTACTS) {
		names = contact_names(dir->acct);
		for (guint i = 0; i < names->len; i++)
			tree_contact(x->tree, dir, g_ptr_array_index(names, i));
	} else if (dir->kind == NODE_ROOMS) {
		names = rooms_list(muc_rooms(dir->acct));
		for (guint i = 0; i < names->len; i++)
			tree_room(x->tree, dir, g_ptr_array_index(names, i));
	} else if (dir->kind == NODE_PRIVATES) {
		names = private_names(dir->acct, dir->jid);
		for (guint i = 0; i < names->len; i++)
			tree_private(x->tree, dir, g_ptr_array_index(names, i));
	} else {
		names = tree_list(x->tree, dir);
	}
	g_ptr_array_insert(names, 0, g_strdup(".."));
	g_ptr_array_insert(names, 0, g_strdup("."));
	return names;
}

static void op_opendir(fuse_req_t req, fuse_ino_t ino,
		       struct fuse_file_info *fi)
{
	Xfs *x = xfs_of(req);
	TreeNode *dir = tree_get(x->tree, ino);

	if (!dir || !tree_is_dir(dir)) {
		fuse_reply_err(req, dir ? ENOTDIR : ENOENT);
		return;
	}
	fi->fh = (uintptr_t)list_dir(x, dir);
	fuse_reply_open(req, fi);
}

static void op_releasedir(fuse_req_t req, fuse_ino_t ino,
			  struct fuse_file_info *fi)
{
	if (fi->fh)
		g_ptr_array_unref((GPtrArray *)(uintptr_t)fi->fh);
	fuse_reply_err(req, 0);
}

static void op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size,
		       off_t off, struct fuse_file_info *fi)
{
	Xfs *x = xfs_of(req);
	TreeNode *dir = tree_get(x->tree, ino);
	g_autoptr(GPtrArray) names = NULL;
	g_autofree char *buf = NULL;
	size_t used = 0;

	if (!dir || !tree_is_dir(dir)) {
		fuse_reply_err(req, ENOTDIR);
		return;
	}
	if (fi->fh) {
		/* the listing taken at opendir: pages of one readdir agree */
		names = g_ptr_array_ref((GPtrArray *)(uintptr_t)fi->fh);
	} else {
		names = list_dir(x, dir);
	}
	buf = g_malloc(size);
	for (guint i = off; i < names->len; i++) {
		const char *name = g_ptr_array_index(names, i);
		TreeNode *c = tree_child(x->tree, dir, name);
		struct stat st = {.st_ino = c ? c->ino : ino,
				  .st_mode = (!c || tree_is_dir(c)) ? S_IFDIR
								    : S_IFREG};
		size_t need = fuse_add_direntry(req, buf + used, size - used,
						name, &st, i + 1);
		if (need > size - used)
			break;
		used += need;
	}
	fuse_reply_buf(req, buf, used);
}

/* The session, for log_grew (set at init). */
static struct fuse_session *the_session;

/* A log grew from @from: the kernel's cached page with the old end is
 * stale (it ended there); the pages before it are not (the log only
 * grows).  Called with no lock of ours held (history.c), and never from
 * a request on the log itself (nothing writes to `log`). */
static void log_grew(void *data, goffset from, goffset to)
{
	const TreeNode *n = data;

	(void)to;
	if (the_session)
		fuse_lowlevel_notify_inval_inode(the_session, n->ino,
						 from & ~(goffset)4095, 0);
}

static void op_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	Xfs *x = xfs_of(req);
	TreeNode *n = tree_get(x->tree, ino);
	const FileOps *fo = n ? ops_of(n) : NULL;
	int acc = fi->flags & O_ACCMODE;
	Handle *h;

	if (!fo) {
		fuse_reply_err(req, n ? EISDIR : ENOENT);
		return;
	}
	if ((acc != O_RDONLY && !(fo->mode & 0200)) ||
	    (acc != O_WRONLY && !(fo->mode & 0400))) {
		fuse_reply_err(req, EACCES);
		return;
	}
	h = g_new0(Handle, 1);
	h->node = n;
	g_mutex_init(&h->lock);
	if (acc != O_WRONLY && fo->text) {
		h->text = fo->text(n->acct, n->jid);
		h->len = strlen(h->text);
	}
	if (acc != O_RDONLY)
		h->wbuf = g_string_new(NULL);
	if (n->kind == NODE_LOG)
		h->hist = hist_of(n, false, NULL);
	if (n->kind == NODE_EVENTS) {
		h->hist = acct_events(n->acct);
		h->reader = stream_open(h->hist);
	}
	/* stream, events, raw, iq read from a cursor of their own and
	 * ignore offsets; seeking is allowed and harmless, so that head -n1
	 * (which seeks back after a line) works on them */
	if (n->kind == NODE_IQ)
		h->call = iqcall_new();
	if (n->kind == NODE_RAW) {
		if (acc != O_WRONLY) {
			h->hist = acct_raw(n->acct);
			h->reader = stream_open(h->hist);
			acct_raw_readers(n->acct, +1);
		}
	}
	if (n->kind == NODE_STREAM) {
		g_autoptr(GError) err = NULL;
		h->hist = hist_of(n, true, &err);
		if (!h->hist) {
			xfs_warn("open %s/stream: %s", n->jid, err->message);
			g_mutex_clear(&h->lock);
			g_free(h);
			fuse_reply_err(req, EIO);
			return;
		}
		h->reader = stream_open(h->hist);
	}
	h->opener = fuse_req_ctx(req)->pid;
	fi->fh = (uintptr_t)h;
	if (n->kind == NODE_LOG) {
		/* append-only: what the kernel cached stays right, but for
		 * the page the end was in (log_grew) */
		if (h->hist)
			hist_observe(h->hist, log_grew, n);
		fi->keep_cache = 1;
	} else {
		fi->direct_io = 1;
	}
	fuse_reply_open(req, fi);
}

static void read_log(fuse_req_t req, Handle *h, size_t size, off_t off)
{
	g_autofree char *buf = g_malloc(MAX(size, 1));
	gssize n = 0;

	/* a conversation that began after the open */
	if (!h->hist && (h->hist = hist_of(h->node, false, NULL)))
		hist_observe(h->hist, log_grew, h->node);
	if (h->hist)
		n = hist_pread(h->hist, buf, size, off);
	if (n < 0)
		fuse_reply_err(req, (int)-n);
	else
		fuse_reply_buf(req, buf, n);
}

static void op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		    struct fuse_file_info *fi)
{
	Handle *h = (Handle *)(uintptr_t)fi->fh;

	if (h->reader) {
		stream_read(h->reader, req, size, fi->flags & O_NONBLOCK);
		return;
	}
	if (h->call) {
		iqcall_read(h->call, req, size, fi->flags & O_NONBLOCK);
		return;
	}
	if (h->node->kind == NODE_LOG) {
		read_log(req, h, size, off);
		return;
	}
	if (!h->text) {
		fuse_reply_err(req, EBADF);
		return;
	}
	if ((gsize)off >= h->len) {
		fuse_reply_buf(req, NULL, 0);
		return;
	}
	/* Reply from a copy: as soon as the kernel has the reply the reader
	 * may close, and op_release free h->text, while fuse_reply_buf (and
	 * ASan's check after writev) still looks at the buffer. */
	gsize n = MIN(size, h->len - off);
	g_autofree char *copy = g_memdup2(h->text + off, n);
	fuse_reply_buf(req, copy, n);
}

/* Run every complete line in h->wbuf; the first error wins and the rest of
 * the buffer is dropped so a bad write changes nothing after it. */
static int run_lines(Xfs *x, Handle *h, bool flush_all)
{
	const FileOps *fo = ops_of(h->node);
	int ret = 0;

	for (;;) {
		char *nl = memchr(h->wbuf->str, '\n', h->wbuf->len);
		gsize n = nl ? (gsize)(nl - h->wbuf->str) : h->wbuf->len;
		if (!nl && (!flush_all || h->wbuf->len == 0))
			break;
		bool has_nul = memchr(h->wbuf->str, '\0', n) != NULL;
		g_autofree char *line = g_strndup(h->wbuf->str, n);
		g_string_erase(h->wbuf, 0, nl ? n + 1 : n);
		if (n && line[n - 1] == '\r')
			line[n - 1] = '\0';
		ret = has_nul ? -EILSEQ : fo->line(x, h->node->acct, line);
		if (ret) {
			g_string_truncate(h->wbuf, 0);
			break;
		}
	}
	return ret;
}

/* A body may be sent: not over the account's limit, clean UTF-8. */
static int check_body(Account *a, const char *s, gsize len, bool allow_lf)
{
	if (len > acct_cfg(a)->message_limit)
		return -EFBIG;
	if (memchr(s, '\0', len) || !text_is_clean(s, len, allow_lf))
		return -EILSEQ;
	return 0;
}

/* Messages from @h's file: to the room, an occupant or a contact; all or
 * none. */
static int send_bodies(Handle *h, const char *const *bodies, guint n)
{
	const TreeNode *nd = h->node;

	if (in_private(nd)) {
		g_autofree char *nick = private_nick(nd);
		return muc_send_private(nd->acct, private_room(nd), nick,
					 bodies, n, &h->last_seq);
	}
	if (in_room(nd))
		return muc_send(nd->acct, nd->jid, bodies, n,
				      &h->last_seq);
	return chat_send(nd->acct, nd->jid, bodies, n, &h->last_seq);
}

static int send_body(Handle *h, const char *body)
{
	return send_bodies(h, &body, 1);
}

/* `send`: every complete line is checked before any is sent, and they
 * are accepted together (acct_accept), so a write with one bad line, or
 * one the disk has no room for, sends nothing.  Empty lines are no
 * messages. */
static int send_write(Xfs *x, Handle *h, const char *data, size_t size)
{
	Account *a = h->node->acct;
	gsize before = h->wbuf->len;
	g_autoptr(GPtrArray) lines = g_ptr_array_new_with_free_func(g_free);
	const char *p, *end, *nl;
	int ret = 0;

	g_string_append_len(h->wbuf, data, size);
	p = h->wbuf->str;
	end = p + h->wbuf->len;
	for (; !ret && (nl = memchr(p, '\n', end - p)); p = nl + 1) {
		gsize n = nl - p;
		ret = check_body(a, p, n, false);
		if (!ret && n)
			g_ptr_array_add(lines, g_strndup(p, n));
	}
	if (!ret && (gsize)(end - p) > acct_cfg(a)->message_limit)
		ret = -EFBIG;
	if (ret) {
		/* a refused line takes what earlier writes gave of it along */
		g_string_truncate(h->wbuf, 0);
		return ret;
	}
	if (lines->len &&
	    (ret = send_bodies(h, (const char *const *)lines->pdata,
			       lines->len))) {
		/* not stored (a full disk): as if this write never came, so
		 * that the same write again does what it would have */
		g_string_truncate(h->wbuf, before);
		return ret;
	}
	g_string_erase(h->wbuf, 0, p - h->wbuf->str);
	return 0;
}

/* `post`: collect; the message goes at release. */
static int post_write(Handle *h, const char *data, size_t size)
{
	Account *a = h->node->acct;

	if (h->failed)
		return -EIO;
	g_string_append_len(h->wbuf, data, size);
	/* one trailing newline is not part of the message */
	if (h->wbuf->len > acct_cfg(a)->message_limit + 1) {
		h->failed = true;
		g_string_truncate(h->wbuf, 0);
		return -EFBIG;
	}
	return 0;
}

/* Files where each line written is one request. */
static bool per_line(const TreeNode *n)
{
	return n->kind == NODE_SUBSCRIPTION || n->kind == NODE_INVITE ||
	       n->kind == NODE_KICK || n->kind == NODE_BAN;
}

/* name and groups: what was written through the descriptor so far is
 * the value (one trailing newline dropped), applied at each write, which
 * returns the server's answer; printf may write one group per call.
 * subscription, invite, kick and ban: each complete line is one value. */
static int value_write(Xfs *x, Handle *h, const char *data, size_t size)
{
	const FileOps *fo = ops_of(h->node);
	g_autofree char *v = NULL;
	gsize len, before = h->wbuf->len;
	int ret;

	if (h->wbuf->len + size > 64 * 1024)
		return -EFBIG;
	if (memchr(data, '\0', size))
		return -EILSEQ;
	if (per_line(h->node) && h->skip_rest) {
		const char *nl = memchr(data, '\n', size);
		size_t n = nl ? (size_t)(nl - data) + 1 : size;
		h->skip_rest = !nl;
		data += n;
		size -= n;
	}
	g_string_append_len(h->wbuf, data, size);
	if (per_line(h->node)) {
		char *nl;
		while ((nl = memchr(h->wbuf->str, '\n', h->wbuf->len))) {
			g_autofree char *word =
				g_strndup(h->wbuf->str, nl - h->wbuf->str);
			g_string_erase(h->wbuf, 0, nl - h->wbuf->str + 1);
			ret = fo->value(x, h->node->acct, h->node->jid, word);
			if (ret) {
				/* the lines after it are not sent; the start of
				 * a line still open must not make another line
				 * with what the next write brings */
				h->skip_rest = h->wbuf->len &&
					       h->wbuf->str[h->wbuf->len - 1] != '\n';
				g_string_truncate(h->wbuf, 0);
				return ret;
			}
		}
		return 0;
	}
	len = h->wbuf->len;
	if (len && h->wbuf->str[len - 1] == '\n')
		len--;
	v = g_strndup(h->wbuf->str, len);
	ret = fo->value(x, h->node->acct, h->node->jid, v);
	if (ret) /* a failed write is not part of the next one's value (a
		  * buffered writer retries the same bytes) */
		g_string_truncate(h->wbuf, before);
	return ret;
}

/* raw: each write is one or more complete stanzas, all checked before
 * any is sent; what is not well-formed XML or not a stanza is EINVAL and
 * nothing is sent, so no write can break the stream. */
static int raw_write(Xfs *x, Handle *h, const char *data, size_t size)
{
	g_autoptr(GError) err = NULL;
	GPtrArray *stanzas;

	if (size > 1024 * 1024)
		return -EFBIG;
	if (!(stanzas = xmlcheck_stanzas(data, size, &err))) {
		xfs_info("%s: raw write refused: %s",
			 acct_cfg(h->node->acct)->jid, err->message);
		return -EINVAL;
	}
	return pool_send_raw(x->pool, h->node->acct, stanzas);
}

/* iq: one <iq type='get|set'/>; its answer is read on this descriptor. */
/* [pool] iqfile.c's answer to the request a descriptor wrote. */
static void iq_answered(void *call, const char *line, int err)
{
	iqcall_finish(call, line, err);
}

static void iq_call_unref(void *call)
{
	iqcall_unref(call);
}

static int iq_write(Xfs *x, Handle *h, const char *data, size_t size)
{
	g_autoptr(GError) err = NULL;
	g_autoptr(GPtrArray) stanzas = NULL;
	int ret;

	if (size > 1024 * 1024)
		return -EFBIG;
	stanzas = xmlcheck_stanzas(data, size, &err);
	if (!stanzas || stanzas->len != 1 ||
	    !g_str_has_prefix(g_ptr_array_index(stanzas, 0), "<iq"))
		return -EINVAL;
	if (iqcall_pending(h->call))
		return -EBUSY; /* one request at a time per descriptor */
	iqcall_start(h->call);
	ret = iqfile_send(x->pool, h->node->acct,
			  g_ptr_array_index(stanzas, 0), iq_answered,
			  iqcall_ref(h->call), iq_call_unref);
	if (ret)
		iqcall_finish(h->call, NULL, 0); /* nothing to wait for */
	return ret;
}

static void op_write(fuse_req_t req, fuse_ino_t ino, const char *data,
		     size_t size, off_t off, struct fuse_file_info *fi)
{
	Xfs *x = xfs_of(req);
	Handle *h = (Handle *)(uintptr_t)fi->fh;
	int ret;

	if (!h->wbuf) {
		fuse_reply_err(req, EBADF);
		return;
	}
	g_mutex_lock(&h->lock);
	switch (h->node->kind) {
	case NODE_SEND:
		ret = send_write(x, h, data, size);
		break;
	case NODE_POST:
		ret = post_write(h, data, size);
		break;
	case NODE_NAME:
	case NODE_GROUPS:
	case NODE_SUBSCRIPTION:
	case NODE_BLOCKED:
	case NODE_INVITE:
	case NODE_KICK:
	case NODE_BAN:
	case NODE_NICK:
	case NODE_SUBJECT:
		ret = value_write(x, h, data, size);
		break;
	case NODE_RAW:
		ret = raw_write(x, h, data, size);
		break;
	case NODE_IQ:
		ret = iq_write(x, h, data, size);
		break;
	default:
		if (h->wbuf->len + size > ACCT_STATUS_TEXT_MAX + 1) {
			ret = -EFBIG;
			break;
		}
		g_string_append_len(h->wbuf, data, size);
		ret = run_lines(x, h, false);
	}
	g_mutex_unlock(&h->lock);
	if (ret)
		fuse_reply_err(req, -ret);
	else
		fuse_reply_write(req, size);
}

/* Every close of a descriptor flushes, also of copies a child inherited,
 * so a message is never sent here (release is the last close); what
 * would fail then is reported now, as the close's error, and then nothing
 * is sent.  (A character split between two processes' writes would fail
 * at the first one's close: a price for reporting bad text at close.) */
static int flush_check(Handle *h)
{
	Account *a = h->node->acct;
	bool post = h->node->kind == NODE_POST;
	gsize len = h->wbuf->len;

	if (post && h->failed)
		return -EIO;
	if (post && len && h->wbuf->str[len - 1] == '\n')
		len--;
	if (len > acct_cfg(a)->message_limit)
		return -EFBIG;
	if (memchr(h->wbuf->str, '\0', len) ||
	    !text_is_clean(h->wbuf->str, len, post)) {
		h->failed = post;
		if (!post)
			g_string_truncate(h->wbuf, 0);
		return -EILSEQ;
	}
	return 0;
}

static void send_final(Handle *h);

static void op_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	Handle *h = (Handle *)(uintptr_t)fi->fh;
	int ret = 0;

	if (h->wbuf) {
		g_mutex_lock(&h->lock);
		if (h->node->kind == NODE_SEND || h->node->kind == NODE_POST) {
			ret = flush_check(h);
			/* the opener's own close sends now, so two posts in a row
			 * go in order (release comes after close returned, and
			 * two releases may run at once); a child closing a copy
			 * it inherited leaves it to release */
			if (!ret && fuse_req_ctx(req)->pid == h->opener) {
				send_final(h);
				g_string_truncate(h->wbuf, 0);
			}
		}
		else if (ops_of(h->node)->line)
			ret = run_lines(xfs_of(req), h, true);
		else if (per_line(h->node) && h->wbuf->len) {
			/* a last line without its newline */
			g_autofree char *word = g_strndup(h->wbuf->str,
							  h->wbuf->len);
			g_string_truncate(h->wbuf, 0);
			ret = ops_of(h->node)->value(xfs_of(req), h->node->acct,
						     h->node->jid, word);
		}
		g_mutex_unlock(&h->lock);
	}
	fuse_reply_err(req, -ret);
}

/* The last close: the last line of `send`, the message of `post`. */
static void send_final(Handle *h)
{
	Account *a = h->node->acct;
	GString *b = h->wbuf;
	bool post = h->node->kind == NODE_POST;
	int ret;

	if (post && h->failed)
		return;
	if (post && b->len && b->str[b->len - 1] == '\n')
		g_string_truncate(b, b->len - 1);
	if (b->len == 0)
		return;
	ret = check_body(a, b->str, b->len, post);
	if (!ret)
		ret = send_body(h, b->str);
	if (ret)
		xfs_warn("%s: message to %s not sent at close: %s",
			 acct_cfg(a)->jid, h->node->jid, g_strerror(-ret));
}

static void op_release(fuse_req_t req, fuse_ino_t ino,
		       struct fuse_file_info *fi)
{
	Handle *h = (Handle *)(uintptr_t)fi->fh;

	if (h->wbuf && (h->node->kind == NODE_SEND || h->node->kind == NODE_POST))
		send_final(h);
	if (h->reader)
		stream_close(h->reader);
	if (h->reader && h->node->kind == NODE_RAW)
		acct_raw_readers(h->node->acct, -1);
	if (h->call)
		iqcall_unref(h->call);
	g_free(h->text);
	if (h->wbuf)
		g_string_free(h->wbuf, TRUE);
	g_mutex_clear(&h->lock);
	g_free(h);
	fuse_reply_err(req, 0);
}

/* fsync on send/post: answered once the server acknowledged every message
 * written through the descriptor, from the thread that sees the ack; with
 * the error of one that can never go out (a room that put us out, or
 * refused it), if any.  A
 * waiting fsync holds no FUSE thread; an interrupt answers EINTR.  Who
 * answers is whoever takes the request out of fsync_waits. */
static GMutex fsync_lock;
static GHashTable *fsync_waits; /* fuse_req_t -> token, under fsync_lock */

static __thread bool fsync_registering;
static __thread bool fsync_interrupted_now;

static bool fsync_take(fuse_req_t req, guint64 *token)
{
	gpointer v = NULL;
	bool found;

	g_mutex_lock(&fsync_lock);
	found = fsync_waits &&
		g_hash_table_lookup_extended(fsync_waits, req, NULL, &v);
	if (found)
		g_hash_table_remove(fsync_waits, req);
	g_mutex_unlock(&fsync_lock);
	if (token)
		*token = GPOINTER_TO_SIZE(v);
	return found;
}

static void fsync_acked(void *data, int err)
{
	if (fsync_take(data, NULL))
		fuse_reply_err(data, err);
}

static void fsync_interrupt(fuse_req_t req, void *data)
{
	guint64 token;

	if (fsync_registering) {
		fsync_interrupted_now = true;
		return;
	}
	if (fsync_take(req, &token)) {
		outbox_unwatch(data, token);
		fuse_reply_err(req, EINTR);
	}
}

static void op_fsync(fuse_req_t req, fuse_ino_t ino, int datasync,
		     struct fuse_file_info *fi)
{
	Handle *h = (Handle *)(uintptr_t)fi->fh;
	Outbox *o = acct_outbox(h->node->acct);
	guint64 token;

	if (!h->wbuf || !h->last_seq) {
		fuse_reply_err(req, 0);
		return;
	}
	fsync_registering = true;
	fsync_interrupted_now = false;
	fuse_req_interrupt_func(req, fsync_interrupt, o);
	fsync_registering = false;
	if (fsync_interrupted_now) {
		fuse_reply_err(req, EINTR);
		return;
	}
	/* in the table before the watch, so an ack at once finds it */
	g_mutex_lock(&fsync_lock);
	if (!fsync_waits)
		fsync_waits = g_hash_table_new(NULL, NULL);
	g_hash_table_insert(fsync_waits, req, GSIZE_TO_POINTER(0));
	g_mutex_unlock(&fsync_lock);
	if (!outbox_watch(o, h->last_seq, fsync_acked, req, &token)) {
		if (fsync_take(req, NULL))
			fuse_reply_err(req, 0);
		return;
	}
	g_mutex_lock(&fsync_lock);
	if (g_hash_table_contains(fsync_waits, req))
		g_hash_table_insert(fsync_waits, req, GSIZE_TO_POINTER(token));
	g_mutex_unlock(&fsync_lock);
	if (fuse_req_interrupted(req) && fsync_take(req, &token)) {
		outbox_unwatch(o, token);
		fuse_reply_err(req, EINTR);
	}
}

static void op_poll(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi,
		    struct fuse_pollhandle *ph)
{
	Handle *h = (Handle *)(uintptr_t)fi->fh;

	if (h->reader) {
		stream_poll(h->reader, req, ph);
		return;
	}
	if (ph)
		fuse_pollhandle_destroy(ph);
	fuse_reply_poll(req, POLLIN | POLLRDNORM | POLLOUT | POLLWRNORM);
}

static void op_statfs(fuse_req_t req, fuse_ino_t ino)
{
	struct statvfs sv = {.f_bsize = 4096, .f_frsize = 4096,
			     .f_namemax = 3071};

	fuse_reply_statfs(req, &sv);
}

static void op_init(void *userdata, struct fuse_conn_info *conn)
{
	Xfs *x = userdata;

	the_session = x->se;
	/* a log's mtime changes with every record: auto_inval_data would
	 * drop all of its cached pages each time; log_grew drops the one */
	conn->want &= ~FUSE_CAP_AUTO_INVAL_DATA;
}

static const struct fuse_lowlevel_ops xfs_lowlevel_ops = {
	.init = op_init,
	.lookup = op_lookup,
	.mkdir = op_mkdir,
	.rmdir = op_rmdir,
	.poll = op_poll,
	.fsync = op_fsync,
	.getattr = op_getattr,
	.setattr = op_setattr,
	.opendir = op_opendir,
	.readdir = op_readdir,
	.releasedir = op_releasedir,
	.open = op_open,
	.read = op_read,
	.write = op_write,
	.flush = op_flush,
	.release = op_release,
	.statfs = op_statfs,
};

const struct fuse_lowlevel_ops *xfs_ops(void)
{
	return &xfs_lowlevel_ops;
}
