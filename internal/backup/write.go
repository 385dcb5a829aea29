package backup

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"filippo.io/age"

	"github.com/k3sctl/k3sctl/internal/secret"
)

// Meta is what the caller knows about a backup before its parts arrive.
type Meta struct {
	Cluster    string
	K3sVersion string
	Datastore  Datastore
	Source     Source
	// Created names the backup; the zero time means now.
	Created time.Time
}

// Options change how a backup is written.
type Options struct {
	// Recipients, when not empty, encrypt every part to each of them; any
	// one matching identity decrypts it.
	Recipients []age.Recipient
}

// Writer writes one backup into a hidden temporary directory next to where
// it will end up; Commit renames it into place. Until then, and when it
// fails, List, Prune and Open see nothing of it.
type Writer struct {
	tmp        string // hidden directory the parts are written to
	final      string // <root>/<cluster>/<name>
	clusterDir string
	recipients []age.Recipient
	m          Manifest
	err        error // first error; the writer is finished once it is set
	done       bool
}

// tmpPrefix starts the name of a backup being written; List and Prune skip
// every entry that starts with a dot.
const tmpPrefix = ".tmp-"

// Create starts a backup of meta.Cluster under root. Call AddPart for every
// part (AddToken for the token), then Commit; call Abort (for example
// deferred) to throw an unfinished one away.
func Create(root string, meta Meta, opts Options) (*Writer, error) {
	if err := checkCluster(meta.Cluster); err != nil {
		return nil, fmt.Errorf("backup: %w", err)
	}
	created := meta.Created
	if created.IsZero() {
		created = time.Now()
	}
	created = created.UTC()
	m := Manifest{
		Format:     FormatVersion,
		Cluster:    meta.Cluster,
		K3sVersion: meta.K3sVersion,
		Datastore:  meta.Datastore,
		Created:    created,
		Source:     meta.Source,
		Parts:      []PartInfo{},
	}
	for _, r := range opts.Recipients {
		if r == nil {
			return nil, fmt.Errorf("backup %s: nil age recipient", meta.Cluster)
		}
		if s, ok := r.(fmt.Stringer); ok {
			m.Recipients = append(m.Recipients, s.String())
		}
	}
	name := dirName(meta.Cluster, created)
	// Check what needs no parts now, so a bad Meta fails before any work.
	probe := m
	probe.Parts = []PartInfo{
		{Name: dataPart(m.Datastore), File: dataPart(m.Datastore), SHA256: strings.Repeat("0", 64)},
		{Name: PartToken, File: PartToken, SHA256: strings.Repeat("0", 64)},
	}
	if err := probe.validate(); err != nil {
		return nil, fmt.Errorf("backup %s/%s: %w", meta.Cluster, name, err)
	}
	clusterDir := filepath.Join(root, meta.Cluster)
	if err := os.MkdirAll(clusterDir, 0o700); err != nil {
		return nil, fmt.Errorf("backup %s: create backup directory: %w", meta.Cluster, err)
	}
	final := filepath.Join(clusterDir, name)
	if _, err := os.Lstat(final); err == nil {
		return nil, fmt.Errorf("backup %s/%s: %w: take the next one a second later", meta.Cluster, name, ErrBackupExists)
	}
	tmp, err := os.MkdirTemp(clusterDir, tmpPrefix+name+"-")
	if err != nil {
		return nil, fmt.Errorf("backup %s: %w", meta.Cluster, err)
	}
	if err := os.Chmod(tmp, 0o700); err != nil {
		_ = os.RemoveAll(tmp)
		return nil, fmt.Errorf("backup %s: %w", meta.Cluster, err)
	}
	return &Writer{tmp: tmp, final: final, clusterDir: clusterDir, recipients: opts.Recipients, m: m}, nil
}

// Dir is where the backup will be once committed.
func (w *Writer) Dir() string { return w.final }

// fail records the first error and removes the temporary directory.
func (w *Writer) fail(err error) error {
	if w.err == nil {
		w.err = err
	}
	_ = os.RemoveAll(w.tmp)
	return err
}

func (w *Writer) usable() error {
	if w.err != nil {
		return w.err
	}
	if w.done {
		return fmt.Errorf("backup %s: %w", label(w.final), ErrWriterFinished)
	}
	return nil
}

