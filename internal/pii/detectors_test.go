package pii

import (
	"fmt"
	"maps"
	"sort"
	"strings"
	"testing"
)

type scanCase struct {
	name string
	text string
	want map[string]int // exact: every type not listed must be absent
}

func runCases(t *testing.T, cases []scanCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := counts(t, tc.text)
			want := tc.want
			if want == nil {
				want = map[string]int{}
			}
			if !maps.Equal(got, want) {
				t.Errorf("Scan(%q)\n got  %v\n want %v", tc.text, got, want)
			}
		})
	}
}

func one(typ string) map[string]int { return map[string]int{typ: 1} }

func TestEmail(t *testing.T) {
	runCases(t, []scanCase{
		{"plain", "write to jane.doe@example.com today", one(Email)},
		{"angle brackets", "From: Ops Team <ops-team+alerts@mail.example.org>", one(Email)},
		{"parentheses and comma", "(contact: help@example.net), thanks", one(Email)},
		{"sentence end", "Send it to billing@example.co.uk.", one(Email)},
		{"quoted json", `{"email":"first_last99@sub.example.io"}`, one(Email)},
		{"mailto", "<a href=\"mailto:someone@example.com\">mail</a>", one(Email)},
		{"digits local", "4155550134@example.com", one(Email)},
		{"two", "a.b@example.com and c.d@example.com", map[string]int{Email: 2}},
		{"no tld", "a@b", nil},
		{"version", "pin foo@1.2 in package.json", nil},
		{"npm version", "install lodash@4.17.21 first", nil},
		{"scoped package", "npm i @types/node", nil},
		{"decorator", "@Override public void run()", nil},
		{"scp git", "git clone git@github.com:org/repo.git", nil},
		{"retina asset", "use icon@2x.png for hi-dpi", nil},
		{"localhost", "ssh admin@localhost", nil},
		{"double dot", "x..y@example.com", nil},
		{"leading dot local", ".x@example.com", nil},
		{"hyphen label", "x@-example.com", nil},
		{"numeric tld", "user@10.0.0.1", one(IPv4)},
		{"url userinfo is not email", "ssh://git@example.com/repo", nil},
	})
}

func TestCreditCard(t *testing.T) {
	runCases(t, []scanCase{
		{"visa", "card 4111111111111111 exp 12/30", one(CreditCard)},
		{"visa spaced", "card: 4111 1111 1111 1111.", one(CreditCard)},
		{"visa dashed", "4242-4242-4242-4242", one(CreditCard)},
		{"mastercard", "5555555555554444", one(CreditCard)},
		{"mastercard 2-series", "2223003122003222", one(CreditCard)},
		{"amex grouped", "Amex 3782 822463 10005", one(CreditCard)},
		{"amex", "378282246310005", one(CreditCard)},
		{"discover", "6011111111111117", one(CreditCard)},
		{"jcb", "3530111333300000", one(CreditCard)},
		{"diners 14", "30569309025904", one(CreditCard)},
		{"unionpay", "6200000000000005", one(CreditCard)},
		{"in parens", "(4000056655665556)", one(CreditCard)},
		{"after label equals", "card=4111111111111111;", one(CreditCard)},
		{"generated visa 19", luhnComplete("411111111111111111"), one(CreditCard)},
		{"two cards", "4111111111111111 and 5555555555554444", map[string]int{CreditCard: 2}},
		{"luhn invalid", "4111111111111112", nil},
		{"luhn invalid spaced", "4111 1111 1111 1121", nil},
		{"unknown issuer", "1234567812345670", nil},         // Luhn-valid, no IIN
		{"order id 13", "order 1234567890123 shipped", nil}, // no separators, no IIN
		{"mixed separators", "4111 1111-1111 1111", nil},
		{"amex wrong length", "37828224631000", nil},
		{"too long", "41111111111111111111", nil},
		{"inside identifier", "tx_4111111111111111", nil},
		{"inside word", "ref4111111111111111", nil},
		{"followed by letters", "4111111111111111abc", nil},
		{"part of dotted", "1.4111111111111111", nil},
	})
}

