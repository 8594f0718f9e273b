package main

import (
	"context"
	"fmt"
	"slices"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/launchdarkly/go-server-sdk/v7/subsystems"
	"github.com/launchdarkly/go-server-sdk/v7/subsystems/ldstoretypes"
	"github.com/spf13/cobra"

	"github.com/lddynamodb/lddynamodb"
)

func (a *app) loadCommand() *cobra.Command {
	var prefix string
	cmd := &cobra.Command{
		Use:   "load TABLE FILE",
		Short: "Write a flags file (what dump writes) into a table, replacing what is under the prefix",
		Long: `load writes the flags and segments of FILE into TABLE under the prefix, as an SDK does when
it starts: through the store's own Init, which writes only the rows that differ, segments
before flags and each item after those it refers to, retries throttled writes, deletes the
rows that FILE does not have, and writes the initialized marker last.

FILE is in the format of the SDKs' file data source (JSON or YAML, "flags", "flagValues" and
"segments"), which is what dump writes; dump's "deleted" section brings back deleted items
with their versions. So dump and load copy a prefix to another prefix or table, or restore
a backup. FILE is read and checked in full before anything is written: a file that the SDK
cannot parse, or that gives a key twice, changes nothing.

It reports the rows written, deleted, unchanged and skipped. An item that DynamoDB cannot
hold (a key over 1,024 bytes, say) is skipped, named with the reason, and makes the exit
status 1. An interrupt (Ctrl-C) stops the writes at once: the table may then be partly
written, and its initialized marker is as it was; load the file again to finish.`,
		Example: `  lddynamodb load launchdarkly examples/flags.json
  lddynamodb dump launchdarkly --prefix production -o production.json
  lddynamodb load launchdarkly-copy production.json --prefix production`,
		Args: args("TABLE", "FILE"),
		RunE: func(cmd *cobra.Command, args []string) error {
			table, file := args[0], args[1]
			data, err := readFlagsFile(file)
			if err != nil {
				return err
			}
			client, err := a.client(cmd.Context(), table)
			if err != nil {
				return err
			}
			return a.load(cmd.Context(), client, table, prefix, file, data)
		},
	}
	cmd.Flags().StringVar(&prefix, "prefix", "", "the prefix the SDKs or Relay Proxy use for this environment (default: none)")
	return cmd
}

// load writes data through the store's Init and reports what it did. Init runs on the store's
// own context, so an interrupt reaches it by closing the store, which cancels that context.
func (a *app) load(ctx context.Context, client *dynamodb.Client, table, prefix, file string, data []ldstoretypes.SerializedCollection) error {
	counter := &writeCounter{marker: lddynamodb.InitedMarker(prefix)}
	client = dynamodb.New(client.Options(), func(o *dynamodb.Options) {
		o.APIOptions = append(slices.Clone(o.APIOptions), counter.middleware)
	})
	metrics := &lddynamodb.Metrics{}
	loggers, skipped := loadLoggers(a.stderr)
	store, err := lddynamodb.DataStore(table).Prefix(prefix).DynamoClient(client).Metrics(metrics).
		Build(subsystems.BasicClientContext{Logging: subsystems.LoggingConfiguration{Loggers: loggers}})
	if err != nil {
		return err
	}
	defer store.Close()
	finished := make(chan struct{})
	defer close(finished)
	go func() {
		select {
		case <-ctx.Done():
			store.Close()
		case <-finished:
		}
	}()
	if err := store.Init(data); err != nil {
		if ctx.Err() != nil {
			written, deleted := counter.counts()
			return fmt.Errorf("interrupted: table %q, prefix %q may be partly written (%d rows written, %d deleted); its initialized marker is unchanged: load the file again to finish",
				table, prefix, written, deleted)
		}
		return err
	}
	summary := loadSummary{file: file, table: table, prefix: prefix, skipped: skipped(), calls: metrics.Snapshot().TotalCalls()}
	summary.written, summary.removed = counter.counts()
	for _, coll := range data {
		for _, it := range coll.Items {
			if it.Item.Deleted {
				summary.deleted++
			} else {
				summary.live++
			}
		}
	}
	summary.print(a.stdout)
	if len(summary.skipped) > 0 {
		return errProblems
	}
	return nil
}
