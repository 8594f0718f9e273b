package lddynamodb

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"math/rand"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/launchdarkly/go-server-sdk/v7/subsystems/ldstoretypes"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const testPartsID = "0190000000001234abcd"

// jsonItem is an item whose JSON is padded to n bytes with padding drawn from alphabet by rng:
// letters of a 64-character alphabet compress to about three quarters, a single repeated one
// to almost nothing.
func jsonItem(key string, version, n int, alphabet string, rng *rand.Rand) ldstoretypes.SerializedItemDescriptor {
	head := fmt.Sprintf(`{"key":%q,"version":%d,"variations":["`, key, version)
	tail := `"],"deleted":false}`
	pad := make([]byte, n-len(head)-len(tail))
	if len(alphabet) == 1 {
		pad = bytes.Repeat([]byte(alphabet), len(pad))
	} else {
		// One random byte per character, cheaper than a draw each (the tests make megabytes).
		_, _ = rng.Read(pad)
		for i, b := range pad {
			pad[i] = alphabet[int(b)%len(alphabet)]
		}
	}
	return ldstoretypes.SerializedItemDescriptor{Version: version, SerializedItem: []byte(head + string(pad) + tail)}
}

const noisy = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"

// plainRowSize is the size of the plain row of an item of n JSON bytes in "features".
func plainRowSize(key string, version, n int) int {
	return RowSize(encodeRow("features", key, jsonItem(key, version, n, "x", rand.New(rand.NewSource(1)))))
}

// decodeRows decodes what encodeItem wrote, as a reader given every part would.
func decodeRows(t *testing.T, rows itemRows) ldstoretypes.SerializedItemDescriptor {
	t.Helper()
	_, item, err := DecodeRowWithParts(rows.main, rows.parts)
	require.NoError(t, err)
	return item
}

func TestEncodeItemChoosesTheForm(t *testing.T) {
	atLimit := MaxItemBytes - (plainRowSize("f", 1, 1000) - 1000)
	tests := []struct {
		name      string
		item      ldstoretypes.SerializedItemDescriptor
		large     bool
		wantParts int // -1: plain row
		wantErr   string
	}{
		{"small item: plain", jsonItem("f", 1, 1000, noisy, rand.New(rand.NewSource(1))), true, -1, ""},
		{"row exactly at the limit: plain", jsonItem("f", 1, atLimit, noisy, rand.New(rand.NewSource(1))), true, -1, ""},
		{"one byte over, compressible: inline", jsonItem("f", 1, atLimit+1, "x", rand.New(rand.NewSource(1))), true, 0, ""},
		{"one byte over, large items off: not stored", jsonItem("f", 1, atLimit+1, "x", rand.New(rand.NewSource(1))), false, -1,
			"the row is 409601 bytes, over DynamoDB's item limit of 409600"},
		{"1.2 MB incompressible: parts", jsonItem("f", 1, 1200_000, noisy, rand.New(rand.NewSource(1))), true, 3, ""},
		{"3 MB of two random letters: compressed to an eighth, parts", jsonItem("f", 1, 3_000_000, "ab", rand.New(rand.NewSource(1))), true, 2, ""},
		{"3 MB repetitive: inline", jsonItem("f", 1, 3_000_000, "x", rand.New(rand.NewSource(1))), true, 0, ""},
		{"deleted item: plain tombstone", ldstoretypes.SerializedItemDescriptor{Version: 4, Deleted: true}, true, -1, ""},
		{"over the large item limit: not stored", jsonItem("f", 1, MaxLargeItemBytes+1, "x", rand.New(rand.NewSource(1))), true, -1,
			fmt.Sprintf("the item is %d bytes of JSON, over the large item limit of %d", MaxLargeItemBytes+1, MaxLargeItemBytes)},
		{"exactly the large item limit: stored", jsonItem("f", 1, MaxLargeItemBytes, "x", rand.New(rand.NewSource(1))), true, 0, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rows, problem := encodeItem("features", "f", tt.item, tt.large, testPartsID)
			if tt.wantErr != "" {
				assert.Equal(t, tt.wantErr, problem)
				return
			}
			require.Empty(t, problem)
			for _, row := range append([]map[string]types.AttributeValue{rows.main}, rows.parts...) {
				assert.LessOrEqual(t, RowSize(row), MaxItemBytes)
			}
			if tt.wantParts < 0 {
				assert.False(t, isLargeRow(rows.main))
				assert.Nil(t, rows.parts)
			} else {
				assert.True(t, isLargeRow(rows.main))
				assert.Len(t, rows.parts, tt.wantParts)
				_, tomb, err := DecodeRow(withoutLargeAttrs(rows.main))
				require.NoError(t, err)
				assert.Equal(t, ldstoretypes.SerializedItemDescriptor{Version: tt.item.Version, Deleted: true}, tomb,
					"another SDK reads a deleted item of the same version")
			}
			got := decodeRows(t, rows)
			if tt.item.Deleted {
				assert.True(t, got.Deleted)
				return
			}
			assert.Equal(t, tt.item, got, "exact bytes back")
			assert.Equal(t, sha256.Sum256(tt.item.SerializedItem), rows.digest)
		})
	}
}

