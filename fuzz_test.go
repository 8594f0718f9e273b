package lddynamodb

import (
	"bytes"
	"encoding/json"
	"errors"
	"strconv"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/launchdarkly/go-sdk-common/v3/ldvalue"
	"github.com/launchdarkly/go-server-sdk/v7/subsystems/ldstoretypes"
)

// fuzzAttr makes an attribute of one of the types a row may hold from a fuzzed selector, or nil
// for an absent attribute.
func fuzzAttr(selector uint8, value []byte) types.AttributeValue {
	switch selector % 6 {
	case 0:
		return &types.AttributeValueMemberS{Value: string(value)}
	case 1:
		return &types.AttributeValueMemberN{Value: string(value)}
	case 2:
		return &types.AttributeValueMemberB{Value: value}
	case 3:
		return &types.AttributeValueMemberBOOL{Value: len(value) > 0}
	case 4:
		return &types.AttributeValueMemberNULL{Value: true}
	default:
		return nil
	}
}

// FuzzDecodeRow decodes rows whose key, version and item attributes have fuzzed types and
// contents, as another program could have written them. decodeRow must never panic; it either
// returns a *RowError naming the row, or the row's key and version with the item unchanged or,
// for a tombstone, marked deleted. A row that the store encodes itself always decodes back.
func FuzzDecodeRow(f *testing.F) {
	// Selectors: 0 S, 1 N, 2 B, 3 BOOL, 4 NULL, 5 absent. Files in testdata/fuzz/FuzzDecodeRow
	// add rows that other SDKs write.
	f.Add("features", uint8(0), "flag", uint8(1), "3", uint8(0), []byte(`{"key":"flag","version":3}`))
	f.Add("features", uint8(0), "flag", uint8(1), "3", uint8(0), []byte(`{"key":"flag","version":3,"deleted":true}`))
	f.Add("segments", uint8(0), "s", uint8(0), "3", uint8(0), []byte(`null`))
	f.Fuzz(func(t *testing.T, namespace string, keyType uint8, key string, versionType uint8, version string, itemType uint8, item []byte) {
		row := map[string]types.AttributeValue{AttrNamespace: &types.AttributeValueMemberS{Value: namespace}}
		for name, attr := range map[string]types.AttributeValue{
			AttrKey:     fuzzAttr(keyType, []byte(key)),
			attrVersion: fuzzAttr(versionType, []byte(version)),
			attrItem:    fuzzAttr(itemType, item),
		} {
			if attr != nil {
				row[name] = attr
			}
		}
		gotKey, got, err := DecodeRow(row)

		keyOK := keyType%6 == 0
		wantVersion, versionErr := strconv.Atoi(version)
		versionOK := versionType%6 == 1 && versionErr == nil
		itemOK := itemType%6 == 0 || itemType%6 == 5
		if err != nil {
			var rowErr *RowError
			if !errors.As(err, &rowErr) {
				t.Fatalf("error %v (%T) is not a *RowError", err, err)
			}
			if keyOK && rowErr.Key != key {
				t.Fatalf("error names key %q, want %q", rowErr.Key, key)
			}
			if keyOK && versionOK && itemOK {
				t.Fatalf("a row with a string key, a numeric version and a string or no item failed: %v", err)
			}
			return
		}
		if !keyOK || !versionOK || !itemOK {
			t.Fatalf("row with key type %d, version type %d %q, item type %d decoded without error", keyType%6, versionType%6, version, itemType%6)
		}
		if gotKey != key || got.Version != wantVersion {
			t.Fatalf("decoded key %q version %d, want %q version %d", gotKey, got.Version, key, wantVersion)
		}
		checkItem(t, item, itemType%6 == 5, got)

		// Whatever the item, the store's own row for it decodes back to it.
		desc := ldstoretypes.SerializedItemDescriptor{Version: wantVersion, SerializedItem: item}
		gotKey, got, err = DecodeRow(encodeRow(namespace, key, desc))
		if err != nil || gotKey != key || got.Version != wantVersion {
			t.Fatalf("encoded row decodes as key %q version %d, error %v", gotKey, got.Version, err)
		}
		checkItem(t, item, false, got)
		_, got, err = DecodeRow(encodeRow(namespace, key, ldstoretypes.SerializedItemDescriptor{Version: wantVersion, Deleted: true}))
		if err != nil || !got.Deleted || got.Version != wantVersion || got.SerializedItem != nil {
			t.Fatalf("encoded tombstone decodes as %+v, error %v", got, err)
		}
	})
}

// checkItem checks a decoded item against the stored item: a deleted item has no serialized
// form and came from a tombstone shape; any other item is passed on byte for byte.
func checkItem(t *testing.T, item []byte, absent bool, got ldstoretypes.SerializedItemDescriptor) {
	t.Helper()
	if !got.Deleted {
		if absent || !bytes.Equal(got.SerializedItem, item) {
			t.Fatalf("item %q decoded as %q", item, got.SerializedItem)
		}
		if isEmptyOrNull(item) {
			t.Fatalf("item %q is a tombstone but decoded as an item", item)
		}
		return
	}
	if got.SerializedItem != nil {
		t.Fatalf("deleted item has a serialized form %q", got.SerializedItem)
	}
	if absent || isEmptyOrNull(item) {
		return
	}
	// A JSON tombstone: the SDK must read it as deleted too. Only well-formed JSON with a single
	// "deleted" property is compared, since the SDK and the store may read others differently.
	if json.Valid(item) && bytes.Count(item, []byte(`"deleted"`)) == 1 && !ldvalue.Parse(item).GetByKey("deleted").BoolValue() {
		t.Fatalf("item %q decoded as deleted, but its \"deleted\" property is not true", item)
	}
}

// isEmptyOrNull says whether an item is empty or the JSON null, the tombstones of the Node and
// the Java and .NET stores. (An item of only spaces is neither: the SDK is left to report it.)
func isEmptyOrNull(item []byte) bool {
	return len(item) == 0 || bytes.Equal(bytes.TrimSpace(item), []byte("null"))
}
