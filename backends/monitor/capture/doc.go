// Package capture is the monitor backend "capture" (priority Good): it reads
// every TCP and UDP packet of the network namespace's up interfaces from an
// AF_PACKET socket (headers only; byte counts come from the kernel's
// original packet length), decodes it with gopacket and attributes it by
// 5-tuple to the process that owns the socket. A sock_diag lookup of the one
// socket gives its inode, a socket-inode → process map kept fresh by proc
// connector (fork/exec/exit) events gives the process, and the result is
// cached per flow, so connections of processes that live only milliseconds
// are still attributed. Traffic whose socket or process cannot be found is
// counted as Unknown, never given to a guess.
//
// Byte counters are transport payload bytes (what the application reads or
// writes), packet counters are packets as captured (a GSO/GRO batch counts
// once).
//
// Build tag no_capture leaves it out (Monitor is then nil).
package capture
