package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode"

	"github.com/k3sctl/k3sctl/internal/cli"
	"github.com/k3sctl/k3sctl/internal/inventory"
	"github.com/k3sctl/k3sctl/test/e2e/world"
	"github.com/k3sctl/k3sctl/test/mirror"
	"github.com/spf13/cobra"
)

// Every command line shown to users, in `k3sctl <command> --help` and in
// the docs, is run here against test hosts, so that none of them rots.
// TestExamplesCovered (no containers) says which examples no scenario runs;
// TestExamples runs the scenarios.

// repoRoot is the module root, seen from this package.
const repoRoot = "../.."

// example is one command line as users see it, without the "$ " prompt.
type example struct {
	line    string
	sources []string // "k3sctl install --help", "docs/quickstart.md:42"
}

// exampleSet is everything collected: the examples, and the files the
// docs show in full (a `<!-- file: NAME -->` line before the code block)
// that examples then use.
type exampleSet struct {
	examples map[string]*example
	files    map[string]string
}

func (s *exampleSet) add(line, source string) {
	e := s.examples[line]
	if e == nil {
		e = &example{line: line}
		s.examples[line] = e
	}
	e.sources = append(e.sources, source)
}

// k3sctlCall finds a k3sctl invocation in a shell line: at the start, after
// variable assignments, or after ; & | ( as in "(umask 077; k3sctl …)" or
// "source <(k3sctl …)". "bin/k3sctl" or ".../cmd/k3sctl@latest" are not.
var k3sctlCall = regexp.MustCompile(`(^|[;&|(]\s*|^([A-Za-z_][A-Za-z0-9_]*=\S*\s+)+)k3sctl(\s|$)`)

func collectExamples(t *testing.T) *exampleSet {
	t.Helper()
	s := &exampleSet{examples: map[string]*example{}, files: map[string]string{}}

	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		for _, line := range shellLines(strings.Split(c.Example, "\n"), true) {
			if k3sctlCall.MatchString(line.text) {
				s.add(line.text, c.CommandPath()+" --help")
			}
		}
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(cli.NewRoot(&cli.Factory{IO: &cli.IO{In: strings.NewReader(""), Out: &bytes.Buffer{}, Err: &bytes.Buffer{}}}))

	docs, err := filepath.Glob(filepath.Join(repoRoot, "docs", "*.md"))
	if err != nil {
		t.Fatal(err)
	}
	docs = append([]string{filepath.Join(repoRoot, "README.md")}, docs...)
	for _, path := range docs {
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		rel, _ := filepath.Rel(repoRoot, path)
		for _, b := range codeBlocks(string(data)) {
			if b.file != "" {
				if old, ok := s.files[b.file]; ok && old != b.body {
					t.Errorf("%s:%d: a different %s is shown elsewhere in the docs", rel, b.line, b.file)
				}
				s.files[b.file] = b.body
			}
			switch b.lang {
			case "sh", "bash", "shell", "console":
				// A console block shows output too; only prompted lines are commands.
				for _, line := range shellLines(strings.Split(b.body, "\n"), b.lang == "console") {
					if k3sctlCall.MatchString(line.text) {
						s.add(line.text, fmt.Sprintf("%s:%d", rel, b.line+1+line.index))
					}
				}
			}
		}
	}
	return s
}

type shellLine struct {
	text  string
	index int // of the first line, from 0
}

// shellLines returns the commands of a block: comments and empty lines
// dropped, "\" continuations joined, the "$ " prompt removed. With
// prompted, only lines with a prompt are commands (the rest is output).
func shellLines(lines []string, prompted bool) []shellLine {
	var out []shellLine
	for i := 0; i < len(lines); i++ {
		text := strings.TrimSpace(lines[i])
		start := i
		if prompted && !strings.HasPrefix(text, "$ ") {
			continue
		}
		text = strings.TrimSpace(strings.TrimPrefix(text, "$ "))
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		for strings.HasSuffix(text, `\`) && i+1 < len(lines) {
			i++
			text = strings.TrimSuffix(text, `\`) + " " + strings.TrimSpace(lines[i])
		}
		out = append(out, shellLine{text: text, index: start})
	}
	return out
}

type codeBlock struct {
	lang, body, file string
	line             int // of the opening fence, from 1
}

var fileMarker = regexp.MustCompile(`^<!--\s*file:\s*(\S+)\s*-->$`)

// codeBlocks returns the fenced blocks of a Markdown file.
func codeBlocks(doc string) []codeBlock {
	var (
		blocks []codeBlock
		cur    *codeBlock
		body   []string
		file   string
	)
	for i, raw := range strings.Split(doc, "\n") {
		line := strings.TrimSpace(raw)
		if cur != nil {
			if line == "```" {
				cur.body = strings.Join(body, "\n") + "\n"
				blocks = append(blocks, *cur)
				cur, body = nil, nil
				continue
			}
			body = append(body, raw)
			continue
		}
		if lang, ok := strings.CutPrefix(line, "```"); ok {
			f, _, _ := strings.Cut(lang, " ")
			cur = &codeBlock{lang: f, line: i + 1, file: file}
			file = ""
			continue
		}
		if m := fileMarker.FindStringSubmatch(line); m != nil {
			file = m[1]
		} else if line != "" {
			file = ""
		}
	}
	return blocks
}

