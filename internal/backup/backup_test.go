package backup

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"filippo.io/age"

	"github.com/k3sctl/k3sctl/internal/secret"
)

const testToken = "K10" + "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef" + "::server:s3cr3t-passw0rd"

var t0 = time.Date(2026, 12, 2, 15, 30, 0, 0, time.UTC)

func etcdMeta(cluster string, at time.Time) Meta {
	return Meta{
		Cluster:    cluster,
		K3sVersion: "v1.31.4+k3s1",
		Datastore:  Etcd,
		Source:     Source{Address: "10.0.0.5", Node: cluster + "-a"},
		Created:    at,
	}
}

// snapshotBytes is more than one age chunk (64 KiB), so a change in the
// middle of an encrypted part lands past the first chunk.
func snapshotBytes() []byte {
	b := make([]byte, 200_000)
	for i := range b {
		b[i] = byte(i*7 + i/251)
	}
	return b
}

func writeBackup(t *testing.T, root string, meta Meta, opts Options, data []byte) Info {
	t.Helper()
	w, err := Create(root, meta, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Abort()
	if err := w.AddPart(dataPart(meta.Datastore), bytes.NewReader(data)); err != nil {
		t.Fatal(err)
	}
	if err := w.AddToken(secret.New(testToken)); err != nil {
		t.Fatal(err)
	}
	info, err := w.Commit()
	if err != nil {
		t.Fatal(err)
	}
	return info
}

func readPart(t *testing.T, b *Backup, name string) []byte {
	t.Helper()
	rc, err := b.Part(name)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	got, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	return got
}

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func newIdentity(t *testing.T) *age.X25519Identity {
	t.Helper()
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func TestPlainRoundTrip(t *testing.T) {
	root := t.TempDir()
	snap := snapshotBytes()
	info := writeBackup(t, root, etcdMeta("shop-1", t0.Add(123*time.Millisecond)), Options{}, snap)

	wantDir := filepath.Join(root, "shop-1", "shop-1-20261202T153000Z")
	if info.Dir != wantDir || info.Name != "shop-1-20261202T153000Z" {
		t.Fatalf("backup at %s (%s), want %s", info.Dir, info.Name, wantDir)
	}
	b, err := Open(info.Dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := readPart(t, b, PartSnapshot); !bytes.Equal(got, snap) {
		t.Errorf("snapshot part: got %d bytes, want the %d written", len(got), len(snap))
	}
	tok, err := b.Token()
	if err != nil {
		t.Fatal(err)
	}
	if tok.Reveal() != testToken {
		t.Errorf("token read back differs")
	}

	m := b.Manifest()
	if m.Format != 1 || m.Cluster != "shop-1" || m.K3sVersion != "v1.31.4+k3s1" || m.Datastore != Etcd ||
		m.Source != (Source{Address: "10.0.0.5", Node: "shop-1-a"}) || !m.Created.Equal(t0.Add(123*time.Millisecond)) || m.Recipients != nil {
		t.Errorf("manifest: %+v", m)
	}
	want := []PartInfo{
		{Name: "snapshot", File: "snapshot", Size: int64(len(snap)), SHA256: sha(snap)},
		{Name: "token", File: "token", Size: int64(len(testToken)), SHA256: sha([]byte(testToken))},
	}
	if fmt.Sprint(m.Parts) != fmt.Sprint(want) {
		t.Errorf("parts:\n got %+v\nwant %+v", m.Parts, want)
	}

	// The manifest on disk is the documented JSON.
	raw, err := os.ReadFile(filepath.Join(info.Dir, ManifestFile))
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"format", "cluster", "k3sVersion", "datastore", "created", "source", "parts"} {
		if _, ok := doc[k]; !ok {
			t.Errorf("manifest.json has no %q: %s", k, raw)
		}
	}
	if doc["created"] != "2026-12-02T15:30:00.123Z" || doc["datastore"] != "etcd" {
		t.Errorf("manifest.json created/datastore: %s", raw)
	}
}

func TestSQLiteRoundTripNeedsDBPart(t *testing.T) {
	root := t.TempDir()
	meta := etcdMeta("barn", t0)
	meta.Datastore = SQLite
	tarball := []byte("pretend tar of server/db")
	info := writeBackup(t, root, meta, Options{}, tarball)
	b, err := Open(info.Dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := readPart(t, b, PartDB); !bytes.Equal(got, tarball) {
		t.Errorf("db part = %q", got)
	}
	if b.Manifest().Datastore != SQLite {
		t.Errorf("datastore = %q", b.Manifest().Datastore)
	}

	// An SQLite backup with a snapshot but no db part is refused at Commit.
	w, err := Create(root, Meta{Cluster: "barn", K3sVersion: "v1.31.4+k3s1", Datastore: SQLite, Source: Source{Address: "10.0.0.9"}, Created: t0.Add(time.Hour)}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.AddPart(PartSnapshot, strings.NewReader("x")); err != nil {
		t.Fatal(err)
	}
	if err := w.AddToken(secret.New(testToken)); err != nil {
		t.Fatal(err)
	}
	_, err = w.Commit()
	if !errors.Is(err, ErrBadManifest) || !strings.Contains(err.Error(), `a sqlite backup needs a "db" part`) {
		t.Fatalf("commit without db part: %v", err)
	}
	all, _ := List(root, "barn")
	if len(all) != 1 {
		t.Errorf("refused commit left %d backups, want only the first", len(all))
	}
}

func TestFileModes(t *testing.T) {
	old := syscall.Umask(0)
	defer syscall.Umask(old)
	for _, enc := range []bool{false, true} {
		t.Run(fmt.Sprintf("encrypted=%v", enc), func(t *testing.T) {
			root := t.TempDir()
			var opts Options
			if enc {
				opts.Recipients = []age.Recipient{newIdentity(t).Recipient()}
			}
			info := writeBackup(t, root, etcdMeta("shop-1", t0), opts, []byte("snap"))
			for _, dir := range []string{filepath.Join(root, "shop-1"), info.Dir} {
				fi, err := os.Stat(dir)
				if err != nil {
					t.Fatal(err)
				}
				if fi.Mode().Perm() != 0o700 {
					t.Errorf("%s: mode %o, want 700", dir, fi.Mode().Perm())
				}
			}
			entries, err := os.ReadDir(info.Dir)
			if err != nil {
				t.Fatal(err)
			}
			if len(entries) != 3 {
				t.Errorf("backup holds %d files, want manifest and two parts", len(entries))
			}
			for _, e := range entries {
				fi, err := e.Info()
				if err != nil {
					t.Fatal(err)
				}
				if fi.Mode().Perm() != 0o600 {
					t.Errorf("%s: mode %o, want 600", e.Name(), fi.Mode().Perm())
				}
			}
		})
	}
}

func TestEncryptedRoundTrip(t *testing.T) {
	root := t.TempDir()
	alice, bob := newIdentity(t), newIdentity(t)
	snap := snapshotBytes()
	info := writeBackup(t, root, etcdMeta("shop-1", t0), Options{Recipients: []age.Recipient{alice.Recipient(), bob.Recipient()}}, snap)

	m := info.Manifest
	if !m.Encrypted() || len(m.Recipients) != 2 || m.Recipients[0] != alice.Recipient().String() || m.Recipients[1] != bob.Recipient().String() {
		t.Errorf("manifest recipients: %v", m.Recipients)
	}
	entries, _ := os.ReadDir(info.Dir)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
		raw, err := os.ReadFile(filepath.Join(info.Dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(raw, []byte("s3cr3t-passw0rd")) || bytes.Contains(raw, snap[:64]) {
			t.Errorf("%s holds plain token or snapshot bytes", e.Name())
		}
	}
	sort.Strings(names)
	if strings.Join(names, " ") != "manifest.json snapshot.age token.age" {
		t.Errorf("files: %v", names)
	}
	// The recorded sums are of the bytes as stored.
	for _, p := range m.Parts {
		raw, _ := os.ReadFile(filepath.Join(info.Dir, p.File))
		if !p.Encrypted || p.SHA256 != sha(raw) || p.Size != int64(len(raw)) {
			t.Errorf("part %s: %+v, stored %d bytes sha256 %s", p.Name, p, len(raw), sha(raw))
		}
	}

	for name, id := range map[string]*age.X25519Identity{"alice": alice, "bob": bob} {
		b, err := Open(info.Dir, []age.Identity{id})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if got := readPart(t, b, PartSnapshot); !bytes.Equal(got, snap) {
			t.Errorf("%s: snapshot differs after decryption", name)
		}
		tok, err := b.Token()
		if err != nil || tok.Reveal() != testToken {
			t.Errorf("%s: token: %v", name, err)
		}
	}
}

func TestWrongOrNoIdentity(t *testing.T) {
	root := t.TempDir()
	alice, mallory := newIdentity(t), newIdentity(t)
	info := writeBackup(t, root, etcdMeta("shop-1", t0), Options{Recipients: []age.Recipient{alice.Recipient()}}, []byte("snap"))

	_, err := Open(info.Dir, []age.Identity{mallory})
	if !errors.Is(err, ErrWrongIdentity) {
		t.Fatalf("wrong identity: %v", err)
	}
	for _, want := range []string{"backup shop-1/shop-1-20261202T153000Z", `part "snapshot"`, alice.Recipient().String(), "give the identity file"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("wrong identity error %q lacks %q", err, want)
		}
	}

	_, err = Open(info.Dir, nil)
	if !errors.Is(err, ErrNeedIdentity) || !strings.Contains(err.Error(), alice.Recipient().String()) {
		t.Errorf("no identity: %v", err)
	}

	// Checking sums needs no key.
	if _, err := Verify(info.Dir); err != nil {
		t.Errorf("verify without identity: %v", err)
	}
}

// flipByte changes one byte in the middle of a file, keeping its size.
func flipByte(t *testing.T, path string) {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	raw[len(raw)/2] ^= 0x01
	if err := os.WriteFile(path, raw, 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestOneByteChangedIsRefusedNamingThePart(t *testing.T) {
	for _, enc := range []bool{false, true} {
		for _, part := range []string{PartSnapshot, PartToken} {
			t.Run(fmt.Sprintf("%s/encrypted=%v", part, enc), func(t *testing.T) {
				root := t.TempDir()
				id := newIdentity(t)
				var opts Options
				var ids []age.Identity
				if enc {
					opts.Recipients = []age.Recipient{id.Recipient()}
					ids = []age.Identity{id}
				}
				info := writeBackup(t, root, etcdMeta("shop-1", t0), opts, snapshotBytes())
				p, _ := info.Manifest.Part(part)
				path := filepath.Join(info.Dir, p.File)
				flipByte(t, path)
				raw, _ := os.ReadFile(path)

				want := fmt.Sprintf(`backup shop-1/shop-1-20261202T153000Z: part %q sha256 mismatch: the file was changed or damaged (want %s, have %s)`,
					part, p.SHA256, sha(raw))
				_, err := Open(info.Dir, ids)
				if !errors.Is(err, ErrChecksum) || err.Error() != want {
					t.Errorf("open:\n got %v\nwant %s", err, want)
				}
				if _, err := Verify(info.Dir); err == nil || err.Error() != want {
					t.Errorf("verify: %v", err)
				}
			})
		}
	}
}

func TestChangedSizeMissingAndExtraFiles(t *testing.T) {
	setup := func(t *testing.T) Info {
		return writeBackup(t, t.TempDir(), etcdMeta("shop-1", t0), Options{}, []byte("snapshot bytes"))
	}
	t.Run("truncated", func(t *testing.T) {
		info := setup(t)
		if err := os.WriteFile(filepath.Join(info.Dir, "snapshot"), []byte("snap"), 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := Open(info.Dir, nil)
		if !errors.Is(err, ErrSizeMismatch) || !strings.Contains(err.Error(), `part "snapshot" size mismatch: the file was changed or damaged (want 14 bytes, have 4)`) {
			t.Errorf("truncated: %v", err)
		}
	})
	t.Run("missing", func(t *testing.T) {
		info := setup(t)
		if err := os.Remove(filepath.Join(info.Dir, "token")); err != nil {
			t.Fatal(err)
		}
		_, err := Open(info.Dir, nil)
		if !errors.Is(err, ErrMissingPart) || !strings.Contains(err.Error(), `part "token" file is missing`) {
			t.Errorf("missing: %v", err)
		}
	})
	t.Run("extra", func(t *testing.T) {
		info := setup(t)
		if err := os.WriteFile(filepath.Join(info.Dir, "notes.txt"), []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := Open(info.Dir, nil)
		if !errors.Is(err, ErrUnexpectedFile) || !strings.Contains(err.Error(), `"notes.txt" is not part of the backup`) {
			t.Errorf("extra: %v", err)
		}
	})
	t.Run("symlinked part", func(t *testing.T) {
		info := setup(t)
		target := filepath.Join(t.TempDir(), "elsewhere")
		if err := os.Rename(filepath.Join(info.Dir, "snapshot"), target); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(target, filepath.Join(info.Dir, "snapshot")); err != nil {
			t.Fatal(err)
		}
		_, err := Open(info.Dir, nil)
		if err == nil || !strings.Contains(err.Error(), `part "snapshot": snapshot is not a regular file`) {
			t.Errorf("symlink: %v", err)
		}
	})
}

func TestMalformedManifest(t *testing.T) {
	cases := []struct {
		name   string
		edit   func(m map[string]any)
		raw    string
		target error
		msg    string
	}{
		{name: "not json", raw: "{not json", target: ErrBadManifest, msg: "manifest.json manifest is not valid"},
		{name: "newer format", edit: func(m map[string]any) { m["format"] = 2 }, target: ErrNewerFormat, msg: "use a newer k3sctl"},
		{name: "no format", edit: func(m map[string]any) { delete(m, "format") }, target: ErrBadManifest, msg: "format 0"},
		{name: "datastore", edit: func(m map[string]any) { m["datastore"] = "mysql" }, target: ErrBadManifest, msg: `datastore "mysql"`},
		{name: "no version", edit: func(m map[string]any) { m["k3sVersion"] = "" }, target: ErrBadManifest, msg: "k3sVersion is empty"},
		{name: "no token part", edit: func(m map[string]any) { m["parts"] = m["parts"].([]any)[:1] }, target: ErrBadManifest, msg: `needs a "token" part`},
		{name: "escaping file", edit: func(m map[string]any) {
			m["parts"].([]any)[0].(map[string]any)["file"] = "../../etc/passwd"
		}, target: ErrBadManifest, msg: `file "../../etc/passwd", want "snapshot"`},
		{name: "bad part name", edit: func(m map[string]any) {
			p := m["parts"].([]any)[0].(map[string]any)
			p["name"], p["file"] = "../x", "../x"
		}, target: ErrBadManifest, msg: `part name "../x"`},
		{name: "duplicate part", edit: func(m map[string]any) {
			ps := m["parts"].([]any)
			m["parts"] = append(ps, ps[1])
		}, target: ErrBadManifest, msg: `part "token" listed twice`},
		{name: "bad sha", edit: func(m map[string]any) {
			m["parts"].([]any)[0].(map[string]any)["sha256"] = "abc"
		}, target: ErrBadManifest, msg: "is not 64 lowercase hex digits"},
		{name: "cluster with slash", edit: func(m map[string]any) { m["cluster"] = "a/b" }, target: ErrBadManifest, msg: "must not contain a slash"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			root := t.TempDir()
			info := writeBackup(t, root, etcdMeta("shop-1", t0), Options{}, []byte("snap"))
			path := filepath.Join(info.Dir, ManifestFile)
			raw := []byte(c.raw)
			if c.edit != nil {
				orig, _ := os.ReadFile(path)
				var m map[string]any
				if err := json.Unmarshal(orig, &m); err != nil {
					t.Fatal(err)
				}
				c.edit(m)
				raw, _ = json.Marshal(m)
			}
			if err := os.WriteFile(path, raw, 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := Open(info.Dir, nil)
			if !errors.Is(err, c.target) || !strings.Contains(err.Error(), c.msg) ||
				!strings.HasPrefix(err.Error(), "backup shop-1/shop-1-20261202T153000Z: ") {
				t.Errorf("got %v, want %v containing %q", err, c.target, c.msg)
			}
			// A backup with a bad manifest is not listed, so never pruned.
			if all, _ := List(root, "shop-1"); len(all) != 0 {
				t.Errorf("listed %d backups with a bad manifest", len(all))
			}
		})
	}
	t.Run("no manifest", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "shop-1", "shop-1-20261202T153000Z")
		if err := os.MkdirAll(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		if _, err := Open(dir, nil); !errors.Is(err, ErrNotBackup) {
			t.Errorf("no manifest: %v", err)
		}
	})
}

func TestEncryptedPayloadChangedWithManifestRewritten(t *testing.T) {
	// Sums catch damage; age catches a change even when the manifest was
	// rewritten to match it.
	root := t.TempDir()
	id := newIdentity(t)
	info := writeBackup(t, root, etcdMeta("shop-1", t0), Options{Recipients: []age.Recipient{id.Recipient()}}, snapshotBytes())
	path := filepath.Join(info.Dir, "snapshot.age")
	flipByte(t, path)
	raw, _ := os.ReadFile(path)
	m := info.Manifest
	m.Parts[0].SHA256 = sha(raw)
	mraw, _ := json.Marshal(m)
	if err := os.WriteFile(filepath.Join(info.Dir, ManifestFile), mraw, 0o600); err != nil {
		t.Fatal(err)
	}
	b, err := Open(info.Dir, []age.Identity{id})
	if err == nil {
		var rc io.ReadCloser
		rc, err = b.Part(PartSnapshot)
		if err == nil {
			_, err = io.ReadAll(rc)
			rc.Close()
		}
	}
	if !errors.Is(err, ErrUndecryptable) || !strings.Contains(err.Error(), `part "snapshot" cannot be decrypted: the file was changed or damaged`) {
		t.Errorf("changed ciphertext: %v", err)
	}
}

func TestPartNoticesChangeAfterOpen(t *testing.T) {
	for _, enc := range []bool{false, true} {
		t.Run(fmt.Sprintf("encrypted=%v", enc), func(t *testing.T) {
			id := newIdentity(t)
			var opts Options
			var ids []age.Identity
			if enc {
				opts.Recipients = []age.Recipient{id.Recipient()}
				ids = []age.Identity{id}
			}
			info := writeBackup(t, t.TempDir(), etcdMeta("shop-1", t0), opts, snapshotBytes())
			b, err := Open(info.Dir, ids)
			if err != nil {
				t.Fatal(err)
			}
			p, _ := info.Manifest.Part(PartSnapshot)
			flipByte(t, filepath.Join(info.Dir, p.File))
			rc, err := b.Part(PartSnapshot)
			if err == nil {
				_, err = io.ReadAll(rc)
				rc.Close()
			}
			if err == nil || !strings.Contains(err.Error(), `part "snapshot"`) ||
				!(errors.Is(err, ErrChecksum) || errors.Is(err, ErrUndecryptable)) {
				t.Errorf("read after change: %v", err)
			}
		})
	}
}

func TestAbandonedCreateLeavesNothingVisible(t *testing.T) {
	root := t.TempDir()
	clusterDir := filepath.Join(root, "shop-1")

	w, err := Create(root, etcdMeta("shop-1", t0), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.AddPart(PartSnapshot, bytes.NewReader(snapshotBytes())); err != nil {
		t.Fatal(err)
	}
	// Abandoned before Commit: nothing is listed, nothing has the name.
	if all, err := List(root, "shop-1"); err != nil || len(all) != 0 {
		t.Errorf("unfinished backup listed: %v %v", all, err)
	}
	if _, err := os.Lstat(w.Dir()); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("%s exists before Commit", w.Dir())
	}
	if _, err := Select(root, "shop-1", ""); !errors.Is(err, ErrNoBackup) {
		t.Errorf("select found an unfinished backup: %v", err)
	}
	entries, _ := os.ReadDir(clusterDir)
	for _, e := range entries {
		if !strings.HasPrefix(e.Name(), ".") {
			t.Errorf("visible entry %s before Commit", e.Name())
		}
	}
	if err := w.Abort(); err != nil {
		t.Fatal(err)
	}
	if entries, _ := os.ReadDir(clusterDir); len(entries) != 0 {
		t.Errorf("abort left %d entries", len(entries))
	}
	if _, err := w.Commit(); !errors.Is(err, ErrWriterFinished) {
		t.Errorf("commit after abort: %v", err)
	}

	// A part whose reader fails throws the backup away by itself.
	w, err = Create(root, etcdMeta("shop-1", t0), Options{})
	if err != nil {
		t.Fatal(err)
	}
	boom := errors.New("connection reset")
	err = w.AddPart(PartSnapshot, io.MultiReader(bytes.NewReader(make([]byte, 1000)), &failingReader{err: boom}))
	if !errors.Is(err, boom) || !strings.Contains(err.Error(), `backup shop-1/shop-1-20261202T153000Z: part "snapshot"`) {
		t.Errorf("failing reader: %v", err)
	}
	if entries, _ := os.ReadDir(clusterDir); len(entries) != 0 {
		t.Errorf("failed part left %d entries", len(entries))
	}
	if _, err := w.Commit(); !errors.Is(err, boom) {
		t.Errorf("commit after failure: %v", err)
	}

	// A commit without the token is refused and leaves nothing either.
	w, err = Create(root, etcdMeta("shop-1", t0), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.AddPart(PartSnapshot, strings.NewReader("snap")); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Commit(); !errors.Is(err, ErrBadManifest) || !strings.Contains(err.Error(), `needs a "token" part`) {
		t.Errorf("commit without token: %v", err)
	}
	if entries, _ := os.ReadDir(clusterDir); len(entries) != 0 {
		t.Errorf("refused commit left %d entries", len(entries))
	}
}

type failingReader struct{ err error }

func (f *failingReader) Read([]byte) (int, error) { return 0, f.err }

func TestCreateRefusesBadInput(t *testing.T) {
	root := t.TempDir()
	for _, c := range []struct {
		meta Meta
		msg  string
	}{
		{Meta{Cluster: "", K3sVersion: "v1", Datastore: Etcd, Source: Source{Address: "a"}}, "it is empty"},
		{Meta{Cluster: "up/../x", K3sVersion: "v1", Datastore: Etcd, Source: Source{Address: "a"}}, "must not contain a slash"},
		{Meta{Cluster: "..", K3sVersion: "v1", Datastore: Etcd, Source: Source{Address: "a"}}, "must not start with a dot"},
		{Meta{Cluster: "ok", K3sVersion: "v1", Datastore: "mysql", Source: Source{Address: "a"}}, `datastore "mysql"`},
		{Meta{Cluster: "ok", Datastore: Etcd, Source: Source{Address: "a"}}, "k3sVersion is empty"},
		{Meta{Cluster: "ok", K3sVersion: "v1", Datastore: Etcd}, "source address is empty"},
	} {
		if _, err := Create(root, c.meta, Options{}); err == nil || !strings.Contains(err.Error(), c.msg) {
			t.Errorf("%+v: %v, want %q", c.meta, err, c.msg)
		}
	}
	if entries, _ := os.ReadDir(root); len(entries) != 0 {
		t.Errorf("refused Create left %d entries in the root", len(entries))
	}

	w, err := Create(root, etcdMeta("ok", t0), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Abort()
	for _, name := range []string{"Snapshot", "../x", "a.age", ""} {
		w2, _ := Create(root, etcdMeta("ok", t0.Add(time.Duration(len(name)+1)*time.Second)), Options{})
		if err := w2.AddPart(name, strings.NewReader("x")); !errors.Is(err, ErrBadName) {
			t.Errorf("part name %q: %v", name, err)
		}
	}
	if err := w.AddPart(PartSnapshot, strings.NewReader("x")); err != nil {
		t.Fatal(err)
	}
	if err := w.AddPart(PartSnapshot, strings.NewReader("x")); err == nil || !strings.Contains(err.Error(), "added twice") {
		t.Errorf("duplicate part: %v", err)
	}
	w3, _ := Create(root, etcdMeta("ok", t0.Add(time.Hour)), Options{})
	if err := w3.AddToken(secret.Value{}); !errors.Is(err, ErrEmptyToken) {
		t.Errorf("empty token: %v", err)
	}
}

func TestSameSecondIsRefused(t *testing.T) {
	root := t.TempDir()
	writeBackup(t, root, etcdMeta("shop-1", t0), Options{}, []byte("first"))
	_, err := Create(root, etcdMeta("shop-1", t0.Add(500*time.Millisecond)), Options{})
	if !errors.Is(err, ErrBackupExists) {
		t.Fatalf("second backup in the same second: %v", err)
	}
	b, err := Open(filepath.Join(root, "shop-1", "shop-1-20261202T153000Z"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := readPart(t, b, PartSnapshot); string(got) != "first" {
		t.Errorf("first backup overwritten: %q", got)
	}
}

func TestListAndSelect(t *testing.T) {
	root := t.TempDir()
	if all, err := List(root, "shop-1"); err != nil || len(all) != 0 {
		t.Errorf("no backups yet: %v %v", all, err)
	}
	if _, err := Select(root, "shop-1", ""); !errors.Is(err, ErrNoBackup) || !strings.Contains(err.Error(), "take a backup first") {
		t.Errorf("select with none: %v", err)
	}
	// Written out of order; another cluster alongside.
	for _, h := range []int{3, 1, 7, 5} {
		writeBackup(t, root, etcdMeta("shop-1", t0.Add(time.Duration(h)*time.Hour)), Options{}, []byte("s"))
	}
	writeBackup(t, root, etcdMeta("shop-10", t0.Add(9*time.Hour)), Options{}, []byte("s"))

	all, err := List(root, "shop-1")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, b := range all {
		names = append(names, b.Name)
	}
	want := "shop-1-20261202T223000Z shop-1-20261202T203000Z shop-1-20261202T183000Z shop-1-20261202T163000Z"
	if strings.Join(names, " ") != want {
		t.Errorf("list:\n got %v\nwant %s", names, want)
	}

	newest, err := Select(root, "shop-1", "")
	if err != nil || newest.Name != "shop-1-20261202T223000Z" {
		t.Errorf("newest: %v %v", newest.Name, err)
	}
	named, err := Select(root, "shop-1", "shop-1-20261202T183000Z")
	if err != nil || named.Dir != filepath.Join(root, "shop-1", "shop-1-20261202T183000Z") || named.Manifest.Cluster != "shop-1" {
		t.Errorf("named: %+v %v", named, err)
	}
	_, err = Select(root, "shop-1", "shop-1-20201202T183000Z")
	if !errors.Is(err, ErrNoBackup) || !strings.Contains(err.Error(), "newest are shop-1-20261202T223000Z, ") {
		t.Errorf("unknown name: %v", err)
	}
	if _, err := List(root, "../etc"); !errors.Is(err, ErrBadName) {
		t.Errorf("list with a bad cluster name: %v", err)
	}
}

func TestPruneKeepsExactlyN(t *testing.T) {
	root := t.TempDir()
	clusterDir := filepath.Join(root, "shop-1")
	for h := range 5 {
		writeBackup(t, root, etcdMeta("shop-1", t0.Add(time.Duration(h)*time.Hour)), Options{}, []byte("s"))
	}
	// Things that are not backups of shop-1 and must survive any prune.
	keepers := map[string]func(string) error{
		"notes.txt": func(p string) error { return os.WriteFile(p, []byte("x"), 0o600) },
		"manual":    func(p string) error { return os.Mkdir(p, 0o700) },
		".tmp-shop-1-20200101T000000Z-1": func(p string) error {
			return os.Mkdir(p, 0o700)
		},
		"shop-1-20200101T000000Z": func(p string) error { // backup name, no manifest
			return os.Mkdir(p, 0o700)
		},
		"shop-1-20200102T000000Z": func(p string) error { // broken manifest
			if err := os.Mkdir(p, 0o700); err != nil {
				return err
			}
			return os.WriteFile(filepath.Join(p, ManifestFile), []byte("{"), 0o600)
		},
		"shop-1-20200103T000000Z": func(p string) error { // symlink to a real backup
			return os.Symlink(filepath.Join(clusterDir, "shop-1-20261202T153000Z"), p)
		},
	}
	for name, mk := range keepers {
		if err := mk(filepath.Join(clusterDir, name)); err != nil {
			t.Fatal(err)
		}
	}
	// A backup of another cluster copied under this cluster's name.
	other := writeBackup(t, root, etcdMeta("shop-2", t0.Add(-time.Hour)), Options{}, []byte("s"))
	foreign := filepath.Join(clusterDir, "shop-1-20200104T000000Z")
	if err := os.Rename(other.Dir, foreign); err != nil {
		t.Fatal(err)
	}
	keepers[filepath.Base(foreign)] = nil

	removed, err := Prune(root, "shop-1", 2)
	if err != nil {
		t.Fatal(err)
	}
	var gone []string
	for _, r := range removed {
		gone = append(gone, r.Name)
	}
	if strings.Join(gone, " ") != "shop-1-20261202T173000Z shop-1-20261202T163000Z shop-1-20261202T153000Z" {
		t.Errorf("removed %v", gone)
	}
	all, _ := List(root, "shop-1")
	if len(all) != 2 || all[0].Name != "shop-1-20261202T193000Z" || all[1].Name != "shop-1-20261202T183000Z" {
		t.Errorf("kept %+v", all)
	}
	for name := range keepers {
		if _, err := os.Lstat(filepath.Join(clusterDir, name)); err != nil {
			t.Errorf("prune touched %s: %v", name, err)
		}
	}
	entries, _ := os.ReadDir(clusterDir)
	if len(entries) != 2+len(keepers) {
		t.Errorf("cluster directory holds %d entries, want %d", len(entries), 2+len(keepers))
	}

	// Nothing more to do at the same count.
	if removed, err := Prune(root, "shop-1", 2); err != nil || len(removed) != 0 {
		t.Errorf("second prune: %v %v", removed, err)
	}
	if _, err := Prune(root, "shop-1", 0); err == nil || !strings.Contains(err.Error(), "keep at least 1") {
		t.Errorf("keep 0: %v", err)
	}
}

func TestPruneLeavesBackupWithForeignFiles(t *testing.T) {
	root := t.TempDir()
	old := writeBackup(t, root, etcdMeta("shop-1", t0), Options{}, []byte("s"))
	writeBackup(t, root, etcdMeta("shop-1", t0.Add(time.Hour)), Options{}, []byte("s"))
	if err := os.WriteFile(filepath.Join(old.Dir, "my-notes"), []byte("keep me"), 0o600); err != nil {
		t.Fatal(err)
	}
	removed, err := Prune(root, "shop-1", 1)
	if len(removed) != 0 || err == nil || !strings.Contains(err.Error(), "not removed: it holds files its manifest does not name (my-notes)") {
		t.Errorf("prune: %v %v", removed, err)
	}
	if _, err := os.Stat(filepath.Join(old.Dir, "my-notes")); err != nil {
		t.Errorf("foreign file removed: %v", err)
	}
}

func TestTokenIsASecret(t *testing.T) {
	info := writeBackup(t, t.TempDir(), etcdMeta("shop-1", t0), Options{}, []byte("s"))
	b, err := Open(info.Dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := b.Token()
	if err != nil {
		t.Fatal(err)
	}
	out := fmt.Sprintf("%v %s %+v %#v %+v %+v", tok, tok, tok, tok, b, info)
	if strings.Contains(out, "s3cr3t") {
		t.Errorf("token printed: %s", out)
	}
	if tok.Reveal() != testToken {
		t.Errorf("token differs")
	}

	// Whitespace around the stored token (e.g. a trailing newline from cat)
	// is not part of it; an empty token is refused.
	for raw, want := range map[string]string{testToken + "\n": testToken, " \n": ""} {
		w, err := Create(t.TempDir(), etcdMeta("shop-1", t0), Options{})
		if err != nil {
			t.Fatal(err)
		}
		if err := w.AddPart(PartSnapshot, strings.NewReader("s")); err != nil {
			t.Fatal(err)
		}
		if err := w.AddPart(PartToken, strings.NewReader(raw)); err != nil {
			t.Fatal(err)
		}
		info, err := w.Commit()
		if err != nil {
			t.Fatal(err)
		}
		b, err := Open(info.Dir, nil)
		if err != nil {
			t.Fatal(err)
		}
		tok, err := b.Token()
		if want == "" {
			if !errors.Is(err, ErrEmptyToken) {
				t.Errorf("blank token: %v", err)
			}
			continue
		}
		if err != nil || tok.Reveal() != want {
			t.Errorf("token with newline: %v", err)
		}
	}
}

func TestKeys(t *testing.T) {
	id := newIdentity(t)
	rs, err := ParseRecipients([]string{" " + id.Recipient().String() + " "})
	if err != nil || len(rs) != 1 {
		t.Fatalf("parse recipient: %v", err)
	}
	if _, err := ParseRecipients([]string{"age1nope"}); err == nil || !strings.Contains(err.Error(), `age recipient "age1nope": not an age public key`) {
		t.Errorf("bad recipient: %v", err)
	}

	dir := t.TempDir()
	good := filepath.Join(dir, "key.txt")
	if err := os.WriteFile(good, []byte("# created: today\n# public key: "+id.Recipient().String()+"\n"+id.String()+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	ids, err := ReadIdentities(good)
	if err != nil || len(ids) != 1 {
		t.Fatalf("read identities: %v", err)
	}
	// The parsed recipient and identity work together.
	info := writeBackup(t, t.TempDir(), etcdMeta("shop-1", t0), Options{Recipients: rs}, []byte("snap"))
	if _, err := Open(info.Dir, ids); err != nil {
		t.Errorf("open with parsed keys: %v", err)
	}

	bad := filepath.Join(dir, "bad.txt")
	secretish := strings.Replace(id.String(), "AGE-SECRET-KEY-1", "AGE-SECRET-KEY-1Q", 1)
	if err := os.WriteFile(bad, []byte(secretish+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = ReadIdentities(bad)
	if err == nil || !strings.Contains(err.Error(), "age identity file "+bad) || strings.Contains(err.Error(), secretish[20:]) {
		t.Errorf("bad identity file: %v", err)
	}
	if _, err := ReadIdentities(filepath.Join(dir, "none")); err == nil || !strings.Contains(err.Error(), "none") {
		t.Errorf("missing identity file: %v", err)
	}
}
