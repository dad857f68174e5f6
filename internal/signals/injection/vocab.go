package injection

import "encoding/binary"

// Word classes. A token's mask is the union of the classes of its word; rules
// are sequences of classes. Punctuation tokens carry the last four classes.
const (
	cOverride   uint64 = 1 << iota // ignore, disregard, forget, override, bypass (+ es/fr/de/pt/it)
	cPrevAdj                       // previous, prior, earlier, original, initial, ... (+ translations)
	cAbove                         // above, foregoing, preceding
	cSystem                        // system
	cInstr                         // instructions, rules, guidelines, directives, prompts, ... (+ translations)
	cQuant                         // all, any, every, your, these (+ translations)
	cMine                          // my, our: the user is revising their own instructions
	cEverything                    // everything, anything, all (+ translations)
	cBefore                        // above, before, earlier, previously, told, said, so far
	cCont                          // and, then, instead, now
	cNew                           // new, updated, real, actual, true, revised, different
	cTask                          // task, role, goal, purpose, objective, mission, job
	cBe                            // is, are, be, become, were, was, am, re
	cFrom                          // from
	cNow                           // now
	cOn                            // on
	cYou                           // you, youre, u
	cYour                          // your, yours, ur
	cAs                            // as
	cDAN                           // "DAN", only when written in capitals
	cMode                          // mode
	cDo                            // do
	cAnything                      // anything
	cDeveloper                     // developer
	cAINoun                        // ai, assistant, model, chatbot, llm, gpt, chatgpt, claude, ...
	cPersona                       // version, persona, entity, character, mode
	cOutput                        // output, response, responses, answer
	cPretend                       // pretend, act, behave, roleplay, simulate, imagine, become
	cNo                            // no, without, zero, free
	cRestr                         // restrictions, filters, limits, censorship, guidelines, ethics, ...
	cUnfilt                        // unfiltered, uncensored, unrestricted, jailbroken, amoral, unaligned, evil
	cStay                          // stay, remain, keep
	cIn                            // in
	cCharacter                     // character
	cNeg                           // never, dont, not, no
	cBreakW                        // break, breaking
	cJailbreak                     // jailbreak, jailbroken, jailbreaking
	cExtract                       // repeat, print, reveal, show, output, display, tell, give, ...
	cStrongX                       // reveal, leak, dump, disclose, expose, divulge
	cHiddenAdj                     // initial, hidden, original, secret, system, internal, confidential, preceding, above
	cPromptN                       // prompt, prompts, instructions, preamble, directives
	cPromptW                       // prompt, prompts, preamble (what a model is "given")
	cMessage                       // message, messages
	cText                          // text, words, everything, content, messages, all
	cWhat                          // what, whats, which
	cTold                          // told, instructed, prompted
	cHow                           // how
	cDirective                     // must, should, will, ignore, always, never, now, new, override (after "system:")
	cStart                         // starting, beginning, start, begin
	cTitle                         // a vocabulary word written with an upper-case first letter

	// Punctuation tokens.
	cBreak   // . ! ? ; and the end of the text
	cNewline // \n
	cColon   // :
	cComma   // ,

	// cLineStart is added to the first word token of a line.
	cLineStart
)

// gapBlock: tokens a rule may not skip over: a sentence or line end
// separates phrases.
const gapBlock = cBreak | cNewline

