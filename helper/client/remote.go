package client

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/godbus/dbus/v5"
)

// Remote machines: like `systemctl -H` and `busctl -H`, the client runs
//
//	ssh -xT [-p PORT] -- [USER@]HOST systemd-stdio-bridge [--bus-path=ADDRESS]
//
// and speaks D-Bus over the ssh process's stdin and stdout (systemd calls
// this transport "unixexec:"; godbus has none, so this file is it). The ssh
// is the one in PATH, with the user's own configuration, keys and agent;
// on HOST the bridge connects to the bus as the login user, so the remote
// polkit decides as for any other caller there.

// Errors of remote connections, for errors.Is. The error returned is a
// *RemoteError that says which host and what ssh said.
var (
	// ErrSSHMissing: there is no ssh in PATH here.
	ErrSSHMissing = errors.New("ssh is not installed")
	// ErrHostUnreachable: ssh could not resolve or reach the host.
	ErrHostUnreachable = errors.New("host unreachable")
	// ErrAuthRefused: the host refused the SSH login (keys, agent,
	// password) or its host key did not verify.
	ErrAuthRefused = errors.New("SSH login refused")
	// ErrBridgeMissing: the remote side has no systemd-stdio-bridge.
	ErrBridgeMissing = errors.New("systemd-stdio-bridge missing on the remote host")
	// ErrRemoteBus: the bridge ran but could not connect to the bus there.
	ErrRemoteBus = errors.New("the remote bus is not reachable")
	// ErrSSHFailed: any other failure of the ssh connection.
	ErrSSHFailed = errors.New("ssh failed")
)

// RemoteError is a failure to reach a remote helper's bus over SSH.
type RemoteError struct {
	Host   string // as given: [USER@]HOST[:PORT]
	Kind   error  // one of the Err* of remote connections
	Detail string // what ssh or the bridge said (last lines of stderr)
	Hint   string // what to do about it
}

func (e *RemoteError) Error() string {
	var b strings.Builder
	switch e.Kind {
	case ErrSSHMissing:
		fmt.Fprintf(&b, "cannot connect to %s: ssh is not installed here (no ssh in PATH)", e.Host)
	case ErrHostUnreachable:
		fmt.Fprintf(&b, "cannot connect to %s: the host is unreachable", e.Host)
	case ErrAuthRefused:
		fmt.Fprintf(&b, "cannot connect to %s: the SSH login was refused", e.Host)
	case ErrBridgeMissing:
		fmt.Fprintf(&b, "cannot connect to %s: systemd-stdio-bridge is not installed there", e.Host)
	case ErrRemoteBus:
		fmt.Fprintf(&b, "cannot connect to %s: systemd-stdio-bridge there could not connect to the D-Bus bus", e.Host)
	default:
		fmt.Fprintf(&b, "cannot connect to %s over ssh", e.Host)
	}
	if e.Detail != "" {
		fmt.Fprintf(&b, " (%s)", e.Detail)
	}
	if e.Hint != "" {
		b.WriteString(". ")
		b.WriteString(e.Hint)
	}
	return b.String()
}

// Unwrap returns Kind, so errors.Is(err, ErrAuthRefused) works.
func (e *RemoteError) Unwrap() error { return e.Kind }

// HostSpec is a parsed [USER@]HOST[:PORT].
type HostSpec struct {
	User, Host, Port string
}

// ParseHost parses [USER@]HOST[:PORT]; an IPv6 address with a port goes
// in brackets ([fd00::1]:2222); a bare IPv6 address is taken whole.
func ParseHost(s string) (HostSpec, error) {
	var h HostSpec
	rest := s
	if i := strings.LastIndexByte(rest, '@'); i >= 0 {
		h.User, rest = rest[:i], rest[i+1:]
		if h.User == "" {
			return h, fmt.Errorf("host %q: empty user before @", s)
		}
	}
	switch {
	case strings.HasPrefix(rest, "["):
		host, port, err := net.SplitHostPort(rest)
		if err != nil {
			if strings.HasSuffix(rest, "]") {
				host, port = strings.Trim(rest, "[]"), ""
			} else {
				return h, fmt.Errorf("host %q: %v", s, err)
			}
		}
		h.Host, h.Port = host, port
	case strings.Count(rest, ":") == 1:
		i := strings.IndexByte(rest, ':')
		h.Host, h.Port = rest[:i], rest[i+1:]
	default:
		h.Host = rest
	}
	if h.Host == "" {
		return h, fmt.Errorf("host %q: no host name", s)
	}
	if strings.HasPrefix(h.Host, "-") || strings.ContainsAny(h.Host+h.User, " \t\n'\"\\;&|$`") {
		return h, fmt.Errorf("host %q: not a host name", s)
	}
	if h.Port != "" {
		if n, err := strconv.Atoi(h.Port); err != nil || n < 1 || n > 65535 {
			return h, fmt.Errorf("host %q: port %q is not a number from 1 to 65535", s, h.Port)
		}
	}
	return h, nil
}

