package main

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/lddynamodb/lddynamodb"
)

func (a *app) createTableCommand() *cobra.Command {
	var readUnits, writeUnits int64
	cmd := &cobra.Command{
		Use:   "create-table TABLE",
		Short: "Create a table with the keys the SDKs need, and wait until it is ACTIVE",
		Long: `create-table creates TABLE with partition key "namespace" (S) and sort key "key" (S),
the layout every LaunchDarkly SDK and the Relay Proxy use, and waits until it is ACTIVE.
Billing is on demand unless --read-capacity and --write-capacity are given.

If TABLE already exists with those keys it succeeds and leaves the table as it is; if its
keys differ it fails.`,
		Example: `  lddynamodb create-table launchdarkly
  lddynamodb create-table launchdarkly --read-capacity 5 --write-capacity 5 --region eu-west-1`,
		Args: args("TABLE"),
		RunE: func(cmd *cobra.Command, args []string) error {
			table := args[0]
			var opts []lddynamodb.TableOption
			switch {
			case readUnits > 0 && writeUnits > 0:
				opts = append(opts, lddynamodb.ProvisionedThroughput(readUnits, writeUnits))
			case readUnits != 0 || writeUnits != 0:
				return errors.New("give both --read-capacity and --write-capacity, as positive numbers, or neither")
			}
			client, err := a.client(cmd.Context(), table)
			if err != nil {
				return err
			}
			// One DescribeTable first, only to tell the user whether the table was already there.
			existed := lddynamodb.CheckTable(cmd.Context(), client, table) == nil
			if err := lddynamodb.CreateTable(cmd.Context(), client, table, opts...); err != nil {
				return err
			}
			if existed {
				fmt.Fprintf(a.stdout, "table %q already existed with partition key %q and sort key %q; left it as it was\n",
					table, lddynamodb.AttrNamespace, lddynamodb.AttrKey)
				return nil
			}
			fmt.Fprintf(a.stdout, "created table %q; it is ACTIVE, with partition key %q and sort key %q\n",
				table, lddynamodb.AttrNamespace, lddynamodb.AttrKey)
			return nil
		},
	}
	cmd.Flags().Int64Var(&readUnits, "read-capacity", 0, "provisioned read capacity units (default: on-demand billing)")
	cmd.Flags().Int64Var(&writeUnits, "write-capacity", 0, "provisioned write capacity units (default: on-demand billing)")
	return cmd
}
