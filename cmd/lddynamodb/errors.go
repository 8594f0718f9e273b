package main

import (
	"errors"
	"fmt"
	"net/url"
	"sort"
	"strings"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// target is the region and endpoint that a command's client points at.
type target struct {
	region   string
	endpoint string // "" for the region's AWS endpoint
}

func (t target) String() string {
	if t.endpoint == "" {
		return fmt.Sprintf("region %s (AWS endpoint)", t.region)
	}
	return fmt.Sprintf("region %s, endpoint %s", t.region, t.endpoint)
}

// local says whether the endpoint is a DynamoDB on this machine, which takes any credentials.
func (t target) local() bool {
	u, err := url.Parse(t.endpoint)
	if err != nil || t.endpoint == "" {
		return false
	}
	host := u.Hostname()
	return host == "localhost" || host == "::1" || strings.HasPrefix(host, "127.")
}

// credentialsError says that the AWS configuration chain found no usable credentials.
type credentialsError struct {
	target target
	cause  error // nil when the chain has no provider at all
}

func (e *credentialsError) Error() string {
	msg := "no AWS credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, use --profile (or AWS_PROFILE) with a profile that has them, or run with an IAM role"
	if e.target.local() {
		msg += fmt.Sprintf("; %s is a local endpoint, so any keys work (AWS_ACCESS_KEY_ID=local AWS_SECRET_ACCESS_KEY=local)", e.target.endpoint)
	}
	return msg
}

func (e *credentialsError) Unwrap() error { return e.cause }

// checkEndpoint fails at once for an endpoint without an http:// or https:// scheme, which the
// AWS SDK would otherwise retry as an unresolvable host.
func checkEndpoint(source, endpoint string) error {
	if endpoint == "" {
		return nil
	}
	u, err := url.Parse(endpoint)
	if err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != "" {
		return nil
	}
	return fmt.Errorf("%s %q is not a URL: add the scheme, as in http://%s (or https:// for a remote endpoint)",
		source, endpoint, strings.TrimPrefix(strings.TrimPrefix(endpoint, "//"), "://"))
}

// explain turns an error into the line the command prints: without the package's own
// "lddynamodb: " (the command adds it), and with what to do about a missing table.
func (a *app) explain(err error) string {
	msg := strings.TrimPrefix(err.Error(), "lddynamodb: ")
	var endpoint *endpointError
	if errors.As(err, &endpoint) {
		return endpoint.Error()
	}
	var profile *profileError
	if errors.As(err, &profile) {
		return profile.Error()
	}
	var notFound *types.ResourceNotFoundException
	if errors.As(err, &notFound) && a.table != "" {
		return fmt.Sprintf("table %q does not exist in %s: create it with \"lddynamodb create-table %s\", or check --region and --endpoint",
			a.table, a.target, a.table)
	}
	return msg
}

// usageError is a mistake in the command line; the command's usage follows it.
type usageError struct{ err error }

func (e *usageError) Error() string { return e.err.Error() }
func (e *usageError) Unwrap() error { return e.err }

// args checks the number of positional arguments, naming the ones that are missing.
func args(names ...string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		switch {
		case len(args) < len(names):
			return &usageError{fmt.Errorf("%s: missing %s", cmd.Name(), strings.Join(names[len(args):], " and "))}
		case len(args) > len(names):
			return &usageError{fmt.Errorf("%s: unexpected argument %q", cmd.Name(), args[len(names)])}
		}
		return nil
	}
}

// flagError reports a bad flag with the command's usage, and for an unknown flag suggests the
// closest known one.
func flagError(cmd *cobra.Command, err error) error {
	var notExist *pflag.NotExistError
	if errors.As(err, &notExist) {
		if name := closestFlag(cmd, strings.TrimLeft(notExist.GetSpecifiedName(), "-")); name != "" {
			err = fmt.Errorf("%w (did you mean --%s?)", err, name)
		}
	}
	return &usageError{err}
}

// closestFlag returns the flag of cmd nearest to name, if any is near enough to be a typo.
func closestFlag(cmd *cobra.Command, name string) string {
	var names []string
	visit := func(f *pflag.Flag) { names = append(names, f.Name) }
	cmd.LocalFlags().VisitAll(visit)
	cmd.InheritedFlags().VisitAll(visit)
	sort.Strings(names)
	best, bestDist := "", len(name)/2+1
	for _, n := range names {
		if d := editDistance(name, n); d < bestDist || (strings.HasPrefix(n, name) && best == "") {
			best, bestDist = n, d
		}
	}
	return best
}

// editDistance is the Levenshtein distance between a and b.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur := make([]int, len(b)+1)
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev = cur
	}
	return prev[len(b)]
}
