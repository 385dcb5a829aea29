// Package suggest finds the name a user most likely meant, for the
// did-you-mean hints of the inventory loader and the K3s flag checks.
package suggest

// Distance is the Levenshtein distance of a and b, counting an adjacent
// swap as one edit because that is the commonest typo. Very long inputs
// are only compared for equality.
func Distance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	if len(ra) > 64 || len(rb) > 64 {
		if a == b {
			return 0
		}
		return max(len(ra), len(rb))
	}
	prev2 := make([]int, len(rb)+1)
	prev := make([]int, len(rb)+1)
	cur := make([]int, len(rb)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(ra); i++ {
		cur[0] = i
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			if i > 1 && j > 1 && ra[i-1] == rb[j-2] && ra[i-2] == rb[j-1] {
				cur[j] = min(cur[j], prev2[j-2]+1)
			}
		}
		prev2, prev, cur = prev, cur, prev2
	}
	return prev[len(rb)]
}

// Budget is how many edits a name of s's length may be away from a known
// one and still be taken for a typo of it.
func Budget(s string) int {
	switch n := len(s); {
	case n <= 3:
		return 1
	case n <= 9:
		return 2
	}
	return 3
}