func TestSSN(t *testing.T) {
	runCases(t, []scanCase{
		{"dashed", "SSN 123-45-6789 on file", one(SSN)},
		{"spaced", "number 219 09 9999", one(SSN)},
		{"bare with keyword", "ssn: 123456789", one(SSN)},
		{"bare with phrase", "Social Security No. 234567890", one(SSN)},
		{"area 000", "000-12-3456", nil},
		{"area 666", "666-12-3456", nil},
		{"area 900", "900-12-3456", nil},
		{"area 999", "999-12-3456", nil},
		{"group 00", "123-00-4567", nil},
		{"serial 0000", "123-45-0000", nil},
		{"bare no keyword", "reference 123456789 attached", nil},
		{"bare keyword too far", "ssn" + strings.Repeat(" filler", 6) + " 123456789", nil},
		{"bare invalid area with keyword", "SSN 666123456", nil},
		{"mixed separators", "123-45 6789", nil},
		{"extra group", "123-45-6789-01", nil},
		{"inside identifier", "id_123-45-6789", nil},
	})
}

func TestPhone(t *testing.T) {
	runCases(t, []scanCase{
		{"nanp parens", "call (415) 555-0134 now", one(Phone)},
		{"nanp parens no space", "(415)555-0134", one(Phone)},
		{"nanp dashes", "415-555-0134", one(Phone)},
		{"nanp dots", "415.555.0134", one(Phone)},
		{"nanp spaces", "415 555 0134", one(Phone)},
		{"nanp trunk", "1-800-555-0199", one(Phone)},
		{"nanp trunk parens", "1 (212) 555-0123", one(Phone)},
		{"plus one spaced", "+1 415 555 0134", one(Phone)},
		{"plus one dashed", "+1-415-555-0134", one(Phone)},
		{"plus one parens", "+1 (415) 555-0134", one(Phone)},
		{"plus one compact", "tel:+14155550134", one(Phone)},
		{"uk", "+44 20 7946 0958", one(Phone)},
		{"uk trunk in parens", "+44 (0)20 7946 0958", one(Phone)},
		{"germany", "Tel. +49 30 901820", one(Phone)},
		{"france", "+33 1 23 45 67 89", one(Phone)},
		{"two", "415-555-0134 or 415-555-0135", map[string]int{Phone: 2}},
		{"after time", "at 10:30 415-555-0134", one(Phone)},
		{"area starts 1", "115-555-0134", nil},
		{"exchange starts 0", "415-055-0134", nil},
		{"area n11", "911-555-0134", nil},
		{"area x9x", "595-555-0134", nil},
		{"bare ten digits", "4155550134", nil},
		{"order id", "order 1234567890123", nil},
		{"date iso", "released 2024-01-15", nil},
		{"date us", "due 12/31/2024", nil},
		{"date dots", "am 15.01.2024", nil},
		{"time", "12:30:45", nil},
		{"version", "go 1.26.8", nil},
		{"card digits", "4111 1111 1111 1111", one(CreditCard)},
		{"mixed nanp separators", "415-555.0134", nil},
		{"plus too short", "+49 301", nil},
		{"plus too long", "+49 3012 3456 7890 1234", nil},
		{"plus country zero", "+0 415 555 0134", nil},
		{"plus one invalid nanp", "+1 115 555 0134", nil},
		{"math", "x = 5 + 12", nil},
		{"range", "pages 415-555", nil},
	})
}

