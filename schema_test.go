package lddynamodb

import (
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/launchdarkly/go-server-sdk/v7/subsystems/ldstoretypes"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lddynamodb/lddynamodb/internal/testenv/av"
)

func testRow(version types.AttributeValue, item types.AttributeValue) map[string]types.AttributeValue {
	r := map[string]types.AttributeValue{AttrNamespace: av.S("features"), AttrKey: av.S("flag")}
	if version != nil {
		r[attrVersion] = version
	}
	if item != nil {
		r[attrItem] = item
	}
	return r
}

func TestDecodeRow(t *testing.T) {
	deleted := ldstoretypes.SerializedItemDescriptor{Version: 7, Deleted: true}
	tests := []struct {
		name    string
		row     map[string]types.AttributeValue
		want    ldstoretypes.SerializedItemDescriptor
		wantErr string
	}{
		{"item", testRow(av.N("7"), av.S(`{"key":"flag","version":7}`)),
			ldstoretypes.SerializedItemDescriptor{Version: 7, SerializedItem: []byte(`{"key":"flag","version":7}`)}, ""},
		{"non-JSON item is passed on for the SDK to judge", testRow(av.N("7"), av.S("flag,7")),
			ldstoretypes.SerializedItemDescriptor{Version: 7, SerializedItem: []byte("flag,7")}, ""},
		{"Go and Relay tombstone", testRow(av.N("7"), av.S(`{"key":"flag","version":7,"deleted":true}`)), deleted, ""},
		{"Node tombstone with spaces", testRow(av.N("7"), av.S(`{"key": "flag", "version": 7, "deleted": true}`)), deleted, ""},
		{"Java and .NET null", testRow(av.N("7"), av.S("null")), deleted, ""},
		{"no item attribute", testRow(av.N("7"), nil), deleted, ""},
		{"empty item", testRow(av.N("7"), av.S("")), deleted, ""},
		{"deleted false is an item", testRow(av.N("7"), av.S(`{"key":"flag","version":7,"deleted":false}`)),
			ldstoretypes.SerializedItemDescriptor{Version: 7, SerializedItem: []byte(`{"key":"flag","version":7,"deleted":false}`)}, ""},
		{"version missing", testRow(nil, av.S("{}")), ldstoretypes.SerializedItemDescriptor{}, `"version" is missing`},
		{"version as a string", testRow(av.S("7"), av.S("{}")), ldstoretypes.SerializedItemDescriptor{}, `"version" is not a number`},
		{"version not an integer", testRow(av.N("7.5"), av.S("{}")), ldstoretypes.SerializedItemDescriptor{}, `"version" is not an integer`},
		{"item not a string", testRow(av.N("7"), av.N("1")), ldstoretypes.SerializedItemDescriptor{}, `"item" is not a string`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			key, got, err := DecodeRow(tt.row)
			if tt.wantErr != "" {
				var rowErr *RowError
				require.ErrorAs(t, err, &rowErr)
				assert.Contains(t, err.Error(), tt.wantErr)
				assert.Contains(t, err.Error(), `key="flag"`)
				assert.Contains(t, err.Error(), `namespace="features"`)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, "flag", key)
			assert.Equal(t, tt.want, got)
		})
	}
}

func TestDecodeRowWithoutKey(t *testing.T) {
	_, _, err := DecodeRow(map[string]types.AttributeValue{AttrNamespace: av.S("features"), attrVersion: av.N("1")})
	require.ErrorContains(t, err, `"key" is missing`)
}

func TestEncodeRow(t *testing.T) {
	tests := []struct {
		name     string
		item     ldstoretypes.SerializedItemDescriptor
		wantItem string
	}{
		{"item", ldstoretypes.SerializedItemDescriptor{Version: 3, SerializedItem: []byte(`{"key":"k"}`)}, `{"key":"k"}`},
		{"tombstone with its serialized form", ldstoretypes.SerializedItemDescriptor{Version: 3, Deleted: true,
			SerializedItem: []byte(`{"key":"k","version":3,"deleted":true}`)}, `{"key":"k","version":3,"deleted":true}`},
		{"tombstone without serialized form", ldstoretypes.SerializedItemDescriptor{Version: 3, Deleted: true},
			`{"key":"k","version":3,"deleted":true}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := encodeRow("p:features", "k", tt.item)
			assert.Equal(t, av.S("p:features"), r[AttrNamespace])
			assert.Equal(t, av.S("k"), r[AttrKey])
			assert.Equal(t, av.N("3"), r[attrVersion])
			assert.JSONEq(t, tt.wantItem, r[attrItem].(*types.AttributeValueMemberS).Value)
			_, back, err := DecodeRow(r)
			require.NoError(t, err)
			assert.Equal(t, 3, back.Version)
			assert.Equal(t, tt.item.Deleted, back.Deleted)
		})
	}
}

func TestPrefixed(t *testing.T) {
	tests := []struct{ prefix, name, want string }{
		{"", "features", "features"},
		{"env1", "features", "env1:features"},
		{"env1", initedKey, "env1:$inited"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			assert.Equal(t, tt.want, prefixed(tt.prefix, tt.name))
		})
	}
}

func TestRowSize(t *testing.T) {
	r := encodeRow("features", "k", ldstoretypes.SerializedItemDescriptor{Version: 12, SerializedItem: []byte(strings.Repeat("x", 100))})
	// namespace+features, key+k, version+12, item+100 bytes
	assert.Equal(t, len("namespace")+len("features")+len("key")+1+len("version")+2+len("item")+100, RowSize(r))
}
