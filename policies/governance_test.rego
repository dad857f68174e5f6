# Tests for governance.rego, one group per rule plus the precedence between
# them. Run with `switchyard policy test` (or `opa test policies/`).
package switchyard.governance_test

import data.switchyard

# ---------------------------------------------------------------------------
# Fixtures: the shipped sample portfolio as input.targets.

targets := {
	"cascade": {"tier": "fast", "models": ["small-a", "large-a"], "providers": ["vendor-a"], "onprem": false, "cascade": true},
	"fast": {"tier": "fast", "models": ["small-a", "small-b"], "providers": ["vendor-a", "vendor-b"], "onprem": false, "cascade": false},
	"guarded": {"tier": "reasoning", "models": ["large-a"], "providers": ["vendor-a"], "onprem": false, "cascade": false},
	"onprem": {"tier": "specialist", "models": ["onprem-llm"], "providers": ["internal-vllm"], "onprem": true, "cascade": false},
	"reasoning": {"tier": "reasoning", "models": ["large-a", "large-b"], "providers": ["vendor-a", "vendor-b"], "onprem": false, "cascade": false},
}

cloud_only := object.remove(targets, ["onprem"])

cfg := {
	"pii_to_onprem": ["credit_card", "iban", "ssn"],
	"deny_secrets": true,
	"injection": {"threshold": 0.8, "action": "deny"},
	"guarded_target": "guarded",
}

guarded_cfg := object.union(cfg, {"injection": {"action": "guarded"}})

base := {
	"version": 1,
	"request": {"method": "POST", "path": "/v1/chat/completions", "headers": {}, "tenant": "", "model": "auto", "max_tokens": 0},
	"signals": {"intent": "chat", "pii": [], "injection": {"score": 0.1, "matched": []}, "keywords": []},
	"proposal": {"target": "fast", "tier": "fast", "reason": "default"},
	"targets": targets,
}

with_pii(types) := object.union(base, {"signals": {"pii": [{"type": t, "count": 1} | some t in types]}})

with_score(s) := object.union(base, {"signals": {"injection": {"score": s, "matched": ["ignore_previous"]}}})

with_targets(inp, ts) := object.union(object.remove(inp, ["targets"]), {"targets": ts})

with_tenant(inp, t) := object.union(inp, {"request": {"tenant": t}})

with_proposal(inp, target, tier) := object.union(inp, {"proposal": {"target": target, "tier": tier, "reason": "intent:code"}})

with_max_tokens(inp, n) := object.union(inp, {"request": {"max_tokens": n}})

# The engine mounts the targets at data.switchyard.targets as well as
# input.targets; tests do the same.
decide(inp, c) := d if {
	d := switchyard.decision with input as inp
		with data.switchyard.config as c
		with data.switchyard.targets as inp.targets
}

allowed_to(d, target, reason) if {
	d.allow == true
	d.target == target
	d.reason == reason
}

denied(d, reason, status) if {
	d.allow == false
	d.reason == reason
	d.status == status
	d.headers["x-switchyard-policy"] == reason
	d.message != ""
}

# ---------------------------------------------------------------------------
# Nothing applies: the proposal passes through.

test_passthrough_unchanged if {
	decide(base, cfg) == {"allow": true, "target": "fast", "reason": "default", "headers": {}}
}

test_passthrough_keeps_proposal_reason if {
	d := decide(with_proposal(base, "reasoning", "reasoning"), cfg)
	allowed_to(d, "reasoning", "intent:code")
	d.headers == {}
}

test_passthrough_with_harmless_pii if {
	allowed_to(decide(with_pii(["email", "phone"]), cfg), "fast", "default")
}

test_passthrough_without_config if {
	allowed_to(decide(base, {}), "fast", "default")
}

# ---------------------------------------------------------------------------
# deny_secrets

test_secret_types_denied if {
	every t in ["api_key", "private_key", "jwt", "secret"] {
		denied(decide(with_pii([t]), cfg), "secret_detected", 403)
	}
}

test_secret_message_names_type_only if {
	d := decide(with_pii(["jwt", "api_key"]), cfg)
	d.message == "The request appears to contain a credential (api_key, jwt). Remove it from the prompt and try again."
}

test_secret_zero_count_ignored if {
	inp := object.union(base, {"signals": {"pii": [{"type": "api_key", "count": 0}]}})
	allowed_to(decide(inp, cfg), "fast", "default")
}

test_secret_rule_off if {
	allowed_to(decide(with_pii(["api_key"]), object.union(cfg, {"deny_secrets": false})), "fast", "default")
}

