# Baseline data governance for Switchyard.
#
# Every rule is switched on and tuned by data.switchyard.config (the
# `policy.data` section of the Switchyard config file; the shipped default
# config turns on deny_secrets, pii_to_onprem and injection). A rule whose
# key is absent is off.
#
#   deny_secrets: true                       deny credentials in the prompt
#   secret_types: [api_key, private_key, jwt, secret]   (the default)
#   pii_to_onprem: [credit_card, iban, ssn]  PII types that must stay on-prem
#   injection: {threshold: 0.8, action: deny}   action: deny | guarded | off
#   guarded_target: guarded                  where action guarded routes
#   tenants: {<tenant>: {allowed_targets: [...], allowed_providers: [...]}}
#   default_tenant_policy: {...}             for tenants not listed
#   max_tokens: {fast: N, reasoning: N, specialist: N}
#
# Precedence, highest first (the first rule that denies decides; routes
# compose in this order):
#   1. secret_detected      deny 403   credentials in the prompt
#   2. prompt_injection     deny 403   injection score >= threshold (action deny),
#      injection_guarded    route      or route to guarded_target (action guarded)
#   3. pii_to_onprem        route      PII of the listed types -> first on-prem
#                                      target by name; none -> deny pii_no_onprem
#   4. tenant_reroute       route      tenant may not use the target or one of its
#                                      providers -> first allowed target;
#                                      none -> deny tenant_forbidden
#   5. max_tokens_exceeded  deny 400   max_tokens above the cap of the final
#                                      target's tier
# A request flagged for the guarded route stays on the guarded target: if a
# later rule would have to move it (PII off-prem, tenant not allowed), it is
# denied with reason prompt_injection instead.
#
# Target metadata is read from data.switchyard.targets (the same document as
# input.targets): rules that depend only on data and the config are computed
# once per loaded config by Switchyard, not per request.
package switchyard.governance

import data.switchyard.config as cfg
import data.switchyard.targets

# ---------------------------------------------------------------------------
# Settings (computed once per config).

deny_secrets := object.get(cfg, "deny_secrets", false) == true

default_secret_types := ["api_key", "private_key", "jwt", "secret"]

secret_types := {t | some t in object.get(cfg, "secret_types", default_secret_types)}

pii_types := {t | some t in object.get(cfg, "pii_to_onprem", [])}

# Finding types that can trigger a rule.
watched_types := secret_types | pii_types if deny_secrets

else := pii_types

injection_action := object.get(cfg.injection, "action", "deny")

injection_threshold := object.get(cfg.injection, "threshold", 0.8)

injection_on if {
	is_object(cfg.injection)
	injection_action != "off"
}

guarded_target := cfg.guarded_target if targets[cfg.guarded_target]

guarded_onprem if targets[guarded_target].onprem == true

tenants_on if has_key("tenants")

tenants_on if has_key("default_tenant_policy")

caps := object.get(cfg, "max_tokens", {})

caps_on if count(caps) > 0

has_key(key) if key in object.keys(cfg)

onprem := {name | some name, t in targets; t.onprem == true}

# On-prem targets sorted by name: PII goes to the first one.
first_onprem := sort(onprem)[0]

# Every target by name, for tenant reroutes without allowed_targets.
target_names := sort(object.keys(targets))

# ---------------------------------------------------------------------------
# Triggers (per request).

secrets_triggered if {
	deny_secrets
	some f in input.signals.pii
	secret_types[f.type]
	f.count > 0
}

pii_triggered if {
	some f in input.signals.pii
	pii_types[f.type]
	f.count > 0
}

injection_triggered if {
	injection_on
	input.signals.injection.score >= injection_threshold
}

# Tenant policy: the tenant's entry, else default_tenant_policy, else none
# (unrestricted).
tenant_policy := p if {
	tenants_on
	p := cfg.tenants[input.request.tenant]
} else := p if {
	tenants_on
	p := cfg.default_tenant_policy
}

proposal_over_cap if {
	caps_on
	input.request.max_tokens > caps[targets[input.proposal.target].tier]
}

