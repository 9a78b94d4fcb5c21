/* files.c - files sent to the account with a link: fetched, when its
 * `downloads` key is true, into DATA/ACCOUNT/files/CONV/NAME (the mount
 * shows them as contacts/JID/files/NAME and rooms/ROOM/files/NAME).
 *
 * Only https:// links, with the certificate checked as the stream's is,
 * at most `download_max` bytes; on worker threads (never the pool
 * thread: a transfer may take minutes), two at a time.  NAME is the
 * link's last path segment (a name that could walk the tree, or is no
 * clean UTF-8, becomes "file"), made unique with ".1", ".2"...  Each
 * link is fetched once: CONV/.links ("URL<TAB>NAME" lines) remembers
 * those fetched, so the archive's copy of a message, or a remount,
 * fetches nothing again.  A fetch in progress is CONV/.part-XXXXXX and
 * renamed when complete, so files/ never shows half a file.  Pool
 * thread for files_offer; the rest [any] (files.h). */
#include "features/files.h"
#include "features/featureset.h"
#include "xmpp/account_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/aesgcm.h"
#include "base/jid.h"
#include "base/log.h"
#include "xmpp/pool.h"

#define FILES_WORKERS 2
#define FILES_NAME_MAX 200
#define FILES_TIMEOUT_S 30

/* Each account's (Feature.state_size). */
typedef struct {
	char *dir;             /* DATA/ACCOUNT/files (attach) */
	GThreadPool *workers;  /* made at the first offer (pool thread) */
	GMutex lock;           /* around busy and the .links files */
	GHashTable *busy;      /* "CONV\tURL" being fetched */
	gint stopping;         /* atomic: the account goes; transfers stop */
} Files;

const Feature files_feature;

typedef struct {
	Account *a;
	char *conv, *url, *ca_file, *connect_host;
	guint64 max;
	/* an aesgcm:// link (XEP-0454): @url is its https:// one, and the
	 * file is decrypted with these */
	bool aesgcm;
	guint8 key[AESGCM_KEY], iv[16];
	gsize iv_len;
} Fetch;

static Files *fi_of(Account *a)
{
	return acct_state(a, &files_feature);
}

void files_https_opts(Account *a, const char *url, HttpsOpts *o)
{
	const CfgAccount *c = acct_cfg(a);
	const char *domain = strchr(c->jid, '@') + 1;
	const char *host = g_ascii_strncasecmp(url, "https://", 8) ? ""
								   : url + 8;
	gsize n = strcspn(host, ":/?#");

	memset(o, 0, sizeof *o);
	o->ca_file = c->ca_file;
	if (c->host && n == strlen(domain) &&
	    !g_ascii_strncasecmp(host, domain, n))
		o->connect_host = c->host;
}

static char *conv_dir(Account *a, const char *conv)
{
	g_autofree char *name = jid_to_filename(conv);

	return name ? g_build_filename(fi_of(a)->dir, name, NULL) : NULL;
}

/* A file name the mount may show: no path, no dot first (those are ours
 * and the tree's), clean UTF-8. */
static bool name_ok(const char *name)
{
	if (!*name || name[0] == '.' || strlen(name) > FILES_NAME_MAX ||
	    strchr(name, '/') || !g_utf8_validate(name, -1, NULL))
		return false;
	for (const char *c = name; *c; c++)
		if ((guchar)*c < 0x20 || *c == 0x7f)
			return false;
	return true;
}

/* The name a link gives its file. */
static char *name_of(const char *url)
{
	const char *path = strchr(url + 8, '/');
	g_autofree char *seg = NULL, *dec = NULL;
	const char *last;

	if (!path)
		return g_strdup("file");
	seg = g_strndup(path, strcspn(path, "?#"));
	last = strrchr(seg, '/') + 1;
	dec = g_uri_unescape_string(last, "/");
	return dec && name_ok(dec) ? g_steal_pointer(&dec) : g_strdup("file");
}

char *files_path(Account *a, const char *conv, const char *name)
{
	g_autofree char *dir = conv_dir(a, conv);

	return dir && name_ok(name) ? g_build_filename(dir, name, NULL) : NULL;
}

