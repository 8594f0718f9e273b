package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"
	"unicode"

	"github.com/launchdarkly/go-sdk-common/v3/ldvalue"
	"github.com/launchdarkly/go-server-sdk-evaluation/v3/ldbuilders"
	"github.com/launchdarkly/go-server-sdk-evaluation/v3/ldmodel"
	"github.com/launchdarkly/go-server-sdk/v7/subsystems/ldstoreimpl"
	"github.com/launchdarkly/go-server-sdk/v7/subsystems/ldstoretypes"
	"gopkg.in/ghodss/yaml.v1"
)

// flagsFile is the format of the SDK's file data source (ldfiledata), which dump writes and load
// reads, plus a "deleted" section that the file data source ignores: the versions of deleted
// items, so that a dump and load keeps them (a deleted item's version stops an older update
// from bringing it back).
type flagsFile struct {
	Flags      map[string]json.RawMessage `json:"flags"`
	Segments   map[string]json.RawMessage `json:"segments"`
	FlagValues map[string]json.RawMessage `json:"flagValues,omitempty"`
	Deleted    *deletedItems              `json:"deleted,omitempty"`
}

// deletedItems maps the keys of deleted flags and segments to their versions.
type deletedItems struct {
	Flags    map[string]int `json:"flags,omitempty"`
	Segments map[string]int `json:"segments,omitempty"`
}

// section returns the file's live and deleted items of a kind.
func (f *flagsFile) section(kind ldstoretypes.DataKind) (live map[string]json.RawMessage, deleted map[string]int) {
	var del deletedItems
	if f.Deleted != nil {
		del = *f.Deleted
	}
	if kind == ldstoreimpl.Features() {
		return f.Flags, del.Flags
	}
	return f.Segments, del.Segments
}

// fileName is what the file format calls a kind.
func fileName(kind ldstoretypes.DataKind) string {
	if kind == ldstoreimpl.Features() {
		return "flags"
	}
	return kind.GetName()
}

// loadedItem is one item of a flags file, checked by the SDK's parser.
type loadedItem struct {
	key    string
	item   ldstoretypes.SerializedItemDescriptor
	parsed interface{} // *ldmodel.FeatureFlag or *ldmodel.Segment, nil when deleted
}

// readFlagsFile reads a flags file in JSON or YAML, as the file data source does, and returns its
// items in the order the SDK gives them to a store's Init: segments before flags, and within a
// kind every item after the items it refers to. Every item is parsed by the SDK and must carry
// its own key; a file with no items at all is refused, since loading it would delete everything.
func readFlagsFile(path string) ([]ldstoretypes.SerializedCollection, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	data, err := decodeFlagsFile(raw)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	var colls []ldstoretypes.SerializedCollection
	total := 0
	for _, kind := range []ldstoretypes.DataKind{ldstoreimpl.Segments(), ldstoreimpl.Features()} {
		items, err := data.items(kind)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		total += len(items)
		ordered := ldstoretypes.SerializedCollection{Kind: kind}
		for _, it := range orderByDependencies(items) {
			ordered.Items = append(ordered.Items, ldstoretypes.KeyedSerializedItemDescriptor{Key: it.key, Item: it.item})
		}
		colls = append(colls, ordered)
	}
	if total == 0 {
		return nil, fmt.Errorf(`%s: no flags, flagValues, segments or deleted items; loading it would delete everything under the prefix`, path)
	}
	return colls, nil
}

// decodeFlagsFile parses the file's top level. Unlike the file data source it refuses fields it
// does not know, so that a misspelt section is not read as an empty one.
func decodeFlagsFile(raw []byte) (flagsFile, error) {
	var data flagsFile
	if !strings.HasPrefix(strings.TrimLeftFunc(string(raw), unicode.IsSpace), "{") {
		converted, err := yaml.YAMLToJSON(raw)
		if err != nil {
			return data, fmt.Errorf("not JSON (it does not start with '{') nor YAML: %w", err)
		}
		raw = converted
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&data); err != nil {
		var syntax *json.SyntaxError
		if errors.As(err, &syntax) {
			return data, fmt.Errorf("line %d: invalid JSON: %w", bytes.Count(raw[:syntax.Offset], []byte("\n"))+1, err)
		}
		return data, fmt.Errorf(`not a flags file (expected "flags", "flagValues", "segments" and "deleted"): %w`, err)
	}
	return data, nil
}

