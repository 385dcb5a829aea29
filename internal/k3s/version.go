package k3s

import (
	"cmp"
	"fmt"
	"strconv"
	"strings"

	goversion "github.com/hashicorp/go-version"
)

// Version is a K3s release such as v1.31.4+k3s1 or v1.32.4-rc1+k3s1.
//
// Parsing and the semver part of the ordering are go-version's. K3s adds
// two rules on top: the +k3sN suffix is part of the identity (K3s
// re-releases the same Kubernetes patch as k3s2, k3s3, … and those are
// newer, while semver ignores build metadata), and rcN compares by its
// number, so rc10 is newer than rc9.
type Version struct {
	Major, Minor, Patch int
	// Pre is the pre-release tag without its dash ("rc1"), empty for a release.
	Pre string
	// K3s is N in +k3sN.
	K3s int
}

// ParseVersion parses a K3s version. The leading "v" may be left out.
func ParseVersion(s string) (Version, error) {
	in := strings.TrimSpace(s)
	bad := func(why string) (Version, error) {
		return Version{}, fmt.Errorf("invalid K3s version %q: %s (want v<major>.<minor>.<patch>[-rcN]+k3s<N>, e.g. v1.31.4+k3s1)", s, why)
	}
	if in == "" {
		return bad("empty")
	}
	// go-version accepts one to three (or more) numbers; a K3s release
	// always has exactly three, and a wrong count is the common mistake
	// (a channel name such as v1.31), so it gets its own message.
	core, build, hasBuild := strings.Cut(strings.TrimPrefix(in, "v"), "+")
	core, pre, hasPre := strings.Cut(core, "-")
	nums := strings.Split(core, ".")
	if len(nums) != 3 {
		return bad("need three numbers separated by dots")
	}
	for _, p := range nums {
		if p == "" || strings.Trim(p, "0123456789") != "" || len(p) > 9 {
			return bad(fmt.Sprintf("%q is not a number", p))
		}
	}
	if hasPre && !validPre(pre) {
		return bad(fmt.Sprintf("pre-release %q should look like rc1", pre))
	}
	gv, err := goversion.NewSemver(in)
	if err != nil {
		return bad(err.Error())
	}
	seg := gv.Segments()
	v := Version{Major: seg[0], Minor: seg[1], Patch: seg[2], Pre: gv.Prerelease()}
	if !hasBuild {
		return bad(fmt.Sprintf("missing the +k3sN suffix; did you mean %s?", Version{v.Major, v.Minor, v.Patch, v.Pre, 1}))
	}
	num, ok := strings.CutPrefix(gv.Metadata(), "k3s")
	if !ok {
		return bad(fmt.Sprintf("suffix +%s should be +k3s<N>", build))
	}
	k, err := strconv.Atoi(num)
	if err != nil || k < 1 || strings.Trim(num, "0123456789") != "" {
		return bad(fmt.Sprintf("suffix +%s should be +k3s<N> with N ≥ 1", build))
	}
	v.K3s = k
	return v, nil
}

// MustParseVersion is ParseVersion for constants in code and tests.
func MustParseVersion(s string) Version {
	v, err := ParseVersion(s)
	if err != nil {
		panic(err)
	}
	return v
}

// validPre accepts letters followed by an optional number: rc1, alpha2, beta.
func validPre(s string) bool {
	letters, num := splitPre(s)
	if letters == "" || strings.Trim(letters, "abcdefghijklmnopqrstuvwxyz") != "" {
		return false
	}
	return num == "" || strings.Trim(num, "0123456789") == "" && len(num) <= 9
}

func splitPre(s string) (letters, num string) {
	i := strings.IndexAny(s, "0123456789")
	if i < 0 {
		return s, ""
	}
	return s[:i], s[i:]
}

