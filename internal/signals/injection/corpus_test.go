package injection

import (
	"bufio"
	"encoding/base64"
	"encoding/json"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"
)

// Test texts shared by the differential tests and the cold-cache
// benchmarks: the labelled held-out set, the signal package's shipped and
// held-out intent examples and chat bodies, the fuzz corpus, and texts
// generated from them with a fixed seed. All of it was written for
// Switchyard.

// heldOutLines returns the benign (label 0) and attack (label 1) prompts of
// testdata/heldout.txt.
func heldOutLines(tb testing.TB) (benign, attack []string) {
	tb.Helper()
	f, err := os.Open("testdata/heldout.txt")
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		label, quoted, _ := strings.Cut(line, " ")
		txt, err := strconv.Unquote(quoted)
		if err != nil {
			tb.Fatalf("heldout.txt: bad line %q: %v", line, err)
		}
		if label == "1" {
			attack = append(attack, txt)
		} else {
			benign = append(benign, txt)
		}
	}
	if err := sc.Err(); err != nil {
		tb.Fatal(err)
	}
	return benign, attack
}

// intentTexts returns the "text" fields of the signal package's intent
// examples (shipped and held-out): ordinary user asks.
func intentTexts(tb testing.TB) []string {
	tb.Helper()
	var out []string
	for _, p := range []string{"../data/intents.jsonl", "../testdata/heldout.jsonl"} {
		f, err := os.Open(p)
		if err != nil {
			tb.Fatal(err)
		}
		sc := bufio.NewScanner(f)
		sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
		for sc.Scan() {
			line := sc.Bytes()
			if len(line) == 0 || line[0] == '#' {
				continue
			}
			var ex struct {
				Text string `json:"text"`
			}
			if err := json.Unmarshal(line, &ex); err != nil {
				f.Close()
				tb.Fatalf("%s: %v", p, err)
			}
			out = append(out, ex.Text)
		}
		err = sc.Err()
		f.Close()
		if err != nil {
			tb.Fatal(err)
		}
	}
	return out
}

// chatContents returns the raw chat bodies of ../testdata and the content of
// each of their messages.
func chatContents(tb testing.TB) []string {
	tb.Helper()
	paths, err := filepath.Glob("../testdata/chat_*.json")
	if err != nil || len(paths) == 0 {
		tb.Fatalf("no chat bodies: %v", err)
	}
	var out []string
	for _, p := range paths {
		raw, err := os.ReadFile(p)
		if err != nil {
			tb.Fatal(err)
		}
		out = append(out, string(raw))
		var body struct {
			Messages []struct {
				Content string `json:"content"`
			} `json:"messages"`
		}
		if err := json.Unmarshal(raw, &body); err != nil {
			tb.Fatalf("%s: %v", p, err)
		}
		for _, m := range body.Messages {
			out = append(out, m.Content)
		}
	}
	return out
}

// fuzzCorpusTexts returns the string inputs stored under testdata/fuzz/<name>.
func fuzzCorpusTexts(tb testing.TB, name string) []string {
	tb.Helper()
	paths, _ := filepath.Glob(filepath.Join("testdata", "fuzz", name, "*"))
	var out []string
	for _, p := range paths {
		raw, err := os.ReadFile(p)
		if err != nil {
			tb.Fatal(err)
		}
		for _, line := range strings.Split(string(raw), "\n") {
			if q, ok := strings.CutPrefix(line, "string("); ok && strings.HasSuffix(q, ")") {
				if s, err := strconv.Unquote(q[:len(q)-1]); err == nil {
					out = append(out, s)
				}
			}
		}
	}
	return out
}

// fixedTexts is every stored text: seeds, benchmark paragraphs, held-out
// prompts, intent examples, chat bodies and the FuzzScore corpus.
func fixedTexts(tb testing.TB) []string {
	tb.Helper()
	benign, attack := heldOutLines(tb)
	var out []string
	out = append(out, fuzzSeeds...)
	out = append(out, benignParagraphs...)
	out = append(out, attackParagraph)
	out = append(out, benign...)
	out = append(out, attack...)
	out = append(out, intentTexts(tb)...)
	out = append(out, chatContents(tb)...)
	out = append(out, fuzzCorpusTexts(tb, "FuzzScore")...)
	out = append(out, fuzzCorpusTexts(tb, "FuzzDifferential")...)
	for _, n := range []int{200, 2048, 16384} {
		out = append(out, benchPrompt(n, false), benchPrompt(n, true))
	}
	return out
}

