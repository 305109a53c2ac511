//go:build linux

package socktarget

import (
	"errors"
	"sync"

	"github.com/chadthrottle/chadthrottle/backends"
)

// Mode is the placement mode the Placer reports (backends.TargetPlacer):
// sockets are tagged at creation and no process is moved.
const Mode = "socket_tags"

// Placer is the manager's backends.TargetPlacer on the tagger: a target
// gets a number (Target.Tag) and the tagger's maps learn its processes or
// executable; nobody changes cgroup.
type Placer struct {
	tag string

	mu  sync.Mutex
	t   *Tagger
	ids map[string]bool
}

var _ backends.TargetPlacer = (*Placer)(nil)

// NewPlacer returns a placer for opts (its Tag keys the shared tagger).
func NewPlacer(opts backends.Options) *Placer {
	return &Placer{tag: opts.Tag, ids: map[string]bool{}}
}

// Mode implements backends.TargetPlacer.
func (p *Placer) Mode() string { return Mode }

// Init loads the tagger. There are no leftovers: its programs are attached
// with links the helper owns, which die with it.
func (p *Placer) Init() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.t != nil {
		return nil
	}
	t, err := Acquire(p.tag)
	if err != nil {
		return err
	}
	p.t = t
	return nil
}

// PlaceTarget implements backends.TargetPlacer.
func (p *Placer) PlaceTarget(tg backends.Target) (backends.Target, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.t == nil {
		return tg, errors.New("socket tagger is not initialised")
	}
	n, err := p.t.Set(tg)
	if err != nil {
		return tg, err
	}
	p.ids[tg.ID] = true
	tg.Tag = n
	return tg, nil
}

// Place implements backends.Placer for callers that know only pids: the
// target is a process target.
func (p *Placer) Place(id string, pids []int) (backends.Cgroup, error) {
	_, err := p.PlaceTarget(backends.Target{ID: id, Kind: backends.TargetProcess, PIDs: pids})
	return backends.Cgroup{}, err
}

// Release implements backends.Placer.
func (p *Placer) Release(id string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.t == nil {
		return nil
	}
	delete(p.ids, id)
	return p.t.Unset(id)
}

// Cleanup implements backends.Placer: every target is forgotten and the
// tagger released.
func (p *Placer) Cleanup() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.t == nil {
		return nil
	}
	var errs []error
	for id := range p.ids {
		errs = append(errs, p.t.Unset(id))
	}
	p.ids = map[string]bool{}
	errs = append(errs, p.t.Close())
	p.t = nil
	return errors.Join(errs...)
}

// Tagger returns the placer's tagger (nil before Init).
func (p *Placer) Tagger() *Tagger {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.t
}
