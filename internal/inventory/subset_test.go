package inventory

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

const subsetFleet = header + `clusters:
  - name: shop-berlin
    labels: {region: north, tier: canary}
    servers: [10.0.0.1]
  - name: shop-hamburg
    labels: {region: north}
    servers: [10.0.0.2]
  - name: shop-munich
    labels: {region: south}
    servers: [10.0.0.3]
  - name: lab
    servers: [10.0.0.4]
`

func TestClusterLabelsLoad(t *testing.T) {
	inv := parseOK(t, subsetFleet, nil)
	if got := inv.Clusters[0].Labels; !reflect.DeepEqual(got, map[string]string{"region": "north", "tier": "canary"}) {
		t.Errorf("labels of shop-berlin = %v", got)
	}
	if inv.Clusters[3].Labels != nil {
		t.Errorf("lab has labels %v", inv.Clusters[3].Labels)
	}
	_, err := Parse("test.yaml", []byte(header+"clusters:\n  - name: a\n    labels: {'bad key!': x}\n    servers: [10.0.0.1]\n"), nil)
	if err == nil || !strings.Contains(err.Error(), `label key "bad key!"`) {
		t.Errorf("bad cluster label key: %v", err)
	}
}

func TestSelect(t *testing.T) {
	inv := parseOK(t, subsetFleet, nil)
	sel := func(s string) Selector {
		t.Helper()
		out, err := ParseSelector(s)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	for _, tc := range []struct {
		name string
		sub  Subset
		want []string
	}{
		{"everything", Subset{}, []string{"shop-berlin", "shop-hamburg", "shop-munich", "lab"}},
		{"glob", Subset{Clusters: []string{"shop-*"}}, []string{"shop-berlin", "shop-hamburg", "shop-munich"}},
		{"two patterns", Subset{Clusters: []string{"lab", "shop-m?nich"}}, []string{"shop-munich", "lab"}},
		{"equals", Subset{Selector: sel("region=north")}, []string{"shop-berlin", "shop-hamburg"}},
		{"double equals", Subset{Selector: sel("region==south")}, []string{"shop-munich"}},
		{"not equals", Subset{Selector: sel("region!=north")}, []string{"shop-munich", "lab"}},
		{"exists", Subset{Selector: sel("tier")}, []string{"shop-berlin"}},
		{"not exists", Subset{Selector: sel("!region")}, []string{"lab"}},
		{"and", Subset{Selector: sel("region=north, !tier")}, []string{"shop-hamburg"}},
		{"glob and selector", Subset{Clusters: []string{"shop-*"}, Selector: sel("region!=north")}, []string{"shop-munich"}},
	} {
		out, err := Select(inv, tc.sub, "--cluster")
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		var got []string
		for _, c := range out.Clusters {
			got = append(got, c.Name)
		}
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s: chose %v, want %v", tc.name, got, tc.want)
		}
	}
	if len(inv.Clusters) != 4 {
		t.Errorf("Select changed the inventory: %d clusters", len(inv.Clusters))
	}
}

func TestSelectNothingNamesWhatIsClose(t *testing.T) {
	inv := parseOK(t, subsetFleet, nil)
	for _, tc := range []struct {
		sub  Subset
		want string
	}{
		{Subset{Clusters: []string{"shop-berlni"}}, `--cluster "shop-berlni" matches no cluster; did you mean "shop-berlin"?`},
		{Subset{Clusters: []string{"shpo-*"}}, `did you mean "shop-berlin" or "shop-hamburg" or "shop-munich"?`},
		{Subset{Clusters: []string{"zzz"}}, `--cluster "zzz" matches no cluster; there are shop-berlin, shop-hamburg, shop-munich, lab`},
		{Subset{Clusters: []string{"lab"}, Selector: mustSelector(t, "region=north")}, `matches no cluster among the clusters lab`},
		{Subset{Selector: mustSelector(t, "regoin=north")}, `no cluster has the label "regoin"; did you mean "region=north"?`},
		{Subset{Selector: mustSelector(t, "region=nort")}, `no cluster has region=nort; did you mean "region=north"?`},
	} {
		_, err := Select(inv, tc.sub, "--cluster")
		var se *SubsetError
		if !errors.As(err, &se) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: error %v, want it to contain %q", tc.sub, err, tc.want)
		}
	}
}

