/* vcard.c - vCards as text (vcard.h).
 *
 * Ours lives in the PEP node urn:xmpp:vcard4 (XEP-0292, item "current",
 * for contacts), with vcard-temp (XEP-0054) where the server has no PEP;
 * a contact's is asked for when its file is opened, vCard4 first, then
 * vcard-temp.  The text is RFC 6350's: BEGIN:VCARD, VERSION:4.0, a line
 * per property, END:VCARD; only the properties in `props` are kept, in
 * both directions.  Pool thread, but the [any] functions. */
#include "features/vcard.h"
#include "features/featureset.h"
#include "features/pep.h"
#include "xmpp/account_int.h"

#include <errno.h>
#include <string.h>

#include "base/log.h"
#include "base/text.h"

#define NS_VCARD4 "urn:ietf:params:xml:ns:vcard-4.0"
#define NODE_VCARD4 "urn:xmpp:vcard4"
#define NS_VCARD_TEMP "vcard-temp"
#define VCARD_TEXT_MAX (32 * 1024)

/* A property: its name in text, its element in vCard4 and the value's
 * type there, and where vcard-temp keeps it (ELEMENT or ELEMENT/CHILD). */
static const struct {
	const char *name, *el, *type, *temp;
} props[] = {
	{"FN", "fn", "text", "FN"},
	{"NICKNAME", "nickname", "text", "NICKNAME"},
	{"EMAIL", "email", "text", "EMAIL/USERID"},
	{"TEL", "tel", "uri", "TEL/NUMBER"},
	{"URL", "url", "uri", "URL"},
	{"IMPP", "impp", "uri", "JABBERID"},
	{"NOTE", "note", "text", "DESC"},
	{"BDAY", "bday", "date", "BDAY"},
	{"ORG", "org", "text", "ORG/ORGNAME"},
	{"TITLE", "title", "text", "TITLE"},
	{"ROLE", "role", "text", "ROLE"},
	{"TZ", "tz", "text", "TZ"},
};

/* Each account's (Feature.state_size). */
typedef struct {
	GMutex lock;  /* around own */
	char *own;    /* our vCard as text, "" for none */
} Vcard;

const Feature vcard_feature;

static Vcard *vc_of(Account *a)
{
	return acct_state(a, &vcard_feature);
}

/* ---- text ---- */

/* RFC 6350 §3.4: a value's backslash, comma, semicolon and newline. */
static void append_escaped(GString *out, const char *v)
{
	for (; *v; v++) {
		if (*v == '\n')
			g_string_append(out, "\\n");
		else if (*v == '\\' || *v == ',' || *v == ';')
			g_string_append_c(out, '\\'), g_string_append_c(out, *v);
		else if ((guchar)*v >= 0x20 && *v != 0x7f)
			g_string_append_c(out, *v);
		else
			g_string_append_c(out, ' ');
	}
}

static char *unescape(const char *v)
{
	GString *out = g_string_new(NULL);

	for (; *v; v++) {
		if (*v == '\\' && v[1]) {
			v++;
			g_string_append_c(out, *v == 'n' || *v == 'N' ? '\n' : *v);
		} else {
			g_string_append_c(out, *v);
		}
	}
	return g_string_free(out, FALSE);
}

static void text_add(GString *out, const char *name, const char *value)
{
	if (!value || !*value)
		return;
	if (!out->len)
		g_string_append(out, "BEGIN:VCARD\nVERSION:4.0\n");
	g_string_append_printf(out, "%s:", name);
	append_escaped(out, value);
	g_string_append_c(out, '\n');
}

static char *text_end(GString *out)
{
	if (out->len)
		g_string_append(out, "END:VCARD\n");
	return g_string_free(out, FALSE);
}

/* (newlines kept: a NOTE may have them) */
static char *child_text(xmpp_stanza_t *el, const char *name)
{
	return acct_text(el ? xmpp_stanza_get_child_by_name(el, name) : NULL);
}

/* A <vcard xmlns=vCard4/> as text. */
static char *text_of_vcard4(xmpp_stanza_t *vc)
{
	GString *out = g_string_new(NULL);

	for (guint i = 0; vc && i < G_N_ELEMENTS(props); i++)
		for (xmpp_stanza_t *c = xmpp_stanza_get_children(vc); c;
		     c = xmpp_stanza_get_next(c)) {
			g_autofree char *v = NULL;
			if (!xmpp_stanza_is_tag(c) ||
			    strcmp(xmpp_stanza_get_name(c), props[i].el))
				continue;
			v = child_text(c, props[i].type);
			if (v && !strcmp(props[i].name, "TEL") &&
			    g_str_has_prefix(v, "tel:"))
				memmove(v, v + 4, strlen(v + 4) + 1);
			text_add(out, props[i].name, v);
		}
	return text_end(out);
}

