package pii

import "net/netip"

// maxIPv6 is the longest textual IPv6 address we look at
// (ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255 is 45 bytes).
const maxIPv6 = 45

// ipv6At matches an IPv6 address starting at i. A cheap pre-filter rejects
// clock times (12:30:45), MAC addresses (00:1a:2b:3c:4d:5e) and C++ scopes
// (std::vector) before net/netip validates the candidate: groups of 1-4 hex
// digits, at most one "::", exactly 8 groups without "::" (an IPv4 tail counts
// as two), at least 3 non-empty groups and at least one decimal digit. So "::1"
// and "::" are not reported. A zone ("%eth0") ends the candidate.
func ipv6At(t string, i int) (int, bool) {
	n := len(t)
	if p := prev(t, i); isWord(p) || p == ':' || p == '.' {
		return 0, false
	}
	// Fast exit: a candidate has a ':' within its first five bytes.
	k := i
	for k < n && k-i < 4 && cls[t[k]]&clHex != 0 {
		k++
	}
	if at(t, k) != ':' {
		return 0, false
	}
	j := i
	for j < n && (cls[t[j]]&clHex != 0 || t[j] == ':' || t[j] == '.') {
		j++
		if j-i > maxIPv6 {
			return 0, false
		}
	}
	end := j
	for end > i && t[end-1] == '.' { // sentence end
		end--
	}
	if end-i >= 2 && t[end-1] == ':' && t[end-2] != ':' { // "address 2001:db8::1: ..."
		end--
	}
	if j < n && (isWord(t[j])) {
		return 0, false
	}
	cand := t[i:end]
	if !ipv6Shape(cand) {
		return 0, false
	}
	a, err := netip.ParseAddr(cand)
	if err != nil || !a.Is6() || a.IsUnspecified() {
		return 0, false
	}
	return end, true
}

func ipv6Shape(s string) bool {
	groups, doubles, digit := 0, 0, false
	for i := 0; i < len(s); {
		if s[i] == ':' {
			if i+1 < len(s) && s[i+1] == ':' {
				doubles++
				if doubles > 1 {
					return false
				}
				i += 2
				continue
			}
			if i == 0 || i == len(s)-1 {
				return false
			}
			i++
			continue
		}
		j, dots := i, 0
		for j < len(s) && s[j] != ':' {
			if s[j] == '.' {
				dots++
			} else if isDigit(s[j]) {
				digit = true
			}
			j++
		}
		switch {
		case dots == 0 && j-i <= 4:
			groups++
		case dots == 3 && j == len(s):
			groups += 2
		default:
			return false
		}
		i = j
	}
	if groups < 3 || !digit {
		return false
	}
	if doubles == 0 {
		return groups == 8
	}
	return groups <= 7
}
