package backup

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"
)

// FormatVersion is the manifest format this package writes and the newest
// it reads.
const FormatVersion = 1

// ManifestFile is the name of the manifest inside a backup directory.
const ManifestFile = "manifest.json"

// encryptedSuffix ends the file name of an encrypted part.
const encryptedSuffix = ".age"

// timeLayout is the UTC time in a backup's directory name.
const timeLayout = "20060102T150405Z"

// maxManifestSize bounds what is read as a manifest; a real one is a few
// hundred bytes.
const maxManifestSize = 1 << 20

// Datastore is the kind of datastore a backup was taken from.
type Datastore string

// The datastores K3s servers run on.
const (
	Etcd   Datastore = "etcd"
	SQLite Datastore = "sqlite"
)

// Part names the backup and restore commands use.
const (
	// PartSnapshot is an embedded etcd snapshot (k3s etcd-snapshot save).
	PartSnapshot = "snapshot"
	// PartDB is a tar of the server's server/db directory (SQLite).
	PartDB = "db"
	// PartToken is the cluster token, which a restore needs; every backup
	// has it.
	PartToken = "token"
)

// dataPart is the part that holds the datastore of each kind.
func dataPart(d Datastore) string {
	if d == SQLite {
		return PartDB
	}
	return PartSnapshot
}

// Sentinel errors, wrapped by the errors this package returns, so callers
// can tell them apart with errors.Is.
var (
	ErrBadManifest    = errors.New("manifest is not valid")
	ErrNewerFormat    = errors.New("manifest format is newer than this k3sctl reads")
	ErrMissingPart    = errors.New("file is missing")
	ErrUnexpectedFile = errors.New("is not part of the backup")
	ErrSizeMismatch   = errors.New("size mismatch")
	ErrChecksum       = errors.New("sha256 mismatch")
	ErrNeedIdentity   = errors.New("backup is encrypted")
	ErrWrongIdentity  = errors.New("no identity matches")
	ErrNoBackup       = errors.New("no backup found")
	ErrNotBackup      = errors.New("not a backup")
	ErrBackupExists   = errors.New("backup already exists")
	ErrWriterFinished = errors.New("backup writer already committed or aborted")
	ErrUndecryptable  = errors.New("cannot be decrypted")
	ErrBadName        = errors.New("name is not valid")
	ErrEmptyToken     = errors.New("token part is empty")
)

// Source says where a backup was taken.
type Source struct {
	// Address is the address k3sctl reached the server on.
	Address string `json:"address"`
	// Node is the server's node name, when known.
	Node string `json:"node,omitempty"`
}

// PartInfo describes one stored part. Size and SHA256 are of the bytes as
// stored, so a damaged encrypted part is caught before decryption.
type PartInfo struct {
	Name      string `json:"name"`
	File      string `json:"file"`
	Size      int64  `json:"size"`
	SHA256    string `json:"sha256"`
	Encrypted bool   `json:"encrypted"`
}

// Manifest is the content of manifest.json.
type Manifest struct {
	Format     int       `json:"format"`
	Cluster    string    `json:"cluster"`
	K3sVersion string    `json:"k3sVersion"`
	Datastore  Datastore `json:"datastore"`
	Created    time.Time `json:"created"`
	Source     Source    `json:"source"`
	// Recipients are the age public keys the parts were encrypted to, so a
	// restore can say which identity it needs. Empty when not encrypted.
	Recipients []string   `json:"recipients,omitempty"`
	Parts      []PartInfo `json:"parts"`
}

// Part returns the part called name.
func (m Manifest) Part(name string) (PartInfo, bool) {
	for _, p := range m.Parts {
		if p.Name == name {
			return p, true
		}
	}
	return PartInfo{}, false
}

// Encrypted reports whether any part is encrypted.
func (m Manifest) Encrypted() bool {
	for _, p := range m.Parts {
		if p.Encrypted {
			return true
		}
	}
	return false
}

var partNameRe = regexp.MustCompile(`^[a-z][a-z0-9-]{0,31}$`)

// partFile is the file a part is stored in.
func partFile(name string, encrypted bool) string {
	if encrypted {
		return name + encryptedSuffix
	}
	return name
}

