package e2e

import (
	"context"
	"fmt"
	"hash/fnv"
	"math"
	"net/http"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/openai/openai-go/v3/option"
	"github.com/tidwall/gjson"

	"github.com/switchyard-llm/switchyard/test/fakeprovider"
)

// The savings run: 1,000 requests over six kinds of work, written for this
// suite, through envoysim with providers that report realistic usage; the
// savings figure is read back from Switchyard's own metrics
// (1 - switchyard_cost_usd_total / switchyard_baseline_cost_usd_total).

type category struct {
	name     string
	share    int      // requests per 100
	json     bool     // JSON-mode request (extraction)
	outMin   int      // completion tokens, min..max by prompt hash
	outMax   int      // (the fake provider reports these as usage)
	prompts  []string // templates; %s is filled from fills
	fills    []string
	streamed int // every n-th request of the category streams (0: none)
}

var categories = []category{
	{name: "chit-chat", share: 26, outMin: 20, outMax: 90, streamed: 5, prompts: []string{
		"hello! how is your day going? I just got back from %s.",
		"Thanks, that was helpful! Any plans for %s?",
		"What is a good name for a pet turtle that loves %s?",
		"Tell me a fun fact about %s.",
		"Good morning! Recommend a podcast about %s.",
	}, fills: []string{"the beach", "the weekend", "lettuce", "octopuses", "gardening", "the mountains", "jazz", "old trains"}},
	{name: "summaries", share: 20, outMin: 80, outMax: 180, prompts: []string{
		"Summarize this meeting transcript in three bullet points: the team agreed to ship %s on Friday, QA found two bugs, marketing wants a demo.",
		"Give me a two-sentence summary of the plot of a heist movie where a librarian steals %s.",
		"Summarize the following update for a newsletter: our office moved to a new building near %s and the cafeteria now opens at 8.",
		"TL;DR this note: the vendor delayed delivery of %s by two weeks because of a customs inspection.",
	}, fills: []string{"the billing page", "a rare atlas", "the river", "the new laptops", "the search feature", "the harbour"}},
	{name: "code", share: 14, outMin: 300, outMax: 700, prompts: []string{
		"Write a Python function that merges two sorted lists of %s.",
		"Write a Go function that reverses a singly linked list of %s in place.",
		"Fix this JavaScript bug: the loop over %s never terminates when the array is empty.",
		"Write a SQL query that returns the top 5 customers by revenue from the %s table.",
	}, fills: []string{"integers", "orders", "user records", "invoices", "events"}},
	{name: "maths", share: 10, outMin: 150, outMax: 450, prompts: []string{
		"Solve for x: %sx + 7 = 22, and show each step.",
		"Compute the derivative of x^%s * sin(x).",
		"Prove that the sum of the first %s odd numbers is a perfect square.",
	}, fills: []string{"3", "4", "5", "7", "9"}},
	{name: "legal", share: 12, outMin: 250, outMax: 550, prompts: []string{
		"Review this contract clause for liability risks: The supplier shall indemnify the buyer against all claims about %s.",
		"Is this non-compete clause enforceable in California? Employee shall not work for competitors in %s for 2 years.",
		"Explain the termination for convenience clause in our agreement covering %s.",
	}, fills: []string{"software licences", "logistics", "cloud hosting", "consulting", "hardware"}},
	{name: "extraction", share: 18, json: true, outMin: 40, outMax: 120, prompts: []string{
		"Extract the invoice number, date and total as JSON from: Invoice INV-%s dated 2024-03-14, total 1,250.00 EUR.",
		"Pull out all email addresses and phone numbers from this text into a JSON list: contact desk %s or call the office.",
		"Extract the sender, recipient and amount as JSON from this transfer note: payment %s from Ana to Bo, 300 USD.",
	}, fills: []string{"2291", "3310", "4802", "5127", "6644", "7001"}},
}

type savingsReq struct {
	cat    *category
	prompt string
	stream bool
}

