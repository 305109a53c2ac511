//go:build ignore

// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
//
// ChadThrottle's traffic classifiers. Only a limited target's packets are
// sent through an HTB qdisc; everything else keeps its usual path at the
// cost of one BPF run.
//
// mark_egress  (upload, cls_bpf on clsact egress of the real interface, with
//              an act_mirred redirect to the product's IFB device): finds the
//              target by the sending socket's cookie (connections open before
//              the limit was set), else by the tag the socket tagger gave
//              the socket at its creation (socktarget.h), else the socket's
//              cgroup id (sockets created in a target's cgroup).
// mark_ingress (download, the same on clsact ingress): finds the receiving
//              socket with bpf_sk_lookup_{tcp,udp} and reads its cookie (the
//              one sock_diag reported) or its cgroup id.
// A matched packet gets the target's HTB minor in skb->tc_index and the
// program returns -1 (match: the filter's mirred action redirects it to the
// IFB); others return 0 (no match, no action).
// to_class     (cls_bpf direct action as the filter of the HTB root on the
//              IFB): the class is the root's major (the filter's classid)
//              and skb->tc_index.
//
// police_ingress is mark_ingress for one target, for tc_police.
//
// Targets honour their traffic type: all, internet (remote address not
// local) or local (loopback, RFC 1918, link-local, ULA, unspecified), the
// rule of backends.IsLocal. TCP packets without payload (ACK, SYN, FIN) are
// never limited: the limit is on payload, and an ACK queued behind the other
// direction's data would slow that direction down.

#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/pkt_cls.h>
#include <linux/socket.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include "../../kernel/socktarget/socktarget.h"

#ifndef AF_INET
#define AF_INET 2
#endif
#ifndef AF_INET6
#define AF_INET6 10
#endif

#define TRAFFIC_ALL 0
#define TRAFFIC_INTERNET 1
#define TRAFFIC_LOCAL 2

// What a matched packet gets.
struct target {
	__u32 classid; // HTB class; the minor goes into skb->tc_index
	__u32 traffic; // TRAFFIC_*
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, __u64); // socket cookie
	__type(value, struct target);
	__uint(max_entries, 65536);
} cookies SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, __u64); // cgroup id
	__type(value, struct target);
	__uint(max_entries, 4096);
} cgroups SEC(".maps");

// Socket tag (socktarget.h: the number the socket tagger gave the socket
// at its creation) → the same.
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, __u32);
	__type(value, struct target);
	__uint(max_entries, 4096);
} tags SEC(".maps");

// by_cookie finds the target of a socket by its cookie: connections open
// when the limit was set, then sockets tagged at their creation.
static __always_inline struct target *by_cookie(__u64 cookie)
{
	struct target *t = bpf_map_lookup_elem(&cookies, &cookie);
	if (t)
		return t;
	__u32 tag = socket_target(cookie);
	return tag ? bpf_map_lookup_elem(&tags, &tag) : 0;
}

// Offset of the network header per ifindex (14 for Ethernet, 0 for devices
// without a link-layer header); missing means 14.
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, __u32);
	__type(value, __u32);
	__uint(max_entries, 256);
} l3off SEC(".maps");

static __always_inline __u32 l3_offset(struct __sk_buff *skb)
{
	__u32 idx = skb->ifindex;
	__u32 *off = bpf_map_lookup_elem(&l3off, &idx);
	return off ? (*off & 0xff) : ETH_HLEN;
}

static __always_inline int local4(__u32 be)
{
	__u32 a = bpf_ntohl(be);
	return (a >> 24) == 127 || (a >> 24) == 10 || (a & 0xfff00000) == 0xac100000 ||
	       (a & 0xffff0000) == 0xc0a80000 || (a & 0xffff0000) == 0xa9fe0000 || a == 0 ||
	       (a & 0xffffff00) == 0xe0000000;
}

// local6 takes the address as four network-order words.
static __always_inline int local6(const __u32 *w)
{
	__u32 w0 = bpf_ntohl(w[0]);
	if (w[0] == 0 && w[1] == 0) {
		if (w[2] == 0 && (w[3] == 0 || w[3] == bpf_htonl(1)))
			return 1; // :: and ::1
		if (w[2] == bpf_htonl(0xffff))
			return local4(w[3]); // IPv4-mapped
	}
	return (w0 & 0xfe000000) == 0xfc000000 ||	// fc00::/7
	       (w0 & 0xffc00000) == 0xfe800000 ||	// fe80::/10
	       (w0 & 0xffff0000) == 0xff020000 ||	// ff02::/16
	       (w0 & 0xffff0000) == 0xff010000;		// ff01::/16
}

