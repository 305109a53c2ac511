// Package tc holds ChadThrottle's tc backends: tc_htb (upload), ifb_tc
// (download) and the tc_police fallback (download).
//
// tc_htb and ifb_tc shape only the limited targets' packets: while a limit
// exists, a cls_bpf filter on the shaped interface's clsact hook (egress for
// upload, ingress for download) runs a BPF program (classify.c) that finds
// the packet's target and, for those packets only, an act_mirred action
// redirects them to an IFB device of the product's (ctifbu…/ctifbd…), whose
// HTB root has one class per target. Everything else keeps its usual path,
// and the user's own qdiscs are never replaced. Targets are recognised by
// socket cookie (connections open when the limit was set, found with
// /proc/PID/fd and sock_diag) and by cgroup v2 id (sockets created later in
// the target's cgroup); no cls_cgroup, net_cls or act_police is needed.
// Everything is done through netlink and the bpf syscall, never tc or ip.
package tc

//go:generate go tool -modfile=../../../packaging/tools/go.mod bpf2go -tags linux -target bpfel -cflags "-O2 -g -Wall -Werror -I/usr/include/x86_64-linux-gnu -I/usr/include/aarch64-linux-gnu" classify classify.c
