package pii

// Numeric runs: credit cards, SSNs, phone numbers and IPv4 addresses all start
// as a run of digit groups joined by single separators ("4111 1111 1111 1111",
// "123-45-6789", "(415) 555-0134", "+44 20 7946 0958", "192.0.2.1:8080").
// The run is read once into a small fixed array of groups and then classified;
// a space between groups is the only place where one entity may end and the
// next begin, other separators bind groups together (so a date "2024-01-15" or
// a version "1.21.0" is one run that matches nothing).

const maxGroups = 12

type group struct {
	s, e  int  // digits are t[s:e]
	paren bool // written as "(415)"
}

func (g group) len() int { return g.e - g.s }

type numRun struct {
	g    [maxGroups]group
	sep  [maxGroups]byte // sep[k] joins g[k] and g[k+1]; ')' means "(415)555" with nothing between
	n    int
	plus bool // run started with '+'
}

func isRunSep(b byte) bool {
	return b == ' ' || b == '-' || b == '.' || b == '/' || b == ':'
}

// readRun reads the run starting at i (a digit, '+' or '('). It returns the end
// of the run and ok=false when the run is part of a larger token (a letter,
// '_' or '@' touches its end), in which case nothing in it is reported.
func readRun(t string, i int, r *numRun) (end int, ok bool) {
	n := len(t)
	j := i
	if t[j] == '+' {
		r.plus = true
		j++
	}
	for r.n < maxGroups {
		var g group
		if at(t, j) == '(' {
			k := j + 1
			for k < n && isDigit(t[k]) {
				k++
			}
			// Parentheses hold area codes and trunk prefixes, (0) to (0800);
			// anything longer is a number that happens to be in brackets.
			if k == j+1 || k-(j+1) > 4 || at(t, k) != ')' {
				if r.n == 0 {
					return i + 1, false
				}
				break
			}
			g = group{s: j + 1, e: k, paren: true}
			j = k + 1
		} else {
			k := j
			for k < n && isDigit(t[k]) {
				k++
			}
			if k == j {
				break
			}
			g = group{s: j, e: k}
			j = k
		}
		r.g[r.n] = g
		r.n++
		if r.n == maxGroups {
			break
		}
		c := at(t, j)
		switch {
		case g.paren && isDigit(c):
			r.sep[r.n-1] = ')'
			continue
		case isRunSep(c) && (isDigit(at(t, j+1)) || (c == ' ' && at(t, j+1) == '(' && isDigit(at(t, j+2)))):
			r.sep[r.n-1] = c
			j++
			continue
		}
		break
	}
	if r.n == 0 {
		return i + 1, false
	}
	c := at(t, j)
	if isWord(c) || c == '@' || (c == '-' && isAlnum(at(t, j+1))) {
		return j, false
	}
	return j, true
}

// numbers reads the run at i and counts whatever it holds.
func (st *state) numbers(t string, i int) int {
	// The run lives in state so that it is not cleared on every call;
	// readRun only reads what it wrote.
	r := &st.run
	r.n, r.plus = 0, false
	end, ok := readRun(t, i, r)
	if !ok {
		if end <= i+1 && t[i] == '(' {
			return i + 1 // not a phone-style "(...)": read the digits on their own
		}
		if end <= i {
			end = i + 1
		}
		if end < len(t) && isWord(t[end]) {
			return skipWord(t, end)
		}
		return end
	}
	if r.plus {
		// A leading '+' makes the run a phone number or nothing.
		if m := r.intlPhone(t); m > 0 {
			st.add(tPhone)
		}
		return end
	}
	for p := 0; p < r.n; {
		if p > 0 && r.sep[p-1] != ' ' {
			p++
			continue
		}
		if r.n-p < 3 && r.g[p].len() != 9 && r.digitsFrom(p) < 13 {
			p++ // too short for a card and too few groups for anything else
			continue
		}
		m, id := r.match(t, p)
		if m == 0 {
			p++
			continue
		}
		st.add(id)
		p += m
	}
	return end
}

// digitsFrom returns the number of digits in groups p and up.
func (r *numRun) digitsFrom(p int) int {
	d := 0
	for k := p; k < r.n; k++ {
		d += r.g[k].len()
	}
	return d
}

