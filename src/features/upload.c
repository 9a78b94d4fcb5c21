/* upload.c - the account's upload service (XEP-0363): found at each
 * connect among the server's items (disco#items, then disco#info of
 * each: the first with urn:xmpp:http:upload:0, and its max-file-size),
 * and slots asked of it.  Pool thread, but the [any] functions
 * (upload.h). */
#include "features/upload.h"
#include "features/featureset.h"
#include "features/files.h"
#include "xmpp/account_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/log.h"
#include "xmpp/await.h"

#define NS_UPLOAD "urn:xmpp:http:upload:0"
#define NS_DISCO_ITEMS "http://jabber.org/protocol/disco#items"
#define UPLOAD_ITEMS_MAX 64 /* a server's items asked about, at most */

/* Each account's (Feature.state_size). */
typedef struct {
	GMutex lock;    /* around service, max: FUSE threads read them */
	char *service;  /* the upload service's JID; NULL: none (yet) */
	guint64 max;    /* its max-file-size (0: none said) */
	guint asking;   /* disco#info answers still to come (pool) */
	GQueue waiting; /* Slot jobs that came before the answers (pool) */
	char *dir;      /* DATA/ACCOUNT/uploads */
} Upload;

const Feature upload_feature;

/* A slot asked for: shared by the caller and the pool (an atomic
 * reference each), as the caller may stop waiting first (pool_call's
 * deadline) and the pool still fill it in. */
typedef struct {
	PoolReq *r;
	char *name, *type;
	guint64 size;
	UploadSlot out[1];
} Job;

static void job_clear(gpointer p)
{
	Job *j = p;

	g_free(j->name);
	g_free(j->type);
	upload_slot_clear(j->out);
}

static void job_unref(gpointer p)
{
	g_atomic_rc_box_release_full(p, job_clear);
}

static Upload *up_of(Account *a)
{
	return acct_state(a, &upload_feature);
}

void upload_slot_clear(UploadSlot *s)
{
	g_clear_pointer(&s->put, g_free);
	g_clear_pointer(&s->get, g_free);
	g_clear_pointer(&s->headers, g_ptr_array_unref);
}

gint64 upload_max(Account *a)
{
	Upload *u = up_of(a);
	gint64 max;

	g_mutex_lock(&u->lock);
	max = u->service ? (gint64)u->max : -1;
	g_mutex_unlock(&u->lock);
	return max;
}

int upload_tmpfile(Account *a)
{
	g_autofree char *path = g_build_filename(up_of(a)->dir,
						 "upload-XXXXXX", NULL);
	int fd = g_mkstemp_full(path, O_RDWR | O_CLOEXEC, 0600);

	if (fd < 0)
		return -errno;
	unlink(path);
	return fd;
}

int upload_put(Account *a, const UploadSlot *s, int fd, guint64 size,
	       const char *type, HttpsProgress cb, void *data, GError **err)
{
	HttpsOpts o;

	files_https_opts(a, s->put, &o);
	if (lseek(fd, 0, SEEK_SET) < 0)
		return -errno;
	return https_put(&o, s->put, fd, size, type,
			 (const char *const *)s->headers->pdata, cb, data, err);
}

const char *upload_type_of(const char *name)
{
	static const struct {
		const char *ext, *type;
	} types[] = {
		{"pdf", "application/pdf"}, {"png", "image/png"},
		{"jpg", "image/jpeg"},      {"jpeg", "image/jpeg"},
		{"gif", "image/gif"},       {"webp", "image/webp"},
		{"txt", "text/plain"},      {"md", "text/markdown"},
		{"html", "text/html"},      {"zip", "application/zip"},
		{"gz", "application/gzip"}, {"tar", "application/x-tar"},
		{"mp3", "audio/mpeg"},      {"ogg", "audio/ogg"},
		{"opus", "audio/ogg"},      {"m4a", "audio/mp4"},
		{"mp4", "video/mp4"},       {"webm", "video/webm"},
		{"json", "application/json"}, {"csv", "text/csv"},
	};
	const char *dot = strrchr(name, '.');

	for (guint i = 0; dot && i < G_N_ELEMENTS(types); i++)
		if (!g_ascii_strcasecmp(dot + 1, types[i].ext))
			return types[i].type;
	return "application/octet-stream";
}

/* ---- the slot ---- */

