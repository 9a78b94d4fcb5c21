/* contacts.h - the roster, presence and subscriptions, as contacts/
 * changes them (contacts.c).  [any]: they wait for the pool thread. */
#pragma once

#include <stdbool.h>

#include "xmpp/pool.h"

/* A change of one roster item (mkdir, rmdir, name, groups). */
typedef struct {
	char *jid;
	bool add;       /* mkdir: new item, then ask for their presence */
	bool remove;    /* rmdir */
	bool set_name;
	char *name;     /* NULL: no name */
	bool set_groups;
	char **groups;
} RosterChange;

/* Change the roster; waits for the server's answer.  0 or -errno. */
int contacts_change(Pool *p, Account *a, const RosterChange *c);
/* Send a subscription presence (subscribe, approve, deny, unsubscribe,
 * cancel); 0, -EINVAL for another word, -ENOTCONN offline. */
int contacts_subscription(Pool *p, Account *a, const char *jid,
			  const char *word);
