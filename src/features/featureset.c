/* featureset.c - which features an account has, and in what order the
 * core calls them: the one place that names them (the core, account.c
 * and conn.c, names none; feature.h, dispatch.h).
 *
 * The order matters, and here it is said why. */
#include "features/featureset.h"
#include "features/mam_int.h"
#include "features/muc.h"

#include "xmpp/account.h"
#include "xmpp/await.h"

void featureset_attach(Account *a)
{
	Dispatch *d = acct_dispatch(a);

	/* What a lower file tells a higher one, which it may not call: a
	 * live message logged (mam_seen.c) counts for the catch-up's batch
	 * (mam.c).  The same for every account. */
	mam_seen_on_live(mam_live_logged);
	/* the rooms' logs (muc.c) have read positions too (receipts.c) */
	receipts_on_room_logs(muc_room_hists);

	/* The core's answers awaited (await.c): first, so that at a lost
	 * stream every wait has ended before the features' own cleanup. */
	acct_add_feature(a, &await_feature);
	/* At CONNECT, in this order: */
	acct_add_feature(a, &client_feature);   /* (caps in our presence) */
	acct_add_feature(a, &contacts_feature); /* the roster */
	acct_add_feature(a, &block_feature);    /* the blocklist */
	/* the archive's ids in the logs: what the archive's features read */
	acct_add_feature(a, &archive_ids_feature);
	/* carbons before our presence, so nothing our other clients get
	 * from then on is missed */
	acct_add_feature(a, &carbons_feature);
	/* our presence: the server hands over its offline messages */
	acct_add_feature(a, &acct_presence_feature);
	/* the catch-up after the presence: Prosody neither sends nor deletes
	 * offline messages for a session that queried the archive first */
	acct_add_feature(a, &archive_feature);
	/* the rooms' state, before the rooms (it only holds it) */
	acct_add_feature(a, &room_state_feature);
	acct_add_feature(a, &rooms_feature);    /* rejoin, from the archive */
	/* whether a quiet room still has us: after the rooms, so that at a
	 * turn of the timers their waits have ended first (a room whose
	 * request waits is not pinged) */
	acct_add_feature(a, &room_ping_feature);
	/* what a lost stream left: asked of the archive before it goes out
	 * again (the account says online, and sends, after all of these) */
	acct_add_feature(a, &outbox_check_feature);
	/* (its hooks: a message of ours going out asks for a receipt) */
	acct_add_feature(a, &receipts_feature);
	/* (its hook: a correction, retraction, reaction or reply of ours
	 * carries what says so) */
	acct_add_feature(a, &kinds_feature);
	acct_add_feature(a, &chatstates_feature);
	/* what our other clients read meanwhile: after the catch-up's
	 * records are asked for (archive_feature), so that more of what the
	 * positions name is in the logs */
	acct_add_feature(a, &mds_feature);
	/* the rooms our other clients keep: after the rejoin of ours
	 * (rooms_feature), which the bookmarks then add to or take from */
	acct_add_feature(a, &bookmarks_feature);
	/* our nick and avatar as our other clients left them */
	acct_add_feature(a, &profile_feature);
	acct_add_feature(a, &vcard_feature);
	/* OMEMO: after the rooms (a room's message is theirs to send) */
	acct_add_feature(a, &omemo_feature);
	/* where files go (XEP-0363): looked for at each connect */
	acct_add_feature(a, &upload_feature);
	/* files sent to us, fetched on threads of its own */
	acct_add_feature(a, &files_feature);

	/* A message is offered, in this order, to: */
	dispatch_add(d, IN_MESSAGE, "a page of a room's archive, at a join "
		     "or a gap's fill (muc_archive.c)", muc_archive_in);
	dispatch_add(d, IN_MESSAGE, "a result of our own archive query (mam.c)",
		     mam_result_in);
	dispatch_add(d, IN_MESSAGE, "a carbon copy from our account "
		     "(carbons.c)", carbons_in);
	dispatch_add(d, IN_MESSAGE, "no valid sender: dropped (chat.c)",
		     chat_bad_sender_in);
	dispatch_add(d, IN_MESSAGE, "a room's, an occupant's, or an "
		     "invitation (muc_message.c)", muc_message_in);
	/* a receipt or a marker is no record, and need not wait for the
	 * catch-up (it changes no log) */
	dispatch_add(d, IN_MESSAGE, "what our other clients read, from our "
		     "PEP service (mds.c)", mds_in);
	dispatch_add(d, IN_MESSAGE, "the rooms our other clients keep, from "
		     "our PEP service (bookmarks.c)", bookmarks_in);
	dispatch_add(d, IN_MESSAGE, "a nick or an avatar, ours or a "
		     "contact's, from PEP (profile.c)", profile_in);
	dispatch_add(d, IN_MESSAGE, "our vCard, changed by another client of "
		     "ours, from PEP (vcard.c)", vcard_in);
	dispatch_add(d, IN_MESSAGE, "an OMEMO device list, a contact's or "
		     "ours, from PEP (omemo.c)", omemo_in);
	dispatch_add(d, IN_MESSAGE, "a receipt or a chat marker "
		     "(receipts.c)", receipts_in);
	dispatch_add(d, IN_MESSAGE, "a chat state (chatstates.c)",
		     chatstates_in);
	/* before the conversations: during the catch-up a live message
	 * waits, so that the log keeps the order of arrival */
	dispatch_add(d, IN_MESSAGE, "held while the catch-up runs (mam.c)",
		     mam_hold_in);
	dispatch_add(d, IN_MESSAGE, "a conversation's (chat.c)", chat_in);

	/* A presence: */
	dispatch_add(d, IN_PRESENCE, "no valid sender: dropped (contacts.c)",
		     contacts_bad_sender_in);
	dispatch_add(d, IN_PRESENCE, "a room's or an occupant's "
		     "(muc_presence.c)", muc_presence_in);
	dispatch_add(d, IN_PRESENCE, "an avatar named by hash (XEP-0153): "
		     "looked at, passed on (profile.c)", profile_presence_in);
	dispatch_add(d, IN_PRESENCE, "a contact's, a subscription, an error "
		     "(contacts.c)", contacts_presence_in);

	/* An iq: */
	dispatch_add(d, IN_IQ, "an answer we await, from whom the request "
		     "went to (await.c)", await_in);
	dispatch_add(d, IN_IQ, "no request: nothing to answer (client.c)",
		     client_not_request_in);
	dispatch_add(d, IN_IQ, "a roster push (contacts.c)", contacts_push_in);
	dispatch_add(d, IN_IQ, "a blocklist push (block.c)", block_push_in);
	dispatch_add(d, IN_IQ, "ping, disco#info, version (client.c)",
		     client_answer_in);
	dispatch_add(d, IN_IQ, "anything else: feature-not-implemented "
		     "(client.c)", client_unhandled_in);
}
