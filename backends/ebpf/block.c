//go:build ignore

// SPDX-License-Identifier: GPL-2.0
// ChadThrottle's blocker: a blocked target gets no network (all traffic,
// internet only or local only).
//
// New connections are refused in process context: cgroup/connect4|6 (TCP,
// connected UDP) and cgroup/sendmsg4|6 (unconnected UDP) return 0, so
// connect() and sendmsg() fail at once with EPERM and the application
// reports an error instead of waiting. Packets of sockets that were open
// before the block are dropped by cgroup_skb programs in both directions,
// so open connections stop.
//
// Target identity (block_target_*): the same as the throttlers' today — a
// socket's cookie when it was among the target's open sockets when the
// block was set, else the cgroup the socket was made in (or, in process
// context, the calling task's cgroup), or its ancestor at the targets'
// cgroup level — and, in process context, the app's own identity: the
// calling task's executable (inode, device) and uid, so a new process of a
// blocked app is refused before the helper has placed it in the app's
// cgroup. Re-point these functions when the throttlers' identity changes.
//
// A target may also (or only) have a byte budget (budget.h): a data quota's
// hard stop, counted by the cgroup_skb programs, which act once it is used
// up. A socket a budgeted target's task connects or sends from that was
// found by the task alone (its executable or cgroup) is remembered by
// cookie, so its packets count from the first.
#include "common.h"
#include "zone.h"
#include "../kernel/socktarget/socktarget.h"
#include "../kernel/socktarget/task.h"

char __license[] SEC("license") = "GPL";

struct block {
	__u32 traffic; // TRAFFIC_* the block refuses (with F_BLOCK)
	__u32 flags;   // F_* (budget.h)
	__u64 refused; // connect/sendmsg calls refused
	__u64 dropped; // packets dropped
	__u64 budget;  // bytes the target may move (with F_BUDGET)
	__u64 spent;   // bytes counted against budget
};

#include "budget.h"

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32);
	__type(value, struct block);
} blocks SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, __u64);
	__type(value, __u32);
} block_sock SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, __u64);
	__type(value, __u32);
} block_cgroup SEC(".maps");

// block_tag: a socket tag (socktarget.h: the target number the socket
// tagger gave the socket at its creation) → the block.
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32);
	__type(value, __u32);
} block_tag SEC(".maps");

// block_exe matches the tasks of a blocked app: executable and uid.
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, struct exe_key);
	__type(value, __u32);
} block_exe SEC(".maps");

// block_settings[0] is the cgroup level of the targets' cgroups.
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} block_settings SEC(".maps");

static __always_inline __u32 block_level(void)
{
	__u32 zero = 0;
	__u32 *lvl = bpf_map_lookup_elem(&block_settings, &zero);
	return lvl ? *lvl : 0;
}

static __always_inline struct block *block_by(__u32 *tid)
{
	return tid ? bpf_map_lookup_elem(&blocks, tid) : 0;
}

// block_by_tag finds the block of a socket by the tag it got at creation.
static __always_inline struct block *block_by_tag(__u64 cookie)
{
	__u32 tag = socket_target(cookie);
	return tag ? block_by(bpf_map_lookup_elem(&block_tag, &tag)) : 0;
}

// block_target_skb finds the block of a packet's socket.
static __always_inline struct block *block_target_skb(struct __sk_buff *skb)
{
	__u64 cookie = bpf_get_socket_cookie(skb);
	// A socket remembered for a target that is gone (its entry removed
	// and the target added again under a new index) is looked up further.
	struct block *bt = block_by(bpf_map_lookup_elem(&block_sock, &cookie));
	if (bt)
		return bt;
	bt = block_by_tag(cookie);
	if (bt)
		return bt;
	__u64 cg = bpf_skb_cgroup_id(skb);
	__u32 *tid = bpf_map_lookup_elem(&block_cgroup, &cg);
	if (tid)
		return block_by(tid);
	__u32 lvl = block_level();
	if (!lvl)
		return 0;
	cg = bpf_skb_ancestor_cgroup_id(skb, lvl);
	return block_by(bpf_map_lookup_elem(&block_cgroup, &cg));
}

// block_exe_of_task looks the calling task's executable and uid up.
static __always_inline __u32 *block_exe_of_task(void)
{
	struct exe_key k = {};
	if (!current_exe(&k))
		return 0; // a kernel thread: no mm
	k.uid = (__u32)bpf_get_current_uid_gid();
	return bpf_map_lookup_elem(&block_exe, &k);
}