test_rules_off_without_config if {
	# A rule whose key is absent from policy.data is off.
	allowed_to(decide(with_pii(["private_key", "credit_card"]), {}), "fast", "default")
	allowed_to(decide(with_score(0.99), {}), "fast", "default")
	allowed_to(decide(with_max_tokens(with_tenant(base, "locked"), 100000), {}), "fast", "default")
}

test_secret_types_default if {
	c := object.remove(cfg, ["secret_types"])
	every t in ["api_key", "private_key", "jwt", "secret"] {
		denied(decide(with_pii([t]), c), "secret_detected", 403)
	}
}

test_secret_custom_types if {
	c := object.union(cfg, {"secret_types": ["email"]})
	denied(decide(with_pii(["email"]), c), "secret_detected", 403)
	allowed_to(decide(with_pii(["jwt"]), c), "fast", "default")
}

# ---------------------------------------------------------------------------
# injection

test_injection_above_threshold_denied if {
	denied(decide(with_score(0.95), cfg), "prompt_injection", 403)
}

test_injection_at_threshold_denied if {
	denied(decide(with_score(0.8), cfg), "prompt_injection", 403)
}

test_injection_below_threshold_allowed if {
	allowed_to(decide(with_score(0.79), cfg), "fast", "default")
}

test_injection_custom_threshold if {
	c := object.union(cfg, {"injection": {"threshold": 0.5}})
	denied(decide(with_score(0.6), c), "prompt_injection", 403)
	allowed_to(decide(with_score(0.4), c), "fast", "default")
}

test_injection_off if {
	allowed_to(decide(with_score(0.99), object.union(cfg, {"injection": {"action": "off"}})), "fast", "default")
}

test_injection_guarded_routes if {
	d := decide(with_score(0.9), guarded_cfg)
	allowed_to(d, "guarded", "injection_guarded")
	d.headers == {"x-switchyard-policy": "injection_guarded"}
}

test_injection_guarded_below_threshold_untouched if {
	allowed_to(decide(with_score(0.5), guarded_cfg), "fast", "default")
}

test_injection_guarded_without_target_denied if {
	denied(decide(with_score(0.9), object.remove(guarded_cfg, ["guarded_target"])), "prompt_injection", 403)
}

test_injection_guarded_unknown_target_denied if {
	denied(decide(with_score(0.9), object.union(guarded_cfg, {"guarded_target": "nope"})), "prompt_injection", 403)
}

# ---------------------------------------------------------------------------
# pii_to_onprem

test_pii_routes_onprem if {
	every t in ["credit_card", "iban", "ssn"] {
		d := decide(with_pii([t]), cfg)
		allowed_to(d, "onprem", "pii_to_onprem")
		d.headers == {"x-switchyard-policy": "pii_to_onprem"}
	}
}

test_pii_already_onprem_keeps_reason if {
	d := decide(with_proposal(with_pii(["ssn"]), "onprem", "specialist"), cfg)
	allowed_to(d, "onprem", "intent:code")
	d.headers == {}
}

test_pii_first_onprem_by_name if {
	two := object.union(targets, {"a-onprem": {"tier": "specialist", "models": ["x"], "providers": ["internal-vllm"], "onprem": true, "cascade": false}})
	inp := object.union(with_pii(["iban"]), {"targets": two})
	allowed_to(decide(inp, cfg), "a-onprem", "pii_to_onprem")
}

test_pii_no_onprem_denied if {
	inp := with_targets(with_pii(["credit_card"]), cloud_only)
	d := decide(inp, cfg)
	denied(d, "pii_no_onprem", 403)
	contains(d.message, "credit_card")
}

test_pii_rule_off if {
	allowed_to(decide(with_pii(["credit_card"]), object.union(cfg, {"pii_to_onprem": []})), "fast", "default")
}

test_pii_custom_types if {
	allowed_to(decide(with_pii(["email"]), object.union(cfg, {"pii_to_onprem": ["email"]})), "onprem", "pii_to_onprem")
}

# ---------------------------------------------------------------------------
# tenants

tenant_cfg := object.union(cfg, {"tenants": {
	"acme": {"allowed_targets": ["reasoning", "fast"]},
	"reasoners": {"allowed_targets": ["reasoning"]},
	"vendor-a-only": {"allowed_providers": ["vendor-a"]},
	"locked": {"allowed_targets": []},
	"cloud": {"allowed_targets": ["fast", "reasoning"]},
	"open": {},
}})

