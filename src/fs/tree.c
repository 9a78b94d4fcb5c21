/* tree.c - see tree.h.  Nodes live as long as the tree; inode numbers are
 * never reused while the mount lives. */
#include "fs/tree.h"

struct Tree {
	GMutex lock;
	GMutex contact_lock; /* serialises child_dir and ensure_files; taken
			     * before lock */
	GHashTable *by_ino; /* guint64* -> TreeNode*, protected by lock */
	guint64 next_ino;   /* protected by lock */
	TreeNode *root;
};

static TreeNode *node_add(Tree *t, TreeNode *parent, NodeKind kind,
			  const char *name, Account *acct)
{
	TreeNode *n = g_new0(TreeNode, 1);

	n->kind = kind;
	n->name = g_strdup(name);
	n->parent = parent;
	n->acct = acct;
	if (kind == NODE_ROOT || kind == NODE_ACCOUNT || kind == NODE_CONTACTS ||
	    kind == NODE_CONTACT || kind == NODE_ROOMS || kind == NODE_ROOM ||
	    kind == NODE_PRIVATES || kind == NODE_PRIVATE ||
	    kind == NODE_FILES) {
		n->children = g_ptr_array_new();
		n->by_name = g_hash_table_new(g_str_hash, g_str_equal);
	}
	if (kind == NODE_CONTACT || kind == NODE_ROOM || kind == NODE_PRIVATE)
		n->jid = n->name;
	else if (parent && (parent->kind == NODE_CONTACT ||
			    parent->kind == NODE_ROOM ||
			    parent->kind == NODE_PRIVATE ||
			    parent->kind == NODE_FILES))
		n->jid = parent->jid;
	g_mutex_lock(&t->lock);
	n->ino = t->next_ino++;
	g_hash_table_insert(t->by_ino, &n->ino, n);
	if (parent) {
		g_ptr_array_add(parent->children, n);
		g_hash_table_insert(parent->by_name, n->name, n);
	}
	g_mutex_unlock(&t->lock);
	return n;
}

/* An avatar's names, one per image type (profile.c's). */
static const char *const avatar_names[] = {
	"avatar.png", "avatar.jpg", "avatar.gif", "avatar.webp",
};

Tree *tree_new(Pool *pool)
{
	Tree *t = g_new0(Tree, 1);

	g_mutex_init(&t->lock);
	g_mutex_init(&t->contact_lock);
	t->by_ino = g_hash_table_new(g_int64_hash, g_int64_equal);
	t->next_ino = TREE_ROOT_INO;
	t->root = node_add(t, NULL, NODE_ROOT, "", NULL);
	for (guint i = 0; i < pool_n_accounts(pool); i++) {
		Account *a = pool_account(pool, i);
		TreeNode *dir = node_add(t, t->root, NODE_ACCOUNT,
					 acct_cfg(a)->jid, a);
		node_add(t, dir, NODE_CONNECTION, "connection", a);
		node_add(t, dir, NODE_STATUS, "status", a);
		node_add(t, dir, NODE_LINK, "events", a);
		node_add(t, dir, NODE_EVENTLOG, "log", a);
		node_add(t, dir, NODE_LINK, "raw", a);
		node_add(t, dir, NODE_IQ, "iq", a);
		node_add(t, dir, NODE_BLOCKLIST, "blocked", a);
		node_add(t, dir, NODE_UNREAD_ALL, "unread", a);
		node_add(t, dir, NODE_OWN_NICK, "nick", a);
		node_add(t, dir, NODE_OWN_VCARD, "vcard", a);
		node_add(t, dir, NODE_OMEMO, "omemo", a);
		for (guint k = 0; k < G_N_ELEMENTS(avatar_names); k++)
			node_add(t, dir, NODE_OWN_AVATAR, avatar_names[k], a);
		node_add(t, dir, NODE_CONTACTS, "contacts", a);
		node_add(t, dir, NODE_ROOMS, "rooms", a);
		node_add(t, dir, NODE_EVENTS, ".events", a);
		node_add(t, dir, NODE_RAW, ".raw", a);
	}
	return t;
}

typedef struct {
	NodeKind kind;
	const char *name;
} FileSpec;