// block_idx_task finds the target of a connect/sendmsg call: its socket's
// cookie or tag (*by_sock set), else the calling task's cgroup or its
// executable. It returns the target's index, 0 for none.
static __always_inline __u32 block_idx_task(struct bpf_sock_addr *ctx, __u64 cookie, int *by_sock)
{
	__u32 *tid = bpf_map_lookup_elem(&block_sock, &cookie);
	*by_sock = 1;
	if (tid && bpf_map_lookup_elem(&blocks, tid))
		return *tid;
	__u32 tag = socket_target(cookie);
	tid = tag ? bpf_map_lookup_elem(&block_tag, &tag) : 0;
	if (tid)
		return *tid;
	*by_sock = 0;
	__u64 cg = bpf_get_current_cgroup_id();
	tid = bpf_map_lookup_elem(&block_cgroup, &cg);
	if (tid)
		return *tid;
	__u32 lvl = block_level();
	if (lvl) {
		cg = bpf_get_current_ancestor_cgroup_id(lvl);
		tid = bpf_map_lookup_elem(&block_cgroup, &cg);
		if (tid)
			return *tid;
	}
	tid = block_exe_of_task();
	return tid ? *tid : 0;
}

// block_target_task finds the block of a connect/sendmsg call; a budgeted
// target's socket found by the task alone is remembered by cookie.
static __always_inline struct block *block_target_task(struct bpf_sock_addr *ctx)
{
	__u64 cookie = bpf_get_socket_cookie(ctx);
	int by_sock;
	__u32 idx = block_idx_task(ctx, cookie, &by_sock);
	struct block *b = idx ? bpf_map_lookup_elem(&blocks, &idx) : 0;
	if (b && !by_sock && (b->flags & F_BUDGET))
		bpf_map_update_elem(&block_sock, &cookie, &idx, BPF_ANY);
	return b;
}

// refuse says whether a connect/sendmsg to address a (family 4 or 6) is
// refused: its target is blocked for that zone.
static __always_inline int refuse(struct bpf_sock_addr *ctx, const __u8 *a, __u8 family)
{
	struct block *b = block_target_task(ctx);
	if (!b)
		return 1;
	if (!(budget_used_up(b) && (b->flags & F_BUDGET_REFUSE)) &&
	    !((b->flags & F_BLOCK) && zone_matches(b->traffic, a, family)))
		return 1;
	__sync_fetch_and_add(&b->refused, 1);
	return 0;
}

static __always_inline int refuse4(struct bpf_sock_addr *ctx)
{
	__u32 ip = ctx->user_ip4;
	return refuse(ctx, (const __u8 *)&ip, 4);
}

static __always_inline int refuse6(struct bpf_sock_addr *ctx)
{
	__u32 ip[4];
	ip[0] = ctx->user_ip6[0];
	ip[1] = ctx->user_ip6[1];
	ip[2] = ctx->user_ip6[2];
	ip[3] = ctx->user_ip6[3];
	return refuse(ctx, (const __u8 *)ip, 6);
}

SEC("cgroup/connect4")
int ct_block_connect4(struct bpf_sock_addr *ctx) { return refuse4(ctx); }

SEC("cgroup/connect6")
int ct_block_connect6(struct bpf_sock_addr *ctx) { return refuse6(ctx); }

SEC("cgroup/sendmsg4")
int ct_block_sendmsg4(struct bpf_sock_addr *ctx) { return refuse4(ctx); }

SEC("cgroup/sendmsg6")
int ct_block_sendmsg6(struct bpf_sock_addr *ctx) { return refuse6(ctx); }

static __always_inline int drop(struct __sk_buff *skb, int egress)
{
	struct block *b = block_target_skb(skb);
	if (!b)
		return 1;
	if ((b->flags & F_BUDGET) && budget_drop(skb, b, egress)) {
		__sync_fetch_and_add(&b->dropped, 1);
		return 0;
	}
	if (!(b->flags & F_BLOCK))
		return 1;
	struct pkt p;
	if (parse(skb, &p)) {
		// Not TCP or UDP: no addresses to sort into zones.
		if (b->traffic != TRAFFIC_ALL)
			return 1;
	} else if (!zone_matches(b->traffic, egress ? p.daddr : p.saddr, p.family)) {
		return 1;
	}
	__sync_fetch_and_add(&b->dropped, 1);
	return 0;
}

SEC("cgroup_skb/egress")
int ct_block_egress(struct __sk_buff *skb) { return drop(skb, 1); }

SEC("cgroup_skb/ingress")
int ct_block_ingress(struct __sk_buff *skb) { return drop(skb, 0); }
