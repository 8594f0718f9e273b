package testenv

import (
	"fmt"

	"github.com/launchdarkly/go-sdk-common/v3/ldvalue"
	"github.com/launchdarkly/go-server-sdk-evaluation/v3/ldbuilders"
	"github.com/launchdarkly/go-server-sdk-evaluation/v3/ldmodel"
	"github.com/launchdarkly/go-server-sdk/v7/subsystems/ldstoreimpl"
	"github.com/launchdarkly/go-server-sdk/v7/subsystems/ldstoretypes"
)

// PerfFlag is a flag shaped like a real one (targets, two rules, a rollout), about 1 KB as the
// SDK serializes it: the size that decides write units and Query pages.
func PerfFlag(i, version int) ldstoretypes.KeyedSerializedItemDescriptor {
	key := fmt.Sprintf("flag-%05d", i)
	targets := make([]string, 5)
	for j := range targets {
		targets[j] = fmt.Sprintf("user-%05d-%d", i, j)
	}
	flag := ldbuilders.NewFlagBuilder(key).Version(version).On(true).Salt("salt-"+key).
		Variations(ldvalue.String("control"), ldvalue.String("treatment-a"), ldvalue.String("treatment-b")).
		OffVariation(0).
		AddTarget(1, targets...).
		AddRule(ldbuilders.NewRuleBuilder().ID(key+"-rule-country").Variation(2).Clauses(
			ldbuilders.Clause("country", ldmodel.OperatorIn, ldvalue.String("gb"), ldvalue.String("fr"), ldvalue.String("de")),
			ldbuilders.Clause("email", ldmodel.OperatorEndsWith, ldvalue.String("@example.com")))).
		AddRule(ldbuilders.NewRuleBuilder().ID(key + "-rule-beta").Variation(1).Clauses(
			ldbuilders.SegmentMatchClause(fmt.Sprintf("segment-%05d", i%50)))).
		Fallthrough(ldbuilders.Rollout(ldbuilders.Bucket(0, 50000), ldbuilders.Bucket(1, 25000), ldbuilders.Bucket(2, 25000))).
		TrackEvents(true).
		Build()
	return ldstoretypes.KeyedSerializedItemDescriptor{Key: key, Item: ldstoretypes.SerializedItemDescriptor{
		Version:        version,
		SerializedItem: ldstoreimpl.Features().Serialize(ldstoretypes.ItemDescriptor{Version: version, Item: &flag}),
	}}
}

// PerfSegment is a segment with included users and a rule, about 1 KB serialized.
func PerfSegment(i, version int) ldstoretypes.KeyedSerializedItemDescriptor {
	key := fmt.Sprintf("segment-%05d", i)
	included := make([]string, 38)
	for j := range included {
		included[j] = fmt.Sprintf("user-%05d-%02d", i, j)
	}
	segment := ldbuilders.NewSegmentBuilder(key).Version(version).Salt("salt-"+key).
		Included(included...).Excluded("user-excluded-1", "user-excluded-2").
		AddRule(ldbuilders.NewSegmentRuleBuilder().Clauses(
			ldbuilders.Clause("plan", ldmodel.OperatorIn, ldvalue.String("enterprise"), ldvalue.String("team")))).
		Build()
	return ldstoretypes.KeyedSerializedItemDescriptor{Key: key, Item: ldstoretypes.SerializedItemDescriptor{
		Version:        version,
		SerializedItem: ldstoreimpl.Segments().Serialize(ldstoretypes.ItemDescriptor{Version: version, Item: &segment}),
	}}
}

// PerfData is a data set of flags and segments, every item at the given version.
func PerfData(flags, segments, version int) []ldstoretypes.SerializedCollection {
	f := make([]ldstoretypes.KeyedSerializedItemDescriptor, flags)
	for i := range f {
		f[i] = PerfFlag(i, version)
	}
	s := make([]ldstoretypes.KeyedSerializedItemDescriptor, segments)
	for i := range s {
		s[i] = PerfSegment(i, version)
	}
	return AllData(f, s)
}

// PerfWithChanges returns a copy of data in which the first changed items of each kind are rebuilt
// at the given version.
func PerfWithChanges(data []ldstoretypes.SerializedCollection, changed []int, version int) []ldstoretypes.SerializedCollection {
	out := make([]ldstoretypes.SerializedCollection, len(data))
	for k, coll := range data {
		items := append([]ldstoretypes.KeyedSerializedItemDescriptor(nil), coll.Items...)
		for i := 0; i < changed[k]; i++ {
			if coll.Kind == ldstoreimpl.Features() {
				items[i] = PerfFlag(i, version)
			} else {
				items[i] = PerfSegment(i, version)
			}
		}
		out[k] = ldstoretypes.SerializedCollection{Kind: coll.Kind, Items: items}
	}
	return out
}
