package benchmarks

import (
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/launchdarkly/go-sdk-common/v3/ldcontext"
	"github.com/launchdarkly/go-sdk-common/v3/ldlog"
	"github.com/launchdarkly/go-sdk-common/v3/ldreason"
	"github.com/launchdarkly/go-sdk-common/v3/ldvalue"
	official "github.com/launchdarkly/go-server-sdk-dynamodb/v4"
	"github.com/launchdarkly/go-server-sdk-evaluation/v3/ldbuilders"
	"github.com/launchdarkly/go-server-sdk/v7/subsystems/ldstoreimpl"
	"github.com/launchdarkly/go-server-sdk/v7/subsystems/ldstoretypes"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lddynamodb/lddynamodb"
	"github.com/lddynamodb/lddynamodb/internal/testenv"
)

// segmentRuleFlag is true for the members of a segment, false for everyone else.
func segmentRuleFlag(key string, version int, segmentKey string) ldstoretypes.KeyedSerializedItemDescriptor {
	flag := ldbuilders.NewFlagBuilder(key).Version(version).On(true).
		Variations(ldvalue.Bool(false), ldvalue.Bool(true)).OffVariation(0).FallthroughVariation(0).
		AddRule(ldbuilders.NewRuleBuilder().ID("members").Variation(1).Clauses(ldbuilders.SegmentMatchClause(segmentKey))).
		Build()
	return ldstoretypes.KeyedSerializedItemDescriptor{Key: key, Item: ldstoretypes.SerializedItemDescriptor{
		Version: version, SerializedItem: ldstoreimpl.Features().Serialize(ldstoretypes.ItemDescriptor{Version: version, Item: &flag})}}
}

