package pii

const (
	maxLocal  = 64
	maxDomain = 253
	maxLabel  = 63
	maxTLD    = 24
)

// fileExtTLDs are "TLDs" that in prompts are almost always file names
// (icon@2x.png, bundle@1.0.js), not mail domains.
var fileExtTLDs = []string{
	"png", "jpg", "jpeg", "gif", "svg", "webp", "ico", "bmp",
	"js", "mjs", "cjs", "ts", "tsx", "jsx", "css", "scss", "map",
	"json", "yaml", "yml", "toml", "lock", "txt", "md", "html", "htm", "xml",
}

var fileExtTLD = func() map[string]bool {
	m := make(map[string]bool, len(fileExtTLDs))
	for _, ext := range fileExtTLDs {
		m[ext] = true
	}
	return m
}()

// email is called at every '@'. It scans back over the local part (at most 64
// bytes) and forward over the domain, and on a match returns the end of the
// domain so the domain's digits are not read again as numbers.
//
// Accepted: local part of A-Z a-z 0-9 . _ % + - (no leading, trailing or
// doubled dot); a domain of at least two labels of A-Z a-z 0-9 - (no label
// starting or ending with '-'), the last an alphabetic TLD of 2-24 letters.
// Rejected: "a@b", "foo@1.2" (numeric TLD), "@scope/pkg", scp-like
// "git@host:path", and file names like "icon@2x.png".
func (st *state) email(t string, i int) int {
	n := len(t)
	ls := i
	for ls > 0 && i-ls < maxLocal && cls[t[ls-1]]&clLocal != 0 {
		ls--
	}
	if ls == i || (ls > 0 && cls[t[ls-1]]&clLocal != 0) {
		return i + 1
	}
	local := t[ls:i]
	if local[0] == '.' || local[len(local)-1] == '.' || containsFold(local, "..") {
		return i + 1
	}
	j := i + 1
	labels, lastStart := 0, j
	for {
		s := j
		for j < n && j-s <= maxLabel && cls[t[j]]&clDomain != 0 {
			j++
		}
		if j == s || j-s > maxLabel || t[s] == '-' || t[j-1] == '-' {
			return i + 1
		}
		if j-(i+1) > maxDomain {
			return i + 1
		}
		labels++
		lastStart = s
		if j+1 < n && t[j] == '.' && cls[t[j+1]]&clDomain != 0 {
			j++
			continue
		}
		break
	}
	if labels < 2 || j-(i+1) > maxDomain {
		return i + 1
	}
	tld := t[lastStart:j]
	if len(tld) < 2 || len(tld) > maxTLD {
		return i + 1
	}
	for k := 0; k < len(tld); k++ {
		if cls[tld[k]]&clAlpha == 0 {
			return i + 1
		}
	}
	var low [maxTLD]byte
	for k := 0; k < len(tld); k++ {
		low[k] = lower(tld[k])
	}
	if fileExtTLD[string(low[:len(tld)])] {
		return i + 1
	}
	if c := at(t, j); c == '@' || c == '_' {
		return i + 1
	}
	if at(t, j) == ':' {
		if c := at(t, j+1); isWord(c) || c == '/' || c == '~' {
			return i + 1
		}
	}
	st.add(tEmail)
	return j
}
