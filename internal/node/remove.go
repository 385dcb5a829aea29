package node

import (
	"context"
	"strings"

	"github.com/k3sctl/k3sctl/internal/ssh"
)

// Recorded is a file k3sctl wrote earlier and the sha256 it wrote.
type Recorded struct {
	Path   string
	SHA256 string
}

const removeRecordedHead = `rm_if() {
  [ -f "$1" ] && [ ! -L "$1" ] || return 0
  if [ "$(sha256sum < "$1" | cut -c1-64)" = "$2" ]; then rm -f -- "$1" && echo "removed $1"
  else echo "kept $1"; fi
}
`

// RemoveRecorded removes, in one round trip, each file that still has the
// content k3sctl wrote; a file changed on the host since is someone
// else's now and is kept. Missing files are neither.
func RemoveRecorded(ctx context.Context, c Conn, files []Recorded) (removed, kept []string, err error) {
	if len(files) == 0 {
		return nil, nil, nil
	}
	var script strings.Builder
	script.WriteString(removeRecordedHead)
	for _, f := range files {
		script.WriteString(Command("rm_if", f.Path, f.SHA256) + "\n")
	}
	res, err := c.Run(ctx, script.String(), ssh.RunOptions{Sudo: true})
	if err != nil {
		return nil, nil, err
	}
	for _, l := range strings.Split(string(res.Stdout), "\n") {
		if p, ok := strings.CutPrefix(l, "removed "); ok {
			removed = append(removed, p)
		} else if p, ok := strings.CutPrefix(l, "kept "); ok {
			kept = append(kept, p)
		}
	}
	return removed, kept, nil
}
