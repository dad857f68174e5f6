package acme.bad

allow if {
	input.user ==
}