static void slot_answered(Account *a, xmpp_stanza_t *answer, int err,
			  void *data)
{
	Job *j = data;
	xmpp_stanza_t *slot = answer ? xmpp_stanza_get_child_by_name_and_ns(
					       answer, "slot", NS_UPLOAD)
				     : NULL;
	xmpp_stanza_t *put = slot ? xmpp_stanza_get_child_by_name(slot, "put")
				  : NULL;
	xmpp_stanza_t *get = slot ? xmpp_stanza_get_child_by_name(slot, "get")
				  : NULL;
	xmpp_stanza_t *e = answer ? xmpp_stanza_get_child_by_name(answer,
								 "error")
				  : NULL;
	const char *pu = put ? xmpp_stanza_get_attribute(put, "url") : NULL;
	const char *gu = get ? xmpp_stanza_get_attribute(get, "url") : NULL;
	int res = await_errno(answer, err);

	if (res) {
		/* XEP-0363 §4: too large, or the quota is used up */
		if (e && xmpp_stanza_get_child_by_name_and_ns(e,
							      "file-too-large",
							      NS_UPLOAD))
			res = -EFBIG;
		else if (e && xmpp_stanza_get_child_by_name(
				      e, "resource-constraint"))
			res = -EDQUOT;
		pool_complete(j->r, res);
		return;
	}
	if (!pu || !gu || g_ascii_strncasecmp(pu, "https://", 8) ||
	    g_ascii_strncasecmp(gu, "https://", 8) || strpbrk(gu, " \t\r\n")) {
		xfs_warn("%s: the upload service gave no usable https:// "
			 "slot", acct_cfg(a)->jid);
		pool_complete(j->r, -EPROTO);
		return;
	}
	j->out->put = g_strdup(pu);
	j->out->get = g_strdup(gu);
	j->out->headers = g_ptr_array_new_with_free_func(g_free);
	for (xmpp_stanza_t *h = xmpp_stanza_get_children(put); h;
	     h = xmpp_stanza_get_next(h)) {
		const char *name = xmpp_stanza_is_tag(h)
					   ? xmpp_stanza_get_attribute(h, "name")
					   : NULL;
		g_autofree char *v = NULL;
		/* §5: only these, and none that would end the header */
		if (!name || (g_ascii_strcasecmp(name, "Authorization") &&
			      g_ascii_strcasecmp(name, "Cookie") &&
			      g_ascii_strcasecmp(name, "Expires")))
			continue;
		v = acct_text(h);
		if (v && !strpbrk(v, "\r\n"))
			g_ptr_array_add(j->out->headers,
					g_strdup_printf("%s: %s", name, v));
	}
	g_ptr_array_add(j->out->headers, NULL);
	pool_complete(j->r, 0);
}

static void slot_ask(Account *a, Job *j)
{
	Upload *u = up_of(a);
	xmpp_stanza_t *iq, *req;
	char size[32];

	if (!acct_is_online(a)) {
		pool_complete(j->r, -ENOTCONN);
		return;
	}
	if (!u->service) {
		pool_complete(j->r, -EOPNOTSUPP);
		return;
	}
	if (u->max && j->size > u->max) {
		pool_complete(j->r, -EFBIG);
		return;
	}
	iq = xmpp_iq_new(a->ctx, "get", NULL);
	xmpp_stanza_set_to(iq, u->service);
	req = acct_add_child(a, iq, "request", NS_UPLOAD);
	xmpp_stanza_set_attribute(req, "filename", j->name);
	g_snprintf(size, sizeof size, "%" G_GUINT64_FORMAT, j->size);
	xmpp_stanza_set_attribute(req, "size", size);
	xmpp_stanza_set_attribute(req, "content-type", j->type);
	await_iq(a, iq, acct_cfg(a)->iq_timeout, slot_answered, j, NULL);
	xmpp_stanza_release(iq);
}

static void slot_run(Account *a, void *data, PoolReq *r)
{
	Job *j = data;
	Upload *u = up_of(a);

	j->r = r;
	if (!u->service && u->asking && acct_is_online(a)) {
		/* until one is found, or every item answered (a silent one
		 * for as long as an iq waits) */
		g_queue_push_tail(&u->waiting, j);
		return;
	}
	slot_ask(a, j);
}

int upload_slot(Pool *p, Account *a, const char *name, guint64 size,
		const char *type, UploadSlot *out)
{
	Job *j = g_atomic_rc_box_new0(Job);
	int ret;

	j->name = g_strdup(name);
	j->type = g_strdup(type);
	j->size = size;
	memset(out, 0, sizeof *out);
	ret = pool_call(p, a, slot_run, g_atomic_rc_box_acquire(j), job_unref);
	if (!ret) { /* done: the pool wrote it, and is through with it */
		*out = *j->out;
		memset(j->out, 0, sizeof *j->out);
	}
	job_unref(j);
	return ret;
}

/* ---- finding the service ---- */

static void asked_all(Account *a)
{
	Upload *u = up_of(a);
	Job *j;

	while ((j = g_queue_pop_head(&u->waiting)))
		slot_ask(a, j);
}

/* The max-file-size of the service's XEP-0128 form, 0 when none. */
static guint64 max_of(xmpp_stanza_t *q)
{
	for (xmpp_stanza_t *x = xmpp_stanza_get_children(q); x;
	     x = xmpp_stanza_get_next(x)) {
		if (!xmpp_stanza_is_tag(x) || strcmp(xmpp_stanza_get_name(x), "x"))
			continue;
		for (xmpp_stanza_t *f = xmpp_stanza_get_children(x); f;
		     f = xmpp_stanza_get_next(f)) {
			g_autofree char *v = NULL;
			if (!xmpp_stanza_is_tag(f) ||
			    g_strcmp0(xmpp_stanza_get_attribute(f, "var"),
				      "max-file-size"))
				continue;
			v = acct_child_text(f, "value");
			return v ? g_ascii_strtoull(v, NULL, 10) : 0;
		}
	}
	return 0;
}