func mustSelector(t *testing.T, s string) Selector {
	t.Helper()
	sel, err := ParseSelector(s)
	if err != nil {
		t.Fatal(err)
	}
	return sel
}

func TestParseSelectorErrors(t *testing.T) {
	for _, s := range []string{"a=b,,c", "=x", "a=b c", "!", "a/b/c=d"} {
		if _, err := ParseSelector(s); err == nil {
			t.Errorf("ParseSelector(%q) accepted it", s)
		}
	}
	if err := CheckPattern("shop-[a"); err == nil {
		t.Error("CheckPattern accepted shop-[a")
	}
}

func TestRolloutLoads(t *testing.T) {
	inv := parseOK(t, header+`rollout:
  canary: {clusters: ["shop-b*"], selector: "tier=canary"}
  waves: [1, "25%", "100%"]
  failureBudget: "10%"
  pause: 30s
  maxClustersInFlight: 4
`+strings.TrimPrefix(subsetFleet, header), nil)
	r := inv.Rollout
	if r == nil {
		t.Fatal("no rollout")
	}
	want := &Rollout{
		Canary:              Subset{Clusters: []string{"shop-b*"}, Selector: mustSelector(t, "tier=canary")},
		Waves:               []Amount{{N: 1}, {N: 25, Percent: true}, {N: 100, Percent: true}},
		FailureBudget:       Amount{N: 10, Percent: true},
		Pause:               30 * time.Second,
		MaxClustersInFlight: 4,
		Pos:                 r.Pos,
	}
	if !reflect.DeepEqual(r, want) {
		t.Errorf("rollout = %+v\nwant %+v", r, want)
	}

	inv = parseOK(t, header+"rollout: {canary: [lab], waveSize: 2, pause: confirm}\n"+strings.TrimPrefix(subsetFleet, header), nil)
	if r := inv.Rollout; !reflect.DeepEqual(r.Canary.Clusters, []string{"lab"}) || !reflect.DeepEqual(r.Waves, []Amount{{N: 2}}) || !r.Confirm {
		t.Errorf("short rollout = %+v", r)
	}
}

func TestRolloutProblems(t *testing.T) {
	body := strings.TrimPrefix(subsetFleet, header)
	for _, tc := range []struct{ rollout, want string }{
		{"{canary: [shop-berlni]}", `canary "shop-berlni" matches no cluster; did you mean "shop-berlin"?`},
		{"{canary: {selector: 'a=b=c'}}", `selector term "a=b=c"`},
		{"{waves: [0]}", `wave: "0" must be at least 1`},
		{"{waves: ['120%']}", `is not a percentage from 1% to 100%`},
		{"{waves: [1], waveSize: 2}", "waves and waveSize are both set"},
		{"{failureBudget: -1}", `failureBudget: "-1" must be at least 0`},
		{"{pause: soon}", `pause "soon" is not a duration`},
		{"{maxClustersInFlight: 0}", "maxClustersInFlight 0 is less than 1"},
		{"{wave: [1]}", `unknown key "wave" in rollout (did you mean "waves"?)`},
	} {
		_, err := Parse("test.yaml", []byte(header+"rollout: "+tc.rollout+"\n"+body), nil)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("rollout: %s: error %v, want %q", tc.rollout, err, tc.want)
		}
	}
}

func TestAmount(t *testing.T) {
	for _, tc := range []struct {
		a        Amount
		total    int
		up, down int
	}{
		{Amount{N: 3}, 10, 3, 3},
		{Amount{N: 25, Percent: true}, 10, 3, 2},
		{Amount{N: 100, Percent: true}, 7, 7, 7},
		{Amount{N: 10, Percent: true}, 5, 1, 0},
	} {
		if got := tc.a.Of(tc.total, true); got != tc.up {
			t.Errorf("%v of %d rounded up = %d, want %d", tc.a, tc.total, got, tc.up)
		}
		if got := tc.a.Of(tc.total, false); got != tc.down {
			t.Errorf("%v of %d rounded down = %d, want %d", tc.a, tc.total, got, tc.down)
		}
	}
}
