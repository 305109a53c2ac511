//go:build linux

package tc

import (
	"errors"
	"fmt"
	"sort"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// The interfaces limits apply to and what their link layer adds to a
// payload rate.

// interfaces resolves the configured interfaces, or those carrying the
// default route(s).
func interfaces(h *netlink.Handle, names []string) ([]netlink.Link, error) {
	var out []netlink.Link
	if len(names) > 0 {
		for _, n := range names {
			l, err := h.LinkByName(n)
			if err != nil {
				return nil, fmt.Errorf("find interface %q: %w", n, err)
			}
			out = append(out, l)
		}
		return out, nil
	}
	seen := map[int]bool{}
	for _, fam := range []int{unix.AF_INET, unix.AF_INET6} {
		routes, err := h.RouteList(nil, fam)
		if err != nil {
			return nil, fmt.Errorf("list routes: %w", err)
		}
		for _, r := range routes {
			if r.Dst != nil {
				if ones, _ := r.Dst.Mask.Size(); ones != 0 {
					continue
				}
			}
			idx := []int{r.LinkIndex}
			for _, nh := range r.MultiPath {
				idx = append(idx, nh.LinkIndex)
			}
			for _, i := range idx {
				if i == 0 || seen[i] {
					continue
				}
				seen[i] = true
				l, err := h.LinkByIndex(i)
				if err != nil {
					return nil, fmt.Errorf("find interface %d of the default route: %w", i, err)
				}
				out = append(out, l)
			}
		}
	}
	if len(out) == 0 {
		return nil, errors.New("no interface carries a default route; name one with --interface")
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Attrs().Index < out[j].Attrs().Index })
	return out, nil
}

// wireFactor converts a payload rate to the rate tc must count: HTB and
// police count whole frames (link-layer header included), the application
// sees TCP payload, MTU minus IPv4, TCP and timestamp-option headers.
func wireFactor(l netlink.Link) float64 {
	mtu := l.Attrs().MTU
	if mtu < 576 {
		mtu = 1500
	}
	return float64(mtu+l2Header(l)) / float64(mtu-52)
}

// l2Header is the length of l's link-layer header: 0 on layer-3 devices.
func l2Header(l netlink.Link) int {
	switch l.Attrs().EncapType {
	case "none", "ipip", "sit", "ppp", "tunnel", "tunnel6":
		return 0
	}
	if l.Type() == "wireguard" || l.Type() == "tun" && l.Attrs().HardwareAddr == nil {
		return 0
	}
	return 14
}
