package policy

import (
	"bytes"
	"context"
	"errors"
	"os"
	"strings"
	"testing"
)

func TestShippedPolicyTestsPass(t *testing.T) {
	var out bytes.Buffer
	passed, failed, err := RunTests(context.Background(), nil, nil, &out, false)
	if err != nil {
		t.Fatalf("RunTests: %v\n%s", err, out.String())
	}
	if failed != 0 || passed < 50 {
		t.Fatalf("passed=%d failed=%d\n%s", passed, failed, out.String())
	}
	if !strings.Contains(out.String(), "PASS: ") {
		t.Errorf("no summary line:\n%s", out.String())
	}
}

func TestRunTestsFixtures(t *testing.T) {
	cases := []struct {
		name           string
		dirs           []string
		opts           TestOptions
		passed, failed int
		want, notWant  []string
	}{
		{
			name: "passing", dirs: []string{"testdata/tests/pass"},
			passed: 3, want: []string{"PASS: 3/3"}, notWant: []string{"FAIL"},
		},
		{
			name: "passing verbose", dirs: []string{"testdata/tests/pass"}, opts: TestOptions{Verbose: true},
			passed: 3, want: []string{"data.acme.limits_test.test_over_cap: PASS", "PASS: 3/3"},
		},
		{
			// One pass, one failure (with its print output), one error
			// (conflicting values), one skipped todo_ test.
			name: "failing", dirs: []string{"testdata/tests/fail"},
			passed: 1, failed: 2,
			want: []string{
				"data.acme.rules_test.test_bob_allowed_wrongly: FAIL", "checking bob",
				"data.acme.rules_test.test_errors: ERROR", "PASS: 1/4", "FAIL: 1/4", "ERROR: 1/4", "SKIPPED: 1/4",
			},
			notWant: []string{"test_alice_allowed: PASS"},
		},
		{
			name: "both dirs", dirs: []string{"testdata/tests/pass", "testdata/tests/fail"},
			passed: 4, failed: 2, want: []string{"PASS: 4/7"},
		},
		{
			name: "run filter", dirs: []string{"testdata/tests/pass", "testdata/tests/fail"}, opts: TestOptions{Run: "alice|over_cap"},
			passed: 2, want: []string{"PASS: 2/2"},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			passed, failed, err := RunTestsWith(context.Background(), tc.dirs, nil, &out, tc.opts)
			if err != nil {
				t.Fatalf("RunTests: %v", err)
			}
			if passed != tc.passed || failed != tc.failed {
				t.Errorf("passed=%d failed=%d, want %d and %d\n%s", passed, failed, tc.passed, tc.failed, out.String())
			}
			for _, w := range tc.want {
				if !strings.Contains(out.String(), w) {
					t.Errorf("report lacks %q:\n%s", w, out.String())
				}
			}
			for _, w := range tc.notWant {
				if strings.Contains(out.String(), w) {
					t.Errorf("report has %q:\n%s", w, out.String())
				}
			}
		})
	}
}

func TestRunTestsErrors(t *testing.T) {
	for dir, want := range map[string][]string{
		"testdata/tests/broken-parse":  {"bad.rego:5:1:", "rego_parse_error"},
		"testdata/tests/broken-unsafe": {"net.rego:3:", "http.send"},
	} {
		t.Run(dir, func(t *testing.T) {
			var out bytes.Buffer
			_, _, err := RunTests(context.Background(), []string{dir}, nil, &out, false)
			var ce *CompileError
			if !errors.As(err, &ce) {
				t.Fatalf("want a *CompileError, got %v", err)
			}
			for _, w := range want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error lacks %q:\n%v", w, err)
				}
			}
		})
	}
	var out bytes.Buffer
	if _, _, err := RunTests(context.Background(), []string{"testdata/tests/nope"}, nil, &out, false); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing dir: got %v", err)
	}
}

// TestRunTestsFS runs the same fixtures through an fs.FS, as the CLI does
// for the embedded policies.
func TestRunTestsFS(t *testing.T) {
	var out bytes.Buffer
	passed, failed, err := RunTests(context.Background(), []string{"pass"}, os.DirFS("testdata/tests"), &out, false)
	if err != nil || passed != 3 || failed != 0 {
		t.Fatalf("passed=%d failed=%d err=%v\n%s", passed, failed, err, out.String())
	}
}
