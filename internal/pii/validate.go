package pii

// Validators for the numeric detectors. Each takes ASCII digits that the
// caller already checked.

// luhn reports whether the digits pass the Luhn (mod 10) check.
func luhn(d []byte) bool {
	sum := 0
	double := false
	for i := len(d) - 1; i >= 0; i-- {
		v := int(d[i] - '0')
		if double {
			v *= 2
			if v > 9 {
				v -= 9
			}
		}
		sum += v
		double = !double
	}
	return sum%10 == 0
}

func prefixNum(d []byte, n int) int {
	v := 0
	for i := 0; i < n && i < len(d); i++ {
		v = v*10 + int(d[i]-'0')
	}
	return v
}

// cardIIN reports whether the digits start with the issuer prefix of a major
// card network and have a length that network issues. A Luhn-valid 16-digit
// number starting with 1, 7, 8 or 9 (order ids, timestamps) is not a card.
func cardIIN(d []byte) bool {
	n := len(d)
	p2, p3, p4, p6 := prefixNum(d, 2), prefixNum(d, 3), prefixNum(d, 4), prefixNum(d, 6)
	switch {
	case d[0] == '4': // Visa
		return n == 13 || n == 16 || n == 19
	case p2 >= 51 && p2 <= 55, p4 >= 2221 && p4 <= 2720: // Mastercard
		return n == 16
	case p2 == 34 || p2 == 37: // American Express
		return n == 15
	case p4 >= 2200 && p4 <= 2204: // Mir
		return n >= 16
	case p4 == 6011, p3 >= 644 && p3 <= 649, p2 == 65, p6 >= 622126 && p6 <= 622925: // Discover
		return n >= 16
	case p4 >= 3528 && p4 <= 3589: // JCB
		return n >= 16
	case p3 >= 300 && p3 <= 305, p4 == 3095, p2 == 36, p2 == 38, p2 == 39: // Diners Club
		return n >= 14
	case p2 == 62: // UnionPay
		return n >= 16
	case p4 == 5018, p4 == 5020, p4 == 5038, p4 == 5893, p4 == 6304,
		p4 == 6759, p4 >= 6761 && p4 <= 6763: // Maestro
		return true
	case p2 == 60, p2 == 81, p2 == 82, p3 == 508: // RuPay
		return n == 16
	}
	return false
}

// ssnValid applies the SSA rules that hold for every issued number: area not
// 000, 666 or 900-999; group not 00; serial not 0000.
func ssnValid(area, grp, serial string) bool {
	if area == "000" || area == "666" || area[0] == '9' {
		return false
	}
	return grp != "00" && serial != "0000"
}

// nanpValid applies the North American Numbering Plan rules to the area code
// and exchange: both start with 2-9, neither is an N11 service code, and the
// area code's middle digit is not 9 (reserved for expansion).
func nanpValid(area, exch string) bool {
	return nanpOK(area[0], area[1], area[2], exch[0], exch[1], exch[2])
}

func nanpOK(a0, a1, a2, e0, e1, e2 byte) bool {
	if a0 < '2' || e0 < '2' {
		return false
	}
	if a1 == '1' && a2 == '1' || e1 == '1' && e2 == '1' {
		return false
	}
	return a1 != '9'
}
