package api

import (
	"os"
	"strings"
	"testing"
)

// TestArchitectureListsMethods: docs/architecture.md's method table has a
// row for every method of the interface, with its polkit action, and no
// row for a method that does not exist.
func TestArchitectureListsMethods(t *testing.T) {
	doc, err := os.ReadFile("../../docs/architecture.md")
	if err != nil {
		t.Fatal(err)
	}
	rows := map[string]string{} // method → its action column
	for _, line := range strings.Split(string(doc), "\n") {
		cells := strings.Split(line, "|")
		if len(cells) != 5 || !strings.HasPrefix(strings.TrimSpace(cells[1]), "`") {
			continue
		}
		rows[strings.Trim(strings.TrimSpace(cells[1]), "`")] = strings.TrimSpace(cells[3])
	}
	short := map[string]string{ActionMonitor: "monitor", ActionLimitOwn: "limit-own", ActionManage: "manage", "": "none"}
	for _, m := range Methods {
		col, ok := rows[m.Name]
		if !ok {
			t.Errorf("docs/architecture.md has no row for %s", m.Name)
			continue
		}
		delete(rows, m.Name)
		if !strings.HasPrefix(col, short[m.Action]) {
			t.Errorf("%s: the table says %q, the method needs %s", m.Name, col, short[m.Action])
		}
		if m.Escalates != strings.Contains(col, "own") {
			t.Errorf("%s: the table says %q; a caller's own target suffices: %v", m.Name, col, m.Escalates)
		}
	}
	for name := range rows {
		t.Errorf("docs/architecture.md lists %s, which is not a method of the interface", name)
	}
}
