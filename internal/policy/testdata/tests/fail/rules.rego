package acme.rules

allow if input.user == "alice"