// Example addresses and the test hosts they stand for. Several addresses
// may share a host when their scenario leaves it clean for the next.
var exampleHosts = map[string]string{
	// Quick start, upgrades, troubleshooting: a Raspberry Pi cluster.
	"192.168.1.50": "pi1",
	"192.168.1.51": "pi2",
	"192.168.1.52": "pi3",
	// HA.
	"10.0.0.10": "s1",
	"10.0.0.11": "s2",
	"10.0.0.12": "s3",
	"10.0.0.20": "w1",
	"10.0.0.5":  "w1", // reached through the bastion
	// Fleets, then (after reset) the air-gapped site on the same hosts.
	"10.1.0.10": "f1",
	"10.1.0.11": "f2",
	"10.2.0.10": "f3",
	"10.3.0.10": "f1",
	"10.3.0.11": "f2",
	"10.3.0.12": "f3",
}

// Host names in the examples, resolved through ~/.ssh/config as a user's
// own config would.
var exampleAliases = map[string]string{
	"pi-kitchen":          "pi1",
	"bastion.example.com": "bastion",
}

// exampleHostNames are the test hosts, in start order.
var exampleHostNames = []string{"pi1", "pi2", "pi3", "s1", "s2", "s3", "w1", "bastion", "f1", "f2", "f3"}

// Release servers in the examples; the test's mirror serves both.
const (
	exampleDownloadURL = "http://mirror.lan/k3s"
	exampleChannelURL  = "http://mirror.lan/k3s-channels"
)

// skippedExamples are examples no scenario runs, each with the reason.
var skippedExamples = map[string]string{
	"k3sctl apply -f fleet.yaml --cluster 'shop-*'":                                "run as written by TestFleetSubsetAndWaves (fleetops_test.go) on a fleet of shop-* and lab-* clusters",
	"k3sctl apply -f fleet.yaml --canary shop-01 --wave-size 2 --failure-budget 0": "run as written by TestFleetSubsetAndWaves (fleetops_test.go) on a fleet of shop-* and lab-* clusters",
	"k3sctl status -f fleet.yaml":                                                  "run as written by TestStatus (status_test.go) on a fleet of shop-* and lab-* clusters",
	"k3sctl status -f fleet.yaml -o json":                                          "run as written by TestStatus (status_test.go) on a fleet of shop-* and lab-* clusters",
	"k3sctl status -f fleet.yaml --cluster 'shop-*' --watch --interval 30s":        "run as written by TestStatus (status_test.go), interrupted after its first view",
	`k3sctl completion zsh > "${fpath[1]}/_k3sctl"`:                                "needs zsh: $fpath is a zsh array (in bash the script would land in /)",
	"k3sctl backup -f shop.yaml --keep 7":                                          "run with the test world's inventory by TestBackupRestoreSDCardReplaced (backup_test.go)",
	"k3sctl backup -f fleet.yaml --cluster factory --dir /srv/backups":             "run with the test world's inventory by TestBackupRestoreEtcdNewFirstServer (backup_test.go)",
	"k3sctl restore -f shop.yaml":                                                  "run with the test world's inventory by TestBackupRestoreSDCardReplaced (backup_test.go)",
	"k3sctl restore -f shop.yaml --dry-run":                                        "run with the test world's inventory by TestBackupRestoreSDCardReplaced (backup_test.go)",
	"k3sctl restore -f fleet.yaml --cluster factory --dir /srv/backups --force":    "run with the test world's inventory by TestBackupRestoreEtcdNewFirstServer (backup_test.go)",
}

// scene is one scenario's world: its user (HOME, kubeconfig, known_hosts),
// working directory, hosts and mirror.
type scene struct {
	t      *testing.T
	u      *user
	dir    string
	env    []string
	hosts  map[string]*world.Host
	m      *mirror.Mirror
	mirror string            // the mirror's directory of releases
	files  map[string]string // the files the docs show, by name
}

// step runs one example. code is the exit status it must end with.
type step struct {
	run  string
	code int
	// typed is what a person types on a terminal; the example then runs in
	// a pseudo-terminal with it as input.
	typed string
	setup func(s *scene)
	check func(s *scene, r result)
}

type scenario struct {
	name  string
	steps []step
}

