package api

import (
	"errors"
	"testing"
	"time"
)

func TestParseSchedule(t *testing.T) {
	for _, bad := range []string{"Mon", "Mon 9:00-17:00", "Mon 09:00", "Xyz 09:00-10:00", "Mon 24:00-10:00",
		"Mon 09:60-10:00", "Mon-Fri 09:00-17:00,", "Mon 09:00-25:00", "09:00_10:00"} {
		if _, err := ParseSchedule(bad); !errors.Is(err, ErrSchedule) {
			t.Errorf("ParseSchedule(%q) = %v, want ErrSchedule", bad, err)
		}
	}
	if s, err := ParseSchedule(""); err != nil || !s.IsZero() || !s.Active(time.Now()) {
		t.Errorf("empty schedule: %v %v", s, err)
	}
}

func TestScheduleActive(t *testing.T) {
	// 2026-11-30 is a Monday.
	at := func(day int, hm string) time.Time {
		tm, _ := time.ParseInLocation("2006-01-02 15:04", "2026-11-30 "+hm, time.Local)
		return tm.AddDate(0, 0, day)
	}
	cases := []struct {
		sched string
		t     time.Time
		want  bool
	}{
		{"Mon-Fri 09:00-17:00", at(0, "08:59"), false},
		{"Mon-Fri 09:00-17:00", at(0, "09:00"), true},
		{"Mon-Fri 09:00-17:00", at(4, "16:59"), true},
		{"Mon-Fri 09:00-17:00", at(4, "17:00"), false},
		{"Mon-Fri 09:00-17:00", at(5, "10:00"), false}, // Saturday
		{"Mon-Fri 09:00-17:00,Sat 10:00-12:00", at(5, "11:00"), true},
		{"Fri 22:00-06:00", at(4, "23:30"), true},
		{"Fri 22:00-06:00", at(5, "05:59"), true}, // Saturday morning
		{"Fri 22:00-06:00", at(5, "06:00"), false},
		{"Fri 22:00-06:00", at(0, "05:00"), false}, // Monday morning: Sunday is not listed
		{"Fri-Mon 10:00-11:00", at(6, "10:30"), true},
		{"Fri-Mon 10:00-11:00", at(1, "10:30"), false},
		{"Sat+Sun 00:00-24:00", at(6, "23:59"), true},
		{"sat+sun 00:00-24:00", at(0, "00:00"), false},
		{"22:00-06:00", at(2, "03:00"), true},
	}
	for _, c := range cases {
		s, err := ParseSchedule(c.sched)
		if err != nil {
			t.Fatalf("ParseSchedule(%q): %v", c.sched, err)
		}
		if got := s.Active(c.t); got != c.want {
			t.Errorf("%q at %s: active=%v, want %v", c.sched, c.t.Format("Mon 15:04"), got, c.want)
		}
	}
}
