package ssh

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"strings"
)

// WriteFile makes dst a root-owned file with data and mode, atomically
// (temporary file beside dst, then rename) and only when something differs.
// The data travels on stdin, never in the command line, and the file never
// exists with a wider mode than asked for. For small files: configs, units,
// tokens.
func (c *Client) WriteFile(ctx context.Context, dst string, data []byte, mode os.FileMode) (changed bool, err error) {
	if !path.IsAbs(dst) {
		return false, &Error{Host: c.host, Op: "write " + dst, Err: fmt.Errorf("destination must be an absolute path, not %q", dst)}
	}
	sum := sha256.Sum256(data)
	res, err := c.Run(ctx, writeFileScript(dst, hex.EncodeToString(sum[:]), mode.Perm()), RunOptions{Sudo: true, Stdin: bytes.NewReader(data)})
	if err != nil {
		return false, err
	}
	switch strings.TrimSpace(string(res.Stdout)) {
	case "unchanged":
		return false, nil
	case "changed":
		return true, nil
	}
	return false, &Error{Host: c.host, Op: "write " + dst, Err: fmt.Errorf("unexpected answer %q", res.Stdout)}
}

func writeFileScript(dst, sum string, mode os.FileMode) string {
	m := modeString(mode)
	return `d=` + Quote(dst) + `
mkdir -p -- "$(dirname -- "$d")" || exit
if [ -f "$d" ] && [ ! -L "$d" ] && [ "$(stat -c '%u:%g %a' -- "$d")" = "0:0 ` + fmt.Sprintf("%o", mode.Perm()) + `" ]; then
  s=$(sha256sum < "$d") || exit
  if [ "${s%% *}" = ` + Quote(sum) + ` ]; then cat >/dev/null; echo unchanged; exit 0; fi
fi
t=$(mktemp -- "$d.k3sctl-XXXXXX") || exit
cat > "$t" || { rm -f -- "$t"; exit 1; }
s=$(sha256sum < "$t")
if [ "${s%% *}" != ` + Quote(sum) + ` ]; then rm -f -- "$t"; echo "content arrived incomplete" >&2; exit 65; fi
chown 0:0 "$t" && chmod ` + m + ` "$t" && mv -f -- "$t" "$d" || { rm -f -- "$t"; exit 1; }
echo changed`
}

const notFoundExit = 66

// ReadFile reads a file on the host as root. A missing file is an error
// that matches fs.ErrNotExist.
func (c *Client) ReadFile(ctx context.Context, p string) ([]byte, error) {
	cmd := `f=` + Quote(p) + `; if [ ! -e "$f" ]; then echo "no such file: $f" >&2; exit ` + fmt.Sprint(notFoundExit) + `; fi; cat -- "$f"`
	res, err := c.Run(ctx, cmd, RunOptions{Sudo: true})
	var ee *ExitError
	if errors.As(err, &ee) && ee.ExitCode == notFoundExit {
		return nil, &Error{Host: c.host, Op: "read " + p, Err: fs.ErrNotExist}
	}
	if err != nil {
		return nil, err
	}
	return res.Stdout, nil
}
