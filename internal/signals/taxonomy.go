package signals

// IntentDescriptions says in one line what belongs to each intent of
// config.Intents. It is the taxonomy the shipped examples follow, the list
// the LLM classifier is shown, and what README "Signals" documents.
var IntentDescriptions = map[string]string{
	"chitchat":  "greetings, thanks, small talk and social conversation with the assistant",
	"summarize": "condense given text (article, thread, notes, transcript) into a shorter summary, gist or key points",
	"rewrite":   "rephrase, edit, proofread, shorten or change the tone or style of given text",
	"classify":  "assign labels, categories, sentiment, priority or yes/no judgements to given items",
	"extract":   "pull specific fields, entities or values out of given text, often into JSON or a table",
	"translate": "convert text between human languages, or ask what a foreign phrase means",
	"code":      "write, explain, debug, review or refactor code, queries, regexes, configs and shell commands",
	"math":      "calculations, equations, proofs, statistics and other quantitative problems",
	"reasoning": "multi-step analysis, planning, trade-offs, decisions, diagnosis and logic puzzles",
	"legal":     "contracts, laws, regulation, compliance, rights and legal procedure",
	"creative":  "stories, poems, jokes, lyrics, slogans, names and other imaginative writing",
	"qa":        "factual questions and explanations of concepts, things and how they work",
}
