//go:build ignore

// SPDX-License-Identifier: GPL-2.0
// ChadThrottle's eBPF throttlers: one token bucket per limited target,
// counted in payload bytes (what the application sees). A packet belongs to
// a target when its socket's cookie is in sock_target (connections that were
// open before the limit), when the socket tagger tagged it with the target's
// number at its creation (socket_targets; the number is the bucket's key),
// or when its socket's cgroup is in cgroup_target (the target's own cgroup,
// where processes are placed in cgroups).
//
// Egress (upload) shapes without loss: over the limit the program returns
// 2 (drop + congestion notification), the kernel keeps the segment in TCP's
// write queue and TCP enters CWR; a packet that takes the bucket below its
// marking threshold (0: into debt) passes with 3 (pass + CN) so TCP backs
// off before it has to be stopped (Meta's HBM, samples/bpf). A segment of
// a socket with nothing in flight is not stopped but passes into debt (at
// most 200 ms of the rate): no ACK would come to send it again (take).
// Ingress (download) can only police: over the limit the packet is dropped
// and the sender retransmits. A download bucket also keeps what it passed
// in the last second (WIN_SLOTS slots of 1/16 s) and drops a packet that
// would take that over win_cap: tokens the bucket saved while the sender
// sat in a retransmission timeout can then not all be spent in one second.
#include "common.h"
#include "zone.h"
#include "../kernel/socktarget/socktarget.h"

char __license[] SEC("license") = "GPL";

struct bucket {
	struct bpf_spin_lock lock;
	__u32 traffic;
	__u32 strict; // pass only when the bucket holds the whole packet (no debt)
	__u32 pad;
	__s64 tokens; // payload bytes that may pass now; negative = debt
	__u64 last_ns;
	__u64 rate;   // payload bytes per second
	__s64 burst;  // most tokens kept
	__s64 mark;   // below this many tokens egress passes with CN (0: in debt)
	__u64 passed;
	__u64 dropped;
	__u64 marked;
	__u64 idle;     // egress segments passed into debt as idle (take)
	__u64 win_cap;  // most bytes passed in any second (0: no cap)
	__u64 win_slot; // the slot (time / 1/16 s) win[win_slot % 16] counts
	__u64 win_sum;  // the sum of win[]
	__u64 win[16];  // bytes passed per 1/16 s, the last second
};

#define WIN_SLOTS 16
#define WIN_SLOT_NS (1000000000ULL / WIN_SLOTS)

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32);
	__type(value, struct bucket);
} buckets SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, __u64);
	__type(value, __u32);
} sock_target SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, __u64);
	__type(value, __u32);
} cgroup_target SEC(".maps");

// settings[0] is the cgroup level of the targets' cgroups, so sockets in
// cgroups a target's processes made below their own still match.
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} settings SEC(".maps");

// target_bucket returns the bucket of the packet's target; *tagged is set
// when its socket was tagged at creation.
static __always_inline struct bucket *target_bucket(struct __sk_buff *skb, int *tagged)
{
	__u64 cookie = bpf_get_socket_cookie(skb);
	__u32 *tid = bpf_map_lookup_elem(&sock_target, &cookie);
	if (!tid) { // tagged at creation: the tag is the bucket's key
		tid = bpf_map_lookup_elem(&socket_targets, &cookie);
		*tagged = tid != 0;
	}
	if (!tid) {
		__u64 cg = bpf_skb_cgroup_id(skb);
		tid = bpf_map_lookup_elem(&cgroup_target, &cg);
		if (!tid) {
			__u32 zero = 0;
			__u32 *lvl = bpf_map_lookup_elem(&settings, &zero);
			if (!lvl || !*lvl)
				return 0;
			cg = bpf_skb_ancestor_cgroup_id(skb, *lvl);
			tid = bpf_map_lookup_elem(&cgroup_target, &cg);
			if (!tid)
				return 0;
		}
	}
	return bpf_map_lookup_elem(&buckets, tid);
}

// IDLE_DEBT_DIV: an idle segment (take) may take the bucket at most
// 1/IDLE_DEBT_DIV s of its rate into debt (200 ms: TCP's probe timer).
#define IDLE_DEBT_DIV 5

