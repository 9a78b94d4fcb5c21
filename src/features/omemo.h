/* omemo.h - OMEMO 0.3 end-to-end encryption of conversations
 * (eu.siacs.conversations.axolotl, as Conversations, Dino, Gajim and
 * profanity speak it), on store/omemo_store.c's keys and sessions: our
 * device list and bundle over PEP, our contacts' followed, messages
 * encrypted on their way out and decrypted on their way into the logs,
 * and what the files contacts/JID/{devices,encryption} and ACCOUNT/omemo
 * show and change (omemo.c). */
#pragma once

#include <glib.h>
#include <stdbool.h>

typedef struct Account Account;

/* [any] Whether the account has OMEMO (config omemo = true, and its
 * store could be opened). */
bool omemo_enabled(Account *a);

/* [any] How a message to @jid goes out now, as the conversation's
 * `encryption` says: *enc NULL (in the clear) or "omemo"; 0, or -ENOKEY
 * when it must be encrypted and no device of @jid is trusted (nothing is
 * sent in the clear then). */
int omemo_send_mode(Account *a, const char *jid, const char **enc);

/* [any] The conversation's `encryption` file: "omemo\n" or "plain\n" (what
 * a message written now does); a write of "omemo", "plain" or "default"
 * (back to the default: omemo when the contact has devices) sets it.
 * -EINVAL for another word, -EOPNOTSUPP for "omemo" without OMEMO,
 * -errno when it cannot be stored. */
char *omemo_mode_text(Account *a, const char *jid);
int omemo_set_mode(Account *a, const char *jid, const char *word);

/* [any] The `devices` file of @jid (our own JID: ACCOUNT/omemo, our own
 * device first, marked "own"): one line per device in @jid's device
 * list, ID<TAB>FINGERPRINT<TAB>TRUST, FINGERPRINT "-" until its key is
 * known; and a write to it: "trust ID" or "distrust ID" (one per line):
 * 0, -EINVAL, -ENOENT (no such device), -EOPNOTSUPP (no OMEMO). */
char *omemo_devices_text(Account *a, const char *jid);
int omemo_devices_write(Account *a, const char *jid, const char *text);
