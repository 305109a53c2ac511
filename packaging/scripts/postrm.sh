#!/bin/sh
# Package post-removal (deb: remove, purge, upgrade …; rpm: $1 = 0 erase,
# 1 upgrade). Makes the system bus and systemd forget the removed files;
# purge also deletes the rules in /var/lib/chadthrottle.
set -e

case "$1" in
remove | purge | 0)
	rm -rf /run/chadthrottle
	;;
esac
if [ "$1" = purge ]; then
	rm -rf /var/lib/chadthrottle
	# left by `systemctl enable chadthrottle-helper`, if an admin ran it
	rm -f /etc/systemd/system/multi-user.target.wants/chadthrottle-helper.service
fi

if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
	systemctl daemon-reload >/dev/null 2>&1 || true
fi
if command -v dbus-send >/dev/null 2>&1; then
	dbus-send --system --type=method_call --dest=org.freedesktop.DBus \
		/org/freedesktop/DBus org.freedesktop.DBus.ReloadConfig >/dev/null 2>&1 || true
fi
exit 0