// String gives the canonical form used in release URLs: v1.31.4+k3s1.
func (v Version) String() string {
	if v.IsZero() {
		return ""
	}
	s := fmt.Sprintf("v%d.%d.%d", v.Major, v.Minor, v.Patch)
	if v.Pre != "" {
		s += "-" + v.Pre
	}
	return s + "+k3s" + strconv.Itoa(v.K3s)
}

// IsZero reports whether v was never set.
func (v Version) IsZero() bool { return v == Version{} }

// MinorChannel is the release channel that follows v's minor: "v1.31".
func (v Version) MinorChannel() string { return fmt.Sprintf("v%d.%d", v.Major, v.Minor) }

// MarshalText writes the canonical form, so versions read well in JSON.
func (v Version) MarshalText() ([]byte, error) { return []byte(v.String()), nil }

// UnmarshalText parses with ParseVersion.
func (v *Version) UnmarshalText(b []byte) error {
	p, err := ParseVersion(string(b))
	if err != nil {
		return err
	}
	*v = p
	return nil
}

// Compare orders K3s versions: -1 if a is older than b, 0 if equal, +1 if
// newer. go-version orders the semver part (a release candidate is older
// than its release); then rcN compares by number and, with everything else
// equal, the higher k3sN is newer:
// v1.31.4+k3s1 < v1.31.4+k3s2 < v1.31.5-rc1+k3s1 < v1.31.5+k3s1.
func Compare(a, b Version) int {
	if a.Pre != b.Pre && a.Pre != "" && b.Pre != "" {
		if c := semverOf(a, "").Compare(semverOf(b, "")); c != 0 {
			return c
		}
		if c := comparePre(a.Pre, b.Pre); c != 0 {
			return c
		}
		return cmp.Compare(a.K3s, b.K3s)
	}
	if c := semverOf(a, a.Pre).Compare(semverOf(b, b.Pre)); c != 0 {
		return c
	}
	return cmp.Compare(a.K3s, b.K3s)
}

// semverOf is v as go-version sees it, without the +k3sN it ignores.
func semverOf(v Version, pre string) *goversion.Version {
	s := fmt.Sprintf("%d.%d.%d", v.Major, v.Minor, v.Patch)
	if pre != "" {
		s += "-" + pre
	}
	return goversion.Must(goversion.NewSemver(s))
}

// comparePre compares two pre-release tags of the same release: by their
// letters, then by the number as a number (go-version compares "rc10" and
// "rc9" as text).
func comparePre(a, b string) int {
	al, an := splitPre(a)
	bl, bn := splitPre(b)
	if c := strings.Compare(al, bl); c != 0 {
		return c
	}
	ai, _ := strconv.Atoi(an)
	bi, _ := strconv.Atoi(bn)
	return cmp.Compare(ai, bi)
}

// MinorSkip counts the minor releases an upgrade from `from` to `to` would
// jump over: 0 for a patch upgrade or the next minor, 1 for v1.30 → v1.32.
// Kubernetes supports only one minor at a time, so callers refuse anything
// above 0. Downgrades give 0; tell them apart with Compare. A change of major
// version counts as a skip, because nothing is known about its skew rules.
func MinorSkip(from, to Version) int {
	switch {
	case to.Major < from.Major:
		return 0
	case to.Major > from.Major:
		return 1
	}
	return max(0, to.Minor-from.Minor-1)
}

// ParseVersionOutput reads the output of `k3s --version`, whose first line
// is "k3s version v1.31.4+k3s1 (94e29e2e)".
func ParseVersionOutput(out string) (Version, error) {
	first, _, _ := strings.Cut(strings.TrimLeft(out, " \t\r\n"), "\n")
	f := strings.Fields(first)
	if len(f) < 3 || f[0] != "k3s" || f[1] != "version" {
		return Version{}, fmt.Errorf("unexpected `k3s --version` output %q: want \"k3s version v1.x.y+k3sN (commit)\"", strings.TrimSpace(first))
	}
	return ParseVersion(f[2])
}
