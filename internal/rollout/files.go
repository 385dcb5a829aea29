package rollout

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"sync"

	"github.com/k3sctl/k3sctl/internal/plan"
)

// maxDiffBytes is the largest file whose content a diff shows.
const maxDiffBytes = 1 << 20

// hashLocalFiles fills in the sha256 and size of every delivered file of
// spec (each local file read once) and, with diff, the content of the
// small text files that are not secret.
func hashLocalFiles(spec *plan.Spec, diff bool) error {
	type sum struct {
		sha  string
		size int64
		text []byte
	}
	done := map[string]sum{}
	for ci := range spec.Clusters {
		c := &spec.Clusters[ci]
		for fi := range c.Files {
			f := &c.Files[fi]
			s, ok := done[f.Source]
			if !ok {
				var err error
				if s.sha, s.size, s.text, err = hashFile(f.Source); err != nil {
					return fmt.Errorf("cluster %s: files: %w", c.Name, err)
				}
				done[f.Source] = s
			}
			f.SHA256, f.Size = s.sha, s.size
			if diff && !f.Secret {
				f.Text = s.text
			}
		}
	}
	return nil
}

// hashFile streams a local file through sha256 (image tarballs are large)
// and keeps its content only when it is small text.
func hashFile(path string) (sum string, size int64, text []byte, err error) {
	f, err := os.Open(path)
	if err != nil {
		return "", 0, nil, err
	}
	defer f.Close()
	h := sha256.New()
	var head bytes.Buffer
	size, err = io.Copy(io.MultiWriter(h, &limitedBuffer{buf: &head, max: maxDiffBytes + 1}), f)
	if err != nil {
		return "", 0, nil, fmt.Errorf("read %s: %w", path, err)
	}
	if isText(head.Bytes()) && size == int64(head.Len()) {
		text = head.Bytes()
	}
	return hex.EncodeToString(h.Sum(nil)), size, text, nil
}

// limitedBuffer keeps the first max bytes written to it.
type limitedBuffer struct {
	buf *bytes.Buffer
	max int
}

func (l *limitedBuffer) Write(p []byte) (int, error) {
	if room := l.max - l.buf.Len(); room > 0 {
		l.buf.Write(p[:min(room, len(p))])
	}
	return len(p), nil
}

// isText: small, and no NUL byte in it.
func isText(data []byte) bool {
	return len(data) <= maxDiffBytes && !bytes.ContainsRune(data, 0)
}

// readOldTexts reads, for content diffs, what is on each host now at the
// destination of every changed delivered file that is text, small and not
// secret. A file that cannot be read is shown without a diff.
func readOldTexts(ctx context.Context, spec *plan.Spec, conns map[string]Conn, facts map[string]*plan.HostFacts, limit int) {
	byAddr := map[string]map[string]bool{}
	for ci := range spec.Clusters {
		c := &spec.Clusters[ci]
		for _, h := range clusterHosts(*c) {
			f := facts[h.Address]
			if f == nil || f.Err != "" || conns[h.Address] == nil {
				continue
			}
			for _, file := range plan.HostFiles(c, h.Role) {
				dest := file.Dest()
				old := f.FileHashes[dest]
				if file.Text == nil || old == "" || old == file.SHA256 || f.FileStats[dest].Size > maxDiffBytes {
					continue
				}
				if byAddr[h.Address] == nil {
					byAddr[h.Address] = map[string]bool{}
				}
				byAddr[h.Address][dest] = true
			}
		}
	}
	var targets []target
	for a := range byAddr {
		targets = append(targets, target{addr: a})
	}
	var mu sync.Mutex
	parallel(targets, limit, func(t target) {
		for p := range byAddr[t.addr] {
			data, err := conns[t.addr].ReadFile(ctx, p)
			if err != nil || !isText(data) {
				continue
			}
			mu.Lock()
			f := facts[t.addr]
			if f.OldText == nil {
				f.OldText = map[string][]byte{}
			}
			f.OldText[p] = data
			mu.Unlock()
		}
	})
}
