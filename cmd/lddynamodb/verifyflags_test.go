package main

import (
	"fmt"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/launchdarkly/go-sdk-common/v3/ldcontext"
	"github.com/launchdarkly/go-sdk-common/v3/ldreason"
	ld "github.com/launchdarkly/go-server-sdk/v7"
	"github.com/launchdarkly/go-server-sdk/v7/ldcomponents"
	"github.com/stretchr/testify/assert"

	"github.com/lddynamodb/lddynamodb/internal/testenv"
	"github.com/lddynamodb/lddynamodb/internal/testenv/av"
)

// testFlag is the JSON of flag key "f"-like flag: on, two variations, off variation 0, with the
// given fields added or replacing the defaults (fallthrough to variation 0).
func testFlag(key, fields string) string {
	if !strings.Contains(fields, `"fallthrough"`) {
		fields += `, "fallthrough": {"variation": 0}`
	}
	return fmt.Sprintf(`{"key": %q, "version": 1, "on": true, "salt": "s", "variations": [false, true], "offVariation": 0%s}`, key, fields)
}

func testSegment(key, fields string) string {
	return fmt.Sprintf(`{"key": %q, "version": 1, "salt": "s"%s}`, key, fields)
}

// TestVerifyFindsFlagsTheSDKCannotEvaluate pins each thing that makes the SDK's evaluator answer
// MALFORMED_FLAG, checked against the SDK itself (a daemon-mode client evaluating "f" for
// user-1 from the same table), and the missing references that verify warns of.
func TestVerifyFindsFlagsTheSDKCannotEvaluate(t *testing.T) {
	const user1 = `{"attribute": "key", "op": "in", "values": ["user-1"]}`
	cases := []struct {
		name      string
		flags     []string
		segments  []string
		problem   string
		warning   string
		malformed bool // the SDK answers MALFORMED_FLAG for f and user-1
		problems  int  // when not 1
	}{
		{name: "fallthrough variation out of range", flags: []string{testFlag("f", `, "fallthrough": {"variation": 2}`)},
			problem: `fallthrough.variation: variation 2 does not exist (the flag has 2)`, malformed: true},
		{name: "no fallthrough", flags: []string{testFlag("f", `, "fallthrough": {}`)},
			problem: `fallthrough: neither a variation nor a rollout with variations`, malformed: true},
		{name: "off variation out of range", flags: []string{strings.Replace(strings.Replace(testFlag("f", ""), `"on": true`, `"on": false`, 1), `"offVariation": 0`, `"offVariation": 5`, 1)},
			problem: `offVariation: variation 5 does not exist (the flag has 2)`, malformed: true},
		{name: "off flag with no fallthrough", flags: []string{strings.Replace(testFlag("f", `, "fallthrough": {}`), `"on": true`, `"on": false`, 1)}},
		{name: "sound flag", flags: []string{testFlag("f", `, "rules": [{"id": "r", "clauses": [`+user1+`], "variation": 1}]`)}},
		{name: "target variation out of range", flags: []string{testFlag("f", `, "targets": [{"values": ["user-1"], "variation": 3}]`)},
			problem: `targets[0]: variation 3 does not exist`, malformed: true},
		{name: "context target variation out of range", flags: []string{testFlag("f", `, "contextTargets": [{"contextKind": "user", "values": ["user-1"], "variation": 7}]`)},
			problem: `contextTargets[0]: variation 7 does not exist`, malformed: true},
		{name: "rule variation out of range", flags: []string{testFlag("f", `, "rules": [{"id": "r", "clauses": [`+user1+`], "variation": 2}]`)},
			problem: `rules[0].variation: variation 2 does not exist`, malformed: true},
		{name: "rule with neither", flags: []string{testFlag("f", `, "rules": [{"id": "r", "clauses": [`+user1+`]}]`)},
			problem: `rules[0]: neither a variation nor a rollout with variations`, malformed: true},
		{name: "rollout variation out of range", flags: []string{testFlag("f", `, "fallthrough": {"rollout": {"variations": [{"variation": 0, "weight": 1}, {"variation": 5, "weight": 99999}]}}`)},
			problem: `fallthrough.rollout.variations[1]: variation 5 does not exist`, malformed: true},
		{name: "clause without attribute", flags: []string{testFlag("f", `, "rules": [{"id": "r", "clauses": [{"op": "in", "values": ["x"]}], "variation": 1}]`)},
			problem: `rules[0].clauses[0].attribute: missing`, malformed: true},
		{name: "invalid attribute reference", flags: []string{testFlag("f", `, "rules": [{"id": "r", "clauses": [{"contextKind": "user", "attribute": "/", "op": "in", "values": ["x"]}], "variation": 1}]`)},
			problem: `rules[0].clauses[0].attribute: "/" is not a valid attribute reference`, malformed: true},
		{name: "invalid bucketBy", flags: []string{testFlag("f", `, "fallthrough": {"rollout": {"contextKind": "user", "bucketBy": "//", "variations": [{"variation": 1, "weight": 100000}]}}`)},
			problem: `fallthrough.rollout.bucketBy: "//" is not a valid attribute reference`, malformed: true},
		{name: "prerequisites in a circle", flags: []string{
			testFlag("f", `, "prerequisites": [{"key": "g", "variation": 0}]`), testFlag("g", `, "prerequisites": [{"key": "f", "variation": 0}]`)},
			problem: `features "f" (namespace "features"): the SDK cannot evaluate it (MALFORMED_FLAG): its prerequisites go round in a circle: f -> g -> f`, malformed: true, problems: 2},
		{name: "segment with a clause without attribute", flags: []string{testFlag("f", `, "rules": [{"id": "r", "clauses": [{"op": "segmentMatch", "values": ["s"]}], "variation": 1}]`)},
			segments: []string{testSegment("s", `, "rules": [{"clauses": [{"op": "in", "values": ["user-1"]}]}]`)},
			problem:  `segments "s" (namespace "segments"): the SDK cannot evaluate flags that use it (MALFORMED_FLAG): rules[0].clauses[0].attribute: missing`, malformed: true},
		{name: "segments in a circle", flags: []string{testFlag("f", `, "rules": [{"id": "r", "clauses": [{"op": "segmentMatch", "values": ["s"]}], "variation": 1}]`)},
			segments: []string{
				testSegment("s", `, "rules": [{"clauses": [{"op": "segmentMatch", "values": ["t"]}]}]`),
				testSegment("t", `, "rules": [{"clauses": [{"op": "segmentMatch", "values": ["s"]}]}]`)},
			problem:   `segments "s" (namespace "segments"): the SDK cannot evaluate flags that use it (MALFORMED_FLAG): its rules refer to segments in a circle: s -> t -> s`,
			malformed: true, problems: 2},
		{name: "missing prerequisite", flags: []string{testFlag("f", `, "prerequisites": [{"key": "nope", "variation": 0}]`)},
			warning: `features "f" (namespace "features"): prerequisite "nope" does not exist; the flag serves its off variation`},
		{name: "prerequisite variation out of range", flags: []string{testFlag("f", `, "prerequisites": [{"key": "g", "variation": 2}]`), testFlag("g", "")},
			warning: `features "f" (namespace "features"): prerequisite "g" has no variation 2; the prerequisite is never met`},
		{name: "missing segment", flags: []string{testFlag("f", `, "rules": [{"id": "r", "clauses": [{"op": "segmentMatch", "values": ["gone"]}], "variation": 1}]`)},
			warning: `features "f" (namespace "features"): rules[0].clauses[0]: segment "gone" does not exist; nobody matches it`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			table := testenv.NewTable(t)
			rows := []map[string]types.AttributeValue{{"namespace": av.S("$inited"), "key": av.S("$inited")}}
			for namespace, items := range map[string][]string{"features": c.flags, "segments": c.segments} {
				for _, item := range items {
					key := strings.Split(item, `"`)[3]
					rows = append(rows, map[string]types.AttributeValue{"namespace": av.S(namespace), "key": av.S(key), "version": av.N("1"), "item": av.S(item)})
				}
			}
			testenv.PutRows(t, table, rows)

			r := cli(t, "verify", table, "--no-scan")
			switch {
			case c.problem != "":
				assert.Equal(t, exitProblems, r.code)
				assert.Contains(t, r.stdout, fmt.Sprintf("problems (%d):\n", max(c.problems, 1)))
				assert.Contains(t, r.stdout, c.problem)
			case c.warning != "":
				assert.Equal(t, exitOK, r.code)
				assert.Contains(t, r.stdout, "warnings (1):\n  "+c.warning+"\n")
			default:
				assert.Equal(t, exitOK, r.code)
				assert.NotContains(t, r.stdout, "warnings")
			}

			client, _ := testenv.SDKClient(t, ld.Config{
				DataSource: ldcomponents.ExternalUpdatesOnly(),
				DataStore:  ldcomponents.PersistentDataStore(testenv.DataStore(table)),
			})
			_, detail, _ := client.BoolVariationDetail("f", ldcontext.New("user-1"), false)
			if c.malformed {
				assert.Equal(t, ldreason.EvalErrorMalformedFlag, detail.Reason.GetErrorKind(), "the SDK's answer: %s", detail.Reason)
			} else {
				assert.NotEqual(t, ldreason.EvalErrorMalformedFlag, detail.Reason.GetErrorKind(), "the SDK's answer: %s", detail.Reason)
			}
		})
	}
}
