package openai

import "bytes"

// DefaultMaxEventSize bounds one server-sent event when
// SSEScanner.MaxEventSize is zero.
const DefaultMaxEventSize = 1 << 20

// Event is one dispatched server-sent event.
type Event struct {
	// Data is the event's data: the values of its data lines joined with
	// "\n", without the "data:" prefix and its optional single space. It is
	// valid only during the callback.
	Data []byte
	// Start and End are the event's byte span in the whole stream, End
	// exclusive. The span runs from the first byte of the event's first line
	// (comment or field) through the line terminator of the blank line that
	// ends it, so cutting [Start, End) out of a stream removes exactly this
	// event and leaves a valid stream.
	Start, End int64
	// Done is set for the OpenAI end-of-stream sentinel "data: [DONE]".
	Done bool
}

// SSEScanner splits a text/event-stream body into events as it arrives in
// chunks of any size, split at any byte. It follows the WHATWG
// event-stream grammar: lines end in "\n", "\r\n" or "\r"; lines starting
// with ":" are comments; "data:" takes an optional single space; several
// data lines are joined with "\n"; a blank line dispatches the event; a
// leading byte-order mark is ignored. Fields other than data (event, id,
// retry) are part of the event's span but are not reported.
//
// Memory is bounded: the bytes of the incomplete trailing event are held
// until it completes, up to MaxEventSize. A larger event is dropped (not
// dispatched), counted in Dropped, and its bytes are no longer held.
//
// The zero value is ready to use. An SSEScanner is not safe for concurrent
// use; one belongs to one response stream.
type SSEScanner struct {
	// MaxEventSize is the largest event, in bytes including its lines'
	// terminators, that is dispatched. Zero means DefaultMaxEventSize.
	MaxEventSize int

	buf  []byte // stream bytes from offset base on, up to the end of the last chunk
	base int64  // stream offset of buf[0]
	pos  int64  // stream offset just past the last byte fed

	scan       int64 // stream offset where the search for the next line end resumes
	lfNext     int64 // 1 + stream offset of the next known "\n" (0: none known)
	lfSearched int64 // no "\n" in [scan, lfSearched) when lfNext is stale
	lineStart  int64 // start of the line being read
	blockStart int64 // start of the event (block of lines) being read

	hasData  bool
	multi    bool     // more than one data line: the value is in data
	data0    [2]int64 // span of the first data value, when !multi
	data     []byte   // joined data values, when multi
	skipping bool     // the current event outgrew MaxEventSize; bytes are not held
	dropped  int64
	events   int64
}

// Reset clears the stream state for reuse, keeping MaxEventSize and the
// buffers' memory (unless it grew unusually large).
func (s *SSEScanner) Reset() {
	buf, data := s.buf[:0], s.data[:0]
	if cap(buf) > 4*s.maxEvent() {
		buf = nil
	}
	if cap(data) > s.maxEvent() {
		data = nil
	}
	*s = SSEScanner{MaxEventSize: s.MaxEventSize, buf: buf, data: data}
}

// Dropped is the number of events dropped for exceeding MaxEventSize.
func (s *SSEScanner) Dropped() int64 { return s.dropped }

// Events is the number of events dispatched so far.
func (s *SSEScanner) Events() int64 { return s.events }

// Offset is the number of stream bytes fed so far.
func (s *SSEScanner) Offset() int64 { return s.pos }

func (s *SSEScanner) maxEvent() int {
	if s.MaxEventSize > 0 {
		return s.MaxEventSize
	}
	return DefaultMaxEventSize
}

// pendingStart is the stream offset of the first byte still held: the start
// of the incomplete event, or (while an oversized event is being skipped)
// the first byte not yet scanned.
func (s *SSEScanner) pendingStart() int64 {
	if s.skipping {
		return s.scan
	}
	return s.blockStart
}

// Pending returns the bytes of the incomplete trailing event: those fed but
// not yet part of a dispatched event, a comment block or a dropped event.
// The slice is valid until the next call to Feed or Reset.
func (s *SSEScanner) Pending() []byte { return s.buf[s.pendingStart()-s.base:] }

