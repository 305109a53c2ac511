// Command svg2png rasterizes an SVG into square PNGs with the same SVG
// renderer Fyne uses (oksvg + rasterx), so the committed PNG icons look like
// the SVG does inside the app. Used by `go generate ./assets`.
//
//	svg2png -in icon.svg -out 'hicolor/%[1]dx%[1]d/apps/name.png' 16 32 48
package main

import (
	"flag"
	"fmt"
	"image"
	"image/png"
	"log"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/fyne-io/oksvg"
	"github.com/srwiley/rasterx"
)

func main() {
	in := flag.String("in", "", "SVG file")
	out := flag.String("out", "", "output path pattern; %[1]d is the size")
	flag.Parse()
	if *in == "" || *out == "" || flag.NArg() == 0 {
		log.Fatal("usage: svg2png -in FILE.svg -out PATTERN SIZE...")
	}
	for _, arg := range flag.Args() {
		size, err := strconv.Atoi(arg)
		if err != nil || size <= 0 || size > 4096 {
			log.Fatalf("size %q: want a number between 1 and 4096", arg)
		}
		path := *out
		if strings.Contains(path, "%") {
			path = fmt.Sprintf(path, size)
		}
		if err := render(*in, path, size); err != nil {
			log.Fatal(err)
		}
	}
}

func render(in, out string, size int) error {
	f, err := os.Open(in)
	if err != nil {
		return fmt.Errorf("open svg: %w", err)
	}
	defer f.Close()
	icon, err := oksvg.ReadIconStream(f)
	if err != nil {
		return fmt.Errorf("parse svg %s: %w", in, err)
	}
	icon.SetTarget(0, 0, float64(size), float64(size))
	img := image.NewNRGBA(image.Rect(0, 0, size, size))
	scanner := rasterx.NewScannerGV(size, size, img, img.Bounds())
	icon.Draw(rasterx.NewDasher(size, size, scanner), 1)
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return fmt.Errorf("create icon dir: %w", err)
	}
	w, err := os.Create(out)
	if err != nil {
		return fmt.Errorf("create png: %w", err)
	}
	if err := png.Encode(w, img); err != nil {
		w.Close()
		return fmt.Errorf("encode %s: %w", out, err)
	}
	return w.Close()
}
