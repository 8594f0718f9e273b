package testenv

import (
	"testing"
	"time"

	"github.com/launchdarkly/go-sdk-common/v3/ldlogtest"
	ld "github.com/launchdarkly/go-server-sdk/v7"
	"github.com/launchdarkly/go-server-sdk/v7/ldcomponents"
	"github.com/launchdarkly/go-server-sdk/v7/subsystems"
)

// SDKClient makes an SDK client from config and closes it when the test ends. Events are always
// off (config's are replaced), and the client logs to the returned mock log, which is printed if
// the test fails. It waits up to 10 s for the client to initialize.
func SDKClient(t *testing.T, config ld.Config) (*ld.LDClient, *ldlogtest.MockLog) {
	t.Helper()
	return makeSDKClient(t, config, 10*time.Second)
}

// SDKClientNoWait is SDKClient for a client whose data source may never get data: it returns as
// soon as the client is made, without waiting for it to initialize.
func SDKClientNoWait(t *testing.T, config ld.Config) (*ld.LDClient, *ldlogtest.MockLog) {
	t.Helper()
	return makeSDKClient(t, config, 0)
}

func makeSDKClient(t *testing.T, config ld.Config, waitFor time.Duration) (*ld.LDClient, *ldlogtest.MockLog) {
	t.Helper()
	mockLog := ldlogtest.NewMockLog()
	config.Events = ldcomponents.NoEvents()
	config.DiagnosticOptOut = true
	config.Logging = ldcomponents.Logging().Loggers(mockLog.Loggers)
	client, err := ld.MakeCustomClient("sdk-key", config, waitFor)
	if err != nil {
		t.Fatalf("making SDK client: %v", err)
	}
	t.Cleanup(func() {
		_ = client.Close()
		mockLog.DumpIfTestFailed(t)
	})
	return client, mockLog
}

// DaemonClient is an SDKClient in daemon mode: it reads flags only from store, behind the SDK's
// cache with a TTL of cacheSeconds, and never connects to LaunchDarkly. opts change the
// configuration further before the client is made (to add big segments, for instance).
func DaemonClient(t *testing.T, store subsystems.ComponentConfigurer[subsystems.PersistentDataStore], cacheSeconds int,
	opts ...func(*ld.Config)) (*ld.LDClient, *ldlogtest.MockLog) {
	t.Helper()
	config := ld.Config{
		DataSource: ldcomponents.ExternalUpdatesOnly(),
		DataStore:  ldcomponents.PersistentDataStore(store).CacheSeconds(cacheSeconds),
	}
	for _, opt := range opts {
		opt(&config)
	}
	return SDKClient(t, config)
}
