#!/bin/sh
# Package post-install (deb: "configure" …; rpm: $1 = 1 install, 2 upgrade).
# Makes the system bus and systemd see the new files and restarts a helper
# that ran before an upgrade; each step is skipped when that daemon is not
# running and never fails the installation.
set -e

install -d -m 0700 /var/lib/chadthrottle

if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
	systemctl daemon-reload >/dev/null 2>&1 || true
fi
if command -v dbus-send >/dev/null 2>&1; then
	# dbus-daemon also notices new files itself; asking does no harm.
	dbus-send --system --type=method_call --dest=org.freedesktop.DBus \
		/org/freedesktop/DBus org.freedesktop.DBus.ReloadConfig >/dev/null 2>&1 || true
fi

# prerm stopped a running helper for the upgrade: start the new one, which
# applies the rules again (through systemd, or by calling it on the bus).
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
