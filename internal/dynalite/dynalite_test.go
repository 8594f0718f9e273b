package dynalite

import (
	"bufio"
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The launcher of `make dynamodb` keeps serving when its standard input is closed (started from
// a script, or with </dev/null), and Ctrl-C stops it cleanly.
func TestStandaloneIgnoresClosedStdin(t *testing.T) {
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("node is not on PATH")
	}
	if _, err := os.Stat(filepath.Join(dir(), "node_modules", "dynalite")); err != nil {
		t.Skip("dynalite is not installed; run make deps")
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	port := l.Addr().(*net.TCPAddr).Port
	require.NoError(t, l.Close())

	cmd := exec.Command(node, filepath.Join(dir(), "launch.js"), "--port", strconv.Itoa(port))
	cmd.Stdin = nil // /dev/null: end of input at once
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	exited := false
	t.Cleanup(func() {
		if !exited {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	})

	endpoint := "http://127.0.0.1:" + strconv.Itoa(port)
	lines := bufio.NewScanner(stdout)
	var banner []string
	for lines.Scan() {
		banner = append(banner, lines.Text())
		if strings.Contains(lines.Text(), "AWS_EC2_METADATA_DISABLED") {
			break
		}
	}
	text := strings.Join(banner, "\n")
	require.Contains(t, text, "listening on "+endpoint)
	assert.Contains(t, text, "export AWS_ENDPOINT_URL_DYNAMODB="+endpoint)
	assert.Contains(t, text, "AWS_ACCESS_KEY_ID=local")

	client := dynamodb.New(dynamodb.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String(endpoint),
		Credentials:  credentials.NewStaticCredentialsProvider("local", "local", ""),
	})
	for i := 0; i < 3; i++ {
		_, err := client.ListTables(context.Background(), &dynamodb.ListTablesInput{})
		require.NoError(t, err, "call %d: the server must still be up with its stdin closed", i)
	}

	require.NoError(t, cmd.Process.Signal(syscall.SIGINT))
	exited = true
	assert.NoError(t, cmd.Wait(), "Ctrl-C ends it with status 0")
}
