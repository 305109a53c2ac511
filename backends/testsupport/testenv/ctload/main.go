// Command ctload is the tests' traffic tool: a TCP/UDP server that sinks or
// sources payload, and a client that sends or receives for a bounded time
// and prints one JSON report per interval ({"t":s,"bytes":n,"total":n,
// "retrans":n}); retrans is what TCP sent again (tcpi_bytes_retrans), so a
// tap on the sender's interface sees total+retrans payload bytes.
// Tests run it inside network namespaces they create; it refuses durations
// over 120 s so every load loop is bounded. "ctload delay" is the delay
// line of testenv.NewBedRTT (delay.go).
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

const maxDuration = 120 * time.Second

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: ctload serve|client|delay [flags]")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "serve":
		err = serve(os.Args[2:])
	case "client":
		err = client(os.Args[2:])
	case "delay":
		err = delayMain(os.Args[2:])
	default:
		err = fmt.Errorf("unknown command %q", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "ctload:", err)
		os.Exit(1)
	}
}

var buf = make([]byte, 64<<10)

func serve(args []string) error {
	fs := flag.NewFlagSet("serve", flag.ExitOnError)
	listen := fs.String("listen", "[::]:5201", "address")
	mode := fs.String("mode", "sink", "sink (read and discard), source (write) or http (GET /N answers N bytes, N ≤ 1 GB)")
	udp := fs.Bool("udp", false, "UDP instead of TCP (sink only)")
	cc := fs.String("cc", "", "TCP congestion control of accepted connections (e.g. cubic; \"\": the namespace's default)")
	fs.Parse(args)
	if *mode == "http" {
		return serveHTTP(*listen, *cc)
	}
	if *udp {
		pc, err := net.ListenPacket("udp", *listen)
		if err != nil {
			return err
		}
		fmt.Println("listening", pc.LocalAddr())
		for {
			if _, _, err := pc.ReadFrom(buf); err != nil {
				return err
			}
		}
	}
	ln, err := listenTCP(*listen, *cc)
	if err != nil {
		return err
	}
	fmt.Println("listening", ln.Addr())
	for {
		c, err := ln.Accept()
		if err != nil {
			return err
		}
		go func() {
			defer c.Close()
			if *mode == "source" {
				for {
					if _, err := c.Write(buf); err != nil {
						return
					}
				}
			}
			io.Copy(io.Discard, c)
		}()
	}
}

// ccListener sets the congestion control of the connections it accepts.
type ccListener struct {
	net.Listener
	cc string
}

func (l ccListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	if err := setCongestion(c, l.cc); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// listenTCP listens on addr; cc ("": the namespace's default) is the
// congestion control of the connections it accepts.
func listenTCP(addr, cc string) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil || cc == "" {
		return ln, err
	}
	return ccListener{ln, cc}, nil
}

// setCongestion sets c's TCP congestion control (root may set any the
// kernel has, allowed in the namespace or not).
func setCongestion(c net.Conn, cc string) error {
	raw, err := c.(*net.TCPConn).SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	if err := raw.Control(func(fd uintptr) {
		serr = unix.SetsockoptString(int(fd), unix.IPPROTO_TCP, unix.TCP_CONGESTION, cc)
	}); err != nil {
		return err
	}
	if serr != nil {
		return fmt.Errorf("congestion control %s: %w", cc, serr)
	}
	return nil
}

