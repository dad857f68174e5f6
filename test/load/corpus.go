package main

import (
	"bytes"
	"embed"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
)

//go:embed corpus/*.txt
var corpusFS embed.FS

// slot marks where a per-request number goes in a body. It survives JSON
// encoding unchanged and never occurs in the fragments.
const slot = "@@N@@"

// Body kinds, one per scenario of the corpus.
const (
	kindCode     = "code"
	kindProse    = "prose"
	kindExtract  = "extract"
	kindChat     = "chat"
	kindAnalysis = "analysis"
)

var kinds = []string{kindCode, kindProse, kindExtract, kindChat, kindAnalysis}

// fragments are the hand-written pieces bodies are assembled from.
type fragments struct {
	system, code, prose, records, chat []string
	asks, replies                      map[string][]string
}

func loadFragments() (*fragments, error) {
	read := func(name string) ([]string, error) {
		b, err := corpusFS.ReadFile("corpus/" + name)
		if err != nil {
			return nil, fmt.Errorf("corpus %s: %w", name, err)
		}
		var out []string
		for _, e := range strings.Split(string(b), "\n%%\n") {
			if e = strings.TrimSpace(e); e != "" {
				if strings.Contains(e, slot) {
					return nil, fmt.Errorf("corpus %s: entry contains the reserved marker %s", name, slot)
				}
				out = append(out, e)
			}
		}
		if len(out) == 0 {
			return nil, fmt.Errorf("corpus %s: no entries", name)
		}
		return out, nil
	}
	f := &fragments{asks: map[string][]string{}, replies: map[string][]string{}}
	for name, dst := range map[string]*[]string{
		"system.txt": &f.system, "code.txt": &f.code, "prose.txt": &f.prose,
		"records.txt": &f.records, "chat.txt": &f.chat,
	} {
		v, err := read(name)
		if err != nil {
			return nil, err
		}
		*dst = v
	}
	asks, err := read("asks.txt")
	if err != nil {
		return nil, err
	}
	for _, a := range asks {
		kind, text, ok := strings.Cut(a, "|")
		if !ok || !strings.Contains(text, "{N}") {
			return nil, fmt.Errorf("corpus asks.txt: entry %q is not KIND|text with {N}", a)
		}
		f.asks[kind] = append(f.asks[kind], strings.Replace(text, "{N}", slot, 1))
	}
	replies, err := read("replies.txt")
	if err != nil {
		return nil, err
	}
	for _, r := range replies {
		kind, text, ok := strings.Cut(r, "|")
		if !ok {
			return nil, fmt.Errorf("corpus replies.txt: entry %q is not KIND|text", r)
		}
		f.replies[kind] = append(f.replies[kind], text)
	}
	for _, k := range kinds {
		if len(f.asks[k]) == 0 {
			return nil, fmt.Errorf("corpus asks.txt: no ask of kind %s", k)
		}
		if k != kindChat && len(f.replies[k]) == 0 {
			return nil, fmt.Errorf("corpus replies.txt: no reply of kind %s", k)
		}
	}
	return f, nil
}

// template is one body of the corpus with a hole for a number: the body is
// prefix + decimal(n) + suffix. The number sits in the final user message,
// which is what the classifier cache keys on, so a new n is a new prompt.
type template struct {
	prefix, suffix []byte
	size           int    // nominal size class in bytes (1024, 2048, ...)
	kind           string // code, prose, extract, chat, analysis
	stream         bool
}

// render appends the body for number n to dst.
func (t *template) render(dst []byte, n uint64) []byte {
	dst = append(dst, t.prefix...)
	dst = strconv.AppendUint(dst, n, 10)
	return append(dst, t.suffix...)
}

type message struct {
	Role    string `json:"role"`
	Content string `json:"content"`
}

type chatBody struct {
	Model       string    `json:"model"`
	Messages    []message `json:"messages"`
	Temperature float64   `json:"temperature"`
	MaxTokens   int       `json:"max_tokens"`
	Stream      bool      `json:"stream,omitempty"`
	User        string    `json:"user,omitempty"`
}

// slotWidth is the width of the number in a rendered body, used to aim
// at the target size (unique numbers have 7 to 10 digits).
const slotWidth = 8

