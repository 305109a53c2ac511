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
	seq, ack uint32 // TCP sequence and acknowledgment numbers
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
	var ipLen, hdrLen int
	var ok bool
	switch data[0] >> 4 {
	case 4:
		ipLen, hdrLen, ok = d.decodeIPv4(data, origLen, pkt)
	case 6:
		ipLen, hdrLen, ok = d.decodeIPv6(data, origLen, pkt)
	}
	if !ok {
		return false
	}
	if ipLen > origLen && origLen > 0 {
		ipLen = origLen
	}
	hdrLen += d.decodeTransport(pkt)
	if n := ipLen - hdrLen; n > 0 {
		pkt.payload = uint64(n)
	}
	return true
}

// decodeIPv4 fills pkt's addresses and protocol from an IPv4 packet and
// returns its IP length and IP header length; false when it is too short
// to read. The IP length comes from the header: it excludes link-layer
// padding that origLen may include; a zero length (BIG TCP, jumbograms)
// falls back to origLen.
func (d *decoder) decodeIPv4(data []byte, origLen int, pkt *packet) (ipLen, hdrLen int, ok bool) {
	if len(data) < 20 {
		return 0, 0, false
	}
	if l := int(binary.BigEndian.Uint16(data[2:4])); l != 0 {
		ipLen = l
	} else {
		ipLen = origLen
	}
	if err := d.p4.DecodeLayers(data, &d.decoded); err != nil && len(d.decoded) == 0 {
		return 0, 0, false
	}
	if len(d.decoded) == 0 {
		return 0, 0, false
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
	return ipLen, hdrLen, true
}

// decodeIPv6 is decodeIPv4 for IPv6; the header length includes a
// hop-by-hop extension header.
func (d *decoder) decodeIPv6(data []byte, origLen int, pkt *packet) (ipLen, hdrLen int, ok bool) {
	if len(data) < 40 {
		return 0, 0, false
	}
	if l := int(binary.BigEndian.Uint16(data[4:6])); l != 0 {
		ipLen = l + 40
	} else {
		ipLen = origLen
	}
	if err := d.p6.DecodeLayers(data, &d.decoded); err != nil && len(d.decoded) == 0 {
		return 0, 0, false
	}
	if len(d.decoded) == 0 {
		return 0, 0, false
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
	return ipLen, hdrLen, true
}

// decodeTransport fills pkt's ports, protocol and TCP flags from the TCP or
// UDP header decoded after the IP header and returns that header's length.
// A TCP or UDP packet whose header could not be read keeps protocol 0:
// counted, but not attributable.
func (d *decoder) decodeTransport(pkt *packet) int {
	hdrLen := 0
	transport := false
	for _, l := range d.decoded {
		switch l {
		case layers.LayerTypeTCP:
			pkt.proto = protoTCP
			pkt.src = netip.AddrPortFrom(pkt.src.Addr(), uint16(d.tcp.SrcPort))
			pkt.dst = netip.AddrPortFrom(pkt.dst.Addr(), uint16(d.tcp.DstPort))
			hdrLen += int(d.tcp.DataOffset) * 4
			pkt.flags |= tcpFlags(&d.tcp)
			pkt.seq, pkt.ack = d.tcp.Seq, d.tcp.Ack
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
	return hdrLen
}

// tcpFlags returns the flags of t the flow table cares about.
func tcpFlags(t *layers.TCP) uint8 {
	var f uint8
	if t.FIN {
		f |= flagFIN
	}
	if t.SYN {
		f |= flagSYN
	}
	if t.RST {
		f |= flagRST
	}
	if t.ACK {
		f |= flagACK
	}
	return f
}
