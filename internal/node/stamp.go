package node

import (
	"context"
	"strings"

	"github.com/k3sctl/k3sctl/internal/k3s"
	"github.com/k3sctl/k3sctl/internal/ssh"
)

// BinaryStampPath records the sha256 of the k3s binary k3sctl put on the
// host with the binary's size, change times and inode then. While those
// are the same, facts take the sha256 from it instead of hashing the
// binary (70 MB) on every run. Uninstalling removes it with the rest of
// /var/lib/rancher/k3s.
const BinaryStampPath = "/var/lib/rancher/k3s/k3sctl-binary.stamp"

// statFormat is what stands for the binary's content: any write changes
// the status change time, and a new file has a new inode.
const statFormat = "%s %Y %Z %i"

// binaryHashScript prints "key<TAB>sha256" and "key.stat<TAB>size mode"
// for bin as the facts' h function does, from stamp when it still matches.
// It needs the facts script's p and h functions.
func binaryHashScript(key, bin, stamp string) string {
	return `b=` + Quote(bin) + `; st=` + Quote(stamp) + `
if [ -f "$b" ]; then
  now=$(stat -c '` + statFormat + `' -- "$b")
  rec=
  [ -f "$st" ] && IFS= read -r rec < "$st"
  if [ -n "$now" ] && [ -n "$rec" ] && [ "${rec% *}" = "$now" ]; then
    p ` + key + ` "${rec##* }"
    p ` + key + `.stat "$(stat -c '%s %a' -- "$b")"
  else
    h ` + key + ` "$b"
  fi
fi
`
}

// stampBinaryCommand records that bin now has sha256 sum (just checked by
// the upload) in stamp.
func stampBinaryCommand(bin, stamp, sum string) string {
	return `b=` + Quote(bin) + `; st=` + Quote(stamp) + `
mkdir -p -- "$(dirname -- "$st")" &&
now=$(stat -c '` + statFormat + `' -- "$b") &&
printf '%s %s\n' "$now" ` + Quote(sum) + ` > "$st.tmp" && mv -f -- "$st.tmp" "$st"`
}

// StampBinary records that the host's k3s binary has sha256 sum; call it
// right after an upload has checked that.
func StampBinary(ctx context.Context, c Conn, sum string) error {
	if len(sum) != 64 || strings.Trim(sum, "0123456789abcdef") != "" {
		return nil // not a sha256 this run checked: nothing to record
	}
	_, err := c.Run(ctx, stampBinaryCommand(k3s.BinaryPath, BinaryStampPath, sum), ssh.RunOptions{Sudo: true})
	return err
}
