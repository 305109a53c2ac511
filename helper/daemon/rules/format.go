package rules

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/chadthrottle/chadthrottle/helper/api"
)

// The on-disk format: its own types, so a change of the D-Bus wire types
// never silently changes the file.
//
//	{"version": 5, "rules": [{"exe": "/usr/bin/curl", "uid": 1000,
//	  "limit": {"down": 2000000, "up": 0, "traffic": "all", "when": "Mon-Fri 09:00-17:00",
//	  "block": "internet", "block_when": "Sat+Sun 00:00-24:00", "priority": "high"}, "admin": true}],
//	 "global": {"down": 10000000, "up": 0, "interface": "eth0"}}
type file struct {
	Version int        `json:"version"`
	Rules   []diskRule `json:"rules"`
	// Since version 4: the global limit (issue #16).
	Global *diskGlobal `json:"global,omitempty"`
}

type diskGlobal struct {
	Down      uint64 `json:"down"`
	Up        uint64 `json:"up"`
	Interface string `json:"interface,omitempty"`
}

type diskLimit struct {
	Down    uint64 `json:"down"`
	Up      uint64 `json:"up"`
	Traffic string `json:"traffic,omitempty"`
	// Since version 3: the rates' schedule, the blocked traffic and the
	// block's schedule (issue #16).
	When      string `json:"when,omitempty"`
	Block     string `json:"block,omitempty"`
	BlockWhen string `json:"block_when,omitempty"`
	// Since version 4: the share of the global limit.
	Priority string `json:"priority,omitempty"`
	// Since version 5: the download's and the upload's zones when they
	// differ (then traffic is absent); see api.Limit.
	DownTraffic string `json:"down_traffic,omitempty"`
	UpTraffic   string `json:"up_traffic,omitempty"`
}

type diskRule struct {
	Exe   string    `json:"exe"`
	UID   uint32    `json:"uid"`
	Limit diskLimit `json:"limit"`
	// Admin: set with the manage permission; lifting or changing it needs
	// manage too.
	Admin bool `json:"admin,omitempty"`
}

func toDisk(r api.Rule) diskRule {
	return diskRule{Exe: r.Exe, UID: r.UID, Limit: diskLimit(r.Limit), Admin: r.Admin}
}

func fromDisk(d diskRule) api.Rule {
	return api.Rule{Exe: d.Exe, UID: d.UID, Limit: api.Limit(d.Limit), Admin: d.Admin}
}

// Decode parses a rules file. It returns the valid rules it found together
// with an error describing anything it had to reject (bad JSON, unknown
// version, invalid or duplicate rules); with a nil error every rule was
// valid. It never panics.
func Decode(data []byte) ([]api.Rule, error) {
	return decode(bytes.NewReader(data), int64(len(data)))
}

// decode reads a rules file from r one rule at a time, so the rules before
// a torn or oversized part are kept; limit is how much of r is the file
// (more means the file was cut there).
func decode(r io.Reader, limit int64) ([]api.Rule, error) {
	rules, _, err := decodeFile(r, limit)
	return rules, err
}

// decodeFile is decode that also returns the global limit (zero when the
// file has none or an invalid one, which is reported).
func decodeFile(r io.Reader, limit int64) ([]api.Rule, api.GlobalLimit, error) {
	cr := &countingReader{r: r}
	d := decoder{dec: json.NewDecoder(cr), seen: map[key]bool{}, version: -1}
	err := d.file()
	if err != nil && cr.n > limit {
		err = fmt.Errorf("file is larger than the %d bytes read: %w", limit, err)
	}
	if d.version != -1 && (d.version < 1 || d.version > formatVersion) || d.version == -1 && err == nil {
		return nil, api.GlobalLimit{}, fmt.Errorf("decode rules: unsupported format version %d (want %d)", d.version, formatVersion)
	}
	if err != nil {
		d.errs = append(d.errs, fmt.Errorf("decode rules: %w", err))
	}
	sortRules(d.out)
	return d.out, d.global, errors.Join(d.errs...)
}

// decoder holds one decode's state: the valid rules so far and what was
// wrong with the others.
type decoder struct {
	dec     *json.Decoder
	out     []api.Rule
	errs    []error
	seen    map[key]bool
	version int
	i       int
	global  api.GlobalLimit
}

// file reads the top-level object; an error means the JSON itself broke
// off (the rules read before it are kept).
func (d *decoder) file() error {
	if err := expectDelim(d.dec, '{'); err != nil {
		return err
	}
	for d.dec.More() {
		tok, err := d.dec.Token()
		if err != nil {
			return err
		}
		switch tok {
		case "version":
			err = d.dec.Decode(&d.version)
		case "rules":
			err = d.rules()
		case "global":
			err = d.globalLimit()
		default:
			var skip json.RawMessage
			err = d.dec.Decode(&skip)
		}
		if err != nil {
			return err
		}
	}
	if err := expectDelim(d.dec, '}'); err != nil {
		return err
	}
	if _, err := d.dec.Token(); err != io.EOF {
		return errors.New("data after the rules object")
	}
	return nil
}

// globalLimit reads the global limit, keeping it when valid.
func (d *decoder) globalLimit() error {
	var g diskGlobal
	if err := d.dec.Decode(&g); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			d.errs = append(d.errs, fmt.Errorf("global limit: %w", err))
			return nil
		}
		return err
	}
	v, err := api.ValidateGlobalLimit(api.GlobalLimit(g))
	if err != nil {
		d.errs = append(d.errs, fmt.Errorf("global limit: %w", err))
		return nil
	}
	d.global = v
	return nil
}

// rules reads the rules array, keeping each valid rule.
func (d *decoder) rules() error {
	if err := expectDelim(d.dec, '['); err != nil {
		return err
	}
	for ; d.dec.More(); d.i++ {
		var dr diskRule
		if err := d.dec.Decode(&dr); err != nil {
			var te *json.UnmarshalTypeError
			if errors.As(err, &te) {
				d.errs = append(d.errs, fmt.Errorf("rule %d: %w", d.i, err))
				continue
			}
			return err
		}
		n, err := Normalize(fromDisk(dr))
		if err != nil {
			d.errs = append(d.errs, fmt.Errorf("rule %d: %w", d.i, err))
			continue
		}
		k := key{n.UID, n.Exe}
		if d.seen[k] {
			d.errs = append(d.errs, fmt.Errorf("rule %d: duplicate rule for uid %d on %s", d.i, n.UID, n.Exe))
			continue
		}
		d.seen[k] = true
		d.out = append(d.out, n)
	}
	return expectDelim(d.dec, ']')
}

func expectDelim(dec *json.Decoder, d json.Delim) error {
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	if tok != d {
		return fmt.Errorf("want %q, found %v", d, tok)
	}
	return nil
}

type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// Encode renders rules in the file format.
func Encode(rules []api.Rule) ([]byte, error) { return encode(rules, api.GlobalLimit{}) }

// encode renders rules and the global limit (none when zero).
func encode(rules []api.Rule, g api.GlobalLimit) ([]byte, error) {
	rs := append([]api.Rule(nil), rules...)
	sortRules(rs)
	f := file{Version: formatVersion, Rules: make([]diskRule, 0, len(rs))}
	if !g.IsZero() {
		dg := diskGlobal(g)
		f.Global = &dg
	}
	for _, r := range rs {
		f.Rules = append(f.Rules, toDisk(r))
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false) // a path with < > & stays one byte each
	enc.SetIndent("", "  ")
	if err := enc.Encode(f); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}
