#!/usr/bin/env bash
# `make run`: the newcomer's one command. It
#   1. installs missing build dependencies (Debian/Ubuntu, via deps.sh),
#   2. builds bin/chadthrottle, bin/chadthrottle-helper, bin/chadthrottlectl,
#   3. makes the helper available:
#      - with a running system bus: installs the helper and its D-Bus, polkit
#        and systemd files under /usr/local (sudo or pkexec) so the bus starts
#        the helper on the first call (undo with `sudo make uninstall PREFIX=/usr/local`);
#      - without one (containers, minimal systems): starts, as root, a private
#        system-type dbus-daemon, polkitd and the helper on it, and stops them
#        when the window closes,
#   4. opens the window (bin/chadthrottle; --bus ADDRESS for a private bus).
# Environment: RUN_PREFIX (default /usr/local), RUN_SKIP_DEPS=1, RUN_SKIP_BUILD=1
# (use bin/ as it is).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"

say() { echo "run: $*"; }
die() { echo "run: $*" >&2; exit 1; }

# as_root runs a command as root: directly, with sudo, or with pkexec.
as_root() {
	if [ "$(id -u)" -eq 0 ]; then
		"$@"
	elif command -v sudo >/dev/null 2>&1; then
		sudo "$@"
	elif command -v pkexec >/dev/null 2>&1 && [ "${no_pkexec:-}" != 1 ]; then
		pkexec "$@"
	else
		die "this step needs root: run as root or install sudo"
	fi
}

system_bus() {
	command -v dbus-send >/dev/null 2>&1 &&
		dbus-send --system --print-reply --dest=org.freedesktop.DBus /org/freedesktop/DBus \
			org.freedesktop.DBus.GetId >/dev/null 2>&1
}

# The root half of the private-bus mode: run.sh --private-bus RUNDIR UID WATCHPID
if [ "${1:-}" = --private-bus ]; then
	rundir=$2 uid=$3 watch=$4
	policy_dst=/usr/share/polkit-1/actions/io.github.chadthrottle.policy
	rules=/etc/polkit-1/rules.d/49-chadthrottle-make-run.rules
	added_policy=false
	pids=()
	cleanup() {
		trap - EXIT INT TERM
		# helper first: on SIGTERM it removes its kernel state
		for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
			kill -TERM "${pids[i]}" 2>/dev/null || true
			wait "${pids[i]}" 2>/dev/null || true
		done
		rm -f "$rules"
		$added_policy && rm -f "$policy_dst"
		rm -f "$rundir/bus.conf" "$rundir/bus" "$rundir/address"
	}
	trap cleanup EXIT INT TERM

	# polkitd reads actions from /usr/share/polkit-1/actions only
	if ! cmp -s packaging/polkit/io.github.chadthrottle.policy "$policy_dst"; then
		[ -e "$policy_dst" ] || added_policy=true
		install -D -m 0644 packaging/polkit/io.github.chadthrottle.policy "$policy_dst"
	fi
	# Without logind nobody is an "active" user, so allow_active does not
	# apply: let the user who ran make run see traffic and limit their own
	# processes while it runs (removed on exit).
	if [ "$uid" != 0 ]; then
		cat >"$rules" <<RULES
// written by ChadThrottle's make run (private bus mode); removed when it ends
polkit.addRule(function(action, subject) {
    if ((action.id == "io.github.chadthrottle.monitor" ||
         action.id == "io.github.chadthrottle.limit-own") && subject.user == "$(id -nu "$uid")") {
        return polkit.Result.YES;
    }
});
RULES
	fi

	sed -e "s|@LISTEN@|unix:path=$rundir/bus|" -e "s|@POLICY@|$root/packaging/dbus/io.github.chadthrottle.Helper1.conf|" \
		packaging/dbus/private-system-bus.conf >"$rundir/bus.conf"
	dbus-daemon --config-file="$rundir/bus.conf" --nofork --nopidfile --nosyslog &
	pids+=($!)
	addr="unix:path=$rundir/bus"
	export DBUS_SYSTEM_BUS_ADDRESS=$addr
	for _ in $(seq 100); do [ -S "$rundir/bus" ] && break; sleep 0.1; done
	chmod 0666 "$rundir/bus" 2>/dev/null || true # the user's window and polkitd connect
	has_owner() {
		dbus-send --system --print-reply --dest=org.freedesktop.DBus /org/freedesktop/DBus \
			org.freedesktop.DBus.GetNameOwner "string:$1" >/dev/null 2>&1
	}
	/usr/lib/polkit-1/polkitd --no-debug &
	pids+=($!)
	for _ in $(seq 200); do has_owner org.freedesktop.PolicyKit1 && break; sleep 0.1; done
	has_owner org.freedesktop.PolicyKit1 || die "polkitd did not start on the private bus"
	bin/chadthrottle-helper --bus "$addr" &
	pids+=($!)
	for _ in $(seq 200); do has_owner io.github.chadthrottle.Helper1 && break; sleep 0.1; done
	has_owner io.github.chadthrottle.Helper1 || die "the helper did not start (its messages are above)"
	echo "$addr" >"$rundir/address"
	# until the window closes (stop file) or make run goes away
	while [ ! -e "$rundir/stop" ] && kill -0 "$watch" 2>/dev/null; do sleep 0.5; done
	exit 0
