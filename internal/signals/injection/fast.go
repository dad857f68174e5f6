package injection

import "math/bits"

// The fast path. Most of a prompt is words of ASCII letters separated by
// blanks and punctuation. Between words, scan hands the text to fast, which
// finds the end of each word eight bytes at a time (nonLetters), packs it
// lower-cased straight from the text and looks it up without a branch
// (vocabEntries), counts and stores the token without a branch on whether
// it has a class, and skips blanks and records punctuation tokens, all in a
// loop (fastRun) that calls nothing. It leaves that loop only for what
// needs more: a token that may complete a rule (match), a one-letter word or
// a line start (word: spelled-out letters, cLineStart), a word with digits
// (alnumWord: leetspeak, numbers), a base64 run, and anything else (a word
// that continues past its letters with an apostrophe, a symbol or a
// non-ASCII character, chat-template markers, escapes, non-ASCII text),
// which it returns to the general byte-at-a-time tokenizer in scan.
//
// Every token the fast path produces is the token the general tokenizer
// would produce, with the same class as far as any rule can tell (a class
// that no slot looks at may be left off); TestDifferential* and
// FuzzDifferential check the result against internal/oracle, the scanner as
// it was before the fast path.

// Byte flags for the fast path, derived from kinds so that the two
// tokenizers agree.
const (
	bLetter  uint8 = 1 << iota // A-Z a-z
	bCont                      // after letters, may continue the word: 0-9 ! ' @ $ and bytes >= 0x80
	bEndsRun                   // ends a base64 run
	bTok                       // . ! ? ; , : \n: a token of their own (punctClass)
	bBol0                      // clears bol
	bNewline                   // \n
	bDigit                     // 0-9

	// bFast: between words, fast handles the byte.
	bFast = bLetter | bDigit | bEndsRun | bTok | bBol0
)

var byteFlags = func() (t [256]uint8) {
	for c := range t {
		if c >= 0x80 {
			t[c] = bCont
			continue
		}
		switch kinds[c] {
		case kLetter:
			t[c] = bLetter
		case kDigit:
			t[c] = bCont | bDigit
		case kLeetSym:
			t[c] = bCont
		case kSpace:
			t[c] = bEndsRun
		case kNewline:
			t[c] = bEndsRun | bTok | bNewline
		case kBreak, kComma, kColon:
			t[c] = bEndsRun | bTok | bBol0
		case kApos:
			t[c] = bEndsRun | bBol0 | bCont
		case kB64Sym:
			t[c] = bBol0
		case kOther:
			t[c] = bEndsRun | bBol0
		}
	}
	t['!'] |= bCont // "!gnore"
	return t
}()

// load64 returns s[i:i+8] as a little-endian word (one load after the bounds
// check).
func load64(s string, i int) uint64 {
	s = s[i : i+8]
	return uint64(s[0]) | uint64(s[1])<<8 | uint64(s[2])<<16 | uint64(s[3])<<24 |
		uint64(s[4])<<32 | uint64(s[5])<<40 | uint64(s[6])<<48 | uint64(s[7])<<56
}

// lowBytes[l] keeps the low l bytes of a word.
var lowBytes = [8]uint64{0, 0xFF, 0xFFFF, 0xFFFFFF, 0xFFFFFFFF, 0xFFFFFFFFFF, 0xFFFFFFFFFFFF, 0xFFFFFFFFFFFFFF}

const (
	lanesHigh = 0x8080808080808080
	lanesLow7 = 0x7F7F7F7F7F7F7F7F
	lanesCase = 0x2020202020202020
)

// nonLetters returns, for the eight bytes of x, 0x80 in each byte that is
// not an ASCII letter. OR 0x20 folds A-Z onto a-z and maps no other byte
// below 0x80 into a-z; the two additions set bit 7 where the folded byte is
// >= 'a' and >= '{', without carries between bytes because bit 7 is
// cleared first.
func nonLetters(x uint64) uint64 {
	y := (x | lanesCase) & lanesLow7
	ge := y + 0x1F1F1F1F1F1F1F1F // bit 7: y >= 0x61 'a'
	gt := y + 0x0505050505050505 // bit 7: y >= 0x7B '{'
	return ^(ge &^ gt &^ x) & lanesHigh
}

// alnumEnd returns the end of the run of ASCII letters and digits that
// starts at i.
func alnumEnd(s string, i int) int {
	n := len(s)
	for i < n && byteFlags[s[i]]&(bLetter|bDigit) != 0 {
		i++
	}
	return i
}

