package envoysim

import (
	"net"
	"net/http"
	"sync"
	"time"
)

// hostState is one endpoint with its outlier-detection monitor
// (source/common/upstream/outlier_detection_impl.cc).
type hostState struct {
	ep           *endpointModel
	dial         string // address actually dialled (after overrides)
	key          string // EjectedHosts key
	socket       string // transport socket match name
	tls          bool
	cons5xx      int
	consGateway  int
	ejected      bool
	ejectedAt    time.Time
	backoff      int
	numEjections int
	lastUneject  time.Time
	hasUneject   bool
}

func (h *hostState) healthy() bool { return !h.ejected && !h.ep.unhealthy }

// clusterRT is a cluster at run time: hosts per priority, round-robin
// cursors, the outlier detector and the upstream HTTP transport.
type clusterRT struct {
	m         *clusterModel
	e         *Envoy
	mu        sync.Mutex
	prios     [][]*hostState
	all       []*hostState
	rr        []int
	odStart   time.Time
	odTicks   int64
	active    int // ejections_active
	transport *http.Transport

	// retries is the circuit breaker's open-retry count (ResourceManager
	// retries(), DEFAULT priority), guarded by mu.
	retries int
}

func newClusterRT(e *Envoy, m *clusterModel, resolve func(ep *endpointModel) ([]string, error)) (*clusterRT, error) {
	c := &clusterRT{m: m, e: e, rr: make([]int, len(m.priorities)), odStart: e.now()}
	for _, eps := range m.priorities {
		var hs []*hostState
		for _, ep := range eps {
			addrs, err := resolve(ep)
			if err != nil {
				return nil, err
			}
			sock, tls := m.resolveSocket(ep)
			for _, a := range addrs {
				h := &hostState{ep: ep, dial: a, key: ep.address(), socket: sock, tls: tls}
				if len(addrs) > 1 {
					h.key += "/" + a
				}
				// TransportSocketMatcher stats count hosts per match at creation.
				e.stats.inc("cluster." + m.name + "." + sock + ".total_match_count")
				hs = append(hs, h)
				c.all = append(c.all, h)
			}
		}
		c.prios = append(c.prios, hs)
	}
	d := &net.Dialer{Timeout: m.connectTimeout}
	c.transport = &http.Transport{
		DialContext:         d.DialContext,
		DisableCompression:  true,
		MaxIdleConnsPerHost: 16,
		IdleConnTimeout:     30 * time.Second,
	}
	if m.http2 {
		c.transport.Protocols = new(http.Protocols)
		c.transport.Protocols.SetUnencryptedHTTP2(true)
	}
	return c, nil
}

// acquireRetry is retries().canCreate() + inc(): false when the cluster
// already has max_retries retries open (RetryStateImpl::shouldRetry).
func (c *clusterRT) acquireRetry() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.retries >= c.m.maxRetries {
		return false
	}
	c.retries++
	c.e.stats.setGauge("cluster."+c.m.name+".circuit_breakers.default.rq_retry_open", boolGauge(c.retries >= c.m.maxRetries))
	return true
}

// releaseRetry is retries().dec() (RetryStateImpl::resetRetry).
func (c *clusterRT) releaseRetry() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.retries--
	c.e.stats.setGauge("cluster."+c.m.name+".circuit_breakers.default.rq_retry_open", boolGauge(c.retries >= c.m.maxRetries))
}

func boolGauge(b bool) int64 {
	if b {
		return 1
	}
	return 0
}

// advance runs the outlier detector's interval timer up to now: a host is
// unejected at the first tick at which base_ejection_time × backoff has
// passed, and the backoff decays on ticks while the host stays healthy.
// Envoy does this on a timer; envoysim does it lazily, so an injected clock
// needs no goroutine.
func (c *clusterRT) advance(now time.Time) {
	od := c.m.outlier
	if od == nil {
		return
	}
	ticks := int64(now.Sub(c.odStart) / od.interval)
	if ticks <= c.odTicks {
		return
	}
	from := c.odTicks + 1
	if ticks-from > 100000 { // a huge clock jump: the last ticks decide
		from = ticks - 100000
	}
	for t := from; t <= ticks; t++ {
		tickAt := c.odStart.Add(time.Duration(t) * od.interval)
		for _, h := range c.all {
			if h.ejected {
				ej := min(od.baseEjection*time.Duration(h.backoff), od.maxEjection)
				if tickAt.Sub(h.ejectedAt) >= ej {
					h.ejected = false
					c.active--
					h.cons5xx, h.consGateway = 0, 0
					h.lastUneject, h.hasUneject = tickAt, true
					c.e.stats.setGauge("cluster."+c.m.name+".outlier_detection.ejections_active", int64(c.active))
				}
			}
		}
		for _, h := range c.all {
			if !h.ejected && h.hasUneject && tickAt.Sub(h.lastUneject) >= od.interval && h.backoff > 0 {
				h.backoff--
			}
		}
	}
	c.odTicks = ticks
}

type ejectionType int

const (
	ejectConsecutive5xx ejectionType = iota
	ejectConsecutiveGateway
)

