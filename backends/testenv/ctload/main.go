// Command ctload is the tests' traffic tool: a TCP/UDP server that sinks or
// sources payload, and a client that sends or receives for a bounded time
// and prints one JSON report per interval ({"t":s,"bytes":n,"total":n}).
// Tests run it inside network namespaces they create; it refuses durations
// over 120 s so every load loop is bounded.
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
)

const maxDuration = 120 * time.Second

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: ctload serve|client [flags]")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "serve":
		err = serve(os.Args[2:])
	case "client":
		err = client(os.Args[2:])
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
	mode := fs.String("mode", "sink", "sink (read and discard) or source (write)")
	udp := fs.Bool("udp", false, "UDP instead of TCP (sink only)")
	fs.Parse(args)
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
	ln, err := net.Listen("tcp", *listen)
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
	fs.Parse(args)
	if *dur <= 0 || *dur > maxDuration {
		return fmt.Errorf("duration %v out of range (0, %v]", *dur, maxDuration)
	}
	if *size <= 0 || *size > len(buf) {
		return fmt.Errorf("size %d out of range", *size)
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
		p := buf[:*size]
		for time.Now().Before(deadline) {
			var n int
			var err error
			if *mode == "recv" {
				n, err = c.Read(p)
			} else {
				n, err = c.Write(p)
			}
			total.Add(uint64(n))
			if err != nil && !*udp {
				return
			}
			if *limit > 0 && total.Load() >= uint64(*limit) {
				return
			}
		}
	}()
	enc := json.NewEncoder(os.Stdout)
	tick := time.NewTicker(*interval)
	defer tick.Stop()
	var last uint64
	report := func(done bool) {
		t := total.Load()
		enc.Encode(map[string]any{"t": time.Since(start).Seconds(), "bytes": t - last, "total": t, "done": done})
		last = t
	}
	for {
		select {
		case <-tick.C:
			report(false)
		case <-done:
			report(false)
			report(true)
			return nil
		}
	}
}