// Destination is what ssh is given as its host argument: [USER@]HOST.
func (h HostSpec) Destination() string {
	if h.User != "" {
		return h.User + "@" + h.Host
	}
	return h.Host
}

// BridgeCommand is the remote command for bus: the system bus (bus "" or
// "system"), the login user's bus ("session") or an address there.
func BridgeCommand(bus string) ([]string, error) {
	cmd := []string{"systemd-stdio-bridge"}
	switch bus {
	case "", "system":
	case "session":
		cmd = append(cmd, "--user")
	default:
		if !strings.Contains(bus, ":") {
			return nil, fmt.Errorf("bus %q is not system, session or a D-Bus address (unix:path=…)", bus)
		}
		// ssh hands the command to the remote user's shell: quote it.
		cmd = append(cmd, shellQuote("--bus-path="+bus))
	}
	return cmd, nil
}

// SSHArgs returns the arguments of ssh (after "ssh") that reach bus on
// host through systemd-stdio-bridge.
func SSHArgs(host, bus string) ([]string, error) {
	h, err := ParseHost(host)
	if err != nil {
		return nil, err
	}
	bridge, err := BridgeCommand(bus)
	if err != nil {
		return nil, err
	}
	args := []string{"-xT"}
	if h.Port != "" {
		args = append(args, "-p", h.Port)
	}
	args = append(args, "--", h.Destination())
	return append(args, bridge...), nil
}

func shellQuote(s string) string {
	safe := true
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_=:/.,@%+", r)) {
			safe = false
			break
		}
	}
	if safe && s != "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// SSHCommand is the program run for remote connections; tests leave it.
var SSHCommand = "ssh"

// HandshakeTimeout bounds connecting over ssh, authentication to the bus
// and Hello: it leaves time to type an SSH password or passphrase.
var HandshakeTimeout = 2 * time.Minute

// sshPipe is an ssh process seen as an io.ReadWriteCloser: its stdin and
// stdout carry the D-Bus stream.
type sshPipe struct {
	cmd    *exec.Cmd
	in     io.WriteCloser
	out    io.ReadCloser
	stderr *tailBuffer
	exited chan struct{}
	once   sync.Once
}

func (p *sshPipe) Read(b []byte) (int, error)  { return p.out.Read(b) }
func (p *sshPipe) Write(b []byte) (int, error) { return p.in.Write(b) }

// Close ends the stream: ssh sees EOF on its stdin and ends the remote
// bridge; if it does not exit promptly it is killed.
func (p *sshPipe) Close() error {
	p.once.Do(func() {
		p.in.Close()
		go func() {
			select {
			case <-p.exited:
			case <-time.After(3 * time.Second):
				p.cmd.Process.Signal(syscall.SIGTERM)
				select {
				case <-p.exited:
				case <-time.After(2 * time.Second):
					p.cmd.Process.Kill()
				}
			}
		}()
	})
	return nil
}

// tailBuffer keeps the last bytes a process wrote to stderr.
type tailBuffer struct {
	mu sync.Mutex
	b  []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, p...)
	if len(t.b) > 8192 {
		t.b = append([]byte(nil), t.b[len(t.b)-8192:]...)
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(bytes.TrimSpace(t.b))
}

// DialHost connects to bus on host over ssh and systemd-stdio-bridge and
// returns an authenticated connection (Hello done). Failures are
// *RemoteError values.
func DialHost(host, bus string) (*dbus.Conn, error) {
	args, err := SSHArgs(host, bus)
	if err != nil {
		return nil, err
	}
	path, err := exec.LookPath(SSHCommand)
	if err != nil {
		return nil, &RemoteError{Host: host, Kind: ErrSSHMissing,
			Hint: "Install the OpenSSH client (Debian/Ubuntu: openssh-client; Fedora: openssh-clients)"}
	}
	cmd := exec.Command(path, args...)
	p := &sshPipe{cmd: cmd, stderr: &tailBuffer{}, exited: make(chan struct{})}
	cmd.Stderr = p.stderr
	if p.in, err = cmd.StdinPipe(); err != nil {
		return nil, err
	}
	if p.out, err = cmd.StdoutPipe(); err != nil {
		return nil, err
	}
	// ssh stays in our process group: it may have to ask for a password
	// or passphrase on the terminal, which only the foreground group reads.
	if err := cmd.Start(); err != nil {
		return nil, &RemoteError{Host: host, Kind: ErrSSHFailed, Detail: err.Error()}
	}
	go func() { cmd.Wait(); close(p.exited) }()

	fail := func(err error) error {
		p.Close()
		select {
		case <-p.exited:
		case <-time.After(5 * time.Second):
			cmd.Process.Kill()
			<-p.exited
		}
		return classify(host, bus, cmd.ProcessState, p.stderr.String(), err)
	}
	conn, err := dbus.NewConn(p)
	if err != nil {
		return nil, fail(err)
	}
	done := make(chan error, 1)
	go func() {
		if err := conn.Auth(nil); err != nil {
			done <- err
			return
		}
		done <- conn.Hello()
	}()
	select {
	case err = <-done:
	case <-time.After(HandshakeTimeout):
		err = fmt.Errorf("no answer within %v", HandshakeTimeout)
	}
	if err != nil {
		conn.Close()
		return nil, fail(err)
	}
	return conn, nil
}

