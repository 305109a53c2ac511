// Package socktarget decides, in the kernel, which throttling target every
// new TCP or UDP socket belongs to, when the socket is created: nobody is
// moved between cgroups, so limited processes stay in the cgroup systemd
// gave them.
//
// A BPF program on cgroup/sock_create of the cgroup2 root (socktarget.c)
// looks at the task creating the socket: a process with a process limit
// (and every child it forks, copied in the kernel by a fork tracepoint
// before the child runs) is found by pid; any other process by its
// executable's file identity (inode and device) and effective uid, matched
// against the app rules, so a rule bites from the first socket of a process
// nobody has seen yet, and a process that execs another program is judged
// by what it runs now. The socket's cookie and target number go into the
// socket_targets map, and the throttlers' programs key on it.
//
// # Target identity for other programs
//
// "Which target does this socket belong to" has one answer, for the
// throttlers and for any other BPF program (blocking, monitoring):
//
//   - In BPF: include socktarget.h, which declares the map socket_targets
//     (key: socket cookie as bpf_get_socket_cookie returns it; value: the
//     target number, u32, never 0) and socket_target(cookie). Load the
//     program with Tagger.Replacements as the collection's MapReplacements
//     so it reads the tagger's map.
//   - In Go: Tagger.Number(id) gives a backends.Target's number,
//     Tagger.TargetOf(cookie) the number of a socket.
//
// Numbers are allocated per target ID and never reused while the tagger
// lives, so a socket tagged for a target that was removed matches nothing.
// Sockets created before a target existed are not in the map: throttlers
// match those by cookie from /proc and sock_diag, as before. Accepted
// connections are not created by a task (they are cloned from their
// listener) and are followed the same way.
//
// # Receive window clamp
//
// A download throttler calls Tagger.ClampReceive with a target's number and
// download limit: rwnd.c (sockops on the cgroup2 root, attached while a
// clamp exists) gives that target's new TCP connections, once established,
// a receive buffer and window clamp of 50 ms at the limit plus the limit
// over the connection's round trip (ReceiveClamp), so the sender never
// overruns the shaper's queue and the receiver gets no bursts of data held
// out of order. A new limit re-clamps the target's open clamped connections
// and Unclamp undoes their clamp (window and autotuning back), both through
// copies of the descriptors of the processes the caller names
// (rwnd_open_linux.go); Unclamp also stops clamping new connections.
//
// The Tagger is shared per Options.Tag within a process (Acquire/Close):
// the Placer registers targets, the throttlers read the map.
package socktarget
