package route

import (
	"context"
	"errors"
	"fmt"

	"go.uber.org/zap"

	"github.com/switchyard-llm/switchyard/internal/config"
	"github.com/switchyard-llm/switchyard/internal/policy"
	"github.com/switchyard-llm/switchyard/internal/signals"
	"github.com/switchyard-llm/switchyard/internal/telemetry"
)

// Stage names which part of a build failed, for the reload metric.
type Stage string

// Build stages.
const (
	StageConfig Stage = "config"
	StagePolicy Stage = "policy"
)

// BuildError is a failed build with the stage that failed.
type BuildError struct {
	Stage Stage
	Err   error
}

func (e *BuildError) Error() string { return e.Err.Error() }
func (e *BuildError) Unwrap() error { return e.Err }

// StageOf returns the stage of a Build or Load error.
func StageOf(err error) Stage {
	var be *BuildError
	if errors.As(err, &be) {
		return be.Stage
	}
	return StageConfig
}

// Build compiles everything a snapshot needs — the signal engine (classifier
// training, keyword and PII matchers) and the policy engine — into a Router.
func Build(ctx context.Context, snap *config.Snapshot, log *zap.Logger, m *telemetry.Metrics) (*Router, error) {
	if log == nil {
		log = zap.NewNop()
	}
	sig, err := signals.New(snap, signals.Options{Logger: log})
	if err != nil {
		return nil, &BuildError{StageConfig, fmt.Errorf("signals: %w", err)}
	}
	pol, err := policy.New(ctx, snap, policy.Options{Logger: log})
	if err != nil {
		sig.Close()
		return nil, &BuildError{StagePolicy, fmt.Errorf("policy: %w", err)}
	}
	rt, err := New(snap, Deps{Signals: sig, Policy: pol, Logger: log, Metrics: m})
	if err != nil {
		sig.Close()
		return nil, &BuildError{StageConfig, err}
	}
	return rt, nil
}

// Load reads the config at path ("" = the embedded default), compiles it and
// builds a Router.
func Load(ctx context.Context, path string, log *zap.Logger, m *telemetry.Metrics) (*Router, error) {
	snap, err := LoadSnapshot(path)
	if err != nil {
		return nil, err
	}
	return Build(ctx, snap, log, m)
}

// LoadSnapshot reads and compiles the config at path ("" = the embedded
// default) without building the signal and policy engines.
func LoadSnapshot(path string) (*config.Snapshot, error) {
	cfg, err := config.Load(path)
	if err != nil {
		return nil, &BuildError{StageConfig, err}
	}
	src := path
	if src == "" {
		src = config.DefaultName
	}
	snap, err := config.Compile(cfg, src)
	if err != nil {
		return nil, &BuildError{StageConfig, err}
	}
	return snap, nil
}