// buildTemplate assembles body idx of size class size, deterministically
// from seed: the same arguments give the same bytes on every machine.
func (f *fragments) buildTemplate(seed uint64, size, idx int, model string) (template, error) {
	rng := rand.New(rand.NewPCG(seed, uint64(size)<<20|uint64(idx)))
	kind := kinds[idx%len(kinds)]
	t := template{size: size, kind: kind, stream: idx%4 == 1}
	var msgs []message
	if rng.IntN(10) < 7 {
		msgs = append(msgs, message{"system", pick(rng, f.system)})
	}
	ask := pick(rng, f.asks[kind])
	body := chatBody{Model: model, Temperature: float64(rng.IntN(8)) / 10, MaxTokens: 256 << rng.IntN(4), Stream: t.stream}
	if rng.IntN(3) == 0 {
		body.User = "user-" + strconv.Itoa(rng.IntN(5000))
	}
	// The encoded size is tracked incrementally: base is the body with
	// only the ask, each message adds its own encoding and a comma.
	enc, err := encodeJSON(chatBody{Model: body.Model, Messages: []message{{"user", ask}}, Temperature: body.Temperature,
		MaxTokens: body.MaxTokens, Stream: body.Stream, User: body.User})
	if err != nil {
		return template{}, err
	}
	cur := len(enc) - len(slot) + slotWidth
	for _, m := range msgs {
		cur += msgCost(m)
	}
	// Grow the conversation turn by turn: pasted material, the assistant's
	// answer, more material... The final user message carries the last
	// material plus the ask. Whatever would overshoot the size is cut at a
	// line or word boundary, so every body lands near its size class.
	const sep = 4 // "\n\n" between material and ask, as JSON
	var material, matReply string
	d := newDecks(rng)
	cut := func(s string, n int) string { return closeFence(trimTo(s, n-6)) }
	for turn := 0; ; turn++ {
		if material != "" {
			um := message{"user", material}
			full := msgCost(um) + msgCost(message{"assistant", matReply})
			if cur+full+sep >= size {
				// No room for the whole exchange: keep it with a shortened
				// answer when that still reads as one, else end with it.
				room := size - cur - msgCost(um) - msgCost(message{"assistant", ""})
				if room >= 120 {
					a := message{"assistant", trimTo(matReply, room)}
					msgs = append(msgs, um, a)
					cur += msgCost(um) + msgCost(a)
					material = ""
				} else {
					material = cut(material, size-cur-sep)
				}
				break
			}
			msgs = append(msgs, um, message{"assistant", matReply})
			cur += full
		}
		material, matReply = f.unit(rng, kind, turn, d)
		if room := size - cur - sep; jsonLen(material) >= room {
			material = cut(material, room)
			if room < 80 {
				material = ""
			}
			break
		}
	}
	last := ask
	if material != "" {
		last = material + "\n\n" + ask
	}
	body.Messages = append(msgs, message{"user", last})
	out, err := encodeJSON(body)
	if err != nil {
		return template{}, err
	}
	pre, suf, ok := bytes.Cut(out, []byte(slot))
	if !ok {
		return template{}, fmt.Errorf("corpus: body %d/%d lost its number slot", size, idx)
	}
	t.prefix, t.suffix = pre, suf
	return t, nil
}

// unit returns one piece of pasted material of the kind and an assistant
// reply to put after it when the conversation goes on.
func (f *fragments) unit(rng *rand.Rand, kind string, turn int, d *decks) (user, reply string) {
	if kind != kindChat {
		reply = pick(rng, f.replies[kind])
	}
	switch kind {
	case kindCode:
		c := d.code.next(f.code)
		lang, src, _ := strings.Cut(c, "\n")
		lang = strings.TrimPrefix(lang, "lang: ")
		intro := []string{"Here is the file:", "Next file, same change:", "This is the current version:", "And the caller:"}[rng.IntN(4)]
		return intro + "\n\n```" + lang + "\n" + src + "\n```", reply
	case kindProse:
		return []string{"Here is the draft:", "Next section:", "The paragraph in question:"}[rng.IntN(3)] + "\n\n" + d.prose.next(f.prose), reply
	case kindExtract:
		return d.records.next(f.records), reply
	case kindChat:
		c := d.chat.next(f.chat)
		q, a, _ := strings.Cut(c, "\nassistant: ")
		return strings.TrimPrefix(q, "user: "), a
	default: // analysis: a report followed by discussion
		if turn%2 == 0 {
			return d.prose.next(f.prose), reply
		}
		return d.records.next(f.records), reply
	}
}

// deck deals a list's entries in a shuffled order, all of them before any
// repeats, so a long conversation does not paste the same file twice in a row.
type deck struct {
	perm []int
	pos  int
	rng  *rand.Rand
}

func (d *deck) next(list []string) string {
	if d.pos%len(list) == 0 {
		d.perm = d.rng.Perm(len(list))
	}
	e := list[d.perm[d.pos%len(list)]]
	d.pos++
	return e
}

type decks struct{ code, prose, records, chat deck }

func newDecks(rng *rand.Rand) *decks {
	return &decks{code: deck{rng: rng}, prose: deck{rng: rng}, records: deck{rng: rng}, chat: deck{rng: rng}}
}

// closeFence keeps a cut code block well-formed: an odd number of fences
// means the cut fell inside one.
func closeFence(s string) string {
	if strings.Count(s, "```")%2 == 1 {
		return strings.TrimRight(s, "\n") + "\n```"
	}
	return s
}

func pick(rng *rand.Rand, s []string) string { return s[rng.IntN(len(s))] }

