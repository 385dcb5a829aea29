package node

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path"
	"strconv"
	"strings"

	"github.com/k3sctl/k3sctl/internal/ssh"
)

// File is a small root-owned file to put on a node.
type File struct {
	Path string
	Mode os.FileMode
	Data []byte
}

// writeFilesHead unpacks the tar stream on stdin into a private temporary
// folder; put then installs one file of it.
const writeFilesHead = `set -e
t=$(mktemp -d "${TMPDIR:-/tmp}/k3sctl-files.XXXXXX")
trap 'rm -rf "$t"' EXIT
tar -xf - -C "$t"
put() {
  d=$1 s=$2 m=$3 src="$t/$4" n=$5
  [ "$(sha256sum < "$src" | cut -c1-64)" = "$s" ] || { echo "$d: content arrived incomplete" >&2; exit 65; }
  if [ -f "$d" ] && [ ! -L "$d" ] && [ "$(stat -c '%u:%g %a' "$d")" = "0:0 $m" ] && [ "$(sha256sum < "$d" | cut -c1-64)" = "$s" ]; then
    return 0
  fi
  mkdir -p "$(dirname "$d")"
  cp "$src" "$n"
  chown 0:0 "$n"
  chmod "$m" "$n"
  mv -f "$n" "$d"
  echo "changed $d"
}
`

// WriteFiles puts every file in place in one round trip: the contents
// travel as a tar stream on stdin (never in a command line, since
// config.yaml holds the token), each is checked against its sha256, and
// only files whose content, owner or mode differ are replaced, through a
// temporary name beside the target and a rename. after, when not empty,
// runs once the files are in place (LinksCommand, for one). It returns the
// paths that changed.
//
// A Conn that is a TempNamer names the temporary files (with its run's
// id); otherwise each call picks a random id, so that two runs never write
// one temporary file.
func WriteFiles(ctx context.Context, c Conn, files []File, after string) ([]string, error) {
	tempFor := randomTempFor()
	if tn, ok := c.(TempNamer); ok {
		tempFor = tn.TempFor
	}
	script, stdin, err := writeFilesScript(files, after, tempFor)
	if err != nil {
		return nil, err
	}
	res, err := c.Run(ctx, script, ssh.RunOptions{Sudo: true, Stdin: stdin})
	if err != nil {
		return nil, err
	}
	var changed []string
	for _, l := range strings.Split(string(res.Stdout), "\n") {
		if p, ok := strings.CutPrefix(l, "changed "); ok {
			changed = append(changed, p)
		}
	}
	return changed, nil
}

// TempNamer is a Conn of a run that names the temporary files it writes
// on the host, so that no other run can choose the same name.
type TempNamer interface {
	// TempFor is the temporary name for writing target by rename: in
	// target's directory.
	TempFor(target string) string
}

// randomTempFor names temporary files with an id of its own.
func randomTempFor() func(string) string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	id := hex.EncodeToString(b[:])
	return func(target string) string {
		return path.Join(path.Dir(target), ".k3sctl-"+id+"-"+path.Base(target)+".tmp")
	}
}

func writeFilesScript(files []File, after string, tempFor func(string) string) (string, *bytes.Buffer, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	var script strings.Builder
	script.WriteString(writeFilesHead)
	for i, f := range files {
		name := strconv.Itoa(i)
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o600, Size: int64(len(f.Data)), Typeflag: tar.TypeReg}); err != nil {
			return "", nil, err
		}
		if _, err := tw.Write(f.Data); err != nil {
			return "", nil, err
		}
		sum := sha256.Sum256(f.Data)
		script.WriteString(Command("put", f.Path, hex.EncodeToString(sum[:]), fmt.Sprintf("%o", f.Mode.Perm()), name, tempFor(f.Path)) + "\n")
	}
	if err := tw.Close(); err != nil {
		return "", nil, err
	}
	script.WriteString(after)
	return script.String(), &buf, nil
}
