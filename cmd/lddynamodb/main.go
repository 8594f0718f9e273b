// Command lddynamodb sets up and checks the DynamoDB tables that LaunchDarkly server SDKs use as a
// persistent data store: it creates a table with the right keys, verifies a table's rows the way
// the SDKs read them, dumps its flags and segments as JSON, and loads such a file back.
//
// Install it from a clone of the repository, or from the module path:
//
//	go install ./cmd/lddynamodb
//	go install github.com/lddynamodb/lddynamodb/cmd/lddynamodb@latest
//
// Run "lddynamodb --help" for the commands, and the AWS settings and IAM actions they need.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/spf13/cobra"
)

// Exit statuses, as documented in the root command's help.
const (
	exitOK       = 0
	exitProblems = 1
	exitError    = 2
)

// errProblems says that verify found problems and has already reported them.
var errProblems = errors.New("problems found")

const rootHelp = `lddynamodb creates, checks and exports the DynamoDB tables that LaunchDarkly server SDKs
(and the Relay Proxy) use as a persistent data store.

AWS settings come from the usual places: the flags below, then the environment
(AWS_REGION, AWS_PROFILE, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN,
AWS_ENDPOINT_URL_DYNAMODB), then the shared config and credentials files, then the
instance or container role.

For a local DynamoDB (make dynamodb in a clone of the repository), use
--endpoint http://127.0.0.1:8000 and any keys, such as AWS_ACCESS_KEY_ID=local
AWS_SECRET_ACCESS_KEY=local.

IAM actions needed on the table:
  create-table  dynamodb:CreateTable, dynamodb:DescribeTable
  verify        dynamodb:DescribeTable, dynamodb:GetItem, dynamodb:Query,
                and dynamodb:Scan unless --no-scan
  dump          dynamodb:Query, dynamodb:GetItem (to read again a large item that
                changed while it was read); for a prefix with no rows, dynamodb:Scan
                (to name the prefixes that have rows)
  load          dynamodb:Query, dynamodb:BatchWriteItem, dynamodb:PutItem

Exit status: 0 when all is well, 1 when verify finds problems or load skips an item
that DynamoDB cannot hold, 2 when a command cannot run (bad arguments, a bad file, AWS
errors, a row that dump cannot export, an interrupt).`

// app holds the global flags and where the commands write.
type app struct {
	endpoint string
	region   string
	profile  string
	timeout  time.Duration
	quiet    bool
	stdout   io.Writer
	stderr   io.Writer

	// table and target are the table that the command works on and where its client points,
	// for error messages.
	table  string
	target target
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	go func() {
		// After the first interrupt, a second one ends the process at once.
		<-ctx.Done()
		stop()
	}()
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run executes one command line and returns the exit status.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	a := &app{stdout: stdout, stderr: stderr}
	root := a.rootCommand()
	root.SetArgs(args)
	cmd, err := root.ExecuteContextC(ctx)
	var usage *usageError
	switch {
	case errors.Is(err, errProblems):
		return exitProblems
	case errors.As(err, &usage):
		fmt.Fprintf(stderr, "lddynamodb: %v\n\n%s", err, cmd.UsageString())
		return exitError
	case err != nil && ctx.Err() != nil && errors.Is(err, context.Canceled):
		fmt.Fprintln(stderr, "lddynamodb: interrupted")
		return exitError
	case err != nil:
		fmt.Fprintf(stderr, "lddynamodb: %s\n", a.explain(err))
		return exitError
	}
	return exitOK
}

