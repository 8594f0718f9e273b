package lddynamodb

import (
	"context"
	"fmt"
	"syscall"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/metric/noop"
)

// TestStoreWithoutMetricsPaysNothing: without a Metrics or a MeterProvider the store calls the
// client as it is, with no recorder, no wrapper asking for consumed capacity, and no middleware.
func TestStoreWithoutMetricsPaysNothing(t *testing.T) {
	client := dynamodb.New(dynamodb.Options{Region: "us-east-1"})
	for name, tc := range map[string]struct {
		builder  *DataStoreBuilder
		recorded bool
	}{
		"neither":        {DataStore("t").DynamoClient(client), false},
		"metrics":        {DataStore("t").DynamoClient(client).Metrics(&Metrics{}), true},
		"meter provider": {DataStore("t").DynamoClient(client).MeterProvider(noop.NewMeterProvider()), true},
	} {
		t.Run(name, func(t *testing.T) {
			built, err := tc.builder.Build(nil)
			require.NoError(t, err)
			s := built.(*store)
			defer s.Close()
			_, metered := s.client.(meteredClient)
			assert.Equal(t, tc.recorded, metered)
			assert.Equal(t, tc.recorded, s.rec != nil)
			var o dynamodb.Options
			for _, fn := range s.callOpts {
				fn(&o)
			}
			assert.Equal(t, tc.builder.meters != nil, len(o.APIOptions) == 1, "the timing middleware only with a meter provider")
		})
	}
}

func TestErrorType(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		want string
	}{
		{"success", nil, ""},
		{"DynamoDB's code", fmt.Errorf("wrapped: %w", &types.ProvisionedThroughputExceededException{}), "ProvisionedThroughputExceededException"},
		{"generic code", &smithy.GenericAPIError{Code: "ServiceUnavailable"}, "ServiceUnavailable"},
		{"deadline", fmt.Errorf("op: %w", context.DeadlineExceeded), "timeout"},
		{"canceled", &smithyhttp.RequestSendError{Err: context.Canceled}, "canceled"},
		{"reset", &smithyhttp.RequestSendError{Err: syscall.ECONNRESET}, "connection"},
		{"credentials", &CredentialsError{Err: assert.AnError}, "credentials"},
		{"other", assert.AnError, "_OTHER"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.want, errorType(tc.err))
		})
	}
}
