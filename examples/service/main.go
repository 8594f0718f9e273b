// Command service is a web service that gets flags from LaunchDarkly by streaming and keeps them in
// DynamoDB, so that when it restarts while LaunchDarkly cannot be reached it still serves the
// last flags it saw instead of defaults.
//
// Environment:
//
//	LAUNCHDARKLY_SDK_KEY             the environment's server-side SDK key
//	LAUNCHDARKLY_DYNAMODB_TABLE      the table (create it with "lddynamodb create-table")
//	LAUNCHDARKLY_DYNAMODB_PREFIX     a prefix, if several environments share the table
//	ADDR                             where to listen (default ":8080")
//
// AWS credentials and region come from the default chain (environment, profile, role). The role
// needs dynamodb:GetItem, dynamodb:PutItem, dynamodb:Query and dynamodb:BatchWriteItem.
//
// GET /flags/KEY?context=CONTEXT-KEY evaluates a flag; GET /healthz says whether LaunchDarkly and
// DynamoDB are both reachable; GET /metrics serves the store's OpenTelemetry metrics to
// Prometheus (docs/metrics.md).
//
// The service is a module of its own, so that the OpenTelemetry SDK and the Prometheus exporter
// it uses are its dependencies, never those of the library: run it with
// `cd examples/service && go run .`.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/launchdarkly/go-sdk-common/v3/ldcontext"
	"github.com/launchdarkly/go-sdk-common/v3/ldvalue"
	ld "github.com/launchdarkly/go-server-sdk/v7"
	"github.com/launchdarkly/go-server-sdk/v7/interfaces"
	"github.com/launchdarkly/go-server-sdk/v7/ldcomponents"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.opentelemetry.io/otel/exporters/prometheus"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"

	"github.com/lddynamodb/lddynamodb"
)

func main() {
	if err := run(); err != nil {
		log.Fatal(err)
	}
}

func run() error {
	sdkKey := os.Getenv("LAUNCHDARKLY_SDK_KEY")
	table := os.Getenv("LAUNCHDARKLY_DYNAMODB_TABLE")
	if sdkKey == "" || table == "" {
		return errors.New("set LAUNCHDARKLY_SDK_KEY and LAUNCHDARKLY_DYNAMODB_TABLE")
	}
	addr := os.Getenv("ADDR")
	if addr == "" {
		addr = ":8080"
	}

	provider, err := meterProvider()
	if err != nil {
		return err
	}
	defer func() { _ = provider.Shutdown(context.Background()) }()

	// Streaming is the default data source; the store keeps what it receives, and the SDK's
	// 30-second cache spares DynamoDB most reads.
	store := dataStore(table, os.Getenv("LAUNCHDARKLY_DYNAMODB_PREFIX"), provider)
	config := ld.Config{DataStore: ldcomponents.PersistentDataStore(store).CacheSeconds(30)}
	client, err := ld.MakeCustomClient(sdkKey, config, 10*time.Second)
	if err != nil && !errors.Is(err, ld.ErrInitializationTimeout) {
		return fmt.Errorf("creating the LaunchDarkly client: %w", err)
	}
	// On a timeout the client keeps connecting in the background, and meanwhile evaluates
	// from the flags that the table already holds.
	defer client.Close()

	server := &http.Server{Addr: addr, Handler: routes(client), ReadHeaderTimeout: 5 * time.Second}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		shutdown, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = server.Shutdown(shutdown)
	}()
	log.Printf("listening on %s", addr)
	if err := server.ListenAndServe(); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// meterProvider is an OpenTelemetry meter provider whose metrics the Prometheus exporter hands
// to the default Prometheus registry, which promhttp.Handler serves.
func meterProvider() (*sdkmetric.MeterProvider, error) {
	exporter, err := prometheus.New()
	if err != nil {
		return nil, fmt.Errorf("creating the Prometheus exporter: %w", err)
	}
	return sdkmetric.NewMeterProvider(sdkmetric.WithReader(exporter)), nil
}

// dataStore is the DynamoDB store of the service, recording its metrics with provider.
func dataStore(table, prefix string, provider *sdkmetric.MeterProvider) *lddynamodb.DataStoreBuilder {
	return lddynamodb.DataStore(table).Prefix(prefix).MeterProvider(provider)
}

// routes serves the flags, the health check and the metrics.
func routes(client *ld.LDClient) *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /flags/{key}", func(w http.ResponseWriter, r *http.Request) {
		contextKey := r.URL.Query().Get("context")
		if contextKey == "" {
			http.Error(w, "missing ?context=", http.StatusBadRequest)
			return
		}
		flag := r.PathValue("key")
		value, detail, _ := client.JSONVariationDetailCtx(r.Context(), flag, ldcontext.New(contextKey), ldvalue.Null())
		writeJSON(w, http.StatusOK, map[string]any{"flag": flag, "value": value, "reason": detail.Reason})
	})
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		source := client.GetDataSourceStatusProvider().GetStatus().State
		storeUp := client.GetDataStoreStatusProvider().GetStatus().Available
		status := http.StatusOK
		if source != interfaces.DataSourceStateValid || !storeUp {
			status = http.StatusServiceUnavailable
		}
		writeJSON(w, status, map[string]any{"launchdarkly": source, "dynamodb": storeUp})
	})
	mux.Handle("GET /metrics", promhttp.Handler())
	return mux
}

func writeJSON(w http.ResponseWriter, status int, body any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(body)
}
