// Command timer runs several commands in interleaved rounds and reports the
// median and 99th percentile of their whole-process wall-clock time.
// Interleaving (every command runs a few times in each round, in a rotating
// order) spreads the noise of a busy machine evenly over all of them, which
// timing each command in one block would not.
//
//	timer -rounds 30 -runs 10 'pizauth=/path/pizauth show acct' 'floor=/path/floor acct'
//
// Each argument is NAME=COMMAND; COMMAND is split on spaces and run without
// a shell, its stdout discarded. Any failed run aborts the measurement. The
// last lines give the median of the first command divided by each other's.
package main

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"time"
)

type command struct {
	name  string
	argv  []string
	times []time.Duration
}

func main() {
	rounds := flag.Int("rounds", 30, "number of rounds")
	runs := flag.Int("runs", 10, "runs of each command per round")
	flag.Parse()
	if flag.NArg() == 0 || *rounds < 1 || *runs < 1 {
		fmt.Fprintln(os.Stderr, "usage: timer [-rounds n] [-runs n] NAME=COMMAND...")
		os.Exit(2)
	}
	var cmds []*command
	for _, a := range flag.Args() {
		name, line, ok := strings.Cut(a, "=")
		argv := strings.Fields(line)
		if !ok || name == "" || len(argv) == 0 {
			fmt.Fprintf(os.Stderr, "timer: %q is not NAME=COMMAND\n", a)
			os.Exit(2)
		}
		cmds = append(cmds, &command{name: name, argv: argv})
	}

	// One untimed run each, so the first timed run does not pay for
	// loading the binary from disk.
	for _, c := range cmds {
		if _, err := run(c.argv); err != nil {
			fail(c, err)
		}
	}
	for r := 0; r < *rounds; r++ {
		for i := range cmds {
			c := cmds[(r+i)%len(cmds)]
			for j := 0; j < *runs; j++ {
				d, err := run(c.argv)
				if err != nil {
					fail(c, err)
				}
				c.times = append(c.times, d)
			}
		}
	}

	fmt.Printf("%-14s %6s %11s %11s\n", "command", "runs", "median ms", "p99 ms")
	for _, c := range cmds {
		slices.Sort(c.times)
		fmt.Printf("%-14s %6d %11.3f %11.3f\n", c.name, len(c.times), ms(median(c.times)), ms(p99(c.times)))
	}
	for _, c := range cmds[1:] {
		fmt.Printf("median %s / %s: %.3f\n", cmds[0].name, c.name, float64(median(cmds[0].times))/float64(median(c.times)))
	}
}

func run(argv []string) (time.Duration, error) {
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stderr = os.Stderr
	start := time.Now()
	err := cmd.Run()
	return time.Since(start), err
}

// median expects sorted input.
func median(t []time.Duration) time.Duration {
	n := len(t)
	if n%2 == 1 {
		return t[n/2]
	}
	return (t[n/2-1] + t[n/2]) / 2
}

// p99 is the nearest-rank 99th percentile of sorted input.
func p99(t []time.Duration) time.Duration {
	i := (len(t)*99+99)/100 - 1
	return t[i]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func fail(c *command, err error) {
	fmt.Fprintf(os.Stderr, "timer: %s: %v\n", c.name, err)
	os.Exit(1)
}
