package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"

	"github.com/k3sctl/k3sctl/internal/backup"
	"github.com/k3sctl/k3sctl/internal/secret"
)

func TestBackupFlagsToOptions(t *testing.T) {
	var got *BackupOptions
	capture := func(f *Factory) *cobra.Command {
		return NewCmdBackup(f, func(o *BackupOptions) error { got = o; return nil })
	}
	const key = "age1ag0qgy8ztdnra8sfz7jzjfvnfudv6f92xul9eradq853ryft75dslv8fsz"
	code, _, stderr := runWith(t, capture, "backup", "-f", "fleet.yaml", "--cluster", "factory", "--dir", "/srv/b",
		"--keep", "7", "--encrypt-to", key, "--encrypt-to", key, "-o", "json", "--timeout", "90s")
	if code != ExitOK || got == nil {
		t.Fatalf("exit %d, runF called: %v\n%s", code, got != nil, stderr)
	}
	if got.Target.file != "fleet.yaml" || got.Target.cluster != "factory" || got.Dir != "/srv/b" || got.Keep != 7 ||
		len(got.EncryptTo) != 2 || got.Output != "json" || got.Timeout != 90*time.Second {
		t.Errorf("options: %+v", got)
	}
	got = nil
	if code, _, _ := runWith(t, capture, "backup", "--ip", "10.0.0.5"); code != ExitOK || got == nil || got.Dir != defaultBackupDir || got.Keep != 0 {
		t.Errorf("--ip with defaults: exit %d, options %+v", code, got)
	}
}

func TestBackupAndRestoreUsageErrors(t *testing.T) {
	never := func(f *Factory) *cobra.Command {
		return NewCmdBackup(f, func(*BackupOptions) error { t.Error("runF called"); return nil })
	}
	neverRestore := func(f *Factory) *cobra.Command {
		return NewCmdRestore(f, func(*RestoreOptions) error { t.Error("runF called"); return nil })
	}
	for _, tc := range []struct {
		add  func(*Factory) *cobra.Command
		args []string
		want string
	}{
		{never, []string{"backup"}, "which cluster?"},
		{never, []string{"backup", "-f", "x.yaml", "--ip", "10.0.0.5"}, "not both"},
		{never, []string{"backup", "--ip", "10.0.0.5", "--keep", "-1"}, "--keep"},
		{never, []string{"backup", "--ip", "10.0.0.5", "--encrypt-to", "age1nope"}, "not an age public key"},
		{never, []string{"backup", "--ip", "10.0.0.5", "-o", "yaml"}, "--output"},
		{neverRestore, []string{"restore"}, "which cluster?"},
		{neverRestore, []string{"restore", "--ip", "10.0.0.5", "--backup", "a", "--from", "b"}, "--backup or --from"},
	} {
		code, _, stderr := runWith(t, tc.add, tc.args...)
		if code != ExitUsage || !strings.Contains(stderr, tc.want) {
			t.Errorf("%v: exit %d, want %d and %q:\n%s", tc.args, code, ExitUsage, tc.want, stderr)
		}
	}
}

// A damaged backup is refused before any host is contacted: the address is
// never dialled (there is nothing listening), the error names the part.
func TestRestoreRefusesChangedBackupBeforeConnecting(t *testing.T) {
	root := t.TempDir()
	w, err := backup.Create(root, backup.Meta{Cluster: "home", K3sVersion: "v1.31.4+k3s1", Datastore: backup.SQLite,
		Source: backup.Source{Address: "192.0.2.1"}}, backup.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.AddPart(backup.PartDB, strings.NewReader(strings.Repeat("state", 100))); err != nil {
		t.Fatal(err)
	}
	if err := w.AddToken(secret.New("K10abc::server:secret")); err != nil {
		t.Fatal(err)
	}
	info, err := w.Commit()
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(info.Dir, "db")
	b, _ := os.ReadFile(p)
	b[10] ^= 1
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	add := func(f *Factory) *cobra.Command { return NewCmdRestore(f, nil) }
	code, stdout, stderr := runWith(t, add, "restore", "--ip", "192.0.2.1", "--cluster", "home", "--dir", root, "-o", "json",
		"--ssh-connect-timeout", "1s")
	if code != ExitError || !strings.Contains(stderr, `part "db" sha256 mismatch`) {
		t.Errorf("exit %d, want %d naming part db:\n%s", code, ExitError, stderr)
	}
	if !strings.Contains(stdout, `"type":"error"`) || strings.Contains(stdout+stderr, "secret") {
		t.Errorf("stdout: want an error event and no token:\n%s", stdout)
	}
}

func TestApplyNoSnapshotFlag(t *testing.T) {
	var got *ApplyOptions
	capture := func(f *Factory) *cobra.Command {
		return NewCmdApply(f, func(o *ApplyOptions) error { got = o; return nil })
	}
	if code, _, stderr := runWith(t, capture, "apply", "-f", "fleet.yaml"); code != ExitOK || got == nil || got.K3s.noSnapshot {
		t.Fatalf("apply without --no-snapshot: exit %d, options %+v\n%s", code, got, stderr)
	}
	if code, _, stderr := runWith(t, capture, "apply", "-f", "fleet.yaml", "--no-snapshot"); code != ExitOK || !got.K3s.noSnapshot {
		t.Errorf("apply --no-snapshot: exit %d, noSnapshot %v\n%s", code, got.K3s.noSnapshot, stderr)
	}
}
