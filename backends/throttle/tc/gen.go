// Package tc holds ChadThrottle's tc backends: tc_htb limits upload with an
// HTB root qdisc on the shaped interface, ifb_tc limits download by
// redirecting the interface's ingress (act_mirred) to an IFB device of the
// product's own with an HTB root, and tc_police is the policing fallback.
// Packets are classified by BPF programs (classify.c) attached with cls_bpf
// as the HTB filter: socket cookie or address tuple for connections that were
// open when the limit was set, cgroup id (the target's cgroup v2 directory)
// for sockets created later. No cls_cgroup, no net_cls and no act_police are
// needed. Everything is done through netlink and the bpf syscall.
package tc

//go:generate go tool bpf2go -tags linux -target bpfel -cflags "-O2 -g -Wall -Werror -I/usr/include/x86_64-linux-gnu -I/usr/include/aarch64-linux-gnu" classify classify.c
