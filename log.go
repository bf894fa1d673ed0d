package main

import (
	"fmt"
	"io"
	"log/syslog"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// Log levels, chosen by the number of -v flags given to `pizauth server`.
const (
	lvlError = iota
	lvlWarn
	lvlInfo
	lvlDebug
	lvlTrace
)

var levelNames = [...]string{"ERROR", "WARN", "INFO", "DEBUG", "TRACE"}

// logQueueLen bounds the lines waiting for the writer.
const logQueueLen = 1024

// logger is the sink for diagnostics, which hold no secret. A write can
// block for ever (an unread pipe, a stalled syslog), so logf only queues
// lines for one writer, dropping and counting them when the queue is full.
type logger struct {
	level   atomic.Int32
	once    sync.Once // starts the writer: only a server ever logs
	queue   chan logLine
	dropped atomic.Int64

	mu  sync.Mutex     // guards w and sys against setOutput during a write
	w   io.Writer      // stderr with -d; nil when logging to syslog
	sys *syslog.Writer // nil unless detached
}

// logLine is a queued message, or a marker flush waits for.
type logLine struct {
	lvl     int
	t       time.Time
	msg     string
	flushed chan struct{}
}

// lg is built by the linker: `pizauth show` pays for no queue.
var lg = &logger{w: os.Stderr}

func (l *logger) start() {
	l.once.Do(func() {
		l.queue = make(chan logLine, logQueueLen)
		go l.writer()
	})
}

// setLevel changes the verbosity; safe to call at any time.
func (l *logger) setLevel(n int) { l.level.Store(int32(min(n, lvlTrace))) }

// setOutput sends later lines to w, or to sys when sys is not nil.
func (l *logger) setOutput(w io.Writer, sys *syslog.Writer) {
	l.mu.Lock()
	l.w, l.sys = w, sys
	l.mu.Unlock()
}

func (l *logger) logf(lvl int, format string, args ...any) {
	if int32(lvl) > l.level.Load() {
		return
	}
	l.start()
	select {
	case l.queue <- logLine{lvl: lvl, t: time.Now(), msg: fmt.Sprintf(format, args...)}:
	default:
		l.dropped.Add(1)
	}
}

// flush waits up to d for the lines queued so far to be written.
func (l *logger) flush(d time.Duration) bool {
	l.start()
	done := make(chan struct{})
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case l.queue <- logLine{flushed: done}:
	case <-t.C:
		return false
	}
	select {
	case <-done:
		return true
	case <-t.C:
		return false
	}
}

// writer is the only goroutine that writes log lines.
func (l *logger) writer() {
	for line := range l.queue {
		if line.flushed != nil {
			close(line.flushed)
			continue
		}
		if n := l.dropped.Swap(0); n > 0 {
			l.write(lvlError, time.Now(), fmt.Sprintf("%d log lines dropped: the log output could not keep up", n))
		}
		l.write(line.lvl, line.t, line.msg)
	}
}

func (l *logger) write(lvl int, t time.Time, msg string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.sys != nil {
		switch lvl {
		case lvlError:
			l.sys.Err(msg)
		case lvlWarn:
			l.sys.Warning(msg)
		case lvlInfo:
			l.sys.Info(msg)
		default:
			l.sys.Debug(msg)
		}
		return
	}
	if l.w != nil {
		fmt.Fprintf(l.w, "%s %s %s\n", t.Format("2006-01-02T15:04:05"), levelNames[lvl], msg)
	}
}

func logError(format string, args ...any) { lg.logf(lvlError, format, args...) }
func logWarn(format string, args ...any)  { lg.logf(lvlWarn, format, args...) }
func logInfo(format string, args ...any)  { lg.logf(lvlInfo, format, args...) }
func logDebug(format string, args ...any) { lg.logf(lvlDebug, format, args...) }
func logTrace(format string, args ...any) { lg.logf(lvlTrace, format, args...) }
