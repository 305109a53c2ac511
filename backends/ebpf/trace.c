//go:build ignore

// SPDX-License-Identifier: GPL-2.0
// Optional fentry hooks of the ebpf monitor: a socket that cgroup/sock_create
// did not see created (accepted from a listener, or open before the helper
// started) gets its owner from the first process that sends or receives on
// it, in process context. They share the owners map and event ring with
// monitor.c; if the kernel cannot attach them (no BTF trampolines) the
// monitor falls back to looking such sockets up from userspace.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

char __license[] SEC("license") = "GPL";

struct owner {
	__u32 tgid;
	__u32 uid;
	__u64 netns;
	__u64 released_ns;
	char comm[16];
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

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 256 * 1024);
} events SEC(".maps");

static __always_inline void claim(void *sk)
{
	__u64 cookie = bpf_get_socket_cookie(sk);
	if (bpf_map_lookup_elem(&owners, &cookie))
		return;
	__u64 id = bpf_get_current_pid_tgid();
	if ((__u32)id == 0)
		return; // idle task / softirq on the idle task: not a process
	struct owner o = {};
	o.tgid = id >> 32;
	o.uid = (__u32)bpf_get_current_uid_gid();
	bpf_get_current_comm(o.comm, sizeof(o.comm));
	if (bpf_map_update_elem(&owners, &cookie, &o, BPF_NOEXIST))
		return;
	struct event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (e) {
		e->tgid = o.tgid;
		e->uid = o.uid;
		e->cookie = cookie;
		__builtin_memcpy(e->comm, o.comm, sizeof(e->comm));
		bpf_ringbuf_submit(e, 0);
	}
}

// Every hooked function takes the socket as its first argument.
#define CLAIM(fn) \
	SEC("fentry/" #fn) int ct_##fn(unsigned long long *ctx) { claim((void *)ctx[0]); return 0; }

CLAIM(tcp_sendmsg)
CLAIM(tcp_recvmsg)
CLAIM(udp_sendmsg)
CLAIM(udp_recvmsg)
CLAIM(udpv6_sendmsg)
CLAIM(udpv6_recvmsg)