// withoutLargeAttrs is a main row as a reader that knows only `item` and `version` sees it.
func withoutLargeAttrs(row map[string]types.AttributeValue) map[string]types.AttributeValue {
	out := map[string]types.AttributeValue{}
	for _, name := range []string{AttrNamespace, AttrKey, attrVersion, attrItem} {
		out[name] = row[name]
	}
	return out
}

// compressedAt finds an item (key "f", version 1) whose inline main row is exactly size bytes.
func compressedAt(t testing.TB, size int) ldstoretypes.SerializedItemDescriptor {
	return sizedByPadding(t, "inline row", size, func(item ldstoretypes.SerializedItemDescriptor) int {
		rows, _ := encodeItem("features", "f", item, true, testPartsID)
		rows.main[attrData] = &types.AttributeValueMemberB{Value: gzipData(item.SerializedItem)}
		delete(rows.main, attrPartsID)
		rows.main[attrParts] = &types.AttributeValueMemberN{Value: "0"}
		return RowSize(rows.main)
	})
}

// gzipAt finds an item (key "f", version 1) whose gzip data is exactly size bytes.
func gzipAt(t testing.TB, size int) ldstoretypes.SerializedItemDescriptor {
	return sizedByPadding(t, "gzip data", size, func(item ldstoretypes.SerializedItemDescriptor) int {
		return len(gzipData(item.SerializedItem))
	})
}

var sizedItems sync.Map // by what and size: the items sizedByPadding found

// sizedByPadding finds an item whose measure is exactly size, varying the length of noisy
// padding, which gzip shrinks by about a quarter, one character adding at most a byte: secant
// steps bring the length close, then lengths around it are tried, nearest first. Each measure
// compresses half a megabyte, so items found are kept for the other tests of the binary.
func sizedByPadding(t testing.TB, what string, size int, measure func(ldstoretypes.SerializedItemDescriptor) int) ldstoretypes.SerializedItemDescriptor {
	t.Helper()
	key := fmt.Sprintf("%s of %d bytes", what, size)
	if item, ok := sizedItems.Load(key); ok {
		return item.(ldstoretypes.SerializedItemDescriptor)
	}
	at := func(n int) ldstoretypes.SerializedItemDescriptor {
		return jsonItem("f", 1, n, noisy, rand.New(rand.NewSource(7)))
	}
	n0, n1 := size, size*4/3
	m0, m1 := measure(at(n0)), measure(at(n1))
	for range 8 {
		if m1 == size || m1 == m0 {
			break
		}
		next := n1 + (size-m1)*(n1-n0)/(m1-m0)
		n0, m0 = n1, m1
		n1, m1 = next, measure(at(next))
	}
	for d := 0; d < 400; d++ {
		for _, n := range []int{n1 - d, n1 + d} {
			if item := at(n); measure(item) == size {
				sizedItems.Store(key, item)
				return item
			}
		}
	}
	t.Fatalf("no padding gives an item with %s", key)
	return ldstoretypes.SerializedItemDescriptor{}
}

