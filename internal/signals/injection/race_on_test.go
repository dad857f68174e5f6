//go:build race

package injection

// raceEnabled: the race detector slows the scanner down ~15x; the
// exhaustive tests sample instead.
const raceEnabled = true
