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
{"flags": {KEY: FLAG, ...}, "segments": {KEY: SEGMENT, ...}, "deleted": {...}}, each item in
full as the SDK stored it. That is the format the SDKs' file data source reads (ldfiledata in
Go), so a dump can be inspected, diffed, or used in tests. The "deleted" section, which the
file data source ignores, keeps the versions of deleted flags and segments, so that load
writes back exactly what dump read: a backup, or a copy to another table or prefix. Items
over DynamoDB's 400 KB item limit, which the store keeps in parts, are written whole.

It stops, naming the row, at a row that the SDK could not read (run verify to list them all).`,
		Example: `  lddynamodb dump launchdarkly > flags.json
  lddynamodb dump launchdarkly --prefix production -o production.json`,
		Args: args("TABLE"),
		RunE: func(cmd *cobra.Command, args []string) error {
			client, err := a.client(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			prog := a.progress()
			data, err := readDump(cmd.Context(), client, args[0], prefix, prog)
			prog.done()
			if err != nil {
				return err
			}
			live, deleted := len(data.Flags)+len(data.Segments), len(data.Deleted.Flags)+len(data.Deleted.Segments)
			if live+deleted == 0 {
				if err := emptyPrefix(cmd.Context(), client, args[0], prefix); err != nil {
					return err
				}
				fmt.Fprintf(a.stderr, "lddynamodb: table %q has no flags or segments under prefix %q (its initialized marker is there)\n", args[0], prefix)
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
			if err := os.WriteFile(output, out, 0o644); err != nil {
				return err
			}
			fmt.Fprintf(a.stderr, "wrote %d flags, %d segments and %d deleted items (%d bytes) to %s\n",
				len(data.Flags), len(data.Segments), deleted, len(out), output)
			return nil
		},
	}
	cmd.Flags().StringVar(&prefix, "prefix", "", "the prefix the SDK or Relay Proxy was configured with (default: none)")
	cmd.Flags().StringVarP(&output, "output", "o", "", "write to this file instead of stdout")
	return cmd
}

// emptyPrefix fails for a prefix with no rows unless its initialized marker is there (an
// environment without flags), so that a misspelt prefix does not make an empty backup. The error
// names the prefixes that have rows, as verify does: that costs a GetItem and a keys-only Scan.
func emptyPrefix(ctx context.Context, client *dynamodb.Client, table, prefix string) error {
	v := &verifier{client: client, table: table, prefix: prefix}
	if err := v.readMarker(ctx); err != nil {
		return err
	}
	if v.marker {
		return nil
	}
	hint := "run lddynamodb verify to look for rows under other prefixes"
	if err := v.scan(ctx); err != nil {
		v.scanned = false
		hint = fmt.Sprintf("the scan for rows under other prefixes failed (%v)", err)
	}
	return fmt.Errorf("table %q: %s", table, v.nothingUnderPrefix(hint))
}

// readDump reads the flags and segments of a prefix, large items joined from their parts, checking
// that the SDK can parse each.
func readDump(ctx context.Context, client *dynamodb.Client, table, prefix string, prog *progress) (flagsFile, error) {
	data := flagsFile{
		Flags:    map[string]json.RawMessage{},
		Segments: map[string]json.RawMessage{},
		Deleted:  &deletedItems{Flags: map[string]int{}, Segments: map[string]int{}},
	}
	for _, kind := range kinds {
		live, deleted := data.section(kind)
		var rowErr error
		reader := &kindReader{client: client, table: table, prefix: prefix, kind: kind, prog: prog,
			item: func(row map[string]types.AttributeValue, parts *partSet) {
				if rowErr != nil {
					return
				}
				key, item, err := lddynamodb.DecodeRowWithParts(row, parts.list())
				if err != nil {
					rowErr = fmt.Errorf("table %q: %s: %w", table, kind, err)
					return
				}
				if item.Deleted {
					deleted[key] = item.Version
					return
				}
				parsed, err := kind.Deserialize(item.SerializedItem)
				if err != nil {
					rowErr = fmt.Errorf("table %q: %s %q: the SDK cannot parse its JSON: %w", table, kind, key, err)
					return
				}
				if parsed.Item == nil {
					deleted[key] = parsed.Version
					return
				}
				live[key] = json.RawMessage(item.SerializedItem)
			}}
		if err := reader.read(ctx); err != nil {
			return flagsFile{}, err
		}
		if rowErr != nil {
			return flagsFile{}, rowErr
		}
	}
	return data, nil
}