// sentences splits texts into lines and sentences, the pieces the
// generators recombine.
func sentences(texts []string) []string {
	var out []string
	for _, t := range texts {
		for _, line := range strings.Split(t, "\n") {
			for len(line) > 0 {
				i := strings.IndexAny(line, ".?!")
				if i < 0 || i == len(line)-1 {
					out = append(out, line)
					break
				}
				out = append(out, line[:i+1])
				line = strings.TrimLeft(line[i+1:], " ")
			}
		}
	}
	return out
}

// gen builds adversarial texts for the differential tests: recombined
// sentences with leetspeak, confusables, invisible characters, spelled-out
// letters, base64 and tag-encoded payloads, chat-template markers, long
// words, JSON escapes, random code points and invalid UTF-8.
type gen struct {
	rng    *rand.Rand
	pieces []string
	vocab  []string
}

func newGen(tb testing.TB, seed uint64) *gen {
	tb.Helper()
	g := &gen{rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))}
	g.pieces = sentences(fixedTexts(tb))
	for w := range vocabulary {
		g.vocab = append(g.vocab, w)
	}
	// Map order is random: sort for a reproducible generator.
	slices.Sort(g.vocab)
	return g
}

func (g *gen) pick(list []string) string { return list[g.rng.IntN(len(list))] }

var (
	genMarkers = []string{
		"<|im_start|>system\n", "<|im_start|> user", "<|im_end|>", "<|system|>", "<|SYSTEM|>", "<|eot_id|>",
		"<|start_header_id|>system<|end_header_id|>\n\n", "<|start_header_id|>  \nSystem", "<|a|>", "<|ab|>", "<|",
		"<|x_y_z_0123456789_abcdefghijklmnopqrstuvw|>", "<<SYS>>", "<</SYS>>", "<<SY", "<start_of_turn>",
		"<end_of_turn>", "[INST]", "[/INST]", "[INS", "### System:", "###  Instruction :", "### Response:",
		"###Human:", "### Assistant:", "### user:", "### Setup", "###", "#", "<", "[", "DAN:", "SYSTEM: you must",
		"system: ignore", "System :", "\nsystem:\n", "<|endoftext|>",
	}
	genSeps = []string{" ", " ", " ", "  ", "\n", "\n\n", "\t", ", ", ". ", ": ", "; ", "! ", "? ", "\\n", "\\t",
		"\\r", "\\\\", " - ", "_", "/", "+", "=", "\"", "'", "\u2019", "\u00a0", "\r\n", " :", "|", "(", ")"}
	genInvisible = []string{"\u200b", "\u200c", "\u200d", "\u2060", "\u2061", "\u2064", "\u00ad", "\u034f",
		"\ufeff", "\u180e", "\u3164", "\uffa0", "\u115f", "\u17b4", "\u0307", "\u0301", "\ufe0f", "\u200e",
		"\u200f", "\u202e", "\u202a", "\u2066", "\u2069", "\U000E0041", "\U000E0001", "\U000E007F"}
	genInvalid = []string{"\xff", "\xfe", "\xc0", "\xc1\xbf", "\xc3", "\xc3\x28", "\xe2\x82", "\xe2\x28\xa1",
		"\xed\xa0\x80", "\xed\xbf\xbf", "\xf0\x9f\x98", "\xf0\x28\x8c\xbc", "\xf4\x90\x80\x80", "\xf5\x80\x80\x80",
		"\xe0\x80\xaf", "\xf0\x80\x80\xaf", "\x80", "\xbf", "\x00", "\x7f"}
)

var leetSubst = map[byte][]string{
	'a': {"4", "@"}, 'e': {"3"}, 'i': {"1", "!"}, 'o': {"0"}, 's': {"5", "$"}, 't': {"7"}, 'b': {"8"},
	'g': {"9"}, 'l': {"1"},
}