func TestEncodeItemCompressedBoundary(t *testing.T) {
	at := compressedAt(t, MaxItemBytes)
	rows, problem := encodeItem("features", "f", at, true, testPartsID)
	require.Empty(t, problem)
	assert.Equal(t, MaxItemBytes, RowSize(rows.main), "compressed data exactly at the limit stays inline")
	assert.Empty(t, rows.parts)
	assert.Equal(t, at, decodeRows(t, rows))

	over := compressedAt(t, MaxItemBytes+1)
	rows, problem = encodeItem("features", "f", over, true, testPartsID)
	require.Empty(t, problem)
	assert.Len(t, rows.parts, 1, "one byte over goes to one part")
	assert.NotContains(t, rows.main, attrData)
	assert.Equal(t, over, decodeRows(t, rows))
}

func TestPartsSplitAtTheirCapacity(t *testing.T) {
	prefix := partKeyPrefix("f", 1, testPartsID)
	capacity := partCapacity("features:parts", prefix)
	// The data of a row over the limit, whose gzip size is known, is split by encodeItem; here
	// the split itself is checked through rows of chosen sizes.
	for _, tt := range []struct {
		dataLen, wantParts int
	}{{capacity, 1}, {capacity + 1, 2}, {2 * capacity, 2}, {2*capacity + 1, 3}} {
		t.Run(fmt.Sprint(tt.dataLen), func(t *testing.T) {
			data := make([]byte, tt.dataLen)
			count := (len(data) + capacity - 1) / capacity
			assert.Equal(t, tt.wantParts, count)
			part := rowKey("features:parts", partKey(prefix, count-1))
			part[attrData] = &types.AttributeValueMemberB{Value: data[(count-1)*capacity:]}
			assert.LessOrEqual(t, RowSize(part), MaxItemBytes)
		})
	}
	full := rowKey("features:parts", partKey(prefix, 0))
	full[attrData] = &types.AttributeValueMemberB{Value: make([]byte, capacity)}
	assert.Equal(t, MaxItemBytes, RowSize(full), "a full part is exactly at the limit")

	item := jsonItem("f", 1, 2_000_000, noisy, rand.New(rand.NewSource(3)))
	rows, problem := encodeItem("features", "f", item, true, testPartsID)
	require.Empty(t, problem)
	for i, part := range rows.parts[:len(rows.parts)-1] {
		assert.Equal(t, MaxItemBytes, RowSize(part), "part %d is full", i)
	}
}

func TestPartKeys(t *testing.T) {
	long := strings.Repeat("é", MaxSortKeyBytes/2)
	tests := []struct {
		name, key string
		version   int
	}{
		{"plain", "my-flag", 12},
		{"key with slashes", "a/1/" + testPartsID + "/0000", 1},
		{"negative version", "f", -3},
		{"longest key, multi-byte", long, 2147483647},
		{"longest key", strings.Repeat("k", MaxSortKeyBytes), -2147483648},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			prefix := partKeyPrefix(tt.key, tt.version, testPartsID)
			key := partKey(prefix, 17)
			assert.LessOrEqual(t, len(partKey(prefix, maxParts)), MaxSortKeyBytes)
			gotPrefix, pos, ok := parsePartKey(key)
			require.True(t, ok)
			assert.Equal(t, prefix, gotPrefix)
			assert.Equal(t, 17, pos)
			at, ok := partsIDTime(prefix)
			require.True(t, ok)
			assert.Equal(t, int64(0x019000000000), at.UnixMilli())
		})
	}
	assert.NotEqual(t, partItemRef(strings.Repeat("k", 961)), partItemRef(strings.Repeat("k", 962)), "long keys stay apart")
	assert.Greater(t, len(partItemRef(strings.Repeat("é", 600))), maxLiteralRefBytes, "a shortened key never equals a whole one")
	for _, bad := range []string{"", "f/1/x/12", "f/1/x/abcd", "nokey"} {
		_, _, ok := parsePartKey(bad)
		assert.False(t, ok, bad)
	}
	now := time.UnixMilli(1_700_000_000_123)
	id := newPartsID(now)
	assert.Len(t, id, 20)
	at, ok := partsIDTime(partKeyPrefix("f", 1, id))
	require.True(t, ok)
	assert.True(t, at.Equal(now))
	assert.NotEqual(t, id, newPartsID(now), "two writes at once get different IDs")
}

