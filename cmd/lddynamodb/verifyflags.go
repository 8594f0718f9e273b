package main

// What verify checks in the flags and segments themselves, beyond parsing: what makes the SDK's
// evaluator (go-server-sdk-evaluation) answer MALFORMED_FLAG instead of a value, which it decides
// only when an evaluation reaches the broken part, and references to flags and segments that are
// not there.
//
// The evaluator fails a flag for: an off variation out of range; and, when the flag is on, a
// variation index out of range (fallthrough, target, rule, or a rollout's variation); a
// fallthrough or rule with neither a variation nor a rollout with variations; a clause without
// an attribute, or with an invalid attribute reference (segmentMatch clauses have none); an
// invalid bucketBy of a rollout that is not an experiment, or of a weighted segment rule; and
// prerequisites or segments that refer to each other in a circle. A missing prerequisite or
// segment is not an error to the evaluator (the prerequisite fails, the clause does not match),
// so verify warns of those.

import (
	"fmt"
	"slices"
	"strings"

	"github.com/launchdarkly/go-sdk-common/v3/ldattr"
	"github.com/launchdarkly/go-sdk-common/v3/ldvalue"
	"github.com/launchdarkly/go-server-sdk-evaluation/v3/ldmodel"
	"github.com/launchdarkly/go-server-sdk/v7/subsystems/ldstoreimpl"
	"github.com/launchdarkly/go-server-sdk/v7/subsystems/ldstoretypes"

	"github.com/lddynamodb/lddynamodb"
)

// items are the flags and segments that verify read under the prefix: the live ones parsed, and
// the keys of deleted ones.
type items struct {
	flags           map[string]*ldmodel.FeatureFlag
	segments        map[string]*ldmodel.Segment
	deletedFlags    map[string]bool
	deletedSegments map[string]bool
}

func newItems() items {
	return items{flags: map[string]*ldmodel.FeatureFlag{}, segments: map[string]*ldmodel.Segment{},
		deletedFlags: map[string]bool{}, deletedSegments: map[string]bool{}}
}

// add keeps a live item that the SDK parsed.
func (it items) add(key string, item any) {
	switch item := item.(type) {
	case *ldmodel.FeatureFlag:
		it.flags[key] = item
	case *ldmodel.Segment:
		it.segments[key] = item
	}
}

// addDeleted keeps the key of a deleted item.
func (it items) addDeleted(kind ldstoretypes.DataKind, key string) {
	if kind == ldstoreimpl.Features() {
		it.deletedFlags[key] = true
	} else {
		it.deletedSegments[key] = true
	}
}

// check returns the problems that make the SDK fail to evaluate a flag, and warnings for
// references to flags and segments that are missing.
func (it items) check(prefix string) (problems, warnings []string) {
	flagName := func(key string) string {
		return fmt.Sprintf("%s %q (namespace %q)", ldstoreimpl.Features(), key, lddynamodb.Namespace(prefix, ldstoreimpl.Features()))
	}
	segmentName := func(key string) string {
		return fmt.Sprintf("%s %q (namespace %q)", ldstoreimpl.Segments(), key, lddynamodb.Namespace(prefix, ldstoreimpl.Segments()))
	}
	for _, key := range sortedKeys(it.flags) {
		f := it.flags[key]
		for _, p := range flagProblems(f) {
			problems = append(problems, fmt.Sprintf("%s: the SDK cannot evaluate it (MALFORMED_FLAG): %s", flagName(key), p))
		}
		if cycle := it.prerequisiteCycle(key, nil); cycle != nil {
			problems = append(problems, fmt.Sprintf("%s: the SDK cannot evaluate it (MALFORMED_FLAG): its prerequisites go round in a circle: %s",
				flagName(key), strings.Join(cycle, " -> ")))
		}
		for _, p := range f.Prerequisites {
			switch prereq := it.flags[p.Key]; {
			case prereq == nil:
				warnings = append(warnings, fmt.Sprintf("%s: prerequisite %q %s; the flag serves its off variation", flagName(key), p.Key, it.missing(it.deletedFlags, p.Key)))
			case p.Variation < 0 || p.Variation >= len(prereq.Variations):
				warnings = append(warnings, fmt.Sprintf("%s: prerequisite %q has no variation %d; the prerequisite is never met", flagName(key), p.Key, p.Variation))
			}
		}
		for i, r := range f.Rules {
			warnings = append(warnings, it.segmentReferences(flagName(key), fmt.Sprintf("rules[%d]", i), r.Clauses)...)
		}
	}
	for _, key := range sortedKeys(it.segments) {
		s := it.segments[key]
		for _, p := range segmentProblems(s) {
			problems = append(problems, fmt.Sprintf("%s: the SDK cannot evaluate flags that use it (MALFORMED_FLAG): %s", segmentName(key), p))
		}
		if cycle := it.segmentCycle(key, nil); cycle != nil {
			problems = append(problems, fmt.Sprintf("%s: the SDK cannot evaluate flags that use it (MALFORMED_FLAG): its rules refer to segments in a circle: %s",
				segmentName(key), strings.Join(cycle, " -> ")))
		}
		for i, r := range s.Rules {
			warnings = append(warnings, it.segmentReferences(segmentName(key), fmt.Sprintf("rules[%d]", i), r.Clauses)...)
		}
	}
	return problems, warnings
}