func (a *app) rootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:           "lddynamodb",
		Short:         "Set up and check DynamoDB tables for LaunchDarkly server SDKs",
		Long:          rootHelp,
		Version:       version(),
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.CompletionOptions.DisableDefaultCmd = true
	root.SetOut(a.stdout)
	root.SetErr(a.stderr)
	root.SetFlagErrorFunc(flagError)
	flags := root.PersistentFlags()
	flags.StringVar(&a.endpoint, "endpoint", "", "DynamoDB endpoint URL, such as http://localhost:8000 for DynamoDB Local")
	flags.StringVar(&a.region, "region", "", "AWS region (default: AWS_REGION or the profile's region)")
	flags.StringVar(&a.profile, "profile", "", "shared config profile (default: AWS_PROFILE or \"default\")")
	flags.DurationVar(&a.timeout, "timeout", defaultCallTimeout, "how long one DynamoDB call may take, its retries included (a Go duration: 10s, 1m)")
	flags.BoolVarP(&a.quiet, "quiet", "q", false, "no progress line on stderr")
	root.AddCommand(a.createTableCommand(), a.verifyCommand(), a.dumpCommand(), a.loadCommand())
	return root
}

// version is the module version that "go install ...@version" recorded in the binary.
func version() string {
	if info, ok := debug.ReadBuildInfo(); ok && info.Main.Version != "" {
		return info.Main.Version
	}
	return "(devel)"
}

// client makes a DynamoDB client for the table from the flags and the default AWS configuration chain. It
// resolves the credentials first, so that missing ones are reported as such rather than as a
// failed call (no DynamoDB call is made here).
func (a *app) client(ctx context.Context, table string) (*dynamodb.Client, error) {
	a.table = table
	if err := checkEndpoint("--endpoint", a.endpoint); err != nil {
		return nil, err
	}
	if a.timeout <= 0 {
		return nil, fmt.Errorf("--timeout %s: give a positive duration, such as 10s", a.timeout)
	}
	var opts []func(*config.LoadOptions) error
	if a.region != "" {
		opts = append(opts, config.WithRegion(a.region))
	}
	if a.profile != "" {
		opts = append(opts, config.WithSharedConfigProfile(a.profile))
	}
	cfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, a.configError(err)
	}
	if cfg.Region == "" {
		return nil, errors.New("no AWS region: use --region, AWS_REGION, or a profile with a region")
	}
	client := dynamodb.NewFromConfig(cfg, func(o *dynamodb.Options) {
		if a.endpoint != "" {
			o.BaseEndpoint = aws.String(a.endpoint)
		}
		o.APIOptions = append(o.APIOptions, a.callTimeout)
	})
	a.target = target{region: cfg.Region, endpoint: aws.ToString(client.Options().BaseEndpoint)}
	if err := checkEndpoint("AWS_ENDPOINT_URL_DYNAMODB or AWS_ENDPOINT_URL", a.target.endpoint); err != nil {
		return nil, err
	}
	if cfg.Credentials == nil {
		return nil, &credentialsError{target: a.target}
	}
	credCtx, cancel := context.WithTimeout(ctx, a.timeout)
	defer cancel()
	if _, err := cfg.Credentials.Retrieve(credCtx); err != nil {
		return nil, &credentialsError{target: a.target, cause: err}
	}
	return client, nil
}

// progress returns the progress line for a long read, or nil (no line) when stderr is not a
// terminal or --quiet is set, so that logs and pipes get no carriage returns.
func (a *app) progress() *progress {
	if a.quiet || !isTerminal(a.stderr) {
		return nil
	}
	return &progress{w: a.stderr}
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	info, err := f.Stat()
	return err == nil && info.Mode()&os.ModeCharDevice != 0
}

// progress writes "read N rows" on one line, rewritten after every page. A nil *progress writes
// nothing.
type progress struct {
	w    io.Writer
	rows int
}

func (p *progress) add(rows int) {
	if p == nil {
		return
	}
	p.rows += rows
	fmt.Fprintf(p.w, "\rread %d rows", p.rows)
}

// done erases the line, so that the report that follows starts on a clean one.
func (p *progress) done() {
	if p == nil || p.rows == 0 {
		return
	}
	fmt.Fprint(p.w, "\r\x1b[K")
}
