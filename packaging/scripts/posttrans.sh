#!/bin/sh
# rpm %posttrans: at the very end of an rpm upgrade (after the old package's
# %preun stopped the helper, which on rpm runs after the new %post), start
# the new helper again if one ran, so its rules apply again at once. dpkg
# runs the same step at the end of postinst.
if [ -e /run/chadthrottle/restart-after-upgrade ]; then
	rm -f /run/chadthrottle/restart-after-upgrade
	if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
		systemctl start chadthrottle-helper.service >/dev/null 2>&1 || true
	elif command -v dbus-send >/dev/null 2>&1; then
		dbus-send --system --print-reply --dest=io.github.chadthrottle.Helper1 \
			/io/github/chadthrottle/Helper1 org.freedesktop.DBus.Peer.Ping >/dev/null 2>&1 || true
	fi
fi
exit 0