// checkCluster refuses a cluster name that is not a safe single path
// element: the name becomes a directory under the backup root.
func checkCluster(name string) error {
	switch {
	case name == "":
		return fmt.Errorf("cluster %w: it is empty", ErrBadName)
	case len(name) > 200:
		return fmt.Errorf("cluster %q: %w: longer than 200 characters", name, ErrBadName)
	case strings.HasPrefix(name, "."):
		return fmt.Errorf("cluster %q: %w: it must not start with a dot", name, ErrBadName)
	case strings.ContainsAny(name, `/\`):
		return fmt.Errorf("cluster %q: %w: it must not contain a slash", name, ErrBadName)
	}
	for _, r := range name {
		if r < 0x20 || r == 0x7f {
			return fmt.Errorf("cluster %q: %w: it must not contain control characters", name, ErrBadName)
		}
	}
	return nil
}

// dirName is the directory name of a backup of cluster taken at t.
func dirName(cluster string, t time.Time) string {
	return cluster + "-" + t.UTC().Format(timeLayout)
}

// isDirName reports whether name is a backup directory name of cluster.
func isDirName(cluster, name string) bool {
	rest, ok := strings.CutPrefix(name, cluster+"-")
	if !ok {
		return false
	}
	_, err := time.Parse(timeLayout, rest)
	return err == nil
}

// validate checks everything in a manifest that does not need the files.
func (m Manifest) validate() error {
	if m.Format < 1 {
		return fmt.Errorf("%w: format %d", ErrBadManifest, m.Format)
	}
	if m.Format > FormatVersion {
		return fmt.Errorf("%w (format %d, this k3sctl reads up to %d): use a newer k3sctl", ErrNewerFormat, m.Format, FormatVersion)
	}
	if err := checkCluster(m.Cluster); err != nil {
		return fmt.Errorf("%w: %v", ErrBadManifest, err)
	}
	if m.Datastore != Etcd && m.Datastore != SQLite {
		return fmt.Errorf("%w: datastore %q, want %q or %q", ErrBadManifest, m.Datastore, Etcd, SQLite)
	}
	if m.K3sVersion == "" {
		return fmt.Errorf("%w: k3sVersion is empty", ErrBadManifest)
	}
	if m.Created.IsZero() {
		return fmt.Errorf("%w: created is empty", ErrBadManifest)
	}
	if m.Source.Address == "" {
		return fmt.Errorf("%w: source address is empty", ErrBadManifest)
	}
	seen := map[string]bool{}
	for _, p := range m.Parts {
		if !partNameRe.MatchString(p.Name) {
			return fmt.Errorf("%w: part name %q", ErrBadManifest, p.Name)
		}
		if seen[p.Name] {
			return fmt.Errorf("%w: part %q listed twice", ErrBadManifest, p.Name)
		}
		seen[p.Name] = true
		if want := partFile(p.Name, p.Encrypted); p.File != want {
			return fmt.Errorf("%w: part %q: file %q, want %q", ErrBadManifest, p.Name, p.File, want)
		}
		if p.Size < 0 {
			return fmt.Errorf("%w: part %q: size %d", ErrBadManifest, p.Name, p.Size)
		}
		if b, err := hex.DecodeString(p.SHA256); err != nil || len(b) != 32 || strings.ToLower(p.SHA256) != p.SHA256 {
			return fmt.Errorf("%w: part %q: sha256 %q is not 64 lowercase hex digits", ErrBadManifest, p.Name, p.SHA256)
		}
	}
	for _, need := range []string{dataPart(m.Datastore), PartToken} {
		if !seen[need] {
			return fmt.Errorf("%w: a %s backup needs a %q part", ErrBadManifest, m.Datastore, need)
		}
	}
	return nil
}

// label names a backup in messages: <cluster dir>/<backup dir>.
func label(dir string) string {
	return filepath.Base(filepath.Dir(dir)) + "/" + filepath.Base(dir)
}

// readManifest reads and validates dir's manifest.
func readManifest(dir string) (Manifest, error) {
	var m Manifest
	path := filepath.Join(dir, ManifestFile)
	fi, err := os.Lstat(path)
	if errors.Is(err, os.ErrNotExist) {
		return m, fmt.Errorf("backup %s: %w: it has no %s", label(dir), ErrNotBackup, ManifestFile)
	}
	if err != nil {
		return m, fmt.Errorf("backup %s: %w", label(dir), err)
	}
	if !fi.Mode().IsRegular() {
		return m, fmt.Errorf("backup %s: %s %w: it is not a regular file", label(dir), ManifestFile, ErrBadManifest)
	}
	f, err := os.Open(path)
	if err != nil {
		return m, fmt.Errorf("backup %s: %w", label(dir), err)
	}
	defer f.Close()
	raw, err := io.ReadAll(io.LimitReader(f, maxManifestSize+1))
	if err != nil {
		return m, fmt.Errorf("backup %s: read %s: %w", label(dir), ManifestFile, err)
	}
	if len(raw) > maxManifestSize {
		return m, fmt.Errorf("backup %s: %s %w: larger than %d bytes", label(dir), ManifestFile, ErrBadManifest, maxManifestSize)
	}
	if err := json.Unmarshal(raw, &m); err != nil {
		return m, fmt.Errorf("backup %s: %s %w: %v", label(dir), ManifestFile, ErrBadManifest, err)
	}
	if err := m.validate(); err != nil {
		return m, fmt.Errorf("backup %s: %s: %w", label(dir), ManifestFile, err)
	}
	return m, nil
}