func TestIPv4(t *testing.T) {
	runCases(t, []scanCase{
		{"doc net", "ping 192.0.2.1 please", one(IPv4)},
		{"port", "connect to 198.51.100.23:8080", one(IPv4)},
		{"cidr", "allow 203.0.113.0/24", one(IPv4)},
		{"assignment", "host=10.0.0.1", one(IPv4)},
		{"url", "http://192.168.1.20/admin", one(IPv4)},
		{"sentence end", "The server is 172.16.5.4.", one(IPv4)},
		{"two", "192.0.2.1, 192.0.2.2", map[string]int{IPv4: 2}},
		{"octet too big", "256.1.1.1", nil},
		{"three parts", "1.2.3", nil},
		{"five parts", "1.3.6.1.4.1", nil},
		{"leading zero", "192.168.01.1", nil},
		{"version word", "version 1.2.3.4", nil},
		{"version colon", "Version: 10.0.19.41", nil},
		{"v prefix", "v1.2.3.4", nil},
		{"unspecified", "listen 0.0.0.0:80", nil},
		{"netmask", "mask 255.255.255.0", nil},
		{"inside word", "abc1.2.3.4", nil},
	})
}

func TestIPv6(t *testing.T) {
	runCases(t, []scanCase{
		{"compressed", "ping 2001:db8::1 now", one(IPv6)},
		{"full", "addr 2001:0db8:85a3:0000:0000:8a2e:0370:7334", one(IPv6)},
		{"link local", "fe80::1ff:fe23:4567:890a", one(IPv6)},
		{"v4 mapped", "::ffff:192.0.2.128", one(IPv6)},
		{"bracketed port", "[2001:db8::2]:443", one(IPv6)},
		{"sentence end", "Use 2001:db8:0:1::5.", one(IPv6)},
		{"zone", "fe80::1:2%eth0", one(IPv6)},
		{"time", "at 12:30:45 UTC", nil},
		{"mac", "00:1a:2b:3c:4d:5e", nil},
		{"cpp scope", "std::vector<int>", nil},
		{"hex scope no digit", "Add::Bed::Cafe", nil},
		{"loopback short", "::1", nil},
		{"unspecified", "::", nil},
		{"two doubles", "2001:db8::1::2", nil},
		{"group too long", "2001:db8::12345", nil},
		{"seven groups", "1:2:3:4:5:6:7", nil},
	})
}

func TestIBAN(t *testing.T) {
	runCases(t, []scanCase{
		{"gb electronic", "IBAN GB82WEST12345698765432", one(IBAN)},
		{"de electronic", "DE89370400440532013000", one(IBAN)},
		{"gb print", "pay GB82 WEST 1234 5698 7654 32 today", one(IBAN)},
		{"de print", "DE89 3704 0044 0532 0130 00.", one(IBAN)},
		{"fr with letter", "FR1420041010050500013M02606", one(IBAN)},
		{"nl", "(NL91ABNA0417164300)", one(IBAN)},
		{"wrong check digit", "GB83WEST12345698765432", nil},
		{"wrong check digit de", "DE88370400440532013000", nil},
		{"too short for country", "DE8937040044053201300", nil},
		{"too long for country", "DE893704004405320130001", nil},
		{"unknown country", "ZZ82WEST12345698765432", nil},
		{"lower case", "gb82west12345698765432", nil},
		{"bad grouping", "GB82 WEST 12345698765432", nil},
		{"check digits 99", "GB99WEST12345698765432", nil},
		{"inside identifier", "x_GB82WEST12345698765432", nil},
	})
}

// TestIBANAllCountries generates a valid IBAN for every registry country, in
// both forms, and checks that a corrupted check digit and a wrong length are
// rejected.
func TestIBANAllCountries(t *testing.T) {
	g := newGen(7)
	ccs := make([]string, 0, len(ibanLengths))
	for cc := range ibanLengths {
		ccs = append(ccs, cc)
	}
	sort.Strings(ccs)
	for _, cc := range ccs {
		l := int(ibanLengths[cc])
		t.Run(cc, func(t *testing.T) {
			bban := g.str(alphaUpper, 4) + g.digitsN(l-8)
			iban := ibanWith(cc, bban)
			if len(iban) != l {
				t.Fatalf("generator length %d, want %d", len(iban), l)
			}
			for _, form := range []string{iban, groupBy4(iban)} {
				if got := counts(t, "acct "+form+" ok"); got[IBAN] != 1 {
					t.Errorf("%s: got %v, want one iban", form, got)
				}
			}
			bad := []byte(iban)
			bad[3] = '0' + (bad[3]-'0'+1)%10
			if got := counts(t, string(bad)); got[IBAN] != 0 {
				t.Errorf("corrupt check digit %s: got %v", bad, got)
			}
			if got := counts(t, ibanWith(cc, bban+"7")); got[IBAN] != 0 {
				t.Errorf("length %d accepted for %s: %v", l+1, cc, got)
			}
		})
	}
}

