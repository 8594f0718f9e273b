package testenv

import (
	"encoding/json"
	"fmt"
	"os"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// LoadRows reads fixture rows from a file in the shape that `aws dynamodb scan` prints,
// {"Items": [{"namespace": {"S": "..."}, ...}, ...]}, so that a dump of a table that another
// program wrote can be used as it is. Only the types that LaunchDarkly rows use are decoded (S, N,
// SS, NULL, BOOL); any other is an error, so that a fixture never loses an attribute silently.
func LoadRows(path string) ([]map[string]types.AttributeValue, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var dump struct {
		Items []map[string]map[string]json.RawMessage
	}
	if err := json.Unmarshal(data, &dump); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	rows := make([]map[string]types.AttributeValue, 0, len(dump.Items))
	for i, item := range dump.Items {
		row := make(map[string]types.AttributeValue, len(item))
		for name, typed := range item {
			value, err := decodeAttribute(typed)
			if err != nil {
				return nil, fmt.Errorf("%s: item %d: attribute %q: %w", path, i, name, err)
			}
			row[name] = value
		}
		rows = append(rows, row)
	}
	return rows, nil
}

// decodeAttribute decodes one DynamoDB JSON value, an object with a single type key.
func decodeAttribute(typed map[string]json.RawMessage) (types.AttributeValue, error) {
	if len(typed) != 1 {
		return nil, fmt.Errorf("want one type key, got %d", len(typed))
	}
	var typ string
	var raw json.RawMessage
	for typ, raw = range typed {
	}
	switch typ {
	case "S":
		var v types.AttributeValueMemberS
		return &v, json.Unmarshal(raw, &v.Value)
	case "N":
		var v types.AttributeValueMemberN
		return &v, json.Unmarshal(raw, &v.Value)
	case "SS":
		var v types.AttributeValueMemberSS
		return &v, json.Unmarshal(raw, &v.Value)
	case "NULL":
		var v types.AttributeValueMemberNULL
		return &v, json.Unmarshal(raw, &v.Value)
	case "BOOL":
		var v types.AttributeValueMemberBOOL
		return &v, json.Unmarshal(raw, &v.Value)
	default:
		return nil, fmt.Errorf("type %q is not supported", typ)
	}
}

// PutRows writes rows as they are, bypassing the stores, as another program would.
func PutRows(t testing.TB, table string, rows []map[string]types.AttributeValue) {
	t.Helper()
	for _, row := range rows {
		PutRow(t, table, row)
	}
}
