package pii

import (
	"encoding/base64"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// Synthetic text for the differential tests and the cold-cache benchmarks.
// Everything here is written for this package or drawn from a seeded PRNG:
// no public data set, no real person, no real credential.

// proseSentences are clean: written to look like what users paste into a
// chat (questions, code, config, logs) with the numbers, versions, dates,
// times, hashes and URLs that must not be reported. Placeholders are filled
// by fill: {n} a small number, {f} a decimal, {v} a version, {h} a short hex
// hash, {w} a word.
var proseSentences = []string{
	"Can you explain why the p99 latency went from {n} ms to {n} ms after the rollout?",
	"We run version {v} of the client library and deploy every {n} days.",
	"The cache hit ratio dropped to 0.{n} last night, and I am not sure the TTL of {n} s is the cause.",
	"Please summarise the following meeting notes in three bullet points.",
	"Write a haiku about distributed consensus and the fear of split brain.",
	"What is the difference between a mutex and a semaphore, with an example in Rust?",
	"The build {h} failed on the linux-arm64 runner at step {n} of {n}.",
	"Translate this paragraph into German, keeping the technical terms in English.",
	"I get `error: cannot borrow x as mutable more than once at a time` on line {n}.",
	"Our Postgres {v} primary has {n} GB of RAM and shared_buffers set to {n}MB.",
	"Here is the stack trace: panic: runtime error: index out of range [{n}] with length {n}.",
	"How do I configure retries with exponential backoff (base {f} s, cap {n} s) in Envoy?",
	"The meeting is on 2024-0{n}-1{n} at 1{n}:30 in room B{n}, bring the Q{n} numbers.",
	"Refactor this function so that it does not allocate on the hot path.",
	"```python\ndef handler(event, context):\n    items = event.get(\"items\", [])\n    return {\"count\": len(items), \"ok\": True}\n```",
	"```go\nfor i := 0; i < len(xs); i++ {\n\tif xs[i] > limit {\n\t\treturn i, nil\n\t}\n}\n```",
	"```yaml\nreplicas: {n}\nresources:\n  limits:\n    cpu: \"{n}m\"\n    memory: {n}Mi\n```",
	"2024-03-1{n}T12:3{n}:45.{n}Z INFO request done status=200 dur={f}ms bytes={n} route=/v1/items",
	"2024-03-1{n}T12:3{n}:46.{n}Z WARN slow upstream dur={n}ms retries={n} shard={n}",
	"See https://docs.example.com/guide/v{n}/tuning#section-{n} for the {w} guide.",
	"The benchmark reports {f} ns/op and {n} B/op with {n} allocs/op on Go {v}.",
	"My {w} keeps timing out after {n} seconds when the payload is larger than {n} KB.",
	"Is it normal that the {w} worker uses {n}% CPU with only {n} goroutines?",
	"Compare quicksort and mergesort for {n} million nearly sorted integers.",
	"The invoice total is {n}.{n} EUR for {n} seats, billed on the {n}th of each month.",
	"I tried `kubectl rollout restart deploy/{w}` but the pods stay in CrashLoopBackOff.",
	"Explain the CAP theorem to a new team member without using the word partition.",
	"The SHA of the release tag is {h}{h}, built with -trimpath and -ldflags=-s.",
	"Why does `SELECT count(*) FROM events WHERE ts > now() - interval '{n} days'` take {n} seconds?",
	"Give me a regular expression that matches ISO dates but not times like {n}:{n}:{n}.",
	"Our SLO is {f}% over {n} days; we burned {n}% of the error budget this week.",
	"Write unit tests for the {w} parser, including empty input and very long lines.",
	"The map has {n} entries and the load factor is {f}, so why is lookup slow?",
	"Draft a polite reply declining the invitation to speak at the {w} conference.",
	"Section {n}.{n}.{n} of the spec says the header is optional, but the server rejects it.",
	"Plot the weekly active users for weeks {n} to {n} as a line chart.",
	"Ticket #{n}{n}: the export button produces an empty CSV in Firefox {n}.",
	"Does the Go scheduler preempt a tight loop like `for {}` since version 1.14?",
	"Set max_tokens: {n}, temperature: 0.{n} and top_p: 0.{n} for the summariser.",
	"The table lists p50/p95/p99 in ms: {f}/{f}/{f} at {n}k rps.",
	"Über die Brücke: naïve café résumé, 東京 の 天気 は 晴れ, Привет мир, 🙂👍 done.",
	"tokenizer: cl100k_base, context window {n}k, batch size {n}, seed {n}.",
}

// chatSentences are plain conversational prose, the bulk of many chats: no
// code, few numbers.
var chatSentences = []string{
	"Can you help me write a short, friendly email to my team about the schedule change next week?",
	"I'm planning a trip to Lisbon in the spring and would love some suggestions for quiet neighbourhoods to stay in.",
	"Please summarise the following meeting notes in three bullet points and keep the tone neutral.",
	"What are the main differences between a mutex and a semaphore, and when would you pick one over the other?",
	"Rewrite this paragraph so that it sounds less formal but still professional.",
	"My grandmother's recipe calls for a pinch of nutmeg; what could I use instead if I don't have any?",
	"Explain, as you would to a new colleague, why we keep the staging environment separate from production.",
	"I've been reading about consensus algorithms and I'm confused about how leader election avoids split brain.",
	"Draft a polite reply declining the invitation, and suggest that we meet again after the holidays.",
	"Could you list the pros and cons of renting versus buying for someone who moves every few years?",
	"The report is due on Friday, so I need a clear outline today and a first draft by Wednesday evening.",
	"Give me three title ideas for a talk about making software teams calmer and more predictable.",
	"Translate the following sentence into French and Spanish, keeping the product name in English.",
	"Why does my sourdough come out dense even though the starter looks active and bubbly?",
	"Über die Brücke gehen wir morgen früh, und danach trinken wir einen Kaffee im Café am Markt.",
	"Write a haiku about waiting for a build to finish on a rainy afternoon.",
}

// piiSentences each hold at least one item; {email}, {phone}, {card},
// {iban}, {ssn}, {ip4}, {ip6}, {key}, {jwt}, {secret}, {url} are filled with
// generated values (valid or near misses).
var piiSentences = []string{
	"Hi, please update the contact for account {n} to {email} and phone {phone}.",
	"I was charged twice on card {card}; refund to IBAN {iban} please.",
	"The applicant's SSN is {ssn} and the callback number is {phone}.",
	"Requests came from {ip4} and {ip6} before the outage.",
	"Why does this fail?\n```env\nAPI_KEY={key}\nDATABASE_URL={url}\n```",
	"Authorization: Bearer {jwt}",
	"config:\n  {secret}\n  host: {ip4}\n",
	"Forwarding mail from {email} to {email}, cc {email}.",
	"curl -H \"Authorization: Bearer {key}\" https://api.example.com/v1/models",
	"Customer {w} ({email}) paid with {card} and lives near {ip4}.",
	"Wire the deposit to {iban}, reference {n}, and text {phone} when done.",
	"Leaked in the logs: {key} and {secret}, rotate both.",
	"Connect with {url} from {ip6} and see if the password is accepted.",
	"The form has SSN {ssn}, card {card} and email {email}.",
	"Token for the staging cluster is {jwt}, it expires in {n} minutes.",
}

// fill replaces the placeholders of tmpl.
func (g *gen) fill(tmpl string) string {
	var b strings.Builder
	for {
		i := strings.IndexByte(tmpl, '{')
		if i < 0 {
			b.WriteString(tmpl)
			return b.String()
		}
		j := strings.IndexByte(tmpl[i:], '}')
		if j < 0 {
			b.WriteString(tmpl)
			return b.String()
		}
		b.WriteString(tmpl[:i])
		name := tmpl[i+1 : i+j]
		if v, ok := g.placeholder(name); ok {
			b.WriteString(v)
		} else {
			b.WriteString(tmpl[i : i+j+1]) // "{}" of code, "{{" of templates
		}
		tmpl = tmpl[i+j+1:]
	}
}

var words = []string{"billing", "search", "ingest", "router", "gateway", "scheduler", "auth", "profile", "export", "indexer", "mailer", "KubeCon", "payments"}

func (g *gen) placeholder(name string) (string, bool) {
	r := g.r
	switch name {
	case "n":
		return strconv.Itoa(r.IntN(100)), true
	case "f":
		return strconv.Itoa(r.IntN(100)) + "." + strconv.Itoa(r.IntN(10)), true
	case "v":
		return fmt.Sprintf("%d.%d.%d", 1+r.IntN(3), r.IntN(30), r.IntN(12)), true
	case "h":
		return g.str(hexLower, 12), true
	case "w":
		return words[r.IntN(len(words))], true
	case "email":
		return g.email(true), true
	case "phone":
		return g.phone(true), true
	case "card":
		return g.card(true), true
	case "iban":
		return g.iban(true), true
	case "ssn":
		return g.ssn(true), true
	case "ip4":
		return g.ipv4(true), true
	case "ip6":
		return g.ipv6(true), true
	case "key":
		return g.apiKey(true), true
	case "jwt":
		return g.jwt(true), true
	case "secret":
		return g.secret(true), true
	case "url":
		return g.connURL(true), true
	}
	return "", false
}

// raw returns n random characters of alphabet, without str's guarantee of
// a digit and a letter (which a 1-character string cannot meet).
func (g *gen) raw(alphabet string, n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = alphabet[g.r.IntN(len(alphabet))]
	}
	return string(b)
}

