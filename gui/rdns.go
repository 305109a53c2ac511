package gui

import (
	"bufio"
	"context"
	"errors"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Bounds of the reverse DNS cache.
const (
	rdnsMax      = 1024             // names kept
	rdnsInFlight = 4                // lookups at once
	rdnsTimeout  = 3 * time.Second  // per lookup
	rdnsTTL      = 10 * time.Minute // a name (or its absence) is asked again after this
)

// rdns turns remote addresses into host names for the connections table:
// lookups run in the background (never on the UI goroutine), at most
// rdnsInFlight at once, answers (and failures) are cached for rdnsTTL, and
// done is called after each answer so the table can show it. Only public
// addresses are asked of DNS; private, loopback, link-local and
// documentation addresses are looked up in /etc/hosts alone, so the
// window sends no query that names the local network (or a test's) to
// the DNS server.
type rdns struct {
	public, local func(ctx context.Context, addr string) ([]string, error)
	done          func()

	mu    sync.Mutex
	cache map[netip.Addr]rdnsEntry
	slots chan struct{}
}

type rdnsEntry struct {
	name    string // "" while pending or when there is none
	pending bool
	at      time.Time
}

func newRDNS(done func()) *rdns {
	hostsOnly := &net.Resolver{PreferGo: true, Dial: func(context.Context, string, string) (net.Conn, error) {
		return nil, errNoDNS
	}}
	return &rdns{public: net.DefaultResolver.LookupAddr, local: hostsOnly.LookupAddr, done: done,
		cache: map[netip.Addr]rdnsEntry{}, slots: make(chan struct{}, rdnsInFlight)}
}

var errNoDNS = errors.New("not asked of DNS")

// documentation are the address blocks for examples (RFC 5737, 3849).
var documentation = []netip.Prefix{
	netip.MustParsePrefix("192.0.2.0/24"), netip.MustParsePrefix("198.51.100.0/24"),
	netip.MustParsePrefix("203.0.113.0/24"), netip.MustParsePrefix("2001:db8::/32"),
}

// public reports whether ip may be asked of DNS.
func public(ip netip.Addr) bool {
	if !ip.IsGlobalUnicast() || ip.IsPrivate() {
		return false
	}
	for _, p := range documentation {
		if p.Contains(ip) {
			return false
		}
	}
	return true
}

// name returns ip's host name if known; otherwise "" and, unless a lookup
// is pending or full, one starts.
func (r *rdns) name(ip netip.Addr) string {
	if !ip.IsValid() || ip.IsUnspecified() {
		return ""
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	e, ok := r.cache[ip]
	if ok && (e.pending || time.Since(e.at) < rdnsTTL) {
		return e.name
	}
	select {
	case r.slots <- struct{}{}:
	default:
		return e.name // busy: ask again on a later refresh
	}
	if len(r.cache) >= rdnsMax {
		r.evictLocked()
	}
	r.cache[ip] = rdnsEntry{name: e.name, pending: true}
	go r.resolve(ip)
	return e.name
}

func (r *rdns) resolve(ip netip.Addr) {
	defer func() { <-r.slots }()
	ctx, cancel := context.WithTimeout(context.Background(), rdnsTimeout)
	lookup := r.local
	if public(ip) {
		lookup = r.public
	}
	names, err := lookup(ctx, ip.String())
	cancel()
	name := ""
	if err == nil && len(names) > 0 {
		name = strings.TrimSuffix(names[0], ".")
	}
	r.mu.Lock()
	r.cache[ip] = rdnsEntry{name: name, at: time.Now()}
	r.mu.Unlock()
	if name != "" && r.done != nil {
		r.done()
	}
}

// evictLocked drops the oldest answered entry.
func (r *rdns) evictLocked() {
	var oldest netip.Addr
	var at time.Time
	for ip, e := range r.cache {
		if !e.pending && (at.IsZero() || e.at.Before(at)) {
			oldest, at = ip, e.at
		}
	}
	delete(r.cache, oldest)
}

// remoteText shows a connection's remote end: the host name when known
// (else the address) and the service its port names, e.g. "dns.google
// (https)", "203.0.113.7:5201".
func (r *rdns) remoteText(remote, proto string) string {
	ap, err := netip.ParseAddrPort(remote)
	if err != nil {
		return remote
	}
	host := ap.Addr().Unmap().String()
	if r != nil {
		if n := r.name(ap.Addr().Unmap()); n != "" {
			host = n
		}
	}
	if svc := serviceName(ap.Port(), proto); svc != "" {
		return host + " (" + svc + ")"
	}
	if ap.Addr().Is6() && !ap.Addr().Is4In6() && host == ap.Addr().String() {
		return "[" + host + "]:" + strconv.Itoa(int(ap.Port()))
	}
	return host + ":" + strconv.Itoa(int(ap.Port()))
}

var (
	servicesOnce sync.Once
	services     map[string]string // "443/tcp" → "https"
)

// wellKnown are names for ports people meet, where /etc/services is
// missing or names them less plainly.
var wellKnown = map[string]string{
	"53/udp": "dns", "53/tcp": "dns", "80/tcp": "http", "443/tcp": "https", "443/udp": "https/QUIC",
	"853/tcp": "dns-over-tls", "123/udp": "ntp", "22/tcp": "ssh", "5353/udp": "mdns", "3478/udp": "stun",
	"51820/udp": "wireguard", "1194/udp": "openvpn", "993/tcp": "imaps", "587/tcp": "submission", "8080/tcp": "http-alt",
}

// serviceName is the service name of port for proto ("tcp", "udp"): the
// well-known ones above, then /etc/services.
func serviceName(port uint16, proto string) string {
	key := strconv.Itoa(int(port)) + "/" + strings.ToLower(proto)
	if s, ok := wellKnown[key]; ok {
		return s
	}
	servicesOnce.Do(func() { services = readServices("/etc/services") })
	return services[key]
}

// readServices reads an /etc/services file: "name port/proto aliases…".
func readServices(path string) map[string]string {
	m := map[string]string{}
	f, err := os.Open(path)
	if err != nil {
		return m
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() && len(m) < 20000 {
		line, _, _ := strings.Cut(s.Text(), "#")
		fields := strings.Fields(line)
		if len(fields) >= 2 {
			if _, ok := m[fields[1]]; !ok {
				m[fields[1]] = fields[0]
			}
		}
	}
	return m
}
