# Nix derivation: `nix-build packaging/nix` from the repository root (or
# callPackage it from an overlay). The NixOS module is left to the user:
# the helper needs the D-Bus system service, the polkit policy and the
# systemd unit this installs under $out (services.dbus.packages,
# security.polkit, systemd.packages = [ chadthrottle ]).
# packaging/arch_nix_test.go runs installPhase and checks the installed
# files equal the .deb's (packaging/packaging.go Files).
{ lib, buildGoModule, pkg-config, libGL, xorg, makeWrapper, version ? "0.0.0" }:

buildGoModule {
  pname = "chadthrottle";
  inherit version;
  src = lib.cleanSource ../..;
  # Set to the hash nix reports on the first build (fixed-output fetch of
  # the Go modules in go.sum).
  vendorHash = lib.fakeHash;
  subPackages = [ "cmd/chadthrottle" "cmd/chadthrottle-helper" "cmd/chadthrottlectl" ];
  tags = [ "no_emoji" ]; # as make build: without Fyne's emoji font (issue #17)
  ldflags = [ "-X github.com/chadthrottle/chadthrottle/helper/api.Version=${version}" ];
  nativeBuildInputs = [ pkg-config makeWrapper ];
  buildInputs = [ libGL xorg.libX11 xorg.libXcursor xorg.libXrandr xorg.libXinerama xorg.libXi xorg.libXxf86vm ];
  # The binaries from buildPhase are in $GOPATH/bin; install.sh puts them
  # and the desktop, D-Bus, polkit and systemd files in place.
  installPhase = ''
    runHook preInstall
    PREFIX=$out SYSCONFDIR=$out/etc POLKITDIR=$out/share/polkit-1/actions LIVE=false BIN=$GOPATH/bin \
      bash packaging/scripts/install.sh
    runHook postInstall
  '';
  meta = {
    description = "See and limit the network bandwidth of each application (NetLimiter for Linux)";
    homepage = "https://github.com/chadthrottle/chadthrottle";
    license = lib.licenses.mit;
    platforms = lib.platforms.linux;
    mainProgram = "chadthrottle";
  };
}
