package main

import (
	"bytes"
	"os"
	"regexp"
	"strings"
	"testing"
)

// TestNoEmojiFont: the GUI is built with no_emoji (issue #17: Fyne parses
// its bundled 4 MB emoji font once per text style, ~9 MB of live heap for a
// font the window does not need) by make build, the Nix derivation and the
// tests' own builds, so the binary the tests run is the one users get.
func TestNoEmojiFont(t *testing.T) {
	mk, err := os.ReadFile("../../Makefile")
	if err != nil {
		t.Fatal(err)
	}
	tags := regexp.MustCompile(`(?m)^BUILD_TAGS\s*:=\s*\$\(strip ([^$)]*)`).FindSubmatch(mk)
	if tags == nil || strings.Join(strings.Fields(string(tags[1])), " ") != prodTags {
		t.Errorf("Makefile: want BUILD_TAGS := $(strip %s $(TAGS)), found %q", prodTags, tags)
	}
	if !regexp.MustCompile(`(?m)^\t\$\(GO\) build -tags '\$\(BUILD_TAGS\)' .*\./cmd/chadthrottle `).Match(mk) {
		t.Error("Makefile: make build does not build the GUI with -tags '$(BUILD_TAGS)'")
	}
	nix, err := os.ReadFile("../../packaging/nix/default.nix")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(nix, []byte(`tags = [ "`+prodTags+`" ];`)) {
		t.Errorf("packaging/nix/default.nix does not build with tags = [ %q ]", prodTags)
	}
	bin, err := os.ReadFile(buildGUI(t))
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(bin, []byte("EmojiOneColor")) {
		t.Error("the GUI binary the tests build contains Fyne's emoji font")
	}
}
