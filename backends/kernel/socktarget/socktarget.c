//go:build ignore

// SPDX-License-Identifier: GPL-2.0
//
// ChadThrottle's socket tagger: decides, when an IPv4 or IPv6 socket is
// created, which throttling target it belongs to, from the task creating
// it, and records that in socket_targets (socktarget.h) for the throttlers'
// programs. Nothing is moved between cgroups.
//
// ct_tag_sock   (cgroup/sock_create on the cgroup2 root): the creating
//               process's own target (pid_targets, process limits) wins;
//               else its executable's file identity (inode, device) and
//               effective uid, looked up in exe_targets (app rules), so a
//               rule bites from the first socket of a process nobody has
//               seen yet, and a process that execs another program is
//               judged by the program it runs now.
// ct_untag_sock (cgroup/sock_release): forgets the socket.
// ct_fork       (tp_btf/sched_process_fork): a child process inherits its
//               parent's process target, in the kernel, before it runs.
// ct_exit       (tp_btf/sched_process_exit): a process that exits leaves
//               pid_targets, so a reused pid inherits nothing.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>
#include "socktarget.h"
#include "task.h"

char __license[] SEC("license") = "GPL";

#define AF_INET 2
#define AF_INET6 10

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, struct exe_key);
	__type(value, __u32);
} exe_targets SEC(".maps");

// pid_targets: process (tgid) → target number of a process limit.
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__type(key, __u32);
	__type(value, __u32);
} pid_targets SEC(".maps");

// counters[0]: sockets tagged by process, [1]: by executable, [2]: children
// that inherited a process target.
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 3);
	__type(key, __u32);
	__type(value, __u64);
} counters SEC(".maps");

static __always_inline void count(__u32 i)
{
	__u64 *c = bpf_map_lookup_elem(&counters, &i);
	if (c)
		(*c)++;
}

static __always_inline __u32 target_of_current(void)
{
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	__u32 *t = bpf_map_lookup_elem(&pid_targets, &tgid);
	if (t) {
		count(0);
		return *t;
	}
	struct exe_key k = {};
	struct task_struct___ct *task = current_exe(&k);
	if (!task)
		return 0; // a kernel thread
	k.uid = BPF_CORE_READ(task, cred, euid.val);
	t = bpf_map_lookup_elem(&exe_targets, &k);
	if (!t)
		return 0;
	count(1);
	return *t;
}

SEC("cgroup/sock_create")
int ct_tag_sock(struct bpf_sock *sk)
{
	if (sk->family != AF_INET && sk->family != AF_INET6)
		return 1;
	__u32 t = target_of_current();
	if (t) {
		__u64 cookie = bpf_get_socket_cookie(sk);
		bpf_map_update_elem(&socket_targets, &cookie, &t, BPF_ANY);
	}
	return 1; // never refuses a socket
}

SEC("cgroup/sock_release")
int ct_untag_sock(struct bpf_sock *sk)
{
	__u64 cookie = bpf_get_socket_cookie(sk);
	bpf_map_delete_elem(&socket_targets, &cookie);
	return 1;
}

SEC("tp_btf/sched_process_fork")
int BPF_PROG(ct_fork, struct task_struct___ct *parent, struct task_struct___ct *child)
{
	__u32 pid = BPF_CORE_READ(child, pid), tgid = BPF_CORE_READ(child, tgid);
	if (pid != tgid)
		return 0; // a new thread of the same process
	__u32 ptgid = BPF_CORE_READ(parent, tgid);
	__u32 *t = bpf_map_lookup_elem(&pid_targets, &ptgid);
	if (t) {
		bpf_map_update_elem(&pid_targets, &tgid, t, BPF_NOEXIST);
		count(2);
	}
	return 0;
}

SEC("tp_btf/sched_process_exit")
int BPF_PROG(ct_exit, struct task_struct___ct *p)
{
	__u32 pid = BPF_CORE_READ(p, pid), tgid = BPF_CORE_READ(p, tgid);
	if (pid == tgid)
		bpf_map_delete_elem(&pid_targets, &tgid);
	return 0;
}
