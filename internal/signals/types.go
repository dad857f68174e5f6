package signals

import (
	"github.com/switchyard-llm/switchyard/internal/pii"
	"github.com/switchyard-llm/switchyard/internal/signals/injection"
)

// Classifier sources reported in Signals.Classifier.
const (
	SourceEmbedded = "embedded"
	SourceLLM      = "llm"
	SourceCache    = "cache"
)

// UnknownIntent is reported when no intent reaches the confidence threshold.
const UnknownIntent = "unknown"

// Signals is what Switchyard knows about one request. It is part of the
// policy input contract (input.signals); JSON names are stable.
type Signals struct {
	Intent           string   `json:"intent"`
	IntentConfidence float64  `json:"intent_confidence"`
	Complexity       float64  `json:"complexity"`
	Keywords         []string `json:"keywords"` // signal names of matched keyword rules, sorted, unique
	// KeywordRules are the names of the matched keyword rules
	// (routing.keywords keys), sorted; routing applies their targets.
	KeywordRules []string         `json:"keyword_rules"`
	PII          []pii.Finding    `json:"pii"` // sorted by type
	Injection    injection.Result `json:"injection"`
	Classifier   string           `json:"classifier"` // embedded | llm | cache

	// Text statistics of what the classifiers saw.
	PromptChars  int  `json:"prompt_chars"`  // characters of text extracted (before truncation)
	EstTokens    int  `json:"est_tokens"`    // estimated input tokens of the whole request
	SkippedParts int  `json:"skipped_parts"` // multimodal parts skipped
	Truncated    bool `json:"truncated"`     // text was cut to the classifier limit
}

// Reset clears s for reuse, keeping slice capacity.
func (s *Signals) Reset() {
	*s = Signals{
		Keywords:     s.Keywords[:0],
		KeywordRules: s.KeywordRules[:0],
		PII:          s.PII[:0],
		Injection:    injection.Result{Matched: s.Injection.Matched[:0]},
	}
}
