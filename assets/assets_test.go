package assets

import (
	"bytes"
	"fmt"
	"image/png"
	"os"
	"testing"
)

// Packaging installs these files; each PNG must be the size its directory
// says.
func TestIcons(t *testing.T) {
	for _, n := range []int{16, 22, 24, 32, 48, 64, 128, 256, 512} {
		path := fmt.Sprintf("icons/hicolor/%[1]dx%[1]d/apps/io.github.chadthrottle.png", n)
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		checkPNG(t, path, b, n)
	}
	checkPNG(t, "tray/normal.png", TrayIcon.Content(), 64)
	checkPNG(t, "tray/limited.png", TrayLimitedIcon.Content(), 64)
	checkPNG(t, "app icon", AppIconPNG.Content(), 256)
	if bytes.Equal(TrayIcon.Content(), TrayLimitedIcon.Content()) {
		t.Error("the limits-active tray icon is the normal one")
	}
	for name, b := range map[string][]byte{"app": AppIcon.Content(), "generic": GenericAppIcon.Content()} {
		if !bytes.Contains(b, []byte("<svg")) {
			t.Errorf("%s icon is not SVG", name)
		}
	}
}

func checkPNG(t *testing.T, name string, b []byte, size int) {
	t.Helper()
	img, err := png.Decode(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	if r := img.Bounds(); r.Dx() != size || r.Dy() != size {
		t.Errorf("%s is %dx%d, want %dx%d", name, r.Dx(), r.Dy(), size, size)
	}
	// not blank: the corner is transparent, the centre is not
	if _, _, _, a := img.At(size/2, size/2).RGBA(); a == 0 {
		t.Errorf("%s: transparent in the middle", name)
	}
}
