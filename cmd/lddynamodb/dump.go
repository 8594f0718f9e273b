package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/spf13/cobra"

	"github.com/lddynamodb/lddynamodb"
)

func (a *app) dumpCommand() *cobra.Command {
	var prefix, output string
	cmd := &cobra.Command{
		Use:   "dump TABLE",
		Short: "Write the flags and segments of a table as JSON for the SDK's file data source",
		Long: `dump writes the flags and segments stored under the prefix in TABLE as one JSON object,
{"flags": {KEY: FLAG, ...}, "segments": {KEY: SEGMENT, ...}}, each item in full as the SDK
stored it. Deleted items are left out. That is the format the SDKs' file data source reads
(ldfiledata in Go), so a dump can be inspected, diffed, used in tests, or loaded into
another table by an SDK that has the file data source and a DynamoDB store.

It stops, naming the row, at a row that the SDK could not read (run verify to list them all).`,
		Example: `  lddynamodb dump launchdarkly > flags.json
  lddynamodb dump launchdarkly --prefix production -o production.json`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			client, err := a.client(cmd.Context())
			if err != nil {
				return err
			}
			prog := a.progress()
			data, err := readDump(cmd.Context(), client, args[0], prefix, prog)
			prog.done()
			if err != nil {
				return err
			}
			if len(data.Flags) == 0 && len(data.Segments) == 0 {
				fmt.Fprintf(a.stderr, "lddynamodb: table %q has no flags or segments under prefix %q\n", args[0], prefix)
			}
			out, err := json.MarshalIndent(data, "", "  ")
			if err != nil {
				return err
			}
			out = append(out, '\n')
			if output == "" {
				_, err = a.stdout.Write(out)
				return err
			}
			return os.WriteFile(output, out, 0o644)
		},
	}
	cmd.Flags().StringVar(&prefix, "prefix", "", "the prefix the SDK or Relay Proxy was configured with (default: none)")
	cmd.Flags().StringVarP(&output, "output", "o", "", "write to this file instead of stdout")
	return cmd
}

// dumpFile is the part of the file data source's format that dump writes.
type dumpFile struct {
	Flags    map[string]json.RawMessage `json:"flags"`
	Segments map[string]json.RawMessage `json:"segments"`
}

// readDump reads the live flags and segments of a prefix, checking that the SDK can parse each.
func readDump(ctx context.Context, client *dynamodb.Client, table, prefix string, prog *progress) (dumpFile, error) {
	data := dumpFile{Flags: map[string]json.RawMessage{}, Segments: map[string]json.RawMessage{}}
	targets := []map[string]json.RawMessage{data.Flags, data.Segments}
	for i, kind := range kinds {
		var rowErr error
		err := queryNamespace(ctx, client, table, lddynamodb.Namespace(prefix, kind), prog,
			func(row map[string]types.AttributeValue) {
				if rowErr != nil {
					return
				}
				key, item, err := lddynamodb.DecodeRow(row)
				if err != nil {
					rowErr = fmt.Errorf("table %q: %s: %w", table, kind, err)
					return
				}
				if item.Deleted {
					return
				}
				parsed, err := kind.Deserialize(item.SerializedItem)
				if err != nil {
					rowErr = fmt.Errorf("table %q: %s %q: the SDK cannot parse its JSON: %w", table, kind, key, err)
					return
				}
				if parsed.Item != nil {
					targets[i][key] = json.RawMessage(item.SerializedItem)
				}
			})
		if err != nil {
			return dumpFile{}, err
		}
		if rowErr != nil {
			return dumpFile{}, rowErr
		}
	}
	return data, nil
}
