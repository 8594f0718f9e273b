package lddynamodb

import (
	"context"
	"encoding/base64"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// BatchWriteItem's two limits: 25 requests, and 16 MB for the request as sent. The size counts
// the JSON on the wire, where an `item` (JSON inside JSON) has every `"` and `\` escaped again and
// a part's Binary data is base64, a third larger: 25 legal rows can be over 16 MB.

// maxBatchWriteBytes is the largest request body that batches are cut to: 16 MB, counted in
// decimal to stay under the limit whichever way DynamoDB counts it, less room for the envelope
// around the requests (table name, ReturnConsumedCapacity).
const maxBatchWriteBytes = 16_000_000 - 1024

// writeRequestWireBytes is how many bytes a write request takes in the JSON body of a
// BatchWriteItem, as the AWS SDK encodes it, within a few bytes per attribute (counted high).
func writeRequestWireBytes(r types.WriteRequest) int {
	row := map[string]types.AttributeValue(nil)
	switch {
	case r.PutRequest != nil:
		row = r.PutRequest.Item
	case r.DeleteRequest != nil:
		row = r.DeleteRequest.Key
	}
	size := len(`{"PutRequest":{"Item":{}}},`)
	for name, value := range row {
		size += jsonStringBytes(name) + len(`:{"SS":},`)
		switch v := value.(type) {
		case *types.AttributeValueMemberS:
			size += jsonStringBytes(v.Value)
		case *types.AttributeValueMemberN:
			size += len(v.Value) + 2
		case *types.AttributeValueMemberB:
			size += base64.StdEncoding.EncodedLen(len(v.Value)) + 2
		default:
			// The store writes no other type; count any other as fully escaped.
			size += 6*RowSize(map[string]types.AttributeValue{"": value}) + 2
		}
	}
	return size
}

// jsonStringBytes is the length of s as a JSON string the way the AWS SDK writes it (smithy-go's
// escapeStringBytes): quotes around it, two bytes for `"`, `\`, newline, carriage return and tab,
// six for other control characters, U+2028, U+2029 and each byte of invalid UTF-8.
func jsonStringBytes(s string) int {
	n := 2
	for i := 0; i < len(s); {
		b := s[i]
		if b < utf8.RuneSelf {
			switch {
			case b == '"' || b == '\\' || b == '\n' || b == '\r' || b == '\t':
				n += 2
			case b < 0x20:
				n += 6
			default:
				n++
			}
			i++
			continue
		}
		c, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case c == utf8.RuneError && size == 1:
			n += 6
		case c == '\u2028' || c == '\u2029':
			n += 6
		default:
			n += size
		}
		i += size
	}
	return n
}

// cutBatches splits write requests, in order, into batches of at most maxBatchWriteItems and
// maxBatchWriteBytes.
func cutBatches(reqs []types.WriteRequest) [][]types.WriteRequest {
	var batches [][]types.WriteRequest
	start, bytes := 0, 0
	for i, r := range reqs {
		size := writeRequestWireBytes(r)
		if i > start && (i-start == maxBatchWriteItems || bytes+size > maxBatchWriteBytes) {
			batches = append(batches, reqs[start:i:i])
			start, bytes = i, 0
		}
		bytes += size
	}
	if start < len(reqs) {
		batches = append(batches, reqs[start:])
	}
	return batches
}

// writeRows sends write requests with BatchWriteItem outside Init, in batches cut by count and
// size, one after another, sending again what DynamoDB hands back, until every one is written,
// one fails in a way no retry fixes, or ctx ends.
func (s *store) writeRows(ctx context.Context, reqs []types.WriteRequest) error {
	for _, batch := range cutBatches(reqs) {
		pending := batch
		err := retryUntilDone(ctx, func() (bool, error) {
			out, err := s.client.BatchWriteItem(ctx, &dynamodb.BatchWriteItemInput{
				RequestItems: map[string][]types.WriteRequest{s.table: pending},
			}, s.callOpts...)
			if err != nil {
				return false, err
			}
			pending = out.UnprocessedItems[s.table]
			return len(pending) == 0, nil
		})
		if err != nil {
			return err
		}
	}
	return nil
}