// take charges n payload bytes to the bucket. It returns 1 when the packet
// may pass, 0 when the bucket is empty (or, for a capped packet, the
// second's cap is reached); *low is set when the bucket is below its
// marking threshold.
//
// idle says the packet is a TCP segment of a socket with nothing in
// flight. Stopped, such a segment waits for TCP's probe timer, as no ACK
// comes to retry it: on uploads the receiver got nothing for 100-200 ms
// once in 5-15 limits set on a running flow, then 1.05-1.1 x the limit for
// 1.5 s while the pacer spent the tokens saved meanwhile. An idle segment
// passes into debt while the debt is under what that timer would have
// saved; it is charged like any other, so the average stays the limit.
static __always_inline int take(struct bucket *b, __u32 n, int capped, int idle, int *low)
{
	__u64 now = bpf_ktime_get_ns();
	int ok;
	bpf_spin_lock(&b->lock);
	__u64 dt = now - b->last_ns;
	if (dt > 1000000000ULL) {
		// Idle for over a second (or new, for a rule set before its
		// program started): what the bucket saved meanwhile is cut to
		// 100 ms, so it cannot push the next second over the limit.
		if (b->tokens > (__s64)(b->rate / 10))
			b->tokens = b->rate / 10;
		b->last_ns = now;
		dt = 0;
	}
	__u64 add = b->rate * dt / 1000000000ULL;
	if (add > 0) {
		// Advance the clock only by the time the added tokens stand for,
		// so no fraction of a byte is lost between packets.
		b->last_ns = now - (dt - add * 1000000000ULL / b->rate);
		b->tokens += add;
		if (b->tokens > b->burst)
			b->tokens = b->burst;
	}
	// Strict: the bucket must hold the whole packet (or be full, for a
	// packet larger than the burst, e.g. a BIG TCP aggregate).
	__s64 need = (__s64)n < b->burst ? (__s64)n : b->burst;
	if (b->win_cap) {
		// Slide the window to now: forget the slots older than a second.
		__u64 slot = now / WIN_SLOT_NS;
		for (int i = 0; i < WIN_SLOTS && b->win_slot < slot; i++) {
			b->win_slot++;
			__u32 k = b->win_slot & (WIN_SLOTS - 1);
			b->win_sum -= b->win[k];
			b->win[k] = 0;
		}
		b->win_slot = slot;
	}
	if ((b->strict ? b->tokens >= need : b->tokens > 0) &&
	    (!b->win_cap || !capped || b->win_sum + n <= b->win_cap)) {
		if (b->win_cap) {
			b->win[b->win_slot & (WIN_SLOTS - 1)] += n;
			b->win_sum += n;
		}
		b->tokens -= n;
		b->passed += n;
		ok = 1;
	} else if (idle && b->tokens > -(__s64)(b->rate / IDLE_DEBT_DIV)) {
		b->tokens -= n;
		b->passed += n;
		b->idle++;
		ok = 1;
	} else {
		b->dropped++;
		ok = 0;
	}
	*low = b->tokens < b->mark;
	if (ok && *low)
		b->marked++;
	bpf_spin_unlock(&b->lock);
	return ok;
}

// nothing_in_flight reports whether skb is a TCP segment of a socket with
// no segment in flight (the one being sent is not counted yet).
static __always_inline int nothing_in_flight(struct __sk_buff *skb)
{
	struct bpf_sock *sk = skb->sk;
	if (!sk)
		return 0;
	sk = bpf_sk_fullsock(sk);
	if (!sk || sk->protocol != IPPROTO_TCP)
		return 0;
	struct bpf_tcp_sock *tp = bpf_tcp_sock(sk);
	return tp && tp->packets_out == 0;
}

// packet_bucket returns the bucket a packet with payload is counted in, or
// NULL when it is not a limited target's or outside the limit's zone;
// remote is the far end's address (destination on egress).
static __always_inline struct bucket *packet_bucket(struct __sk_buff *skb, struct pkt *p, int egress, int *tagged)
{
	*tagged = 0;
	struct bucket *b = target_bucket(skb, tagged);
	if (!b)
		return NULL;
	if (parse(skb, p) || p->payload == 0)
		return NULL;
	if (!zone_matches(b->traffic, egress ? p->daddr : p->saddr, p->family))
		return NULL;
	return b;
}

SEC("cgroup_skb/egress")
int ct_throttle_egress(struct __sk_buff *skb)
{
	struct pkt p;
	int tagged;
	struct bucket *b = packet_bucket(skb, &p, 1, &tagged);
	if (!b)
		return 1;
	int low = 0;
	// Only a bucket at or below zero can refuse an egress segment; the
	// unlocked read only saves the helper calls.
	int idle = b->tokens <= 0 && nothing_in_flight(skb);
	if (!take(b, p.payload, tagged, idle, &low))
		return 2; // drop + congestion notification: TCP keeps the segment
	return low ? 3 : 1;
}

SEC("cgroup_skb/ingress")
int ct_throttle_ingress(struct __sk_buff *skb)
{
	struct pkt p;
	int tagged;
	struct bucket *b = packet_bucket(skb, &p, 0, &tagged);
	if (!b)
		return 1;
	int low = 0;
	return take(b, p.payload, tagged, 0, &low);
}