// punctClass is the token class of the bTok bytes; punctCand and punctPen
// are its candidates and penults.
var punctClass, punctCand, punctPen = func() (t, cand, pen [256]uint64) {
	t['.'], t['!'], t['?'], t[';'] = cBreak, cBreak, cBreak, cBreak
	t[','], t[':'], t['\n'] = cComma, cColon, cNewline
	for c, m := range t {
		cand[c], pen[c] = candidates(m), penults(m)
	}
	return t, cand, pen
}()

// fast runs the tokenizer from s[i] on, with the current word empty, over
// the bytes it handles exactly as the general tokenizer in scan does:
// words of ASCII letters and digits that end in a byte that cannot continue
// them, and between words blanks, punctuation and the other bytes that only
// end a word (bFast). It stops at any other byte, and 16 bytes before the
// end of s so that it can read words eight bytes at a time, and returns
// where it stopped and the start of the current base64 run (see scan).
func fast(sc *scanner, s string, i, run, depth int) (int, int) {
	for {
		var stop int
		stop, i, run = fastRun(sc, s, i, run)
		switch stop {
		case stopEnd, stopOut:
			return i, run
		case stopAlnum:
			// Digits (leetspeak, numbers, hex) or a long word.
			j := alnumEnd(s, i)
			if j >= len(s) || byteFlags[s[j]]&bCont != 0 {
				return i, run
			}
			alnumWord(sc, s, i, j)
			i = j
		case stopWord:
			word(sc, s, i, sc.stopAt, sc.stopMask)
			i = sc.stopAt
		case stopMatch:
			// The token is in the ring and counted; run the rules.
			sc.match(sc.stopMask, 0, sc.n-1, sc.stopCand)
			i = sc.stopAt
		case stopB64:
			if depth == 0 { // decoded payloads are not decoded again
				sc.fired |= base64Run(s, run, i)
			}
			run = i // the byte at i is read again, and ends an empty run
		}
	}
}

// Reasons for fastRun to stop.
const (
	stopEnd   = iota // fewer than 16 bytes left
	stopOut          // a byte for the general tokenizer
	stopAlnum        // a word with digits, or longer than maxWord
	stopWord         // a word for word(): one letter, spelled-out letters pending, line start
	stopMatch        // a token that may complete a rule
	stopB64          // a base64 run of minB64 or more ends at i
)