// window returns the fed stream bytes in [from, to). Both must lie within
// what Feed still holds: from the pending start before the last Feed up to
// the end of the last chunk.
func (s *SSEScanner) window(from, to int64) []byte { return s.buf[from-s.base : to-s.base] }

// Feed consumes the next chunk of the stream and calls fn for each event it
// completes, in order. It returns the number of bytes pending (the
// incomplete trailing event; see Pending).
//
// An event whose blank line ends with "\r" as the very last byte of the
// chunk is dispatched by the next Feed (or Flush): the byte that follows
// decides whether the terminator is "\r" or "\r\n", and so where End is.
func (s *SSEScanner) Feed(chunk []byte, fn func(ev Event)) int {
	s.compact()
	s.buf = append(s.buf, chunk...)
	s.pos += int64(len(chunk))
	s.lines(fn, false)
	return len(s.Pending())
}

// Flush ends the stream: it dispatches an event held back only because its
// final "\r" was the last byte fed. An incomplete trailing event is not
// dispatched (as the event-stream grammar says); its bytes stay in Pending.
func (s *SSEScanner) Flush(fn func(ev Event)) {
	s.lines(fn, true)
}

// compact drops bytes before the pending start, which callers of window
// may have used after the previous Feed returned.
func (s *SSEScanner) compact() {
	keep := s.pendingStart()
	n := int(keep - s.base)
	if n == 0 {
		return
	}
	rest := copy(s.buf, s.buf[n:])
	s.buf = s.buf[:rest]
	s.base = keep
	if rest == 0 && cap(s.buf) > 4*s.maxEvent() {
		s.buf = nil // one huge chunk should not pin its memory for the whole stream
	}
}

// lines processes every complete line from s.scan on.
func (s *SSEScanner) lines(fn func(Event), eof bool) {
	for s.scan < s.pos {
		n, tl := s.lineEnd()
		if tl == 0 {
			if s.scan+int64(n) < s.pos && eof { // a final "\r": at the end of the stream it is the terminator
				tl = 1
			} else {
				s.scan += int64(n)
				break
			}
		}
		term := s.scan + int64(n)
		s.scan = term + int64(tl)
		s.line(s.lineStart, term, s.scan, fn)
		s.lineStart = s.scan
	}
	if !s.skipping && s.pos-s.blockStart > int64(s.maxEvent()) {
		// The event outgrew the limit before its end arrived: stop holding
		// it. Its remaining lines are scanned only to find where it ends.
		s.skipping = true
		s.dropped++
		s.resetEvent()
	}
}

// lineEnd finds the first line terminator at or after s.scan. It returns
// its index relative to s.scan and its length (1 or 2). Length 0 means no
// complete terminator: n is then the number of bytes left, or the index of a
// final "\r" whose meaning depends on the next byte.
func (s *SSEScanner) lineEnd() (n, tl int) {
	b := s.buf[s.scan-s.base:]
	lim := len(b)
	if lf := s.nextLF(); lf >= 0 {
		lim = int(lf - s.scan)
	}
	if cr := bytes.IndexByte(b[:lim], '\r'); cr >= 0 {
		switch {
		case cr+1 == len(b):
			return cr, 0
		case b[cr+1] == '\n':
			return cr, 2
		}
		return cr, 1
	}
	if lim < len(b) {
		return lim, 1
	}
	return len(b), 0
}

// nextLF returns the stream offset of the first "\n" at or after s.scan, or
// -1. It remembers what it found and how far it looked, so a stream that
// uses only "\r" line endings is not searched to its end once per line.
func (s *SSEScanner) nextLF() int64 {
	if s.lfNext > s.scan {
		return s.lfNext - 1
	}
	from := max(s.scan, s.lfSearched)
	if i := bytes.IndexByte(s.buf[from-s.base:], '\n'); i >= 0 {
		s.lfNext = from + int64(i) + 1
		return s.lfNext - 1
	}
	s.lfSearched = s.pos
	return -1
}

