// Package oracle is a frozen copy of the injection scanner as it was before
// the fast-path rewrite (repository commit e6924b6). It is imported only by
// the injection package's differential tests and fuzz target, which check
// that the optimised scanner gives exactly the same Score and Matched on
// every input. Do not change it: it defines the expected behaviour. A
// deliberate behaviour change to the scanner must update this copy in the
// same change, with the reason.
package oracle

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
	fired := scan(text, 0)
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