// savingsPlan is the deterministic request mix: n requests in proportion to
// each category's share, prompts rotating through templates and fills.
func savingsPlan(n int) []savingsReq {
	total := 0
	for _, c := range categories {
		total += c.share
	}
	var plan []savingsReq
	for ci := range categories {
		c := &categories[ci]
		k := n * c.share / total
		for i := range k {
			p := fmt.Sprintf(c.prompts[i%len(c.prompts)], c.fills[(i/len(c.prompts))%len(c.fills)])
			plan = append(plan, savingsReq{cat: c, prompt: p, stream: c.streamed > 0 && i%c.streamed == 0})
		}
	}
	for i := 0; len(plan) < n; i++ { // rounding: top up with chit-chat
		c := &categories[0]
		plan = append(plan, savingsReq{cat: c, prompt: fmt.Sprintf(c.prompts[i%len(c.prompts)], "rounding"), stream: false})
	}
	// Interleave deterministically so every tier sees traffic throughout.
	out := make([]savingsReq, 0, n)
	for stride := 0; stride < 7; stride++ {
		for i := stride; i < len(plan); i += 7 {
			out = append(out, plan[i])
		}
	}
	return out
}

func hashOf(s string) uint32 {
	h := fnv.New32a()
	h.Write([]byte(s))
	return h.Sum32()
}

// savingsScript answers by prompt: usage in the category's range, and on
// the cascade's cheap model one extraction answer in eight is not JSON (so
// the judge escalates it to the strong model).
func savingsScript(byPrompt map[string]*category, cheapModel string) fakeprovider.Script {
	return fakeprovider.Script{Func: func(r fakeprovider.Request) (fakeprovider.Behavior, bool) {
		prompt := gjson.GetBytes(r.Body, "messages.0.content").String()
		c := byPrompt[prompt]
		if c == nil {
			return fakeprovider.Behavior{}, false
		}
		hv := hashOf(prompt)
		out := c.outMin + int(hv%uint32(c.outMax-c.outMin+1))
		b := fakeprovider.Behavior{CompletionTokens: out, Content: "Here is my answer about " + c.name + "."}
		if c.json {
			b.Content = `{"answer":"` + c.name + `","ok":true}`
			if r.Model == cheapModel && hv%8 == 0 {
				b.Content = `{"answer": "` + c.name
			}
		}
		if r.Stream {
			b.StreamChunks = strings.SplitAfter(b.Content, " ")
		}
		return b, true
	}}
}