# Nothing applies: the proposal passes through untouched. This is the common
# case, so it is written for speed: counts over comprehensions gated by the
# precomputed settings cost OPA less than one negated rule per check, and the
# tenant and max_tokens checks only run when they are configured.
quiet if {
	not data.switchyard.reroute
	count([1 | some f in input.signals.pii; watched_types[f.type]; f.count > 0]) == 0
	count([1 | injection_on; input.signals.injection.score >= injection_threshold]) == 0
	count([1 | tenants_on; tenant_policy]) == 0
	count([1 | caps_on; proposal_over_cap]) == 0
}

# Finding types for messages.
secret_findings := {f.type | some f in input.signals.pii; secret_types[f.type]; f.count > 0}

pii_findings := {f.type | some f in input.signals.pii; pii_types[f.type]; f.count > 0}

# The proposal after the operator's optional reroute (routing.rego).
proposed := data.switchyard.proposal.target

proposed_reason := object.get(data.switchyard.proposal, "reason", "")

# ---------------------------------------------------------------------------
# Routing stages. Each is {"target": t, "rules": [rules that moved it]}.

# Stage 2: injection guard (action guarded).
guard_on if {
	injection_action == "guarded"
	guarded_target
}

guarded if {
	guard_on
	injection_triggered
}

after_injection := {"target": guarded_target, "rules": ["injection_guarded"]} if {
	guarded
} else := {"target": proposed, "rules": []} if {
	not injection_triggered
}

# Stage 3: PII stays on-prem: the first on-prem target by name, unless the
# request is pinned to the guarded target.
pii_ok(t) if not pii_triggered

pii_ok(t) if onprem[t]

after_pii := after_injection if {
	not pii_triggered
} else := after_injection if {
	onprem[after_injection.target]
} else := {"target": first_onprem, "rules": array.concat(after_injection.rules, ["pii_to_onprem"])} if {
	not guarded
}

# Stage 4: tenant restrictions.
tenant_allows(t) if not tenant_policy

tenant_allows(t) if {
	tenant_policy
	tenant_target_ok(t)
	tenant_providers_ok(t)
}

tenant_target_ok(t) if not "allowed_targets" in object.keys(tenant_policy)

tenant_target_ok(t) if t in tenant_policy.allowed_targets

tenant_providers_ok(t) if not "allowed_providers" in object.keys(tenant_policy)

# Every provider of the target must be allowed: failover may reach any of them.
tenant_providers_ok(t) if {
	"allowed_providers" in object.keys(tenant_policy)
	every p in targets[t].providers {
		p in tenant_policy.allowed_providers
	}
}

# Candidates in the tenant's own order, or every target by name.
tenant_candidates := [t | some t in tenant_policy.allowed_targets; targets[t]] if {
	"allowed_targets" in object.keys(tenant_policy)
} else := target_names

tenant_choices := [t |
	some t in tenant_candidates
	tenant_allows(t)
	pii_ok(t)
]

# Prefer a target of the same tier as the one being replaced.
tenant_same_tier := [t | some t in tenant_choices; targets[t].tier == targets[after_pii.target].tier]

tenant_alternative := tenant_same_tier[0] if count(tenant_same_tier) > 0

else := tenant_choices[0] if count(tenant_choices) > 0

after_tenant := after_pii if {
	not tenant_policy
} else := after_pii if {
	tenant_allows(after_pii.target)
} else := {"target": tenant_alternative, "rules": array.concat(after_pii.rules, ["tenant_reroute"])} if {
	not guarded
}

# Stage 5: max_tokens cap per tier of the final target.
max_tokens_exceeded if {
	caps_on
	input.request.max_tokens > caps[targets[after_tenant.target].tier]
}

# ---------------------------------------------------------------------------
# Result: the first denial by precedence, else the route. "rule" names the
# rule that decided: the denial, or the last rule that moved the request
# (none: the proposal's reason).

deny(rule, status, msg) := {"allow": false, "rule": rule, "status": status, "message": msg}