static __always_inline int traffic_ok(const struct target *t, int is_local)
{
	if (t->traffic == TRAFFIC_INTERNET)
		return !is_local;
	if (t->traffic == TRAFFIC_LOCAL)
		return is_local;
	return 1;
}

// remote_local loads the packet's remote address (destination on egress,
// source on ingress) and says whether it is local. -1: not IP.
static __always_inline int remote_local(struct __sk_buff *skb, int egress)
{
	__u32 off = l3_offset(skb);
	if (skb->protocol == bpf_htons(ETH_P_IP)) {
		__u32 a;
		__u32 at = off + (egress ? offsetof(struct iphdr, daddr) : offsetof(struct iphdr, saddr));
		if (bpf_skb_load_bytes(skb, at, &a, sizeof(a)) < 0)
			return -1;
		return local4(a);
	}
	if (skb->protocol == bpf_htons(ETH_P_IPV6)) {
		__u32 a[4];
		__u32 at = off + (egress ? offsetof(struct ipv6hdr, daddr) : offsetof(struct ipv6hdr, saddr));
		if (bpf_skb_load_bytes(skb, at, a, sizeof(a)) < 0)
			return -1;
		return local6(a);
	}
	return -1;
}

// bare_tcp says whether the packet is TCP without payload (a pure ACK,
// SYN or FIN). Those are left unshaped: the limit is on payload, and an
// ACK queued behind the other direction's data would slow that direction.
static __always_inline int bare_tcp(struct __sk_buff *skb)
{
	__u32 off = l3_offset(skb);
	__u32 hdrs;
	__u8 doff;

	if (skb->protocol == bpf_htons(ETH_P_IP)) {
		__u8 vihl, proto;
		if (bpf_skb_load_bytes(skb, off, &vihl, 1) < 0 ||
		    bpf_skb_load_bytes(skb, off + offsetof(struct iphdr, protocol), &proto, 1) < 0)
			return 0;
		if (proto != IPPROTO_TCP)
			return 0;
		hdrs = off + (vihl & 0x0f) * 4;
	} else if (skb->protocol == bpf_htons(ETH_P_IPV6)) {
		__u8 next;
		if (bpf_skb_load_bytes(skb, off + offsetof(struct ipv6hdr, nexthdr), &next, 1) < 0)
			return 0;
		if (next != IPPROTO_TCP)
			return 0;
		hdrs = off + sizeof(struct ipv6hdr);
	} else {
		return 0;
	}
	if (bpf_skb_load_bytes(skb, hdrs + 12, &doff, 1) < 0)
		return 0;
	hdrs += (doff >> 4) * 4;
	return skb->len <= hdrs;
}

#define NO_MATCH 0
#define MATCH -1

static __always_inline int mark(struct __sk_buff *skb, const struct target *t, int egress)
{
	if (!t || skb->tc_index)
		return NO_MATCH; // none, or back from an IFB of ours (tc_index set)
	if (bare_tcp(skb))
		return NO_MATCH;
	if (t->traffic != TRAFFIC_ALL) {
		int l = remote_local(skb, egress);
		if (l < 0 || !traffic_ok(t, l))
			return NO_MATCH;
	}
	skb->tc_index = t->classid & 0xffff;
	return MATCH;
}

// find_egress finds the target of the socket sending an egress packet.
static __always_inline struct target *find_egress(struct __sk_buff *skb)
{
	struct target *t = 0;
	__u64 cookie = bpf_get_socket_cookie(skb);
	if (cookie)
		t = by_cookie(cookie);
	if (!t) {
		__u64 cg = bpf_skb_cgroup_id(skb);
		if (cg)
			t = bpf_map_lookup_elem(&cgroups, &cg);
	}
	return t;
}

SEC("tc")
int mark_egress(struct __sk_buff *skb)
{
	return mark(skb, find_egress(skb), 1);
}

// Just enough of the kernel's socket and cgroup structures to read a
// socket's cookie and cgroup id; CO-RE relocates the offsets against the
// running kernel's BTF at load time.
struct kernfs_node___ct {
	__u64 id;
} __attribute__((preserve_access_index));
struct cgroup___ct {
	struct kernfs_node___ct *kn;
} __attribute__((preserve_access_index));
struct sock_cgroup_data___ct {
	struct cgroup___ct *cgroup;
} __attribute__((preserve_access_index));
struct sock_common___ct {
	struct {
		__s64 counter;
	} skc_cookie;
} __attribute__((preserve_access_index));
struct sock___ct {
	struct sock_common___ct __sk_common;
	struct sock_cgroup_data___ct sk_cgrp_data;
} __attribute__((preserve_access_index));

