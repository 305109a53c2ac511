// Command chadthrottle-helper is ChadThrottle's root daemon: it hosts the
// monitor and throttle backends and serves clients on D-Bus.
package main

import (
	"flag"
	"fmt"
	"os"
	"text/tabwriter"

	"github.com/chadthrottle/chadthrottle/backends"
)

func main() {
	list := flag.Bool("list-backends", false, "print every compiled backend and exit")
	flag.Parse()
	if *list {
		listBackends(backends.Options{})
		return
	}
	fmt.Fprintln(os.Stderr, "chadthrottle-helper: serving is not built yet")
	os.Exit(1)
}

func listBackends(opts backends.Options) {
	w := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "KIND\tNAME\tPRIORITY\tAVAILABLE\tREASON")
	for _, s := range registry().Statuses(opts) {
		avail := "yes"
		if !s.Available {
			avail = "no"
		}
		fmt.Fprintf(w, "%s\t%s\t%d (%s)\t%s\t%s\n", s.Kind, s.Name, s.Priority, s.Priority, avail, s.Reason)
	}
	w.Flush()
}