// AddPart stores everything r gives as the part called name, encrypted when
// the writer has recipients. A failure throws the whole backup away.
func (w *Writer) AddPart(name string, r io.Reader) error {
	if err := w.usable(); err != nil {
		return err
	}
	if !partNameRe.MatchString(name) {
		return w.fail(fmt.Errorf("backup %s: part %q: %w: use lowercase letters, digits and dashes", label(w.final), name, ErrBadName))
	}
	if _, dup := w.m.Part(name); dup {
		return w.fail(fmt.Errorf("backup %s: part %q added twice", label(w.final), name))
	}
	encrypted := len(w.recipients) > 0
	file := partFile(name, encrypted)
	f, err := os.OpenFile(filepath.Join(w.tmp, file), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return w.fail(fmt.Errorf("backup %s: part %q: %w", label(w.final), name, err))
	}
	sum := sha256.New()
	cw := &countWriter{w: io.MultiWriter(f, sum)}
	err = copyPart(cw, r, w.recipients)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return w.fail(fmt.Errorf("backup %s: part %q: %w", label(w.final), name, err))
	}
	w.m.Parts = append(w.m.Parts, PartInfo{
		Name:      name,
		File:      file,
		Size:      cw.n,
		SHA256:    hex.EncodeToString(sum.Sum(nil)),
		Encrypted: encrypted,
	})
	return nil
}

// copyPart copies r to dst, through age when there are recipients, so the
// plain bytes never reach the disk.
func copyPart(dst io.Writer, r io.Reader, recipients []age.Recipient) error {
	if len(recipients) == 0 {
		_, err := io.Copy(dst, r)
		return err
	}
	enc, err := age.Encrypt(dst, recipients...)
	if err != nil {
		return fmt.Errorf("encrypt: %w", err)
	}
	if _, err := io.Copy(enc, r); err != nil {
		return err
	}
	return enc.Close()
}

// AddToken stores the cluster token as the token part.
func (w *Writer) AddToken(token secret.Value) error {
	if token.IsZero() {
		if err := w.usable(); err != nil {
			return err
		}
		return w.fail(fmt.Errorf("backup %s: part %q: %w", label(w.final), PartToken, ErrEmptyToken))
	}
	return w.AddPart(PartToken, strings.NewReader(token.Reveal()))
}

// Commit writes the manifest and moves the backup into place in one rename.
// It refuses a backup without its datastore part or its token.
func (w *Writer) Commit() (Info, error) {
	if err := w.usable(); err != nil {
		return Info{}, err
	}
	if err := w.m.validate(); err != nil {
		return Info{}, w.fail(fmt.Errorf("backup %s: %w", label(w.final), err))
	}
	raw, err := json.MarshalIndent(w.m, "", "  ")
	if err != nil {
		return Info{}, w.fail(fmt.Errorf("backup %s: %w", label(w.final), err))
	}
	raw = append(raw, '\n')
	if err := writeFileSync(filepath.Join(w.tmp, ManifestFile), raw); err != nil {
		return Info{}, w.fail(fmt.Errorf("backup %s: write %s: %w", label(w.final), ManifestFile, err))
	}
	if err := syncDir(w.tmp); err != nil {
		return Info{}, w.fail(fmt.Errorf("backup %s: %w", label(w.final), err))
	}
	// os.Rename refuses an existing directory as target, so a backup that
	// appeared meanwhile under the same name is never overwritten.
	if _, err := os.Lstat(w.final); err == nil {
		return Info{}, w.fail(fmt.Errorf("backup %s: %w: take the next one a second later", label(w.final), ErrBackupExists))
	}
	if err := os.Rename(w.tmp, w.final); err != nil {
		return Info{}, w.fail(fmt.Errorf("backup %s: move into place: %w", label(w.final), err))
	}
	w.done = true
	if err := syncDir(w.clusterDir); err != nil {
		return Info{}, fmt.Errorf("backup %s: %w", label(w.final), err)
	}
	return Info{Name: filepath.Base(w.final), Dir: w.final, Manifest: w.m}, nil
}

// Abort throws away a backup that was not committed. It does nothing after
// Commit, so it can be deferred.
func (w *Writer) Abort() error {
	if w.done {
		return nil
	}
	w.done = true
	if w.err == nil {
		w.err = fmt.Errorf("backup %s: %w", label(w.final), ErrWriterFinished)
	}
	if err := os.RemoveAll(w.tmp); err != nil {
		return fmt.Errorf("backup %s: remove unfinished backup: %w", label(w.final), err)
	}
	return nil
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

func writeFileSync(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil && !errors.Is(err, os.ErrInvalid) {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	return nil
}

// hashFile returns the size and sha256 of the file at path.
func hashFile(path string) (int64, string, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, "", err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return 0, "", err
	}
	return n, hex.EncodeToString(h.Sum(nil)), nil
}