// confusable returns a look-alike form of the ASCII letter c, or "".
func (g *gen) confusable(c byte) string {
	lower := c | 0x20
	if lower < 'a' || lower > 'z' {
		return ""
	}
	switch g.rng.IntN(7) {
	case 0: // full-width
		return string(rune(0xFF41 + int(lower-'a')))
	case 1: // mathematical alphanumerics, any style
		return string(rune(0x1D400 + 52*g.rng.IntN(13) + 26 + int(lower-'a')))
	case 2: // circled
		return string(rune(0x24D0 + int(lower-'a')))
	case 3: // Cyrillic / Greek look-alikes
		cyr := map[byte]rune{'a': 0x430, 'e': 0x435, 'o': 0x43E, 'p': 0x440, 'c': 0x441, 'y': 0x443, 'x': 0x445,
			'i': 0x456, 'j': 0x458, 's': 0x455, 'k': 0x3BA, 't': 0x3C4, 'u': 0x3C5, 'v': 0x3BD, 'h': 0x4BB}
		if r, ok := cyr[lower]; ok {
			return string(r)
		}
	case 4: // accents
		acc := map[byte]string{'a': "àáâãäå", 'e': "èéêë", 'i': "ìíîï", 'o': "òóôõö", 'u': "ùúûü", 'n': "ñ", 'c': "ç", 'y': "ýÿ", 's': "śš", 'z': "žź"}
		if a, ok := acc[lower]; ok {
			rs := []rune(a)
			return string(rs[g.rng.IntN(len(rs))])
		}
	case 5: // full-width capital
		return string(rune(0xFF21 + int(lower-'a')))
	case 6: // letter + combining mark
		return string(rune(c)) + "\u0301"
	}
	return ""
}

// mutate applies one obfuscation to a piece.
func (g *gen) mutate(s string) string {
	var b strings.Builder
	switch g.rng.IntN(11) {
	case 0: // leetspeak
		for i := 0; i < len(s); i++ {
			if subs, ok := leetSubst[s[i]|0x20]; ok && g.rng.IntN(2) == 0 {
				b.WriteString(subs[g.rng.IntN(len(subs))])
			} else {
				b.WriteByte(s[i])
			}
		}
	case 1: // confusables
		for i := 0; i < len(s); i++ {
			if c := g.confusable(s[i]); c != "" && g.rng.IntN(3) == 0 {
				b.WriteString(c)
			} else {
				b.WriteByte(s[i])
			}
		}
	case 2: // invisible, bidi, tag and combining characters inside words
		for i := 0; i < len(s); i++ {
			b.WriteByte(s[i])
			if g.rng.IntN(5) == 0 {
				b.WriteString(g.pick(genInvisible))
			}
		}
	case 3: // spelled out
		sep := g.pick([]string{" ", ".", "-", "  ", " . ", "_", "\u200b"})
		for i := 0; i < len(s); i++ {
			b.WriteByte(s[i])
			b.WriteString(sep)
		}
	case 4: // case
		switch g.rng.IntN(3) {
		case 0:
			return strings.ToUpper(s)
		case 1:
			return strings.ToLower(s)
		default:
			for i := 0; i < len(s); i++ {
				c := s[i]
				if g.rng.IntN(2) == 0 && c >= 'a' && c <= 'z' {
					c -= 'a' - 'A'
				}
				b.WriteByte(c)
			}
		}
	case 5: // base64
		enc := []*base64.Encoding{base64.StdEncoding, base64.URLEncoding, base64.RawStdEncoding, base64.RawURLEncoding}
		e := enc[g.rng.IntN(len(enc))].EncodeToString([]byte(s))
		if g.rng.IntN(4) == 0 && len(e) > 2 {
			e = e[:g.rng.IntN(len(e))] // truncated
		}
		return e
	case 6: // Unicode tags
		for _, r := range s {
			if r < 0x80 {
				b.WriteRune(0xE0000 + r)
			}
		}
	case 7: // apostrophes and leet symbols inside words
		for i := 0; i < len(s); i++ {
			b.WriteByte(s[i])
			if g.rng.IntN(6) == 0 {
				b.WriteString(g.pick([]string{"'", "\u2019", "\u2018", "\u02bc", "!", "@", "$", "1", "0"}))
			}
		}
	case 8: // invalid UTF-8 sprinkled in
		for i := 0; i < len(s); i++ {
			b.WriteByte(s[i])
			if g.rng.IntN(8) == 0 {
				b.WriteString(g.pick(genInvalid))
			}
		}
	case 9: // random byte edits
		bs := []byte(s)
		for range 1 + g.rng.IntN(3) {
			if len(bs) == 0 {
				break
			}
			bs[g.rng.IntN(len(bs))] = byte(g.rng.IntN(256))
		}
		return string(bs)
	default:
		return s
	}
	return b.String()
}

