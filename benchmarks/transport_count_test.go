package benchmarks

import (
	"io"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/launchdarkly/go-server-sdk/v7/subsystems/ldstoreimpl"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lddynamodb/lddynamodb"
	"github.com/lddynamodb/lddynamodb/internal/testenv"
)

// TestWriteCounterFindsTokensAcrossReads counts the write requests of a body read in chunks of
// every size from 1 byte up, so that tokens split between reads are counted once.
func TestWriteCounterFindsTokensAcrossReads(t *testing.T) {
	body := `{"RequestItems":{"t":[{"PutRequest":{"Item":{"item":{"S":"{\"PutRequest\":1}"}}}},` +
		`{"DeleteRequest":{"Key":{}}},{"PutRequest":{}}]},"DeleteRequest"`
	for size := 1; size <= len(body); size++ {
		w := &writeCounter{ReadCloser: io.NopCloser(&chunked{r: strings.NewReader(body), size: size})}
		_, err := io.Copy(io.Discard, w)
		require.NoError(t, err)
		assert.Equal(t, int64(4), w.n.Load(), "reads of %d bytes", size)
	}
}

// chunked returns at most size bytes per Read.
type chunked struct {
	r    io.Reader
	size int
}

func (c *chunked) Read(p []byte) (int, error) { return c.r.Read(p[:min(len(p), c.size)]) }

// TestCounterAgreesWithMetrics runs lddynamodb through the counter, on each network, and
// compares what the counter saw with the store's own Metrics, which count from the requests the
// store built: calls by operation and rows written, under partial batches too.
func TestCounterAgreesWithMetrics(t *testing.T) {
	data := testenv.PerfData(450, 50, 1)
	for _, net := range []network{direct, partial} {
		t.Run(net.name, func(t *testing.T) {
			httpClient, count := net.client()
			metrics := &lddynamodb.Metrics{}
			store, _ := testenv.Build(t, testenv.DataStore(testenv.NewTable(t)).
				ClientOptions(dynamodb.Options{HTTPClient: httpClient}).Metrics(metrics))
			require.NoError(t, store.Init(data))
			_, err := store.Get(ldstoreimpl.Features(), data[0].Items[0].Key)
			require.NoError(t, err)
			_, err = store.GetAll(ldstoreimpl.Segments())
			require.NoError(t, err)
			updated, err := store.Upsert(ldstoreimpl.Features(), data[0].Items[0].Key, data[0].Items[0].Item)
			require.NoError(t, err)
			require.False(t, updated)

			calls, written := count.snapshot()
			s := metrics.Snapshot()
			assert.Equal(t, s.Calls, calls)
			assert.Equal(t, s.ItemsWritten, written)
			assert.Equal(t, int64(len(data[0].Items)+len(data[1].Items)+1), written, "every item and the marker")
		})
	}
}
