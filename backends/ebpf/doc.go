// Package ebpf holds ChadThrottle's eBPF backends (priority Best): the
// monitor "ebpf", which counts every TCP and UDP payload byte per socket in
// cgroup_skb programs and learns each socket's process in cgroup/sock_create,
// and the throttlers "ebpf_cgroup" (upload and download), which keep one
// token bucket per target in cgroup_skb programs and match a target's
// packets by its cgroup and by the cookies of sockets it already had open.
//
// Programs are attached with BPF links owned by the process: when the helper
// exits or dies the kernel detaches them, so no program outlives it and
// nothing needs pinning.
package ebpf
