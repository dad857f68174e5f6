# Tests for routing.rego: the decision's shape and the extension points
# (deny, reroute) operators use to add their own rules.
package switchyard_test

import data.switchyard
import data.switchyard.governance_test.base
import data.switchyard.governance_test.cfg
import data.switchyard.governance_test.with_pii

decide(inp) := d if {
	d := switchyard.decision with input as inp
		with data.switchyard.config as cfg
		with data.switchyard.targets as inp.targets
}

test_decision_shape_allow if {
	d := decide(base)
	object.keys(d) == {"allow", "target", "reason", "headers"}
	is_boolean(d.allow)
	is_string(d.target)
	is_string(d.reason)
	is_object(d.headers)
}

test_decision_shape_deny if {
	d := decide(with_pii(["api_key"]))
	object.keys(d) == {"allow", "reason", "status", "message", "headers"}
	d.status >= 400
	d.status < 500
}

test_proposal_without_reason if {
	inp := object.union(base, {"proposal": {"target": "fast"}})
	d := switchyard.decision with input as json.patch(inp, [{"op": "remove", "path": "/proposal/reason"}])
		with data.switchyard.config as cfg
		with data.switchyard.targets as inp.targets
	d.allow
	d.reason == ""
}

# An operator's deny rule.
test_custom_deny if {
	d := decide(base) with switchyard.deny as {{"reason": "after_hours", "status": 429, "message": "come back later"}}
	d == {"allow": false, "reason": "after_hours", "status": 429, "message": "come back later", "headers": {"x-switchyard-policy": "after_hours"}}
}

test_custom_deny_defaults if {
	d := decide(base) with switchyard.deny as {{"reason": "nope"}}
	d.allow == false
	d.status == 403
}

test_custom_deny_smallest_reason_wins if {
	d := decide(base) with switchyard.deny as {{"reason": "b_rule"}, {"reason": "a_rule", "status": 451}}
	d.reason == "a_rule"
	d.status == 451
}

test_builtin_denial_beats_custom_deny if {
	d := decide(with_pii(["api_key"])) with switchyard.deny as {{"reason": "a_rule"}}
	d.reason == "secret_detected"
}

test_custom_deny_beats_governance_route if {
	d := decide(with_pii(["ssn"])) with switchyard.deny as {{"reason": "x"}}
	d.allow == false
	d.reason == "x"
}

# An operator's reroute: governance applies to the new target.
test_reroute_replaces_proposal if {
	d := decide(base) with switchyard.reroute as {"target": "reasoning", "reason": "vip"}
	d == {"allow": true, "target": "reasoning", "reason": "vip", "headers": {}}
}

test_reroute_default_reason if {
	d := decide(base) with switchyard.reroute as {"target": "reasoning"}
	d.reason == "reroute"
}

test_reroute_still_governed if {
	d := decide(with_pii(["ssn"])) with switchyard.reroute as {"target": "reasoning", "reason": "vip"}
	d.target == "onprem"
	d.reason == "pii_to_onprem"
}

test_config_errors_collected if {
	errs := switchyard.config_errors with data.switchyard.targets as {} with data.switchyard.config as {"deny_secrets": 1}
	errs == {"policy.data.deny_secrets must be true or false"}
}
