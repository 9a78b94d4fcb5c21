/* config_int.h - inside the config reader: what its three files share
 * (config.c reads the file, config_keys.c one group, config_text.c the
 * messages).  Nothing outside them includes it. */
#pragma once

#include <glib.h>

#include "base/config.h"

#define ROOM_PREFIX "room "

/* Set @err to "FILE: msg", "FILE: [group]: msg" or "FILE: [group] key:
 * msg" (@group, @key NULL: left out), forced onto one printable line. */
void G_GNUC_PRINTF(6, 7)
cfg_set_error(GError **err, CfgError code, const char *path,
	      const char *group, const char *key, const char *fmt, ...);
/* @value quoted for a message, cut when long (new). */
char *cfg_shown(const char *value);

void cfg_account_free(CfgAccount *a);
void cfg_room_free(CfgRoom *r);
/* Read one group as an account; its password_command, if any, is handed
 * back in @command for the second pass.  @mode is the file's. */
CfgAccount *cfg_read_account(GKeyFile *kf, const char *path, guint mode,
			     const char *group, char **command, GError **err);
/* Read a group [room ROOM]: only password and nick, with the same checks
 * as an account's (a password needs a file of mode 0600). */
CfgRoom *cfg_read_room(GKeyFile *kf, const char *path, guint mode,
		       const char *group, GError **err);