/* A <vCard xmlns=vcard-temp/> as text. */
static char *text_of_temp(xmpp_stanza_t *vc)
{
	GString *out = g_string_new(NULL);

	for (guint i = 0; vc && i < G_N_ELEMENTS(props); i++) {
		g_auto(GStrv) path = g_strsplit(props[i].temp, "/", 2);
		for (xmpp_stanza_t *c = xmpp_stanza_get_children(vc); c;
		     c = xmpp_stanza_get_next(c)) {
			g_autofree char *v = NULL;
			if (!xmpp_stanza_is_tag(c) ||
			    strcmp(xmpp_stanza_get_name(c), path[0]))
				continue;
			v = path[1] ? child_text(c, path[1]) : acct_text(c);
			text_add(out, props[i].name, v);
		}
	}
	return text_end(out);
}

/* Text written to `vcard`: its properties, "INDEX\tVALUE" (INDEX into
 * props), in order; NULL and @err for what is not a vCard of those. */
static GPtrArray *parse_text(const char *text, int *err)
{
	g_autofree char *unfolded = NULL;
	g_auto(GStrv) lines = NULL;
	GPtrArray *out = g_ptr_array_new_with_free_func(g_free);
	GString *u = g_string_new(NULL);

	/* RFC 6350 §3.2: a line that starts with a space or a tab goes on
	 * the one before; CRLF or LF */
	for (const char *c = text; *c; c++) {
		if (*c == '\r' && c[1] == '\n')
			continue;
		if (*c == '\n' && (c[1] == ' ' || c[1] == '\t')) {
			c++;
			continue;
		}
		g_string_append_c(u, *c);
	}
	unfolded = g_string_free(u, FALSE);
	lines = g_strsplit(unfolded, "\n", -1);
	for (char **l = lines; *l; l++) {
		const char *colon = strchr(*l, ':');
		g_autofree char *name = NULL, *value = NULL;
		guint i;

		if (!**l)
			continue;
		if (!colon) {
			*err = -EINVAL;
			g_ptr_array_unref(out);
			return NULL;
		}
		name = g_ascii_strup(*l, strcspn(*l, ":;"));
		if (!strcmp(name, "BEGIN") || !strcmp(name, "END") ||
		    !strcmp(name, "VERSION"))
			continue;
		for (i = 0; i < G_N_ELEMENTS(props); i++)
			if (!strcmp(props[i].name, name))
				break;
		if (i == G_N_ELEMENTS(props)) {
			*err = -EINVAL;
			g_ptr_array_unref(out);
			return NULL;
		}
		value = unescape(colon + 1);
		if (*value)
			g_ptr_array_add(out, g_strdup_printf("%u\t%s", i, value));
	}
	return out;
}

/* Those properties as a <vcard xmlns=vCard4/>. */
static xmpp_stanza_t *vcard4_of(Account *a, GPtrArray *pairs)
{
	xmpp_stanza_t *vc = xmpp_stanza_new(a->ctx), *el;

	xmpp_stanza_set_name(vc, "vcard");
	xmpp_stanza_set_ns(vc, NS_VCARD4);
	for (guint k = 0; k < pairs->len; k++) {
		const char *pair = g_ptr_array_index(pairs, k);
		const char *value = strchr(pair, '\t') + 1;
		guint i = (guint)g_ascii_strtoull(pair, NULL, 10);

		el = acct_add_child(a, vc, props[i].el, NULL);
		if (!strcmp(props[i].name, "TEL") &&
		    !g_str_has_prefix(value, "tel:")) {
			g_autofree char *uri = g_strconcat("tel:", value, NULL);
			acct_add_text_child(a, el, props[i].type, uri);
		} else {
			acct_add_text_child(a, el, props[i].type, value);
		}
	}
	return vc;
}

/* ---- ours ---- */

char *vcard_own_text(Account *a)
{
	Vcard *v = vc_of(a);
	char *t;

	g_mutex_lock(&v->lock);
	t = g_strdup(v->own ? v->own : "");
	g_mutex_unlock(&v->lock);
	return t;
}

static void own_set(Account *a, char *text)
{
	Vcard *v = vc_of(a);

	g_mutex_lock(&v->lock);
	g_free(v->own);
	v->own = text;
	g_mutex_unlock(&v->lock);
}

static void take_item(Account *a, xmpp_stanza_t *item, void *data)
{
	(void)data;
	own_set(a, text_of_vcard4(xmpp_stanza_get_child_by_name_and_ns(
		item, "vcard", NS_VCARD4)));
}

/* A notification of ours (another client changed it); a contact's are
 * not kept (their file asks anew). */
