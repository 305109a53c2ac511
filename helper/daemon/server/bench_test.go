//go:build bench

package server

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"testing"
	"time"

	"github.com/godbus/dbus/v5"

	"github.com/chadthrottle/chadthrottle/helper/api"
)

// TestBenchGetAppsEncode measures the server-side CPU of one GetApps reply
// without a bus: the wire copy (UTF-8 cleaning) and godbus's encoding, for
// snapshots of 50, 200 and 1000 apps.
func TestBenchGetAppsEncode(t *testing.T) {
	fmt.Printf("\nGetApps reply cost in the helper (no bus, one core)\n%-6s %12s %14s %14s\n", "apps", "bytes", "wire copy", "dbus encode")
	for _, n := range []int{50, 200, 1000} {
		snap := api.Snapshot{Time: 1}
		for i := 0; i < n; i++ {
			snap.Apps = append(snap.Apps, api.App{ID: fmt.Sprintf("1000:/usr/lib/app-%d/bin/app", i), Name: fmt.Sprintf("Application %d", i),
				Exe: fmt.Sprintf("/usr/lib/app-%d/bin/app", i), Icon: "application-x-executable", UID: 1000, User: "alice",
				PIDs: []int32{int32(1000 + i), int32(2000 + i)}, RxRate: 12345, TxRate: 678, RxBytes: 1 << 30, TxBytes: 1 << 20})
		}
		const reps = 200
		t0 := time.Now()
		var w api.Snapshot
		for i := 0; i < reps; i++ {
			w = wireSnapshot(snap)
		}
		wire := time.Since(t0) / reps
		var buf bytes.Buffer
		t0 = time.Now()
		for i := 0; i < reps; i++ {
			buf.Reset()
			m := &dbus.Message{Type: dbus.TypeMethodReply, Headers: map[dbus.HeaderField]dbus.Variant{
				dbus.FieldReplySerial: dbus.MakeVariant(uint32(1)),
				dbus.FieldSignature:   dbus.MakeVariant(dbus.SignatureOf(w)),
			}, Body: []any{w}}
			if err := m.EncodeTo(&buf, binary.LittleEndian); err != nil {
				t.Fatal(err)
			}
		}
		enc := time.Since(t0) / reps
		fmt.Printf("%-6d %12d %14v %14v\n", n, buf.Len(), wire, enc)
	}
}