// host returns the test host an example address stands for.
func (s *scene) host(exampleAddr string) *world.Host {
	name := exampleHosts[exampleAddr]
	if name == "" {
		name = exampleAliases[exampleAddr]
	}
	h := s.hosts[name]
	if h == nil {
		s.t.Fatalf("no test host for %s", exampleAddr)
	}
	return h
}

func (s *scene) file(name string) string {
	b, err := os.ReadFile(filepath.Join(s.dir, name))
	if err != nil {
		s.t.Fatal(err)
	}
	return string(b)
}

// clearCache empties the user's download cache.
func (s *scene) clearCache() {
	if err := os.RemoveAll(filepath.Join(s.u.home, ".cache", "k3sctl")); err != nil {
		s.t.Fatal(err)
	}
}

func (s *scene) writeFile(name, content string) {
	p := filepath.Join(s.dir, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		s.t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		s.t.Fatal(err)
	}
}

func contains(want ...string) func(s *scene, r result) {
	return func(s *scene, r result) {
		for _, w := range want {
			if !strings.Contains(r.stdout+r.stderr, w) {
				s.t.Errorf("output lacks %q", w)
			}
		}
	}
}

// nodeVersion is the K3s version kubectl reports for a host's node.
func (s *scene) nodeVersion(context, node string, want int) string {
	nodes := s.u.waitNodes(context, want)
	if n := nodes[node]; n != nil {
		return n[2]
	}
	s.t.Fatalf("no node %s in %s: %v", node, context, nodes)
	return ""
}

