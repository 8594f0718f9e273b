package main

import (
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"testing"

	ld "github.com/launchdarkly/go-server-sdk/v7"
	"github.com/launchdarkly/go-server-sdk/v7/ldcomponents"
	"github.com/launchdarkly/go-server-sdk/v7/subsystems/ldstoretypes"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lddynamodb/lddynamodb/internal/testenv"
)

func TestMain(m *testing.M) {
	os.Exit(testenv.Main(m))
}

// TestMetricsServesStoreMetrics evaluates a flag that the table holds through the service's
// routes, with the service's store and meter provider (a daemon-mode client instead of
// streaming, which would need LaunchDarkly), and reads /metrics as Prometheus would.
func TestMetricsServesStoreMetrics(t *testing.T) {
	table := testenv.NewTable(t)
	writer, _ := testenv.Build(t, testenv.DataStore(table))
	require.NoError(t, writer.Init(testenv.AllData([]ldstoretypes.KeyedSerializedItemDescriptor{testenv.Flag("new-checkout", 1, 0)}, nil)))

	provider, err := meterProvider()
	require.NoError(t, err)
	store := dataStore(table, "", provider).ClientConfig(testenv.AWSConfig(), testenv.WithEndpoint)
	client, err := ld.MakeCustomClient("sdk-key", ld.Config{
		DataSource: ldcomponents.ExternalUpdatesOnly(),
		DataStore:  ldcomponents.PersistentDataStore(store).NoCaching(),
		Events:     ldcomponents.NoEvents(),
	}, 0)
	require.NoError(t, err)
	t.Cleanup(func() { _ = client.Close() })
	server := httptest.NewServer(routes(client))
	t.Cleanup(server.Close)

	flag := get(t, server.URL+"/flags/new-checkout?context=user-1")
	assert.Contains(t, flag, `"flag":"new-checkout"`)
	metrics := get(t, server.URL+"/metrics")
	assert.Contains(t, metrics, `db_client_operation_duration_seconds_bucket{db_collection_name="`+table+`",db_operation_name="GetItem",db_system_name="aws.dynamodb"`)
	assert.Contains(t, metrics, `lddynamodb_capacity_consumed_total{db_collection_name="`+table+`",lddynamodb_capacity_type="read",lddynamodb_prefix=""`)
}

func get(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode, string(body))
	return string(body)
}
