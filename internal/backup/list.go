package backup

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// Info is one backup found under a backup root. Its manifest was read and
// checked for form, but its parts were not hashed: Open does that.
type Info struct {
	// Name is the directory name, e.g. shop-1-20261202T153000Z.
	Name     string
	Dir      string
	Manifest Manifest
}

// List returns the backups of cluster under root, newest first. It counts a
// directory only when its name is <cluster>-<UTC time> and it holds a valid
// manifest of that cluster; everything else (unfinished backups, other
// files) is passed over. No backups is an empty list, not an error.
func List(root, cluster string) ([]Info, error) {
	if err := checkCluster(cluster); err != nil {
		return nil, fmt.Errorf("list backups: %w", err)
	}
	clusterDir := filepath.Join(root, cluster)
	entries, err := os.ReadDir(clusterDir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list backups of %s: %w", cluster, err)
	}
	var out []Info
	for _, e := range entries {
		name := e.Name()
		if strings.HasPrefix(name, ".") || !e.IsDir() || !isDirName(cluster, name) {
			continue
		}
		dir := filepath.Join(clusterDir, name)
		m, err := readManifest(dir)
		if err != nil || m.Cluster != cluster {
			continue
		}
		out = append(out, Info{Name: name, Dir: dir, Manifest: m})
	}
	sort.SliceStable(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if !a.Manifest.Created.Equal(b.Manifest.Created) {
			return a.Manifest.Created.After(b.Manifest.Created)
		}
		return a.Name > b.Name
	})
	return out, nil
}

// Select chooses a backup of cluster: the newest when name is empty,
// otherwise the one whose directory is called name.
func Select(root, cluster, name string) (Info, error) {
	all, err := List(root, cluster)
	if err != nil {
		return Info{}, err
	}
	if len(all) == 0 {
		return Info{}, fmt.Errorf("cluster %s: %w under %s: take a backup first, or point to the backup directory",
			cluster, ErrNoBackup, filepath.Join(root, cluster))
	}
	if name == "" {
		return all[0], nil
	}
	for _, b := range all {
		if b.Name == name {
			return b, nil
		}
	}
	names := make([]string, 0, 5)
	for i := 0; i < len(all) && i < 5; i++ {
		names = append(names, all[i].Name)
	}
	more := ""
	if len(all) > 5 {
		more = fmt.Sprintf(" and %d older", len(all)-5)
	}
	return Info{}, fmt.Errorf("cluster %s: %w called %q under %s; newest are %s%s",
		cluster, ErrNoBackup, name, filepath.Join(root, cluster), strings.Join(names, ", "), more)
}

// Prune keeps the newest keep backups of cluster and removes the older
// ones. It removes only what List counts as a backup, and of it only the
// manifest and the files the manifest names: a backup directory holding
// anything else is left in place and reported. It returns what it removed.
func Prune(root, cluster string, keep int) ([]Info, error) {
	if keep < 1 {
		return nil, fmt.Errorf("prune backups of %s: keep %d: keep at least 1", cluster, keep)
	}
	all, err := List(root, cluster)
	if err != nil {
		return nil, err
	}
	if len(all) <= keep {
		return nil, nil
	}
	var removed []Info
	var errs []error
	for _, b := range all[keep:] {
		if err := removeBackup(b); err != nil {
			errs = append(errs, err)
			continue
		}
		removed = append(removed, b)
	}
	return removed, errors.Join(errs...)
}

// removeBackup first renames the backup to a hidden name, so it leaves List
// in one step, then removes the files the manifest names.
func removeBackup(b Info) error {
	known := map[string]bool{ManifestFile: true}
	for _, p := range b.Manifest.Parts {
		known[p.File] = true
	}
	entries, err := os.ReadDir(b.Dir)
	if err != nil {
		return fmt.Errorf("backup %s: not removed: %w", label(b.Dir), err)
	}
	var extra []string
	for _, e := range entries {
		if !known[e.Name()] || !e.Type().IsRegular() {
			extra = append(extra, e.Name())
		}
	}
	if len(extra) > 0 {
		return fmt.Errorf("backup %s: not removed: it holds files its manifest does not name (%s); remove it by hand",
			label(b.Dir), strings.Join(extra, ", "))
	}
	trash, err := hiddenName(filepath.Dir(b.Dir), ".prune-"+b.Name+"-")
	if err != nil {
		return fmt.Errorf("backup %s: not removed: %w", label(b.Dir), err)
	}
	if err := os.Rename(b.Dir, trash); err != nil {
		return fmt.Errorf("backup %s: not removed: %w", label(b.Dir), err)
	}
	for _, e := range entries {
		if err := os.Remove(filepath.Join(trash, e.Name())); err != nil {
			return fmt.Errorf("backup %s: remove: %w", label(b.Dir), err)
		}
	}
	if err := os.Remove(trash); err != nil {
		return fmt.Errorf("backup %s: remove: %w", label(b.Dir), err)
	}
	return nil
}

// hiddenName returns a path in dir that does not exist yet.
func hiddenName(dir, prefix string) (string, error) {
	for range 10 {
		var r [6]byte
		if _, err := rand.Read(r[:]); err != nil {
			return "", err
		}
		p := filepath.Join(dir, prefix+hex.EncodeToString(r[:]))
		if _, err := os.Lstat(p); errors.Is(err, os.ErrNotExist) {
			return p, nil
		}
	}
	return "", fmt.Errorf("no free temporary name in %s", dir)
}
