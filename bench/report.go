package bench

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"time"
)

// clockTicks is USER_HZ, the unit of /proc/stat; it is 100 on every Linux
// architecture Go supports (`getconf CLK_TCK`).
const clockTicks = 100

// Sample is what one timed run cost.
type Sample struct {
	Wall       time.Duration
	LocalCPU   time.Duration // user+sys of the processes started here and their waited-for children
	MachineCPU time.Duration // busy time of all CPUs of the machine (containers included)
	TxBytes    int64         // bytes the workstation sent to the hosts' bridge; -1 when unknown
	// UplinkBytes is what went from the workstation to a site through its
	// uplink (the site cases); -1 when the run had no uplink.
	UplinkBytes int64
	// MaxRSS is the largest peak resident set, in bytes, of the processes
	// started (rusage maxrss).
	MaxRSS int64
	// Breakdown is where a k3sctl run with JSON events spent its time.
	Breakdown *Breakdown
}

// Fastest is the sample with the least wall time, so that the CPU and byte
// figures reported belong to the same run as its time.
func Fastest(s []Sample) (Sample, bool) {
	if len(s) == 0 {
		return Sample{}, false
	}
	best := s[0]
	for _, x := range s[1:] {
		if x.Wall < best.Wall {
			best = x
		}
	}
	return best, true
}

// BusyTicks reads the first ("cpu") line of /proc/stat and returns the time
// all CPUs spent on anything but idle and iowait, in clock ticks. Guest time
// is already part of user time and is not added again.
func BusyTicks(r io.Reader) (uint64, error) {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if f0 := f; len(f0) == 0 || f0[0] != "cpu" {
			continue
		}
		if len(f) < 9 {
			return 0, fmt.Errorf("/proc/stat: cpu line has %d fields, want at least 8", len(f)-1)
		}
		var busy uint64
		// user nice system idle iowait irq softirq steal [guest guest_nice]
		for i, v := range f[1:9] {
			if i == 3 || i == 4 {
				continue
			}
			n, err := strconv.ParseUint(v, 10, 64)
			if err != nil {
				return 0, fmt.Errorf("/proc/stat: field %d of the cpu line: %w", i+1, err)
			}
			busy += n
		}
		return busy, nil
	}
	return 0, fmt.Errorf("/proc/stat: no aggregate cpu line")
}

// TxBytes reads the bytes transmitted by one interface from /proc/net/dev.
// On a docker bridge these are the bytes the machine itself sent to the
// containers; traffic between containers is switched past it.
func TxBytes(r io.Reader, iface string) (int64, error) {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		name, rest, ok := strings.Cut(sc.Text(), ":")
		if !ok || strings.TrimSpace(name) != iface {
			continue
		}
		f := strings.Fields(rest)
		// receive: bytes packets errs drop fifo frame compressed multicast; transmit: bytes ...
		if len(f) < 9 {
			return 0, fmt.Errorf("/proc/net/dev: short line for %s", iface)
		}
		return strconv.ParseInt(f[8], 10, 64)
	}
	return 0, fmt.Errorf("/proc/net/dev: no interface %s", iface)
}

func readBusy() (uint64, error) {
	f, err := os.Open("/proc/stat")
	if err != nil {
		return 0, err
	}
	defer f.Close()
	return BusyTicks(f)
}

func readTx(iface string) int64 {
	if iface == "" {
		return -1
	}
	f, err := os.Open("/proc/net/dev")
	if err != nil {
		return -1
	}
	defer f.Close()
	n, err := TxBytes(f, iface)
	if err != nil {
		return -1
	}
	return n
}

// ParseSizes reads a comma-separated list of agent counts ("2,8,20").
func ParseSizes(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		f = strings.TrimPrefix(f, "1+")
		n, err := strconv.Atoi(f)
		if err != nil || n < 0 || n > 60 {
			return nil, fmt.Errorf("size %q: want a number of agents from 0 to 60 (e.g. 2,8,20 or 1+2,1+8)", f)
		}
		out = append(out, n)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no sizes in %q", s)
	}
	return out, nil
}

