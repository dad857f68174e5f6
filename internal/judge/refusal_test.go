package judge

import (
	"strings"
	"testing"
)

func TestIsRefusal(t *testing.T) {
	refusals := []string{
		"I can't help with that.",
		"I'm sorry, but I can't help with that request.",
		"Sorry — I cannot assist with creating fake invoices.",
		"I’m sorry, but I can’t provide instructions for bypassing the badge readers.",
		"I am unable to provide personal data about employees.",
		"I'm unable to share the contents of that document.",
		"Unfortunately, I'm not able to help with that.",
		"I won't be able to complete this request.",
		"I will not generate that content.",
		"As an AI, I cannot browse the company intranet.",
		"As an AI language model, I'm unable to access your calendar.",
		"I must decline this request.",
		"I can't really help you with that one, sorry.",
		"I cannot in good conscience write that review.",
		"  \n I can't do that. \n",
		"I CAN'T HELP WITH THAT.",
		"Lo siento, pero no puedo ayudarte con eso.",
		"Désolé, mais je ne peux pas vous aider avec cette demande.",
		"Es tut mir leid, aber dabei kann ich nicht helfen.",
		"Leider kann ich Ihnen dabei nicht weiterhelfen.",
		"Desculpe, mas não posso ajudar com isso.",
	}
	for _, s := range refusals {
		if !isRefusal(s) {
			t.Errorf("not detected as a refusal: %q", s)
		}
	}
	answers := []string{
		"",
		"Paris.",
		"I can't help but notice that the retry loop never sleeps; add a backoff.",
		"I can't help it if the vendor changes the API, but pinning the version helps.",
		"I can't wait to see the results! Run `make bench` and share the numbers.",
		"I cannot stress enough how important the index on orders(customer_id) is.",
		"I can't guarantee the exchange rate tomorrow, but today it is 1.08 USD per EUR.",
		"Sure. I can help with that: the total is 42.",
		"You can't assist a process that has already exited; restart it first.",
		"The service cannot provide historical data before 2019.",
		"Hi, can't you just restart the pod?", // "hi can't": no first-person opener at a word boundary
		"As an AI, I don't have opinions, but most teams choose Postgres for this workload.",
		"Ich kann das gern erklären: Die Funktion gibt nil zurück, wenn der Schlüssel fehlt.",
		"No puedo creer lo rápido que es; la respuesta es 12.",
		`{"answer":"I can't help with that"}`,
		// A refusal phrase far into a long answer.
		strings.Repeat("The migration copies each table and verifies the counts. ", 3) + "I can't help with the DNS part.",
		// A long answer that opens with a partial refusal goes on to help.
		"I can't provide the exact figures, but here is how to compute them. " + strings.Repeat("Take the monthly totals, subtract refunds, and divide by active accounts. ", 15),
	}
	for _, s := range answers {
		if isRefusal(s) {
			t.Errorf("detected as a refusal: %q", s)
		}
	}
}

func TestNormalise(t *testing.T) {
	var buf [32]byte
	got := string(normalise(buf[:0], "  I’M\t\n SORRY,  Bud ʼx "))
	if got != "i'm sorry, bud 'x" {
		t.Errorf("normalise = %q", got)
	}
	long := strings.Repeat("ABC ", 20)
	if n := len(normalise(buf[:0], long)); n != 32 {
		t.Errorf("normalise wrote %d bytes into a 32-byte window", n)
	}
}
