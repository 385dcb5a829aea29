package mirror

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
)

// Builds are cached twice: in this process (one build per version and
// architecture however many tests ask), and on disk under
// $TMPDIR/k3s-sim-cache/<hash of the simulator's sources>, so that later
// test runs reuse them until the simulator changes.

var (
	buildMu   sync.Mutex
	buildOnce = map[string]*buildResult{}
)

type buildResult struct {
	once sync.Once
	path string
	err  error
}

func binary(version, arch string) (string, error) {
	if strings.ContainsAny(version, `/\ "'`) || version == "" {
		return "", fmt.Errorf("invalid version %q", version)
	}
	key := version + "/" + arch
	buildMu.Lock()
	r, ok := buildOnce[key]
	if !ok {
		r = &buildResult{}
		buildOnce[key] = r
	}
	buildMu.Unlock()
	r.once.Do(func() { r.path, r.err = buildCached(version, arch) })
	return r.path, r.err
}

// paths returns the module root and the simulator's source directory,
// found from this file's location so tests in any package can build.
func paths() (root, src string, err error) {
	_, file, _, ok := runtime.Caller(0)
	if ok && filepath.IsAbs(file) {
		root = filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
	} else {
		// Built with -trimpath: ask the go tool where the module is.
		out, err := exec.Command(goTool(), "env", "GOMOD").Output()
		if err != nil || strings.TrimSpace(string(out)) == "" || strings.TrimSpace(string(out)) == os.DevNull {
			return "", "", errors.New("cannot locate the module holding the simulator's sources")
		}
		root = filepath.Dir(strings.TrimSpace(string(out)))
	}
	src = filepath.Join(root, "test", "k3s-sim")
	if _, err := os.Stat(filepath.Join(src, "main.go")); err != nil {
		return "", "", fmt.Errorf("simulator sources not found at %s: %w", src, err)
	}
	return root, src, nil
}

var (
	hashOnce sync.Once
	srcHash  string
	hashErr  error
)

// sourceHash covers everything that changes the binary: the simulator's
// Go files, the module's requirements and the Go toolchain.
func sourceHash(root, src string) (string, error) {
	hashOnce.Do(func() {
		h := sha256.New()
		var files []string
		hashErr = filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if !d.IsDir() && strings.HasSuffix(p, ".go") && !strings.HasSuffix(p, "_test.go") {
				files = append(files, p)
			}
			return nil
		})
		if hashErr != nil {
			return
		}
		sort.Strings(files)
		files = append(files, filepath.Join(root, "go.mod"), filepath.Join(root, "go.sum"))
		for _, f := range files {
			b, err := os.ReadFile(f)
			if err != nil && !os.IsNotExist(err) {
				hashErr = err
				return
			}
			rel, _ := filepath.Rel(root, f)
			fmt.Fprintf(h, "%s %d\n", rel, len(b))
			h.Write(b)
		}
		fmt.Fprintf(h, "go %s\n", goVersion())
		srcHash = hex.EncodeToString(h.Sum(nil))[:16]
	})
	return srcHash, hashErr
}

// goTool is the go command on PATH, else the one of the toolchain that
// runs the tests (go test puts its GOROOT/bin first on PATH).
func goTool() string {
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	return "go"
}

func goVersion() string {
	out, err := exec.Command(goTool(), "env", "GOVERSION").Output()
	if err != nil {
		return runtime.Version()
	}
	return strings.TrimSpace(string(out))
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

func buildCached(version, arch string) (string, error) {
	root, src, err := paths()
	if err != nil {
		return "", err
	}
	hash, err := sourceHash(root, src)
	if err != nil {
		return "", err
	}
	dir := filepath.Join(os.TempDir(), "k3s-sim-cache", hash, strings.ReplaceAll(version, "+", "_"), arch)
	out := filepath.Join(dir, "k3s")
	if fileExists(out) {
		return out, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	tmp, err := os.CreateTemp(dir, "k3s-*.tmp")
	if err != nil {
		return "", err
	}
	tmp.Close()
	defer os.Remove(tmp.Name())
	rel, _ := filepath.Rel(root, src)
	cmd := exec.Command(goTool(), "build", "-trimpath", "-ldflags", "-s -w -X main.version="+version,
		"-o", tmp.Name(), "./"+filepath.ToSlash(rel))
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+arch)
	if arch == "arm" {
		cmd.Env = append(cmd.Env, "GOARM=7")
	}
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build: %v\n%s", err, b)
	}
	if err := os.Chmod(tmp.Name(), 0o755); err != nil {
		return "", err
	}
	// Another process may have finished the same build meanwhile; both
	// results are the same binary, so the last rename wins harmlessly.
	if err := os.Rename(tmp.Name(), out); err != nil {
		return "", err
	}
	return out, nil
}
