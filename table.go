package lddynamodb

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// DefaultTableActiveTimeout bounds how long CreateTable waits for a new table to become ACTIVE.
const DefaultTableActiveTimeout = 5 * time.Minute

// CreateTable polls DescribeTable between these delays (with backoff) while a table is CREATING.
const (
	tableActiveMinPoll = 250 * time.Millisecond
	tableActiveMaxPoll = 5 * time.Second
)

// TableClient is the part of the DynamoDB API that CreateTable calls; a *dynamodb.Client
// satisfies it. These calls need the IAM actions dynamodb:CreateTable and
// dynamodb:DescribeTable, which only whoever sets up the table needs; the stores never call them.
type TableClient interface {
	CreateTable(ctx context.Context, params *dynamodb.CreateTableInput, optFns ...func(*dynamodb.Options)) (*dynamodb.CreateTableOutput, error)
	DescribeTable(ctx context.Context, params *dynamodb.DescribeTableInput, optFns ...func(*dynamodb.Options)) (*dynamodb.DescribeTableOutput, error)
}

// TableOption changes how CreateTable creates a table.
type TableOption func(*dynamodb.CreateTableInput)

// ProvisionedThroughput makes CreateTable create a table with provisioned capacity instead of
// on-demand (pay-per-request) billing, the default.
func ProvisionedThroughput(readUnits, writeUnits int64) TableOption {
	return func(in *dynamodb.CreateTableInput) {
		in.BillingMode = types.BillingModeProvisioned
		in.ProvisionedThroughput = &types.ProvisionedThroughput{
			ReadCapacityUnits:  aws.Int64(readUnits),
			WriteCapacityUnits: aws.Int64(writeUnits),
		}
	}
}

// CreateTable creates a table with the key schema the stores use (partition key "namespace" and
// sort key "key", both strings), with on-demand billing unless an option says otherwise, and waits
// until it is ACTIVE (at most DefaultTableActiveTimeout, or ctx's deadline). If a table of that
// name already exists with the same keys it succeeds without changing it; if its keys differ it
// returns an error. It makes one CreateTable call and DescribeTable calls while it waits (two for
// a table that already exists and is ACTIVE).
func CreateTable(ctx context.Context, client TableClient, table string, opts ...TableOption) error {
	if table == "" {
		return errors.New("lddynamodb: table name is empty")
	}
	in := &dynamodb.CreateTableInput{
		TableName: aws.String(table),
		AttributeDefinitions: []types.AttributeDefinition{
			{AttributeName: aws.String(AttrNamespace), AttributeType: types.ScalarAttributeTypeS},
			{AttributeName: aws.String(AttrKey), AttributeType: types.ScalarAttributeTypeS},
		},
		KeySchema:   tableKeySchema(),
		BillingMode: types.BillingModePayPerRequest,
	}
	for _, opt := range opts {
		opt(in)
	}
	_, err := client.CreateTable(ctx, in)
	var inUse *types.ResourceInUseException
	switch {
	case errors.As(err, &inUse):
		if err := CheckTable(ctx, client, table); err != nil {
			return err
		}
		// The table may still be CREATING (two deployments racing to set it up): wait for it too.
	case err != nil:
		return fmt.Errorf("lddynamodb: table %q: create: %w", table, err)
	}
	// The waiter's default first delay (20 s) is longer than most tables take to become ACTIVE.
	waiter := dynamodb.NewTableExistsWaiter(client, func(o *dynamodb.TableExistsWaiterOptions) {
		o.MinDelay = tableActiveMinPoll
		o.MaxDelay = tableActiveMaxPoll
	})
	if err := waiter.Wait(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(table)}, DefaultTableActiveTimeout); err != nil {
		return fmt.Errorf("lddynamodb: table %q: waiting until active: %w", table, err)
	}
	return nil
}

func tableKeySchema() []types.KeySchemaElement {
	return []types.KeySchemaElement{
		{AttributeName: aws.String(AttrNamespace), KeyType: types.KeyTypeHash},
		{AttributeName: aws.String(AttrKey), KeyType: types.KeyTypeRange},
	}
}

// CheckTable returns an error unless the table exists with the key schema that the stores need:
// partition key "namespace" (S) and sort key "key" (S). It makes one DescribeTable call.
func CheckTable(ctx context.Context, client TableClient, table string) error {
	out, err := client.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(table)})
	if err != nil {
		return fmt.Errorf("lddynamodb: table %q: describe: %w", table, err)
	}
	attrTypes := map[string]types.ScalarAttributeType{}
	for _, def := range out.Table.AttributeDefinitions {
		attrTypes[aws.ToString(def.AttributeName)] = def.AttributeType
	}
	want := tableKeySchema()
	got := out.Table.KeySchema
	same := len(got) == len(want)
	for i := 0; same && i < len(want); i++ {
		name := aws.ToString(got[i].AttributeName)
		same = name == aws.ToString(want[i].AttributeName) && got[i].KeyType == want[i].KeyType && attrTypes[name] == types.ScalarAttributeTypeS
	}
	if !same {
		return fmt.Errorf("lddynamodb: table %q exists with other keys (%s); the stores need partition key %q (S) and sort key %q (S)",
			table, describeKeys(got, attrTypes), AttrNamespace, AttrKey)
	}
	return nil
}

func describeKeys(keys []types.KeySchemaElement, attrTypes map[string]types.ScalarAttributeType) string {
	s := ""
	for i, k := range keys {
		if i > 0 {
			s += ", "
		}
		s += fmt.Sprintf("%s %q (%s)", k.KeyType, aws.ToString(k.AttributeName), attrTypes[aws.ToString(k.AttributeName)])
	}
	return s
}