func exampleScenarios() []scenario {
	ip := func(s *scene, addr string) string { return s.host(addr).IP }
	return []scenario{
		{name: "local", steps: []step{
			{run: "k3sctl version", check: contains("k3sctl ", "commit: ")},
			{run: "k3sctl version --output json", check: func(s *scene, r result) {
				var v map[string]string
				if err := json.Unmarshal([]byte(r.stdout), &v); err != nil || v["version"] == "" {
					s.t.Errorf("version --output json: %v: %q", err, r.stdout)
				}
			}},
			{run: "k3sctl init", check: func(s *scene, r result) { s.file("inventory.yaml") }},
			{run: "k3sctl init clusters/edge.yaml", check: func(s *scene, r result) { s.file("clusters/edge.yaml") }},
			{run: "k3sctl init -", check: contains("kind: Inventory")},
			{run: "k3sctl init inventory.yaml --force"},
			{run: "source <(k3sctl completion bash)"},
			{run: "mkdir -p ~/.local/share/bash-completion/completions && k3sctl completion bash > ~/.local/share/bash-completion/completions/k3sctl", check: func(s *scene, r result) {
				b, err := os.ReadFile(filepath.Join(s.u.home, ".local/share/bash-completion/completions/k3sctl"))
				if err != nil || !bytes.Contains(b, []byte("__start_k3sctl")) {
					s.t.Errorf("bash completion not written: %v", err)
				}
			}},
			{
				run: "k3sctl completion fish > ~/.config/fish/completions/k3sctl.fish",
				// fish makes this directory when it is installed.
				setup: func(s *scene) { _ = os.MkdirAll(filepath.Join(s.u.home, ".config/fish/completions"), 0o755) },
			},
			{run: "k3sctl gen-docs --dir docs/cli --man docs/man", check: func(s *scene, r result) {
				s.file("docs/cli/k3sctl_install.md")
				s.file("docs/man/k3sctl-install.1")
			}},
		}},

		{name: "pi", steps: []step{
			{run: "k3sctl facts --ip 192.168.1.50 --user pi", check: contains("Hostname", "pi1", "not installed")},
			{run: "k3sctl facts --ip 192.168.1.52 --user pi", check: contains("pi3")},
			{run: "k3sctl install --ip 192.168.1.50 --user pi", check: func(s *scene, r result) {
				if v := s.nodeVersion(ip(s, "192.168.1.50"), "pi1", 1); v != v1 {
					s.t.Errorf("stable installed %s, want %s", v, v1)
				}
			}},
			{run: "k3sctl install --ip 192.168.1.50 --user pi", check: contains("No changes")},
			{run: "k3sctl join --ip 192.168.1.51 --server-ip 192.168.1.50 --user pi", check: func(s *scene, r result) {
				s.u.waitNodes(ip(s, "192.168.1.50"), 2)
			}},
			{run: "(umask 077; k3sctl node-token --ip 192.168.1.50 > token)", check: func(s *scene, r result) {
				fi, err := os.Stat(filepath.Join(s.dir, "token"))
				if err != nil || fi.Mode().Perm() != 0o600 || !strings.HasPrefix(s.file("token"), "K10") {
					s.t.Errorf("token file: %v %v", err, fi)
				}
			}},
			{run: "k3sctl kubeconfig --ip 192.168.1.50 --kubeconfig ./pi.yaml --no-switch-context", check: contains("pi.yaml")},
			{run: "k3sctl install --ip 192.168.1.50 --user pi --tls-san pi.home.lan", check: func(s *scene, r result) {
				if cfg := s.host("192.168.1.50").Exec(s.t, "cat /etc/rancher/k3s/config.yaml"); !strings.Contains(cfg, "pi.home.lan") {
					s.t.Errorf("tls-san not in config.yaml:\n%s", cfg)
				}
			}},
			{run: "k3sctl join --ip 192.168.1.52 --server-ip 192.168.1.50 --user pi --k3s-extra-args '--with-node-id'", check: func(s *scene, r result) {
				nodes := s.u.waitNodes(ip(s, "192.168.1.50"), 3)
				for name := range nodes {
					if strings.HasPrefix(name, "pi3-") {
						return
					}
				}
				s.t.Errorf("no node named pi3-<id>: %v", nodes)
			}},
			{run: "k3sctl install --ip 192.168.1.50 --user pi --k3s-version v1.31.5+k3s1 --dry-run", check: contains("upgrade " + v1 + " → " + v2)},
			{run: "k3sctl install --ip 192.168.1.50 --user pi --k3s-version v1.31.5+k3s1", check: func(s *scene, r result) {
				if v := s.nodeVersion(ip(s, "192.168.1.50"), "pi1", 3); v != v2 {
					s.t.Errorf("pi1 runs %s after the upgrade", v)
				}
				// As docs/troubleshooting.md says: flags not given again are taken out.
				if cfg := s.host("192.168.1.50").Exec(s.t, "cat /etc/rancher/k3s/config.yaml"); strings.Contains(cfg, "pi.home.lan") {
					s.t.Errorf("tls-san kept though not given:\n%s", cfg)
				}
			}},
			// The same join again follows the server to its new version.
			{run: "k3sctl join --ip 192.168.1.51 --server-ip 192.168.1.50 --user pi", check: func(s *scene, r result) {
				if v := s.nodeVersion(ip(s, "192.168.1.50"), "pi2", 3); v != v2 {
					s.t.Errorf("pi2 runs %s after joining again", v)
				}
			}},
			{run: "k3sctl uninstall --ip 192.168.1.51 --user pi", check: func(s *scene, r result) {
				if out, _ := s.host("192.168.1.51").ExecErr(context.Background(), "test -e /usr/local/bin/k3s && echo present"); strings.Contains(out, "present") {
					s.t.Errorf("k3s still on pi2 after uninstall")
				}
			}},
			{run: "k3sctl facts --host pi-kitchen", check: contains("pi1", "installed, running")},
		}},

		{name: "ha", steps: []step{
			{run: "k3sctl install --ip 10.0.0.10 --k3s-version v1.31.4+k3s1 --k3s-extra-args '--disable traefik' --dry-run", check: contains("install")},
			{run: "k3sctl install --ip 10.0.0.10 --user ubuntu --cluster --tls-san k3s.example.lan", check: func(s *scene, r result) {
				if cfg := s.host("10.0.0.10").Exec(s.t, "cat /etc/rancher/k3s/config.yaml"); !strings.Contains(cfg, "cluster-init: true") || !strings.Contains(cfg, "k3s.example.lan") {
					s.t.Errorf("config.yaml of the first server:\n%s", cfg)
				}
			}},
			{run: "k3sctl install --ip 10.0.0.10 --cluster --tls-san k3s.example.lan", check: contains("No changes")},
			{run: "k3sctl join --ip 10.0.0.11 --server-ip 10.0.0.10 --server"},
			{run: "k3sctl join --ip 10.0.0.12 --server-ip 10.0.0.10 --server"},
			{run: "k3sctl join --ip 10.0.0.11 --server-ip 10.0.0.10 --server --tls-san k3s.example.lan"},
			{run: "k3sctl join --ip 10.0.0.12 --server-ip 10.0.0.10 --server --tls-san k3s.example.lan", check: func(s *scene, r result) {
				nodes := s.u.waitNodes(ip(s, "10.0.0.10"), 3)
				for name, n := range nodes {
					if !strings.Contains(n[1], "control-plane") || !strings.Contains(n[1], "etcd") {
						s.t.Errorf("server %s has roles %s", name, n[1])
					}
				}
			}},
			{run: "(umask 077; k3sctl node-token --ip 10.0.0.10 > token)"},
			{run: "k3sctl join --ip 10.0.0.20 --server-ip 10.0.0.10 --token-file token", check: func(s *scene, r result) {
				s.u.waitNodes(ip(s, "10.0.0.10"), 4)
			}},
			{run: "k3sctl join --ip 10.0.0.20 --server-ip 10.0.0.10", check: contains("No changes")},
			{run: "k3sctl kubeconfig --ip 10.0.0.11 --context edge", check: func(s *scene, r result) {
				s.u.waitNodes("edge", 4)
			}},
			{run: "k3sctl facts --ip 10.0.0.5 --ssh-jump ops@bastion.example.com:2222 --output json", check: func(s *scene, r result) {
				var f struct{ Hostname string }
				if err := json.Unmarshal([]byte(r.stdout), &f); err != nil || f.Hostname != "w1" {
					s.t.Errorf("facts through the bastion: %v, hostname %q", err, f.Hostname)
				}
			}},
		}},

		{name: "fleet", steps: []step{
			{run: "k3sctl init fleet.yaml"},
			{
				run:   "k3sctl plan -f fleet.yaml",
				setup: func(s *scene) { s.writeFile("fleet.yaml", s.mapped(s.files["fleet.yaml"])) },
				check: contains("install"),
			},
			{run: "k3sctl apply -f fleet.yaml", check: func(s *scene, r result) {
				s.u.waitNodes("shop-berlin", 2)
				s.u.waitNodes("shop-hamburg", 1)
			}},
			{run: "k3sctl kubeconfig -f fleet.yaml", check: func(s *scene, r result) {
				s.u.waitNodes("shop-berlin", 2)
				s.u.waitNodes("shop-hamburg", 1)
			}},
			{run: "k3sctl apply -f fleet.yaml --plain", check: contains("No changes")},
			{run: "k3sctl apply -f fleet.yaml -o json > events.jsonl", check: func(s *scene, r result) {
				if !strings.Contains(s.file("events.jsonl"), `"type":"summary"`) {
					s.t.Errorf("events.jsonl has no summary:\n%s", s.file("events.jsonl"))
				}
			}},
			{run: "k3sctl plan -f fleet.yaml -o json", check: func(s *scene, r result) {
				if !json.Valid([]byte(r.stdout)) {
					s.t.Errorf("plan -o json is not JSON:\n%s", r.stdout)
				}
			}},
			{run: "k3sctl plan -f fleet.yaml --detailed-exitcode", code: 0},
			{
				run:  "k3sctl plan -f fleet.yaml --detailed-exitcode",
				code: cli.ExitChangesPending,
				// Upgrades: "change version in the file, then".
				setup: func(s *scene) {
					s.writeFile("fleet.yaml", strings.Replace(s.file("fleet.yaml"), "version: "+v1, "version: "+v2, 1))
				},
				check: contains("upgrade " + v1 + " → " + v2),
			},
			{run: "k3sctl apply -f fleet.yaml --max-unavailable 2", check: func(s *scene, r result) {
				for _, n := range []string{"f1", "f2"} {
					if v := s.nodeVersion("shop-berlin", n, 2); v != v2 {
						s.t.Errorf("%s runs %s after the upgrade", n, v)
					}
				}
			}},
			{run: `k3sctl apply -f fleet.yaml --output json | jq -c 'select(.type == "host_failed")'`, check: func(s *scene, r result) {
				if strings.TrimSpace(r.stdout) != "" {
					s.t.Errorf("hosts failed:\n%s", r.stdout)
				}
			}},
			{run: "k3sctl reset -f fleet.yaml", typed: "yes\n", check: contains("Type yes", "K3s removed")},
			{run: "k3sctl reset -f fleet.yaml --yes", check: contains("K3s was not installed")},
			// The air-gapped site, on the same hosts.
			{
				run: "k3sctl install --ip 10.3.0.10 --k3s-binary ./k3s --k3s-version v1.31.4+k3s1 --airgap-images ./k3s-airgap-images-amd64.tar.zst",
				// What the user carried to the site.
				setup: func(s *scene) {
					for _, f := range []string{"k3s", "k3s-airgap-images-amd64.tar.zst"} {
						b, err := os.ReadFile(filepath.Join(s.mirror, v1, f))
						if err != nil {
							s.t.Fatal(err)
						}
						if err := os.WriteFile(filepath.Join(s.dir, f), b, 0o755); err != nil {
							s.t.Fatal(err)
						}
					}
					// A workstation at the site has downloaded nothing.
					s.clearCache()
					s.m.ResetRequests()
				},
				check: func(s *scene, r result) {
					if n := s.m.Total(); n != 0 {
						s.t.Errorf("the air-gapped install asked the mirror %d times: %v", n, s.m.AllRequests())
					}
					if out := s.host("10.3.0.10").Exec(s.t, "ls /var/lib/rancher/k3s/agent/images/"); !strings.Contains(out, "k3s-airgap-images-amd64.tar.zst") {
						s.t.Errorf("images not in agent/images: %s", out)
					}
				},
			},
			{run: "k3sctl join --ip 10.3.0.11 --server-ip 10.3.0.10 --download-url http://mirror.lan/k3s", check: func(s *scene, r result) {
				if s.m.Requests("/download/"+v1+"/k3s") == 0 {
					s.t.Errorf("join did not download from the mirror: %v", s.m.AllRequests())
				}
			}},
			// K3SCTL_DOWNLOAD_URL and K3SCTL_CHANNEL_URL are set for every
			// example, as the doc's export lines set them.
			{
				run: "k3sctl join --ip 10.3.0.12 --server-ip 10.3.0.10",
				setup: func(s *scene) {
					s.clearCache()
					s.m.ResetRequests()
				},
				check: func(s *scene, r result) {
					if s.m.Requests("/download/"+v1+"/k3s") == 0 {
						s.t.Errorf("join did not download from $K3SCTL_DOWNLOAD_URL: %v", s.m.AllRequests())
					}
					s.u.waitNodes(ip(s, "10.3.0.10"), 3)
				},
			},
		}},
	}
}