// classify turns what ssh left behind into a RemoteError.
func classify(host, bus string, st interface{ ExitCode() int }, stderr string, err error) error {
	code := -1
	if st != nil {
		code = st.ExitCode()
	}
	detail := lastLines(stderr, 2)
	if detail == "" && err != nil {
		detail = err.Error()
	}
	e := &RemoteError{Host: host, Kind: ErrSSHFailed, Detail: detail}
	low := strings.ToLower(stderr)
	switch {
	case strings.Contains(low, "could not resolve hostname"), strings.Contains(low, "connection refused"),
		strings.Contains(low, "no route to host"), strings.Contains(low, "connection timed out"),
		strings.Contains(low, "network is unreachable"), strings.Contains(low, "operation timed out"),
		strings.Contains(low, "name or service not known"), strings.Contains(low, "connection closed by remote host") && code == 255 && !strings.Contains(low, "authenticat"):
		e.Kind = ErrHostUnreachable
		e.Hint = "Check the name, the port and that an SSH server runs there"
	case strings.Contains(low, "permission denied"), strings.Contains(low, "host key verification failed"),
		strings.Contains(low, "too many authentication failures"), strings.Contains(low, "no more authentication methods"):
		e.Kind = ErrAuthRefused
		e.Hint = "Make sure 'ssh " + destination(host) + "' logs in by itself (key or agent, known host key); ChadThrottle uses your ssh configuration as it is"
	case code == 127 || strings.Contains(low, "systemd-stdio-bridge: not found") || strings.Contains(low, "systemd-stdio-bridge: command not found"):
		e.Kind = ErrBridgeMissing
		e.Hint = "It comes with systemd (Debian/Ubuntu: package systemd, as /usr/bin/systemd-stdio-bridge); it must be in the PATH of the login user there"
	case strings.Contains(low, "failed to connect to bus"), strings.Contains(low, "failed to set address"),
		strings.Contains(low, "failed to start bus client"), code == 1:
		// The bridge exits 1 on its failures and, with no terminal,
		// logs them to the remote journal rather than to ssh.
		if e.Detail == "" || e.Detail == "EOF" {
			e.Detail = "systemd-stdio-bridge exited with status 1; its own message is in that machine's journal"
		}
		e.Kind = ErrRemoteBus
		where := "the system bus"
		if bus != "" && bus != "system" {
			where = "bus " + bus
		}
		e.Hint = "Is D-Bus running there, and is " + where + " the right one?"
	}
	return e
}

func destination(host string) string {
	h, err := ParseHost(host)
	if err != nil {
		return host
	}
	if h.Port != "" {
		return "-p " + h.Port + " " + h.Destination()
	}
	return h.Destination()
}

func lastLines(s string, n int) string {
	var lines []string
	for _, l := range strings.Split(s, "\n") {
		// sshd's note about a login user without a home says nothing
		// about the failure.
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "Could not chdir to home directory") {
			lines = append(lines, l)
		}
	}
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "; ")
}

// ConnectHost connects to the helper on bus of a remote host over ssh
// (host "" is this machine, as Connect).
func ConnectHost(host, bus string) (*Client, error) {
	if host == "" {
		return Connect(bus)
	}
	conn, err := DialHost(host, bus)
	if err != nil {
		return nil, err
	}
	c := newClient(conn)
	c.own = true
	c.host = host
	return c, nil
}

// Host returns the remote host the client talks to ("" for this machine).
func (c *Client) Host() string { return c.host }

// CallerUID returns the uid the helper's bus knows this connection by: the
// login user on a remote host, the process's own uid here.
func (c *Client) CallerUID(ctx context.Context) (uint32, error) {
	if ctx == nil {
		ctx = context.Background()
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, ReadTimeout)
		defer cancel()
	}
	names := c.conn.Names()
	if len(names) == 0 {
		return 0, errors.New("the connection has no bus name")
	}
	var uid uint32
	err := c.conn.BusObject().CallWithContext(ctx, "org.freedesktop.DBus.GetConnectionUnixUser", 0, names[0]).Store(&uid)
	if err != nil {
		return 0, fmt.Errorf("ask the bus for our uid: %w", err)
	}
	return uid, nil
}

// RemotePolkitHint explains a polkit refusal of a caller over SSH.
func RemotePolkitHint(host string) string {
	return "over SSH you are not in an active local session on " + hostName(host) +
		", so polkit there applies the actions' allow_any defaults (auth_admin_keep in the package: an administrator's password, " +
		"which cannot be asked for over SSH), not allow_active; an administrator of that machine can allow your user with a polkit " +
		"rule (see \"Managing another machine over SSH\" in docs/packaging.md)"
}

func hostName(host string) string {
	if h, err := ParseHost(host); err == nil {
		return h.Host
	}
	return host
}