func (g *gen) pick(xs ...string) string { return xs[g.r.IntN(len(xs))] }

// maybe reports true with probability p.
func (g *gen) maybe(p float64) bool { return g.r.Float64() < p }

// email: mostly valid addresses, sometimes a shape the detector must reject.
func (g *gen) email(valid bool) string {
	local := g.str(alphaLower, 1+g.r.IntN(8))
	if g.maybe(0.5) {
		local += g.pick(".", "_", "+", "-", "%") + g.raw(alphaLower+digits, 1+g.r.IntN(6))
	}
	domain := g.str(alphaLower, 2+g.r.IntN(8))
	if g.maybe(0.3) {
		domain = g.str(alphaLower, 3) + "." + domain
	}
	tld := g.pick("com", "org", "net", "io", "co.uk", "example", "de", "travel")
	if !valid || g.maybe(0.2) {
		switch g.r.IntN(9) {
		case 0:
			tld = g.pick("png", "js", "json", "yaml", "md")
		case 1:
			tld = strconv.Itoa(g.r.IntN(10))
		case 2:
			local = "." + local
		case 3:
			local += ".."
		case 4:
			return local + "@" + domain + "." + tld + ":" + g.str(alphaLower, 4) + "/repo.git"
		case 5:
			return local + "@" + domain
		case 6:
			domain = "-" + domain
		case 7:
			return "@" + domain + "/" + local
		default:
			tld = g.str(alphaLower, 25)
		}
	}
	return local + "@" + domain + "." + tld
}

