package main

import (
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// Files delivered into server/manifests and agent/images are noticed at
// start and when they change, and logged like k3s logs applying and
// importing them. Polling keeps the simulator free of inotify limits when a
// dozen run on one machine.

type fileStamp struct {
	mod  time.Time
	size int64
}

func scanDir(dir string, keep func(rel string, d fs.DirEntry) bool) map[string]fileStamp {
	out := map[string]fileStamp{}
	_ = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		if d.IsDir() {
			if p != dir && strings.HasPrefix(d.Name(), ".") {
				return filepath.SkipDir
			}
			return nil
		}
		rel, _ := filepath.Rel(dir, p)
		if !keep(rel, d) {
			return nil
		}
		if info, err := d.Info(); err == nil {
			out[p] = fileStamp{info.ModTime(), info.Size()}
		}
		return nil
	})
	return out
}

func pollDir(dir string, interval time.Duration, keep func(string, fs.DirEntry) bool, changed func(path string)) {
	seen := map[string]fileStamp{}
	for {
		cur := scanDir(dir, keep)
		var paths []string
		for p, st := range cur {
			if old, ok := seen[p]; !ok || old != st {
				paths = append(paths, p)
			}
		}
		sort.Strings(paths)
		for _, p := range paths {
			changed(p)
		}
		seen = cur
		time.Sleep(interval)
	}
}

func watchManifests(dir string) {
	_ = os.MkdirAll(dir, 0o700)
	skip := func(rel string, d fs.DirEntry) bool {
		name := d.Name()
		if strings.HasPrefix(name, ".") {
			return false
		}
		if _, err := os.Stat(filepath.Join(dir, rel) + ".skip"); err == nil {
			return false
		}
		l := strings.ToLower(name)
		return strings.HasSuffix(l, ".yaml") || strings.HasSuffix(l, ".yml") || strings.HasSuffix(l, ".json")
	}
	pollDir(dir, 2*time.Second, skip, func(p string) {
		infof("Applying manifest at %q", displayPath(p))
	})
}

var imageExts = []string{".tar", ".tar.lz4", ".tar.bz2", ".tbz", ".tar.gz", ".tgz", ".tar.zst", ".tzst", ".txt"}

func watchImages(dir string) {
	keep := func(rel string, d fs.DirEntry) bool {
		if strings.Contains(rel, string(filepath.Separator)) {
			return false
		}
		for _, e := range imageExts {
			if strings.HasSuffix(d.Name(), e) {
				return true
			}
		}
		return false
	}
	pollDir(dir, 2*time.Second, keep, func(p string) {
		start := time.Now()
		infof("Importing images from %s", displayPath(p))
		infof("Imported images from %s in %s", displayPath(p), time.Since(start))
	})
}
