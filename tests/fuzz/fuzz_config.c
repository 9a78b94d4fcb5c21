/* fuzz_config.c - arbitrary bytes as a key file.
 *
 * Mode 0600, so a password key is accepted and the input reaches every
 * check.  Commands are switched off before the first input: a fuzzer that
 * could run password_command would run whatever shell line it mutated. */
#include "base/config.h"

#include <stdint.h>
#include <string.h>

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	cfg_allow_commands = false;
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	g_autoptr(GError) err = NULL;
	g_autoptr(CfgFile) cfg = NULL;

	/* Belt and braces: never depend on the initializer having run. */
	cfg_allow_commands = false;
	cfg = cfg_load_data((const char *)data, size, "fuzz.conf", 0600, &err);
	if (cfg) {
		g_assert_null(err);
		g_assert_cmpuint(cfg->accounts->len, >, 0);
		for (guint i = 0; i < cfg->accounts->len; i++) {
			const CfgAccount *a = cfg->accounts->pdata[i];

			g_assert_nonnull(a->jid);
			g_assert_nonnull(a->password);
			g_assert_nonnull(a->resource);
			g_assert_nonnull(a->nick);
		}
		return 0;
	}
	/* Every error is one line that names the file. */
	g_assert_nonnull(err);
	g_assert_true(g_str_has_prefix(err->message, "fuzz.conf: "));
	g_assert_null(strchr(err->message, '\n'));
	return 0;
}