static void info_answered(Account *a, xmpp_stanza_t *answer, int err,
			  void *data)
{
	Upload *u = up_of(a);
	xmpp_stanza_t *q = answer ? xmpp_stanza_get_child_by_name_and_ns(
					    answer, "query", XMPP_NS_DISCO_INFO)
				  : NULL;
	bool has = false;

	(void)err;
	for (xmpp_stanza_t *f = q ? xmpp_stanza_get_children(q) : NULL; f;
	     f = xmpp_stanza_get_next(f))
		if (xmpp_stanza_is_tag(f) &&
		    !strcmp(xmpp_stanza_get_name(f), "feature") &&
		    !g_strcmp0(xmpp_stanza_get_attribute(f, "var"), NS_UPLOAD))
			has = true;
	if (has) {
		g_mutex_lock(&u->lock);
		if (!u->service) { /* the first one found */
			u->service = g_strdup(data);
			u->max = max_of(q);
		}
		g_mutex_unlock(&u->lock);
	}
	if (u->asking)
		u->asking--;
	if (u->service || !u->asking)
		asked_all(a);
}

static void ask_info(Account *a, const char *jid)
{
	Upload *u = up_of(a);
	xmpp_stanza_t *iq = xmpp_iq_new(a->ctx, "get", NULL);

	xmpp_stanza_set_to(iq, jid);
	acct_add_child(a, iq, "query", XMPP_NS_DISCO_INFO);
	u->asking++;
	await_iq(a, iq, acct_cfg(a)->iq_timeout, info_answered, g_strdup(jid),
		 g_free);
	xmpp_stanza_release(iq);
}

static void items_answered(Account *a, xmpp_stanza_t *answer, int err,
			   void *data)
{
	Upload *u = up_of(a);
	xmpp_stanza_t *q = answer ? xmpp_stanza_get_child_by_name_and_ns(
					    answer, "query", NS_DISCO_ITEMS)
				  : NULL;
	guint n = 0;

	(void)err;
	(void)data;
	for (xmpp_stanza_t *i = q ? xmpp_stanza_get_children(q) : NULL;
	     i && n < UPLOAD_ITEMS_MAX; i = xmpp_stanza_get_next(i)) {
		const char *jid = xmpp_stanza_is_tag(i)
					  ? xmpp_stanza_get_attribute(i, "jid")
					  : NULL;
		if (jid && !strcmp(xmpp_stanza_get_name(i), "item") &&
		    !strchr(jid, '@') && !strchr(jid, '/')) {
			ask_info(a, jid);
			n++;
		}
	}
	if (u->asking && !--u->asking) /* (this answer's own count) */
		asked_all(a);
}

static void upload_online(Account *a)
{
	Upload *u = up_of(a);
	xmpp_stanza_t *iq = xmpp_iq_new(a->ctx, "get", NULL);
	g_autofree char *domain = g_strdup(strchr(acct_cfg(a)->jid, '@') + 1);

	g_mutex_lock(&u->lock);
	g_clear_pointer(&u->service, g_free);
	u->max = 0;
	g_mutex_unlock(&u->lock);
	/* the server's own items; then each one's features */
	xmpp_stanza_set_to(iq, domain);
	acct_add_child(a, iq, "query", NS_DISCO_ITEMS);
	u->asking = 1;
	await_iq(a, iq, acct_cfg(a)->iq_timeout, items_answered, NULL, NULL);
	xmpp_stanza_release(iq);
}

static void upload_offline(Account *a)
{
	Upload *u = up_of(a);
	Job *j;

	u->asking = 0;
	while ((j = g_queue_pop_head(&u->waiting)))
		pool_complete(j->r, -ENOTCONN);
}

static void upload_attach(Account *a, const char *dir)
{
	Upload *u = up_of(a);

	g_mutex_init(&u->lock);
	g_queue_init(&u->waiting);
	u->dir = g_build_filename(dir, "uploads", NULL);
	if (g_mkdir_with_parents(u->dir, 0700))
		xfs_warn("%s: %s: %s", acct_cfg(a)->jid, u->dir,
			 g_strerror(errno));
}

static void upload_detach(Account *a)
{
	Upload *u = up_of(a);

	g_clear_pointer(&u->service, g_free);
	g_clear_pointer(&u->dir, g_free);
	g_mutex_clear(&u->lock);
}

const Feature upload_feature = {
	.name = "HTTP file upload (XEP-0363)",
	.state_size = sizeof(Upload),
	.attach = upload_attach,
	.detach = upload_detach,
	.online = upload_online,
	.offline = upload_offline,
};
