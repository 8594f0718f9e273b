// Package dynalite starts the pinned local DynamoDB API server (dynalite, an npm package installed
// in this folder by `make deps`) for tests and the demo.
package dynalite

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"
)

// startTimeout bounds how long the server may take to print its port.
const startTimeout = 30 * time.Second

// Server is a running dynalite process, in memory, listening on 127.0.0.1.
type Server struct {
	// Endpoint is the server's base URL, for dynamodb.Options.BaseEndpoint.
	Endpoint string

	cmd   *exec.Cmd
	stdin io.WriteCloser
}

// dir is this package's folder, where package.json and node_modules are.
func dir() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Dir(file)
}

// Start launches dynalite on a free port and waits until it listens.
func Start() (*Server, error) {
	node, err := exec.LookPath("node")
	if err != nil {
		return nil, errors.New("dynalite: node is not on PATH; install Node.js 20 or newer, or set DYNAMODB_ENDPOINT")
	}
	if _, err := os.Stat(filepath.Join(dir(), "node_modules", "dynalite")); err != nil {
		return nil, fmt.Errorf("dynalite: not installed in %s; run `make deps` (npm ci there)", dir())
	}
	cmd := exec.Command(node, filepath.Join(dir(), "launch.js"))
	cmd.Dir = dir()
	cmd.Stderr = os.Stderr
	// Its own process group, so that Close ends it and anything it started.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("dynalite: starting node: %w", err)
	}
	s := &Server{cmd: cmd, stdin: stdin}
	port := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(stdout).ReadString('\n')
		port <- strings.TrimSpace(line)
		_, _ = io.Copy(io.Discard, stdout)
	}()
	select {
	case p := <-port:
		if p == "" {
			s.Close()
			return nil, errors.New("dynalite: exited before listening")
		}
		s.Endpoint = "http://127.0.0.1:" + p
		return s, nil
	case <-time.After(startTimeout):
		s.Close()
		return nil, fmt.Errorf("dynalite: no port after %v", startTimeout)
	}
}

// Close stops the server and waits for it to exit.
func (s *Server) Close() {
	_ = s.stdin.Close()
	_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
	_ = s.cmd.Wait()
}
