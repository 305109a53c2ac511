#!/usr/bin/env bash
# Installs the Debian/Ubuntu packages ChadThrottle needs.
#   deps.sh run   what building and running need (make run): the GUI's cgo
#                 build, the bus, polkit, the kernel tools the helper uses, ssh
#   deps.sh       everything: also what the tests, benchmarks, code
#                 generation and packaging checks use (make deps, .ci/run)
set -euo pipefail

RUN=(
  # Fyne's cgo build (GUI binary)
  gcc pkg-config libgl-dev libgl1-mesa-dev libx11-dev libxcursor-dev libxrandr-dev libxinerama-dev libxi-dev libxxf86vm-dev
  # helper: bus, authorization, kernel tools
  dbus polkitd pkexec iproute2 util-linux procps
  # managing another machine over SSH (chadthrottlectl -H)
  openssh-client
  git make ca-certificates
)
TEST=(
  # sshd and systemd-stdio-bridge (from systemd) for the remote tests
  openssh-server systemd
  # GUI end-to-end tests and screenshots; a real tray host (xfce4-panel's status tray)
  xvfb imagemagick x11-utils xdotool xfce4-panel
  # benchmarks and side-by-side comparisons
  iperf3 nethogs trickle curl
  # eBPF code generation (make generate)
  clang llvm libbpf-dev
  # packaging checks
  desktop-file-utils appstream rpm
)

case "${1:-all}" in
  run) PKGS=("${RUN[@]}") ;;
  all) PKGS=("${RUN[@]}" "${TEST[@]}") ;;
  *) echo "usage: deps.sh [run|all]" >&2; exit 2 ;;
esac

missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "deps: all ${#PKGS[@]} packages present"
  exit 0
fi
if ! command -v apt-get >/dev/null; then
  echo "deps: this is not a Debian/Ubuntu system; install the equivalents of: ${missing[*]}" >&2
  exit 1
fi
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO=sudo
echo "deps: installing ${missing[*]}"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
