package client

import (
	"errors"
	"reflect"
	"testing"
)

func TestSSHArgs(t *testing.T) {
	for _, c := range []struct {
		host, bus string
		want      []string
	}{
		{"box", "system", []string{"-xT", "--", "box", "systemd-stdio-bridge"}},
		{"alice@box:2222", "", []string{"-xT", "-p", "2222", "--", "alice@box", "systemd-stdio-bridge"}},
		{"[fd77::1]:22", "session", []string{"-xT", "-p", "22", "--", "fd77::1", "systemd-stdio-bridge", "--user"}},
		{"fd77::1", "unix:path=/run/x y", []string{"-xT", "--", "fd77::1", "systemd-stdio-bridge", "'--bus-path=unix:path=/run/x y'"}},
		{"u@h", "unix:path=/tmp/b/system_bus_socket", []string{"-xT", "--", "u@h", "systemd-stdio-bridge", "--bus-path=unix:path=/tmp/b/system_bus_socket"}},
	} {
		got, err := SSHArgs(c.host, c.bus)
		if err != nil || !reflect.DeepEqual(got, c.want) {
			t.Errorf("SSHArgs(%q, %q) = %q, %v; want %q", c.host, c.bus, got, err, c.want)
		}
	}
	for _, bad := range []string{"", "@box", "box:0", "box:99999", "-oProxyCommand=x", "a;b", "[fd77::1"} {
		if _, err := SSHArgs(bad, "system"); err == nil {
			t.Errorf("SSHArgs(%q) accepted", bad)
		}
	}
}

func TestClassify(t *testing.T) {
	for _, c := range []struct {
		code   int
		stderr string
		want   error
	}{
		{255, "ssh: Could not resolve hostname nohost: Name or service not known", ErrHostUnreachable},
		{255, "ssh: connect to host 10.0.0.1 port 22: No route to host", ErrHostUnreachable},
		{255, "alice@box: Permission denied (publickey).", ErrAuthRefused},
		{255, "Host key verification failed.", ErrAuthRefused},
		{127, "bash: line 1: systemd-stdio-bridge: command not found", ErrBridgeMissing},
		{1, "", ErrRemoteBus},
		{255, "something else", ErrSSHFailed},
	} {
		err := classify("box", "system", exitCode(c.code), c.stderr, errors.New("EOF"))
		if !errors.Is(err, c.want) {
			t.Errorf("code %d %q: %v, want %v", c.code, c.stderr, err, c.want)
		}
	}
}

type exitCode int

func (e exitCode) ExitCode() int { return int(e) }
