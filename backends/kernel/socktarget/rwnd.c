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
// ct_clamp_rwnd (sockops on the cgroup2 root): when a connection is
// established, looks up the socket's target and that target's clamp in
// rwnd_clamps and sets SO_RCVBUF (which also stops receive buffer
// autotuning, which would raise the clamp again) and TCP_WINDOW_CLAMP; and
// its send clamp in snd_clamps (an upload shaper's) and sets SO_SNDBUF.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include "socktarget.h"

char __license[] SEC("license") = "GPL";

#define SOL_SOCKET 1
#define SO_SNDBUF 7
#define SO_RCVBUF 8
#define SOL_TCP 6
#define TCP_WINDOW_CLAMP 10

// rwnd_clamp is a target's clamp: a connection's window is window plus
// what rate brings in over the connection's round trip (srtt from the
// handshake), so a distant server still fills the limit; a window of at
// most rcvbuf_max is also set as the receive buffer. A connection whose
// round trip is under near_us starts from window_near instead (a policer's
// smaller window on a near path; near_us 0: never).
struct rwnd_clamp {
	__u64 rate; // bytes per second
	__u32 window;
	__u32 rcvbuf_max;
	__u32 window_near;
	__u32 near_us;
};

// snd_clamp is a target's send clamp (an upload shaper's, tc_htb): a
// connection's send buffer is window plus what rate sends over its round
// trip, so what TCP has in flight stays below the shaper's queue. The
// shaper is behind a redirect to an IFB, which detaches packets from their
// socket: without the clamp TCP fills the queue in slow start, loses its
// tail and the receiver gets the held data at once a second later.
struct snd_clamp {
	__u64 rate; // bytes per second
	__u32 window;
	__u32 pad;
};

// snd_clamps: target number → its send clamp.
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32);
	__type(value, struct snd_clamp);
} snd_clamps SEC(".maps");

// rwnd_sock.rcvbuf bits: 1 SO_RCVBUF set by the clamp, 2 the application
// had locked it (user space), 4 SO_SNDBUF set by the send clamp.
#define REC_RCVBUF 1
#define REC_SNDBUF 4

// rwnd_clamps: target number → its clamp.
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32);
	__type(value, struct rwnd_clamp);
} rwnd_clamps SEC(".maps");

// rwnd_sock is what a clamped socket got, kept with the socket (freed
// with it) so that user space can raise, lower or undo the clamp through a
// copy of the socket's descriptor (pidfd_getfd) when the limit changes or
// goes: the clamp and SO_RCVBUF's lock on autotuning would otherwise stay
// until the connection closes.
struct rwnd_sock {
	__u32 target;  // the target number whose clamp it got
	__u32 window;  // the window clamp set
	__u32 rtt_us;  // the round trip at the handshake
	__u32 rcvbuf;  // REC_* bits: what the clamps set (autotuning locked)
};

// rwnd_socks: socket → what it got (user space keys it by descriptor).
struct {
	__uint(type, BPF_MAP_TYPE_SK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct rwnd_sock);
} rwnd_socks SEC(".maps");

// rwnd_counts[0]: sockets clamped, [1]: setsockopt failures.
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
	// Once established: the round trip is known, and the window scale,
	// chosen at connect, stays large enough for any later window.
	if (skops->op != BPF_SOCK_OPS_ACTIVE_ESTABLISHED_CB &&
	    skops->op != BPF_SOCK_OPS_PASSIVE_ESTABLISHED_CB)
		return 1;
	__u32 t = socket_target(bpf_get_socket_cookie(skops));
	if (!t)
		return 1;
	struct rwnd_clamp *c = bpf_map_lookup_elem(&rwnd_clamps, &t);
	struct snd_clamp *sc = bpf_map_lookup_elem(&snd_clamps, &t);
	// Two tests, not one: clang would OR the two pointers, which the
	// verifier refuses.
	if (!c) {
		asm volatile("" : "+r"(sc));
		if (!sc)
			return 1;
	}
	__u64 rtt_us = skops->srtt_us >> 3; // srtt_us is kept times 8
	if (rtt_us > 2000000)
		rtt_us = 2000000;
	int win = 0, err = 0;
	__u32 flags = 0;
	if (c) {
		__u64 w = rtt_us < c->near_us ? c->window_near : c->window;
		w += c->rate * rtt_us / 1000000;
		if (w > (1 << 30))
			w = 1 << 30;
		win = w;
		if (w <= c->rcvbuf_max) {
			err = bpf_setsockopt(skops, SOL_SOCKET, SO_RCVBUF, &win, sizeof(win));
			flags |= REC_RCVBUF;
		}
		if (!err)
			err = bpf_setsockopt(skops, SOL_TCP, TCP_WINDOW_CLAMP, &win, sizeof(win));
	}
	if (!err && sc) {
		__u64 sw = sc->window + sc->rate * rtt_us / 1000000;
		if (sw > (1 << 30))
			sw = 1 << 30;
		int snd = sw;
		err = bpf_setsockopt(skops, SOL_SOCKET, SO_SNDBUF, &snd, sizeof(snd));
		if (!err)
			flags |= REC_SNDBUF;
	}
	struct bpf_sock *sk = skops->sk;
	if (!err && sk) {
		struct rwnd_sock *r = bpf_sk_storage_get(&rwnd_socks, sk, 0, BPF_SK_STORAGE_GET_F_CREATE);
		if (r) {
			r->target = t;
			r->window = win;
			r->rtt_us = rtt_us;
			r->rcvbuf = flags;
		} else {
			err = 1;
		}
	}
	count(err ? 1 : 0);
	return 1;
}
