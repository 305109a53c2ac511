//go:build ignore

// SPDX-License-Identifier: GPL-2.0
// ChadThrottle's eBPF monitor: cgroup/sock_create learns which process owns
// each new socket (process context), cgroup_skb/ingress and egress count the
// bytes of every TCP and UDP connection per socket cookie. Userspace
// (monitor_linux.go) joins the two by cookie.
//
// What is counted is what the application gets. A throttler's verdict on a
// packet is not known here (every cgroup_skb program runs, whatever the
// others answer), so for TCP the programs read the socket's own counters on
// every packet: bytes_received (in-order payload TCP accepted, so neither
// packets a policer dropped nor retransmitted duplicates) and bytes_acked
// (payload the peer received: segments still queued in a shaper, lost, or
// sent again are counted once, when they arrive). UDP counts the payload of every
// packet that reaches the socket's hooks.
#include "common.h"

char __license[] SEC("license") = "GPL";

// netns_cookie, when not zero, restricts counting to one network namespace.
volatile const __u64 netns_cookie = 0;

struct owner {
	__u32 tgid;
	__u32 uid;
	__u64 netns;
	__u64 released_ns; // when the socket's last fd was closed; 0 while open
	char comm[16];
};

struct conn_key {
	__u64 cookie;
	__u8 laddr[16];
	__u8 raddr[16];
	__u16 lport;
	__u16 rport;
	__u8 proto;
	__u8 family;
	__u8 pad[2];
};

// conn_val is per CPU: no atomics and no cache line shared between CPUs on
// the packet path. Userspace sums the CPUs' values.
struct conn_val {
	__u64 rx_bytes;
	__u64 tx_bytes;
	__u64 rx_packets;
	__u64 tx_packets;
};

struct event {
	__u32 tgid;
	__u32 uid;
	__u64 cookie;
	char comm[16];
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, __u64);
	__type(value, struct owner);
} owners SEC(".maps");

// tcp_val is one TCP connection: its addresses (written once, when the
// entry is made), the socket's counters then (base) and as last read.
// Counters only grow; a CPU that read older counters than another wrote
// leaves them alone.
struct tcp_val {
	struct conn_key k;
	__u64 rx_base;
	__u64 tx_base;
	__u64 rx_bytes; // bytes_received
	__u64 tx_bytes; // bytes_acked
	__u64 rx_packets;
	__u64 tx_packets;
};

// TCP connections are keyed by socket cookie alone (a short key hashes
// fast).
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, __u64);
	__type(value, struct tcp_val);
} tcp_conns SEC(".maps");

// UDP sockets may talk to many peers: counted per cookie and peer.
struct {
	__uint(type, BPF_MAP_TYPE_LRU_PERCPU_HASH);
	__uint(max_entries, 65536);
	__type(key, struct conn_key);
	__type(value, struct conn_val);
} udp_conns SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 256 * 1024);
} events SEC(".maps");

SEC("cgroup/sock_create")
int ct_sock_create(struct bpf_sock *sk)
{
	if (sk->protocol != IPPROTO_TCP && sk->protocol != IPPROTO_UDP)
		return 1;
	__u64 ns = bpf_get_netns_cookie(sk);
	if (netns_cookie && ns != netns_cookie)
		return 1;
	__u64 cookie = bpf_get_socket_cookie(sk);
	struct owner o = {};
	o.tgid = bpf_get_current_pid_tgid() >> 32;
	o.uid = (__u32)bpf_get_current_uid_gid();
	o.netns = ns;
	bpf_get_current_comm(o.comm, sizeof(o.comm));
	bpf_map_update_elem(&owners, &cookie, &o, BPF_ANY);
	struct event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (e) {
		e->tgid = o.tgid;
		e->uid = o.uid;
		e->cookie = cookie;
		__builtin_memcpy(e->comm, o.comm, sizeof(e->comm));
		bpf_ringbuf_submit(e, 0);
	}
	return 1;
}

SEC("cgroup/sock_release")
int ct_sock_release(struct bpf_sock *sk)
{
	__u64 cookie = bpf_get_socket_cookie(sk);
	struct owner *o = bpf_map_lookup_elem(&owners, &cookie);
	if (o)
		o->released_ns = bpf_ktime_get_ns();
	return 1;
}

static __always_inline void fill_key(struct conn_key *k, struct pkt *p, __u64 cookie, int egress)
{
	k->cookie = cookie;
	k->proto = p->proto;
	k->family = p->family;
	if (egress) {
		__builtin_memcpy(k->laddr, p->saddr, 16);
		__builtin_memcpy(k->raddr, p->daddr, 16);
		k->lport = p->sport;
		k->rport = p->dport;
	} else {
		__builtin_memcpy(k->laddr, p->daddr, 16);
		__builtin_memcpy(k->raddr, p->saddr, 16);
		k->lport = p->dport;
		k->rport = p->sport;
	}
}

