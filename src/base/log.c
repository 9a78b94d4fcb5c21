/* log.c - see log.h.  One line per call, written with one write(2) so
 * lines of different threads never mix. */
#include "base/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static bool log_foreground = true;
static bool log_xml;

void xfs_log_init(bool foreground, bool xml)
{
	log_foreground = foreground;
	log_xml = xml;
	if (!foreground)
		openlog("xmppfs", LOG_PID, LOG_DAEMON);
}

bool xfs_log_xml(void)
{
	return log_xml;
}

static const char *prio_word(int prio)
{
	switch (prio) {
	case LOG_ERR:
		return "error: ";
	case LOG_WARNING:
		return "warning: ";
	case LOG_DEBUG:
		return "debug: ";
	default:
		return "";
	}
}

void xfs_log(int prio, const char *fmt, ...)
{
	va_list ap;
	g_autofree char *msg = NULL;

	if (prio == LOG_DEBUG && !log_xml)
		return;
	va_start(ap, fmt);
	msg = g_strdup_vprintf(fmt, ap);
	va_end(ap);
	if (!log_foreground) {
		syslog(prio, "%s", msg);
		return;
	}
	g_autofree char *line = g_strdup_printf("xmppfs: %s%s\n",
						prio_word(prio), msg);
	if (write(STDERR_FILENO, line, strlen(line)) < 0) {
		/* nowhere left to report it */
	}
}
