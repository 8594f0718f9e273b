package lddynamodb_test

import (
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/smithy-go/middleware"
	"github.com/launchdarkly/go-sdk-common/v3/ldlog"
	"github.com/launchdarkly/go-server-sdk/v7/subsystems"
	"github.com/launchdarkly/go-server-sdk/v7/subsystems/ldstoreimpl"
	"github.com/launchdarkly/go-server-sdk/v7/subsystems/ldstoretypes"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lddynamodb/lddynamodb"
	"github.com/lddynamodb/lddynamodb/internal/testenv"
)

// fullOptions returns a dynamodb.Options with every exported field set to a non-zero value: the
// values of a resolved client where it has one (interfaces cannot be made up), made-up ones
// otherwise. A field that neither gives fails the test, so a field the AWS SDK adds is covered
// as soon as the module is upgraded.
func fullOptions(t *testing.T, tag string) dynamodb.Options {
	t.Helper()
	donor := dynamodb.NewFromConfig(testenv.AWSConfig(), func(o *dynamodb.Options) {
		o.EndpointResolver = dynamodb.EndpointResolverFromURL("http://127.0.0.1:1")
	}).Options()
	var full dynamodb.Options
	v := reflect.ValueOf(&full).Elem()
	d := reflect.ValueOf(donor)
	for i := range v.NumField() {
		field := v.Type().Field(i)
		if !field.IsExported() {
			continue
		}
		v.Field(i).Set(nonZero(field.Type, d.Field(i), tag))
		require.False(t, v.Field(i).IsZero(), "no non-zero value for dynamodb.Options.%s: give the donor client one", field.Name)
	}
	return full
}

// nonZero makes a non-zero value of type typ: a string or number from tag, or donor's value.
func nonZero(typ reflect.Type, donor reflect.Value, tag string) reflect.Value {
	v := reflect.New(typ).Elem()
	switch typ.Kind() {
	case reflect.String:
		v.SetString(tag)
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		v.SetInt(int64(len(tag)))
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		v.SetUint(uint64(len(tag)))
	case reflect.Pointer:
		v.Set(reflect.New(typ.Elem()))
		v.Elem().Set(nonZero(typ.Elem(), reflect.Value{}, tag))
	case reflect.Slice:
		if donor.IsValid() && donor.Len() > 0 {
			return donor
		}
		v.Set(reflect.MakeSlice(typ, 1, 1))
		v.Index(0).Set(nonZero(typ.Elem(), reflect.Value{}, tag))
	case reflect.Struct:
		if donor.IsValid() && !donor.IsZero() {
			return donor
		}
		for i := range typ.NumField() {
			if f := typ.Field(i); f.IsExported() && f.Type.Kind() != reflect.Interface && f.Type.Kind() != reflect.Func {
				v.Field(i).Set(nonZero(f.Type, reflect.Value{}, tag))
			}
		}
	default: // interfaces and functions
		if donor.IsValid() {
			return donor
		}
	}
	return v
}

// same says whether two field values are the same values: %#v prints functions and nested
// pointers by address, so copies of one value match and different values do not.
func same(a, b reflect.Value) bool {
	return fmt.Sprintf("%#v", a.Interface()) == fmt.Sprintf("%#v", b.Interface())
}

