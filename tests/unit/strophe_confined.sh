#!/bin/sh
# Only the pool thread may call libstrophe: its calls must be confined to
# the object files of src/xmpp/ (the pool and the account's core) and
# src/features/, whose entry points assert POOL_ASSERT().  Fails when any
# other object file of xmppfs (src/base, src/store, src/fs, main.c)
# references an xmpp_* symbol.  Arguments: the directories of xmppfs's
# object files.
status=0
found=0
objs=$(for d in "$@"; do ls "$d"/*.o 2>/dev/null; done)
for obj in $objs; do
	found=$((found + 1))
	case "$obj" in
	*/src_xmpp_*.c.o | */src_features_*.c.o) continue ;;
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
	case "$obj" in */src_xmpp_sm.c.o) continue ;; esac
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
[ $status = 0 ] && echo "ok: libstrophe is called only from src/xmpp and src/features; stanzas are sent only by sm.c"
exit $status
