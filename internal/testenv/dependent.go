package testenv

import (
	"fmt"
	"math/rand"
	"reflect"
	"strconv"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/launchdarkly/go-sdk-common/v3/ldvalue"
	"github.com/launchdarkly/go-server-sdk-evaluation/v3/ldbuilders"
	"github.com/launchdarkly/go-server-sdk-evaluation/v3/ldmodel"
	"github.com/launchdarkly/go-server-sdk/v7/subsystems/ldstoreimpl"
	"github.com/launchdarkly/go-server-sdk/v7/subsystems/ldstoretypes"
)

// Ref names a flag ("features") or segment ("segments") by kind and key.
type Ref struct{ Kind, Key string }

// DependentData is a data set whose items use each other as the SDK's contract describes, with
// what each item uses:
//   - half the segments use another segment in a rule, in chains three deep (segment 4k+2 uses
//     4k+1, which uses 4k);
//   - a third of the flags have a rule matching one or two segments;
//   - flags with keys ending in 1 to 4 have the flag before them as a prerequisite, in chains
//     five deep, and flags ending in 5 a prerequisite that this data set does not hold.
//
// Items are in a random order drawn from seed, so that nothing relies on the SDK's sort. Every
// item is at version and under 1 KB.
func DependentData(seed int64, segments, flags, version int) ([]ldstoretypes.SerializedCollection, map[Ref][]Ref) {
	rng := rand.New(rand.NewSource(seed))
	uses := map[Ref][]Ref{}
	segs := make([]ldstoretypes.KeyedSerializedItemDescriptor, segments)
	for i := range segs {
		key := fmt.Sprintf("segment-%04d", i)
		b := ldbuilders.NewSegmentBuilder(key).Version(version).Salt("salt").Included(key + "-user")
		if i%4 == 1 || i%4 == 2 {
			used := fmt.Sprintf("segment-%04d", i-1)
			uses[Ref{"segments", key}] = []Ref{{"segments", used}}
			b.AddRule(ldbuilders.NewSegmentRuleBuilder().Clauses(
				ldbuilders.Clause("plan", ldmodel.OperatorIn, ldvalue.String("team")),
				ldbuilders.SegmentMatchClause(used)))
		}
		segment := b.Build()
		segs[i] = ldstoretypes.KeyedSerializedItemDescriptor{Key: key, Item: ldstoretypes.SerializedItemDescriptor{
			Version:        version,
			SerializedItem: ldstoreimpl.Segments().Serialize(ldstoretypes.ItemDescriptor{Version: version, Item: &segment}),
		}}
	}
	fl := make([]ldstoretypes.KeyedSerializedItemDescriptor, flags)
	for i := range fl {
		key := fmt.Sprintf("flag-%05d", i)
		ref := Ref{"features", key}
		b := ldbuilders.NewFlagBuilder(key).Version(version).On(true).Salt("salt").
			Variations(ldvalue.String("a"), ldvalue.String("b")).OffVariation(0).FallthroughVariation(0).
			AddRule(ldbuilders.NewRuleBuilder().ID(key + "-country").Variation(1).Clauses(
				ldbuilders.Clause("country", ldmodel.OperatorIn, ldvalue.String("gb"), ldvalue.Int(44))))
		if i%3 == 0 && segments > 0 {
			var keys []string
			for range 1 + rng.Intn(2) {
				keys = append(keys, fmt.Sprintf("segment-%04d", rng.Intn(segments)))
			}
			for _, k := range keys {
				uses[ref] = append(uses[ref], Ref{"segments", k})
			}
			b.AddRule(ldbuilders.NewRuleBuilder().ID(key + "-beta").Variation(1).Clauses(
				ldbuilders.SegmentMatchClause(keys...)))
		}
		switch d := i % 10; {
		case d >= 1 && d <= 4:
			used := fmt.Sprintf("flag-%05d", i-1)
			uses[ref] = append(uses[ref], Ref{"features", used})
			b.AddPrerequisite(used, 0)
		case d == 5:
			b.AddPrerequisite("flag-not-in-this-data", 0)
		}
		flag := b.Build()
		fl[i] = ldstoretypes.KeyedSerializedItemDescriptor{Key: key, Item: ldstoretypes.SerializedItemDescriptor{
			Version:        version,
			SerializedItem: ldstoreimpl.Features().Serialize(ldstoretypes.ItemDescriptor{Version: version, Item: &flag}),
		}}
	}
	rng.Shuffle(len(segs), func(i, j int) { segs[i], segs[j] = segs[j], segs[i] })
	rng.Shuffle(len(fl), func(i, j int) { fl[i], fl[j] = fl[j], fl[i] })
	return AllData(fl, segs), uses
}

