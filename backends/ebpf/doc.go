// Package ebpf holds ChadThrottle's eBPF backends (priority Best).
//
// The monitor "ebpf" counts, per socket cookie, in cgroup_skb programs on
// the cgroup2 root (restricted to one network namespace by its cookie),
// what each application got: for TCP the socket's own counters read on
// every packet (payload received in order; payload the peer acknowledged),
// so neither packets a limiter dropped or held nor retransmissions count;
// for UDP the payload of every packet. It learns each socket's process
// in cgroup/sock_create, in process context, so sockets that live a few
// milliseconds are attributed exactly. Sockets it did not see created (open
// before the helper started, or accepted from a listener) are looked up
// once from userspace: sock_diag gives the cookie's inode and /proc the
// inode's process; an accepted connection already closed goes to the
// process listening on its local port.
//
// The throttlers "ebpf_cgroup" (upload and download) keep one token bucket
// per target in payload bytes, in a cgroup_skb program on the cgroup2 root.
// A packet belongs to a target when its socket's cookie was found among the
// target's open sockets when the limit was set, or when its socket was
// created in the target's cgroup. Upload shapes with the congestion
// notification return codes (TCP keeps a stopped segment and backs off)
// and paces the target's TCP sockets at its rate (SO_MAX_PACING_RATE,
// shared among the sockets that send; pace_linux.go), so the bucket rarely
// has to stop one; download polices.
//
// Programs are attached with BPF links owned by the process: when the helper
// exits or dies the kernel detaches them, so no program outlives it and
// nothing needs pinning or reconciling.
package ebpf