// fastRun is the common case of fast, in a loop that calls nothing (calls
// in the loop made the compiler spill and reload its state on every word):
// it stops for whatever needs a call (rule matching, spelled-out letters,
// digits, base64, the general tokenizer), saying why, with the details of
// the word or token in sc.stop*.
func fastRun(sc *scanner, s string, i, run int) (stop, _, _ int) {
	n := len(s)
	for i+16 <= n {
		c := s[i]
		f := byteFlags[c]
		if f&bLetter != 0 {
			// The word of letters s[i:j], the byte t after it, and the
			// word lower-cased and packed.
			x := load64(s, i)
			var j int
			var t byte
			var lo, hi uint64
			if m := nonLetters(x); m != 0 {
				l := bits.TrailingZeros64(m) >> 3
				j = i + l
				lo = (x | lanesCase) & lowBytes[l]
			} else if x2 := load64(s, i+8); nonLetters(x2) != 0 {
				l := bits.TrailingZeros64(nonLetters(x2)) >> 3
				j = i + 8 + l
				lo = x | lanesCase
				hi = (x2 | lanesCase) & lowBytes[l]
			} else {
				stop = stopAlnum // longer than maxWord
				break
			}
			t = s[j]
			if t-'0' < 10 {
				stop = stopAlnum
				break
			}
			if byteFlags[t]&bCont != 0 {
				stop = stopOut // the general tokenizer reads this word
				break
			}
			// The lookup is branch-free: the entry's mask and candidate
			// rules are kept only if it is the word.
			e := &vocabEntries[vocabIndex[vocabSlot(lo, hi)]]
			diff := e.lo ^ lo | e.hi ^ hi
			keep := ^uint64(int64(diff|-diff) >> 63) // all ones if diff == 0
			mask, cand, pen := e.mask&keep, e.cand&keep, e.pen&keep
			// The letter case (see end): cDAN only if all letters are
			// upper case ("dan" is in x); cTitle for an upper-case first
			// letter, which only the titleClasses slots look at, so it is
			// left off other words.
			if mask&cDAN != 0 && x&lanesCase&lowBytes[j-i] != 0 {
				mask &^= cDAN
				cand, pen = candidates(mask), penults(mask)
			}
			if mask&titleClasses != 0 && c < 'a' {
				mask |= cTitle
			}
			if j-i == 1 || sc.spn > 0 || sc.lineStart {
				if j-i == 1 || sc.spn > 0 {
					// Spelled-out letters.
					sc.stopAt, sc.stopMask = j, mask
					stop = stopWord
					break
				}
				// The first word of a line (what word does). Between
				// words, lineStart false implies bol false (both are set
				// together at a line end, and every byte that starts a
				// word clears bol), so the common case leaves bol alone.
				mask |= cLineStart
				sc.lineStart, sc.bol = false, false
			}
			classed := (mask | -mask) >> 63
			// push(mask, 0), storing the token whether or not it has a
			// class (it is kept only if it has one).
			if cand != 0 {
				if cand = reach(cand, sc.n, &sc.ring[(sc.k-1)&(ringSize-1)]); cand != 0 {
					sc.ring[sc.k&(ringSize-1)] = tok{pos: sc.n, mask: mask, pen: pen}
					sc.stopAt, sc.stopMask, sc.stopCand = j, mask, cand
					sc.n++
					sc.k++
					stop = stopMatch
					break
				}
			}
			sc.ring[sc.k&(ringSize-1)] = tok{pos: sc.n, mask: mask, pen: pen}
			sc.k += int(classed)
			sc.n++
			i = j
			if t == ' ' {
				// The space after the word ends the base64 run.
				if i-run >= minB64 {
					stop = stopB64
					break
				}
				i++
				run = i
			}
			continue
		}
		if f&(bEndsRun|bTok|bBol0) == 0 {
			stop = stopOut
			if f&bDigit != 0 {
				stop = stopAlnum
			}
			break
		}
		if f&bEndsRun != 0 {
			if i-run >= minB64 {
				stop = stopB64
				break
			}
			run = i + 1
		}
		if f&(bTok|bBol0) != 0 {
			sc.bol = f&bNewline != 0
			if f&bNewline != 0 {
				sc.lineStart = true
			}
			if f&bTok != 0 {
				// push(punctClass[c], 0)
				mask := punctClass[c]
				cand := reach(punctCand[c], sc.n, &sc.ring[(sc.k-1)&(ringSize-1)])
				sc.ring[sc.k&(ringSize-1)] = tok{pos: sc.n, mask: mask, pen: punctPen[c]}
				sc.k++
				sc.n++
				if cand != 0 {
					sc.stopAt, sc.stopMask, sc.stopCand = i+1, mask, cand
					stop = stopMatch
					break
				}
			}
		}
		i++
	}
	return stop, i, run
}

// word takes the whole word s[i:j] of ASCII letters, with the current word
// empty and s[j] (if any) a byte that ends it, and does what the general
// tokenizer does for it: read the letters (the tight letter loop in scan)
// and then end(j). mask is the word's class, with the letter case applied
// as fastRun does.
func word(sc *scanner, s string, i, j int, mask uint64) {
	sc.start = i
	sc.bol = false
	l := j - i
	if sc.lineStart {
		mask |= cLineStart
		sc.lineStart = false
	}
	if l == 1 {
		if sc.spn > 0 && i-sc.spEnd > 3 {
			sc.flushSpaced()
		}
		if sc.spn < len(sc.sp) {
			sc.sp[sc.spn] = s[i] | 0x20
			sc.spn++
		}
		sc.spEnd = j
	} else if sc.spn > 0 {
		sc.flushSpaced()
	}
	sc.push(mask, 0)
}

// alnumWord is word for a word of ASCII letters and digits that has
// digits (or is longer than 16 bytes): it fills the word buffer as the
// general tokenizer does and ends the word at j.
func alnumWord(sc *scanner, s string, i, j int) {
	sc.start = i
	sc.bol = false
	bl, letters, uppers, wf := 0, 0, 0, uint8(0)
	for k := i; k < j; k++ {
		c := s[k]
		if c >= 'A' {
			if c <= 'Z' {
				c += 'a' - 'A'
				if letters == 0 {
					wf |= wTitle
				}
				uppers++
			}
			letters++
		} else {
			wf |= wLeet
		}
		if bl < maxTok {
			sc.buf[bl] = c
			bl++
		} else {
			wf |= wOver
		}
	}
	sc.bl, sc.letters, sc.uppers, sc.wf = bl, letters, uppers, wf
	sc.end(j)
}
