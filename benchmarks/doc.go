// Package benchmarks compares lddynamodb with LaunchDarkly's official DynamoDB data store,
// github.com/launchdarkly/go-server-sdk-dynamodb/v4, on the same DynamoDB server in the same run.
// It is a module of its own so that users of lddynamodb never download the official store.
//
// Run it with `make bench-peers` from the repository root: it starts the local DynamoDB that the
// tests use (or uses DYNAMODB_ENDPOINT). docs/performance.md shows a run and how to compare runs
// with benchstat.
package benchmarks
