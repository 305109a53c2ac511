package backends

import (
	"errors"
	"strings"
	"testing"
)

func upDesc(name string, p Priority, probeErr error) Descriptor[UploadThrottleBackend] {
	return Descriptor[UploadThrottleBackend]{
		Name: name, Priority: p,
		Probe: func(Options) error { return probeErr },
		New: func(Options) (UploadThrottleBackend, error) {
			f := NewFakeUpload()
			f.NameValue, f.PriorityValue = name, p
			return f, nil
		},
	}
}

func TestSelect(t *testing.T) {
	missing := Unavailable("kernel lacks act_police")
	list := []Descriptor[UploadThrottleBackend]{
		upDesc("tc_htb", Good, nil),
		upDesc("ebpf_cgroup", Best, nil),
		upDesc("police", Fallback, missing),
		upDesc("nft", Better, Unavailable("no nftables")),
	}
	tests := []struct {
		name    string
		list    []Descriptor[UploadThrottleBackend]
		choose  string
		want    string
		wantErr string
		unknown bool
	}{
		{name: "auto picks highest available priority", list: list, want: "ebpf_cgroup"},
		{name: "auto keyword", list: list, choose: "auto", want: "ebpf_cgroup"},
		{name: "auto skips unavailable higher priority", list: list[:1:1], want: "tc_htb"},
		{name: "auto skips unavailable", list: []Descriptor[UploadThrottleBackend]{list[2], list[3], list[0]}, want: "tc_htb"},
		{name: "manual override of a lower priority", list: list, choose: "tc_htb", want: "tc_htb"},
		{name: "manual unavailable says why", list: list, choose: "police", wantErr: "act_police"},
		{name: "manual unknown names what is compiled", list: list, choose: "wfp", wantErr: "compiled: tc_htb, ebpf_cgroup, police, nft", unknown: true},
		{name: "nothing available lists reasons", list: list[2:], wantErr: "nft: no nftables; police: kernel lacks act_police"},
		{name: "nothing compiled", list: nil, wantErr: "no upload backend compiled in"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := Select(KindUpload, tt.list, tt.choose, Options{})
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v; want it to mention %q", err, tt.wantErr)
				}
				if tt.unknown != errors.Is(err, ErrUnknownBackend) {
					t.Fatalf("errors.Is(err, ErrUnknownBackend) = %v; want %v", !tt.unknown, tt.unknown)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if b.Name() != tt.want {
				t.Fatalf("selected %s; want %s", b.Name(), tt.want)
			}
		})
	}
}

func TestSelectUnavailableWrapsUnsupported(t *testing.T) {
	_, err := Select(KindUpload, []Descriptor[UploadThrottleBackend]{upDesc("x", Good, Unavailable("nope"))}, "", Options{})
	if !errors.Is(err, errors.ErrUnsupported) {
		t.Fatalf("err = %v; want it to wrap errors.ErrUnsupported", err)
	}
}

func TestSelectProbePanicIsAnError(t *testing.T) {
	d := upDesc("boom", Best, nil)
	d.Probe = func(Options) error { panic("bad probe") }
	list := []Descriptor[UploadThrottleBackend]{d, upDesc("tc_htb", Good, nil)}
	b, err := Select(KindUpload, list, "", Options{})
	if err != nil || b.Name() != "tc_htb" {
		t.Fatalf("got %v, %v; want tc_htb after the panicking probe", b, err)
	}
}

func TestStatuses(t *testing.T) {
	r := Registry{
		Monitors: []Descriptor[MonitorBackend]{{Name: "capture", Priority: Good, Probe: func(Options) error { return nil }}},
		Uploads:  []Descriptor[UploadThrottleBackend]{upDesc("tc_htb", Good, nil), upDesc("ebpf_cgroup", Best, Unavailable("no CGROUP_BPF"))},
	}
	got := r.Statuses(Options{})
	want := []Status{
		{KindMonitor, "capture", Good, true, ""},
		{KindUpload, "ebpf_cgroup", Best, false, "no CGROUP_BPF"},
		{KindUpload, "tc_htb", Good, true, ""},
	}
	if len(got) != len(want) {
		t.Fatalf("got %d statuses; want %d: %+v", len(got), len(want), got)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("status %d = %+v; want %+v", i, got[i], want[i])
		}
	}
}

func TestPriorityString(t *testing.T) {
	for p, s := range map[Priority]string{Fallback: "fallback", Good: "good", Better: "better", Best: "best", 9: "priority(9)"} {
		if p.String() != s {
			t.Errorf("%d.String() = %q; want %q", int(p), p.String(), s)
		}
	}
	if int(Fallback) != 1 || int(Good) != 2 || int(Better) != 3 || int(Best) != 4 {
		t.Fatal("priorities must be Fallback 1, Good 2, Better 3, Best 4 (the values the design fixes)")
	}
}