func TestAPIKey(t *testing.T) {
	g := newGen(11)
	keys := map[string]string{
		"openai legacy":   "sk-" + g.str(alnum, 48),
		"openai project":  "sk-proj-" + g.str(b64url, 120),
		"anthropic":       "sk-ant-api03-" + g.str(b64url, 93) + "AA",
		"github classic":  "ghp_" + g.str(alnum, 36),
		"github oauth":    "gho_" + g.str(alnum, 36),
		"github fine":     "github_pat_" + g.str(alnum, 22) + "_" + g.str(alnum, 59),
		"gitlab":          "glpat-" + g.str(b64url, 20),
		"slack bot":       "xoxb-" + g.digitsN(12) + "-" + g.digitsN(13) + "-" + g.str(alnum, 24),
		"slack user":      "xoxp-" + g.digitsN(12) + "-" + g.digitsN(12) + "-" + g.str(alnum, 32),
		"aws access key":  "AKIA" + g.str(alphaUpper+"234567", 16),
		"aws session key": "ASIA" + g.str(alphaUpper+"234567", 16),
		"google":          "AIza" + g.str(b64url, 35),
		"stripe live":     "sk_live_" + g.str(alnum, 24),
		"stripe rk":       "rk_live_" + g.str(alnum, 24),
		"huggingface":     "hf_" + g.str(alphaUpper+alphaLower, 34),
		"npm":             "npm_" + g.str(alnum, 36),
		"sendgrid":        "SG." + g.str(b64url, 22) + "." + g.str(b64url, 43),
		"digitalocean":    "dop_v1_" + g.str(hexLower, 64),
		"shopify":         "shpat_" + g.str(hexLower, 32),
	}
	var cases []scanCase
	for name, k := range keys {
		cases = append(cases,
			scanCase{name, "my key is " + k + ".", one(APIKey)},
			scanCase{name + " in code block", "```bash\nexport TOKEN_VALUE=\"" + k + "\"\ncurl -H \"x: " + k + "\" https://api.example.com\n```", map[string]int{APIKey: 2}},
		)
	}
	cases = append(cases,
		scanCase{"env assignment counts key not secret", "OPENAI_API_KEY=" + keys["openai project"], one(APIKey)},
		scanCase{"bearer header", "Authorization: Bearer " + keys["openai legacy"], one(APIKey)},
		scanCase{"sklearn", "import sk-learn style pipelines", nil},
		scanCase{"placeholder x", "sk-xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx", nil},
		scanCase{"placeholder low variety", "sk-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa1", nil},
		scanCase{"aws documented example", "AKIAIOSFODNN7EXAMPLE", nil},
		scanCase{"github too short", "ghp_" + g.str(alnum, 35), nil},
		scanCase{"github too long", "ghp_" + g.str(alnum, 37), nil},
		scanCase{"aws too long", "AKIA" + g.str(alphaUpper+"234567", 17), nil},
		scanCase{"aws lower case", "AKIA" + strings.ToLower(g.str(alphaUpper, 16)), nil},
		scanCase{"prefix mid word", "disk-" + g.str(alnum, 30), nil},
		scanCase{"identifier prefix", "my_ghp_" + g.str(alnum, 36), nil},
		scanCase{"stripe test key is not reported", "sk_test_" + g.str(alnum, 24), nil},
		scanCase{"kebab words", "task-runner-component-library-v2-beta", nil},
	)
	runCases(t, cases)
}

