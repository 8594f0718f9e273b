package main

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestDemo runs the demo as `make demo` does and checks what it says it shows: flags written by
// one client and evaluated from the table by a daemon-mode one, an update, and an outage that a
// client with StaleIfError rides out while one without it falls back to the defaults.
func TestDemo(t *testing.T) {
	var out strings.Builder
	require.NoError(t, run(&out))
	for _, want := range []string{
		"reader: alice new-checkout=true  (TARGET_MATCH)",
		"reader: bob   new-checkout=false (FALLTHROUGH)",
		`a new daemon client reads banner-text="Updated while the reader runs"`,
		"DynamoDB stopped",
		`a daemon client with StaleIfError reads banner-text="Updated while the reader runs"`,
		`a daemon client without StaleIfError reads banner-text="(default)"`,
		"stale reads served: 1",
	} {
		assert.Contains(t, out.String(), want)
	}
}