// putHTTPCode is DetectorHostMonitorImpl::putHttpResponseCode.
func (c *clusterRT) putHTTPCode(h *hostState, code int) {
	od := c.m.outlier
	if od == nil || h == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.e.now()
	c.advance(now)
	if code >= 500 && code <= 599 {
		if code == 502 || code == 503 || code == 504 {
			h.consGateway++
			if h.consGateway == od.consecutiveGateway {
				c.onConsecutive(h, ejectConsecutiveGateway, now)
			}
		} else {
			h.consGateway = 0
		}
		h.cons5xx++
		if h.cons5xx == od.consecutive5xx {
			c.onConsecutive(h, ejectConsecutive5xx, now)
		}
		return
	}
	h.cons5xx, h.consGateway = 0, 0
}

func (c *clusterRT) onConsecutive(h *hostState, t ejectionType, now time.Time) {
	if h.ejected {
		return
	}
	pfx := "cluster." + c.m.name + ".outlier_detection."
	kind := "consecutive_5xx"
	if t == ejectConsecutiveGateway {
		kind = "consecutive_gateway_failure"
	}
	c.e.stats.inc(pfx + "ejections_detected_" + kind)
	c.ejectHost(h, t, now, pfx, kind)
	if t == ejectConsecutive5xx {
		h.cons5xx = 0
	} else {
		h.consGateway = 0
	}
}

// ejectHost is DetectorImpl::ejectHost. max_ejection_percent is checked
// against all hosts of the cluster (not per priority): with two hosts and
// the default 10%, 100×1/2 = 50% > 10%, so nothing is ever ejected
// (ejections_overflow) unless always_eject_one_host is set.
func (c *clusterRT) ejectHost(h *hostState, t ejectionType, now time.Time, pfx, kind string) {
	od := c.m.outlier
	maxPct := min(100, od.maxEjectionPercent)
	pct := 100.0 * float64(c.active+1) / float64(len(c.all))
	should := pct <= float64(maxPct)
	if od.alwaysEjectOneHost {
		should = c.active == 0 || should
	}
	if !should {
		c.e.stats.inc(pfx + "ejections_overflow")
		return
	}
	enforce := od.enforcing5xx
	if t == ejectConsecutiveGateway {
		enforce = od.enforcingGateway
	}
	if enforce < 100 { // 0 or 100 only (checked at load)
		return
	}
	c.active++
	c.e.stats.inc(pfx + "ejections_enforced_total")
	c.e.stats.inc(pfx + "ejections_enforced_" + kind)
	c.e.stats.setGauge(pfx+"ejections_active", int64(c.active))
	h.ejected, h.ejectedAt = true, now
	h.numEjections++
	if time.Duration(h.backoff)*od.baseEjection < od.maxEjection+od.baseEjection {
		h.backoff++
	}
}

// priorityLoad computes the healthy load per priority (percent), as
// LoadBalancerBase does: health = min(100, overprovisioning × healthy/total);
// excluded priorities (previous_priorities) count as 0 health. When nothing
// is healthy all load goes to priority 0 (panic).
func (c *clusterRT) priorityLoad(excluded map[int]bool) []int {
	n := len(c.prios)
	health := make([]int, n)
	total := 0
	for p, hs := range c.prios {
		if excluded[p] {
			continue
		}
		healthy := 0
		for _, h := range hs {
			if h.healthy() {
				healthy++
			}
		}
		health[p] = min(100, c.m.overprov*healthy/len(hs))
		total += health[p]
	}
	load := make([]int, n)
	if total == 0 {
		if len(excluded) > 0 {
			// previous_priorities: every priority excluded or unhealthy → start over.
			return c.priorityLoad(nil)
		}
		load[0] = 100
		return load
	}
	norm := min(100, total)
	remaining := 100
	for p := range health {
		l := min(remaining, health[p]*100/norm)
		load[p] = l
		remaining -= l
	}
	for p := range load { // rounding residue to the first loaded priority
		if remaining == 0 {
			break
		}
		if load[p] > 0 {
			load[p] += remaining
			remaining = 0
		}
	}
	return load
}

// pick selects a host: a priority by load, then round-robin among its
// healthy hosts (all hosts when the priority is in panic, below 50% healthy).
// intN draws the priority roll; it must be safe for concurrent use (the
// Envoy's shared generator under its own lock).
func (c *clusterRT) pick(excluded map[int]bool, intN func(int) int) *hostState {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.advance(c.e.now())
	load := c.priorityLoad(excluded)
	x := intN(100)
	prio := 0
	for p, l := range load {
		if x < l {
			prio = p
			break
		}
		x -= l
	}
	hs := c.prios[prio]
	var cand []*hostState
	healthy := 0
	for _, h := range hs {
		if h.healthy() {
			healthy++
		}
	}
	if healthy*100/len(hs) < defaultPanicThreshold {
		cand = hs
	} else {
		for _, h := range hs {
			if h.healthy() {
				cand = append(cand, h)
			}
		}
	}
	h := cand[c.rr[prio]%len(cand)]
	c.rr[prio]++
	return h
}

// HostHealth reports per host whether outlier detection has ejected it,
// keyed "priority/address" (config address), evaluated at the clock's now.
func (c *clusterRT) snapshot() map[string]bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.advance(c.e.now())
	out := map[string]bool{}
	for _, h := range c.all {
		out[h.key] = h.ejected
	}
	return out
}
