package lddynamodb

import (
	"fmt"

	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/expression"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// The expressions of the store's calls never change but for one value, so they are built once,
// when the package loads: building one with the expression package costs tens of allocations,
// which Get, GetAll and Upsert would otherwise pay on every call.
var (
	// namespaceQuery selects every row of the namespace given per call.
	namespaceQuery = buildFixed(expression.NewBuilder().WithKeyCondition(
		expression.Key(AttrNamespace).Equal(expression.Value(perCall))))
	// storedRowsQuery is namespaceQuery reading only what Init compares.
	storedRowsQuery = buildFixed(expression.NewBuilder().
			WithKeyCondition(expression.Key(AttrNamespace).Equal(expression.Value(perCall))).
			WithProjection(expression.NamesList(expression.Name(AttrKey), expression.Name(attrVersion), expression.Name(attrItem),
			expression.Name(attrEncoding), expression.Name(attrDigest), expression.Name(attrParts), expression.Name(attrPartsID))))
	// partKeysQuery is namespaceQuery reading only the keys, for the parts of large items.
	partKeysQuery = buildFixed(expression.NewBuilder().
			WithKeyCondition(expression.Key(AttrNamespace).Equal(expression.Value(perCall))).
			WithProjection(expression.NamesList(expression.Name(AttrKey))))
	// upsertCondition writes a row only if it is older than the version given per call: versions
	// never go backwards, whoever writes. A row whose version is missing or not a number (an absent
	// row has none either) cannot be compared, so it is overwritten, as Init rewrites it: refusing
	// would tell the SDK that a newer version is stored, and leave the unreadable row until the
	// next Init. "NOT version >= :v" says all of that in one comparison: DynamoDB's comparisons are
	// false for a missing attribute or one of another type, so NOT makes them true. It costs the
	// local server no more than "version < :v", where spelling out the unreadable cases with
	// attribute_type took it twice as long.
	upsertCondition = buildFixed(expression.NewBuilder().WithCondition(
		expression.Not(expression.Name(attrVersion).GreaterThanEqual(expression.Value(perCall)))))
	// markerProjection reads only the key of the initialized marker.
	markerProjection = buildFixed(expression.NewBuilder().WithProjection(expression.NamesList(expression.Name(AttrKey))))
)

// perCall stands for the value that each call sets, while a fixedExpression is built.
const perCall = "\x00per-call value"

// fixedExpression is an expression built once, whose values are the same on every call but at
// most one, set per call. The calls share its strings and maps, which nothing writes to.
type fixedExpression struct {
	keyCondition, condition, projection *string
	names                               map[string]string
	values                              map[string]types.AttributeValue // without the per-call one
	variable                            string                          // the per-call value's placeholder
}

func buildFixed(builder expression.Builder) fixedExpression {
	expr, err := builder.Build()
	if err != nil {
		panic(fmt.Sprintf("lddynamodb: building a fixed expression: %v", err))
	}
	f := fixedExpression{
		keyCondition: expr.KeyCondition(),
		condition:    expr.Condition(),
		projection:   expr.Projection(),
		names:        expr.Names(),
	}
	for name, value := range expr.Values() {
		if s, ok := value.(*types.AttributeValueMemberS); ok && s.Value == perCall {
			f.variable = name
			continue
		}
		if f.values == nil {
			f.values = map[string]types.AttributeValue{}
		}
		f.values[name] = value
	}
	return f
}

// valuesWith returns the expression's values, with value as the per-call one.
func (f fixedExpression) valuesWith(value types.AttributeValue) map[string]types.AttributeValue {
	values := make(map[string]types.AttributeValue, len(f.values)+1)
	for name, v := range f.values {
		values[name] = v
	}
	values[f.variable] = value
	return values
}
