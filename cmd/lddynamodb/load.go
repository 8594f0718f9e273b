package main

import (
	"fmt"

	"github.com/launchdarkly/go-sdk-common/v3/ldlog"
	"github.com/launchdarkly/go-server-sdk/v7/subsystems"
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
cannot parse changes nothing.`,
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
			metrics := &lddynamodb.Metrics{}
			// Warnings (an item too large for DynamoDB, say) go to stderr; Init's routine lines do not.
			loggers := ldlog.NewDefaultLoggers()
			loggers.SetMinLevel(ldlog.Warn)
			store, err := lddynamodb.DataStore(table).Prefix(prefix).DynamoClient(client).Metrics(metrics).
				Build(subsystems.BasicClientContext{Logging: subsystems.LoggingConfiguration{Loggers: loggers}})
			if err != nil {
				return err
			}
			defer store.Close()
			if err := store.Init(data); err != nil {
				return err
			}
			counts := map[bool]int{}
			for _, coll := range data {
				for _, it := range coll.Items {
					counts[it.Item.Deleted]++
				}
			}
			snap := metrics.Snapshot()
			fmt.Fprintf(a.stdout, "loaded %d flags and segments and %d deleted items from %s into table %q, prefix %q: %d rows written or deleted (the marker included), %d DynamoDB calls\n",
				counts[false], counts[true], file, table, prefix, snap.ItemsWritten, snap.TotalCalls())
			return nil
		},
	}
	cmd.Flags().StringVar(&prefix, "prefix", "", "the prefix the SDKs or Relay Proxy use for this environment (default: none)")
	return cmd
}