// items returns the file's items of one kind, live and deleted, each checked.
func (f *flagsFile) items(kind ldstoretypes.DataKind) ([]loadedItem, error) {
	live, deleted := f.section(kind)
	name := fileName(kind)
	var items []loadedItem
	for key, raw := range live {
		it, err := parseItem(kind, key, raw)
		if err != nil {
			return nil, fmt.Errorf("%s %q: %w", name, key, err)
		}
		items = append(items, it)
	}
	if kind == ldstoreimpl.Features() {
		for key, raw := range f.FlagValues {
			if _, dup := live[key]; dup {
				return nil, fmt.Errorf("flag %q is in both flags and flagValues", key)
			}
			var value ldvalue.Value
			if err := json.Unmarshal(raw, &value); err != nil {
				return nil, fmt.Errorf("flagValues %q: %w", key, err)
			}
			// As the file data source does: a flag that serves the value to everyone.
			flag := ldbuilders.NewFlagBuilder(key).SingleVariation(value).Build()
			desc := ldstoretypes.ItemDescriptor{Version: flag.Version, Item: &flag}
			items = append(items, loadedItem{key: key, parsed: &flag,
				item: ldstoretypes.SerializedItemDescriptor{Version: flag.Version, SerializedItem: kind.Serialize(desc)}})
		}
	}
	for key, version := range deleted {
		if _, dup := live[key]; dup {
			return nil, fmt.Errorf("%s %q is both live and deleted", name, key)
		}
		desc := ldstoretypes.ItemDescriptor{Version: version}
		items = append(items, loadedItem{key: key,
			item: ldstoretypes.SerializedItemDescriptor{Version: version, Deleted: true, SerializedItem: kind.Serialize(desc)}})
	}
	return items, nil
}

// parseItem checks one item as the SDK would read it from the table, and keeps its JSON as it is
// (compacted), so that a dump and load writes back the very same rows.
func parseItem(kind ldstoretypes.DataKind, key string, raw json.RawMessage) (loadedItem, error) {
	var compact bytes.Buffer
	if err := json.Compact(&compact, raw); err != nil {
		return loadedItem{}, err
	}
	desc, err := kind.Deserialize(compact.Bytes())
	if err != nil {
		return loadedItem{}, fmt.Errorf("the SDK cannot parse it: %w", err)
	}
	if jsonKey := ldvalue.Parse(compact.Bytes()).GetByKey("key").StringValue(); jsonKey != key {
		return loadedItem{}, fmt.Errorf(`its "key" is %q; it must be the same as the key it is listed under`, jsonKey)
	}
	return loadedItem{key: key, parsed: desc.Item,
		item: ldstoretypes.SerializedItemDescriptor{Version: desc.Version, Deleted: desc.Item == nil, SerializedItem: compact.Bytes()}}, nil
}

// orderByDependencies puts every item after the items of the same kind that it refers to (a
// flag's prerequisites, a segment's segmentMatch clauses), and otherwise sorts by key, as the
// SDK orders the data it gives to a store's Init. A cycle, which the SDK would refuse to
// evaluate anyway, is broken at the first item found in it.
func orderByDependencies(items []loadedItem) []loadedItem {
	byKey := make(map[string]loadedItem, len(items))
	keys := make([]string, 0, len(items))
	for _, it := range items {
		byKey[it.key] = it
		keys = append(keys, it.key)
	}
	sort.Strings(keys)
	out := make([]loadedItem, 0, len(items))
	visited := map[string]bool{}
	var visit func(key string)
	visit = func(key string) {
		it, ok := byKey[key]
		if !ok || visited[key] {
			return
		}
		visited[key] = true
		for _, dep := range dependencies(it.parsed) {
			visit(dep)
		}
		out = append(out, it)
	}
	for _, key := range keys {
		visit(key)
	}
	return out
}

// dependencies are the keys of the same kind that an item refers to.
func dependencies(item interface{}) []string {
	var deps []string
	segmentMatches := func(clauses []ldmodel.Clause) {
		for _, c := range clauses {
			if c.Op == ldmodel.OperatorSegmentMatch {
				for _, v := range c.Values {
					deps = append(deps, v.StringValue())
				}
			}
		}
	}
	switch it := item.(type) {
	case *ldmodel.FeatureFlag:
		for _, p := range it.Prerequisites {
			deps = append(deps, p.Key)
		}
	case *ldmodel.Segment:
		for _, r := range it.Rules {
			segmentMatches(r.Clauses)
		}
	}
	sort.Strings(deps)
	return deps
}
