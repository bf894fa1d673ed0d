package main

import (
	"fmt"
	"io"
	"log/syslog"
	"os"
	"sync"
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

// logger is the single sink for the server's diagnostics. It never receives
// a token, refresh token, code, verifier or client secret: callers log
// account names, URLs without secrets and error texts that were built
// without secrets (see tokenError), nothing else.
type logger struct {
	mu    sync.Mutex
	level int
	w     io.Writer      // stderr with -d; nil when logging to syslog
	sys   *syslog.Writer // nil unless detached
}

var lg = &logger{level: lvlError, w: os.Stderr}

// setLevel changes the verbosity; safe to call at any time.
func (l *logger) setLevel(n int) {
	if n > lvlTrace {
		n = lvlTrace
	}
	l.mu.Lock()
	l.level = n
	l.mu.Unlock()
}

func (l *logger) enabled(lvl int) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return lvl <= l.level
}

func (l *logger) logf(lvl int, format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if lvl > l.level {
		return
	}
	msg := fmt.Sprintf(format, args...)
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
		fmt.Fprintf(l.w, "%s %s %s\n", time.Now().Format("2006-01-02T15:04:05"), levelNames[lvl], msg)
	}
}

func logError(format string, args ...any) { lg.logf(lvlError, format, args...) }
func logWarn(format string, args ...any)  { lg.logf(lvlWarn, format, args...) }
func logInfo(format string, args ...any)  { lg.logf(lvlInfo, format, args...) }
func logDebug(format string, args ...any) { lg.logf(lvlDebug, format, args...) }
func logTrace(format string, args ...any) { lg.logf(lvlTrace, format, args...) }