GPtrArray *files_list(Account *a, const char *conv)
{
	g_autofree char *dir = conv_dir(a, conv);
	GPtrArray *names = g_ptr_array_new_with_free_func(g_free);
	GDir *d = dir ? g_dir_open(dir, 0, NULL) : NULL;
	const char *n;

	while (d && (n = g_dir_read_name(d)))
		if (name_ok(n))
			g_ptr_array_add(names, g_strdup(n));
	if (d)
		g_dir_close(d);
	g_ptr_array_sort(names, (GCompareFunc)g_strcmp0);
	return names;
}

/* Under the lock: whether CONV/.links has @url. */
static bool fetched_before(const char *dir, const char *url)
{
	g_autofree char *path = g_build_filename(dir, ".links", NULL);
	g_autofree char *text = NULL;
	g_auto(GStrv) lines = NULL;

	if (!g_file_get_contents(path, &text, NULL, NULL))
		return false;
	lines = g_strsplit(text, "\n", -1);
	for (char **l = lines; *l; l++) {
		const char *tab = strchr(*l, '\t');
		if (tab && (gsize)(tab - *l) == strlen(url) &&
		    !strncmp(*l, url, tab - *l))
			return true;
	}
	return false;
}

/* Under the lock: the fetched file in @tmp becomes @dir/NAME (unique),
 * remembered with its link.  The name, or NULL. */
static char *keep(const char *dir, const char *tmp, const char *url)
{
	g_autofree char *base = name_of(url), *links = NULL;
	char *name = g_strdup(base);
	g_autofree char *path = g_build_filename(dir, name, NULL);
	FILE *f;

	for (guint i = 1; g_file_test(path, G_FILE_TEST_EXISTS) && i < 1000;
	     i++) {
		g_free(name);
		g_free(path);
		name = g_strdup_printf("%s.%u", base, i);
		path = g_build_filename(dir, name, NULL);
	}
	if (g_file_test(path, G_FILE_TEST_EXISTS) || rename(tmp, path)) {
		g_free(name);
		return NULL;
	}
	links = g_build_filename(dir, ".links", NULL);
	if ((f = fopen(links, "a"))) {
		fprintf(f, "%s\t%s\n", url, name);
		fclose(f);
	}
	return name;
}

static int progress(guint64 done, guint64 total, void *data)
{
	(void)done;
	(void)total;
	return g_atomic_int_get(&((Files *)data)->stopping) ? -ECANCELED : 0;
}

static void fetch_free(Fetch *f)
{
	explicit_bzero(f->key, sizeof f->key);
	g_free(f->conv);
	g_free(f->url);
	g_free(f->ca_file);
	g_free(f->connect_host);
	g_free(f);
}

static void fetch_run(gpointer data, gpointer user)
{
	Fetch *f = data;
	Files *fs = user;
	g_autofree char *dir = conv_dir(f->a, f->conv), *tmp = NULL;
	g_autofree char *name = NULL, *text = NULL, *key = NULL;
	g_autoptr(GError) err = NULL;
	HttpsOpts o = {.ca_file = f->ca_file, .connect_host = f->connect_host,
		       .timeout_s = FILES_TIMEOUT_S};
	struct stat st;
	int fd, ret;

	key = g_strdup_printf("%s\t%s", f->conv, f->url);
	if (!dir || g_mkdir_with_parents(dir, 0700)) {
		ret = -errno;
		goto out;
	}
	tmp = g_build_filename(dir, ".part-XXXXXX", NULL);
	fd = g_mkstemp_full(tmp, O_RDWR | O_CLOEXEC, 0600);
	if (fd < 0) {
		ret = -errno;
		goto out;
	}
	ret = https_get(&o, f->url, fd, f->max + (f->aesgcm ? AESGCM_TAG : 0),
			progress, fs, &err);
	if (!ret && f->aesgcm) {
		/* the ciphertext is read from its unlinked file into the
		 * one kept; one that does not authenticate is not kept */
		g_autofree char *ctmp = g_steal_pointer(&tmp);
		int cfd = fd;
		tmp = g_build_filename(dir, ".part-XXXXXX", NULL);
		fd = g_mkstemp_full(tmp, O_RDWR | O_CLOEXEC, 0600);
		unlink(ctmp);
		if (fd < 0) {
			ret = -errno;
			close(cfd);
			goto out;
		}
		ret = aesgcm_decrypt_fd(cfd, fd, f->key, f->iv, f->iv_len);
		close(cfd);
		if (ret == -EBADMSG)
			g_set_error_literal(&err, G_FILE_ERROR, G_FILE_ERROR_FAILED,
					    "does not authenticate: altered or "
					    "corrupt, or not the file the "
					    "link's key is for");
	}
	if (!ret && fstat(fd, &st))
		ret = -errno;
	close(fd);
	if (!ret) {
		g_mutex_lock(&fs->lock);
		name = keep(dir, tmp, f->url);
		g_mutex_unlock(&fs->lock);
		if (!name)
			ret = -EIO;
	}
out:
	if (tmp && (ret || !name))
		unlink(tmp);
	if (!ret)
		text = g_strdup_printf("%s, %lld bytes", name,
				       (long long)st.st_size);
	else if (ret != -ECANCELED)
		text = g_strdup_printf("%s: not downloaded: %s", f->url,
				       err ? err->message : g_strerror(-ret));
	if (text)
		acct_event(f->a, "download", f->conv, text);
	g_mutex_lock(&fs->lock);
	g_hash_table_remove(fs->busy, key);
	g_mutex_unlock(&fs->lock);
	fetch_free(f);
}

