package lddynamodb_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The Go snippets of the README and docs/ are copied from the package's examples, which compile:
// every run of non-blank lines of a snippet must be found, line by line, in consecutive lines of
// an Example function (a snippet line may be part of the example's line), or of an example
// program under examples/ (built and tested in its own module where it has one).
func TestDocSnippetsAreExamples(t *testing.T) {
	var examples []string
	sources, err := filepath.Glob("*_test.go")
	require.NoError(t, err)
	programs, err := filepath.Glob("examples/*/main.go")
	require.NoError(t, err)
	for _, name := range append(sources, programs...) {
		data, err := os.ReadFile(name)
		require.NoError(t, err)
		if strings.Contains(string(data), "\nfunc Example") || strings.HasPrefix(name, "examples") {
			for _, line := range strings.Split(string(data), "\n") {
				examples = append(examples, strings.TrimSpace(line))
			}
		}
	}
	docs, err := filepath.Glob("docs/*.md")
	require.NoError(t, err)
	snippets := 0
	for _, doc := range append([]string{"README.md"}, docs...) {
		data, err := os.ReadFile(doc)
		require.NoError(t, err)
		for i, block := range strings.Split(string(data), "```go\n")[1:] {
			code, _, _ := strings.Cut(block, "```")
			for _, run := range strings.Split(code, "\n\n") {
				snippets++
				lines := strings.Split(strings.TrimSpace(run), "\n")
				assert.True(t, foundIn(examples, lines), "%s, Go snippet %d: not in an example:\n%s", doc, i+1, run)
			}
		}
	}
	assert.NotZero(t, snippets)
}

// foundIn says whether the lines are parts of consecutive lines of the source.
func foundIn(source, lines []string) bool {
	for start := range source {
		if start+len(lines) > len(source) {
			return false
		}
		match := true
		for j, line := range lines {
			if !strings.Contains(source[start+j], strings.TrimSpace(line)) {
				match = false
				break
			}
		}
		if match {
			return true
		}
	}
	return false
}

// TestExamplesRunUnlessTheyNeedAServer checks that every example has an Output, and so runs with
// the tests, unless it needs a server: LaunchDarkly (an SDK client other than a daemon-mode one
// without events) or a DynamoDB table (CreateTable).
func TestExamplesRunUnlessTheyNeedAServer(t *testing.T) {
	sources, err := filepath.Glob("*_test.go")
	require.NoError(t, err)
	examples := 0
	for _, name := range sources {
		data, err := os.ReadFile(name)
		require.NoError(t, err)
		for _, fn := range strings.Split(string(data), "\nfunc Example")[1:] {
			body, _, _ := strings.Cut(fn, "\n}\n")
			examples++
			needsServer := strings.Contains(body, "CreateTable(") || strings.Contains(body, "MakeCustomClient(") &&
				!(strings.Contains(body, "ExternalUpdatesOnly()") && strings.Contains(body, "NoEvents()"))
			name, _, _ := strings.Cut(fn, "(")
			assert.True(t, needsServer || strings.Contains(body, "// Output:"), "Example%s can run without a server: give it an Output", name)
		}
	}
	assert.NotZero(t, examples)
}

// TestQuickStartOnAWSUndoesTheLocalSettings checks that the AWS quick start unsets or sets again
// every variable that the local one exports: one left over would point at the local server, use
// its fake keys, or (AWS_EC2_METADATA_DISABLED) hide an EC2 instance role.
func TestQuickStartOnAWSUndoesTheLocalSettings(t *testing.T) {
	data, err := os.ReadFile("README.md")
	require.NoError(t, err)
	section := func(title string) string {
		_, rest, found := strings.Cut(string(data), "\n## "+title+"\n")
		require.True(t, found, title)
		body, _, _ := strings.Cut(rest, "\n## ")
		return body
	}
	variables := func(text, command string) []string {
		var names []string
		for _, line := range strings.Split(text, "\n") {
			if words := strings.Fields(line); len(words) > 0 && words[0] == command {
				for _, word := range words[1:] {
					name, _, _ := strings.Cut(word, "=")
					names = append(names, name)
				}
			}
		}
		return names
	}
	local := variables(section("Quick start, on your machine"), "export")
	require.Contains(t, local, "AWS_ENDPOINT_URL_DYNAMODB")
	onAWS := section("Quick start, on AWS")
	undone := append(variables(onAWS, "unset"), variables(onAWS, "export")...)
	for _, name := range local {
		assert.Contains(t, undone, name, "the AWS quick start leaves %s as the local one set it", name)
	}
}