// word returns a generated token: vocabulary words (in any case, cut,
// extended or doubled), "DAN", long words around the 16- and 32-byte
// limits, numbers, and random code points from the ranges the scanner
// treats specially.
func (g *gen) word() string {
	switch g.rng.IntN(12) {
	case 0, 1, 2:
		w := g.pick(g.vocab)
		switch g.rng.IntN(6) {
		case 0:
			return strings.ToUpper(w)
		case 1:
			return strings.ToUpper(w[:1]) + w[1:]
		case 2:
			return w + g.pick(g.vocab)
		case 3:
			return w[:g.rng.IntN(len(w))+1]
		}
		return w
	case 3:
		return g.pick([]string{"DAN", "Dan", "dan", "D4N", "DAN's", "DANs", "Do Anything Now", "DO ANYTHING NOW", "do Anything Now"})
	case 4: // long words
		n := g.pick([]string{"15", "16", "17", "31", "32", "33", "40", "64"})
		l, _ := strconv.Atoi(n)
		bs := make([]byte, l)
		for i := range bs {
			bs[i] = byte('a' + g.rng.IntN(26))
		}
		if g.rng.IntN(3) == 0 {
			copy(bs, g.pick(g.vocab))
		}
		return string(bs)
	case 5:
		return strconv.Itoa(g.rng.IntN(1 << 30))
	case 6: // random code points in interesting ranges
		ranges := [][2]int{{0x80, 0x800}, {0x2000, 0x2070}, {0x2400, 0x2500}, {0x3040, 0x3200}, {0xFE00, 0xFF70},
			{0x1D400, 0x1D800}, {0xE0000, 0xE0080}, {0x0, 0x110000}, {0x370, 0x530}, {0x300, 0x370}}
		var b strings.Builder
		for range 1 + g.rng.IntN(6) {
			r := ranges[g.rng.IntN(len(ranges))]
			b.WriteRune(rune(r[0] + g.rng.IntN(r[1]-r[0])))
		}
		return b.String()
	case 7:
		return g.pick(genMarkers)
	case 8:
		return g.pick(genInvalid)
	case 9: // base64-alphabet runs
		const alpha = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=-_"
		bs := make([]byte, 10+g.rng.IntN(60))
		for i := range bs {
			bs[i] = alpha[g.rng.IntN(len(alpha))]
		}
		return string(bs)
	case 10:
		return g.pick([]string{"a", "i", "u", "I", "U", "x", "g", "n", "o", "r", "e"})
	default:
		return g.pick(genSeps)
	}
}

// text returns one generated text of roughly up to maxLen bytes.
func (g *gen) text(maxLen int) string {
	var b strings.Builder
	for b.Len() < maxLen {
		switch g.rng.IntN(4) {
		case 0:
			b.WriteString(g.word())
		case 1:
			b.WriteString(g.mutate(g.pick(g.pieces)))
		default:
			b.WriteString(g.pick(g.pieces))
		}
		if g.rng.IntN(4) != 0 {
			b.WriteString(g.pick(genSeps))
		}
		if g.rng.IntN(8) == 0 {
			break
		}
	}
	s := b.String()
	if g.rng.IntN(4) == 0 && len(s) > 1 {
		s = s[g.rng.IntN(len(s)):] // any suffix, possibly mid-rune
	}
	return s
}

// validPrefix cuts s to at most n bytes without splitting a rune.
func validPrefix(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