test_tenant_unlisted_unrestricted if {
	allowed_to(decide(with_tenant(base, "someone"), tenant_cfg), "fast", "default")
}

test_tenant_allowed_target_kept if {
	allowed_to(decide(with_tenant(base, "acme"), tenant_cfg), "fast", "default")
}

test_tenant_empty_policy_unrestricted if {
	allowed_to(decide(with_tenant(base, "open"), tenant_cfg), "fast", "default")
}

test_tenant_reroute_to_allowed_target if {
	d := decide(with_tenant(base, "reasoners"), tenant_cfg)
	allowed_to(d, "reasoning", "tenant_reroute")
	d.headers == {"x-switchyard-policy": "tenant_reroute"}
}

test_tenant_provider_restriction_prefers_same_tier if {
	# fast uses vendor-b too; cascade is the vendor-a-only fast-tier target.
	allowed_to(decide(with_tenant(base, "vendor-a-only"), tenant_cfg), "cascade", "tenant_reroute")

	# reasoning uses vendor-b too; guarded is the vendor-a-only reasoning target.
	inp := with_proposal(with_tenant(base, "vendor-a-only"), "reasoning", "reasoning")
	allowed_to(decide(inp, tenant_cfg), "guarded", "tenant_reroute")
}

test_tenant_nothing_allowed_denied if {
	denied(decide(with_tenant(base, "locked"), tenant_cfg), "tenant_forbidden", 403)
}

test_tenant_unknown_allowed_target_ignored if {
	c := object.union(cfg, {"tenants": {"x": {"allowed_targets": ["gone"]}}})
	denied(decide(with_tenant(base, "x"), c), "tenant_forbidden", 403)
}

test_default_tenant_policy_for_unlisted_and_anonymous if {
	c := object.union(tenant_cfg, {"default_tenant_policy": {"allowed_targets": ["reasoning"]}})
	allowed_to(decide(with_tenant(base, "someone"), c), "reasoning", "tenant_reroute")
	allowed_to(decide(base, c), "reasoning", "tenant_reroute")

	# A listed tenant uses its own entry.
	allowed_to(decide(with_tenant(base, "acme"), c), "fast", "default")
}

test_tenant_cannot_undo_pii_routing if {
	d := decide(with_tenant(with_pii(["ssn"]), "cloud"), tenant_cfg)
	denied(d, "tenant_forbidden", 403)
}

# Two on-prem targets: PII picks "onprem" (first by name); a tenant that may
# only use "z-onprem" is moved there, and both rules show in the header.
with_second_onprem := object.union(targets, {"z-onprem": {
	"tier": "specialist", "models": ["y"], "providers": ["other-vllm"],
	"onprem": true, "cascade": false,
}})

test_tenant_reroute_keeps_pii_onprem if {
	inp := with_targets(with_tenant(with_pii(["iban"]), "t"), with_second_onprem)

	allows_first := object.union(cfg, {"tenants": {"t": {"allowed_targets": ["fast", "onprem", "z-onprem"]}}})
	allowed_to(decide(inp, allows_first), "onprem", "pii_to_onprem")

	only_z := object.union(cfg, {"tenants": {"t": {"allowed_targets": ["fast", "z-onprem"]}}})
	d := decide(inp, only_z)
	allowed_to(d, "z-onprem", "tenant_reroute")
	d.headers == {"x-switchyard-policy": "pii_to_onprem,tenant_reroute"}

	by_provider := object.union(cfg, {"tenants": {"t": {"allowed_providers": ["other-vllm", "vendor-a"]}}})
	allowed_to(decide(inp, by_provider), "z-onprem", "tenant_reroute")
}

# ---------------------------------------------------------------------------
# max_tokens

tokens_cfg := object.union(cfg, {"max_tokens": {"fast": 1000, "specialist": 500}})

test_max_tokens_over_cap_denied if {
	d := decide(with_max_tokens(base, 1001), tokens_cfg)
	denied(d, "max_tokens_exceeded", 400)
	d.message == "max_tokens 1001 exceeds the limit of 1000 for the fast tier."
}

test_max_tokens_at_cap_allowed if {
	allowed_to(decide(with_max_tokens(base, 1000), tokens_cfg), "fast", "default")
}

test_max_tokens_unset_allowed if {
	allowed_to(decide(base, tokens_cfg), "fast", "default")
}

test_max_tokens_tier_without_cap if {
	inp := with_max_tokens(with_proposal(base, "reasoning", "reasoning"), 100000)
	allowed_to(decide(inp, tokens_cfg), "reasoning", "intent:code")
}

