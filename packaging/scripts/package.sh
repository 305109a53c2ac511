#!/usr/bin/env bash
# Builds dist/chadthrottle_<version>_<arch>.deb and dist/chadthrottle-<version>.<arch>.rpm
# with nfpm (pinned in the tools module packaging/tools/go.mod, kept out of
# the product's go.mod) from the binaries in $BIN
# (default bin/, which `make package` builds first).
#   usage: packaging/scripts/package.sh [VERSION]     env: BIN, DIST, FORMATS ("deb rpm"), GO
set -euo pipefail
cd "$(dirname "$0")/../.."

GO=${GO:-go}
BIN=${BIN:-bin}
DIST=${DIST:-dist}
FORMATS=${FORMATS:-deb rpm}
raw=${1:-${VERSION:-dev}}
raw=${raw#v}
# deb and rpm versions start with a digit and rpm's cannot contain '-':
# v1.2.3 -> 1.2.3, v1.2.3-4-gabc -> 1.2.3.4.gabc, 33c1750-dirty -> 0~git.33c1750.dirty
if [[ $raw =~ ^[0-9]+\.[0-9]+ ]]; then VERSION=${raw//-/.}; else VERSION="0~git.${raw//-/.}"; fi
ARCH=${ARCH:-$($GO env GOARCH)}
export VERSION ARCH BIN

for b in chadthrottle chadthrottlectl chadthrottle-helper; do
	[ -x "$BIN/$b" ] || { echo "package: $BIN/$b is missing; run make build first" >&2; exit 1; }
done
mkdir -p "$DIST"
for f in $FORMATS; do
	$GO tool -modfile=packaging/tools/go.mod nfpm package -f packaging/nfpm.yaml -p "$f" -t "$DIST/"
done