bool vcard_in(Account *a, const In *in)
{
	xmpp_stanza_t *items = pep_event_items(in, NODE_VCARD4);

	if (!items)
		return false;
	if (pep_from_us(a, in))
		pep_each(items, "item", take_item, a, NULL);
	return true;
}

static void temp_fetched(Account *a, xmpp_stanza_t *answer, int err,
			 void *data)
{
	xmpp_stanza_t *vc = answer ? xmpp_stanza_get_child_by_name_and_ns(
					     answer, "vCard", NS_VCARD_TEMP)
				   : NULL;

	(void)data;
	if (!await_errno(answer, err))
		own_set(a, text_of_temp(vc));
}

static void own_fetched(Account *a, xmpp_stanza_t *answer, int err,
			void *data)
{
	xmpp_stanza_t *items = pep_items(answer), *iq;
	int res = await_errno(answer, err);

	(void)data;
	if (res == -ENOSYS || res == -EHOSTUNREACH) {
		/* no PEP: vcard-temp */
		iq = xmpp_iq_new(a->ctx, "get", NULL);
		acct_add_child(a, iq, "vCard", NS_VCARD_TEMP);
		await_iq(a, iq, acct_cfg(a)->iq_timeout, temp_fetched, NULL,
			 NULL);
		xmpp_stanza_release(iq);
		return;
	}
	if (!res && items)
		pep_each(items, "item", take_item, a, NULL);
	else if (res == -ENOENT)
		own_set(a, g_strdup(""));
}

static void vcard_online(Account *a)
{
	pep_fetch(a, NODE_VCARD4, own_fetched, NULL, NULL);
}

typedef struct {
	PoolReq *r;
	GPtrArray *pairs;   /* parse_text's */
	xmpp_stanza_t *vc;  /* vCard4 (pool thread) */
	char *text;         /* what `vcard` reads once it is set */
	bool temp;          /* sent as vcard-temp */
} Set;

static void set_free(void *data)
{
	Set *s = data;

	if (s->vc)
		xmpp_stanza_release(s->vc);
	if (s->pairs)
		g_ptr_array_unref(s->pairs);
	g_free(s->text);
	g_free(s);
}

/* vCard4 as vcard-temp, for a server without PEP. */
static xmpp_stanza_t *temp_of(Account *a, xmpp_stanza_t *vc)
{
	xmpp_stanza_t *t = xmpp_stanza_new(a->ctx);

	xmpp_stanza_set_name(t, "vCard");
	xmpp_stanza_set_ns(t, NS_VCARD_TEMP);
	for (guint i = 0; i < G_N_ELEMENTS(props); i++)
		for (xmpp_stanza_t *c = xmpp_stanza_get_children(vc); c;
		     c = xmpp_stanza_get_next(c)) {
			g_auto(GStrv) path = NULL;
			g_autofree char *v = NULL;
			if (!xmpp_stanza_is_tag(c) ||
			    strcmp(xmpp_stanza_get_name(c), props[i].el))
				continue;
			v = child_text(c, props[i].type);
			if (!v)
				continue;
			if (!strcmp(props[i].name, "TEL") &&
			    g_str_has_prefix(v, "tel:"))
				memmove(v, v + 4, strlen(v + 4) + 1);
			path = g_strsplit(props[i].temp, "/", 2);
			if (path[1])
				acct_add_text_child(
					a, acct_add_child(a, t, path[0], NULL),
					path[1], v);
			else
				acct_add_text_child(a, t, path[0], v);
		}
	return t;
}

static void set_answered(Account *a, xmpp_stanza_t *answer, int err,
			 void *data)
{
	Set *s = data;
	int res = await_errno(answer, err);
	xmpp_stanza_t *iq;

	if ((res == -ENOSYS || res == -EHOSTUNREACH) && !s->temp) {
		/* no PEP: vcard-temp, the whole card */
		Set *again = g_new0(Set, 1);
		again->r = s->r;
		again->text = g_steal_pointer(&s->text);
		again->vc = xmpp_stanza_copy(s->vc);
		again->temp = true;
		iq = xmpp_iq_new(a->ctx, "set", NULL);
		xmpp_stanza_add_child_ex(iq, temp_of(a, s->vc), 0);
		await_iq(a, iq, acct_cfg(a)->iq_timeout, set_answered, again,
			 set_free);
		xmpp_stanza_release(iq);
		return;
	}
	if (!res)
		own_set(a, g_steal_pointer(&s->text));
	pool_complete(s->r, res);
}

static void set_run(Account *a, void *data, PoolReq *r)
{
	Set *s = data, *mine;

	if (!acct_is_online(a)) {
		pool_complete(r, -ENOTCONN);
		return;
	}
	mine = g_new0(Set, 1);
	mine->r = r;
	mine->vc = vcard4_of(a, s->pairs);
	mine->text = text_of_vcard4(mine->vc);
	pep_publish(a, NODE_VCARD4, "current", mine->vc, PEP_CONTACTS, NULL,
		    set_answered, mine, set_free);
}