// TestOfficialStoreReadsLargeItemsAsDeleted fills a table through lddynamodb with items over
// DynamoDB's 400 KB limit (a flag and a segment in parts, a flag compressed into its main row)
// beside ordinary ones, and reads it with the official store: its Get and GetAll succeed, see
// each large item as deleted at its version and every other item exactly as written, and an SDK
// client in daemon mode on the official store evaluates the ordinary flags, finds no large flag
// and no member in the large segment, and logs no error. lddynamodb's own client evaluates all.
func TestOfficialStoreReadsLargeItemsAsDeleted(t *testing.T) {
	const prefix = "env"
	table := testenv.NewTable(t)
	features, segments := ldstoreimpl.Features(), ldstoreimpl.Segments()
	bigSegment, members := testenv.ListSegment("big-segment", 5, 26_000, 2)
	flags := []ldstoretypes.KeyedSerializedItemDescriptor{
		testenv.NoisyFlag("big-flag", 3, 1_200_000, 1), // in parts
		testenv.Flag("padded-flag", 4, 600_000),        // compresses into its main row
		testenv.Flag("plain-flag", 1, 0),
		segmentRuleFlag("big-segment-flag", 2, "big-segment"),
		segmentRuleFlag("plain-segment-flag", 2, "plain-segment"),
		{Key: "deleted-flag", Item: deleted(7)},
	}
	segs := []ldstoretypes.KeyedSerializedItemDescriptor{bigSegment, testenv.Segment("plain-segment", 1)}
	large := map[string]bool{"big-flag": true, "padded-flag": true, "big-segment": true}
	inParts := map[string]ldstoretypes.DataKind{"big-flag": features, "big-segment": segments}

	ours, _ := testenv.Build(t, testenv.DataStore(table).Prefix(prefix))
	require.NoError(t, ours.Init(testenv.AllData(flags, segs)))
	for key, kind := range inParts {
		assert.NotEmpty(t, partKeys(t, table, prefix, kind, key), "%s %q is stored in parts", kind, key)
	}
	assert.Empty(t, partKeys(t, table, prefix, features, "padded-flag"), "padded-flag is compressed into its row")

	officialBuilder := official.DataStore(table).Prefix(prefix).ClientConfig(testenv.AWSConfig(), testenv.WithEndpoint)
	theirs, theirLog := testenv.Build(t, officialBuilder)
	written := map[string]ldstoretypes.SerializedItemDescriptor{}
	for _, it := range append(append([]ldstoretypes.KeyedSerializedItemDescriptor{}, flags...), segs...) {
		written[it.Key] = it.Item
	}
	check := func(t *testing.T, kind ldstoretypes.DataKind, key string, got ldstoretypes.SerializedItemDescriptor) {
		t.Helper()
		want := written[key]
		assert.Equal(t, want.Version, got.Version, "%s %q", kind, key)
		switch {
		case large[key]:
			assert.True(t, isDeleted(t, kind, got), "the official store sees %s %q as deleted", kind, key)
		case want.Deleted:
			assert.True(t, isDeleted(t, kind, got), "%s %q", kind, key)
		default:
			assert.Equal(t, string(want.SerializedItem), string(got.SerializedItem), "%s %q is unchanged", kind, key)
		}
	}
	checkAll := func(t *testing.T) {
		t.Helper()
		for _, coll := range testenv.AllData(flags, segs) {
			all, err := theirs.GetAll(coll.Kind)
			require.NoError(t, err, "the official store's GetAll of %s", coll.Kind)
			assert.Len(t, all, len(coll.Items), "GetAll of %s sees every main row and no part", coll.Kind)
			for _, it := range all {
				check(t, coll.Kind, it.Key, it.Item)
			}
			for _, it := range coll.Items {
				got, err := theirs.Get(coll.Kind, it.Key)
				require.NoError(t, err, "the official store's Get of %s %q", coll.Kind, it.Key)
				check(t, coll.Kind, it.Key, got)
			}
		}
	}
	t.Run("after Init", checkAll)

	t.Run("after Upserts", func(t *testing.T) {
		// A newer version of the flag in parts, and the padded flag shrunk back under the limit.
		flags[0] = testenv.NoisyFlag("big-flag", 4, 1_100_000, 3)
		flags[1] = testenv.Flag("padded-flag", 5, 100)
		delete(large, "padded-flag")
		for _, it := range flags[:2] {
			updated, err := ours.Upsert(features, it.Key, it.Item)
			require.NoError(t, err)
			require.True(t, updated)
			written[it.Key] = it.Item
		}
		checkAll(t)
	})

	t.Run("daemon mode", func(t *testing.T) {
		user, member := ldcontext.New("not-a-member"), ldcontext.New(members[100])
		theirClient, _ := testenv.DaemonClient(t, officialBuilder, 30)
		ourClient, _ := testenv.DaemonClient(t, testenv.DataStore(table).Prefix(prefix), 30)
		require.True(t, theirClient.Initialized())
		require.True(t, ourClient.Initialized())
		for _, c := range []struct {
			key     string
			context ldcontext.Context
			// what each client evaluates; notFound when the client does not find the flag
			official, ours any
		}{
			{"plain-flag", user, true, true},
			{"padded-flag", user, true, true},
			{"big-flag", user, notFound, true},
			{"deleted-flag", user, notFound, notFound},
			{"big-segment-flag", member, false, true},
			{"big-segment-flag", user, false, false},
			{"plain-segment-flag", user, false, false},
		} {
			for _, side := range []struct {
				name   string
				client interface {
					BoolVariationDetail(string, ldcontext.Context, bool) (bool, ldreason.EvaluationDetail, error)
				}
				want any
			}{{"official", theirClient, c.official}, {"lddynamodb", ourClient, c.ours}} {
				value, detail, _ := side.client.BoolVariationDetail(c.key, c.context, false)
				if side.want == notFound {
					assert.Equal(t, ldreason.EvalErrorFlagNotFound, detail.Reason.GetErrorKind(), "%s client: %s", side.name, c.key)
					continue
				}
				assert.Equal(t, ldreason.EvalErrorKind(""), detail.Reason.GetErrorKind(), "%s client: %s", side.name, c.key)
				assert.Equal(t, side.want, value, "%s client: %s for %s", side.name, c.key, c.context.Key())
			}
		}
		state := theirClient.AllFlagsState(user)
		assert.True(t, state.IsValid(), "the official client reads all flags")
		assert.NotContains(t, state.ToValuesMap(), "big-flag")
		assert.Contains(t, state.ToValuesMap(), "plain-flag")
	})

	assert.Empty(t, theirLog.GetOutput(ldlog.Error), "the official store logs no error")
	assert.Empty(t, theirLog.GetOutput(ldlog.Warn), "the official store logs no warning")
}

// notFound stands for an evaluation that finds no flag.
var notFound = struct{}{}

// partKeys are the sort keys of the part rows of one item, read bypassing the stores.
func partKeys(t *testing.T, table, prefix string, kind ldstoretypes.DataKind, key string) []string {
	t.Helper()
	var keys []string
	for _, row := range testenv.Rows(t, table, lddynamodb.PartsNamespace(prefix, kind)) {
		if sortKey := row[lddynamodb.AttrKey].(*types.AttributeValueMemberS).Value; strings.HasPrefix(sortKey, key+"/") {
			keys = append(keys, sortKey)
		}
	}
	return keys
}
