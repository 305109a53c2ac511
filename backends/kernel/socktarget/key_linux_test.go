//go:build linux

package socktarget

import (
	"os"
	"testing"

	"golang.org/x/sys/unix"
)

// TestFileKeyMatchesStat: on a filesystem where stat's device is the
// superblock's (ext4, tmpfs), fileKey agrees with stat; the mountinfo
// lookup must not change that.
func TestFileKeyMatchesStat(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	var st unix.Stat_t
	if err := unix.Stat(exe, &st); err != nil {
		t.Fatal(err)
	}
	k, ok := fileKey(exe, "/proc/self/mountinfo")
	if !ok {
		t.Fatalf("no key for %s", exe)
	}
	if k.Ino != st.Ino || k.Dev != unix.Major(st.Dev)<<20|unix.Minor(st.Dev) {
		t.Errorf("key %+v, stat ino %d dev %d:%d", k, st.Ino, unix.Major(st.Dev), unix.Minor(st.Dev))
	}
	if _, ok := fileKey("/proc/self", "/proc/self/mountinfo"); ok {
		t.Error("a directory got a key")
	}
	if _, _, ok := mountDevice("/proc/self/mountinfo", 1<<62); ok {
		t.Error("an unknown mount id was found")
	}
}