// checkCoverage reports examples no scenario runs and table entries that
// match no example.
func checkCoverage(t *testing.T, set *exampleSet) {
	t.Helper()
	run := map[string]bool{}
	for _, sc := range exampleScenarios() {
		for _, st := range sc.steps {
			run[st.run] = true
			if set.examples[st.run] == nil {
				t.Errorf("scenario %s runs %q, which no help text or doc shows (changed? then update the scenario)", sc.name, st.run)
			}
		}
	}
	for line, why := range skippedExamples {
		if set.examples[line] == nil {
			t.Errorf("skipped example %q is shown nowhere any more: remove it from skippedExamples", line)
		}
		if run[line] {
			t.Errorf("example %q is both run and skipped (%s)", line, why)
		}
	}
	addr := regexp.MustCompile(`\b\d{1,3}(\.\d{1,3}){3}\b`)
	url := regexp.MustCompile(`https?://[^\s"']+`)
	for _, line := range sortedExamples(set) {
		e := set.examples[line]
		if !run[line] && skippedExamples[line] == "" {
			t.Errorf("example %q (%s) is neither run by a scenario nor skipped with a reason", line, strings.Join(e.sources, ", "))
		}
		for _, a := range addr.FindAllString(line, -1) {
			if exampleHosts[a] == "" {
				t.Errorf("example %q (%s): address %s stands for no test host; add it to exampleHosts", line, e.sources[0], a)
			}
		}
		for _, u := range url.FindAllString(line, -1) {
			if u != exampleDownloadURL && u != exampleChannelURL {
				t.Errorf("example %q (%s): URL %s is not one the test mirror serves", line, e.sources[0], u)
			}
		}
	}
}

