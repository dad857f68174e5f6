# Switchyard's routing decision: data.switchyard.decision.
#
# It starts from input.proposal (what the routing table chose), lets an
# optional `reroute` rule replace it, applies the baseline governance of
# governance.rego, then any `deny` rules added by the operator. When nothing
# applies the proposal passes through unchanged.
#
# Extension points for files added next to this one (package switchyard):
#   deny contains {"reason": "...", "status": 403, "message": "..."} if { ... }
#       Deny the request. Checked after the built-in denials; when several
#       match, the one with the smallest reason (string order) is reported.
#   reroute := {"target": "...", "reason": "..."} if { ... }
#       Replace the proposal before governance runs (governance still applies
#       to the new target).
#   config_errors contains "..." if { ... }
#       Refuse to load a config whose policy.data is wrong.
package switchyard

import data.switchyard.governance

# The decision document. See README "Policy contract" for the fields.
decision := {
	"allow": true,
	"target": input.proposal.target,
	"reason": object.get(input.proposal, "reason", ""),
	"headers": {},
} if {
	# The common case, decided without building the full result (quiet
	# implies there is no reroute).
	governance.quiet
	not any_custom_deny
} else := deny_decision(governance.result) if {
	not governance.result.allow
} else := deny_decision(custom_denial) if {
	custom_denial
} else := {
	"allow": true,
	"target": governance.result.target,
	"reason": governance.result.reason,
	"headers": policy_headers(governance.result.rules),
}

deny_decision(d) := {
	"allow": false,
	"reason": d.rule,
	"status": d.status,
	"message": d.message,
	"headers": {"x-switchyard-policy": d.rule},
}

any_custom_deny if data.switchyard.deny[_]

# The operator's denials, as governance-shaped results.
custom_denial := {"rule": pick[0], "status": object.get(pick[1], "status", 403), "message": object.get(pick[1], "message", "")} if {
	ranked := sort([[object.get(x, "reason", "denied"), x] | some x in data.switchyard.deny])
	count(ranked) > 0
	pick := ranked[0]
}

# The proposal governance starts from: the routing table's, or the operator's
# reroute.
proposal := object.union(input.proposal, {"target": data.switchyard.reroute.target, "reason": object.get(data.switchyard.reroute, "reason", "reroute")}) if {
	data.switchyard.reroute.target
} else := input.proposal

policy_headers(rules) := {"x-switchyard-policy": concat(",", rules)} if count(rules) > 0

else := {}

# Configuration checks from every package (see governance.rego).
config_errors contains e if some e in governance.config_errors
