//go:build ignore

// SPDX-License-Identifier: GPL-2.0
//
// ChadThrottle's receive window clamp: a TCP socket tagged (socktarget.h)
// for a target with a download limit gets a receive buffer and window
// clamp sized for that limit when it connects, so the sender never has
// more in flight than the download shaper's queue holds. Without it the
// autotuned window (megabytes) overflows the shaper's queue; the dropped
// segments arrive later, out of order, and the receiver hands the held data
// to the application at once after the retransmission: 1-s windows of up
// to 1.2-1.4x the limit at the receiver while the shaper itself stays at
// the limit.
//
// ct_clamp_rwnd (sockops on the cgroup2 root): on connect (before the SYN,
// so the window scale fits) and when a connection is established, looks up
// the socket's target and that target's clamp in rwnd_clamps and sets
// SO_RCVBUF (which also stops receive buffer autotuning, which would raise
// the clamp again) and TCP_WINDOW_CLAMP.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include "socktarget.h"

char __license[] SEC("license") = "GPL";

#define SOL_SOCKET 1
#define SO_RCVBUF 8
#define SOL_TCP 6
#define TCP_WINDOW_CLAMP 10

// rwnd_clamp is what a target's sockets get: the window clamp, and the
// receive buffer (0: leave it to autotuning).
struct rwnd_clamp {
	__u32 window;
	__u32 rcvbuf;
};

// rwnd_clamps: target number → its clamp.
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32);
	__type(value, struct rwnd_clamp);
} rwnd_clamps SEC(".maps");

// rwnd_counts[0]: clamps set (a connect and its establishment each count), [1]: setsockopt failures.
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, __u64);
} rwnd_counts SEC(".maps");

static __always_inline void count(__u32 i)
{
	__u64 *c = bpf_map_lookup_elem(&rwnd_counts, &i);
	if (c)
		(*c)++;
}

SEC("sockops")
int ct_clamp_rwnd(struct bpf_sock_ops *skops)
{
	switch (skops->op) {
	case BPF_SOCK_OPS_TCP_CONNECT_CB:
	case BPF_SOCK_OPS_ACTIVE_ESTABLISHED_CB:
	case BPF_SOCK_OPS_PASSIVE_ESTABLISHED_CB:
		break;
	default:
		return 1;
	}
	__u32 t = socket_target(bpf_get_socket_cookie(skops));
	if (!t)
		return 1;
	struct rwnd_clamp *c = bpf_map_lookup_elem(&rwnd_clamps, &t);
	if (!c)
		return 1;
	int buf = c->rcvbuf, win = c->window, err = 0;
	if (buf)
		err = bpf_setsockopt(skops, SOL_SOCKET, SO_RCVBUF, &buf, sizeof(buf));
	if (!err)
		err = bpf_setsockopt(skops, SOL_TCP, TCP_WINDOW_CLAMP, &win, sizeof(win));
	count(err ? 1 : 0);
	return 1;
}
