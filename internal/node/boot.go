package node

import (
	"context"
	"fmt"
	"strings"

	"github.com/k3sctl/k3sctl/internal/k3s"
	"github.com/k3sctl/k3sctl/internal/ssh"
)

// BootCmdlineFiles are where Raspberry Pi firmware reads the kernel
// command line, newest layout first.
var BootCmdlineFiles = []string{"/boot/firmware/cmdline.txt", "/boot/cmdline.txt"}

// rebootMarker lives in /run, a tmpfs that a reboot empties: while it is
// there the host has not rebooted yet.
const rebootMarker = "/run/k3sctl-reboot-pending"

// fixBootScript adds the memory cgroup parameters to the first line of the
// boot command line file, keeping its other words and any further lines,
// and prints "changed <file>" when it wrote.
func fixBootScript(files ...string) string {
	var b strings.Builder
	b.WriteString("f=\nfor c in")
	for _, p := range files {
		b.WriteString(" " + ssh.Quote(p))
	}
	b.WriteString(`; do if [ -f "$c" ]; then f=$c; break; fi; done
if [ -z "$f" ]; then
  echo "no boot command line file (` + strings.Join(files, " or ") + `): add ` + k3s.MemoryCgroupBootArgs + ` to the kernel command line of this host's bootloader by hand" >&2
  exit 66
fi
l=$(head -n 1 -- "$f")
n=$l
for w in ` + k3s.MemoryCgroupBootArgs + `; do
  case " $n " in *" $w "*) ;; *) n="${n:+$n }$w" ;; esac
done
[ "$n" = "$l" ] && exit 0
{ printf '%s\n' "$n"; tail -n +2 -- "$f"; } > "$f.k3sctl-new" && mv -f -- "$f.k3sctl-new" "$f" || { rm -f -- "$f.k3sctl-new"; exit 1; }
sync
echo "changed $f"`)
	return b.String()
}

// FixBoot turns the memory cgroup on in the host's boot command line and
// returns the file it changed ("" when the words were there already).
func FixBoot(ctx context.Context, c Conn) (string, error) {
	res, err := c.Run(ctx, fixBootScript(BootCmdlineFiles...), ssh.RunOptions{Sudo: true})
	if err != nil {
		return "", err
	}
	changed, _ := strings.CutPrefix(strings.TrimSpace(string(res.Stdout)), "changed ")
	return changed, nil
}

// rebootCommand leaves the marker and reboots a moment later, in a session
// of its own, so that the command returns and the SSH session ends first.
const rebootCommand = `: > ` + rebootMarker + ` && setsid sh -c 'sleep 2; systemctl reboot || reboot' </dev/null >/dev/null 2>&1 &`

// Reboot asks the host to reboot; AwaitReboot tells when it is back.
func Reboot(ctx context.Context, c Conn) error {
	_, err := c.Run(ctx, rebootCommand, ssh.RunOptions{Sudo: true})
	return err
}

// Rebooted reports whether the host behind c has rebooted since Reboot:
// the marker in /run is gone.
func Rebooted(ctx context.Context, c Conn) (bool, error) {
	res, err := c.Run(ctx, "if [ -e "+rebootMarker+" ]; then echo pending; else echo rebooted; fi", ssh.RunOptions{})
	if err != nil {
		return false, err
	}
	switch s := strings.TrimSpace(string(res.Stdout)); s {
	case "rebooted":
		return true, nil
	case "pending":
		return false, nil
	default:
		return false, fmt.Errorf("reboot check answered %q", s)
	}
}

// memoryCgroupScript prints what the facts script reads to tell whether
// the memory cgroup is on.
const memoryCgroupScript = `p() { printf '%s=%s\n' "$1" "$2"; }
if [ -r /proc/cgroups ]; then
  while read -r n _ _ e; do [ "$n" = memory ] && p cgroupmem "$e"; done < /proc/cgroups
fi
if [ -r /sys/fs/cgroup/cgroup.controllers ]; then p cgroup2 "$(cat /sys/fs/cgroup/cgroup.controllers)"; fi
if [ -r /proc/cmdline ]; then p cmdline "$(cat /proc/cmdline)"; fi`

// MemoryCgroupOn reads again whether the memory cgroup is on, as the facts
// do: after a reboot the facts gathered before it are stale.
func MemoryCgroupOn(ctx context.Context, c Conn) (bool, error) {
	res, err := c.Run(ctx, memoryCgroupScript, ssh.RunOptions{})
	if err != nil {
		return false, err
	}
	kv := map[string]string{}
	for _, l := range strings.Split(string(res.Stdout), "\n") {
		if k, v, ok := strings.Cut(l, "="); ok {
			kv[k] = v
		}
	}
	return memoryCgroup(kv), nil
}