test_max_tokens_checks_final_target if {
	# PII moves the request to the specialist tier, whose cap is 500.
	denied(decide(with_max_tokens(with_pii(["ssn"]), 800), tokens_cfg), "max_tokens_exceeded", 400)
	allowed_to(decide(with_max_tokens(with_pii(["ssn"]), 400), tokens_cfg), "onprem", "pii_to_onprem")
}

# ---------------------------------------------------------------------------
# Precedence

test_precedence_secret_over_injection if {
	inp := object.union(with_pii(["api_key"]), {"signals": {"injection": {"score": 0.99}}})
	denied(decide(inp, cfg), "secret_detected", 403)
}

test_precedence_secret_over_pii_and_tenant if {
	inp := with_tenant(with_pii(["api_key", "credit_card"]), "locked")
	denied(decide(inp, tenant_cfg), "secret_detected", 403)
}

test_precedence_injection_over_pii if {
	inp := object.union(with_pii(["credit_card"]), {"signals": {"injection": {"score": 0.9}}})
	denied(decide(inp, cfg), "prompt_injection", 403)
}

test_precedence_guarded_pii_offprem_denied if {
	# The guard pins the target; PII cannot stay on-prem there: deny.
	inp := object.union(with_pii(["credit_card"]), {"signals": {"injection": {"score": 0.9}}})
	denied(decide(inp, guarded_cfg), "prompt_injection", 403)
}

test_precedence_guarded_onprem_allows_pii if {
	onprem_guard := object.union(targets, {"guarded": {"onprem": true, "providers": ["internal-vllm"]}})
	inp := object.union(with_pii(["credit_card"]), {"signals": {"injection": {"score": 0.9}}, "targets": onprem_guard})
	allowed_to(decide(inp, guarded_cfg), "guarded", "injection_guarded")
}

test_precedence_guarded_tenant_forbidden_denied if {
	c := object.union(guarded_cfg, {"tenants": {"t": {"allowed_targets": ["fast"]}}})
	denied(decide(with_tenant(with_score(0.9), "t"), c), "prompt_injection", 403)
}

test_precedence_pii_no_onprem_over_tenant if {
	inp := with_targets(with_tenant(with_pii(["ssn"]), "locked"), cloud_only)
	denied(decide(inp, tenant_cfg), "pii_no_onprem", 403)
}

test_precedence_tenant_over_max_tokens if {
	c := object.union(tenant_cfg, {"max_tokens": {"fast": 10}})
	denied(decide(with_max_tokens(with_tenant(base, "locked"), 100), c), "tenant_forbidden", 403)
}

# ---------------------------------------------------------------------------
# Configuration checks

errors_for(c) := errs if {
	errs := data.switchyard.governance.config_errors with data.switchyard.targets as targets
		with data.switchyard.config as c
}

test_config_shipped_is_valid if {
	count(errors_for(cfg)) == 0
	count(errors_for({})) == 0
	count(errors_for(tenant_cfg)) == 0
	count(errors_for(tokens_cfg)) == 0
}

test_config_errors_reported if {
	errors_for(object.union(cfg, {"deny_secrets": "yes"})) == {"policy.data.deny_secrets must be true or false"}
	errors_for(object.union(cfg, {"pii_to_onprem": "ssn"})) == {"policy.data.pii_to_onprem must be a list of finding types"}
	errors_for(object.union(cfg, {"injection": {"action": "block"}})) == {"policy.data.injection.action must be deny, guarded or off"}
	errors_for(object.union(cfg, {"injection": {"threshold": "high"}})) == {"policy.data.injection.threshold must be a number"}
	errors_for(object.union(cfg, {"max_tokens": {"fast": 0}})) == {"policy.data.max_tokens.fast must be a positive number"}
	errors_for(object.union(cfg, {"tenants": {"a": {"allowed_targets": ["nope"]}}})) == {`policy.data.tenants.a.allowed_targets names unknown target "nope"`}
	errors_for(object.union(cfg, {"tenants": {"a": {"allowed_providers": "vendor-a"}}})) == {"policy.data.tenants.a.allowed_providers must be a list of names"}
	errors_for(object.union(cfg, {"tenants": ["a"]})) == {"policy.data.tenants must be a map of tenant to policy"}
}

test_config_guarded_needs_target if {
	errors_for(object.remove(guarded_cfg, ["guarded_target"])) == {"policy.data.injection.action is guarded but policy.data.guarded_target does not name a target"}
	count(errors_for(guarded_cfg)) == 0
}
