/* errmap.h - the one table from XMPP stanza error conditions (RFC 6120
 * §8.3.3) to errno values.  Pure. */
#pragma once

/* A positive errno for @condition; EIO for one it does not know. */
int errmap_condition(const char *condition);
