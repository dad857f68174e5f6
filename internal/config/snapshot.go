package config

import (
	"fmt"
	"os"
	"sort"
	"strings"
)

// Snapshot is a validated config compiled for lookups on the request path.
// It is immutable once built; share it freely between goroutines.
type Snapshot struct {
	Config *Config
	// Source is the file the config came from (DefaultName when embedded).
	Source string
	// TargetNames in sorted order.
	TargetNames []string

	models   map[string]*ModelInfo
	targets  map[string]*TargetInfo
	byModel  map[string]string // request model name (model, upstream id, alias) -> target or "auto"
	secrets  map[string]string // provider -> secret value (never logged)
	baseline *ModelInfo
}

// ModelInfo is a model with its provider resolved.
type ModelInfo struct {
	Model
	ProviderName string
	Provider     Provider
	// Addr is the host:port Envoy connects to for this model.
	Addr string
}

// TargetInfo is a target with its models resolved.
type TargetInfo struct {
	Name   string
	Target Target
	Models []*ModelInfo
	// Tier is the tier of the first model (the one tried first).
	Tier string
	// OnPrem is true when every model of the target is on-prem.
	OnPrem bool
	// Cascade is true when the target has a judge.
	Cascade bool
}

// Compile builds a Snapshot from a validated config. It reads provider
// secrets from the environment and files; a secret that cannot be read is an
// error (the message names the source, never the value).
func Compile(cfg *Config, source string) (*Snapshot, error) {
	s := &Snapshot{
		Config:  cfg,
		Source:  source,
		models:  make(map[string]*ModelInfo, len(cfg.Models)),
		targets: make(map[string]*TargetInfo, len(cfg.Targets)),
		byModel: make(map[string]string),
		secrets: make(map[string]string),
	}
	for i := range cfg.Models {
		m := cfg.Models[i]
		p := cfg.Providers[m.Provider]
		addr := m.Address
		if addr == "" {
			addr = p.Address
		}
		s.models[m.Name] = &ModelInfo{Model: m, ProviderName: m.Provider, Provider: p, Addr: addr}
	}
	for _, name := range sortedKeys(cfg.Targets) {
		t := cfg.Targets[name]
		ti := &TargetInfo{Name: name, Target: t, OnPrem: true, Cascade: t.Judge != nil}
		for _, mn := range t.Models {
			mi := s.models[mn]
			ti.Models = append(ti.Models, mi)
			ti.OnPrem = ti.OnPrem && mi.OnPrem
		}
		if len(ti.Models) > 0 {
			ti.Tier = ti.Models[0].Tier
		}
		s.targets[name] = ti
		s.TargetNames = append(s.TargetNames, name)
	}
	s.indexModelNames()
	for _, name := range sortedKeys(cfg.Providers) {
		v, err := readSecret(cfg.Providers[name].Auth)
		if err != nil {
			return nil, fmt.Errorf("provider %q: %w", name, err)
		}
		if v != "" {
			s.secrets[name] = v
		}
	}
	s.baseline = s.models[cfg.Accounting.BaselineModel]
	return s, nil
}

// indexModelNames maps every name a client may send in "model" to a target:
// aliases first, then target names, then model names and upstream model ids
// (see the passes below; ties go to the first target by name).
func (s *Snapshot) indexModelNames() {
	for _, name := range s.TargetNames {
		s.byModel[name] = name
	}
	// A model that leads a plain target wins over one that leads a cascade
	// (asking for a model should not buy an escalation), and both win over a
	// model that is only a fallback somewhere.
	passes := []func(t *TargetInfo, i int) bool{
		func(t *TargetInfo, i int) bool { return i == 0 && !t.Cascade },
		func(t *TargetInfo, i int) bool { return i == 0 },
		func(*TargetInfo, int) bool { return true },
	}
	for _, want := range passes {
		for _, tn := range s.TargetNames {
			t := s.targets[tn]
			for i, mi := range t.Models {
				if !want(t, i) {
					continue
				}
				for _, key := range []string{mi.Name, mi.UpstreamModel} {
					if _, taken := s.byModel[key]; !taken {
						s.byModel[key] = tn
					}
				}
			}
		}
	}
	for alias, t := range s.Config.Routing.Aliases {
		s.byModel[alias] = t
	}
	s.byModel[AutoModel] = AutoModel
}

func readSecret(a Auth) (string, error) {
	switch {
	case a.SecretEnv != "":
		v, ok := os.LookupEnv(a.SecretEnv)
		if !ok {
			// A missing key is allowed so `serve` works on the sample config;
			// the upstream role sends no credential and logs that once.
			return "", nil
		}
		return strings.TrimSpace(v), nil
	case a.SecretFile != "":
		b, err := os.ReadFile(a.SecretFile)
		if err != nil {
			return "", fmt.Errorf("read secret_file %s: %w", a.SecretFile, err)
		}
		return strings.TrimSpace(string(b)), nil
	}
	return "", nil
}

// Target returns a target by name.
func (s *Snapshot) Target(name string) (*TargetInfo, bool) {
	t, ok := s.targets[name]
	return t, ok
}

// Model returns a model by name.
func (s *Snapshot) Model(name string) (*ModelInfo, bool) {
	m, ok := s.models[name]
	return m, ok
}

// Models returns all models in config order.
func (s *Snapshot) Models() []*ModelInfo {
	out := make([]*ModelInfo, 0, len(s.Config.Models))
	for _, m := range s.Config.Models {
		out = append(out, s.models[m.Name])
	}
	return out
}

// ResolveModel maps a request's "model" to a target name, or AutoModel when
// Switchyard should choose. ok is false for names nothing serves.
func (s *Snapshot) ResolveModel(requested string) (target string, ok bool) {
	if requested == "" {
		return AutoModel, true
	}
	t, ok := s.byModel[requested]
	return t, ok
}

// Secret returns a provider's credential ("" when none is configured).
// Callers must never log it.
func (s *Snapshot) Secret(provider string) string { return s.secrets[provider] }

// Baseline returns the accounting baseline model (nil when there is none).
func (s *Snapshot) Baseline() *ModelInfo { return s.baseline }

// OnPremTargets returns the names of targets whose models are all on-prem, sorted.
func (s *Snapshot) OnPremTargets() []string {
	var out []string
	for _, n := range s.TargetNames {
		if s.targets[n].OnPrem {
			out = append(out, n)
		}
	}
	sort.Strings(out)
	return out
}