// sock_of turns a looked-up socket into a plain kernel address: tc programs
// may not call bpf_sk_cgroup_id or take a looked-up socket's cookie, and
// the verifier forbids arithmetic on socket pointers, so the socket's
// fields are read with bpf_probe_read_kernel from this address.
static __always_inline struct sock___ct *sock_of(struct bpf_sock *sk)
{
	struct bpf_sock *volatile slot = sk;
	__u64 addr = 0;
	bpf_probe_read_kernel(&addr, sizeof(addr), (const void *)&slot);
	return (struct sock___ct *)addr;
}

// lookup finds the local socket an ingress packet is for.
static __always_inline struct bpf_sock *lookup(struct __sk_buff *skb, __u8 *proto)
{
	struct bpf_sock_tuple tup = {};
	__u32 off = l3_offset(skb);
	__u32 l4;
	__u32 size;

	if (skb->protocol == bpf_htons(ETH_P_IP)) {
		struct iphdr ip;
		if (bpf_skb_load_bytes(skb, off, &ip, sizeof(ip)) < 0)
			return 0;
		if (ip.frag_off & bpf_htons(0x1fff))
			return 0; // a later fragment has no ports
		*proto = ip.protocol;
		l4 = off + ip.ihl * 4;
		tup.ipv4.saddr = ip.saddr;
		tup.ipv4.daddr = ip.daddr;
		if (bpf_skb_load_bytes(skb, l4, &tup.ipv4.sport, 4) < 0)
			return 0;
		size = sizeof(tup.ipv4);
	} else if (skb->protocol == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr ip6;
		if (bpf_skb_load_bytes(skb, off, &ip6, sizeof(ip6)) < 0)
			return 0;
		*proto = ip6.nexthdr;
		l4 = off + sizeof(ip6);
		__builtin_memcpy(tup.ipv6.saddr, &ip6.saddr, 16);
		__builtin_memcpy(tup.ipv6.daddr, &ip6.daddr, 16);
		if (bpf_skb_load_bytes(skb, l4, &tup.ipv6.sport, 4) < 0)
			return 0;
		size = sizeof(tup.ipv6);
	} else {
		return 0;
	}
	if (*proto == IPPROTO_TCP)
		return bpf_sk_lookup_tcp(skb, &tup, size, BPF_F_CURRENT_NETNS, 0);
	if (*proto == IPPROTO_UDP)
		return bpf_sk_lookup_udp(skb, &tup, size, BPF_F_CURRENT_NETNS, 0);
	return 0;
}

// ingress_ids finds the local socket an ingress packet is for and reads
// its cookie and cgroup id; 0: no socket.
static __always_inline int ingress_ids(struct __sk_buff *skb, __u64 *cookie, __u64 *cg)
{
	__u8 proto = 0;
	struct bpf_sock *sk = lookup(skb, &proto);
	if (!sk)
		return 0;

	struct sock___ct *ks = sock_of(sk);
	struct cgroup___ct *cgrp = 0;
	struct kernfs_node___ct *kn = 0;
	bpf_probe_read_kernel(cookie, sizeof(*cookie), &ks->__sk_common.skc_cookie.counter);
	bpf_probe_read_kernel(&cgrp, sizeof(cgrp), &ks->sk_cgrp_data.cgroup);
	if (cgrp)
		bpf_probe_read_kernel(&kn, sizeof(kn), &cgrp->kn);
	if (kn)
		bpf_probe_read_kernel(cg, sizeof(*cg), &kn->id);
	bpf_sk_release(sk);
	return 1;
}

// find_ingress finds the target of the local socket an ingress packet is
// for.
static __always_inline struct target *find_ingress(struct __sk_buff *skb)
{
	__u64 cookie = 0, cg = 0;
	if (!ingress_ids(skb, &cookie, &cg))
		return 0;
	struct target *t = 0;
	if (cookie)
		t = by_cookie(cookie);
	if (!t && cg)
		t = bpf_map_lookup_elem(&cgroups, &cg);
	return t;
}

static __always_inline int find_and_mark_ingress(struct __sk_buff *skb)
{
	return mark(skb, find_ingress(skb), 0);
}

// defer_marks[0] != 0: the global limit nests this backend's app limits
// in its own IFB (global_ingress), so mark_ingress redirects nothing: a
// packet an IFB returns is not classified at ingress again, so it could
// not meet the global limit after this backend's IFB.
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, __u32);
	__uint(max_entries, 1);
} defer_marks SEC(".maps");

SEC("tc")
int mark_ingress(struct __sk_buff *skb)
{
	__u32 zero = 0;
	__u32 *d = bpf_map_lookup_elem(&defer_marks, &zero);
	if (d && *d)
		return NO_MATCH;
	return find_and_mark_ingress(skb);
}

// police_minor is set per loaded copy of police_ingress: tc_police runs one
// copy per target, each with its own act_police action.
volatile const __u32 police_minor = 0;

