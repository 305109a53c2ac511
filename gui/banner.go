package gui

import (
	"fmt"
	"image/color"
	"strings"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/canvas"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"
	"github.com/chadthrottle/chadthrottle/helper/api"
)

// freezeTime is how long the row order stays put after the person
// interacted with the list.
const freezeTime = 4 * time.Second

// touch keeps rows from re-sorting under the pointer for a moment.
func (u *UI) touch() { u.apps.freezeUntil = time.Now().Add(freezeTime) }

// notify shows a transient message in the banner (UI goroutine).
func (u *UI) notify(msg string) {
	u.bnr.notice = msg
	u.bnr.noticeUntil = time.Now().Add(12 * time.Second)
	u.updateBanner()
}

// bannerMessage is one line of the banner.
type bannerMessage struct {
	text    string
	warn    bool
	dismiss func() // a "Got it" button calls it; nil: no button
}

// bannerMessages lists what the banner shows now, most important first.
func (u *UI) bannerMessages() []bannerMessage {
	var m []bannerMessage
	if u.bnr.notice != "" && time.Now().Before(u.bnr.noticeUntil) {
		m = append(m, bannerMessage{text: u.bnr.notice, warn: true})
	}
	if u.bnr.noTrayNote {
		m = append(m, bannerMessage{text: NoTrayNotice, dismiss: func() {
			u.bnr.noTrayNote = false
			u.updateBanner()
		}})
	}
	if u.conn.state != stateConnected {
		return m
	}
	if u.readOnly() {
		m = append(m, bannerMessage{text: "Read-only: you may watch traffic here, but your account is not allowed to set limits. " +
			"Ask an administrator to grant \"" + api.ActionLimitOwn + "\"."})
	}
	if !u.downloadAvailable() {
		reason := u.conn.status.DownloadReason
		if reason == "" {
			reason = "the helper did not say why"
		}
		m = append(m, bannerMessage{text: "Download limits are not available on this system, so only uploads can be limited. Reason: " + reason, warn: true})
	}
	if u.conn.status.Paused {
		m = append(m, bannerMessage{text: "Limits are paused: apps run at full speed until you resume them."})
	}
	return m
}

func (u *UI) updateBanner() {
	msgs := u.bannerMessages()
	var kb strings.Builder
	for _, m := range msgs {
		fmt.Fprintf(&kb, "%v %v %q;", m.warn, m.dismiss != nil, m.text)
	}
	key := kb.String()
	if key == u.bnr.bannerKey {
		return
	}
	u.bnr.bannerKey = key
	u.bnr.banner.RemoveAll()
	for _, m := range msgs {
		icon := widget.NewIcon(theme.InfoIcon())
		fill := color.NRGBA{R: 0x2f, G: 0x8c, B: 0xf0, A: 0x30}
		if m.warn {
			icon = widget.NewIcon(theme.WarningIcon())
			fill = color.NRGBA{R: 0xff, G: 0x98, B: 0x00, A: 0x38}
		}
		l := widget.NewLabel(m.text)
		l.Wrapping = fyne.TextWrapWord
		bg := canvas.NewRectangle(fill)
		bg.CornerRadius = 4
		var right fyne.CanvasObject
		if m.dismiss != nil {
			right = container.NewCenter(widget.NewButton("Got it", m.dismiss))
		}
		u.bnr.banner.Add(container.NewStack(bg, container.NewBorder(nil, nil, container.NewCenter(icon), right, l)))
	}
	u.root.Refresh() // the banner's height changed: lay out again
}
