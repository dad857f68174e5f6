package judge

// Refusal detection is deliberately narrow. A refusal is a short answer
// that opens with a first-person statement of not helping ("I'm sorry, but
// I can't help with that."). Long answers are never refusals, and a phrase
// deep inside an answer ("... I can't guarantee the rates ...") is not
// looked at, so a helpful answer with a caveat is not escalated.
const (
	// refusalMaxLen is the longest trimmed answer that can be a refusal.
	refusalMaxLen = 1000
	// refusalLead is how far into the normalised answer a refusal phrase
	// may start: room for "I'm sorry, but unfortunately, " and the like.
	refusalLead = 100
	// refusalWindow is how much of the answer is normalised: the lead plus
	// room for the phrase that follows it.
	refusalWindow = 200
)

// A refusal rule is an opener at a word boundary within the lead, followed
// by one of then: immediately (after one space and at most one filler word)
// when within is 0, or anywhere within that many bytes otherwise. An opener
// with no then matches on its own.
type refusalRule struct {
	opener string
	then   []string
	within int
}

var (
	// Verbs of helping after "I can't" and friends. "help" alone is handled
	// separately, because "I can't help but notice" is not a refusal.
	helpVerbs = []string{
		"help", "assist", "provide", "comply", "fulfill", "fulfil", "do that", "do this",
		"support", "create", "generate", "write", "produce", "share", "give", "offer",
		"answer", "respond", "engage", "participate", "complete", "continue", "discuss",
		"process", "accommodate", "be of assistance", "go along", "disclose",
	}
	// Words allowed between the modal and the verb.
	fillers = []string{"really", "currently", "directly", "ethically", "legally", "personally", "actually", "in good conscience"}

	// After "as an ai ..." any first-person inability counts.
	// "As an AI, I don't have opinions, but ..." usually goes on to answer,
	// so only inabilities count, not "I don't".
	asAIThen = []string{"i can't", "i cannot", "i can not", "i'm unable", "i am unable", "i'm not able", "i am not able", "i won't"}

	refusalRules = []refusalRule{
		// Longer openers first: "i won't be able to" before "i won't".
		{opener: "i won't be able to", then: helpVerbs},
		{opener: "i will not be able to", then: helpVerbs},
		{opener: "i can't", then: helpVerbs},
		{opener: "i cannot", then: helpVerbs},
		{opener: "i can not", then: helpVerbs},
		{opener: "i'm unable to", then: helpVerbs},
		{opener: "i am unable to", then: helpVerbs},
		{opener: "i'm not able to", then: helpVerbs},
		{opener: "i am not able to", then: helpVerbs},
		{opener: "i'm not going to", then: helpVerbs},
		{opener: "i won't", then: helpVerbs},
		{opener: "i will not", then: helpVerbs},
		{opener: "i must decline"},
		{opener: "i must respectfully decline"},
		{opener: "i have to decline"},
		{opener: "i'll have to decline"},
		{opener: "as an ai", then: asAIThen, within: 60},
		// A few other languages, same shape.
		{opener: "je ne peux pas", then: []string{"vous aider", "t'aider", "aider", "répondre", "fournir", "satisfaire", "accéder à"}},
		{opener: "no puedo", then: []string{"ayudarte", "ayudarle", "ayudar", "asistir", "proporcionar", "cumplir", "hacer eso", "responder"}},
		{opener: "não posso", then: []string{"ajudar", "fornecer", "atender", "responder"}},
		{opener: "kann", then: []string{"nicht helfen", "nicht behilflich", "nicht weiterhelfen", "nicht unterstützen", "nicht nachkommen"}, within: 50},
	}

	// Words after "help" that make it something other than a refusal:
	// "I can't help but ...", "I can't help it", "I can't help wondering".
	helpNot = []string{"but", "it", "wondering", "thinking", "feeling", "noticing", "myself", "laughing", "smiling"}

	openerFirst [256]bool
)

func init() {
	for _, r := range refusalRules {
		openerFirst[r.opener[0]] = true
	}
}

// isRefusal reports whether answer is a short refusal.
func isRefusal(answer string) bool {
	t := trimSpace(answer)
	if t == "" || len(t) > refusalMaxLen || t[0] == '{' || t[0] == '[' {
		// A JSON answer is judged by the JSON and schema checks; a refusal
		// inside structured output arrives in the refusal field.
		return false
	}
	var buf [refusalWindow]byte
	w := normalise(buf[:0], t)
	lead := min(refusalLead, len(w))
	for i := 0; i < lead; i++ {
		if !openerFirst[w[i]] || (i > 0 && isWordByte(w[i-1])) {
			continue
		}
		for ri := range refusalRules {
			r := &refusalRules[ri]
			if !hasPrefix(w[i:], r.opener) {
				continue
			}
			end := i + len(r.opener)
			if end < len(w) && isWordByte(w[end]) {
				continue // "kannst", "i cannotx"
			}
			if r.then == nil || r.matchThen(w[end:]) {
				return true
			}
		}
	}
	return false
}

func (r *refusalRule) matchThen(rest []byte) bool {
	if r.within > 0 {
		lim := min(r.within, len(rest))
		for i := 0; i < lim; i++ {
			if i > 0 && isWordByte(rest[i-1]) {
				continue
			}
			for _, p := range r.then {
				if wordAt(rest[i:], p) {
					return true
				}
			}
		}
		return false
	}
	if len(rest) == 0 || rest[0] != ' ' {
		return false
	}
	rest = rest[1:]
	if matchVerb(rest, r.then) {
		return true
	}
	for _, f := range fillers {
		if wordAt(rest, f) && len(rest) > len(f) {
			if matchVerb(rest[len(f)+1:], r.then) {
				return true
			}
		}
	}
	return false
}

func matchVerb(rest []byte, verbs []string) bool {
	for _, v := range verbs {
		if !wordAt(rest, v) {
			continue
		}
		if v == "help" {
			after := rest[len(v):]
			if len(after) > 1 && after[0] == ' ' {
				for _, n := range helpNot {
					if wordAt(after[1:], n) {
						return false
					}
				}
			}
		}
		return true
	}
	return false
}

// wordAt reports whether b starts with the word (or phrase) p followed by a
// non-word byte or the end.
func wordAt(b []byte, p string) bool {
	return hasPrefix(b, p) && (len(b) == len(p) || !isWordByte(b[len(p)]))
}

func isWordByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '\'' || c >= 0x80
}

// normalise appends up to cap(dst) bytes of s to dst, lower-casing ASCII,
// folding typographic apostrophes (U+2019, U+2018, U+02BC) to ' and runs of
// white space to one space. The result may end inside a multi-byte rune,
// which only matters to the last few bytes of the window.
func normalise(dst []byte, s string) []byte {
	space := false
	for i := 0; i < len(s) && len(dst) < cap(dst); i++ {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			space = true
			continue
		case c >= 'A' && c <= 'Z':
			c += 'a' - 'A'
		case c == 0xE2 && i+2 < len(s) && s[i+1] == 0x80 && (s[i+2] == 0x99 || s[i+2] == 0x98):
			c, i = '\'', i+2
		case c == 0xCA && i+1 < len(s) && s[i+1] == 0xBC:
			c, i = '\'', i+1
		}
		if space && len(dst) > 0 {
			if len(dst) == cap(dst) {
				break
			}
			dst = append(dst, ' ')
		}
		space = false
		if len(dst) < cap(dst) {
			dst = append(dst, c)
		}
	}
	return dst
}
