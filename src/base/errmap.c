/* errmap.c - see errmap.h. */
#include "base/errmap.h"

#include <errno.h>
#include <glib.h>

static const struct {
	const char *condition;
	int err;
} map[] = {
	{"bad-request", EINVAL},
	{"conflict", EEXIST},
	{"feature-not-implemented", ENOSYS},
	{"forbidden", EACCES},
	{"gone", ENOENT},
	{"internal-server-error", EIO},
	{"item-not-found", ENOENT},
	{"jid-malformed", EINVAL},
	{"not-acceptable", EINVAL},
	{"not-allowed", EPERM},
	{"not-authorized", EACCES},
	{"policy-violation", EPERM},
	{"recipient-unavailable", EHOSTUNREACH},
	{"redirect", EREMOTE},
	{"registration-required", EACCES},
	{"remote-server-not-found", EHOSTUNREACH},
	{"remote-server-timeout", ETIMEDOUT},
	{"resource-constraint", EBUSY},
	{"service-unavailable", EHOSTUNREACH},
	{"subscription-required", EACCES},
	{"undefined-condition", EIO},
	{"unexpected-request", EPROTO},
};

int errmap_condition(const char *condition)
{
	for (guint i = 0; condition && i < G_N_ELEMENTS(map); i++)
		if (g_str_equal(map[i].condition, condition))
			return map[i].err;
	return EIO;
}