void files_offer(Account *a, const char *conv, const char *url)
{
	Files *fs = fi_of(a);
	const CfgAccount *c = acct_cfg(a);
	g_autofree char *dir = conv_dir(a, conv);
	g_autofree char *key = g_strdup_printf("%s\t%s", conv, url);
	g_autofree char *https = NULL;
	Fetch aes = {0};
	HttpsOpts o;
	Fetch *f;
	bool again;

	POOL_ASSERT();
	if (!c->downloads || !dir || g_atomic_int_get(&fs->stopping))
		return;
	if (g_str_has_prefix(url, "aesgcm://")) {
		if (!aesgcm_url_parse(url, &https, aes.iv, &aes.iv_len,
				      aes.key))
			return;
		aes.aesgcm = true;
		url = https; /* (the key never goes to .links or an event) */
		g_free(key);
		key = g_strdup_printf("%s\t%s", conv, url);
	}
	g_mutex_lock(&fs->lock);
	again = g_hash_table_contains(fs->busy, key) ||
		fetched_before(dir, url);
	if (!again)
		g_hash_table_add(fs->busy, g_strdup(key));
	g_mutex_unlock(&fs->lock);
	if (again)
		return;
	if (!fs->workers)
		fs->workers = g_thread_pool_new_full(
			fetch_run, fs, (GDestroyNotify)fetch_free,
			FILES_WORKERS, FALSE, NULL);
	files_https_opts(a, url, &o);
	f = g_new0(Fetch, 1);
	f->a = a;
	f->conv = g_strdup(conv);
	f->url = g_strdup(url);
	f->ca_file = g_strdup(o.ca_file);
	f->connect_host = g_strdup(o.connect_host);
	f->max = c->download_max;
	f->aesgcm = aes.aesgcm;
	memcpy(f->key, aes.key, sizeof f->key);
	memcpy(f->iv, aes.iv, sizeof f->iv);
	f->iv_len = aes.iv_len;
	explicit_bzero(aes.key, sizeof aes.key);
	g_thread_pool_push(fs->workers, f, NULL);
}

static void files_attach(Account *a, const char *dir)
{
	Files *fs = fi_of(a);

	g_mutex_init(&fs->lock);
	fs->busy = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
	fs->dir = g_build_filename(dir, "files", NULL);
}

static void files_detach(Account *a)
{
	Files *fs = fi_of(a);

	/* what is being fetched stops (its next piece), what waits is
	 * dropped; the account is freed only after */
	g_atomic_int_set(&fs->stopping, 1);
	if (fs->workers)
		g_thread_pool_free(fs->workers, TRUE, TRUE);
	g_clear_pointer(&fs->busy, g_hash_table_unref);
	g_clear_pointer(&fs->dir, g_free);
	g_mutex_clear(&fs->lock);
}

const Feature files_feature = {
	.name = "files fetched (XEP-0066)",
	.state_size = sizeof(Files),
	.attach = files_attach,
	.detach = files_detach,
};