result := {"allow": true, "target": proposed, "reason": proposed_reason, "rules": []} if {
	quiet
} else := deny("secret_detected", 403, sprintf(
	"The request appears to contain a credential (%s). Remove it from the prompt and try again.",
	[concat(", ", sort(secret_findings))],
)) if {
	secrets_triggered
} else := deny("prompt_injection", 403, "The request was blocked because it looks like a prompt-injection attempt.") if {
	injection_triggered
	not guarded
} else := deny("prompt_injection", 403, "The request was blocked: it looks like a prompt-injection attempt and no guarded model may serve it.") if {
	guarded
	not after_tenant
} else := deny("pii_no_onprem", 403, sprintf(
	"The request contains personal data (%s) that must stay on-premises, and no on-premises model is available.",
	[concat(", ", sort(pii_findings))],
)) if {
	not after_pii
} else := deny("tenant_forbidden", 403, "This tenant is not allowed to use any model that can serve this request.") if {
	not after_tenant
} else := deny("max_tokens_exceeded", 400, sprintf(
	"max_tokens %d exceeds the limit of %d for the %s tier.",
	[input.request.max_tokens, caps[targets[after_tenant.target].tier], targets[after_tenant.target].tier],
)) if {
	max_tokens_exceeded
} else := {
	"allow": true,
	"target": after_tenant.target,
	"reason": route_reason(after_tenant.rules),
	"rules": after_tenant.rules,
}

route_reason(rules) := rules[count(rules) - 1] if count(rules) > 0

else := proposed_reason

# ---------------------------------------------------------------------------
# Configuration checks: Switchyard evaluates data.switchyard.config_errors when
# it loads the policy and refuses a config for which it is not empty.

config_errors contains "policy.data.deny_secrets must be true or false" if {
	has_key("deny_secrets")
	not is_boolean(cfg.deny_secrets)
}

config_errors contains "policy.data.secret_types must be a list of finding types" if {
	has_key("secret_types")
	not is_string_list(cfg.secret_types)
}

config_errors contains "policy.data.pii_to_onprem must be a list of finding types" if {
	has_key("pii_to_onprem")
	not is_string_list(cfg.pii_to_onprem)
}

config_errors contains "policy.data.injection must be a map with threshold and action" if {
	has_key("injection")
	not is_object(cfg.injection)
}

config_errors contains "policy.data.injection.threshold must be a number" if {
	is_object(cfg.injection)
	not is_number(injection_threshold)
}

config_errors contains "policy.data.injection.action must be deny, guarded or off" if {
	is_object(cfg.injection)
	not injection_action in {"deny", "guarded", "off"}
}

config_errors contains "policy.data.injection.action is guarded but policy.data.guarded_target does not name a target" if {
	injection_action == "guarded"
	not guarded_target
}

config_errors contains "policy.data.max_tokens must be a map of tier to cap" if {
	has_key("max_tokens")
	not is_object(cfg.max_tokens)
}

config_errors contains sprintf("policy.data.max_tokens.%s must be a positive number", [tier]) if {
	is_object(cfg.max_tokens)
	some tier, cap in cfg.max_tokens
	not positive_number(cap)
}

config_errors contains "policy.data.tenants must be a map of tenant to policy" if {
	has_key("tenants")
	not is_object(cfg.tenants)
}

config_errors contains sprintf("policy.data.%s must be a map with allowed_targets and/or allowed_providers", [where]) if {
	some where, p in tenant_policies
	not is_object(p)
}

config_errors contains sprintf("policy.data.%s.allowed_targets names unknown target %q", [where, t]) if {
	some where, p in tenant_policies
	some t in p.allowed_targets
	not targets[t]
}

config_errors contains sprintf("policy.data.%s.%s must be a list of names", [where, key]) if {
	some where, p in tenant_policies
	some key in ["allowed_targets", "allowed_providers"]
	key in object.keys(p)
	not is_string_list(p[key])
}

tenant_policies[where] := p if {
	is_object(cfg.tenants)
	some name, p in cfg.tenants
	where := sprintf("tenants.%s", [name])
}

tenant_policies["default_tenant_policy"] := cfg.default_tenant_policy

is_string_list(x) if {
	is_array(x)
	every v in x {
		is_string(v)
	}
}

positive_number(x) if {
	is_number(x)
	x > 0
}