func sortedExamples(set *exampleSet) []string {
	var lines []string
	for l := range set.examples {
		lines = append(lines, l)
	}
	sort.Strings(lines)
	return lines
}

func TestExamplesCovered(t *testing.T) {
	t.Parallel()
	set := collectExamples(t)
	if len(set.examples) < 20 {
		t.Fatalf("found only %d examples; is the extraction broken?", len(set.examples))
	}
	checkCoverage(t, set)
	for _, line := range sortedExamples(set) {
		t.Logf("%-100s %s", line, strings.Join(set.examples[line].sources, ", "))
	}
}

// TestDocInventoriesLoad loads every complete inventory the guides show.
// docs/inventory.md has its own test in internal/inventory.
func TestDocInventoriesLoad(t *testing.T) {
	// The variables the guides' inventories take from the environment.
	t.Setenv("K3S_DB_PASSWORD", "pw")
	docs, _ := filepath.Glob(filepath.Join(repoRoot, "docs", "*.md"))
	n := 0
	for _, path := range docs {
		if filepath.Base(path) == "inventory.md" {
			continue
		}
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		for _, b := range codeBlocks(string(data)) {
			if b.lang != "yaml" || !strings.Contains(b.body, "kind: Inventory") {
				continue
			}
			n++
			p := filepath.Join(t.TempDir(), "inventory.yaml")
			if err := os.WriteFile(p, []byte(b.body), 0o644); err != nil {
				t.Fatal(err)
			}
			if _, err := inventory.Load(p); err != nil {
				t.Errorf("%s:%d: the inventory shown does not load:\n%v", filepath.Base(path), b.line, err)
			}
		}
	}
	if n == 0 {
		t.Error("no inventory found in the guides")
	}
}