func (g *gen) phone(valid bool) string {
	area := g.pick("2", "3", "4", "5", "6", "7", "8", "9") + g.pick("0", "1", "2", "3", "4", "5", "6", "7", "8") + g.digitsN(1)
	exch := g.pick("2", "3", "4", "5", "6", "7", "8", "9") + g.digitsN(2)
	line := g.digitsN(4)
	if !valid || g.maybe(0.15) {
		switch g.r.IntN(5) {
		case 0:
			area = "1" + area[1:]
		case 1:
			exch = "0" + exch[1:]
		case 2:
			area = area[:1] + "11"
		case 3:
			line = line[:3]
		default:
			area = area[:1] + "9" + area[2:]
		}
	}
	switch g.r.IntN(11) {
	case 0:
		return "(" + area + ") " + exch + "-" + line
	case 1:
		return "(" + area + ")" + exch + "-" + line
	case 2:
		return area + "-" + exch + "-" + line
	case 3:
		return area + "." + exch + "." + line
	case 4:
		return area + " " + exch + " " + line
	case 5:
		return "1-" + area + "-" + exch + "-" + line
	case 6:
		return "+1 " + area + " " + exch + " " + line
	case 7:
		return "+1 (" + area + ") " + exch + "-" + line
	case 8:
		return "+" + g.pick("44", "49", "33", "0", "353", "81") + " " + g.digitsN(1+g.r.IntN(3)) + " " + g.digitsN(3+g.r.IntN(3)) + " " + g.digitsN(3+g.r.IntN(4))
	case 9:
		return "+44 (0)" + g.digitsN(2) + " " + g.digitsN(4) + " " + g.digitsN(4)
	default:
		return "+1" + area + exch + line
	}
}