func TestPrivateKey(t *testing.T) {
	g := newGen(13)
	var cases []scanCase
	for _, label := range []string{"RSA PRIVATE KEY", "EC PRIVATE KEY", "OPENSSH PRIVATE KEY", "PRIVATE KEY", "ENCRYPTED PRIVATE KEY", "DSA PRIVATE KEY", "PGP PRIVATE KEY BLOCK"} {
		cases = append(cases, scanCase{label, "here is my key:\n" + g.pemBlock(label, 6) + "\nwhy does ssh reject it?", one(PrivateKey)})
	}
	encrypted := "-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-128-CBC,3F2A9C1E5D7B4A60\n\n" +
		g.pemBlock("X", 4)[len("-----BEGIN X-----\n"):]
	cases = append(cases,
		scanCase{"legacy encrypted headers", encrypted, one(PrivateKey)},
		scanCase{"truncated body", "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmU...", one(PrivateKey)},
		scanCase{"json escaped newlines", `{"private_key": "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7\n-----END PRIVATE KEY-----\n"}`, one(PrivateKey)},
		scanCase{"two blocks", g.pemBlock("RSA PRIVATE KEY", 3) + "\n" + g.pemBlock("EC PRIVATE KEY", 2), map[string]int{PrivateKey: 2}},
		scanCase{"public key", g.pemBlock("PUBLIC KEY", 4), nil},
		scanCase{"certificate", g.pemBlock("CERTIFICATE", 4), nil},
		scanCase{"header only in prose", "A PEM file starts with -----BEGIN RSA PRIVATE KEY----- and then base64 lines.", nil},
		scanCase{"markdown rule", "-----\n-----BEGIN", nil},
	)
	runCases(t, cases)
}

func TestJWT(t *testing.T) {
	g := newGen(17)
	tok := makeJWT(`{"alg":"HS256","typ":"JWT"}`, `{"sub":"1234567890","name":"Test User","iat":1700000000}`, g.str(b64url, 43))
	none := makeJWT(`{"typ":"JWT","alg":"none"}`, `{"sub":"42"}`, "")
	runCases(t, []scanCase{
		{"hs256", "token " + tok + " expired", one(JWT)},
		{"alg none empty signature", none + " is unsigned", one(JWT)},
		{"bearer header", "Authorization: Bearer " + tok, one(JWT)},
		{"cookie", "Cookie: session=" + tok + "; Path=/", one(JWT)},
		{"json value", `{"access_token":"` + tok + `"}`, one(JWT)},
		{"header without alg", makeJWT(`{"typ":"JWT"}`, `{"sub":"1"}`, g.str(b64url, 43)), nil},
		{"header not json", makeJWT(`{not json but no alg`, `{"sub":"1"}`, "abc"), nil},
		{"one segment", "eyJhbGciOiJIUzI1NiJ9", nil},
		{"two segments", "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0", nil},
		{"five segments jwe", tok + "." + g.str(b64url, 20) + "." + g.str(b64url, 20), nil},
	})
}

