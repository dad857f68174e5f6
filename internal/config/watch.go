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
func Watch(ctx context.Context, interval time.Duration, files []string, dirsFn func() []string, onChange func()) error {
	if interval <= 0 {
		return errors.New("config: watch interval must be positive")
	}
	last := Fingerprint(files, dirsFn())
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			if fp := Fingerprint(files, dirsFn()); fp != last {
				last = fp
				onChange()
			}
		}
	}
}