var cardPrefixes = []string{"4", "51", "55", "2221", "2720", "34", "37", "2200", "6011", "644", "65", "622126", "3528", "3589", "300", "3095", "36", "38", "62", "5018", "6304", "6762", "60", "81", "508", "1", "7", "9"}

func (g *gen) card(valid bool) string {
	p := g.pick(cardPrefixes...)
	n := g.pick("13", "14", "15", "16", "16", "16", "17", "18", "19", "20")
	l, _ := strconv.Atoi(n)
	d := p + g.digitsN(l-len(p)-1)
	if valid || g.maybe(0.5) {
		d = luhnComplete(d)
	} else {
		d += g.digitsN(1)
	}
	switch g.r.IntN(6) {
	case 0, 1:
		return d
	case 2:
		return groupBy4(d)
	case 3:
		return strings.ReplaceAll(groupBy4(d), " ", "-")
	case 4:
		if len(d) == 15 {
			return d[:4] + " " + d[4:10] + " " + d[10:]
		}
		return groupBy4(d)
	default:
		s := []byte(groupBy4(d))
		for i := range s {
			if s[i] == ' ' && g.maybe(0.5) {
				s[i] = '-'
			}
		}
		return string(s)
	}
}

// ibanCountries is sorted so that a seed always yields the same texts.
var ibanCountries = slices.Sorted(maps.Keys(ibanLengths))

func (g *gen) iban(valid bool) string {
	cc := g.pick(ibanCountries...)
	l := int(ibanLengths[cc])
	bban := g.str(alphaUpper, 4) + g.digitsN(l-8)
	s := ibanWith(cc, bban)
	if !valid || g.maybe(0.2) {
		b := []byte(s)
		switch g.r.IntN(4) {
		case 0:
			b[3] = '0' + (b[3]-'0'+1)%10
		case 1:
			b = b[:len(b)-1]
		case 2:
			b = []byte(strings.ToLower(string(b)))
		default:
			b = append(b, '7')
		}
		s = string(b)
	}
	if g.maybe(0.5) {
		return groupBy4(s)
	}
	return s
}

func (g *gen) ssn(valid bool) string {
	area := g.pick("123", "219", "001", "665", "772", "000", "666", "900", "987")
	grp := g.pick("45", "09", "01", "00", "99")
	ser := g.pick("6789", "9999", "0001", "0000", g.digitsN(4))
	switch g.r.IntN(5) {
	case 0:
		return area + " " + grp + " " + ser
	case 1:
		return g.pick("ssn: ", "SSN ", "Social Security No. ", "soc sec #", "reference ") + area + grp + ser
	case 2:
		return area + "-" + grp + " " + ser
	default:
		return area + "-" + grp + "-" + ser
	}
}

func (g *gen) ipv4(valid bool) string {
	oct := func() string {
		switch g.r.IntN(10) {
		case 0:
			return "0"
		case 1:
			return "255"
		case 2:
			if !valid {
				return g.pick("256", "01", "300", "1000")
			}
		}
		return strconv.Itoa(1 + g.r.IntN(254))
	}
	s := oct() + "." + oct() + "." + oct() + "." + oct()
	switch g.r.IntN(8) {
	case 0:
		s += ":" + strconv.Itoa(g.r.IntN(65536))
	case 1:
		s += "/" + strconv.Itoa(g.r.IntN(33))
	case 2:
		s = g.pick("version ", "v", "Version: ", "build ", "kernel ") + s
	case 3:
		s += "." + oct()
	case 4:
		s = "http://" + s + "/admin"
	}
	return s
}