// endsAt reports whether a match covering groups [p, q) ends at a boundary:
// the end of the run or a space.
func (r *numRun) endsAt(q int) bool { return q == r.n || r.sep[q-1] == ' ' }

// match tries the detectors at group p and returns how many groups matched.
func (r *numRun) match(t string, p int) (int, typeID) {
	if m := r.card(t, p); m > 0 {
		return m, tCreditCard
	}
	if m := r.ssn(t, p); m > 0 {
		return m, tSSN
	}
	if m := r.nanp(t, p); m > 0 {
		return m, tPhone
	}
	if m := r.ipv4(t, p); m > 0 {
		return m, tIPv4
	}
	return 0, 0
}

// collect copies the digits of groups [p, q) into buf.
func (r *numRun) collect(t string, p, q int, buf []byte) []byte {
	for k := p; k < q; k++ {
		buf = append(buf, t[r.g[k].s:r.g[k].e]...)
	}
	return buf
}

// card: 13-19 digits, either one group or groups joined by one kind of
// separator (space or dash) starting with a 4-digit group, each group at most 6
// digits; Luhn-valid with a known issuer prefix. The longest valid match wins.
func (r *numRun) card(t string, p int) int {
	best, total := 0, 0
	var sep byte
	for q := p; q < r.n; q++ {
		g := r.g[q]
		if g.paren {
			break
		}
		if q > p {
			s := r.sep[q-1]
			if s != ' ' && s != '-' {
				break
			}
			if sep == 0 {
				sep = s
				if r.g[p].len() != 4 {
					break
				}
			} else if s != sep {
				break
			}
			if g.len() > 6 {
				break
			}
		}
		total += g.len()
		if total > 19 {
			break
		}
		if total >= 13 && r.endsAt(q+1) {
			var buf [19]byte
			d := r.collect(t, p, q+1, buf[:0])
			if luhn(d) && cardIIN(d) {
				best = q + 1 - p
			}
		}
	}
	return best
}

// ssn: AAA-GG-SSSS or AAA GG SSSS with SSA validity rules, or a bare 9-digit
// number when an SSN keyword precedes it closely.
func (r *numRun) ssn(t string, p int) int {
	g := r.g[p]
	if g.paren {
		return 0
	}
	if p+2 < r.n && g.len() == 3 && r.g[p+1].len() == 2 && r.g[p+2].len() == 4 &&
		!r.g[p+1].paren && !r.g[p+2].paren &&
		(r.sep[p] == '-' || r.sep[p] == ' ') && r.sep[p+1] == r.sep[p] && r.endsAt(p+3) {
		if ssnValid(t[g.s:g.e], t[r.g[p+1].s:r.g[p+1].e], t[r.g[p+2].s:r.g[p+2].e]) {
			return 3
		}
		return 0
	}
	if g.len() == 9 && r.endsAt(p+1) {
		d := t[g.s:g.e]
		if ssnValid(d[:3], d[3:5], d[5:]) && ssnKeywordBefore(t, g.s) {
			return 1
		}
	}
	return 0
}

// nanp: North American numbers written with separators: (415) 555-0134,
// (415)555-0134, 415-555-0134, 415.555.0134, 415 555 0134, with an optional
// leading trunk "1". Bare 10-digit runs are not reported (too many order ids,
// timestamps and counters look like that).
func (r *numRun) nanp(t string, p int) int {
	q := p
	var trunkSep byte
	if r.g[q].len() == 1 && t[r.g[q].s] == '1' && q+3 < r.n && !r.g[q].paren {
		trunkSep = r.sep[q]
		if trunkSep != ' ' && trunkSep != '-' && trunkSep != '.' {
			return 0
		}
		q++
	}
	if q+2 >= r.n {
		return 0
	}
	area, exch, line := r.g[q], r.g[q+1], r.g[q+2]
	if area.len() != 3 || exch.len() != 3 || line.len() != 4 || exch.paren || line.paren {
		return 0
	}
	s1, s2 := r.sep[q], r.sep[q+1]
	if area.paren {
		if s1 != ' ' && s1 != ')' && s1 != '-' {
			return 0
		}
		if s2 != '-' && s2 != ' ' && s2 != '.' {
			return 0
		}
		if trunkSep != 0 && trunkSep != ' ' && trunkSep != '-' {
			return 0
		}
	} else {
		if s1 != s2 || (s1 != '-' && s1 != '.' && s1 != ' ') {
			return 0
		}
		if trunkSep != 0 && trunkSep != s1 {
			return 0
		}
	}
	if !r.endsAt(q + 3) {
		return 0
	}
	if !nanpValid(t[area.s:area.e], t[exch.s:exch.e]) {
		return 0
	}
	return q + 3 - p
}