func TestSecret(t *testing.T) {
	g := newGen(19)
	awsSecret := g.str(alnum+"/+", 40)
	runCases(t, []scanCase{
		{"python", `password = "Tr0ub4dor&3xQ"`, one(Secret)},
		{"env", "DB_PASSWORD=pK9#vLq2!zR8", one(Secret)},
		{"json", `{"client_secret": "q8Zr2mVx7NwPe4Ls"}`, one(Secret)},
		{"yaml", "auth:\n  token: 9f8e7d6c5b4a39281706f5e4d3c2b1a0\n", one(Secret)},
		{"aws secret", "aws_secret_access_key = " + awsSecret, one(Secret)},
		{"go", `apiKey := "Zt4" + "x"`, nil}, // too short, and concatenation
		{"go literal", `signingKey := "m2Q9vX7pL4rT8wZ1"`, one(Secret)},
		{"bearer opaque", "Authorization: Bearer a8f5f167f44f4964e6c998dee827110c", one(Secret)},
		{"header dashes", "X-Api-Key: 7hQ2mZ9pLx4vR8tW", one(Secret)},
		{"dotted name", "spring.datasource.password=Qm7!xZ2vLp9#", one(Secret)},
		{"ado connection string", "Server=db;Database=app;User Id=sa;Password=Xq7#mP2vL9;", one(Secret)},
		{"postgres url", "postgres://app:S3cr3tP4ssw9@db.internal:5432/app", one(Secret)},
		{"mongodb url", "mongodb+srv://admin:hK8s2Lq9Zp@cluster0.example.net/test", one(Secret)},
		{"redis url host ip", "redis://:Zq8vL2mX9p@10.0.0.5:6379", map[string]int{Secret: 1, IPv4: 1}},
		{"ruby hash rocket", `:password => 'V9x!mQ2#pL7z'`, one(Secret)},
		{"env reference", "password: ${DB_PASSWORD}", nil},
		{"function call", `password = os.getenv("DB_PASSWORD")`, nil},
		{"attribute reference", "password = settings.DB_PASS", nil},
		{"template", `token: "{{ .Values.token }}"`, nil},
		{"placeholder your", `api_key = "YOUR_API_KEY_HERE"`, nil},
		{"placeholder stars", "password: ********", nil},
		{"placeholder word", `password = "password123"`, nil},
		{"placeholder angle", "password=<your-password>", nil},
		{"short", "password: hunter2", nil},
		{"low entropy", "pass: aaaaaaaaaaaa1", nil},
		{"max tokens", "max_tokens: 4096", nil},
		{"tokenizer", `tokenizer = "bert-base-uncased-v2"`, nil},
		{"token url", "token_url: https://login.example.com/oauth2/v2.0/token", nil},
		{"secret name metadata", "secret_name: prod-db-secret-2024", nil},
		{"comparison", `if password == "Tr0ub4dor&3xQ" {`, nil},
		{"prose", "The password policy requires 12 characters.", nil},
		{"url default creds", "postgres://postgres:postgres@localhost:5432/app", nil},
		{"url placeholder", "postgres://user:password@host:5432/db", nil},
		{"url no password", "https://user@example.com/path", nil},
		{"url env password", "mysql://root:${MYSQL_PWD}@db/app", nil},
		{"author is not auth", `author: "Jonathan Livingston"`, nil},
		{"english value", "token: Refreshed", nil},
		{"digits only", "pin_secret = 12345678901", nil},
	})
}

func TestJSONEscapes(t *testing.T) {
	runCases(t, []scanCase{
		{"newline escape before card", `{"note":"card:\n4111111111111111"}`, one(CreditCard)},
		{"tab escape before phone", `"call\t415-555-0134"`, one(Phone)},
		{"newline escape before iban", `"iban\nGB82WEST12345698765432"`, one(IBAN)},
		{"newline escape before email", `"to\njane@example.com"`, one(Email)},
		{"latex command is not an escape boundary", `\newcommand4111111111111111`, nil},
	})
}

func TestMixedDocument(t *testing.T) {
	g := newGen(23)
	key := "ghp_" + g.str(alnum, 36)
	text := fmt.Sprintf(`Hi support,

My name is Test User (test.user@example.com, +1 415 555 0134). I was charged twice on
card 4242 4242 4242 4242; please refund to IBAN DE89 3704 0044 0532 0130 00.
Our CI broke after rotating %s, logs show requests from 203.0.113.7 and 2001:db8::7.
Version 1.4.2.1 of the agent, build 2024-06-01, ticket #1234567890123.
`, key)
	want := map[string]int{Email: 1, Phone: 1, CreditCard: 1, IBAN: 1, APIKey: 1, IPv4: 1, IPv6: 1}
	runCases(t, []scanCase{{"support mail", text, want}})
}
