package api

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// ErrSchedule is wrapped by every ParseSchedule error.
var ErrSchedule = errors.New("invalid schedule")

// MaxScheduleLen bounds a schedule's text (and so its windows).
const MaxScheduleLen = 512

// Schedule is when a rule is active: a list of weekly windows in local
// time. The zero Schedule (from "") is always active.
type Schedule struct {
	windows []window
}

// window is active on the days in days from start (minutes after
// midnight) to end; an end at or before the start runs past midnight into
// the next day.
type window struct {
	days       [7]bool // by time.Weekday
	start, end int
}

var dayNames = []string{"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"}

// ParseSchedule parses the CLI contract's SCHEDULE: windows separated by
// commas, each "[DAYS ]HH:MM-HH:MM" where DAYS is a day ("Mon"), a range
// ("Mon-Fri", "Fri-Mon" wraps) or several joined with "+" ("Sat+Sun");
// without DAYS a window is daily. "24:00" ends a window at midnight; a
// window ending at or before its start runs past midnight (22:00-06:00).
// Examples: "Mon-Fri 09:00-17:00", "Mon-Fri 09:00-17:00,Sat 10:00-12:00".
// "" means always.
func ParseSchedule(s string) (Schedule, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return Schedule{}, nil
	}
	if len(s) > MaxScheduleLen {
		return Schedule{}, fmt.Errorf("%w: %d bytes long (at most %d)", ErrSchedule, len(s), MaxScheduleLen)
	}
	var sc Schedule
	for _, part := range strings.Split(s, ",") {
		w, err := parseWindow(strings.TrimSpace(part))
		if err != nil {
			return Schedule{}, fmt.Errorf("%w: %q: %v", ErrSchedule, part, err)
		}
		sc.windows = append(sc.windows, w)
	}
	return sc, nil
}

func parseWindow(s string) (window, error) {
	var w window
	days, times, ok := strings.Cut(s, " ")
	if !ok {
		days, times = "", s
		for i := range w.days {
			w.days[i] = true
		}
	} else if err := parseDays(days, &w.days); err != nil {
		return w, err
	}
	from, to, ok := strings.Cut(strings.TrimSpace(times), "-")
	if !ok {
		return w, errors.New("want HH:MM-HH:MM")
	}
	var err error
	if w.start, err = parseClock(from, false); err != nil {
		return w, err
	}
	if w.end, err = parseClock(to, true); err != nil {
		return w, err
	}
	return w, nil
}

func parseDays(s string, days *[7]bool) error {
	for _, d := range strings.Split(s, "+") {
		a, b, isRange := strings.Cut(d, "-")
		from, err := parseDay(a)
		if err != nil {
			return err
		}
		to := from
		if isRange {
			if to, err = parseDay(b); err != nil {
				return err
			}
		}
		for i := from; ; i = (i + 1) % 7 {
			days[i] = true
			if i == to {
				break
			}
		}
	}
	return nil
}

func parseDay(s string) (int, error) {
	for i, n := range dayNames {
		if strings.EqualFold(s, n) {
			return i, nil
		}
	}
	return 0, fmt.Errorf("unknown day %q (want Mon, Tue, Wed, Thu, Fri, Sat or Sun)", s)
}

// parseClock parses HH:MM into minutes after midnight; 24:00 only as an end.
func parseClock(s string, end bool) (int, error) {
	var h, m int
	if len(s) != 5 || s[2] != ':' {
		return 0, fmt.Errorf("time %q is not HH:MM", s)
	}
	if _, err := fmt.Sscanf(s, "%2d:%2d", &h, &m); err != nil {
		return 0, fmt.Errorf("time %q is not HH:MM", s)
	}
	if h == 24 && m == 0 && end {
		return 24 * 60, nil
	}
	if h < 0 || h > 23 || m < 0 || m > 59 {
		return 0, fmt.Errorf("time %q is out of range", s)
	}
	return h*60 + m, nil
}

// IsZero reports whether the schedule is "always".
func (s Schedule) IsZero() bool { return len(s.windows) == 0 }

// Active reports whether t (in its own location: pass local time) falls in
// one of the windows; the zero Schedule is always active.
func (s Schedule) Active(t time.Time) bool {
	if len(s.windows) == 0 {
		return true
	}
	day, min := int(t.Weekday()), t.Hour()*60+t.Minute()
	prev := (day + 6) % 7
	for _, w := range s.windows {
		if w.start < w.end {
			if w.days[day] && min >= w.start && min < w.end {
				return true
			}
			continue
		}
		// Past midnight: the evening of a listed day or the morning after.
		if (w.days[day] && min >= w.start) || (w.days[prev] && min < w.end) {
			return true
		}
	}
	return false
}
