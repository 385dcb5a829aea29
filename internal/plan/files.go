package plan

import (
	"encoding/json"
	"fmt"
	"path"
	"sort"
	"strings"

	"github.com/k3sctl/k3sctl/internal/k3s"
)

// DeliveredRecordPath is where k3sctl records, on each node, the files it
// delivered, so that it can remove one the inventory no longer lists.
// Uninstalling K3s removes it with the rest of /var/lib/rancher/k3s.
const DeliveredRecordPath = "/var/lib/rancher/k3s/k3sctl/files.json"

// DeliveredRecordMode is the record's mode: it is root's business only.
const DeliveredRecordMode = 0o600

// DeliveredFile is one entry of the record: a path k3sctl delivered and
// the sha256 of what it wrote there.
type DeliveredFile struct {
	Path   string `json:"path"`
	SHA256 string `json:"sha256"`
}

// deliveredRecord is the record file:
// {"version":1,"files":[{"path":"/…","sha256":"…"}]}.
type deliveredRecord struct {
	Version int             `json:"version"`
	Files   []DeliveredFile `json:"files"`
}

// RenderDeliveredRecord is the record file for files, sorted by path, on
// one line.
func RenderDeliveredRecord(files []DeliveredFile) []byte {
	sorted := append([]DeliveredFile{}, files...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].Path < sorted[j].Path })
	if sorted == nil {
		sorted = []DeliveredFile{}
	}
	b, _ := json.Marshal(deliveredRecord{Version: 1, Files: sorted})
	return append(b, '\n')
}

// ParseDeliveredRecord reads a record file. Entries that are not absolute
// paths are dropped: k3sctl never wrote them.
func ParseDeliveredRecord(data []byte) ([]DeliveredFile, error) {
	var r deliveredRecord
	if err := json.Unmarshal(data, &r); err != nil {
		return nil, fmt.Errorf("%s: %w", DeliveredRecordPath, err)
	}
	if r.Version != 1 {
		return nil, fmt.Errorf("%s: version %d is not known to this k3sctl; update k3sctl", DeliveredRecordPath, r.Version)
	}
	out := []DeliveredFile{}
	for _, f := range r.Files {
		if path.IsAbs(f.Path) && path.Clean(f.Path) == f.Path {
			out = append(out, f)
		}
	}
	return out, nil
}

// File operations of a FileChange.
const (
	FileCreate = "create"
	FileUpdate = "update"
	FileRemove = "remove"
)

// FileChange is one delivered file that apply writes or removes on a host.
type FileChange struct {
	Path string   `json:"path"`
	Kind FileKind `json:"kind,omitempty"`
	Op   string   `json:"op"` // FileCreate, FileUpdate or FileRemove
	// OldSHA256 is what is on the host now; for a removal, what k3sctl
	// recorded writing there (apply removes the file only if it is still that).
	OldSHA256 string `json:"oldSha256,omitempty"`
	NewSHA256 string `json:"newSha256,omitempty"`
	OldSize   int64  `json:"oldSize,omitempty"`
	NewSize   int64  `json:"newSize,omitempty"`
	OldMode   uint32 `json:"oldMode,omitempty"`
	NewMode   uint32 `json:"newMode,omitempty"`
	Secret    bool   `json:"secret,omitempty"`
	// Restart: K3s reads the file only when it starts.
	Restart bool `json:"restart,omitempty"`
	// Diff is the content change, only when asked for and never for a
	// secret file.
	Diff string `json:"diff,omitempty"`
}

// RemovedManifestNote is what plan says of a removed manifest (K3s keeps
// what it applied from a manifest that is deleted).
const RemovedManifestNote = "K3s does not delete the resources of a removed manifest: delete them with kubectl if they should go"