// encodeJSON encodes like the OpenAI SDKs do: no HTML escaping of <, > and &.
func encodeJSON(v any) ([]byte, error) {
	var b bytes.Buffer
	e := json.NewEncoder(&b)
	e.SetEscapeHTML(false)
	if err := e.Encode(v); err != nil {
		return nil, fmt.Errorf("corpus: encode body: %w", err)
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}

// jsonLen is the encoded length of s inside a JSON string.
func jsonLen(s string) int {
	b, _ := encodeJSON(s)
	return len(b) - 2
}

// msgCost is what one message adds to an encoded body: the object and a comma.
func msgCost(m message) int {
	return len(`{"role":"","content":""},`) + len(m.Role) + jsonLen(m.Content)
}

// trimTo cuts s so its JSON encoding fits in n bytes, at the last line
// break (or else space) before the limit when there is one.
func trimTo(s string, n int) string {
	if n <= 0 {
		return ""
	}
	for jsonLen(s) > n {
		cut := len(s) - (jsonLen(s) - n) - 1
		if cut <= 0 {
			return ""
		}
		s = s[:cut]
		if i := strings.LastIndexByte(s, '\n'); i > len(s)*3/4 {
			s = s[:i]
		} else if i := strings.LastIndexByte(s, ' '); i > len(s)*3/4 {
			s = s[:i]
		}
		// Never leave half a UTF-8 sequence.
		for len(s) > 0 && s[len(s)-1]&0xC0 == 0x80 {
			s = s[:len(s)-1]
		}
		if len(s) > 0 && s[len(s)-1] >= 0xC0 {
			s = s[:len(s)-1]
		}
	}
	return s
}

// corpus is the pool of templates for a run and the rule that turns a
// request number into a body.
type corpus struct {
	pool   []template
	unique float64 // share of requests whose prompt is new to the server
	nonce  uint64  // base of unique numbers, so repeated runs stay unique
}

// Unique numbers start here; repeated (pool) bodies use their pool index,
// so the two never collide.
const uniqueBase = 1_000_000_000

// newCorpus builds poolSize templates for each size class.
func newCorpus(seed uint64, sizes []int, poolSize int, unique float64, model string, nonce uint64) (*corpus, error) {
	f, err := loadFragments()
	if err != nil {
		return nil, err
	}
	if poolSize < 1 {
		return nil, fmt.Errorf("corpus: pool size %d < 1", poolSize)
	}
	if unique < 0 || unique > 1 {
		return nil, fmt.Errorf("corpus: unique ratio %v not in [0, 1]", unique)
	}
	c := &corpus{unique: unique, nonce: nonce % uniqueBase}
	// Interleave the sizes so any prefix of the pool has the same mix.
	for i := 0; i < poolSize; i++ {
		for _, s := range sizes {
			t, err := f.buildTemplate(seed, s, i, model)
			if err != nil {
				return nil, err
			}
			c.pool = append(c.pool, t)
		}
	}
	return c, nil
}

// isUnique spreads unique requests evenly: request i is unique when
// floor((i+1)·u) > floor(i·u), so any window of k requests has k·u ± 1 of them.
func (c *corpus) isUnique(i uint64) bool {
	if c.unique >= 1 {
		return true
	}
	if c.unique <= 0 {
		return false
	}
	a := uint64(float64(i) * c.unique)
	b := uint64(float64(i+1) * c.unique)
	return b > a
}

// body renders request i into dst and returns it with its template. The
// template is chosen by a hash of i, not i mod the pool size, so the even
// spread of unique requests (every fifth at -unique 0.8) never lines up
// with the pool and leaves some templates only unique or only repeated.
func (c *corpus) body(dst []byte, i uint64) ([]byte, *template) {
	n := mix64(i) % uint64(len(c.pool))
	t := &c.pool[n]
	if c.isUnique(i) {
		n = uniqueBase + (c.nonce+i)%(uniqueBase*8)
	}
	return t.render(dst, n), t
}

// mix64 is SplitMix64's finaliser: a cheap, well-spread hash of i.
func mix64(i uint64) uint64 {
	i += 0x9E3779B97F4A7C15
	i = (i ^ i>>30) * 0xBF58476D1CE4E5B9
	i = (i ^ i>>27) * 0x94D049BB133111EB
	return i ^ i>>31
}

// parseSizes reads "2k", "1k,8k" or "1024" into byte sizes.
func parseSizes(s string) ([]int, error) {
	var out []int
	for _, p := range strings.Split(s, ",") {
		p = strings.ToLower(strings.TrimSpace(p))
		mul := 1
		if v, ok := strings.CutSuffix(p, "k"); ok {
			p, mul = v, 1024
		}
		n, err := strconv.Atoi(p)
		if err != nil || n <= 0 || n*mul > 8<<20 {
			return nil, fmt.Errorf("body size %q: want a size like 2k or 1024, at most 8M", p)
		}
		out = append(out, n*mul)
	}
	return out, nil
}
