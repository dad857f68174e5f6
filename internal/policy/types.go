package policy

import (
	"github.com/switchyard-llm/switchyard/internal/signals"
)

// InputVersion is input.version; bump it on incompatible input changes.
const InputVersion = 1

// Input is the policy input (the Rego `input` document). See README
// "Policy contract". Targets is not here: the engine builds input.targets
// once per config snapshot.
type Input struct {
	Request  Request          `json:"request"`
	Signals  *signals.Signals `json:"signals"`
	Proposal Proposal         `json:"proposal"`
}

// Request is input.request. Headers are lower-case and have secrets removed.
type Request struct {
	Method         string            `json:"method"`
	Path           string            `json:"path"`
	Headers        map[string]string `json:"headers"`
	Tenant         string            `json:"tenant"`
	Model          string            `json:"model"`
	Stream         bool              `json:"stream"`
	MaxTokens      int64             `json:"max_tokens"`
	ResponseFormat string            `json:"response_format"`
	HasTools       bool              `json:"has_tools"`
	MessageCount   int               `json:"message_count"`
	PromptChars    int               `json:"prompt_chars"`
	EstTokens      int               `json:"est_tokens"`
}

// Proposal is input.proposal: what the routing table chose.
type Proposal struct {
	Target string `json:"target"`
	Tier   string `json:"tier"`
	Reason string `json:"reason"`
}

// Decision is the decoded data.switchyard.decision.
type Decision struct {
	Allow   bool              `json:"allow"`
	Target  string            `json:"target"`
	Reason  string            `json:"reason"`
	Status  int               `json:"status"`
	Message string            `json:"message"`
	Headers map[string]string `json:"headers"`
}