func client(args []string) error {
	fs := flag.NewFlagSet("client", flag.ExitOnError)
	connect := fs.String("connect", "", "address to connect to")
	mode := fs.String("mode", "send", "send (upload) or recv (download)")
	dur := fs.Duration("duration", 5*time.Second, "how long (≤ 120s)")
	interval := fs.Duration("interval", time.Second, "report interval")
	limit := fs.Int64("bytes", 0, "stop after this many payload bytes (0 = no limit)")
	udp := fs.Bool("udp", false, "UDP (send only)")
	size := fs.Int("size", 64<<10, "write size (UDP datagram size)")
	wait := fs.Bool("wait-stdin", false, "wait for a line on stdin before starting traffic")
	hold := fs.Duration("hold", 0, "keep the connection open this long after the last write (≤ 10s), as a client awaiting an answer")
	drain := fs.Bool("drain", false, "TCP send: before the last report, wait (≤ 10 s) until the peer acknowledged every byte, so total and retrans are final")
	fs.Parse(args)
	if *dur <= 0 || *dur > maxDuration {
		return fmt.Errorf("duration %v out of range (0, %v]", *dur, maxDuration)
	}
	if *size <= 0 || *size > len(buf) {
		return fmt.Errorf("size %d out of range", *size)
	}
	if *hold < 0 || *hold > 10*time.Second {
		return fmt.Errorf("hold %v out of range [0, 10s]", *hold)
	}
	fmt.Printf("pid %d\n", os.Getpid())
	if *wait {
		var line string
		fmt.Scanln(&line)
	}
	network := "tcp"
	if *udp {
		network = "udp"
	}
	c, err := net.Dial(network, *connect)
	if err != nil {
		return err
	}
	defer c.Close()
	var total atomic.Uint64
	start := time.Now()
	deadline := start.Add(*dur)
	c.SetDeadline(deadline)
	done := make(chan struct{})
	go func() {
		defer close(done)
		move(c, *mode == "recv", *udp, buf[:*size], deadline, uint64(*limit), &total)
	}()
	enc := json.NewEncoder(os.Stdout)
	tick := time.NewTicker(*interval)
	defer tick.Stop()
	var last uint64
	report := func(done bool) {
		t := total.Load()
		enc.Encode(map[string]any{"t": time.Since(start).Seconds(), "bytes": t - last, "total": t, "retrans": retransmitted(c), "done": done})
		last = t
	}
	for {
		select {
		case <-tick.C:
			report(false)
		case <-done:
			if *drain && *mode == "send" {
				drained(c, 10*time.Second)
			}
			time.Sleep(*hold)
			report(false)
			report(true)
			return nil
		}
	}
}

// tcpInfo reads TCP_INFO of c; ok is false for anything but a TCP socket.
func tcpInfo(c net.Conn) (info *unix.TCPInfo, outq int, ok bool) {
	tc, isTCP := c.(*net.TCPConn)
	if !isTCP {
		return nil, 0, false
	}
	raw, err := tc.SyscallConn()
	if err != nil {
		return nil, 0, false
	}
	var ierr error
	raw.Control(func(fd uintptr) {
		info, ierr = unix.GetsockoptTCPInfo(int(fd), unix.IPPROTO_TCP, unix.TCP_INFO)
		if ierr == nil {
			outq, ierr = unix.IoctlGetInt(int(fd), unix.SIOCOUTQ)
		}
	})
	return info, outq, ierr == nil
}

// retransmitted is the payload TCP sent more than once on c (0 for UDP).
func retransmitted(c net.Conn) uint64 {
	if info, _, ok := tcpInfo(c); ok {
		return info.Bytes_retrans
	}
	return 0
}

// drained waits until the peer acknowledged everything written to c, or
// until max passed.
func drained(c net.Conn, max time.Duration) {
	for end := time.Now().Add(max); time.Now().Before(end); time.Sleep(5 * time.Millisecond) {
		info, outq, ok := tcpInfo(c)
		if !ok || (outq == 0 && info.Unacked == 0) {
			return
		}
	}
}

// move writes (or with recv reads) p on c until deadline, an error (TCP)
// or, when limit is not 0, limit bytes, counting them in total.
func move(c net.Conn, recv, udp bool, p []byte, deadline time.Time, limit uint64, total *atomic.Uint64) {
	for time.Now().Before(deadline) {
		var n int
		var err error
		if recv {
			n, err = c.Read(p)
		} else {
			n, err = c.Write(p)
		}
		total.Add(uint64(n))
		if err != nil && !udp {
			return
		}
		if limit > 0 && total.Load() >= limit {
			return
		}
	}
}
