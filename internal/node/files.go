package node

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
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
  d=$1 s=$2 m=$3 src="$t/$4"
  [ "$(sha256sum < "$src" | cut -c1-64)" = "$s" ] || { echo "$d: content arrived incomplete" >&2; exit 65; }
  if [ -f "$d" ] && [ ! -L "$d" ] && [ "$(stat -c '%u:%g %a' "$d")" = "0:0 $m" ] && [ "$(sha256sum < "$d" | cut -c1-64)" = "$s" ]; then
    return 0
  fi
  mkdir -p "$(dirname "$d")"
  cp "$src" "$d.k3sctl-new"
  chown 0:0 "$d.k3sctl-new"
  chmod "$m" "$d.k3sctl-new"
  mv -f "$d.k3sctl-new" "$d"
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
func WriteFiles(ctx context.Context, c Conn, files []File, after string) ([]string, error) {
	script, stdin, err := writeFilesScript(files, after)
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

func writeFilesScript(files []File, after string) (string, *bytes.Buffer, error) {
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
		script.WriteString(Command("put", f.Path, hex.EncodeToString(sum[:]), fmt.Sprintf("%o", f.Mode.Perm()), name) + "\n")
	}
	if err := tw.Close(); err != nil {
		return "", nil, err
	}
	script.WriteString(after)
	return script.String(), &buf, nil
}
