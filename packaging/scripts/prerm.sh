#!/bin/sh
# Package pre-removal (deb: remove, upgrade, deconfigure …; rpm: $1 = 0
# erase, 1 upgrade). Stops the helper so the new version starts on the next
# call, or, on removal, so nothing runs the deleted binary. The helper
# answers SIGTERM by removing every qdisc, IFB device, cgroup and BPF
# program it created and moving processes back where they were.
set -e

# (install.sh --uninstall sets CHADTHROTTLE_HELPER for PREFIX installs)
helper=${CHADTHROTTLE_HELPER:-/usr/libexec/chadthrottle/chadthrottle-helper}

# On upgrade, postinst starts the new helper again if one ran (so its rules
# apply again at once); this file tells it so.
restart_mark() {
	case "$1" in
	upgrade | 1) mkdir -p /run/chadthrottle && : >/run/chadthrottle/restart-after-upgrade ;;
	esac
}

if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
	if systemctl is-active --quiet chadthrottle-helper.service 2>/dev/null; then
		restart_mark "${1:-}"
	fi
	systemctl stop chadthrottle-helper.service >/dev/null 2>&1 || true
fi

# Without systemd, dbus-daemon-launch-helper started the helper: ask the bus
# which process owns the name, check it is ours, and stop it.
if command -v dbus-send >/dev/null 2>&1; then
	pid=$(dbus-send --system --print-reply=literal --dest=org.freedesktop.DBus \
		/org/freedesktop/DBus org.freedesktop.DBus.GetConnectionUnixProcessID \
		string:io.github.chadthrottle.Helper1 2>/dev/null | awk '{print $2}') || pid=""
	case "$pid" in
	'' | *[!0-9]*) ;;
	*)
		if [ "$(readlink "/proc/$pid/exe" 2>/dev/null)" = "$helper" ]; then
			restart_mark "${1:-}"
			kill -TERM "$pid" 2>/dev/null || true
			i=0
			# running until it exits (a zombie has exited: its parent,
			# dbus-daemon, reaps it later)
			while [ $i -lt 200 ] && [ -d "/proc/$pid" ] &&
				[ "$(sed 's/.*) //' "/proc/$pid/stat" 2>/dev/null | cut -c1)" != Z ]; do
				sleep 0.1
				i=$((i + 1))
			done
			if [ $i -ge 200 ]; then
				echo "chadthrottle: helper (pid $pid) did not exit within 20 s of SIGTERM; killing it" >&2
				kill -KILL "$pid" 2>/dev/null || true
			fi
		fi
		;;
	esac
fi
exit 0
