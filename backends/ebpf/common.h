//go:build ignore

// SPDX-License-Identifier: GPL-2.0
// Shared packet parsing for ChadThrottle's cgroup_skb programs. cgroup_skb
// programs see the packet from the IP header (not Ethernet).
#pragma once

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define ETH_P_IP 0x0800
#define ETH_P_IPV6 0x86DD
#define IPPROTO_TCP 6
#define IPPROTO_UDP 17

// pkt is what the programs learn from an IP packet's headers.
struct pkt {
	__u8 saddr[16];
	__u8 daddr[16];
	__u16 sport; // host order
	__u16 dport; // host order
	__u8 proto;  // IPPROTO_TCP or IPPROTO_UDP
	__u8 family; // 4 or 6
	__u32 payload; // bytes after the IP and transport headers
	__u32 seq;     // TCP: the sequence number (host order)
};

struct ip4hdr {
	__u8 vihl;
	__u8 tos;
	__be16 tot_len;
	__be16 id;
	__be16 frag_off;
	__u8 ttl;
	__u8 protocol;
	__be16 check;
	__u8 saddr[4];
	__u8 daddr[4];
};

struct ip6hdr {
	__be32 vtcfl;
	__be16 payload_len;
	__u8 nexthdr;
	__u8 hop_limit;
	__u8 saddr[16];
	__u8 daddr[16];
};

// parse fills p from the skb's headers; it returns 0 for TCP and UDP over
// IPv4 or IPv6 and -1 for anything else (which the programs pass through).
// Headers are read in place when they are in the linear area (always, for
// locally generated packets and GRO'd ones); otherwise with
// bpf_skb_load_bytes.
static __always_inline int parse(struct __sk_buff *skb, struct pkt *p)
{
	void *data = (void *)(long)skb->data;
	void *end = (void *)(long)skb->data_end;
	__u32 l4off;
	if (skb->protocol == bpf_htons(ETH_P_IP)) {
		struct ip4hdr buf, *ip = data;
		if ((void *)(ip + 1) > end) {
			if (bpf_skb_load_bytes(skb, 0, &buf, sizeof(buf)))
				return -1;
			ip = &buf;
		}
		__u32 ihl = (ip->vihl & 0x0f) * 4;
		if (ihl < 20)
			return -1;
		if (ip->frag_off & bpf_htons(0x1fff)) // a later fragment: no L4 header
			return -1;
		__builtin_memset(p->saddr, 0, 16);
		__builtin_memset(p->daddr, 0, 16);
		__builtin_memcpy(p->saddr, ip->saddr, 4);
		__builtin_memcpy(p->daddr, ip->daddr, 4);
		p->proto = ip->protocol;
		p->family = 4;
		l4off = ihl;
	} else if (skb->protocol == bpf_htons(ETH_P_IPV6)) {
		struct ip6hdr buf, *ip = data;
		if ((void *)(ip + 1) > end) {
			if (bpf_skb_load_bytes(skb, 0, &buf, sizeof(buf)))
				return -1;
			ip = &buf;
		}
		__builtin_memcpy(p->saddr, ip->saddr, 16);
		__builtin_memcpy(p->daddr, ip->daddr, 16);
		p->proto = ip->nexthdr; // extension headers are not followed
		p->family = 6;
		l4off = 40;
	} else {
		return -1;
	}
	__u32 l4len;
	if (p->proto != IPPROTO_TCP && p->proto != IPPROTO_UDP)
		return -1;
	__u8 hbuf[13], *h;
	l4off &= 0x3f; // ≤ 60: keeps the verifier's range small
	h = data + l4off;
	if ((void *)(h + 13) > end) {
		if (bpf_skb_load_bytes(skb, l4off, hbuf, p->proto == IPPROTO_TCP ? 13 : 4))
			return -1;
		h = hbuf;
	}
	p->sport = (h[0] << 8) | h[1];
	p->dport = (h[2] << 8) | h[3];
	p->seq = p->proto == IPPROTO_TCP ? ((__u32)h[4] << 24) | ((__u32)h[5] << 16) | ((__u32)h[6] << 8) | h[7] : 0;
	l4len = p->proto == IPPROTO_TCP ? (h[12] >> 4) * 4 : 8;
	__u32 hdrs = l4off + l4len;
	p->payload = skb->len > hdrs ? skb->len - hdrs : 0;
	return 0;
}