// TestMergeOptionsHonoursEveryField merges options whose every exported field is set: each field
// of the result is the given one (the official store drops BaseEndpoint and others here), fields
// left zero keep the configuration's values, and APIOptions add up.
func TestMergeOptionsHonoursEveryField(t *testing.T) {
	source := fullOptions(t, "given")
	var target dynamodb.Options
	lddynamodb.MergeOptions(&target, source)
	configured := fullOptions(t, "configured")
	configured.APIOptions = []func(*middleware.Stack) error{func(*middleware.Stack) error { return nil }}
	kept := configured.Copy()
	lddynamodb.MergeOptions(&kept, dynamodb.Options{})
	got, want := reflect.ValueOf(target), reflect.ValueOf(source)
	for i := range got.NumField() {
		field := got.Type().Field(i)
		if !field.IsExported() {
			continue
		}
		t.Run(field.Name, func(t *testing.T) {
			assert.True(t, same(got.Field(i), want.Field(i)), "given %#v, got %#v", want.Field(i), got.Field(i))
			assert.True(t, same(reflect.ValueOf(kept).Field(i), reflect.ValueOf(configured).Field(i)), "a zero field replaced the configured value")
		})
	}
	added := configured.Copy()
	lddynamodb.MergeOptions(&added, source)
	assert.Len(t, added.APIOptions, len(configured.APIOptions)+len(source.APIOptions), "APIOptions are added to")
	assert.Len(t, configured.APIOptions, 1, "the configuration's slice is not written through")
}

// TestClientOptionsLayering builds stores and reads the options of the client Build made: the
// options of ClientOptions replace the configuration's where they are set, option functions run
// after them, and calls add up in order.
func TestClientOptionsLayering(t *testing.T) {
	closed := testenv.ClosedEndpoint(t)
	toClosed := func(o *dynamodb.Options) { o.BaseEndpoint = aws.String(closed) }
	eu := testenv.AWSConfig()
	eu.Region = "eu-west-1"
	tests := []struct {
		name         string
		builder      *lddynamodb.DataStoreBuilder
		wantEndpoint string
		wantRegion   string
	}{
		{"options over ClientConfig", lddynamodb.DataStore("t").ClientConfig(eu).
			ClientOptions(dynamodb.Options{Region: "us-west-2", BaseEndpoint: aws.String(closed)}), closed, "us-west-2"},
		{"zero options keep ClientConfig's", lddynamodb.DataStore("t").ClientConfig(eu, testenv.WithEndpoint).
			ClientOptions(dynamodb.Options{}), testenv.Endpoint(), "eu-west-1"},
		{"functions after options", lddynamodb.DataStore("t").ClientConfig(eu).
			ClientOptions(dynamodb.Options{BaseEndpoint: aws.String(testenv.Endpoint())}, toClosed), closed, "eu-west-1"},
		{"later calls win", lddynamodb.DataStore("t").ClientConfig(eu).
			ClientOptions(dynamodb.Options{BaseEndpoint: aws.String(closed)}).
			ClientOptions(dynamodb.Options{Region: "ap-south-1"}, testenv.WithEndpoint), testenv.Endpoint(), "ap-south-1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			store, _ := testenv.Build(t, tt.builder)
			got := lddynamodb.ClientOptionsOf(store)
			assert.Equal(t, tt.wantEndpoint, aws.ToString(got.BaseEndpoint))
			assert.Equal(t, tt.wantRegion, got.Region)
		})
	}
}

// TestClientOptionsAloneReachDynamoDB configures the client as the official store's documentation
// does, with a dynamodb.Options only, on a machine whose environment points DynamoDB at a closed
// port: the region, credentials and endpoint of the options are those used, for both stores.
func TestClientOptionsAloneReachDynamoDB(t *testing.T) {
	table := testenv.NewTable(t)
	buildNoAWSEnvironment(t)
	t.Setenv("AWS_ENDPOINT_URL_DYNAMODB", testenv.ClosedEndpoint(t))
	options := dynamodb.Options{
		Region:       "us-east-1",
		Credentials:  testenv.AWSConfig().Credentials,
		BaseEndpoint: aws.String(testenv.Endpoint()),
	}
	store, _ := testenv.Build(t, lddynamodb.DataStore(table).ClientOptions(options))
	require.NoError(t, store.Init(testenv.AllData([]ldstoretypes.KeyedSerializedItemDescriptor{testenv.Flag("f", 1, 0)}, nil)))
	got, err := store.Get(ldstoreimpl.Features(), "f")
	require.NoError(t, err)
	assert.Equal(t, 1, got.Version)

	bigSegments, _ := testenv.Build(t, lddynamodb.BigSegmentStore(table).ClientOptions(options))
	meta, err := bigSegments.GetMetadata()
	require.NoError(t, err)
	assert.Zero(t, meta.LastUpToDate)
}