static const FileSpec contact_files[] = {
	{NODE_SEND, "send"},         {NODE_POST, "post"},
	{NODE_LOG, "log"},           {NODE_IDS, "log.ids"},
	{NODE_LINK, "stream"},
	{NODE_PRESENCE, "presence"}, {NODE_NAME, "name"},
	{NODE_GROUPS, "groups"},     {NODE_SUBSCRIPTION, "subscription"},
	{NODE_BLOCKED, "blocked"},   {NODE_DELIVERED, "delivered"},
	{NODE_DISPLAYED, "displayed"}, {NODE_READ, "read"},
	{NODE_UNREAD, "unread"},     {NODE_CORRECT, "correct"},
	{NODE_RETRACT, "retract"},   {NODE_REACT, "react"},
	{NODE_REPLY, "reply"},       {NODE_CHATSTATE, "chatstate"},
	{NODE_CONTACT_NICK, "nick"}, {NODE_CONTACT_VCARD, "vcard"},
	{NODE_AVATAR, "avatar.png"}, {NODE_AVATAR, "avatar.jpg"},
	{NODE_AVATAR, "avatar.gif"}, {NODE_AVATAR, "avatar.webp"},
	{NODE_FILES, "files"},
	{NODE_DEVICES, "devices"},   {NODE_ENCRYPTION, "encryption"},
	{NODE_STREAM, ".stream"},
};

static const FileSpec room_files[] = {
	{NODE_SEND, "send"}, {NODE_POST, "post"},
	{NODE_LOG, "log"},   {NODE_IDS, "log.ids"},
	{NODE_LINK, "stream"},
	{NODE_NICK, "nick"}, {NODE_SUBJECT, "subject"},
	{NODE_OCCUPANTS, "occupants"}, {NODE_PRIVATES, "private"},
	{NODE_INVITE, "invite"}, {NODE_KICK, "kick"},
	{NODE_BAN, "ban"},
	{NODE_ROOM_CORRECT, "correct"}, {NODE_ROOM_RETRACT, "retract"},
	{NODE_ROOM_REACT, "react"}, {NODE_ROOM_REPLY, "reply"},
	{NODE_MODERATE, "moderate"}, {NODE_ROOM_READ, "read"},
	{NODE_ROOM_UNREAD, "unread"}, {NODE_FILES, "files"},
	{NODE_STREAM, ".stream"},
};

static const FileSpec private_files[] = {
	{NODE_SEND, "send"}, {NODE_POST, "post"},
	{NODE_LOG, "log"},   {NODE_IDS, "log.ids"},
	{NODE_LINK, "stream"},
	{NODE_STREAM, ".stream"},
};

/* The files a directory of @kind is made with, or false for none. */
static bool files_of(NodeKind kind, const FileSpec **files, guint *n)
{
	switch (kind) {
	case NODE_CONTACT:
		*files = contact_files;
		*n = G_N_ELEMENTS(contact_files);
		return true;
	case NODE_ROOM:
		*files = room_files;
		*n = G_N_ELEMENTS(room_files);
		return true;
	case NODE_PRIVATE:
		*files = private_files;
		*n = G_N_ELEMENTS(private_files);
		return true;
	default:
		return false;
	}
}

/* A conversation's directory gets its files the first time someone looks
 * inside it: `ls contacts/` and `ls -l contacts/` of a 5,000-item roster
 * make one node per contact, not nine. */
static void ensure_files(Tree *t, TreeNode *d)
{
	const FileSpec *files;
	guint n;

	if (!files_of(d->kind, &files, &n) || g_atomic_int_get(&d->files_made))
		return;
	g_mutex_lock(&t->contact_lock);
	if (!d->files_made) {
		for (guint i = 0; i < n; i++)
			node_add(t, d, files[i].kind, files[i].name, d->acct);
		g_atomic_int_set(&d->files_made, 1);
	}
	g_mutex_unlock(&t->contact_lock);
}

/* The directory @name of @kind in @parent, made on first use; one lock
 * around find-or-add, so two lookups make one node. */
