package testenv

import (
	"os"
	"testing"
	"time"
)

// Fixed MAC addresses of an RTT bed's veth ends (each in its own
// namespace); the hosts and the router know each other's statically, so
// nobody answers ARP or neighbour discovery for an address it does not hold.
const (
	macLocal      = "02:77:00:00:00:01"
	macRouterSide = "02:77:00:00:00:11" // the router's end facing Local
	macPeer       = "02:77:00:00:00:02"
	macRouterPeer = "02:77:00:00:00:12" // the router's end facing Peer
)

// NewBedRTT creates a bed like NewBed (same namespaces, devices and
// addresses as seen from Local and Peer) whose hosts are joined through a
// third namespace, Router, that delays every packet by rtt/2 each way: a
// round trip of rtt as an internet path would give, which this kernel
// cannot emulate (no netem). In Router, packets from Local are routed (by
// input interface) into a TUN device, held by a delay line (DelayLine: a
// process of its own at real-time priority, bounded at DelayMaxBytes and
// DelayMaxPackets per direction, dropping beyond) and written into a
// second TUN device, from which they are routed on to Peer; the reverse
// direction likewise. The line carries 65–90 MB/s at most here (TestBedRTT
// prints it): enough for limits up to tens of MB/s, not for unlimited
// veth speed.
func NewBedRTT(t testing.TB, rtt time.Duration) *Bed {
	t.Helper()
	RequireRoot(t)
	RequireTool(t, "ip", "nsenter")
	if _, err := os.Stat("/dev/net/tun"); err != nil {
		Skip(t, "needs /dev/net/tun (CONFIG_TUN) for the delay line: %v", err)
	}
	b := newBedNames(t)
	b.Router = UniqueName("ctr")
	t.Cleanup(b.destroy)
	for _, ns := range []string{b.Local, b.Peer, b.Router} {
		Run(t, "ip", "netns", "add", ns)
	}
	ra, rb := UniqueName("ra"), UniqueName("rb")
	ta, tb := UniqueName("ta"), UniqueName("tb")
	Run(t, "ip", "link", "add", b.LocalDev, "address", macLocal, "netns", b.Local, "type", "veth",
		"peer", "name", ra, "address", macRouterSide, "netns", b.Router)
	Run(t, "ip", "link", "add", b.PeerDev, "address", macPeer, "netns", b.Peer, "type", "veth",
		"peer", "name", rb, "address", macRouterPeer, "netns", b.Router)
	b.configureHosts()
	r := func(args ...string) { Run(t, "ip", append([]string{"netns", "exec", b.Router}, args...)...) }
	for _, s := range []string{"net.ipv4.ip_forward=1", "net.ipv6.conf.all.forwarding=1",
		"net.ipv4.conf.all.rp_filter=0", "net.ipv4.conf.default.rp_filter=0", "net.ipv4.conf.all.send_redirects=0"} {
		r("sysctl", "-q", "-w", s)
	}
	line, err := b.startDelayLine(b.Router, ta, tb, rtt/2)
	if err != nil {
		t.Fatalf("delay line in %s: %v", b.Router, err)
	}
	b.Line = line
	for _, dev := range []string{"lo", ra, rb, ta, tb} {
		r("ip", "link", "set", dev, "up")
	}
	for _, fam := range []string{"-4", "-6"} {
		// Local → ra → ta ⇝ (delay) ⇝ tb → rb → Peer, and back.
		r("ip", fam, "rule", "add", "iif", ra, "lookup", "101")
		r("ip", fam, "rule", "add", "iif", rb, "lookup", "102")
		r("ip", fam, "rule", "add", "iif", ta, "lookup", "103")
		r("ip", fam, "rule", "add", "iif", tb, "lookup", "103")
		r("ip", fam, "route", "add", "default", "dev", ta, "table", "101")
		r("ip", fam, "route", "add", "default", "dev", tb, "table", "102")
	}
	r("ip", "route", "add", LocalIP, "dev", ra, "table", "103")
	r("ip", "route", "add", PeerIP, "dev", rb, "table", "103")
	r("ip", "-6", "route", "add", LocalIP6, "dev", ra, "table", "103")
	r("ip", "-6", "route", "add", PeerIP6, "dev", rb, "table", "103")
	for _, n := range [][]string{
		{b.Local, LocalIP, PeerIP, macRouterSide, b.LocalDev}, {b.Local, LocalIP6, PeerIP6, macRouterSide, b.LocalDev},
		{b.Peer, PeerIP, LocalIP, macRouterPeer, b.PeerDev}, {b.Peer, PeerIP6, LocalIP6, macRouterPeer, b.PeerDev},
		{b.Router, "", LocalIP, macLocal, ra}, {b.Router, "", LocalIP6, macLocal, ra},
		{b.Router, "", PeerIP, macPeer, rb}, {b.Router, "", PeerIP6, macPeer, rb},
	} {
		Run(t, "ip", "netns", "exec", n[0], "ip", "neigh", "replace", n[2], "lladdr", n[3], "dev", n[4], "nud", "permanent")
	}
	return b
}