// PadFile appends pseudo-random bytes to a file until it is size bytes long,
// so that a small simulator costs as much to upload as a real K3s binary
// (random, so that no compression on the way makes it cheaper). Data after
// the end of an ELF file is not loaded, so the binary runs as before. It
// returns the sha256 of the whole padded file.
func PadFile(path string, size int64) (string, error) {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	have, err := io.Copy(h, f)
	if err != nil {
		return "", err
	}
	if pad := size - have; pad > 0 {
		src := rand.NewChaCha8([32]byte{'k', '3', 's', 'c', 't', 'l'})
		if _, err := io.CopyN(io.MultiWriter(f, h), src, pad); err != nil {
			return "", fmt.Errorf("pad %s: %w", path, err)
		}
	}
	if err := f.Close(); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// SetChecksum replaces the line of asset in a sha256sum file.
func SetChecksum(path, asset, sum string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	var out bytes.Buffer
	found := false
	for _, line := range strings.Split(strings.TrimRight(string(data), "\n"), "\n") {
		if f := strings.Fields(line); len(f) == 2 && f[1] == asset {
			line = sum + "  " + asset
			found = true
		}
		out.WriteString(line + "\n")
	}
	if !found {
		return fmt.Errorf("%s has no line for %s", path, asset)
	}
	return os.WriteFile(path, out.Bytes(), 0o644)
}

// Case is one row of the side-by-side table.
type Case struct {
	Name    string
	Samples map[int][]Sample // by number of agents
}

// Table holds everything one `make bench` run measured.
type Table struct {
	Title     string
	Notes     []string
	Sizes     []int // agents per cluster
	Floor     *Case // the row ratios are taken against
	Cases     []*Case
	NoChange  map[int][]Sample // k3sctl apply with nothing to do, by agents
	SSHRound  map[int][]Sample // one parallel `ssh host true` round, by agents
	BinaryLen int64
	// Site is the section "Site behind a slow uplink", nil when not run.
	Site *SiteTable
	// Many is the section "Memory at many hosts", nil when not run.
	Many *ManyTable
}

// SiteTable is a site's cases, all through one uplink: the first row is
// the floor the others are compared with.
type SiteTable struct {
	Hosts  string // "1 server + 2 agents"
	Uplink string // its rate and latency
	Rows   []*Row
}

// ManyTable is k3sctl against many hosts at once.
type ManyTable struct {
	Hosts int
	Setup string // how the hosts are made
	Rows  []*Row
	Notes []string
}

// Row is a case of a section with one column of figures: its samples, or
// why it could not run.
type Row struct {
	Name    string
	Samples []Sample
	NA      string // "n/a (…)": shown instead of figures
}

func secs(d time.Duration) string { return strconv.FormatFloat(d.Seconds(), 'f', 2, 64) }

func (t *Table) header(b *strings.Builder, first string) {
	b.WriteString("| " + first + " |")
	for _, n := range t.Sizes {
		fmt.Fprintf(b, " 1+%d |", n)
	}
	b.WriteString("\n| --- |")
	for range t.Sizes {
		b.WriteString(" --- |")
	}
	b.WriteString("\n")
}

// Markdown renders the tables: wall seconds with the ratio to the floor,
// CPU-seconds, and megabytes sent to the hosts.
func (t *Table) Markdown() string {
	var b strings.Builder
	fmt.Fprintf(&b, "# %s\n\n", t.Title)
	for _, n := range t.Notes {
		fmt.Fprintf(&b, "- %s\n", n)
	}
	if len(t.Cases) > 0 || len(t.NoChange) > 0 {
		t.sizesMarkdown(&b)
	}
	t.siteMarkdown(&b)
	t.manyMarkdown(&b)
	return b.String()
}

// sizesMarkdown renders the tables by cluster size.
func (t *Table) sizesMarkdown(b *strings.Builder) {
	floor := t.Floor
	if floor == nil {
		floor = &Case{}
	}
	b.WriteString("\n## Wall seconds until every node is Ready (× the floor)\n\n")
	t.header(b, "case")
	for _, c := range t.Cases {
		b.WriteString("| " + c.Name + " |")
		for _, n := range t.Sizes {
			s, ok := Fastest(c.Samples[n])
			f, fok := Fastest(floor.Samples[n])
			switch {
			case !ok:
				b.WriteString(" — |")
			case fok && f.Wall > 0:
				fmt.Fprintf(b, " %s (%.2f×) |", secs(s.Wall), s.Wall.Seconds()/f.Wall.Seconds())
			default:
				fmt.Fprintf(b, " %s |", secs(s.Wall))
			}
		}
		b.WriteString("\n")
	}
	b.WriteString("| no-change: k3sctl `apply -f` vs one parallel `ssh host true` round |")
	for _, n := range t.Sizes {
		a, aok := Fastest(t.NoChange[n])
		r, rok := Fastest(t.SSHRound[n])
		if !aok || !rok || r.Wall <= 0 {
			b.WriteString(" — |")
			continue
		}
		fmt.Fprintf(b, " %s vs %s (%.2f×) |", secs(a.Wall), secs(r.Wall), a.Wall.Seconds()/r.Wall.Seconds())
	}
	b.WriteString("\n\n## CPU-seconds: processes started here / whole machine (hosts' sshd and K3s included)\n\n")
	t.header(b, "case")
	cpu := func(name string, by map[int][]Sample) {
		b.WriteString("| " + name + " |")
		for _, n := range t.Sizes {
			s, ok := Fastest(by[n])
			if !ok {
				b.WriteString(" — |")
				continue
			}
			fmt.Fprintf(b, " %s / %s |", secs(s.LocalCPU), secs(s.MachineCPU))
		}
		b.WriteString("\n")
	}
	for _, c := range t.Cases {
		cpu(c.Name, c.Samples)
	}
	cpu("no-change: k3sctl `apply -f`", t.NoChange)
	cpu("one parallel `ssh host true` round", t.SSHRound)
	b.WriteString("\n## Megabytes sent from the workstation to the hosts (per cluster")
	if t.BinaryLen > 0 {
		fmt.Fprintf(b, "; the binary is %.1f MB", float64(t.BinaryLen)/1e6)
	}
	b.WriteString(")\n\n")
	t.header(b, "case")
	for _, c := range t.Cases {
		b.WriteString("| " + c.Name + " |")
		for _, n := range t.Sizes {
			s, ok := Fastest(c.Samples[n])
			if !ok || s.TxBytes < 0 {
				b.WriteString(" — |")
				continue
			}
			fmt.Fprintf(b, " %.1f |", float64(s.TxBytes)/1e6)
		}
		b.WriteString("\n")
	}
	t.breakdownMarkdown(b)
}

func mb(n int64) string { return strconv.FormatFloat(float64(n)/1e6, 'f', 1, 64) }

// siteMarkdown renders "Site behind a slow uplink": each case's wall
// seconds with the ratio to the floor through the same uplink, the
// megabytes that went up the uplink, and CPU.
func (t *Table) siteMarkdown(b *strings.Builder) {
	st := t.Site
	if st == nil || len(st.Rows) == 0 {
		return
	}
	fmt.Fprintf(b, "\n## Site behind a slow uplink (%s; %s)\n\n", st.Hosts, st.Uplink)
	b.WriteString("| case | wall seconds (× floor) | MB workstation → site | CPU-seconds here / machine |\n| --- | --- | --- | --- |\n")
	f, fok := Fastest(st.Rows[0].Samples)
	for _, r := range st.Rows {
		s, ok := Fastest(r.Samples)
		switch {
		case r.NA != "":
			fmt.Fprintf(b, "| %s | %s | — | — |\n", r.Name, r.NA)
			continue
		case !ok:
			fmt.Fprintf(b, "| %s | — | — | — |\n", r.Name)
			continue
		}
		wall := secs(s.Wall)
		if fok && f.Wall > 0 {
			wall = fmt.Sprintf("%s (%.2f×)", wall, s.Wall.Seconds()/f.Wall.Seconds())
		}
		up := "—"
		if s.UplinkBytes >= 0 {
			up = mb(s.UplinkBytes)
		}
		fmt.Fprintf(b, "| %s | %s | %s | %s / %s |\n", r.Name, wall, up, secs(s.LocalCPU), secs(s.MachineCPU))
	}
}

// manyMarkdown renders "Memory at many hosts": wall seconds and the peak
// resident set of k3sctl against many hosts at once.
func (t *Table) manyMarkdown(b *strings.Builder) {
	m := t.Many
	if m == nil || len(m.Rows) == 0 {
		return
	}
	fmt.Fprintf(b, "\n## Memory at many hosts (%d hosts: %s)\n\n", m.Hosts, m.Setup)
	for _, n := range m.Notes {
		fmt.Fprintf(b, "- %s\n", n)
	}
	if len(m.Notes) > 0 {
		b.WriteString("\n")
	}
	b.WriteString("| case | wall seconds | peak RSS MB | CPU-seconds here / machine |\n| --- | --- | --- | --- |\n")
	for _, r := range m.Rows {
		s, ok := Fastest(r.Samples)
		switch {
		case r.NA != "":
			fmt.Fprintf(b, "| %s | %s | — | — |\n", r.Name, r.NA)
		case !ok:
			fmt.Fprintf(b, "| %s | — | — | — |\n", r.Name)
		default:
			fmt.Fprintf(b, "| %s | %s | %s | %s / %s |\n", r.Name, secs(s.Wall), mb(s.MaxRSS), secs(s.LocalCPU), secs(s.MachineCPU))
		}
	}
}