// missing says why a referenced item is not there.
func (it items) missing(deleted map[string]bool, key string) string {
	if deleted[key] {
		return "is deleted"
	}
	return "does not exist"
}

// segmentReferences warns of segmentMatch clauses that name segments that are not there.
func (it items) segmentReferences(name, where string, clauses []ldmodel.Clause) []string {
	var warnings []string
	for j, c := range clauses {
		if c.Op != ldmodel.OperatorSegmentMatch {
			continue
		}
		for _, v := range c.Values {
			if key := v.StringValue(); it.segments[key] == nil {
				warnings = append(warnings, fmt.Sprintf("%s: %s.clauses[%d]: segment %q %s; nobody matches it",
					name, where, j, key, it.missing(it.deletedSegments, key)))
			}
		}
	}
	return warnings
}

// prerequisiteCycle returns the circle of prerequisites that starts at key, if there is one.
func (it items) prerequisiteCycle(key string, path []string) []string {
	if slices.Contains(path, key) {
		if path[0] == key {
			return append(path, key)
		}
		return nil // a circle that key leads to but is not part of: reported for its own flags
	}
	f := it.flags[key]
	if f == nil || !f.On {
		return nil // an off flag's prerequisites are not evaluated
	}
	for _, p := range f.Prerequisites {
		if cycle := it.prerequisiteCycle(p.Key, append(slices.Clip(path), key)); cycle != nil {
			return cycle
		}
	}
	return nil
}

// segmentCycle returns the circle of segmentMatch references that starts at key, if any.
func (it items) segmentCycle(key string, path []string) []string {
	if slices.Contains(path, key) {
		if path[0] == key {
			return append(path, key)
		}
		return nil
	}
	s := it.segments[key]
	if s == nil {
		return nil
	}
	for _, r := range s.Rules {
		for _, c := range r.Clauses {
			if c.Op != ldmodel.OperatorSegmentMatch {
				continue
			}
			for _, v := range c.Values {
				if cycle := it.segmentCycle(v.StringValue(), append(slices.Clip(path), key)); cycle != nil {
					return cycle
				}
			}
		}
	}
	return nil
}

// flagProblems lists what in one flag makes the evaluator fail, by where it is in the flag's JSON.
func flagProblems(f *ldmodel.FeatureFlag) []string {
	var problems []string
	variation := func(where string, index int) {
		if index < 0 || index >= len(f.Variations) {
			problems = append(problems, fmt.Sprintf("%s: variation %d does not exist (the flag has %d)", where, index, len(f.Variations)))
		}
	}
	variationOrRollout := func(where string, vr ldmodel.VariationOrRollout) {
		switch {
		case vr.Variation.IsDefined():
			variation(where+".variation", vr.Variation.IntValue())
		case len(vr.Rollout.Variations) == 0:
			problems = append(problems, where+": neither a variation nor a rollout with variations")
		default:
			for i, wv := range vr.Rollout.Variations {
				variation(fmt.Sprintf("%s.rollout.variations[%d]", where, i), wv.Variation)
			}
			if !vr.Rollout.IsExperiment() {
				problems = append(problems, attributeProblems(where+".rollout.bucketBy", vr.Rollout.BucketBy, false)...)
			}
		}
	}
	if f.OffVariation.IsDefined() {
		variation("offVariation", f.OffVariation.IntValue())
	}
	if !f.On {
		return problems // the evaluator looks no further than the off variation
	}
	for i, t := range f.Targets {
		variation(fmt.Sprintf("targets[%d]", i), t.Variation)
	}
	for i, t := range f.ContextTargets {
		variation(fmt.Sprintf("contextTargets[%d]", i), t.Variation)
	}
	for i, r := range f.Rules {
		where := fmt.Sprintf("rules[%d]", i)
		problems = append(problems, clauseProblems(where, r.Clauses)...)
		variationOrRollout(where, r.VariationOrRollout)
	}
	variationOrRollout("fallthrough", f.Fallthrough)
	return problems
}

// segmentProblems lists what in one segment makes the evaluator fail.
func segmentProblems(s *ldmodel.Segment) []string {
	var problems []string
	for i, r := range s.Rules {
		where := fmt.Sprintf("rules[%d]", i)
		problems = append(problems, clauseProblems(where, r.Clauses)...)
		if r.Weight.IsDefined() {
			problems = append(problems, attributeProblems(where+".bucketBy", r.BucketBy, false)...)
		}
	}
	return problems
}

func clauseProblems(where string, clauses []ldmodel.Clause) []string {
	var problems []string
	for i, c := range clauses {
		if c.Op != ldmodel.OperatorSegmentMatch {
			problems = append(problems, attributeProblems(fmt.Sprintf("%s.clauses[%d].attribute", where, i), c.Attribute, true)...)
		}
	}
	return problems
}

// attributeProblems checks an attribute reference: required in a clause, optional in a bucketBy.
func attributeProblems(where string, ref ldattr.Ref, required bool) []string {
	switch {
	case !ref.IsDefined() && required:
		return []string{where + ": missing"}
	case ref.IsDefined() && ref.Err() != nil:
		return []string{fmt.Sprintf("%s: %s is not a valid attribute reference (%v)", where, ldvalue.String(ref.String()).JSONString(), ref.Err())}
	}
	return nil
}
