#!/bin/sh
# install_check.sh BUILD PREFIX BINDIR MANDIR - meson install into a
# scratch DESTDIR puts xmppfs, xmppfs(1) and the systemd user unit where
# they belong, and the unit starts the installed binary.
set -u
build=$1 prefix=$2 bindir=$3 mandir=$4
dest=$(mktemp -d)
trap 'rm -rf "$dest"' EXIT
case $bindir in /*) ;; *) bindir=$prefix/$bindir ;; esac
case $mandir in /*) ;; *) mandir=$prefix/$mandir ;; esac
if ! meson install -C "$build" --destdir "$dest" --no-rebuild >"$dest.log" 2>&1; then
	echo "not ok: meson install failed:"
	cat "$dest.log"
	rm -f "$dest.log"
	exit 1
fi
rm -f "$dest.log"
status=0
unit=$dest$prefix/lib/systemd/user/xmppfs@.service
for f in "$dest$bindir/xmppfs" "$dest$mandir/man1/xmppfs.1" "$unit"; do
	if [ ! -f "$f" ]; then
		echo "not ok: not installed: ${f#$dest}"
		status=1
	fi
done
if [ -x "$dest$bindir/xmppfs" ] && ! "$dest$bindir/xmppfs" --version >/dev/null; then
	echo "not ok: the installed xmppfs does not run"
	status=1
fi
if [ -f "$unit" ]; then
	if ! grep -q "^ExecStart=$bindir/xmppfs -f %h/%I\$" "$unit"; then
		echo "not ok: the unit does not start $bindir/xmppfs:"
		grep '^Exec' "$unit"
		status=1
	fi
	if grep -q '@BINDIR@' "$unit"; then
		echo "not ok: @BINDIR@ left in the unit"
		status=1
	fi
	if command -v systemd-analyze >/dev/null 2>&1; then
		# the unit file's syntax; only the binary is not where the
		# unit will find it once installed for real
		out=$(systemd-analyze verify --man=no "$unit" 2>&1 |
		      grep -v 'is not executable')
		if [ -n "$out" ]; then
			echo "not ok: systemd-analyze verify: $out"
			status=1
		fi
	fi
fi
[ $status = 0 ] && echo "ok: xmppfs, xmppfs(1) and xmppfs@.service installed under $prefix"
exit $status
