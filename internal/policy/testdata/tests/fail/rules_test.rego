package acme.rules_test

import data.acme.rules

test_alice_allowed if rules.allow with input as {"user": "alice"}

test_bob_allowed_wrongly if {
	print("checking bob")
	rules.allow with input as {"user": "bob"}
}

# A conflict at evaluation: two values for one complete rule.
test_errors if conflict == 1 with input as {"x": 1}

conflict := 1 if input.x == 1

conflict := 2 if input.x == 1

todo_test_later if false