func (g *gen) ipv6(valid bool) string {
	grp := func() string {
		if !valid && g.maybe(0.1) {
			return g.raw(hexLower, 5)
		}
		return g.raw(hexLower+"ABCDEF", 1+g.r.IntN(4))
	}
	var parts []string
	n := 2 + g.r.IntN(7)
	for range n {
		parts = append(parts, grp())
	}
	var s string
	switch g.r.IntN(9) {
	case 0:
		s = strings.Join(parts, ":")
	case 1:
		k := g.r.IntN(len(parts) + 1)
		s = strings.Join(parts[:k], ":") + "::" + strings.Join(parts[k:], ":")
	case 2:
		s = "::ffff:" + g.ipv4(true)
	case 3:
		s = "2001:db8::" + grp()
	case 4:
		s = "fe80::" + grp() + ":" + grp() + "%eth0"
	case 5:
		s = "[2001:db8::" + grp() + "]:" + strconv.Itoa(g.r.IntN(65536))
	case 6:
		s = g.pick("12:30:45", "00:1a:2b:3c:4d:5e", "std::vector", "Add::Bed::Cafe", "::1", "::", "2001:db8::1::2")
	case 7:
		s = "2001:db8:" + grp() + "::" + grp() + "."
	default:
		s = strings.Join(parts, ":") + "::"
	}
	return s
}

// bodyAlphabet returns the characters of a key body class (of the frozen
// oracle, so that the generator does not depend on the code under test).
func bodyAlphabet(k orcBodyKind) string {
	switch k {
	case orcBodyAlnum:
		return alnum
	case orcBodyB64URL:
		return b64url
	case orcBodyUpperDigit:
		return alphaUpper + digits
	case orcBodyHex:
		return hexLower + "ABCDEF"
	case orcBodyAlnumUnder:
		return alnum + "_"
	case orcBodyAlnumDash:
		return alnum + "-"
	default:
		return alphaUpper + alphaLower
	}
}

// apiKey returns a key of a random vendor shape, of a length around the
// rule's bounds, sometimes a placeholder body.
func (g *gen) apiKey(valid bool) string {
	if g.maybe(0.07) {
		a, b := 22, 43
		if !valid && g.maybe(0.5) {
			a += g.r.IntN(3) - 1
		}
		return "SG." + g.str(b64url, a) + "." + g.str(b64url, b)
	}
	r := orcKeyRules[g.r.IntN(len(orcKeyRules))]
	l := r.min
	if r.max > r.min {
		l += g.r.IntN(r.max - r.min + 1)
	} else if r.max == 0 {
		l += g.r.IntN(40)
	}
	if !valid {
		l += g.r.IntN(3) - 1
	}
	body := g.str(bodyAlphabet(r.body), max(l, 1))
	if !valid || g.maybe(0.1) {
		switch g.r.IntN(4) {
		case 0:
			body = strings.Repeat("a", len(body)-1) + "1"
		case 1:
			if len(body) > 7 {
				body = body[:len(body)-7] + "EXAMPLE"
			}
		case 2:
			body = strings.Repeat("x", len(body))
		default:
			body = g.raw(alphaLower, len(body))
		}
	}
	return r.prefix + body
}

func (g *gen) jwt(valid bool) string {
	hdr := g.pick(`{"alg":"HS256","typ":"JWT"}`, `{"typ":"JWT","alg":"none"}`, ` {"alg":"RS256","kid":"`+g.str(alnum, 8)+`"}`)
	if !valid && g.maybe(0.5) {
		hdr = g.pick(`{"typ":"JWT"}`, `{not json`, `["alg"]`)
	}
	payload := fmt.Sprintf(`{"sub":"%d","iat":%d}`, g.r.IntN(1e6), 1.7e9+g.r.IntN(1e7))
	sig := ""
	if g.maybe(0.8) {
		sig = g.str(b64url, 43)
	}
	tok := makeJWT(hdr, payload, sig)
	if !valid && g.maybe(0.3) {
		tok += "." + g.str(b64url, 20)
	}
	return tok
}

