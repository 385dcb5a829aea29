package bench

import (
	"fmt"
	"slices"
	"strings"
)

// The cases of BenchmarkSideBySide, by the names BENCH_CASES takes.
const (
	CaseFloor       = "floor"        // floor.sh, every host at once: the yardstick
	CaseFloorSerial = "floor-serial" // floor.sh one host at a time (like k3sup)
	CaseApply       = "apply"        // k3sctl apply -f
	CaseNoChange    = "no-change"    // a no-change apply against one `ssh host true` round
	CaseBaseline    = "baseline"     // BENCH_BASELINE's apply -f
	CaseInstallJoin = "install-join" // k3sctl install + join, one host at a time
	CaseSiteFloor   = "site-floor"   // floor.sh through a site's uplink
	CaseSiteDirect  = "site-direct"  // k3sctl apply, upload: direct, through the uplink
	CaseSiteSite    = "site-site"    // k3sctl apply, upload: site, through the uplink
	CaseManyPlan    = "many-plan"    // k3sctl plan -f against many hosts
)

// SizeCases are the cases run for each of BENCH_SIZES, in order.
var SizeCases = []string{CaseFloor, CaseFloorSerial, CaseApply, CaseNoChange, CaseBaseline, CaseInstallJoin}

// SiteCases are the cases behind the uplink; the group name "site" picks
// them all.
var SiteCases = []string{CaseSiteFloor, CaseSiteDirect, CaseSiteSite}

// ManyCases are the cases at many hosts; the group name "many" picks them all.
var ManyCases = []string{CaseManyPlan}

// AllCases lists every case name.
func AllCases() []string {
	return slices.Concat(SizeCases, SiteCases, ManyCases)
}

// Cases is the set of cases a run does.
type Cases map[string]bool

// ParseCases reads BENCH_CASES: case names and the groups "sizes", "site"
// and "many", comma-separated; empty or "all" is every case.
func ParseCases(s string) (Cases, error) {
	c := Cases{}
	s = strings.TrimSpace(s)
	if s == "" || s == "all" {
		for _, n := range AllCases() {
			c[n] = true
		}
		return c, nil
	}
	groups := map[string][]string{"sizes": SizeCases, "site": SiteCases, "many": ManyCases}
	all := AllCases()
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		switch {
		case f == "":
		case groups[f] != nil:
			for _, n := range groups[f] {
				c[n] = true
			}
		case slices.Contains(all, f):
			c[f] = true
		default:
			return nil, fmt.Errorf("unknown case %q: the cases are %s, and the groups sizes, site and many", f, strings.Join(all, ", "))
		}
	}
	if len(c) == 0 {
		return nil, fmt.Errorf("no cases in %q", s)
	}
	return c, nil
}

// Any says whether any of names is in the set.
func (c Cases) Any(names ...string) bool {
	for _, n := range names {
		if c[n] {
			return true
		}
	}
	return false
}

// Without drops names from the set (a case switched off by its own
// setting, e.g. BENCH_SITE=0).
func (c Cases) Without(names ...string) {
	for _, n := range names {
		delete(c, n)
	}
}

// String lists the cases in the order they run.
func (c Cases) String() string {
	var names []string
	for _, n := range AllCases() {
		if c[n] {
			names = append(names, n)
		}
	}
	return strings.Join(names, ", ")
}
