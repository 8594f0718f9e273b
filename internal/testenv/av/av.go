// Package av makes DynamoDB attribute values for rows that tests write or expect. It is apart
// from testenv, which imports the store, so that the store's own tests can use it too.
package av

import "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

// S is a string attribute.
func S(v string) types.AttributeValue { return &types.AttributeValueMemberS{Value: v} }

// N is a number attribute, given as DynamoDB writes it ("3", "1.5", "1e40").
func N(v string) types.AttributeValue { return &types.AttributeValueMemberN{Value: v} }
