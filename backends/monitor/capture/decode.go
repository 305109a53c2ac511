//go:build !no_capture

package capture

import (
	"encoding/binary"
	"net/netip"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
)

// Transport protocol numbers.
const (
	protoTCP = 6
	protoUDP = 17
)

// TCP flags the flow table cares about.
const (
	flagFIN = 1 << iota
	flagSYN
	flagRST
	flagACK
)

// packet is what the monitor needs of one captured packet.
type packet struct {
	proto    uint8 // protoTCP, protoUDP, or another IP protocol (counted as unknown)
	src, dst netip.AddrPort
	payload  uint64 // transport payload bytes
	flags    uint8  // TCP flags (flagSYN …)
}

// decoder decodes IP packets (starting at the network header) with
// gopacket's DecodingLayerParser, reusing its layers.
type decoder struct {
	ip4     layers.IPv4
	ip6     layers.IPv6
	tcp     layers.TCP
	udp     layers.UDP
	p4, p6  *gopacket.DecodingLayerParser
	decoded []gopacket.LayerType
}

func newDecoder() *decoder {
	d := &decoder{}
	d.p4 = gopacket.NewDecodingLayerParser(layers.LayerTypeIPv4, &d.ip4, &d.tcp, &d.udp)
	d.p6 = gopacket.NewDecodingLayerParser(layers.LayerTypeIPv6, &d.ip6, &d.tcp, &d.udp)
	d.p4.IgnoreUnsupported = true
	d.p6.IgnoreUnsupported = true
	d.decoded = make([]gopacket.LayerType, 0, 4)
	return d
}

// decode decodes data, the first bytes of an IP packet whose full length
// (from the network header) was origLen. It reports false for packets that
// are not IPv4/IPv6 or too short to read.
func (d *decoder) decode(data []byte, origLen int, pkt *packet) bool {
	if len(data) < 1 {
		return false
	}
	*pkt = packet{}
	// The IP length from the header: it excludes link-layer padding that
	// origLen may include; a zero length (BIG TCP, jumbograms) falls back to
	// origLen.
	var ipLen, hdrLen int
	switch data[0] >> 4 {
	case 4:
		if len(data) < 20 {
			return false
		}
		if l := int(binary.BigEndian.Uint16(data[2:4])); l != 0 {
			ipLen = l
		} else {
			ipLen = origLen
		}
		if err := d.p4.DecodeLayers(data, &d.decoded); err != nil && len(d.decoded) == 0 {
			return false
		}
		if len(d.decoded) == 0 {
			return false
		}
		src, _ := netip.AddrFromSlice(d.ip4.SrcIP)
		dst, _ := netip.AddrFromSlice(d.ip4.DstIP)
		pkt.src, pkt.dst = netip.AddrPortFrom(src, 0), netip.AddrPortFrom(dst, 0)
		pkt.proto = uint8(d.ip4.Protocol)
		hdrLen = int(d.ip4.IHL) * 4
		if d.ip4.FragOffset != 0 {
			// A later fragment carries no transport header: not attributable.
			pkt.proto = 0
		}
	case 6:
		if len(data) < 40 {
			return false
		}
		if l := int(binary.BigEndian.Uint16(data[4:6])); l != 0 {
			ipLen = l + 40
		} else {
			ipLen = origLen
		}
		if err := d.p6.DecodeLayers(data, &d.decoded); err != nil && len(d.decoded) == 0 {
			return false
		}
		if len(d.decoded) == 0 {
			return false
		}
		src, _ := netip.AddrFromSlice(d.ip6.SrcIP)
		dst, _ := netip.AddrFromSlice(d.ip6.DstIP)
		src, dst = src.Unmap(), dst.Unmap() // never on a sane wire, but keep keys normalised
		pkt.src, pkt.dst = netip.AddrPortFrom(src, 0), netip.AddrPortFrom(dst, 0)
		pkt.proto = uint8(d.ip6.NextHeader)
		hdrLen = len(d.ip6.Contents)
		if d.ip6.HopByHop != nil {
			hdrLen += len(d.ip6.HopByHop.Contents)
		}
	default:
		return false
	}
	if ipLen > origLen && origLen > 0 {
		ipLen = origLen
	}
	transport := false
	for _, l := range d.decoded {
		switch l {
		case layers.LayerTypeTCP:
			pkt.proto = protoTCP
			pkt.src = netip.AddrPortFrom(pkt.src.Addr(), uint16(d.tcp.SrcPort))
			pkt.dst = netip.AddrPortFrom(pkt.dst.Addr(), uint16(d.tcp.DstPort))
			hdrLen += int(d.tcp.DataOffset) * 4
			if d.tcp.FIN {
				pkt.flags |= flagFIN
			}
			if d.tcp.SYN {
				pkt.flags |= flagSYN
			}
			if d.tcp.RST {
				pkt.flags |= flagRST
			}
			if d.tcp.ACK {
				pkt.flags |= flagACK
			}
			transport = true
		case layers.LayerTypeUDP:
			pkt.proto = protoUDP
			pkt.src = netip.AddrPortFrom(pkt.src.Addr(), uint16(d.udp.SrcPort))
			pkt.dst = netip.AddrPortFrom(pkt.dst.Addr(), uint16(d.udp.DstPort))
			hdrLen += 8
			transport = true
		}
	}
	if !transport && (pkt.proto == protoTCP || pkt.proto == protoUDP) {
		pkt.proto = 0 // header unreadable: count, but not attributable
	}
	if n := ipLen - hdrLen; n > 0 {
		pkt.payload = uint64(n)
	}
	return true
}
