//go:build ignore

// SPDX-License-Identifier: GPL-2.0
// Byte budgets of the blocker (block.c): a data quota's hard stop. A target
// with a budget has its packets in the counted directions counted against
// the bytes the helper gave it (what the application sees: payload, and for
// TCP only bytes beyond the highest sequence already counted on the socket,
// so a retransmitted or re-sent segment — one another program dropped —
// counts once). Once the budget is used up every packet of the target is
// dropped and, for the block action, its new connections are refused, at
// once, before the helper's next one-second sample.
#pragma once

#include "common.h"

// struct block flags (block.c).
#define F_BLOCK 1          // blocked (traffic says which zone)
#define F_BUDGET 2         // budget and spent are in force
#define F_BUDGET_DOWN 4    // received bytes count
#define F_BUDGET_UP 8      // sent bytes count
#define F_BUDGET_REFUSE 16 // once used up, refuse new connections too

// budget_seq: the end of the highest TCP sequence counted per socket and
// direction.
struct seq_key {
	__u64 cookie;
	__u32 egress;
	__u32 pad;
};

// budget_seq: per socket and direction, the end of the highest sequence
// counted.
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, struct seq_key);
	__type(value, __u32);
} budget_seq SEC(".maps");

// budget_tcp returns the sequence space a TCP packet takes beyond the
// highest counted on its socket in its direction, so each byte counts once:
// a segment sent again (a retransmission, one another program dropped)
// counts nothing, and a segment that overtakes another (packets of one
// socket are handled on several CPUs at once, or wait in the socket's
// backlog) counts the hole before it too, which the late one then does not.
static __always_inline __u64 budget_tcp(struct __sk_buff *skb, struct pkt *p, int egress)
{
	__u32 end = p->seq + p->payload;
	struct seq_key k = {};
	k.cookie = bpf_get_socket_cookie(skb);
	k.egress = egress;
	__u32 *hi = bpf_map_lookup_elem(&budget_seq, &k);
	if (!hi) {
		bpf_map_update_elem(&budget_seq, &k, &end, BPF_ANY);
		return p->payload;
	}
	__s32 ahead = (__s32)(end - *hi);
	if (ahead <= 0)
		return 0;
	*hi = end;
	return (__u32)ahead;
}

// budget_bytes returns the bytes a packet moves for the application: UDP
// payload; TCP payload not counted before.
static __always_inline __u64 budget_bytes(struct __sk_buff *skb, struct pkt *p, int egress)
{
	if (p->payload == 0)
		return 0;
	if (p->proto != IPPROTO_TCP)
		return p->payload;
	return budget_tcp(skb, p, egress);
}

// budget_used_up says whether the budget of b is spent.
#define budget_used_up(b) (((b)->flags & F_BUDGET) && (b)->spent >= (b)->budget)

// budget_drop counts the packet against b's budget and says whether it is
// dropped: the budget was used up before it, or it would overrun it.
static __always_inline int budget_drop(struct __sk_buff *skb, struct block *b, int egress)
{
	if (budget_used_up(b))
		return 1;
	if (!(b->flags & (egress ? F_BUDGET_UP : F_BUDGET_DOWN)))
		return 0;
	struct pkt p;
	if (parse(skb, &p))
		return 0;
	__u64 n = budget_bytes(skb, &p, egress);
	if (!n)
		return 0;
	__sync_fetch_and_add(&b->spent, n);
	return b->spent > b->budget;
}