int vcard_set_own(Pool *p, Account *a, const char *text)
{
	Set *s;
	int err = 0;

	if (strlen(text) > VCARD_TEXT_MAX)
		return -EFBIG;
	if (!text_is_clean(text, strlen(text), true))
		return -EILSEQ;
	s = g_new0(Set, 1);
	s->pairs = parse_text(text, &err);
	if (!s->pairs) {
		g_free(s);
		return err;
	}
	return pool_call(p, a, set_run, s, set_free);
}

/* ---- a contact's ---- */

/* Shared by the caller and the pool (an atomic reference each): the
 * caller may stop waiting first. */
typedef struct {
	PoolReq *r;
	char *jid;
	char *text; /* the answer */
} Ask;

static void ask_clear(gpointer p)
{
	Ask *k = p;

	g_free(k->jid);
	g_free(k->text);
}

static void ask_unref(gpointer p)
{
	g_atomic_rc_box_release_full(p, ask_clear);
}

static void temp_answered(Account *a, xmpp_stanza_t *answer, int err,
			  void *data)
{
	Ask *k = data;
	xmpp_stanza_t *vc = answer ? xmpp_stanza_get_child_by_name_and_ns(
					     answer, "vCard", NS_VCARD_TEMP)
				   : NULL;
	int res = await_errno(answer, err);

	(void)a;
	/* none (an error from a server or client that keeps none) is an
	 * empty vCard; no answer at all is the error */
	if (res == -ETIMEDOUT || res == -ECONNRESET) {
		pool_complete(k->r, res);
		return;
	}
	k->text = text_of_temp(vc);
	pool_complete(k->r, 0);
}

static void v4_answered(Account *a, xmpp_stanza_t *answer, int err,
			void *data)
{
	Ask *k = data;
	xmpp_stanza_t *item = pep_first_item(answer), *iq;
	xmpp_stanza_t *vc = item ? xmpp_stanza_get_child_by_name_and_ns(
					   item, "vcard", NS_VCARD4)
				 : NULL;
	int res = await_errno(answer, err);

	if (res == -ETIMEDOUT || res == -ECONNRESET) {
		pool_complete(k->r, res);
		return;
	}
	if (vc) {
		k->text = text_of_vcard4(vc);
		pool_complete(k->r, 0);
		return;
	}
	/* none in PEP: the old kind */
	iq = xmpp_iq_new(a->ctx, "get", NULL);
	xmpp_stanza_set_to(iq, k->jid);
	acct_add_child(a, iq, "vCard", NS_VCARD_TEMP);
	await_iq(a, iq, acct_cfg(a)->iq_timeout, temp_answered,
		 g_atomic_rc_box_acquire(k), ask_unref);
	xmpp_stanza_release(iq);
}

static void ask_run(Account *a, void *data, PoolReq *r)
{
	Ask *k = data;
	xmpp_stanza_t *iq, *ps, *items;

	k->r = r;
	if (!acct_is_online(a)) {
		pool_complete(r, -ENOTCONN);
		return;
	}
	iq = xmpp_iq_new(a->ctx, "get", NULL);
	xmpp_stanza_set_to(iq, k->jid);
	ps = acct_add_child(a, iq, "pubsub", NS_PUBSUB);
	items = acct_add_child(a, ps, "items", NULL);
	xmpp_stanza_set_attribute(items, "node", NODE_VCARD4);
	await_iq(a, iq, acct_cfg(a)->iq_timeout, v4_answered,
		 g_atomic_rc_box_acquire(k), ask_unref);
	xmpp_stanza_release(iq);
}

char *vcard_fetch(Pool *p, Account *a, const char *jid, int *err)
{
	Ask *k = g_atomic_rc_box_new0(Ask);
	char *text = NULL;

	k->jid = g_strdup(jid);
	*err = pool_call(p, a, ask_run, g_atomic_rc_box_acquire(k), ask_unref);
	if (!*err)
		text = g_steal_pointer(&k->text);
	ask_unref(k);
	return text;
}

/* ---- the feature ---- */

static void vcard_attach(Account *a, const char *dir)
{
	Vcard *v = vc_of(a);

	(void)dir;
	g_mutex_init(&v->lock);
}

static void vcard_detach(Account *a)
{
	Vcard *v = vc_of(a);

	g_clear_pointer(&v->own, g_free);
	g_mutex_clear(&v->lock);
}

const Feature vcard_feature = {
	.name = "vCard (XEP-0292, XEP-0054)",
	.state_size = sizeof(Vcard),
	.attach = vcard_attach,
	.detach = vcard_detach,
	.online = vcard_online,
};
