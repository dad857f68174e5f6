// Package injection scores how much a prompt looks like a prompt-injection or
// jailbreak attempt.
//
// The detector is a set of named heuristics, each with a weight in (0,1).
// The score is their noisy-or, 1 - Π(1 - w_i) over the heuristics that fired,
// so one strong signal is enough to cross the default policy threshold of 0.8
// and several weak ones add up without ever exceeding 1.
//
// Matching runs in one linear pass without regular expressions: the text is
// tokenised into lower-case ASCII words (folding accents, full-width forms,
// mathematical alphanumerics, Cyrillic/Greek look-alikes and leetspeak, and
// skipping invisible characters inside words); each word is looked up in a
// small vocabulary of word classes, and phrase rules are matched over a ring
// of the last 16 tokens with bounded gaps. Byte-level checks find chat
// template markers, base64 blobs (decoded and scored), Unicode tag characters
// (decoded and scored), invisible and bidi control characters, and words
// spelled out letter by letter. Work is O(len(text)) with a small constant;
// nothing allocates unless a heuristic fires.
//
// Words of plain ASCII letters, blanks and punctuation, most of any prompt,
// take a fast path (fast.go) that reads eight bytes at a time and looks
// words up without branching; everything else goes through the general
// byte-at-a-time tokenizer (scan.go). The two must agree token for token:
// the differential tests and FuzzDifferential compare every result with
// internal/oracle, a frozen copy of the scanner before the fast path.
//
// Result.Matched holds heuristic names only, never prompt text.
package injection

import (
	"math"
	"math/bits"
	"sort"
)

// Result is the injection signal for one prompt.
type Result struct {
	Score   float64  `json:"score"`
	Matched []string `json:"matched"` // names of the heuristics that fired, sorted
}

// heuristic identifies one named signal. The names are part of the policy
// contract (Rego sees input.signals.injection.matched); keep them stable.
type heuristic uint8

const (
	hInstructionOverride heuristic = iota
	hNewInstructions
	hFromNowOn
	hDANPersona
	hDoAnythingNow
	hDeveloperMode
	hNoRestrictions
	hUnfilteredPersona
	hStayInCharacter
	hJailbreakTerm
	hPromptExtraction
	hRepeatTextAbove
	hPromptProbe
	hChatTemplateToken
	hFakeSystemTurn
	hBase64Payload
	hInvisibleChars
	hBidiOverride
	hUnicodeTags
	hLeetspeak
	hHomoglyphs
	hSpacedLetters
	numHeuristics
)

type heuristicInfo struct {
	name   string
	weight float64
}

// heuristics: weights are chosen so that every heuristic that is on its own
// a clear attack is >= 0.8 (instruction_override, dan_persona,
// prompt_extraction), ambiguous-on-their-own signals are 0.4-0.7 and need a
// second signal to reach the 0.8 default threshold, and phrases common in
// harmless role-play stay < 0.3 even together with one more weak signal.
var heuristics = [numHeuristics]heuristicInfo{
	hInstructionOverride: {"instruction_override", 0.85},
	hNewInstructions:     {"new_instructions", 0.45},
	hFromNowOn:           {"from_now_on", 0.1},
	hDANPersona:          {"dan_persona", 0.8},
	hDoAnythingNow:       {"do_anything_now", 0.5},
	hDeveloperMode:       {"developer_mode", 0.6},
	hNoRestrictions:      {"no_restrictions", 0.75},
	hUnfilteredPersona:   {"unfiltered_persona", 0.75},
	hStayInCharacter:     {"stay_in_character", 0.2},
	hJailbreakTerm:       {"jailbreak_term", 0.15},
	hPromptExtraction:    {"prompt_extraction", 0.8},
	hRepeatTextAbove:     {"repeat_text_above", 0.25},
	hPromptProbe:         {"prompt_probe", 0.6},
	hChatTemplateToken:   {"chat_template_token", 0.25},
	hFakeSystemTurn:      {"fake_system_turn", 0.75},
	hBase64Payload:       {"base64_payload", 0.6},
	hInvisibleChars:      {"invisible_chars", 0.5},
	hBidiOverride:        {"bidi_override", 0.4},
	hUnicodeTags:         {"unicode_tags", 0.7},
	hLeetspeak:           {"leetspeak", 0.3},
	hHomoglyphs:          {"homoglyphs", 0.3},
	hSpacedLetters:       {"spaced_letters", 0.5},
}

// byName lists heuristic ids in name order, so Matched comes out sorted
// without sorting per call.
var byName = func() []heuristic {
	ids := make([]heuristic, numHeuristics)
	for i := range ids {
		ids[i] = heuristic(i)
	}
	sort.Slice(ids, func(a, b int) bool { return heuristics[ids[a]].name < heuristics[ids[b]].name })
	return ids
}()

// Heuristic describes one heuristic for documentation and tests.
type Heuristic struct {
	Name   string
	Weight float64
}

// Heuristics returns all heuristics sorted by name.
func Heuristics() []Heuristic {
	out := make([]Heuristic, 0, numHeuristics)
	for _, id := range byName {
		out = append(out, Heuristic{heuristics[id].name, heuristics[id].weight})
	}
	return out
}

// Detector scores prompts. It holds no mutable state and is safe for
// concurrent use.
type Detector struct{}

// New returns a Detector.
func New() *Detector { return &Detector{} }

// Score returns the injection score of text in [0,1] and the names of the
// heuristics that fired. Any bytes are accepted, including invalid UTF-8.
// It allocates only the Matched slice, and only when something fired.
func (d *Detector) Score(text string) Result {
	var r Result
	d.ScoreInto(text, &r)
	return r
}

// ScoreInto is Score writing into res and reusing the capacity of
// res.Matched, so a caller that keeps its Result between requests does not
// allocate at all.
func (d *Detector) ScoreInto(text string, res *Result) {
	d.ResultInto(d.Fired(text), res)
}

// Fired is the set of heuristics that fired on some text. Sets of separate
// texts combine with |: the signal engine scans each message of a request
// on its own, caches its Fired, and scores the union.
type Fired uint32

// Fired scans text and returns the heuristics that fired, without scoring.
func (d *Detector) Fired(text string) Fired { return Fired(scan(text, 0)) }

// ResultInto scores the heuristics in f into res, reusing the capacity of
// res.Matched as ScoreInto does.
func (d *Detector) ResultInto(f Fired, res *Result) {
	fired := uint32(f)
	res.Score = score(fired)
	res.Matched = res.Matched[:0]
	if fired == 0 {
		if cap(res.Matched) == 0 {
			res.Matched = nil
		}
		return
	}
	if n := bits.OnesCount32(fired); cap(res.Matched) < n {
		res.Matched = make([]string, 0, n)
	}
	for _, id := range byName {
		if fired&(1<<id) != 0 {
			res.Matched = append(res.Matched, heuristics[id].name)
		}
	}
}

// score is the noisy-or of the weights of the fired heuristics, rounded to
// four decimals so that equal inputs give byte-identical JSON.
func score(fired uint32) float64 {
	if fired == 0 {
		return 0
	}
	keep := 1.0
	for id := range numHeuristics {
		if fired&(1<<id) != 0 {
			keep *= 1 - heuristics[id].weight
		}
	}
	return math.Round((1-keep)*1e4) / 1e4
}