// TestDocLinks checks that links between the docs lead somewhere: the file
// exists and, with a #fragment, has a heading of that name.
func TestDocLinks(t *testing.T) {
	t.Parallel()
	docs, _ := filepath.Glob(filepath.Join(repoRoot, "docs", "*.md"))
	docs = append(docs, filepath.Join(repoRoot, "README.md"))
	link := regexp.MustCompile(`\]\(([^)\s]+)\)`)
	for _, path := range docs {
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		rel, _ := filepath.Rel(repoRoot, path)
		text := stripCode(string(data))
		for _, m := range link.FindAllStringSubmatch(text, -1) {
			target := m[1]
			if strings.Contains(target, "://") || strings.HasPrefix(target, "mailto:") {
				continue
			}
			file, frag, _ := strings.Cut(target, "#")
			dest := path
			if file != "" {
				dest = filepath.Join(filepath.Dir(path), file)
			}
			if _, err := os.Stat(dest); err != nil {
				t.Errorf("%s: link %s: %v", rel, target, err)
				continue
			}
			if frag == "" || !strings.HasSuffix(dest, ".md") {
				continue
			}
			b, err := os.ReadFile(dest)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Contains(headingSlugs(string(b)), frag) {
				t.Errorf("%s: link %s: no heading #%s in %s", rel, target, frag, filepath.Base(dest))
			}
		}
	}
}

