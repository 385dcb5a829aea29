package backup

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"
	"strings"

	"filippo.io/age"

	"github.com/k3sctl/k3sctl/internal/secret"
)

// maxTokenSize bounds the token part; a K3s token is about 110 bytes.
const maxTokenSize = 64 << 10

// Backup is a verified backup opened for reading.
type Backup struct {
	dir        string
	m          Manifest
	identities []age.Identity
}

// Verify checks a backup directory without decrypting anything: the
// manifest is well formed, every part it names is there with the recorded
// size and sha256, and nothing else is in the directory. The error names the
// part that does not match.
func Verify(dir string) (Manifest, error) {
	m, err := readManifest(dir)
	if err != nil {
		return Manifest{}, err
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return Manifest{}, fmt.Errorf("backup %s: %w", label(dir), err)
	}
	known := map[string]bool{ManifestFile: true}
	for _, p := range m.Parts {
		known[p.File] = true
	}
	for _, e := range entries {
		if !known[e.Name()] {
			return Manifest{}, fmt.Errorf("backup %s: %q %w: the manifest does not name it; move it out of %s",
				label(dir), e.Name(), ErrUnexpectedFile, dir)
		}
	}
	for _, p := range m.Parts {
		if err := verifyPart(dir, p); err != nil {
			return Manifest{}, err
		}
	}
	return m, nil
}

func verifyPart(dir string, p PartInfo) error {
	path := filepath.Join(dir, p.File)
	fi, err := os.Lstat(path)
	if errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("backup %s: part %q %w: %s is not in the backup directory", label(dir), p.Name, ErrMissingPart, p.File)
	}
	if err != nil {
		return fmt.Errorf("backup %s: part %q: %w", label(dir), p.Name, err)
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("backup %s: part %q: %s is not a regular file", label(dir), p.Name, p.File)
	}
	if fi.Size() != p.Size {
		return sizeError(dir, p, fi.Size())
	}
	n, sum, err := hashFile(path)
	if err != nil {
		return fmt.Errorf("backup %s: part %q: %w", label(dir), p.Name, err)
	}
	if n != p.Size {
		return sizeError(dir, p, n)
	}
	if sum != p.SHA256 {
		return checksumError(dir, p, sum)
	}
	return nil
}

func sizeError(dir string, p PartInfo, have int64) error {
	return fmt.Errorf("backup %s: part %q %w: the file was changed or damaged (want %d bytes, have %d)",
		label(dir), p.Name, ErrSizeMismatch, p.Size, have)
}

func checksumError(dir string, p PartInfo, have string) error {
	return fmt.Errorf("backup %s: part %q %w: the file was changed or damaged (want %s, have %s)",
		label(dir), p.Name, ErrChecksum, p.SHA256, have)
}

// Open verifies a backup (see Verify) and, when it is encrypted, checks that
// the identities unlock every encrypted part, so a restore learns of a
// wrong key before it changes anything.
func Open(dir string, identities []age.Identity) (*Backup, error) {
	m, err := Verify(dir)
	if err != nil {
		return nil, err
	}
	b := &Backup{dir: dir, m: m, identities: identities}
	if !m.Encrypted() {
		return b, nil
	}
	if len(identities) == 0 {
		return nil, fmt.Errorf("backup %s: %w%s: give the age identity file of one of its recipients",
			label(dir), ErrNeedIdentity, b.recipientsNote())
	}
	for _, p := range m.Parts {
		if !p.Encrypted {
			continue
		}
		f, err := os.Open(filepath.Join(dir, p.File))
		if err != nil {
			return nil, fmt.Errorf("backup %s: part %q: %w", label(dir), p.Name, err)
		}
		_, err = age.Decrypt(f, identities...)
		f.Close()
		if err != nil {
			return nil, b.decryptError(p, err)
		}
	}
	return b, nil
}

func (b *Backup) recipientsNote() string {
	if len(b.m.Recipients) == 0 {
		return ""
	}
	return " to " + strings.Join(b.m.Recipients, ", ")
}

func (b *Backup) decryptError(p PartInfo, err error) error {
	var nomatch *age.NoIdentityMatchError
	if errors.As(err, &nomatch) {
		return fmt.Errorf("backup %s: part %q: %w among the %d given: it was encrypted%s; give the identity file of one of those",
			label(b.dir), p.Name, ErrWrongIdentity, len(b.identities), b.recipientsNote())
	}
	return fmt.Errorf("backup %s: part %q %w: the file was changed or damaged (%v)", label(b.dir), p.Name, ErrUndecryptable, err)
}

