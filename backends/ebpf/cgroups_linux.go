//go:build linux && !no_ebpf

package ebpf

import (
	"fmt"
	"path/filepath"
	"slices"
	"strings"

	"github.com/chadthrottle/chadthrottle/backends"
	"github.com/chadthrottle/chadthrottle/backends/kernel/cgroupv2"
)

// mapCgroups points every cgroup of tg at cur's bucket and forgets the
// cgroups old (nil for a new target) had and cur has not. The ancestor
// level the program also looks at is the level of tg's first cgroup: a
// lookup there only ever finds a socket's own ancestor, so another
// target's cgroups at other levels still match exactly.
func (t *throttler) mapCgroups(tg backends.Target, cur, old *target) error {
	for i, cg := range tg.AllCgroups() {
		if cg.ID == 0 {
			continue
		}
		if err := t.objs.CgroupTarget.Put(cg.ID, cur.idx); err != nil {
			return fmt.Errorf("match cgroup %s of target %s: %w", cg.Path, tg.ID, err)
		}
		if lvl := cgroupLevel(cg.Path); i == 0 && lvl > 0 {
			if err := t.objs.Settings.Put(uint32(0), uint32(lvl)); err != nil {
				return fmt.Errorf("set cgroup level: %w", err)
			}
		}
	}
	if old != nil {
		for _, cg := range old.cgroups {
			if !slices.Contains(cur.cgroups, cg) {
				_ = t.objs.CgroupTarget.Delete(cg)
			}
		}
	}
	return nil
}

// cgroupLevel is the depth of the cgroup at path below the cgroup2 root.
func cgroupLevel(path string) int {
	root, err := cgroupv2.Mount()
	if err != nil {
		return 0
	}
	rel, err := filepath.Rel(root, path)
	if err != nil || rel == "." || strings.HasPrefix(rel, "..") {
		return 0
	}
	return len(strings.Split(rel, "/"))
}
