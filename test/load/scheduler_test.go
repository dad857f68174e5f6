package main

import (
	"context"
	"errors"
	"testing"
	"time"
)

// fakeClock moves only when the scheduler sleeps. lag is added to every
// wake-up, to play a scheduler that oversleeps; failAfter makes the n-th
// sleep fail as a cancelled context would.
type fakeClock struct {
	now       time.Time
	lag       time.Duration
	sleeps    int
	failAfter int
}

func (c *fakeClock) Now() time.Time { return c.now }

func (c *fakeClock) SleepUntil(_ context.Context, t time.Time) error {
	c.sleeps++
	if c.failAfter > 0 && c.sleeps >= c.failAfter {
		return context.Canceled
	}
	if t.After(c.now) {
		c.now = t.Add(c.lag)
	}
	return nil
}

var t0 = time.Date(2026, 8, 4, 10, 0, 0, 0, time.UTC)

type dispatched struct {
	i        int
	due, now time.Time
}

func runSchedule(clk *fakeClock, rate float64, n int, dur time.Duration) ([]dispatched, int) {
	var got []dispatched
	sent := schedule(context.Background(), clk, t0, rate, n, dur, func(i int, due time.Time) {
		got = append(got, dispatched{i, due, clk.Now()})
	})
	return got, sent
}

func TestScheduleOnTime(t *testing.T) {
	clk := &fakeClock{now: t0}
	got, sent := runSchedule(clk, 1000, 5, 0)
	if sent != 5 || len(got) != 5 {
		t.Fatalf("sent %d, dispatched %d, want 5", sent, len(got))
	}
	for k, d := range got {
		want := t0.Add(time.Duration(k) * time.Millisecond)
		if d.i != k || !d.due.Equal(want) || !d.now.Equal(want) {
			t.Errorf("request %d: i=%d due=%v sent at %v, want due and sent at %v", k, d.i, d.due.Sub(t0), d.now.Sub(t0), want.Sub(t0))
		}
	}
}

// A scheduler that falls behind keeps the timetable: overdue requests go
// out back to back, without sleeping, with their original due times, so
// their latency includes the delay (no coordinated omission).
func TestScheduleLateKeepsTimetable(t *testing.T) {
	clk := &fakeClock{now: t0, lag: 2500 * time.Microsecond}
	got, sent := runSchedule(clk, 1000, 10, 0)
	if sent != 10 {
		t.Fatalf("sent %d, want 10", sent)
	}
	for k, d := range got {
		if want := t0.Add(time.Duration(k) * time.Millisecond); !d.due.Equal(want) {
			t.Errorf("request %d due %v, want %v", k, d.due.Sub(t0), want.Sub(t0))
		}
		if d.now.Before(d.due) {
			t.Errorf("request %d sent at %v before it was due at %v", k, d.now.Sub(t0), d.due.Sub(t0))
		}
	}
	// Each sleep overshoots by 2.5 periods, so the two or three requests
	// that fell due meanwhile are sent without sleeping: far fewer sleeps
	// than requests.
	if clk.sleeps >= 6 {
		t.Errorf("%d sleeps for 10 requests; overdue requests must not wait", clk.sleeps)
	}
	if late := got[9].now.Sub(got[9].due); late <= 0 {
		t.Errorf("the last request was not late (%v); the test clock did not lag", late)
	}
}

func TestScheduleDurationBound(t *testing.T) {
	clk := &fakeClock{now: t0}
	got, sent := runSchedule(clk, 100, 0, time.Second)
	if sent != 100 || len(got) != 100 {
		t.Fatalf("sent %d, dispatched %d, want 100 in 1s at 100/s", sent, len(got))
	}
	if last := got[99].due.Sub(t0); last != 990*time.Millisecond {
		t.Errorf("last due at %v, want 990ms", last)
	}
}

// The due time is computed from the request number, so a period that is
// not a whole number of nanoseconds does not drift.
func TestScheduleNoDrift(t *testing.T) {
	clk := &fakeClock{now: t0}
	got, _ := runSchedule(clk, 3, 3001, 0)
	d := got[3000].due.Sub(t0) - 1000*time.Second
	if d < -time.Microsecond || d > time.Microsecond {
		t.Errorf("request 3000 at 3/s due %v off 1000s", d)
	}
}

func TestScheduleStopsOnCancel(t *testing.T) {
	clk := &fakeClock{now: t0, failAfter: 4}
	got, sent := runSchedule(clk, 1000, 100, 0)
	// Request 0 is due at once (no sleep); sleeps 1-3 succeed; sleep 4 fails.
	if sent != 4 || len(got) != 4 {
		t.Errorf("sent %d, dispatched %d after cancellation, want 4", sent, len(got))
	}
}

func TestScheduleZeroRate(t *testing.T) {
	clk := &fakeClock{now: t0}
	if _, sent := runSchedule(clk, 0, 10, 0); sent != 0 {
		t.Errorf("rate 0 sent %d", sent)
	}
}

func TestRealClockSleepUntilCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := (realClock{}).SleepUntil(ctx, time.Now().Add(time.Hour)); !errors.Is(err, context.Canceled) {
		t.Errorf("SleepUntil on a cancelled context = %v, want context.Canceled", err)
	}
}