// Dir is the backup's directory.
func (b *Backup) Dir() string { return b.dir }

// Name is the backup's directory name, e.g. shop-1-20261202T153000Z.
func (b *Backup) Name() string { return filepath.Base(b.dir) }

// Manifest is the backup's verified manifest.
func (b *Backup) Manifest() Manifest { return b.m }

// Part opens the part called name and gives its plain bytes. The stored
// bytes are checked again while they are read: if the file changed since
// Open, the read that reaches its end fails naming the part.
func (b *Backup) Part(name string) (io.ReadCloser, error) {
	p, ok := b.m.Part(name)
	if !ok {
		names := make([]string, len(b.m.Parts))
		for i, q := range b.m.Parts {
			names[i] = q.Name
		}
		return nil, fmt.Errorf("backup %s: no part %q (it has %s)", label(b.dir), name, strings.Join(names, ", "))
	}
	f, err := os.Open(filepath.Join(b.dir, p.File))
	if err != nil {
		return nil, fmt.Errorf("backup %s: part %q: %w", label(b.dir), p.Name, err)
	}
	vr := &verifyReader{r: f, h: sha256.New(), dir: b.dir, p: p}
	if !p.Encrypted {
		return readCloser{Reader: vr, Closer: f}, nil
	}
	if len(b.identities) == 0 {
		f.Close()
		return nil, fmt.Errorf("backup %s: %w%s: give the age identity file of one of its recipients",
			label(b.dir), ErrNeedIdentity, b.recipientsNote())
	}
	plain, err := age.Decrypt(vr, b.identities...)
	if err != nil {
		f.Close()
		if vr.err != nil {
			return nil, vr.err
		}
		return nil, b.decryptError(p, err)
	}
	return readCloser{Reader: &decryptReader{r: plain, vr: vr, b: b, p: p}, Closer: f}, nil
}

// Token reads the cluster token back.
func (b *Backup) Token() (secret.Value, error) {
	rc, err := b.Part(PartToken)
	if err != nil {
		return secret.Value{}, err
	}
	defer rc.Close()
	raw, err := io.ReadAll(io.LimitReader(rc, maxTokenSize+1))
	if err != nil {
		return secret.Value{}, err
	}
	if len(raw) > maxTokenSize {
		return secret.Value{}, fmt.Errorf("backup %s: part %q is larger than %d bytes: it is not a K3s token", label(b.dir), PartToken, maxTokenSize)
	}
	tok := strings.TrimSpace(string(raw))
	if tok == "" {
		return secret.Value{}, fmt.Errorf("backup %s: part %q: %w", label(b.dir), PartToken, ErrEmptyToken)
	}
	return secret.New(tok), nil
}

type readCloser struct {
	io.Reader
	io.Closer
}

// verifyReader hashes the stored bytes as they are read and turns the end
// of the file into an error when they do not match the manifest.
type verifyReader struct {
	r   io.Reader
	h   hash.Hash
	n   int64
	dir string
	p   PartInfo
	err error
}

func (v *verifyReader) Read(b []byte) (int, error) {
	if v.err != nil {
		return 0, v.err
	}
	n, err := v.r.Read(b)
	v.h.Write(b[:n])
	v.n += int64(n)
	if v.n > v.p.Size {
		v.err = sizeError(v.dir, v.p, v.n)
		return n, v.err
	}
	if err == io.EOF {
		switch sum := hex.EncodeToString(v.h.Sum(nil)); {
		case v.n != v.p.Size:
			v.err = sizeError(v.dir, v.p, v.n)
		case sum != v.p.SHA256:
			v.err = checksumError(v.dir, v.p, sum)
		}
		if v.err != nil {
			return n, v.err
		}
	}
	return n, err
}

// decryptReader reports a changed stored file rather than the decryption
// failure it causes.
type decryptReader struct {
	r  io.Reader
	vr *verifyReader
	b  *Backup
	p  PartInfo
}

func (d *decryptReader) Read(p []byte) (int, error) {
	n, err := d.r.Read(p)
	if err != nil && err != io.EOF {
		if d.vr.err != nil {
			return n, d.vr.err
		}
		return n, d.b.decryptError(d.p, err)
	}
	return n, err
}
