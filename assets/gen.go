package assets

// PNG icons are generated from the SVGs with the renderer Fyne itself uses;
// the output is committed. Run `go generate ./assets` after editing an SVG.
//go:generate go run ./internal/svg2png -in icons/io.github.chadthrottle.svg -out icons/hicolor/%[1]dx%[1]d/apps/io.github.chadthrottle.png 16 22 24 32 48 64 128 256 512
//go:generate go run ./internal/svg2png -in tray/normal.svg -out tray/normal.png 64
//go:generate go run ./internal/svg2png -in tray/limited.svg -out tray/limited.png 64