func TestDecodeRowWithPartsRefusesBrokenSets(t *testing.T) {
	item := jsonItem("f", 5, 1_000_000, noisy, rand.New(rand.NewSource(5)))
	rows, problem := encodeItem("features", "f", item, true, testPartsID)
	require.Empty(t, problem)
	require.Len(t, rows.parts, 2)
	other, _ := encodeItem("features", "f", jsonItem("f", 5, 1_000_000, noisy, rand.New(rand.NewSource(6))), true, "0190000000009999ffff")

	corrupt := func() []map[string]types.AttributeValue {
		part := rowKey("features:parts", partKey(partKeyPrefix("f", 5, testPartsID), 1))
		data := append([]byte(nil), rows.parts[1][attrData].(*types.AttributeValueMemberB).Value...)
		data[len(data)-20] ^= 0xff
		part[attrData] = &types.AttributeValueMemberB{Value: data}
		return []map[string]types.AttributeValue{rows.parts[0], part}
	}
	badDigest := copyRow(rows.main)
	badDigest[attrDigest] = &types.AttributeValueMemberS{Value: strings.Repeat("0", 64)}
	badSize := copyRow(rows.main)
	badSize[attrSize] = &types.AttributeValueMemberN{Value: "999"}
	unknown := copyRow(rows.main)
	unknown[attrEncoding] = &types.AttributeValueMemberS{Value: "zstd"}

	tests := []struct {
		name    string
		main    map[string]types.AttributeValue
		parts   []map[string]types.AttributeValue
		wantErr string
	}{
		{"parts in any order, among another write's", rows.main, append(append([]map[string]types.AttributeValue{}, other.parts...), rows.parts[1], rows.parts[0]), ""},
		{"a part missing", rows.main, rows.parts[:1], "large item parts missing: 2 parts"},
		{"only another write's parts", rows.main, other.parts, "large item parts missing"},
		{"no parts (DecodeRow)", rows.main, nil, "large item parts missing"},
		{"corrupt part", rows.main, corrupt(), "large item data"},
		{"digest mismatch", badDigest, rows.parts, "does not match its digest"},
		{"size mismatch", badSize, rows.parts, "its row says 999"},
		{"unknown encoding", unknown, rows.parts, `encoding "zstd" is not one this version reads`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, got, err := DecodeRowWithParts(tt.main, tt.parts)
			if tt.wantErr == "" {
				require.NoError(t, err)
				assert.Equal(t, item, got)
				return
			}
			var rowErr *RowError
			require.ErrorAs(t, err, &rowErr)
			assert.Equal(t, "f", rowErr.Key)
			assert.Contains(t, err.Error(), tt.wantErr)
		})
	}
	ns, prefix, count := LargeRowParts(rows.main)
	assert.Equal(t, []any{"features:parts", partKeyPrefix("f", 5, testPartsID), 2}, []any{ns, prefix, count})
	_, _, count = LargeRowParts(encodeRow("features", "f", item))
	assert.Zero(t, count)
}

func copyRow(row map[string]types.AttributeValue) map[string]types.AttributeValue {
	out := make(map[string]types.AttributeValue, len(row))
	for k, v := range row {
		out[k] = v
	}
	return out
}