var vocabulary = map[string]uint64{
	// instruction override
	"ignore": cOverride | cDirective, "ignoring": cOverride, "disregard": cOverride, "disregarding": cOverride,
	"forget": cOverride, "forgetting": cOverride, "override": cOverride | cDirective, "overriding": cOverride,
	"bypass": cOverride, "discard": cOverride, "abandon": cOverride, "ditch": cOverride, "neglect": cOverride,
	"ignora": cOverride, "ignorar": cOverride, "ignorez": cOverride, "ignorer": cOverride, "ignoriere": cOverride,
	"ignorieren": cOverride, "ignorate": cOverride, "olvida": cOverride, "olvide": cOverride, "oublie": cOverride,
	"oubliez": cOverride, "vergiss": cOverride, "vergessen": cOverride, "esqueca": cOverride, "esquece": cOverride,
	"dimentica": cOverride,

	"previous": cPrevAdj, "prior": cPrevAdj | cBefore, "earlier": cPrevAdj | cBefore, "former": cPrevAdj,
	"original": cPrevAdj | cHiddenAdj, "initial": cPrevAdj | cHiddenAdj, "aforementioned": cPrevAdj,
	"old": cPrevAdj, "existing": cPrevAdj, "preceding": cPrevAdj | cAbove | cHiddenAdj, "foregoing": cPrevAdj | cAbove,
	"above": cPrevAdj | cAbove | cBefore | cHiddenAdj, "anteriores": cPrevAdj, "anterior": cPrevAdj,
	"precedentes": cPrevAdj, "precedente": cPrevAdj, "previas": cPrevAdj, "previos": cPrevAdj,
	"vorherigen": cPrevAdj, "vorherige": cPrevAdj, "bisherigen": cPrevAdj, "obigen": cPrevAdj,
	"anterieures": cPrevAdj, "precedenti": cPrevAdj, "anteriori": cPrevAdj,

	"system": cSystem,

	"instructions": cInstr | cPromptN, "instruction": cInstr | cPromptN, "rules": cInstr, "directions": cInstr,
	"guidelines": cInstr | cRestr, "directives": cInstr | cPromptN, "prompts": cInstr | cPromptN | cPromptW,
	"prompt": cInstr | cPromptN | cPromptW, "commands": cInstr, "constraints": cInstr, "orders": cInstr,
	"programming": cInstr, "guidance": cInstr, "context": cInstr,
	"instrucciones": cInstr, "instrucoes": cInstr, "anweisungen": cInstr, "regeln": cInstr, "reglas": cInstr,
	"regles": cInstr, "consignes": cInstr, "istruzioni": cInstr, "regole": cInstr, "indicaciones": cInstr,

	"all": cQuant | cEverything | cText, "any": cQuant, "every": cQuant, "these": cQuant,
	"your": cQuant | cYour, "yours": cYour, "ur": cYour,
	"todas": cQuant, "todos": cQuant, "alle": cQuant, "toutes": cQuant, "tous": cQuant, "tutte": cQuant,
	"tus": cQuant, "sus": cQuant, "deine": cQuant, "ihre": cQuant, "vos": cQuant, "les": cQuant, "las": cQuant,
	"my": cMine, "our": cMine,

	"everything": cEverything | cText, "anything": cEverything | cAnything, "tout": cEverything,
	"todo": cEverything, "alles": cEverything, "tudo": cEverything,
	"before": cBefore, "previously": cBefore, "told": cBefore | cTold, "said": cBefore,

	"and": cCont, "then": cCont, "instead": cCont, "now": cCont | cNow | cDirective,

	"new": cNew | cDirective, "updated": cNew, "real": cNew, "actual": cNew, "true": cNew, "revised": cNew,
	"task": cTask, "role": cTask, "goal": cTask, "purpose": cTask, "objective": cTask, "mission": cTask, "job": cTask,

	"is": cBe, "are": cBe, "be": cBe, "become": cBe | cPretend, "were": cBe, "was": cBe, "am": cBe, "re": cBe,
	"from": cFrom, "on": cOn, "in": cIn, "as": cAs,
	"you": cYou | cDirective, "youre": cYou | cBe, "u": cYou,

	"dan": cDAN, "mode": cMode | cPersona, "do": cDo,
	"developer": cDeveloper,
	"ai":        cAINoun, "assistant": cAINoun | cDirective, "model": cAINoun, "chatbot": cAINoun, "bot": cAINoun,
	"llm": cAINoun, "gpt": cAINoun, "chatgpt": cAINoun, "claude": cAINoun, "gemini": cAINoun,
	"llama": cAINoun, "copilot": cAINoun,
	"version": cPersona, "persona": cPersona, "entity": cPersona, "character": cPersona | cCharacter,
	"output": cOutput | cExtract, "response": cOutput, "responses": cOutput,

	"pretend": cPretend, "act": cPretend, "behave": cPretend, "roleplay": cPretend, "simulate": cPretend,
	"imagine": cPretend,
	"no":      cNo | cNeg, "without": cNo, "zero": cNo, "free": cNo,
	"restrictions": cRestr, "restriction": cRestr, "filters": cRestr, "filter": cRestr,
	"censorship": cRestr, "boundaries": cRestr, "ethics": cRestr, "morals": cRestr,
	"morality": cRestr, "safeguards": cRestr, "guardrails": cRestr, "policies": cRestr, "content": cText,
	"unfiltered": cUnfilt, "uncensored": cUnfilt, "unrestricted": cUnfilt, "jailbroken": cUnfilt | cJailbreak,
	"amoral": cUnfilt, "unaligned": cUnfilt, "evil": cUnfilt, "unhinged": cUnfilt,

	"stay": cStay, "remain": cStay, "keep": cStay,
	"never": cNeg | cDirective, "dont": cNeg, "not": cNeg,
	"break": cBreakW, "breaking": cBreakW,
	"jailbreak": cJailbreak, "jailbreaking": cJailbreak,

	"repeat": cExtract, "print": cExtract, "reveal": cExtract | cStrongX, "show": cExtract,
	"display": cExtract, "tell": cExtract, "give": cExtract, "leak": cExtract | cStrongX,
	"dump": cExtract | cStrongX, "write": cExtract, "share": cExtract, "disclose": cExtract | cStrongX,
	"recite": cExtract, "type": cExtract, "spell": cExtract, "copy": cExtract, "list": cExtract,
	"expose": cExtract | cStrongX, "divulge": cExtract | cStrongX, "paste": cExtract, "echo": cExtract,
	"hidden": cHiddenAdj, "secret": cHiddenAdj, "internal": cHiddenAdj, "confidential": cHiddenAdj,
	"preamble": cPromptN | cPromptW, "message": cMessage, "messages": cMessage | cText,
	"text": cText, "words": cText,

	"what": cWhat, "whats": cWhat | cBe, "which": cWhat, "how": cHow,
	"instructed": cTold, "prompted": cTold,
	"starting": cStart, "beginning": cStart, "start": cStart, "begin": cStart,
	"must": cDirective, "should": cDirective, "will": cDirective, "always": cDirective,
	"admin": cDirective, "administrator": cDirective,
}