// tcp_ack_of reads the acknowledgment number of a TCP packet; -1 when its
// ACK flag is clear or the header cannot be read.
static __always_inline int tcp_ack_of(struct __sk_buff *skb, struct pkt *p, __u32 *ack)
{
	__u32 l4off = 40;
	if (p->family == 4) {
		__u8 vihl;
		if (bpf_skb_load_bytes(skb, 0, &vihl, 1))
			return -1;
		l4off = (vihl & 0x0f) * 4;
	}
	__u8 h[6]; // bytes 8–13 of the TCP header: ack, data offset, flags
	if (bpf_skb_load_bytes(skb, (l4off & 0x3f) + 8, h, sizeof(h)))
		return -1;
	if (!(h[5] & 0x10))
		return -1;
	*ack = ((__u32)h[0] << 24) | ((__u32)h[1] << 16) | ((__u32)h[2] << 8) | h[3];
	return 0;
}

// tcp_progress reads the payload bytes the socket has received in order
// and the payload the peer acknowledged so far. The hooks run before TCP
// handles the packet: an ACK arriving now is added here, so the count is
// complete after the last ACK even if no packet follows it.
static __always_inline int tcp_progress(struct __sk_buff *skb, struct pkt *p, int egress, __u64 *rx, __u64 *tx)
{
	struct bpf_sock *sk = skb->sk;
	if (!sk)
		return -1;
	sk = bpf_sk_fullsock(sk);
	if (!sk)
		return -1;
	struct bpf_tcp_sock *tp = bpf_tcp_sock(sk);
	if (!tp)
		return -1;
	*rx = tp->bytes_received;
	*tx = tp->bytes_acked;
	__u32 ack;
	if (!egress && !tcp_ack_of(skb, p, &ack)) {
		__u32 adv = ack - tp->snd_una;
		if ((__s32)adv > 0 && adv <= tp->snd_nxt - tp->snd_una)
			*tx += adv;
	}
	return 0;
}

// count_tcp records the socket's counters. An entry is made on the first
// packet with payload (pure ACKs of unknown connections cost one lookup);
// later packets, ACKs too, bring the counters up to date: the hooks run
// before TCP handles the packet, so the counters lag one packet, which the
// next one (e.g. the ACK for it) catches up.
static __always_inline void count_tcp(struct __sk_buff *skb, struct pkt *p, int egress)
{
	__u64 cookie = bpf_get_socket_cookie(skb);
	__u64 rx, tx;
	struct tcp_val *v = bpf_map_lookup_elem(&tcp_conns, &cookie);
	if (!v) {
		if (p->payload == 0 || tcp_progress(skb, p, egress, &rx, &tx))
			return;
		struct tcp_val nv = {};
		fill_key(&nv.k, p, cookie, egress);
		nv.rx_base = nv.rx_bytes = rx;
		nv.tx_base = nv.tx_bytes = tx;
		bpf_map_update_elem(&tcp_conns, &cookie, &nv, BPF_NOEXIST);
		v = bpf_map_lookup_elem(&tcp_conns, &cookie);
		if (!v)
			return;
	} else if (tcp_progress(skb, p, egress, &rx, &tx)) {
		return;
	}
	if (rx > v->rx_bytes)
		v->rx_bytes = rx;
	if (tx > v->tx_bytes)
		v->tx_bytes = tx;
	if (p->payload) {
		if (egress)
			v->tx_packets++;
		else
			v->rx_packets++;
	}
}

static __always_inline void count(struct __sk_buff *skb, int egress)
{
	if (netns_cookie && bpf_get_netns_cookie(skb) != netns_cookie)
		return;
	struct pkt p;
	if (parse(skb, &p))
		return;
	if (p.proto == IPPROTO_TCP) {
		count_tcp(skb, &p, egress);
		return;
	}
	// UDP packets without payload move no bytes the application sees.
	// Packet counts are data packets (GSO segments count once).
	if (p.payload == 0)
		return;
	__u64 cookie = bpf_get_socket_cookie(skb);
	struct conn_key k = {};
	fill_key(&k, &p, cookie, egress);
	struct conn_val *v = bpf_map_lookup_elem(&udp_conns, &k);
	if (!v) {
		struct conn_val zero = {};
		bpf_map_update_elem(&udp_conns, &k, &zero, BPF_NOEXIST);
		v = bpf_map_lookup_elem(&udp_conns, &k);
		if (!v)
			return;
	}
	if (egress) {
		v->tx_bytes += p.payload;
		v->tx_packets++;
	} else {
		v->rx_bytes += p.payload;
		v->rx_packets++;
	}
}

SEC("cgroup_skb/ingress")
int ct_count_ingress(struct __sk_buff *skb)
{
	count(skb, 0);
	return 1;
}

SEC("cgroup_skb/egress")
int ct_count_egress(struct __sk_buff *skb)
{
	count(skb, 1);
	return 1;
}
