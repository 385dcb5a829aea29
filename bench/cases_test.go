package bench

import (
	"strings"
	"testing"
	"time"
)

func TestParseCases(t *testing.T) {
	all, err := ParseCases("")
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != len(AllCases()) || !all[CaseFloor] || !all[CaseManyPlan] {
		t.Errorf("empty BENCH_CASES = %v, want every case", all)
	}
	got, err := ParseCases(" site , floor,many-plan")
	if err != nil {
		t.Fatal(err)
	}
	if want := "floor, site-floor, site-direct, site-site, many-plan"; got.String() != want {
		t.Errorf("ParseCases = %q, want %q", got, want)
	}
	if got.Any(CaseApply, CaseInstallJoin) || !got.Any(CaseApply, CaseSiteSite) {
		t.Errorf("Any on %v", got)
	}
	got.Without(SiteCases...)
	if got.String() != "floor, many-plan" {
		t.Errorf("Without the site cases: %q", got)
	}
	if _, err := ParseCases("floor,aply"); err == nil || !strings.Contains(err.Error(), `"aply"`) || !strings.Contains(err.Error(), "install-join") {
		t.Errorf("unknown case: err %v, want one naming it and listing the cases", err)
	}
	if _, err := ParseCases(" , "); err == nil {
		t.Error("no case names: want an error")
	}
}

func TestSiteInventory(t *testing.T) {
	inv := SiteInventory("/k", []string{"site-a", "site-b", "site-c"}, []string{"10.1.0.1", "10.1.0.2", "10.1.0.3"}, "site")
	for _, want := range []string{
		"keyFile: /k",
		"    upload: site\n    servers:\n      - {address: site-a, privateAddress: 10.1.0.1}\n    agents:\n      - {address: site-b, privateAddress: 10.1.0.2}\n      - {address: site-c, privateAddress: 10.1.0.3}\n",
	} {
		if !strings.Contains(inv, want) {
			t.Errorf("site inventory lacks %q:\n%s", want, inv)
		}
	}
	if inv := SiteInventory("/k", []string{"a"}, []string{"10.1.0.1"}, ""); strings.Contains(inv, "upload") || strings.Contains(inv, "agents") {
		t.Errorf("no upload key and one host: want neither upload: nor agents:\n%s", inv)
	}
}

func TestManyInventoryClustersOfThree(t *testing.T) {
	inv := ManyInventory("/k", []string{"h1", "h2", "h3", "h4", "h5"})
	for _, want := range []string{
		"  - name: site-000\n    servers:\n      - {address: h1, name: h1}\n    agents:\n      - {address: h2, name: h2}\n      - {address: h3, name: h3}\n",
		"  - name: site-001\n    servers:\n      - {address: h4, name: h4}\n    agents:\n      - {address: h5, name: h5}\n",
	} {
		if !strings.Contains(inv, want) {
			t.Errorf("inventory lacks %q:\n%s", want, inv)
		}
	}
	if n := strings.Count(inv, "address:"); n != 5 {
		t.Errorf("%d hosts in the inventory, want 5", n)
	}
}

func TestSSHConfigHostsAndUnknownKey(t *testing.T) {
	got := SSHConfigHosts([]Alias{{"site-n00", "127.0.0.1", 40001}, {"m00-2201", "172.28.1.11", 2201}})
	want := "Host site-n00\n  HostName 127.0.0.1\n  Port 40001\nHost m00-2201\n  HostName 172.28.1.11\n  Port 2201\n"
	if got != want {
		t.Errorf("SSHConfigHosts =\n%s\nwant\n%s", got, want)
	}
	out := `/tmp/site.yaml:5:5: unknown key "upload" in cluster (valid keys: name, labels)`
	if !UnknownKey(out, "upload") || UnknownKey(out, "airgap") || UnknownKey("apply failed", "upload") {
		t.Error("UnknownKey: wrong answer")
	}
}

func TestMarkdownSiteAndMany(t *testing.T) {
	tb := &Table{
		Title: "t",
		Site: &SiteTable{Hosts: "1 server + 2 agents", Uplink: "80 Mbit/s", Rows: []*Row{
			{Name: "floor", Samples: []Sample{{Wall: 20 * time.Second, UplinkBytes: 210e6, LocalCPU: time.Second, MachineCPU: 9 * time.Second}}},
			{Name: "direct", Samples: []Sample{{Wall: 30 * time.Second, UplinkBytes: 211e6}, {Wall: 25 * time.Second, UplinkBytes: 212e6}}},
			{Name: "site", NA: "n/a (upload: site not supported by this binary)"},
		}},
		Many: &ManyTable{Hosts: 300, Setup: "sshd", Notes: []string{"no apply"}, Rows: []*Row{
			{Name: "plan", Samples: []Sample{{Wall: 12 * time.Second, MaxRSS: 123_400_000}}},
		}},
	}
	md := tb.Markdown()
	for _, want := range []string{
		"## Site behind a slow uplink (1 server + 2 agents; 80 Mbit/s)",
		"| floor | 20.00 (1.00×) | 210.0 | 1.00 / 9.00 |",
		"| direct | 25.00 (1.25×) | 212.0 |",
		"| site | n/a (upload: site not supported by this binary) | — | — |",
		"## Memory at many hosts (300 hosts: sshd)",
		"- no apply",
		"| plan | 12.00 | 123.4 |",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("table lacks %q:\n%s", want, md)
		}
	}
	// Without cases by size the tables by size are left out.
	if strings.Contains(md, "until every node is Ready") {
		t.Errorf("tables by size without any case by size:\n%s", md)
	}
}