static TreeNode *child_dir(Tree *t, TreeNode *parent, NodeKind kind,
			   const char *name)
{
	TreeNode *d;

	g_mutex_lock(&t->contact_lock);
	d = tree_child(t, parent, name);
	if (!d)
		d = node_add(t, parent, kind, name, parent->acct);
	g_mutex_unlock(&t->contact_lock);
	return d;
}

TreeNode *tree_contact(Tree *t, TreeNode *contacts, const char *jid)
{
	return child_dir(t, contacts, NODE_CONTACT, jid);
}

TreeNode *tree_room(Tree *t, TreeNode *rooms, const char *room)
{
	return child_dir(t, rooms, NODE_ROOM, room);
}

TreeNode *tree_private(Tree *t, TreeNode *privates, const char *name)
{
	return child_dir(t, privates, NODE_PRIVATE, name);
}

TreeNode *tree_file(Tree *t, TreeNode *files, const char *name)
{
	TreeNode *n;

	g_mutex_lock(&t->contact_lock);
	g_mutex_lock(&t->lock);
	n = g_hash_table_lookup(files->by_name, name);
	g_mutex_unlock(&t->lock);
	if (!n)
		n = node_add(t, files, NODE_FILE, name, files->acct);
	g_mutex_unlock(&t->contact_lock);
	return n;
}

TreeNode *tree_upload(Tree *t, TreeNode *dir, const char *name)
{
	TreeNode *n;

	ensure_files(t, dir);
	g_mutex_lock(&t->contact_lock);
	g_mutex_lock(&t->lock);
	n = g_hash_table_lookup(dir->by_name, name);
	g_mutex_unlock(&t->lock);
	if (!n)
		n = node_add(t, dir, NODE_UPLOAD, name, dir->acct);
	else if (n->kind != NODE_UPLOAD)
		n = NULL;
	g_mutex_unlock(&t->contact_lock);
	return n;
}

void tree_detach(Tree *t, TreeNode *dir, const char *name)
{
	TreeNode *n;

	g_mutex_lock(&t->contact_lock);
	g_mutex_lock(&t->lock);
	if (dir->by_name && (n = g_hash_table_lookup(dir->by_name, name))) {
		g_hash_table_remove(dir->by_name, name);
		g_ptr_array_remove(dir->children, n);
	}
	g_mutex_unlock(&t->lock);
	g_mutex_unlock(&t->contact_lock);
}

static void node_free(gpointer data)
{
	TreeNode *n = data;

	if (n->children)
		g_ptr_array_unref(n->children);
	if (n->by_name)
		g_hash_table_unref(n->by_name);
	g_free(n->name);
	g_free(n);
}

void tree_free(Tree *t)
{
	GHashTableIter it;
	gpointer v;

	g_hash_table_iter_init(&it, t->by_ino);
	while (g_hash_table_iter_next(&it, NULL, &v))
		node_free(v);
	g_hash_table_unref(t->by_ino);
	g_mutex_clear(&t->lock);
	g_mutex_clear(&t->contact_lock);
	g_free(t);
}

TreeNode *tree_get(Tree *t, guint64 ino)
{
	TreeNode *n;

	g_mutex_lock(&t->lock);
	n = g_hash_table_lookup(t->by_ino, &ino);
	g_mutex_unlock(&t->lock);
	return n;
}

TreeNode *tree_child(Tree *t, TreeNode *dir, const char *name)
{
	TreeNode *found = NULL;

	if (!dir->children)
		return NULL;
	ensure_files(t, dir);
	g_mutex_lock(&t->lock);
	found = g_hash_table_lookup(dir->by_name, name);
	g_mutex_unlock(&t->lock);
	return found;
}

GPtrArray *tree_list(Tree *t, TreeNode *dir)
{
	GPtrArray *names = g_ptr_array_new_with_free_func(g_free);

	ensure_files(t, dir);
	g_mutex_lock(&t->lock);
	for (guint i = 0; dir->children && i < dir->children->len; i++) {
		TreeNode *c = g_ptr_array_index(dir->children, i);
		if (c->name[0] != '.')
			g_ptr_array_add(names, g_strdup(c->name));
	}
	g_mutex_unlock(&t->lock);
	return names;
}

bool tree_is_dir(const TreeNode *n)
{
	return n->children != NULL;
}
