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

// TestNumberSize pins DynamoDB's size of numbers (and dynalite's, which
// TestRowSizeAgreesWithTheServerAtTheLimit checks against the server): significant digits in
// pairs aligned on the decimal point, plus one byte, plus one if negative.
func TestNumberSize(t *testing.T) {
	for _, tt := range []struct {
		n    string
		want int
	}{
		{"0", 1}, {"-0", 1}, {"0.000", 1},
		{"1", 2}, {"9", 2}, {"10", 2}, {"100", 2}, {"1000000", 2},
		{"12", 2}, {"99", 2}, {"123", 3}, {"1234", 3}, {"12345", 4},
		{"101", 3}, {"1001", 3}, {"10010", 4}, // 1|00|10: the pairs are aligned, not counted from the first digit
		{"-1", 3}, {"-123", 4},
		{"0.5", 2}, {"0.05", 2}, {"1.5", 3}, {"12.5", 3}, {"007", 2}, {"1.50", 3},
		{"1e3", 2}, {"1E+2", 2}, {"1.23e-4", 3},
		{"1700000000000", 3}, // a Unix time in ms: 1|70|00|...
		{"99999999999999999999999999999999999999", 20},
		{"not a number", len("not a number") + 2},
	} {
		t.Run(tt.n, func(t *testing.T) {
			assert.Equal(t, tt.want, numberSize(tt.n))
		})
	}
}

func TestItemUses(t *testing.T) {
	for _, tt := range []struct {
		name string
		json string
		want []itemRef
	}{
		{"flag", `{"key":"f","prerequisites":[{"variation":0,"key":"p1"},{"key":"p2"}],` +
			`"rules":[{"clauses":[{"values":["s1",2,["x"],{"a":1}],"op":"segmentMatch"},{"op":"in","values":["not-a-segment"]}]},` +
			`{"id":"r","clauses":[{"op":"segmentMatch","values":["s2"]}]}]}`,
			[]itemRef{{"features", "p1"}, {"features", "p2"}, {"segments", "s1"}, {"segments", "s2"}}},
		{"segment", `{"key":"s","rules":[{"clauses":[{"op":"segmentMatch","values":["s0"]}]}],"included":["u"]}`,
			[]itemRef{{"segments", "s0"}}},
		{"nulls", `{"prerequisites":null,"rules":[{"clauses":null}]}`, nil},
		{"tombstone", `{"key":"f","version":2,"deleted":true}`, nil},
		{"not json", `{"rules":[{"clauses":[{"op":"segmentMatch","values":["s1"`, []itemRef{{"segments", "s1"}}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, itemUses([]byte(tt.json)))
		})
	}
}

// TestLinkUsesCutsCycles checks that items using each other in a circle do not wait for each
// other forever: every cycle loses one edge, and the rest of the order stays.
func TestLinkUsesCutsCycles(t *testing.T) {
	a, b, c, d := &initWrite{key: "a"}, &initWrite{key: "b"}, &initWrite{key: "c"}, &initWrite{key: "d"}
	puts := map[itemRef]*initWrite{{"features", "a"}: a, {"features", "b"}: b, {"features", "c"}: c, {"features", "d"}: d}
	uses := map[*initWrite][]itemRef{
		a: {{"features", "b"}},
		b: {{"features", "c"}},
		c: {{"features", "a"}, {"features", "missing"}},
		d: {{"features", "d"}, {"features", "a"}},
	}
	linkUses([]*initWrite{a, b, c, d}, puts, uses)
	assert.Equal(t, []int{1, 1, 0, 1}, []int{a.waiting, b.waiting, c.waiting, d.waiting})
	assert.Equal(t, []*initWrite{b}, c.users, "b waits for c")
	assert.Equal(t, []*initWrite{a}, b.users, "a waits for b; c's use of a closes the cycle and is cut")
	assert.Equal(t, []*initWrite{d}, a.users, "d waits for a, not for itself")
}
