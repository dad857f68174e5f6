package pii

// IBAN lengths per country from the SWIFT IBAN registry (ISO 13616), including
// the countries added up to 2024 (FK, MN, OM, YE, HN, ...). A country code not
// in this table is never reported as an IBAN.
var ibanLengths = map[string]uint8{
	"AD": 24, "AE": 23, "AL": 28, "AT": 20, "AZ": 28, "BA": 20, "BE": 16, "BG": 22,
	"BH": 22, "BI": 27, "BR": 29, "BY": 28, "CH": 21, "CR": 22, "CY": 28, "CZ": 24,
	"DE": 22, "DJ": 27, "DK": 18, "DO": 28, "EE": 20, "EG": 29, "ES": 24, "FI": 18,
	"FK": 18, "FO": 18, "FR": 27, "GB": 22, "GE": 22, "GI": 23, "GL": 18, "GR": 27,
	"GT": 28, "HN": 28, "HR": 21, "HU": 28, "IE": 22, "IL": 23, "IQ": 23, "IS": 26,
	"IT": 27, "JO": 30, "KW": 30, "KZ": 20, "LB": 28, "LC": 32, "LI": 21, "LT": 20,
	"LU": 20, "LV": 21, "LY": 25, "MC": 27, "MD": 24, "ME": 22, "MK": 19, "MN": 20,
	"MR": 27, "MT": 31, "MU": 30, "NI": 28, "NL": 18, "NO": 15, "OM": 23, "PK": 24,
	"PL": 28, "PS": 29, "PT": 25, "QA": 29, "RO": 24, "RS": 22, "RU": 33, "SA": 24,
	"SC": 31, "SD": 18, "SE": 24, "SI": 19, "SK": 24, "SM": 27, "SO": 23, "ST": 25,
	"SV": 28, "TL": 23, "TN": 24, "TR": 26, "UA": 29, "VA": 22, "VG": 24, "XK": 20,
	"YE": 30,
}

// ibanLen is the map above flattened for a branch-free lookup on the hot path.
var ibanLen = func() (t [26 * 26]uint8) {
	for cc, n := range ibanLengths {
		t[int(cc[0]-'A')*26+int(cc[1]-'A')] = n
	}
	return t
}()

const maxIBAN = 34

// ibanAt matches an IBAN starting at i, in electronic form
// (GB82WEST12345698765432) or print form with single spaces after every four
// characters (GB82 WEST 1234 5698 7654 32). Letters must be upper case. The
// length must be the registry length for the country, the check digits must
// be 02-98 and the whole number must satisfy ISO 7064 mod 97-10.
func ibanAt(t string, i int) (int, bool) {
	n := len(t)
	if i+4 > n || !isUpper(t[i]) || !isUpper(t[i+1]) || !isDigit(t[i+2]) || !isDigit(t[i+3]) {
		return 0, false
	}
	want := int(ibanLen[int(t[i]-'A')*26+int(t[i+1]-'A')])
	if want == 0 {
		return 0, false
	}
	if cd := int(t[i+2]-'0')*10 + int(t[i+3]-'0'); cd < 2 || cd > 98 {
		return 0, false
	}
	var buf [maxIBAN]byte
	m, j := 0, i
	grouped := false
	for m < want {
		c := at(t, j)
		switch {
		case isUpper(c) || isDigit(c):
			if grouped && m%4 == 0 && t[j-1] != ' ' {
				return 0, false
			}
			buf[m] = c
			m++
			j++
		case c == ' ' && m%4 == 0 && (m == 4 || grouped) && t[j-1] != ' ':
			grouped = true
			j++
		default:
			return 0, false
		}
	}
	if j < n && isWord(t[j]) {
		return 0, false
	}
	return j, ibanMod97(buf[:want])
}

// ibanMod97 computes the ISO 7064 mod 97-10 remainder of the rearranged IBAN
// (BBAN first, then country code and check digits; letters as 10..35) and
// reports whether it is 1.
func ibanMod97(s []byte) bool {
	// The remainder is taken only when the accumulator grows large: the
	// result is the same integer arithmetic with far fewer divisions.
	var r uint64
	step := func(c byte) {
		if c <= '9' {
			r = r*10 + uint64(c-'0')
		} else {
			r = r*100 + uint64(c-'A') + 10
		}
		if r >= 1<<56 {
			r %= 97
		}
	}
	for _, c := range s[4:] {
		step(c)
	}
	for _, c := range s[:4] {
		step(c)
	}
	return r%97 == 1
}
