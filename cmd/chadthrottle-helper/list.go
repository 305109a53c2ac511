package main

import (
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/chadthrottle/chadthrottle/backends"
)

// listBackends prints every compiled backend with its real probe result.
func listBackends(out io.Writer, opts backends.Options) {
	w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "KIND\tNAME\tPRIORITY\tAVAILABLE\tREASON")
	for _, s := range append(allBackends().Statuses(opts), placementStatuses(opts)...) {
		avail := "yes"
		if !s.Available {
			avail = "no"
		}
		fmt.Fprintf(w, "%s\t%s\t%d (%s)\t%s\t%s\n", s.Kind, s.Name, s.Priority, s.Priority, avail, s.Reason)
	}
	w.Flush()
}

// allBackends is the registry plus, in test builds (tag fakebackends), the
// fake backends.
func allBackends() *backends.Registry {
	r := registry()
	addTestBackends(r)
	return r
}