// FlagWithPrerequisites is a flag at version 1 with the given flags as prerequisites.
func FlagWithPrerequisites(key string, prerequisites ...string) ldstoretypes.KeyedSerializedItemDescriptor {
	b := ldbuilders.NewFlagBuilder(key).Version(1).On(true).Variations(ldvalue.Bool(true)).FallthroughVariation(0)
	for _, p := range prerequisites {
		b.AddPrerequisite(p, 0)
	}
	flag := b.Build()
	return ldstoretypes.KeyedSerializedItemDescriptor{Key: key, Item: ldstoretypes.SerializedItemDescriptor{
		Version: 1, SerializedItem: ldstoreimpl.Features().Serialize(ldstoretypes.ItemDescriptor{Version: 1, Item: &flag})}}
}

// SegmentUsing is a segment at version 1 with a rule that matches the given segments.
func SegmentUsing(key string, segments ...string) ldstoretypes.KeyedSerializedItemDescriptor {
	segment := ldbuilders.NewSegmentBuilder(key).Version(1).
		AddRule(ldbuilders.NewSegmentRuleBuilder().Clauses(ldbuilders.SegmentMatchClause(segments...))).Build()
	return ldstoretypes.KeyedSerializedItemDescriptor{Key: key, Item: ldstoretypes.SerializedItemDescriptor{
		Version: 1, SerializedItem: ldstoreimpl.Segments().Serialize(ldstoretypes.ItemDescriptor{Version: 1, Item: &segment})}}
}

// ItemRow is the row in which a store without prefix keeps an item, built here independently of
// the store, as another program would write it.
func ItemRow(namespace, key string, item ldstoretypes.SerializedItemDescriptor) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{
		"namespace": &types.AttributeValueMemberS{Value: namespace},
		"key":       &types.AttributeValueMemberS{Value: key},
		"version":   &types.AttributeValueMemberN{Value: strconv.Itoa(item.Version)},
		"item":      &types.AttributeValueMemberS{Value: string(item.SerializedItem)},
	}
}

// Lost counts the items of data that the table (no prefix) does not hold exactly, version and
// JSON, and the rows it holds beyond them, reporting the first few as test errors. It may run in
// any goroutine.
func Lost(t testing.TB, table string, data []ldstoretypes.SerializedCollection) int {
	t.Helper()
	lost := 0
	for _, coll := range data {
		read, err := ReadRows(table, coll.Kind.GetName())
		if err != nil {
			t.Errorf("reading %s: %v", coll.Kind, err)
			lost += len(coll.Items)
			continue
		}
		rows := map[string]map[string]types.AttributeValue{}
		for _, row := range read {
			rows[row["key"].(*types.AttributeValueMemberS).Value] = row
		}
		for _, it := range coll.Items {
			want := ItemRow(coll.Kind.GetName(), it.Key, it.Item)
			if got, ok := rows[it.Key]; !ok || !reflect.DeepEqual(got, want) {
				if lost < 5 {
					t.Errorf("table %s: %s %q holds %v (present %v)", table, coll.Kind, it.Key, got, ok)
				}
				lost++
			}
			delete(rows, it.Key)
		}
		for key := range rows {
			if lost < 5 {
				t.Errorf("table %s: %s %q is left over from an earlier Init", table, coll.Kind, key)
			}
			lost++
		}
	}
	return lost
}
