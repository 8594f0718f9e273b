package testenv

import (
	"fmt"
	"math/rand"

	"github.com/launchdarkly/go-sdk-common/v3/ldvalue"
	"github.com/launchdarkly/go-server-sdk-evaluation/v3/ldbuilders"
	"github.com/launchdarkly/go-server-sdk/v7/subsystems/ldstoreimpl"
	"github.com/launchdarkly/go-server-sdk/v7/subsystems/ldstoretypes"
)

// NoisyFlag is a flag, on, serving true, of jsonBytes bytes of JSON that gzip cannot shrink by
// more than a quarter: a variation of random letters and digits drawn from seed (six bits a
// byte). Over 400 KB, the store keeps it in parts.
func NoisyFlag(key string, version, jsonBytes int, seed int64) ldstoretypes.KeyedSerializedItemDescriptor {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	flag := Flag(key, version, 0)
	padding := max(jsonBytes-len(flag.Item.SerializedItem)-3, 0) // 3: the quotes and comma it adds
	rng := rand.New(rand.NewSource(seed))
	pad := make([]byte, padding)
	for i := range pad {
		pad[i] = alphabet[rng.Intn(len(alphabet))]
	}
	built := ldbuilders.NewFlagBuilder(key).Version(version).On(true).
		Variations(ldvalue.Bool(true), ldvalue.Bool(false), ldvalue.String(string(pad))).
		FallthroughVariation(0).OffVariation(1).Build()
	return ldstoretypes.KeyedSerializedItemDescriptor{Key: key, Item: ldstoretypes.SerializedItemDescriptor{
		Version: version, SerializedItem: ldstoreimpl.Features().Serialize(ldstoretypes.ItemDescriptor{Version: version, Item: &built})}}
}

// ListSegment is a segment that includes n user keys, "user-" and 32 random hex digits drawn
// from seed, as a list-targeted segment from LaunchDarkly does: 26,000 keys make 1 MB of JSON,
// which gzip shrinks to about half. It also returns the keys.
func ListSegment(key string, version, n int, seed int64) (ldstoretypes.KeyedSerializedItemDescriptor, []string) {
	rng := rand.New(rand.NewSource(seed))
	keys := make([]string, n)
	for i := range keys {
		keys[i] = fmt.Sprintf("user-%016x%016x", rng.Uint64(), rng.Uint64())
	}
	segment := ldbuilders.NewSegmentBuilder(key).Version(version).Included(keys...).Build()
	return ldstoretypes.KeyedSerializedItemDescriptor{Key: key, Item: ldstoretypes.SerializedItemDescriptor{
		Version: version, SerializedItem: ldstoreimpl.Segments().Serialize(ldstoretypes.ItemDescriptor{Version: version, Item: &segment})}}, keys
}