fi

# 1. dependencies
if [ "${RUN_SKIP_DEPS:-}" != 1 ]; then
	if command -v apt-get >/dev/null 2>&1; then
		packaging/scripts/deps.sh run
	else
		say "not a Debian/Ubuntu system: install Go 1.26+, gcc, pkg-config, the X11/GL development headers,"
		say "dbus and polkit with your package manager (packaging/scripts/deps.sh lists the Debian names); trying to build anyway"
	fi
fi
if ! command -v go >/dev/null 2>&1; then
	[ -x /usr/local/go/bin/go ] && export PATH=$PATH:/usr/local/go/bin
	command -v go >/dev/null 2>&1 || die "Go is not installed: get Go 1.26 or newer from https://go.dev/dl/ and put it on PATH"
fi

# 2. build
if [ "${RUN_SKIP_BUILD:-}" != 1 ]; then
	say "building (the first build of the window takes a few minutes)"
	make --no-print-directory build
fi

if [ -z "${DISPLAY:-}${WAYLAND_DISPLAY:-}" ]; then
	die "no display (DISPLAY and WAYLAND_DISPLAY are unset), so the window cannot open; run it from a desktop session, or try the CLI: bin/chadthrottlectl --help"
fi

# The tray icon talks to the session bus; without one (a bare X server)
# give the window a private session bus.
gui=(bin/chadthrottle)
if [ -z "${DBUS_SESSION_BUS_ADDRESS:-}" ] && [ ! -S "${XDG_RUNTIME_DIR:-/run/user/$(id -u)}/bus" ] &&
	command -v dbus-run-session >/dev/null 2>&1; then
	gui=(dbus-run-session -- bin/chadthrottle)
fi

# 3. the helper
if system_bus; then
	prefix=${RUN_PREFIX:-/usr/local}
	say "system bus found: installing the helper and its D-Bus, polkit and systemd files under $prefix (as root)"
	as_root env PREFIX="$prefix" BIN="$root/bin" "$root/packaging/scripts/install.sh" >/dev/null
	say "installed; the bus starts the helper on the first call (remove with: sudo make uninstall PREFIX=$prefix)"
	say "opening the window"
	exec "${gui[@]}"
fi

say "no system bus here: starting a private one with polkitd and the helper (as root)"
[ -x /usr/lib/polkit-1/polkitd ] || die "polkitd is missing (Debian package polkitd)"
no_pkexec=1 # pkexec itself needs a system bus
if [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null 2>&1; then sudo -v; fi
rundir=$(mktemp -d /tmp/chadthrottle-run.XXXXXX)
chmod 0755 "$rundir"
as_root "$root/packaging/scripts/run.sh" --private-bus "$rundir" "$(id -u)" "$$" &
rootpid=$!
stop() {
	touch "$rundir/stop" 2>/dev/null || true
	wait "$rootpid" 2>/dev/null || true
	rm -rf "$rundir" 2>/dev/null || true
}
trap stop EXIT
for _ in $(seq 300); do
	[ -s "$rundir/address" ] && break
	kill -0 "$rootpid" 2>/dev/null || die "starting the private bus failed (messages above)"
	sleep 0.1
done
[ -s "$rundir/address" ] || die "the private bus and helper did not come up within 30 s"
addr=$(cat "$rundir/address")
say "helper running on $addr"
say "CLI in another terminal: bin/chadthrottlectl --bus $addr top"
say "opening the window; closing it (Quit in the tray menu) stops the helper and the private bus"
"${gui[@]}" --bus "$addr"
