package gui

import (
	"context"
	"fmt"
	"net/netip"
	"sync/atomic"
	"testing"
	"time"

	"fyne.io/fyne/v2/widget"

	"github.com/chadthrottle/chadthrottle/helper/api"
)

// TestRemoteNames: the connections table shows a remote end's host name
// once the background lookup answers (here 127.0.0.1 → localhost, from
// /etc/hosts by Go's real resolver: loopback is never asked of DNS) and
// the service its port names; an address without a name keeps its number.
func TestRemoteNames(t *testing.T) {
	fx := newFixture(t, testApps())
	fx.fake.SetDetails(api.AppDetails{
		App: api.App{ID: "1000:/usr/bin/firefox", Name: "Firefox"},
		Connections: []api.Connection{
			{PID: 21, Proto: "tcp", Local: "127.0.0.1:40000", Remote: "127.0.0.1:443"},
			{PID: 21, Proto: "udp", Local: "10.0.0.2:40001", Remote: "10.77.0.9:5201"},
		},
	})
	fx.ui.apps.list.Select(fx.ui.view.index("1000:/usr/bin/firefox"))
	fx.poll()
	d := fx.ui.det
	cell := func(row int) string {
		l := widget.NewLabel("")
		d.connCell(widget.TableCellID{Row: row, Col: 2}, l)
		return l.Text
	}
	deadline := time.Now().Add(5 * time.Second)
	for cell(0) != "localhost (https)" {
		if time.Now().After(deadline) {
			t.Fatalf("remote 127.0.0.1:443 shows %q, want localhost (https)", cell(0))
		}
		fx.drain()
		time.Sleep(20 * time.Millisecond)
	}
	if got := cell(1); got != "10.77.0.9:5201" {
		t.Errorf("a private address without a hosts entry shows %q", got)
	}
}

// TestRDNSBounds: only public addresses go to DNS; lookups are at most
// rdnsInFlight at once, answers are cached (one lookup per address), the
// cache holds at most rdnsMax names.
func TestRDNSBounds(t *testing.T) {
	for ip, want := range map[string]bool{"8.8.8.8": true, "2606:4700::1111": true, "10.1.2.3": false, "127.0.0.1": false,
		"203.0.113.7": false, "2001:db8::1": false, "fe80::1": false, "192.168.1.1": false} {
		if got := public(netip.MustParseAddr(ip)); got != want {
			t.Errorf("public(%s) = %v", ip, got)
		}
	}
	var calls, inFlight, most atomic.Int64
	release := make(chan struct{})
	r := newRDNS(nil)
	r.public = func(ctx context.Context, addr string) ([]string, error) {
		calls.Add(1)
		n := inFlight.Add(1)
		for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
		}
		<-release
		inFlight.Add(-1)
		return []string{"host-" + addr + "."}, nil
	}
	ip := func(i int) netip.Addr { return netip.MustParseAddr(fmt.Sprintf("8.8.%d.%d", i/250, i%250+1)) }
	for i := 0; i < 10; i++ {
		r.name(ip(i))
	}
	close(release)
	time.Sleep(200 * time.Millisecond)
	if most.Load() > rdnsInFlight {
		t.Errorf("%d lookups at once, at most %d allowed", most.Load(), rdnsInFlight)
	}
	if got := r.name(ip(0)); got != "host-8.8.0.1" {
		t.Errorf("name %q", got)
	}
	before := calls.Load()
	r.name(ip(0))
	if calls.Load() != before {
		t.Error("a cached name was looked up again")
	}
	for i := 0; i < rdnsMax+200; i++ {
		r.name(ip(i))
		for len(r.slots) == rdnsInFlight {
			time.Sleep(time.Millisecond)
		}
	}
	time.Sleep(100 * time.Millisecond)
	r.mu.Lock()
	n := len(r.cache)
	r.mu.Unlock()
	if n > rdnsMax {
		t.Errorf("cache holds %d, at most %d", n, rdnsMax)
	}
}
