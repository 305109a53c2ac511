#!/usr/bin/env bash
# `make install` / `make uninstall`: copies the built binaries and the
# system files into $DESTDIR$PREFIX (the same files as the .deb/.rpm;
# packaging/packaging.go lists them and a test compares).
#   usage: packaging/scripts/install.sh [--uninstall]
#   env:   DESTDIR (staging root, default none), PREFIX (default /usr),
#          SYSCONFDIR (default /etc), BIN (built binaries, default bin),
#          POLKITDIR (default /usr/share/polkit-1/actions), LIVE (true/false:
#          stop a running helper and reload daemons; default true without
#          DESTDIR — a Nix build sets PREFIX=$out and LIVE=false)
# D-Bus activation and systemd find the helper with PREFIX=/usr or /usr/local.
# Two files go where their daemon reads them whatever PREFIX is: the polkit
# actions into /usr/share/polkit-1/actions, and with a PREFIX other than /usr
# the bus policy into $SYSCONFDIR/dbus-1/system.d.
# With no DESTDIR, it also stops a running helper (uninstall, reinstall)
# and asks the system bus and systemd to reload.
set -euo pipefail
cd "$(dirname "$0")/../.."

DESTDIR=${DESTDIR:-}
PREFIX=${PREFIX:-/usr}
PREFIX=${PREFIX%/}
SYSCONFDIR=${SYSCONFDIR:-/etc}
BIN=${BIN:-bin}
POLKITDIR=${POLKITDIR:-/usr/share/polkit-1/actions}
uninstall=false
[ "${1:-}" = --uninstall ] && uninstall=true

helper="$PREFIX/libexec/chadthrottle/chadthrottle-helper"
if [ "$PREFIX" = /usr ]; then busconf=/usr/share/dbus-1/system.d; else busconf="$SYSCONFDIR/dbus-1/system.d"; fi
sizes=(16 22 24 32 48 64 128 256 512)

# files: mode, source, destination (without DESTDIR)
files=(
	0755 "$BIN/chadthrottle" "$PREFIX/bin/chadthrottle"
	0755 "$BIN/chadthrottlectl" "$PREFIX/bin/chadthrottlectl"
	0755 "$BIN/chadthrottle-helper" "$helper"
	0644 packaging/dbus/io.github.chadthrottle.Helper1.conf "$busconf/io.github.chadthrottle.Helper1.conf"
	0644 packaging/dbus/io.github.chadthrottle.Helper1.service "$PREFIX/share/dbus-1/system-services/io.github.chadthrottle.Helper1.service"
	0644 packaging/systemd/chadthrottle-helper.service "$PREFIX/lib/systemd/system/chadthrottle-helper.service"
	0644 packaging/polkit/io.github.chadthrottle.policy "$POLKITDIR/io.github.chadthrottle.policy"
	0644 packaging/desktop/io.github.chadthrottle.desktop "$PREFIX/share/applications/io.github.chadthrottle.desktop"
	0644 packaging/metainfo/io.github.chadthrottle.metainfo.xml "$PREFIX/share/metainfo/io.github.chadthrottle.metainfo.xml"
	0644 assets/icons/io.github.chadthrottle.svg "$PREFIX/share/icons/hicolor/scalable/apps/io.github.chadthrottle.svg"
	0644 packaging/man/chadthrottle.1 "$PREFIX/share/man/man1/chadthrottle.1"
	0644 packaging/man/chadthrottlectl.1 "$PREFIX/share/man/man1/chadthrottlectl.1"
	0644 packaging/man/chadthrottle-helper.8 "$PREFIX/share/man/man8/chadthrottle-helper.8"
	0644 packaging/completion/chadthrottlectl.bash "$PREFIX/share/bash-completion/completions/chadthrottlectl"
	0644 packaging/completion/_chadthrottlectl "$PREFIX/share/zsh/vendor-completions/_chadthrottlectl"
	0644 packaging/completion/chadthrottlectl.fish "$PREFIX/share/fish/vendor_completions.d/chadthrottlectl.fish"
	0644 LICENSE "$PREFIX/share/doc/chadthrottle/copyright"
	0644 packaging/autostart/io.github.chadthrottle.desktop "$SYSCONFDIR/xdg/autostart/io.github.chadthrottle.desktop"
)
for n in "${sizes[@]}"; do
	files+=(0644 "assets/icons/hicolor/${n}x${n}/apps/io.github.chadthrottle.png" "$PREFIX/share/icons/hicolor/${n}x${n}/apps/io.github.chadthrottle.png")
done

live=false
[ -z "$DESTDIR" ] && live=true
[ -n "${LIVE:-}" ] && live=$LIVE

reload() {
	$live || return 0
	if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
		systemctl daemon-reload || true
	fi
	if command -v dbus-send >/dev/null 2>&1; then
		dbus-send --system --type=method_call --dest=org.freedesktop.DBus \
			/org/freedesktop/DBus org.freedesktop.DBus.ReloadConfig >/dev/null 2>&1 || true
	fi
	if command -v gtk-update-icon-cache >/dev/null 2>&1; then
		gtk-update-icon-cache -q -t "$PREFIX/share/icons/hicolor" 2>/dev/null || true
	fi
}

stop_helper() {
	$live || return 0
	CHADTHROTTLE_HELPER="$helper" sh packaging/scripts/prerm.sh remove
}

if $uninstall; then
	stop_helper
	for ((i = 0; i < ${#files[@]}; i += 3)); do
		dst="$DESTDIR${files[i + 2]}"
		if [ -e "$dst" ] || [ -L "$dst" ]; then
			rm -f "$dst"
			echo "removed $dst"
		fi
	done
	rmdir "$DESTDIR$PREFIX/libexec/chadthrottle" "$DESTDIR$PREFIX/share/doc/chadthrottle" 2>/dev/null || true
	reload
	exit 0
fi

for ((i = 0; i < ${#files[@]}; i += 3)); do
	[ -f "${files[i + 1]}" ] || { echo "install: ${files[i + 1]} is missing (make build builds the binaries)" >&2; exit 1; }
done
stop_helper
for ((i = 0; i < ${#files[@]}; i += 3)); do
	mode=${files[i]} src=${files[i + 1]} dst="$DESTDIR${files[i + 2]}"
	install -D -m "$mode" "$src" "$dst"
	case "$src" in
	*.service)
		# the helper's path follows PREFIX
		sed -i -E "s#^(Exec|ExecStart)=/usr/libexec/chadthrottle/chadthrottle-helper( |\$)#\1=$helper\2#" "$dst"
		;;
	esac
	echo "installed $dst"
done
reload