// line handles one complete line [start, term) whose terminator ends at next.
func (s *SSEScanner) line(start, term, next int64, fn func(Event)) {
	if start == term { // blank line
		if start != s.blockStart {
			s.endEvent(next, fn)
		}
		s.blockStart = next
		return
	}
	if s.skipping {
		return
	}
	l := s.buf[start-s.base : term-s.base]
	if start == 0 && bytes.HasPrefix(l, bom) {
		l = l[len(bom):]
		start += int64(len(bom))
	}
	if len(l) == 0 || l[0] == ':' {
		return // comment
	}
	if !bytes.HasPrefix(l, dataField) || (len(l) > 4 && l[4] != ':') {
		return // event, id, retry and unknown fields
	}
	vs := start + 4 // value start: after "data"
	if len(l) > 4 {
		vs++ // the colon
		if len(l) > 5 && l[5] == ' ' {
			vs++
		}
	}
	switch {
	case !s.hasData:
		s.hasData = true
		s.data0 = [2]int64{vs, term}
	case !s.multi:
		s.multi = true
		s.data = append(s.data[:0], s.window(s.data0[0], s.data0[1])...)
		fallthrough
	default:
		s.data = append(s.data, '\n')
		s.data = append(s.data, s.window(vs, term)...)
	}
}

var (
	bom       = []byte("\xEF\xBB\xBF")
	dataField = []byte("data")
	doneData  = []byte("[DONE]")
)

// endEvent finishes the event that a blank line ending at end closes.
func (s *SSEScanner) endEvent(end int64, fn func(Event)) {
	defer s.resetEvent()
	if s.skipping {
		s.skipping = false
		return
	}
	if end-s.blockStart > int64(s.maxEvent()) {
		s.dropped++
		return
	}
	if !s.hasData {
		return // comments or other fields only: nothing to dispatch
	}
	d := s.data
	if !s.multi {
		d = s.window(s.data0[0], s.data0[1])
	}
	s.events++
	fn(Event{Data: d, Start: s.blockStart, End: end, Done: bytes.Equal(bytes.TrimSpace(d), doneData)})
}

func (s *SSEScanner) resetEvent() {
	s.hasData, s.multi = false, false
	s.data = s.data[:0]
}

// SSEFilter removes chosen events from an event stream as it passes through,
// chunk by chunk, and leaves every other byte exactly as it was. Switchyard
// uses it to take out the usage-only chunk it asked for with
// stream_options.include_usage when the client did not ask for it.
//
// Latency: complete events, comments and blank lines are emitted in the
// same call that completes them, but an incomplete trailing event is held
// until its end arrives, since it cannot be judged before. A client sees
// each event once it is whole, never a partial one; a chunk that ends in
// the middle of an event delays that event's first bytes until the rest
// arrives (for OpenAI-style streams, the next chunk). Events larger than the
// scanner's MaxEventSize are not held: they pass through unfiltered.
//
// The zero value is ready to use; after endOfStream it is reset for reuse.
type SSEFilter struct {
	// Scanner holds the stream state; set Scanner.MaxEventSize to change
	// the limit.
	Scanner SSEScanner
	emitted int64 // stream offset up to which bytes were emitted or dropped
}

// Reset clears the filter for a new stream.
func (f *SSEFilter) Reset() {
	f.Scanner.Reset()
	f.emitted = 0
}

// Filter consumes the next chunk and appends to dst the bytes to emit for
// it: everything except events for which drop returns true, and except an
// incomplete trailing event, which is held for a later call. drop sees each
// complete event's data (valid only during the call). With endOfStream set,
// everything held is emitted (an incomplete final event as it is) and the
// filter is reset.
func (f *SSEFilter) Filter(chunk []byte, endOfStream bool, drop func(data []byte) bool, dst []byte) []byte {
	s := &f.Scanner
	fn := func(ev Event) {
		if drop(ev.Data) {
			dst = append(dst, s.window(f.emitted, ev.Start)...)
			f.emitted = ev.End
		}
	}
	s.Feed(chunk, fn)
	limit := s.pendingStart()
	if endOfStream {
		s.Flush(fn)
		limit = s.pos
	}
	if limit > f.emitted {
		dst = append(dst, s.window(f.emitted, limit)...)
		f.emitted = limit
	}
	if endOfStream {
		f.Reset()
	}
	return dst
}