// stripCode removes fenced blocks, where "](" is code, not a link.
func stripCode(doc string) string {
	var b strings.Builder
	in := false
	for _, line := range strings.Split(doc, "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), "```") {
			in = !in
			continue
		}
		if !in {
			b.WriteString(line + "\n")
		}
	}
	return b.String()
}

// headingSlugs are the anchors GitHub gives a file's headings: lower case,
// punctuation dropped, spaces as hyphens, repeats numbered.
func headingSlugs(doc string) []string {
	var slugs []string
	seen := map[string]int{}
	for _, line := range strings.Split(stripCode(doc), "\n") {
		if !strings.HasPrefix(line, "#") {
			continue
		}
		title := strings.TrimSpace(strings.TrimLeft(line, "#"))
		var b strings.Builder
		for _, r := range strings.ToLower(title) {
			switch {
			case unicode.IsLetter(r) || unicode.IsDigit(r) || r == '-' || r == '_':
				b.WriteRune(r)
			case r == ' ':
				b.WriteRune('-')
			}
		}
		s := b.String()
		if n := seen[s]; n > 0 {
			slugs = append(slugs, fmt.Sprintf("%s-%d", s, n))
		} else {
			slugs = append(slugs, s)
		}
		seen[s]++
	}
	return slugs
}

// mapped rewrites example addresses, names and URLs into test ones.
func (s *scene) mapped(text string) string {
	var keys []string
	for a := range exampleHosts {
		keys = append(keys, a)
	}
	// Longest first, so 10.0.0.10 is not read as 10.0.0.1 followed by 0.
	sort.Slice(keys, func(i, j int) bool { return len(keys[i]) > len(keys[j]) })
	for _, a := range keys {
		text = replaceAddress(text, a, s.host(a).IP)
	}
	text = strings.ReplaceAll(text, exampleChannelURL, s.m.ChannelURL)
	text = strings.ReplaceAll(text, exampleDownloadURL, s.m.DownloadURL)
	return text
}

// replaceAddress replaces an IPv4 address where it stands alone, not as
// part of a longer one.
func replaceAddress(text, from, to string) string {
	var b strings.Builder
	for {
		i := strings.Index(text, from)
		if i < 0 {
			b.WriteString(text)
			return b.String()
		}
		end := i + len(from)
		digit := func(c byte) bool { return c >= '0' && c <= '9' }
		inside := (i > 0 && (digit(text[i-1]) || text[i-1] == '.')) ||
			(end < len(text) && (digit(text[end]) || (text[end] == '.' && end+1 < len(text) && digit(text[end+1]))))
		b.WriteString(text[:i])
		if inside {
			b.WriteString(from)
		} else {
			b.WriteString(to)
		}
		text = text[end:]
	}
}

// runExample runs one example line as a user would type it, in bash, with
// the scene's HOME and working directory.
func (s *scene) runExample(st step) result {
	s.t.Helper()
	line := s.mapped(st.run)
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	var cmd *exec.Cmd
	if st.typed != "" {
		// script(1) gives the example a terminal and types the input.
		cmd = exec.CommandContext(ctx, "script", "-qec", "set -o pipefail; "+line, "/dev/null")
		cmd.Stdin = strings.NewReader(st.typed)
	} else {
		cmd = exec.CommandContext(ctx, "bash", "-o", "pipefail", "-c", line)
	}
	cmd.Dir = s.dir
	cmd.Env = s.env
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	start := time.Now()
	err := cmd.Run()
	r := result{stdout: out.String(), stderr: errb.String()}
	if err != nil {
		ee, ok := err.(*exec.ExitError)
		if !ok {
			s.t.Fatalf("run %s: %v", line, err)
		}
		r.code = ee.ExitCode()
	}
	s.t.Logf("$ %s  (%s)\n%s", line, time.Since(start).Round(100*time.Millisecond), r)
	return r
}

func TestExamples(t *testing.T) {
	t.Parallel()
	set := collectExamples(t)
	checkCoverage(t, set)
	if t.Failed() {
		t.FailNow()
	}
	for _, tool := range []string{"script", "jq", "kubectl"} {
		if _, err := exec.LookPath(tool); err != nil {
			if os.Getenv("CI") != "" {
				t.Fatalf("%s is not installed; the examples need it (scripts/testworld-deps.sh installs it)", tool)
			}
			t.Skipf("%s is not installed; the examples need it (scripts/testworld-deps.sh installs it)", tool)
		}
	}

	start := time.Now()
	w := world.New(t)
	releases := t.TempDir()
	mirror.Build(t, releases, []string{v1, v2}, []string{"amd64"})
	hs := w.Start(t, exampleHostNames...)
	hosts := map[string]*world.Host{}
	for _, h := range hs {
		hosts[h.Name] = h
	}
	prepareExampleHosts(t, hosts)
	bin := filepath.Dir(k3sctlBinary(t))
	t.Logf("world with %d hosts ready in %s", len(hs), time.Since(start).Round(time.Second))

	var sshConfig strings.Builder
	names := make([]string, 0, len(exampleAliases))
	for alias := range exampleAliases {
		names = append(names, alias)
	}
	sort.Strings(names)
	for _, alias := range names {
		fmt.Fprintf(&sshConfig, "Host %s\n  HostName %s\n\n", alias, hosts[exampleAliases[alias]].IP)
	}
	// As on a user's machine: the login name and key for every host come
	// from here, so examples need no --ssh-key.
	fmt.Fprintf(&sshConfig, "Host *\n  User pi\n  IdentityFile %s\n", w.Key)

	var mu sync.Mutex
	durations := map[string]time.Duration{}
	t.Run("scenarios", func(t *testing.T) {
		for _, sc := range exampleScenarios() {
			t.Run(sc.name, func(t *testing.T) {
				t.Parallel()
				began := time.Now()
				u := newUser(t)
				if err := os.MkdirAll(filepath.Join(u.home, ".ssh"), 0o700); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(filepath.Join(u.home, ".ssh", "config"), []byte(sshConfig.String()), 0o600); err != nil {
					t.Fatal(err)
				}
				// A mirror per scenario, so that its request counts are the scenario's own.
				// stable is the older release, so that the upgrade examples upgrade.
				m := mirror.Start(t, releases, mirror.WithChannel("stable", v1), mirror.WithChannel("latest", v2))
				s := &scene{t: t, u: u, dir: t.TempDir(), hosts: hosts, m: m, mirror: releases, files: set.files}
				s.env = append(append([]string{}, u.env...),
					"PATH="+bin+string(os.PathListSeparator)+os.Getenv("PATH"),
					"SHELL=/bin/bash",
					"K3SCTL_DOWNLOAD_URL="+m.DownloadURL,
					"K3SCTL_CHANNEL_URL="+m.ChannelURL,
				)
				for _, st := range sc.steps {
					if st.setup != nil {
						st.setup(s)
					}
					r := s.runExample(st)
					if r.code != st.code {
						t.Fatalf("example %q (%s) exited %d, want %d", st.run, strings.Join(set.examples[st.run].sources, ", "), r.code, st.code)
					}
					if st.check != nil {
						st.check(s, r)
					}
					if t.Failed() {
						t.FailNow()
					}
				}
				mu.Lock()
				durations[sc.name] = time.Since(began)
				mu.Unlock()
			})
		}
	})
	t.Logf("examples: %d run in %s (scenarios: %v)", len(set.examples)-len(skippedExamples), time.Since(start).Round(time.Second), durations)
}

// prepareExampleHosts makes the hosts what the examples assume: an ubuntu
// login on the first HA server, and a bastion whose sshd also listens on
// port 2222.
func prepareExampleHosts(t *testing.T, hosts map[string]*world.Host) {
	t.Helper()
	hosts["s1"].Exec(t, `useradd -m -s /bin/bash ubuntu &&
install -d -m 700 -o ubuntu -g ubuntu /home/ubuntu/.ssh &&
install -m 600 -o ubuntu -g ubuntu /home/pi/.ssh/authorized_keys /home/ubuntu/.ssh/authorized_keys &&
echo 'ubuntu ALL=(ALL) NOPASSWD:ALL' > /etc/sudoers.d/ubuntu && chmod 440 /etc/sudoers.d/ubuntu`)
	b := hosts["bastion"]
	b.Exec(t, `printf 'Port 22\nPort 2222\n' > /etc/ssh/sshd_config.d/ports.conf && systemctl restart ssh`)
	deadline := time.Now().Add(30 * time.Second)
	for {
		out, _ := b.ExecErr(context.Background(), "ss -Hltn 'sport = :2222'")
		if strings.Contains(out, "2222") {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("bastion: sshd not listening on 2222: %s", out)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
