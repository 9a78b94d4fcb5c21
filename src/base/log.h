/* log.h - xmppfs's own log: stderr in the foreground, syslog as a daemon.
 * Safe from any thread. */
#pragma once

#include <glib.h>
#include <stdbool.h>
#include <syslog.h>

/* @foreground: write to stderr (else syslog); @xml: -d, log the XML stream */
void xfs_log_init(bool foreground, bool xml);
/* True when -d asked for the XML stream. */
bool xfs_log_xml(void);
void xfs_log(int prio, const char *fmt, ...) G_GNUC_PRINTF(2, 3);

#define xfs_err(...) xfs_log(LOG_ERR, __VA_ARGS__)
#define xfs_warn(...) xfs_log(LOG_WARNING, __VA_ARGS__)
#define xfs_info(...) xfs_log(LOG_INFO, __VA_ARGS__)
#define xfs_debug(...) xfs_log(LOG_DEBUG, __VA_ARGS__)