// police_ingress (tc_police, cls_bpf on clsact ingress with an act_police
// action): matches the packets of the one target whose minor it was loaded
// with.
SEC("tc")
int police_ingress(struct __sk_buff *skb)
{
	if (find_and_mark_ingress(skb) != MATCH || skb->tc_index != police_minor)
		return NO_MATCH;
	skb->tc_index = 0;
	return MATCH;
}

SEC("tc")
int to_class(struct __sk_buff *skb)
{
	if (!skb->tc_index)
		return TC_ACT_UNSPEC;
	// Only the minor is kept here; cls_bpf adds the major from the
	// filter's classid (the HTB root's handle).
	skb->tc_classid = skb->tc_index;
	return TC_ACT_OK;
}

// The global limit (global_linux.go): a copy of these programs whose maps
// hold each prioritised target's priority class (minor GLOBAL_MINOR +
// priority) instead of a per-target class. Packets of no target are in the
// normal class.
//
// global_egress  (cls_bpf direct action on the HTB root the global limit
//                puts on the interface itself): the packet's class.
// global_ingress (cls_bpf direct action on clsact ingress, after the
//                per-app filters): redirects the packet (bpf_redirect) to
//                the global IFB with its class minor in tc_index: its
//                priority's, or, for an app with its own ifb_tc limit, that
//                app's class in the global tree (ifb_tc's own redirect is
//                then off: defer_marks). A packet back from the IFB
//                (tc_index >= GLOBAL_MINOR) passes.
// Pure TCP ACKs are not shaped (the HTB's direct queue, or no redirect).
#define GLOBAL_MINOR 0xfff0
#define GLOBAL_NORMAL (GLOBAL_MINOR + 1)

// The download throttler's maps (ifb_tc's cookies, tags and cgroups,
// replaced at load): global_ingress puts a packet of an app with its own
// download limit in that app's class of the global tree.
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, __u64);
	__type(value, struct target);
	__uint(max_entries, 65536);
} app_cookies SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, __u32);
	__type(value, struct target);
	__uint(max_entries, 4096);
} app_tags SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, __u64);
	__type(value, struct target);
	__uint(max_entries, 4096);
} app_cgroups SEC(".maps");

// Shaped interface → the global IFB its download is redirected to.
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, __u32);
	__type(value, __u32);
	__uint(max_entries, 256);
} global_ifb SEC(".maps");

// global_minor is a target's class in the global tree: its priority's, or
// (download) its own class when it has a download limit of its own.
static __always_inline __u32 global_minor(const struct target *t)
{
	__u32 m = t ? (t->classid & 0xffff) : 0;
	return m ? m : GLOBAL_NORMAL;
}

SEC("tc")
int global_egress(struct __sk_buff *skb)
{
	if (bare_tcp(skb) || remote_local(skb, 1) < 0)
		return TC_ACT_UNSPEC;
	skb->tc_classid = global_minor(find_egress(skb));
	return TC_ACT_OK;
}

// app_target is the download throttler's target of a socket.
static __always_inline struct target *app_target(__u64 cookie, __u64 cg)
{
	struct target *t = 0;
	if (cookie) {
		t = bpf_map_lookup_elem(&app_cookies, &cookie);
		if (!t) {
			__u32 tag = socket_target(cookie);
			if (tag)
				t = bpf_map_lookup_elem(&app_tags, &tag);
		}
	}
	if (!t && cg)
		t = bpf_map_lookup_elem(&app_cgroups, &cg);
	return t;
}

SEC("tc")
int global_ingress(struct __sk_buff *skb)
{
	int is_local = remote_local(skb, 0);
	if (skb->tc_index >= GLOBAL_MINOR || bare_tcp(skb) || is_local < 0)
		return TC_ACT_UNSPEC;
	__u32 idx = skb->ifindex;
	__u32 *ifb = bpf_map_lookup_elem(&global_ifb, &idx);
	if (!ifb)
		return TC_ACT_UNSPEC;
	__u64 cookie = 0, cg = 0;
	struct target *t = 0, *app = 0;
	if (ingress_ids(skb, &cookie, &cg)) {
		if (cookie)
			t = by_cookie(cookie);
		if (!t && cg)
			t = bpf_map_lookup_elem(&cgroups, &cg);
		app = app_target(cookie, cg);
	}
	__u32 minor = global_minor(t);
	if (app && traffic_ok(app, is_local)) {
		__u32 m = app->classid & 0xffff;
		if (m && m < GLOBAL_MINOR)
			minor = m; // the app's own class, under the global class
	}
	skb->tc_index = minor;
	return bpf_redirect(*ifb, 0);
}

char __license[] SEC("license") = "Dual BSD/GPL";
