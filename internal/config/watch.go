package config

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"time"
)

// Fingerprint hashes the contents of files and of every regular file under
// dirs (recursively), so a change to any of them — an edit, a new file, a
// removal, a ConfigMap symlink swap — changes the result. Missing paths hash
// as missing rather than failing: a config being replaced is briefly absent.
func Fingerprint(files, dirs []string) string {
	h := sha256.New()
	add := func(path string) {
		b, err := os.ReadFile(path)
		h.Write([]byte(path))
		h.Write([]byte{0})
		if err != nil {
			h.Write([]byte("\x00missing\x00"))
			return
		}
		h.Write(b)
		h.Write([]byte{0})
	}
	for _, f := range files {
		if f != "" {
			add(f)
		}
	}
	for _, d := range dirs {
		var paths []string
		_ = filepath.WalkDir(d, func(p string, e fs.DirEntry, err error) error {
			if err != nil {
				return nil //nolint:nilerr // unreadable entries hash as absent
			}
			if e.IsDir() {
				if name := e.Name(); p != d && len(name) > 0 && name[0] == '.' && name != "..data" {
					return filepath.SkipDir // skip .git and the like, keep Kubernetes' ..data
				}
				return nil
			}
			paths = append(paths, p)
			return nil
		})
		sort.Strings(paths)
		for _, p := range paths {
			add(p)
		}
	}
	return hex.EncodeToString(h.Sum(nil)[:16])
}

// Watch polls the fingerprint of files and dirs (dirs re-read through
// dirsFn each time, since a reload can change which directories matter)
// every interval and calls onChange when it changes. It returns when ctx
// ends. Polling rather than inotify keeps it correct on network file
// systems and with Kubernetes ConfigMap symlink swaps.
//
// A change is acted on once the fingerprint has held still for a short
// settle time (a quarter of interval, at most 100 ms): a file written in
// place (truncated, then written, as by cp or a shell redirect) would
// otherwise be read half-written, fail to reload and be logged as a
// failed reload right before the complete file reloads.
func Watch(ctx context.Context, interval time.Duration, files []string, dirsFn func() []string, onChange func()) error {
	if interval <= 0 {
		return errors.New("config: watch interval must be positive")
	}
	settle := min(interval/4, 100*time.Millisecond)
	return watch(ctx, interval, settle, func() string { return Fingerprint(files, dirsFn()) }, onChange)
}

// maxSettleRounds bounds the wait for a file that never stops changing:
// after it, the change is acted on anyway.
const maxSettleRounds = 20

func watch(ctx context.Context, interval, settle time.Duration, fingerprint func() string, onChange func()) error {
	last := fingerprint()
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		fp := fingerprint()
		if fp == last {
			continue
		}
		for range maxSettleRounds {
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(settle):
			}
			next := fingerprint()
			if next == fp {
				break
			}
			fp = next
		}
		if fp != last {
			last = fp
			onChange()
		}
	}
}