// maxWord is the longest vocabulary word; longer tokens skip the lookup.
const maxWord = 16

// The vocabulary is compiled into a perfect hash table. A word of at most
// 16 bytes is packed into two little-endian uint64s (zero beyond its
// length) and hashed with two multiplies into a 4096-slot index of bytes
// (4 KB); the slot names one of the at most 255 entries (10 KB), and entry 0
// is empty. The multipliers are chosen when the package is initialised so
// that no two vocabulary words share a slot: a lookup is then two loads and
// one comparison with no probing and no data-dependent branch, whether the
// word is in the vocabulary or not. Most tokens are not.
type vocabEntry struct {
	lo, hi uint64
	mask   uint64
	cand   uint64 // candidates(mask): the rules the word can complete
	pen    uint64 // penults(mask)
}

const (
	vocabBits  = 12
	vocabSlots = 1 << vocabBits
)

// vocabSeedHint is the first multiplier seed tried; it is the one the search
// below settles on for the current vocabulary, so initialisation does not
// search. Any change to the vocabulary still initialises correctly.
const vocabSeedHint = 6215

var (
	vocabIndex   [vocabSlots]uint8
	vocabEntries [256]vocabEntry
	vocabMulLo   uint64
	vocabMulHi   uint64
)

func init() {
	type key struct{ lo, hi, mask uint64 }
	var keys []key
	for w, m := range vocabulary {
		if len(w) > maxWord || !isPlainWord(w) {
			continue
		}
		var b [maxTok]byte
		copy(b[:], w)
		lo, hi := pack(&b, len(w))
		keys = append(keys, key{lo, hi, m})
	}
	for w, m := range vocabulary {
		if m&cDAN != 0 && len(w) >= 8 {
			panic("injection: the fast path checks the case of cDAN words in their first 8 bytes")
		}
	}
	if len(keys) >= len(vocabEntries) {
		panic("injection: vocabulary has more than 255 words; widen vocabIndex")
	}
	for seed := uint64(vocabSeedHint); ; seed++ {
		if seed > vocabSeedHint+1<<20 {
			panic("injection: no perfect hash for the vocabulary; raise vocabBits")
		}
		vocabMulLo, vocabMulHi = splitmix(seed)|1, splitmix(seed^0x5851F42D4C957F2D)|1
		clear(vocabIndex[:])
		ok := true
		for i, k := range keys {
			h := vocabSlot(k.lo, k.hi)
			if vocabIndex[h] != 0 {
				ok = false
				break
			}
			vocabIndex[h] = uint8(i + 1)
		}
		if ok {
			break
		}
	}
	for i, k := range keys {
		vocabEntries[i+1] = vocabEntry{lo: k.lo, hi: k.hi, mask: k.mask, cand: candidates(k.mask), pen: penults(k.mask)}
	}
}

func splitmix(x uint64) uint64 {
	x += 0x9E3779B97F4A7C15
	x = (x ^ x>>30) * 0xBF58476D1CE4E5B9
	x = (x ^ x>>27) * 0x94D049BB133111EB
	return x ^ x>>31
}

func vocabSlot(lo, hi uint64) uint64 {
	return (lo*vocabMulLo ^ hi*vocabMulHi) >> (64 - vocabBits)
}

// lookupPacked returns the class mask of the packed lower-case word (lo, hi)
// of at most maxWord bytes, 0 if it is not in the vocabulary. Packed words
// are zero-padded and vocabulary words contain no zero bytes, so (lo, hi)
// alone identifies the word and its length; the empty entry 0 has lo == 0,
// which no word has.
func lookupPacked(lo, hi uint64) uint64 {
	e := &vocabEntries[vocabIndex[vocabSlot(lo, hi)]]
	if e.lo == lo && e.hi == hi {
		return e.mask
	}
	return 0
}

func isPlainWord(w string) bool {
	for i := 0; i < len(w); i++ {
		if w[i] < 'a' || w[i] > 'z' {
			return false
		}
	}
	return true
}

// pack returns the first n (<= 16) bytes of b as two little-endian words,
// zero beyond n, so stale bytes of longer earlier tokens never leak in.
func pack(b *[maxTok]byte, n int) (lo, hi uint64) {
	lo = binary.LittleEndian.Uint64(b[0:8])
	hi = binary.LittleEndian.Uint64(b[8:16])
	switch {
	case n < 8:
		lo &= 1<<(8*n) - 1
		hi = 0
	case n < 16:
		hi &= 1<<(8*(n-8)) - 1
	}
	return lo, hi
}

// lookup returns the class mask of the word b[:n] (0 if unknown).
func lookup(b *[maxTok]byte, n int) uint64 {
	if n < 1 || n > maxWord {
		return 0
	}
	lo, hi := pack(b, n)
	return lookupPacked(lo, hi)
}
