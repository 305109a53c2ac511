//go:build linux

package socktarget_test

import (
	"os"
	"testing"

	"github.com/cilium/ebpf"

	"github.com/chadthrottle/chadthrottle/backends/kernel/socktarget"
	"github.com/chadthrottle/chadthrottle/backends/testsupport/testenv"
)

// TestRecoverRefusesForeignPins: a pin at the records' path that is not
// root's, or not socket storage, is not taken for a killed helper's
// records: nothing is undone on any socket.
func TestRecoverRefusesForeignPins(t *testing.T) {
	testenv.RequireRoot(t)
	defer func(old string) { socktarget.PinRoot = old }(socktarget.PinRoot)
	socktarget.PinRoot = testenv.MountBPF(t)
	undo := func(*ebpf.Map, int) (bool, error) {
		t.Error("undo called for a foreign pin")
		return true, nil
	}
	for _, c := range []struct {
		what  string
		owner int
	}{{"a hash map", 0}, {"a map a user owns", 65534}} {
		m, err := ebpf.NewMap(&ebpf.MapSpec{Type: ebpf.Hash, KeySize: 4, ValueSize: 16, MaxEntries: 4})
		if err != nil {
			t.Fatal(err)
		}
		path := socktarget.PinPath("rwnd", "foreign")
		if err := m.Pin(path); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(path, c.owner, c.owner); err != nil {
			t.Fatal(err)
		}
		n, err := socktarget.Recover("rwnd", "foreign", undo)
		t.Logf("%s: %v", c.what, err)
		if err == nil || n != 0 {
			t.Errorf("%s at the pin: recovered %d, error %v; want a refusal", c.what, n, err)
		}
		m.Unpin()
		m.Close()
	}
}
