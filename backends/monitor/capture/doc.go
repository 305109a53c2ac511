// Package capture is the monitor backend "capture" (priority Good): it reads
// every TCP and UDP packet of the network namespace's interfaces from an
// AF_PACKET TPACKET_V3 ring (headers only, woken once per block; byte counts
// come from the kernel's original packet length), decodes it with gopacket
// and attributes it by 5-tuple to the process that owns the socket.
//
// Attribution does not lose short-lived connections: a second packet socket
// receives only TCP SYNs, on a thread with real-time priority (within a CPU
// budget), and resolves each new flow at once — a sock_diag lookup of the
// one socket gives its inode, and the inode is searched in the fds of the
// processes the proc connector (fork/exec/exit) reported as new, those in
// the monitored namespace first — before a process that connects, sends a
// megabyte and exits is gone. Other new flows (UDP, or when many are
// waiting) are resolved by resolver goroutines with retries and, at most
// every 250 ms, a full /proc scan. UDP has no SYN: its first datagram is seen
// when the ring hands its block over (within 4 ms), so a process that sends
// all its UDP and closes the socket faster than that (a megabyte to a local
// peer in ~5 ms and exit) can be missed — in CI 18–19 of 20 such bursts were
// attributed, the rest counted Unknown. The answer is cached per flow; bytes seen
// while a flow is being resolved are held and credited once it is. Traffic
// whose socket or process cannot be found is counted as Unknown, never given
// to a guess.
//
// Counters: bytes are transport payload bytes (what applications read and
// write, as limits are meant); for TCP, payload delivered, from sequence
// and acknowledgment numbers (seqtrack.go): a retransmission or a packet a
// limiter dropped after the capture saw it is not counted. Packets are packets as captured (a GSO/GRO
// batch counts once). A process that exits is kept until its connections
// have drained (2 s without traffic, at most 60 s), reported once with
// Exited, then dropped.
//
// Build tag no_capture leaves it out (Monitor is then nil).
package capture