// Summary is one line for people: path, sizes and sha256 prefixes.
func (fc FileChange) Summary() string {
	switch fc.Op {
	case FileRemove:
		s := fc.Path + ": remove (delivered by k3sctl, no longer in the inventory)"
		if fc.Kind == FileManifest || strings.HasPrefix(fc.Path, k3s.ManifestsDir+"/") {
			s += "; " + RemovedManifestNote
		}
		return s
	case FileCreate:
		return fmt.Sprintf("%s: new, %d bytes, sha256 %s", fc.Path, fc.NewSize, shortSum(fc.NewSHA256))
	}
	s := fmt.Sprintf("%s: %d → %d bytes, sha256 %s → %s", fc.Path, fc.OldSize, fc.NewSize, shortSum(fc.OldSHA256), shortSum(fc.NewSHA256))
	if fc.OldSHA256 == fc.NewSHA256 {
		s = fmt.Sprintf("%s: same content, sha256 %s", fc.Path, shortSum(fc.NewSHA256))
	}
	if fc.OldMode != fc.NewMode {
		s += fmt.Sprintf(", mode %04o → %04o", fc.OldMode, fc.NewMode)
	}
	return s
}

func shortSum(s string) string {
	if len(s) > 12 {
		return s[:12]
	}
	if s == "" {
		return "none"
	}
	return s
}

// HostFiles are the cluster's files a host of role r receives, by
// destination; a later entry for the same destination wins.
func HostFiles(c *Cluster, r k3s.Role) []File {
	var out []File
	idx := map[string]int{}
	for _, f := range c.Files {
		if !f.For(r) {
			continue
		}
		if i, ok := idx[f.Dest()]; ok {
			out[i] = f
			continue
		}
		idx[f.Dest()] = len(out)
		out = append(out, f)
	}
	return out
}

// fileChanges compares the files host h should have with the facts: each
// by sha256 and mode, and every path of the host's record that is no
// longer wanted. recordStale is true when the record itself differs from
// what it will say after apply.
func fileChanges(c *Cluster, h Host, f *HostFacts) (changes []FileChange, recordStale bool) {
	want := HostFiles(c, h.Role)
	wanted := map[string]bool{}
	var record []DeliveredFile
	for _, file := range want {
		dest := file.Dest()
		wanted[dest] = true
		record = append(record, DeliveredFile{Path: dest, SHA256: file.SHA256})
		old := f.FileHashes[dest]
		st, exists := f.FileStats[dest]
		if old != "" && old == file.SHA256 && exists && st.Mode == DeliveredFileMode {
			continue
		}
		fc := FileChange{Path: dest, Kind: file.Kind, Op: FileUpdate, OldSHA256: old, NewSHA256: file.SHA256,
			OldSize: st.Size, NewSize: file.Size, OldMode: st.Mode, NewMode: DeliveredFileMode,
			Secret: file.Secret, Restart: file.Kind.NeedsRestart()}
		if old == "" {
			fc.Op = FileCreate
			fc.OldMode = 0
		}
		if !file.Secret && file.Text != nil {
			if oldText, ok := f.OldText[dest]; ok || old == "" {
				fc.Diff = Diff(oldText, file.Text)
			}
		}
		changes = append(changes, fc)
	}
	for _, d := range f.Delivered {
		if h, hashed := f.FileHashes[d.Path]; wanted[d.Path] || hashed && h == "" {
			// Still wanted, or seen to be gone already.
			continue
		}
		fc := FileChange{Path: d.Path, Op: FileRemove, OldSHA256: d.SHA256, OldSize: f.FileStats[d.Path].Size}
		switch {
		case strings.HasPrefix(d.Path, k3s.ManifestsDir+"/"):
			fc.Kind = FileManifest
		case strings.HasPrefix(d.Path, k3s.ImagesDir+"/"):
			fc.Kind = FileImages
		case d.Path == k3s.RegistriesPath:
			// K3s keeps the mirrors it read until it restarts.
			fc.Kind, fc.Restart = FileRegistries, true
		}
		changes = append(changes, fc)
	}
	sort.SliceStable(changes, func(i, j int) bool { return changes[i].Path < changes[j].Path })
	return changes, !sameRecord(f.Delivered, record)
}

func sameRecord(have, want []DeliveredFile) bool {
	if have == nil {
		return len(want) == 0
	}
	m := map[string]string{}
	for _, d := range have {
		m[d.Path] = d.SHA256
	}
	if len(m) != len(want) {
		return false
	}
	for _, d := range want {
		if s, ok := m[d.Path]; !ok || s != d.SHA256 {
			return false
		}
	}
	return true
}

// FilesRestart reports whether any of changes needs K3s to restart.
func FilesRestart(changes []FileChange) bool {
	for _, fc := range changes {
		if fc.Restart {
			return true
		}
	}
	return false
}