// testSavings sends the 1,000-request mix and prints the savings measured
// from Switchyard's metrics, split by tier.
func testSavings(t *testing.T, h *harness) {
	const n = 1000
	plan := savingsPlan(n)
	byPrompt := map[string]*category{}
	for _, r := range plan {
		byPrompt[r.prompt] = r.cat
	}
	cheapModel, _ := h.model("small-a")
	scripts := map[string]fakeprovider.Script{}
	for name := range h.providers {
		scripts[name] = savingsScript(byPrompt, cheapModel)
	}
	h.reset(scripts)
	before := h.scrape()
	logsBefore := len(h.sim.logs.entries())

	start := time.Now()
	var mu sync.Mutex
	failures := map[string]int{}
	catTargets := map[string]map[string]int{}
	jobs := make(chan savingsReq)
	var wg sync.WaitGroup
	for range 4 { // workers; the shared 2-core machine runs other packages too
		wg.Add(1)
		go func() {
			defer wg.Done()
			for r := range jobs {
				target, err := sendSavings(h, r)
				mu.Lock()
				if err != nil {
					failures[err.Error()]++
				} else {
					if catTargets[r.cat.name] == nil {
						catTargets[r.cat.name] = map[string]int{}
					}
					catTargets[r.cat.name][target]++
				}
				mu.Unlock()
			}
		}()
	}
	for _, r := range plan {
		jobs <- r
	}
	close(jobs)
	wg.Wait()
	took := time.Since(start)
	if len(failures) > 0 {
		t.Fatalf("failed requests: %v", failures)
	}
	after := h.scrape()

	// The split by tier from the metrics: requests by tier; cost and
	// baseline by target, mapped to the target's tier.
	reqs := map[string]float64{}
	for tier, v := range after.by("switchyard_requests_total", "tier", map[string]string{"outcome": "routed"}) {
		if d := v - before.by("switchyard_requests_total", "tier", map[string]string{"outcome": "routed"})[tier]; d != 0 {
			reqs[tier] = d
		}
	}
	tierOf := func(target string) string {
		ti, ok := h.snap.Target(target)
		if !ok {
			t.Fatalf("metrics name unknown target %q", target)
		}
		return ti.Tier
	}
	cost, base := map[string]float64{}, map[string]float64{}
	for target, v := range after.by("switchyard_cost_usd_total", "target", nil) {
		cost[tierOf(target)] += v - before.by("switchyard_cost_usd_total", "target", nil)[target]
	}
	for target, v := range after.by("switchyard_baseline_cost_usd_total", "target", nil) {
		base[tierOf(target)] += v - before.by("switchyard_baseline_cost_usd_total", "target", nil)[target]
	}
	escalations := delta(before, after, "switchyard_escalations_total", nil)

	var tiers []string
	var totalReq, totalCost, totalBase float64
	for tier := range reqs {
		tiers = append(tiers, tier)
		totalReq += reqs[tier]
		totalCost += cost[tier]
		totalBase += base[tier]
	}
	sort.Strings(tiers)
	if totalReq != n {
		t.Fatalf("switchyard_requests_total counted %v routed requests, sent %d", totalReq, n)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "savings run: %d requests in %v, %v cascade escalations\n", n, took.Round(time.Millisecond), escalations)
	fmt.Fprintf(&b, "%-11s %8s %12s %14s %8s\n", "tier", "requests", "cost_usd", "baseline_usd", "savings")
	for _, tier := range tiers {
		fmt.Fprintf(&b, "%-11s %8.0f %12.6f %14.6f %7.1f%%\n", tier, reqs[tier], cost[tier], base[tier], 100*(1-cost[tier]/base[tier]))
	}
	savings := 1 - totalCost/totalBase
	fmt.Fprintf(&b, "%-11s %8.0f %12.6f %14.6f %7.1f%%\n", "total", totalReq, totalCost, totalBase, 100*savings)
	cats := make([]string, 0, len(catTargets))
	for c := range catTargets {
		cats = append(cats, c)
	}
	sort.Strings(cats)
	for _, c := range cats {
		fmt.Fprintf(&b, "  %-11s -> %v\n", c, catTargets[c])
	}
	t.Log("\n" + b.String())

	// The metrics agree with the per-request accounting in the access logs.
	var logCost, logBase float64
	for _, e := range h.sim.logs.entries()[logsBefore:] {
		md := e.DynamicMetadata["switchyard"]
		c, ok1 := md["cost_usd"].(float64)
		bl, ok2 := md["baseline_usd"].(float64)
		if !ok1 || !ok2 {
			t.Fatalf("request %s has no cost in its access log: %v", e.RequestID, md)
		}
		logCost += c
		logBase += bl
	}
	if math.Abs(logCost-totalCost) > 1e-9 || math.Abs(logBase-totalBase) > 1e-9 {
		t.Fatalf("access logs say cost %v baseline %v, metrics %v %v", logCost, logBase, totalCost, totalBase)
	}
	if !(savings > 0 && savings < 1) || escalations == 0 {
		t.Fatalf("savings %v escalations %v", savings, escalations)
	}
	for _, tier := range tiers {
		if cost[tier] > base[tier] {
			t.Errorf("tier %s cost more than the baseline", tier)
		}
	}
}

// sendSavings sends one request of the mix through the SDK and returns the
// target Switchyard chose.
func sendSavings(h *harness, r savingsReq) (string, error) {
	p := userChat("auto", r.prompt)
	if r.cat.json {
		p = jsonModeChat(r.prompt)
	}
	var resp *http.Response
	if r.stream {
		stream := h.client.Chat.Completions.NewStreaming(context.Background(), p, option.WithResponseInto(&resp))
		for stream.Next() {
		}
		err := stream.Err()
		_ = stream.Close()
		if err != nil {
			return "", err
		}
	} else {
		out, err := h.client.Chat.Completions.New(context.Background(), p, option.WithResponseInto(&resp))
		if err != nil {
			return "", err
		}
		if len(out.Choices) == 0 {
			return "", fmt.Errorf("no choices")
		}
	}
	return resp.Header.Get("x-switchyard-target"), nil
}
