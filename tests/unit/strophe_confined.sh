#!/bin/sh
# Only the pool thread may call libstrophe: its calls must be confined to
# the object files of pool.c and the account layer (its core: account.c,
# conn.c, outgoing.c, dispatch.c, sm.c, strophe012.c; its features:
# chat.c, contacts.c, client.c, iqfile.c, mam.c, muc*.c, block.c), whose
# entry points assert
# POOL_ASSERT().  Fails when any other object file of xmppfs references an
# xmpp_* symbol.  Arguments: the directories of xmppfs's object files.
status=0
found=0
objs=$(for d in "$@"; do ls "$d"/*.o 2>/dev/null; done)
for obj in $objs; do
	found=$((found + 1))
	case "$obj" in
	*src_pool.c.o | *src_account.c.o | *src_conn.c.o | *src_outgoing.c.o | \
	*src_dispatch.c.o | *src_sm.c.o | *src_strophe012.c.o | \
	*src_chat.c.o | *src_contacts.c.o | *src_client.c.o | *src_iqfile.c.o | \
	*src_muc.c.o | *src_muc_*.c.o | *src_mam.c.o | *src_block.c.o) continue ;;
	esac
	syms=$(nm -u "$obj" | awk '{print $NF}' | grep '^xmpp_' | tr '\n' ' ')
	if [ -n "$syms" ]; then
		echo "not ok: $obj calls libstrophe: $syms"
		status=1
	fi
done
# Every stanza leaves through sm.c, which counts it for XEP-0198: no other
# file may hand libstrophe anything to send.
for obj in $objs; do
	case "$obj" in *src_sm.c.o) continue ;; esac
	syms=$(nm -u "$obj" | awk '{print $NF}' | grep -E '^xmpp_send' | tr '\n' ' ')
	if [ -n "$syms" ]; then
		echo "not ok: $obj sends around sm.c: $syms"
		status=1
	fi
done
if [ $found -lt 5 ]; then
	echo "not ok: no object files in $*"
	exit 1
fi
[ $status = 0 ] && echo "ok: libstrophe is called only from pool.c and the account layer; stanzas are sent only by sm.c"
exit $status
