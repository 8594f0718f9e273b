// Package lddynamodb is a DynamoDB persistent data store for the LaunchDarkly Go server SDK v7.
// It keeps flags and segments in one DynamoDB table, in the same rows as the Relay Proxy and the
// other LaunchDarkly SDKs' DynamoDB stores, so that all of them can share the table.
//
// # Two builders
//
// DataStore returns a *DataStoreBuilder for ldcomponents.PersistentDataStore: the SDK writes
// flags to the table when it gets them from LaunchDarkly, and reads them back, behind its own
// cache (CacheSeconds). In daemon mode (ldcomponents.ExternalUpdatesOnly, as in AWS Lambda) the
// SDK only reads the table that the Relay Proxy or another SDK fills.
//
// BigSegmentStore returns a *BigSegmentStoreBuilder for ldcomponents.BigSegments: it reads the
// big segment membership that the Relay Proxy writes to the table. It never writes.
//
// Both take a table name and share the options Prefix, DynamoClient, ClientConfig,
// ClientOptions, OperationTimeout, Metrics and MeterProvider (OpenTelemetry metrics, see
// docs/metrics.md). With no client given, Build makes one from the
// default AWS configuration chain (environment, shared files, web identity, ECS and Lambda
// roles). Build checks the options and makes no DynamoDB call.
//
// A program written for LaunchDarkly's official store, go-server-sdk-dynamodb/v4, needs only its
// import line changed: DataStore, BigSegmentStore, Prefix, DynamoClient, ClientConfig,
// ClientOptions and Build take the same arguments and mean the same (docs/migrating.md lists the
// differences: ClientOptions honours BaseEndpoint, for one).
//
// # Rows
//
// The table has partition key "namespace" (S) and sort key "key" (S); CreateTable makes one.
// A flag is the row namespace="features", key=the flag key, with "version" (N) and "item" (S, the
// flag's JSON); segments are the same under "segments"; the row namespace=key="$inited" says that
// a full data set was written. A prefix, for environments that share a table, makes these
// "PREFIX:features", "PREFIX:segments" and "PREFIX:$inited" (see Namespace and InitedMarker).
// Deleted items are rows whose JSON says so; every peer's shape of them is read (see DecodeRow).
//
// An item whose row would be over DynamoDB's 400 KB limit is stored large (LargeItems, on by
// default): its JSON gzip-compressed in the main row, or in parts under "features:parts"
// ("segments:parts"), while the main row's "item" is a tombstone that every other SDK reads as a
// deleted item. Readers never combine parts of two versions (docs/table.md; PartsNamespace,
// DecodeRowWithParts and LargeRowParts read them for tools).
//
// # Defaults and costs
//
// Strongly consistent reads (ConsistentReads), Init batches 8 at a time (BatchConcurrency),
// Init bounded by 5 minutes (InitTimeout), other operations by 10 seconds (OperationTimeout),
// no stale-if-error cache (StaleIfError). In DynamoDB calls: Get is one GetItem, GetAll one
// Query per 1 MB page, Upsert one conditional PutItem, IsInitialized one GetItem; a large item
// in parts adds one Query to Get and GetAll and the writes of its parts to Upsert. Init reads the
// stored rows with one Query per kind and page (and one of each kind's parts), writes only the rows that changed or went (one
// BatchWriteItem per 25) and then the marker (one PutItem): re-initializing an unchanged table
// costs the Query pages and one PutItem, not a write per item. The stores need only the IAM actions dynamodb:GetItem and
// dynamodb:Query to read, and dynamodb:PutItem and dynamodb:BatchWriteItem as well to write.
//
// # More
//
// The README (https://github.com/lddynamodb/lddynamodb#readme) has a quick start and the
// options table; docs/table.md the table, IAM policies and sharing with other SDKs;
// docs/caching.md the SDK cache, daemon mode and StaleIfError; docs/performance.md costs and
// benchmarks; docs/metrics.md the OpenTelemetry metrics; docs/reliability.md the fault tests;
// docs/big-segments.md big segments; docs/migrating.md the move from the official store and back;
// and docs/tools.md the lddynamodb command (create-table, verify, dump, load).
package lddynamodb
