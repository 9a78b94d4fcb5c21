/* receipts.h - delivery receipts and chat markers (XEP-0184, XEP-0333), as
 * contacts/JID/delivered and displayed show them (receipts.c). */
#pragma once

typedef struct Account Account;

/* [any] "ID\n": the id of the last message of ours @jid's client said
 * arrived (delivered) or showed (displayed); "" for none yet. */
char *receipts_delivered_text(Account *a, const char *jid);
char *receipts_displayed_text(Account *a, const char *jid);
