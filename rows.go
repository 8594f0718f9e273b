package lddynamodb

import (
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/launchdarkly/go-server-sdk/v7/subsystems/ldstoretypes"
)

// These exported helpers let tools outside the store (the lddynamodb command, migrations, audits)
// read a table exactly as the store does, without copying the row layout.

// Namespace is the partition key under which the store keeps the items of one data kind: the
// kind's name, after "PREFIX:" when there is a prefix.
func Namespace(prefix string, kind ldstoretypes.DataKind) string {
	return namespaceFor(prefix, kind)
}

// InitedMarker is both the partition key and the sort key of the row that says the store with
// this prefix was initialized: "$inited", or "PREFIX:$inited".
func InitedMarker(prefix string) string {
	return prefixed(prefix, initedKey)
}

// DecodeRow reads one row of a flag or segment namespace as the store's Get and GetAll do: it
// returns the row's key and the item's version and serialized JSON, unparsed. Every tombstone
// shape that a LaunchDarkly store writes decodes as a deleted item. A row that cannot be decoded
// gives a *RowError.
func DecodeRow(row map[string]types.AttributeValue) (key string, item ldstoretypes.SerializedItemDescriptor, err error) {
	return decodeRow(row)
}

// RowSize is the size of a row as the store counts it against MaxItemBytes: the lengths of the
// attribute names plus those of their values.
func RowSize(row map[string]types.AttributeValue) int {
	return rowSize(row)
}