// intlPhone: '+' then 8-15 digits (E.164) in groups joined by spaces, dashes,
// dots or parentheses, country code not starting with 0; +1 numbers must also
// satisfy the NANP rules. Phone-style groups that run past 15 digits make the
// whole run a non-phone rather than a phone followed by a stray number.
func (r *numRun) intlPhone(t string) int {
	best, total := 0, 0
	for q := 0; q < r.n; q++ {
		if q > 0 {
			s := r.sep[q-1]
			if s != ' ' && s != '-' && s != '.' && s != ')' {
				break
			}
		}
		total += r.g[q].len()
		if total > 15 {
			return 0 // more digits than E.164 allows: not a phone number
		}
		if total >= 8 && r.endsAt(q+1) {
			var buf [15]byte
			d := r.collect(t, 0, q+1, buf[:0])
			if d[0] != '0' && (d[0] != '1' || (len(d) == 11 && nanpOK(d[1], d[2], d[3], d[4], d[5], d[6]))) {
				best = q + 1
			}
		}
	}
	return best
}

// ipv4: four dot-separated decimal octets 0-255 without leading zeros, not
// followed by a fifth dotted group, not 0.0.0.0 nor 255.x (masks/broadcast),
// and not right after a version keyword ("version 1.2.3.4").
func (r *numRun) ipv4(t string, p int) int {
	if p+3 >= r.n {
		return 0
	}
	first := 0
	zero := true
	for k := p; k < p+4; k++ {
		g := r.g[k]
		if g.paren || g.len() > 3 || (g.len() > 1 && t[g.s] == '0') {
			return 0
		}
		if k < p+3 && r.sep[k] != '.' {
			return 0
		}
		v := 0
		for x := g.s; x < g.e; x++ {
			v = v*10 + int(t[x]-'0')
		}
		if v > 255 {
			return 0
		}
		if k == p {
			first = v
		}
		if v != 0 {
			zero = false
		}
	}
	if q := p + 4; q < r.n && r.sep[q-1] != ' ' && r.sep[q-1] != ':' && r.sep[q-1] != '/' {
		return 0
	}
	if zero || first == 255 {
		return 0
	}
	if versionKeywordBefore(t, r.g[p].s) {
		return 0
	}
	return 4
}

// wordBefore returns the word (letters only, at most 16 bytes) that ends just
// before pos, skipping spaces and the punctuation that usually sits between a
// label and its value (": = # -").
func wordBefore(t string, pos int) string {
	j := pos
	for j > 0 && pos-j < 8 {
		c := t[j-1]
		if c == ' ' || c == ':' || c == '=' || c == '#' || c == '\t' || c == '-' {
			j--
			continue
		}
		break
	}
	e := j
	for j > 0 && e-j < 16 && cls[t[j-1]]&clAlpha != 0 {
		j--
	}
	return t[j:e]
}

var versionWords = []string{"v", "ver", "version", "release", "rel", "build", "firmware", "kernel"}

func versionKeywordBefore(t string, pos int) bool {
	w := wordBefore(t, pos)
	if w == "" {
		return false
	}
	for _, k := range versionWords {
		if len(w) == len(k) && containsFold(w, k) {
			return true
		}
	}
	return false
}

// ssnKeywords must appear in the 32 bytes before a bare 9-digit number.
var ssnKeywords = newFoldSet("ssn", "social security", "soc sec", "ss#", "ss no", "ss num")

const ssnWindow = 32

func ssnKeywordBefore(t string, pos int) bool {
	s := pos - ssnWindow
	if s < 0 {
		s = 0
	}
	return ssnKeywords.containsAny(t[s:pos])
}