var secretNames = []string{
	"password", "DB_PASSWORD", "api_key", "apiKey", "client_secret", "X-Api-Key", "aws_secret_access_key",
	"spring.datasource.password", "token", "auth", "pass", "pw", "signingKey", "masterKey", "credentials",
	"max_tokens", "token_url", "secret_name", "password_file", "author", "tokenizer", "name", "privateKey",
}

var secretOps = []string{"=", " = ", ": ", ":", " := ", " => ", `": "`, "' : '", " == ", "::", "=\t"}

func (g *gen) secretValueText(valid bool) string {
	if valid || g.maybe(0.5) {
		return g.str(alnum+"!#%&*+-/=?^_~", 8+g.r.IntN(30))
	}
	return g.pick("${DB_PASSWORD}", "os.getenv(\"X\")", "settings.DB_PASS", "{{ .Values.token }}", "YOUR_API_KEY_HERE",
		"********", "password123", "<your-password>", "hunter2", "aaaaaaaaaaaa1", "4096", "https://login.example.com/x",
		"Bearer "+g.str(hexLower, 32), "Basic "+g.str(b64url, 20), "Refreshed", "12345678901", "./secret.txt", "-----BEGIN X")
}

func (g *gen) secret(valid bool) string {
	name := g.pick(secretNames...)
	op := g.pick(secretOps...)
	v := g.secretValueText(valid)
	switch g.r.IntN(4) {
	case 0:
		return `"` + name + `"` + op + `"` + v + `"`
	case 1:
		return name + op + "'" + v + "'"
	default:
		return name + op + v
	}
}

func (g *gen) connURL(valid bool) string {
	scheme := g.pick("postgres", "mysql", "redis", "mongodb+srv", "amqp", "https")
	user := g.pick("app", "root", "admin", "postgres", "", "user")
	pass := g.str(alnum, 6+g.r.IntN(10))
	if !valid || g.maybe(0.2) {
		pass = g.pick("postgres", "password", "${PWD}", "pw", "xy", "*****", user)
	}
	host := g.pick("db", "db.internal", "10.0.0.5", "cluster0.example.net", "[2001:db8::5]")
	return scheme + "://" + user + ":" + pass + "@" + host + ":" + strconv.Itoa(1000+g.r.IntN(9000)) + "/app"
}

func (g *gen) base64Blob() string {
	raw := make([]byte, 4+g.r.IntN(120))
	for i := range raw {
		raw[i] = byte(g.r.IntN(256))
	}
	if g.maybe(0.5) {
		return base64.StdEncoding.EncodeToString(raw)
	}
	return base64.RawURLEncoding.EncodeToString(raw)
}

// item returns one generated candidate of a random kind, valid or not.
func (g *gen) item() string {
	valid := g.maybe(0.6)
	switch g.r.IntN(17) {
	case 0:
		return g.email(valid)
	case 1:
		return g.phone(valid)
	case 2:
		return g.card(valid)
	case 3:
		return g.iban(valid)
	case 4:
		return g.ssn(valid)
	case 5:
		return g.ipv4(valid)
	case 6:
		return g.ipv6(valid)
	case 7, 8:
		return g.apiKey(valid)
	case 9:
		return g.jwt(valid)
	case 10:
		return g.pemBlock(g.pick("RSA PRIVATE KEY", "PRIVATE KEY", "PGP PRIVATE KEY BLOCK", "PUBLIC KEY", "CERTIFICATE", "EC PRIVATE KEY"), g.r.IntN(3))
	case 11, 12:
		return g.secret(valid)
	case 13:
		return g.connURL(valid)
	case 14:
		return g.base64Blob()
	case 15:
		return g.pick("Привет", "日本語", "émail", "🙂", "\xff", "\xc3\x28", "\xe2\x82", "\x00", "\\n", "\\t", "\\r")
	default:
		return g.digitsN(1+g.r.IntN(20)) + g.pick("", "abc", "_x", ".", "-", "@", ":")
	}
}

