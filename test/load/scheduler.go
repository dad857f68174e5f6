package main

import (
	"context"
	"time"
)

// clock is the time source of the constant-rate scheduler, so tests can
// drive it without sleeping.
type clock interface {
	Now() time.Time
	// SleepUntil returns at or after t, or early with ctx's error.
	SleepUntil(ctx context.Context, t time.Time) error
}

type realClock struct{}

func (realClock) Now() time.Time { return time.Now() }

func (realClock) SleepUntil(ctx context.Context, t time.Time) error {
	d := time.Until(t)
	if d <= 0 {
		return ctx.Err()
	}
	tm := time.NewTimer(d)
	defer tm.Stop()
	select {
	case <-tm.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// schedule issues requests at a constant rate without coordinated omission:
// request i is due at start + i/rate, a fixed timetable that does not move
// when the scheduler, the workers or the server fall behind. A late
// scheduler dispatches the overdue requests back to back with their
// original due times, so the latency measured from the due time includes
// the time a request spent waiting to be sent, as a real client's would.
//
// dispatch is called once per request, in order, from this goroutine; it
// must not block for long (see openLoop, which hands the request to an idle
// worker or starts a new one). schedule stops after n requests (n > 0), or
// at start+dur (dur > 0), or when ctx is done, and returns how many it
// dispatched.
func schedule(ctx context.Context, clk clock, start time.Time, rate float64, n int, dur time.Duration,
	dispatch func(i int, due time.Time)) int {
	if rate <= 0 {
		return 0
	}
	period := float64(time.Second) / rate
	end := start.Add(dur)
	for i := 0; n <= 0 || i < n; i++ {
		// Computed from i, not by adding period repeatedly, so rounding never
		// accumulates into drift.
		due := start.Add(time.Duration(float64(i) * period))
		if dur > 0 && !due.Before(end) {
			return i
		}
		if due.After(clk.Now()) {
			if err := clk.SleepUntil(ctx, due); err != nil {
				return i
			}
		} else if ctx.Err() != nil {
			return i
		}
		dispatch(i, due)
	}
	return n
}