// TestDynamoClientWinsOverConfigurationAndWarnsOnce gives a working client together with
// ClientConfig and ClientOptions aimed at a closed port: the store works through the client, as
// the official store does, and Build logs one warning that names what it ignored.
func TestDynamoClientWinsOverConfigurationAndWarnsOnce(t *testing.T) {
	table := testenv.NewTable(t)
	closed := testenv.ClosedEndpoint(t)
	toClosed := func(o *dynamodb.Options) { o.BaseEndpoint = aws.String(closed) }
	closedOptions := dynamodb.Options{BaseEndpoint: aws.String(closed)}
	client := testenv.Client()
	tests := []struct {
		name        string
		data        *lddynamodb.DataStoreBuilder
		bigSegments *lddynamodb.BigSegmentStoreBuilder
		wantWarning string
	}{
		{"client alone",
			lddynamodb.DataStore(table).DynamoClient(client),
			lddynamodb.BigSegmentStore(table).DynamoClient(client), ""},
		{"ClientConfig",
			lddynamodb.DataStore(table).ClientConfig(testenv.AWSConfig(), toClosed).DynamoClient(client),
			lddynamodb.BigSegmentStore(table).DynamoClient(client).ClientConfig(testenv.AWSConfig(), toClosed),
			"DynamoClient is set, so ClientConfig is ignored"},
		{"ClientOptions",
			lddynamodb.DataStore(table).DynamoClient(client).ClientOptions(closedOptions),
			lddynamodb.BigSegmentStore(table).ClientOptions(dynamodb.Options{}, toClosed).DynamoClient(client),
			"DynamoClient is set, so ClientOptions is ignored"},
		{"both",
			lddynamodb.DataStore(table).DynamoClient(client).ClientConfig(testenv.AWSConfig(), toClosed).ClientOptions(closedOptions),
			lddynamodb.BigSegmentStore(table).DynamoClient(client).ClientConfig(testenv.AWSConfig()).ClientOptions(closedOptions),
			"DynamoClient is set, so ClientConfig and ClientOptions are ignored"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			store, dataLog := testenv.Build(t, tt.data)
			require.NoError(t, store.Init(testenv.AllData(nil, nil)))
			assert.True(t, store.IsInitialized())
			bigSegments, bigLog := testenv.Build(t, tt.bigSegments)
			_, err := bigSegments.GetMetadata()
			require.NoError(t, err)
			for name, output := range map[string][]string{"data": dataLog.GetOutput(ldlog.Warn), "big segments": bigLog.GetOutput(ldlog.Warn)} {
				var warnings []string
				for _, line := range output {
					if strings.Contains(line, "DynamoClient") {
						warnings = append(warnings, line)
					}
				}
				if tt.wantWarning == "" {
					assert.Empty(t, warnings, name)
					continue
				}
				if assert.Len(t, warnings, 1, name) {
					assert.Contains(t, warnings[0], tt.wantWarning, name)
					assert.Contains(t, warnings[0], fmt.Sprintf("%q", table), name)
				}
			}
		})
	}
}

// TestNilDynamoClientLeavesBuildToMakeOne passes a nil *dynamodb.Client, which the official store
// treats as no client: Build makes one from the configuration, without a warning.
func TestNilDynamoClientLeavesBuildToMakeOne(t *testing.T) {
	table := testenv.NewTable(t)
	var none *dynamodb.Client
	store, mockLog := testenv.Build(t, testenv.DataStore(table).DynamoClient(none))
	require.NoError(t, store.Init(testenv.AllData(nil, nil)))
	assert.True(t, store.IsInitialized())
	assert.Empty(t, mockLog.GetOutput(ldlog.Warn))
	big, err := testenv.BigSegmentStore(table).DynamoClient(none).Build(subsystems.BasicClientContext{})
	require.NoError(t, err)
	require.NoError(t, big.Close())
}