// glue is what sits between an item and its neighbours: boundaries, escapes,
// quotes, word characters that make a candidate part of a larger token,
// multi-byte and invalid UTF-8.
var glue = []string{
	" ", " ", " ", "\n", ", ", ". ", "(", ")", "[", "]", "\"", "'", "`", "<", ">", "\\n", "\\t", "\\r",
	":", "=", "x", "_", "1", ".", "-", "@", "/", "+", "#", "é", "\xff", "\t", ";", "&", "{", "}",
}

// mixedDoc returns a document of about size bytes mixing prose and items
// with arbitrary glue: the input of the differential test.
func (g *gen) mixedDoc(size int) string {
	var b strings.Builder
	for b.Len() < size {
		switch g.r.IntN(4) {
		case 0:
			b.WriteString(g.fill(g.pick(proseSentences...)))
		case 1:
			b.WriteString(g.fill(g.pick(piiSentences...)))
		default:
			b.WriteString(g.pick(glue...))
			b.WriteString(g.item())
		}
		b.WriteString(g.pick(glue...))
	}
	return b.String()
}

// proseDoc returns a conversational prompt of exactly size bytes.
func (g *gen) proseDoc(size int) string {
	var b strings.Builder
	for b.Len() < size {
		b.WriteString(g.pick(chatSentences...))
		b.WriteString(g.pick(" ", " ", " ", "\n", "\n\n"))
	}
	return b.String()[:size]
}

// benchDoc returns a realistic prompt of exactly size bytes: prose sentences
// and, with pii, one PII sentence in every two (dense: several findings per
// kilobyte), interleaved with the benchmark paragraphs of bench_test.go.
func (g *gen) benchDoc(size int, pii bool) string {
	var b strings.Builder
	for b.Len() < size {
		switch {
		case g.maybe(0.08):
			b.WriteString(cleanParagraphs[g.r.IntN(len(cleanParagraphs))])
		case pii && g.maybe(0.04):
			b.WriteString(piiParagraphs[g.r.IntN(len(piiParagraphs))])
		case pii && g.maybe(0.5):
			b.WriteString(g.fill(g.pick(piiSentences...)))
		default:
			b.WriteString(g.fill(g.pick(proseSentences...)))
		}
		b.WriteString(g.pick(" ", " ", "\n", "\n\n"))
	}
	return b.String()[:size]
}

// benchCorpus returns n distinct documents of size bytes (fixed seed).
func benchCorpus(n, size int, pii bool) []string {
	seed := uint64(size) * 31
	if pii {
		seed++
	}
	g := newGen(seed)
	out := make([]string, n)
	for i := range out {
		out[i] = g.benchDoc(size, pii)
	}
	return out
}

// proseCorpus returns n distinct conversational documents of size bytes.
func proseCorpus(n, size int) []string {
	g := newGen(uint64(size)*31 + 7)
	out := make([]string, n)
	for i := range out {
		out[i] = g.proseDoc(size)
	}
	return out
}

// fuzzCorpus returns the inputs stored under testdata/fuzz/FuzzScan (the
// "go test fuzz v1" format with one string or []byte value).
func fuzzCorpus(t testing.TB) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("testdata", "fuzz", "FuzzScan", "*"))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		lines := strings.SplitN(strings.TrimSpace(string(data)), "\n", 2)
		if len(lines) != 2 || lines[0] != "go test fuzz v1" {
			t.Fatalf("%s: unexpected corpus format", f)
		}
		v := lines[1]
		for _, pfx := range []string{"string(", "[]byte("} {
			if strings.HasPrefix(v, pfx) && strings.HasSuffix(v, ")") {
				s, err := strconv.Unquote(v[len(pfx) : len(v)-1])
				if err != nil {
					t.Fatalf("%s: %v", f, err)
				}
				out = append(out, s)
			}
		}
	}
	if len(out) != len(files) {
		t.Fatalf("read %d of %d corpus files", len(out), len(files))
	}
	return out
}
